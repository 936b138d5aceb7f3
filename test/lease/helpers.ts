// Shared fixtures for the lease-engine tests: golden images, fresh init images, masked
// comparison against sanlock's vectors, a scriptable LockspaceView and a two-host harness.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DeltaLease } from '../../src/lease/delta-lease.js';
import { HostStateTracker } from '../../src/lease/host-state.js';
import { IoStats } from '../../src/lease/io.js';
import { lockspaceViewOf } from '../../src/lease/lockspace-view.js';
import { ManualClock, SeededRandom } from '../../src/lease/manual-clock.js';
import { type HostSnapshot, type LockspaceView, PaxosLease } from '../../src/lease/paxos-lease.js';
import { type Geometry, geometryFor } from '../../src/ondisk/geometry.js';
import {
  DELTA_DISK_MAGIC,
  DELTA_DISK_VERSION,
  decodeLeader,
  emptyLeader,
  encodeLeader,
  type Leader,
  PAXOS_DISK_MAGIC,
  PAXOS_DISK_VERSION,
} from '../../src/ondisk/leader.js';
import { encodeRequest, REQ_DISK_MAGIC, REQ_DISK_VERSION } from '../../src/ondisk/request.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { VECTORS_DIR } from '../helpers/paths.js';

export const VECTORS = VECTORS_DIR;
export const MIB = 1024 * 1024;

export function loadVector(name: string): Buffer {
  return gunzipSync(readFileSync(`${VECTORS}/${name}.img.gz`));
}

export function diskFromVector(name: string, path = name): MemDisk {
  const img = loadVector(name);
  return new MemDisk(path, img.length, 512, img);
}

/** What `sanlock direct init -s` writes (spec ondisk §4.4). */
export function lockspaceImage(space: string, g: Geometry = geometryFor(512, MIB), ioTimeout = 10): Buffer {
  const buf = Buffer.alloc(g.alignSize);
  const l: Leader = {
    ...emptyLeader(), magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, flags: g.leaderAlignFlag,
    sectorSize: g.sectorSize, numHosts: 0, maxHosts: 1, spaceName: space, ioTimeout,
  };
  for (let h = 0; h < g.maxHosts; h++) encodeLeader(l, buf, h * g.sectorSize);
  return buf;
}

/** What `sanlock direct init -r` writes (spec ondisk §5.5). */
export function resourceImage(space: string, res: string, g: Geometry = geometryFor(512, MIB), numHosts = g.maxHosts): Buffer {
  const buf = Buffer.alloc(g.alignSize);
  const l: Leader = {
    ...emptyLeader(), magic: PAXOS_DISK_MAGIC, version: PAXOS_DISK_VERSION, flags: g.leaderAlignFlag,
    sectorSize: g.sectorSize, numHosts, maxHosts: g.maxHosts, spaceName: space, resourceName: res,
  };
  encodeLeader(l, buf, 0);
  encodeRequest({ magic: REQ_DISK_MAGIC, version: REQ_DISK_VERSION, lver: 0, forceMode: 0 }, buf, g.sectorSize);
  return buf;
}

function zero(b: Buffer, from: number, to: number): void {
  b.fill(0, from, to);
}

/**
 * Masks what legitimately differs between our run and sanlock's: monotonic times and the
 * checksums that cover them, request padding, and (optionally) delta host names.
 */
export function maskLease(img: Buffer, ss = 512, hosts = 8): Buffer {
  const b = Buffer.from(img);
  zero(b, 152, 160); // leader.timestamp (= inp3)
  zero(b, 168, 172); // leader checksum
  zero(b, 192, 200); // write_timestamp
  zero(b, ss + 20, ss + 24); // request padding
  for (let h = 1; h <= hosts; h++) {
    const off = (2 + h - 1) * ss;
    zero(b, off + 32, off + 40); // inp3
    zero(b, off + 48, off + 52); // dblock checksum
  }
  return b;
}

export function maskLockspace(img: Buffer, ss = 512, hosts = 8, names = false): Buffer {
  const b = Buffer.from(img);
  for (let h = 0; h < hosts; h++) {
    const off = h * ss;
    zero(b, off + 152, off + 160);
    zero(b, off + 168, off + 172);
    if (names) zero(b, off + 104, off + 152);
  }
  return b;
}

/** Byte-compares two masked images; on mismatch reports the first differing offset. */
export function assertSameImage(actual: Buffer, expected: Buffer, what: string): void {
  const n = Math.max(actual.length, expected.length);
  const a = Buffer.alloc(n);
  actual.copy(a);
  const e = Buffer.alloc(n);
  expected.copy(e);
  if (a.equals(e)) return;
  let i = 0;
  while (a[i] === e[i]) i++;
  assert.fail(`${what}: first difference at 0x${i.toString(16)} (ours ${a.subarray(i, i + 16).toString('hex')}, sanlock ${e.subarray(i, i + 16).toString('hex')})`);
}

export function leaderAt(disk: MemDisk, off = 0): Leader {
  return decodeLeader(disk.bytes, off);
}

/** A LockspaceView whose answers the test scripts. */
export class FakeView implements LockspaceView {
  records = new Map<number, Leader>();
  snapshots = new Map<number, HostSnapshot>();
  reads = 0;
  async readDeltaRecord(_space: string, hostId: number): Promise<Leader> {
    this.reads++;
    const r = this.records.get(hostId);
    return r ? { ...r } : { ...emptyLeader(), magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: 'LS' };
  }
  hostSnapshot(_space: string, hostId: number): HostSnapshot | undefined {
    return this.snapshots.get(hostId);
  }
  /** owner `hostId` is renewing with generation g, last seen at `ts` */
  setRecord(hostId: number, generation: number, ts: number, ioTimeout = 1): void {
    this.records.set(hostId, {
      ...emptyLeader(), magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: 'LS',
      ownerId: hostId, ownerGeneration: generation, timestamp: ts, ioTimeout,
    });
  }
}

export function paxosFor(
  disk: MemDisk | MemDisk[],
  hostId: number,
  generation: number,
  clock: ManualClock,
  lockspace: LockspaceView,
  res = 'R1',
  seed = hostId,
): PaxosLease {
  const disks = (Array.isArray(disk) ? disk : [disk]).map((d) => ({ disk: d, offset: 0 }));
  return new PaxosLease(
    { hostId, generation, ioTimeout: 1, clock, random: new SeededRandom(seed), lockspace, stats: new IoStats() },
    { spaceName: 'LS', resourceName: res, disks },
  );
}

/** A host joined to lockspace LS on `lsDisk`, with renewals feeding its host-state tracker. */
export class TestHost {
  readonly delta: DeltaLease;
  readonly tracker: HostStateTracker;
  readonly view: LockspaceView;
  private loop: AbortController | undefined;
  private loopDone: Promise<number> | undefined;
  events: { fromHostId: number; event: number; data: number; generation: number }[] = [];
  requests = 0;

  constructor(readonly clock: ManualClock, lsDisk: MemDisk, readonly hostId: number, name: string, ioTimeout = 1) {
    this.delta = new DeltaLease({ disk: lsDisk, offset: 0, spaceName: 'LS', hostId, hostName: name, ioTimeout, clock });
    this.tracker = new HostStateTracker({ ourHostId: hostId, ioTimeout, spaceName: 'LS' });
    this.view = lockspaceViewOf(this.delta, this.tracker);
  }

  feed(area: Buffer): void {
    assert.ok(this.delta.geometry);
    const u = this.tracker.update(area, this.delta.geometry, this.clock.monotonicSeconds());
    this.events.push(...u.events);
    if (u.examineRequests) this.requests++;
  }

  async renewOnce(): Promise<void> {
    this.feed(await this.delta.renew());
  }

  startRenewing(): void {
    assert.ok(!this.loop);
    this.loop = new AbortController();
    this.loopDone = this.delta.renewLoop(this.loop.signal, { onRenewed: (a) => this.feed(a) });
  }

  /** Stops renewing, like a host whose daemon was killed. */
  async stopRenewing(): Promise<void> {
    if (!this.loop) return;
    this.loop.abort();
    await this.loopDone;
    this.loop = undefined;
  }

  paxos(disk: MemDisk, res = 'R1'): PaxosLease {
    return paxosFor(disk, this.hostId, this.delta.generation, this.clock, this.view, res);
  }
}

export { ManualClock, SeededRandom };
