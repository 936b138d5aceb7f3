// readU64/writeU64 use two 32-bit halves for speed; they must give exactly what the BigInt
// conversions give, for every bit pattern (values past 2^53 round once, as Number(bigint) does).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readU64, writeU64 } from '../../src/ondisk/fields.js';
import { SeededRandom } from '../../src/lease/manual-clock.js';

test('readU64 equals Number(readBigUInt64LE) for random and edge bit patterns', () => {
  const rnd = new SeededRandom(77);
  const buf = Buffer.alloc(16);
  const edges = [0n, 1n, 0xffffffffn, 0x100000000n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 0x1fffffffffffff01n];
  for (const e of edges) {
    buf.writeBigUInt64LE(e, 3);
    assert.equal(readU64(buf, 3), Number(e), `pattern ${e}`);
  }
  for (let i = 0; i < 20_000; i++) {
    for (let j = 0; j < 16; j++) buf[j] = Math.floor(rnd.next() * 256);
    const off = i % 9;
    assert.equal(readU64(buf, off), Number(buf.readBigUInt64LE(off)));
  }
});

test('writeU64 writes the bytes BigInt(v) writes, and refuses what it refuses', () => {
  const rnd = new SeededRandom(78);
  const a = Buffer.alloc(8);
  const b = Buffer.alloc(8);
  const values = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 60, 2 ** 64 - 2 ** 11];
  for (let i = 0; i < 20_000; i++) values.push(Math.floor(rnd.next() * 2 ** (1 + (i % 53))));
  for (const v of values) {
    writeU64(a, 0, v);
    b.writeBigUInt64LE(BigInt(v), 0);
    assert.deepEqual(a, b, `value ${v}`);
  }
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 64]) {
    assert.throws(() => writeU64(a, 0, bad), `value ${bad} must be refused`);
  }
  assert.throws(() => readU64(a, 1), /out of range|ERR_OUT_OF_RANGE|RangeError/);
});
