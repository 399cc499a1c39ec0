// The admin server's defences on a real socket: Host must name the server (DNS rebinding) on
// every endpoint before anything else runs; mutations need the bearer token when one is set
// (401 + WWW-Authenticate); a mutation acts only once its whole body has arrived (a malformed
// chunked body acts on nothing); a non-loopback bind warns once; /api/state redacts namerd's
// credentials. Raw HTTP is written by hand so odd Host fields reach the server unchanged.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { createAdminServer } from '../src/admin/server.ts';
import type { AppState } from '../src/admin/state.ts';
import { parseConfig } from '../src/config/load.ts';
import type { AdminConfig } from '../src/config/types.ts';
import { LinkerdTcpError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { Registry } from '../src/metrics/registry.ts';
import { deadline } from './support/harness.ts';
import { logSink } from './support/log-sink.ts';

const TOKEN = 'correct-horse-battery-staple-42';

const STATE: AppState = {
  at: 0, recentErrors: [], servers: [],
  process: { pid: 1, nodeVersion: 'v24', startedAt: 0, uptimeSecs: 1, rssBytes: 1, heapUsedBytes: 1, heapTotalBytes: 1, cpuUserSecs: 0, cpuSystemSecs: 0, openFds: 1, eventLoopDelayP99Ms: 0 },
  routers: [{ label: 'r', interpreter: { kind: 'io.l5d.namerd.http', namespace: 'default', baseUrl: 'http://admin:hunter2@127.0.0.1:4180' }, destinations: [] }],
} as unknown as AppState; // only the fields these tests read

async function start(t: TestContext, config: Partial<AdminConfig> = {}, env: Record<string, string> = {}) {
  const hooks = { shutdown: 0, abort: 0 };
  const sink = logSink();
  const admin = createAdminServer({
    config: { ip: '127.0.0.1', port: 0, metricsIntervalSecs: 60, graceSecs: 10, ...config },
    registry: new Registry(), state: () => STATE, ready: () => true,
    shutdown: () => void hooks.shutdown++, abort: () => void hooks.abort++,
    log: createLogger('debug', sink.stream), env,
  });
  await admin.listen();
  t.after(() => admin.close());
  return { admin, port: admin.port, hooks, logs: sink.lines };
}

interface Raw { status: number; head: string; body: string }

/** Writes `request` as is and reads the whole answer (the server closes, or we close after one answer). */
function raw(port: number, request: string | string[], host = '127.0.0.1'): Promise<Raw> {
  return deadline(5000, `answer to ${JSON.stringify(String(request).slice(0, 60))}`, new Promise<Raw>((resolve) => {
    const s = connect(port, host);
    let got = '';
    s.setEncoding('latin1').on('data', (d: string) => {
      got += d;
      const end = got.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: (\d+)/i.exec(got.slice(0, end));
      if (end >= 0 && len && got.length >= end + 4 + Number(len[1])) s.destroy();
    });
    s.on('error', () => {});
    s.on('close', () => {
      const end = got.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0), head: got.slice(0, end), body: got.slice(end + 4) });
    });
    const parts = Array.isArray(request) ? request : [request];
    const next = (i: number): void => {
      if (i >= parts.length) return;
      s.write(parts[i]!, () => setImmediate(() => next(i + 1)));
    };
    next(0);
  }));
}

const get = (path: string, host: string | undefined, extra = ''): string =>
  `GET ${path} HTTP/1.1\r\n${host === undefined ? '' : `Host: ${host}\r\n`}${extra}Connection: close\r\n\r\n`;
const post = (path: string, host: string, extra = ''): string => `POST ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`;

describe('admin: Host must name this server', () => {
  it('refuses another name with 421 on every endpoint, before any work (no hook runs)', async (t) => {
    const { port, hooks, logs } = await start(t);
    for (const path of ['/', '/metrics', '/admin/metrics/prometheus', '/api/state', '/ping', '/ready', '/nope']) {
      const r = await raw(port, get(path, `evil.example:${port}`));
      assert.equal(r.status, 421, `GET ${path}`);
      assert.ok(!r.body.includes('hunter2') && !r.body.includes('pong'), path);
    }
    for (const path of ['/shutdown', '/abort']) assert.equal((await raw(port, post(path, `evil.example:${port}`))).status, 421, `POST ${path}`);
    assert.equal((await raw(port, 'DELETE /shutdown HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n')).status, 421, 'before the 405');
    assert.deepEqual(hooks, { shutdown: 0, abort: 0 });
    assert.ok(logs.some((l) => l['level'] === 40 && /another host refused/.test(String(l['msg'])) && l['host'] === `evil.example:${port}`));
  });

  it('answers odd but valid Host forms that name it, refuses malformed ones with 400', async (t) => {
    const { port, hooks } = await start(t, { allowedHosts: ['admin.example.com', 'fwd.example:8080'] });
    const cases: [string, string | undefined, number][] = [
      ['IP literal with port', `127.0.0.1:${port}`, 200],
      ['IP literal without port', '127.0.0.1', 200],
      ['localhost', `localhost:${port}`, 200],
      ['uppercase', `LOCALHOST:${port}`, 200],
      ['trailing dot', `localhost.:${port}`, 200],
      ['allowed name, mixed case', `Admin.Example.Com:${port}`, 200],
      ['allowed name with its own port', 'fwd.example:8080', 200],
      ['another port', 'localhost:1', 421],
      ['a subdomain of an allowed name', `x.admin.example.com:${port}`, 421],
      ['userinfo', `user:pass@localhost:${port}`, 400],
      ['userinfo without password', `evil@127.0.0.1:${port}`, 400],
      ['unbracketed IPv6', '::1', 400],
      ['garbage', 'a b', 400],
      ['missing on HTTP/1.1', undefined, 400],
    ];
    for (const [name, host, want] of cases) assert.equal((await raw(port, get('/ping', host))).status, want, name);
    assert.equal((await raw(port, `GET /ping HTTP/1.1\r\nHost: localhost:${port}\r\nHost: evil.example\r\nConnection: close\r\n\r\n`)).status, 400, 'two Host fields');
    assert.equal((await raw(port, 'GET /ping HTTP/1.0\r\n\r\n')).status, 200, 'HTTP/1.0 without Host (no name was used)');
    assert.equal((await raw(port, post('/shutdown', `user:pw@127.0.0.1:${port}`))).status, 400);
    assert.deepEqual(hooks, { shutdown: 0, abort: 0 });
  });

  it('answers [::1] on an IPv6 loopback bind', async (t) => {
    const { port } = await start(t, { ip: '::1' });
    assert.equal((await raw(port, get('/ping', `[::1]:${port}`), '::1')).status, 200);
    assert.equal((await raw(port, get('/ping', `[0:0:0:0:0:0:0:1]:${port}`), '::1')).status, 200);
    assert.equal((await raw(port, get('/ping', `evil.example:${port}`), '::1')).status, 421);
  });
});

describe('admin: config', () => {
  it('admin.allowedHosts and admin.tokenFile are decoded, each problem named by its key path', () => {
    const ok = parseConfig('{"admin": {"allowedHosts": ["admin.example.com", "10.0.0.5", "[::1]:9989", "fwd.example."], "tokenFile": "/run/t"}, "routers": [{"label": "r", "dtab": "/svc=>/$/inet/127.0.0.1/1;", "servers": [{"port": 1, "dstName": "/svc/x"}]}]}', 'c.json');
    assert.deepEqual(ok.admin.allowedHosts, ['admin.example.com', '10.0.0.5', '[::1]:9989', 'fwd.example.']);
    assert.equal(ok.admin.tokenFile, '/run/t');
    assert.throws(
      () => parseConfig('{"admin": {"allowedHosts": ["*.example.com", "ok.example", "user@host", "[nope]", "h:99999", 7], "tokenFile": ""}, "routers": [{"label": "r", "dtab": "/svc=>/$/inet/127.0.0.1/1;", "servers": [{"port": 1, "dstName": "/svc/x"}]}]}', 'c.json'),
      (e: unknown) => {
        assert.ok(e instanceof LinkerdTcpError);
        const lines = e.message.split('\n');
        for (const i of [0, 2, 3, 4]) assert.ok(lines.some((l) => l.startsWith(`c.json: admin.allowedHosts[${i}]: expected a host name or IP literal`)), `[${i}] in ${e.message}`);
        assert.ok(lines.some((l) => l.startsWith('c.json: admin.allowedHosts[5]: expected a string')), e.message);
        assert.ok(lines.some((l) => l.startsWith('c.json: admin.tokenFile: expected a non-empty string')), e.message);
        assert.ok(!lines.some((l) => l.includes('allowedHosts[1]')), e.message);
        return true;
      },
    );
  });
});

describe('admin: mutations', () => {
  it('need the bearer token when one is set: 401 with WWW-Authenticate: Bearer; reads stay open', async (t) => {
    const { port, hooks, logs } = await start(t, {}, { LINKERD_TCP_ADMIN_TOKEN: TOKEN });
    const h = `127.0.0.1:${port}`;
    const none = await raw(port, post('/shutdown', h));
    assert.equal(none.status, 401);
    assert.match(none.head, /\r\nWWW-Authenticate: Bearer realm="linkerd-tcp admin"\r\n/i);
    const wrong = await raw(port, post('/abort', h, 'Authorization: Bearer not-the-token\r\n'));
    assert.equal(wrong.status, 401);
    assert.match(wrong.head, /\r\nWWW-Authenticate: Bearer realm="linkerd-tcp admin", error="invalid_token"\r\n/i);
    assert.equal((await raw(port, post('/shutdown', h, `Authorization: Basic ${TOKEN}\r\n`))).status, 401);
    assert.equal((await raw(port, get('/api/state', h))).status, 200, 'reads need no token');
    assert.deepEqual(hooks, { shutdown: 0, abort: 0 });
    assert.ok(logs.some((l) => l['msg'] === 'admin: shutdown refused' && l['why'] === 'no token'));
    assert.ok(!JSON.stringify(logs).includes(TOKEN), 'the token is never logged');
    const ok = await raw(port, post('/shutdown', h, `Authorization: Bearer ${TOKEN}\r\n`));
    assert.equal(ok.status, 202);
    await deadline(2000, 'shutdown hook', new Promise<void>((r) => { const i = setInterval(() => hooks.shutdown && (clearInterval(i), r()), 5); }));
  });

  it('act only once their whole body has arrived: a malformed chunked body stops nothing', async (t) => {
    const { port, hooks, logs } = await start(t);
    const h = `127.0.0.1:${port}`;
    const head = `POST /shutdown HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const bad = await raw(port, [head, '5\r\nhello\r\nzz\r\n']);
    assert.equal(bad.status, 400, 'the parser refuses the chunk size');
    const cut = connect(port, '127.0.0.1'); // a body that never completes, then the client leaves
    cut.on('error', () => {});
    await once(cut, 'connect');
    cut.write(head + '5\r\nhel');
    const cutClosed = once(cut, 'close');
    setImmediate(() => cut.destroy());
    await deadline(2000, 'cut client closed', cutClosed);
    assert.equal((await raw(port, get('/ping', h))).status, 200);
    assert.equal(hooks.shutdown, 0, 'shutdown acted on an incomplete body');
    // A whole chunked body, sent in pieces: acted on once it ends.
    const whole = await raw(port, [head, '5\r\nhello\r\n', '0\r\n\r\n']);
    assert.equal(whole.status, 202);
    assert.ok(logs.some((l) => String(l['msg']).startsWith('admin: shutdown ignored')), 'the incomplete ones are logged');
  });
});

describe('admin: exposure', () => {
  it('warns once at start when bound to a non-loopback address, naming the token', async (t) => {
    const open = await start(t, { ip: '0.0.0.0' });
    const warned = open.logs.filter((l) => l['level'] === 40 && /non-loopback/.test(String(l['msg'])));
    assert.equal(warned.length, 1);
    assert.match(String(warned[0]!['msg']), /stop the proxy.*LINKERD_TCP_ADMIN_TOKEN or admin\.tokenFile/);
    // On a wildcard bind, the machine's own addresses are its names too.
    assert.equal((await raw(open.port, get('/ping', `127.0.0.1:${open.port}`))).status, 200);
    assert.equal((await raw(open.port, get('/ping', `evil.example:${open.port}`))).status, 421);
    const withToken = await start(t, { ip: '0.0.0.0' }, { LINKERD_TCP_ADMIN_TOKEN: TOKEN });
    assert.ok(withToken.logs.some((l) => l['level'] === 40 && /need the admin token/.test(String(l['msg'])) && l['token'] === 'LINKERD_TCP_ADMIN_TOKEN'));
    const loop = await start(t);
    assert.ok(!loop.logs.some((l) => /non-loopback/.test(String(l['msg']))));
  });

  it('/api/state shows namerd\'s baseUrl without its credentials', async (t) => {
    const { port } = await start(t);
    const r = await raw(port, get('/api/state', `localhost:${port}`));
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes('hunter2') && !r.body.includes('admin:'), r.body);
    assert.equal((JSON.parse(r.body) as AppState).routers[0]!.interpreter.baseUrl, 'http://***@127.0.0.1:4180');
  });
});
