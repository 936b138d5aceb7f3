// On-disk truth through the real storage stack: the same recorded sanlock sessions as
// vectors.test.ts, but the engine writes with O_DIRECT into files (DirectDisk, worker I/O),
// and what lands in the file is compared with the image sanlock 3.8.5 wrote.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DeltaLease } from '../../src/lease/delta-lease.js';
import { IoStats } from '../../src/lease/io.js';
import { PaxosLease } from '../../src/lease/paxos-lease.js';
import { examineRequest, requestLease } from '../../src/lease/requests.js';
import { openDirectDisk } from '../../src/storage/direct-disk.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { assertSameImage, FakeView, loadVector, ManualClock, MIB, maskLease, maskLockspace, SeededRandom } from './helpers.js';

const dir = scratchDir('lease-direct');
after(() => rmSync(dir, { recursive: true, force: true }));

function fileFromVector(name: string): string {
  const p = join(dir, name);
  writeFileSync(p, loadVector(name));
  return p;
}

test('delta join through O_DIRECT → ls_512_1M_host1_joined', async () => {
  const path = fileFromVector('ls_512_1M_init');
  const disk = await openDirectDisk(path);
  try {
    const clock = new ManualClock(646);
    const delta = new DeltaLease({
      disk, offset: 0, spaceName: 'LS', hostId: 1, hostName: 'fa012518-1292-4710-97ac-e2d34b5453df.vm', ioTimeout: 1, clock,
    });
    const gen = await delta.acquire();
    assert.equal(gen, 1);
    const onDisk = readFileSync(path);
    assertSameImage(maskLockspace(onDisk), maskLockspace(loadVector('ls_512_1M_host1_joined')), 'host1_joined');
  } finally {
    await disk.close();
  }
});

test('paxos acquire, request, release through O_DIRECT → res_512_1M_ex_host1, _req, _released', async () => {
  const path = fileFromVector('res_512_1M_init');
  const disk = await openDirectDisk(path);
  try {
    const clock = new ManualClock(672);
    const view = new FakeView();
    const mk = (hostId: number) =>
      new PaxosLease(
        { hostId, generation: 1, ioTimeout: 1, clock, random: new SeededRandom(hostId), lockspace: view, stats: new IoStats() },
        { spaceName: 'LS', resourceName: 'R1', disks: [{ disk, offset: 0 }] },
      );
    const h1 = mk(1);
    await h1.acquire();
    assert.deepEqual(h1.stats.snapshot(), { reads: 3, writes: 3, bytesRead: 3 * MIB, bytesWritten: 3 * 512 });
    assertSameImage(maskLease(readFileSync(path)), maskLease(loadVector('res_512_1M_ex_host1')), 'ex_host1');

    const h2 = mk(2);
    await requestLease(h2, { lver: 2, forceMode: 1 }, () => {});
    assertSameImage(maskLease(readFileSync(path)), maskLease(loadVector('res_512_1M_ex_host1_req')), 'ex_host1_req');
    assert.equal((await examineRequest(h1)).action, 'force');

    await clock.sleep(39_000);
    await h1.release();
    const onDisk = readFileSync(path);
    assertSameImage(maskLease(onDisk), maskLease(loadVector('res_512_1M_released')), 'released');
    // the recording's times are reproduced here, so even the checksums are sanlock's bytes
    assert.equal(onDisk.readUInt32LE(1024 + 48), 0x9606518b);
  } finally {
    await disk.close();
  }
});
