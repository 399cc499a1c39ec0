// What the native I/O threads pick from: a destination's choosable endpoints, published to
// the addon as an immutable snapshot (native/io-thread.h io_dest_t) whenever the balancer
// changes (a resolution, an ejection, a revival, a health verdict), with the destination's
// connect settings. Each endpoint address (`host:port`) gets an id, which indexes the load
// every thread shares and names the endpoint in the threads' records. An address keeps its
// id while the threads may still use it (a reload's new destination included): an id is
// given to another address only once its address has left the balancer and its load in the
// threads has read 0 for a second (every record naming it has been read, and no thread can
// still be inside a batch that read an older snapshot naming it). Hosts that are names (not
// IP literals) are looked up here first, again at a publication 30 s later or more: the
// threads connect to addresses only. A fail-fast penalty ends on a timer (a pick in
// JavaScript would notice it; the threads never ask). The threads also leave out, at once,
// an endpoint whose last maxConsecutiveFailures connects failed (before the records reach
// the balancer); an endpoint published with no failure counted against it starts again.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { DEFAULT_FAIL_FAST } from '../balancer/endpoint.ts';
import type { Logger } from '../log.ts';
import type { Destination } from '../router/destination.ts';
import type { NativeBinding } from './native-binding.ts';

/** native/io-thread.h IO_MAX_ENDPOINTS: ids (and so endpoint addresses known at once) per server. */
export const MAX_ENDPOINT_IDS = 1024;
/** How long a looked-up name's address is used before a publication looks it up again. */
const NAME_TTL_MS = 30_000;
/** How long a freed id waits before another address may take it. */
const ID_COOLING_MS = 1000;

export class ThreadSnapshot {
  private readonly idOf = new Map<string, number>();
  private readonly keyOf: (string | undefined)[] = [];
  private readonly freeIds: number[] = [];
  /** Ids whose address left the balancer: id → since when its load has read 0 (ms; undefined: not yet). */
  private readonly cooling = new Map<number, number | undefined>();
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

  /** The `host:port` an id of the threads' records names. */
  key(id: number): string | undefined {
    return id >= 0 ? this.keyOf[id] : undefined;
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
      try {
        this.publish();
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'could not publish endpoints to the I/O threads; they keep the previous ones');
      }
    });
  }

  private publish(): void {
    const dest = this.dest, id = this.handle();
    if (!dest || id === undefined) return;
    const b = dest.balancer;
    // Before any answer, nothing is published: the threads' connections wait (up to the
    // server's deadline). A failed first answer publishes an empty snapshot: they close.
    if (!b.resolved && b.lastResolution?.kind !== 'failed') return;
    this.recycle(id, new Set(b.endpoints.keys()));
    const hosts: string[] = [], ports: number[] = [], weights: number[] = [], ids: number[] = [], resets: boolean[] = [];
    for (const ep of b.choosable) {
      const addr = this.address(ep.host);
      const n = this.idFor(ep.key);
      if (addr === undefined || n === undefined) continue;
      hosts.push(addr);
      ports.push(ep.port);
      weights.push(ep.weight);
      ids.push(n);
      resets.push(ep.consecutiveFailures === 0); // revived (or never failed): the threads count again from 0
    }
    const c = dest.config, waiters = Number.isFinite(c.maxWaiters) ? c.maxWaiters : -1; // -1: no limit (0 refuses every connection, as on the main thread)
    const maxFailures = (c.failFast ?? DEFAULT_FAIL_FAST).maxConsecutiveFailures;
    this.binding.ioPublish(id, hosts, ports, weights, ids, b.emptyShare, dest.connectTimeoutMs ?? 0, Math.max(0, c.connectAttempts - 1), waiters, maxFailures, resets);
    clearTimeout(this.revival);
    const wait = b.nextRevivalIn();
    if (wait !== undefined) {
      this.revival = setTimeout(() => b.reviveExpired(), wait + 1);
      this.revival.unref();
    }
  }

  /**
   * Ids of addresses the balancer no longer knows cool: freed once their load in the threads
   * has read 0 for a whole ID_COOLING_MS (the clock starts again whenever it is not 0), so
   * every record naming the id (a thread unloads before its record reaches the main thread)
   * has been read before another address takes it. Freed ids are reused oldest first.
   */
  private recycle(handle: number, known: ReadonlySet<string>): void {
    const now = Date.now();
    for (const [key, n] of this.idOf) if (!known.has(key) && !this.cooling.has(n)) this.cooling.set(n, undefined);
    for (const [n, zeroSince] of this.cooling) {
      const key = this.keyOf[n]!;
      if (known.has(key)) {
        this.cooling.delete(n); // back before it was given away: it keeps its id
        continue;
      }
      if ((this.binding.ioLoad(handle, n) ?? 0) !== 0) {
        this.cooling.set(n, undefined);
        continue;
      }
      if (zeroSince === undefined) {
        this.cooling.set(n, now);
        continue;
      }
      if (now - zeroSince < ID_COOLING_MS) continue;
      this.cooling.delete(n);
      this.idOf.delete(key);
      this.keyOf[n] = undefined;
      this.freeIds.push(n);
    }
  }

  private idFor(key: string): number | undefined {
    let n = this.idOf.get(key);
    if (n !== undefined) return n;
    n = this.freeIds.shift() ?? (this.keyOf.length < MAX_ENDPOINT_IDS ? this.keyOf.length : undefined);
    if (n === undefined) {
      if (!this.warnedFull) this.log.warn({ max: MAX_ENDPOINT_IDS }, 'more endpoints than the I/O threads can index: the rest are not used');
      this.warnedFull = true;
      return undefined;
    }
    this.idOf.set(key, n);
    this.keyOf[n] = key;
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
