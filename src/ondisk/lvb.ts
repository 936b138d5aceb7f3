// The lock value block: one opaque sector at sector 2002 of a resource lease, for every
// geometry (so for 4K/1M..4M leases it lies outside the lease's own area; spec/ondisk.md §5.1).
import { LVB_SECTOR } from './geometry.js';

/** Absolute byte offset of the LVB of the lease at `leaseOffset`. */
export function lvbOffset(leaseOffset: number, sectorSize: number): number {
  return leaseOffset + LVB_SECTOR * sectorSize;
}

/** A whole LVB sector holding `data` (at most one sector), zero padded. */
export function encodeLvb(data: Uint8Array, sectorSize: number): Buffer {
  if (data.length > sectorSize) throw new RangeError(`LVB data ${data.length} bytes exceeds sector size ${sectorSize}`);
  const b = Buffer.alloc(sectorSize);
  b.set(data, 0);
  return b;
}

/** The first `len` bytes of an LVB sector (sanlock hands back exactly what the caller asks for). */
export function decodeLvb(sector: Buffer, len = sector.length): Buffer {
  return Buffer.from(sector.subarray(0, Math.min(len, sector.length)));
}
