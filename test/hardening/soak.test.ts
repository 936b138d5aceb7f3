// Issue 9 item 3 in CI: one minute of the devcount-style soak (test/soak/soak.ts) on three
// hosts — our daemon, the real sanlock, our daemon — with client kills, a daemon kill and
// storage faults; zero mutual exclusion violations allowed, and enough work must have happened
// for that to mean something. `npm run soak` is the 10-minute version. SOAK_SEED reproduces a run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { haveRealSanlock } from '../helpers/real-sanlock.js';
import { pyAvailable } from '../daemon/our-daemon.js';
import { formatStats, runSoak } from '../soak/soak.js';

const skip = !pyAvailable() || !haveRealSanlock() ? 'python3-sanlock or sanlock missing' : false;
const seed = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);

test('the oracle catches overlaps: holders that skip the lease are reported', { skip, timeout: 60_000 }, async () => {
  const s = await runSoak({ minutes: 0.15, seed, config: 'ours', hosts: 2, noLocking: true });
  assert.ok(s.violations.length > 0, `no violation found without locking:\n${formatStats(s)}`);
});

test(`1-minute soak, ours+real+ours, zero violations (SOAK_SEED=${seed})`, { skip, timeout: 180_000 }, async () => {
  const s = await runSoak({ minutes: 1, seed, config: 'mixed', log: (l) => console.log(`# ${l}`) });
  console.log(formatStats(s).replace(/^/gm, '# '));
  assert.deepEqual(s.violations, [], formatStats(s));
  for (const [id, h] of Object.entries(s.hosts)) {
    assert.ok(h.checkedWrites > 100, `host ${id} did too little work: ${h.checkedWrites} checked writes`);
  }
  assert.ok(s.takeovers > 20, `only ${s.takeovers} takeovers between hosts`);
  assert.ok(s.clientsKilled > 10, `only ${s.clientsKilled} clients killed`);
  assert.ok(s.daemonsKilled >= 1, 'no daemon was killed');
  assert.ok(s.faultsInjected >= 3, `only ${s.faultsInjected} faults injected`);
  assert.equal(s.holderCrashes, 0, 'holder processes ended on their own');
});
