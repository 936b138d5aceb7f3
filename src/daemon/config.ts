// Daemon settings exactly as sanlock 3.8.5 takes them: /etc/sanlock/sanlock.conf first
// (daemon.md §2.1), then argv (cli.md §3), argv winning.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { Cmd, cmdStrs as cmdNames } from '../protocol/commands.js';
import { metricsAddressProblem } from './metrics/address.js';

export const SANLOCK_CONF = '/etc/sanlock/sanlock.conf';
export const DEFAULT_RUN_DIR = '/run/sanlock';

export interface DaemonConfig {
  foreground: boolean; // -D
  quietFail: number; // -Q
  debugRenew: number; // -R
  renewalHistorySize: number; // -H
  logfilePriority: number; // -L
  logfileUseUtc: number;
  syslogPriority: number; // -S
  namesLogPriority: number;
  uname: string | undefined; // -U
  gname: string | undefined; // -G
  maxWorkerThreads: number; // -t
  killGraceSeconds: number; // -g
  useWatchdog: number; // -w
  highPriority: number; // -h
  mlockLevel: number; // -l
  setBitmapSeconds: number; // -b, 0 = 6 × io_timeout of the lockspace
  ourHostName: string | undefined; // -e
  useAio: number; // -a
  shRetries: number;
  renewalReadExtendSec: number | undefined;
  writeInitIoTimeout: number;
  debugClients: number;
  debugIo: string;
  debugCmds: bigint;
  paxosDebugAll: number;
  maxSectorsKbIgnore: number;
  maxSectorsKbAlign: number;
  maxSectorsKbNum: number;
  // sanlock-ts extensions (not in sanlock 3.8.5; see docs/sanlock-ts.8 "EXTENSIONS")
  /** log file; undefined = /var/log/sanlock.log as root, <run dir>/sanlock.log otherwise */
  logfilePath: string | undefined;
  /** persistent copy of the log_dump ring; undefined = none */
  debugLogPath: string | undefined;
  debugLogMaxBytes: number;
  /** rotated files kept besides the current one (<path>.1 … <path>.N) */
  debugLogFiles: number;
  /** --metrics / `metrics`: [HOST:]PORT of the metrics and dashboard HTTP server; undefined = off */
  metrics?: string;
}

/** debug_cmds default: all commands except the chatty read-only ones (protocol.md §9). */
function defaultDebugCmds(): bigint {
  let v = (1n << 64n) - 1n;
  for (const c of [Cmd.INQ_LOCKSPACE, Cmd.WRITE_RESOURCE, Cmd.READ_LOCKSPACE, Cmd.READ_RESOURCE, Cmd.GET_LOCKSPACES, Cmd.GET_HOSTS, Cmd.READ_RESOURCE_OWNERS]) {
    v &= ~(1n << BigInt(c));
  }
  return v;
}

export function defaultConfig(): DaemonConfig {
  return {
    foreground: false,
    quietFail: 1,
    debugRenew: 0,
    renewalHistorySize: 180,
    logfilePriority: 4,
    logfileUseUtc: 0,
    syslogPriority: 3,
    namesLogPriority: 4,
    uname: undefined,
    gname: undefined,
    maxWorkerThreads: 8,
    killGraceSeconds: 40,
    useWatchdog: 1,
    highPriority: 0,
    mlockLevel: 1,
    setBitmapSeconds: 0,
    ourHostName: undefined,
    useAio: 1,
    shRetries: 8,
    renewalReadExtendSec: undefined,
    writeInitIoTimeout: 60,
    debugClients: 0,
    debugIo: '',
    debugCmds: defaultDebugCmds(),
    paxosDebugAll: 0,
    maxSectorsKbIgnore: 0,
    maxSectorsKbAlign: 0,
    maxSectorsKbNum: 1024,
    logfilePath: undefined,
    debugLogPath: undefined,
    debugLogMaxBytes: 8 * 1024 * 1024,
    debugLogFiles: 3,
    metrics: undefined,
  };
}

/** C atoi: leading whitespace, optional sign, digits; garbage gives 0. */
export function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  if (!m) return 0;
  const v = Number.parseInt(m[1]!, 10);
  return Number.isFinite(v) ? v | 0 : 0;
}

function cmdNumber(name: string): number | undefined {
  for (const [num, n] of Object.entries(cmdNames)) if (n === name) return Number(num);
  return undefined;
}

/** Applies sanlock.conf text (same tokenising as sanlock: key up to space/=/tab, value = first token after '='). */
export function applyConfigText(cfg: DaemonConfig, text: string): void {
  for (const raw of text.split('\n')) {
    if (raw.length === 0 || raw[0] === '#') continue;
    const km = /^[^ =\t\n]*/.exec(raw);
    const key = km ? km[0] : '';
    const eq = raw.indexOf('=');
    if (!key || eq < 0) continue;
    const vm = /^\s*(\S*)/.exec(raw.slice(eq + 1));
    const str = vm ? vm[1]! : '';
    const val = atoi(str);
    switch (key) {
      case 'quiet_fail': cfg.quietFail = val; break;
      case 'debug_renew': cfg.debugRenew = val; break;
      case 'use_aio': cfg.useAio = val; break;
      case 'logfile_priority': cfg.logfilePriority = val; break;
      case 'logfile_use_utc': cfg.logfileUseUtc = val; break;
      case 'syslog_priority': cfg.syslogPriority = val; break;
      case 'names_log_priority': cfg.namesLogPriority = val; break;
      case 'use_watchdog': cfg.useWatchdog = val; break;
      case 'high_priority': cfg.highPriority = val; break;
      case 'mlock_level': cfg.mlockLevel = val; break;
      case 'sh_retries': cfg.shRetries = val; break;
      case 'uname': cfg.uname = str; break;
      case 'gname': cfg.gname = str; break;
      case 'our_host_name': cfg.ourHostName = str; break;
      case 'renewal_read_extend_sec': cfg.renewalReadExtendSec = val; break;
      case 'write_init_io_timeout': cfg.writeInitIoTimeout = val; break;
      case 'renewal_history_size': cfg.renewalHistorySize = val; break;
      case 'paxos_debug_all': cfg.paxosDebugAll = val; break;
      case 'debug_io': cfg.debugIo = str; break;
      case 'debug_clients': cfg.debugClients = val; break;
      case 'debug_cmd': {
        if (str === '+all') cfg.debugCmds = (1n << 64n) - 1n;
        else if (str === '-all') cfg.debugCmds = 0n;
        else if (str[0] === '+' || str[0] === '-') {
          const n = cmdNumber(str.slice(1));
          if (n !== undefined) {
            if (str[0] === '+') cfg.debugCmds |= 1n << BigInt(n);
            else cfg.debugCmds &= ~(1n << BigInt(n));
          }
        }
        break;
      }
      case 'max_sectors_kb':
        if (str === 'ignore') cfg.maxSectorsKbIgnore = 1;
        else if (str === 'align') cfg.maxSectorsKbAlign = 1;
        else if (val > 0 && val <= 8192 && val % 2 === 0) cfg.maxSectorsKbNum = val;
        break;
      case 'max_worker_threads': cfg.maxWorkerThreads = Math.max(2, val); break;
      case 'logfile_path': cfg.logfilePath = str; break;
      case 'debug_log_path': cfg.debugLogPath = str; break;
      case 'debug_log_max_bytes': cfg.debugLogMaxBytes = val; break;
      case 'debug_log_files': cfg.debugLogFiles = val; break;
      case 'metrics': cfg.metrics = str; break;
      default: break; // unknown keys are ignored here, as sanlock does; validateConfigText rejects them
    }
  }
}

export class ArgError extends Error {}

/**
 * A start-up error in the configuration (sanlock-ts): sanlock 3.8.5 silently ignores unknown
 * keys and reads garbage as 0 (atoi), so a typo such as `use_watchdog = yes` quietly turns the
 * watchdog off. sanlock-ts refuses to start instead, naming the file, line and key.
 */
export class ConfigError extends Error {}

type ValueCheck = (v: string) => string | undefined; // the expected form when v is bad

const INT_RE = /^[+-]?\d+$/;

function intIn(lo: number, hi?: number): ValueCheck {
  const want = hi === undefined ? `an integer >= ${lo}` : `an integer from ${lo} to ${hi}`;
  return (v) => {
    if (!INT_RE.test(v)) return want;
    const n = Number(v);
    return n < lo || (hi !== undefined && n > hi) ? want : undefined;
  };
}

const bool01 = intIn(0, 1);
const priority = intIn(-1, 7);
const nonEmpty: ValueCheck = (v) => (v.length > 0 ? undefined : 'a name');
const absPath: ValueCheck = (v) => (v.startsWith('/') ? undefined : 'an absolute path');

/** Every key sanlock-ts reads, with what a valid value looks like; others are errors. */
export const CONFIG_KEYS: Record<string, ValueCheck> = {
  quiet_fail: bool01,
  debug_renew: bool01,
  use_aio: bool01,
  logfile_priority: priority,
  logfile_use_utc: bool01,
  syslog_priority: priority,
  names_log_priority: priority,
  use_watchdog: bool01,
  high_priority: bool01,
  mlock_level: intIn(0, 2),
  sh_retries: intIn(0),
  uname: nonEmpty,
  gname: nonEmpty,
  our_host_name: (v) => (v.length > 0 && Buffer.byteLength(v) <= 48 ? undefined : 'a name of 1 to 48 bytes'),
  renewal_read_extend_sec: intIn(0),
  write_init_io_timeout: intIn(1),
  renewal_history_size: intIn(0),
  paxos_debug_all: bool01,
  debug_io: (v) => (v.split(',').every((t) => t === 'submit' || t === 'complete') ? undefined : '"submit", "complete" or "submit,complete"'),
  debug_clients: bool01,
  debug_cmd: (v) =>
    v === '+all' || v === '-all' || ((v[0] === '+' || v[0] === '-') && cmdNumber(v.slice(1)) !== undefined)
      ? undefined
      : '+all, -all, or + or - followed by a command name (e.g. +acquire)',
  max_sectors_kb: (v) => {
    if (v === 'ignore' || v === 'align') return undefined;
    const n = INT_RE.test(v) ? Number(v) : 0;
    return n > 0 && n <= 8192 && n % 2 === 0 ? undefined : 'ignore, align or an even number from 2 to 8192';
  },
  max_worker_threads: intIn(2),
  // sanlock-ts extensions
  logfile_path: absPath,
  debug_log_path: absPath,
  debug_log_max_bytes: intIn(4096),
  debug_log_files: intIn(0, 100),
  metrics: metricsAddressProblem,
};

/**
 * Checks sanlock.conf text strictly; returns one sentence per problem, each naming the file, the
 * line and the key. Valid text parses with applyConfigText exactly as sanlock would parse it.
 */
export function validateConfigText(text: string, path = SANLOCK_CONF): string[] {
  const errors: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const where = `${path} line ${idx + 1}`;
    const line = raw.replace(/\r$/, '');
    if (line.trim().length === 0 || line[0] === '#') return;
    if (/^\s/.test(line)) {
      if (line.trim()[0] === '#') return;
      errors.push(`${where}: line starts with white space: sanlock ignores such lines, remove the indentation`);
      return;
    }
    const key = /^[^ =\t]*/.exec(line)![0];
    const check = CONFIG_KEYS[key];
    if (!check) {
      errors.push(`${where}: unknown key '${key}'`);
      return;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || line.slice(key.length, eq).trim().length > 0) {
      errors.push(`${where}: key '${key}' needs "${key} = <value>"`);
      return;
    }
    const m = /^\s*(\S*)\s*(.*)$/.exec(line.slice(eq + 1))!;
    const value = m[1]!;
    const rest = m[2]!;
    if (rest.length > 0 && rest[0] !== '#') {
      errors.push(`${where}: key '${key}': unexpected text after the value: '${rest}'`);
      return;
    }
    const want = check(value);
    if (want !== undefined) errors.push(`${where}: bad value '${value}' for key '${key}': expected ${want}`);
  });
  return errors;
}

/**
 * sanlock-ts's own daemon options (long, so they never clash with a sanlock letter), as
 * `--name value` or `--name=value`, each the twin of a config key. Other modules may add entries
 * (value already stripped); `--config` is handled by loadDaemonConfig before the file is read.
 */
export const LONG_OPTIONS: Record<string, { key?: string; apply: (cfg: DaemonConfig, value: string) => void }> = {
  'logfile-path': { key: 'logfile_path', apply: (c, v) => { c.logfilePath = v; } },
  'debug-log-path': { key: 'debug_log_path', apply: (c, v) => { c.debugLogPath = v; } },
  'debug-log-max-bytes': { key: 'debug_log_max_bytes', apply: (c, v) => { c.debugLogMaxBytes = Number(v); } },
  'debug-log-files': { key: 'debug_log_files', apply: (c, v) => { c.debugLogFiles = Number(v); } },
  metrics: { key: 'metrics', apply: (c, v) => { c.metrics = v; } },
  config: { apply: () => undefined },
};

/** Splits `--name=value` / `--name value` at args[i]; returns [name, value, next index]. */
function takeLong(args: string[], i: number): [string, string, number] {
  const a = args[i]!.slice(2);
  const eq = a.indexOf('=');
  if (eq >= 0) return [a.slice(0, eq), a.slice(eq + 1), i];
  if (i + 1 >= args.length) throw new ArgError(`option '--${a}' requires arg`);
  return [a, args[i + 1]!, i + 1];
}


/**
 * Parses `sanlock daemon` options into cfg. Each option is exactly `-X` followed by its value as
 * the next word; only -D takes none. Errors carry sanlock's message text.
 */
export function parseDaemonArgs(cfg: DaemonConfig, args: string[]): void {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--') && a.length > 2) {
      const [name, value, next] = takeLong(args, i);
      const opt = LONG_OPTIONS[name];
      if (!opt) throw new ArgError(`unknown option: --${name}`);
      const want = opt.key ? CONFIG_KEYS[opt.key]?.(value) : undefined;
      if (want !== undefined) throw new ArgError(`bad value '${value}' for option --${name}: expected ${want}`);
      opt.apply(cfg, value);
      i = next;
      continue;
    }
    if (a.length !== 2 || a[0] !== '-') {
      throw new ArgError(`unknown option ${a}\nspace required before option value`);
    }
    const opt = a[1]!;
    if (opt === 'D') {
      cfg.foreground = true;
      continue;
    }
    if (i + 1 >= args.length) throw new ArgError(`option '${opt}' requires arg`);
    const str = args[++i]!;
    const val = atoi(str);
    switch (opt) {
      case 'Q': cfg.quietFail = val; break;
      case 'R': cfg.debugRenew = val; break;
      case 'H': cfg.renewalHistorySize = val; break;
      case 'L': cfg.logfilePriority = val; break;
      case 'S': cfg.syslogPriority = val; break;
      case 'U': cfg.uname = str; break;
      case 'G': cfg.gname = str; break;
      case 't': cfg.maxWorkerThreads = Math.max(2, val); break;
      case 'g':
        // sanlock accepts 0..60 and ignores anything else
        if (val >= 0 && val <= 60) cfg.killGraceSeconds = val;
        break;
      case 'w': cfg.useWatchdog = val; break;
      case 'h': cfg.highPriority = val; break;
      case 'l': cfg.mlockLevel = val; break;
      case 'b': cfg.setBitmapSeconds = val; break;
      case 'e': cfg.ourHostName = str; break;
      case 'a': cfg.useAio = val; break;
      case 'o': break; // parsed but unused by the 3.8.5 daemon
      default:
        throw new ArgError(`unknown option: ${opt}`);
    }
  }
}

/** Reads sanlock.conf if present, then argv. */
/** The config file named by `--config PATH` / `--config=PATH` in argv, else sanlock's. */
export function configPathFromArgs(args: string[], fallback = SANLOCK_CONF): string {
  let path = fallback;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--config' && i + 1 < args.length) path = args[++i]!;
    else if (a.startsWith('--config=')) path = a.slice('--config='.length);
  }
  return path;
}

/**
 * Reads sanlock.conf (or `--config PATH`) if present, then argv. With `strict` (the daemon) the
 * file is validated first and any problem throws ConfigError listing every bad line, so the
 * daemon never starts on a half-understood configuration; an unreadable file is an error too,
 * where sanlock silently keeps its defaults.
 */
export function loadDaemonConfig(args: string[], confPath = configPathFromArgs(args), strict = true): DaemonConfig {
  const cfg = defaultConfig();
  if (existsSync(confPath)) {
    let text: string | undefined;
    try {
      text = readFileSync(confPath, 'latin1');
    } catch (err) {
      if (strict) throw new ConfigError(`cannot read ${confPath}: ${(err as Error).message}`);
    }
    if (text !== undefined) {
      if (strict) {
        const errors = validateConfigText(text, confPath);
        if (errors.length > 0) throw new ConfigError(errors.join('\n'));
      }
      applyConfigText(cfg, text);
    }
  } else if (strict && confPath !== SANLOCK_CONF) {
    throw new ConfigError(`config file ${confPath} (--config) does not exist`);
  }
  parseDaemonArgs(cfg, args);
  return cfg;
}

/** `<uuid4>.<nodename>` truncated to 48 bytes, or the configured name. */
export function resolveHostName(cfg: DaemonConfig): string {
  const name = cfg.ourHostName && cfg.ourHostName.length > 0 ? cfg.ourHostName : `${randomUUID()}.${hostname().split('.')[0]}`;
  return name.slice(0, 48);
}

/** uid of a user name from /etc/passwd (numeric names accepted), undefined when unknown. */
export function lookupUser(name: string): number | undefined {
  return lookupId('/etc/passwd', name);
}

export function lookupGroup(name: string): number | undefined {
  return lookupId('/etc/group', name);
}

function lookupId(file: string, name: string): number | undefined {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f[2] !== undefined) return Number.parseInt(f[2], 10);
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export interface RunIdentity {
  uid: number;
  gid: number;
  /** user/group names the daemon runs as when privileged; sanlock drops only when both are set */
  uname: string | undefined;
  gname: string | undefined;
  errors: string[];
}

/**
 * Socket owner / run-as ids: `sanlock`/`sanlock` when that user and group both exist, each
 * replaced by -U/-G; an unknown name keeps its name (for initgroups) but maps to id 0, with
 * sanlock's messages (its group message says "uid" too).
 */
export function resolveIdentity(cfg: DaemonConfig): RunIdentity {
  const errors: string[] = [];
  let uname: string | undefined;
  let gname: string | undefined;
  let uid = 0;
  let gid = 0;
  const su = lookupUser('sanlock');
  const sg = lookupGroup('sanlock');
  if (su !== undefined && sg !== undefined) {
    uname = 'sanlock';
    gname = 'sanlock';
    uid = su;
    gid = sg;
  }
  if (cfg.uname !== undefined) {
    uname = cfg.uname;
    const u = lookupUser(cfg.uname);
    if (u === undefined) errors.push(`user '${cfg.uname}' not found, using uid: 0`);
    uid = u ?? 0;
  }
  if (cfg.gname !== undefined) {
    gname = cfg.gname;
    const g = lookupGroup(cfg.gname);
    if (g === undefined) errors.push(`group '${cfg.gname}' not found, using uid: 0`);
    gid = g ?? 0;
  }
  return { uid, gid, uname, gname, errors };
}
