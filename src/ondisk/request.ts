// The request record in sector 1 of a paxos lease. Not checksummed; bytes 20..23 are padding
// that sanlock may fill with garbage, so readers ignore them and we write zeros.
import { SanlkCode } from '../codes.js';
import { readU64, writeU64 } from './fields.js';

export const REQ_DISK_MAGIC = 0x08292011;
export const REQ_DISK_VERSION = 0x00010001;
export const REQUEST_SIZE = 24;
export const SANLK_REQ_FORCE = 1;
export const SANLK_REQ_GRACEFUL = 2;

export interface RequestRecord {
  magic: number;
  version: number;
  lver: number;
  forceMode: number;
}

export function decodeRequest(buf: Buffer, off = 0): RequestRecord {
  return {
    magic: buf.readUInt32LE(off),
    version: buf.readUInt32LE(off + 4),
    lver: readU64(buf, off + 8),
    forceMode: buf.readUInt32LE(off + 16),
  };
}

export function encodeRequest(r: RequestRecord, buf: Buffer, off = 0): void {
  buf.fill(0, off, off + REQUEST_SIZE);
  buf.writeUInt32LE(r.magic >>> 0, off);
  buf.writeUInt32LE(r.version >>> 0, off + 4);
  writeU64(buf, off + 8, r.lver);
  buf.writeUInt32LE(r.forceMode >>> 0, off + 16);
}

/** -270 on bad magic, -271 on bad major version, 0 when valid. */
export function verifyRequest(r: RequestRecord): number {
  if (r.magic !== REQ_DISK_MAGIC) return SanlkCode.SANLK_REQUEST_MAGIC;
  if ((r.version & 0xffff0000) !== (REQ_DISK_VERSION & 0xffff0000)) return SanlkCode.SANLK_REQUEST_VERSION;
  return 0;
}
