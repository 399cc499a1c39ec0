// What the native I/O threads pick from: a destination's choosable endpoints, published to
// the addon as an immutable snapshot (native/io-thread.h io_dest_t) whenever the balancer
// changes (a resolution, an ejection, a revival, a health verdict), with the destination's
// connect settings. Each endpoint gets an id, stable while the balancer knows it, that
// indexes the load every thread shares; the threads' records name endpoints by it.
// Hosts that are names (not IP literals) are looked up here first: the threads connect to
// addresses only. A fail-fast penalty ends on a timer (a pick in JavaScript would notice
// it; the threads never ask).
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Endpoint } from '../balancer/endpoint.ts';
import type { Logger } from '../log.ts';
import type { Destination } from '../router/destination.ts';
import type { NativeBinding } from './native-binding.ts';

/** native/io-thread.h IO_MAX_ENDPOINTS: ids (and so endpoints known at once) per server. */
export const MAX_ENDPOINT_IDS = 1024;
/** How long a looked-up name's address is used before it is looked up again. */
const NAME_TTL_MS = 30_000;

export class ThreadSnapshot {
  private readonly idOf = new Map<Endpoint, number>();
  private readonly byId: (Endpoint | undefined)[] = [];
  private readonly freeIds: number[] = [];
  private readonly names = new Map<string, { addr: string | undefined; at: number; pending: boolean }>();
  private dest: Destination | undefined;
  private unwatch: (() => void) | undefined;
  private queued = false;
  private revival: NodeJS.Timeout | undefined;
  private warnedFull = false;

  private readonly binding: NativeBinding;
  /** The server's thread group (undefined before it listens and once its threads ended). */
  private readonly handle: () => number | undefined;
  private readonly log: Logger;

  constructor(binding: NativeBinding, handle: () => number | undefined, log: Logger) {
    this.binding = binding;
    this.handle = handle;
    this.log = log;
  }

  /** The endpoint an id of the threads' records names (kept until the id is given to another). */
  endpoint(id: number): Endpoint | undefined {
    return id >= 0 ? this.byId[id] : undefined;
  }

  /** Publishes `dest`'s endpoints from now on (a reload may give the server another). */
  follow(dest: Destination): void {
    if (dest === this.dest) return;
    this.unwatch?.();
    this.dest = dest;
    this.unwatch = dest.balancer.watch(() => this.schedule());
    this.schedule();
  }

  /** One publication per turn, however many changes came in it. */
  private schedule(): void {
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      this.publish();
    });
  }

  publish(): void {
    const dest = this.dest, id = this.handle();
    if (!dest || id === undefined) return;
    const b = dest.balancer;
    // Before any answer, nothing is published: the threads' connections wait (up to the
    // server's deadline). A failed first answer publishes an empty snapshot: they close.
    if (!b.resolved && b.lastResolution?.kind !== 'failed') return;
    for (const [ep, n] of this.idOf) {
      if (b.endpoints.get(ep.key) === ep) continue;
      this.idOf.delete(ep); // gone from the balancer: its id may go to another endpoint
      this.freeIds.push(n);
    }
    const hosts: string[] = [], ports: number[] = [], weights: number[] = [], ids: number[] = [];
    for (const ep of b.choosable) {
      const addr = this.address(ep.host);
      const n = this.idFor(ep);
      if (addr === undefined || n === undefined) continue;
      hosts.push(addr);
      ports.push(ep.port);
      weights.push(ep.weight);
      ids.push(n);
    }
    const attempts = dest.config.connectAttempts;
    this.binding.ioPublish(id, hosts, ports, weights, ids, b.emptyShare, dest.connectTimeoutMs ?? 0, Math.max(0, attempts - 1));
    clearTimeout(this.revival);
    const wait = b.nextRevivalIn();
    if (wait !== undefined) {
      this.revival = setTimeout(() => b.reviveExpired(), wait + 1);
      this.revival.unref();
    }
  }

  private idFor(ep: Endpoint): number | undefined {
    let n = this.idOf.get(ep);
    if (n !== undefined) return n;
    n = this.freeIds.pop() ?? (this.byId.length < MAX_ENDPOINT_IDS ? this.byId.length : undefined);
    if (n === undefined) {
      if (!this.warnedFull) this.log.warn({ max: MAX_ENDPOINT_IDS }, 'more endpoints than the I/O threads can index: the rest are not used');
      this.warnedFull = true;
      return undefined;
    }
    this.idOf.set(ep, n);
    this.byId[n] = ep;
    return n;
  }

  /** An IP literal as it is; a name's last address (looked up in the background, then published again). */
  private address(host: string): string | undefined {
    if (isIP(host)) return host;
    const now = Date.now();
    const known = this.names.get(host);
    if (known && (known.pending || now - known.at < NAME_TTL_MS)) return known.addr;
    const entry = { addr: known?.addr, at: now, pending: true };
    this.names.set(host, entry);
    lookup(host).then(
      (a) => {
        entry.pending = false;
        entry.at = Date.now();
        if (a.address !== entry.addr) {
          entry.addr = a.address;
          this.schedule();
        }
      },
      (e: NodeJS.ErrnoException) => {
        entry.pending = false;
        entry.at = Date.now();
        this.log.warn({ host, err: e.code ?? e.message }, 'endpoint name does not resolve; not used');
      },
    );
    return entry.addr;
  }

  close(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    clearTimeout(this.revival);
  }
}
