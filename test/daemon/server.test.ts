// Steps 2–3: our daemon's start-up, socket, framing, class-A commands, registration and death,
// driven by the real sanlock CLI, python3-sanlock and raw sockets.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applyConfigText, defaultConfig, parseDaemonArgs, ArgError } from '../../src/daemon/config.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { header, type OurDaemon, pyAvailable, readBytes, startOurDaemon, waitFor } from './our-daemon.js';

const skip = !pyAvailable();

test('daemon options and sanlock.conf keys', () => {
  const cfg = defaultConfig();
  assert.equal(cfg.killGraceSeconds, 40);
  assert.equal(cfg.highPriority, 0);
  assert.equal(cfg.debugCmds, 0xfffffffffe06ffffn);
  applyConfigText(cfg, '# c\nquiet_fail = 0\nmax_worker_threads=1\nrenewal_history_size\t= 7 x\ndebug_cmd = +inq_lockspace\nbogus=1\n');
  assert.equal(cfg.quietFail, 0);
  assert.equal(cfg.maxWorkerThreads, 2);
  assert.equal(cfg.renewalHistorySize, 7);
  assert.equal(cfg.debugCmds & (1n << 16n), 1n << 16n);
  parseDaemonArgs(cfg, ['-D', '-w', '0', '-g', '99', '-e', 'hostX', '-t', '5', '-H', 'abc']);
  assert.equal(cfg.foreground, true);
  assert.equal(cfg.useWatchdog, 0);
  assert.equal(cfg.killGraceSeconds, 40); // 99 is out of range and ignored
  assert.equal(cfg.ourHostName, 'hostX');
  assert.equal(cfg.maxWorkerThreads, 5);
  assert.equal(cfg.renewalHistorySize, 0); // atoi("abc")
  assert.throws(() => parseDaemonArgs(defaultConfig(), ['-w']), (e: Error) => e instanceof ArgError && e.message === "option 'w' requires arg");
  assert.throws(() => parseDaemonArgs(defaultConfig(), ['-X', '1']), /unknown option: X/);
  assert.throws(() => parseDaemonArgs(defaultConfig(), ['-Dx']), /unknown option -Dx\nspace required before option value/);
});

describe('our daemon: socket, framing, class A', { skip }, () => {
  let d: OurDaemon;
  before(async () => {
    d = await startOurDaemon(join(scratchDir('daemon-srv'), 'run'), ['-e', 'hostT']);
  });
  after(async () => {
    await d.stop();
  });

  test('run dir files and socket mode', async () => {
    // stderr is written off the event loop: wait for the start-up lines
    await waitFor(() => d.stderr().includes('sanlock daemon started'), 5000, 'start-up log');
    const st = statSync(d.sockPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(readFileSync(join(d.runDir, 'sanlock.pid'), 'utf8'), `${d.proc.pid}\n`);
    assert.match(d.stderr(), /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+ \[\d+\]: Using non-standard run directory '.*'\n/);
    assert.match(d.stderr(), /Running in unprivileged mode/);
    assert.match(d.stderr(), /sanlock daemon started 3\.8\.5 host hostT \(/);
  });

  test('client version', () => {
    const r = d.cli(['client', 'version']);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, 'client version 3.8.5 (0x03080500)\ndaemon version 3.8.5 (0x03080500)\nclient socket protocol 0.1\ndaemon socket protocol 0.1\n');
  });

  test('client status shows daemon and internal slots', () => {
    const r = d.cli(['client', 'status']);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, 'daemon hostT\np -1 helper\np -1 listener\np -1 status\n');
    const full = d.cli(['client', 'status', '-D']).stdout;
    assert.match(full, /\n {4}use_watchdog=0\n {4}high_priority=0\n {4}mlock_level=0\n/);
    assert.match(full, /\n {4}version_hex=03080500\n {4}smproto_hex=00000001\n/);
  });

  test('second daemon on the same run dir exits 1', async () => {
    const p = spawn(process.execPath, [resolve('bin/sanlock-ts'), 'daemon', '-D', '-w', '0', '-l', '0', '-U', 'root', '-G', 'root'], {
      env: d.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (x) => {
      err += x;
    });
    const code = await new Promise((r) => p.on('exit', r));
    assert.equal(code, 1);
    assert.match(err, /lockfile setlk error .*sanlock\.pid: Resource temporarily unavailable/);
  });

  test('python register: the pid appears in status and disappears when the process exits', async () => {
    const r = d.py('fd = sanlock.register()\nprint(os.getpid(), flush=True)\n' +
      'import subprocess\nout = subprocess.run(["/usr/sbin/sanlock","client","status"],capture_output=True,text=True).stdout\nprint(out, end="")');
    assert.equal(r.status, 0, r.stderr);
    const [pidLine, ...rest] = r.stdout.split('\n');
    const pid = Number(pidLine);
    assert.ok(pid > 0);
    // owner_name is the pid as text until an acquire copies the (empty) name from python
    assert.ok(rest.join('\n').includes(`p ${pid} ${pid}\n`), rest.join('\n'));
    await waitFor(() => !d.cli(['client', 'status']).stdout.includes(`p ${pid} `), 5000, 'client slot freed');
  });

  test('log_dump returns the debug log', () => {
    const r = d.cli(['client', 'log_dump']);
    assert.equal(r.status, 1); // result = byte count
    assert.match(r.stdout, /sanlock daemon started 3\.8\.5 host hostT/);
    assert.match(r.stdout, /cmd_status/);
  });

  test('wrong magic, unknown command and higher major version are dropped; the connection stays usable', async () => {
    const s = await d.rawConnect();
    s.write(header(28, { magic: 0x11111111 }));
    s.write(header(99));
    s.write(header(5, { version: 0x00020000 }));
    s.write(header(28, { seq: 77 }));
    const r = await readBytes(s, 32);
    assert.equal(r.length, 32);
    assert.equal(r.readUInt32LE(8), 28);
    assert.equal(r.readUInt32LE(20), 0); // VERSION replies seq 0
    assert.equal(r.readInt32LE(28), 0x03080500);
    // nothing else was answered
    const more = await readBytes(s, 1, 200);
    assert.equal(more.length, 0);
    s.destroy();
  });

  test('register gets no reply; restrict echoes flags; restrict ALL makes the socket deaf', async () => {
    const s = await d.rawConnect();
    s.write(header(1));
    assert.equal((await readBytes(s, 32, 300)).length, 0);
    s.write(header(10, { cmdFlags: 0x1, data2: -1, seq: 5 }));
    const r = await readBytes(s, 32);
    assert.equal(r.readUInt32LE(8), 10);
    assert.equal(r.readUInt32LE(12), 1);
    assert.equal(r.readUInt32LE(20), 5);
    assert.equal(r.readInt32LE(24), 0);
    s.write(header(28));
    assert.equal((await readBytes(s, 32, 300)).length, 0);
    s.destroy();
  });

  test('class C pre-checks: unregistered connection -EBUSY, unknown pid -ESRCH', async () => {
    const s = await d.rawConnect();
    s.write(header(9, { data2: -1 }));
    assert.equal((await readBytes(s, 32)).readInt32LE(24), -16);
    s.write(header(9, { data2: 0x3ffffff }));
    assert.equal((await readBytes(s, 32)).readInt32LE(24), -3);
    // acquire with count 9: -E2BIG, payload drained, connection still answers
    const payload = Buffer.alloc(9 * (128 + 1040) + 56);
    s.write(Buffer.concat([header(7, { data: 9, data2: -1, length: 32 + payload.length }), payload]));
    assert.equal((await readBytes(s, 32)).readInt32LE(24), -16);
    s.write(header(28));
    assert.equal((await readBytes(s, 32)).readUInt32LE(8), 28);
    s.destroy();
  });

  test('bad input: truncated header, silent client, garbage, a megabyte of zeros; another client still served', async () => {
    const silent = await d.rawConnect();
    const trunc = await d.rawConnect();
    trunc.end(Buffer.from([0x10, 0x20, 0x28]));
    const zeros = await d.rawConnect();
    zeros.write(Buffer.alloc(1024 * 1024));
    const garbage = await d.rawConnect();
    const g = Buffer.alloc(4096);
    for (let i = 0; i < g.length; i++) g[i] = (i * 7919) & 0xff;
    garbage.write(g);
    // class B commands whose payload never arrives (more of them than worker threads): must not block others
    const partials = [];
    for (let i = 0; i < 12; i++) {
      const p = await d.rawConnect();
      p.write(header(20, { length: 32 + 1104 }));
      p.write(Buffer.alloc(100));
      partials.push(p);
    }
    const partial = partials[0]!;
    zeros.write(header(28));
    const rz = await readBytes(zeros, 32, 10_000);
    assert.equal(rz.readUInt32LE(8), 28, 'version answered after a megabyte of zeros');
    const st = d.cli(['client', 'status']);
    assert.equal(st.status, 0);
    assert.match(st.stdout, /^daemon hostT\n/);
    // a class B command still runs on a worker
    const rl = await d.rawConnect();
    rl.write(Buffer.concat([header(16, { length: 32 + 1104 }), Buffer.alloc(1104)]));
    assert.equal((await readBytes(rl, 32)).readInt32LE(24), -2);
    for (const s of [silent, trunc, zeros, garbage, partial, rl, ...partials]) s.destroy();
  });
});

describe('our daemon: shutdown', { skip }, () => {
  test('shutdown -w 1 exits the daemon with status 0 and a cmd-0 reply', async () => {
    const d = await startOurDaemon(join(scratchDir('daemon-shut'), 'run'));
    try {
      const exited = new Promise<number | null>((r) => d.proc.once('exit', (c) => r(c)));
      const r = d.cli(['client', 'shutdown', '-w', '1']);
      assert.equal(r.stdout, 'shutdown force 0 wait 1\nshutdown done 0\n');
      assert.equal(await exited, 0);
      // like sanlock, the socket and pid files stay; a client now gets ECONNREFUSED
      assert.ok(statSync(d.sockPath).isSocket());
      assert.ok(statSync(join(d.runDir, 'sanlock.pid')).isFile());
      assert.equal(d.cli(['client', 'gets']).stdout, 'gets error -111\n');
    } finally {
      await d.stop();
    }
  });

  test('SIGTERM without lockspaces exits', async () => {
    const d = await startOurDaemon(join(scratchDir('daemon-shut'), 'run'));
    try {
      const exited = new Promise<number | null>((r) => d.proc.once('exit', (c) => r(c)));
      process.kill(d.proc.pid!, 'SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      await d.stop();
    }
  });
});

describe('our daemon: watchdog', { skip }, () => {
  test('with use_watchdog=1 and no wdmd reachable, add_lockspace fails -203 instead of joining unprotected', async () => {
    const dir = scratchDir('daemon-wd');
    const ids = join(dir, 'ids');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('/usr/sbin/sanlock', ['direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
    const d = await startOurDaemon(join(dir, 'run'), ['-w', '1'], { SANLOCK_TS_WDMD_SOCK: join(dir, 'no-wdmd.sock') });
    try {
      assert.match(d.cli(['client', 'status', '-D']).stdout, /\n {4}use_watchdog=1\n/);
      assert.equal(d.cli(['client', 'add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1']).stdout, 'add_lockspace_timeout 1\nadd_lockspace_timeout done -203\n');
      assert.equal(d.cli(['client', 'gets']).stdout, '');
    } finally {
      await d.stop();
    }
  });
});

describe('our daemon: privileged start-up', { skip: skip || process.getuid?.() !== 0 }, () => {
  test('drops to -U/-G after setup; socket owned by them with mode 0660', async () => {
    const dir = scratchDir('daemon-priv');
    chmodSync(dir, 0o755);
    const d = await startOurDaemon(join(dir, 'run'), ['-U', 'nobody', '-G', 'nogroup'], { SANLOCK_PRIVILEGED: '1' });
    try {
      const st = statSync(d.sockPath);
      assert.equal(st.uid, 65534);
      assert.equal(st.gid, 65534);
      assert.equal(st.mode & 0o777, 0o660);
      const status = readFileSync(`/proc/${d.proc.pid}/status`, 'utf8');
      assert.match(status, /\nUid:\s+65534\s+65534\s+65534\s+65534\n/);
      assert.match(status, /\nGid:\s+65534\s+65534\s+65534\s+65534\n/);
      assert.doesNotMatch(d.stderr(), /Running in unprivileged mode/);
      assert.match(d.cli(['client', 'status', '-D']).stdout, /\n {4}gid=65534\n {4}uid=65534\n/);
    } finally {
      await d.stop();
    }
  });
});

describe('our daemon: large replies', { skip }, () => {
  test('log_dump of a full 1 MiB ring arrives complete', async () => {
    const d = await startOurDaemon(join(scratchDir('daemon-big'), 'run'));
    try {
      // every dropped 32-byte message logs a line: 3 MB of log through a 1 MiB ring
      const s = await d.rawConnect();
      s.write(Buffer.alloc(3 * 1024 * 1024));
      s.write(header(28));
      assert.equal((await readBytes(s, 32, 20_000)).readUInt32LE(8), 28);
      s.destroy();
      const l = await d.rawConnect();
      l.write(header(6));
      const h = await readBytes(l, 32);
      const n = h.readInt32LE(24);
      assert.ok(n > 1000 * 1024 && n <= 1024 * 1024, `log_dump size ${n}`);
      const body = await readBytes(l, n + 1, 5000);
      assert.equal(body.length, n);
      assert.match(body.toString('latin1', n - 300), /magic 0 vs 4282010\n[^\n]* cmd_log_dump [^\n]*$/);
      l.destroy();
    } finally {
      await d.stop();
    }
  });
});
