// Zero-copy large reads with reusable aligned buffers, and the I/O threads being the addon's own
// (not libuv's shared pool, not worker_threads).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDirectDisk } from '../../src/storage/direct-disk.js';
import { IoContext } from '../../src/storage/io-context.js';
import { ioBufferStats, LENT_READ_MIN, recycleReadBuffer, trimIdleIoBuffers } from '../../src/storage/read-buffers.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { codeOf, until } from './helpers.js';

let dir: string;
let n = 0;

function makeFile(size: number, fill = 0): string {
  const p = join(dir, `b${n++}.img`);
  fs.writeFileSync(p, Buffer.alloc(size, fill));
  return p;
}

before(() => {
  dir = scratchDir('iobuffers');
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('read buffers', () => {
  it('a large read is lent without a copy and, once given back, serves the next read', async () => {
    const size = 1024 * 1024;
    assert.ok(size >= LENT_READ_MIN);
    const p = makeFile(2 * size, 0);
    fs.writeFileSync(p, Buffer.alloc(size, 0x5a), { flag: 'r+' });
    const d = await openDirectDisk(p);
    try {
      const a = await d.read(0, size, 2000);
      assert.equal(a.length, size);
      assert.equal(a[0], 0x5a);
      assert.equal(a[size - 1], 0x5a);
      // Page aligned memory straight from the I/O thread: the Buffer spans its whole store.
      assert.equal(a.byteOffset, 0);
      assert.equal(a.buffer.byteLength, size);
      const store = a.buffer;
      recycleReadBuffer(a);
      const reused = ioBufferStats.reused;
      const b = await d.read(size, size, 2000);
      assert.equal(b.buffer, store, 'the given-back buffer is reused');
      assert.equal(ioBufferStats.reused, reused + 1);
      assert.equal(b[0], 0, 'and holds the new read');
      // A second hand-back of the same buffer, or of a view, is ignored.
      recycleReadBuffer(b);
      const recycled = ioBufferStats.recycled;
      recycleReadBuffer(b);
      recycleReadBuffer(b.subarray(0, 512));
      assert.equal(ioBufferStats.recycled, recycled);
    } finally {
      await d.close();
    }
  });

  it('small reads are copies in ordinary memory (nothing to give back)', async () => {
    const d = await openDirectDisk(makeFile(8192, 7));
    try {
      const a = await d.read(0, 512, 2000);
      const b = await d.read(512, 512, 2000);
      assert.equal(a[0], 7);
      assert.notEqual(a.buffer.byteLength, 512, 'a copy in a pooled Buffer slab, not the aligned buffer');
      a.fill(1);
      assert.equal(b[0], 7);
      const recycled = ioBufferStats.recycled;
      recycleReadBuffer(a);
      assert.equal(ioBufferStats.recycled, recycled);
    } finally {
      await d.close();
    }
  });

  it('the buffer of an abandoned read is reused only after the late read returned', async () => {
    const size = 256 * 1024;
    const d = await openDirectDisk(makeFile(size, 3));
    try {
      recycleReadBuffer(await d.read(0, size, 2000));
      d.injectStall(10_000);
      assert.equal(await codeOf(d.read(0, size, 100)), -202);
      // The pooled buffer went to the hung read; this read must get another one.
      const allocated = ioBufferStats.allocated;
      const b = await d.read(0, size, 2000);
      assert.equal(ioBufferStats.allocated, allocated + 1);
      assert.equal(b[0], 3);
      const reused = ioBufferStats.reused;
      d.context.releaseStalls();
      await until(() => d.context.lateCompletions === 1, 3000);
      const c = await d.read(0, size, 2000);
      assert.equal(ioBufferStats.reused, reused + 1, 'the late read gave its buffer back');
      assert.notEqual(c.buffer, b.buffer);
      assert.equal(b[0], 3, 'a buffer still lent to a caller is left alone');
    } finally {
      await d.close();
    }
  });
});

/**
 * Starts `io` from the check phase and then blocks the main thread for `ms`: the next loop
 * iteration runs its due timers (the deadline) before it polls for the I/O's completion, as a
 * daemon whose event loop is late would.
 */
function startThenBlock<T>(io: () => Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) =>
    setImmediate(() => {
      io().then(resolve, reject);
      const end = performance.now() + ms;
      while (performance.now() < end) {
        // the main thread is busy; the I/O thread is not
      }
    }),
  );
}

describe('deadlines against a late event loop', () => {
  it('an I/O that returned before its deadline is not a timeout, however late the loop sees it', async () => {
    const d = await openDirectDisk(makeFile(8192, 4));
    try {
      await d.read(0, 512, 2000);
      const b = await startThenBlock(() => d.read(0, 512, 1000), 1500);
      assert.equal(b[0], 4);
      assert.equal(d.context.timeouts, 0);
    } finally {
      await d.close();
    }
  });

  it('an I/O that returned after its deadline is a timeout even when seen together with it', async () => {
    const d = await openDirectDisk(makeFile(8192, 4));
    try {
      await d.read(0, 512, 2000);
      d.injectStall(300);
      assert.equal(await codeOf(startThenBlock(() => d.read(0, 512, 100), 800)), -202);
      assert.equal(d.context.timeouts, 1);
    } finally {
      await d.close();
    }
  });
});

describe('pool trimming', () => {
  it('idle pooled buffers beyond the warm reserve give their pages back and still work', async () => {
    const size = 1024 * 1024;
    const p = makeFile(size, 0);
    fs.writeFileSync(p, Buffer.alloc(size, 0x42), { flag: 'r+' });
    const ctx = new IoContext({ name: 'trim', maxWorkers: 4 });
    try {
      const d = await ctx.open(p);
      const bufs = await Promise.all([0, 1, 2, 3].map(() => d.read(0, size, 2000)));
      for (const b of bufs) recycleReadBuffer(b);
      const discarded = ioBufferStats.discarded;
      trimIdleIoBuffers(0);
      // 4 MiB pooled, 2 MiB kept warm.
      assert.ok(ioBufferStats.discarded - discarded >= 2, `discarded ${ioBufferStats.discarded - discarded}`);
      const again = await Promise.all([0, 1, 2, 3].map(() => d.read(0, size, 2000)));
      for (const b of again) {
        assert.equal(b[0], 0x42);
        assert.equal(b[size - 1], 0x42);
      }
      for (const b of again) recycleReadBuffer(b);
    } finally {
      await ctx.close();
    }
  });
});

describe('I/O threads', () => {
  it('hung disks in many contexts leave libuv pool work (fs.promises) running', async () => {
    const ctxs = Array.from({ length: 4 }, (_, i) => new IoContext({ name: `hung${i}`, maxWorkers: 2 }));
    try {
      const hung: Promise<number>[] = [];
      for (const ctx of ctxs) {
        const d = await ctx.open(makeFile(4096));
        d.injectStall(30_000, 2);
        hung.push(codeOf(d.read(0, 512, 100)), codeOf(d.read(0, 512, 100)));
      }
      assert.deepEqual(await Promise.all(hung), Array(8).fill(-202));
      // 8 threads blocked, twice libuv's pool: if they were pool threads this would hang.
      for (let i = 0; i < 8; i++) {
        const p = makeFile(4096, i);
        assert.equal((await fs.promises.readFile(p))[0], i);
      }
      for (const ctx of ctxs) assert.equal(ctx.stuckWorkers, 2, 'still stuck: the fs calls did not wait for them');
    } finally {
      for (const ctx of ctxs) ctx.releaseStalls();
      for (const ctx of ctxs) await until(() => ctx.stuckWorkers === 0, 3000);
      await Promise.all(ctxs.map((c) => c.close()));
    }
  });

  it('runs no worker_threads: the process keeps a handful of threads', async () => {
    const threads = () => fs.readdirSync('/proc/self/task').length;
    const ctx = new IoContext({ name: 'count', maxWorkers: 2 });
    try {
      const d = await ctx.open(makeFile(8192, 1));
      const before = threads();
      await Promise.all([d.read(0, 512, 1000), d.read(512, 512, 1000), d.read(1024, 512, 1000)]);
      assert.ok(ctx.workerCount <= 2);
      assert.ok(threads() - before <= 2, `threads ${before} -> ${threads()}`);
      const names = fs.readdirSync('/proc/self/task').map((t) => {
        try {
          return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
        } catch {
          return ''; // a retired I/O thread of an earlier test exited meanwhile
        }
      });
      assert.ok(names.includes('sanlock-io'), names.join(','));
    } finally {
      await ctx.close();
    }
  });
});
