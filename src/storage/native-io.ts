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
}

export interface NativeExtra {
  fd?: number;
  isBlock?: boolean;
  logicalSectorSize?: number;
  physicalSectorSize?: number;
  size: number;
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
