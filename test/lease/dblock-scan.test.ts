// The lease's dblock-area scans skip zero ranges without decoding; these check that the result is
// the one a sector-by-sector decode gives, on areas with scattered, odd and corrupt sectors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IoStats } from '../../src/lease/io.js';
import { PaxosLease } from '../../src/lease/paxos-lease.js';
import { type Dblock, dblockValid, decodeDblock, decodeModeBlock, encodeDblock, encodeModeBlock, MBLOCK_SHARED, type ModeBlock } from '../../src/ondisk/dblock.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { FakeView, ManualClock, MIB, resourceImage, SeededRandom } from './helpers.js';

const SS = 512;
const HOSTS = 2000;

function leaseOn(disks: MemDisk[], hostId: number): PaxosLease {
  const clock = new ManualClock(100);
  return new PaxosLease(
    { hostId, generation: 1, ioTimeout: 1, clock, random: new SeededRandom(hostId), lockspace: new FakeView(), stats: new IoStats() },
    { spaceName: 'LS', resourceName: 'R1', disks: disks.map((disk) => ({ disk, offset: 0 })) },
  );
}

/** What a plain per-sector decode of every disk yields (the lease's documented read semantics). */
function reference(imgs: Buffer[], numHosts: number, hostId: number) {
  const dblocks: Dblock[] = [];
  const modes: ModeBlock[] = [];
  let maxMbal = 0;
  let ownAccepted: Dblock | undefined;
  for (let q = 0; q < numHosts; q++) {
    let best: Dblock | undefined;
    let mode: ModeBlock = { flags: 0, generation: 0 };
    for (const b of imgs) {
      const off = (2 + q) * SS;
      if (!dblockValid(b, off)) continue;
      const d = decodeDblock(b, off);
      if (!best || d.mbal > best.mbal) best = d;
      if (q + 1 === hostId && d.bal !== 0 && d.inp !== 0 && (!ownAccepted || d.bal > ownAccepted.bal)) ownAccepted = d;
      const m = decodeModeBlock(b, off);
      if (m.flags & MBLOCK_SHARED) mode = m;
    }
    const d = best ?? { mbal: 0, bal: 0, inp: 0, inp2: 0, inp3: 0, lver: 0, flags: 0 };
    dblocks.push(d);
    modes.push(mode);
    if (d.mbal > maxMbal) maxMbal = d.mbal;
  }
  return { dblocks, modes, maxMbal, ownAccepted };
}

function scatter(img: Buffer, rnd: SeededRandom, n: number, corrupt: boolean): void {
  const pick = () => Math.floor(rnd.next() * HOSTS);
  for (let i = 0; i < n; i++) {
    const off = (2 + pick()) * SS;
    const kind = Math.floor(rnd.next() * (corrupt ? 6 : 5));
    if (kind === 0) {
      encodeDblock({ mbal: 1 + pick(), bal: pick(), inp: pick(), inp2: 1, inp3: 7, lver: 1 + Math.floor(rnd.next() * 3), flags: 0 }, img, off);
    } else if (kind === 1) {
      // zero dblock, SHARED mode block: valid, and a SHARED holder
      encodeModeBlock({ flags: MBLOCK_SHARED, generation: 1 + pick() }, img, off);
    } else if (kind === 2) {
      img[off + 52] = 1; // flags only: outside the checksum, still "never written"
    } else if (kind === 3) {
      img[off + 300] = 0xaa; // bytes outside every field
    } else if (kind === 4) {
      encodeDblock({ mbal: 5, bal: 5, inp: 9, inp2: 2, inp3: 3, lver: 1, flags: 1 }, img, off);
      encodeModeBlock({ flags: MBLOCK_SHARED | 2, generation: 4 }, img, off);
    } else {
      encodeDblock({ mbal: 3, bal: 3, inp: 3, inp2: 3, inp3: 3, lver: 1, flags: 0 }, img, off);
      img[off + 10] ^= 0xff; // checksum no longer matches
    }
  }
}

test('read(): zero-range skipping gives the per-sector decode (3 disks, scattered and corrupt sectors)', async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const rnd = new SeededRandom(seed);
    const imgs = [0, 1, 2].map(() => resourceImage('LS', 'R1'));
    for (const img of imgs) scatter(img, rnd, seed * 15, true);
    const disks = imgs.map((img, i) => new MemDisk(`d${i}`, MIB, SS, Buffer.from(img)));
    const hostId = 1 + Math.floor(rnd.next() * HOSTS);
    const rd = await leaseOn(disks, hostId).read();
    const ref = reference(imgs, HOSTS, hostId);
    assert.equal(rd.dblocks.length, HOSTS);
    assert.deepEqual(rd.dblocks, ref.dblocks, `seed ${seed} dblocks`);
    assert.deepEqual(rd.modes, ref.modes, `seed ${seed} modes`);
    assert.equal(rd.maxMbal, ref.maxMbal);
    assert.deepEqual(rd.ownAccepted, ref.ownAccepted);
    assert.ok(ref.modes.some((m) => m.flags & MBLOCK_SHARED), 'the image has SHARED holders');
  }
});

test('read(): single disk without corrupt sectors, a host near the end of the area', async () => {
  const img = resourceImage('LS', 'R1');
  scatter(img, new SeededRandom(99), 40, false);
  encodeDblock({ mbal: 7999, bal: 7999, inp: 1999, inp2: 3, inp3: 4, lver: 1, flags: 0 }, img, (2 + 1998) * SS);
  const rd = await leaseOn([new MemDisk('d', MIB, SS, Buffer.from(img))], 1999).read();
  const ref = reference([img], HOSTS, 1999);
  assert.deepEqual(rd.dblocks, ref.dblocks);
  assert.deepEqual(rd.modes, ref.modes);
  assert.equal(rd.maxMbal, 7999);
  assert.equal(rd.ownAccepted?.inp, 1999);
});

test('ballot: an accepted value in a far host sector is adopted (the scan sees past zero ranges)', async () => {
  const img = resourceImage('LS', 'R1');
  // host 1900 accepted value (inp 1900, gen 5) for lver 1 at a low ballot, then stopped
  encodeDblock({ mbal: 1900, bal: 1900, inp: 1900, inp2: 5, inp3: 11, lver: 1, flags: 0 }, img, (2 + 1899) * SS);
  const disk = new MemDisk('d', MIB, SS, img);
  const lease = leaseOn([disk], 1);
  await assert.rejects(lease.acquire());
  const leader = (await lease.read()).leader;
  assert.equal(leader.lver, 1);
  assert.equal(leader.ownerId, 1900, 'the committed value is the one host 1900 accepted');
  assert.equal(leader.ownerGeneration, 5);
});
