// The recorded python3-sanlock and `sanlock client` exchanges (vectors/wire/) replayed through
// our client library and our `client` CLI against a scripted daemon that answers with the
// recorded reply bytes: the bytes we send must equal the recorded request bytes, and the
// results / stdout / exit status must equal what the real clients produced.
//
// Normalisations: none are needed for the request bytes — the pids in the recordings (7667,
// the proxy's) are passed explicitly, and no request carries an fd or timestamp. The register
// call's fd number (python returned 4) is not compared.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ForceMode, SanlockClient, SanlockClientError, SetEventFlag, socketPath } from '../../src/client/index.js';
import { runClient } from '../../src/cli/client.js';
import { haveVectors, loadVector, splitReplies } from '../protocol/vectors.js';
import { startFakeDaemon } from './fake-daemon.js';

const skip = haveVectors() ? false : 'vectors/wire not available';
const P = '/shared/sanlock';
const LEASES = `${P}/leases`;
const res = (name: string, offset: number, extra: Record<string, unknown> = {}) => ({ lockspace: 'LS', name, disks: [{ path: LEASES, offset }], ...extra });

async function rejects(p: Promise<unknown>, code: number, codeName: string, sentence: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof SanlockClientError, String(e));
    assert.equal(e.code, code);
    assert.equal(e.codeName, codeName);
    assert.equal(e.sentence, sentence);
    return true;
  });
}

/** Runs `fn` against a fake daemon loaded with the replies of `files`; checks the bytes sent. */
async function replay(files: string[], fn: (c: SanlockClient, runDir: string) => Promise<void>): Promise<void> {
  const vs = files.map(loadVector);
  const daemon = await startFakeDaemon(vs.flatMap((v) => splitReplies(v.reply)));
  try {
    await fn(new SanlockClient(socketPath(daemon.runDir)), daemon.runDir);
    // let the last bytes (e.g. the event-channel marker) arrive
    await new Promise((r) => setTimeout(r, 20));
    const want = Buffer.concat(vs.map((v) => v.request));
    assert.equal(daemon.received().toString('hex'), want.toString('hex'), 'request bytes');
    assert.equal(daemon.pending(), 0, 'every recorded reply was asked for');
  } finally {
    await daemon.close();
  }
}

const LIB: Record<string, (c: SanlockClient) => Promise<void>> = {
  '01': async (c) => c.writeLockspace({ name: 'LS', path: `${P}/ids` }),
  '02': async (c) => c.writeResource(res('R1', 0)),
  '03': async (c) => {
    const r = await c.readLockspace(`${P}/ids`);
    assert.equal(r.lockspace.name, 'LS');
    assert.equal(r.ioTimeout, 10);
  },
  '04': async (c) => {
    const r = await c.readResource(LEASES, 0);
    assert.deepEqual([r.lockspaceName, r.name, r.lver], ['LS', 'R1', 0]);
  },
  '05': (c) => rejects(c.readResource(LEASES, 4194304), -223, 'SANLK_LEADER_MAGIC', 'Lease does not exist on storage'),
  '06': (c) => c.addLockspace({ name: 'LS', hostId: 1, path: `${P}/ids` }, { ioTimeout: 1 }),
  '07': (c) => rejects(c.addLockspace('LS:1:/shared/sanlock/ids:0', { ioTimeout: 1 }), -17, 'EEXIST', 'File exists'),
  '08': async (c) => assert.equal(await c.inqLockspace({ name: 'LS', hostId: 1, path: `${P}/ids` }), true),
  '09': async (c) => assert.equal(await c.inqLockspace({ name: 'NOLS', hostId: 1, path: `${P}/ids` }), false),
  '10': async (c) => assert.deepEqual(await c.getLockspaces(), [{ lockspace: 'LS', hostId: 1, path: `${P}/ids`, offset: 0, flags: 0 }]),
  '18': (c) => c.setLvb(res('R3', 2097152), Buffer.from('hello')),
  '19': async (c) => assert.deepEqual(await c.getLvb(res('R3', 2097152), 16), Buffer.concat([Buffer.from('hello'), Buffer.alloc(11)])),
  '21': async (c) => {
    const r = await c.inquire(7667);
    assert.equal(r.count, 3);
    assert.equal(r.state, 'LS:R1:/shared/sanlock/leases:0:1 LS:R2:/shared/sanlock/leases:1048576:SH LS:R3:/shared/sanlock/leases:2097152:1');
    assert.deepEqual(
      r.resources.map((x) => [x.name, x.flags, x.lver, x.disks[0]!.offset]),
      [
        ['R1', 1, 1, 0],
        ['R2', 4, 0, 1048576],
        ['R3', 1, 1, 2097152],
      ],
    );
  },
  '22': (c) => rejects(c.inquire(1), -3, 'ESRCH', 'No such process'),
  '23': async (c) =>
    assert.deepEqual(await c.getHosts('LS'), [
      { hostId: 1, generation: 1, timestamp: 666, ioTimeout: 1, flags: 3 },
      { hostId: 2, generation: 1, timestamp: 668, ioTimeout: 1, flags: 3 },
    ]),
  '24': async (c) => assert.deepEqual(await c.getHosts('LS', 2), [{ hostId: 2, generation: 1, timestamp: 668, ioTimeout: 1, flags: 3 }]),
  '25': (c) => rejects(c.getHosts('NOLS'), -2, 'ENOENT', 'No such file or directory'),
  '26': async (c) => {
    const r = await c.readResourceOwners(res('R1', 0));
    assert.deepEqual(r.hosts, [{ hostId: 1, generation: 1, timestamp: 667, ioTimeout: 0, flags: 0 }]);
  },
  '27': async (c) => {
    const r = await c.readResourceOwners(res('R2', 1048576));
    assert.equal(r.resource.flags & 4, 4);
    assert.deepEqual(r.hosts, [{ hostId: 1, generation: 1, timestamp: 0, ioTimeout: 0, flags: 0 }]);
  },
  '28': (c) => c.request(res('R1', 0), { forceMode: ForceMode.GRACEFUL }),
  '36': (c) => c.endEvent('LS'),
  '37': (c) => c.setEvent('LS', { hostId: 2, generation: 0, event: 5, data: 6 }, SetEventFlag.CUR_GENERATION),
  '38': (c) => rejects(c.setEvent('LS', { hostId: 2, event: 8, data: 6 }), -16, 'EBUSY', 'Device or resource busy'),
  '39': (c) => rejects(c.remLockspace({ name: 'LS', hostId: 1, path: `${P}/ids` }, { unused: true }), -16, 'EBUSY', 'Device or resource busy'),
  '42': (c) => c.acquire(7667, [res('R1', 0)]),
  '43': async (c) => assert.equal(await c.release(7667, [res('R1', 0)]), 0),
  '46': (c) => c.remLockspace({ name: 'LS', hostId: 1, path: `${P}/ids` }),
  '47': async (c) => assert.equal(await c.inqLockspace({ name: 'LS', hostId: 1, path: `${P}/ids` }), false),
  '48': (c) => rejects(c.remLockspace({ name: 'LS', hostId: 1, path: `${P}/ids` }), -2, 'ENOENT', 'No such file or directory'),
};

describe('client library replays python3-sanlock exchanges', { skip }, () => {
  for (const [prefix, fn] of Object.entries(LIB)) {
    test(`${prefix}: ${loadVectorSafe(prefix)}`, () => replay([prefix], fn));
  }

  test('35+36: reg_event channel receives two event_cb, end_event writes the marker then END_EVENT', () =>
    replay(['35', '36'], async (c) => {
      const ch = await c.regEvent('LS');
      const events = [];
      while (events.length < 2) events.push(...(await ch.nextEvents()));
      assert.equal(events.length, 2);
      for (const e of events) {
        assert.deepEqual([e.he.hostId, e.he.generation, e.he.event, e.he.data, e.fromHostId, e.fromGeneration], [1, 0, 7, 9, 2, 1]);
      }
      await ch.end();
    }));

  test('45: the whole registered connection (register … release, close)', () =>
    replay(['45'], async (c) => {
      const reg = await c.register();
      assert.ok(reg.fd >= 0);
      await reg.killpath('/bin/true', ['arg1', 'arg two']);
      await reg.acquire([res('R1', 0)]);
      await rejects(reg.acquire([res('R1', 0)]), -17, 'EEXIST', 'File exists');
      assert.equal((await reg.inquire()).state, 'LS:R1:/shared/sanlock/leases:0:1');
      await reg.acquire([res('R2', 1048576, { shared: true })]);
      await reg.acquire([res('R3', 2097152)], { lvb: true });
      assert.equal((await reg.inquire()).count, 3);
      assert.equal(await reg.release([res('R1', 0)]), 0);
      await rejects(reg.release([res('R1', 0)]), -1, 'EPERM', 'Operation not permitted');
      await rejects(reg.acquire([res('R1', 0, { lver: 99 })]), -240, 'SANLK_ACQUIRE_LVER', 'Unknown error');
      await reg.release([res('R2', 1048576)]);
      reg.close();
    }));
});

function loadVectorSafe(prefix: string): string {
  try {
    return loadVector(prefix).caption.slice(0, 60);
  } catch {
    return prefix;
  }
}

const CLI = ['29', '30', '31', '32', '33', '34', '49', '50', '51', '52', '53', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88'];

describe('client CLI replays `sanlock client` exchanges: same bytes, stdout, exit status', { skip }, () => {
  for (const prefix of CLI) {
    test(`${prefix}: ${loadVectorSafe(prefix)}`, async () => {
      const v = loadVector(prefix);
      const argv = v.client as string[];
      const want = v.result as { exit_code: number; stdout: string };
      let stdout = '';
      let code = -1;
      await replay([prefix], async (_c, runDir) => {
        code = await runClient(argv.slice(2), { write: (s) => (stdout += s), runDir, isTTY: false });
      });
      assert.equal(stdout, want.stdout);
      assert.equal(code, want.exit_code);
    });
  }
});

after(() => undefined);
