// GET /delegator.json on a real admin server over real interpreters: the default one (router
// dtab + io.l5d.fs files + /$/inet), a namerd one (proxied to a namerd double's
// /api/1/delegate), and the real CLI with two workers (the primary answers from the names hub).
// Errors as linkerd words them; the same Host check as every admin route.
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import type { Delegators } from '../src/admin/delegator.ts';
import { createAdminServer } from '../src/admin/server.ts';
import type { AppState } from '../src/admin/state.ts';
import { delegateOf, type Interpreter } from '../src/interpreter/interpreter.ts';
import { createNamerdInterpreter } from '../src/interpreter/namerd.ts';
import { createLogger } from '../src/log.ts';
import { Registry } from '../src/metrics/registry.ts';
import { EMPTY_STATE, fsRouter } from './support/delegator.ts';
import { deadline, startProxy } from './support/harness.ts';

const log = createLogger('silent');

/** GET with the Host header given (default: the address itself); status, type and body. */
function get(addr: string, path: string, host = addr): Promise<{ status: number; type: string; body: string }> {
  const [ip, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return deadline(10_000, `GET ${path}`, new Promise((resolve, reject) => {
    const req = request({ host: ip, port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject).end();
  }));
}
const q = (params: Record<string, string>): string => '/delegator.json?' + new URLSearchParams(params).toString();

/** An admin server over these interpreters (router label → interpreter). */
async function adminOver(interpreters: Record<string, Interpreter>, state: () => AppState = () => EMPTY_STATE) {
  const delegators: Delegators = { labels: () => Object.keys(interpreters), delegate: (l) => (Object.hasOwn(interpreters, l) ? delegateOf(interpreters[l]!) : undefined) };
  const admin = createAdminServer({
    config: { ip: '127.0.0.1', port: 0, metricsIntervalSecs: 60, graceSecs: 10 }, registry: new Registry(), state,
    ready: () => true, shutdown: () => {}, abort: () => {}, log, delegators,
  });
  await admin.listen();
  return admin;
}

describe('GET /delegator.json', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('answers the default interpreter\'s tree: union weights, leaves with their addresses', async () => {
    const { interpreter } = fsRouter();
    cleanup.push(() => interpreter.close());
    const admin = await adminOver({ web: interpreter });
    cleanup.push(() => admin.close());

    const r = await get(admin.address, q({ namespace: 'web', path: '/svc/web/extra' }));
    assert.equal(r.status, 200, r.body);
    assert.match(r.type, /^application\/json/);
    const leaf = (file: string, addrs: unknown[]) => ({
      type: 'leaf', path: `/#/io.l5d.fs/${file}/extra`, dentry: { prefix: '/svc/web', dst: '3.00*/#/io.l5d.fs/web & /#/io.l5d.fs/web-canary' },
      bound: { addr: { type: 'bound', addrs, meta: {} }, id: `/#/io.l5d.fs/${file}`, path: '/extra' },
    });
    const union = {
      type: 'union', path: '/svc/web/extra', dentry: { prefix: '/svc/web', dst: '3.00*/#/io.l5d.fs/web & /#/io.l5d.fs/web-canary' },
      union: [
        { weight: 3, tree: leaf('web', [{ ip: '127.0.0.1', port: 8001, meta: {} }, { ip: '127.0.0.1', port: 8002, meta: { endpoint_addr_weight: 2 } }]) },
        { weight: 1, tree: leaf('web-canary', [{ ip: '127.0.0.1', port: 9001, meta: {} }]) },
      ],
    };
    // Both dentries match: the later (/svc/web) first, the /svc fallback second.
    const webAddrs = [{ ip: '127.0.0.1', port: 8001, meta: {} }, { ip: '127.0.0.1', port: 8002, meta: { endpoint_addr_weight: 2 } }];
    assert.deepEqual(JSON.parse(r.body), {
      type: 'alt', path: '/svc/web/extra',
      alt: [union, { ...leaf('web', webAddrs), dentry: { prefix: '/svc', dst: '/#/io.l5d.fs' } }],
    });

    // The extra dtab is appended (it takes precedence); an alt's fallback and /$/fail show too.
    const extra = JSON.parse((await get(admin.address, q({ namespace: 'web', path: '/svc/db', dtab: '/svc/db => ~' }))).body);
    assert.equal(extra.type, 'alt');
    assert.deepEqual(extra.alt[0], { type: 'neg', path: '~', dentry: { prefix: '/svc/db', dst: '~' } });
    assert.deepEqual(extra.alt.slice(1).map((x: { type: string; path: string }) => `${x.type} ${x.path}`), ['leaf /$/inet/127.1/5432', 'fail /$/fail', 'neg /#/io.l5d.fs/db']);
  });

  it('errors as linkerd words them, and the Host check of every admin route', async () => {
    const { interpreter } = fsRouter();
    cleanup.push(() => interpreter.close());
    const admin = await adminOver({ web: interpreter, nodelegate: { watch: () => ({ close() {} }), close: async () => {} } });
    cleanup.push(() => admin.close());
    const table: [Record<string, string>, number, RegExp][] = [
      [{ namespace: 'web', path: 'invalid-param' }, 400, /^Invalid path: '\/' expected but 'i' found at '\[i\]nvalid-param'$/],
      [{ namespace: 'web', path: '/svc', dtab: 'invalid-param' }, 400, /^Invalid dtab: '\/' expected but 'i' found at '\[i\]nvalid-param'$/],
      [{ namespace: 'nope', path: '/svc' }, 404, /^Unknown namespace: "nope" names no router \(routers: "web", "nodelegate"\)$/],
      [{ namespace: 'nodelegate', path: '/svc' }, 501, /^Name Interpreter for nodelegate cannot show delegations$/],
      [{ path: '/svc' }, 400, /namespace .* is required/],
      [{ namespace: 'web' }, 400, /path is required/],
    ];
    for (const [params, status, body] of table) {
      const r = await get(admin.address, q(params));
      assert.equal(r.status, status, `${JSON.stringify(params)}: ${r.body}`);
      assert.match(r.type, /^text\/plain/);
      assert.match(r.body, body);
    }
    assert.equal((await get(admin.address, q({ namespace: 'web', path: '/svc' }), 'evil.example:80')).status, 421);
    assert.equal((await get(admin.address, '/delegator', 'evil.example')).status, 421);
  });

  it('a dtab whose alternatives explode answers at once, with one exception node', async () => {
    const { interpreter } = fsRouter();
    cleanup.push(() => interpreter.close());
    const admin = await adminOver({ web: interpreter });
    cleanup.push(() => admin.close());
    const dtab = Array.from({ length: 40 }, (_, i) => `/n${i} => /n${i + 1} | /n${i + 1}`).join(';');
    const r = await get(admin.address, q({ namespace: 'web', path: '/n0', dtab }));
    assert.equal(r.status, 200);
    const t = JSON.parse(r.body);
    assert.equal(t.type, 'exception');
    assert.match(t.message, /took over \d+ steps/);
  });

  it('a namerd router: proxied to namerd\'s /api/1/delegate with the router dtab and the extra one', async () => {
    const seen: string[] = [];
    const namerd = createServer((req, res) => {
      seen.push(String(req.url));
      const u = new URL(String(req.url), 'http://n');
      if (u.searchParams.get('path') === '/bad') {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('Invalid path: nope');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"type":"delegate","path":"/yeezy","delegate":{"type":"neg","path":"/yeezus","dentry":{"prefix":"/yeezy","dst":"/yeezus"}}}');
    });
    namerd.listen(0, '127.0.0.1');
    await once(namerd, 'listening');
    cleanup.push(() => new Promise((r) => namerd.close(r)));
    const port = (namerd.address() as { port: number }).port;
    const interpreter = createNamerdInterpreter({
      config: { kind: 'io.l5d.namerd.http', baseUrl: `http://127.0.0.1:${port}`, namespace: 'yeezus', periodSecs: 5, watch: false, mode: 'resolve', requestTimeoutMs: 2000 } as Parameters<typeof createNamerdInterpreter>[0]['config'],
      routerLabel: 'rt', dtab: '/a => /b', registry: new Registry(), log,
    });
    cleanup.push(() => interpreter.close());
    const admin = await adminOver({ rt: interpreter });
    cleanup.push(() => admin.close());
    const r = await get(admin.address, q({ namespace: 'rt', path: '/yeezy', dtab: '/yeezy=>/bar' }));
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, '{"type":"delegate","path":"/yeezy","delegate":{"type":"neg","path":"/yeezus","dentry":{"prefix":"/yeezy","dst":"/yeezus"}}}');
    const asked = new URL(seen[0]!, 'http://n');
    assert.equal(asked.pathname, '/api/1/delegate/yeezus');
    assert.equal(asked.searchParams.get('path'), '/yeezy');
    assert.equal(asked.searchParams.get('dtab'), '/a => /b;/yeezy=>/bar');
    const bad = await get(admin.address, q({ namespace: 'rt', path: '/bad' }));
    assert.equal(bad.status, 400);
    assert.match(bad.body, /namerd .* answered HTTP 400: Invalid path: nope/);
    await new Promise((res) => namerd.close(res));
    const down = await get(admin.address, q({ namespace: 'rt', path: '/yeezy' }));
    assert.equal(down.status, 502);
    assert.match(down.body, /delegate request failed: ECONNREFUSED/);
  });

  it('with two workers, the primary answers from the interpreters the workers resolve through', { timeout: 60_000 }, async () => {
    const { proxy } = await startProxy(`
admin: {port: 0, graceSecs: 5}
routers:
- label: two
  dtab: /svc => 2 * /$/inet/127.1/7001 & /$/inet/127.1/7002;
  servers:
  - {port: 0, dstName: /svc/x}
`, 1, { LINKERD_TCP_WORKERS: '2' });
    cleanup.push(() => proxy.stop('SIGKILL'));
    const l = await proxy.waitForLog((x) => x.msg === 'admin listening');
    const r = await get(String(l['admin']), q({ namespace: 'two', path: '/svc/x' }));
    assert.equal(r.status, 200, r.body);
    const t = JSON.parse(r.body);
    assert.equal(t.type, 'union');
    assert.deepEqual(t.union.map((b: { weight: number; tree: { bound: { addr: { addrs: { port: number }[] } } } }) => [b.weight, b.tree.bound.addr.addrs[0]!.port]), [[2, 7001], [1, 7002]]);
  });
});
