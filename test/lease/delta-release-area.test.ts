// DeltaLease.releaseArea: the daemon hands each renewal's area back once the host-state tracker
// has read it, so that lockspaces share pooled read buffers instead of pinning 1 MiB each.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DeltaLease } from '../../src/lease/delta-lease.js';
import { ManualClock } from '../../src/lease/manual-clock.js';
import { decodeLeader } from '../../src/ondisk/leader.js';
import { IoContext } from '../../src/storage/io-context.js';
import { ioBufferStats } from '../../src/storage/read-buffers.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { lockspaceImage, MIB } from './helpers.js';

test('releaseArea gives the renewal buffer back: the next renewal reads into it', async () => {
  const dir = scratchDir('release-area');
  const ctx = new IoContext({ name: 'release-area' });
  try {
    const path = join(dir, 'ls');
    writeFileSync(path, lockspaceImage('LS'));
    const disk = await ctx.open(path);
    const clock = new ManualClock(100);
    const dl = new DeltaLease({ disk, offset: 0, spaceName: 'LS', hostId: 3, hostName: 'me', ioTimeout: 1, clock });
    await dl.acquire();
    await clock.sleep(2000);
    const a1 = await dl.renew();
    assert.equal(a1.length, MIB);
    assert.equal(dl.lastArea, a1);
    const ts1 = decodeLeader(a1, 2 * 512).timestamp;
    const recycled = ioBufferStats.recycled;
    dl.releaseArea();
    assert.equal(dl.lastArea, undefined);
    assert.equal(ioBufferStats.recycled, recycled + 1, 'the area went back to the pool');
    dl.releaseArea(); // nothing left to give back: a no-op
    assert.equal(ioBufferStats.recycled, recycled + 1);
    await clock.sleep(2000);
    const reused = ioBufferStats.reused;
    const a2 = await dl.renew();
    assert.ok(ioBufferStats.reused > reused, 'the renewal read took a pooled buffer');
    assert.equal(a2.buffer, a1.buffer, 'the buffer given back is the one reused');
    // the reused buffer holds this renewal's read, with our new record in it
    const ts2 = decodeLeader(a2, 2 * 512).timestamp;
    assert.equal(ts2, dl.lastSuccess);
    assert.ok(ts2 > ts1);
    await dl.release();
  } finally {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
