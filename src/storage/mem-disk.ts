// An in-memory Disk for unit tests of the lease algorithms: instant, sector-checked I/O over
// a growable buffer. (The simulator has its own disk with virtual time and faults.)
import { Errno, SanlockError } from '../codes.js';
import type { Disk } from './disk.js';

export class MemDisk implements Disk {
  readonly path: string;
  readonly sectorSize: number;
  bytes: Buffer;
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;

  constructor(path: string, size: number, sectorSize = 512, init?: Buffer) {
    this.path = path;
    this.sectorSize = sectorSize;
    this.bytes = Buffer.alloc(size);
    if (init) init.copy(this.bytes);
  }

  private check(offset: number, length: number): void {
    // O_DIRECT refuses unaligned I/O with EINVAL; keep the same contract in memory.
    if (offset % this.sectorSize !== 0 || length % this.sectorSize !== 0 || length === 0) {
      throw new SanlockError(-Errno.EINVAL, `unaligned I/O offset ${offset} length ${length}`);
    }
  }

  async read(offset: number, length: number, _timeoutMs: number): Promise<Buffer> {
    this.check(offset, length);
    this.reads++;
    this.bytesRead += length;
    const out = Buffer.alloc(length);
    if (offset < this.bytes.length) this.bytes.copy(out, 0, offset, Math.min(this.bytes.length, offset + length));
    return out;
  }

  async write(offset: number, data: Buffer, _timeoutMs: number): Promise<void> {
    this.check(offset, data.length);
    this.writes++;
    this.bytesWritten += data.length;
    if (offset + data.length > this.bytes.length) {
      const grown = Buffer.alloc(offset + data.length);
      this.bytes.copy(grown);
      this.bytes = grown;
    }
    data.copy(this.bytes, offset);
  }

  async close(): Promise<void> {}
}
