// Live config reload through the real CLI (issue 16): servers added, removed and changed
// while 100 connections stream through the ones that stay (every byte checked by hash, none
// cut); a dtab edit that moves new connections while old ones stay; a broken config refused
// whole with the old one serving; restart-only keys reported; watchConfig; POST-only.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { type Backend, deadline, deadPort, echo, peerClosed, Proxy, runCli, startBackend, TEST_WORKERS, writeConfig } from './support/harness.ts';
import { roundTrip } from './support/client.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, `connect to ${port}`, once(s, 'connect').then(() => s));
}

/** A connection that sends in two halves and checks the echo of both by hash. */
class Stream {
  readonly s: Socket;
  private readonly sent: Buffer[] = [];
  private got: Buffer[] = [];
  private gotBytes = 0;
  private waiter: { n: number; resolve: () => void } | undefined;
  constructor(s: Socket) {
    this.s = s;
    s.on('data', (d: Buffer) => {
      this.got.push(d);
      this.gotBytes += d.length;
      if (this.waiter && this.gotBytes >= this.waiter.n) this.waiter.resolve();
    });
  }
  static async open(port: number): Promise<Stream> {
    return new Stream(await dial(port));
  }
  /** Sends `n` random bytes and waits until all of them came back. */
  async round(n: number): Promise<void> {
    const b = randomBytes(n);
    this.sent.push(b);
    const want = this.sent.reduce((k, x) => k + x.length, 0);
    const back = new Promise<void>((resolve) => (this.waiter = { n: want, resolve }));
    if (this.gotBytes >= want) this.waiter!.resolve();
    this.s.write(b);
    await deadline(10_000, 'echo', back);
  }
  async finish(): Promise<void> {
    this.s.end();
    await deadline(10_000, 'close', peerClosed(this.s));
    assert.equal(sha(Buffer.concat(this.got)), sha(Buffer.concat(this.sent)), 'echoed bytes differ');
  }
}

/** Whether something accepts on 127.0.0.1:port (resolves false on ECONNREFUSED). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

const adminOf = async (p: Proxy): Promise<string> => String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);

type ReloadBody = { result: string; error: string | null; changes: string[]; needsRestart: string[]; hash: string };
async function postReload(admin: string, headers: Record<string, string> = {}): Promise<{ status: number; body: ReloadBody }> {
  const r = await fetch(`http://${admin}/reload`, { method: 'POST', headers });
  const text = await r.text();
  return { status: r.status, body: (r.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) as ReloadBody : { result: text, error: null, changes: [], needsRestart: [], hash: '' } };
}

describe('live config reload', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  async function backend(h: (s: Socket) => void = echo): Promise<Backend> {
    const b = await startBackend(h);
    cleanup.push(() => b.close());
    return b;
  }
  async function proxy(text: string, servers: number, env: NodeJS.ProcessEnv = {}): Promise<{ proxy: Proxy; ports: number[]; file: string; admin: string }> {
    const file = writeConfig(text); // the test rewrites this file, then asks for a reload
    const proxy = new Proxy([file], env);
    cleanup.push(() => proxy.stop('SIGKILL'));
    const ports = await Promise.race([
      proxy.listening(servers),
      proxy.exited.then((c) => { throw new Error(`proxy exited with ${c}: ${proxy.stderr}`); }),
    ]);
    return { proxy, ports, file, admin: await adminOf(proxy) };
  }
  const server = (port: number, dst = '/svc/a', extra = ''): string => `\n  - port: ${port}\n    dstName: ${dst}${extra}`;
  const cfg = (dtab: string, servers: string, top = ''): string => `admin: {port: 0, graceSecs: 5}${top}
routers:
- label: r
  dtab: |
    ${dtab}
  servers:${servers}
`;

  it('adds, removes and changes servers while 100 connections stream through the ones that stay: every byte intact, none cut', async () => {
    const a = await backend();
    const b = await backend();
    const [keep, drop, change, add] = [await deadPort(), await deadPort(), await deadPort(), await deadPort()];
    const dtab = `/svc/a => /$/inet/127.0.0.1/${a.port}; /svc/b => /$/inet/127.0.0.1/${b.port};`;
    const { proxy: p, file } = await proxy(cfg(dtab, server(keep) + server(drop) + server(change)), 3);
    const streams = await Promise.all(Array.from({ length: 100 }, (_, i) => Stream.open(i < 90 ? keep : i < 95 ? drop : change)));
    await Promise.all(streams.map((s) => s.round(32 * 1024)));
    const aBefore = a.accepted;
    // Remove `drop`, change `change` (to /svc/b), add `add`; `keep` stays as it is.
    writeFileSync(file, cfg(dtab, server(keep) + server(change, '/svc/b') + server(add, '/svc/b')));
    p.proc.kill('SIGHUP');
    const done = await p.waitForLog((l) => l.msg === 'config reloaded' || l.msg === 'config reload failed', 10_000);
    assert.equal(done.msg, 'config reloaded', JSON.stringify(done));
    assert.deepEqual(done['changes'], [
      `server r 127.0.0.1:${change}: dstName changed (new connections get the new settings; open ones keep theirs and run to their end)`,
      `server r 127.0.0.1:${add}: added (starts listening)`,
      `server r 127.0.0.1:${drop}: removed (stops accepting; open connections drain for admin.graceSecs, then the rest are cut)`,
    ]);
    assert.equal(await accepts(drop), false, 'a removed server stops accepting');
    assert.equal(await roundTrip(add, 'new server'), 'new server');
    assert.equal(await roundTrip(change, 'changed server'), 'changed server');
    assert.equal(b.accepted, 2, 'the added and the changed server route to /svc/b');
    assert.equal(await roundTrip(keep, 'kept'), 'kept');
    // Every stream, on every server, carries on and ends cleanly.
    await Promise.all(streams.map((s) => s.round(32 * 1024)));
    await Promise.all(streams.map((s) => s.finish()));
    assert.equal(a.accepted, aBefore + 1, 'the old streams stayed on their backend connections');
    const records = await p.waitForCount((l) => l.msg === 'connection closed', 100 + 3, 10_000);
    assert.deepEqual([...new Set(records.map((l) => l['reason']))], ['done'], 'no connection was cut');
    const metrics = await (await fetch(`http://${await adminOf(p)}/metrics`)).text();
    assert.match(metrics, /l5d:config:reloads\{result="ok"\} 1\n/);
    assert.match(metrics, /l5d:config:reloads\{result="failed"\} 0\n/);
  });

  it('a dtab edit moves new connections from A to B while open ones stay on A', async () => {
    const a = await backend();
    const b = await backend();
    const port = await deadPort();
    const { proxy: p, file, admin } = await proxy(cfg(`/svc/a => /$/inet/127.0.0.1/${a.port};`, server(port)), 1);
    const old = await Promise.all(Array.from({ length: 10 }, () => Stream.open(port)));
    await Promise.all(old.map((s) => s.round(1024)));
    assert.equal(a.accepted, 10);
    writeFileSync(file, cfg(`/svc/a => /$/inet/127.0.0.1/${b.port};`, server(port)));
    const r = await postReload(admin);
    assert.equal(r.status, 200);
    assert.equal(r.body.result, 'ok');
    assert.deepEqual(r.body.changes, ['router r: dtab changed (new connections; open ones keep theirs)']);
    for (let i = 0; i < 10; i++) assert.equal(await roundTrip(port, `n${i}`), `n${i}`);
    assert.equal(b.accepted, 10, 'new connections go to B');
    assert.equal(a.accepted, 10, 'none to A');
    await Promise.all(old.map((s) => s.round(1024))); // still served by A
    await Promise.all(old.map((s) => s.finish()));
    const st = await (await fetch(`http://${admin}/api/state`)).json() as { config: { hash: string; loadedAt: number; lastReload: { result: string } } };
    assert.match(st.config.hash, /^[0-9a-f]{64}$/);
    assert.equal(st.config.lastReload.result, 'ok');
    assert.ok(!p.logs.some((l) => l.msg === 'connection closed' && l['reason'] !== 'done'));
  });

  it('a router renamed: the new one takes over its server\'s address; open connections finish on the old', async () => {
    const a = await backend();
    const port = await deadPort();
    const dtab = `/svc/a => /$/inet/127.0.0.1/${a.port};`;
    const { proxy: p, file, admin } = await proxy(cfg(dtab, server(port)), 1);
    const open = await Stream.open(port);
    await open.round(1024);
    writeFileSync(file, cfg(dtab, server(port)).replace('label: r', 'label: r2'));
    const r = await postReload(admin);
    assert.equal(r.body.result, 'ok', JSON.stringify(r.body));
    assert.equal(await roundTrip(port, 'renamed'), 'renamed');
    await open.round(1024);
    await open.finish();
    const records = await p.waitForCount((l) => l.msg === 'connection closed', 2);
    assert.deepEqual(records.map((l) => [l['rt'], l['reason']]).sort(), [['r', 'done'], ['r2', 'done']]);
  });

  it('a broken config is refused whole, with its key paths, and the old one keeps serving', async () => {
    const a = await backend();
    const port = await deadPort();
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    cleanup.push(() => new Promise<void>((r) => taken.close(() => r())));
    const takenPort = (taken.address() as { port: number }).port;
    const newPort = await deadPort();
    const good = cfg(`/svc/a => /$/inet/127.0.0.1/${a.port};`, server(port));
    const { proxy: p, file, admin } = await proxy(good, 1);
    const hash0 = ((await (await fetch(`http://${admin}/api/state`)).json()) as { config: { hash: string } }).config.hash;
    const cases: [what: string, text: string, error: RegExp][] = [
      ['a bad key', good.replace('dstName: /svc/a', 'dstName: /svc/a\n    bogus: 1'), /routers\[0\]\.servers\[0\]\.bogus: unknown key/],
      ['a bad value', good.replace(`port: ${port}`, 'port: "x"'), /routers\[0\]\.servers\[0\]\.port: expected an integer/],
      ['unparsable YAML', 'routers: [', /invalid YAML/],
      ['a TLS file that does not load', good + `    tls: {defaultIdentity: {privateKey: /nonexistent.key, certs: [/nonexistent.pem]}}\n`, /nonexistent/],
      ['a port that cannot be bound (and an added server with it is not left listening)', cfg(`/svc/a => /$/inet/127.0.0.1/${a.port};`, server(port) + server(newPort) + server(takenPort)), /EADDRINUSE/],
    ];
    for (const [what, text, error] of cases) {
      writeFileSync(file, text);
      const r = await postReload(admin);
      assert.equal(r.status, 422, what);
      assert.equal(r.body.result, 'failed', what);
      assert.match(r.body.error ?? '', error, what);
      assert.equal(r.body.hash, hash0, `${what}: the running config's hash`);
      assert.equal(await roundTrip(port, what), what, `${what}: the old config serves`);
    }
    assert.equal(await accepts(newPort), false, 'the server added with the unbindable one was closed again');
    const line = p.logs.find((l) => l.msg === 'config reload failed')!;
    assert.match(String(line['err']), /routers\[0\]\.servers\[0\]\.bogus: unknown key/);
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    assert.match(metrics, new RegExp(`l5d:config:reloads\\{result="failed"\\} ${cases.length}\\n`));
    // Fixed: applies.
    writeFileSync(file, good);
    assert.equal((await postReload(admin)).body.result, 'unchanged');
  });

  it('refuses a config whose unchanged TLS server no longer loads its key (as --check would), even when the change is elsewhere', async () => {
    const a = await backend();
    const dir = mkdtempSync(join(tmpdir(), 'l5d-reload-tls-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const fixture = (f: string): string => new URL(`./fixtures/tls/${f}`, import.meta.url).pathname;
    for (const f of ['rsa.key', 'rsa.pem', 'chain.pem']) copyFileSync(fixture(f), join(dir, f));
    const [port, tlsPort, added] = [await deadPort(), await deadPort(), await deadPort()];
    const tls = `\n    tls: {defaultIdentity: {privateKey: ${join(dir, 'rsa.key')}, certs: [${join(dir, 'rsa.pem')}, ${join(dir, 'chain.pem')}]}}`;
    const dtab = `/svc/a => /$/inet/127.0.0.1/${a.port};`;
    const { proxy: p, file, admin } = await proxy(cfg(dtab, server(port) + server(tlsPort, '/svc/a', tls)), 2);
    // Every worker must have loaded the good key first: a worker still starting would read
    // the broken one and fail to start (retried with backoff), which is not this test's case.
    await p.waitForCount((l) => l.msg === 'listening', 2 * Number(TEST_WORKERS));
    writeFileSync(join(dir, 'rsa.key'), 'not a key\n');
    writeFileSync(file, cfg(dtab, server(port) + server(tlsPort, '/svc/a', tls) + server(added)));
    const r = await postReload(admin);
    assert.equal(r.status, 422);
    assert.match(r.body.error ?? '', /routers\[0\]\.servers\[1\]\.tls/);
    assert.equal(await accepts(added), false);
    assert.equal(await roundTrip(port, 'still'), 'still');
  });

  it('reports workers and admin changes as needing a restart and applies the rest', async () => {
    const a = await backend();
    const [port, added] = [await deadPort(), await deadPort()];
    const dtab = `/svc/a => /$/inet/127.0.0.1/${a.port};`;
    const { file, admin } = await proxy(cfg(dtab, server(port)), 1);
    writeFileSync(file, cfg(dtab, server(port) + server(added), '\nworkers: 3').replace('admin: {port: 0, graceSecs: 5}', 'admin: {port: 1, graceSecs: 5}'));
    const r = await postReload(admin);
    assert.equal(r.body.result, 'ok');
    assert.deepEqual(r.body.needsRestart, ['workers', 'admin.port']);
    assert.equal(await roundTrip(added, 'added'), 'added');
    // Still the same admin server; asked again, the restart is still needed and nothing else changes.
    const again = await postReload(admin);
    assert.equal(again.body.result, 'unchanged');
    assert.deepEqual(again.body.needsRestart, ['workers', 'admin.port']);
  });

  it('watchConfig: a rename-replace of the file is applied', async () => {
    const a = await backend();
    const [port, added] = [await deadPort(), await deadPort()];
    const dtab = `/svc/a => /$/inet/127.0.0.1/${a.port};`;
    const { proxy: p, file } = await proxy(cfg(dtab, server(port), '\nwatchConfig: true'), 1);
    writeFileSync(`${file}.tmp`, cfg(dtab, server(port) + server(added), '\nwatchConfig: true'));
    renameSync(`${file}.tmp`, file);
    const line = await p.waitForLog((l) => l.msg === 'config reloaded' && l['trigger'] === 'file change', 10_000);
    assert.ok(String(line['changes']).includes('added'));
    assert.equal(await roundTrip(added, 'watched'), 'watched');
  });

  it('POST only, with the same guard as /shutdown', async () => {
    const a = await backend();
    const { admin } = await proxy(cfg(`/svc/a => /$/inet/127.0.0.1/${a.port};`, server(await deadPort())), 1);
    assert.equal((await fetch(`http://${admin}/reload`)).status, 405);
    const cross = await postReload(admin, { 'Sec-Fetch-Site': 'cross-site', Origin: 'https://evil.example' });
    assert.equal(cross.status, 403);
  });

  it('with two workers: all switch (a server added, a dtab edited), and a worker restarted afterwards runs the new config', async () => {
    const a = await backend();
    const b = await backend();
    const [port, added] = [await deadPort(), await deadPort()];
    const text = (dtab: string, servers: string): string => cfg(dtab, servers, '\nworkers: 2');
    const { proxy: p, file, admin } = await proxy(text(`/svc/a => /$/inet/127.0.0.1/${a.port};`, server(port)), 1, { LINKERD_TCP_WORKERS: '2' });
    await p.waitForCount((l) => l.msg === 'listening', 2, 45_000, 'both workers listening');
    const old = await Promise.all(Array.from({ length: 10 }, () => Stream.open(port)));
    await Promise.all(old.map((s) => s.round(1024)));
    writeFileSync(file, text(`/svc/a => /$/inet/127.0.0.1/${b.port};`, server(port) + server(added)));
    const r = await postReload(admin);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result, 'ok');
    const onAdded = p.logs.filter((l) => l.msg === 'listening' && String(l['srv']).endsWith(`:${added}`));
    assert.equal(new Set(onAdded.map((l) => l['pid'])).size, 2, 'both workers listen on the added server');
    const aBefore = a.accepted;
    for (let i = 0; i < 20; i++) assert.equal(await roundTrip(i % 2 ? added : port, `w${i}`), `w${i}`);
    assert.equal(a.accepted, aBefore, 'no new connection went to A, on either worker');
    assert.equal(b.accepted, 20);
    await Promise.all(old.map((s) => s.round(1024)));
    await Promise.all(old.map((s) => s.finish()));
    // A worker killed now comes back with the reloaded config.
    const victim = Number(onAdded[0]!['pid']);
    process.kill(victim, 'SIGKILL');
    await p.waitForLog((l) => l.msg === 'listening' && String(l['srv']).endsWith(`:${added}`) && l['pid'] !== victim && !onAdded.includes(l), 15_000, 'the restarted worker listening on the added server');
    // A broken config is refused by every worker (a port in use), and both keep the running one.
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    cleanup.push(() => new Promise<void>((res) => taken.close(() => res())));
    writeFileSync(file, text(`/svc/a => /$/inet/127.0.0.1/${a.port};`, server(port) + server(added) + server((taken.address() as { port: number }).port)));
    const refused = await postReload(admin);
    assert.equal(refused.body.result, 'failed');
    assert.match(refused.body.error ?? '', /EADDRINUSE/);
    for (let i = 0; i < 10; i++) assert.equal(await roundTrip(port, `x${i}`), `x${i}`);
    assert.equal(a.accepted, aBefore, 'still B: the refused config (back to A) was applied nowhere');
  });

  it('with two workers: a worker restarting during a reload ends up on the new config too', async () => {
    const a = await backend();
    const [port, added] = [await deadPort(), await deadPort()];
    const text = (servers: string): string => cfg(`/svc/a => /$/inet/127.0.0.1/${a.port};`, servers, '\nworkers: 2');
    const { proxy: p, file, admin } = await proxy(text(server(port)), 1, { LINKERD_TCP_WORKERS: '2' });
    const first = await p.waitForCount((l) => l.msg === 'listening', 2, 45_000, 'both workers listening');
    const victim = Number(first[0]!['pid']);
    process.kill(victim, 'SIGKILL');
    await p.waitForLog((l) => l.msg === 'worker exited; restarting' && l['workerPid'] === victim);
    writeFileSync(file, text(server(port) + server(added)));
    const r = await postReload(admin);
    assert.equal(r.body.result, 'ok', JSON.stringify(r.body));
    const onAdded = await p.waitForCount((l) => l.msg === 'listening' && String(l['srv']).endsWith(`:${added}`), 2, 20_000, 'two workers on the added server');
    assert.equal(new Set(onAdded.map((l) => l['pid'])).size, 2);
    assert.ok(!onAdded.some((l) => l['pid'] === victim));
  });

  it('with two workers: a reload asked before the workers listen answers ok only once every worker runs it', async () => {
    const a = await backend();
    const [port, added] = [await deadPort(), await deadPort()];
    const text = (servers: string): string => cfg(`/svc/a => /$/inet/127.0.0.1/${a.port};`, servers, '\nworkers: 2');
    const file = writeConfig(text(server(port)));
    const p = new Proxy([file], { LINKERD_TCP_WORKERS: '2' });
    cleanup.push(() => p.stop('SIGKILL'));
    const admin = await adminOf(p); // the supervisor's admin listens while its workers still start
    writeFileSync(file, text(server(port) + server(added)));
    const r = await postReload(admin);
    assert.equal(r.body.result, 'ok', JSON.stringify(r.body));
    assert.equal(await roundTrip(added, 'at once'), 'at once');
    const onAdded = await p.waitForCount((l) => l.msg === 'listening' && String(l['srv']).endsWith(`:${added}`), 2, 2000, 'both workers on the added server');
    assert.equal(new Set(onAdded.map((l) => l['pid'])).size, 2, 'both workers listen on the added server');
  });

  it('--check --diff OLD NEW prints what a reload would do', async () => {
    const dtab = '/svc/a => /$/inet/127.0.0.1/1;';
    const old = writeConfig(cfg(dtab, server(7001) + server(7002)));
    const next = writeConfig(cfg('/svc/a => /$/inet/127.0.0.1/2;', server(7001) + server(7003), '\nworkers: 2'));
    const r = await runCli(['--check', '--diff', old, next]);
    assert.equal(r.code, 0, r.stderr);
    for (const want of [
      'router r: dtab changed', 'server r 127.0.0.1:7003: added', 'server r 127.0.0.1:7002: removed', 'workers: changed, needs a restart',
    ]) assert.ok(r.stdout.includes(want), `${want}\n${r.stdout}`);
    assert.equal((await runCli(['--diff', old, next])).code, 2);
    const bad = writeConfig('routers: []');
    assert.equal((await runCli(['--check', '--diff', old, bad])).code, 1);
  });
});
