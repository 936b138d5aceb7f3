import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codeName, Errno, SanlkCode, SanlockError } from '../../src/codes.js';
import { explain, explainedCodes, explainError, type ExplainContext, formatExplained } from '../../src/lease/explain.js';

const allCodes = [...Object.values(SanlkCode), ...Object.values(Errno).map((e) => -e)];

const fullContext: ExplainContext = {
  lockspace: 'LS', resource: 'R1', hostId: 3, path: '/dev/vg/leases', offset: 1048576,
  leader: { ownerId: 3, ownerGeneration: 5, lver: 7, timestamp: 1234 }, lver: 6, renewedSecondsAgo: 4,
  ioTimeout: 10, maxHosts: 250, sectorSize: 4096, alignSize: 1048576, pid: 4242, expected: 'R1', found: 'R9', operation: 'acquire',
};

test('the example sentence of issue 7, word for word', () => {
  const e = explain(-243, { resource: 'R1', leader: { ownerId: 3, ownerGeneration: 5, lver: 1, timestamp: 99 }, renewedSecondsAgo: 4 });
  assert.equal(e.message, '-243 SANLK_ACQUIRE_IDLIVE: lease R1 is held by host 3 (generation 5), which renewed 4 s ago');
  assert.equal(e.code, -243);
  assert.equal(e.name, 'SANLK_ACQUIRE_IDLIVE');
  assert.match(e.details, /request/);
});

test('every sanlock code and every errno sanlock returns has its own sentence', () => {
  const have = new Set(explainedCodes());
  for (const c of allCodes) assert.ok(have.has(c), `no sentence for ${c} ${codeName(c)}`);
});

test('every sentence names the code, reads cleanly with no context and with a full one', () => {
  for (const c of allCodes) {
    for (const ctx of [{}, fullContext]) {
      const e = explain(c, ctx);
      assert.ok(e.message.startsWith(`${c} ${codeName(c)}: `), e.message);
      assert.ok(e.message.length > `${c} ${codeName(c)}: `.length + 10, `too short: ${e.message}`);
      assert.doesNotMatch(e.message, /undefined|NaN|\[object/, e.message);
      assert.doesNotMatch(e.details, /undefined|NaN|\[object/, e.details);
      assert.match(e.details, /^[A-Z`].*\.$/s, `details of ${c} should be a sentence: ${e.details}`);
    }
  }
});

test('context sharpens the sentences', () => {
  assert.equal(explain(-223, { lockspace: 'LS', path: 'ls.img', offset: 0 }).message, '-223 SANLK_LEADER_MAGIC: there is no lockspace LS at ls.img:0');
  assert.equal(explain(-223, { lockspace: 'LS', resource: 'R1', path: 'r.img', offset: 0 }).message, '-223 SANLK_LEADER_MAGIC: there is no resource lease at r.img:0');
  assert.equal(explain(-226, { lockspace: 'XX', path: 'ls.img', offset: 0, found: 'LS' }).message,
    '-226 SANLK_LEADER_LOCKSPACE: the lockspace at ls.img:0 is named LS, not XX');
  assert.equal(explain(-227, { resource: 'RX', path: 'r.img', offset: 0, found: 'R1' }).message,
    '-227 SANLK_LEADER_RESOURCE: the lease at r.img:0 is for resource R1, not RX');
  assert.equal(explain(-240, { resource: 'R1', leader: { ownerId: 1, ownerGeneration: 1, lver: 4, timestamp: 0 }, lver: 2 }).message,
    '-240 SANLK_ACQUIRE_LVER: lease R1 is at version 4, not the lver 2');
  assert.equal(explain(-231, { hostId: 2001, maxHosts: 2000 }).message,
    '-231 SANLK_ADDLS_INVALID_HOSTID: host_id 2001 is larger than the lockspace allows (max_hosts 2000)');
  assert.equal(explain(-28, { lockspace: 'LS' }).message, '-28 ENOSPC: lockspace LS is not joined on this host (or has failed and is being removed)');
  assert.equal(explain(-17, { resource: 'R1', pid: 7 }).message, '-17 EEXIST: lease R1 is already held on this host (pid 7)');
  assert.equal(explain(-11, { resource: 'R1' }).message, '-11 EAGAIN: lease R1 has live shared (SH) holders on other hosts, so it cannot be held exclusively now');
  assert.equal(explain(-1, { resource: 'R1', pid: 9 }).message, '-1 EPERM: lease R1 is not held by this process (pid 9)');
  assert.equal(explain(-3, { pid: 12 }).message, '-3 ESRCH: process 12 is not registered with the daemon');
  assert.equal(explain(-16, { lockspace: 'LS' }).message, '-16 EBUSY: lockspace LS still has leases held or a command in progress');
  assert.equal(explain(-2, { path: '/nope', operation: 'open' }).message, '-2 ENOENT: /nope does not exist');
  assert.equal(explain(-262, { lockspace: 'LS', hostId: 2, renewedSecondsAgo: 1.6 }).message,
    '-262 SANLK_HOSTID_BUSY: host_id 2 in lockspace LS is in use by another live host, which renewed 2 s ago');
  // -243 without knowing the owner still says something true
  assert.equal(explain(-243).message, '-243 SANLK_ACQUIRE_IDLIVE: the lease is held by another host');
});

test('codes without a sentence still get the name and sanlock_strerror text', () => {
  const e = explain(-299);
  assert.equal(e.name, '-299');
  assert.equal(e.message, '-299: unknown error');
  assert.equal(explain(-4).message, '-4: the system call failed with errno 4');
  assert.equal(explain(0).message, '0: success');
});

test('explainError keeps a SanlockError code and turns anything else into -201', () => {
  assert.equal(explainError(new SanlockError(-229, 'x')).code, -229);
  const e = explainError(new Error('boom'));
  assert.equal(e.code, -201);
  assert.match(e.message, /^-201 SANLK_ERROR: .*\(boom\)$/);
  assert.equal(formatExplained(explain(-202, { ioTimeout: 10 })).split('\n').length, 2);
  assert.match(formatExplained(explain(-202, { ioTimeout: 10 })), /^-202 SANLK_AIO_TIMEOUT: storage I\/O did not complete within io_timeout \(10 s\)\n {2}The disk/);
});
