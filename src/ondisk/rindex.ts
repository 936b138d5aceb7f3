// Resource index (rindex) records: the header in sector 0 of the rindex area and the 64-byte
// entries from sector 1 on (spec/ondisk.md §6). Neither is checksummed.
import { SanlkCode } from '../codes.js';
import { NAME_ID_SIZE, namesEqual, readName, readU64, writeName, writeU64 } from './fields.js';

export const RINDEX_DISK_MAGIC = 0x01042018;
export const RINDEX_DISK_VERSION = 0x00010002;
export const RINDEX_VERSION_MAJOR_MASK = 0xffff0000;
export const RINDEX_HEADER_SIZE = 80;
export const RINDEX_ENTRY_SIZE = 64;
/** max_resources written when the caller asks for none (sanlock's default). */
export const DEFAULT_RINDEX_MAX_RESOURCES = 4096;
export const RINDEX_LEASE_NAME = 'rindex_lease';

export interface RindexHeader {
  magic: number;
  version: number;
  flags: number;
  sectorSize: number;
  maxResources: number;
  unused: number;
  rxOffset: number;
  lockspaceName: string;
}

export interface RindexEntry {
  resOffset: number;
  flags: number;
  unused: number;
  name: string;
}

export function decodeRindexHeader(buf: Buffer, off = 0): RindexHeader {
  return {
    magic: buf.readUInt32LE(off),
    version: buf.readUInt32LE(off + 4),
    flags: buf.readUInt32LE(off + 8),
    sectorSize: buf.readUInt32LE(off + 12),
    maxResources: buf.readUInt32LE(off + 16),
    unused: buf.readUInt32LE(off + 20),
    rxOffset: readU64(buf, off + 24),
    lockspaceName: readName(buf, off + 32),
  };
}

export function encodeRindexHeader(h: RindexHeader, buf: Buffer, off = 0): void {
  buf.fill(0, off, off + RINDEX_HEADER_SIZE);
  buf.writeUInt32LE(h.magic >>> 0, off);
  buf.writeUInt32LE(h.version >>> 0, off + 4);
  buf.writeUInt32LE(h.flags >>> 0, off + 8);
  buf.writeUInt32LE(h.sectorSize >>> 0, off + 12);
  buf.writeUInt32LE(h.maxResources >>> 0, off + 16);
  buf.writeUInt32LE(h.unused >>> 0, off + 20);
  writeU64(buf, off + 24, h.rxOffset);
  writeName(buf, off + 32, h.lockspaceName);
}

export function decodeRindexEntry(buf: Buffer, off = 0): RindexEntry {
  return {
    resOffset: readU64(buf, off),
    flags: buf.readUInt32LE(off + 8),
    unused: buf.readUInt32LE(off + 12),
    name: readName(buf, off + 16),
  };
}

export function encodeRindexEntry(e: RindexEntry, buf: Buffer, off = 0): void {
  buf.fill(0, off, off + RINDEX_ENTRY_SIZE);
  writeU64(buf, off, e.resOffset);
  buf.writeUInt32LE(e.flags >>> 0, off + 8);
  buf.writeUInt32LE(e.unused >>> 0, off + 12);
  writeName(buf, off + 16, e.name);
}

/** A free slot: no offset and an empty name. */
export function rindexEntryFree(e: RindexEntry): boolean {
  return e.resOffset === 0 && e.name.length === 0;
}

/** Byte offset of entry `i` inside the rindex area (entries start after the header sector). */
export function rindexEntryOffset(i: number, sectorSize: number): number {
  return sectorSize + i * RINDEX_ENTRY_SIZE;
}

/** Absolute offset of the resource lease described by entry `i` of the rindex at `rxOffset`. */
export function rindexResourceOffset(rxOffset: number, alignSize: number, i: number): number {
  return rxOffset + 2 * alignSize + i * alignSize;
}

/** How many entries fit after the header sector of one align-size area. */
export function rindexEntryCapacity(sectorSize: number, alignSize: number): number {
  return (alignSize - sectorSize) / RINDEX_ENTRY_SIZE;
}

/**
 * sanlock's header checks in order: magic (-274), major version (-275), lockspace name (-276),
 * rx_offset equal to where it was read (-277). 0 when valid.
 */
export function verifyRindexHeader(h: RindexHeader, lockspaceName: string, rxOffset: number): number {
  if (h.magic !== RINDEX_DISK_MAGIC) return SanlkCode.SANLK_RINDEX_MAGIC;
  if ((h.version & RINDEX_VERSION_MAJOR_MASK) >>> 0 !== (RINDEX_DISK_VERSION & RINDEX_VERSION_MAJOR_MASK) >>> 0) return SanlkCode.SANLK_RINDEX_VERSION;
  // sanlock uses strcmp here (the header name is always NUL-terminated within 48 bytes in practice).
  if (!namesEqual(h.lockspaceName, lockspaceName.slice(0, NAME_ID_SIZE))) return SanlkCode.SANLK_RINDEX_LOCKSPACE;
  if (h.rxOffset !== rxOffset) return SanlkCode.SANLK_RINDEX_OFFSET;
  return 0;
}
