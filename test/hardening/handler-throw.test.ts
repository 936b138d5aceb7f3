// Regression for the last gap of the long fuzz run (seed 9091, 300 000 messages): a registered
// fuzzer connection stayed in the client table after it closed (cmd_active 0, cmd_last 20,
// pid_dead 0). A READ_LOCKSPACE whose flags name an impossible geometry (512-byte sectors with
// 2/4/8 MiB alignment) made the handler throw; the connection loop logged it, destroyed the
// socket and returned without running its close path, so the slot (registered or not) was never
// freed and the client got no reply. Every such message leaked one of the 1 022 slots.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cmd } from '../../src/protocol/commands.js';
import { encodeLockspace, emptyDisk, LOCKSPACE_SIZE } from '../../src/protocol/structs.js';
import { Daemon } from '../../src/daemon/server.js';
import { defaultConfig } from '../../src/daemon/config.js';
import { DaemonLog } from '../../src/daemon/log.js';
import { SanlockError } from '../../src/codes.js';
import { scratchDir } from '../helpers/real-sanlock.js';
import { header, pyAvailable, readBytes, waitFor } from '../daemon/our-daemon.js';
import { direct, type Setup, setup } from './helpers.js';

// SANLK_LSF_SECTOR512 | SANLK_LSF_ALIGN2M / ALIGN4M / ALIGN8M: geometries that do not exist
const BAD_FLAGS = [0x120, 0x140, 0x180];

const lsPayload = (path: string, flags: number): Buffer => encodeLockspace({ name: 'LS', hostId: 1, flags, hostIdDisk: emptyDisk(path, 0) });

describe('READ_LOCKSPACE with impossible geometry flags (our daemon)', { skip: !pyAvailable() }, () => {
  let s: Setup;
  let ids: string;

  before(async () => {
    s = await setup('handler-throw', { ids: 1 }, (f) => {
      direct(['init', '-s', `LS:0:${f('ids')}:0`, '-o', '1']);
    });
    ids = s.file('ids');
  });

  after(async () => {
    await s?.cleanup();
  });

  const clientLines = (): number => [...s.d.cli(['client', 'status']).stdout.matchAll(/^p /gm)].length;

  async function readLockspace(flags: number, register: boolean): Promise<{ sock: Socket; reply: Buffer }> {
    const sock = await s.d.rawConnect();
    if (register) sock.write(header(Cmd.REGISTER));
    sock.write(Buffer.concat([header(Cmd.READ_LOCKSPACE, { length: 32 + LOCKSPACE_SIZE }), lsPayload(ids, flags)]));
    // header + the lockspace struct; short when the daemon closed instead of answering
    return { sock, reply: await readBytes(sock, 32 + LOCKSPACE_SIZE, 5000) };
  }

  test('answered as sanlock does, and no client slot is left once the connections close', async () => {
    const base = clientLines();
    const socks: Socket[] = [];
    try {
      for (const register of [true, false]) {
        for (const f of BAD_FLAGS) {
          const { sock, reply } = await readLockspace(f, register);
          socks.push(sock);
          const what = `READ_LOCKSPACE flags 0x${f.toString(16)} (registered ${register})`;
          assert.equal(reply.length, 32 + LOCKSPACE_SIZE, `no reply to ${what}`);
          // what sanlock 3.8.5 answers (checked by hand with python read_lockspace(align=2M/4M/8M,
          // sector=512)): the record is read, io_timeout 1
          assert.equal(reply.readInt32LE(24), 0, `${what} answered ${reply.readInt32LE(24)}`);
          assert.equal(reply.readInt32LE(28), 1, `${what}: io_timeout`);
        }
      }
      const ok = await readLockspace(0, true);
      socks.push(ok.sock);
      assert.equal(ok.reply.readInt32LE(24), 0, 'a valid READ_LOCKSPACE failed');
    } finally {
      for (const k of socks) k.destroy();
    }
    await waitFor(() => clientLines() === base, 10_000, 'client slots freed').catch(() => {
      assert.fail(`client slots left behind after close:\n${s.d.cli(['client', 'status', '-D']).stdout}`);
    });
  });
});

// Whatever a handler throws, the connection loop must not lose track of the connection: a
// throwing std-reply command is answered (SanlockError's code) and the connection stays usable;
// one whose reply has a body closes through the normal close path. Both free their slot.
describe('server: a handler that throws never leaks its client slot', () => {
  let dir: string;
  let d: Daemon;
  let sockPath: string;
  const dead: number[] = [];

  before(async () => {
    dir = scratchDir('handler-throw-unit');
    sockPath = join(dir, 'sock');
    d = new Daemon(defaultConfig(), new DaemonLog({ toStderr: false, logfilePriority: -1, logfileUseUtc: false }), 'h', process.getuid!(), process.getgid!());
    d.hooks = { ...d.hooks, clientDead: (c) => dead.push(c.ci) };
    d.handle(Cmd.WRITE_LOCKSPACE, async () => {
      throw new SanlockError(-233, 'boom');
    });
    d.handle(Cmd.READ_LOCKSPACE, async () => {
      throw new Error('boom');
    });
    d.handle(Cmd.GET_HOSTS, () => {
      throw new Error('boom');
    });
    await d.listen(sockPath);
  });

  after(async () => {
    d.exit();
    await d.done;
    rmSync(dir, { recursive: true, force: true });
  });

  const open = (): Promise<Socket> =>
    new Promise((res, rej) => {
      const k = connect(sockPath);
      k.once('connect', () => res(k));
      k.once('error', rej);
    });
  const closed = (k: Socket): Promise<boolean> =>
    new Promise((res) => {
      if (k.destroyed || k.readableEnded) return res(true);
      k.once('close', () => res(true));
      k.once('end', () => res(true));
      setTimeout(() => res(false), 3000);
    });

  test('std reply: answered with the code, connection kept; its close then frees the slot', async () => {
    const k = await open();
    k.write(header(Cmd.REGISTER));
    const cmd = Buffer.concat([header(Cmd.WRITE_LOCKSPACE, { length: 32 + LOCKSPACE_SIZE }), lsPayload('/dev/null', 0)]);
    k.write(cmd);
    const r1 = await readBytes(k, 32);
    assert.equal(r1.length, 32, 'no reply');
    assert.equal(r1.readInt32LE(24), -233);
    k.write(cmd);
    const r2 = await readBytes(k, 32);
    assert.equal(r2.readInt32LE(24), -233, 'the connection was not kept after a failed handler');
    assert.equal(d.clients.count, 3);
    k.destroy();
    await waitFor(() => d.clients.count === 2, 5000, 'slot freed');
    assert.equal(dead.length, 1, 'the registered client was not handled as dead once');
  });

  test('reply with a body (class B and class A): connection closed, slot freed, registered one handled as dead', async () => {
    dead.length = 0;
    for (const [cmd, register] of [
      [Cmd.READ_LOCKSPACE, true],
      [Cmd.READ_LOCKSPACE, false],
      [Cmd.GET_HOSTS, true],
      [Cmd.GET_HOSTS, false],
    ] as const) {
      const k = await open();
      const gone = closed(k);
      if (register) k.write(header(Cmd.REGISTER));
      k.write(Buffer.concat([header(cmd, { length: 32 + LOCKSPACE_SIZE }), lsPayload('/dev/null', 0)]));
      assert.equal(await gone, true, `cmd ${cmd}: the daemon neither answered nor closed`);
      await waitFor(() => d.clients.count === 2, 5000, `cmd ${cmd} (registered ${register}): slot freed`).catch(() => {
        assert.fail(`cmd ${cmd} (registered ${register}): ${d.clients.count - 2} slot(s) left`);
      });
      k.destroy();
    }
    assert.equal(dead.length, 2, 'each registered connection is handled as dead once');
  });
});
