// Operator conveniences of `sanlock-ts client` (not in sanlock): explanations on stderr,
// waiting acquire (CLI --wait and the library's acquire({wait})), add_lockspace progress/--json.
// sanlock's stdout lines must stay as they are; the extras only add stderr (or replace stdout
// with JSON when asked).
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runClient, takeExtraOptions } from '../../src/cli/client.js';
import { SanlockClient, SanlockClientError, socketPath } from '../../src/client/index.js';
import { BUSY_CODES, retryWhileBusy } from '../../src/client/wait.js';
import { explain, formatExplained } from '../../src/lease/explain.js';
import { decodeLeader } from '../../src/ondisk/leader.js';
import { REQ_DISK_MAGIC, SANLK_REQ_FORCE, decodeRequest } from '../../src/ondisk/request.js';
import { type OurDaemon, PYTHON, pyAvailable, startOurDaemon, waitFor } from '../daemon/our-daemon.js';
import { scratchDir } from '../helpers/real-sanlock.js';

const nowhere = mkdtempSync(join(tmpdir(), 'slk-ops-nodaemon-'));

async function ours(args: string[], runDir: string, extra: { errIsTTY?: boolean } = {}) {
  let stdout = '';
  let stderr = '';
  const status = await runClient(args, { write: (s) => (stdout += s), writeErr: (s) => (stderr += s), runDir, isTTY: false, errIsTTY: extra.errIsTTY ?? false });
  return { stdout, stderr, status };
}

describe('extra options', () => {
  test('are taken out before sanlock parses the rest', () => {
    const r = takeExtraOptions(['acquire', '-r', 'A:B:/p:0', '--wait', '3', '--request', 'force', '-p', '7', '--explain']);
    assert.ok(!('error' in r));
    assert.deepEqual(r.rest, ['acquire', '-r', 'A:B:/p:0', '-p', '7']);
    assert.deepEqual(r.extra, { explain: true, wait: 3, request: 'force', progress: false, json: false });
    assert.ok('error' in takeExtraOptions(['acquire', '--wait', 'x']));
    assert.ok('error' in takeExtraOptions(['acquire', '--request', 'kill']));
  });
});

describe('retryWhileBusy', () => {
  test('retries busy results with doubling, capped pauses and stops at the deadline', async () => {
    let t = 0;
    const pauses: number[] = [];
    const results = [-243, -243, -244, -11, -243, -243, -243, -243, -243, -243];
    let n = 0;
    const rv = await retryWhileBusy(async () => results[n++] ?? -243, {
      wait: 12,
      now: () => t,
      random: () => 0.5, // no jitter
      sleep: async (ms) => {
        pauses.push(ms);
        t += ms;
      },
    });
    assert.equal(rv, -243);
    assert.deepEqual(pauses.slice(0, 5), [500, 1000, 2000, 4000, 4500]);
    assert.equal(t, 12_000);
  });
  test('returns at once on success or a non-busy error', async () => {
    for (const code of [0, -22, -2, -19]) {
      let calls = 0;
      const rv = await retryWhileBusy(async () => (calls++ === 0 ? -243 : code), { wait: 5, sleep: async () => undefined });
      assert.equal(rv, code);
      assert.equal(calls, 2);
    }
    assert.ok(BUSY_CODES.has(-243) && BUSY_CODES.has(-11) && !BUSY_CODES.has(-22));
  });
});

describe('explanations', () => {
  test('a failing action keeps sanlock stdout and explains on stderr with --explain', async () => {
    const plain = await ours(['acquire', '-r', 'LS:R1:/dev/null:0', '-p', '77'], nowhere);
    const explained = await ours(['acquire', '-r', 'LS:R1:/dev/null:0', '-p', '77', '--explain'], nowhere);
    assert.equal(plain.status, 1);
    assert.equal(explained.stdout, plain.stdout);
    assert.equal(explained.status, plain.status);
    assert.equal(plain.stderr, '');
    assert.equal(plain.stdout, 'acquire pid 77\nacquire done -2\n');
    // no daemon: -ENOENT is about the socket, not the lease
    const want = `-2 ENOENT: no daemon socket at ${join(nowhere, 'sanlock.sock')}\n  Start the daemon, or point SANLOCK_RUN_DIR at the run dir of the one that is running.`;
    assert.equal(explained.stderr, `${want}\n`);
    // a terminal on stderr gets it without asking
    const tty = await ours(['acquire', '-r', 'LS:R1:/dev/null:0', '-p', '77'], nowhere, { errIsTTY: true });
    assert.equal(tty.stderr, `${want}\n`);
  });
  test('SanlockClientError carries explain() details, code and sentence unchanged', () => {
    const e = new SanlockClientError(-243, 'acquire');
    assert.equal(e.code, -243);
    assert.equal(e.codeName, 'SANLK_ACQUIRE_IDLIVE');
    assert.equal(e.details, explain(-243, { operation: 'acquire' }).details);
    assert.equal(e.explain({ resource: 'R9' }).message, explain(-243, { operation: 'acquire', resource: 'R9' }).message);
  });
});

describe('against our daemon', () => {
  let d: OurDaemon;
  let ids: string;
  let leases: string;
  const bin = resolve('bin/sanlock-ts');
  before(async () => {
    const dir = scratchDir('cli-ops');
    ids = join(dir, 'ids');
    leases = join(dir, 'leases');
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', '1M', leases]);
    execFileSync(process.execPath, [bin, 'direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
    execFileSync(process.execPath, [bin, 'direct', 'init', '-r', `LS:R1:${leases}:0`]);
    d = await startOurDaemon(join(dir, 'run'));
  });
  after(async () => {
    await d?.stop();
  });

  test('add_lockspace --json --progress: one JSON object on stdout, progress on stderr', async () => {
    const r = await ours(['add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1', '--json', '--progress'], d.runDir);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, r.stdout);
    const j = JSON.parse(lines[0]!) as { result: number; seconds: number; lockspace: string };
    assert.equal(j.result, 0);
    assert.equal(j.lockspace, 'LS');
    assert.ok(j.seconds >= 1 && j.seconds < 15, String(j.seconds));
    assert.match(r.stderr, /^add_lockspace: joining LS as host_id 1; expect 2\.\.5 s \(io_timeout 1\), up to \d+ s if the host_id looks held/);
    assert.match(r.stderr, /add_lockspace: joined after [\d.]+ s\n$/);
    // sanlock's text without --json, nothing on stderr when it is not a terminal
    const again = await ours(['add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1'], d.runDir);
    assert.match(again.stdout, /^add_lockspace_timeout 1\nadd_lockspace_timeout done -?\d+\n$/);
    assert.equal(again.stderr, '');
  });

  test('--explain of a daemon result uses the action context', async () => {
    const r = await ours(['acquire', '-r', `LS:R1:${leases}:0`, '-p', '999999', '--explain'], d.runDir);
    const m = /^acquire pid 999999\nacquire done (-\d+)\n$/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.notEqual(Number(m[1]), 0);
    assert.equal(r.stderr, `${formatExplained(explain(Number(m[1]), { operation: 'acquire', lockspace: 'LS', resource: 'R1', pid: 999999 }))}\n`);
  });

  const res = () => ({ lockspace: 'LS', name: 'R1', disks: [{ path: leases, offset: 0 }] });

  test('acquire({wait}) gets the lease once the other client releases it', async () => {
    const c = new SanlockClient(socketPath(d.runDir));
    const a = await c.register();
    const b = await c.register();
    try {
      await a.acquire([res()]);
      const first = await b.acquire([res()]).then(() => 0, (e: SanlockClientError) => e.code);
      // one daemon, two clients: refused before the disk, as sanlock does (-EEXIST, not -243)
      assert.equal(first, -17, `busy code expected, got ${first}`);
      setTimeout(() => void a.release([res()]), 2000);
      const t0 = Date.now();
      await b.acquire([res()], { wait: 10 });
      const took = (Date.now() - t0) / 1000;
      assert.ok(took >= 1.5 && took < 5, `took ${took} s`);
      assert.equal((await b.inquire()).resources[0]?.name, 'R1');
      await b.release([res()]);
    } finally {
      a.close();
      b.close();
    }
  });

  // A registered pid with no lease (python3-sanlock), for the CLI's `acquire -p PID`.
  async function registeredPid(procs: ChildProcess[]): Promise<number> {
    const p = spawn(PYTHON, ['-c', 'import sanlock, time\nfd = sanlock.register()\nprint("READY", flush=True)\ntime.sleep(60)'], { env: d.env, stdio: ['ignore', 'pipe', 'ignore'] });
    procs.push(p);
    let out = '';
    p.stdout!.on('data', (x) => (out += x));
    await waitFor(() => out.includes('READY'), 10_000, 'registered python');
    return p.pid!;
  }
  // `client command` holds R1 for `seconds`, then exits and the daemon releases it.
  async function holdFor(seconds: number, procs: ChildProcess[]): Promise<void> {
    const p = spawn(process.execPath, [bin, 'client', 'command', '-r', `LS:R1:${leases}:0`, '-c', '/bin/sleep', String(seconds)], { env: d.env, stdio: 'ignore' });
    procs.push(p);
    await waitFor(() => /r LS:R1:/.test(d.cli(['client', 'status']).stdout), 10_000, 'holder');
  }

  test('CLI acquire --wait: sanlock lines, success once the holder exits; timeout returns the busy code', { skip: !pyAvailable() }, async () => {
    const procs: ChildProcess[] = [];
    try {
      const pid = await registeredPid(procs);
      await holdFor(3, procs);
      const t0 = Date.now();
      const r = await ours(['acquire', '-r', `LS:R1:${leases}:0`, '-p', String(pid), '--wait', '10', '--explain'], d.runDir);
      const took = (Date.now() - t0) / 1000;
      assert.equal(r.stdout, `acquire pid ${pid}\nacquire done 0\n`);
      assert.equal(r.status, 0);
      assert.ok(took > 1 && took < 7, `took ${took}`);
      // same daemon: the holder is a local client, so the busy code is -EEXIST
      assert.match(r.stderr, /^acquire: busy \(-17\), retrying in [\d.]+ s$/m);
      // now our python pid holds it: a second registered pid waits 2 s in vain
      const pid2 = await registeredPid(procs);
      const t1 = Date.now();
      const late = await ours(['acquire', '-r', `LS:R1:${leases}:0`, '-p', String(pid2), '--wait', '2'], d.runDir);
      const took2 = (Date.now() - t1) / 1000;
      assert.equal(late.stdout, `acquire pid ${pid2}\nacquire done -17\n`);
      assert.equal(late.status, 1);
      assert.ok(took2 >= 1.9 && took2 < 4, `took ${took2}`);
    } finally {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    }
  });

  test('CLI acquire --wait --request force: request for lver + 1, the same-host holder is killed and the waiter gets the lease', { skip: !pyAvailable() }, async () => {
    const procs: ChildProcess[] = [];
    try {
      const holder = await registeredPid(procs);
      const h = await ours(['acquire', '-r', `LS:R1:${leases}:0`, '-p', String(holder), '--wait', '10'], d.runDir);
      assert.equal(h.stdout, `acquire pid ${holder}\nacquire done 0\n`);
      const lver = decodeLeader(readFileSync(leases).subarray(0, 512)).lver;
      const waiter = await registeredPid(procs);
      const r = await ours(['acquire', '-r', `LS:R1:${leases}:0`, '-p', String(waiter), '--wait', '2', '--request', 'force', '--explain'], d.runDir);
      assert.match(r.stderr, /^acquire: force request for R1 sent, result 0$/m);
      const req = decodeRequest(readFileSync(leases).subarray(512, 1024));
      assert.equal(req.magic, REQ_DISK_MAGIC);
      assert.equal(req.lver, lver + 1);
      assert.equal(req.forceMode, SANLK_REQ_FORCE);
      // the holder is on this host: the waiter's EXAMINE makes the daemon act on the force
      // request (kill the holder, release), and the waiter gets the lease
      assert.equal(r.stdout, `acquire pid ${waiter}\nacquire done 0\n`);
      assert.equal(r.status, 0);
      const holderProc = procs[0]!;
      await waitFor(() => holderProc.exitCode !== null || holderProc.signalCode !== null, 5000, 'holder killed');
      assert.match(d.cli(['client', 'status']).stdout, new RegExp(`r LS:R1:[^\n]*:${lver + 1}(:[A-Z]+)? p ${waiter}|p ${waiter}`));
    } finally {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    }
  });

  test('library acquire({wait, request: force}) frees a lease held by another process on this host', { skip: !pyAvailable() }, async () => {
    const procs: ChildProcess[] = [];
    const c = new SanlockClient(socketPath(d.runDir));
    const b = await c.register();
    try {
      const holder = await registeredPid(procs);
      const h = await ours(['acquire', '-r', `LS:R1:${leases}:0`, '-p', String(holder), '--wait', '10'], d.runDir);
      assert.equal(h.stdout, `acquire pid ${holder}\nacquire done 0\n`);
      await b.acquire([res()], { wait: 8, request: 'force' });
      assert.equal((await b.inquire()).resources[0]?.name, 'R1');
      const holderProc = procs[0]!;
      await waitFor(() => holderProc.exitCode !== null || holderProc.signalCode !== null, 5000, 'holder killed');
      await b.release([res()]);
    } finally {
      b.close();
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    }
  });

  test('acquire({wait}) gives up with the busy code after about wait seconds', async () => {
    const c = new SanlockClient(socketPath(d.runDir));
    const a = await c.register();
    const b = await c.register();
    try {
      // the previous test's holder may still be being released: wait for it
      await a.acquire([res()], { wait: 10 });
      const t0 = Date.now();
      const code = await b.acquire([res()], { wait: 2 }).then(() => 0, (e: SanlockClientError) => e.code);
      const took = (Date.now() - t0) / 1000;
      assert.ok(BUSY_CODES.has(code), `got ${code}`);
      assert.ok(took >= 1.9 && took < 4, `took ${took} s`);
    } finally {
      a.close();
      b.close();
    }
  });
});
