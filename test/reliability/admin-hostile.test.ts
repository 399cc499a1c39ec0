// Hostile clients on the real CLI's admin port (test/admin.test.ts checks the admin server
// alone with shortened limits; this is the shipped defaults, in the running proxy): random
// bytes, an oversized request line, oversized headers, a malformed version, a smuggling-style
// Content-Length + Transfer-Encoding request, a body too large, /shutdown with a malformed
// chunked body or for another Host (DNS rebinding), and slowloris at scale (more
// idle half-requests than the admin accepts connections). Each must get the right status or
// be closed, the admin must recover by itself, and the data path must never notice.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import { deadline, echo, startBackend, startProxy } from '../support/harness.ts';
import { seeded } from '../support/random.ts';

/** Stops the proxy and removes the temp dir its config was written to (its last argument). */
async function dispose(proxy: { proc: ChildProcess; stop(signal: NodeJS.Signals): Promise<unknown> }): Promise<void> {
  await proxy.stop('SIGKILL');
  rmSync(dirname(String(proxy.proc.spawnargs.at(-1))), { recursive: true, force: true });
}

const MAX_CONNECTIONS = 128; // the admin server's cap (src/admin/server.ts DEFAULT_ADMIN_LIMITS)
const HEADERS_TIMEOUT_MS = 5_000; // its headersTimeoutMs default

/** Writes `bytes` (then keeps the socket open) and resolves with what came back once the server closes. */
function send(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setEncoding('latin1').on('data', (d: string) => (got += d));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.write(bytes);
  });
}

/** The status line's code, or 'closed' when the server closed without a response. */
const statusOf = (response: string): string => /^HTTP\/1\.1 (\d{3}) /.exec(response)?.[1] ?? (response === '' ? 'closed' : `garbage: ${response.slice(0, 40)}`);

describe('hostile admin clients', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it('garbage, oversized and malformed requests get their status or a close; a slowloris flood past the connection cap is cut by itself; data path unaffected', { timeout: 60_000 }, async (t) => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: r
  dtab: /svc/be => /$/inet/127.0.0.1/${be.port};
  servers: [{port: 0, dstName: /svc/be}]
`);
    cleanup.push(() => dispose(proxy));
    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const adminPort = Number(admin.split(':').pop());
    const ping = async (): Promise<string> => statusOf(await send(adminPort, 'GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
    const proxied = async (msg: string): Promise<void> => {
      const s = connect({ port: port!, host: '127.0.0.1', allowHalfOpen: true });
      s.on('error', () => {});
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.end(msg);
      await deadline(5000, 'proxied echo', once(s, 'end'));
      s.destroy();
      assert.equal(got, msg);
    };
    assert.equal(await ping(), '200');

    // Slowloris at scale: more half-sent requests than the admin accepts connections.
    const t0 = performance.now();
    const loris: Socket[] = [];
    const lorisDone = Array.from({ length: MAX_CONNECTIONS + 32 }, () => new Promise<{ status: string; ms: number }>((resolve) => {
      const s = connect(adminPort, '127.0.0.1');
      loris.push(s);
      let got = '';
      s.setEncoding('latin1').on('data', (d: string) => (got += d));
      s.on('error', () => {});
      s.on('close', () => resolve({ status: statusOf(got), ms: performance.now() - t0 }));
      s.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: '); // and never the rest
    }));
    cleanup.push(async () => { for (const s of loris) s.destroy(); });
    // Past the cap: closed at once, without a response (whichever 32 the server dropped).
    const settled: { status: string; ms: number }[] = [];
    let onSettle = (): void => {};
    for (const d of lorisDone) void d.then((r) => { settled.push(r); onSettle(); });
    await deadline(HEADERS_TIMEOUT_MS - 1000, 'connections past the cap closed', new Promise<void>((resolve) => {
      onSettle = () => { if (settled.length >= 32) resolve(); };
      onSettle();
    }));
    const early = settled.slice(0, 32);
    assert.ok(early.every((r) => r.status === 'closed'), `past the cap: ${JSON.stringify(early.slice(0, 3))}`);
    // Meanwhile the data path does not notice.
    for (let i = 0; i < 20; i++) await proxied(`during slowloris ${i}`);
    // The admin cuts every half-request at headersTimeoutMs (408), and answers again.
    const all = await deadline(HEADERS_TIMEOUT_MS * 3, 'every slowloris connection cut', Promise.all(lorisDone));
    const held = all.filter((r) => r.status !== 'closed' || r.ms >= HEADERS_TIMEOUT_MS - 500);
    const slowest = Math.max(...all.map((r) => r.ms));
    t.diagnostic(`${all.length} slowloris connections: ${all.length - held.length} closed at once (past the cap), ${held.length} cut after ${Math.round(Math.min(...held.map((r) => r.ms)))}–${Math.round(slowest)} ms with ${[...new Set(held.map((r) => r.status))].join('/')}`);
    assert.ok(held.length > 0 && held.length <= MAX_CONNECTIONS, `${held.length} held`);
    assert.ok(held.every((r) => r.status === '408'), `held ones answered ${[...new Set(held.map((r) => r.status))].join(', ')}`);
    assert.ok(held.every((r) => r.ms >= HEADERS_TIMEOUT_MS - 500), 'cut before headersTimeoutMs');
    assert.equal(await ping(), '200');

    // Garbage and oversized input: the right status, or a close; never a hang.
    const rnd = seeded(424242);
    const random = Buffer.alloc(64 << 10);
    for (let i = 0; i < random.length; i++) random[i] = Math.floor(rnd() * 256);
    const cases: [string, Buffer | string, RegExp][] = [
      ['64 KiB of random bytes', random, /^(400|431|closed)$/],
      ['random bytes then a valid request', Buffer.concat([random.subarray(0, 100), Buffer.from('\r\nGET /ping HTTP/1.1\r\n\r\n')]), /^(400|closed)$/],
      ['a 100 KiB request line', `GET /${'a'.repeat(100 << 10)} HTTP/1.1\r\nHost: localhost\r\n\r\n`, /^431$/],
      ['20 KiB of headers', `GET /ping HTTP/1.1\r\nHost: localhost\r\n${'X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(500)}\r\n`, /^431$/],
      ['3000 tiny headers', `GET /ping HTTP/1.1\r\nHost: localhost\r\n${'a:b\r\n'.repeat(3000)}Connection: close\r\n\r\n`, /^(200|431)$/],
      ['a bad HTTP version', 'GET /ping HTTP/7.3\r\nHost: localhost\r\n\r\n', /^(400|505)$/],
      ['a NUL in the request line', 'GET /pi\0ng HTTP/1.1\r\nHost: localhost\r\n\r\n', /^400$/],
      ['Content-Length and Transfer-Encoding both', 'POST /shutdown HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /^400$/],
      ['an invalid chunk size', 'POST /nothing HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /^(400|404|closed)$/],
      // A mutation acts only once its whole body has arrived: a malformed one stops nothing.
      ['/shutdown with an invalid chunk size', 'POST /shutdown HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n', /^(400|closed)$/],
      ['/shutdown for another Host (DNS rebinding)', 'POST /shutdown HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n', /^421$/],
      ['/shutdown with userinfo in Host', 'POST /shutdown HTTP/1.1\r\nHost: a@localhost\r\nContent-Length: 0\r\n\r\n', /^400$/],
      ['a 1 MiB body', `POST /shutdown HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${1 << 20}\r\n\r\n${'x'.repeat(1 << 20)}`, /^413$/],
    ];
    for (const [name, bytes, want] of cases) {
      const c0 = performance.now();
      const status = statusOf(await deadline(HEADERS_TIMEOUT_MS * 3, name, send(adminPort, bytes)));
      t.diagnostic(`${name}: ${status} (closed after ${Math.round(performance.now() - c0)} ms)`);
      assert.match(status, want, name);
      assert.equal(await ping(), '200', `admin after ${name}`);
    }

    // A client that pipelines 20,000 requests for /metrics and never reads an answer: the
    // admin stops parsing once its answers back up, so its memory stays put and others are served.
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proxy.proc.pid}/status`, 'utf8'))![1]) * 1024;
    const rssBefore = rss();
    const hog = connect(adminPort, '127.0.0.1');
    hog.on('error', () => {});
    cleanup.push(async () => { hog.destroy(); });
    hog.pause(); // reads nothing
    const sentAll = new Promise<void>((resolve) => hog.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(20_000), () => resolve()));
    await deadline(10_000, 'the pipelined requests handed to the kernel', Promise.race([sentAll, once(hog, 'close')]));
    for (let i = 0; i < 20; i++) assert.equal(await ping(), '200', 'admin while a client hogs it');
    const grown = rss() - rssBefore;
    t.diagnostic(`20,000 pipelined /metrics never read: proxy RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${((rssBefore + grown) / 2 ** 20).toFixed(0)} MiB; ${hog.readableLength + hog.bytesRead} bytes of answers reached the client`);
    // Bounded, not unbounded (answers are only produced as the client's socket drains): 36-58 MiB idle,
    // 65 once beside two CPU hogs (garbage a loaded process has not collected yet); 96 is still far from growth without bound.
    assert.ok(grown < 96 << 20, `RSS grew ${grown >> 20} MiB`);
    hog.destroy();

    await proxied('after all of it');
    assert.equal(proxy.proc.exitCode, null, 'still running');
    assert.ok(!proxy.logs.some((l) => l.msg === 'shutting down'), 'a hostile request reached /shutdown');
    assert.equal(proxy.stderr, '');
    assert.equal(await proxy.stop(), 0);
  });
});
