// The primary of several worker processes (`workers` > 1): forks them, restarts one that
// dies, runs the admin server with every worker's metrics and state summed up, and drains
// them all on a signal or POST /shutdown. Listeners live in the workers (SO_REUSEPORT).
import cluster, { type Worker } from 'node:cluster';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createProcessSampler } from '../admin/process-metrics.ts';
import { createAdminServer } from '../admin/server.ts';
import type { AppState } from '../admin/state.ts';
import type { Config } from '../config/types.ts';
import type { Logger } from '../log.ts';
import { type MetricDump, Registry } from '../metrics/registry.ts';
import { mergeStates } from './merge-state.ts';
import type { Answer, ToPrimary, ToWorker } from './protocol.ts';

const ASK_TIMEOUT_MS = 3000;
const RESTART_DELAY_MS = 500;

/** Gives every `port: 0` server a concrete free port, so all workers bind the same one. */
async function pinPorts(config: Config): Promise<Config> {
  const routers = [];
  for (const r of config.routers) {
    const servers = [];
    for (const s of r.servers) {
      if (s.port !== 0) {
        servers.push(s);
        continue;
      }
      const probe = createServer().listen(0, s.ip);
      await once(probe, 'listening');
      const port = (probe.address() as AddressInfo).port;
      await new Promise<void>((res) => probe.close(() => res()));
      servers.push({ ...s, port });
    }
    routers.push({ ...r, servers });
  }
  return { ...config, routers };
}

export async function runPrimary(configIn: Config, workers: number, log: Logger): Promise<number> {
  const config = await pinPorts(configIn);
  const exit = Promise.withResolvers<number>();
  const listening = new Set<number>();
  const pending = new Map<number, { resolve: (v: Answer) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let stopping = false;
  let failed = false;
  cluster.setupPrimary({ serialization: 'advanced' });

  const ask = (w: Worker, what: 'metrics' | 'state' | 'ready'): Promise<Answer | undefined> =>
    new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => { pending.delete(id); resolve(undefined); }, ASK_TIMEOUT_MS);
      pending.set(id, { resolve, timer });
      const m: ToWorker = { type: 'req', id, what };
      if (!w.isConnected()) { clearTimeout(timer); pending.delete(id); resolve(undefined); return; }
      w.send(m);
    });
  const askAll = async (what: 'metrics' | 'state' | 'ready'): Promise<Answer[]> => {
    const answers = await Promise.all(Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w).map((w) => ask(w, what)));
    return answers.filter((a): a is Answer => a !== undefined);
  };

  const fork = (): void => {
    const w = cluster.fork({ LINKERD_TCP_WORKER: '1' });
    w.on('message', (m: ToPrimary) => {
      if (m.type === 'listening') listening.add(w.id);
      else if (m.type === 'failed') {
        // A start failure is the config's or the machine's, the same in every worker: stop, don't loop.
        if (!stopping) process.stderr.write(`linkerd-tcp: ${m.message}\n`);
        failed = true;
        abortQuietly();
      }
      else if (m.type === 'res') {
        const p = pending.get(m.id);
        if (p) { clearTimeout(p.timer); pending.delete(m.id); p.resolve(m.value); }
      } else if (m.type === 'admin') (m.what === 'shutdown' ? stop('admin') : abort());
    });
    w.on('online', () => w.send({ type: 'start', config } satisfies ToWorker));
  };

  cluster.on('exit', (w, code, signal) => {
    listening.delete(w.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) exit.resolve(0);
      return;
    }
    log.warn({ worker: w.id, pid: w.process.pid, code, signal }, 'worker exited; restarting');
    setTimeout(() => !stopping && fork(), RESTART_DELAY_MS);
  });

  const sampler = createProcessSampler();
  const errors: AppState['recentErrors'] = [];
  const admin = createAdminServer({
    config: config.admin, registry: new Registry(), log, sampler,
    extraMetrics: async () => Registry.merged((await askAll('metrics')) as MetricDump[][]).render(),
    state: async () => mergeStates({ process: sampler.sample(), recentErrors: errors }, (await askAll('state')) as AppState[]),
    ready: async () => listening.size === workers && (await askAll('ready')).every((r) => r === true),
    shutdown: () => stop('admin'),
    abort: () => abort(),
  });

  const stop = (why: string): void => {
    if (stopping) return;
    stopping = true;
    const graceMs = config.admin.graceSecs * 1000;
    log.info({ signal: why, graceSecs: config.admin.graceSecs, workers: Object.keys(cluster.workers ?? {}).length }, 'shutting down');
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: 'shutdown', graceMs } satisfies ToWorker);
    if (Object.keys(cluster.workers ?? {}).length === 0) exit.resolve(0);
    // Workers cut what is left at the grace deadline; this is the backstop if one hangs.
    setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    }, graceMs + 5000).unref();
  };
  const abortQuietly = (): void => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    exit.resolve(1);
  };
  const abort = (): void => {
    log.warn({}, 'abort requested: exiting now');
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    exit.resolve(1);
  };

  for (let i = 0; i < workers; i++) fork();
  try {
    await admin.listen();
  } catch (e) {
    abortQuietly();
    throw e;
  }
  log.info({ workers }, 'workers started');
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    log.info({}, 'SIGHUP: workers reload TLS keys and certificates');
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: 'reload' } satisfies ToWorker);
  });
  const code = await exit.promise;
  await admin.close();
  sampler.close();
  return failed ? 1 : code;
}
