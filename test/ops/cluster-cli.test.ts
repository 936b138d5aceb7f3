// `sanlock-ts cluster status` on real files (O_DIRECT): golden images written by sanlock 3.8.5,
// areas made by `/usr/sbin/sanlock direct init`, bad input, and a live lockspace of the real daemon.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { runCluster } from '../../src/cli/cluster.js';
import type { ClusterView } from '../../src/ops/cluster-view.js';
import { haveRealSanlock, SANLOCK_BIN, scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';
import { VECTORS_DIR } from '../helpers/paths.js';

const VECTORS = VECTORS_DIR;
const MIB = 1024 * 1024;

interface Run {
  status: number;
  out: string;
  err: string;
}

async function cluster(args: string[], sleeps?: number[]): Promise<Run> {
  let out = '';
  let err = '';
  const io = {
    out: (s: string) => { out += s; },
    err: (s: string) => { err += s; },
    ...(sleeps ? { sleep: async (ms: number) => { sleeps.push(ms); return true; } } : {}),
  };
  const status = await runCluster(args, io);
  return { status, out, err };
}

function json(r: Run): ClusterView {
  assert.equal(r.status, 0, r.err);
  return JSON.parse(r.out) as ClusterView;
}

describe('cluster status on files', { timeout: 60_000 }, () => {
  let dir: string;
  const f = (name: string): string => join(dir, `${name}.img`);

  before(() => {
    dir = scratchDir('ops-cluster');
    for (const v of ['ls_512_1M_hosts12', 'res_512_1M_ex_host1', 'res_512_1M_sh_host12', 'res_512_1M_ex_host1_req', 'rindex_create2']) {
      writeFileSync(f(v), gunzipSync(readFileSync(`${VECTORS}/${v}.img.gz`)));
    }
  });

  test('--json: hosts, EX owner, SH holders and request of the golden images', async () => {
    const v = json(await cluster([
      'status', '-s', `LS:1:${f('ls_512_1M_hosts12')}:0`,
      '-r', `LS:R1:${f('res_512_1M_ex_host1')}:0`,
      '-r', `LS:R2:${f('res_512_1M_sh_host12')}:0:SH`,
      '-r', `LS:R1:${f('res_512_1M_ex_host1_req')}:0`,
      '--json',
    ]));
    assert.equal(v.lockspace.name, 'LS');
    assert.deepEqual(v.hosts.map((h) => [h.hostId, h.name, h.generation, h.timestamp, h.ioTimeout, h.state]), [
      [1, 'fa012518-1292-4710-97ac-e2d34b5453df.vm', 1, 701, 1, 'unknown-age'],
      [2, 'hostB', 1, 702, 1, 'unknown-age'],
    ]);
    assert.deepEqual(v.leases.map((l) => [l.resource, l.mode, l.owner?.hostId ?? null, l.lver]), [
      ['R1', 'EX', 1, 1], ['R2', 'SH', null, 2], ['R1', 'EX', 1, 1],
    ]);
    assert.deepEqual(v.leases[1]!.shared.map((s) => [s.hostId, s.generation]), [[1, 1], [2, 1]]);
    assert.deepEqual(v.leases[2]!.request, { lver: 2, forceMode: 1 });
  });

  test('human output: aligned tables with the key facts', async () => {
    const r = await cluster(['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '-r', `LS:R1:${f('res_512_1M_ex_host1_req')}:0`, '-r', `LS:R2:${f('res_512_1M_sh_host12')}:0`]);
    assert.equal(r.status, 0, r.err);
    const lines = r.out.split('\n');
    assert.equal(lines[0], `lockspace LS at ${f('ls_512_1M_hosts12')}:0 (sector 512, align 1M, max_hosts 2000)`);
    assert.ok(lines.includes('HOST  STATE        GEN  TIMESTAMP  IO  RENEWED  BITS  EVENT  NAME'), r.out);
    assert.ok(lines.includes('1     unknown-age  1    701        1   -        -     -      fa012518-1292-4710-97ac-e2d34b5453df.vm'), r.out);
    assert.ok(lines.includes('2     unknown-age  1    702        1   -        -     -      hostB'), r.out);
    const r1 = lines.find((l) => l.startsWith('R1 '));
    assert.match(r1 ?? '', /^R1 +EX +1 +1 +1 +unknown-age +- +lver 2 force +\S+res_512_1M_ex_host1_req\.img:0$/);
    assert.match(lines.find((l) => l.startsWith('R2 ')) ?? '', /^R2 +SH +- +- +2 +- +1\/1:unknown-age,2\/1:unknown-age +- /);
    // columns line up: every row of the lease table starts its MODE column at the same place
    const head = lines.find((l) => l.startsWith('LEASE'))!;
    assert.equal(r1!.indexOf('EX'), head.indexOf('MODE'));
  });

  test('-x lists the rindex_lease and every entry', async () => {
    const v = json(await cluster(['status', '-s', `LSX:0:${f('rindex_create2')}:0`, '-x', `LSX:${f('rindex_create2')}:1M`, '--json']));
    assert.deepEqual(v.leases.map((l) => [l.resource, l.disks[0]!.offset, l.mode, l.lver]), [
      ['rindex_lease', 2 * MIB, 'free', 2], ['RES1', 3 * MIB, 'free', 0], ['RES2', 4 * MIB, 'free', 0],
    ]);
    assert.deepEqual(v.hosts.map((h) => [h.hostId, h.timestamp]), [[1, 775]]);
  });

  test('areas made by `sanlock direct init`: no host ever joined, lease free at lver 0', { skip: haveRealSanlock() ? false : 'no real sanlock' }, async () => {
    const ls = join(dir, 'init-ls.img');
    const res = join(dir, 'init-res.img');
    writeFileSync(ls, Buffer.alloc(MIB));
    writeFileSync(res, Buffer.alloc(MIB));
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSI:0:${ls}:0`]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LSI:RI:${res}:0`]);
    const r = await cluster(['status', '-s', `LSI:0:${ls}:0`, '-r', `LSI:RI:${res}:0`]);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /^no host_id has ever been used$/m);
    assert.match(r.out, /^RI +free +- +- +0 +- +- +- +\S+init-res\.img:0$/m);
    const v = json(await cluster(['status', '-s', `LSI:0:${ls}:0`, '-r', `LSI:RI:${res}:0`, '--json']));
    assert.deepEqual(v.hosts, []);
    assert.equal(v.leases[0]!.numHosts, 2000);
  });

  test('--sample auto: a second read 2N + 2 s later; hosts that did not renew are stale', async () => {
    const r = await cluster(['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '--sample', 'auto', '--json']);
    const v = json(r);
    assert.equal(v.reads, 2);
    assert.ok(v.spanSeconds >= 3.9, `span ${v.spanSeconds}`);
    assert.deepEqual(v.hosts.map((h) => h.state), ['stale', 'stale'], 'a golden image never renews');
  });

  test('--watch with --count: one JSON object per refresh, sleeping the interval between', async () => {
    const sleeps: number[] = [];
    const r = await cluster(['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '--watch', '2', '--count', '3', '--json'], sleeps);
    assert.equal(r.status, 0, r.err);
    const objs = r.out.trim().split('\n').map((l) => JSON.parse(l) as ClusterView);
    assert.deepEqual(objs.map((o) => o.reads), [1, 2, 3]);
    assert.deepEqual(sleeps, [2000, 2000]);
    const t = await cluster(['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '--watch', '1', '--count', '2'], []);
    assert.equal(t.out.match(/^--- refresh \d/gm)?.length, 2);
  });

  test('bad input: a clear error with sanlock\'s code on stderr and exit 1', async () => {
    const cases: [string[], RegExp][] = [
      [['status', '-s', `LS:0:${join(dir, 'missing.img')}:0`], /^-2 ENOENT: \S+missing\.img does not exist\n {2}Check the path/],
      [['status', '-s', 'LS'], /^-22 EINVAL: an argument is invalid: lockspace "LS" has no path \(expected name:host_id:path:offset\)\n/],
      [['status', '-s', `:0:${f('ls_512_1M_hosts12')}:0`], /^-22 EINVAL: .*has no name/],
      [['status'], /^-22 EINVAL: an argument is invalid: -s LOCKSPACE is required\n/],
      [['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '--frobnicate'], /^-22 EINVAL: an argument is invalid: unknown option --frobnicate\n/],
      [['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '--sample', 'soon'], /^-22 EINVAL: .*--sample needs a positive number/],
      [['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '-r', 'LS:R1:x'], /^-22 EINVAL: .*resource arg parse error -1/],
      [['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '-r', 'LS:R1'], /^-22 EINVAL: .*resource "LS:R1" names no disk/],
      [['status', '-s', `XX:0:${f('ls_512_1M_hosts12')}:0`], /^-226 SANLK_LEADER_LOCKSPACE: the lockspace at \S+:0 is named LS, not XX\n/],
      [['status', '-s', `LS:0:${f('res_512_1M_ex_host1')}:0`], /^-223 SANLK_LEADER_MAGIC: there is no lockspace LS at \S+res_512_1M_ex_host1\.img:0\n/],
      [['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '-x', `LS:${f('ls_512_1M_hosts12')}:0`], /^-274 SANLK_RINDEX_MAGIC: there is no resource index at \S+ls_512_1M_hosts12\.img:0\n/],
      [['frob'], /^-22 EINVAL: an argument is invalid: unknown cluster action "frob"/],
    ];
    // a lockspace file cut short: the area read comes back short, as sanlock reports it
    writeFileSync(join(dir, 'short.img'), readFileSync(f('ls_512_1M_hosts12')).subarray(0, 512 * 1024));
    cases.push([['status', '-s', `LS:0:${join(dir, 'short.img')}:0`], /^-90 EMSGSIZE: a read or write at \S+short\.img:0 was short/]);
    for (const [args, re] of cases) {
      const r = await cluster(args);
      assert.equal(r.status, 1, `${args.join(' ')} → ${r.status}`);
      assert.equal(r.out, '', 'nothing on stdout for a failure');
      assert.match(r.err, re, args.join(' '));
    }
    // a lease that cannot be read is a row with its error; the rest of the view still prints
    const r = await cluster(['status', '-s', `LS:0:${f('ls_512_1M_hosts12')}:0`, '-r', `LS:R7:${f('res_512_1M_ex_host1')}:0`]);
    assert.equal(r.status, 0);
    assert.match(r.out, /^R7: -227 SANLK_LEADER_RESOURCE: the lease at \S+:0 is for resource R1, not R7$/m);
  });
});

describe('cluster status against a lockspace of the real daemon', { skip: haveRealSanlock() ? false : 'no real sanlock', timeout: 90_000 }, () => {
  let dir: string;
  let daemon: Awaited<ReturnType<typeof startRealDaemon>> | undefined;
  let holder: ReturnType<typeof spawn> | undefined;

  before(async () => {
    dir = scratchDir('ops-cluster-live');
    daemon = await startRealDaemon(join(dir, 'run'));
  });

  after(async () => {
    if (holder?.pid && holder.exitCode === null) {
      const gone = new Promise((r) => holder!.once('exit', r));
      try { process.kill(-holder.pid, 'SIGKILL'); } catch { /* gone */ }
      await gone;
    }
    await daemon?.stop();
  });

  test('the renewing host is live after a sample; its lease shows it as EX owner', async () => {
    const ls = join(dir, 'ls.img');
    const res = join(dir, 'res.img');
    writeFileSync(ls, Buffer.alloc(MIB));
    writeFileSync(res, Buffer.alloc(MIB));
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LSL:0:${ls}:0`, '-o', '1']);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LSL:RL:${res}:0`]);
    const add = daemon!.cli(['client', 'add_lockspace', '-s', `LSL:1:${ls}:0`, '-o', '1']);
    assert.equal(add.status, 0, add.stdout);
    holder = spawn(SANLOCK_BIN, ['client', 'command', '-r', `LSL:RL:${res}:0`, '-c', '/bin/sleep', '60'], { env: daemon!.env, stdio: 'ignore', detached: true });
    let v: ClusterView | undefined;
    for (let i = 0; i < 50; i++) {
      v = json(await cluster(['status', '-s', `LSL:1:${ls}:0`, '-r', `LSL:RL:${res}:0`, '--json']));
      if (v.leases[0]!.mode === 'EX') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(v!.leases[0]!.mode, 'EX', 'the command holder took the lease');
    v = json(await cluster(['status', '-s', `LSL:1:${ls}:0`, '-r', `LSL:RL:${res}:0`, '--sample', 'auto', '--json']));
    assert.equal(v.reads, 2);
    const h1 = v.hosts.find((h) => h.hostId === 1);
    assert.equal(h1?.ioTimeout, 1);
    assert.equal(h1?.generation, 1);
    assert.equal(h1?.state, 'live', 'renews every 2 s, the sample lasts 4 s');
    assert.deepEqual(v.leases[0]!.owner?.hostId, 1);
    assert.equal(v.leases[0]!.ownerState, 'live');
    assert.equal(v.leases[0]!.lver, 1);
  });
});
