// Round trips and corruption detection for every on-disk record codec (fast-check properties),
// plus the host bitmap and LVB helpers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SanlkCode } from '../../src/codes.js';
import { sanlockChecksum } from '../../src/ondisk/checksum.js';
import { dblockValid, decodeDblock, encodeDblock } from '../../src/ondisk/dblock.js';
import {
  bitmapHostIds, clearIdBit, HOSTID_BITMAP_OFFSET, readBitmap, setIdBit, testIdBit, writeBitmap,
} from '../../src/ondisk/delta-sector.js';
import {
  DELTA_DISK_MAGIC, DELTA_DISK_VERSION, decodeLeader, encodeLeader, type Leader, LEADER_CHECKSUM_LEN, verifyLeader,
} from '../../src/ondisk/leader.js';
import { decodeLvb, encodeLvb, lvbOffset } from '../../src/ondisk/lvb.js';
import { decodeRequest, encodeRequest, REQ_DISK_MAGIC, REQ_DISK_VERSION, verifyRequest } from '../../src/ondisk/request.js';
import {
  decodeRindexEntry, decodeRindexHeader, encodeRindexEntry, encodeRindexHeader, RINDEX_DISK_MAGIC,
  RINDEX_DISK_VERSION, rindexEntryFree, rindexEntryOffset, rindexResourceOffset, verifyRindexHeader,
} from '../../src/ondisk/rindex.js';

const u64 = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });
// names as sanlock stores them: up to 48 non-NUL bytes (latin1 chars)
const name = fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 48 });

const leaderArb: fc.Arbitrary<Leader> = fc.record({
  magic: u32, version: u32, flags: u32, sectorSize: u32, numHosts: u64, maxHosts: u64, ownerId: u64,
  ownerGeneration: u64, lver: u64, spaceName: name, resourceName: name, timestamp: u64, unused1: u64,
  checksum: fc.constant(0), unused2: u16, ioTimeout: u16, writeId: u64, writeGeneration: u64, writeTimestamp: u64,
});

test('leader: encode/decode round trip, checksum over bytes 0..167', () => {
  fc.assert(fc.property(leaderArb, (l) => {
    const buf = Buffer.alloc(512, 0xee);
    const sum = encodeLeader(l, buf, 0);
    const d = decodeLeader(buf, 0);
    assert.deepEqual({ ...d, checksum: 0 }, { ...l });
    assert.equal(d.checksum, sum);
    assert.equal(sum, sanlockChecksum(buf, 0, LEADER_CHECKSUM_LEN));
    assert.equal(buf[200], 0xee, 'encoder stays within 200 bytes');
  }), { numRuns: 200 });
});

test('leader: any single flipped bit in the checksummed bytes is detected', () => {
  const valid = leaderArb.map((l) => ({ ...l, magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION }));
  fc.assert(fc.property(valid, fc.nat({ max: LEADER_CHECKSUM_LEN * 8 + 31 }), (l, bit) => {
    const buf = Buffer.alloc(200);
    encodeLeader(l, buf, 0);
    assert.equal(verifyLeader(buf, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION }), 0);
    buf[bit >> 3]! ^= 1 << (bit & 7);
    // bits 0..1343 are data, 1344..1375 the checksum itself: either way the record is rejected
    assert.notEqual(verifyLeader(buf, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION }), 0);
  }), { numRuns: 300 });
});

test('leader: the known checksum of ls_512_1M_init records', () => {
  const buf = Buffer.alloc(200);
  const sum = encodeLeader({
    magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, flags: 0x10, sectorSize: 512, numHosts: 0, maxHosts: 1,
    ownerId: 0, ownerGeneration: 0, lver: 0, spaceName: 'LS', resourceName: '', timestamp: 0, unused1: 0, checksum: 0,
    unused2: 0, ioTimeout: 10, writeId: 0, writeGeneration: 0, writeTimestamp: 0,
  }, buf, 0);
  assert.equal(sum, 0xb0f174c0);
});

const dblockArb = fc.record({ mbal: u64, bal: u64, inp: u64, inp2: u64, inp3: u64, lver: u64, flags: u32 });

test('dblock: round trip and single-bit corruption detection', () => {
  fc.assert(fc.property(dblockArb, fc.nat({ max: 52 * 8 - 1 }), (d, bit) => {
    const buf = Buffer.alloc(128);
    const sum = encodeDblock(d, buf, 0);
    assert.deepEqual(decodeDblock(buf, 0), { ...d, checksum: sum });
    assert.ok(dblockValid(buf, 0));
    buf[bit >> 3]! ^= 1 << (bit & 7);
    // a flip that leaves all 52 checked bytes zero would be "never written"; impossible with a valid sum
    assert.equal(dblockValid(buf, 0), false);
  }), { numRuns: 300 });
});

test('request record: round trip; magic/version checks', () => {
  fc.assert(fc.property(u64, u32, (lver, forceMode) => {
    const buf = Buffer.alloc(24, 0x55);
    encodeRequest({ magic: REQ_DISK_MAGIC, version: REQ_DISK_VERSION, lver, forceMode }, buf, 0);
    const r = decodeRequest(buf, 0);
    assert.deepEqual(r, { magic: REQ_DISK_MAGIC, version: REQ_DISK_VERSION, lver, forceMode });
    assert.equal(buf.readUInt32LE(20), 0, 'padding written as zero');
    assert.equal(verifyRequest(r), 0);
    assert.equal(verifyRequest({ ...r, magic: r.magic ^ 1 }), SanlkCode.SANLK_REQUEST_MAGIC);
    assert.equal(verifyRequest({ ...r, version: 0x00020001 }), SanlkCode.SANLK_REQUEST_VERSION);
  }), { numRuns: 100 });
});

const headerArb = fc.record({
  magic: u32, version: u32, flags: u32, sectorSize: u32, maxResources: u32, unused: u32, rxOffset: u64, lockspaceName: name,
});

test('rindex header and entry: round trips', () => {
  fc.assert(fc.property(headerArb, (h) => {
    const buf = Buffer.alloc(512, 0x77);
    encodeRindexHeader(h, buf, 0);
    assert.deepEqual(decodeRindexHeader(buf, 0), { ...h });
    assert.equal(buf[80], 0x77);
  }), { numRuns: 200 });
  fc.assert(fc.property(u64, u32, u32, name, (resOffset, flags, unused, n) => {
    const buf = Buffer.alloc(64);
    encodeRindexEntry({ resOffset, flags, unused, name: n }, buf, 0);
    const e = decodeRindexEntry(buf, 0);
    assert.deepEqual(e, { resOffset, flags, unused, name: n });
    assert.equal(rindexEntryFree(e), resOffset === 0 && n === '');
  }), { numRuns: 200 });
});

test('rindex header verification order: magic, version, lockspace, offset', () => {
  const h = { magic: RINDEX_DISK_MAGIC, version: RINDEX_DISK_VERSION, flags: 1, sectorSize: 512, maxResources: 4096, unused: 0, rxOffset: 1048576, lockspaceName: 'LSX' };
  assert.equal(verifyRindexHeader(h, 'LSX', 1048576), 0);
  assert.equal(verifyRindexHeader({ ...h, magic: 0 }, 'LSY', 0), SanlkCode.SANLK_RINDEX_MAGIC);
  assert.equal(verifyRindexHeader({ ...h, version: 0x00020002 }, 'LSY', 0), SanlkCode.SANLK_RINDEX_VERSION);
  assert.equal(verifyRindexHeader({ ...h, version: 0x00010007 }, 'LSX', 1048576), 0, 'minor version ignored');
  assert.equal(verifyRindexHeader(h, 'LSY', 0), SanlkCode.SANLK_RINDEX_LOCKSPACE);
  assert.equal(verifyRindexHeader(h, 'LSX', 0), SanlkCode.SANLK_RINDEX_OFFSET);
  // entry i lives at X + ss + 64 i and describes the lease at X + 2al + i al (rindex_create1 layout)
  assert.equal(1048576 + rindexEntryOffset(1, 512), 0x100240);
  assert.equal(rindexResourceOffset(1048576, 1048576, 0), 3145728);
});

test('host bitmap: bit layout and helpers', () => {
  const sector = Buffer.alloc(512);
  setIdBit(sector, 0, 1);
  assert.equal(sector[HOSTID_BITMAP_OFFSET], 0x01, 'host 1 = byte 0 bit 0 (ls_512_1M_host2_bitmap)');
  setIdBit(sector, 0, 10);
  setIdBit(sector, 0, 2000);
  assert.equal(sector[HOSTID_BITMAP_OFFSET + 1], 0x02);
  assert.deepEqual(bitmapHostIds(sector, 0, 2000), [1, 10, 2000]);
  assert.deepEqual(bitmapHostIds(sector, 0, 250), [1, 10]);
  clearIdBit(sector, 0, 10);
  assert.equal(testIdBit(sector, 0, 10), false);
  assert.equal(sector.subarray(0, HOSTID_BITMAP_OFFSET).every((b) => b === 0), true, 'leader bytes untouched');
  const copy = readBitmap(sector, 0);
  const other = Buffer.alloc(4096);
  writeBitmap(other, 512, copy);
  assert.deepEqual(bitmapHostIds(other, 512, 2000), [1, 2000]);
  assert.throws(() => setIdBit(sector, 0, 0), RangeError);
  assert.throws(() => setIdBit(sector, 0, 2049), RangeError);
  fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 2000 }), { maxLength: 50 }), (ids) => {
    const s = Buffer.alloc(512);
    for (const id of ids) setIdBit(s, 0, id);
    assert.deepEqual(bitmapHostIds(s, 0, 2000), [...ids].sort((a, b) => a - b));
  }));
});

test('LVB: sector 2002 for every geometry, zero padded', () => {
  assert.equal(lvbOffset(0, 512), 0xfa400);
  assert.equal(lvbOffset(0, 4096), 8200192, 'res_4k_1M_lvb: outside the 1 MiB lease');
  const s = encodeLvb(Buffer.from('hello-lvb'), 512);
  assert.equal(s.length, 512);
  assert.equal(decodeLvb(s, 9).toString(), 'hello-lvb');
  assert.equal(s[9], 0);
  assert.throws(() => encodeLvb(Buffer.alloc(513), 512), RangeError);
});
