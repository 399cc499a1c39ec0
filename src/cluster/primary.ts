// The primary of several worker processes (`workers` > 1): claims the ports, forks the
// workers, restarts one that dies (with backoff when a replacement cannot start, while
// the others keep serving), runs the admin server with every worker's metrics and state
// summed up, and drains them all through the shared lifecycle. It tracks live workers
// from their own 'exit' events (never `cluster.workers`, which lags while IPC is unread),
// and no IPC failure to a dying worker is ever fatal. A stop while it starts: before the
// workers are forked, none are; after, they start, then drain (each waits for its own start).
import cluster, { type Worker } from 'node:cluster';
import { createProcessSampler } from '../admin/process-metrics.ts';
import { createAdminServer } from '../admin/server.ts';
import type { Config } from '../config/types.ts';
import { Lifecycle, PRIMARY_EXTRA_MARGIN_MS } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import { Registry } from '../metrics/registry.ts';
import { HealthChecker } from '../health/checker.ts';
import { HealthHub } from '../health/hub.ts';
import { createInterpreter } from '../app.ts';
import { delegateOf } from '../interpreter/interpreter.ts';
import { ClusterView, type WorkerAnswer } from './cluster-view.ts';
import { NamesHub } from './names-hub.ts';
import { SessionCache } from '../server/session-cache.ts';
import { answerSessions } from './remote-sessions.ts';
import { TicketKeys } from './ticket-keys.ts';
import { PortBook } from './ports.ts';
import { workerExecArgv } from './heap-flags.ts';
import { pinReloadPorts, ReloadRounds } from './cluster-reload.ts';
import { effectiveConfig } from '../reload/plan.ts';
import { Reloader } from '../reload/reloader.ts';
import type { LoadedConfig } from '../reload/source.ts';
import { routeHup, routeStops } from '../signals.ts';
import type { Answer, ToPrimary, ToWorker, WorkersState } from './protocol.ts';

const ASK_TIMEOUT_MS = 3000;
const RESTART_DELAY_MS = 500;
const RESTART_DELAY_MAX_MS = 30_000;
/** How long a reload waits for workers still starting before it goes ahead with those listening. */
const SETTLE_TIMEOUT_MS = 10_000;

type Pending = { readonly worker: number; readonly resolve: (v: Answer | undefined) => void; readonly timer: NodeJS.Timeout };

export async function runPrimary(
  configIn: Config, workers: number, baseLog: Logger, marginMs: number,
  reload?: { readonly loaded: LoadedConfig; readonly validate: (c: Config) => readonly string[] },
): Promise<number> {
  const view = new ClusterView(baseLog); // merged metrics and state; the primary's warnings reach the dashboard
  const log = view.log;
  const tickets = new TicketKeys(); // TLS sessions resume on whichever worker accepts
  const sessions = new SessionCache(); // and so do sessions resumed by ID (TLS 1.2 without tickets)
  const ports = new PortBook(); // held while the config has a server on them: nothing else takes them between worker starts
  let config = configIn; // pinned at start (ports.pin); a reload replaces it: restarted workers start with the new one
  const live = new Map<number, Worker>(); // forked and not yet exited
  const listening = new Set<number>();
  const pending = new Map<number, Pending>();
  const exitCodes: (number | null)[] = [];
  const drained = Promise.withResolvers<void>();
  const ws: { started: boolean; restarts: number; failedStarts: number; consecutiveFailures: number; lastFailure: string | null } =
    { started: false, restarts: 0, failedStarts: 0, consecutiveFailures: 0, lastFailure: null };
  let nextId = 1;
  // Workers get the young-generation cap (heap-flags.ts): TLS churn no longer leaves them at 128 MiB more RSS.
  cluster.setupPrimary({ serialization: 'advanced', execArgv: workerExecArgv(process.execArgv, process.env['NODE_OPTIONS']) });

  /** Sends to a worker; a worker that just died (EPIPE, ERR_IPC_CHANNEL_CLOSED) is skipped. */
  const send = (w: Worker, m: ToWorker): boolean => {
    if (!w.isConnected()) return false;
    try {
      return w.send(m, undefined, (err) => { if (err) log.debug({ worker: w.id, err: err.message }, 'send to worker failed'); });
    } catch (e) {
      log.debug({ worker: w.id, err: (e as Error).message }, 'send to worker failed');
      return false;
    }
  };
  const ask = (w: Worker, what: 'metrics' | 'state' | 'ready'): Promise<Answer | undefined> =>
    new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => { pending.delete(id); resolve(undefined); }, ASK_TIMEOUT_MS);
      pending.set(id, { worker: w.id, resolve, timer });
      if (!send(w, { type: 'req', id, what })) { clearTimeout(timer); pending.delete(id); resolve(undefined); }
    });
  const askAll = async (what: 'metrics' | 'state' | 'ready'): Promise<Answer[]> => {
    const answers = await Promise.all([...live.values()].map((w) => ask(w, what)));
    return answers.filter((a): a is Answer => a !== undefined);
  };
  const askEach = (what: 'metrics' | 'state'): Promise<WorkerAnswer[]> =>
    Promise.all([...live.values()].map(async (w) => ({ worker: w.id, value: await ask(w, what) })));
  const restartDelayMs = (): number => Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_MS * 2 ** ws.consecutiveFailures);

  const lc: Lifecycle = new Lifecycle({
    log, marginMs: marginMs + PRIMARY_EXTRA_MARGIN_MS,
    graceMs: () => config.admin.graceSecs * 1000,
    drain: async (graceMs) => {
      for (const w of live.values()) send(w, { type: 'shutdown', graceMs });
      log.info({ workers: live.size }, 'draining workers'); // after the sends: they are on their way
      if (live.size === 0) drained.resolve();
      await drained.promise;
      return exitCodes.every((c) => c === 0) ? 0 : 1;
    },
    // Exiting without the drain: no worker may outlive us (SIGKILL works on a stopped or hung one).
    halt: () => {
      for (const w of live.values()) {
        try { w.process.kill('SIGKILL'); } catch { /* already gone */ }
      }
    },
  });

  // Active health checks run here, once for the proxy; workers watch and get verdicts (src/health/hub.ts).
  const registry = new Registry();
  const health = new HealthHub(new HealthChecker({ registry, log }));
  // Interpreters run here too, once for the proxy: one namerd stream per destination, whatever the workers.
  const names = new NamesHub((rt) => {
    const rc = config.routers.find((r) => r.label === rt);
    return rc && createInterpreter(rc, config, registry, log);
  }, (id, m) => { const w = live.get(id); if (w) send(w, m); });

  // Config reloads (SIGHUP, POST /reload, watchConfig) are decided here and applied by every worker or none.
  const startedWith = new Map<number, Config>(); // the config each worker was started with
  // Workers forked and not yet listening (at start, or replacements): a reload waits for them, bounded,
  // so its answer holds for every worker (else it would answer ok and apply nothing until they listen).
  const onSettled = new Set<() => void>();
  const settled = (): boolean => [...live.keys()].every((id) => listening.has(id));
  const checkSettled = (): void => { if (settled()) for (const f of onSettled) f(); };
  const whenSettled = (ms: number): Promise<void> => settled() ? Promise.resolve() : new Promise((resolve) => {
    const done = (): void => { clearTimeout(timer); onSettled.delete(done); resolve(); };
    const timer = setTimeout(done, ms);
    onSettled.add(done);
  });
  const rounds = new ReloadRounds((id, m) => { const w = live.get(id); return w !== undefined && send(w, m); });
  const reloader = reload && new Reloader({
    initial: reload.loaded, log, registry, validate: reload.validate,
    apply: async (nextFile, plan) => {
      await whenSettled(SETTLE_TIMEOUT_MS);
      try {
        const next = effectiveConfig(config, await pinReloadPorts(config, nextFile, plan, ports));
        await rounds.run([...listening].filter((id) => live.has(id)), next, async () => {
          config = next;
          // Naming runs here for the workers: routers whose dtab, interpreter or namers changed get new interpreters.
          // Every worker has prepared: a router whose new interpreter fails is logged, and the rest go ahead.
          await Promise.all(plan.routers.filter((r) => r.kind !== 'kept').map((r) => names.replace(r.label).catch((e: unknown) => {
            log.error({ rt: r.label, err: (e as Error).message }, 'reload: the router\'s new interpreter failed to start');
          })));
        });
      } finally {
        await ports.keepOnly(config); // the ports of removed servers, or of a reload that did not go through
      }
    },
  });

  const fork = (): void => {
    const w = cluster.fork({ LINKERD_TCP_WORKER: '1' });
    live.set(w.id, w);
    w.on('error', (e: Error) => log.debug({ worker: w.id, err: e.message }, 'worker channel error'));
    w.on('message', (m: ToPrimary) => {
      if (m.type === 'listening') {
        listening.add(w.id);
        // Started before a reload committed (it was not in that round): bring it to the running config.
        if (startedWith.get(w.id) !== config) {
          const target = config;
          startedWith.set(w.id, target);
          rounds.run([w.id], target, async () => {}).catch((e: unknown) => log.error({ worker: w.id, err: (e as Error).message }, 'a worker started during a reload could not take the new config'));
        }
        if (ws.consecutiveFailures > 0) log.info({ worker: w.id }, 'worker started again; all workers serving');
        ws.consecutiveFailures = 0;
        ws.lastFailure = null;
        if (listening.size === workers) ws.started = true;
        checkSettled();
      } else if (m.type === 'failed') {
        ws.failedStarts++;
        if (!ws.started) {
          // At start the failure is the config's or the machine's, the same in every worker: stop, don't loop.
          if (!lc.stopping) process.stderr.write(`linkerd-tcp: ${m.message}\n`);
          lc.finish(1);
          return;
        }
        // A replacement (say after a crash) cannot start, e.g. a TLS file went bad on disk since: the
        // other workers keep serving with the material they hold; retry with backoff.
        ws.consecutiveFailures++;
        ws.lastFailure = m.message;
        log.error({ worker: w.id, err: m.message, retryInMs: restartDelayMs() }, 'worker failed to start; the other workers keep serving');
      } else if (m.type === 'res') {
        const p = pending.get(m.id);
        if (p) { clearTimeout(p.timer); pending.delete(m.id); p.resolve(m.value); }
      } else if (m.type === 'admin') (m.what === 'shutdown' ? lc.stop('admin') : lc.abort());
      else if (m.type === 'health-watch' || m.type === 'health-unwatch') health.onMessage(w.id, m, (r) => send(w, r));
      else if (m.type === 'names-watch' || m.type === 'names-unwatch') names.onMessage(w.id, m);
      else if (m.type === 'session-set' || m.type === 'session-get') answerSessions(sessions, m, (r) => send(w, r), (r) => { for (const o of live.values()) send(o, r); });
      else if (m.type === 'reload-prepared' || m.type === 'reload-committed') rounds.onMessage(w.id, m);
    });
    w.on('online', () => {
      startedWith.set(w.id, config);
      send(w, { type: 'start', config, processes: workers });
      send(w, { type: 'ticket-keys', keys: tickets.current });
    });
    w.on('exit', (code: number | null, signal: string | null) => {
      view.exited(w.id);
      live.delete(w.id);
      listening.delete(w.id);
      health.dropWorker(w.id);
      startedWith.delete(w.id);
      names.dropWorker(w.id);
      rounds.dropWorker(w.id);
      checkSettled();
      for (const [id, p] of pending) if (p.worker === w.id) { clearTimeout(p.timer); pending.delete(id); p.resolve(undefined); }
      if (lc.stopping) {
        // Killed by a stop signal while stopping: Ctrl-C to the process group reached a worker
        // still in Node's own start-up, before main.ts held the signals (slow on a loaded
        // machine). Nothing of ours ran in it, so nothing was lost: a clean stop, not a failure.
        const stopSignal = signal === 'SIGINT' || signal === 'SIGTERM';
        if (stopSignal) log.info({ worker: w.id, workerPid: w.process.pid, signal }, 'worker ended by the stop signal before it had started');
        exitCodes.push(stopSignal ? 0 : code);
        if (live.size === 0) drained.resolve();
        return;
      }
      ws.restarts++;
      const delayMs = restartDelayMs();
      log.warn({ worker: w.id, workerPid: w.process.pid, code, signal, restartInMs: delayMs }, 'worker exited; restarting');
      setTimeout(() => { if (!lc.stopping) fork(); }, delayMs);
    });
  };

  const workersState = (): WorkersState => ({
    configured: workers, live: live.size, listening: listening.size, restarts: ws.restarts,
    failedStarts: ws.failedStarts, degraded: ws.started && listening.size < workers, lastFailure: ws.lastFailure,
  });
  const sampler = createProcessSampler();
  const admin = createAdminServer({
    config: config.admin, registry, log, sampler,
    extraMetrics: async () => view.mergedMetrics(await askEach('metrics')),
    state: async () => ({ ...view.state(sampler.sample(), await askEach('state')), workers: workersState(), ...(reloader ? { config: reloader.info } : {}) }),
    // Ready once every worker has started; later, while one is being replaced, the others serve.
    ready: async () => ws.started && listening.size > 0 && (await askAll('ready')).every((r) => r === true),
    // Naming runs here for the workers: the delegator asks the same interpreters they resolve through.
    delegators: { labels: () => config.routers.map((r) => r.label), delegate: (rt) => { const i = names.interpreterOf(rt); return i && delegateOf(i); } },
    shutdown: () => lc.stop('admin'),
    abort: () => lc.abort(),
    ...(reloader ? { reload: () => reloader.reload('POST /reload') } : {}),
  });

  // A stop held since the process began (signals.ts) drains now: no worker is forked. One
  // while starting drains once the admin server listens; the workers wait for their own starts.
  routeStops((s) => lc.stop(s));
  const start = async (): Promise<void> => {
    config = await ports.pin(configIn);
    if (lc.stopping) return; // asked to stop while the ports were claimed: fork nothing
    tickets.start((keys) => { for (const w of live.values()) send(w, { type: 'ticket-keys', keys }); });
    for (let i = 0; i < workers; i++) fork();
    await admin.listen();
    log.info({ workers }, 'workers started');
  };
  try {
    // Raced with the exit code: a second signal exits at once (halt kills the workers), also while starting.
    const started = await Promise.race([lc.start(start), lc.exitCode.then(() => false)]);
    if (started) {
      routeHup(() => {
        // The config first (all workers or none), then every worker re-reads its TLS keys and certificates.
        void (reloader?.reload('SIGHUP') ?? Promise.resolve()).then(() => {
          log.info({}, 'SIGHUP: workers reload TLS keys and certificates');
          for (const w of live.values()) send(w, { type: 'reload' });
        });
      });
    }
  } catch (e) {
    lc.finish(1);
    reloader?.close();
    throw e;
  }
  const code = await lc.exitCode;
  reloader?.close();
  // The admin server must not hold the exit up (a keep-alive scrape, a slow client).
  await Promise.race([admin.close(), new Promise((r) => setTimeout(r, 1000).unref())]);
  sampler.close();
  tickets.close();
  health.close();
  await names.close();
  return code;
}
