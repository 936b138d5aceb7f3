// sanlock's daemon log: one line format for every destination (daemon.md §2.2),
// `YYYY-MM-DD HH:MM:SS <monotime> [<tid>]: <prefix><message>`, an in-memory ring of 1 MiB
// holding every message (log_dump), stderr for everything with -D, the log file for messages at
// or above logfile_priority (-L) and syslog for those at or above syslog_priority (-S).
// sanlock-ts extensions: the log file path is configurable and is reopened on SIGHUP, and the
// ring can also be kept on disk (debug_log_path), rotated at a size bound.
import assert from 'node:assert';
import { closeSync, existsSync, fdatasync, fstatSync, openSync, renameSync, write, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { monotime } from './clock.js';
import type { DaemonConfig } from './config.js';
import { LineRing } from './log-ring.js';
import { syslogClose, syslogOpen, syslogWrite } from './native.js';

export const LOG_ERR = 3;
export const LOG_WARNING = 4;
export const LOG_INFO = 6;
export const LOG_DEBUG = 7;

const LINE_MAX = 512;
const RING_MAX_BYTES = 1024 * 1024;
export const DEFAULT_LOGFILE = '/var/log/sanlock.log';
/** syslog ident: sanlock's, so existing syslog filters and greps keep matching. */
export const SYSLOG_IDENT = 'sanlock';

export interface DebugLogOptions {
  path: string;
  /** a file is rotated before it would grow beyond this */
  maxBytes: number;
  /** rotated files kept: <path>.1 (newest) … <path>.<files> */
  files: number;
}

export interface LogOptions {
  toStderr: boolean;
  logfilePriority: number;
  logfileUseUtc: boolean;
  logfilePath?: string;
  /** -S; undefined or -1 = no syslog */
  syslogPriority?: number;
  debugLog?: DebugLogOptions;
}

/**
 * The log file: an explicit path wins; otherwise sanlock's fixed /var/log/sanlock.log when running
 * as root, and `<run dir>/sanlock.log` for anyone else (who cannot write /var/log, and whose run
 * dir is already theirs).
 */
export function resolveLogfilePath(configured: string | undefined, runDir: string, euid: number | undefined): string {
  if (configured !== undefined && configured.length > 0) return configured;
  return euid === 0 ? DEFAULT_LOGFILE : join(runDir, 'sanlock.log');
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} (${e.message})` : String(err);
}

/**
 * Opens `path` for appending, as the daemon will: the start-up check that an unwritable log path
 * stops the daemon before it creates anything. Returns an error sentence naming the path, or
 * undefined when the file can be written.
 */
export function checkWritable(path: string, what: string): string | undefined {
  try {
    closeSync(openSync(path, 'a', 0o644));
    return undefined;
  } catch (err) {
    return `cannot open ${what} ${path}: ${errText(err)}`;
  }
}

/**
 * Writes lines to an fd off the event loop (stderr to a pipe is a blocking write in Node), with
 * sanlock's bounded queue: beyond 4096 pending entries lines are dropped and counted.
 */
class AsyncLineWriter {
  private queue: string[] = [];
  private writing = false;
  /** a batch write is due within BATCH_MS */
  private scheduled = false;
  private fdClosed = false;
  private dropped = 0;
  private closeWhenIdle = false;
  private closedResolve: (() => void) | undefined;
  readonly closed: Promise<void> = new Promise((r) => {
    this.closedResolve = r;
  });
  static readonly MAX_QUEUE = 4096;
  static readonly BATCH_MS = 5;

  constructor(private fd: number) {}

  push(line: string): void {
    if (this.queue.length >= AsyncLineWriter.MAX_QUEUE) {
      this.dropped++;
      return;
    }
    this.queue.push(line);
    // Lines go out in batches, at most BATCH_MS late: under load the daemon logs thousands of
    // lines a second, and each write is a round trip through libuv's thread pool.
    if (!this.writing && !this.scheduled) {
      this.scheduled = true;
      setTimeout(() => {
        this.scheduled = false;
        this.kick();
      }, AsyncLineWriter.BATCH_MS);
    }
  }

  private kick(): void {
    if (this.writing || this.fdClosed || this.queue.length === 0) return;
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
      if (this.closeWhenIdle) this.close();
      else this.kick();
    });
  }

  /**
   * Writes what is queued synchronously and closes the fd, at once when no write is in flight,
   * else when it completes (closing under an in-flight write would lose that batch, or send it
   * to whatever file reuses the fd number).
   */
  close(): void {
    if (this.writing) {
      this.closeWhenIdle = true;
      return;
    }
    this.flush();
    this.fdClosed = true;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.closedResolve?.();
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

/**
 * The persistent copy of the log_dump ring (sanlock-ts extension): every line, appended off the
 * event loop, file rotated before it would pass maxBytes (`path` → `path.1` → … → `path.<files>`),
 * and fdatasync'd at most once a second so a host reset loses at most the last second.
 */
export class DebugLogFile {
  private fd: number;
  private size: number;
  private queue: string[] = [];
  private writing = false;
  private dropped = 0;
  private lastSync = 0;
  private dirty = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private closeWhenIdle = false;
  private closedResolve: (() => void) | undefined;
  /** resolves once close() has written everything and closed the file */
  readonly closed: Promise<void> = new Promise((r) => {
    this.closedResolve = r;
  });
  static readonly MAX_QUEUE = 4096;

  constructor(private readonly opts: DebugLogOptions) {
    assert(opts.maxBytes >= LINE_MAX, 'debug log bound below one line');
    assert(Number.isInteger(opts.files) && opts.files >= 0);
    this.fd = openSync(opts.path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  push(line: string): void {
    if (this.fd < 0 || this.closeWhenIdle) return;
    if (this.queue.length >= DebugLogFile.MAX_QUEUE) {
      this.dropped++;
      return;
    }
    this.queue.push(line);
    this.kick();
  }

  /** The next batch: whole lines that still fit the current file (at least one line). */
  private take(): Buffer {
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length) {
      const b = Buffer.byteLength(this.queue[n]!);
      if (this.size + bytes + b > this.opts.maxBytes) break;
      bytes += b;
      n++;
    }
    if (n === 0) {
      this.rotate();
      return this.take();
    }
    const batch = this.queue.splice(0, n);
    return Buffer.from(batch.join(''));
  }

  private rotate(): void {
    const p = this.opts.path;
    closeSync(this.fd);
    this.fd = -1;
    try {
      if (this.opts.files > 0) {
        for (let i = this.opts.files - 1; i >= 1; i--) {
          try {
            renameSync(`${p}.${i}`, `${p}.${i + 1}`);
          } catch {
            // that generation does not exist yet
          }
        }
        renameSync(p, `${p}.1`);
        this.fd = openSync(p, 'a', 0o640);
      } else {
        this.fd = openSync(p, 'w', 0o640);
      }
    } catch {
      // the directory refuses renames or new files (e.g. the daemon has dropped root): the
      // bound matters more than the history, so start the file over (throws, and so stops the
      // persistent log, only when the file itself is not writable)
      this.fd = openSync(p, 'w', 0o640);
    }
    this.size = 0;
  }

  private kick(): void {
    if (this.writing || this.queue.length === 0 || this.fd < 0) return;
    this.writing = true;
    let data: Buffer;
    try {
      data = this.take();
    } catch {
      // rotation could not reopen the file: the persistent log stops, the daemon goes on
      this.writing = false;
      this.fd = -1;
      return;
    }
    const fd = this.fd;
    write(fd, data, (err, written) => {
      this.writing = false;
      if (!err) {
        this.size += written;
        this.dirty = true;
        this.maybeSync();
      }
      if (this.dropped > 0) {
        const l = `dropped ${this.dropped} entries\n`;
        this.queue.push(l);
        this.dropped = 0;
      }
      if (this.closeWhenIdle) this.close();
      else this.kick();
    });
  }

  private maybeSync(): void {
    if (!this.dirty || this.syncTimer || this.fd < 0) return;
    const wait = Math.max(0, this.lastSync + 1000 - Date.now());
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      if (this.fd < 0 || !this.dirty) return;
      this.dirty = false;
      this.lastSync = Date.now();
      fdatasync(this.fd, () => undefined);
    }, wait);
    this.syncTimer.unref();
  }

  /** Writes what is queued and closes the file; waits for a write in flight (see `closed`). */
  close(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    if (this.writing) {
      this.closeWhenIdle = true;
      return;
    }
    if (this.fd < 0) {
      this.closedResolve?.();
      return;
    }
    try {
      while (this.queue.length > 0) {
        const data = this.take();
        writeSync(this.fd, data);
        this.size += data.length;
      }
    } catch {
      // at exit: what could not be written is lost
    }
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = -1;
    this.closedResolve?.();
  }
}

export class DaemonLog {
  private readonly ring = new LineRing(RING_MAX_BYTES, LINE_MAX);
  private fileFd = -1;
  private fileWriter: AsyncLineWriter | undefined;
  private readonly stderrWriter = new AsyncLineWriter(2);
  private debugFile: DebugLogFile | undefined;
  private syslogOn = false;
  /** messages logged before openFile(), replayed to the file and syslog when they open */
  private early: { level: number; line: string }[] | undefined = [];
  private opts: LogOptions;

  constructor(opts: LogOptions) {
    this.opts = opts;
  }

  get logfilePath(): string {
    return this.opts.logfilePath ?? DEFAULT_LOGFILE;
  }

  /**
   * Opens the log file, syslog and the persistent debug log as configured. sanlock carries on
   * without a log file it cannot open; sanlock-ts refuses to start instead (an operator who
   * configured a log should not find it silently empty), so the error sentence, naming the
   * path, is returned for the caller to report, and undefined when all is open.
   */
  openFile(): string | undefined {
    if (this.opts.logfilePriority >= 0) {
      try {
        this.fileFd = openSync(this.logfilePath, 'a', 0o644);
        this.fileWriter = new AsyncLineWriter(this.fileFd);
      } catch (err) {
        this.fileFd = -1;
        return `cannot open log file ${this.logfilePath}: ${errText(err)}`;
      }
    }
    if (this.opts.debugLog) {
      try {
        this.debugFile = new DebugLogFile(this.opts.debugLog);
        // the ring so far (start-up messages) goes to disk too
        if (this.ring.bytes > 0) for (const l of this.ring.dump().toString().split('\n')) this.debugFile.push(`${l}\n`);
      } catch (err) {
        return `cannot open debug log ${this.opts.debugLog.path}: ${errText(err)}`;
      }
    }
    if (this.opts.syslogPriority !== undefined && this.opts.syslogPriority >= 0) {
      syslogOpen(SYSLOG_IDENT);
      this.syslogOn = true;
    }
    const early = this.early ?? [];
    this.early = undefined;
    for (const { level, line } of early) this.route(level, line, false);
    return undefined;
  }

  /**
   * SIGHUP: reopen the log file at its path, so logrotate's rename-and-create works. When the
   * path cannot be opened (e.g. the daemon has dropped root and cannot create files in
   * /var/log) logging goes on into the old file and the failure is logged; copytruncate
   * rotation (sanlock's own logrotate setting) needs no reopen at all.
   */
  reopen(): void {
    if (this.fileFd < 0 || !this.fileWriter) return;
    let fd: number;
    try {
      fd = openSync(this.logfilePath, 'a', 0o644);
    } catch (err) {
      this.error(`log file reopen ${this.logfilePath} failed: ${errText(err)}, still writing the old file`);
      return;
    }
    const oldWriter = this.fileWriter;
    this.fileFd = fd;
    this.fileWriter = new AsyncLineWriter(fd);
    oldWriter.close();
    this.info(`log file reopened ${this.logfilePath}`);
  }

  /**
   * Flushes and closes every destination; the promise resolves when writes that were in flight
   * have landed too (the daemon may exit without waiting: then at most those are lost).
   */
  close(): Promise<void> {
    const waits: Promise<void>[] = [];
    this.stderrWriter.flush();
    if (this.fileWriter) {
      this.fileWriter.close();
      waits.push(this.fileWriter.closed);
    }
    this.fileFd = -1;
    this.fileWriter = undefined;
    if (this.debugFile) {
      this.debugFile.close();
      waits.push(this.debugFile.closed);
    }
    this.debugFile = undefined;
    if (this.syslogOn) syslogClose(1000);
    this.syslogOn = false;
    return Promise.all(waits).then(() => undefined);
  }

  private stampSecond = -1;
  private stampText = '';

  /** The line's date and time; formatted once per second (a busy daemon logs thousands a second). */
  private stamp(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.stampSecond) {
      this.stampText = this.formatStamp(new Date(second * 1000));
      this.stampSecond = second;
    }
    return this.stampText;
  }

  private formatStamp(d: Date): string {
    if (this.opts.logfileUseUtc) {
      return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    }
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** Formats and routes one message at syslog level `level`. */
  log(level: number, msg: string): void {
    let line = `${this.stamp()} ${monotime()} [${process.pid}]: ${msg}`;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: short lines need no byte count.
    if (line.length * 3 > LINE_MAX - 1 && Buffer.byteLength(line) > LINE_MAX - 1) line = Buffer.from(line).subarray(0, LINE_MAX - 1).toString();
    this.ring.push(line);
    if (this.opts.toStderr) this.stderrWriter.push(`${line}\n`);
    if (this.early && this.early.length < AsyncLineWriter.MAX_QUEUE) this.early.push({ level, line });
    this.route(level, line, true);
  }

  private route(level: number, line: string, toDebugFile: boolean): void {
    if (this.fileWriter && level <= this.opts.logfilePriority) this.fileWriter.push(`${line}\n`);
    if (this.syslogOn && level <= (this.opts.syslogPriority ?? -1)) syslogWrite(level, line);
    if (toDebugFile) this.debugFile?.push(`${line}\n`);
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
    return this.ring.dump();
  }
}

/** Where the rotated generations of a debug log live (for operators and tests). */
export function debugLogGenerations(opts: DebugLogOptions): string[] {
  const out = [opts.path];
  for (let i = 1; i <= opts.files; i++) out.push(`${opts.path}.${i}`);
  return out;
}

/** The daemon's log settings from its configuration. */
export function logOptionsFor(cfg: DaemonConfig, runDir: string, euid = process.geteuid?.()): LogOptions {
  return {
    toStderr: cfg.foreground,
    logfilePriority: cfg.logfilePriority,
    logfileUseUtc: cfg.logfileUseUtc !== 0,
    logfilePath: resolveLogfilePath(cfg.logfilePath, runDir, euid),
    syslogPriority: cfg.syslogPriority,
    debugLog: cfg.debugLogPath ? { path: cfg.debugLogPath, maxBytes: cfg.debugLogMaxBytes, files: cfg.debugLogFiles } : undefined,
  };
}

/**
 * Start-up check, before the daemon detaches or creates anything: every log path it will write
 * must be writable. A path inside a run dir that does not exist yet is skipped (the daemon
 * creates the run dir first, and reports an open failure then, still before the pid file).
 */
export function checkLogPaths(opts: LogOptions, runDir: string): string[] {
  const errors: string[] = [];
  const skip = (p: string): boolean => dirname(p) === runDir && !existsSync(runDir);
  if (opts.logfilePriority >= 0 && opts.logfilePath && !skip(opts.logfilePath)) {
    const e = checkWritable(opts.logfilePath, 'log file');
    if (e) errors.push(e);
  }
  if (opts.debugLog && !skip(opts.debugLog.path)) {
    const e = checkWritable(opts.debugLog.path, 'debug log (debug_log_path)');
    if (e) errors.push(e);
  }
  return errors;
}
