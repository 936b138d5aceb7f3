// An IoContext is a small private pool of I/O worker threads (default at most 2). The daemon
// makes one per lockspace, like sanlock's one thread per lockspace: a hung device then stalls
// only the context that uses it, never the event loop or other lockspaces.
//
// Rules that make late I/O safe:
// - a worker gets one request at a time; a request whose deadline passes while queued is
//   dropped and never executed, one that is already running is abandoned (the caller gets
//   -202) and its worker stays "busy" until the syscall returns, so its aligned buffer is not
//   reused before then;
// - the next request goes to an idle worker or a fresh one, up to maxWorkers threads: a hung
//   device can hold at most maxWorkers threads per context, after that requests wait in the
//   queue and time out there;
// - a disk's fd is closed only after every request that reached a worker for it returned, so
//   a late I/O can never land on a reused fd number.
import assert from 'node:assert';
import { Worker } from 'node:worker_threads';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import { DirectDisk, type DirectDiskOptions } from './direct-disk.js';
import type { WorkerReply, WorkerRequest } from './io-protocol.js';

export interface IoContextOptions {
  /** Worker threads this context may hold at once, stuck ones included (default 2). */
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

/** A successful reply; `data` is the read's bytes, in a Buffer of its own. */
export type IoResult = WorkerReply & { ok: true; data?: Buffer };

interface Job {
  id: number;
  req: IoRequest;
  /** Bytes of a write: the caller's buffer while the job is dispatched at once, else a copy. */
  payload: Buffer | undefined;
  owner: IoOwner | undefined;
  state: 'queued' | 'running' | 'abandoned' | 'settled';
  stallGen: number;
  timer: NodeJS.Timeout | undefined;
  resolve(result: IoResult): void;
  reject(err: SanlockError): void;
  describe: string;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  dead: boolean;
  /** This worker's exchange area (see io-protocol.ts), grown on demand. */
  exchange: Buffer | undefined;
}

const MIN_EXCHANGE = 64 * 1024;

let nextId = 1;
const workerUrl = new URL('./io-worker.js', import.meta.url);

export class IoContext {
  readonly name: string;
  readonly maxWorkers: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly gateSab = new SharedArrayBuffer(4);
  private readonly gate = new Int32Array(this.gateSab);
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly members = new Set<IoCloseable>();
  /** Requests abandoned at their deadline so far (they may still complete later). */
  timeouts = 0;
  /** Late completions of abandoned requests. */
  lateCompletions = 0;

  constructor(opts: IoContextOptions = {}) {
    this.maxWorkers = opts.maxWorkers ?? 2;
    assert(Number.isInteger(this.maxWorkers) && this.maxWorkers >= 1, 'maxWorkers must be a positive integer');
    this.name = opts.name ?? 'io';
  }

  /** Live worker threads (idle, busy or stuck). */
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
    assert((req.op === 'write') === (payload !== undefined), 'writes, and only writes, carry a payload');
    if (payload) assert(req.op === 'write' && payload.length === req.length);
    if (this.closed) {
      owner?.onJobDone(undefined);
      return Promise.reject(new SanlockError(-Errno.EBADF, `${describe}: io context ${this.name} is closed`));
    }
    assert(Number.isFinite(timeoutMs) && timeoutMs > 0, `timeoutMs must be > 0, got ${timeoutMs}`);
    return new Promise((resolve, reject) => {
      const job: Job = { id: nextId++, req, payload, owner, state: 'queued', stallGen: Atomics.load(this.gate, 0), timer: undefined, resolve, reject, describe };
      job.timer = setTimeout(() => this.expire(job, timeoutMs), timeoutMs);
      this.queue.push(job);
      this.pump();
      // Still queued: the caller may change its buffer before the request runs.
      if (job.state === 'queued' && job.payload) job.payload = Buffer.from(job.payload);
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
    Atomics.add(this.gate, 0, 1);
    Atomics.notify(this.gate, 0);
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
    for (const job of this.queue.splice(0)) {
      this.settle(job, undefined, new SanlockError(-Errno.EBADF, `${job.describe}: io context ${this.name} closed`));
      job.owner?.onJobDone(undefined);
    }
    // Not awaited: a worker still starting up can take a while to stop, and nothing waits on it.
    for (const slot of [...this.slots]) if (!slot.job) void this.retire(slot);
  }

  private spawn(): Slot {
    const worker = new Worker(workerUrl, { workerData: { gate: this.gateSab },
      name: `sanlock-io-${this.name}`,
      // fds are shared by all workers of a context (opened in one, used and closed in others);
      // a retiring worker must not close the fds it happened to open.
      trackUnmanagedFds: false,
    });
    // A worker stuck in a syscall must not keep the process alive; pending callers keep
    // their own deadline timers, which are referenced.
    worker.unref();
    const slot: Slot = { worker, job: undefined, dead: false, exchange: undefined };
    worker.on('message', (reply: WorkerReply) => this.onReply(slot, reply));
    worker.on('error', (err) => this.onWorkerGone(slot, err));
    worker.on('exit', () => this.onWorkerGone(slot, undefined));
    this.slots.push(slot);
    return slot;
  }

  private retire(slot: Slot): Promise<number> {
    slot.dead = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    return slot.worker.terminate();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.job && !s.dead);
      if (!slot && this.slots.length < this.maxWorkers) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      job.state = 'running';
      slot.job = job;
      const msg = { ...job.req, id: job.id, stallGen: job.stallGen } as WorkerRequest;
      const need = msg.op === 'read' || msg.op === 'write' ? msg.length : 0;
      if (need > 0 && (!slot.exchange || slot.exchange.length < need)) {
        // Only an idle worker gets a new area, so no late I/O can still be using the old one.
        const sab = new SharedArrayBuffer(Math.max(MIN_EXCHANGE, need));
        slot.exchange = Buffer.from(sab);
        msg.exchange = sab;
      }
      if (job.payload) {
        job.payload.copy(slot.exchange!, 0);
        job.payload = undefined;
      }
      slot.worker.postMessage(msg);
    }
  }

  private expire(job: Job, timeoutMs: number): void {
    job.timer = undefined;
    const err = new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, `${job.describe}: I/O timeout after ${timeoutMs} ms`, {
      context: this.name,
      started: job.state === 'running',
    });
    if (job.state === 'queued') {
      const i = this.queue.indexOf(job);
      assert(i >= 0);
      this.queue.splice(i, 1);
      this.settle(job, undefined, err);
      job.owner?.onJobDone(undefined);
    } else if (job.state === 'running') {
      this.timeouts++;
      job.state = 'abandoned';
      job.reject(err);
      // The next request must not wait behind the hung one: it may use a fresh worker if the
      // limit allows, started now so that its start-up (tens of ms) is not on that request.
      this.pump();
      if (!this.closed && this.slots.length < this.maxWorkers && !this.slots.some((s) => !s.job && !s.dead)) this.spawn();
    }
  }

  private settle(job: Job, reply: WorkerReply | undefined, err: SanlockError | undefined): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = undefined;
    const wasPending = job.state === 'queued' || job.state === 'running';
    job.state = 'settled';
    if (!wasPending) return;
    if (err) job.reject(err);
    else if (reply?.ok) job.resolve(reply);
    else if (reply && !reply.ok) {
      job.reject(new SanlockError(-reply.errno, `${job.describe}: ${reply.message}`, { errno: reply.errno, context: this.name }));
    }
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    const job = slot.job;
    assert(job && job.id === reply.id, 'io worker replied to a request it was not given');
    slot.job = undefined;
    const late = job.state === 'abandoned';
    if (late) this.lateCompletions++;
    let result: IoResult | WorkerReply = reply;
    if (reply.ok && job.req.op === 'read' && !late) {
      // Copied out now: the exchange area belongs to the worker's next request.
      const data = Buffer.allocUnsafeSlow(job.req.length);
      slot.exchange!.copy(data, 0, 0, job.req.length);
      result = { ...reply, data };
    }
    this.settle(job, result, undefined);
    job.owner?.onJobDone(late ? reply : undefined);
    if (this.closed) {
      void this.retire(slot);
      return;
    }
    // Keep one idle worker; extra ones were started to route around a slow request.
    const idle = this.slots.filter((s) => !s.job && !s.dead).length;
    if (idle > 1 && this.queue.length === 0) void this.retire(slot);
    this.pump();
  }

  private onWorkerGone(slot: Slot, err: Error | undefined): void {
    if (slot.dead && !slot.job) return;
    slot.dead = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    const job = slot.job;
    slot.job = undefined;
    if (job) {
      this.settle(job, undefined, new SanlockError(-Errno.EIO, `${job.describe}: io worker failed: ${err?.message ?? 'exited'}`));
      job.owner?.onJobDone(undefined);
    }
    if (!this.closed) this.pump();
  }
}
