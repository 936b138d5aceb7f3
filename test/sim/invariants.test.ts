// The checker on hand-made histories: each invariant must fire on a history that breaks it and
// stay quiet on the legal neighbour of that history.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DELTA_DISK_MAGIC, emptyLeader, encodeLeader, PAXOS_DISK_MAGIC } from '../../src/ondisk/leader.js';
import { Checker } from '../../src/sim/invariants.js';
import { Incarnation } from '../../src/sim/sim-clock.js';

const SS = 512;
const HD = 68e6;

function make(delta: Map<number, { generation: number; timestamp: number }> = new Map()) {
  let now = 0;
  const c = new Checker({
    hostDeadUs: HD,
    maxSkew: 1e-4,
    sectorSize: SS,
    lockspaceOffset: 0,
    lockspaceSize: 1 << 20,
    resourceAt: new Map([[1 << 20, 0]]),
    now: () => now,
    deltaOnDisk: (h) => delta.get(h) ?? { generation: 0, timestamp: 0 },
  });
  return { c, at: (us: number) => { now = us; } };
}

function sector(magic: number, fields: Record<string, number>): Buffer {
  const b = Buffer.alloc(SS);
  encodeLeader({ ...emptyLeader(), magic, ...fields }, b, 0);
  return b;
}

test('mutual exclusion: EX with anything, or SH with EX, is caught; SH with SH is fine', () => {
  const a = new Incarnation(1, 1);
  const b = new Incarnation(2, 1);
  const ok = make();
  ok.c.grant(a, 1, 0, 'SH', 1, 0);
  ok.c.grant(b, 1, 0, 'SH', 2, 0);
  assert.deepEqual(ok.c.violations, []);
  const bad = make();
  bad.c.grant(a, 1, 0, 'SH', 1, 0);
  bad.c.grant(b, 1, 0, 'EX', 2, 0);
  assert.match(bad.c.violations[0]!, /mutual exclusion/);
  const released = make();
  released.c.grant(a, 1, 0, 'EX', 1, 0);
  released.c.release(a, 1, 0);
  released.c.grant(b, 1, 0, 'EX', 2, 0);
  assert.deepEqual(released.c.violations, []);
});

test('lver: a grant below one that returned before the acquire began is caught', () => {
  const a = new Incarnation(1, 1);
  const b = new Incarnation(2, 1);
  const { c, at } = make();
  at(10);
  c.grant(a, 1, 0, 'SH', 5, 0);
  c.release(a, 1, 0);
  at(20);
  c.grant(b, 1, 0, 'SH', 4, 5); // began before lver 5 was granted: a concurrent acquire, legal
  assert.deepEqual(c.violations, []);
  c.release(b, 1, 0);
  at(30);
  c.grant(b, 1, 0, 'EX', 5, 25);
  assert.match(c.violations[0]!, /lver: r0 granted .* at lver 5, not above 5/);
});

test('lver: the highest lver granted again to the same incarnation is one instance (a late commit rolled the leader back); to another, or below the highest, it is caught', () => {
  const a = new Incarnation(1, 1);
  const b = new Incarnation(2, 1);
  type Grant = [Incarnation, number, number];
  // each grant returns 10 µs after the previous one and began after it
  const run = (grants: Grant[]): string[] => {
    const { c, at } = make();
    grants.forEach(([inc, gen, lver], i) => {
      at(10 * (i + 1));
      c.grant(inc, gen, 0, 'EX', lver, 10 * i + 5);
      c.release(inc, gen, 0);
    });
    return c.violations;
  };
  assert.deepEqual(run([[a, 1, 5], [a, 1, 5]]), []);
  assert.match(run([[a, 1, 5], [a, 2, 5]])[0]!, /not above 5/, 'a new generation is another incarnation');
  assert.match(run([[a, 1, 4], [b, 1, 5], [a, 1, 4]])[0]!, /at lver 4, not above 5/, 'only the highest');
});

test('one owner per committed lver, read from the leader writes that land', () => {
  const a = new Incarnation(1, 1);
  const { c } = make();
  c.onLand(1 << 20, sector(PAXOS_DISK_MAGIC, { lver: 3, ownerId: 1, ownerGeneration: 1, timestamp: 100 }), a, () => 1);
  c.onLand(1 << 20, sector(PAXOS_DISK_MAGIC, { lver: 3, ownerId: 1, ownerGeneration: 1, timestamp: 0 }), a, () => 1);
  c.onLand(1 << 20, sector(PAXOS_DISK_MAGIC, { lver: 3, ownerId: 1, ownerGeneration: 1, timestamp: 100 }), a, () => 1);
  assert.deepEqual(c.violations, []);
  c.onLand(1 << 20, sector(PAXOS_DISK_MAGIC, { lver: 3, ownerId: 2, ownerGeneration: 1, timestamp: 7 }), a, () => 1);
  assert.match(c.violations[0]!, /lver 3 committed for 1\/1 and then for 2\/1/);
});

test('takeover before host_dead after the killed holder\'s last renewal is caught', () => {
  const a = new Incarnation(1, 1);
  const b = new Incarnation(2, 1);
  const delta = new Map([[1, { generation: 1, timestamp: 500 }]]);
  for (const [takeAt, expectBad] of [[HD / 2, true], [HD + 2e6, false]] as const) {
    const { c, at } = make(delta);
    at(1e6);
    c.onLand(0, sector(DELTA_DISK_MAGIC, { ownerId: 1, ownerGeneration: 1, timestamp: 500 }), a, () => 1);
    c.grant(a, 1, 0, 'EX', 1, 0);
    at(2e6);
    c.kill(a, 1, 0);
    at(1e6 + takeAt);
    c.grant(b, 1, 0, 'EX', 2, 1e6 + takeAt - 1);
    if (expectBad) assert.match(c.violations[0]!, /takeover too early/);
    else assert.deepEqual(c.violations, []);
  }
  // a newer generation on the host_id proves the old holder gone: immediate takeover is legal
  const { c, at } = make(new Map([[1, { generation: 2, timestamp: 9 }]]));
  c.grant(a, 1, 0, 'EX', 1, 0);
  c.kill(a, 1, 0);
  at(5e6);
  c.grant(b, 1, 0, 'EX', 2, 4e6);
  assert.deepEqual(c.violations, []);
});

test('host_id owned twice, a generation joined twice, a late watchdog: all caught', () => {
  const a = new Incarnation(3, 1, 1);
  const b = new Incarnation(3, 1, 2);
  const { c, at } = make();
  c.joined(a, 3, 1);
  c.joined(b, 3, 2);
  assert.match(c.violations[0]!, /host_id 3: .* joined while .* still owns it/);
  c.left(a, 3, 1);
  c.left(b, 3, 2);
  c.joined(a, 3, 1);
  assert.match(c.violations[1]!, /generation 1 joined twice/);
  at(1e6);
  c.onLand(2 * SS, sector(DELTA_DISK_MAGIC, { ownerId: 3, ownerGeneration: 2, timestamp: 40 }), b, () => 2);
  at(1e6 + HD - 5e6);
  c.watchdogFired(b, 2);
  assert.equal(c.violations.length, 2);
  at(1e6 + HD + 1e6);
  c.watchdogFired(b, 2);
  assert.match(c.violations[2]!, /watchdog of .* fired .* later than host_dead/);
});

test('liveness: ops still waiting, and errors without a sanlock code, are caught', () => {
  const a = new Incarnation(1, 1);
  const { c, at } = make();
  const done = c.opStart(a, 1, 'acquire r0 EX');
  c.opStart(a, 1, 'acquire r1 EX');
  const bad = c.opStart(a, 1, 'release r2');
  c.opEnd(done, -243);
  c.opEnd(bad, -12345);
  assert.match(c.violations[0]!, /undefined code -12345/);
  at(10);
  c.checkNoOpOlderThan(5, () => true);
  assert.match(c.violations[1]!, /liveness: .* acquire r1 EX .* still waiting/);
  assert.equal(c.violations.length, 2);
});
