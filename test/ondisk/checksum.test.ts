import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checksumImplementation, sanlockChecksum, sanlockChecksumTable } from '../../src/ondisk/checksum.js';

test('reference values of the spec (ondisk.md §2), both implementations', () => {
  for (const f of [sanlockChecksum, sanlockChecksumTable]) {
    assert.equal(f(Buffer.from('123456789')), 0xe8c7bb34);
    assert.equal(f(Buffer.alloc(168)), 0x7e11fbd1);
    assert.equal(f(Buffer.alloc(48)), 0xcb5ad842);
  }
});

test('the native checksum is in use on this platform and agrees with the table on any range', () => {
  assert.equal(checksumImplementation, 'native');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const buf = Buffer.from(bytes);
      const start = a % buf.length;
      const end = start + (b % (buf.length - start + 1));
      assert.equal(sanlockChecksum(buf, start, end), sanlockChecksumTable(buf, start, end));
    }),
    { numRuns: 2000 },
  );
});
