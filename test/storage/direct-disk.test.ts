import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SanlockError } from '../../src/codes.js';
import { openDirectDisk } from '../../src/storage/direct-disk.js';
import { settledAfterTimeout } from '../../src/storage/disk.js';
import { probeDevice, probeSectorSize } from '../../src/storage/geometry-probe.js';
import { scratchDir } from '../helpers/real-sanlock.js';

const directIo = createRequire(import.meta.url)('@ronomon/direct-io') as { O_DIRECT: number; O_SYNC: number };

let dir: string;
let n = 0;

function makeFile(size: number, fill = 0): string {
  const p = join(dir, `f${n++}.img`);
  fs.writeFileSync(p, Buffer.alloc(size, fill));
  return p;
}

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function rejectsWith(p: Promise<unknown>, code: number): Promise<SanlockError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SanlockError, `expected SanlockError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected rejection with ${code}`);
}

before(() => {
  dir = scratchDir('storage');
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('DirectDisk on a regular file', () => {
  it('detects 512-byte sectors and the file size', async () => {
    const p = makeFile(3 * 1024 * 1024);
    const d = await openDirectDisk(p);
    try {
      assert.equal(d.sectorSize, 512);
      assert.equal(d.isBlockDevice, false);
      assert.equal(await d.size(), 3 * 1024 * 1024);
      assert.equal(await probeSectorSize(p), 512);
      const info = await probeDevice(p);
      assert.deepEqual([info.isBlockDevice, info.sectorSize, info.size], [false, 512, 3 * 1024 * 1024]);
    } finally {
      await d.close();
    }
  });

  for (const len of [512, 4096, 1024 * 1024]) {
    it(`round-trips ${len} bytes and the bytes reach the file`, async () => {
      const p = makeFile(4 * 1024 * 1024);
      const d = await openDirectDisk(p);
      try {
        const off = 1024 * 1024 + (len === 512 ? 1536 : 0);
        const data = pattern(len, len);
        await d.write(off, data, 2000);
        const back = await d.read(off, len, 2000);
        assert.ok(back.equals(data));
        assert.equal(d.writes, 1);
        assert.equal(d.reads, 1);
        assert.equal(d.bytesWritten, len);
        const onFile = fs.readFileSync(p).subarray(off, off + len);
        assert.ok(onFile.equals(data));
        // Neighbours untouched.
        assert.equal(fs.readFileSync(p)[off - 1], 0);
        assert.equal(fs.readFileSync(p)[off + len], 0);
      } finally {
        await d.close();
      }
    });
  }

  it('returns a buffer the caller owns (later reads do not change it)', async () => {
    const p = makeFile(8192);
    const d = await openDirectDisk(p);
    try {
      await d.write(0, Buffer.alloc(512, 1), 1000);
      const a = await d.read(0, 512, 1000);
      await d.write(0, Buffer.alloc(512, 2), 1000);
      const b = await d.read(0, 512, 1000);
      assert.equal(a[0], 1);
      assert.equal(b[0], 2);
    } finally {
      await d.close();
    }
  });

  it('refuses unaligned offset or length with -22 and writes nothing', async () => {
    const p = makeFile(8192, 0xaa);
    const d = await openDirectDisk(p);
    try {
      await rejectsWith(d.write(100, Buffer.alloc(512, 1), 1000), -22);
      await rejectsWith(d.write(512, Buffer.alloc(100, 1), 1000), -22);
      await rejectsWith(d.write(512, Buffer.alloc(0), 1000), -22);
      await rejectsWith(d.read(1, 512, 1000), -22);
      await rejectsWith(d.read(0, 513, 1000), -22);
      await rejectsWith(d.read(-512, 512, 1000), -22);
      assert.equal(d.writes, 0);
      assert.ok(fs.readFileSync(p).equals(Buffer.alloc(8192, 0xaa)));
    } finally {
      await d.close();
    }
  });

  it('applies a sector size override to alignment checks', async () => {
    const p = makeFile(16384);
    const d = await openDirectDisk(p, { sectorSize: 4096 });
    try {
      assert.equal(d.sectorSize, 4096);
      await rejectsWith(d.read(512, 512, 1000), -22);
      assert.equal((await d.read(4096, 4096, 1000)).length, 4096);
    } finally {
      await d.close();
    }
    await rejectsWith(openDirectDisk(p, { sectorSize: 1000 }), -22);
  });

  it('fails a missing file with -2', async () => {
    const e = await rejectsWith(openDirectDisk(join(dir, 'nope.img')), -2);
    assert.match(e.message, /nope\.img/);
  });

  it('opens read-only: reads work, writes fail with -9 (EBADF)', async () => {
    const p = makeFile(4096, 5);
    fs.chmodSync(p, 0o444);
    const d = await openDirectDisk(p, { readOnly: true });
    try {
      assert.equal((await d.read(0, 512, 1000))[0], 5);
      await rejectsWith(d.write(0, Buffer.alloc(512), 1000), -9);
      assert.ok(fs.readFileSync(p).equals(Buffer.alloc(4096, 5)));
    } finally {
      await d.close();
    }
  });

  it('fails read-write open of a read-only file with -13 when not root', { skip: process.getuid?.() === 0 ? 'root bypasses file modes' : false }, async () => {
    const p = makeFile(4096);
    fs.chmodSync(p, 0o444);
    await rejectsWith(openDirectDisk(p), -13);
  });

  it('reports a read past the end of the file as a short read, -90 (EMSGSIZE)', async () => {
    const p = makeFile(4096);
    const d = await openDirectDisk(p);
    try {
      await rejectsWith(d.read(4096, 512, 1000), -90);
      await rejectsWith(d.read(3584, 1024, 1000), -90);
      // A write past the end grows the file, as with sanlock on a file.
      await d.write(8192, Buffer.alloc(512, 9), 1000);
      assert.equal(await d.size(), 8192 + 512);
    } finally {
      await d.close();
    }
  });

  it('a write abandoned at its deadline says when it is over: details.settled resolves once the late write has landed', async () => {
    const path = makeFile(4096);
    const d = await openDirectDisk(path);
    try {
      d.injectStall(10_000);
      const err = await rejectsWith(d.write(512, pattern(512, 9), 100), -202);
      const settled = settledAfterTimeout(err);
      assert.ok(settled, 'a started write that timed out carries settled');
      let over = false;
      void settled.then(() => (over = true));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(over, false, 'not over while the write still hangs');
      d.context.releaseStalls();
      // the completion handle is unref'd (a hung thread must not keep a process up): a timer
      // keeps this test's loop alive meanwhile
      const keepAlive = setTimeout(() => {}, 5000);
      await settled;
      clearTimeout(keepAlive);
      assert.deepEqual(fs.readFileSync(path).subarray(512, 1024), pattern(512, 9), 'landed by then');
    } finally {
      await d.close();
    }
  });

  it('a write waits behind an abandoned write to the same sectors (the stale one never lands last); one that cannot wait long enough fails unissued', async () => {
    const path = makeFile(4096);
    const d = await openDirectDisk(path);
    const at = (off: number) => fs.readFileSync(path).subarray(off, off + 512);
    try {
      d.injectStall(10_000);
      await rejectsWith(d.write(512, pattern(512, 1), 100), -202);
      const second = d.write(512, pattern(512, 2), 5000);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(at(512), Buffer.alloc(512), 'the second write was held back');
      d.context.releaseStalls();
      await second;
      assert.deepEqual(at(512), pattern(512, 2), 'the newer write landed last');

      d.injectStall(10_000);
      const hung = await rejectsWith(d.write(1024, pattern(512, 3), 100), -202);
      const held = await rejectsWith(d.write(1024, pattern(512, 4), 100), -202);
      assert.equal(held.details?.started, false, 'never issued');
      await d.write(1536, pattern(512, 5), 1000); // other sectors do not wait
      d.context.releaseStalls();
      const keepAlive = setTimeout(() => {}, 5000);
      await settledAfterTimeout(hung);
      clearTimeout(keepAlive);
      assert.deepEqual(at(1024), pattern(512, 3));
      assert.deepEqual(at(1536), pattern(512, 5));
    } finally {
      await d.close();
    }
  });

  it('fails I/O on a closed disk with -9', async () => {
    const d = await openDirectDisk(makeFile(4096));
    await d.close();
    await d.close();
    await rejectsWith(d.read(0, 512, 1000), -9);
  });

  it('opens on tmpfs exactly as the kernel allows O_DIRECT there (else a clear -22)', async () => {
    const p = `/dev/shm/sanlock-ts-odirect-${process.pid}`;
    fs.writeFileSync(p, Buffer.alloc(4096));
    try {
      let kernelAllows = true;
      try {
        fs.closeSync(fs.openSync(p, fs.constants.O_RDWR | directIo.O_DIRECT | directIo.O_SYNC));
      } catch (e) {
        assert.equal((e as NodeJS.ErrnoException).code, 'EINVAL');
        kernelAllows = false;
      }
      if (kernelAllows) {
        // Linux ≥ 6.6 supports O_DIRECT on tmpfs; so does sanlock then.
        const d = await openDirectDisk(p);
        await d.write(0, Buffer.alloc(512, 4), 1000);
        assert.equal((await d.read(0, 512, 1000))[0], 4);
        await d.close();
      } else {
        const e = await rejectsWith(openDirectDisk(p), -22);
        assert.match(e.message, /sanlock-ts-odirect/);
      }
    } finally {
      fs.rmSync(p, { force: true });
    }
  });
});

describe('DirectDisk on a block device', () => {
  let loop: string | undefined;
  let backing: string;
  const canLoop = process.getuid?.() === 0 && fs.existsSync('/dev/loop-control');

  before(() => {
    if (!canLoop) return;
    backing = makeFile(8 * 1024 * 1024);
    try {
      loop = execFileSync('losetup', ['--sector-size', '4096', '-f', '--show', backing], { encoding: 'utf8' }).trim();
    } catch {
      loop = undefined;
    }
  });
  after(() => {
    if (loop) execFileSync('losetup', ['-d', loop]);
  });

  it('detects the logical sector size (4096 loop device) and the device size', async (t) => {
    if (!loop) return t.skip('no loop device available');
    const d = await openDirectDisk(loop);
    try {
      assert.equal(d.isBlockDevice, true);
      assert.equal(d.sectorSize, 4096);
      assert.equal(d.logicalSectorSize, 4096);
      assert.equal(await d.size(), 8 * 1024 * 1024);
      await rejectsWith(d.read(512, 512, 1000), -22);
      const data = pattern(4096, 7);
      await d.write(8192, data, 2000);
      assert.ok((await d.read(8192, 4096, 2000)).equals(data));
    } finally {
      await d.close();
    }
    // With a 512 override the kernel itself refuses sub-sector O_DIRECT I/O.
    const small = await openDirectDisk(loop, { sectorSize: 512 });
    try {
      await rejectsWith(small.read(512, 512, 1000), -22);
    } finally {
      await small.close();
    }
  });
});
