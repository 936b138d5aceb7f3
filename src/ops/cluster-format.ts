// Text and JSON forms of a ClusterView. The JSON is the view itself (stable field names, one
// object) so scripts never parse the table.
import type { ClusterView, HostRecordView, LeaseView } from './cluster-view.js';

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function alignTable(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length); });
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function sizeText(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)}M` : String(bytes);
}

function hostRow(h: HostRecordView): string[] {
  return [
    String(h.hostId),
    h.error ? 'error' : h.state,
    String(h.generation),
    String(h.timestamp),
    String(h.ioTimeout),
    h.renewedWithinSeconds === null ? '-' : `<=${h.renewedWithinSeconds}s`,
    h.bitmap.length ? h.bitmap.join(',') : '-',
    h.event ? `${h.event.generation}/${h.event.event}/${h.event.data}` : '-',
    h.name || '-',
  ];
}

function ownerText(l: LeaseView): [string, string] {
  if (l.owner) return [String(l.owner.hostId), String(l.owner.generation)];
  return ['-', '-'];
}

function leaseRow(l: LeaseView): string[] {
  const disks = l.disks.map((d) => `${d.path}:${d.offset}`).join(',');
  if (l.error) return [l.resource, 'error', '-', '-', '-', '-', '-', '-', disks];
  const [o, g] = ownerText(l);
  let ownerState: string = l.ownerState ?? '-';
  if (l.shortHold) ownerState += ' (short hold)';
  if (l.ownerReleased) ownerState += ' (dblock released)';
  return [
    l.resource,
    l.mode,
    o,
    g,
    String(l.lver),
    ownerState,
    l.shared.length ? l.shared.map((s) => `${s.hostId}/${s.generation}:${s.state}`).join(',') : '-',
    l.request ? `lver ${l.request.lver} ${l.request.forceMode === 1 ? 'force' : l.request.forceMode === 2 ? 'graceful' : `mode ${l.request.forceMode}`}` : '-',
    disks,
  ];
}

/** The aligned human report. */
export function renderClusterText(v: ClusterView): string {
  const ls = v.lockspace;
  const out: string[] = [];
  out.push(`lockspace ${ls.name} at ${ls.path}:${ls.offset} (sector ${ls.sectorSize}, align ${sizeText(ls.alignSize)}, max_hosts ${ls.maxHosts})`);
  if (v.reads <= 1) {
    out.push('one read: a held host_id shows "unknown-age" (timestamps are each host\'s own clock); use --sample or --watch to see who renews');
  } else {
    out.push(`${v.reads} reads over ${v.spanSeconds} s: "live" = timestamp changed while watched`);
  }
  out.push('');
  if (v.hosts.length === 0) {
    out.push('no host_id has ever been used');
  } else {
    out.push(...alignTable([['HOST', 'STATE', 'GEN', 'TIMESTAMP', 'IO', 'RENEWED', 'BITS', 'EVENT', 'NAME'], ...v.hosts.map(hostRow)]));
    for (const h of v.hosts) if (h.error) out.push(`host ${h.hostId}: ${h.error.message}`);
  }
  if (v.leases.length > 0) {
    out.push('');
    out.push(...alignTable([['LEASE', 'MODE', 'OWNER', 'GEN', 'LVER', 'OWNER_STATE', 'SHARED', 'REQUEST', 'DISK'], ...v.leases.map(leaseRow)]));
    for (const l of v.leases) if (l.error) out.push(`${l.resource}: ${l.error.message}`);
  }
  return `${out.join('\n')}\n`;
}

/** `--json`: the whole view as one line of JSON. */
export function clusterJson(v: ClusterView): string {
  return `${JSON.stringify(v)}\n`;
}
