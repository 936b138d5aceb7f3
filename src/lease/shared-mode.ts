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
//   shHolderLive(...) / shHolderEvidence(...)  the liveness rule used for SH holders (bookkeeping
//                                     only; a 'silent' holder is confirmed on disk before clearing)
import assert from 'node:assert/strict';
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import { MBLOCK_SHARED } from '../ondisk/dblock.js';
import { type Leader, LFL_SHORT_HOLD } from '../ondisk/leader.js';
import type { AcquireOptions, LockspaceView, PaxosLease } from './paxos-lease.js';
import { settledAfterTimeout, settledWithin } from '../storage/disk.js';
import { DEFAULT_WATCHDOG_FIRE_TIMEOUT, hostDeadSeconds, idRenewalFailSeconds, SH_RETRIES } from './timeouts.js';

const RETRYABLE_WITH_SHORT_HOLD: ReadonlySet<number> = new Set([
  SanlkCode.SANLK_ACQUIRE_IDLIVE,
  SanlkCode.SANLK_ACQUIRE_OWNED,
  SanlkCode.SANLK_ACQUIRE_OTHER,
]);

/**
 * What our lockspace thread's bookkeeping says about SH holder (hostId, generation g):
 * - 'live': no evidence of death (also: no information, or information about an older
 *   incarnation of that host_id only — a host paused past host_dead still holds the view it had
 *   before, which says nothing about an incarnation that joined meanwhile);
 * - 'dead': its host_id free, or a newer generation seen;
 * - 'silent': generation g seen without a renewal for longer than host_dead. This is only as
 *   good as the snapshot is fresh, so clearDeadSharedHolders confirms it on disk.
 */
export function shHolderEvidence(
  view: LockspaceView,
  spaceName: string,
  hostId: number,
  g: number,
  now: number,
  ourIoTimeout: number,
  watchdogFireTimeout = DEFAULT_WATCHDOG_FIRE_TIMEOUT,
): 'live' | 'dead' | 'silent' {
  const s = view.hostSnapshot(spaceName, hostId);
  if (!s || s.lastCheck === 0) return 'live';
  if (s.generation > g) return 'dead';
  if (s.generation < g) return 'live';
  if (s.timestamp === 0) return 'dead';
  const hd = hostDeadSeconds(s.ioTimeout || ourIoTimeout, watchdogFireTimeout);
  const neverRenewed = s.lastLive === 0 || s.lastLive === s.firstCheck;
  if (neverRenewed && s.firstCheck !== 0 && now - s.firstCheck > hd) return 'silent';
  if (s.lastLive !== 0 && !neverRenewed && now - s.lastLive > hd) return 'silent';
  return 'live';
}

/**
 * Whether SH holder (hostId, generation g) must be presumed alive by our bookkeeping alone.
 * Only positive evidence of death counts: its delta lease free, a newer generation, or silence
 * longer than host_dead (see shHolderEvidence).
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
  return shHolderEvidence(view, spaceName, hostId, g, now, ourIoTimeout, watchdogFireTimeout) === 'live';
}

/**
 * Silence seen by our bookkeeping is death only if the holder's delta record on disk still is
 * the one we last saw change (no renewal has landed since): the paxos owner check reasons the
 * same way. A read error is no evidence.
 */
async function silenceConfirmed(lease: PaxosLease, hostId: number, g: number): Promise<boolean> {
  const s = lease.host.lockspace.hostSnapshot(lease.res.spaceName, hostId);
  assert.ok(s);
  let rec: Leader;
  try {
    rec = await lease.host.lockspace.readDeltaRecord(lease.res.spaceName, hostId);
  } catch {
    return false;
  }
  if (rec.timestamp === 0 || rec.ownerGeneration > g) return true;
  return rec.ownerGeneration === g && rec.timestamp === s.timestamp;
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
    const ev = shHolderEvidence(lease.host.lockspace, lease.res.spaceName, h, m.generation, now, lease.host.ioTimeout, lease.host.watchdogFireTimeout);
    if (ev === 'live' || (ev === 'silent' && !(await silenceConfirmed(lease, h, m.generation)))) {
      live.push(h);
    } else {
      await clearSettled(lease, h);
    }
  }
  return live;
}

/**
 * Zeroes a dead SH holder's sector. This is the one write a host makes into another host's
 * sector, and it is safe only while we hold EX: that host can take SH again (under a new
 * generation) as soon as we give EX up. A clear that timed out can still land later and would
 * then wipe that new SH hold, letting an EX acquirer in beside it (the simulator found this:
 * seed 9203628). So before the error lets our caller give EX up, the timed-out write is waited
 * for until it is over, or at most until our own renewals would have failed on the same storage
 * (from then on our lockspace has failed and the watchdog fences this host before others may
 * treat it as dead). sanlock gives EX up at once.
 */
async function clearSettled(lease: PaxosLease, hostId: number): Promise<void> {
  try {
    await lease.clearHostSector(hostId);
  } catch (e) {
    const settled = settledAfterTimeout(e);
    const clock = lease.host.clock;
    if (settled) await settledWithin(settled, idRenewalFailSeconds(lease.host.ioTimeout) * 1000, (ms, stop) => clock.sleep(ms, stop));
    throw e;
  }
}

/** Best effort: errors are left for needRetract / the caller's own error to report. */
async function quietly(f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch {
    // the state that matters is kept in lease.needRetract / shHeld
  }
}

/**
 * EX acquire honouring SH holders (§3.5 "Acquire EX while SH holders exist"). The holders come
 * from every read the acquire made (see paxos-lease.ts), also when another host committed our
 * value. Whenever this throws, the EX hold is given back (or needRetract says it may remain).
 */
export async function acquireEx(lease: PaxosLease, opts: Omit<AcquireOptions, 'shared' | 'keepSharedMode'> = {}): Promise<Leader> {
  assert.ok(!lease.shHeld, 'use convertShToEx while holding SH');
  const leader = await lease.acquire({ ...opts, shared: false });
  if (lease.sharedHolders.length === 0) return leader;
  let live: number[];
  try {
    live = await clearDeadSharedHolders(lease, lease.sharedHolders);
  } catch (e) {
    await quietly(() => lease.release());
    throw e;
  }
  if (live.length > 0) {
    await lease.release();
    throw new SanlockError(-Errno.EAGAIN, `lease held SH by live hosts ${live.join(',')}`, { sharedHolders: live });
  }
  return leader;
}

/**
 * SH acquire: EX with SHORT_HOLD, then our mode block SHARED + dblock RELEASED, then free the
 * leader. Collisions with another SH acquirer's short hold are retried SH_RETRIES times.
 * When a step after the EX commit fails, the SH attempt is undone (zero mode block, leader
 * freed) as sanlock's R_UNDO_SHARED does: on a throw we hold nothing, or needRetract is set.
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
  try {
    await lease.writeReleasedDblock({ flags: MBLOCK_SHARED, generation: lease.generation });
  } catch (e) {
    // shHeld is false: release() writes a zero mode block, then frees the leader.
    await quietly(() => lease.release());
    throw e;
  }
  lease.shHeld = true;
  lease.leader = undefined;
  try {
    await lease.releaseLeader(held);
  } catch (e) {
    lease.shHeld = false;
    await quietly(() => lease.retract());
    throw e;
  }
}

/**
 * Drop an SH hold: our dblock RELEASED, zero mode block. The leader is not touched, unless a
 * failed convert left needRetract: then a leader that still names us is freed too.
 */
export async function releaseSh(lease: PaxosLease): Promise<void> {
  assert.ok(lease.shHeld, 'releaseSh without an SH hold');
  assert.ok(!lease.held, 'releaseSh while holding EX: use release()');
  await lease.writeReleasedDblock({ flags: 0, generation: 0 });
  lease.shHeld = false;
  if (lease.needRetract) await lease.retract();
}

/**
 * A failed SH→EX convert, as sanlock's convert_sh2ex "fail": our dblock RELEASED with our
 * {SHARED, generation} mode block, then the leader freed if it names us. The SH hold is kept
 * whatever happens; needRetract stays set when the leader could not be dealt with.
 */
async function undoShToEx(lease: PaxosLease): Promise<void> {
  assert.ok(lease.shHeld);
  const held = lease.leader;
  lease.leader = undefined;
  lease.needRetract = false;
  await quietly(() => lease.writeReleasedDblock({ flags: MBLOCK_SHARED, generation: lease.generation }));
  try {
    if (held) await lease.releaseLeader(held);
    else await lease.retract();
  } catch {
    lease.needRetract = true;
  }
}

/**
 * SH → EX. On any failure the SH hold is kept and we are not left as the EX owner (or
 * needRetract is set, and releaseSh will free the leader): -EAGAIN while other live SH holders
 * remain. Once we are EX owner with no live SH holder left, the convert succeeds even if
 * clearing our own SHARED mode block fails (the EX release clears it later).
 */
export async function convertShToEx(lease: PaxosLease, opts: Omit<AcquireOptions, 'shared' | 'keepSharedMode'> = {}): Promise<Leader> {
  assert.ok(lease.shHeld && !lease.held, 'convertShToEx without an SH hold');
  let leader: Leader;
  let live: number[];
  try {
    leader = await lease.acquire({ ...opts, shared: false, keepSharedMode: true });
    const others = lease.sharedHolders.filter((h) => h !== lease.hostId);
    live = others.length ? await clearDeadSharedHolders(lease, others) : [];
  } catch (e) {
    if (lease.held || lease.needRetract) await undoShToEx(lease);
    throw e;
  }
  if (live.length > 0) {
    await undoShToEx(lease);
    throw new SanlockError(-Errno.EAGAIN, `lease held SH by live hosts ${live.join(',')}`, { sharedHolders: live });
  }
  lease.shHeld = false;
  await quietly(() => lease.writeOurSector({ flags: 0, generation: 0 }));
  return leader;
}

/** Whether the leader on disk still is the EX hold `held` of ours (undefined: could not read). */
async function leaderStillOurs(lease: PaxosLease, held: Leader): Promise<boolean | undefined> {
  try {
    const { leader: l } = await lease.readLeader();
    return l.lver === held.lver && l.timestamp !== 0 && l.ownerId === lease.hostId && l.ownerGeneration === lease.generation;
  } catch {
    return undefined;
  }
}

/**
 * EX → SH: LVB (if pending), our sector RELEASED + SHARED, then free the leader. The result
 * says what is on disk: success when we end up SH (also when the leader write failed but a
 * re-read shows it no longer names us); an error leaves the token EX (`held`, not `shHeld`),
 * and the EX release then clears our mode block and the leader both.
 */
export async function convertExToSh(lease: PaxosLease): Promise<void> {
  const held = lease.leader;
  assert.ok(held && !lease.shHeld, 'convertExToSh without an EX hold');
  if (lease.lvbDirty) await lease.writeLvb();
  await lease.writeReleasedDblock({ flags: MBLOCK_SHARED, generation: lease.generation });
  try {
    await lease.releaseLeader(held);
  } catch (e) {
    if ((await leaderStillOurs(lease, held)) !== false) throw e;
  }
  lease.shHeld = true;
  lease.leader = undefined;
}
