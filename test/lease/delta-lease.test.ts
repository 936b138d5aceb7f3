import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SanlkCode, SanlockError } from '../../src/codes.js';
import { bitmapHostIds, DeltaLease, isFatalRenewalError } from '../../src/lease/delta-lease.js';
import { geometryFor } from '../../src/ondisk/geometry.js';
import { decodeLeader, encodeLeader } from '../../src/ondisk/leader.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import {
  assertSameImage,
  diskFromVector,
  loadVector,
  lockspaceImage,
  ManualClock,
  MIB,
  maskLockspace,
  resourceImage,
  TestHost,
} from './helpers.js';

const HOST1 = 'fa012518-1292-4710-97ac-e2d34b5453df.vm';

function rejectsWith(code: number) {
  return (e: unknown) => e instanceof SanlockError && e.code === code;
}

test('our init images are byte-identical to sanlock direct init', () => {
  assert.ok(lockspaceImage('LS').equals(loadVector('ls_512_1M_init')));
  assert.ok(resourceImage('LS', 'R1').equals(loadVector('res_512_1M_init')));
  assert.ok(lockspaceImage('LS4K', geometryFor(4096, 8 * MIB)).equals(loadVector('ls_4k_8M_init')));
});

test('join a free host_id: waits 2·N_o, 3 reads + 1 write, matches ls_512_1M_host1_joined', async () => {
  const clock = new ManualClock(650);
  const disk = diskFromVector('ls_512_1M_init');
  const dl = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 1, hostName: HOST1, ioTimeout: 1, clock });
  const t0 = clock.monotonicMs();
  const gen = await dl.acquire();
  assert.equal(gen, 1);
  // N_o comes from the free record's io_timeout (10, written by init), not from our -o 1.
  assert.equal(clock.monotonicMs() - t0, 20_000);
  assert.deepEqual(dl.stats.snapshot(), { reads: 3, writes: 1, bytesRead: 4096 + 512 + 512, bytesWritten: 512 });
  assertSameImage(maskLockspace(disk.bytes), maskLockspace(loadVector('ls_512_1M_host1_joined')), 'joined');
  const l = decodeLeader(disk.bytes, 0);
  assert.equal(l.timestamp, 650);
  assert.equal(l.ioTimeout, 1);
});

test('fast reacquire by the same host name: no long wait, generation + 1', async () => {
  const clock = new ManualClock(700);
  const disk = diskFromVector('ls_512_1M_hosts12');
  const b = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 2, hostName: 'hostB', ioTimeout: 1, clock });
  const t0 = clock.monotonicMs();
  assert.equal(await b.acquire(), 2);
  assert.equal(clock.monotonicMs() - t0, 2000, 'only delta_short_delay 2·N_o');
});

test('host_id held under another name: waits host_dead(N_o) then -262 if the owner renewed', async () => {
  const clock = new ManualClock(1000);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS'));
  const owner = new TestHost(clock, disk, 2, 'hostB');
  await owner.delta.acquire();
  owner.startRenewing();
  const c = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 2, hostName: 'hostC', ioTimeout: 1, clock });
  const t0 = clock.monotonicMs();
  await assert.rejects(c.acquire(), rejectsWith(SanlkCode.SANLK_HOSTID_BUSY));
  assert.equal(clock.monotonicMs() - t0, 68_000);
  await owner.stopRenewing();
});

test('host_id of a dead owner: taken after 68 + 2 s with generation + 1 (observed "delay 68")', async () => {
  const clock = new ManualClock(1000);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS'));
  const owner = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 2, hostName: 'hostB', ioTimeout: 1, clock });
  await owner.acquire();
  const c = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 2, hostName: 'hostC', ioTimeout: 1, clock });
  const t0 = clock.monotonicMs();
  assert.equal(await c.acquire(), 2);
  assert.equal(clock.monotonicMs() - t0, 70_000);
  // The old owner's next renewal sees a different owner name/generation.
  await assert.rejects(owner.renew(), rejectsWith(SanlkCode.SANLK_RENEW_OWNER));
});

test('join is abortable while waiting', async () => {
  const clock = new ManualClock(1000);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS'));
  const owner = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 3, hostName: 'a', ioTimeout: 1, clock });
  await owner.acquire();
  const ac = new AbortController();
  const c = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 3, hostName: 'b', ioTimeout: 1, clock });
  const p = c.acquire(ac.signal);
  await clock.sleep(5000);
  ac.abort(new SanlockError(-1, 'stop'));
  await assert.rejects(p, (e: unknown) => e instanceof SanlockError && e.code === -1);
  assert.ok(clock.monotonicMs() < 1_000_000 + 68_000);
});

test('geometry and host_id errors: -223, -225, -230, -231, -226', async () => {
  const clock = new ManualClock();
  const mk = (img: Buffer, hostId = 1, space = 'LS') =>
    new DeltaLease({ disk: new MemDisk('ls', MIB, 512, img), offset: 0, spaceName: space, hostId, hostName: 'h', ioTimeout: 1, clock });
  await assert.rejects(mk(Buffer.alloc(MIB)).acquire(), rejectsWith(SanlkCode.SANLK_LEADER_MAGIC));
  await assert.rejects(mk(lockspaceImage('LS'), 2001).acquire(), rejectsWith(SanlkCode.SANLK_ADDLS_INVALID_HOSTID));
  await assert.rejects(mk(lockspaceImage('LS'), 1, 'OTHER').acquire(), rejectsWith(SanlkCode.SANLK_LEADER_LOCKSPACE));
  const badSs = lockspaceImage('LS');
  encodeLeader({ ...decodeLeader(badSs, 0), sectorSize: 1024 }, badSs, 0);
  await assert.rejects(mk(badSs).acquire(), rejectsWith(SanlkCode.SANLK_LEADER_SECTORSIZE));
  const badAl = lockspaceImage('LS');
  encodeLeader({ ...decodeLeader(badAl, 0), flags: 0x80 }, badAl, 0); // 512 with 8M align
  await assert.rejects(mk(badAl).acquire(), rejectsWith(SanlkCode.SANLK_ADDLS_SIZES));
  const badSum = lockspaceImage('LS');
  badSum[100] = 7; // inside the checksummed part of host 1's record... of host 1; join host 1
  await assert.rejects(mk(badSum).acquire(), rejectsWith(SanlkCode.SANLK_LEADER_CHECKSUM));
  // 4K / 8M lockspace: geometry from host 1's record, host_id 1 sector at 0
  const dl = new DeltaLease({ disk: new MemDisk('l4', 8 * MIB, 4096, loadVector('ls_4k_8M_init')), offset: 0, spaceName: 'LS4K', hostId: 1, hostName: 'h', ioTimeout: 1, clock });
  await dl.acquire();
  assert.equal(dl.geometry?.sectorSize, 4096);
  assert.equal(dl.geometry?.alignSize, 8 * MIB);
});

test('renewal: one full-area read + one sector write; -260 and -261; fatal classification', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS'));
  const dl = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 5, hostName: 'me', ioTimeout: 1, clock });
  await dl.acquire();
  dl.stats.reset();
  await clock.sleep(2000);
  const area = await dl.renew();
  assert.equal(area.length, MIB);
  assert.deepEqual(dl.stats.snapshot(), { reads: 1, writes: 1, bytesRead: MIB, bytesWritten: 512 });
  const rec = decodeLeader(disk.bytes, 4 * 512);
  assert.equal(rec.timestamp, clock.monotonicSeconds());
  assert.equal(dl.lastSuccess, rec.timestamp);
  assert.ok(dl.lastArea?.equals(disk.bytes));

  // Another host changes a byte of our record outside owner/name → -261.
  const tampered = decodeLeader(disk.bytes, 4 * 512);
  encodeLeader({ ...tampered, timestamp: tampered.timestamp + 1 }, disk.bytes, 4 * 512, 47);
  await assert.rejects(dl.renew(), rejectsWith(SanlkCode.SANLK_RENEW_DIFF));
  assert.ok(isFatalRenewalError(SanlkCode.SANLK_RENEW_DIFF));
  // After a failed renewal the byte comparison is skipped: the next one succeeds.
  await dl.renew();
  // Another host took the host_id → -260.
  const cur = decodeLeader(disk.bytes, 4 * 512);
  encodeLeader({ ...cur, ownerGeneration: cur.ownerGeneration + 1, resourceName: 'thief' }, disk.bytes, 4 * 512, 47);
  await assert.rejects(dl.renew(), rejectsWith(SanlkCode.SANLK_RENEW_OWNER));
  assert.ok(isFatalRenewalError(SanlkCode.SANLK_RENEW_OWNER));
  assert.ok(!isFatalRenewalError(SanlkCode.SANLK_AIO_TIMEOUT));
});

test('renewal loop paces at 2N and stops on abort', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS'));
  const dl = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 1, hostName: 'me', ioTimeout: 1, clock });
  await dl.acquire();
  const stamps: number[] = [];
  const ac = new AbortController();
  const done = dl.renewLoop(ac.signal, { onRenewed: (_a, ts) => stamps.push(ts) });
  await clock.sleep(10_000);
  ac.abort();
  assert.equal(await done, 0);
  assert.ok(stamps.length >= 3 && stamps.length <= 5, `renewals in 10 s: ${stamps.length}`);
  for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i]! - stamps[i - 1]! >= 2);
});

test('release: one write, timestamp 0, then the host_id is free for anybody', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS'));
  const dl = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 1, hostName: 'a', ioTimeout: 1, clock });
  await dl.acquire();
  dl.stats.reset();
  await dl.release();
  assert.deepEqual(dl.stats.snapshot(), { reads: 0, writes: 1, bytesRead: 0, bytesWritten: 512 });
  const l = decodeLeader(disk.bytes, 0);
  assert.equal(l.timestamp, 0);
  assert.equal(l.ownerGeneration, 1);
  const other = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 1, hostName: 'b', ioTimeout: 1, clock });
  const t0 = clock.monotonicMs();
  assert.equal(await other.acquire(), 2);
  assert.equal(clock.monotonicMs() - t0, 2000);
});

test('vectors: hostB fast reacquire, hostC after 70 s, set_event → ls_512_1M_host2_event, rem → ls_512_1M_host2_released', async () => {
  const clock = new ManualClock(900);
  const disk = diskFromVector('ls_512_1M_hosts12');
  const b = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 2, hostName: 'hostB', ioTimeout: 1, clock });
  assert.equal(await b.acquire(), 2);
  const c = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 2, hostName: 'hostC', ioTimeout: 1, clock });
  const t0 = clock.monotonicMs();
  assert.equal(await c.acquire(), 3);
  assert.equal(clock.monotonicMs() - t0, 70_000);
  c.setEvent(1, { generation: 1, event: 5, data: 7 });
  assert.throws(() => c.setEvent(1, { generation: 1, event: 6, data: 0 }), (e: unknown) => e instanceof SanlockError && e.code === -16);
  await clock.sleep(2000);
  await c.renew();
  assertSameImage(maskLockspace(disk.bytes), maskLockspace(loadVector('ls_512_1M_host2_event')), 'event');
  assert.deepEqual(bitmapHostIds(disk.bytes, 512 + 256), [1]);
  await c.release();
  assertSameImage(maskLockspace(disk.bytes), maskLockspace(loadVector('ls_512_1M_host2_released')), 'released');
});

test('bitmap bits expire after set_bitmap_seconds; event fields persist', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS'));
  const dl = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 3, hostName: 'a', ioTimeout: 1, clock });
  await dl.acquire();
  dl.setRequestBit(7);
  dl.setRequestBit(3); // our own bit is never set
  await dl.renew();
  assert.deepEqual(bitmapHostIds(disk.bytes, 2 * 512 + 256), [7]);
  dl.setEvent('all', { generation: 0, event: 9, data: 1 }, { replace: true });
  await dl.renew();
  const bits = bitmapHostIds(disk.bytes, 2 * 512 + 256);
  assert.equal(bits.length, 1999);
  assert.ok(!bits.includes(3));
  await clock.sleep(7000);
  await dl.renew();
  assert.deepEqual(bitmapHostIds(disk.bytes, 2 * 512 + 256), []);
  const l = decodeLeader(disk.bytes, 2 * 512);
  assert.deepEqual([l.writeId, l.writeGeneration, l.writeTimestamp], [0, 9, 1]);
  dl.clearEvent();
  await dl.renew();
  assert.equal(decodeLeader(disk.bytes, 2 * 512).writeGeneration, 0);
});

test('set_event CLEAR_HOSTID: clearing one host bit drops it from the next renewal, others stay', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('ls', MIB, 512, lockspaceImage('LS'));
  const dl = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 3, hostName: 'a', ioTimeout: 1, clock });
  await dl.acquire();
  dl.setRequestBit(7);
  dl.setRequestBit(9);
  await dl.renew();
  assert.deepEqual(bitmapHostIds(disk.bytes, 2 * 512 + 256), [7, 9]);
  dl.clearRequestBit(7);
  await dl.renew();
  assert.deepEqual(bitmapHostIds(disk.bytes, 2 * 512 + 256), [9]);
});
