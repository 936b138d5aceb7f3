// Client connections and the client table. A registered connection *is* a process
// (protocol.md §5): its SO_PEERCRED pid owns the leases acquired through it, and the socket
// closing is the only death signal the daemon trusts.
import assert from 'node:assert';
import type { Socket } from 'node:net';
import { RestrictFlag } from '../protocol/commands.js';
import type { ProcessHandle } from './native.js';

/**
 * Reads exact byte counts from a socket without trusting any length field: the daemon frames
 * by command (protocol.md §3.2). Bounded: at most `maxBuffered` bytes are held; beyond that the
 * socket is paused until the consumer catches up.
 */
export class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private waiter: (() => void) | undefined;
  private readonly maxBuffered: number;

  constructor(private readonly sock: Socket, maxBuffered = 256 * 1024) {
    this.maxBuffered = maxBuffered;
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      if (this.buffered >= this.maxBuffered) sock.pause();
      this.wake();
    });
    sock.on('end', () => {
      this.ended = true;
      this.wake();
    });
    sock.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w();
  }

  get available(): number {
    return this.buffered;
  }

  get eof(): boolean {
    return this.ended && this.buffered === 0;
  }

  private take(n: number): Buffer {
    assert(n <= this.buffered);
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    while (copied < n) {
      const c = this.chunks[0]!;
      const need = n - copied;
      if (c.length <= need) {
        c.copy(out, copied);
        copied += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, copied, 0, need);
        this.chunks[0] = c.subarray(need);
        copied += need;
      }
    }
    this.buffered -= n;
    if (this.buffered < this.maxBuffered && this.sock.isPaused()) this.sock.resume();
    return out;
  }

  /** Exactly n bytes, or null when the peer closed first (short data is discarded). */
  async read(n: number): Promise<Buffer | null> {
    assert(n >= 0);
    // reads larger than the buffer limit would deadlock against the pause above
    assert(n <= this.maxBuffered, `read of ${n} bytes exceeds reader limit`);
    while (this.buffered < n) {
      if (this.ended) return null;
      if (this.sock.isPaused()) this.sock.resume();
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
    return this.take(n);
  }

  /**
   * Drops up to n bytes of unread payload after an early error, waiting at most `ms` for them
   * (sanlock's client_recv_all: non-blocking, ~20 ms of retries). Returns bytes dropped.
   */
  async drain(n: number, ms = 20): Promise<number> {
    let dropped = 0;
    const end = Date.now() + ms;
    while (dropped < n) {
      if (this.buffered > 0) {
        const k = Math.min(this.buffered, n - dropped);
        this.take(k);
        dropped += k;
        continue;
      }
      if (this.ended || Date.now() >= end) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    return dropped;
  }
}

export const RESTRICT_ALL = RestrictFlag.ALL;
export const RESTRICT_SIGKILL = RestrictFlag.SIGKILL;
export const RESTRICT_SIGTERM = RestrictFlag.SIGTERM;

/** One slot of the client table (a connection, or one of the two internal slots). */
export class Client {
  /** pid from SO_PEERCRED at REGISTER, -1 until then */
  pid = -1;
  registered = false;
  ownerName = '';
  restricted = 0;
  /** command number running for this client (class B/C), 0 when idle */
  cmdActive = 0;
  cmdLast = 0;
  pidDead = false;
  killCount = 0;
  /** CLOCK_MONOTONIC ms of the last kill (0: none): the once-a-second limit runs on it, in real
   *  time (whole seconds let two kills land ms apart across a second boundary) */
  killLastMs = 0;
  /** kill_last as sanlock shows it: whole seconds of CLOCK_MONOTONIC */
  get killLast(): number {
    return Math.floor(this.killLastMs / 1000);
  }
  needFree = false;
  killpath = '';
  killargs = '';
  killpathPidFlag = false;
  /** set when the connection has been handed over (event channel) or closed */
  closed = false;
  /** death handling (lease release) has been started for this client */
  freed = false;
  /** pidfd handle opened at REGISTER, so kills never hit a recycled pid */
  proc: ProcessHandle | undefined;
  /** /proc start time at REGISTER: lets the root helper refuse a recycled pid */
  startTime: string | undefined;
  /** resources module's per-client token list */
  tokens: unknown[] = [];
  readonly reader: ByteReader | undefined;

  constructor(
    readonly ci: number,
    readonly sock: Socket | undefined,
    readonly fd: number,
    /** name shown in status for internal slots and the status connection */
    public internalName = '',
  ) {
    this.reader = sock ? new ByteReader(sock) : undefined;
  }

  /** Writes bytes unless the peer is gone; never throws (a dead peer is handled by close). */
  send(buf: Buffer | Buffer[]): void {
    if (!this.sock || this.sock.destroyed) return;
    const bufs = Array.isArray(buf) ? buf : [buf];
    for (const b of bufs) this.sock.write(b);
  }

  /** Sends then closes our end once written. */
  sendAndClose(buf: Buffer | Buffer[]): void {
    if (!this.sock || this.sock.destroyed) return;
    const bufs = Array.isArray(buf) ? buf : [buf];
    this.sock.end(Buffer.concat(bufs));
  }
}

/** sanlock's table has 1024 slots, two used by the helper pipe and the listener. */
export const CLIENT_SLOTS = 1024;

export class ClientTable {
  readonly slots: (Client | undefined)[] = [];

  constructor() {
    this.slots[0] = new Client(0, undefined, -1, 'helper');
    this.slots[1] = new Client(1, undefined, -1, 'listener');
  }

  get count(): number {
    let n = 0;
    for (const c of this.slots) if (c) n++;
    return n;
  }

  /** Lowest free slot, or -1 when the table is full. */
  add(sock: Socket, fd: number): Client | undefined {
    for (let i = 2; i < CLIENT_SLOTS; i++) {
      if (!this.slots[i]) {
        const c = new Client(i, sock, fd);
        this.slots[i] = c;
        return c;
      }
    }
    return undefined;
  }

  remove(c: Client): void {
    assert(this.slots[c.ci] === c);
    this.slots[c.ci] = undefined;
  }

  /** First registered, live client with this pid (protocol.md §5.2). */
  findPid(pid: number): Client | undefined {
    for (const c of this.slots) if (c?.registered && c.pid === pid && !c.pidDead) return c;
    return undefined;
  }

  /** First registered client with this pid, dead or alive (to tell -ESRCH from -EBUSY). */
  findPidAny(pid: number): Client | undefined {
    for (const c of this.slots) if (c?.registered && c.pid === pid) return c;
    return undefined;
  }

  *registered(): Generator<Client> {
    for (const c of this.slots) if (c?.registered) yield c;
  }
}
