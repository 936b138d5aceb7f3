import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineRing } from '../../src/daemon/log-ring.js';

/** What the ring must hold: the newest whole lines whose bytes (newlines included) fit. */
function model(lines: string[], capacity: number, lineMax: number): string {
  const kept: Buffer[] = [];
  let bytes = 0;
  for (const l of lines) {
    const b = Buffer.alloc(lineMax);
    const n = b.write(l, 0, lineMax - 1, 'utf8');
    kept.push(b.subarray(0, n));
    bytes += n + 1;
    while (bytes > capacity) bytes -= kept.shift()!.length + 1;
  }
  return Buffer.concat(kept.flatMap((k, i) => (i ? [Buffer.from('\n'), k] : [k]))).toString();
}

test('log ring: empty, one line, wrap-around keeps the newest whole lines', () => {
  const r = new LineRing(64, 16);
  assert.equal(r.dump().length, 0);
  r.push('abc');
  assert.equal(r.dump().toString(), 'abc');
  assert.equal(r.bytes, 4);
  const lines = ['abc'];
  for (let i = 0; i < 40; i++) {
    const l = `line ${i} ${'x'.repeat(i % 9)}`;
    r.push(l);
    lines.push(l);
    assert.equal(r.dump().toString(), model(lines, 64, 16), `after line ${i}`);
    assert.ok(r.bytes <= 64);
  }
});

test('log ring: long lines are cut at a character boundary; random lines match the model', () => {
  const r = new LineRing(100, 12);
  r.push('0123456789abcdef');
  assert.equal(r.dump().toString(), '0123456789a');
  r.push('ééééééé'); // 2 bytes each: 5 fit in 11
  assert.equal(r.dump().toString().split('\n')[1], 'ééééé');
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (const cap of [12, 13, 50, 101, 4096]) {
    const ring = new LineRing(cap, 12);
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const l = Array.from({ length: rnd(15) }, () => 'abcé€'[rnd(5)]).join('');
      ring.push(l);
      lines.push(l);
      if (i % 7 === 0 || cap < 60) assert.equal(ring.dump().toString(), model(lines, cap, 12), `cap ${cap} line ${i}`);
    }
  }
});
