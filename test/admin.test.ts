// The admin HTTP server on a real socket: tacho-format /metrics with process gauges, /ping,
// /ready, /api/state, the dashboard, POST-only /shutdown and /abort (hooks, 405s, cross-site
// refusal, logged caller), 404s, and hardening (431 for big heads, 413 for big bodies, a
// slowloris cut after headersTimeout while others are served, close() with idle keep-alives).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { type AdminLimits, createAdminServer } from '../src/admin/server.ts';
import { DASHBOARD_CSP, DASHBOARD_HTML } from '../src/admin/dashboard.ts';
import { DASHBOARD_SCRIPT } from '../src/admin/dashboard-script.ts';
import { collectState, type RouterView, type ServerView } from '../src/admin/state.ts';
import { LinkerdTcpError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { serverMetrics } from '../src/metrics/handles.ts';
import { Registry } from '../src/metrics/registry.ts';
import { deadline } from './support/harness.ts';
import { logSink } from './support/log-sink.ts';

interface Reply { status: number; headers: IncomingHttpHeaders; body: string }

function http(port: number, method: string, path: string, headers: Record<string, string> = {}, agent: Agent | false = false): Promise<Reply> {
  return deadline(5000, `${method} ${path}`, new Promise<Reply>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  }));
}

/** A fake app: one router with one destination and endpoint, one server whose counters tests bump. */
function fakeApp(registry: Registry) {
  const metrics = serverMetrics(registry, 'x', '127.0.0.1:1', false, { active: () => 2, waiters: () => 0 });
  const ep = { key: '127.0.0.1:9', state: { kind: 'failed', since: 1, until: 2 } as const, weight: 1, load: 0, open: 0, pending: 0, connects: 4, failures: 5, consecutiveFailures: 5 };
  const router: RouterView = {
    label: 'x',
    destinations: new Map([['/svc/web', {
      name: '/svc/web', waiters: new Set(),
      balancer: { resolved: true, lastResolution: { kind: 'failed', reason: 'namerd 503' }, endpoints: new Map([[ep.key, ep]]) },
    }]]),
  };
  const server: ServerView = {
    rt: 'x', srvAddr: '127.0.0.1:1', config: { ip: '127.0.0.1', port: 1, dstName: '/svc/web', tls: undefined },
    live: new Set([{ open: true, client: { bytesRead: 10, bytesWritten: 20 } }]), metrics,
  };
  return { metrics, router, server };
}

async function start(t: TestContext, over: { ready?: () => boolean; limits?: Partial<AdminLimits> } = {}) {
  const registry = new Registry();
  const app = fakeApp(registry);
  const hooks = { shutdown: 0, abort: 0 };
  const called = { shutdown: Promise.withResolvers<void>(), abort: Promise.withResolvers<void>() };
  const sink = logSink();
  const admin = createAdminServer({
    config: { ip: '127.0.0.1', port: 0, metricsIntervalSecs: 60, graceSecs: 10 },
    registry,
    state: () => collectState({ routers: [app.router], servers: [app.server], startedAt: Date.now() - 5000, recentErrors: [], routerConfigs: [] }),
    ready: over.ready ?? (() => true),
    shutdown: () => { hooks.shutdown++; called.shutdown.resolve(); },
    abort: () => { hooks.abort++; called.abort.resolve(); },
    log: createLogger('info', sink.stream),
    limits: over.limits,
  });
  await admin.listen();
  t.after(() => admin.close());
  return { admin, port: admin.port, registry, app, hooks, called, logs: sink.lines };
}

describe('admin server', () => {
  it('serves tacho-format /metrics with process gauges', async (t) => {
    const { port, registry, app } = await start(t);
    app.metrics.accepts.value += 3;
    app.metrics.connectFailureTimeout.value++;
    app.metrics.connectLatencyUs.record(412);
    registry.snapshot();
    const r = await http(port, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const lines = r.body.split('\n');
    for (const want of [
      'l5d:srv:accepts{rt="x", srv_addr="127.0.0.1:1"} 3',
      'l5d:srv:closes{rt="x", srv_addr="127.0.0.1:1"} 0',
      'l5d:srv:connect:failure{cause="timeout", rt="x", srv_addr="127.0.0.1:1"} 1',
      'l5d:srv:active{rt="x", srv_addr="127.0.0.1:1"} 2',
      'l5d:srv:connect:latency_us_count{rt="x", srv_addr="127.0.0.1:1"} 1',
      'l5d:srv:connect:latency_us_bucket{le="500", rt="x", srv_addr="127.0.0.1:1"} 1',
      'l5d:srv:connect:latency_us_bucket{le="+Inf", rt="x", srv_addr="127.0.0.1:1"} 1',
      'l5d:srv:connect:latency_us_min{rt="x", srv_addr="127.0.0.1:1"} 412',
    ]) assert.ok(lines.includes(want), `missing line: ${want}\n${r.body}`);
    const proc = (name: string): number => {
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.body);
      assert.ok(m, `missing ${name}`);
      return Number(m[1]);
    };
    assert.ok(proc('process:rss_bytes') > 1e6);
    assert.ok(proc('process:heap_used_bytes') > 0);
    assert.ok(proc('process:cpu_user_seconds') > 0);
    assert.ok(proc('process:cpu_system_seconds') >= 0);
    assert.ok(proc('process:uptime_seconds') >= 0);
    assert.ok(proc('process:event_loop_delay_p99_ms') >= 0);
    assert.ok(proc('process:open_fds') > 2);
    // tacho wrote no HELP/TYPE lines; we add them (names and series unchanged), one per family.
    for (const want of [
      '# HELP l5d:srv:accepts Client connections accepted by this server.',
      '# TYPE l5d:srv:accepts counter',
      '# TYPE l5d:srv:active gauge',
      '# TYPE l5d:srv:connect:latency_us_bucket gauge',
      '# TYPE process:rss_bytes gauge',
    ]) assert.equal(lines.filter((l) => l === want).length, 1, want);
    const alias = await http(port, 'GET', '/admin/metrics/prometheus');
    assert.ok(alias.body.includes('l5d:srv:accepts{rt="x", srv_addr="127.0.0.1:1"} 3\n'));
    const head = await http(port, 'HEAD', '/metrics');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 0);
  });

  it('answers /ping and /ready, which flips from 503 to 200', async (t) => {
    let ready = false;
    const { port } = await start(t, { ready: () => ready });
    for (const path of ['/ping', '/admin/ping', '/ping?x=1']) {
      const r = await http(port, 'GET', path);
      assert.deepEqual([r.status, r.body], [200, 'pong'], path);
    }
    assert.deepEqual(await http(port, 'GET', '/ready').then((r) => [r.status, r.body]), [503, 'not ready']);
    ready = true;
    assert.deepEqual(await http(port, 'GET', '/ready').then((r) => [r.status, r.body]), [200, 'ready']);
  });

  it('serves /api/state as JSON', async (t) => {
    const { port } = await start(t);
    const r = await http(port, 'GET', '/api/state');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    const s = JSON.parse(r.body) as Record<string, unknown> & { process: Record<string, unknown>; routers: { destinations: Record<string, unknown>[] }[]; servers: Record<string, unknown>[] };
    assert.equal(typeof s['at'], 'number');
    assert.equal(s.process['pid'], process.pid);
    assert.ok((s.process['uptimeSecs'] as number) >= 5);
    assert.deepEqual(s.routers[0]!.destinations[0], {
      name: '/svc/web', resolved: true, resolution: { kind: 'failed', reason: 'namerd 503' }, waiters: 0,
      available: 0, failed: 1, retired: 0, open: 0, pending: 0,
      endpoints: [{ key: '127.0.0.1:9', state: 'failed', cause: 'fail-fast', healthy: null, failedUntil: 2, weight: 1, load: 0, open: 0, pending: 0, connects: 4, failures: 5, consecutiveFailures: 5 }],
    });
    assert.deepEqual(s.servers[0], {
      router: 'x', srvAddr: '127.0.0.1:1', listening: true, dstName: '/svc/web', tls: false, tlsIdentities: [], engine: 'node', active: 1, waiters: 0,
      accepts: 0, closes: 0, failures: 0, rejected: 0, rxBytes: 10, txBytes: 20, connectLatencyUs: { count: 0, p50: 0, p99: 0, windowSecs: 60 }, tlsFailures: {},
    });
    assert.deepEqual(s['recentErrors'], []);
  });

  it('serves the dashboard with a CSP that allows exactly its script', async (t) => {
    const { port } = await start(t);
    const r = await http(port, 'GET', '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['content-security-policy'], DASHBOARD_CSP);
    assert.equal(r.body, DASHBOARD_HTML);
    assert.ok(!/<\/script/i.test(DASHBOARD_SCRIPT) && !/innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(DASHBOARD_SCRIPT));
    assert.equal((await http(port, 'HEAD', '/')).status, 200);
  });

  it('POST /shutdown and /abort answer 202, call their hook and log the caller', async (t) => {
    const { port, hooks, called, logs } = await start(t);
    const s = await http(port, 'POST', '/shutdown');
    assert.deepEqual([s.status, s.body], [202, 'shutting down']);
    await deadline(2000, 'shutdown hook', called.shutdown.promise);
    const a = await http(port, 'POST', '/abort');
    assert.deepEqual([a.status, a.body], [202, 'aborting']);
    await deadline(2000, 'abort hook', called.abort.promise);
    assert.deepEqual(hooks, { shutdown: 1, abort: 1 });
    const line = logs.find((l) => l['msg'] === 'admin: shutdown requested');
    assert.match(String(line?.['caller']), /^127\.0\.0\.1:\d+$/);
    assert.ok(logs.some((l) => l['msg'] === 'admin: abort requested'));
  });

  it('refuses wrong methods with 405 + Allow, cross-site POSTs with 403, unknown paths with 404', async (t) => {
    const { port, hooks } = await start(t);
    const cases: [string, string, number, string | undefined][] = [
      ['GET', '/shutdown', 405, 'POST'],
      ['HEAD', '/abort', 405, 'POST'],
      ['PUT', '/abort', 405, 'POST'],
      ['POST', '/metrics', 405, 'GET, HEAD'],
      ['DELETE', '/', 405, 'GET, HEAD'],
      ['GET', '/nope', 404, undefined],
      ['POST', '/admin/shutdown', 404, undefined],
      ['GET', '/metrics/', 404, undefined],
    ];
    for (const [method, path, status, allow] of cases) {
      const r = await http(port, method, path);
      assert.equal(r.status, status, `${method} ${path}`);
      assert.equal(r.headers['allow'], allow, `${method} ${path}`);
    }
    const x = await http(port, 'POST', '/shutdown', { Origin: 'http://evil.example' });
    assert.equal(x.status, 403);
    const y = await http(port, 'POST', '/abort', { 'Sec-Fetch-Site': 'cross-site' });
    assert.equal(y.status, 403);
    const same = await http(port, 'POST', '/shutdown', { Origin: `http://127.0.0.1:${port}`, 'Sec-Fetch-Site': 'same-origin' });
    assert.equal(same.status, 202);
    assert.deepEqual(hooks, { shutdown: 1, abort: 0 });
  });

  it('answers 431 to oversized headers and 413 to oversized bodies', async (t) => {
    const { port } = await start(t);
    const big = await http(port, 'GET', '/ping', { 'X-Big': 'a'.repeat(20 * 1024) });
    assert.equal(big.status, 431);
    const body = await http(port, 'POST', '/shutdown', { 'Content-Length': String(1 << 20) });
    assert.equal(body.status, 413);
    assert.equal((await http(port, 'GET', '/ping')).status, 200);
  });

  it('cuts a slowloris client after headersTimeout while serving others', async (t) => {
    const { port } = await start(t, { limits: { headersTimeoutMs: 400, requestTimeoutMs: 2000 } });
    const slow = connect({ host: '127.0.0.1', port });
    slow.on('error', () => {});
    t.after(() => slow.destroy());
    await deadline(2000, 'slow connect', once(slow, 'connect'));
    let got = '';
    slow.setEncoding('utf8').on('data', (d: string) => (got += d));
    const closed = once(slow, 'close');
    const startedAt = Date.now();
    slow.write('GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: '); // and nothing more
    // Others are served while the slow head is pending.
    for (let i = 0; i < 5; i++) assert.equal((await http(port, 'GET', '/ping')).body, 'pong');
    await deadline(5000, 'slowloris cut', closed);
    assert.ok(Date.now() - startedAt >= 350, 'not cut before headersTimeout');
    assert.match(got, /^HTTP\/1\.1 408 /);
    assert.equal((await http(port, 'GET', '/ping')).body, 'pong');
  });

  it('close() ends idle keep-alive connections and stops listening', async (t) => {
    const { admin, port } = await start(t);
    const agent = new Agent({ keepAlive: true });
    t.after(() => agent.destroy());
    assert.equal((await http(port, 'GET', '/ping', {}, agent)).status, 200);
    const idle = Object.values(agent.freeSockets).flat()[0];
    assert.ok(idle, 'an idle keep-alive socket');
    const idleClosed = once(idle, 'close');
    await deadline(2000, 'admin close', admin.close());
    await deadline(2000, 'idle socket closed', idleClosed);
    await assert.rejects(http(port, 'GET', '/ping'), /ECONNREFUSED/);
    await admin.close(); // idempotent
  });

  it('answers 500 when collecting state throws, and keeps serving', async (t) => {
    const sink = logSink();
    const admin = createAdminServer({
      config: { ip: '127.0.0.1', port: 0, metricsIntervalSecs: 60, graceSecs: 10 }, registry: new Registry(),
      state: () => { throw new Error('boom'); }, ready: () => true, shutdown: () => {}, abort: () => {}, log: createLogger('info', sink.stream),
    });
    await admin.listen();
    t.after(() => admin.close());
    assert.equal((await http(admin.port, 'GET', '/api/state')).status, 500);
    assert.equal((await http(admin.port, 'GET', '/ping')).status, 200);
    assert.ok(sink.lines.some((l) => l['msg'] === 'admin: request failed' && l['err'] === 'boom'));
  });

  it('reports a port in use as a LISTEN error', async (t) => {
    const taken = createNetServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const port = (taken.address() as AddressInfo).port;
    const admin = createAdminServer({
      config: { ip: '127.0.0.1', port, metricsIntervalSecs: 60, graceSecs: 10 }, registry: new Registry(),
      state: () => { throw new Error('unused'); }, ready: () => true, shutdown: () => {}, abort: () => {}, log: createLogger('silent'),
    });
    t.after(() => admin.close());
    await assert.rejects(admin.listen(), (e: unknown) => e instanceof LinkerdTcpError && e.code === 'LISTEN' && e.message.includes(`127.0.0.1:${port}`));
  });
});
