import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno, SanlkCode, SanlockError } from '../../src/codes.js';
import { acquireEx, acquireSh, convertExToSh, convertShToEx, releaseSh, shHolderLive } from '../../src/lease/shared-mode.js';
import { DBLOCK_FL_RELEASED, decodeDblock, decodeModeBlock, MBLOCK_SHARED } from '../../src/ondisk/dblock.js';
import { encodeLeader, LFL_SHORT_HOLD } from '../../src/ondisk/leader.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { FakeView, leaderAt, ManualClock, MIB, paxosFor, resourceImage } from './helpers.js';

function code(c: number) {
  return (e: unknown) => e instanceof SanlockError && e.code === c;
}
const sector = (h: number) => (2 + h - 1) * 512;

test('SH acquire leaves the leader free with lver bumped; SH release is one sector write', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const p = paxosFor(disk, 3, 1, clock, new FakeView());
  await acquireSh(p);
  const l = leaderAt(disk);
  assert.equal(l.timestamp, 0);
  assert.equal(l.lver, 1);
  assert.equal(l.flags & LFL_SHORT_HOLD, 0, 'SHORT_HOLD cleared when the leader is freed');
  assert.deepEqual(decodeModeBlock(disk.bytes, sector(3)), { flags: MBLOCK_SHARED, generation: 1 });
  p.stats.reset();
  await releaseSh(p);
  assert.deepEqual({ r: p.stats.reads, w: p.stats.writes }, { r: 0, w: 1 });
  assert.deepEqual(decodeModeBlock(disk.bytes, sector(3)), { flags: 0, generation: 0 });
  assert.equal(decodeDblock(disk.bytes, sector(3)).flags & DBLOCK_FL_RELEASED, DBLOCK_FL_RELEASED);
});

test('SH acquire meeting a live SHORT_HOLD retries 8 times, then -246', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const view = new FakeView();
  const other = paxosFor(disk, 2, 1, clock, view);
  await other.acquire({ shared: true }); // stuck in the middle of its SH acquire
  assert.equal(leaderAt(disk).flags & LFL_SHORT_HOLD, LFL_SHORT_HOLD);
  let ts = 500;
  let reads = 0;
  view.readDeltaRecord = async () => {
    reads++;
    return { ...(await new FakeView().readDeltaRecord('LS', 2)), ownerId: 2, ownerGeneration: 1, timestamp: ts++ };
  };
  const p = paxosFor(disk, 1, 1, clock, view);
  await assert.rejects(acquireSh(p), code(SanlkCode.SANLK_ACQUIRE_SHRETRY));
  assert.equal(reads, 2 * 9, '1 attempt + 8 retries, two owner reads each');
  // Without SHORT_HOLD an EX holder gives -243 at once, no retries.
  encodeLeader({ ...leaderAt(disk), flags: leaderAt(disk).flags & ~LFL_SHORT_HOLD }, disk.bytes, 0);
  reads = 0;
  await assert.rejects(acquireSh(p), code(SanlkCode.SANLK_ACQUIRE_IDLIVE));
  assert.equal(reads, 2);
});

test('EX with a live SH holder → EX released again and -EAGAIN; with a dead one → its sector zeroed', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const view = new FakeView();
  const sh = paxosFor(disk, 2, 1, clock, view);
  await acquireSh(sh);
  view.snapshots.set(2, { ownerId: 2, generation: 1, timestamp: 100, ioTimeout: 1, firstCheck: 90, lastLive: 100, lastCheck: 100 });
  const ex = paxosFor(disk, 1, 1, clock, view);
  await assert.rejects(acquireEx(ex), code(-Errno.EAGAIN));
  assert.equal(ex.held, false);
  assert.equal(leaderAt(disk).timestamp, 0, 'EX given back');
  assert.equal(leaderAt(disk).lver, 2);
  assert.equal(decodeModeBlock(disk.bytes, sector(2)).flags, MBLOCK_SHARED, 'live holder untouched');

  clock.advance(70_000); // host 2 silent for more than host_dead
  view.snapshots.set(2, { ownerId: 2, generation: 1, timestamp: 100, ioTimeout: 1, firstCheck: 90, lastLive: 100, lastCheck: 170 });
  const l = await acquireEx(ex);
  assert.equal(l.lver, 3);
  assert.ok(disk.bytes.subarray(sector(2), sector(2) + 512).equals(Buffer.alloc(512)), 'dead holder cleared');
});

test('shHolderLive: only positive evidence of death counts', () => {
  const view = new FakeView();
  assert.equal(shHolderLive(view, 'LS', 4, 1, 1000, 1), true, 'no information → live');
  view.snapshots.set(4, { ownerId: 4, generation: 2, timestamp: 5, ioTimeout: 1, firstCheck: 1, lastLive: 5, lastCheck: 999 });
  assert.equal(shHolderLive(view, 'LS', 4, 1, 10, 1), false, 'newer generation');
  assert.equal(shHolderLive(view, 'LS', 4, 2, 10, 1), true);
  assert.equal(shHolderLive(view, 'LS', 4, 2, 74, 1), false, 'silent > 68 s');
  view.snapshots.set(4, { ownerId: 4, generation: 2, timestamp: 0, ioTimeout: 1, firstCheck: 1, lastLive: 5, lastCheck: 9 });
  assert.equal(shHolderLive(view, 'LS', 4, 2, 10, 1), false, 'host_id free');
  view.snapshots.set(4, { ownerId: 4, generation: 2, timestamp: 3, ioTimeout: 1, firstCheck: 1, lastLive: 1, lastCheck: 60 });
  assert.equal(shHolderLive(view, 'LS', 4, 2, 60, 1), true, 'never seen renewing but not for long');
  assert.equal(shHolderLive(view, 'LS', 4, 2, 70, 1), false, 'never seen renewing for > host_dead');
});

test('convert SH→EX alone, EX→SH, and SH→EX refused while another live SH holder exists', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const view = new FakeView();
  const a = paxosFor(disk, 1, 1, clock, view);
  await acquireSh(a);
  const l = await convertShToEx(a);
  assert.equal(l.ownerId, 1);
  assert.equal(a.held, true);
  assert.equal(a.shHeld, false);
  assert.deepEqual(decodeModeBlock(disk.bytes, sector(1)), { flags: 0, generation: 0 });
  assert.equal(decodeDblock(disk.bytes, sector(1)).lver, 2);

  a.setLvb(Buffer.from('v1'));
  await convertExToSh(a);
  assert.equal(a.shHeld, true);
  assert.equal(a.held, false);
  assert.equal(leaderAt(disk).timestamp, 0);
  assert.deepEqual(decodeModeBlock(disk.bytes, sector(1)), { flags: MBLOCK_SHARED, generation: 1 });
  assert.equal(disk.bytes.toString('latin1', 2002 * 512, 2002 * 512 + 2), 'v1');

  const b = paxosFor(disk, 2, 1, clock, view);
  await acquireSh(b);
  view.snapshots.set(2, { ownerId: 2, generation: 1, timestamp: 100, ioTimeout: 1, firstCheck: 90, lastLive: 100, lastCheck: 100 });
  await assert.rejects(convertShToEx(a), code(-Errno.EAGAIN));
  assert.equal(a.shHeld, true, 'SH kept');
  assert.equal(a.held, false);
  assert.equal(leaderAt(disk).timestamp, 0);
  assert.equal(decodeModeBlock(disk.bytes, sector(1)).flags, MBLOCK_SHARED, 'our SH mode block was kept through the ballot');
  await releaseSh(b);
  const l2 = await convertShToEx(a);
  assert.equal(l2.ownerId, 1);
});
