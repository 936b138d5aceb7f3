// Client of wdmd, the watchdog multiplexing daemon, over its unix socket: one connection per
// lockspace, as sanlock keeps. wdmd pets /dev/watchdog every test interval only while every
// registered client's expiry is in the future, so feeding it our expiry is all that is needed.
import assert from 'node:assert';
import net from 'node:net';
import { Errno, SanlkCode, SanlockError } from '../../codes.js';
import {
  type ArmParams,
  DEFAULT_WDMD_SOCKET,
  expiryFor,
  type LockspaceWatchdog,
  monotonicSecondsExact,
  WATCHDOG_FIRE_TIMEOUT,
  type WatchdogLog,
  wdmdClientName,
} from './common.js';

/** struct wdmd_header: the only message in either direction. */
export const WDMD_HEADER_SIZE = 176;
export const WDMD_NAME_SIZE = 128;

export const WdmdCmd = {
  REGISTER: 1,
  REFCOUNT_SET: 2,
  REFCOUNT_CLEAR: 3,
  TEST_LIVE: 4,
  STATUS: 5,
  DUMP_DEBUG: 6,
} as const;

export interface WdmdHeader {
  magic: number;
  cmd: number;
  len: number;
  flags: number;
  testInterval: number;
  fireTimeout: number;
  lastKeepalive: bigint;
  renewalTime: bigint;
  expireTime: bigint;
  name: string;
}

export function encodeWdmdHeader(h: Partial<WdmdHeader> & { cmd: number }): Buffer {
  const b = Buffer.alloc(WDMD_HEADER_SIZE);
  b.writeUInt32LE(h.magic ?? 0, 0);
  b.writeUInt32LE(h.cmd, 4);
  b.writeUInt32LE(h.len ?? 0, 8);
  b.writeUInt32LE(h.flags ?? 0, 12);
  b.writeUInt32LE(h.testInterval ?? 0, 16);
  b.writeUInt32LE(h.fireTimeout ?? 0, 20);
  b.writeBigUInt64LE(h.lastKeepalive ?? 0n, 24);
  b.writeBigUInt64LE(h.renewalTime ?? 0n, 32);
  b.writeBigUInt64LE(h.expireTime ?? 0n, 40);
  if (h.name) {
    const n = Buffer.from(h.name, 'utf8');
    assert(n.length < WDMD_NAME_SIZE, 'wdmd name too long');
    n.copy(b, 48);
  }
  return b;
}

export function decodeWdmdHeader(b: Buffer): WdmdHeader {
  assert(b.length >= WDMD_HEADER_SIZE);
  const nameBytes = b.subarray(48, 48 + WDMD_NAME_SIZE);
  const nul = nameBytes.indexOf(0);
  return {
    magic: b.readUInt32LE(0),
    cmd: b.readUInt32LE(4),
    len: b.readUInt32LE(8),
    flags: b.readUInt32LE(12),
    testInterval: b.readUInt32LE(16),
    fireTimeout: b.readUInt32LE(20),
    lastKeepalive: b.readBigUInt64LE(24),
    renewalTime: b.readBigUInt64LE(32),
    expireTime: b.readBigUInt64LE(40),
    name: nameBytes.subarray(0, nul < 0 ? WDMD_NAME_SIZE : nul).toString('utf8'),
  };
}

export interface WdmdStatus {
  testInterval: number;
  fireTimeout: number;
  lastKeepalive: number;
}

export interface WdmdOptions {
  /** Default: env SANLOCK_TS_WDMD_SOCK, else /run/wdmd/wdmd.sock. */
  socketPath?: string;
  /** How long to wait for the connection and for the STATUS reply (default 5000 ms). */
  replyTimeoutMs?: number;
  /** Pause before the one retry of TEST_LIVE(0,0) on removal (default 500 ms, as sanlock). */
  disarmRetryMs?: number;
  log?: WatchdogLog;
  /** Fractional CLOCK_MONOTONIC seconds (tests may substitute). */
  now?: () => number;
}

function errnoOf(err: unknown): number {
  const code = (err as NodeJS.ErrnoException)?.code;
  const table: Record<string, number> = {
    ENOENT: Errno.ENOENT,
    ECONNREFUSED: 111,
    EPIPE: 32,
    ECONNRESET: 104,
    EACCES: 13,
    ETIMEDOUT: 110,
  };
  return -(code && table[code] ? table[code] : 32 /* EPIPE: the connection is unusable */);
}

export class WdmdWatchdog implements LockspaceWatchdog {
  readonly mode = 'wdmd' as const;
  readonly socketPath: string;
  private sock: net.Socket | undefined;
  private closed = false;
  private rx = Buffer.alloc(0);
  private waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private ioTimeout = 0;
  private lastRenewal = 0;
  private expire = 0;
  private name = '';
  private readonly replyTimeoutMs: number;
  private readonly disarmRetryMs: number;
  private readonly log: WatchdogLog | undefined;
  private readonly now: () => number;

  constructor(opts: WdmdOptions = {}) {
    this.socketPath = opts.socketPath ?? process.env.SANLOCK_TS_WDMD_SOCK ?? DEFAULT_WDMD_SOCKET;
    this.replyTimeoutMs = opts.replyTimeoutMs ?? 5000;
    this.disarmRetryMs = opts.disarmRetryMs ?? 500;
    this.log = opts.log;
    this.now = opts.now ?? monotonicSecondsExact;
  }

  get expireTs(): number {
    return this.expire;
  }

  get connected(): boolean {
    return this.sock !== undefined && !this.closed;
  }

  async connect(): Promise<void> {
    if (this.sock) return;
    const sock = net.createConnection({ path: this.socketPath });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), this.replyTimeoutMs);
        sock.once('connect', () => {
          clearTimeout(t);
          resolve();
        });
        sock.once('error', (e) => {
          clearTimeout(t);
          reject(e);
        });
      });
    } catch (err) {
      sock.destroy();
      const rv = errnoOf(err);
      this.log?.error(`wdmd_connect failed ${rv}`);
      throw new SanlockError(SanlkCode.SANLK_WD_ERROR, `wdmd_connect ${this.socketPath}: ${(err as Error).message}`, { errno: rv });
    }
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (e) => this.onGone(e));
    sock.on('close', () => this.onGone(new Error('wdmd closed the connection')));
    this.sock = sock;
  }

  private onData(d: Buffer): void {
    this.rx = Buffer.concat([this.rx, d]);
    if (this.waiter && this.rx.length >= WDMD_HEADER_SIZE) {
      const msg = this.rx.subarray(0, WDMD_HEADER_SIZE);
      this.rx = this.rx.subarray(WDMD_HEADER_SIZE);
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(Buffer.from(msg));
    }
  }

  private onGone(e: Error): void {
    if (!this.closed) this.log?.error(`wdmd connection lost: ${e.message}`);
    this.closed = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(Object.assign(new Error('wdmd connection closed'), { code: 'EPIPE' }));
  }

  private async send(h: Partial<WdmdHeader> & { cmd: number }): Promise<number> {
    const sock = this.sock;
    if (!sock || this.closed) return -32;
    const buf = encodeWdmdHeader(h);
    try {
      await new Promise<void>((resolve, reject) => sock.write(buf, (err) => (err ? reject(err) : resolve())));
      return 0;
    } catch (err) {
      return errnoOf(err);
    }
  }

  /** STATUS: wdmd echoes the header with its test interval, fire timeout and last keepalive. */
  async status(): Promise<WdmdStatus> {
    const reply = new Promise<Buffer>((resolve, reject) => {
      assert(!this.waiter, 'one STATUS at a time');
      this.waiter = { resolve, reject };
    });
    const rv = await this.send({ cmd: WdmdCmd.STATUS });
    let timer: NodeJS.Timeout | undefined;
    try {
      if (rv < 0) throw Object.assign(new Error(`send ${rv}`), { code: 'EPIPE' });
      const b = await Promise.race([
        reply,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(Object.assign(new Error('no STATUS reply'), { code: 'ETIMEDOUT' })), this.replyTimeoutMs);
        }),
      ]);
      const h = decodeWdmdHeader(b);
      return { testInterval: h.testInterval, fireTimeout: h.fireTimeout, lastKeepalive: Number(h.lastKeepalive) };
    } finally {
      clearTimeout(timer);
      this.waiter = undefined;
      reply.catch(() => {});
    }
  }

  async arm(p: ArmParams): Promise<void> {
    assert(this.expire === 0, 'watchdog already armed');
    const expire = expiryFor(p.renewalTs, p.ioTimeout, this.now());
    await this.connect();
    this.name = wdmdClientName(p.spaceName, p.hostId);
    const fail = async (what: string, rv: number, clear: boolean): Promise<never> => {
      this.log?.error(`${what} failed ${rv}`);
      // The reference must not outlive a lockspace that never joined, or wdmd could not exit.
      if (clear) await this.send({ cmd: WdmdCmd.REFCOUNT_CLEAR });
      await this.close();
      throw new SanlockError(SanlkCode.SANLK_WD_ERROR, `${what} failed ${rv}`, { errno: rv });
    };
    let rv = await this.send({ cmd: WdmdCmd.REGISTER, name: this.name });
    if (rv < 0) return fail('wdmd_register', rv, false);
    // The reference keeps wdmd from exiting cleanly (and disarming) while we depend on it.
    rv = await this.send({ cmd: WdmdCmd.REFCOUNT_SET });
    if (rv < 0) return fail('wdmd_refcount_set', rv, false);
    let st: WdmdStatus;
    try {
      st = await this.status();
    } catch (err) {
      return fail('wdmd_status', errnoOf(err), true);
    }
    if (st.fireTimeout !== WATCHDOG_FIRE_TIMEOUT) {
      return fail(`wdmd invalid fire_timeout ${st.fireTimeout} vs ${WATCHDOG_FIRE_TIMEOUT}, wdmd_status`, -Errno.EINVAL, true);
    }
    rv = await this.send({ cmd: WdmdCmd.TEST_LIVE, renewalTime: BigInt(p.renewalTs), expireTime: BigInt(expire) });
    if (rv < 0) return fail('wdmd_test_live in create', rv, true);
    this.ioTimeout = p.ioTimeout;
    this.lastRenewal = p.renewalTs;
    this.expire = expire;
    this.log?.debug?.(`wdmd ${this.name} armed renewal ${p.renewalTs} expire ${expire} test_interval ${st.testInterval}`);
  }

  async refresh(renewalTs: number): Promise<number> {
    assert(this.ioTimeout > 0, 'refresh before arm');
    const expire = expiryFor(renewalTs, this.ioTimeout, this.now(), this.lastRenewal);
    const rv = await this.send({ cmd: WdmdCmd.TEST_LIVE, renewalTime: BigInt(renewalTs), expireTime: BigInt(expire) });
    if (rv < 0) {
      this.log?.error(`wdmd_test_live ${renewalTs} failed ${rv}`);
      return rv;
    }
    this.lastRenewal = renewalTs;
    this.expire = expire;
    return 0;
  }

  async disarm(): Promise<number> {
    if (!this.sock) return 0;
    this.log?.debug?.(`wdmd_test_live 0 0 to disable ${this.name}`);
    let rv = await this.send({ cmd: WdmdCmd.TEST_LIVE, renewalTime: 0n, expireTime: 0n });
    if (rv < 0) {
      this.log?.error(`wdmd_test_live in unlink failed ${rv}`);
      await new Promise((r) => setTimeout(r, this.disarmRetryMs));
      rv = await this.send({ cmd: WdmdCmd.TEST_LIVE, renewalTime: 0n, expireTime: 0n });
      if (rv < 0) {
        this.log?.error(`wdmd_test_live in unlink 2 failed ${rv}`);
        return rv;
      }
    }
    this.expire = 0;
    this.ioTimeout = 0;
    const rc = await this.send({ cmd: WdmdCmd.REFCOUNT_CLEAR });
    if (rc < 0) this.log?.error(`wdmd_refcount_clear failed ${rc}`);
    return rc;
  }

  async close(): Promise<void> {
    const sock = this.sock;
    if (!sock) return;
    this.closed = true;
    if (sock.destroyed) return;
    // A full close, never a half-close (end()): wdmd 3.8.5 ignores EOF on a half-closed
    // connection and spins on it until it also sees the hangup.
    await new Promise<void>((resolve) => {
      sock.once('close', () => resolve());
      sock.destroy();
    });
  }
}
