// An IoContext is a small private pool of I/O threads (default at most 2). The daemon makes one
// per lockspace, like sanlock's one thread per lockspace: a hung device then stalls only the
// context that uses it, never the event loop or other lockspaces. The threads are plain native
// threads of the addon (native/src/direct_io.cc), not worker_threads (a V8 isolate each) and not
// libuv's shared pool (4 threads that a few hung disks could fill).
//
// Rules that make late I/O safe:
// - a thread gets one request at a time; a request whose deadline passes while queued is
//   dropped and never executed, one that is already running is abandoned (the caller gets
//   -202) and its thread stays "busy" until the syscall returns, so the request's aligned
//   buffer is not reused before then;
// - the next request goes to an idle thread or a fresh one, up to maxWorkers threads: a hung
//   device can hold at most maxWorkers threads per context, after that requests wait in the
//   queue and time out there;
// - a disk's fd is closed only after every request that reached a thread for it returned, so
//   a late I/O can never land on a reused fd number;
// - a chain (write, read, compare, conditional write: one request, one thread hop) keeps the
//   deadlines of the separate I/Os: each step has its own, checked by the thread as it goes and
//   by the caller's timer (ioChainCheck), and a late step cancels the steps after it.
import assert from 'node:assert';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import { DirectDisk, type DirectDiskOptions } from './direct-disk.js';
import type { WorkerReply, WorkerRequest } from './io-protocol.js';
import { type NativeExtra, type NativeGate, NativeOp, type NativeThread, nativeIo } from './native-io.js';
import { giveBackIoBuffer, readResult, takeIoBuffer } from './read-buffers.js';

export interface IoContextOptions {
  /** I/O threads this context may hold at once, stuck ones included (default 2). */
  maxWorkers?: number;
  /** Shown in error details, e.g. the lockspace name. */
  name?: string;
}

/** A request without its id; the context assigns it. */
export type IoRequest = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

/**
 * Told exactly once per submitted request when it has left the context for good: dropped
 * from the queue, or returned from a worker. `lateReply` is the worker's answer to a request
 * that had already been abandoned at its deadline.
 */
export interface IoOwner {
  onJobDone(lateReply: WorkerReply | undefined): void;
}

/** Something opened through a context that the context closes when it closes. */
export interface IoCloseable {
  close(): Promise<void>;
}

/**
 * A successful reply; `data` is the read's bytes, in a Buffer of its own. A chain always
 * resolves with one (chainStep/chainLate/chainErrno say how far it got and why it stopped;
 * chainStep 0: it never ran), except when it never reached a thread (then it rejects).
 */
export type IoResult = WorkerReply & { ok: true; data?: Buffer; settled?: Promise<void> };

interface Job {
  id: number;
  req: IoRequest;
  /** The aligned buffer of a read or write; a write's bytes are copied in at submit. */
  buf: Buffer | undefined;
  owner: IoOwner | undefined;
  state: 'queued' | 'running' | 'abandoned' | 'settled';
  stallGen: number;
  /** CLOCK_MONOTONIC ms by which the request must have completed. */
  deadline: number;
  timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  resolve(result: IoResult): void;
  reject(err: SanlockError): void;
  describe: string;
  /** Told when an abandoned request's syscall finally returns (the `settled` of its timeout, see settledAfterTimeout in disk.ts). */
  onLate?: () => void;
}

interface Slot {
  id: number;
  thread: NativeThread;
  job: Job | undefined;
  dead: boolean;
  /** monotonicMs() when it last became idle */
  idleSince: number;
}

/** An idle thread beyond the one a context keeps ends after this long (see scheduleRetire). */
const RETIRE_IDLE_MS = 2000;

let nextId = 1;
let nextSlotId = 1;

/** CLOCK_MONOTONIC in ms, the clock the I/O threads stamp completions with (libuv's hrtime). */
function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const OPS: Record<WorkerRequest['op'], NativeOp> = {
  open: NativeOp.Open,
  size: NativeOp.Size,
  read: NativeOp.Read,
  write: NativeOp.Write,
  close: NativeOp.Close,
  chain: NativeOp.Chain,
};

/** Bytes of each of a chain buffer's four regions (write 1, read, compare, write 3). */
function chainPage(req: Extract<IoRequest, { op: 'chain' }>): number {
  const longest = Math.max(req.length, req.readLength, req.expect.length, req.data3.length);
  return Math.ceil(longest / 4096) * 4096;
}

export class IoContext {
  readonly name: string;
  readonly maxWorkers: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly gate: NativeGate = nativeIo().ioGateNew();
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly members = new Set<IoCloseable>();
  private retireTimer: NodeJS.Timeout | undefined;
  /** Requests abandoned at their deadline so far (they may still complete later). */
  timeouts = 0;
  /** Late completions of abandoned requests. */
  lateCompletions = 0;

  constructor(opts: IoContextOptions = {}) {
    this.maxWorkers = opts.maxWorkers ?? 2;
    assert(Number.isInteger(this.maxWorkers) && this.maxWorkers >= 1, 'maxWorkers must be a positive integer');
    this.name = opts.name ?? 'io';
  }

  /** Live I/O threads (idle, busy or stuck). */
  get workerCount(): number {
    return this.slots.length;
  }

  /** Workers whose current request was abandoned at its deadline (a hung or slow device). */
  get stuckWorkers(): number {
    return this.slots.filter((s) => s.job?.state === 'abandoned').length;
  }

  get queued(): number {
    return this.queue.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** True when a request submitted now would start at once (nothing queued, a worker free). */
  get canStartNow(): boolean {
    if (this.closed || this.queue.length > 0) return false;
    return this.slots.length < this.maxWorkers || this.slots.some((s) => !s.job && !s.dead);
  }

  /** Opens a disk whose I/O runs on this context's workers; closing the context closes it. */
  async open(path: string, opts: DirectDiskOptions = {}): Promise<DirectDisk> {
    return DirectDisk.openIn(this, path, opts);
  }

  /**
   * Runs one request on a worker. Rejects with SANLK_AIO_TIMEOUT (-202) when `timeoutMs`
   * passes first (the request may still run later if it had started), with -errno on failure.
   */
  submit(req: IoRequest, timeoutMs: number, owner?: IoOwner, describe: string = req.op, payload?: Buffer): Promise<IoResult> {
    const carries = req.op === 'write' || req.op === 'chain';
    assert(carries === (payload !== undefined), 'writes and chains, and only those, carry a payload');
    if (payload) assert(carries && payload.length === req.length);
    if (req.op === 'chain') {
      assert(req.expect.length > 0 && req.expect.length <= req.readLength && req.data3.length > 0);
    }
    if (this.closed) {
      owner?.onJobDone(undefined);
      return Promise.reject(new SanlockError(-Errno.EBADF, `${describe}: io context ${this.name} is closed`));
    }
    assert(Number.isFinite(timeoutMs) && timeoutMs > 0, `timeoutMs must be > 0, got ${timeoutMs}`);
    let buf: Buffer | undefined;
    if (payload && req.op === 'chain') {
      // Copied now, like a write's payload: [0] write 1, [page] read, [2 page] compare, [3 page] write 3.
      const page = chainPage(req);
      buf = takeIoBuffer(4 * page);
      payload.copy(buf, 0);
      req.expect.copy(buf, 2 * page);
      req.data3.copy(buf, 3 * page);
    } else if (payload) {
      // Copied now: the caller may reuse its buffer at once, even if the I/O runs late.
      buf = takeIoBuffer(payload.length);
      payload.copy(buf, 0);
    }
    return new Promise((resolve, reject) => {
      const job: Job = { id: nextId++, req, buf, owner, state: 'queued', stallGen: req.stallMs > 0 ? nativeIo().ioGateGen(this.gate) : 0, deadline: monotonicMs() + timeoutMs, timeoutMs, timer: undefined, resolve, reject, describe };
      job.timer = setTimeout(() => this.expire(job), timeoutMs);
      this.queue.push(job);
      this.pump();
    });
  }

  /** Fails every queued (not yet started) request of `owner` with `err`. */
  dropQueued(owner: IoOwner, err: SanlockError): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const job = this.queue[i]!;
      if (job.owner !== owner) continue;
      this.queue.splice(i, 1);
      this.settle(job, undefined, err);
      owner.onJobDone(undefined);
    }
  }

  /** @internal registers a disk to close with the context. */
  addMember(m: IoCloseable): void {
    this.members.add(m);
  }

  /** @internal */
  removeMember(m: IoCloseable): void {
    this.members.delete(m);
  }

  /** Test hook: ends every injected stall now (see DirectDisk.injectStall). */
  releaseStalls(): void {
    nativeIo().ioGateRelease(this.gate);
  }

  /**
   * Stops the context: queued requests fail with -EBADF, idle workers end now, busy ones end
   * when their syscall returns. Never waits for a hung I/O.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await Promise.all([...this.members].map((m) => m.close()));
    this.closed = true;
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    for (const job of this.queue.splice(0)) {
      this.settle(job, undefined, new SanlockError(-Errno.EBADF, `${job.describe}: io context ${this.name} closed`));
      job.owner?.onJobDone(undefined);
    }
    for (const slot of [...this.slots]) if (!slot.job) this.retire(slot);
  }

  private spawn(): Slot {
    const id = nextSlotId++;
    // The thread's completions arrive through an unref'd handle: a thread stuck in a syscall
    // does not keep the process alive; pending callers keep their own deadline timers.
    const thread = nativeIo().ioThreadStart(id, (_w, jobId, errno, message, extra) => this.onReply(slot, jobId, errno, message, extra));
    const slot: Slot = { id, thread, job: undefined, dead: false, idleSince: monotonicMs() };
    this.slots.push(slot);
    return slot;
  }

  private retire(slot: Slot): void {
    slot.dead = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    nativeIo().ioThreadStop(slot.thread);
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.job && !s.dead);
      if (!slot && this.slots.length < this.maxWorkers) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      job.state = 'running';
      slot.job = job;
      const r = job.req;
      if (r.op === 'read') job.buf = takeIoBuffer(r.length);
      if (r.op === 'chain') {
        assert(job.buf);
        const page = job.buf.length / 4;
        nativeIo().ioSubmitChain(slot.thread, job.id, r.fd, job.buf, page, r.offset, r.length, r.readOffset, r.readLength, r.expect.length, r.offset3, r.data3.length, job.deadline, job.timeoutMs, r.stallMs, this.gate, job.stallGen, r.stallSteps ?? 0);
        continue;
      }
      nativeIo().ioSubmit(
        slot.thread,
        job.id,
        OPS[r.op],
        r.op === 'open' ? -1 : r.fd,
        r.op === 'read' || r.op === 'write' ? r.offset : 0,
        r.op === 'read' || r.op === 'write' ? r.length : 0,
        job.buf,
        r.op === 'open' ? r.path : undefined,
        r.op === 'open' ? r.readOnly : false,
        r.stallMs,
        r.stallMs > 0 ? this.gate : undefined,
        job.stallGen,
      );
    }
  }

  private expire(job: Job): void {
    job.timer = undefined;
    if (job.state === 'running' && job.req.op === 'chain') {
      // Each step of a chain has its own deadline (like the separate I/Os it replaces): ask the
      // thread where the chain is; it cancels the rest of the chain when the step is late.
      const slot = this.slots.find((s) => s.job === job);
      assert(slot);
      const left = nativeIo().ioChainCheck(slot.thread, job.id, monotonicMs());
      if (left >= 0) {
        job.timer = setTimeout(() => this.expire(job), left > 0 ? Math.max(1, Math.ceil(left)) : 10);
        return;
      }
      this.abandon(job);
      // the late step, and a write after it, may still run: settled tells when the chain is over
      const settled = new Promise<void>((r) => (job.onLate = r));
      job.resolve({ id: job.id, ok: true, chainStep: -left, chainLate: true, chainErrno: 0, settled });
      this.routeAround();
      return;
    }
    if (job.state === 'running') {
      // A busy event loop can run this timer after the I/O already returned in time, with its
      // completion still queued behind: that is no timeout (the completion settles the job).
      const slot = this.slots.find((s) => s.job === job);
      const doneAt = slot ? nativeIo().ioThreadDoneAt(slot.thread, job.id) : -1;
      if (doneAt >= 0 && doneAt <= job.deadline) {
        // The completion handle is unref'd: this timer keeps the process up until it arrives.
        job.timer = setTimeout(() => this.expire(job), 10);
        return;
      }
    }
    const started = job.state === 'running';
    // A started request may still act (a write still land) when its syscall returns: `settled`
    // tells when (see settledAfterTimeout in disk.ts).
    const settled = started ? new Promise<void>((r) => (job.onLate = r)) : Promise.resolve();
    const err = new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, `${job.describe}: I/O timeout after ${job.timeoutMs} ms`, {
      context: this.name,
      started,
      settled,
    });
    if (job.state === 'queued') {
      const i = this.queue.indexOf(job);
      assert(i >= 0);
      this.queue.splice(i, 1);
      this.settle(job, undefined, err);
      job.owner?.onJobDone(undefined);
    } else if (job.state === 'running') {
      this.abandon(job);
      job.reject(err);
      this.routeAround();
    }
  }

  /** A running request past its deadline: its thread stays busy until the syscall returns. */
  private abandon(job: Job): void {
    this.timeouts++;
    job.state = 'abandoned';
  }

  /**
   * After abandoning a request: the next one must not wait behind the hung one. It may use a
   * fresh thread if the limit allows, started now so that the next request finds it idle.
   */
  private routeAround(): void {
    this.pump();
    if (!this.closed && this.slots.length < this.maxWorkers && !this.slots.some((s) => !s.job && !s.dead)) this.spawn();
  }

  private settle(job: Job, reply: WorkerReply | undefined, err: SanlockError | undefined): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = undefined;
    // A request that never reached a thread gives its buffer back now.
    if (job.state === 'queued' && job.buf) giveBackIoBuffer(job.buf);
    if (job.state === 'queued') job.buf = undefined;
    const wasPending = job.state === 'queued' || job.state === 'running';
    job.state = 'settled';
    if (!wasPending) return;
    if (err) job.reject(err);
    else if (reply?.ok) job.resolve(reply);
    else if (reply && !reply.ok) {
      job.reject(new SanlockError(-reply.errno, `${job.describe}: ${reply.message}`, { errno: reply.errno, context: this.name }));
    }
  }

  private onReply(slot: Slot, jobId: number, errno: number, message: string | undefined, extra: NativeExtra | undefined): void {
    const job = slot.job;
    assert(job && job.id === jobId, 'io thread replied to a request it was not given');
    slot.job = undefined;
    const late = job.state === 'abandoned';
    if (late) {
      this.lateCompletions++;
      job.onLate?.();
    }
    const reply: WorkerReply = errno !== 0 ? { id: jobId, ok: false, errno, message: message ?? `errno ${errno}` } : { id: jobId, ok: true, ...extra };
    let result: IoResult | WorkerReply = reply;
    const buf = job.buf;
    job.buf = undefined;
    if (job.req.op === 'chain') {
      // A chain always resolves: how far it got is the caller's to judge.
      assert(buf);
      const step = extra?.chainStep ?? 0;
      const chainLate = extra?.chainLate ?? false;
      const readOk = step > 2 || (step === 2 && errno === 0 && !chainLate);
      const page = buf.length / 4;
      const data = readOk && !late ? Buffer.from(buf.subarray(page, page + job.req.readLength)) : undefined;
      giveBackIoBuffer(buf);
      result = { id: jobId, ok: true, chainStep: step, chainLate, chainMatch: extra?.chainMatch ?? false, chainErrno: errno, chainMessage: message, ...(data ? { data } : {}) };
    } else if (buf) {
      // The thread is done with the buffer: a successful read's bytes go to a caller still
      // waiting, every other buffer back to the pool.
      if (reply.ok && job.req.op === 'read' && !late) result = { ...reply, data: readResult(buf) };
      else giveBackIoBuffer(buf);
    }
    this.settle(job, result, undefined);
    job.owner?.onJobDone(late ? reply : undefined);
    if (this.closed) {
      this.retire(slot);
      return;
    }
    slot.idleSince = monotonicMs();
    this.pump();
    this.scheduleRetire();
  }

  /**
   * Keeps one idle thread; extra ones (started for a burst, or to route around a slow request)
   * end once idle for RETIRE_IDLE_MS. Not at once: under a steady load of more requests than
   * one thread serves, threads go idle for a moment between requests, and ending them then
   * means starting new ones a moment later (hundreds a second at 8 threads).
   */
  private scheduleRetire(): void {
    if (this.retireTimer || this.closed) return;
    let idle = 0;
    for (const s of this.slots) if (!s.job && !s.dead) idle++;
    if (idle <= 1) return;
    this.retireTimer = setTimeout(() => this.retireIdle(), RETIRE_IDLE_MS);
    this.retireTimer.unref();
  }

  private retireIdle(): void {
    this.retireTimer = undefined;
    if (this.closed) return;
    const now = monotonicMs();
    // the most recently busy one stays
    const idle = this.slots.filter((s) => !s.job && !s.dead).sort((a, b) => b.idleSince - a.idleSince);
    for (const s of idle.slice(1)) if (now - s.idleSince >= RETIRE_IDLE_MS - 1) this.retire(s);
    this.scheduleRetire();
  }
}
