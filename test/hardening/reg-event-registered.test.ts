// A registered connection that sends REG_EVENT hands its socket to the lockspace's event channel
// and stops being a client (sanlock: client_free of the slot). Its leases must not stay held by
// nobody: they are released as when a registered connection closes (found in the review of the
// long fuzz runs: the slot was dropped without the death handling, leaving an EX lease on disk
// and in the daemon that no client could ever release).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitFor, pyAvailable } from '../daemon/our-daemon.js';
import { direct, MiB, type Setup, setup } from './helpers.js';
import { decodeLeader } from '../../src/ondisk/leader.js';

describe('REG_EVENT on a registered connection that holds a lease', { skip: !pyAvailable() }, () => {
  let s: Setup;

  before(async () => {
    s = await setup('reg-event-reg', { ids: 1, lease: 1 }, (f) => {
      direct(['init', '-s', `LS:0:${f('ids')}:0`, '-o', '1']);
      direct(['init', '-r', `LS:R:${f('lease')}:0`]);
    });
    s.d.cli(['client', 'add_lockspace', '-s', `LS:1:${s.file('ids')}:0`, '-o', '1']);
  });

  after(async () => {
    await s?.cleanup();
  });

  test('REG_EVENT is answered and the lease is released, on disk and in status', () => {
    const lease = s.file('lease');
    const r = s.d.py(
      `import os, struct
fd = sanlock.register()
sanlock.acquire(b"LS", b"R", [(${JSON.stringify(lease)}, 0)], slkfd=fd)
print("ACQUIRED", flush=True)
ls = b"LS".ljust(48, b"\\0") + struct.pack("<QI", 0, 0) + b"\\0" * (1040 + 4)
hdr = struct.pack("<IIIIIIii", 0x04282010, 1, 30, 0, 32 + len(ls) + 32, 0, 0, 0)
os.write(fd, hdr + ls + b"\\0" * 32)
rep = os.read(fd, 32)
print("REPLY", struct.unpack("<IIIIIIii", rep)[6], flush=True)
import time
time.sleep(4)
print("DONE", flush=True)`,
      15_000,
    );
    assert.match(r.stdout, /REPLY 0\n/, `REG_EVENT reply: ${r.stdout} ${r.stderr}`);
    assert.match(r.stdout, /DONE/);
    // python has exited by now, so its event socket is closed too: without the release at the
    // hand-over nothing would ever release the lease
    const status = s.d.cli(['client', 'status']).stdout;
    assert.doesNotMatch(status, /^r LS:R:/m, `lease still held:\n${status}`);
    const leader = decodeLeader(s.snapshot(lease).subarray(0, MiB), 0);
    assert.equal(leader.timestamp, 0, `leader still owned: owner ${leader.ownerId} ts ${leader.timestamp}`);
  });

  test('a fresh client can take the lease', async () => {
    await waitFor(() => !/^r LS:R:/m.test(s.d.cli(['client', 'status']).stdout), 5000, 'lease gone');
    const r = s.d.py(`fd = sanlock.register()\nsanlock.acquire(b"LS", b"R", [(${JSON.stringify(s.file('lease'))}, 0)], slkfd=fd)\nprint("GOT")`);
    assert.match(r.stdout, /GOT/, r.stderr);
  });
});
