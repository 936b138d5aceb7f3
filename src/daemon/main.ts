// `sanlock daemon [options]`: start-up in sanlock's order (daemon.md §1), then run until a
// shutdown is accepted.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ArgError, DEFAULT_RUN_DIR, type DaemonConfig, loadDaemonConfig, resolveHostName, resolveIdentity } from './config.js';
import { DaemonLog } from './log.js';
import { lockFile, mlockAll, setSchedRR } from './native.js';
import { Daemon, VERSION_STR } from './server.js';
import { installLockspaces } from './lockspace.js';
import { installResources } from './resources.js';
import { installRindex } from './rindex-cmds.js';

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
    throw err;
  }
  if (!cfg.foreground && process.env[CHILD_ENV] !== '1') return daemonize(args);

  const privileged = privilegedFromEnv();
  const ident = resolveIdentity(cfg);
  const log = new DaemonLog({ toStderr: cfg.foreground, logfilePriority: cfg.logfilePriority, logfileUseUtc: cfg.logfileUseUtc !== 0 });
  log.openFile();
  for (const e of ident.errors) log.error(e);

  const runDir = runDirFromEnv();
  if (runDir !== DEFAULT_RUN_DIR) log.warn(`Using non-standard run directory '${runDir}'`);
  if (!privileged) log.warn('Running in unprivileged mode');

  try {
    if (!existsSync(runDir)) mkdirSync(runDir, { recursive: true, mode: 0o775 });
    if (process.getuid?.() === 0) chownSync(runDir, ident.uid, privileged ? 0 : ident.gid);
  } catch (err) {
    log.error(`cannot set up run dir ${runDir}: ${(err as Error).message}`);
    return 1;
  }

  const lockFd = acquirePidLock(runDir, log);
  if (lockFd === undefined) {
    log.close();
    return 1;
  }

  const hostName = resolveHostName(cfg);

  if (privileged && (cfg.uname !== undefined || cfg.gname !== undefined) && process.getuid?.() === 0) {
    try {
      const ig = (process as unknown as { initgroups?: (u: string, g: number) => void }).initgroups;
      if (cfg.uname !== undefined && ig) ig(cfg.uname, ident.gid);
      process.setgid?.(ident.gid);
      process.setuid?.(ident.uid);
    } catch (err) {
      log.error(`cannot change to uid ${ident.uid} gid ${ident.gid}: ${(err as Error).message}`);
      return 1;
    }
  }

  log.warn(`sanlock daemon started ${VERSION_STR} host ${hostName} (${hostname().split('.')[0]})`);

  if (cfg.mlockLevel > 0) {
    // The addon raises RLIMIT_MEMLOCK to unlimited first and locks nothing if it cannot:
    // sanlock exits at this point ("cannot set the limits for memlock"); we keep serving
    // unlocked, loudly, because a lease manager that will not start is worse.
    const rv = mlockAll(cfg.mlockLevel);
    if (rv < 0) log.error(`cannot set the limits for memlock: errno ${-rv}, running without mlockall`);
  }
  if (cfg.highPriority) {
    const rv = setSchedRR();
    if (rv < 0) log.error(`could not set SCHED_RR priority: errno ${-rv}`);
  }

  const daemon = new Daemon(cfg, log, hostName, ident.uid, ident.gid);
  const lockspaces = installLockspaces(daemon);
  const resources = installResources(daemon, lockspaces);
  installRindex(daemon, lockspaces, resources);

  const sockPath = join(runDir, 'sanlock.sock');
  try {
    if (existsSync(sockPath)) unlinkSync(sockPath);
    await daemon.listen(sockPath);
    chmodSync(sockPath, 0o660);
    if (process.getuid?.() === 0) chownSync(sockPath, ident.uid, ident.gid);
  } catch (err) {
    log.error(`cannot set up socket ${sockPath}: ${(err as Error).message}`);
    daemon.exit();
    await daemon.done;
    return 1;
  }

  const onSignal = (): void => {
    daemon.requestShutdown(false, undefined);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);

  const code = await daemon.done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  process.off('SIGHUP', onSignal);
  closeSync(lockFd);
  log.close();
  return code;
}

