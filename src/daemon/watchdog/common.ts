// Shared definitions of the per-lockspace watchdog connection (see watchdog.ts for the contract).
import assert from 'node:assert';

export type WatchdogMode = 'wdmd' | 'device' | 'none';

/**
 * Seconds from the last keepalive to the host reset. Every host of a lockspace must use the
 * same value: other hosts wait host_dead_seconds = 8·io_timeout + 60 before taking our leases,
 * which is only safe if we are reset by then.
 */
export const WATCHDOG_FIRE_TIMEOUT = 60;

/** Renewal timestamp + this many io_timeouts = the moment our leases stop being safe. */
export const EXPIRY_IO_TIMEOUTS = 8;

export const DEFAULT_WDMD_SOCKET = '/run/wdmd/wdmd.sock';
export const DEFAULT_WATCHDOG_DEVICE = '/dev/watchdog';

export interface WatchdogLog {
  error(msg: string): void;
  warn?(msg: string): void;
  debug?(msg: string): void;
}

export interface ArmParams {
  spaceName: string;
  hostId: number | bigint;
  /** The lockspace's io_timeout in seconds (1..255). */
  ioTimeout: number;
  /** Timestamp written by the delta acquire (CLOCK_MONOTONIC seconds). */
  renewalTs: number;
}

/**
 * One lockspace's hold on the host watchdog. Methods are called from one task at a time
 * (the lockspace's join/renewal/removal sequence), never concurrently.
 */
export interface LockspaceWatchdog {
  readonly mode: WatchdogMode;
  /** Reach the watchdog (wdmd socket); SanlockError(-203) when it cannot be reached. */
  connect(): Promise<void>;
  /**
   * After the delta lease is acquired, before any resource lease is used: register, take a
   * reference, check the fire timeout is 60, and set expiry = renewalTs + 8·ioTimeout.
   * Connects first if connect() was not called. SanlockError(-203) on any failure (the
   * watchdog is then left unreferenced and closed).
   */
  arm(p: ArmParams): Promise<void>;
  /**
   * After every successful renewal: expiry = renewalTs + 8·ioTimeout. Resolves 0 or -errno
   * (failures are logged, never thrown: the renewal itself succeeded).
   */
  refresh(renewalTs: number): Promise<number>;
  /**
   * Lockspace removal once no client holds a lease of it: clear the expiry (retried once after
   * 0.5 s) and drop the reference. Resolves 0 or -errno.
   */
  disarm(): Promise<number>;
  /** Last step of the lockspace thread. Without a prior disarm() the expiry stays armed. */
  close(): Promise<void>;
  /** The expiry last handed to the watchdog (0 = none). */
  readonly expireTs: number;
}

/** CLOCK_MONOTONIC in (fractional) seconds: the clock of delta-lease timestamps and of wdmd. */
export function monotonicSecondsExact(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/**
 * The safety rule: the watchdog may be kept from firing only until last_success + 8·io_timeout,
 * the moment recovery starts and other hosts begin counting towards taking our leases. A
 * renewal timestamp is taken when the renewal starts, so it is never in the future, and a
 * later renewal never carries an older timestamp.
 */
export function expiryFor(renewalTs: number, ioTimeout: number, now: number, previousTs = 0): number {
  assert(Number.isInteger(renewalTs) && renewalTs > 0, `bad renewal timestamp ${renewalTs}`);
  assert(Number.isInteger(ioTimeout) && ioTimeout > 0 && ioTimeout <= 0xff, `bad io_timeout ${ioTimeout}`);
  // Whole-second timestamps vs a fractional clock: allow the rounding, nothing more.
  assert(renewalTs <= Math.floor(now) + 1, `renewal timestamp ${renewalTs} is in the future (now ${now})`);
  assert(renewalTs >= previousTs, `renewal timestamp went back: ${renewalTs} < ${previousTs}`);
  const expire = renewalTs + EXPIRY_IO_TIMEOUTS * ioTimeout;
  assert(expire - renewalTs <= EXPIRY_IO_TIMEOUTS * ioTimeout);
  return expire;
}

/** wdmd's client name for a lockspace, as sanlock registers it. */
export function wdmdClientName(spaceName: string, hostId: number | bigint): string {
  // sanlock formats into a 128-byte buffer with one byte kept back: at most 126 characters.
  return `sanlock_${spaceName}:${hostId}`.slice(0, 126);
}
