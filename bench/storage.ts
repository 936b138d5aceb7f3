// Storage benchmark: DirectDisk O_DIRECT latency against dd on the same file, the cost of the
// worker-thread round trip, and checksum throughput.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { sanlockChecksum } from '../src/ondisk/checksum.js';
import { openDirectDisk } from '../src/storage/direct-disk.js';
import { scratchDir } from '../test/helpers/real-sanlock.js';
import type { BenchCase, Row } from './main.js';

interface DirectIo {
  O_DIRECT: number;
  O_SYNC: number;
  getAlignedBuffer(size: number, alignment: number): Buffer;
}
const directIo = createRequire(import.meta.url)('@ronomon/direct-io') as DirectIo;

const MIB = 1024 * 1024;
const FILE_SIZE = 64 * MIB;

const sizes = [
  { label: '512 B', bytes: 512, reads: 3000, writes: 1000 },
  { label: '4 KiB', bytes: 4096, reads: 3000, writes: 1000 },
  { label: '1 MiB', bytes: MIB, reads: 64, writes: 64 },
];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function stats(us: number[]): { median: number; p99: number; mean: number } {
  const s = [...us].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), p99: quantile(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/** Mean µs per block of one `dd count=n` run (best of 3 runs; the spawn cost stays included). */
function ddPerOp(args: string[], n: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    execFileSync('dd', [...args, `count=${n}`, 'status=none'], { stdio: 'ignore' });
    best = Math.min(best, ((performance.now() - t) * 1000) / n);
  }
  return best;
}

async function storageLatency(): Promise<Row[]> {
  const dir = scratchDir('bench-storage');
  const path = join(dir, 'bench.img');
  try {
    // Real data blocks (not a sparse file) so every read reaches the device.
    const fd0 = fs.openSync(path, 'w');
    const chunk = Buffer.alloc(MIB, 0x5a);
    for (let off = 0; off < FILE_SIZE; off += MIB) fs.writeSync(fd0, chunk, 0, MIB, off);
    fs.fsyncSync(fd0);
    fs.closeSync(fd0);

    const rows: Row[] = [];
    const disk = await openDirectDisk(path);
    const rawFd = fs.openSync(path, fs.constants.O_RDWR | directIo.O_DIRECT | directIo.O_SYNC);
    const aligned = directIo.getAlignedBuffer(MIB, 4096);
    try {
      for (let i = 0; i < 50; i++) await disk.read(0, 4096, 5000); // warm-up: worker, JIT
      // A request with no data and a ~1 µs syscall (fstat): the bare worker round trip.
      const trip: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const t = performance.now();
        await disk.size();
        trip.push((performance.now() - t) * 1000);
      }
      const tr = stats(trip);
      rows.push({ metric: 'worker round trip (fstat) median', value: tr.median, unit: 'µs', note: `p99 ${tr.p99.toFixed(1)} µs` });
      for (const sz of sizes) {
        const span = FILE_SIZE / sz.bytes; // sequential offsets, wrapping, like dd
        // Ours, interleaved with the same pread done synchronously on the main thread, so both
        // see the same cache and machine load: the difference is what the worker trip adds.
        const rd: number[] = [];
        const raw: number[] = [];
        for (let i = 0; i < sz.reads; i++) {
          const off = (i % span) * sz.bytes;
          let t = performance.now();
          await disk.read(off, sz.bytes, 5000);
          rd.push((performance.now() - t) * 1000);
          t = performance.now();
          fs.readSync(rawFd, aligned, 0, sz.bytes, off);
          raw.push((performance.now() - t) * 1000);
        }
        const ddRead = ddPerOp([`if=${path}`, 'of=/dev/null', `bs=${sz.bytes}`, 'iflag=direct'], Math.min(sz.reads, span));
        const r = stats(rd);
        const rr = stats(raw);
        rows.push({ metric: `read ${sz.label} median`, value: r.median, unit: 'µs', ref: { name: 'dd', value: ddRead } });
        rows.push({ metric: `read ${sz.label} p99`, value: r.p99, unit: 'µs' });
        rows.push({ metric: `read ${sz.label} mean`, value: r.mean, unit: 'µs', ref: { name: 'dd', value: ddRead } });
        rows.push({
          metric: `read ${sz.label} worker overhead`,
          value: r.median - rr.median,
          unit: 'µs',
          note: `median ours ${r.median.toFixed(1)} - median sync pread on main thread ${rr.median.toFixed(1)}`,
        });

        // Ours: writes (O_DIRECT|O_SYNC, as sanlock).
        const data = Buffer.alloc(sz.bytes, 0xa5);
        const wr: number[] = [];
        for (let i = 0; i < sz.writes; i++) {
          const t = performance.now();
          await disk.write((i % span) * sz.bytes, data, 5000);
          wr.push((performance.now() - t) * 1000);
        }
        const ddWrite = ddPerOp(
          ['if=/dev/zero', `of=${path}`, `bs=${sz.bytes}`, 'oflag=direct,sync', 'conv=notrunc'],
          Math.min(sz.writes, span),
        );
        const w = stats(wr);
        rows.push({ metric: `write ${sz.label} median`, value: w.median, unit: 'µs', ref: { name: 'dd', value: ddWrite } });
        rows.push({ metric: `write ${sz.label} p99`, value: w.p99, unit: 'µs' });
        rows.push({ metric: `write ${sz.label} mean`, value: w.mean, unit: 'µs', ref: { name: 'dd', value: ddWrite } });
      }
    } finally {
      fs.closeSync(rawFd);
      await disk.close();
    }
    rows.push({
      metric: 'note',
      value: Number.NaN,
      unit: '',
      note: 'dd = wall time of one `dd count=N` run / N (best of 3, spawn included, amortised over N); dd gives no per-op median/p99',
    });
    return rows;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function checksumThroughput(): Promise<Row[]> {
  const buf = Buffer.alloc(MIB);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 24;
  const run = (fn: () => number, minMs: number): number => {
    let n = 0;
    let sink = 0;
    const t = performance.now();
    while (performance.now() - t < minMs) {
      sink ^= fn();
      n++;
    }
    if (sink === 0.5) console.log(sink); // keeps the result alive
    return (n * buf.length) / MIB / ((performance.now() - t) / 1000);
  };
  run(() => sanlockChecksum(buf), 200); // warm-up
  const ours = run(() => sanlockChecksum(buf), 1500);
  const native = run(() => zlib.crc32(buf), 500);
  return [
    {
      metric: 'sanlockChecksum 1 MiB buffers',
      value: ours,
      unit: 'MB/s',
      ref: { name: 'zlib.crc32', value: native },
      note: 'reference is native CRC-32 (other polynomial): a speed yardstick, not the same function',
    },
    {
      metric: 'sanlockChecksum per 512 B leader',
      value: (512 / MIB / ours) * 1e6,
      unit: 'µs',
    },
  ];
}

export const cases: BenchCase[] = [
  { name: 'storage: O_DIRECT latency vs dd', run: storageLatency },
  { name: 'storage: checksum throughput', run: checksumThroughput },
];
