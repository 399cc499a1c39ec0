// One destination name inside a router: its balancer, its subscription to the interpreter,
// the connections waiting for a first resolution, and its metrics.
import { Balancer } from '../balancer/balancer.ts';
import type { Endpoint } from '../balancer/endpoint.ts';
import type { ConnectorConfig } from '../config/types.ts';
import type { ConnectFailureCause } from '../connector/dial.ts';
import { type ClientTls, TLS_CONNECT_TIMEOUT_MS } from '../connector/tls-client.ts';
import type { Interpreter, Watch } from '../interpreter/interpreter.ts';
import type { Logger } from '../log.ts';
import { type DestinationMetrics, destinationMetrics } from '../metrics/handles.ts';
import type { Registry } from '../metrics/registry.ts';
import type { Resolution } from '../naming/resolution.ts';
import type { Connection } from './connection.ts';
import { SparePool } from './pool.ts';

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
  readonly waiters = new Set<Connection>();
  private readonly log: Logger;
  private readonly watch: Watch;
  private readonly pool: SparePool | undefined;

  constructor(opts: {
    name: string; rt: string; config: ConnectorConfig; interpreter: Interpreter; registry: Registry; log: Logger;
    random: () => number; now: () => number; highWaterMark: number; tls: ClientTls | undefined;
  }) {
    this.name = opts.name;
    this.config = opts.config;
    this.tls = opts.tls;
    this.connectTimeoutMs = opts.config.connectTimeoutMs ?? (opts.tls ? TLS_CONNECT_TIMEOUT_MS : undefined);
    this.log = opts.log.child({ dst: opts.name });
    const b = (this.balancer = new Balancer({
      random: opts.random,
      now: opts.now,
      failFast: opts.config.failFast,
      events: {
        ejected: (ep) => this.log.warn({ endpoint: ep.key, failures: ep.consecutiveFailures }, 'endpoint ejected'),
        revived: (ep) => this.log.info({ endpoint: ep.key }, 'endpoint revived'),
      },
    }));
    this.metrics = destinationMetrics(opts.registry, opts.rt, opts.name, {
      available: () => b.count('available'),
      failed: () => b.count('failed'),
      retired: () => b.count('retired'),
      pending: () => b.total('pending'),
      open: () => b.total('open'),
      waiters: () => this.waiters.size + this.connecting,
    });
    this.pool = opts.config.minConnections > 0
      ? new SparePool({
        size: opts.config.minConnections, balancer: b, highWaterMark: opts.highWaterMark,
        connectTimeoutMs: this.connectTimeoutMs, tls: opts.tls,
        onConnectResult: (ep, ok, cause, latencyUs) => this.recordConnect(ep, ok, cause, latencyUs),
      })
      : undefined;
    this.watch = opts.interpreter.watch(opts.name, (r) => this.onResolution(r));
  }

  /** Connects in flight (they count against maxWaiters with the connections still waiting). */
  connecting = 0;

  /** Routes a new connection: dial now, or wait for the first resolution. */
  dispatch(conn: Connection): void {
    if (this.waiters.size + this.connecting >= this.config.maxWaiters) {
      this.metrics.waitersRejected.value++;
      conn.finish('waiters_full');
      return;
    }
    if (!this.balancer.resolved) {
      this.waiters.add(conn);
      return;
    }
    const spare = this.pool?.take();
    if (spare) {
      this.metrics.pooled.value++;
      conn.adopt(this, spare.socket, spare.endpoint);
      return;
    }
    this.dial(conn, this.balancer.pick());
  }

  /** Dials `next` (already picked, and pending) for a connection whose previous attempt failed. */
  retry(conn: Connection, next: Endpoint): void {
    this.metrics.retries.value++;
    this.dial(conn, next);
  }

  private dial(conn: Connection, ep: Endpoint | undefined): void {
    if (!ep) {
      this.metrics.unavailable.value++;
      conn.finish('no_endpoints');
      return;
    }
    this.metrics.attempts.value++;
    this.connecting++;
    if (this.log.isLevelEnabled('debug')) this.log.debug({ endpoint: ep.key, attempt: conn.attempts + 1 }, 'connecting');
    conn.dial(this, ep);
  }

  connectSucceeded(ep: Endpoint, latencyUs: number): void {
    this.connecting--;
    this.recordConnect(ep, true, undefined, latencyUs);
  }

  /** Balancer state, metrics and logs for one connect outcome (clients' and the pool's). */
  private recordConnect(ep: Endpoint, ok: boolean, cause: ConnectFailureCause | undefined, latencyUs: number): void {
    this.balancer.connected(ep, ok);
    const m = this.metrics;
    if (ok) {
      m.connects.value++;
      m.latencyUs.record(latencyUs);
      return;
    }
    if (cause === 'timeout') m.failureTimeout.value++;
    else if (cause === 'refused') m.failureRefused.value++;
    else m.failureOther.value++;
    if (this.log.isLevelEnabled('info')) this.log.info({ endpoint: ep.key, cause }, 'connect failed');
  }

  /** An open connection to `ep` closed after `durationMs`. */
  closed(ep: Endpoint, durationMs: number): void {
    this.metrics.durationMs.record(durationMs);
    this.balancer.closed(ep);
  }

  /** A connect abandoned for reasons not the endpoint's (client gone, shutdown). */
  connectCancelled(ep: Endpoint): void {
    this.connecting--;
    this.balancer.cancelled(ep);
  }

  connectFailed(ep: Endpoint, cause: ConnectFailureCause): void {
    this.connecting--;
    this.recordConnect(ep, false, cause, 0);
  }

  close(): void {
    this.watch.close();
    this.pool?.close();
  }

  private onResolution(r: Resolution): void {
    const before = new Set(this.balancer.endpoints.keys());
    this.balancer.update(r);
    switch (r.kind) {
      case 'failed':
        this.log.warn({ reason: r.reason, keeping: this.balancer.count('available') }, 'resolution failed; keeping the last endpoints');
        if (!this.balancer.resolved) this.failWaiters();
        return;
      case 'neg':
        this.log.info({}, 'name does not exist (neg): no endpoints');
        break;
      case 'bound': {
        const now = new Set(this.balancer.endpoints.keys());
        for (const k of now) if (!before.has(k)) this.log.info({ endpoint: k }, 'endpoint added');
        for (const k of before) if (!now.has(k) || this.balancer.endpoints.get(k)?.state.kind === 'retired') this.log.info({ endpoint: k }, 'endpoint removed');
        break;
      }
    }
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const c of waiting) this.dispatch(c);
    this.pool?.fill();
  }

  private failWaiters(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const c of waiting) c.finish('resolution_failed');
  }
}
