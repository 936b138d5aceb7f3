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
//   5. host 2 watches host 1 (get_hosts, polled on its own) and asks for the SDM lease, again
//      each second after a refusal: the daemon refuses (-243) or waits inside the acquire until
//      host 1 is dead (host_dead = 8 x io_timeout + 60 s after its last renewal), then host 2 is
//      SPM and starts the VM (same leases).
// Before the kill the demo waits until host 2 has seen host 1 LIVE (a renewal observed), so
// that host 2 counts host_dead from host 1's last renewal. The reference for "earliest legal
// moment" is host 1's last renewal as written in its delta lease (CLOCK_MONOTONIC seconds, the
// clock both daemons use) + host_dead; the demo fails if the SPM lease is taken before it.
// A timeline is printed per daemon kind (ours by default; --real the real sanlock 3.8.5; --both
// both, one after the other). --json adds one JSON line per run with the measured times.
// Needs a built tree (npm run build) and, for --real, /usr/sbin/sanlock and gcc.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);
const lib = await import(join(repo, 'dist/src/client/index.js'));
const IO_TIMEOUT = 1;
/** sanlock's host_dead_seconds: id_renewal_fail_seconds (8 x io_timeout) + watchdog fire timeout (60) */
const HOST_DEAD = 8 * IO_TIMEOUT + 60;
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
const { openDirectDisk } = await import(join(repo, 'dist/src/storage/direct-disk.js'));
const { decodeLeader } = await import(join(repo, 'dist/src/ondisk/leader.js'));

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

const monoMs = () => Number(process.hrtime.bigint() / 1_000_000n); // CLOCK_MONOTONIC, as delta-lease timestamps

/** Host `id`'s delta-lease record on `ids`: its last renewal, in CLOCK_MONOTONIC seconds. */
async function lastRenewal(layout, id) {
  const disk = await openDirectDisk(layout.idsPath, { sectorSize: layout.sector, readOnly: true });
  try {
    return decodeLeader(await disk.read((id - 1) * layout.sector, layout.sector, 10_000), 0).timestamp;
  } finally {
    await disk.close();
  }
}

async function runOnce(kind) {
  const base = scratchDir(`demo-failover-${kind}`);
  const start = kind === 'ours' ? startOurDaemon : startRealDaemon;
  const lines = [];
  const daemons = [];
  const holders = [];
  let t0 = 0;
  const say = (l) => { lines.push(l); console.log(l); };
  const at = (ms, what) => say(`  t=${((ms - t0) / 1000).toFixed(1).padStart(6)} s  ${what}`);
  let statusLoop = null;
  let stop = false;
  try {
    const layout = lib.fileDomainLayout(join(base, 'mnt'), { sdUUID: SD, volumes: 2, vmLeases: 1, ioTimeout: IO_TIMEOUT });
    await lib.writeDomain(layout);
    const dom = await lib.readDomain(layout.root);
    const run = [join(base, 'host1'), join(base, 'host2')];
    for (const r of run) mkdirSync(r, { recursive: true });
    daemons.push(await start(run[0], ['-e', 'host1']), await start(run[1], ['-e', 'host2']));
    const c1 = await lib.connect({ runDir: run[0] });
    const c2 = await lib.connect({ runDir: run[1] });
    t0 = performance.now();
    say(`  (domain ${layout.root}, io_timeout ${dom.ioTimeout} s read from ids: host_dead = 8 x ${dom.ioTimeout} + 60 = ${HOST_DEAD} s)`);
    // joinDomain passes the domain's io_timeout to add_lockspace, as vdsm's clusterlock does
    const joined = await Promise.all([1, 2].map(async (id) => {
      await lib.joinDomain(id === 1 ? c1 : c2, dom, id);
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

    // Host 2 must have seen host 1 renew (LIVE, not UNKNOWN) before the crash: only then does it
    // count host_dead from host 1's last renewal instead of from its own first look.
    // lastTs/lastChange: host 1's timestamp in host 2's view and when it last changed there
    // (≈ host 2's last_live for host 1, to within the 100-250 ms polling)
    let before = null;
    let lastTs = null;
    let lastChange = null;
    for (let i = 0; i < 300; i++) {
      before = (await lib.domainHosts(c2, dom, 1))?.[0];
      if (before && lastTs !== null && before.timestamp !== lastTs) lastChange = performance.now();
      if (before) lastTs = before.timestamp;
      if (before?.status === 'live') {
        lastChange ??= performance.now(); // live at the first look: the change was at or before now
        break;
      }
      await sleep(100);
    }
    if (before?.status !== 'live') throw new Error(`host 2 never saw host 1 live (last status ${before?.status ?? 'unavailable'})`);
    at(performance.now(), 'host 2 sees host 1 live');

    t0 = performance.now();
    const killMono = monoMs();
    await daemons[0].stop();
    // stopped once only: the real-daemon helper's stop() waits for an 'exit' that a SIGKILLed
    // process has already emitted
    daemons[0] = null;
    spm1.kill();
    vm1.kill();
    at(t0, "host 1's daemon killed (SIGKILL); its SPM and VM processes killed (the watchdog reset)");
    const renewedMs = (await lastRenewal(dom, 1)) * 1000 - killMono;
    const legalMs = renewedMs + HOST_DEAD * 1000;
    at(t0 + renewedMs, `(host 1's last renewal, its delta-lease timestamp; host_dead at t=${(legalMs / 1000).toFixed(1)} s)`);

    const times = { fail: null, dead: null, spm: null, vm: null };
    // host 2's view of host 1 (get_hosts), polled while the SPM attempts block in the daemon
    statusLoop = (async () => {
      let status = before.status;
      while (!stop) {
        const h = (await lib.domainHosts(c2, dom, 1))?.[0];
        const now = performance.now();
        if (h) {
          if (lastTs !== null && h.timestamp !== lastTs) lastChange = now;
          lastTs = h.timestamp;
          if (h.status !== status) {
            at(now, `host 2 sees host 1 ${h.status.toUpperCase()}`);
            status = h.status;
            if (h.status === 'fail' && times.fail === null) times.fail = now - t0;
            if (h.status === 'dead' && times.dead === null) times.dead = now - t0;
          }
        }
        await sleep(250);
      }
    })();

    const reg2 = await c2.register();
    let firstRefusal = null;
    let attempts = 0;
    const deadline = t0 + (HOST_DEAD + 60) * 1000;
    while (performance.now() < deadline) {
      attempts++;
      try {
        // like vdsm's SPM start: one acquire; the daemon itself waits while the owner may live
        await lib.acquireSpm(reg2, dom);
        times.spm = performance.now() - t0;
        at(performance.now(), 'host 2 took the SPM lease SDM (host 2 is SPM)');
        break;
      } catch (e) {
        if (!(e instanceof lib.SanlockClientError)) throw e;
        if (firstRefusal === null) {
          firstRefusal = e.code;
          at(performance.now(), `host 2: SDM refused, ${e.codeName} (${e.code}): ${e.sentence}; retrying every second`);
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
    for (const s of [dom.spm, ...dom.volumes, ...dom.vmLeases]) owners.push(await lib.leaseOwner(c2, dom, s));
    const notHost2 = owners.filter((o) => o.hostId !== 2).map((o) => o.name);
    if (notHost2.length) throw new Error(`after failover not held by host 2: ${notHost2.join(', ')}`);
    at(performance.now(), `host 2 holds all ${owners.length} leases (read_resource_owners + get_hosts, as vdsm's inquire)`);
    reg2.close();
    stop = true;
    await statusLoop;
    const s = (ms) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);
    const margin = times.spm - legalMs;
    if (margin < 0) throw new Error(`SPM lease taken ${s(-margin)} before host_dead: unsafe`);
    say(`  summary: host 1 last renewed at ${s(renewedMs)}, host_dead at ${s(legalMs)}; host 2 saw FAIL at ${s(times.fail)},` +
      ` DEAD at ${s(times.dead)}; SPM at ${s(times.spm)} (host_dead + ${s(margin)}), VM at ${s(times.vm)} (host_dead + ${s(times.vm - legalMs)})`);
    return {
      kind,
      lines,
      result: {
        kind,
        ioTimeout: dom.ioTimeout,
        hostDeadSeconds: HOST_DEAD,
        joinMs: Math.round(joinMs),
        lastRenewalMs: Math.round(renewedMs),
        hostDeadMs: Math.round(legalMs),
        host2LastLiveMs: lastChange === null ? null : Math.round(lastChange - t0),
        // host 2's own deadline (its last_live + host_dead) and how long after it the SPM came
        spmAfterHost2DeadlineMs: lastChange === null ? null : Math.round(times.spm - (lastChange - t0) - HOST_DEAD * 1000),
        failMs: times.fail === null ? null : Math.round(times.fail),
        deadMs: times.dead === null ? null : Math.round(times.dead),
        spmMs: Math.round(times.spm),
        vmMs: Math.round(times.vm),
        spmAfterHostDeadMs: Math.round(margin),
        vmAfterHostDeadMs: Math.round(times.vm - legalMs),
        spmAttempts: attempts,
        firstRefusal,
      },
    };
  } finally {
    stop = true;
    await statusLoop?.catch(() => undefined);
    for (const h of holders) h.kill();
    for (const d of daemons) await d?.stop();
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
