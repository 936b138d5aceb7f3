// `npm run bench`: runs every benchmark case module in this directory and prints one table.
// A case module is any bench/<x>.ts (other than this file) exporting `cases: BenchCase[]`;
// it is picked up automatically. `node dist/bench/main.js storage` runs only cases whose
// name contains "storage". Results are also written to bench-results.json in the working
// directory (git-ignored), with the machine they were measured on, and the latency
// distributions the cases recorded are drawn into bench-results.svg. Environment: BENCH_QUICK=1
// skips the slow parts of the daemon cases (bench/daemon.ts), BENCH_SKIP=a,b leaves out cases
// whose name contains a or b, BENCH_SCALE scales the many-leases load.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distributionsSvg } from './chart.js';
import { distributions, quantile } from './helpers.js';

export interface Row {
  /** What was measured, e.g. "read 4 KiB median". */
  metric: string;
  /** NaN for a row that only carries a note. */
  value: number;
  unit: string;
  /** The same quantity for the reference implementation (dd, real sanlock...), if any. */
  ref?: { name: string; value: number };
  note?: string;
  /** A target of issue 8 this row is judged against, e.g. "ratio ≤ 0.8", and whether it is met. */
  target?: { text: string; pass: boolean };
}

export interface BenchCase {
  name: string;
  run(): Promise<Row[]>;
}

function fmt(v: number): string {
  if (Number.isNaN(v)) return '';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** Prints rows as an aligned text table; the ratio column is value / reference. */
export function printTable(caseName: string, rows: Row[], out: (s: string) => void = console.log): void {
  const header = ['case', 'metric', 'value', 'unit', 'reference', 'ratio', 'target', 'note'];
  const lines = rows.map((r) => [
    caseName,
    r.metric,
    fmt(r.value),
    r.unit,
    r.ref ? `${r.ref.name} ${fmt(r.ref.value)}` : '',
    r.ref && r.ref.value !== 0 ? `${fmt(r.value / r.ref.value)}x` : '',
    r.target ? `${r.target.pass ? 'PASS' : 'MISS'} (${r.target.text})` : '',
    r.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 2 || i === 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  out(line(header));
  out(line(widths.map((w) => '-'.repeat(w))));
  for (const l of lines) out(line(l));
}

/** Case modules: every compiled bench/*.js next to this file except main.js itself. */
async function loadCases(): Promise<BenchCase[]> {
  const here = dirname(fileURLToPath(import.meta.url));
  const files = readdirSync(here)
    .filter((f) => f.endsWith('.js') && f !== basename(fileURLToPath(import.meta.url)))
    .sort();
  const cases: BenchCase[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(`${here}/${f}`).href)) as { cases?: BenchCase[] };
    if (Array.isArray(mod.cases)) cases.push(...mod.cases);
  }
  return cases;
}

function machine(): Record<string, unknown> {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!;
  } catch {
    // not Linux: os.cpus() is good enough
  }
  return { nproc: os.availableParallelism(), cpuModel, kernel: os.release(), node: process.version, memMiB: Math.round(os.totalmem() / 2 ** 20) };
}

/** JSON cannot hold NaN/Infinity: they become null. */
function jsonRow(r: Row): Record<string, unknown> {
  const num = (v: number) => (Number.isFinite(v) ? v : null);
  return {
    metric: r.metric,
    value: num(r.value),
    unit: r.unit,
    ...(r.ref ? { ref: { name: r.ref.name, value: num(r.ref.value) }, ratio: r.ref.value !== 0 ? num(r.value / r.ref.value) : null } : {}),
    ...(r.note !== undefined ? { note: r.note } : {}),
    ...(r.target ? { target: r.target.text, pass: r.target.pass } : {}),
  };
}

async function main(): Promise<number> {
  const filter = process.argv.slice(2);
  const all = await loadCases();
  // BENCH_SKIP=a,b leaves out the cases whose name contains a or b (e.g. the slow fencing run)
  const skip = (process.env.BENCH_SKIP ?? '').split(',').filter(Boolean);
  const chosen = (filter.length ? all.filter((c) => filter.some((f) => c.name.includes(f))) : all).filter((c) => !skip.some((s) => c.name.includes(s)));
  if (chosen.length === 0) {
    console.error(`no benchmark case matches ${filter.join(' ')}; cases: ${all.map((c) => c.name).join(', ')}`);
    return 1;
  }
  let failed = 0;
  const t0 = performance.now();
  const results: { case: string; seconds: number; rows?: Record<string, unknown>[]; error?: string }[] = [];
  for (const c of chosen) {
    const t = performance.now();
    try {
      const rows = await c.run();
      printTable(c.name, rows);
      console.log(`(${c.name}: ${((performance.now() - t) / 1000).toFixed(1)} s)\n`);
      results.push({ case: c.name, seconds: (performance.now() - t) / 1000, rows: rows.map(jsonRow) });
    } catch (e) {
      failed++;
      results.push({ case: c.name, seconds: (performance.now() - t) / 1000, error: e instanceof Error ? e.message : String(e) });
      console.error(`bench case ${c.name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
  }
  const total = (performance.now() - t0) / 1000;
  const targets = results.flatMap((r) => (r.rows ?? []).filter((x) => x.target !== undefined).map((x) => ({ case: r.case, ...x }) as Record<string, unknown>));
  if (targets.length) {
    console.log('targets (issue 8):');
    for (const t of targets) console.log(`  ${t.pass ? 'PASS' : 'MISS'}  ${t.case}: ${String(t.metric)} = ${fmt(Number(t.value ?? Number.NaN))} ${String(t.unit)}${t.ratio != null ? ` (ratio ${fmt(Number(t.ratio))})` : ''}; target ${String(t.target)}`);
  }
  console.log(`total ${total.toFixed(1)} s`);
  const dists = distributions.map((d) => ({
    title: d.title,
    unit: d.unit,
    series: Object.fromEntries(
      Object.entries(d.series).map(([k, v]) => {
        const s = [...v].sort((a, b) => a - b);
        return [k, { n: s.length, min: s[0] ?? null, median: s.length ? quantile(s, 0.5) : null, p90: s.length ? quantile(s, 0.9) : null, p99: s.length ? quantile(s, 0.99) : null, max: s[s.length - 1] ?? null, samples: s }];
      }),
    ),
  }));
  const doc = {
    date: new Date().toISOString(),
    seconds: total,
    filter,
    machine: machine(),
    env: Object.fromEntries(['BENCH_SCALE', 'BENCH_QUICK', 'BENCH_SKIP', 'BENCH_REAL_DAEMON_ARGS'].map((k) => [k, process.env[k] ?? null])),
    results,
    distributions: dists,
  };
  writeFileSync('bench-results.json', `${JSON.stringify(doc, null, 2)}\n`);
  if (distributions.length) {
    const m = machine();
    writeFileSync('bench-results.svg', distributionsSvg(distributions, `sanlock-ts vs sanlock 3.8.5, ${doc.date}, ${String(m.nproc)} CPUs ${String(m.cpuModel)}, node ${String(m.node)}`));
    console.log('wrote bench-results.json and bench-results.svg');
  }
  return failed ? 1 : 0;
}

// Case modules import the types and printTable from here; only the entry point runs.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((code) => {
    process.exitCode = code;
  });
}
