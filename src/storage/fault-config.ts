// Storage fault injection for a running daemon, for tests only: enabled solely by the
// environment variable SANLOCK_TS_FAULT_FILE naming a JSON file, which is re-read whenever its
// modification time or size changes, so a test can make one lockspace's storage hang or fail
// while the daemon and its other lockspaces keep working. Without the variable nothing is
// wrapped and no file is ever looked at.
//
// File format:
//   { "disks": [ { "path": "/abs/path/of/lease/file", "faults": [ FaultRule, ... ] },
//                { "pathPrefix": "/abs/dir/", "faults": [ ... ] } ] }
// FaultRule is faulty-disk.ts's (op, range, count, probability, delayMs, hang, error,
// shortRead, corruptBytes). Every matching entry contributes its rules, in file order. A new
// version of the file replaces the rules of every disk (counts start again); I/Os held by a
// "forever" hang are let go once the new rules for that disk no longer hang forever.
// Each daemon process reads its own variable, so two daemons on one lease file can be given
// different files.
import assert from 'node:assert';
import fs from 'node:fs';
import { resolve } from 'node:path';
import type { Disk } from './disk.js';
import { FaultyDisk, type FaultRule } from './faulty-disk.js';

export const FAULT_FILE_ENV = 'SANLOCK_TS_FAULT_FILE';

/** How often (at most) an I/O stats the file for changes. */
const RECHECK_MS = 100;

export interface FaultFileEntry {
  path?: string;
  pathPrefix?: string;
  faults: FaultRule[];
}

export interface FaultFile {
  disks: FaultFileEntry[];
}

function validRule(r: unknown): r is FaultRule {
  if (typeof r !== 'object' || r === null) return false;
  const x = r as Record<string, unknown>;
  if (x.op !== undefined && x.op !== 'read' && x.op !== 'write' && x.op !== 'both') return false;
  if (x.error !== undefined && !(typeof x.error === 'number' && Number.isInteger(x.error) && x.error < 0)) return false;
  if (x.hang !== undefined && x.hang !== 'forever' && typeof (x.hang as { completeAfterMs?: unknown })?.completeAfterMs !== 'number') {
    return false;
  }
  if (x.range !== undefined) {
    const rg = x.range as { start?: unknown; end?: unknown };
    if (typeof rg.start !== 'number' || typeof rg.end !== 'number' || rg.end <= rg.start) return false;
  }
  if (x.probability !== undefined && !(typeof x.probability === 'number' && x.probability >= 0 && x.probability <= 1)) return false;
  return true;
}

/** Parses and checks a fault file's text; throws Error describing the first problem. */
export function parseFaultFile(text: string): FaultFile {
  const j = JSON.parse(text) as unknown;
  const disks = (j as { disks?: unknown })?.disks;
  if (!Array.isArray(disks)) throw new Error('fault file: "disks" must be an array');
  for (const [i, d] of disks.entries()) {
    const e = d as Partial<FaultFileEntry>;
    if (typeof e.path !== 'string' && typeof e.pathPrefix !== 'string') throw new Error(`fault file: disks[${i}] needs "path" or "pathPrefix"`);
    if (!Array.isArray(e.faults)) throw new Error(`fault file: disks[${i}].faults must be an array`);
    for (const [k, r] of e.faults.entries()) {
      if (!validRule(r)) throw new Error(`fault file: disks[${i}].faults[${k}] is not a valid fault rule`);
    }
  }
  return { disks: disks as FaultFileEntry[] };
}

/** The rules of a fault file that apply to one disk path. */
export function rulesForPath(file: FaultFile, path: string): FaultRule[] {
  const p = resolve(path);
  const out: FaultRule[] = [];
  for (const e of file.disks) {
    const hit = (e.path !== undefined && resolve(e.path) === p) || (e.pathPrefix !== undefined && p.startsWith(e.pathPrefix));
    if (hit) out.push(...e.faults);
  }
  return out;
}

/** Watches one fault file; shared by every disk of the process. */
export class FaultConfig {
  readonly file: string;
  /** Bumped on every successful (re)load. */
  version = 0;
  current: FaultFile = { disks: [] };
  lastError: string | undefined;
  private stamp = '';
  private checkedAt = 0;

  constructor(file: string) {
    this.file = file;
    this.check(true);
  }

  /** Re-reads the file if it changed (at most every 100 ms unless forced). */
  check(force = false): void {
    const t = Date.now();
    if (!force && t - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = t;
    let stamp: string;
    try {
      const st = fs.statSync(this.file);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      // A missing file means no faults (a test may create it later).
      stamp = 'absent';
    }
    if (stamp === this.stamp) return;
    try {
      this.current = stamp === 'absent' ? { disks: [] } : parseFaultFile(fs.readFileSync(this.file, 'utf8'));
      this.lastError = undefined;
      this.stamp = stamp;
      this.version++;
    } catch (err) {
      // A half-written or bad file keeps the previous rules; it is read again once it changes.
      this.lastError = (err as Error).message;
      this.stamp = stamp;
    }
  }
}

const configs = new Map<string, FaultConfig>();

function configFor(file: string): FaultConfig {
  let c = configs.get(file);
  if (!c) {
    c = new FaultConfig(file);
    configs.set(file, c);
  }
  return c;
}

/** A FaultyDisk whose rules follow the fault file. */
export class ConfiguredFaultDisk extends FaultyDisk {
  readonly config: FaultConfig;
  /** The path rules are matched against (the one the daemon was asked to open). */
  readonly matchPath: string;
  private appliedVersion = -1;

  constructor(inner: Disk, config: FaultConfig, matchPath: string = inner.path) {
    super(inner);
    this.config = config;
    this.matchPath = matchPath;
    this.sync();
  }

  private sync(): void {
    this.config.check();
    if (this.appliedVersion === this.config.version) return;
    this.appliedVersion = this.config.version;
    const rules = rulesForPath(this.config.current, this.matchPath);
    this.setFaults(rules);
    if (!rules.some((r) => r.hang === 'forever')) this.releaseHung();
  }

  override read(offset: number, length: number, timeoutMs: number): Promise<Buffer> {
    this.sync();
    return super.read(offset, length, timeoutMs);
  }

  override write(offset: number, data: Buffer, timeoutMs: number): Promise<void> {
    this.sync();
    return super.write(offset, data, timeoutMs);
  }

  override close(): Promise<void> {
    // Hung I/Os would otherwise pin the inner disk open forever.
    this.releaseHung();
    return super.close();
  }
}

/**
 * The daemon's disk opener calls this on every disk it opens. Without SANLOCK_TS_FAULT_FILE in
 * `env` it returns `disk` itself.
 */
export function wrapWithConfiguredFaults(disk: Disk, path: string = disk.path, env: NodeJS.ProcessEnv = process.env): Disk {
  const file = env[FAULT_FILE_ENV];
  if (!file) return disk;
  assert(path.length > 0, 'empty disk path');
  return new ConfiguredFaultDisk(disk, configFor(resolve(file)), path);
}
