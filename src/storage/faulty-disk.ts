// A Disk wrapper that injects storage faults for tests: delays, hung or late I/O, errors,
// short reads and corrupted data, per operation and byte range, changeable while I/O runs.
// It enforces the caller's deadline itself, so a delayed or hung I/O fails with -202 exactly
// as a real slow device would, while the wrapped I/O still happens late when the fault says so.
import assert from 'node:assert';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import type { Disk } from './disk.js';

/** Structurally the lease layer's Clock.sleep / Random.next (storage may not import lease). */
export type SleepFn = (ms: number, signal?: AbortSignal) => Promise<void>;
export type RandomFn = () => number;

export interface FaultRule {
  /** Which operations it applies to (default both). */
  op?: 'read' | 'write' | 'both';
  /** Applies to I/Os overlapping the bytes [start, end) (default all offsets). */
  range?: { start: number; end: number };
  /** Applies to this many matching I/Os, then the rule is dropped (default: unlimited). */
  count?: number;
  /** Chance in [0, 1] that a matching I/O is affected (default 1). */
  probability?: number;
  /** Wait before the I/O: fixed ms, or uniform in [min, max]. */
  delayMs?: number | { min: number; max: number };
  /**
   * 'forever': the I/O never happens until releaseHung() (the caller gets -202 at its deadline).
   * { completeAfterMs }: the I/O happens after that long, even if the caller gave up ("late I/O").
   */
  hang?: 'forever' | { completeAfterMs: number };
  /** Fail with this code (negative, e.g. -5); the I/O is not performed. */
  error?: number;
  /** Reads only: the device returns just this many bytes; the read fails with -EMSGSIZE. */
  shortRead?: number;
  /** Reads only: XOR 0xff into these byte positions (relative to the read) of the data returned. */
  corruptBytes?: number[];
}

export interface FaultyDiskOptions {
  sleep?: SleepFn;
  random?: RandomFn;
}

function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface ActiveRule extends FaultRule {
  remaining: number;
}

export class FaultyDisk implements Disk {
  readonly inner: Disk;
  /** I/Os asked of this disk. */
  readCalls = 0;
  writeCalls = 0;
  /** I/Os performed on the wrapped disk (late ones included) and their bytes. */
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;
  /** I/Os a rule affected. */
  faultsInjected = 0;
  /** Calls that failed with -202. */
  timeouts = 0;
  /** Wrapped I/Os that completed after their caller had timed out. */
  lateCompletions = 0;
  private rules: ActiveRule[] = [];
  private hung: Array<() => void> = [];
  private readonly sleep: SleepFn;
  private readonly random: RandomFn;

  constructor(inner: Disk, opts: FaultyDiskOptions = {}) {
    this.inner = inner;
    this.sleep = opts.sleep ?? realSleep;
    this.random = opts.random ?? Math.random;
  }

  get path(): string {
    return this.inner.path;
  }

  /** The wrapped disk's sector size, when it has one (MemDisk, DirectDisk). */
  get sectorSize(): number | undefined {
    return (this.inner as { sectorSize?: number }).sectorSize;
  }

  /** I/Os currently held by a 'forever' hang. */
  get hungCount(): number {
    return this.hung.length;
  }

  /** Replaces all rules. */
  setFaults(rules: FaultRule[]): void {
    this.rules = rules.map((r) => this.activate(r));
  }

  addFault(rule: FaultRule): void {
    this.rules.push(this.activate(rule));
  }

  clearFaults(): void {
    this.rules = [];
  }

  /** Lets every I/O held by a 'forever' hang proceed (their callers have long timed out). */
  releaseHung(): void {
    const h = this.hung;
    this.hung = [];
    for (const go of h) go();
  }

  resetCounters(): void {
    this.readCalls = this.writeCalls = this.reads = this.writes = this.bytesRead = this.bytesWritten = 0;
    this.faultsInjected = this.timeouts = this.lateCompletions = 0;
  }

  private activate(r: FaultRule): ActiveRule {
    if (r.error !== undefined) assert(r.error < 0, 'error must be a negative code');
    if (r.range) assert(r.range.end > r.range.start, 'empty fault range');
    if (r.probability !== undefined) assert(r.probability >= 0 && r.probability <= 1);
    return { ...r, remaining: r.count ?? Number.POSITIVE_INFINITY };
  }

  private match(op: 'read' | 'write', offset: number, length: number): FaultRule | undefined {
    for (const r of this.rules) {
      const ruleOp = r.op ?? 'both';
      if (ruleOp !== 'both' && ruleOp !== op) continue;
      if (r.range && (offset >= r.range.end || offset + length <= r.range.start)) continue;
      if (r.probability !== undefined && this.random() >= r.probability) continue;
      r.remaining--;
      if (r.remaining <= 0) this.rules = this.rules.filter((x) => x !== r);
      this.faultsInjected++;
      return r;
    }
    return undefined;
  }

  private delayOf(rule: FaultRule): number {
    const d = rule.delayMs;
    if (d === undefined) return 0;
    if (typeof d === 'number') return d;
    return d.min + this.random() * (d.max - d.min);
  }

  /** The fault's pre-I/O phase: delay and hang. */
  private async before(rule: FaultRule | undefined): Promise<void> {
    if (!rule) return;
    const delay = this.delayOf(rule);
    if (delay > 0) await this.sleep(delay);
    if (rule.hang === 'forever') await new Promise<void>((go) => this.hung.push(go));
    else if (rule.hang) await this.sleep(rule.hang.completeAfterMs);
    if (rule.error !== undefined) throw new SanlockError(rule.error, `injected error ${rule.error}`);
  }

  /** Races `work` against the deadline; `work` keeps running when the deadline wins. */
  private async deadline<T>(work: Promise<T>, timeoutMs: number, what: string, state: { timedOut: boolean }): Promise<T> {
    const ac = new AbortController();
    const timer = this.sleep(timeoutMs, ac.signal).then(
      () => {
        state.timedOut = true;
        this.timeouts++;
        throw new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, `${what} ${this.path}: I/O timeout after ${timeoutMs} ms`);
      },
      () => undefined as never,
    );
    try {
      return await Promise.race([work, timer]);
    } finally {
      ac.abort();
      // The losing side must not surface as an unhandled rejection.
      work.catch(() => {});
    }
  }

  async read(offset: number, length: number, timeoutMs: number): Promise<Buffer> {
    this.readCalls++;
    const rule = this.match('read', offset, length);
    const state = { timedOut: false };
    const work = (async () => {
      await this.before(rule);
      const data = await this.inner.read(offset, length, timeoutMs);
      this.reads++;
      this.bytesRead += length;
      if (state.timedOut) this.lateCompletions++;
      if (rule?.shortRead !== undefined && rule.shortRead < length) {
        throw new SanlockError(-Errno.EMSGSIZE, `read ${this.path}: short read ${rule.shortRead} of ${length}`);
      }
      for (const i of rule?.corruptBytes ?? []) if (i >= 0 && i < data.length) data[i]! ^= 0xff;
      return data;
    })();
    return this.deadline(work, timeoutMs, 'read', state);
  }

  async write(offset: number, data: Buffer, timeoutMs: number): Promise<void> {
    this.writeCalls++;
    const rule = this.match('write', offset, data.length);
    // A late write must write what the caller asked at call time, not later buffer contents.
    const copy = Buffer.from(data);
    const state = { timedOut: false };
    const work = (async () => {
      await this.before(rule);
      await this.inner.write(offset, copy, timeoutMs);
      this.writes++;
      this.bytesWritten += copy.length;
      if (state.timedOut) this.lateCompletions++;
    })();
    return this.deadline(work, timeoutMs, 'write', state);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
