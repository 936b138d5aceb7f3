// Command numbers, flag values, the command table (spec/protocol.md §4.2–4.3) and the
// daemon-side request framing of §3.2.
//
// The daemon must NOT trust header.length: it reads a fixed payload per command (the number
// of resources and disks comes from header.data and each resource's num_disks). Use:
//
//   frameRequest(buf) → FrameResult
//       looks at the bytes buffered so far on one connection and says
//       { kind: 'need', bytes }      – wait until `bytes` bytes are buffered, then call again;
//       { kind: 'drop', header, reason, size }  – silently ignore (bad magic, higher major
//                                      version, unknown cmd): consume `size` (=32) bytes, no reply;
//       { kind: 'error', header, code, size }   – the daemon answers std reply `code` after
//                                      consuming `size` bytes and draining whatever else is already
//                                      buffered (client_recv_all) – e.g. ACQUIRE count 9 → -E2BIG;
//       { kind: 'request', request, size }      – a complete request (DecodedRequest), consume `size`.
//   decodeRequest(header, payload) → Decoded<DecodedRequest>   (payload = bytes after the header)
//   RequestFramer: push(chunk) → FrameResult[] for a stream (keeps the leftover bytes).
//
// Reply encoders for the daemon (each returns the full bytes to write): encodeStdReply,
// encodeInquireReply, encodeGetLockspacesReply, encodeGetHostsReply, encodeReadLockspaceReply,
// encodeReadResourceReply, encodeReadResourceOwnersReply, encodeGetLvbReply, encodeRentryReply,
// encodeVersionReply, encodeLogDumpReply, encodeStreamHeader, encodeStateRecord,
// encodeShutdownWaitDone, and encodeReplyHeader (header only, payload appended by the caller).
// cmdStr/cmdStrs: sanlock's lower-case command names. Reply decoders for clients live in src/protocol/replies.ts.
import assert from 'node:assert';
import { Errno } from '../codes.js';
import {
  type Decoded,
  HEADER_SIZE,
  SM_PROTO,
  type SmHeader,
  VERSION_HEX,
  decodeHeader,
  encodeHeader,
  fail,
  headerRejectReason,
  makeHeader,
  ok,
  stdReply,
  truncated,
} from './header.js';
import {
  DISK_SIZE,
  HOST_EVENT_SIZE,
  HOST_SIZE,
  KILLPATH_SIZE,
  type KillpathArgs,
  LOCKSPACE_SIZE,
  MAX_DISKS,
  MAX_LVB_LEN,
  MAX_RESOURCES,
  OPTIONS_SIZE,
  RENTRY_SIZE,
  RESOURCE_SIZE,
  RINDEX_SIZE,
  STATE_MAXSTR,
  type SanlkDisk,
  type SanlkHost,
  type SanlkHostEvent,
  type SanlkLockspace,
  type SanlkOptions,
  type SanlkRentry,
  type SanlkResource,
  type SanlkRindex,
  type SanlkStateHeader,
  decodeDisk,
  decodeHostEvent,
  decodeKillpath,
  decodeLockspace,
  decodeOptions,
  decodeRentry,
  decodeResource,
  decodeRindex,
  encodeHost,
  encodeLockspace,
  encodeRentry,
  encodeResource,
  encodeStateHeader,
} from './structs.js';

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

export type CmdName = keyof typeof Cmd;

const cmdNames = new Map<number, CmdName>(Object.entries(Cmd).map(([k, v]) => [v, k as CmdName]));

export function cmdName(cmd: number): string {
  return cmdNames.get(cmd) ?? `cmd${cmd}`;
}

export function isKnownCmd(cmd: number): boolean {
  return cmdNames.has(cmd);
}

/**
 * sanlock's cmd_str() names (lower case), as the daemon logs them, as `debug_cmd` in
 * sanlock.conf names them, and as STATUS shows an unregistered client running a command.
 */
export const cmdStrs: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(Cmd).map(([k, v]) => [v, k.toLowerCase()])),
);

export function cmdStr(cmd: number): string {
  return cmdStrs[cmd] ?? `cmd${cmd}`;
}

// ---- flag values (§4.2) ----

export const LsFlag = {
  ADD: 0x1,
  REM: 0x2,
  ALIGN1M: 0x10,
  ALIGN2M: 0x20,
  ALIGN4M: 0x40,
  ALIGN8M: 0x80,
  SECTOR512: 0x100,
  SECTOR4K: 0x200,
} as const;

export const ResFlag = {
  LVER: 0x1,
  NUM_HOSTS: 0x2,
  SHARED: 0x4,
  PERSISTENT: 0x8,
  ALIGN1M: 0x10,
  ALIGN2M: 0x20,
  ALIGN4M: 0x40,
  ALIGN8M: 0x80,
  SECTOR512: 0x100,
  SECTOR4K: 0x200,
} as const;

export const RifFlag = { ALIGN1M: 0x10, ALIGN2M: 0x20, ALIGN4M: 0x40, ALIGN8M: 0x80, SECTOR512: 0x100, SECTOR4K: 0x200 } as const;

export const AcquireFlag = { LVB: 0x1, ORPHAN: 0x2, ORPHAN_ONLY: 0x4, OWNER_NOWAIT: 0x8 } as const;
export const ReleaseFlag = { ALL: 0x1, RENAME: 0x2, ORPHAN: 0x4 } as const;
export const ConvertFlag = { OWNER_NOWAIT: 0x8 } as const;
export const RequestFlag = { NEXT_LVER: 0x1 } as const;
export const ForceMode = { NONE: 0, FORCE: 1, KILL_PID: 1, GRACEFUL: 2 } as const;
export const RestrictFlag = { ALL: 0x1, SIGKILL: 0x2, SIGTERM: 0x4 } as const;
export const KillpathFlag = { PID: 0x1 } as const;
export const AddLsFlag = { ASYNC: 0x1 } as const;
export const RemLsFlag = { ASYNC: 0x1, UNUSED: 0x2 } as const;
export const InqLsFlag = { WAIT: 0x1 } as const;
export const WriteResFlag = { CLEAR: 0x1 } as const;
export const SetEventFlag = { CUR_GENERATION: 0x1, CLEAR_HOSTID: 0x2, CLEAR_EVENT: 0x4, REPLACE_EVENT: 0x8, ALL_HOSTS: 0x10 } as const;
export const ConfigCmd = { USED: 1, UNUSED: 2, USED_BY_ORPHANS: 4, UNUSED_BY_ORPHANS: 8 } as const;
export const RindexFlag = { RX_NO_LOCKSPACE: 0x1, RXUP_ADD: 0x10000, RXUP_REM: 0x20000 } as const;
export const HostState = { UNKNOWN: 1, FREE: 2, LIVE: 3, FAIL: 4, DEAD: 5 } as const;
export const HOST_STATE_MASK = 0xf;

const hostStateNames: Record<number, string> = { 1: 'UNKNOWN', 2: 'FREE', 3: 'LIVE', 4: 'FAIL', 5: 'DEAD' };

/** The name `sanlock client gets -h 1` prints for sanlk_host.flags. */
export function hostStateName(flags: number): string {
  return hostStateNames[flags & HOST_STATE_MASK] ?? 'UNKNOWN';
}

// ---- size/align flags ----

const ALIGN_BY_FLAG: Array<[number, number]> = [
  [0x10, 1 << 20],
  [0x20, 2 << 20],
  [0x40, 4 << 20],
  [0x80, 8 << 20],
];

export function alignSizeToFlag(align: number): number {
  for (const [f, s] of ALIGN_BY_FLAG) if (s === align) return f;
  return 0;
}

export function alignFlagToSize(flags: number): number {
  for (const [f, s] of ALIGN_BY_FLAG) if (flags & f) return s;
  return 0;
}

export function sectorSizeToFlag(sector: number): number {
  return sector === 512 ? 0x100 : sector === 4096 ? 0x200 : 0;
}

export function sectorFlagToSize(flags: number): number {
  return flags & 0x100 ? 512 : flags & 0x200 ? 4096 : 0;
}

// ---- the command table (§4.3) ----

/** Which connection class serves a command (§3.3). */
export type CmdClass = 'A' | 'B' | 'C';

/**
 * How the payload after the header is laid out:
 * none; L (lockspace); LE (lockspace + host event); D (disk); R (resource, no disks);
 * RD (resource + num_disks disks); ACQUIRE (data × RD, then options); RELEASE (data × R);
 * SET_LVB (R + length−160 lvb bytes); KILLPATH (path[128] + args[128]); X (rindex); XN (rindex + rentry).
 */
export type PayloadKind = 'none' | 'L' | 'LE' | 'D' | 'R' | 'RD' | 'ACQUIRE' | 'RELEASE' | 'SET_LVB' | 'KILLPATH' | 'X' | 'XN';

/**
 * How the daemon answers: none; std (§2.1); inquire (string); lockspaces (data2 × L);
 * hosts (data2 × H); read_lockspace (L); read_resource (R); owners (R + data2 × H);
 * lvb (length−32 bytes); rentry (N); stream (state records until EOF); log_dump (data bytes);
 * version (fresh header); shutdown_wait (fresh header cmd 0 at exit).
 */
export type ReplyKind =
  | 'none'
  | 'std'
  | 'inquire'
  | 'lockspaces'
  | 'hosts'
  | 'read_lockspace'
  | 'read_resource'
  | 'owners'
  | 'lvb'
  | 'rentry'
  | 'stream'
  | 'log_dump'
  | 'version'
  | 'shutdown_wait';

export interface CmdInfo {
  cmd: number;
  name: CmdName;
  cls: CmdClass;
  payload: PayloadKind;
  reply: ReplyKind;
  /**
   * Class A commands after which the daemon closes the connection (all but REGISTER, RESTRICT,
   * VERSION and REG_EVENT, whose socket lives on as the event channel through a dup'd fd).
   */
  closesAfterReply: boolean;
}

function info(name: CmdName, cls: CmdClass, payload: PayloadKind, reply: ReplyKind): CmdInfo {
  const closes = cls === 'A' && name !== 'REGISTER' && name !== 'RESTRICT' && name !== 'VERSION' && name !== 'REG_EVENT';
  return { cmd: Cmd[name], name, cls, payload, reply, closesAfterReply: closes };
}

export const COMMANDS: ReadonlyMap<number, CmdInfo> = new Map(
  [
    info('REGISTER', 'A', 'none', 'none'),
    info('ADD_LOCKSPACE', 'B', 'L', 'std'),
    info('REM_LOCKSPACE', 'B', 'L', 'std'),
    info('SHUTDOWN', 'A', 'none', 'none'),
    info('STATUS', 'A', 'none', 'stream'),
    info('LOG_DUMP', 'A', 'none', 'log_dump'),
    info('ACQUIRE', 'C', 'ACQUIRE', 'std'),
    info('RELEASE', 'C', 'RELEASE', 'std'),
    info('INQUIRE', 'C', 'none', 'inquire'),
    info('RESTRICT', 'A', 'none', 'std'),
    info('REQUEST', 'B', 'RD', 'std'),
    info('ALIGN', 'B', 'D', 'std'),
    info('EXAMINE_LOCKSPACE', 'B', 'L', 'std'),
    info('EXAMINE_RESOURCE', 'B', 'R', 'std'),
    info('HOST_STATUS', 'A', 'L', 'stream'),
    info('INQ_LOCKSPACE', 'B', 'L', 'std'),
    info('KILLPATH', 'C', 'KILLPATH', 'std'),
    info('WRITE_LOCKSPACE', 'B', 'L', 'std'),
    info('WRITE_RESOURCE', 'B', 'RD', 'std'),
    info('READ_LOCKSPACE', 'B', 'L', 'read_lockspace'),
    info('READ_RESOURCE', 'B', 'RD', 'read_resource'),
    info('GET_LOCKSPACES', 'A', 'none', 'lockspaces'),
    info('GET_HOSTS', 'A', 'L', 'hosts'),
    info('READ_RESOURCE_OWNERS', 'B', 'RD', 'owners'),
    info('SET_LVB', 'B', 'SET_LVB', 'std'),
    info('GET_LVB', 'B', 'R', 'lvb'),
    info('CONVERT', 'C', 'R', 'std'),
    info('VERSION', 'A', 'none', 'version'),
    info('SHUTDOWN_WAIT', 'B', 'none', 'shutdown_wait'),
    info('REG_EVENT', 'A', 'LE', 'std'),
    info('END_EVENT', 'A', 'L', 'std'),
    info('SET_EVENT', 'B', 'LE', 'std'),
    info('SET_CONFIG', 'A', 'L', 'std'),
    info('RENEWAL', 'A', 'L', 'stream'),
    info('FORMAT_RINDEX', 'B', 'X', 'std'),
    info('UPDATE_RINDEX', 'B', 'XN', 'rentry'),
    info('LOOKUP_RINDEX', 'B', 'XN', 'rentry'),
    info('CREATE_RESOURCE', 'B', 'XN', 'rentry'),
    info('DELETE_RESOURCE', 'B', 'XN', 'rentry'),
    info('REBUILD_RINDEX', 'B', 'X', 'std'),
  ].map((i) => [i.cmd, i]),
);

// ---- decoded requests ----

/** A request as the daemon sees it; only the fields of the command's payload kind are set. */
export interface DecodedRequest {
  header: SmHeader;
  info: CmdInfo;
  lockspace?: SanlkLockspace;
  hostEvent?: SanlkHostEvent;
  disk?: SanlkDisk;
  /** ACQUIRE (with disks), RELEASE (without), and single-resource commands. */
  resources?: SanlkResource[];
  options?: SanlkOptions;
  lvb?: Buffer;
  killpath?: KillpathArgs;
  rindex?: SanlkRindex;
  rentry?: SanlkRentry;
}

export type FrameResult =
  | { kind: 'need'; bytes: number }
  | { kind: 'drop'; header: SmHeader; reason: string; size: number }
  | { kind: 'error'; header: SmHeader; code: number; reason: string; size: number }
  | { kind: 'request'; request: DecodedRequest; size: number };

/**
 * Bytes of payload the daemon reads for this header, given what is buffered (ACQUIRE needs to
 * look at each resource's num_disks). Returns { need } when more bytes must arrive first.
 */
function payloadSize(h: SmHeader, info: CmdInfo, p: Buffer): { size: number } | { need: number } | { code: number; reason: string } {
  switch (info.payload) {
    case 'none':
      return { size: 0 };
    case 'L':
      return { size: LOCKSPACE_SIZE };
    case 'LE':
      return { size: LOCKSPACE_SIZE + HOST_EVENT_SIZE };
    case 'D':
      return { size: DISK_SIZE };
    case 'R':
      return { size: RESOURCE_SIZE };
    case 'KILLPATH':
      return { size: KILLPATH_SIZE };
    case 'X':
      return { size: RINDEX_SIZE };
    case 'XN':
      return { size: RINDEX_SIZE + RENTRY_SIZE };
    case 'SET_LVB': {
      const lvblen = h.length - HEADER_SIZE - RESOURCE_SIZE;
      if (lvblen > MAX_LVB_LEN) return { code: -Errno.E2BIG, reason: `lvblen ${lvblen}` };
      return { size: RESOURCE_SIZE + Math.max(0, lvblen) };
    }
    case 'RD': {
      if (p.length < RESOURCE_SIZE) return { need: RESOURCE_SIZE };
      const nd = p.readUInt32LE(124);
      if (nd === 0 || nd > MAX_DISKS) return { code: -Errno.ERANGE, reason: `num_disks ${nd}` };
      return { size: RESOURCE_SIZE + nd * DISK_SIZE };
    }
    case 'RELEASE': {
      const count = h.data;
      if (count < 0 || count > MAX_RESOURCES) return { code: -Errno.E2BIG, reason: `count ${count}` };
      return { size: count * RESOURCE_SIZE };
    }
    case 'ACQUIRE': {
      const count = h.data;
      if (count < 0 || count > MAX_RESOURCES) return { code: -Errno.E2BIG, reason: `count ${count}` };
      let pos = 0;
      for (let i = 0; i < count; i++) {
        if (p.length < pos + RESOURCE_SIZE) return { need: pos + RESOURCE_SIZE };
        const nd = p.readUInt32LE(pos + 124);
        if (nd === 0 || nd > MAX_DISKS) return { code: -Errno.ERANGE, reason: `num_disks ${nd}` };
        pos += RESOURCE_SIZE + nd * DISK_SIZE;
      }
      return { size: pos + OPTIONS_SIZE };
    }
  }
}

/** One framing step over the bytes buffered on a connection (see the file comment). */
export function frameRequest(buf: Buffer): FrameResult {
  if (buf.length < HEADER_SIZE) return { kind: 'need', bytes: HEADER_SIZE };
  const hd = decodeHeader(buf, 0);
  if (!hd.ok) return { kind: 'need', bytes: HEADER_SIZE };
  const h = hd.value;
  const reject = headerRejectReason(h, Cmd.VERSION);
  if (reject) return { kind: 'drop', header: h, reason: reject, size: HEADER_SIZE };
  const inf = COMMANDS.get(h.cmd);
  if (!inf) return { kind: 'drop', header: h, reason: `cmd ${h.cmd} unknown`, size: HEADER_SIZE };
  const payload = buf.subarray(HEADER_SIZE);
  const ps = payloadSize(h, inf, payload);
  if ('need' in ps) return { kind: 'need', bytes: HEADER_SIZE + ps.need };
  if ('code' in ps) return { kind: 'error', header: h, code: ps.code, reason: ps.reason, size: HEADER_SIZE };
  if (payload.length < ps.size) return { kind: 'need', bytes: HEADER_SIZE + ps.size };
  const dec = decodeRequest(h, payload.subarray(0, ps.size));
  if (!dec.ok) return { kind: 'error', header: h, code: dec.code, reason: dec.error, size: HEADER_SIZE + ps.size };
  return { kind: 'request', request: dec.value, size: HEADER_SIZE + ps.size };
}

/** Decodes a request's payload (exactly the bytes frameRequest framed, or more: extra is ignored). */
export function decodeRequest(h: SmHeader, p: Buffer): Decoded<DecodedRequest> {
  const inf = COMMANDS.get(h.cmd);
  if (!inf) return fail(-Errno.EINVAL, `cmd ${h.cmd} unknown`);
  const req: DecodedRequest = { header: h, info: inf };
  switch (inf.payload) {
    case 'none':
      return ok(req, 0);
    case 'L':
    case 'LE': {
      const ls = decodeLockspace(p, 0);
      if (!ls.ok) return ls;
      req.lockspace = ls.value;
      if (inf.payload === 'L') return ok(req, LOCKSPACE_SIZE);
      const he = decodeHostEvent(p, LOCKSPACE_SIZE);
      if (!he.ok) return he;
      req.hostEvent = he.value;
      return ok(req, LOCKSPACE_SIZE + HOST_EVENT_SIZE);
    }
    case 'D': {
      const d = decodeDisk(p, 0);
      if (!d.ok) return d;
      req.disk = d.value;
      return ok(req, DISK_SIZE);
    }
    case 'R':
    case 'RD': {
      const r = decodeResource(p, 0, inf.payload === 'RD');
      if (!r.ok) return r;
      req.resources = [r.value];
      return ok(req, r.size);
    }
    case 'SET_LVB': {
      const r = decodeResource(p, 0, false);
      if (!r.ok) return r;
      req.resources = [r.value];
      const lvblen = Math.max(0, h.length - HEADER_SIZE - RESOURCE_SIZE);
      if (lvblen > MAX_LVB_LEN) return fail(-Errno.E2BIG, `lvblen ${lvblen}`);
      if (p.length < RESOURCE_SIZE + lvblen) return truncated('set_lvb data', RESOURCE_SIZE + lvblen, p.length);
      req.lvb = Buffer.from(p.subarray(RESOURCE_SIZE, RESOURCE_SIZE + lvblen));
      return ok(req, RESOURCE_SIZE + lvblen);
    }
    case 'RELEASE': {
      const count = h.data;
      if (count < 0 || count > MAX_RESOURCES) return fail(-Errno.E2BIG, `count ${count}`);
      req.resources = [];
      for (let i = 0; i < count; i++) {
        const r = decodeResource(p, i * RESOURCE_SIZE, false);
        if (!r.ok) return r;
        req.resources.push(r.value);
      }
      return ok(req, count * RESOURCE_SIZE);
    }
    case 'ACQUIRE': {
      const count = h.data;
      if (count < 0 || count > MAX_RESOURCES) return fail(-Errno.E2BIG, `count ${count}`);
      req.resources = [];
      let pos = 0;
      for (let i = 0; i < count; i++) {
        const r = decodeResource(p, pos, true);
        if (!r.ok) return r;
        req.resources.push(r.value);
        pos += r.size;
      }
      const o = decodeOptions(p, pos);
      if (!o.ok) return o;
      req.options = o.value;
      return ok(req, pos + OPTIONS_SIZE);
    }
    case 'KILLPATH': {
      const k = decodeKillpath(p, 0);
      if (!k.ok) return k;
      req.killpath = k.value;
      return ok(req, KILLPATH_SIZE);
    }
    case 'X':
    case 'XN': {
      const x = decodeRindex(p, 0);
      if (!x.ok) return x;
      req.rindex = x.value;
      if (inf.payload === 'X') return ok(req, RINDEX_SIZE);
      const n = decodeRentry(p, RINDEX_SIZE);
      if (!n.ok) return n;
      req.rentry = n.value;
      return ok(req, RINDEX_SIZE + RENTRY_SIZE);
    }
  }
}

/** Stream framing over one connection: feed received chunks, get complete frames back. */
export class RequestFramer {
  private buf: Buffer = Buffer.alloc(0);

  /** Appends a chunk and returns every frame that is now complete ('need' is never returned). */
  push(chunk: Buffer): FrameResult[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: FrameResult[] = [];
    for (;;) {
      const f = frameRequest(this.buf);
      if (f.kind === 'need') break;
      out.push(f);
      // An early error makes the daemon drain what the client already sent (client_recv_all).
      const consumed = f.kind === 'error' ? this.buf.length : f.size;
      assert(consumed > 0 && consumed <= this.buf.length, 'a frame consumes buffered bytes only');
      this.buf = this.buf.subarray(consumed);
    }
    return out;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pending(): number {
    return this.buf.length;
  }
}

// ---- request encoders (what libsanlock / python3-sanlock send) ----

/** Header + payload, with header.length = 32 + payload unless `length` overrides it (see §3.2). */
export function encodeRequest(cmd: number, fields: Partial<Omit<SmHeader, 'cmd'>>, payload: Buffer[] = []): Buffer {
  const body = Buffer.concat(payload);
  const h = makeHeader(cmd, { length: HEADER_SIZE + body.length, ...fields });
  return Buffer.concat([encodeHeader(h), body]);
}

// ---- reply encoders (daemon side) ----

export function encodeStdReply(req: SmHeader, result: number): Buffer {
  return encodeHeader(stdReply(req, result));
}

/**
 * The reply header alone, for replies whose payload the caller writes after it: data2 and
 * length = 32 + extraLen set on top of send_result's header (the daemon's generic form of the
 * encoders below).
 */
export function encodeReplyHeader(req: SmHeader, result: number, data2 = 0, extraLen = 0): Buffer {
  assert(extraLen >= 0, 'reply payload length');
  return encodeHeader({ ...stdReply(req, result), data2, length: HEADER_SIZE + extraLen });
}

/** INQUIRE: data2 = res_count, payload = NUL-terminated state string (omitted when null). */
export function encodeInquireReply(req: SmHeader, result: number, count: number, state: string | null): Buffer {
  const str = state === null ? Buffer.alloc(0) : Buffer.concat([Buffer.from(state, 'latin1'), Buffer.alloc(1)]);
  return Buffer.concat([encodeHeader({ ...stdReply(req, result), data2: count, length: HEADER_SIZE + str.length }), str]);
}

export function encodeGetLockspacesReply(req: SmHeader, result: number, list: SanlkLockspace[]): Buffer {
  const h = { ...stdReply(req, result), data2: list.length, length: HEADER_SIZE + list.length * LOCKSPACE_SIZE };
  return Buffer.concat([encodeHeader(h), ...list.map(encodeLockspace)]);
}

export function encodeGetHostsReply(req: SmHeader, result: number, hosts: SanlkHost[]): Buffer {
  const h = { ...stdReply(req, result), data2: hosts.length, length: HEADER_SIZE + hosts.length * HOST_SIZE };
  return Buffer.concat([encodeHeader(h), ...hosts.map(encodeHost)]);
}

/** READ_LOCKSPACE: data2 = io_timeout; the lockspace struct is always sent. */
export function encodeReadLockspaceReply(req: SmHeader, result: number, ioTimeout: number, ls: SanlkLockspace): Buffer {
  const h = { ...stdReply(req, result), data2: ioTimeout, length: HEADER_SIZE + LOCKSPACE_SIZE };
  return Buffer.concat([encodeHeader(h), encodeLockspace(ls)]);
}

/** READ_RESOURCE: the resource struct (no disks) is always sent. */
export function encodeReadResourceReply(req: SmHeader, result: number, res: SanlkResource): Buffer {
  const h = { ...stdReply(req, result), length: HEADER_SIZE + RESOURCE_SIZE };
  return Buffer.concat([encodeHeader(h), encodeResource(res, false)]);
}

export function encodeReadResourceOwnersReply(req: SmHeader, result: number, res: SanlkResource, hosts: SanlkHost[]): Buffer {
  const h = { ...stdReply(req, result), data2: hosts.length, length: HEADER_SIZE + RESOURCE_SIZE + hosts.length * HOST_SIZE };
  return Buffer.concat([encodeHeader(h), encodeResource(res, false), ...hosts.map(encodeHost)]);
}

export function encodeGetLvbReply(req: SmHeader, result: number, lvb: Buffer): Buffer {
  return Buffer.concat([encodeHeader({ ...stdReply(req, result), length: HEADER_SIZE + lvb.length }), lvb]);
}

/** rindex commands 36–39: header + sanlk_rentry (always). */
export function encodeRentryReply(req: SmHeader, result: number, re: SanlkRentry): Buffer {
  return Buffer.concat([encodeHeader({ ...stdReply(req, result), length: HEADER_SIZE + RENTRY_SIZE }), encodeRentry(re)]);
}

/** VERSION: a fresh header (seq, flags, data cleared), data2 = the emulated version. */
export function encodeVersionReply(version = VERSION_HEX): Buffer {
  return encodeHeader(makeHeader(Cmd.VERSION, { version: SM_PROTO, data2: version }));
}

/** LOG_DUMP: data = byte count, length left at 32, then the text bytes. */
export function encodeLogDumpReply(req: SmHeader, text: Buffer): Buffer {
  return Buffer.concat([encodeHeader({ ...stdReply(req, text.length), length: HEADER_SIZE }), text]);
}

/** First header of STATUS / HOST_STATUS / RENEWAL (length 32, data2 = io_timeout for RENEWAL). */
export function encodeStreamHeader(req: SmHeader, result: number, data2 = 0): Buffer {
  return encodeHeader({ ...stdReply(req, result), data2 });
}

/** One state record: 80-byte header, str (str_len = strlen+1, NUL included), then `bin` (L or R+disks). */
export function encodeStateRecord(st: Omit<SanlkStateHeader, 'strLen'>, str: string, bin?: Buffer): Buffer {
  const s = Buffer.concat([Buffer.from(str, 'latin1'), Buffer.alloc(1)]);
  // sanlock's daemon builds each text in a SANLK_STATE_MAXSTR buffer; the CLI reads no more
  assert(s.length < STATE_MAXSTR, 'state text too long');
  return Buffer.concat([encodeStateHeader({ ...st, strLen: s.length }), s, bin ?? Buffer.alloc(0)]);
}

/** SHUTDOWN_WAIT success: a fresh header with cmd 0, sent just before the daemon exits. */
export function encodeShutdownWaitDone(): Buffer {
  return encodeHeader(makeHeader(0));
}
