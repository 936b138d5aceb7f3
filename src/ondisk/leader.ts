// The 200-byte leader record, shared by delta leases (one per host sector of a lockspace) and
// paxos leases (sector 0 of a resource). Layout: spec/ondisk.md §3.
import { SanlkCode } from '../codes.js';
import { sanlockChecksum } from './checksum.js';
import { namesEqual, readName, readU64, writeName, writeU64 } from './fields.js';

export const DELTA_DISK_MAGIC = 0x12212010;
export const DELTA_DISK_VERSION = 0x00030004;
export const PAXOS_DISK_MAGIC = 0x06152010;
export const PAXOS_DISK_VERSION = 0x00060004;
export const PAXOS_DISK_CLEAR = 0x11282016;
export const VERSION_MAJOR_MASK = 0xffff0000;

export const LEADER_SIZE = 200;
export const LEADER_CHECKSUM_LEN = 168;
export const LEADER_COMPARE_LEN = 152;
export const LFL_SHORT_HOLD = 0x1;

export interface Leader {
  magic: number;
  version: number;
  flags: number;
  sectorSize: number;
  numHosts: number;
  maxHosts: number;
  ownerId: number;
  ownerGeneration: number;
  lver: number;
  spaceName: string;
  resourceName: string;
  timestamp: number;
  unused1: number;
  checksum: number;
  unused2: number;
  ioTimeout: number;
  writeId: number;
  writeGeneration: number;
  writeTimestamp: number;
}

export function decodeLeader(buf: Buffer, off = 0): Leader {
  return {
    magic: buf.readUInt32LE(off),
    version: buf.readUInt32LE(off + 4),
    flags: buf.readUInt32LE(off + 8),
    sectorSize: buf.readUInt32LE(off + 12),
    numHosts: readU64(buf, off + 16),
    maxHosts: readU64(buf, off + 24),
    ownerId: readU64(buf, off + 32),
    ownerGeneration: readU64(buf, off + 40),
    lver: readU64(buf, off + 48),
    spaceName: readName(buf, off + 56),
    resourceName: readName(buf, off + 104),
    timestamp: readU64(buf, off + 152),
    unused1: readU64(buf, off + 160),
    checksum: buf.readUInt32LE(off + 168),
    unused2: buf.readUInt16LE(off + 172),
    ioTimeout: buf.readUInt16LE(off + 174),
    writeId: readU64(buf, off + 176),
    writeGeneration: readU64(buf, off + 184),
    writeTimestamp: readU64(buf, off + 192),
  };
}

/**
 * Writes the leader at `off` of `buf` with a freshly computed checksum (the `checksum` field of
 * `l` is ignored). Returns the checksum written. `nameMax` limits resource_name: delta-lease
 * host names are stored as at most 47 chars + NUL (sanlock's snprintf).
 */
export function encodeLeader(l: Leader, buf: Buffer, off = 0, nameMax = 48): number {
  buf.fill(0, off, off + LEADER_SIZE);
  buf.writeUInt32LE(l.magic >>> 0, off);
  buf.writeUInt32LE(l.version >>> 0, off + 4);
  buf.writeUInt32LE(l.flags >>> 0, off + 8);
  buf.writeUInt32LE(l.sectorSize >>> 0, off + 12);
  writeU64(buf, off + 16, l.numHosts);
  writeU64(buf, off + 24, l.maxHosts);
  writeU64(buf, off + 32, l.ownerId);
  writeU64(buf, off + 40, l.ownerGeneration);
  writeU64(buf, off + 48, l.lver);
  writeName(buf, off + 56, l.spaceName);
  writeName(buf, off + 104, l.resourceName, nameMax);
  writeU64(buf, off + 152, l.timestamp);
  writeU64(buf, off + 160, l.unused1);
  buf.writeUInt16LE(l.unused2 & 0xffff, off + 172);
  buf.writeUInt16LE(l.ioTimeout & 0xffff, off + 174);
  writeU64(buf, off + 176, l.writeId);
  writeU64(buf, off + 184, l.writeGeneration);
  writeU64(buf, off + 192, l.writeTimestamp);
  const sum = sanlockChecksum(buf, off, off + LEADER_CHECKSUM_LEN);
  buf.writeUInt32LE(sum, off + 168);
  return sum;
}

/** Leader encoded into a new 200-byte buffer. */
export function leaderBytes(l: Leader, nameMax = 48): Buffer {
  const b = Buffer.alloc(LEADER_SIZE);
  encodeLeader(l, b, 0, nameMax);
  return b;
}

export function leaderChecksumOk(buf: Buffer, off = 0): boolean {
  return sanlockChecksum(buf, off, off + LEADER_CHECKSUM_LEN) === buf.readUInt32LE(off + 168);
}

export interface LeaderExpect {
  magic: number;
  version: number;
  spaceName?: string;
  resourceName?: string;
}

/**
 * Sanlock's leader verification order: magic (-223), major version (-224), lockspace name
 * (-226), resource name (-227), checksum (-229). Returns 0 when valid.
 * A PAXOS_DISK_CLEAR magic is reported as -223 like any other wrong magic.
 */
export function verifyLeader(buf: Buffer, off: number, expect: LeaderExpect): number {
  const l = decodeLeader(buf, off);
  if (l.magic !== expect.magic) return SanlkCode.SANLK_LEADER_MAGIC;
  if ((l.version & VERSION_MAJOR_MASK) !== (expect.version & VERSION_MAJOR_MASK)) return SanlkCode.SANLK_LEADER_VERSION;
  if (expect.spaceName !== undefined && !namesEqual(l.spaceName, expect.spaceName)) return SanlkCode.SANLK_LEADER_LOCKSPACE;
  if (expect.resourceName !== undefined && !namesEqual(l.resourceName, expect.resourceName)) return SanlkCode.SANLK_LEADER_RESOURCE;
  if (!leaderChecksumOk(buf, off)) return SanlkCode.SANLK_LEADER_CHECKSUM;
  return 0;
}

export function emptyLeader(): Leader {
  return {
    magic: 0, version: 0, flags: 0, sectorSize: 0, numHosts: 0, maxHosts: 0, ownerId: 0,
    ownerGeneration: 0, lver: 0, spaceName: '', resourceName: '', timestamp: 0, unused1: 0,
    checksum: 0, unused2: 0, ioTimeout: 0, writeId: 0, writeGeneration: 0, writeTimestamp: 0,
  };
}
