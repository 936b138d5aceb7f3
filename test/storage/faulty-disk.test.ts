import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultyDisk } from '../../src/storage/faulty-disk.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { codeOf } from './helpers.js';

function setup(): { mem: MemDisk; disk: FaultyDisk } {
  const mem = new MemDisk('/mem', 64 * 1024);
  return { mem, disk: new FaultyDisk(mem) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FaultyDisk', () => {
  it('passes I/O through and counts it when no fault is set', async () => {
    const { mem, disk } = setup();
    await disk.write(512, Buffer.alloc(1024, 7), 1000);
    const b = await disk.read(512, 512, 1000);
    assert.equal(b[0], 7);
    assert.equal(mem.bytes[1535], 7);
    assert.deepEqual([disk.readCalls, disk.writeCalls, disk.reads, disk.writes, disk.bytesRead, disk.bytesWritten], [1, 1, 1, 1, 512, 1024]);
    assert.equal(disk.faultsInjected, 0);
    assert.equal(disk.sectorSize, 512);
    assert.equal(disk.path, '/mem');
  });

  it('fails with EIO only in the faulty range and for the chosen op', async () => {
    const { mem, disk } = setup();
    disk.setFaults([{ op: 'write', range: { start: 4096, end: 8192 }, error: -5 }]);
    assert.equal(await codeOf(disk.write(4096, Buffer.alloc(512, 1), 1000)), -5);
    assert.equal(await codeOf(disk.write(3584, Buffer.alloc(1024, 1), 1000)), -5, 'overlapping I/O is affected');
    assert.equal(mem.bytes[4096], 0, 'a failed write writes nothing');
    assert.equal(await codeOf(disk.write(8192, Buffer.alloc(512, 1), 1000)), 0);
    assert.equal(await codeOf(disk.read(4096, 512, 1000)), 0, 'reads are not affected');
    assert.equal(disk.faultsInjected, 2);
    disk.clearFaults();
    assert.equal(await codeOf(disk.write(4096, Buffer.alloc(512, 1), 1000)), 0);
  });

  it('times out a delayed read at the deadline with -202, the read still happens late', async () => {
    const { disk } = setup();
    disk.setFaults([{ op: 'read', delayMs: 150 }]);
    const t = performance.now();
    assert.equal(await codeOf(disk.read(0, 512, 50)), -202);
    const took = performance.now() - t;
    assert.ok(took >= 45 && took < 140, `took ${took}`);
    assert.equal(disk.reads, 0);
    await sleep(200);
    assert.equal(disk.reads, 1);
    assert.equal(disk.lateCompletions, 1);
    assert.equal(disk.timeouts, 1);
  });

  it('a delay shorter than the deadline only slows the I/O', async () => {
    const { disk } = setup();
    disk.setFaults([{ delayMs: 40 }]);
    const t = performance.now();
    assert.equal(await codeOf(disk.read(0, 512, 1000)), 0);
    assert.ok(performance.now() - t >= 35);
  });

  it('random delays use the injected random source within [min, max]', async () => {
    const mem = new MemDisk('/mem', 4096);
    const asked: number[] = [];
    const disk = new FaultyDisk(mem, {
      random: () => 0.5,
      sleep: async (ms, signal) => {
        if (!signal) asked.push(ms);
        else await new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason)));
      },
    });
    disk.setFaults([{ delayMs: { min: 10, max: 30 } }]);
    await disk.read(0, 512, 1000);
    assert.deepEqual(asked, [20]);
  });

  it('hang forever: -202 at the deadline, the I/O happens only after releaseHung', async () => {
    const { mem, disk } = setup();
    disk.setFaults([{ op: 'write', hang: 'forever' }]);
    const data = Buffer.alloc(512, 0x42);
    assert.equal(await codeOf(disk.write(0, data, 30)), -202);
    data.fill(0); // the caller reuses its buffer; the late write must carry the old content
    assert.equal(disk.hungCount, 1);
    await sleep(30);
    assert.equal(mem.bytes[0], 0);
    disk.releaseHung();
    await sleep(5);
    assert.equal(mem.bytes[0], 0x42);
    assert.equal(disk.lateCompletions, 1);
  });

  it('late I/O: completes after N ms even though the caller timed out', async () => {
    const { mem, disk } = setup();
    disk.setFaults([{ op: 'write', hang: { completeAfterMs: 80 } }]);
    assert.equal(await codeOf(disk.write(1024, Buffer.alloc(512, 9), 20)), -202);
    assert.equal(mem.bytes[1024], 0);
    await sleep(120);
    assert.equal(mem.bytes[1024], 9);
  });

  it('short reads fail with -90 and corrupt bytes flip data', async () => {
    const { disk } = setup();
    await disk.write(0, Buffer.alloc(1024, 0x0f), 1000);
    disk.setFaults([{ op: 'read', shortRead: 100, count: 1 }]);
    assert.equal(await codeOf(disk.read(0, 1024, 1000)), -90);
    assert.equal(await codeOf(disk.read(0, 1024, 1000)), 0, 'count 1 expired');
    disk.setFaults([{ op: 'read', corruptBytes: [0, 5] }]);
    const b = await disk.read(0, 512, 1000);
    assert.deepEqual([b[0], b[1], b[5]], [0xf0, 0x0f, 0xf0]);
  });

  it('probability selects I/Os with the random source', async () => {
    const mem = new MemDisk('/mem', 4096);
    const seq = [0.1, 0.9, 0.1, 0.9];
    let i = 0;
    const disk = new FaultyDisk(mem, { random: () => seq[i++ % seq.length]! });
    disk.setFaults([{ probability: 0.5, error: -5 }]);
    const codes = [];
    for (let k = 0; k < 4; k++) codes.push(await codeOf(disk.read(0, 512, 1000)));
    assert.deepEqual(codes, [-5, 0, -5, 0]);
  });

  it('faults can change while I/O is running', async () => {
    const { disk } = setup();
    disk.setFaults([{ delayMs: 60 }]);
    const slow = disk.read(0, 512, 1000);
    disk.setFaults([{ error: -5 }]);
    assert.equal(await codeOf(disk.read(0, 512, 1000)), -5);
    assert.equal(await codeOf(slow), 0);
    disk.addFault({ op: 'read', range: { start: 0, end: 512 }, error: -22 });
    assert.equal(await codeOf(disk.write(0, Buffer.alloc(512), 1000)), -5, 'first matching rule wins');
  });
});
