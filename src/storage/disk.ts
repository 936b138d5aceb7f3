// The one interface the lease algorithms use to touch storage. The daemon gives them a
// direct-I/O disk, tests a faulty one, the simulator a virtual one: the algorithms cannot tell.

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

/** Opens disks by path; the lease layer asks for disks through this, never by itself. */
export interface DiskOpener {
  open(path: string): Promise<Disk>;
}
