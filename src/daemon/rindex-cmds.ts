// Resource index commands through the daemon (protocol.md §4.3 35–40, algorithms.md §4):
// format/lookup/update need no lock; create, delete and rebuild hold the lockspace's
// rindex_lease (EX) around their writes, one rindex operation per lockspace at a time.
import { Errno, SanlockError, errorCode } from '../codes.js';
import { acquireEx } from '../lease/shared-mode.js';
import {
  readRindex, rindexFormat, rindexLookup, rindexRebuild, rindexUpdate, searchEntries, type Rentry, type RindexTarget,
} from '../lease/rindex.js';
import { defaultGeometry } from '../ondisk/geometry.js';
import { buildResourceInit } from '../ondisk/init.js';
import { encodeRindexEntry, RINDEX_LEASE_NAME, rindexEntryOffset, rindexResourceOffset } from '../ondisk/rindex.js';
import type { Disk } from '../storage/disk.js';
import { IoContext } from '../storage/io-context.js';
import { systemClock } from './clock.js';
import { type LockspaceManager, sizeFlags } from './lockspace.js';
import type { ResourceManager } from './resources.js';
import type { Daemon, Request } from './server.js';
import { Cmd, encodeRentryReply, encodeStdReply, RindexFlag } from '../protocol/commands.js';
import { requestRentry, requestRindex } from '../protocol/request-structs.js';
import { RINDEX_SIZE, type SanlkRentry, type SanlkRindex } from '../protocol/structs.js';

/** The rindex (lease layer) answers name and offset; the reply's flags and unused stay 0. */
function rentryOut(e: Rentry): SanlkRentry {
  return { name: e.name, offset: e.offset, flags: 0, unused: 0 };
}

export function installRindex(daemon: Daemon, lockspaces: LockspaceManager, resources: ResourceManager): void {
  const busy = new Set<string>();
  const ioMs = 10_000;
  const initMs = daemon.cfg.writeInitIoTimeout * 1000;

  async function withDisk<T>(path: string, fn: (disk: Disk) => Promise<T>): Promise<T> {
    const ctx = new IoContext({ name: 'rindex' });
    try {
      let disk: Disk;
      try {
        disk = await ctx.open(path);
      } catch {
        throw new SanlockError(-Errno.ENODEV, `cannot open ${path}`);
      }
      return await fn(disk);
    } finally {
      await ctx.close().catch(() => {});
    }
  }

  /** Runs fn while holding rindex_lease of the (joined) lockspace. */
  async function locked<T>(rx: SanlkRindex, fn: (disk: Disk, t: RindexTarget) => Promise<T>): Promise<T> {
    const ls = lockspaces.findJoined(rx.lockspaceName);
    if (!ls) throw new SanlockError(-Errno.ENOENT, 'lockspace not joined');
    if (busy.has(ls.name)) throw new SanlockError(-Errno.EBUSY, 'rindex operation in progress');
    busy.add(ls.name);
    try {
      return await withDisk(rx.disk.path, async (disk) => {
        const t = { lockspaceName: rx.lockspaceName, offset: rx.disk.offset };
        const open = await readRindex(disk, t, ioMs);
        const lease = await resources.leaseFor(ls, rx.lockspaceName, RINDEX_LEASE_NAME, [{ path: rx.disk.path, offset: rx.disk.offset + open.geometry.alignSize, pad1: 0, pad2: 0 }]);
        await acquireEx(lease, { ownerNoWait: true });
        try {
          return await fn(disk, t);
        } finally {
          await lease.release().catch(() => {});
        }
      });
    } finally {
      busy.delete(ls.name);
    }
  }

  daemon.handle(Cmd.FORMAT_RINDEX, async (req: Request) => {
    const rx = requestRindex(req.payload);
    try {
      const g = sizeFlags(rx.flags) ?? defaultGeometry(512);
      await withDisk(rx.disk.path, (disk) => rindexFormat(disk, { lockspaceName: rx.lockspaceName, offset: rx.disk.offset }, g, initMs, rx.maxResources));
      return encodeStdReply(req.h, 0);
    } catch (err) {
      return encodeStdReply(req.h, errorCode(err));
    }
  });

  daemon.handle(Cmd.LOOKUP_RINDEX, async (req: Request) => {
    const rx = requestRindex(req.payload);
    const re = requestRentry(req.payload, RINDEX_SIZE);
    try {
      const out = await withDisk(rx.disk.path, (disk) => rindexLookup(disk, { lockspaceName: rx.lockspaceName, offset: rx.disk.offset }, re, ioMs));
      return encodeRentryReply(req.h, 0, rentryOut(out));
    } catch (err) {
      return encodeRentryReply(req.h, errorCode(err), rentryOut({ name: '', offset: 0 }));
    }
  });

  daemon.handle(Cmd.UPDATE_RINDEX, async (req: Request) => {
    const rx = requestRindex(req.payload);
    const re = requestRentry(req.payload, RINDEX_SIZE);
    try {
      const out = await withDisk(rx.disk.path, (disk) =>
        rindexUpdate(disk, { lockspaceName: rx.lockspaceName, offset: rx.disk.offset }, re, (req.h.cmdFlags & RindexFlag.RXUP_REM) !== 0, ioMs),
      );
      return encodeRentryReply(req.h, 0, rentryOut(out));
    } catch (err) {
      return encodeRentryReply(req.h, errorCode(err), re);
    }
  });

  daemon.handle(Cmd.REBUILD_RINDEX, async (req: Request) => {
    const rx = requestRindex(req.payload);
    try {
      await locked(rx, (disk, t) => rindexRebuild(disk, t, ioMs));
      return encodeStdReply(req.h, 0);
    } catch (err) {
      return encodeStdReply(req.h, errorCode(err));
    }
  });

  daemon.handle(Cmd.CREATE_RESOURCE, async (req: Request) => {
    const rx = requestRindex(req.payload);
    const re = requestRentry(req.payload, RINDEX_SIZE);
    try {
      if (!re.name) throw new SanlockError(-Errno.EINVAL, 'create needs a name');
      const out = await locked(rx, async (disk, t) => {
        const open = await readRindex(disk, t, ioMs);
        let exists = true;
        try {
          searchEntries(open, { name: re.name });
        } catch {
          exists = false;
        }
        if (exists) throw new SanlockError(-Errno.EEXIST, `${re.name} exists`);
        const i = searchEntries(open, { free: true });
        const g = open.geometry;
        const resOffset = rindexResourceOffset(t.offset, g.alignSize, i);
        await disk.write(resOffset, buildResourceInit({ geometry: g, spaceName: rx.lockspaceName, resourceName: re.name, numHosts: req.h.data2 }), initMs);
        const entOff = rindexEntryOffset(i, g.sectorSize);
        const sectorOff = Math.floor(entOff / g.sectorSize) * g.sectorSize;
        const sector = Buffer.from(open.area.subarray(sectorOff, sectorOff + g.sectorSize));
        encodeRindexEntry({ resOffset, flags: 0, unused: 0, name: re.name }, sector, entOff - sectorOff);
        await disk.write(t.offset + sectorOff, sector, ioMs);
        return { name: re.name, offset: resOffset };
      });
      return encodeRentryReply(req.h, 0, rentryOut(out));
    } catch (err) {
      return encodeRentryReply(req.h, errorCode(err), re);
    }
  });

  daemon.handle(Cmd.DELETE_RESOURCE, async (req: Request) => {
    const rx = requestRindex(req.payload);
    const re = requestRentry(req.payload, RINDEX_SIZE);
    try {
      const out = await locked(rx, async (disk, t) => {
        const found = await rindexLookup(disk, t, re, ioMs);
        if (!found.name) throw new SanlockError(-Errno.ENOENT, 'no such entry');
        const open = await readRindex(disk, t, ioMs);
        const g = open.geometry;
        await rindexUpdate(disk, t, { name: '', offset: found.offset }, true, ioMs);
        const clear = buildResourceInit({ geometry: g, spaceName: rx.lockspaceName, resourceName: found.name, clearTimestamp: systemClock.monotonicSeconds() });
        await disk.write(found.offset, clear.subarray(0, g.sectorSize), ioMs);
        return found;
      });
      return encodeRentryReply(req.h, 0, rentryOut(out));
    } catch (err) {
      return encodeRentryReply(req.h, errorCode(err), re);
    }
  });
}
