// `threads: true`: one process whose native I/O threads serve plain TCP servers. What the
// conformance suite (test/conformance/threads.test.ts) does not cover: the limits hold for the
// whole process however the kernel spreads connections over the threads, the proxy is one
// process, the access log names the client, a reload retargets the threads' destination
// while open connections keep theirs, servers the threads do not carry run beside them, and
// `--check` says which runs where. Requires the addon (Linux x64), as the native conformance.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { loadNative } from '../src/engine/native-binding.ts';
import { peerOf } from '../src/engine/thread-server.ts';
import { deadPort, deadline, echo, peerClosed, Proxy, runCli, startBackend, startProxy, writeConfig } from './support/harness.ts';
import { metric, roundTrip } from './support/client.ts';
import { config } from './conformance/support.ts';

const load = loadNative();
const runs = load.kind === 'loaded' && process.env['LINKERD_TCP_ENGINE'] !== 'node';

/** Pids whose parent is `pid` (from /proc/<pid>/stat: the field after the command's closing paren). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(d));
  }
  return out;
}

/** The client port of each socket, read at connect (a socket the peer closed no longer has one). */
const clientPorts = new WeakMap<Socket, number>();

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  return deadline(5000, 'connect', once(s, 'connect').then(() => (clientPorts.set(s, s.localPort!), s)));
}

/** Whether the proxy echoes on `s` (true) or closes it (false). */
async function echoes(s: Socket): Promise<boolean> {
  const answer = new Promise<boolean>((resolve) => {
    s.once('data', () => resolve(true));
    s.once('close', () => resolve(false)); // closed by the proxy (a reset included)
  });
  s.write('x');
  return deadline(5000, 'echo or close', answer);
}

/** The conformance suite's config (router `t`, one server on /svc/be → `dst`) on two threads; `client`: its lines under `client:`. */
const cfg = (dst: string, client = '', server = ''): string => config(dst, { top: 'threads: true\nworkers: 2', server, ...(client ? { client } : {}) });

describe('threads: true (native I/O threads, one process)', { skip: !runs && 'the native addon is not loaded' }, () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  const proxy = async (text: string, servers = 1): Promise<{ p: Proxy; ports: number[] }> => {
    const { proxy: p, ports } = await startProxy(text, servers, { LINKERD_TCP_WORKERS: '' });
    cleanup.push(() => p.stop('SIGKILL'));
    return { p, ports };
  };

  it('decodes the client address of an accept record (IPv4 and IPv6)', () => {
    assert.equal(peerOf(4 * 65536 + 40000, 0x7f000001, 0, 0), '127.0.0.1:40000');
    // ::1 → bytes 0…0 1: the third double holds the last four bytes.
    assert.equal(peerOf(6 * 65536 + 5, 0, 0, 1), '[::1]:5');
    // 2001:db8::ff00:42:8329
    assert.equal(peerOf(6 * 65536 + 443, 0x20010db80000, 0x00000000ff00, 0x00428329), '[2001:db8::ff00:42:8329]:443');
    assert.equal(peerOf(0, 0, 0, 0), '');
  });

  it('runs as one process, and maxConcurrency holds for both threads together', async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { p, ports: [port] } = await proxy(cfg(`/$/inet/127.0.0.1/${b.port}`, '', '\n    maxConcurrency: 4'));
    const started = await p.waitForLog((l) => l.msg === 'listening');
    assert.equal(started['threads'], 2);
    // No child process: the threads are this one's.
    assert.deepEqual(childrenOf(p.proc.pid!), [], 'no worker processes');
    // Six at once: the kernel spreads them over both threads' listeners; four are admitted.
    const socks = await Promise.all(Array.from({ length: 6 }, () => dial(port!)));
    const served = await Promise.all(socks.map((s) => echoes(s)));
    assert.equal(served.filter(Boolean).length, 4, `served ${served.join(',')}`);
    const refused = await p.waitForCount((l) => l.msg === 'connection closed' && l['reason'] === 'max_concurrency', 2);
    assert.equal(refused.length, 2);
    // Every record names its client as the client saw itself.
    const mine = new Set(socks.map((s) => `127.0.0.1:${clientPorts.get(s)}`));
    for (const s of socks) s.destroy();
    const closed = await p.waitForCount((l) => l.msg === 'connection closed' && l['log'] === 'access', 6);
    for (const r of closed) assert.ok(mine.has(String(r['client'])), `client ${String(r['client'])}`);
  });

  it('a reload moves new connections to the new destination; an open one keeps its backend', async () => {
    const [a, b] = [await startBackend(echo), await startBackend(echo)];
    cleanup.push(() => a.close(), () => b.close());
    const path = writeConfig(cfg(`/$/inet/127.0.0.1/${a.port}`));
    const p = new Proxy([path], { LINKERD_TCP_WORKERS: '' });
    cleanup.push(() => p.stop('SIGKILL'));
    const l = await p.waitForLog((x) => x.msg === 'listening', 45_000);
    const port = Number(String(l['srv']).split(':').pop());
    const open = await dial(port);
    assert.ok(await echoes(open));
    assert.equal(a.accepted, 1);
    writeFileSync(path, cfg(`/$/inet/127.0.0.1/${b.port}`));
    p.proc.kill('SIGHUP');
    await p.waitForLog((x) => x.msg === 'config reloaded', 10_000);
    await deadline(10_000, 'new connections on the new backend', (async () => {
      while (b.accepted === 0) assert.equal(await roundTrip(port, 'n'), 'n');
    })());
    // The connection opened before the reload still reaches its backend.
    open.write('still');
    const [d] = await deadline(5000, 'old connection echo', once(open, 'data'));
    assert.equal(String(d), 'still');
    open.destroy();
  });

  it('a reload that changes a server\'s settings replaces its threads: the open connection keeps going, new ones reach the new threads', async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const port = await deadPort(); // free now: the server's fixed port
    const text = (idle: number): string => cfg(`/$/inet/127.0.0.1/${b.port}`, '', `\n    idleTimeoutMs: ${idle}`).replace('- port: 0', `- port: ${port}`);
    const path = writeConfig(text(60_000));
    const p = new Proxy([path], { LINKERD_TCP_WORKERS: '' });
    cleanup.push(() => p.stop('SIGKILL'));
    await p.waitForLog((x) => x.msg === 'listening', 45_000);
    const open = await dial(port);
    assert.ok(await echoes(open));
    writeFileSync(path, text(50_000));
    p.proc.kill('SIGHUP');
    await p.waitForLog((x) => x.msg === 'config reloaded', 10_000);
    await p.waitForCount((x) => x.msg === 'listening', 2, 10_000);
    assert.equal(await roundTrip(port, 'new'), 'new');
    open.write('old');
    const [d] = await deadline(5000, 'the open connection', once(open, 'data'));
    assert.equal(String(d), 'old');
    open.destroy();
    const recs = await p.waitForCount((x) => x.msg === 'connection closed' && x['log'] === 'access', 2);
    assert.deepEqual(recs.map((r) => r['reason']).sort(), ['done', 'done']);
  });

  it('counts the bytes of an open connection in /metrics and /api/state before it closes', async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { p, ports: [port] } = await proxy(cfg(`/$/inet/127.0.0.1/${b.port}`));
    const a = await p.waitForLog((l) => l.msg === 'admin listening');
    const c = await dial(port!);
    const sent = Buffer.alloc(100_000, 7);
    let got = 0;
    const all = new Promise<void>((resolve) => c.on('data', (d: Buffer) => { got += d.length; if (got >= sent.length) resolve(); }));
    c.write(sent);
    await deadline(5000, 'the echo', all);
    const text = await (await fetch(`http://${String(a['admin'])}/metrics`)).text();
    const srv = `{rt="t", srv_addr="127.0.0.1:${port}"}`;
    assert.equal(metric(text, `l5d:srv:stream:rx_bytes${srv}`), sent.length);
    assert.equal(metric(text, `l5d:srv:stream:tx_bytes${srv}`), sent.length);
    const state = (await (await fetch(`http://${String(a['admin'])}/api/state`)).json()) as { servers: { rxBytes: number; active: number; engine: string; threads?: number }[] };
    assert.equal(state.servers[0]!.rxBytes, sent.length);
    assert.equal(state.servers[0]!.engine, 'native');
    assert.equal(state.servers[0]!.threads, 2);
    assert.equal(state.servers[0]!.active, 1);
    c.destroy();
    await p.waitForLog((l) => l.msg === 'connection closed');
    const after = await (await fetch(`http://${String(a['admin'])}/metrics`)).text();
    assert.equal(metric(after, `l5d:srv:stream:rx_bytes${srv}`), sent.length, 'counted once, after the close too');
  });

  it('a connect refused by the only endpoint closes as connect_refused (not no_endpoints), blamed once per attempt', async () => {
    const dead = await deadPort();
    const { p, ports: [port] } = await proxy(cfg(`/$/inet/127.0.0.1/${dead}`, '    connectAttempts: 3\n    failFast: {maxConsecutiveFailures: 100, failurePenaltySecs: 1}'));
    const c = await dial(port!);
    await deadline(5000, 'closed', peerClosed(c));
    const [rec] = await p.waitForCount((l) => l.msg === 'connection closed' && l['log'] === 'access', 1);
    assert.equal(rec!['reason'], 'connect_refused');
    assert.equal(rec!['error'], 'ECONNREFUSED');
    // One endpoint: the thread has no other to retry on, so one attempt, one failure.
    const failed = await p.waitForCount((l) => l.msg === 'connect failed', 1);
    assert.equal(failed.length, 1);
  });

  it('a port another process holds, even with SO_REUSEPORT (a second linkerd-tcp on threads), fails the start: EADDRINUSE, exit 1', async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { ports: [port] } = await proxy(cfg(`/$/inet/127.0.0.1/${b.port}`));
    const text = cfg(`/$/inet/127.0.0.1/${b.port}`).replace('- port: 0', `- port: ${port}`);
    const second = new Proxy([writeConfig(text)], { LINKERD_TCP_WORKERS: '' });
    cleanup.push(() => second.stop('SIGKILL'));
    assert.equal(await deadline(45_000, 'the second exits', second.exited), 1);
    assert.match(second.stderr + JSON.stringify(second.logs), /EADDRINUSE/);
  });

  it('maxWaiters: 0 refuses every connection (waiters_full), as on the main thread', async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { p, ports: [port] } = await proxy(cfg(`/$/inet/127.0.0.1/${b.port}`, '    maxWaiters: 0'));
    const c = await dial(port!);
    assert.equal(await echoes(c), false);
    const [rec] = await p.waitForCount((l) => l.msg === 'connection closed' && l['log'] === 'access', 1);
    assert.equal(rec!['reason'], 'waiters_full');
    assert.equal(b.accepted, 0);
  });

  it('a thread group that has ended ignores a late snapshot, stop or cut (no throw)', async () => {
    if (load.kind !== 'loaded') return;
    const b = load.binding;
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    const g = b.ioStart('127.0.0.1', 0, [1, 0, 0, 0, 0, 0, 0, 0], (_n, end) => { if (end) ended(); });
    b.ioStop(g.id);
    await deadline(5000, 'the group ended', done);
    b.ioPublish(g.id, ['127.0.0.1'], [1], [1], [0], 0, 0, 0, 0, 5, [true]);
    b.ioStop(g.id);
    b.ioCut(g.id);
    assert.equal(b.ioStats(g.id), undefined);
    assert.equal(b.ioLoad(g.id, 0), undefined);
  });

  it('runs the servers the threads do not carry on the main thread, beside them; --check says which runs where', async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const text = cfg(`/$/inet/127.0.0.1/${b.port}`) + `  - port: 0
    dstName: /svc/be
    proxyProtocol: {accept: any, trustedCidrs: [127.0.0.0/8]}
`;
    const check = await runCli(['--check', writeConfig(text)], { LINKERD_TCP_ENGINE: '' });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /on the I\/O threads/);
    assert.match(check.stdout, /main thread: proxyProtocol received/);
    const { p, ports } = await proxy(text, 2);
    const engines = await p.waitForCount((l) => l.msg === 'engine', 2);
    assert.deepEqual(engines.map((e) => /; main thread: /.test(String(e['why']))).sort(), [false, true]);
    assert.equal(await roundTrip(ports[0]!, 'threads'), 'threads');
  });
});
