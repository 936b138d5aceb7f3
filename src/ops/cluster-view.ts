// What a lockspace and its leases look like on storage, read from any host without a daemon:
// every used host_id (name, generation, timestamp, io_timeout, bitmap, event) and every lease
// (owner, mode with SH holders, lver, pending request).
//
// One read cannot tell a live host from a dead one: on-disk timestamps are the writer's own
// monotonic clock, which no other host shares (spec/algorithms.md §2). Liveness therefore comes
// only from watching a timestamp change between our own reads, exactly as sanlock's lockspace
// thread does; a single read reports every held host_id as "unknown-age".
//
// API (no CLI here, so the daemon or a library can reuse it):
//   const obs = new ClusterObserver(source, { now?, ioTimeoutMs? });
//   const view = await obs.poll();        // read everything once, update what was seen
//   await readClusterView(source, { sampleSeconds, sleep?, now? })  // 1 read, or 2 reads S apart
//   classifyHost(observation, now)        // the state rule, pure
// Errors: SanlockError with sanlock's codes (-223/-226/-229 lockspace verification, -errno I/O);
// a lease that cannot be read does not fail the view: its row carries the error instead.
import assert from 'node:assert/strict';
import { SanlkCode, SanlockError } from '../codes.js';
import { explain, type Explained } from '../lease/explain.js';
import { discoverLockspaceGeometry } from '../lease/delta-lease.js';
import { IoStats, ioRead } from '../lease/io.js';
import type { Clock, Random } from '../lease/clock.js';
import { type LockspaceView, PaxosLease } from '../lease/paxos-lease.js';
import { readRindex } from '../lease/rindex.js';
import { DEFAULT_WATCHDOG_FIRE_TIMEOUT, hostDeadSeconds, idRenewalFailSeconds, idRenewalSeconds } from '../lease/timeouts.js';
import { DBLOCK_FL_RELEASED, MBLOCK_SHARED } from '../ondisk/dblock.js';
import { bitmapHostIds } from '../ondisk/delta-sector.js';
import { namesEqual } from '../ondisk/fields.js';
import { type Geometry, geometryFromLeader } from '../ondisk/geometry.js';
import {
  DELTA_DISK_MAGIC,
  DELTA_DISK_VERSION,
  decodeLeader,
  LFL_SHORT_HOLD,
  PAXOS_DISK_MAGIC,
  verifyLeader,
} from '../ondisk/leader.js';
import { decodeRequest, verifyRequest } from '../ondisk/request.js';
import { decodeRindexEntry, RINDEX_ENTRY_SIZE, RINDEX_LEASE_NAME, rindexEntryFree, rindexEntryOffset } from '../ondisk/rindex.js';
import type { Disk } from '../storage/disk.js';

/** Default per-I/O deadline: sanlock's default io_timeout. */
export const DEFAULT_VIEW_IO_TIMEOUT_MS = 10_000;
/** sanlock checks every second whether a renewal is due, so renewals land up to 1 s after 2N. */
export const RENEWAL_SLACK_SECONDS = 1;
/** Caps one --watch run's bookkeeping: one slot per host_id at most. */
const MAX_HOST_IDS = 2000;

export interface LeaseSource {
  lockspaceName: string;
  resourceName: string;
  /** 1..4 replicas, as in a RESOURCE string */
  disks: { disk: Disk; offset: number }[];
}

export interface ClusterSource {
  lockspace: { name: string; disk: Disk; offset: number };
  /** explicit leases (-r) */
  resources?: LeaseSource[];
  /** every lease named by this resource index (-x), plus its rindex_lease; lockspaceName defaults to the lockspace's */
  rindex?: { disk: Disk; offset: number; lockspaceName?: string };
}

/**
 * - free: timestamp 0 (never joined, or left cleanly)
 * - unknown-age: held on disk, but not watched long enough to know whether it still renews
 * - live: its timestamp was seen to change less than 8 × io_timeout ago (sanlock's LIVE)
 * - stale: watched for more than one renewal interval (2 × io_timeout + 1 s) without a change
 * - fail: silent for more than 8 × io_timeout (sanlock's FAIL: its own leases are being revoked)
 * - dead: silent for more than 8 × io_timeout + 60 s (sanlock's DEAD: its leases may be taken)
 */
export type HostViewState = 'free' | 'unknown-age' | 'live' | 'stale' | 'fail' | 'dead';

export interface HostRecordView {
  hostId: number;
  /** host name written at join (resource_name of the delta lease) */
  name: string;
  ownerId: number;
  generation: number;
  /** the writer's monotonic seconds; 0 = not held */
  timestamp: number;
  ioTimeout: number;
  /** host_ids whose bit this host has set (it asks them to look at their leases / events) */
  bitmap: number[];
  /** host event it is sending, when any */
  event: { generation: number; event: number; data: number } | null;
  state: HostViewState;
  /** seconds since the read before the one that saw the timestamp change (an upper bound), null = never seen changing */
  renewedWithinSeconds: number | null;
  /** how long this tool has watched this record, seconds */
  watchedSeconds: number;
  /** verification failure of this host's record (bad magic / name / checksum) */
  error: Explained | null;
}

export type LeaseMode = 'EX' | 'SH' | 'free';

export interface LeaseView {
  lockspace: string;
  resource: string;
  disks: { path: string; offset: number }[];
  /** the lease could not be read; every other field is empty */
  error: Explained | null;
  sectorSize: number;
  alignSize: number;
  numHosts: number;
  lver: number;
  mode: LeaseMode;
  /** EX owner (leader owner while its timestamp is set) */
  owner: { hostId: number; generation: number; timestamp: number } | null;
  /** last owner recorded in the leader, even once released */
  lastOwner: { hostId: number; generation: number } | null;
  /** state of the EX owner's host as this view sees it; "old-generation" when that host has since re-joined */
  ownerState: HostViewState | 'old-generation' | 'other-lockspace' | null;
  /** the leader is held only for an SH acquire/convert step (SHORT_HOLD) */
  shortHold: boolean;
  /** the owner already marked its dblock released (release interrupted between its two writes) */
  ownerReleased: boolean;
  shared: { hostId: number; generation: number; state: HostViewState | 'old-generation' | 'other-lockspace' }[];
  /** pending request (lver > 0), force_mode 1 = force, 2 = graceful */
  request: { lver: number; forceMode: number } | null;
}

export interface ClusterView {
  lockspace: {
    name: string;
    path: string;
    offset: number;
    sectorSize: number;
    alignSize: number;
    maxHosts: number;
  };
  /** number of reads of the lockspace so far and the seconds they span */
  reads: number;
  spanSeconds: number;
  hosts: HostRecordView[];
  leases: LeaseView[];
}

/** What the observer remembers about one host_id between reads. */
export interface HostObservation {
  ownerId: number;
  generation: number;
  timestamp: number;
  ioTimeout: number;
  /** our time of the first read that included this record */
  firstSeen: number;
  /** our time of the read that saw (owner, generation, timestamp) change; 0 = never */
  lastChange: number;
  /** our time of the read before lastChange's read */
  prevReadBeforeChange: number;
}

/** The state rule (see HostViewState). `now` and the times in `o` are our own monotonic seconds. */
export function classifyHost(o: HostObservation, now: number, watchdogFireTimeout = DEFAULT_WATCHDOG_FIRE_TIMEOUT): HostViewState {
  if (o.timestamp === 0) return 'free';
  const n = o.ioTimeout || 10;
  const silent = now - (o.lastChange || o.firstSeen);
  if (silent > hostDeadSeconds(n, watchdogFireTimeout)) return 'dead';
  if (silent > idRenewalFailSeconds(n)) return 'fail';
  if (o.lastChange) return 'live';
  // Never seen changing: a live host renews every 2N (+ up to 1 s of loop pacing), so a longer
  // quiet watch is suspicious.
  return silent > idRenewalSeconds(n) + RENEWAL_SLACK_SECONDS ? 'stale' : 'unknown-age';
}

function monotonicSecondsNow(): number {
  return performance.now() / 1000;
}

/** PaxosLease needs a host identity to be constructed; a read-only view never votes. */
const readOnlyClock: Clock = {
  monotonicSeconds: () => Math.floor(monotonicSecondsNow()),
  monotonicMs: () => performance.now(),
  sleep: () => Promise.reject(new Error('cluster view never waits inside a lease')),
};
const noRandom: Random = { next: () => 0 };
const noLockspace: LockspaceView = {
  readDeltaRecord: () => Promise.reject(new SanlockError(SanlkCode.SANLK_ERROR, 'cluster view does not check owners')),
  hostSnapshot: () => undefined,
};

function toExplained(err: unknown, ctx: Parameters<typeof explain>[1]): Explained {
  if (err instanceof SanlockError) {
    const found = typeof err.details?.found === 'string' ? (err.details.found as string) : undefined;
    return explain(err.code, { ...ctx, ...(found !== undefined ? { found } : {}) });
  }
  throw err;
}

export interface ObserverOptions {
  /** our monotonic clock in seconds (tests pass a fake) */
  now?: () => number;
  ioTimeoutMs?: number;
  watchdogFireTimeout?: number;
}

export class ClusterObserver {
  readonly source: ClusterSource;
  readonly stats = new IoStats();
  private readonly now: () => number;
  private readonly ioMs: number;
  private readonly w: number;
  private geometry: Geometry | undefined;
  private readonly seen = new Map<number, HostObservation>();
  private reads = 0;
  private firstRead = 0;
  private lastRead = 0;

  constructor(source: ClusterSource, opts: ObserverOptions = {}) {
    assert.ok(source.lockspace.name.length > 0, 'lockspace name required');
    this.source = source;
    this.now = opts.now ?? monotonicSecondsNow;
    this.ioMs = opts.ioTimeoutMs ?? DEFAULT_VIEW_IO_TIMEOUT_MS;
    this.w = opts.watchdogFireTimeout ?? DEFAULT_WATCHDOG_FIRE_TIMEOUT;
  }

  /** One read of the lockspace and of every lease; returns the view as of this read. */
  async poll(): Promise<ClusterView> {
    const ls = this.source.lockspace;
    if (!this.geometry) this.geometry = await discoverLockspaceGeometry(ls.disk, ls.offset, this.ioMs, this.stats);
    const g = this.geometry;
    const area = await ioRead(ls.disk, ls.offset, g.maxHosts * g.sectorSize, this.ioMs, this.stats);
    const t = this.now();
    const prevRead = this.lastRead;
    if (this.reads === 0) this.firstRead = t;
    this.reads++;
    this.lastRead = t;

    // host 1's record names the lockspace (sanlock checks it when joining)
    const rv0 = verifyLeader(area, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: ls.name });
    if (rv0 === SanlkCode.SANLK_LEADER_LOCKSPACE) {
      const found = decodeLeader(area, 0).spaceName;
      throw new SanlockError(rv0, `lockspace at ${ls.disk.path}:${ls.offset} is ${found}, not ${ls.name}`, { found });
    }

    const hosts: HostRecordView[] = [];
    for (let i = 0; i < g.maxHosts && i < MAX_HOST_IDS; i++) {
      const off = i * g.sectorSize;
      const hostId = i + 1;
      const l = decodeLeader(area, off);
      const rv = verifyLeader(area, off, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: ls.name });
      const used = l.ownerId !== 0 || l.ownerGeneration !== 0 || l.timestamp !== 0;
      const allZero = area.subarray(off, off + g.sectorSize).every((b) => b === 0);
      if (rv === 0 && !used) continue;
      if (rv !== 0 && allZero) continue;
      let o = this.seen.get(hostId);
      if (!o) {
        // Unlisted at an earlier read means the slot was empty then: appearing is a change.
        const appeared = this.reads > 1;
        o = {
          ownerId: l.ownerId, generation: l.ownerGeneration, timestamp: l.timestamp, ioTimeout: l.ioTimeout,
          firstSeen: t, lastChange: appeared ? t : 0, prevReadBeforeChange: appeared ? prevRead : 0,
        };
        this.seen.set(hostId, o);
      } else if (o.ownerId !== l.ownerId || o.generation !== l.ownerGeneration || o.timestamp !== l.timestamp) {
        o.ownerId = l.ownerId;
        o.generation = l.ownerGeneration;
        o.timestamp = l.timestamp;
        o.ioTimeout = l.ioTimeout;
        o.lastChange = t;
        o.prevReadBeforeChange = prevRead;
      }
      const hasEvent = l.writeGeneration !== 0;
      hosts.push({
        hostId,
        name: l.resourceName,
        ownerId: l.ownerId,
        generation: l.ownerGeneration,
        timestamp: l.timestamp,
        ioTimeout: l.ioTimeout,
        bitmap: rv === 0 ? bitmapHostIds(area, off, g.maxHosts) : [],
        event: hasEvent ? { generation: l.writeId, event: l.writeGeneration, data: l.writeTimestamp } : null,
        state: classifyHost(o, t, this.w),
        renewedWithinSeconds: o.lastChange ? round1(t - o.prevReadBeforeChange) : null,
        watchedSeconds: round1(t - o.firstSeen),
        error: rv === 0 ? null : explain(rv, { lockspace: ls.name, hostId, path: ls.disk.path, offset: ls.offset + off, found: l.spaceName || undefined }),
      });
    }

    const leases: LeaseView[] = [];
    for (const r of await this.leaseSources()) leases.push(await this.readLease(r, hosts));
    return {
      lockspace: { name: ls.name, path: ls.disk.path, offset: ls.offset, sectorSize: g.sectorSize, alignSize: g.alignSize, maxHosts: g.maxHosts },
      reads: this.reads,
      spanSeconds: round1(t - this.firstRead),
      hosts,
      leases,
    };
  }

  /** -r leases first, then the rindex_lease and every named entry of the rindex. */
  private async leaseSources(): Promise<LeaseSource[]> {
    const out = [...(this.source.resources ?? [])];
    const rx = this.source.rindex;
    if (!rx) return out;
    const name = rx.lockspaceName || this.source.lockspace.name;
    let open: Awaited<ReturnType<typeof readRindex>>;
    try {
      open = await readRindex(rx.disk, { lockspaceName: name, offset: rx.offset }, this.ioMs);
    } catch (err) {
      // The rindex is where the leases are listed: without it there is nothing sensible to show.
      if (!(err instanceof SanlockError)) throw err;
      throw new SanlockError(err.code, err.message, { path: rx.disk.path, offset: rx.offset, lockspace: name });
    }
    const { sectorSize, alignSize, rindexMaxEntries } = open.geometry;
    out.push({ lockspaceName: name, resourceName: RINDEX_LEASE_NAME, disks: [{ disk: rx.disk, offset: rx.offset + alignSize }] });
    const cap = Math.min(open.header.maxResources || rindexMaxEntries, (alignSize - sectorSize) / RINDEX_ENTRY_SIZE);
    for (let i = 0; i < cap; i++) {
      const e = decodeRindexEntry(open.area, rindexEntryOffset(i, sectorSize));
      if (rindexEntryFree(e)) continue;
      out.push({ lockspaceName: name, resourceName: e.name, disks: [{ disk: rx.disk, offset: e.resOffset }] });
    }
    return out;
  }

  private ownerState(lease: LeaseSource, hostId: number, generation: number, hosts: HostRecordView[]): NonNullable<LeaseView['ownerState']> {
    if (!namesEqual(lease.lockspaceName, this.source.lockspace.name)) return 'other-lockspace';
    const h = hosts.find((x) => x.hostId === hostId);
    if (!h) return 'free';
    if (h.generation > generation) return 'old-generation';
    return h.state;
  }

  private async readLease(src: LeaseSource, hosts: HostRecordView[]): Promise<LeaseView> {
    const first = src.disks[0];
    assert.ok(first, 'a lease has at least one disk');
    const base: LeaseView = {
      lockspace: src.lockspaceName,
      resource: src.resourceName,
      disks: src.disks.map((d) => ({ path: d.disk.path, offset: d.offset })),
      error: null, sectorSize: 0, alignSize: 0, numHosts: 0, lver: 0, mode: 'free', owner: null, lastOwner: null,
      ownerState: null, shortHold: false, ownerReleased: false, shared: [], request: null,
    };
    const ctx = { lockspace: src.lockspaceName, resource: src.resourceName, path: first.disk.path, offset: first.offset };
    let head: Buffer | undefined;
    try {
      // Start from the lease's own geometry so a 4K lease is not misread through a 512 lockspace.
      head = await ioRead(first.disk, first.offset, 4096, this.ioMs, this.stats);
      const h = decodeLeader(head, 0);
      const g = h.magic === PAXOS_DISK_MAGIC ? geometryFromLeader(h.sectorSize, h.flags) : (this.geometry as Geometry);
      const lease = new PaxosLease(
        { hostId: 1, generation: 0, ioTimeout: Math.max(1, Math.ceil(this.ioMs / 1000)), clock: readOnlyClock, random: noRandom, lockspace: noLockspace, stats: this.stats },
        { spaceName: src.lockspaceName, resourceName: src.resourceName, disks: src.disks, sectorSize: g.sectorSize, alignSize: g.alignSize },
      );
      const rd = await lease.read();
      const l = rd.leader;
      const reqBuf = head.length >= 2 * rd.geometry.sectorSize
        ? head.subarray(rd.geometry.sectorSize)
        : await ioRead(first.disk, first.offset + rd.geometry.sectorSize, rd.geometry.sectorSize, this.ioMs, this.stats);
      const req = decodeRequest(reqBuf, 0);
      const reqOk = verifyRequest(req) === 0;
      const shared: LeaseView['shared'] = [];
      rd.modes.forEach((m, q) => {
        if (m.flags & MBLOCK_SHARED) {
          shared.push({ hostId: q + 1, generation: m.generation, state: this.ownerState(src, q + 1, m.generation, hosts) });
        }
      });
      const held = l.timestamp !== 0;
      const ownerDblock = held ? rd.dblocks[l.ownerId - 1] : undefined;
      return {
        ...base,
        sectorSize: rd.geometry.sectorSize,
        alignSize: rd.geometry.alignSize,
        numHosts: l.numHosts,
        lver: l.lver,
        mode: held ? 'EX' : shared.length > 0 ? 'SH' : 'free',
        owner: held ? { hostId: l.ownerId, generation: l.ownerGeneration, timestamp: l.timestamp } : null,
        lastOwner: l.ownerId !== 0 ? { hostId: l.ownerId, generation: l.ownerGeneration } : null,
        ownerState: held ? this.ownerState(src, l.ownerId, l.ownerGeneration, hosts) : null,
        shortHold: held && (l.flags & LFL_SHORT_HOLD) !== 0,
        ownerReleased: ownerDblock !== undefined && (ownerDblock.flags & DBLOCK_FL_RELEASED) !== 0,
        shared,
        request: reqOk && req.lver > 0 ? { lver: req.lver, forceMode: req.forceMode } : null,
      };
    } catch (err) {
      // Name the lockspace/resource actually found, so a wrong -r string is obvious.
      const found = head && err instanceof SanlockError
        ? err.code === SanlkCode.SANLK_LEADER_RESOURCE ? decodeLeader(head, 0).resourceName
          : err.code === SanlkCode.SANLK_LEADER_LOCKSPACE ? decodeLeader(head, 0).spaceName : undefined
        : undefined;
      return { ...base, error: toExplained(err, found !== undefined ? { ...ctx, found } : ctx) };
    }
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export interface SampleOptions extends ObserverOptions {
  /** 0 or absent: one read (every held host "unknown-age"); > 0: a second read this many seconds later */
  sampleSeconds?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** The view after one read, or after two reads `sampleSeconds` apart (liveness from what changed). */
export async function readClusterView(source: ClusterSource, opts: SampleOptions = {}): Promise<ClusterView> {
  const obs = new ClusterObserver(source, opts);
  const first = await obs.poll();
  const s = opts.sampleSeconds ?? 0;
  if (s <= 0) return first;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  await sleep(s * 1000);
  return obs.poll();
}

/**
 * "auto" sample length: one renewal interval (2 × io_timeout) of the slowest held host, plus the
 * renewal slack, plus 1 s so that a host which did not renew is past the "stale" threshold.
 */
export function autoSampleSeconds(view: ClusterView): number {
  let n = 0;
  for (const h of view.hosts) if (h.timestamp !== 0) n = Math.max(n, h.ioTimeout || 10);
  return n === 0 ? 0 : idRenewalSeconds(n) + RENEWAL_SLACK_SECONDS + 1;
}
