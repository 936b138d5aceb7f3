// sanlock's 32-byte message header (`struct sm_header`, spec/protocol.md §2) and the result
// type every decoder in src/protocol returns.
//
// Exports:
//   SM_MAGIC, SM_PROTO, SM_CB_PROTO, SM_CB_GET_EVENT, HEADER_SIZE, VERSION_HEX
//   interface SmHeader; encodeHeader(h) → Buffer(32); decodeHeader(buf, off?) → Decoded<SmHeader>
//   type Decoded<T>; ok(value, size); fail(code, error)
//   stdReply(req, result) → SmHeader   (the daemon's send_result: §2.1)
//   makeHeader(cmd, fields); protoTooNew(h); headerRejectReason(h) → reason | null (the daemon's §3.1 checks 2 and 4;
//   restrict/unknown cmd
//   are checked by the caller that knows the connection and the command table)
import { Errno } from '../codes.js';

export const SM_MAGIC = 0x04282010;
export const SM_PROTO = 0x00000001;
export const SM_CB_PROTO = 1;
export const SM_CB_GET_EVENT = 1;
export const HEADER_SIZE = 32;
/** What sanlock 3.8.5 puts in VERSION replies' data2: major<<24 | minor<<16 | patch<<8. */
export const VERSION_HEX = 0x03080500;

/** data and data2 are signed (results, pid -1); the others unsigned. */
export interface SmHeader {
  magic: number;
  version: number;
  cmd: number;
  cmdFlags: number;
  length: number;
  seq: number;
  data: number;
  data2: number;
}

/**
 * Every decoder returns this instead of throwing: a peer can send anything. `size` is the
 * number of bytes the value occupied; `code` is the negative sanlock/errno result a daemon or
 * client would report for that input.
 */
export type Decoded<T> = { ok: true; value: T; size: number } | { ok: false; code: number; error: string };

export function ok<T>(value: T, size: number): Decoded<T> {
  return { ok: true, value, size };
}

export function fail<T = never>(code: number, error: string): Decoded<T> {
  return { ok: false, code, error };
}

/** A short input is what a closed or misbehaving peer produces; the daemon reports -ENOTCONN. */
export function truncated<T = never>(what: string, need: number, have: number): Decoded<T> {
  return fail(-Errno.ENOTCONN, `${what}: need ${need} bytes, have ${have}`);
}

export function makeHeader(cmd: number, fields: Partial<Omit<SmHeader, 'cmd'>> = {}): SmHeader {
  return {
    magic: SM_MAGIC,
    version: SM_PROTO,
    cmd,
    cmdFlags: 0,
    length: HEADER_SIZE,
    seq: 0,
    data: 0,
    data2: 0,
    ...fields,
  };
}

function u32(v: number): number {
  return v >>> 0;
}

export function encodeHeader(h: SmHeader): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  writeHeaderInto(b, 0, h);
  return b;
}

export function writeHeaderInto(b: Buffer, off: number, h: SmHeader): void {
  b.writeUInt32LE(u32(h.magic), off);
  b.writeUInt32LE(u32(h.version), off + 4);
  b.writeUInt32LE(u32(h.cmd), off + 8);
  b.writeUInt32LE(u32(h.cmdFlags), off + 12);
  b.writeUInt32LE(u32(h.length), off + 16);
  b.writeUInt32LE(u32(h.seq), off + 20);
  b.writeInt32LE(h.data | 0, off + 24);
  b.writeInt32LE(h.data2 | 0, off + 28);
}

export function decodeHeader(buf: Buffer, off = 0): Decoded<SmHeader> {
  if (off < 0 || buf.length - off < HEADER_SIZE) return truncated('sm_header', HEADER_SIZE, Math.max(0, buf.length - off));
  return ok(
    {
      magic: buf.readUInt32LE(off),
      version: buf.readUInt32LE(off + 4),
      cmd: buf.readUInt32LE(off + 8),
      cmdFlags: buf.readUInt32LE(off + 12),
      length: buf.readUInt32LE(off + 16),
      seq: buf.readUInt32LE(off + 20),
      data: buf.readInt32LE(off + 24),
      data2: buf.readInt32LE(off + 28),
    },
    HEADER_SIZE,
  );
}

/** send_result(): the request header echoed with version 1, length 32, data = result, data2 0. */
export function stdReply(req: SmHeader, result: number): SmHeader {
  return { ...req, version: SM_PROTO, length: HEADER_SIZE, data: result, data2: 0 };
}

/**
 * The daemon's per-message header checks that need only the header (§3.1 rules 2 and 4).
 * Returns why the message must be dropped silently, or null when it is acceptable.
 */
export function headerRejectReason(h: SmHeader, versionCmd = 28): string | null {
  if (h.magic !== SM_MAGIC) return `magic ${h.magic.toString(16)} vs ${SM_MAGIC.toString(16)}`;
  if (protoTooNew(h, versionCmd)) return `version ${h.version.toString(16)} vs ${SM_PROTO.toString(16)}`;
  return null;
}

/**
 * Rule 4 alone: a message from a client speaking a higher major protocol version is dropped
 * (version 0 and the VERSION command itself always pass, so old clients can ask).
 */
export function protoTooNew(h: SmHeader, versionCmd = 28): boolean {
  return h.version !== 0 && h.cmd !== versionCmd && (h.version & 0xffff0000) >>> 0 > (SM_PROTO & 0xffff0000) >>> 0;
}
