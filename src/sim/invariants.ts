// Safety and liveness checks for a simulated world. The world reports what each host process
// believes ("ghost" state: who holds what since when, who joined which host_id) and the storage
// reports every write as it lands; each report is checked at once, so a violation is caught at
// the step that causes it. Violations are recorded, not thrown: they are usually noticed inside
// some host's async chain, and the world stops the run when `failed` is set.
//
// Checked:
//   1. mutual exclusion — per resource, among holders that are neither released, killed nor
//      reset: one EX holder alone, or only SH holders (paused hosts' holders count until their
//      watchdog fires);
//   2. versions — a grant's lver is above every lver granted before the acquire began, and each
//      lver is committed (leader written with timestamp ≠ 0) for one owner only;
//   3. host_id — at most one live incarnation owns a host_id, and a generation is never
//      joined twice;
//   4. takeover timing — a lease whose holder was killed/reset without releasing is granted to
//      someone else only host_dead after that holder's last renewal landed (unless its host_id
//      was freed or re-acquired with a newer generation meanwhile);
//   5. fencing — a watchdog fires before host_dead has passed since the last renewal landed;
//   6. liveness — after faults stop, every operation ends, with success or a sanlock code.
// Timing checks allow for two clocks `maxSkew` apart: host_dead·(1 − 2·maxSkew).
import { codeName } from '../codes.js';
import { DELTA_DISK_MAGIC, decodeLeader, PAXOS_DISK_MAGIC } from '../ondisk/leader.js';
import type { Incarnation } from './sim-clock.js';

export type Mode = 'EX' | 'SH';

export interface CheckerConfig {
  /** host_dead_seconds in µs */
  hostDeadUs: number;
  /** largest |rate − 1| of any host clock: timing checks allow for two clocks this far apart */
  maxSkew: number;
  sectorSize: number;
  lockspaceOffset: number;
  lockspaceSize: number;
  /** resource offset → index */
  resourceAt: Map<number, number>;
  now: () => number;
  /** reads the host_id's delta record on disk right now (for takeover checks) */
  deltaOnDisk: (hostId: number) => { generation: number; timestamp: number };
}

interface Holder {
  inc: Incarnation;
  hostId: number;
  generation: number;
  mode: Mode;
  lver: number;
  sinceUs: number;
}

interface Killed {
  key: string;
  hostId: number;
  generation: number;
  mode: Mode;
  atUs: number;
}

export class Checker {
  readonly cfg: CheckerConfig;
  readonly violations: string[] = [];
  private readonly holders = new Map<number, Map<string, Holder>>();
  private readonly killed = new Map<number, Killed[]>();
  /** per resource: return times of grants, the running max of their lvers, who got each lver */
  private readonly grantTimes = new Map<number, { at: number[]; maxLver: number[]; holderOf: Map<number, string> }>();
  private readonly committed = new Map<number, Map<number, string>>();
  private readonly lastLandUs = new Map<string, number>();
  private readonly hostIdOwners = new Map<number, Map<string, Incarnation>>();
  private readonly everJoined = new Set<string>();
  private readonly pendingOps = new Map<number, { desc: string; key: string; startUs: number }>();
  private opSeq = 0;
  grants = 0;
  /** leader writes that landed with a lower lver than the leader already on disk */
  staleLeaders = 0;
  private readonly landedLver = new Map<number, number>();
  takeovers = 0;
  watchdogFires = 0;
  opsDone = 0;

  constructor(cfg: CheckerConfig) {
    this.cfg = cfg;
  }

  get failed(): boolean {
    return this.violations.length > 0;
  }

  private fail(msg: string): void {
    this.violations.push(`t=${(this.cfg.now() / 1e6).toFixed(6)} ${msg}`);
  }

  private key(inc: Incarnation, generation: number): string {
    return `${inc}/g${generation}`;
  }

  /** Earliest moment another host may treat an incarnation as dead, per the given last renewal. */
  private deadAfter(lastUs: number): number {
    return lastUs + this.cfg.hostDeadUs * (1 - 2 * this.cfg.maxSkew);
  }

  // ------------------------------------------------------------- leases held (ghost state)

  /**
   * `startUs`: when the acquire (or convert) was invoked. Any grant that returned before then
   * must have a smaller lver (versions never go back, as far as anybody can observe), with one
   * exception that Disk Paxos allows: the highest lver granted so far, granted again to the same
   * incarnation. A commit write that timed out can land late over a newer leader and roll it
   * back; the next ballot for that lver must then choose the value already chosen for it, which
   * names that incarnation (sanlock does the same). It is not a second owner: the instance is one.
   */
  grant(inc: Incarnation, generation: number, res: number, mode: Mode, lver: number, startUs: number, newVersion = true): void {
    const k = this.key(inc, generation);
    const hs = this.holders.get(res) ?? new Map<string, Holder>();
    this.holders.set(res, hs);
    for (const [ok, h] of hs) {
      if (ok === k) continue;
      if (mode === 'EX' || h.mode === 'EX') {
        this.fail(`mutual exclusion: r${res} granted ${mode} to ${k} lver ${lver} while ${ok} holds ${h.mode} lver ${h.lver} since t=${(h.sinceUs / 1e6).toFixed(6)}`);
      }
    }
    const now = this.cfg.now();
    if (newVersion) {
      const g = this.grantTimes.get(res) ?? { at: [], maxLver: [], holderOf: new Map<number, string>() };
      this.grantTimes.set(res, g);
      let lo = 0;
      let hi = g.at.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (g.at[mid]! < startUs) lo = mid + 1;
        else hi = mid;
      }
      const before = lo > 0 ? g.maxLver[lo - 1]! : 0;
      const sameInstance = lver === before && g.holderOf.get(lver) === k;
      if (lver <= before && !sameInstance) this.fail(`lver: r${res} granted to ${k} at lver ${lver}, not above ${before} granted before this acquire began`);
      g.holderOf.set(lver, k);
      g.at.push(now);
      g.maxLver.push(Math.max(lver, g.maxLver[g.maxLver.length - 1] ?? 0));
    }
    const left: Killed[] = [];
    for (const kd of this.killed.get(res) ?? []) {
      if (kd.key === k) continue;
      if (mode === 'SH' && kd.mode === 'SH') {
        left.push(kd);
        continue;
      }
      const d = this.cfg.deltaOnDisk(kd.hostId);
      if (d.timestamp !== 0 && d.generation === kd.generation) {
        const last = this.lastLandUs.get(kd.key) ?? 0;
        if (now < this.deadAfter(last)) {
          this.fail(`takeover too early: r${res} → ${k} at ${((now - last) / 1e6).toFixed(3)} s after ${kd.key}'s last renewal (host_dead ${(this.cfg.hostDeadUs / 1e6).toFixed(0)} s)`);
        }
      }
      this.takeovers++;
    }
    this.killed.set(res, left);
    hs.set(k, { inc, hostId: inc.hostId, generation, mode, lver, sinceUs: now });
    this.grants++;
  }

  /** The process stopped using the lease (about to release it). */
  release(inc: Incarnation, generation: number, res: number): void {
    this.holders.get(res)?.delete(this.key(inc, generation));
  }

  /** EX→SH done, or SH→EX done (then `lver` is the new version). */
  convert(inc: Incarnation, generation: number, res: number, to: Mode, lver: number, startUs: number): void {
    const k = this.key(inc, generation);
    const h = this.holders.get(res)?.get(k);
    if (!h) {
      this.fail(`convert of r${res} by ${k} which does not hold it`);
      return;
    }
    if (to === 'EX') {
      this.holders.get(res)!.delete(k);
      this.grant(inc, generation, res, 'EX', lver, startUs);
    } else {
      h.mode = 'SH';
    }
  }

  /** The holder died without releasing (killed by recovery, by a request, or reset). */
  kill(inc: Incarnation, generation: number, res: number): void {
    const k = this.key(inc, generation);
    const h = this.holders.get(res)?.get(k);
    if (!h) return;
    this.holders.get(res)!.delete(k);
    const list = this.killed.get(res) ?? [];
    list.push({ key: k, hostId: inc.hostId, generation, mode: h.mode, atUs: this.cfg.now() });
    this.killed.set(res, list);
  }

  killAll(inc: Incarnation, generation: number): void {
    for (const res of [...this.holders.keys()].sort((a, b) => a - b)) this.kill(inc, generation, res);
  }

  holding(inc: Incarnation, generation: number): number {
    let n = 0;
    for (const hs of this.holders.values()) if (hs.has(this.key(inc, generation))) n++;
    return n;
  }

  // ------------------------------------------------------------- host_id ownership

  joined(inc: Incarnation, hostId: number, generation: number): void {
    const owners = this.hostIdOwners.get(hostId) ?? new Map<string, Incarnation>();
    this.hostIdOwners.set(hostId, owners);
    for (const [k, o] of owners) {
      if (!o.dead) this.fail(`host_id ${hostId}: ${this.key(inc, generation)} joined while ${k} still owns it`);
    }
    const k = this.key(inc, generation);
    if (this.everJoined.has(k)) this.fail(`host_id ${hostId}: generation ${generation} joined twice by ${inc}`);
    this.everJoined.add(k);
    owners.set(k, inc);
  }

  left(inc: Incarnation, hostId: number, generation: number): void {
    this.hostIdOwners.get(hostId)?.delete(this.key(inc, generation));
  }

  /** The watchdog reset this incarnation, which had renewed as generation `generation`. */
  watchdogFired(inc: Incarnation, generation: number): void {
    this.watchdogFires++;
    const k = this.key(inc, generation);
    const last = this.lastLandUs.get(k) ?? 0;
    const now = this.cfg.now();
    if (now > this.deadAfter(last)) {
      this.fail(`watchdog of ${k} fired ${((now - last) / 1e6).toFixed(3)} s after its last renewal, later than host_dead`);
    }
  }

  // ------------------------------------------------------------- storage

  /** Called by the storage for each landed write (sector-aligned, whole sectors). */
  onLand(offset: number, data: Buffer, writer: Incarnation, writerGeneration: () => number): void {
    const ss = this.cfg.sectorSize;
    const ls = this.cfg.lockspaceOffset;
    for (let off = offset; off < offset + data.length; off += ss) {
      const sec = data.subarray(off - offset, off - offset + ss);
      if (off >= ls && off < ls + this.cfg.lockspaceSize) {
        const hostId = (off - ls) / ss + 1;
        const l = decodeLeader(sec, 0);
        if (hostId === writer.hostId && l.magic === DELTA_DISK_MAGIC && l.timestamp !== 0) {
          this.lastLandUs.set(this.key(writer, l.ownerGeneration), this.cfg.now());
        }
        continue;
      }
      const res = this.cfg.resourceAt.get(off);
      if (res === undefined) continue;
      const l = decodeLeader(sec, 0);
      if (l.magic !== PAXOS_DISK_MAGIC) continue;
      if (l.lver < (this.landedLver.get(res) ?? 0)) this.staleLeaders++;
      this.landedLver.set(res, l.lver);
      if (l.timestamp === 0) continue;
      const byLver = this.committed.get(res) ?? new Map<number, string>();
      this.committed.set(res, byLver);
      const owner = `${l.ownerId}/${l.ownerGeneration}`;
      const prev = byLver.get(l.lver);
      if (prev !== undefined && prev !== owner) {
        this.fail(`r${res} lver ${l.lver} committed for ${prev} and then for ${owner} (written by ${writer} gen ${writerGeneration()})`);
      }
      if (prev === undefined) byLver.set(l.lver, owner);
    }
  }

  // ------------------------------------------------------------- liveness

  opStart(inc: Incarnation, generation: number, desc: string): number {
    const id = ++this.opSeq;
    this.pendingOps.set(id, { desc, key: this.key(inc, generation), startUs: this.cfg.now() });
    return id;
  }

  /** An op ended; `code` is 0 for success, else the error's code (undefined: not a SanlockError). */
  opEnd(id: number, code: number | undefined, err?: unknown): void {
    const op = this.pendingOps.get(id);
    this.pendingOps.delete(id);
    this.opsDone++;
    if (!op) return;
    if (code === undefined) {
      this.fail(`${op.key} ${op.desc} failed without a sanlock code: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    } else if (code !== 0 && codeName(code) === String(code)) {
      this.fail(`${op.key} ${op.desc} failed with undefined code ${code}`);
    }
  }

  /** The process running the op is gone: it no longer counts as waiting. */
  opAbandon(id: number): void {
    this.pendingOps.delete(id);
  }

  /** Ops of live processes still waiting since before `sinceUs`. */
  checkNoOpOlderThan(sinceUs: number, live: (key: string) => boolean): void {
    for (const op of this.pendingOps.values()) {
      if (op.startUs < sinceUs && live(op.key)) {
        this.fail(`liveness: ${op.key} ${op.desc} started t=${(op.startUs / 1e6).toFixed(6)} still waiting after faults healed`);
      }
    }
  }
}
