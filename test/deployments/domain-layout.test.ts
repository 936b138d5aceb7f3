// VDSM storage-domain layouts (src/ops/domain-layout.ts): offsets and names as vdsm computes
// them, and the written bytes checked against what the real sanlock 3.8.5 writes for the same
// leases (`sanlock direct init`) and reads back (`direct read_leader`, `direct dump`).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  blockDomainLayout, decodeXleaseIndex, encodeXleaseIndex, fileDomainLayout, readDomain, SDM_LEASE_OFFSET, volumeLeaseOffset,
  writeDomain, XLEASE_INDEX_BASE, XLEASE_INDEX_MAGIC, XLEASE_INDEX_SIZE, XLEASE_MAX_RECORDS, xleaseOffset,
} from '../../src/ops/domain-layout.js';
import { haveRealSanlock, SANLOCK_BIN, scratchDir } from '../helpers/real-sanlock.js';

const MIB = 1024 * 1024;
const SD = '5e6a1f0c-0d5b-4a53-8d57-3b8c2b0a7c11';

function readBytes(path: string, offset: number, len: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(len);
    readSync(fd, b, 0, len, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** What the real binary writes for one lease: a scratch file initialised by `direct init`. */
function realImage(dir: string, kind: 's' | 'r', name: string, sector: number, align: number, ioTimeout = 10): Buffer {
  const p = join(dir, `ref-${kind}-${name}-${sector}-${align}`);
  writeFileSync(p, '');
  execFileSync('truncate', ['-s', String(align), p]);
  const spec = kind === 's' ? `${SD}:0:${p}:0` : `${SD}:${name}:${p}:0`;
  const args = ['direct', 'init', `-${kind}`, spec, '-Z', String(sector), '-A', `${align / MIB}M`];
  if (kind === 's') args.push('-o', String(ioTimeout));
  execFileSync(SANLOCK_BIN, args, { stdio: 'ignore' });
  const b = readBytes(p, 0, align);
  rmSync(p);
  return b;
}

describe('domain layout: offsets and names', () => {
  test('file domain: dom_md special files, SDM at SDM_LEASE_OFFSET, <vol>.lease at 0, xleases slots', () => {
    const l = fileDomainLayout('/mnt/nfs', { sdUUID: SD, volumes: ['v1', 'v2'], vmLeases: ['vm1', 'vm2'] });
    assert.equal(l.root, `/mnt/nfs/${SD}`);
    assert.equal(l.idsPath, `/mnt/nfs/${SD}/dom_md/ids`);
    assert.deepEqual(l.spm, { name: 'SDM', path: `/mnt/nfs/${SD}/dom_md/leases`, offset: 1048576 });
    assert.equal(l.volumes[0]!.path, `${l.volumes[0]!.volumePath}.lease`);
    assert.match(l.volumes[1]!.volumePath!, new RegExp(`^/mnt/nfs/${SD}/images/[0-9a-f-]{36}/v2$`));
    assert.ok(l.volumes.every((v) => v.offset === 0 && v.name === v.volume));
    assert.deepEqual(l.vmLeases.map((v) => v.offset), [3 * MIB, 4 * MIB]);
    assert.equal(l.xleasesPath, `/mnt/nfs/${SD}/dom_md/xleases`);
    assert.equal(XLEASE_MAX_RECORDS, 3960);
  });

  test('block domain: volume lease at (RESERVED_LEASES + slot) * alignment, slots from 1 (v5) or 4 (v4)', () => {
    const v5 = blockDomainLayout('/dev/vg', { sdUUID: SD, volumes: 3 });
    assert.deepEqual(v5.volumes.map((v) => [v.slot, v.offset]), [[1, 101 * MIB], [2, 102 * MIB], [3, 103 * MIB]]);
    assert.equal(v5.leasesPath, '/dev/vg/leases');
    assert.equal(v5.spm.offset, SDM_LEASE_OFFSET);
    const v4 = blockDomainLayout('/dev/vg', { sdUUID: SD, volumes: 1, version: 4 });
    assert.deepEqual(v4.volumes.map((v) => [v.slot, v.offset]), [[4, 104 * MIB]]);
    assert.equal(volumeLeaseOffset(7, MIB), 107 * MIB);
    // generated volume names are reproducible
    assert.deepEqual(v5.volumes.map((v) => v.name), blockDomainLayout('/x', { sdUUID: SD, volumes: 3 }).volumes.map((v) => v.name));
  });

  test('refused geometries', () => {
    assert.throws(() => blockDomainLayout('/dev/vg', { sdUUID: SD, sector: 4096, align: 8 * MIB }), /supports only block size 512/);
    assert.throws(() => fileDomainLayout('/m', { sdUUID: SD, sector: 4096, align: MIB, version: 4 }), /version 4/);
    assert.throws(() => fileDomainLayout('/m', { sdUUID: SD, align: 3 * MIB }), /alignment/);
    assert.throws(() => fileDomainLayout('/m', { sdUUID: SD, sector: 512, align: 2 * MIB }), /sector size 512/);
    assert.throws(() => fileDomainLayout('/m', { sdUUID: 'x'.repeat(49) }), /1\.\.48 bytes/);
    // xlease.py slots are 1 MiB: VM leases on a larger alignment would overlap
    assert.throws(() => fileDomainLayout('/m', { sdUUID: SD, sector: 4096, align: 8 * MIB, vmLeases: 1 }), /1 MiB alignment/);
    assert.equal(fileDomainLayout('/m', { sdUUID: SD, sector: 4096, align: 8 * MIB }).xleasesPath, null);
  });

  test('xleases index encoding (xlease.py META_STRUCT / RECORD_STRUCT)', () => {
    const b = encodeXleaseIndex(SD, [{ name: 'vm-a', offset: xleaseOffset(0) }], 1700000000);
    assert.equal(b.length, XLEASE_INDEX_SIZE);
    assert.equal(b.readUInt32BE(0), XLEASE_INDEX_MAGIC);
    assert.equal(b.subarray(4, 10).toString('latin1'), '\x000001\x00');
    assert.equal(b.subarray(10, 10 + SD.length).toString(), SD);
    assert.equal(b.subarray(58, 72).toString('latin1'), '\x001700000000\x00-\x00');
    assert.equal(b[511], 0x0a);
    const rec0 = b.subarray(512, 576);
    assert.equal(rec0.subarray(0, 4).toString(), 'vm-a');
    assert.equal(rec0.subarray(48, 64).toString('latin1'), '\x0000003145728\x00--\n');
    const rec1 = b.subarray(576, 640);
    assert.ok(rec1.subarray(0, 49).every((x) => x === 0));
    assert.equal(rec1.subarray(49, 64).toString('latin1'), '00000000000\x00--\n');
    const d = decodeXleaseIndex(b);
    assert.deepEqual(d.records, [{ recnum: 0, name: 'vm-a', offset: 3 * MIB, updating: false }]);
    assert.equal(d.lockspace, SD);
    assert.equal(d.mtime, 1700000000);
    const bad = Buffer.from(b);
    bad[0] = 0;
    assert.throws(() => decodeXleaseIndex(bad), /invalid magic/);
  });
});

describe('domain layout: written bytes match the real sanlock', { skip: !haveRealSanlock() }, () => {
  test('file domain 512/1M: ids, SDM, volume leases, xleases and read back', async () => {
    const base = scratchDir('domain-file');
    try {
      const l = fileDomainLayout(base, { sdUUID: SD, volumes: 2, vmLeases: ['vm-0001', 'vm-0002'] });
      await writeDomain(l, { mtime: 1700000000 });
      for (const f of l.files) assert.ok(existsSync(f.path) && statSync(f.path).size >= f.size, f.path);
      assert.ok(readBytes(l.idsPath, 0, MIB).equals(realImage(base, 's', 'ids', 512, MIB)), 'ids area differs from direct init -s');
      assert.ok(readBytes(l.leasesPath, SDM_LEASE_OFFSET, MIB).equals(realImage(base, 'r', 'SDM', 512, MIB)), 'SDM area differs');
      for (const v of l.volumes) assert.ok(readBytes(v.path, 0, MIB).equals(realImage(base, 'r', v.name, 512, MIB)), v.name);
      for (const v of l.vmLeases) assert.ok(readBytes(v.path, v.offset, MIB).equals(realImage(base, 'r', v.name, 512, MIB)), v.name);
      const rl = execFileSync(SANLOCK_BIN, ['direct', 'read_leader', '-r', `${SD}:SDM:${l.leasesPath}:${SDM_LEASE_OFFSET}`], { encoding: 'utf8' });
      assert.match(rl, /^resource_name SDM$/m);
      assert.match(rl, new RegExp(`^space_name ${SD}$`, 'm'));
      const ids = execFileSync(SANLOCK_BIN, ['direct', 'read_leader', '-s', `${SD}:1:${l.idsPath}:0`], { encoding: 'utf8' });
      assert.match(ids, /^io_timeout 10$/m);
      const dump = execFileSync(SANLOCK_BIN, ['direct', 'dump', `${l.xleasesPath}:${3 * MIB}:${2 * MIB}`], { encoding: 'utf8' });
      assert.match(dump, /^\s*03145728 .* vm-0001 /m);
      assert.match(dump, /^\s*04194304 .* vm-0002 /m);
      const idx = decodeXleaseIndex(readBytes(l.xleasesPath!, XLEASE_INDEX_BASE, XLEASE_INDEX_SIZE));
      assert.deepEqual(idx.records.map((r) => [r.name, r.offset]), [['vm-0001', 3 * MIB], ['vm-0002', 4 * MIB]]);
      assert.equal(idx.updating, false);
      const back = await readDomain(l.root);
      assert.equal(back.kind, 'file');
      assert.equal(back.sdUUID, SD);
      assert.deepEqual(back.volumes.map((v) => v.name).sort(), l.volumes.map((v) => v.name).sort());
      assert.deepEqual(back.vmLeases, l.vmLeases);
      assert.equal(back.ioTimeout, 10);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('file domain 4K/8M (version 5)', async () => {
    const base = scratchDir('domain-4k');
    try {
      const l = fileDomainLayout(base, { sdUUID: SD, sector: 4096, align: 8 * MIB, volumes: 1, ioTimeout: 1 });
      await writeDomain(l);
      assert.ok(readBytes(l.idsPath, 0, 8 * MIB).equals(realImage(base, 's', 'ids', 4096, 8 * MIB, 1)), 'ids 4K/8M');
      assert.ok(readBytes(l.volumes[0]!.path, 0, 8 * MIB).equals(realImage(base, 'r', l.volumes[0]!.name, 4096, 8 * MIB)), 'volume 4K/8M');
      const back = await readDomain(l.root);
      assert.equal(back.sector, 4096);
      assert.equal(back.align, 8 * MIB);
      assert.equal(back.xleasesPath, null);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('block domain: leases LV slots and read back', async () => {
    const base = scratchDir('domain-block');
    try {
      const vg = join(base, SD);
      const l = blockDomainLayout(vg, { sdUUID: SD, volumes: 3, vmLeases: 1 });
      await writeDomain(l, { mtime: 1 });
      assert.equal(statSync(l.leasesPath).size, 2048 * MIB);
      assert.equal(statSync(l.idsPath).size, 8 * MIB);
      for (const v of l.volumes) assert.ok(readBytes(l.leasesPath, v.offset, MIB).equals(realImage(base, 'r', v.name, 512, MIB)), v.name);
      const dump = execFileSync(SANLOCK_BIN, ['direct', 'dump', `${l.leasesPath}:0:${105 * MIB}`], { encoding: 'utf8' });
      const names = [...dump.matchAll(/^\s*(\d+) +\S+ +(\S+) /gm)].map((m) => [Number(m[1]), m[2]]);
      assert.deepEqual(names, [[MIB, 'SDM'], ...l.volumes.map((v) => [v.offset, v.name])]);
      const back = await readDomain(vg);
      assert.equal(back.kind, 'block');
      assert.deepEqual(back.volumes.map((v) => [v.name, v.slot, v.offset]), l.volumes.map((v) => [v.name, v.slot, v.offset]));
      assert.deepEqual(back.vmLeases.map((v) => v.name), l.vmLeases.map((v) => v.name));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
