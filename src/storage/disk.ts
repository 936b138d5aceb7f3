// The one interface the lease algorithms use to touch storage. The daemon gives them a
// direct-I/O disk, tests a faulty one, the simulator a virtual one: the algorithms cannot tell.
import { SanlkCode, SanlockError } from '../codes.js';

/**
 * Sector-granular access to one lease device (file or block device).
 *
 * - `offset` and `length` are absolute bytes and multiples of the sector size in use.
 * - `read` resolves with a Buffer the caller owns (never a buffer a late I/O may still fill).
 * - Every call has a deadline in milliseconds; when it passes the promise rejects with
 *   SanlockError(SANLK_AIO_TIMEOUT, -202) while the I/O itself may still complete later.
 * - Other failures reject with SanlockError carrying -errno (e.g. -5 EIO, -22 EINVAL).
 */
export interface Disk {
  readonly path: string;
  read(offset: number, length: number, timeoutMs: number): Promise<Buffer>;
  write(offset: number, data: Buffer, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * When an I/O that failed with SANLK_AIO_TIMEOUT is over for good (its write landed or
 * failed): a disk may attach `details.settled` to the error; undefined when it cannot tell.
 */
export function settledAfterTimeout(err: unknown): Promise<void> | undefined {
  if (!(err instanceof SanlockError) || err.code !== SanlkCode.SANLK_AIO_TIMEOUT) return undefined;
  const p = err.details?.settled;
  return p instanceof Promise ? (p as Promise<void>) : undefined;
}

/**
 * Waits for `settled` at most `ms` on the caller's timer (`sleep` may resolve or reject when
 * stopped); false when the time ran out first.
 */
export async function settledWithin(settled: Promise<unknown>, ms: number, sleep: (ms: number, stop: AbortSignal) => Promise<void>): Promise<boolean> {
  const stop = new AbortController();
  try {
    return await Promise.race([settled.then(() => true), sleep(ms, stop.signal).then(() => false, () => false)]);
  } finally {
    stop.abort();
  }
}

/** Opens disks by path; the lease layer asks for disks through this, never by itself. */
export interface DiskOpener {
  open(path: string): Promise<Disk>;
}

/** What a write-read-compare-write chain did (see ChainDisk). */
export interface ChainOutcome {
  /** The first write failed or timed out; nothing after it ran (or will run). */
  write1Error?: SanlockError;
  /** The bytes read, when the read succeeded. */
  read?: Buffer;
  /** The bytes read started with `expect` and the second write succeeded. */
  wrote3: boolean;
}

/**
 * A disk that can run three dependent I/Os as one request: write `w1` at `w1Offset`; read
 * `readLength` bytes at `readOffset`; if they start with `expect`, write `w3` at `w3Offset`.
 * Exactly the I/Os the caller would issue one by one, each with its own `timeoutMs` deadline,
 * at the cost of one hand-over to an I/O thread instead of three. Storage knows nothing of what
 * the bytes mean: the caller decides what a mismatch means.
 *
 * Resolves undefined when the disk cannot chain right now (the caller issues the I/Os itself);
 * a first write that fails is reported in the outcome (the rest did not run); a read or second
 * write that fails rejects with its SanlockError (-errno, or -202 on its deadline).
 */
export interface ChainDisk extends Disk {
  writeReadCompareWrite(req: ChainRequest, timeoutMs: number): Promise<ChainOutcome | undefined>;
}

/** The three I/Os of a chain (see ChainDisk). */
export interface ChainRequest {
  w1Offset: number;
  w1: Buffer;
  readOffset: number;
  readLength: number;
  expect: Buffer;
  w3Offset: number;
  w3: Buffer;
}

export function isChainDisk(d: Disk): d is ChainDisk {
  return typeof (d as Partial<ChainDisk>).writeReadCompareWrite === 'function';
}
