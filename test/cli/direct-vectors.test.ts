// Every command recorded in /work/shared/vectors/*.dump.txt gives exactly the recorded output and
// exit status with our `direct`; our init/format writes the deterministic images byte for byte.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { scratchDir } from '../helpers/real-sanlock.js';
import { direct, loadVector, parseTranscripts, VECTORS } from './direct-helpers.js';

const dir = scratchDir('direct-vectors');
after(() => rmSync(dir, { recursive: true, force: true }));

for (const f of readdirSync(VECTORS).filter((n) => n.endsWith('.dump.txt')).sort()) {
  const name = f.slice(0, -'.dump.txt'.length);
  test(`transcript ${name}`, async () => {
    // The transcripts name the image relative to where they were recorded; paths never appear in
    // the output, so the absolute scratch path is substituted into the command only.
    const img = `${dir}/${name}.img`;
    const bytes = loadVector(name);
    writeFileSync(img, bytes);
    const ts = parseTranscripts(readFileSync(`${VECTORS}/${f}`, 'utf8'));
    assert.ok(ts.length >= 2, 'transcript parsed');
    for (const t of ts) {
      assert.equal(t.argv[0], 'direct');
      const argv = t.argv.slice(1).map((w) => w.replace(`${name}.img`, img));
      const r = await direct(argv);
      assert.equal(r.stdout, t.output, t.argv.join(' '));
      assert.equal(r.status, t.status, t.argv.join(' '));
    }
    assert.ok(readFileSync(img).equals(bytes), 'reading never writes');
  });
}

const inits: Array<[string, number, string[][], [number, number]?]> = [
  ['ls_512_1M_init', 1, [['init', '-s', 'LS:0:@:0']]],
  ['res_512_1M_init', 1, [['init', '-r', 'LS:R1:@:0']]],
  ['ls_4k_8M_init', 8, [['init', '-s', 'LS4K:0:@:0', '-Z', '4096', '-A', '8M']]],
  ['res_4k_8M_init', 8, [['init', '-r', 'LS4K:R4K:@:0', '-Z', '4096', '-A', '8M']]],
  ['rindex_format', 4, [['init', '-s', 'LSX:0:@:0'], ['format', '-x', 'LSX:@:1048576']], [0x200214, 0x200218]],
];

for (const [name, mib, cmds, garbage] of inits) {
  test(`direct init/format reproduces ${name}`, async () => {
    const img = `${dir}/out-${name}.img`;
    writeFileSync(img, '');
    truncateSync(img, mib * 1048576);
    for (const c of cmds) {
      const r = await direct(c.map((w) => w.replace('@', img)));
      assert.equal(r.stdout, `${c[0]} done 0\n`);
      assert.equal(r.status, 0);
    }
    const got = readFileSync(img);
    const exp = loadVector(name);
    if (garbage) {
      // sanlock leaves stack garbage in the rindex_lease request padding; we write zeros there
      assert.ok(got.subarray(garbage[0], garbage[1]).every((b) => b === 0));
      exp.fill(0, garbage[0], garbage[1]);
    }
    assert.ok(got.equals(exp), `${name} differs`);
  });
}
