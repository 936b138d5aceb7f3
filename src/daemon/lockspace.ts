// Lockspaces in the daemon (daemon.md §4–6, protocol.md §4.4, §8): add (sync/async), the
// per-lockspace renewal loop on its own timers and its own I/O context (so a hung disk of one
// lockspace never delays another's renewals), own-lease checks and the kill sequence,
// removal, host states, events, renewal history, set_config.
import assert from 'node:assert';
import { Errno, SanlkCode, SanlockError, errorCode } from '../codes.js';
import { DeltaLease, isFatalRenewalError } from '../lease/delta-lease.js';
import { HostStateTracker } from '../lease/host-state.js';
import { DEFAULT_IO_TIMEOUT, idRenewalFailSeconds, idRenewalWarnSeconds } from '../lease/timeouts.js';
import { geometryFor, defaultGeometry } from '../ondisk/geometry.js';
import { buildLockspaceInit } from '../ondisk/init.js';
import { DELTA_DISK_MAGIC, decodeLeader, verifyLeader, DELTA_DISK_VERSION } from '../ondisk/leader.js';
import type { Disk } from '../storage/disk.js';
import type { DirectDisk } from '../storage/direct-disk.js';
import { IoContext } from '../storage/io-context.js';
import { wrapWithConfiguredFaults } from '../storage/fault-config.js';
import type { Geometry } from '../ondisk/geometry.js';
import type { Client } from './clients.js';
import { RESTRICT_SIGKILL, RESTRICT_SIGTERM } from './clients.js';
import { monotime, systemClock } from './clock.js';
import type { Daemon, Request } from './server.js';
import { createWatchdog, type LockspaceWatchdog, watchdogModeFor } from './watchdog/watchdog.js';
import { metrics } from './metrics/sink.js';
import {
  AddLsFlag,
  alignFlagToSize,
  Cmd,
  InqLsFlag,
  LsFlag,
  RemLsFlag,
  SetEventFlag,
  sectorFlagToSize,
  sectorSizeToFlag,
  encodeGetHostsReply,
  encodeGetLockspacesReply,
  encodeReadLockspaceReply,
  encodeReplyHeader,
  encodeStateRecord,
  encodeStreamHeader,
} from '../protocol/commands.js';
import { requestHostEvent, requestLockspace } from '../protocol/request-structs.js';
import { encodeEventCb, encodeLockspace, LOCKSPACE_SIZE, type SanlkLockspace, StateType } from '../protocol/structs.js';

const MAX_EVENT_FDS = 32;
const EVENT_BACKLOG_MAX = 64 * 1024;
const KILL_COUNT_MAX = 100;
const SIGTERM = 15;
const SIGKILL = 9;

/** Disk wrapper that remembers how long the last read and write took (renewal history). */
class TimedDisk implements Disk {
  lastReadMs = 0;
  lastWriteMs = 0;
  constructor(readonly inner: Disk) {}
  get path(): string {
    return this.inner.path;
  }
  async read(offset: number, len: number, timeoutMs: number): Promise<Buffer> {
    const t = systemClock.monotonicMs();
    try {
      return await this.inner.read(offset, len, timeoutMs);
    } finally {
      this.lastReadMs = systemClock.monotonicMs() - t;
    }
  }
  async write(offset: number, buf: Buffer, timeoutMs: number): Promise<void> {
    const t = systemClock.monotonicMs();
    try {
      await this.inner.write(offset, buf, timeoutMs);
    } finally {
      this.lastWriteMs = systemClock.monotonicMs() - t;
    }
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface RenewalRecord {
  timestamp: number;
  readMs: number;
  writeMs: number;
  nextTimeouts: number;
  nextErrors: number;
}

export type LsList = 'add' | 'spaces' | 'rem';

export class Lockspace {
  list: LsList = 'add';
  ctx: IoContext;
  disk: TimedDisk | undefined;
  delta: DeltaLease | undefined;
  hosts: HostStateTracker | undefined;
  /** this lockspace's hold on the host watchdog (wdmd, device, or none with -w 0) */
  wd: LockspaceWatchdog | undefined;
  hostsReady = false;
  generation = 0;
  renewFail = false;
  spaceDead = false;
  killingPids = false;
  /** SIGKILL at once (rem_lockspace / forced shutdown) rather than the graceful sequence */
  removeRequested = false;
  externalUsed = false;
  usedByOrphans = false;
  corruptResult = 0;
  acquireLastResult = 0;
  renewalLastResult = 0;
  acquireLastAttempt = 0;
  acquireLastSuccess = 0;
  renewalLastAttempt = 0;
  renewalLastSuccess = 0;
  sectorSize = 0;
  alignSize = 0;
  maxHosts = 0;
  readonly history: RenewalRecord[] = [];
  readonly eventClients: Client[] = [];
  readonly abort = new AbortController();
  renewLoopDone: Promise<void> | undefined;
  /** resolves with the add result (0 or negative) */
  joined: Promise<number>;
  private resolveJoined!: (rv: number) => void;
  /** resolves when the lockspace is freed */
  freed: Promise<void>;
  resolveFreed!: () => void;
  warnedAt = 0;

  constructor(
    readonly spaceId: number,
    readonly name: string,
    readonly hostId: number,
    readonly path: string,
    readonly offset: number,
    readonly ioTimeout: number,
  ) {
    this.ctx = new IoContext({ name, maxWorkers: 2 });
    this.joined = new Promise((r) => {
      this.resolveJoined = r;
    });
    this.freed = new Promise((r) => {
      this.resolveFreed = r;
    });
  }

  finishJoin(rv: number): void {
    this.resolveJoined(rv);
  }

  get lastSuccess(): number {
    return this.delta?.lastSuccess ?? 0;
  }

  wire(flags = 0): SanlkLockspace {
    return { name: this.name, hostId: this.hostId, flags, hostIdDisk: { path: this.path, offset: this.offset, pad1: 0, pad2: 0 } };
  }

  matches(w: SanlkLockspace): boolean {
    return w.name === this.name && w.hostIdDisk.path === this.path && w.hostIdDisk.offset === this.offset && (w.hostId === 0 || w.hostId === this.hostId);
  }
}

/** What the resources module tells the lockspaces about leases (set by installResources). */
export interface ResourceView {
  /** registered clients holding at least one token in this lockspace */
  clientsUsing(lsName: string): Client[];
  /** any resource of the lockspace on the held/add/rem/orphan lists */
  hasResources(lsName: string): boolean;
  /** number of orphans of the lockspace */
  orphanCount(lsName: string): number;
  /** drops orphans and cached resources of a removed lockspace (no disk I/O) */
  dropSpace(lsName: string): void;
  /** examine request records of held leases of the lockspace (after a request bit was seen) */
  examine(lsName: string, resName?: string): void;
  /** a client's kill state was reset because it released everything */
}

export class LockspaceManager {
  readonly spaces: Lockspace[] = [];
  private nextSpaceId = 1;
  resources: ResourceView = {
    clientsUsing: () => [],
    hasResources: () => false,
    orphanCount: () => 0,
    dropSpace: () => {},
    examine: () => {},
  };
  private killTimer: NodeJS.Timeout | undefined;

  constructor(readonly daemon: Daemon) {}

  private get log() {
    return this.daemon.log;
  }

  /** A lockspace a resource may use: joined and not failed. */
  findJoined(name: string): Lockspace | undefined {
    return this.spaces.find((s) => s.list === 'spaces' && s.name === name);
  }

  findByName(name: string): Lockspace | undefined {
    return this.spaces.find((s) => s.name === name);
  }

  count(): number {
    return this.spaces.length;
  }

  // ------------------------------------------------------------ add

  async add(req: Request): Promise<Buffer> {
    const { h } = req;
    const w = requestLockspace(req.payload);
    if (!w.name || w.hostId === 0 || !w.hostIdDisk.path) return encodeReplyHeader(h, -Errno.EINVAL);
    for (const s of this.spaces) {
      if (s.name === w.name && s.path === w.hostIdDisk.path && s.offset === w.hostIdDisk.offset && s.hostId === w.hostId) {
        if (s.list === 'spaces') return encodeReplyHeader(h, -Errno.EEXIST);
        if (s.list === 'add') return encodeReplyHeader(h, -Errno.EINPROGRESS);
        return encodeReplyHeader(h, -Errno.EAGAIN);
      }
      if (s.name === w.name) return encodeReplyHeader(h, -Errno.EINVAL);
      if (s.path === w.hostIdDisk.path && s.offset === w.hostIdDisk.offset) return encodeReplyHeader(h, -Errno.EINVAL);
    }
    const io = h.data > 0 ? h.data : DEFAULT_IO_TIMEOUT;
    if (io > 0xff) return encodeReplyHeader(h, -Errno.EINVAL);
    const ls = new Lockspace(this.nextSpaceId++, w.name, w.hostId, w.hostIdDisk.path, w.hostIdDisk.offset, io);
    this.spaces.push(ls);
    this.log.warn(`s${ls.spaceId} lockspace ${ls.name}:${ls.hostId}:${ls.path}:${ls.offset}`);
    void this.join(ls);
    if (h.cmdFlags & AddLsFlag.ASYNC) return encodeReplyHeader(h, 0);
    const rv = await ls.joined;
    this.log.debug(`cmd_add_lockspace ${req.client.ci},${req.client.fd} done ${rv}`);
    return encodeReplyHeader(h, rv);
  }

  private async join(ls: Lockspace): Promise<void> {
    ls.acquireLastAttempt = monotime();
    let rv = 0;
    try {
      // the watchdog is reached before the delta acquire: without it we must not join (-203)
      const sid = `s${ls.spaceId} `;
      ls.wd = createWatchdog(watchdogModeFor(this.daemon.cfg.useWatchdog), {
        log: { error: (m) => this.log.error(sid + m), warn: (m) => this.log.warn(sid + m), debug: (m) => this.log.debug(sid + m) },
      });
      await ls.wd.connect();
      let disk: DirectDisk;
      try {
        disk = await ls.ctx.open(ls.path);
      } catch (err) {
        throw new SanlockError(-Errno.ENODEV, `open ${ls.path}: ${(err as Error).message}`);
      }
      // Test-only fault injection (SANLOCK_TS_FAULT_FILE); the disk itself when unset.
      ls.disk = new TimedDisk(metrics.disk(wrapWithConfiguredFaults(disk, ls.path), ls.name, 'renewal'));
      ls.delta = new DeltaLease({
        disk: ls.disk,
        offset: ls.offset,
        spaceName: ls.name,
        hostId: ls.hostId,
        hostName: this.daemon.hostName,
        ioTimeout: ls.ioTimeout,
        clock: systemClock,
        setBitmapSeconds: this.daemon.cfg.setBitmapSeconds || undefined,
      });
      const g = await ls.delta.loadGeometry();
      ls.sectorSize = g.sectorSize;
      ls.alignSize = g.alignSize;
      ls.maxHosts = g.maxHosts;
      this.log.debug(`s${ls.spaceId} delta_acquire begin ${ls.name}:${ls.hostId}`);
      ls.generation = await ls.delta.acquire(ls.abort.signal);
      this.log.debug(`s${ls.spaceId} delta_acquire done ${ls.hostId} ${ls.generation} ${ls.delta.lastSuccess}`);
      try {
        // armed before any resource lease can be acquired in this lockspace
        await ls.wd.arm({ spaceName: ls.name, hostId: ls.hostId, ioTimeout: ls.ioTimeout, renewalTs: ls.delta.lastSuccess });
      } catch (err) {
        await ls.delta.release().catch(() => {});
        throw err;
      }
    } catch (err) {
      rv = ls.abort.signal.aborted ? -1 : errorCode(err);
      if (!(err instanceof SanlockError) && !ls.abort.signal.aborted) this.log.error(`s${ls.spaceId} add_lockspace failed: ${(err as Error).stack ?? err}`);
    }
    ls.acquireLastResult = rv === 0 ? 1 : rv;
    if (rv < 0) {
      this.log.error(`s${ls.spaceId} add_lockspace fail result ${rv}`);
      await ls.wd?.close().catch(() => {});
      const i = this.spaces.indexOf(ls);
      if (i >= 0) this.spaces.splice(i, 1);
      await ls.ctx.close().catch(() => {});
      ls.resolveFreed();
      ls.finishJoin(rv);
      return;
    }
    assert(ls.delta);
    ls.acquireLastSuccess = ls.delta.lastSuccess;
    ls.hosts = new HostStateTracker({
      ourHostId: ls.hostId,
      ioTimeout: ls.ioTimeout,
      spaceName: ls.name,
      setBitmapSeconds: this.daemon.cfg.setBitmapSeconds || undefined,
    });
    this.pushHistory(ls, { timestamp: ls.delta.lastSuccess, readMs: 0, writeMs: 0, nextTimeouts: 0, nextErrors: 0 });
    ls.list = 'spaces';
    ls.renewLoopDone = this.renewLoop(ls);
    ls.finishJoin(0);
  }

  private pushHistory(ls: Lockspace, r: RenewalRecord): void {
    const max = this.daemon.cfg.renewalHistorySize;
    if (max <= 0) return;
    ls.history.push(r);
    while (ls.history.length > max) ls.history.shift();
  }

  /** sanlock's lockspace thread: renew every 2N (1 s checks, 0.5 s pause), retry 0.5 s after failures. */
  private async renewLoop(ls: Lockspace): Promise<void> {
    const dl = ls.delta;
    assert(dl && ls.hosts && ls.disk);
    const signal = ls.abort.signal;
    try {
      for (;;) {
        while (!dl.renewalDue()) await systemClock.sleep(1000, signal);
        await systemClock.sleep(500, signal);
        for (;;) {
          ls.renewalLastAttempt = monotime();
          try {
            const area = await dl.renew();
            ls.renewalLastResult = 1;
            ls.renewalLastSuccess = dl.lastSuccess;
            if (this.daemon.cfg.debugRenew) this.log.debug(`s${ls.spaceId} renewed ${dl.lastSuccess}`);
            this.pushHistory(ls, { timestamp: dl.lastSuccess, readMs: ls.disk.lastReadMs, writeMs: ls.disk.lastWriteMs, nextTimeouts: 0, nextErrors: 0 });
            metrics.renewal(ls.name, 0, ls.disk.lastReadMs, ls.disk.lastWriteMs);
            // the new expiry (renewal + 8·io) goes to the watchdog only after a successful renewal
            if (ls.wd) await ls.wd.refresh(dl.lastSuccess);
            try {
              this.afterRenewal(ls, area);
            } finally {
              // nothing keeps a view of the area (the tracker copies what it keeps): one pooled
              // buffer serves the renewals of all lockspaces instead of 1 MiB pinned by each
              dl.releaseArea();
            }
            break;
          } catch (err) {
            if (signal.aborted) return;
            const rv = errorCode(err);
            ls.renewalLastResult = rv;
            metrics.renewal(ls.name, rv, ls.disk.lastReadMs, ls.disk.lastWriteMs);
            const last = ls.history[ls.history.length - 1];
            if (last) {
              if (rv === SanlkCode.SANLK_AIO_TIMEOUT) last.nextTimeouts++;
              else last.nextErrors++;
            }
            this.log.error(`s${ls.spaceId} renewal error ${rv} delta_length ${monotime() - ls.renewalLastAttempt} last_success ${dl.lastSuccess}`);
            if (isFatalRenewalError(rv)) {
              ls.corruptResult = rv;
              return;
            }
            await systemClock.sleep(500, signal);
          }
        }
      }
    } catch {
      // aborted: the lockspace is being removed
    }
  }

  /** After each successful renewal: other hosts' states, events to us, request bits. */
  private afterRenewal(ls: Lockspace, area: Buffer): void {
    assert(ls.hosts);
    const now = monotime();
    const u = ls.hosts.update(area, { sectorSize: ls.sectorSize, maxHosts: ls.maxHosts }, now);
    ls.hostsReady = true;
    for (const s of ls.hosts.hosts(now)) {
      const slot = ls.hosts.slot(s.hostId);
      if (slot && slot.lastLive === now && slot.firstCheck === now && s.hostId !== ls.hostId) {
        this.log.debug(`s${ls.spaceId} host ${s.hostId} ${s.generation} ${s.timestamp} ${slot.name}`);
      }
    }
    for (const ev of u.events) {
      const cb = encodeEventCb({ hostId: ls.hostId, generation: ev.generation, event: ev.event, data: ev.data }, ev.fromHostId, ev.fromGeneration);
      for (const c of [...ls.eventClients]) {
        // sanlock sends with MSG_DONTWAIT and drops an fd that fails: a reader that stopped
        // reading must not make us buffer events without limit
        if (!c.sock || c.sock.destroyed || !c.sock.writable || c.sock.writableLength > EVENT_BACKLOG_MAX) {
          this.dropEventClient(ls, c);
          continue;
        }
        c.sock.write(cb);
      }
    }
    if (u.examineRequests) this.resources.examine(ls.name);
  }

  // ------------------------------------------------------------ own lease check and recovery

  /** Once a second from the main loop (daemon.md §5.1). */
  tick(): void {
    const now = monotime();
    for (const ls of this.spaces) {
      if (ls.list !== 'spaces' || !ls.delta) continue;
      if (ls.renewFail) continue;
      const gap = now - ls.delta.lastSuccess;
      if (ls.corruptResult || gap >= idRenewalFailSeconds(ls.ioTimeout)) {
        this.log.error(`s${ls.spaceId} check_our_lease failed ${gap}`);
        ls.renewFail = true;
        ls.spaceDead = true;
        ls.killingPids = true;
        this.log.error(`s${ls.spaceId} set killing_pids check ${ls.corruptResult} remove 0`);
        this.startKilling();
      } else if (gap >= idRenewalWarnSeconds(ls.ioTimeout)) {
        this.log.error(`s${ls.spaceId} check_our_lease warning ${gap} last_success ${ls.delta.lastSuccess}`);
      }
    }
  }

  private startKilling(): void {
    if (this.killTimer) return;
    this.killTimer = setInterval(() => this.killPids(), 200);
    this.killPids();
  }

  /** daemon.md §5.2: signal clients using killing lockspaces; free lockspaces whose clients are gone. */
  private killPids(): void {
    const now = monotime();
    let any = false;
    for (const ls of [...this.spaces]) {
      if (!ls.killingPids) continue;
      any = true;
      const users = this.resources.clientsUsing(ls.name);
      if (users.length === 0) {
        if (ls.externalUsed && !ls.removeRequested) continue;
        if (ls.usedByOrphans && this.resources.orphanCount(ls.name) > 0 && !ls.removeRequested) continue;
        this.log.error(`s${ls.spaceId} all pids clear`);
        ls.killingPids = false;
        void this.stopLockspace(ls);
        continue;
      }
      for (const c of users) this.killClient(ls, c, now);
    }
    if (!any && this.killTimer) {
      clearInterval(this.killTimer);
      this.killTimer = undefined;
    }
  }

  private killClient(ls: Lockspace, c: Client, now: number): void {
    if (c.killCount >= KILL_COUNT_MAX) {
      if (c.killCount === KILL_COUNT_MAX) {
        // after 100 attempts the client is stuck; the lockspace stays and the watchdog must act
        c.killCount++;
        this.log.error(`s${ls.spaceId} killing pids stuck ${c.pid}`);
      }
      return;
    }
    const nowMs = systemClock.monotonicMs();
    if (c.killLastMs && nowMs - c.killLastMs < 1000) return;
    const failAt = ls.lastSuccess + idRenewalFailSeconds(ls.ioTimeout);
    const grace = this.daemon.cfg.killGraceSeconds;
    let sig: number;
    if (ls.removeRequested) sig = SIGKILL;
    else if (now < failAt + grace) {
      if (grace > 0 && c.killpath) {
        if (c.killCount > 0) return; // killpath runs once, then nothing until grace ends
        sig = 100;
      } else sig = SIGTERM;
    } else sig = SIGKILL;
    if (sig === SIGKILL && c.restricted & RESTRICT_SIGKILL) sig = SIGTERM;
    else if (sig === SIGTERM && c.restricted & RESTRICT_SIGTERM) sig = SIGKILL;
    c.killCount++;
    c.killLastMs = nowMs;
    this.log.error(`s${ls.spaceId} kill ${c.pid} sig ${sig} count ${c.killCount}`);
    this.daemon.signalClient(c, sig);
  }

  // ------------------------------------------------------------ removal

  async rem(req: Request): Promise<Buffer> {
    const { h } = req;
    const w = requestLockspace(req.payload);
    const ls = this.spaces.find((s) => s.matches(w));
    if (!ls) return encodeReplyHeader(h, -Errno.ENOENT);
    if (h.cmdFlags & RemLsFlag.UNUSED && this.resources.hasResources(ls.name)) return encodeReplyHeader(h, -Errno.EBUSY);
    if (ls.list === 'rem' || ls.removeRequested) return encodeReplyHeader(h, -Errno.EINPROGRESS);
    if (ls.list === 'add') {
      ls.removeRequested = true;
      ls.abort.abort();
      return encodeReplyHeader(h, 0);
    }
    this.requestRemove(ls);
    if (h.cmdFlags & RemLsFlag.ASYNC) return encodeReplyHeader(h, 0);
    await ls.freed;
    this.log.debug(`cmd_rem_lockspace ${req.client.ci},${req.client.fd} done 0`);
    return encodeReplyHeader(h, 0);
  }

  requestRemove(ls: Lockspace): void {
    ls.removeRequested = true;
    ls.killingPids = true;
    this.log.error(`s${ls.spaceId} set killing_pids check 0 remove 1`);
    this.startKilling();
  }

  /** No client uses the lockspace any more: stop renewals, release the delta lease, free it. */
  private async stopLockspace(ls: Lockspace): Promise<void> {
    if (ls.list === 'rem') return;
    this.log.error(`s${ls.spaceId} set thread_stop`);
    ls.list = 'rem';
    ls.abort.abort();
    // the renewal loop has ended before the watchdog is touched: refresh and disarm never overlap
    await ls.renewLoopDone;
    // every client holding a lease here is gone: only now may the watchdog expiry be cleared
    if (ls.wd) {
      const rv = await ls.wd.disarm();
      if (rv < 0) this.log.error(`s${ls.spaceId} watchdog disarm error ${rv}`);
    }
    const dl = ls.delta;
    if (dl && dl.state === 'held' && ls.renewalLastResult >= 0 && !ls.renewFail) {
      this.log.debug(`s${ls.spaceId} delta_release begin ${ls.name}:${ls.hostId}`);
      try {
        await dl.release();
        this.log.debug(`s${ls.spaceId} delta_release done ${ls.hostId} ${ls.generation} 0`);
      } catch (err) {
        this.log.error(`s${ls.spaceId} delta_release error ${errorCode(err)}`);
      }
    }
    this.resources.dropSpace(ls.name);
    for (const c of [...ls.eventClients]) this.dropEventClient(ls, c);
    await ls.wd?.close().catch(() => {});
    await ls.ctx.close().catch(() => {});
    const i = this.spaces.indexOf(ls);
    if (i >= 0) this.spaces.splice(i, 1);
    this.log.error(`s${ls.spaceId} free lockspace`);
    ls.resolveFreed();
  }

  /** Forced shutdown: every lockspace removed like rem_lockspace; resolves when all are freed. */
  async removeAll(): Promise<void> {
    for (const ls of [...this.spaces]) {
      if (ls.list === 'add') {
        ls.removeRequested = true;
        ls.abort.abort();
      } else if (!ls.removeRequested) this.requestRemove(ls);
    }
    await Promise.all(this.spaces.map((s) => s.freed));
  }

  // ------------------------------------------------------------ queries

  inq(req: Request): Promise<Buffer> {
    const { h } = req;
    const w = requestLockspace(req.payload);
    const check = (): number => {
      const ls = this.spaces.find((s) => s.matches(w));
      if (!ls) return -Errno.ENOENT;
      if (ls.list === 'spaces' && !ls.removeRequested) return 0;
      return -Errno.EINPROGRESS;
    };
    return (async () => {
      let rv = check();
      while (rv === -Errno.EINPROGRESS && h.cmdFlags & InqLsFlag.WAIT) {
        await systemClock.sleep(1000);
        rv = check();
      }
      return encodeReplyHeader(h, rv);
    })();
  }

  getLockspaces(req: Request): Buffer[] {
    const order = [...this.spaces.filter((s) => s.list === 'spaces'), ...this.spaces.filter((s) => s.list === 'add'), ...this.spaces.filter((s) => s.list === 'rem')];
    const list = order.map((s) => s.wire(s.list === 'add' ? LsFlag.ADD : s.list === 'rem' ? LsFlag.REM : 0));
    return [encodeGetLockspacesReply(req.h, 0, list)];
  }

  getHosts(req: Request): Buffer[] {
    const w = requestLockspace(req.payload);
    const ls = this.findJoined(w.name);
    if (!ls?.hosts) return [encodeReplyHeader(req.h, -Errno.ENOENT)];
    if (!ls.hostsReady) return [encodeReplyHeader(req.h, -Errno.EAGAIN)];
    const rows = ls.hosts.hosts(monotime(), w.hostId === 0 ? undefined : w.hostId);
    const hosts = rows.map((r) => ({ hostId: r.hostId, generation: r.generation, timestamp: r.timestamp, ioTimeout: r.ioTimeout, flags: r.flags }));
    return [encodeGetHostsReply(req.h, 0, hosts)];
  }

  hostStatus(req: Request): Buffer[] {
    const w = requestLockspace(req.payload);
    const ls = this.findJoined(w.name);
    if (!ls?.hosts) return [encodeReplyHeader(req.h, -Errno.ENOSPC)];
    const out: Buffer[] = [encodeStreamHeader(req.h, 0)];
    for (let id = 1; id <= ls.maxHosts; id++) {
      const s = ls.hosts.slot(id);
      if (!s || (s.lastLive === 0 && s.ownerId === 0)) continue;
      const text = `last_check=${s.lastCheck} last_live=${s.lastLive} last_req=${s.lastReq} owner_id=${s.ownerId} owner_generation=${s.generation} timestamp=${s.timestamp} io_timeout=${s.ioTimeout} owner_name=${s.name}`;
      out.push(encodeStateRecord({ type: StateType.HOST, flags: 0, data32: id, data64: s.timestamp, name: '' }, text));
    }
    return out;
  }

  renewal(req: Request): Buffer[] {
    const w = requestLockspace(req.payload);
    const ls = this.findJoined(w.name);
    if (!ls) return [encodeReplyHeader(req.h, -Errno.ENOSPC)];
    const out: Buffer[] = [encodeStreamHeader(req.h, 0, ls.ioTimeout)];
    for (const r of ls.history) {
      out.push(encodeStateRecord({ type: StateType.RENEWAL, flags: 0, data32: 0, data64: r.timestamp, name: '' }, `timestamp=${r.timestamp} read_ms=${r.readMs} write_ms=${r.writeMs} next_timeouts=${r.nextTimeouts} next_errors=${r.nextErrors}`));
    }
    return out;
  }

  setConfig(req: Request): Buffer {
    const w = requestLockspace(req.payload);
    const cmd = req.h.data;
    if (![1, 2, 4, 8].includes(cmd)) return encodeReplyHeader(req.h, -Errno.EINVAL, req.h.data2);
    const ls = this.findJoined(w.name);
    if (!ls) return encodeReplyHeader(req.h, -Errno.ENOENT, req.h.data2);
    if ((cmd === 1 || cmd === 4) && ls.spaceDead) return encodeReplyHeader(req.h, -Errno.ENOSPC, req.h.data2);
    if (cmd === 1) ls.externalUsed = true;
    else if (cmd === 2) ls.externalUsed = false;
    else if (cmd === 4) ls.usedByOrphans = true;
    else ls.usedByOrphans = false;
    return encodeReplyHeader(req.h, 0, req.h.data2);
  }

  statusRecords(): Buffer[] {
    const out: Buffer[] = [];
    const joined = this.spaces.filter((s) => s.list === 'spaces').reverse();
    const order = [...joined, ...this.spaces.filter((s) => s.list === 'add'), ...this.spaces.filter((s) => s.list === 'rem')];
    for (const s of order) {
      const listName = s.list;
      const text =
        `list=${listName} space_id=${s.spaceId} io_timeout=${s.ioTimeout} sector_size=${s.sectorSize} align_size=${s.alignSize} ` +
        `host_generation=${s.generation} renew_fail=${s.renewFail ? 1 : 0} space_dead=${s.spaceDead ? 1 : 0} killing_pids=${s.killingPids ? 1 : 0} ` +
        `used_retries=0 external_used=${s.externalUsed ? 1 : 0} used_by_orphans=${s.usedByOrphans ? 1 : 0} ` +
        `renewal_read_extend_sec=${this.daemon.cfg.renewalReadExtendSec ?? s.ioTimeout} set_max_sectors_kb=0 corrupt_result=${s.corruptResult} ` +
        `acquire_last_result=${s.acquireLastResult} renewal_last_result=${s.renewalLastResult} acquire_last_attempt=${s.acquireLastAttempt} ` +
        `acquire_last_success=${s.acquireLastSuccess} renewal_last_attempt=${s.renewalLastAttempt} renewal_last_success=${s.renewalLastSuccess}`;
      out.push(encodeStateRecord({ type: StateType.LOCKSPACE, flags: 0, data32: 0, data64: s.hostId, name: s.name }, text, encodeLockspace(s.wire(s.list === 'add' ? LsFlag.ADD : s.list === 'rem' ? LsFlag.REM : 0))));
    }
    return out;
  }

  // ------------------------------------------------------------ events

  regEvent(req: Request): Buffer {
    const w = requestLockspace(req.payload);
    if (!w.name) return encodeReplyHeader(req.h, -Errno.EINVAL, req.h.data2);
    const ls = this.findJoined(w.name);
    if (!ls) return encodeReplyHeader(req.h, -Errno.ENOENT, req.h.data2);
    if (ls.eventClients.length >= MAX_EVENT_FDS) {
      for (const c of [...ls.eventClients]) {
        if (!c.sock || c.sock.destroyed || c.reader?.eof || (c.reader && c.reader.available >= 4)) this.dropEventClient(ls, c);
      }
      if (ls.eventClients.length >= MAX_EVENT_FDS) return encodeReplyHeader(req.h, -Errno.ENOCSI, req.h.data2);
    }
    ls.eventClients.push(req.client);
    req.handedOver = true;
    return encodeReplyHeader(req.h, 0, req.h.data2);
  }

  endEvent(req: Request): Buffer {
    const w = requestLockspace(req.payload);
    if (!w.name) return encodeReplyHeader(req.h, -Errno.EINVAL, req.h.data2);
    const ls = this.findJoined(w.name);
    if (!ls) return encodeReplyHeader(req.h, -Errno.ENOENT, req.h.data2);
    for (const c of [...ls.eventClients]) {
      const r = c.reader;
      if (!c.sock || c.sock.destroyed || !r || r.eof) {
        this.dropEventClient(ls, c);
        continue;
      }
      if (r.available >= 4) {
        void r.read(4).then((b) => {
          if (!b || b.readUInt32LE(0) === 1) this.dropEventClient(ls, c);
          else this.log.error(`s${ls.spaceId} end_event value ${b.readUInt32LE(0)}`);
        });
      }
    }
    return encodeReplyHeader(req.h, 0, req.h.data2);
  }

  private dropEventClient(ls: Lockspace, c: Client): void {
    const i = ls.eventClients.indexOf(c);
    if (i >= 0) ls.eventClients.splice(i, 1);
    c.sock?.destroy();
  }

  setEvent(req: Request): Buffer {
    const w = requestLockspace(req.payload);
    const he = requestHostEvent(req.payload, LOCKSPACE_SIZE);
    const f = req.h.cmdFlags;
    const ls = this.findJoined(w.name);
    if (!(f & SetEventFlag.ALL_HOSTS) && (he.hostId === 0 || he.hostId > 2000 || (ls && he.hostId > ls.maxHosts))) return encodeReplyHeader(req.h, -Errno.EINVAL);
    if (!ls?.delta) return encodeReplyHeader(req.h, -Errno.ENOENT);
    const dl = ls.delta;
    if (f & SetEventFlag.CLEAR_EVENT) {
      dl.clearEvent();
      return encodeReplyHeader(req.h, 0);
    }
    if (f & SetEventFlag.CLEAR_HOSTID) {
      dl.clearRequestBit(he.hostId);
      return encodeReplyHeader(req.h, 0);
    }
    let generation = he.generation;
    if (f & SetEventFlag.CUR_GENERATION && generation === 0) generation = ls.hosts?.slot(he.hostId)?.generation ?? 0;
    try {
      const replace = (f & SetEventFlag.REPLACE_EVENT) !== 0 || dl.event.event === he.event;
      dl.setEvent(f & SetEventFlag.ALL_HOSTS ? 'all' : he.hostId, { generation, event: he.event, data: he.data }, { replace });
    } catch (err) {
      return encodeReplyHeader(req.h, errorCode(err));
    }
    return encodeReplyHeader(req.h, 0);
  }

  // ------------------------------------------------------------ disk-only commands

  /** READ_LOCKSPACE: pure read of host_id's record (0 → 1); reply carries the struct and io_timeout. */
  async readLockspace(req: Request): Promise<Buffer[]> {
    const w = requestLockspace(req.payload);
    const hostId = w.hostId || 1;
    const out = (rv: number, io = 0, ws: SanlkLockspace = w): Buffer[] => [encodeReadLockspaceReply(req.h, rv, io, ws)];
    if (!w.hostIdDisk.path) return out(-Errno.ENODEV);
    const ctx = new IoContext({ name: 'read_lockspace' });
    try {
      let disk: DirectDisk;
      try {
        disk = await ctx.open(w.hostIdDisk.path, { readOnly: true });
      } catch {
        return out(-Errno.ENODEV);
      }
      const ioMs = DEFAULT_IO_TIMEOUT * 1000;
      // flags naming a geometry that does not exist (512-byte sectors with 2-8 MiB alignment)
      // made sizeFlags throw out of the handler; sanlock 3.8.5 answers them with the record
      // (python read_lockspace(align=2M, sector=512) → iotimeout), so use the leader's geometry
      let g: Geometry | null;
      try {
        g = sizeFlags(w.flags) ?? null;
      } catch {
        g = null;
      }
      const first = await disk.read(w.hostIdDisk.offset, 4096, ioMs).catch((e) => e as SanlockError);
      if (first instanceof Error) return out(errorCode(first));
      const l0 = decodeLeader(first, 0);
      if (l0.magic !== DELTA_DISK_MAGIC) return out(SanlkCode.SANLK_LEADER_MAGIC);
      let geom: Geometry;
      try {
        const leaderAlign = alignFlagToSize(l0.flags);
        geom = g ?? (leaderAlign ? geometryFor(l0.sectorSize, leaderAlign) : defaultGeometry(l0.sectorSize));
      } catch (e) {
        return out(errorCode(e));
      }
      if (hostId > geom.maxHosts) return out(SanlkCode.SANLK_ADDLS_INVALID_HOSTID);
      const sec = await disk.read(w.hostIdDisk.offset + (hostId - 1) * geom.sectorSize, geom.sectorSize, ioMs).catch((e) => e as SanlockError);
      if (sec instanceof Error) return out(errorCode(sec));
      const rv = verifyLeader(sec, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: w.name || undefined });
      const l = decodeLeader(sec, 0);
      if (rv < 0) return out(rv);
      const flags = geom.leaderAlignFlag | sectorSizeToFlag(geom.sectorSize);
      return out(0, l.ioTimeout, { name: l.spaceName, hostId, flags, hostIdDisk: w.hostIdDisk });
    } finally {
      await ctx.close().catch(() => {});
    }
  }

  /** WRITE_LOCKSPACE: sanlock direct init -s through the daemon (io_timeout = data2 or 10). */
  async writeLockspace(req: Request): Promise<Buffer> {
    const w = requestLockspace(req.payload);
    if (!w.hostIdDisk.path) return encodeReplyHeader(req.h, -Errno.ENODEV);
    if (!w.name) return encodeReplyHeader(req.h, -Errno.EINVAL);
    let geom: Geometry;
    try {
      geom = sizeFlags(w.flags) ?? defaultGeometry(512);
    } catch (e) {
      return encodeReplyHeader(req.h, errorCode(e));
    }
    const io = req.h.data2 > 0 ? req.h.data2 : DEFAULT_IO_TIMEOUT;
    const ctx = new IoContext({ name: 'write_lockspace' });
    try {
      let disk: DirectDisk;
      try {
        disk = await ctx.open(w.hostIdDisk.path);
      } catch {
        return encodeReplyHeader(req.h, -Errno.ENODEV);
      }
      const img = buildLockspaceInit({ geometry: geom, spaceName: w.name, ioTimeout: io });
      const ms = this.daemon.cfg.writeInitIoTimeout * 1000;
      await disk.write(w.hostIdDisk.offset, img.area, ms);
      await disk.write(w.hostIdDisk.offset, img.firstSector, ms);
      return encodeReplyHeader(req.h, 0);
    } catch (e) {
      return encodeReplyHeader(req.h, errorCode(e));
    } finally {
      await ctx.close().catch(() => {});
    }
  }

  /** ALIGN: alignment of a disk (1 MiB for 512-byte sectors, 8 MiB for 4K), or -ENODEV. */
  async align(req: Request): Promise<Buffer> {
    const path = req.payload.toString('latin1', 0, Math.max(0, req.payload.indexOf(0)));
    const ctx = new IoContext({ name: 'align' });
    try {
      const disk = await ctx.open(path, { readOnly: true });
      return encodeReplyHeader(req.h, disk.sectorSize === 4096 ? 8 * 1024 * 1024 : 1024 * 1024);
    } catch {
      return encodeReplyHeader(req.h, -Errno.ENODEV);
    } finally {
      await ctx.close().catch(() => {});
    }
  }
}

/** Geometry from SANLK_LSF/RES ALIGN*|SECTOR* flags, undefined when neither is set. */
export function sizeFlags(flags: number): ReturnType<typeof geometryFor> | undefined {
  const sector = sectorFlagToSize(flags);
  const align = alignFlagToSize(flags);
  if (!sector && !align) return undefined;
  if (!align) return defaultGeometry(sector);
  // align without sector: 1M alignment only fits 512-byte sectors, the larger ones imply 4K
  return geometryFor(sector || (align === 1024 * 1024 ? 512 : 4096), align);
}

export function installLockspaces(daemon: Daemon): LockspaceManager {
  const m = new LockspaceManager(daemon);
  daemon.handle(Cmd.ADD_LOCKSPACE, (r) => m.add(r));
  daemon.handle(Cmd.REM_LOCKSPACE, (r) => m.rem(r));
  daemon.handle(Cmd.INQ_LOCKSPACE, (r) => m.inq(r));
  daemon.handle(Cmd.GET_LOCKSPACES, async (r) => m.getLockspaces(r));
  daemon.handle(Cmd.GET_HOSTS, async (r) => m.getHosts(r));
  daemon.handle(Cmd.HOST_STATUS, async (r) => m.hostStatus(r));
  daemon.handle(Cmd.RENEWAL, async (r) => m.renewal(r));
  daemon.handle(Cmd.SET_CONFIG, async (r) => m.setConfig(r));
  daemon.handle(Cmd.REG_EVENT, async (r) => m.regEvent(r));
  daemon.handle(Cmd.END_EVENT, async (r) => m.endEvent(r));
  daemon.handle(Cmd.SET_EVENT, async (r) => m.setEvent(r));
  daemon.handle(Cmd.READ_LOCKSPACE, (r) => m.readLockspace(r));
  daemon.handle(Cmd.WRITE_LOCKSPACE, (r) => m.writeLockspace(r));
  daemon.handle(Cmd.ALIGN, (r) => m.align(r));
  daemon.hooks = {
    ...daemon.hooks,
    lockspaceCount: () => m.count(),
    lockspaceStatus: () => m.statusRecords(),
    tick: () => m.tick(),
    forceShutdown: () => m.removeAll(),
  };
  return m;
}
