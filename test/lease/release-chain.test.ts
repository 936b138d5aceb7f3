// The EX release through a chaining disk (one I/O-thread job for its three I/Os) must leave
// exactly what the separate I/Os leave: same bytes on disk, same I/O counts, same errors.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SanlkCode, SanlockError } from '../../src/codes.js';
import { IoStats } from '../../src/lease/io.js';
import { PaxosLease } from '../../src/lease/paxos-lease.js';
import { decodeLeader, encodeLeader } from '../../src/ondisk/leader.js';
import { type DirectDisk, openDirectDisk } from '../../src/storage/direct-disk.js';
import type { Disk } from '../../src/storage/disk.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { FakeView, ManualClock, resourceImage, SeededRandom } from './helpers.js';

const dir = scratchDir('release-chain');
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** The same disk without the chaining capability: release issues its three I/Os one by one. */
function plain(d: Disk): Disk {
  return { path: d.path, read: (o, l, t) => d.read(o, l, t), write: (o, b, t) => d.write(o, b, t), close: () => d.close() };
}

interface Side {
  path: string;
  direct: DirectDisk;
  lease: PaxosLease;
  /** chained requests made */
  chains: number;
}

async function side(chained: boolean): Promise<Side> {
  const path = join(dir, `r${n++}`);
  writeFileSync(path, resourceImage('LS', 'R1'));
  const direct = await openDirectDisk(path);
  const s = { chains: 0 };
  const orig = direct.writeReadCompareWrite.bind(direct);
  direct.writeReadCompareWrite = (...args) => {
    s.chains++;
    return orig(...args);
  };
  const lease = new PaxosLease(
    { hostId: 1, generation: 1, ioTimeout: 1, clock: new ManualClock(500), random: new SeededRandom(1), lockspace: new FakeView(), stats: new IoStats() },
    { spaceName: 'LS', resourceName: 'R1', disks: [{ disk: chained ? direct : plain(direct), offset: 0 }] },
  );
  await lease.acquire();
  lease.stats.reset();
  return Object.assign(s, { path, direct, lease });
}

async function outcome(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    assert.ok(e instanceof SanlockError, String(e));
    return e.code;
  }
}

/** Releases on both sides after `prepare` changed each file; both must end the same way. */
async function compare(prepare: (path: string) => void): Promise<{ code: number; leader: ReturnType<typeof decodeLeader> }> {
  const a = await side(true);
  const b = await side(false);
  try {
    prepare(a.path);
    prepare(b.path);
    const ca = await outcome(a.lease.release());
    const cb = await outcome(b.lease.release());
    assert.deepEqual([a.chains, b.chains], [1, 0], 'one side chained, the other did not');
    assert.equal(ca, cb, 'same result');
    assert.deepEqual(readFileSync(a.path), readFileSync(b.path), 'same bytes on disk');
    assert.deepEqual(a.lease.stats.snapshot(), b.lease.stats.snapshot(), 'same I/O');
    assert.equal(a.lease.needRetract, b.lease.needRetract);
    assert.equal(a.lease.held, false);
    assert.deepEqual(a.lease.ourDblock, b.lease.ourDblock);
    return { code: ca, leader: decodeLeader(readFileSync(a.path), 0) };
  } finally {
    await a.direct.close();
    await b.direct.close();
  }
}

/** Rewrites the leader sector of the file with `change` applied (valid checksum). */
function editLeader(change: (l: ReturnType<typeof decodeLeader>) => void): (path: string) => void {
  return (path) => {
    const img = readFileSync(path);
    const l = decodeLeader(img, 0);
    change(l);
    encodeLeader(l, img, 0);
    writeFileSync(path, img);
  };
}

test('plain EX release: identical bytes and I/O (1 read, 2 writes) with and without chaining', async () => {
  const r = await compare(() => {});
  assert.equal(r.code, 0);
  assert.equal(r.leader.timestamp, 0, 'leader freed');
  assert.equal(r.leader.ownerId, 1);
});

test('leader rewritten by another host since: no leader write, on both paths', async () => {
  const r = await compare(editLeader((l) => {
    l.writeId = 2;
    l.lver += 1;
    l.ownerId = 2;
  }));
  assert.equal(r.code, 0);
  assert.equal(r.leader.ownerId, 2);
  assert.notEqual(r.leader.timestamp, 0);
});

test('leader with our writer but another lver: -250 on both paths', async () => {
  const r = await compare(editLeader((l) => {
    l.lver += 1;
  }));
  assert.equal(r.code, SanlkCode.SANLK_RELEASE_LVER);
});

test('leader already freed by us: -251 on both paths', async () => {
  const r = await compare(editLeader((l) => {
    l.timestamp = 0;
  }));
  assert.equal(r.code, SanlkCode.SANLK_RELEASE_OWNER);
});

test('dblock write past its deadline: the release still frees the leader (as with single I/Os)', async () => {
  const a = await side(true);
  try {
    a.direct.injectChainStall([1], 4000);
    await a.lease.release();
    assert.equal(decodeLeader(readFileSync(a.path), 0).timestamp, 0);
    assert.deepEqual(a.lease.stats.snapshot(), { reads: 1, writes: 2, bytesRead: 512, bytesWritten: 1024 });
    assert.equal(a.lease.needRetract, false);
  } finally {
    a.direct.context.releaseStalls();
    await a.direct.close();
  }
});

test('leader read past its deadline: -202, needRetract, and a retry frees the leader', async () => {
  const a = await side(true);
  try {
    a.direct.injectChainStall([2], 4000);
    assert.equal(await outcome(a.lease.release()), SanlkCode.SANLK_AIO_TIMEOUT);
    assert.equal(a.lease.needRetract, true);
    assert.notEqual(decodeLeader(readFileSync(a.path), 0).timestamp, 0, 'leader still ours on disk');
    a.direct.context.releaseStalls();
    await a.lease.release();
    assert.equal(a.lease.needRetract, false);
    assert.equal(decodeLeader(readFileSync(a.path), 0).timestamp, 0);
  } finally {
    a.direct.context.releaseStalls();
    await a.direct.close();
  }
});
