// DirectDisk.writeReadCompareWrite: three dependent I/Os in one I/O-thread job, each with the
// deadline it would have had as a separate I/O.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Errno, SanlkCode, SanlockError } from '../../src/codes.js';
import { type DirectDisk, openDirectDisk } from '../../src/storage/direct-disk.js';
import { isChainDisk } from '../../src/storage/disk.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { until } from './helpers.js';

const dir = scratchDir('io-chain');
after(() => rmSync(dir, { recursive: true, force: true }));

const SS = 512;
const A = Buffer.alloc(SS, 0xa1);
const B = Buffer.alloc(SS, 0xb2);
const C = Buffer.alloc(SS, 0xc3);
let n = 0;

/** A 1 MiB file whose sector 0 holds A (the rest zeros), opened O_DIRECT. */
async function fresh(): Promise<{ path: string; disk: DirectDisk }> {
  const path = join(dir, `f${n++}`);
  const img = Buffer.alloc(1024 * 1024);
  A.copy(img, 0);
  writeFileSync(path, img);
  return { path, disk: await openDirectDisk(path) };
}

function sector(path: string, i: number): Buffer {
  return readFileSync(path).subarray(i * SS, (i + 1) * SS);
}

/** Write B to sector 2, read sector 0, and when it starts with `expect` write C to sector 0. */
function chain(disk: DirectDisk, expect: Buffer, timeoutMs = 5000, readAt = 0) {
  return disk.writeReadCompareWrite({ w1Offset: 2 * SS, w1: B, readOffset: readAt, readLength: SS, expect, w3Offset: 0, w3: C }, timeoutMs);
}

async function rejection(p: Promise<unknown>): Promise<SanlockError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SanlockError, String(e));
    return e;
  }
  assert.fail('expected a rejection');
}

test('bytes that match: all three I/Os run, in order', async () => {
  const { path, disk } = await fresh();
  try {
    assert.ok(isChainDisk(disk));
    const out = await chain(disk, A.subarray(0, 200));
    assert.ok(out && !out.write1Error && out.wrote3);
    assert.deepEqual(out.read, A);
    assert.deepEqual(sector(path, 2), B);
    assert.deepEqual(sector(path, 0), C);
    assert.deepEqual([disk.reads, disk.writes, disk.bytesRead, disk.bytesWritten], [1, 2, SS, 2 * SS]);
  } finally {
    await disk.close();
  }
});

test('bytes that differ: the first write and the read only; the caller gets the bytes', async () => {
  const { path, disk } = await fresh();
  try {
    const expect = Buffer.from(A.subarray(0, 200));
    expect[199] ^= 1;
    const out = await chain(disk, expect);
    assert.ok(out && !out.write1Error && !out.wrote3);
    assert.deepEqual(out.read, A);
    assert.deepEqual(sector(path, 2), B);
    assert.deepEqual(sector(path, 0), A);
    assert.deepEqual([disk.reads, disk.writes], [1, 1]);
  } finally {
    await disk.close();
  }
});

test('a failing read rejects with its errno and stops the chain', async () => {
  const { path, disk } = await fresh();
  try {
    // past the end of the file: a short (empty) read, -EMSGSIZE as sanlock reports it
    const e = await rejection(chain(disk, A.subarray(0, 200), 5000, 4 * 1024 * 1024));
    assert.equal(e.code, -Errno.EMSGSIZE);
    assert.equal(e.details?.chainStep, 2);
    assert.deepEqual(sector(path, 2), B);
    assert.deepEqual(sector(path, 0), A);
  } finally {
    await disk.close();
  }
});

test('a disk with a single-I/O stall injected does not chain (the caller runs single I/Os)', async () => {
  const { disk } = await fresh();
  try {
    disk.injectStall(10, 1);
    assert.equal(await chain(disk, A.subarray(0, 200)), undefined);
  } finally {
    disk.context.releaseStalls();
    await disk.close();
  }
});

test('first write past its deadline: reported in the outcome, nothing after it ever runs', async () => {
  const { path, disk } = await fresh();
  try {
    disk.injectChainStall([1], 5000);
    const t0 = Date.now();
    const out = await chain(disk, A.subarray(0, 200), 200);
    assert.ok(Date.now() - t0 < 2000, 'settled at the first write deadline');
    assert.equal(out?.write1Error?.code, SanlkCode.SANLK_AIO_TIMEOUT);
    assert.equal(out?.read, undefined);
    disk.context.releaseStalls();
    await until(() => disk.context.lateCompletions === 1, 5000);
    assert.deepEqual(sector(path, 2), B, 'the late write landed');
    assert.deepEqual(sector(path, 0), A, 'the cancelled chain went no further');
  } finally {
    await disk.close();
  }
});

for (const { step, title, sector0 } of [
  { step: 2 as const, title: 'read past its deadline: -202, the second write never runs', sector0: A },
  { step: 3 as const, title: 'second write past its deadline: -202 (the write may still land, as a late single write would)', sector0: C },
]) {
  test(title, async () => {
    const { path, disk } = await fresh();
    try {
      disk.injectChainStall([step], 5000);
      const e = await rejection(chain(disk, A.subarray(0, 200), 200));
      assert.equal(e.code, SanlkCode.SANLK_AIO_TIMEOUT);
      assert.equal(e.details?.chainStep, step);
      disk.context.releaseStalls();
      await until(() => disk.context.lateCompletions === 1, 5000);
      assert.deepEqual(sector(path, 0), sector0);
    } finally {
      await disk.close();
    }
  });
}

test('each step has its own deadline: two slow steps within theirs succeed together', async () => {
  const { path, disk } = await fresh();
  try {
    // 2 × 350 ms > 500 ms for the whole chain, but each step finishes within its own 500 ms
    disk.injectChainStall([2, 3], 350);
    const out = await chain(disk, A.subarray(0, 200), 500);
    assert.ok(out?.wrote3);
    assert.deepEqual(sector(path, 0), C);
    assert.equal(disk.context.timeouts, 0);
  } finally {
    await disk.close();
  }
});

test('a closed disk declines to chain (its single I/Os report the closed disk)', async () => {
  const { disk } = await fresh();
  await disk.close();
  assert.equal(await chain(disk, A.subarray(0, 200)), undefined);
});

test('a chain still queued at its deadline never runs: reported as a failed first write', async () => {
  const { path, disk } = await fresh();
  try {
    // both I/O threads of the disk's private context hang on reads
    disk.injectStall(5000, 2);
    const hung = [disk.read(0, SS, 10_000), disk.read(0, SS, 10_000)];
    const out = await chain(disk, A.subarray(0, 200), 200);
    assert.equal(out?.write1Error?.code, SanlkCode.SANLK_AIO_TIMEOUT);
    assert.equal(out?.write1Error?.details?.started, false, 'it never left the queue');
    disk.context.releaseStalls();
    await Promise.all(hung);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(sector(path, 2), Buffer.alloc(SS), 'the first write never ran');
    assert.deepEqual(sector(path, 0), A);
  } finally {
    await disk.close();
  }
});
