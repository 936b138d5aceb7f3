// Every disk access of the lease engine goes through these two functions so the I/O count and
// byte count of each operation can be checked against sanlock's (6 I/Os for a free acquire,
// 1 write for a release...).
import assert from 'node:assert/strict';
import type { Disk } from '../storage/disk.js';

export class IoStats {
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;

  snapshot(): { reads: number; writes: number; bytesRead: number; bytesWritten: number } {
    return { reads: this.reads, writes: this.writes, bytesRead: this.bytesRead, bytesWritten: this.bytesWritten };
  }

  reset(): void {
    this.reads = 0;
    this.writes = 0;
    this.bytesRead = 0;
    this.bytesWritten = 0;
  }
}

export async function ioRead(disk: Disk, offset: number, length: number, timeoutMs: number, stats: IoStats): Promise<Buffer> {
  assert.ok(offset >= 0 && length > 0, `bad read ${offset}+${length}`);
  stats.reads++;
  stats.bytesRead += length;
  const buf = await disk.read(offset, length, timeoutMs);
  assert.equal(buf.length, length, 'short read from Disk');
  return buf;
}

export async function ioWrite(disk: Disk, offset: number, data: Buffer, timeoutMs: number, stats: IoStats): Promise<void> {
  assert.ok(offset >= 0 && data.length > 0, `bad write ${offset}+${data.length}`);
  stats.writes++;
  stats.bytesWritten += data.length;
  await disk.write(offset, data, timeoutMs);
}
