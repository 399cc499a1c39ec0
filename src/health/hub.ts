// The primary's side of remote.ts: every worker's watches join the one checker, so an
// endpoint several workers balance over is checked once; its verdicts go back to each
// worker watching it. A worker that exits has its watches dropped.
import type { HealthChecker } from './checker.ts';
import type { HealthToPrimary, HealthToWorker } from './source.ts';

export class HealthHub {
  private readonly checker: HealthChecker;
  /** By worker id: key → the unwatch function of that worker's listener. */
  private readonly byWorker = new Map<number, Map<string, () => void>>();

  constructor(checker: HealthChecker) {
    this.checker = checker;
  }

  /** Handles a worker's health message; `reply` sends to that worker. */
  onMessage(worker: number, m: HealthToPrimary, reply: (m: HealthToWorker) => void): void {
    let mine = this.byWorker.get(worker);
    if (!mine) this.byWorker.set(worker, (mine = new Map()));
    switch (m.type) {
      case 'health-watch': {
        if (mine.has(m.key)) return;
        const key = m.key;
        mine.set(key, this.checker.watch(m.target, (healthy, passed) => reply({ type: 'health', key, healthy, passed })));
        return;
      }
      case 'health-unwatch':
        mine.get(m.key)?.();
        mine.delete(m.key);
        return;
    }
  }

  /** A worker exited: its watches end (a restarted worker watches again). */
  dropWorker(worker: number): void {
    for (const unwatch of this.byWorker.get(worker)?.values() ?? []) unwatch();
    this.byWorker.delete(worker);
  }

  close(): void {
    for (const w of [...this.byWorker.keys()]) this.dropWorker(w);
    this.checker.close();
  }
}
