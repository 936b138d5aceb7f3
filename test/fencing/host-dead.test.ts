// Issue 5: another host may take a failed host's leases only once host_dead_seconds
// (8·io_timeout + 60) have passed since that host's last renewal — never earlier. Two scenarios
// run side by side (each waits about a minute and a quarter):
//  * our host 1's storage hangs; a second sanlock-ts daemon (host 2) keeps trying to acquire;
//  * our host 1, fed through the real wdmd on a fake watchdog device, is SIGKILLed while a
//    client holds a lease; the real sanlock daemon (host 2) keeps trying to acquire; the fake
//    device shows the watchdog firing, and it fires before host 2 gets the lease.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { haveRealSanlock, scratchDir, startRealDaemon, type RealDaemon } from '../helpers/real-sanlock.js';
import { haveWdmd, startWdmdWithFakeDevice, type FakeWdmd } from '../helpers/fake-watchdog/index.js';
import { type OurDaemon, pyAvailable, startOurDaemon, waitFor } from '../daemon/our-daemon.js';
import {
  acquireLoop,
  cliAsync,
  diskDeltaTimestamp,
  hangForever,
  type Holder,
  initLockspace,
  initResource,
  killGroup,
  monoNow,
  parseLog,
  pyAcquire,
  sleep,
  startHolder,
  writeFaults,
} from './fencing-helpers.js';

const skip = !pyAvailable();
const hostDead = (io: number): number => 8 * io + 60;

describe('fencing: host_dead before another host takes the leases', { skip, concurrency: true }, () => {
  test('storage hang on host 1 (ours, io 1): a second sanlock-ts daemon gets the lease only after host_dead', async () => {
    const dir = scratchDir('fence-dead1');
    const ids = join(dir, 'ids');
    const res = join(dir, 'res');
    const faults = join(dir, 'faults.json');
    writeFaults(faults, []);
    initLockspace(ids, 'LSX', 1);
    initResource(res, 'LSX', 'R1');
    const d1 = await startOurDaemon(join(dir, 'run1'), [], { SANLOCK_TS_FAULT_FILE: faults });
    let d2: OurDaemon | undefined;
    let h: Holder | undefined;
    let loop: ReturnType<typeof acquireLoop> | undefined;
    try {
      d2 = await startOurDaemon(join(dir, 'run2'));
      const [a1, a2] = await Promise.all([
        d1.cliAsync(['client', 'add_lockspace', '-s', `LSX:1:${ids}:0`, '-o', '1']),
        d2.cliAsync(['client', 'add_lockspace', '-s', `LSX:2:${ids}:0`, '-o', '1']),
      ]);
      assert.match(a1.stdout + a2.stdout, /done 0\n[\s\S]*done 0\n$/);
      h = await startHolder(d1.env, pyAcquire('LSX', 'R1', res));
      // host 2 sees host 1 alive first (so the dead wait starts from a live observation)
      await waitFor(() => /\nh 1 gen \d+ timestamp \d+ LIVE/.test(d2!.cli(['client', 'gets', '-h', '1']).stdout), 20_000, 'host 1 live on host 2');
      writeFaults(faults, hangForever([ids, res]));
      await sleep(1500);
      const T = diskDeltaTimestamp(ids, 1);
      assert.ok(T > 0);
      loop = acquireLoop(d2.env, 'LSX', 'R1', res);
      const ex = await h.exited;
      assert.equal(ex.sig, 'SIGTERM', 'host 1 killed its holder');
      assert.ok(ex.t < T + 10, `holder killed at T+${(ex.t - T).toFixed(1)}`);
      const got = await loop.done;
      assert.ok(got.errors.length > 0, 'host 2 was refused while host 1 could still be alive');
      assert.ok(got.t >= T + hostDead(1), `host 2 acquired at T+${(got.t - T).toFixed(2)} (host_dead ${hostDead(1)})`);
      assert.ok(got.t < T + hostDead(1) + 10, `host 2 acquired at T+${(got.t - T).toFixed(2)}`);
      // host 1 never wrote after T
      assert.equal(diskDeltaTimestamp(ids, 1), T);
      console.log(`# fencing host_dead (ours→ours, io 1): holder killed T+${(ex.t - T).toFixed(2)}, host 2 acquired T+${(got.t - T).toFixed(2)}, refusals ${[...new Set(got.errors)].join(',')}`);
    } finally {
      killGroup(loop?.proc);
      h?.kill();
      await d1.stop();
      await d2?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('host 1 (ours, wdmd on a fake device, io 2) SIGKILLed: the watchdog fires; the real sanlock gets the lease only after host_dead', { skip: !haveRealSanlock() || !haveWdmd() }, async () => {
    const dir = scratchDir('fence-dead2');
    const ids = join(dir, 'ids');
    const res = join(dir, 'res');
    initLockspace(ids, 'LSY', 2);
    initResource(res, 'LSY', 'R1');
    let wd: FakeWdmd | undefined;
    let d1: OurDaemon | undefined;
    let real: RealDaemon | undefined;
    let h: Holder | undefined;
    let loop: ReturnType<typeof acquireLoop> | undefined;
    try {
      wd = await startWdmdWithFakeDevice();
      d1 = await startOurDaemon(join(dir, 'run1'), ['-w', '1'], { SANLOCK_TS_WDMD_SOCK: wd.socketPath });
      real = await startRealDaemon(join(dir, 'run2'));
      const [a1, a2] = await Promise.all([
        d1.cliAsync(['client', 'add_lockspace', '-s', `LSY:1:${ids}:0`, '-o', '2']),
        cliAsync(real.env, ['client', 'add_lockspace', '-s', `LSY:2:${ids}:0`, '-o', '2']),
      ]);
      assert.match(a1.stdout, /done 0\n$/);
      assert.match(a2, /done 0\n$/);
      h = await startHolder(d1.env, pyAcquire('LSY', 'R1', res));
      await waitFor(() => /LIVE/.test(real!.cli(['client', 'gets', '-h', '1']).stdout.split('\n').filter((l) => /h 1 /.test(l)).join('')), 30_000, 'host 1 live on the real daemon');
      // at least one keepalive after the join, so the fake device is being fed
      await waitFor(() => wd!.events().some((e) => e.event === 'keepalive'), 15_000, 'a keepalive');
      const K = monoNow();
      await d1.stop();
      const T = diskDeltaTimestamp(ids, 1);
      assert.ok(T > 0 && T <= K + 0.5);
      loop = acquireLoop(real.env, 'LSY', 'R1', res);
      const got = await loop.done;
      const ev = wd.events();
      const keepalives = ev.filter((e) => e.event === 'keepalive');
      const last = keepalives[keepalives.length - 1]!;
      const fired = ev.find((e) => e.event === 'fired');
      assert.ok(last.t < T + 8 * 2, `last keepalive T+${(last.t - T).toFixed(2)} must precede the expiry T+16`);
      assert.ok(fired, 'the fake watchdog fired');
      assert.ok(fired.t >= last.t + 59.5 && fired.t <= T + hostDead(2), `fired at T+${(fired.t - T).toFixed(2)}`);
      assert.ok(got.t >= T + hostDead(2), `real sanlock acquired at T+${(got.t - T).toFixed(2)} (host_dead ${hostDead(2)})`);
      assert.ok(fired.t < got.t, 'the watchdog fired before the other host took the lease');
      assert.ok(got.errors.length > 0);
      assert.ok(parseLog(real.cli(['client', 'log_dump']).stdout).length > 0);
      console.log(
        `# fencing SIGKILL+wdmd (ours→real sanlock, io 2): killed T+${(K - T).toFixed(2)}, last keepalive T+${(last.t - T).toFixed(2)}, ` +
          `fired T+${(fired.t - T).toFixed(2)}, real sanlock acquired T+${(got.t - T).toFixed(2)}, refusals ${[...new Set(got.errors)].join(',')}`,
      );
    } finally {
      killGroup(loop?.proc);
      h?.kill();
      await d1?.stop();
      await real?.stop();
      await wd?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
