// The init/format builders reproduce the deterministic golden images byte for byte.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { geometryFor, MIB } from '../../src/ondisk/geometry.js';
import { buildLockspaceInit, buildResourceInit, buildRindexArea, lockspaceInitBytes } from '../../src/ondisk/init.js';
import { DELTA_DISK_MAGIC, DELTA_DISK_VERSION, decodeLeader, PAXOS_DISK_CLEAR, verifyLeader } from '../../src/ondisk/leader.js';
import { RINDEX_LEASE_NAME } from '../../src/ondisk/rindex.js';
import { VECTORS_DIR } from '../helpers/paths.js';

const vector = (n: string) => gunzipSync(readFileSync(`${VECTORS_DIR}/${n}.img.gz`));

test('lockspace init 512/1M and 4K/8M match the golden images', () => {
  assert.ok(lockspaceInitBytes({ geometry: geometryFor(512, MIB), spaceName: 'LS', ioTimeout: 10 }).equals(vector('ls_512_1M_init')));
  assert.ok(lockspaceInitBytes({ geometry: geometryFor(4096, 8 * MIB), spaceName: 'LS4K', ioTimeout: 10 }).equals(vector('ls_4k_8M_init')));
});

test('lockspace init: the first write is never a valid lockspace (host 1 magic 0)', () => {
  const { area, firstSector } = buildLockspaceInit({ geometry: geometryFor(512, MIB), spaceName: 'LS', ioTimeout: 10 });
  assert.equal(area.readUInt32LE(0), 0);
  assert.notEqual(verifyLeader(area, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION }), 0);
  assert.equal(verifyLeader(firstSector, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: 'LS' }), 0);
  assert.equal(verifyLeader(area, 512, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: 'LS' }), 0);
  assert.equal(firstSector.length, 512);
});

test('resource init 512/1M and 4K/8M match the golden images', () => {
  assert.ok(buildResourceInit({ geometry: geometryFor(512, MIB), spaceName: 'LS', resourceName: 'R1' }).equals(vector('res_512_1M_init')));
  assert.ok(buildResourceInit({ geometry: geometryFor(4096, 8 * MIB), spaceName: 'LS4K', resourceName: 'R4K' }).equals(vector('res_4k_8M_init')));
});

test('resource init: num_hosts rules and the cleared lease', () => {
  const g = geometryFor(4096, MIB);
  assert.equal(decodeLeader(buildResourceInit({ geometry: g, spaceName: 'A', resourceName: 'B' })).numHosts, 250);
  assert.equal(decodeLeader(buildResourceInit({ geometry: g, spaceName: 'A', resourceName: 'B', numHosts: 5 })).numHosts, 5);
  assert.equal(decodeLeader(buildResourceInit({ geometry: g, spaceName: 'A', resourceName: 'B', numHosts: 3000 })).numHosts, 250);
  const cleared = decodeLeader(buildResourceInit({ geometry: g, spaceName: 'A', resourceName: 'B', clearTimestamp: 776 }));
  assert.equal(cleared.magic, PAXOS_DISK_CLEAR);
  assert.equal(cleared.writeTimestamp, 776);
});

test('rindex format matches rindex_format (except the request padding garbage)', () => {
  const g = geometryFor(512, MIB);
  const img = Buffer.alloc(4 * MIB);
  lockspaceInitBytes({ geometry: g, spaceName: 'LSX', ioTimeout: 10 }).copy(img, 0);
  buildRindexArea({ geometry: g, lockspaceName: 'LSX', rxOffset: MIB }).copy(img, MIB);
  buildResourceInit({ geometry: g, spaceName: 'LSX', resourceName: RINDEX_LEASE_NAME }).copy(img, 2 * MIB);
  const exp = vector('rindex_format');
  exp.fill(0, 0x200214, 0x200218);
  assert.ok(img.equals(exp));
});
