// What libvirt's sanlock plugin does for a domain, done by `sanlock-ts client command
// --domain-xml FILE -c PATH ARGS`: register, acquire every <devices><lease> (in batches of 8 when
// there are more, all-or-nothing), hand the registered socket to the command, and let the daemon
// release everything when the command's fd closes. Run against our daemon and, since our CLI
// speaks the wire protocol, against the real sanlock 3.8.5 daemon too (io_timeout 1).
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeLeader } from '../../src/ondisk/leader.js';
import { type OurDaemon, startOurDaemon, waitFor } from '../daemon/our-daemon.js';
import { type RealDaemon, SANLOCK_BIN, haveRealSanlock, scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';

const BIN = resolve('bin/sanlock-ts');
const MIB = 1024 * 1024;

interface Site {
  dir: string;
  env: NodeJS.ProcessEnv;
  ids: string;
  leases: string;
}

/** Our CLI, synchronously; stdout, stderr and exit status. */
function cli(site: Site, args: string[]): { stdout: string; stderr: string; status: number } {
  try {
    const stdout = execFileSync(process.execPath, [BIN, ...args], { env: site.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    return { stdout, stderr: '', status: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    return { stdout: err.stdout ?? '', stderr: err.stderr ?? '', status: err.status ?? 1 };
  }
}

/** Our CLI in the background (its own process group, so the test can kill it and its child). */
function cliAsync(site: Site, args: string[], procs: ChildProcess[]): { proc: ChildProcess; done: Promise<{ stdout: string; stderr: string; status: number }> } {
  const proc = spawn(process.execPath, [BIN, ...args], { env: site.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  procs.push(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => (stdout += d));
  proc.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ stdout: string; stderr: string; status: number }>((res) =>
    proc.once('exit', (code, sig) => res({ stdout, stderr, status: code ?? 128 + (sig === 'SIGKILL' ? 9 : sig === 'SIGTERM' ? 15 : 0) })),
  );
  return { proc, done };
}

function killAll(procs: ChildProcess[]): void {
  for (const p of procs) {
    if (p.exitCode !== null || p.signalCode !== null) continue;
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** `client status` as resource name → holder pid, and the owner names of client pids. */
function status(site: Site): { held: Map<string, number>; owners: Map<number, string> } {
  const r = cli(site, ['client', 'status']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const held = new Map<string, number>();
  const owners = new Map<number, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^r ([^:]+):([^:]+):.* p (\d+)$/.exec(line);
    if (m) held.set(`${m[1]}:${m[2]}`, Number(m[3]));
    const p = /^p (\d+) ?(.*)$/.exec(line);
    if (p) owners.set(Number(p[1]), p[2]!);
  }
  return { held, owners };
}

/** The on-disk leader of lease k (at k MiB): owned means a host_id and a non-zero timestamp. */
function leaderAt(site: Site, k: number): { owner: number; timestamp: number; lver: number; name: string } {
  const fd = openSync(site.leases, 'r');
  try {
    const b = Buffer.alloc(512);
    readSync(fd, b, 0, 512, k * MIB);
    const l = decodeLeader(b);
    return { owner: l.ownerId, timestamp: l.timestamp, lver: l.lver, name: l.resourceName };
  } finally {
    closeSync(fd);
  }
}

function domainXml(site: Site, file: string, name: string, leases: { ls?: string; key: string; k: number }[]): string {
  const body = leases
    .map((l) => `    <lease>\n      <key>${l.key}</key>\n      <lockspace>${l.ls ?? 'LS'}</lockspace>\n      <target offset="${l.k * MIB}" path="${site.leases}"/>\n    </lease>\n`)
    .join('');
  const path = join(site.dir, file);
  writeFileSync(path, `<domain type="kvm">\n  <name>${name}</name>\n  <devices>\n${body}  </devices>\n</domain>\n`);
  return path;
}

/** The command run under the leases: records its pid (sh execs sleep, keeping it), then sleeps. */
function sleeper(site: Site, pidFile: string): string[] {
  return ['-c', '/bin/sh', '-c', `echo $$ > ${join(site.dir, pidFile)}; exec sleep 60`];
}

async function pidFrom(site: Site, pidFile: string): Promise<number> {
  const f = join(site.dir, pidFile);
  await waitFor(() => existsSync(f) && readFileSync(f, 'utf8').trim() !== '', 15_000, pidFile);
  return Number(readFileSync(f, 'utf8').trim());
}

/**
 * Formats the test's storage. Not what is under test here, so the real binary does it when
 * installed (milliseconds, independent of our storage layer); our `direct init` otherwise.
 */
function directInit(site: Site, args: string[]): void {
  if (haveRealSanlock()) {
    execFileSync(SANLOCK_BIN, ['direct', 'init', ...args], { stdio: 'ignore', timeout: 30_000 });
    return;
  }
  const r = cli(site, ['direct', 'init', ...args]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
}

async function prepare(site: Site): Promise<void> {
  truncateSync(site.ids, 0);
  truncateSync(site.ids, MIB);
  truncateSync(site.leases, 12 * MIB);
  directInit(site, ['-s', `LS:0:${site.ids}:0`, '-o', '1']);
  for (let k = 1; k <= 10; k++) directInit(site, ['-r', `LS:R${k}:${site.leases}:${k * MIB}`]);
  const add = cli(site, ['client', 'add_lockspace', '-s', `LS:1:${site.ids}:0`, '-o', '1']);
  assert.equal(add.stdout, 'add_lockspace_timeout 1\nadd_lockspace_timeout done 0\n');
}

function newSite(base: string): Site {
  const dir = base;
  const ids = join(dir, 'ids');
  const leases = join(dir, 'leases');
  writeFileSync(ids, '');
  writeFileSync(leases, '');
  return { dir, env: {}, ids, leases };
}

function assertNothingHeld(site: Site, ks: number[], what: string): void {
  const { held } = status(site);
  for (const k of ks) {
    assert.equal(held.has(`LS:R${k}`), false, `${what}: R${k} still in status`);
    assert.equal(leaderAt(site, k).timestamp, 0, `${what}: R${k} still owned on disk`);
  }
}

/** The scenarios, the same for both daemons. */
function scenarios(name: string, start: (site: Site) => Promise<{ env: NodeJS.ProcessEnv; stop(): Promise<void> }>, skip: boolean | string) {
  describe(`client command --domain-xml against ${name}`, { skip }, () => {
    let site: Site;
    let daemon: { stop(): Promise<void> } | undefined;
    const procs: ChildProcess[] = [];

    before(async () => {
      site = newSite(scratchDir(`libvirt-cmd-${name.replace(/\W+/g, '-')}`));
      const d = await start(site);
      daemon = d;
      site.env = d.env;
      await prepare(site);
    });
    after(async () => {
      killAll(procs);
      await daemon?.stop();
      rmSync(site.dir, { recursive: true, force: true });
    });

    test('the leases are held by the registered client while the command runs, owner = domain name; killing the command releases them', async () => {
      const xml = domainXml(site, 'vm1.xml', 'vm1', [
        { key: 'R1', k: 1 },
        { key: 'R2', k: 2 },
      ]);
      const c = cliAsync(site, ['client', 'command', '--domain-xml', xml, ...sleeper(site, 'vm1.pid')], procs);
      const child = await pidFrom(site, 'vm1.pid');
      await waitFor(() => status(site).held.size === 2, 15_000, 'R1 and R2 in status');
      const st = status(site);
      // the daemon records the pid that registered (our CLI); the command holds the socket
      assert.equal(st.held.get('LS:R1'), c.proc.pid);
      assert.equal(st.held.get('LS:R2'), c.proc.pid);
      assert.equal(st.owners.get(c.proc.pid!), 'vm1');
      const inq = cli(site, ['client', 'inquire', '-p', String(c.proc.pid)]);
      assert.match(inq.stdout, /^inquire pid \d+\ninquire done 0 res_count 2\n"LS:R1:.*:1048576:\d+ LS:R2:.*:2097152:\d+"\n$/);
      for (const k of [1, 2]) {
        const l = leaderAt(site, k);
        assert.equal(l.owner, 1, `R${k} owner on disk`);
        assert.notEqual(l.timestamp, 0, `R${k} timestamp on disk`);
      }
      process.kill(child, 'SIGKILL');
      const r = await c.done;
      assert.equal(r.status, 137, 'the command was SIGKILLed: 128 + 9');
      // as with sanlock, whose buffered lines die with the execv when stdout is a pipe
      assert.equal(r.stdout, '');
      await waitFor(() => status(site).held.size === 0, 15_000, 'release after the command died');
      assertNothingHeld(site, [1, 2], 'after kill');
    });

    test('the command exiting releases them too, and its status becomes ours', async () => {
      const xml = domainXml(site, 'vm2.xml', 'vm2', [{ key: 'R3', k: 3 }]);
      const seen = join(site.dir, 'vm2.status');
      const r = cli(site, ['client', 'command', '--domain-xml', xml, '-c', '/bin/sh', '-c', `${process.execPath} ${BIN} client status > ${seen}; exit 3`]);
      assert.equal(r.status, 3);
      assert.match(readFileSync(seen, 'utf8'), /^r LS:R3:.*:3145728:\d+ p \d+$/m);
      await waitFor(() => !status(site).held.has('LS:R3'), 15_000, 'R3 released');
      assertNothingHeld(site, [3], 'after exit');
    });

    test('-r resources and the domain XML leases are acquired together', async () => {
      const xml = domainXml(site, 'vm7.xml', 'vm7', [{ key: 'R8', k: 8 }]);
      const seen = join(site.dir, 'vm7.status');
      const r = cli(site, ['client', 'command', '-r', `LS:R7:${site.leases}:${7 * MIB}`, '--domain-xml', xml, '-c', '/bin/sh', '-c', `${process.execPath} ${BIN} client status > ${seen}`]);
      assert.equal(r.status, 0, r.stderr);
      const text = readFileSync(seen, 'utf8');
      assert.match(text, /^r LS:R7:.* p (\d+)$/m);
      assert.match(text, /^r LS:R8:.* p (\d+)$/m);
      assert.match(text, /^p \d+ vm7$/m);
      await waitFor(() => status(site).held.size === 0, 15_000, 'R7 and R8 released');
      assertNothingHeld(site, [7, 8], 'after -r + XML');
    });

    test('a lease in a lockspace not joined: -ENOSPC (-28) named in the error, nothing acquired', async () => {
      const xml = domainXml(site, 'vm3.xml', 'vm3', [
        { key: 'R4', k: 4 },
        { ls: 'NOPE', key: 'R5', k: 5 },
      ]);
      const r = cli(site, ['client', 'command', '--domain-xml', xml, '-c', '/bin/true']);
      assert.equal(r.status, 1);
      assert.match(r.stdout, /^register\nregister done \d+\nacquire fd \d+\nacquire done -28\n$/);
      assert.equal(
        r.stderr,
        `domain XML ${xml}: <lease> #2 (lockspace "NOPE", key "R5"): lockspace "NOPE" is not joined on this host (acquire returned -28 ENOSPC: No space left on device)\n` +
          `domain XML ${xml}: nothing acquired\n`,
      );
      assertNothingHeld(site, [4, 5], 'after -ENOSPC');
    });

    test('malformed XML: no registration at all', async () => {
      const bad = join(site.dir, 'bad.xml');
      writeFileSync(bad, `<domain><devices><lease><key>R6</key><lockspace>LS</lockspace><target path="${site.leases}" offset="6291456"></lease></devices></domain>`);
      const before = status(site).owners.size;
      const r = cli(site, ['client', 'command', '--domain-xml', bad, '-c', '/bin/true']);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^domain XML .*bad\.xml: malformed XML at line 1, column \d+: .*; nothing acquired\n$/);
      assert.equal(status(site).owners.size, before);
      assertNothingHeld(site, [6], 'after malformed XML');
    });

    test('10 leases: two ACQUIREs (8 + 2); when the second fails the first 8 are released, the other holder keeps its lease', async () => {
      const holder = cliAsync(site, ['client', 'command', '-r', `LS:R10:${site.leases}:${10 * MIB}`, ...sleeper(site, 'holder.pid')], procs);
      await pidFrom(site, 'holder.pid');
      await waitFor(() => status(site).held.get('LS:R10') === holder.proc.pid, 15_000, 'holder of R10');
      const all = Array.from({ length: 10 }, (_, i) => ({ key: `R${i + 1}`, k: i + 1 }));
      const xml = domainXml(site, 'vm10.xml', 'vm10', all);
      const lverBefore = leaderAt(site, 1).lver;
      const r = cli(site, ['client', 'command', '--domain-xml', xml, '-c', '/bin/true']);
      assert.equal(r.status, 1);
      assert.match(r.stdout, /^register\nregister done \d+\nacquire fd \d+\nacquire done 0\nacquire fd \d+\nacquire done -17\n$/);
      assert.equal(
        r.stderr,
        `domain XML ${xml}: acquire of leases #9 #10 failed with -17 EEXIST: File exists; the 8 leases already taken were released, nothing is held\n`,
      );
      const st = status(site);
      assert.deepEqual([...st.held.entries()], [['LS:R10', holder.proc.pid]]);
      assertNothingHeld(site, [1, 2, 3, 4, 5, 6, 7, 8, 9], 'after the failed second batch');
      // R1 really was taken and given back (its lver moved on), not skipped
      assert.ok(leaderAt(site, 1).lver > lverBefore, 'R1 was acquired in the first batch');
      assert.equal(leaderAt(site, 10).owner, 1);
      assert.notEqual(leaderAt(site, 10).timestamp, 0);

      // with R10 free, all ten are held at once by one client
      killAll([holder.proc]);
      await holder.done;
      await waitFor(() => status(site).held.size === 0, 15_000, 'holder gone');
      const seen = join(site.dir, 'vm10.status');
      const ok = cli(site, ['client', 'command', '--domain-xml', xml, '-c', '/bin/sh', '-c', `${process.execPath} ${BIN} client status > ${seen}`]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout, '');
      const lines = readFileSync(seen, 'utf8').split('\n').filter((l) => l.startsWith('r LS:R'));
      assert.equal(lines.length, 10, lines.join('\n'));
      assert.equal(new Set(lines.map((l) => l.replace(/^.* p /, ''))).size, 1, 'one holder pid');
      await waitFor(() => status(site).held.size === 0, 15_000, 'all ten released');
      assertNothingHeld(site, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'after the ten');
    });
  });
}

scenarios(
  'our daemon',
  async (site) => {
    const d: OurDaemon = await startOurDaemon(join(site.dir, 'run'));
    return d;
  },
  false,
);

scenarios(
  'the real sanlock daemon',
  async (site) => {
    const d: RealDaemon = await startRealDaemon(join(site.dir, 'run'));
    return d;
  },
  haveRealSanlock() ? false : 'the real sanlock daemon (/usr/sbin/sanlock) is not installed',
);
