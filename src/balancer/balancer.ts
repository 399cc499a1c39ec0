// The balancer for one destination: the endpoint set kept in step with resolutions, the
// pick, and the leases that carry each connection's load. Pure: no I/O and no timers;
// callers report outcomes through leases and pass the clock in.
//
// API for any connection implementation (node engine, native engine, the spare pool):
//   const lease = balancer.acquire({ exclude?, spare? })  // Lease | undefined: endpoint chosen, pending
//   dial lease.endpoint.host / .port, then exactly one of:
//     lease.connected(latencyUs)                        // pending → open
//     lease.release({ kind: 'failed', cause })          // connect failed: counts toward ejection
//     lease.release({ kind: 'cancelled' })              // gave up before connecting, not the endpoint's fault
//   and when an open connection ends: lease.release({ kind: 'closed', durationMs })
//   release() is idempotent and accepted in every state, so `finish()` can always call it.
// Waiting for a first resolution is the destination's WaitQueue slot (wait-queue.ts).
// Choice (pick): a weight class ∝ weight × members (classes.ts), then least-loaded P2C in it.
import type { FailFastConfig } from '../config/types.ts';
import { addrKey, type Resolution } from '../naming/resolution.ts';
import { pickFrom, type WeightClass, weightClasses } from './classes.ts';
import { DEFAULT_FAIL_FAST, Endpoint, recordConnect } from './endpoint.ts';
import { type FailureCause, Lease, type LeaseOwner, type Outcome } from './lease.ts';

export interface BalancerEvents {
  ejected?(ep: Endpoint): void;
  /** `by`: set when a passing health check ended the ejection (else its penalty, or every endpoint being ejected). */
  revived?(ep: Endpoint, by?: 'health check'): void;
  /** A lease's connect succeeded. */
  connected?(ep: Endpoint, latencyUs: number, lease: Lease): void;
  /** A lease's connect failed (after the endpoint's failure accrual). */
  failed?(ep: Endpoint, cause: FailureCause, lease: Lease): void;
  /** An open lease was released. */
  closed?(ep: Endpoint, durationMs: number | undefined, lease: Lease): void;
}

export class Balancer implements LeaseOwner {
  /** Endpoints by key, in resolution order; includes failed and retired ones. */
  readonly endpoints = new Map<string, Endpoint>();
  /** False until the first usable resolution (bound or neg) arrives. */
  resolved = false;
  lastResolution: Resolution | undefined;
  /** Client leases (not spares) still pending: connects in flight for waiting clients. */
  clientsConnecting = 0;
  /**
   * The share of new connections that land on a union branch bound to no endpoints
   * (`Resolution.emptyWeight`, normalised with the endpoints' weights): they get none.
   */
  emptyShare = 0;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly failFast: FailFastConfig;
  private readonly events: BalancerEvents;
  private available: Endpoint[] = [];
  private classes: WeightClass<Endpoint>[] = [];
  /** Told after every change of the endpoints new connections may use (see `watch`). */
  private readonly watchers = new Set<() => void>();

  constructor(opts: { random: () => number; now: () => number; failFast?: FailFastConfig | undefined; events?: BalancerEvents }) {
    this.random = opts.random;
    this.now = opts.now;
    // linkerd-tcp always ejects (DEFAULT_MAX_CONSECUTIVE_FAILURES 5, 60 s) unless configured.
    this.failFast = opts.failFast ?? DEFAULT_FAIL_FAST;
    this.events = opts.events ?? {};
  }

  /**
   * Applies a resolution. `failed` keeps the current set. Endpoints that disappear retire
   * (dropped once idle); ones that come back return with their state; weights are
   * normalised to sum 1 as linkerd-tcp did, with the empty share (if any) in the sum.
   */
  update(r: Resolution): void {
    this.lastResolution = r;
    if (r.kind === 'failed') return this.changed();
    this.resolved = true;
    const addrs = r.kind === 'bound' ? r.endpoints : [];
    const empty = r.kind === 'bound' && addrs.length ? (r.emptyWeight ?? 0) : 0;
    let total = empty;
    for (const a of addrs) total += a.weight;
    this.emptyShare = total > 0 ? empty / total : 0;
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
   * The endpoint a new connection should use, without claiming it (a plain synchronous
   * choice; `acquire` claims). `exclude` (the endpoint that just failed this connection) is
   * skipped; undefined when nothing else is available, or when a first attempt is drawn onto
   * the empty share. A retry (`exclude`) and a spare stay among endpoints: Finagle's requeues
   * happen inside the balancer of the branch already drawn, below its NameTreeFactory.
   */
  choose(exclude?: Endpoint, spare = false): Endpoint | undefined {
    this.reviveExpired();
    let classes = this.classes;
    if (exclude && this.available.includes(exclude)) classes = weightClasses(this.available.filter((e) => e !== exclude));
    return pickFrom(classes, this.random, exclude || spare ? 0 : this.emptyShare);
  }

  /**
   * `fn` runs after every change of what a pick may choose (a resolution, even a failed one, an
   * ejection, a revival, a health verdict): the native I/O threads, which pick in C, publish
   * a snapshot then (src/engine/thread-snapshot.ts). Returns the unsubscribe.
   */
  watch(fn: () => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** The endpoints a pick may choose now (available, not unhealthy), in resolution order. */
  get choosable(): readonly Endpoint[] {
    return this.available;
  }

  /** Milliseconds until the first fail-fast penalty ends (then call reviveExpired), or undefined when none is running. */
  nextRevivalIn(): number | undefined {
    let first = Infinity;
    for (const ep of this.endpoints.values()) if (ep.state.kind === 'failed' && ep.state.until < first) first = ep.state.until;
    return first === Infinity ? undefined : Math.max(0, first - this.now());
  }

  /** Chooses an endpoint and claims it with a pending lease; undefined when none is available. */
  acquire(opts: { exclude?: Endpoint | undefined; spare?: boolean } = {}): Lease | undefined {
    const ep = this.choose(opts.exclude, opts.spare ?? false);
    if (!ep) return undefined;
    return this.lease(ep, opts.spare ?? false);
  }

  /** A pending lease on a given endpoint (tests, and callers that must use one endpoint). */
  lease(ep: Endpoint, spare = false): Lease {
    ep.pending++;
    if (!spare) this.clientsConnecting++;
    return new Lease(this, ep, spare);
  }

  leaseConnected(lease: Lease, latencyUs: number): void {
    const ep = lease.endpoint;
    ep.pending--;
    ep.open++;
    if (!lease.spare) this.clientsConnecting--;
    recordConnect(ep, true, this.now(), this.failFast);
    this.events.connected?.(ep, latencyUs, lease);
  }

  leaseReleased(lease: Lease, wasOpen: boolean, outcome: Outcome): void {
    const ep = lease.endpoint;
    if (wasOpen) {
      ep.open--;
      this.events.closed?.(ep, outcome.kind === 'closed' ? outcome.durationMs : undefined, lease);
    } else {
      ep.pending--;
      if (!lease.spare) this.clientsConnecting--;
      if (outcome.kind === 'failed') this.failedConnect(ep, outcome.cause, lease);
    }
    this.dropIfRetired(ep);
  }

  /**
   * The active health check's verdict for `ep` (issue 16). It moves only this flag: a
   * fail-fast penalty ending never returns an endpoint its check calls unhealthy, and
   * reviveAll leaves it alone too.
   */
  setHealthy(ep: Endpoint, healthy: boolean | undefined): void {
    if (ep.healthy === healthy) return;
    ep.healthy = healthy;
    this.refresh();
  }

  /**
   * An active check of `ep` passed (issue 21). It ends a fail-fast ejection at once, and
   * clears the failure count, when the check's verdict is not unhealthy: Envoy's
   * `successful_active_health_check_uneject_host` (default true) does the same, and
   * HAProxy's `observe`/`on-error` errors only move the check's own health, which passing
   * checks restore. The check reached the endpoint just now; the penalty is a guess.
   */
  checkPassed(ep: Endpoint): void {
    if (ep.state.kind !== 'failed' || ep.healthy === false) return;
    ep.state = { kind: 'available' };
    ep.consecutiveFailures = 0;
    this.events.revived?.(ep, 'health check');
    this.refresh();
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

  private failedConnect(ep: Endpoint, cause: FailureCause, lease: Lease): void {
    if (recordConnect(ep, false, this.now(), this.failFast)) {
      this.events.ejected?.(ep);
      this.refresh();
      if (this.available.length === 0) this.reviveAll();
    }
    this.events.failed?.(ep, cause, lease);
  }

  private dropIfRetired(ep: Endpoint): void {
    if (ep.state.kind === 'retired' && ep.idle && this.endpoints.get(ep.key) === ep) this.endpoints.delete(ep.key);
  }

  /** Ends the fail-fast penalties that are over (a pick does it first; the I/O threads' snapshot needs it on a timer). */
  reviveExpired(): void {
    if (this.available.length === this.endpoints.size) return; // nothing failed (the common case)
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
    for (const ep of this.endpoints.values()) if (ep.state.kind === 'available' && ep.healthy !== false) this.available.push(ep);
    this.classes = weightClasses(this.available);
    this.changed();
  }

  private changed(): void {
    for (const fn of this.watchers) fn();
  }
}
