// A sliding window of recent samples (the last `windowMs`, at most `capacity` of them) with
// exact quantiles, for the dashboard's latency tiles: unlike a stat's buckets it gives real
// values, does not restart at each metrics interval, and samples from several processes
// can be pooled before taking a quantile. Injected clock; recording is O(1).

export class SampleWindow {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private size = 0;
  readonly windowMs: number;
  private readonly now: () => number;

  constructor(opts: { windowMs?: number; capacity?: number; now?: () => number } = {}) {
    const capacity = opts.capacity ?? 1024;
    this.values = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
    this.windowMs = opts.windowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  record(v: number): void {
    this.values[this.next] = v;
    this.times[this.next] = this.now();
    this.next = (this.next + 1) % this.values.length;
    if (this.size < this.values.length) this.size++;
  }

  /** The samples still inside the window, oldest first. */
  recent(): number[] {
    const since = this.now() - this.windowMs;
    const out: number[] = [];
    const cap = this.values.length;
    for (let i = 0; i < this.size; i++) {
      const j = (this.next - this.size + i + cap) % cap;
      if (this.times[j]! >= since) out.push(this.values[j]!);
    }
    return out;
  }
}

/** Nearest-rank quantile of `samples` (pure); 0 when there are none. */
export function quantileOf(samples: readonly number[], q: number): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
