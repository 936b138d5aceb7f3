// `node dist/bench/report.js [bench-results.json]`: prints the issue-8 results of a bench run as
// a Markdown table (the one docs/benchmarks.md carries), with PASS/MISS per target.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface JsonRow {
  metric: string;
  value: number | null;
  unit: string;
  ref?: { name: string; value: number | null };
  ratio?: number | null;
  note?: string;
  target?: string;
  pass?: boolean;
}

function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

export function markdown(doc: { results: { case: string; rows?: JsonRow[]; error?: string }[] }, only = /^(daemon-|io-)/): string {
  const out = ['| case | metric | ours | real sanlock | ours/real | target |', '|---|---|---:|---:|---:|---|'];
  for (const r of doc.results) {
    if (!only.test(r.case)) continue;
    if (r.error) {
      out.push(`| ${r.case} | failed: ${r.error.replace(/\|/g, '/').slice(0, 200)} | | | | |`);
      continue;
    }
    for (const x of r.rows ?? []) {
      const unit = x.unit ? ` ${x.unit}` : '';
      const ref = x.ref ? `${fmt(x.ref.value)}${unit}${x.ref.name === 'sanlock' ? '' : ` (${x.ref.name})`}` : '';
      const tgt = x.target ? `**${x.pass ? 'PASS' : 'MISS'}** ${x.target}` : '';
      out.push(`| ${r.case} | ${x.metric.trim()} | ${fmt(x.value)}${unit} | ${ref} | ${x.ratio != null ? `${fmt(x.ratio)}×` : ''} | ${tgt} |`);
    }
  }
  return out.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const doc = JSON.parse(readFileSync(process.argv[2] ?? 'bench-results.json', 'utf8'));
  console.log(markdown(doc));
}
