// Protocol fuzzer for the daemon socket (issue 9, item 1): structure-aware messages built from
// src/protocol's encoders with fast-check arbitraries, plus byte mutations of the recorded
// exchanges, streamed over several parallel connections (fresh, reused, some cut mid-message).
//
// Exports:
//   interface Protect, FuzzOptions, FuzzStats
//   loadWireRequests(dir) → Buffer[]
//   messageArb(corpus, scratchPath) → fc.Arbitrary<FuzzMsg>
//   generateBatch(seed, batch, n, corpus, scratchPath) → FuzzMsg[]   (deterministic per seed+batch)
//   sanitize(tail, msg, protect) → number   (rewrites msg in place; returns bytes changed)
//   runFuzz(opts) → Promise<FuzzStats>
//
// sanlock has no permission model beyond the socket: a well-formed REM_LOCKSPACE, SHUTDOWN or a
// RELEASE aimed at another client's pid is legitimate and would "break" the run for reasons
// that are not bugs. sanitize() therefore neutralises, in the byte stream actually sent on each
// connection (headers can straddle message boundaries, so it looks at the previous 31 bytes too):
// SHUTDOWN/SHUTDOWN_WAIT commands, header data2 equal to a protected pid, and any occurrence of
// the protected lockspace name or file paths. Everything else is sent as generated.
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { HEADER_SIZE, SM_MAGIC, encodeHeader, makeHeader } from '../../src/protocol/header.js';
import { Cmd } from '../../src/protocol/commands.js';
import {
  type SanlkDisk,
  encodeKillpath,
  encodeLockspace,
  encodeOptions,
  encodeResource,
  emptyDisk,
  makeResource,
} from '../../src/protocol/structs.js';

export interface Protect {
  /** lockspace/resource names whose bytes must never reach the daemon */
  names: string[];
  /** absolute file paths likewise */
  paths: string[];
  /** pids that header data2 must not name */
  pids: number[];
}

export interface FuzzMsg {
  bytes: Buffer;
  /** 'reuse': next message on the same connection; 'new': close after; 'cut': send a prefix then close */
  conn: 'reuse' | 'new' | 'cut';
  cut: number;
}

export interface FuzzOptions {
  sockPath: string;
  count: number;
  seed: number;
  connections?: number;
  protect: Protect;
  corpusDir?: string;
  /** a file the fuzzer may point disk paths at (real I/O paths get exercised); with it, lockspace FZ
   *  must be joinable from `${scratchPath}.ids` and resources FZ:R1/FZ:R2 live at 0 and 1 MiB */
  scratchPath?: string;
  /** called every `progressEvery` messages */
  onProgress?: (sent: number) => void | Promise<void>;
  progressEvery?: number;
}

export interface FuzzStats {
  seed: number;
  sent: number;
  bytes: number;
  connectionsOpened: number;
  cutMidMessage: number;
  sanitizedBytes: number;
  replyBytes: number;
  daemonClosed: number;
  /** connects that met a full listen backlog (EAGAIN) and were retried */
  connectRetries: number;
  elapsedMs: number;
}

const BATCH = 500;

export function loadWireRequests(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    const j = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { request_hex?: unknown };
    if (typeof j.request_hex === 'string' && j.request_hex.length > 0) out.push(Buffer.from(j.request_hex, 'hex'));
  }
  return out;
}

const NAMES = ['', 'LS', 'FZ', 'R1', 'x'.repeat(47), 'y'.repeat(48), 'a\u00ffb', '\u0001'];
const U64S = [0, 1, 2, 511, 512, 2000, 2001, 4096, 1 << 20, 0xffffffff, 2 ** 32, 2 ** 40, 2 ** 53 - 1];

function nameArb(): fc.Arbitrary<string> {
  return fc.oneof(fc.constantFrom(...NAMES), fc.string({ unit: 'binary-ascii', maxLength: 50 }));
}
function u64Arb(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(...U64S), fc.maxSafeNat());
}
function u32Arb(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(0, 1, 2, 4, 5, 8, 9, 0x7fffffff, 0xffffffff), fc.nat({ max: 0xffffffff }));
}
function pathArb(scratch: string | undefined): fc.Arbitrary<string> {
  const fixed = ['', '/', 'relative/path', '/nonexistent/dir/ids', '/dev/null', '/proc/self/status', 'z'.repeat(1023), 'w'.repeat(1100)];
  if (scratch) fixed.push(scratch);
  return fc.oneof(fc.constantFrom(...fixed), fc.string({ unit: 'binary-ascii', maxLength: 80 }));
}
function diskArb(scratch: string | undefined): fc.Arbitrary<SanlkDisk> {
  return fc.record({ path: pathArb(scratch), offset: u64Arb() }).map(({ path, offset }) => emptyDisk(path, offset));
}

function pieceArb(scratch: string | undefined): fc.Arbitrary<Buffer> {
  const ls = fc
    .record({ name: nameArb(), hostId: u64Arb(), flags: u32Arb(), disk: diskArb(scratch) })
    .map((x) => encodeLockspace({ name: x.name, hostId: x.hostId, flags: x.flags, hostIdDisk: x.disk }));
  const res = fc
    .record({
      ls: nameArb(),
      name: nameArb(),
      disks: fc.array(diskArb(scratch), { maxLength: 5 }),
      numDisks: fc.option(u32Arb(), { nil: undefined }),
      lver: u64Arb(),
      flags: u32Arb(),
      withDisks: fc.boolean(),
    })
    .map((x) =>
      encodeResource(makeResource(x.ls, x.name, x.disks, { lver: x.lver, flags: x.flags, numDisks: x.numDisks ?? x.disks.length }), x.withDisks),
    );
  const opt = fc.record({ ownerName: nameArb(), flags: u32Arb(), len: u32Arb() }).map((o) => encodeOptions(o));
  const kp = fc.record({ path: pathArb(undefined), args: fc.string({ maxLength: 140 }) }).map((k) => encodeKillpath(k));
  const raw = fc.uint8Array({ maxLength: 96 }).map((a) => Buffer.from(a));
  return fc.oneof({ arbitrary: ls, weight: 3 }, { arbitrary: res, weight: 4 }, opt, kp, raw);
}

const CMDS = Object.values(Cmd) as number[];

function structuredArb(scratch: string | undefined): fc.Arbitrary<Buffer> {
  return fc
    .record({
      cmd: fc.oneof({ arbitrary: fc.constantFrom(...CMDS), weight: 8 }, fc.nat({ max: 0xffffffff }), fc.constantFrom(0, 41, 100)),
      magic: fc.oneof({ arbitrary: fc.constant(SM_MAGIC), weight: 10 }, fc.nat({ max: 0xffffffff })),
      version: fc.oneof({ arbitrary: fc.constant(1), weight: 6 }, fc.constantFrom(0, 2, 0x10001, 0x20000, 0xffffffff)),
      cmdFlags: u32Arb(),
      data: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.integer({ min: -0x80000000, max: 0x7fffffff })),
      data2: fc.oneof(fc.constant(-1), fc.integer({ min: -0x80000000, max: 0x7fffffff })),
      seq: u32Arb(),
      pieces: fc.array(pieceArb(scratch), { maxLength: 5 }),
      lenMode: fc.constantFrom('exact', 'exact', 'exact', 'random', 'short', 'long', 'huge'),
      lenRand: fc.nat({ max: 0xffffffff }),
      tail: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, fc.integer({ min: -200, max: 200 })),
      patches: fc.array(fc.record({ pos: fc.nat(), val: fc.nat({ max: 255 }) }), { maxLength: 4 }),
    })
    .map((x) => {
      let payload = Buffer.concat(x.pieces);
      if (x.tail > 0) payload = Buffer.concat([payload, Buffer.alloc(x.tail, 0xa5)]);
      else if (x.tail < 0) payload = payload.subarray(0, Math.max(0, payload.length + x.tail));
      const exact = HEADER_SIZE + payload.length;
      const length =
        x.lenMode === 'exact' ? exact : x.lenMode === 'short' ? Math.max(0, exact - 1 - (x.lenRand % 64)) : x.lenMode === 'long' ? exact + 1 + (x.lenRand % 4096) : x.lenMode === 'huge' ? 0xffffffff - (x.lenRand % 16) : x.lenRand;
      const h = encodeHeader(makeHeader(x.cmd, { magic: x.magic, version: x.version, cmdFlags: x.cmdFlags, length, seq: x.seq, data: x.data, data2: x.data2 }));
      const b = Buffer.concat([h, payload]);
      // patches inside the header or payload model negative u64s, odd offsets, bad counts
      for (const p of x.patches) b[p.pos % b.length] = p.val;
      return b;
    });
}

/**
 * Well-formed lease requests on the second lockspace FZ (joined by the harness; resources R1
 * and R2 initialised on the scratch disk at 0 and 1 MiB), so acquire/convert/request/release
 * reach the paxos and lockspace code instead of failing at the name lookup. Often preceded by
 * a REGISTER in the same write, so the connection is a registered client.
 */
function targetedArb(scratch: string): fc.Arbitrary<Buffer> {
  const lease = [Cmd.ACQUIRE, Cmd.RELEASE, Cmd.INQUIRE, Cmd.CONVERT, Cmd.REQUEST, Cmd.READ_RESOURCE, Cmd.READ_RESOURCE_OWNERS, Cmd.SET_LVB, Cmd.GET_LVB, Cmd.EXAMINE_RESOURCE, Cmd.EXAMINE_LOCKSPACE, Cmd.GET_HOSTS, Cmd.INQ_LOCKSPACE, Cmd.ADD_LOCKSPACE];
  return fc
    .record({
      register: fc.constantFrom(true, true, false),
      cmd: fc.constantFrom(...lease),
      res: fc.constantFrom('R1', 'R2', 'R3'),
      offset: fc.constantFrom(0, 1 << 20, 512, 2 << 20),
      flags: fc.constantFrom(0, 4, 1, 2, 0x10),
      cmdFlags: fc.constantFrom(0, 0, 0, 1, 2, 4, 8, 0xf),
      count: fc.constantFrom(1, 1, 1, 2, 0, 9),
      data2: fc.constantFrom(-1, -1, 0, 1),
      withOpts: fc.constantFrom(true, true, true, true, false),
      hostId: fc.constantFrom(1, 2, 0, 2001),
    })
    .map((x) => {
      const parts: Buffer[] = [];
      if (x.register) parts.push(encodeHeader(makeHeader(Cmd.REGISTER)));
      let payload: Buffer;
      if (x.cmd === Cmd.ADD_LOCKSPACE || x.cmd === Cmd.INQ_LOCKSPACE || x.cmd === Cmd.GET_HOSTS || x.cmd === Cmd.EXAMINE_LOCKSPACE) {
        payload = encodeLockspace({ name: 'FZ', hostId: x.hostId, flags: 0, hostIdDisk: emptyDisk(scratch + '.ids', 0) });
      } else {
        const r = encodeResource(makeResource('FZ', x.res, [emptyDisk(scratch, x.offset)], { flags: x.flags }));
        const rs = Array.from({ length: Math.max(1, Math.min(x.count, 2)) }, () => r);
        payload = Buffer.concat([...rs, ...(x.withOpts ? [encodeOptions({ ownerName: 'fz', flags: 0, len: 0 })] : [])]);
      }
      parts.push(encodeHeader(makeHeader(x.cmd, { cmdFlags: x.cmdFlags, data: x.count, data2: x.data2, length: HEADER_SIZE + payload.length })), payload);
      return Buffer.concat(parts);
    });
}

function mutate(src: Buffer, ops: { kind: number; a: number; b: number; c: number }[], other: Buffer): Buffer {
  let b = Buffer.from(src);
  for (const op of ops) {
    const n = Math.max(1, b.length);
    switch (op.kind) {
      case 0: // bit flip
        if (b.length) b[op.a % n]! ^= 1 << (op.b % 8);
        break;
      case 1: // byte set, with a bias towards header fields
        if (b.length) b[(op.a % 2 === 0 ? op.a % Math.min(32, n) : op.a % n)] = op.c & 0xff;
        break;
      case 2: // insert
        b = Buffer.concat([b.subarray(0, op.a % (n + 1)), Buffer.alloc(1 + (op.b % 64), op.c & 0xff), b.subarray(op.a % (n + 1))]);
        break;
      case 3: // delete
        b = Buffer.concat([b.subarray(0, op.a % n), b.subarray(op.a % n + 1 + (op.b % 256))]);
        break;
      case 4: // splice with another recorded request
        b = Buffer.concat([b.subarray(0, op.a % (n + 1)), other.subarray(op.b % Math.max(1, other.length))]);
        break;
      default: // u32 field overwrite with an interesting value
        if (b.length >= 4) b.writeUInt32LE([0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 9, 4097][op.c % 7]!, (op.a % (b.length - 3)) & ~3);
    }
  }
  return b;
}

function mutatedArb(corpus: Buffer[]): fc.Arbitrary<Buffer> {
  return fc
    .record({
      i: fc.nat(),
      j: fc.nat(),
      ops: fc.array(fc.record({ kind: fc.nat({ max: 5 }), a: fc.nat(), b: fc.nat(), c: fc.nat() }), { minLength: 1, maxLength: 6 }),
    })
    .map((x) => mutate(corpus[x.i % corpus.length]!, x.ops, corpus[x.j % corpus.length]!));
}

export function messageArb(corpus: Buffer[], scratch?: string): fc.Arbitrary<FuzzMsg> {
  const arbs: fc.WeightedArbitrary<Buffer>[] = [{ arbitrary: structuredArb(scratch), weight: 3 }];
  if (corpus.length) arbs.push({ arbitrary: mutatedArb(corpus), weight: 2 }, { arbitrary: fc.constantFrom(...corpus), weight: 1 });
  if (scratch) arbs.push({ arbitrary: targetedArb(scratch), weight: 1 });
  const body = fc.oneof(...arbs);
  return fc.record({
    bytes: body,
    conn: fc.constantFrom<FuzzMsg['conn']>('reuse', 'reuse', 'reuse', 'reuse', 'reuse', 'reuse', 'reuse', 'reuse', 'new', 'cut'),
    cut: fc.nat(),
  });
}

/** Messages [batch*n, batch*n+n) of the stream for `seed`: reproducible without the earlier batches. */
export function generateBatch(seed: number, batch: number, n: number, corpus: Buffer[], scratch?: string): FuzzMsg[] {
  return fc.sample(messageArb(corpus, scratch), { seed: (seed ^ Math.imul(batch + 1, 0x9e3779b1)) | 0, numRuns: n });
}

const MAGIC_LE = Buffer.from([0x10, 0x20, 0x28, 0x04]);

/**
 * Neutralises dangerous-but-valid content in `msg` (in place), given the last ≤31 bytes already
 * sent on the connection. Each hazard is fixed at its last byte, which is always in msg: had
 * it been in `tail`, the hazard would have been complete (and fixed) one message earlier.
 */
export function sanitize(tail: Buffer, msg: Buffer, protect: Protect): number {
  let changed = 0;
  const all = Buffer.concat([tail, msg]);
  const T = tail.length;
  const fix = (pos: number, val: number): void => {
    if (pos < T || pos >= all.length) return;
    if (all[pos] !== val) {
      all[pos] = val;
      msg[pos - T] = val;
      changed++;
    }
  };
  for (let p = all.indexOf(MAGIC_LE); p !== -1; p = all.indexOf(MAGIC_LE, p + 1)) {
    if (p + 12 <= all.length) {
      const cmd = all.readUInt32LE(p + 8);
      // SHUTDOWN → an unknown command number (dropped by the daemon)
      if (cmd === Cmd.SHUTDOWN || cmd === Cmd.SHUTDOWN_WAIT) fix(p + 11, 0x7f);
    }
    if (p + 32 <= all.length) {
      const d2 = all.readInt32LE(p + 28);
      if (protect.pids.includes(d2)) fix(p + 31, 0x7f);
    }
  }
  for (const s of [...protect.names, ...protect.paths]) {
    const needle = Buffer.from(s, 'latin1');
    if (needle.length === 0) continue;
    for (let p = all.indexOf(needle); p !== -1; p = all.indexOf(needle, p + 1)) fix(p + needle.length - 1, (needle[needle.length - 1]! ^ 0x20) || 0x21);
  }
  return changed;
}

class Conn {
  sock: Socket | null = null;
  tail = Buffer.alloc(0);
  closed = true;
  constructor(
    private path: string,
    private stats: FuzzStats,
  ) {}

  async open(): Promise<void> {
    // EAGAIN: the listen backlog is full (every cut connection sits there until accepted);
    // like any client, wait and retry. A daemon that stops accepting for good still fails the
    // run, through the status probes and this bound.
    for (let attempt = 0; ; attempt++) {
      try {
        this.sock = await new Promise<Socket>((res, rej) => {
          const s = connect(this.path);
          s.once('connect', () => res(s));
          s.once('error', rej);
        });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt >= 500) throw e;
        this.stats.connectRetries++;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    this.closed = false;
    this.tail = Buffer.alloc(0);
    this.stats.connectionsOpened++;
    const s = this.sock;
    s.on('data', (d: Buffer) => {
      this.stats.replyBytes += d.length;
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (this.sock === s && !this.closed) this.stats.daemonClosed++;
      if (this.sock === s) this.closed = true;
    });
  }

  async write(b: Buffer): Promise<void> {
    const s = this.sock!;
    if (b.length === 0 || this.closed) return;
    if (!s.write(b)) {
      await new Promise<void>((res) => {
        const done = (): void => {
          s.off('drain', done);
          s.off('close', done);
          res();
        };
        s.once('drain', done);
        s.once('close', done);
      });
    }
    const all = Buffer.concat([this.tail, b]);
    this.tail = Buffer.from(all.subarray(Math.max(0, all.length - 31)));
  }

  async close(): Promise<void> {
    const s = this.sock;
    this.closed = true;
    this.sock = null;
    if (!s) return;
    await new Promise<void>((res) => {
      s.once('close', () => res());
      s.end();
      setTimeout(() => {
        s.destroy();
        res();
      }, 200).unref();
    });
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzStats> {
  const corpus = opts.corpusDir ? loadWireRequests(opts.corpusDir) : [];
  const stats: FuzzStats = {
    seed: opts.seed,
    sent: 0,
    bytes: 0,
    connectionsOpened: 0,
    cutMidMessage: 0,
    sanitizedBytes: 0,
    replyBytes: 0,
    daemonClosed: 0,
    connectRetries: 0,
    elapsedMs: 0,
  };
  const t0 = Date.now();
  const nconn = opts.connections ?? 4;
  const every = opts.progressEvery ?? 1000;
  let next = 0;
  let queue: FuzzMsg[] = [];
  let queueBase = 0;
  const take = (): FuzzMsg | undefined => {
    if (next >= opts.count) return undefined;
    const i = next++;
    if (i - queueBase >= queue.length) {
      const batch = Math.floor(i / BATCH);
      queueBase = batch * BATCH;
      queue = generateBatch(opts.seed, batch, Math.min(BATCH, opts.count - queueBase), corpus, opts.scratchPath);
    }
    return queue[i - queueBase];
  };
  let progressChain: Promise<void> = Promise.resolve();
  const worker = async (): Promise<void> => {
    const c = new Conn(opts.sockPath, stats);
    try {
      for (let m = take(); m; m = take()) {
        if (c.closed) await c.open();
        const bytes = Buffer.from(m.bytes);
        stats.sanitizedBytes += sanitize(c.tail, bytes, opts.protect);
        if (m.conn === 'cut') {
          const n = bytes.length ? m.cut % bytes.length : 0;
          await c.write(bytes.subarray(0, n));
          stats.cutMidMessage++;
          await c.close();
        } else {
          await c.write(bytes);
          if (m.conn === 'new') await c.close();
        }
        stats.sent++;
        stats.bytes += bytes.length;
        if (opts.onProgress && stats.sent % every === 0) {
          const n = stats.sent;
          progressChain = progressChain.then(() => opts.onProgress!(n));
          await progressChain;
        }
      }
    } finally {
      await c.close();
    }
  };
  await Promise.all(Array.from({ length: nconn }, () => worker()));
  stats.elapsedMs = Date.now() - t0;
  return stats;
}
