// sanlock's command-line grammar (spec/cli.md §1-2), shared by `direct`, `client` and `daemon`.
// Every quirk here was checked against the real 3.8.5 binary: C number parsing (atoi/atoll/
// strtoull), the 'M' suffix, escaped colons, and the order in which messages are printed.
import { MIB } from '../ondisk/geometry.js';

/** Every option letter the 3.8.5 parser knows (for all commands); `-D` is the only valueless one. */
export const SANLOCK_OPTION_LETTERS = 'abcdefghilmnoprstuwxzAFGHLOPQRSUZ';

export const SANLK_NAME_LEN = 48;
export const SANLK_PATH_LEN = 1024;
export const SANLK_MAX_RESOURCES = 8;
export const SANLK_MAX_DISKS = 4;
export const DEFAULT_IO_TIMEOUT = 10;

/** A command-line error: the lines sanlock prints (stdout) before exiting with `exitCode`. */
export class CliUsageError extends Error {
  readonly lines: string[];
  readonly exitCode: number;
  constructor(lines: string[], exitCode = 1) {
    super(lines.join('\n'));
    this.name = 'CliUsageError';
    this.lines = lines;
    this.exitCode = exitCode;
  }
}

// ---------------------------------------------------------------------------------------------
// C number parsing. Values are returned as JS numbers; every value sanlock takes from the
// command line (offsets, ids, generations) is far below 2^53 in practice.

function wrapSigned64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

/** C `atoll`: optional whitespace and sign, then decimal digits; anything else stops; no digits → 0. */
export function atoll(s: string): number {
  const m = /^[\t\n\v\f\r ]*([+-]?)(\d*)/.exec(s)!;
  if (!m[2]) return 0;
  const v = BigInt(m[2]);
  return wrapSigned64(m[1] === '-' ? -v : v);
}

/** C `atoi` (int: the low 32 bits of the value, sign-wrapped). */
export function atoi(s: string): number {
  const m = /^[\t\n\v\f\r ]*([+-]?)(\d*)/.exec(s)!;
  if (!m[2]) return 0;
  const v = BigInt(m[2]);
  return Number(BigInt.asIntN(32, m[1] === '-' ? -v : v));
}

/**
 * C `strtoull(s, NULL, 0)`: base from the prefix (0x hex, 0 octal, else decimal); a negative
 * value wraps modulo 2^64; overflow saturates at 2^64-1. Returned as a bigint (exact).
 */
export function strtoull0Big(s: string): bigint {
  const m = /^[\t\n\v\f\r ]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)?/.exec(s)!;
  const digits = m[2];
  if (!digits) return 0n;
  let v: bigint;
  if (/^0[xX]/.test(digits)) v = BigInt(digits);
  else if (digits.length > 1 && digits[0] === '0') v = BigInt(`0o${digits.slice(1)}`);
  else v = BigInt(digits);
  const max = (1n << 64n) - 1n;
  if (v > max) return max;
  return m[1] === '-' ? BigInt.asUintN(64, -v) : v;
}

/** strtoull(s, NULL, 0) as a number (exact below 2^53). */
export function strtoull0(s: string): number {
  return Number(strtoull0Big(s));
}

/** sscanf("%llu"): like strtoull base 10 but reports failure when no digits were found. */
export function scanU64(s: string): number | undefined {
  const m = /^[\t\n\v\f\r ]*([+-]?)(\d+)/.exec(s);
  if (!m) return undefined;
  const v = BigInt(m[2]!);
  return Number(m[1] === '-' ? BigInt.asUintN(64, -v) : v);
}

/** "<digits>M" → digits × 1 MiB (atoll before the first 'M'), otherwise atoll. */
export function atollWithM(s: string): number {
  const m = s.indexOf('M');
  if (m >= 0) return atoll(s.slice(0, m)) * MIB;
  return atoll(s);
}

// ---------------------------------------------------------------------------------------------
// Generic option scan.

export interface OptionOccurrence {
  letter: string;
  value: string;
}

export interface ParsedOptions {
  /** every `-X VALUE` in order (`-D` not included) */
  occurrences: OptionOccurrence[];
  /** `-D` was given */
  debug: boolean;
  /** argv after `-c VALUE`: [VALUE, ...rest] (only when -c was seen) */
  command: string[] | undefined;
  /** last value given for a letter */
  get(letter: string): string | undefined;
  /** all values given for a letter, in order */
  all(letter: string): string[];
}

/**
 * Scans `-X VALUE` pairs like sanlock's read_command_line. Throws CliUsageError with sanlock's
 * messages for a malformed word, a missing value or an unknown letter. `-c` ends the scan: its
 * value and everything after it become `command`.
 */
export function parseOptions(argv: readonly string[], letters: string = SANLOCK_OPTION_LETTERS): ParsedOptions {
  const occurrences: OptionOccurrence[] = [];
  let debug = false;
  let command: string[] | undefined;
  let i = 0;
  while (i < argv.length) {
    const p = argv[i]!;
    // sanlock checks strlen(p) != 2 in bytes; a non-ASCII letter is more than one byte.
    if (p[0] !== '-' || Buffer.byteLength(p) !== 2) {
      throw new CliUsageError([`unknown option ${p}`, 'space required before option value']);
    }
    const letter = p[1]!;
    i++;
    if (letter === 'D') {
      debug = true;
      continue;
    }
    if (i >= argv.length) throw new CliUsageError([`option '${letter}' requires arg`]);
    const value = argv[i]!;
    if (!letters.includes(letter)) throw new CliUsageError([`unknown option: ${letter}`]);
    if (letter === 'c') {
      command = argv.slice(i);
      break;
    }
    occurrences.push({ letter, value });
    i++;
  }
  return {
    occurrences,
    debug,
    command,
    get(l: string) {
      for (let k = occurrences.length - 1; k >= 0; k--) if (occurrences[k]!.letter === l) return occurrences[k]!.value;
      return undefined;
    },
    all(l: string) {
      return occurrences.filter((o) => o.letter === l).map((o) => o.value);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Argument strings.

/** Indexes of the ':' characters not escaped by a preceding backslash (the escaped char is skipped). */
function unescapedColons(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') {
      i++;
      continue;
    }
    if (s[i] === ':') out.push(i);
  }
  return out;
}

/** Backslashes removed (sanlock's copy_path_in: every backslash is dropped, none is kept). */
export function unescapePath(s: string): string {
  return s.replace(/\\/g, '');
}

/** Path as `status`, `inquire` and `read -r` print it: ':' and ' ' escaped with '\'. */
export function escapePath(path: string): string {
  return path.replace(/[: ]/g, (c) => `\\${c}`);
}

/** strncpy into char[48] and read back as %s: names longer than 48 are cut. */
function cName(s: string): string {
  return Buffer.from(s, 'latin1').subarray(0, SANLK_NAME_LEN).toString('latin1');
}

export interface LockspaceArg {
  name: string;
  hostId: number;
  path: string;
  offset: number;
}

/**
 * LOCKSPACE `name:host_id:path:offset`, split at the first three unescaped colons; missing parts
 * are 0 / empty; the name is cut at 48 bytes (sanlock accepts longer ones silently).
 */
export function parseLockspace(input: string): LockspaceArg {
  const str = expandLockspaceM(input);
  const c = unescapedColons(str);
  const end = (k: number) => (c[k] === undefined ? str.length : c[k]!);
  const name = str.slice(0, end(0));
  const hostId = c[0] === undefined ? 0 : atoll(str.slice(c[0] + 1, end(1)));
  const path = c[1] === undefined ? '' : unescapePath(str.slice(c[1] + 1, end(2)));
  // Everything after the third colon is the offset field (atoll stops at a fourth colon).
  const offset = c[2] === undefined ? 0 : atoll(str.slice(c[2] + 1));
  return { name: cName(name), hostId, path, offset };
}

/** Positions of every ':' (escapes ignored), as 3.8.5's 'M' pre-pass sees them. */
function rawColons(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) if (s[i] === ':') out.push(i);
  return out;
}

/**
 * 3.8.5's 'M' pre-pass for LOCKSPACE: when the text after the third ':' (counting escaped ones
 * too) contains 'M', the string is cut there and atoll(text) MiB is appended in decimal. With
 * an escaped colon in the path this mangles it exactly as sanlock does (`a\:b:2M` → path `a:0`).
 */
function expandLockspaceM(str: string): string {
  const c3 = rawColons(str)[2];
  if (c3 === undefined) return str;
  const rest = str.slice(c3 + 1);
  if (!rest.includes('M')) return str;
  return `${str.slice(0, c3 + 1)}${BigInt(atoll(rest)) * BigInt(MIB)}`;
}

/**
 * The same pre-pass for RESOURCE: only the field after the third ':' (up to the next ':') is
 * replaced by atoll(text after the third ':') MiB; the rest of the string is kept.
 */
function expandResourceM(str: string): string {
  const colons = rawColons(str);
  const c3 = colons[2];
  if (c3 === undefined) return str;
  const rest = str.slice(c3 + 1);
  if (!rest.includes('M')) return str;
  const fieldEnd = colons[3] ?? str.length;
  return `${str.slice(0, c3 + 1)}${BigInt(atoll(rest)) * BigInt(MIB)}${str.slice(fieldEnd)}`;
}

export interface ResourceDiskArg {
  path: string;
  offset: number;
}

export interface ResourceArg {
  lockspaceName: string;
  name: string;
  disks: ResourceDiskArg[];
  /** SANLK_RES_SHARED (`:SH…` suffix) */
  shared: boolean;
  /** SANLK_RES_LVER (numeric suffix) */
  lverSet: boolean;
  lver: number;
}

export type ResourceParse = { ok: true; res: ResourceArg } | { ok: false; code: number };

/**
 * RESOURCE `ls:res:path:off[:path:off…][:lver|:SH]` with sanlock_str_to_res's rules: colon count
 * (escapes skipped) decides num_disks and whether a last lver/SH field exists; error codes are
 * -6 (string shorter than 3), -1 (0 or 2 colons, bad field), -2 (more than 4 disks).
 */
export function parseResource(input: string): ResourceParse {
  const str = expandResourceM(input);
  const bytes = Buffer.from(str, 'latin1');
  if (bytes.length < 3) return { ok: false, code: -6 };
  const colons = unescapedColons(str).length;
  if (colons === 0 || colons === 2) return { ok: false, code: -1 };
  const numDisks = Math.floor((colons - 1) / 2);
  const haveLver = (colons - 1) % 2 === 1;
  if (numDisks > SANLK_MAX_DISKS) return { ok: false, code: -2 };

  const subs: string[] = [];
  let sub = '';
  for (let i = 0; i <= str.length; i++) {
    const ch = str[i];
    if (ch === '\\') {
      if (i === str.length - 1) return { ok: false, code: -1 };
      i++;
      sub += str[i];
      continue;
    }
    if (i < str.length && ch !== ':') {
      if (sub.length >= SANLK_PATH_LEN) return { ok: false, code: -1 };
      sub += ch;
      continue;
    }
    const k = subs.length;
    if (k < 2 && Buffer.byteLength(sub, 'latin1') > SANLK_NAME_LEN) return { ok: false, code: -1 };
    if (k >= 2 && (sub.length > SANLK_PATH_LEN - 1 || sub.length < 1)) return { ok: false, code: -1 };
    subs.push(sub);
    sub = '';
  }

  const res: ResourceArg = { lockspaceName: subs[0] ?? '', name: subs[1] ?? '', disks: [], shared: false, lverSet: false, lver: 0 };
  let d = 0;
  for (let k = 2; k < subs.length; k++) {
    const s = subs[k]!;
    if (k % 2 === 0) {
      if (haveLver && d === numDisks) {
        if (s.startsWith('SH')) res.shared = true;
        else {
          res.lverSet = true;
          res.lver = strtoull0(s);
        }
      } else {
        res.disks.push({ path: s, offset: 0 });
      }
    } else {
      const v = scanU64(s);
      if (v === undefined) return { ok: false, code: -1 };
      res.disks[d]!.offset = v;
      d++;
    }
  }
  return { ok: true, res };
}

/** What sanlock prints for a rejected -r (log_tool adds its own newline: a blank line follows). */
export function resourceParseErrorLines(code: number): string[] {
  return [`resource arg parse error ${code}`, ''];
}

export interface RindexArg {
  lockspaceName: string;
  path: string;
  offset: number;
}

/** RINDEX `ls:path:offset` (offset may use M); missing parts are empty / 0. */
export function parseRindex(str: string): RindexArg {
  const c = unescapedColons(str);
  const end = (k: number) => (c[k] === undefined ? str.length : c[k]!);
  const lockspaceName = cName(str.slice(0, end(0)));
  const path = c[0] === undefined ? '' : unescapePath(str.slice(c[0] + 1, end(1)));
  const offset = c[1] === undefined ? 0 : atollWithM(str.slice(c[1] + 1));
  return { lockspaceName, path, offset };
}

export interface RentryArg {
  name: string;
  offset: number;
}

/** rentry `name[:offset]` or `:offset` (offset may use M). */
export function parseRentry(str: string): RentryArg {
  const c = str.indexOf(':');
  if (c < 0) return { name: cName(str), offset: 0 };
  return { name: cName(str.slice(0, c)), offset: atollWithM(str.slice(c + 1)) };
}

export interface DumpTarget {
  path: string;
  offset: number;
  /** 0 = until the first unrecognised area */
  size: number;
}

/** dump target `path[:offset[:size]]` (escaped colons kept in the path, then unescaped). */
export function parseDumpTarget(str: string): DumpTarget {
  const c = unescapedColons(str);
  if (c.length === 0) return { path: unescapePath(str), offset: 0, size: 0 };
  const path = unescapePath(str.slice(0, c[0]));
  const offStr = str.slice(c[0]! + 1, c[1] === undefined ? str.length : c[1]);
  const offset = atollWithM(offStr);
  const size = c[1] === undefined ? 0 : atollWithM(str.slice(c[1] + 1));
  return { path, offset, size };
}

export const DUMP_OFFSET_WARNING = 'WARNING: dump offset should be a multiple of 1048576 bytes.';

// ---------------------------------------------------------------------------------------------
// -Z / -A

/** -A value: 1M/2M/4M/8M → bytes; anything else → 0 (treated as "not given", as 3.8.5 does). */
export function parseAlignArg(v: string): number {
  switch (v) {
    case '1M': return 1 * MIB;
    case '2M': return 2 * MIB;
    case '4M': return 4 * MIB;
    case '8M': return 8 * MIB;
    default: return 0;
  }
}

const validPairs = new Set(['512/1048576', '4096/1048576', '4096/2097152', '4096/4194304', '4096/8388608']);

/** null when the pair is acceptable (neither, -Z alone, or a valid pair), else sanlock's two lines. */
export function validateSizes(sectorSize: number, alignSize: number): string[] | null {
  if (!alignSize) return null;
  if (validPairs.has(`${sectorSize}/${alignSize}`)) return null;
  return [
    `Invalid sector_size/align_size combination (${sectorSize}/${alignSize})`,
    'Use one of: 512/1M, 4096/1M, 4096/2M, 4096/4M, 4096/8M.',
  ];
}

// ---------------------------------------------------------------------------------------------
// Interpreting the options the way read_command_line stores them in `com`.

export type CommandFamily = 'daemon' | 'client' | 'direct';

export interface SanlockOptions {
  debug: boolean;
  lockspace: LockspaceArg | undefined;
  /** accepted -r arguments (at most 8) */
  resources: ResourceArg[];
  rindex: RindexArg | undefined;
  /** -e as a rindex entry */
  rentry: RentryArg | undefined;
  /** -e as a host name (strncpy 48) */
  hostName: string | undefined;
  /** -e as an event number (strtoull base 0) */
  event: bigint;
  /** -o as io timeout (atoi; 0 → 10; default 10) */
  ioTimeout: number;
  /** -o's first character, for `client status` sorting */
  sortArg: string | undefined;
  sectorSize: number;
  alignSize: number;
  /** -z given (any value: sanlock sets clear_arg = 1) */
  clear: boolean;
  numHosts: number;
  maxHosts: number;
  pid: number;
  forceMode: number;
  hostId: bigint;
  generation: bigint;
  data: bigint;
  all: number;
  aio: number;
  wait: number;
  getHosts: number;
  orphan: number | undefined;
  persistent: number;
  used: number | undefined;
  command: string[] | undefined;
  /** raw values for letters with daemon meanings: last value per letter */
  raw: Record<string, string>;
  /** lines sanlock prints while parsing (rejected -r), in order */
  messages: string[];
}

/**
 * Full parse of the words after `<family> <action>` (dump's path word already removed).
 * Throws CliUsageError for grammar errors and for a bad -Z/-A pair.
 */
export function parseSanlockOptions(argv: readonly string[], family: CommandFamily, action: string): SanlockOptions {
  const parsed = parseOptions(argv);
  const o: SanlockOptions = {
    debug: parsed.debug, lockspace: undefined, resources: [], rindex: undefined, rentry: undefined,
    hostName: undefined, event: 0n, ioTimeout: DEFAULT_IO_TIMEOUT, sortArg: undefined, sectorSize: 0,
    alignSize: 0, clear: false, numHosts: 0, maxHosts: 0, pid: -1, forceMode: 0, hostId: 0n, generation: 0n,
    data: 0n, all: 0, aio: 1, wait: 0, getHosts: 0, orphan: undefined, persistent: 0, used: undefined,
    command: parsed.command, raw: {}, messages: [],
  };
  for (const { letter, value } of parsed.occurrences) {
    o.raw[letter] = value;
    switch (letter) {
      case 's': o.lockspace = parseLockspace(value); break;
      case 'r': {
        if (o.resources.length >= SANLK_MAX_RESOURCES) {
          o.messages.push(`resource args over max ${SANLK_MAX_RESOURCES}`);
          break;
        }
        const r = parseResource(value);
        if (r.ok) o.resources.push(r.res);
        else o.messages.push(...resourceParseErrorLines(r.code));
        break;
      }
      case 'x': o.rindex = parseRindex(value); break;
      case 'e':
        o.hostName = cName(value);
        o.event = strtoull0Big(value);
        o.rentry = parseRentry(value);
        break;
      case 'o':
        if (action === 'status') o.sortArg = value[0] ?? '';
        else {
          o.ioTimeout = atoi(value);
          if (!o.ioTimeout) o.ioTimeout = DEFAULT_IO_TIMEOUT;
        }
        break;
      case 'Z': o.sectorSize = atoi(value); break;
      case 'A': o.alignSize = parseAlignArg(value); break;
      case 'z': o.clear = true; break;
      case 'n': o.numHosts = atoi(value); break;
      case 'm': o.maxHosts = atoi(value); break;
      case 'p': o.pid = atoi(value); break;
      case 'f': o.forceMode = Number(BigInt.asUintN(32, strtoull0Big(value))); break;
      case 'i': o.hostId = strtoull0Big(value); break;
      case 'g': if (family !== 'daemon') o.generation = strtoull0Big(value); break;
      case 'd': o.data = strtoull0Big(value); break;
      case 'a': o.all = atoi(value); o.aio = atoi(value) ? 1 : 0; break;
      case 'w': o.wait = atoi(value); break;
      case 'h': if (action === 'gets' || action === 'read') o.getHosts = atoi(value); break;
      case 'O': o.orphan = atoi(value); break;
      case 'P': o.persistent = atoi(value); break;
      case 'u': o.used = atoi(value); break;
      default: break; // daemon-only letters: read from `raw`
    }
  }
  const bad = validateSizes(o.sectorSize, o.alignSize);
  if (bad) throw new CliUsageError([...o.messages, ...bad]);
  return o;
}
