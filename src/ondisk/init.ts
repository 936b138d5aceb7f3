// Whole lease areas as `init` / `format` write them (spec/ondisk.md §4.4, §5.5, §5.6, §6.3).
// Builders only: the caller writes the buffers (lease/ or cli/ decide offsets and timeouts).
import { sanlockChecksum } from './checksum.js';
import type { Geometry } from './geometry.js';
import {
  DELTA_DISK_MAGIC, DELTA_DISK_VERSION, emptyLeader, encodeLeader, type Leader, LEADER_CHECKSUM_LEN, PAXOS_DISK_CLEAR,
  PAXOS_DISK_MAGIC, PAXOS_DISK_VERSION,
} from './leader.js';
import { encodeRequest, REQ_DISK_MAGIC, REQ_DISK_VERSION } from './request.js';
import {
  DEFAULT_RINDEX_MAX_RESOURCES, encodeRindexHeader, RINDEX_DISK_MAGIC, RINDEX_DISK_VERSION,
} from './rindex.js';

export interface LockspaceInit {
  geometry: Geometry;
  spaceName: string;
  /** written into every record (`-o`, default 10); stored as u16 */
  ioTimeout: number;
}

/** The delta-lease leader every host sector gets at init. */
export function lockspaceInitLeader(o: LockspaceInit): Leader {
  return {
    ...emptyLeader(),
    magic: DELTA_DISK_MAGIC,
    version: DELTA_DISK_VERSION,
    flags: o.geometry.leaderAlignFlag,
    sectorSize: o.geometry.sectorSize,
    numHosts: 0,
    maxHosts: 1,
    spaceName: o.spaceName,
    ioTimeout: o.ioTimeout,
  };
}

export interface LockspaceImage {
  /** The whole align area, with host 1's record carrying magic 0 (so a torn write is never valid). */
  area: Buffer;
  /** Sector 0 with the real magic: written second, after `area` is on disk. */
  firstSector: Buffer;
}

/** Lockspace init image: max_hosts identical records, everything else zero. */
export function buildLockspaceInit(o: LockspaceInit): LockspaceImage {
  const g = o.geometry;
  const area = Buffer.alloc(g.alignSize);
  const leader = lockspaceInitLeader(o);
  for (let h = 1; h <= g.maxHosts; h++) encodeLeader(leader, area, (h - 1) * g.sectorSize);
  const firstSector = Buffer.from(area.subarray(0, g.sectorSize));
  encodeLeader({ ...leader, magic: 0 }, area, 0);
  return { area, firstSector };
}

/** The final bytes a completed lockspace init leaves (area with sector 0 replaced). */
export function lockspaceInitBytes(o: LockspaceInit): Buffer {
  const { area, firstSector } = buildLockspaceInit(o);
  firstSector.copy(area, 0);
  return area;
}

export interface ResourceInit {
  geometry: Geometry;
  spaceName: string;
  resourceName: string;
  /** dblocks in use; 0 or absent → max_hosts; capped at max_hosts */
  numHosts?: number;
  /** write a cleared lease (PAXOS_DISK_CLEAR) stamped with this monotonic time */
  clearTimestamp?: number;
}

/** num_hosts as sanlock computes it from `-n` (an int compared signed: negatives pass through). */
export function resourceInitNumHosts(g: Geometry, numHosts?: number): number {
  return !numHosts || numHosts > g.maxHosts ? g.maxHosts : numHosts;
}

export function resourceInitLeader(o: ResourceInit): Leader {
  const g = o.geometry;
  const numHosts = Math.max(0, resourceInitNumHosts(g, o.numHosts));
  return {
    ...emptyLeader(),
    magic: o.clearTimestamp === undefined ? PAXOS_DISK_MAGIC : PAXOS_DISK_CLEAR,
    version: PAXOS_DISK_VERSION,
    flags: g.leaderAlignFlag,
    sectorSize: g.sectorSize,
    numHosts,
    maxHosts: g.maxHosts,
    spaceName: o.spaceName,
    resourceName: o.resourceName,
    writeTimestamp: o.clearTimestamp ?? 0,
  };
}

/** Resource (paxos) lease init image: leader, request record, zero dblocks; one align area. */
export function buildResourceInit(o: ResourceInit): Buffer {
  const g = o.geometry;
  const area = Buffer.alloc(g.alignSize);
  const leader = resourceInitLeader(o);
  encodeLeader(leader, area, 0);
  const numHosts = resourceInitNumHosts(g, o.numHosts);
  if (numHosts < 0) {
    // `-n -5` is stored as the u64 2^64-5, exactly as sanlock's int → uint64 conversion does.
    area.writeBigUInt64LE(BigInt.asUintN(64, BigInt(numHosts)), 16);
    area.writeUInt32LE(sanlockChecksum(area, 0, LEADER_CHECKSUM_LEN), 168);
  }
  encodeRequest({ magic: REQ_DISK_MAGIC, version: REQ_DISK_VERSION, lver: 0, forceMode: 0 }, area, g.sectorSize);
  return area;
}

export interface RindexInit {
  geometry: Geometry;
  lockspaceName: string;
  /** absolute offset of the rindex (where the header goes) */
  rxOffset: number;
  /** 0 or absent → 4096; capped at the geometry's entry capacity */
  maxResources?: number;
}

/** The rindex area `format` writes: header in sector 0, no entries. */
export function buildRindexArea(o: RindexInit): Buffer {
  const g = o.geometry;
  let maxResources = o.maxResources || DEFAULT_RINDEX_MAX_RESOURCES;
  if (maxResources > g.rindexMaxEntries) maxResources = g.rindexMaxEntries;
  const area = Buffer.alloc(g.alignSize);
  encodeRindexHeader({
    magic: RINDEX_DISK_MAGIC,
    version: RINDEX_DISK_VERSION,
    flags: g.rindexAlignFlag,
    sectorSize: g.sectorSize,
    maxResources,
    unused: 0,
    rxOffset: o.rxOffset,
    lockspaceName: o.lockspaceName,
  }, area, 0);
  return area;
}
