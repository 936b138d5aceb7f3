// Issue 5, host-failure safety: what our daemon does when its own storage stops answering
// (daemon.md §5), with io_timeout 1 s: warn at 6·io, fail at 8·io, killpath/SIGTERM, SIGKILL
// after kill_grace_seconds, lockspace freed once the holders are gone; another lockspace on
// working storage is not held up; a short hang is survived; a stalled (SIGSTOPped) daemon
// fails the lockspace as soon as it runs again.
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { readdirSync, readlinkSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type OurDaemon, pyAvailable, SANLOCK_BIN, startOurDaemon, waitFor } from '../daemon/our-daemon.js';
import { haveRealSanlock, scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';
import {
  diskDeltaTimestamp,
  firstLine,
  hangForever,
  type Holder,
  initLockspace,
  initResource,
  monoNow,
  parseLog,
  pyAcquire,
  sleep,
  startHolder,
  writeFaults,
  cliAsync,
} from './fencing-helpers.js';

const skip = !pyAvailable();
const GRACE = 5;
const STOP_GRACE = 10;

function spaceId(log: string, ls: string): string {
  const m = new RegExp(`(s\\d+) lockspace ${ls}:`).exec(log);
  assert.ok(m, `no lockspace line for ${ls}`);
  return m[1]!;
}

function renewalTimestamps(d: OurDaemon, ls: string, ids: string): number[] {
  const out = d.cli(['client', 'renewal', '-s', `${ls}:1:${ids}:0`]).stdout;
  return [...out.matchAll(/timestamp=(\d+) /g)].map((m) => Number(m[1]));
}

describe('fencing: storage hang and stall recovery (io_timeout 1)', { skip, concurrency: true }, () => {
  test('A hangs: warning, failure, SIGTERM→SIGKILL and killpath on schedule; B keeps renewing; C survives a short hang', async () => {
    const dir = scratchDir('fence-hang');
    const faults = join(dir, 'faults.json');
    writeFaults(faults, []);
    const files: Record<string, string> = {};
    for (const ls of ['LSA', 'LSB', 'LSC']) {
      files[ls] = join(dir, `ids${ls}`);
      initLockspace(files[ls]!, ls, 1);
      files[`${ls}r`] = join(dir, `res${ls}`);
      initResource(files[`${ls}r`]!, ls, 'R1');
    }
    const resA2 = join(dir, 'resLSA2');
    initResource(resA2, 'LSA', 'R2');
    const kpOut = join(dir, 'kp.out');
    const kp = join(dir, 'kp.sh');
    // the killpath program: records its arguments and when it ran, then kills the pid it was given
    writeFileSync(kp, `#!/bin/sh\nprintf '%s|' "$@" > ${kpOut}.tmp\ncat /proc/uptime >> ${kpOut}.tmp\nmv ${kpOut}.tmp ${kpOut}\nkill -9 "$3"\n`);
    chmodSync(kp, 0o755);
    const d = await startOurDaemon(join(dir, 'run'), ['-g', String(GRACE)], { SANLOCK_TS_FAULT_FILE: faults });
    const holders: Holder[] = [];
    try {
      for (const ls of ['LSA', 'LSB', 'LSC']) {
        assert.match(await cliAsync(d.env, ['client', 'add_lockspace', '-s', `${ls}:1:${files[ls]}:0`, '-o', '1']), /done 0\n$/);
      }
      const hTerm = await startHolder(d.env, pyAcquire('LSA', 'R1', files.LSAr!), { ignoreTerm: true });
      const hKp = await startHolder(d.env, `sanlock.killpath(${JSON.stringify(kp)}, ["x1", "y 2", str(os.getpid())], fd)\n${pyAcquire('LSA', 'R2', resA2)}`);
      const hB = await startHolder(d.env, pyAcquire('LSB', 'R1', files.LSBr!));
      const hC = await startHolder(d.env, pyAcquire('LSC', 'R1', files.LSCr!));
      holders.push(hTerm, hKp, hB, hC);
      // signals go through pidfds opened at registration (no kill of a recycled pid)
      const fds = readdirSync(`/proc/${d.proc.pid}/fd`).map((f) => {
        try {
          return readlinkSync(`/proc/${d.proc.pid}/fd/${f}`);
        } catch {
          return '';
        }
      });
      assert.ok(fds.filter((l) => l === 'anon_inode:[pidfd]').length >= 4, 'a pidfd per registered client');
      const sA = spaceId(d.stderr(), 'LSA');
      const sB = spaceId(d.stderr(), 'LSB');
      const sC = spaceId(d.stderr(), 'LSC');

      // hang A for good and C for 3.5 s
      const H = monoNow();
      writeFaults(faults, hangForever([files.LSA!, files.LSAr!, resA2, files.LSC!]));
      // the status socket must keep answering while A's I/O hangs
      let statusMax = 0;
      let statusN = 0;
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const t = Date.now();
          const r = await d.cliAsync(['client', 'status']);
          assert.equal(r.status, 0);
          statusMax = Math.max(statusMax, Date.now() - t);
          statusN++;
          await sleep(250);
        }
      })();
      await sleep(3500);
      writeFaults(faults, hangForever([files.LSA!, files.LSAr!, resA2]));
      const cRestored = monoNow();
      const T = diskDeltaTimestamp(files.LSA!, 1);
      assert.ok(T > 0 && T <= H + 0.5, `A's last renewal ${T} before the hang at ${H.toFixed(1)}`);

      const term = await hTerm.exited;
      const kpExit = await hKp.exited;
      await waitFor(() => d.cli(['client', 'log_dump']).stdout.includes(`${sA} free lockspace`), 20_000, 'A freed');
      polling = false;
      await poller;

      const log = parseLog(d.cli(['client', 'log_dump']).stdout);
      const at = (re: RegExp): number => {
        const l = firstLine(log, re);
        assert.ok(l, `log has ${re}`);
        return l.t;
      };
      const warn = at(new RegExp(`^${sA} check_our_lease warning \\d+ last_success ${T}$`));
      const fail = at(new RegExp(`^${sA} check_our_lease failed \\d+$`));
      const sigterm1 = at(new RegExp(`^${sA} kill ${hTerm.pid} sig 15 count 1$`));
      const kpRun = at(new RegExp(`^${sA} kill ${hKp.pid} sig 100 count 1$`));
      const sigkill = at(new RegExp(`^${sA} kill ${hTerm.pid} sig 9 count \\d+$`));
      const clear = at(new RegExp(`^${sA} all pids clear$`));
      const freed = at(new RegExp(`^${sA} free lockspace$`));
      // sanlock's schedule, relative to the last good renewal T (1 s check granularity)
      assert.ok(warn >= T + 6 && warn <= T + 8, `warning at T+${warn - T}`);
      assert.ok(fail >= T + 8 && fail <= T + 10, `failure at T+${fail - T}`);
      assert.ok(sigterm1 >= fail && sigterm1 <= fail + 1, `first SIGTERM at T+${sigterm1 - T}`);
      assert.ok(kpRun >= fail && kpRun <= fail + 1, `killpath at T+${kpRun - T}`);
      assert.ok(sigkill >= T + 8 + GRACE && sigkill <= T + 8 + GRACE + 2, `SIGKILL at T+${sigkill - T}`);
      assert.ok(clear >= sigkill && freed >= clear, 'all pids clear, then free lockspace');
      // SIGTERM repeated once a second until the grace ends, never more than once a second
      const terms = log.filter((l) => new RegExp(`^${sA} kill ${hTerm.pid} sig 15 count`).test(l.msg));
      assert.ok(terms.length >= GRACE - 1 && terms.length <= GRACE + 1, `${terms.length} SIGTERMs`);
      for (const [i, l] of terms.entries()) assert.match(l.msg, new RegExp(`count ${i + 1}$`));
      for (let i = 1; i < terms.length; i++) assert.ok(terms[i]!.t - terms[i - 1]!.t >= 1, 'at most one SIGTERM a second');
      // the killpath runs once only, with the client's args
      assert.equal(log.filter((l) => new RegExp(`kill ${hKp.pid} sig 100`).test(l.msg)).length, 1);
      assert.ok(existsSync(kpOut));
      assert.match(readFileSync(kpOut, 'utf8'), new RegExp(`^x1\\|y 2\\|${hKp.pid}\\|`));
      assert.equal(term.sig, 'SIGKILL');
      assert.equal(kpExit.sig, 'SIGKILL');
      assert.ok(term.t >= T + 8 + GRACE - 0.1, `SIGTERM-ignoring holder died at T+${(term.t - T).toFixed(2)}`);
      assert.ok(kpExit.t < T + 8 + GRACE, 'the killpath did its job inside the grace period');
      // nothing of A after its holders died; nothing at all for B and C
      assert.ok(!log.some((l) => l.msg.startsWith(`${sB} check_our_lease`) || l.msg.startsWith(`${sB} kill`)), 'B untouched');
      assert.ok(!log.some((l) => l.msg.startsWith(`${sC} check_our_lease failed`) || l.msg.startsWith(`${sC} kill`)), 'C not failed');
      // the killed holders' leases were not released on disk (space dead: freed without I/O)
      for (const r of [files.LSAr!, resA2]) {
        assert.match(execFileSync(SANLOCK_BIN, ['direct', 'dump', r], { encoding: 'utf8' }), /\n\s*0+ +LSA +R\d +\d+ 0001 0001 \d+/);
      }
      assert.equal(hB.proc.exitCode, null);
      assert.equal(hC.proc.exitCode, null);
      // B's renewals stayed on time through A's hang
      const tsB = renewalTimestamps(d, 'LSB', files.LSB!).filter((t) => t >= Math.floor(H) - 3);
      assert.ok(tsB.length >= 5, `B renewals ${tsB.join(',')}`);
      let maxGapB = 0;
      for (let i = 1; i < tsB.length; i++) maxGapB = Math.max(maxGapB, tsB[i]! - tsB[i - 1]!);
      assert.ok(maxGapB <= 4, `largest gap between B's renewals ${maxGapB} s`);
      assert.ok(statusN >= 10 && statusMax < 2000, `status answered ${statusN} times, slowest ${statusMax} ms`);
      // C: its renewals resumed after the short hang
      const tsC = renewalTimestamps(d, 'LSC', files.LSC!);
      assert.ok(tsC.some((t) => t > cRestored), `C renewed after its storage came back: ${tsC.join(',')}`);
      const cTs = diskDeltaTimestamp(files.LSC!, 1);
      assert.ok(cTs > cRestored, 'C renewal on disk after the hang');
      console.log(
        `# fencing A (T=${T}): warn T+${warn - T}, fail T+${fail - T}, SIGTERM T+${sigterm1 - T}, killpath T+${kpRun - T}, ` +
          `SIGKILL T+${sigkill - T}, clear T+${clear - T}, freed T+${freed - T}; B max renewal gap ${maxGapB} s; ` +
          `status ${statusN}x max ${statusMax} ms`,
      );
    } finally {
      for (const h of holders) h.kill();
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // sanlock's own recovery tests simulate a stall this way. The daemon runs with -g 10 (so
  // that even a 13 s gap at the resume is inside the graceful window: SIGTERM, not SIGKILL); one
  // holder obeys SIGTERM, the other ignores it. After the resume the renewals succeed again, so
  // the graceful window keeps moving with the new last success: SIGTERM every second, no SIGKILL.
  for (const impl of ['sanlock-ts', 'real sanlock'] as const) {
    test(`${impl}: a daemon stopped (SIGSTOP) past the fail threshold fails the lockspace at once when resumed`, { skip: impl === 'real sanlock' && !haveRealSanlock() }, async () => {
      const dir = scratchDir('fence-stop');
      const ids = join(dir, 'ids');
      const res = join(dir, 'res');
      const res2 = join(dir, 'res2');
      initLockspace(ids, 'LSS', 1);
      initResource(res, 'LSS', 'R1');
      initResource(res2, 'LSS', 'R2');
      const d = impl === 'sanlock-ts' ? await startOurDaemon(join(dir, 'run'), ['-g', String(STOP_GRACE)]) : await startRealDaemon(join(dir, 'run'), ['-g', String(STOP_GRACE)]);
      const holders: Holder[] = [];
      try {
        assert.match(await cliAsync(d.env, ['client', 'add_lockspace', '-s', `LSS:1:${ids}:0`, '-o', '1']), /done 0\n$/);
        const h = await startHolder(d.env, pyAcquire('LSS', 'R1', res));
        const hIgn = await startHolder(d.env, pyAcquire('LSS', 'R2', res2), { ignoreTerm: true });
        holders.push(h, hIgn);
        process.kill(d.proc.pid!, 'SIGSTOP');
        await sleep(10_000);
        const resumed = monoNow();
        process.kill(d.proc.pid!, 'SIGCONT');
        const ex = await h.exited;
        assert.equal(ex.sig, 'SIGTERM');
        assert.ok(ex.t - resumed < 2.5, `holder killed ${(ex.t - resumed).toFixed(2)} s after the resume`);
        // past the point where a still-failing lockspace would have escalated to SIGKILL
        await sleep((8 + STOP_GRACE + 2) * 1000 - (monoNow() - resumed) * 1000);
        const log = parseLog((await cliAsync(d.env, ['client', 'log_dump'])));
        const fail = firstLine(log, /^s\d+ check_our_lease failed \d+$/);
        assert.ok(fail, 'check_our_lease failed logged');
        const gap = Number(/failed (\d+)/.exec(fail.msg)![1]);
        assert.ok(gap >= 10 && gap < 8 + STOP_GRACE, `failed with gap ${gap}`);
        assert.ok(fail.t >= Math.floor(resumed) - 1 && fail.t <= resumed + 2, `failed at ${fail.t}, resumed ${resumed.toFixed(1)}`);
        assert.ok(firstLine(log, new RegExp(`^s\\d+ kill ${h.pid} sig 15 count 1$`)), 'SIGTERM logged');
        const terms = log.filter((l) => new RegExp(`^s\\d+ kill ${hIgn.pid} sig 15 count`).test(l.msg));
        assert.ok(terms.length >= STOP_GRACE + 5, `${terms.length} SIGTERMs to the holder ignoring them`);
        assert.ok(!log.some((l) => new RegExp(`kill ${hIgn.pid} sig 9`).test(l.msg)), 'no SIGKILL once renewals succeed again');
        assert.equal(hIgn.proc.exitCode, null);
        assert.ok(diskDeltaTimestamp(ids, 1) > resumed, 'renewals resumed on disk');
        console.log(`# fencing SIGSTOP (${impl}): ${fail.msg} at resume${fail.t - resumed >= 0 ? '+' : ''}${(fail.t - resumed).toFixed(1)}, holder dead +${(ex.t - resumed).toFixed(2)} s, ${terms.length} SIGTERMs and no SIGKILL to the other`);
      } finally {
        for (const x of holders) x.kill();
        try {
          process.kill(d.proc.pid!, 'SIGCONT');
        } catch {
          /* gone */
        }
        await d.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
