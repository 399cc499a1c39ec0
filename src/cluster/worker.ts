// A worker process of several: gets its config from the primary, runs the proxy with
// listeners shared through SO_REUSEPORT and no admin server of its own, and answers the
// primary's questions (metrics, state, readiness) so the admin server can sum them up.
import cluster from 'node:cluster';
import { App } from '../app.ts';
import type { Logger } from '../log.ts';
import type { ToPrimary, ToWorker } from './protocol.ts';

function send(m: ToPrimary): void {
  if (process.connected) process.send?.(m);
}

export function runWorker(baseLog: Logger): Promise<number> {
  const log = baseLog.child({ worker: cluster.worker?.id ?? 0 });
  return new Promise<number>((resolve) => {
    let app: App | undefined;
    let stopping = false;
    const stop = (graceMs: number): void => {
      if (stopping) return;
      stopping = true;
      const done = (): void => resolve(0);
      if (app) void app.close(graceMs).then(done, done);
      else done();
    };
    process.on('message', (m: ToWorker) => {
      switch (m.type) {
        case 'start': {
          const a = new App(m.config, log, {
            shutdown: () => send({ type: 'admin', what: 'shutdown' }),
            abort: () => send({ type: 'admin', what: 'abort' }),
          }, { worker: true, workerId: cluster.worker?.id ?? 0 });
          app = a;
          a.start().then(() => send({ type: 'listening' }), (e: unknown) => {
            send({ type: 'failed', message: (e as Error).message });
            resolve(1);
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
          stop(m.graceMs);
          return;
        case 'reload':
          app?.reloadTls('SIGHUP');
          return;
      }
    });
    // A signal sent to the worker itself (or the whole group, as Ctrl-C does) drains it too.
    const grace = (): number => (app?.config.admin.graceSecs ?? 10) * 1000;
    process.on('SIGTERM', () => stop(grace()));
    process.on('SIGINT', () => stop(grace()));
    process.on('SIGHUP', () => app?.reloadTls('SIGHUP'));
    process.on('disconnect', () => stop(0)); // the primary is gone
  });
}
