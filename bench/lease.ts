// Lease-engine benchmark: I/Os and bytes per operation on an in-memory disk (512/1M geometry,
// 2000 hosts), against what sanlock 3.8.5 does for the same operation (spec/algorithms.md), and
// the engine's own CPU cost per free acquire+release (MemDisk, so no storage latency).

import { DeltaLease } from '../src/lease/delta-lease.js';
import { IoStats } from '../src/lease/io.js';
import { ManualClock, SeededRandom } from '../src/lease/manual-clock.js';
import { type LockspaceView, PaxosLease } from '../src/lease/paxos-lease.js';
import { acquireSh, convertExToSh, convertShToEx, releaseSh } from '../src/lease/shared-mode.js';
import { geometryFor } from '../src/ondisk/geometry.js';
import { buildResourceInit, lockspaceInitBytes } from '../src/ondisk/init.js';
import { MemDisk } from '../src/storage/mem-disk.js';
import type { BenchCase, Row } from './main.js';

const MIB = 1024 * 1024;

const noOwners: LockspaceView = {
  async readDeltaRecord() {
    throw new Error('no owner check expected in this benchmark');
  },
  hostSnapshot() {
    return undefined;
  },
};

function freshLease(clock: ManualClock, hostId = 1, stats = new IoStats()): { lease: PaxosLease; disk: MemDisk } {
  const disk = new MemDisk('res', MIB, 512, buildResourceInit({ geometry: geometryFor(512, MIB), spaceName: 'LS', resourceName: 'R1' }));
  const lease = new PaxosLease(
    { hostId, generation: 1, ioTimeout: 10, clock, random: new SeededRandom(hostId), lockspace: noOwners, stats },
    { spaceName: 'LS', resourceName: 'R1', disks: [{ disk, offset: 0 }] },
  );
  return { lease, disk };
}

function ioRows(op: string, s: { reads: number; writes: number; bytesRead: number; bytesWritten: number }, refReads: number, refWrites: number, note: string): Row[] {
  return [
    { metric: `${op}: I/Os`, value: s.reads + s.writes, unit: 'I/O', ref: { name: 'sanlock(spec)', value: refReads + refWrites }, note: `${s.reads} reads + ${s.writes} writes; ${note}` },
    { metric: `${op}: bytes read`, value: s.bytesRead, unit: 'B' },
    { metric: `${op}: bytes written`, value: s.bytesWritten, unit: 'B' },
  ];
}

export const cases: BenchCase[] = [
  {
    name: 'lease-io',
    async run(): Promise<Row[]> {
      const rows: Row[] = [];
      const clock = new ManualClock(1000);

      // Paxos EX acquire of a free lease, then release.
      const { lease } = freshLease(clock);
      await lease.acquire();
      rows.push(...ioRows('EX acquire (free)', lease.stats, 3, 3, 'sanlock: 3 full reads + 3 sector writes'));
      lease.stats.reset();
      await lease.release();
      rows.push(...ioRows('EX release', lease.stats.snapshot(), 1, 2, 'dblock RELEASED write, leader read, leader write (§3.4)'));

      // SH acquire and release.
      const sh = freshLease(clock, 2).lease;
      await acquireSh(sh);
      rows.push(...ioRows('SH acquire (free)', sh.stats.snapshot(), 4, 5, 'EX ballot + SH sector write + leader release'));
      sh.stats.reset();
      await releaseSh(sh);
      rows.push(...ioRows('SH release', sh.stats.snapshot(), 0, 1, 'one sector write'));

      // Converts.
      const cv = freshLease(clock, 3).lease;
      await acquireSh(cv);
      cv.stats.reset();
      await convertShToEx(cv);
      rows.push(...ioRows('convert SH→EX (alone)', cv.stats.snapshot(), 3, 4, 'ballot keeping our SH mode block, then our sector without it'));
      cv.stats.reset();
      await convertExToSh(cv);
      rows.push(...ioRows('convert EX→SH', cv.stats.snapshot(), 1, 2, 'sector RELEASED+SHARED, leader read, leader write'));

      // Delta lease: join (free) and one renewal.
      const ls = new MemDisk('ls', MIB, 512, lockspaceInitBytes({ geometry: geometryFor(512, MIB), spaceName: 'LS', ioTimeout: 10 }));
      const dl = new DeltaLease({ disk: ls, offset: 0, spaceName: 'LS', hostId: 1, hostName: 'bench', ioTimeout: 10, clock });
      await dl.acquire();
      rows.push(...ioRows('delta join (free)', dl.stats.snapshot(), 3, 1, '4 KiB geometry read, sector read, write, re-read'));
      dl.stats.reset();
      await dl.renew();
      rows.push(...ioRows('delta renewal', dl.stats.snapshot(), 1, 1, 'full 1 MiB area read + own sector write'));
      dl.stats.reset();
      await dl.release();
      rows.push(...ioRows('delta release', dl.stats.snapshot(), 0, 1, 'one sector write'));
      return rows;
    },
  },
  {
    name: 'lease-cpu',
    async run(): Promise<Row[]> {
      const clock = new ManualClock(1000);
      const { lease } = freshLease(clock);
      const n = 200;
      for (let i = 0; i < 10; i++) {
        await lease.acquire();
        await lease.release();
      }
      const us: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await lease.acquire();
        await lease.release();
        us.push((performance.now() - t) * 1000);
      }
      us.sort((a, b) => a - b);
      return [
        { metric: 'EX acquire+release on MemDisk, median', value: us[Math.floor(n / 2)]!, unit: 'µs', note: 'engine CPU only (3 MiB read+checked per acquire)' },
        { metric: 'EX acquire+release on MemDisk, p99', value: us[Math.floor(n * 0.99)]!, unit: 'µs' },
      ];
    },
  },
];
