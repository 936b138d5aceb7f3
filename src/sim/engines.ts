// What a simulated host uses to hold resource leases. Two implementations behind one interface:
// "real" drives src/lease (PaxosLease + shared-mode + requests), "model" the simulator's own
// ModelPaxos. The world only sees LeaseEngine.
import assert from 'node:assert/strict';
import { Errno, SanlockError } from '../codes.js';
import type { Clock, Random } from '../lease/clock.js';
import type { DeltaLease } from '../lease/delta-lease.js';
import type { HostStateTracker } from '../lease/host-state.js';
import { lockspaceViewOf } from '../lease/lockspace-view.js';
import { type PaxosBugs, PaxosLease } from '../lease/paxos-lease.js';
import { examineRequest, requestLease } from '../lease/requests.js';
import { acquireEx, acquireSh, convertExToSh, convertShToEx, releaseSh } from '../lease/shared-mode.js';
import { MBLOCK_SHARED } from '../ondisk/dblock.js';
import { SANLK_REQ_FORCE } from '../ondisk/request.js';
import type { Disk } from '../storage/disk.js';
import { ModelPaxos, type ModelPaxosFaults } from './model-paxos.js';

export type Mode = 'EX' | 'SH';
export type EngineKind = 'real' | 'model';

export interface ResourceRef {
  index: number;
  name: string;
  offset: number;
}

export interface EngineContext {
  disk: Disk;
  clock: Clock;
  random: Random;
  hostId: number;
  generation: number;
  spaceName: string;
  lockspaceOffset: number;
  sectorSize: number;
  ioTimeout: number;
  watchdogFireTimeout: number;
  delta: DeltaLease;
  tracker: HostStateTracker;
}

export interface LeaseEngine {
  /** resolves with the lver our hold started at */
  acquire(r: ResourceRef, mode: Mode): Promise<number>;
  release(r: ResourceRef): Promise<void>;
  /** resolves with the new lver for SH→EX, 0 for EX→SH */
  convert(r: ResourceRef, to: Mode): Promise<number>;
  /** ask the owner of r to give it up (force mode) */
  request(r: ResourceRef): Promise<void>;
  /** owner side: the held resources whose request record says FORCE */
  examine(held: ResourceRef[]): Promise<ResourceRef[]>;
  /** forget a hold without I/O (lockspace lost) */
  abandon(r: ResourceRef): void;
  /** a remark on the last acquire for the trace ('' when none) */
  note: string;
  /** what the host holds now by its own bookkeeping (after a failed convert it may differ) */
  mode(r: ResourceRef): Mode | undefined;
}

/**
 * Drives src/lease. Like sanlock's tokens, each acquire gets a fresh PaxosLease that lives until
 * the lease is released (whatever the release's result), so a failed operation never leaves
 * state behind for the next acquire.
 */
export class RealEngine implements LeaseEngine {
  private readonly ctx: EngineContext;
  private readonly bugs: PaxosBugs | undefined;
  private readonly tokens = new Map<number, PaxosLease>();
  note = '';

  constructor(ctx: EngineContext, bugs?: PaxosBugs) {
    this.ctx = ctx;
    this.bugs = bugs;
  }

  private newLease(r: ResourceRef): PaxosLease {
    const c = this.ctx;
    return new PaxosLease(
      {
        hostId: c.hostId, generation: c.generation, ioTimeout: c.ioTimeout, clock: c.clock, random: c.random,
        lockspace: lockspaceViewOf(c.delta, c.tracker), watchdogFireTimeout: c.watchdogFireTimeout, bugs: this.bugs,
      },
      { spaceName: c.spaceName, resourceName: r.name, disks: [{ disk: c.disk, offset: r.offset }], sectorSize: c.sectorSize, alignSize: 1024 * 1024 },
    );
  }

  private token(r: ResourceRef): PaxosLease {
    const l = this.tokens.get(r.index);
    assert.ok(l, `no token for ${r.name}`);
    return l;
  }

  async acquire(r: ResourceRef, mode: Mode): Promise<number> {
    assert.ok(!this.tokens.has(r.index), `token for ${r.name} exists`);
    const l = this.newLease(r);
    try {
      if (mode === 'EX') {
        const lver = (await acquireEx(l)).lver;
        // no ballot of ours completed: another host committed us (sanlock "owner set by other host")
        this.note = l.lastBallot === undefined ? 'committed by another host' : '';
        this.tokens.set(r.index, l);
        return lver;
      }
      await acquireSh(l);
      this.tokens.set(r.index, l);
      return l.heldLver;
    } catch (e) {
      // sanlock releases the token of a failed acquire: retract a commit that may have happened,
      // drop a half-made SH hold.
      await this.cleanup(l);
      throw e;
    }
  }

  private async cleanup(l: PaxosLease): Promise<void> {
    try {
      if (l.held || l.needRetract) await l.release();
      if (l.shHeld) await releaseSh(l);
    } catch {
      // best effort, as in sanlock: what stays on disk is dealt with by the lease rules
    }
  }

  async release(r: ResourceRef): Promise<void> {
    const l = this.token(r);
    this.tokens.delete(r.index);
    if (l.held) {
      await l.release();
      l.shHeld = false;
    } else if (l.shHeld) {
      await releaseSh(l);
    }
  }

  async convert(r: ResourceRef, to: Mode): Promise<number> {
    const l = this.token(r);
    if (to === 'SH') {
      await convertExToSh(l);
      return 0;
    }
    try {
      return (await convertShToEx(l)).lver;
    } catch (e) {
      if (l.needRetract || l.held) {
        // sanlock's convert_sh2ex failure: "do on-disk release of owner, keep token and SH
        // mblock": undo our dblock, free the leader if the ballot made us its owner.
        const held = l.leader;
        l.needRetract = false;
        l.leader = undefined;
        try {
          await l.writeReleasedDblock({ flags: MBLOCK_SHARED, generation: l.generation });
          await l.releaseLeader(held);
        } catch {
          // best effort
        }
        l.shHeld = true;
      }
      throw e;
    }
  }

  async request(r: ResourceRef): Promise<void> {
    await requestLease(this.newLease(r), { nextLver: true, forceMode: SANLK_REQ_FORCE }, (owner) => this.ctx.delta.setRequestBit(owner));
  }

  async examine(held: ResourceRef[]): Promise<ResourceRef[]> {
    const out: ResourceRef[] = [];
    for (const r of held) {
      const l = this.tokens.get(r.index);
      if (!l) continue;
      const d = await examineRequest(l).catch(() => undefined);
      if (d?.action === 'force') out.push(r);
    }
    return out;
  }

  abandon(r: ResourceRef): void {
    this.tokens.get(r.index)?.abandon();
    this.tokens.delete(r.index);
  }

  mode(r: ResourceRef): Mode | undefined {
    const l = this.tokens.get(r.index);
    if (!l) return undefined;
    if (l.shHeld) return 'SH';
    return l.held ? 'EX' : undefined;
  }
}

export class ModelEngine implements LeaseEngine {
  private readonly m: ModelPaxos;
  note = '';

  constructor(ctx: EngineContext, faults?: ModelPaxosFaults) {
    this.m = new ModelPaxos({
      disk: ctx.disk, clock: ctx.clock, random: ctx.random, hostId: ctx.hostId, generation: ctx.generation,
      spaceName: ctx.spaceName, lockspaceOffset: ctx.lockspaceOffset, sectorSize: ctx.sectorSize,
      ioTimeout: ctx.ioTimeout, watchdogFireTimeout: ctx.watchdogFireTimeout, hostState: ctx.tracker, faults,
    });
  }

  acquire(r: ResourceRef, mode: Mode): Promise<number> {
    return this.m.acquire(r.offset, r.name, mode);
  }

  release(r: ResourceRef): Promise<void> {
    return this.m.release(r.offset, r.name);
  }

  async convert(r: ResourceRef, to: Mode): Promise<number> {
    if (to === 'SH') {
      await this.m.convertToShared(r.offset);
      return 0;
    }
    return this.m.acquire(r.offset, r.name, 'EX', true);
  }

  async request(_r: ResourceRef): Promise<void> {
    throw new SanlockError(-Errno.EINVAL, 'requests are not modelled by ModelPaxos');
  }

  async examine(_held: ResourceRef[]): Promise<ResourceRef[]> {
    return [];
  }

  abandon(r: ResourceRef): void {
    this.m.held.delete(r.offset);
  }

  mode(r: ResourceRef): Mode | undefined {
    return this.m.held.get(r.offset)?.mode;
  }
}
