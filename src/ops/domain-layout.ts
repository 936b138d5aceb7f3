// oVirt VDSM storage-domain lease layouts, computed (pure) and written with our ondisk builders.
//
// Facts taken from oVirt/vdsm (lib/vdsm/storage/*), cited by file and constant name:
// - sd.py IDS/LEASES/XLEASES: the special volumes "ids", "leases", "xleases" under <sd>/dom_md
//   (file domains) or as LVs of the VG named by the domain UUID (block domains).
// - sd.py SPECIAL_VOLUME_SIZES_MIB: leases 2048, ids 8, inbox 16, outbox 16, xleases 1024 (LV sizes;
//   fileSD.py FILE_SPECIAL_VOLUME_SIZES_MIB makes ids/leases/xleases 0-sized, grown as written).
// - sd.py SDM_LEASE_NAME = 'SDM', SDM_LEASE_OFFSET = 512 * 2048: the SPM lease in `leases`.
// - clusterlock.py SANLock: the lockspace name is the domain UUID (_lockspace_name), written on
//   `ids` at offset 0 by initLock (write_lockspace + write_resource of the SDM lease, with the
//   domain's alignment and block size); MAX_HOST_ID = 250.
// - constants.py LEASE_FILEEXT = ".lease", fileVolume.py LEASE_FILEOFFSET = 0: file-domain volume
//   leases live in <sd>/images/<img>/<vol>.lease at offset 0, resource name = volume UUID.
// - blockSD.py RESERVED_LEASES = 100 and volume_lease_offset(slot) = (RESERVED_LEASES + slot) *
//   alignment: block-domain volume leases in the `leases` LV by metadata slot;
//   _first_available_slot(): 4 for domain version < 5 (slots 0-3 were domain metadata), 1 for v5.
// - constants.py ALIGNMENT_1M/2M/4M/8M, BLOCK_SIZE_512/4K; sd.py _validate_block_and_alignment:
//   versions < 5 only 512/1M; blockSD.py BlockStorageDomain supports only 512/1M.
// - xlease.py: SLOT_SIZE = 1 MiB; LOCKSPACE_BASE 0 (unused by vdsm), INDEX_BASE = SLOT_SIZE,
//   PRIVATE_RESOURCE_BASE = 2 slots, USER_RESOURCE_BASE = 3 slots; lease_offset(recnum) =
//   USER_RESOURCE_BASE + recnum * SLOT_SIZE; INDEX_SIZE = 62 * 4096, METADATA_SIZE = 512,
//   RECORD_SIZE = 64, MAX_RECORDS = (INDEX_SIZE - METADATA_SIZE) / RECORD_SIZE; INDEX_MAGIC
//   0x12152016, INDEX_VERSION 1; META_STRUCT ">i x 4s x 48s x 10s x c 440x c" (big-endian magic,
//   "%04d" version, lockspace, "%010d" mtime, updating flag 'u' or '-', newline); RECORD_STRUCT
//   "48s x 11s x 3c" (name, "%011d" offset, updating flag, reserved '-', newline); an empty record
//   is name "" offset 0. format_index writes every record empty; the xleases lockspace slot is not
//   written (sd.py format_external_leases only formats the index).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, fstatSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeLeader, DELTA_DISK_MAGIC, type Leader, PAXOS_DISK_MAGIC } from '../ondisk/leader.js';
import { geometryFor, geometryFromLeader, MIB, type Geometry } from '../ondisk/geometry.js';
import { buildLockspaceInit, buildResourceInit } from '../ondisk/init.js';
import { openDirectDisk } from '../storage/direct-disk.js';

export const SDM_LEASE_NAME = 'SDM';
export const SDM_LEASE_OFFSET = 512 * 2048;
export const RESERVED_LEASES = 100;
export const LEASE_FILEEXT = '.lease';
export const MAX_HOST_ID = 250;
export const SPECIAL_VOLUME_SIZES_MIB = { leases: 2048, ids: 8, inbox: 16, outbox: 16, xleases: 1024 } as const;
/** vdsm.conf [sanlock] io_timeout default (sd.py DEFAULT_LEASE_PARAMS IOOPTIMEOUTSEC is also 10). */
export const DEFAULT_IO_TIMEOUT = 10;

export const XLEASE_SLOT_SIZE = MIB;
export const XLEASE_INDEX_BASE = XLEASE_SLOT_SIZE;
export const XLEASE_USER_RESOURCE_BASE = 3 * XLEASE_SLOT_SIZE;
export const XLEASE_INDEX_SIZE = 62 * 4096;
export const XLEASE_METADATA_SIZE = 512;
export const XLEASE_RECORD_SIZE = 64;
export const XLEASE_MAX_RECORDS = (XLEASE_INDEX_SIZE - XLEASE_METADATA_SIZE) / XLEASE_RECORD_SIZE;
export const XLEASE_INDEX_MAGIC = 0x12152016;
export const XLEASE_INDEX_VERSION = 1;

export type DomainKind = 'file' | 'block';

export interface DomainOptions {
  sdUUID: string;
  /** sanlock alignment in bytes (1, 2, 4 or 8 MiB); default 1 MiB */
  align?: number;
  /** storage block size; default 512 */
  sector?: 512 | 4096;
  /** domain format version (4 or 5); default 5 */
  version?: 4 | 5;
  /** io_timeout written into the lockspace; default 10 as vdsm */
  ioTimeout?: number;
  /** volume UUIDs, or a count of volumes whose UUIDs are derived from the domain UUID */
  volumes?: number | string[];
  /** VM lease ids to create in xleases, or a count */
  vmLeases?: number | string[];
}

export interface LeaseSpot {
  /** sanlock resource name */
  name: string;
  path: string;
  offset: number;
}

export interface VolumeLease extends LeaseSpot {
  volume: string;
  /** file domains: image UUID and volume file */
  image?: string;
  volumePath?: string;
  /** block domains: metadata slot */
  slot?: number;
}

export interface XleaseRecord {
  name: string;
  offset: number;
  updating?: boolean;
}

export interface DomainLayout {
  kind: DomainKind;
  /** file: the domain directory <mount>/<sdUUID>; block: the VG device directory */
  root: string;
  sdUUID: string;
  align: number;
  sector: 512 | 4096;
  version: 4 | 5;
  ioTimeout: number;
  idsPath: string;
  leasesPath: string;
  /** null when the domain has no external leases volume (see xleasesNote) */
  xleasesPath: string | null;
  xleasesNote?: string;
  spm: LeaseSpot;
  volumes: VolumeLease[];
  vmLeases: LeaseSpot[];
  /** regular files to create (or check) and their minimum sizes */
  files: { path: string; size: number }[];
  dirs: string[];
}

const ALIGNMENTS = [1 * MIB, 2 * MIB, 4 * MIB, 8 * MIB];

/** A UUID-formatted name derived from `seed`, so that a layout is reproducible byte for byte. */
export function derivedUuid(seed: string): string {
  const h = createHash('sha1').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function names(spec: number | string[] | undefined, seed: string): string[] {
  if (Array.isArray(spec)) return spec;
  const n = spec ?? 0;
  return Array.from({ length: n }, (_, i) => derivedUuid(`${seed}:${i}`));
}

function checkName(what: string, n: string): void {
  // sanlock names are 48 bytes (SANLK_NAME_LEN); a full-length name loses its terminator
  if (!n || Buffer.byteLength(n) > 48) throw new RangeError(`${what} name "${n}" must be 1..48 bytes`);
}

function normalise(kind: DomainKind, o: DomainOptions): { align: number; sector: 512 | 4096; version: 4 | 5; ioTimeout: number } {
  const align = o.align ?? MIB;
  const sector = o.sector ?? 512;
  const version = o.version ?? 5;
  if (!ALIGNMENTS.includes(align)) throw new RangeError(`alignment ${align} is not 1, 2, 4 or 8 MiB`);
  if (sector !== 512 && sector !== 4096) throw new RangeError(`block size ${sector} is not 512 or 4096`);
  if (version !== 4 && version !== 5) throw new RangeError(`domain version ${version} is not 4 or 5`);
  if ((version < 5 || kind === 'block') && (align !== MIB || sector !== 512)) {
    throw new RangeError(`${kind} domain version ${version} supports only block size 512 with 1 MiB alignment`);
  }
  geometryFor(sector, align); // -230 for a pair sanlock refuses (512 with > 1 MiB)
  checkName('domain', o.sdUUID);
  return { align, sector, version, ioTimeout: o.ioTimeout ?? DEFAULT_IO_TIMEOUT };
}

/** blockSD.py volume_lease_offset */
export function volumeLeaseOffset(slot: number, align: number): number {
  return (RESERVED_LEASES + slot) * align;
}

/** blockSD.py _first_available_slot */
export function firstMetadataSlot(version: number): number {
  return version < 5 ? 4 : 1;
}

/** xlease.py lease_offset */
export function xleaseOffset(recnum: number): number {
  return XLEASE_USER_RESOURCE_BASE + recnum * XLEASE_SLOT_SIZE;
}

function xleasesFor(root: string, align: number, vmNames: string[]): { path: string | null; note?: string; leases: LeaseSpot[] } {
  if (align !== MIB) {
    // xlease.py's SLOT_SIZE is a fixed 1 MiB (vdsm notes it should follow the alignment, not
    // done there): leases of a larger alignment would overlap, so such a domain gets no xleases.
    if (vmNames.length) throw new RangeError('VM leases need 1 MiB alignment (xlease.py SLOT_SIZE is 1 MiB)');
    return { path: null, note: 'xleases not formatted: xlease.py slots are 1 MiB, smaller than this alignment', leases: [] };
  }
  if (vmNames.length > XLEASE_MAX_RECORDS) throw new RangeError(`at most ${XLEASE_MAX_RECORDS} VM leases`);
  const path = join(root, 'xleases');
  return { path, leases: vmNames.map((name, i) => ({ name, path, offset: xleaseOffset(i) })) };
}

/**
 * File domain: `mount` is the mount point; the domain lives in <mount>/<sdUUID> with dom_md/ and
 * images/<img>/<vol>{,.lease}. Special files are sized for what is written (file domains grow them).
 */
export function fileDomainLayout(mount: string, o: DomainOptions): DomainLayout {
  const n = normalise('file', o);
  const root = join(mount, o.sdUUID);
  const md = join(root, 'dom_md');
  const idsPath = join(md, 'ids');
  const leasesPath = join(md, 'leases');
  const vols = names(o.volumes, `${o.sdUUID}:volume`);
  const vms = names(o.vmLeases, `${o.sdUUID}:vm`);
  for (const v of vols) checkName('volume', v);
  for (const v of vms) checkName('VM lease', v);
  const volumes: VolumeLease[] = vols.map((volume) => {
    const image = derivedUuid(`${o.sdUUID}:image:${volume}`);
    const volumePath = join(root, 'images', image, volume);
    return { name: volume, volume, image, volumePath, path: volumePath + LEASE_FILEEXT, offset: 0 };
  });
  const x = xleasesFor(md, n.align, vms);
  const files = [
    { path: idsPath, size: n.align },
    { path: leasesPath, size: SDM_LEASE_OFFSET + n.align },
    { path: join(md, 'inbox'), size: SPECIAL_VOLUME_SIZES_MIB.inbox * MIB },
    { path: join(md, 'outbox'), size: SPECIAL_VOLUME_SIZES_MIB.outbox * MIB },
    { path: join(md, 'metadata'), size: 0 },
    ...volumes.flatMap((v) => [{ path: v.volumePath!, size: 0 }, { path: v.path, size: n.align }]),
  ];
  if (x.path) files.push({ path: x.path, size: xleaseOffset(Math.max(vms.length, 1)) });
  const dirs = [md, ...new Set(volumes.map((v) => join(root, 'images', v.image!)))];
  return layout('file', root, o.sdUUID, n, idsPath, leasesPath, x, volumes, files, dirs);
}

/**
 * Block domain: `vgDir` stands for /dev/<sdUUID>, the VG's device directory. Its `ids`, `leases`
 * and `xleases` entries may already be block devices or symlinks to LVs (used as they are, they
 * must be large enough); missing ones are created as sparse files of vdsm's LV sizes.
 */
export function blockDomainLayout(vgDir: string, o: DomainOptions): DomainLayout {
  const n = normalise('block', o);
  const idsPath = join(vgDir, 'ids');
  const leasesPath = join(vgDir, 'leases');
  const vols = names(o.volumes, `${o.sdUUID}:volume`);
  const vms = names(o.vmLeases, `${o.sdUUID}:vm`);
  for (const v of vols) checkName('volume', v);
  for (const v of vms) checkName('VM lease', v);
  const first = firstMetadataSlot(n.version);
  const volumes: VolumeLease[] = vols.map((volume, i) => ({
    name: volume,
    volume,
    slot: first + i,
    path: leasesPath,
    offset: volumeLeaseOffset(first + i, n.align),
  }));
  const leasesSize = SPECIAL_VOLUME_SIZES_MIB.leases * MIB;
  const last = volumes.at(-1);
  if (last && last.offset + n.align > leasesSize) throw new RangeError(`${vols.length} volumes do not fit in the 2 GiB leases LV`);
  const x = xleasesFor(vgDir, n.align, vms);
  const files = [
    { path: idsPath, size: SPECIAL_VOLUME_SIZES_MIB.ids * MIB },
    { path: leasesPath, size: leasesSize },
  ];
  if (x.path) files.push({ path: x.path, size: SPECIAL_VOLUME_SIZES_MIB.xleases * MIB });
  return layout('block', vgDir, o.sdUUID, n, idsPath, leasesPath, x, volumes, files, [vgDir]);
}

/** What both kinds share: the SPM lease at SDM_LEASE_OFFSET of `leases`, xleases as laid out. */
function layout(
  kind: DomainLayout['kind'],
  root: string,
  sdUUID: string,
  n: ReturnType<typeof normalise>,
  idsPath: string,
  leasesPath: string,
  x: ReturnType<typeof xleasesFor>,
  volumes: VolumeLease[],
  files: DomainLayout['files'],
  dirs: string[],
): DomainLayout {
  return {
    kind,
    root,
    sdUUID,
    ...n,
    idsPath,
    leasesPath,
    xleasesPath: x.path,
    xleasesNote: x.note,
    spm: { name: SDM_LEASE_NAME, path: leasesPath, offset: SDM_LEASE_OFFSET },
    volumes,
    vmLeases: x.leases,
    files,
    dirs,
  };
}

// ---- xleases index (xlease.py format) ----

/** The INDEX_SIZE bytes format_index leaves at INDEX_BASE, with `records` filled in order. */
export function encodeXleaseIndex(lockspace: string, records: XleaseRecord[], mtime: number, updating = false): Buffer {
  assert.ok(records.length <= XLEASE_MAX_RECORDS);
  const b = Buffer.alloc(XLEASE_INDEX_SIZE);
  b.writeInt32BE(XLEASE_INDEX_MAGIC, 0);
  b.write(String(XLEASE_INDEX_VERSION).padStart(4, '0'), 5, 'ascii');
  assert.ok(Buffer.byteLength(lockspace, 'ascii') <= 48);
  b.write(lockspace, 10, 'ascii');
  b.write(String(Math.floor(mtime)).padStart(10, '0').slice(-10), 59, 'ascii');
  b.write(updating ? 'u' : '-', 70, 'ascii');
  b.write('\n', XLEASE_METADATA_SIZE - 1, 'ascii');
  for (let i = 0; i < XLEASE_MAX_RECORDS; i++) {
    const r = records[i] ?? { name: '', offset: 0 };
    const off = XLEASE_METADATA_SIZE + i * XLEASE_RECORD_SIZE;
    b.write(r.name, off, 'ascii');
    b.write(String(r.offset).padStart(11, '0'), off + 49, 'ascii');
    b.write(r.updating ? 'u' : '-', off + 61, 'ascii');
    b.write('-', off + 62, 'ascii');
    b.write('\n', off + 63, 'ascii');
  }
  return b;
}

export interface XleaseIndex {
  lockspace: string;
  version: number;
  mtime: number;
  updating: boolean;
  /** used records: recnum, name, the offset derived from recnum (the stored one is only a hint) */
  records: { recnum: number; name: string; offset: number; updating: boolean }[];
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? len : z).toString('ascii');
}

/** Parses an index read from INDEX_BASE; throws on a bad magic or version (xlease.py InvalidMetadata). */
export function decodeXleaseIndex(b: Buffer): XleaseIndex {
  if (b.length < XLEASE_METADATA_SIZE) throw new RangeError('xleases index truncated');
  const magic = b.readInt32BE(0);
  if (magic !== XLEASE_INDEX_MAGIC) throw new RangeError(`xleases index: invalid magic 0x${(magic >>> 0).toString(16)}`);
  const version = Number(cstr(b, 5, 4));
  if (version !== XLEASE_INDEX_VERSION) throw new RangeError(`xleases index: unsupported version ${cstr(b, 5, 4)}`);
  const records: XleaseIndex['records'] = [];
  const count = Math.min(XLEASE_MAX_RECORDS, Math.floor((b.length - XLEASE_METADATA_SIZE) / XLEASE_RECORD_SIZE));
  for (let i = 0; i < count; i++) {
    const off = XLEASE_METADATA_SIZE + i * XLEASE_RECORD_SIZE;
    const name = cstr(b, off, 48);
    if (name) records.push({ recnum: i, name, offset: xleaseOffset(i), updating: b[off + 61] === 0x75 });
  }
  return { lockspace: cstr(b, 10, 48), version, mtime: Number(cstr(b, 59, 10)), updating: b[70] === 0x75, records };
}

// ---- writing ----

export interface WriteOptions {
  /** mtime stamped in the xleases index (seconds); default now */
  mtime?: number;
  /** per-write deadline */
  timeoutMs?: number;
}

function ensureFile(path: string, size: number): void {
  if (existsSync(path)) {
    const st = statSync(path);
    if (st.isBlockDevice()) return; // a real LV: its size is checked by the writes themselves
    if (st.size >= size) return;
  }
  const fd = openSync(path, existsSync(path) ? 'r+' : 'w');
  try {
    if (fstatSync(fd).size < size) ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

async function writeAt(path: string, sector: number, parts: { offset: number; buf: Buffer }[], timeoutMs: number): Promise<void> {
  const disk = await openDirectDisk(path, { sectorSize: sector });
  try {
    for (const p of parts) await disk.write(p.offset, p.buf, timeoutMs);
  } finally {
    await disk.close();
  }
}

/**
 * Creates the files and writes every lease of `layout` as vdsm does: the lockspace on ids, the
 * SDM resource, one resource per volume, the xleases index and one resource per VM lease.
 */
export async function writeDomain(layout: DomainLayout, opts: WriteOptions = {}): Promise<void> {
  const ms = opts.timeoutMs ?? 60_000;
  const g: Geometry = geometryFor(layout.sector, layout.align);
  for (const d of layout.dirs) mkdirSync(d, { recursive: true });
  for (const f of layout.files) ensureFile(f.path, f.size);
  const ls = buildLockspaceInit({ geometry: g, spaceName: layout.sdUUID, ioTimeout: layout.ioTimeout });
  // area first with host 1's magic zeroed, then sector 0, as `direct init` does
  await writeAt(layout.idsPath, g.sectorSize, [{ offset: 0, buf: ls.area }, { offset: 0, buf: ls.firstSector }], ms);
  const res = (spot: LeaseSpot) => ({ offset: spot.offset, buf: buildResourceInit({ geometry: g, spaceName: layout.sdUUID, resourceName: spot.name }) });
  const byPath = new Map<string, { offset: number; buf: Buffer }[]>();
  for (const s of [layout.spm, ...layout.volumes]) {
    const list = byPath.get(s.path) ?? [];
    list.push(res(s));
    byPath.set(s.path, list);
  }
  for (const [path, parts] of byPath) await writeAt(path, g.sectorSize, parts, ms);
  if (layout.xleasesPath) {
    const mtime = opts.mtime ?? Math.floor(Date.now() / 1000);
    const records = layout.vmLeases.map((v) => ({ name: v.name, offset: v.offset }));
    // format_index marks the index updating, writes it, then clears the flag; each VM lease is
    // then added as xlease.py add() does (record updating, resource, record done).
    await writeAt(layout.xleasesPath, g.sectorSize, [
      { offset: XLEASE_INDEX_BASE, buf: encodeXleaseIndex(layout.sdUUID, [], mtime, true) },
      { offset: XLEASE_INDEX_BASE, buf: encodeXleaseIndex(layout.sdUUID, [], mtime, false).subarray(0, XLEASE_METADATA_SIZE) },
      ...layout.vmLeases.map(res),
      { offset: XLEASE_INDEX_BASE, buf: encodeXleaseIndex(layout.sdUUID, records, mtime, false) },
    ], ms);
  }
}

// ---- discovering a domain from storage ----

async function readAt(path: string, sector: number, offset: number, len: number): Promise<Buffer> {
  const disk = await openDirectDisk(path, { sectorSize: sector, readOnly: true });
  try {
    return await disk.read(offset, len, 10_000);
  } finally {
    await disk.close();
  }
}

/** Regular files: their size; block devices: unknown here (Infinity), the reads find the end. */
function sizeOf(path: string): number {
  const st = statSync(path);
  return st.isBlockDevice() ? Number.POSITIVE_INFINITY : st.size;
}

/**
 * Reads a domain back from storage: `path` is a file domain directory (<mount>/<sdUUID>, the one
 * holding dom_md) or a block domain VG directory (holding ids and leases). The lockspace name,
 * sector size, alignment and io_timeout come from the `ids` leader; volume leases are found as
 * vdsm finds them (images/*\/*.lease, or the leases LV slots from RESERVED_LEASES on).
 */
export async function readDomain(path: string, opts: { maxSlots?: number } = {}): Promise<DomainLayout> {
  const fileKind = existsSync(join(path, 'dom_md', 'ids'));
  const kind: DomainKind = fileKind ? 'file' : 'block';
  const base = fileKind ? join(path, 'dom_md') : path;
  const idsPath = join(base, 'ids');
  const leasesPath = join(base, 'leases');
  if (!existsSync(idsPath)) throw new Error(`${path}: neither a file domain (dom_md/ids) nor a block domain directory (ids)`);
  const head = await readAt(idsPath, 512, 0, 4096).catch(() => readAt(idsPath, 4096, 0, 4096));
  const leader = decodeLeader(head, 0);
  if (leader.magic !== DELTA_DISK_MAGIC) throw new Error(`${idsPath}: no lockspace (magic 0x${leader.magic.toString(16)})`);
  const g = geometryFromLeader(leader.sectorSize, leader.flags);
  const sdUUID = leader.spaceName;
  const sector = g.sectorSize;
  const align = g.alignSize;
  const volumes: VolumeLease[] = [];
  if (fileKind) {
    const images = join(path, 'images');
    for (const img of existsSync(images) ? readdirSync(images).sort() : []) {
      for (const f of readdirSync(join(images, img)).sort()) {
        if (!f.endsWith(LEASE_FILEEXT)) continue;
        const volume = f.slice(0, -LEASE_FILEEXT.length);
        const volumePath = join(images, img, volume);
        volumes.push({ name: volume, volume, image: img, volumePath, path: volumePath + LEASE_FILEEXT, offset: 0 });
      }
    }
  } else {
    const size = sizeOf(leasesPath);
    const maxSlots = opts.maxSlots ?? 2048;
    for (let slot = 1; slot < maxSlots; slot++) {
      const offset = volumeLeaseOffset(slot, align);
      if (offset + sector > size) break;
      let l: Leader;
      try {
        l = decodeLeader(await readAt(leasesPath, sector, offset, sector), 0);
      } catch {
        break; // past the end of a block device
      }
      if (l.magic !== PAXOS_DISK_MAGIC) {
        if (slot >= 4) break; // v5 starts at 1, v4 at 4: past the start a hole ends the volumes
        continue;
      }
      volumes.push({ name: l.resourceName, volume: l.resourceName, slot, path: leasesPath, offset });
    }
  }
  const version: 4 | 5 = kind === 'block' && volumes[0]?.slot !== undefined && volumes[0].slot >= 4 ? 4 : 5;
  const xPath = join(base, 'xleases');
  let xleasesPath: string | null = null;
  const vmLeases: LeaseSpot[] = [];
  if (existsSync(xPath) && sizeOf(xPath) >= XLEASE_INDEX_BASE + XLEASE_INDEX_SIZE) {
    try {
      const idx = decodeXleaseIndex(await readAt(xPath, sector, XLEASE_INDEX_BASE, XLEASE_INDEX_SIZE));
      xleasesPath = xPath;
      for (const r of idx.records) if (!r.updating) vmLeases.push({ name: r.name, path: xPath, offset: r.offset });
    } catch {
      // an unformatted xleases volume: the domain simply has no VM leases
    }
  }
  return {
    kind,
    root: path,
    sdUUID,
    align,
    sector: sector as 512 | 4096,
    version,
    ioTimeout: leader.ioTimeout,
    idsPath,
    leasesPath,
    xleasesPath,
    spm: { name: SDM_LEASE_NAME, path: leasesPath, offset: SDM_LEASE_OFFSET },
    volumes,
    vmLeases,
    files: [],
    dirs: [],
  };
}
