// One destination name inside a router: its balancer, its subscription to the interpreter,
// the connections waiting for a first resolution, and its metrics.
//
// API for a connection implementation (node engine here, the native engine's too):
//   const g = dest.request(waiter)   // Grant, answered synchronously:
//     { kind: 'lease', lease }       // dial lease.endpoint; report through the lease (balancer.ts)
//     { kind: 'wait', slot }         // no resolution yet: waiter.granted(lease | fail) comes later,
//                                    // once, unless slot.cancel() was called first (do it on finish)
//     { kind: 'fail', reason }       // close the client with this reason
//   after a failed attempt: lease.release({ kind: 'failed', cause }), then dest.retry(failedEndpoint)
// A connection owns at most one lease and one slot; finishing releases the one and cancels the other.
import { performance } from 'node:perf_hooks';
import { Balancer } from '../balancer/balancer.ts';
import type { Endpoint } from '../balancer/endpoint.ts';
import type { Lease } from '../balancer/lease.ts';
import { type Slot, WaitQueue } from '../balancer/wait-queue.ts';
import type { ConnectorConfig } from '../config/types.ts';
import { type ClientTls, TLS_CONNECT_TIMEOUT_MS } from '../connector/tls-client.ts';
import type { Interpreter, Watch } from '../interpreter/interpreter.ts';
import type { Logger } from '../log.ts';
import { type DestinationMetrics, destinationMetrics } from '../metrics/handles.ts';
import type { Registry } from '../metrics/registry.ts';
import type { Resolution } from '../naming/resolution.ts';
import type { HealthSource } from '../health/source.ts';
import { HealthWatch } from './health-watch.ts';
import { TransitionLog } from './transition-log.ts';
import { type Spare, SparePool } from './pool.ts';

/**
 * How long a connection may wait for a destination's first resolution (the server's
 * connectTimeoutMs ends it sooner when shorter). linkerd-tcp: waited for ever without one.
 */
export const FIRST_RESOLUTION_WAIT_MS = 10_000;
/** Endpoints logged one by one per resolution change, each way; the rest as a count. */
const LOG_EACH_MAX = 10;

export type FailReason = 'no_endpoints' | 'resolution_failed' | 'resolution_timeout' | 'waiters_full';

export type Grant =
  | { readonly kind: 'lease'; readonly lease: Lease }
  | { readonly kind: 'wait'; readonly slot: Slot }
  | { readonly kind: 'fail'; readonly reason: FailReason };

/** A connection waiting in a destination's queue. */
export interface Waiter {
  /** The wait is over: a pending lease or a failure (never another wait). */
  granted(g: Grant): void;
}

export class Destination {
  readonly name: string;
  readonly config: ConnectorConfig;
  /** TLS origination, when the client config for this name has `tls`. */
  readonly tls: ClientTls | undefined;
  /** Per connect attempt: the config's, else (over TLS only) TLS_CONNECT_TIMEOUT_MS. */
  readonly connectTimeoutMs: number | undefined;
  readonly balancer: Balancer;
  readonly metrics: DestinationMetrics;
  /** Connections accepted before the first resolution, in arrival order. */
  readonly waiters = new WaitQueue<Waiter>();
  private readonly log: Logger;
  private readonly watch: Watch;
  private readonly pool: SparePool | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  /** Active health checks of this destination's endpoints, when its client config has them. */
  private readonly health: HealthWatch | undefined;
  /** Ejections and revivals, logged with a flapping endpoint's repeats summarised. */
  private readonly transitions: TransitionLog;

  constructor(opts: {
    name: string; rt: string; config: ConnectorConfig; interpreter: Interpreter; registry: Registry; log: Logger;
    random: () => number; now: () => number; highWaterMark: number; tls: ClientTls | undefined;
    health?: HealthSource | undefined;
  }) {
    this.name = opts.name;
    this.config = opts.config;
    this.tls = opts.tls;
    this.connectTimeoutMs = opts.config.connectTimeoutMs ?? (opts.tls ? TLS_CONNECT_TIMEOUT_MS : undefined);
    this.log = opts.log.child({ dst: opts.name });
    this.transitions = new TransitionLog({ log: this.log, now: opts.now });
    const b = (this.balancer = new Balancer({
      random: opts.random,
      now: opts.now,
      failFast: opts.config.failFast,
      events: {
        ejected: (ep) => this.transitions.ejected(ep.key, ep.consecutiveFailures),
        revived: (ep, by) => this.transitions.revived(ep.key, by),
        connected: (_ep, latencyUs) => {
          this.metrics.connects.value++;
          this.metrics.latencyUs.record(latencyUs);
        },
        failed: (ep, cause) => {
          const m = this.metrics;
          if (cause === 'timeout') m.failureTimeout.value++;
          else if (cause === 'refused') m.failureRefused.value++;
          else m.failureOther.value++;
          if (this.log.isLevelEnabled('info')) this.log.info({ endpoint: ep.key, cause }, 'connect failed');
        },
        closed: (_ep, durationMs) => {
          if (durationMs !== undefined) this.metrics.durationMs.record(durationMs);
        },
      },
    }));
    this.metrics = destinationMetrics(opts.registry, opts.rt, opts.name, {
      available: () => b.count('available'),
      failed: () => b.count('failed'),
      retired: () => b.count('retired'),
      pending: () => b.total('pending'),
      open: () => b.total('open'),
      waiters: () => this.waiting,
    });
    this.pool = opts.config.minConnections > 0
      ? new SparePool({
        size: opts.config.minConnections, balancer: b, highWaterMark: opts.highWaterMark,
        connectTimeoutMs: this.connectTimeoutMs, tls: opts.tls,
      })
      : undefined;
    const hc = opts.config.healthCheck;
    this.health = hc && opts.health ? new HealthWatch({ balancer: b, source: opts.health, rt: opts.rt, dst: opts.name, check: hc }) : undefined;
    this.watch = opts.interpreter.watch(opts.name, (r) => this.onResolution(r));
  }

  /** Connections queued for a first resolution plus client connects in flight (maxWaiters counts both). */
  get waiting(): number {
    return this.waiters.size + this.balancer.clientsConnecting;
  }

  /** An endpoint for a new connection now, a slot in the queue, or the reason to close it. */
  request(w: Waiter): Grant {
    if (this.waiting >= this.config.maxWaiters) {
      this.metrics.waitersRejected.value++;
      return { kind: 'fail', reason: 'waiters_full' };
    }
    if (this.balancer.resolved) return this.leaseNow();
    // Not bound yet, and the last answer was a failure: fail at once, as linkerd 1 does.
    if (this.balancer.lastResolution?.kind === 'failed') return { kind: 'fail', reason: 'resolution_failed' };
    const slot = this.waiters.add(w, performance.now());
    this.armWaitTimer();
    return { kind: 'wait', slot };
  }

  /** A pre-connected spare (minConnections), detached from the pool: its lease is already open. */
  takeSpare(): Spare | undefined {
    // With an empty union branch, a client must be drawn (request) so that its share fails.
    if (!this.pool || !this.balancer.resolved || this.balancer.emptyShare > 0) return undefined;
    const spare = this.pool.take();
    if (spare) this.metrics.pooled.value++;
    return spare;
  }

  /** Another endpoint after a failed attempt (whose lease the caller has released), or undefined. */
  retry(failed: Endpoint): Lease | undefined {
    const t0 = performance.now();
    const lease = this.balancer.acquire({ exclude: failed });
    this.metrics.pollTimeUs.record((performance.now() - t0) * 1000);
    if (lease) {
      this.metrics.retries.value++;
      this.metrics.attempts.value++;
    }
    return lease;
  }

  private leaseNow(): Grant {
    const t0 = performance.now();
    const lease = this.balancer.acquire();
    this.metrics.pollTimeUs.record((performance.now() - t0) * 1000);
    if (!lease) {
      this.metrics.unavailable.value++;
      return { kind: 'fail', reason: 'no_endpoints' };
    }
    this.metrics.attempts.value++;
    if (this.log.isLevelEnabled('debug')) this.log.debug({ endpoint: lease.endpoint.key }, 'connecting');
    return { kind: 'lease', lease };
  }

  close(): void {
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    this.watch.close();
    this.health?.close();
    this.transitions.close();
    this.pool?.close();
  }

  private onResolution(r: Resolution): void {
    const before = new Set(this.balancer.endpoints.keys());
    // Retired endpoints with open connections stay in the set: log their removal once, not at every change.
    const wasRetired = new Set([...this.balancer.endpoints.values()].filter((e) => e.state.kind === 'retired').map((e) => e.key));
    const emptyBefore = this.balancer.emptyShare;
    const t0 = performance.now();
    this.balancer.update(r);
    this.health?.sync();
    this.metrics.pollTimeUs.record((performance.now() - t0) * 1000);
    switch (r.kind) {
      case 'failed':
        this.log.warn({ reason: r.reason, keeping: this.balancer.count('available') }, 'resolution failed; keeping the last endpoints');
        if (!this.balancer.resolved) this.release({ kind: 'fail', reason: 'resolution_failed' });
        return;
      case 'neg':
        this.log.info({}, 'name does not exist (neg): no endpoints');
        break;
      case 'bound': {
        const now = new Set(this.balancer.endpoints.keys());
        const added: string[] = [];
        const removed: string[] = [];
        for (const k of now) if (!before.has(k)) added.push(k);
        for (const k of before) if (!wasRetired.has(k) && (!now.has(k) || this.balancer.endpoints.get(k)?.state.kind === 'retired')) removed.push(k);
        // A flapping control plane can swap thousands of endpoints several times a second:
        // log the first few of each change, then one line with the count.
        for (const k of added.slice(0, LOG_EACH_MAX)) this.log.info({ endpoint: k }, 'endpoint added');
        if (added.length > LOG_EACH_MAX) this.log.info({ more: added.length - LOG_EACH_MAX, total: added.length }, 'more endpoints added');
        for (const k of removed.slice(0, LOG_EACH_MAX)) this.log.info({ endpoint: k }, 'endpoint removed');
        if (removed.length > LOG_EACH_MAX) this.log.info({ more: removed.length - LOG_EACH_MAX, total: removed.length }, 'more endpoints removed');
        const empty = this.balancer.emptyShare;
        if (empty !== emptyBefore) {
          // Not silent: the connections drawn onto an empty union branch fail as no_endpoints.
          if (empty > 0) this.log.warn({ emptyShare: Math.round(empty * 1e4) / 1e4 }, 'a weighted branch of this name has no endpoints: its share of connections fails');
          else this.log.info({}, 'no weighted branch of this name is empty any more');
        }
        break;
      }
    }
    this.release(undefined);
    this.pool?.fill();
  }

  /** Ends every wait: with `g`, or each with a fresh lease (or no_endpoints) when undefined. */
  private release(g: Grant | undefined): void {
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    for (const w of this.waiters.drain()) w.granted(g ?? this.leaseNow());
  }

  /** One timer for the oldest waiter; each expiry fails the waiters past the bound. */
  private armWaitTimer(): void {
    const oldest = this.waiters.oldest;
    if (this.waitTimer || oldest === undefined) return;
    this.waitTimer = setTimeout(() => {
      this.waitTimer = undefined;
      for (const w of this.waiters.expire(performance.now() - FIRST_RESOLUTION_WAIT_MS)) w.granted({ kind: 'fail', reason: 'resolution_timeout' });
      this.armWaitTimer();
    }, Math.max(0, oldest + FIRST_RESOLUTION_WAIT_MS - performance.now()));
    this.waitTimer.unref();
  }
}
