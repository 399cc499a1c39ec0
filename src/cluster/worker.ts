// A worker process of several: gets its config from the primary, runs the proxy with
// listeners shared through SO_REUSEPORT and no admin server of its own, and answers the
// primary's questions (metrics, state, readiness) so the admin server can sum them up.
// Its lifecycle is the single process's (lifecycle.ts): a signal to the worker itself or
// to the whole process group (Ctrl-C) drains it, a second one exits now; one that arrives
// while it starts drains once its listeners are bound, and one before the config came
// means it never starts.
import cluster from 'node:cluster';
import { App } from '../app.ts';
import { RemoteHealth } from '../health/remote.ts';
import { planReload } from '../reload/plan.ts';
import { Lifecycle } from '../lifecycle.ts';
import type { Logger } from '../log.ts';
import { PreparedRounds } from './prepared-rounds.ts';
import type { ToPrimary, ToWorker } from './protocol.ts';
import { RemoteNames } from './remote-names.ts';
import { RemoteSessions } from './remote-sessions.ts';
import { routeHup, routeStops } from '../signals.ts';

/** Sends to the primary; a closed channel (the primary gone) is not an error here. */
function send(m: ToPrimary): void {
  if (!process.connected || !process.send) return;
  try {
    process.send(m, undefined, undefined, () => {}); // a callback: a failed send never becomes an 'error' event
  } catch {
    // ERR_IPC_CHANNEL_CLOSED between the check and the send: 'disconnect' follows.
  }
}

export function runWorker(baseLog: Logger, marginMs: number): Promise<number> {
  const log = baseLog.child({ worker: cluster.worker?.id ?? 0 });
  let app: App | undefined;
  // Health checks run in the primary, once for all workers; this forwards watches and gets verdicts.
  const health = new RemoteHealth(send);
  // Names resolve in the primary, once for all workers (one namerd stream per destination).
  const names = new RemoteNames(send);
  // TLS sessions (session-ID resumption) are kept by the primary, for every worker.
  const sessions = new RemoteSessions(send);
  /** Config reloads prepared and waiting for the primary's commit or abort, by round. */
  const prepared = new PreparedRounds();
  const lc = new Lifecycle({
    log, marginMs,
    graceMs: () => (app?.config.admin.graceSecs ?? 10) * 1000,
    drain: (graceMs) => app?.close(graceMs) ?? Promise.resolve(),
  });
  process.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'start': {
        if (app || lc.stopping) return;
        const a = new App(m.config, log, {
          shutdown: () => send({ type: 'admin', what: 'shutdown' }),
          abort: () => send({ type: 'admin', what: 'abort' }),
        }, { worker: true, workerId: cluster.worker?.id ?? 0, processes: m.processes, health, interpreterFor: (rc) => names.interpreter(rc.label), sessions });
        app = a;
        // A stop meanwhile (the primary's word, or Ctrl-C to the group) drains once this is done.
        lc.start(() => a.start()).then(() => send({ type: 'listening' }), (e: unknown) => {
          send({ type: 'failed', message: (e as Error).message });
          lc.finish(1);
        });
        return;
      }
      case 'req': {
        if (!app) return;
        const value = m.what === 'metrics' ? app.registry.dump() : m.what === 'state' ? app.state() : app.isReady();
        send({ type: 'res', id: m.id, value });
        return;
      }
      case 'shutdown':
        lc.stop('primary');
        return;
      case 'reload':
        app?.reloadTls('SIGHUP');
        return;
      case 'ticket-keys':
        app?.setTicketKeys(Buffer.from(m.keys));
        return;
      case 'session':
        sessions.answer(m.req, m.data);
        return;
      case 'session-known':
        sessions.learn(m.id);
        return;
      case 'resolution':
        names.deliver(m.rt, m.dst, m.resolution);
        return;
      case 'health':
        health.deliver(m.key, m.healthy, m.passed);
        return;
      case 'reload-prepare': {
        // The primary decided the reload; prepare it here (bind, load TLS) and say so, then wait for commit or abort.
        const a = app;
        if (!a) return void send({ type: 'reload-prepared', id: m.id, error: null }); // not started: it starts with the committed config
        void prepared.prepare(m.id, a.prepareReload(m.config, planReload(a.config, m.config)))
          .then((error) => send({ type: 'reload-prepared', id: m.id, error }));
        return;
      }
      case 'reload-commit':
        prepared.commit(m.id);
        send({ type: 'reload-committed', id: m.id }); // in force: the primary may now say so
        return;
      case 'reload-abort':
        void prepared.abort(m.id);
        return;
    }
  });
  routeStops((s) => lc.stop(s)); // held since the process began (signals.ts): before 'start', nothing to drain
  routeHup(() => app?.reloadTls('SIGHUP'));
  // The primary is gone (killed, or it gave up on us): nobody supervises or answers for us.
  process.on('disconnect', () => lc.abort('primary gone: exiting now'));
  return lc.exitCode;
}
