// Repeated measurements of a figure on two sides (Stream-Line and its baseline), turned into table
// rows: median (or max, for peaks) of each side, their ratio, and the spread of the repeats.
import type { Row } from './table.ts';
import { median, spread } from './units.ts';

export type FigureSpec = {
  name: string;
  /** the samples of Stream-Line and of the baseline, by the names given to record() */
  s: string;
  b?: string;
  /** what the baseline is, shown in its own column */
  baseline: string;
  digits: number;
  /** 'max' for peaks (RSS): the worst repeat, not the typical one */
  agg?: 'median' | 'max';
};

export const FIGURE_COLUMNS = ['figure', 'Stream-Line', 'baseline', 'baseline value', 'Stream-Line / baseline', 'spread S / b'] as const;

export class Figures {
  readonly #samples = new Map<string, number[]>();

  record(name: string, value: number): void {
    this.#samples.set(name, [...(this.#samples.get(name) ?? []), value]);
  }

  row(spec: FigureSpec): Row {
    const agg = (v: number[] | undefined): number => (!v?.length ? Number.NaN : spec.agg === 'max' ? Math.max(...v) : median(v));
    const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(spec.digits) : '—');
    const pct = (v: number[] | undefined): string => (v && v.length > 1 ? `${(spread(v) * 100).toFixed(0)}%` : '—');
    const s = this.#samples.get(spec.s);
    const b = spec.b === undefined ? undefined : this.#samples.get(spec.b);
    const ratio = agg(s) / agg(b);
    return [spec.name, fmt(agg(s)), spec.baseline, fmt(agg(b)), Number.isFinite(ratio) ? ratio.toFixed(2) : '—', `${pct(s)} / ${pct(b)} (n=${s?.length ?? 0})`];
  }
}
