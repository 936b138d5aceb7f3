import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SanlockError } from '../../src/codes.js';
import { monotonicSecondsExact } from '../../src/daemon/watchdog/common.js';
import { createWatchdog, watchdogModeFor } from '../../src/daemon/watchdog/watchdog.js';
import { decodeWdmdHeader, encodeWdmdHeader, WDMD_HEADER_SIZE, WdmdCmd, type WdmdHeader, WdmdWatchdog } from '../../src/daemon/watchdog/wdmd.js';
import { haveWdmd, startWdmdWithFakeDevice, waitUntil } from '../helpers/fake-watchdog/index.js';

const nowTs = (): number => Math.floor(monotonicSecondsExact());

test('wdmd_header layout: 176 bytes, fields at sanlock offsets', () => {
  const b = encodeWdmdHeader({
    cmd: WdmdCmd.TEST_LIVE,
    testInterval: 10,
    fireTimeout: 60,
    lastKeepalive: 7n,
    renewalTime: 1000n,
    expireTime: 1008n,
    name: 'sanlock_ls:1',
  });
  assert.equal(b.length, WDMD_HEADER_SIZE);
  assert.equal(b.readUInt32LE(0), 0);
  assert.equal(b.readUInt32LE(4), 4);
  assert.equal(b.readUInt32LE(16), 10);
  assert.equal(b.readUInt32LE(20), 60);
  assert.equal(b.readBigUInt64LE(24), 7n);
  assert.equal(b.readBigUInt64LE(32), 1000n);
  assert.equal(b.readBigUInt64LE(40), 1008n);
  assert.equal(b.subarray(48, 60).toString(), 'sanlock_ls:1');
  assert.equal(b[60], 0);
  const h = decodeWdmdHeader(b);
  assert.equal(h.name, 'sanlock_ls:1');
  assert.equal(h.expireTime, 1008n);
});

test('watchdogModeFor: -w 0 is none, otherwise wdmd unless SANLOCK_TS_WATCHDOG=device', () => {
  assert.equal(watchdogModeFor(0, {}), 'none');
  assert.equal(watchdogModeFor(1, {}), 'wdmd');
  assert.equal(watchdogModeFor(1, { SANLOCK_TS_WATCHDOG: 'device' }), 'device');
  assert.equal(createWatchdog('none').mode, 'none');
});

/** An in-process stand-in for wdmd that records every header it receives. */
async function fakeWdmdServer(fireTimeout: number): Promise<{ path: string; got: WdmdHeader[]; ended: Promise<void>; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'wdmdsrv-'));
  const path = join(dir, 'wdmd.sock');
  const got: WdmdHeader[] = [];
  let endedResolve!: () => void;
  const ended = new Promise<void>((r) => {
    endedResolve = r;
  });
  const server = net.createServer((c) => {
    let rx = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      rx = Buffer.concat([rx, d]);
      while (rx.length >= WDMD_HEADER_SIZE) {
        const h = decodeWdmdHeader(rx.subarray(0, WDMD_HEADER_SIZE));
        rx = rx.subarray(WDMD_HEADER_SIZE);
        got.push(h);
        if (h.cmd === WdmdCmd.STATUS) c.write(encodeWdmdHeader({ ...h, testInterval: 10, fireTimeout, lastKeepalive: 5n }));
      }
    });
    c.on('close', () => endedResolve());
    c.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    got,
    ended,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('wdmd client sends sanlock\'s sequence: register, refcount, status, test_live; refresh; disarm', async () => {
  const srv = await fakeWdmdServer(60);
  try {
    const wd = new WdmdWatchdog({ socketPath: srv.path });
    await wd.connect();
    const ts = nowTs();
    await wd.arm({ spaceName: 'LS1', hostId: 3, ioTimeout: 10, renewalTs: ts });
    assert.equal(wd.expireTs, ts + 80);
    assert.equal(await wd.refresh(ts + 1 <= nowTs() ? ts + 1 : ts), 0);
    assert.equal(await wd.disarm(), 0);
    await wd.close();
    await srv.ended;
    const cmds = srv.got.map((h) => h.cmd);
    assert.deepEqual(cmds, [WdmdCmd.REGISTER, WdmdCmd.REFCOUNT_SET, WdmdCmd.STATUS, WdmdCmd.TEST_LIVE, WdmdCmd.TEST_LIVE, WdmdCmd.TEST_LIVE, WdmdCmd.REFCOUNT_CLEAR]);
    assert.equal(srv.got[0]!.name, 'sanlock_LS1:3');
    assert.equal(srv.got[3]!.renewalTime, BigInt(ts));
    assert.equal(srv.got[3]!.expireTime, BigInt(ts + 80));
    assert.equal(srv.got[4]!.expireTime - srv.got[4]!.renewalTime, 80n);
    assert.equal(srv.got[5]!.renewalTime, 0n);
    assert.equal(srv.got[5]!.expireTime, 0n);
    for (const h of srv.got) assert.equal(h.magic, 0);
    assert.equal(wd.expireTs, 0);
  } finally {
    await srv.close();
  }
});

test('wdmd with a fire timeout other than 60: arm fails -203 and drops its reference', async () => {
  const srv = await fakeWdmdServer(30);
  try {
    const wd = new WdmdWatchdog({ socketPath: srv.path });
    await assert.rejects(
      wd.arm({ spaceName: 'LS1', hostId: 1, ioTimeout: 1, renewalTs: nowTs() }),
      (e: unknown) => e instanceof SanlockError && e.code === -203,
    );
    await srv.ended;
    assert.deepEqual(
      srv.got.map((h) => h.cmd),
      [WdmdCmd.REGISTER, WdmdCmd.REFCOUNT_SET, WdmdCmd.STATUS, WdmdCmd.REFCOUNT_CLEAR],
    );
    assert.equal(wd.expireTs, 0);
  } finally {
    await srv.close();
  }
});

test('no wdmd listening: connect fails with -203', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nowdmd-'));
  try {
    const wd = createWatchdog('wdmd', { wdmdSocketPath: join(dir, 'wdmd.sock') });
    await assert.rejects(wd.connect(), (e: unknown) => e instanceof SanlockError && e.code === -203);
    await assert.rejects(
      wd.arm({ spaceName: 'x', hostId: 1, ioTimeout: 1, renewalTs: nowTs() }),
      (e: unknown) => e instanceof SanlockError && e.code === -203,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('safety assertions: no expiry from a future or older renewal timestamp', async () => {
  const srv = await fakeWdmdServer(60);
  try {
    const wd = new WdmdWatchdog({ socketPath: srv.path });
    const ts = nowTs();
    await assert.rejects(wd.arm({ spaceName: 'a', hostId: 1, ioTimeout: 1, renewalTs: ts + 30 }), assert.AssertionError);
    await wd.arm({ spaceName: 'a', hostId: 1, ioTimeout: 1, renewalTs: ts });
    await assert.rejects(wd.refresh(ts + 30), assert.AssertionError);
    await assert.rejects(wd.refresh(ts - 1), assert.AssertionError);
    assert.equal(wd.expireTs, ts + 8);
    await wd.close();
  } finally {
    await srv.close();
  }
});

describe('real wdmd 3.8.5 on the fake watchdog device', { skip: !haveWdmd() && 'wdmd or gcc not installed' }, () => {
  let w: Awaited<ReturnType<typeof startWdmdWithFakeDevice>> | undefined;
  before(async () => {
    // Fire 12 s after the last ping instead of 60 (wdmd itself still sets and reports 60).
    w = await startWdmdWithFakeDevice({ fireSeconds: 12 });
  });
  after(async () => {
    await w?.stop();
  });

  test('keepalives while we refresh, none within a test interval of our expiry, fired after, resumed after disarm', async () => {
    const wdmd = w!;
    const kept = (since: number) => wdmd.events().filter((e) => e.event === 'keepalive' && e.t > since);
    const ev0 = wdmd.events();
    assert.deepEqual(
      ev0.slice(0, 3).map((e) => `${e.event}${e.arg ? ` ${e.arg}` : ''}`),
      ['open', 'gettimeout 30', 'settimeout 60'],
    );
    const wd = new WdmdWatchdog({ socketPath: wdmd.socketPath });
    await wd.connect();
    const st = await wd.status();
    assert.equal(st.fireTimeout, 60);
    assert.equal(st.testInterval, 10);
    // io_timeout 2, not 1: wdmd pets only while now + 10 < expiry, and 1 s gives an expiry of
    // renewal + 8, so a real sanlock with io_timeout 1 under wdmd is never petted either.
    const io = 2;
    const ts0 = nowTs();
    await wd.arm({ spaceName: 'wdls', hostId: 1, ioTimeout: io, renewalTs: ts0 });
    const tArm = monotonicSecondsExact();
    await waitUntil(() => new RegExp(`test_live ci \\d+ renewal ${ts0} expire ${ts0 + 8 * io}\n`).test(wdmd.stderr()), 3000, 'wdmd to log our test_live');
    assert.match(wdmd.stderr(), /register ci \d+ fd \d+ pid \d+ sanlock_wdls:1/);

    // Renew every second until wdmd's periodic test (every 10 s) has passed with us armed.
    while (kept(tArm + 0.5).length === 0) {
      assert.ok(monotonicSecondsExact() - tArm < 13, 'no keepalive within a wdmd test interval');
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(await wd.refresh(nowTs()), 0);
    }
    const expire = wd.expireTs;
    // Renewals stop, as when storage hangs: wdmd must stop petting and let go of the device.
    await waitUntil(() => wdmd.events().some((e) => e.event === 'close' && e.t > tArm), 14_000, 'wdmd to give up the device');
    const giveUp = wdmd.events().find((e) => e.event === 'close' && e.t > tArm)!;
    assert.equal(giveUp.arg, 'unclean', 'wdmd 3.8.5 closes without the magic char: the timer keeps running');
    assert.ok(giveUp.t < expire, 'wdmd stops a test interval ahead of the expiry');
    assert.ok(Math.floor(giveUp.t) + 10 >= expire, `gave up at ${giveUp.t}, more than 10 s before the expiry ${expire}`);
    assert.match(wdmd.stderr(), new RegExp(`test warning now \\d+ .* expire ${expire} client \\d+ sanlock_wdls:1`));
    for (const k of kept(tArm)) assert.ok(Math.floor(k.t) + 10 < expire, `keepalive at ${k.t} within 10 s of our expiry ${expire}`);

    await waitUntil(() => wdmd.events().some((e) => e.event === 'fired'), 13_000, 'fired');
    const fired = wdmd.events().find((e) => e.event === 'fired')!;
    const lastKeep = kept(tArm).at(-1)!;
    assert.ok(Math.abs(fired.t - (lastKeep.t + 12)) < 0.5, 'fired one fire timeout after the last keepalive');
    // With the real 60 s: reset at lastKeep + 60 < expire + 60 = renewal + 8·io + 60, the moment
    // other hosts may take our leases.
    assert.ok(lastKeep.t + 60 < expire + 60);

    // Clean removal: expiry cleared and reference dropped; wdmd (retesting every second while
    // failing) reopens the device and pets again.
    const tDisarm = monotonicSecondsExact();
    assert.equal(await wd.disarm(), 0);
    // wdmd retests about every second while failing; 12 s (a whole test interval and more) keeps
    // a CI machine's scheduling noise from failing this (4 s did once, on a loaded 2-core run)
    await waitUntil(() => kept(tDisarm).length > 0, 12_000, 'keepalives to resume after disarm');
    assert.ok(wdmd.events().some((e) => e.event === 'open' && e.t > tDisarm), 'device reopened');
    await wd.close();
    await waitUntil(() => wdmd.stderr().includes('client_pid_dead'), 3000, 'wdmd to drop the closed connection');
    // No reference left: SIGTERM stops wdmd, which disarms the device cleanly.
    assert.equal(await wdmd.term(5000), true);
    const tail = wdmd.events().slice(-2).map((e) => `${e.event}${e.arg ? ` ${e.arg}` : ''}`);
    assert.deepEqual(tail, ['magic', 'close clean']);
  });
});

describe('real wdmd: a connection closed while armed stays armed', { skip: !haveWdmd() && 'wdmd or gcc not installed' }, () => {
  test('SIGTERM does not stop wdmd while a crashed client had an expiry', async () => {
    const w = await startWdmdWithFakeDevice();
    try {
      const wd = new WdmdWatchdog({ socketPath: w.socketPath });
      const ts = nowTs();
      await wd.arm({ spaceName: 'crash', hostId: 2, ioTimeout: 10, renewalTs: ts });
      await wd.close(); // no disarm: what a daemon crash looks like to wdmd
      await waitUntil(() => /client dead ci \d+ fd \d+ pid \d+ renewal \d+ expire \d+ sanlock_crash:2/.test(w.stderr()), 3000, 'client dead');
      assert.equal(await w.term(1500), false, 'wdmd must keep running (and keep the device armed)');
      assert.ok(!w.events().some((e) => e.event === 'magic'), 'device never disarmed');
    } finally {
      await w.stop();
    }
  });
});
