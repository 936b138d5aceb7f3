// Request records (sector 1 of a paxos lease): how a host asks the owner of a lease to give it
// up (spec/algorithms.md §3.7). The requester writes the record and sets the owner's bit in its
// delta-lease bitmap; the owner, seeing its bit, examines the record of every lease it holds.
//
// API:
//   const r = await requestLease(lease, { lver?, forceMode?, nextLver? }, (owner) => delta.setRequestBit(owner));
//   const d = await examineRequest(lease);     // owner side: d.action 'none' | 'force' | 'graceful'
import { SanlkCode, SanlockError } from '../codes.js';
import {
  REQ_DISK_MAGIC,
  REQ_DISK_VERSION,
  type RequestRecord,
  SANLK_REQ_FORCE,
  SANLK_REQ_GRACEFUL,
  verifyRequest,
} from '../ondisk/request.js';
import type { PaxosLease } from './paxos-lease.js';

export interface RequestOptions {
  /** the lease version wanted (normally current lver + 1) */
  lver?: number;
  /** 0 none, 1 SANLK_REQ_FORCE, 2 SANLK_REQ_GRACEFUL */
  forceMode?: number;
  /** SANLK_REQUEST_NEXT_LVER: want the current lver + 1 */
  nextLver?: boolean;
}

export interface RequestResult {
  /** false when the lease was free and nothing was written */
  written: boolean;
  /** owner whose bit was set (0 when none) */
  ownerId: number;
  lver: number;
  forceMode: number;
}

/** Requester side. `setBit(owner)` sets the owner's bit in our bitmap for set_bitmap_seconds. */
export async function requestLease(lease: PaxosLease, opts: RequestOptions, setBit?: (ownerId: number) => void): Promise<RequestResult> {
  const forceMode = opts.forceMode ?? 0;
  const given = (opts.lver ?? 0) !== 0 || forceMode !== 0 || opts.nextLver === true;
  let wanted = 0;
  let ownerId = 0;
  if (given) {
    const { leader } = await lease.readLeader();
    if (leader.timestamp === 0) return { written: false, ownerId: 0, lver: 0, forceMode };
    ownerId = leader.ownerId;
    wanted = opts.nextLver ? leader.lver + 1 : opts.lver ?? 0;
    if (leader.lver >= wanted) {
      throw new SanlockError(SanlkCode.SANLK_REQUEST_OLD, `lease lver ${leader.lver} already ≥ requested ${wanted}`);
    }
  }
  const cur = await lease.readRequest();
  const rv = verifyRequest(cur);
  if (rv < 0) throw new SanlockError(rv, 'request record invalid');
  if (given && cur.lver > wanted) {
    throw new SanlockError(SanlkCode.SANLK_REQUEST_LVER, `request record lver ${cur.lver} > ${wanted}`);
  }
  const rec: RequestRecord = { magic: REQ_DISK_MAGIC, version: REQ_DISK_VERSION, lver: wanted, forceMode: given ? forceMode : 0 };
  await lease.writeRequest(rec);
  if (given && ownerId && setBit) setBit(ownerId);
  return { written: true, ownerId, lver: wanted, forceMode: rec.forceMode };
}

export type RequestAction = 'none' | 'force' | 'graceful';

export interface RequestDecision {
  action: RequestAction;
  record: RequestRecord | undefined;
}

/**
 * Owner side, run for each lease we hold when our bit is seen (§2.4): the record asks for a
 * version newer than ours with a force mode → kill (FORCE) or killpath/SIGTERM (GRACEFUL).
 * A stale record (lver ≤ ours) is ignored; it stays on disk forever.
 */
export async function examineRequest(lease: PaxosLease): Promise<RequestDecision> {
  if (!lease.held && !lease.shHeld) return { action: 'none', record: undefined };
  const rec = await lease.readRequest();
  if (verifyRequest(rec) < 0) return { action: 'none', record: rec };
  if (rec.forceMode === 0 || rec.lver <= lease.heldLver) return { action: 'none', record: rec };
  if (rec.forceMode === SANLK_REQ_FORCE) return { action: 'force', record: rec };
  if (rec.forceMode === SANLK_REQ_GRACEFUL) return { action: 'graceful', record: rec };
  return { action: 'none', record: rec };
}
