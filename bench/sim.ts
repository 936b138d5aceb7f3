// Simulator throughput: how many lease operations (acquire/release/convert/request ending in
// success or a sanlock code) and scheduler events one core simulates per wall-clock second, for
// 8 and 64 hosts sharing one lockspace, with the default fault mix. Also how much faster than
// real time the simulated cluster runs.

import { defaultWorldConfig, runWorld } from '../src/sim/world.js';
import type { BenchCase, Row } from './main.js';

async function measure(hosts: number, seeds: number): Promise<Row[]> {
  let ops = 0;
  let events = 0;
  let simSeconds = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  for (let seed = 1; seed <= seeds; seed++) {
    const r = await runWorld(defaultWorldConfig(seed, { machines: hosts, resources: Math.max(3, hosts / 2), engine: 'real', shared: false, faultsUntilSec: 120, healedWorkSec: 30 }));
    ops += r.stats.ops;
    events += r.stats.events;
    simSeconds += r.stats.simSeconds;
    if (!r.ok) failed++;
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const note = `${seeds} seeds, ${failed} with violations`;
  return [
    { metric: `${hosts} hosts: lease ops / s`, value: ops / wall, unit: 'op/s', note },
    { metric: `${hosts} hosts: events / s`, value: events / wall, unit: 'ev/s' },
    { metric: `${hosts} hosts: simulated time / wall time`, value: simSeconds / wall, unit: 'x' },
  ];
}

/** Also usable alone: `node dist/bench/sim.js`. */
export async function run(): Promise<Row[]> {
  return [...(await measure(8, 4)), ...(await measure(64, 1))];
}

export const cases: BenchCase[] = [{ name: 'sim', run }];
