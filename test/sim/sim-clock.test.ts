import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Xoshiro128 } from '../../src/sim/prng.js';
import { HostClock, Incarnation, Scheduler } from '../../src/sim/sim-clock.js';

test('xoshiro128** is seeded, reproducible and roughly uniform', () => {
  const a = new Xoshiro128(42);
  const b = new Xoshiro128(42);
  const c = new Xoshiro128(43);
  const sa = Array.from({ length: 8 }, () => a.nextU32());
  const sb = Array.from({ length: 8 }, () => b.nextU32());
  const sc = Array.from({ length: 8 }, () => c.nextU32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  const r = new Xoshiro128(7);
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) {
    const x = r.next();
    assert.ok(x >= 0 && x < 1);
    buckets[Math.floor(x * 10)]++;
  }
  for (const n of buckets) assert.ok(n > 9_500 && n < 10_500, `bucket ${n}`);
});

test('events run in (time, sequence) order and clocks sleep in virtual time', async () => {
  const s = new Scheduler();
  const inc = new Incarnation(1, 1);
  const clk = new HostClock(s, inc, 5000, 1);
  const log: string[] = [];
  const task = async (name: string, ms: number[]): Promise<void> => {
    for (const m of ms) {
      await clk.sleep(m);
      log.push(`${name}@${clk.monotonicMs()}`);
    }
  };
  void task('a', [10, 10, 10]);
  void task('b', [15, 5, 10]);
  void task('c', [20, 0]);
  assert.equal(await s.run(), 'idle');
  assert.deepEqual(log, ['a@5010', 'b@5015', 'c@5020', 'a@5020', 'b@5020', 'c@5020', 'a@5030', 'b@5030']);
  assert.equal(s.nowUs, 30_000);
  assert.equal(clk.monotonicSeconds(), 5);
});

test('a fast clock sleeps less real time; setRate keeps the clock continuous', async () => {
  const s = new Scheduler();
  const inc = new Incarnation(1, 1);
  const fast = new HostClock(s, inc, 0, 1.25);
  void fast.sleep(1000);
  await s.run();
  assert.equal(s.nowUs, 800_000);
  assert.equal(fast.monotonicMs(), 1000);
  fast.setRate(0.8);
  assert.equal(fast.monotonicMs(), 1000);
  void fast.sleep(100);
  await s.run();
  assert.equal(s.nowUs, 925_000);
  assert.equal(fast.monotonicMs(), 1100);
});

test('abort rejects a sleep with the reason and cancels its wake-up', async () => {
  const s = new Scheduler();
  const inc = new Incarnation(1, 1);
  const clk = new HostClock(s, inc, 0, 1);
  const ac = new AbortController();
  const p = clk.sleep(1000, ac.signal);
  s.after(10_000, () => ac.abort(new Error('stop')));
  const got = p.then(() => 'resolved', (e: Error) => e.message);
  await s.run();
  assert.equal(await got, 'stop');
  assert.equal(s.nowUs, 10_000);
  const already = clk.sleep(5, ac.signal).then(() => 'resolved', () => 'rejected');
  assert.equal(await already, 'rejected');
});

test('a paused host wakes late, a dead host never wakes', async () => {
  const s = new Scheduler();
  const p = new Incarnation(1, 1);
  const d = new Incarnation(2, 1);
  const cp = new HostClock(s, p, 0, 1);
  const cd = new HostClock(s, d, 0, 1);
  const log: string[] = [];
  void cp.sleep(100).then(() => log.push(`p woke at ${s.nowUs}`));
  void cd.sleep(100).then(() => log.push('d woke'));
  s.pause(p);
  s.kill(d);
  s.after(500_000, () => s.resume(p), undefined, true);
  await s.run();
  assert.deepEqual(log, ['p woke at 500000']);
});

test('long await chains finish before the next event (microtask drain)', async () => {
  const s = new Scheduler();
  const inc = new Incarnation(1, 1);
  const clk = new HostClock(s, inc, 0, 1);
  const log: string[] = [];
  const deep = async (n: number): Promise<void> => {
    if (n > 0) {
      await Promise.resolve();
      await deep(n - 1);
    }
  };
  void (async () => {
    await clk.sleep(1);
    await deep(5000);
    log.push('deep done');
  })();
  void (async () => {
    await clk.sleep(1);
    log.push('second');
  })();
  s.after(1000, () => log.push('later event'), undefined, true);
  await s.run();
  // Both wake-ups are at the same time; the first one's 10k-step chain completes before the
  // second event is popped, whatever the chain length.
  assert.deepEqual(log, ['deep done', 'second', 'later event']);
});
