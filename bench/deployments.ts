// oVirt/VDSM deployment benchmarks, ours against the real sanlock 3.8.5 daemon in the same run
// (docs/bench-deployments.md has the method and the numbers).
//
// deployments-failover: the failover demo (scripts/demo-failover.mjs --json), ours and real run
//   at the same time (separate files, four daemons), FAILOVER_ROUNDS times (default 2). Times are
//   from host 1's SIGKILL; the earliest legal moment is host 1's last renewal (its delta-lease
//   timestamp, CLOCK_MONOTONIC) + host_dead (8 x io_timeout + 60 = 68 s at io_timeout 1).
// deployments-100-leases: one host takes 100 volume leases of a VDSM domain (file: one
//   <vol>.lease each; block: slots 1..100 of the `leases` LV), two ways:
//   - vdsm: one registered connection, 100 acquires of one lease each, one after the other, as
//     clusterlock.SANLock.acquire does for each lease (python3-sanlock acquires one resource);
//   - vms: 13 registered connections at once, one acquire of up to 8 leases each (12 x 8 + 4),
//     as libvirt's sanlock plugin starts 13 VMs with their <lease>s (SANLK_MAX_RESOURCES = 8).
//   Daemons alternate ours, real, ours, real... (LEASE_ROUNDS each, default 7); medians.
//   The client is our library (src/client) for both daemons: the same bytes on the socket.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  connect, SanlockClientError, fileDomainLayout, blockDomainLayout, joinDomain, leaseResource, readDomain, writeDomain, type DomainLayout, type Registration,
  type SanlockClient,
} from '../src/client/index.js';
import { startOurDaemon } from '../test/daemon/our-daemon.js';
import { haveRealSanlock, scratchDir, startRealDaemon } from '../test/helpers/real-sanlock.js';
import { median } from './helpers.js';
import type { BenchCase, Row } from './main.js';

type Kind = 'ours' | 'real';

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

// ---------------------------------------------------------------- failover

interface FailoverResult {
  kind: Kind;
  ioTimeout: number;
  hostDeadSeconds: number;
  lastRenewalMs: number;
  hostDeadMs: number;
  host2LastLiveMs: number | null;
  failMs: number | null;
  deadMs: number | null;
  spmMs: number;
  vmMs: number;
  spmAfterHostDeadMs: number;
  vmAfterHostDeadMs: number;
  spmAfterHost2DeadlineMs: number | null;
}

function runDemo(kind: Kind): Promise<FailoverResult> {
  return new Promise((resolve, reject) => {
    const args = ['scripts/demo-failover.mjs', '--json', ...(kind === 'real' ? ['--real'] : [])];
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { err += b; });
    const t = setTimeout(() => p.kill('SIGKILL'), 300_000);
    p.on('close', (code) => {
      clearTimeout(t);
      const json = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !json) {
        reject(new Error(`demo-failover ${kind} exited ${code}: ${err.slice(-1500)}${out.slice(-1500)}`));
        return;
      }
      resolve(JSON.parse(json) as FailoverResult);
    });
  });
}

const sec = (ms: number) => ms / 1000;

async function failover(): Promise<Row[]> {
  if (!haveRealSanlock()) throw new Error('needs /usr/sbin/sanlock');
  const rounds = envInt('FAILOVER_ROUNDS', 2);
  const res: Record<Kind, FailoverResult[]> = { ours: [], real: [] };
  for (let r = 0; r < rounds; r++) {
    const [a, b] = await Promise.all([runDemo('ours'), runDemo('real')]);
    res.ours.push(a);
    res.real.push(b);
  }
  const m = (k: Kind, f: (x: FailoverResult) => number | null) => sec(median(res[k].map(f).filter((x): x is number => x !== null)));
  const row = (metric: string, f: (x: FailoverResult) => number | null, note?: string): Row => ({
    metric, value: m('ours', f), unit: 's', ref: { name: 'sanlock', value: m('real', f) }, ...(note ? { note } : {}),
  });
  const all = (k: Kind, f: (x: FailoverResult) => number) => res[k].map((x) => sec(f(x)).toFixed(1)).join('/');
  const hd = res.ours[0]!.hostDeadSeconds;
  return [
    row('host 1 last renewal (before kill)', (x) => x.lastRenewalMs, 'delta-lease timestamp; t=0 is the SIGKILL'),
    row('host_dead: earliest legal takeover', (x) => x.hostDeadMs, `last renewal + ${hd} s (io_timeout ${res.ours[0]!.ioTimeout})`),
    row('host 2 sees host 1 FAIL', (x) => x.failMs),
    row('host 2 sees host 1 DEAD', (x) => x.deadMs),
    row('host 2 holds SDM (SPM)', (x) => x.spmMs, `ours ${all('ours', (x) => x.spmMs)}, real ${all('real', (x) => x.spmMs)}`),
    row('host 2 holds the VM leases', (x) => x.vmMs, `2 volume leases + 1 xleases VM lease`),
    row('SPM after host_dead', (x) => x.spmAfterHostDeadMs, `ours ${all('ours', (x) => x.spmAfterHostDeadMs)}, real ${all('real', (x) => x.spmAfterHostDeadMs)}; never < 0`),
    row('SPM after host 2\'s own deadline', (x) => x.spmAfterHost2DeadlineMs, 'host 2\'s last_live for host 1 (±0.25 s) + host_dead'),
    row('VM after host_dead', (x) => x.vmAfterHostDeadMs),
    { metric: 'rounds', value: rounds, unit: '', note: 'ours and real run at the same time in each round' },
  ];
}

// ---------------------------------------------------------------- 100 volume leases

const LEASES = 100;
const PER_ACQUIRE = 8; // SANLK_MAX_RESOURCES

interface Side {
  kind: Kind;
  client: SanlockClient;
  file: DomainLayout;
  block: DomainLayout;
  stop(): Promise<void>;
}

async function side(kind: Kind, dir: string): Promise<Side> {
  const opts = { ioTimeout: 1, volumes: LEASES };
  const fileSd = kind === 'ours' ? 'b1000000-0000-4000-a000-000000000001' : 'b1000000-0000-4000-a000-000000000002';
  const blockSd = kind === 'ours' ? 'b2000000-0000-4000-a000-000000000001' : 'b2000000-0000-4000-a000-000000000002';
  const fl = fileDomainLayout(join(dir, 'mnt'), { ...opts, sdUUID: fileSd });
  const bl = blockDomainLayout(join(dir, blockSd), { ...opts, sdUUID: blockSd });
  await writeDomain(fl);
  await writeDomain(bl);
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { recursive: true });
  const d = kind === 'ours' ? await startOurDaemon(runDir) : await startRealDaemon(runDir);
  const client = await connect({ runDir });
  const file = await readDomain(fl.root);
  const block = await readDomain(bl.root);
  if (file.volumes.length !== LEASES || block.volumes.length !== LEASES) throw new Error('domain readback');
  await Promise.all([joinDomain(client, file, 1), joinDomain(client, block, 1)]);
  return { kind, client, file, block, stop: () => d.stop() };
}

type Mode = 'vdsm' | 'vms';

/**
 * REGISTER, retried on a full listen backlog (connect EAGAIN): the real daemon accepts new
 * connections from its main loop, which may still be busy with the clients just closed.
 */
async function register(client: SanlockClient): Promise<Registration> {
  for (let i = 0; ; i++) {
    try {
      return await client.register();
    } catch (e) {
      if (i >= 100 || !(e instanceof SanlockClientError) || e.code !== -11) throw e;
      await sleep(10);
    }
  }
}

/** One measurement: acquire all 100, then release all; ms for each half. */
async function once(s: Side, dom: DomainLayout, mode: Mode): Promise<{ acquire: number; release: number }> {
  const res = dom.volumes.map((v) => leaseResource(dom, v));
  if (mode === 'vdsm') {
    const reg = await register(s.client);
    try {
      const t0 = performance.now();
      for (const r of res) await reg.acquire([r]);
      const t1 = performance.now();
      for (const r of res) await reg.release([r]);
      const t2 = performance.now();
      return { acquire: t1 - t0, release: t2 - t1 };
    } finally {
      reg.close();
    }
  }
  const chunks: (typeof res)[] = [];
  for (let i = 0; i < res.length; i += PER_ACQUIRE) chunks.push(res.slice(i, i + PER_ACQUIRE));
  // registered one after the other, before the clock starts: the real daemon's listen backlog
  // is small, and 13 connects at once get EAGAIN (a VM start registers long before it acquires)
  const regs: Registration[] = [];
  try {
    for (let i = 0; i < chunks.length; i++) regs.push(await register(s.client));
    const t0 = performance.now();
    await Promise.all(chunks.map((c, i) => regs[i]!.acquire(c)));
    const t1 = performance.now();
    await Promise.all(chunks.map((c, i) => regs[i]!.release(c)));
    const t2 = performance.now();
    return { acquire: t1 - t0, release: t2 - t1 };
  } finally {
    for (const r of regs) r.close();
  }
}

async function hundredLeases(): Promise<Row[]> {
  if (!haveRealSanlock()) throw new Error('needs /usr/sbin/sanlock');
  const rounds = envInt('LEASE_ROUNDS', 7);
  const base = scratchDir('bench-deployments');
  const sides: Side[] = [];
  try {
    sides.push(await side('ours', join(base, 'ours')), await side('real', join(base, 'real')));
    const rows: Row[] = [];
    for (const layout of ['file', 'block'] as const) {
      for (const mode of ['vdsm', 'vms'] as const) {
        const t: Record<Kind, { acquire: number[]; release: number[] }> = { ours: { acquire: [], release: [] }, real: { acquire: [], release: [] } };
        // one unmeasured pass each: the first acquire of a lease opens its file in the daemon
        for (const s of sides) await once(s, s[layout], mode);
        for (let r = 0; r < rounds; r++) {
          for (const s of sides) {
            const x = await once(s, s[layout], mode);
            t[s.kind].acquire.push(x.acquire);
            t[s.kind].release.push(x.release);
          }
        }
        const what = mode === 'vdsm' ? '100 acquires of 1, one connection' : '13 connections at once, ≤8 per acquire';
        const where = layout === 'file' ? 'file domain, <vol>.lease each' : 'block domain, leases LV slots 1..100';
        for (const op of ['acquire', 'release'] as const) {
          rows.push({
            metric: `${layout} ${mode}: ${op} 100 volume leases`,
            value: median(t.ours[op]),
            unit: 'ms',
            ref: { name: 'sanlock', value: median(t.real[op]) },
            note: op === 'acquire' ? `${what}; ${where}; median of ${rounds}, alternating` : `ours ${fmtList(t.ours[op])}; real ${fmtList(t.real[op])}`,
          });
        }
      }
    }
    return rows;
  } finally {
    for (const s of sides) await s.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

function fmtList(xs: number[]): string {
  return xs.map((x) => x.toFixed(0)).join('/');
}

export const cases: BenchCase[] = [
  { name: 'deployments-100-leases', run: hundredLeases },
  { name: 'deployments-failover', run: failover },
];
