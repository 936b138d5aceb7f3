// Issue 9 item 4: corrupt lease areas on disk. Our daemon is joined to lockspace LA (host 1) and
// LB (host 1) and a client holds RB in LB. Each corrupted lease in LA must be refused with
// sanlock's code (never acquired), nothing must be written to it, and LB keeps working.
// Corrupting our own delta lease in LA makes LA fail while LB goes on renewing.
// Random bit flips (seeded, CORRUPT_SEED) in resource leaders and in the delta lease a join
// reads are each compared with the real daemon on identical bytes: same code, nothing written.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeLeader, encodeLeader } from '../../src/ondisk/leader.js';
import { emptyOptions, encodeOptions, encodeResource, makeResource } from '../../src/protocol/structs.js';
import { header, PYTHON, pyAvailable, readBytes, waitFor } from '../daemon/our-daemon.js';
import { haveRealSanlock, type RealDaemon, startRealDaemon } from '../helpers/real-sanlock.js';
import { direct, MiB, type Setup, setup } from './helpers.js';
import { SeededRandom } from '../../src/lease/manual-clock.js';

const skip = !pyAvailable();
const FLIPS = 12;
const SEED = Number(process.env.CORRUPT_SEED ?? Date.now() % 1_000_000);

/** SeededRandom (mulberry32): the bit positions of a seed are reproducible. */
function rng(seed: number): () => number {
  const r = new SeededRandom(seed);
  return () => r.next();
}

/** Flips 1-3 random bits among the leader's checksummed bytes and its checksum (0..171). */
function flipBits(sec: Buffer, rand: () => number): string[] {
  const n = 1 + Math.floor(rand() * 3);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const bit = Math.floor(rand() * 172 * 8);
    sec[bit >> 3]! ^= 1 << (bit & 7);
    out.push(`byte ${bit >> 3} bit ${bit & 7}`);
  }
  return out;
}

function pwrite(path: string, off: number, buf: Buffer): void {
  const fd = openSync(path, existsSync(path) ? 'r+' : 'w+');
  try {
    writeSync(fd, buf, 0, buf.length, off);
  } finally {
    closeSync(fd);
  }
}

function pread(path: string, off: number, len: number): Buffer {
  return readFileSync(path).subarray(off, off + len);
}

/** A deterministic pseudo-random byte stream (xorshift), so failures can be replayed. */
function noise(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

describe('corrupt storage against our daemon', { skip }, () => {
  let s: Setup;
  let idsA: string;
  let leasesA: string;
  let idsB: string;
  let leasesB: string;
  let holder: ChildProcess | undefined;
  let holderOut = '';
  let real: RealDaemon | undefined;

  before(async () => {
    s = await setup('corrupt', { idsA: 1, leasesA: 10, idsB: 1, leasesB: 1, leasesF: FLIPS }, (f) => {
      direct(['init', '-s', `LA:0:${f('idsA')}:0`, '-o', '1']);
      direct(['init', '-s', `LB:0:${f('idsB')}:0`, '-o', '1']);
      for (let i = 0; i < 10; i++) direct(['init', '-r', `LA:R${i}:${f('leasesA')}:${i * MiB}`]);
      direct(['init', '-r', `LB:RB:${f('leasesB')}:0`]);
      for (let i = 0; i < FLIPS; i++) direct(['init', '-r', `LA:F${i}:${f('leasesF')}:${i * MiB}`]);
    });
    if (haveRealSanlock()) real = await startRealDaemon(`${s.dir}/real-run`);
    idsA = s.file('idsA');
    leasesA = s.file('leasesA');
    idsB = s.file('idsB');
    leasesB = s.file('leasesB');
    assert.match(s.d.cli(['client', 'add_lockspace', '-s', `LA:1:${idsA}:0`, '-o', '1']).stdout, /done 0\n$/);
    assert.match(s.d.cli(['client', 'add_lockspace', '-s', `LB:1:${idsB}:0`, '-o', '1']).stdout, /done 0\n$/);
    holder = spawn(PYTHON, ['-c', `import sanlock, time\nfd = sanlock.register()\nsanlock.acquire(b"LB", b"RB", [(b"${leasesB}", 0)], slkfd=fd)\nprint("READY", flush=True)\ntime.sleep(300)\n`], {
      env: s.d.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    holder.stdout!.on('data', (x) => (holderOut += x));
    holder.stderr!.on('data', (x) => (holderOut += x));
    await waitFor(() => holderOut.includes('READY') || holder!.exitCode !== null, 20_000, 'holder');
    assert.match(holderOut, /READY/);
  });

  after(async () => {
    if (holder && holder.exitCode === null) holder.kill('SIGKILL');
    await real?.stop();
    await s?.cleanup();
  });

  /** ACQUIRE on a fresh registered connection; returns the result and closes it. */
  async function acquire(ls: string, name: string, path: string, offset: number): Promise<number> {
    const sock: Socket = await s.d.rawConnect();
    try {
      sock.write(header(1));
      const payload = Buffer.concat([encodeResource(makeResource(ls, name, [{ path, offset, pad1: 0, pad2: 0 }])), encodeOptions(emptyOptions())]);
      sock.write(Buffer.concat([header(7, { data: 1, data2: -1, length: 32 + payload.length }), payload]));
      const rep = await readBytes(sock, 32, 20_000);
      assert.equal(rep.length, 32, 'acquire reply');
      return rep.readInt32LE(24);
    } finally {
      sock.destroy();
    }
  }

  /** The close of an acquiring connection releases in the background: wait until it is done,
   *  or the next acquire meets a lease still being released (-EAGAIN). */
  async function released(n: number): Promise<void> {
    await waitFor(() => !new RegExp(`^r LA:R${n}:`, 'm').test(s.d.cli(['client', 'status']).stdout), 10_000, 'release');
    // status drops the resource before the release write has landed; give that write its time
    await waitFor(() => decodeLeader(pread(leasesA, n * MiB, 512), 0).timestamp === 0, 10_000, 'leader released');
  }

  /** `client read -r` through the daemon: the "done N" code. */
  function readRes(name: string, offset: number, cli = s.d.cli.bind(s.d)): number {
    const out = cli(['client', 'read', '-r', `LA:${name}:${leasesA}:${offset}`]).stdout;
    if (out.startsWith(`r LA:${name}:`)) return 0;
    const m = /read error (-?\d+)/.exec(out);
    assert.ok(m, `read output: ${out}`);
    return Number(m[1]);
  }

  /** READ_RESOURCE through our daemon answers as the real daemon does on the same bytes. */
  function assertReadLikeReal(n: number): void {
    const rc = readRes(`R${n}`, n * MiB);
    if (real) assert.equal(rc, readRes(`R${n}`, n * MiB, real.cli.bind(real)), 'read differs from the real daemon');
    else assert.ok(rc < 0, `read returned ${rc}`);
  }

  /** LB is still served: status lists LB and RB, and RB's holder still has it. */
  function assertBHealthy(): void {
    const st = s.d.cli(['client', 'status']).stdout;
    assert.match(st, /^s LB:1:/m);
    assert.match(st, /^r LB:RB:/m);
    assert.equal(holder!.exitCode, null, 'RB holder died');
  }

  /** Rewrites the leader of LA:Rn with `edit` applied and a correct checksum. */
  function editLeader(n: number, edit: (l: ReturnType<typeof decodeLeader>) => void): void {
    const sec = pread(leasesA, n * MiB, 512);
    const l = decodeLeader(sec, 0);
    edit(l);
    encodeLeader(l, sec, 0);
    pwrite(leasesA, n * MiB, sec);
  }

  const cases: { n: number; what: string; codes: number[]; corrupt: (n: number) => Promise<void> | void }[] = [
    { n: 0, what: 'zeroed leader', codes: [-223], corrupt: (n) => pwrite(leasesA, n * MiB, Buffer.alloc(512)) },
    {
      n: 1,
      what: 'wrong magic (checksum valid)',
      codes: [-223],
      corrupt: (n) => editLeader(n, (l) => (l.magic = 0x0badcafe)),
    },
    { n: 2, what: 'bit flips in the leader', codes: [-229], corrupt: (n) => {
      const sec = pread(leasesA, n * MiB, 512);
      sec[152] ^= 0x10; // timestamp
      sec[60] ^= 0x01; // lockspace name
      pwrite(leasesA, n * MiB, sec);
    } },
    { n: 3, what: 'unknown major version', codes: [-224], corrupt: (n) => editLeader(n, (l) => (l.version = 0x00090001)) },
    { n: 4, what: 'other lockspace name', codes: [-226], corrupt: (n) => editLeader(n, (l) => (l.spaceName = 'LX')) },
    { n: 5, what: 'other resource name', codes: [-227], corrupt: (n) => editLeader(n, (l) => (l.resourceName = 'RX')) },
    { n: 6, what: 'num_hosts below our host id', codes: [-228], corrupt: (n) => editLeader(n, (l) => (l.numHosts = 0)) },
    {
      n: 7,
      what: 'torn leader sector (first 128 bytes from an older image)',
      codes: [-229],
      corrupt: async (n) => {
        const old = pread(leasesA, n * MiB, 512);
        // a successful acquire/release moves the leader on (lver, owner, timestamp)
        assert.equal(await acquire('LA', `R${n}`, leasesA, n * MiB), 0);
        await released(n);
        const cur = pread(leasesA, n * MiB, 512);
        assert.ok(!cur.equals(old));
        pwrite(leasesA, n * MiB, Buffer.concat([old.subarray(0, 128), cur.subarray(128)]));
      },
    },
    {
      n: 8,
      what: 'bit flips in our dblock',
      codes: [-214],
      corrupt: async (n) => {
        // our host's dblock (sector 2 for host 1) carries a checksum after one acquire/release
        assert.equal(await acquire('LA', `R${n}`, leasesA, n * MiB), 0);
        await released(n);
        const d = pread(leasesA, n * MiB + 2 * 512, 512);
        assert.notEqual(d.readUInt32LE(32), 0, 'dblock has no checksum');
        d[0] ^= 0x40; // mbal
        pwrite(leasesA, n * MiB + 2 * 512, d);
      },
    },
    { n: 9, what: 'foreign data (1 MiB of noise)', codes: [-223], corrupt: (n) => pwrite(leasesA, n * MiB, noise(MiB, 0x9e3779b9)) },
  ];

  for (const c of cases) {
    test(`LA:R${c.n} ${c.what}: acquire refused with ${c.codes.join('/')}, nothing written, LB served`, async () => {
      await c.corrupt(c.n);
      const bad = pread(leasesA, c.n * MiB, MiB);
      const code = await acquire('LA', `R${c.n}`, leasesA, c.n * MiB);
      assert.ok(c.codes.includes(code), `acquire returned ${code}`);
      assert.ok(pread(leasesA, c.n * MiB, MiB).equals(bad), 'the corrupt lease area was written');
      assertReadLikeReal(c.n);
      assert.doesNotMatch(s.d.cli(['client', 'status']).stdout, new RegExp(`^r LA:R${c.n}:`, 'm'));
      assertBHealthy();
    });
  }

  test(`random bit flips in ${FLIPS} resource leaders (seed ${SEED}): refused with the real daemon's code, nothing written`, async () => {
    const rand = rng(SEED);
    const leasesF = s.file('leasesF');
    const seen = new Map<number, number>();
    for (let i = 0; i < FLIPS; i++) {
      const sec = pread(leasesF, i * MiB, 512);
      const where = flipBits(sec, rand);
      pwrite(leasesF, i * MiB, sec);
      const why = `F${i} ${where.join(', ')} (CORRUPT_SEED=${SEED})`;
      const bad = pread(leasesF, i * MiB, MiB);
      const code = await acquire('LA', `F${i}`, leasesF, i * MiB);
      // sanlock checks magic, version, names and num_hosts before the checksum: a flip there
      // gives that field's code
      assert.ok(code <= -223 && code >= -229, `acquire returned ${code}: ${why}`);
      assert.ok(pread(leasesF, i * MiB, MiB).equals(bad), `the corrupt lease area was written: ${why}`);
      const rd = (cli: (a: string[]) => { stdout: string }): string => cli(['client', 'read', '-r', `LA:F${i}:${leasesF}:${i * MiB}`]).stdout;
      const ours = rd(s.d.cli.bind(s.d));
      assert.match(ours, /read error -2\d\d\b/, `read through our daemon: ${ours} ${why}`);
      if (real) assert.equal(/-2\d\d/.exec(ours)?.[0], /-2\d\d/.exec(rd(real.cli.bind(real)))?.[0], `read differs from the real daemon: ${why}`);
      assert.doesNotMatch(s.d.cli(['client', 'status']).stdout, new RegExp(`^r LA:F${i}:`, 'm'));
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
    console.log(`# bit flips seed ${SEED}: codes ${[...seen].map(([c, n]) => `${c}x${n}`).join(' ')}`);
    assertBHealthy();
  });

  /** add_lockspace LC:1 on a copy of an ids area damaged by `damage`; the code and whether the file changed. */
  async function joinDamaged(tag: string, damage: (ids: string) => void, cli: (a: string[]) => { stdout: string }, rem: boolean): Promise<{ code: number; written: boolean }> {
    const ids = `${s.dir}/idsC-${tag}`;
    pwrite(ids, 0, Buffer.alloc(MiB));
    direct(['init', '-s', `LC:0:${ids}:0`, '-o', '1']);
    damage(ids);
    const before = readFileSync(ids);
    const out = cli(['client', 'add_lockspace', '-s', `LC:1:${ids}:0`, '-o', '1']).stdout;
    const m = /add_lockspace_timeout done (-?\d+)/.exec(out);
    assert.ok(m, `add_lockspace output: ${out}`);
    const code = Number(m[1]);
    const written = !readFileSync(ids).equals(before);
    if (code === 0 && rem) cli(['client', 'rem_lockspace', '-s', `LC:1:${ids}:0`]);
    return { code, written };
  }

  const idsCases: { tag: string; damage: (ids: string) => void; expect?: number }[] = [
    { tag: 'zeroed', damage: (ids) => pwrite(ids, 0, Buffer.alloc(512)), expect: -223 },
    { tag: 'noise', damage: (ids) => pwrite(ids, 0, noise(MiB, 0x1234567)), expect: -223 },
    {
      tag: 'bitflip',
      damage: (ids) => {
        const sec = pread(ids, 0, 512);
        sec[40]! ^= 0x02; // owner generation
        pwrite(ids, 0, sec);
      },
      expect: -229,
    },
    {
      tag: 'foreign-resource-leader',
      // a paxos leader where our delta lease should be
      damage: (ids) => pwrite(ids, 0, pread(leasesA, 0, 512)),
    },
    {
      tag: 'other-host-noise',
      // host 2's sector is garbage: our join must not care
      damage: (ids) => pwrite(ids, 512, noise(512, 0x55aa)),
      expect: 0,
    },
  ];
  for (const c of idsCases) {
    test(`join with our delta lease ${c.tag}: add_lockspace answers as the real daemon${c.expect !== undefined ? ` (${c.expect})` : ''}, nothing written on failure, LB served`, async () => {
      const ours = await joinDamaged(`${c.tag}-ours`, c.damage, s.d.cli.bind(s.d), true);
      if (c.expect !== undefined) assert.equal(ours.code, c.expect);
      if (ours.code !== 0) {
        assert.ok(ours.code < 0);
        assert.equal(ours.written, false, 'a refused join wrote to the ids area');
        assert.doesNotMatch(s.d.cli(['client', 'status']).stdout, /^s LC:/m);
      }
      if (real) {
        const theirs = await joinDamaged(`${c.tag}-real`, c.damage, real.cli.bind(real), true);
        assert.deepEqual(ours, theirs, 'the real daemon answers differently');
      }
      assertBHealthy();
    });
  }

  test('our own delta lease in LA corrupted: LA fails, LB keeps renewing and RB stays held', async () => {
    const bTs0 = decodeLeader(pread(idsB, 0, 512), 0).timestamp;
    const sec = pread(idsA, 0, 512);
    sec[152] ^= 0x01; // timestamp bit: checksum no longer matches
    sec[40] ^= 0x01; // generation
    pwrite(idsA, 0, sec);
    // LA's renewal fails on the next read (every 2 s with io_timeout 1): the lockspace goes
    // away from status (no pid uses it, so recovery ends at once) — well within 20 s
    await waitFor(() => !/^s LA:/m.test(s.d.cli(['client', 'status']).stdout), 20_000, 'LA to fail');
    // the renewal failure is logged with sanlock's code for the record it found
    // (status may stop listing LA a moment before the once-a-second check logs it)
    await waitFor(() => /killing_pids check -2(29|60|61)\b/.test(s.d.stderr()), 5000, 'killing_pids log line').catch(() => {
      assert.fail(s.d.stderr().split('\n').slice(-15).join('\n'));
    });
    // LB's delta lease moved on meanwhile and keeps moving
    await waitFor(() => decodeLeader(pread(idsB, 0, 512), 0).timestamp > bTs0, 10_000, 'LB renewal');
    const bTs1 = decodeLeader(pread(idsB, 0, 512), 0).timestamp;
    await waitFor(() => decodeLeader(pread(idsB, 0, 512), 0).timestamp > bTs1, 10_000, 'LB renewal again');
    assertBHealthy();
    // sanlock's answer for a lockspace that is not (or no longer) joined
    assert.equal(await acquire('LA', 'R9', leasesA, 9 * MiB), -28);
  });
});
