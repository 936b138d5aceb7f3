// Cost of `--metrics` (issue 7): three of our daemons in the same run, each joined to its own
// lockspace (io_timeout 1):
//   off        no --metrics
//   on         --metrics, /metrics scraped every 5 s (a Prometheus that scrapes often)
//   dashboard  --metrics, scraped every 5 s, plus /api/state polled every second (what an open
//              dashboard page does; polled from this process, so the browser's own CPU is not
//              counted against the daemon)
// Measured: uncontended EX and SH acquire+release pairs (python3-sanlock, alternating between
// the daemons round by round) with the daemon CPU they cost, and idle daemon CPU over one
// common window.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OurDaemon, startOurDaemon } from '../test/daemon/our-daemon.js';
import { PYTHON, SANLOCK_BIN, havePythonSanlock, haveRealSanlock, scratchDir } from '../test/helpers/real-sanlock.js';
import { cpuNsBetween, DRIVER_PY, median, MIB, procSample, quantile, threadCpuNs, ticksToMs } from './helpers.js';
import type { BenchCase, Row } from './main.js';

type Mode = 'off' | 'on' | 'dashboard';
const MODES: Mode[] = ['off', 'on', 'dashboard'];
const LS = 'MBENCH';
const SCRAPE_MS = 5000;
const POLL_MS = 1000;

interface Side {
  mode: Mode;
  dir: string;
  daemon: OurDaemon;
  port: number | undefined;
  pollers: NodeJS.Timeout[];
  requests: number;
  failures: number;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

function poll(side: Side, path: string, everyMs: number): void {
  const get = (): void => {
    fetch(`http://127.0.0.1:${side.port}${path}`)
      .then(async (r) => {
        await r.arrayBuffer();
        if (r.ok) side.requests++;
        else side.failures++;
      })
      .catch(() => side.failures++);
  };
  get();
  side.pollers.push(setInterval(get, everyMs));
}

function runPairs(side: Side, driver: string, n: number): Promise<{ ex: number[]; sh: number[] }> {
  return new Promise((res, rej) => {
    const p = spawn(PYTHON, [driver, 'pairs', LS, join(side.dir, 'pair'), String(n)], { env: side.daemon.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', rej);
    p.on('exit', (code) => {
      if (code !== 0) rej(new Error(`pairs on the ${side.mode} daemon failed (${code}): ${err.slice(-2000)}`));
      else res(JSON.parse(out.trim().split('\n').pop()!) as { ex: number[]; sh: number[] });
    });
  });
}

async function cost(): Promise<Row[]> {
  const N = 300;
  const ROUNDS = 3;
  const IDLE_MS = 10_000;
  const IDLE_WINDOWS = 3;
  const BURST = 300;
  const dir = scratchDir('bench-metrics');
  const driver = join(dir, 'driver.py');
  writeFileSync(driver, DRIVER_PY);
  const sides: Side[] = [];
  try {
    for (const mode of MODES) {
      const sideDir = join(dir, mode);
      const port = mode === 'off' ? undefined : await freePort();
      const daemon = await startOurDaemon(join(sideDir, 'run'), port === undefined ? [] : ['--metrics', String(port)]);
      sides.push({ mode, dir: sideDir, daemon, port, pollers: [], requests: 0, failures: 0 });
      const ids = join(sideDir, 'ids');
      execFileSync('truncate', ['-s', String(MIB), ids]);
      execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `${LS}:0:${ids}:0`, '-o', '1'], { stdio: 'ignore' });
      execFileSync('truncate', ['-s', String(MIB), join(sideDir, 'pair')]);
      execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `${LS}:PAIR:${join(sideDir, 'pair')}:0`], { stdio: 'ignore' });
    }
    await Promise.all(sides.map((s) => s.daemon.cliAsync(['client', 'add_lockspace', '-s', `${LS}:1:${join(s.dir, 'ids')}:0`, '-o', '1']).then((r) => {
      if (!/done 0/.test(r.stdout)) throw new Error(`add_lockspace on the ${s.mode} daemon: ${r.stdout}`);
    })));
    for (const s of sides) {
      if (s.mode !== 'off') poll(s, '/metrics', SCRAPE_MS);
      if (s.mode === 'dashboard') {
        poll(s, '/', 3_600_000);
        poll(s, '/api/state', POLL_MS);
      }
    }
    await sleep(2000);

    const lat: Record<Mode, { ex: number[]; sh: number[] }> = { off: { ex: [], sh: [] }, on: { ex: [], sh: [] }, dashboard: { ex: [], sh: [] } };
    const cpuNs: Record<Mode, number> = { off: 0, on: 0, dashboard: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      // rotate the order so that no daemon always runs first or last in a round
      for (let i = 0; i < sides.length; i++) {
        const s = sides[(i + r) % sides.length]!;
        const pid = s.daemon.proc.pid!;
        const a = threadCpuNs(pid);
        const out = await runPairs(s, driver, N);
        cpuNs[s.mode] += cpuNsBetween(a, threadCpuNs(pid));
        lat[s.mode].ex.push(...out.ex);
        lat[s.mode].sh.push(...out.sh);
      }
    }

    // idle: all three over the same windows, pollers running; the median window is reported
    // (a GC or another process's burst can land in any single window)
    const pids = sides.map((s) => s.daemon.proc.pid!);
    const idleRuns: number[][] = pids.map(() => []);
    const tickRuns: number[][] = pids.map(() => []);
    for (let w = 0; w < IDLE_WINDOWS; w++) {
      const a = pids.map((p) => threadCpuNs(p));
      const at = pids.map((p) => procSample(p));
      const t0 = performance.now();
      await sleep(IDLE_MS);
      const secs = (performance.now() - t0) / 1000;
      pids.forEach((p, i) => {
        idleRuns[i]!.push(cpuNsBetween(a[i]!, threadCpuNs(p)) / 1e6 / secs);
        tickRuns[i]!.push(ticksToMs(procSample(p).ticks - at[i]!.ticks) / secs);
      });
    }
    const idle = idleRuns.map(median);
    const idleTicks = tickRuns.map(median);
    const rss = pids.map((p) => procSample(p).rssKiB / 1024);

    // daemon CPU per HTTP request: a sequential burst against the dashboard daemon
    const dash = sides.find((s) => s.mode === 'dashboard')!;
    const perRequest: Record<string, number> = {};
    for (const path of ['/api/state', '/metrics']) {
      const pid = dash.daemon.proc.pid!;
      const a = threadCpuNs(pid);
      for (let i = 0; i < BURST; i++) await (await fetch(`http://127.0.0.1:${dash.port}${path}`)).arrayBuffer();
      perRequest[path] = cpuNsBetween(a, threadCpuNs(pid)) / 1e3 / BURST;
    }

    const rows: Row[] = [];
    const pairs = N * ROUNDS * 2;
    for (const m of MODES) {
      const ex = [...lat[m].ex].sort((x, y) => x - y);
      const sh = [...lat[m].sh].sort((x, y) => x - y);
      const refEx = [...lat.off.ex].sort((x, y) => x - y);
      const refSh = [...lat.off.sh].sort((x, y) => x - y);
      const ref = (v: number) => (m === 'off' ? undefined : { name: 'metrics off', value: v });
      const label = m === 'off' ? 'metrics off' : m === 'on' ? 'metrics on' : 'metrics on + dashboard';
      rows.push({ metric: `EX acquire+release median, ${label}`, value: quantile(ex, 0.5), unit: 'µs', ref: ref(quantile(refEx, 0.5)), note: `${ROUNDS}×${N} pairs per daemon, rotating order` });
      rows.push({ metric: `EX acquire+release p99, ${label}`, value: quantile(ex, 0.99), unit: 'µs', ref: ref(quantile(refEx, 0.99)) });
      rows.push({ metric: `SH acquire+release median, ${label}`, value: quantile(sh, 0.5), unit: 'µs', ref: ref(quantile(refSh, 0.5)) });
      rows.push({ metric: `daemon CPU per pair, ${label}`, value: cpuNs[m] / 1e3 / pairs, unit: 'µs', ref: ref(cpuNs.off / 1e3 / pairs), note: 'schedstat ns of the daemon threads over the pairs' });
    }
    for (let i = 0; i < sides.length; i++) {
      const s = sides[i]!;
      const label = s.mode === 'off' ? 'metrics off' : s.mode === 'on' ? `metrics on, scraped every ${SCRAPE_MS / 1000} s` : `+ dashboard polling every ${POLL_MS / 1000} s`;
      rows.push({
        metric: `idle CPU, ${label}`,
        value: idle[i]!,
        unit: 'ms/s',
        ref: s.mode === 'off' ? undefined : { name: 'metrics off', value: idle[0]! },
        note: `median of ${IDLE_WINDOWS}×${IDLE_MS / 1000} s (${idleRuns[i]!.map((x) => x.toFixed(2)).join(', ')}), 1 lockspace; utime+stime ${idleTicks[i]!.toFixed(2)} ms/s`,
      });
      rows.push({ metric: `RSS, ${label}`, value: rss[i]!, unit: 'MiB', ref: s.mode === 'off' ? undefined : { name: 'metrics off', value: rss[0]! } });
      if (s.mode !== 'off') rows.push({ metric: `HTTP requests served, ${s.mode}`, value: s.requests, unit: '', note: s.failures ? `${s.failures} failed` : 'none failed' });
    }
    for (const [path, us] of Object.entries(perRequest)) {
      rows.push({ metric: `daemon CPU per GET ${path}`, value: us, unit: 'µs', note: `${BURST} sequential requests, 1 lockspace, keep-alive` });
    }
    return rows;
  } finally {
    for (const s of sides) for (const t of s.pollers) clearInterval(t);
    for (const s of sides) await s.daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const cases: BenchCase[] = [
  {
    name: 'metrics-cost',
    run: async () => {
      if (!(haveRealSanlock() && havePythonSanlock() && existsSync('bin/sanlock-ts'))) {
        return [{ metric: 'skipped', value: Number.NaN, unit: '', note: 'needs /usr/sbin/sanlock (for init), python3-sanlock and bin/sanlock-ts (run from the repo root)' }];
      }
      return cost();
    },
  },
];
