// Little-endian field access shared by all record codecs. u64 values are JS numbers: every
// value sanlock stores (timestamps, generations, ballots, offsets) stays far below 2^53.

export const NAME_ID_SIZE = 48;

export function readU64(buf: Buffer, off: number): number {
  return Number(buf.readBigUInt64LE(off));
}

export function writeU64(buf: Buffer, off: number, v: number): void {
  buf.writeBigUInt64LE(BigInt(v), off);
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
