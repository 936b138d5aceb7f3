// Steps 4–5 against OUR daemon: lockspace join/inq/rem, hosts, renewal history, resource leases
// (EX, SH, lver, LVB, orphans), inquire, request/examine, killpath, leases released when the
// client process exits — driven by python3-sanlock and the real sanlock CLI.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scratchDir } from '../helpers/real-sanlock.js';
import { type OurDaemon, PYTHON, pyAvailable, SANLOCK_BIN, startOurDaemon, waitFor } from './our-daemon.js';

const skip = !pyAvailable();
const MiB = 1024 * 1024;

function direct(args: string[]): string {
  return execFileSync(SANLOCK_BIN, ['direct', ...args], { encoding: 'utf8' });
}

/** Leader line of `direct dump` for the lease at path:offset: [timestamp, owner, gen, lver]. */
function leaderOf(path: string, offset: number): string[] {
  const out = direct(['dump', `${path}:${offset}:${MiB}`]);
  const line = out.split('\n')[1] ?? '';
  return line.trim().split(/\s+/).slice(3);
}

describe('our daemon: lockspaces and resources', { skip }, () => {
  let d: OurDaemon;
  let dir: string;
  let ids: string;
  let leases: string;
  const holders: ChildProcess[] = [];

  /** A python process that registers, runs `code` (with fd), prints READY and sleeps. */
  function holder(code: string): Promise<{ proc: ChildProcess; out: () => string }> {
    const p = spawn(PYTHON, ['-c', `import sanlock, os, sys, time\nfd = sanlock.register()\n${code}\nprint("READY", flush=True)\ntime.sleep(120)\n`], {
      env: d.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    holders.push(p);
    let out = '';
    p.stdout!.on('data', (x) => {
      out += x;
    });
    p.stderr!.on('data', (x) => {
      out += x;
    });
    return waitFor(() => out.includes('READY') || p.exitCode !== null, 20_000, 'holder ready').then(() => {
      if (!out.includes('READY')) throw new Error(`holder failed: ${out}`);
      return { proc: p, out: () => out };
    });
  }

  before(async () => {
    dir = scratchDir('daemon-ls');
    ids = join(dir, 'ids');
    leases = join(dir, 'leases');
    writeFileSync(ids, Buffer.alloc(0));
    execFileSync('truncate', ['-s', '1M', ids]);
    execFileSync('truncate', ['-s', '6M', leases]);
    direct(['init', '-s', `LS:0:${ids}:0`, '-o', '1']);
    for (let i = 0; i < 6; i++) direct(['init', '-r', `LS:R${i + 1}:${leases}:${i * MiB}`]);
    d = await startOurDaemon(join(dir, 'run'), ['-e', 'hostOurs']);
  });

  after(async () => {
    for (const p of holders) if (p.exitCode === null) p.kill('SIGKILL');
    await d.stop();
  });

  test('add_lockspace joins in about 2 io_timeouts; duplicates and conflicts are refused', () => {
    const t0 = Date.now();
    const r = d.cli(['client', 'add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1']);
    const ms = Date.now() - t0;
    assert.equal(r.stdout, 'add_lockspace_timeout 1\nadd_lockspace_timeout done 0\n');
    assert.ok(ms < 8000, `join took ${ms} ms`);
    assert.match(d.cli(['client', 'add_lockspace', '-s', `LS:1:${ids}:0`, '-o', '1']).stdout, /done -17\n$/);
    assert.match(d.cli(['client', 'add_lockspace', '-s', `LS:2:${ids}:0`]).stdout, /done -22\n$/);
    assert.match(d.cli(['client', 'add_lockspace', '-s', `LS:0:${ids}:0`]).stdout, /done -22\n$/);
    assert.match(d.cli(['client', 'inq_lockspace', '-s', `LS:1:${ids}:0`]).stdout, /inq_lockspace done 0\n$/);
    assert.match(d.cli(['client', 'inq_lockspace', '-s', `NOLS:1:${ids}:0`]).stdout, /inq_lockspace done -2\n$/);
    assert.equal(d.cli(['client', 'gets']).stdout, `s LS:1:${ids}:0 \n`);
    // our delta lease on disk: host 1, our host name, io_timeout 1
    const dump = direct(['dump', ids]);
    assert.match(dump, /LS\s+hostOurs\s+\d{10} 0001 0001/);
  });

  test('get_hosts after the first renewal, host_status, renewal history', async () => {
    let hosts = '';
    await waitFor(() => {
      const r = d.py('print(sanlock.get_hosts(b"LS"))');
      hosts = r.stdout;
      return r.status === 0;
    }, 10_000, 'hosts ready');
    assert.match(hosts, /'host_id': 1, 'generation': 1, 'timestamp': \d+, 'io_timeout': 1, 'flags': 3/);
    const hs = d.cli(['client', 'host_status', '-s', 'LS', '-D']).stdout;
    assert.match(hs, /^1 timestamp \d+\n {4}last_check=\d+\n {4}last_live=\d+\n/);
    assert.match(hs, /owner_name=hostOurs\n/);
    const ren = d.cli(['client', 'renewal', '-s', 'LS']).stdout.trim().split('\n');
    assert.ok(ren.length >= 2);
    assert.match(ren[0]!, /^timestamp=\d+ read_ms=0 write_ms=0 next_timeouts=0 next_errors=0$/);
    assert.match(ren[1]!, /^timestamp=\d+ read_ms=\d+ write_ms=\d+ next_timeouts=0 next_errors=0$/);
    assert.equal(d.cli(['client', 'renewal', '-s', 'NOLS']).status, 1);
    const st = d.cli(['client', 'status', '-D']).stdout;
    assert.match(st, /\ns LS:1:.*ids:0\n {4}list=spaces\n {4}space_id=1\n {4}io_timeout=1\n {4}sector_size=512\n {4}align_size=1048576\n {4}host_generation=1\n/);
  });

  test('python: EX, SH, LVB, inquire, EEXIST, EPERM, lver mismatch; leases freed when the process exits', async () => {
    const code = `
D = ${JSON.stringify(leases)}
M = 1048576
sanlock.acquire(b"LS", b"R1", [(D, 0)], slkfd=fd)
sanlock.acquire(b"LS", b"R2", [(D, M)], slkfd=fd, shared=True)
sanlock.acquire(b"LS", b"R3", [(D, 2*M)], slkfd=fd, lvb=True)
sanlock.set_lvb(b"LS", b"R3", [(D, 2*M)], b"hello-lvb")
print("LVB", sanlock.get_lvb(b"LS", b"R3", [(D, 2*M)], 9))
print("INQ", [(r["resource"], r["flags"], r["version"]) for r in sanlock.inquire(slkfd=fd)])
for args in [dict(), dict(version=99)]:
    try:
        sanlock.acquire(b"LS", b"R1" if not args else b"R4", [(D, 0 if not args else 3*M)], slkfd=fd, **args)
    except sanlock.SanlockException as e:
        print("ERR", e.errno)
try:
    sanlock.release(b"LS", b"R5", [(D, 4*M)], slkfd=fd)
except sanlock.SanlockException as e:
    print("ERR", e.errno)
try:
    sanlock.rem_lockspace(b"LS", 1, ${JSON.stringify(ids)}, 0, unused=True)
except sanlock.SanlockException as e:
    print("ERR", e.errno)
print("OWN", sanlock.read_resource_owners(b"LS", b"R1", [(D, 0)]))
`;
    const h = await holder(code);
    const out = h.out();
    assert.match(out, /LVB b'hello-lvb'/);
    assert.match(out, /INQ \[\(b'R1', 1, 1\), \(b'R2', 4, 0\), \(b'R3', 1, 1\)\]/);
    assert.match(out, /ERR 17\nERR -240\nERR 1\nERR 16\n/);
    assert.match(out, /OWN \[\{'host_id': 1, 'generation': 1, 'timestamp': \d+, 'io_timeout': 0, 'flags': 0\}\]/);
    const pid = h.proc.pid!;
    const st = d.cli(['client', 'status']).stdout;
    assert.ok(st.includes(`p ${pid} \n`), st);
    assert.ok(st.includes(`r LS:R1:${leases}:0:1 p ${pid}\n`), st);
    assert.ok(st.includes(`r LS:R2:${leases}:1048576:SH p ${pid}\n`), st);
    const inq = d.cli(['client', 'inquire', '-p', String(pid)]).stdout;
    assert.equal(inq, `inquire pid ${pid}\ninquire done 0 res_count 3\n"LS:R1:${leases}:0:1 LS:R2:${leases}:1048576:SH LS:R3:${leases}:2097152:1"\n`);
    assert.equal(leaderOf(leases, 0)[1], '0001');
    assert.notEqual(leaderOf(leases, 0)[0], '0000000000');
    h.proc.kill('SIGKILL');
    await waitFor(() => leaderOf(leases, 0)[0] === '0000000000' && leaderOf(leases, 2 * MiB)[0] === '0000000000', 10_000, 'leases released');
    // the lvb was written at release
    const lvb = Buffer.alloc(9);
    const fd = (await import('node:fs')).openSync(leases, 'r');
    (await import('node:fs')).readSync(fd, lvb, 0, 9, 2 * MiB + 2002 * 512);
    (await import('node:fs')).closeSync(fd);
    assert.equal(lvb.toString(), 'hello-lvb');
    assert.ok(!d.cli(['client', 'status']).stdout.includes(`p ${pid}`));
  });

  test('CLI acquire/convert/release for another pid; persistent lease becomes an orphan', async () => {
    const h = await holder('');
    const pid = String(h.proc.pid);
    assert.match(d.cli(['client', 'acquire', '-r', `LS:R4:${leases}:${3 * MiB}`, '-p', pid]).stdout, /acquire done 0\n$/);
    assert.match(d.cli(['client', 'convert', '-r', `LS:R4:${leases}:${3 * MiB}:SH`, '-p', pid]).stdout, /convert done 0\n$/);
    assert.match(d.cli(['client', 'convert', '-r', `LS:R4:${leases}:${3 * MiB}:SH`, '-p', pid]).stdout, /convert done -114\n$/);
    assert.match(d.cli(['client', 'convert', '-r', `LS:R4:${leases}:${3 * MiB}`, '-p', pid]).stdout, /convert done 0\n$/);
    assert.match(d.cli(['client', 'release', '-r', 'LS:R4', '-p', pid]).stdout, /release done 0\n$/);
    assert.match(d.cli(['client', 'acquire', '-r', `LS:R5:${leases}:${4 * MiB}`, '-p', pid, '-P', '1']).stdout, /acquire done 0\n$/);
    h.proc.kill('SIGKILL');
    await waitFor(() => d.cli(['client', 'status']).stdout.includes(`r LS:R5:${leases}:4194304:1 p ${pid} ORPHAN\n`), 5000, 'orphan');
    assert.equal(leaderOf(leases, 4 * MiB)[1], '0001'); // still owned on disk
    const h2 = await holder('');
    const pid2 = String(h2.proc.pid);
    assert.match(d.cli(['client', 'acquire', '-r', `LS:R5:${leases}:${4 * MiB}`, '-p', pid2]).stdout, /acquire done -117\n$/);
    // adopted with the orphan flag (same mode, lver kept), persistent again
    assert.match(d.cli(['client', 'acquire', '-r', `LS:R5:${leases}:${4 * MiB}`, '-p', pid2, '-O', '1', '-P', '1']).stdout, /acquire done 0\n$/);
    assert.ok(d.cli(['client', 'status']).stdout.includes(`r LS:R5:${leases}:4194304:1 p ${pid2}\n`));
    h2.proc.kill('SIGKILL');
    await waitFor(() => d.cli(['client', 'status']).stdout.includes(`r LS:R5:${leases}:4194304:1 p ${pid2} ORPHAN\n`), 5000, 'orphan again');
    const h3 = await holder('');
    const pid3 = String(h3.proc.pid);
    assert.match(d.cli(['client', 'release', '-s', 'LS', '-O', '1']).stdout, /release done -16\n$/);
    assert.match(d.cli(['client', 'release', '-s', 'LS', '-O', '1', '-p', pid3]).stdout, /release done 1\n$/);
    assert.equal(leaderOf(leases, 4 * MiB)[0], '0000000000');
    assert.ok(!d.cli(['client', 'status']).stdout.includes('ORPHAN'));
    h3.proc.kill('SIGKILL');
  });

  test('request + examine: FORCE kills the holder, GRACEFUL runs its killpath', async () => {
    const mark = join(dir, 'killpath.out');
    const kp = join(dir, 'kp.sh');
    writeFileSync(kp, `#!/bin/sh\necho "$@" > ${mark}\n`);
    chmodSync(kp, 0o755);
    const g = await holder(`sanlock.killpath(${JSON.stringify(kp)}, ["x1", "y 2"], fd)\nsanlock.acquire(b"LS", b"R6", [(${JSON.stringify(leases)}, ${5 * MiB})], slkfd=fd)`);
    assert.match(d.cli(['client', 'request', '-r', `LS:R6:${leases}:${5 * MiB}:2`, '-f', '2']).stdout, /request done 0\n$/);
    assert.match(d.cli(['client', 'examine', '-r', `LS:R6:${leases}:${5 * MiB}`]).stdout, /examine done 0\n$/);
    await waitFor(() => existsSync(mark), 5000, 'killpath ran');
    await waitFor(() => readFileSync(mark, 'utf8') === 'x1 y 2\n', 2000, 'killpath args');
    assert.equal(g.proc.exitCode, null, 'graceful request with killpath does not signal');
    g.proc.kill('SIGKILL');
    await waitFor(() => leaderOf(leases, 5 * MiB)[0] === '0000000000', 10_000, 'R6 released');

    const f = await holder(`sanlock.acquire(b"LS", b"R1", [(${JSON.stringify(leases)}, 0)], slkfd=fd)`);
    const lver = Number(leaderOf(leases, 0)[3]);
    const exited = new Promise<string | null>((r) => f.proc.once('exit', (_c, sig) => r(sig)));
    assert.match(d.cli(['client', 'request', '-r', `LS:R1:${leases}:0:${lver + 1}`, '-f', '1']).stdout, /request done 0\n$/);
    assert.match(d.cli(['client', 'request', '-r', `LS:R1:${leases}:0:${lver}`, '-f', '1']).stdout, /request done -272\n$/);
    assert.match(d.cli(['client', 'examine', '-s', `LS:1:${ids}:0`]).stdout, /examine done 0\n$/);
    assert.equal(await exited, 'SIGKILL');
  });

  test('bad input on other connections while a client keeps its lease and gets answers', async () => {
    const h = await holder(`sanlock.acquire(b"LS", b"R3", [(${JSON.stringify(leases)}, ${2 * MiB})], slkfd=fd)`);
    const pid = String(h.proc.pid);
    const socks = await Promise.all([1, 2, 3, 4, 5].map(() => d.rawConnect()));
    socks[0]!.write(Buffer.alloc(1024 * 1024)); // a megabyte of zeros
    const hdr = Buffer.alloc(32);
    hdr.writeUInt32LE(0x04282010, 0);
    hdr.writeUInt32LE(1, 4);
    hdr.writeUInt32LE(7, 8); // ACQUIRE, registered check fails, payload drained
    hdr.writeInt32LE(1, 24);
    hdr.writeInt32LE(-1, 28);
    hdr.writeUInt32LE(32 + 1168 + 56, 16);
    socks[1]!.write(Buffer.concat([hdr, Buffer.alloc(1168 + 56, 0xab)]));
    socks[2]!.end(Buffer.from('garbage that is not a header at all'));
    const h2 = Buffer.from(hdr);
    h2.writeUInt32LE(99, 8); // unknown command
    socks[3]!.write(h2);
    // socks[4] never writes
    for (let i = 0; i < 3; i++) {
      const inq = d.cli(['client', 'inquire', '-p', pid]);
      assert.ok(inq.stdout.startsWith(`inquire pid ${pid}\ninquire done 0 res_count 1\n"LS:R3:${leases}:2097152:`), inq.stdout);
    }
    assert.equal(d.cli(['client', 'set_config', '-s', 'LS', '-u', '1']).stdout, 'set_config LS 1\nset_config done 0\n');
    assert.equal(d.cli(['client', 'set_config', '-s', 'LS', '-u', '0']).stdout, 'set_config LS 2\nset_config done 0\n');
    assert.match(d.cli(['client', 'set_config', '-s', 'NOLS', '-u', '1']).stdout, /set_config done -2\n$/);
    assert.match(d.cli(['client', 'set_config', '-s', 'LS']).stdout, /set_config done -22\n$/);
    for (const s of socks) s.destroy();
    assert.equal(h.proc.exitCode, null);
    h.proc.kill('SIGKILL');
    await waitFor(() => leaderOf(leases, 2 * MiB)[0] === '0000000000', 10_000, 'R3 released');
  });

  test('at most 32 event channels per lockspace (-ENOCSI)', () => {
    const r = d.py(`fds = []\ntry:\n    for i in range(40):\n        fds.append(sanlock.reg_event(b"LS"))\nexcept sanlock.SanlockException as e:\n    print("ERR", e.errno, len(fds))\nfor f in fds:\n    sanlock.end_event(f, b"LS")\nprint("ENDED")`);
    assert.match(r.stdout, /ERR 50 32\nENDED\n/, r.stderr);
    assert.match(d.py('try:\n    sanlock.reg_event(b"NOLS")\nexcept sanlock.SanlockException as e:\n    print("ERR", e.errno)').stdout, /ERR 2\n/);
  });

  test('rem_lockspace SIGKILLs a holder, releases the delta lease; inq gives ENOENT', async () => {
    const h = await holder(`sanlock.acquire(b"LS", b"R2", [(${JSON.stringify(leases)}, ${MiB})], slkfd=fd)`);
    const exited = new Promise<string | null>((r) => h.proc.once('exit', (_c, sig) => r(sig)));
    const r = d.cli(['client', 'rem_lockspace', '-s', `LS:1:${ids}:0`]);
    assert.equal(r.stdout, 'rem_lockspace\nrem_lockspace done 0\n');
    assert.equal(await exited, 'SIGKILL');
    assert.match(d.cli(['client', 'inq_lockspace', '-s', `LS:1:${ids}:0`]).stdout, /done -2\n$/);
    // the killed holder's lease is abandoned, not released: still owned on disk by host 1
    const r2 = leaderOf(leases, MiB);
    assert.notEqual(r2[0], '0000000000');
    assert.equal(r2[1], '0001');
    assert.match(direct(['dump', ids]), /LS\s+hostOurs\s+0000000000 0001 0001/);
    assert.equal(d.cli(['client', 'gets']).stdout, '');
    assert.match(d.cli(['client', 'rem_lockspace', '-s', `LS:1:${ids}:0`]).stdout, /done -2\n$/);
  });

  test('init and read of lockspace and resource through the daemon', () => {
    const ids2 = join(dir, 'ids2');
    execFileSync('truncate', ['-s', '2M', ids2]);
    assert.equal(d.cli(['client', 'init', '-s', `LS2:0:${ids2}:0`, '-o', '1']).stdout, 'init\ninit done 0\n');
    assert.equal(d.cli(['client', 'init', '-r', `LS2:RX:${ids2}:${MiB}`]).stdout, 'init\ninit done 0\n');
    assert.equal(d.cli(['client', 'read', '-s', `LS2:0:${ids2}:0`, '-D']).stdout, `s LS2:1:${ids2}:0\nio_timeout 1\nsector_size 512\nalign_size 1048576\n`);
    assert.equal(d.cli(['client', 'read', '-r', `LS2:RX:${ids2}:${MiB}`]).stdout, `r LS2:RX:${ids2}:1048576:0\n`);
    // the images are byte-identical to what the real sanlock writes
    const ids3 = join(dir, 'ids3');
    execFileSync('truncate', ['-s', '2M', ids3]);
    direct(['init', '-s', `LS2:0:${ids3}:0`, '-o', '1']);
    direct(['init', '-r', `LS2:RX:${ids3}:${MiB}`]);
    assert.ok(readFileSync(ids2).equals(readFileSync(ids3)), 'init images differ from sanlock direct init');
    assert.match(d.cli(['client', 'read', '-r', `LS2:RY:${ids2}:${MiB}`]).stdout, /read error -227/);
    assert.equal(d.cli(['client', 'align', '-s', `LS2:0:${ids2}:0`]).stdout, 'align\nalign done 1048576\n');
  });
});
