// ClusterObserver over in-memory copies of the golden images made by real sanlock 3.8.5, with a
// fake clock so liveness rules are checked to the second.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { autoSampleSeconds, type ClusterSource, ClusterObserver, classifyHost, type HostObservation, readClusterView } from '../../src/ops/cluster-view.js';
import { decodeLeader, encodeLeader } from '../../src/ondisk/leader.js';
import { MemDisk } from '../../src/storage/mem-disk.js';
import { VECTORS_DIR } from '../helpers/paths.js';

const VECTORS = VECTORS_DIR;

function vectorDisk(name: string): MemDisk {
  const img = gunzipSync(readFileSync(`${VECTORS}/${name}.img.gz`));
  return new MemDisk(`${name}.img`, img.length, 512, img);
}

/** Rewrites host `hostId`'s delta record the way a renewal would (new timestamp, fresh checksum). */
function renew(disk: MemDisk, hostId: number, timestamp: number, ss = 512): void {
  const off = (hostId - 1) * ss;
  const l = decodeLeader(disk.bytes, off);
  encodeLeader({ ...l, timestamp }, disk.bytes, off);
}

function hosts12(): ClusterSource {
  return { lockspace: { name: 'LS', disk: vectorDisk('ls_512_1M_hosts12'), offset: 0 } };
}

test('one read of ls_512_1M_hosts12: both hosts with name, generation, timestamp, io_timeout, age unknown', async () => {
  const v = await readClusterView(hosts12());
  assert.deepEqual(v.lockspace, { name: 'LS', path: 'ls_512_1M_hosts12.img', offset: 0, sectorSize: 512, alignSize: 1048576, maxHosts: 2000 });
  assert.equal(v.reads, 1);
  assert.deepEqual(v.hosts.map((h) => [h.hostId, h.name, h.generation, h.timestamp, h.ioTimeout, h.state]), [
    [1, 'fa012518-1292-4710-97ac-e2d34b5453df.vm', 1, 701, 1, 'unknown-age'],
    [2, 'hostB', 1, 702, 1, 'unknown-age'],
  ]);
  assert.equal(v.leases.length, 0);
  assert.equal(autoSampleSeconds(v), 4, '2 × io_timeout 1 + 1 s slack + 1');
});

test('reads over time: renewing host live, silent one stale → fail (8N) → dead (8N+60)', async () => {
  const src = hosts12();
  const disk = src.lockspace.disk as MemDisk;
  let now = 1000;
  const obs = new ClusterObserver(src, { now: () => now });
  await obs.poll();
  now += 3;
  renew(disk, 1, 703);
  let v = await obs.poll();
  assert.deepEqual(v.hosts.map((h) => h.state), ['live', 'unknown-age'], '3 s is within 2N + 1 s of slack');
  now += 1;
  renew(disk, 1, 704);
  v = await obs.poll();
  assert.deepEqual(v.hosts.map((h) => h.state), ['live', 'stale']);
  assert.equal(v.hosts[0]!.renewedWithinSeconds, 1);
  assert.equal(v.hosts[1]!.renewedWithinSeconds, null);
  assert.equal(v.spanSeconds, 4);
  now += 5; // host 2 silent 9 s > 8 × 1
  renew(disk, 1, 710);
  v = await obs.poll();
  assert.deepEqual(v.hosts.map((h) => h.state), ['live', 'fail']);
  now += 60; // host 2 silent 69 s > 68
  renew(disk, 1, 770);
  v = await obs.poll();
  assert.deepEqual(v.hosts.map((h) => h.state), ['live', 'dead']);
  // host 2 comes back with a new generation: a change, so live again
  const l = decodeLeader(disk.bytes, 512);
  encodeLeader({ ...l, ownerGeneration: 2, timestamp: 900 }, disk.bytes, 512);
  now += 1;
  v = await obs.poll();
  assert.deepEqual(v.hosts.map((h) => [h.state, h.generation]), [['live', 1], ['live', 2]]);
});

test('a host that joins between reads is live at once; one that leaves is free', async () => {
  const src: ClusterSource = { lockspace: { name: 'LS', disk: vectorDisk('ls_512_1M_host1_joined'), offset: 0 } };
  const disk = src.lockspace.disk as MemDisk;
  let now = 50;
  const obs = new ClusterObserver(src, { now: () => now });
  let v = await obs.poll();
  assert.deepEqual(v.hosts.map((h) => h.hostId), [1]);
  const l = decodeLeader(disk.bytes, 0);
  encodeLeader({ ...l, ownerId: 2, ownerGeneration: 1, timestamp: 10, resourceName: 'newcomer' }, disk.bytes, 512);
  renew(disk, 1, 0);
  now += 1;
  v = await obs.poll();
  assert.deepEqual(v.hosts.map((h) => [h.hostId, h.name, h.state]), [
    [1, 'fa012518-1292-4710-97ac-e2d34b5453df.vm', 'free'],
    [2, 'newcomer', 'live'],
  ]);
});

test('classifyHost: the thresholds are 2N + 1, 8N and 8N + W', () => {
  const o = (p: Partial<HostObservation>): HostObservation => ({
    ownerId: 1, generation: 1, timestamp: 5, ioTimeout: 10, firstSeen: 100, lastChange: 0, prevReadBeforeChange: 0, ...p,
  });
  assert.equal(classifyHost(o({ timestamp: 0 }), 1000), 'free');
  assert.equal(classifyHost(o({}), 121), 'unknown-age', '2N + 1 s of renewal pacing');
  assert.equal(classifyHost(o({}), 122), 'stale');
  assert.equal(classifyHost(o({}), 180), 'stale');
  assert.equal(classifyHost(o({}), 181), 'fail');
  assert.equal(classifyHost(o({}), 240), 'fail');
  assert.equal(classifyHost(o({}), 241), 'dead');
  assert.equal(classifyHost(o({ lastChange: 150 }), 230), 'live');
  assert.equal(classifyHost(o({ lastChange: 150 }), 231), 'fail');
  assert.equal(classifyHost(o({ lastChange: 150 }), 290), 'fail');
  assert.equal(classifyHost(o({ lastChange: 150 }), 291), 'dead');
  assert.equal(classifyHost(o({ lastChange: 150 }), 261, 30), 'dead', 'W from the watchdog setting');
  assert.equal(classifyHost(o({ ioTimeout: 0 }), 122), 'stale', 'io_timeout 0 on disk means the default 10');
});

test('leases: EX owner, SH holders, request record, released lease, wrong name', async () => {
  const ls = vectorDisk('ls_512_1M_hosts12');
  const ex = vectorDisk('res_512_1M_ex_host1');
  const v = await readClusterView({
    lockspace: { name: 'LS', disk: ls, offset: 0 },
    resources: [
      { lockspaceName: 'LS', resourceName: 'R1', disks: [{ disk: ex, offset: 0 }] },
      { lockspaceName: 'LS', resourceName: 'R2', disks: [{ disk: vectorDisk('res_512_1M_sh_host12'), offset: 0 }] },
      { lockspaceName: 'LS', resourceName: 'R1', disks: [{ disk: vectorDisk('res_512_1M_ex_host1_req'), offset: 0 }] },
      { lockspaceName: 'LS', resourceName: 'R1', disks: [{ disk: vectorDisk('res_512_1M_released'), offset: 0 }] },
      { lockspaceName: 'LS', resourceName: 'R9', disks: [{ disk: ex, offset: 0 }] },
      { lockspaceName: 'LS', resourceName: 'R1', disks: [{ disk: vectorDisk('res_512_1M_init'), offset: 0 }] },
    ],
  });
  const [r1, r2, req, rel, bad, init] = v.leases;
  assert.equal(r1!.mode, 'EX');
  assert.deepEqual(r1!.owner, { hostId: 1, generation: 1, timestamp: 672 });
  assert.equal(r1!.lver, 1);
  assert.equal(r1!.ownerState, 'unknown-age');
  assert.equal(r1!.request, null);
  assert.equal(r1!.ownerReleased, false);
  assert.equal(r1!.numHosts, 2000);

  assert.equal(r2!.mode, 'SH');
  assert.equal(r2!.owner, null);
  assert.deepEqual(r2!.lastOwner, { hostId: 2, generation: 1 });
  assert.equal(r2!.lver, 2);
  assert.deepEqual(r2!.shared, [{ hostId: 1, generation: 1, state: 'unknown-age' }, { hostId: 2, generation: 1, state: 'unknown-age' }]);

  assert.deepEqual(req!.request, { lver: 2, forceMode: 1 });
  assert.equal(rel!.mode, 'free');
  assert.equal(rel!.lver, 1);
  assert.deepEqual(rel!.request, { lver: 2, forceMode: 1 }, 'the request record outlives the release');

  assert.equal(bad!.error?.code, -227);
  assert.equal(bad!.error?.message, '-227 SANLK_LEADER_RESOURCE: the lease at res_512_1M_ex_host1.img:0 is for resource R1, not R9');
  assert.equal(init!.mode, 'free');
  assert.equal(init!.lver, 0);
  assert.equal(init!.lastOwner, null);
});

test('an SH holder whose host re-joined since is reported as an old generation', async () => {
  // host 2 is at generation 3 in this lockspace image; its SH hold on R2 was taken at generation 1
  const v = await readClusterView({
    lockspace: { name: 'LS', disk: vectorDisk('ls_512_1M_host2_event'), offset: 0 },
    resources: [{ lockspaceName: 'LS', resourceName: 'R2', disks: [{ disk: vectorDisk('res_512_1M_sh_host12'), offset: 0 }] }],
  });
  assert.deepEqual(v.hosts.find((h) => h.hostId === 2)?.event, { generation: 1, event: 5, data: 7 });
  assert.deepEqual(v.hosts.find((h) => h.hostId === 2)?.bitmap, [1]);
  assert.deepEqual(v.leases[0]!.shared.map((s) => [s.hostId, s.state]), [[1, 'unknown-age'], [2, 'old-generation']]);
});

test('-x: the rindex_lease and every entry of rindex_create2; a cleared lease is an error row', async () => {
  const disk = vectorDisk('rindex_create2');
  const v = await readClusterView({ lockspace: { name: 'LSX', disk, offset: 0 }, rindex: { disk, offset: 1048576 } });
  assert.deepEqual(v.leases.map((l) => [l.resource, l.disks[0]!.offset, l.mode, l.lver, l.lastOwner?.hostId ?? 0]), [
    ['rindex_lease', 2097152, 'free', 2, 1],
    ['RES1', 3145728, 'free', 0, 0],
    ['RES2', 4194304, 'free', 0, 0],
  ]);
  // rindex_delete2: RES2's entry is gone, so it is not listed
  const d2 = vectorDisk('rindex_delete2');
  const v2 = await readClusterView({ lockspace: { name: 'LSX', disk: d2, offset: 0 }, rindex: { disk: d2, offset: 1048576 } });
  assert.deepEqual(v2.leases.map((l) => l.resource), ['rindex_lease', 'RES1']);
  // ...and naming the cleared lease explicitly shows why it cannot be used
  const v3 = await readClusterView({
    lockspace: { name: 'LSX', disk: d2, offset: 0 },
    resources: [{ lockspaceName: 'LSX', resourceName: 'RES2', disks: [{ disk: d2, offset: 4194304 }] }],
  });
  assert.equal(v3.leases[0]!.error?.code, -223);
});

test('4K sectors: lockspace and lease geometry come from storage', async () => {
  const v = await readClusterView({
    lockspace: { name: 'LS4K', disk: vectorDisk('ls_4k_8M_host1_joined'), offset: 0 },
    resources: [{ lockspaceName: 'LS4K', resourceName: 'R4K', disks: [{ disk: vectorDisk('res_4k_8M_ex_host1'), offset: 0 }] }],
  });
  assert.equal(v.lockspace.sectorSize, 4096);
  assert.equal(v.lockspace.alignSize, 8 * 1048576);
  assert.deepEqual(v.hosts.map((h) => [h.hostId, h.timestamp]), [[1, 767]]);
  assert.deepEqual(v.leases[0]!.owner, { hostId: 1, generation: 1, timestamp: 769 });
  assert.equal(v.leases[0]!.sectorSize, 4096);
});

test('lockspace errors carry sanlock codes: wrong name -226, no lockspace -223', async () => {
  await assert.rejects(readClusterView({ lockspace: { name: 'XX', disk: vectorDisk('ls_512_1M_hosts12'), offset: 0 } }), (e: unknown) => (e as { code: number }).code === -226);
  await assert.rejects(readClusterView({ lockspace: { name: 'LS', disk: vectorDisk('res_512_1M_init'), offset: 0 } }), (e: unknown) => (e as { code: number }).code === -223);
  await assert.rejects(
    readClusterView({ lockspace: { name: 'LS', disk: vectorDisk('ls_512_1M_hosts12'), offset: 0 }, rindex: { disk: vectorDisk('ls_512_1M_hosts12'), offset: 0 } }),
    (e: unknown) => (e as { code: number }).code === -274,
  );
});
