// Admin through the real CLI: /metrics counters move by exactly the traffic sent, the
// access log has one record per connection, POST /shutdown drains and exits 0, POST /abort
// exits at once.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { type Backend, peerClosed, deadline, echo, type Proxy, startBackend, startProxy, TEST_WORKERS } from './support/harness.ts';
import { metric } from './support/client.ts';

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, 'client connect', once(s, 'connect').then(() => s));
}

async function adminUrl(p: Proxy): Promise<string> {
  const l = await p.waitForLog((x) => x.msg === 'admin listening');
  return `http://${String(l['admin'])}`;
}

describe('observability end to end', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  async function backend(): Promise<Backend> {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    return b;
  }
  async function proxy(port: number) {
    const p = await startProxy(`
admin: {port: 0, graceSecs: 5}
routers:
- label: obs
  dtab: /svc/echo => /$/inet/127.0.0.1/${port};
  servers:
  - {port: 0, dstName: /svc/echo}
`);
    cleanup.push(() => p.proxy.stop('SIGKILL'));
    return p;
  }

  it('counts accepts, closes and bytes exactly, and logs one access record per connection', async () => {
    const b = await backend();
    const { proxy: p, ports: [port] } = await proxy(b.port);
    const base = await adminUrl(p);
    const srv = `{rt="obs", srv_addr="127.0.0.1:${port}"}`;
    const dst = `{dst="/svc/echo", rt="obs"}`;
    for (let i = 0; i < 5; i++) {
      const c = await dial(port!);
      const got: Buffer[] = [];
      c.on('data', (d: Buffer) => got.push(d));
      c.end(Buffer.alloc(1000 * (i + 1), 7));
      await deadline(5000, 'echo end', peerClosed(c));
      assert.equal(Buffer.concat(got).length, 1000 * (i + 1));
    }
    // The access log is written at close; wait for all five before scraping.
    await p.waitForCount((l) => l.msg === 'connection closed', 5);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metric(text, `l5d:srv:accepts${srv}`), 5);
    assert.equal(metric(text, `l5d:srv:closes${srv}`), 5);
    assert.equal(metric(text, `l5d:srv:failures${srv}`), 0);
    assert.equal(metric(text, `l5d:srv:active${srv}`), 0);
    assert.equal(metric(text, `l5d:srv:stream:rx_bytes${srv}`), 15000);
    assert.equal(metric(text, `l5d:srv:stream:tx_bytes${srv}`), 15000);
    assert.equal(metric(text, `l5d:balancer:connection:connects${dst}`), 5);
    assert.equal(metric(text, `l5d:balancer:endpoint:available${dst}`), 1);
    // Each worker creates its own route on its first connection (a counter: the sum over workers).
    const created = metric(text, `l5d:route_create{rt="obs"}`) ?? 0;
    assert.ok(created >= 1 && created <= Number(TEST_WORKERS), `route_create ${created}`);
    assert.equal(metric(text, `l5d:route_found{rt="obs"}`), 5);
    const access = p.logs.filter((l) => l.msg === 'connection closed');
    assert.deepEqual(access.map((l) => l['rxBytes']), [1000, 2000, 3000, 4000, 5000]);
    for (const l of access) {
      assert.equal(l['reason'], 'done');
      assert.equal(l['endpoint'], `127.0.0.1:${b.port}`);
      assert.match(String(l['client']), /^127\.0\.0\.1:\d+$/);
      assert.equal(l['dst'], '/svc/echo');
    }
    const state = await (await fetch(`${base}/api/state`)).json() as { servers: { accepts: number }[] };
    assert.equal(state.servers[0]!.accepts, 5);
    assert.equal((await fetch(`${base}/ready`)).status, 200);
  });

  it('POST /shutdown lets an open connection finish, then exits 0', async () => {
    const b = await backend();
    const { proxy: p, ports: [port] } = await proxy(b.port);
    const base = await adminUrl(p);
    const c = await dial(port!);
    c.write('a');
    await deadline(3000, 'echo', once(c, 'data'));
    assert.equal((await fetch(`${base}/shutdown`, { method: 'GET' })).status, 405);
    assert.equal((await fetch(`${base}/shutdown`, { method: 'POST' })).status, 202);
    await p.waitForLog((l) => l.msg === 'draining open connections');
    const rest: Buffer[] = [];
    c.on('data', (d: Buffer) => rest.push(d));
    c.end('b');
    await deadline(3000, 'drained', peerClosed(c));
    assert.equal(Buffer.concat(rest).toString(), 'b');
    assert.equal(await deadline(5000, 'exit', p.exited), 0);
  });

  it('POST /abort exits at once with code 1', async () => {
    const b = await backend();
    const { proxy: p, ports: [port] } = await proxy(b.port);
    const base = await adminUrl(p);
    const c = await dial(port!);
    c.write('a');
    await deadline(3000, 'echo', once(c, 'data'));
    assert.equal((await fetch(`${base}/abort`, { method: 'POST' })).status, 202);
    assert.equal(await deadline(5000, 'exit', p.exited), 1);
    await deadline(3000, 'client cut', peerClosed(c));
  });
});
