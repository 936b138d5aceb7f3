import assert from 'node:assert/strict';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SanlockError } from '../../src/codes.js';
import { type DirectDisk, openDirectDisk } from '../../src/storage/direct-disk.js';
import { ConfiguredFaultDisk, parseFaultFile, rulesForPath, wrapWithConfiguredFaults } from '../../src/storage/fault-config.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { scratchDir } from '../helpers/real-sanlock.js';

let dir = '';
before(() => {
  dir = scratchDir('faultcfg');
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Replaces the file atomically (a new inode), as a test changing faults mid-run should. */
function writeFaults(file: string, content: unknown): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, typeof content === 'string' ? content : JSON.stringify(content));
  renameSync(tmp, file);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('without SANLOCK_TS_FAULT_FILE the disk is returned unchanged', () => {
  const d = new MemDisk('/mem/ls', 1 << 20);
  assert.equal(wrapWithConfiguredFaults(d, d.path, {}), d);
});

test('fault file validation and per-path selection', () => {
  assert.throws(() => parseFaultFile('{}'), /"disks" must be an array/);
  assert.throws(() => parseFaultFile('{"disks":[{"faults":[]}]}'), /needs "path" or "pathPrefix"/);
  assert.throws(() => parseFaultFile('{"disks":[{"path":"/a","faults":[{"error":5}]}]}'), /not a valid fault rule/);
  assert.throws(() => parseFaultFile('{"disks":[{"path":"/a","faults":[{"op":"erase"}]}]}'), /not a valid fault rule/);
  const f = parseFaultFile(
    JSON.stringify({
      disks: [
        { path: '/x/a', faults: [{ op: 'read', error: -5 }] },
        { pathPrefix: '/x/', faults: [{ delayMs: 10 }] },
        { path: '/y/b', faults: [{ hang: 'forever' }] },
      ],
    }),
  );
  assert.deepEqual(rulesForPath(f, '/x/a'), [{ op: 'read', error: -5 }, { delayMs: 10 }]);
  assert.deepEqual(rulesForPath(f, '/x/../x/c'), [{ delayMs: 10 }]);
  assert.deepEqual(rulesForPath(f, '/z'), []);
});

test('one disk hangs, another fails writes, a third works; a new file version heals them', async () => {
  const files = ['a', 'b', 'c'].map((n) => join(dir, `ls-${n}`));
  for (const f of files) writeFileSync(f, Buffer.alloc(1 << 20));
  const faultFile = join(dir, 'faults.json');
  writeFaults(faultFile, {
    disks: [
      { path: files[0], faults: [{ op: 'both', hang: 'forever' }] },
      { path: files[1], faults: [{ op: 'write', error: -5 }] },
    ],
  });
  const env = { SANLOCK_TS_FAULT_FILE: faultFile };
  const raw: DirectDisk[] = [];
  const disks = [];
  try {
    for (const f of files) {
      const d = await openDirectDisk(f);
      raw.push(d);
      const w = wrapWithConfiguredFaults(d, f, env);
      assert.ok(w instanceof ConfiguredFaultDisk);
      disks.push(w as ConfiguredFaultDisk);
    }
    const [a, b, c] = disks as [ConfiguredFaultDisk, ConfiguredFaultDisk, ConfiguredFaultDisk];
    const sector = Buffer.alloc(512, 0x5a);

    const t0 = Date.now();
    await assert.rejects(a.read(0, 512, 300), (e: unknown) => e instanceof SanlockError && e.code === -202);
    assert.ok(Date.now() - t0 >= 280, 'the hang lasts until the caller\'s deadline');
    assert.equal(a.hungCount, 1);
    await assert.rejects(b.write(512, sector, 1000), (e: unknown) => e instanceof SanlockError && e.code === -5);
    assert.equal((await b.read(0, 512, 1000)).length, 512, 'reads of b still work');
    await c.write(512, sector, 1000);
    assert.deepEqual(await c.read(512, 512, 1000), sector);
    assert.equal(raw[1]!.writes, 0, 'the failed write never reached the device');

    // The test changes its mind: b now only delays, a is healthy again.
    writeFaults(faultFile, { disks: [{ path: files[1], faults: [{ op: 'write', delayMs: 150 }] }] });
    await sleep(150);
    await a.write(0, sector, 1000);
    assert.equal(a.hungCount, 0, 'I/O held by the old hang was let go');
    assert.deepEqual(await a.read(0, 512, 1000), sector);
    const t1 = Date.now();
    await b.write(512, sector, 1000);
    assert.ok(Date.now() - t1 >= 140, 'b writes are now delayed');
    assert.deepEqual(await b.read(512, 512, 1000), sector);

    // A broken file keeps the rules in force; removing the file removes every fault.
    writeFaults(faultFile, '{"disks": [');
    await sleep(150);
    const t2 = Date.now();
    await b.write(512, sector, 1000);
    assert.ok(Date.now() - t2 >= 140, 'previous rules kept while the file is invalid');
    assert.match(b.config.lastError ?? '', /JSON|Unexpected|end/i);
    rmSync(faultFile);
    await sleep(150);
    const t3 = Date.now();
    await b.write(512, sector, 1000);
    assert.ok(Date.now() - t3 < 140, 'no faults once the file is gone');
  } finally {
    for (const d of disks) await d.close();
  }
});
