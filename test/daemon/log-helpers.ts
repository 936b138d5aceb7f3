// Test helpers for the logging tests: a unix datagram receiver (python3: Node cannot bind one)
// standing in for /dev/log or systemd's NOTIFY_SOCKET.
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './our-daemon.js';

export const PY3 = '/usr/bin/python3';

const RECEIVER = `
import socket, sys, os, json
path = sys.argv[1]
# never unlink first: an existing socket (a real /dev/log, another test's) must not be taken over
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
print("BOUND", flush=True)
try:
    while True:
        d = s.recv(65536)
        print(json.dumps(d.decode("utf-8", "replace")), flush=True)
finally:
    os.unlink(path)
`;

export interface DgramReceiver {
  proc: ChildProcess;
  messages(): string[];
  stop(): Promise<void>;
}

/** Binds a datagram socket at `path` (removed again by stop()) and collects what arrives. */
export async function startDgramReceiver(path: string): Promise<DgramReceiver> {
  const proc = spawn(PY3, ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await waitFor(() => out.startsWith('BOUND') || proc.exitCode !== null, 10_000, 'datagram receiver');
  if (!out.startsWith('BOUND')) throw new Error(`receiver failed: ${err}`);
  return {
    proc,
    messages: () =>
      out
        .split('\n')
        .slice(1)
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as string),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGINT'); // KeyboardInterrupt: python runs its finally and removes the socket file
      await done;
    },
  };
}
