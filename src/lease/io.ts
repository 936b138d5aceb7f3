// Every disk access of the lease engine goes through these two functions so the I/O count and
// byte count of each operation can be checked against sanlock's (6 I/Os for a free acquire,
// 1 write for a release...).
import assert from 'node:assert/strict';
import { SanlockError } from '../codes.js';
import { type ChainOutcome, type ChainRequest, type Disk, isChainDisk } from '../storage/disk.js';

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

/**
 * Write `w1`, read `readLength` bytes, and when they start with `expect` write `w3`, as one
 * request when the disk can chain them (see ChainDisk); undefined when it cannot (the caller
 * then issues them with ioWrite/ioRead). Counts exactly the I/Os that were attempted, as the
 * single calls would.
 */
export async function ioWriteReadCompareWrite(disk: Disk, req: ChainRequest, timeoutMs: number, stats: IoStats): Promise<ChainOutcome | undefined> {
  if (!isChainDisk(disk)) return undefined;
  const { w1Offset, w1, readOffset, readLength, w3Offset, w3 } = req;
  assert.ok(w1Offset >= 0 && w1.length > 0 && readOffset >= 0 && readLength > 0 && w3Offset >= 0 && w3.length > 0, 'bad chain');
  let out: ChainOutcome | undefined;
  try {
    out = await disk.writeReadCompareWrite(req, timeoutMs);
  } catch (e) {
    // the read failed (step 2) or the second write did (step 3)
    const step = e instanceof SanlockError ? e.details?.chainStep : undefined;
    assert.ok(step === 2 || step === 3, 'a chain rejects only for its read or its second write');
    count(stats, w1.length, readLength, step === 3 ? w3.length : 0);
    throw e;
  }
  if (!out) return undefined;
  if (out.write1Error) count(stats, w1.length, 0, 0);
  else count(stats, w1.length, readLength, out.wrote3 ? w3.length : 0);
  if (out.read) assert.equal(out.read.length, readLength, 'short read from Disk');
  return out;
}

function count(stats: IoStats, w1: number, r: number, w3: number): void {
  stats.writes += w3 > 0 ? 2 : 1;
  stats.bytesWritten += w1 + w3;
  if (r > 0) {
    stats.reads++;
    stats.bytesRead += r;
  }
}
