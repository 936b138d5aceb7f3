import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SanlockError } from '../../src/codes.js';
import { monotonicSecondsExact } from '../../src/daemon/watchdog/common.js';
import { type DeviceOps, DeviceWatchdog } from '../../src/daemon/watchdog/device.js';
import { fakeDevice, haveGcc, waitUntil } from '../helpers/fake-watchdog/index.js';

/** Records device operations; time is driven by the test. */
function recordingOps(acceptTimeout = true): DeviceOps & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    open(path) {
      log.push(`open ${path}`);
      return 42;
    },
    setTimeout(fd, s) {
      assert.equal(fd, 42);
      log.push(`settimeout ${s}`);
      return acceptTimeout ? s : 30;
    },
    keepalive(fd) {
      assert.equal(fd, 42);
      log.push('keepalive');
      return 0;
    },
    magicClose() {
      log.push('magic close');
    },
    uncleanClose() {
      log.push('unclean close');
    },
  };
}

let pathSeq = 0;
const uniquePath = (): string => `/nonexistent/fake-wd-${process.pid}-${pathSeq++}`;

test('device mode: keepalive only while every expiry is more than an interval away', async () => {
  let now = 1000.2;
  const ops = recordingOps();
  const devicePath = uniquePath();
  // A huge interval: the test calls hub.test() itself. Margin = interval = 10 s as in wdmd.
  const mk = () => new DeviceWatchdog({ devicePath, keepaliveIntervalMs: 10_000, now: () => now }, ops);
  const a = mk();
  const b = mk();
  assert.equal(a.hub, b.hub, 'one hub per device path');
  await a.arm({ spaceName: 'A', hostId: 1, ioTimeout: 10, renewalTs: 1000 });
  assert.deepEqual(ops.log, [`open ${devicePath}`, 'settimeout 60']);
  await b.arm({ spaceName: 'B', hostId: 2, ioTimeout: 2, renewalTs: 1000 });
  assert.equal(a.expireTs, 1080);
  assert.equal(b.expireTs, 1016);
  assert.equal(a.hub.test(), true);
  now = 1005.9; // 1005.9 + 10 < 1016
  assert.equal(a.hub.test(), true);
  now = 1006.0; // B's expiry is within one interval: no more keepalives for anyone
  assert.equal(a.hub.test(), false);
  now = 1016;
  assert.equal(a.hub.test(), false);
  assert.equal(ops.log.filter((l) => l === 'keepalive').length, 2);
  // B renews late (its storage recovered): keepalives resume.
  assert.equal(await b.refresh(1016), 0);
  assert.equal(b.expireTs, 1032);
  assert.equal(a.hub.test(), true);
  // B removed cleanly; A closed WITHOUT disarm (a crash path): the device stays open and is
  // never petted once A's expiry is near, and is never closed cleanly.
  assert.equal(await b.disarm(), 0);
  await b.close();
  await a.close();
  assert.equal(a.hub.isOpen, true);
  now = 1070;
  assert.equal(a.hub.test(), false);
  assert.ok(!ops.log.includes('magic close'));
});

test('device mode: closed cleanly (magic close) when the last lockspace is disarmed; reopened later', async () => {
  let now = 500;
  const ops = recordingOps();
  const devicePath = uniquePath();
  const a = new DeviceWatchdog({ devicePath, now: () => now }, ops);
  await a.arm({ spaceName: 'A', hostId: 1, ioTimeout: 10, renewalTs: 500 });
  now = 501;
  assert.equal(a.hub.test(), true);
  assert.equal(await a.disarm(), 0);
  await a.close();
  assert.equal(a.hub.isOpen, false);
  assert.deepEqual(ops.log, [`open ${devicePath}`, 'settimeout 60', 'keepalive', 'magic close']);
  await a.arm({ spaceName: 'A', hostId: 1, ioTimeout: 10, renewalTs: 501 });
  assert.equal(a.hub.isOpen, true);
  assert.equal(ops.log.at(-1), 'settimeout 60');
  assert.equal(await a.disarm(), 0);
});

test('device mode: a device that refuses the 60 s timeout, or is missing, fails with -203', async () => {
  const ops = recordingOps(false);
  const a = new DeviceWatchdog({ devicePath: uniquePath() }, ops);
  const ts = Math.floor(monotonicSecondsExact());
  await assert.rejects(a.arm({ spaceName: 'A', hostId: 1, ioTimeout: 10, renewalTs: ts }), (e: unknown) => e instanceof SanlockError && e.code === -203);
  assert.deepEqual(ops.log.slice(1), ['settimeout 60', 'magic close']);
  const b = new DeviceWatchdog({ devicePath: uniquePath() });
  await assert.rejects(b.arm({ spaceName: 'B', hostId: 1, ioTimeout: 10, renewalTs: ts }), (e: unknown) => e instanceof SanlockError && e.code === -203);
  assert.equal(existsSync(b.hub.path), false, 'a missing device is never created');
});

function childScript(): string {
  const p = join(dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'fake-watchdog', 'device-child.js');
  assert.ok(existsSync(p), p);
  return p;
}

describe('device mode on the fake watchdog device (shim preloaded into a node child)', { skip: !haveGcc() && 'gcc not installed' }, () => {
  test('open, settimeout 60, keepalives until an interval before expiry, fired after, magic close on disarm', async () => {
    const dev = fakeDevice({ fireSeconds: 3 });
    const child = spawn(process.execPath, [childScript(), dev.devicePath, '1000'], { env: dev.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const lines = createInterface({ input: child.stdout });
    const replies: Array<Record<string, unknown>> = [];
    lines.on('line', (l) => replies.push(JSON.parse(l) as Record<string, unknown>));
    const call = async (cmd: Record<string, unknown>): Promise<Record<string, unknown>> => {
      const n = replies.length;
      child.stdin.write(`${JSON.stringify(cmd)}\n`);
      await waitUntil(() => replies.length > n, 5000, `reply to ${String(cmd.op)}`);
      return replies[n]!;
    };
    try {
      const armed = await call({ op: 'arm', spaceName: 'devls', hostId: 1, ioTimeout: 1 });
      assert.equal(armed.ok, true, JSON.stringify(armed) + stderr);
      const t0 = monotonicSecondsExact();
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 500));
        assert.equal((await call({ op: 'refresh' })).rv, 0);
      }
      const expire = Number((await call({ op: 'state' })).expire);
      // No more renewals: keepalives must stop once now + 1 s (the interval) >= expire.
      await waitUntil(() => dev.events().some((e) => e.event === 'fired'), 15_000, 'fired');
      const ev = dev.events();
      assert.deepEqual(
        ev.slice(0, 2).map((e) => `${e.event}${e.arg ? ` ${e.arg}` : ''}`),
        ['open', 'settimeout 60'],
      );
      const keeps = ev.filter((e) => e.event === 'keepalive');
      assert.ok(keeps.filter((k) => k.t > t0).length >= 3, `keepalives while renewing: ${keeps.length}`);
      for (const k of keeps) assert.ok(k.t + 1 < expire + 0.05, `keepalive at ${k.t} within an interval of expiry ${expire}`);
      const last = keeps.at(-1)!;
      assert.ok(last.t > expire - 2.2, `keepalives stopped too early: last ${last.t}, expiry ${expire}`);
      const fired = ev.find((e) => e.event === 'fired')!;
      assert.ok(Math.abs(fired.t - (last.t + 3)) < 0.3);
      const st = await call({ op: 'state' });
      assert.ok(Number(st.skipped) > 0);
      assert.match(stderr, /test (warning|failed) now \d+ expire \d+ sanlock_devls:1/);
      // Clean removal: the magic char, then the close that stops the timer.
      assert.equal((await call({ op: 'disarm' })).rv, 0);
      await waitUntil(() => dev.events().some((e) => e.event === 'magic'), 2000, 'magic');
      assert.equal((await call({ op: 'state' })).open, false);
      const exited = new Promise((r) => child.once('exit', r));
      await call({ op: 'exit' });
      child.stdin.end();
      await Promise.race([exited, new Promise((_, rej) => setTimeout(() => rej(new Error('child did not exit')), 5000))]);
      const tail = dev.events().filter((e) => e.event === 'magic' || e.event === 'close');
      assert.equal(tail[0]!.event, 'magic');
      // libuv may close through a raw syscall, which the shim cannot see; if seen, it is clean.
      for (const c of tail.slice(1)) assert.equal(c.arg, 'clean');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      dev.cleanup();
    }
  });
});
