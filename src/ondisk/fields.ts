// Little-endian field access shared by all record codecs. u64 values are JS numbers: every
// value sanlock stores (timestamps, generations, ballots, offsets) stays far below 2^53.

export const NAME_ID_SIZE = 48;

const TWO_32 = 2 ** 32;

// Two 32-bit halves instead of a BigInt: these run for every field of every record (a release
// decoded and encoded ~5 KB of BigInts). hi·2^32 is exact and the one addition rounds once, as
// Number(bigint) does, so even values past 2^53 read the same.
export function readU64(buf: Buffer, off: number): number {
  const hi = buf.readUInt32LE(off + 4);
  const lo = buf.readUInt32LE(off);
  // Most values fit 32 bits: returning the half as is keeps them small integers, where the
  // product below is a float that V8 stores in its own heap box in every record that keeps it.
  return hi === 0 ? lo : hi * TWO_32 + lo;
}

export function writeU64(buf: Buffer, off: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    // what BigInt conversion makes of the rest, errors included (negative, fractional, NaN)
    buf.writeBigUInt64LE(BigInt(v), off);
    return;
  }
  const hi = Math.floor(v / TWO_32);
  buf.writeUInt32LE(v - hi * TWO_32, off);
  buf.writeUInt32LE(hi, off + 4);
}

/** A char[48] name: bytes up to the first NUL (or all 48), byte-preserving (latin1). */
export function readName(buf: Buffer, off: number): string {
  const end = buf.indexOf(0, off);
  const stop = end === -1 || end > off + NAME_ID_SIZE ? off + NAME_ID_SIZE : end;
  return buf.toString('latin1', off, stop);
}

/** Writes a name NUL-padded to 48 bytes; a 48-byte name is stored without NUL, as sanlock does. */
export function writeName(buf: Buffer, off: number, name: string, max = NAME_ID_SIZE): void {
  buf.fill(0, off, off + NAME_ID_SIZE);
  buf.write(name.slice(0, max), off, Math.min(max, NAME_ID_SIZE), 'latin1');
}

/** strncmp(a, b, 48) == 0 */
export function namesEqual(a: string, b: string): boolean {
  return a.slice(0, NAME_ID_SIZE) === b.slice(0, NAME_ID_SIZE);
}
