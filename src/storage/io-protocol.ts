// Requests an IoContext runs on its I/O threads, and their replies.

interface Base {
  id: number;
  /** Test hook: block the I/O thread this long before the syscall (a slow or hung device). */
  stallMs: number;
  /** Set by IoContext: release generation at submit time (see IoContext.releaseStalls). */
  stallGen?: number;
}

export type WorkerRequest =
  | (Base & { op: 'open'; path: string; readOnly: boolean })
  | (Base & { op: 'size'; fd: number })
  | (Base & { op: 'read'; fd: number; offset: number; length: number })
  | (Base & { op: 'write'; fd: number; offset: number; length: number })
  | (Base & { op: 'close'; fd: number })
  | (Base & {
      op: 'chain';
      fd: number;
      /** write 1 (its bytes are the payload) */
      offset: number;
      length: number;
      readOffset: number;
      readLength: number;
      /** write 3, done only when the bytes read start with `expect` */
      offset3: number;
      expect: Buffer;
      data3: Buffer;
      /** Test hook: the stall (stallMs) happens inside each step of this mask (bit 1 << (step - 1)). */
      stallSteps?: number;
    });

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
      chainStep?: number;
      chainLate?: boolean;
      chainMatch?: boolean;
      /** a chain: errno of the step that failed (0 = none failed), and its message */
      chainErrno?: number;
      chainMessage?: string;
    };
