// The daemon-side request views and reply helpers that moved from src/daemon/wire.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cmd, cmdStr, cmdStrs, encodeReplyHeader, encodeStateRecord } from '../../src/protocol/commands.js';
import { HEADER_SIZE, SM_MAGIC, SM_PROTO, decodeHeader, makeHeader } from '../../src/protocol/header.js';
import {
  requestDisk,
  requestKillpath,
  requestLockspace,
  requestOptions,
  requestRentry,
  requestResource,
  requestRindex,
} from '../../src/protocol/request-structs.js';
import {
  DISK_SIZE,
  PATH_LEN,
  RINDEX_SIZE,
  STATE_MAXSTR,
  StateType,
  encodeDisk,
  encodeKillpath,
  encodeLockspace,
  encodeOptions,
  encodeRentry,
  encodeResource,
  encodeRindex,
  makeResource,
} from '../../src/protocol/structs.js';

test('a disk path filling all 1024 bytes keeps 1023 on the daemon side', () => {
  const b = Buffer.alloc(DISK_SIZE, 0x61);
  b.writeBigUInt64LE(4096n, 1024);
  b.writeUInt32LE(0, 1032);
  b.writeUInt32LE(0, 1036);
  const d = requestDisk(b);
  assert.equal(d.path.length, PATH_LEN - 1);
  assert.equal(d.offset, 4096);
  const ls = encodeLockspace({ name: 'ls', hostId: 3, flags: 0, hostIdDisk: { path: '/p', offset: 0, pad1: 0, pad2: 0 } });
  b.copy(ls, 64);
  const got = requestLockspace(ls);
  assert.equal(got.hostIdDisk.path.length, PATH_LEN - 1);
  assert.equal(got.hostId, 3);
  const rx = encodeRindex({ flags: 0x100, maxResources: 7, unused: 0, lockspaceName: 'L', disk: { path: '/x', offset: 1 << 20, pad1: 0, pad2: 0 } });
  const r = requestRindex(rx);
  assert.deepEqual([r.flags, r.maxResources, r.lockspaceName, r.disk.path, r.disk.offset], [0x100, 7, 'L', '/x', 1 << 20]);
});

test('request views drop unused fields and decode killpath/options', () => {
  const res = encodeResource(makeResource('ls', 'r1', [{ path: '/d', offset: 0, pad1: 0, pad2: 0 }], { unused: 77, lver: 5 }), false);
  const r = requestResource(res);
  assert.equal(r.unused, 0);
  assert.equal(r.lver, 5);
  assert.equal(r.numDisks, 1);
  assert.deepEqual(r.disks, []);
  const re = requestRentry(Buffer.concat([Buffer.alloc(RINDEX_SIZE), encodeRentry({ name: 'n', offset: 9, flags: 3, unused: 4 })]), RINDEX_SIZE);
  assert.deepEqual(re, { name: 'n', offset: 9, flags: 0, unused: 0 });
  assert.deepEqual(requestKillpath(encodeKillpath({ path: '/bin/kill', args: 'a b' })), { path: '/bin/kill', args: 'a b' });
  assert.equal(requestOptions(encodeOptions({ ownerName: 'o'.repeat(60), flags: 0, len: 0 })).ownerName, 'o'.repeat(48));
  assert.throws(() => requestDisk(Buffer.alloc(10)), /framed short/);
  assert.throws(() => requestDisk(encodeDisk({ path: '/a', offset: 0, pad1: 0, pad2: 0 }), 1));
});

test('encodeReplyHeader sets result, data2 and length over the request header', () => {
  const req = makeHeader(Cmd.INQUIRE, { seq: 9, cmdFlags: 2, data: 5, data2: -1, length: 500 });
  const h = decodeHeader(encodeReplyHeader(req, -2, 3, 40));
  assert.ok(h.ok);
  assert.deepEqual(h.value, { magic: SM_MAGIC, version: SM_PROTO, cmd: Cmd.INQUIRE, cmdFlags: 2, length: HEADER_SIZE + 40, seq: 9, data: -2, data2: 3 });
  assert.throws(() => encodeReplyHeader(req, 0, 0, -1));
});

test('cmdStr gives sanlock cmd_str names', () => {
  assert.equal(cmdStr(Cmd.ADD_LOCKSPACE), 'add_lockspace');
  assert.equal(cmdStr(Cmd.REBUILD_RINDEX), 'rebuild_rindex');
  assert.equal(cmdStr(99), 'cmd99');
  assert.equal(Object.keys(cmdStrs).length, 40);
});

test('a state text of STATE_MAXSTR bytes or more is refused', () => {
  const st = { type: StateType.DAEMON, flags: 0, data32: 0, data64: 0, name: 'h' };
  assert.equal(encodeStateRecord(st, 'x'.repeat(STATE_MAXSTR - 2)).length, 80 + STATE_MAXSTR - 1);
  assert.throws(() => encodeStateRecord(st, 'x'.repeat(STATE_MAXSTR - 1)), /state text too long/);
});
