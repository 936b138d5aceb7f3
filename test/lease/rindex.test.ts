// rindex format/lookup/update/rebuild on an in-memory disk.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SanlkCode, SanlockError } from '../../src/codes.js';
import { rindexFormat, rindexLookup, rindexRebuild, rindexUpdate } from '../../src/lease/rindex.js';
import { geometryFor, MIB } from '../../src/ondisk/geometry.js';
import { buildResourceInit } from '../../src/ondisk/init.js';
import { decodeRindexHeader } from '../../src/ondisk/rindex.js';
import { MemDisk } from '../../src/storage/mem-disk.js';

const g = geometryFor(512, MIB);
const T = 1000;
const rx = { lockspaceName: 'LSX', offset: MIB };

async function formatted(size = 6 * MIB): Promise<MemDisk> {
  const d = new MemDisk('mem', size);
  await rindexFormat(d, rx, g, T);
  return d;
}

const code = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SanlockError);
    return e.code;
  }
  assert.fail('expected an error');
};

test('format writes header and rindex_lease', async () => {
  const d = await formatted();
  const h = decodeRindexHeader(d.bytes, MIB);
  assert.deepEqual([h.flags, h.sectorSize, h.maxResources, h.rxOffset, h.lockspaceName], [1, 512, 4096, MIB, 'LSX']);
  assert.equal(d.bytes.toString('latin1', 2 * MIB + 104, 2 * MIB + 116), 'rindex_lease');
  assert.equal(await code(rindexFormat(d, { ...rx, offset: 100 }, g, T)), -22, 'the disk refuses unaligned I/O');
});

test('lookup / update / remove', async () => {
  const d = await formatted();
  assert.deepEqual(await rindexLookup(d, rx, { name: '', offset: 0 }, T), { name: '', offset: 3 * MIB });
  assert.equal(await code(rindexLookup(d, rx, { name: 'A', offset: 0 }, T)), -2);
  assert.deepEqual(await rindexUpdate(d, rx, { name: 'A', offset: 3 * MIB }, false, T), { name: 'A', offset: 3 * MIB });
  assert.deepEqual(await rindexLookup(d, rx, { name: 'A', offset: 0 }, T), { name: 'A', offset: 3 * MIB });
  assert.deepEqual(await rindexLookup(d, rx, { name: '', offset: 3 * MIB }, T), { name: 'A', offset: 3 * MIB });
  assert.deepEqual(await rindexLookup(d, rx, { name: '', offset: 0 }, T), { name: '', offset: 4 * MIB });
  assert.equal(await code(rindexLookup(d, rx, { name: 'B', offset: 3 * MIB }, T)), SanlkCode.SANLK_RINDEX_DIFF);
  assert.equal(await code(rindexLookup(d, rx, { name: 'A', offset: 3 * MIB + 512 }, T)), SanlkCode.SANLK_RINDEX_OFFSET);
  assert.equal(await code(rindexUpdate(d, rx, { name: 'A', offset: 0 }, false, T)), -22);
  await rindexUpdate(d, rx, { name: '', offset: 3 * MIB }, true, T);
  assert.equal(await code(rindexLookup(d, rx, { name: 'A', offset: 0 }, T)), -2);
  assert.equal(await code(rindexLookup(d, { ...rx, lockspaceName: 'LSY' }, { name: '', offset: 0 }, T)), SanlkCode.SANLK_RINDEX_LOCKSPACE);
  assert.equal(await code(rindexLookup(d, { ...rx, offset: 2 * MIB }, { name: '', offset: 0 }, T)), SanlkCode.SANLK_RINDEX_MAGIC);
});

test('rebuild recreates entries from the leases present and drops stale ones', async () => {
  const d = await formatted(7 * MIB);
  await d.write(4 * MIB, buildResourceInit({ geometry: g, spaceName: 'LSX', resourceName: 'R2' }), T);
  await d.write(6 * MIB, buildResourceInit({ geometry: g, spaceName: 'LSX', resourceName: 'R4' }), T);
  await d.write(5 * MIB, buildResourceInit({ geometry: g, spaceName: 'OTHER', resourceName: 'X' }), T);
  await rindexUpdate(d, rx, { name: 'STALE', offset: 3 * MIB }, false, T);
  // MemDisk reads past its end as zeros; a real device ends the scan with -EMSGSIZE.
  assert.equal(await rindexRebuild(d, rx, T), 2);
  assert.equal(await code(rindexLookup(d, rx, { name: 'STALE', offset: 0 }, T)), -2);
  assert.deepEqual(await rindexLookup(d, rx, { name: 'R2', offset: 0 }, T), { name: 'R2', offset: 4 * MIB });
  assert.deepEqual(await rindexLookup(d, rx, { name: 'R4', offset: 0 }, T), { name: 'R4', offset: 6 * MIB });
  assert.deepEqual(await rindexLookup(d, rx, { name: '', offset: 0 }, T), { name: '', offset: 3 * MIB });
});
