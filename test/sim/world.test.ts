// The simulator as a safety test of src/lease: seeded sweeps that must stay clean, replay
// determinism, and deliberately broken variants (of the paxos code and of the fencing model)
// that the checker must catch within a bounded number of seeds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SanlockError } from '../../src/codes.js';
import type { PaxosBugs } from '../../src/lease/paxos-lease.js';
import type { LeaseEngine } from '../../src/sim/engines.js';
import { main } from '../../src/sim/main.js';
import { defaultDiskProfile } from '../../src/sim/sim-disk.js';
import { defaultWorldConfig, fencingFaults, formatFailure, runWorld, type WorldConfig, type WorldResult } from '../../src/sim/world.js';

async function sweep(from: number, count: number, over: Partial<WorldConfig>): Promise<WorldResult[]> {
  const failures: WorldResult[] = [];
  for (let seed = from; seed < from + count; seed++) {
    const r = await runWorld(defaultWorldConfig(seed, over));
    if (!r.ok) failures.push(r);
  }
  return failures;
}

function report(failures: WorldResult[]): string {
  return failures.map((f) => formatFailure({ ...f, trace: f.trace.slice(-30) }, `--seed ${f.seed}`)).join('\n\n');
}

/** First seed in [1, limit] for which the checker reports a violation, or 0. */
async function firstCaught(limit: number, over: Partial<WorldConfig>): Promise<{ seed: number; violation: string }> {
  for (let seed = 1; seed <= limit; seed++) {
    const r = await runWorld(defaultWorldConfig(seed, over));
    if (!r.ok) return { seed, violation: r.violations[0]! };
  }
  return { seed: 0, violation: '' };
}

test('sweep: real lease engine, EX only, all faults — no violation', async () => {
  const failures = await sweep(1, 100, { engine: 'real', shared: false });
  assert.equal(failures.length, 0, report(failures));
});

test('sweep: model engine, EX + SH + convert, all faults — no violation', async () => {
  const failures = await sweep(1, 60, { engine: 'model', shared: true });
  assert.equal(failures.length, 0, report(failures));
});

test('sweep: 8 hosts on the real engine, EX only', async () => {
  const failures = await sweep(1000, 10, { engine: 'real', shared: false, machines: 8, resources: 4 });
  assert.equal(failures.length, 0, report(failures));
});

test('the same seed replays byte for byte (trace and storage), in-process and through the CLI', async () => {
  const cfg = defaultWorldConfig(7, { fullTrace: true, ioTrace: true, shared: false });
  const a = await runWorld(cfg);
  const b = await runWorld({ ...cfg });
  assert.ok(a.trace.length > 500, `trace has ${a.trace.length} lines`);
  assert.equal(a.trace.join('\n'), b.trace.join('\n'));
  assert.equal(a.storageDigest, b.storageDigest);
  assert.deepEqual(a.stats, b.stats);
  const c = await runWorld(defaultWorldConfig(8, { fullTrace: true, ioTrace: true, shared: false }));
  assert.notEqual(c.trace.join('\n'), a.trace.join('\n'), 'another seed gives another run');
  const outs: string[] = [];
  for (let i = 0; i < 2; i++) {
    let s = '';
    const code = await main(['--seed', '5', '--hosts', '3', '--trace', '--no-sh'], (x) => { s += x; });
    assert.equal(code, 0, s.slice(-2000));
    outs.push(s);
  }
  assert.equal(outs[0], outs[1]);
  assert.match(outs[0]!, /seed 5: ok/);
  // a separate process prints the very same bytes (no state leaks between runs of a process)
  const child = execFileSync(process.execPath, [fileURLToPath(new URL('../../src/sim/main.js', import.meta.url)), '--seed', '5', '--hosts', '3', '--trace', '--no-sh'], { encoding: 'utf8' });
  assert.equal(child, outs[0]);
});

for (const bug of ['skipPhase2Read', 'commitBeforePhase2', 'ignoreMbalAbort', 'shortHostDeadWait'] as Array<keyof PaxosBugs>) {
  test(`broken paxos (${bug}) is caught within 30 seeds, real engine and model`, async () => {
    for (const engine of ['real', 'model'] as const) {
      const got = await firstCaught(30, { engine, shared: false, paxosBugs: { [bug]: true }, modelFaults: { [bug]: true } });
      assert.ok(got.seed > 0, `${engine}: ${bug} not caught in 30 seeds`);
      assert.match(got.violation, /mutual exclusion|committed for|takeover too early|lver/);
    }
  });
}

test('broken fencing is caught: no watchdog, a clock far slower or faster than assumed', async () => {
  const base: Partial<WorldConfig> = { shared: false, faults: fencingFaults, faultsUntilSec: 400 };
  const noWd = await firstCaught(40, { ...base, breakFencing: { noWatchdog: true } });
  assert.ok(noWd.seed > 0, 'missing watchdog not caught');
  assert.match(noWd.violation, /mutual exclusion|takeover too early/);
  const slow = await firstCaught(40, { ...base, breakFencing: { rogueClockRate: 0.9 } });
  assert.ok(slow.seed > 0, 'slow clock not caught');
  assert.match(slow.violation, /later than host_dead|takeover too early/);
  const fast = await firstCaught(40, { ...base, breakFencing: { rogueClockRate: 1.1 } });
  assert.ok(fast.seed > 0, 'fast clock not caught');
  assert.match(fast.violation, /takeover too early|later than host_dead|mutual exclusion/);
});

test('liveness: an acquire that never returns, or an error without a sanlock code, is reported', async () => {
  const hang = (e: LeaseEngine): LeaseEngine =>
    ({ ...bindAll(e), acquire: (r, mode) => (r.index === 0 ? new Promise<number>(() => {}) : e.acquire(r, mode)) });
  const stuck = await runWorld(defaultWorldConfig(3, { shared: false, wrapEngine: hang }));
  assert.equal(stuck.ok, false);
  assert.match(stuck.violations.join('\n'), /liveness: h\d\.\d+\/g\d+ acquire r0 .* still waiting/);

  const bad = (e: LeaseEngine): LeaseEngine => ({ ...bindAll(e), release: async () => { throw new TypeError('oops'); } });
  const r = await runWorld(defaultWorldConfig(3, { shared: false, wrapEngine: bad }));
  assert.equal(r.ok, false);
  assert.match(r.violations[0]!, /failed without a sanlock code: TypeError: oops/);
  assert.ok(new SanlockError(-243) instanceof SanlockError);
});

/** A plain object with the engine's methods bound, so tests can override one of them. */
function bindAll(e: LeaseEngine): LeaseEngine {
  return {
    get note() { return e.note; },
    acquire: (r, m) => e.acquire(r, m),
    release: (r) => e.release(r),
    convert: (r, to) => e.convert(r, to),
    request: (r) => e.request(r),
    examine: (h) => e.examine(h),
    abandon: (r) => e.abandon(r),
    mode: (r) => e.mode(r),
  };
}

test('sweep: real lease engine with SH and convert', async () => {
  const failures = await sweep(1, 100, { engine: 'real', shared: true });
  assert.equal(failures.length, 0, report(failures));
});

test('seeds found by a long sweep stay fixed: a timed-out clear of a dead SH holder lands late (9203628); late commits roll the leader back (9202547, 9204691)', async () => {
  for (const seed of [9203628, 9202547, 9204691]) {
    const failures = await sweep(seed, 1, { engine: 'real', shared: true });
    assert.equal(failures.length, 0, report(failures));
  }
});

test('seeds found with a reordering device (--reorder) stay fixed: a stale write of a host to its own sector never lands after its newer one', async () => {
  for (const seed of [9900085, 9900231, 9900832, 9900887]) {
    const failures = await sweep(seed, 1, { engine: 'real', shared: true, disk: { ...defaultDiskProfile, reorder: true } });
    assert.equal(failures.length, 0, report(failures));
  }
});
