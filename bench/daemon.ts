// Daemon benchmark: our daemon against the real sanlock 3.8.5 daemon, run in the same process
// tree, alternating (ours, real, ours, real), on the same kind of files, driven by the same
// python3-sanlock client. Every row carries ours as value and the real daemon as reference.
//
// BENCH_SCALE (default 1) scales the many-leases case: 20 processes × round(200·scale)
// leases each; BENCH_SCALE=1 is the full 4000 leases. BENCH_REAL_DAEMON_ARGS adds arguments to
// the real daemon's command line (e.g. "-t 4" to give it as many I/O threads as ours has).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOurDaemon } from '../test/daemon/our-daemon.js';
import { PYTHON, SANLOCK_BIN, havePythonSanlock, haveRealSanlock, scratchDir, startRealDaemon } from '../test/helpers/real-sanlock.js';
import { cpuNsBetween, DRIVER_PY, threadCpuNs, initResources, median, MIB, procSample, quantile, readResourceName, resourceName, ticksToMs } from './helpers.js';
import type { BenchCase, Row } from './main.js';

type SideName = 'ours' | 'real';

interface Side {
  name: SideName;
  dir: string;
  runDir: string;
  env: NodeJS.ProcessEnv;
  pid: number;
  stop(): Promise<void>;
}

interface Env {
  dir: string;
  driver: string;
  sides: [Side, Side];
}

const LS = 'BENCH';
const IO_TIMEOUT = 1;

function scale(): number {
  const s = Number(process.env.BENCH_SCALE ?? '1');
  if (!(s > 0)) throw new Error(`BENCH_SCALE must be a positive number, got ${process.env.BENCH_SCALE}`);
  return s;
}

function initLockspace(name: string, path: string): void {
  execFileSync('truncate', ['-s', String(MIB), path]);
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `${name}:0:${path}:0`, '-o', String(IO_TIMEOUT)], { stdio: 'ignore' });
}

interface PyResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

function runPy(env: Env, side: Side, args: string[], timeoutMs = 300_000): Promise<PyResult> {
  return new Promise((res, rej) => {
    const p = spawn(PYTHON, [env.driver, ...args], { env: side.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', rej);
    p.on('exit', (code) => {
      clearTimeout(t);
      res({ stdout, stderr, code });
    });
  });
}

async function pyJson<T>(env: Env, side: Side, args: string[]): Promise<T> {
  const r = await runPy(env, side, args);
  if (r.code !== 0) throw new Error(`python ${args[0]} on ${side.name} daemon failed (${r.code}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

/** An interactive python driver: lines out, lines in. */
class Interactive {
  readonly proc: ChildProcess;
  private lines: string[] = [];
  private waiters: ((l: string) => void)[] = [];
  private stderr = '';
  private exited = false;
  constructor(env: Env, side: Side, args: string[]) {
    this.proc = spawn(PYTHON, [env.driver, ...args], { env: side.env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d) => (this.stderr += d));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
    // 'close', not 'exit': stdout may still hold the last lines when 'exit' fires.
    this.proc.on('close', () => {
      this.exited = true;
      for (const w of this.waiters.splice(0)) w('');
    });
  }
  async line(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return l;
    if (this.exited) return '';
    const got = await new Promise<string>((r) => this.waiters.push(r));
    if (got === '' && this.exited) throw new Error(`python driver exited: ${this.stderr.slice(-2000)}`);
    return got;
  }
  send(s: string): void {
    this.proc.stdin!.write(s);
  }
  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise((r) => this.proc.once('close', r));
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 60_000);
    await done;
    clearTimeout(t);
  }
  kill(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }
}

async function joinMain(side: Side): Promise<void> {
  const lsPath = join(side.dir, 'lockspace');
  initLockspace(LS, lsPath);
  await new Promise<void>((res, rej) => {
    const p = spawn(SANLOCK_BIN, ['client', 'add_lockspace', '-s', `${LS}:1:${lsPath}:0`, '-o', String(IO_TIMEOUT)], {
      env: side.env,
      stdio: 'ignore',
    });
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`add_lockspace on ${side.name} daemon: exit ${code}`))));
  });
}

/** Both daemons started, each joined (host_id 1) to its own lockspace BENCH. */
async function withDaemons<T>(prefix: string, fn: (env: Env) => Promise<T>, join_ = true): Promise<T> {
  const dir = scratchDir(`bench-${prefix}`);
  const driver = join(dir, 'driver.py');
  writeFileSync(driver, DRIVER_PY);
  const started: Side[] = [];
  try {
    for (const name of ['ours', 'real'] as const) {
      const sideDir = join(dir, name);
      const runDir = join(sideDir, 'run');
      const d = name === 'ours' ? await startOurDaemon(runDir) : await startRealDaemon(runDir, (process.env.BENCH_REAL_DAEMON_ARGS ?? '').split(' ').filter(Boolean));
      started.push({ name, dir: sideDir, runDir, env: d.env, pid: d.proc.pid!, stop: () => d.stop() });
    }
    const env: Env = { dir, driver, sides: [started[0]!, started[1]!] };
    if (join_) await Promise.all(env.sides.map(joinMain));
    return await fn(env);
  } finally {
    for (const s of started) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// 1. Uncontended acquire+release pairs.
async function pairs(): Promise<Row[]> {
  const N = 300;
  const ROUNDS = 2;
  return withDaemons('pairs', async (env) => {
    for (const s of env.sides) {
      execFileSync('truncate', ['-s', String(MIB), join(s.dir, 'pair')]);
      execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `${LS}:PAIR:${join(s.dir, 'pair')}:0`], { stdio: 'ignore' });
    }
    const lat: Record<SideName, { ex: number[]; sh: number[] }> = { ours: { ex: [], sh: [] }, real: { ex: [], sh: [] } };
    for (let r = 0; r < ROUNDS; r++) {
      for (const s of env.sides) {
        const out = await pyJson<{ ex: number[]; sh: number[] }>(env, s, ['pairs', LS, join(s.dir, 'pair'), String(N)]);
        lat[s.name].ex.push(...out.ex);
        lat[s.name].sh.push(...out.sh);
      }
    }
    const rows: Row[] = [];
    for (const mode of ['ex', 'sh'] as const) {
      const o = [...lat.ours[mode]].sort((a, b) => a - b);
      const t = [...lat.real[mode]].sort((a, b) => a - b);
      const note = `${ROUNDS}×${N} pairs per daemon, python3-sanlock, alternating`;
      rows.push({ metric: `${mode.toUpperCase()} acquire+release median`, value: quantile(o, 0.5), unit: 'µs', ref: { name: 'sanlock', value: quantile(t, 0.5) }, note });
      rows.push({ metric: `${mode.toUpperCase()} acquire+release p99`, value: quantile(o, 0.99), unit: 'µs', ref: { name: 'sanlock', value: quantile(t, 0.99) } });
    }
    return rows;
  });
}

// 2. Many processes × many leases.
async function many(): Promise<Row[]> {
  const PROCS = 20;
  const per = Math.max(1, Math.round(200 * scale()));
  const total = PROCS * per;
  const ROUNDS = 2;
  return withDaemons('many', async (env) => {
    for (const s of env.sides) {
      for (let p = 0; p < PROCS; p++) initResources(LS, join(s.dir, `res${p}`), per);
      const probe = join(s.dir, 'res0');
      if (readResourceName(probe, per - 1) !== resourceName(probe, per - 1)) throw new Error('resource image readback');
    }
    const acq: Record<SideName, number[]> = { ours: [], real: [] };
    const rel: Record<SideName, number[]> = { ours: [], real: [] };
    // Daemon CPU per lease over acquire+release: tells CPU-bound from I/O-bound.
    const cpu: Record<SideName, number[]> = { ours: [], real: [] };
    const usr: Record<SideName, number[]> = { ours: [], real: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const s of env.sides) {
        const ps = Array.from({ length: PROCS }, (_, p) => new Interactive(env, s, ['many', LS, join(s.dir, `res${p}`), String(per)]));
        try {
          for (const p of ps) if ((await p.line()) !== 'ready') throw new Error('driver not ready');
          const c0 = procSample(s.pid);
          for (const p of ps) p.send('go\n');
          const a = await Promise.all(ps.map(async (p) => JSON.parse(await p.line()) as { t0: number; t1: number }));
          for (const p of ps) p.send('go\n');
          const b = await Promise.all(ps.map(async (p) => JSON.parse(await p.line()) as { t2: number; t3: number }));
          const c1 = procSample(s.pid);
          cpu[s.name].push((ticksToMs(c1.ticks - c0.ticks) * 1000) / total);
          usr[s.name].push((ticksToMs(c1.utime - c0.utime) * 1000) / total);
          acq[s.name].push(total / (Math.max(...a.map((x) => x.t1)) - Math.min(...a.map((x) => x.t0))));
          rel[s.name].push(total / (Math.max(...b.map((x) => x.t3)) - Math.min(...b.map((x) => x.t2))));
          await Promise.all(ps.map((p) => p.close()));
        } finally {
          for (const p of ps) p.kill();
        }
      }
    }
    const note = `${PROCS} procs × ${per} leases (BENCH_SCALE=${scale()}), best of ${ROUNDS} rounds`;
    return [
      { metric: `acquire ${total} leases`, value: Math.max(...acq.ours), unit: 'leases/s', ref: { name: 'sanlock', value: Math.max(...acq.real) }, note },
      { metric: `release ${total} leases`, value: Math.max(...rel.ours), unit: 'leases/s', ref: { name: 'sanlock', value: Math.max(...rel.real) } },
      { metric: 'daemon CPU per lease (acquire+release)', value: median(cpu.ours), unit: 'µs', ref: { name: 'sanlock', value: median(cpu.real) }, note: 'utime+stime of the daemon process, median of rounds' },
      { metric: '  of which user CPU', value: median(usr.ours), unit: 'µs', ref: { name: 'sanlock', value: median(usr.real) }, note: 'the rest is system time (O_DIRECT I/O, sockets)' },
    ];
  });
}

// 3. Footprint, both daemons measured over the same windows.
async function footprint(): Promise<Row[]> {
  const WINDOW_MS = 10_000;
  const HELD = 100;
  return withDaemons('footprint', async (env) => {
    const rows: Row[] = [];
    const measure = async (label: string): Promise<void> => {
      const a = env.sides.map((s) => procSample(s.pid));
      const an = env.sides.map((s) => threadCpuNs(s.pid));
      const t = performance.now();
      await sleep(WINDOW_MS);
      const b = env.sides.map((s) => procSample(s.pid));
      const bn = env.sides.map((s) => threadCpuNs(s.pid));
      const secs = (performance.now() - t) / 1000;
      const fine = bn.map((x, i) => cpuNsBetween(an[i]!, x) / 1e6 / secs);
      const cpu = b.map((x, i) => ticksToMs(x.ticks - a[i]!.ticks) / secs);
      rows.push({ metric: `RSS idle, ${label}`, value: b[0]!.rssKiB / 1024, unit: 'MiB', ref: { name: 'sanlock', value: b[1]!.rssKiB / 1024 } });
      rows.push({
        metric: `CPU idle, ${label}`,
        value: cpu[0]!,
        unit: 'ms/s',
        ref: { name: 'sanlock', value: cpu[1]! },
        note: `utime+stime over ${secs.toFixed(1)} s (10 ms ticks)`,
      });
      rows.push({
        metric: `CPU idle (schedstat), ${label}`,
        value: fine[0]!,
        unit: 'ms/s',
        ref: { name: 'sanlock', value: fine[1]! },
        note: 'sum of per-thread run time, ns resolution',
      });
      rows.push({ metric: `threads, ${label}`, value: bn[0]!.size, unit: '', ref: { name: 'sanlock', value: bn[1]!.size } });
    };
    await sleep(2000); // let the join's own work settle
    await measure('1 lockspace');
    for (const s of env.sides) initResources(LS, join(s.dir, 'held'), HELD);
    const holders = env.sides.map((s) => new Interactive(env, s, ['hold', LS, join(s.dir, 'held'), String(HELD)]));
    try {
      for (const h of holders) if ((await h.line()) !== 'held') throw new Error('holder failed');
      await sleep(1000);
      await measure(`${HELD} held leases`);
      await Promise.all(holders.map((h) => h.close()));
    } finally {
      for (const h of holders) h.kill();
    }
    return rows;
  });
}

// 4. Join time.
async function joinTime(): Promise<Row[]> {
  const ROUNDS = 2;
  return withDaemons(
    'join',
    async (env) => {
      const joinS: Record<SideName, number[]> = { ours: [], real: [] };
      const remS: Record<SideName, number[]> = { ours: [], real: [] };
      for (let r = 0; r < ROUNDS; r++) {
        for (const s of env.sides) {
          const path = join(s.dir, `join${r}`);
          initLockspace(`JOIN${r}`, path);
          const out = await pyJson<{ join: number; rem: number }>(env, s, ['join', `JOIN${r}`, path]);
          joinS[s.name].push(out.join);
          remS[s.name].push(out.rem);
        }
      }
      const minimum = 2 * IO_TIMEOUT;
      const o = median(joinS.ours);
      const t = median(joinS.real);
      return [
        { metric: 'add_lockspace (free host_id, io_timeout 1)', value: o, unit: 's', ref: { name: 'sanlock', value: t }, note: `median of ${ROUNDS}; ours ${joinS.ours.map((x) => x.toFixed(2)).join(', ')}` },
        { metric: 'add_lockspace ours vs minimum', value: o, unit: 's', ref: { name: '2·io_timeout', value: minimum } },
        { metric: 'add_lockspace sanlock vs minimum', value: t, unit: 's', ref: { name: '2·io_timeout', value: minimum }, note: 'value is the real daemon here' },
        { metric: 'rem_lockspace', value: median(remS.ours), unit: 's', ref: { name: 'sanlock', value: median(remS.real) } },
      ];
    },
    false,
  );
}

function available(): boolean {
  return haveRealSanlock() && havePythonSanlock() && existsSync('bin/sanlock-ts');
}

function guarded(fn: () => Promise<Row[]>): () => Promise<Row[]> {
  return async () => {
    if (!available()) return [{ metric: 'skipped', value: Number.NaN, unit: '', note: 'needs /usr/sbin/sanlock, python3-sanlock and bin/sanlock-ts (run from the repo root)' }];
    return fn();
  };
}

export const cases: BenchCase[] = [
  { name: 'daemon-pairs', run: guarded(pairs) },
  { name: 'daemon-many', run: guarded(many) },
  { name: 'daemon-footprint', run: guarded(footprint) },
  { name: 'daemon-join', run: guarded(joinTime) },
];
