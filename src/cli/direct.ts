// `sanlock direct <action>`: reads and writes lease storage without a daemon. Arguments,
// stdout text and exit status follow sanlock 3.8.5 (spec/cli.md §5), checked against the real
// binary; every message goes to stdout.
import { Errno, SanlkCode, SanlockError } from '../codes.js';
import { bitmapHostIds } from '../ondisk/delta-sector.js';
import { defaultGeometry, type Geometry, geometryFor, geometryFromLeader, MIB } from '../ondisk/geometry.js';
import { buildLockspaceInit, buildResourceInit } from '../ondisk/init.js';
import {
  DELTA_DISK_MAGIC, DELTA_DISK_VERSION, LEADER_COMPARE_LEN, LEADER_SIZE, PAXOS_DISK_MAGIC, PAXOS_DISK_VERSION, verifyLeader,
} from '../ondisk/leader.js';
import { MBLOCK_OFFSET, MBLOCK_SHARED } from '../ondisk/dblock.js';
import { decodeRindexEntry, decodeRindexHeader, RINDEX_DISK_MAGIC, RINDEX_ENTRY_SIZE } from '../ondisk/rindex.js';
import { rindexFormat, rindexLookup, rindexRebuild, rindexUpdate } from '../lease/rindex.js';
import type { Disk } from '../storage/disk.js';
import {
  CliUsageError, DUMP_OFFSET_WARNING, type LockspaceArg, parseDumpTarget, parseSanlockOptions, type ResourceArg,
  type SanlockOptions,
} from './args.js';
import { USAGE_TEXT } from './usage.js';

/** sanlock's write_init_io_timeout: init and format writes may take this long. */
export const WRITE_INIT_IO_TIMEOUT_MS = 60_000;

/** A disk as `direct` needs it: the Disk interface plus the sector size the device reports. */
export type DirectDiskHandle = Disk & { readonly sectorSize: number };

export interface DirectEnv {
  /** receives stdout text; strings are byte strings (latin1) so on-disk names pass unchanged */
  write(s: string): void;
  openDisk(path: string, opts: { readOnly?: boolean; sectorSize?: number }): Promise<DirectDiskHandle>;
  /** monotonic seconds (for `init -z`'s write_timestamp) */
  monotonicSeconds(): number;
}

const ACTIONS = new Set([
  'init', 'dump', 'next_free', 'read_leader', 'write_leader', 'acquire', 'release', 'acquire_id', 'release_id',
  'renew_id', 'format', 'rebuild', 'lookup', 'update',
]);

/** argv words as byte strings: each UTF-8 byte becomes one latin1 char, as C sees them. */
function toBytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** A byte-string path back to the file-system name. */
function fsPath(p: string): string {
  return Buffer.from(p, 'latin1').toString('utf8');
}

async function defaultEnv(): Promise<DirectEnv> {
  const { openDirectDisk } = await import('../storage/direct-disk.js');
  return {
    write(s) { process.stdout.write(Buffer.from(s, 'latin1')); },
    openDisk: (path, opts) => openDirectDisk(path, opts),
    monotonicSeconds: () => Number(process.hrtime.bigint() / 1_000_000_000n),
  };
}

function codeOf(e: unknown): number {
  if (e instanceof SanlockError) return e.code;
  throw e;
}

/** Runs `sanlock direct <args>`; returns the exit status. */
export async function runDirect(args: string[], envIn?: Partial<DirectEnv>): Promise<number> {
  const env: DirectEnv = { ...(await defaultEnv()), ...envIn };
  const argv = args.map(toBytes);
  const action = argv[0];
  if (action === undefined) {
    env.write(USAGE_TEXT);
    return 1;
  }
  if (!ACTIONS.has(action)) {
    env.write(`direct action "${action}" is unknown\n`);
    return 1;
  }
  let rest = argv.slice(1);
  let dumpPath: string | undefined;
  if (action === 'dump' || action === 'next_free') {
    if (rest.length < 1) return 1;
    dumpPath = rest[0];
    rest = rest.slice(1);
  }
  let o: SanlockOptions;
  try {
    o = parseSanlockOptions(rest, 'direct', action);
  } catch (e) {
    if (e instanceof CliUsageError) {
      env.write(e.lines.map((l) => `${l}\n`).join(''));
      return e.exitCode;
    }
    throw e;
  }
  for (const m of o.messages) env.write(`${m}\n`);

  let rv: number;
  switch (action) {
    case 'init': rv = await doInit(env, o); break;
    case 'read_leader': rv = await doReadLeader(env, o); break;
    case 'dump': rv = await doDump(env, o, dumpPath!); break;
    case 'format': rv = await doFormat(env, o); break;
    case 'lookup': rv = await doLookup(env, o); break;
    case 'update': rv = await doUpdate(env, o); break;
    case 'rebuild': rv = await doRebuild(env, o); break;
    default:
      // next_free, write_leader, acquire, release, acquire_id, release_id, renew_id: debugging
      // actions of sanlock that sanlock-ts does not provide.
      env.write(`direct action "${action}" is not supported by sanlock-ts\n`);
      rv = -1;
  }
  return rv === 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------

/**
 * Geometry for init/format from -Z/-A: a valid pair → it; -Z 512/4096 alone → -1 (sanlock's
 * sizes_from_flags failure); nothing (or a -Z sanlock ignores) → undefined = use the device's.
 */
function requestedGeometry(o: SanlockOptions): Geometry | undefined | -1 {
  const ss = o.sectorSize;
  if (o.alignSize) return geometryFor(ss, o.alignSize);
  if (ss === 512 || ss === 4096) return -1;
  return undefined;
}

async function withDisk<T>(env: DirectEnv, path: string, opts: { readOnly?: boolean; sectorSize?: number }, onOpenError: (code: number) => T, body: (d: DirectDiskHandle) => Promise<T>): Promise<T> {
  let disk: DirectDiskHandle;
  try {
    disk = await env.openDisk(fsPath(path), opts);
  } catch (e) {
    return onOpenError(codeOf(e));
  }
  try {
    return await body(disk);
  } finally {
    await disk.close();
  }
}

async function initLockspace(env: DirectEnv, o: SanlockOptions, ls: LockspaceArg): Promise<number> {
  const req = requestedGeometry(o);
  if (req === -1) return -1;
  return withDisk(env, ls.path, {}, () => -Errno.ENODEV, async (disk) => {
    const geometry = req ?? defaultGeometry(disk.sectorSize);
    const img = buildLockspaceInit({ geometry, spaceName: ls.name, ioTimeout: o.ioTimeout });
    try {
      // Area first with host 1's magic zeroed, then sector 0: a torn init is never a valid lockspace.
      await disk.write(ls.offset, img.area, WRITE_INIT_IO_TIMEOUT_MS);
      await disk.write(ls.offset, img.firstSector, WRITE_INIT_IO_TIMEOUT_MS);
    } catch (e) {
      return codeOf(e);
    }
    return 0;
  });
}

async function initResource(env: DirectEnv, o: SanlockOptions, res: ResourceArg): Promise<number> {
  if (res.disks.length === 0 || !res.disks[0]!.path) return -Errno.ENODEV;
  const req = requestedGeometry(o);
  if (req === -1) return -1;
  const disks: DirectDiskHandle[] = [];
  try {
    for (const d of res.disks) {
      try {
        disks.push(await env.openDisk(fsPath(d.path), {}));
      } catch (e) {
        return codeOf(e);
      }
    }
    const geometry = req ?? defaultGeometry(disks[0]!.sectorSize);
    const area = buildResourceInit({
      geometry,
      spaceName: res.lockspaceName,
      resourceName: res.name,
      numHosts: o.numHosts,
      clearTimestamp: o.clear ? env.monotonicSeconds() : undefined,
    });
    for (let i = 0; i < disks.length; i++) {
      try {
        await disks[i]!.write(res.disks[i]!.offset, area, WRITE_INIT_IO_TIMEOUT_MS);
      } catch (e) {
        return codeOf(e);
      }
    }
    return 0;
  } finally {
    for (const d of disks) await d.close();
  }
}

async function doInit(env: DirectEnv, o: SanlockOptions): Promise<number> {
  let rv: number;
  if (o.lockspace?.path) rv = await initLockspace(env, o, o.lockspace);
  else if (o.resources[0]) rv = await initResource(env, o, o.resources[0]);
  else rv = -Errno.EINVAL;
  env.write(`init done ${rv}\n`);
  return rv;
}

// ---------------------------------------------------------------------------------------------
// read_leader

/** The 17 lines sanlock prints for a leader (u64 fields printed exactly, as %llu). */
function leaderText(b: Buffer, isLockspace: boolean): string {
  const u32 = (o: number) => b.readUInt32LE(o);
  const u64 = (o: number) => b.readBigUInt64LE(o).toString();
  const name = (o: number) => {
    const end = b.indexOf(0, o);
    return b.toString('latin1', o, end === -1 || end > o + 48 ? o + 48 : end);
  };
  const lines = [
    `magic 0x${u32(0).toString(16)}`,
    `version 0x${u32(4).toString(16)}`,
    `flags 0x${u32(8).toString(16)}`,
    `sector_size ${u32(12)}`,
    `num_hosts ${u64(16)}`,
    `max_hosts ${u64(24)}`,
    `owner_id ${u64(32)}`,
    `owner_generation ${u64(40)}`,
    `lver ${u64(48)}`,
    `space_name ${name(56)}`,
    `resource_name ${name(104)}`,
    `timestamp ${u64(152)}`,
    `checksum 0x${u32(168).toString(16)}`,
    `io_timeout ${b.readUInt16LE(174)}`,
  ];
  const [a, g, t] = isLockspace ? ['extra1', 'extra2', 'extra3'] : ['write_id', 'write_generation', 'write_timestamp'];
  lines.push(`${a} ${u64(176)}`, `${g} ${u64(184)}`, `${t} ${u64(192)}`);
  return lines.map((l) => `${l}\n`).join('');
}

/** sector/align size of the lease at `offset` from its first leader (direct_read_leader_sizes). */
async function readLeaderSizes(disk: Disk, offset: number): Promise<{ sectorSize: number; alignSize: number } | number> {
  let b: Buffer;
  try {
    b = await disk.read(offset, 4096, 10_000);
  } catch (e) {
    return codeOf(e);
  }
  const magic = b.readUInt32LE(0);
  if (magic !== DELTA_DISK_MAGIC && magic !== PAXOS_DISK_MAGIC) return -1;
  const sectorSize = b.readUInt32LE(12);
  try {
    return { sectorSize, alignSize: geometryFromLeader(sectorSize, b.readUInt32LE(8)).alignSize };
  } catch {
    // a leader with an unknown sector size: sanlock would go on with it and fail the read
    return { sectorSize, alignSize: sectorSize === 4096 ? 8 * MIB : MIB };
  }
}

async function readDeltaLeader(env: DirectEnv, o: SanlockOptions, ls: LockspaceArg, leader: Buffer): Promise<number> {
  if (ls.hostId === 0) return -Errno.EINVAL;
  return withDisk(env, ls.path, { readOnly: true }, () => -Errno.ENODEV, async (disk) => {
    let ss = o.alignSize ? o.sectorSize : 0;
    if (!ss) {
      const sizes = await readLeaderSizes(disk, ls.offset);
      if (typeof sizes === 'number') return sizes;
      ss = sizes.sectorSize;
    }
    if (ss !== 512 && ss !== 4096) return -Errno.EINVAL;
    let b: Buffer;
    try {
      b = await disk.read(ls.offset + (ls.hostId - 1) * ss, ss, o.ioTimeout * 1000);
    } catch (e) {
      return codeOf(e);
    }
    b.copy(leader, 0, 0, LEADER_SIZE);
    return verifyLeader(b, 0, { magic: DELTA_DISK_MAGIC, version: DELTA_DISK_VERSION, spaceName: ls.name });
  });
}

async function readPaxosLeader(env: DirectEnv, o: SanlockOptions, res: ResourceArg, leader: Buffer): Promise<number> {
  if (res.disks.length === 0 || !res.disks[0]!.path) return -Errno.ENODEV;
  // sanlock reads the leader with -Z's sector size or 4096 when none was given.
  const ss = o.sectorSize === 512 || o.sectorSize === 4096 ? o.sectorSize : 4096;
  const expect = { magic: PAXOS_DISK_MAGIC, version: PAXOS_DISK_VERSION, spaceName: res.lockspaceName, resourceName: res.name };
  const disks: DirectDiskHandle[] = [];
  try {
    for (const d of res.disks) {
      try {
        disks.push(await env.openDisk(fsPath(d.path), { readOnly: true }));
      } catch (e) {
        return codeOf(e);
      }
    }
    const reads: Array<{ rv: number; buf?: Buffer }> = [];
    for (let i = 0; i < disks.length; i++) {
      try {
        const b = await disks[i]!.read(res.disks[i]!.offset, ss, o.ioTimeout * 1000);
        reads.push({ rv: verifyLeader(b, 0, expect), buf: b });
      } catch (e) {
        reads.push({ rv: codeOf(e) });
      }
    }
    if (reads.length === 1) {
      reads[0]!.buf?.copy(leader, 0, 0, LEADER_SIZE);
      return reads[0]!.rv;
    }
    // Several disks: a majority must hold valid leaders (-220), and a majority the same one (-222).
    const majority = Math.floor(reads.length / 2) + 1;
    const valid = reads.filter((r) => r.rv === 0).map((r) => r.buf!);
    if (valid.length < majority) return SanlkCode.SANLK_LEADER_READ;
    for (const cand of valid) {
      const same = valid.filter((b) => b.subarray(0, LEADER_COMPARE_LEN).equals(cand.subarray(0, LEADER_COMPARE_LEN))).length;
      if (same >= majority) {
        cand.copy(leader, 0, 0, LEADER_SIZE);
        return 0;
      }
    }
    return SanlkCode.SANLK_LEADER_DIFF;
  } finally {
    for (const d of disks) await d.close();
  }
}

async function doReadLeader(env: DirectEnv, o: SanlockOptions): Promise<number> {
  // sanlock prints its uninitialised stack record when nothing was read; we print zeros.
  const leader = Buffer.alloc(LEADER_SIZE);
  const res = o.resources[0];
  let rv: number;
  if (o.lockspace?.path) rv = await readDeltaLeader(env, o, o.lockspace, leader);
  else if (res) rv = await readPaxosLeader(env, o, res, leader);
  else rv = -1;
  env.write(`read_leader done ${rv}\n`);
  env.write(leaderText(leader, !res));
  return rv;
}

// ---------------------------------------------------------------------------------------------
// dump

const pad = (s: string, w: number) => (s.length >= w ? s : ' '.repeat(w - s.length) + s);
const zpad = (n: bigint | number, w: number) => {
  const s = n.toString();
  return s.length >= w ? s : '0'.repeat(w - s.length) + s;
};

function cname(b: Buffer, off: number): string {
  const end = b.indexOf(0, off);
  return b.toString('latin1', off, end === -1 || end > off + 48 ? off + 48 : end);
}

async function doDump(env: DirectEnv, o: SanlockOptions, target: string): Promise<number> {
  const t = parseDumpTarget(target);
  if (t.offset % MIB) env.write(`${DUMP_OFFSET_WARNING}\n`);
  const forceMode = o.forceMode;
  return withDisk(env, t.path, { readOnly: true }, () => {
    env.write(`Device ${t.path} not found.\n`);
    return -Errno.ENODEV;
  }, async (disk) => {
    let ss = o.sectorSize;
    let al = o.alignSize;
    if (!ss || !al) {
      let off = t.offset;
      let found = false;
      for (let i = 0; i < 1024; i++) {
        const sizes = await readLeaderSizes(disk, off);
        if (typeof sizes !== 'number') {
          ss = sizes.sectorSize;
          al = sizes.alignSize;
          found = true;
          break;
        }
        off += MIB;
        if (t.size && off >= t.offset + t.size) break;
      }
      if (!found) {
        env.write('Cannot find sector_size and align_size, set with -A and -Z.\n');
        return -1;
      }
    }
    if ((ss !== 512 && ss !== 4096) || al % ss) return -Errno.EINVAL;
    const maxHosts = Math.min(2000, al / ss);
    const sectorCount = al / ss;
    let out = `${pad('offset', 8)} ${pad('lockspace', 36)} ${pad('resource', 48)} ${pad('timestamp', 10)} ${pad('own', 4)} ${pad('gen', 4)} lver`;
    if (forceMode) out += '/req/mode';
    env.write(`${out}\n`);
    const endSector = t.size ? Math.floor(t.size / ss) : 0;
    for (let sectorNr = 0; endSector === 0 || sectorNr < endSector; sectorNr += sectorCount) {
      const base = t.offset + sectorNr * ss;
      let data: Buffer;
      try {
        data = await disk.read(base, al, 10_000);
      } catch {
        // sanlock ignores the read result: the zeroed first sector ends the scan below
        data = Buffer.alloc(al);
      }
      const magic = data.readUInt32LE(0);
      const lines: string[] = [];
      if (magic === DELTA_DISK_MAGIC) {
        for (let i = 0; i < sectorCount; i++) {
          const so = i * ss;
          if (data.readUInt32LE(so) === 0) continue;
          const owner = data.readBigUInt64LE(so + 32);
          const gen = data.readBigUInt64LE(so + 40);
          if (owner === 0n && gen === 0n) continue;
          let line = `${zpad(base + i * ss, 8)} ${pad(cname(data, so + 56), 36)} ${pad(cname(data, so + 104), 48)} ${zpad(data.readBigUInt64LE(so + 152), 10)} ${zpad(owner, 4)} ${zpad(gen, 4)}`;
          if (forceMode) for (const h of bitmapHostIds(data, so, maxHosts)) line += ` ${h}`;
          lines.push(line);
        }
      } else if (magic === PAXOS_DISK_MAGIC) {
        let line = `${zpad(base, 8)} ${pad(cname(data, 56), 36)} ${pad(cname(data, 104), 48)} ${zpad(data.readBigUInt64LE(152), 10)} ${zpad(data.readBigUInt64LE(32), 4)} ${zpad(data.readBigUInt64LE(40), 4)} ${data.readBigUInt64LE(48)}`;
        if (forceMode) line += `/${data.readBigUInt64LE(ss + 8)}/${data.readUInt32LE(ss + 16)}`;
        lines.push(line);
        // num_hosts comes from disk; never look past the area we read.
        const numHosts = Number(BigInt.asUintN(32, data.readBigUInt64LE(16)));
        const n = Math.min(numHosts, sectorCount - 2);
        for (let i = 0; i < n; i++) {
          const pd = (2 + i) * ss;
          if (forceMode > 1) {
            const mbal = data.readBigUInt64LE(pd);
            const inp = data.readBigUInt64LE(pd + 16);
            const lver = data.readBigUInt64LE(pd + 40);
            if (mbal || inp || lver) {
              lines.push(`dblock[${zpad(i, 4)}] mbal ${mbal} bal ${data.readBigUInt64LE(pd + 8)} inp ${inp} inp2 ${data.readBigUInt64LE(pd + 24)} inp3 ${data.readBigUInt64LE(pd + 32)} lver ${lver} sum ${data.readUInt32LE(pd + 48).toString(16)}`);
            }
          }
          if (!(data.readUInt32LE(pd + MBLOCK_OFFSET) & MBLOCK_SHARED)) continue;
          lines.push(`${' '.repeat(106)}${zpad(i + 1, 4)} ${zpad(data.readBigUInt64LE(pd + MBLOCK_OFFSET + 8), 4)} SH`);
        }
      } else if (magic === RINDEX_DISK_MAGIC) {
        const h = decodeRindexHeader(data, 0);
        const sname = cname(data, 32);
        lines.push(`${zpad(base, 8)} ${pad(sname, 36)} rindex_header 0x${h.flags.toString(16)} ${h.sectorSize | 0} ${h.maxResources} ${data.readBigUInt64LE(24)}`);
        if (forceMode) {
          const perSector = ss / RINDEX_ENTRY_SIZE;
          for (let i = 1; i < sectorCount; i++) {
            for (let j = 0; j < perSector; j++) {
              const eo = i * ss + j * RINDEX_ENTRY_SIZE;
              const e = decodeRindexEntry(data, eo);
              if (!e.resOffset && !e.name) continue;
              lines.push(`${zpad(base + eo, 8)} ${pad(sname, 36)} rentry ${cname(data, eo + 16)} ${data.readBigUInt64LE(eo)}`);
            }
          }
        }
      } else if (endSector === 0) {
        break;
      }
      if (lines.length) env.write(lines.map((l) => `${l}\n`).join(''));
    }
    return 0;
  });
}

// ---------------------------------------------------------------------------------------------
// rindex actions

async function doFormat(env: DirectEnv, o: SanlockOptions): Promise<number> {
  const rx = o.rindex ?? { lockspaceName: '', path: '', offset: 0 };
  const req = requestedGeometry(o);
  let rv: number;
  if (req === -1) rv = -1;
  else {
    rv = await withDisk(env, rx.path, {}, (c) => c, async (disk) => {
      const geometry = req ?? defaultGeometry(disk.sectorSize);
      try {
        await rindexFormat(disk, { lockspaceName: rx.lockspaceName, offset: rx.offset }, geometry, WRITE_INIT_IO_TIMEOUT_MS);
        return 0;
      } catch (e) {
        return codeOf(e);
      }
    });
  }
  env.write(`format done ${rv}\n`);
  return rv;
}

async function rindexAction<T>(env: DirectEnv, o: SanlockOptions, body: (disk: Disk, t: { lockspaceName: string; offset: number }) => Promise<T>): Promise<{ rv: number; value?: T }> {
  const rx = o.rindex ?? { lockspaceName: '', path: '', offset: 0 };
  return withDisk(env, rx.path, {}, (c) => ({ rv: c }), async (disk) => {
    try {
      const value = await body(disk, { lockspaceName: rx.lockspaceName, offset: rx.offset });
      return { rv: 0, value };
    } catch (e) {
      return { rv: codeOf(e) };
    }
  });
}

async function doLookup(env: DirectEnv, o: SanlockOptions): Promise<number> {
  const re = o.rentry ?? { name: '', offset: 0 };
  const { rv, value } = await rindexAction(env, o, (disk, t) => rindexLookup(disk, t, re, 10_000));
  env.write(`lookup done ${rv}\n`);
  if (rv === 0 && value) env.write(`name ${value.name || '-'} offset ${value.offset}\n`);
  return rv;
}

async function doUpdate(env: DirectEnv, o: SanlockOptions): Promise<number> {
  const re = o.rentry ?? { name: '', offset: 0 };
  const { rv } = await rindexAction(env, o, (disk, t) => rindexUpdate(disk, t, re, o.clear, 10_000));
  env.write(`update done ${rv}\n`);
  return rv;
}

async function doRebuild(env: DirectEnv, o: SanlockOptions): Promise<number> {
  const { rv } = await rindexAction(env, o, (disk, t) => rindexRebuild(disk, t, 10_000));
  env.write(`rebuild done ${rv}\n`);
  return rv;
}

