// The fuzz engine itself: reproducible per seed, and sanitize() neutralises the legitimate
// destructive requests even when a header straddles two writes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cmd } from '../../src/protocol/commands.js';
import { encodeHeader, makeHeader } from '../../src/protocol/header.js';
import { encodeLockspace, emptyLockspace } from '../../src/protocol/structs.js';
import { WIRE_VECTORS_DIR } from '../helpers/paths.js';
import { generateBatch, loadWireRequests, sanitize } from './fuzzer.js';

const protect = { names: ['FUZZKEEP'], paths: ['/x/ids'], pids: [4242] };

describe('fuzz engine', () => {
  test('the recorded requests load and the same seed gives the same messages', () => {
    const corpus = loadWireRequests(WIRE_VECTORS_DIR);
    assert.ok(corpus.length >= 10, `only ${corpus.length} recorded requests`);
    const a = generateBatch(5, 3, 200, corpus);
    const b = generateBatch(5, 3, 200, corpus);
    const c = generateBatch(6, 3, 200, corpus);
    assert.deepEqual(a.map((m) => m.bytes.toString('hex')), b.map((m) => m.bytes.toString('hex')));
    assert.notDeepEqual(a.map((m) => m.bytes.toString('hex')), c.map((m) => m.bytes.toString('hex')));
    // the mix holds valid-magic headers, cuts and fresh connections
    assert.ok(a.some((m) => m.bytes.length >= 32 && m.bytes.readUInt32LE(0) === 0x04282010));
    assert.ok(a.some((m) => m.conn === 'cut') && a.some((m) => m.conn === 'new'));
  });

  test('SHUTDOWN is rewritten to an unknown command, also across a write boundary', () => {
    const h = encodeHeader(makeHeader(Cmd.SHUTDOWN, { data: 1 }));
    const m1 = Buffer.from(h);
    assert.ok(sanitize(Buffer.alloc(0), m1, protect) > 0);
    assert.notEqual(m1.readUInt32LE(8), Cmd.SHUTDOWN);
    const tail = h.subarray(0, 10);
    const m2 = Buffer.from(h.subarray(10));
    assert.ok(sanitize(tail, m2, protect) > 0);
    assert.notEqual(Buffer.concat([tail, m2]).readUInt32LE(8), Cmd.SHUTDOWN);
    const ok = encodeHeader(makeHeader(Cmd.STATUS));
    assert.equal(sanitize(Buffer.alloc(0), Buffer.from(ok), protect), 0);
  });

  test('a protected pid in data2, the protected name and path are neutralised', () => {
    const rel = encodeHeader(makeHeader(Cmd.RELEASE, { data2: 4242 }));
    const m = Buffer.from(rel);
    sanitize(Buffer.alloc(0), m, protect);
    assert.notEqual(m.readInt32LE(28), 4242);
    const ls = encodeLockspace({ ...emptyLockspace('FUZZKEEP'), hostIdDisk: { path: '/x/ids', offset: 0, pad1: 0, pad2: 0 } });
    const tail = ls.subarray(0, 4);
    const rest = Buffer.from(ls.subarray(4));
    sanitize(tail, rest, protect);
    const all = Buffer.concat([tail, rest]);
    assert.equal(all.indexOf('FUZZKEEP'), -1);
    assert.equal(all.indexOf('/x/ids'), -1);
  });
});
