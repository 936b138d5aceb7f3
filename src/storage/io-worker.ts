// Body of an I/O worker thread. It performs blocking O_DIRECT syscalls so that a hung device
// blocks this thread only: never the main event loop, nor libuv's shared threadpool (4 threads
// shared with every fs/dns call of the process), nor the workers of other lockspaces.
// The main thread sends it one request at a time (see io-context.ts), so its single aligned
// buffer is never touched by two I/Os at once and is reused only after a syscall returned.
import assert from 'node:assert';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './io-protocol.js';

interface DirectIo {
  O_DIRECT: number;
  O_DSYNC: number;
  O_SYNC: number;
  getAlignedBuffer(size: number, alignment: number): Buffer;
  getBlockDevice(
    fd: number,
    cb: (err: Error | undefined, dev: { logicalSectorSize: number; physicalSectorSize: number; size: number }) => void,
  ): void;
}

const require = createRequire(import.meta.url);
const directIo = require('@ronomon/direct-io') as DirectIo;

// Page alignment, as sanlock's posix_memalign(getpagesize()) gives; satisfies any logical
// sector size up to 4096.
const ALIGN = 4096;
// Bigger one-off buffers (e.g. an 8 MiB lease area) are not kept, to bound idle memory.
const KEEP_MAX = 1024 * 1024;

let cached: Buffer | undefined;

function alignedBuffer(len: number): Buffer {
  const rounded = Math.ceil(len / ALIGN) * ALIGN;
  if (cached && cached.length >= rounded) return cached;
  const b = directIo.getAlignedBuffer(rounded, ALIGN);
  if (rounded <= KEEP_MAX) cached = b;
  return b;
}

// Shared with the main thread so a test can release injected stalls early.
const gate = new Int32Array((workerData as { gate: SharedArrayBuffer }).gate);

// `gen` is the gate value when the request was submitted: a release that happened before
// this worker got to the request (e.g. while it was still starting) then ends the stall too.
function stall(ms: number, gen: number): void {
  Atomics.wait(gate, 0, gen, ms);
}

function errnoOf(e: unknown): { errno: number; message: string } {
  const err = e as NodeJS.ErrnoException;
  const known = err.code ? (osConstants.errno as Record<string, number>)[err.code] : undefined;
  const errno = known ?? (typeof err.errno === 'number' ? Math.abs(err.errno) : 5);
  return { errno, message: err.message ?? String(e) };
}

interface BlockInfo {
  logicalSectorSize: number;
  physicalSectorSize: number;
  size: number;
}

function readSysNumber(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sizes from sysfs, which works for every Linux block device (loop, virtio, dm, partitions);
 * direct-io's getBlockDevice also asks SCSI-only ioctls and fails with EIO on loop devices.
 */
function blockDeviceSysfs(fd: number): BlockInfo | undefined {
  const rdev = fs.fstatSync(fd, { bigint: true }).rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  const dir = `/sys/dev/block/${major}:${minor}`;
  // A partition has no queue/ of its own: its disk's is one level up.
  const queue = fs.existsSync(`${dir}/queue`) ? `${dir}/queue` : `${dir}/../queue`;
  const logical = readSysNumber(`${queue}/logical_block_size`);
  const physical = readSysNumber(`${queue}/physical_block_size`);
  const sectors = readSysNumber(`${dir}/size`);
  if (!logical || sectors === undefined) return undefined;
  // sysfs counts size in 512-byte units whatever the logical sector size.
  return { logicalSectorSize: logical, physicalSectorSize: physical || logical, size: sectors * 512 };
}

function blockDeviceIoctl(fd: number): Promise<BlockInfo> {
  return new Promise((resolve, reject) => {
    directIo.getBlockDevice(fd, (err, dev) => (err ? reject(err) : resolve(dev)));
  });
}

async function blockDevice(fd: number): Promise<BlockInfo> {
  return blockDeviceSysfs(fd) ?? (await blockDeviceIoctl(fd));
}

let exchange: Buffer | undefined;

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  if (req.exchange) exchange = Buffer.from(req.exchange);
  if (req.stallMs > 0) stall(req.stallMs, req.stallGen ?? 0);
  switch (req.op) {
    case 'open': {
      const flags = (req.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR) | directIo.O_DIRECT | directIo.O_SYNC;
      const fd = fs.openSync(req.path, flags);
      try {
        const st = fs.fstatSync(fd);
        if (st.isBlockDevice()) {
          const dev = await blockDevice(fd);
          return { id: req.id, ok: true, fd, isBlock: true, logicalSectorSize: dev.logicalSectorSize, physicalSectorSize: dev.physicalSectorSize, size: dev.size };
        }
        if (!st.isFile()) {
          // sanlock only ever uses regular files and block devices for leases.
          throw Object.assign(new Error(`${req.path}: not a regular file or block device`), { code: 'EINVAL' });
        }
        return { id: req.id, ok: true, fd, isBlock: false, logicalSectorSize: 512, physicalSectorSize: 512, size: st.size };
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
    }
    case 'size': {
      const st = fs.fstatSync(req.fd);
      if (st.isBlockDevice()) return { id: req.id, ok: true, size: (await blockDevice(req.fd)).size };
      return { id: req.id, ok: true, size: st.size };
    }
    case 'read': {
      assert(exchange && exchange.length >= req.length, 'exchange area too small');
      const buf = alignedBuffer(req.length);
      let done = 0;
      while (done < req.length) {
        const n = fs.readSync(req.fd, buf, done, req.length - done, req.offset + done);
        if (n === 0) break;
        done += n;
      }
      if (done < req.length) {
        // sanlock fails an I/O whose completion is shorter than asked with -EMSGSIZE.
        return { id: req.id, ok: false, errno: osConstants.errno.EMSGSIZE, message: `short read ${done} of ${req.length} at ${req.offset}` };
      }
      buf.copy(exchange, 0, 0, req.length);
      return { id: req.id, ok: true };
    }
    case 'write': {
      assert(exchange && exchange.length >= req.length && req.length > 0, 'exchange area too small');
      const len = req.length;
      const buf = alignedBuffer(len);
      exchange.copy(buf, 0, 0, len);
      let done = 0;
      while (done < len) {
        const n = fs.writeSync(req.fd, buf, done, len - done, req.offset + done);
        if (n === 0) return { id: req.id, ok: false, errno: osConstants.errno.EMSGSIZE, message: `short write ${done} of ${len}` };
        done += n;
      }
      return { id: req.id, ok: true };
    }
    case 'close': {
      fs.closeSync(req.fd);
      return { id: req.id, ok: true };
    }
  }
}

assert(parentPort, 'io-worker must run as a worker thread');
const port = parentPort;
port.on('message', (req: WorkerRequest) => {
  handle(req).then(
    (reply) => port.postMessage(reply),
    (e: unknown) => port.postMessage({ id: req.id, ok: false, ...errnoOf(e) } satisfies WorkerReply),
  );
});
