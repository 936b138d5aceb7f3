// syslog (-S) and systemd's notify protocol, observed at the sockets they write to.
//
// syslog(3) always sends to /dev/log. The sandbox has no syslog daemon and no /dev/log, so the
// test binds its own receiver there for its duration (and skips on a machine that has a real
// /dev/log, which it must not take over). sd_notify goes to $NOTIFY_SOCKET, a receiver in a
// scratch directory.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { watchdogPeriodMs } from '../../src/daemon/sd-notify.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { startDgramReceiver } from './log-helpers.js';
import { pyAvailable, startOurDaemon, waitFor } from './our-daemon.js';

const skip = !pyAvailable();
const DEV_LOG = '/dev/log';
const LOG_DAEMON = 3 << 3;

describe('syslog at or above -S', { skip: skip ? 'no python3-sanlock' : existsSync(DEV_LOG) ? 'a real /dev/log exists' : false }, () => {
  test('-S 4: warnings and errors arrive as facility daemon, ident sanlock[pid]; debug does not; -S -1: nothing', async () => {
    const rx = await startDgramReceiver(DEV_LOG);
    try {
      const dir = scratchDir('syslog');
      const d = await startOurDaemon(join(dir, 'run4'), ['-S', '4']);
      const pid = d.proc.pid!;
      let ours: string[] = [];
      try {
        await waitFor(() => {
          ours = rx.messages().filter((m) => m.includes(`sanlock[${pid}]:`));
          return ours.some((m) => m.includes('sanlock daemon started'));
        }, 10_000, 'start message in syslog');
        // the "not started" privileges message and the start line are warnings: <24+4>
        const started = ours.find((m) => m.includes('sanlock daemon started'))!;
        assert.match(started, new RegExp(`^<${LOG_DAEMON + 4}>.*sanlock\\[${pid}\\]: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\d+ \\[${pid}\\]: sanlock daemon started`));
        // debug traffic (every command is logged at debug level) must not reach syslog
        assert.equal(d.cli(['client', 'status']).status, 0);
        assert.match(d.cli(['client', 'log_dump']).stdout, /cmd_status/);
        await new Promise((r) => setTimeout(r, 300));
        ours = rx.messages().filter((m) => m.includes(`sanlock[${pid}]:`));
        for (const m of ours) {
          const pri = Number(/^<(\d+)>/.exec(m)![1]);
          assert.equal(pri & ~7, LOG_DAEMON, m);
          assert.ok((pri & 7) <= 4, `level above -S 4 reached syslog: ${m}`);
        }
        assert.ok(!ours.some((m) => m.includes('cmd_status')));
      } finally {
        await d.stop();
      }

      const d2 = await startOurDaemon(join(dir, 'runNone'), ['-S', '-1']);
      try {
        assert.equal(d2.cli(['client', 'status']).status, 0);
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(rx.messages().filter((m) => m.includes(`sanlock[${d2.proc.pid}]:`)), []);
      } finally {
        await d2.stop();
      }
    } finally {
      await rx.stop();
    }
    assert.equal(existsSync(DEV_LOG), false, 'the test receiver is gone');
  });
});

describe('sd_notify', { skip }, () => {
  test('WATCHDOG_USEC / WATCHDOG_PID as sd_watchdog_enabled reads them', () => {
    assert.equal(watchdogPeriodMs({}), 0);
    assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: '90000000' }, 7), 45_000);
    assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: '90000000', WATCHDOG_PID: '7' }, 7), 45_000);
    assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: '90000000', WATCHDOG_PID: '8' }, 7), 0);
    assert.equal(watchdogPeriodMs({ WATCHDOG_USEC: 'x' }, 7), 0);
  });

  test('READY=1 once the socket listens, WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1 at exit', async () => {
    const dir = scratchDir('notify');
    const sock = join(dir, 'notify.sock');
    const rx = await startDgramReceiver(sock);
    try {
      const d = await startOurDaemon(join(dir, 'run'), [], { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' });
      try {
        await waitFor(() => rx.messages().some((m) => m.startsWith('READY=1')), 10_000, 'READY=1');
        const ready = rx.messages().find((m) => m.startsWith('READY=1'))!;
        assert.match(ready, new RegExp(`^READY=1\\nMAINPID=${d.proc.pid}\\nSTATUS=listening on .*sanlock\\.sock$`));
        assert.ok(existsSync(d.sockPath), 'the socket exists when READY=1 is sent');
        await waitFor(() => rx.messages().filter((m) => m === 'WATCHDOG=1').length >= 3, 5000, 'watchdog pings');
        process.kill(d.proc.pid!, 'SIGTERM'); // no lockspace: the daemon exits
        await waitFor(() => d.proc.exitCode !== null, 10_000, 'daemon exit');
        assert.equal(d.proc.exitCode, 0);
        assert.ok(rx.messages().includes('STOPPING=1'));
      } finally {
        await d.stop();
      }
    } finally {
      await rx.stop();
    }
  });

  test('without NOTIFY_SOCKET nothing is sent and the daemon runs as before', async () => {
    const dir = scratchDir('notify-none');
    const d = await startOurDaemon(join(dir, 'run'), [], { NOTIFY_SOCKET: '' });
    try {
      assert.equal(d.cli(['client', 'status']).status, 0);
      assert.doesNotMatch(d.cli(['client', 'log_dump']).stdout, /sd_notify|systemd watchdog/);
    } finally {
      await d.stop();
    }
  });
});
