// Runs active health checks: one timer per watched target, the first check anywhere in the
// interval and the next at most one interval after the previous start, never two in flight
// for one target, at most `maxInFlight` in flight overall (the rest queue). Verdicts go to
// the target's listeners, and so is every pass (it ends a fail-fast ejection); counts go to
// l5d:healthcheck:*{rt, dst, endpoint}. No target, no timer: zero cost.
import type { Logger } from '../log.ts';
import type { Counter, Gauge, Registry, Stat } from '../metrics/registry.ts';
import { firstDelayMs, type HealthState, newHealthState, nextDelayMs, recordCheck } from './policy.ts';
import { probe, type ProbeResult } from './probe.ts';
import { type HealthListener, type HealthSource, type HealthTarget, targetKey } from './source.ts';

interface Entry {
  readonly key: string;
  readonly target: HealthTarget;
  readonly endpoint: string;
  readonly listeners: Set<HealthListener>;
  readonly state: HealthState;
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
  queued: boolean;
  removed: boolean;
  readonly results: Map<ProbeResult, Counter>;
  readonly latencyUs: Stat;
  readonly healthy: Gauge;
}

export class HealthChecker implements HealthSource {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: Entry[] = [];
  private inFlight = 0;
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly maxInFlight: number;
  private closed = false;

  constructor(opts: { registry: Registry; log: Logger; random?: () => number; maxInFlight?: number }) {
    this.registry = opts.registry;
    this.log = opts.log;
    this.random = opts.random ?? Math.random;
    this.maxInFlight = opts.maxInFlight ?? 64;
  }

  /** Targets being checked (for tests and /api/state). */
  get size(): number {
    return this.entries.size;
  }

  watch(target: HealthTarget, listener: HealthListener): () => void {
    const key = targetKey(target);
    let e = this.entries.get(key);
    if (!e) {
      const endpoint = `${target.host}:${target.port}`;
      // The order of the other per-router metrics: rt first.
      const labels = { rt: target.rt, dst: target.dst, endpoint };
      e = {
        key, target, endpoint, listeners: new Set(), state: newHealthState(), timer: undefined,
        inFlight: false, queued: false, removed: false, results: new Map(),
        latencyUs: this.registry.stat('l5d:healthcheck:latency_us', labels),
        healthy: this.registry.gauge('l5d:healthcheck:healthy', labels),
      };
      e.healthy.value = 1; // no verdict yet: in rotation
      this.entries.set(key, e);
      if (!this.closed) this.schedule(e, firstDelayMs(target.check, this.random));
    }
    const entry = e;
    entry.listeners.add(listener);
    const known = entry.state.healthy;
    if (known !== undefined) queueMicrotask(() => entry.listeners.has(listener) && listener(known, false));
    return () => this.unwatch(entry, listener);
  }

  close(): void {
    this.closed = true;
    for (const e of [...this.entries.values()]) this.remove(e);
  }

  private unwatch(e: Entry, listener: HealthListener): void {
    e.listeners.delete(listener);
    if (e.listeners.size === 0) this.remove(e);
  }

  /** Stops a target's checks and drops its metrics (labels stay bounded by the live set). */
  private remove(e: Entry): void {
    if (this.entries.get(e.key) !== e) return;
    e.removed = true;
    clearTimeout(e.timer);
    this.entries.delete(e.key);
    const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n'); // as the registry renders labels
    // The registry renders labels sorted by name: dst, endpoint, (result,) rt.
    const head = `dst="${esc(e.target.dst)}", endpoint="${esc(e.endpoint)}", `, tail = `, rt="${esc(e.target.rt)}"`;
    if (![...this.entries.values()].some((o) => o.target.rt === e.target.rt && o.target.dst === e.target.dst && o.endpoint === e.endpoint)) {
      this.registry.removeWhere((name, l) => name.startsWith('l5d:healthcheck:') && l.startsWith(head) && l.endsWith(tail));
    }
  }

  private schedule(e: Entry, delayMs: number): void {
    e.timer = setTimeout(onTimer, delayMs, this, e);
    e.timer.unref();
  }

  static due(c: HealthChecker, e: Entry): void {
    e.timer = undefined;
    if (e.removed || e.inFlight || e.queued) return;
    if (c.inFlight >= c.maxInFlight) {
      e.queued = true;
      c.queue.push(e);
      return;
    }
    void c.run(e);
  }

  private async run(e: Entry): Promise<void> {
    e.inFlight = true;
    this.inFlight++;
    const t = e.target;
    const started = performance.now();
    const { result, detail } = await probe(t.host, t.port, t.check);
    const elapsed = performance.now() - started;
    e.inFlight = false;
    this.inFlight--;
    this.next();
    if (e.removed) return;
    this.count(e, result);
    if (result === 'ok') e.latencyUs.record(elapsed * 1000);
    const was = e.state.healthy;
    const verdict = recordCheck(e.state, result === 'ok', t.check);
    const fields = { rt: t.rt, dst: t.dst, endpoint: e.endpoint };
    if (result !== 'ok' && this.log.isLevelEnabled('debug')) this.log.debug({ ...fields, result, detail, fails: e.state.fails }, 'health check failed');
    if (verdict !== undefined) {
      e.healthy.value = verdict ? 1 : 0;
      if (!verdict) this.log.warn({ ...fields, result, detail, fails: e.state.fails }, 'endpoint unhealthy: health check failed');
      else if (was === false) this.log.info({ ...fields, passes: e.state.passes }, 'endpoint healthy: health check passed');
      else this.log.debug({ ...fields }, 'health check: first pass');
      for (const l of [...e.listeners]) l(verdict, result === 'ok');
    } else if (result === 'ok' && e.state.healthy === true) {
      // A pass that changes no verdict still goes out: it ends a fail-fast ejection.
      for (const l of [...e.listeners]) l(true, true);
    }
    this.schedule(e, nextDelayMs(t.check, this.random, elapsed));
  }

  /** Starts queued checks while there is room. */
  private next(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const e = this.queue.shift()!;
      e.queued = false;
      if (!e.removed) void this.run(e);
    }
  }

  private count(e: Entry, result: ProbeResult): void {
    let c = e.results.get(result);
    if (!c) e.results.set(result, (c = this.registry.counter('l5d:healthcheck:checks', { rt: e.target.rt, dst: e.target.dst, endpoint: e.endpoint, result })));
    c.value++;
  }
}

function onTimer(c: HealthChecker, e: Entry): void {
  HealthChecker.due(c, e);
}
