// `sanlock client <action>`: sanlock 3.8.5's client actions (spec/cli.md §4) over the wire
// protocol, with the same arguments, stdout text and exit status. Output goes through
// `env.write` (stdout by default) as latin1 byte strings, so names pass through unchanged.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import {
  AcquireFlag,
  Cmd,
  ForceMode,
  RequestFlag,
  ConfigCmd,
  LsFlag,
  ReleaseFlag,
  ResFlag,
  RindexFlag,
  alignSizeToFlag,
  hostStateName,
  sectorFlagToSize,
  alignFlagToSize,
  sectorSizeToFlag,
} from '../protocol/commands.js';
import { HEADER_SIZE, VERSION_HEX } from '../protocol/header.js';
import type { Reply, } from '../protocol/replies.js';
import { resToStr, stateToArgs, argsToState } from '../protocol/state-strings.js';
import {
  type SanlkLockspace,
  type SanlkResource,
  type SanlkRindex,
  StateType,
  emptyDisk,
  emptyLockspace,
  emptyOptions,
  MAX_RESOURCES,
} from '../protocol/structs.js';
import { wireString } from '../client/domain-xml.js';
import { SanlockClient, lookupBytes, rentry, socketPath } from '../client/index.js';
import { SanlockClientError } from '../client/errors.js';
import * as rq from '../client/requests.js';
import {
  CliUsageError,
  type LockspaceArg,
  type ResourceArg,
  type SanlockOptions,
  parseSanlockOptions,
} from './args.js';
import { USAGE_TEXT } from './usage.js';
import { MAX_SORT_ENTRIES, formatHostStatus, formatStatus } from './client-output.js';
import { retryWhileBusy } from '../client/wait.js';
import { explain, formatExplained } from '../lease/explain.js';
import { deltaAcquireHeldWait, deltaShortDelay } from '../lease/timeouts.js';
import { type DomainXmlLoad, describeLease, loadDomainXml } from './lease-xml.js';
import { Errno, codeName } from '../codes.js';
import { resultSentence } from '../client/errors.js';

export interface ClientEnv {
  /** stdout (latin1 byte string) */
  write(s: string): void;
  /** run directory of the daemon (default $SANLOCK_RUN_DIR or /run/sanlock) */
  runDir?: string;
  /** whether stdout is a terminal (the `command` action's lines are lost otherwise) */
  isTTY?: boolean;
  /** stderr (explanations, progress); default process.stderr */
  writeErr?(s: string): void;
  /** whether stderr is a terminal: explanations and add_lockspace progress are shown then */
  errIsTTY?: boolean;
}

/**
 * Our own options, not sanlock's: taken out before sanlock's parser sees the arguments so that
 * everything else parses (and prints) exactly as sanlock 3.8.5 does.
 *   --explain         explain a failing result on stderr (default: only when stderr is a TTY)
 *   --wait SECONDS    acquire: retry while the lease is busy, up to SECONDS
 *   --request MODE    with --wait: ask the holder to release first (graceful|force)
 *   --progress        add_lockspace: say on stderr what is being waited for (default on a TTY)
 *   --json            add_lockspace: stdout is one JSON object {result, seconds, lockspace}
 *   --domain-xml FILE command: also acquire every <devices><lease> of a libvirt domain XML
 * Words after `-c` belong to the command being run and are never taken.
 */
export interface ExtraOptions {
  explain: boolean;
  wait?: number;
  request?: 'graceful' | 'force';
  progress: boolean;
  json: boolean;
  domainXml?: string;
}

export function takeExtraOptions(args: string[]): { rest: string[]; extra: ExtraOptions } | { error: string } {
  const extra: ExtraOptions = { explain: false, progress: false, json: false };
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c') {
      rest.push(...args.slice(i));
      break;
    }
    if (a === '--explain') extra.explain = true;
    else if (a === '--progress') extra.progress = true;
    else if (a === '--json') extra.json = true;
    else if (a === '--wait') {
      const v = Number(args[++i]);
      if (!(v >= 0) || !Number.isFinite(v)) return { error: `--wait needs a number of seconds` };
      extra.wait = v;
    } else if (a === '--request') {
      const v = args[++i];
      if (v !== 'graceful' && v !== 'force') return { error: '--request needs graceful or force' };
      extra.request = v;
    } else if (a === '--domain-xml') {
      const v = args[++i];
      if (!v) return { error: '--domain-xml needs a file' };
      extra.domainXml = v;
    } else rest.push(a);
  }
  return { rest, extra };
}

const ACTIONS = new Set([
  'status',
  'host_status',
  'renewal',
  'gets',
  'log_dump',
  'shutdown',
  'init',
  'write',
  'read',
  'align',
  'add_lockspace',
  'inq_lockspace',
  'rem_lockspace',
  'command',
  'acquire',
  'convert',
  'release',
  'inquire',
  'request',
  'examine',
  'set_event',
  'set_config',
  'version',
  'format',
  'create',
  'delete',
  'lookup',
  'update',
  'rebuild',
]);

function toBytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

function defaultEnv(): ClientEnv {
  return {
    write(s) {
      process.stdout.write(Buffer.from(s, 'latin1'));
    },
    isTTY: Boolean(process.stdout.isTTY),
    writeErr(s) {
      process.stderr.write(s);
    },
    errIsTTY: Boolean(process.stderr.isTTY),
  };
}

function lsStruct(l: LockspaceArg | undefined): SanlkLockspace {
  const ls = emptyLockspace(l?.name ?? '');
  if (l) {
    ls.hostId = l.hostId;
    ls.hostIdDisk = emptyDisk(l.path, l.offset);
  }
  return ls;
}

function resStruct(r: ResourceArg | undefined): SanlkResource {
  const disks = (r?.disks ?? []).map((d) => emptyDisk(d.path, d.offset));
  let flags = 0;
  if (r?.shared) flags |= ResFlag.SHARED;
  if (r?.lverSet) flags |= ResFlag.LVER;
  return {
    lockspaceName: r?.lockspaceName ?? '',
    name: r?.name ?? '',
    lver: r?.lver ?? 0,
    data64: 0,
    data32: 0,
    unused: 0,
    flags,
    numDisks: disks.length,
    disks,
  };
}

function sizeFlagsOf(o: SanlockOptions): number {
  // -Z alone (no -A) gives the sector flag only; the daemon then picks the alignment.
  return sectorSizeToFlag(o.sectorSize) | alignSizeToFlag(o.alignSize);
}

function rindexStruct(o: SanlockOptions, withSizes: boolean): SanlkRindex {
  return {
    flags: withSizes ? sizeFlagsOf(o) : 0,
    maxResources: 0,
    unused: 0,
    lockspaceName: o.rindex?.lockspaceName ?? '',
    disk: emptyDisk(o.rindex?.path ?? '', o.rindex?.offset ?? 0),
  };
}

/** libsanlock's "rv": the reply's result, or the -errno of a failed connect/send. */
async function rvOf(p: Promise<Reply | null>): Promise<{ rv: number; rep: Reply | null; noDaemon?: boolean }> {
  try {
    const rep = await p;
    return { rv: rep ? rep.result : 0, rep };
  } catch (e) {
    if (e instanceof SanlockClientError) return { rv: e.code, rep: null, noDaemon: e.op === 'connect' };
    throw e;
  }
}

const hex = (v: bigint) => v.toString(16);

export async function runClient(args: string[], envIn: Partial<ClientEnv> = {}): Promise<number> {
  const env: ClientEnv = { ...defaultEnv(), ...envIn };
  const taken = takeExtraOptions(args);
  if ('error' in taken) {
    env.writeErr?.(`${taken.error}\n`);
    return 1;
  }
  const extra = taken.extra;
  const last: { rv: number; noDaemon?: boolean } = { rv: 0 };
  const code = await runSanlockAction(taken.rest, env, extra, last);
  // After sanlock's own lines: its stdout stays byte-identical, the explanation goes to stderr.
  if (code !== 0 && last.rv < 0 && (extra.explain || env.errIsTTY)) {
    const o = lastOptions.o;
    const ctx = {
      operation: taken.rest[0],
      lockspace: o?.lockspace?.name || o?.resources[0]?.lockspaceName || undefined,
      resource: o?.resources[0]?.name || undefined,
      hostId: o?.lockspace?.hostId || undefined,
      pid: o && o.pid > 0 ? o.pid : undefined,
    };
    let e = explain(last.rv, ctx);
    // -ENOENT from connect() is a missing socket, not a missing lease or lockspace
    if (last.noDaemon && last.rv === -2) {
      const sock = socketPath(env.runDir ?? (process.env.SANLOCK_RUN_DIR || '/run/sanlock'));
      e = { ...e, message: `${e.code} ${e.name}: no daemon socket at ${sock}`, details: 'Start the daemon, or point SANLOCK_RUN_DIR at the run dir of the one that is running.' };
    }
    env.writeErr?.(`${formatExplained(e)}\n`);
  }
  return code;
}

// the parsed options of the last action, for the explanation's context
const lastOptions: { o?: SanlockOptions } = {};

async function runSanlockAction(args: string[], env: ClientEnv, extra: ExtraOptions, last: { rv: number; noDaemon?: boolean }): Promise<number> {
  lastOptions.o = undefined;
  const out = (line: string) => env.write(`${line}\n`);
  const argv = args.map(toBytes);
  const action = argv[0];
  if (action === undefined) {
    env.write(USAGE_TEXT);
    return 1;
  }
  if (!ACTIONS.has(action)) {
    out(`client action "${action}" is unknown`);
    return 1;
  }
  let o: SanlockOptions;
  try {
    o = parseSanlockOptions(argv.slice(1), 'client', action);
  } catch (e) {
    if (e instanceof CliUsageError) {
      env.write(e.lines.map((l) => `${l}\n`).join(''));
      return e.exitCode;
    }
    throw e;
  }
  for (const m of o.messages) out(m);
  lastOptions.o = o;

  const client = new SanlockClient(socketPath(env.runDir ?? (process.env.SANLOCK_RUN_DIR || '/run/sanlock')));
  const call = async (cmd: number, bytes: Buffer) => {
    const r = await rvOf(client.call(cmd, bytes));
    last.rv = r.rv;
    last.noDaemon = Boolean(r.noDaemon);
    return r;
  };
  const exit = (rv: number) => (rv === 0 ? 0 : 1);

  // -n sets NUM_HOSTS on every resource of command/acquire, -P makes them persistent.
  const resources = o.resources.map(resStruct);
  let xml: DomainXmlLoad | undefined;
  if (extra.domainXml !== undefined) {
    if (action !== 'command') {
      env.writeErr?.('--domain-xml is an option of client command only\n');
      return 1;
    }
    // checked before anything is sent: a bad file registers and acquires nothing
    const loaded = loadDomainXml(extra.domainXml);
    if ('error' in loaded) {
      last.rv = loaded.code;
      env.writeErr?.(`${loaded.error}; nothing acquired\n`);
      return 1;
    }
    xml = loaded;
    resources.push(...loaded.resources);
  }
  if (action === 'command' || action === 'acquire') {
    for (const r of resources) {
      if (o.numHosts) {
        r.flags |= ResFlag.NUM_HOSTS;
        r.data32 = o.numHosts;
      }
      if (o.persistent) r.flags |= ResFlag.PERSISTENT;
    }
  }

  switch (action) {
    case 'status': {
      const { rv, rep } = await call(Cmd.STATUS, rq.reqNoPayload(Cmd.STATUS));
      if (!rep) return 1;
      env.write(formatStatus(rep.records ?? [], o.debug, o.sortArg));
      // sanlock gives up (result ≠ 0) when asked to sort more than it can hold
      const tooMany = (o.sortArg === 'p' || o.sortArg === 's') && (rep.records ?? []).length > MAX_SORT_ENTRIES;
      return tooMany ? 1 : exit(Math.min(rv , 0));
    }
    case 'host_status': {
      const name = o.lockspace?.name ?? '';
      if (name) {
        const { rv, rep } = await call(Cmd.HOST_STATUS, rq.reqLockspace(Cmd.HOST_STATUS, emptyLockspace(name), { length: HEADER_SIZE }));
        if (rep) env.write(formatHostStatus(rep.records ?? [], o.debug));
        return exit(rv);
      }
      const st = await call(Cmd.STATUS, rq.reqNoPayload(Cmd.STATUS, { data: 3 }));
      if (!st.rep) return 1;
      for (const r of st.rep.records ?? []) {
        if (r.state.type !== StateType.LOCKSPACE) continue;
        out(`lockspace ${r.state.name}`);
        const hs = await call(Cmd.HOST_STATUS, rq.reqLockspace(Cmd.HOST_STATUS, emptyLockspace(r.state.name), { length: HEADER_SIZE }));
        if (hs.rep) env.write(formatHostStatus(hs.rep.records ?? [], o.debug));
      }
      return 0;
    }
    case 'renewal': {
      const { rv, rep } = await call(Cmd.RENEWAL, rq.reqLockspace(Cmd.RENEWAL, emptyLockspace(o.lockspace?.name ?? ''), { length: HEADER_SIZE }));
      if (rep && rv === 0) for (const r of rep.records ?? []) if (r.state.type === StateType.RENEWAL) out(r.str);
      return exit(rv);
    }
    case 'gets': {
      const { rv, rep } = await call(Cmd.GET_LOCKSPACES, rq.reqNoPayload(Cmd.GET_LOCKSPACES));
      if (rv < 0 || !rep) {
        out(`gets error ${rv}`);
        return 1;
      }
      for (const ls of rep.lockspaces ?? []) {
        const fl = ls.flags & LsFlag.ADD ? 'ADD ' : ls.flags & LsFlag.REM ? 'REM ' : '';
        out(`s ${ls.name}:${ls.hostId}:${ls.hostIdDisk.path}:${ls.hostIdDisk.offset} ${fl}`);
        if (!o.getHosts) continue;
        const q = emptyLockspace(ls.name);
        const h = await call(Cmd.GET_HOSTS, rq.reqLockspace(Cmd.GET_HOSTS, q));
        if (h.rv === -11) out('hosts not ready');
        else if (h.rv < 0) out(`hosts error ${h.rv}`);
        else for (const host of h.rep?.hosts ?? []) out(`h ${host.hostId} gen ${host.generation} timestamp ${host.timestamp} ${hostStateName(host.flags)}`);
      }
      return 0;
    }
    case 'log_dump': {
      const { rv, rep } = await call(Cmd.LOG_DUMP, rq.reqNoPayload(Cmd.LOG_DUMP));
      if (!rep) return exit(rv);
      const n = rep.header.data;
      if (n > 0 && n <= 1024 * 1024 * 1024) {
        const text = rep.log ?? Buffer.alloc(0);
        // printf("%s") stops at the first NUL
        const nul = text.indexOf(0);
        env.write(`${text.toString('latin1', 0, nul === -1 ? text.length : nul)}\n`);
        if (text.length !== n) out(`partial dump ${text.length} of ${n}`);
      }
      return 1;
    }
    case 'shutdown': {
      out(`shutdown force ${o.forceMode} wait ${o.wait}`);
      let rv: number;
      if (o.wait) rv = (await call(Cmd.SHUTDOWN_WAIT, rq.reqNoPayload(Cmd.SHUTDOWN_WAIT, { data: o.forceMode }))).rv;
      else rv = (await call(Cmd.SHUTDOWN, rq.reqNoPayload(Cmd.SHUTDOWN, { data: o.forceMode }))).rv;
      out(`shutdown done ${rv}`);
      return exit(rv);
    }
    case 'init':
    case 'write': {
      out('init');
      let rv: number;
      if (o.lockspace?.path) {
        const ls = lsStruct(o.lockspace);
        ls.flags |= sizeFlagsOf(o);
        rv = (await call(Cmd.WRITE_LOCKSPACE, rq.reqLockspace(Cmd.WRITE_LOCKSPACE, ls, { data: o.maxHosts, data2: o.ioTimeout }))).rv;
      } else {
        const r = resources[0] ?? resStruct(undefined);
        r.flags |= sizeFlagsOf(o);
        // libsanlock puts max_hosts in data and num_hosts in data2; the 3.8.5 daemon takes data
        // as num_hosts, so `-m` is what ends up on disk (observed on the wire, kept as is).
        const fields = { cmdFlags: o.clear ? 1 : 0, data: o.maxHosts, data2: o.numHosts };
        rv = (await call(Cmd.WRITE_RESOURCE, rq.reqResourceDisks(Cmd.WRITE_RESOURCE, r, fields))).rv;
      }
      out(`init done ${rv}`);
      return exit(rv);
    }
    case 'read': {
      if (o.lockspace?.path) {
        const ls = lsStruct(o.lockspace);
        ls.flags |= sizeFlagsOf(o);
        const { rv, rep } = await call(Cmd.READ_LOCKSPACE, rq.reqLockspace(Cmd.READ_LOCKSPACE, ls));
        if (rv < 0 || !rep?.lockspace) {
          out(`read error ${rv}`);
          return 1;
        }
        const l = rep.lockspace;
        out(`s ${l.name}:${l.hostId}:${l.hostIdDisk.path}:${l.hostIdDisk.offset}`);
        if (o.debug) {
          out(`io_timeout ${rep.ioTimeout ?? 0}`);
          out(`sector_size ${sectorFlagToSize(l.flags)}`);
          out(`align_size ${alignFlagToSize(l.flags)}`);
        }
        return exit(rv);
      }
      const r = resources[0] ?? resStruct(undefined);
      r.flags |= sizeFlagsOf(o);
      const cmd = o.getHosts ? Cmd.READ_RESOURCE_OWNERS : Cmd.READ_RESOURCE;
      const { rv, rep } = await call(cmd, rq.reqResourceDisks(cmd, r));
      if (rv < 0 || !rep?.resource) {
        out(`read error ${rv}`);
        return 1;
      }
      const got = { ...rep.resource, disks: r.disks, numDisks: r.disks.length };
      const s = resToStr(got);
      if (!s.ok) {
        out(`res_to_str error ${s.code}`);
        return 1;
      }
      out(`r ${s.value}`);
      if (o.debug) {
        out(`sector_size ${sectorFlagToSize(rep.resource.flags)}`);
        out(`align_size ${alignFlagToSize(rep.resource.flags)}`);
      }
      for (const h of rep.hosts ?? []) out(h.timestamp ? `h ${h.hostId} gen ${h.generation} timestamp ${h.timestamp}` : `h ${h.hostId} gen ${h.generation}`);
      return exit(rv);
    }
    case 'align': {
      out('align');
      const { rv } = await call(Cmd.ALIGN, rq.reqAlign(emptyDisk(o.lockspace?.path ?? '', o.lockspace?.offset ?? 0)));
      out(`align done ${rv}`);
      return exit(rv);
    }
    case 'add_lockspace': {
      const timeout = o.ioTimeout !== 10 ? o.ioTimeout : 0;
      const tag = timeout ? `add_lockspace_timeout ${timeout}` : 'add_lockspace';
      if (!extra.json) out(tag);
      const started = Date.now();
      const showProgress = extra.progress || Boolean(env.errIsTTY);
      const stopProgress = showProgress ? addLockspaceProgress(o, client, env, started) : () => undefined;
      const { rv } = await call(Cmd.ADD_LOCKSPACE, rq.reqLockspace(Cmd.ADD_LOCKSPACE, lsStruct(o.lockspace), { data: timeout }));
      stopProgress();
      const seconds = Math.round((Date.now() - started) / 100) / 10;
      if (showProgress) env.writeErr?.(`add_lockspace: ${rv === 0 ? 'joined' : `failed with ${rv}`} after ${seconds} s\n`);
      if (extra.json) out(JSON.stringify({ result: rv, seconds, lockspace: o.lockspace?.name ?? '' }));
      else out(timeout ? `add_lockspace_timeout done ${rv}` : `add_lockspace done ${rv}`);
      return exit(rv);
    }
    case 'inq_lockspace':
    case 'rem_lockspace': {
      out(action);
      const cmd = action === 'inq_lockspace' ? Cmd.INQ_LOCKSPACE : Cmd.REM_LOCKSPACE;
      const { rv } = await call(cmd, rq.reqLockspace(cmd, lsStruct(o.lockspace)));
      out(`${action} done ${rv}`);
      return exit(rv);
    }
    case 'acquire': {
      out(`acquire pid ${o.pid}`);
      const flags = o.orphan ? AcquireFlag.ORPHAN : 0;
      const bytes = rq.reqAcquire(resources, emptyOptions(), flags, o.pid);
      let rv: number;
      if (extra.wait === undefined) rv = (await call(Cmd.ACQUIRE, bytes)).rv;
      else {
        let requested = false;
        rv = await retryWhileBusy(
          async () => {
            const r = (await call(Cmd.ACQUIRE, bytes)).rv;
            if (r !== 0 && extra.request && !requested) {
              requested = true;
              for (const res of resources) {
                // lver 0 + NEXT_LVER: the daemon asks for the holder's lver + 1
                const req = rq.reqResourceDisks(Cmd.REQUEST, { ...res, lver: 0, flags: res.flags & ~ResFlag.LVER }, { cmdFlags: RequestFlag.NEXT_LVER, data: extra.request === 'force' ? ForceMode.FORCE : ForceMode.GRACEFUL });
                const q = await rvOf(client.call(Cmd.REQUEST, req));
                if (extra.explain || env.errIsTTY) env.writeErr?.(`acquire: ${extra.request} request for ${res.name} sent, result ${q.rv}\n`);
              }
              // a holder on this host learns of the request only through EXAMINE (a daemon
              // never reads its own bitmap bit)
              for (const res of resources) await rvOf(client.call(Cmd.EXAMINE_RESOURCE, rq.reqResource(Cmd.EXAMINE_RESOURCE, res)));
            }
            return r;
          },
          {
            wait: extra.wait,
            onRetry: (r, ms) => {
              if (extra.explain || env.errIsTTY) env.writeErr?.(`acquire: busy (${r}), retrying in ${(ms / 1000).toFixed(1)} s\n`);
            },
          },
        );
        last.rv = rv;
      }
      out(`acquire done ${rv}`);
      return exit(rv);
    }
    case 'convert': {
      out(`convert pid ${o.pid}`);
      const r = resources[0] ?? resStruct(undefined);
      const { rv } = await call(Cmd.CONVERT, rq.reqResource(Cmd.CONVERT, r, { data2: o.pid }));
      out(`convert done ${rv}`);
      return exit(rv);
    }
    case 'release': {
      out(`release pid ${o.pid}`);
      let rv: number;
      if (o.orphan) {
        // -s LS -O 1: every orphan of the lockspace (empty resource name)
        const list = resources.length ? resources : [resStruct({ lockspaceName: o.lockspace?.name ?? '', name: '', disks: [], shared: false, lverSet: false, lver: 0 })];
        rv = (await call(Cmd.RELEASE, rq.reqRelease(list, ReleaseFlag.ORPHAN, o.pid))).rv;
      } else {
        rv = (await call(Cmd.RELEASE, rq.reqRelease(resources, o.all ? ReleaseFlag.ALL : 0, o.pid))).rv;
      }
      out(`release done ${rv}`);
      return exit(rv);
    }
    case 'inquire':
      return inquireAction(o, call, out);
    case 'request': {
      out('request');
      const r = resources[0] ?? resStruct(undefined);
      const { rv } = await call(Cmd.REQUEST, rq.reqResourceDisks(Cmd.REQUEST, r, { data: o.forceMode }));
      out(`request done ${rv}`);
      return exit(rv);
    }
    case 'examine': {
      out('examine');
      let rv: number;
      if (o.lockspace?.path) rv = (await call(Cmd.EXAMINE_LOCKSPACE, rq.reqLockspace(Cmd.EXAMINE_LOCKSPACE, lsStruct(o.lockspace)))).rv;
      else if (resources[0]) rv = (await call(Cmd.EXAMINE_RESOURCE, rq.reqResource(Cmd.EXAMINE_RESOURCE, resources[0]))).rv;
      else rv = -22;
      out(`examine done ${rv}`);
      return exit(rv);
    }
    case 'set_event': {
      out(`set_event ${o.hostId} ${o.generation} event 0x${hex(o.event)} data 0x${hex(o.data)}`);
      const he = { hostId: Number(o.hostId), generation: Number(o.generation), event: Number(o.event), data: Number(o.data) };
      const { rv } = await call(Cmd.SET_EVENT, rq.reqLockspaceEvent(Cmd.SET_EVENT, emptyLockspace(o.lockspace?.name ?? ''), he));
      out(`set_event done ${rv}`);
      return exit(rv);
    }
    case 'set_config': {
      let cmd = 0;
      if (o.used !== undefined) cmd = o.used ? ConfigCmd.USED : ConfigCmd.UNUSED;
      if (o.orphan !== undefined) cmd = o.orphan ? ConfigCmd.USED_BY_ORPHANS : ConfigCmd.UNUSED_BY_ORPHANS;
      const name = o.lockspace?.name ?? '';
      out(`set_config ${name} ${cmd}`);
      const { rv } = await call(Cmd.SET_CONFIG, rq.reqLockspace(Cmd.SET_CONFIG, emptyLockspace(name), { data: cmd }));
      out(`set_config done ${rv}`);
      return exit(rv);
    }
    case 'version': {
      const { rv, rep } = await call(Cmd.VERSION, rq.reqNoPayload(Cmd.VERSION));
      const ver = rv === 0 && rep ? rep.header.data2 >>> 0 : 0;
      const proto = rv === 0 && rep ? rep.header.version : 0;
      if (rv < 0) out(`daemon version error ${rv}`);
      out(`client version ${versionText(VERSION_HEX)}`);
      out(`daemon version ${versionText(ver)}`);
      out(`client socket protocol ${protoText(1)}`);
      out(`daemon socket protocol ${protoText(proto)}`);
      return 0;
    }
    case 'format': {
      const { rv } = await call(Cmd.FORMAT_RINDEX, rq.reqRindex(Cmd.FORMAT_RINDEX, rindexStruct(o, true)));
      out(`format done ${rv}`);
      return exit(rv);
    }
    case 'rebuild': {
      const { rv } = await call(Cmd.REBUILD_RINDEX, rq.reqRindex(Cmd.REBUILD_RINDEX, rindexStruct(o, false)));
      out(`rebuild done ${rv}`);
      return exit(rv);
    }
    case 'create': {
      const re = rentry(o.rentry?.name ?? '', 0);
      // the 3.8.5 CLI sends neither -m nor -n with create (data and data2 are 0 on the wire)
      const { rv, rep } = await call(Cmd.CREATE_RESOURCE, rq.reqRindexEntry(Cmd.CREATE_RESOURCE, rindexStruct(o, false), re));
      out(`create_resource done ${rv}`);
      if (rv === 0 && rep?.rentry) out(`offset ${rep.rentry.offset}`);
      return exit(rv);
    }
    case 'delete': {
      const re = rentry(o.rentry?.name ?? '', o.rentry?.offset ?? 0);
      const { rv } = await call(Cmd.DELETE_RESOURCE, rq.reqRindexEntry(Cmd.DELETE_RESOURCE, rindexStruct(o, false), re));
      out(`delete_resource done ${rv}`);
      return exit(rv);
    }
    case 'lookup': {
      const re = rentry(o.rentry?.name ?? '', o.rentry?.offset ?? 0);
      const { rv, rep } = await call(Cmd.LOOKUP_RINDEX, lookupBytes(rindexStruct(o, false), re));
      out(`lookup done ${rv}`);
      if (rv === 0 && rep?.rentry) out(`name ${rep.rentry.name || '-'} offset ${rep.rentry.offset}`);
      return exit(rv);
    }
    case 'update': {
      const re = rentry(o.rentry?.name ?? '', o.rentry?.offset ?? 0);
      const flags = o.clear ? RindexFlag.RXUP_REM : RindexFlag.RXUP_ADD;
      const { rv } = await call(Cmd.UPDATE_RINDEX, rq.reqRindexEntry(Cmd.UPDATE_RINDEX, rindexStruct(o, false), re, { cmdFlags: flags }));
      out(`update done ${rv}`);
      return exit(rv);
    }
    case 'command':
      return commandAction(o, resources, client, env, out, xml);
  }
  // ACTIONS was checked on entry, so only a name in ACTIONS without a case above lands here.
  out(`client action "${action}" is unknown`);
  return 1;
}

/**
 * Why `command --domain-xml` acquired nothing, naming the lease when it can be told: the daemon
 * answers one result for a whole ACQUIRE, so a lockspace that is not joined (-ENOSPC) is looked
 * up in the daemon's lockspace list; other results name the code and the leases sent.
 */
async function explainXmlFailure(xml: DomainXmlLoad, rv: number, fromArgs: number, taken: number, released: number, client: SanlockClient): Promise<string> {
  const code = `${rv} ${codeName(rv)}: ${resultSentence(rv)}`;
  const undo = taken === 0 ? 'nothing acquired' : released >= 0 ? `the ${taken} leases already taken were released, nothing is held` : `releasing the ${taken} leases already taken failed (${released}); they go when the registration closes`;
  if (rv === -Errno.ENOSPC) {
    const rep = await client.call(Cmd.GET_LOCKSPACES, rq.reqNoPayload(Cmd.GET_LOCKSPACES)).catch(() => null);
    if (rep && rep.result >= 0) {
      const joined = new Set((rep.lockspaces ?? []).filter((l) => !(l.flags & (LsFlag.ADD | LsFlag.REM))).map((l) => l.name));
      const missing = xml.leases.filter((l) => !joined.has(wireString(l.lockspace)));
      if (missing.length) {
        return missing.map((l) => `domain XML ${xml.file}: ${describeLease(l)}: lockspace ${JSON.stringify(l.lockspace)} is not joined on this host (acquire returned ${code})`).join('\n') + `\ndomain XML ${xml.file}: ${undo}`;
      }
    }
  }
  const first = Math.max(0, taken - fromArgs);
  const sent = xml.leases.slice(first, Math.max(0, taken + MAX_RESOURCES - fromArgs)).map((l) => `#${l.index}`).join(' ');
  return `domain XML ${xml.file}: acquire of leases ${sent || '(from -r)'} failed with ${code}; ${undo}`;
}

/**
 * Tells a person what add_lockspace waits for: taking a free host_id costs one delta lease
 * acquire (a short delay of 2·io_timeout plus I/O, 2..5·io_timeout in practice), one that
 * looks held waits until its owner is surely dead (host_dead). Polls inq_lockspace meanwhile.
 */
function addLockspaceProgress(o: SanlockOptions, client: SanlockClient, env: ClientEnv, started: number): () => void {
  const io = o.ioTimeout > 0 ? o.ioTimeout : 10;
  const name = o.lockspace?.name ?? '';
  const free = deltaShortDelay(io);
  env.writeErr?.(
    `add_lockspace: joining ${name} as host_id ${o.lockspace?.hostId ?? 0}; expect ${free}..${5 * io} s (io_timeout ${io}), ` +
      `up to ${deltaAcquireHeldWait(io)} s if the host_id looks held by another host\n`,
  );
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    const rep = await client.call(Cmd.INQ_LOCKSPACE, rq.reqLockspace(Cmd.INQ_LOCKSPACE, lsStruct(o.lockspace))).catch(() => null);
    if (stopped) return;
    const r = rep?.result;
    const state = r === -115 ? 'still joining' : r === 0 ? 'joined' : `inq_lockspace ${r ?? 'no reply'}`;
    env.writeErr?.(`add_lockspace: ${state}, ${Math.round((Date.now() - started) / 1000)} s elapsed\n`);
  };
  const timer = setInterval(() => void tick(), Math.max(1000, io * 500));
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

function versionText(v: number): string {
  return `${(v >>> 24) & 0xff}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff} (0x${(v >>> 0).toString(16).padStart(8, '0')})`;
}

function protoText(v: number): string {
  return `${(v >>> 16) & 0xffff}.${v & 0xffff}`;
}

async function inquireAction(
  o: SanlockOptions,
  call: (cmd: number, b: Buffer) => Promise<{ rv: number; rep: Reply | null }>,
  out: (l: string) => void,
): Promise<number> {
  out(`inquire pid ${o.pid}`);
  const { rv, rep } = await call(Cmd.INQUIRE, rq.reqNoPayload(Cmd.INQUIRE, { data2: o.pid }));
  out(`inquire done ${rv} res_count ${rep?.count ?? 0}`);
  if (rv < 0) return 1;
  const state = rep?.state ?? null;
  out(`"${state ?? '(null)'}"`);
  if (!o.debug || state === null) return rv === 0 ? 0 : 1;
  const parsed = stateToArgs(state);
  const list = parsed.ok ? parsed.value : [];
  out(`\nstate_to_args done ${parsed.ok ? 0 : parsed.code} res_count ${list.length}`);
  if (!parsed.ok) return 1;
  for (const r of list) out(`"${r.lockspaceName}:${r.name}:${r.disks[0]?.path ?? ''}:${r.disks[0]?.offset ?? 0}:${r.lver}"`);
  const again = argsToState(list);
  out(`\nargs_to_state done ${again.ok ? 0 : again.code}`);
  if (!again.ok) return 1;
  out(`"${again.value}"`);
  return 0;
}

/**
 * Node's sockets are O_NONBLOCK, a flag of the open file shared with the child, and libsanlock
 * in the command would then see short reads (recv MSG_WAITALL returns at once). perl (always
 * present on Debian) clears it on fd 3 and execs the command; setpriv makes the command die
 * with us. Each wrapper is used when installed.
 */
const PERL_BLOCKING_EXEC =
  'BEGIN { $^F = 1023 } use Fcntl; open(my $s, "+<&=", 3) or die "fd 3: $!"; ' +
  'fcntl($s, F_SETFL, fcntl($s, F_GETFL, 0) & ~O_NONBLOCK); exec { $ARGV[0] } @ARGV or die "execv failed: $!\\n"';

function execWrappers(): string[] {
  const find = (names: string[]) => names.find((p) => existsSync(p));
  const setpriv = find(['/usr/bin/setpriv', '/bin/setpriv']);
  const perl = find(['/usr/bin/perl', '/bin/perl']);
  return [...(setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []), ...(perl ? [perl, '-e', PERL_BLOCKING_EXEC] : [])];
}

/**
 * `command -r RES… -c PATH ARGS`: sanlock registers, acquires on that connection and execv's
 * PATH so the command itself holds the registered connection. Node cannot exec in place, so
 * PATH runs as our child and inherits the registered socket as fd 3 (our copy is closed): the
 * leases live exactly as long as the command (and anything it passes fd 3 to). The daemon
 * recorded OUR pid at REGISTER, so the child is started through `setpriv --pdeathsig KILL`
 * (when available; see execWrappers) to die with us if the daemon kills that pid, and we forward SIGTERM/INT/
 * HUP/USR1/USR2 to it; its exit status becomes ours. Without -c we hold the leases until
 * killed, as sanlock does.
 */
async function commandAction(
  o: SanlockOptions,
  resources: SanlkResource[],
  client: SanlockClient,
  env: ClientEnv,
  out: (l: string) => void,
  xml?: DomainXmlLoad,
): Promise<number> {
  // sanlock's lines sit in the stdio buffer: a terminal sees them at once, a pipe loses them
  // when execv replaces the process, and gets them at exit when no exec happens.
  const held: string[] = [];
  const say = (l: string) => (env.isTTY ? out(l) : held.push(l));
  const flush = () => {
    for (const l of held.splice(0)) out(l);
  };
  say('register');
  let reg: Awaited<ReturnType<SanlockClient['register']>>;
  try {
    reg = await client.register();
  } catch (e) {
    if (e instanceof SanlockClientError) {
      say(`register done ${e.code}`);
      flush();
      return 0; // sanlock leaves rv at 0 when register fails
    }
    throw e;
  }
  const fd = reg.fd;
  say(`register done ${fd}`);
  const flags = o.orphan ? AcquireFlag.ORPHAN : 0;
  // libvirt's plugin names the owner after the domain (status shows `p PID NAME`)
  const opts = { ...emptyOptions(), ownerName: xml?.ownerName ?? '' };
  // One ACQUIRE is all-or-nothing but takes at most 8 resources (more is -E2BIG); a domain XML
  // may list more, so they go in batches of 8 and a failing batch releases the earlier ones.
  let rv = 0;
  let taken = 0;
  for (let i = 0; i < resources.length || i === 0; i += MAX_RESOURCES) {
    const batch = resources.slice(i, i + MAX_RESOURCES);
    say(`acquire fd ${fd}`);
    rv = (await rvOf(reg.call(Cmd.ACQUIRE, rq.reqAcquire(batch, opts, flags, -1)))).rv;
    say(`acquire done ${rv}`);
    if (rv < 0) break;
    taken += batch.length;
  }
  if (rv < 0) {
    let released = 0;
    if (taken > 0) released = (await rvOf(reg.call(Cmd.RELEASE, rq.reqRelease([], ReleaseFlag.ALL, -1)))).rv;
    if (xml) env.writeErr?.(`${await explainXmlFailure(xml, rv, o.resources.length, taken, released, client)}\n`);
    flush();
    reg.close();
    return 1;
  }
  if (!o.command) {
    flush();
    await new Promise<void>((resolve) => reg.conn.socket.once('close', () => resolve()));
    return 0;
  }
  const [path, ...rest] = o.command.map((a) => Buffer.from(a, 'latin1').toString('utf8'));
  const chain = [...execWrappers(), path!, ...rest];
  const child = spawn(chain[0]!, chain.slice(1), { stdio: ['inherit', 'inherit', 'inherit', reg.conn.socket] });
  // The command now owns the registered socket (as after sanlock's execv): our copy is closed so
  // that our event loop cannot swallow replies meant for the command.
  child.once('spawn', () => reg.close());
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const sigs: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
  const handlers = sigs.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  const code = await new Promise<number>((resolve) => {
    child.once('error', (e) => {
      process.stderr.write(`execv failed: ${e.message}\n`);
      resolve(1);
    });
    child.once('exit', (c, sig) => resolve(c ?? 128 + (sig ? (osConstants.signals[sig] ?? 0) : 0)));
  });
  for (const [s, h] of handlers) process.off(s, h);
  reg.close();
  return code;
}
