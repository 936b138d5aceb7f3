// One unix-socket connection to the daemon with exact-length reads, the way libsanlock uses
// recv(MSG_WAITALL): a read returns fewer bytes only when the daemon closed the connection.
import assert from 'node:assert';
import { createConnection, type Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { SanlockClientError } from './errors.js';

/** -errno for a Node system error code ('ENOENT' → -2); -1 when unknown. */
export function errnoOf(err: unknown): number {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const n = code ? (osConstants.errno as Record<string, number>)[code] : undefined;
  return n ? -n : -1;
}

export class Conn {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private error: Error | undefined;
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.buffered += d.length;
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.ended = true;
      this.wake();
    });
  }

  static open(path: string, op = 'connect'): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ path });
      const onErr = (e: Error) => {
        s.destroy();
        reject(new SanlockClientError(errnoOf(e), op, `cannot connect to ${path}: ${e.message}`));
      };
      s.once('error', onErr);
      s.once('connect', () => {
        s.off('error', onErr);
        resolve(new Conn(s));
      });
    });
  }

  /** The socket's file descriptor number (what python's register() returns), or -1. */
  get fd(): number {
    const h = (this.socket as unknown as { _handle?: { fd?: number } })._handle;
    return typeof h?.fd === 'number' ? h.fd : -1;
  }

  get closed(): boolean {
    return this.ended;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  write(buf: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) {
        reject(new SanlockClientError(-32 /* EPIPE */, 'send', 'connection closed'));
        return;
      }
      this.socket.write(buf, (err) => (err ? reject(new SanlockClientError(errnoOf(err), 'send', err.message)) : resolve()));
    });
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  /** Exactly n bytes, or fewer if the peer closed first (like recv with MSG_WAITALL). */
  async readExact(n: number): Promise<Buffer> {
    assert(n >= 0);
    while (this.buffered < n && !this.ended) await new Promise<void>((r) => (this.waiter = r));
    return this.take(Math.min(n, this.buffered));
  }

  /** Everything until the peer closes. */
  async readToEnd(): Promise<Buffer> {
    while (!this.ended) await new Promise<void>((r) => (this.waiter = r));
    return this.take(this.buffered);
  }

  /** Whatever is buffered now, without waiting (the non-blocking recv of sanlock_get_event). */
  readAvailable(max = Number.MAX_SAFE_INTEGER): Buffer {
    return this.take(Math.min(max, this.buffered));
  }

  /** Resolves when data is buffered or the peer closed. */
  async waitReadable(): Promise<void> {
    if (this.buffered > 0 || this.ended) return;
    await new Promise<void>((r) => (this.waiter = r));
  }

  get available(): number {
    return this.buffered;
  }

  get socketError(): Error | undefined {
    return this.error;
  }

  close(): void {
    this.socket.destroy();
    this.ended = true;
    this.wake();
  }
}
