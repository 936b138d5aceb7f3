#!/usr/bin/env node
// The README's main job: a newcomer's first run, on nothing but local files.
// 1. initialise a lockspace and three resource leases in plain files (`direct init`);
// 2. start `sanlock-ts daemon` with a private run dir (no root paths, no watchdog);
// 3. join host 1 (`client add_lockspace`, io_timeout 1 s so the join takes ~2 s);
// 4. a client process registers and takes two leases (EX and SH) through the library;
// 5. `client status`, `client host_status` and `direct dump` show the result; then shut down.
// Needs a built tree (`npm ci` builds it). Files go on a real filesystem: lease I/O uses O_DIRECT.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repo, 'bin', 'sanlock-ts');
const TMPFS_MAGIC = 0x01021994;

function baseDir() {
  const envTmp = process.env.TMPDIR || tmpdir();
  try {
    if (statfsSync(envTmp).type !== TMPFS_MAGIC) return envTmp;
  } catch { /* fall through to the repo */ }
  const local = join(repo, '.test-tmp');
  mkdirSync(local, { recursive: true });
  return local;
}

const dir = mkdtempSync(join(baseDir(), 'sanlock-ts-demo-'));
const runDir = join(dir, 'run');
const env = { ...process.env, SANLOCK_RUN_DIR: runDir };

function run(args, { allowFail = false } = {}) {
  console.log(`$ sanlock-ts ${args.join(' ')}`);
  try {
    process.stdout.write(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', env }));
  } catch (e) {
    process.stdout.write(e.stdout ?? '');
    if (!allowFail) throw new Error(`sanlock-ts ${args.slice(0, 2).join(' ')} failed with exit status ${e.status}`);
  }
  console.log();
}

async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let daemon;
let client;
try {
  const ids = join(dir, 'ids');
  const leases = join(dir, 'leases');
  for (const [f, size] of [[ids, 1 << 20], [leases, 3 << 20]]) {
    writeFileSync(f, '');
    truncateSync(f, size);
  }
  console.log(`# lease files in ${dir}\n`);
  run(['direct', 'init', '-s', `demo:0:${ids}:0`, '-o', '1']);
  for (const [i, name] of ['vm1', 'vm2', 'vm3'].entries()) run(['direct', 'init', '-r', `demo:${name}:${leases}:${i}M`]);

  mkdirSync(runDir);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  console.log(`$ sanlock-ts daemon -D -w 0 -l 0 -U ${uid} -G ${gid} &    # SANLOCK_RUN_DIR=${runDir}\n`);
  daemon = spawn(process.execPath, [cli, 'daemon', '-D', '-w', '0', '-l', '0', '-U', String(uid), '-G', String(gid)], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let daemonLog = '';
  daemon.stderr.on('data', (d) => { daemonLog += d; });
  await waitFor(() => existsSync(join(runDir, 'sanlock.sock')) || daemon.exitCode !== null, 15_000, 'the daemon socket');
  if (daemon.exitCode !== null) throw new Error(`daemon exited:\n${daemonLog}`);

  const t0 = Date.now();
  run(['client', 'add_lockspace', '-s', `demo:1:${ids}:0`, '-o', '1']);
  console.log(`# host 1 joined lockspace "demo" in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

  // A lease belongs to a registered process: this script registers itself through the library.
  process.env.SANLOCK_RUN_DIR = runDir;
  const { connect } = await import(join(repo, 'dist', 'src', 'client', 'index.js'));
  client = await (await connect()).register();
  await client.acquire([{ lockspace: 'demo', name: 'vm1', disks: [{ path: leases, offset: 0 }] }]);
  await client.acquire([{ lockspace: 'demo', name: 'vm2', disks: [{ path: leases, offset: 1 << 20 }], shared: true }]);
  console.log(`# pid ${process.pid} holds demo:vm1 (exclusive) and demo:vm2 (shared)\n`);

  run(['client', 'status']);
  // Host states come from renewal reads; the first renewal is 2·io_timeout after the join.
  await new Promise((r) => setTimeout(r, 2500));
  run(['client', 'host_status', '-s', 'demo']);
  run(['direct', 'dump', `${leases}:0:3M`]);
  run(['cluster', 'status', '-s', `demo:0:${ids}:0`, '-r', `demo:vm1:${leases}:0`, '-r', `demo:vm2:${leases}:1M`, '-r', `demo:vm3:${leases}:2M`]);

  await client.release([{ lockspace: 'demo', name: 'vm1', disks: [{ path: leases, offset: 0 }] }]);
  await client.release([{ lockspace: 'demo', name: 'vm2', disks: [{ path: leases, offset: 1 << 20 }] }]);
  client.close();
  client = undefined;
  run(['client', 'rem_lockspace', '-s', `demo:1:${ids}:0`]);
  run(['client', 'shutdown']);
  await waitFor(() => daemon.exitCode !== null, 10_000, 'the daemon to exit');
  daemon = undefined;
  console.log('# done: leases released, host 1 left the lockspace, daemon stopped');
} finally {
  if (client) client.close();
  if (daemon && daemon.exitCode === null) {
    try { process.kill(-daemon.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  rmSync(dir, { recursive: true, force: true });
}
