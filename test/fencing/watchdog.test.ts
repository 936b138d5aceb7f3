// Issue 5: once the lockspace's storage hangs, the watchdog gets no keepalive at or after the
// last successful renewal's expiry (renewal + 8·io_timeout), so the host would be reset
// (last keepalive + 60 s) before other hosts consider it dead (renewal + 8·io + 60). Checked
// with the real wdmd on a fake device, and with our daemon driving the (fake) device itself.
// io_timeout 2: with 1 the expiry (renewal + 8) is inside the 10 s test interval, and neither
// wdmd nor the device mode ever pets. The fake device "fires" 12 s after the last keepalive
// (its real timeout stays 60), so the test sees it without waiting a minute.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { scratchDir } from '../helpers/real-sanlock.js';
import { fakeDevice, haveWdmd, haveGcc, startWdmdWithFakeDevice, type WdEvent } from '../helpers/fake-watchdog/index.js';
import { type OurDaemon, pyAvailable, startOurDaemon, waitFor } from '../daemon/our-daemon.js';
import { diskDeltaTimestamp, hangForever, type Holder, initLockspace, initResource, monoNow, parseLog, pyAcquire, sleep, startHolder, writeFaults, cliAsync } from './fencing-helpers.js';

const skip = !pyAvailable();
const IO = 2;
const FIRE = 12;

/** Holds a lease (ignoring SIGTERM, default grace 40 s) in a lockspace whose storage then hangs. */
async function hangWithWatchdog(
  label: string,
  start: (faults: string, runDir: string) => Promise<OurDaemon>,
  events: () => WdEvent[],
): Promise<string> {
  const dir = scratchDir(`fence-wd-${label}`);
  const ids = join(dir, 'ids');
  const res = join(dir, 'res');
  const faults = join(dir, 'faults.json');
  writeFaults(faults, []);
  initLockspace(ids, 'LSW', IO);
  initResource(res, 'LSW', 'R1');
  let d: OurDaemon | undefined;
  let h: Holder | undefined;
  try {
    d = await start(faults, join(dir, 'run'));
    assert.match(await cliAsync(d.env, ['client', 'add_lockspace', '-s', `LSW:1:${ids}:0`, '-o', String(IO)]), /done 0\n$/);
    h = await startHolder(d.env, pyAcquire('LSW', 'R1', res), { ignoreTerm: true });
    await waitFor(() => events().some((e) => e.event === 'keepalive'), 15_000, 'a keepalive');
    // a few renewals and keepalives in normal operation, none of them a fire
    await sleep(3000);
    const H = monoNow();
    writeFaults(faults, hangForever([ids, res]));
    await sleep(1500);
    const T = diskDeltaTimestamp(ids, 1);
    assert.ok(T > 0 && T <= H + 0.5);
    const expiry = T + 8 * IO;
    await waitFor(() => events().some((e) => e.event === 'fired'), (expiry - monoNow() + FIRE + 5) * 1000, 'fake watchdog fired');
    const ev = events();
    const fired = ev.find((e) => e.event === 'fired')!;
    assert.ok(fired.t > H, 'no fire before the storage hung');
    const keepalives = ev.filter((e) => e.event === 'keepalive');
    const last = keepalives[keepalives.length - 1]!;
    assert.ok(keepalives.every((k) => k.t < expiry), `a keepalive at T+${(last.t - T).toFixed(2)}, expiry T+${8 * IO}`);
    assert.ok(last.t + 60 < T + 8 * IO + 60, 'a real watchdog resets the host before host_dead');
    assert.ok(fired.t >= last.t + FIRE - 0.5);
    // the holder is still alive (grace not over): only the watchdog protects the lease now
    assert.equal(h.proc.exitCode, null);
    // the fake fire (12 s) can come before the failure at T+16 when the last keepalive was early
    await waitFor(() => /check_our_lease failed/.test(d!.cli(['client', 'log_dump']).stdout), (expiry - monoNow() + 3) * 1000, 'check_our_lease failed');
    assert.ok(events().every((e) => e.event !== 'keepalive' || e.t < expiry), 'no keepalive after the expiry');
    const log = parseLog(d.cli(['client', 'log_dump']).stdout);
    assert.ok(log.some((l) => /check_our_lease failed/.test(l.msg)));
    assert.ok(!log.some((l) => /all pids clear/.test(l.msg)), 'the expiry is never cleared while a holder lives');
    return `last keepalive T+${(last.t - T).toFixed(2)} (expiry T+${8 * IO}), fake fire T+${(fired.t - T).toFixed(2)}, real fire would be T+${(last.t + 60 - T).toFixed(2)} < host_dead T+${8 * IO + 60}`;
  } finally {
    h?.kill();
    await d?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('fencing: watchdog not fed after the lease expiry', { skip, concurrency: true }, () => {
  test('real wdmd on a fake device', { skip: !haveWdmd() }, async () => {
    const wd = await startWdmdWithFakeDevice({ fireSeconds: FIRE });
    try {
      const msg = await hangWithWatchdog('wdmd', (faults, runDir) => startOurDaemon(runDir, ['-w', '1'], { SANLOCK_TS_WDMD_SOCK: wd.socketPath, SANLOCK_TS_FAULT_FILE: faults }), () => wd.events());
      assert.match(wd.stderr(), /test (failed|warning)/);
      console.log(`# fencing watchdog (wdmd, io ${IO}): ${msg}`);
    } finally {
      await wd.stop();
    }
  });

  test('device mode (our daemon drives the fake device)', { skip: !haveGcc() }, async () => {
    const dev = fakeDevice({ fireSeconds: FIRE });
    try {
      const msg = await hangWithWatchdog(
        'dev',
        (faults, runDir) =>
          startOurDaemon(runDir, ['-w', '1'], {
            ...dev.env,
            SANLOCK_TS_WATCHDOG: 'device',
            SANLOCK_TS_WATCHDOG_DEV: dev.devicePath,
            SANLOCK_TS_FAULT_FILE: faults,
          }),
        () => dev.events(),
      );
      console.log(`# fencing watchdog (device, io ${IO}): ${msg}`);
    } finally {
      dev.cleanup();
    }
  });
});
