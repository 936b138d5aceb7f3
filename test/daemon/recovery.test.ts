// The safety contract (daemon.md §5): when our delta lease is lost, the daemon stops using the
// lockspace and kills the processes holding leases in it; async add/rem, forced shutdown.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scratchDir } from '../helpers/real-sanlock.js';
import { type OurDaemon, PYTHON, pyAvailable, SANLOCK_BIN, startOurDaemon, waitFor } from './our-daemon.js';

const skip = !pyAvailable();
const MiB = 1024 * 1024;

describe('our daemon: lockspace failure and removal', { skip }, () => {
  let d: OurDaemon;
  let dir: string;
  let leases: string;
  const procs: ChildProcess[] = [];

  function holder(code: string): Promise<ChildProcess> {
    const p = spawn(PYTHON, ['-c', `import sanlock, time\nfd = sanlock.register()\n${code}\nprint("READY", flush=True)\ntime.sleep(120)`], {
      env: d.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    procs.push(p);
    let out = '';
    p.stdout!.on('data', (x) => {
      out += x;
    });
    return waitFor(() => out.includes('READY') || p.exitCode !== null, 20_000, 'holder').then(() => {
      if (!out.includes('READY')) throw new Error('holder failed');
      return p;
    });
  }

  before(async () => {
    dir = scratchDir('daemon-rec');
    leases = join(dir, 'leases');
    execFileSync('truncate', ['-s', '2M', leases]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LSA:R1:${leases}:0`]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LSB:R1:${leases}:${MiB}`]);
    d = await startOurDaemon(join(dir, 'run'));
  });

  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await d.stop();
  });

  test('async add, inq WAIT, overwritten delta lease → holder gets killpath then the space is dropped', async () => {
    const ids = join(dir, 'idsA');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSA:0:${ids}:0`, '-o', '1']);
    const r = d.py(`sanlock.add_lockspace(b"LSA", 1, ${JSON.stringify(ids)}, iotimeout=1, wait=False)\nprint(sanlock.inq_lockspace(b"LSA", 1, ${JSON.stringify(ids)}))\nprint(sanlock.inq_lockspace(b"LSA", 1, ${JSON.stringify(ids)}, wait=True))`);
    assert.equal(r.stdout, 'None\nTrue\n', r.stderr);
    const mark = join(dir, 'kp.out');
    const kp = join(dir, 'kp.sh');
    writeFileSync(kp, `#!/bin/sh\necho ran > ${mark}\n`);
    chmodSync(kp, 0o755);
    const h = await holder(`sanlock.killpath(${JSON.stringify(kp)}, [], fd)\nsanlock.acquire(b"LSA", b"R1", [(${JSON.stringify(leases)}, 0)], slkfd=fd)`);
    // somebody else re-initialises the lockspace: our next renewal finds its record overwritten
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSA:0:${ids}:0`, '-o', '1']);
    await waitFor(() => existsSync(mark), 15_000, 'killpath run');
    assert.equal(readFileSync(mark, 'utf8'), 'ran\n');
    assert.match(d.cli(['client', 'log_dump']).stdout, /s\d+ check_our_lease failed \d+/);
    // killpath got no pid argument (no PID flag), so the holder is still alive: kill it ourselves
    h.kill('SIGKILL');
    await waitFor(() => !d.cli(['client', 'gets']).stdout.includes('LSA'), 15_000, 'lockspace dropped');
    assert.match(d.cli(['client', 'log_dump']).stdout, /all pids clear[\s\S]*free lockspace/);
    assert.match(d.cli(['client', 'log_dump']).stdout, /kill \d+ sig 100 count 1/);
    // a failed lockspace is not released on disk: the re-initialised record is left untouched
    assert.doesNotMatch(execFileSync(SANLOCK_BIN, ['direct', 'dump', ids], { encoding: 'utf8' }), / 0001 000\d/);
  });

  test('lost delta lease without killpath: the holder gets SIGTERM; acquires in the failed lockspace get -ENOSPC', async () => {
    const ids = join(dir, 'idsC');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSC:0:${ids}:0`, '-o', '1']);
    const res = join(dir, 'resC');
    execFileSync('truncate', ['-s', '1M', res]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LSC:R1:${res}:0`]);
    assert.match(d.cli(['client', 'add_lockspace', '-s', `LSC:1:${ids}:0`, '-o', '1']).stdout, /done 0\n$/);
    const h = await holder(`sanlock.acquire(b"LSC", b"R1", [(${JSON.stringify(res)}, 0)], slkfd=fd)`);
    const exited = new Promise<string | null>((r) => h.once('exit', (_c, sig) => r(sig)));
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSC:0:${ids}:0`, '-o', '1']);
    const lscDead = (): boolean => {
      const st = d.cli(['client', 'status', '-D']).stdout;
      const block = st.split('\ns LSC:')[1]?.split(/\n[sr] /)[0] ?? '';
      return block.includes('space_dead=1');
    };
    await waitFor(() => lscDead() || h.exitCode !== null, 15_000, 'space dead');
    const other = d.py(`fd = sanlock.register()\ntry:\n    sanlock.acquire(b"LSC", b"R1", [(${JSON.stringify(res)}, 0)], slkfd=fd)\nexcept sanlock.SanlockException as e:\n    print("ERR", e.errno)`);
    assert.match(other.stdout, /ERR 28/);
    assert.equal(await exited, 'SIGTERM');
    assert.match(d.cli(['client', 'log_dump']).stdout, /kill \d+ sig 15 count 1/);
    await waitFor(() => !d.cli(['client', 'gets']).stdout.includes('LSC'), 15_000, 'LSC dropped');
  });

  test('rem_lockspace ASYNC answers at once; shutdown is refused while a lockspace exists; forced shutdown kills holders', async () => {
    const ids = join(dir, 'idsB');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSB:0:${ids}:0`, '-o', '1']);
    assert.match(d.cli(['client', 'add_lockspace', '-s', `LSB:1:${ids}:0`, '-o', '1']).stdout, /done 0\n$/);
    const r = d.py(`sanlock.rem_lockspace(b"LSB", 1, ${JSON.stringify(ids)}, wait=False)\nprint(sanlock.inq_lockspace(b"LSB", 1, ${JSON.stringify(ids)}, wait=True))`);
    assert.equal(r.stdout, 'False\n', r.stderr);
    assert.match(d.cli(['client', 'add_lockspace', '-s', `LSB:1:${ids}:0`, '-o', '1']).stdout, /done 0\n$/);
    const h = await holder(`sanlock.acquire(b"LSB", b"R1", [(${JSON.stringify(leases)}, ${MiB})], slkfd=fd)`);
    const exited = new Promise<string | null>((res) => h.once('exit', (_c, sig) => res(sig)));
    assert.equal(d.cli(['client', 'shutdown']).stdout, 'shutdown force 0 wait 0\nshutdown done 0\n');
    assert.equal(d.cli(['client', 'shutdown', '-w', '1']).stdout, 'shutdown force 0 wait 1\nshutdown done -16\n');
    await new Promise((res) => setTimeout(res, 1200));
    assert.equal(d.proc.exitCode, null, 'plain shutdown is ignored while a lockspace exists');
    const dexit = new Promise<number | null>((res) => d.proc.once('exit', (c) => res(c)));
    d.cli(['client', 'shutdown', '-f', '1']);
    assert.equal(await exited, 'SIGKILL');
    assert.equal(await dexit, 0);
    // our delta lease was released on the way out
    assert.match(execFileSync(SANLOCK_BIN, ['direct', 'dump', ids], { encoding: 'utf8' }), / 0000000000 0001 0002/);
  });
});

describe('our daemon: kill escalation after kill_grace_seconds', { skip }, () => {
  test('a holder that ignores SIGTERM gets SIGKILL once last_success + 8·io + grace has passed', async () => {
    const dir = scratchDir('daemon-grace');
    const ids = join(dir, 'ids');
    const res = join(dir, 'res');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', '1M', res]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSG:0:${ids}:0`, '-o', '1']);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LSG:R1:${res}:0`]);
    const d = await startOurDaemon(join(dir, 'run'), ['-g', '1']);
    let p: ChildProcess | undefined;
    try {
      assert.match(d.cli(['client', 'status', '-D']).stdout, /\n {4}kill_grace_seconds=1\n/);
      assert.match(d.cli(['client', 'add_lockspace', '-s', `LSG:1:${ids}:0`, '-o', '1']).stdout, /done 0\n$/);
      p = spawn(PYTHON, ['-c', `import sanlock, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nfd = sanlock.register()\nsanlock.acquire(b"LSG", b"R1", [(${JSON.stringify(res)}, 0)], slkfd=fd)\nprint("READY", flush=True)\ntime.sleep(120)`], {
        env: d.env,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      p.stdout!.on('data', (x) => {
        out += x;
      });
      await waitFor(() => out.includes('READY'), 20_000, 'holder');
      const exited = new Promise<string | null>((r) => p!.once('exit', (_c, sig) => r(sig)));
      const t0 = Date.now();
      execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSG:0:${ids}:0`, '-o', '1']);
      assert.equal(await exited, 'SIGKILL');
      const ms = Date.now() - t0;
      // the renewal before the overwrite was at most 2 s old: SIGKILL comes 9 s after it
      assert.ok(ms > 5000 && ms < 14_000, `SIGKILL after ${ms} ms`);
      const log = d.cli(['client', 'log_dump']).stdout;
      assert.match(log, /kill \d+ sig 15 count 1\n/);
      assert.match(log, /kill \d+ sig 9 count \d+\n/);
    } finally {
      if (p && p.exitCode === null) p.kill('SIGKILL');
      await d.stop();
    }
  });
});
