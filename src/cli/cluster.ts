// `sanlock-ts cluster status -s LOCKSPACE [-r RESOURCE ...] [-x RINDEX] [--json]
//   [--sample SECONDS|auto] [--watch SECONDS [--count N]]`
// Reads the lockspace and leases straight from storage (no daemon, read-only), from any host.
// Every failure is printed as `<code> <NAME>: <sentence>` plus what to do, exit status 1.
import { Errno, SanlockError } from '../codes.js';
import { type Explained, explain, explainError, formatExplained } from '../lease/explain.js';
import { clusterJson, renderClusterText } from '../ops/cluster-format.js';
import { autoSampleSeconds, type ClusterSource, ClusterObserver, type ClusterView } from '../ops/cluster-view.js';
import type { Disk } from '../storage/disk.js';
import { openDirectDisk } from '../storage/direct-disk.js';
import { parseLockspace, parseResource, parseRindex, SANLK_MAX_RESOURCES } from './args.js';

export const CLUSTER_USAGE = [
  'sanlock-ts cluster status -s LOCKSPACE [-r RESOURCE ...] [-x RINDEX] [--json]',
  '                          [--sample SECONDS|auto] [--watch SECONDS [--count N]] [--io-timeout SECONDS]',
  '  Reads a lockspace and its leases directly from storage (no daemon needed, never writes).',
  '  LOCKSPACE = <lockspace_name>:<host_id>:<path>:<offset>   (host_id is ignored)',
  '  RESOURCE  = <lockspace_name>:<resource_name>:<path>:<offset>[:<path>:<offset>...]',
  '  RINDEX    = <lockspace_name>:<path>:<offset>   (shows every lease the index names)',
  '  --json            one JSON object (one per refresh with --watch)',
  '  --sample S|auto   read twice S seconds apart; auto = 2 x io_timeout + 2 of the hosts seen',
  '  --watch S         re-read every S seconds until interrupted (or --count refreshes)',
  '  --io-timeout S    deadline of each read (default 10)',
  '',
].join('\n');

export interface ClusterIo {
  out(s: string): void;
  err(s: string): void;
  /** interruptible wait; resolves false when interrupted */
  sleep?(ms: number): Promise<boolean>;
}

const processIo: ClusterIo = {
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
};

interface StatusOptions {
  lockspace: string | undefined;
  resources: string[];
  rindex: string | undefined;
  json: boolean;
  sample: number | 'auto' | undefined;
  watch: number | undefined;
  count: number | undefined;
  ioTimeout: number;
}

class UsageProblem extends Error {}

function positiveNumber(flag: string, v: string | undefined): number {
  const n = v === undefined ? Number.NaN : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageProblem(`${flag} needs a positive number of seconds, got ${v ?? 'nothing'}`);
  return n;
}

function parseStatusArgs(args: string[]): StatusOptions {
  const o: StatusOptions = { lockspace: undefined, resources: [], rindex: undefined, json: false, sample: undefined, watch: undefined, count: undefined, ioTimeout: 10 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageProblem(`option ${a} requires a value`);
      return v;
    };
    switch (a) {
      case '-s': o.lockspace = value(); break;
      case '-r': o.resources.push(value()); break;
      case '-x': o.rindex = value(); break;
      case '--json': o.json = true; break;
      case '--sample': {
        const v = value();
        o.sample = v === 'auto' ? 'auto' : positiveNumber('--sample', v);
        break;
      }
      case '--watch': o.watch = positiveNumber('--watch', value()); break;
      case '--count': {
        const n = positiveNumber('--count', value());
        if (!Number.isInteger(n)) throw new UsageProblem(`--count needs a whole number, got ${n}`);
        o.count = n;
        break;
      }
      case '--io-timeout': o.ioTimeout = positiveNumber('--io-timeout', value()); break;
      default: throw new UsageProblem(`unknown option ${a}`);
    }
  }
  if (!o.lockspace) throw new UsageProblem('-s LOCKSPACE is required');
  if (o.count !== undefined && o.watch === undefined) throw new UsageProblem('--count is only meaningful with --watch');
  if (o.resources.length > SANLK_MAX_RESOURCES * 16) throw new UsageProblem('too many -r options');
  return o;
}

function invalid(found: string): SanlockError {
  return new SanlockError(-Errno.EINVAL, found, { found });
}

/** Opens each path once, read-only; closes them all at the end. */
class DiskSet {
  private readonly disks = new Map<string, Promise<Disk>>();

  open(path: string): Promise<Disk> {
    let d = this.disks.get(path);
    if (!d) {
      d = openDirectDisk(path, { readOnly: true });
      // a failed open is reported by whoever awaits it; keep it from being "unhandled" here
      d.catch(() => undefined);
      this.disks.set(path, d);
    }
    return d;
  }

  async closeAll(): Promise<void> {
    for (const d of this.disks.values()) {
      try {
        await (await d).close();
      } catch {
        // failed opens have nothing to close
      }
    }
  }
}

async function openOrExplain(disks: DiskSet, path: string): Promise<Disk> {
  try {
    return await disks.open(path);
  } catch (err) {
    if (err instanceof SanlockError) throw Object.assign(err, { openPath: path });
    throw err;
  }
}

async function buildSource(o: StatusOptions, disks: DiskSet): Promise<ClusterSource> {
  const ls = parseLockspace(o.lockspace!);
  if (!ls.name) throw invalid(`lockspace "${o.lockspace}" has no name (expected name:host_id:path:offset)`);
  if (!ls.path) throw invalid(`lockspace "${o.lockspace}" has no path (expected name:host_id:path:offset)`);
  const src: ClusterSource = { lockspace: { name: ls.name, disk: await openOrExplain(disks, ls.path), offset: ls.offset }, resources: [] };
  for (const r of o.resources) {
    const p = parseResource(r);
    if (!p.ok) throw invalid(`resource "${r}" cannot be parsed (resource arg parse error ${p.code}; expected lockspace:name:path:offset)`);
    if (p.res.disks.length === 0) throw invalid(`resource "${r}" names no disk (expected lockspace:name:path:offset)`);
    const ds = [];
    for (const d of p.res.disks) ds.push({ disk: await openOrExplain(disks, d.path), offset: d.offset });
    src.resources!.push({ lockspaceName: p.res.lockspaceName, resourceName: p.res.name, disks: ds });
  }
  if (o.rindex !== undefined) {
    const rx = parseRindex(o.rindex);
    if (!rx.path) throw invalid(`rindex "${o.rindex}" has no path (expected lockspace:path:offset)`);
    src.rindex = { disk: await openOrExplain(disks, rx.path), offset: rx.offset, lockspaceName: rx.lockspaceName || ls.name };
  }
  return src;
}

function defaultSleep(ms: number): { promise: Promise<boolean>; cancel: () => void } {
  let cancel = (): void => {};
  const promise = new Promise<boolean>((resolve) => {
    const t = setTimeout(() => { process.off('SIGINT', onInt); resolve(true); }, ms);
    const onInt = (): void => { clearTimeout(t); resolve(false); };
    process.once('SIGINT', onInt);
    cancel = () => { clearTimeout(t); process.off('SIGINT', onInt); resolve(false); };
  });
  return { promise, cancel };
}

function sleeper(io: ClusterIo): (ms: number) => Promise<boolean> {
  if (io.sleep) return io.sleep.bind(io);
  return (ms) => defaultSleep(ms).promise;
}

function errorFor(err: unknown, o: StatusOptions): Explained {
  const openPath = (err as { openPath?: string }).openPath;
  if (openPath !== undefined) return explainError(err, { path: openPath, operation: 'open' });
  if (err instanceof SanlockError) {
    const ls = o.lockspace ? parseLockspace(o.lockspace) : undefined;
    const d = err.details ?? {};
    const str = (k: string): string | undefined => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
    const num = (k: string): number | undefined => (typeof d[k] === 'number' ? (d[k] as number) : undefined);
    const found = str('found');
    // Errors about the rindex carry its own place; everything else is about the lockspace.
    const path = str('path') ?? ls?.path;
    const offset = num('offset') ?? ls?.offset;
    const lockspace = str('lockspace') ?? ls?.name;
    return explain(err.code, {
      ...(lockspace !== undefined ? { lockspace } : {}),
      ...(path !== undefined ? { path } : {}),
      ...(offset !== undefined ? { offset } : {}),
      ...(found !== undefined ? { found } : {}),
    });
  }
  return explainError(err);
}

async function runStatus(args: string[], io: ClusterIo): Promise<number> {
  let o: StatusOptions;
  try {
    o = parseStatusArgs(args);
  } catch (err) {
    if (!(err instanceof UsageProblem)) throw err;
    const e = explain(-Errno.EINVAL, { found: err.message });
    io.err(`${formatExplained(e)}\n${CLUSTER_USAGE}`);
    return 1;
  }
  const disks = new DiskSet();
  const sleep = sleeper(io);
  const show = (v: ClusterView): void => io.out(o.json ? clusterJson(v) : renderClusterText(v));
  try {
    const source = await buildSource(o, disks);
    const obs = new ClusterObserver(source, { ioTimeoutMs: o.ioTimeout * 1000 });
    let view = await obs.poll();
    if (o.sample !== undefined) {
      const s = o.sample === 'auto' ? autoSampleSeconds(view) : o.sample;
      if (s > 0) {
        if (!(await sleep(s * 1000))) return 130;
        view = await obs.poll();
      }
    }
    if (o.watch === undefined) {
      show(view);
      return 0;
    }
    for (let n = 1; ; n++) {
      if (!o.json) io.out(`--- refresh ${n} (${new Date().toISOString()})\n`);
      show(view);
      if (o.count !== undefined && n >= o.count) return 0;
      if (!(await sleep(o.watch * 1000))) return 0;
      view = await obs.poll();
    }
  } catch (err) {
    io.err(`${formatExplained(errorFor(err, o))}\n`);
    return 1;
  } finally {
    await disks.closeAll();
  }
}

/** Entry point for `sanlock-ts cluster ...` (args after the word "cluster"). */
export async function runCluster(args: string[], io: ClusterIo = processIo): Promise<number> {
  const [action, ...rest] = args;
  if (action === undefined || action === 'help' || action === '-h' || action === '--help') {
    (action === undefined ? io.err : io.out)(CLUSTER_USAGE);
    return action === undefined ? 1 : 0;
  }
  if (action !== 'status') {
    const e = explain(-Errno.EINVAL, { found: `unknown cluster action "${action}"` });
    io.err(`${formatExplained(e)}\n${CLUSTER_USAGE}`);
    return 1;
  }
  return runStatus(rest, io);
}
