// Entry point of the root helper process (see priv-helper.ts). Runs as root for the daemon's
// life; reads messages from stdin until the daemon closes the pipe.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ProcessHandle } from './native.js';
import { parseHelperMsg, procStartTime } from './priv-helper.js';

function killClient(pid: number, sig: number, start: string | undefined): void {
  // pidfd first, then the start-time check: once the pidfd is open the process it names cannot
  // change, so a match means the signal reaches the process that registered
  const ph = ProcessHandle.open(pid);
  if (typeof ph === 'number') return;
  try {
    if (start !== undefined && procStartTime(pid) !== start) return;
    ph.signal(sig);
  } finally {
    ph.close();
  }
}

function runPath(path: string, args: string[]): void {
  try {
    const child = spawn(path, args, { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // a missing program is the client's configuration error; the daemon escalates to signals
  }
}

for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => undefined);
// sanlock's helper drops the supplementary groups it inherited
try {
  if (process.getuid?.() === 0) process.setgroups?.([]);
} catch {
  // not fatal: the helper only needs its uid
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  try {
    const m = parseHelperMsg(line);
    if (m.t === 'kill') killClient(m.pid, m.sig, m.start);
    else runPath(m.path, m.args);
  } catch (err) {
    process.stderr.write(`sanlock-ts helper: ${(err as Error).message}\n`);
  }
});
rl.on('close', () => process.exit(0));
