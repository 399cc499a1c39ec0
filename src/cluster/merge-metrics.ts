// The primary's /metrics over several workers, by one rule per kind. Counters add up and
// never go backwards: a worker that exits (even by SIGKILL) leaves its last counts in an
// accumulator, and a worker that misses a scrape counts with its last answer. Gauges of
// load (connections, waiters) add up; gauges of shared state (endpoints by state, health)
// are the same things seen by every worker, so they take the largest value, not the sum.
// Stats (per interval) add up over the workers alive at the scrape.
import { type MetricDump, Registry } from '../metrics/registry.ts';

/** Gauges that count per-process load, so the proxy's total is the sum over workers. */
export const SUMMED_GAUGES: ReadonlySet<string> = new Set([
  'l5d:srv:active',
  'l5d:srv:waiters',
  'l5d:balancer:connection:pending',
  'l5d:balancer:connection:open',
  'l5d:balancer:waiters',
]);

type Counter = Extract<MetricDump, { t: 'c' | 'g' }>;
type StatDump = Extract<MetricDump, { t: 's' }>;

const keyOf = (d: MetricDump): string => `${d.name}{${d.labels}}`;

/**
 * One dump for the whole proxy (pure): `retired` holds the counters of workers gone,
 * `workers` the latest dump of each live worker.
 */
export function mergeDumps(workers: readonly (readonly MetricDump[])[], retired: ReadonlyMap<string, Counter> = new Map()): MetricDump[] {
  const out = new Map<string, MetricDump>();
  for (const c of retired.values()) out.set(keyOf(c), c);
  for (const dump of workers) {
    for (const d of dump) {
      const k = keyOf(d);
      const m = out.get(k);
      if (!m) out.set(k, d);
      else if (d.t === 's' && m.t === 's') out.set(k, addStats(m, d));
      else if (d.t !== 's' && m.t === d.t) {
        const value = d.t === 'g' && !SUMMED_GAUGES.has(d.name) ? Math.max(m.value, d.value) : m.value + d.value;
        out.set(k, { ...d, value });
      }
    }
  }
  return [...out.values()];
}

function addStats(a: StatDump, b: StatDump): StatDump {
  return {
    ...a,
    count: a.count + b.count, sum: a.sum + b.sum,
    min: Math.min(a.min ?? Infinity, b.min ?? Infinity), max: Math.max(a.max ?? -Infinity, b.max ?? -Infinity),
    buckets: a.buckets.map((n, i) => n + (b.buckets[i] ?? 0)),
  };
}

/** Remembers each worker's last dump and the counters of workers gone; renders the merge. */
export class ClusterMetrics {
  private readonly last = new Map<number, readonly MetricDump[]>();
  private readonly retired = new Map<string, Counter>();
  /** Workers already folded in (ids are never reused): an answer arriving after the exit is ignored. */
  private readonly gone = new Set<number>();

  /** A worker's answer to a scrape (undefined: it did not answer in time; its last one counts). */
  update(worker: number, dump: readonly MetricDump[] | undefined): void {
    if (dump && !this.gone.has(worker)) this.last.set(worker, dump);
  }

  /** The worker exited: its counters stay in the totals; its gauges and stats go. */
  exited(worker: number): void {
    this.gone.add(worker);
    const dump = this.last.get(worker);
    this.last.delete(worker);
    if (!dump) return;
    for (const d of dump) {
      if (d.t !== 'c') continue;
      const k = keyOf(d);
      const had = this.retired.get(k);
      this.retired.set(k, { ...d, value: (had?.value ?? 0) + d.value });
    }
  }

  merged(): MetricDump[] {
    return mergeDumps([...this.last.values()], this.retired);
  }

  /** Prometheus text of the merge (the registry's own format). */
  render(): string {
    return Registry.merged([this.merged()]).render();
  }
}
