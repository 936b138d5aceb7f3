// INQUIRE answers -ESTALE (data2 = 0, no state string) when the target's connection closed after
// the command was accepted for it (sanlock's cmd_inquire checks pid_dead first); a live target
// with no tokens gets 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errno } from '../../src/codes.js';
import { Client } from '../../src/daemon/clients.js';
import type { LockspaceManager } from '../../src/daemon/lockspace.js';
import { ResourceManager } from '../../src/daemon/resources.js';
import type { Daemon, Request } from '../../src/daemon/server.js';
import { Cmd } from '../../src/protocol/commands.js';
import { decodeHeader } from '../../src/protocol/header.js';

function inquireFor(target: Client): Request {
  const h = { magic: 0x04282010, version: 1, cmd: Cmd.INQUIRE, cmdFlags: 0, length: 32, seq: 7, data: 0, data2: -1 };
  return { client: target, target, h, payload: Buffer.alloc(0), resources: [] } as unknown as Request;
}

test('inquire: -ESTALE for a target whose pid died while the command was pending', async () => {
  const m = new ResourceManager({} as Daemon, {} as LockspaceManager);
  const c = new Client(5, undefined, -1);
  c.registered = true;

  const live = await m.inquire(inquireFor(c));
  assert.equal(live.length, 1);
  const hl = decodeHeader(live[0]!, 0);
  assert.ok(hl.ok);
  assert.equal(hl.value.data, 0);
  assert.equal(hl.value.data2, 0);

  c.pidDead = true;
  const dead = await m.inquire(inquireFor(c));
  assert.equal(dead.length, 1);
  const buf = dead[0]!;
  assert.equal(buf.length, 32, 'header only, no state string');
  const hd = decodeHeader(buf, 0);
  assert.ok(hd.ok);
  assert.equal(hd.value.data, -Errno.ESTALE);
  assert.equal(hd.value.data2, 0);
  assert.equal(hd.value.length, 32);
  assert.equal(hd.value.seq, 7);
});
