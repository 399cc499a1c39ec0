// The composition root: builds interpreters, routers and servers from a Config, starts
// them, and closes them in reverse order. Nothing here touches `process`.
import { createProcessSampler, type ProcessSampler } from './admin/process-metrics.ts';
import { RecentErrors, teeErrors } from './admin/recent-errors.ts';
import { type AdminServer, createAdminServer } from './admin/server.ts';
import { type AppState, collectState } from './admin/state.ts';
import { inactiveKeys } from './config/active.ts';
import type { Config, RouterConfig } from './config/types.ts';
import { LinkerdTcpError } from './errors.ts';
import { createDefaultInterpreter } from './interpreter/default.ts';
import type { Interpreter } from './interpreter/interpreter.ts';
import { createNamerdInterpreter } from './interpreter/namerd.ts';
import type { Logger } from './log.ts';
import { Registry } from './metrics/registry.ts';
import { Router } from './router/router.ts';
import { Server } from './server/server.ts';

export function createInterpreter(rc: RouterConfig, config: Config, registry: Registry, log: Logger): Interpreter {
  const ic = rc.interpreter;
  switch (ic.kind) {
    case 'default':
      return createDefaultInterpreter({ dtab: rc.dtab, namers: config.namers, log: log.child({ rt: rc.label }), registry });
    case 'io.l5d.namerd.http':
      return createNamerdInterpreter({ config: ic, routerLabel: rc.label, dtab: rc.dtab, registry, log: log.child({ rt: rc.label }) });
  }
}

/** What the admin server's mutations do; main.ts owns the process, so it provides them. */
export interface AppHooks {
  shutdown(): void;
  abort(): void;
}

export class App {
  readonly config: Config;
  readonly registry = new Registry();
  readonly routers: Router[] = [];
  readonly servers: Server[] = [];
  readonly startedAt = Date.now();
  readonly errors = new RecentErrors();
  private readonly log: Logger;
  private readonly hooks: AppHooks;
  private admin: AdminServer | undefined;
  private sampler: ProcessSampler | undefined;
  private ready = false;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  /** A worker of several: listeners share their ports, and the primary runs the admin server. */
  private readonly worker: boolean;

  constructor(config: Config, log: Logger, hooks: AppHooks = { shutdown() {}, abort() {} }, opts: { worker?: boolean } = {}) {
    this.worker = opts.worker ?? false;
    this.config = config;
    this.log = teeErrors(log, this.errors); // warnings and errors also feed /api/state's recent errors
    this.hooks = hooks;
  }

  /** `ip:port` of the admin server once started. */
  get adminAddress(): string | undefined {
    return this.admin?.address;
  }

  /** Builds everything and binds every listener; on a bind failure, closes what started. */
  async start(): Promise<void> {
    const inactive = inactiveKeys(this.config);
    if (inactive.errors.length) throw new LinkerdTcpError('CONFIG_INVALID', inactive.errors.join('\n'));
    for (const w of inactive.warnings) this.log.warn({}, w);
    for (const rc of this.config.routers) {
      const router = new Router({
        label: rc.label, interpreter: createInterpreter(rc, this.config, this.registry, this.log),
        client: rc.client, registry: this.registry, log: this.log, highWaterMark: this.config.bufferSizeBytes,
      });
      this.routers.push(router);
      for (const sc of rc.servers) {
        this.servers.push(new Server({
          config: sc, router, registry: this.registry, log: this.log, bufferSizeBytes: this.config.bufferSizeBytes, reusePort: this.worker,
        }));
      }
    }
    try {
      for (const s of this.servers) await s.listen();
      const sampler = (this.sampler = createProcessSampler({ startedAt: this.startedAt }));
      if (!this.worker) {
        this.admin = createAdminServer({
          config: this.config.admin, registry: this.registry, log: this.log, sampler,
          state: () => this.state(), ready: () => this.isReady(),
          shutdown: () => this.hooks.shutdown(),
          abort: () => this.hooks.abort(),
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
    this.ready = true;
  }

  /** Listeners bound and every server's destination resolved once. */
  isReady(): boolean {
    return this.ready && this.routers.every((r) => [...r.destinations.values()].every((d) => d.balancer.resolved));
  }

  state(): AppState {
    return collectState({
      routers: this.routers, servers: this.servers, startedAt: this.startedAt,
      recentErrors: this.errors.list(), routerConfigs: this.config.routers, ...(this.sampler ? { sampler: this.sampler } : {}),
    });
  }

  /**
   * Graceful stop: stop accepting, let open connections finish for up to `graceMs`, cut
   * the rest, then close routers and interpreters. Idempotent.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= (async () => {
      this.ready = false;
      clearInterval(this.snapshotTimer);
      for (const s of this.servers) s.stopAccepting();
      const open = this.servers.reduce((n, s) => n + s.live.size, 0);
      if (open > 0) this.log.info({ open, graceMs }, 'draining open connections');
      const deadline = Date.now() + graceMs;
      await Promise.all(this.servers.map((s) => s.drain(deadline)));
      for (const s of this.servers) s.close();
      for (const r of [...this.routers].reverse()) await r.close();
      await this.admin?.close(); // last, so /metrics stays up while draining
      this.sampler?.close();
      this.log.info({}, 'stopped');
    })();
    return this.closing;
  }
}
