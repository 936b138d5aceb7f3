// Shared setup for the hardening tests: a scratch dir with an ids file and a lease file
// initialised by the real sanlock CLI, and our daemon started on it.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../helpers/real-sanlock.js';
import { type OurDaemon, SANLOCK_BIN, startOurDaemon } from '../daemon/our-daemon.js';

export const MiB = 1024 * 1024;

export function direct(args: string[]): string {
  return execFileSync(SANLOCK_BIN, ['direct', ...args], { encoding: 'utf8' });
}

export interface Setup {
  dir: string;
  d: OurDaemon;
  file(name: string): string;
  snapshot(path: string): Buffer;
  cleanup(): Promise<void>;
}

/** Creates `files` (name → size in MiB), runs `init` on them, then starts our daemon. */
export async function setup(prefix: string, files: Record<string, number>, init: (f: (n: string) => string) => void): Promise<Setup> {
  const dir = scratchDir(prefix);
  const file = (n: string): string => join(dir, n);
  for (const [n, mb] of Object.entries(files)) execFileSync('truncate', ['-s', `${mb}M`, file(n)]);
  init(file);
  const d = await startOurDaemon(join(dir, 'run'), ['-e', `host-${prefix}`]);
  return {
    dir,
    d,
    file,
    snapshot: (p) => readFileSync(p),
    async cleanup() {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Python snippet result: prints "OK" or "ERR <errno>"; returns that string. */
export function pyCode(d: OurDaemon, body: string, timeoutMs = 30_000): string {
  const r = d.py(`try:\n${body.split('\n').map((l) => '    ' + l).join('\n')}\n    print("OK")\nexcept sanlock.SanlockException as e:\n    print("ERR", e.errno)\nexcept Exception as e:\n    print("PYERR", type(e).__name__, e)\n`, timeoutMs);
  const out = r.stdout.trim().split('\n').pop() ?? '';
  if (out === '') throw new Error(`python failed: ${r.stderr}`);
  return out;
}
