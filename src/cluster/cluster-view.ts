// What the primary of several workers shows operators: its own warnings ("worker exited;
// restarting") kept beside the workers' in recent errors, /metrics merged by one rule per
// kind (see merge-metrics.ts), and /api/state merged over the workers with every process
// of the tree. primary.ts asks the workers; this module only combines their answers.
import type { ProcessInfo } from '../admin/process-metrics.ts';
import { RecentErrors, teeErrors } from '../admin/recent-errors.ts';
import type { AppState } from '../admin/state.ts';
import type { Logger } from '../log.ts';
import type { MetricDump } from '../metrics/registry.ts';
import { ClusterMetrics } from './merge-metrics.ts';
import { mergeStates } from './merge-state.ts';

/** One worker's answer to a question (undefined: it did not answer in time, or is gone). */
export interface WorkerAnswer {
  readonly worker: number;
  readonly value: unknown;
}

export class ClusterView {
  readonly errors = new RecentErrors();
  /** The primary's logger: writes as before, and keeps its warnings for the dashboard. */
  readonly log: Logger;
  private readonly metrics = new ClusterMetrics();

  constructor(log: Logger) {
    this.log = teeErrors(log, this.errors);
  }

  /** Every worker's series merged, from their answers to 'metrics' (the admin server renders them). */
  mergedMetrics(answers: readonly WorkerAnswer[]): MetricDump[] {
    for (const a of answers) this.metrics.update(a.worker, Array.isArray(a.value) ? (a.value as MetricDump[]) : undefined);
    return this.metrics.merged();
  }

  /** /api/state over every worker that answered, from their answers to 'state'. */
  state(primary: ProcessInfo, answers: readonly WorkerAnswer[]): AppState {
    const states = answers.flatMap((a) => (isState(a.value) ? [{ worker: a.worker, state: a.value }] : []));
    return mergeStates({ process: primary, recentErrors: this.errors.list() }, states);
  }

  /** A worker exited (for whatever reason): its counters stay in the totals. */
  exited(worker: number): void {
    this.metrics.exited(worker);
  }
}

function isState(v: unknown): v is AppState {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'routers' in v && 'servers' in v;
}
