// Keeps one destination's endpoints under active health checks (when its client config
// has `healthCheck`): watches each endpoint in the balancer's set, stops watching retired
// and removed ones, and hands each verdict to the balancer's `setHealthy` (a flag beside
// the passive fail-fast state; the pick needs both) and each pass to its `checkPassed` (a
// pass ends a fail-fast ejection). Destinations without a check have none.
import type { Balancer } from '../balancer/balancer.ts';
import type { HealthCheckConfig } from '../config/types.ts';
import type { HealthSource } from '../health/source.ts';

export class HealthWatch {
  private readonly balancer: Balancer;
  private readonly source: HealthSource;
  private readonly rt: string;
  private readonly dst: string;
  private readonly check: HealthCheckConfig;
  /** By endpoint key: the unwatch function and the last verdict. */
  private readonly watched = new Map<string, { unwatch: () => void; healthy: boolean | undefined }>();

  constructor(opts: { balancer: Balancer; source: HealthSource; rt: string; dst: string; check: HealthCheckConfig }) {
    this.balancer = opts.balancer;
    this.source = opts.source;
    this.rt = opts.rt;
    this.dst = opts.dst;
    this.check = opts.check;
  }

  /** After each resolution: watch new endpoints, unwatch gone or retired ones. */
  sync(): void {
    const eps = this.balancer.endpoints;
    for (const [key, w] of this.watched) {
      const ep = eps.get(key);
      if (!ep || ep.state.kind === 'retired') {
        w.unwatch();
        this.watched.delete(key);
      }
    }
    for (const [key, ep] of eps) {
      if (ep.state.kind === 'retired') continue;
      const w = this.watched.get(key);
      if (w) {
        if (ep.healthy !== w.healthy) this.balancer.setHealthy(ep, w.healthy); // a re-added endpoint is a new object
        continue;
      }
      const entry = { unwatch: () => {}, healthy: undefined as boolean | undefined };
      this.watched.set(key, entry);
      entry.unwatch = this.source.watch({ rt: this.rt, dst: this.dst, host: ep.host, port: ep.port, check: this.check }, (healthy, passed) => {
        entry.healthy = healthy;
        const cur = this.balancer.endpoints.get(key);
        if (!cur || this.watched.get(key) !== entry) return;
        this.balancer.setHealthy(cur, healthy); // first: a pass ends an ejection only once the verdict is healthy
        if (passed) this.balancer.checkPassed(cur);
      });
    }
  }

  close(): void {
    for (const w of this.watched.values()) w.unwatch();
    this.watched.clear();
  }
}
