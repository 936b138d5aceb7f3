// sanlock's checksum: CRC-32C (Castagnoli, reflected poly 0x82F63B78) started at ~1 with no
// final XOR. Equivalently: standardCrc32c(buf, seed 1) ^ 0xFFFFFFFF, which is how the native
// (SSE4.2/ARMv8 CRC) package computes it; the table below is the fallback where no prebuilt
// binary exists for the platform.
import { createRequire } from 'node:module';

const table = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  table[i] = c >>> 0;
}

const SANLOCK_CRC_INIT = 0xfffffffe;

/** Byte-wise table CRC with sanlock's parameters (always available). */
export function sanlockChecksumTable(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = SANLOCK_CRC_INIT;
  for (let i = start; i < end; i++) crc = table[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}

type NativeCrc32c = (input: Buffer, initialState?: number) => number;

function loadNative(): NativeCrc32c | undefined {
  if (process.env.SANLOCK_TS_CRC_TABLE === '1') return undefined;
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: NativeCrc32c };
    const f = mod.crc32c;
    // Trust the binary only if it agrees with the reference value of the spec.
    if (f && ((f(Buffer.from('123456789'), 1) ^ 0xffffffff) >>> 0) === 0xe8c7bb34) return f;
  } catch {
    /* no prebuilt binary for this platform: use the table */
  }
  return undefined;
}

const native = loadNative();

/** Which implementation is in use ("native" or "table"), for benchmarks and logs. */
export const checksumImplementation: 'native' | 'table' = native ? 'native' : 'table';

/** The checksum sanlock stores in leaders (bytes 0..167) and dblocks (bytes 0..47). */
export function sanlockChecksum(buf: Uint8Array, start = 0, end = buf.length): number {
  if (!native) return sanlockChecksumTable(buf, start, end);
  const view = Buffer.from(buf.buffer, buf.byteOffset + start, end - start);
  return (native(view, 1) ^ 0xffffffff) >>> 0;
}
