// Metrics in linkerd-tcp's shape (tacho): counters, gauges and stats, named with `:`-joined
// scopes and rendered as Prometheus text. The data path only bumps plain number fields
// (`counter.value++`); everything else (labels, formatting) happens at scrape time.
import { familyHeader, METRIC_HELP, statPartHelp } from './help.ts';
import type { SampleWindow } from './window.ts';

export type Labels = Readonly<Record<string, string>>;

export class Counter {
  value = 0;
}

export class Gauge {
  value = 0;
  /** When set, the gauge is sampled from this function at scrape time instead. */
  read: (() => number) | undefined;
  constructor(read?: () => number) {
    this.read = read;
  }
  current(): number {
    return this.read ? this.read() : this.value;
  }
}

/** Fixed upper bounds (1-2-5 series) shared by every stat; values above the last go to +Inf. */
export const STAT_BOUNDS: readonly number[] = (() => {
  const out: number[] = [];
  for (let p = 1; p <= 1e9; p *= 10) out.push(p, 2 * p, 5 * p);
  return out;
})();

/**
 * A distribution (latency, sizes). linkerd-tcp: tacho cleared stats at every snapshot, so
 * `/metrics` shows the last interval; we keep that (see `snapshot()`), with fixed buckets
 * instead of HDR steps.
 */
export class Stat {
  /** When set, every value also goes to this sliding window (real quantiles for the dashboard). */
  window: SampleWindow | undefined;
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  readonly buckets = new Float64Array(STAT_BOUNDS.length + 1);
  record(v: number): void {
    this.window?.record(v);
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    let i = 0;
    while (i < STAT_BOUNDS.length && v > STAT_BOUNDS[i]!) i++;
    this.buckets[i]!++;
  }
  reset(): void {
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
    this.buckets.fill(0);
  }
  /** Value at quantile q (0..1), as the upper bound of its bucket; 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return Math.min(STAT_BOUNDS[i] ?? this.max, this.max);
    }
    return this.max;
  }
  copyFrom(o: Stat): void {
    this.count = o.count;
    this.sum = o.sum;
    this.min = o.min;
    this.max = o.max;
    this.buckets.set(o.buckets);
  }
}

/** A registry's values as plain data (what a worker sends its primary). */
export type MetricDump =
  | { readonly t: 'c' | 'g'; readonly name: string; readonly labels: string; readonly value: number }
  | {
      readonly t: 's'; readonly name: string; readonly labels: string;
      readonly count: number; readonly sum: number; readonly min: number; readonly max: number; readonly buckets: readonly number[];
    };

interface Entry<T> {
  readonly name: string;
  readonly labels: string; // rendered `k="v", k2="v2"` (sorted), or ''
  readonly metric: T;
}

function renderLabels(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(', ');
}

/** A map's entries grouped by metric name, names in order of first registration. */
function byName<T>(map: ReadonlyMap<string, Entry<T>>): Map<string, [string, Entry<T>][]> {
  const out = new Map<string, [string, Entry<T>][]>();
  for (const kv of map) {
    const list = out.get(kv[1].name);
    if (list) list.push(kv);
    else out.set(kv[1].name, [kv]);
  }
  return out;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}

export class Registry {
  private readonly counters = new Map<string, Entry<Counter>>();
  private readonly gauges = new Map<string, Entry<Gauge>>();
  private readonly stats = new Map<string, Entry<Stat>>();
  /** Last snapshot of each stat: what `/metrics` shows (tacho semantics). */
  private readonly snapshots = new Map<string, Stat>();
  private readonly collectors = new Set<() => void>();

  /** Runs `fn` before every render (to fold live values into counters); returns an unregister. */
  onCollect(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }

  counter(name: string, labels: Labels = {}): Counter {
    return this.get(this.counters, name, labels, () => new Counter());
  }
  gauge(name: string, labels: Labels = {}, read?: () => number): Gauge {
    const g = this.get(this.gauges, name, labels, () => new Gauge(read));
    if (read) g.read = read;
    return g;
  }
  stat(name: string, labels: Labels = {}): Stat {
    return this.get(this.stats, name, labels, () => new Stat());
  }
  /** Forget every metric with these labels (e.g. a destination that was evicted). */
  removeWhere(pred: (name: string, labels: string) => boolean): void {
    for (const m of [this.counters, this.gauges, this.stats] as Map<string, Entry<unknown>>[]) {
      for (const [k, e] of m) if (pred(e.name, e.labels)) m.delete(k);
    }
    for (const k of this.snapshots.keys()) if (!this.stats.has(k)) this.snapshots.delete(k);
  }

  /** Move every stat's interval into its snapshot and start a new interval. */
  snapshot(): void {
    for (const [k, e] of this.stats) {
      let s = this.snapshots.get(k);
      if (!s) this.snapshots.set(k, (s = new Stat()));
      s.copyFrom(e.metric);
      e.metric.reset();
    }
  }

  /** Every value as plain data: counters and gauges now, stats as of the last snapshot. */
  dump(): MetricDump[] {
    for (const fn of this.collectors) fn();
    const out: MetricDump[] = [];
    for (const e of this.counters.values()) out.push({ t: 'c', name: e.name, labels: e.labels, value: e.metric.value });
    for (const e of this.gauges.values()) out.push({ t: 'g', name: e.name, labels: e.labels, value: e.metric.current() });
    for (const [k, e] of this.stats) {
      const st = this.snapshots.get(k) ?? new Stat();
      out.push({ t: 's', name: e.name, labels: e.labels, count: st.count, sum: st.sum, min: st.min, max: st.max, buckets: [...st.buckets] });
    }
    return out;
  }

  /** One registry holding the sum of several dumps (counters, gauges and stat buckets add up). */
  static merged(dumps: readonly (readonly MetricDump[])[]): Registry {
    const r = new Registry();
    for (const dump of dumps) {
      for (const d of dump) {
        const key = `${d.name}{${d.labels}}`;
        if (d.t !== 's') {
          if (d.t === 'c') r.raw(r.counters, key, d, () => new Counter()).value += d.value;
          else r.raw(r.gauges, key, d, () => new Gauge()).value += d.value;
        } else {
          r.raw(r.stats, key, d, () => new Stat());
          let s = r.snapshots.get(key);
          if (!s) r.snapshots.set(key, (s = new Stat()));
          s.count += d.count;
          s.sum += d.sum;
          s.min = Math.min(s.min, d.min ?? Infinity);
          s.max = Math.max(s.max, d.max ?? -Infinity);
          d.buckets.forEach((n, i) => (s.buckets[i]! += n));
        }
      }
    }
    return r;
  }

  private raw<T>(map: Map<string, Entry<T>>, key: string, d: { name: string; labels: string }, make: () => T): T {
    let e = map.get(key);
    if (!e) map.set(key, (e = { name: d.name, labels: d.labels, metric: make() }));
    return e.metric;
  }

  /**
   * Prometheus text: counters, then gauges, then stats, each family (name) in order of first
   * registration, its series together under one `# HELP` and `# TYPE` (the text format wants a
   * family's lines contiguous and typed before its first sample). A stat renders tacho's parts
   * (`_count`, then `_bucket`, `_min`, `_max`, `_sum` once it has values), each a gauge family.
   */
  render(): string {
    for (const fn of this.collectors) fn();
    const out: string[] = [];
    const line = (name: string, labels: string, v: number): void => {
      out.push(labels ? `${name}{${labels}} ${fmt(v)}` : `${name} ${fmt(v)}`);
    };
    for (const [name, entries] of byName(this.counters)) {
      out.push(...familyHeader(name, 'counter', METRIC_HELP[name]?.help));
      for (const [, e] of entries) line(name, e.labels, e.metric.value);
    }
    for (const [name, entries] of byName(this.gauges)) {
      out.push(...familyHeader(name, 'gauge', METRIC_HELP[name]?.help));
      for (const [, e] of entries) line(name, e.labels, e.metric.current());
    }
    for (const [name, entries] of byName(this.stats)) {
      const all = entries.map(([k, e]) => ({ labels: e.labels, s: this.snapshots.get(k) ?? new Stat() }));
      const seen = all.filter((x) => x.s.count > 0);
      const part = (suffix: string, rows: typeof all, write: (x: (typeof all)[number]) => void): void => {
        if (rows.length === 0) return;
        out.push(...familyHeader(name + suffix, 'gauge', statPartHelp(name, suffix)));
        rows.forEach(write);
      };
      part('_count', all, (x) => line(`${name}_count`, x.labels, x.s.count));
      part('_bucket', seen, ({ labels, s }) => {
        const sep = labels ? `, ${labels}` : '';
        let cum = 0;
        for (let i = 0; i < STAT_BOUNDS.length; i++) {
          cum += s.buckets[i]!;
          if (s.buckets[i]! > 0) out.push(`${name}_bucket{le="${STAT_BOUNDS[i]}"${sep}} ${cum}`);
        }
        out.push(`${name}_bucket{le="+Inf"${sep}} ${s.count}`);
      });
      part('_min', seen, (x) => line(`${name}_min`, x.labels, x.s.min));
      part('_max', seen, (x) => line(`${name}_max`, x.labels, x.s.max));
      part('_sum', seen, (x) => line(`${name}_sum`, x.labels, x.s.sum));
    }
    return out.length ? out.join('\n') + '\n' : '';
  }

  private get<T>(map: Map<string, Entry<T>>, name: string, labels: Labels, make: () => T): T {
    const rendered = renderLabels(labels);
    const key = `${name}{${rendered}}`;
    let e = map.get(key);
    if (!e) map.set(key, (e = { name, labels: rendered, metric: make() }));
    return e.metric;
  }
}
