// sanlock's checksum: CRC-32C (Castagnoli, reflected poly 0x82F63B78) started at ~1 with no
// final XOR. Equivalently: standardCrc32c(buf, seed 1) ^ 0xFFFFFFFF.

const table = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  table[i] = c >>> 0;
}

const SANLOCK_CRC_INIT = 0xfffffffe;

/** The checksum sanlock stores in leaders (bytes 0..167) and dblocks (bytes 0..47). */
export function sanlockChecksum(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = SANLOCK_CRC_INIT;
  for (let i = start; i < end; i++) crc = table[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}
