// `sanlock-ts lease-xml`: the libvirt <lease> element for a sanlock resource (not a sanlock
// command), and the domain-XML loading used by `client command --domain-xml FILE`.
//
//   sanlock-ts lease-xml -r LOCKSPACE:NAME:PATH:OFFSET [-r …]
//   sanlock-ts lease-xml --lockspace LS --key NAME --path PATH [--offset N[M]] [--indent N]
import { readFileSync } from 'node:fs';
import {
  DomainXmlError,
  type DomainLease,
  type LeaseSpec,
  formatLeaseXml,
  leasesToResources,
  ownerNameOf,
  parseDomainLeases,
} from '../client/domain-xml.js';
import type { SanlkResource } from '../protocol/structs.js';
import { MIB } from '../ondisk/geometry.js';
import { parseResource } from './args.js';

export const LEASE_XML_USAGE = [
  'Usage:',
  'sanlock-ts lease-xml -r LOCKSPACE:NAME:PATH:OFFSET [-r ...] [--indent N]',
  'sanlock-ts lease-xml --lockspace LOCKSPACE --key NAME --path PATH [--offset N] [--indent N]',
  '',
  "Prints libvirt's <lease> element (formatdomain \"Device leases\") for each resource, to put",
  "in a domain's <devices>; `sanlock-ts client command --domain-xml FILE -c PATH ARGS` acquires",
  'them. OFFSET takes a decimal number of bytes or NM for N MiB, as sanlock -r does.',
  '',
].join('\n');

export interface LeaseXmlIo {
  write(s: string): void;
  writeErr(s: string): void;
}

const stdio: LeaseXmlIo = {
  write: (s) => process.stdout.write(s),
  writeErr: (s) => process.stderr.write(s),
};

/** "N" or "NM" (N MiB), strictly decimal: a typo must not become offset 0. */
function parseOffsetArg(s: string): number | undefined {
  const m = /^(\d+)(M?)$/.exec(s);
  if (!m) return undefined;
  const v = Number(m[1]) * (m[2] ? MIB : 1);
  return Number.isSafeInteger(v) ? v : undefined;
}

/** `-r` in sanlock's resource syntax (escaped colons, M suffix), one disk, no lver/SH suffix. */
function leaseFromResourceArg(arg: string): LeaseSpec | string {
  // sanlock parses bytes: names and paths are UTF-8 bytes held in a latin1 string
  const parsed = parseResource(Buffer.from(arg, 'utf8').toString('latin1'));
  if (!parsed.ok) return `-r ${arg}: resource arg parse error ${parsed.code} (expected LOCKSPACE:NAME:PATH:OFFSET)`;
  const r = parsed.res;
  if (r.disks.length !== 1) return `-r ${arg}: a libvirt lease has exactly one target (path:offset), this has ${r.disks.length}`;
  if (r.shared || r.lverSet) return `-r ${arg}: a libvirt lease has no :SH or :lver suffix`;
  const utf8 = (s: string) => Buffer.from(s, 'latin1').toString('utf8');
  return { lockspace: utf8(r.lockspaceName), key: utf8(r.name), path: utf8(r.disks[0]!.path), offset: r.disks[0]!.offset };
}

export async function runLeaseXml(args: string[], io: LeaseXmlIo = stdio): Promise<number> {
  const leases: LeaseSpec[] = [];
  const single: Partial<Record<'lockspace' | 'key' | 'path', string>> & { offset?: number } = {};
  let indent = 0;
  const fail = (msg: string) => {
    io.writeErr(`lease-xml: ${msg}\n`);
    return 1;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h' || a === '--help') {
      io.write(LEASE_XML_USAGE);
      return 0;
    }
    const v = args[i + 1];
    if (v === undefined) return fail(`${a} needs a value\n${LEASE_XML_USAGE}`);
    i++;
    if (a === '-r') {
      const l = leaseFromResourceArg(v);
      if (typeof l === 'string') return fail(l);
      leases.push(l);
    } else if (a === '--lockspace' || a === '--key' || a === '--path') {
      single[a.slice(2) as 'lockspace' | 'key' | 'path'] = v;
    } else if (a === '--offset') {
      const off = parseOffsetArg(v);
      if (off === undefined) return fail(`--offset ${v}: expected a decimal number of bytes, or NM for N MiB`);
      single.offset = off;
    } else if (a === '--indent') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 64) return fail(`--indent ${v}: expected 0..64 spaces`);
      indent = n;
    } else {
      return fail(`unknown option ${a}\n${LEASE_XML_USAGE}`);
    }
  }
  const anySingle = single.lockspace !== undefined || single.key !== undefined || single.path !== undefined || single.offset !== undefined;
  if (anySingle) {
    const missing = (['lockspace', 'key', 'path'] as const).filter((k) => single[k] === undefined);
    if (missing.length) return fail(`missing ${missing.map((k) => `--${k}`).join(', ')}`);
    leases.push({ lockspace: single.lockspace!, key: single.key!, path: single.path!, offset: single.offset ?? 0 });
  }
  if (leases.length === 0) return fail(`no resource given\n${LEASE_XML_USAGE}`);
  let out = '';
  try {
    for (const l of leases) out += formatLeaseXml(l, ' '.repeat(indent));
  } catch (e) {
    if (e instanceof DomainXmlError) return fail(e.message);
    throw e;
  }
  io.write(out);
  return 0;
}

export interface DomainXmlLoad {
  file: string;
  leases: DomainLease[];
  resources: SanlkResource[];
  /** the domain's <name> as sanlock's owner_name (what libvirt's plugin sends) */
  ownerName: string;
}

/** Reads and checks a domain XML file for `client command --domain-xml`; the message names the file. */
export function loadDomainXml(file: string): DomainXmlLoad | { error: string; code: number } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { error: `domain XML ${file}: cannot read: ${err.code ?? err.message}`, code: -2 };
  }
  try {
    const d = parseDomainLeases(text);
    return { file, leases: d.leases, resources: leasesToResources(d.leases), ownerName: ownerNameOf(d.domainName) };
  } catch (e) {
    if (e instanceof DomainXmlError) return { error: `domain XML ${file}: ${e.message}`, code: e.code };
    throw e;
  }
}

/** "<lease> #2 (lockspace "LS", key "R2")" for messages about a lease taken from the XML. */
export function describeLease(l: DomainLease): string {
  return `<lease> #${l.index} (lockspace ${JSON.stringify(l.lockspace)}, key ${JSON.stringify(l.key)})`;
}
