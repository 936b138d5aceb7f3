// The daemon's side of sanlock's socket structs (spec/protocol.md §2, §4.1). The layer rule
// (daemon may not import protocol/) is why the daemon has its own small codec: it needs only
// decode of requests and encode of replies, sized exactly as the C structs.
import assert from 'node:assert';
import { readName, readU64, writeName, writeU64 } from '../ondisk/fields.js';

export const SM_MAGIC = 0x04282010;
export const SM_PROTO = 0x00000001;
export const SM_CB_PROTO = 1;
export const SM_CB_GET_EVENT = 1;
export const VERSION_HEX = 0x03080500;
export const HEADER_SIZE = 32;
export const DISK_SIZE = 1040;
export const LOCKSPACE_SIZE = 1104;
export const RESOURCE_SIZE = 128;
export const OPTIONS_SIZE = 56;
export const HOST_SIZE = 32;
export const HOST_EVENT_SIZE = 32;
export const STATE_SIZE = 80;
export const PATH_SIZE = 1024;
export const MAX_RESOURCES = 8;
export const MAX_DISKS = 4;

export const Cmd = {
  REGISTER: 1,
  ADD_LOCKSPACE: 2,
  REM_LOCKSPACE: 3,
  SHUTDOWN: 4,
  STATUS: 5,
  LOG_DUMP: 6,
  ACQUIRE: 7,
  RELEASE: 8,
  INQUIRE: 9,
  RESTRICT: 10,
  REQUEST: 11,
  ALIGN: 12,
  EXAMINE_LOCKSPACE: 13,
  EXAMINE_RESOURCE: 14,
  HOST_STATUS: 15,
  INQ_LOCKSPACE: 16,
  KILLPATH: 17,
  WRITE_LOCKSPACE: 18,
  WRITE_RESOURCE: 19,
  READ_LOCKSPACE: 20,
  READ_RESOURCE: 21,
  GET_LOCKSPACES: 22,
  GET_HOSTS: 23,
  READ_RESOURCE_OWNERS: 24,
  SET_LVB: 25,
  GET_LVB: 26,
  CONVERT: 27,
  VERSION: 28,
  SHUTDOWN_WAIT: 29,
  REG_EVENT: 30,
  END_EVENT: 31,
  SET_EVENT: 32,
  SET_CONFIG: 33,
  RENEWAL: 34,
  FORMAT_RINDEX: 35,
  UPDATE_RINDEX: 36,
  LOOKUP_RINDEX: 37,
  CREATE_RESOURCE: 38,
  DELETE_RESOURCE: 39,
  REBUILD_RINDEX: 40,
} as const;

/** cmd_str names as sanlock logs them and as `debug_cmd` in sanlock.conf uses them. */
export const cmdNames: Record<number, string> = {
  1: 'register', 2: 'add_lockspace', 3: 'rem_lockspace', 4: 'shutdown', 5: 'status', 6: 'log_dump',
  7: 'acquire', 8: 'release', 9: 'inquire', 10: 'restrict', 11: 'request', 12: 'align',
  13: 'examine_lockspace', 14: 'examine_resource', 15: 'host_status', 16: 'inq_lockspace',
  17: 'killpath', 18: 'write_lockspace', 19: 'write_resource', 20: 'read_lockspace',
  21: 'read_resource', 22: 'get_lockspaces', 23: 'get_hosts', 24: 'read_resource_owners',
  25: 'set_lvb', 26: 'get_lvb', 27: 'convert', 28: 'version', 29: 'shutdown_wait', 30: 'reg_event',
  31: 'end_event', 32: 'set_event', 33: 'set_config', 34: 'renewal', 35: 'format_rindex',
  36: 'update_rindex', 37: 'lookup_rindex', 38: 'create_resource', 39: 'delete_resource',
  40: 'rebuild_rindex',
};

export interface Header {
  magic: number;
  version: number;
  cmd: number;
  cmdFlags: number;
  length: number;
  seq: number;
  data: number; // int32
  data2: number; // int32 (-1 = this registered connection)
}

export function decodeHeader(b: Buffer): Header {
  assert(b.length >= HEADER_SIZE);
  return {
    magic: b.readUInt32LE(0),
    version: b.readUInt32LE(4),
    cmd: b.readUInt32LE(8),
    cmdFlags: b.readUInt32LE(12),
    length: b.readUInt32LE(16),
    seq: b.readUInt32LE(20),
    data: b.readInt32LE(24),
    data2: b.readInt32LE(28),
  };
}

export function encodeHeader(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeUInt32LE(h.magic >>> 0, 0);
  b.writeUInt32LE(h.version >>> 0, 4);
  b.writeUInt32LE(h.cmd >>> 0, 8);
  b.writeUInt32LE(h.cmdFlags >>> 0, 12);
  b.writeUInt32LE(h.length >>> 0, 16);
  b.writeUInt32LE(h.seq >>> 0, 20);
  b.writeInt32LE(h.data | 0, 24);
  b.writeInt32LE(h.data2 | 0, 28);
  return b;
}

/** send_result: the request header with version 1, length 32 + extra, data = result. */
export function replyHeader(req: Header, result: number, data2 = 0, extraLen = 0): Buffer {
  return encodeHeader({ ...req, magic: SM_MAGIC, version: SM_PROTO, length: HEADER_SIZE + extraLen, data: result, data2 });
}

function readPath(b: Buffer, off: number): string {
  const end = b.indexOf(0, off);
  const stop = end === -1 || end > off + PATH_SIZE ? off + PATH_SIZE - 1 : end;
  return b.toString('latin1', off, stop);
}

function writePath(b: Buffer, off: number, path: string): void {
  b.fill(0, off, off + PATH_SIZE);
  b.write(path.slice(0, PATH_SIZE - 1), off, PATH_SIZE - 1, 'latin1');
}

export interface WireDisk {
  path: string;
  offset: number;
  pad1: number;
  pad2: number;
}

export function decodeDisk(b: Buffer, off = 0): WireDisk {
  return { path: readPath(b, off), offset: readU64(b, off + 1024), pad1: b.readUInt32LE(off + 1032), pad2: b.readUInt32LE(off + 1036) };
}

export function encodeDisk(d: WireDisk, b: Buffer, off = 0): void {
  writePath(b, off, d.path);
  writeU64(b, off + 1024, d.offset);
  b.writeUInt32LE(d.pad1 >>> 0, off + 1032);
  b.writeUInt32LE(d.pad2 >>> 0, off + 1036);
}

export interface WireLockspace {
  name: string;
  hostId: number;
  flags: number;
  disk: WireDisk;
}

export function decodeLockspace(b: Buffer, off = 0): WireLockspace {
  return { name: readName(b, off), hostId: readU64(b, off + 48), flags: b.readUInt32LE(off + 56), disk: decodeDisk(b, off + 64) };
}

export function encodeLockspace(ls: WireLockspace): Buffer {
  const b = Buffer.alloc(LOCKSPACE_SIZE);
  writeName(b, 0, ls.name);
  writeU64(b, 48, ls.hostId);
  b.writeUInt32LE(ls.flags >>> 0, 56);
  encodeDisk(ls.disk, b, 64);
  return b;
}

export interface WireResource {
  lockspaceName: string;
  name: string;
  lver: number;
  data64: number;
  data32: number;
  flags: number;
  numDisks: number;
  disks: WireDisk[];
}

/** The fixed 128-byte part; disks are read separately because their count is inside it. */
export function decodeResourceHead(b: Buffer, off = 0): WireResource {
  return {
    lockspaceName: readName(b, off),
    name: readName(b, off + 48),
    lver: readU64(b, off + 96),
    data64: readU64(b, off + 104),
    data32: b.readUInt32LE(off + 112),
    flags: b.readUInt32LE(off + 120),
    numDisks: b.readUInt32LE(off + 124),
    disks: [],
  };
}

export function encodeResource(r: WireResource, withDisks: boolean): Buffer {
  const n = withDisks ? r.disks.length : 0;
  const b = Buffer.alloc(RESOURCE_SIZE + n * DISK_SIZE);
  writeName(b, 0, r.lockspaceName);
  writeName(b, 48, r.name);
  writeU64(b, 96, r.lver);
  writeU64(b, 104, r.data64);
  b.writeUInt32LE(r.data32 >>> 0, 112);
  b.writeUInt32LE(r.flags >>> 0, 120);
  b.writeUInt32LE(r.numDisks >>> 0, 124);
  for (let i = 0; i < n; i++) encodeDisk(r.disks[i]!, b, RESOURCE_SIZE + i * DISK_SIZE);
  return b;
}

export interface WireHost {
  hostId: number;
  generation: number;
  timestamp: number;
  ioTimeout: number;
  flags: number;
}

export function encodeHost(h: WireHost, b: Buffer, off = 0): void {
  writeU64(b, off, h.hostId);
  writeU64(b, off + 8, h.generation);
  writeU64(b, off + 16, h.timestamp);
  b.writeUInt32LE(h.ioTimeout >>> 0, off + 24);
  b.writeUInt32LE(h.flags >>> 0, off + 28);
}

export interface WireHostEvent {
  hostId: number;
  generation: number;
  event: number;
  data: number;
}

export function decodeHostEvent(b: Buffer, off = 0): WireHostEvent {
  return { hostId: readU64(b, off), generation: readU64(b, off + 8), event: readU64(b, off + 16), data: readU64(b, off + 24) };
}

export function encodeEventCb(he: WireHostEvent, fromHostId: number, fromGeneration: number): Buffer {
  const b = Buffer.alloc(80);
  b.writeUInt32LE(SM_MAGIC, 0);
  b.writeUInt32LE(SM_CB_PROTO, 4);
  b.writeUInt32LE(SM_CB_GET_EVENT, 8);
  b.writeUInt32LE(80, 16);
  writeU64(b, 32, he.hostId);
  writeU64(b, 40, he.generation);
  writeU64(b, 48, he.event);
  writeU64(b, 56, he.data);
  writeU64(b, 64, fromHostId);
  writeU64(b, 72, fromGeneration);
  return b;
}

export const StateType = { DAEMON: 1, CLIENT: 2, LOCKSPACE: 3, RESOURCE: 4, HOST: 5, RENEWAL: 6 } as const;

/** One sanlk_state record: 80-byte head + NUL-terminated text (+ optional binary tail). */
export function encodeState(type: number, data32: number, data64: number, name: string, text: string, tail?: Buffer): Buffer {
  const str = Buffer.from(`${text}\0`, 'latin1');
  // sanlock caps each record's text below 4096 bytes
  assert(str.length < 4096, 'state text too long');
  const b = Buffer.alloc(STATE_SIZE);
  b.writeUInt32LE(type, 0);
  b.writeInt32LE(data32 | 0, 8);
  writeU64(b, 16, data64);
  writeName(b, 24, name);
  b.writeUInt32LE(str.length, 72);
  return tail ? Buffer.concat([b, str, tail]) : Buffer.concat([b, str]);
}
