// sanlock's option grammar and argument strings. Expected values were observed with the real
// 3.8.5 binary (`sanlock direct read_leader -D -s/-r ...` logs what it parsed).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import {
  atoi, atoll, CliUsageError, escapePath, parseDumpTarget, parseLockspace, parseOptions, parseResource,
  parseRentry, parseRindex, parseSanlockOptions, strtoull0, strtoull0Big, validateSizes,
} from '../../src/cli/args.js';
import { haveRealSanlock } from '../helpers/real-sanlock.js';

test('C number parsing', () => {
  assert.equal(atoi('12abc'), 12);
  assert.equal(atoi('abc'), 0);
  assert.equal(atoi('  -7'), -7);
  assert.equal(atoi('4294967297'), 1, 'int wraps');
  assert.equal(atoll('x7'), 0);
  assert.equal(strtoull0('0x10'), 16);
  assert.equal(strtoull0('010'), 8);
  assert.equal(strtoull0('19z'), 19);
  assert.equal(strtoull0Big('-1'), (1n << 64n) - 1n);
});

test('option scan: words, missing values, unknown letters, -D and -c', () => {
  const p = parseOptions(['-s', 'LS:1:p:0', '-D', '-r', 'a', '-r', 'b']);
  assert.equal(p.get('s'), 'LS:1:p:0');
  assert.deepEqual(p.all('r'), ['a', 'b']);
  assert.equal(p.debug, true);
  const err = (argv: string[]) => {
    try {
      parseOptions(argv);
    } catch (e) {
      assert.ok(e instanceof CliUsageError);
      assert.equal(e.exitCode, 1);
      return e.lines;
    }
    assert.fail('no error');
  };
  assert.deepEqual(err(['-s', 'x', '-Dx']), ['unknown option -Dx', 'space required before option value']);
  assert.deepEqual(err(['foo']), ['unknown option foo', 'space required before option value']);
  assert.deepEqual(err(['-s']), ["option 's' requires arg"]);
  assert.deepEqual(err(['-q', '1']), ['unknown option: q']);
  assert.deepEqual(err(['-q']), ["option 'q' requires arg"], 'the missing value is reported before the letter');
  const c = parseOptions(['-r', 'x', '-c', '/bin/sleep', '-r', '9']);
  assert.deepEqual(c.command, ['/bin/sleep', '-r', '9']);
  assert.deepEqual(c.all('r'), ['x']);
});

test('LOCKSPACE strings', () => {
  assert.deepEqual(parseLockspace('LS:1:ab:2M'), { name: 'LS', hostId: 1, path: 'ab', offset: 2097152 });
  assert.deepEqual(parseLockspace('LS:1:a\\:b:2097152'), { name: 'LS', hostId: 1, path: 'a:b', offset: 2097152 });
  assert.deepEqual(parseLockspace('LS:1:a\\ b:5'), { name: 'LS', hostId: 1, path: 'a b', offset: 5 });
  assert.deepEqual(parseLockspace('LS:1:a\\\\b:5'), { name: 'LS', hostId: 1, path: 'ab', offset: 5 });
  assert.deepEqual(parseLockspace('LS:1:abc:5:6'), { name: 'LS', hostId: 1, path: 'abc', offset: 5 });
  assert.deepEqual(parseLockspace('LS'), { name: 'LS', hostId: 0, path: '', offset: 0 });
  assert.deepEqual(parseLockspace('LS:x7:p'), { name: 'LS', hostId: 0, path: 'p', offset: 0 });
  assert.deepEqual(parseLockspace('LS:1:ab:3xM'), { name: 'LS', hostId: 1, path: 'ab', offset: 3145728 });
  assert.deepEqual(parseLockspace('LS:1:/Mx:5'), { name: 'LS', hostId: 1, path: '/Mx', offset: 5 });
  // the 'M' pre-pass counts escaped colons too (observed quirks)
  assert.deepEqual(parseLockspace('LS:1:a\\:b:2M'), { name: 'LS', hostId: 1, path: 'a:0', offset: 0 });
  assert.deepEqual(parseLockspace('LS:1:a\\:9:2M'), { name: 'LS', hostId: 1, path: 'a:9437184', offset: 0 });
  assert.deepEqual(parseLockspace('L\\:S:1:ab:5M'), { name: 'L\\:S', hostId: 1, path: '0', offset: 0 });
  assert.deepEqual(parseLockspace('LS:1\\:2:ab:5M'), { name: 'LS', hostId: 1, path: '0', offset: 0 });
  assert.equal(parseLockspace(`${'A'.repeat(57)}:0:p:0`).name, 'A'.repeat(48), 'long names are cut, not refused');
});

test('RESOURCE strings', () => {
  const ok = (s: string) => {
    const r = parseResource(s);
    assert.ok(r.ok, s);
    return r.res;
  };
  assert.deepEqual(ok('LS:R1:ab:1M').disks, [{ path: 'ab', offset: 1048576 }]);
  assert.deepEqual(ok('LS:R1:a\\:b:1').disks, [{ path: 'a:b', offset: 1 }]);
  const sh = ok('LS:R1:ab:1M:SH');
  assert.equal(sh.shared, true);
  assert.equal(ok('LS:R1:ab:1M:SHX').shared, true);
  const junk = ok('LS:R1:ab:1M:junk');
  assert.deepEqual([junk.lverSet, junk.lver, junk.shared], [true, 0, false]);
  const hex = ok('LS:R1:ab:5:0x10');
  assert.deepEqual([hex.lverSet, hex.lver, hex.disks[0]!.offset], [true, 16, 5]);
  assert.equal(ok('LS:R1:ab:0x10').disks[0]!.offset, 0, '%llu stops at x');
  assert.equal(ok('LS:R1:ab: 5').disks[0]!.offset, 5);
  assert.equal(ok('LS:R1:ab:5:M').disks[0]!.offset, 5242880, "any M after the third colon scales the first offset");
  assert.deepEqual(ok('LS:R1:a:1:b:2M').disks, [{ path: 'a', offset: 1048576 }, { path: 'b', offset: 2 }]);
  assert.equal(ok('LS:R1:a:1:b:2:c:3:d:4').disks.length, 4);
  const names = ok('LS:R1');
  assert.deepEqual([names.lockspaceName, names.name, names.disks.length], ['LS', 'R1', 0]);
  assert.equal(ok('LS:R1:/Mx:5').disks[0]!.offset, 5);
  assert.deepEqual(ok('LS:R1:a\\:b:7M').disks, [{ path: 'a:0', offset: 7 }]);
  assert.deepEqual(ok('LS:R1:a\\:9:7M').disks, [{ path: 'a:9437184', offset: 7 }]);
  assert.deepEqual(ok('LS:R1:abc\\:def:5M').disks, [{ path: 'abc:0', offset: 5 }]);
  assert.deepEqual(ok('L\\:S:R1:ab:5M').disks, [{ path: '0', offset: 5 }]);
  assert.equal(parseResource('LS:R1:x\\:y\\:z:3M').ok, false);
  const bad = (s: string) => {
    const r = parseResource(s);
    assert.ok(!r.ok, s);
    return r.code;
  };
  assert.equal(bad('LS:R1:ab:x'), -1);
  assert.equal(bad('LS:R1:ab:'), -1);
  assert.equal(bad('LS:R1::5'), -1);
  assert.equal(bad('LS:R1:'), -1);
  assert.equal(bad('LS:R1:res.img'), -1);
  assert.equal(bad('L'), -6);
  assert.equal(bad('LS:R1:a:1:b:2:c:3:d:4:e:5'), -2);
  assert.equal(bad('LS:R1:a\\'), -1);
  assert.equal(bad(`LS:${'B'.repeat(49)}:p:0`), -1);
});

test('RINDEX, rentry and dump targets', () => {
  assert.deepEqual(parseRindex('LSX:rx.img:1M'), { lockspaceName: 'LSX', path: 'rx.img', offset: 1048576 });
  assert.deepEqual(parseRindex('LSX:a\\:b:3'), { lockspaceName: 'LSX', path: 'a:b', offset: 3 });
  assert.deepEqual(parseRindex('LSX'), { lockspaceName: 'LSX', path: '', offset: 0 });
  assert.deepEqual(parseRentry('RES2:4M'), { name: 'RES2', offset: 4194304 });
  assert.deepEqual(parseRentry(':4194304'), { name: '', offset: 4194304 });
  assert.deepEqual(parseRentry('NEW'), { name: 'NEW', offset: 0 });
  assert.deepEqual(parseDumpTarget('/d/ids'), { path: '/d/ids', offset: 0, size: 0 });
  assert.deepEqual(parseDumpTarget('leases:0:4M'), { path: 'leases', offset: 0, size: 4194304 });
  assert.deepEqual(parseDumpTarget('rx:1M'), { path: 'rx', offset: 1048576, size: 0 });
  assert.deepEqual(parseDumpTarget('/dev/foo\\:32:0:1M'), { path: '/dev/foo:32', offset: 0, size: 1048576 });
});

test('-Z/-A pairs and the full option interpretation', () => {
  assert.equal(validateSizes(0, 0), null);
  assert.equal(validateSizes(4096, 0), null);
  assert.equal(validateSizes(4096, 2 * 1048576), null);
  assert.deepEqual(validateSizes(512, 2097152), [
    'Invalid sector_size/align_size combination (512/2097152)',
    'Use one of: 512/1M, 4096/1M, 4096/2M, 4096/4M, 4096/8M.',
  ]);
  assert.throws(() => parseSanlockOptions(['-A', '1M'], 'direct', 'init'), (e: CliUsageError) =>
    e.lines[0] === 'Invalid sector_size/align_size combination (0/1048576)');
  assert.throws(() => parseSanlockOptions(['-Z', '1000', '-A', '1M'], 'direct', 'init'), /1000\/1048576/);
  const o = parseSanlockOptions(['-A', '1M', '-Z', '512', '-o', '0', '-z', '0', '-n', '5', '-e', 'RES:2M'], 'direct', 'init');
  assert.deepEqual([o.sectorSize, o.alignSize, o.ioTimeout, o.clear, o.numHosts], [512, 1048576, 10, true, 5]);
  assert.deepEqual(o.rentry, { name: 'RES', offset: 2097152 });
  assert.equal(parseSanlockOptions(['-Z', '4096', '-A', '3M'], 'direct', 'dump').alignSize, 0, 'unknown -A is ignored');
  const many = parseSanlockOptions(Array.from({ length: 10 }, () => ['-r', 'a:b:c:1']).flat(), 'direct', 'init');
  assert.equal(many.resources.length, 8);
  assert.deepEqual(many.messages, ['resource args over max 8', 'resource args over max 8']);
  const badr = parseSanlockOptions(['-r', 'LS:R1:x'], 'direct', 'init');
  assert.deepEqual(badr.messages, ['resource arg parse error -1', '']);
  assert.equal(parseSanlockOptions(['-o', 'p'], 'client', 'status').sortArg, 'p');
  assert.equal(parseSanlockOptions(['-e', '0x1f'], 'client', 'set_event').event, 31n);
});

test('paths printed escaped', () => {
  assert.equal(escapePath('/shared/sanlock/a b:c'), '/shared/sanlock/a\\ b\\:c');
});

// The real binary logs what it parsed when -D comes first: compare field by field.

function realParse(opt: '-s' | '-r', arg: string): string[] {
  let out: string;
  try {
    out = execFileSync('/usr/sbin/sanlock', ['direct', 'read_leader', '-D', opt, arg], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout: string; stderr: string };
    out = `${err.stdout}${err.stderr}`;
  }
  return out.split('\n').filter((l) => /\]: (lockspace|resource) /.test(l) || /resource arg parse error/.test(l)).map((l) => l.replace(/^.*?\]: /, ''));
}

test('parses agree with the real binary', { skip: haveRealSanlock() ? false : 'no real sanlock' }, () => {
  const lockspaces = ['LS:1:/nx/ab:2M', 'LS:1:/nx/a\\:b:2M', 'LS:1:/nx/a b:7', 'LS:x7:/nx/p', 'LS', 'LS:3:/nx/q:0x10',
    'LS:1:/nx/a\\:9:2M', 'L\\:S:1:/nx/ab:5M', 'LS:1:/nx/ab:3xM', 'LS:-1:/nx/z:-5', 'LS:1:/nx/\\\\a:1'];
  for (const s of lockspaces) {
    const l = parseLockspace(s);
    assert.deepEqual(realParse('-s', s), [`lockspace ${l.name} host_id ${BigInt.asUintN(64, BigInt(l.hostId))} path ${l.path} offset ${BigInt.asUintN(64, BigInt(l.offset))}`], s);
  }
  const resources = ['LS:R1:/nx/ab:1M', 'LS:R1:/nx/a\\:b:1', 'LS:R1:/nx/ab:1M:SH', 'LS:R1:/nx/ab:5:0x10', 'LS:R1:/nx/a:1:/nx/b:2M',
    'LS:R1:/nx/ab:x', 'LS:R1', 'L', 'LS:R1:/nx/a\\:b:7M', 'LS:R1:/nx/x\\:y\\:z:3M', 'LS:R1:/nx/ab:5:M', 'LS:R1:/nx/a:1:/nx/b:2:/nx/c:3:/nx/d:4:/nx/e:5'];
  for (const s of resources) {
    const r = parseResource(s);
    const expected = r.ok
      ? [`resource ${r.res.lockspaceName} ${r.res.name} num_disks ${r.res.disks.length} flags ${(r.res.lverSet ? 1 : 0) | (r.res.shared ? 4 : 0)} lver ${r.res.lver}`,
        ...r.res.disks.map((d) => `resource disk ${d.path} ${d.offset}`)]
      : [`resource arg parse error ${r.code}`];
    assert.deepEqual(realParse('-r', s), expected, s);
  }
});

test('usage and version text', { skip: haveRealSanlock() ? false : 'no real sanlock' }, async () => {
  const { printUsage, printVersion, printLongVersion } = await import('../../src/cli/usage.js');
  let out = '';
  printUsage((s) => { out += s; });
  assert.equal(out, execFileSync('/usr/sbin/sanlock', ['help'], { encoding: 'utf8' }));
  out = '';
  printVersion((s) => { out += s; });
  assert.equal(out, execFileSync('/usr/sbin/sanlock', ['version'], { encoding: 'utf8' }));
  out = '';
  printLongVersion('sanlock-ts', (s) => { out += s; });
  assert.match(out, /^sanlock-ts 3\.8\.5 \(sanlock-ts [0-9.]+\)\n$/);
});
