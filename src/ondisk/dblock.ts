// Paxos dblock (offset 0 of host h's sector 2+h-1) and the mode block beside it (offset 128).
// Layout: spec/ondisk.md §5.3-5.4. flags (bytes 52..55) are outside the checksum.
import { sanlockChecksum } from './checksum.js';
import { readU64, writeU64 } from './fields.js';

export const DBLOCK_SIZE = 56;
export const DBLOCK_CHECKSUM_LEN = 48;
export const DBLOCK_FL_RELEASED = 0x1;
export const MBLOCK_OFFSET = 128;
export const MBLOCK_SHARED = 0x1;

export interface Dblock {
  mbal: number;
  bal: number;
  inp: number;
  inp2: number;
  inp3: number;
  lver: number;
  flags: number;
}

export interface ModeBlock {
  flags: number;
  generation: number;
}

export function decodeDblock(buf: Buffer, off = 0): Dblock & { checksum: number } {
  return {
    mbal: readU64(buf, off),
    bal: readU64(buf, off + 8),
    inp: readU64(buf, off + 16),
    inp2: readU64(buf, off + 24),
    inp3: readU64(buf, off + 32),
    lver: readU64(buf, off + 40),
    checksum: buf.readUInt32LE(off + 48),
    flags: buf.readUInt32LE(off + 52),
  };
}

/** Writes the 56-byte dblock with its checksum; returns the checksum. */
export function encodeDblock(d: Dblock, buf: Buffer, off = 0): number {
  buf.fill(0, off, off + DBLOCK_SIZE);
  writeU64(buf, off, d.mbal);
  writeU64(buf, off + 8, d.bal);
  writeU64(buf, off + 16, d.inp);
  writeU64(buf, off + 24, d.inp2);
  writeU64(buf, off + 32, d.inp3);
  writeU64(buf, off + 40, d.lver);
  const sum = sanlockChecksum(buf, off, off + DBLOCK_CHECKSUM_LEN);
  buf.writeUInt32LE(sum, off + 48);
  buf.writeUInt32LE(d.flags >>> 0, off + 52);
  return sum;
}

/** True when the checksum matches, or the dblock is all zero (never written), which sanlock accepts. */
export function dblockValid(buf: Buffer, off = 0): boolean {
  let zero = true;
  for (let i = off; i < off + DBLOCK_SIZE - 4; i++) if (buf[i] !== 0) { zero = false; break; }
  if (zero) return true;
  return sanlockChecksum(buf, off, off + DBLOCK_CHECKSUM_LEN) === buf.readUInt32LE(off + 48);
}

export function decodeModeBlock(buf: Buffer, sectorOff = 0): ModeBlock {
  return {
    flags: buf.readUInt32LE(sectorOff + MBLOCK_OFFSET),
    generation: readU64(buf, sectorOff + MBLOCK_OFFSET + 8),
  };
}

export function encodeModeBlock(m: ModeBlock, buf: Buffer, sectorOff = 0): void {
  buf.fill(0, sectorOff + MBLOCK_OFFSET, sectorOff + MBLOCK_OFFSET + 16);
  buf.writeUInt32LE(m.flags >>> 0, sectorOff + MBLOCK_OFFSET);
  writeU64(buf, sectorOff + MBLOCK_OFFSET + 8, m.generation);
}

/** A whole host sector (zero-filled) holding a dblock and an optional mode block. */
export function hostSector(sectorSize: number, d: Dblock, m?: ModeBlock): Buffer {
  const b = Buffer.alloc(sectorSize);
  encodeDblock(d, b, 0);
  if (m) encodeModeBlock(m, b, 0);
  return b;
}

export function emptyDblock(): Dblock {
  return { mbal: 0, bal: 0, inp: 0, inp2: 0, inp3: 0, lver: 0, flags: 0 };
}
