// Every timeout sanlock derives from a lockspace's io_timeout (N) and the watchdog fire timeout (W).
// Hosts only agree on who is dead because they all compute these from the same formulas, so a
// sanlock-ts host must use exactly these numbers (spec/algorithms.md §1).
//
// Worked timeline for one host whose storage stops answering (N = io_timeout, W = 60):
//
//   t0            last successful renewal (timestamp T written to its delta lease)
//   t0 + 2N       next renewal due; it fails (read deadline N, write deadline 8N+W) and is retried
//                 every 0.5 s
//   t0 + 6N       id_renewal_warn_seconds: the daemon logs a renewal warning
//   t0 + 8N       id_renewal_fail_seconds: the lockspace has failed → recovery starts: client pids
//                 get SIGTERM / killpath for kill_grace_seconds, then SIGKILL. wdmd was last told
//                 "expire at t0 + 8N"; it is not told again, so the watchdog fires at the latest
//                 W seconds after that unless every pid using the lockspace is gone and the
//                 lockspace is removed in time
//   t0 + 8N + W   host_dead_seconds: the host has certainly been reset (or stopped its leases).
//                 Other hosts, which saw timestamp T stop changing when they first looked (≤ t0 +
//                 2N later from their view, they use their own clocks and only compare changes),
//                 call it DEAD and may take over its paxos leases or its host_id.
//
// Other hosts measure from the moment they themselves last saw the timestamp change, never from
// the value of T (clocks are not shared), which is why every threshold is a duration.

import assert from 'node:assert/strict';

export const DEFAULT_IO_TIMEOUT = 10;
export const DEFAULT_WATCHDOG_FIRE_TIMEOUT = 60;
export const DEFAULT_KILL_GRACE_SECONDS = 40;
export const WRITE_INIT_IO_TIMEOUT = 60;
export const SH_RETRIES = 8;

export function idRenewalSeconds(n: number): number {
  return 2 * n;
}
export function idRenewalWarnSeconds(n: number): number {
  return 6 * n;
}
export function idRenewalFailSeconds(n: number): number {
  return 8 * n;
}
/** A host silent for this long has been reset by its watchdog: 8N + W. */
export function hostDeadSeconds(n: number, w = DEFAULT_WATCHDOG_FIRE_TIMEOUT): number {
  return 8 * n + w;
}
/** Lifetime of a bitmap bit / request rate limit; the daemon's -b option overrides 6N. */
export function setBitmapSeconds(n: number, override?: number): number {
  return override !== undefined && override > 0 ? override : 6 * n;
}
/** 2N_o + 6N_o: part of the wait before taking a host_id that looks held. */
export function deltaLargeDelay(nOther: number): number {
  return 2 * nOther + 6 * nOther;
}
/** 2N_o: wait after writing our delta lease before checking nobody else wrote it. */
export function deltaShortDelay(nOther: number): number {
  return 2 * nOther;
}
/** Wait before taking a host_id held under another name: max(host_dead(N_o), 8N_o). */
export function deltaAcquireHeldWait(nOther: number, w = DEFAULT_WATCHDOG_FIRE_TIMEOUT): number {
  return Math.max(hostDeadSeconds(nOther, w), deltaLargeDelay(nOther));
}

/**
 * kill_grace_seconds: the -g value when given; otherwise 40, shortened when the watchdog fires
 * sooner than the default 60 s so that SIGKILL still comes before the reset.
 */
export function killGraceSeconds(w = DEFAULT_WATCHDOG_FIRE_TIMEOUT, explicit?: number): number {
  if (explicit !== undefined) return explicit;
  if (w >= 60) return DEFAULT_KILL_GRACE_SECONDS;
  if (w >= 30) return 15;
  return 0;
}

export interface Timeouts {
  ioTimeout: number;
  watchdogFireTimeout: number;
  idRenewalSeconds: number;
  idRenewalWarnSeconds: number;
  idRenewalFailSeconds: number;
  hostDeadSeconds: number;
  setBitmapSeconds: number;
  /** delta-lease waits computed with N_o = our own N (what a fresh lockspace uses) */
  deltaLargeDelay: number;
  deltaShortDelay: number;
  deltaAcquireHeldWait: number;
  /** deadline of the renewal write, seconds */
  renewalWriteTimeout: number;
  /** how long a timed-out renewal read may still be reaped, seconds */
  renewalReadExtend: number;
  killGraceSeconds: number;
  writeInitIoTimeout: number;
  shRetries: number;
  /** informational bounds sanlock logs (seconds) */
  bounds: {
    deltaAcquireHeldMax: number;
    deltaAcquireHeldMin: number;
    deltaAcquireFreeMax: number;
    deltaAcquireFreeMin: number;
    deltaRenewMax: number;
    deltaRenewMin: number;
    paxosAcquireHeldMax: number;
    paxosAcquireHeldMin: number;
    paxosAcquireFreeMax: number;
    paxosAcquireFreeMin: number;
    requestFinishSeconds: number;
  };
}

export interface TimeoutOptions {
  watchdogFireTimeout?: number;
  /** daemon -g */
  killGraceSeconds?: number;
  /** daemon -b */
  setBitmapSeconds?: number;
}

export function computeTimeouts(ioTimeout: number, opts: TimeoutOptions = {}): Timeouts {
  assert.ok(Number.isInteger(ioTimeout) && ioTimeout > 0, `io_timeout must be a positive integer, got ${ioTimeout}`);
  const n = ioTimeout;
  const w = opts.watchdogFireTimeout ?? DEFAULT_WATCHDOG_FIRE_TIMEOUT;
  const hd = hostDeadSeconds(n, w);
  const heldWait = deltaAcquireHeldWait(n, w);
  return {
    ioTimeout: n,
    watchdogFireTimeout: w,
    idRenewalSeconds: idRenewalSeconds(n),
    idRenewalWarnSeconds: idRenewalWarnSeconds(n),
    idRenewalFailSeconds: idRenewalFailSeconds(n),
    hostDeadSeconds: hd,
    setBitmapSeconds: setBitmapSeconds(n, opts.setBitmapSeconds),
    deltaLargeDelay: deltaLargeDelay(n),
    deltaShortDelay: deltaShortDelay(n),
    deltaAcquireHeldWait: heldWait,
    renewalWriteTimeout: hd,
    renewalReadExtend: n,
    killGraceSeconds: killGraceSeconds(w, opts.killGraceSeconds),
    writeInitIoTimeout: WRITE_INIT_IO_TIMEOUT,
    shRetries: SH_RETRIES,
    bounds: {
      deltaAcquireHeldMax: heldWait + 2 * n + 4 * n,
      deltaAcquireHeldMin: heldWait,
      deltaAcquireFreeMax: 2 * n + 3 * n,
      deltaAcquireFreeMin: 2 * n,
      deltaRenewMax: 2 * n,
      deltaRenewMin: 0,
      paxosAcquireHeldMax: hd + 7 * n,
      paxosAcquireHeldMin: hd,
      paxosAcquireFreeMax: 6 * n,
      paxosAcquireFreeMin: 0,
      requestFinishSeconds: 3 * 2 * n,
    },
  };
}
