// Text of `sanlock client status` and `client host_status` (spec/cli.md §4.2–4.3): one line per
// state record, `-D` adds the record's key=value text one per line, `-o p|s` regroups.
import type { StateRecord } from '../protocol/replies.js';
import { pathExport } from '../protocol/state-strings.js';
import { ResFlag } from '../protocol/commands.js';
import { StateType } from '../protocol/structs.js';

/** sanlock's print_debug: the text split at every space, each piece indented 4 (last one even if empty). */
export function debugLines(r: StateRecord): string {
  if (!r.state.strLen) return '';
  return r.str
    .split(' ')
    .map((p) => `    ${p}\n`)
    .join('');
}

function listSuffix(r: StateRecord): string {
  if (r.str.includes('list=add')) return ' ADD';
  if (r.str.includes('list=rem')) return ' REM';
  if (r.state.type === StateType.RESOURCE && r.str.includes('list=orphan')) return ' ORPHAN';
  return '';
}

const u32 = (v: number) => v >>> 0;

/** One record as `client status` prints it (HOST records are printed only by host_status). */
export function statusRecordText(r: StateRecord, debug: boolean): string {
  let line: string;
  switch (r.state.type) {
    case StateType.DAEMON:
      line = `daemon ${r.state.name}`;
      break;
    case StateType.CLIENT:
      line = `p ${r.state.data32} ${r.state.name}`;
      break;
    case StateType.LOCKSPACE: {
      const ls = r.lockspace;
      line = ls ? `s ${ls.name}:${ls.hostId}:${pathExport(ls.hostIdDisk.path)}:${ls.hostIdDisk.offset}${listSuffix(r)}` : `s ${r.state.name}`;
      break;
    }
    case StateType.RESOURCE: {
      const res = r.resource;
      if (!res) return '';
      line = `r ${res.lockspaceName}:${res.name}`;
      for (const d of res.disks) line += `:${pathExport(d.path)}:${d.offset}`;
      line += res.flags & ResFlag.SHARED ? `:SH p ${u32(r.state.data32)}` : `:${r.state.data64} p ${u32(r.state.data32)}`;
      line += listSuffix(r);
      break;
    }
    default:
      return '';
  }
  return `${line}\n${debug ? debugLines(r) : ''}`;
}

export const MAX_SORT_ENTRIES = 1024;

/** The whole `client status` text for the records received, sorted like `-o p` / `-o s`. */
export function formatStatus(records: StateRecord[], debug: boolean, sortArg?: string): string {
  if (sortArg !== 'p' && sortArg !== 's') return records.map((r) => statusRecordText(r, debug)).join('');
  if (records.length > MAX_SORT_ENTRIES) return `cannot sort over ${MAX_SORT_ENTRIES}\n`;
  const left: Array<StateRecord | null> = [...records];
  let out = '';
  const emit = (i: number) => {
    out += statusRecordText(left[i]!, debug);
    left[i] = null;
  };
  const printType = (type: number) => {
    for (let i = 0; i < left.length; i++) if (left[i] && (!type || left[i]!.state.type === type)) emit(i);
  };
  const printP = (p: number) => {
    for (let i = 0; i < left.length; i++) if (left[i]?.state.type === StateType.CLIENT && left[i]!.state.data32 === p) emit(i);
  };
  const printR = (p: number, s: string | null) => {
    for (let i = 0; i < left.length; i++) {
      const r = left[i];
      if (!r || r.state.type !== StateType.RESOURCE) continue;
      if ((p && r.state.data32 === p) || (s !== null && r.resource && r.resource.lockspaceName.slice(0, 48) === s.slice(0, 48))) emit(i);
    }
  };
  const findType = (type: number) => left.findIndex((r) => r?.state.type === type);
  printType(StateType.DAEMON);
  printP(-1);
  if (sortArg === 'p') {
    printType(StateType.LOCKSPACE);
    for (let i = findType(StateType.CLIENT); i >= 0; i = findType(StateType.CLIENT)) {
      const pid = left[i]!.state.data32;
      emit(i);
      printR(pid, null);
    }
  } else {
    printType(StateType.CLIENT);
    for (let i = findType(StateType.LOCKSPACE); i >= 0; i = findType(StateType.LOCKSPACE)) {
      const name = left[i]!.state.name;
      emit(i);
      printR(0, name);
    }
  }
  if (left.some((r) => r !== null)) {
    out += '-\n';
    printType(0);
  }
  return out;
}

/** `client host_status -s LS`: `<host_id> timestamp <ts>` per HOST record, -D adds the key=value lines. */
export function formatHostStatus(records: StateRecord[], debug: boolean): string {
  let out = '';
  for (const r of records) {
    if (r.state.type !== StateType.HOST) continue;
    out += `${u32(r.state.data32)} timestamp ${r.state.data64}\n`;
    if (debug) out += debugLines(r);
  }
  return out;
}
