// Issue 9 item 6: privileges. Each check runs against the real sanlock 3.8.5 daemon and against
// ours, started the same way as root, and asserts that ours answers what theirs answers:
// socket and run-dir modes and owners, the uid/gid/groups the daemon ends up with after -U/-G,
// SANLOCK_PRIVILEGED handling, and what a local user can and cannot do through the socket.
//
// What sanlock 3.8.5 does (observed here, and why the matrix looks as it does):
// * the socket is the only access control: mode 0660, owner -U, group -G. A user who is
//   neither gets EACCES at connect. Anyone who can connect may do everything: add/remove
//   lockspaces, shut the daemon down, and ACQUIRE/RELEASE/INQUIRE on behalf of ANY registered
//   pid (no uid or pid check; an unregistered pid gives -ESRCH).
// * privileged (SANLOCK_PRIVILEGED unset or "1") with both a user and a group name known: the
//   daemon takes the user's groups (+gid), setgid, setuid after writing its pid file; a root
//   helper forked before that still signals clients of other users.
// Needs root (to start daemons that drop privileges and to run clients as other uids).
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type Socket } from 'node:net';
import { parseHelperMsg, procStartTime } from '../../src/daemon/priv-helper.js';
import { Cmd, RestrictFlag } from '../../src/protocol/commands.js';
import { emptyOptions, encodeOptions, encodeResource, makeResource } from '../../src/protocol/structs.js';
import { header, readBytes, startOurDaemon } from '../daemon/our-daemon.js';
import { haveRealSanlock, havePythonSanlock, PYTHON, SANLOCK_BIN, scratchDir, setrlimitShim, startRealDaemon } from '../helpers/real-sanlock.js';

const OUR_BIN = resolve('bin/sanlock-ts');
const MiB = 1024 * 1024;

function idOf(db: 'passwd' | 'group', name: string): number | undefined {
  const r = spawnSync('getent', [db, name], { encoding: 'utf8' });
  const f = r.stdout?.split(':');
  return r.status === 0 && f && f[2] ? Number(f[2]) : undefined;
}

const isRoot = process.getuid?.() === 0;
const NOBODY = idOf('passwd', 'nobody');
const NOGROUP = idOf('group', 'nogroup');
const skip = !isRoot
  ? 'needs root'
  : !haveRealSanlock() || !havePythonSanlock()
    ? 'needs /usr/sbin/sanlock and python3-sanlock'
    : NOBODY === undefined || NOGROUP === undefined
      ? 'needs user nobody and group nogroup'
      : false;

// Clients by numeric ids (no passwd entry needed): the outsider shares neither owner nor group
// with the socket; the member is another uid whose group is the socket's group.
const OUTSIDER = { uid: 65533, gid: 65533 };
const MEMBER = { uid: 65533, gid: NOGROUP ?? 65534 };

type Kind = 'ours' | 'real';

interface Started {
  proc: ChildProcess;
  runDir: string;
  log(): string;
  stop(): Promise<void>;
}

/** Starts a daemon in the foreground as root, in its own process group. */
async function startDaemon(kind: Kind, runDir: string, args: string[], env: Record<string, string | undefined>): Promise<Started> {
  const base: Record<string, string | undefined> = { ...process.env, SANLOCK_RUN_DIR: runDir, ...env };
  for (const [k, v] of Object.entries(base)) if (v === undefined) delete base[k];
  const common = ['daemon', '-D', '-w', '0', '-l', '0', '-h', '0', ...args];
  const proc =
    kind === 'real'
      ? spawn(SANLOCK_BIN, common, { env: { ...base, LD_PRELOAD: setrlimitShim() }, stdio: ['ignore', 'ignore', 'pipe'], detached: true, cwd: '/' })
      : spawn(process.execPath, [OUR_BIN, ...common, '-L', '-1'], { env: base, stdio: ['ignore', 'ignore', 'pipe'], detached: true, cwd: '/' });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const sock = join(runDir, 'sanlock.sock');
  const end = Date.now() + 15_000;
  while (!existsSync(sock) && proc.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  // the socket appears at bind; give the chmod/chown that follows a moment
  await new Promise((r) => setTimeout(r, 150));
  return {
    proc,
    runDir,
    log: () => log,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    },
  };
}

/** Log messages without timestamps, pids, the random host name and the run dir's name. */
function messages(log: string, runDir: string): string[] {
  return log
    .replaceAll(runDir, 'RUNDIR')
    .split('\n')
    .map((l) => l.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+ \[\d+\]: /, ''))
    .filter((l) => /unprivileged|not found|daemon started|chown error|error (initializing|setting)/.test(l))
    .map((l) => l.replace(/host \S+ \(\S+\)/, 'host H'));
}

function statOf(p: string): string {
  try {
    const s = statSync(p);
    return `${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}`;
  } catch {
    return 'missing';
  }
}

function procIds(pid: number): string {
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const f = (k: string): string => (st.match(new RegExp(`^${k}:[ \\t]*(.*)$`, 'm'))?.[1] ?? '').trim().split(/\s+/).join(' ');
    return `uid ${f('Uid')} gid ${f('Gid')} groups [${f('Groups')}]`;
  } catch {
    return 'gone';
  }
}

/** Children of pid with their uid (the root helper of a daemon that dropped privileges). */
function childUids(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/status`, 'utf8');
      if (Number(st.match(/^PPid:\s*(\d+)/m)?.[1]) !== pid) continue;
      out.push(Number(st.match(/^Uid:\s*(\d+)/m)?.[1]));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const PY_CLIENT = `
import sanlock, sys, os, socket, time
op, a = sys.argv[1], sys.argv[2:]
def r(f):
    try:
        v = f()
        if isinstance(v, list): v = ",".join(sorted(x["resource"].decode() for x in v))
        print("OK", v if v is not None else "")
    except sanlock.SanlockException as e:
        print("ERR", e.errno)
    except OSError as e:
        print("OSERR", e.errno)
sys.stdout.flush()
if op == "connect":
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(os.environ["SANLOCK_RUN_DIR"] + "/sanlock.sock"); print("OK")
    except OSError as e:
        print("OSERR", e.errno)
elif op == "register":
    r(lambda: sanlock.register() and None)
elif op == "add":
    r(lambda: sanlock.add_lockspace(b"LS", 1, a[0].encode(), iotimeout=1))
elif op == "rem":
    r(lambda: sanlock.rem_lockspace(b"LS", 1, a[0].encode()))
elif op == "self":
    fd = sanlock.register()
    r(lambda: sanlock.acquire(b"LS", b"R2", [(a[0], MIB)], slkfd=fd))
    r(lambda: sanlock.inquire(slkfd=fd))
    r(lambda: sanlock.release(b"LS", b"R2", [(a[0], MIB)], slkfd=fd))
elif op == "acquire":
    r(lambda: sanlock.acquire(b"LS", a[2].encode(), [(a[1], int(a[3]))], pid=int(a[0])))
elif op == "release":
    r(lambda: sanlock.release(b"LS", a[2].encode(), [(a[1], int(a[3]))], pid=int(a[0])))
elif op == "inquire":
    r(lambda: sanlock.inquire(pid=int(a[0])))
elif op == "hold":
    fd = sanlock.register()
    sanlock.acquire(b"LS", b"R1", [(a[0], 0)], slkfd=fd)
    print("PID", os.getpid(), flush=True)
    time.sleep(600)
`.replace(/MIB/g, String(MiB));

/** Runs one python3-sanlock operation as the given ids; returns its one-line answer(s). */
function py(runDir: string, who: { uid: number; gid: number } | 'root', op: string, ...args: string[]): string {
  const ids = who === 'root' ? {} : { uid: who.uid, gid: who.gid };
  const r = spawnSync(PYTHON, ['-c', PY_CLIENT, op, ...args], {
    env: { ...process.env, SANLOCK_RUN_DIR: runDir },
    encoding: 'utf8',
    timeout: 60_000,
    cwd: '/',
    ...ids,
  });
  if (r.status !== 0) throw new Error(`python ${op} failed: ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .join(' | ');
}

/** A root process holding R1 through its own registered connection. */
async function startHolder(runDir: string, leases: string): Promise<{ proc: ChildProcess; pid: number; exit: Promise<string> }> {
  const proc = spawn(PYTHON, ['-c', PY_CLIENT, 'hold', leases], { env: { ...process.env, SANLOCK_RUN_DIR: runDir }, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
  const exit = new Promise<string>((r) => proc.once('exit', (code, sig) => r(sig ?? String(code))));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const end = Date.now() + 30_000;
  while (!/PID \d+/.test(out) && proc.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const m = out.match(/PID (\d+)/);
  if (!m) throw new Error('holder did not start');
  return { proc, pid: Number(m[1]), exit };
}

describe('privileges: ours vs the real sanlock 3.8.5', { skip }, () => {
  let dir: string;
  const daemons: Started[] = [];
  const helperSeen: Record<string, boolean> = {};
  const holders: ChildProcess[] = [];

  before(() => {
    dir = scratchDir('priv');
    // the daemon will run as nobody: it must reach and write its files
    chmodSync(dir, 0o755);
    for (const k of ['ours', 'real'] as Kind[]) {
      const ids = join(dir, `${k}-ids`);
      const leases = join(dir, `${k}-leases`);
      execFileSync('truncate', ['-s', '1M', ids]);
      execFileSync('truncate', ['-s', '2M', leases]);
      execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
      execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R1:${leases}:0`]);
      execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R2:${leases}:${MiB}`]);
      chownSync(ids, NOBODY!, NOGROUP!);
      chownSync(leases, NOBODY!, NOGROUP!);
    }
  });

  after(async () => {
    for (const h of holders) h.kill('SIGKILL');
    for (const d of daemons) await d.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Start-up as root with the given args/env: files, ids and messages, for one kind. */
  async function startup(kind: Kind, tag: string, args: string[], env: Record<string, string | undefined>): Promise<Record<string, unknown>> {
    const runDir = join(dir, `run-${kind}-${tag}`);
    const d = await startDaemon(kind, runDir, args, env);
    daemons.push(d);
    const res = {
      running: d.proc.exitCode === null,
      runDir: statOf(runDir),
      pidFile: statOf(join(runDir, 'sanlock.pid')),
      socket: statOf(join(runDir, 'sanlock.sock')),
      ids: procIds(d.proc.pid!),
      messages: messages(d.log(), runDir),
    };
    // sanlock always forks its root helper; ours starts one only when it drops to another uid
    // (before that it signals clients itself), so this is checked apart from the comparison
    helperSeen[`${kind}-${tag}`] = childUids(d.proc.pid!).includes(0);
    if (!res.running) process.stderr.write(`${kind} ${tag} did not start:\n${d.log()}\n`);
    await d.stop();
    return res;
  }

  const U = ['-U', 'nobody', '-G', 'nogroup'];
  const cases: [string, string[], Record<string, string | undefined>][] = [
    ['privileged', U, { SANLOCK_PRIVILEGED: undefined }],
    ['privileged-1', U, { SANLOCK_PRIVILEGED: '1' }],
    ['unprivileged-0', U, { SANLOCK_PRIVILEGED: '0' }],
    ['unprivileged-yes', U, { SANLOCK_PRIVILEGED: 'yes' }],
    ['unknown-user', ['-U', 'no-such-user-sltest', '-G', 'nogroup'], { SANLOCK_PRIVILEGED: undefined }],
    ['unknown-group', ['-U', 'nobody', '-G', 'no-such-group-sltest'], { SANLOCK_PRIVILEGED: undefined }],
    ['defaults', [], { SANLOCK_PRIVILEGED: undefined }],
  ];
  for (const [tag, args, env] of cases) {
    test(`start-up ${tag} (${args.join(' ') || 'no -U/-G'}): same files, ids and messages`, async () => {
      const real = await startup('real', tag, args, env);
      const ours = await startup('ours', tag, args, env);
      assert.deepEqual(ours, real);
      if (tag === 'privileged') {
        // the facts the comparison stands on, spelled out
        assert.equal(real.socket, `660 ${NOBODY}:${NOGROUP}`);
        assert.equal(real.runDir, `775 ${NOBODY}:0`);
        assert.equal(real.pidFile, '644 0:0');
        assert.match(String(real.ids), new RegExp(`^uid ${NOBODY} ${NOBODY} ${NOBODY} ${NOBODY} gid ${NOGROUP} `));
        assert.equal(helperSeen[`real-${tag}`], true, 'sanlock keeps a root helper');
        assert.equal(helperSeen[`ours-${tag}`], true, 'ours keeps a root helper');
      }
      if (tag === 'unprivileged-0') {
        assert.equal(real.runDir, `775 ${NOBODY}:${NOGROUP}`);
        assert.match(String(real.ids), /^uid 0 0 0 0 gid 0 0 0 0 /);
        assert.deepEqual((real.messages as string[]).filter((m) => /unprivileged/.test(m)), ['Running in unprivileged mode']);
        assert.equal(helperSeen[`ours-${tag}`], false, 'no helper when the daemon keeps root');
      }
    });
  }

  test('a non-root daemon cannot give its run dir to -U root: exits 1 like sanlock', async () => {
    const res: Record<string, unknown> = {};
    for (const kind of ['real', 'ours'] as Kind[]) {
      const runDir = join(dir, `run-${kind}-nonroot`);
      execFileSync('mkdir', ['-p', runDir]);
      chownSync(runDir, NOBODY!, NOGROUP!);
      const cmd = kind === 'real' ? SANLOCK_BIN : process.execPath;
      const pre = kind === 'real' ? [] : [OUR_BIN];
      const r = spawnSync(cmd, [...pre, 'daemon', '-D', '-w', '0', '-l', '0', '-h', '0', '-U', 'root', '-G', 'root'], {
        env: { ...process.env, SANLOCK_RUN_DIR: runDir, SANLOCK_PRIVILEGED: '0' },
        uid: NOBODY!,
        gid: NOGROUP!,
        encoding: 'utf8',
        timeout: 20_000,
        cwd: '/',
      });
      res[kind] = { status: r.status, messages: messages(r.stderr, runDir), socket: statOf(join(runDir, 'sanlock.sock')) };
    }
    assert.deepEqual(res.ours, res.real);
    assert.deepEqual(res.real, {
      status: 1,
      messages: ['Running in unprivileged mode', 'lockfile chown error RUNDIR: Operation not permitted'],
      socket: 'missing',
    });
  });

  test('ours with the device watchdog (our extension) keeps root, says so, and keeps no helper', async () => {
    const runDir = join(dir, 'run-ours-device');
    // the later -w 1 overrides startDaemon's -w 0
    const d = await startDaemon('ours', runDir, ['-w', '1', ...U], {
      SANLOCK_PRIVILEGED: undefined,
      SANLOCK_TS_WATCHDOG: 'device',
    });
    daemons.push(d);
    try {
      assert.equal(d.proc.exitCode, null, d.log());
      const st = execFileSync(SANLOCK_BIN, ['client', 'status', '-D'], { env: { ...process.env, SANLOCK_RUN_DIR: runDir }, encoding: 'utf8' });
      assert.match(st, /\n {4}use_watchdog=1\n/);
      assert.match(procIds(d.proc.pid!), /^uid 0 0 0 0 gid 0 0 0 0 /);
      assert.match(d.log(), /watchdog device mode: not changing to nobody:nogroup, the device needs root/);
      // the socket still belongs to -U/-G: group members keep their access
      assert.equal(statOf(join(runDir, 'sanlock.sock')), `660 ${NOBODY}:${NOGROUP}`);
      assert.equal(childUids(d.proc.pid!).length, 0);
    } finally {
      await d.stop();
    }
  });

  /**
   * What local users can do through a daemon that runs as nobody:nogroup: an outsider, and a
   * member of the socket's group acting on its own and on behalf of a root process.
   */
  async function clientMatrix(kind: Kind): Promise<Record<string, unknown>> {
    const runDir = join(dir, `run-${kind}-clients`);
    const ids = join(dir, `${kind}-ids`);
    const leases = join(dir, `${kind}-leases`);
    const d = await startDaemon(kind, runDir, U, { SANLOCK_PRIVILEGED: undefined });
    daemons.push(d);
    const m: Record<string, unknown> = {};
    m.outsiderConnect = py(runDir, OUTSIDER, 'connect');
    m.outsiderRegister = py(runDir, OUTSIDER, 'register');
    m.memberConnect = py(runDir, MEMBER, 'connect');
    m.memberAddLockspace = py(runDir, MEMBER, 'add', ids);
    m.memberOwnLease = py(runDir, MEMBER, 'self', leases);

    const holder = await startHolder(runDir, leases);
    holders.push(holder.proc);
    const p = String(holder.pid);
    // a user who may not use the socket cannot act for the root holder either: refused at
    // connect, and the lease file is not touched
    const leasesBefore = readFileSync(leases);
    m.outsiderInquireForRoot = py(runDir, OUTSIDER, 'inquire', p);
    m.outsiderAcquireForRoot = py(runDir, OUTSIDER, 'acquire', p, leases, 'R2', String(MiB));
    m.outsiderReleaseForRoot = py(runDir, OUTSIDER, 'release', p, leases, 'R1', '0');
    m.leasesUntouchedByOutsider = readFileSync(leases).equals(leasesBefore);
    m.inquireForRoot = py(runDir, MEMBER, 'inquire', p);
    m.acquireForRoot = py(runDir, MEMBER, 'acquire', p, leases, 'R2', String(MiB));
    m.inquireAfterAcquire = py(runDir, MEMBER, 'inquire', p);
    m.releaseRootsOwnLease = py(runDir, MEMBER, 'release', p, leases, 'R1', '0');
    m.inquireAfterRelease = py(runDir, MEMBER, 'inquire', p);
    // pid 1 never registers
    m.acquireForUnregistered = py(runDir, MEMBER, 'acquire', '1', leases, 'R1', '0');
    // removing the lockspace fences the root holder (still holding R2): a daemon running as
    // nobody needs its root helper for that
    m.memberRemLockspace = py(runDir, MEMBER, 'rem', ids);
    m.holderEnd = await Promise.race([holder.exit, new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
    const sd = spawnSync(SANLOCK_BIN, ['client', 'shutdown', '-f', '1'], {
      env: { ...process.env, SANLOCK_RUN_DIR: runDir },
      uid: MEMBER.uid,
      gid: MEMBER.gid,
      encoding: 'utf8',
      timeout: 20_000,
    });
    m.memberShutdown = sd.stdout.trim().split('\n').pop();
    const end = Date.now() + 10_000;
    const gone = (): boolean => d.proc.exitCode !== null || /sanlock daemon exit/.test(d.log());
    while (!gone() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    // the real daemon is gone; ours has logged its exit (whether the process then ends at once
    // is the I/O pool's business: see the report)
    m.daemonExited = kind === 'real' ? d.proc.exitCode !== null : /sanlock daemon exit/.test(d.log());
    await d.stop();
    if (process.env.PRIV_TEST_DEBUG) process.stderr.write(`--- ${kind} log\n${d.log()}\n`);
    return m;
  }

  test('what a local user can and cannot do: ours answers as the real daemon', async () => {
    const real = await clientMatrix('real');
    const ours = await clientMatrix('ours');
    assert.deepEqual(ours, real);
    assert.deepEqual(real, {
      outsiderConnect: 'OSERR 13',
      outsiderRegister: 'ERR 13',
      memberConnect: 'OK',
      memberAddLockspace: 'OK',
      memberOwnLease: 'OK | OK R2 | OK',
      outsiderInquireForRoot: 'ERR 13',
      outsiderAcquireForRoot: 'ERR 13',
      outsiderReleaseForRoot: 'ERR 13',
      leasesUntouchedByOutsider: true,
      inquireForRoot: 'OK R1',
      acquireForRoot: 'OK',
      inquireAfterAcquire: 'OK R1,R2',
      releaseRootsOwnLease: 'OK',
      inquireAfterRelease: 'OK R2',
      acquireForUnregistered: 'ERR 3',
      memberRemLockspace: 'OK',
      holderEnd: 'SIGKILL',
      memberShutdown: 'shutdown done 0',
      daemonExited: true,
    });
  });
});

describe('root helper pieces', () => {
  test('procStartTime reads field 22 of /proc/<pid>/stat, undefined for a missing pid', () => {
    const t = procStartTime(process.pid);
    assert.ok(t !== undefined && /^\d+$/.test(t), `start time ${t}`);
    const own = readFileSync('/proc/self/stat', 'latin1');
    assert.equal(procStartTime(process.pid), own.slice(own.lastIndexOf(')') + 2).split(' ')[19]);
    assert.equal(procStartTime(2 ** 22 + 7), undefined);
  });

  test('parseHelperMsg accepts the two messages and refuses anything else', () => {
    assert.deepEqual(parseHelperMsg('{"t":"kill","pid":12,"sig":9,"start":"55"}'), { t: 'kill', pid: 12, sig: 9, start: '55' });
    assert.deepEqual(parseHelperMsg('{"t":"run","path":"/bin/true","args":["a b"]}'), { t: 'run', path: '/bin/true', args: ['a b'] });
    assert.throws(() => parseHelperMsg('{"t":"kill","pid":0,"sig":9}'));
    assert.throws(() => parseHelperMsg('{"t":"kill","pid":-1,"sig":9}'));
    assert.throws(() => parseHelperMsg('{"t":"kill","pid":5,"sig":99}'));
    assert.throws(() => parseHelperMsg('{"t":"run","path":"","args":[]}'));
    assert.throws(() => parseHelperMsg('{"t":"exec"}'));
    assert.throws(() => parseHelperMsg('not json'));
  });
});

/**
 * SANLK_RESTRICT_ALL is a client's promise about its own connection, not a permission: sanlock
 * ignores every later message on that connection, yet another connection may still acquire
 * for the restricted pid. Ours must do both the same way. Needs only the real daemon (no root).
 */
describe('socket users without a permission model: ours vs the real sanlock', { skip: !haveRealSanlock() ? 'needs /usr/sbin/sanlock' : false }, () => {
  let dir = '';
  before(() => {
    dir = scratchDir('restrict');
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function connectTo(runDir: string): Promise<Socket> {
    return new Promise((res, rej) => {
      const s = connect(join(runDir, 'sanlock.sock'));
      s.once('connect', () => res(s));
      s.once('error', rej);
    });
  }

  async function run(kind: Kind): Promise<Record<string, unknown>> {
    const ids = join(dir, `${kind}-ids`);
    const leases = join(dir, `${kind}-leases`);
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', '1M', leases]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R1:${leases}:0`]);
    const runDir = join(dir, `run-${kind}`);
    const d = kind === 'real' ? await startRealDaemon(runDir) : await startOurDaemon(runDir);
    const m: Record<string, unknown> = {};
    const socks: Socket[] = [];
    try {
      assert.equal(d.cli(['client', 'add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1']).status, 0);
      const payload = Buffer.concat([encodeResource(makeResource('LS', 'R1', [{ path: leases, offset: 0, pad1: 0, pad2: 0 }])), encodeOptions(emptyOptions())]);
      // On the restricted connection every byte is read as a header, and sanlock reads headers
      // with MSG_WAITALL in its main loop, so a partial one would stall the real daemon: pad
      // that message with zeros to whole headers (each dropped as a bad magic).
      const pad = Buffer.alloc((32 - ((32 + payload.length) % 32)) % 32);
      const acquire = (data2: number, padded: boolean): Buffer =>
        Buffer.concat([header(Cmd.ACQUIRE, { data: 1, data2, length: 32 + payload.length }), payload, ...(padded ? [pad] : [])]);
      const a = await connectTo(runDir);
      socks.push(a);
      // REGISTER has no reply
      a.write(header(Cmd.REGISTER));
      a.write(header(Cmd.RESTRICT, { cmdFlags: RestrictFlag.ALL }));
      const rr = await readBytes(a, 32);
      m.restrict = { result: rr.readInt32LE(24), cmdFlags: rr.readUInt32LE(12) };
      const leasesBefore = readFileSync(leases);
      a.write(acquire(-1, true));
      m.ownAcquireAnswerBytes = (await readBytes(a, 32, 1500)).length;
      m.ownAcquireConnectionOpen = !a.destroyed && a.readyState === 'open';
      m.ownAcquireWroteLease = !readFileSync(leases).equals(leasesBefore);
      m.heldAfterOwnAcquire = /^r LS:R1:/m.test(d.cli(['client', 'status']).stdout);
      // another connection acts for the restricted pid (this process)
      const b = await connectTo(runDir);
      socks.push(b);
      b.write(acquire(process.pid, false));
      m.acquireForRestrictedPid = (await readBytes(b, 32, 10_000)).readInt32LE(24);
      m.heldAfterAcquireFor = /^r LS:R1:[^\n]* p \d+/m.test(d.cli(['client', 'status']).stdout);
    } finally {
      for (const s of socks) s.destroy();
      await d.stop();
    }
    return m;
  }

  test('a restricted connection is ignored; acting for its pid from another connection is not prevented', async () => {
    const real = await run('real');
    const ours = await run('ours');
    assert.deepEqual(ours, real);
    assert.deepEqual(real, {
      restrict: { result: 0, cmdFlags: RestrictFlag.ALL },
      ownAcquireAnswerBytes: 0,
      ownAcquireConnectionOpen: true,
      ownAcquireWroteLease: false,
      heldAfterOwnAcquire: false,
      acquireForRestrictedPid: 0,
      heldAfterAcquireFor: true,
    });
  });

  test('a socket user who sends a partial header and waits stalls the real daemon, not ours', async () => {
    const res: Record<string, boolean> = {};
    for (const kind of ['real', 'ours'] as Kind[]) {
      const runDir = join(dir, `run-partial-${kind}`);
      const d = kind === 'real' ? await startRealDaemon(runDir) : await startOurDaemon(runDir);
      const s = await connectTo(runDir);
      try {
        s.write(header(Cmd.VERSION).subarray(0, 10));
        await new Promise((r) => setTimeout(r, 300));
        const st = spawnSync(SANLOCK_BIN, ['client', 'status'], { env: d.env, encoding: 'utf8', timeout: 3000 });
        res[kind] = st.status === 0 && /^daemon /m.test(st.stdout);
      } finally {
        s.destroy();
        await d.stop();
      }
    }
    // sanlock 3.8.5 reads each header with MSG_WAITALL on its main thread
    assert.deepEqual(res, { real: false, ours: true });
  });
});
