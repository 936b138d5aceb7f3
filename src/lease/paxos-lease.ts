// Disk Paxos resource leases, as sanlock 3.8.5 runs them (spec/algorithms.md §3.1–3.4, 3.8).
//
// One PaxosLease object = one host's handle on one resource lease (sanlock's "token"). Reading
// order of this file follows the algorithm: read → owner liveness → ballot (phase 1, phase 2)
// → commit; then release, retract and the LVB.
//
// API (used by the daemon, shared-mode.ts, requests.ts and the simulator in src/sim/):
//
//   const lease = new PaxosLease(
//     { hostId, generation, ioTimeout, clock, random, lockspace },     // PaxosHostConfig
//     { spaceName, resourceName, disks: [{ disk, offset }] });         // PaxosResource
//   const leader = await lease.acquire({ lver?, ownerNoWait?, shared?, numHosts?, signal? });
//   await lease.release();                 // §3.4 (also performs a pending retract)
//   await lease.read();                    // §3.1 snapshot: leader, dblocks, mode blocks
//   await lease.readLvb(); lease.setLvb(buf)  // §3.8, written at release / EX→SH convert
//   lease.stats                            // IoStats of every I/O this lease did
//   lease.held / lease.leader / lease.shHeld / lease.heldLver / lease.needRetract  // hold state
//   lease.abandon()                        // forget the hold without I/O (lockspace lost)
//   lease.readLeader() / readRequest() / writeRequest() / readModeBlock(h) / clearHostSector(h)
//   lease.writeReleasedDblock(mode) / writeOurSector(mode) / releaseLeader(expect)  // SH building blocks
//   lease.lastMbal / lease.lastBallot / lease.sharedHolders / lease.grantedByOther  // last acquire
//   lease.retract()                        // free a leader that may name us (after a failure)
//
// SH holders: after every EX grant, `sharedHolders` lists each other host whose mode block was
// SHARED in any read this acquire made: the ballot reads (aborted ballots included, as sanlock's
// token->shared_count) and, when the grant came from another host's commit of our value (no
// ballot of ours finished), one more read of the dblock area made after the grant. So the
// SH-holder check in shared-mode.ts never depends on our own ballot having completed.
//
// Where we differ from sanlock 3.8.5, for safety under writes that time out and land later:
// - phase 1 keeps the bal/inp we accepted earlier for the same lver (sanlock zeroes them; a
//   late-landing commit of ours could then contradict another host's ballot for that lver);
// - a ballot never overwrites our dblock of a later lver (the leader read is stale): -212;
// - -212 seen in a ballot read restarts from a fresh leader, and fails -212 (as sanlock does at
//   once) only when the leader did not move; -213 retries with a higher mbal, as sanlock.
//
// I/O of a free EX acquire (512/1M, num_hosts 2000), as sanlock: read 1 MiB, write our dblock,
// read 1 MiB, write our dblock, read 1 MiB, write the leader = 6 I/Os. EX release: write our
// dblock RELEASED, read the leader sector, write the leader = 3 I/Os; on one disk that can chain
// them (ChainDisk: the daemon's DirectDisk) they go to the I/O thread as one request, the leader
// write conditional on reading exactly the leader we hold (releaseChained).
//
// `lockspace` (LockspaceView) is how the ballot learns about other hosts: their delta-lease
// record (read from disk) and our lockspace thread's HostStateTracker bookkeeping. Build it
// with lockspaceViewOf(deltaLease, tracker) or implement it in the simulator.
//
// Errors: SanlockError with sanlock's code; for -243/-244/-245 `details.leader` is the leader
// that was seen (shared-mode.ts needs its SHORT_HOLD flag).
//
// TEST ONLY: `bugs` (PaxosBugs) deliberately breaks the algorithm so the simulator can check
// that its safety checker notices. Production code never sets it.
import assert from 'node:assert/strict';
import { SanlkCode, SanlockError } from '../codes.js';
import {
  DBLOCK_CHECKSUM_LEN,
  DBLOCK_FL_RELEASED,
  DBLOCK_SIZE,
  type Dblock,
  dblockValid,
  decodeDblock,
  decodeModeBlock,
  emptyDblock,
  hostSector,
  MBLOCK_OFFSET,
  MBLOCK_SHARED,
  type ModeBlock,
} from '../ondisk/dblock.js';
import { sanlockChecksum } from '../ondisk/checksum.js';
import { readU64 } from '../ondisk/fields.js';
import { type Geometry, geometryFor, geometryFromLeader, LVB_SECTOR } from '../ondisk/geometry.js';
import {
  decodeLeader,
  encodeLeader,
  LEADER_COMPARE_LEN,
  LEADER_SIZE,
  type Leader,
  LFL_SHORT_HOLD,
  PAXOS_DISK_MAGIC,
  PAXOS_DISK_VERSION,
  verifyLeader,
} from '../ondisk/leader.js';
import { decodeRequest, encodeRequest, type RequestRecord } from '../ondisk/request.js';
import type { ChainOutcome, Disk } from '../storage/disk.js';
import { recycleReadBuffer } from '../storage/read-buffers.js';
import type { Clock, Random } from './clock.js';
import { IoStats, ioRead, ioWrite, ioWriteReadCompareWrite } from './io.js';
import { DEFAULT_WATCHDOG_FIRE_TIMEOUT, hostDeadSeconds } from './timeouts.js';

export interface LeaseDisk {
  disk: Disk;
  /** byte offset of the lease area on that disk */
  offset: number;
}

/** Our lockspace thread's bookkeeping for one host (HostSlot satisfies it). */
export interface HostSnapshot {
  ownerId: number;
  generation: number;
  timestamp: number;
  ioTimeout: number;
  lastCheck: number;
  firstCheck: number;
  lastLive: number;
}

/** Everything the paxos code needs to know about other hosts of a lockspace. */
export interface LockspaceView {
  /** Read and verify host `hostId`'s delta record in lockspace `spaceName` (from disk). */
  readDeltaRecord(spaceName: string, hostId: number): Promise<Leader>;
  /** Our renewal thread's view of `hostId`, undefined when we have none. */
  hostSnapshot(spaceName: string, hostId: number): HostSnapshot | undefined;
}

/**
 * TEST ONLY — mutations for the simulator's checker. Never set in production.
 * - skipPhase2Read: choose the value without reading after the phase-2 write
 * - shortHostDeadWait: consider an owner dead after 1 s instead of host_dead_seconds
 * - commitBeforePhase2: write the leader right after phase 1
 * - ignoreMbalAbort: do not abort on a higher mbal (-213)
 */
export interface PaxosBugs {
  skipPhase2Read?: boolean;
  shortHostDeadWait?: boolean;
  commitBeforePhase2?: boolean;
  ignoreMbalAbort?: boolean;
}

export interface PaxosHostConfig {
  hostId: number;
  /** our host generation in the lockspace (from the delta lease) */
  generation: number;
  /** our lockspace's io_timeout N (I/O deadlines; N_o fallback) */
  ioTimeout: number;
  clock: Clock;
  random: Random;
  lockspace: LockspaceView;
  watchdogFireTimeout?: number;
  stats?: IoStats;
  /** TEST ONLY */
  bugs?: PaxosBugs;
}

export interface PaxosResource {
  spaceName: string;
  resourceName: string;
  /** 1..4 disks; every read/write must succeed on a majority */
  disks: LeaseDisk[];
  /** geometry to start with (the lockspace's); adopted from the leader when it differs */
  sectorSize?: number;
  alignSize?: number;
}

export interface AcquireOptions {
  /** acquire only if the current lver is this (else -240) */
  lver?: number;
  /** fail -247 instead of waiting for a silent owner to be dead */
  ownerNoWait?: boolean;
  /** SH acquire step: commit with LFL_SHORT_HOLD */
  shared?: boolean;
  /** SH→EX convert: keep our {SHARED, generation} mode block in every dblock write */
  keepSharedMode?: boolean;
  /** replace num_hosts in the committed leader */
  numHosts?: number;
  signal?: AbortSignal;
}

export interface LeaseRead {
  geometry: Geometry;
  leader: Leader;
  leaderRaw: Buffer;
  /** index q = host_id − 1, q < num_hosts */
  dblocks: Readonly<Dblock>[];
  modes: Readonly<ModeBlock>[];
  maxMbal: number;
  /** our own dblock with the highest bal among the disks (undefined when none has a value) */
  ownAccepted?: Dblock;
}

export interface BallotResult {
  /** the value chosen: owner host_id, generation, timestamp */
  inp: number;
  inp2: number;
  inp3: number;
  /** host_ids (≠ us) whose mode block was SHARED in the last read of the ballot */
  sharedHolders: number[];
}

/**
 * What a never-written sector decodes to, shared by every read: a fresh pair per host made a
 * lease read allocate ~260 KB for a 2000-host area (~0.8 MB per acquire), enough at a few
 * thousand acquires a second for V8 to pretenure it and grow the old generation by 100 MiB.
 * Frozen: a reader that wants to change one copies it (as acquire does with our own dblock).
 */
const ZERO_DBLOCK: Readonly<Dblock> = Object.freeze(decodeDblock(Buffer.alloc(DBLOCK_SIZE), 0));
const ZERO_MODE: Readonly<ModeBlock> = Object.freeze({ flags: 0, generation: 0 });

/** Zeros to compare dblock-area ranges against natively (a whole range of never-written hosts). */
const ZERO_CHUNK = Buffer.alloc(32768);

/** True when the checksummed part of the dblock (and its checksum) is zero: sanlock's "never written", valid. */
function dblockBodyZero(b: Buffer, off: number): boolean {
  for (let i = 0; i < DBLOCK_SIZE - 4; i += 4) if (b.readUInt32LE(off + i) !== 0) return false;
  return true;
}

function zeroChunkSectors(ss: number): number {
  return Math.max(1, Math.floor(ZERO_CHUNK.length / ss));
}

/**
 * Per disk (undefined where the read failed), which chunks of sectors [first, end) are all zero:
 * map[i] === 1 for sectors first + i·chunk … Undefined when no disk was read.
 */
function zeroChunkMaps(bufs: (Buffer | undefined)[], first: number, end: number, ss: number): (Uint8Array | undefined)[] | undefined {
  if (!bufs.some((b) => b !== undefined)) return undefined;
  const per = zeroChunkSectors(ss);
  return bufs.map((b) => {
    if (!b) return undefined;
    const n = Math.ceil(Math.max(0, end - first) / per);
    const map = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const s = first + i * per;
      const e = Math.min(s + per, end);
      assert.ok(e * ss <= b.length, 'lease area read short');
      map[i] = b.compare(ZERO_CHUNK, 0, (e - s) * ss, s * ss, e * ss) === 0 ? 1 : 0;
    }
    return map;
  });
}

function roundupPow2(v: number): number {
  let p = 1;
  while (p < v) p *= 2;
  return p;
}

function majority(numDisks: number, ok: number): boolean {
  // sanlock: odd → more than half; even → strictly more than half (no tiebreaker disk)
  return ok > numDisks / 2;
}

function leadersMatch(a: Buffer, b: Buffer): boolean {
  return a.subarray(0, LEADER_COMPARE_LEN).equals(b.subarray(0, LEADER_COMPARE_LEN));
}

function leaderRawOf(l: Leader): Buffer {
  const b = Buffer.alloc(LEADER_SIZE);
  encodeLeader(l, b, 0);
  return b;
}

function isIoError(e: unknown): boolean {
  // Anything that is not a ballot decision: timeouts, -errno, majority failures.
  if (!(e instanceof SanlockError)) return true;
  return e.code === SanlkCode.SANLK_AIO_TIMEOUT || e.code > -200 ||
    e.code === SanlkCode.SANLK_DBLOCK_READ || e.code === SanlkCode.SANLK_DBLOCK_WRITE ||
    e.code === SanlkCode.SANLK_LEADER_READ || e.code === SanlkCode.SANLK_LEADER_WRITE;
}

export class PaxosLease {
  readonly host: PaxosHostConfig;
  readonly res: PaxosResource;
  readonly stats: IoStats;
  geometry: Geometry;
  /** the leader we committed (or found committed for us) while we hold the lease EX */
  leader: Leader | undefined;
  /** our dblock as last written (or as read from disk before we wrote it) */
  ourDblock: Dblock = emptyDblock();
  /** our mode block as last written */
  ourMode: ModeBlock = { flags: 0, generation: 0 };
  /** SHARED holders other than us seen by any read of the last acquire (see the header) */
  sharedHolders: number[] = [];
  /**
   * The leader may still name us although we do not hold the lease by our bookkeeping (phase 2
   * started and an I/O failed, §3.3 step 8; or a release/undo failed half way): release() (or
   * releaseSh) must retract.
   */
  needRetract = false;
  /** what the last ballot of the last acquire chose; undefined when none completed */
  lastBallot: BallotResult | undefined;
  /** the last acquire succeeded because another host committed our value */
  grantedByOther = false;
  /** every other host seen SHARED by the reads of the current acquire; made on the first (few leases see one, and an empty Set per held lease costs ~150 B) */
  private seenShared: Set<number> | undefined;
  /** mbal used by the last ballot attempt */
  lastMbal = 0;
  lvb: Buffer | undefined;
  lvbDirty = false;
  /** we hold the lease SH (our mode block is SHARED); set by shared-mode.ts */
  shHeld = false;
  /** lver of our current hold (EX or SH), for request examination */
  heldLver = 0;

  constructor(host: PaxosHostConfig, res: PaxosResource) {
    assert.ok(res.disks.length >= 1 && res.disks.length <= 4, 'a lease has 1 to 4 disks');
    assert.ok(host.hostId >= 1, 'host_id ≥ 1');
    this.host = host;
    this.res = res;
    this.stats = host.stats ?? new IoStats();
    this.geometry = geometryFor(res.sectorSize ?? 512, res.alignSize ?? (res.sectorSize === 4096 ? 8 * 1024 * 1024 : 1024 * 1024));
  }

  get hostId(): number {
    return this.host.hostId;
  }
  get generation(): number {
    return this.host.generation;
  }
  private get ioMs(): number {
    return this.host.ioTimeout * 1000;
  }
  private get ss(): number {
    return this.geometry.sectorSize;
  }
  /** true while the lease is held EX by us according to our last commit */
  get held(): boolean {
    return this.leader !== undefined;
  }

  // ---------------------------------------------------------------- I/O on all disks

  /** Reads `len` bytes at `rel` of every disk; throws `failCode` when no majority answered. */
  private async readAll(rel: number, len: number, failCode: number): Promise<(Buffer | undefined)[]> {
    const out: (Buffer | undefined)[] = [];
    let ok = 0;
    let lastErr: unknown;
    for (const d of this.res.disks) {
      try {
        out.push(await ioRead(d.disk, d.offset + rel, len, this.ioMs, this.stats));
        ok++;
      } catch (e) {
        out.push(undefined);
        lastErr = e;
      }
    }
    if (!majority(this.res.disks.length, ok)) {
      if (this.res.disks.length === 1 && lastErr instanceof SanlockError) throw lastErr;
      throw new SanlockError(failCode, `read majority failed (${ok}/${this.res.disks.length})`, { cause: lastErr });
    }
    return out;
  }

  private async writeAll(rel: number, data: Buffer, failCode: number): Promise<void> {
    let ok = 0;
    let lastErr: unknown;
    for (const d of this.res.disks) {
      try {
        await ioWrite(d.disk, d.offset + rel, data, this.ioMs, this.stats);
        ok++;
      } catch (e) {
        lastErr = e;
      }
    }
    if (!majority(this.res.disks.length, ok)) {
      if (this.res.disks.length === 1 && lastErr instanceof SanlockError) throw lastErr;
      throw new SanlockError(failCode, `write majority failed (${ok}/${this.res.disks.length})`, { cause: lastErr });
    }
  }

  private verifyLeaderAt(buf: Buffer): number {
    const rv = verifyLeader(buf, 0, {
      magic: PAXOS_DISK_MAGIC,
      version: PAXOS_DISK_VERSION,
      spaceName: this.res.spaceName,
      resourceName: this.res.resourceName,
    });
    if (rv < 0) return rv;
    // sanlock checks num_hosts before the checksum; verifyLeader already passed the checksum,
    // which only matters for the order of two simultaneous faults.
    const l = decodeLeader(buf, 0);
    if (l.numHosts < this.hostId) return SanlkCode.SANLK_LEADER_NUMHOSTS;
    return 0;
  }

  /** Picks the leader held by a majority of disks (first 152 bytes); -220 / -222 otherwise. */
  private chooseLeader(bufs: (Buffer | undefined)[]): Buffer {
    const n = this.res.disks.length;
    if (n === 1) {
      const b = bufs[0];
      assert.ok(b);
      const rv = this.verifyLeaderAt(b);
      if (rv < 0) throw new SanlockError(rv, `lease ${this.res.spaceName}:${this.res.resourceName} leader verify failed`);
      return b.subarray(0, LEADER_SIZE);
    }
    const good: Buffer[] = [];
    for (const b of bufs) if (b && this.verifyLeaderAt(b) === 0) good.push(b.subarray(0, LEADER_SIZE));
    if (!majority(n, good.length)) throw new SanlockError(SanlkCode.SANLK_LEADER_READ, 'leader read: no majority of valid leaders');
    for (const cand of good) {
      const reps = good.filter((g) => leadersMatch(g, cand)).length;
      if (majority(n, reps)) return cand;
    }
    throw new SanlockError(SanlkCode.SANLK_LEADER_DIFF, 'leader read: disks disagree');
  }

  /** Leader only (one sector per disk). */
  async readLeader(): Promise<{ leader: Leader; raw: Buffer }> {
    const bufs = await this.readAll(0, this.ss, SanlkCode.SANLK_LEADER_READ);
    const raw = Buffer.from(this.chooseLeader(bufs));
    return { leader: decodeLeader(raw, 0), raw };
  }

  // ---------------------------------------------------------------- §3.1 read

  /** Whole-area read of the lease: leader, every dblock and mode block (q < num_hosts). */
  async read(): Promise<LeaseRead> {
    for (let attempt = 0; ; attempt++) {
      assert.ok(attempt < 3, 'lease geometry keeps changing');
      const g = this.geometry;
      const bufs = await this.readAll(0, g.alignSize, SanlkCode.SANLK_LEADER_READ);
      const leaderRaw = Buffer.from(this.chooseLeader(bufs));
      const leader = decodeLeader(leaderRaw, 0);
      const numHosts = Math.min(leader.numHosts, Math.floor(g.alignSize / g.sectorSize) - 2);
      const dblocks: Readonly<Dblock>[] = [];
      const modes: Readonly<ModeBlock>[] = [];
      let maxMbal = 0;
      let ownAccepted: Dblock | undefined;
      // Hosts that never wrote leave whole zero ranges: a sector zero on every disk decodes to
      // the zero dblock and a non-SHARED mode block, so it is produced without decoding.
      const zeroChunks = zeroChunkMaps(bufs, 2, numHosts + 2, g.sectorSize);
      const chunkSectors = zeroChunkSectors(g.sectorSize);
      for (let q = 0; q < numHosts; q++) {
        let best: Dblock | undefined;
        let mode: ModeBlock = ZERO_MODE;
        const chunk = Math.floor(q / chunkSectors);
        if (zeroChunks?.every((z) => z === undefined || z[chunk] === 1)) {
          dblocks.push(ZERO_DBLOCK);
          modes.push(ZERO_MODE);
          continue;
        }
        for (const b of bufs) {
          if (!b) continue;
          const off = (2 + q) * g.sectorSize;
          if (!dblockValid(b, off)) {
            if (this.res.disks.length === 1) {
              throw new SanlockError(SanlkCode.SANLK_DBLOCK_CHECKSUM, `dblock ${q + 1} checksum error`);
            }
            continue;
          }
          const d = decodeDblock(b, off);
          if (!best || d.mbal > best.mbal) best = d;
          if (q + 1 === this.hostId && d.bal !== 0 && d.inp !== 0 && (!ownAccepted || d.bal > ownAccepted.bal)) ownAccepted = d;
          const m = decodeModeBlock(b, off);
          if (m.flags & MBLOCK_SHARED) mode = m;
        }
        const d = best ?? emptyDblock();
        dblocks.push(d);
        modes.push(mode);
        if (d.mbal > maxMbal) maxMbal = d.mbal;
      }
      // Everything above was decoded or copied out of the area buffers: the next large read may
      // reuse them (no new mapping, no garbage per acquire).
      for (const b of bufs) recycleReadBuffer(b);
      // Adopt the lease's own geometry only after the dblock checks, as sanlock does (a 4K lease
      // read through a 512 lockspace fails -214 there).
      const lg = geometryFromLeader(leader.sectorSize, leader.flags);
      if (lg.sectorSize !== g.sectorSize || lg.alignSize !== g.alignSize) {
        this.geometry = lg;
        continue;
      }
      return { geometry: g, leader, leaderRaw, dblocks, modes, maxMbal, ownAccepted };
    }
  }

  // ---------------------------------------------------------------- §3.3 acquire

  private async sleepMs(ms: number, signal?: AbortSignal): Promise<void> {
    await this.host.clock.sleep(ms, signal);
  }

  /** 0–1 s random back-off after a lost ballot (sanlock: usleep(rand 0..1e6)). */
  private async backoff(signal?: AbortSignal): Promise<void> {
    const ms = Math.floor(this.host.random.next() * 1000);
    assert.ok(ms >= 0 && ms < 1000);
    await this.sleepMs(ms, signal);
  }

  private firstMbal(maxMbal: number, maxHosts: number): number {
    if (maxMbal === 0) return this.hostId;
    return maxMbal - (maxMbal % maxHosts) + maxHosts + this.hostId;
  }

  /**
   * Waits while the current owner may be alive (§3.3 step 3). Resolves 'run' when a ballot may
   * run, 'restart' when the leader changed; throws -243/-247.
   */
  private async checkOwner(cur: Leader, curRaw: Buffer, rd: LeaseRead, opts: AcquireOptions): Promise<'run' | 'restart'> {
    const clock = this.host.clock;
    const ls = this.host.lockspace;
    const snap = ls.hostSnapshot(cur.spaceName, cur.ownerId);
    const snapValid =
      snap !== undefined && snap.lastCheck !== 0 && snap.lastLive !== 0 && snap.ownerId === cur.ownerId && snap.generation === cur.ownerGeneration;
    const waitStart = snapValid ? snap.lastLive : clock.monotonicSeconds();
    let lastTs = snapValid ? snap.timestamp : 0;
    const seenChanging = snapValid && snap.lastCheck === snap.lastLive;
    const nOther = (snap?.ioTimeout || 0) || this.host.ioTimeout;
    const deadAfter = this.host.bugs?.shortHostDeadWait ? 1 : hostDeadSeconds(nOther, this.host.watchdogFireTimeout ?? DEFAULT_WATCHDOG_FIRE_TIMEOUT);

    for (;;) {
      const rec = await ls.readDeltaRecord(cur.spaceName, cur.ownerId);
      if (rec.timestamp === 0) return 'run';
      if (rec.ownerId !== cur.ownerId || rec.ownerGeneration > cur.ownerGeneration) return 'run';
      if (lastTs === 0) {
        lastTs = rec.timestamp;
      } else {
        const alive = rec.timestamp !== lastTs || seenChanging;
        if (alive) {
          const ownerDblock = rd.dblocks[cur.ownerId - 1];
          if (cur.writeId !== cur.ownerId && ownerDblock && ownerDblock.flags & DBLOCK_FL_RELEASED) return 'run';
          throw new SanlockError(SanlkCode.SANLK_ACQUIRE_IDLIVE, `owner ${cur.ownerId}/${cur.ownerGeneration} is alive`, { leader: cur });
        }
        if (clock.monotonicSeconds() - waitStart > deadAfter) return 'run';
        if (opts.ownerNoWait) {
          throw new SanlockError(SanlkCode.SANLK_ACQUIRE_OWNED_RETRY, `owner ${cur.ownerId} not yet dead`, { leader: cur });
        }
      }
      await this.sleepMs(1000, opts.signal);
      const again = await this.readLeader();
      if (!again.raw.equals(curRaw)) return 'restart';
    }
  }

  /** Sector image of our dblock (+ mode block when keeping SH). */
  private dblockSector(d: Dblock, keepShared: boolean): Buffer {
    const mode: ModeBlock = keepShared ? { flags: MBLOCK_SHARED, generation: this.generation } : { flags: 0, generation: 0 };
    return hostSector(this.ss, d, mode);
  }

  private async writeOurDblock(d: Dblock, keepShared: boolean): Promise<void> {
    const sec = this.dblockSector(d, keepShared);
    await this.writeAll((2 + this.hostId - 1) * this.ss, sec, SanlkCode.SANLK_DBLOCK_WRITE);
    this.ourDblock = { ...d };
    this.ourMode = keepShared ? { flags: MBLOCK_SHARED, generation: this.generation } : { flags: 0, generation: 0 };
  }

  /**
   * Reads 2^ceil(log2(num_hosts+2)) sectors from every disk and applies the ballot's abort
   * rules. Returns the dblock with the highest bal for next_lver (if any) and SHARED holders.
   */
  private async ballotRead(numHosts: number, nextLver: number, ourMbal: number): Promise<{ bkMax: Dblock | undefined; shared: number[] }> {
    const sectors = Math.min(roundupPow2(numHosts + 2), Math.floor(this.geometry.alignSize / this.ss));
    const bufs = await this.readAll(0, sectors * this.ss, SanlkCode.SANLK_DBLOCK_READ);
    const scan = this.scanDblockArea(bufs, numHosts, sectors, nextLver, ourMbal);
    for (const b of bufs) recycleReadBuffer(b); // the scan keeps no view of them
    // Every mode block is noted before any abort: the SH-holder check after a grant (possibly
    // one committed by another host) relies on what even an aborted ballot read.
    if (scan.abort) throw scan.abort;
    return { bkMax: scan.bkMax, shared: scan.shared };
  }

  /**
   * One pass over the dblock area of every disk (sector 0 = leader) doing the work of the
   * ballot's checks and of the mode-block notes together. Mode blocks of other hosts that are
   * SHARED go into seenShared (and `shared`), in every sector, even after an abort condition
   * was found. With `nextLver` undefined only the notes are taken. `abort` is the error the
   * ballot must throw: the first one in (disk, host) order, as a loop that stops there finds.
   *
   * Almost all of a 2000-host area is zero (hosts that never wrote). A zero dblock is valid and
   * decodes to lver 0, mbal 0, inp 0: it can neither abort nor carry a value, so zero ranges are
   * skipped with one native compare, and a sector whose dblock is zero only has its mode block
   * looked at. Nothing is allocated per sector.
   */
  private scanDblockArea(
    bufs: (Buffer | undefined)[],
    numHosts: number,
    sectors: number,
    nextLver: number | undefined,
    ourMbal: number,
  ): { bkMax: Dblock | undefined; shared: number[]; abort: SanlockError | undefined } {
    const ss = this.ss;
    const end = Math.min(numHosts + 2, sectors);
    const chunkSectors = Math.max(1, Math.floor(ZERO_CHUNK.length / ss));
    const shared = new Set<number>();
    let bkMax: Dblock | undefined;
    let abort: SanlockError | undefined;
    for (const b of bufs) {
      if (!b) continue;
      assert.ok(b.length >= end * ss, 'dblock area read short');
      for (let c = 2; c < end; c += chunkSectors) {
        const cEnd = Math.min(c + chunkSectors, end);
        if (b.compare(ZERO_CHUNK, 0, (cEnd - c) * ss, c * ss, cEnd * ss) === 0) continue;
        for (let s = c; s < cEnd; s++) {
          const off = s * ss;
          const host = s - 1;
          if (!dblockBodyZero(b, off)) {
            if (sanlockChecksum(b, off, off + DBLOCK_CHECKSUM_LEN) !== b.readUInt32LE(off + 48)) continue;
            if (nextLver !== undefined && abort === undefined) {
              const lver = readU64(b, off + 40);
              if (lver > nextLver) {
                abort = new SanlockError(SanlkCode.SANLK_DBLOCK_LVER, `dblock ${host} lver ${lver} > ${nextLver}`);
              } else if (lver === nextLver) {
                const mbal = readU64(b, off);
                if (mbal > ourMbal && !this.host.bugs?.ignoreMbalAbort) {
                  abort = new SanlockError(SanlkCode.SANLK_DBLOCK_MBAL, `dblock ${host} mbal ${mbal} > ${ourMbal}`);
                } else {
                  const bal = readU64(b, off + 8);
                  const inp = readU64(b, off + 16);
                  if (inp !== 0 && bal !== 0 && (!bkMax || bal > bkMax.bal)) bkMax = decodeDblock(b, off);
                }
              }
            }
          }
          if (host !== this.hostId && b.readUInt32LE(off + MBLOCK_OFFSET) & MBLOCK_SHARED) shared.add(host);
        }
      }
    }
    if (shared.size > 0) {
      this.seenShared ??= new Set();
      for (const h of shared) this.seenShared.add(h);
    }
    return { bkMax, shared: [...shared].sort((a, b) => a - b), abort };
  }

  /** The dblock area as a ballot reads it, for its mode blocks only. */
  private async readSharedModes(numHosts: number): Promise<void> {
    const sectors = Math.min(roundupPow2(numHosts + 2), Math.floor(this.geometry.alignSize / this.ss));
    const bufs = await this.readAll(0, sectors * this.ss, SanlkCode.SANLK_DBLOCK_READ);
    this.scanDblockArea(bufs, numHosts, sectors, undefined, 0);
    for (const b of bufs) recycleReadBuffer(b);
  }

  private grant(l: Leader, byOther: boolean): Leader {
    this.leader = l;
    this.heldLver = l.lver;
    this.grantedByOther = byOther;
    this.sharedHolders = this.seenShared ? [...this.seenShared].sort((a, b) => a - b) : [];
    this.phase2Started = false;
    return l;
  }

  /**
   * One Disk Paxos ballot for `nextLver` with ballot number `ourMbal` (§3.3 step 6).
   * Throws -212/-213 when another host is ahead, I/O errors otherwise.
   */
  private async runBallot(numHosts: number, nextLver: number, ourMbal: number, keepShared: boolean): Promise<BallotResult> {
    this.lastMbal = ourMbal;
    // Phase 1: announce mbal. sanlock zeroes bal/inp here; we keep the value we accepted
    // earlier for this same lver (Disk Paxos proper). Zeroing erases the only trace of a value
    // that may be chosen: when our commit write timed out but lands later, a ballot that no
    // longer sees our accepted value may choose another owner for the same lver.
    const acc = this.accepted?.lver === nextLver ? this.accepted : undefined;
    await this.writeOurDblock(
      { mbal: ourMbal, bal: acc?.bal ?? 0, inp: acc?.inp ?? 0, inp2: acc?.inp2 ?? 0, inp3: acc?.inp3 ?? 0, lver: nextLver, flags: 0 },
      keepShared,
    );
    const p1 = await this.ballotRead(numHosts, nextLver, ourMbal);
    const value = p1.bkMax
      ? { inp: p1.bkMax.inp, inp2: p1.bkMax.inp2, inp3: p1.bkMax.inp3 }
      : { inp: this.hostId, inp2: this.generation, inp3: this.host.clock.monotonicSeconds() };
    if (this.host.bugs?.commitBeforePhase2) return { ...value, sharedHolders: p1.shared };

    // Phase 2: accept the value at our ballot; nobody with a higher mbal may have joined.
    this.phase2Started = true;
    const d2: Dblock = { mbal: ourMbal, bal: ourMbal, ...value, lver: nextLver, flags: 0 };
    await this.writeOurDblock(d2, keepShared);
    this.accepted = { ...d2 };
    let shared = p1.shared;
    if (!this.host.bugs?.skipPhase2Read) {
      const p2 = await this.ballotRead(numHosts, nextLver, ourMbal);
      shared = p2.shared;
    }
    return { ...value, sharedHolders: shared };
  }

  private phase2Started = false;
  /** the highest-bal value we know we accepted (from disk or our own phase-2 write) */
  private accepted: Dblock | undefined;

  /**
   * Acquire the lease EX (§3.3). Resolves with the committed leader (owner = us).
   * With `shared`, the leader carries SHORT_HOLD: shared-mode.ts turns it into an SH hold.
   */
  async acquire(opts: AcquireOptions = {}): Promise<Leader> {
    assert.ok(!this.held, 'acquire while already holding the lease');
    const keepShared = opts.keepSharedMode === true;
    this.phase2Started = false;
    this.needRetract = false;
    this.seenShared = undefined;
    this.sharedHolders = [];
    this.lastBallot = undefined;
    this.grantedByOther = false;
    try {
      return await this.acquireInner(opts, keepShared);
    } catch (e) {
      // §3.3 step 8: after phase 2 began, an I/O failure may still leave us as the owner.
      if (this.phase2Started && isIoError(e)) this.needRetract = true;
      throw e;
    }
  }

  private async acquireInner(opts: AcquireOptions, keepShared: boolean): Promise<Leader> {
    restart: for (;;) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const rd = await this.read();
      const cur = rd.leader;
      const curRaw = rd.leaderRaw;
      this.ourDblock = { ...(rd.dblocks[this.hostId - 1] ?? emptyDblock()) };
      const own = rd.ownAccepted;
      if (own && (!this.accepted || own.lver > this.accepted.lver || (own.lver === this.accepted.lver && own.bal > this.accepted.bal))) {
        this.accepted = { ...own };
      }

      if (opts.lver !== undefined && opts.lver !== 0 && cur.lver !== opts.lver) {
        throw new SanlockError(SanlkCode.SANLK_ACQUIRE_LVER, `lease lver ${cur.lver} is not ${opts.lver}`, { leader: cur });
      }

      let reuseLeader = false;
      if (cur.timestamp === 0) {
        reuseLeader = true;
      } else if (cur.ownerId === this.hostId && cur.ownerGeneration === this.generation) {
        reuseLeader = true;
      } else if (cur.ownerId === this.hostId && cur.ownerGeneration < this.generation) {
        reuseLeader = false;
      } else {
        const r = await this.checkOwner(cur, curRaw, rd, opts);
        if (r === 'restart') continue;
      }

      const nextLver = cur.lver + 1;
      // Our dblock already belongs to a later lver: we could only have balloted for it after
      // reading a later leader, so this leader is stale (a commit write that timed out and landed
      // late). Our phase-1 write would erase the only trace of that later lver's value.
      if (this.ourDblock.lver > nextLver) {
        throw new SanlockError(SanlkCode.SANLK_DBLOCK_LVER, `our dblock is at lver ${this.ourDblock.lver}, leader at ${cur.lver}`, { leader: cur });
      }
      const maxHosts = cur.maxHosts;
      assert.ok(maxHosts > 0, 'leader max_hosts is 0');
      const numHosts = Math.min(cur.numHosts, Math.floor(this.geometry.alignSize / this.ss) - 2);
      let ourMbal = this.firstMbal(rd.maxMbal, maxHosts);

      for (;;) {
        // §3.3 step 5: has somebody finished this lver meanwhile?
        if (!reuseLeader) {
          const now = await this.readLeader();
          const l = now.leader;
          if (l.lver === nextLver) {
            if (l.ownerId === this.hostId && l.ownerGeneration === this.generation && l.timestamp !== 0) {
              // Another host's ballot chose our value: no ballot of ours finished, so what we
              // know of SH holders may be partial (an aborted read, or none in this call). Read
              // the mode blocks now, after the grant, before anyone checks SH holders.
              if (!opts.shared) {
                try {
                  await this.readSharedModes(numHosts);
                } catch (e) {
                  // The lease is ours on disk: release() must mark our dblock RELEASED.
                  this.needRetract = true;
                  throw e;
                }
              }
              return this.grant(l, true);
            }
            throw new SanlockError(SanlkCode.SANLK_ACQUIRE_OWNED, `lver ${nextLver} committed by ${l.writeId} for ${l.ownerId}`, { leader: l });
          }
          if (l.lver > nextLver) continue restart;
          if (!now.raw.equals(curRaw)) continue restart;
        }
        reuseLeader = false;

        let ballot: BallotResult;
        try {
          ballot = await this.runBallot(numHosts, nextLver, ourMbal, keepShared);
        } catch (e) {
          if (e instanceof SanlockError && e.code === SanlkCode.SANLK_DBLOCK_MBAL) {
            this.phase2Started = false;
            await this.backoff(opts.signal);
            ourMbal += maxHosts;
            continue;
          }
          if (e instanceof SanlockError && e.code === SanlkCode.SANLK_DBLOCK_LVER) {
            // A later lver is being balloted: start over from a fresh leader. When the leader
            // did not move (a late commit write put an older leader back), retrying this lver
            // could never succeed: fail -212 as sanlock does.
            this.phase2Started = false;
            const now = await this.readLeader();
            if (!now.raw.equals(curRaw)) continue restart;
          }
          throw e;
        }
        this.lastBallot = ballot;

        // §3.3 step 7: commit.
        const now = this.host.clock.monotonicSeconds();
        const nl: Leader = {
          ...cur,
          lver: nextLver,
          ownerId: ballot.inp,
          ownerGeneration: ballot.inp2,
          timestamp: ballot.inp3,
          writeId: this.hostId,
          writeGeneration: this.generation,
          writeTimestamp: now,
        };
        if (opts.numHosts) nl.numHosts = opts.numHosts;
        if (nl.ownerId === this.hostId) {
          nl.flags = opts.shared ? nl.flags | LFL_SHORT_HOLD : nl.flags & ~LFL_SHORT_HOLD;
        }
        const sec = Buffer.alloc(this.ss);
        encodeLeader(nl, sec, 0);
        await this.writeAll(0, sec, SanlkCode.SANLK_LEADER_WRITE);
        const committed = decodeLeader(sec, 0);
        if (committed.ownerId !== this.hostId || committed.ownerGeneration !== this.generation) {
          throw new SanlockError(SanlkCode.SANLK_ACQUIRE_OTHER, `ballot chose ${committed.ownerId}/${committed.ownerGeneration}`, { leader: committed });
        }
        return this.grant(committed, false);
      }
    }
  }

  // ---------------------------------------------------------------- §3.4 release

  /** Writes our sector with the RELEASED dblock and the given mode block. */
  async writeReleasedDblock(mode: ModeBlock = { flags: 0, generation: 0 }): Promise<void> {
    const d: Dblock = { ...this.ourDblock, flags: this.ourDblock.flags | DBLOCK_FL_RELEASED };
    const sec = hostSector(this.ss, d, mode);
    await this.writeAll((2 + this.hostId - 1) * this.ss, sec, SanlkCode.SANLK_DBLOCK_WRITE);
    this.ourDblock = d;
    this.ourMode = { ...mode };
  }

  /**
   * §3.4 step 3's decision on the leader just read: true = write the freed leader; false = not
   * ours to free (another host wrote it last); throws -250/-251 when the leader moved on.
   */
  private mayFreeLeader(l: Leader, raw: Buffer, expect: Leader | undefined, expectRaw?: Buffer): boolean {
    if (l.writeId !== this.hostId) return false;
    if (expect && l.lver !== expect.lver) {
      throw new SanlockError(SanlkCode.SANLK_RELEASE_LVER, `release: lver ${l.lver} is not ours ${expect.lver}`);
    }
    if (l.timestamp === 0 || l.ownerId !== this.hostId || l.ownerGeneration !== this.generation ||
      (expect && !raw.equals(expectRaw ?? leaderRawOf(expect)))) {
      throw new SanlockError(SanlkCode.SANLK_RELEASE_OWNER, `release: leader owner ${l.ownerId}/${l.ownerGeneration} ts ${l.timestamp}`);
    }
    return true;
  }

  /**
   * Frees the leader if we are still its writer and owner (§3.4 step 3). Used by release and by
   * the SH paths. `expect` is the leader we believe we hold. `renameTo` (SANLK_REL_RENAME):
   * the freed leader carries this resource name instead, in the same single write.
   */
  async releaseLeader(expect: Leader | undefined, renameTo?: string): Promise<void> {
    const { leader: l, raw } = await this.readLeader();
    if (this.mayFreeLeader(l, raw, expect)) await this.writeFreedLeader(l, renameTo);
  }

  private async writeFreedLeader(l: Leader, renameTo?: string): Promise<void> {
    await this.writeAll(0, this.freedLeaderSector(l, renameTo), SanlkCode.SANLK_LEADER_WRITE);
  }

  private freedLeaderSector(l: Leader, renameTo?: string): Buffer {
    const nl: Leader = {
      ...l,
      resourceName: renameTo ?? l.resourceName,
      timestamp: 0,
      writeId: this.hostId,
      writeGeneration: this.generation,
      writeTimestamp: this.host.clock.monotonicSeconds(),
      flags: l.flags & ~LFL_SHORT_HOLD,
    };
    const sec = Buffer.alloc(this.ss);
    encodeLeader(nl, sec, 0);
    return sec;
  }

  /**
   * The common EX release (one disk, the leader we committed ourselves) as one chained request
   * of the same three I/Os: our dblock RELEASED; the leader sector; the freed leader, written
   * only when the leader read is byte for byte the one we hold (then mayFreeLeader says "free
   * it" with no doubt). Any other leader goes through the usual decision. Resolves false when
   * the disk cannot chain (the caller then runs the separate I/Os).
   */
  private async releaseChained(expect: Leader, mode: ModeBlock, renameTo: string | undefined): Promise<boolean> {
    const expectRaw = leaderRawOf(expect);
    // Only a leader that the usual path would accept (chooseLeader) and free (mayFreeLeader):
    // verified, written by us, owned by us, not freed yet. Anything else takes the usual path.
    if (this.verifyLeaderAt(expectRaw) !== 0) return false;
    try {
      if (!this.mayFreeLeader(expect, expectRaw, expect, expectRaw)) return false;
    } catch {
      return false;
    }
    const d: Dblock = { ...this.ourDblock, flags: this.ourDblock.flags | DBLOCK_FL_RELEASED };
    const dsec = hostSector(this.ss, d, mode);
    const disk = this.res.disks[0]!;
    let out: ChainOutcome | undefined;
    try {
      const dblockAt = disk.offset + (2 + this.hostId - 1) * this.ss;
      const freed = this.freedLeaderSector(expect, renameTo);
      const req = { w1Offset: dblockAt, w1: dsec, readOffset: disk.offset, readLength: this.ss, expect: expectRaw, w3Offset: disk.offset, w3: freed };
      out = await ioWriteReadCompareWrite(disk.disk, req, this.ioMs, this.stats);
    } catch (e) {
      // The leader read or the freed-leader write failed: as in release(), a retry may finish.
      this.ourDblock = d;
      this.ourMode = { ...mode };
      this.leader = undefined;
      this.needRetract = isIoError(e);
      throw e;
    }
    if (!out) return false;
    // From here on this is release()'s path, with the I/Os already done.
    if (!out.write1Error) {
      this.ourDblock = d;
      this.ourMode = { ...mode };
    }
    this.leader = undefined;
    this.needRetract = false;
    try {
      if (out.write1Error) {
        // The RELEASED flag is only a hint; the chain stopped there: read and decide as usual.
        await this.releaseLeader(expect, renameTo);
      } else if (!out.wrote3) {
        assert.ok(out.read);
        const raw = Buffer.from(this.chooseLeader([out.read]));
        const l = decodeLeader(raw, 0);
        if (this.mayFreeLeader(l, raw, expect, expectRaw)) await this.writeFreedLeader(l, renameTo);
      } else {
        // Written because the bytes read were expectRaw, which passed both checks above.
        assert.ok(out.read?.subarray(0, LEADER_SIZE).equals(expectRaw));
      }
    } catch (e) {
      if (isIoError(e)) this.needRetract = true;
      throw e;
    }
    return true;
  }

  /**
   * Release an EX hold (§3.4): LVB if pending, our dblock RELEASED, then the leader.
   * Also used after a failed acquire with needRetract set. Our mode block is written SHARED
   * when we hold SH as well (a failed SH→EX convert), zero otherwise: releasing EX never drops
   * an SH hold. When the leader part fails, needRetract is left set so a retry can finish.
   */
  async release(opts: { renameTo?: string } = {}): Promise<void> {
    if (!this.held && !this.needRetract) return;
    if (this.held && this.lvbDirty) await this.writeLvb();
    const mode: ModeBlock = this.shHeld ? { flags: MBLOCK_SHARED, generation: this.generation } : { flags: 0, generation: 0 };
    if (this.leader && this.res.disks.length === 1 && (await this.releaseChained(this.leader, mode, opts.renameTo))) return;
    try {
      await this.writeReleasedDblock(mode);
    } catch {
      // The RELEASED flag is only a hint for others; the leader write below is what counts.
    }
    const expect = this.leader;
    this.leader = undefined;
    this.needRetract = false;
    try {
      if (expect) await this.releaseLeader(expect, opts.renameTo);
      else await this.retractLeader();
    } catch (e) {
      // -250/-251: the leader moved on without us, nothing of ours is left to free there.
      if (isIoError(e)) this.needRetract = true;
      throw e;
    }
  }

  /**
   * After a failure that may have left us as the leader's owner: our dblock RELEASED (mode block
   * SHARED if we hold SH), then free the leader if it names us as writer and owner.
   */
  async retract(): Promise<void> {
    assert.ok(!this.held, 'retract while holding EX: use release()');
    this.needRetract = true;
    await this.release();
  }

  /** Frees the leader only if it names us as writer and owner (we do not know what got committed). */
  private async retractLeader(): Promise<void> {
    const { leader: l } = await this.readLeader();
    if (l.writeId === this.hostId && l.ownerId === this.hostId && l.ownerGeneration === this.generation && l.timestamp !== 0) {
      await this.writeFreedLeader(l);
    }
  }

  /** Forget the hold without touching storage (lockspace lost: the lease is abandoned). */
  abandon(): void {
    this.leader = undefined;
    this.needRetract = false;
  }

  // ---------------------------------------------------------------- §3.7 request record

  /** Reads the request record (sector 1) from the first disk that answers. */
  async readRequest(): Promise<RequestRecord> {
    const bufs = await this.readAll(this.ss, this.ss, SanlkCode.SANLK_LEADER_READ);
    const b = bufs.find((x) => x !== undefined);
    assert.ok(b);
    return decodeRequest(b, 0);
  }

  async writeRequest(r: RequestRecord): Promise<void> {
    const sec = Buffer.alloc(this.ss);
    encodeRequest(r, sec, 0);
    await this.writeAll(this.ss, sec, SanlkCode.SANLK_LEADER_WRITE);
  }

  /** Reads host `hostId`'s mode block (one sector). */
  async readModeBlock(hostId: number): Promise<ModeBlock> {
    const bufs = await this.readAll((2 + hostId - 1) * this.ss, this.ss, SanlkCode.SANLK_DBLOCK_READ);
    let mode: ModeBlock = { flags: 0, generation: 0 };
    for (const b of bufs) {
      if (!b) continue;
      const m = decodeModeBlock(b, 0);
      if (m.flags & MBLOCK_SHARED) mode = m;
    }
    return mode;
  }

  /** Writes host `hostId`'s whole sector as zeros (clearing a dead SH holder). */
  async clearHostSector(hostId: number): Promise<void> {
    await this.writeAll((2 + hostId - 1) * this.ss, Buffer.alloc(this.ss), SanlkCode.SANLK_DBLOCK_WRITE);
  }

  /** Our sector with the dblock as last written and the given mode block. */
  async writeOurSector(mode: ModeBlock): Promise<void> {
    const sec = hostSector(this.ss, this.ourDblock, mode);
    await this.writeAll((2 + this.hostId - 1) * this.ss, sec, SanlkCode.SANLK_DBLOCK_WRITE);
    this.ourMode = { ...mode };
  }

  // ---------------------------------------------------------------- §3.8 LVB

  private get lvbRel(): number {
    return LVB_SECTOR * this.ss;
  }

  /** Reads sector 2002 (first disk that answers) into memory. */
  async readLvb(): Promise<Buffer> {
    const bufs = await this.readAll(this.lvbRel, this.ss, SanlkCode.SANLK_DBLOCK_READ);
    const b = bufs.find((x) => x !== undefined);
    assert.ok(b);
    this.lvb = Buffer.from(b);
    this.lvbDirty = false;
    return Buffer.from(b);
  }

  /** Updates the in-memory LVB; written at EX release or EX→SH convert. */
  setLvb(data: Buffer): void {
    if (data.length > this.ss) throw new SanlockError(-22, `lvb larger than sector (${data.length})`);
    const b = Buffer.alloc(this.ss);
    data.copy(b);
    this.lvb = b;
    this.lvbDirty = true;
  }

  async writeLvb(): Promise<void> {
    assert.ok(this.lvb);
    await this.writeAll(this.lvbRel, this.lvb, SanlkCode.SANLK_DBLOCK_WRITE);
    this.lvbDirty = false;
  }
}
