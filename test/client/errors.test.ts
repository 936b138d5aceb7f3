// How the client library reports failures: sanlock's code, its name and python's sentence;
// connection problems as -errno; a daemon that hangs up without answering as -1 (libsanlock).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SanlockClientError, connect, resultSentence, socketPath, toResource } from '../../src/client/index.js';

test('SanlockClientError carries code, name and the python3-sanlock sentence', () => {
  const e = new SanlockClientError(-243, 'acquire');
  assert.equal(e.code, -243);
  assert.equal(e.codeName, 'SANLK_ACQUIRE_IDLIVE');
  assert.equal(e.sentence, 'Lease is held by another host');
  assert.match(e.message, /acquire failed: SANLK_ACQUIRE_IDLIVE \(-243\)/);
  assert.equal(new SanlockClientError(-17, 'x').sentence, 'File exists');
  assert.equal(new SanlockClientError(-1, 'x').codeName, 'EPERM');
  assert.equal(resultSentence(-240), 'Unknown error');
  assert.equal(resultSentence(-28), 'No space left on device');
});

test('connect() to a missing socket fails with -ENOENT, a refusing one with -ECONNREFUSED', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slk-err-'));
  try {
    await assert.rejects(connect({ runDir: dir }), (e: unknown) => e instanceof SanlockClientError && e.code === -2 && e.codeName === 'ENOENT');
    assert.equal(socketPath(dir), `${dir}/sanlock.sock`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a daemon that closes without replying gives -1, like libsanlock', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slk-err-'));
  const server = createServer((s) => s.once('data', () => s.destroy()));
  await new Promise<void>((r) => server.listen(join(dir, 'sanlock.sock'), r));
  try {
    await assert.rejects(connect({ runDir: dir }), (e: unknown) => e instanceof SanlockClientError && e.code === -1);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resource strings are parsed like sanlock_str_to_res; bad ones are -EINVAL', () => {
  const r = toResource('LS:R1:/a\\:b:1048576:SH');
  assert.deepEqual([r.lockspaceName, r.name, r.disks[0]!.path, r.disks[0]!.offset, r.flags], ['LS', 'R1', '/a:b', 1048576, 4]);
  assert.throws(() => toResource('LS:R1:/p'), (e: unknown) => e instanceof SanlockClientError && e.code === -22);
  const o = toResource({ lockspace: 'LS', name: 'R', disks: [{ path: '/p' }], lver: 3, persistent: true });
  assert.deepEqual([o.flags, o.lver, o.numDisks], [0x1 | 0x8, 3, 1]);
});
