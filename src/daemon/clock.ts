// The daemon's real clock: CLOCK_MONOTONIC (libuv's hrtime), the same clock sanlock writes
// into delta-lease timestamps, so our timestamps are comparable with a real sanlock's.
import type { Clock } from '../lease/clock.js';

export const systemClock: Clock = {
  monotonicSeconds(): number {
    return Number(process.hrtime.bigint() / 1_000_000_000n);
  },
  monotonicMs(): number {
    return Number(process.hrtime.bigint() / 1_000_000n);
  },
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};

export function monotime(): number {
  return systemClock.monotonicSeconds();
}
