import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { lockFile, peerCred, ProcessHandle, socketFd, watchdogKeepalive, watchdogSetTimeout } from '../../src/daemon/native.js';
import { scratchDir } from '../helpers/real-sanlock.js';

test('SO_PEERCRED of a connected unix socket is the peer process', async () => {
  const dir = scratchDir('native');
  const path = join(dir, 's.sock');
  let serverSide: Socket | undefined;
  const server = createServer((s) => {
    serverSide = s;
  });
  await new Promise<void>((r) => server.listen(path, r));
  const client = connect(path);
  await new Promise<void>((r) => client.once('connect', () => r()));
  while (!serverSide) await new Promise((r) => setTimeout(r, 5));
  const cred = peerCred(socketFd(serverSide));
  assert.equal(cred.pid, process.pid);
  assert.equal(cred.uid, process.getuid!());
  assert.equal(cred.gid, process.getgid!());
  client.destroy();
  serverSide.destroy();
  server.close();
});

test('socketFd refuses a socket without a handle', () => {
  const s = connect('/nonexistent/x.sock');
  s.on('error', () => {});
  s.destroy();
  assert.throws(() => socketFd(s), /file descriptor/);
});

test('ProcessHandle signals the process it opened and reports ESRCH after it is reaped', async () => {
  const child = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
  const h = ProcessHandle.open(child.pid!);
  assert.ok(h instanceof ProcessHandle);
  assert.equal(h.signal(15), 0);
  assert.equal(await exited, 'SIGTERM');
  // the child is reaped by Node: the pidfd now refers to a gone process
  assert.equal(h.signal(15), -3);
  h.close();
  // a pid that does not exist
  const gone = ProcessHandle.open(0x3ffffff);
  assert.equal(gone, -3);
});

test('F_SETLK write lock conflicts with another process', async () => {
  const dir = scratchDir('native');
  const path = join(dir, 'lock.pid');
  const fd = openSync(path, 'a+');
  assert.equal(lockFile(fd), 0);
  // fcntl locks are per process: a child must fail to take it
  const code = `
    const { createRequire } = require('node:module');
    const fs = require('node:fs');
    const addon = require(${JSON.stringify(join(process.cwd(), 'native/build/Release/sanlock_native.node'))});
    const fd = fs.openSync(${JSON.stringify(path)}, 'a+');
    process.stdout.write(String(addon.lockFile(fd)));`;
  const out = await new Promise<string>((r) => {
    const p = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.on('data', (d) => {
      s += d;
    });
    p.on('exit', () => r(s));
  });
  assert.ok(out === '-11' || out === '-13', `child lock result ${out}`);
  closeSync(fd);
});

test('watchdog ioctls on a non-watchdog fd fail with -ENOTTY', () => {
  const fd = openSync('/dev/null', 'r');
  assert.equal(watchdogKeepalive(fd), -25);
  assert.equal(watchdogSetTimeout(fd, 60), -25);
  closeSync(fd);
});
