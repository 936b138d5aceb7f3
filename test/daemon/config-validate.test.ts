// sanlock.conf at daemon start-up (issue 7): sanlock's keys and defaults, strict validation
// (unknown key, bad value, unwritable log path = a clear error naming the key or path, exit 1,
// nothing created), and sanlock-ts's own keys / long options.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import {
  applyConfigText,
  ArgError,
  ConfigError,
  CONFIG_KEYS,
  configPathFromArgs,
  defaultConfig,
  loadDaemonConfig,
  parseDaemonArgs,
  validateConfigText,
} from '../../src/daemon/config.js';
import { scratchDir } from '../helpers/real-sanlock.js';

const OUR_BIN = resolve('bin/sanlock-ts');

/** Every sanlock 3.8.5 key with a valid non-default value (daemon.md §2.1). */
const FULL_SANLOCK_CONF = `# sanlock.conf as an operator of sanlock 3.8.5 writes it
quiet_fail = 0
debug_renew = 1
use_aio = 0
logfile_priority = 7
logfile_use_utc = 1
syslog_priority = -1
names_log_priority = 3
use_watchdog = 0
high_priority = 1
mlock_level = 2
sh_retries = 3
uname = nobody
gname = nogroup
our_host_name = host-a
renewal_read_extend_sec = 0
write_init_io_timeout = 30
renewal_history_size = 10
paxos_debug_all = 1
debug_io = submit,complete
debug_clients = 1
debug_cmd = -all
debug_cmd = +acquire
max_sectors_kb = align
max_worker_threads=4

`;

describe('sanlock.conf validation', () => {
  test('a file using every sanlock 3.8.5 key is valid and read as sanlock reads it', () => {
    assert.deepEqual(validateConfigText(FULL_SANLOCK_CONF, '/x.conf'), []);
    const cfg = defaultConfig();
    applyConfigText(cfg, FULL_SANLOCK_CONF);
    assert.equal(cfg.quietFail, 0);
    assert.equal(cfg.logfilePriority, 7);
    assert.equal(cfg.syslogPriority, -1);
    assert.equal(cfg.useWatchdog, 0);
    assert.equal(cfg.mlockLevel, 2);
    assert.equal(cfg.uname, 'nobody');
    assert.equal(cfg.ourHostName, 'host-a');
    assert.equal(cfg.renewalReadExtendSec, 0);
    assert.equal(cfg.renewalHistorySize, 10);
    assert.equal(cfg.maxWorkerThreads, 4);
    assert.equal(cfg.maxSectorsKbAlign, 1);
    assert.equal(cfg.debugCmds, 1n << 7n); // -all then +acquire (cmd 7)
  });

  test('defaults are sanlock 3.8.5\'s', () => {
    const c = defaultConfig();
    assert.deepEqual(
      [c.quietFail, c.debugRenew, c.useAio, c.logfilePriority, c.logfileUseUtc, c.syslogPriority, c.useWatchdog, c.highPriority, c.mlockLevel, c.shRetries, c.writeInitIoTimeout, c.renewalHistorySize, c.maxWorkerThreads, c.maxSectorsKbNum],
      [1, 0, 1, 4, 0, 3, 1, 0, 1, 8, 60, 180, 8, 1024],
    );
    assert.equal(c.logfilePath, undefined);
    assert.equal(c.debugLogPath, undefined);
  });

  test('unknown key, bad value, indentation and trailing text name the file, line and key', () => {
    const errs = validateConfigText(
      ['quiet_fail = 0', 'use_watchdgo = 0', 'use_watchdog = yes', '  mlock_level = 0', 'logfile_priority = 9', 'renewal_history_size = 7 x', 'debug_cmd = +nosuchcmd', 'max_sectors_kb = 3', 'sh_retries', 'logfile_path = relative.log', '# comment', 'debug_io = submit # ok comment'].join('\n'),
      '/etc/s.conf',
    );
    assert.deepEqual(errs, [
      "/etc/s.conf line 2: unknown key 'use_watchdgo'",
      "/etc/s.conf line 3: bad value 'yes' for key 'use_watchdog': expected an integer from 0 to 1",
      '/etc/s.conf line 4: line starts with white space: sanlock ignores such lines, remove the indentation',
      "/etc/s.conf line 5: bad value '9' for key 'logfile_priority': expected an integer from -1 to 7",
      "/etc/s.conf line 6: key 'renewal_history_size': unexpected text after the value: 'x'",
      "/etc/s.conf line 7: bad value '+nosuchcmd' for key 'debug_cmd': expected +all, -all, or + or - followed by a command name (e.g. +acquire)",
      "/etc/s.conf line 8: bad value '3' for key 'max_sectors_kb': expected ignore, align or an even number from 2 to 8192",
      '/etc/s.conf line 9: key \'sh_retries\' needs "sh_retries = <value>"',
      "/etc/s.conf line 10: bad value 'relative.log' for key 'logfile_path': expected an absolute path",
    ]);
  });

  test('keys sanlock added after 3.8.5 are unknown here (3.8.5 ignored them too, silently)', () => {
    for (const k of ['io_timeout', 'watchdog_fire_timeout', 'kill_grace_seconds']) {
      assert.equal(CONFIG_KEYS[k], undefined);
      assert.match(validateConfigText(`${k} = 10\n`)[0]!, new RegExp(`unknown key '${k}'`));
    }
  });

  test('loadDaemonConfig throws ConfigError listing every problem; --config picks the file', () => {
    const dir = scratchDir('cfg-load');
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, 'bogus = 1\nsyslog_priority = high\n');
    assert.throws(
      () => loadDaemonConfig(['-D', '--config', bad]),
      (e: Error) => e instanceof ConfigError && e.message === `${bad} line 1: unknown key 'bogus'\n${bad} line 2: bad value 'high' for key 'syslog_priority': expected an integer from -1 to 7`,
    );
    const good = join(dir, 'good.conf');
    writeFileSync(good, 'logfile_priority = 6\ndebug_log_path = /var/tmp/d.log\ndebug_log_files = 5\n');
    assert.equal(configPathFromArgs(['--config=' + good]), good);
    const cfg = loadDaemonConfig(['-D', `--config=${good}`, '-L', '3']);
    assert.equal(cfg.logfilePriority, 3, 'argv wins over the file');
    assert.equal(cfg.debugLogPath, '/var/tmp/d.log');
    assert.equal(cfg.debugLogFiles, 5);
    assert.throws(() => loadDaemonConfig(['--config', join(dir, 'missing.conf')]), /missing\.conf \(--config\) does not exist/);
    // the non-strict reading (sanlock's) still ignores what strict rejects
    assert.equal(loadDaemonConfig([], bad, false).syslogPriority, 0);
  });

  test('long options: both spellings, values checked like the keys, unknown ones rejected', () => {
    const cfg = defaultConfig();
    parseDaemonArgs(cfg, ['--logfile-path', '/l/s.log', '--debug-log-path=/l/d.log', '--debug-log-max-bytes', '65536', '--debug-log-files=0', '-D']);
    assert.equal(cfg.logfilePath, '/l/s.log');
    assert.equal(cfg.debugLogPath, '/l/d.log');
    assert.equal(cfg.debugLogMaxBytes, 65536);
    assert.equal(cfg.debugLogFiles, 0);
    assert.equal(cfg.foreground, true);
    assert.throws(() => parseDaemonArgs(defaultConfig(), ['--debug-log-max-bytes', '10']), (e: Error) => e instanceof ArgError && /for option --debug-log-max-bytes: expected an integer >= 4096/.test(e.message));
    assert.throws(() => parseDaemonArgs(defaultConfig(), ['--logfile-path']), /option '--logfile-path' requires arg/);
    assert.throws(() => parseDaemonArgs(defaultConfig(), ['--nope', '1']), /unknown option: --nope/);
  });
});

function runDaemon(args: string[], runDir: string): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [OUR_BIN, 'daemon', ...args], {
    env: { ...process.env, SANLOCK_RUN_DIR: runDir, SANLOCK_PRIVILEGED: '0', NOTIFY_SOCKET: '' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

function assertNothingCreated(runDir: string): void {
  const left = existsSync(runDir) ? readdirSync(runDir) : [];
  assert.ok(!left.includes('sanlock.sock') && !left.includes('sanlock.pid'), `left in run dir: ${left.join(' ')}`);
}

describe('daemon start-up refuses bad configuration', () => {
  const common = ['-w', '0', '-l', '0', '-U', 'root', '-G', 'root'];

  test('bad sanlock.conf: exit 1, the key named, no socket or pid file (with -D and detaching)', () => {
    const dir = scratchDir('cfg-start');
    const conf = join(dir, 'sanlock.conf');
    writeFileSync(conf, 'use_watchdog = yes\n');
    for (const fg of [['-D'], []]) {
      const run = join(dir, `run${fg.length}`);
      const r = runDaemon([...fg, ...common, '--config', conf], run);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /configuration error, not started:\n.*sanlock\.conf line 1: bad value 'yes' for key 'use_watchdog'/);
      assertNothingCreated(run);
    }
  });

  test('unwritable log path or debug log path: exit 1 naming the path, nothing created', () => {
    const dir = scratchDir('cfg-path');
    writeFileSync(join(dir, 'file'), '');
    const badLog = join(dir, 'file', 'sanlock.log'); // a path under a regular file: ENOTDIR, even for root
    for (const [opt, what] of [
      [['-L', '4', '--logfile-path', badLog], 'log file'],
      [['-L', '-1', '--debug-log-path', badLog], 'debug log \\(debug_log_path\\)'],
    ] as const) {
      for (const fg of [['-D'], []]) {
        const run = join(dir, `run-${what.length}-${fg.length}`);
        const r = runDaemon([...fg, ...common, ...opt], run);
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`not started:\\ncannot open ${what} ${badLog}: ENOTDIR`));
        assertNothingCreated(run);
      }
    }
  });

  test('bad long option value: exit 1 before anything is created', () => {
    const run = join(scratchDir('cfg-opt'), 'run');
    mkdirSync(run);
    const r = runDaemon(['-D', ...common, '--debug-log-files', 'many'], run);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /bad value 'many' for option --debug-log-files: expected an integer from 0 to 100/);
    assertNothingCreated(run);
  });
});
