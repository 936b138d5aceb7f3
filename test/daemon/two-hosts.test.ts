// Our daemon (host 1) and the real sanlock 3.8.5 daemon (host 2) on one lockspace: host states,
// lease contention, host events in both directions, and a FORCE request from us that the real
// daemon acts on.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RealDaemon, scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';
import { type OurDaemon, PYTHON, pyAvailable, SANLOCK_BIN, startOurDaemon, waitFor } from './our-daemon.js';

const skip = !pyAvailable();
const MiB = 1024 * 1024;

describe('our daemon next to the real sanlock daemon', { skip }, () => {
  let ours: OurDaemon;
  let real: RealDaemon;
  let ids: string;
  let leases: string;
  const procs: ChildProcess[] = [];

  function py(env: NodeJS.ProcessEnv, code: string): { stdout: string; status: number; stderr: string } {
    try {
      const stdout = execFileSync(PYTHON, ['-c', `import sanlock, os, sys, time\n${code}`], { env, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
      return { stdout, status: 0, stderr: '' };
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; status?: number };
      return { stdout: err.stdout ?? '', stderr: err.stderr ?? '', status: err.status ?? 1 };
    }
  }

  before(async () => {
    const dir = scratchDir('daemon-2h');
    ids = join(dir, 'ids');
    leases = join(dir, 'leases');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', '2M', leases]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R1:${leases}:0`]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R2:${leases}:${MiB}`]);
    ours = await startOurDaemon(join(dir, 'run-ours'), ['-e', 'hostOurs']);
    real = await startRealDaemon(join(dir, 'run-real'), ['-e', 'hostReal']);
    const a = new Promise<string>((r) => {
      const p = spawn(SANLOCK_BIN, ['client', 'add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1'], { env: ours.env });
      let o = '';
      p.stdout.on('data', (x) => {
        o += x;
      });
      p.on('exit', () => r(o));
    });
    const b = real.cli(['client', 'add_lockspace', '-s', `LS:2:${ids}:0`, '-o', '1']).stdout;
    assert.match(b, /done 0\n$/);
    assert.match(await a, /done 0\n$/);
  });

  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await ours?.stop();
    await real?.stop();
  });

  test('each daemon sees the other host LIVE', async () => {
    await waitFor(() => /h 2 gen 1 timestamp \d+ LIVE/.test(ours.cli(['client', 'gets', '-h', '1']).stdout), 15_000, 'ours sees host 2 live');
    await waitFor(() => /h 1 gen 1 timestamp \d+ LIVE/.test(real.cli(['client', 'gets', '-h', '1']).stdout), 15_000, 'real sees host 1 live');
  });

  test('a lease held through the real daemon is refused to us with -243; then a FORCE request kills its holder', async () => {
    const holder = spawn(PYTHON, ['-c', `import sanlock, time\nfd = sanlock.register()\nsanlock.acquire(b"LS", b"R1", [(${JSON.stringify(leases)}, 0)], slkfd=fd)\nprint("READY", flush=True)\ntime.sleep(120)`], {
      env: real.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    procs.push(holder);
    let out = '';
    holder.stdout.on('data', (x) => {
      out += x;
    });
    await waitFor(() => out.includes('READY'), 20_000, 'real holder');
    const exited = new Promise<string | null>((r) => holder.once('exit', (_c, sig) => r(sig)));
    const r = py(ours.env, `fd = sanlock.register()\ntry:\n    sanlock.acquire(b"LS", b"R1", [(${JSON.stringify(leases)}, 0)], slkfd=fd)\n    print("ACQUIRED")\nexcept sanlock.SanlockException as e:\n    print("ERR", e.errno)`);
    assert.match(r.stdout, /ERR -24[35]/);
    const req = ours.cli(['client', 'request', '-r', `LS:R1:${leases}:0:2`, '-f', '1']);
    assert.match(req.stdout, /request done 0\n$/);
    // the real daemon sees our bitmap bit at its next renewal read and SIGKILLs its holder
    const sig = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000))]);
    assert.equal(sig, 'SIGKILL');
  });

  test('host events: real → ours and ours → real', async () => {
    const waitEvent = (env: NodeJS.ProcessEnv, send: () => void): Promise<string> =>
      new Promise((resolve) => {
        const p = spawn(PYTHON, ['-c', `import sanlock, time\nefd = sanlock.reg_event(b"LS")\nprint("REG", flush=True)\nend = time.time() + 20\nwhile time.time() < end:\n    ev = sanlock.get_event(efd)\n    if ev:\n        print("EV", ev, flush=True)\n        break\n    time.sleep(0.2)\nsanlock.end_event(efd, b"LS")\nprint("END", flush=True)`], {
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        procs.push(p);
        let o = '';
        p.stdout.on('data', (x) => {
          o += x;
          if (o.includes('REG') && !o.includes('SENT')) {
            o += 'SENT';
            send();
          }
        });
        p.stderr.on('data', (x) => {
          o += x;
        });
        p.on('exit', () => resolve(o));
      });
    const got1 = await waitEvent(ours.env, () => {
      const r = real.cli(['client', 'set_event', '-s', 'LS', '-i', '1', '-e', '5', '-d', '7']);
      assert.match(r.stdout, /set_event done 0\n$/);
    });
    assert.match(got1, /EV \[\{'from_host_id': 2, 'from_generation': 1, 'host_id': 1, 'generation': 0, 'event': 5, 'data': 7\}/);
    assert.match(got1, /END/);
    const got2 = await waitEvent(real.env, () => {
      const r = ours.cli(['client', 'set_event', '-s', 'LS', '-i', '2', '-e', '6', '-d', '8']);
      assert.match(r.stdout, /set_event done 0\n$/);
    });
    assert.match(got2, /EV \[\{'from_host_id': 1, 'from_generation': 1, 'host_id': 2, 'generation': 0, 'event': 6, 'data': 8\}/);
    // a different event while the first is still announced
    assert.match(ours.cli(['client', 'set_event', '-s', 'LS', '-i', '2', '-e', '9', '-d', '8']).stdout, /set_event done -16\n$/);
    // CLEAR_HOSTID stops asking host 2 (sanlock resets that host's bit time; no error)
    const clr = py(ours.env, 'sanlock.set_event(b"LS", 2, 0, 0, 0, flags=sanlock.SETEV_CLEAR_HOSTID)\nprint("CLEARED")');
    assert.match(clr.stdout, /CLEARED/, clr.stderr);
  });

  test('acquires in parallel while status keeps answering', async () => {
    const t0 = Date.now();
    const r = py(ours.env, `import subprocess, threading\nfd = sanlock.register()\nres = {}\ndef st():\n    res["st"] = subprocess.run(["${SANLOCK_BIN}","client","status"],capture_output=True,text=True).stdout\nth = threading.Thread(target=st); th.start()\nsanlock.acquire(b"LS", b"R2", [(${JSON.stringify(leases)}, ${MiB})], slkfd=fd)\nth.join()\nprint("OK", "daemon hostOurs" in res["st"])`);
    assert.match(r.stdout, /OK True/, r.stderr);
    assert.ok(Date.now() - t0 < 10_000);
  });
});
