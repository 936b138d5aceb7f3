// The simulator's own small Disk Paxos lease (EX, SH, convert, release), written from
// spec/algorithms.md §3 so the world, the faults and the checker could be built and tested
// before src/lease/paxos-lease.ts existed, and kept as a second implementation to compare with.
// `ModelPaxosFaults` turns on deliberately broken variants: the checker tests use them to show
// that each kind of bug is caught.
import assert from 'node:assert/strict';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import type { Clock, Random } from '../lease/clock.js';
import type { HostStateTracker } from '../lease/host-state.js';
import { hostDeadSeconds } from '../lease/timeouts.js';
import { DBLOCK_FL_RELEASED, type Dblock, dblockValid, decodeDblock, decodeModeBlock, encodeDblock, encodeModeBlock, MBLOCK_SHARED } from '../ondisk/dblock.js';
import { DELTA_DISK_MAGIC, DELTA_DISK_VERSION, decodeLeader, encodeLeader, LEADER_SIZE, type Leader, PAXOS_DISK_MAGIC, PAXOS_DISK_VERSION, verifyLeader } from '../ondisk/leader.js';
import type { Disk } from '../storage/disk.js';

export interface ModelPaxosFaults {
  /** trust phase 1 and skip the phase-2 read (a competing higher ballot goes unnoticed) */
  skipPhase2Read?: boolean;
  /** take over a held lease after 1 s instead of host_dead */
  shortHostDeadWait?: boolean;
  /** do not abort the ballot on a higher mbal (-213) */
  ignoreMbalAbort?: boolean;
  /** write the leader (commit) right after phase 1 */
  commitBeforePhase2?: boolean;
  /** ignore other dblocks' accepted values and always propose ourselves */
  ignoreAcceptedValues?: boolean;
}

export interface ModelPaxosConfig {
  disk: Disk;
  clock: Clock;
  random: Random;
  hostId: number;
  generation: number;
  spaceName: string;
  /** lockspace area offset (delta records of owners are read there) */
  lockspaceOffset: number;
  sectorSize: number;
  ioTimeout: number;
  watchdogFireTimeout: number;
  hostState: HostStateTracker;
  faults?: ModelPaxosFaults;
}

export interface HeldLease {
  mode: 'EX' | 'SH';
  lver: number;
  /** the leader we committed (EX), byte for byte */
  leader: Buffer | undefined;
  dblock: Dblock;
}

const MAX_RESTARTS = 50;
const MAX_BALLOTS = 50;

export class ModelPaxos {
  private readonly c: ModelPaxosConfig;
  readonly held = new Map<number, HeldLease>();

  constructor(cfg: ModelPaxosConfig) {
    this.c = cfg;
  }

  private get ioMs(): number {
    return this.c.ioTimeout * 1000;
  }

  private dblockOff(res: number, hostId: number): number {
    return res + (2 + hostId - 1) * this.c.sectorSize;
  }

  private async readArea(res: number, resName: string): Promise<{ leader: Leader; raw: Buffer; area: Buffer; numHosts: number }> {
    const ss = this.c.sectorSize;
    const head = await this.c.disk.read(res, ss, this.ioMs);
    const rv = verifyLeader(head, 0, { magic: PAXOS_DISK_MAGIC, version: PAXOS_DISK_VERSION, spaceName: this.c.spaceName, resourceName: resName });
    if (rv < 0) throw new SanlockError(rv, `leader of ${resName}`);
    const leader = decodeLeader(head, 0);
    if (leader.numHosts < this.c.hostId) throw new SanlockError(SanlkCode.SANLK_LEADER_NUMHOSTS, 'num_hosts');
    const area = await this.readDblocks(res, leader.numHosts);
    return { leader, raw: Buffer.from(head.subarray(0, LEADER_SIZE)), area, numHosts: leader.numHosts };
  }

  private async readDblocks(res: number, numHosts: number): Promise<Buffer> {
    const n = 2 ** Math.ceil(Math.log2(numHosts + 2));
    return this.c.disk.read(res, n * this.c.sectorSize, this.ioMs);
  }

  private maxMbal(area: Buffer, numHosts: number): number {
    let m = 0;
    for (let q = 0; q < numHosts; q++) {
      const off = (2 + q) * this.c.sectorSize;
      if (!dblockValid(area, off)) throw new SanlockError(SanlkCode.SANLK_DBLOCK_CHECKSUM, 'dblock checksum');
      m = Math.max(m, decodeDblock(area, off).mbal);
    }
    return m;
  }

  private async sleepRandom(): Promise<void> {
    await this.c.clock.sleep(Math.floor(this.c.random.next() * 1000));
  }

  /** §3.3 step 3: may we run a ballot over this leader? Resolves true, or false to restart. */
  private async ownerGone(res: number, cur: Leader, raw: Buffer): Promise<boolean> {
    const hs = this.c.hostState;
    const now0 = this.c.clock.monotonicSeconds();
    const slot = hs.slot(cur.ownerId);
    let waitStart = now0;
    let lastTs = 0;
    if (slot && slot.ownerId === cur.ownerId && slot.generation === cur.ownerGeneration && slot.lastLive) {
      waitStart = slot.lastLive;
      lastTs = slot.timestamp;
    }
    const seenChange = slot !== undefined && slot.lastCheck === slot.lastLive && slot.generation === cur.ownerGeneration;
    const ss = this.c.sectorSize;
    const hdWait = this.c.faults?.shortHostDeadWait ? 1 : hostDeadSeconds(hs.otherIoTimeout(cur.ownerId), this.c.watchdogFireTimeout);
    for (let i = 0; i < 10_000; i++) {
      const buf = await this.c.disk.read(this.c.lockspaceOffset + (cur.ownerId - 1) * ss, ss, this.ioMs);
      const rv = verifyLeader(buf, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: this.c.spaceName });
      if (rv < 0) throw new SanlockError(rv, 'owner delta lease');
      const d = decodeLeader(buf, 0);
      if (d.timestamp === 0) return true;
      if (d.ownerId !== cur.ownerId || d.ownerGeneration > cur.ownerGeneration) return true;
      if (lastTs === 0) {
        lastTs = d.timestamp;
      } else if (d.timestamp !== lastTs || seenChange) {
        if (cur.writeId !== cur.ownerId) {
          const db = await this.c.disk.read(this.dblockOff(res, cur.ownerId), ss, this.ioMs);
          if (decodeDblock(db, 0).flags & DBLOCK_FL_RELEASED) return true;
        }
        throw new SanlockError(SanlkCode.SANLK_ACQUIRE_IDLIVE, `owner ${cur.ownerId} is alive`);
      }
      if (this.c.clock.monotonicSeconds() - waitStart > hdWait) return true;
      await this.c.clock.sleep(1000);
      const again = await this.c.disk.read(res, ss, this.ioMs);
      if (!again.subarray(0, LEADER_SIZE).equals(raw)) return false;
    }
    throw new SanlockError(SanlkCode.SANLK_ERROR, 'owner wait did not end');
  }

  private phaseCheck(area: Buffer, numHosts: number, nextLver: number, ourMbal: number, ignoreMbal = false): { best: Dblock | undefined; shared: Array<{ hostId: number; gen: number }> } {
    let best: Dblock | undefined;
    const shared: Array<{ hostId: number; gen: number }> = [];
    for (let q = 0; q < numHosts; q++) {
      const off = (2 + q) * this.c.sectorSize;
      if (!dblockValid(area, off)) continue;
      const m = decodeModeBlock(area, off);
      if (q + 1 !== this.c.hostId && m.flags & MBLOCK_SHARED) shared.push({ hostId: q + 1, gen: m.generation });
      const d = decodeDblock(area, off);
      if (d.lver < nextLver) continue;
      if (d.lver > nextLver) throw new SanlockError(SanlkCode.SANLK_DBLOCK_LVER, 'higher lver');
      if (d.mbal > ourMbal && !ignoreMbal) throw new SanlockError(SanlkCode.SANLK_DBLOCK_MBAL, 'higher mbal');
      if (d.inp !== 0 && d.bal !== 0 && (!best || d.bal > best.bal)) best = d;
    }
    return { best, shared };
  }

  private sector(d: Dblock, shared: boolean): Buffer {
    const b = Buffer.alloc(this.c.sectorSize);
    encodeDblock(d, b, 0);
    if (shared) encodeModeBlock({ flags: MBLOCK_SHARED, generation: this.c.generation }, b, 0);
    return b;
  }

  /**
   * Acquire `res` (byte offset of the lease) in `mode`. Resolves with the lver held.
   * `convert` is set for SH→EX of a lease we hold SH.
   */
  async acquire(res: number, resName: string, mode: 'EX' | 'SH', convert = false): Promise<number> {
    assert.ok(!this.held.has(res) || convert, 'lease already held');
    const before = this.held.get(res);
    try {
      return await this.acquireInner(res, resName, mode, convert);
    } catch (e) {
      // a failed acquire holds nothing; a failed convert keeps the SH hold it started from
      if (before) this.held.set(res, before);
      else this.held.delete(res);
      throw e;
    }
  }

  private async acquireInner(res: number, resName: string, mode: 'EX' | 'SH', convert: boolean): Promise<number> {
    const me = this.c.hostId;
    const f = this.c.faults ?? {};
    let shRetries = 0;
    for (let restart = 0; restart < MAX_RESTARTS; restart++) {
      const first = await this.readArea(res, resName);
      const cur = first.leader;
      const curRaw = first.raw;
      const numHosts = first.numHosts;
      if (cur.timestamp !== 0 && cur.flags & 1 && mode === 'SH' && cur.ownerId !== me) {
        // another host is between its SH commit and freeing the leader: it will free it soon
        if (++shRetries > 8) throw new SanlockError(SanlkCode.SANLK_ACQUIRE_SHRETRY, 'short hold');
        await this.sleepRandom();
        continue;
      }
      if (cur.timestamp !== 0 && cur.ownerId !== me) {
        if (!(await this.ownerGone(res, cur, first.raw))) continue;
      }
      const nextLver = cur.lver + 1;
      const maxHosts = cur.maxHosts;
      const mm = this.maxMbal(first.area, numHosts);
      let ourMbal = mm === 0 ? me : mm - (mm % maxHosts) + maxHosts + me;
      let reuse = true;
      let restartOuter = false;
      for (let b = 0; b < MAX_BALLOTS; b++) {
        if (!reuse) {
          const head = await this.c.disk.read(res, this.c.sectorSize, this.ioMs);
          const l = decodeLeader(head, 0);
          if (l.lver === nextLver) {
            if (l.ownerId === me && l.ownerGeneration === this.c.generation) { return this.finish(res, resName, mode, l, head, convert); }
            throw new SanlockError(SanlkCode.SANLK_ACQUIRE_OWNED, 'committed by another host');
          }
          if (l.lver > nextLver || !head.subarray(0, LEADER_SIZE).equals(curRaw)) { restartOuter = true; break; }
        }
        reuse = false;
        try {
          const p1: Dblock = { mbal: ourMbal, bal: 0, inp: 0, inp2: 0, inp3: 0, lver: nextLver, flags: 0 };
          await this.c.disk.write(this.dblockOff(res, me), this.sector(p1, convert), this.ioMs);
          const a1 = await this.readDblocks(res, numHosts);
          const r1 = this.phaseCheck(a1, numHosts, nextLver, ourMbal, f.ignoreMbalAbort);
          const chosen = r1.best && !f.ignoreAcceptedValues ? r1.best : { inp: me, inp2: this.c.generation, inp3: this.c.clock.monotonicSeconds() };
          const p2: Dblock = { mbal: ourMbal, bal: ourMbal, inp: chosen.inp, inp2: chosen.inp2, inp3: chosen.inp3, lver: nextLver, flags: 0 };
          if (!f.commitBeforePhase2) {
            await this.c.disk.write(this.dblockOff(res, me), this.sector(p2, convert), this.ioMs);
            if (!f.skipPhase2Read) {
              const a2 = await this.readDblocks(res, numHosts);
              this.phaseCheck(a2, numHosts, nextLver, ourMbal, f.ignoreMbalAbort);
            }
          }
          const committed: Leader = {
            ...cur, lver: nextLver, ownerId: p2.inp, ownerGeneration: p2.inp2, timestamp: p2.inp3,
            writeId: me, writeGeneration: this.c.generation, writeTimestamp: this.c.clock.monotonicSeconds(),
            flags: p2.inp === me && mode === 'SH' ? cur.flags | 1 : cur.flags & ~1,
          };
          const head = Buffer.alloc(this.c.sectorSize);
          encodeLeader(committed, head, 0);
          await this.c.disk.write(res, head, this.ioMs);
          if (f.commitBeforePhase2) {
            await this.c.disk.write(this.dblockOff(res, me), this.sector(p2, convert), this.ioMs);
          }
          if (p2.inp !== me || p2.inp2 !== this.c.generation) throw new SanlockError(SanlkCode.SANLK_ACQUIRE_OTHER, 'committed another owner');
          this.held.set(res, { mode: 'EX', lver: nextLver, leader: Buffer.from(head.subarray(0, LEADER_SIZE)), dblock: p2 });
          return this.finish(res, resName, mode, committed, head, convert, r1.shared);
        } catch (e) {
          if (e instanceof SanlockError && (e.code === SanlkCode.SANLK_DBLOCK_LVER || e.code === SanlkCode.SANLK_DBLOCK_MBAL)) {
            await this.sleepRandom();
            ourMbal += maxHosts;
            continue;
          }
          throw e;
        }
      }
      if (!restartOuter) throw new SanlockError(SanlkCode.SANLK_ERROR, 'too many ballots');
    }
    throw new SanlockError(SanlkCode.SANLK_ERROR, 'too many restarts');
  }

  /** After our commit: SH drops the leader; EX checks SH holders (§3.5). */
  private async finish(res: number, resName: string, mode: 'EX' | 'SH', l: Leader, head: Buffer, convert: boolean, shared: Array<{ hostId: number; gen: number }> = []): Promise<number> {
    const me = this.c.hostId;
    const h = this.held.get(res) ?? { mode: 'EX' as const, lver: l.lver, leader: Buffer.from(head.subarray(0, LEADER_SIZE)), dblock: { mbal: 0, bal: 0, inp: me, inp2: this.c.generation, inp3: l.timestamp, lver: l.lver, flags: 0 } };
    this.held.set(res, h);
    if (mode === 'SH') {
      await this.c.disk.write(this.dblockOff(res, me), this.sector({ ...h.dblock, flags: DBLOCK_FL_RELEASED }, true), this.ioMs);
      await this.freeLeader(res, h);
      this.held.set(res, { ...h, mode: 'SH', leader: undefined });
      return l.lver;
    }
    // Do not trust the ballot's reads alone: when another host committed us, we ran none.
    if (shared.length === 0) {
      const area = await this.readDblocks(res, l.numHosts);
      shared = this.phaseCheck(area, l.numHosts, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER).shared;
    }
    let live = false;
    for (const s of shared) {
      const sec = await this.c.disk.read(this.dblockOff(res, s.hostId), this.c.sectorSize, this.ioMs);
      const m = decodeModeBlock(sec, 0);
      if (!(m.flags & MBLOCK_SHARED)) continue;
      if (this.shHolderLive(s.hostId, m.generation)) { live = true; continue; }
      await this.c.disk.write(this.dblockOff(res, s.hostId), Buffer.alloc(this.c.sectorSize), this.ioMs);
    }
    if (convert && !live) {
      await this.c.disk.write(this.dblockOff(res, me), this.sector(h.dblock, false), this.ioMs);
    }
    if (live) {
      if (convert) {
        // keep SH: our sector still has the SHARED mode block; only the leader goes
        await this.freeLeader(res, h);
        this.held.set(res, { ...h, mode: 'SH', leader: undefined });
      } else {
        await this.release(res, resName);
      }
      throw new SanlockError(-Errno.EAGAIN, 'live shared holders');
    }
    return l.lver;
  }

  private shHolderLive(hostId: number, gen: number): boolean {
    const hs = this.c.hostState;
    const s = hs.slot(hostId);
    if (!s) return true;
    const now = this.c.clock.monotonicSeconds();
    const hd = hostDeadSeconds(hs.otherIoTimeout(hostId), this.c.watchdogFireTimeout);
    if (s.timestamp === 0) return false;
    if (s.generation > gen) return false;
    if (!s.lastLive && now - s.firstCheck > hd) return false;
    if (s.lastLive && now - s.lastLive > hd) return false;
    return true;
  }

  private async freeLeader(res: number, h: HeldLease): Promise<void> {
    const ss = this.c.sectorSize;
    const head = await this.c.disk.read(res, ss, this.ioMs);
    const l = decodeLeader(head, 0);
    if (l.writeId !== this.c.hostId) return;
    if (l.lver !== h.lver) throw new SanlockError(SanlkCode.SANLK_RELEASE_LVER, 'release lver');
    if (l.timestamp === 0 || l.ownerId !== this.c.hostId || l.ownerGeneration !== this.c.generation || (h.leader && !head.subarray(0, LEADER_SIZE).equals(h.leader))) {
      throw new SanlockError(SanlkCode.SANLK_RELEASE_OWNER, 'release owner');
    }
    const out = Buffer.alloc(ss);
    encodeLeader({ ...l, timestamp: 0, writeId: this.c.hostId, writeGeneration: this.c.generation, writeTimestamp: this.c.clock.monotonicSeconds(), flags: l.flags & ~1 }, out, 0);
    await this.c.disk.write(res, out, this.ioMs);
  }

  async release(res: number, _resName: string): Promise<void> {
    const h = this.held.get(res);
    assert.ok(h, 'release of a lease not held');
    this.held.delete(res);
    try {
      await this.c.disk.write(this.dblockOff(res, this.c.hostId), this.sector({ ...h.dblock, flags: DBLOCK_FL_RELEASED }, false), this.ioMs);
    } catch {
      // sanlock ignores errors writing the RELEASED flag; the leader write below decides
    }
    if (h.mode === 'EX') await this.freeLeader(res, h);
  }

  /** EX→SH (§3.5). */
  async convertToShared(res: number): Promise<void> {
    const h = this.held.get(res);
    assert.ok(h && h.mode === 'EX');
    await this.c.disk.write(this.dblockOff(res, this.c.hostId), this.sector({ ...h.dblock, flags: DBLOCK_FL_RELEASED }, true), this.ioMs);
    this.held.set(res, { ...h, mode: 'SH', leader: undefined });
    await this.freeLeader(res, h);
  }
}

