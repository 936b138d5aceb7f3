// Watchdog device driven directly, without wdmd: what wdmd does, inside the daemon. A device
// can be open only once, so all lockspaces of the process share one DeviceHub per path; the
// hub pets the device only while every armed lockspace's expiry is in the future.
import assert from 'node:assert';
import fs from 'node:fs';
import { SanlkCode, SanlockError } from '../../codes.js';
import { watchdogKeepalive, watchdogSetTimeout } from '../native.js';
import {
  type ArmParams,
  DEFAULT_WATCHDOG_DEVICE,
  expiryFor,
  type LockspaceWatchdog,
  monotonicSecondsExact,
  WATCHDOG_FIRE_TIMEOUT,
  type WatchdogLog,
} from './common.js';

export interface DeviceOptions {
  /** Default: env SANLOCK_TS_WATCHDOG_DEV, else /dev/watchdog. */
  devicePath?: string;
  /** Test interval between keepalive decisions (default 10000 ms, wdmd's). */
  keepaliveIntervalMs?: number;
  log?: WatchdogLog;
  now?: () => number;
}

/** Device operations, separable so tests can count them. */
export interface DeviceOps {
  open(path: string): number;
  setTimeout(fd: number, seconds: number): number;
  keepalive(fd: number): number;
  /** Write the magic 'V' and close: stops the timer (drivers without nowayout). */
  magicClose(fd: number): void;
  /** Close without 'V': the timer keeps running and resets the host. */
  uncleanClose(fd: number): void;
}

export const nativeDeviceOps: DeviceOps = {
  open(path) {
    // No O_CREAT: a missing device must fail, never become a regular file.
    return fs.openSync(path, fs.constants.O_WRONLY);
  },
  setTimeout: watchdogSetTimeout,
  keepalive: watchdogKeepalive,
  magicClose(fd) {
    try {
      fs.writeSync(fd, 'V');
    } finally {
      fs.closeSync(fd);
    }
  },
  uncleanClose(fd) {
    fs.closeSync(fd);
  },
};

interface HubClient {
  name: string;
  expire: number;
  /** Closed without disarm: stays until the process exits, so the device fires. */
  dead: boolean;
}

export class DeviceHub {
  readonly path: string;
  private fd = -1;
  private timer: NodeJS.Timeout | undefined;
  private readonly clients = new Set<HubClient>();
  keepalives = 0;
  skipped = 0;
  lastKeepalive = 0;

  constructor(
    path: string,
    private readonly ops: DeviceOps,
    private readonly intervalMs: number,
    private readonly now: () => number,
    private readonly log: WatchdogLog | undefined,
  ) {
    this.path = path;
  }

  get isOpen(): boolean {
    return this.fd >= 0;
  }

  private ensureOpen(): void {
    if (this.fd >= 0) return;
    let fd: number;
    try {
      fd = this.ops.open(this.path);
    } catch (err) {
      this.log?.error(`open ${this.path} error ${(err as Error).message}`);
      throw new SanlockError(SanlkCode.SANLK_WD_ERROR, `open ${this.path}: ${(err as Error).message}`);
    }
    // Opening starts the timer with the driver's default timeout; set ours at once.
    const t = this.ops.setTimeout(fd, WATCHDOG_FIRE_TIMEOUT);
    if (t !== WATCHDOG_FIRE_TIMEOUT) {
      this.log?.error(`${this.path} failed to set fire_timeout ${WATCHDOG_FIRE_TIMEOUT}: ${t}`);
      this.ops.magicClose(fd);
      throw new SanlockError(SanlkCode.SANLK_WD_ERROR, `${this.path}: settimeout ${WATCHDOG_FIRE_TIMEOUT} gave ${t}`);
    }
    this.fd = fd;
    this.lastKeepalive = this.now();
    this.log?.warn?.(`${this.path} armed with fire_timeout ${WATCHDOG_FIRE_TIMEOUT}`);
    this.timer = setInterval(() => this.test(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * One test, wdmd 3.8.5's rule: keepalive only if, for every armed lockspace, the expiry is
   * still more than one test interval away (now + interval < expire). A keepalive is thus only
   * given when the next test is certain to come before the expiry, so the last one precedes
   * the expiry by more than an interval and the reset comes before expiry + fire timeout.
   */
  test(): boolean {
    if (this.fd < 0) return false;
    const now = this.now();
    const margin = this.intervalMs / 1000;
    let fail = 0;
    for (const c of this.clients) {
      if (c.expire === 0) continue;
      if (now >= c.expire) {
        this.log?.error(`test failed now ${now.toFixed(0)} expire ${c.expire} ${c.name}${c.dead ? ' (closed)' : ''}`);
        fail++;
      } else if (now + margin >= c.expire) {
        this.log?.error(`test warning now ${now.toFixed(0)} expire ${c.expire} ${c.name}${c.dead ? ' (closed)' : ''}`);
        fail++;
      }
    }
    if (fail) {
      this.skipped++;
      return false;
    }
    for (const c of this.clients) assert(c.expire === 0 || now + margin < c.expire, 'keepalive within an interval of a lease expiry');
    const rv = this.ops.keepalive(this.fd);
    if (rv < 0) this.log?.error(`${this.path} keepalive failed ${rv}`);
    this.keepalives++;
    this.lastKeepalive = now;
    return rv === 0;
  }

  attach(name: string, expire: number): HubClient {
    this.ensureOpen();
    const c: HubClient = { name, expire, dead: false };
    this.clients.add(c);
    return c;
  }

  /** Removes a disarmed client; the device is closed cleanly once nothing depends on it. */
  detach(c: HubClient, disarmed: boolean): void {
    if (!disarmed && c.expire !== 0) {
      c.dead = true;
      this.log?.error(`client closed with expire ${c.expire} ${c.name}: the watchdog will fire`);
      return;
    }
    this.clients.delete(c);
    if (this.clients.size === 0) this.shutdown();
  }

  private shutdown(): void {
    if (this.fd < 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
    const fd = this.fd;
    this.fd = -1;
    this.ops.magicClose(fd);
    this.log?.warn?.(`${this.path} disarmed`);
  }
}

const hubs = new Map<string, DeviceHub>();

/** The process-wide hub of a device path (created on first use). */
export function deviceHub(path: string, ops: DeviceOps, intervalMs: number, now: () => number, log?: WatchdogLog): DeviceHub {
  let h = hubs.get(path);
  if (!h) {
    h = new DeviceHub(path, ops, intervalMs, now, log);
    hubs.set(path, h);
  }
  return h;
}

export class DeviceWatchdog implements LockspaceWatchdog {
  readonly mode = 'device' as const;
  readonly hub: DeviceHub;
  private client: HubClient | undefined;
  private ioTimeout = 0;
  private lastRenewal = 0;
  private readonly now: () => number;

  constructor(opts: DeviceOptions = {}, ops: DeviceOps = nativeDeviceOps) {
    const path = opts.devicePath ?? process.env.SANLOCK_TS_WATCHDOG_DEV ?? DEFAULT_WATCHDOG_DEVICE;
    this.now = opts.now ?? monotonicSecondsExact;
    this.hub = deviceHub(path, ops, opts.keepaliveIntervalMs ?? 10_000, this.now, opts.log);
  }

  get expireTs(): number {
    return this.client?.expire ?? 0;
  }

  async connect(): Promise<void> {
    // Nothing to reach: the device is opened when the first lockspace arms.
  }

  async arm(p: ArmParams): Promise<void> {
    assert(!this.client, 'watchdog already armed');
    const expire = expiryFor(p.renewalTs, p.ioTimeout, this.now());
    this.client = this.hub.attach(`sanlock_${p.spaceName}:${p.hostId}`, expire);
    this.ioTimeout = p.ioTimeout;
    this.lastRenewal = p.renewalTs;
  }

  async refresh(renewalTs: number): Promise<number> {
    const c = this.client;
    assert(c && this.ioTimeout > 0, 'refresh before arm');
    c.expire = expiryFor(renewalTs, this.ioTimeout, this.now(), this.lastRenewal);
    this.lastRenewal = renewalTs;
    return 0;
  }

  async disarm(): Promise<number> {
    const c = this.client;
    if (!c) return 0;
    c.expire = 0;
    this.ioTimeout = 0;
    this.client = undefined;
    this.hub.detach(c, true);
    return 0;
  }

  async close(): Promise<void> {
    const c = this.client;
    if (!c) return;
    this.client = undefined;
    this.hub.detach(c, false);
  }
}
