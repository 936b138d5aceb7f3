import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno, SanlkCode, SanlockError } from '../../src/codes.js';
import { IoStats } from '../../src/lease/io.js';
import { type PaxosBugs, PaxosLease } from '../../src/lease/paxos-lease.js';
import { DBLOCK_FL_RELEASED, decodeDblock } from '../../src/ondisk/dblock.js';
import { decodeLeader, encodeLeader, PAXOS_DISK_CLEAR } from '../../src/ondisk/leader.js';
import type { Disk } from '../../src/storage/disk.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { FakeView, leaderAt, lockspaceImage, ManualClock, MIB, paxosFor, resourceImage, SeededRandom, TestHost } from './helpers.js';

function code(c: number) {
  return (e: unknown) => e instanceof SanlockError && e.code === c;
}

/** A Disk that fails chosen I/Os: `failWrite(n)` makes the n-th write from now fail (after or before landing). */
class FaultyDisk implements Disk {
  readonly path: string;
  writes = 0;
  reads = 0;
  failWrites = new Map<number, 'lost' | 'landed'>();
  failReads = new Set<number>();
  dead = false;
  constructor(readonly inner: MemDisk) {
    this.path = inner.path;
  }
  async read(offset: number, length: number, t: number): Promise<Buffer> {
    const n = ++this.reads;
    if (this.dead || this.failReads.has(n)) throw new SanlockError(-Errno.EIO, 'read EIO');
    return this.inner.read(offset, length, t);
  }
  async write(offset: number, data: Buffer, t: number): Promise<void> {
    const n = ++this.writes;
    if (this.dead) throw new SanlockError(-Errno.EIO, 'write EIO');
    const f = this.failWrites.get(n);
    if (f === 'lost') throw new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, 'write timeout');
    await this.inner.write(offset, data, t);
    if (f === 'landed') throw new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, 'write timeout (but it landed)');
  }
  async close(): Promise<void> {}
}

function leaseOn(disks: Disk[], hostId: number, gen: number, clock: ManualClock, view = new FakeView(), res = 'R1'): PaxosLease {
  return new PaxosLease(
    { hostId, generation: gen, ioTimeout: 1, clock, random: new SeededRandom(hostId * 7), lockspace: view, stats: new IoStats() },
    { spaceName: 'LS', resourceName: res, disks: disks.map((disk) => ({ disk, offset: 0 })) },
  );
}

test('ballot numbers: 1, 2002, 2001, 4001 (spec §3.2)', async () => {
  const clock = new ManualClock(100);
  const view = new FakeView();
  const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const a = paxosFor(disk, 1, 1, clock, view);
  const b = paxosFor(disk, 2, 1, clock, view);
  await a.acquire();
  assert.equal(a.lastMbal, 1);
  await a.release();
  await b.acquire();
  assert.equal(b.lastMbal, 2002);
  await b.release();
  await a.acquire();
  assert.equal(a.lastMbal, 4001, 'after 2002');
  await a.release();
  const disk2 = new MemDisk('r2', MIB, 512, resourceImage('LS', 'R1'));
  const b2 = paxosFor(disk2, 2, 1, clock, view);
  await b2.acquire();
  assert.equal(b2.lastMbal, 2);
  await b2.release();
  const a2 = paxosFor(disk2, 1, 1, clock, view);
  await a2.acquire();
  assert.equal(a2.lastMbal, 2001, 'after 2');
  assert.equal(leaderAt(disk).lver, 3);
});

test('already owner (same generation) re-runs the ballot without waiting; -240 on lver mismatch', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const a = paxosFor(disk, 1, 1, clock, new FakeView());
  await a.acquire();
  a.abandon();
  const t0 = clock.monotonicMs();
  const l = await a.acquire();
  assert.equal(l.lver, 2);
  assert.equal(clock.monotonicMs(), t0);
  a.abandon();
  await assert.rejects(a.acquire({ lver: 1 }), code(SanlkCode.SANLK_ACQUIRE_LVER));
  assert.equal((await a.acquire({ lver: 2 })).lver, 3);
});

test('read errors: CLEAR → -223, names → -226/-227, num_hosts → -228, leader checksum → -229, dblock checksum → -214', async () => {
  const clock = new ManualClock(100);
  const mk = (img: Buffer, hostId = 1, res = 'R1') => paxosFor(new MemDisk('r', MIB, 512, img), hostId, 1, clock, new FakeView(), res);
  const clear = resourceImage('LS', 'R1');
  encodeLeader({ ...decodeLeader(clear, 0), magic: PAXOS_DISK_CLEAR }, clear, 0);
  await assert.rejects(mk(clear).acquire(), code(SanlkCode.SANLK_LEADER_MAGIC));
  await assert.rejects(mk(resourceImage('LS', 'R1'), 1, 'R9').acquire(), code(SanlkCode.SANLK_LEADER_RESOURCE));
  await assert.rejects(mk(resourceImage('LX', 'R1')).acquire(), code(SanlkCode.SANLK_LEADER_LOCKSPACE));
  await assert.rejects(mk(resourceImage('LS', 'R1', undefined, 4), 5).acquire(), code(SanlkCode.SANLK_LEADER_NUMHOSTS));
  const badSum = resourceImage('LS', 'R1');
  badSum[40] = 1;
  await assert.rejects(mk(badSum).acquire(), code(SanlkCode.SANLK_LEADER_CHECKSUM));
  const badDblock = resourceImage('LS', 'R1');
  badDblock[(2 + 6) * 512] = 9; // host 7's dblock mbal without a checksum
  await assert.rejects(mk(badDblock).acquire(), code(SanlkCode.SANLK_DBLOCK_CHECKSUM));
  // num_hosts 4: only 4 dblocks are considered, the phase reads are 8 sectors
  const small = paxosFor(new MemDisk('r', MIB, 512, resourceImage('LS', 'R1', undefined, 4)), 3, 1, clock, new FakeView());
  await small.acquire();
  assert.equal(small.stats.bytesRead, MIB + 2 * 8 * 512);
});

test('contention: two hosts acquiring at once → exactly one owner, the other gets -243/-244/-245', async () => {
  for (let seed = 1; seed <= 12; seed++) {
    const clock = new ManualClock(100);
    const view = new FakeView();
    view.setRecord(1, 1, 100);
    view.setRecord(2, 1, 100);
    const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
    const a = new PaxosLease(
      { hostId: 1, generation: 1, ioTimeout: 1, clock, random: new SeededRandom(seed), lockspace: view },
      { spaceName: 'LS', resourceName: 'R1', disks: [{ disk, offset: 0 }] },
    );
    const b = new PaxosLease(
      { hostId: 2, generation: 1, ioTimeout: 1, clock, random: new SeededRandom(seed + 100), lockspace: view },
      { spaceName: 'LS', resourceName: 'R1', disks: [{ disk, offset: 0 }] },
    );
    // Owner liveness: every read of the owner's delta record shows a new timestamp (alive).
    const orig = view.readDeltaRecord.bind(view);
    let tick = 0;
    view.readDeltaRecord = async (s, h) => ({ ...(await orig(s, h)), timestamp: 100 + ++tick });
    const res = await Promise.allSettled([a.acquire(), b.acquire()]);
    const won = res.filter((r) => r.status === 'fulfilled');
    const lost = res.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(won.length, 1, `seed ${seed}: ${res.map((r) => r.status).join(',')}`);
    const winner = res[0]!.status === 'fulfilled' ? a : b;
    const loser = winner === a ? b : a;
    assert.equal(loser.held, false);
    assert.equal(winner.held, true);
    assert.ok(
      [SanlkCode.SANLK_ACQUIRE_IDLIVE, SanlkCode.SANLK_ACQUIRE_OWNED, SanlkCode.SANLK_ACQUIRE_OTHER].includes(lost[0]!.reason.code),
      `seed ${seed}: loser got ${lost[0]!.reason.code}`,
    );
    const l = leaderAt(disk);
    assert.equal(l.ownerId, winner.hostId);
    assert.equal(l.lver, 1);
    assert.ok(l.timestamp !== 0);
  }
});

test('takeover of a live owner fails -243; only after host_dead (68 s) of silence does it succeed; NOWAIT → -247', async () => {
  const clock = new ManualClock(1000);
  const lsDisk = new MemDisk('ls', MIB, 512, lockspaceImage('LS', undefined, 1));
  const res = new MemDisk('res', MIB, 512, resourceImage('LS', 'R1'));
  const h1 = new TestHost(clock, lsDisk, 1, 'host1');
  const h2 = new TestHost(clock, lsDisk, 2, 'host2');
  await h1.delta.acquire();
  await h2.delta.acquire();
  h1.startRenewing();
  h2.startRenewing();
  await clock.sleep(5000);
  const p2 = h2.paxos(res);
  await p2.acquire();
  const p1 = h1.paxos(res);
  await assert.rejects(p1.acquire(), code(SanlkCode.SANLK_ACQUIRE_IDLIVE));

  await h2.stopRenewing();
  const lastRenewal = h2.delta.lastSuccess;
  // Our renewals must first see host 2's timestamp stop changing.
  await clock.sleep(6000);
  const t0 = clock.monotonicMs();
  await assert.rejects(p1.acquire({ ownerNoWait: true }), code(SanlkCode.SANLK_ACQUIRE_OWNED_RETRY));
  assert.equal(clock.monotonicMs(), t0, 'NOWAIT does not sleep when our tracker already knows the owner');
  // A blocking acquire waits out host_dead and then takes over.
  const l = await p1.acquire();
  const tookAt = clock.monotonicSeconds();
  assert.equal(l.ownerId, 1);
  assert.equal(l.lver, 2);
  assert.ok(tookAt - lastRenewal > 68, `took over ${tookAt - lastRenewal}s after the owner's last renewal`);
  assert.ok(tookAt - lastRenewal <= 72, `took over late: ${tookAt - lastRenewal}s`);
  // The old owner (if it came back) releasing leaves the new owner's leader alone (write_id ≠ 2).
  await p2.release();
  assert.equal(leaderAt(res).ownerId, 1);
  assert.notEqual(leaderAt(res).timestamp, 0);
  await h1.stopRenewing();
});

test('owner host_id released or re-joined with a new generation → immediate takeover', async () => {
  const clock = new ManualClock(1000);
  const res = new MemDisk('res', MIB, 512, resourceImage('LS', 'R1'));
  const view = new FakeView();
  await paxosFor(res, 2, 1, clock, view).acquire();
  view.setRecord(2, 2, 1500);
  const p1 = paxosFor(res, 1, 1, clock, view);
  const t0 = clock.monotonicMs();
  await p1.acquire();
  assert.equal(clock.monotonicMs(), t0 + Math.floor(0), 'no wait when the generation moved on');
  p1.abandon();
  const p3 = paxosFor(res, 3, 1, clock, view);
  view.setRecord(1, 1, 0); // host 1 left the lockspace
  await p3.acquire();
  assert.equal(leaderAt(res).ownerId, 3);
});

test('owner released but another host\'s leader write hid it: RELEASED dblock lets us run', async () => {
  const clock = new ManualClock(1000);
  const res = new MemDisk('res', MIB, 512, resourceImage('LS', 'R1'));
  const view = new FakeView();
  const p2 = paxosFor(res, 2, 1, clock, view);
  await p2.acquire();
  await p2.writeReleasedDblock();
  // leader still names 2 as owner but was written by host 3
  const l = leaderAt(res);
  encodeLeader({ ...l, writeId: 3 }, res.bytes, 0);
  let ts = 2000;
  view.readDeltaRecord = async () => ({ ...(await new FakeView().readDeltaRecord('LS', 2)), ownerId: 2, ownerGeneration: 1, timestamp: ts++ });
  const p1 = paxosFor(res, 1, 1, clock, view);
  const got = await p1.acquire();
  assert.equal(got.ownerId, 1);
});

test('retract: an I/O failure after phase 2 leaves needRetract; release frees a leader that landed', async () => {
  const clock = new ManualClock(100);
  const mem = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const fd = new FaultyDisk(mem);
  const p = leaseOn([fd], 1, 1, clock);
  fd.failWrites.set(3, 'landed'); // the commit write lands but reports a timeout
  await assert.rejects(p.acquire(), code(SanlkCode.SANLK_AIO_TIMEOUT));
  assert.equal(p.needRetract, true);
  assert.equal(p.held, false);
  assert.equal(leaderAt(mem).ownerId, 1);
  assert.notEqual(leaderAt(mem).timestamp, 0);
  await p.release();
  assert.equal(leaderAt(mem).timestamp, 0, 'retracted');
  assert.equal(decodeDblock(mem.bytes, 1024).flags & DBLOCK_FL_RELEASED, DBLOCK_FL_RELEASED);

  // Phase-2 write lost: nothing committed, retract only marks our dblock.
  const mem2 = new MemDisk('r2', MIB, 512, resourceImage('LS', 'R1'));
  const fd2 = new FaultyDisk(mem2);
  const q = leaseOn([fd2], 1, 1, clock);
  fd2.failWrites.set(2, 'lost');
  await assert.rejects(q.acquire(), code(SanlkCode.SANLK_AIO_TIMEOUT));
  assert.equal(q.needRetract, true);
  await q.release();
  assert.equal(leaderAt(mem2).lver, 0);

  // Phase-1 failure: no retract needed.
  const fd3 = new FaultyDisk(new MemDisk('r3', MIB, 512, resourceImage('LS', 'R1')));
  const r = leaseOn([fd3], 1, 1, clock);
  fd3.failWrites.set(1, 'lost');
  await assert.rejects(r.acquire());
  assert.equal(r.needRetract, false);
});

test('release errors: -250 when lver moved on, -251 when the leader changed owner', async () => {
  const clock = new ManualClock(100);
  const mem = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const p = paxosFor(mem, 1, 1, clock, new FakeView());
  await p.acquire();
  const l = leaderAt(mem);
  encodeLeader({ ...l, ownerGeneration: 9 }, mem.bytes, 0);
  await assert.rejects(p.release(), code(SanlkCode.SANLK_RELEASE_OWNER));
  const p2 = paxosFor(mem, 1, 1, clock, new FakeView());
  encodeLeader({ ...l, timestamp: 0 }, mem.bytes, 0);
  await p2.acquire();
  encodeLeader({ ...leaderAt(mem), lver: 7 }, mem.bytes, 0);
  await assert.rejects(p2.release(), code(SanlkCode.SANLK_RELEASE_LVER));
});

test('multi-disk: majority of 3 survives one dead disk; two dead → -220/-211; disagreeing leaders → -222', async () => {
  const clock = new ManualClock(100);
  const mems = [0, 1, 2].map((i) => new MemDisk(`d${i}`, MIB, 512, resourceImage('LS', 'R1')));
  const fds = mems.map((m) => new FaultyDisk(m));
  fds[2]!.dead = true;
  const p = leaseOn(fds, 1, 1, clock);
  const l = await p.acquire();
  assert.equal(l.lver, 1);
  assert.equal(leaderAt(mems[0]!).ownerId, 1);
  assert.equal(leaderAt(mems[1]!).ownerId, 1);
  assert.equal(leaderAt(mems[2]!).ownerId, 0);
  await p.release();

  fds[1]!.dead = true;
  const q = leaseOn(fds, 2, 1, clock);
  await assert.rejects(q.acquire(), code(SanlkCode.SANLK_LEADER_READ));

  // reads fine everywhere, writes fail on two disks → phase-1 dblock write -211
  const mems2 = [0, 1, 2].map((i) => new MemDisk(`e${i}`, MIB, 512, resourceImage('LS', 'R1')));
  const fds2 = mems2.map((m) => new FaultyDisk(m));
  for (const f of fds2.slice(1)) f.failWrites.set(1, 'lost');
  await assert.rejects(leaseOn(fds2, 1, 1, clock).acquire(), code(SanlkCode.SANLK_DBLOCK_WRITE));

  // three different leaders
  const mems3 = [0, 1, 2].map((i) => new MemDisk(`f${i}`, MIB, 512, resourceImage('LS', 'R1')));
  for (const [i, m] of mems3.entries()) encodeLeader({ ...leaderAt(m), lver: i + 1 }, m.bytes, 0);
  await assert.rejects(leaseOn(mems3, 1, 1, clock).acquire(), code(SanlkCode.SANLK_LEADER_DIFF));

  // even count: 2 of 2 needed
  const mems4 = [0, 1].map((i) => new MemDisk(`g${i}`, MIB, 512, resourceImage('LS', 'R1')));
  const fds4 = mems4.map((m) => new FaultyDisk(m));
  fds4[1]!.dead = true;
  await assert.rejects(leaseOn(fds4, 1, 1, clock).acquire(), code(SanlkCode.SANLK_LEADER_READ));
});

test('test-only PaxosBugs change the I/O pattern (skipPhase2Read: 5 I/Os)', async () => {
  const clock = new ManualClock(100);
  const mem = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const p = new PaxosLease(
    { hostId: 1, generation: 1, ioTimeout: 1, clock, random: new SeededRandom(1), lockspace: new FakeView(), bugs: { skipPhase2Read: true } },
    { spaceName: 'LS', resourceName: 'R1', disks: [{ disk: mem, offset: 0 }] },
  );
  await p.acquire();
  assert.deepEqual({ r: p.stats.reads, w: p.stats.writes }, { r: 2, w: 3 });
});

/** MemDisk with random virtual latency before and after each I/O, so ballots interleave. */
class SlowDisk implements Disk {
  readonly path = 'slow';
  constructor(readonly mem: MemDisk, readonly clock: ManualClock, readonly lat: SeededRandom) {}
  private pause(): Promise<void> {
    return this.clock.sleep(Math.floor(this.lat.next() * 20));
  }
  async read(o: number, l: number, t: number): Promise<Buffer> {
    await this.pause();
    const b = await this.mem.read(o, l, t);
    await this.pause();
    return b;
  }
  async write(o: number, d: Buffer, t: number): Promise<void> {
    await this.pause();
    await this.mem.write(o, d, t);
    await this.pause();
  }
  async close(): Promise<void> {}
}

/** Three hosts acquire/release one lease in a loop; returns EX overlaps seen and result counts. */
async function contend(seed: number, bugs?: PaxosBugs): Promise<{ overlaps: number; wins: number; lverOk: boolean; codes: Map<number, number>; disk: MemDisk }> {
  const clock = new ManualClock(100);
  const view = new FakeView();
  let tick = 0;
  view.readDeltaRecord = async (_s, h) => ({ ...(await new FakeView().readDeltaRecord('LS', h)), ownerId: h, ownerGeneration: 1, timestamp: 1000 + ++tick });
  const mem = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const disk = new SlowDisk(mem, clock, new SeededRandom(seed + 1000));
  const rnd = new SeededRandom(seed);
  let holder = 0;
  let lastLver = 0;
  const out = { overlaps: 0, wins: 0, lverOk: true, codes: new Map<number, number>(), disk: mem };
  const run = async (hostId: number) => {
    const p = new PaxosLease(
      { hostId, generation: 1, ioTimeout: 1, clock, random: new SeededRandom(seed * 10 + hostId), lockspace: view, bugs },
      { spaceName: 'LS', resourceName: 'R1', disks: [{ disk, offset: 0 }] },
    );
    for (let i = 0; i < 15; i++) {
      await clock.sleep(Math.floor(rnd.next() * 100));
      try {
        const l = await p.acquire();
        if (holder !== 0) out.overlaps++;
        if (l.lver <= lastLver) out.lverOk = false;
        holder = hostId;
        lastLver = l.lver;
        out.wins++;
        await clock.sleep(Math.floor(rnd.next() * 50));
        holder = 0;
        await p.release();
      } catch (e) {
        if (!(e instanceof SanlockError) || e.code > -240 || e.code < -251) throw e;
        out.codes.set(e.code, (out.codes.get(e.code) ?? 0) + 1);
        assert.equal(p.held, false);
      }
    }
  };
  await Promise.all([run(1), run(2), run(3)]);
  return out;
}

test('randomized contention with I/O latency: never two EX holders, lver strictly grows', async () => {
  const seen = new Set<number>();
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const r = await contend(seed);
    assert.equal(r.overlaps, 0, `seed ${seed}: two EX holders`);
    assert.ok(r.lverOk, `seed ${seed}: lver went backwards`);
    assert.ok(r.wins >= 20, `seed ${seed}: only ${r.wins} wins`);
    for (const c of r.codes.keys()) seen.add(c);
    for (const c of r.codes.keys()) {
      assert.ok([SanlkCode.SANLK_ACQUIRE_IDLIVE, SanlkCode.SANLK_ACQUIRE_OWNED, SanlkCode.SANLK_ACQUIRE_OTHER].includes(c as -243), `unexpected ${c}`);
    }
    // Nobody holds it at the end: the leader is free, or (a release after another host committed
    // the releaser's value, §3.4 step 3) its owner's dblock says RELEASED.
    const end = leaderAt(r.disk);
    if (end.timestamp !== 0) {
      assert.notEqual(end.writeId, end.ownerId, `seed ${seed}: leader left owned by its writer`);
      assert.equal(decodeDblock(r.disk.bytes, (2 + end.ownerId - 1) * 512).flags & DBLOCK_FL_RELEASED, DBLOCK_FL_RELEASED);
    }
  }
  assert.ok(seen.has(SanlkCode.SANLK_ACQUIRE_OTHER), 'ballots really interleaved (some host committed another)');
});

test('the same harness catches each PaxosBugs mutation (so the check above can fail)', async () => {
  for (const bugs of [{ commitBeforePhase2: true }, { ignoreMbalAbort: true }, { skipPhase2Read: true }] as PaxosBugs[]) {
    let overlaps = 0;
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) overlaps += (await contend(seed, bugs)).overlaps;
    assert.ok(overlaps > 0, `${JSON.stringify(bugs)} went unnoticed`);
  }
});
