// A scripted stand-in for the sanlock daemon: it frames what clients send with our daemon-side
// framer, records every byte, and answers each request with the next recorded reply of the
// same command (event callbacks that follow a reply are pushed right after it). Used to replay
// vectors/wire/ exchanges against our client library and CLI.
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  COMMANDS,
  Cmd,
  RequestFramer,
  encodeGetHostsReply,
  encodeGetLockspacesReply,
  encodeGetLvbReply,
  encodeInquireReply,
  encodeLogDumpReply,
  encodeReadLockspaceReply,
  encodeReadResourceOwnersReply,
  encodeReadResourceReply,
  encodeRentryReply,
  encodeShutdownWaitDone,
  encodeStdReply,
  encodeStreamHeader,
  encodeVersionReply,
} from '../../src/protocol/commands.js';

export interface FakeDaemon {
  runDir: string;
  /** every byte received, in arrival order, over all connections */
  received(): Buffer;
  /** replies not sent yet */
  pending(): number;
  close(): Promise<void>;
}

export async function startFakeDaemon(replies: Array<{ cmd: number; bytes: Buffer }>): Promise<FakeDaemon> {
  const runDir = mkdtempSync(join(tmpdir(), 'slk-fake-'));
  const queue = [...replies];
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const framer = new RequestFramer();
    sock.on('data', (d: Buffer) => {
      chunks.push(Buffer.from(d));
      for (const f of framer.push(d)) {
        if (f.kind === 'need' || f.kind === 'drop') continue;
        const cmd = f.kind === 'request' ? f.request.header.cmd : f.header.cmd;
        const info = COMMANDS.get(cmd)!;
        if (info.reply === 'none') {
          if (cmd === Cmd.SHUTDOWN) sock.end();
          continue;
        }
        const head = queue[0];
        const replyCmd = head && head.cmd === 0 ? Cmd.SHUTDOWN_WAIT : head?.cmd;
        if (!head || replyCmd !== cmd) continue; // e.g. VERSION after RESTRICT ALL: no answer
        queue.shift();
        sock.write(head.bytes);
        while (queue[0] && queue[0].cmd === 1 && queue[0].bytes.length === 80) sock.write(queue.shift()!.bytes);
        if (info.closesAfterReply) sock.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(join(runDir, 'sanlock.sock'), resolve));
  return {
    runDir,
    received: () => Buffer.concat(chunks),
    pending: () => queue.length,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/**
 * A daemon that accepts everything: each request gets a well-formed success reply of its
 * kind (empty lists, no leases, an empty status stream). Records all bytes received.
 */
export async function startAcceptingDaemon(): Promise<FakeDaemon> {
  const runDir = mkdtempSync(join(tmpdir(), 'slk-accept-'));
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const framer = new RequestFramer();
    sock.on('data', (d: Buffer) => {
      chunks.push(Buffer.from(d));
      for (const f of framer.push(d)) {
        if (f.kind === 'need' || f.kind === 'drop') continue;
        if (f.kind === 'error') {
          sock.write(encodeStdReply(f.header, f.code));
          continue;
        }
        const r = f.request;
        const h = r.header;
        const res = r.resources?.[0];
        switch (r.info.reply) {
          case 'none':
            if (h.cmd === Cmd.SHUTDOWN) sock.end();
            continue;
          case 'std':
            sock.write(encodeStdReply(h, 0));
            break;
          case 'inquire':
            sock.write(encodeInquireReply(h, 0, 0, null));
            break;
          case 'lockspaces':
            sock.write(encodeGetLockspacesReply(h, 0, []));
            break;
          case 'hosts':
            sock.write(encodeGetHostsReply(h, 0, []));
            break;
          case 'read_lockspace':
            sock.write(encodeReadLockspaceReply(h, 0, 10, r.lockspace!));
            break;
          case 'read_resource':
            sock.write(encodeReadResourceReply(h, 0, res!));
            break;
          case 'owners':
            sock.write(encodeReadResourceOwnersReply(h, 0, res!, []));
            break;
          case 'lvb':
            sock.write(encodeGetLvbReply(h, 0, Buffer.alloc(0)));
            break;
          case 'rentry':
            sock.write(encodeRentryReply(h, 0, r.rentry!));
            break;
          case 'stream':
            sock.write(encodeStreamHeader(h, 0));
            break;
          case 'log_dump':
            sock.write(encodeLogDumpReply(h, Buffer.from('log line')));
            break;
          case 'version':
            sock.write(encodeVersionReply());
            break;
          case 'shutdown_wait':
            sock.write(encodeShutdownWaitDone());
            break;
        }
        if (r.info.closesAfterReply) sock.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(join(runDir, 'sanlock.sock'), resolve));
  return {
    runDir,
    received: () => Buffer.concat(chunks),
    pending: () => 0,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}
