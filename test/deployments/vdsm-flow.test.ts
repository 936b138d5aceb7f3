// The storage-domain flow VDSM drives through python3-sanlock (clusterlock.SANLock on a file
// domain: `ids` volume = lockspace named by the domain UUID, the SPM lease `SDM` at
// SDM_LEASE_OFFSET = 512*2048 in `leases`, volume leases in `<volume>.lease` at offset 0), run
// once against our daemon and once against the real sanlock 3.8.5 daemon on fresh files; the
// normalised transcripts must be identical.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';
import { PYTHON, pyAvailable, startOurDaemon } from '../daemon/our-daemon.js';

const skip = !pyAvailable();

const FLOW = String.raw`
import sanlock, sys, os, time
d = sys.argv[1]
SD = b"3bd7a5e1-5a1c-4f77-9e1b-domain000001"
IDS = os.path.join(d, "ids")
LEASES = os.path.join(d, "leases")
VOL = os.path.join(d, "vol-0001.lease")
SDM_OFF = 512 * 2048
ALIGN = sanlock.ALIGN_SIZE[0]
SECTOR = sanlock.SECTOR_SIZE[0]

def norm(v):
    if isinstance(v, bytes):
        s = v.decode()
        return s.replace(d, "<dir>")
    if isinstance(v, str):
        return v.replace(d, "<dir>")
    if isinstance(v, dict):
        return {k: norm(x) for k, x in sorted(v.items()) if k not in ("timestamp",)}
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    return v

def step(name, f):
    try:
        r = f()
        print(name, "OK", norm(r), flush=True)
        return r
    except sanlock.SanlockException as e:
        print(name, "ERR", e.errno, flush=True)
        return e

for p in (IDS, LEASES, VOL):
    with open(p, "wb") as f:
        f.truncate(2 * 1024 * 1024 if p == LEASES else 1024 * 1024)

# StorageDomain.create → clusterlock.initLock: lockspace on ids, SDM resource on leases
step("write_lockspace", lambda: sanlock.write_lockspace(SD, IDS, iotimeout=1, align=ALIGN, sector=SECTOR))
step("write_resource_sdm", lambda: sanlock.write_resource(SD, b"SDM", [(LEASES, SDM_OFF)], align=ALIGN, sector=SECTOR))
# volume create → newVolumeLease
step("write_resource_vol", lambda: sanlock.write_resource(SD, b"vol-0001", [(VOL, 0)], align=ALIGN, sector=SECTOR))
step("read_lockspace", lambda: sanlock.read_lockspace(IDS, align=ALIGN, sector=SECTOR))
step("read_resource_sdm", lambda: sanlock.read_resource(LEASES, SDM_OFF, align=ALIGN, sector=SECTOR))

# acquireHostId(async=True) then hasHostId polling
step("inq_before", lambda: sanlock.inq_lockspace(SD, 1, IDS))
step("add_lockspace_async", lambda: sanlock.add_lockspace(SD, 1, IDS, iotimeout=1, wait=False))
step("add_lockspace_again", lambda: sanlock.add_lockspace(SD, 1, IDS, iotimeout=1, wait=False))
step("inq_wait", lambda: sanlock.inq_lockspace(SD, 1, IDS, wait=True))
step("inq_after", lambda: sanlock.inq_lockspace(SD, 1, IDS))

# getHostStatus / getHostsList: EAGAIN until the daemon has read the host records
hosts = None
end = time.time() + 20
while time.time() < end:
    try:
        hosts = sanlock.get_hosts(SD)
        break
    except sanlock.SanlockException as e:
        if e.errno != 11:
            print("get_hosts ERR", e.errno)
            break
        time.sleep(0.2)
print("get_hosts OK", norm(hosts), flush=True)
step("get_hosts_1", lambda: sanlock.get_hosts(SD, 1))
step("get_hosts_7", lambda: sanlock.get_hosts(SD, 7))

fd = sanlock.register()
print("register OK", fd >= 0, flush=True)
step("inquire_empty", lambda: sanlock.inquire(slkfd=fd))
# acquire(hostId, lease) for the SPM
step("acquire_sdm", lambda: sanlock.acquire(SD, b"SDM", [(LEASES, SDM_OFF)], slkfd=fd))
step("acquire_sdm_again", lambda: sanlock.acquire(SD, b"SDM", [(LEASES, SDM_OFF)], slkfd=fd))
step("inquire_sdm", lambda: sanlock.inquire(slkfd=fd))
# volume lease of a running VM disk
step("acquire_vol", lambda: sanlock.acquire(SD, b"vol-0001", [(VOL, 0)], slkfd=fd))
step("inquire_both", lambda: sorted(sanlock.inquire(slkfd=fd), key=lambda r: r["resource"]))
step("read_owners_vol", lambda: sanlock.read_resource_owners(SD, b"vol-0001", [(VOL, 0)], align=ALIGN, sector=SECTOR))
step("release_vol", lambda: sanlock.release(SD, b"vol-0001", [(VOL, 0)], slkfd=fd))
step("release_vol_again", lambda: sanlock.release(SD, b"vol-0001", [(VOL, 0)], slkfd=fd))
step("read_resource_vol", lambda: sanlock.read_resource(VOL, 0, align=ALIGN, sector=SECTOR))

# releaseHostId(unused=True) while the SPM lease is still held, then after releasing it
step("rem_unused_busy", lambda: sanlock.rem_lockspace(SD, 1, IDS, wait=False, unused=True))
step("inq_still", lambda: sanlock.inq_lockspace(SD, 1, IDS))
step("release_sdm", lambda: sanlock.release(SD, b"SDM", [(LEASES, SDM_OFF)], slkfd=fd))
step("inquire_after", lambda: sanlock.inquire(slkfd=fd))
step("rem_unused_async", lambda: sanlock.rem_lockspace(SD, 1, IDS, wait=False, unused=True))
last = None
end = time.time() + 20
while time.time() < end:
    last = sanlock.inq_lockspace(SD, 1, IDS)
    if last is False:
        break
    time.sleep(0.1)
print("inq_removed", last, flush=True)
step("rem_again", lambda: sanlock.rem_lockspace(SD, 1, IDS, unused=True))
step("acquire_no_lockspace", lambda: sanlock.acquire(SD, b"SDM", [(LEASES, SDM_OFF)], slkfd=fd))
step("read_resource_sdm_end", lambda: sanlock.read_resource(LEASES, SDM_OFF, align=ALIGN, sector=SECTOR))
step("read_owners_sdm_end", lambda: sanlock.read_resource_owners(SD, b"SDM", [(LEASES, SDM_OFF)], align=ALIGN, sector=SECTOR))
print("END", flush=True)
`;

function runFlow(env: NodeJS.ProcessEnv, dir: string): { out: string; err: string } {
  const r = spawnSync(PYTHON, ['-c', FLOW, dir], { env, encoding: 'utf8', timeout: 60_000 });
  return { out: r.stdout ?? '', err: r.stderr ?? '' };
}

describe('VDSM file-domain flow through python3-sanlock', { skip }, () => {
  test('our daemon and the real daemon give identical transcripts', async () => {
    const base = scratchDir('vdsm-flow');
    try {
      const ourDir = join(base, 'ours');
      const realDir = join(base, 'real');
      const ours = await startOurDaemon(join(ourDir, 'run'), ['-e', 'vdsmhost']);
      let a: { out: string; err: string };
      try {
        a = runFlow(ours.env, ourDir);
      } finally {
        await ours.stop();
      }
      const real = await startRealDaemon(join(realDir, 'run'), ['-e', 'vdsmhost']);
      let b: { out: string; err: string };
      try {
        b = runFlow(real.env, realDir);
      } finally {
        await real.stop();
      }
      assert.match(b.out, /\nEND\n$/, b.err);
      assert.match(a.out, /\nEND\n$/, a.err);
      // sanity on the reference run, so an accidentally empty flow cannot pass
      assert.match(b.out, /^acquire_sdm OK None$/m);
      assert.match(b.out, /^inq_wait OK True$/m);
      assert.deepEqual(a.out.split('\n'), b.out.split('\n'));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
