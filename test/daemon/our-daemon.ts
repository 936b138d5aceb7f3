// Starts OUR daemon (bin/sanlock-ts daemon -D ...) in a private run dir for tests, and runs
// clients (python3-sanlock, the real sanlock CLI, raw sockets) against it.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';

export const SANLOCK_BIN = '/usr/sbin/sanlock';
export const PYTHON = '/usr/bin/python3';
const OUR_BIN = resolve('bin/sanlock-ts');

export interface OurDaemon {
  runDir: string;
  proc: ChildProcess;
  env: NodeJS.ProcessEnv;
  stderr(): string;
  /** `sanlock <args>` (the real CLI) against our daemon */
  cli(args: string[], timeoutMs?: number): { stdout: string; status: number };
  /** like cli() but without blocking this process (needed when the test itself serves a socket) */
  cliAsync(args: string[]): Promise<{ stdout: string; status: number }>;
  /** python3 -c with `import sanlock` and SANLOCK_RUN_DIR set */
  py(code: string, timeoutMs?: number): { stdout: string; stderr: string; status: number };
  sockPath: string;
  rawConnect(): Promise<Socket>;
  stop(): Promise<void>;
}

export async function waitFor(pred: () => boolean | Promise<boolean>, ms: number, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startOurDaemon(runDir: string, extra: string[] = [], envExtra: NodeJS.ProcessEnv = {}): Promise<OurDaemon> {
  mkdirSync(runDir, { recursive: true });
  const env = { ...process.env, SANLOCK_RUN_DIR: runDir, SANLOCK_PRIVILEGED: '0', ...envExtra };
  const proc = spawn(process.execPath, [OUR_BIN, 'daemon', '-D', '-w', '0', '-l', '0', '-h', '0', '-U', 'root', '-G', 'root', '-L', '-1', ...extra], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const sockPath = join(runDir, 'sanlock.sock');
  await waitFor(() => existsSync(sockPath) || proc.exitCode !== null, 15_000, 'daemon socket');
  if (proc.exitCode !== null) throw new Error(`our daemon exited: ${log}`);
  return {
    runDir,
    proc,
    env,
    sockPath,
    stderr: () => log,
    cli(args: string[], timeoutMs = 60_000) {
      try {
        const stdout = execFileSync(SANLOCK_BIN, args, { env, encoding: 'utf8', timeout: timeoutMs });
        return { stdout, status: 0 };
      } catch (e) {
        const err = e as { stdout?: string; status?: number };
        return { stdout: err.stdout ?? '', status: err.status ?? 1 };
      }
    },
    cliAsync(args: string[]) {
      return new Promise((res) => {
        const p = spawn(SANLOCK_BIN, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
        let stdout = '';
        p.stdout!.on('data', (x) => {
          stdout += x;
        });
        p.on('exit', (code) => res({ stdout, status: code ?? 1 }));
      });
    },
    py(code: string, timeoutMs = 60_000) {
      const r = spawnSync(PYTHON, ['-c', `import sanlock, os, sys, time\n${code}`], { env, encoding: 'utf8', timeout: timeoutMs });
      return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status ?? 1 };
    },
    rawConnect() {
      return new Promise((res, rej) => {
        const s = connect(sockPath);
        s.once('connect', () => res(s));
        s.once('error', rej);
      });
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    },
  };
}

/** Reads exactly n bytes from a socket (or fewer if it closes), with a timeout. */
export function readBytes(s: Socket, n: number, ms = 5000): Promise<Buffer> {
  return new Promise((res) => {
    let buf = Buffer.alloc(0);
    const done = (): void => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', done);
      s.off('end', done);
      // unread bytes go back so the next read sees them (paused, so they are not emitted
      // to nobody before the next read attaches its listener)
      s.pause();
      if (buf.length > n) {
        s.unshift(buf.subarray(n));
        buf = buf.subarray(0, n);
      }
      res(buf);
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) done();
    };
    const t = setTimeout(done, ms);
    s.on('data', onData);
    s.on('close', done);
    s.on('end', done);
    s.resume();
  });
}

/** A 32-byte request header. */
export function header(cmd: number, opts: { magic?: number; version?: number; cmdFlags?: number; length?: number; seq?: number; data?: number; data2?: number } = {}): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(opts.magic ?? 0x04282010, 0);
  b.writeUInt32LE(opts.version ?? 1, 4);
  b.writeUInt32LE(cmd, 8);
  b.writeUInt32LE(opts.cmdFlags ?? 0, 12);
  b.writeUInt32LE(opts.length ?? 32, 16);
  b.writeUInt32LE(opts.seq ?? 0, 20);
  b.writeInt32LE(opts.data ?? 0, 24);
  b.writeInt32LE(opts.data2 ?? 0, 28);
  return b;
}

export function pyAvailable(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import sanlock'], { stdio: 'ignore' });
    return existsSync(SANLOCK_BIN);
  } catch {
    return false;
  }
}
