// Virtual time for tests: sleeping never waits for real. Sleepers are woken in deadline order,
// one at a time, only once no other work is pending (after the microtask queue drains), so
// several concurrent hosts on in-memory disks interleave exactly as they would on a real clock
// with instant I/O. Deterministic: same program, same order.
//
//   const clock = new ManualClock(1000);      // starts at monotonic second 1000
//   await clock.sleep(2000);                   // returns at once, clock.monotonicMs() == 1_002_000
//   const rnd = new SeededRandom(42);          // deterministic Random
import assert from 'node:assert/strict';
import type { Clock, Random } from './clock.js';

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class ManualClock implements Clock {
  private nowMs: number;
  private timers: Timer[] = [];
  private seq = 0;
  private pumpScheduled = false;

  constructor(startSeconds = 1000) {
    this.nowMs = startSeconds * 1000;
  }

  monotonicSeconds(): number {
    return Math.floor(this.nowMs / 1000);
  }

  monotonicMs(): number {
    return this.nowMs;
  }

  /** Moves time forward without waking anybody early (sleepers still wake in order). */
  advance(ms: number): void {
    assert.ok(ms >= 0);
    this.nowMs += ms;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    assert.ok(ms >= 0, `negative sleep ${ms}`);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const t: Timer = { at: this.nowMs + ms, seq: this.seq++, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        t.onAbort = () => {
          this.timers = this.timers.filter((x) => x !== t);
          reject(signal.reason);
        };
        signal.addEventListener('abort', t.onAbort, { once: true });
      }
      this.timers.push(t);
      this.schedulePump();
    });
  }

  /** Number of sleepers not yet woken. */
  pending(): number {
    return this.timers.length;
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      if (this.timers.length === 0) return;
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const t = this.timers.shift()!;
      if (t.at > this.nowMs) this.nowMs = t.at;
      if (t.signal && t.onAbort) t.signal.removeEventListener('abort', t.onAbort);
      t.resolve();
      if (this.timers.length > 0) this.schedulePump();
    });
  }
}

/** Deterministic Random (mulberry32). */
export class SeededRandom implements Random {
  private state: number;
  constructor(seed = 1) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
