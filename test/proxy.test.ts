// End to end through the real CLI: bytes both ways by hash, half-close, spreading by load,
// failures that close the client promptly, lifetime and concurrency limits, and draining.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { type Backend, peerClosed, deadPort, deadline, echo, startBackend, startBlackhole, startProxy, TEST_WORKERS } from './support/harness.ts';

// With workers, every proxy here runs that many (LINKERD_TCP_TEST_WORKERS; the kernel spreads connections).
const WORKERS = Number(TEST_WORKERS);

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, 'client connect', once(s, 'connect').then(() => s));
}

/** Everything the socket receives until EOF. */
function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return once(s, 'end').then(() => Buffer.concat(chunks));
}

function config(backends: number[], extra = '', server = ''): string {
  const dst = backends.map((p) => `/$/inet/127.0.0.1/${p}`).join(' & ');
  return `
admin: {graceSecs: 5, port: 0}
routers:
- label: test
  dtab: |
    /svc/be => ${dst || '~'};
  servers:
  - port: 0
    dstName: /svc/be${server}
${extra}`;
}

describe('proxy end to end', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  async function backend(h: (s: Socket) => void): Promise<Backend> {
    const b = await startBackend(h);
    cleanup.push(() => b.close());
    return b;
  }
  async function proxy(cfg: string) {
    const p = await startProxy(cfg);
    cleanup.push(() => p.proxy.stop('SIGKILL'));
    return p;
  }

  it('carries 4 MiB of random bytes each way intact', async () => {
    // The backend sends its own 4 MiB after reading the client's, and reports what it got.
    const fromBackend = randomBytes(4 << 20);
    let backendGot = '';
    const b = await backend((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => {
        backendGot = sha(Buffer.concat(chunks));
        s.end(fromBackend);
      });
    });
    const { ports: [port] } = await proxy(config([b.port]));
    const c = await dial(port!);
    const toBackend = randomBytes(4 << 20);
    const got = readAll(c);
    c.end(toBackend);
    const received = await deadline(20_000, 'response', got);
    assert.equal(received.length, fromBackend.length);
    assert.equal(sha(received), sha(fromBackend));
    assert.equal(backendGot, sha(toBackend));
  });

  it('honours half-close both ways', async () => {
    // Client → FIN while the response keeps flowing; then backend → FIN while the client still sends.
    const b = await backend((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => {
        const req = Buffer.concat(chunks).toString();
        s.write(`got ${req}; `);
        s.end('bye');
      });
    });
    const { ports: [port] } = await proxy(config([b.port]));
    const c = await dial(port!);
    const got = readAll(c);
    c.end('hello');
    assert.equal((await deadline(5000, 'response', got)).toString(), 'got hello; bye');

    const b2 = await backend((s) => {
      s.end('early bye'); // backend closes its side first
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => b2Got.resolve(Buffer.concat(chunks).toString()));
    });
    const b2Got = Promise.withResolvers<string>();
    const { ports: [port2] } = await proxy(config([b2.port]));
    const c2 = await dial(port2!);
    const got2 = readAll(c2);
    assert.equal((await deadline(5000, 'backend FIN', got2)).toString(), 'early bye');
    c2.end('still talking after your FIN'); // the client → backend direction still flows
    assert.equal(await deadline(5000, 'late client bytes', b2Got.promise), 'still talking after your FIN');
  });

  it('spreads 200 concurrent connections over 3 backends by load', async () => {
    const held: Socket[] = [];
    const all = Promise.withResolvers<void>();
    const hold = (s: Socket) => {
      held.push(s);
      if (held.length === 200) all.resolve();
    };
    const bs = [await backend(hold), await backend(hold), await backend(hold)];
    const { ports: [port] } = await proxy(config(bs.map((b) => b.port)));
    const clients = await Promise.all(Array.from({ length: 200 }, () => dial(port!)));
    await deadline(15_000, '200 backend connections', all.promise);
    const counts = bs.map((b) => b.accepted);
    // P2C on load keeps the three within a few connections of 200/3 each.
    for (const n of counts) assert.ok(n >= 60 && n <= 74, `uneven spread: ${counts.join('/')}`);
    for (const c of clients) c.destroy();
  });

  it('closes the client promptly when the backend refuses, and keeps serving', async () => {
    const dead = await deadPort();
    const live = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(config([dead]));
    const c = await dial(port!);
    const t0 = performance.now();
    await deadline(3000, 'client closed', peerClosed(c));
    assert.ok(performance.now() - t0 < 2000);
    const line = await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'connect_refused');
    assert.equal(line['endpoint'], `127.0.0.1:${dead}`);
    await p.waitForLog((l) => l.msg === 'connect failed' && l['cause'] === 'refused');
    // The process is still serving: a second proxy route in the same process is not needed;
    // a new connection gets the same prompt answer rather than a hang or a crash.
    const c2 = await dial(port!);
    await deadline(3000, 'second client closed', peerClosed(c2));
    assert.equal(p.proc.exitCode, null);
    void live;
  });

  it('closes the client when no endpoint exists', async () => {
    const { proxy: p, ports: [port] } = await proxy(config([]));
    const c = await dial(port!);
    await deadline(3000, 'client closed', peerClosed(c));
    await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'no_endpoints');
  });

  it('times out a connect that never completes (connectTimeoutMs)', async () => {
    const blackhole = await startBlackhole();
    cleanup.push(async () => blackhole.close());
    const { proxy: p, ports: [port] } = await proxy(config([blackhole.port], '', '\n    connectTimeoutMs: 300'));
    const c = await dial(port!);
    const t0 = performance.now();
    await deadline(3000, 'client closed', peerClosed(c));
    const took = performance.now() - t0;
    assert.ok(took >= 250 && took < 2000, `closed after ${took}ms`);
    await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'connect_timeout');
  });

  it('cuts a connection at connectionLifetimeSecs', async () => {
    const b = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(config([b.port], '', '\n    connectionLifetimeSecs: 1'));
    const c = await dial(port!);
    c.write('ping');
    await deadline(3000, 'echo', once(c, 'data'));
    const t0 = performance.now();
    await deadline(4000, 'lifetime close', peerClosed(c));
    assert.ok(performance.now() - t0 < 1500);
    await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'lifetime');
  });

  it('closes connections beyond maxConcurrency at once', async () => {
    const b = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(config([b.port], '', '\n    maxConcurrency: 2'));
    // The limit is per worker (README): one worker takes the first two and closes the third;
    // with several, 2 × workers + 1 connections put a third on one of them, wherever the
    // kernel sends each.
    const conns: Socket[] = [];
    const fates: string[] = [];
    for (let i = 0; i < 2 * WORKERS + 1; i++) {
      const c = await dial(port!);
      conns.push(c);
      c.write('x');
      // Closed at once with 'x' unread, the client may see a reset: that is a close too.
      fates.push(await deadline(3000, 'echo or close', new Promise<string>((resolve) => {
        c.once('data', () => resolve('open'));
        void peerClosed(c).then(() => resolve('closed'));
      })));
    }
    if (WORKERS === 1) assert.deepEqual(fates, ['open', 'open', 'closed'], 'the third closed at once');
    else assert.ok(fates.includes('closed') && fates.filter((f) => f === 'open').length <= 2 * WORKERS, fates.join(' '));
    await p.waitForLog((l) => l.msg === 'maxConcurrency reached; connection closed');
    for (const c of conns) c.destroy();
  });

  it('on SIGTERM stops accepting, lets an open connection finish, then exits 0', async () => {
    const b = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(config([b.port]));
    const c = await dial(port!);
    c.write('before');
    await deadline(3000, 'echo', once(c, 'data'));
    p.proc.kill('SIGTERM');
    await p.waitForLog((l) => l.msg === 'draining open connections');
    // With workers, every one has closed its listener once it says so (and the supervisor too).
    await p.waitForCount((l) => l.msg === 'shutting down', WORKERS > 1 ? WORKERS + 1 : 1);
    // New connections are refused once the listener is closed.
    const refused = connect({ port: port!, host: '127.0.0.1' });
    const [err] = await deadline(3000, 'refusal', once(refused, 'error'));
    assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    // The open one still works, and finishes.
    const rest = readAll(c);
    c.end('after');
    assert.equal((await deadline(3000, 'drained echo', rest)).toString(), 'after');
    assert.equal(await deadline(5000, 'exit', p.exited), 0);
  });
});
