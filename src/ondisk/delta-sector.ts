// A lockspace host sector: leader at 0, host-id bitmap at 256..511 (spec/ondisk.md §4.1-4.2).
// Bit for host_id t: byte (t-1)>>3, bit (t-1)&7, LSB first.
export const HOSTID_BITMAP_OFFSET = 256;
export const HOSTID_BITMAP_SIZE = 256;
/** The bitmap can name host_ids 1..2048. */
export const HOSTID_BITMAP_MAX = HOSTID_BITMAP_SIZE * 8;

function locate(hostId: number): [number, number] {
  if (!Number.isInteger(hostId) || hostId < 1 || hostId > HOSTID_BITMAP_MAX) {
    throw new RangeError(`host_id ${hostId} outside the bitmap (1..${HOSTID_BITMAP_MAX})`);
  }
  return [(hostId - 1) >> 3, 1 << ((hostId - 1) & 7)];
}

/** Is host_id's bit set in the bitmap of the sector starting at `sectorOff`? */
export function testIdBit(buf: Buffer, sectorOff: number, hostId: number): boolean {
  const [byte, mask] = locate(hostId);
  return (buf[sectorOff + HOSTID_BITMAP_OFFSET + byte]! & mask) !== 0;
}

export function setIdBit(buf: Buffer, sectorOff: number, hostId: number): void {
  const [byte, mask] = locate(hostId);
  buf[sectorOff + HOSTID_BITMAP_OFFSET + byte]! |= mask;
}

export function clearIdBit(buf: Buffer, sectorOff: number, hostId: number): void {
  const [byte, mask] = locate(hostId);
  buf[sectorOff + HOSTID_BITMAP_OFFSET + byte]! &= ~mask & 0xff;
}

/** host_ids 1..maxHosts whose bit is set, ascending (what `dump -f 1` prints). */
export function bitmapHostIds(buf: Buffer, sectorOff: number, maxHosts: number): number[] {
  const out: number[] = [];
  const n = Math.min(maxHosts, HOSTID_BITMAP_MAX);
  for (let t = 1; t <= n; t++) if (testIdBit(buf, sectorOff, t)) out.push(t);
  return out;
}

/** A copy of the 256-byte bitmap of a sector. */
export function readBitmap(buf: Buffer, sectorOff: number): Buffer {
  return Buffer.from(buf.subarray(sectorOff + HOSTID_BITMAP_OFFSET, sectorOff + HOSTID_BITMAP_OFFSET + HOSTID_BITMAP_SIZE));
}

/** Puts a 256-byte bitmap into a sector (a renewal writes leader and bitmap together). */
export function writeBitmap(buf: Buffer, sectorOff: number, bitmap: Uint8Array): void {
  if (bitmap.length !== HOSTID_BITMAP_SIZE) throw new RangeError(`bitmap must be ${HOSTID_BITMAP_SIZE} bytes`);
  buf.set(bitmap, sectorOff + HOSTID_BITMAP_OFFSET);
}
