// Connections waiting for a destination's first resolution, through the real CLI (issue 13,
// items 2 and 3): one that gives up leaves nothing queued and is never dialled later; a name
// that cannot be bound fails its connections at once; a client that leaves while waiting is
// released at once; the wait is bounded even without connectTimeoutMs.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { type ConnectionOptions, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import { type Backend, deadline, echo, peerClosed, type Proxy, startBackend, startProxy } from './support/harness.ts';
import { NamerdDouble } from './support/namerd-double.ts';

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, 'client connect', once(s, 'connect').then(() => s));
}

/** The value of the first metric line named `name` whose labels contain `labels`. */
async function metric(p: Proxy, name: string, labels = ''): Promise<number | undefined> {
  const l = await p.waitForLog((x) => x.msg === 'admin listening');
  const text = await (await fetch(`http://${String(l['admin'])}/metrics`)).text();
  const line = text.split('\n').find((x) => x.startsWith(`${name}{`) && x.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Polls a metric until it equals `want` (gauges are read at scrape time). */
async function metricBecomes(p: Proxy, name: string, want: number, ms = 5000): Promise<void> {
  await deadline(ms, `${name} = ${want}`, (async () => {
    while ((await metric(p, name)) !== want) await new Promise((r) => setImmediate(r));
  })());
}

const closedWith = (reason: string) => (l: Record<string, unknown>) => l['msg'] === 'connection closed' && l['reason'] === reason;

describe('waiting for a first resolution', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  async function backend(): Promise<Backend> {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    return b;
  }
  async function namerd(): Promise<NamerdDouble> {
    const n = await NamerdDouble.start();
    cleanup.push(() => n.close());
    return n;
  }
  async function namerdProxy(n: NamerdDouble, opts: { periodSecs: number; requestTimeoutMs: number; server?: string; env?: NodeJS.ProcessEnv; watch?: boolean }) {
    const p = await startProxy(`
admin: {port: 0}
routers:
- label: r
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "${n.baseUrl}", namespace: default, periodSecs: ${opts.periodSecs}, requestTimeoutMs: ${opts.requestTimeoutMs}${opts.watch ? ', watch: true' : ''}}
  servers:
  - port: 0
    dstName: /svc/x${opts.server ?? ''}
`, 1, opts.env ?? {});
    cleanup.push(() => p.proxy.stop('SIGKILL'));
    return p;
  }

  it('namerd failing, then bound: connections that gave up are never dialled and leave no count behind', async () => {
    const n = await namerd();
    const b = await backend();
    n.set('default', '/svc/x', { type: 'status', status: 500 });
    const { proxy: p, ports: [port] } = await namerdProxy(n, { periodSecs: 2, requestTimeoutMs: 1000, server: '\n    connectTimeoutMs: 1500' });
    const clients = await Promise.all(Array.from({ length: 5 }, () => dial(port!)));
    await deadline(5000, 'all five closed', Promise.all(clients.map(peerClosed)));
    await metricBecomes(p, 'l5d:balancer:waiters', 0);
    n.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: b.port }] });
    await p.waitForLog((l) => l.msg === 'endpoint added', 10_000);
    // Anything the proxy would dial for the dead connections starts in the same tick as the resolution.
    assert.equal(await metric(p, 'l5d:balancer:connection:attempts'), 0);
    assert.equal(b.accepted, 0);
    assert.equal(b.sockets.size, 0);
    assert.equal(await metric(p, 'l5d:balancer:connection:open'), 0);
    assert.equal(await metric(p, 'l5d:balancer:connection:pending'), 0);
    assert.equal(await metric(p, 'l5d:srv:active'), 0);
  });

  it('connections that time out (connectTimeoutMs) before namerd answers leave the queue, and are never dialled', async () => {
    const n = await namerd();
    const b = await backend();
    n.set('default', '/svc/x', { type: 'hang' });
    const { proxy: p, ports: [port] } = await namerdProxy(n, { periodSecs: 2, requestTimeoutMs: 4000, server: '\n    connectTimeoutMs: 1500' });
    const clients = await Promise.all(Array.from({ length: 5 }, () => dial(port!)));
    await metricBecomes(p, 'l5d:balancer:waiters', 5);
    await deadline(5000, 'all five closed', Promise.all(clients.map(peerClosed)));
    await p.waitForCount(closedWith('connect_timeout'), 5, 1000);
    // Before namerd's request times out (4 s): nothing but the queue itself can release them.
    await metricBecomes(p, 'l5d:balancer:waiters', 0, 1000);
    n.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: b.port }] });
    await p.waitForLog((l) => l.msg === 'endpoint added', 15_000);
    assert.equal(await metric(p, 'l5d:balancer:connection:attempts'), 0);
    assert.equal(b.accepted, 0);
    assert.equal(await metric(p, 'l5d:balancer:connection:open'), 0);
    assert.equal(await metric(p, 'l5d:srv:active'), 0);
  });

  it('clients that leave while namerd has not answered are released at once, and never dialled', async () => {
    const n = await namerd();
    const b = await backend();
    n.set('default', '/svc/x', { type: 'hang' });
    const { proxy: p, ports: [port] } = await namerdProxy(n, { periodSecs: 1, requestTimeoutMs: 3000 });
    const gone = await Promise.all(Array.from({ length: 4 }, () => dial(port!)));
    const halfClosed = await dial(port!);
    await metricBecomes(p, 'l5d:balancer:waiters', 5);
    for (const s of gone) s.destroy(); // full close
    halfClosed.end(); // FIN only: the proxy must notice it without any byte to read
    await deadline(2000, 'proxy closes the half-closed waiter', peerClosed(halfClosed));
    await p.waitForCount(closedWith('client_error'), 5, 2000);
    await metricBecomes(p, 'l5d:balancer:waiters', 0, 2000);
    await metricBecomes(p, 'l5d:srv:active', 0, 2000);
    n.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: b.port }] });
    await p.waitForLog((l) => l.msg === 'endpoint added', 10_000);
    assert.equal(b.accepted, 0);
    assert.equal(await metric(p, 'l5d:balancer:connection:open'), 0);
    // A client still waiting with data it already sent is served once the name binds.
    const s = await dial(port!);
    const echoed = once(s, 'data');
    s.write('late');
    assert.equal(String((await deadline(5000, 'echo', echoed))[0]), 'late');
    s.destroy();
  });

  // A TLS client's request (and its close_notify and FIN) may arrive with its last handshake
  // flight, read into the TLS library before the name resolves: the raw socket then shows
  // only the FIN. Such a client is served; one that only said close_notify is released at once.
  for (const engine of ['native', 'node'] as const) {
    it(`TLS (${engine} engine): a client whose request came with its handshake and FIN is served once the name binds; one that only closed is released`, async () => {
      const n = await namerd();
      const b = await backend();
      n.set('default', '/svc/x', { type: 'hang' });
      const PKI = new URL('./fixtures/tls/', import.meta.url).pathname;
      const { proxy: p, ports: [port] } = await namerdProxy(n, {
        // A watch: namerd says nothing until the name binds, then streams it (no poll failing meanwhile).
        periodSecs: 1, requestTimeoutMs: 3000, watch: true, env: { LINKERD_TCP_ENGINE: engine },
        server: `\n    tls: {defaultIdentity: {privateKey: ${join(PKI, 'rsa.key')}, certs: [${join(PKI, 'rsa.pem')}, ${join(PKI, 'chain.pem')}]}}`,
      });
      const tls = (): Promise<TLSSocket> => {
        // allowHalfOpen (taken by tls.connect, missing from its types): the reply can follow our FIN.
        const opts: ConnectionOptions & { allowHalfOpen: boolean } = { port: port!, host: '127.0.0.1', servername: 'rsa.test', ca: readFileSync(join(PKI, 'ca.pem')), allowHalfOpen: true };
        const s = tlsConnect(opts);
        s.on('error', () => {});
        return deadline(5000, 'TLS handshake', once(s, 'secureConnect').then(() => s));
      };
      const asker = await tls();
      const answer: Buffer[] = [];
      asker.on('data', (d: Buffer) => answer.push(d));
      const answered = once(asker, 'end');
      asker.end('request'); // the request, close_notify and FIN together
      const leaver = await tls();
      await metricBecomes(p, 'l5d:balancer:waiters', 2);
      leaver.end(); // close_notify and FIN, nothing sent
      await p.waitForCount(closedWith('client_error'), 1, 2000);
      await metricBecomes(p, 'l5d:balancer:waiters', 1, 2000);
      n.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: b.port }] });
      await deadline(10_000, 'the waiting request served', answered);
      assert.equal(Buffer.concat(answer).toString(), 'request');
      const [rec] = await p.waitForCount(closedWith('done'), 1, 5000);
      assert.equal(rec!['rxBytes'], 'request'.length);
    });
  }

  it('a name that cannot be bound fails new connections at once: `! | /t/1` and a dtab loop', async () => {
    const { proxy: p, ports } = await startProxy(`
admin: {port: 0}
routers:
- label: r
  dtab: |
    /svc/fail => ! | /t/1;
    /svc/loop => /svc/loop;
  servers:
  - {port: 0, dstName: /svc/fail}
  - {port: 0, dstName: /svc/loop}
`, 2);
    cleanup.push(() => p.stop('SIGKILL'));
    for (const port of ports) {
      for (let i = 0; i < 2; i++) {
        const s = await dial(port);
        await deadline(1000, `closed at once (port ${port})`, peerClosed(s));
      }
    }
    const closed = await p.waitForCount((l) => l['msg'] === 'connection closed', 4, 2000);
    assert.deepEqual(closed.map((l) => l['reason']), ['resolution_failed', 'resolution_failed', 'resolution_failed', 'resolution_failed']);
    assert.equal(await metric(p, 'l5d:srv:active'), 0);
  });

  it('namerd failing from the start fails waiting connections when the failure arrives, and new ones at once', async () => {
    const n = await namerd();
    n.set('default', '/svc/x', { type: 'hang' });
    const { proxy: p, ports: [port] } = await namerdProxy(n, { periodSecs: 30, requestTimeoutMs: 1500 });
    const waiting = await dial(port!);
    await metricBecomes(p, 'l5d:balancer:waiters', 1);
    await deadline(5000, 'waiter failed with the first answer', peerClosed(waiting));
    await p.waitForLog(closedWith('resolution_failed'), 1000);
    const late = await dial(port!);
    await deadline(1000, 'a new connection fails at once', peerClosed(late));
    await p.waitForCount(closedWith('resolution_failed'), 2, 1000);
  });

  it('the wait for a first resolution is bounded (10 s) without connectTimeoutMs', async () => {
    const n = await namerd();
    n.set('default', '/svc/x', { type: 'hang' });
    const { proxy: p, ports: [port] } = await namerdProxy(n, { periodSecs: 60, requestTimeoutMs: 60_000 });
    const s = await dial(port!);
    const t0 = performance.now();
    await deadline(15_000, 'closed by the bound', peerClosed(s));
    const waited = performance.now() - t0;
    assert.ok(waited >= 9000 && waited < 13_000, `closed after ${waited} ms`);
    await p.waitForLog(closedWith('resolution_timeout'), 1000);
    assert.equal(await metric(p, 'l5d:balancer:waiters'), 0);
  });
});
