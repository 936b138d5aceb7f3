// Per-lockspace view of the other hosts, rebuilt from each renewal read (spec/algorithms.md §2.4).
// Nothing here touches storage: the lockspace's renewal hands us the area it read.
//
// API:
//   const hs = new HostStateTracker({ ourHostId, ioTimeout, watchdogFireTimeout?, setBitmapSeconds? });
//   const u = hs.update(area, geometry, now);   // after each successful renewal
//   u.events            → host events addressed to us (deliver to event listeners)
//   u.examineRequests   → true: read the request records of every lease we hold here (§3.7)
//   hs.state(hostId, now)  → HostState.{UNKNOWN,FREE,LIVE,FAIL,DEAD} (sanlock's numbers)
//   hs.hosts(now, hostId?) → what sanlock_get_hosts / `client host_status` report
//   hs.slot(hostId)         → raw bookkeeping (last_check, first_check, last_live, ...) — the
//                             snapshot the paxos owner check uses
import assert from 'node:assert/strict';
import { namesEqual } from '../ondisk/fields.js';
import { DELTA_DISK_MAGIC, decodeLeader, LEADER_SIZE } from '../ondisk/leader.js';
import { HOSTID_BITMAP_OFFSET, testBit } from './delta-lease.js';
import { DEFAULT_WATCHDOG_FIRE_TIMEOUT, hostDeadSeconds, idRenewalFailSeconds, setBitmapSeconds } from './timeouts.js';

/** sanlk_host.flags values (SANLK_HOST_*). */
export const HostState = {
  UNKNOWN: 1,
  FREE: 2,
  LIVE: 3,
  FAIL: 4,
  DEAD: 5,
} as const;
export type HostStateValue = (typeof HostState)[keyof typeof HostState];

export function hostStateName(s: number): string {
  switch (s) {
    case HostState.UNKNOWN: return 'UNKNOWN';
    case HostState.FREE: return 'FREE';
    case HostState.LIVE: return 'LIVE';
    case HostState.FAIL: return 'FAIL';
    case HostState.DEAD: return 'DEAD';
    default: return String(s);
  }
}

export interface HostSlot {
  hostId: number;
  ownerId: number;
  generation: number;
  timestamp: number;
  /** N_o: the other host's io_timeout from its record */
  ioTimeout: number;
  name: string;
  /** monotonic seconds of our last renewal read that included this slot */
  lastCheck: number;
  /** first renewal read that included it */
  firstCheck: number;
  /** last time we saw (owner_id, generation, timestamp) change; 0 = never */
  lastLive: number;
  /** last time we examined our leases because of this host's bit */
  lastReq: number;
  badMagic: boolean;
  badSpace: boolean;
}

/** One row of sanlock_get_hosts(). */
export interface HostInfo {
  hostId: number;
  generation: number;
  timestamp: number;
  ioTimeout: number;
  /** HostState value */
  flags: number;
}

export interface DeliveredEvent {
  fromHostId: number;
  fromGeneration: number;
  /** write_id: generation of the target host the sender meant (0 = any) */
  generation: number;
  event: number;
  data: number;
}

export interface HostStateUpdate {
  events: DeliveredEvent[];
  /** our bit was newly seen set by these hosts (after the set_bitmap_seconds rate limit) */
  requesters: number[];
  examineRequests: boolean;
}

export interface HostStateConfig {
  ourHostId: number;
  /** our N, used when another host's record has io_timeout 0 */
  ioTimeout: number;
  spaceName?: string;
  watchdogFireTimeout?: number;
  setBitmapSeconds?: number;
}

export class HostStateTracker {
  readonly ourHostId: number;
  readonly ioTimeout: number;
  readonly spaceName: string | undefined;
  readonly watchdogFireTimeout: number;
  readonly setBitmapSeconds: number;
  /** slots remembered so far, by host_id - 1 (filled, not holey, up to max_hosts) */
  private byIndex: (HostSlot | undefined)[] = [];
  /** leader bytes of each remembered slot as last read (the changed-sector test of update) */
  private raws: (Buffer | undefined)[] = [];
  /** first_check of slots that were still empty: sanlock sets it for every slot on the first read */
  private firstUpdate = 0;

  constructor(cfg: HostStateConfig) {
    this.ourHostId = cfg.ourHostId;
    this.ioTimeout = cfg.ioTimeout;
    this.spaceName = cfg.spaceName;
    this.watchdogFireTimeout = cfg.watchdogFireTimeout ?? DEFAULT_WATCHDOG_FIRE_TIMEOUT;
    this.setBitmapSeconds = setBitmapSeconds(cfg.ioTimeout, cfg.setBitmapSeconds);
  }

  /** Feed one renewal read (the whole lockspace area). */
  update(area: Buffer, geometry: { sectorSize: number; maxHosts: number }, now: number): HostStateUpdate {
    const ss = geometry.sectorSize;
    assert.ok(area.length >= geometry.maxHosts * ss, 'renewal buffer shorter than max_hosts sectors');
    const out: HostStateUpdate = { events: [], requesters: [], examineRequests: false };
    if (!this.firstUpdate) this.firstUpdate = now;
    // filled (not holey) once, so that the scan below reads fast elements
    while (this.byIndex.length < geometry.maxHosts) {
      this.byIndex.push(undefined);
      this.raws.push(undefined);
    }
    // Word view for the empty-sector test when the buffer allows one (the daemon's reads are
    // page-aligned); only compared with zero, so byte order does not matter.
    const u32 = (area.byteOffset & 3) === 0 && (ss & 3) === 0 ? new Uint32Array(area.buffer, area.byteOffset, area.length >>> 2) : undefined;
    for (let i = 0; i < geometry.maxHosts; i++) {
      const hostId = i + 1;
      const off = i * ss;
      let s = this.byIndex[i];
      if (!s) {
        // Never-written slots stay cheap: only remember them once something appears. Tested
        // on the raw fields (owner_id, owner_generation, timestamp: u64 each, zero in all 8
        // bytes) so that the ~2000 empty sectors of each renewal read are not decoded.
        if (u32) {
          const w = off >>> 2;
          if ((u32[w + 8]! | u32[w + 9]! | u32[w + 10]! | u32[w + 11]! | u32[w + 38]! | u32[w + 39]!) === 0) continue;
        } else if (
          area.readUInt32LE(off + 32) === 0 && area.readUInt32LE(off + 36) === 0 &&
          area.readUInt32LE(off + 40) === 0 && area.readUInt32LE(off + 44) === 0 &&
          area.readUInt32LE(off + 152) === 0 && area.readUInt32LE(off + 156) === 0
        ) continue;
        s = {
          hostId, ownerId: 0, generation: 0, timestamp: 0, ioTimeout: 0, name: '',
          lastCheck: 0, firstCheck: this.firstUpdate, lastLive: 0, lastReq: 0, badMagic: false, badSpace: false,
        };
        this.byIndex[i] = s;
      }
      s.lastCheck = now;
      if (!s.firstCheck) s.firstCheck = now;
      // Same leader bytes as at the last read: everything below derives from them alone, so it
      // would change nothing (a host that stopped renewing, a slot left behind, a host with a
      // longer io_timeout between its renewals).
      let raw = this.raws[i];
      if (raw && area.compare(raw, 0, LEADER_SIZE, off, off + LEADER_SIZE) === 0) continue;
      if (!raw) {
        raw = Buffer.alloc(LEADER_SIZE);
        this.raws[i] = raw;
      }
      area.copy(raw, 0, off, off + LEADER_SIZE);
      const l = decodeLeader(area, off);
      s.badMagic = l.magic !== DELTA_DISK_MAGIC;
      s.badSpace = this.spaceName !== undefined && !namesEqual(l.spaceName, this.spaceName);
      if (s.ownerId === l.ownerId && s.generation === l.ownerGeneration && s.timestamp === l.timestamp) continue;
      s.ownerId = l.ownerId;
      s.generation = l.ownerGeneration;
      s.timestamp = l.timestamp;
      s.ioTimeout = l.ioTimeout;
      s.name = l.resourceName;
      s.lastLive = now;
      if (hostId === this.ourHostId) continue;
      if (!testBit(area, this.ourHostId, off + HOSTID_BITMAP_OFFSET)) continue;
      if (l.writeGeneration !== 0) {
        out.events.push({
          fromHostId: hostId,
          fromGeneration: l.ownerGeneration,
          generation: l.writeId,
          event: l.writeGeneration,
          data: l.writeTimestamp,
        });
      }
      if (now - s.lastReq >= this.setBitmapSeconds) {
        s.lastReq = now;
        out.requesters.push(hostId);
        out.examineRequests = true;
      }
    }
    return out;
  }

  slot(hostId: number): Readonly<HostSlot> | undefined {
    const s = this.byIndex[hostId - 1];
    return s ? { ...s } : undefined;
  }

  /** N_o of a host: its record's io_timeout, or ours when it wrote 0. */
  otherIoTimeout(hostId: number): number {
    return this.byIndex[hostId - 1]?.ioTimeout || this.ioTimeout;
  }

  state(hostId: number, now: number): HostStateValue {
    const s = this.byIndex[hostId - 1];
    if (!s || s.timestamp === 0) return HostState.FREE;
    if (hostId === this.ourHostId) return HostState.LIVE;
    const no = s.ioTimeout || this.ioTimeout;
    const last = s.lastLive || s.firstCheck;
    const since = now - last;
    const fail = idRenewalFailSeconds(no);
    if (since <= fail && s.firstCheck === s.lastLive) return HostState.UNKNOWN;
    if (since <= fail) return HostState.LIVE;
    if (since > hostDeadSeconds(no, this.watchdogFireTimeout)) return HostState.DEAD;
    return HostState.FAIL;
  }

  /** get_hosts: one host when hostId is given (even if free), else every host with timestamp ≠ 0. */
  hosts(now: number, hostId?: number): HostInfo[] {
    const row = (s: HostSlot): HostInfo => ({
      hostId: s.hostId, generation: s.generation, timestamp: s.timestamp, ioTimeout: s.ioTimeout, flags: this.state(s.hostId, now),
    });
    if (hostId !== undefined) {
      const s = this.byIndex[hostId - 1];
      if (!s) return [{ hostId, generation: 0, timestamp: 0, ioTimeout: 0, flags: HostState.FREE }];
      return [row(s)];
    }
    const out: HostInfo[] = [];
    for (const s of this.byIndex) if (s && s.timestamp !== 0) out.push(row(s));
    return out;
  }
}
