// The real Disk: O_DIRECT|O_SYNC I/O on a regular file or block device, run on the I/O threads
// of an IoContext (see io-context.ts for why and for the late-I/O rules), with per-call
// deadlines like sanlock's aio timeouts.
import assert from 'node:assert';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import type { ChainDisk, ChainOutcome, ChainRequest, DiskOpener } from './disk.js';
import { IoContext, type IoOwner, type IoResult } from './io-context.js';
import type { WorkerReply } from './io-protocol.js';
import { WriteOrder, type WriteTimer } from './write-order.js';

export interface DirectDiskOptions {
  readOnly?: boolean;
  /** Use this sector size instead of the detected one (a positive power of two ≥ 512). */
  sectorSize?: number;
  /** Deadline of the open itself (default 10000 ms). */
  timeoutMs?: number;
  /** Test hook: the worker blocks this long before the open syscall. */
  openStallMs?: number;
}

export const DEFAULT_OPEN_TIMEOUT_MS = 10_000;

/** For WriteOrder: a caller waiting on its timer keeps the process up, as IoContext's deadline timers do. */
const REAL_TIMER: WriteTimer = {
  sleep: (ms, stop) => sleep(ms, undefined, { signal: stop }),
  nowMs: () => performance.now(),
};

function validSectorSize(n: number): boolean {
  return Number.isInteger(n) && n >= 512 && (n & (n - 1)) === 0;
}

export class DirectDisk implements ChainDisk, IoOwner {
  readonly path: string;
  readonly readOnly: boolean;
  /** Sector size in use: the override, else 512 for files, the logical size for block devices. */
  readonly sectorSize: number;
  readonly isBlockDevice: boolean;
  /** What the device reports (512/512 for regular files, as sanlock assumes). */
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly context: IoContext;
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;
  private readonly fd: number;
  private readonly ownsContext: boolean;
  private pending = 0;
  private closed = false;
  private fdClosing: Promise<void> | undefined;
  private stallMs = 0;
  private stallCount = 0;
  private chainStall: { steps: number; ms: number } | undefined;
  private readonly order = new WriteOrder();

  private constructor(
    ctx: IoContext,
    ownsContext: boolean,
    path: string,
    fd: number,
    readOnly: boolean,
    info: { isBlock: boolean; logical: number; physical: number },
    sectorSize: number,
  ) {
    this.context = ctx;
    this.ownsContext = ownsContext;
    this.path = path;
    this.fd = fd;
    this.readOnly = readOnly;
    this.isBlockDevice = info.isBlock;
    this.logicalSectorSize = info.logical;
    this.physicalSectorSize = info.physical;
    this.sectorSize = sectorSize;
  }

  /** @internal use IoContext.open or openDirectDisk. */
  static async openIn(ctx: IoContext, path: string, opts: DirectDiskOptions = {}, ownsContext = false): Promise<DirectDisk> {
    if (opts.sectorSize !== undefined && !validSectorSize(opts.sectorSize)) {
      throw new SanlockError(-Errno.EINVAL, `invalid sector size ${opts.sectorSize}`);
    }
    const readOnly = opts.readOnly ?? false;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    // An open that completes after its deadline must not leak its fd.
    const lateOpenCloser: IoOwner = {
      onJobDone(late: WorkerReply | undefined) {
        if (!late?.ok || late.fd === undefined) return;
        const fd = late.fd;
        if (ctx.canStartNow) ctx.submit({ op: 'close', fd, stallMs: 0 }, DEFAULT_OPEN_TIMEOUT_MS).catch(() => {});
        else fs.close(fd, () => {});
      },
    };
    let reply: WorkerReply & { ok: true };
    try {
      reply = await ctx.submit({ op: 'open', path, readOnly, stallMs: opts.openStallMs ?? 0 }, timeoutMs, lateOpenCloser, `open ${path}`);
    } catch (e) {
      throw e instanceof SanlockError ? new SanlockError(e.code, e.message, { ...e.details, path }) : e;
    }
    assert(reply.fd !== undefined && reply.logicalSectorSize !== undefined);
    const logical = reply.logicalSectorSize;
    const physical = reply.physicalSectorSize ?? logical;
    const sectorSize = opts.sectorSize ?? logical;
    const disk = new DirectDisk(ctx, ownsContext, path, reply.fd, readOnly, { isBlock: reply.isBlock ?? false, logical, physical }, sectorSize);
    ctx.addMember(disk);
    return disk;
  }

  private check(offset: number, length: number, what: string): void {
    if (this.closed) throw new SanlockError(-Errno.EBADF, `${what} ${this.path}: disk is closed`);
    // O_DIRECT refuses unaligned I/O with EINVAL; refuse before touching the device so
    // that nothing is written.
    if (
      !Number.isSafeInteger(offset) ||
      offset < 0 ||
      !Number.isSafeInteger(length) ||
      length <= 0 ||
      offset % this.sectorSize !== 0 ||
      length % this.sectorSize !== 0
    ) {
      throw new SanlockError(-Errno.EINVAL, `${what} ${this.path}: unaligned I/O offset ${offset} length ${length} sector size ${this.sectorSize}`);
    }
  }

  private takeStall(): number {
    if (this.stallCount <= 0) return 0;
    this.stallCount--;
    return this.stallMs;
  }

  async read(offset: number, length: number, timeoutMs: number): Promise<Buffer> {
    this.check(offset, length, 'read');
    this.pending++;
    const reply = await this.context.submit(
      { op: 'read', fd: this.fd, offset, length, stallMs: this.takeStall() },
      timeoutMs,
      this,
      `read ${this.path} offset ${offset} length ${length}`,
    );
    assert(reply.data && reply.data.length === length);
    this.reads++;
    this.bytesRead += length;
    return reply.data;
  }

  async write(offset: number, data: Buffer, timeoutMs: number): Promise<void> {
    this.check(offset, data.length, 'write');
    const what = `write ${this.path} offset ${offset} length ${data.length}`;
    await this.order.write(offset, data, timeoutMs, what, REAL_TIMER, async (bytes, ms) => {
      if (this.closed) throw new SanlockError(-Errno.EBADF, `${what}: disk is closed`);
      // The context copies the bytes before this call returns, so the caller may reuse them
      // even if the I/O runs late after a timeout.
      this.pending++;
      await this.context.submit({ op: 'write', fd: this.fd, offset, length: bytes.length, stallMs: this.takeStall() }, ms, this, what, bytes);
    });
    this.writes++;
    this.bytesWritten += data.length;
  }

  async writeReadCompareWrite(req: ChainRequest, timeoutMs: number): Promise<ChainOutcome | undefined> {
    const { w1Offset, w1, readOffset, readLength, expect, w3Offset, w3 } = req;
    // Injected stalls count single I/Os; a closed disk or a bad request fails in the single
    // I/Os as it always did.
    if (this.stallCount > 0 || this.closed || expect.length === 0 || expect.length > readLength) return undefined;
    // behind a hung write to the same sectors: the single I/Os wait for it (see write-order.ts)
    if (this.order.blocked(w1Offset, w1Offset + w1.length) || this.order.blocked(w3Offset, w3Offset + w3.length)) return undefined;
    try {
      this.check(w1Offset, w1.length, 'write');
      this.check(readOffset, readLength, 'read');
      this.check(w3Offset, w3.length, 'write');
    } catch {
      return undefined;
    }
    // Error texts are built only for errors (a busy daemon runs thousands of chains a second).
    const what = (k: number): string =>
      k === 1
        ? `write ${this.path} offset ${w1Offset} length ${w1.length}`
        : k === 2
          ? `read ${this.path} offset ${readOffset} length ${readLength}`
          : `write ${this.path} offset ${w3Offset} length ${w3.length}`;
    const stall = this.chainStall;
    this.chainStall = undefined;
    this.pending++;
    let r: IoResult;
    try {
      r = await this.context.submit(
        { op: 'chain', fd: this.fd, offset: w1Offset, length: w1.length, readOffset, readLength, offset3: w3Offset, expect, data3: w3, stallMs: stall?.ms ?? 0, stallSteps: stall?.steps },
        timeoutMs,
        this,
        `chain ${this.path} offset ${w1Offset}`,
        w1,
      );
    } catch (e) {
      // It never reached a thread (context closed, or queued past its deadline): as a first
      // write that failed, and nothing else ran.
      if (!(e instanceof SanlockError)) throw e;
      return { write1Error: e, wrote3: false };
    }
    const step = r.chainStep ?? 0;
    assert(step >= 1 && step <= 3, `chain stopped at step ${step}`);
    // a write step abandoned at its deadline may still land (the steps after it never run)
    if (r.chainLate && r.settled && step !== 2) {
      const [o, n] = step === 1 ? [w1Offset, w1.length] : [w3Offset, w3.length];
      this.order.hungUntil(o, o + n, r.settled);
    }
    const failed = r.chainLate === true || (r.chainErrno ?? 0) !== 0;
    const err = (k: number): SanlockError =>
      r.chainLate
        ? new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, `${what(k)}: I/O timeout after ${timeoutMs} ms`, { context: this.context.name, started: true, chainStep: k })
        : new SanlockError(-r.chainErrno!, `${what(k)}: ${r.chainMessage}`, { errno: r.chainErrno, context: this.context.name, chainStep: k });
    if (step === 1 && failed) return { write1Error: err(1), wrote3: false };
    this.writes++;
    this.bytesWritten += w1.length;
    if (step === 2 && failed) throw err(2);
    this.reads++;
    this.bytesRead += readLength;
    // A chain abandoned at its deadline reports no bytes.
    if (step === 3 && failed) throw err(3);
    assert(r.data && r.data.length === readLength);
    if (step === 2) {
      assert(!r.chainMatch);
      return { read: r.data, wrote3: false };
    }
    assert(r.chainMatch);
    this.writes++;
    this.bytesWritten += w3.length;
    return { read: r.data, wrote3: true };
  }

  /** Bytes in the file, or of the block device. */
  async size(timeoutMs = DEFAULT_OPEN_TIMEOUT_MS): Promise<number> {
    if (this.closed) throw new SanlockError(-Errno.EBADF, `size ${this.path}: disk is closed`);
    this.pending++;
    const reply = await this.context.submit({ op: 'size', fd: this.fd, stallMs: 0 }, timeoutMs, this, `size ${this.path}`);
    assert(reply.size !== undefined);
    return reply.size;
  }

  /**
   * Test hook: the next `count` I/Os of this disk block their worker thread for `ms` before
   * the syscall, like a device that answers late (context.releaseStalls() ends them early).
   */
  injectStall(ms: number, count = 1): void {
    this.stallMs = ms;
    this.stallCount = count;
  }

  /**
   * Test hook: the next writeReadCompareWrite blocks its thread for `ms` inside each of `steps`
   * (1 first write, 2 read, 3 second write), before that step's syscall.
   */
  injectChainStall(steps: (1 | 2 | 3)[], ms: number): void {
    this.chainStall = { steps: steps.reduce((m, s) => m | (1 << (s - 1)), 0), ms };
  }

  /** @internal */
  onJobDone(): void {
    this.pending--;
    assert(this.pending >= 0);
    if (this.closed && this.pending === 0) void this.closeFd();
  }

  /**
   * Stops using the disk. Never waits for a hung I/O: the fd is closed once the last request
   * that reached a worker returns, so a late I/O cannot hit a reused fd number.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Requests still queued never reached a worker: they fail now.
    this.context.dropQueued(this, new SanlockError(-Errno.EBADF, `${this.path}: disk closed`));
    if (this.pending === 0) await this.closeFd();
    // A private context has nothing else to do: its idle workers end now, the stuck ones
    // when their I/O returns (the fd is closed then, see onJobDone).
    else if (this.ownsContext) await this.context.close();
  }

  private closeFd(): Promise<void> {
    this.fdClosing ??= this.doCloseFd();
    return this.fdClosing;
  }

  private async doCloseFd(): Promise<void> {
    this.context.removeMember(this);
    try {
      if (this.context.canStartNow) {
        // On a worker: the last close of a block device flushes it, an NFS close talks to
        // the server, either may block.
        await this.context.submit({ op: 'close', fd: this.fd, stallMs: 0 }, DEFAULT_OPEN_TIMEOUT_MS, undefined, `close ${this.path}`);
      } else {
        // Every worker is stuck on (other disks') hung I/O: closing must not wait behind them.
        // No request of this disk is in a worker, so the fd number is safe to release.
        await new Promise<void>((resolve) => fs.close(this.fd, () => resolve()));
      }
    } catch {
      // A close that fails or times out leaves nothing for the caller to do.
    } finally {
      if (this.ownsContext) await this.context.close();
    }
  }
}

/** Opens a disk with a private IoContext (its own worker threads, at most 2). */
export async function openDirectDisk(path: string, opts: DirectDiskOptions = {}): Promise<DirectDisk> {
  const ctx = new IoContext({ name: path });
  try {
    return await DirectDisk.openIn(ctx, path, opts, true);
  } catch (e) {
    await ctx.close();
    throw e;
  }
}

/** A DiskOpener for the lease layer: disks on `context` if given, else each on its own. */
export class DirectDiskOpener implements DiskOpener {
  readonly context: IoContext | undefined;
  readonly opts: DirectDiskOptions;

  constructor(context?: IoContext, opts: DirectDiskOptions = {}) {
    this.context = context;
    this.opts = opts;
  }

  open(path: string): Promise<DirectDisk> {
    return this.context ? this.context.open(path, this.opts) : openDirectDisk(path, this.opts);
  }
}
