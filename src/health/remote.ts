// Health verdicts for a worker of several: watches go to the primary, whose one checker
// runs every check for the whole proxy (hub.ts), and verdicts come back. The worker runs
// no checks itself, so N workers cost one check per endpoint and interval, not N.
import { type HealthListener, type HealthSource, type HealthTarget, type HealthToPrimary, targetKey } from './source.ts';

interface Watched {
  readonly listeners: Set<HealthListener>;
  healthy: boolean | undefined;
}

export class RemoteHealth implements HealthSource {
  private readonly watched = new Map<string, Watched>();
  private readonly send: (m: HealthToPrimary) => void;

  constructor(send: (m: HealthToPrimary) => void) {
    this.send = send;
  }

  watch(target: HealthTarget, listener: HealthListener): () => void {
    const key = targetKey(target);
    let w = this.watched.get(key);
    if (!w) {
      this.watched.set(key, (w = { listeners: new Set(), healthy: undefined }));
      this.send({ type: 'health-watch', key, target });
    }
    const entry = w;
    entry.listeners.add(listener);
    const known = entry.healthy;
    if (known !== undefined) queueMicrotask(() => entry.listeners.has(listener) && listener(known, false));
    return () => {
      entry.listeners.delete(listener);
      if (entry.listeners.size > 0 || this.watched.get(key) !== entry) return;
      this.watched.delete(key);
      this.send({ type: 'health-unwatch', key });
    };
  }

  /** A verdict, or a passing check, from the primary. */
  deliver(key: string, healthy: boolean, passed: boolean): void {
    const w = this.watched.get(key);
    if (!w) return; // unwatched meanwhile
    w.healthy = healthy;
    for (const l of [...w.listeners]) l(healthy, passed);
  }

  close(): void {
    this.watched.clear();
  }
}
