// `-w 0`: no watchdog. Lease safety then rests on the kill sequence alone, as with sanlock -w 0.
import assert from 'node:assert';
import { type ArmParams, expiryFor, type LockspaceWatchdog, monotonicSecondsExact } from './common.js';

export class NoWatchdog implements LockspaceWatchdog {
  readonly mode = 'none' as const;
  private ioTimeout = 0;
  private lastRenewal = 0;
  private expire = 0;

  get expireTs(): number {
    return this.expire;
  }

  async connect(): Promise<void> {}

  // The expiry is still computed and checked, so a daemon bug trips the same assertions
  // whatever the mode.
  async arm(p: ArmParams): Promise<void> {
    assert(this.expire === 0, 'watchdog already armed');
    this.expire = expiryFor(p.renewalTs, p.ioTimeout, monotonicSecondsExact());
    this.ioTimeout = p.ioTimeout;
    this.lastRenewal = p.renewalTs;
  }

  async refresh(renewalTs: number): Promise<number> {
    assert(this.ioTimeout > 0, 'refresh before arm');
    this.expire = expiryFor(renewalTs, this.ioTimeout, monotonicSecondsExact(), this.lastRenewal);
    this.lastRenewal = renewalTs;
    return 0;
  }

  async disarm(): Promise<number> {
    this.expire = 0;
    this.ioTimeout = 0;
    return 0;
  }

  async close(): Promise<void> {}
}
