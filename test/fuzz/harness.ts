// The live-daemon setup the fuzzer runs against (shared by daemon-fuzz.test.ts and main.ts):
// OUR daemon, lockspace FUZZKEEP joined as host 1 (io_timeout 1) and the fuzzer's own lockspace
// FZ (host 1, resources on the scratch disk), a python3-sanlock holder
// process with an EX and a SH lease, and the health checks the issue asks for.
//
// Exports: interface Harness; startHarness(prefix) → Harness; rssKiB(pid) → number;
//          fuzzWithHarness(h, count, seed, connections?) → FuzzStats (+ probe latencies);
//          DAEMON_BUG_RE; leftoverSlots(h) → status -D blocks of client slots that should be gone
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../helpers/real-sanlock.js';
import { WIRE_VECTORS_DIR } from '../helpers/paths.js';
import { type OurDaemon, PYTHON, SANLOCK_BIN, startOurDaemon, waitFor } from '../daemon/our-daemon.js';
import { type FuzzStats, runFuzz } from './fuzzer.js';

export const LS = 'FUZZKEEP';
const MiB = 1024 * 1024;

export interface Harness {
  dir: string;
  ids: string;
  leases: string;
  scratch: string;
  d: OurDaemon;
  holder: ChildProcess;
  holderOut(): string;
  /** log lines matching DAEMON_BUG_RE (up to 200 lines kept, with stack lines), and how many */
  daemonBugs(): { count: number; text: string };
  stop(): Promise<void>;
}

export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS missing');
  return Number(m[1]);
}

function direct(args: string[]): string {
  return execFileSync(SANLOCK_BIN, ['direct', ...args], { encoding: 'utf8' });
}

/** Owner host id of the paxos leader at path:offset (direct dump's "own" column). */
export function leaderOwner(path: string, offset: number): number {
  const out = direct(['dump', `${path}:${offset}:${MiB}`]);
  const f = (out.split('\n')[1] ?? '').trim().split(/\s+/);
  // offset lockspace resource timestamp own gen lver
  return Number(f[4]);
}

export async function startHarness(prefix: string): Promise<Harness> {
  const dir = scratchDir(prefix);
  const ids = join(dir, 'ids');
  const leases = join(dir, 'leases');
  const scratch = join(dir, 'fuzz-disk');
  writeFileSync(ids, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '1M', ids]);
  execFileSync('truncate', ['-s', '2M', leases]);
  execFileSync('truncate', ['-s', '3M', scratch]);
  execFileSync('truncate', ['-s', '1M', `${scratch}.ids`]);
  // FZ is the fuzzer's own lockspace: it may legitimately be left, rejoined, its leases taken
  direct(['init', '-s', `FZ:0:${scratch}.ids:0`, '-o', '1']);
  direct(['init', '-r', `FZ:R1:${scratch}:0`]);
  direct(['init', '-r', `FZ:R2:${scratch}:${MiB}`]);
  direct(['init', '-s', `${LS}:0:${ids}:0`, '-o', '1']);
  direct(['init', '-r', `${LS}:KEEP_EX:${leases}:0`]);
  direct(['init', '-r', `${LS}:KEEP_SH:${leases}:${MiB}`]);
  // SANLOCK_TS_FUZZ_DAEMON_ARGS, e.g. "-l 1": extra daemon options (later ones override the defaults)
  const extra = (process.env.SANLOCK_TS_FUZZ_DAEMON_ARGS ?? '').split(' ').filter(Boolean);
  const d = await startOurDaemon(join(dir, 'run'), ['-e', 'hostFuzz', ...extra]);
  // -D logs every message: keep only the last 16 KiB (our-daemon.ts keeps it all, which a
  // million-message run cannot afford)
  // The tail alone is useless after a failure (the end-of-run status polling fills it), so the
  // lines that report a daemon bug are kept apart, each with the stack lines that follow it.
  let logTail = '';
  let partial = '';
  let follow = 0;
  const bugs: string[] = [];
  let bugCount = 0;
  d.proc.stderr!.removeAllListeners('data');
  d.proc.stderr!.on('data', (x: Buffer) => {
    const text = x.toString();
    logTail = (logTail + text).slice(-16384);
    const lines = (partial + text).split('\n');
    partial = lines.pop()!.slice(-8192);
    for (const line of lines) {
      if (DAEMON_BUG_RE.test(line)) {
        bugCount++;
        follow = 8;
        if (bugs.length < 200) bugs.push(line);
      } else if (follow > 0) {
        follow--;
        if (bugs.length < 200) bugs.push(`    ${line}`);
      }
    }
  });
  d.stderr = () => logTail;
  try {
    const r = d.cli(['client', 'add_lockspace', '-s', `${LS}:1:${ids}:0`, '-o', '1']);
    assert.equal(r.stdout, 'add_lockspace_timeout 1\nadd_lockspace_timeout done 0\n');
    const f = d.cli(['client', 'add_lockspace', '-s', `FZ:1:${scratch}.ids:0`, '-o', '1']);
    assert.equal(f.stdout, 'add_lockspace_timeout 1\nadd_lockspace_timeout done 0\n');
  } catch (e) {
    await d.stop();
    throw e;
  }
  const code = [
    'import sanlock, sys, time',
    'fd = sanlock.register()',
    `sanlock.acquire(b"${LS}", b"KEEP_EX", [(${JSON.stringify(leases)}, 0)], slkfd=fd)`,
    `sanlock.acquire(b"${LS}", b"KEEP_SH", [(${JSON.stringify(leases)}, ${MiB})], slkfd=fd, shared=True)`,
    'print("READY", flush=True)',
    // each line on stdin asks for an inquire on the holder's own connection
    'for line in sys.stdin:',
    '    try:',
    '        r = sanlock.inquire(slkfd=fd)',
    '        print("INQ", repr(sorted((x["lockspace"], x["resource"], x["flags"]) for x in r)), flush=True)',
    '    except Exception as e:',
    '        print("INQERR", e, flush=True)',
  ].join('\n');
  const holder = spawn(PYTHON, ['-c', code], { env: d.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let out = '';
  holder.stdout!.on('data', (x) => {
    out += x;
  });
  holder.stderr!.on('data', (x) => {
    out += x;
  });
  const stop = async (): Promise<void> => {
    if (holder.exitCode === null && holder.signalCode === null) {
      try {
        process.kill(-holder.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await d.stop();
    // 6 MiB of lease files per run; every diagnostic is printed before stop()
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => out.includes('READY') || holder.exitCode !== null, 20_000, 'holder ready');
    if (!out.includes('READY')) throw new Error(`holder failed: ${out}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, ids, leases, scratch, d, holder, holderOut: () => out, daemonBugs: () => ({ count: bugCount, text: bugs.join('\n') }), stop };
}

/**
 * Daemon log lines that mean a bug, never a refused request: an exception out of a command
 * (server.ts "cmd X failed" / "handler failed"), out of the main loop, or an unexpected
 * (non-SanlockError) failure of a join or an acquire.
 */
export const DAEMON_BUG_RE = / cmd \S+ (handler )?failed|main loop tick failed|add_lockspace failed: |acquire failed: /;

/**
 * Client slots that are neither the holder's nor the daemon's internal ones nor the status
 * connection asking: after the fuzzer closed every connection, there must be none (registered
 * or not: a slot whose connection loop was lost is never freed, and 1 022 of them stop the daemon
 * serving anyone).
 */
export function leftoverSlots(h: Harness): string[] {
  const st = h.d.cli(['client', 'status', '-D']).stdout;
  return st
    .split(/\n(?=[psrh] )/)
    .filter((b) => b.startsWith('p ') && !/^p (-?\d+) (helper|listener|status)\b/.test(b) && !b.startsWith(`p ${h.holder.pid} `));
}

/** The holder's own inquire: sorted (lockspace, resource, flags) tuples as python prints them. */
export async function holderInquire(h: Harness): Promise<string> {
  const before = h.holderOut().length;
  h.holder.stdin!.write('q\n');
  await waitFor(() => /\n(INQ|INQERR)[^\n]*\n/.test(h.holderOut().slice(before - 1)), 10_000, 'holder inquire');
  return /(INQ|INQERR)[^\n]*/.exec(h.holderOut().slice(before))![0];
}

/** `sanlock client status` against the daemon; returns its latency in ms (asserts success). */
export async function statusProbe(h: Harness): Promise<number> {
  const t0 = Date.now();
  const r = await h.d.cliAsync(['client', 'status']);
  assert.equal(r.status, 0, `client status failed: ${r.stdout}`);
  assert.match(r.stdout, new RegExp(`^s ${LS}:1:`, 'm'));
  return Date.now() - t0;
}

export interface FuzzRun extends FuzzStats {
  rssStartKiB: number;
  rssWarmKiB: number;
  rssEndKiB: number;
  maxProbeMs: number;
}

/**
 * Runs `count` messages; after every 1000 it checks the daemon is alive and answers status
 * (latency recorded) and, given inqBaseline, that the holder's inquire is unchanged. RSS is sampled before, after the first 20 % (warm: JIT, heap growth
 * and buffers settle), and at the end.
 */
export async function fuzzWithHarness(h: Harness, count: number, seed: number, connections = 6, inqBaseline?: string): Promise<FuzzRun> {
  const pid = h.d.proc.pid!;
  const rssStartKiB = rssKiB(pid);
  let rssWarmKiB = rssStartKiB;
  let maxProbeMs = 0;
  const warmAt = Math.max(1000, Math.floor(count / 5 / 1000) * 1000);
  const stats = await runFuzz({
    sockPath: h.d.sockPath,
    count,
    seed,
    connections,
    corpusDir: WIRE_VECTORS_DIR,
    scratchPath: h.scratch,
    protect: { names: [LS, 'KEEP_EX', 'KEEP_SH'], paths: [h.ids, h.leases], pids: [h.holder.pid!] },
    progressEvery: 1000,
    onProgress: async (n) => {
      assert.equal(h.d.proc.exitCode, null, `daemon exited after ${n} messages (seed ${seed}): ${h.d.stderr().slice(-2000)}`);
      maxProbeMs = Math.max(maxProbeMs, await statusProbe(h));
      if (inqBaseline !== undefined) assert.equal(await holderInquire(h), inqBaseline, `holder inquire changed after ${n} messages (seed ${seed})`);
      if (n === warmAt) rssWarmKiB = rssKiB(pid);
    },
  });
  return { ...stats, rssStartKiB, rssWarmKiB, rssEndKiB: rssKiB(pid), maxProbeMs };
}
