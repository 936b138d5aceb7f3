// RELEASE with SANLK_REL_RENAME (0x2): the first resource is released and its freed leader is
// written with the second resource's name, in one write. The same libsanlock call
// (sanlock_release via ctypes: python3-sanlock does not expose the flag) runs against OUR daemon
// and the REAL sanlock 3.8.5 daemon, and the resulting leaders are compared field by field
// (timestamps and checksums excluded).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeLeader } from '../../src/ondisk/leader.js';
import { type RealDaemon, haveRealSanlock, scratchDir, startRealDaemon } from '../helpers/real-sanlock.js';
import { type OurDaemon, PYTHON, pyAvailable, SANLOCK_BIN, startOurDaemon } from './our-daemon.js';

const skip = !pyAvailable() || !haveRealSanlock();
const MiB = 1024 * 1024;

interface Setup {
  ids: string;
  leases: string;
}

function prepare(dir: string): Setup {
  const ids = join(dir, 'ids');
  const leases = join(dir, 'leases');
  execFileSync('truncate', ['-s', '1M', ids]);
  execFileSync('truncate', ['-s', '2M', leases]);
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LS:0:${ids}:0`, '-o', '1']);
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R1:${leases}:0`]);
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `LS:R2:${leases}:${MiB}`]);
  return { ids, leases };
}

/**
 * Joins LS, acquires R1, releases it renamed to R1new (rv printed), then shows what the
 * rename did: R1 no longer acquirable by its old name, R1new is. Also: a rename of a lease
 * not held (-1 → EPERM), and a plain release of R2 still works after it.
 */
function scenario(s: Setup): string {
  const py = `
import ctypes
L = ${JSON.stringify(s.leases)}
sanlock.add_lockspace(b"LS", 1, ${JSON.stringify(s.ids)}, iotimeout=1)
lib = ctypes.CDLL("libsanlock.so.1")
def res(name):
    b = ctypes.create_string_buffer(128)
    b[0:2] = b"LS"
    b[48:48 + len(name)] = name
    return b
def rel_rename(fd, old, new):
    a, b = res(old), res(new)
    arr = (ctypes.c_void_p * 2)(ctypes.addressof(a), ctypes.addressof(b))
    return lib.sanlock_release(fd, -1, 2, 2, arr)
fd = sanlock.register()
sanlock.acquire(b"LS", b"R1", [(L, 0)], slkfd=fd)
sanlock.acquire(b"LS", b"R2", [(L, ${MiB})], slkfd=fd)
print("rename", rel_rename(fd, b"R1", b"R1new"))
print("rename-not-held", rel_rename(fd, b"R1", b"R1x"))
try:
    sanlock.acquire(b"LS", b"R1", [(L, 0)], slkfd=fd)
    print("old-name 0")
except sanlock.SanlockException as e:
    print("old-name", e.errno)
sanlock.acquire(b"LS", b"R1new", [(L, 0)], slkfd=fd)
print("new-name 0")
sanlock.release(b"LS", b"R1new", [(L, 0)], slkfd=fd)
sanlock.release(b"LS", b"R2", [(L, ${MiB})], slkfd=fd)
print("done")
`;
  return py;
}

function leaderAt(path: string, off: number): ReturnType<typeof decodeLeader> {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(512);
    readSync(fd, b, 0, 512, off);
    return decodeLeader(b, 0);
  } finally {
    closeSync(fd);
  }
}

/** The leader without what differs between two runs by timing alone. */
function comparable(l: ReturnType<typeof decodeLeader>): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...l };
  delete rest.timestamp;
  delete rest.checksum;
  delete rest.writeTimestamp;
  return rest;
}

describe('RELEASE with SANLK_REL_RENAME', { skip }, () => {
  let ours: OurDaemon | undefined;
  let real: RealDaemon | undefined;
  let so: Setup;
  let sr: Setup;
  let outOurs = '';
  let outReal = '';

  before(async () => {
    const dOurs = scratchDir('rel-rename-ours');
    const dReal = scratchDir('rel-rename-real');
    so = prepare(dOurs);
    sr = prepare(dReal);
    ours = await startOurDaemon(join(dOurs, 'run'));
    real = await startRealDaemon(join(dReal, 'run'));
    const run = (env: NodeJS.ProcessEnv, s: Setup): string => {
      const r = spawnSync(PYTHON, ['-c', `import sanlock\n${scenario(s)}`], { env, encoding: 'utf8', timeout: 60_000 });
      return r.stdout + r.stderr;
    };
    outOurs = run(ours.env, so);
    outReal = run(real.env, sr);
  });

  after(async () => {
    await ours?.stop();
    await real?.stop();
  });

  test('the renamed lease is released and carries the new name; results match the real daemon', () => {
    const expected = 'rename 0\nrename-not-held -1\nold-name -227\nnew-name 0\ndone\n';
    assert.equal(outReal, expected, 'real daemon');
    assert.equal(outOurs, expected, 'our daemon');
  });

  test('the leaders on disk match the real daemon byte for byte, but for timestamps and checksums', () => {
    for (const off of [0, MiB]) {
      const lo = leaderAt(so.leases, off);
      const lr = leaderAt(sr.leases, off);
      assert.equal(lo.timestamp, 0);
      assert.equal(lr.timestamp, 0);
      assert.deepEqual(comparable(lo), comparable(lr), `leader at ${off}`);
    }
    assert.equal(leaderAt(so.leases, 0).resourceName, 'R1new');
    assert.equal(leaderAt(so.leases, MiB).resourceName, 'R2');
  });
});
