// Both directions against the real `sanlock direct` (3.8.5): what our init/format writes, their
// dump/read_leader print exactly as for their own init, and the bytes are identical; what they
// write, we read identically.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { haveRealSanlock, scratchDir } from '../helpers/real-sanlock.js';
import { direct, loadVector, realSanlock } from './direct-helpers.js';

const skip = haveRealSanlock() ? false : 'real sanlock not installed';
const dir = scratchDir('direct-interop');
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function blank(mib: number): string {
  const f = `${dir}/f${n++}.img`;
  writeFileSync(f, '');
  truncateSync(f, mib * 1048576);
  return f;
}

type Runner = (args: string[]) => Promise<{ stdout: string; status: number }>;
const ours: Runner = (a) => direct(a);
const theirs: Runner = async (a) => realSanlock(['direct', ...a]);

/** Runs the same read commands with both tools on `file`; all four outputs must agree. */
async function sameReadsBothWays(fileOurs: string, fileTheirs: string, reads: (f: string) => string[][]): Promise<void> {
  const ro = reads(fileOurs);
  const rt = reads(fileTheirs);
  for (let i = 0; i < ro.length; i++) {
    const a = await theirs(ro[i]!); // real sanlock reading our image
    const b = await theirs(rt[i]!); // real sanlock reading its own image
    const c = await ours(rt[i]!); // us reading theirs
    const d = await ours(ro[i]!); // us reading ours
    assert.deepEqual(a, b, `real on ours vs real on theirs: ${ro[i]!.join(' ')}`);
    assert.deepEqual(c, b, `ours on theirs: ${rt[i]!.join(' ')}`);
    assert.deepEqual(d, b, `ours on ours: ${ro[i]!.join(' ')}`);
  }
}

const geometries: Array<{ label: string; zArgs: string[]; mib: number; resMib: number }> = [
  { label: '512/1M', zArgs: [], mib: 1, resMib: 1 },
  { label: '512/1M explicit', zArgs: ['-Z', '512', '-A', '1M'], mib: 1, resMib: 1 },
  { label: '4K/1M', zArgs: ['-Z', '4096', '-A', '1M'], mib: 1, resMib: 9 },
  { label: '4K/8M', zArgs: ['-Z', '4096', '-A', '8M'], mib: 8, resMib: 8 },
];

for (const g of geometries) {
  test(`lockspace and resource init ${g.label}: both directions`, { skip }, async () => {
    const a = blank(g.mib);
    const b = blank(g.mib);
    assert.deepEqual(await ours(['init', '-s', `LSI:0:${a}:0`, '-o', '7', ...g.zArgs]), { stdout: 'init done 0\n', status: 0 });
    assert.deepEqual(await theirs(['init', '-s', `LSI:0:${b}:0`, '-o', '7', ...g.zArgs]), { stdout: 'init done 0\n', status: 0 });
    assert.ok(readFileSync(a).equals(readFileSync(b)), 'lockspace bytes identical');
    await sameReadsBothWays(a, b, (f) => [
      ['dump', f], ['dump', f, '-f', '1'], ['read_leader', '-s', `LSI:1:${f}:0`], ['read_leader', '-s', `LSI:2:${f}:0`],
      ['read_leader', '-s', `LSJ:1:${f}:0`],
    ]);

    const ra = blank(g.resMib);
    const rb = blank(g.resMib);
    for (const extra of [[], ['-n', '5'], ['-n', '-5'], ['-n', '3000']]) {
      assert.deepEqual(await ours(['init', '-r', `LSI:RES:${ra}:0`, ...extra, ...g.zArgs]), { stdout: 'init done 0\n', status: 0 });
      assert.deepEqual(await theirs(['init', '-r', `LSI:RES:${rb}:0`, ...extra, ...g.zArgs]), { stdout: 'init done 0\n', status: 0 });
      assert.ok(readFileSync(ra).equals(readFileSync(rb)), `resource bytes identical ${extra.join(' ')}`);
      // With num_hosts 2^64-5 the real dump reads past its buffer (prints memory): leader only.
      const dumps = extra[1] === '-5' ? [] : [['dump', ra], ['dump', ra, '-f', '2']];
      await sameReadsBothWays(ra, rb, (f) => [
        ...dumps.map((d) => d.map((w) => w.replace(ra, f))), ['read_leader', '-r', `LSI:RES:${f}:0`], ['read_leader', '-r', `LSI:OTHER:${f}:0`],
      ]);
    }
  });
}

test('non-ASCII and 48-byte names pass through as bytes', { skip }, async () => {
  const a = blank(1);
  const b = blank(1);
  const res = `LSé:${'R'.repeat(46)}é:`;
  assert.equal((await ours(['init', '-r', `${res}${a}:0`])).status, 0);
  assert.equal(realSanlock(['direct', 'init', '-r', `${res}${b}:0`]).status, 0);
  assert.ok(readFileSync(a).equals(readFileSync(b)));
  assert.deepEqual(await ours(['dump', a]), realSanlock(['direct', 'dump', b]));
  assert.deepEqual(await ours(['read_leader', '-r', `${res}${a}:0`]), realSanlock(['direct', 'read_leader', '-r', `${res}${b}:0`]));
});

test('4K geometry on a 512-sector file at 512-aligned offsets (O_DIRECT allows it)', { skip }, async () => {
  const a = blank(3);
  const b = blank(3);
  for (const [f, run] of [[a, ours], [b, theirs]] as const) {
    assert.deepEqual(await run(['init', '-s', `LS:0:${f}:512`, '-Z', '4096', '-A', '1M']), { stdout: 'init done 0\n', status: 0 });
    assert.deepEqual(await run(['init', '-r', `LS:R:${f}:1049088`, '-Z', '4096', '-A', '1M', '-n', '3']), { stdout: 'init done 0\n', status: 0 });
    assert.deepEqual(await run(['format', '-x', `LS:${f}:1024`, '-Z', '4096', '-A', '1M']), { stdout: 'format done 0\n', status: 0 });
  }
  const x = readFileSync(a);
  const y = readFileSync(b);
  const pad = 1024 + 1048576 + 4096 + 20; // rindex_lease request padding (garbage in sanlock's)
  x.fill(0, pad, pad + 4);
  y.fill(0, pad, pad + 4);
  assert.ok(x.equals(y));
  await sameReadsBothWays(a, b, (f) => [
    ['read_leader', '-s', `LS:1:${f}:512`], ['dump', `${f}:512`, '-f', '2'], ['dump', `${f}:1024`, '-f', '2'],
    ['read_leader', '-r', `LS:R:${f}:1049088`], ['lookup', '-x', `LS:${f}:1024`],
  ]);
});

test('init -z (cleared lease): same bytes except the clearing time', { skip }, async () => {
  const a = blank(1);
  const b = blank(1);
  await ours(['init', '-r', `LS:RZ:${a}:0`, '-z', '1']);
  realSanlock(['direct', 'init', '-r', `LS:RZ:${b}:0`, '-z', '1']);
  const ba = readFileSync(a);
  const bb = readFileSync(b);
  assert.equal(ba.readUInt32LE(0), 0x11282016);
  assert.ok(Math.abs(Number(ba.readBigUInt64LE(192)) - Number(bb.readBigUInt64LE(192))) <= 2, 'both stamp monotonic seconds');
  ba.fill(0, 192, 200);
  bb.fill(0, 192, 200);
  assert.ok(ba.equals(bb));
  const r = await ours(['read_leader', '-r', `LS:RZ:${a}:0`]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^read_leader done -223\nmagic 0x11282016\n/);
  assert.deepEqual(await ours(['dump', a]), realSanlock(['direct', 'dump', b]));
});

test('rindex format/update/lookup/rebuild: both directions', { skip }, async () => {
  const a = blank(6);
  const b = blank(6);
  for (const [f, run] of [[a, ours], [b, theirs]] as const) {
    assert.equal((await run(['init', '-s', `LSR:0:${f}:0`])).status, 0);
    assert.deepEqual(await run(['format', '-x', `LSR:${f}:1M`]), { stdout: 'format done 0\n', status: 0 });
    assert.equal((await run(['init', '-r', `LSR:RA:${f}:3M`])).status, 0);
    assert.equal((await run(['init', '-r', `LSR:RB:${f}:5M`])).status, 0);
  }
  const same = (x: Buffer, y: Buffer) => {
    x.fill(0, 0x200214, 0x200218); // request padding garbage in the real rindex_lease
    y.fill(0, 0x200214, 0x200218);
    assert.ok(x.equals(y), 'rindex images identical');
  };
  same(readFileSync(a), readFileSync(b));
  const steps: Array<(f: string) => string[]> = [
    (f) => ['update', '-x', `LSR:${f}:1M`, '-e', 'RA:3M'],
    (f) => ['update', '-x', `LSR:${f}:1048576`, '-e', 'GHOST:4M'],
    (f) => ['lookup', '-x', `LSR:${f}:1M`],
    (f) => ['lookup', '-x', `LSR:${f}:1M`, '-e', 'GHOST'],
    (f) => ['lookup', '-x', `LSR:${f}:1M`, '-e', ':4M'],
    (f) => ['lookup', '-x', `LSR:${f}:1M`, '-e', 'RA:4M'],
    (f) => ['lookup', '-x', `LSR:${f}:1M`, '-e', 'RA:3000000'],
    (f) => ['update', '-x', `LSR:${f}:1M`, '-e', 'GHOST:4M', '-z', '0'],
    (f) => ['update', '-x', `LSR:${f}:1M`, '-e', 'RA'],
    (f) => ['rebuild', '-x', `LSR:${f}:1M`],
    (f) => ['lookup', '-x', `LSR:${f}:1M`, '-e', 'RB'],
    (f) => ['lookup', '-x', `LSQ:${f}:1M`],
    (f) => ['lookup', '-x', `LSR:${f}:2M`],
    (f) => ['lookup', '-x', `LSR:${f}:0`],
    (f) => ['lookup', '-x', `LSR:${f}:1048577`],
    (f) => ['dump', f, '-f', '1'],
    (f) => ['dump', `${f}:1M`, '-f', '2'],
  ];
  for (const s of steps) {
    const mine = await ours(s(a));
    const real = realSanlock(['direct', ...s(b)]);
    assert.deepEqual(mine, real, s(a).join(' '));
    same(readFileSync(a), readFileSync(b));
  }
});

test('their host-joined images read identically (vectors with timestamps)', { skip }, async () => {
  for (const name of ['ls_512_1M_host2_event', 'res_512_1M_sh_host12', 'res_4k_1M_lvb', 'rindex_create2']) {
    const f = `${dir}/${name}.img`;
    writeFileSync(f, loadVector(name));
    for (const args of [['dump', f, '-f', '2'], ['dump', `${f}:0:1M`, '-f', '1'], ['read_leader', '-s', `LS:2:${f}:0`], ['read_leader', '-r', `LS:R2:${f}:0`]]) {
      assert.deepEqual(await ours(args), realSanlock(['direct', ...args]), args.join(' '));
    }
  }
});
