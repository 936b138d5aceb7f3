// The daemon's socket side: accept, per-connection framing by command (never by `length`),
// the three command classes of protocol.md §3.3, class-A commands inline, registration and
// client death, status/log_dump/version/shutdown.
import assert from 'node:assert';
import { createServer, type Server, type Socket } from 'node:net';
import { Errno, errorCode } from '../codes.js';
import { type Client, ClientTable, RESTRICT_ALL } from './clients.js';
import type { DaemonConfig } from './config.js';
import { monotime } from './clock.js';
import type { DaemonLog } from './log.js';
import { spawn } from 'node:child_process';
import { linkSync, renameSync } from 'node:fs';
import { peerCred, ProcessHandle, socketFd } from './native.js';
import { type PrivHelper, procStartTime } from './priv-helper.js';
import { metrics } from './metrics/sink.js';
import {
  Cmd,
  cmdStr,
  COMMANDS,
  encodeLogDumpReply,
  encodeReplyHeader,
  encodeShutdownWaitDone,
  encodeStateRecord,
  encodeStdReply,
  encodeVersionReply,
  isKnownCmd,
} from '../protocol/commands.js';
import { decodeHeader, HEADER_SIZE, protoTooNew, SM_MAGIC, SM_PROTO, type SmHeader, VERSION_HEX } from '../protocol/header.js';
import { requestDisk, requestResource } from '../protocol/request-structs.js';
import {
  DISK_SIZE,
  HOST_EVENT_SIZE,
  KILLPATH_SIZE,
  LOCKSPACE_SIZE,
  MAX_DISKS,
  MAX_LVB_LEN,
  MAX_RESOURCES,
  OPTIONS_SIZE,
  RENTRY_SIZE,
  RESOURCE_SIZE,
  RINDEX_SIZE,
  type SanlkResource,
  StateType,
} from '../protocol/structs.js';

export const VERSION_STR = '3.8.5';

/**
 * killpath args as sanlock's helper splits them: whitespace separates; `\\` followed by
 * whitespace or a backslash keeps that character; any other escape, a trailing backslash or a
 * character that is neither printable punctuation nor alphanumeric stops parsing (what was
 * collected so far is kept). At most 8 argv entries including the path, so 7 arguments.
 */
export const KILLPATH_MAX_ARGS = 7;

export function splitKillArgs(args: string): string[] {
  const out: string[] = [];
  let cur = '';
  const isSpace = (ch: string): boolean => ch === ' ' || (ch >= '\t' && ch <= '\r');
  const isWordChar = (ch: string): boolean => ch > ' ' && ch < '\x7f';
  for (let i = 0; i < args.length && out.length < KILLPATH_MAX_ARGS; i++) {
    let ch = args[i]!;
    if (ch === '\\') {
      if (i === args.length - 1) break;
      ch = args[++i]!;
      if (ch === '\\' || isSpace(ch)) {
        cur += ch;
        continue;
      }
      break;
    }
    if (isWordChar(ch)) cur += ch;
    else if (isSpace(ch)) {
      if (cur) out.push(cur);
      cur = '';
    } else break;
  }
  if (cur && out.length < KILLPATH_MAX_ARGS) out.push(cur);
  return out;
}

/** A decoded request handed to a command handler. */
export interface Request {
  /** the connection the request came in on */
  client: Client;
  /** class C: the registered client the command acts on */
  target?: Client;
  h: SmHeader;
  /** fixed payload as read (lockspace/disk/rindex structs, killpath strings) */
  payload: Buffer;
  /** resources with their disks, for commands carrying sanlk_resource */
  resources: SanlkResource[];
  /** sanlk_options (acquire) or the lvb bytes (set_lvb) */
  extra: Buffer;
  /** a handler that keeps the socket (REG_EVENT) sets this; the server then forgets it */
  handedOver?: boolean;
}

/** Reply bytes, or null for "no reply". */
export type Handler = (req: Request) => Promise<Buffer | Buffer[] | null>;

const cmdsOfClass = (cls: 'A' | 'C'): ReadonlySet<number> => new Set([...COMMANDS.values()].filter((i) => i.cls === cls).map((i) => i.cmd));
const CLASS_A = cmdsOfClass('A');
const CLASS_C = cmdsOfClass('C');
/** class A commands after which the daemon keeps the connection open */
const CLASS_A_KEEP: ReadonlySet<number> = new Set([Cmd.REGISTER, Cmd.RESTRICT, Cmd.VERSION]);

export interface DaemonHooks {
  /** number of lockspaces on any list (add, joined, rem): shutdown is refused while > 0 */
  lockspaceCount(): number;
  /** LOCKSPACE records (each followed by its sanlk_lockspace) for STATUS */
  lockspaceStatus(): Buffer[];
  /** RESOURCE records for STATUS */
  resourceStatus(): Buffer[];
  /** a registered client's socket closed (and no command is running for it) */
  clientDead(c: Client): void;
  /** once a second from the main loop */
  tick(): void;
  /** forced shutdown: treat every lockspace like rem_lockspace and wait until all are gone */
  forceShutdown(): Promise<void>;
}

const noHooks: DaemonHooks = {
  lockspaceCount: () => 0,
  lockspaceStatus: () => [],
  resourceStatus: () => [],
  clientDead: () => {},
  tick: () => {},
  forceShutdown: async () => {},
};

/** Counting semaphore standing in for sanlock's worker thread pool. */
class WorkerPool {
  private busy = 0;
  private queue: (() => void)[] = [];
  constructor(private readonly max: number) {
    assert(max >= 1);
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy >= this.max) await new Promise<void>((r) => this.queue.push(r));
    else this.busy++;
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.busy--;
    }
  }
}

export class Daemon {
  readonly clients = new ClientTable();
  readonly handlers = new Map<number, Handler>();
  hooks: DaemonHooks = noHooks;
  readonly startMonotime = monotime();
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private exitRequested = false;
  private exiting = false;
  private shutdownWaiters: Client[] = [];
  private resolveDone!: (code: number) => void;
  readonly done: Promise<number>;
  private readonly workers: WorkerPool;
  private readonly sockets = new Set<Socket>();
  private sockPath: string | undefined;
  /** root helper, present when the daemon dropped to -U/-G (main.ts) */
  privHelper: PrivHelper | undefined;

  constructor(
    readonly cfg: DaemonConfig,
    readonly log: DaemonLog,
    readonly hostName: string,
    readonly uid: number,
    readonly gid: number,
  ) {
    this.done = new Promise((r) => {
      this.resolveDone = r;
    });
    this.workers = new WorkerPool(Math.max(2, cfg.maxWorkerThreads));
    this.handle(Cmd.SHUTDOWN_WAIT, (req) => this.shutdownWait(req));
  }

  /** SHUTDOWN_WAIT (class B): -EBUSY while lockspaces exist, else a cmd-0 header at exit. */
  private async shutdownWait(req: Request): Promise<Buffer | null> {
    const rv = this.requestShutdown(req.h.data !== 0, req.client);
    if (rv < 0) return encodeReplyHeader(req.h, rv);
    return null;
  }

  handle(cmd: number, h: Handler): void {
    assert(!this.handlers.has(cmd), `handler for ${cmd} registered twice`);
    this.handlers.set(cmd, h);
  }

  /** Starts listening on an already-created server socket path. */
  listen(path: string): Promise<void> {
    this.sockPath = path;
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (sock) => this.accept(sock));
    this.server = server;
    server.maxConnections = 1022;
    this.timer = setInterval(() => this.mainTick(), 1000);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      // sanlock uses a backlog of 5; a longer queue only spares clients EAGAIN on connect while
      // the event loop is busy (e.g. draining a flood of junk), and changes nothing else
      server.listen({ path, backlog: 128 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(sock: Socket): void {
    if (this.exiting) {
      sock.destroy();
      return;
    }
    let fd = -1;
    try {
      fd = socketFd(sock);
    } catch {
      fd = -1;
    }
    const c = this.clients.add(sock, fd);
    if (!c) {
      this.log.error('client_add no free slot');
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.on('error', () => {
      // ECONNRESET etc.: the reader sees the close
    });
    sock.on('close', () => this.sockets.delete(sock));
    if (this.cfg.debugClients) this.log.debug(`cl ${c.ci}:${fd} new`);
    void this.connectionLoop(c);
  }

  /** Reads and runs one message at a time: a connection is not polled while its command runs. */
  private async connectionLoop(c: Client): Promise<void> {
    const reader = c.reader!;
    for (let n = 1; ; n++) {
      if (c.closed) return;
      // buffered messages resolve without ever leaving the microtask queue: yield now and then so
      // one client streaming junk cannot starve accept() and every other connection
      if (n % 16 === 0) await new Promise((r) => setImmediate(r));
      const hb = await reader.read(HEADER_SIZE);
      if (!hb) break;
      const hd = decodeHeader(hb);
      assert(hd.ok, 'a full header was read');
      const h = hd.value;
      if (h.magic !== SM_MAGIC) {
        this.log.error(`ci ${c.ci} recv ${HEADER_SIZE} magic ${h.magic.toString(16)} vs ${SM_MAGIC.toString(16)}`);
        continue;
      }
      if (c.restricted & RESTRICT_ALL) {
        this.log.error(`ci ${c.ci} fd ${c.fd} pid ${c.pid} cmd ${h.cmd} restrict all`);
        continue;
      }
      if (protoTooNew(h, Cmd.VERSION)) {
        this.log.error(`ci ${c.ci} recv ${HEADER_SIZE} proto ${h.version.toString(16)} vs ${SM_PROTO.toString(16)}`);
        continue;
      }
      if (!isKnownCmd(h.cmd)) {
        this.log.error(`ci ${c.ci} cmd ${h.cmd} unknown`);
        continue;
      }
      let keep: boolean;
      try {
        keep = await this.dispatch(c, h);
      } catch (err) {
        // a failure outside a handler (framing, reply encoding): the stream position is unknown,
        // so the connection ends, through the normal close path so its slot is freed (returning
        // without it left the slot, registered or not, in the table for good)
        this.log.error(`ci ${c.ci} cmd ${h.cmd} failed: ${(err as Error).stack ?? err}`);
        this.connectionClosed(c);
        return;
      }
      if (!keep) return;
    }
    this.connectionClosed(c);
  }

  private connectionClosed(c: Client): void {
    if (c.closed) return;
    c.closed = true;
    const sock = c.sock;
    if (sock?.writableEnded && !sock.destroyed) {
      // a reply is still being flushed (status, log_dump can be large): let it drain, and
      // drop the socket later if the peer never reads it
      setTimeout(() => sock.destroy(), 10_000).unref();
    } else {
      sock?.destroy();
    }
    if (this.cfg.debugClients) this.log.debug(`cl ${c.ci}:${c.fd} closed pid ${c.pid}`);
    if (c.registered) {
      c.pidDead = true;
      if (c.cmdActive) {
        // the running command finishes, then frees the client (protocol.md §5.3)
        c.needFree = true;
        return;
      }
      this.freeDeadClient(c, 0);
      return;
    }
    this.clients.remove(c);
  }

  private freeDeadClient(c: Client, cmdActive: number): void {
    if (c.freed) return;
    c.freed = true;
    this.log.debug(`client_pid_dead ${c.ci},${c.fd},${c.pid} cmd_active ${cmdActive} suspend 0`);
    if (this.clients.slots[c.ci] === c) this.clients.remove(c);
    this.hooks.clientDead(c);
    c.proc?.close();
    c.proc = undefined;
  }

  /**
   * Sends sig to a registered client's process through its pidfd; sig 100 runs the client's
   * killpath program instead (daemon.md §5.3), with the pid appended when it asked for that.
   */
  signalClient(c: Client, sig: number): void {
    metrics.kill(sig);
    if (sig === 100) {
      if (!c.killpath) return;
      const argv = splitKillArgs(c.killargs);
      if (c.killpathPidFlag && argv.length < KILLPATH_MAX_ARGS) argv.push(String(c.pid));
      // sanlock runs killpath from its root helper; so do we once privileges are dropped
      if (this.privHelper?.send({ t: 'run', path: c.killpath, args: argv })) return;
      try {
        const child = spawn(c.killpath, argv, { stdio: 'ignore', detached: true });
        child.on('error', (err) => this.log.error(`killpath ${c.killpath} failed: ${err.message}`));
        child.unref();
      } catch (err) {
        this.log.error(`killpath ${c.killpath} failed: ${(err as Error).message}`);
      }
      return;
    }
    if (!c.proc) {
      this.log.error(`kill ${c.pid} sig ${sig}: no process handle`);
      return;
    }
    const rv = c.proc.signal(sig);
    // EPERM: the daemon dropped to -U/-G and the client belongs to another user
    if (rv === -Errno.EPERM && this.privHelper?.send({ t: 'kill', pid: c.pid, sig, start: c.startTime })) return;
    if (rv < 0 && rv !== -3) this.log.error(`kill ${c.pid} sig ${sig} errno ${-rv}`);
  }

  /** Runs one request; returns whether the connection stays open for further messages. */
  private async dispatch(c: Client, h: SmHeader): Promise<boolean> {
    if (CLASS_A.has(h.cmd)) return this.classA(c, h);
    if (this.cfg.debugCmds & (1n << BigInt(h.cmd))) this.log.debug(`cmd_${cmdStr(h.cmd)} ${c.ci},${c.fd} ...`);
    if (CLASS_C.has(h.cmd)) {
      const pre = this.classCTarget(h, c);
      if (typeof pre === 'number') {
        await this.drainPayload(c, h, 0);
        c.send(encodeReplyHeader(h, pre));
        return true;
      }
      const target = pre;
      target.cmdActive = h.cmd;
      c.cmdActive = h.cmd;
      try {
        return await this.runWorkerCmd(c, h, target);
      } finally {
        target.cmdActive = 0;
        target.cmdLast = h.cmd;
        c.cmdActive = 0;
        c.cmdLast = h.cmd;
        if (target.needFree && target.pidDead) this.freeDeadClient(target, h.cmd);
        // a registered sender acting for another pid that went away meanwhile (e.g. cut
        // mid-payload) was only marked: free it here or its slot leaks
        if (c !== target && c.needFree && c.pidDead) this.freeDeadClient(c, h.cmd);
      }
    }
    c.cmdActive = h.cmd;
    try {
      return await this.runWorkerCmd(c, h, undefined);
    } finally {
      c.cmdActive = 0;
      c.cmdLast = h.cmd;
      // closed while this command ran (a registered client cut mid-payload): connectionClosed
      // only marked it, as the command still held it; nobody else frees it
      if (c.needFree && c.pidDead) this.freeDeadClient(c, h.cmd);
    }
  }

  private classCTarget(h: SmHeader, c: Client): Client | number {
    let target: Client | undefined;
    if (h.data2 === -1) {
      target = c;
    } else {
      target = this.clients.findPidAny(h.data2);
      if (!target) return -Errno.ESRCH;
    }
    if (!target.registered) return -Errno.EBUSY;
    if (target.pidDead || target.needFree) return -Errno.EBUSY;
    if (target.cmdActive) return -Errno.EBUSY;
    if (h.cmd === Cmd.ACQUIRE && target.killCount > 0) return -Errno.EBUSY;
    return target;
  }

  /** Drops whatever of the message's payload the peer sent (bounded by `length`, 20 ms). */
  private async drainPayload(c: Client, h: SmHeader, consumed: number): Promise<void> {
    const rest = h.length - HEADER_SIZE - consumed;
    if (rest > 0) await c.reader!.drain(Math.min(rest, 64 * 1024 * 1024));
  }

  /**
   * Reads the payload on the connection (a client that never sends it holds only its own
   * connection), then runs the handler on the bounded worker pool.
   */
  private async runWorkerCmd(c: Client, h: SmHeader, target: Client | undefined): Promise<boolean> {
    const got = await this.readPayload(c, h);
    if (got === 'closed') return this.closeFromCommand(c);
    if (typeof got === 'number') {
      c.send(encodeReplyHeader(h, got));
      return true;
    }
    got.target = target;
    const handler = this.handlers.get(h.cmd);
    let reply: Buffer | Buffer[] | null;
    if (!handler) {
      // Every command in the protocol table has a handler (checked by tests); a gap answers -EINVAL.
      this.log.error(`cmd ${cmdStr(h.cmd)} has no handler`);
      reply = encodeReplyHeader(h, -Errno.EINVAL);
    } else {
      try {
        reply = await this.workers.run(() => handler(got));
      } catch (err) {
        return this.handlerFailed(c, h, err);
      }
    }
    if (got.handedOver) return false;
    if (reply) c.send(reply);
    return true;
  }

  /**
   * A handler threw (a bug, or input it did not expect): the payload was read whole, so the
   * stream is still framed. A command with a plain header reply gets the error code and keeps
   * its connection (a registered client keeps its leases, as with any failed command); one whose
   * client expects a reply body cannot be answered by a bare header without hanging the client,
   * so its connection is closed through the normal close path (slot freed, registered client
   * handled as dead). Returns whether the connection stays open.
   */
  private handlerFailed(c: Client, h: SmHeader, err: unknown): boolean {
    const code = errorCode(err);
    this.log.error(`ci ${c.ci} cmd ${cmdStr(h.cmd)} handler failed ${code}: ${(err as Error)?.stack ?? err}`);
    if (COMMANDS.get(h.cmd)?.reply === 'std' && !c.sock?.destroyed) {
      c.send(encodeReplyHeader(h, code));
      return true;
    }
    this.connectionClosed(c);
    return false;
  }

  private closeFromCommand(c: Client): boolean {
    this.connectionClosed(c);
    return false;
  }

  /**
   * Reads the fixed payload of a command (protocol.md §4.3). Returns 'closed' when the peer
   * went away mid-message, or a negative result after an early validation error (payload
   * drained), else the request.
   */
  private async readPayload(c: Client, h: SmHeader): Promise<Request | 'closed' | number> {
    const r = c.reader!;
    const req: Request = { client: c, h, payload: Buffer.alloc(0), resources: [], extra: Buffer.alloc(0) };
    const fixed = async (n: number): Promise<boolean> => {
      const b = await r.read(n);
      if (!b) return false;
      req.payload = b;
      return true;
    };
    let consumed = 0;
    const readRes = async (withDisks: boolean): Promise<SanlkResource | 'closed' | number> => {
      const rb = await r.read(RESOURCE_SIZE);
      if (!rb) return 'closed';
      consumed += RESOURCE_SIZE;
      const res = requestResource(rb);
      if (!withDisks) return res;
      if (res.numDisks === 0 || res.numDisks > MAX_DISKS) return -Errno.ERANGE;
      const db = await r.read(res.numDisks * DISK_SIZE);
      if (!db) return 'closed';
      consumed += res.numDisks * DISK_SIZE;
      for (let i = 0; i < res.numDisks; i++) res.disks.push(requestDisk(db, i * DISK_SIZE));
      return res;
    };
    const fail = async (code: number): Promise<number> => {
      await this.drainPayload(c, h, consumed);
      return code;
    };
    switch (h.cmd) {
      case Cmd.ADD_LOCKSPACE:
      case Cmd.REM_LOCKSPACE:
      case Cmd.EXAMINE_LOCKSPACE:
      case Cmd.HOST_STATUS:
      case Cmd.INQ_LOCKSPACE:
      case Cmd.WRITE_LOCKSPACE:
      case Cmd.READ_LOCKSPACE:
      case Cmd.GET_HOSTS:
      case Cmd.END_EVENT:
      case Cmd.SET_CONFIG:
      case Cmd.RENEWAL:
        return (await fixed(LOCKSPACE_SIZE)) ? req : 'closed';
      case Cmd.FORMAT_RINDEX:
      case Cmd.REBUILD_RINDEX:
        return (await fixed(RINDEX_SIZE)) ? req : 'closed';
      case Cmd.REG_EVENT:
      case Cmd.SET_EVENT:
        return (await fixed(LOCKSPACE_SIZE + HOST_EVENT_SIZE)) ? req : 'closed';
      case Cmd.UPDATE_RINDEX:
      case Cmd.LOOKUP_RINDEX:
      case Cmd.CREATE_RESOURCE:
      case Cmd.DELETE_RESOURCE:
        return (await fixed(RINDEX_SIZE + RENTRY_SIZE)) ? req : 'closed';
      case Cmd.ALIGN:
        return (await fixed(DISK_SIZE)) ? req : 'closed';
      case Cmd.KILLPATH:
        return (await fixed(KILLPATH_SIZE)) ? req : 'closed';
      case Cmd.ACQUIRE: {
        if (h.data < 0 || h.data > MAX_RESOURCES) return fail(-Errno.E2BIG);
        for (let i = 0; i < h.data; i++) {
          const res = await readRes(true);
          if (res === 'closed') return 'closed';
          if (typeof res === 'number') return fail(res);
          req.resources.push(res);
        }
        const ob = await r.read(OPTIONS_SIZE);
        if (!ob) return 'closed';
        req.extra = ob;
        return req;
      }
      case Cmd.RELEASE: {
        if (h.data < 0 || h.data > MAX_RESOURCES) return fail(-Errno.E2BIG);
        for (let i = 0; i < h.data; i++) {
          const res = await readRes(false);
          if (res === 'closed') return 'closed';
          if (typeof res === 'number') return fail(res);
          req.resources.push(res);
        }
        return req;
      }
      case Cmd.REQUEST:
      case Cmd.WRITE_RESOURCE:
      case Cmd.READ_RESOURCE:
      case Cmd.READ_RESOURCE_OWNERS: {
        const res = await readRes(true);
        if (res === 'closed') return 'closed';
        if (typeof res === 'number') return fail(res);
        req.resources.push(res);
        return req;
      }
      case Cmd.EXAMINE_RESOURCE:
      case Cmd.GET_LVB:
      case Cmd.CONVERT: {
        const res = await readRes(false);
        if (res === 'closed') return 'closed';
        if (typeof res === 'number') return fail(res);
        req.resources.push(res);
        return req;
      }
      case Cmd.SET_LVB: {
        const res = await readRes(false);
        if (res === 'closed') return 'closed';
        if (typeof res === 'number') return fail(res);
        req.resources.push(res);
        const lvblen = h.length - HEADER_SIZE - RESOURCE_SIZE;
        if (lvblen > MAX_LVB_LEN) return fail(-Errno.E2BIG);
        if (lvblen > 0) {
          const lb = await r.read(lvblen);
          if (!lb) return 'closed';
          req.extra = lb;
        }
        return req;
      }
      default:
        return req; // INQUIRE, SHUTDOWN_WAIT and class A commands without payload
    }
  }

  // ---------------------------------------------------------------- class A

  private async classA(c: Client, h: SmHeader): Promise<boolean> {
    if (h.cmd !== Cmd.VERSION && this.cfg.debugCmds & (1n << BigInt(h.cmd))) {
      this.log.debug(`cmd_${cmdStr(h.cmd)} ${c.ci},${c.fd}`);
    }
    switch (h.cmd) {
      case Cmd.REGISTER:
        this.register(c);
        return true;
      case Cmd.VERSION:
        c.send(encodeVersionReply(VERSION_HEX));
        return true;
      case Cmd.RESTRICT:
        c.restricted = h.cmdFlags;
        c.send(encodeReplyHeader(h, 0));
        return true;
      case Cmd.SHUTDOWN:
        this.requestShutdown(h.data !== 0, undefined);
        c.sock?.end();
        this.connectionClosed(c);
        return false;
      case Cmd.STATUS:
        c.internalName = 'status';
        c.sendAndClose([encodeStdReply(h, 0), ...this.statusRecords(h.data)]);
        this.connectionClosed(c);
        return false;
      case Cmd.LOG_DUMP: {
        const text = this.log.dump();
        c.sendAndClose(encodeLogDumpReply(h, text));
        this.connectionClosed(c);
        return false;
      }
      default: {
        // lockspace-level class A commands (payload + handler), connection closed afterwards
        const got = await this.readPayload(c, h);
        if (got === 'closed') {
          this.connectionClosed(c);
          return false;
        }
        if (typeof got === 'number') {
          c.sendAndClose(encodeReplyHeader(h, got));
          this.connectionClosed(c);
          return false;
        }
        const handler = this.handlers.get(h.cmd);
        let reply: Buffer | Buffer[] | null;
        try {
          reply = handler ? await handler(got) : encodeReplyHeader(h, -Errno.EINVAL);
        } catch (err) {
          // these commands close their connection after the reply in any case (REG_EVENT
          // hands it over only on success)
          if (this.handlerFailed(c, h, err)) {
            c.sock?.end();
            this.connectionClosed(c);
          }
          return false;
        }
        if (got.handedOver) {
          // the event channel now owns the socket: forget the slot without treating it as death
          if (reply) c.send(reply);
          c.closed = true;
          if (c.registered) {
            // the registration ends with the slot (sanlock: client_free): leases held through
            // this connection would otherwise stay held by nobody, never to be released
            c.pidDead = true;
            this.freeDeadClient(c, h.cmd);
          }
          if (this.clients.slots[c.ci] === c) this.clients.remove(c);
          return false;
        }
        if (reply) c.sendAndClose(reply);
        else c.sock?.end();
        if (CLASS_A_KEEP.has(h.cmd)) return true;
        this.connectionClosed(c);
        return false;
      }
    }
  }

  private register(c: Client): void {
    let pid = -1;
    try {
      pid = peerCred(c.fd).pid;
    } catch (err) {
      this.log.error(`ci ${c.ci} fd ${c.fd} SO_PEERCRED failed ${(err as Error).message}`);
      return;
    }
    c.pid = pid;
    c.registered = true;
    c.proc?.close();
    const ph = ProcessHandle.open(pid);
    c.proc = typeof ph === 'number' ? undefined : ph;
    c.startTime = procStartTime(pid);
    c.ownerName = String(pid);
    c.tokens = [];
    this.log.debug(`cmd_register ci ${c.ci} fd ${c.fd} pid ${pid}`);
  }

  // ---------------------------------------------------------------- status

  daemonStatusText(): string {
    const cfg = this.cfg;
    const hex64 = (v: bigint): string => `0x${v.toString(16)}`;
    return [
      `our_host_name=${this.hostName}`,
      `use_watchdog=${cfg.useWatchdog}`,
      `high_priority=${cfg.highPriority}`,
      `mlock_level=${cfg.mlockLevel}`,
      `quiet_fail=${cfg.quietFail}`,
      `debug_renew=${cfg.debugRenew}`,
      `debug_clients=${cfg.debugClients}`,
      `debug_cmds=${hex64(cfg.debugCmds)}`,
      `renewal_history_size=${cfg.renewalHistorySize}`,
      `gid=${this.gid}`,
      `uid=${this.uid}`,
      `sh_retries=${cfg.shRetries}`,
      `max_sectors_kb_ignore=${cfg.maxSectorsKbIgnore}`,
      `max_sectors_kb_align=${cfg.maxSectorsKbAlign}`,
      `max_sectors_kb_num=${cfg.maxSectorsKbNum}`,
      `max_worker_threads=${cfg.maxWorkerThreads}`,
      `write_init_io_timeout=${cfg.writeInitIoTimeout}`,
      `use_aio=${cfg.useAio}`,
      `kill_grace_seconds=${cfg.killGraceSeconds}`,
      // signals go through the daemon's own pidfds; the root helper exists only after a drop to -U/-G
      `helper_pid=${this.privHelper?.pid ?? process.pid}`,
      'helper_kill_fd=-1',
      'helper_full_count=0',
      `helper_last_status=${monotime()}`,
      `monotime=${monotime()}`,
      `version_str=${VERSION_STR}`,
      `version_num=${VERSION_STR}`,
      `version_hex=${VERSION_HEX.toString(16).padStart(8, '0')}`,
      `smproto_hex=${SM_PROTO.toString(16).padStart(8, '0')}`,
    ].join(' ');
  }

  statusRecords(detail: number): Buffer[] {
    const out: Buffer[] = [encodeStateRecord({ type: StateType.DAEMON, flags: 0, data32: 0, data64: 0, name: this.hostName }, this.daemonStatusText())];
    if (detail === 1) return out;
    for (const c of this.clients.slots) {
      if (!c) continue;
      const text =
        `ci=${c.ci} fd=${c.fd} pid=${c.pid} flags=${(c.registered ? 1 : 0).toString(16)} restricted=${c.restricted.toString(16)} ` +
        `cmd_active=${c.cmdActive} cmd_last=${c.cmdLast} pid_dead=${c.pidDead ? 1 : 0} kill_count=${c.killCount} ` +
        `kill_last=${c.killLast} suspend=0 need_free=${c.needFree ? 1 : 0}`;
      let name = c.registered ? c.ownerName : c.internalName;
      if (!c.registered && c.cmdActive) name = cmdStr(c.cmdActive);
      out.push(encodeStateRecord({ type: StateType.CLIENT, flags: 0, data32: c.pid, data64: 0, name }, text));
    }
    if (detail === 2) return out;
    out.push(...this.hooks.lockspaceStatus());
    if (detail === 3) return out;
    out.push(...this.hooks.resourceStatus());
    return out;
  }

  // ---------------------------------------------------------------- shutdown

  /** SHUTDOWN / signals: refused (logged) while lockspaces exist unless forced. */
  requestShutdown(force: boolean, waiter: Client | undefined): number {
    if (this.exiting) return 0;
    if (!force && this.hooks.lockspaceCount() > 0) {
      this.log.debug('ignore shutdown, lockspace exists');
      return -Errno.EBUSY;
    }
    if (waiter) this.shutdownWaiters.push(waiter);
    if (force && this.hooks.lockspaceCount() > 0) {
      this.exiting = true;
      void this.hooks.forceShutdown().finally(() => this.exit());
      return 0;
    }
    this.exitRequested = true;
    return 0;
  }

  private mainTick(): void {
    if (this.exitRequested && !this.exiting) {
      this.exiting = true;
      this.exit();
      return;
    }
    try {
      this.hooks.tick();
    } catch (err) {
      this.log.error(`main loop tick failed: ${(err as Error).stack ?? err}`);
    }
  }

  /** Stops everything; socket and pid files stay in the run dir, as sanlock leaves them. */
  exit(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.shutdownWaiters) {
      w.sendAndClose(encodeShutdownWaitDone());
    }
    this.shutdownWaiters = [];
    // libuv unlinks a unix socket's path when the server closes, but sanlock leaves sanlock.sock
    // in the run dir (later clients get ECONNREFUSED, not ENOENT): keep a second link and put
    // it back once the server is closed
    const path = this.sockPath;
    const keep = path ? `${path}.exit` : undefined;
    if (path && keep) {
      try {
        linkSync(path, keep);
      } catch {
        // the socket file is gone already
      }
    }
    this.server?.close(() => {
      if (path && keep) {
        try {
          renameSync(keep, path);
        } catch {
          // nothing to restore
        }
      }
    });
    // give the waiter replies a moment to flush, then drop every connection
    setTimeout(() => {
      for (const s of this.sockets) s.destroy();
      this.log.warn('sanlock daemon exit');
      this.resolveDone(0);
    }, 20);
  }
}
