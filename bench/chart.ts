// SVG chart of latency distributions recorded by the cases (helpers.recordDistribution): one
// panel per distribution, an empirical CDF per daemon on a log time axis, median and p99 marked.
// Hand-written SVG so that the benchmark needs no plotting dependency.
import { quantile } from './helpers.js';

export interface Distribution {
  title: string;
  unit: string;
  /** daemon name → samples */
  series: Record<string, number[]>;
  /** x axis; log by default (latencies spanning decades) */
  scale?: 'log' | 'linear';
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
const W = 760;
const PH = 220;
const M = { l: 60, r: 20, t: 30, b: 40 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmtTick(v: number): string {
  if (v >= 1000 && Number.isInteger(v / 100)) return `${+(v / 1000).toFixed(1)}k`;
  if (v >= 1) return String(Math.round(v * 100) / 100);
  return v.toPrecision(2);
}

function fmtVal(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}

function panel(d: Distribution, y0: number): string {
  const names = Object.keys(d.series).filter((k) => d.series[k]!.length > 0);
  const all = names.flatMap((n) => d.series[n]!).filter((v) => v > 0);
  if (all.length === 0) return '';
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const pw = W - M.l - M.r;
  const ph = PH - M.t - M.b;
  const linear = d.scale === 'linear';
  const l0 = Math.floor(Math.log10(lo));
  const l1 = Math.max(l0 + 1, Math.ceil(Math.log10(hi)));
  // linear: a 1-2-5 step giving about 8 ticks over [lo, hi]
  const raw = (hi - lo || Math.abs(hi) || 1) / 8;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((v) => v >= raw)!;
  const x0 = Math.floor(lo / step) * step;
  const x1 = Math.max(x0 + step, Math.ceil(hi / step) * step);
  const x = linear
    ? (v: number) => M.l + ((v - x0) / (x1 - x0)) * pw
    : (v: number) => M.l + ((Math.log10(Math.max(v, 10 ** l0)) - l0) / (l1 - l0)) * pw;
  const y = (q: number) => y0 + M.t + (1 - q) * ph;
  const ticks: number[] = [];
  if (linear) for (let v = x0; v <= x1 + step / 2; v += step) ticks.push(v);
  else for (let e = l0; e <= l1; e++) for (const m of [1, 2, 5]) if (m * 10 ** e <= 10 ** l1) ticks.push(m * 10 ** e);
  const out: string[] = [];
  out.push(`<text x="${M.l}" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(d.title)}</text>`);
  out.push(`<rect x="${M.l}" y="${y0 + M.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (const v of ticks) {
    const xv = x(v).toFixed(1);
    out.push(`<line x1="${xv}" y1="${y0 + M.t}" x2="${xv}" y2="${y0 + M.t + ph}" stroke="#eee"/>`);
    out.push(`<text x="${xv}" y="${y0 + M.t + ph + 14}" font-size="10" text-anchor="middle">${linear ? String(+v.toFixed(6)) : fmtTick(v)}</text>`);
  }
  for (const q of [0, 0.5, 0.9, 1]) {
    out.push(`<line x1="${M.l}" y1="${y(q).toFixed(1)}" x2="${M.l + pw}" y2="${y(q).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${M.l - 4}" y="${(y(q) + 3).toFixed(1)}" font-size="10" text-anchor="end">${q}</text>`);
  }
  out.push(`<text x="${M.l + pw / 2}" y="${y0 + PH - 6}" font-size="11" text-anchor="middle">${esc(d.unit)}${linear ? '' : ' (log scale)'}; y: cumulative fraction</text>`);
  names.forEach((n, i) => {
    const s = [...d.series[n]!].filter((v) => v > 0).sort((a, b) => a - b);
    const c = COLORS[i % COLORS.length]!;
    const pts: string[] = [];
    const step = Math.max(1, Math.floor(s.length / 400));
    for (let k = 0; k < s.length; k += step) pts.push(`${x(s[k]!).toFixed(1)},${y((k + 1) / s.length).toFixed(1)}`);
    pts.push(`${x(s[s.length - 1]!).toFixed(1)},${y(1).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${pts.join(' ')}"/>`);
    const med = quantile(s, 0.5);
    const p99 = quantile(s, 0.99);
    for (const [v, q] of [
      [med, 0.5],
      [p99, 0.99],
    ] as const) {
      out.push(`<circle cx="${x(v).toFixed(1)}" cy="${y(q).toFixed(1)}" r="3" fill="${c}"/>`);
    }
    out.push(
      `<text x="${M.l + 8}" y="${y0 + M.t + 14 + i * 14}" font-size="11" fill="${c}">${esc(n)}: n=${s.length}, median ${fmtVal(med)}, p99 ${fmtVal(p99)} ${esc(d.unit)} (dots)</text>`,
    );
  });
  return out.join('\n');
}

export function distributionsSvg(ds: Distribution[], caption: string): string {
  const h = ds.length * PH + 30;
  const body = ds.map((d, i) => panel(d, i * PH)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${body}
<text x="${M.l}" y="${h - 10}" font-size="10" fill="#555">${esc(caption)}</text>
</svg>
`;
}
