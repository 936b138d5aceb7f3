// Regression tests for safety bugs the simulator found in src/lease (SH holders and grants made
// by another host's commit, failed converts, a chosen value erased by a later phase 1). Every
// interleaving is scripted: a hook on one host's n-th read or write runs another host's whole
// operation at that point, so the tests are deterministic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno, SanlkCode, SanlockError } from '../../src/codes.js';
import { IoStats } from '../../src/lease/io.js';
import { type LockspaceView, PaxosLease } from '../../src/lease/paxos-lease.js';
import { acquireEx, acquireSh, convertExToSh, convertShToEx, releaseSh } from '../../src/lease/shared-mode.js';
import { DBLOCK_FL_RELEASED, decodeDblock, decodeModeBlock, MBLOCK_SHARED } from '../../src/ondisk/dblock.js';
import type { Disk } from '../../src/storage/disk.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { FakeView, leaderAt, ManualClock, MIB, resourceImage, SeededRandom } from './helpers.js';

function code(c: number) {
  return (e: unknown) => e instanceof SanlockError && e.code === c;
}
const sector = (h: number) => (2 + h - 1) * 512;
const ioError = () => new SanlockError(-Errno.EIO, 'scripted EIO');

type WriteFault = 'lost' | 'landed' | 'late';

/**
 * One host's path to the shared MemDisk. `onRead`/`onWrite` run before the n-th read/write
 * (counted from 1) and may run other hosts' operations or throw; `faults` make a write fail
 * (lost, landed, or — 'late' — lost now and landed by `landLate()`).
 */
class HookDisk implements Disk {
  readonly path = 'hook';
  reads = 0;
  writes = 0;
  onRead = new Map<number, () => Promise<void>>();
  onWrite = new Map<number, () => Promise<void>>();
  faults = new Map<number, WriteFault>();
  private late: { offset: number; data: Buffer }[] = [];
  constructor(readonly mem: MemDisk) {}
  async read(o: number, l: number, t: number): Promise<Buffer> {
    const h = this.onRead.get(++this.reads);
    if (h) await h();
    return this.mem.read(o, l, t);
  }
  async write(o: number, d: Buffer, t: number): Promise<void> {
    const n = ++this.writes;
    const h = this.onWrite.get(n);
    if (h) await h();
    const f = this.faults.get(n);
    if (f === 'late') this.late.push({ offset: o, data: Buffer.from(d) });
    if (f === 'lost' || f === 'late') throw new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, 'write timeout');
    await this.mem.write(o, d, t);
    if (f === 'landed') throw new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, 'write timeout (it landed)');
  }
  /** The writes that timed out with 'late' land now. */
  async landLate(): Promise<void> {
    for (const w of this.late.splice(0)) await this.mem.write(w.offset, w.data, 1000);
  }
  async close(): Promise<void> {}
}

function host(disk: Disk, hostId: number, clock: ManualClock, view: LockspaceView = new FakeView()): PaxosLease {
  return new PaxosLease(
    { hostId, generation: 1, ioTimeout: 1, clock, random: new SeededRandom(hostId * 13), lockspace: view, stats: new IoStats() },
    { spaceName: 'LS', resourceName: 'R1', disks: [{ disk, offset: 0 }] },
  );
}

function world() {
  const clock = new ManualClock(100);
  const mem = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  return { clock, mem };
}

test('B between phases, A commits B\'s value, C holds SH: B\'s grant (by another host) still sees C → -EAGAIN', async () => {
  const { clock, mem } = world();
  const c = host(mem, 3, clock);
  await acquireSh(c); // lver 1, C's mode block SHARED
  const a = host(mem, 1, clock);
  const bDisk = new HookDisk(mem);
  const b = host(bDisk, 2, clock);
  // B's reads on a free lease: #1 whole area, #2 phase 1, #3 phase 2. Before #3 (B has written
  // its phase-2 dblock), A runs a whole acquire: it adopts B's value and commits it for B.
  let aResult: unknown;
  bDisk.onRead.set(3, async () => {
    aResult = await a.acquire().catch((e: unknown) => e);
  });
  await assert.rejects(acquireEx(b), code(-Errno.EAGAIN));
  assert.ok(aResult instanceof SanlockError && aResult.code === SanlkCode.SANLK_ACQUIRE_OTHER, `A got ${String(aResult)}`);
  assert.equal(b.grantedByOther, true, 'B returned through "lver committed for us"');
  assert.equal(b.lastBallot, undefined, 'no ballot of B finished');
  assert.deepEqual(b.sharedHolders, [3]);
  assert.equal(b.held, false, 'EX given back');
  const l = leaderAt(mem);
  assert.deepEqual({ lver: l.lver, owner: l.ownerId, writer: l.writeId }, { lver: 2, owner: 2, writer: 1 });
  assert.equal(decodeDblock(mem.bytes, sector(2)).flags & DBLOCK_FL_RELEASED, DBLOCK_FL_RELEASED, 'B marked its dblock RELEASED');
  assert.deepEqual(decodeModeBlock(mem.bytes, sector(3)), { flags: MBLOCK_SHARED, generation: 1 }, 'C keeps SH');
});

test('grant by another host with no ballot read in this call: one extra read finds the SH holder', async () => {
  const { clock, mem } = world();
  const c = host(mem, 3, clock);
  await acquireSh(c); // lver 1
  await host(mem, 4, clock).acquire(); // X = host 4 holds EX at lver 2 (FakeView: its host_id is free → dead)
  // B's first acquire (lver 3) dies after its phase-2 write: reads #1 area, #2 leader, #3 phase 1, #4 phase 2.
  const bDisk = new HookDisk(mem);
  const bView = new FakeView();
  const b = host(bDisk, 2, clock, bView);
  bDisk.onRead.set(4, async () => {
    throw ioError();
  });
  await assert.rejects(b.acquire(), code(-Errno.EIO));
  assert.equal(b.needRetract, true);
  assert.equal(decodeDblock(mem.bytes, sector(2)).inp, 2, 'B accepted its own value for lver 3');
  // B tries again. While B checks owner X's delta lease (before any ballot of this call), A's
  // acquire adopts B's accepted value and commits lver 3 for B.
  const a = host(mem, 1, clock);
  let aResult: unknown;
  bView.readDeltaRecord = async (s, h) => {
    aResult = await a.acquire().catch((e: unknown) => e);
    return new FakeView().readDeltaRecord(s, h);
  };
  b.stats.reset();
  await assert.rejects(acquireEx(b), code(-Errno.EAGAIN));
  assert.ok(aResult instanceof SanlockError && aResult.code === SanlkCode.SANLK_ACQUIRE_OTHER);
  assert.equal(b.grantedByOther, true);
  assert.deepEqual(b.sharedHolders, [3]);
  // acquire: area + leader + the extra dblock-area read; acquireEx: C's mode block, then the
  // release (our dblock RELEASED, leader read: written by A, so left as is).
  assert.deepEqual({ r: b.stats.reads, w: b.stats.writes }, { r: 5, w: 1 });
  assert.deepEqual(decodeModeBlock(mem.bytes, sector(3)), { flags: MBLOCK_SHARED, generation: 1 });
});

test('plain free EX acquire stays 6 I/Os; the SH-holder check costs no read when there is none', async () => {
  const { clock, mem } = world();
  const p = host(mem, 1, clock);
  await acquireEx(p);
  assert.deepEqual({ r: p.stats.reads, w: p.stats.writes }, { r: 3, w: 3 });
  assert.deepEqual(p.sharedHolders, []);
  assert.equal(p.grantedByOther, false);
});

test('failed SH→EX convert (live SH holder): dblock RELEASED, our SHARED mode block kept, leader freed', async () => {
  const { clock, mem } = world();
  const view = new FakeView();
  const a = host(mem, 1, clock, view);
  const b = host(mem, 2, clock, view);
  await acquireSh(a);
  await acquireSh(b);
  await assert.rejects(convertShToEx(a), code(-Errno.EAGAIN));
  assert.deepEqual({ sh: a.shHeld, ex: a.held, retract: a.needRetract }, { sh: true, ex: false, retract: false });
  assert.equal(decodeDblock(mem.bytes, sector(1)).flags & DBLOCK_FL_RELEASED, DBLOCK_FL_RELEASED);
  assert.deepEqual(decodeModeBlock(mem.bytes, sector(1)), { flags: MBLOCK_SHARED, generation: 1 });
  assert.equal(leaderAt(mem).timestamp, 0);
  // The SH hold is real: an EX acquirer is refused because of us.
  const x = host(mem, 3, clock, view);
  await releaseSh(b);
  await assert.rejects(acquireEx(x), (e: unknown) => e instanceof SanlockError && e.code === -Errno.EAGAIN && String(e.details?.sharedHolders) === '1');
});

test('failed SH→EX convert after phase 2 (I/O error): SH kept, nothing of the ballot left', async () => {
  const { clock, mem } = world();
  const aDisk = new HookDisk(mem);
  const a = host(aDisk, 1, clock);
  await acquireSh(a);
  // convert: reads #1 area, #2 phase 1, #3 phase 2 → EIO after our phase-2 write.
  aDisk.reads = 0;
  aDisk.onRead.set(3, async () => {
    throw ioError();
  });
  await assert.rejects(convertShToEx(a), code(-Errno.EIO));
  assert.deepEqual({ sh: a.shHeld, ex: a.held, retract: a.needRetract }, { sh: true, ex: false, retract: false });
  assert.equal(decodeDblock(mem.bytes, sector(1)).flags & DBLOCK_FL_RELEASED, DBLOCK_FL_RELEASED);
  assert.deepEqual(decodeModeBlock(mem.bytes, sector(1)), { flags: MBLOCK_SHARED, generation: 1 });
  assert.equal(leaderAt(mem).timestamp, 0);
});

test('failed SH→EX convert whose commit landed despite a timeout: the leader is freed again, SH kept', async () => {
  const { clock, mem } = world();
  const aDisk = new HookDisk(mem);
  const a = host(aDisk, 1, clock);
  await acquireSh(a); // writes: phase 1, phase 2, leader, dblock, leader = 5
  aDisk.faults.set(8, 'landed'); // convert: phase 1 (#6), phase 2 (#7), commit (#8)
  await assert.rejects(convertShToEx(a), code(SanlkCode.SANLK_AIO_TIMEOUT));
  assert.deepEqual({ sh: a.shHeld, ex: a.held }, { sh: true, ex: false });
  const l = leaderAt(mem);
  assert.equal(l.lver, 2);
  assert.equal(l.timestamp, 0, 'leader that named us was freed');
  assert.deepEqual(decodeModeBlock(mem.bytes, sector(1)), { flags: MBLOCK_SHARED, generation: 1 });
  await releaseSh(a);
  assert.deepEqual(decodeModeBlock(mem.bytes, sector(1)), { flags: 0, generation: 0 });
});

test('EX→SH convert: result and token agree with the disk when the leader write fails', async () => {
  // The leader write timed out but landed: we are SH, so the convert succeeds.
  {
    const { clock, mem } = world();
    const d = new HookDisk(mem);
    const a = host(d, 1, clock);
    await acquireEx(a); // writes 1..3
    d.faults.set(5, 'landed'); // convert: our sector (#4), leader (#5)
    await convertExToSh(a);
    assert.deepEqual({ sh: a.shHeld, ex: a.held }, { sh: true, ex: false });
    assert.equal(leaderAt(mem).timestamp, 0);
    assert.deepEqual(decodeModeBlock(mem.bytes, sector(1)), { flags: MBLOCK_SHARED, generation: 1 });
  }
  // The leader write was lost: we still hold EX, the convert fails, EX release clears all.
  {
    const { clock, mem } = world();
    const d = new HookDisk(mem);
    const a = host(d, 1, clock);
    await acquireEx(a);
    d.faults.set(5, 'lost');
    await assert.rejects(convertExToSh(a), code(SanlkCode.SANLK_AIO_TIMEOUT));
    assert.deepEqual({ sh: a.shHeld, ex: a.held }, { sh: false, ex: true });
    assert.equal(leaderAt(mem).ownerId, 1);
    assert.notEqual(leaderAt(mem).timestamp, 0, 'the disk says EX too');
    await a.release();
    assert.equal(leaderAt(mem).timestamp, 0);
    assert.deepEqual(decodeModeBlock(mem.bytes, sector(1)), { flags: 0, generation: 0 });
  }
});

test('a commit write that lands late cannot contradict a later ballot: phase 1 keeps our accepted value', async () => {
  const { clock, mem } = world();
  const bDisk = new HookDisk(mem);
  const b = host(bDisk, 2, clock);
  bDisk.faults.set(3, 'late'); // phase 1, phase 2, commit → the commit hangs
  await assert.rejects(b.acquire(), code(SanlkCode.SANLK_AIO_TIMEOUT));
  // A new token of B (the old one was dropped) runs a ballot for the same lver; before its
  // phase-1 read, A runs a whole acquire.
  const b2Disk = new HookDisk(mem);
  const b2 = host(b2Disk, 2, clock);
  const a = host(mem, 1, clock);
  let aResult: unknown;
  let afterPhase1 = decodeDblock(mem.bytes, sector(2));
  b2Disk.onRead.set(2, async () => {
    afterPhase1 = decodeDblock(mem.bytes, sector(2));
    aResult = await a.acquire().catch((e: unknown) => e);
  });
  await b2.acquire();
  assert.deepEqual({ bal: afterPhase1.bal !== 0, inp: afterPhase1.inp, lver: afterPhase1.lver }, { bal: true, inp: 2, lver: 1 }, 'phase 1 kept bal/inp');
  assert.ok(aResult instanceof SanlockError && aResult.code === SanlkCode.SANLK_ACQUIRE_OTHER, 'A chose B\'s value, not its own');
  await bDisk.landLate(); // the hung commit of the first token lands now: same lver, same owner
  const l = leaderAt(mem);
  assert.deepEqual({ lver: l.lver, owner: l.ownerId }, { lver: 1, owner: 2 });
});

test('a stale leader (an older commit landed late) is refused with -212 instead of overwriting a later lver', async () => {
  const { clock, mem } = world();
  const p = host(mem, 1, clock);
  await p.acquire(); // lver 1
  const stale = Buffer.from(mem.bytes.subarray(0, 512));
  await p.release();
  await p.acquire(); // lver 2
  await p.release();
  await p.acquire(); // lver 3: our dblock is at lver 3
  await p.release();
  await mem.write(0, stale, 1000); // the lver-1 commit lands late: leader back at lver 1
  const before = Buffer.from(mem.bytes.subarray(sector(1), sector(1) + 512));
  await assert.rejects(host(mem, 1, clock).acquire(), code(SanlkCode.SANLK_DBLOCK_LVER));
  assert.ok(mem.bytes.subarray(sector(1), sector(1) + 512).equals(before), 'our lver-3 dblock was not overwritten');
  // Another host's ballot for lver 2 meets our lver-3 dblock: -212 as well (leader did not move).
  await assert.rejects(host(mem, 2, clock).acquire(), code(SanlkCode.SANLK_DBLOCK_LVER));
});

test('SH holder liveness: a snapshot of an older incarnation says nothing; silence is confirmed on disk', async () => {
  const { clock, mem } = world();
  const view = new FakeView();
  const c = host(mem, 3, clock, new FakeView());
  await acquireSh(c); // C = host 3, generation 1
  // Our bookkeeping knows host 3 only as generation 0 (an older incarnation), silent for long:
  // no evidence about generation 1 → live.
  view.snapshots.set(3, { ownerId: 3, generation: 0, timestamp: 50, ioTimeout: 1, firstCheck: 10, lastLive: 20, lastCheck: 30 });
  clock.advance(200_000);
  await assert.rejects(acquireEx(host(mem, 1, clock, view)), code(-Errno.EAGAIN));
  // Generation 1 silent for > host_dead by our bookkeeping, but its delta record on disk has
  // moved on since (it renewed after our last check): still live.
  view.snapshots.set(3, { ownerId: 3, generation: 1, timestamp: 50, ioTimeout: 1, firstCheck: 10, lastLive: 20, lastCheck: 30 });
  view.setRecord(3, 1, 77);
  await assert.rejects(acquireEx(host(mem, 1, clock, view)), code(-Errno.EAGAIN));
  assert.deepEqual(decodeModeBlock(mem.bytes, sector(3)), { flags: MBLOCK_SHARED, generation: 1 });
  // The record on disk is still the one we last saw change: dead, its sector is cleared.
  view.setRecord(3, 1, 50);
  const l = await acquireEx(host(mem, 1, clock, view));
  assert.equal(l.ownerId, 1);
  assert.ok(mem.bytes.subarray(sector(3), sector(3) + 512).equals(Buffer.alloc(512)));
});
