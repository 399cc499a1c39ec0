// A router: destination name → Destination (balancer + subscription), created on first
// use and cached. Connections enter through `route`; everything after is the destination's.
import { performance } from 'node:perf_hooks';
import { connectorConfigFor } from '../connector/client-config.ts';
import type { ClientConfig, ClientTlsConfig } from '../config/types.ts';
import { ClientTls } from '../connector/tls-client.ts';
import type { HealthSource } from '../health/source.ts';
import type { Interpreter } from '../interpreter/interpreter.ts';
import type { Logger } from '../log.ts';
import type { Counter, Registry, Stat } from '../metrics/registry.ts';
import type { Connection } from './connection.ts';
import { Destination } from './destination.ts';
import { SniLru } from './sni-lru.ts';

export class Router {
  readonly label: string;
  readonly interpreter: Interpreter;
  readonly destinations = new Map<string, Destination>();
  private readonly client: ClientConfig;
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly routeCreate: Counter;
  private readonly routeFound: Counter;
  private readonly routeError: Counter;
  private readonly routeTimeUs: Stat;
  private readonly highWaterMark: number;
  /** The TLS origination context for each `tls` setting of this router's client config. */
  private readonly clientTls: ReadonlyMap<ClientTlsConfig, ClientTls>;
  /** Who runs active health checks (destinations with `healthCheck` use it). */
  private readonly health: HealthSource | undefined;

  constructor(opts: {
    label: string; interpreter: Interpreter; client: ClientConfig; registry: Registry; log: Logger;
    random?: () => number; now?: () => number; highWaterMark: number; clientTls?: ReadonlyMap<ClientTlsConfig, ClientTls>;
    health?: HealthSource | undefined;
    /** Bound on destinations created from SNI names (routeSni). */
    maxSniDestinations?: number | undefined;
  }) {
    this.sni = new SniLru(opts.maxSniDestinations ?? 1000);
    opts.registry.gauge('l5d:sni:destinations', { rt: opts.label }, () => this.sni.size);
    this.sniEvictions = opts.registry.counter('l5d:sni:evictions', { rt: opts.label });
    this.health = opts.health;
    this.clientTls = opts.clientTls ?? new Map();
    this.highWaterMark = opts.highWaterMark;
    this.label = opts.label;
    this.interpreter = opts.interpreter;
    this.client = opts.client;
    this.registry = opts.registry;
    this.log = opts.log.child({ rt: opts.label });
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    this.routeCreate = opts.registry.counter('l5d:route_create', { rt: opts.label });
    this.routeFound = opts.registry.counter('l5d:route_found', { rt: opts.label });
    this.routeError = opts.registry.counter('l5d:route_error', { rt: opts.label });
    this.routeTimeUs = opts.registry.stat('l5d:route_time_us', { rt: opts.label });
  }

  /** The destination for `dst`, created (and subscribed) on first use. */
  destination(dst: string): Destination {
    let d = this.destinations.get(dst);
    if (d) {
      this.routeFound.value++;
      return d;
    }
    this.routeCreate.value++;
    const config = connectorConfigFor(this.client, dst);
    d = new Destination({
      name: dst, rt: this.label, config, interpreter: this.interpreter, tls: config.tls ? (this.clientTls.get(config.tls) ?? new ClientTls(config.tls, `router ${this.label} client.tls`)) : undefined,
      registry: this.registry, log: this.log, random: this.random, now: this.now, highWaterMark: this.highWaterMark,
      health: this.health,
    });
    this.destinations.set(dst, d);
    return d;
  }

  /** Finds (or creates) the destination and hands it the connection; `l5d:route_time_us` is that lookup. */
  route(conn: Connection, dst: string): void {
    const t0 = performance.now();
    let d: Destination;
    try {
      d = this.destination(dst);
    } catch (e) {
      // linkerd-tcp's route_error: no connector for this name (e.g. its TLS material cannot be loaded).
      this.routeError.value++;
      this.log.error({ dst, err: (e as Error).message }, 'route failed');
      conn.finish('connect_failed', e as Error);
      return;
    } finally {
      this.routeTimeUs.record((performance.now() - t0) * 1000);
    }
    conn.route(d);
  }

  /** SNI-created destinations (LRU) and how many were evicted. */
  readonly sni: SniLru;
  private readonly sniEvictions: Counter;

  /**
   * Routes to a destination named from a client's SNI: such names are kept in an LRU, and
   * the least recently used one is closed (subscription, spares, metric series) when full.
   * A name that is also a server's fixed destination is never tracked or evicted.
   */
  routeSni(conn: Connection, dst: string): void {
    this.touchSni(dst);
    this.route(conn, dst);
  }

  /** The LRU bookkeeping of routeSni, for engines that route by themselves (src/engine/). */
  touchSni(dst: string): void {
    if (this.sni.has(dst) || !this.destinations.has(dst)) {
      // A destination with connections waiting on it is kept: closing it would strand them.
      for (const old of this.sni.touch(dst, (n) => (this.destinations.get(n)?.waiting ?? 0) > 0)) {
        const d = this.destinations.get(old);
        this.destinations.delete(old);
        this.sniEvictions.value++;
        if (!d) continue;
        d.close(); // open connections keep their leases
        this.registry.removeWhere((_n, l) => l.includes(`dst=${JSON.stringify(old)}`) && l.includes(`rt=${JSON.stringify(this.label)}`));
        if (this.log.isLevelEnabled('debug')) this.log.debug({ dst: old }, 'SNI destination evicted (least recently used)');
      }
    }
  }

  async close(): Promise<void> {
    for (const d of this.destinations.values()) d.close();
    await this.interpreter.close();
  }
}
