#!/usr/bin/env node
// `npm run demo:failover [-- --real | --both] [--json]`: the oVirt SPM + HA-VM failover story on
// one machine, with two daemons standing for two hosts (different run dirs and host ids on the
// same file storage domain, laid out as VDSM lays it out).
//   1. a file domain with two volumes and a VM lease is created (io_timeout 1 s);
//   2. host 1 and host 2 join the domain (add_lockspace async + inq_lockspace wait);
//   3. on host 1 a process takes the SPM lease (SDM) and a "VM" process takes its volume leases
//      and its VM lease (xleases);
//   4. host 1's daemon is SIGKILLed; its SPM and VM processes are killed too, standing for the
//      watchdog reset a real host 1 would get (no wdmd runs here);
//   5. host 2 watches host 1 (get_hosts) and retries the SDM lease every second: sanlock refuses
//      it until host 1 is dead (host_dead = 8 x io_timeout + 60 s after its last renewal), then
//      host 2 becomes SPM and starts the VM (same leases).
// A timeline is printed per daemon kind (ours by default; --real the real sanlock 3.8.5; --both
// both, one after the other). --json adds one JSON line per run with the measured times.
// Needs a built tree (npm run build) and, for --real, /usr/sbin/sanlock and gcc.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);
const lib = await import(join(repo, 'dist/src/client/index.js'));
const IO_TIMEOUT = 1;
const SD = '7c0e9b58-3f1d-4c7a-9a43-2e5f6d8b1a90';

// ---- child role: a process on one host that registers, takes leases and holds them ----
if (process.argv[2] === '--hold') {
  const [, , , runDir, root, what] = process.argv;
  const client = await lib.connect({ runDir });
  const dom = await lib.readDomain(root);
  const reg = await client.register();
  if (what === 'spm') await lib.acquireSpm(reg, dom);
  else {
    await lib.acquireVolumeLeases(reg, dom, dom.volumes.map((v) => v.volume));
    for (const v of dom.vmLeases) await lib.acquireVmLease(reg, dom, v.name);
  }
  process.stdout.write('held\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  await new Promise(() => {});
}

const args = new Set(process.argv.slice(2));
const kinds = args.has('--both') ? ['ours', 'real'] : args.has('--real') ? ['real'] : ['ours'];
const json = args.has('--json');
process.chdir(repo); // the daemon helpers resolve bin/sanlock-ts from the working directory

const { startOurDaemon } = await import(join(repo, 'dist/test/daemon/our-daemon.js'));
const { startRealDaemon, scratchDir } = await import(join(repo, 'dist/test/helpers/real-sanlock.js'));

function holder(runDir, root, what) {
  const p = spawn(process.execPath, [self, '--hold', runDir, root, what], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  const held = new Promise((resolve, reject) => {
    createInterface({ input: p.stdout }).on('line', (l) => { if (l === 'held') resolve(performance.now()); });
    p.once('exit', (code) => reject(new Error(`${what} holder exited with ${code} before holding its leases`)));
  });
  held.catch(() => {});
  return { proc: p, held, kill() { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } } };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runOnce(kind) {
  const base = scratchDir(`demo-failover-${kind}`);
  const start = kind === 'ours' ? startOurDaemon : startRealDaemon;
  const lines = [];
  const daemons = [];
  const holders = [];
  let t0 = 0;
  const say = (l) => { lines.push(l); console.log(l); };
  const at = (ms, what) => say(`  t=${((ms - t0) / 1000).toFixed(1).padStart(6)} s  ${what}`);
  try {
    const layout = lib.fileDomainLayout(join(base, 'mnt'), { sdUUID: SD, volumes: 2, vmLeases: 1, ioTimeout: IO_TIMEOUT });
    await lib.writeDomain(layout);
    const run = [join(base, 'host1'), join(base, 'host2')];
    for (const r of run) mkdirSync(r, { recursive: true });
    daemons.push(await start(run[0], ['-e', 'host1']), await start(run[1], ['-e', 'host2']));
    const c1 = await lib.connect({ runDir: run[0] });
    const c2 = await lib.connect({ runDir: run[1] });
    t0 = performance.now();
    const joined = await Promise.all([1, 2].map(async (id) => {
      await lib.joinDomain(id === 1 ? c1 : c2, layout, id);
      return performance.now();
    }));
    at(joined[0], `host 1 joined domain ${SD.slice(0, 8)}… (host id 1)`);
    at(joined[1], 'host 2 joined (host id 2)');
    const spm1 = holder(run[0], layout.root, 'spm');
    holders.push(spm1);
    at(await spm1.held, 'host 1 took the SPM lease SDM');
    const vm1 = holder(run[0], layout.root, 'vm');
    holders.push(vm1);
    at(await vm1.held, `host 1 started the VM (${layout.volumes.length} volume leases + VM lease)`);
    const joinMs = Math.max(...joined) - t0;

    // host 2 must see host 1 alive before the crash, or "dead" could be a stale first view
    let seen = null;
    for (let i = 0; i < 200 && !(seen = await lib.domainHosts(c2, layout, 1))?.length; i++) await sleep(100);

    t0 = performance.now();
    daemons[0].stop();
    spm1.kill();
    vm1.kill();
    at(t0, "host 1's daemon killed (SIGKILL); its SPM and VM processes killed (the watchdog reset)");

    const reg2 = await c2.register();
    let status = null;
    let lastTs = null;
    let lastChange = t0;
    let firstRefusal = null;
    const times = { fail: null, dead: null, spm: null, vm: null };
    const deadline = t0 + 200_000;
    while (performance.now() < deadline) {
      const h = (await lib.domainHosts(c2, layout, 1))?.[0];
      const now = performance.now();
      if (h) {
        if (lastTs !== null && h.timestamp !== lastTs) lastChange = now;
        lastTs = h.timestamp;
        if (h.status !== status) {
          at(now, `host 2 sees host 1 ${h.status}`);
          status = h.status;
          if (h.status === 'fail' && times.fail === null) times.fail = now - t0;
          if (h.status === 'dead' && times.dead === null) times.dead = now - t0;
        }
      }
      try {
        await lib.acquireSpm(reg2, layout);
        times.spm = performance.now() - t0;
        at(performance.now(), 'host 2 took the SPM lease SDM (host 2 is SPM)');
        break;
      } catch (e) {
        if (!(e instanceof lib.SanlockClientError)) throw e;
        if (firstRefusal === null) {
          firstRefusal = e.code;
          at(performance.now(), `host 2: SDM refused, ${e.codeName} (${e.code}): ${e.sentence}`);
        }
      }
      await sleep(1000);
    }
    if (times.spm === null) throw new Error('host 2 never got the SPM lease');
    const vm2 = holder(run[1], layout.root, 'vm');
    holders.push(vm2);
    times.vm = (await vm2.held) - t0;
    at(t0 + times.vm, 'host 2 started the VM (volume leases + VM lease)');
    const owners = [];
    for (const s of [layout.spm, ...layout.volumes, ...layout.vmLeases]) owners.push(await lib.leaseOwner(c2, layout, s));
    const notHost2 = owners.filter((o) => o.hostId !== 2).map((o) => o.name);
    if (notHost2.length) throw new Error(`after failover not held by host 2: ${notHost2.join(', ')}`);
    at(performance.now(), `host 2 holds all ${owners.length} leases (read_resource_owners)`);
    reg2.close();
    const expectedDead = (lastChange - t0) / 1000 + 8 * IO_TIMEOUT + 60;
    const s = (ms) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);
    say(`  last renewal of host 1 seen by host 2 at t=${((lastChange - t0) / 1000).toFixed(1)} s;` +
      ` host_dead expected at t=${expectedDead.toFixed(1)} s (+ 8 x io_timeout + 60 s)`);
    say(`  failover: fail ${s(times.fail)}, dead ${s(times.dead)}, SPM ${s(times.spm)}, VM ${s(times.vm)} after the kill;` +
      ` SPM - host_dead = ${times.dead === null ? '-' : s(times.spm - times.dead)}`);
    return {
      kind,
      lines,
      result: {
        kind,
        ioTimeout: IO_TIMEOUT,
        joinMs: Math.round(joinMs),
        lastRenewalSeenMs: Math.round(lastChange - t0),
        expectedDeadMs: Math.round(expectedDead * 1000),
        failMs: times.fail === null ? null : Math.round(times.fail),
        deadMs: times.dead === null ? null : Math.round(times.dead),
        spmMs: Math.round(times.spm),
        vmMs: Math.round(times.vm),
        firstRefusal,
      },
    };
  } finally {
    for (const h of holders) h.kill();
    for (const d of daemons) await d.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

let failed = false;
for (const kind of kinds) {
  console.log(`== failover with ${kind === 'ours' ? 'our daemon (sanlock-ts)' : 'the real sanlock 3.8.5 daemon'}, io_timeout ${IO_TIMEOUT} s ==`);
  try {
    const r = await runOnce(kind);
    if (json) console.log(JSON.stringify(r.result));
  } catch (e) {
    failed = true;
    console.error(`${kind}: ${e instanceof Error ? e.message : e}`);
  }
  console.log();
}
process.exit(failed ? 1 : 0);
