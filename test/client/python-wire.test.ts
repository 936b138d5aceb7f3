// Our client library sends the same bytes as python3-sanlock 3.8.5 (libsanlock) for the same
// call: both talk to a daemon stand-in that accepts everything and records what it receives.
// Covers options the recorded vectors do not (sizes, async flags, multiple resources, pids…).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { ForceMode, SanlockClient, SetEventFlag, socketPath } from '../../src/client/index.js';
import { PYTHON, havePythonSanlock } from '../helpers/real-sanlock.js';
import { startAcceptingDaemon } from './fake-daemon.js';

const D = "[('/x/leases', 1048576)]";
const R = (name: string, extra: Record<string, unknown> = {}) => ({ lockspace: 'LS', name, disks: [{ path: '/x/leases', offset: 1048576 }], ...extra });

const CASES: Array<[string, (c: SanlockClient) => Promise<unknown>]> = [
  ["sanlock.write_lockspace(b'LS', '/x/ids', offset=1048576, max_hosts=250, iotimeout=5, align=8388608, sector=4096)", (c) =>
    c.writeLockspace({ name: 'LS', path: '/x/ids', offset: 1048576 }, { maxHosts: 250, ioTimeout: 5, align: 8 << 20, sector: 4096 })],
  [`sanlock.write_resource(b'LS', b'R1', ${D}, max_hosts=9, num_hosts=5, clear=True, align=2097152, sector=4096)`, (c) =>
    c.writeResource(R('R1'), { maxHosts: 9, numHosts: 5, clear: true, align: 2 << 20, sector: 4096 })],
  ["sanlock.read_lockspace('/x/ids', offset=1048576, align=4194304, sector=4096)", (c) => c.readLockspace('/x/ids', 1048576, { align: 4 << 20, sector: 4096 })],
  ["sanlock.read_resource('/x/leases', 1048576, align=1048576, sector=4096)", (c) => c.readResource('/x/leases', 1048576, { align: 1 << 20, sector: 4096 })],
  [`sanlock.read_resource_owners(b'LS', b'R1', ${D})`, (c) => c.readResourceOwners(R('R1'))],
  ["sanlock.add_lockspace(b'LS', 7, '/x/ids', 1048576, iotimeout=3, wait=False)", (c) =>
    c.addLockspace({ name: 'LS', hostId: 7, path: '/x/ids', offset: 1048576 }, { ioTimeout: 3, async: true })],
  ["sanlock.inq_lockspace(b'LS', 7, '/x/ids', 0, wait=True)", (c) => c.inqLockspace({ name: 'LS', hostId: 7, path: '/x/ids' }, { wait: true })],
  ["sanlock.rem_lockspace(b'LS', 7, '/x/ids', 0, wait=False, unused=True)", (c) =>
    c.remLockspace({ name: 'LS', hostId: 7, path: '/x/ids' }, { async: true, unused: true })],
  ['sanlock.get_lockspaces()', (c) => c.getLockspaces()],
  ["sanlock.get_hosts(b'LS', 3)", (c) => c.getHosts('LS', 3)],
  [`sanlock.acquire(b'LS', b'R1', ${D}, pid=4242, shared=True, lvb=True)`, (c) => c.acquire(4242, [R('R1', { shared: true })], { lvb: true })],
  [`sanlock.acquire(b'LS', b'R1', ${D}, pid=4242, version=17)`, (c) => c.acquire(4242, [R('R1', { lver: 17 })])],
  [`sanlock.release(b'LS', b'R1', ${D}, pid=4242)`, (c) => c.release(4242, [R('R1')])],
  ['sanlock.inquire(pid=4242)', (c) => c.inquire(4242)],
  [`sanlock.request(b'LS', b'R1', ${D}, action=sanlock.REQ_FORCE, version=12)`, (c) => c.request(R('R1'), { forceMode: ForceMode.FORCE, lver: 12 })],
  [`sanlock.request(b'LS', b'R1', ${D})`, (c) => c.request(R('R1'))],
  [`sanlock.set_lvb(b'LS', b'R1', ${D}, b'0123456789')`, (c) => c.setLvb(R('R1'), Buffer.from('0123456789'))],
  [`sanlock.get_lvb(b'LS', b'R1', ${D}, 64)`, (c) => c.getLvb(R('R1'), 64)],
  ["sanlock.set_event(b'LS', 3, 2, 0x11, data=0x22, flags=sanlock.SETEV_REPLACE_EVENT|sanlock.SETEV_ALL_HOSTS)", (c) =>
    c.setEvent('LS', { hostId: 3, generation: 2, event: 0x11, data: 0x22 }, SetEventFlag.REPLACE_EVENT | SetEventFlag.ALL_HOSTS)],
  ["fd = sanlock.register(); sanlock.killpath('/usr/bin/kill me', ['a b', 'c\\\\d', 'e'], slkfd=fd); sanlock.acquire(b'LS', b'R1', [('/x/leases', 1048576)], slkfd=fd); sanlock.inquire(slkfd=fd); sanlock.release(b'LS', b'R1', [('/x/leases', 1048576)], slkfd=fd)", async (c) => {
    const reg = await c.register();
    await reg.killpath('/usr/bin/kill me', ['a b', 'c\\d', 'e']);
    await reg.acquire([R('R1')]);
    await reg.inquire();
    await reg.release([R('R1')]);
    reg.close();
  }],
];

function python(code: string, runDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ['-c', `import sanlock\n${code}`], { env: { ...process.env, SANLOCK_RUN_DIR: runDir }, timeout: 10_000 }, (err, _o, stderr) =>
      err ? reject(new Error(`python: ${stderr}`)) : resolve(),
    );
  });
}

describe('client library request bytes equal python3-sanlock', { skip: havePythonSanlock() ? false : 'python3-sanlock missing' }, () => {
  for (const [code, fn] of CASES) {
    test(code.slice(0, 110), async () => {
      const a = await startAcceptingDaemon();
      const b = await startAcceptingDaemon();
      try {
        await python(code, a.runDir);
        await fn(new SanlockClient(socketPath(b.runDir)));
        await new Promise((r) => setTimeout(r, 20));
        assert.equal(b.received().toString('hex'), a.received().toString('hex'));
      } finally {
        await a.close();
        await b.close();
      }
    });
  }
});
