// Issue 9 item 3: a devcount-style mutual exclusion soak with real processes (modelled on
// sanlock's tests/devcount.c, written anew). Two or three daemons (ours, or ours with the real
// sanlock) join one lockspace as hosts 1..N; on each host a few python3-sanlock holder
// processes loop: acquire a random lease EX, then, while holding it, repeatedly increment a
// counter in that lease's sector of a separate "count" file, tagged with (host, pid), and read
// it back after a random pause. If anything else wrote the sector in between, two holders
// overlapped. Independently, the soak collects every (resource, count) that a holder verified:
// the same count verified by two different lease sessions means one of them started from a
// stale value, i.e. a lost update, which is also an overlap.
//
// Meanwhile it SIGKILLs random holders, SIGKILLs whole daemons, and injects storage faults
// (delays, EIO, short hangs whose I/O lands late) into our daemons through the
// SANLOCK_TS_FAULT_FILE each one watches.
//
// Fencing model: the daemons run with -w 0 (no watchdog), so when a daemon is killed the soak
// plays the watchdog's part and SIGKILLs that host's holders as well, and restarts the daemon
// only after they are gone (as a host comes back only after its reset). The restarted daemon
// rejoins with the same host name and so a new generation, which lets the other hosts take the
// leases its dead holders left owned on disk.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { PYTHON, SANLOCK_BIN } from '../daemon/our-daemon.js';
import { scratchDir, setrlimitShim } from '../helpers/real-sanlock.js';
import { SeededRandom } from '../../src/lease/manual-clock.js';

export type SoakConfig = 'ours' | 'mixed';

export interface SoakOptions {
  minutes: number;
  seed: number;
  /** 'ours': every host runs our daemon; 'mixed': hosts alternate ours, real, ours. */
  config: SoakConfig;
  hosts?: number;
  /** holder processes kept alive per host */
  holdersPerHost?: number;
  /** leases contended for */
  resources?: number;
  log?: (line: string) => void;
  /**
   * Oracle self-check only: holders skip the lease entirely (acquire and release are not
   * called), so overlaps are certain and the soak must report violations.
   */
  noLocking?: boolean;
}

export interface HostStats {
  kind: 'ours' | 'real';
  acquires: number;
  checkedWrites: number;
  acquireErrors: number;
}

export interface SoakStats {
  config: SoakConfig;
  seed: number;
  minutes: number;
  hosts: Record<number, HostStats>;
  acquires: number;
  checkedWrites: number;
  /** acquires whose counter sector was last written by another host */
  takeovers: number;
  /** of those, takeovers of a lease whose last writer's host had been killed meanwhile */
  takeoversFromKilledHost: number;
  clientsKilled: number;
  /** holders killed by their own daemon (lockspace failure after storage faults) */
  clientsKilledByDaemon: number;
  /** holders that ended on their own (python errors); not a violation, but reported */
  holderCrashes: number;
  daemonsKilled: number;
  faultsInjected: number;
  /** fault episodes meant to fail a lockspace (EIO on every delta lease I/O for > 8 s) */
  lockspaceOutages: number;
  /** times a host had lost its lockspace and the soak added it again */
  lockspaceRejoins: number;
  violations: string[];
}

/** Deterministic RNG (SeededRandom, mulberry32) so a seed reproduces the schedule of kills and faults. */
function rng(seed: number): () => number {
  const r = new SeededRandom(seed);
  return () => r.next();
}

const LS = 'soak';
const MiB = 1024 * 1024;
const OUR_BIN = resolve('bin/sanlock-ts');

const HOLDER = String.raw`
import sanlock, os, sys, time, random, struct
ls, lease, nres, count, host = sys.argv[1].encode(), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
me = os.getpid()
rng = random.Random(int(sys.argv[6]))
nolock = sys.argv[7] == "1"
fd = sanlock.register()
cfd = os.open(count, os.O_RDWR)
print("READY", flush=True)
while True:
    k = rng.randrange(nres)
    disks = [(lease, k * 1048576)]
    try:
        if not nolock:
            sanlock.acquire(ls, b"c%d" % k, disks, slkfd=fd)
    except sanlock.SanlockException as e:
        print("E %d %d" % (k, e.errno), flush=True)
        time.sleep(rng.uniform(0.05, 0.4))
        continue
    h, p, c = struct.unpack_from("<QQQ", os.pread(cfd, 512, k * 512), 0)
    print("A %d %d %d %d" % (k, c, h, p), flush=True)
    for i in range(rng.randint(1, 6)):
        c += 1
        os.pwrite(cfd, struct.pack("<QQQ", host, me, c).ljust(512, b"\0"), k * 512)
        time.sleep(rng.uniform(0.0, 0.05))
        h2, p2, c2 = struct.unpack_from("<QQQ", os.pread(cfd, 512, k * 512), 0)
        if (h2, p2, c2) != (host, me, c):
            print("V %d wrote %d, read %d written by host %d pid %d" % (k, c, c2, h2, p2), flush=True)
            c = c2
        else:
            print("W %d %d" % (k, c), flush=True)
    try:
        if not nolock:
            sanlock.release(ls, b"c%d" % k, disks, slkfd=fd)
    except sanlock.SanlockException as e:
        print("R %d %d" % (k, e.errno), flush=True)
    time.sleep(rng.uniform(0.0, 0.15))
`;

interface Holder {
  proc: ChildProcess;
  pid: number;
  session: number;
  killedByUs: boolean;
  exited: Promise<void>;
}

interface Host {
  id: number;
  kind: 'ours' | 'real';
  runDir: string;
  env: NodeJS.ProcessEnv;
  faultFile: string;
  daemon?: ChildProcess;
  up: boolean;
  holders: Set<Holder>;
  faultsActive: boolean;
  checking: boolean;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    p.stdout.on('data', (x) => { out += x; });
    p.stderr.on('data', (x) => { out += x; });
    p.on('close', (code) => res({ code: code ?? 1, out }));
  });
}

export async function runSoak(opts: SoakOptions): Promise<SoakStats> {
  const log = opts.log ?? (() => {});
  const nHosts = opts.hosts ?? 3;
  const nRes = opts.resources ?? 3;
  const perHost = opts.holdersPerHost ?? 3;
  const rand = rng(opts.seed);
  const dir = scratchDir(`soak-${opts.config}`);
  const ids = join(dir, 'ids');
  const leases = join(dir, 'leases');
  const countFile = join(dir, 'count');
  execFileSync('truncate', ['-s', '1M', ids]);
  execFileSync('truncate', ['-s', `${nRes}M`, leases]);
  writeFileSync(countFile, Buffer.alloc(nRes * 512));
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `${LS}:0:${ids}:0`, '-o', '1']);
  for (let k = 0; k < nRes; k++) execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `${LS}:c${k}:${leases}:${k * MiB}`]);

  const stats: SoakStats = {
    config: opts.config,
    seed: opts.seed,
    minutes: opts.minutes,
    hosts: {},
    acquires: 0,
    checkedWrites: 0,
    takeovers: 0,
    takeoversFromKilledHost: 0,
    clientsKilled: 0,
    clientsKilledByDaemon: 0,
    holderCrashes: 0,
    daemonsKilled: 0,
    faultsInjected: 0,
    lockspaceOutages: 0,
    lockspaceRejoins: 0,
    violations: [],
  };
  // (resource, count) -> the lease session that verified writing it
  const verified: Map<number, number>[] = Array.from({ length: nRes }, () => new Map());
  // per resource: the host whose holder last verified a write, and whether it was killed since
  const lastHost: number[] = new Array(nRes).fill(0);
  const lastHostKilled: boolean[] = new Array(nRes).fill(false);
  let sessionSeq = 0;
  let stopping = false;

  const hosts: Host[] = [];
  for (let i = 1; i <= nHosts; i++) {
    const kind = opts.config === 'mixed' && i % 2 === 0 ? 'real' : 'ours';
    const runDir = join(dir, `run${i}`);
    const faultFile = join(dir, `faults${i}.json`);
    const env: NodeJS.ProcessEnv = { ...process.env, SANLOCK_RUN_DIR: runDir, SANLOCK_PRIVILEGED: '0' };
    if (kind === 'ours') env.SANLOCK_TS_FAULT_FILE = faultFile;
    hosts.push({ id: i, kind, runDir, env, faultFile, up: false, holders: new Set(), faultsActive: false, checking: false });
    stats.hosts[i] = { kind, acquires: 0, checkedWrites: 0, acquireErrors: 0 };
  }

  // Everything that happened, with times, kept with the scratch dir when a violation is found.
  const eventsFile = join(dir, 'events.log');
  const t00 = Date.now();
  const event = (msg: string): void => {
    appendFileSync(eventsFile, `${((Date.now() - t00) / 1000).toFixed(3)} ${msg}\n`);
  };
  const violation = (msg: string): void => {
    stats.violations.push(msg);
    event(`VIOLATION ${msg}`);
    log(`VIOLATION: ${msg}`);
  };

  function onLine(h: Host, holder: Holder, line: string, session: { id: number }): void {
    const f = line.split(' ');
    if (f[0] !== 'W') event(`host ${h.id} pid ${holder.pid} ${line}`);
    const hs = stats.hosts[h.id]!;
    switch (f[0]) {
      case 'A': {
        session.id = ++sessionSeq;
        stats.acquires++;
        hs.acquires++;
        const k = Number(f[1]);
        const prevHost = Number(f[3]);
        if (prevHost !== 0 && prevHost !== h.id) {
          stats.takeovers++;
          if (lastHostKilled[k] && lastHost[k] === prevHost) stats.takeoversFromKilledHost++;
        }
        break;
      }
      case 'W': {
        const k = Number(f[1]);
        const c = Number(f[2]);
        stats.checkedWrites++;
        hs.checkedWrites++;
        const prev = verified[k]!.get(c);
        if (prev !== undefined && prev !== session.id) {
          violation(`lost update: resource c${k} count ${c} verified by two lease sessions (host ${h.id} pid ${holder.pid})`);
        }
        verified[k]!.set(c, session.id);
        lastHost[k] = h.id;
        lastHostKilled[k] = false;
        break;
      }
      case 'V':
        violation(`host ${h.id} pid ${holder.pid} resource ${line.slice(2)}`);
        break;
      case 'E':
        hs.acquireErrors++;
        break;
      default:
        break;
    }
  }

  function spawnHolder(h: Host): void {
    const seed = Math.floor(rand() * 2 ** 31);
    const proc = spawn(PYTHON, ['-c', HOLDER, LS, leases, String(nRes), countFile, String(h.id), String(seed), opts.noLocking ? '1' : '0'], {
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    proc.stderr!.on('data', (x) => { err = (err + x).slice(-2000); });
    const session = { id: 0 };
    const holder: Holder = {
      proc,
      pid: proc.pid ?? -1,
      session: 0,
      killedByUs: false,
      exited: new Promise((r) => proc.once('close', (code, sig) => {
        if (!holder.killedByUs && !stopping) {
          if (sig === 'SIGTERM' || sig === 'SIGKILL') stats.clientsKilledByDaemon++;
          else {
            stats.holderCrashes++;
            log(`host ${h.id} holder ${proc.pid} exited (code ${code}, signal ${sig}): ${err.trim().split('\n').pop() ?? ''}`);
          }
        }
        r();
      })),
    };
    h.holders.add(holder);
    createInterface({ input: proc.stdout! }).on('line', (l) => onLine(h, holder, l, session));
    void holder.exited.then(() => {
      h.holders.delete(holder);
      if (h.up && !stopping) setTimeout(() => {
        if (h.up && !stopping && h.holders.size < perHost) spawnHolder(h);
      }, 200);
    });
  }

  async function addLockspace(h: Host, still: () => boolean = () => true): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (!still()) return;
      const r = await run(SANLOCK_BIN, ['client', 'add_lockspace', '-s', `${LS}:${h.id}:${ids}:0`, '-o', '1'], h.env);
      if (r.code === 0) return;
      if (attempt > 20) throw new Error(`host ${h.id} add_lockspace keeps failing: ${r.out}`);
      await sleep(500);
    }
  }

  /** A host whose daemon dropped the lockspace (after failed renewals) joins it again. */
  async function checkLockspace(h: Host): Promise<void> {
    if (!h.up || h.checking || h.faultsActive) return;
    h.checking = true;
    try {
      const r = await run(SANLOCK_BIN, ['client', 'status'], h.env, 10_000);
      if (r.code === 0 && h.up && !new RegExp(`^s ${LS}:`, 'm').test(r.out)) {
        log(`host ${h.id} lost the lockspace; adding it again`);
        const d = h.daemon;
        // a daemon killed meanwhile is not a failure to rejoin
        await addLockspace(h, () => h.up && h.daemon === d && !stopping);
        stats.lockspaceRejoins++;
      }
    } finally {
      h.checking = false;
    }
  }

  async function startDaemon(h: Host): Promise<void> {
    // A killed daemon leaves its socket and lock file; a fresh run dir avoids mistaking them
    // for a ready daemon.
    rmSync(h.runDir, { recursive: true, force: true });
    mkdirSync(h.runDir, { recursive: true });
    const logFd = openSync(join(dir, `daemon${h.id}.log`), 'a');
    const args = ['daemon', '-D', '-w', '0', '-l', '0', '-h', '0', '-U', 'root', '-G', 'root', '-e', `soak-host-${h.id}`];
    const proc = h.kind === 'ours'
      ? spawn(process.execPath, [OUR_BIN, ...args, '-L', '-1'], { env: h.env, stdio: ['ignore', 'ignore', logFd], detached: true })
      : spawn(SANLOCK_BIN, args, { env: { ...h.env, LD_PRELOAD: setrlimitShim() }, stdio: ['ignore', 'ignore', logFd], detached: true });
    closeSync(logFd);
    h.daemon = proc;
    event(`host ${h.id} daemon started pid ${proc.pid}`);
    const sock = join(h.runDir, 'sanlock.sock');
    const end = Date.now() + 30_000;
    while (!existsSync(sock)) {
      if (proc.exitCode !== null || Date.now() > end) throw new Error(`host ${h.id} daemon did not start`);
      await sleep(50);
    }
    await addLockspace(h);
    h.up = true;
    for (let i = 0; i < perHost; i++) spawnHolder(h);
  }

  async function killHost(h: Host): Promise<void> {
    h.up = false;
    event(`kill host ${h.id} daemon and holders ${[...h.holders].map((x) => x.pid).join(',')}`);
    stats.daemonsKilled++;
    const d = h.daemon!;
    const gone = new Promise<void>((r) => (d.exitCode !== null || d.signalCode !== null ? r() : d.once('exit', () => r())));
    try { process.kill(-d.pid!, 'SIGKILL'); } catch { /* already gone */ }
    await gone;
    // the watchdog's part: the host's lease holders die with it
    const hs = [...h.holders];
    for (const x of hs) {
      x.killedByUs = true;
      x.proc.kill('SIGKILL');
      stats.clientsKilled++;
    }
    await Promise.all(hs.map((x) => x.exited));
    for (let k = 0; k < nRes; k++) if (lastHost[k] === h.id) lastHostKilled[k] = true;
    clearFaults(h);
  }

  function writeFaultFile(h: Host, disks: object[]): void {
    const tmp = `${h.faultFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ disks }));
    renameSync(tmp, h.faultFile);
  }

  function clearFaults(h: Host): void {
    if (h.kind !== 'ours') return;
    writeFaultFile(h, []);
    if (h.faultsActive) event(`host ${h.id} faults cleared`);
    h.faultsActive = false;
  }

  /** Returns how long the fault should stay. */
  function injectFault(h: Host): number {
    const path = rand() < 0.5 ? ids : leases;
    const op = (['read', 'write', 'both'] as const)[Math.floor(rand() * 3)];
    const pick = rand();
    let rule: object;
    if (pick < 0.12) {
      // long enough (> 8 io_timeouts) that renewals fail for good: the daemon fails the
      // lockspace and kills its holders; the soak re-adds the lockspace afterwards
      writeFaultFile(h, [{ path: ids, faults: [{ op: 'both', error: -5 }] }]);
      event(`host ${h.id} fault ids outage`);
      h.faultsActive = true;
      stats.faultsInjected++;
      stats.lockspaceOutages++;
      return 10_000 + rand() * 4000;
    }
    if (pick < 0.45) rule = { op, probability: 0.6, delayMs: { min: 20, max: 400 } };
    else if (pick < 0.8) rule = { op, probability: 0.3, error: -5 };
    else rule = { op, count: 1 + Math.floor(rand() * 2), hang: { completeAfterMs: 1200 + Math.floor(rand() * 800) } };
    writeFaultFile(h, [{ path, faults: [rule] }]);
    event(`host ${h.id} fault ${path === ids ? 'ids' : 'leases'} ${JSON.stringify(rule)}`);
    h.faultsActive = true;
    stats.faultsInjected++;
    return 1000 + rand() * 4000;
  }

  const t0 = Date.now();
  const endAt = t0 + opts.minutes * 60_000;
  try {
    for (const h of hosts) clearFaults(h);
    await Promise.all(hosts.map((h) => startDaemon(h)));
    log(`soak ${opts.config} seed ${opts.seed}: ${nHosts} hosts (${hosts.map((h) => h.kind).join(',')}) up in ${((Date.now() - t0) / 1000).toFixed(1)} s, dir ${dir}`);
    let nextClientKill = Date.now() + 1000 + rand() * 1500;
    let nextDaemonKill = Date.now() + 15_000 + rand() * 20_000;
    let nextFault = Date.now() + 2000 + rand() * 3000;
    let faultEnd = 0;
    let lastReport = Date.now();
    let nextCheck = Date.now() + 3000;
    const restarting: Promise<void>[] = [];
    while (Date.now() < endAt) {
      await sleep(100);
      const now = Date.now();
      if (now >= nextClientKill) {
        nextClientKill = now + 500 + rand() * 2000;
        const live = hosts.filter((h) => h.up).flatMap((h) => [...h.holders]);
        if (live.length > 0) {
          const x = live[Math.floor(rand() * live.length)]!;
          x.killedByUs = true;
          x.proc.kill('SIGKILL');
          stats.clientsKilled++;
          event(`kill holder pid ${x.pid}`);
        }
      }
      if (now >= nextDaemonKill) {
        nextDaemonKill = now + 25_000 + rand() * 35_000;
        const up = hosts.filter((h) => h.up);
        // keep at least two hosts running so leases keep moving
        if (up.length === nHosts) {
          const h = up[Math.floor(rand() * up.length)]!;
          log(`t=${((now - t0) / 1000).toFixed(0)}s killing host ${h.id} (${h.kind}) and its ${h.holders.size} holders`);
          const downMs = 500 + rand() * 2500;
          restarting.push((async () => {
            await killHost(h);
            await sleep(downMs);
            if (!stopping) {
              await startDaemon(h);
              log(`t=${((Date.now() - t0) / 1000).toFixed(0)}s host ${h.id} rejoined`);
            }
          })());
        }
      }
      if (faultEnd && now >= faultEnd) {
        for (const h of hosts) if (h.faultsActive) clearFaults(h);
        faultEnd = 0;
      }
      if (now >= nextFault && !faultEnd) {
        nextFault = now + 3000 + rand() * 5000;
        const ours = hosts.filter((h) => h.up && h.kind === 'ours');
        if (ours.length > 0) {
          faultEnd = now + injectFault(ours[Math.floor(rand() * ours.length)]!);
        }
      }
      if (now >= nextCheck) {
        nextCheck = now + 3000;
        for (const h of hosts) void checkLockspace(h).catch((e) => violation(`host ${h.id} cannot rejoin: ${(e as Error).message}`));
      }
      if (now - lastReport > 30_000) {
        lastReport = now;
        log(`t=${((now - t0) / 1000).toFixed(0)}s acquires ${stats.acquires} checked writes ${stats.checkedWrites} takeovers ${stats.takeovers} clients killed ${stats.clientsKilled}+${stats.clientsKilledByDaemon} daemons killed ${stats.daemonsKilled} faults ${stats.faultsInjected} violations ${stats.violations.length}`);
      }
    }
    stopping = true;
    await Promise.allSettled(restarting);
  } finally {
    stopping = true;
    for (const h of hosts) {
      for (const x of h.holders) {
        x.killedByUs = true;
        x.proc.kill('SIGKILL');
      }
      await Promise.all([...h.holders].map((x) => x.exited));
      if (h.daemon && h.daemon.exitCode === null && h.daemon.signalCode === null) {
        const d = h.daemon;
        const gone = new Promise<void>((r) => d.once('exit', () => r()));
        try { process.kill(-d.pid!, 'SIGKILL'); } catch { /* gone */ }
        await gone;
      }
    }
    if (stats.violations.length === 0 && !process.env.SOAK_KEEP) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
  return stats;
}

export function formatStats(s: SoakStats): string {
  const per = Object.entries(s.hosts)
    .map(([id, h]) => `  host ${id} (${h.kind}): acquires ${h.acquires}, checked writes ${h.checkedWrites}, acquire errors ${h.acquireErrors}`)
    .join('\n');
  return [
    `config ${s.config} seed ${s.seed} minutes ${s.minutes}`,
    per,
    `acquires ${s.acquires}`,
    `count-file writes checked ${s.checkedWrites}`,
    `takeovers between hosts ${s.takeovers} (of a killed host's lease ${s.takeoversFromKilledHost})`,
    `processes killed ${s.clientsKilled} (by the soak) + ${s.clientsKilledByDaemon} (by their daemon)`,
    `holder processes that ended on their own ${s.holderCrashes}`,
    `daemons killed ${s.daemonsKilled}`,
    `faults injected ${s.faultsInjected} (lockspace outages ${s.lockspaceOutages}, lockspace re-adds ${s.lockspaceRejoins})`,
    `violations ${s.violations.length}`,
    ...s.violations.map((v) => `  ${v}`),
  ].join('\n');
}
