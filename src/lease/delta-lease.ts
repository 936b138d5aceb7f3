// Delta lease: a host's ownership of one host_id (sector h-1) in a lockspace, kept by rewriting
// a timestamp every 2N seconds (spec/algorithms.md §2). Behaves like sanlock 3.8.5 I/O for I/O so
// that sanlock-ts and sanlock hosts can share a lockspace.
//
// API (for the daemon and the simulator):
//
//   const dl = new DeltaLease({ disk, offset, spaceName, hostId, hostName, ioTimeout, clock });
//   await dl.acquire(signal)          // join: waits 2N_o (free) or 8N_o+W+2N_o (held); → generation
//   const area = await dl.renew()     // one renewal: full-area read + own-sector write; → area read
//   dl.renewalDue() / dl.nextRenewalDelayMs()   // when the next renewal should run (2N cadence)
//   await dl.renewLoop(signal, hooks) // optional ready-made loop with sanlock's 1 s / 0.5 s pacing
//   dl.setEvent(target, {generation, event, data})   // host event, carried by next renewals
//   dl.setRequestBit(hostId)          // ask host to examine its leases (request records)
//   await dl.release()                // timestamp 0, one sector write
//   dl.lastArea                        // buffer of the last renewal read (feed HostStateTracker)
//   dl.releaseArea()                   // done with lastArea: its buffer is reused (optional)
//   dl.stats                           // IoStats
//
// Errors are SanlockError with sanlock's codes (-223/-224/-226/-229 verification, -225/-230/-231
// geometry, -262 busy, -260/-261 renewal, -202 timeouts, -errno).
import assert from 'node:assert/strict';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import { namesEqual } from '../ondisk/fields.js';
import { type Geometry, geometryFromLeader } from '../ondisk/geometry.js';
import {
  DELTA_DISK_MAGIC,
  DELTA_DISK_VERSION,
  decodeLeader,
  encodeLeader,
  LEADER_SIZE,
  type Leader,
  verifyLeader,
} from '../ondisk/leader.js';
import type { Disk } from '../storage/disk.js';
import { recycleReadBuffer } from '../storage/read-buffers.js';
import type { Clock } from './clock.js';
import { IoStats, ioRead, ioWrite } from './io.js';
import {
  setBitmapSeconds as calcSetBitmapSeconds,
  DEFAULT_WATCHDOG_FIRE_TIMEOUT,
  deltaAcquireHeldWait,
  deltaShortDelay,
  hostDeadSeconds,
  idRenewalSeconds,
} from './timeouts.js';

export const HOSTID_BITMAP_OFFSET = 256;
export const HOSTID_BITMAP_SIZE = 256;
/** Delta-lease host names are written with snprintf(.., 48, ..): 47 chars + NUL at most. */
export const DELTA_NAME_MAX = 47;

/** Renewal results after which sanlock stops renewing at once (the lockspace has failed). */
const FATAL_RENEWAL_CODES: ReadonlySet<number> = new Set([
  SanlkCode.SANLK_RENEW_OWNER,
  SanlkCode.SANLK_RENEW_DIFF,
  SanlkCode.SANLK_LEADER_MAGIC,
  SanlkCode.SANLK_LEADER_VERSION,
  SanlkCode.SANLK_LEADER_SECTORSIZE,
  SanlkCode.SANLK_LEADER_LOCKSPACE,
  SanlkCode.SANLK_LEADER_CHECKSUM,
]);

export function isFatalRenewalError(code: number): boolean {
  return FATAL_RENEWAL_CODES.has(code);
}

export interface HostEvent {
  /** target host generation (0 = any), stored in write_id */
  generation: number;
  /** event value, stored in write_generation */
  event: number;
  /** data, stored in write_timestamp */
  data: number;
}

export interface DeltaLeaseConfig {
  disk: Disk;
  /** byte offset of the lockspace area */
  offset: number;
  spaceName: string;
  hostId: number;
  /** host name written into resource_name (sanlock: "<uuid>.<nodename>" or -e NAME) */
  hostName: string;
  /** N, seconds */
  ioTimeout: number;
  clock: Clock;
  watchdogFireTimeout?: number;
  /** daemon -b; default 6N */
  setBitmapSeconds?: number;
  /** shared I/O counter; a new one if absent */
  stats?: IoStats;
}

/** Reads 4096 bytes at the lockspace start and takes the geometry from host 1's record. */
export async function discoverLockspaceGeometry(disk: Disk, offset: number, timeoutMs: number, stats: IoStats): Promise<Geometry> {
  const buf = await ioRead(disk, offset, 4096, timeoutMs, stats);
  const l = decodeLeader(buf, 0);
  if (l.magic !== DELTA_DISK_MAGIC) {
    throw new SanlockError(SanlkCode.SANLK_LEADER_MAGIC, `lockspace at ${disk.path}:${offset} has no delta lease (magic 0x${l.magic.toString(16)})`);
  }
  // geometryFromLeader gives -225 for a bad sector size and -230 for a bad align flag.
  return geometryFromLeader(l.sectorSize, l.flags);
}

/**
 * Reads and fully verifies host `hostId`'s delta record (one sector). Used by join and by
 * the paxos owner-liveness check.
 */
export async function readDeltaRecord(
  disk: Disk,
  offset: number,
  geometry: Geometry,
  spaceName: string,
  hostId: number,
  timeoutMs: number,
  stats: IoStats,
): Promise<{ leader: Leader; raw: Buffer }> {
  assert.ok(hostId >= 1 && hostId <= geometry.maxHosts, `host_id ${hostId} out of range`);
  const ss = geometry.sectorSize;
  const buf = await ioRead(disk, offset + (hostId - 1) * ss, ss, timeoutMs, stats);
  const rv = verifyLeader(buf, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName });
  if (rv < 0) throw new SanlockError(rv, `delta lease ${spaceName}:${hostId} verify failed`);
  return { leader: decodeLeader(buf, 0), raw: Buffer.from(buf.subarray(0, LEADER_SIZE)) };
}

export type DeltaState = 'idle' | 'held' | 'released';

export interface RenewLoopHooks {
  /** called with the area read after each successful renewal */
  onRenewed?(area: Buffer, timestamp: number): void;
  /** called with each failed attempt's code; return true to stop the loop */
  // biome-ignore lint/suspicious/noConfusingVoidType: callers pass plain `(code) => { ... }` loggers
  onError?(code: number, err: unknown): boolean | void;
}

export class DeltaLease {
  readonly disk: Disk;
  readonly offset: number;
  readonly spaceName: string;
  readonly hostId: number;
  readonly hostName: string;
  readonly ioTimeout: number;
  readonly clock: Clock;
  readonly watchdogFireTimeout: number;
  readonly setBitmapSeconds: number;
  readonly stats: IoStats;

  geometry: Geometry | undefined;
  state: DeltaState = 'idle';
  /** our host generation (owner_generation we wrote at acquire) */
  generation = 0;
  /** timestamp of our last successful write (acquire or renewal) */
  lastSuccess = 0;
  /** the 200-byte record we last wrote successfully */
  lastWritten: Buffer | undefined;
  /** whether the previous renewal (or the acquire) succeeded: enables the -261 check */
  prevRenewalOk = false;
  /** the whole lockspace area read by the last successful renewal */
  lastArea: Buffer | undefined;
  /** the current host event (written into write_id/_generation/_timestamp) */
  event: HostEvent = { generation: 0, event: 0, data: 0 };
  /** host_id → monotonic second its bit was set */
  private bitSetAt = new Map<number, number>();
  private eventSetAt = 0;

  constructor(cfg: DeltaLeaseConfig) {
    assert.ok(cfg.hostId >= 1, `host_id ${cfg.hostId} must be ≥ 1`);
    assert.ok(Number.isInteger(cfg.ioTimeout) && cfg.ioTimeout > 0 && cfg.ioTimeout <= 0xff, `bad io_timeout ${cfg.ioTimeout}`);
    this.disk = cfg.disk;
    this.offset = cfg.offset;
    this.spaceName = cfg.spaceName;
    this.hostId = cfg.hostId;
    this.hostName = cfg.hostName;
    this.ioTimeout = cfg.ioTimeout;
    this.clock = cfg.clock;
    this.watchdogFireTimeout = cfg.watchdogFireTimeout ?? DEFAULT_WATCHDOG_FIRE_TIMEOUT;
    this.setBitmapSeconds = calcSetBitmapSeconds(cfg.ioTimeout, cfg.setBitmapSeconds);
    this.stats = cfg.stats ?? new IoStats();
  }

  private get ioMs(): number {
    return this.ioTimeout * 1000;
  }

  private sectorOffset(hostId: number): number {
    assert.ok(this.geometry);
    return this.offset + (hostId - 1) * this.geometry.sectorSize;
  }

  /** Geometry of the lockspace (read from host 1's record once). -225/-230/-231. */
  async loadGeometry(): Promise<Geometry> {
    if (!this.geometry) {
      const g = await discoverLockspaceGeometry(this.disk, this.offset, this.ioMs, this.stats);
      if (this.hostId > g.maxHosts) {
        throw new SanlockError(SanlkCode.SANLK_ADDLS_INVALID_HOSTID, `host_id ${this.hostId} > max_hosts ${g.maxHosts}`);
      }
      this.geometry = g;
    }
    return this.geometry;
  }

  private async readOwn(): Promise<{ leader: Leader; raw: Buffer }> {
    const g = await this.loadGeometry();
    return readDeltaRecord(this.disk, this.offset, g, this.spaceName, this.hostId, this.ioMs, this.stats);
  }

  /** 1-s steps so an abort (rem_lockspace during add_lockspace) is noticed promptly. */
  private async sleepSeconds(seconds: number, signal?: AbortSignal): Promise<void> {
    const end = this.clock.monotonicMs() + seconds * 1000;
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const left = end - this.clock.monotonicMs();
      if (left <= 0) return;
      try {
        await this.clock.sleep(Math.min(1000, left), signal);
      } catch (e) {
        if (signal?.aborted) throw abortError(signal);
        throw e;
      }
    }
  }

  /** Sector image of a record: leader, zeros, bitmap. */
  private sectorWith(l: Leader, bitmap?: Buffer): Buffer {
    const g = this.geometry;
    assert.ok(g);
    const sec = Buffer.alloc(g.sectorSize);
    encodeLeader(l, sec, 0, DELTA_NAME_MAX);
    if (bitmap) bitmap.copy(sec, HOSTID_BITMAP_OFFSET);
    return sec;
  }

  /**
   * Join: take our host_id (§2.1). Resolves with our new host generation.
   * Waits 2N_o when the host_id is free or ours by name, otherwise max(host_dead(N_o), 8N_o)
   * first and fails -262 if its owner renewed meanwhile.
   */
  async acquire(signal?: AbortSignal): Promise<number> {
    assert.notEqual(this.state, 'held', 'delta lease already held');
    const first = await this.readOwn();
    let cur = first.leader;
    const nOther = cur.ioTimeout || this.ioTimeout;

    if (cur.timestamp !== 0 && !namesEqual(cur.resourceName, this.hostName)) {
      await this.sleepSeconds(deltaAcquireHeldWait(nOther, this.watchdogFireTimeout), signal);
      const again = await this.readOwn();
      if (!again.raw.equals(first.raw) && again.leader.timestamp !== 0) {
        throw new SanlockError(SanlkCode.SANLK_HOSTID_BUSY, `host_id ${this.hostId} is renewed by ${again.leader.resourceName}`);
      }
      cur = again.leader;
    }

    const now = this.clock.monotonicSeconds();
    const mine: Leader = {
      ...cur,
      timestamp: now,
      ioTimeout: this.ioTimeout & 0xff,
      ownerId: this.hostId,
      ownerGeneration: cur.ownerGeneration + 1,
      resourceName: this.hostName.slice(0, DELTA_NAME_MAX),
    };
    const sec = this.sectorWith(mine);
    await ioWrite(this.disk, this.sectorOffset(this.hostId), sec, this.ioMs, this.stats);
    const written = Buffer.from(sec.subarray(0, LEADER_SIZE));

    await this.sleepSeconds(deltaShortDelay(nOther), signal);
    const check = await this.readOwn();
    if (!check.raw.equals(written)) {
      throw new SanlockError(SanlkCode.SANLK_HOSTID_BUSY, `host_id ${this.hostId} was written by another host during join`);
    }
    this.generation = mine.ownerGeneration;
    this.lastWritten = written;
    this.lastSuccess = now;
    this.prevRenewalOk = true;
    this.state = 'held';
    return this.generation;
  }

  /** Seconds since our last successful renewal (the daemon's warn 6N / fail 8N checks). */
  renewalGap(now = this.clock.monotonicSeconds()): number {
    return now - this.lastSuccess;
  }

  /** True when the 2N renewal interval has passed. */
  renewalDue(now = this.clock.monotonicSeconds()): boolean {
    return now - this.lastSuccess >= idRenewalSeconds(this.ioTimeout);
  }

  /** The 256-byte bitmap our next renewal writes. Our own bit is never set. */
  bitmap(now = this.clock.monotonicSeconds()): Buffer {
    const bm = Buffer.alloc(HOSTID_BITMAP_SIZE);
    for (const [hostId, at] of this.bitSetAt) {
      if (now - at > this.setBitmapSeconds) {
        this.bitSetAt.delete(hostId);
        continue;
      }
      if (hostId === this.hostId) continue;
      setBit(bm, hostId);
    }
    return bm;
  }

  /** Ask `hostId` to look at its leases (resource request) for set_bitmap_seconds. */
  setRequestBit(hostId: number): void {
    assert.ok(hostId >= 1 && hostId <= HOSTID_BITMAP_SIZE * 8, `bad host_id ${hostId}`);
    if (hostId === this.hostId) return;
    this.bitSetAt.set(hostId, this.clock.monotonicSeconds());
  }

  /** Stop asking `hostId` (set_event CLEAR_HOSTID): its bit leaves our next renewal. */
  clearRequestBit(hostId: number): void {
    this.bitSetAt.delete(hostId);
  }

  /**
   * sanlock_set_event: the event goes into our next renewals; `target` is a host_id or 'all'.
   * -EBUSY when a previous event is still being announced and `replace` is not set.
   */
  setEvent(target: number | 'all', ev: HostEvent, opts: { replace?: boolean } = {}): void {
    const now = this.clock.monotonicSeconds();
    if (this.event.event !== 0 && !opts.replace && this.eventSetAt && now - this.eventSetAt <= this.setBitmapSeconds) {
      throw new SanlockError(-Errno.EBUSY, 'previous host event still pending');
    }
    this.event = { ...ev };
    this.eventSetAt = now;
    if (target === 'all') {
      const max = this.geometry?.maxHosts ?? 2000;
      for (let h = 1; h <= max; h++) if (h !== this.hostId) this.bitSetAt.set(h, now);
    } else {
      this.setRequestBit(target);
    }
  }

  clearEvent(): void {
    this.event = { generation: 0, event: 0, data: 0 };
    this.eventSetAt = 0;
  }

  /** Bits currently set (for tests and get_hosts-style reporting). */
  bitmapHosts(now = this.clock.monotonicSeconds()): number[] {
    const bm = this.bitmap(now);
    return bitmapHostIds(bm);
  }

  /**
   * One renewal (§2.2): read the whole area (deadline N), check our record, write it back with
   * a new timestamp (deadline host_dead(N)). Resolves with the area read.
   */
  async renew(): Promise<Buffer> {
    assert.equal(this.state, 'held', 'renew without holding the delta lease');
    assert.ok(this.geometry && this.lastWritten);
    const g = this.geometry;
    const ss = g.sectorSize;
    const own = (this.hostId - 1) * ss;
    try {
      const area = await ioRead(this.disk, this.offset, g.alignSize, this.ioMs, this.stats);
      const rv = verifyLeader(area, own, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: this.spaceName });
      if (rv < 0) throw new SanlockError(rv, 'renewal: our delta record fails verification');
      const onDisk = decodeLeader(area, own);
      const last = decodeLeader(this.lastWritten, 0);
      if (onDisk.ownerId !== this.hostId || onDisk.ownerGeneration !== this.generation || !namesEqual(onDisk.resourceName, last.resourceName)) {
        throw new SanlockError(SanlkCode.SANLK_RENEW_OWNER, `renewal: host_id ${this.hostId} owned by ${onDisk.ownerId}/${onDisk.ownerGeneration} ${onDisk.resourceName}`);
      }
      if (this.prevRenewalOk && !area.subarray(own, own + LEADER_SIZE).equals(this.lastWritten)) {
        throw new SanlockError(SanlkCode.SANLK_RENEW_DIFF, 'renewal: our delta record changed on disk');
      }
      const now = this.clock.monotonicSeconds();
      const next: Leader = {
        ...onDisk,
        timestamp: now,
        ioTimeout: this.ioTimeout & 0xff,
        writeId: this.event.generation,
        writeGeneration: this.event.event,
        writeTimestamp: this.event.data,
      };
      const sec = this.sectorWith(next, this.bitmap(now));
      await ioWrite(this.disk, this.offset + own, sec, hostDeadSeconds(this.ioTimeout, this.watchdogFireTimeout) * 1000, this.stats);
      this.lastWritten = Buffer.from(sec.subarray(0, LEADER_SIZE));
      this.lastSuccess = now;
      this.prevRenewalOk = true;
      // Our sector in the area buffer reflects what we just wrote, as the host-state tracker expects.
      sec.copy(area, own);
      // The previous area is no one's any more: renewals run one after another and each caller
      // is done with its area before the next renewal (the daemon's loop, the sim's hook). Its
      // buffer serves the next large read instead of 1 MiB of garbage every 2 s when idle.
      const prev = this.lastArea;
      this.lastArea = area;
      if (prev !== area) recycleReadBuffer(prev);
      return area;
    } catch (e) {
      this.prevRenewalOk = false;
      throw e;
    }
  }

  /**
   * The caller is done with the area of the last renewal and keeps no view of it: its buffer
   * goes back for the next large read of any lockspace or lease, rather than each lockspace
   * pinning 1–8 MiB between its renewals. lastArea is undefined until the next renewal.
   */
  releaseArea(): void {
    const a = this.lastArea;
    this.lastArea = undefined;
    recycleReadBuffer(a);
  }

  /**
   * sanlock's renewal thread pacing: sleep 1 s while the 2N interval has not passed, then 0.5 s,
   * then renew; 0.5 s between failed attempts. Stops on abort, on a fatal result (returned), or
   * when onError returns true. Resolves with the last error code, or 0 when aborted.
   */
  async renewLoop(signal: AbortSignal, hooks: RenewLoopHooks = {}): Promise<number> {
    for (;;) {
      try {
        while (!this.renewalDue()) await this.clock.sleep(1000, signal);
        await this.clock.sleep(500, signal);
        for (;;) {
          try {
            const area = await this.renew();
            hooks.onRenewed?.(area, this.lastSuccess);
            break;
          } catch (e) {
            const code = e instanceof SanlockError ? e.code : SanlkCode.SANLK_ERROR;
            if (hooks.onError?.(code, e) === true || isFatalRenewalError(code)) return code;
            await this.clock.sleep(500, signal);
          }
        }
      } catch (e) {
        if (signal.aborted) return 0;
        throw e;
      }
    }
  }

  /** rem_lockspace (§2.5): our last record with timestamp 0, bitmap zero; one write. */
  async release(): Promise<void> {
    assert.equal(this.state, 'held', 'release without holding the delta lease');
    assert.ok(this.lastWritten && this.geometry);
    const rec: Leader = { ...decodeLeader(this.lastWritten, 0), timestamp: 0 };
    const sec = this.sectorWith(rec);
    await ioWrite(this.disk, this.sectorOffset(this.hostId), sec, this.ioMs, this.stats);
    this.lastWritten = Buffer.from(sec.subarray(0, LEADER_SIZE));
    this.state = 'released';
  }
}

export function setBit(bitmap: Buffer, hostId: number, off = 0): void {
  const i = hostId - 1;
  bitmap[off + (i >> 3)]! |= 1 << (i & 7);
}

export function testBit(bitmap: Buffer, hostId: number, off = 0): boolean {
  const i = hostId - 1;
  return ((bitmap[off + (i >> 3)]! >> (i & 7)) & 1) === 1;
}

export function bitmapHostIds(bitmap: Buffer, off = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < HOSTID_BITMAP_SIZE * 8; i++) if ((bitmap[off + (i >> 3)]! >> (i & 7)) & 1) out.push(i + 1);
  return out;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new SanlockError(SanlkCode.SANLK_ERROR, 'aborted');
}
