// Page-aligned buffers for O_DIRECT I/O, and reuse of them.
//
// Every read and write of a DirectDisk runs on a buffer from here (the kernel needs aligned
// memory for O_DIRECT). A large read (a 1 MiB lease area per ballot phase, a lockspace area per
// renewal) is handed to the caller as is, with no copy; a caller that is done with it may give
// it back with recycleReadBuffer() so the next large read reuses it instead of mapping fresh
// memory. Giving back is optional: a buffer never returned is unmapped when V8 collects it.
// Small reads are copied into an ordinary Buffer and their aligned buffer goes straight back.
//
// A buffer whose I/O was abandoned at its deadline goes back to the pool only when that late
// I/O has returned (see io-context.ts), so no late read can write into memory a caller now owns.
import assert from 'node:assert';
import { nativeIo } from './native-io.js';

/** Reads at least this long are lent to the caller; shorter ones are copied (cheap). */
export const LENT_READ_MIN = 64 * 1024;
/**
 * Bytes kept for reuse at most: the large reads in flight at once during a burst of acquires
 * (8 resource I/O threads per lockspace, plus renewals). A buffer that is not kept costs a fresh
 * mapping next time, and faulting in 1 MiB of new pages costs about as much as the read itself.
 */
const MAX_POOLED_BYTES = 16 * 1024 * 1024;
/** Pooled bytes kept resident when idle; the rest gives its pages back after TRIM_AFTER_MS. */
const KEEP_WARM_BYTES = 2 * 1024 * 1024;
const TRIM_AFTER_MS = 5000;

interface Pooled {
  buf: Buffer;
  /** When it came back to the pool (performance.now()), or -1 once its pages were given back. */
  since: number;
}

const free = new Map<number, Pooled[]>();
let pooledBytes = 0;
/** Bytes of pooled buffers whose pages are still resident. */
let warmBytes = 0;
let trimTimer: NodeJS.Timeout | undefined;
/** Backing stores of buffers lent to a caller, which may give them back (each at most once). */
const lent = new WeakSet<ArrayBufferLike>();
/** Backing stores made here: only those may enter the pool. */
const ours = new WeakSet<ArrayBufferLike>();

export const ioBufferStats = { allocated: 0, reused: 0, recycled: 0, discarded: 0 };

/** An aligned buffer of exactly `length` bytes; its content is undefined. */
export function takeIoBuffer(length: number): Buffer {
  const list = free.get(length);
  const p = list?.pop();
  if (p) {
    pooledBytes -= length;
    if (p.since >= 0) warmBytes -= length;
    ioBufferStats.reused++;
    return p.buf;
  }
  ioBufferStats.allocated++;
  const nb = nativeIo().ioAlloc(length);
  assert(nb.length === length && nb.byteOffset === 0);
  ours.add(nb.buffer);
  return nb;
}

/** Back to the pool; the buffer must not be used by anyone afterwards. */
export function giveBackIoBuffer(b: Buffer): void {
  assert(ours.has(b.buffer) && !lent.has(b.buffer), 'only an unlent io buffer goes back to the pool this way');
  if (pooledBytes + b.length > MAX_POOLED_BYTES) return;
  let list = free.get(b.length);
  if (!list) {
    list = [];
    free.set(b.length, list);
  }
  // Taken last-in first-out: the warm buffers are reused, the cold ones sink to the bottom.
  list.push({ buf: b, since: performance.now() });
  pooledBytes += b.length;
  warmBytes += b.length;
  if (warmBytes > KEEP_WARM_BYTES && !trimTimer) {
    trimTimer = setTimeout(trim, TRIM_AFTER_MS);
    trimTimer.unref();
  }
}

function trim(): void {
  trimTimer = undefined;
  trimIdleIoBuffers();
}

/**
 * After a burst: pooled buffers idle for `minIdleMs` give their pages back, down to the warm
 * reserve. Runs by itself on a timer; exported for tests.
 */
export function trimIdleIoBuffers(minIdleMs = TRIM_AFTER_MS): void {
  const now = performance.now();
  for (const list of free.values()) {
    for (const p of list) {
      if (warmBytes <= KEEP_WARM_BYTES) break;
      if (p.since < 0 || now - p.since < minIdleMs) continue;
      nativeIo().ioDiscard(p.buf);
      p.since = -1;
      warmBytes -= p.buf.length;
      ioBufferStats.discarded++;
    }
  }
  if (warmBytes > KEEP_WARM_BYTES && !trimTimer) {
    trimTimer = setTimeout(trim, TRIM_AFTER_MS);
    trimTimer.unref();
  }
}

/** The bytes of a finished read, as the caller gets them. */
export function readResult(b: Buffer): Buffer {
  if (b.length < LENT_READ_MIN) {
    const copy = Buffer.allocUnsafe(b.length);
    b.copy(copy, 0, 0, b.length);
    giveBackIoBuffer(b);
    return copy;
  }
  lent.add(b.buffer);
  return b;
}

/**
 * The caller is done with `buf`, a Buffer some Disk.read() resolved with, and keeps no view of
 * it: the next large read may overwrite it. Buffers that did not come from here (MemDisk, small
 * reads), views of part of one, and a second hand-back are ignored.
 */
export function recycleReadBuffer(buf: Buffer | undefined): void {
  if (!buf) return;
  const ab = buf.buffer;
  if (!lent.has(ab) || buf.byteOffset !== 0 || buf.byteLength !== ab.byteLength) return;
  lent.delete(ab);
  ioBufferStats.recycled++;
  giveBackIoBuffer(buf);
}
