// sanlock's daemon log: one line format for every destination (daemon.md §2.2),
// `YYYY-MM-DD HH:MM:SS <monotime> [<tid>]: <prefix><message>`, an in-memory ring of 1 MiB
// holding every message (log_dump), stderr for everything with -D, and the log file for
// messages at or above logfile_priority.
import { closeSync, openSync, write, writeSync } from 'node:fs';
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

/**
 * Writes lines to an fd off the event loop (stderr to a pipe is a blocking write in Node), with
 * sanlock's bounded queue: beyond 4096 pending entries lines are dropped and counted.
 */
class AsyncLineWriter {
  private queue: string[] = [];
  private writing = false;
  private dropped = 0;
  static readonly MAX_QUEUE = 4096;

  constructor(private readonly fd: number) {}

  push(line: string): void {
    if (this.queue.length >= AsyncLineWriter.MAX_QUEUE) {
      this.dropped++;
      return;
    }
    this.queue.push(line);
    this.kick();
  }

  private kick(): void {
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    const data = Buffer.from(this.queue.join(''));
    this.queue = [];
    write(this.fd, data, () => {
      // a failed write (closed pipe, full disk) is dropped: logging must never stop the daemon
      this.writing = false;
      if (this.dropped > 0) {
        this.queue.push(`dropped ${this.dropped} entries\n`);
        this.dropped = 0;
      }
      this.kick();
    });
  }

  /** Writes whatever is still queued, synchronously (at exit). */
  flush(): void {
    if (this.queue.length === 0) return;
    try {
      writeSync(this.fd, this.queue.join(''));
    } catch {
      // nothing more to do at exit
    }
    this.queue = [];
  }
}

export class DaemonLog {
  private ring: string[] = [];
  private ringBytes = 0;
  private fileFd = -1;
  private fileWriter: AsyncLineWriter | undefined;
  private readonly stderrWriter = new AsyncLineWriter(2);
  private opts: LogOptions;

  constructor(opts: LogOptions) {
    this.opts = opts;
  }

  /** Opens the log file; a failure only disables file logging, as sanlock does. */
  openFile(): void {
    if (this.opts.logfilePriority < 0) return;
    try {
      this.fileFd = openSync(this.opts.logfilePath ?? DEFAULT_LOGFILE, 'a', 0o644);
      this.fileWriter = new AsyncLineWriter(this.fileFd);
    } catch {
      this.fileFd = -1;
    }
  }

  close(): void {
    this.stderrWriter.flush();
    this.fileWriter?.flush();
    if (this.fileFd >= 0) closeSync(this.fileFd);
    this.fileFd = -1;
    this.fileWriter = undefined;
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
    if (this.opts.toStderr) this.stderrWriter.push(`${line}\n`);
    if (this.fileWriter && level <= this.opts.logfilePriority) this.fileWriter.push(`${line}\n`);
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
