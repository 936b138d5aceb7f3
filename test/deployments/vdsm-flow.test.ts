// The storage-domain flow VDSM drives through python3-sanlock (clusterlock.SANLock on a file
// domain: `ids` volume = lockspace named by the domain UUID, the SPM lease `SDM` at
// SDM_LEASE_OFFSET = 512*2048 in `leases`, volume leases in `<volume>.lease` at offset 0), run
// once against our daemon and once against the real sanlock 3.8.5 daemon on fresh files; the
// normalised transcripts must be identical. The block-domain flow runs on a domain laid out by
// `sanlock-ts domain create-block` (ids/leases/xleases LVs as sparse files): python reads it back
// the way vdsm does (blockSD.py volume_lease_offset, xlease.py index structs) before driving it.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';
import { PYTHON, pyAvailable, startOurDaemon } from '../daemon/our-daemon.js';

const skip = !pyAvailable();

const FLOW = `
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

const BLOCK_FLOW = String.raw`
import sanlock, sys, os, struct, time
d = sys.argv[1]
SD_STR = sys.argv[2]
SD = SD_STR.encode()
IDS = os.path.join(d, "ids")
LEASES = os.path.join(d, "leases")
XLEASES = os.path.join(d, "xleases")
MiB = 1024 * 1024
ALIGN = MiB
SECTOR = 512
SDM_OFF = 512 * 2048                 # sd.py SDM_LEASE_OFFSET
RESERVED_LEASES = 100                # blockSD.py
SLOT_SIZE = MiB                      # xlease.py
INDEX_BASE = SLOT_SIZE
USER_RESOURCE_BASE = 3 * SLOT_SIZE
META = struct.Struct(">i x 4s x 48s x 10s x c 440x c")
RECORD = struct.Struct("48s x 11s x 3c")
HOST = 2

def norm(v):
    if isinstance(v, bytes):
        return v.decode().replace(d, "<vg>")
    if isinstance(v, str):
        return v.replace(d, "<vg>")
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

# the special LVs (sd.py SPECIAL_VOLUME_SIZES_MIB)
for n in ("ids", "leases", "xleases"):
    print("size", n, os.path.getsize(os.path.join(d, n)) // MiB, flush=True)
step("read_lockspace", lambda: sanlock.read_lockspace(IDS, align=ALIGN, sector=SECTOR))
step("read_resource_sdm", lambda: sanlock.read_resource(LEASES, SDM_OFF, align=ALIGN, sector=SECTOR))
# volume leases by metadata slot (volume_lease_offset); a v5 domain starts at slot 1
vols = []
for slot in range(1, 5):
    off = (RESERVED_LEASES + slot) * ALIGN
    r = step("read_resource_slot%d" % slot, lambda: sanlock.read_resource(LEASES, off, align=ALIGN, sector=SECTOR))
    if isinstance(r, dict):
        vols.append((r["resource"], off))
# the external leases index, as xlease.py parses it
with open(XLEASES, "rb") as f:
    f.seek(INDEX_BASE)
    md = f.read(512)
    recs = f.read(RECORD.size * 4)
magic, version, lockspace, _mtime, updating, _ = META.unpack(md)
print("xleases_meta", hex(magic), int(version), lockspace.rstrip(b"\0") == SD, updating, flush=True)
vms = []
for i in range(4):
    name, off, upd, _r, _nl = RECORD.unpack_from(recs, i * RECORD.size)
    name = name.rstrip(b"\0")
    if name:
        vms.append((name, USER_RESOURCE_BASE + i * SLOT_SIZE))
        print("xleases_record", i, name.decode(), int(off), upd, flush=True)
step("read_resource_vm", lambda: sanlock.read_resource(XLEASES, vms[0][1], align=ALIGN, sector=SECTOR))

# acquireHostId(wait=False), then the domain monitor's hasHostId and getHostStatus
step("add_lockspace_async", lambda: sanlock.add_lockspace(SD, HOST, IDS, iotimeout=1, wait=False))
step("inq_wait", lambda: sanlock.inq_lockspace(SD, HOST, IDS, wait=True))
hosts = None
end = time.time() + 20
while time.time() < end:
    try:
        hosts = sanlock.get_hosts(SD, HOST)
        break
    except sanlock.SanlockException as e:
        if e.errno != 11:
            print("get_hosts ERR", e.errno)
            break
        time.sleep(0.2)
print("get_hosts OK", norm(hosts), flush=True)

fd = sanlock.register()
# SANLock.acquire: one lease per acquire, all on one registered fd
step("acquire_sdm", lambda: sanlock.acquire(SD, b"SDM", [(LEASES, SDM_OFF)], slkfd=fd))
for i, (name, off) in enumerate(vols):
    step("acquire_vol%d" % i, lambda: sanlock.acquire(SD, name, [(LEASES, off)], slkfd=fd))
step("acquire_vm_lease", lambda: sanlock.acquire(SD, vms[0][0], [(XLEASES, vms[0][1])], slkfd=fd))
step("inquire_all", lambda: sorted(sanlock.inquire(slkfd=fd), key=lambda r: r["resource"]))
step("read_owners_vol0", lambda: sanlock.read_resource_owners(SD, vols[0][0], [(LEASES, vols[0][1])], align=ALIGN, sector=SECTOR))
step("read_owners_vm", lambda: sanlock.read_resource_owners(SD, vms[0][0], [(XLEASES, vms[0][1])], align=ALIGN, sector=SECTOR))
# another process on this host (a second vdsm client) wants a volume lease the first one holds
fd2 = sanlock.register()
step("acquire_vol0_other_process", lambda: sanlock.acquire(SD, vols[0][0], [(LEASES, vols[0][1])], slkfd=fd2))
# a lease at the wrong slot: the name on disk is not the one asked for
step("acquire_wrong_slot", lambda: sanlock.acquire(SD, vols[0][0], [(LEASES, vols[1][1])], slkfd=fd2))
step("release_vm_lease", lambda: sanlock.release(SD, vms[0][0], [(XLEASES, vms[0][1])], slkfd=fd))
for i, (name, off) in enumerate(vols):
    step("release_vol%d" % i, lambda: sanlock.release(SD, name, [(LEASES, off)], slkfd=fd))
step("acquire_vol0_other_after", lambda: sanlock.acquire(SD, vols[0][0], [(LEASES, vols[0][1])], slkfd=fd2))
step("inquire_other", lambda: sanlock.inquire(slkfd=fd2))
step("release_sdm", lambda: sanlock.release(SD, b"SDM", [(LEASES, SDM_OFF)], slkfd=fd))
step("inquire_after", lambda: sanlock.inquire(slkfd=fd))
step("read_resource_vol0_end", lambda: sanlock.read_resource(LEASES, vols[0][1], align=ALIGN, sector=SECTOR))
step("read_resource_sdm_end", lambda: sanlock.read_resource(LEASES, SDM_OFF, align=ALIGN, sector=SECTOR))
step("rem_lockspace_busy", lambda: sanlock.rem_lockspace(SD, HOST, IDS, unused=True))
step("release_vol0_other", lambda: sanlock.release(SD, vols[0][0], [(LEASES, vols[0][1])], slkfd=fd2))
step("rem_lockspace", lambda: sanlock.rem_lockspace(SD, HOST, IDS))
step("inq_removed", lambda: sanlock.inq_lockspace(SD, HOST, IDS))
print("END", flush=True)
`;

const BLOCK_SD = '0f3e5a6d-2c1b-4e8f-9a7d-b10c4d000002';

function runPyAsync(code: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(PYTHON, ['-c', code, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { err += b; });
    const t = setTimeout(() => p.kill('SIGKILL'), 90_000);
    p.on('close', () => { clearTimeout(t); resolve({ out, err }); });
  });
}

/** `sanlock-ts domain create-block`, the CLI itself, as an operator would lay the domain out. */
function createBlockDomain(vg: string): string {
  const r = spawnSync(process.execPath, ['bin/sanlock-ts', 'domain', 'create-block', vg, '--sd', BLOCK_SD, '--volumes', '3', '--vm-leases', '1', '--io-timeout', '1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('VDSM block-domain flow through python3-sanlock', { skip }, () => {
  test('our daemon and the real daemon give identical transcripts on a domain made by `domain create-block`', async () => {
    const base = scratchDir('vdsm-block');
    try {
      const run = async (kind: 'ours' | 'real') => {
        const dir = join(base, kind);
        const vg = join(dir, BLOCK_SD);
        const listing = createBlockDomain(vg);
        assert.match(listing, /^ {2}spm +SDM +\S+\/leases:1048576 *$/m);
        assert.match(listing, /^ {2}volume +\S+ +\S+\/leases:105906176 +slot 1$/m);
        const d = kind === 'ours' ? await startOurDaemon(join(dir, 'run'), ['-e', 'blockhost']) : await startRealDaemon(join(dir, 'run'), ['-e', 'blockhost']);
        try {
          return await runPyAsync(BLOCK_FLOW, [vg, BLOCK_SD], d.env);
        } finally {
          await d.stop();
        }
      };
      // the two hosts use separate files, so the runs can overlap
      const [a, b] = await Promise.all([run('ours'), run('real')]);
      assert.match(b.out, /\nEND\n$/, b.err);
      assert.match(a.out, /\nEND\n$/, a.err);
      assert.match(b.out, /^size leases 2048$/m);
      assert.match(b.out, /^read_resource_slot4 ERR -223$/m);
      assert.match(b.out, /^xleases_meta 0x12152016 1 True b'-'$/m);
      assert.match(b.out, /^acquire_vm_lease OK None$/m);
      assert.match(b.out, /^acquire_vol2 OK None$/m);
      assert.deepEqual(a.out.split('\n'), b.out.split('\n'));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
