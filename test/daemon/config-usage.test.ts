// Help text and man page name every option sanlock-ts adds, while `help` keeps sanlock's usage
// byte for byte on stdout (the extensions go to stderr).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { takeExtraOptions } from '../../src/cli/client.js';
import { CLUSTER_USAGE } from '../../src/cli/cluster.js';
import { EXTENSIONS_USAGE_TEXT, printUsage, USAGE_TEXT } from '../../src/cli/usage.js';
import { LONG_OPTIONS } from '../../src/daemon/config.js';
import { haveRealSanlock } from '../helpers/real-sanlock.js';

const CLIENT_FLAGS = ['--wait', '--request', '--explain', '--progress', '--json', '--domain-xml'];
const CLUSTER_FLAGS = ['--json', '--sample', '--watch', '--count', '--io-timeout'];
const DAEMON_FLAGS = Object.keys(LONG_OPTIONS).map((k) => `--${k}`);

test('`help`: sanlock\'s usage unchanged on stdout, the extensions on stderr', () => {
  const r = spawnSync(process.execPath, [resolve('bin/sanlock-ts'), 'help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, USAGE_TEXT);
  assert.equal(r.stderr, EXTENSIONS_USAGE_TEXT);
  if (haveRealSanlock()) assert.equal(r.stdout, execFileSync('/usr/sbin/sanlock', ['help'], { encoding: 'utf8' }));
  let out = '';
  printUsage((s) => {
    out += s;
  });
  assert.equal(out, USAGE_TEXT, 'a caller-supplied writer gets sanlock\'s text only');
});

test('the client flags the help text names are the ones the client accepts', () => {
  const r = takeExtraOptions(['acquire', '--wait', '5', '--request', 'force', '--explain', '--progress', '--json', '--domain-xml', 'd.xml', '-p', '1']);
  assert.ok('extra' in r);
  assert.deepEqual(r.rest, ['acquire', '-p', '1']);
  for (const f of [...CLIENT_FLAGS, ...CLUSTER_FLAGS, ...DAEMON_FLAGS]) {
    assert.ok(EXTENSIONS_USAGE_TEXT.includes(f), `help text lacks ${f}`);
  }
  for (const f of CLUSTER_FLAGS) assert.ok(CLUSTER_USAGE.includes(f), `cluster usage lacks ${f}`);
  assert.match(EXTENSIONS_USAGE_TEXT, /--request graceful\|force/);
});

test('the man page names every extension flag and sanlock.conf key', () => {
  const man = readFileSync(resolve('docs/sanlock-ts.8'), 'utf8').replace(/\\-/g, '-');
  for (const f of [...CLIENT_FLAGS, ...CLUSTER_FLAGS, ...DAEMON_FLAGS]) assert.ok(man.includes(f), `man page lacks ${f}`);
  for (const k of ['logfile_path', 'debug_log_path', 'debug_log_max_bytes', 'debug_log_files', 'renewal_history_size', 'syslog_priority', 'max_sectors_kb']) {
    assert.ok(man.includes(k), `man page lacks ${k}`);
  }
  assert.match(man, /\.SH SIGNALS[\s\S]*SIGHUP[\s\S]*Reopen the log file/);
});
