// Turns the measurements into the one table `npm run bench` prints: every figure for the baseline
// and the real server, their ratio, its target (bench/README.md), and throughput as a fraction of each
// machine limit. Rendered as aligned text for the terminal and as markdown for results/latest.md.
import type { Limit } from './machine.ts';
import type { Sample } from './workloads.ts';
import { mbPerSecond, median, mib, spread } from './units.ts';

export type Limits = { loopback?: Limit; disk?: Limit; sha256?: Limit; nodeSha256?: Limit };
/** Samples of one workload per target; `real` is undefined when the real server was skipped. */
export type Runs = { baseline: Sample[]; real?: Sample[] };

export const COLUMNS = [
  'figure', 'baseline', 'real', 'real/baseline', 'target', 'met',
  'of loopback', 'of disk', 'of sha256sum', 'of node sha256', 'spread b / r',
] as const;
export type Row = string[];

type Figure = { value: (s: Sample[]) => number; digits: number };
type Target = { text: string; ok: (real: number, base: number, ratio: number) => boolean };

export function throughputRow(name: string, runs: Runs | undefined, limits: Limits, target?: Target): Row | null {
  const fig: Figure = { value: (s) => median(s.map((x) => mbPerSecond(x.bytes, x.ms))), digits: 0 };
  const row = figureRow(`${name}: throughput, MB/s`, runs, fig, target);
  if (!row || !runs) return row;
  const b = fig.value(runs.baseline);
  const r = runs.real && runs.real.length ? fig.value(runs.real) : Number.NaN;
  const frac = (limit?: Limit): string =>
    limit ? `b ${(b / limit.mbps).toFixed(2)} / r ${Number.isNaN(r) ? '—' : (r / limit.mbps).toFixed(2)}` : '—';
  row[6] = frac(limits.loopback);
  row[7] = frac(limits.disk);
  row[8] = frac(limits.sha256);
  row[9] = frac(limits.nodeSha256);
  const spreadOf = (s: Sample[] | undefined): string => {
    if (!s || s.length < 2) return '—';
    return `${(spread(s.map((x) => mbPerSecond(x.bytes, x.ms))) * 100).toFixed(0)}%`;
  };
  row[10] = `${spreadOf(runs.baseline)} / ${spreadOf(runs.real)} (n=${runs.baseline.length})`;
  return row;
}

export function figureRow(name: string, runs: Runs | undefined, fig: Figure, target?: Target): Row | null {
  if (!runs || runs.baseline.length === 0) return null;
  const b = fig.value(runs.baseline);
  const realOk = runs.real !== undefined && runs.real.length > 0;
  const r = realOk ? fig.value(runs.real!) : Number.NaN;
  const ratio = r / b;
  const invalid = runs.real?.some((s) => s.problem !== '') ?? false;
  let met = '—';
  if (target) met = !realOk ? 'n/a' : invalid ? 'INVALID' : target.ok(r, b, ratio) ? 'yes' : 'NO';
  return [
    name,
    b.toFixed(fig.digits),
    realOk ? r.toFixed(fig.digits) : 'skipped',
    realOk && Number.isFinite(ratio) ? ratio.toFixed(2) : '—',
    target?.text ?? '',
    met,
    '', '', '', '', '',
  ];
}

export function limitsRow(limits: Limits): Row {
  const v = (l?: Limit): string => (l ? `${l.mbps.toFixed(0)} MB/s` : 'not run');
  return ['machine limits (rows above: fraction of each)', '', '', '', '', '', v(limits.loopback), v(limits.disk), v(limits.sha256), v(limits.nodeSha256), ''];
}

export const figures = {
  peakRss: { value: (s: Sample[]) => median(s.map((x) => mib(x.peakRss))), digits: 0 },
  idleRss: { value: (s: Sample[]) => median(s.map((x) => mib(x.idleRss))), digits: 0 },
  rcharPerByte: { value: (s: Sample[]) => median(s.map((x) => x.io.rchar / x.bytes)), digits: 3 },
  readBytesPerByte: { value: (s: Sample[]) => median(s.map((x) => x.io.readBytes / x.bytes)), digits: 3 },
  serverCpu: { value: (s: Sample[]) => median(s.map((x) => (x.serverCpuS * 1000) / x.ms)) * 100, digits: 0 },
  mainThreadCpu: { value: (s: Sample[]) => median(s.map((x) => (x.mainThreadCpuS * 1000) / x.ms)) * 100, digits: 0 },
  serverCpuPerGiB: { value: (s: Sample[]) => median(s.map((x) => x.serverCpuS / (x.bytes / 1024 ** 3))), digits: 2 },
  clientCpu: { value: (s: Sample[]) => median(s.map((x) => (x.clientCpuS * 1000) / x.ms)) * 100, digits: 0 },
  finishLatency: { value: (s: Sample[]) => median(s.map((x) => x.finishLatencyMs)), digits: 1 },
} satisfies Record<string, Figure>;

export const targets = {
  throughput: { text: 'real/baseline ≥ 0.90', ok: (_r: number, _b: number, ratio: number) => ratio >= 0.9 },
  memory: { text: 'real/baseline ≤ 1.20', ok: (_r: number, _b: number, ratio: number) => ratio <= 1.2 },
  growth: { text: 'real ≤ 1.10 (flat)', ok: (r: number) => r <= 1.1 },
  reads: { text: 'real ≤ 1.05', ok: (r: number) => r <= 1.05 },
  latency: { text: 'real ≤ baseline + 5 ms', ok: (r: number, b: number) => r <= b + 5 },
  atLeastBaseline: { text: 'real/baseline ≥ 1.00', ok: (_r: number, _b: number, ratio: number) => ratio >= 1 },
  atMostBaseline: { text: 'real/baseline ≤ 1.00', ok: (_r: number, _b: number, ratio: number) => ratio <= 1 },
  hashOnly: { text: 'real/baseline ≤ 1.05', ok: (_r: number, _b: number, ratio: number) => ratio <= 1.05 },
} satisfies Record<string, Target>;

/** Peak RSS of the large parallel run over the small one, per target. */
export function growthRow(name: string, small?: Runs, big?: Runs): Row | null {
  if (!small || !big) return null;
  const pair: Runs = { baseline: big.baseline, real: big.real };
  const ratioOf = (bigS?: Sample[], smallS?: Sample[]): number =>
    bigS?.length && smallS?.length ? figures.peakRss.value(bigS) / figures.peakRss.value(smallS) : Number.NaN;
  const b = ratioOf(big.baseline, small.baseline);
  const r = ratioOf(big.real, small.real);
  const row = figureRow(name, pair, { value: (s) => (s === big.baseline ? b : r), digits: 2 }, targets.growth);
  if (row) row[3] = '—';
  return row;
}

/** `columns` defaults to the upload table's; bench/sharing.ts passes its own. */
export function renderText(rows: Row[], columns: readonly string[] = COLUMNS): string {
  const all = [columns, ...rows];
  const widths = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(all[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function renderMarkdown(rows: Row[], columns: readonly string[] = COLUMNS): string {
  const esc = (c: string): string => c.replaceAll('|', '\\|');
  return [
    `| ${columns.join(' | ')} |`,
    `|${columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/**
 * A row from plain values per side (workloads that are not a Sample): median of each side, or the
 * worst (max) for peaks; `real` undefined when the real server was skipped.
 */
export function pairRow(name: string, base: number[], real: number[] | undefined, digits: number, target?: Target, agg: 'median' | 'max' = 'median'): Row | null {
  if (base.length === 0) return null;
  const of = (v: number[]): number => (agg === 'max' ? Math.max(...v) : median(v));
  const b = of(base);
  const realOk = real !== undefined && real.length > 0;
  const r = realOk ? of(real) : Number.NaN;
  const ratio = r / b;
  const met = !target ? '—' : !realOk ? 'n/a' : target.ok(r, b, ratio) ? 'yes' : 'NO';
  const pct = (v: number[] | undefined): string => (v && v.length > 1 ? `${(spread(v) * 100).toFixed(0)}%` : '—');
  return [
    name, b.toFixed(digits), realOk ? r.toFixed(digits) : 'skipped', realOk && Number.isFinite(ratio) ? ratio.toFixed(2) : '—',
    target?.text ?? '', met, '', '', '', '', `${pct(base)} / ${pct(real)} (n=${base.length})`,
  ];
}

/** A row of the real server alone (a ratio of two of its own figures), e.g. cost with many files over none. */
export function realOnlyRow(name: string, value: number, digits: number, target?: Target, detail = ''): Row {
  const met = !target ? '—' : !Number.isFinite(value) ? 'n/a' : target.ok(value, Number.NaN, value) ? 'yes' : 'NO';
  return [name, '—', Number.isFinite(value) ? value.toFixed(digits) : '—', '—', target?.text ?? '', met, '', '', '', '', detail];
}
