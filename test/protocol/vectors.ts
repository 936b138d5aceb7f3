// Loading the recorded sanlock 3.8.5 socket exchanges (vectors/wire/) and turning our decoded
// structs into the field-by-field form those files use, so the two can be compared directly.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { HEADER_SIZE, type SmHeader, decodeHeader } from '../../src/protocol/header.js';
import { replyPayloadSize } from '../../src/protocol/replies.js';
import type { SanlkDisk, SanlkHost, SanlkLockspace, SanlkResource, SanlkRentry, SanlkRindex } from '../../src/protocol/structs.js';
import { WIRE_VECTORS_DIR } from '../helpers/paths.js';

export const WIRE_DIR = WIRE_VECTORS_DIR;

export interface WireVector {
  file: string;
  caption: string;
  client: unknown;
  result: unknown;
  request: Buffer;
  reply: Buffer;
  // biome-ignore lint/suspicious/noExplicitAny: free-form JSON decode written by the recorder
  decoded_request: Array<Record<string, any>>;
  // biome-ignore lint/suspicious/noExplicitAny: free-form JSON decode written by the recorder
  decoded_reply: Array<Record<string, any>>;
  socket_events: string[];
}

export function haveVectors(): boolean {
  return existsSync(join(WIRE_DIR, 'index.json'));
}

export function loadVectors(): WireVector[] {
  return readdirSync(WIRE_DIR)
    .filter((f) => /^\d\d-.*\.json$/.test(f))
    .sort()
    .map((file) => {
      const d = JSON.parse(readFileSync(join(WIRE_DIR, file), 'utf8'));
      return {
        file,
        caption: d.caption,
        client: d.client,
        result: d.result,
        request: Buffer.from(d.request_hex, 'hex'),
        reply: Buffer.from(d.reply_hex, 'hex'),
        decoded_request: d.decoded_request,
        decoded_reply: d.decoded_reply,
        socket_events: d.socket_events,
      };
    });
}

export function loadVector(prefix: string): WireVector {
  const v = loadVectors().find((x) => x.file.startsWith(prefix));
  if (!v) throw new Error(`no vector ${prefix}`);
  return v;
}

const num = (v: unknown): number => (typeof v === 'string' ? (v.startsWith('0x') ? Number.parseInt(v, 16) : Number.parseInt(v, 10)) : Number(v));

/** A vector header as numbers ("7 ACQUIRE" → 7, "0x110" → 0x110). */
export function vecHeader(h: Record<string, unknown>): SmHeader {
  return {
    magic: num(h.magic),
    version: num(h.version),
    cmd: num(String(h.cmd).split(' ')[0]),
    cmdFlags: num(h.cmd_flags),
    length: num(h.length),
    seq: num(h.seq),
    data: num(h.data),
    data2: num(h.data2),
  };
}

const hx = (v: number) => `0x${(v >>> 0).toString(16)}`;

export function diskJson(d: SanlkDisk) {
  return { path: d.path, offset: d.offset, pad1: d.pad1, pad2: d.pad2 };
}

export function lockspaceJson(l: SanlkLockspace) {
  return { name: l.name, host_id: l.hostId, flags: hx(l.flags), host_id_disk: diskJson(l.hostIdDisk) };
}

export function resourceJson(r: SanlkResource, withDisks: boolean) {
  const base: Record<string, unknown> = {
    lockspace_name: r.lockspaceName,
    name: r.name,
    lver: r.lver,
    data64: r.data64,
    data32: r.data32,
    unused: r.unused,
    flags: hx(r.flags),
    num_disks: r.numDisks,
  };
  if (withDisks) base.disks = r.disks.map(diskJson);
  return base;
}

export function hostJson(h: SanlkHost) {
  return { host_id: h.hostId, generation: h.generation, timestamp: h.timestamp, io_timeout: h.ioTimeout, flags: hx(h.flags) };
}

export function rindexJson(x: SanlkRindex) {
  return { flags: hx(x.flags), max_resources: x.maxResources, unused: x.unused, lockspace_name: x.lockspaceName, disk: diskJson(x.disk) };
}

export function rentryJson(e: SanlkRentry) {
  return { name: e.name, offset: e.offset, flags: hx(e.flags), unused: e.unused };
}

/**
 * Splits a vector's reply stream into messages, given the commands sent (in order, only those
 * that get a reply): event callbacks (cmd 1, 80 bytes) and the SHUTDOWN_WAIT cmd-0 header are
 * recognised by their header; streams take the rest.
 */
export function splitReplies(reply: Buffer): Array<{ cmd: number; bytes: Buffer }> {
  const out: Array<{ cmd: number; bytes: Buffer }> = [];
  let pos = 0;
  while (pos < reply.length) {
    const h = decodeHeader(reply, pos);
    if (!h.ok) throw new Error(`bad reply header at ${pos}`);
    const cmd = h.value.cmd;
    let size: number;
    if (cmd === 1 && h.value.length === 80) size = 80;
    else if (cmd === 0) size = HEADER_SIZE;
    else {
      const p = replyPayloadSize(cmd, h.value);
      size = p === 'eof' ? reply.length - pos : HEADER_SIZE + (p ?? 0);
    }
    out.push({ cmd, bytes: reply.subarray(pos, pos + size) });
    pos += size;
  }
  return out;
}
