// Shared helpers for the `direct` CLI tests: run runDirect in-process capturing stdout, parse the
// golden .dump.txt transcripts, and run the real sanlock binary.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { runDirect } from '../../src/cli/direct.js';
import { VECTORS_DIR } from '../helpers/paths.js';

export const VECTORS = VECTORS_DIR;

export interface Transcript {
  argv: string[];
  output: string;
  status: number;
}

/** `$ sanlock direct ...` blocks of a .dump.txt: command words, output, exit status. */
export function parseTranscripts(text: string): Transcript[] {
  const out: Transcript[] = [];
  const re = /^\$ sanlock (.*)\n([\s\S]*?)^\(exit status (\d+)\)$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ argv: m[1]!.split(' '), output: m[2]!, status: Number(m[3]) });
  }
  return out;
}

export function loadVector(name: string): Buffer {
  return gunzipSync(readFileSync(`${VECTORS}/${name}.img.gz`));
}

/** runDirect with stdout captured (byte string → latin1 buffer → text). */
export async function direct(args: string[]): Promise<{ stdout: string; status: number }> {
  let out = '';
  const status = await runDirect(args, { write: (s) => { out += s; } });
  return { stdout: Buffer.from(out, 'latin1').toString('utf8'), status };
}

/** `/usr/sbin/sanlock <args>` → stdout and exit status. */
export function realSanlock(args: string[], cwd?: string): { stdout: string; status: number } {
  try {
    return { stdout: execFileSync('/usr/sbin/sanlock', args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'ignore'] }), status: 0 };
  } catch (e) {
    const err = e as { stdout?: string; status?: number };
    return { stdout: err.stdout ?? '', status: err.status ?? 1 };
  }
}
