// Discovery end to end through the real CLI: namerd's answer moves from backend A to B
// while traffic flows (new connections follow, open ones finish intact), /ready waits for
// the first resolution, a namerd outage keeps the last endpoints, and an io.l5d.fs config.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Backend, deadline, echo, peerClosed, type Proxy, startBackend, startProxy, TEST_WORKERS } from './support/harness.ts';
import { NamerdDouble } from './support/namerd-double.ts';

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, 'client connect', once(s, 'connect').then(() => s));
}

/** Sends `msg` and waits for its echo. */
async function ping(s: Socket, msg: string): Promise<void> {
  let got = '';
  const done = new Promise<void>((resolve) => {
    const on = (d: Buffer): void => {
      got += d.toString();
      if (got === msg) {
        s.off('data', on);
        resolve();
      }
    };
    s.on('data', on);
  });
  s.write(msg);
  await deadline(5000, `echo of ${msg}`, done);
}

async function adminUrl(p: Proxy): Promise<string> {
  const l = await p.waitForLog((x) => x.msg === 'admin listening');
  return `http://${String(l['admin'])}`;
}

describe('discovery end to end', () => {
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
  async function proxy(cfg: string, servers = 1) {
    const p = await startProxy(cfg, servers);
    cleanup.push(() => p.proxy.stop('SIGKILL'));
    return p;
  }
  const namerdConfig = (baseUrl: string, watch: boolean) => `
admin: {port: 0}
routers:
- label: nd
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "${baseUrl}", namespace: default, periodSecs: 1, watch: ${watch}, requestTimeoutMs: 1000}
  servers:
  - {port: 0, dstName: /svc/app, connectTimeoutMs: 3000}
`;

  it('moves new connections from A to B when namerd says so; open ones to A finish intact', async () => {
    const [a, b] = [await backend(), await backend()];
    const nd = await namerd();
    nd.set('default', '/svc/app', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: a.port }] });
    const { proxy: p, ports: [port] } = await proxy(namerdConfig(nd.baseUrl, true));
    const open = await dial(port!);
    await ping(open, 'to A');
    assert.equal(a.accepted, 1);
    nd.set('default', '/svc/app', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: b.port }] });
    // Every worker must have B before the new connections (the kernel spreads them over workers).
    await p.waitForCount((l) => l.msg === 'endpoint added' && l['endpoint'] === `127.0.0.1:${b.port}`, Number(TEST_WORKERS));
    for (let i = 0; i < 5; i++) {
      const c = await dial(port!);
      await ping(c, `new ${i}`);
      c.end();
    }
    assert.equal(b.accepted, 5, 'new connections go to B');
    assert.equal(a.accepted, 1, 'none to A');
    await ping(open, 'still to A'); // the open connection to the retired endpoint keeps flowing
    const closed = peerClosed(open);
    open.end();
    await deadline(3000, 'A closed', closed);
    const rec = await p.waitForLog((l) => l.msg === 'connection closed' && l['endpoint'] === `127.0.0.1:${a.port}`);
    assert.equal(rec['reason'], 'done');
    assert.equal(rec['rxBytes'], 'to Astill to A'.length);
  });

  it('splits a canary written in namerd\'s dtab by weight with mode: bind', async () => {
    const [a, b] = [await backend(), await backend()];
    const nd = await namerd();
    nd.setTree('default', '/svc/app', { type: 'union', union: [{ weight: 9, tree: { type: 'leaf', id: '/#/io.l5d.fs/app' } }, { weight: 1, tree: { type: 'leaf', id: '/#/io.l5d.fs/app-canary' } }] });
    nd.setAddr('/#/io.l5d.fs/app', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: a.port }] });
    nd.setAddr('/#/io.l5d.fs/app-canary', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: b.port }] });
    const { ports: [port] } = await proxy(namerdConfig(nd.baseUrl, true).replace('requestTimeoutMs: 1000}', 'requestTimeoutMs: 1000, mode: bind}'));
    const n = 300;
    for (let i = 0; i < n; i++) {
      const c = await dial(port!);
      await ping(c, 'x');
      const closed = peerClosed(c);
      c.end();
      await deadline(3000, 'close', closed);
    }
    // 10 % expected; 300 draws: 4–18 % is over 4 standard deviations wide.
    assert.equal(a.accepted + b.accepted, n);
    assert.ok(b.accepted >= 0.04 * n && b.accepted <= 0.18 * n, `canary got ${b.accepted} of ${n}`);
    assert.ok(nd.requests.some((r) => r.api === 'bind') && nd.requests.some((r) => r.api === 'addr'), 'asked bind and addr');
  });

  it('is not ready until the first resolution; keeps serving the last endpoints through a namerd outage', async () => {
    const a = await backend();
    const nd = await namerd();
    nd.set('default', '/svc/app', { type: 'hang' });
    const { proxy: p, ports: [port] } = await proxy(namerdConfig(nd.baseUrl, false));
    const base = await adminUrl(p);
    assert.equal((await fetch(`${base}/ready`)).status, 503);
    nd.set('default', '/svc/app', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: a.port }] });
    // Every worker has it (with two, the primary's /ready waits for both).
    await p.waitForCount((l) => l.msg === 'endpoint added', Number(TEST_WORKERS));
    assert.equal((await fetch(`${base}/ready`)).status, 200);
    nd.set('default', '/svc/app', { type: 'status', status: 500 });
    await p.waitForLog((l) => l.msg === 'namerd resolution failed' && /HTTP 500/.test(String(l['reason'])));
    const c = await dial(port!);
    await ping(c, 'during the outage');
    c.destroy();
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /l5d:resolver:failure_count\{namespace="default", rt="nd"\} [1-9]/);
    assert.match(metrics, /l5d:balancer:endpoint:available\{dst="\/svc\/app", rt="nd"\} 1/);
  });

  it('a FIFO in rootDir does not freeze the proxy: admin answers and other names route', async () => {
    const a = await backend();
    const root = mkdtempSync(join(tmpdir(), 'l5d-fs-fifo-'));
    cleanup.push(async () => rmSync(root, { recursive: true, force: true }));
    execFileSync('mkfifo', [join(root, 'web')]);
    writeFileSync(join(root, 'app'), `127.0.0.1 ${a.port}\n`);
    const { proxy: p, ports: [webPort, appPort] } = await proxy(`
admin: {port: 0}
namers:
- {kind: io.l5d.fs, rootDir: ${JSON.stringify(root)}}
routers:
- label: fs
  dtab: /svc => /#/io.l5d.fs;
  servers:
  - {port: 0, dstName: /svc/web, connectTimeoutMs: 1000}
  - {port: 0, dstName: /svc/app}
`, 2);
    const base = await adminUrl(p);
    const web = await dial(webPort!); // makes the proxy look the FIFO up
    web.on('data', () => {});
    await p.waitForLog((l) => l.msg === 'io.l5d.fs: bad file' && /not a regular file/.test(String(l['reason'])), 5000, 'the FIFO refused');
    const res = await deadline(3000, 'admin /metrics while the FIFO is there', fetch(`${base}/metrics`, { signal: AbortSignal.timeout(3000) }));
    assert.equal(res.status, 200);
    await res.text();
    const c = await dial(appPort!);
    await ping(c, 'still routing');
    c.destroy();
    web.destroy();
  });

  it('routes through io.l5d.fs files as configured in YAML, following file changes', async () => {
    const [a, b] = [await backend(), await backend()];
    const root = mkdtempSync(join(tmpdir(), 'l5d-fs-e2e-'));
    cleanup.push(async () => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, 'app'), `127.0.0.1 ${a.port}\n`);
    const { proxy: p, ports: [port] } = await proxy(`
admin: {port: 0}
namers:
- {kind: io.l5d.fs, rootDir: ${JSON.stringify(root)}}
routers:
- label: fs
  dtab: /svc => /#/io.l5d.fs;
  servers:
  - {port: 0, dstName: /svc/app}
`);
    const c = await dial(port!);
    await ping(c, 'x');
    c.destroy();
    assert.equal(a.accepted, 1);
    writeFileSync(join(root, 'app'), `127.0.0.1 ${b.port}\n`);
    await p.waitForLog((l) => l.msg === 'endpoint added' && l['endpoint'] === `127.0.0.1:${b.port}`);
    const c2 = await dial(port!);
    await ping(c2, 'y');
    c2.destroy();
    assert.equal(b.accepted, 1);
  });
  it('routes io.l5d.fs lines that name a host (linkerd-examples\' `redis1 6379` form) through the system resolver', async () => {
    const a = await backend();
    const root = mkdtempSync(join(tmpdir(), 'l5d-fs-host-'));
    cleanup.push(async () => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, 'app'), `# as linkerd reads it: host port [* weight]\nlocalhost ${a.port} * 2\n`);
    const { proxy: p, ports: [port] } = await proxy(`
admin: {port: 0}
namers:
- {kind: io.l5d.fs, rootDir: ${JSON.stringify(root)}}
routers:
- label: fs
  dtab: /svc => /#/io.l5d.fs;
  servers:
  - {port: 0, dstName: /svc/app}
`);
    const c = await dial(port!);
    await ping(c, 'through localhost');
    c.destroy();
    assert.ok(a.accepted >= 1, 'the backend behind localhost got the connection');
    await p.waitForLog((l) => l.msg === 'endpoint added' && l['endpoint'] === `127.0.0.1:${a.port}`, 5000, 'localhost bound to 127.0.0.1');
    assert.ok(!p.logs.some((l) => l.msg === 'io.l5d.fs: bad file'), 'the file is not refused');
  });

  it('a weighted union whose main branch is emptied fails its 90 % and the canary keeps its 10 %', async () => {
    const b = await backend();
    const root = mkdtempSync(join(tmpdir(), 'l5d-fs-empty-'));
    cleanup.push(async () => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, 'web'), '# emptied for maintenance\n');
    writeFileSync(join(root, 'web-canary'), `127.0.0.1 ${b.port}\n`);
    const { proxy: p, ports: [port] } = await proxy(`
admin: {port: 0}
namers:
- {kind: io.l5d.fs, rootDir: ${JSON.stringify(root)}}
routers:
- label: fs
  dtab: /svc/web => 9 * /#/io.l5d.fs/web & 1 * /#/io.l5d.fs/web-canary;
  servers:
  - {port: 0, dstName: /svc/web, connectTimeoutMs: 3000}
`);
    /** One connection: true when its byte comes back, false when the proxy closes it. */
    const attempt = async (): Promise<boolean> => {
      const s = await dial(port!);
      let got = '';
      const outcome = new Promise<boolean>((resolve) => {
        s.on('data', (d: Buffer) => { got += d.toString(); if (got === 'x') resolve(true); });
        s.once('end', () => resolve(got === 'x'));
        s.once('close', () => resolve(got === 'x'));
      });
      s.write('x');
      const ok = await deadline(5000, 'an echo or a close', outcome);
      s.destroy();
      return ok;
    };
    const n = 200;
    let served = 0;
    for (let i = 0; i < n; i++) if (await attempt()) served++;
    // Binomial(200, 0.1): 3..44 leaves under 2e-7 in each tail (over 5σ); before issue 21 all 200 went to the canary.
    assert.ok(served >= 3 && served <= 44, `the canary served ${served} of ${n}`);
    assert.equal(b.accepted, served, 'every served connection went to the canary');
    await p.waitForLog((l) => l.msg === 'a weighted branch of this name has no endpoints: its share of connections fails' && l['emptyShare'] === 0.9, 5000, 'the empty share logged');
    // The rest failed as "no endpoints" does: counted in l5d:balancer:unavailable, closed with reason no_endpoints.
    const metrics = await (await fetch(`${await adminUrl(p)}/metrics`)).text();
    assert.match(metrics, new RegExp(`l5d:balancer:unavailable\\{dst="/svc/web", rt="fs"\\} ${n - served}\\b`));
    await p.waitForCount((l) => l.msg === 'connection closed' && l['reason'] === 'no_endpoints', n - served, 5000, 'a closed record per failed connection');
  });
});
