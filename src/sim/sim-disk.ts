// Simulated shared storage: one byte array that every host sees through its own Disk view.
//
// Model (all random choices come from the storage's seeded generator):
// - every I/O has a latency L drawn from a distribution with a long tail; a write's sectors land
//   at moments inside [issue, issue + L], a read samples its sectors at moments inside it. A
//   multi-sector I/O may be split in two at a sector boundary, each half at its own moment, so
//   sectors are atomic but a multi-sector read or write is not (torn across sectors);
// - with probability eio the I/O fails with -EIO; a failed write's halves may still land;
// - with probability hang the I/O takes longer than its deadline: the caller gets -202
//   SANLK_AIO_TIMEOUT at the deadline and a write still lands later (never later than
//   maxHangMs after issue, the bound the world relies on when it reboots a host);
// - an outage of one host's path makes its I/O issued during the outage wait until it ends;
// - when a host crashes, each of its writes still in flight lands or is lost (coin flip), and
//   none lands more than maxHangMs after the crash.
// Completions are events of the issuing incarnation: a paused host sees them when it resumes.
import assert from 'node:assert/strict';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import type { Disk } from '../storage/disk.js';
import { WriteOrder } from '../storage/write-order.js';
import type { Xoshiro128 } from './prng.js';
import type { Incarnation, Scheduler, SimEvent } from './sim-clock.js';

export interface DiskProfile {
  /** probability an I/O fails with EIO */
  eio: number;
  /** probability an I/O outlives its deadline */
  hang: number;
  /** upper bound of how long a hung I/O takes (ms after issue) */
  maxHangMs: number;
  /** probability of a slow (tail) I/O, 2..200 ms */
  slow: number;
  /** probability a multi-sector I/O is torn into two halves at different moments */
  tear: number;
  /**
   * Let a host's later write to a sector land before its earlier, still hanging write to the
   * same sector (the stale one then lands last). Off by default: the path is then FIFO per host
   * and sector, and a newer write waits behind a hung one.
   */
  reorder?: boolean;
}

export const defaultDiskProfile: DiskProfile = { eio: 0.002, hang: 0.002, maxHangMs: 3000, slow: 0.05, tear: 0.5 };
export const perfectDiskProfile: DiskProfile = { eio: 0, hang: 0, maxHangMs: 0, slow: 0, tear: 0 };

/** What the storage tells an observer each time bytes land. */
export type LandHook = (offset: number, data: Buffer, writer: Incarnation) => void;

interface PendingWrite {
  writer: Incarnation;
  events: SimEvent[];
}

export class SimStorage {
  readonly sectorSize: number;
  bytes: Buffer;
  profile: DiskProfile;
  onLand: LandHook | undefined;
  reads = 0;
  writes = 0;
  private readonly sched: Scheduler;
  private readonly rng: Xoshiro128;
  private readonly outageUntilUs = new Map<number, number>();
  private readonly inFlight = new Set<PendingWrite>();
  /** per writer incarnation: sector offset → time its latest write lands */
  private readonly lastLanding = new WeakMap<Incarnation, Map<number, number>>();
  private readonly orders = new WeakMap<Incarnation, WriteOrder>();

  constructor(sched: Scheduler, rng: Xoshiro128, size: number, sectorSize = 512, profile = defaultDiskProfile) {
    assert.ok(size % sectorSize === 0);
    this.sched = sched;
    this.rng = rng;
    this.sectorSize = sectorSize;
    this.bytes = Buffer.alloc(size);
    this.profile = profile;
  }

  /** The write order of one incarnation's disk driver (see storage/write-order.ts). */
  writeOrder(inc: Incarnation): WriteOrder {
    let o = this.orders.get(inc);
    if (!o) {
      o = new WriteOrder();
      this.orders.set(inc, o);
    }
    return o;
  }

  /** Resolves after `ms` of virtual time (as an event of `inc`), or at once when `stop` aborts. */
  sleep(inc: Incarnation, ms: number, stop: AbortSignal): Promise<void> {
    return new Promise((r) => {
      const ev = this.sched.at(this.sched.nowUs + ms * 1000, r, inc);
      stop.addEventListener('abort', () => {
        this.sched.cancel(ev);
        r();
      });
    });
  }

  nowMs(): number {
    return this.sched.nowUs / 1000;
  }

  view(inc: Incarnation, path = 'sim'): SimDiskView {
    return new SimDiskView(this, inc, path);
  }

  /** I/O of `hostId` issued before `untilUs` waits until then. */
  setOutage(hostId: number, untilUs: number): void {
    this.outageUntilUs.set(hostId, untilUs);
  }

  outageUntil(hostId: number): number {
    return this.outageUntilUs.get(hostId) ?? 0;
  }

  /**
   * The host lost power: each write it still has in flight lands or not. None lands later than
   * maxHangMs after the crash (a write queued behind an outage dies with the host's HBA queue),
   * which is what lets a rebooted host trust that its old writes are over.
   */
  crash(inc: Incarnation): void {
    const limit = this.sched.nowUs + this.profile.maxHangMs * 1000;
    for (const p of [...this.inFlight]) {
      if (p.writer !== inc) continue;
      if (this.rng.chance(0.5) || p.events.some((ev) => !ev.cancelled && ev.timeUs > limit)) {
        for (const ev of p.events) this.sched.cancel(ev);
        this.inFlight.delete(p);
      }
    }
  }

  /** Direct synchronous access for setup (formatting) and for the checker. */
  peek(offset: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    if (offset < this.bytes.length) this.bytes.copy(out, 0, offset, Math.min(this.bytes.length, offset + length));
    return out;
  }

  poke(offset: number, data: Buffer): void {
    this.grow(offset + data.length);
    data.copy(this.bytes, offset);
  }

  private grow(end: number): void {
    if (end <= this.bytes.length) return;
    const grown = Buffer.alloc(Math.ceil(end / this.sectorSize) * this.sectorSize);
    this.bytes.copy(grown);
    this.bytes = grown;
  }

  private latencyUs(hostId: number, timeoutMs: number): number {
    const p = this.profile;
    let lat: number;
    if (this.rng.chance(p.hang)) {
      const lo = timeoutMs * 1000 + 1;
      lat = lo + this.rng.next() * Math.max(0, p.maxHangMs * 1000 - lo);
    } else if (this.rng.chance(p.slow)) {
      lat = 2000 + this.rng.next() * 198_000;
    } else {
      lat = 50 + this.rng.next() * 1950;
    }
    const blocked = this.outageUntil(hostId) - this.sched.nowUs;
    if (blocked > 0) lat += blocked;
    return Math.ceil(lat);
  }

  /** Start of the window in which an I/O issued now by `hostId` touches the media. */
  private mediaFrom(hostId: number): number {
    return Math.max(this.sched.nowUs, this.outageUntil(hostId));
  }

  /** Splits [offset, offset+length) into one or two sector-aligned parts. */
  private parts(offset: number, length: number): Array<[number, number]> {
    const n = length / this.sectorSize;
    if (n > 1 && this.rng.chance(this.profile.tear)) {
      const cut = this.rng.int(1, n - 1) * this.sectorSize;
      return [[offset, cut], [offset + cut, length - cut]];
    }
    return [[offset, length]];
  }

  private check(offset: number, length: number): void {
    if (offset % this.sectorSize !== 0 || length % this.sectorSize !== 0 || length === 0 || offset < 0) {
      throw new SanlockError(-Errno.EINVAL, `unaligned I/O offset ${offset} length ${length}`);
    }
  }

  read(inc: Incarnation, offset: number, length: number, timeoutMs: number): Promise<Buffer> {
    this.check(offset, length);
    this.reads++;
    const t0 = this.sched.nowUs;
    const lat = this.latencyUs(inc.hostId, timeoutMs);
    const eio = this.rng.chance(this.profile.eio);
    const out = Buffer.alloc(length);
    const from = this.mediaFrom(inc.hostId);
    for (const [off, len] of this.parts(offset, length)) {
      // The sample is taken by the device whatever the process does meanwhile.
      this.sched.at(from + this.rng.next() * (t0 + lat - from), () => {
        if (off < this.bytes.length) this.bytes.copy(out, off - offset, off, Math.min(this.bytes.length, off + len));
      }, undefined, true);
    }
    return this.complete(inc, t0, lat, timeoutMs, eio, () => out);
  }

  write(inc: Incarnation, offset: number, data: Buffer, timeoutMs: number): Promise<void> {
    this.check(offset, data.length);
    this.writes++;
    const t0 = this.sched.nowUs;
    const lat = this.latencyUs(inc.hostId, timeoutMs);
    const eio = this.rng.chance(this.profile.eio);
    const copy = Buffer.from(data);
    const pending: PendingWrite = { writer: inc, events: [] };
    let order = this.lastLanding.get(inc);
    if (!order) {
      order = new Map();
      this.lastLanding.set(inc, order);
    }
    let doneUs = t0 + lat;
    const from = this.mediaFrom(inc.hostId);
    const landings: Array<[number, number, number]> = [];
    for (const [off, len] of this.parts(offset, copy.length)) {
      // A write that fails with EIO may still have reached some sectors.
      if (eio && this.rng.chance(0.5)) continue;
      let at = Math.ceil(from + 1 + this.rng.next() * (t0 + lat - from - 1));
      if (!this.profile.reorder) {
        for (let o = off; o < off + len; o += this.sectorSize) at = Math.max(at, (order.get(o) ?? 0) + 1);
      }
      for (let o = off; o < off + len; o += this.sectorSize) order.set(o, Math.max(order.get(o) ?? 0, at));
      doneUs = Math.max(doneUs, at);
      landings.push([off, len, at]);
    }
    let left = landings.length;
    for (const [off, len, at] of landings) {
      pending.events.push(this.sched.at(at, () => {
        this.grow(off + len);
        copy.copy(this.bytes, off, off - offset, off - offset + len);
        this.onLand?.(off, copy.subarray(off - offset, off - offset + len), inc);
        if (--left === 0) this.inFlight.delete(pending);
      }, undefined, true));
    }
    if (left > 0) this.inFlight.add(pending);
    // the write is acknowledged only once all of it has landed (a FIFO wait lengthens it)
    return this.complete(inc, t0, doneUs - t0, timeoutMs, eio, () => undefined);
  }

  private complete<T>(inc: Incarnation, t0: number, lat: number, timeoutMs: number, eio: boolean, value: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = t0 + timeoutMs * 1000;
      if (t0 + lat > deadline) {
        // as a real disk's abandoned request: over for good when its latency has passed
        const settled = new Promise<void>((r) => this.sched.at(t0 + lat, r, inc));
        this.sched.at(deadline, () => reject(new SanlockError(SanlkCode.SANLK_AIO_TIMEOUT, 'sim I/O timeout', { settled })), inc);
      } else {
        this.sched.at(t0 + lat, () => {
          if (eio) reject(new SanlockError(-Errno.EIO, 'sim EIO'));
          else resolve(value());
        }, inc);
      }
    });
  }
}

/** One host incarnation's view of the shared storage. */
export class SimDiskView implements Disk {
  readonly path: string;
  readonly storage: SimStorage;
  readonly inc: Incarnation;

  constructor(storage: SimStorage, inc: Incarnation, path: string) {
    this.storage = storage;
    this.inc = inc;
    this.path = path;
  }

  async read(offset: number, length: number, timeoutMs: number): Promise<Buffer> {
    return this.storage.read(this.inc, offset, length, timeoutMs);
  }

  /** As DirectDisk.write: never issued while an earlier hung write to the same sectors may land. */
  async write(offset: number, data: Buffer, timeoutMs: number): Promise<void> {
    const timer = { sleep: (ms: number, stop: AbortSignal) => this.storage.sleep(this.inc, ms, stop), nowMs: () => this.storage.nowMs() };
    await this.storage.writeOrder(this.inc).write(offset, data, timeoutMs, `write offset ${offset}`, timer, (bytes, ms) => this.storage.write(this.inc, offset, bytes, ms));
  }

  async close(): Promise<void> {}
}
