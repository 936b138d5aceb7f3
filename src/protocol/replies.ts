// Client-side decoding of daemon replies (spec/protocol.md §4.3 "reply" column, §9 streams).
// Pure functions over complete byte buffers; never throw.
//
// Exports:
//   interface StateRecord { state: SanlkStateHeader; str: string; lockspace?; resource? }
//   decodeStateRecord(buf, off) → Decoded<StateRecord>   (80-byte header, str_len text, binary part)
//   decodeStateStream(buf, off?) → { records, complete }  (stops at the first incomplete record,
//                                                         as the CLI does when recv comes up short)
//   interface Reply; decodeReply(cmd, buf) → Decoded<Reply>   (header + the command's payload)
//   replyPayloadSize(cmd, header, afterHeader) → number | 'eof' | null   (bytes to read after the
//                                                         header; 'eof' = read until close)
import { Errno } from '../codes.js';
import { type Decoded, HEADER_SIZE, type SmHeader, decodeHeader, fail, ok, truncated } from './header.js';
import { COMMANDS, Cmd } from './commands.js';
import {
  DISK_SIZE,
  HOST_SIZE,
  LOCKSPACE_SIZE,
  RENTRY_SIZE,
  RESOURCE_SIZE,
  STATE_SIZE,
  type SanlkHost,
  type SanlkLockspace,
  type SanlkRentry,
  type SanlkResource,
  type SanlkStateHeader,
  StateType,
  decodeDisk,
  decodeHost,
  decodeLockspace,
  decodeRentry,
  decodeResource,
  decodeStateHeader,
} from './structs.js';

export interface StateRecord {
  state: SanlkStateHeader;
  /** The text without its NUL (str_len − 1 bytes, or up to the first NUL). */
  str: string;
  lockspace?: SanlkLockspace;
  resource?: SanlkResource;
}

export function decodeStateRecord(buf: Buffer, off = 0): Decoded<StateRecord> {
  const sh = decodeStateHeader(buf, off);
  if (!sh.ok) return sh;
  const st = sh.value;
  let pos = off + STATE_SIZE;
  if (buf.length - pos < st.strLen) return truncated('sanlk_state str', st.strLen, buf.length - pos);
  const raw = buf.subarray(pos, pos + st.strLen);
  const nul = raw.indexOf(0);
  const str = raw.toString('latin1', 0, nul === -1 ? raw.length : nul);
  pos += st.strLen;
  const rec: StateRecord = { state: st, str };
  if (st.type === StateType.LOCKSPACE) {
    const ls = decodeLockspace(buf, pos);
    if (!ls.ok) return ls;
    rec.lockspace = ls.value;
    pos += LOCKSPACE_SIZE;
  } else if (st.type === StateType.RESOURCE) {
    const r = decodeResource(buf, pos, false);
    if (!r.ok) return r;
    pos += RESOURCE_SIZE;
    // The CLI trusts num_disks here; a garbage count larger than MAX_DISKS is refused instead.
    if (r.value.numDisks > 4) return fail(-Errno.ERANGE, `state resource num_disks ${r.value.numDisks}`);
    for (let i = 0; i < r.value.numDisks; i++) {
      const d = decodeDisk(buf, pos);
      if (!d.ok) return d;
      r.value.disks.push(d.value);
      pos += DISK_SIZE;
    }
    rec.resource = r.value;
  }
  return ok(rec, pos - off);
}

export function decodeStateStream(buf: Buffer, off = 0): { records: StateRecord[]; complete: boolean } {
  const records: StateRecord[] = [];
  let pos = off;
  while (pos < buf.length) {
    const r = decodeStateRecord(buf, pos);
    if (!r.ok) return { records, complete: false };
    records.push(r.value);
    pos += r.size;
  }
  return { records, complete: true };
}

export interface Reply {
  header: SmHeader;
  /** header.data: 0, a positive count (log_dump, align, release -O) or a negative code. */
  result: number;
  state?: string | null;
  count?: number;
  lockspaces?: SanlkLockspace[];
  hosts?: SanlkHost[];
  lockspace?: SanlkLockspace;
  resource?: SanlkResource;
  lvb?: Buffer;
  rentry?: SanlkRentry;
  records?: StateRecord[];
  log?: Buffer;
  ioTimeout?: number;
  version?: number;
}

/**
 * How many bytes follow a reply header for `cmd` (from the header the daemon sent); 'eof' for
 * streams that end when the daemon closes; null when the command gets no reply at all.
 */
export function replyPayloadSize(cmd: number, h: SmHeader): number | 'eof' | null {
  const inf = COMMANDS.get(cmd);
  if (!inf) return 0;
  switch (inf.reply) {
    case 'none':
      return null;
    case 'std':
    case 'version':
    case 'shutdown_wait':
      return 0;
    case 'inquire':
    case 'lvb':
      return Math.max(0, h.length - HEADER_SIZE);
    case 'lockspaces':
      return Math.max(0, h.data2) * LOCKSPACE_SIZE;
    case 'hosts':
      return Math.max(0, h.data2) * HOST_SIZE;
    case 'read_lockspace':
      return LOCKSPACE_SIZE;
    case 'read_resource':
      return RESOURCE_SIZE;
    case 'owners':
      return RESOURCE_SIZE + Math.max(0, h.data2) * HOST_SIZE;
    case 'rentry':
      return RENTRY_SIZE;
    case 'log_dump':
      return Math.max(0, h.data);
    case 'stream':
      return 'eof';
  }
}

/** Decodes a whole reply for `cmd` (header + payload; for streams everything up to EOF). */
export function decodeReply(cmd: number, buf: Buffer): Decoded<Reply> {
  const hd = decodeHeader(buf, 0);
  if (!hd.ok) return hd;
  const h = hd.value;
  const inf = COMMANDS.get(cmd);
  if (!inf) return fail(-Errno.EINVAL, `cmd ${cmd} unknown`);
  const p = buf.subarray(HEADER_SIZE);
  const rep: Reply = { header: h, result: h.data };
  const size = replyPayloadSize(cmd, h);
  if (size !== null && size !== 'eof' && p.length < size) return truncated(`${inf.name} reply`, HEADER_SIZE + size, buf.length);
  switch (inf.reply) {
    case 'none':
    case 'std':
      break;
    case 'version':
      rep.version = h.data2 >>> 0;
      break;
    case 'shutdown_wait':
      break;
    case 'inquire': {
      rep.count = h.data2;
      if (h.length <= HEADER_SIZE) rep.state = null;
      else {
        const s = p.subarray(0, h.length - HEADER_SIZE);
        const nul = s.indexOf(0);
        rep.state = s.toString('latin1', 0, nul === -1 ? s.length : nul);
      }
      break;
    }
    case 'lockspaces':
    case 'hosts': {
      rep.count = h.data2;
      const list: Array<SanlkLockspace | SanlkHost> = [];
      const step = inf.reply === 'lockspaces' ? LOCKSPACE_SIZE : HOST_SIZE;
      for (let i = 0; i < Math.max(0, h.data2); i++) {
        const d = inf.reply === 'lockspaces' ? decodeLockspace(p, i * step) : decodeHost(p, i * step);
        if (!d.ok) return d;
        list.push(d.value);
      }
      if (inf.reply === 'lockspaces') rep.lockspaces = list as SanlkLockspace[];
      else rep.hosts = list as SanlkHost[];
      break;
    }
    case 'read_lockspace': {
      const ls = decodeLockspace(p, 0);
      if (!ls.ok) return ls;
      rep.lockspace = ls.value;
      rep.ioTimeout = h.data2;
      break;
    }
    case 'read_resource':
    case 'owners': {
      const r = decodeResource(p, 0, false);
      if (!r.ok) return r;
      rep.resource = r.value;
      if (inf.reply === 'owners') {
        rep.count = h.data2;
        rep.hosts = [];
        for (let i = 0; i < Math.max(0, h.data2); i++) {
          const d = decodeHost(p, RESOURCE_SIZE + i * HOST_SIZE);
          if (!d.ok) return d;
          rep.hosts.push(d.value);
        }
      }
      break;
    }
    case 'lvb':
      rep.lvb = Buffer.from(p.subarray(0, Math.max(0, h.length - HEADER_SIZE)));
      break;
    case 'rentry': {
      const n = decodeRentry(p, 0);
      if (!n.ok) return n;
      rep.rentry = n.value;
      break;
    }
    case 'log_dump':
      rep.log = Buffer.from(p.subarray(0, Math.max(0, h.data)));
      break;
    case 'stream': {
      rep.records = decodeStateStream(p).records;
      if (cmd === Cmd.RENEWAL) rep.ioTimeout = h.data2;
      break;
    }
  }
  return ok(rep, buf.length);
}
