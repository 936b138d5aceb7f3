// HostStateTracker.update skips empty sectors on their raw fields and unchanged sectors on their
// bytes. This checks it against the plain rule (decode every sector of every read, as
// spec/algorithms.md §2.4 states it) over random sequences of reads: same slots, same events,
// same request decisions, for aligned and unaligned buffers and both sector sizes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HOSTID_BITMAP_OFFSET, setBit, testBit } from '../../src/lease/delta-lease.js';
import { type DeliveredEvent, type HostSlot, HostStateTracker } from '../../src/lease/host-state.js';
import { namesEqual } from '../../src/ondisk/fields.js';
import { DELTA_DISK_MAGIC, DELTA_DISK_VERSION, decodeLeader, encodeLeader, type Leader } from '../../src/ondisk/leader.js';

const SPACE = 'LS';
const OUR = 1;
const SET_BITMAP_SECONDS = 6;

/** The rule without shortcuts: every sector decoded on every read. */
class Reference {
  slots = new Map<number, HostSlot>();
  firstUpdate = 0;
  update(area: Buffer, ss: number, maxHosts: number, now: number): { events: DeliveredEvent[]; requesters: number[] } {
    const events: DeliveredEvent[] = [];
    const requesters: number[] = [];
    if (!this.firstUpdate) this.firstUpdate = now;
    for (let i = 0; i < maxHosts; i++) {
      const hostId = i + 1;
      const off = i * ss;
      const l = decodeLeader(area, off);
      let s = this.slots.get(hostId);
      if (!s) {
        if (l.timestamp === 0 && l.ownerId === 0 && l.ownerGeneration === 0) continue;
        s = { hostId, ownerId: 0, generation: 0, timestamp: 0, ioTimeout: 0, name: '', lastCheck: 0, firstCheck: this.firstUpdate, lastLive: 0, lastReq: 0, badMagic: false, badSpace: false };
        this.slots.set(hostId, s);
      }
      s.lastCheck = now;
      if (!s.firstCheck) s.firstCheck = now;
      s.badMagic = l.magic !== DELTA_DISK_MAGIC;
      s.badSpace = !namesEqual(l.spaceName, SPACE);
      if (s.ownerId === l.ownerId && s.generation === l.ownerGeneration && s.timestamp === l.timestamp) continue;
      Object.assign(s, { ownerId: l.ownerId, generation: l.ownerGeneration, timestamp: l.timestamp, ioTimeout: l.ioTimeout, name: l.resourceName, lastLive: now });
      if (hostId === OUR || !testBit(area, OUR, off + HOSTID_BITMAP_OFFSET)) continue;
      if (l.writeGeneration !== 0) events.push({ fromHostId: hostId, fromGeneration: l.ownerGeneration, generation: l.writeId, event: l.writeGeneration, data: l.writeTimestamp });
      if (now - s.lastReq >= SET_BITMAP_SECONDS) {
        s.lastReq = now;
        requesters.push(hostId);
      }
    }
    return { events, requesters };
  }
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function record(hostId: number, ts: number, gen: number, r: () => number): Leader {
  return {
    magic: r() < 0.05 ? 0x1234 : DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, flags: 0, sectorSize: 512, numHosts: 0, maxHosts: 2000,
    ownerId: hostId, ownerGeneration: gen, lver: 0, spaceName: r() < 0.05 ? 'OTHER' : SPACE, resourceName: `host${hostId}`, timestamp: ts,
    unused1: 0, checksum: 0, unused2: 0, ioTimeout: 1 + Math.floor(r() * 3), writeId: 0, writeGeneration: r() < 0.3 ? 1 + Math.floor(r() * 5) : 0, writeTimestamp: 7,
  };
}

for (const ss of [512, 4096]) {
  for (const aligned of [true, false]) {
    test(`update matches decode-every-sector: ${ss}-byte sectors, ${aligned ? 'aligned' : 'unaligned'} buffer`, () => {
      const maxHosts = ss === 512 ? 2000 : 250;
      const len = ss * maxHosts;
      // an unaligned view: the word fast path cannot be used and the byte path must agree
      const area = aligned ? Buffer.alloc(len) : Buffer.alloc(len + 1).subarray(1);
      const r = rng(ss * 7 + (aligned ? 1 : 2));
      const ref = new Reference();
      const hs = new HostStateTracker({ ourHostId: OUR, ioTimeout: 1, spaceName: SPACE, setBitmapSeconds: SET_BITMAP_SECONDS });
      const hosts = [1, 2, 3, 17, maxHosts - 1, maxHosts];
      let now = 100;
      for (let step = 0; step < 120; step++) {
        now += 1 + Math.floor(r() * 3);
        for (const h of hosts) {
          const off = (h - 1) * ss;
          const p = r();
          if (p < 0.35) {
            const ts = now - Math.floor(r() * 2);
            encodeLeader(record(h, ts, 1 + Math.floor(r() * 2), r), area, off);
            area.fill(0, off + HOSTID_BITMAP_OFFSET, off + HOSTID_BITMAP_OFFSET + 256);
            if (r() < 0.5) setBit(area, OUR, off + HOSTID_BITMAP_OFFSET);
          } else if (p < 0.4) {
            area.fill(0, off, off + ss); // released and cleared
          } else if (p < 0.45) {
            // only one high word of an otherwise empty record set: still not an empty slot
            area.fill(0, off, off + ss);
            area.writeUInt32LE(1, off + [36, 44, 156][Math.floor(r() * 3)]!);
          } else if (p < 0.5) {
            area[off + 200 + Math.floor(r() * 50)] = 0xff; // bytes after the leader only
          }
        }
        // a slot never seen before whose only non-zero byte is in one word of owner_id,
        // owner_generation or timestamp (low or high half): it must appear
        if (step % 3 === 0) {
          const h = 20 + step / 3;
          const off = (h - 1) * ss;
          area.writeUInt32LE(1 + Math.floor(r() * 5), off + [32, 36, 40, 44, 152, 156][(step / 3) % 6]!);
        }
        const want = ref.update(area, ss, maxHosts, now);
        const got = hs.update(area, { sectorSize: ss, maxHosts }, now);
        assert.deepEqual(got.events, want.events, `events at step ${step}`);
        assert.deepEqual(got.requesters, want.requesters, `requesters at step ${step}`);
        assert.equal(got.examineRequests, want.requesters.length > 0);
        for (let h = 1; h <= maxHosts; h++) assert.deepEqual(hs.slot(h), ref.slots.get(h), `slot ${h} at step ${step}`);
      }
      assert.ok(ref.slots.size >= hosts.length, 'every host was seen');
    });
  }
}
