// A scripted stand-in for the sanlock daemon: it frames what clients send with our daemon-side
// framer, records every byte, and answers each request with the next recorded reply of the
// same command (event callbacks that follow a reply are pushed right after it). Used to replay
// vectors/wire/ exchanges against our client library and CLI.
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS, Cmd, RequestFramer } from '../../src/protocol/commands.js';

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
