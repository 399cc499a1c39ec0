// What an operator meets at the command line and in the logs: --check's verdict, a bad
// LOG_LEVEL, SIGHUP reloads, access records for refused connections, and the SNI of a
// failed handshake.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Backend, deadPort, deadline, echo, peerClosed, type Proxy, runCli, startBackend, startProxy, writeConfig } from './support/harness.ts';
import { metric } from './support/client.ts';

const PKI = new URL('./fixtures/tls/', import.meta.url).pathname;
const id = (name: string): string => `{privateKey: ${join(PKI, name + '.key')}, certs: [${join(PKI, name + '.pem')}, ${join(PKI, 'chain.pem')}]}`;

async function adminUrl(p: Proxy): Promise<string> {
  return `http://${String((await p.waitForLog((x) => x.msg === 'admin listening'))['admin'])}`;
}

interface RecentError { msg: string; level: string; context: Record<string, unknown> }

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, 'client connect', once(s, 'connect').then(() => s));
}

async function ping(s: Socket, msg: string): Promise<void> {
  s.write(msg);
  await deadline(5000, 'echo', once(s, 'data'));
}

const TLS_MISSING = `
admin: {port: 0}
routers:
- label: r
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - port: 0
    dstName: /svc
    tls:
      defaultIdentity: {privateKey: tls/nope.key, certs: [tls/nope.pem]}
`;

describe('operators: command line', () => {
  it('--check says "config OK" only when there is no error (and shows the absolute path of a relative file)', async () => {
    const file = writeConfig(TLS_MISSING);
    const r = await runCli(['--check', file], { LINKERD_TCP_WORKERS: '1' });
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stdout, /config OK/);
    assert.match(r.stdout.split('\n')[0]!, /: config has 1 error$/);
    assert.match(r.stdout, new RegExp(`^error: .*tls/nope\\.key \\(${process.cwd().replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/tls/nope\\.key\\)`, 'm'));
  });

  it('LOG_LEVEL=bogus is rejected like a bad config (exit 1, a clear message)', async () => {
    const file = writeConfig('routers:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - {port: 0, dstName: /svc}\n');
    for (const args of [['--check', file], [file]]) {
      const r = await runCli(args, { LOG_LEVEL: 'bogus', LINKERD_TCP_WORKERS: '1' });
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stderr, 'linkerd-tcp: LOG_LEVEL: expected one of trace|debug|info|warn|error|fatal|silent, got "bogus"\n');
    }
    assert.equal((await runCli(['--check', file], { LOG_LEVEL: 'WARN' })).code, 0);
  });
});

describe('operators: logs', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  async function backend(): Promise<Backend> {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    return b;
  }

  it('"endpoint removed" is logged once, not again at every later change while its connections stay open', async () => {
    const [a, b, c] = [await backend(), await backend(), await backend()];
    const root = mkdtempSync(join(tmpdir(), 'l5d-ops-'));
    cleanup.push(async () => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, 'app'), `127.0.0.1 ${a.port}\n`);
    const { proxy: p, ports: [port] } = await startProxy(`
admin: {port: 0}
namers:
- {kind: io.l5d.fs, rootDir: ${JSON.stringify(root)}}
routers:
- label: ops
  dtab: /svc => /#/io.l5d.fs;
  servers:
  - {port: 0, dstName: /svc/app}
`);
    cleanup.push(() => p.stop('SIGKILL'));
    const held = await dial(port!);
    cleanup.push(async () => held.destroy());
    await ping(held, "x").catch((e: unknown) => { throw new Error(`${String(e)}: ${JSON.stringify(p.logs.slice(-8))}`); }); // an open connection on a, so a retires instead of going away
    const epA = `127.0.0.1:${a.port}`;
    const ep = (x: Backend): string => `127.0.0.1:${x.port}`;
    const added = (x: Backend) => (l: { msg?: string; [k: string]: unknown }) => l.msg === 'endpoint added' && l['endpoint'] === ep(x);
    const steps: [Backend[], (l: { msg?: string; [k: string]: unknown }) => boolean, number][] = [
      [[b], added(b), 1],
      [[b, c], added(c), 1],
      [[c], (l) => l.msg === 'endpoint removed' && l['endpoint'] === ep(b), 1],
      [[b, c], added(b), 2], // b had no connections, so it went away and comes back as new
    ];
    for (const [i, [set, seen, n]] of steps.entries()) {
      writeFileSync(join(root, 'app'), set.map((e) => `127.0.0.1 ${e.port}\n`).join(''));
      await p.waitForCount(seen, n, 10_000, `change ${i}`);
    }
    // Once per process (with several workers, each balances, and logs, on its own).
    const removedA = p.logs.filter((l) => l.msg === 'endpoint removed' && l['endpoint'] === epA);
    const byPid = new Map<unknown, number>();
    for (const l of removedA) byPid.set(l['pid'], (byPid.get(l['pid']) ?? 0) + 1);
    assert.ok(byPid.size >= 1 && [...byPid.values()].every((n) => n === 1), JSON.stringify(p.logs.filter((l) => String(l.msg).startsWith('endpoint'))));
  });
});

describe('operators: what the proxy tells', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('a connection refused by maxConcurrency writes an access-log record', async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { proxy: p, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: mc
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - {port: 0, dstName: /svc, maxConcurrency: 1}
`, 1, { LINKERD_TCP_WORKERS: '1' }); // maxConcurrency is per worker
    cleanup.push(() => p.stop('SIGKILL'));
    const held = await dial(port!);
    cleanup.push(async () => held.destroy());
    await ping(held, 'x');
    const refused = await dial(port!);
    await deadline(5000, 'refused connection closed', peerClosed(refused));
    const rec = await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'max_concurrency', 5000, 'a max_concurrency record');
    assert.equal(rec['log'], 'access');
    assert.equal(rec['client'], `127.0.0.1:${refused.localPort}`);
    assert.equal(rec['dst'], '/svc');
  });

  it('a failed handshake logs the SNI the client sent; SIGHUP is answered even when nothing changed; reload counters start at 0; failures reach recent errors', async () => {
    const dead = await deadPort();
    const { proxy: p, ports: [tlsPort, plainPort] } = await startProxy(`
admin: {port: 0}
routers:
- label: t
  dtab: /svc => /$/inet/127.0.0.1/${dead};
  servers:
  - port: 0
    dstName: /svc
    tls:
      identities:
        ec.test: ${id('ec')}
  - {port: 0, dstName: /svc}
`, 2);
    cleanup.push(() => p.stop('SIGKILL'));
    const admin = await adminUrl(p);
    const m0 = await (await fetch(`${admin}/metrics`)).text();
    assert.equal(metric(m0, 'l5d:tls:reloads{result="ok"}'), 0);
    assert.equal(metric(m0, 'l5d:tls:reloads{result="failed"}'), 0);

    const c = tlsConnect({ host: '127.0.0.1', port: tlsPort!, servername: 'nope.test', rejectUnauthorized: false });
    c.on('error', () => {});
    await deadline(5000, 'handshake refused', new Promise((r) => c.once('close', r)));
    const rec = await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'tls_handshake', 5000, 'the handshake record');
    assert.equal(rec['error'], 'unknown_sni');
    assert.equal(rec['sni'], 'nope.test');

    const plain = await dial(plainPort!); // its backend is down: a connect failure
    await deadline(5000, 'connect failure closes the client', peerClosed(plain));
    await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'connect_refused');
    const st = await (await fetch(`${admin}/api/state`)).json() as { recentErrors: RecentError[]; servers: { tlsFailures: Record<string, number> }[] };
    const tls = st.recentErrors.find((e) => e.msg === 'tls handshake failed');
    assert.ok(tls, JSON.stringify(st.recentErrors));
    assert.equal(tls.context['sni'], 'nope.test');
    assert.equal(tls.context['cause'], 'unknown_sni');
    const cf = st.recentErrors.find((e) => e.msg === 'connect failed');
    assert.ok(cf, JSON.stringify(st.recentErrors));
    assert.equal(cf.context['endpoint'], `127.0.0.1:${dead}`);
    assert.deepEqual(st.servers[0]!.tlsFailures, { unknown_sni: 1 });

    p.proc.kill('SIGHUP');
    const done = await p.waitForLog((l) => l.msg === 'tls reload done', 5000, 'a reload record');
    assert.equal(done['trigger'], 'SIGHUP');
    assert.equal(done['unchanged'], 1);
    assert.equal(done['reloaded'], 0);
  });
});
