// A simulated cluster: M machines sharing one simulated storage that holds one lockspace and R
// resource leases. Each machine boots incarnations of a host process that joins the lockspace
// (real DeltaLease), renews it on sanlock's schedule (DeltaLease.renewLoop), watches the others
// (HostStateTracker) and runs a client on the resources (LeaseEngine), whose next action
// workload.ts chooses. Each host runs like sanlock's daemon: tokens of a failed lockspace are
// freed and its renewal thread has exited before the lockspace is added again. Fencing is
// modelled like sanlock + wdmd:
//
//   - the host's main loop (1 s, on its own clock, so it stops when the host is paused) notices
//     renewal gap ≥ 8N (or a fatal renewal result) → recovery: its lease holders are killed
//     within kill_grace (which frees nothing on disk), then the lockspace is dropped, the
//     watchdog disarmed and the host rejoins later (new generation);
//   - the watchdog is hardware: wdmd pets it every 10 s (per-boot phase) while now < expiry
//     (last renewal + 8N, or registration if that is later) and it fires W after the last pet —
//     at most host_dead after the last renewal. It fires whether or not the host process runs (paused hosts get reset); firing
//     resets the machine: its holders are gone at that moment, in-flight writes land or not,
//     and it boots again later with a new CLOCK_MONOTONIC origin.
//
// Faults: pause/resume (SIGSTOP), crash + reboot, per-host storage outage, clock-rate skew,
// I/O errors, hangs and slow I/O from the storage profile; all stop at `faultsUntilSec`, after
// which every operation must end with success or a sanlock code (liveness).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { codeName, SanlockError } from '../codes.js';
import type { Clock, Random } from '../lease/clock.js';
import { DeltaLease } from '../lease/delta-lease.js';
import { HostStateTracker } from '../lease/host-state.js';
import type { PaxosBugs } from '../lease/paxos-lease.js';
import { hostDeadSeconds, idRenewalFailSeconds } from '../lease/timeouts.js';
import { decodeDblock, decodeModeBlock } from '../ondisk/dblock.js';
import { geometryFor } from '../ondisk/geometry.js';
import { DELTA_DISK_MAGIC, DELTA_DISK_VERSION, decodeLeader, emptyLeader, encodeLeader, PAXOS_DISK_MAGIC, PAXOS_DISK_VERSION } from '../ondisk/leader.js';
import { encodeRequest, REQ_DISK_MAGIC, REQ_DISK_VERSION } from '../ondisk/request.js';
import { type EngineKind, type LeaseEngine, type Mode, ModelEngine, RealEngine, type ResourceRef } from './engines.js';
import { Checker } from './invariants.js';
import type { ModelPaxosFaults } from './model-paxos.js';
import { Xoshiro128 } from './prng.js';
import { HostClock, Incarnation, Scheduler, type SimEvent } from './sim-clock.js';
import { type DiskProfile, defaultDiskProfile, perfectDiskProfile, SimStorage } from './sim-disk.js';
import { type ClientView, nextAction, THINK_MS_MAX } from './workload.js';

export interface FaultRates {
  /** expected faults of each kind per machine per 100 s of fault time */
  pause: number;
  crash: number;
  outage: number;
  skew: number;
  /** chance that a reboot uses another machine's host_id (misconfiguration) */
  idClash: number;
  /** chance that a reboot keeps the previous host name (sanlock -e), allowing fast reacquire */
  sameName: number;
  /** fraction of pauses that are long (10..100 s, often past host_dead); the rest last ≤ 10.5 s */
  longPause: number;
}

export interface WorldConfig {
  seed: number;
  machines: number;
  resources: number;
  ioTimeout: number;
  watchdogFireTimeout: number;
  sectorSize: 512 | 4096;
  engine: EngineKind;
  paxosBugs?: PaxosBugs;
  modelFaults?: ModelPaxosFaults;
  /** faults and the workload run until then */
  faultsUntilSec: number;
  /** the workload keeps running this long after faults stop */
  healedWorkSec: number;
  faults: FaultRates;
  disk: DiskProfile;
  /** bound on |clock rate − 1| */
  maxSkew: number;
  shared: boolean;
  requests: boolean;
  /** keep every trace line (otherwise only the last `traceTail`) */
  fullTrace: boolean;
  traceTail: number;
  /** also trace every landed write to a resource lease (leader, dblock, mode block) */
  ioTrace?: boolean;
  /**
   * TEST ONLY — broken fencing models, to show the checker notices: no watchdog at all, or
   * machine 1's clock running at this rate, far beyond `maxSkew` (the checker still assumes it).
   */
  breakFencing?: { noWatchdog?: boolean; rogueClockRate?: number };
  /** TEST ONLY — wraps each session's engine (e.g. to make it hang or throw) */
  wrapEngine?: (e: LeaseEngine, hostId: number) => LeaseEngine;
}

export const defaultFaults: FaultRates = { pause: 1, crash: 0.5, outage: 1, skew: 1, idClash: 0.1, sameName: 0.5, longPause: 0.3 };
export const noFaults: FaultRates = { pause: 0, crash: 0, outage: 0, skew: 0, idClash: 0, sameName: 1, longPause: 0 };
/** Faults that exercise fencing: frequent pauses, most of them long. */
export const fencingFaults: FaultRates = { pause: 3, crash: 0.3, outage: 0.5, skew: 0, idClash: 0.1, sameName: 0.5, longPause: 0.8 };

export function defaultWorldConfig(seed: number, over: Partial<WorldConfig> = {}): WorldConfig {
  return {
    seed,
    machines: 4,
    resources: 3,
    ioTimeout: 1,
    watchdogFireTimeout: 60,
    sectorSize: 4096,
    engine: 'real',
    faultsUntilSec: 200,
    healedWorkSec: 60,
    faults: defaultFaults,
    disk: defaultDiskProfile,
    maxSkew: 1e-4,
    shared: true,
    requests: true,
    fullTrace: false,
    traceTail: 300,
    ...over,
  };
}

type FaultKind = 'pause' | 'crash' | 'outage' | 'skew';

const LOCKSPACE = 'simls';
const MIB = 1024 * 1024;
const WDMD_PET_SECONDS = 10;

/** Random drawn from the world's generator (ballot back-off of one host). */
class HostRandom implements Random {
  constructor(private readonly r: Xoshiro128) {}
  next(): number {
    return this.r.next();
  }
}

/** One lockspace membership of one incarnation (a join, until recovery or reset). */
interface Session {
  generation: number;
  delta: DeltaLease;
  tracker: HostStateTracker;
  engine: LeaseEngine;
  held: Map<number, Mode>;
  busy: Set<number>;
  state: 'joined' | 'failed' | 'gone';
  ac: AbortController;
  /** watchdog expiry (local monotonic seconds) and its pending fire event */
  expiry: number;
  /** local second the session registered with wdmd */
  armedAt: number;
  fire: SimEvent | undefined;
  ops: Set<number>;
  /** settles when the renewal loop has exited (a renewal in progress finishes its write first) */
  renewDone: Promise<void>;
  /** lease operations still running in the daemon for this session */
  inflight: Set<Promise<unknown>>;
}

interface Machine {
  id: number;
  boot: number;
  inc: Incarnation;
  clock: HostClock;
  hostId: number;
  name: string;
  session: Session | undefined;
  petPhase: number;
  rng: Xoshiro128;
}

export interface WorldResult {
  seed: number;
  ok: boolean;
  violations: string[];
  trace: string[];
  /** sha256 of the whole shared storage at the end */
  storageDigest: string;
  stats: {
    simSeconds: number;
    events: number;
    ops: number;
    grants: number;
    takeovers: number;
    watchdogFires: number;
    staleLeaders: number;
    joins: number;
    reads: number;
    writes: number;
  };
}

export class World {
  readonly cfg: WorldConfig;
  readonly sched = new Scheduler();
  readonly rng: Xoshiro128;
  readonly storage: SimStorage;
  readonly checker: Checker;
  readonly resources: ResourceRef[] = [];
  private readonly machines: Machine[] = [];
  private readonly trace: string[] = [];
  private readonly hdUs: number;
  private readonly lockspaceSize = MIB;
  private phase: 'faults' | 'healed' | 'draining' | 'done' = 'faults';
  private joins = 0;

  constructor(cfg: WorldConfig) {
    this.cfg = cfg;
    this.rng = new Xoshiro128(cfg.seed);
    const geo = geometryFor(cfg.sectorSize, MIB);
    assert.ok(cfg.machines >= 1 && cfg.machines <= Math.min(geo.maxHosts, 250), `machines ${cfg.machines}`);
    this.storage = new SimStorage(this.sched, this.rng.fork(), (1 + cfg.resources) * MIB, cfg.sectorSize, cfg.disk);
    this.hdUs = hostDeadSeconds(cfg.ioTimeout, cfg.watchdogFireTimeout) * 1e6;
    const resourceAt = new Map<number, number>();
    for (let i = 0; i < cfg.resources; i++) {
      const r = { index: i, name: `r${i}`, offset: (1 + i) * MIB };
      this.resources.push(r);
      resourceAt.set(r.offset, i);
    }
    this.checker = new Checker({
      hostDeadUs: this.hdUs,
      maxSkew: cfg.maxSkew,
      sectorSize: cfg.sectorSize,
      lockspaceOffset: 0,
      lockspaceSize: this.lockspaceSize,
      resourceAt,
      now: () => this.sched.nowUs,
      deltaOnDisk: (hostId) => {
        const l = decodeLeader(this.storage.peek((hostId - 1) * cfg.sectorSize, cfg.sectorSize), 0);
        return { generation: l.ownerGeneration, timestamp: l.timestamp };
      },
    });
    this.storage.onLand = (off, data, writer) => {
      const m = this.machines[writer.machine - 1];
      this.checker.onLand(off, data, writer, () => (m?.inc === writer ? m.session?.generation ?? 0 : -1));
      if (cfg.ioTrace) this.traceLanding(off, data, writer);
    };
    this.format();
  }

  log(who: Incarnation | string, msg: string): void {
    const line = `${(this.sched.nowUs / 1e6).toFixed(6).padStart(12)} ${String(who).padEnd(10)} ${msg}`;
    this.trace.push(line);
    if (!this.cfg.fullTrace && this.trace.length > this.cfg.traceTail * 2) this.trace.splice(0, this.trace.length - this.cfg.traceTail);
  }

  private traceLanding(off: number, data: Buffer, writer: Incarnation): void {
    const ss = this.cfg.sectorSize;
    for (let o = off; o < off + data.length; o += ss) {
      if (o < MIB) continue;
      const r = Math.floor(o / MIB) - 1;
      const sector = (o % MIB) / ss;
      const sec = data.subarray(o - off, o - off + ss);
      if (sector === 0) {
        const l = decodeLeader(sec, 0);
        this.log(writer, `  io r${r} leader lver ${l.lver} owner ${l.ownerId}/${l.ownerGeneration} ts ${l.timestamp} flags ${l.flags} by ${l.writeId}/${l.writeGeneration}`);
      } else if (sector >= 2) {
        const d = decodeDblock(sec, 0);
        const mb = decodeModeBlock(sec, 0);
        this.log(writer, `  io r${r} dblock h${sector - 1} mbal ${d.mbal} bal ${d.bal} inp ${d.inp}/${d.inp2}/${d.inp3} lver ${d.lver} fl ${d.flags} mode ${mb.flags}/${mb.generation}`);
      }
    }
  }

  /** What `sanlock direct init` writes for the lockspace and each resource. */
  private format(): void {
    const c = this.cfg;
    const geo = geometryFor(c.sectorSize, MIB);
    const ls = Buffer.alloc(MIB);
    for (let i = 0; i < geo.maxHosts; i++) {
      encodeLeader({ ...emptyLeader(), magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, flags: geo.leaderAlignFlag, sectorSize: c.sectorSize, maxHosts: 1, spaceName: LOCKSPACE, ioTimeout: c.ioTimeout }, ls, i * c.sectorSize);
    }
    this.storage.poke(0, ls);
    for (const r of this.resources) {
      const head = Buffer.alloc(2 * c.sectorSize);
      encodeLeader({ ...emptyLeader(), magic: PAXOS_DISK_MAGIC, version: PAXOS_DISK_VERSION, flags: geo.leaderAlignFlag, sectorSize: c.sectorSize, numHosts: c.machines, maxHosts: geo.maxHosts, spaceName: LOCKSPACE, resourceName: r.name }, head, 0);
      encodeRequest({ magic: REQ_DISK_MAGIC, version: REQ_DISK_VERSION, lver: 0, forceMode: 0 }, head, c.sectorSize);
      this.storage.poke(r.offset, head);
    }
  }

  // ------------------------------------------------------------------ machines

  private boot(id: number, prev?: Machine): void {
    const rng = prev?.rng ?? this.rng.fork();
    const bootNo = (prev?.boot ?? 0) + 1;
    let hostId = id;
    if (prev && rng.chance(this.cfg.faults.idClash)) hostId = rng.int(1, this.cfg.machines);
    const inc = new Incarnation(hostId, bootNo, id);
    let rate = 1 + (rng.next() * 2 - 1) * this.cfg.maxSkew;
    if (id === 1 && this.cfg.breakFencing?.rogueClockRate) rate = this.cfg.breakFencing.rogueClockRate;
    // CLOCK_MONOTONIC restarts near zero at each boot: some seconds of boot time, then ours.
    const clock = new HostClock(this.sched, inc, 20_000 + rng.int(0, 10_000_000), rate);
    const keepName = prev !== undefined && prev.hostId === hostId && rng.chance(this.cfg.faults.sameName);
    const name = keepName ? prev.name : `${(rng.nextU32() >>> 0).toString(16).padStart(8, '0')}-m${id}`;
    const m: Machine = { id, boot: bootNo, inc, clock, hostId, name, session: undefined, petPhase: rng.next() * WDMD_PET_SECONDS, rng };
    this.machines[id - 1] = m;
    this.log(inc, `boot host_id ${hostId} name ${name} rate ${rate.toFixed(6)} mono ${clock.monotonicSeconds()}`);
    void this.join(m);
  }

  private alive(m: Machine): boolean {
    return this.machines[m.id - 1] === m && !m.inc.dead;
  }

  private async join(m: Machine): Promise<void> {
    const c = this.cfg;
    while (this.alive(m) && this.phase !== 'done') {
      const disk = this.storage.view(m.inc, 'sim');
      const delta = new DeltaLease({ disk, offset: 0, spaceName: LOCKSPACE, hostId: m.hostId, hostName: m.name, ioTimeout: c.ioTimeout, clock: m.clock, watchdogFireTimeout: c.watchdogFireTimeout });
      this.log(m.inc, `join host_id ${m.hostId}`);
      let generation: number;
      try {
        generation = await delta.acquire();
      } catch (e) {
        this.log(m.inc, `join failed ${describe(e)}`);
        if (!(e instanceof SanlockError)) this.checker.opEnd(this.checker.opStart(m.inc, 0, 'join'), undefined, e);
        await m.clock.sleep(1000 + m.rng.int(0, 10_000));
        continue;
      }
      const tracker = new HostStateTracker({ ourHostId: m.hostId, ioTimeout: c.ioTimeout, spaceName: LOCKSPACE, watchdogFireTimeout: c.watchdogFireTimeout });
      const ctx = {
        disk, clock: m.clock as Clock, random: new HostRandom(m.rng.fork()), hostId: m.hostId, generation, spaceName: LOCKSPACE,
        lockspaceOffset: 0, sectorSize: c.sectorSize, ioTimeout: c.ioTimeout, watchdogFireTimeout: c.watchdogFireTimeout, delta, tracker,
      };
      const base: LeaseEngine = c.engine === 'real' ? new RealEngine(ctx, c.paxosBugs) : new ModelEngine(ctx, c.modelFaults);
      const engine = c.wrapEngine ? c.wrapEngine(base, m.hostId) : base;
      const s: Session = {
        generation, delta, tracker, engine, held: new Map(), busy: new Set(), state: 'joined', ac: new AbortController(),
        expiry: delta.lastSuccess + idRenewalFailSeconds(c.ioTimeout), armedAt: m.clock.monotonicSeconds(), fire: undefined, ops: new Set(), renewDone: Promise.resolve(), inflight: new Set(),
      };
      m.session = s;
      this.joins++;
      this.checker.joined(m.inc, m.hostId, generation);
      this.log(m.inc, `joined generation ${generation} ts ${delta.lastSuccess}`);
      this.armWatchdog(m, s);
      s.renewDone = this.renewals(m, s);
      void this.mainLoop(m, s);
      void this.worker(m, s);
      return;
    }
  }

  /**
   * The local second at which the watchdog fires: W after wdmd's last pet, which is its last
   * 10-s tick before the expiry — or before registration, if the expiry had already passed then
   * (the device was being petted for the host's other reasons until then).
   */
  private fireLocalSeconds(m: Machine, expiry: number, armedAt: number): number {
    const k = Math.ceil((Math.max(expiry, armedAt) - m.petPhase) / WDMD_PET_SECONDS) - 1;
    return m.petPhase + k * WDMD_PET_SECONDS + this.cfg.watchdogFireTimeout;
  }

  private armWatchdog(m: Machine, s: Session): void {
    if (s.fire) this.sched.cancel(s.fire);
    if (this.cfg.breakFencing?.noWatchdog) return;
    const at = m.clock.realAt(this.fireLocalSeconds(m, s.expiry, s.armedAt) * 1e6);
    s.fire = this.sched.at(at, () => {
      if (!this.alive(m) || m.session !== s) return;
      this.log(m.inc, `watchdog fires (expiry ${s.expiry}, mono ${m.clock.monotonicSeconds()}) → reset`);
      this.checker.watchdogFired(m.inc, s.generation);
      this.reset(m, 'watchdog');
    }, undefined, true);
  }

  private disarmWatchdog(s: Session): void {
    if (s.fire) this.sched.cancel(s.fire);
    s.fire = undefined;
  }

  private async renewals(m: Machine, s: Session): Promise<void> {
    const g = await s.delta.loadGeometry();
    const code = await s.delta.renewLoop(s.ac.signal, {
      onRenewed: (area, ts) => {
        s.expiry = ts + idRenewalFailSeconds(this.cfg.ioTimeout);
        this.armWatchdog(m, s);
        const u = s.tracker.update(area, g, m.clock.monotonicSeconds());
        if (u.examineRequests && s.state === 'joined') void this.examine(m, s);
      },
      onError: (code) => {
        this.log(m.inc, `renewal failed ${codeName(code)}`);
      },
    });
    if (code !== 0 && s.state === 'joined') {
      this.log(m.inc, `renewal stopped ${codeName(code)}`);
      void this.recovery(m, s, 'fatal renewal');
    }
  }

  private async mainLoop(m: Machine, s: Session): Promise<void> {
    const fail = idRenewalFailSeconds(this.cfg.ioTimeout);
    while (s.state === 'joined') {
      try {
        await m.clock.sleep(1000, s.ac.signal);
      } catch {
        return;
      }
      if (s.state === 'joined' && s.delta.renewalGap() >= fail) {
        void this.recovery(m, s, `renewal gap ${s.delta.renewalGap()} s`);
        return;
      }
    }
  }

  /** sanlock's lockspace failure: kill the holders, drop the lockspace, rejoin later. */
  private async recovery(m: Machine, s: Session, why: string): Promise<void> {
    if (s.state !== 'joined') return;
    s.state = 'failed';
    s.ac.abort(new Error('lockspace failed'));
    this.log(m.inc, `recovery: ${why}`);
    // SIGTERM/SIGKILL take effect within kill_grace; holders keep their leases till then.
    await m.clock.sleep(m.rng.int(0, 10_000));
    if (!this.alive(m) || m.session !== s) return;
    this.killHolders(m, s, 'recovery');
    this.disarmWatchdog(s);
    s.state = 'gone';
    this.checker.left(m.inc, m.hostId, s.generation);
    m.session = undefined;
    // Like sanlock's rem_lockspace, the old renewal thread must have exited (its last write
    // may still be running with its host_dead deadline) and every token of the lockspace must
    // be freed (acquires in progress run to their end) before it can be added again: otherwise
    // two generations of one host_id would write the same dblocks.
    while (s.inflight.size > 0) await Promise.allSettled([...s.inflight]);
    await s.renewDone;
    this.log(m.inc, 'lockspace removed');
    await m.clock.sleep(1000 + m.rng.int(0, 10_000));
    if (this.alive(m) && !m.session) void this.join(m);
  }

  private killHolders(m: Machine, s: Session, why: string): void {
    for (const [r, mode] of [...s.held].sort((a, b) => a[0] - b[0])) {
      this.log(m.inc, `holder of r${r} ${mode} killed (${why})`);
      this.checker.kill(m.inc, s.generation, r);
      s.engine.abandon(this.resources[r]!);
    }
    s.held.clear();
  }

  /** Machine reset (watchdog or crash): everything of this incarnation is gone at once. */
  private reset(m: Machine, why: string): void {
    const s = m.session;
    if (s) {
      // the daemon is gone with the machine: its operations will never end, and need not
      for (const id of s.ops) this.checker.opAbandon(id);
      s.ops.clear();
      this.killHolders(m, s, why);
      this.disarmWatchdog(s);
      s.state = 'gone';
      s.ac.abort(new Error('reset'));
      this.checker.left(m.inc, m.hostId, s.generation);
    }
    this.sched.kill(m.inc);
    this.storage.crash(m.inc);
    this.log(m.inc, `reset (${why})`);
    const delayUs = Math.max(this.cfg.disk.maxHangMs * 1000, 5e6) + m.rng.int(0, 25e6);
    this.sched.after(delayUs, () => {
      if (this.phase !== 'done') this.boot(m.id, m);
    }, undefined, true);
  }

  // ------------------------------------------------------------------ workload

  private async op<T>(m: Machine, s: Session, desc: string, f: () => Promise<T>): Promise<{ ok: true; v: T; startUs: number } | { ok: false; code: number }> {
    const startUs = this.sched.nowUs;
    const id = this.checker.opStart(m.inc, s.generation, desc);
    s.ops.add(id);
    const p = f();
    s.inflight.add(p);
    void p.then(() => s.inflight.delete(p), () => s.inflight.delete(p));
    try {
      const v = await p;
      if (s.ops.delete(id)) this.checker.opEnd(id, 0);
      return { ok: true, v, startUs };
    } catch (e) {
      const code = e instanceof SanlockError ? e.code : undefined;
      if (s.ops.delete(id)) this.checker.opEnd(id, code, e);
      return { ok: false, code: code ?? -201 };
    }
  }

  private track(s: Session, p: Promise<unknown>): void {
    const q = p.catch(() => undefined);
    s.inflight.add(q);
    void q.then(() => s.inflight.delete(q));
  }

  /** false when the process no longer runs this session (killed, reset, lockspace gone) */
  private live(m: Machine, s: Session): boolean {
    return this.alive(m) && m.session === s && s.state === 'joined';
  }

  private async worker(m: Machine, s: Session): Promise<void> {
    const c = this.cfg;
    const rng = m.rng.fork();
    const view: ClientView = {
      held: s.held,
      busy: s.busy,
      tokenMode: (r) => s.engine.mode(this.resources[r]!),
      resources: this.resources.length,
      shared: c.shared,
      requests: c.requests && c.engine === 'real',
      draining: false,
    };
    for (let step = 0; step < 1_000_000; step++) {
      try {
        await m.clock.sleep(rng.int(0, THINK_MS_MAX), s.ac.signal);
      } catch {
        return;
      }
      if (!this.live(m, s)) return;
      view.draining = this.phase === 'draining' || this.phase === 'done';
      const a = nextAction(rng, view);
      switch (a.kind) {
        case 'stop':
          return;
        case 'idle':
          continue;
        case 'release':
          await this.doRelease(m, s, a.res);
          continue;
        case 'convert':
          await this.doConvert(m, s, a.res, a.to);
          continue;
        case 'request': {
          const r = this.resources[a.res]!;
          const res = await this.op(m, s, `request r${r.index}`, () => s.engine.request(r));
          if (this.live(m, s)) this.log(m.inc, `request r${r.index} → ${res.ok ? 'ok' : codeName(res.code)}`);
          continue;
        }
        case 'acquire':
          if (!(await this.doAcquire(m, s, a.res, a.mode))) return;
          continue;
      }
    }
  }

  /** false when the client died meanwhile */
  private async doAcquire(m: Machine, s: Session, index: number, mode: Mode): Promise<boolean> {
    const r = this.resources[index]!;
    s.busy.add(r.index);
    const res = await this.op(m, s, `acquire r${r.index} ${mode}`, () => s.engine.acquire(r, mode));
    s.busy.delete(r.index);
    if (!this.live(m, s)) {
      // the client died meanwhile: the daemon frees the token it just got
      if (res.ok) this.track(s, s.engine.release(r));
      return false;
    }
    if (res.ok) {
      s.held.set(r.index, mode);
      this.log(m.inc, `acquire r${r.index} ${mode} → ok lver ${res.v}${s.engine.note ? ` (${s.engine.note})` : ''}`);
      this.checker.grant(m.inc, s.generation, r.index, mode, res.v, res.startUs);
    } else {
      this.log(m.inc, `acquire r${r.index} ${mode} → ${codeName(res.code)}`);
    }
    return true;
  }

  private async doRelease(m: Machine, s: Session, r: number): Promise<void> {
    const mode = s.held.get(r);
    assert.ok(mode);
    s.held.delete(r);
    s.busy.add(r);
    this.checker.release(m.inc, s.generation, r);
    const res = await this.op(m, s, `release r${r} ${mode}`, () => s.engine.release(this.resources[r]!));
    s.busy.delete(r);
    if (this.live(m, s)) this.log(m.inc, `release r${r} ${mode} → ${res.ok ? 'ok' : codeName(res.code)}`);
  }

  private async doConvert(m: Machine, s: Session, r: number, to: Mode): Promise<void> {
    s.busy.add(r);
    if (to === 'SH') {
      // A downgrade takes effect for the client when it asks: from here on it only reads.
      s.held.set(r, 'SH');
      this.checker.convert(m.inc, s.generation, r, 'SH', 0, this.sched.nowUs);
    }
    const res = await this.op(m, s, `convert r${r} → ${to}`, () => s.engine.convert(this.resources[r]!, to));
    s.busy.delete(r);
    if (!this.live(m, s)) return;
    if (res.ok) {
      this.log(m.inc, `convert r${r} → ${to} ok${to === 'EX' ? ` lver ${res.v}` : ''}`);
      if (to === 'EX') {
        s.held.set(r, 'EX');
        this.checker.convert(m.inc, s.generation, r, 'EX', res.v, res.startUs);
      }
      return;
    }
    // A failed convert can leave either mode; the client keeps at most what it had and its
    // token decides whether anything is left at all.
    const now = s.engine.mode(this.resources[r]!);
    this.log(m.inc, `convert r${r} → ${to} ${codeName(res.code)} (token ${now ?? 'none'})`);
    if (now === undefined) {
      s.held.delete(r);
      this.checker.kill(m.inc, s.generation, r);
    }
  }

  /** Owner side of requests: a FORCE request kills the holder; its exit releases the lease. */
  private async examine(m: Machine, s: Session): Promise<void> {
    const held = [...s.held.keys()].filter((r) => !s.busy.has(r)).sort((a, b) => a - b).map((r) => this.resources[r]!);
    const kill = await s.engine.examine(held);
    for (const r of kill) {
      if (!this.live(m, s) || !s.held.has(r.index) || s.busy.has(r.index)) continue;
      this.log(m.inc, `request FORCE on r${r.index}: holder killed`);
      // the holder is dead before the daemon releases: from here on nobody uses the lease
      this.checker.release(m.inc, s.generation, r.index);
      s.held.delete(r.index);
      s.busy.add(r.index);
      const res = await this.op(m, s, `release r${r.index} after kill`, () => s.engine.release(r));
      s.busy.delete(r.index);
      if (this.live(m, s)) this.log(m.inc, `release r${r.index} after kill → ${res.ok ? 'ok' : codeName(res.code)}`);
    }
  }

  // ------------------------------------------------------------------ faults

  private scheduleFaults(): void {
    const c = this.cfg;
    const rng = this.rng.fork();
    const kinds: Array<[FaultKind, number]> = [['pause', c.faults.pause], ['crash', c.faults.crash], ['outage', c.faults.outage], ['skew', c.faults.skew]];
    for (const [kind, rate] of kinds) {
      const n = Math.round((rate * c.machines * c.faultsUntilSec) / 100);
      for (let i = 0; i < n; i++) {
        const at = rng.int(0, c.faultsUntilSec * 1e6);
        const id = rng.int(1, c.machines);
        const arg = rng.next();
        this.sched.at(at, () => this.fault(kind, id, arg), undefined, true);
      }
    }
  }

  private fault(kind: FaultKind, id: number, arg: number): void {
    if (this.phase !== 'faults') return;
    const m = this.machines[id - 1];
    if (!m || m.inc.dead) return;
    switch (kind) {
      case 'pause': {
        if (m.inc.paused) return;
        // mostly short stops, some longer than host_dead (the watchdog must then fire)
        const lp = this.cfg.faults.longPause;
        const secs = arg >= lp ? 0.5 + ((arg - lp) / (1 - lp)) * 10 : 10 + (arg / lp) * 90;
        this.sched.pause(m.inc);
        this.log(m.inc, `SIGSTOP for ${secs.toFixed(1)} s`);
        const inc = m.inc;
        this.sched.after(secs * 1e6, () => this.resume(m, inc), undefined, true);
        return;
      }
      case 'crash':
        this.reset(m, 'crash');
        return;
      case 'outage': {
        const secs = 1 + arg * 30;
        this.storage.setOutage(m.hostId, this.sched.nowUs + secs * 1e6);
        this.log(m.inc, `storage outage for ${secs.toFixed(1)} s`);
        return;
      }
      case 'skew': {
        if (m.id === 1 && this.cfg.breakFencing?.rogueClockRate) return;
        const rate = 1 + (arg * 2 - 1) * this.cfg.maxSkew;
        m.clock.setRate(rate);
        if (m.session?.fire) this.armWatchdog(m, m.session);
        this.log(m.inc, `clock rate ${rate.toFixed(6)}`);
        return;
      }
      default:
        return;
    }
  }

  private resume(m: Machine, inc: Incarnation): void {
    if (m.inc !== inc || inc.dead || !inc.paused) return;
    this.log(inc, 'SIGCONT');
    this.sched.resume(inc);
  }

  private heal(): void {
    this.phase = 'healed';
    this.storage.profile = { ...perfectDiskProfile, slow: this.cfg.disk.slow };
    for (const m of this.machines) {
      this.storage.setOutage(m.hostId, 0);
      if (m.inc.paused) this.resume(m, m.inc);
    }
    this.log('world', 'faults healed');
  }

  // ------------------------------------------------------------------ run

  async run(): Promise<WorldResult> {
    const c = this.cfg;
    for (let id = 1; id <= c.machines; id++) this.boot(id);
    this.scheduleFaults();
    const healAt = c.faultsUntilSec * 1e6;
    const drainAt = healAt + c.healedWorkSec * 1e6;
    // every op started before the end must be over by then: the longest legitimate wait is a
    // takeover (host_dead + 7N) after waiting out a delta lease (host_dead + 2N) and a retry.
    const endAt = drainAt + (2 * this.hdUs) + 60e6;
    this.sched.at(healAt, () => this.heal(), undefined, true);
    this.sched.at(drainAt, () => {
      this.phase = 'draining';
      this.log('world', 'draining');
    }, undefined, true);
    let ended = false;
    this.sched.at(endAt, () => {
      this.phase = 'done';
      ended = true;
      this.checker.checkNoOpOlderThan(drainAt, (key) => this.machines.some((m) => !m.inc.dead && key.startsWith(`${m.inc}/`)));
    }, undefined, true);
    const r = await this.sched.run({ stop: () => ended || this.checker.failed });
    if (r === 'idle' && !ended) this.checker.violations.push('simulation ran out of events before the end');
    return {
      seed: c.seed,
      ok: !this.checker.failed,
      violations: [...this.checker.violations],
      trace: this.cfg.fullTrace ? [...this.trace] : this.trace.slice(-this.cfg.traceTail),
      storageDigest: createHash('sha256').update(this.storage.bytes).digest('hex'),
      stats: {
        simSeconds: this.sched.nowUs / 1e6,
        events: this.sched.eventsRun,
        ops: this.checker.opsDone,
        grants: this.checker.grants,
        takeovers: this.checker.takeovers,
        watchdogFires: this.checker.watchdogFires,
        staleLeaders: this.checker.staleLeaders,
        joins: this.joins,
        reads: this.storage.reads,
        writes: this.storage.writes,
      },
    };
  }
}

function describe(e: unknown): string {
  if (e instanceof SanlockError) return codeName(e.code);
  return e instanceof Error ? e.message : String(e);
}

export async function runWorld(cfg: WorldConfig): Promise<WorldResult> {
  return new World(cfg).run();
}

/** Human-readable report of a failed run: the seed, the violations, the end of the trace. */
export function formatFailure(r: WorldResult, replay: string): string {
  return [
    `seed ${r.seed} FAILED (replay: ${replay})`,
    ...r.violations.map((v) => `  violation: ${v}`),
    `  last ${r.trace.length} trace lines:`,
    ...r.trace.map((l) => `    ${l}`),
  ].join('\n');
}
