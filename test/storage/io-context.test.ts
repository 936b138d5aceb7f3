// Deadlines, late I/O and isolation of hung disks. A hung device is simulated by the worker
// hook DirectDisk.injectStall: the worker thread really blocks (Atomics.wait) before its
// syscall, exactly as it would inside a pread that the device does not answer.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DirectDiskOpener, openDirectDisk } from '../../src/storage/direct-disk.js';
import { IoContext } from '../../src/storage/io-context.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { codeOf, until } from './helpers.js';

let dir: string;
let n = 0;

function makeFile(size: number, fill = 0): string {
  const p = join(dir, `c${n++}.img`);
  fs.writeFileSync(p, Buffer.alloc(size, fill));
  return p;
}

/** How many of this process's fds refer to `path`. */
function fdsOn(path: string): number {
  let count = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === path) count++;
    } catch {
      // closed while listing
    }
  }
  return count;
}

before(() => {
  dir = scratchDir('iocontext');
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('deadlines and late I/O', () => {
  it('rejects with -202 at the deadline while the I/O is hung, then recovers on a fresh worker', async () => {
    const d = await openDirectDisk(makeFile(8192, 3));
    try {
      await d.read(0, 512, 2000); // worker started
      d.injectStall(5000);
      const t0 = performance.now();
      assert.equal(await codeOf(d.read(0, 512, 150)), -202);
      const took = performance.now() - t0;
      assert.ok(took >= 140 && took < 400, `timeout took ${took} ms`);
      assert.equal(d.context.stuckWorkers, 1);
      // The hung worker is not used: the next read goes to a second worker, started when the
      // first one was abandoned.
      assert.equal(d.context.workerCount, 2);
      const t1 = performance.now();
      assert.equal((await d.read(512, 512, 2000))[0], 3);
      assert.ok(performance.now() - t1 < 500, `read after a hang took ${performance.now() - t1} ms`);
      assert.equal(d.context.workerCount, 2);
      d.context.releaseStalls();
      await until(() => d.context.lateCompletions === 1, 2000);
      assert.equal(d.context.stuckWorkers, 0);
    } finally {
      await d.close();
    }
  });

  it('lets a late write land after its caller got -202', async () => {
    const p = makeFile(8192);
    const d = await openDirectDisk(p);
    try {
      d.injectStall(300);
      assert.equal(await codeOf(d.write(4096, Buffer.alloc(512, 0x77), 100)), -202);
      assert.equal(fs.readFileSync(p)[4096], 0, 'the write must still be pending');
      await until(() => d.context.lateCompletions === 1, 3000);
      assert.equal(fs.readFileSync(p)[4096], 0x77);
    } finally {
      await d.close();
    }
  });

  it('bounds the workers a hung disk can hold at maxWorkers; queued requests time out in the queue', async () => {
    const d = await openDirectDisk(makeFile(8192));
    try {
      d.injectStall(5000, 3);
      const r = [d.read(0, 512, 100), d.read(0, 512, 100), d.read(0, 512, 100)];
      assert.equal(d.context.workerCount, 2);
      assert.equal(d.context.queued, 1);
      assert.deepEqual(await Promise.all(r.map(codeOf)), [-202, -202, -202]);
      assert.equal(d.context.workerCount, 2);
      assert.equal(d.context.stuckWorkers, 2);
      // The third request never reached a worker, so it never runs.
      d.context.releaseStalls();
      await until(() => d.context.stuckWorkers === 0, 2000);
      assert.equal(d.context.lateCompletions, 2);
      assert.equal(d.reads, 0);
      assert.equal((await d.read(0, 512, 1000)).length, 512);
    } finally {
      await d.close();
    }
  });

  it('keeps the main event loop free while a worker is hung', async () => {
    const d = await openDirectDisk(makeFile(4096));
    try {
      await d.read(0, 512, 2000);
      d.injectStall(400);
      const pending = codeOf(d.read(0, 512, 1000));
      const lags: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        await new Promise((r) => setTimeout(r, 10));
        lags.push(performance.now() - t - 10);
      }
      assert.ok(Math.max(...lags) < 40, `event loop lag ${Math.max(...lags)} ms`);
      assert.equal(await pending, 0);
    } finally {
      await d.close();
    }
  });

  it('times out an open that hangs and closes its fd when it completes late', async () => {
    const ctx = new IoContext({ name: 'open-test' });
    const p = makeFile(4096);
    try {
      await ctx.open(p).then((x) => x.close()); // worker started
      assert.equal(fdsOn(p), 0);
      assert.equal(await codeOf(ctx.open(p, { timeoutMs: 100, openStallMs: 300 })), -202);
      await until(() => ctx.lateCompletions === 1, 3000);
      await until(() => fdsOn(p) === 0, 2000);
    } finally {
      await ctx.close();
    }
  });
});

describe('isolation', () => {
  it('a hung disk does not delay reads of another disk', async () => {
    const hung = await openDirectDisk(makeFile(8192));
    const other = await openDirectDisk(makeFile(8192, 9));
    try {
      await Promise.all([hung.read(0, 512, 2000), other.read(0, 512, 2000)]);
      hung.injectStall(3000, 2); // both workers of the context stuck, two more requests queued
      const hungReads = Array.from({ length: 4 }, () => codeOf(hung.read(0, 512, 2500)));
      const lat: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        const b = await other.read(512 * (i % 16), 512, 1000);
        lat.push(performance.now() - t);
        assert.equal(b[0], 9);
      }
      assert.ok(Math.max(...lat) < 50, `other disk read took ${Math.max(...lat)} ms`);
      assert.equal(hung.context.workerCount, 2);
      hung.context.releaseStalls();
      assert.deepEqual(await Promise.all(hungReads), [0, 0, 0, 0]);
    } finally {
      await hung.close();
      await other.close();
    }
  });

  it('disks of one context share its workers; closing the context closes them', async () => {
    const ctx = new IoContext({ name: 'ls1', maxWorkers: 2 });
    const a = await ctx.open(makeFile(4096, 1));
    const b = await ctx.open(makeFile(4096, 2));
    assert.deepEqual([(await a.read(0, 512, 1000))[0], (await b.read(0, 512, 1000))[0]], [1, 2]);
    assert.equal(ctx.workerCount, 1);
    await Promise.all([a.read(0, 512, 1000), b.read(0, 512, 1000), a.read(512, 512, 1000)]);
    assert.ok(ctx.workerCount <= 2);
    await ctx.close();
    assert.equal(ctx.workerCount, 0);
    assert.equal(await codeOf(a.read(0, 512, 1000)), -9);
    assert.equal(await codeOf(ctx.open(makeFile(4096))), -9);
  });

  it('DirectDiskOpener opens disks on the given context', async () => {
    const ctx = new IoContext({ name: 'opener' });
    const opener = new DirectDiskOpener(ctx, { sectorSize: 4096 });
    const d = await opener.open(makeFile(8192, 6));
    assert.equal(d.context, ctx);
    assert.equal(d.sectorSize, 4096);
    assert.equal((await d.read(4096, 4096, 1000))[0], 6);
    await ctx.close();
    assert.equal(await codeOf(d.read(0, 4096, 1000)), -9);
    const own = await new DirectDiskOpener().open(makeFile(4096));
    assert.notEqual(own.context, ctx);
    await own.close();
    assert.equal(own.context.isClosed, true);
  });

  it('closing a context whose workers are all stuck returns at once and closes idle disks', async () => {
    const ctx = new IoContext({ name: 'stuck', maxWorkers: 2 });
    const pa = makeFile(4096);
    const pb = makeFile(4096);
    const a = await ctx.open(pa);
    const b = await ctx.open(pb);
    assert.equal(fdsOn(pb), 1);
    a.injectStall(5000, 2);
    const hung = [codeOf(a.read(0, 512, 100)), codeOf(a.read(0, 512, 100))];
    assert.deepEqual(await Promise.all(hung), [-202, -202]);
    assert.equal(ctx.stuckWorkers, 2);
    const t = performance.now();
    await ctx.close();
    assert.ok(performance.now() - t < 50, `context close took ${performance.now() - t} ms`);
    assert.equal(fdsOn(pb), 0, 'the idle disk is closed');
    assert.equal(await codeOf(b.read(0, 512, 1000)), -9);
    assert.equal(fdsOn(pa), 1, 'the hung disk keeps its fd until its I/O returns');
    ctx.releaseStalls();
    await until(() => ctx.workerCount === 0, 3000);
    await until(() => fdsOn(pa) === 0, 2000);
  });

  it('a queued write carries the bytes of the call, not later changes to the caller buffer', async () => {
    const ctx = new IoContext({ name: 'one', maxWorkers: 1 });
    const p = makeFile(8192);
    try {
      const d = await ctx.open(p);
      d.injectStall(100);
      const first = d.write(0, Buffer.alloc(512, 1), 2000);
      const buf = Buffer.alloc(512, 2);
      const second = d.write(512, buf, 2000);
      assert.equal(ctx.queued, 1);
      buf.fill(3);
      await Promise.all([first, second]);
      const onFile = fs.readFileSync(p);
      assert.deepEqual([onFile[0], onFile[512]], [1, 2]);
    } finally {
      await ctx.close();
    }
  });

  it('close does not wait for a hung I/O; the fd and workers go away when it returns', async () => {
    const p = makeFile(4096);
    const d = await openDirectDisk(p);
    assert.equal(fdsOn(p), 1);
    await d.read(0, 512, 2000);
    d.injectStall(5000);
    const pending = codeOf(d.read(0, 512, 100));
    assert.equal(await pending, -202);
    const t = performance.now();
    await d.close();
    assert.ok(performance.now() - t < 50, 'close waited for the hung I/O');
    assert.equal(d.context.workerCount, 1, 'the stuck worker is still there');
    assert.equal(fdsOn(p), 1, 'the fd stays open while a late I/O may still use it');
    d.context.releaseStalls();
    await until(() => d.context.workerCount === 0, 3000);
    await until(() => fdsOn(p) === 0, 2000);
  });
});

describe('overhead', () => {
  it('a worker round trip costs well under 100 µs (median), so does it on top of a read', async () => {
    const p = makeFile(65536);
    const d = await openDirectDisk(p);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    try {
      for (let i = 0; i < 50; i++) await d.size();
      const trip: number[] = [];
      for (let i = 0; i < 300; i++) {
        const t = performance.now();
        await d.size(); // fstat: the syscall itself is ~1 µs
        trip.push((performance.now() - t) * 1000);
      }
      // Generous bound for a loaded 2-core CI box; bench/storage.ts reports ~20 µs idle.
      assert.ok(median(trip) < 100, `round trip median ${median(trip)} µs`);
      const rd: number[] = [];
      for (let i = 0; i < 300; i++) {
        const t = performance.now();
        await d.read(512 * (i % 128), 512, 1000);
        rd.push((performance.now() - t) * 1000);
      }
      assert.ok(median(rd) < 2000, `512 B read median ${median(rd)} µs`);
    } finally {
      await d.close();
    }
  });
});
