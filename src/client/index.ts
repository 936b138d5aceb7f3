// sanlock-ts client library: talks sanlock's wire protocol to a sanlock daemon (the real one
// or ours) over $SANLOCK_RUN_DIR/sanlock.sock, like libsanlock / python3-sanlock.
//
//   import { connect } from 'sanlock-ts';
//   const sl = await connect();                       // checks the daemon answers VERSION
//   await sl.addLockspace({ name: 'LS', hostId: 1, path: '/dev/vg/ids' }, { ioTimeout: 10 });
//   const reg = await sl.register();                 // a registered connection = lease owner
//   await reg.acquire(['LS:R1:/dev/vg/leases:1048576']);
//   console.log(await reg.inquire());
//   await reg.release(['LS:R1']);  reg.close();
//
// Every call except those on a Registration opens its own connection, as libsanlock does.
// Failures throw SanlockClientError { code (sanlock's number), codeName, sentence, op }.
// `call()` is the raw escape hatch: it returns the decoded reply without judging the result.
import { Cmd, ForceMode, RequestFlag, ResFlag, alignSizeToFlag, sectorSizeToFlag } from '../protocol/commands.js';
import { HEADER_SIZE, type SmHeader, decodeHeader } from '../protocol/header.js';
import { type Reply, type StateRecord, decodeReply, decodeStateStream, replyPayloadSize } from '../protocol/replies.js';
import { strToLockspace, strToRes, stateToArgs } from '../protocol/state-strings.js';
import {
  EVENT_CB_SIZE,
  type EventCb,
  type SanlkHost,
  type SanlkHostEvent,
  type SanlkLockspace,
  type SanlkRentry,
  type SanlkResource,
  type SanlkRindex,
  decodeEventCb,
  emptyDisk,
  emptyHostEvent,
  emptyLockspace,
  emptyOptions,
} from '../protocol/structs.js';
import { Conn } from './conn.js';
import { SanlockClientError } from './errors.js';
import * as rq from './requests.js';
import { retryWhileBusy } from './wait.js';

export { SanlockClientError, resultSentence, strerror } from './errors.js';
export { BUSY_CODES, retryWhileBusy, type WaitOptions } from './wait.js';
export type { EventCb, SanlkHost, SanlkHostEvent, SanlkLockspace, SanlkRentry, SanlkResource, SanlkRindex } from '../protocol/structs.js';
export type { Reply, StateRecord } from '../protocol/replies.js';
export {
  AcquireFlag,
  Cmd,
  ConfigCmd,
  ForceMode,
  HostState,
  LsFlag,
  ReleaseFlag,
  ResFlag,
  RestrictFlag,
  SetEventFlag,
  hostStateName,
} from '../protocol/commands.js';

export const DEFAULT_RUN_DIR = '/run/sanlock';

/** The socket path libsanlock would use: $SANLOCK_RUN_DIR/sanlock.sock. */
export function socketPath(runDir = process.env.SANLOCK_RUN_DIR || DEFAULT_RUN_DIR): string {
  return `${runDir}/sanlock.sock`;
}

export interface ConnectOptions {
  /** Run directory holding sanlock.sock (default $SANLOCK_RUN_DIR or /run/sanlock). */
  runDir?: string;
  /** Full socket path; overrides runDir. */
  socketPath?: string;
  /** Skip the VERSION probe (connect() then never touches the socket). */
  noProbe?: boolean;
}

/** A lockspace as an object or a `name:host_id:path:offset` string. */
export type LockspaceArg = string | { name: string; hostId?: number; path?: string; offset?: number; flags?: number };
export interface DiskArg {
  path: string;
  offset?: number;
}
/** A resource as an object or a `ls:res:path:offset[:lver|:SH]` string. */
export type ResourceArg =
  | string
  | { lockspace: string; name: string; disks?: DiskArg[]; lver?: number; shared?: boolean; persistent?: boolean; flags?: number; data32?: number; data64?: number };

export function toLockspace(a: LockspaceArg): SanlkLockspace {
  if (typeof a === 'string') return strToLockspace(a);
  const ls = emptyLockspace(a.name);
  ls.hostId = a.hostId ?? 0;
  ls.flags = a.flags ?? 0;
  ls.hostIdDisk = emptyDisk(a.path ?? '', a.offset ?? 0);
  return ls;
}

export function toResource(a: ResourceArg): SanlkResource {
  if (typeof a === 'string') {
    const r = strToRes(a);
    if (!r.ok) throw new SanlockClientError(-22, 'parse resource', `"${a}"`);
    return r.value;
  }
  const disks = (a.disks ?? []).map((d) => emptyDisk(d.path, d.offset ?? 0));
  let flags = a.flags ?? 0;
  if (a.shared) flags |= ResFlag.SHARED;
  if (a.persistent) flags |= ResFlag.PERSISTENT;
  if (a.lver !== undefined) flags |= ResFlag.LVER;
  return {
    lockspaceName: a.lockspace,
    name: a.name,
    lver: a.lver ?? 0,
    data64: a.data64 ?? 0,
    data32: a.data32 ?? 0,
    unused: 0,
    flags,
    numDisks: disks.length,
    disks,
  };
}

export interface LockspaceInfo {
  lockspace: string;
  hostId: number;
  path: string;
  offset: number;
  flags: number;
}

export interface InquireResult {
  count: number;
  /** The raw state string, null when no leases are held. */
  state: string | null;
  resources: SanlkResource[];
}

export interface SizeOpts {
  /** Alignment in bytes (1 MiB…8 MiB); with sector sets the ALIGN and SECTOR flags. */
  align?: number;
  sector?: number;
}

function sizeFlags(o: SizeOpts, defaults: boolean): number {
  const align = o.align ?? (defaults ? 1 << 20 : 0);
  const sector = o.sector ?? (defaults ? 512 : 0);
  return alignSizeToFlag(align) | sectorSizeToFlag(sector);
}

/** Throws SanlockClientError when result < 0; returns the result otherwise. */
function check(op: string, result: number): number {
  if (result < 0) throw new SanlockClientError(result, op);
  return result;
}

/**
 * Sends one request on `conn` and reads its reply as libsanlock would (header with MSG_WAITALL,
 * then the command's payload; streams until EOF). A short header is result -1 (libsanlock's value).
 */
async function exchange(conn: Conn, cmd: number, bytes: Buffer): Promise<Reply | null> {
  await conn.write(bytes);
  const hb = await conn.readExact(HEADER_SIZE);
  if (hb.length < HEADER_SIZE) {
    if (cmd === Cmd.REGISTER || cmd === Cmd.SHUTDOWN) return null;
    throw new SanlockClientError(-1, `cmd ${cmd}`, 'short reply header');
  }
  const h = decodeHeader(hb);
  if (!h.ok) throw new SanlockClientError(h.code, `cmd ${cmd}`, h.error);
  const size = replyPayloadSize(cmd, h.value);
  let payload: Buffer;
  if (size === 'eof') payload = await conn.readToEnd();
  else payload = await conn.readExact(size ?? 0);
  const rep = decodeReply(cmd, Buffer.concat([hb, payload]));
  if (!rep.ok) throw new SanlockClientError(rep.code, `cmd ${cmd}`, rep.error);
  return rep.value;
}

export class SanlockClient {
  constructor(readonly path: string) {}

  /** Opens a fresh connection to the daemon. */
  open(op = 'connect'): Promise<Conn> {
    return Conn.open(this.path, op);
  }

  /**
   * Raw call on a new connection: returns the decoded reply (result in reply.result, never
   * judged). For commands without a reply (SHUTDOWN) returns null.
   */
  async call(cmd: number, bytes: Buffer): Promise<Reply | null> {
    const conn = await this.open();
    try {
      if (cmd === Cmd.SHUTDOWN) {
        await conn.write(bytes);
        return null;
      }
      return await exchange(conn, cmd, bytes);
    } finally {
      conn.close();
    }
  }

  private async result(op: string, cmd: number, bytes: Buffer): Promise<Reply> {
    const rep = await this.call(cmd, bytes);
    if (!rep) throw new SanlockClientError(-1, op, 'no reply');
    check(op, rep.result);
    return rep;
  }

  // ---- daemon info ----

  /** VERSION: { proto (reply header version), version (e.g. 0x03080500) }. */
  async version(): Promise<{ proto: number; version: number }> {
    const rep = await this.result('version', Cmd.VERSION, rq.reqNoPayload(Cmd.VERSION));
    return { proto: rep.header.version, version: rep.header.data2 >>> 0 };
  }

  /** STATUS stream; detail 0 = everything, 1 daemon, 2 +clients, 3 +lockspaces. */
  async status(detail = 0): Promise<StateRecord[]> {
    const rep = await this.result('status', Cmd.STATUS, rq.reqNoPayload(Cmd.STATUS, { data: detail }));
    return rep.records ?? [];
  }

  /** HOST_STATUS of one lockspace (length field 32, as the sanlock CLI sends it). */
  async hostStatus(lockspace: string): Promise<StateRecord[]> {
    const bytes = rq.reqLockspace(Cmd.HOST_STATUS, emptyLockspace(lockspace), { length: HEADER_SIZE });
    const rep = await this.result('host_status', Cmd.HOST_STATUS, bytes);
    return rep.records ?? [];
  }

  /** RENEWAL history of one lockspace. */
  async renewal(lockspace: string): Promise<{ ioTimeout: number; records: StateRecord[] }> {
    const bytes = rq.reqLockspace(Cmd.RENEWAL, emptyLockspace(lockspace), { length: HEADER_SIZE });
    const rep = await this.result('renewal', Cmd.RENEWAL, bytes);
    return { ioTimeout: rep.ioTimeout ?? 0, records: rep.records ?? [] };
  }

  async logDump(): Promise<Buffer> {
    const rep = await this.result('log_dump', Cmd.LOG_DUMP, rq.reqNoPayload(Cmd.LOG_DUMP));
    return rep.log ?? Buffer.alloc(0);
  }

  /**
   * SHUTDOWN (no reply; the daemon ignores it while busy) or with wait SHUTDOWN_WAIT, which
   * resolves when the daemon exits (or throws -EBUSY).
   */
  async shutdown(opts: { force?: boolean; wait?: boolean } = {}): Promise<void> {
    const force = opts.force ? 1 : 0;
    if (!opts.wait) {
      await this.call(Cmd.SHUTDOWN, rq.reqNoPayload(Cmd.SHUTDOWN, { data: force }));
      return;
    }
    await this.result('shutdown_wait', Cmd.SHUTDOWN_WAIT, rq.reqNoPayload(Cmd.SHUTDOWN_WAIT, { data: force }));
  }

  // ---- lockspaces ----

  async addLockspace(ls: LockspaceArg, opts: { async?: boolean; ioTimeout?: number } = {}): Promise<void> {
    const bytes = rq.reqLockspace(Cmd.ADD_LOCKSPACE, toLockspace(ls), { cmdFlags: opts.async ? 1 : 0, data: opts.ioTimeout ?? 0 });
    await this.result('add_lockspace', Cmd.ADD_LOCKSPACE, bytes);
  }

  /** python's inq_lockspace: true joined, false not joined, null being added/removed. */
  async inqLockspace(ls: LockspaceArg, opts: { wait?: boolean } = {}): Promise<boolean | null> {
    const rep = await this.call(Cmd.INQ_LOCKSPACE, rq.reqLockspace(Cmd.INQ_LOCKSPACE, toLockspace(ls), { cmdFlags: opts.wait ? 1 : 0 }));
    const r = rep?.result ?? -1;
    if (r === 0) return true;
    if (r === -2) return false;
    if (r === -115) return null;
    throw new SanlockClientError(r, 'inq_lockspace');
  }

  async remLockspace(ls: LockspaceArg, opts: { async?: boolean; unused?: boolean } = {}): Promise<void> {
    const flags = (opts.async ? 1 : 0) | (opts.unused ? 2 : 0);
    await this.result('rem_lockspace', Cmd.REM_LOCKSPACE, rq.reqLockspace(Cmd.REM_LOCKSPACE, toLockspace(ls), { cmdFlags: flags }));
  }

  async getLockspaces(): Promise<LockspaceInfo[]> {
    const rep = await this.result('get_lockspaces', Cmd.GET_LOCKSPACES, rq.reqNoPayload(Cmd.GET_LOCKSPACES));
    return (rep.lockspaces ?? []).map((l) => ({ lockspace: l.name, hostId: l.hostId, path: l.hostIdDisk.path, offset: l.hostIdDisk.offset, flags: l.flags }));
  }

  /** Hosts of a joined lockspace (hostId 0 = all seen); flags & 0xf = HostState. */
  async getHosts(lockspace: string, hostId = 0): Promise<SanlkHost[]> {
    const ls = emptyLockspace(lockspace);
    ls.hostId = hostId;
    const rep = await this.result('get_hosts', Cmd.GET_HOSTS, rq.reqLockspace(Cmd.GET_HOSTS, ls));
    return rep.hosts ?? [];
  }

  async setConfig(lockspace: string, cmd: number): Promise<void> {
    await this.result('set_config', Cmd.SET_CONFIG, rq.reqLockspace(Cmd.SET_CONFIG, emptyLockspace(lockspace), { data: cmd }));
  }

  /** EXAMINE_LOCKSPACE (needs the path, like the CLI) or EXAMINE_RESOURCE. */
  async examine(target: { lockspace: LockspaceArg } | { resource: ResourceArg }): Promise<void> {
    if ('lockspace' in target) {
      await this.result('examine', Cmd.EXAMINE_LOCKSPACE, rq.reqLockspace(Cmd.EXAMINE_LOCKSPACE, toLockspace(target.lockspace)));
    } else {
      await this.result('examine', Cmd.EXAMINE_RESOURCE, rq.reqResource(Cmd.EXAMINE_RESOURCE, toResource(target.resource)));
    }
  }

  // ---- storage (done by the daemon) ----

  async writeLockspace(ls: LockspaceArg, opts: SizeOpts & { maxHosts?: number; ioTimeout?: number } = {}): Promise<void> {
    const l = toLockspace(ls);
    l.flags |= sizeFlags(opts, true);
    const bytes = rq.reqLockspace(Cmd.WRITE_LOCKSPACE, l, { data: opts.maxHosts ?? 0, data2: opts.ioTimeout ?? 0 });
    await this.result('write_lockspace', Cmd.WRITE_LOCKSPACE, bytes);
  }

  async readLockspace(path: string, offset = 0, opts: SizeOpts = {}): Promise<{ lockspace: SanlkLockspace; ioTimeout: number }> {
    const l = emptyLockspace();
    l.hostIdDisk = emptyDisk(path, offset);
    l.flags = sizeFlags(opts, true);
    const rep = await this.result('read_lockspace', Cmd.READ_LOCKSPACE, rq.reqLockspace(Cmd.READ_LOCKSPACE, l));
    return { lockspace: rep.lockspace!, ioTimeout: rep.ioTimeout ?? 0 };
  }

  /**
   * WRITE_RESOURCE as libsanlock sends it: data = maxHosts, data2 = numHosts. NB the 3.8.5
   * daemon reads num_hosts from data, so with a real daemon it is `maxHosts` that lands in the
   * leader's num_hosts (0 = default).
   */
  async writeResource(res: ResourceArg, opts: SizeOpts & { maxHosts?: number; numHosts?: number; clear?: boolean } = {}): Promise<void> {
    const r = toResource(res);
    r.flags |= sizeFlags(opts, true);
    const bytes = rq.reqResourceDisks(Cmd.WRITE_RESOURCE, r, { cmdFlags: opts.clear ? 1 : 0, data: opts.maxHosts ?? 0, data2: opts.numHosts ?? 0 });
    await this.result('write_resource', Cmd.WRITE_RESOURCE, bytes);
  }

  async readResource(path: string, offset = 0, opts: SizeOpts = {}): Promise<SanlkResource> {
    const r = toResource({ lockspace: '', name: '', disks: [{ path, offset }] });
    r.flags = sizeFlags(opts, true);
    const rep = await this.result('read_resource', Cmd.READ_RESOURCE, rq.reqResourceDisks(Cmd.READ_RESOURCE, r));
    return rep.resource!;
  }

  async readResourceOwners(res: ResourceArg, opts: SizeOpts = {}): Promise<{ resource: SanlkResource; hosts: SanlkHost[] }> {
    const r = toResource(res);
    r.flags |= sizeFlags(opts, true);
    const rep = await this.result('read_resource_owners', Cmd.READ_RESOURCE_OWNERS, rq.reqResourceDisks(Cmd.READ_RESOURCE_OWNERS, r));
    return { resource: rep.resource!, hosts: rep.hosts ?? [] };
  }

  /** ALIGN: the alignment the daemon uses for a lease area on `path` (bytes). */
  async align(path: string, offset = 0): Promise<number> {
    return check('align', (await this.result('align', Cmd.ALIGN, rq.reqAlign(emptyDisk(path, offset)))).result);
  }

  // ---- leases on behalf of a registered pid ----

  /** With opts.wait (seconds) retries while the lease is busy (see retryWhileBusy). */
  async acquire(pid: number, resources: ResourceArg[], opts: AcquireOpts = {}): Promise<void> {
    const bytes = rq.reqAcquire(resources.map(toResource), { ...emptyOptions(), ownerName: opts.ownerName ?? '' }, acquireFlags(opts), pid);
    await waitingAcquire(this, (c, b) => this.call(c, b), bytes, resources, opts);
  }

  /** Returns the daemon's result (positive = orphans released with {orphan: true}). */
  async release(pid: number, resources: ResourceArg[], opts: ReleaseOpts = {}): Promise<number> {
    const rep = await this.result('release', Cmd.RELEASE, rq.reqRelease(resources.map(toResource), releaseFlags(opts), pid));
    return rep.result;
  }

  async inquire(pid: number): Promise<InquireResult> {
    return inquireResult(await this.result('inquire', Cmd.INQUIRE, rq.reqNoPayload(Cmd.INQUIRE, { data2: pid })));
  }

  async convert(pid: number, res: ResourceArg, opts: { ownerNowait?: boolean } = {}): Promise<void> {
    await this.result('convert', Cmd.CONVERT, rq.reqResource(Cmd.CONVERT, toResource(res), { cmdFlags: opts.ownerNowait ? 8 : 0, data2: pid }));
  }

  /**
   * REQUEST: ask the holder to release. Without lver python sets NEXT_LVER and lver 0.
   * forceMode: ForceMode.GRACEFUL (default) or FORCE.
   */
  async request(res: ResourceArg, opts: { forceMode?: number; lver?: number } = {}): Promise<void> {
    const bytes = requestBytes(res, opts.forceMode ?? ForceMode.GRACEFUL, opts.lver);
    await this.result('request', Cmd.REQUEST, bytes);
  }

  async setLvb(res: ResourceArg, data: Buffer): Promise<void> {
    await this.result('set_lvb', Cmd.SET_LVB, rq.reqSetLvb(toResource(res), data));
  }

  /** GET_LVB; the daemon returns sector-size bytes, truncated here to `size` like python. */
  async getLvb(res: ResourceArg, size: number): Promise<Buffer> {
    const rep = await this.result('get_lvb', Cmd.GET_LVB, rq.reqResource(Cmd.GET_LVB, toResource(res)));
    return (rep.lvb ?? Buffer.alloc(0)).subarray(0, size);
  }

  // ---- events ----

  /** REG_EVENT: the returned channel receives the lockspace's host events. */
  async regEvent(lockspace: string): Promise<EventChannel> {
    const conn = await this.open('reg_event');
    try {
      const rep = await exchange(conn, Cmd.REG_EVENT, rq.reqLockspaceEvent(Cmd.REG_EVENT, emptyLockspace(lockspace)));
      check('reg_event', rep?.result ?? -1);
    } catch (e) {
      conn.close();
      throw e;
    }
    return new EventChannel(this, conn, lockspace);
  }

  async setEvent(lockspace: string, he: Partial<SanlkHostEvent>, flags = 0): Promise<void> {
    const bytes = rq.reqLockspaceEvent(Cmd.SET_EVENT, emptyLockspace(lockspace), { ...emptyHostEvent(), ...he }, { cmdFlags: flags });
    await this.result('set_event', Cmd.SET_EVENT, bytes);
  }

  /** END_EVENT on a new connection (EventChannel.end() does the whole sequence). */
  async endEvent(lockspace: string): Promise<void> {
    await this.result('end_event', Cmd.END_EVENT, rq.reqLockspace(Cmd.END_EVENT, emptyLockspace(lockspace)));
  }

  // ---- registration ----

  /** REGISTER on a connection that stays open: that connection owns the leases acquired on it. */
  async register(): Promise<Registration> {
    const conn = await this.open('register');
    await conn.write(rq.reqNoPayload(Cmd.REGISTER));
    return new Registration(conn, this.path);
  }

  // ---- resource index ----

  async formatRindex(rx: SanlkRindex): Promise<void> {
    await this.result('format_rindex', Cmd.FORMAT_RINDEX, rq.reqRindex(Cmd.FORMAT_RINDEX, rx));
  }

  async rebuildRindex(rx: SanlkRindex, flags = 0): Promise<void> {
    await this.result('rebuild_rindex', Cmd.REBUILD_RINDEX, rq.reqRindex(Cmd.REBUILD_RINDEX, rx, { cmdFlags: flags }));
  }

  /** CREATE_RESOURCE: returns the offset chosen for the new resource. */
  async createResource(rx: SanlkRindex, name: string, opts: { maxHosts?: number; numHosts?: number } = {}): Promise<number> {
    const bytes = rq.reqRindexEntry(Cmd.CREATE_RESOURCE, rx, rentry(name), { data: opts.maxHosts ?? 0, data2: opts.numHosts ?? 0 });
    return (await this.result('create_resource', Cmd.CREATE_RESOURCE, bytes)).rentry!.offset;
  }

  async deleteResource(rx: SanlkRindex, name: string, offset = 0): Promise<void> {
    await this.result('delete_resource', Cmd.DELETE_RESOURCE, rq.reqRindexEntry(Cmd.DELETE_RESOURCE, rx, rentry(name, offset)));
  }

  /** LOOKUP_RINDEX (by name, or the first free slot with name '' and offset 0). */
  async lookupRindex(rx: SanlkRindex, name = '', offset = 0): Promise<SanlkRentry> {
    const bytes = lookupBytes(rx, rentry(name, offset));
    return (await this.result('lookup_rindex', Cmd.LOOKUP_RINDEX, bytes)).rentry!;
  }

  async updateRindex(rx: SanlkRindex, name: string, offset: number, flags: number): Promise<void> {
    await this.result('update_rindex', Cmd.UPDATE_RINDEX, rq.reqRindexEntry(Cmd.UPDATE_RINDEX, rx, rentry(name, offset), { cmdFlags: flags }));
  }
}

/** libsanlock's lookup claims 64 bytes more than it sends (spec §3.2); kept for byte fidelity. */
export function lookupBytes(rx: SanlkRindex, re: SanlkRentry): Buffer {
  const b = rq.reqRindexEntry(Cmd.LOOKUP_RINDEX, rx, re);
  b.writeUInt32LE(b.length + 64, 16);
  return b;
}

export function rentry(name: string, offset = 0): SanlkRentry {
  return { name, offset, flags: 0, unused: 0 };
}

export interface AcquireOpts {
  /** seconds to keep retrying while the result is busy (BUSY_CODES); 0/undefined = one try */
  wait?: number;
  /** with wait: send a REQUEST of this mode to the holder when the first try is busy */
  request?: 'graceful' | 'force';
  lvb?: boolean;
  orphan?: boolean;
  orphanOnly?: boolean;
  ownerNowait?: boolean;
  ownerName?: string;
}

export interface ReleaseOpts {
  all?: boolean;
  rename?: boolean;
  orphan?: boolean;
}

async function waitingAcquire(
  client: SanlockClient | null,
  send: (cmd: number, bytes: Buffer) => Promise<Reply | null>,
  bytes: Buffer,
  resources: ResourceArg[],
  opts: AcquireOpts,
): Promise<void> {
  const once = async () => (await send(Cmd.ACQUIRE, bytes))?.result ?? -1;
  let requested = false;
  const attempt = async () => {
    const rv = await once();
    if (rv !== 0 && opts.request && !requested && opts.wait) {
      requested = true;
      const forceMode = opts.request === 'force' ? ForceMode.FORCE : ForceMode.GRACEFUL;
      // a failed request (e.g. holder gone meanwhile) must not hide the acquire result
      for (const r of resources) {
        const req = requestBytes(r, forceMode);
        await (client ? client.call(Cmd.REQUEST, req) : send(Cmd.REQUEST, req)).catch(() => undefined);
      }
      // A holder on this same host is only told through EXAMINE: sanlock's daemons learn of
      // requests from other hosts' bitmaps, and a host never reads its own bit.
      for (const r of resources) {
        const ex = rq.reqResource(Cmd.EXAMINE_RESOURCE, toResource(r));
        await (client ? client.call(Cmd.EXAMINE_RESOURCE, ex) : send(Cmd.EXAMINE_RESOURCE, ex)).catch(() => undefined);
      }
    }
    return rv;
  };
  const rv = opts.wait ? await retryWhileBusy(attempt, { wait: opts.wait }) : await once();
  check('acquire', rv);
}

/** REQUEST bytes; without lver, NEXT_LVER (the holder's lver + 1), as python sends it. */
function requestBytes(res: ResourceArg, forceMode: number, lver?: number): Buffer {
  const r = toResource(res);
  let flags = 0;
  if (lver === undefined) {
    flags = RequestFlag.NEXT_LVER;
    r.lver = 0;
  } else {
    r.lver = lver;
    r.flags |= ResFlag.LVER;
  }
  return rq.reqResourceDisks(Cmd.REQUEST, r, { cmdFlags: flags, data: forceMode });
}

function acquireFlags(o: AcquireOpts): number {
  return (o.lvb ? 1 : 0) | (o.orphan ? 2 : 0) | (o.orphanOnly ? 4 : 0) | (o.ownerNowait ? 8 : 0);
}

function releaseFlags(o: ReleaseOpts): number {
  return (o.all ? 1 : 0) | (o.rename ? 2 : 0) | (o.orphan ? 4 : 0);
}

function inquireResult(rep: Reply): InquireResult {
  const state = rep.state ?? null;
  let resources: SanlkResource[] = [];
  if (state) {
    const parsed = stateToArgs(state);
    if (!parsed.ok) throw new SanlockClientError(parsed.code, 'inquire', 'unparsable state string');
    resources = parsed.value;
  }
  return { count: rep.count ?? 0, state, resources };
}

/**
 * A registered connection (the lease owner). Leases acquired here are released by the
 * daemon when this connection closes, so keep it open as long as the leases are needed.
 */
export class Registration {
  private busy: Promise<unknown> = Promise.resolve();

  /** socketPath: the daemon's socket, used to send REQUESTs for acquire({request}) */
  constructor(readonly conn: Conn, readonly socketPath?: string) {}

  /** The socket's fd number (python's register() return value). */
  get fd(): number {
    return this.conn.fd;
  }

  /** True once the connection is gone (closed here, or by the daemon). */
  get closed(): boolean {
    return this.conn.closed;
  }

  /** One command at a time on the connection, as the daemon serves it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.busy.then(fn, fn);
    this.busy = next.catch(() => undefined);
    return next;
  }

  /** Raw: sends on the registered connection and returns the reply (null for no reply). */
  call(cmd: number, bytes: Buffer): Promise<Reply | null> {
    return this.serial(() => exchange(this.conn, cmd, bytes));
  }

  private async result(op: string, cmd: number, bytes: Buffer): Promise<Reply> {
    const rep = await this.call(cmd, bytes);
    if (!rep) throw new SanlockClientError(-1, op, 'no reply');
    check(op, rep.result);
    return rep;
  }

  /**
   * With opts.wait (seconds) retries while the lease is busy; opts.request first asks the
   * holder (REQUEST, lver = current + 1) to let go, on a separate connection.
   */
  async acquire(resources: ResourceArg[], opts: AcquireOpts = {}): Promise<void> {
    const bytes = rq.reqAcquire(resources.map(toResource), { ...emptyOptions(), ownerName: opts.ownerName ?? '' }, acquireFlags(opts), -1);
    await waitingAcquire(this.socketPath ? new SanlockClient(this.socketPath) : null, (c, b) => this.call(c, b), bytes, resources, opts);
  }

  async release(resources: ResourceArg[], opts: ReleaseOpts = {}): Promise<number> {
    return (await this.result('release', Cmd.RELEASE, rq.reqRelease(resources.map(toResource), releaseFlags(opts), -1))).result;
  }

  async inquire(): Promise<InquireResult> {
    return inquireResult(await this.result('inquire', Cmd.INQUIRE, rq.reqNoPayload(Cmd.INQUIRE, { data2: -1 })));
  }

  async convert(res: ResourceArg, opts: { ownerNowait?: boolean } = {}): Promise<void> {
    await this.result('convert', Cmd.CONVERT, rq.reqResource(Cmd.CONVERT, toResource(res), { cmdFlags: opts.ownerNowait ? 8 : 0, data2: -1 }));
  }

  /** KILLPATH: program (and args, escaped like python) the daemon runs instead of SIGTERM. */
  async killpath(path: string, args: string[] = [], opts: { appendPid?: boolean } = {}): Promise<void> {
    const joined = rq.joinKillArgs(args);
    if (path.length > 127 || joined.length > 127) throw new SanlockClientError(-22, 'killpath', 'path or args longer than 127');
    await this.result('killpath', Cmd.KILLPATH, rq.reqKillpath({ path, args: joined }, opts.appendPid ? 1 : 0));
  }

  /** RESTRICT flags (RestrictFlag.*) on this connection. */
  async restrict(flags: number): Promise<void> {
    await this.result('restrict', Cmd.RESTRICT, rq.reqNoPayload(Cmd.RESTRICT, { cmdFlags: flags, data2: -1 }));
  }

  /** Closing the registered connection makes the daemon release every lease it holds. */
  close(): void {
    this.conn.close();
  }
}

/** The event channel returned by regEvent(): the daemon pushes 80-byte event_cb records. */
export class EventChannel {
  constructor(
    private readonly client: SanlockClient,
    readonly conn: Conn,
    readonly lockspace: string,
  ) {}

  get fd(): number {
    return this.conn.fd;
  }

  /** Events already received (sanlock_get_event: non-blocking reads until EAGAIN). */
  getEvents(): EventCb[] {
    const out: EventCb[] = [];
    while (this.conn.available >= EVENT_CB_SIZE) {
      const d = decodeEventCb(this.conn.readAvailable(EVENT_CB_SIZE));
      if (d.ok) out.push(d.value);
    }
    return out;
  }

  /** Waits until at least one event arrived (or the daemon closed the channel) and returns them. */
  async nextEvents(): Promise<EventCb[]> {
    while (this.conn.available < EVENT_CB_SIZE && !this.conn.closed) await this.conn.waitReadable();
    return this.getEvents();
  }

  /** sanlock_end_event: write the marker 1, close, then END_EVENT on a new connection. */
  async end(): Promise<void> {
    const marker = Buffer.alloc(4);
    marker.writeUInt32LE(1, 0);
    try {
      await this.conn.write(marker);
    } catch {
      // the daemon may already have dropped the channel; END_EVENT still cleans up
    }
    this.conn.close();
    await this.client.endEvent(this.lockspace);
  }
}

/**
 * Returns a client for the daemon at $SANLOCK_RUN_DIR/sanlock.sock (or opts). Unless noProbe,
 * sends VERSION so that an absent daemon fails here (SanlockClientError code -2 / -111).
 */
export async function connect(opts: ConnectOptions = {}): Promise<SanlockClient> {
  const client = new SanlockClient(opts.socketPath ?? socketPath(opts.runDir));
  if (!opts.noProbe) await client.version();
  return client;
}

export { decodeStateStream };
export type { SmHeader };

// VDSM-style storage-domain calls (src/client/domain.ts)
export * from './domain.js';
