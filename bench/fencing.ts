// Fencing timeline (issue 5): how long after our host's storage hangs each recovery step
// happens, measured from the last good renewal T and compared with sanlock's schedule
// (daemon.md §3, §5), with io_timeout 1 and the default kill_grace_seconds 40:
//   warning T+6, failure T+8, SIGTERM / killpath T+8, SIGKILL T+48, other hosts T+68.
// The other hosts are a second sanlock-ts daemon and the real sanlock daemon, in the same run
// (the real one's acquire time is the reference). The watchdog part runs alongside with
// io_timeout 2 and the real wdmd on a fake device (with 1 wdmd never pets at all).
// About 80 s; `node dist/bench/main.js fencing` runs only this.
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchCase, Row } from './main.js';
import { haveRealSanlock, scratchDir, startRealDaemon, type RealDaemon } from '../test/helpers/real-sanlock.js';
import { haveWdmd, startWdmdWithFakeDevice } from '../test/helpers/fake-watchdog/index.js';
import { pyAvailable, startOurDaemon, waitFor, type OurDaemon } from '../test/daemon/our-daemon.js';
import {
  acquireLoop,
  diskDeltaTimestamp,
  firstLine,
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
} from '../test/fencing/fencing-helpers.js';

function cliAsync(env: NodeJS.ProcessEnv, args: string[]): Promise<string> {
  return import('node:child_process').then(
    ({ spawn }) =>
      new Promise<string>((ok) => {
        const p = spawn('/usr/sbin/sanlock', args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
        let s = '';
        p.stdout.on('data', (x) => {
          s += x;
        });
        p.on('exit', () => ok(s));
      }),
  );
}

async function killTimeline(): Promise<Row[]> {
  const dir = scratchDir('bench-fence');
  const ids = join(dir, 'ids');
  const r1 = join(dir, 'r1');
  const r2 = join(dir, 'r2');
  const faults = join(dir, 'faults.json');
  writeFaults(faults, []);
  initLockspace(ids, 'LSF', 1);
  initResource(r1, 'LSF', 'R1');
  initResource(r2, 'LSF', 'R2');
  const kp = join(dir, 'kp.sh');
  writeFileSync(kp, '#!/bin/sh\nkill -9 "$1"\n');
  chmodSync(kp, 0o755);
  const withReal = haveRealSanlock();
  let d1: OurDaemon | undefined;
  let d2: OurDaemon | undefined;
  let real: RealDaemon | undefined;
  const holders: Holder[] = [];
  const loops: ReturnType<typeof acquireLoop>[] = [];
  try {
    d1 = await startOurDaemon(join(dir, 'run1'), [], { SANLOCK_TS_FAULT_FILE: faults });
    d2 = await startOurDaemon(join(dir, 'run2'));
    if (withReal) real = await startRealDaemon(join(dir, 'run3'));
    const adds = [
      d1.cliAsync(['client', 'add_lockspace', '-s', `LSF:1:${ids}:0`, '-o', '1']).then((r) => r.stdout),
      d2.cliAsync(['client', 'add_lockspace', '-s', `LSF:2:${ids}:0`, '-o', '1']).then((r) => r.stdout),
    ];
    if (real) adds.push(cliAsync(real.env, ['client', 'add_lockspace', '-s', `LSF:3:${ids}:0`, '-o', '1']));
    const out = await Promise.all(adds);
    if (!out.every((o) => /done 0\n$/.test(o))) throw new Error(`add_lockspace: ${out.join(' | ')}`);
    const hTerm = await startHolder(d1.env, pyAcquire('LSF', 'R1', r1), { ignoreTerm: true });
    const hKp = await startHolder(d1.env, `sanlock.killpath(${JSON.stringify(kp)}, [str(os.getpid())], fd)\n${pyAcquire('LSF', 'R2', r2)}`);
    holders.push(hTerm, hKp);
    await sleep(3000); // the other hosts see host 1 renewing
    const H = monoNow();
    writeFaults(faults, hangForever([ids, r1, r2]));
    await sleep(1500);
    const T = diskDeltaTimestamp(ids, 1);
    const ours = acquireLoop(d2.env, 'LSF', 'R1', r1);
    loops.push(ours);
    const theirs = real ? acquireLoop(real.env, 'LSF', 'R2', r2) : undefined;
    if (theirs) loops.push(theirs);
    const [term, kpd, got2, got3] = await Promise.all([hTerm.exited, hKp.exited, ours.done, theirs?.done]);
    await waitFor(() => /free lockspace/.test(d1!.cli(['client', 'log_dump']).stdout), 20_000, 'lockspace freed');
    const log = parseLog(d1.cli(['client', 'log_dump']).stdout);
    const at = (re: RegExp): number => firstLine(log, re)?.t ?? NaN;
    const rows: Row[] = [
      { metric: 'hang after last renewal T', value: H - T, unit: 's', note: 'T = last timestamp on disk' },
      { metric: 'check_our_lease warning', value: at(/check_our_lease warning/) - T, unit: 's', ref: { name: 'timeline', value: 6 } },
      { metric: 'check_our_lease failed', value: at(/check_our_lease failed/) - T, unit: 's', ref: { name: 'timeline', value: 8 } },
      { metric: 'first SIGTERM', value: at(new RegExp(`kill ${hTerm.pid} sig 15 count 1$`)) - T, unit: 's', ref: { name: 'timeline', value: 8 } },
      { metric: 'killpath run', value: at(new RegExp(`kill ${hKp.pid} sig 100 count 1$`)) - T, unit: 's', ref: { name: 'timeline', value: 8 } },
      { metric: 'killpath holder dead', value: kpd.t - T, unit: 's', ref: { name: 'timeline', value: 8 } },
      { metric: 'SIGKILL', value: at(new RegExp(`kill ${hTerm.pid} sig 9 count`)) - T, unit: 's', ref: { name: 'timeline', value: 48 } },
      { metric: 'SIGTERM-ignoring holder dead', value: term.t - T, unit: 's', ref: { name: 'timeline', value: 48 } },
      { metric: 'all pids clear', value: at(/all pids clear/) - T, unit: 's', ref: { name: 'timeline', value: 48 } },
      { metric: 'sanlock-ts host 2 holds R1', value: got2.t - T, unit: 's', ref: { name: 'host_dead', value: 68 } },
    ];
    if (got3) rows.push({ metric: 'real sanlock host 3 holds R2', value: got3.t - T, unit: 's', ref: { name: 'host_dead', value: 68 } });
    else rows.push({ metric: 'real sanlock host 3', value: NaN, unit: '', note: 'real sanlock not installed' });
    return rows;
  } finally {
    for (const l of loops) killGroup(l.proc);
    for (const h of holders) h.kill();
    await d1?.stop();
    await d2?.stop();
    await real?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function watchdogTimeline(): Promise<Row[]> {
  if (!haveWdmd()) return [{ metric: 'watchdog', value: NaN, unit: '', note: 'wdmd or gcc missing' }];
  const io = 2;
  const dir = scratchDir('bench-fence-wd');
  const ids = join(dir, 'ids');
  const res = join(dir, 'res');
  const faults = join(dir, 'faults.json');
  writeFaults(faults, []);
  initLockspace(ids, 'LSW', io);
  initResource(res, 'LSW', 'R1');
  const wd = await startWdmdWithFakeDevice({ fireSeconds: 12 });
  let d: OurDaemon | undefined;
  let h: Holder | undefined;
  try {
    d = await startOurDaemon(join(dir, 'run'), ['-w', '1'], { SANLOCK_TS_WDMD_SOCK: wd.socketPath, SANLOCK_TS_FAULT_FILE: faults });
    const a = d.cli(['client', 'add_lockspace', '-s', `LSW:1:${ids}:0`, '-o', String(io)]).stdout;
    if (!/done 0\n$/.test(a)) throw new Error(`add_lockspace: ${a}`);
    h = await startHolder(d.env, pyAcquire('LSW', 'R1', res), { ignoreTerm: true });
    await waitFor(() => wd.events().some((e) => e.event === 'keepalive'), 15_000, 'keepalive');
    writeFaults(faults, hangForever([ids, res]));
    await sleep(1500);
    const T = diskDeltaTimestamp(ids, 1);
    await waitFor(() => wd.events().some((e) => e.event === 'fired'), 40_000, 'fake fire');
    const ev = wd.events();
    const ka = ev.filter((e) => e.event === 'keepalive');
    const last = ka[ka.length - 1]!;
    return [
      { metric: 'io 2: last wdmd keepalive', value: last.t - T, unit: 's', ref: { name: 'expiry', value: 8 * io }, note: 'must be < expiry' },
      { metric: 'io 2: watchdog reset (last keepalive + 60)', value: last.t + 60 - T, unit: 's', ref: { name: 'host_dead', value: 8 * io + 60 }, note: 'must be < host_dead' },
    ];
  } finally {
    h?.kill();
    await d?.stop();
    await wd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const cases: BenchCase[] = [
  {
    name: 'fencing',
    async run(): Promise<Row[]> {
      if (!pyAvailable()) return [{ metric: 'skipped', value: NaN, unit: '', note: 'python3-sanlock or sanlock missing' }];
      const [a, b] = await Promise.all([killTimeline(), watchdogTimeline()]);
      return [...a, ...b];
    },
  },
];
