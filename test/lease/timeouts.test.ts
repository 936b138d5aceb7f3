import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeTimeouts, deltaAcquireHeldWait, hostDeadSeconds, killGraceSeconds } from '../../src/lease/timeouts.js';

test('spec §1 table for io_timeout 10, W 60', () => {
  const t = computeTimeouts(10);
  assert.equal(t.ioTimeout, 10);
  assert.equal(t.idRenewalSeconds, 20);
  assert.equal(t.idRenewalWarnSeconds, 60);
  assert.equal(t.idRenewalFailSeconds, 80);
  assert.equal(t.hostDeadSeconds, 140);
  assert.equal(t.setBitmapSeconds, 60);
  assert.equal(t.deltaLargeDelay, 80);
  assert.equal(t.deltaAcquireHeldWait, 140);
  assert.equal(t.deltaShortDelay, 20);
  assert.equal(t.renewalWriteTimeout, 140);
  assert.equal(t.renewalReadExtend, 10);
  assert.equal(t.killGraceSeconds, 40);
  assert.equal(t.writeInitIoTimeout, 60);
  assert.equal(t.shRetries, 8);
  assert.deepEqual(t.bounds, {
    deltaAcquireHeldMax: 200, deltaAcquireHeldMin: 140,
    deltaAcquireFreeMax: 50, deltaAcquireFreeMin: 20,
    deltaRenewMax: 20, deltaRenewMin: 0,
    paxosAcquireHeldMax: 210, paxosAcquireHeldMin: 140,
    paxosAcquireFreeMax: 60, paxosAcquireFreeMin: 0,
    requestFinishSeconds: 60,
  });
});

test('spec §1 table for io_timeout 1, W 60 (the vectors\' setting)', () => {
  const t = computeTimeouts(1);
  assert.equal(t.idRenewalSeconds, 2);
  assert.equal(t.idRenewalWarnSeconds, 6);
  assert.equal(t.idRenewalFailSeconds, 8);
  assert.equal(t.hostDeadSeconds, 68);
  assert.equal(t.setBitmapSeconds, 6);
  assert.equal(t.deltaLargeDelay, 8);
  assert.equal(t.deltaAcquireHeldWait, 68);
  assert.equal(t.deltaShortDelay, 2);
  assert.equal(t.renewalWriteTimeout, 68);
  assert.equal(t.renewalReadExtend, 1);
  assert.equal(t.killGraceSeconds, 40);
  assert.equal(t.bounds.paxosAcquireHeldMax, 75);
  assert.equal(t.bounds.deltaAcquireFreeMax, 5);
});

test('kill_grace and watchdog-dependent values', () => {
  assert.equal(killGraceSeconds(60), 40);
  assert.equal(killGraceSeconds(45), 15);
  assert.equal(killGraceSeconds(30), 15);
  assert.equal(killGraceSeconds(29), 0);
  assert.equal(killGraceSeconds(20, 5), 5);
  assert.equal(hostDeadSeconds(10, 30), 110);
  assert.equal(deltaAcquireHeldWait(1, 0), 8, 'max(host_dead, 8N) picks 8N when W is 0');
  assert.equal(computeTimeouts(10, { setBitmapSeconds: 3 }).setBitmapSeconds, 3);
  assert.throws(() => computeTimeouts(0));
});
