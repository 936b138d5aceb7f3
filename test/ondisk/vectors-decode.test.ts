// Every golden image decodes with our codecs: every leader and dblock checksum verifies, every
// request record and rindex header is well formed, and the README's spot values hold.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { dblockValid, decodeDblock, decodeModeBlock } from '../../src/ondisk/dblock.js';
import { bitmapHostIds } from '../../src/ondisk/delta-sector.js';
import { geometryFromLeader } from '../../src/ondisk/geometry.js';
import { DELTA_DISK_MAGIC, decodeLeader, leaderChecksumOk, PAXOS_DISK_CLEAR, PAXOS_DISK_MAGIC } from '../../src/ondisk/leader.js';
import { decodeLvb, lvbOffset } from '../../src/ondisk/lvb.js';
import { decodeRequest, verifyRequest } from '../../src/ondisk/request.js';
import { decodeRindexEntry, decodeRindexHeader, RINDEX_DISK_MAGIC, rindexEntryOffset, verifyRindexHeader } from '../../src/ondisk/rindex.js';
import { VECTORS_DIR } from '../helpers/paths.js';

const V = VECTORS_DIR;
const load = (n: string) => gunzipSync(readFileSync(`${V}/${n}.img.gz`));

interface Seen { delta: number; paxos: number; dblocks: number; rindex: number; cleared: number }

function decodeImage(img: Buffer): Seen {
  const seen: Seen = { delta: 0, paxos: 0, dblocks: 0, rindex: 0, cleared: 0 };
  let al = 1048576;
  for (let off = 0; off < img.length; off += al) {
    const magic = img.readUInt32LE(off);
    if (magic === DELTA_DISK_MAGIC || magic === PAXOS_DISK_MAGIC || magic === PAXOS_DISK_CLEAR) {
      const l = decodeLeader(img, off);
      const g = geometryFromLeader(l.sectorSize, l.flags);
      al = g.alignSize;
      assert.ok(leaderChecksumOk(img, off), `leader at ${off}`);
      if (magic === DELTA_DISK_MAGIC) {
        for (let h = 0; h < g.maxHosts; h++) {
          const so = off + h * g.sectorSize;
          assert.equal(img.readUInt32LE(so), DELTA_DISK_MAGIC, `host ${h + 1} record`);
          assert.ok(leaderChecksumOk(img, so), `delta checksum host ${h + 1}`);
          seen.delta++;
        }
      } else {
        if (magic === PAXOS_DISK_CLEAR) seen.cleared++;
        seen.paxos++;
        assert.equal(verifyRequest(decodeRequest(img, off + g.sectorSize)), 0);
        for (let h = 0; h < l.numHosts; h++) {
          const so = off + (2 + h) * g.sectorSize;
          assert.ok(dblockValid(img, so), `dblock ${h}`);
          if (decodeDblock(img, so).mbal) seen.dblocks++;
        }
      }
    } else if (magic === RINDEX_DISK_MAGIC) {
      const h = decodeRindexHeader(img, off);
      assert.equal(verifyRindexHeader(h, h.lockspaceName, off), 0);
      seen.rindex++;
    } else {
      assert.ok(img.subarray(off, off + 512).every((b) => b === 0), `unknown area at ${off} is blank`);
    }
  }
  return seen;
}

test('every golden image decodes with valid checksums', () => {
  const names = readdirSync(V).filter((n) => n.endsWith('.img.gz')).map((n) => n.slice(0, -7));
  assert.ok(names.length >= 25);
  for (const n of names) {
    const s = decodeImage(load(n));
    assert.ok(s.delta + s.paxos + s.rindex > 0, `${n}: something decoded`);
  }
});

test('spot values from the vectors README', () => {
  const bitmap = load('ls_512_1M_host2_bitmap');
  assert.deepEqual(bitmapHostIds(bitmap, 512, 2000), [1]);
  const ev = decodeLeader(load('ls_512_1M_host2_event'), 512);
  assert.deepEqual([ev.resourceName, ev.ownerGeneration, ev.writeId, ev.writeGeneration, ev.writeTimestamp], ['hostC', 3, 1, 5, 7]);
  const sh = load('res_512_1M_sh_host12');
  assert.deepEqual(decodeModeBlock(sh, 0x400), { flags: 1, generation: 1 });
  assert.deepEqual(decodeModeBlock(sh, 0x600), { flags: 1, generation: 1 });
  assert.equal(decodeDblock(sh, 0x600).mbal, 2002);
  const rel = decodeDblock(load('res_512_1M_released'), 0x400);
  assert.equal(rel.flags, 1);
  assert.equal(rel.checksum, 0x9606518b);
  assert.equal(decodeLvb(load('res_512_1M_lvb').subarray(lvbOffset(0, 512)), 9).toString(), 'hello-lvb');
  assert.equal(decodeLvb(load('res_4k_1M_lvb').subarray(lvbOffset(0, 4096)), 6).toString(), 'lvb-4k');
  const rx = load('rindex_create2');
  assert.deepEqual({ ...decodeRindexEntry(rx, 1048576 + rindexEntryOffset(1, 512)) }, { resOffset: 4194304, flags: 0, unused: 0, name: 'RES2' });
  const del = load('rindex_delete2');
  assert.equal(decodeImage(del).cleared, 1);
  assert.equal(decodeLeader(del, 4194304).writeTimestamp, 776);
});
