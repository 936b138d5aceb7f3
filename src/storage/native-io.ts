// Typed access to the O_DIRECT I/O threads of the native addon (native/src/direct_io.cc).
// The addon is loaded here, in the lowest layer that needs it; the daemon's typed wrappers
// (src/daemon/native.ts) take the same module from loadNativeAddon().
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opaque handles made by the addon. */
export type NativeThread = { readonly __nativeThread: unique symbol };
export type NativeGate = { readonly __nativeGate: unique symbol };

export enum NativeOp {
  Open = 0,
  Size = 1,
  Read = 2,
  Write = 3,
  Close = 4,
  /** write, read, compare, conditional write: see ioSubmitChain */
  Chain = 5,
}

export interface NativeExtra {
  fd?: number;
  isBlock?: boolean;
  logicalSectorSize?: number;
  physicalSectorSize?: number;
  size: number;
  /** a chain: the step that ran last (1 write, 2 read, 3 write) */
  chainStep?: number;
  /** a chain: that step ended past its deadline */
  chainLate?: boolean;
  /** a chain: the bytes read matched */
  chainMatch?: boolean;
}

/** errno is positive, 0 on success; message is set on failure. */
export type NativeDone = (workerId: number, jobId: number, errno: number, message: string | undefined, extra: NativeExtra | undefined) => void;

export interface NativeIo {
  ioThreadStart(workerId: number, onDone: NativeDone): NativeThread;
  ioThreadStop(t: NativeThread): void;
  /** CLOCK_MONOTONIC ms at which job `jobId` finished on this thread, or -1 while it runs. */
  ioThreadDoneAt(t: NativeThread, jobId: number): number;
  ioSubmit(
    t: NativeThread,
    jobId: number,
    op: NativeOp,
    fd: number,
    offset: number,
    length: number,
    buf: Buffer | undefined,
    path: string | undefined,
    readOnly: boolean,
    stallMs: number,
    gate: NativeGate | undefined,
    stallGen: number,
  ): void;
  /**
   * Three dependent I/Os in one job: write len1 bytes of buf[0..] at off1; read len2 bytes at
   * off2 into buf[page..]; if its first cmpLen bytes equal buf[2·page..], write len3 bytes of
   * buf[3·page..] at off3. Stops at the first failing or late step (step 1's deadline is
   * `deadline1`, CLOCK_MONOTONIC ms; later steps get `stepTimeoutMs` from their start), on a
   * mismatch, or once cancelled by ioChainCheck. `buf` is 4·page bytes, page aligned.
   */
  ioSubmitChain(
    t: NativeThread,
    jobId: number,
    fd: number,
    buf: Buffer,
    page: number,
    off1: number,
    len1: number,
    off2: number,
    len2: number,
    cmpLen: number,
    off3: number,
    len3: number,
    deadline1: number,
    stepTimeoutMs: number,
    stallMs?: number,
    gate?: NativeGate,
    stallGen?: number,
    /** bit (1 << (step - 1)): stall inside that step */
    stallSteps?: number,
  ): void;
  /**
   * At a chain's deadline: 0 = between steps or finished (its completion is on its way), > 0 =
   * ms left for the step in flight, -step = that step is late: the chain runs no further step.
   */
  ioChainCheck(t: NativeThread, jobId: number, nowMs: number): number;
  ioGateNew(): NativeGate;
  ioGateRelease(g: NativeGate): void;
  ioGateGen(g: NativeGate): number;
  /** A page-aligned Buffer of `length` bytes (zero filled), for O_DIRECT. */
  ioAlloc(length: number): Buffer;
  /** Returns the pages of an ioAlloc buffer to the kernel (the mapping stays; reads as zeros). */
  ioDiscard(buf: Buffer): number;
}

const ADDON_REL = join('native', 'build', 'Release', 'sanlock_native.node');

function findAddon(): string {
  // dist/src/storage when compiled, src/storage from sources: walk up to the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ADDON_REL);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`sanlock native addon not built (${ADDON_REL}); run "npm run install" (node-gyp rebuild -C native)`);
}

let loaded: unknown;

/** The addon module itself (loaded once per process), for the typed views of each layer. */
export function loadNativeAddon(): unknown {
  loaded ??= createRequire(import.meta.url)(findAddon());
  return loaded;
}

let addon: NativeIo | undefined;

export function nativeIo(): NativeIo {
  if (!addon) {
    const a = loadNativeAddon() as Partial<NativeIo>;
    if (typeof a.ioThreadStart !== 'function') {
      throw new Error(`${ADDON_REL} has no O_DIRECT I/O threads; rebuild it (node-gyp rebuild -C native)`);
    }
    addon = a as NativeIo;
  }
  return addon;
}
