// Messages between an IoContext (main thread) and its io-worker threads. Read data comes back
// in the worker's exchange area (bytes 0..length), write data goes there before the request.

interface Base {
  id: number;
  /** Test hook: block the worker thread this long before the syscall (a slow or hung device). */
  stallMs: number;
  /** Set by IoContext: release generation at submit time (see IoContext.releaseStalls). */
  stallGen?: number;
  /**
   * Set by IoContext when the worker's exchange area changes (first use, or too small): data
   * of reads and writes passes through it, so no buffer is allocated or transferred per I/O.
   */
  exchange?: SharedArrayBuffer;
}

export type WorkerRequest =
  | (Base & { op: 'open'; path: string; readOnly: boolean })
  | (Base & { op: 'size'; fd: number })
  | (Base & { op: 'read'; fd: number; offset: number; length: number })
  | (Base & { op: 'write'; fd: number; offset: number; length: number })
  | (Base & { op: 'close'; fd: number });

export type WorkerReply =
  | { id: number; ok: false; errno: number; message: string }
  | {
      id: number;
      ok: true;
      fd?: number;
      isBlock?: boolean;
      logicalSectorSize?: number;
      physicalSectorSize?: number;
      size?: number;
    };
