// Shared pieces of the fencing tests (issue 5) and bench/fencing.ts: lease holders, the
// daemon log with its monotime stamps, test-only storage faults, on-disk delta timestamps.
// Every timestamp here is CLOCK_MONOTONIC seconds, the clock sanlock writes into delta leases
// (process.hrtime is CLOCK_MONOTONIC on Linux), so host_dead arithmetic compares like with like.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { PYTHON, SANLOCK_BIN, waitFor } from '../daemon/our-daemon.js';

export const MiB = 1024 * 1024;

export function monoNow(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface Holder {
  proc: ChildProcess;
  pid: number;
  /** resolves when the process exits: its signal (or null) and monotime of the exit */
  exited: Promise<{ sig: string | null; code: number | null; t: number }>;
  kill(): void;
}

/**
 * A python3-sanlock process that registers, runs `code` (with `fd` the registration) and then
 * sleeps; with ignoreTerm it ignores SIGTERM, so only SIGKILL ends it.
 */
export async function startHolder(env: NodeJS.ProcessEnv, code: string, opts: { ignoreTerm?: boolean } = {}): Promise<Holder> {
  const pre = opts.ignoreTerm ? 'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n' : '';
  const proc = spawn(PYTHON, ['-c', `import sanlock, signal, time, os\n${pre}fd = sanlock.register()\n${code}\nprint("READY", flush=True)\ntime.sleep(600)`], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (x) => {
    out += x;
  });
  proc.stderr!.on('data', (x) => {
    err += x;
  });
  const exited = new Promise<{ sig: string | null; code: number | null; t: number }>((r) =>
    proc.once('exit', (code, sig) => r({ sig, code, t: monoNow() })),
  );
  await waitFor(() => out.includes('READY') || proc.exitCode !== null, 30_000, 'holder ready');
  if (!out.includes('READY')) throw new Error(`holder failed: ${err}`);
  return {
    proc,
    pid: proc.pid!,
    exited,
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

export interface LogLine {
  /** the daemon's monotime stamp */
  t: number;
  msg: string;
}

/** `client log_dump` output (ours and sanlock's share the line format) with monotime stamps. */
export function parseLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    const m = /^(?:\S+ \S+ )?(\d+) \[\d+\]: (.*)$/.exec(line);
    if (m) out.push({ t: Number(m[1]), msg: m[2]! });
  }
  return out;
}

/** First log line matching re, or undefined. */
export function firstLine(lines: LogLine[], re: RegExp): LogLine | undefined {
  return lines.find((l) => re.test(l.msg));
}

/** Writes the daemon's SANLOCK_TS_FAULT_FILE atomically (the daemon re-reads it on change). */
export function writeFaults(file: string, disks: { path: string; faults: object[] }[]): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify({ disks }));
  renameSync(tmp, file);
}

/** Every I/O to these paths hangs (each one times out after io_timeout in the daemon). */
export function hangForever(paths: string[]): { path: string; faults: object[] }[] {
  return paths.map((path) => ({ path, faults: [{ op: 'both', hang: 'forever' }] }));
}

/** Timestamp of host_id's delta lease as on disk (0 when free or not found). */
export function diskDeltaTimestamp(ids: string, hostId: number): number {
  const out = execFileSync(SANLOCK_BIN, ['direct', 'dump', ids], { encoding: 'utf8' });
  for (const line of out.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 6 && Number(f[4]) === hostId && Number(f[0]) === (hostId - 1) * 512) return Number(f[3]);
  }
  return 0;
}

/** Initialises a lockspace file (1 MiB) and resource lease files. */
export function initLockspace(ids: string, ls: string, io: number): void {
  execFileSync('truncate', ['-s', '1M', ids]);
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `${ls}:0:${ids}:0`, '-o', String(io)]);
}

export function initResource(path: string, ls: string, res: string): void {
  execFileSync('truncate', ['-s', '1M', path]);
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `${ls}:${res}:${path}:0`]);
}

/** Python acquire of res in ls (lease file at offset 0) by the registered `fd`. */
export function pyAcquire(ls: string, res: string, path: string): string {
  return `sanlock.acquire(b"${ls}", b"${res}", [(${JSON.stringify(path)}, 0)], slkfd=fd)`;
}

/**
 * Retries a python acquire (new registration each time) once a second until it succeeds;
 * resolves with the monotime of the success and the error codes seen before it. The process
 * keeps holding the lease afterwards until killed.
 */
export function acquireLoop(env: NodeJS.ProcessEnv, ls: string, res: string, path: string): { done: Promise<{ t: number; errors: number[] }>; proc: ChildProcess } {
  const code = [
    'import sanlock, time, sys',
    'errs = []',
    'while True:',
    '    fd = sanlock.register()',
    '    try:',
    `        ${pyAcquire(ls, res, path)}`,
    '        break',
    '    except sanlock.SanlockException as e:',
    '        errs.append(e.errno)',
    '        os_close = __import__("os").close',
    '        os_close(fd)',
    '        time.sleep(1)',
    't = time.clock_gettime(time.CLOCK_MONOTONIC)',
    'print("GOT %.3f %s" % (t, ",".join(str(x) for x in errs)), flush=True)',
    'time.sleep(600)',
  ].join('\n');
  const proc = spawn(PYTHON, ['-c', code], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  let out = '';
  proc.stdout!.on('data', (x) => {
    out += x;
  });
  const done = new Promise<{ t: number; errors: number[] }>((res2, rej) => {
    proc.stdout!.on('data', () => {
      const m = /GOT (\S+) (\S*)/.exec(out);
      if (m) res2({ t: Number(m[1]), errors: m[2] ? m[2].split(',').map(Number) : [] });
    });
    proc.once('exit', (c, s) => {
      if (!/GOT/.test(out)) rej(new Error(`acquire loop exited ${c} ${s}`));
    });
  });
  return { done, proc };
}

/** The real sanlock CLI with env, without blocking the event loop (tests run side by side). */
export function cliAsync(env: NodeJS.ProcessEnv, args: string[]): Promise<string> {
  return new Promise((ok) => {
    const p = spawn(SANLOCK_BIN, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    p.stdout!.on('data', (x) => {
      s += x;
    });
    p.on('exit', () => ok(s));
  });
}

export function killGroup(p: ChildProcess | undefined): void {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  try {
    process.kill(-p.pid!, 'SIGKILL');
  } catch {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}
