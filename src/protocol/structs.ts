// Fixed-layout payload structs of sanlock's socket protocol (spec/protocol.md §4.1), x86-64
// layout. Every decoder returns Decoded<T> (never throws on garbage); encoders take plain
// objects, truncate over-long strings to the C field (names 48 bytes without NUL, paths 1023
// bytes + NUL) and zero all padding, so encode(decode(x)) reproduces what real clients send.
//
// Exports (sizes): DISK_SIZE 1040, LOCKSPACE_SIZE 1104, RESOURCE_SIZE 128, OPTIONS_SIZE 56,
//   HOST_SIZE 32, HOST_EVENT_SIZE 32, RINDEX_SIZE 1104, RENTRY_SIZE 64, STATE_SIZE 80,
//   EVENT_CB_SIZE 80, KILLPATH_SIZE 256, NAME_LEN 48, PATH_LEN 1024, HELPER_STR_LEN 128,
//   MAX_RESOURCES 8, MAX_DISKS 4, MAX_LVB_LEN 4096, STATE_MAXSTR 4096
// Types: SanlkDisk, SanlkLockspace, SanlkResource (with disks[]), SanlkOptions, SanlkHost,
//   SanlkHostEvent, SanlkRindex, SanlkRentry, SanlkState, EventCb, KillpathArgs
// Codecs: encodeDisk/decodeDisk, encodeLockspace/decodeLockspace, encodeResource (with
//   `withDisks`)/decodeResource (with `withDisks`), encodeOptions/decodeOptions,
//   encodeHost/decodeHost, encodeHostEvent/decodeHostEvent, encodeRindex/decodeRindex,
//   encodeRentry/decodeRentry, encodeStateHeader/decodeStateHeader, encodeEventCb/decodeEventCb,
//   encodeKillpath/decodeKillpath, plus empty*() constructors.
import { Errno } from '../codes.js';
import {
  type Decoded,
  HEADER_SIZE,
  SM_CB_GET_EVENT,
  SM_CB_PROTO,
  SM_MAGIC,
  type SmHeader,
  decodeHeader,
  fail,
  ok,
  truncated,
  writeHeaderInto,
} from './header.js';

export const NAME_LEN = 48;
export const PATH_LEN = 1024;
export const HELPER_STR_LEN = 128;
export const DISK_SIZE = 1040;
export const LOCKSPACE_SIZE = 1104;
export const RESOURCE_SIZE = 128;
export const OPTIONS_SIZE = 56;
export const HOST_SIZE = 32;
export const HOST_EVENT_SIZE = 32;
export const RINDEX_SIZE = 1104;
export const RENTRY_SIZE = 64;
export const STATE_SIZE = 80;
export const EVENT_CB_SIZE = 80;
export const KILLPATH_SIZE = 2 * HELPER_STR_LEN;
export const MAX_RESOURCES = 8;
export const MAX_DISKS = 4;
export const MAX_LVB_LEN = 4096;
/** SANLK_STATE_MAXSTR: the CLI's buffer for one state text. */
export const STATE_MAXSTR = 4096;

// ---- little-endian helpers (u64 as JS numbers: offsets, lvers, timestamps stay < 2^53) ----

function rdU64(b: Buffer, off: number): number {
  return Number(b.readBigUInt64LE(off));
}

function wrU64(b: Buffer, off: number, v: number): void {
  const n = Number.isFinite(v) && v > 0 ? BigInt(Math.floor(v)) & 0xffffffffffffffffn : 0n;
  b.writeBigUInt64LE(n, off);
}

/** NUL-terminated (or field-filling) byte string, latin1 so arbitrary bytes survive a round trip. */
export function readCStr(b: Buffer, off: number, size: number): string {
  const end = b.indexOf(0, off);
  const stop = end === -1 || end > off + size ? off + size : end;
  return b.toString('latin1', off, stop);
}

/** Writes at most `max` bytes of s, NUL-padding the rest of the `size`-byte field. */
export function writeCStr(b: Buffer, off: number, size: number, s: string, max = size): void {
  b.fill(0, off, off + size);
  const bytes = Buffer.from(s, 'latin1');
  bytes.copy(b, off, 0, Math.min(bytes.length, max, size));
}

function need<T>(what: string, buf: Buffer, off: number, size: number): Decoded<T> | null {
  if (off < 0 || buf.length - off < size) return truncated(what, size, Math.max(0, buf.length - off));
  return null;
}

// ---- sanlk_disk ----

export interface SanlkDisk {
  path: string;
  offset: number;
  pad1: number;
  pad2: number;
}

export function emptyDisk(path = '', offset = 0): SanlkDisk {
  return { path, offset, pad1: 0, pad2: 0 };
}

export function writeDiskInto(b: Buffer, off: number, d: SanlkDisk): void {
  writeCStr(b, off, PATH_LEN, d.path, PATH_LEN - 1);
  wrU64(b, off + 1024, d.offset);
  b.writeUInt32LE(d.pad1 >>> 0, off + 1032);
  b.writeUInt32LE(d.pad2 >>> 0, off + 1036);
}

export function encodeDisk(d: SanlkDisk): Buffer {
  const b = Buffer.alloc(DISK_SIZE);
  writeDiskInto(b, 0, d);
  return b;
}

export function decodeDisk(buf: Buffer, off = 0): Decoded<SanlkDisk> {
  return (
    need<SanlkDisk>('sanlk_disk', buf, off, DISK_SIZE) ??
    ok(
      {
        path: readCStr(buf, off, PATH_LEN),
        offset: rdU64(buf, off + 1024),
        pad1: buf.readUInt32LE(off + 1032),
        pad2: buf.readUInt32LE(off + 1036),
      },
      DISK_SIZE,
    )
  );
}

// ---- sanlk_lockspace ----

export interface SanlkLockspace {
  name: string;
  hostId: number;
  flags: number;
  hostIdDisk: SanlkDisk;
}

export function emptyLockspace(name = ''): SanlkLockspace {
  return { name, hostId: 0, flags: 0, hostIdDisk: emptyDisk() };
}

export function writeLockspaceInto(b: Buffer, off: number, ls: SanlkLockspace): void {
  writeCStr(b, off, NAME_LEN, ls.name);
  wrU64(b, off + 48, ls.hostId);
  b.writeUInt32LE(ls.flags >>> 0, off + 56);
  b.writeUInt32LE(0, off + 60);
  writeDiskInto(b, off + 64, ls.hostIdDisk);
}

export function encodeLockspace(ls: SanlkLockspace): Buffer {
  const b = Buffer.alloc(LOCKSPACE_SIZE);
  writeLockspaceInto(b, 0, ls);
  return b;
}

export function decodeLockspace(buf: Buffer, off = 0): Decoded<SanlkLockspace> {
  const short = need<SanlkLockspace>('sanlk_lockspace', buf, off, LOCKSPACE_SIZE);
  if (short) return short;
  const disk = decodeDisk(buf, off + 64);
  if (!disk.ok) return disk;
  return ok(
    { name: readCStr(buf, off, NAME_LEN), hostId: rdU64(buf, off + 48), flags: buf.readUInt32LE(off + 56), hostIdDisk: disk.value },
    LOCKSPACE_SIZE,
  );
}

// ---- sanlk_resource (+ disks) ----

export interface SanlkResource {
  lockspaceName: string;
  name: string;
  lver: number;
  data64: number;
  data32: number;
  unused: number;
  flags: number;
  /** As sent on the wire; may differ from disks.length (RELEASE sends num_disks without disks). */
  numDisks: number;
  disks: SanlkDisk[];
}

export function makeResource(lockspaceName: string, name: string, disks: SanlkDisk[] = [], fields: Partial<SanlkResource> = {}): SanlkResource {
  return { lockspaceName, name, lver: 0, data64: 0, data32: 0, unused: 0, flags: 0, numDisks: disks.length, disks, ...fields };
}

export function writeResourceInto(b: Buffer, off: number, r: SanlkResource): void {
  writeCStr(b, off, NAME_LEN, r.lockspaceName);
  writeCStr(b, off + 48, NAME_LEN, r.name);
  wrU64(b, off + 96, r.lver);
  wrU64(b, off + 104, r.data64);
  b.writeUInt32LE(r.data32 >>> 0, off + 112);
  b.writeUInt32LE(r.unused >>> 0, off + 116);
  b.writeUInt32LE(r.flags >>> 0, off + 120);
  b.writeUInt32LE(r.numDisks >>> 0, off + 124);
}

/** The 128-byte struct, followed by every disk when withDisks (ACQUIRE, REQUEST, WRITE_/READ_RESOURCE). */
export function encodeResource(r: SanlkResource, withDisks = true): Buffer {
  const n = withDisks ? r.disks.length : 0;
  const b = Buffer.alloc(RESOURCE_SIZE + n * DISK_SIZE);
  writeResourceInto(b, 0, r);
  for (let i = 0; i < n; i++) writeDiskInto(b, RESOURCE_SIZE + i * DISK_SIZE, r.disks[i]!);
  return b;
}

/**
 * Decodes one resource; with withDisks also the num_disks disks that follow (num_disks 0 or >4
 * → -ERANGE, as the daemon answers). `size` covers the disks read.
 */
export function decodeResource(buf: Buffer, off = 0, withDisks = true): Decoded<SanlkResource> {
  const short = need<SanlkResource>('sanlk_resource', buf, off, RESOURCE_SIZE);
  if (short) return short;
  const r: SanlkResource = {
    lockspaceName: readCStr(buf, off, NAME_LEN),
    name: readCStr(buf, off + 48, NAME_LEN),
    lver: rdU64(buf, off + 96),
    data64: rdU64(buf, off + 104),
    data32: buf.readUInt32LE(off + 112),
    unused: buf.readUInt32LE(off + 116),
    flags: buf.readUInt32LE(off + 120),
    numDisks: buf.readUInt32LE(off + 124),
    disks: [],
  };
  if (!withDisks) return ok(r, RESOURCE_SIZE);
  if (r.numDisks === 0 || r.numDisks > MAX_DISKS) return fail(-Errno.ERANGE, `sanlk_resource num_disks ${r.numDisks}`);
  let pos = off + RESOURCE_SIZE;
  // Sized up front: a held lease keeps this array, and one grown by push reserves 17 slots.
  r.disks = new Array<SanlkDisk>(r.numDisks);
  for (let i = 0; i < r.numDisks; i++) {
    const d = decodeDisk(buf, pos);
    if (!d.ok) return d;
    r.disks[i] = d.value;
    pos += DISK_SIZE;
  }
  return ok(r, pos - off);
}

// ---- sanlk_options ----

export interface SanlkOptions {
  ownerName: string;
  flags: number;
  len: number;
}

export function emptyOptions(): SanlkOptions {
  return { ownerName: '', flags: 0, len: 0 };
}

export function encodeOptions(o: SanlkOptions): Buffer {
  const b = Buffer.alloc(OPTIONS_SIZE);
  writeCStr(b, 0, NAME_LEN, o.ownerName);
  b.writeUInt32LE(o.flags >>> 0, 48);
  b.writeUInt32LE(o.len >>> 0, 52);
  return b;
}

export function decodeOptions(buf: Buffer, off = 0): Decoded<SanlkOptions> {
  return (
    need<SanlkOptions>('sanlk_options', buf, off, OPTIONS_SIZE) ??
    ok({ ownerName: readCStr(buf, off, NAME_LEN), flags: buf.readUInt32LE(off + 48), len: buf.readUInt32LE(off + 52) }, OPTIONS_SIZE)
  );
}

// ---- sanlk_host ----

export interface SanlkHost {
  hostId: number;
  generation: number;
  timestamp: number;
  ioTimeout: number;
  flags: number;
}

export function writeHostInto(b: Buffer, off: number, h: SanlkHost): void {
  wrU64(b, off, h.hostId);
  wrU64(b, off + 8, h.generation);
  wrU64(b, off + 16, h.timestamp);
  b.writeUInt32LE(h.ioTimeout >>> 0, off + 24);
  b.writeUInt32LE(h.flags >>> 0, off + 28);
}

export function encodeHost(h: SanlkHost): Buffer {
  const b = Buffer.alloc(HOST_SIZE);
  writeHostInto(b, 0, h);
  return b;
}

export function decodeHost(buf: Buffer, off = 0): Decoded<SanlkHost> {
  return (
    need<SanlkHost>('sanlk_host', buf, off, HOST_SIZE) ??
    ok(
      {
        hostId: rdU64(buf, off),
        generation: rdU64(buf, off + 8),
        timestamp: rdU64(buf, off + 16),
        ioTimeout: buf.readUInt32LE(off + 24),
        flags: buf.readUInt32LE(off + 28),
      },
      HOST_SIZE,
    )
  );
}

// ---- sanlk_host_event ----

export interface SanlkHostEvent {
  hostId: number;
  generation: number;
  event: number;
  data: number;
}

export function emptyHostEvent(): SanlkHostEvent {
  return { hostId: 0, generation: 0, event: 0, data: 0 };
}

export function writeHostEventInto(b: Buffer, off: number, e: SanlkHostEvent): void {
  wrU64(b, off, e.hostId);
  wrU64(b, off + 8, e.generation);
  wrU64(b, off + 16, e.event);
  wrU64(b, off + 24, e.data);
}

export function encodeHostEvent(e: SanlkHostEvent): Buffer {
  const b = Buffer.alloc(HOST_EVENT_SIZE);
  writeHostEventInto(b, 0, e);
  return b;
}

export function decodeHostEvent(buf: Buffer, off = 0): Decoded<SanlkHostEvent> {
  return (
    need<SanlkHostEvent>('sanlk_host_event', buf, off, HOST_EVENT_SIZE) ??
    ok({ hostId: rdU64(buf, off), generation: rdU64(buf, off + 8), event: rdU64(buf, off + 16), data: rdU64(buf, off + 24) }, HOST_EVENT_SIZE)
  );
}

// ---- event_cb (pushed on the event channel) ----

export interface EventCb {
  header: SmHeader;
  he: SanlkHostEvent;
  fromHostId: number;
  fromGeneration: number;
}

export function encodeEventCb(he: SanlkHostEvent, fromHostId: number, fromGeneration: number): Buffer {
  const b = Buffer.alloc(EVENT_CB_SIZE);
  writeHeaderInto(b, 0, {
    magic: SM_MAGIC,
    version: SM_CB_PROTO,
    cmd: SM_CB_GET_EVENT,
    cmdFlags: 0,
    length: EVENT_CB_SIZE,
    seq: 0,
    data: 0,
    data2: 0,
  });
  writeHostEventInto(b, HEADER_SIZE, he);
  wrU64(b, 64, fromHostId);
  wrU64(b, 72, fromGeneration);
  return b;
}

export function decodeEventCb(buf: Buffer, off = 0): Decoded<EventCb> {
  const short = need<EventCb>('event_cb', buf, off, EVENT_CB_SIZE);
  if (short) return short;
  const h = decodeHeader(buf, off);
  if (!h.ok) return h;
  if (h.value.magic !== SM_MAGIC) return fail(-Errno.EINVAL, `event_cb magic ${h.value.magic.toString(16)}`);
  const he = decodeHostEvent(buf, off + HEADER_SIZE);
  if (!he.ok) return he;
  return ok({ header: h.value, he: he.value, fromHostId: rdU64(buf, off + 64), fromGeneration: rdU64(buf, off + 72) }, EVENT_CB_SIZE);
}

// ---- sanlk_rindex / sanlk_rentry ----

export interface SanlkRindex {
  flags: number;
  maxResources: number;
  unused: number;
  lockspaceName: string;
  disk: SanlkDisk;
}

export function encodeRindex(rx: SanlkRindex): Buffer {
  const b = Buffer.alloc(RINDEX_SIZE);
  b.writeUInt32LE(rx.flags >>> 0, 0);
  b.writeUInt32LE(rx.maxResources >>> 0, 4);
  wrU64(b, 8, rx.unused);
  writeCStr(b, 16, NAME_LEN, rx.lockspaceName);
  writeDiskInto(b, 64, rx.disk);
  return b;
}

export function decodeRindex(buf: Buffer, off = 0): Decoded<SanlkRindex> {
  const short = need<SanlkRindex>('sanlk_rindex', buf, off, RINDEX_SIZE);
  if (short) return short;
  const d = decodeDisk(buf, off + 64);
  if (!d.ok) return d;
  return ok(
    {
      flags: buf.readUInt32LE(off),
      maxResources: buf.readUInt32LE(off + 4),
      unused: rdU64(buf, off + 8),
      lockspaceName: readCStr(buf, off + 16, NAME_LEN),
      disk: d.value,
    },
    RINDEX_SIZE,
  );
}

export interface SanlkRentry {
  name: string;
  offset: number;
  flags: number;
  unused: number;
}

export function encodeRentry(re: SanlkRentry): Buffer {
  const b = Buffer.alloc(RENTRY_SIZE);
  writeCStr(b, 0, NAME_LEN, re.name);
  wrU64(b, 48, re.offset);
  b.writeUInt32LE(re.flags >>> 0, 56);
  b.writeUInt32LE(re.unused >>> 0, 60);
  return b;
}

export function decodeRentry(buf: Buffer, off = 0): Decoded<SanlkRentry> {
  return (
    need<SanlkRentry>('sanlk_rentry', buf, off, RENTRY_SIZE) ??
    ok({ name: readCStr(buf, off, NAME_LEN), offset: rdU64(buf, off + 48), flags: buf.readUInt32LE(off + 56), unused: buf.readUInt32LE(off + 60) }, RENTRY_SIZE)
  );
}

// ---- sanlk_state (the 80-byte record header of STATUS/HOST_STATUS/RENEWAL streams) ----

export const StateType = { DAEMON: 1, CLIENT: 2, LOCKSPACE: 3, RESOURCE: 4, HOST: 5, RENEWAL: 6 } as const;

export interface SanlkStateHeader {
  type: number;
  flags: number;
  /** signed: -1 for "no pid" */
  data32: number;
  data64: number;
  name: string;
  strLen: number;
}

export function encodeStateHeader(st: SanlkStateHeader): Buffer {
  const b = Buffer.alloc(STATE_SIZE);
  b.writeUInt32LE(st.type >>> 0, 0);
  b.writeUInt32LE(st.flags >>> 0, 4);
  b.writeInt32LE(st.data32 | 0, 8);
  wrU64(b, 16, st.data64);
  writeCStr(b, 24, NAME_LEN, st.name);
  b.writeUInt32LE(st.strLen >>> 0, 72);
  return b;
}

export function decodeStateHeader(buf: Buffer, off = 0): Decoded<SanlkStateHeader> {
  return (
    need<SanlkStateHeader>('sanlk_state', buf, off, STATE_SIZE) ??
    ok(
      {
        type: buf.readUInt32LE(off),
        flags: buf.readUInt32LE(off + 4),
        data32: buf.readInt32LE(off + 8),
        data64: rdU64(buf, off + 16),
        name: readCStr(buf, off + 24, NAME_LEN),
        strLen: buf.readUInt32LE(off + 72),
      },
      STATE_SIZE,
    )
  );
}

// ---- KILLPATH payload ----

export interface KillpathArgs {
  path: string;
  args: string;
}

/** path[128] + args[128]; the daemon forces a NUL at byte 127 of each. */
export function encodeKillpath(k: KillpathArgs): Buffer {
  const b = Buffer.alloc(KILLPATH_SIZE);
  writeCStr(b, 0, HELPER_STR_LEN, k.path, HELPER_STR_LEN - 1);
  writeCStr(b, HELPER_STR_LEN, HELPER_STR_LEN, k.args, HELPER_STR_LEN - 1);
  return b;
}

export function decodeKillpath(buf: Buffer, off = 0): Decoded<KillpathArgs> {
  return (
    need<KillpathArgs>('killpath', buf, off, KILLPATH_SIZE) ??
    ok({ path: readCStr(buf, off, HELPER_STR_LEN - 1), args: readCStr(buf, off + HELPER_STR_LEN, HELPER_STR_LEN - 1) }, KILLPATH_SIZE)
  );
}
