// Daemon settings exactly as sanlock 3.8.5 takes them: /etc/sanlock/sanlock.conf first
// (daemon.md §2.1), then argv (cli.md §3), argv winning.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { Cmd, cmdStrs as cmdNames } from '../protocol/commands.js';

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
      default: break; // unknown keys are ignored, as sanlock does
    }
  }
}

export class ArgError extends Error {}

/**
 * Parses `sanlock daemon` options into cfg. Each option is exactly `-X` followed by its value as
 * the next word; only -D takes none. Errors carry sanlock's message text.
 */
export function parseDaemonArgs(cfg: DaemonConfig, args: string[]): void {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
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
export function loadDaemonConfig(args: string[], confPath = SANLOCK_CONF): DaemonConfig {
  const cfg = defaultConfig();
  if (existsSync(confPath)) {
    try {
      applyConfigText(cfg, readFileSync(confPath, 'latin1'));
    } catch {
      // an unreadable config file leaves the defaults, like a missing one
    }
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
  errors: string[];
}

/** Socket owner / run-as ids: -U/-G by name, else sanlock/sanlock when both exist, else 0/0. */
export function resolveIdentity(cfg: DaemonConfig): RunIdentity {
  const errors: string[] = [];
  if (cfg.uname === undefined && cfg.gname === undefined) {
    const u = lookupUser('sanlock');
    const g = lookupGroup('sanlock');
    if (u !== undefined && g !== undefined) return { uid: u, gid: g, errors };
    return { uid: 0, gid: 0, errors };
  }
  let uid = 0;
  let gid = 0;
  if (cfg.uname !== undefined) {
    const u = lookupUser(cfg.uname);
    if (u === undefined) errors.push(`user not found: ${cfg.uname}`);
    else uid = u;
  }
  if (cfg.gname !== undefined) {
    const g = lookupGroup(cfg.gname);
    if (g === undefined) errors.push(`group not found: ${cfg.gname}`);
    else gid = g;
  }
  return { uid, gid, errors };
}
