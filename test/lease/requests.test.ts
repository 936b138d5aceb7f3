import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SanlkCode, SanlockError } from '../../src/codes.js';
import { examineRequest, requestLease } from '../../src/lease/requests.js';
import { acquireSh } from '../../src/lease/shared-mode.js';
import { decodeRequest, encodeRequest } from '../../src/ondisk/request.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { FakeView, lockspaceImage, ManualClock, MIB, paxosFor, resourceImage, TestHost } from './helpers.js';

function code(c: number) {
  return (e: unknown) => e instanceof SanlockError && e.code === c;
}

async function held() {
  const clock = new ManualClock(100);
  const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const view = new FakeView();
  const owner = paxosFor(disk, 1, 1, clock, view);
  await owner.acquire();
  const req = paxosFor(disk, 2, 1, clock, view);
  return { clock, disk, view, owner, req };
}

test('request on a free lease writes nothing', async () => {
  const clock = new ManualClock(100);
  const disk = new MemDisk('r', MIB, 512, resourceImage('LS', 'R1'));
  const p = paxosFor(disk, 2, 1, clock, new FakeView());
  const r = await requestLease(p, { lver: 1, forceMode: 1 });
  assert.equal(r.written, false);
  assert.equal(p.stats.writes, 0);
});

test('-272 when the lease already reached the version; NEXT_LVER asks for lver + 1; -273 for an older request', async () => {
  const { disk, owner, req } = await held();
  await assert.rejects(requestLease(req, { lver: 1, forceMode: 1 }), code(SanlkCode.SANLK_REQUEST_OLD));
  const r = await requestLease(req, { nextLver: true, forceMode: 2 });
  assert.equal(r.lver, 2);
  assert.deepEqual(decodeRequest(disk.bytes, 512), { magic: 0x08292011, version: 0x00010001, lver: 2, forceMode: 2 });
  assert.equal((await examineRequest(owner)).action, 'graceful');
  encodeRequest({ magic: 0x08292011, version: 0x00010001, lver: 5, forceMode: 1 }, disk.bytes, 512);
  await assert.rejects(requestLease(req, { lver: 3, forceMode: 1 }), code(SanlkCode.SANLK_REQUEST_LVER));
});

test('-270 / -271 on a damaged record; clearing (no lver, no mode) writes lver 0 mode 0 without a bit', async () => {
  const { disk, owner, req } = await held();
  disk.bytes.writeUInt32LE(0xdeadbeef, 512);
  await assert.rejects(requestLease(req, { lver: 2, forceMode: 1 }), code(SanlkCode.SANLK_REQUEST_MAGIC));
  encodeRequest({ magic: 0x08292011, version: 0x00020001, lver: 0, forceMode: 0 }, disk.bytes, 512);
  await assert.rejects(requestLease(req, {}), code(SanlkCode.SANLK_REQUEST_VERSION));
  encodeRequest({ magic: 0x08292011, version: 0x00010001, lver: 2, forceMode: 1 }, disk.bytes, 512);
  const bits: number[] = [];
  const r = await requestLease(req, {}, (o) => bits.push(o));
  assert.deepEqual(bits, []);
  assert.equal(r.written, true);
  assert.deepEqual(decodeRequest(disk.bytes, 512), { magic: 0x08292011, version: 0x00010001, lver: 0, forceMode: 0 });
  assert.equal((await examineRequest(owner)).action, 'none');
});

test('owner ignores stale requests (lver ≤ held) and mode 0; SH holders examine too', async () => {
  const { disk, owner } = await held();
  encodeRequest({ magic: 0x08292011, version: 0x00010001, lver: 1, forceMode: 1 }, disk.bytes, 512);
  assert.equal((await examineRequest(owner)).action, 'none');
  encodeRequest({ magic: 0x08292011, version: 0x00010001, lver: 9, forceMode: 0 }, disk.bytes, 512);
  assert.equal((await examineRequest(owner)).action, 'none');
  await owner.release();
  const clock = new ManualClock(500);
  const sh = paxosFor(disk, 3, 1, clock, new FakeView());
  await acquireSh(sh);
  encodeRequest({ magic: 0x08292011, version: 0x00010001, lver: sh.heldLver + 1, forceMode: 1 }, disk.bytes, 512);
  assert.equal((await examineRequest(sh)).action, 'force');
});

test('end to end: requester sets the owner\'s bit, owner\'s tracker triggers examination', async () => {
  const clock = new ManualClock(1000);
  const ls = new MemDisk('ls', MIB, 512, lockspaceImage('LS', undefined, 1));
  const res = new MemDisk('res', MIB, 512, resourceImage('LS', 'R1'));
  const h1 = new TestHost(clock, ls, 1, 'h1');
  const h2 = new TestHost(clock, ls, 2, 'h2');
  await h1.delta.acquire();
  await h2.delta.acquire();
  h1.startRenewing();
  h2.startRenewing();
  const owner = h1.paxos(res);
  await owner.acquire();
  await clock.sleep(3000);
  assert.equal(h1.requests, 0);
  await requestLease(h2.paxos(res), { lver: 2, forceMode: 1 }, (o) => h2.delta.setRequestBit(o));
  await clock.sleep(3000);
  assert.equal(h1.requests, 1);
  assert.equal((await examineRequest(owner)).action, 'force');
  await h1.stopRenewing();
  await h2.stopRenewing();
});
