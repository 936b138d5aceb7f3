// Resource leases in the daemon (daemon.md §9, protocol.md §4.4): tokens tied to registered
// clients, acquire (≤ 8 per call, all-or-nothing), release, convert, inquire, orphans,
// requests/examine, LVB, killpath, and the disk-only read/write resource commands. Each
// lockspace gets its own I/O context for resource disks, separate from its renewal context.
import assert from 'node:assert';
import { Errno, SanlkCode, SanlockError, errorCode } from '../codes.js';
import { lockspaceViewOf } from '../lease/lockspace-view.js';
import { PaxosLease } from '../lease/paxos-lease.js';
import { examineRequest, type RequestDecision, requestLease } from '../lease/requests.js';
import { acquireEx, acquireSh, convertExToSh, convertShToEx, releaseSh } from '../lease/shared-mode.js';
import { DEFAULT_IO_TIMEOUT } from '../lease/timeouts.js';
import { defaultGeometry } from '../ondisk/geometry.js';
import { buildResourceInit } from '../ondisk/init.js';
import { decodeLeader, PAXOS_DISK_MAGIC, PAXOS_DISK_VERSION, verifyLeader } from '../ondisk/leader.js';
import { MBLOCK_SHARED } from '../ondisk/dblock.js';
import type { Disk } from '../storage/disk.js';
import { IoContext } from '../storage/io-context.js';
import { wrapWithConfiguredFaults } from '../storage/fault-config.js';
import { type Client, RESTRICT_SIGKILL, RESTRICT_SIGTERM } from './clients.js';
import { systemClock } from './clock.js';
import { metrics } from './metrics/sink.js';
import { type Lockspace, type LockspaceManager, sizeFlags } from './lockspace.js';
import type { Daemon, Request } from './server.js';
import {
  AcquireFlag,
  alignFlagToSize,
  alignSizeToFlag,
  Cmd,
  encodeGetLvbReply,
  encodeInquireReply,
  encodeReadResourceOwnersReply,
  encodeReadResourceReply,
  encodeReplyHeader,
  encodeStateRecord,
  KillpathFlag,
  ReleaseFlag,
  RequestFlag,
  ResFlag,
  sectorSizeToFlag,
  WriteResFlag,
} from '../protocol/commands.js';
import { requestKillpath, requestOptions } from '../protocol/request-structs.js';
import { pathExport } from '../protocol/state-strings.js';
import { encodeResource, type SanlkDisk, type SanlkHost, type SanlkResource, StateType } from '../protocol/structs.js';

const SIGKILL = 9;
const SIGTERM = 15;

export type ResList = 'add' | 'held' | 'rem' | 'orphan';

export class Token {
  constructor(
    public client: Client | undefined,
    readonly res: Resource,
    readonly tokenId: number,
    public persistent: boolean,
  ) {}
}

export class Resource {
  list: ResList = 'add';
  /** Replaced, not grown, by the first token (see addToken); never cache it across an add. */
  tokens: Token[] = [];
  lver = 0;
  lvb = false;
  /** pid of the client that held it when it became an orphan (status keeps showing it) */
  orphanPid = -1;
  /** a SH→EX convert is on disk: no other local client may join as SH meanwhile */
  converting = false;
  constructor(
    readonly resId: number,
    readonly ls: Lockspace,
    readonly name: string,
    readonly disks: SanlkDisk[],
    readonly lease: PaxosLease,
    public shared: boolean,
  ) {}

  /** Built once: the release path looks it up for every lease. */
  private cachedKey: string | undefined;

  get key(): string {
    this.cachedKey ??= resKey(this.ls.name, this.name);
    return this.cachedKey;
  }

  addToken(t: Token): void {
    // Most resources only ever have one token: a literal holds it in one slot, a push on the
    // empty array would reserve 17 for every held lease.
    if (this.tokens.length === 0) this.tokens = [t];
    else this.tokens.push(t);
  }

  wire(): SanlkResource {
    return {
      lockspaceName: this.ls.name,
      name: this.name,
      lver: this.lver,
      data64: 0,
      data32: 0,
      unused: 0,
      flags: this.shared ? ResFlag.SHARED : 0,
      numDisks: this.disks.length,
      disks: this.disks,
    };
  }
}

function resKey(ls: string, name: string): string {
  return `${ls}\0${name}`;
}

/** sanlock_path_export (kept under the daemon's old name for its callers). */
export const escapePath = pathExport;

export function resourceString(r: Resource, shared: boolean): string {
  const disks = r.disks.map((d) => `${escapePath(d.path)}:${d.offset}`).join(':');
  return `${r.ls.name}:${r.name}:${disks}:${shared ? 'SH' : String(r.lver)}`;
}

const random = { next: () => Math.random() };

export class ResourceManager {
  readonly resources = new Map<string, Resource>();
  private nextResId = 2;
  private nextTokenId = 1;
  private readonly contexts = new Map<Lockspace, { ctx: IoContext; disks: Map<string, Promise<Disk>> }>();

  constructor(
    readonly daemon: Daemon,
    readonly lockspaces: LockspaceManager,
  ) {}

  private get log() {
    return this.daemon.log;
  }

  private tokensOf(c: Client): Token[] {
    return c.tokens as Token[];
  }

  private diskFor(ls: Lockspace, path: string): Promise<Disk> {
    let e = this.contexts.get(ls);
    if (!e) {
      // As many I/O threads as sanlock has worker threads (-t, default 8), each running one
      // command's I/O: a release is 3 dependent sector I/Os, so with many clients throughput is
      // how many of them run at once.
      const maxWorkers = Math.max(2, this.daemon.cfg.maxWorkerThreads);
      e = { ctx: new IoContext({ name: `${ls.name}-res`, maxWorkers }), disks: new Map() };
      this.contexts.set(ls, e);
    }
    let d = e.disks.get(path);
    if (!d) {
      d = e.ctx.open(path).then((disk) => metrics.disk(wrapWithConfiguredFaults(disk, path), ls.name, 'resource'));
      e.disks.set(path, d);
      d.catch(() => e.disks.delete(path));
    }
    return d;
  }

  /** A lease handle on disks of a joined lockspace, for commands that lock something (rindex). */
  leaseFor(ls: Lockspace, spaceName: string, name: string, disks: SanlkDisk[]): Promise<PaxosLease> {
    return this.newLease(ls, spaceName, name, disks);
  }

  private async newLease(ls: Lockspace, spaceName: string, name: string, disks: SanlkDisk[]): Promise<PaxosLease> {
    assert(ls.delta && ls.hosts);
    // Sized up front: a held lease keeps this array, and one grown by push reserves 17 slots.
    const leaseDisks = new Array<{ disk: Disk; offset: number }>(disks.length);
    for (const [i, d] of disks.entries()) {
      try {
        leaseDisks[i] = { disk: await this.diskFor(ls, d.path), offset: d.offset };
      } catch {
        throw new SanlockError(-Errno.ENODEV, `cannot open ${d.path}`);
      }
    }
    return new PaxosLease(
      { hostId: ls.hostId, generation: ls.generation, ioTimeout: ls.ioTimeout, clock: systemClock, random, lockspace: lockspaceViewOf(ls.delta, ls.hosts) },
      { spaceName, resourceName: name, disks: leaseDisks, sectorSize: ls.sectorSize, alignSize: ls.alignSize },
    );
  }

  // ------------------------------------------------------------ acquire

  async acquire(req: Request): Promise<Buffer> {
    const { h } = req;
    const target = req.target;
    assert(target);
    // owner_name from sanlk_options (python sends an empty one)
    target.ownerName = requestOptions(req.extra).ownerName;
    const done: Token[] = [];
    for (const wr of req.resources) {
      const rv = await this.acquireOne(target, wr, h.cmdFlags);
      metrics.acquire(wr.lockspaceName, typeof rv === 'number' ? rv : 0);
      if (typeof rv === 'number') {
        for (const t of done.reverse()) await this.releaseToken(t);
        return encodeReplyHeader(h, rv);
      }
      done.push(rv);
    }
    return encodeReplyHeader(h, 0);
  }

  private async acquireOne(target: Client, wr: SanlkResource, flags: number): Promise<Token | number> {
    const ls = this.lockspaces.findJoined(wr.lockspaceName);
    if (!ls || ls.spaceDead || ls.killingPids) return -Errno.ENOSPC;
    const shared = (wr.flags & ResFlag.SHARED) !== 0;
    const persistent = (wr.flags & ResFlag.PERSISTENT) !== 0;
    const key = resKey(wr.lockspaceName, wr.name);
    const existing = this.resources.get(key);
    if (existing) {
      if (existing.list === 'rem') return -Errno.EAGAIN;
      if (existing.list === 'add') return -Errno.EBUSY;
      if (existing.list === 'orphan') {
        if (!(flags & (AcquireFlag.ORPHAN | AcquireFlag.ORPHAN_ONLY))) return -Errno.EUCLEAN;
        if (existing.shared !== shared) return -Errno.EUCLEAN;
        const t = existing.tokens[0];
        assert(t);
        t.client = target;
        t.persistent = persistent;
        existing.list = 'held';
        this.tokensOf(target).push(t);
        return t;
      }
      if (existing.shared && shared) {
        if (existing.converting) return -Errno.EBUSY;
        const t = new Token(target, existing, this.nextTokenId++, persistent);
        existing.addToken(t);
        this.tokensOf(target).push(t);
        return t;
      }
      return -Errno.EEXIST;
    }
    if (flags & AcquireFlag.ORPHAN_ONLY && flags & AcquireFlag.LVB) return -Errno.ENOENT;
    let lease: PaxosLease;
    try {
      lease = await this.newLease(ls, ls.name, wr.name, wr.disks);
    } catch (err) {
      return errorCode(err);
    }
    // newLease may wait for the first open of the lease file, and another client's acquire of
    // the same resource can get in meanwhile: without this re-check both ran paxos with our
    // one host_id and both were granted EX (found by the soak, test/hardening/acquire-race).
    // The discarded lease object holds nothing (its disks are the shared cached ones).
    if (this.resources.has(key)) return this.acquireOne(target, wr, flags);
    const res = new Resource(this.nextResId++, ls, wr.name, wr.disks, lease, shared);
    this.resources.set(key, res);
    this.log.warn(`s${ls.spaceId}:r${res.resId} resource ${resourceString(res, false).replace(/:[^:]*$/, '')}`);
    try {
      const opts = {
        lver: wr.flags & ResFlag.LVER ? wr.lver : undefined,
        ownerNoWait: (flags & AcquireFlag.OWNER_NOWAIT) !== 0,
        numHosts: wr.flags & ResFlag.NUM_HOSTS ? wr.data32 : undefined,
      };
      if (shared) {
        await acquireSh(lease, opts);
      } else {
        await acquireEx(lease, opts);
      }
      res.lver = lease.heldLver || lease.leader?.lver || 0;
      if (flags & AcquireFlag.LVB) {
        await lease.readLvb();
        res.lvb = true;
      }
    } catch (err) {
      this.resources.delete(key);
      const rv = errorCode(err);
      if (!(err instanceof SanlockError)) this.log.error(`s${ls.spaceId}:r${res.resId} acquire failed: ${(err as Error).stack ?? err}`);
      else if (!this.daemon.cfg.quietFail) this.log.error(`s${ls.spaceId}:r${res.resId} paxos_acquire ${rv}`);
      else this.log.debug(`s${ls.spaceId}:r${res.resId} paxos_acquire ${rv}`);
      if (lease.needRetract) await lease.release().catch(() => {});
      return rv;
    }
    res.list = 'held';
    const t = new Token(target, res, this.nextTokenId++, persistent);
    res.addToken(t);
    this.tokensOf(target).push(t);
    return t;
  }

  // ------------------------------------------------------------ release

  /** Drops one token; the lease is released on disk when it was the last local holder. */
  private async releaseToken(t: Token, renameTo?: string): Promise<number> {
    const res = t.res;
    if (t.client) {
      const list = this.tokensOf(t.client);
      const i = list.indexOf(t);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) {
        t.client.killCount = 0;
        t.client.killLastMs = 0;
      }
    }
    const i = res.tokens.indexOf(t);
    if (i >= 0) res.tokens.splice(i, 1);
    if (res.tokens.length > 0) return 0;
    return this.releaseResource(res, false, renameTo);
  }

  /**
   * Releases a resource no local client holds any more. `killed`: its holder died while the
   * lockspace was killing pids (failure or rem_lockspace): the token is space-dead and freed
   * without I/O, so the lease stays owned on disk (daemon.md §4).
   */
  private async releaseResource(res: Resource, killed = false, renameTo?: string): Promise<number> {
    res.list = 'rem';
    if (res.ls.spaceDead || res.ls.list === 'rem' || (killed && res.ls.killingPids)) {
      // lockspace lost or going away: the lease is abandoned, never written (daemon.md §4)
      res.lease.abandon();
      this.resources.delete(res.key);
      return 0;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        if (res.lease.shHeld) await releaseSh(res.lease);
        else await res.lease.release({ renameTo });
        this.resources.delete(res.key);
        return 0;
      } catch (err) {
        const rv = errorCode(err);
        this.log.error(`s${res.ls.spaceId}:r${res.resId} release error ${rv}`);
        // timeouts are retried after io, then every 2·io (daemon.md §9); other errors give up
        if (rv !== SanlkCode.SANLK_AIO_TIMEOUT || attempt >= 10 || (res.ls.list as string) === 'rem') {
          this.resources.delete(res.key);
          return rv;
        }
        await systemClock.sleep((attempt === 0 ? 1 : 2) * res.ls.ioTimeout * 1000);
      }
    }
  }

  async release(req: Request): Promise<Buffer> {
    const { h } = req;
    const target = req.target;
    assert(target);
    if (h.cmdFlags & ReleaseFlag.ORPHAN) {
      const wr = req.resources[0];
      if (!wr) return encodeReplyHeader(h, -Errno.EINVAL);
      let n = 0;
      for (const r of [...this.resources.values()]) {
        if (r.list !== 'orphan' || r.ls.name !== wr.lockspaceName) continue;
        if (wr.name && r.name !== wr.name) continue;
        r.tokens.length = 0;
        await this.releaseResource(r);
        n++;
      }
      return encodeReplyHeader(h, n);
    }
    const mine = this.tokensOf(target);
    if (h.cmdFlags & ReleaseFlag.ALL) {
      let rv = 0;
      for (const t of [...mine]) {
        const r = await this.releaseToken(t);
        if (r < 0) rv = r;
      }
      return encodeReplyHeader(h, rv);
    }
    if (h.cmdFlags & ReleaseFlag.RENAME) {
      // two R: the first names the lease to release, the second only carries its new name,
      // written into the freed leader (sanlock's cmd_release reads exactly two)
      const [wr, nw] = req.resources;
      if (!wr || !nw) return encodeReplyHeader(h, -Errno.ENOTCONN);
      const t = mine.find((x) => x.res.ls.name === wr.lockspaceName && x.res.name === wr.name);
      if (!t) return encodeReplyHeader(h, -1);
      return encodeReplyHeader(h, await this.releaseToken(t, nw.name));
    }
    let rv = 0;
    for (const wr of req.resources) {
      const t = mine.find((x) => x.res.ls.name === wr.lockspaceName && x.res.name === wr.name);
      if (!t) {
        rv = -1;
        continue;
      }
      const r = await this.releaseToken(t);
      if (r < 0) rv = r;
    }
    return encodeReplyHeader(h, rv);
  }

  /** The client's socket closed: release its tokens (persistent ones become orphans). */
  clientDead(c: Client): void {
    const tokens = [...this.tokensOf(c)];
    c.tokens = [];
    void (async () => {
      for (const t of tokens) {
        t.client = undefined;
        const res = t.res;
        if (t.persistent && !res.ls.spaceDead && res.tokens.length === 1) {
          res.list = 'orphan';
          res.orphanPid = c.pid;
          continue;
        }
        const i = res.tokens.indexOf(t);
        if (i >= 0) res.tokens.splice(i, 1);
        if (res.tokens.length === 0) await this.releaseResource(res, true);
      }
    })();
  }

  // ------------------------------------------------------------ inquire, convert

  async inquire(req: Request): Promise<Buffer[]> {
    const target = req.target;
    assert(target);
    // the target's connection closed after this command was accepted for it: its tokens are
    // about to be released, so there is no state to report (sanlock's cmd_inquire)
    if (target.pidDead) return [encodeInquireReply(req.h, -Errno.ESTALE, 0, null)];
    const mine = this.tokensOf(target);
    if (mine.length === 0) return [encodeInquireReply(req.h, 0, 0, null)];
    const strs = mine.map((t) => resourceString(t.res, t.res.shared));
    if (strs.some((s) => s.includes(' '))) return [encodeInquireReply(req.h, -Errno.ELIBSCN, mine.length, null)];
    if (strs.some((s) => s.length > 4399)) return [encodeInquireReply(req.h, -Errno.ELIBBAD, mine.length, null)];
    return [encodeInquireReply(req.h, 0, mine.length, strs.join(' '))];
  }

  async convert(req: Request): Promise<Buffer> {
    const target = req.target;
    assert(target);
    const wr = req.resources[0];
    if (!wr) return encodeReplyHeader(req.h, -Errno.EINVAL);
    const t = this.tokensOf(target).find((x) => x.res.ls.name === wr.lockspaceName && x.res.name === wr.name);
    if (!t) return encodeReplyHeader(req.h, -Errno.ENOENT);
    const res = t.res;
    const toShared = (wr.flags & ResFlag.SHARED) !== 0;
    if (res.shared === toShared) return encodeReplyHeader(req.h, -Errno.EALREADY);
    try {
      if (toShared) {
        await convertExToSh(res.lease);
        res.shared = true;
      } else {
        if (res.tokens.length > 1) return encodeReplyHeader(req.h, -Errno.EAGAIN);
        // Without this, a local SH acquire during the disk conversion joined a lease that
        // was about to become EX (two holders, one of them exclusive).
        res.converting = true;
        try {
          await convertShToEx(res.lease, { ownerNoWait: (req.h.cmdFlags & AcquireFlag.OWNER_NOWAIT) !== 0 });
        } finally {
          res.converting = false;
        }
        assert(res.tokens.length <= 1, 'a local SH holder joined during convert to EX');
        res.shared = false;
        res.lver = res.lease.leader?.lver ?? res.lver;
      }
    } catch (err) {
      return encodeReplyHeader(req.h, errorCode(err));
    }
    return encodeReplyHeader(req.h, 0);
  }

  // ------------------------------------------------------------ requests and examine

  async request(req: Request): Promise<Buffer> {
    const wr = req.resources[0];
    assert(wr);
    const ls = this.lockspaces.findJoined(wr.lockspaceName);
    if (!ls?.delta) return encodeReplyHeader(req.h, -Errno.ENOSPC);
    try {
      const lease = await this.newLease(ls, ls.name, wr.name, wr.disks);
      const dl = ls.delta;
      await requestLease(lease, { lver: wr.lver, forceMode: req.h.data, nextLver: (req.h.cmdFlags & RequestFlag.NEXT_LVER) !== 0 && wr.lver === 0 }, (owner) =>
        dl.setRequestBit(owner),
      );
    } catch (err) {
      return encodeReplyHeader(req.h, errorCode(err));
    }
    return encodeReplyHeader(req.h, 0);
  }

  /** Reads the request record of held leases of a lockspace (or one) and acts on them. */
  examine(lsName: string, resName?: string): void {
    for (const r of this.resources.values()) {
      if (r.list !== 'held' || r.ls.name !== lsName) continue;
      if (resName !== undefined && r.name !== resName) continue;
      void this.examineOne(r);
    }
  }

  private async examineOne(r: Resource): Promise<void> {
    let d: RequestDecision;
    try {
      d = await examineRequest(r.lease);
    } catch (err) {
      this.log.error(`s${r.ls.spaceId}:r${r.resId} examine error ${errorCode(err)}`);
      return;
    }
    if (d.action === 'none') return;
    for (const t of r.tokens) {
      const c = t.client;
      if (!c) continue;
      let sig: number;
      if (d.action === 'force') sig = c.restricted & RESTRICT_SIGKILL ? SIGTERM : SIGKILL;
      else if (c.killpath) sig = 100;
      else sig = c.restricted & RESTRICT_SIGTERM ? SIGKILL : SIGTERM;
      this.log.error(`s${r.ls.spaceId}:r${r.resId} do_request ${c.pid} flags 0 ${r.ls.name}:${r.name}`);
      this.log.error(`s${r.ls.spaceId} kill ${c.pid} sig ${sig} count ${c.killCount + 1}`);
      this.daemon.signalClient(c, sig);
    }
  }

  async examineCmd(req: Request, which: 'lockspace' | 'resource'): Promise<Buffer> {
    if (which === 'lockspace') {
      const name = req.payload.toString('latin1', 0, 48).replace(/\0.*$/s, '');
      const path = req.payload.toString('latin1', 64, 64 + 1024).replace(/\0.*$/s, '');
      if (!name || !path) return encodeReplyHeader(req.h, -Errno.EINVAL);
      this.examine(name);
    } else {
      const wr = req.resources[0];
      assert(wr);
      this.examine(wr.lockspaceName, wr.name);
    }
    return encodeReplyHeader(req.h, 0);
  }

  // ------------------------------------------------------------ lvb, killpath

  private heldRes(wr: SanlkResource): Resource | undefined {
    const r = this.resources.get(resKey(wr.lockspaceName, wr.name));
    return r && r.list === 'held' ? r : undefined;
  }

  async setLvb(req: Request): Promise<Buffer> {
    const wr = req.resources[0];
    assert(wr);
    const r = this.heldRes(wr);
    if (!r) return encodeReplyHeader(req.h, -Errno.ENOENT);
    if (!r.lvb) return encodeReplyHeader(req.h, -Errno.EINVAL);
    if (req.extra.length > r.lease.geometry.sectorSize) return encodeReplyHeader(req.h, -Errno.E2BIG);
    r.lease.setLvb(req.extra);
    return encodeReplyHeader(req.h, 0);
  }

  async getLvb(req: Request): Promise<Buffer[]> {
    const wr = req.resources[0];
    assert(wr);
    const r = this.heldRes(wr);
    if (!r) return [encodeReplyHeader(req.h, -Errno.ENOENT)];
    if (!r.lvb || !r.lease.lvb) return [encodeReplyHeader(req.h, -Errno.EINVAL)];
    const ss = r.lease.geometry.sectorSize;
    const len = req.h.data2 > 0 ? Math.min(req.h.data2, ss) : ss;
    const data = Buffer.alloc(len);
    r.lease.lvb.copy(data, 0, 0, len);
    return [encodeGetLvbReply(req.h, 0, data)];
  }

  async killpath(req: Request): Promise<Buffer> {
    const target = req.target;
    assert(target);
    const k = requestKillpath(req.payload);
    target.killpath = k.path;
    target.killargs = k.args;
    target.killpathPidFlag = (req.h.cmdFlags & KillpathFlag.PID) !== 0;
    return encodeReplyHeader(req.h, 0);
  }

  // ------------------------------------------------------------ disk-only commands

  private async withDisks<T>(disks: SanlkDisk[], fn: (ds: Disk[]) => Promise<T>): Promise<T> {
    const ctx = new IoContext({ name: 'res-cmd' });
    try {
      const ds: Disk[] = [];
      for (const d of disks) {
        if (!d.path) throw new SanlockError(-Errno.ENODEV, 'empty path');
        try {
          ds.push(await ctx.open(d.path));
        } catch {
          throw new SanlockError(-Errno.ENODEV, `cannot open ${d.path}`);
        }
      }
      return await fn(ds);
    } finally {
      await ctx.close().catch(() => {});
    }
  }

  async writeResource(req: Request): Promise<Buffer> {
    const wr = req.resources[0];
    assert(wr);
    try {
      const g = sizeFlags(wr.flags) ?? defaultGeometry(512);
      const ms = this.daemon.cfg.writeInitIoTimeout * 1000;
      await this.withDisks(wr.disks, async (ds) => {
        const img = buildResourceInit({
          geometry: g,
          spaceName: wr.lockspaceName,
          resourceName: wr.name,
          numHosts: req.h.data,
          clearTimestamp: req.h.cmdFlags & WriteResFlag.CLEAR ? systemClock.monotonicSeconds() : undefined,
        });
        for (let i = 0; i < ds.length; i++) await ds[i]!.write(wr.disks[i]!.offset, img, ms);
      });
    } catch (err) {
      return encodeReplyHeader(req.h, errorCode(err));
    }
    return encodeReplyHeader(req.h, 0);
  }

  /** READ_RESOURCE / READ_RESOURCE_OWNERS: leader (and owners) from disk, no lockspace needed. */
  async readResource(req: Request, owners: boolean): Promise<Buffer> {
    const wr = req.resources[0];
    assert(wr);
    const out = (rv: number, r: SanlkResource, hosts: SanlkHost[] = []): Buffer =>
      owners ? encodeReadResourceOwnersReply(req.h, rv, r, hosts) : encodeReadResourceReply(req.h, rv, r);
    try {
      return await this.withDisks(wr.disks, async (ds) => {
        const first = await ds[0]!.read(wr.disks[0]!.offset, 4096, DEFAULT_IO_TIMEOUT * 1000).catch(async () => ds[0]!.read(wr.disks[0]!.offset, 512, DEFAULT_IO_TIMEOUT * 1000));
        const l = decodeLeader(first, 0);
        // Same checks, same order as any leader read: magic, version, names, checksum.
        const bad = verifyLeader(first, 0, {
          magic: PAXOS_DISK_MAGIC,
          version: PAXOS_DISK_VERSION,
          spaceName: wr.lockspaceName || undefined,
          resourceName: wr.name || undefined,
        });
        if (bad !== 0) return out(bad, wr);
        const flags = alignSizeToFlag(alignFlagToSize(l.flags)) | sectorSizeToFlag(l.sectorSize === 4096 ? 4096 : 512);
        const r: SanlkResource = { ...wr, lockspaceName: l.spaceName, name: l.resourceName, lver: l.lver, flags };
        if (!owners) return out(0, r);
        const lease = new PaxosLease(
          {
            hostId: 1,
            generation: 0,
            ioTimeout: DEFAULT_IO_TIMEOUT,
            clock: systemClock,
            random,
            lockspace: { readDeltaRecord: async () => Promise.reject(new SanlockError(SanlkCode.SANLK_ACQUIRE_LOCKSPACE)), hostSnapshot: () => undefined },
          },
          {
            spaceName: l.spaceName,
            resourceName: l.resourceName,
            disks: ds.map((d, i) => ({ disk: d, offset: wr.disks[i]!.offset })),
            sectorSize: l.sectorSize,
            alignSize: sizeFlags(flags)?.alignSize,
          },
        );
        const rd = await lease.read();
        const hosts: SanlkHost[] = [];
        if (rd.leader.timestamp !== 0 && rd.leader.ownerId) {
          hosts.push({ hostId: rd.leader.ownerId, generation: rd.leader.ownerGeneration, timestamp: rd.leader.timestamp, ioTimeout: 0, flags: 0 });
        }
        let anyShared = false;
        rd.modes.forEach((m, q) => {
          if (!(m.flags & MBLOCK_SHARED)) return;
          anyShared = true;
          hosts.push({ hostId: q + 1, generation: m.generation, timestamp: 0, ioTimeout: 0, flags: 0 });
        });
        if (anyShared) r.flags |= ResFlag.SHARED;
        return out(0, r, hosts);
      });
    } catch (err) {
      return out(errorCode(err), wr);
    }
  }

  // ------------------------------------------------------------ lockspace interplay, status

  clientsUsing(lsName: string): Client[] {
    const out = new Set<Client>();
    for (const r of this.resources.values()) {
      if (r.ls.name !== lsName) continue;
      for (const t of r.tokens) if (t.client && !t.client.pidDead) out.add(t.client);
    }
    return [...out];
  }

  hasResources(lsName: string): boolean {
    for (const r of this.resources.values()) if (r.ls.name === lsName) return true;
    return false;
  }

  orphanCount(lsName: string): number {
    let n = 0;
    for (const r of this.resources.values()) if (r.ls.name === lsName && r.list === 'orphan') n++;
    return n;
  }

  /** A removed lockspace: its leases are abandoned in memory (tokens of killed clients, orphans). */
  dropSpace(lsName: string): void {
    for (const r of [...this.resources.values()]) {
      if (r.ls.name !== lsName) continue;
      r.lease.abandon();
      for (const t of r.tokens) {
        if (!t.client) continue;
        const list = this.tokensOf(t.client);
        const i = list.indexOf(t);
        if (i >= 0) list.splice(i, 1);
      }
      this.resources.delete(r.key);
    }
    for (const [ls, e] of this.contexts) {
      if (ls.name !== lsName) continue;
      this.contexts.delete(ls);
      void e.ctx.close().catch(() => {});
    }
  }

  statusRecords(): Buffer[] {
    const out: Buffer[] = [];
    const lists: ResList[] = ['held', 'add', 'rem', 'orphan'];
    for (const list of lists) {
      for (const r of this.resources.values()) {
        if (r.list !== list) continue;
        const rec = (pid: number, tokenId: number): Buffer => {
          const text =
            `list=${list} flags=${(r.shared ? 1 : 0).toString(16)} sector_size=${r.lease.geometry.sectorSize} align_size=${r.lease.geometry.alignSize} ` +
            `lver=${r.lver} reused=0 res_id=${r.resId} token_id=${tokenId}`;
          const w = r.wire();
          return encodeStateRecord({ type: StateType.RESOURCE, flags: 0, data32: pid, data64: r.shared ? 0 : r.lver, name: r.name }, text, encodeResource(w, true));
        };
        if (list === 'held' || list === 'add') for (const t of r.tokens) out.push(rec(t.client?.pid ?? -1, t.tokenId));
        else out.push(rec(list === 'orphan' ? r.orphanPid : -1, 0));
      }
    }
    return out;
  }
}

export function installResources(daemon: Daemon, lockspaces: LockspaceManager): ResourceManager {
  const m = new ResourceManager(daemon, lockspaces);
  daemon.handle(Cmd.ACQUIRE, (r) => m.acquire(r));
  daemon.handle(Cmd.RELEASE, (r) => m.release(r));
  daemon.handle(Cmd.INQUIRE, (r) => m.inquire(r));
  daemon.handle(Cmd.CONVERT, (r) => m.convert(r));
  daemon.handle(Cmd.KILLPATH, (r) => m.killpath(r));
  daemon.handle(Cmd.REQUEST, (r) => m.request(r));
  daemon.handle(Cmd.EXAMINE_LOCKSPACE, (r) => m.examineCmd(r, 'lockspace'));
  daemon.handle(Cmd.EXAMINE_RESOURCE, (r) => m.examineCmd(r, 'resource'));
  daemon.handle(Cmd.SET_LVB, (r) => m.setLvb(r));
  daemon.handle(Cmd.GET_LVB, (r) => m.getLvb(r));
  daemon.handle(Cmd.WRITE_RESOURCE, (r) => m.writeResource(r));
  daemon.handle(Cmd.READ_RESOURCE, (r) => m.readResource(r, false));
  daemon.handle(Cmd.READ_RESOURCE_OWNERS, (r) => m.readResource(r, true));
  lockspaces.resources = {
    clientsUsing: (n) => m.clientsUsing(n),
    hasResources: (n) => m.hasResources(n),
    orphanCount: (n) => m.orphanCount(n),
    dropSpace: (n) => m.dropSpace(n),
    examine: (n, r) => m.examine(n, r),
  };
  daemon.hooks = {
    ...daemon.hooks,
    resourceStatus: () => m.statusRecords(),
    clientDead: (c) => m.clientDead(c),
  };
  return m;
}
