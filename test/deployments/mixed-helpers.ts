// Pieces of the mixed-cluster suite (issue 6): hosts that are either the real sanlock 3.8.5
// daemon or ours on one shared lockspace, python3-sanlock client processes driven line by line,
// and `direct dump` read by both binaries.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { PYTHON, SANLOCK_BIN, startOurDaemon } from '../daemon/our-daemon.js';
import { startRealDaemon } from '../helpers/real-sanlock.js';

export const OUR_BIN = resolve('bin/sanlock-ts');

export type Kind = 'ours' | 'real';

export interface Host {
  kind: Kind;
  hostId: number;
  name: string;
  env: NodeJS.ProcessEnv;
  proc: ChildProcess;
  /** SIGKILL to the daemon's process group (kill -9 of the host's sanlock) */
  stop(): Promise<void>;
}

export async function startHost(kind: Kind, hostId: number, name: string, runDir: string): Promise<Host> {
  const d = kind === 'ours' ? await startOurDaemon(runDir, ['-e', name]) : await startRealDaemon(runDir, ['-e', name]);
  const proc = d.proc;
  let stopped: Promise<void> | undefined;
  return {
    kind,
    hostId,
    name,
    env: d.env,
    proc,
    // a daemon already ended by a signal never emits 'exit' again: stop() must not wait for it
    stop: () => (stopped ??= proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : d.stop()),
  };
}

export interface Run {
  stdout: string;
  stderr: string;
  status: number | null;
}

/** Runs a command without blocking the event loop (several daemons and clients run side by side). */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Run> {
  return new Promise((ok) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (x) => {
      stdout += x;
    });
    p.stderr!.on('data', (x) => {
      stderr += x;
    });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (status) => {
      clearTimeout(t);
      ok({ stdout, stderr, status });
    });
  });
}

/** `sanlock client <args>` against host's daemon with the real CLI or ours. */
export function client(host: Host, args: string[], cli: Kind = 'real'): Promise<Run> {
  return cli === 'real' ? run(SANLOCK_BIN, ['client', ...args], host.env) : run(process.execPath, [OUR_BIN, 'client', ...args], host.env);
}

export type HostState = 'LIVE' | 'FAIL' | 'DEAD' | 'FREE' | 'UNKNOWN';

/** `client gets -h 1` → host_id → state for lockspace ls (empty while "hosts not ready"). */
export async function hostStates(host: Host, ls: string, cli: Kind = 'real'): Promise<Map<number, HostState>> {
  const out = (await client(host, ['gets', '-h', '1'], cli)).stdout;
  const m = new Map<number, HostState>();
  let inLs = false;
  for (const line of out.split('\n')) {
    if (line.startsWith('s ')) inLs = line.slice(2).split(':')[0] === ls;
    const h = /^h (\d+) gen \d+ timestamp \d+ (\w+)$/.exec(line);
    if (inLs && h) m.set(Number(h[1]), h[2] as HostState);
  }
  return m;
}

/** `client host_status -s ls -D` → host_id → owner_name. */
export async function hostNames(host: Host, ls: string, cli: Kind = 'real'): Promise<Map<number, string>> {
  const out = (await client(host, ['host_status', '-s', ls, '-D'], cli)).stdout;
  const m = new Map<number, string>();
  let cur = 0;
  for (const line of out.split('\n')) {
    const h = /^(\d+) timestamp \d+$/.exec(line);
    if (h) cur = Number(h[1]);
    const n = /^ {4}owner_name=(.*)$/.exec(line);
    if (n && cur) m.set(cur, n[1]!);
  }
  return m;
}

const AGENT = String.raw`
import sanlock, sys, json, os, time
g = {"sanlock": sanlock, "os": os, "time": time}

def mono():
    return time.clock_gettime(time.CLOCK_MONOTONIC)

def waitev(efd, secs, event):
    """first event numbered event within secs (senders repeat events at every renewal)"""
    end = time.time() + secs
    while time.time() < end:
        for ev in sanlock.get_event(efd):
            if ev["event"] == event:
                return ev
        time.sleep(0.1)
    return None

def acquire_until(ls, res, dk, secs):
    """one acquire a second until it succeeds:
    ((monotime the successful call began, monotime it returned), [(start, end, errno)...])"""
    errs = []
    end = time.time() + secs
    while True:
        t0 = mono()
        try:
            sanlock.acquire(ls, res, dk, slkfd=g["fd"])
            return ((t0, mono()), errs)
        except sanlock.SanlockException as e:
            errs.append((t0, mono(), e.errno))
            if time.time() > end:
                return (None, errs)
        time.sleep(1)

g["mono"] = mono
g["waitev"] = waitev
g["acquire_until"] = acquire_until
print("READY %d" % os.getpid(), flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    g["_r"] = None
    try:
        exec(json.loads(line), g)
        try:
            j = json.dumps(g["_r"])
        except Exception:
            j = None
        print(json.dumps({"ok": True, "r": repr(g["_r"]), "j": j}), flush=True)
    except sanlock.SanlockException as e:
        print(json.dumps({"ok": False, "errno": e.errno, "msg": str(e)}), flush=True)
    except Exception as e:
        print(json.dumps({"ok": False, "errno": None, "msg": repr(e)}), flush=True)
`;

export interface AgentReply {
  ok: boolean;
  /** repr() of the python variable `_r` after the statement */
  r?: string;
  /** json.dumps of `_r` when it serialises */
  j?: string | null;
  errno?: number | null;
  msg?: string;
}

/**
 * One python3-sanlock client process talking to one daemon (libsanlock binds a process to the
 * SANLOCK_RUN_DIR it first used). Statements run in order in one namespace; `_r` is returned.
 */
export class Agent {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** resolves with the signal that ended the process (or null) */
  readonly exited: Promise<string | null>;
  private out = '';
  private waiters: ((line: string | null) => void)[] = [];

  private constructor(proc: ChildProcess) {
    this.proc = proc;
    this.pid = proc.pid!;
    this.exited = new Promise((r) => proc.once('exit', (_c, sig) => r(sig)));
    proc.stdout!.on('data', (x: Buffer) => {
      this.out += x.toString();
      let i: number;
      while ((i = this.out.indexOf('\n')) >= 0) {
        const line = this.out.slice(0, i);
        this.out = this.out.slice(i + 1);
        this.waiters.shift()?.(line);
      }
    });
    proc.once('exit', () => {
      for (const w of this.waiters.splice(0)) w(null);
    });
  }

  static async start(env: NodeJS.ProcessEnv, all: Agent[]): Promise<Agent> {
    const proc = spawn(PYTHON, ['-c', AGENT], { env, stdio: ['pipe', 'pipe', 'inherit'], detached: true });
    const a = new Agent(proc);
    all.push(a);
    const first = await a.next(30_000);
    assert.match(first ?? '', /^READY \d+$/, 'python agent started');
    return a;
  }

  private next(ms: number): Promise<string | null> {
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('python agent did not answer')), ms);
      this.waiters.push((l) => {
        clearTimeout(t);
        res(l);
      });
    });
  }

  /** Runs python statements; null when the process died meanwhile. */
  async exec(code: string, ms = 60_000): Promise<AgentReply | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return null;
    const p = this.next(ms);
    this.proc.stdin!.write(`${JSON.stringify(code)}\n`);
    const line = await p;
    return line === null ? null : (JSON.parse(line) as AgentReply);
  }

  /** exec that must succeed */
  async ok(code: string, ms?: number): Promise<string> {
    const r = await this.exec(code, ms);
    assert.ok(r?.ok, `python failed: ${code}: ${JSON.stringify(r)}`);
    return r.r!;
  }

  /** exec that must succeed; `_r` parsed from JSON */
  async json<T>(code: string, ms?: number): Promise<T> {
    const r = await this.exec(code, ms);
    assert.ok(r?.ok && typeof r.j === 'string', `python failed: ${code}: ${JSON.stringify(r)}`);
    return JSON.parse(r.j) as T;
  }

  /** exec that must fail with a SanlockException; its errno */
  async errno(code: string, ms?: number): Promise<number> {
    const r = await this.exec(code, ms);
    assert.ok(r && !r.ok && typeof r.errno === 'number', `expected a sanlock error: ${code}: ${JSON.stringify(r)}`);
    return r.errno!;
  }

  alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  kill(): void {
    if (!this.alive()) return;
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** The python disks list for a lease at offset in path. */
export function disks(path: string, offset: number): string {
  return `[(${JSON.stringify(path)}, ${offset})]`;
}

export interface DumpRow {
  offset: number;
  lockspace: string;
  resource: string;
  timestamp: number;
  owner: number;
  gen: number;
  lver?: number;
  /** lver of the request record (-f 1 paxos rows) */
  reqLver?: number;
  /** force mode of the request record */
  reqForce?: number;
  /** shared holders listed under the row: host_id → generation */
  sh: Map<number, number>;
}

/** Rows of `direct dump -f 1` output (sanlock's %8s %36s %48s ... layout). */
export function parseDump(text: string): DumpRow[] {
  const rows: DumpRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const sh = /^\s+(\d+) (\d+) SH$/.exec(line);
    if (sh && rows.length) {
      rows[rows.length - 1]!.sh.set(Number(sh[1]), Number(sh[2]));
      continue;
    }
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !/^\d{8,}$/.test(f[0]!)) continue;
    const row: DumpRow = {
      offset: Number(f[0]),
      lockspace: f[1]!,
      resource: f[2]!,
      timestamp: Number(f[3]),
      owner: Number(f[4]),
      gen: Number(f[5]),
      sh: new Map(),
    };
    if (f[6] !== undefined && /^\d+\/\d+\/\d+$/.test(f[6])) {
      const [l, r, m] = f[6].split('/').map(Number);
      row.lver = l;
      row.reqLver = r;
      row.reqForce = m;
    } else if (f[6] !== undefined && /^\d+$/.test(f[6])) {
      row.lver = Number(f[6]);
    }
    rows.push(row);
  }
  return rows;
}

/**
 * `direct dump -f 1 <spec>` by the real binary and by ours, which must print the same bytes.
 * The ids area changes at every renewal, so a differing pair is read again (a few times).
 */
export async function dumpBoth(spec: string, tries = 5): Promise<{ text: string; rows: DumpRow[] }> {
  let last: { real: Run; ours: Run } | undefined;
  for (let i = 0; i < tries; i++) {
    const [real, ours] = await Promise.all([run(SANLOCK_BIN, ['direct', 'dump', spec, '-f', '1']), run(process.execPath, [OUR_BIN, 'direct', 'dump', spec, '-f', '1'])]);
    last = { real, ours };
    if (real.status === 0 && real.stdout === ours.stdout && ours.status === 0) return { text: real.stdout, rows: parseDump(real.stdout) };
    await new Promise((r) => setTimeout(r, 150));
  }
  assert.equal(last!.ours.stdout, last!.real.stdout, `direct dump ${spec}: ours differs from sanlock`);
  assert.equal(last!.ours.status, last!.real.status);
  assert.equal(last!.real.status, 0, last!.real.stderr);
  throw new Error('unreachable');
}

export function monoNow(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
