// The balancer for one destination: the endpoint set kept in step with resolutions, and
// the pick. Pure: no I/O and no timers; callers report outcomes and pass the clock in.
import type { FailFastConfig } from '../config/types.ts';
import { addrKey, type Resolution } from '../naming/resolution.ts';
import { Endpoint, recordConnect } from './endpoint.ts';
import { pickP2C } from './p2c.ts';

export interface BalancerEvents {
  ejected?(ep: Endpoint): void;
  revived?(ep: Endpoint): void;
}

export class Balancer {
  /** Endpoints by key, in resolution order; includes failed and retired ones. */
  readonly endpoints = new Map<string, Endpoint>();
  /** False until the first usable resolution (bound or neg) arrives. */
  resolved = false;
  lastResolution: Resolution | undefined;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly failFast: FailFastConfig | undefined;
  private readonly events: BalancerEvents;
  private available: Endpoint[] = [];

  constructor(opts: { random: () => number; now: () => number; failFast?: FailFastConfig | undefined; events?: BalancerEvents }) {
    this.random = opts.random;
    this.now = opts.now;
    this.failFast = opts.failFast;
    this.events = opts.events ?? {};
  }

  /**
   * Applies a resolution. `failed` keeps the current set. Endpoints that disappear retire
   * (dropped once idle); ones that come back return with their state; weights are
   * normalised to sum 1 as linkerd-tcp did.
   */
  update(r: Resolution): void {
    this.lastResolution = r;
    if (r.kind === 'failed') return;
    this.resolved = true;
    const addrs = r.kind === 'bound' ? r.endpoints : [];
    let total = 0;
    for (const a of addrs) total += a.weight;
    const seen = new Set<string>();
    for (const a of addrs) {
      const key = addrKey(a.host, a.port);
      seen.add(key);
      const w = total > 0 ? a.weight / total : 0;
      const ep = this.endpoints.get(key);
      if (!ep) this.endpoints.set(key, new Endpoint(key, a.host, a.port, w));
      else {
        ep.weight = w;
        if (ep.state.kind === 'retired') ep.state = { kind: 'available' };
      }
    }
    for (const [key, ep] of this.endpoints) {
      if (seen.has(key)) continue;
      if (ep.idle) this.endpoints.delete(key);
      else ep.state = { kind: 'retired' };
    }
    this.refresh();
  }

  /**
   * Picks an endpoint for a new connection and marks it pending; undefined when none.
   * `exclude` (an endpoint that just failed this connection) is skipped when any other is available.
   */
  pick(exclude?: Endpoint): Endpoint | undefined {
    this.reviveExpired();
    let from = this.available;
    if (exclude && from.includes(exclude)) {
      from = from.filter((e) => e !== exclude && e.weight > 0);
      if (from.length === 0) return undefined;
    }
    const i = pickP2C(from, this.random);
    if (i < 0) return undefined;
    const ep = from[i]!;
    ep.pending++;
    return ep;
  }

  /** The pending connect to `ep` succeeded (it is now open) or failed. */
  connected(ep: Endpoint, ok: boolean): void {
    ep.pending--;
    if (ok) ep.open++;
    if (recordConnect(ep, ok, this.now(), this.failFast)) {
      this.events.ejected?.(ep);
      this.refresh();
      if (this.available.length === 0) this.reviveAll();
    }
    if (!ok) this.dropIfRetired(ep);
  }

  /** A pending connect to `ep` was abandoned; not the endpoint's failure. */
  cancelled(ep: Endpoint): void {
    ep.pending--;
    this.dropIfRetired(ep);
  }

  /** An open connection to `ep` closed. */
  closed(ep: Endpoint): void {
    ep.open--;
    this.dropIfRetired(ep);
  }

  count(kind: 'available' | 'failed' | 'retired'): number {
    let n = 0;
    for (const ep of this.endpoints.values()) if (ep.state.kind === kind) n++;
    return n;
  }

  /** Sum over endpoints of a load field, for gauges. */
  total(field: 'open' | 'pending'): number {
    let n = 0;
    for (const ep of this.endpoints.values()) n += ep[field];
    return n;
  }

  private dropIfRetired(ep: Endpoint): void {
    if (ep.state.kind === 'retired' && ep.idle && this.endpoints.get(ep.key) === ep) this.endpoints.delete(ep.key);
  }

  private reviveExpired(): void {
    const now = this.now();
    let changed = false;
    for (const ep of this.endpoints.values()) {
      if (ep.state.kind === 'failed' && ep.state.until <= now) {
        ep.state = { kind: 'available' };
        ep.consecutiveFailures = 0;
        this.events.revived?.(ep);
        changed = true;
      }
    }
    if (changed) this.refresh();
  }

  /** linkerd-tcp: when every endpoint is ejected, all are returned to service. */
  private reviveAll(): void {
    for (const ep of this.endpoints.values()) {
      if (ep.state.kind !== 'failed') continue;
      ep.state = { kind: 'available' };
      ep.consecutiveFailures = 0;
      this.events.revived?.(ep);
    }
    this.refresh();
  }

  private refresh(): void {
    this.available = [];
    for (const ep of this.endpoints.values()) if (ep.state.kind === 'available') this.available.push(ep);
  }
}
