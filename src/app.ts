// The composition root: builds interpreters, routers and servers from a Config, starts
// them, and closes them in reverse order. Nothing here touches `process`.
import { createProcessSampler, type ProcessSampler, registerProcessMetrics, watchFdLimit } from './admin/process-metrics.ts';
import { RecentErrors, teeErrors } from './admin/recent-errors.ts';
import { readAdminToken } from './admin/guard.ts';
import { type AdminServer, createAdminServer, type ReloadAnswer } from './admin/server.ts';
import { type AppState, collectState, type ConfigStateJson } from './admin/state.ts';
import type { ClientTlsConfig, Config, RouterConfig, ServerConfig } from './config/types.ts';
import { watchFiles } from './connector/file-watch.ts';
import { LinkerdTcpError } from './errors.ts';
import { ClientTls } from './connector/tls-client.ts';
import { createDefaultInterpreter } from './interpreter/default.ts';
import { delegateOf, type Interpreter } from './interpreter/interpreter.ts';
import { createNamerdInterpreter } from './interpreter/namerd.ts';
import type { Logger } from './log.ts';
import { HealthChecker } from './health/checker.ts';
import type { HealthSource } from './health/source.ts';
import { Registry } from './metrics/registry.ts';
import { Router } from './router/router.ts';
import { Server } from './server/server.ts';
import type { SessionStore } from './server/session-cache.ts';
import { loadNative } from './engine/native-binding.ts';
import { nativeEngine, pipeBudget, registerEngineMetrics } from './engine/native-engine.ts';
import { NativeServer } from './engine/native-server.ts';
import { ThreadServer } from './engine/thread-server.ts';
import { type EnginePlan, planEngines } from './engine/select.ts';
import { closeIdleRouters, type LiveTarget, prepareReload, type PreparedReload } from './reload/live.ts';
import type { ReloadPlan } from './reload/plan.ts';

export type { EnginePlan } from './engine/select.ts';
export { engineEnvProblem } from './engine/select.ts';

/**
 * Throws (a config error) when the admin token cannot be had: both LINKERD_TCP_ADMIN_TOKEN and
 * admin.tokenFile set, an unreadable or empty file, whitespace inside. The admin server reads
 * it only once the listeners are bound; this lets --check and the CLI refuse it before.
 */
export function checkAdminToken(config: Config, env: Readonly<Record<string, string | undefined>>): void {
  readAdminToken(config.admin, env);
}

/** Fails (a config error) when `engine: native` cannot be honoured; the plan per server otherwise. */
export function checkEngines(config: Config, file: string): EnginePlan[] {
  return planEngines(config, { file });
}

export function createInterpreter(rc: RouterConfig, config: Config, registry: Registry, log: Logger): Interpreter {
  const ic = rc.interpreter;
  switch (ic.kind) {
    case 'default':
      return createDefaultInterpreter({ dtab: rc.dtab, namers: config.namers, log: log.child({ rt: rc.label }), registry });
    case 'io.l5d.namerd.http':
      return createNamerdInterpreter({ config: ic, routerLabel: rc.label, dtab: rc.dtab, registry, log: log.child({ rt: rc.label }) });
  }
}

/** The TLS origination contexts of one router's client config, built (and checked) at start. */
export function clientTlsContexts(rc: RouterConfig, i: number): Map<ClientTlsConfig, ClientTls> {
  const out = new Map<ClientTlsConfig, ClientTls>();
  const c = rc.client;
  if (c.kind === 'io.l5d.global') {
    if (c.tls) out.set(c.tls, new ClientTls(c.tls, `routers[${i}].client.tls`));
  } else {
    c.configs.forEach((cc, j) => { if (cc.tls) out.set(cc.tls, new ClientTls(cc.tls, `routers[${i}].client.configs[${j}].tls`)); });
  }
  return out;
}

/** What the admin server's mutations do; main.ts owns the process, so it provides them. */
export interface AppHooks {
  shutdown(): void;
  abort(): void;
  /** POST /reload: re-read the config file and apply it (src/reload/reloader.ts). */
  reload?(): Promise<ReloadAnswer>;
  /** /api/state's `config`: the running file's hash, when it was loaded, the last reload. */
  configInfo?(): ConfigStateJson;
}

export class App {
  /** The running config; a reload replaces it (src/reload/live.ts). */
  config: Config;
  readonly registry = new Registry();
  readonly routers: Router[] = [];
  /** Each server on its engine (src/engine/select.ts): `Server` moves bytes in Node, `NativeServer` in the addon. */
  readonly servers: (Server | NativeServer | ThreadServer)[] = [];
  readonly engines: EnginePlan[] = [];
  readonly startedAt = Date.now();
  readonly errors = new RecentErrors();
  private readonly log: Logger;
  private readonly hooks: AppHooks;
  private admin: AdminServer | undefined;
  private sampler: ProcessSampler | undefined;
  private ready = false;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** Each router's TLS origination contexts (a reload replaces routers with theirs). */
  private readonly clientTlsOf = new Map<Router, ClientTls[]>();
  private get clientTls(): ClientTls[] {
    return this.routers.flatMap((r) => this.clientTlsOf.get(r) ?? []);
  }
  /** Servers a reload removed or replaced, draining; routers it replaced, closed once unused. */
  readonly draining = new Set<Server | NativeServer | ThreadServer>();
  readonly retired = new Set<Router>();
  private retiredSweep: NodeJS.Timeout | undefined;
  private stopWatching: (() => void) | undefined;
  private fdWatch: { close(): void } | undefined;
  /** Active health checks: run here, or (a worker of several) by the primary for every worker. */
  private readonly health: HealthSource;

  /** A worker of several: listeners share their ports, and the primary runs the admin server. */
  private readonly worker: boolean;
  private readonly workerId: number;
  /** Processes serving (this one and its sibling workers): they share the user's pipe quota (native engine budget). */
  private readonly processes: number;
  /** `threads: true`: the native I/O threads each plain TCP server runs on (0: none, servers on this thread). */
  private readonly ioThreads: number;

  constructor(config: Config, log: Logger, hooks: AppHooks = { shutdown() {}, abort() {} }, opts: { worker?: boolean; workerId?: number; processes?: number; ioThreads?: number; health?: HealthSource; interpreterFor?: (rc: RouterConfig) => Interpreter; sessions?: SessionStore } = {}) {
    this.interpreterFor = opts.interpreterFor;
    this.sessions = opts.sessions;
    this.worker = opts.worker ?? false;
    this.workerId = opts.workerId ?? 0;
    this.processes = opts.processes ?? 1;
    this.ioThreads = opts.ioThreads ?? (config.threads ? (config.workers ?? 1) : 0);
    this.config = config;
    this.log = teeErrors(log, this.errors); // warnings and errors also feed /api/state's recent errors
    this.hooks = hooks;
    // No timer or socket until a destination with `healthCheck` watches an endpoint.
    this.health = opts.health ?? new HealthChecker({ registry: this.registry, log: this.log });
  }

  /** A worker of several: its routers resolve through the primary (cluster/remote-names.ts). */
  private readonly interpreterFor: ((rc: RouterConfig) => Interpreter) | undefined;

  /** A worker of several: TLS sessions (for session-ID resumption) live in the primary's cache. */
  private readonly sessions: SessionStore | undefined;

  /** Session-ticket keys from the primary of several workers (shared, so sessions resume on any worker). */
  private ticketKeys: Buffer | undefined;

  /** Uses these session-ticket keys on every TLS server, now and when they are built. */
  setTicketKeys(keys: Buffer): void {
    this.ticketKeys = keys;
    for (const s of this.servers) s.tls?.setTicketKeys(keys);
  }

  /** `ip:port` of the admin server once started. */
  get adminAddress(): string | undefined {
    return this.admin?.address;
  }

  /** Builds everything and binds every listener; on a bind failure, closes what started. */
  async start(): Promise<void> {
    // TLS material first: a bad key or certificate fails the start before anything listens or resolves.
    const tlsByRouter = this.config.routers.map((rc, i) => clientTlsContexts(rc, i));
    this.engines.push(...planEngines(this.config)); // `engine: native` that cannot be honoured fails here
    const native = loadNative();
    // Once for the proxy: by the only process, or by the first worker of several.
    if (native.kind === 'unavailable' && this.workerId <= 1) this.log.info({ reason: native.reason }, 'native engine unavailable: servers run on the node engine');
    let k = 0; // servers in config order, as planEngines lists them
    try {
      this.config.routers.forEach((rc, i) => {
        const router = this.makeRouter(rc, i, this.config, tlsByRouter[i]!);
        this.routers.push(router);
        rc.servers.forEach((sc, j) => this.servers.push(this.makeServer(sc, router, i, j, this.engines[k++]!, this.config)));
      });
    } catch (e) {
      await this.close(0); // a server's TLS material was bad: stop the interpreters already started
      throw e;
    }
    if (this.ticketKeys) this.setTicketKeys(this.ticketKeys);
    const sessions = this.sessions;
    if (sessions) for (const s of this.servers) s.tls?.setSessionStore(sessions);
    // Watched before any listener binds: once a server logs `listening`, a replaced certificate is seen.
    this.watchTlsFiles();
    try {
      for (const s of this.servers) await s.listen();
      this.servers.forEach((s, n) => this.log.info({ rt: s.rt, srv: s.srvAddr, engine: this.engines[n]!.kind, why: this.engines[n]!.why }, 'engine'));
      const sampler = (this.sampler = createProcessSampler({ startedAt: this.startedAt }));
      // A worker's own process figures reach the primary's /metrics with its `worker` label.
      if (this.worker) registerProcessMetrics(this.registry, sampler, { worker: String(this.workerId) });
      else {
        this.admin = createAdminServer({
          config: this.config.admin, registry: this.registry, log: this.log, sampler,
          state: () => this.state(), ready: () => this.isReady(),
          // The live routers (a reload replaces them): each answers with its own interpreter.
          delegators: {
            labels: () => this.routers.map((r) => r.label),
            delegate: (label) => {
              const r = this.routers.find((x) => x.label === label);
              return r && delegateOf(r.interpreter);
            },
          },
          shutdown: () => this.hooks.shutdown(),
          abort: () => this.hooks.abort(),
          ...(this.hooks.reload ? { reload: () => this.hooks.reload!() } : {}),
        });
        await this.admin.listen();
      }
    } catch (e) {
      await this.close(0);
      throw e;
    }
    this.snapshotTimer = setInterval(() => this.registry.snapshot(), this.config.admin.metricsIntervalSecs * 1000);
    this.snapshotTimer.unref();
    // Subscribe each server's destination now, so /ready reflects the first resolutions.
    for (const s of this.servers) s.prepare();
    // Exported from the start (0), so a dashboard or alert sees the series before the first reload.
    for (const result of ['ok', 'failed']) this.registry.counter('l5d:tls:reloads', { result });
    this.fdWatch = watchFdLimit((state, openFds, limit) => {
      if (state === 'near') this.log.warn({ openFds, limit }, 'open files at the limit (EMFILE): new connections are being refused; raise `ulimit -n`');
      else this.log.info({ openFds, limit }, 'open files back under the limit');
    });
    this.ready = true;
  }

  /** A router and its TLS origination contexts (built first: bad material throws). */
  private makeRouter(rc: RouterConfig, i: number, config: Config, tls = clientTlsContexts(rc, i)): Router {
    const router = new Router({
      label: rc.label, interpreter: this.interpreterFor?.(rc) ?? createInterpreter(rc, config, this.registry, this.log),
      client: rc.client, registry: this.registry, log: this.log, highWaterMark: config.bufferSizeBytes,
      clientTls: tls, health: this.health, maxSniDestinations: rc.maxSniDestinations,
    });
    this.clientTlsOf.set(router, [...tls.values()]);
    return router;
  }

  /** A server on its engine, not yet listening (bad TLS material throws). */
  private makeServer(sc: ServerConfig, router: Router, i: number, j: number, engine: EnginePlan, config: Config): Server | NativeServer | ThreadServer {
    const native = engine.kind === 'native' ? loadNative() : undefined;
    // With threads, the user's pipe quota is shared by the main thread's engine and every thread server.
    const shares = this.ioThreads > 0 ? 1 + config.routers.reduce((n, r) => n + r.servers.length, 0) : this.processes;
    if (native?.kind === 'loaded' && engine.threads && this.ioThreads > 0) {
      return new ThreadServer({ config: sc, router, registry: this.registry, log: this.log, binding: native.binding, threads: this.ioThreads, budget: pipeBudget(shares) });
    }
    if (native?.kind === 'loaded') {
      registerEngineMetrics(this.registry, native.binding);
      const s = new NativeServer({ config: sc, router, registry: this.registry, log: this.log, engine: nativeEngine(native.binding, shares), reusePort: this.worker, where: `routers[${i}].servers[${j}]` });
      if (this.ticketKeys) s.tls?.setTicketKeys(this.ticketKeys);
      return s;
    }
    const s = new Server({
      config: sc, router, registry: this.registry, log: this.log, bufferSizeBytes: config.bufferSizeBytes,
      reusePort: this.worker, where: `routers[${i}].servers[${j}]`,
    });
    if (this.ticketKeys) s.tls?.setTicketKeys(this.ticketKeys);
    return s;
  }

  /**
   * Prepares a reload (src/reload/live.ts): new routers and servers built and bound, nothing
   * serving changed; `commit()` swaps them in, `abort()` closes them. Rejects (changing
   * nothing) on bad TLS material or a port that cannot be bound.
   */
  async prepareReload(next: Config, plan: ReloadPlan): Promise<PreparedReload> {
    if (this.closing) throw new LinkerdTcpError('CONFIG_INVALID', 'shutting down: reload refused');
    const p = await prepareReload(this.liveTarget(), next, plan);
    return {
      abort: () => p.abort(),
      // A shutdown that began while preparing wins: nothing new may start listening after close().
      commit: () => (this.closing ? void p.abort() : p.commit()),
    };
  }

  /** Prepare and commit: the single process's reload. */
  async reload(next: Config, plan: ReloadPlan): Promise<void> {
    (await this.prepareReload(next, plan)).commit();
  }

  private liveTarget(): LiveTarget<Router, Server | NativeServer | ThreadServer> {
    const app = this;
    const engines = new WeakMap<Config, EnginePlan[]>();
    return {
      get config(): Config { return app.config; },
      set config(c: Config) { app.config = c; },
      routers: this.routers, servers: this.servers, draining: this.draining, retired: this.retired,
      reusePort: this.worker, log: this.log,
      makeRouter: (rc, i, next) => this.makeRouter(rc, i, next),
      makeServer: (sc, router, i, j, next) => {
        let plans = engines.get(next);
        if (!plans) engines.set(next, (plans = planEngines(next)));
        const k = next.routers.slice(0, i).reduce((n, r) => n + r.servers.length, 0) + j;
        return this.makeServer(sc, router, i, j, plans[k]!, next);
      },
      dropRouter: async (r) => {
        this.clientTlsOf.delete(r);
        await r.close();
      },
      applied: () => {
        for (const r of this.clientTlsOf.keys()) if (!this.routers.includes(r) && !this.retired.has(r)) this.clientTlsOf.delete(r);
        this.stopWatching?.();
        this.stopWatching = undefined;
        if (!this.closing) this.watchTlsFiles();
        if (this.retired.size > 0 && !this.retiredSweep) {
          // Replaced routers close once no connection uses them; checked once a second.
          this.retiredSweep = setInterval(() => {
            void closeIdleRouters(this.liveTarget()).then(() => {
              if (this.retired.size === 0) { clearInterval(this.retiredSweep); this.retiredSweep = undefined; }
            });
          }, 1000);
          this.retiredSweep.unref();
        }
      },
    };
  }

  private watchTlsFiles(): void {
    const files = [...this.servers.flatMap((s) => s.tls?.files() ?? []), ...this.clientTls.flatMap((c) => c.files())];
    if (files.length === 0) return;
    this.stopWatching = watchFiles(files, () => this.reloadTls('file change'), (dir, err) => {
      this.log.warn({ dir, err: err.message }, 'cannot watch certificate directory; reload with SIGHUP');
    });
  }

  /**
   * Re-reads every TLS key and certificate (on a file change, or SIGHUP): changed ones take
   * effect for new handshakes; a bad one keeps the previous material and is logged.
   */
  reloadTls(trigger: string): void {
    const items = [...this.servers.flatMap((s) => (s.tls ? [s.tls] : [])), ...this.clientTls];
    let reloaded = 0, failed = 0;
    for (const t of items) {
      try {
        if (t.reload()) {
          reloaded++;
          this.registry.counter('l5d:tls:reloads', { result: 'ok' }).value++;
          this.log.info({ tls: t.where, trigger }, 'tls reloaded');
        }
      } catch (e) {
        failed++;
        this.registry.counter('l5d:tls:reloads', { result: 'failed' }).value++;
        this.log.error({ tls: t.where, trigger, err: (e as Error).message }, 'tls reload failed; keeping the previous keys and certificates');
      }
    }
    // Every request is answered in the log, also when nothing changed (an operator's SIGHUP must not vanish).
    this.log.info({ trigger, tlsSettings: items.length, reloaded, failed, unchanged: items.length - reloaded - failed }, 'tls reload done');
  }

  /** Listeners bound and every server's destination resolved once. */
  isReady(): boolean {
    return this.ready && this.routers.every((r) => [...r.destinations.values()].every((d) => d.balancer.resolved));
  }

  state(): AppState {
    const st = collectState({
      routers: this.routers, servers: [...this.servers, ...this.draining], startedAt: this.startedAt,
      recentErrors: this.errors.list(), routerConfigs: this.config.routers, ...(this.sampler ? { sampler: this.sampler } : {}),
      metrics: this.registry.dump(), latencySamples: this.worker, // a worker's samples are pooled by the primary
    });
    const config = this.hooks.configInfo?.();
    return config ? { ...st, config } : st;
  }

  /**
   * Graceful stop: stop accepting, let open connections finish for up to `graceMs`, cut
   * the rest, then close routers and interpreters. Idempotent.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= (async () => {
      this.ready = false;
      clearInterval(this.snapshotTimer);
      this.stopWatching?.();
      this.fdWatch?.close();
      clearInterval(this.retiredSweep);
      const servers = [...this.servers, ...this.draining]; // draining: removed by a reload
      for (const s of servers) s.stopAccepting();
      const open = servers.reduce((n, s) => n + s.live.size, 0);
      if (open > 0) this.log.info({ open, graceMs }, 'draining open connections');
      const deadline = Date.now() + graceMs;
      await Promise.all(servers.map((s) => s.drain(deadline)));
      for (const s of servers) s.close();
      for (const r of [...this.routers, ...this.retired].reverse()) await r.close();
      await this.admin?.close(); // last, so /metrics stays up while draining
      this.sampler?.close();
      this.health.close();
      this.log.info({}, 'stopped');
    })();
    return this.closing;
  }
}
