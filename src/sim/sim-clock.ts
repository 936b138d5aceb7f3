// Virtual time for the simulator: one discrete-event loop for all hosts, and per-host clocks
// (Clock) that read it with their own CLOCK_MONOTONIC offset and rate.
//
// Determinism: the only things that move a simulation forward are events popped from one queue
// ordered by (time, sequence). After each event that can resolve a promise we wait for a
// setImmediate callback; Node runs the whole microtask queue (every `await` continuation the
// event set off, and everything those enqueue) before any macrotask, so each event's effects are
// complete before the next event is popped and nothing but the queue decides the order in which
// promise continuations run. This relies on the simulated code never touching real timers or
// real I/O: every wait goes through a Clock or a Disk we hand it.
import assert from 'node:assert/strict';
import type { Clock } from '../lease/clock.js';

/** One incarnation of a host process (a boot). Its timers and I/O completions die with it. */
export class Incarnation {
  readonly hostId: number;
  /** boot number of this host, 1-based (not sanlock's delta-lease generation) */
  readonly boot: number;
  paused = false;
  dead = false;
  /** events that came due while paused, run in order on resume */
  deferred: SimEvent[] = [];

  /** the simulated machine (several machines may be configured with one host_id) */
  readonly machine: number;

  constructor(hostId: number, boot: number, machine = hostId) {
    this.hostId = hostId;
    this.boot = boot;
    this.machine = machine;
  }

  toString(): string {
    return this.machine === this.hostId ? `h${this.hostId}.${this.boot}` : `h${this.hostId}.${this.boot}@m${this.machine}`;
  }
}

export interface SimEvent {
  timeUs: number;
  seq: number;
  fn: () => void;
  /** events of a host process: held while it is paused, dropped when it is dead */
  owner: Incarnation | undefined;
  /** true when fn cannot resolve a promise, so no microtask drain is needed after it */
  sync: boolean;
  cancelled: boolean;
}

export type RunResult = 'idle' | 'time' | 'events' | 'stopped';

export interface RunOptions {
  /** stop when the next event is later than this (now is then set to it) */
  untilUs?: number;
  /** stop after this many events */
  maxEvents?: number;
  /** checked before each event */
  stop?: () => boolean;
  /** called after each event and its microtasks (the invariant checker hooks in here) */
  afterEvent?: () => void;
}

const drain = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export class Scheduler {
  nowUs = 0;
  eventsRun = 0;
  private heap: SimEvent[] = [];
  private seq = 0;
  private running = false;

  get pending(): number {
    return this.heap.length;
  }

  at(timeUs: number, fn: () => void, owner?: Incarnation, sync = false): SimEvent {
    assert.ok(Number.isFinite(timeUs), `event time ${timeUs}`);
    // Events are never scheduled in the past: that would let an effect precede its cause.
    const t = Math.max(Math.ceil(timeUs), this.nowUs);
    const ev: SimEvent = { timeUs: t, seq: this.seq++, fn, owner, sync, cancelled: false };
    this.push(ev);
    return ev;
  }

  after(delayUs: number, fn: () => void, owner?: Incarnation, sync = false): SimEvent {
    assert.ok(delayUs >= 0, `negative delay ${delayUs}`);
    return this.at(this.nowUs + delayUs, fn, owner, sync);
  }

  cancel(ev: SimEvent): void {
    ev.cancelled = true;
  }

  pause(inc: Incarnation): void {
    inc.paused = true;
  }

  /** SIGCONT: what came due while stopped runs now, in the order it came due. */
  resume(inc: Incarnation): void {
    inc.paused = false;
    const due = inc.deferred;
    inc.deferred = [];
    for (const ev of due) {
      if (!ev.cancelled) this.at(this.nowUs, ev.fn, ev.owner, ev.sync);
    }
  }

  kill(inc: Incarnation): void {
    inc.dead = true;
    inc.deferred = [];
  }

  async run(opts: RunOptions = {}): Promise<RunResult> {
    assert.ok(!this.running, 'Scheduler.run is not reentrant');
    this.running = true;
    try {
      let n = 0;
      for (;;) {
        if (opts.stop?.()) return 'stopped';
        if (opts.maxEvents !== undefined && n >= opts.maxEvents) return 'events';
        const ev = this.heap[0];
        if (!ev) return 'idle';
        if (opts.untilUs !== undefined && ev.timeUs > opts.untilUs) {
          this.nowUs = Math.max(this.nowUs, opts.untilUs);
          return 'time';
        }
        this.pop();
        if (ev.cancelled) continue;
        assert.ok(ev.timeUs >= this.nowUs, 'time went backwards');
        this.nowUs = ev.timeUs;
        if (ev.owner) {
          if (ev.owner.dead) continue;
          if (ev.owner.paused) {
            ev.owner.deferred.push(ev);
            continue;
          }
        }
        n++;
        this.eventsRun++;
        ev.fn();
        if (!ev.sync) await drain();
        opts.afterEvent?.();
      }
    } finally {
      this.running = false;
    }
  }

  private less(a: SimEvent, b: SimEvent): boolean {
    return a.timeUs < b.timeUs || (a.timeUs === b.timeUs && a.seq < b.seq);
  }

  private push(ev: SimEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * A host's CLOCK_MONOTONIC: starts at its own offset and ticks at its own rate (1 ± skew).
 * Time keeps running while the host is paused (SIGSTOP does not stop the clock); only the
 * wake-ups are held back until it resumes.
 */
export class HostClock implements Clock {
  private readonly sched: Scheduler;
  readonly inc: Incarnation;
  private baseLocalUs: number;
  private baseRealUs: number;
  private rateValue: number;

  constructor(sched: Scheduler, inc: Incarnation, startLocalMs: number, rate: number) {
    assert.ok(rate > 0.5 && rate < 2, `clock rate ${rate}`);
    this.sched = sched;
    this.inc = inc;
    this.baseLocalUs = startLocalMs * 1000;
    this.baseRealUs = sched.nowUs;
    this.rateValue = rate;
  }

  get rate(): number {
    return this.rateValue;
  }

  /** Changes the tick rate from now on; the clock stays continuous and monotonic. */
  setRate(rate: number): void {
    assert.ok(rate > 0.5 && rate < 2, `clock rate ${rate}`);
    this.baseLocalUs = this.localUs();
    this.baseRealUs = this.sched.nowUs;
    this.rateValue = rate;
  }

  localUs(): number {
    return this.baseLocalUs + (this.sched.nowUs - this.baseRealUs) * this.rateValue;
  }

  /** Global time (µs) at which this clock will read `localUs`. */
  realAt(localUs: number): number {
    return this.baseRealUs + (localUs - this.baseLocalUs) / this.rateValue;
  }

  monotonicMs(): number {
    return Math.floor(this.localUs()) / 1000;
  }

  monotonicSeconds(): number {
    return Math.floor(this.localUs() / 1e6);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    assert.ok(ms >= 0 && Number.isFinite(ms), `sleep ${ms}`);
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        this.sched.cancel(ev);
        reject(signal!.reason);
      };
      const ev = this.sched.after(Math.ceil((ms * 1000) / this.rateValue), () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, this.inc);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
