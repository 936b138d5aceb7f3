// The daemon's view of request payload structs (spec/protocol.md §3.2, §4.1). The daemon has
// already read exactly the command's fixed payload size before it decodes, so a short buffer
// is a framing bug (assert), not peer input. On top of the client-faithful decoders in
// structs.ts it applies what sanlock's daemon does to what it receives:
//   - a disk path keeps at most SANLK_PATH_LEN-1 bytes (the daemon forces path[1023] = 0);
//   - a resource's `unused` field is not carried (replies that echo a resource send 0 there);
//   - rentry flags/unused are not carried either (rentry replies send 0 there).
//
// Exports: requestDisk, requestLockspace, requestResource (head only, disks: []),
//   requestHostEvent, requestRindex, requestRentry, requestOptions, requestKillpath.
import assert from 'node:assert';
import type { Decoded } from './header.js';
import {
  type KillpathArgs,
  PATH_LEN,
  type SanlkDisk,
  type SanlkHostEvent,
  type SanlkLockspace,
  type SanlkOptions,
  type SanlkRentry,
  type SanlkResource,
  type SanlkRindex,
  decodeDisk,
  decodeHostEvent,
  decodeKillpath,
  decodeLockspace,
  decodeOptions,
  decodeRentry,
  decodeResource,
  decodeRindex,
} from './structs.js';

function framed<T>(d: Decoded<T>): T {
  assert(d.ok, d.ok ? '' : `request payload framed short: ${d.error}`);
  return d.value;
}

function daemonDisk(d: SanlkDisk): SanlkDisk {
  return d.path.length > PATH_LEN - 1 ? { ...d, path: d.path.slice(0, PATH_LEN - 1) } : d;
}

export function requestDisk(buf: Buffer, off = 0): SanlkDisk {
  return daemonDisk(framed(decodeDisk(buf, off)));
}

export function requestLockspace(buf: Buffer, off = 0): SanlkLockspace {
  const ls = framed(decodeLockspace(buf, off));
  return { ...ls, hostIdDisk: daemonDisk(ls.hostIdDisk) };
}

/** The 128-byte head only: the daemon reads num_disks before it reads the disks (requestDisk). */
export function requestResource(buf: Buffer, off = 0): SanlkResource {
  return { ...framed(decodeResource(buf, off, false)), unused: 0 };
}

export function requestHostEvent(buf: Buffer, off = 0): SanlkHostEvent {
  return framed(decodeHostEvent(buf, off));
}

export function requestRindex(buf: Buffer, off = 0): SanlkRindex {
  const rx = framed(decodeRindex(buf, off));
  return { ...rx, disk: daemonDisk(rx.disk) };
}

export function requestRentry(buf: Buffer, off = 0): SanlkRentry {
  return { ...framed(decodeRentry(buf, off)), flags: 0, unused: 0 };
}

export function requestOptions(buf: Buffer, off = 0): SanlkOptions {
  return framed(decodeOptions(buf, off));
}

export function requestKillpath(buf: Buffer, off = 0): KillpathArgs {
  return framed(decodeKillpath(buf, off));
}
