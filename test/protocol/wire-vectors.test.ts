// Every recorded exchange with the real sanlock 3.8.5 daemon (vectors/wire/): our daemon-side
// framing splits the request stream exactly as the daemon did, our decoders give the same
// field values as the recording's decode, our encoders rebuild the request bytes, and our reply
// decoders/encoders reproduce every reply byte for byte.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cmd, type DecodedRequest, type FrameResult, RequestFramer, encodeGetHostsReply, encodeGetLockspacesReply, encodeGetLvbReply, encodeInquireReply, encodeLogDumpReply, encodeReadLockspaceReply, encodeReadResourceOwnersReply, encodeReadResourceReply, encodeRentryReply, encodeShutdownWaitDone, encodeStateRecord, encodeStdReply, encodeStreamHeader, encodeVersionReply, COMMANDS } from '../../src/protocol/commands.js';
import { encodeHeader, decodeHeader, type SmHeader } from '../../src/protocol/header.js';
import { decodeReply, type Reply } from '../../src/protocol/replies.js';
import {
  decodeEventCb,
  encodeDisk,
  encodeEventCb,
  encodeHostEvent,
  encodeKillpath,
  encodeLockspace,
  encodeOptions,
  encodeRentry,
  encodeResource,
  encodeRindex,
} from '../../src/protocol/structs.js';
import {
  diskJson,
  haveVectors,
  hostJson,
  loadVectors,
  lockspaceJson,
  rentryJson,
  resourceJson,
  rindexJson,
  splitReplies,
  vecHeader,
} from './vectors.js';

const skip = haveVectors() ? false : 'vectors/wire not available';

/** Frames whose daemon handling is not a plain request: silently dropped, or refused early. */
const SPECIAL: Record<string, Array<{ index: number; kind: 'drop' | 'error'; code?: number }>> = {
  '59': [{ index: 0, kind: 'drop' }],
  '60': [{ index: 0, kind: 'drop' }],
  '61': [{ index: 0, kind: 'drop' }],
  '65': [{ index: 1, kind: 'error', code: -34 }],
  '67': [{ index: 1, kind: 'error', code: -7 }],
};

function payloadJson(r: DecodedRequest): Record<string, unknown> | undefined {
  switch (r.info.payload) {
    case 'none':
      return undefined;
    case 'L':
      return { lockspace: lockspaceJson(r.lockspace!) };
    case 'LE':
      return {
        lockspace: lockspaceJson(r.lockspace!),
        host_event: { host_id: r.hostEvent!.hostId, generation: r.hostEvent!.generation, event: r.hostEvent!.event, data: r.hostEvent!.data },
      };
    case 'D':
      return { disk: diskJson(r.disk!) };
    case 'R':
      return { resource: resourceJson(r.resources![0]!, false) };
    case 'RD':
      return { resource: resourceJson(r.resources![0]!, true) };
    case 'SET_LVB':
      return { resource: resourceJson(r.resources![0]!, false), lvb_hex: r.lvb!.toString('hex') };
    case 'ACQUIRE':
      return {
        resources: r.resources!.map((x) => resourceJson(x, true)),
        options: { owner_name: r.options!.ownerName, flags: `0x${r.options!.flags.toString(16)}`, len: r.options!.len },
      };
    case 'RELEASE':
      return { resources: r.resources!.map((x) => resourceJson(x, false)) };
    case 'KILLPATH':
      return { killpath: r.killpath!.path, killargs: r.killpath!.args };
    case 'X':
      return { rindex: rindexJson(r.rindex!) };
    case 'XN':
      return { rindex: rindexJson(r.rindex!), rentry: rentryJson(r.rentry!) };
  }
}

/** The request rebuilt from its decoded form with our encoders (header as received). */
function reencode(r: DecodedRequest): Buffer {
  const parts: Buffer[] = [encodeHeader(r.header)];
  switch (r.info.payload) {
    case 'none':
      break;
    case 'L':
      parts.push(encodeLockspace(r.lockspace!));
      break;
    case 'LE':
      parts.push(encodeLockspace(r.lockspace!), encodeHostEvent(r.hostEvent!));
      break;
    case 'D':
      parts.push(encodeDisk(r.disk!));
      break;
    case 'R':
    case 'RELEASE':
      for (const x of r.resources!) parts.push(encodeResource(x, false));
      break;
    case 'RD':
      parts.push(encodeResource(r.resources![0]!, true));
      break;
    case 'ACQUIRE':
      for (const x of r.resources!) parts.push(encodeResource(x, true));
      parts.push(encodeOptions(r.options!));
      break;
    case 'SET_LVB':
      parts.push(encodeResource(r.resources![0]!, false), r.lvb!);
      break;
    case 'KILLPATH':
      parts.push(encodeKillpath(r.killpath!));
      break;
    case 'X':
      parts.push(encodeRindex(r.rindex!));
      break;
    case 'XN':
      parts.push(encodeRindex(r.rindex!), encodeRentry(r.rentry!));
      break;
  }
  return Buffer.concat(parts);
}

interface Framed {
  frames: FrameResult[];
  /** the bytes each frame consumed (errors: up to the end of what was buffered) */
  bytes: Buffer[];
}

function frameAll(request: Buffer): Framed {
  // One byte at a time: framing must not depend on how the stream was chunked.
  const framer = new RequestFramer();
  const frames: FrameResult[] = [];
  for (let i = 0; i < request.length; i++) frames.push(...framer.push(request.subarray(i, i + 1)));
  const whole = new RequestFramer().push(request);
  // After an early error the daemon drains only what has already arrived, so chunking matters
  // there; everywhere else the frames must not depend on it.
  if (!whole.some((f) => f.kind === 'error')) {
    assert.deepEqual(
      whole.map((f) => f.kind),
      frames.map((f) => f.kind),
    );
  }
  const bytes: Buffer[] = [];
  let pos = 0;
  for (const f of whole) {
    if (f.kind === 'need') continue;
    bytes.push(request.subarray(pos, pos + f.size));
    pos += f.size;
  }
  return { frames: whole, bytes };
}

describe('wire vectors: requests', { skip }, () => {
  for (const v of haveVectors() ? loadVectors() : []) {
    test(`${v.file}: framing, decode and re-encode`, () => {
      const expected = v.decoded_request.filter((m) => m.header);
      const { frames, bytes } = frameAll(v.request);
      assert.equal(frames.length, expected.length, 'frame count');
      const special = SPECIAL[v.file.slice(0, 2)] ?? [];
      frames.forEach((f, i) => {
        assert.notEqual(f.kind, 'need');
        const want = vecHeader(expected[i]!.header);
        const sp = special.find((s) => s.index === i);
        if (sp) {
          assert.equal(f.kind, sp.kind, `frame ${i} kind`);
          if (f.kind === 'error') assert.equal(f.code, sp.code);
          if (f.kind === 'drop' || f.kind === 'error') assert.deepEqual(f.header, want);
          return;
        }
        assert.equal(f.kind, 'request', `frame ${i}: ${JSON.stringify(f)}`);
        if (f.kind !== 'request') return;
        assert.deepEqual(f.request.header, want);
        const pj = payloadJson(f.request);
        if (expected[i]!.payload || pj) assert.deepEqual(pj, expected[i]!.payload, `frame ${i} payload`);
        assert.ok(reencode(f.request).equals(bytes[i]!), `frame ${i} re-encodes to the recorded bytes`);
      });
    });
  }
});

function encodeReplyLike(req: SmHeader, rep: Reply, cmd: number): Buffer {
  const info = COMMANDS.get(cmd)!;
  switch (info.reply) {
    case 'std':
      return encodeStdReply(req, rep.result);
    case 'version':
      return encodeVersionReply(rep.header.data2 >>> 0);
    case 'inquire':
      return encodeInquireReply(req, rep.result, rep.count ?? 0, rep.state ?? null);
    case 'lockspaces':
      return encodeGetLockspacesReply(req, rep.result, rep.lockspaces ?? []);
    case 'hosts':
      return encodeGetHostsReply(req, rep.result, rep.hosts ?? []);
    case 'read_lockspace':
      return encodeReadLockspaceReply(req, rep.result, rep.ioTimeout ?? 0, rep.lockspace!);
    case 'read_resource':
      return encodeReadResourceReply(req, rep.result, rep.resource!);
    case 'owners':
      return encodeReadResourceOwnersReply(req, rep.result, rep.resource!, rep.hosts ?? []);
    case 'lvb':
      return encodeGetLvbReply(req, rep.result, rep.lvb!);
    case 'rentry':
      return encodeRentryReply(req, rep.result, rep.rentry!);
    case 'log_dump':
      return encodeLogDumpReply(req, rep.log!);
    case 'stream': {
      const parts = [encodeStreamHeader(req, rep.result, rep.header.data2)];
      for (const r of rep.records ?? []) {
        const bin = r.lockspace ? encodeLockspace(r.lockspace) : r.resource ? encodeResource(r.resource, true) : undefined;
        const { strLen: _s, ...st } = r.state;
        parts.push(encodeStateRecord(st, r.str, bin));
      }
      return Buffer.concat(parts);
    }
    case 'shutdown_wait':
      // a refused SHUTDOWN_WAIT is a std reply; success is the fresh cmd-0 header
      return rep.header.cmd === 0 ? encodeShutdownWaitDone() : encodeStdReply(req, rep.result);
    case 'none':
      return Buffer.alloc(0);
  }
}

function replyPayloadJson(rep: Reply, cmd: number): Record<string, unknown> | undefined {
  const info = COMMANDS.get(cmd)!;
  switch (info.reply) {
    case 'inquire':
      return rep.state === null ? undefined : { state_string: `${rep.state}\u0000` };
    case 'lockspaces':
      return { lockspaces: (rep.lockspaces ?? []).map(lockspaceJson) };
    case 'hosts':
      return rep.hosts?.length ? { hosts: rep.hosts.map(hostJson) } : undefined;
    case 'read_resource':
      return { resource: resourceJson(rep.resource!, false) };
    case 'owners':
      return { resource: resourceJson(rep.resource!, false), hosts: (rep.hosts ?? []).map(hostJson) };
    case 'lvb':
      return { lvb_hex: rep.lvb!.toString('hex') };
    case 'rentry':
      return { rentry: rentryJson(rep.rentry!) };
    default:
      return undefined;
  }
}

describe('wire vectors: replies', { skip }, () => {
  for (const v of haveVectors() ? loadVectors() : []) {
    test(`${v.file}: decode and re-encode every reply`, () => {
      const reqs = frameAll(v.request).frames.flatMap((f) =>
        f.kind === 'request' ? [f.request.header] : f.kind === 'error' ? [f.header] : [],
      );
      const used = new Set<number>();
      const msgs = splitReplies(v.reply);
      assert.equal(msgs.length, v.decoded_reply.length, 'reply message count');
      msgs.forEach((m, i) => {
        const exp = v.decoded_reply[i]!;
        if (exp.event_cb) {
          const cb = decodeEventCb(m.bytes);
          assert.ok(cb.ok);
          if (!cb.ok) return;
          assert.deepEqual(cb.value.header, vecHeader(exp.event_cb.header));
          assert.deepEqual(
            { host_id: cb.value.he.hostId, generation: cb.value.he.generation, event: cb.value.he.event, data: cb.value.he.data },
            exp.event_cb.host_event,
          );
          assert.equal(cb.value.fromHostId, exp.event_cb.from_host_id);
          assert.equal(cb.value.fromGeneration, exp.event_cb.from_generation);
          assert.ok(encodeEventCb(cb.value.he, cb.value.fromHostId, cb.value.fromGeneration).equals(m.bytes));
          return;
        }
        const cmd = m.cmd === 0 ? Cmd.SHUTDOWN_WAIT : m.cmd;
        const reqIdx = reqs.findIndex((h, k) => !used.has(k) && h.cmd === cmd);
        assert.ok(reqIdx >= 0, `a request for reply ${i} (cmd ${cmd})`);
        used.add(reqIdx);
        const dec = decodeReply(cmd, m.bytes);
        assert.ok(dec.ok, `reply ${i} decodes`);
        if (!dec.ok) return;
        assert.deepEqual(dec.value.header, vecHeader(exp.header));
        const pj = replyPayloadJson(dec.value, cmd);
        if (pj) {
          for (const [k, val] of Object.entries(pj)) assert.deepEqual(val, exp.payload?.[k], `reply ${i} payload.${k}`);
        }
        if (exp.payload?.states) {
          // biome-ignore lint/suspicious/noExplicitAny: free-form JSON decode written by the recorder
          const states = exp.payload.states as Array<Record<string, any>>;
          assert.equal(dec.value.records!.length, states.length);
          dec.value.records!.forEach((r, k) => {
            const s = states[k]!;
            assert.deepEqual(
              { type: r.state.type, flags: r.state.flags, data32: r.state.data32, data64: r.state.data64, name: r.state.name, str_len: r.state.strLen, str: r.str },
              { type: s.type, flags: s.flags, data32: s.data32, data64: s.data64, name: s.name, str_len: s.str_len, str: s.str },
            );
            if (s.lockspace) assert.deepEqual(lockspaceJson(r.lockspace!), s.lockspace);
            if (s.resource) assert.deepEqual(resourceJson(r.resource!, true), s.resource);
          });
        }
        if (exp.payload?.log_text_len !== undefined) {
          assert.equal(dec.value.log!.length, exp.payload.log_text_len);
          assert.ok(dec.value.log!.toString('latin1').startsWith(exp.payload.log_text_head));
        }
        if (exp.payload?.lockspace) {
          assert.deepEqual(lockspaceJson(dec.value.lockspace!), exp.payload.lockspace);
          assert.equal(dec.value.ioTimeout, vecHeader(exp.header).data2);
        }
        // Normalisation: the daemon leaves sanlk_lockspace's 4 padding bytes (offset 60)
        // uninitialised in GET_LOCKSPACES replies (seen as 3 in 85); we send zeros there.
        const recorded = Buffer.from(m.bytes);
        if (cmd === Cmd.GET_LOCKSPACES) for (let k = 0; k < (dec.value.count ?? 0); k++) recorded.fill(0, 32 + k * 1104 + 60, 32 + k * 1104 + 64);
        assert.ok(encodeReplyLike(reqs[reqIdx]!, dec.value, cmd).equals(recorded), `reply ${i} re-encodes byte for byte`);
      });
    });
  }
});

test('decodeHeader reads signed data/data2 and unsigned others', () => {
  const b = encodeHeader({ magic: 0x04282010, version: 1, cmd: 7, cmdFlags: 0x20000, length: 1256, seq: 77, data: -243, data2: -1 });
  const h = decodeHeader(b);
  assert.ok(h.ok);
  if (h.ok) assert.deepEqual(h.value, { magic: 0x04282010, version: 1, cmd: 7, cmdFlags: 0x20000, length: 1256, seq: 77, data: -243, data2: -1 });
});
