// Many workers, one truth (two workers, as the default mode runs): /metrics counters never
// go backwards when a worker is killed, gauges of shared state are not summed, /api/state
// and the dashboard show every process of the tree, and the primary's own warnings reach
// recent errors (with one `pid` key in their log record).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:crypto';
import { type ConnectionOptions, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import { deadline, echo, type Proxy, startBackend, startProxy } from './support/harness.ts';
import { NamerdDouble } from './support/namerd-double.ts';
import { metric, roundTrip } from './support/client.ts';

const PKI = new URL('./fixtures/tls/', import.meta.url).pathname;
const CA = readFileSync(join(PKI, 'ca.pem'), 'utf8');

/** One TLS round trip; resolves with whether the session was resumed and the session to reuse next. */
async function tlsRoundTrip(port: number, session: Buffer | undefined, opts: ConnectionOptions = {}): Promise<{ reused: boolean; session: Buffer | undefined }> {
  const s: TLSSocket = tlsConnect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ...opts, ...(session ? { session } : {}) });
  s.on('error', () => {});
  let next: Buffer | undefined;
  s.on('session', (b: Buffer) => (next = b)); // TLS 1.3 tickets arrive after the handshake
  await deadline(5000, 'tls connect', once(s, 'secureConnect'));
  s.write('ping');
  await deadline(5000, 'echo', once(s, 'data'));
  const reused = s.isSessionReused();
  s.end();
  await deadline(5000, 'close', once(s, 'close'));
  return { reused, session: next };
}

interface Proc { pid: number; role: string; worker: number | null; rssBytes: number; cpuUserSecs: number }
interface State { processes: Proc[]; servers: { accepts: number }[]; recentErrors: { msg: string; context: Record<string, unknown> }[] }

describe('workers: one truth', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  async function twoWorkers(): Promise<{ p: Proxy; port: number; admin: string; raw: () => string; workerPids: number[] }> {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { proxy: p, ports: [port] } = await startProxy(`
admin: {port: 0, graceSecs: 5}
routers:
- label: w
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - {port: 0, dstName: /svc}
`, 1, { LINKERD_TCP_WORKERS: '2' });
    cleanup.push(() => p.stop('SIGKILL'));
    let raw = '';
    p.proc.stdout!.on('data', (d: Buffer) => (raw += d.toString()));
    const listening = await p.waitForCount((l) => l.msg === 'listening', 2);
    const admin = `http://${String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin'])}`;
    await p.waitForCount((l) => l.msg === 'endpoint added', 2); // each worker resolved its destination
    return { p, port: port!, admin, raw: () => raw, workerPids: listening.map((l) => Number(l['pid'])) };
  }

  it('counters survive a worker killed with SIGKILL; shared-state gauges are not summed', { timeout: 60_000 }, async () => {
    const { p, port, admin, workerPids } = await twoWorkers();
    const n = 40;
    for (let i = 0; i < n; i++) assert.equal(await roundTrip(port, `m${i}`), `m${i}`);
    const closed = await p.waitForCount((l) => l.msg === 'connection closed', n);
    assert.equal(new Set(closed.map((l) => l['pid'])).size, 2, 'both workers served connections');
    const srv = `{rt="w", srv_addr="127.0.0.1:${port}"}`;
    const dst = `{dst="/svc", rt="w"}`;
    const before = await (await fetch(`${admin}/metrics`)).text();
    assert.equal(metric(before, `l5d:srv:accepts${srv}`), n);
    assert.equal(metric(before, `l5d:balancer:endpoint:available${dst}`), 1, 'one endpoint, however many workers see it');
    assert.equal(metric(before, `l5d:srv:active${srv}`), 0);
    // Connect latency: exact quantiles over the window, pooled from both workers (not bucket bounds such as 500 or 1000).
    const lat = ((await (await fetch(`${admin}/api/state`)).json()) as { servers: { connectLatencyUs: { count: number; p50: number; p99: number; samples?: unknown } }[] }).servers[0]!.connectLatencyUs;
    assert.equal(lat.count, n);
    assert.ok(lat.p50 > 0 && lat.p50 <= lat.p99 && !Number.isInteger(lat.p50), JSON.stringify(lat));
    assert.equal(lat.samples, undefined, 'samples stay between the processes');

    process.kill(workerPids[0]!, 'SIGKILL');
    await p.waitForLog((l) => l.msg === 'worker exited; restarting');
    const during = await (await fetch(`${admin}/metrics`)).text();
    assert.equal(metric(during, `l5d:srv:accepts${srv}`), n, 'the dead worker\'s accepts still count');
    assert.equal(metric(during, `l5d:balancer:connection:connects${dst}`), n);
    await p.waitForCount((l) => l.msg === 'listening', 3); // the replacement
    for (let i = 0; i < 10; i++) assert.equal(await roundTrip(port, `after ${i}`), `after ${i}`);
    await p.waitForCount((l) => l.msg === 'connection closed', n + 10);
    const later = await (await fetch(`${admin}/metrics`)).text();
    assert.equal(metric(later, `l5d:srv:accepts${srv}`), n + 10);
    assert.equal(metric(later, `l5d:balancer:endpoint:available${dst}`), 1);
    const state = await (await fetch(`${admin}/api/state`)).json() as State;
    assert.ok(state.servers[0]!.accepts >= 10); // /api/state is live state: the workers alive now
  });

  it('TLS sessions resume whichever worker accepts (shared session-ticket keys)', { timeout: 60_000 }, async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { proxy: p, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: t
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - port: 0
    dstName: /svc
    tls:
      defaultIdentity: {privateKey: ${join(PKI, 'rsa.key')}, certs: [${join(PKI, 'rsa.pem')}, ${join(PKI, 'chain.pem')}]}
`, 1, { LINKERD_TCP_WORKERS: '2' });
    cleanup.push(() => p.stop('SIGKILL'));
    await p.waitForCount((l) => l.msg === 'listening', 2);
    const first = await tlsRoundTrip(port!, undefined);
    assert.ok(first.session, 'a session ticket');
    const results: boolean[] = [];
    for (let i = 0; i < 20; i++) results.push((await tlsRoundTrip(port!, first.session)).reused);
    const closed = await p.waitForCount((l) => l.msg === 'connection closed', 21);
    assert.equal(new Set(closed.map((l) => l['pid'])).size, 2, 'both workers accepted some of them');
    assert.deepEqual(results, Array(20).fill(true), `${results.filter(Boolean).length} of 20 resumed`);
    assert.ok(!p.logs.some((l) => JSON.stringify(l).includes('ticket')), 'nothing about ticket keys is logged');
  });

  // The node engine shares one session-ID cache across workers (the primary's); the native
  // engine keeps one per worker, so a session ID resumes on the worker that issued it (the
  // documented interim until one process serves every core).
  for (const [engine, workers] of [['node', '2'], ['node', '1'], ['native', '2'], ['native', '1']] as const) {
    it(`TLS 1.2 sessions resume by session ID (a client without tickets), ${engine} engine, ${workers} worker(s)`, { timeout: 60_000 }, async () => {
      const b = await startBackend(echo);
      cleanup.push(() => b.close());
      const { proxy: p, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: t
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - port: 0
    dstName: /svc
    tls:
      defaultIdentity: {privateKey: ${join(PKI, 'rsa.key')}, certs: [${join(PKI, 'rsa.pem')}, ${join(PKI, 'chain.pem')}]}
`, 1, { LINKERD_TCP_WORKERS: workers, LINKERD_TCP_ENGINE: engine });
      cleanup.push(() => p.stop('SIGKILL'));
      await p.waitForCount((l) => l.msg === 'listening', Number(workers));
      assert.ok(p.logs.filter((l) => l.msg === 'engine').every((l) => l['engine'] === engine), `on the ${engine} engine`);
      const noTickets: ConnectionOptions = { maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET };
      const first = await tlsRoundTrip(port!, undefined, noTickets);
      assert.ok(first.session, 'a session');
      const results: boolean[] = [];
      for (let i = 0; i < 20; i++) results.push((await tlsRoundTrip(port!, first.session, noTickets)).reused);
      const closed = await p.waitForCount((l) => l.msg === 'connection closed', 21);
      assert.equal(new Set(closed.map((l) => l['pid'])).size, Number(workers));
      // One at a time, so the records come in the order of the connections: [0] issued the session.
      const expected = engine === 'node' ? Array(20).fill(true) : closed.slice(1).map((l) => l['pid'] === closed[0]!['pid']);
      assert.deepEqual(results, expected, `${results.filter(Boolean).length} of 20 resumed`);
    });
  }

  it('/api/state lists every process of the tree; the primary\'s warnings reach recent errors with one pid key', { timeout: 60_000 }, async () => {
    const { p, admin, raw, workerPids } = await twoWorkers();
    const state = await (await fetch(`${admin}/api/state`)).json() as State;
    assert.deepEqual(state.processes.map((x) => x.role), ['primary', 'worker', 'worker']);
    assert.equal(state.processes[0]!.pid, p.proc.pid);
    assert.deepEqual(state.processes.slice(1).map((x) => x.pid).sort(), [...workerPids].sort());
    for (const x of state.processes) assert.ok(x.rssBytes > 1 << 20 && x.cpuUserSecs > 0, JSON.stringify(x));

    process.kill(workerPids[1]!, 'SIGKILL');
    const warn = await p.waitForLog((l) => l.msg === 'worker exited; restarting');
    assert.equal(warn['workerPid'], workerPids[1]);
    const line = raw().split('\n').find((l) => l.includes('"worker exited; restarting"'))!;
    assert.equal(line.match(/"pid":/g)?.length, 1, line);
    const after = await (await fetch(`${admin}/api/state`)).json() as State;
    const kept = after.recentErrors.find((e) => e.msg === 'worker exited; restarting');
    assert.ok(kept, JSON.stringify(after.recentErrors));
    assert.equal(kept.context['workerPid'], workerPids[1]);
    assert.equal(kept.context['signal'], 'SIGKILL');
  });
});

describe('workers: one resolution per destination', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  for (const watch of [true, false]) {
    it(`namerd sees one ${watch ? 'watch stream' : 'poll stream'} per destination, not one per worker (also after a worker is replaced)`, { timeout: 60_000 }, async () => {
      const b = await startBackend(echo);
      cleanup.push(() => b.close());
      const nd = await NamerdDouble.start();
      cleanup.push(() => nd.close());
      nd.set('default', '/svc/app', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: b.port }] });
      const { proxy: p, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: nd
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "${nd.baseUrl}", namespace: default, periodSecs: 1, watch: ${watch}, requestTimeoutMs: 1000}
  servers:
  - {port: 0, dstName: /svc/app}
`, 1, { LINKERD_TCP_WORKERS: '2' });
      cleanup.push(() => p.stop('SIGKILL'));
      const listening = await p.waitForCount((l) => l.msg === 'listening', 2);
      await p.waitForCount((l) => l.msg === 'endpoint added', 2); // both workers have the endpoint
      for (let i = 0; i < 6; i++) assert.equal(await roundTrip(port!, `m${i}`), `m${i}`);
      const forApp = (): number => nd.requests.filter((r) => r.path === '/svc/app').length;
      if (watch) assert.equal(forApp(), 1, JSON.stringify(nd.requests));
      else {
        // One poll stream answers every 1 s: four consecutive polls span at least 3 s. Two
        // streams (one per worker) would put four polls within about 1.5 s.
        const at: number[] = [];
        await deadline(15_000, 'four polls', (async () => {
          while (at.length < 4) if ((await nd.nextRequest()).path === '/svc/app') at.push(performance.now());
        })());
        assert.ok(at[3]! - at[0]! >= 2500, `four polls in ${Math.round(at[3]! - at[0]!)} ms`);
      }
      process.kill(Number(listening[0]!['pid']), 'SIGKILL');
      await p.waitForCount((l) => l.msg === 'listening', 3);
      await p.waitForCount((l) => l.msg === 'endpoint added', 3); // the replacement got the resolution
      if (watch) assert.equal(forApp(), 1, 'the replacement used the shared watch');
      assert.equal(await roundTrip(port!, 'after'), 'after');
    });
  }
});
