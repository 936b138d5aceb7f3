// One disk's writes to a sector land in the order they were issued.
//
// A write abandoned at its deadline may still be in the kernel (or a multipath queue). A newer
// write to the same sectors, issued meanwhile on another I/O thread, can then land first and
// the stale one last: a host's own SH mode block, say, wiped by its older phase-1 write (the
// simulator found this with --reorder). So a write overlapping a still-hung one waits for it
// to be over, within its own deadline; at the deadline it fails with -202 without having been
// issued. sanlock's aio has the same exposure and no such wait.
import { SanlkCode, SanlockError } from '../codes.js';
import { settledAfterTimeout, settledWithin } from './disk.js';

/** The disk's timer: `sleep` resolves at the time (and may resolve or reject once stopped); `nowMs` is monotonic. */
export interface WriteTimer {
  sleep(ms: number, stop: AbortSignal): Promise<void>;
  nowMs(): number;
}

interface Hung {
  start: number;
  end: number;
  settled: Promise<void>;
}

export class WriteOrder {
  private readonly hung: Hung[] = [];

  /** Notes a write that failed: one that timed out and may still land holds back later overlapping writes. */
  failed(start: number, end: number, err: unknown): void {
    const settled = settledAfterTimeout(err);
    if (settled) this.hungUntil(start, end, settled);
  }

  /** Notes a write that may still land until `settled`. */
  hungUntil(start: number, end: number, settled: Promise<void>): void {
    const h: Hung = { start, end, settled };
    this.hung.push(h);
    void settled.then(() => this.hung.splice(this.hung.indexOf(h), 1));
  }

  /** Whether a write to [start, end) would have to wait. */
  blocked(start: number, end: number): boolean {
    return this.hung.some((h) => h.start < end && start < h.end);
  }

  /**
   * Runs `issue` for a write of `data` at `start` once no hung write overlaps it (with its own
   * copy of `data` and the time left when it had to wait), and notes it if it then times out.
   */
  async write(
    start: number,
    data: Buffer,
    timeoutMs: number,
    what: string,
    timer: WriteTimer,
    issue: (data: Buffer, timeoutMs: number) => Promise<void>,
  ): Promise<void> {
    const end = start + data.length;
    if (this.blocked(start, end)) {
      // The caller may reuse `data` as soon as our promise is made: keep a copy for later.
      data = Buffer.from(data);
      timeoutMs = await this.wait(start, end, timeoutMs, what, timer);
    }
    try {
      await issue(data, timeoutMs);
    } catch (e) {
      this.failed(start, end, e);
      throw e;
    }
  }

  /**
   * Waits until no hung write overlaps [start, end), using at most `timeoutMs` of `timer`;
   * returns the time left, or throws -202 at the deadline.
   */
  private async wait(start: number, end: number, timeoutMs: number, what: string, timer: WriteTimer): Promise<number> {
    const t0 = timer.nowMs();
    while (this.blocked(start, end)) {
      const left = timeoutMs - (timer.nowMs() - t0);
      const over = this.hung.filter((h) => h.start < end && start < h.end).map((h) => h.settled);
      if (left <= 0 || !(await settledWithin(Promise.all(over), left, timer.sleep))) {
        throw new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, `${what}: I/O timeout after ${timeoutMs} ms behind an earlier write to the same sectors`, {
          started: false,
          settled: Promise.resolve(),
        });
      }
    }
    return Math.max(1, timeoutMs - (timer.nowMs() - t0));
  }
}
