// Bad input: each case runs with our `direct` and with the real sanlock on identical scratch
// copies; stdout and exit status must match, and no file may change.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { sanlockChecksum } from '../../src/ondisk/checksum.js';
import { haveRealSanlock, scratchDir } from '../helpers/real-sanlock.js';
import { direct, loadVector, realSanlock } from './direct-helpers.js';

const skip = haveRealSanlock() ? false : 'real sanlock not installed';
const root = scratchDir('direct-errors');
after(() => rmSync(root, { recursive: true, force: true }));

const random = Buffer.alloc(1048576);
for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;

const zeroLeader = `magic 0x0
version 0x0
flags 0x0
sector_size 0
num_hosts 0
max_hosts 0
owner_id 0
owner_generation 0
lver 0
space_name 
resource_name 
timestamp 0
checksum 0x0
io_timeout 0
write_id 0
write_generation 0
write_timestamp 0
`;

/** res_512_1M_init with num_hosts 7: a valid R1 leader that differs from res.img's. */
function res2(): Buffer {
  const b = loadVector('res_512_1M_init');
  b.writeBigUInt64LE(7n, 16);
  b.writeUInt32LE(sanlockChecksum(b, 0, 168), 168);
  return b;
}

const files: Record<string, () => Buffer> = {
  'res2.img': res2,
  'ls.img': () => loadVector('ls_512_1M_init'),
  'res.img': () => loadVector('res_512_1M_init'),
  'rx.img': () => loadVector('rindex_create2'),
  'blank.img': () => Buffer.alloc(1048576),
  'garbage.img': () => random,
  'short.img': () => Buffer.alloc(1000, 1),
  'short2.img': () => loadVector('ls_512_1M_init').subarray(0, 2048),
};

let caseNo = 0;
/** A fresh directory with every test file; returns it. */
function setup(): string {
  const d = `${root}/c${caseNo++}`;
  mkdirSync(`${d}/adir`, { recursive: true });
  for (const [n, f] of Object.entries(files)) writeFileSync(`${d}/${n}`, f());
  return d;
}

function snapshot(d: string): Record<string, Buffer> {
  return Object.fromEntries(Object.keys(files).map((n) => [n, readFileSync(`${d}/${n}`)]));
}

/** Both tools on their own copy; `@` in an argument is the copy's directory. */
async function both(args: string[]): Promise<{ ours: { stdout: string; status: number }; real: { stdout: string; status: number } }> {
  const a = setup();
  const b = setup();
  const before = snapshot(a);
  const ours = await direct(args.map((w) => w.replaceAll('@', a)));
  const real = realSanlock(['direct', ...args.map((w) => w.replaceAll('@', b))]);
  const afterA = snapshot(a);
  const afterB = snapshot(b);
  for (const n of Object.keys(files)) {
    assert.ok(afterB[n]!.equals(before[n]!), `real sanlock changed ${n}: case is not a no-write case`);
    assert.ok(afterA[n]!.equals(before[n]!), `we changed ${n} on ${args.join(' ')}`);
  }
  // Messages that print a path print the copy's path: make them comparable.
  return { ours: { ...ours, stdout: ours.stdout.replaceAll(a, '@') }, real: { ...real, stdout: real.stdout.replaceAll(b, '@') } };
}

const sameCases: Array<[string, string[], string?, number?]> = [
  ['unaligned offset', ['init', '-s', 'LS:0:@/ls.img:100'], 'init done -22\n'],
  ['unaligned resource offset', ['init', '-r', 'LS:R:@/res.img:100'], 'init done -22\n'],
  ['missing lockspace file', ['init', '-s', 'LS:0:@/missing.img:0'], 'init done -19\n'],
  ['missing resource file', ['init', '-r', 'LS:R:@/missing.img:0'], 'init done -2\n'],
  ['lockspace on a directory', ['init', '-s', 'LS:0:@/adir:0'], 'init done -19\n'],
  ['resource name over 48', ['init', '-r', `LS:${'B'.repeat(49)}:@/res.img:0`], 'resource arg parse error -1\n\ninit done -22\n'],
  ['resource without offset', ['init', '-r', 'LS:R1:@/res.img']],
  ['resource names only', ['init', '-r', 'LS:R1'], 'init done -19\n'],
  ['nothing to init', ['init'], 'init done -22\n'],
  ['bad -Z/-A pair', ['init', '-s', 'LS:0:@/ls.img:0', '-Z', '512', '-A', '2M'],
    'Invalid sector_size/align_size combination (512/2097152)\nUse one of: 512/1M, 4096/1M, 4096/2M, 4096/4M, 4096/8M.\n'],
  ['-A without -Z', ['init', '-s', 'LS:0:@/ls.img:0', '-A', '1M']],
  ['-Z without -A', ['init', '-s', 'LS:0:@/ls.img:0', '-Z', '4096'], 'init done -1\n'],
  ['-Z without -A (resource)', ['init', '-r', 'LS:R:@/res.img:0', '-Z', '512'], 'init done -1\n'],
  ['format -Z without -A', ['format', '-x', 'LSX:@/rx.img:1M', '-Z', '512'], 'format done -1\n'],
  ['format unaligned', ['format', '-x', 'LSX:@/blank.img:100'], 'format done -22\n'],
  ['format missing file', ['format', '-x', 'LSX:@/missing.img:0'], 'format done -2\n'],
  ['format without -x', ['format'], 'format done -2\n'],
  ['glued option value', ['init', '-s', 'LS:0:@/ls.img:0', '-Dx'], 'unknown option -Dx\nspace required before option value\n'],
  ['option without value', ['init', '-s'], "option 's' requires arg\n"],
  ['unknown option', ['init', '-q', '1'], 'unknown option: q\n'],
  ['unknown action', ['bogus'], 'direct action "bogus" is unknown\n'],
  ['help is not a direct action', ['help']],
  ['dump without path', ['dump'], ''],
  ['dump missing file', ['dump', '@/missing.img']],
  ['dump blank', ['dump', '@/blank.img'], 'Cannot find sector_size and align_size, set with -A and -Z.\n'],
  ['dump garbage', ['dump', '@/garbage.img', '-f', '1']],
  ['dump truncated', ['dump', '@/short.img']],
  ['dump past the end', ['dump', '@/ls.img:1M']],
  ['dump unaligned offset', ['dump', '@/ls.img:512'], undefined, 0],
  ['dump bounded size', ['dump', '@/res.img:0:2M', '-f', '2'], undefined, 0],
  ['dump forced sizes', ['dump', '@/ls.img', '-Z', '4096', '-A', '1M'], undefined, 0],
  ['read_leader blank', ['read_leader', '-s', 'LS:1:@/blank.img:0']],
  ['read_leader garbage (lockspace)', ['read_leader', '-s', 'LS:1:@/garbage.img:0']],
  ['read_leader garbage (resource)', ['read_leader', '-r', 'LS:R1:@/garbage.img:0']],
  ['read_leader truncated', ['read_leader', '-s', 'LS:1:@/short.img:0']],
  ['read_leader truncated 2', ['read_leader', '-s', 'LS:1:@/short2.img:0']],
  ['read_leader host beyond file', ['read_leader', '-s', 'LS:2049:@/ls.img:0']],
  ['read_leader unused host sector', ['read_leader', '-s', 'LS:2048:@/ls.img:0']],
  ['read_leader wrong lockspace', ['read_leader', '-s', 'LSX:1:@/ls.img:0']],
  ['read_leader resource as lockspace', ['read_leader', '-s', 'LS:1:@/res.img:0']],
  ['read_leader wrong resource', ['read_leader', '-r', 'LS:R2:@/res.img:0']],
  ['read_leader lockspace as resource', ['read_leader', '-r', 'LS:R1:@/ls.img:0']],
  ['read_leader resource at request sector', ['read_leader', '-r', 'LS:R1:@/res.img:512']],
  ['read_leader two disks, one blank', ['read_leader', '-r', 'LS:R1:@/res.img:0:@/blank.img:0'], `read_leader done -220\n${zeroLeader}`],
  ['read_leader two blank disks', ['read_leader', '-r', 'LS:R1:@/blank.img:0:@/blank.img:0']],
  ['read_leader three disks, one blank', ['read_leader', '-r', 'LS:R1:@/res.img:0:@/blank.img:0:@/res.img:0'], undefined, 0],
  ['read_leader differing leaders', ['read_leader', '-r', 'LS:R1:@/res.img:0:@/res.img:0:@/res2.img:0:@/res2.img:0'], `read_leader done -222\n${zeroLeader}`],
  ['init with a missing second disk', ['init', '-r', 'LS:R1:@/blank.img:0:@/missing.img:0'], 'init done -2\n'],
  ['lookup missing file', ['lookup', '-x', 'LSX:@/missing.img:1M'], 'lookup done -2\n'],
  ['lookup without -x', ['lookup'], 'lookup done -2\n'],
  ['lookup not an rindex', ['lookup', '-x', 'LSX:@/blank.img:0'], 'lookup done -274\n'],
  ['lookup truncated', ['lookup', '-x', 'LSX:@/short.img:0']],
  ['lookup wrong lockspace', ['lookup', '-x', 'LSY:@/rx.img:1M'], 'lookup done -276\n'],
  ['lookup unknown name', ['lookup', '-x', 'LSX:@/rx.img:1M', '-e', 'NOPE'], 'lookup done -2\n'],
  ['update wrong lockspace', ['update', '-x', 'LSY:@/rx.img:1M', '-e', 'N:5M'], 'update done -276\n'],
  ['update without offset', ['update', '-x', 'LSX:@/rx.img:1M', '-e', 'N'], 'update done -22\n'],
  ['update unaligned offset', ['update', '-x', 'LSX:@/rx.img:1M', '-e', 'N:5000'], 'update done -277\n'],
  ['rebuild not an rindex', ['rebuild', '-x', 'LSX:@/ls.img:0'], 'rebuild done -274\n'],
];

for (const [label, args, expected, status] of sameCases) {
  test(`bad input: ${label}`, { skip }, async () => {
    const { ours, real } = await both(args);
    assert.deepEqual(ours, real);
    if (expected !== undefined) assert.equal(ours.stdout, expected);
    assert.equal(ours.status, status ?? 1);
  });
}

test('bad input where sanlock prints stack garbage: same status and first line, ours prints zeros', { skip }, async () => {
  for (const [args, first] of [
    [['read_leader', '-s', 'LS:0:@/ls.img:0'], 'read_leader done -22'],
    [['read_leader', '-s', 'LS:1:@/adir:0'], 'read_leader done -19'],
    [['read_leader'], 'read_leader done -1'],
    [['read_leader', '-r', 'LS:R1:@/short.img:0'], 'read_leader done -90'],
  ] as const) {
    const { ours, real } = await both([...args]);
    assert.equal(ours.status, 1);
    assert.equal(real.status, 1);
    assert.equal(ours.stdout.split('\n')[0], first);
    assert.equal(real.stdout.split('\n')[0], first);
    assert.match(ours.stdout, /\nmagic 0x0\nversion 0x0\n[\s\S]*\nchecksum 0x0\n/);
    assert.equal(ours.stdout.split('\n').length, 19);
  }
});

test('the built CLI: direct through bin/sanlock-ts (child process)', { skip }, () => {
  const d = setup();
  const run = (args: string[]) => {
    try {
      return { stdout: execFileSync(process.execPath, ['bin/sanlock-ts', ...args], { encoding: 'utf8' }), status: 0 };
    } catch (e) {
      const err = e as { stdout: string; status: number };
      return { stdout: err.stdout, status: err.status };
    }
  };
  assert.deepEqual(run(['direct', 'init', '-s', `LSB:0:${d}/blank.img:0`]), { stdout: 'init done 0\n', status: 0 });
  assert.deepEqual(run(['direct', 'read_leader', '-s', `LSB:1:${d}/blank.img:0`]), realSanlock(['direct', 'read_leader', '-s', `LSB:1:${d}/blank.img:0`]));
  assert.deepEqual(run(['direct', 'dump', `${d}/rx.img`, '-f', '2']), realSanlock(['direct', 'dump', `${d}/rx.img`, '-f', '2']));
  const none = run(['direct']);
  assert.equal(none.status, 1);
  assert.equal(none.stdout, realSanlock(['direct']).stdout, 'usage text');
  assert.deepEqual(run(['direct', 'bogus']), { stdout: 'direct action "bogus" is unknown\n', status: 1 });
});
