// closeIdleRouters with plain stand-ins: a replaced router closes only once no live
// connection (on a serving or a draining server) holds one of its destinations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../config/types.ts';
import { silentLogger } from '../log.ts';
import { closeIdleRouters, type LiveRouter, type LiveServer, type LiveTarget } from './live.ts';

function router(label: string): LiveRouter & { closed: boolean; dest: object } {
  const dest = {};
  const r = { label, destinations: new Map([['/svc/x', dest]]), closed: false, dest, close: async () => { r.closed = true; } };
  return r;
}
function server(live: { destination: unknown }[]): LiveServer<LiveRouter> {
  return {
    rt: 'r', config: { ip: '127.0.0.1', port: 1 } as LiveServer<LiveRouter>['config'], live: new Set(live), port: 1, carry: undefined,
    listen: async () => {}, prepare: () => {}, stopAccepting: () => {}, drain: async () => {}, whenIdle: async () => {}, close: () => {}, retarget: () => {},
    totalBytes: () => ({ rx: 0, tx: 0 }),
  };
}

describe('closeIdleRouters', () => {
  it('keeps a replaced router while a connection (also on a draining server) uses it, then closes it', async () => {
    const old = router('r');
    const conn = { destination: old.dest as unknown };
    const draining = server([conn]);
    const t: LiveTarget<LiveRouter, LiveServer<LiveRouter>> = {
      config: {} as Config, routers: [router('r')], servers: [server([])], draining: new Set([draining]), retired: new Set([old]),
      reusePort: false, log: silentLogger(),
      makeRouter: () => { throw new Error('unused'); }, makeServer: () => { throw new Error('unused'); },
      dropRouter: async () => {}, applied: () => {},
    };
    await closeIdleRouters(t);
    assert.equal(old.closed, false);
    assert.equal(t.retired.size, 1);
    (draining.live as Set<unknown>).delete(conn);
    await closeIdleRouters(t);
    assert.equal(old.closed, true);
    assert.equal(t.retired.size, 0);
  });
});
