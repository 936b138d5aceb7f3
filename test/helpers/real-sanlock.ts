// Starting the real sanlock 3.8.5 daemon in a private run dir, for interop tests.
// The sandbox refuses setrlimit(RLIMIT_MEMLOCK), so a tiny preloaded shim makes it succeed.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SANLOCK_BIN = '/usr/sbin/sanlock';
export const PYTHON = '/usr/bin/python3';

export function haveRealSanlock(): boolean {
  return existsSync(SANLOCK_BIN);
}

export function havePythonSanlock(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import sanlock'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let shimPath: string | undefined;

/** Path of the compiled setrlimit shim (built once per process). */
export function setrlimitShim(): string {
  if (shimPath) return shimPath;
  const dir = mkdtempSync(join(tmpdir(), 'slk-shim-'));
  const src = join(dir, 'shim.c');
  writeFileSync(
    src,
    '#include <sys/resource.h>\n' +
      'int setrlimit(int r, const struct rlimit *l) { (void)r; (void)l; return 0; }\n' +
      'int setrlimit64(int r, const void *l) { (void)r; (void)l; return 0; }\n',
  );
  const so = join(dir, 'shim.so');
  execFileSync('gcc', ['-shared', '-fPIC', '-o', so, src]);
  shimPath = so;
  return so;
}

/**
 * A scratch directory on a real filesystem (O_DIRECT fails on tmpfs): under the repo's
 * `.test-tmp/` unless SANLOCK_TS_TEST_DIR says otherwise.
 */
export function scratchDir(prefix: string): string {
  const base = process.env.SANLOCK_TS_TEST_DIR ?? join(process.cwd(), '.test-tmp');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, `${prefix}-`));
}

export interface RealDaemon {
  runDir: string;
  proc: ChildProcess;
  env: NodeJS.ProcessEnv;
  /** Runs `sanlock <args>` against this daemon; returns stdout and exit status. */
  cli(args: string[]): { stdout: string; status: number };
  stop(): Promise<void>;
}

async function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `sanlock daemon -D -w 0 -l 0 -h 0 -U root -G root [extra]` in its own run dir. */
export async function startRealDaemon(runDir: string, extra: string[] = []): Promise<RealDaemon> {
  mkdirSync(runDir, { recursive: true });
  const env = { ...process.env, SANLOCK_RUN_DIR: runDir, SANLOCK_PRIVILEGED: '0' };
  const proc = spawn(SANLOCK_BIN, ['daemon', '-D', '-w', '0', '-l', '0', '-h', '0', '-U', 'root', '-G', 'root', ...extra], {
    env: { ...env, LD_PRELOAD: setrlimitShim() },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
  await waitFor(() => existsSync(join(runDir, 'sanlock.sock')) || proc.exitCode !== null, 10_000);
  if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`real sanlock daemon exited: ${log}`);
  return {
    runDir,
    proc,
    env,
    cli(args: string[]) {
      try {
        const stdout = execFileSync(SANLOCK_BIN, args, { env, encoding: 'utf8' });
        return { stdout, status: 0 };
      } catch (e) {
        const err = e as { stdout?: string; status?: number };
        return { stdout: err.stdout ?? '', status: err.status ?? 1 };
      }
    },
    async stop() {
      // a daemon killed by a signal has exitCode null and signalCode set: its 'exit' already fired
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      try { process.kill(-proc.pid!, 'SIGKILL'); } catch { /* already gone */ }
      await exited;
    },
  };
}
