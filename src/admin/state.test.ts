// collectState over the real Router, Destination, Balancer and Server (a fake interpreter
// feeds resolutions): a live proxied connection, an ejected endpoint, a failed resolution
// that keeps the last set, and the recent-errors tee.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import type { RouterConfig, ServerConfig } from '../config/types.ts';
import type { Interpreter } from '../interpreter/interpreter.ts';
import { silentLogger } from '../log.ts';
import { Registry } from '../metrics/registry.ts';
import type { Resolution } from '../naming/resolution.ts';
import { Router } from '../router/router.ts';
import { Server } from '../server/server.ts';
import { createProcessSampler } from './process-metrics.ts';
import { RecentErrors, teeErrors } from './recent-errors.ts';
import { collectState } from './state.ts';

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function listen(t: TestContext, s: NetServer): Promise<number> {
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return (s.address() as AddressInfo).port;
}

function fakeInterpreter() {
  const subs = new Map<string, (r: Resolution) => void>();
  const interpreter: Interpreter = {
    watch: (dst, cb) => (subs.set(dst, cb), { close: () => subs.delete(dst) }),
    close: async () => {},
  };
  return { subs, interpreter, push: (dst: string, r: Resolution) => subs.get(dst)!(r) };
}

const serverConfig = (dstName: string): ServerConfig => ({
  ip: '127.0.0.1', port: 0, dstName, connectTimeoutMs: 2000, connectionLifetimeSecs: undefined, idleTimeoutMs: undefined,
  maxConcurrency: 100, tls: undefined,
});

describe('collectState', () => {
  it('reports routers, destinations, endpoints and servers from the real objects', async (t) => {
    const peers = new Set<Socket>();
    const echo = createServer((s) => { peers.add(s); s.on('error', () => {}); s.pipe(s); });
    t.after(() => { for (const p of peers) p.destroy(); });
    const livePort = await listen(t, echo);
    const dead = createServer();
    const deadPort = await listen(t, dead);
    await new Promise<void>((resolve) => dead.close(() => resolve()));

    const registry = new Registry();
    const errors = new RecentErrors();
    const log = teeErrors(silentLogger(), errors);
    const fake = fakeInterpreter();
    const router = new Router({
      label: 'rt1', interpreter: fake.interpreter, registry, log, highWaterMark: 16384,
      random: () => 0, // P2C keeps the first endpoint on ties: the dead one for /svc/dead
      client: { kind: 'io.l5d.global', failFast: { maxConsecutiveFailures: 1, failurePenaltySecs: 60 } },
    });
    const live = new Server({ config: serverConfig('/svc/live'), router, registry, log, bufferSizeBytes: 16384 });
    const down = new Server({ config: serverConfig('/svc/dead'), router, registry, log, bufferSizeBytes: 16384 });
    await live.listen();
    await down.listen();
    t.after(async () => {
      for (const s of [live, down]) { s.stopAccepting(); await s.drain(Date.now()); }
      await router.close();
    });
    router.destination('/svc/live');
    router.destination('/svc/dead');
    fake.push('/svc/live', { kind: 'bound', endpoints: [{ host: '127.0.0.1', port: livePort, weight: 3 }] });
    fake.push('/svc/dead', { kind: 'bound', endpoints: [{ host: '127.0.0.1', port: deadPort, weight: 1 }, { host: '127.0.0.1', port: livePort, weight: 1 }] });

    // One connection through to the echo backend, held open.
    const c = connect({ host: '127.0.0.1', port: live.port });
    c.on('error', () => {});
    t.after(() => c.destroy());
    c.write('hello');
    await within(5000, 'echo', once(c, 'data'));
    // One connection to /svc/dead: its first dial is refused and ejects the dead endpoint
    // (maxConsecutiveFailures 1); it is then retried on the live one, or closed, depending on
    // connectAttempts. The live endpoint keeps the set from being revived wholesale.
    const d = connect({ host: '127.0.0.1', port: down.port });
    d.on('error', () => {});
    t.after(() => d.destroy());
    d.write('x');
    await within(5000, 'dead routed', Promise.race([once(d, 'data'), once(d, 'close')]));
    fake.push('/svc/dead', { kind: 'failed', reason: 'namerd said 503' });

    const sampler = createProcessSampler();
    t.after(() => sampler.close());
    const st = collectState({
      routers: [router], servers: [live, down], startedAt: Date.now() - 1000, recentErrors: errors.list(), sampler,
      routerConfigs: [{ label: 'rt1', interpreter: { kind: 'default' } } as RouterConfig],
    });
    assert.equal(st.routers.length, 1);
    const rt = st.routers[0]!;
    assert.deepEqual(rt.interpreter, { kind: 'default', namespace: null, baseUrl: null });
    const [dl, dd] = rt.destinations;
    assert.deepEqual({ ...dl!, endpoints: undefined }, {
      name: '/svc/live', resolved: true, resolution: { kind: 'bound', endpoints: 1 }, waiters: 0,
      available: 1, failed: 0, retired: 0, open: 1, pending: 0, endpoints: undefined,
    });
    assert.deepEqual(dl!.endpoints, [{
      key: `127.0.0.1:${livePort}`, state: 'available', cause: null, healthy: null, failedUntil: null, weight: 1, load: 1, open: 1, pending: 0,
      connects: 1, failures: 0, consecutiveFailures: 0,
    }]);
    assert.deepEqual(dd!.resolution, { kind: 'failed', reason: 'namerd said 503' });
    assert.equal(dd!.resolved, true);
    assert.deepEqual([dd!.available, dd!.failed], [1, 1]);
    const ep = dd!.endpoints.find((e) => e.key === `127.0.0.1:${deadPort}`)!;
    assert.equal(ep.state, 'failed');
    assert.ok(ep.failedUntil !== null && ep.failedUntil > Date.now() + 50_000);
    assert.deepEqual([ep.failures, ep.consecutiveFailures, ep.connects], [1, 1, 0]);

    const [sl, sd] = st.servers;
    assert.equal(sl!.srvAddr, `127.0.0.1:${live.port}`);
    assert.deepEqual([sl!.router, sl!.dstName, sl!.listening, sl!.active, sl!.accepts, sl!.rxBytes, sl!.txBytes], ['rt1', '/svc/live', true, 1, 1, 5, 5]);
    assert.equal(sl!.connectLatencyUs.count, 1);
    assert.ok(sl!.connectLatencyUs.p50 > 0 && sl!.connectLatencyUs.p99 >= sl!.connectLatencyUs.p50);
    assert.deepEqual([sd!.router, sd!.dstName, sd!.accepts], ['rt1', '/svc/dead', 1]);

    assert.equal(st.process.pid, process.pid);
    assert.ok(st.process.uptimeSecs >= 1);
    assert.ok(st.process.openFds === null || st.process.openFds > 3);
    // Warnings written through child loggers land in recentErrors with their bindings.
    const warn = st.recentErrors.find((e) => e.msg === 'resolution failed; keeping the last endpoints');
    assert.equal(warn?.level, 'warn');
    assert.equal(warn?.context['dst'], '/svc/dead');
    assert.equal(warn?.context['rt'], 'rt1');
    assert.equal(warn?.context['reason'], 'namerd said 503');
    assert.ok(st.recentErrors.some((e) => e.msg === 'endpoint ejected'));
    assert.doesNotThrow(() => JSON.stringify(st));
  });

  it('shows a server that is not listening yet, and a destination still waiting', () => {
    const registry = new Registry();
    const fake = fakeInterpreter();
    const router = new Router({ label: 'r', interpreter: fake.interpreter, registry, log: silentLogger(), client: { kind: 'io.l5d.global' }, highWaterMark: 1024 });
    router.destination('/svc/x');
    const s = new Server({ config: serverConfig('/svc/x'), router, registry, log: silentLogger(), bufferSizeBytes: 1024 });
    const st = collectState({ routers: [router], servers: [s], startedAt: 0, recentErrors: [], now: () => 5000 });
    assert.equal(st.at, 5000);
    assert.equal(st.process.uptimeSecs, 5);
    assert.deepEqual(st.routers[0]!.interpreter, { kind: 'unknown', namespace: null, baseUrl: null });
    assert.deepEqual(st.routers[0]!.destinations[0]!.resolution, { kind: 'pending' });
    assert.equal(st.routers[0]!.destinations[0]!.resolved, false);
    assert.deepEqual([st.servers[0]!.listening, st.servers[0]!.srvAddr, st.servers[0]!.accepts], [false, '127.0.0.1:0', 0]);
  });
});

describe('RecentErrors', () => {
  it('keeps the last N, primitives only, cut short', () => {
    let now = 0;
    const r = new RecentErrors(3, () => ++now);
    for (let i = 0; i < 5; i++) r.add('error', `e${i}`, { i, obj: { deep: 1 }, err: new Error('x'.repeat(500)) });
    const l = r.list();
    assert.deepEqual(l.map((e) => [e.at, e.msg]), [[3, 'e2'], [4, 'e3'], [5, 'e4']]);
    assert.equal(l[0]!.context['i'], 2);
    assert.equal('obj' in l[0]!.context, false);
    assert.equal(l[0]!.context['err'], `${'x'.repeat(300)}… (200 bytes more)`);
  });
});
