// Shared (SH) holds on paxos leases and EX acquisition in their presence (spec/algorithms.md §3.5).
// An SH hold is just our mode block {SHARED, generation}; the leader is taken EX briefly (with
// SHORT_HOLD) only to serialize SH acquirers against EX acquirers.
//
// API (all take a PaxosLease from paxos-lease.ts):
//   await acquireEx(lease, opts)      EX acquire that also deals with SH holders: dead ones are
//                                     cleared, live ones → EX released again and -EAGAIN (-11)
//   await acquireSh(lease, opts)      SH acquire; retries SHORT_HOLD collisions 8 times → -246
//   await releaseSh(lease)            one sector write
//   await convertShToEx(lease, opts)  -EAGAIN (-11) while other live SH holders remain (SH kept)
//   await convertExToSh(lease)
//   await shHolderLive(...)           the liveness rule used for SH holders
import assert from 'node:assert/strict';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import { MBLOCK_SHARED } from '../ondisk/dblock.js';
import { type Leader, LFL_SHORT_HOLD } from '../ondisk/leader.js';
import type { AcquireOptions, LockspaceView, PaxosLease } from './paxos-lease.js';
import { DEFAULT_WATCHDOG_FIRE_TIMEOUT, hostDeadSeconds, SH_RETRIES } from './timeouts.js';

const RETRYABLE_WITH_SHORT_HOLD: ReadonlySet<number> = new Set([
  SanlkCode.SANLK_ACQUIRE_IDLIVE,
  SanlkCode.SANLK_ACQUIRE_OWNED,
  SanlkCode.SANLK_ACQUIRE_OTHER,
]);

/**
 * Whether SH holder (hostId, generation g) must be presumed alive. Only positive evidence of
 * death counts: its delta lease free, a newer generation, or silence longer than host_dead.
 */
export function shHolderLive(
  view: LockspaceView,
  spaceName: string,
  hostId: number,
  g: number,
  now: number,
  ourIoTimeout: number,
  watchdogFireTimeout = DEFAULT_WATCHDOG_FIRE_TIMEOUT,
): boolean {
  const s = view.hostSnapshot(spaceName, hostId);
  if (!s) return true;
  if (s.timestamp === 0 && s.lastCheck !== 0) return false;
  if (s.generation > g) return false;
  const hd = hostDeadSeconds(s.ioTimeout || ourIoTimeout, watchdogFireTimeout);
  const neverRenewed = s.lastLive === 0 || s.lastLive === s.firstCheck;
  if (neverRenewed && s.firstCheck !== 0 && now - s.firstCheck > hd) return false;
  if (s.lastLive !== 0 && !neverRenewed && now - s.lastLive > hd) return false;
  return true;
}

/**
 * After we committed ourselves EX: re-read each SH holder's mode block; clear the dead ones.
 * Returns the host_ids still holding SH and presumed alive.
 */
async function clearDeadSharedHolders(lease: PaxosLease, holders: number[]): Promise<number[]> {
  const live: number[] = [];
  const now = lease.host.clock.monotonicSeconds();
  for (const h of holders) {
    if (h === lease.hostId) continue;
    const m = await lease.readModeBlock(h);
    if (!(m.flags & MBLOCK_SHARED)) continue;
    if (shHolderLive(lease.host.lockspace, lease.res.spaceName, h, m.generation, now, lease.host.ioTimeout, lease.host.watchdogFireTimeout)) {
      live.push(h);
    } else {
      await lease.clearHostSector(h);
    }
  }
  return live;
}

/** EX acquire honouring SH holders (§3.5 "Acquire EX while SH holders exist"). */
export async function acquireEx(lease: PaxosLease, opts: Omit<AcquireOptions, 'shared' | 'keepSharedMode'> = {}): Promise<Leader> {
  assert.ok(!lease.shHeld, 'use convertShToEx while holding SH');
  const leader = await lease.acquire({ ...opts, shared: false });
  if (lease.sharedHolders.length === 0) return leader;
  const live = await clearDeadSharedHolders(lease, lease.sharedHolders);
  if (live.length > 0) {
    await lease.release();
    throw new SanlockError(-Errno.EAGAIN, `lease held SH by live hosts ${live.join(',')}`, { sharedHolders: live });
  }
  return leader;
}

/**
 * SH acquire: EX with SHORT_HOLD, then our mode block SHARED + dblock RELEASED, then free the
 * leader. Collisions with another SH acquirer's short hold are retried SH_RETRIES times.
 */
export async function acquireSh(lease: PaxosLease, opts: Omit<AcquireOptions, 'shared' | 'keepSharedMode'> = {}): Promise<void> {
  assert.ok(!lease.shHeld && !lease.held, 'acquireSh while already holding');
  let retries = 0;
  for (;;) {
    try {
      await lease.acquire({ ...opts, shared: true });
      break;
    } catch (e) {
      const leader = e instanceof SanlockError ? (e.details?.leader as Leader | undefined) : undefined;
      if (e instanceof SanlockError && RETRYABLE_WITH_SHORT_HOLD.has(e.code) && leader && leader.flags & LFL_SHORT_HOLD) {
        if (retries++ < SH_RETRIES) {
          await lease.host.clock.sleep(Math.floor(lease.host.random.next() * 1000), opts.signal);
          continue;
        }
        throw new SanlockError(SanlkCode.SANLK_ACQUIRE_SHRETRY, 'lease kept being held for other SH acquires', { leader });
      }
      throw e;
    }
  }
  const held = lease.leader;
  assert.ok(held);
  await lease.writeReleasedDblock({ flags: MBLOCK_SHARED, generation: lease.generation });
  lease.shHeld = true;
  lease.leader = undefined;
  await lease.releaseLeader(held);
}

/** Drop an SH hold: our dblock RELEASED, zero mode block. The leader is not touched. */
export async function releaseSh(lease: PaxosLease): Promise<void> {
  assert.ok(lease.shHeld, 'releaseSh without an SH hold');
  await lease.writeReleasedDblock({ flags: 0, generation: 0 });
  lease.shHeld = false;
}

/** SH → EX. On -EAGAIN the SH hold is kept. */
export async function convertShToEx(lease: PaxosLease, opts: Omit<AcquireOptions, 'shared' | 'keepSharedMode'> = {}): Promise<Leader> {
  assert.ok(lease.shHeld, 'convertShToEx without an SH hold');
  const leader = await lease.acquire({ ...opts, shared: false, keepSharedMode: true });
  const others = lease.sharedHolders.filter((h) => h !== lease.hostId);
  const live = others.length ? await clearDeadSharedHolders(lease, others) : [];
  if (live.length > 0) {
    lease.leader = undefined;
    await lease.releaseLeader(leader);
    throw new SanlockError(-Errno.EAGAIN, `lease held SH by live hosts ${live.join(',')}`, { sharedHolders: live });
  }
  await lease.writeOurSector({ flags: 0, generation: 0 });
  lease.shHeld = false;
  return leader;
}

/** EX → SH: LVB (if pending), our sector RELEASED + SHARED, then free the leader. */
export async function convertExToSh(lease: PaxosLease): Promise<void> {
  const held = lease.leader;
  assert.ok(held, 'convertExToSh without an EX hold');
  if (lease.lvbDirty) await lease.writeLvb();
  await lease.writeReleasedDblock({ flags: MBLOCK_SHARED, generation: lease.generation });
  lease.shHeld = true;
  lease.leader = undefined;
  await lease.releaseLeader(held);
}
