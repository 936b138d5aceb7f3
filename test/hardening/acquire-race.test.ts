// Regression (found by the soak, issue 9): several clients of one daemon acquiring the same
// resource at once, on a lease file the daemon had not opened yet, were all granted EX — the
// daemon checked for a local holder, then waited for the file to open, then added the resource.
// Each trial here uses a fresh lease file so that first open happens every time.
// Also a sibling found while fixing it: a local SH acquire arriving while the only SH holder
// converts to EX joined a lease that was becoming exclusive.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PYTHON, SANLOCK_BIN, type OurDaemon, pyAvailable, startOurDaemon } from '../daemon/our-daemon.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { connect } from '../../src/client/index.js';

const RACE = `
import sanlock, os, sys, time
path = sys.argv[1]
r, w = os.pipe()
go = time.time() + 0.5
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        fd = sanlock.register()
        time.sleep(max(0, go - time.time()))
        try:
            sanlock.acquire(b"race", b"res", [(path, 0)], slkfd=fd)
            os.write(w, b"1")
            time.sleep(0.5)
        except sanlock.SanlockException as e:
            os.write(w, b"0")
        os._exit(0)
    kids.append(pid)
os.close(w)
for p in kids:
    os.waitpid(p, 0)
print("WINNERS", os.read(r, 16).count(b"1"))
`;

const skip = !pyAvailable() ? 'python3-sanlock or sanlock missing' : false;
let dir = '';
let d: OurDaemon | undefined;

before(async () => {
  if (skip) return;
  dir = scratchDir('acquire-race');
  const ids = join(dir, 'ids');
  execFileSync('truncate', ['-s', '1M', ids]);
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `race:0:${ids}:0`, '-o', '1']);
  d = await startOurDaemon(join(dir, 'run'), ['-e', 'race-host']);
  assert.equal(d.cli(['client', 'add_lockspace', '-s', `race:1:${ids}:0`, '-o', '1']).status, 0);
});

after(async () => {
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('concurrent acquires of one resource on a newly opened lease file: exactly one wins', { skip, timeout: 60_000 }, () => {
  for (let trial = 0; trial < 4; trial++) {
    const path = join(dir, `lease${trial}`);
    execFileSync('truncate', ['-s', '1M', path]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `race:res:${path}:0`]);
    const r = spawnSync(PYTHON, ['-c', RACE, path], { env: d!.env, encoding: 'utf8', timeout: 30_000 });
    assert.match(r.stdout, /WINNERS \d/, r.stderr);
    assert.equal(r.stdout.trim(), 'WINNERS 1', `trial ${trial}: ${r.stdout.trim()}`);
  }
});

test('a local SH acquire during a SH→EX convert does not join the lease', { skip, timeout: 60_000 }, async () => {
  const path = join(dir, 'convert-lease');
  execFileSync('truncate', ['-s', '1M', path]);
  execFileSync(SANLOCK_BIN, ['direct', 'init', '-r', `race:cv:${path}:0`]);
  const sl = await connect({ runDir: d!.runDir });
  const res = { lockspace: 'race', name: 'cv', disks: [{ path, offset: 0 }] };
  let overlaps = 0;
  let joinedBeforeConvert = 0;
  for (let trial = 0; trial < 10; trial++) {
    const a = await sl.register();
    const b = await sl.register();
    try {
      await a.acquire([{ ...res, shared: true }]);
      const [cv, sh] = await Promise.allSettled([a.convert(res), b.acquire([{ ...res, shared: true }])]);
      if (cv.status === 'fulfilled' && sh.status === 'fulfilled') overlaps++;
      if (cv.status === 'rejected' && sh.status === 'fulfilled') joinedBeforeConvert++;
    } finally {
      a.close();
      b.close();
    }
    // the daemon releases both registrations' leases once it sees the connections close
    for (let i = 0; i < 100 && /^r race:cv/m.test(d!.cli(['client', 'status']).stdout); i++) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(overlaps, 0, `convert to EX and a concurrent SH acquire both succeeded in ${overlaps}/10 trials`);
  assert.ok(joinedBeforeConvert < 10, 'the SH acquire always won the race: the test did not exercise the convert');
});
