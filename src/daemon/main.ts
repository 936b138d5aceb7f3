// `sanlock daemon [options]`: start-up in sanlock's order (daemon.md §1), then run until a
// shutdown is accepted.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ArgError, DEFAULT_RUN_DIR, type DaemonConfig, ConfigError, loadDaemonConfig, lookupUser, resolveHostName, resolveIdentity, type RunIdentity } from './config.js';
import { checkLogPaths, DaemonLog, logOptionsFor } from './log.js';
import { systemdNotifier } from './sd-notify.js';
import { lockFile, mlockAll, setSchedRR } from './native.js';
import { Daemon, VERSION_STR } from './server.js';
import { PrivHelper } from './priv-helper.js';
import { watchdogModeFor } from './watchdog/watchdog.js';
import { installLockspaces } from './lockspace.js';
import { installResources } from './resources.js';
import { installRindex } from './rindex-cmds.js';
import type { MetricsServer } from './metrics/http.js';
import { metricsOption, probeMetrics, startMetrics } from './metrics/option.js';

const CHILD_ENV = 'SANLOCK_TS_DAEMON_CHILD';

export function runDirFromEnv(): string {
  const d = process.env.SANLOCK_RUN_DIR;
  return d && d.length > 0 ? d : DEFAULT_RUN_DIR;
}

/** SANLOCK_PRIVILEGED: exactly "1" or unset = privileged; anything else = unprivileged. */
export function privilegedFromEnv(): boolean {
  const v = process.env.SANLOCK_PRIVILEGED;
  return v === undefined || v === '1';
}

function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EAGAIN' || code === 'EACCES') return 'Resource temporarily unavailable';
  return (err as Error).message;
}

/** Creates and write-locks `<runDir>/sanlock.pid`; the returned fd must stay open for the daemon's life. */
export function acquirePidLock(runDir: string, log: DaemonLog): number | undefined {
  const path = join(runDir, 'sanlock.pid');
  let fd: number;
  try {
    fd = openSync(path, 'a+', 0o644);
  } catch (err) {
    log.error(`lockfile open error ${path}: ${errnoText(err)}`);
    return undefined;
  }
  const rv = lockFile(fd);
  if (rv < 0) {
    const text = rv === -11 || rv === -13 ? 'Resource temporarily unavailable' : `errno ${-rv}`;
    log.error(`lockfile setlk error ${path}: ${text}`);
    closeSync(fd);
    return undefined;
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  return fd;
}

const ERRNO_TEXT: Record<string, string> = {
  EPERM: 'Operation not permitted',
  EACCES: 'Permission denied',
  ENOENT: 'No such file or directory',
  EINVAL: 'Invalid argument',
};

function strerror(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (code && ERRNO_TEXT[code]) ?? (err as Error).message;
}

/**
 * sanlock's setup_groups + setup_uid_gid (privileged mode only, and only when both a user and a
 * group name are known): supplementary groups of the user plus gid, then setgid, then setuid.
 * Failures are logged and the daemon goes on, as sanlock does. A root helper is started first
 * when the uid changes, so clients of other users can still be signalled (priv-helper.ts).
 */
export function dropPrivileges(ident: RunIdentity, log: DaemonLog): PrivHelper | undefined {
  if (ident.uname === undefined || ident.gname === undefined) return undefined;
  const helper = process.getuid?.() === 0 && ident.uid !== 0 ? PrivHelper.start(log) : undefined;
  try {
    // an unknown user name (already logged) gets just the group, like initgroups(3) does
    const initgroups = (process as { initgroups?: (user: string, extraGroup: number) => void }).initgroups;
    if (lookupUser(ident.uname) !== undefined && initgroups) initgroups(ident.uname, ident.gid);
    else process.setgroups?.([ident.gid]);
  } catch (err) {
    log.error(`error initializing groups errno ${errnoNumber(err)}`);
  }
  try {
    process.setgid?.(ident.gid);
  } catch (err) {
    log.error(`error setting gid ${ident.gid} errno ${errnoNumber(err)}`);
  }
  try {
    process.setuid?.(ident.uid);
  } catch (err) {
    log.error(`error setting uid ${ident.uid} errno ${errnoNumber(err)}`);
  }
  return helper;
}

function errnoNumber(err: unknown): number {
  const e = err as NodeJS.ErrnoException;
  if (typeof e.errno === 'number') return Math.abs(e.errno);
  return e.code === 'EPERM' ? 1 : 22;
}

function daemonize(args: string[]): number {
  // Node cannot fork(): re-run ourselves detached with stdio closed and cwd "/", like daemon(0,0)
  const script = process.argv[1];
  if (!script) return 1;
  const child = spawn(process.execPath, [...process.execArgv, script, 'daemon', ...args], {
    cwd: '/',
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, [CHILD_ENV]: '1' },
  });
  child.unref();
  return 0;
}

export async function runDaemon(args: string[]): Promise<number> {
  let cfg: DaemonConfig;
  try {
    cfg = loadDaemonConfig(args);
  } catch (err) {
    if (err instanceof ArgError) {
      process.stdout.write(`${err.message}\n`);
      return 1;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`sanlock-ts daemon: configuration error, not started:\n${err.message}\n`);
      return 1;
    }
    throw err;
  }
  // before detaching, while errors can still reach the terminal (sanlock-ts: sanlock runs on)
  const pathErrors = checkLogPaths(logOptionsFor(cfg, runDirFromEnv()), runDirFromEnv());
  if (pathErrors.length > 0) {
    process.stderr.write(`sanlock-ts daemon: not started:\n${pathErrors.join('\n')}\n`);
    return 1;
  }
  // sanlock-ts --metrics: a taken port is reported here, on the terminal, before detaching
  const metricsOpt = metricsOption(cfg, args);
  if (metricsOpt && !cfg.foreground && process.env[CHILD_ENV] !== '1') {
    const err = await probeMetrics(metricsOpt);
    if (err !== undefined) {
      process.stderr.write(`sanlock-ts daemon: not started:\n${err}\n`);
      return 1;
    }
  }
  if (!cfg.foreground && process.env[CHILD_ENV] !== '1') return daemonize(args);

  const privileged = privilegedFromEnv();
  const ident = resolveIdentity(cfg);
  const log = new DaemonLog(logOptionsFor(cfg, runDirFromEnv()));
  for (const e of ident.errors) log.error(e);

  const runDir = runDirFromEnv();
  if (runDir !== DEFAULT_RUN_DIR) log.warn(`Using non-standard run directory '${runDir}'`);
  if (!privileged) log.warn('Running in unprivileged mode');

  try {
    if (!existsSync(runDir)) {
      mkdirSync(runDir, { recursive: true, mode: 0o775 });
      // 0775 whatever the umask, as sanlock leaves it: group members may create files there
      chmodSync(runDir, 0o775);
    }
  } catch (err) {
    log.error(`cannot set up run dir ${runDir}: ${(err as Error).message}`);
    return 1;
  }
  // once the run dir exists (the non-root default log lives there), before the pid file,
  // so that the remaining start-up errors reach the log file too
  const logError = log.openFile();
  if (logError !== undefined) {
    log.error(logError);
    log.close();
    return 1;
  }

  // sanlock chowns the run dir whoever it runs as, and a refusal stops the start (a non-root
  // daemon cannot give its run dir to -U root)
  try {
    chownSync(runDir, ident.uid, privileged ? 0 : ident.gid);
  } catch (err) {
    log.error(`lockfile chown error ${runDir}: ${strerror(err)}`);
    log.close();
    return 1;
  }

  const lockFd = acquirePidLock(runDir, log);
  if (lockFd === undefined) {
    log.close();
    return 1;
  }

  // bound before privileges are dropped (a port below 1024) and before "daemon started"
  let metricsServer: MetricsServer | undefined;
  if (metricsOpt) {
    const m = await startMetrics(metricsOpt, log);
    if (typeof m === 'string') {
      process.stderr.write(`sanlock-ts daemon: not started:\n${m}\n`);
      closeSync(lockFd);
      log.close();
      return 1;
    }
    metricsServer = m;
  }

  const hostName = resolveHostName(cfg);

  // Our device watchdog (SANLOCK_TS_WATCHDOG=device, in place of wdmd) opens the device at the
  // first add_lockspace: opening it earlier would arm it. Only root can open it, so that mode
  // keeps root; sanlock itself never opens the device (wdmd does, as root).
  const keepRoot = cfg.useWatchdog !== 0 && watchdogModeFor(cfg.useWatchdog) === 'device';
  if (privileged && keepRoot && ident.uname !== undefined && ident.gname !== undefined && ident.uid !== process.getuid?.()) {
    log.warn(`watchdog device mode: not changing to ${ident.uname}:${ident.gname}, the device needs root`);
  }
  // Memory locking and SCHED_RR raise RLIMIT_MEMLOCK/RTPRIO first, which only root may do
  // (sanlock raises them as root before its setuid): both run before the drop, and are
  // reported after "daemon started" as sanlock orders its messages.
  const mlockRv = cfg.mlockLevel > 0 ? mlockAll(cfg.mlockLevel) : 0;
  const schedRv = cfg.highPriority ? setSchedRR() : 0;

  const privHelper = privileged && !keepRoot ? dropPrivileges(ident, log) : undefined;

  log.warn(`sanlock daemon started ${VERSION_STR} host ${hostName} (${hostname().split('.')[0]})`);

  // The addon raises RLIMIT_MEMLOCK to unlimited first and locks nothing if it cannot:
  // sanlock exits at this point ("cannot set the limits for memlock"); we keep serving
  // unlocked, loudly, because a lease manager that will not start is worse.
  if (mlockRv < 0) log.error(`cannot set the limits for memlock: errno ${-mlockRv}, running without mlockall`);
  if (schedRv < 0) log.error(`could not set SCHED_RR priority: errno ${-schedRv}`);

  const daemon = new Daemon(cfg, log, hostName, ident.uid, ident.gid);
  daemon.privHelper = privHelper;
  const lockspaces = installLockspaces(daemon);
  const resources = installResources(daemon, lockspaces);
  installRindex(daemon, lockspaces, resources);
  metricsServer?.attach({ hostName, lockspaces, resources });

  const sockPath = join(runDir, 'sanlock.sock');
  try {
    if (existsSync(sockPath)) unlinkSync(sockPath);
    await daemon.listen(sockPath);
    chmodSync(sockPath, 0o660);
    chownSync(sockPath, ident.uid, ident.gid);
  } catch (err) {
    log.error(`cannot set up socket ${sockPath}: ${(err as Error).message}`);
    daemon.exit();
    await daemon.done;
    await metricsServer?.close();
    privHelper?.close();
    return 1;
  }

  const onSignal = (): void => {
    daemon.requestShutdown(false, undefined);
  };
  // sanlock-ts: SIGHUP reopens the log files (logrotate); in sanlock 3.8.5 it is a shutdown request
  const onHup = (): void => log.reopen();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onHup);
  const notifier = systemdNotifier(log);
  notifier?.ready(`listening on ${sockPath}`);

  const code = await daemon.done;
  await metricsServer?.close();
  notifier?.stopping();
  notifier?.close();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  process.off('SIGHUP', onHup);
  closeSync(lockFd);
  privHelper?.close();
  log.close();
  return code;
}

