// Shared pieces of the daemon benchmark: the python3-sanlock driver (one process talks to one
// daemon, because libsanlock binds to SANLOCK_RUN_DIR at its first connect), fast resource
// initialisation, /proc sampling and statistics.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeSync, ftruncateSync, writeFileSync } from 'node:fs';
import { decodeLeader, encodeLeader, leaderChecksumOk } from '../src/ondisk/leader.js';

export const MIB = 1024 * 1024;

/**
 * The python side. Every subcommand measures with the client's own clock so that process
 * start-up and JSON transport never enter a number:
 * - pairs LS PATH N: N EX acquire+release pairs, then N SH pairs, on one lease at offset 0;
 *   prints {"ex": [µs...], "sh": [µs...]}.
 * - many LS PATH COUNT: registers, prints "ready", waits for a line, acquires COUNT leases (areas
 *   1 MiB apart, resource names R<offset/MiB> of PATH's basename), prints {"t0","t1"} on
 *   CLOCK_MONOTONIC (shared by all processes), waits for a line, releases all, prints {"t2","t3"}.
 * - hold LS PATH COUNT: acquires COUNT leases, prints "held", releases when stdin closes.
 * - loop LS PATH COUNT SECS: registers, prints "ready", waits for a line, then acquires and
 *   releases COUNT leases (as `many`) over and over for SECS seconds; prints {"cycles"}.
 * - addls LS PATH JSON: adds the lockspaces [[name, path]...] (host_id 1, io_timeout 1) at once,
 *   waits until each has joined or failed, prints {"failed": [names]} (LS and PATH unused).
 * - join LS PATH [IO_TIMEOUT]: times add_lockspace (host_id 1, io_timeout 1 by default) and
 *   rem_lockspace.
 */
export const DRIVER_PY = `
import sanlock, sys, json, time, os
cmd, ls, path = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
def res(i):
    return (os.path.basename(path) + '-R%d' % i).encode()
RETRIES = [0]
def acquire(*a, **k):
    # io_timeout 1 s: when other work floods the shared disk an acquire can fail with an I/O
    # timeout (-202) in either daemon; it is retried (and counted) rather than ending the run
    for attempt in range(5):
        try:
            return sanlock.acquire(*a, **k)
        except sanlock.SanlockException as e:
            if e.args[0] != -202 or attempt == 4:
                raise
            RETRIES[0] += 1
if cmd == 'pairs':
    n = int(sys.argv[4])
    fd = sanlock.register()
    out = {}
    for key, sh in (('ex', False), ('sh', True)):
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            acquire(ls, b'PAIR', [(path, 0)], slkfd=fd, shared=sh)
            sanlock.release(ls, b'PAIR', [(path, 0)], slkfd=fd)
            lat.append((time.perf_counter() - t) * 1e6)
        out[key] = lat
    out['retries'] = RETRIES[0]
    print(json.dumps(out), flush=True)
elif cmd == 'many':
    count = int(sys.argv[4])
    fd = sanlock.register()
    print('ready', flush=True)
    sys.stdin.readline()
    t0 = time.monotonic()
    for i in range(count):
        acquire(ls, res(i), [(path, i << 20)], slkfd=fd)
    t1 = time.monotonic()
    print(json.dumps({'t0': t0, 't1': t1, 'retries': RETRIES[0]}), flush=True)
    sys.stdin.readline()
    t2 = time.monotonic()
    for i in range(count):
        sanlock.release(ls, res(i), [(path, i << 20)], slkfd=fd)
    t3 = time.monotonic()
    print(json.dumps({'t2': t2, 't3': t3}), flush=True)
elif cmd == 'hold':
    count = int(sys.argv[4])
    fd = sanlock.register()
    for i in range(count):
        acquire(ls, res(i), [(path, i << 20)], slkfd=fd)
    print('held', flush=True)
    sys.stdin.read()
    for i in range(count):
        sanlock.release(ls, res(i), [(path, i << 20)], slkfd=fd)
elif cmd == 'loop':
    count, secs = int(sys.argv[4]), float(sys.argv[5])
    fd = sanlock.register()
    print('ready', flush=True)
    sys.stdin.readline()
    end = time.monotonic() + secs
    cycles = 0
    while time.monotonic() < end:
        for i in range(count):
            acquire(ls, res(i), [(path, i << 20)], slkfd=fd)
        for i in range(count):
            sanlock.release(ls, res(i), [(path, i << 20)], slkfd=fd)
        cycles += 1
    print(json.dumps({'cycles': cycles, 'retries': RETRIES[0]}), flush=True)
elif cmd == 'addls':
    spaces = json.loads(sys.argv[4])
    for name, p in spaces:
        sanlock.add_lockspace(name.encode(), 1, p, 0, iotimeout=1, wait=False)
    end = time.monotonic() + 120
    left = list(spaces)
    failed = []
    while left and time.monotonic() < end:
        nl = []
        for n, p in left:
            try:
                if not sanlock.inq_lockspace(n.encode(), 1, p, 0, wait=False):
                    nl.append((n, p))
            except sanlock.SanlockException:
                failed.append(n)  # the join failed (e.g. an I/O timeout on a busy disk)
        left = nl
        time.sleep(0.05)
    print(json.dumps({'failed': failed + [n for n, p in left]}), flush=True)
elif cmd == 'join':
    iot = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    t = time.perf_counter()
    sanlock.add_lockspace(ls, 1, path, 0, iotimeout=iot)
    t1 = time.perf_counter()
    sanlock.rem_lockspace(ls, 1, path, 0)
    t2 = time.perf_counter()
    print(json.dumps({'join': t1 - t, 'rem': t2 - t1}), flush=True)
else:
    sys.exit('unknown command ' + cmd)
`;

export function resourceName(path: string, i: number): string {
  return `${path.split('/').pop()}-R${i}`;
}

/**
 * Initialises `count` resource leases 1 MiB apart in `path` (lockspace `ls`). `sanlock direct
 * init -r` writes every one of the 2048 sectors of an area and costs ~33 ms per lease, which
 * would dominate the run; instead the real binary initialises one template area, and each area
 * gets the template's leader (with its own resource name and checksum) and request sector, the
 * rest left as a hole. A hole reads as zeros, which is exactly what init writes there, so the
 * bytes any reader sees are those `direct init -r` would produce.
 */
export function initResources(ls: string, path: string, count: number): void {
  const tmpl = `${path}.tmpl`;
  writeFileSync(tmpl, '');
  execFileSync('truncate', ['-s', String(MIB), tmpl]);
  execFileSync('/usr/sbin/sanlock', ['direct', 'init', '-r', `${ls}:TEMPLATE:${tmpl}:0`], { stdio: 'ignore' });
  const head = readFileSync(tmpl).subarray(0, 1024);
  execFileSync('rm', ['-f', tmpl]);
  const leader = decodeLeader(head, 0);
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, count * MIB);
    const buf = Buffer.from(head);
    for (let i = 0; i < count; i++) {
      encodeLeader({ ...leader, resourceName: resourceName(path, i) }, buf, 0);
      if (!leaderChecksumOk(buf, 0)) throw new Error('template leader checksum');
      writeSync(fd, buf, 0, buf.length, i * MIB);
    }
  } finally {
    closeSync(fd);
  }
  // Flush so that the daemons' O_DIRECT reads do not race the page cache writeback.
  execFileSync('sync', [path]);
}

/** Reads back one area's resource name, to prove the image is what the daemons will see. */
export function readResourceName(path: string, i: number): string {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(512);
    readSync(fd, b, 0, 512, i * MIB);
    return decodeLeader(b, 0).resourceName;
  } finally {
    closeSync(fd);
  }
}

export interface ProcSample {
  /** utime + stime in clock ticks */
  ticks: number;
  utime: number;
  stime: number;
  rssKiB: number;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

export function procSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm may contain spaces and parentheses: fields are counted after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(f[11]); // fields 14 and 15 of proc(5)
  const stime = Number(f[12]);
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { ticks: utime + stime, utime, stime, rssKiB: m ? Number(m[1]) : Number.NaN };
}

/**
 * Nanoseconds on CPU per thread (/proc/PID/task/TID/schedstat, first field): far finer than
 * utime+stime's 10 ms ticks, which read 0 for an idle C daemon over 10 s.
 */
export function threadCpuNs(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      m.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended between readdir and read
    }
  }
  return m;
}

/** CPU ns spent between two threadCpuNs samples by the threads alive at the second one. */
export function cpuNsBetween(a: Map<string, number>, b: Map<string, number>): number {
  let ns = 0;
  for (const [tid, v] of b) ns += v - (a.get(tid) ?? 0);
  return ns;
}

export function ticksToMs(ticks: number): number {
  return (ticks * 1000) / CLK_TCK;
}

export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function median(xs: number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.5);
}

/** Latency distributions kept for the chart main.ts writes (bench-results.svg). */
export interface RecordedDistribution {
  title: string;
  unit: string;
  series: Record<string, number[]>;
  scale?: 'log' | 'linear';
}

export const distributions: RecordedDistribution[] = [];

export function recordDistribution(title: string, unit: string, series: Record<string, number[]>, scale: 'log' | 'linear' = 'log'): void {
  distributions.push({ title, unit, series, scale });
}

export function p99(xs: number[]): number {
  return quantile([...xs].sort((a, b) => a - b), 0.99);
}

/** A target from the issue: PASS when `value op bound`. */
export function target(text: string, value: number, op: '<=' | '>=', bound: number): { text: string; pass: boolean } {
  return { text, pass: Number.isFinite(value) && (op === '<=' ? value <= bound : value >= bound) };
}

/**
 * Watches the delta-lease timestamp of host_id 1 in each lockspace file (O_DIRECT, every
 * POLL_MS) and records the CLOCK_MONOTONIC time at which it changes: the moment a renewal's write
 * is visible on disk. The same for both daemons, whatever their I/O path (inotify does not see
 * libaio writes). Prints {"changes": [[file index, t]...]} when stdin closes.
 */
export const POLLER_PY = `
import os, sys, mmap, json, time, struct, threading
paths = json.loads(sys.argv[1])
poll = float(sys.argv[2]) / 1000.0
fds = [os.open(p, os.O_RDONLY | os.O_DIRECT) for p in paths]
buf = mmap.mmap(-1, 4096)
last = [None] * len(paths)
changes = []
stop = threading.Event()
def closer():
    sys.stdin.read()
    stop.set()
threading.Thread(target=closer, daemon=True).start()
print('polling', flush=True)
while not stop.is_set():
    for i, fd in enumerate(fds):
        os.preadv(fd, [buf], 0)
        ts = struct.unpack_from('<Q', buf, 152)[0]
        if last[i] is not None and ts != last[i]:
            changes.append([i, time.monotonic()])
        last[i] = ts
    time.sleep(poll)
print(json.dumps({'changes': changes}), flush=True)
`;

/** Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
export function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Cores kept busy (all processes) between two machineCpu samples taken `secs` apart. */
export function busyCores(a: { busy: number }, b: { busy: number }, secs: number): number {
  return ticksToMs(b.busy - a.busy) / 1000 / secs;
}
