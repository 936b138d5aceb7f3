// Seeded randomness for the simulator: xoshiro128** (Blackman & Vigna), seeded through
// splitmix32 so that neighbouring seeds (0, 1, 2, ...) give unrelated streams. Everything random
// in a simulation comes from one of these, so a seed replays the same run byte for byte.
import assert from 'node:assert/strict';
import type { Random } from '../lease/clock.js';

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Xoshiro128 implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** `seed` may be any safe integer; both 32-bit halves feed the state. */
  constructor(seed: number) {
    assert.ok(Number.isSafeInteger(seed), `seed must be a safe integer: ${seed}`);
    const st = { s: (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) | 0, 0x27d4eb2d) };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    // The all-zero state is the one fixed point of xoshiro; splitmix cannot give four zeros in a
    // row, but assert it because a stuck generator would silently make every run identical.
    assert.ok((this.a | this.b | this.c | this.d) !== 0);
  }

  /** Next raw 32-bit output. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d >>> 0, 11);
    this.a >>>= 0; this.b >>>= 0; this.c >>>= 0; this.d >>>= 0;
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / 0x100000000;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    assert.ok(hi >= lo, `empty range ${lo}..${hi}`);
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    assert.ok(items.length > 0, 'pick from empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** An independent generator: a consumer added to one stream never shifts another's draws. */
  fork(): Xoshiro128 {
    return new Xoshiro128(this.nextU32() * 0x200000 + (this.nextU32() >>> 11));
  }
}
