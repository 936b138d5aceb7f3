// Request builders: the exact bytes libsanlock / python3-sanlock put on the socket for each
// call (spec/protocol.md §4.3, §11). Pure; used by the client library and by the replay tests.
import type { SmHeader } from '../protocol/header.js';
import { Cmd, encodeRequest } from '../protocol/commands.js';
import {
  type KillpathArgs,
  type SanlkDisk,
  type SanlkHostEvent,
  type SanlkLockspace,
  type SanlkOptions,
  type SanlkRentry,
  type SanlkResource,
  type SanlkRindex,
  emptyHostEvent,
  emptyOptions,
  encodeDisk,
  encodeHostEvent,
  encodeKillpath,
  encodeLockspace,
  encodeOptions,
  encodeRentry,
  encodeResource,
  encodeRindex,
} from '../protocol/structs.js';

type Fields = Partial<Omit<SmHeader, 'cmd'>>;

export function reqNoPayload(cmd: number, fields: Fields = {}): Buffer {
  return encodeRequest(cmd, fields);
}

export function reqLockspace(cmd: number, ls: SanlkLockspace, fields: Fields = {}): Buffer {
  return encodeRequest(cmd, fields, [encodeLockspace(ls)]);
}

export function reqLockspaceEvent(cmd: number, ls: SanlkLockspace, he: SanlkHostEvent = emptyHostEvent(), fields: Fields = {}): Buffer {
  return encodeRequest(cmd, fields, [encodeLockspace(ls), encodeHostEvent(he)]);
}

/** Resource followed by its disks (REQUEST, WRITE_RESOURCE, READ_RESOURCE, READ_RESOURCE_OWNERS). */
export function reqResourceDisks(cmd: number, res: SanlkResource, fields: Fields = {}): Buffer {
  return encodeRequest(cmd, fields, [encodeResource(res, true)]);
}

/** Resource struct only (EXAMINE_RESOURCE, CONVERT, GET_LVB). */
export function reqResource(cmd: number, res: SanlkResource, fields: Fields = {}): Buffer {
  return encodeRequest(cmd, fields, [encodeResource(res, false)]);
}

export function reqAcquire(resources: SanlkResource[], opts: SanlkOptions = emptyOptions(), flags = 0, data2 = -1): Buffer {
  return encodeRequest(Cmd.ACQUIRE, { cmdFlags: flags, data: resources.length, data2 }, [
    ...resources.map((r) => encodeResource(r, true)),
    encodeOptions(opts),
  ]);
}

/** RELEASE sends the resource structs without their disks, even when num_disks > 0. */
export function reqRelease(resources: SanlkResource[], flags = 0, data2 = -1): Buffer {
  return encodeRequest(Cmd.RELEASE, { cmdFlags: flags, data: resources.length, data2 }, resources.map((r) => encodeResource(r, false)));
}

export function reqSetLvb(res: SanlkResource, lvb: Buffer): Buffer {
  return encodeRequest(Cmd.SET_LVB, {}, [encodeResource(res, false), lvb]);
}

export function reqKillpath(k: KillpathArgs, flags = 0): Buffer {
  return encodeRequest(Cmd.KILLPATH, { cmdFlags: flags, data2: -1 }, [encodeKillpath(k)]);
}

export function reqAlign(disk: SanlkDisk): Buffer {
  return encodeRequest(Cmd.ALIGN, {}, [encodeDisk(disk)]);
}

export function reqRindex(cmd: number, rx: SanlkRindex, fields: Fields = {}): Buffer {
  return encodeRequest(cmd, fields, [encodeRindex(rx)]);
}

export function reqRindexEntry(cmd: number, rx: SanlkRindex, re: SanlkRentry, fields: Fields = {}): Buffer {
  return encodeRequest(cmd, fields, [encodeRindex(rx), encodeRentry(re)]);
}

/**
 * Escapes killpath arguments as python3-sanlock does: every space and backslash gets a `\`
 * prefix, arguments joined by single spaces.
 */
export function joinKillArgs(args: string[]): string {
  return args.map((a) => a.replace(/([ \\])/g, '\\$1')).join(' ');
}
