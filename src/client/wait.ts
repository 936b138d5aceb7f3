// Waiting acquire: sanlock's ACQUIRE fails at once while another owner holds the lease; an
// operator or a script usually wants "get it within N seconds". These results mean "someone
// else has it right now" and are worth retrying; anything else is returned at once.
import assert from 'node:assert/strict';

/**
 * -243 IDLIVE, -244 IDTIMEOUT, -245 OWNED, -246 OTHER, -247 SHRETRY, -11 EAGAIN, and -17 EEXIST
 * (another client of the same daemon holds it: the daemon refuses before touching the disk).
 */
export const BUSY_CODES: ReadonlySet<number> = new Set([-243, -244, -245, -246, -247, -11, -17]);

export interface WaitOptions {
  /** total seconds to keep trying */
  wait: number;
  /** first pause (ms), doubled after each busy result up to maxDelayMs */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** called before each pause with the busy result and the pause length */
  onRetry?: (rv: number, delayMs: number, attempt: number) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  random?: () => number;
}

/**
 * Runs `attempt` until it returns a result that is not busy or `wait` seconds have passed;
 * returns the last result. Pauses are jittered (±20 %) so that waiters started together do not
 * hit the disk in lock-step, and never run past the deadline.
 */
export async function retryWhileBusy(attempt: () => Promise<number>, opts: WaitOptions): Promise<number> {
  assert.ok(Number.isFinite(opts.wait) && opts.wait >= 0, 'wait must be a non-negative number of seconds');
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const maxDelay = opts.maxDelayMs ?? 5000;
  let delay = opts.initialDelayMs ?? 500;
  const deadline = now() + opts.wait * 1000;
  for (let n = 1; ; n++) {
    const rv = await attempt();
    if (!BUSY_CODES.has(rv)) return rv;
    const left = deadline - now();
    if (left <= 0) return rv;
    const pause = Math.max(1, Math.min(left, Math.round(delay * (0.8 + 0.4 * random()))));
    opts.onRetry?.(rv, pause, n);
    await sleep(pause);
    delay = Math.min(maxDelay, delay * 2);
  }
}
