// Resource/lockspace strings of sanlock (spec/protocol.md §6, cli.md §2): the inquire state
// string, `-r`/`-s` arguments, and the path escaping used when printing them. Pure functions,
// never throw; failures carry sanlock's own return values.
//
// Exports:
//   pathExport(path)   – `:` and space get a `\` prefix; an existing `\x` pair is kept as is
//   pathImport(str)    – backslashes removed (copy_path_in)
//   resToStr(res) → Decoded<string>            (sanlock_res_to_str: …:<lver> or …:SH)
//   strToRes(str) → Decoded<SanlkResource>     (sanlock_str_to_res; error code -1/-2/-ENXIO like C)
//   argsToState(resources) → Decoded<string>   (space-joined; -EINVAL if a string has a space)
//   stateToArgs(state) → Decoded<SanlkResource[]> (sanlock_state_to_args)
//   strToLockspace(str) → SanlkLockspace       (sanlock_str_to_lockspace: name:host_id:path:offset, atoll)
//   atoll(str), strtoull0(str)                  C number parsing helpers (garbage → 0)
import { Errno } from '../codes.js';
import { type Decoded, fail, ok } from './header.js';
import { ResFlag } from './commands.js';
import { MAX_DISKS, NAME_LEN, PATH_LEN, type SanlkLockspace, type SanlkResource, emptyDisk, emptyLockspace } from './structs.js';

/** SANLK_MAX_RES_STR */
export const MAX_RES_STR = 4096;

export function pathExport(path: string): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '\\') {
      out += c;
      if (i + 1 < path.length) out += path[++i];
      continue;
    }
    if (c === ':' || c === ' ') out += '\\';
    out += c;
  }
  return out;
}

export function pathImport(str: string): string {
  let out = '';
  for (let i = 0; i < str.length; i++) {
    const c = str[i]!;
    if (c === '\\') {
      if (i + 1 < str.length) out += str[++i];
      continue;
    }
    out += c;
  }
  return out;
}

/** C atoll: optional whitespace and sign, then decimal digits; anything else stops (garbage → 0). */
export function atoll(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d*)/.exec(s);
  if (!m?.[2]) return 0;
  const v = Number(m[2]);
  return m[1] === '-' ? -v : v;
}

/** C strtoull(s, NULL, 0): decimal, 0x hex or 0 octal prefix; garbage → 0; negative wraps like C is not modelled. */
export function strtoull0(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)?/.exec(s);
  if (!m?.[2]) return 0;
  const t = m[2];
  let v: number;
  if (/^0[xX]/.test(t)) v = Number.parseInt(t.slice(2), 16);
  else if (t.length > 1 && t[0] === '0') v = Number.parseInt(t.slice(1), 8);
  else v = Number(t);
  return m[1] === '-' ? -v : v;
}

export function resToStr(res: SanlkResource): Decoded<string> {
  let s = `${res.lockspaceName}:${res.name}`;
  const n = Math.min(res.numDisks, res.disks.length);
  for (let d = 0; d < n; d++) s += `:${pathExport(res.disks[d]!.path)}:${res.disks[d]!.offset}`;
  s += res.flags & ResFlag.SHARED ? ':SH' : `:${res.lver}`;
  if (s.length > MAX_RES_STR) return fail(-Errno.EINVAL, 'resource string too long');
  return ok(s, s.length);
}

export function strToRes(str: string): Decoded<SanlkResource> {
  if (str.length < 3) return fail(-6 /* -ENXIO */, 'resource string too short');
  let colons = 0;
  for (let i = 0; i < str.length; i++) {
    if (str[i] === '\\') {
      i++;
      continue;
    }
    if (str[i] === ':') colons++;
  }
  if (colons === 0 || colons === 2) return fail(-1, `resource string "${str}": ${colons} colons`);
  const numDisks = Math.floor((colons - 1) / 2);
  const haveLver = (colons - 1) % 2 === 1;
  if (numDisks > MAX_DISKS) return fail(-2, `resource string "${str}": ${numDisks} disks`);
  const res: SanlkResource = {
    lockspaceName: '',
    name: '',
    lver: 0,
    data64: 0,
    data32: 0,
    unused: 0,
    flags: 0,
    numDisks,
    disks: Array.from({ length: numDisks }, () => emptyDisk()),
  };
  let d = 0;
  let subCount = 0;
  let sub = '';
  const len = str.length;
  for (let i = 0; i < len + 1; i++) {
    if (i < len && str[i] === '\\') {
      if (i === len - 1) return fail(-1, 'trailing backslash');
      i++;
      sub += str[i];
      continue;
    }
    if (i < len && str[i] !== ':') {
      if (sub.length >= PATH_LEN) return fail(-1, 'field too long');
      sub += str[i];
      continue;
    }
    if (subCount < 2 && sub.length > NAME_LEN) return fail(-1, 'name too long');
    if (subCount >= 2 && (sub.length > PATH_LEN - 1 || sub.length < 1)) return fail(-1, 'bad path/offset field');
    if (subCount === 0) res.lockspaceName = sub;
    else if (subCount === 1) res.name = sub;
    else if (subCount % 2 === 0) {
      if (haveLver && d === numDisks) {
        if (sub.startsWith('SH')) res.flags |= ResFlag.SHARED;
        else {
          res.flags |= ResFlag.LVER;
          res.lver = strtoull0(sub);
        }
      } else res.disks[d]!.path = sub;
    } else {
      // sscanf("%llu") needs at least one digit after optional space/sign
      const m = /^[ \t\n\v\f\r]*[+-]?(\d+)/.exec(sub);
      if (!m) return fail(-1, `bad offset "${sub}"`);
      res.disks[d]!.offset = Number(m[1]);
      d++;
    }
    subCount++;
    sub = '';
  }
  return ok(res, str.length);
}

export function argsToState(resources: SanlkResource[]): Decoded<string> {
  const parts: string[] = [];
  for (const r of resources) {
    const s = resToStr(r);
    if (!s.ok) return s;
    if (s.value.length > MAX_RES_STR - 1) return fail(-Errno.EINVAL, 'resource string too long');
    if (s.value.includes(' ')) return fail(-Errno.EINVAL, 'space in resource string');
    parts.push(s.value);
  }
  const state = parts.join(' ');
  return ok(state, state.length);
}

export function stateToArgs(state: string): Decoded<SanlkResource[]> {
  const out: SanlkResource[] = [];
  for (const part of state.split(' ')) {
    const r = strToRes(part);
    if (!r.ok) return r;
    out.push(r.value);
  }
  return ok(out, state.length);
}

/** `name:host_id:path:offset`, split at the first three unescaped colons; missing parts stay 0/empty. */
export function strToLockspace(str: string): SanlkLockspace {
  const cuts: number[] = [];
  for (let i = 0; i < str.length && cuts.length < 3; i++) {
    if (str[i] === '\\') {
      i++;
      continue;
    }
    if (str[i] === ':') cuts.push(i);
  }
  const ls = emptyLockspace();
  const fields: string[] = [];
  let start = 0;
  for (const c of cuts) {
    fields.push(str.slice(start, c));
    start = c + 1;
  }
  fields.push(str.slice(start));
  ls.name = fields[0]!.slice(0, NAME_LEN);
  if (fields.length > 1) ls.hostId = atoll(fields[1]!);
  if (fields.length > 2) ls.hostIdDisk.path = pathImport(fields[2]!).slice(0, PATH_LEN - 1);
  if (fields.length > 3) ls.hostIdDisk.offset = atoll(fields[3]!);
  return ls;
}
