import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostState, HostStateTracker, hostStateName } from '../../src/lease/host-state.js';
import { geometryFor } from '../../src/ondisk/geometry.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { loadVector, lockspaceImage, ManualClock, MIB, TestHost } from './helpers.js';

test('states over time: UNKNOWN → LIVE → FAIL after 8N_o → DEAD after 8N_o + W', async () => {
  const clock = new ManualClock(1000);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS', undefined, 1));
  const h1 = new TestHost(clock, disk, 1, 'host1');
  const h2 = new TestHost(clock, disk, 2, 'host2');
  await h2.delta.acquire();
  await h1.delta.acquire();
  await h1.renewOnce();
  const now = () => clock.monotonicSeconds();
  assert.equal(h1.tracker.state(2, now()), HostState.UNKNOWN, 'no renewal seen yet since we started watching');
  assert.equal(h1.tracker.state(1, now()), HostState.LIVE, 'our own host');
  assert.equal(h1.tracker.state(3, now()), HostState.FREE);
  h1.startRenewing();
  h2.startRenewing();
  await clock.sleep(6000);
  assert.equal(h1.tracker.state(2, now()), HostState.LIVE);
  const [row] = h1.tracker.hosts(now(), 2);
  assert.equal(row?.generation, 1);
  assert.equal(row?.ioTimeout, 1);
  assert.equal(row?.flags, HostState.LIVE);
  assert.deepEqual(h1.tracker.hosts(now()).map((r) => r.hostId), [1, 2]);

  await h2.stopRenewing();
  const killedAt = now();
  let failAt = 0;
  let deadAt = 0;
  while (!deadAt) {
    await clock.sleep(500);
    const s = h1.tracker.state(2, now());
    if (s === HostState.FAIL && !failAt) failAt = now();
    if (s === HostState.DEAD) deadAt = now();
    assert.ok(now() - killedAt < 200, `never DEAD, still ${hostStateName(s)}`);
  }
  const lastLive = h1.tracker.slot(2)!.lastLive;
  assert.ok(failAt - lastLive > 8 && failAt - lastLive <= 10, `FAIL ${failAt - lastLive}s after last change`);
  assert.ok(deadAt - lastLive > 68 && deadAt - lastLive <= 70, `DEAD ${deadAt - lastLive}s after last change`);
  assert.ok(failAt - killedAt >= 6 && failAt - killedAt <= 10, `observed sanlock: FAIL ~7.5 s after kill, got ${failAt - killedAt}`);
  await h1.stopRenewing();
});

test('host events and request examination are triggered by our bit, rate limited', async () => {
  const clock = new ManualClock(1000);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS', undefined, 1));
  const h1 = new TestHost(clock, disk, 1, 'host1');
  const h2 = new TestHost(clock, disk, 2, 'host2');
  await h1.delta.acquire();
  await h2.delta.acquire();
  h1.startRenewing();
  h2.startRenewing();
  await clock.sleep(3000);
  assert.equal(h1.requests, 0);
  h2.delta.setEvent(1, { generation: 1, event: 5, data: 7 });
  await clock.sleep(3000);
  assert.ok(h1.events.length >= 1);
  assert.deepEqual(h1.events[0], { fromHostId: 2, fromGeneration: 1, generation: 1, event: 5, data: 7 });
  assert.equal(h1.requests, 1, 'examine once, then rate limited for set_bitmap_seconds');
  assert.equal(h2.events.length, 0, 'the sender never sees its own event');
  await clock.sleep(10_000);
  // The bit expired after 6 s; the event fields stay but without our bit nothing is delivered.
  const n = h1.events.length;
  await clock.sleep(4000);
  assert.equal(h1.events.length, n);
  assert.ok(h1.requests >= 1 && h1.requests <= 2);
  await h1.stopRenewing();
  await h2.stopRenewing();
});

test('tracker reads the golden bitmap vector: host 2 asks host 1', () => {
  const area = loadVector('ls_512_1M_host2_bitmap');
  const t = new HostStateTracker({ ourHostId: 1, ioTimeout: 1, spaceName: 'LS' });
  const u = t.update(area, geometryFor(512, MIB), 5000);
  assert.deepEqual(u.requesters, [2]);
  assert.equal(u.examineRequests, true);
  assert.deepEqual(u.events, [], 'no event value in that record');
  assert.equal(t.slot(2)?.name, 'hostB');
  assert.equal(t.state(2, 5000), HostState.UNKNOWN);
  assert.equal(t.state(2, 5009), HostState.FAIL, 'not renewing for more than 8 N_o');
  assert.equal(t.state(2, 5069), HostState.DEAD);
  const u2 = t.update(area, geometryFor(512, MIB), 5001);
  assert.equal(u2.examineRequests, false, 'unchanged record: nothing new');
});
