// Storage-domain calls in the way oVirt VDSM drives sanlock (clusterlock.py SANLock): the
// lockspace is the domain UUID on `ids`, the SPM lease is resource SDM in `leases`, each volume
// has a lease (resource name = volume UUID), VM leases live in `xleases`. Layouts come from
// src/ops/domain-layout.ts; these calls only talk to the daemon (ours or the real one).
//
//   const dom = await readDomain('/mnt/nfs/<sdUUID>');
//   await joinDomain(client, dom, 1);                       // add_lockspace(async) + inq wait
//   const reg = await client.register();
//   await acquireSpm(reg, dom);                              // SDM
//   await acquireVolumeLeases(reg, dom, [vol1, vol2]);       // 8 per ACQUIRE, as sanlock allows
import { hostStateName } from '../protocol/commands.js';
import type { SanlkHost } from '../protocol/structs.js';
import type { DomainLayout, LeaseSpot } from '../ops/domain-layout.js';
import { SanlockClientError } from './errors.js';
import type { AcquireOpts, Registration, ResourceArg, SanlockClient } from './index.js';

export {
  blockDomainLayout, decodeXleaseIndex, type DomainKind, type DomainLayout, type DomainOptions, fileDomainLayout, type LeaseSpot,
  MAX_HOST_ID, readDomain, RESERVED_LEASES, SDM_LEASE_NAME, SDM_LEASE_OFFSET, type VolumeLease, volumeLeaseOffset, writeDomain,
  xleaseOffset,
} from '../ops/domain-layout.js';

/** sanlock's SANLK_MAX_RESOURCES: resources one ACQUIRE/RELEASE may carry. */
export const MAX_RESOURCES_PER_CALL = 8;

const EEXIST = -17;
const ENOENT = -2;
const EAGAIN = -11;
const EINPROGRESS = -115;

/** The lockspace argument of a domain for `hostId`. */
export function domainLockspace(d: DomainLayout, hostId: number): { name: string; hostId: number; path: string; offset: number } {
  return { name: d.sdUUID, hostId, path: d.idsPath, offset: 0 };
}

export function leaseResource(d: DomainLayout, spot: LeaseSpot): ResourceArg {
  return { lockspace: d.sdUUID, name: spot.name, disks: [{ path: spot.path, offset: spot.offset }] };
}

/** The volume's lease; throws (code -2) when the domain has no such volume. */
export function volumeLease(d: DomainLayout, volume: string): LeaseSpot {
  const v = d.volumes.find((x) => x.volume === volume);
  if (!v) throw new SanlockClientError(ENOENT, 'volume lease', `no volume ${volume} in domain ${d.sdUUID}`);
  return v;
}

/** A VM lease of the xleases volume; throws (code -2) when the index has no such lease. */
export function vmLease(d: DomainLayout, id: string): LeaseSpot {
  const v = d.vmLeases.find((x) => x.name === id);
  if (!v) throw new SanlockClientError(ENOENT, 'vm lease', `no lease ${id} in ${d.xleasesPath ?? 'xleases'}`);
  return v;
}

export interface JoinOptions {
  /**
   * io_timeout for add_lockspace; default the domain's (d.ioTimeout, read from the `ids` leader
   * by readDomain), as clusterlock.py passes iotimeout=self._io_timeout. 0 would make the daemon
   * use its own default (-o, 10 s), not the value on disk, and host_dead would then be 140 s.
   */
  ioTimeout?: number;
  /** wait for the join to finish (vdsm's wait=True); default true */
  wait?: boolean;
}

/**
 * acquireHostId: add_lockspace asynchronously, then (if wait) inq_lockspace(wait). EEXIST means
 * already joined, EINPROGRESS a join under way (both fine, as in clusterlock.py). Returns whether
 * the host id is held when the call returns.
 */
export async function joinDomain(client: SanlockClient, d: DomainLayout, hostId: number, opts: JoinOptions = {}): Promise<boolean> {
  if (!Number.isInteger(hostId) || hostId < 1) throw new SanlockClientError(-22, 'join', `host id ${hostId}`);
  const ls = domainLockspace(d, hostId);
  try {
    await client.addLockspace(ls, { async: true, ioTimeout: opts.ioTimeout ?? d.ioTimeout });
  } catch (e) {
    if (!(e instanceof SanlockClientError)) throw e;
    if (e.code === EEXIST) return true;
    if (e.code !== EINPROGRESS) throw e;
  }
  if (opts.wait === false) return (await client.inqLockspace(ls)) === true;
  const joined = await client.inqLockspace(ls, { wait: true });
  if (joined !== true) throw new SanlockClientError(-1, 'join', `lockspace ${d.sdUUID} not joined`);
  return true;
}

/** releaseHostId: rem_lockspace; ENOENT (not joined) is not an error, as in clusterlock.py. */
export async function leaveDomain(client: SanlockClient, d: DomainLayout, hostId: number, opts: { unused?: boolean; wait?: boolean } = {}): Promise<void> {
  try {
    await client.remLockspace(domainLockspace(d, hostId), { async: opts.wait === false, unused: opts.unused });
  } catch (e) {
    if (!(e instanceof SanlockClientError) || e.code !== ENOENT) throw e;
  }
}

export type HostStatus = 'unknown' | 'free' | 'live' | 'fail' | 'dead' | 'unavailable';

export interface DomainHost {
  hostId: number;
  status: HostStatus;
  generation: number;
  timestamp: number;
  ioTimeout: number;
}

function hostView(h: SanlkHost): DomainHost {
  return {
    hostId: h.hostId,
    status: hostStateName(h.flags).toLowerCase() as HostStatus,
    generation: h.generation,
    timestamp: h.timestamp,
    ioTimeout: h.ioTimeout,
  };
}

/**
 * getHostStatus / hosts list: get_hosts of the domain's lockspace. While the daemon has not yet
 * read the host records (EAGAIN) or the domain is not joined (ENOENT), returns null, which vdsm
 * reports as "unavailable".
 */
export async function domainHosts(client: SanlockClient, d: DomainLayout, hostId = 0): Promise<DomainHost[] | null> {
  try {
    return (await client.getHosts(d.sdUUID, hostId)).map(hostView);
  } catch (e) {
    if (e instanceof SanlockClientError && (e.code === EAGAIN || e.code === ENOENT)) return null;
    throw e;
  }
}

/** True when `status` means the host cannot hold leases any more (clusterlock.py inquire). */
export function hostCannotHold(status: HostStatus): boolean {
  return status === 'dead' || status === 'free';
}

async function inChunks(spots: LeaseSpot[], fn: (chunk: LeaseSpot[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < spots.length; i += MAX_RESOURCES_PER_CALL) await fn(spots.slice(i, i + MAX_RESOURCES_PER_CALL));
}

/** acquireDomainLock: the SPM lease on the registered connection `reg`. */
export async function acquireSpm(reg: Registration, d: DomainLayout, opts: AcquireOpts = {}): Promise<void> {
  await reg.acquire([leaseResource(d, d.spm)], opts);
}

export async function releaseSpm(reg: Registration, d: DomainLayout): Promise<void> {
  await reg.release([leaseResource(d, d.spm)]);
}

/**
 * Volume leases for `volumes` (UUIDs), MAX_RESOURCES_PER_CALL per ACQUIRE. A failure leaves the
 * chunks acquired before it held (as separate acquires would): the caller releases or closes.
 */
export async function acquireVolumeLeases(reg: Registration, d: DomainLayout, volumes: string[], opts: AcquireOpts = {}): Promise<void> {
  const spots = volumes.map((v) => volumeLease(d, v));
  await inChunks(spots, (c) => reg.acquire(c.map((s) => leaseResource(d, s)), opts));
}

export async function releaseVolumeLeases(reg: Registration, d: DomainLayout, volumes: string[]): Promise<void> {
  const spots = volumes.map((v) => volumeLease(d, v));
  await inChunks(spots, (c) => reg.release(c.map((s) => leaseResource(d, s))));
}

export async function acquireVmLease(reg: Registration, d: DomainLayout, id: string, opts: AcquireOpts = {}): Promise<void> {
  await reg.acquire([leaseResource(d, vmLease(d, id))], opts);
}

export async function releaseVmLease(reg: Registration, d: DomainLayout, id: string): Promise<void> {
  await reg.release([leaseResource(d, vmLease(d, id))]);
}

export interface LeaseOwner {
  name: string;
  path: string;
  offset: number;
  lver: number;
  /** the owning host id, null when the lease is free (or held by a dead/free host) */
  hostId: number | null;
  /** the owner's status in this daemon's view, when the domain is joined */
  hostStatus?: HostStatus;
}

/**
 * clusterlock.py inquire(): read_resource + read_resource_owners, then the owner's state from
 * get_hosts; a generation mismatch or a dead/free owner means the lease is effectively free.
 */
export async function leaseOwner(client: SanlockClient, d: DomainLayout, spot: LeaseSpot): Promise<LeaseOwner> {
  const size = { align: d.align, sector: d.sector };
  const res = await client.readResource(spot.path, spot.offset, size);
  if (res.name !== spot.name) throw new SanlockClientError(-227, 'inquire', `resource at ${spot.path}:${spot.offset} is "${res.name}", not "${spot.name}"`);
  const { hosts } = await client.readResourceOwners(leaseResource(d, spot), size);
  const base = { name: spot.name, path: spot.path, offset: spot.offset, lver: res.lver };
  if (hosts.length === 0) return { ...base, hostId: null };
  const owner = hosts[0]!;
  const view = await domainHosts(client, d, owner.hostId);
  if (!view || view.length === 0) return { ...base, hostId: owner.hostId };
  const h = view[0]!;
  if (h.generation !== owner.generation || hostCannotHold(h.status)) return { ...base, hostId: null, hostStatus: h.status };
  return { ...base, hostId: owner.hostId, hostStatus: h.status };
}
