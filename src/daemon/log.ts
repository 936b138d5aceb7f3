// sanlock's daemon log: one line format for every destination (daemon.md §2.2),
// `YYYY-MM-DD HH:MM:SS <monotime> [<tid>]: <prefix><message>`, an in-memory ring of 1 MiB
// holding every message (log_dump), stderr for everything with -D, and the log file for
// messages at or above logfile_priority.
import { closeSync, openSync, writeSync } from 'node:fs';
import { monotime } from './clock.js';

export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_INFO = 6;
export const LOG_DEBUG = 7;

const LINE_MAX = 512;
const RING_MAX_BYTES = 1024 * 1024;
export const DEFAULT_LOGFILE = '/var/log/sanlock.log';

export interface LogOptions {
  toStderr: boolean;
  logfilePriority: number;
  logfileUseUtc: boolean;
  logfilePath?: string;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

export class DaemonLog {
  private ring: string[] = [];
  private ringBytes = 0;
  private fileFd = -1;
  private opts: LogOptions;

  constructor(opts: LogOptions) {
    this.opts = opts;
  }

  /** Opens the log file; a failure only disables file logging, as sanlock does. */
  openFile(): void {
    if (this.opts.logfilePriority < 0) return;
    try {
      this.fileFd = openSync(this.opts.logfilePath ?? DEFAULT_LOGFILE, 'a', 0o644);
    } catch {
      this.fileFd = -1;
    }
  }

  close(): void {
    if (this.fileFd >= 0) closeSync(this.fileFd);
    this.fileFd = -1;
  }

  private stamp(): string {
    const d = new Date();
    if (this.opts.logfileUseUtc) {
      return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    }
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** Formats and routes one message at syslog level `level`. */
  log(level: number, msg: string): void {
    let line = `${this.stamp()} ${monotime()} [${process.pid}]: ${msg}`;
    if (Buffer.byteLength(line) > LINE_MAX - 1) line = Buffer.from(line).subarray(0, LINE_MAX - 1).toString();
    this.ring.push(line);
    this.ringBytes += line.length + 1;
    while (this.ringBytes > RING_MAX_BYTES && this.ring.length > 1) {
      this.ringBytes -= (this.ring.shift() as string).length + 1;
    }
    if (this.opts.toStderr) process.stderr.write(`${line}\n`);
    if (this.fileFd >= 0 && level <= this.opts.logfilePriority) {
      try {
        writeSync(this.fileFd, `${line}\n`);
      } catch {
        // a full or broken log disk must never stop the daemon
      }
    }
  }

  error(msg: string): void {
    this.log(LOG_ERR, msg);
  }
  warn(msg: string): void {
    this.log(LOG_WARNING, msg);
  }
  info(msg: string): void {
    this.log(LOG_INFO, msg);
  }
  debug(msg: string): void {
    this.log(LOG_DEBUG, msg);
  }

  /** The ring as log_dump sends it: oldest first, lines joined by newlines, no final newline. */
  dump(): Buffer {
    return Buffer.from(this.ring.join('\n'));
  }
}
