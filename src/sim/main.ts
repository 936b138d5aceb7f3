// Simulator CLI.
//
//   npm run sim -- --seeds 1000 --hosts 8            sweep seeds 1..1000, print failures
//   npm run sim -- --seed 42 --hosts 8 --trace       replay one seed, print its whole trace
//
// Options: --from N (first seed of a sweep, default 1), --resources N, --engine real|model,
// --no-sh (EX only), --no-faults, --faults-until S (seconds of faults, default 200),
// --io (trace every landed lease write), --bug NAME (a deliberately broken paxos variant:
// skipPhase2Read | shortHostDeadWait | commitBeforePhase2 | ignoreMbalAbort), --stop (stop a
// sweep at the first failure), --reorder (a host's hung write may land after its newer write to
// the same sector). A replay prints the same bytes every time for the same options.
import { SanlockError } from '../codes.js';
import type { PaxosBugs } from '../lease/paxos-lease.js';
import { defaultDiskProfile } from './sim-disk.js';
import { defaultWorldConfig, formatFailure, noFaults, runWorld, type WorldConfig } from './world.js';

export const BUG_NAMES = ['skipPhase2Read', 'shortHostDeadWait', 'commitBeforePhase2', 'ignoreMbalAbort'] as const;

export interface CliOptions {
  seed: number | undefined;
  seeds: number;
  from: number;
  trace: boolean;
  stop: boolean;
  config: (seed: number) => WorldConfig;
  replayArgs: (seed: number) => string;
}

export function parseArgs(args: string[]): CliOptions {
  const get = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const num = (name: string, dflt: number): number => {
    const v = get(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new SanlockError(-22, `${name} wants a non-negative integer, got ${v}`);
    return n;
  };
  const hosts = num('--hosts', 4);
  const resources = num('--resources', 3);
  const engine = get('--engine') ?? 'real';
  if (engine !== 'real' && engine !== 'model') throw new SanlockError(-22, `--engine real|model, got ${engine}`);
  const bug = get('--bug');
  if (bug !== undefined && !(BUG_NAMES as readonly string[]).includes(bug)) throw new SanlockError(-22, `--bug ${BUG_NAMES.join('|')}, got ${bug}`);
  const paxosBugs: PaxosBugs | undefined = bug ? { [bug]: true } : undefined;
  const faultsUntilSec = num('--faults-until', 200);
  const trace = args.includes('--trace');
  const io = args.includes('--io');
  const shared = !args.includes('--no-sh');
  const faults = args.includes('--no-faults');
  const reorder = args.includes('--reorder');
  const passOn = args.filter((a, i) => !['--seeds', '--from', '--seed', '--stop'].includes(a) && !['--seeds', '--from', '--seed'].includes(args[i - 1] ?? ''));
  return {
    seed: get('--seed') === undefined ? undefined : num('--seed', 0),
    seeds: num('--seeds', 0),
    from: num('--from', 1),
    trace,
    stop: args.includes('--stop'),
    config: (seed) => defaultWorldConfig(seed, {
      machines: hosts, resources, engine, paxosBugs, modelFaults: paxosBugs, faultsUntilSec, fullTrace: trace, ioTrace: io, shared,
      ...(faults ? { faults: noFaults } : {}),
      ...(reorder ? { disk: { ...defaultDiskProfile, reorder: true } } : {}),
    }),
    replayArgs: (seed) => ['--seed', String(seed), ...passOn.filter((a) => a !== '--trace'), '--trace'].join(' '),
  };
}

export async function main(args: string[], out: (s: string) => void): Promise<number> {
  const o = parseArgs(args);
  if (o.seed !== undefined) {
    const r = await runWorld(o.config(o.seed));
    if (o.trace) out(`${r.trace.join('\n')}\n`);
    if (!r.ok) out(`${formatFailure(r, o.replayArgs(o.seed))}\n`);
    out(`seed ${o.seed}: ${r.ok ? 'ok' : 'FAILED'} ${JSON.stringify(r.stats)}\n`);
    return r.ok ? 0 : 1;
  }
  if (o.seeds === 0) {
    out('usage: sim --seeds N [--from S] | --seed S [--trace]  [--hosts N] [--resources N] [--engine real|model] [--no-sh] [--no-faults] [--bug NAME] [--io] [--stop]\n');
    return 2;
  }
  let failed = 0;
  let events = 0;
  let ops = 0;
  const t0 = process.hrtime.bigint();
  for (let seed = o.from; seed < o.from + o.seeds; seed++) {
    const r = await runWorld(o.config(seed));
    events += r.stats.events;
    ops += r.stats.ops;
    if (!r.ok) {
      failed++;
      out(`${formatFailure({ ...r, trace: r.trace.slice(-40) }, o.replayArgs(seed))}\n`);
      if (o.stop) break;
    }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  out(`${o.seeds} seeds from ${o.from}: ${failed} failed; ${events} events, ${ops} lease ops in ${secs.toFixed(1)} s\n`);
  return failed === 0 ? 0 : 1;
}

// Run only as the entry point (tests import main()).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2), (s) => process.stdout.write(s));
}
