// `sanlock-ts domain ...`: oVirt VDSM storage-domain leases (see src/ops/domain-layout.ts for the
// layout and where each fact comes from, src/client/domain.ts for the daemon calls).
import { SanlockClientError } from '../client/errors.js';
import { connect, type Registration } from '../client/index.js';
import {
  acquireSpm, acquireVmLease, acquireVolumeLeases, domainHosts, joinDomain, leaseOwner, leaseResource, leaveDomain, MAX_RESOURCES_PER_CALL,
  releaseSpm, releaseVmLease, releaseVolumeLeases, vmLease, volumeLease,
} from '../client/domain.js';
import {
  blockDomainLayout, type DomainLayout, type DomainOptions, fileDomainLayout, type LeaseSpot, readDomain, writeDomain,
} from '../ops/domain-layout.js';

export const DOMAIN_USAGE = [
  'sanlock-ts domain create-file MOUNT --sd UUID [LAYOUT OPTIONS] [--json]',
  '  Lays out a VDSM file storage domain in MOUNT/UUID: dom_md/{ids,leases,xleases,inbox,outbox,metadata}',
  '  and images/IMG/VOL{,.lease}; writes the lockspace UUID on ids, the SPM lease SDM in leases at',
  '  1048576, one lease per volume in VOL.lease at 0, the xleases index and the VM leases.',
  'sanlock-ts domain create-block VGDIR --sd UUID [LAYOUT OPTIONS] [--json]',
  '  Lays out a VDSM block storage domain: VGDIR stands for /dev/UUID and holds the LVs ids (8M),',
  '  leases (2G) and xleases (1G), as block devices or symlinks to them, or created as sparse files.',
  '  Volume leases go in leases at (100 + slot) * alignment, slots from 1 (version 5) or 4 (version 4).',
  '  LAYOUT OPTIONS:',
  '    --volumes N | --volume UUID ...     volume leases (N names derived from the domain UUID)',
  '    --vm-leases N | --vm-lease ID ...   VM leases in xleases (1 MiB alignment only)',
  '    --align 1M|2M|4M|8M  --sector 512|4096  --version 4|5  --io-timeout S (default 10)',
  'sanlock-ts domain show DOMAIN [--json]           the layout, read from storage (no daemon)',
  'sanlock-ts domain join DOMAIN --host-id N [--io-timeout S] [--no-wait]   (io_timeout default: the one on ids)',
  'sanlock-ts domain leave DOMAIN --host-id N [--unused]',
  'sanlock-ts domain status DOMAIN [--json]         hosts and lease owners, as this daemon sees them',
  'sanlock-ts domain spm acquire|release DOMAIN [--pid PID]',
  'sanlock-ts domain volume-lease acquire|release DOMAIN VOL... [--pid PID]',
  'sanlock-ts domain vm-lease acquire|release DOMAIN ID... [--pid PID]',
  '  DOMAIN is the file domain directory (MOUNT/UUID) or the block domain VGDIR.',
  '  acquire without --pid registers this process, holds the leases and releases them when',
  '  interrupted (SIGINT/SIGTERM) or when stdin closes; with --pid it acquires for that',
  '  registered process (like `sanlock client acquire -p`). release needs --pid.',
  `  At most ${MAX_RESOURCES_PER_CALL} leases go in one acquire request; more are split into several.`,
  '  The daemon is found at $SANLOCK_RUN_DIR/sanlock.sock (default /run/sanlock).',
  '',
].join('\n');

class UsageProblem extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string[]>;
  bools: Set<string>;
}

const BOOL_FLAGS = new Set(['--json', '--no-wait', '--unused']);

function parse(args: string[]): Parsed {
  const p: Parsed = { positional: [], flags: new Map(), bools: new Set() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (BOOL_FLAGS.has(a)) p.bools.add(a);
    else if (a.startsWith('--')) {
      const v = args[++i];
      if (v === undefined) throw new UsageProblem(`${a} needs a value`);
      p.flags.set(a, [...(p.flags.get(a) ?? []), v]);
    } else p.positional.push(a);
  }
  return p;
}

function one(p: Parsed, flag: string): string | undefined {
  const v = p.flags.get(flag);
  if (v && v.length > 1) throw new UsageProblem(`${flag} given more than once`);
  return v?.[0];
}

function int(flag: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageProblem(`${flag} needs an integer >= ${min}, got ${v}`);
  return n;
}

function sizeArg(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)([MmKk]?)$/.exec(v);
  if (!m) throw new UsageProblem(`${flag}: bad size ${v}`);
  return Number(m[1]) * (m[2]?.toLowerCase() === 'm' ? 1 << 20 : m[2]?.toLowerCase() === 'k' ? 1 << 10 : 1);
}

function layoutOptions(p: Parsed): DomainOptions {
  const sd = one(p, '--sd');
  if (!sd) throw new UsageProblem('--sd UUID is required');
  const volumeList = p.flags.get('--volume');
  const vmList = p.flags.get('--vm-lease');
  if (volumeList && p.flags.has('--volumes')) throw new UsageProblem('give --volumes N or --volume UUID, not both');
  if (vmList && p.flags.has('--vm-leases')) throw new UsageProblem('give --vm-leases N or --vm-lease ID, not both');
  const sector = int('--sector', one(p, '--sector'), 512);
  if (sector !== undefined && sector !== 512 && sector !== 4096) throw new UsageProblem('--sector is 512 or 4096');
  const version = int('--version', one(p, '--version'), 4);
  if (version !== undefined && version !== 4 && version !== 5) throw new UsageProblem('--version is 4 or 5');
  return {
    sdUUID: sd,
    align: sizeArg('--align', one(p, '--align')),
    sector: sector as 512 | 4096 | undefined,
    version: version as 4 | 5 | undefined,
    ioTimeout: int('--io-timeout', one(p, '--io-timeout'), 1),
    volumes: volumeList ?? int('--volumes', one(p, '--volumes')),
    vmLeases: vmList ?? int('--vm-leases', one(p, '--vm-leases')),
  };
}

function mib(n: number): string {
  return n % (1 << 20) === 0 ? `${n / (1 << 20)}M` : String(n);
}

export function renderLayout(d: DomainLayout): string {
  const rows: string[][] = [
    ['lockspace', d.sdUUID, `${d.idsPath}:0`, ''],
    ['spm', d.spm.name, `${d.spm.path}:${d.spm.offset}`, ''],
    ...d.volumes.map((v) => ['volume', v.name, `${v.path}:${v.offset}`, v.slot !== undefined ? `slot ${v.slot}` : `image ${v.image}`]),
    ...d.vmLeases.map((v) => ['vm-lease', v.name, `${v.path}:${v.offset}`, '']),
  ];
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const out = [`domain ${d.sdUUID} (${d.kind}, version ${d.version}, block size ${d.sector}, alignment ${mib(d.align)}, io_timeout ${d.ioTimeout})`];
  for (const r of rows) out.push(`  ${r[0]!.padEnd(w[0]!)}  ${r[1]!.padEnd(w[1]!)}  ${r[2]!.padEnd(w[2]!)}  ${r[3]}`.trimEnd());
  if (d.xleasesNote) out.push(`  note: ${d.xleasesNote}`);
  return `${out.join('\n')}\n`;
}

function layoutJson(d: DomainLayout): string {
  const { files: _f, dirs: _d, ...rest } = d;
  return `${JSON.stringify(rest)}\n`;
}

/** Holds the registration until SIGINT/SIGTERM/stdin EOF, then releases and returns. */
async function holdUntilInterrupted(reg: Registration, release: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      process.stdin.off('end', done);
      process.stdin.pause();
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    process.stdin.once('end', done);
    process.stdin.resume();
  });
  if (!reg.closed) {
    await release().catch(() => undefined);
    reg.close();
  }
}

type LeaseKind = 'spm' | 'volume-lease' | 'vm-lease';

function spotsFor(kind: LeaseKind, d: DomainLayout, names: string[]): LeaseSpot[] {
  if (kind === 'spm') return [d.spm];
  if (names.length === 0) throw new UsageProblem(`${kind} needs at least one name`);
  return names.map((n) => (kind === 'volume-lease' ? volumeLease(d, n) : vmLease(d, n)));
}

async function leaseCommand(kind: LeaseKind, p: Parsed, out: (s: string) => void): Promise<number> {
  const [action, path, ...names] = p.positional;
  if (action !== 'acquire' && action !== 'release') throw new UsageProblem(`domain ${kind} acquire|release DOMAIN`);
  if (!path) throw new UsageProblem('DOMAIN is required');
  const d = await readDomain(path);
  const spots = spotsFor(kind, d, names);
  const pid = int('--pid', one(p, '--pid'), 1);
  const client = await connect();
  const label = spots.map((s) => s.name).join(' ');
  if (pid !== undefined) {
    for (let i = 0; i < spots.length; i += MAX_RESOURCES_PER_CALL) {
      const res = spots.slice(i, i + MAX_RESOURCES_PER_CALL).map((s) => leaseResource(d, s));
      if (action === 'acquire') await client.acquire(pid, res);
      else await client.release(pid, res);
    }
    out(`${action === 'acquire' ? 'acquired' : 'released'} ${label} for pid ${pid}\n`);
    return 0;
  }
  if (action === 'release') throw new UsageProblem('release needs --pid (a foreground acquire releases when it ends)');
  const reg = await client.register();
  try {
    if (kind === 'spm') await acquireSpm(reg, d);
    else if (kind === 'volume-lease') await acquireVolumeLeases(reg, d, names);
    else for (const n of names) await acquireVmLease(reg, d, n);
  } catch (e) {
    // the open registration would keep this process alive after the error is reported; closing
    // it also makes the daemon release whatever part was acquired before the failure
    reg.close();
    throw e;
  }
  out(`acquired ${label} pid ${process.pid}; holding until interrupted\n`);
  await holdUntilInterrupted(reg, async () => {
    if (kind === 'spm') await releaseSpm(reg, d);
    else if (kind === 'volume-lease') await releaseVolumeLeases(reg, d, names);
    else for (const n of names) await releaseVmLease(reg, d, n);
  });
  out(`released ${label}\n`);
  return 0;
}

async function statusCommand(p: Parsed, out: (s: string) => void): Promise<number> {
  const path = p.positional[0];
  if (!path) throw new UsageProblem('DOMAIN is required');
  const d = await readDomain(path);
  const client = await connect();
  const mine = (await client.getLockspaces()).find((l) => l.lockspace === d.sdUUID);
  const hosts = mine ? await domainHosts(client, d) : null;
  const leases = [d.spm, ...d.volumes, ...d.vmLeases];
  const owners = [];
  for (const s of leases) owners.push(await leaseOwner(client, d, s));
  if (p.bools.has('--json')) {
    out(`${JSON.stringify({ domain: d.sdUUID, joined: mine ? { hostId: mine.hostId, adding: (mine.flags & 1) !== 0 } : null, hosts, leases: owners })}\n`);
    return 0;
  }
  out(`domain ${d.sdUUID}: ${mine ? `joined as host ${mine.hostId}${mine.flags & 1 ? ' (joining)' : ''}` : 'not joined by this daemon'}\n`);
  if (hosts) for (const h of hosts) out(`  host ${h.hostId} ${h.status} generation ${h.generation} timestamp ${h.timestamp}\n`);
  else if (mine) out('  hosts not available yet\n');
  for (const o of owners) {
    const who = o.hostId === null ? 'free' : `held by host ${o.hostId}${o.hostStatus ? ` (${o.hostStatus})` : ''}`;
    out(`  ${o.name.padEnd(36)} lver ${String(o.lver).padEnd(4)} ${who}\n`);
  }
  return 0;
}

export async function runDomain(args: string[], io: { out(s: string): void; err(s: string): void } = {
  out: (s) => { process.stdout.write(s); },
  err: (s) => { process.stderr.write(s); },
}): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    if (!cmd || cmd === 'help' || cmd === '-h' || cmd === '--help') {
      io.out(DOMAIN_USAGE);
      return cmd ? 0 : 1;
    }
    const p = parse(rest);
    switch (cmd) {
      case 'create-file':
      case 'create-block': {
        const where = p.positional[0];
        if (!where || p.positional.length > 1) throw new UsageProblem(`domain ${cmd} needs exactly one ${cmd === 'create-file' ? 'MOUNT' : 'VGDIR'}`);
        const o = layoutOptions(p);
        const d = cmd === 'create-file' ? fileDomainLayout(where, o) : blockDomainLayout(where, o);
        await writeDomain(d);
        io.out(p.bools.has('--json') ? layoutJson(d) : renderLayout(d));
        return 0;
      }
      case 'show': {
        if (p.positional.length !== 1) throw new UsageProblem('domain show DOMAIN');
        const d = await readDomain(p.positional[0]!);
        io.out(p.bools.has('--json') ? layoutJson(d) : renderLayout(d));
        return 0;
      }
      case 'join':
      case 'leave': {
        if (p.positional.length !== 1) throw new UsageProblem(`domain ${cmd} DOMAIN --host-id N`);
        const hostId = int('--host-id', one(p, '--host-id'), 1);
        if (hostId === undefined) throw new UsageProblem('--host-id N is required');
        const d = await readDomain(p.positional[0]!);
        const client = await connect();
        if (cmd === 'join') {
          const t = Date.now();
          const joined = await joinDomain(client, d, hostId, { ioTimeout: int('--io-timeout', one(p, '--io-timeout'), 0), wait: !p.bools.has('--no-wait') });
          io.out(joined ? `joined ${d.sdUUID} as host ${hostId} in ${((Date.now() - t) / 1000).toFixed(1)} s\n` : `joining ${d.sdUUID} as host ${hostId}\n`);
        } else {
          await leaveDomain(client, d, hostId, { unused: p.bools.has('--unused') });
          io.out(`left ${d.sdUUID}\n`);
        }
        return 0;
      }
      case 'status':
        return await statusCommand(p, io.out);
      case 'spm':
      case 'volume-lease':
      case 'vm-lease':
        return await leaseCommand(cmd, p, io.out);
      default:
        throw new UsageProblem(`unknown domain command "${cmd}"`);
    }
  } catch (e) {
    if (e instanceof UsageProblem) {
      io.err(`${e.message}\n${DOMAIN_USAGE}`);
      return 2;
    }
    if (e instanceof SanlockClientError) {
      io.err(`${e.message}\n`);
      return 1;
    }
    io.err(`${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
