// Decoders face whatever a peer sends: random bytes, truncations and garbage headers must give
// an error result (or a value), never an exception. Round-trip properties of the codecs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Errno } from '../../src/codes.js';
import { COMMANDS, RequestFramer, decodeRequest, frameRequest } from '../../src/protocol/commands.js';
import { HEADER_SIZE, decodeHeader, encodeHeader, makeHeader } from '../../src/protocol/header.js';
import { decodeReply, decodeStateRecord, decodeStateStream } from '../../src/protocol/replies.js';
import { argsToState, pathExport, pathImport, resToStr, stateToArgs, strToLockspace, strToRes } from '../../src/protocol/state-strings.js';
import {
  decodeDisk,
  decodeEventCb,
  decodeHost,
  decodeHostEvent,
  decodeKillpath,
  decodeLockspace,
  decodeOptions,
  decodeRentry,
  decodeResource,
  decodeRindex,
  decodeStateHeader,
  emptyDisk,
  encodeResource,
  makeResource,
} from '../../src/protocol/structs.js';
import { haveVectors, loadVectors, splitReplies } from './vectors.js';

const bytes = (max = 3000) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const cmds = [...COMMANDS.keys()];

test('struct decoders never throw on random bytes and report short input as -ENOTCONN', () => {
  const decoders = [decodeDisk, decodeLockspace, decodeOptions, decodeHost, decodeHostEvent, decodeRindex, decodeRentry, decodeStateHeader, decodeEventCb, decodeKillpath, decodeHeader];
  fc.assert(
    fc.property(bytes(), fc.integer({ min: -5, max: 3000 }), (b, off) => {
      for (const d of decoders) {
        const r = d(b, off);
        if (!r.ok) assert.ok(r.code < 0);
      }
      for (const withDisks of [true, false]) {
        const r = decodeResource(b, off, withDisks);
        if (!r.ok) assert.ok([-Errno.ENOTCONN, -Errno.ERANGE].includes(r.code));
      }
    }),
    { numRuns: 300 },
  );
  const short = decodeLockspace(Buffer.alloc(1103));
  assert.ok(!short.ok && short.code === -Errno.ENOTCONN);
});

test('framing never throws, and never consumes more than it was given', () => {
  fc.assert(
    fc.property(fc.array(bytes(1500), { maxLength: 6 }), (chunks) => {
      const framer = new RequestFramer();
      let total = 0;
      let consumed = 0;
      for (const c of chunks) {
        total += c.length;
        for (const f of framer.push(c)) {
          assert.notEqual(f.kind, 'need');
          if (f.kind !== 'need') consumed += f.size;
        }
      }
      assert.ok(consumed + framer.pending <= total);
    }),
    { numRuns: 300 },
  );
});

test('random payloads behind valid headers of every command frame or fail cleanly', () => {
  fc.assert(
    fc.property(fc.constantFrom(...cmds), fc.integer({ min: -3, max: 12 }), fc.integer(), fc.integer({ min: 0, max: 6000 }), bytes(6000), (cmd, data, data2, length, payload) => {
      const h = makeHeader(cmd, { data, data2, length });
      const f = frameRequest(Buffer.concat([encodeHeader(h), payload]));
      if (f.kind === 'error') assert.ok(f.code < 0);
      const d = decodeRequest(h, payload);
      if (!d.ok) assert.ok(d.code < 0);
    }),
    { numRuns: 400 },
  );
});

test('reply decoders never throw on random or truncated replies', () => {
  fc.assert(
    fc.property(fc.constantFrom(...cmds), bytes(4000), (cmd, b) => {
      const r = decodeReply(cmd, b);
      if (!r.ok) assert.ok(r.code < 0);
      decodeStateStream(b);
      const s = decodeStateRecord(b, 0);
      if (!s.ok) assert.ok(s.code < 0);
    }),
    { numRuns: 300 },
  );
  if (!haveVectors()) return;
  // every prefix of every recorded reply: an error result or a value, never an exception
  for (const v of loadVectors()) {
    for (const m of splitReplies(v.reply)) {
      const step = Math.max(1, Math.floor(m.bytes.length / 97));
      for (let n = 0; n < m.bytes.length; n += step) {
        const r = decodeReply(m.cmd || 29, m.bytes.subarray(0, n));
        if (n < HEADER_SIZE) assert.ok(!r.ok);
      }
    }
  }
});

test('string parsers never throw', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) => {
      const r = strToRes(s);
      if (!r.ok) assert.ok(r.code < 0);
      const st = stateToArgs(s);
      if (!st.ok) assert.ok(st.code < 0);
      strToLockspace(s);
      pathExport(s);
      pathImport(s);
    }),
    { numRuns: 500 },
  );
});

const name = fc.stringMatching(/^[A-Za-z0-9_.-]{1,48}$/);
const path = fc.stringMatching(/^\/[A-Za-z0-9_/. :-]{0,60}$/);

test('resToStr / strToRes round trip (escaped paths, lver or SH)', () => {
  fc.assert(
    fc.property(name, name, fc.array(fc.tuple(path, fc.nat({ max: 2 ** 40 })), { minLength: 1, maxLength: 4 }), fc.option(fc.nat({ max: 2 ** 40 })), (ls, rn, disks, lver) => {
      const res = makeResource(ls, rn, disks.map(([p, o]) => emptyDisk(p, o)), lver === null ? { flags: 0x4 } : { lver, flags: 0x1 });
      const s = resToStr(res);
      assert.ok(s.ok);
      if (!s.ok) return;
      const back = strToRes(s.value);
      assert.ok(back.ok, s.value);
      if (!back.ok) return;
      assert.deepEqual(encodeResource(back.value), encodeResource(res));
    }),
    { numRuns: 300 },
  );
});

test('state strings: argsToState refuses spaces, stateToArgs splits at spaces', () => {
  const a = makeResource('LS', 'R1', [emptyDisk('/a b', 0)]);
  const st = argsToState([a]);
  assert.ok(!st.ok && st.code === -Errno.EINVAL);
  const ok = stateToArgs('LS:R1:/shared/sanlock/leases:0:1 LS:R2:/shared/sanlock/leases:1048576:SH');
  assert.ok(ok.ok);
  if (ok.ok) {
    assert.equal(ok.value.length, 2);
    assert.equal(ok.value[1]!.flags, 0x4);
    assert.equal(ok.value[0]!.lver, 1);
    assert.equal(ok.value[0]!.flags, 0x1);
  }
  assert.equal(pathExport('/x/a b:c\\d'), '/x/a\\ b\\:c\\d');
  assert.equal(pathImport('/x/a\\ b\\:c'), '/x/a b:c');
  const r = strToRes('LS:R1');
  assert.ok(r.ok && r.value.numDisks === 0 && r.value.name === 'R1');
  const bad = strToRes('LS:R1:/p');
  assert.ok(!bad.ok && bad.code === -1);
});
