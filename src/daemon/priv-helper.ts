// The root helper process, as sanlock's `sanlock-helper`: started before the daemon drops to
// -U/-G, it keeps root so that signals and killpath programs still reach clients owned by other
// users (qemu, vdsm, root tools) after the drop. Without it a daemon running as `sanlock`
// could not fence a root-owned lease holder (kill(2) would fail with EPERM).
//
// One-way pipe (the helper's stdin), one JSON object per line:
//   {"t":"kill","pid":N,"sig":S,"start":"<starttime>"}  signal a client
//   {"t":"run","path":P,"args":[...]}                    run a killpath program
// The helper exits when the pipe closes (daemon gone), and ignores terminal/termination
// signals so a ^C or SIGTERM aimed at the daemon's group cannot leave the daemon without it.
import assert from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DaemonLog } from './log.js';

/**
 * Start time (clock ticks since boot, field 22 of /proc/<pid>/stat) of a process, as text;
 * undefined when it cannot be read. Recorded at REGISTER so the helper, which only gets a pid,
 * can refuse to signal a different process that reused it.
 */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // comm (field 2) may hold spaces and parentheses: fields resume after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state), so field 22 is rest[19]
    return rest[19];
  } catch {
    return undefined;
  }
}

export type HelperMsg =
  | { t: 'kill'; pid: number; sig: number; start: string | undefined }
  | { t: 'run'; path: string; args: string[] };

/** Daemon side of the helper: a child process spawned while still root. */
export class PrivHelper {
  private alive = true;
  private closing = false;

  private constructor(private readonly child: ChildProcess, private readonly log: DaemonLog) {
    child.on('exit', (code, signal) => {
      this.alive = false;
      if (!this.closing) this.log.error(`helper exited ${code ?? signal}, signals now sent by the daemon itself`);
    });
    child.stdin?.on('error', () => {
      this.alive = false;
    });
  }

  /** Spawns the helper (must be called before the uid changes); undefined if it cannot start. */
  static start(log: DaemonLog): PrivHelper | undefined {
    const script = fileURLToPath(new URL('./priv-helper-main.js', import.meta.url));
    try {
      const child = spawn(process.execPath, [script], { stdio: ['pipe', 'ignore', 'inherit'] });
      if (child.pid === undefined) return undefined;
      child.unref();
      return new PrivHelper(child, log);
    } catch (err) {
      log.error(`cannot start helper: ${(err as Error).message}`);
      return undefined;
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.alive && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Queues a message; false when the helper is gone (the caller falls back to itself). */
  send(msg: HelperMsg): boolean {
    if (!this.running || !this.child.stdin) return false;
    this.child.stdin.write(`${JSON.stringify(msg)}\n`);
    return true;
  }

  /** Closing the pipe makes the helper exit. */
  close(): void {
    this.closing = true;
    this.child.stdin?.end();
  }
}

/** Parses one pipe line; throws on anything that is not a well-formed message. */
export function parseHelperMsg(line: string): HelperMsg {
  const m = JSON.parse(line) as Record<string, unknown>;
  if (m.t === 'kill') {
    assert(Number.isInteger(m.pid) && (m.pid as number) > 0, 'kill: bad pid');
    assert(Number.isInteger(m.sig) && (m.sig as number) >= 0 && (m.sig as number) < 65, 'kill: bad sig');
    assert(m.start === undefined || typeof m.start === 'string', 'kill: bad start');
    return { t: 'kill', pid: m.pid as number, sig: m.sig as number, start: m.start as string | undefined };
  }
  if (m.t === 'run') {
    assert(typeof m.path === 'string' && m.path.length > 0, 'run: bad path');
    assert(Array.isArray(m.args) && m.args.every((a) => typeof a === 'string'), 'run: bad args');
    return { t: 'run', path: m.path, args: m.args as string[] };
  }
  throw new Error(`unknown helper message ${String(m.t)}`);
}
