// The daemon log (issue 7): -L filtering into the log file, the default path rule, SIGHUP reopen
// for logrotate, the persistent debug log (rotation, kill -9, restart) and `client renewal` -H.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { DaemonLog, DebugLogFile, DEFAULT_LOGFILE, debugLogGenerations, resolveLogfilePath } from '../../src/daemon/log.js';
import { haveRealSanlock, scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';
import { PYTHON, pyAvailable, SANLOCK_BIN, startOurDaemon, waitFor } from './our-daemon.js';

const skipDaemon = !pyAvailable();

function flushed(path: string, pred: (s: string) => boolean): Promise<void> {
  return waitFor(() => existsSync(path) && pred(readFileSync(path, 'utf8')), 5000, `log content in ${path}`);
}

describe('log file priority (-L) and path', () => {
  test('only messages at or above logfile_priority reach the file; every one reaches the ring', async () => {
    const dir = scratchDir('log-prio');
    for (const [prio, want] of [
      [4, ['E-msg', 'W-msg']],
      [3, ['E-msg']],
      [7, ['E-msg', 'W-msg', 'I-msg', 'D-msg']],
    ] as const) {
      const path = join(dir, `p${prio}.log`);
      const log = new DaemonLog({ toStderr: false, logfilePriority: prio, logfileUseUtc: true, logfilePath: path });
      assert.equal(log.openFile(), undefined);
      log.error('E-msg');
      log.warn('W-msg');
      log.info('I-msg');
      log.debug('D-msg');
      await log.close();
      const text = readFileSync(path, 'utf8');
      const lines = text.trimEnd().split('\n');
      assert.deepEqual(lines.map((l) => l.split(': ')[1]), want, `-L ${prio}`);
      for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+ \[\d+\]: [EWID]-msg$/);
      assert.match(log.dump().toString(), /E-msg[\s\S]*W-msg[\s\S]*I-msg[\s\S]*D-msg$/);
    }
  });

  test('logfile_use_utc: UTC time stamps, else local time', async () => {
    const saved = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata'; // UTC+05:30 all year: local and UTC never share HH:MM
    try {
      const stamps: string[] = [];
      const before = new Date();
      for (const utc of [true, false]) {
        const log = new DaemonLog({ toStderr: false, logfilePriority: -1, logfileUseUtc: utc });
        log.warn('t');
        stamps.push(log.dump().toString().slice(11, 16));
        await log.close();
      }
      const after = new Date();
      const hhmm = (d: Date): string => `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
      const shift = (d: Date): Date => new Date(d.getTime() + 330 * 60_000);
      // either side of a minute boundary that may pass while logging
      assert.ok([hhmm(before), hhmm(after)].includes(stamps[0]!), `UTC stamp ${stamps[0]}`);
      assert.ok([hhmm(shift(before)), hhmm(shift(after))].includes(stamps[1]!), `local stamp ${stamps[1]}`);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  test('-L -1 writes no file at all', async () => {
    const path = join(scratchDir('log-none'), 'none.log');
    const log = new DaemonLog({ toStderr: false, logfilePriority: -1, logfileUseUtc: false, logfilePath: path });
    assert.equal(log.openFile(), undefined);
    log.error('nothing');
    await log.close();
    assert.equal(existsSync(path), false);
  });

  test('messages logged before the file opens are written when it opens', async () => {
    const path = join(scratchDir('log-early'), 'early.log');
    const log = new DaemonLog({ toStderr: false, logfilePriority: 4, logfileUseUtc: false, logfilePath: path });
    log.warn('before open');
    log.debug('before open, debug');
    assert.equal(log.openFile(), undefined);
    log.warn('after open');
    await log.close();
    const text = readFileSync(path, 'utf8');
    assert.match(text, /before open\n.*after open\n$/);
    assert.doesNotMatch(text, /debug/);
  });

  test('an unopenable log file is reported with its path', () => {
    const dir = scratchDir('log-bad');
    writeFileSync(join(dir, 'plain'), '');
    const path = join(dir, 'plain', 'sanlock.log');
    const log = new DaemonLog({ toStderr: false, logfilePriority: 4, logfileUseUtc: false, logfilePath: path });
    assert.match(log.openFile() ?? '', new RegExp(`cannot open log file ${path}: ENOTDIR`));
    log.close();
  });

  test('default path: /var/log/sanlock.log as root, <run dir>/sanlock.log otherwise, explicit wins', () => {
    assert.equal(resolveLogfilePath(undefined, '/run/x', 0), DEFAULT_LOGFILE);
    assert.equal(resolveLogfilePath(undefined, '/run/x', 1000), '/run/x/sanlock.log');
    assert.equal(resolveLogfilePath('', '/run/x', 1000), '/run/x/sanlock.log');
    assert.equal(resolveLogfilePath('/l/s.log', '/run/x', 0), '/l/s.log');
  });
});

describe('persistent debug log', () => {
  test('rotates before passing the bound, keeps N generations, newest lines in the current file', async () => {
    const dir = scratchDir('dbg-rot');
    const opts = { path: join(dir, 'debug.log'), maxBytes: 4096, files: 2 };
    const f = new DebugLogFile(opts);
    // 200 lines of 100 bytes = 20000 bytes: more than 3 files of 4096 hold
    for (let i = 0; i < 200; i++) f.push(`line ${String(i).padStart(4, '0')} ${'x'.repeat(89)}\n`);
    f.close();
    await f.closed;
    const gens = debugLogGenerations(opts);
    assert.deepEqual(gens, [opts.path, `${opts.path}.1`, `${opts.path}.2`]);
    assert.equal(existsSync(`${opts.path}.3`), false, 'only 2 rotated files are kept');
    for (const g of gens) assert.ok(statSync(g).size <= 4096, `${g} is ${statSync(g).size} bytes`);
    // oldest → newest, the kept lines are consecutive and end with the last one written
    const nums = [...gens]
      .reverse()
      .flatMap((g) => readFileSync(g, 'utf8').trimEnd().split('\n'))
      .map((l) => Number(l.slice(5, 9)));
    assert.equal(nums[nums.length - 1], 199);
    for (let i = 1; i < nums.length; i++) assert.equal(nums[i], nums[i - 1]! + 1);
    assert.ok(nums.length >= 100, `kept ${nums.length} lines`);
  });

  test('appends to an existing file (a restart keeps what was there)', async () => {
    const path = join(scratchDir('dbg-app'), 'debug.log');
    writeFileSync(path, 'old line\n');
    const f = new DebugLogFile({ path, maxBytes: 1 << 20, files: 1 });
    f.push('new line\n');
    f.close();
    await f.closed;
    assert.equal(readFileSync(path, 'utf8'), 'old line\nnew line\n');
  });

  test('files = 0 truncates instead of rotating', async () => {
    const path = join(scratchDir('dbg-zero'), 'debug.log');
    const f = new DebugLogFile({ path, maxBytes: 1024, files: 0 });
    for (let i = 0; i < 30; i++) f.push(`${String(i).padStart(3, '0')} ${'y'.repeat(95)}\n`);
    f.close();
    await f.closed;
    assert.equal(existsSync(`${path}.1`), false);
    const text = readFileSync(path, 'utf8');
    assert.ok(text.length <= 1024);
    assert.match(text, /^029 y+\n$/m);
  });
});

describe('our daemon: log file, SIGHUP, debug log, renewal history', { skip: skipDaemon }, () => {
  test('SIGHUP reopens the log file at its path (logrotate rename + create); the daemon keeps running', async () => {
    const dir = scratchDir('log-hup');
    const path = join(dir, 'sanlock.log');
    const d = await startOurDaemon(join(dir, 'run'), ['-L', '7', '--logfile-path', path]);
    try {
      await flushed(path, (s) => s.includes('sanlock daemon started'));
      renameSync(path, `${path}.1`); // what logrotate does before signalling
      assert.equal(existsSync(path), false);
      process.kill(d.proc.pid!, 'SIGHUP');
      await flushed(path, (s) => s.includes('log file reopened'));
      assert.equal(d.cli(['client', 'status']).status, 0, 'still serving after SIGHUP');
      await flushed(path, (s) => s.includes('cmd_status'));
      const old = readFileSync(`${path}.1`, 'utf8');
      assert.match(old, /sanlock daemon started/);
      assert.doesNotMatch(old, /log file reopened|cmd_status/);
      assert.equal(d.proc.exitCode, null);
      // copytruncate (sanlock's logrotate mode): the file is appended to, so after a truncate the
      // next lines start at offset 0 instead of after a hole of NUL bytes
      truncateSync(path, 0);
      assert.equal(d.cli(['client', 'status']).status, 0);
      await flushed(path, (s) => s.includes('cmd_status'));
      assert.match(readFileSync(path, 'latin1'), /^\d{4}-/);
    } finally {
      await d.stop();
    }
  });

  test('debug log: lines written before kill -9 are on disk, and a restart appends', async () => {
    const dir = scratchDir('log-kill');
    const path = join(dir, 'debug.log');
    const run = join(dir, 'run');
    const d = await startOurDaemon(run, ['--debug-log-path', path]);
    let dump: string;
    try {
      assert.equal(d.cli(['client', 'status']).status, 0);
      dump = d.cli(['client', 'log_dump']).stdout;
      assert.match(dump, /cmd_status/);
      // the ring is written asynchronously: give it the moment it needs, then kill without warning
      await flushed(path, (s) => s.includes('cmd_log_dump'));
    } finally {
      await d.stop(); // SIGKILL to the process group
    }
    const onDisk = readFileSync(path, 'utf8');
    for (const l of dump.trimEnd().split('\n')) assert.ok(onDisk.includes(l), `missing after kill -9: ${l}`);
    const d2 = await startOurDaemon(run, ['--debug-log-path', path]);
    try {
      await flushed(path, (s) => s.split('sanlock daemon started').length === 3);
      assert.ok(readFileSync(path, 'utf8').startsWith(onDisk), 'restart appends, keeps the old lines');
    } finally {
      await d2.stop();
    }
  });

  test('not root: the default log file is <run dir>/sanlock.log', { skip: process.getuid?.() !== 0 ? 'needs root to switch to nobody' : false }, async () => {
    const dir = scratchDir('log-nonroot');
    chmodSync(dir, 0o777);
    const run = join(dir, 'run');
    const proc = spawn(process.execPath, [resolve('bin/sanlock-ts'), 'daemon', '-D', '-w', '0', '-l', '0', '-L', '4', '-U', 'nobody', '-G', 'nogroup'], {
      env: { ...process.env, SANLOCK_RUN_DIR: run, SANLOCK_PRIVILEGED: '0', NOTIFY_SOCKET: '' },
      uid: 65534,
      gid: 65534,
      stdio: 'ignore',
      detached: true,
    });
    const exited = new Promise((r) => proc.once('exit', r));
    try {
      await flushed(join(run, 'sanlock.log'), (s) => s.includes('sanlock daemon started'));
      assert.equal(statSync(join(run, 'sanlock.log')).uid, 65534);
    } finally {
      process.kill(-proc.pid!, 'SIGKILL');
      await exited;
    }
  });

  test('-H sets the renewal history size of `client renewal`, -H 0 keeps none: output as the real sanlock', async () => {
    const dir = scratchDir('log-hist');
    const real = haveRealSanlock();
    for (const h of [2, 0]) {
      const ids = [join(dir, `ids-ours-${h}`), join(dir, `ids-real-${h}`)];
      for (const f of ids) {
        execFileSync('truncate', ['-s', '1M', f]);
        execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LS:0:${f}:0`, '-o', '1']);
      }
      const ours = await startOurDaemon(join(dir, `run-ours-${h}`), ['-H', String(h)]);
      const theirs = real ? await startRealDaemon(join(dir, `run-real-${h}`), ['-H', String(h)]) : undefined;
      try {
        const join1 = (env: NodeJS.ProcessEnv, f: string): void => {
          const r = spawnSync(PYTHON, ['-c', `import sanlock\nsanlock.add_lockspace(b"LS", 1, ${JSON.stringify(f)}, 0, iotimeout=1)`], { env, encoding: 'utf8', timeout: 30_000 });
          assert.equal(r.status, 0, r.stderr);
        };
        join1(ours.env, ids[0]!);
        if (theirs) join1(theirs.env, ids[1]!);
        // io_timeout 1: a renewal every 2 s; the join itself is the first entry
        await new Promise((r) => setTimeout(r, 4500));
        const outputs = [{ who: 'ours', ...ours.cli(['client', 'renewal', '-s', 'LS']) }];
        if (theirs && h === 0) {
          // sanlock 3.8.5 with -H 0 answers and closes before reading the request's lockspace
          // struct, so its own client is killed by SIGPIPE about one time in three on a quiet
          // machine and nearly always on a loaded one (ours reads the payload first: 0 of 40).
          // Either way it prints nothing, which is what ours must print.
          const r = spawnSync(SANLOCK_BIN, ['client', 'renewal', '-s', 'LS'], { env: theirs.env, encoding: 'utf8' });
          assert.ok(r.status === 0 || r.signal === 'SIGPIPE', `sanlock -H 0: client renewal exited ${r.status} ${r.signal}`);
          assert.equal(r.stdout, '');
        } else if (theirs) {
          outputs.push({ who: 'sanlock', ...theirs.cli(['client', 'renewal', '-s', 'LS']) });
        }
        for (const r of outputs) {
          assert.equal(r.status, 0, `${r.who} -H ${h}: client renewal exited ${r.status}: ${r.stdout}`);
          if (h === 0) assert.equal(r.stdout, '');
          else assert.match(r.stdout, /^(timestamp=\d+ read_ms=\d+ write_ms=\d+ next_timeouts=0 next_errors=0\n){2}$/);
        }
      } finally {
        await ours.stop();
        await theirs?.stop();
      }
    }
  });
});
