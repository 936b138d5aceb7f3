// `sanlock-ts domain ...` (src/cli/domain.ts) run as a command, as an operator would, against our
// daemon and against the real sanlock 3.8.5 daemon: create (file and block), show, join, status,
// SPM lease, volume leases and VM leases (foreground holders and --pid), leave, usage errors.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { PYTHON, pyAvailable, startOurDaemon } from '../daemon/our-daemon.js';
import { haveRealSanlock, scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';

const FILE_SD = '9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c01';
const BLOCK_SD = '9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c02';
const MIB = 1024 * 1024;

interface Run {
  status: number;
  out: string;
  err: string;
}

function cli(env: NodeJS.ProcessEnv, args: string[]): Run {
  const r = spawnSync(process.execPath, ['bin/sanlock-ts', 'domain', ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function cliAsync(env: NodeJS.ProcessEnv, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['bin/sanlock-ts', 'domain', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { err += b; });
    p.on('close', (code) => resolve({ status: code ?? -1, out, err }));
  });
}

function ok(r: Run): string {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.err}`);
  return r.out;
}

/** A foreground `domain ... acquire` holder: resolves once it says it holds its leases. */
async function holder(env: NodeJS.ProcessEnv, args: string[]): Promise<{ proc: ChildProcess; line: string; end(): Promise<Run> }> {
  const proc = spawn(process.execPath, ['bin/sanlock-ts', 'domain', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (b) => { err += b; });
  const closed = new Promise<number>((r) => proc.on('close', (c) => r(c ?? -1)));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (l) => {
      out += `${l}\n`;
      if (l.startsWith('acquired')) resolve(l);
    });
    closed.then((c) => reject(new Error(`holder exited ${c} before acquiring: ${err}`)));
  });
  return {
    proc,
    line,
    async end() {
      proc.stdin!.end();
      const status = await closed;
      return { status, out, err };
    },
  };
}

interface StatusJson {
  domain: string;
  joined: { hostId: number; adding: boolean } | null;
  hosts: { hostId: number; status: string }[] | null;
  leases: { name: string; hostId: number | null; lver: number }[];
}

function status(env: NodeJS.ProcessEnv, dom: string): StatusJson {
  return JSON.parse(ok(cli(env, ['status', dom, '--json']))) as StatusJson;
}

function owners(s: StatusJson): Record<string, number | null> {
  return Object.fromEntries(s.leases.map((l) => [l.name, l.hostId]));
}

async function scenario(kind: 'ours' | 'real', base: string): Promise<void> {
  const dir = join(base, kind);
  const d = kind === 'ours' ? await startOurDaemon(join(dir, 'run'), ['-e', `cli-${kind}`]) : await startRealDaemon(join(dir, 'run'), ['-e', `cli-${kind}`]);
  const env = { ...d.env };
  let pyHolder: ChildProcess | undefined;
  try {
    // create + show, file and block
    const fileOut = ok(cli(env, ['create-file', join(dir, 'mnt'), '--sd', FILE_SD, '--volume', 'vol-a', '--volume', 'vol-b', '--vm-lease', 'vm-1', '--io-timeout', '1']));
    const dom = join(dir, 'mnt', FILE_SD);
    assert.match(fileOut, new RegExp(`^domain ${FILE_SD} \\(file, version 5, block size 512, alignment 1M, io_timeout 1\\)$`, 'm'));
    assert.match(fileOut, /^ {2}vm-lease +vm-1 +\S+\/dom_md\/xleases:3145728$/m);
    const shown = JSON.parse(ok(cli(env, ['show', dom, '--json'])));
    assert.equal(shown.kind, 'file');
    assert.equal(shown.ioTimeout, 1);
    assert.deepEqual(shown.volumes.map((v: { name: string; offset: number }) => [v.name, v.offset]).sort(), [['vol-a', 0], ['vol-b', 0]]);
    assert.deepEqual(shown.spm, { name: 'SDM', path: join(dom, 'dom_md', 'leases'), offset: MIB });
    const vg = join(dir, BLOCK_SD);
    ok(cli(env, ['create-block', vg, '--sd', BLOCK_SD, '--volumes', '2', '--io-timeout', '1']));
    const blockShown = JSON.parse(ok(cli(env, ['show', vg, '--json'])));
    assert.equal(blockShown.kind, 'block');
    assert.deepEqual(blockShown.volumes.map((v: { slot: number; offset: number }) => [v.slot, v.offset]), [[1, 101 * MIB], [2, 102 * MIB]]);
    const blockVol = blockShown.volumes[1].name as string;

    // not joined yet
    assert.match(ok(cli(env, ['status', dom])), /not joined by this daemon/);
    assert.equal(cli(env, ['spm', 'acquire', dom, '--pid', '1']).status, 1);

    // join both domains (with the io_timeout on disk) at once
    const [jf, jb] = await Promise.all([cliAsync(env, ['join', dom, '--host-id', '1']), cliAsync(env, ['join', vg, '--host-id', '3'])]);
    assert.match(ok(jf), new RegExp(`^joined ${FILE_SD} as host 1 in [0-9.]+ s$`, 'm'));
    assert.match(ok(jb), new RegExp(`^joined ${BLOCK_SD} as host 3 in`, 'm'));
    assert.match(ok(cli(env, ['join', dom, '--host-id', '1'])), /^joined/m); // EEXIST: already joined is fine
    const lsOut = d.cli(['client', 'gets']).stdout;
    assert.match(lsOut, new RegExp(`^s ${FILE_SD}:1:${join(dom, 'dom_md', 'ids')}:0 $`, 'm'));
    assert.match(ok(cli(env, ['status', dom])), /^domain \S+: joined as host 1$/m);

    // SPM lease held by a foreground holder, released when its stdin closes
    const spm = await holder(env, ['spm', 'acquire', dom]);
    assert.match(spm.line, /^acquired SDM pid \d+; holding until interrupted$/);
    let st = status(env, dom);
    assert.deepEqual(owners(st), { SDM: 1, 'vol-a': null, 'vol-b': null, 'vm-1': null });
    assert.equal(st.joined?.hostId, 1);
    const spmEnd = await spm.end();
    assert.equal(spmEnd.status, 0, spmEnd.err);
    assert.match(spmEnd.out, /^released SDM$/m);
    st = status(env, dom);
    assert.equal(owners(st).SDM, null);
    assert.equal(st.leases.find((l) => l.name === 'SDM')?.lver, 1);

    // volume leases for a registered process (--pid), as `sanlock client acquire -p` would
    pyHolder = spawn(PYTHON, ['-c', 'import sanlock, sys\nfd = sanlock.register()\nprint("ready", flush=True)\nsys.stdin.read()'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: pyHolder!.stdout! }).on('line', (l) => { if (l === 'ready') resolve(); });
      pyHolder!.on('exit', (c) => reject(new Error(`python holder exited ${c}`)));
    });
    const pid = String(pyHolder.pid);
    assert.match(ok(cli(env, ['volume-lease', 'acquire', dom, 'vol-a', 'vol-b', '--pid', pid])), new RegExp(`^acquired vol-a vol-b for pid ${pid}$`, 'm'));
    assert.match(d.cli(['client', 'status']).stdout, new RegExp(`^r ${FILE_SD}:vol-a:\\S+vol-a\\.lease:0:1 p ${pid}$`, 'm'));
    assert.deepEqual(owners(status(env, dom)), { SDM: null, 'vol-a': 1, 'vol-b': 1, 'vm-1': null });
    // held by that process: a second holder on this host is refused
    const again = cli(env, ['volume-lease', 'acquire', dom, 'vol-a']);
    assert.equal(again.status, 1);
    assert.match(again.err, /-17|File exists|EEXIST/);
    assert.match(ok(cli(env, ['volume-lease', 'release', dom, 'vol-a', 'vol-b', '--pid', pid])), /^released vol-a vol-b for pid \d+$/m);
    assert.deepEqual(owners(status(env, dom)), { SDM: null, 'vol-a': null, 'vol-b': null, 'vm-1': null });

    // VM lease (xleases) and a block-domain volume lease, foreground
    const vm = await holder(env, ['vm-lease', 'acquire', dom, 'vm-1']);
    const bv = await holder(env, ['volume-lease', 'acquire', vg, blockVol]);
    assert.equal(owners(status(env, dom))['vm-1'], 1);
    assert.equal(owners(status(env, vg))[blockVol], 3);
    assert.match(d.cli(['client', 'status']).stdout, new RegExp(`^r ${BLOCK_SD}:${blockVol}:${vg}/leases:${102 * MIB}:1 p \\d+$`, 'm'));
    assert.equal((await vm.end()).status, 0);
    assert.equal((await bv.end()).status, 0);
    assert.equal(owners(status(env, vg))[blockVol], null);

    // errors: unknown volume / VM lease (-2), release without --pid, missing --sd (usage, 2)
    const noVol = cli(env, ['volume-lease', 'acquire', dom, 'no-such-volume', '--pid', pid]);
    assert.equal(noVol.status, 1);
    assert.match(noVol.err, /no volume no-such-volume in domain/);
    assert.match(cli(env, ['vm-lease', 'acquire', dom, 'vm-2', '--pid', pid]).err, /no lease vm-2/);
    const rel = cli(env, ['spm', 'release', dom]);
    assert.equal(rel.status, 2);
    assert.match(rel.err, /release needs --pid/);
    assert.equal(cli(env, ['create-file', join(dir, 'x')]).status, 2);
    assert.equal(cli(env, ['create-block', join(dir, 'y'), '--sd', BLOCK_SD, '--version', '5', '--sector', '4096']).status, 1);

    // leave: the lockspace goes away
    assert.match(ok(cli(env, ['leave', dom, '--host-id', '1'])), new RegExp(`^left ${FILE_SD}$`, 'm'));
    assert.match(ok(cli(env, ['status', dom])), /not joined by this daemon/);
    assert.match(ok(cli(env, ['leave', dom, '--host-id', '1'])), /^left/m); // ENOENT is not an error
  } finally {
    if (pyHolder && pyHolder.exitCode === null) pyHolder.kill('SIGKILL');
    await d.stop();
  }
}

describe('sanlock-ts domain (the command)', () => {
  test('usage', () => {
    const r = spawnSync(process.execPath, ['bin/sanlock-ts', 'domain', 'help'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    for (const c of ['create-file', 'create-block', 'show', 'join', 'leave', 'status', 'spm acquire|release', 'volume-lease acquire|release', 'vm-lease acquire|release']) {
      assert.ok(r.stdout.includes(`sanlock-ts domain ${c}`), c);
    }
    const bad = spawnSync(process.execPath, ['bin/sanlock-ts', 'domain', 'frobnicate'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown domain command "frobnicate"/);
  });

  test('create, join, SPM, volume and VM leases, leave: our daemon', { skip: !pyAvailable() }, async () => {
    const base = scratchDir('domain-cli-ours');
    try {
      await scenario('ours', base);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('the same against the real sanlock daemon', { skip: !pyAvailable() || !haveRealSanlock() }, async () => {
    const base = scratchDir('domain-cli-real');
    try {
      await scenario('real', base);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
