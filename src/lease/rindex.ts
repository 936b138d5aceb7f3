// Resource index operations on storage that need no lockspace: format, lookup, update and
// rebuild as `sanlock direct` runs them (SANLK_RX_NO_LOCKSPACE: no rindex_lease is taken).
// The daemon's create/delete (which do take the rindex_lease) build on these helpers.
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import { geometryFromRindexFlags, type Geometry } from '../ondisk/geometry.js';
import { buildResourceInit, buildRindexArea } from '../ondisk/init.js';
import { PAXOS_DISK_MAGIC, PAXOS_DISK_VERSION, verifyLeader, decodeLeader } from '../ondisk/leader.js';
import { namesEqual } from '../ondisk/fields.js';
import {
  decodeRindexEntry, decodeRindexHeader, encodeRindexEntry, type RindexHeader, rindexEntryFree,
  rindexEntryOffset, rindexResourceOffset, RINDEX_ENTRY_SIZE, RINDEX_LEASE_NAME, verifyRindexHeader,
} from '../ondisk/rindex.js';
import type { Disk } from '../storage/disk.js';

export interface RindexTarget {
  lockspaceName: string;
  /** absolute offset of the rindex header */
  offset: number;
}

export interface Rentry {
  /** empty = not given */
  name: string;
  /** 0 = not given */
  offset: number;
}

/** What the header read uses before the rindex's own sector size is known (sanlock: 4096). */
export const RINDEX_HEADER_READ_SIZE = 4096;

function fail(code: number, msg: string): never {
  throw new SanlockError(code, msg);
}

/**
 * `format`: the rindex area (header, no entries), then a fresh `rindex_lease` at offset + al.
 * Writes use `timeoutMs` (callers pass the 60 s init timeout).
 */
export async function rindexFormat(disk: Disk, t: RindexTarget, geometry: Geometry, timeoutMs: number, maxResources = 0): Promise<void> {
  const area = buildRindexArea({ geometry, lockspaceName: t.lockspaceName, rxOffset: t.offset, maxResources });
  await disk.write(t.offset, area, timeoutMs);
  const lease = buildResourceInit({ geometry, spaceName: t.lockspaceName, resourceName: RINDEX_LEASE_NAME });
  await disk.write(t.offset + geometry.alignSize, lease, timeoutMs);
}

export interface OpenRindex {
  header: RindexHeader;
  geometry: Geometry;
  /** the whole rindex area (header sector + entries) */
  area: Buffer;
}

/** Reads and checks the header (-274..-277), then the whole rindex area. */
export async function readRindex(disk: Disk, t: RindexTarget, timeoutMs: number): Promise<OpenRindex> {
  const first = await disk.read(t.offset, RINDEX_HEADER_READ_SIZE, timeoutMs);
  const header = decodeRindexHeader(first, 0);
  const rv = verifyRindexHeader(header, t.lockspaceName, t.offset);
  if (rv < 0) fail(rv, `rindex header at ${disk.path}:${t.offset} invalid`);
  const geometry = geometryFromRindexFlags(header.sectorSize, header.flags);
  const area = await disk.read(t.offset, geometry.alignSize, timeoutMs);
  return { header, geometry, area };
}

function maxEntries(rx: OpenRindex): number {
  const cap = (rx.geometry.alignSize - rx.geometry.sectorSize) / RINDEX_ENTRY_SIZE;
  const n = rx.header.maxResources || rx.geometry.rindexMaxEntries;
  return Math.min(n, cap);
}

/** Index of the first free entry, or of the entry named `name`; -ENOENT when none. */
export function searchEntries(rx: OpenRindex, find: { free: true } | { name: string }): number {
  const n = maxEntries(rx);
  for (let i = 0; i < n; i++) {
    const e = decodeRindexEntry(rx.area, rindexEntryOffset(i, rx.geometry.sectorSize));
    if ('free' in find) {
      if (rindexEntryFree(e)) return i;
    } else if (e.name.length > 0 && namesEqual(e.name, find.name)) {
      return i;
    }
  }
  return fail(-Errno.ENOENT, 'rindex entry not found');
}

function entryIndexFor(rx: OpenRindex, t: RindexTarget, resOffset: number): number {
  const al = rx.geometry.alignSize;
  const i = Math.floor((resOffset - t.offset - 2 * al) / al);
  if (i < 0 || i >= maxEntries(rx)) fail(-Errno.EINVAL, `offset ${resOffset} is not a resource slot of this rindex`);
  return i;
}

/**
 * `lookup`: no name and no offset → first free slot (name ''); offset only → the name recorded
 * for it; name only → its offset (-ENOENT); both → -278 SANLK_RINDEX_DIFF when they disagree.
 */
export async function rindexLookup(disk: Disk, t: RindexTarget, re: Rentry, timeoutMs: number): Promise<Rentry> {
  const rx = await readRindex(disk, t, timeoutMs);
  const al = rx.geometry.alignSize;
  if (re.offset && re.offset % al) fail(SanlkCode.SANLK_RINDEX_OFFSET, `offset ${re.offset} not aligned to ${al}`);
  const ss = rx.geometry.sectorSize;
  if (!re.name && !re.offset) {
    const i = searchEntries(rx, { free: true });
    return { name: '', offset: rindexResourceOffset(t.offset, al, i) };
  }
  if (!re.name) {
    const e = decodeRindexEntry(rx.area, rindexEntryOffset(entryIndexFor(rx, t, re.offset), ss));
    return { name: e.name, offset: re.offset };
  }
  if (!re.offset) {
    const i = searchEntries(rx, { name: re.name });
    return { name: re.name, offset: rindexResourceOffset(t.offset, al, i) };
  }
  const e = decodeRindexEntry(rx.area, rindexEntryOffset(entryIndexFor(rx, t, re.offset), ss));
  if (!namesEqual(e.name, re.name)) fail(SanlkCode.SANLK_RINDEX_DIFF, `entry at ${re.offset} is '${e.name}', not '${re.name}'`);
  return { name: e.name, offset: re.offset };
}

/** Rewrites the one sector holding entry `i` (the rest of the sector as read). */
async function writeEntry(disk: Disk, t: RindexTarget, rx: OpenRindex, i: number, name: string, resOffset: number, timeoutMs: number): Promise<void> {
  const ss = rx.geometry.sectorSize;
  const entOff = rindexEntryOffset(i, ss);
  const sectorOff = Math.floor(entOff / ss) * ss;
  const sector = Buffer.from(rx.area.subarray(sectorOff, sectorOff + ss));
  encodeRindexEntry({ resOffset, flags: 0, unused: 0, name }, sector, entOff - sectorOff);
  await disk.write(t.offset + sectorOff, sector, timeoutMs);
  sector.copy(rx.area, sectorOff);
}

/**
 * `update`: add `name` at `offset` (both required), or with `remove` clear the entry for `offset`.
 * -EINVAL when the needed parts are missing, -277 when the offset is not align-size aligned.
 */
export async function rindexUpdate(disk: Disk, t: RindexTarget, re: Rentry, remove: boolean, timeoutMs: number): Promise<Rentry> {
  const rx = await readRindex(disk, t, timeoutMs);
  const al = rx.geometry.alignSize;
  if (re.offset && re.offset % al) fail(SanlkCode.SANLK_RINDEX_OFFSET, `offset ${re.offset} not aligned to ${al}`);
  if (remove && re.offset) {
    await writeEntry(disk, t, rx, entryIndexFor(rx, t, re.offset), '', 0, timeoutMs);
    return { name: '', offset: 0 };
  }
  if (!remove && re.name && re.offset) {
    await writeEntry(disk, t, rx, entryIndexFor(rx, t, re.offset), re.name, re.offset, timeoutMs);
    return { name: re.name, offset: re.offset };
  }
  return fail(-Errno.EINVAL, 'update needs name and offset (or offset with remove)');
}

/** Is there a valid paxos lease of this lockspace at `offset`? Its name, or undefined. */
async function probeLease(disk: Disk, lockspaceName: string, offset: number, ss: number, timeoutMs: number): Promise<string | undefined | 'end'> {
  let buf: Buffer;
  try {
    buf = await disk.read(offset, ss, timeoutMs);
  } catch (e) {
    if (e instanceof SanlockError && e.code === -Errno.EMSGSIZE) return 'end';
    throw e;
  }
  const rv = verifyLeader(buf, 0, { magic: PAXOS_DISK_MAGIC, version: PAXOS_DISK_VERSION, spaceName: lockspaceName });
  return rv === 0 ? decodeLeader(buf, 0).resourceName : undefined;
}

/**
 * `rebuild`: every entry is recomputed from the leases actually present after the rindex
 * lease, up to max_resources or the end of the device; the whole area is rewritten.
 */
export async function rindexRebuild(disk: Disk, t: RindexTarget, timeoutMs: number): Promise<number> {
  const rx = await readRindex(disk, t, timeoutMs);
  const { sectorSize: ss, alignSize: al } = rx.geometry;
  rx.area.fill(0, ss);
  let found = 0;
  const n = maxEntries(rx);
  for (let i = 0; i < n; i++) {
    const off = rindexResourceOffset(t.offset, al, i);
    const name = await probeLease(disk, t.lockspaceName, off, ss, timeoutMs);
    if (name === 'end') break;
    if (name === undefined) continue;
    encodeRindexEntry({ resOffset: off, flags: 0, unused: 0, name }, rx.area, rindexEntryOffset(i, ss));
    found++;
  }
  await disk.write(t.offset, rx.area, timeoutMs);
  return found;
}
