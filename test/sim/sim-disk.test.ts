import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SanlkCode, SanlockError } from '../../src/codes.js';
import { Xoshiro128 } from '../../src/sim/prng.js';
import { HostClock, Incarnation, Scheduler } from '../../src/sim/sim-clock.js';
import { type DiskProfile, perfectDiskProfile, SimStorage } from '../../src/sim/sim-disk.js';

const SS = 512;

function setup(profile: DiskProfile, seed = 1) {
  const sched = new Scheduler();
  const storage = new SimStorage(sched, new Xoshiro128(seed), 64 * SS, SS, profile);
  return { sched, storage };
}

const codeOf = (p: Promise<unknown>): Promise<number> => p.then(() => 0, (e: unknown) => (e instanceof SanlockError ? e.code : -9999));

test('perfect disk: a write is read back, I/O takes virtual time, unaligned I/O is EINVAL', async () => {
  const { sched, storage } = setup(perfectDiskProfile);
  const d = storage.view(new Incarnation(1, 1));
  const w = codeOf(d.write(SS, Buffer.alloc(SS, 7), 1000));
  await sched.run();
  assert.equal(await w, 0);
  assert.ok(sched.nowUs > 0 && sched.nowUs <= 2000, `latency ${sched.nowUs}`);
  const r = d.read(0, 2 * SS, 1000);
  await sched.run();
  const buf = await r;
  assert.equal(buf[0], 0);
  assert.equal(buf[SS], 7);
  assert.equal(await codeOf(d.read(100, SS, 1000)), -22);
});

test('a hung write times out with -202 and still lands later', async () => {
  const { sched, storage } = setup({ ...perfectDiskProfile, hang: 1, maxHangMs: 3000 });
  const landed: number[] = [];
  storage.onLand = () => landed.push(sched.nowUs);
  const d = storage.view(new Incarnation(1, 1));
  const w = codeOf(d.write(0, Buffer.alloc(SS, 1), 1000));
  let rejectedAt = -1;
  void w.then(() => { rejectedAt = sched.nowUs; });
  await sched.run();
  assert.equal(await w, SanlkCode.SANLK_AIO_TIMEOUT);
  assert.equal(rejectedAt, 1_000_000);
  assert.equal(landed.length, 1);
  assert.ok(landed[0]! > 1_000_000 && landed[0]! <= 3_000_000, `landed at ${landed[0]}`);
  assert.equal(storage.peek(0, 1)[0], 1);
});

test('EIO fails the call; a failed write may or may not have landed', async () => {
  const { sched, storage } = setup({ ...perfectDiskProfile, eio: 1 }, 3);
  const d = storage.view(new Incarnation(1, 1));
  const codes: Promise<number>[] = [];
  for (let i = 0; i < 40; i++) codes.push(codeOf(d.write(i * SS, Buffer.alloc(SS, 9), 1000)));
  await sched.run();
  for (const c of codes) assert.equal(await c, -5);
  let landed = 0;
  for (let i = 0; i < 40; i++) if (storage.peek(i * SS, 1)[0] === 9) landed++;
  assert.ok(landed > 5 && landed < 35, `landed ${landed}/40`);
});

test('an outage holds a host\'s I/O until it ends; other hosts are not affected', async () => {
  const { sched, storage } = setup(perfectDiskProfile);
  storage.setOutage(1, 5_000_000);
  const a = storage.view(new Incarnation(1, 1));
  const b = storage.view(new Incarnation(2, 1));
  const ra = codeOf(a.read(0, SS, 1000));
  let bDone = -1;
  void b.read(0, SS, 1000).then(() => { bDone = sched.nowUs; });
  const wa = a.write(0, Buffer.alloc(SS, 3), 10_000);
  await sched.run();
  assert.equal(await ra, SanlkCode.SANLK_AIO_TIMEOUT);
  await wa;
  assert.ok(bDone > 0 && bDone < 10_000);
  assert.ok(sched.nowUs >= 5_000_000, 'the long-deadline write completed after the outage');
  assert.equal(storage.peek(0, 1)[0], 3);
});

test('a crashed host\'s in-flight writes land or are lost, and never long after the crash', async () => {
  const { sched, storage } = setup({ ...perfectDiskProfile, maxHangMs: 3000 }, 5);
  const inc = new Incarnation(1, 1);
  const d = storage.view(inc);
  storage.setOutage(1, 60_000_000);
  for (let i = 0; i < 40; i++) void d.write(i * SS, Buffer.alloc(SS, 4), 100_000).catch(() => undefined);
  sched.after(10, () => {
    sched.kill(inc);
    storage.crash(inc);
  }, undefined, true);
  await sched.run();
  let landed = 0;
  for (let i = 0; i < 40; i++) if (storage.peek(i * SS, 1)[0] === 4) landed++;
  // every write was queued behind a 60 s outage: none may land after the host is gone
  assert.equal(landed, 0);
});

test('multi-sector I/O can tear at a sector boundary; sectors stay whole', async () => {
  const { sched, storage } = setup({ ...perfectDiskProfile, tear: 1 }, 11);
  const w = storage.view(new Incarnation(1, 1));
  const r = storage.view(new Incarnation(2, 1));
  let torn = 0;
  for (let round = 1; round <= 30; round++) {
    void w.write(0, Buffer.alloc(8 * SS, round), 1000);
    const p = r.read(0, 8 * SS, 1000);
    await sched.run();
    const buf = await p;
    const values = new Set<number>();
    for (let s = 0; s < 8; s++) {
      const sec = buf.subarray(s * SS, (s + 1) * SS);
      assert.ok(sec.every((x) => x === sec[0]), 'a sector is never half written');
      values.add(sec[0]!);
    }
    if (values.size > 1) torn++;
  }
  assert.ok(torn > 0, 'some reads saw a write half done');
});

test('writes of one host to one sector land in order unless the device may reorder them; through the disk view (our driver, write-order.ts) always in order', async () => {
  for (const [reorder, viaView] of [[false, false], [true, false], [true, true]] as const) {
    let stale = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const { sched, storage } = setup({ ...perfectDiskProfile, hang: 0.5, maxHangMs: 3000, reorder }, seed);
      const d = storage.view(new Incarnation(1, 1));
      const clock = new HostClock(sched, d.inc, 0, 1);
      const write = (b: Buffer) => (viaView ? d.write(0, b, 1000) : storage.write(d.inc, 0, b, 1000));
      // the newest write that reached the device (one held back past its deadline never does)
      let newest = 0;
      void (async () => {
        for (let v = 1; v <= 3; v++) {
          const issued = await write(Buffer.alloc(SS, v)).then(
            () => true,
            (e: SanlockError) => e.details?.started !== false,
          );
          if (issued) newest = v;
          await clock.sleep(10);
        }
      })();
      await sched.run();
      if (storage.peek(0, 1)[0] !== newest) stale++;
    }
    if (reorder && !viaView) assert.ok(stale > 0, 'with reorder a hung older write sometimes lands last');
    else assert.equal(stale, 0, `reorder ${reorder}, through the view ${viaView}`);
  }
});
