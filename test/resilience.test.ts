// Balancer resilience through the real CLI: connect retry on another endpoint, fail-fast
// ejection, maxWaiters, and the idle timeout.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type Backend, peerClosed, deadPort, deadline, echo, startBackend, startBlackhole, startProxy } from './support/harness.ts';

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, 'client connect', once(s, 'connect').then(() => s));
}

/** One request/response through the proxy: write `msg`, read until EOF. */
async function roundTrip(port: number, msg: string): Promise<string> {
  const s = await dial(port);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.end(msg);
  await deadline(5000, 'round trip', peerClosed(s));
  return Buffer.concat(chunks).toString();
}

describe('resilience', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  async function backend(h: (s: Socket) => void): Promise<Backend> {
    const b = await startBackend(h);
    cleanup.push(() => b.close());
    return b;
  }
  async function proxy(dtab: string, server = '', client = '') {
    const p = await startProxy(`
admin: {port: 0}
routers:
- label: r
  dtab: |
    ${dtab}
  servers:
  - port: 0
    dstName: /svc/x${server}
  client:
    kind: io.l5d.global${client}
`);
    cleanup.push(() => p.proxy.stop('SIGKILL'));
    return p;
  }

  it('retries a refused connect on another endpoint: clients never see it, and the dead one is ejected', async () => {
    const dead = await deadPort();
    const live = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(
      `/svc/x => /$/inet/127.0.0.1/${dead} & /$/inet/127.0.0.1/${live.port};`, '',
      '\n    failFast: {maxConsecutiveFailures: 3, failurePenaltySecs: 60}');
    for (let i = 0; i < 40; i++) assert.equal(await roundTrip(port!, `m${i}`), `m${i}`);
    assert.equal(live.accepted, 40);
    await p.waitForLog((l) => l.msg === 'endpoint ejected' && l['endpoint'] === `127.0.0.1:${dead}`);
    assert.ok(!p.logs.some((l) => l.msg === 'connection closed' && l['reason'] !== 'done'), 'a client saw a failure');
  });

  it('gives up after connectAttempts when every endpoint refuses', async () => {
    const [d1, d2] = [await deadPort(), await deadPort()];
    const { proxy: p, ports: [port] } = await proxy(`/svc/x => /$/inet/127.0.0.1/${d1} & /$/inet/127.0.0.1/${d2};`, '', '\n    connectAttempts: 2');
    assert.equal(await roundTrip(port!, 'x'), '');
    const line = await p.waitForLog((l) => l.msg === 'connection closed');
    assert.equal(line['reason'], 'connect_refused');
    const failed = p.logs.filter((l) => l.msg === 'connect failed').map((l) => l['endpoint']).sort();
    assert.deepEqual(failed, [`127.0.0.1:${d1}`, `127.0.0.1:${d2}`].sort(), 'each endpoint tried once');
  });

  it('retries a connect that times out (client connectTimeoutMs) on another endpoint', async () => {
    const hole = await startBlackhole();
    cleanup.push(async () => hole.close());
    const live = await backend(echo);
    // Weight the black hole heavily so first picks land on it.
    const { ports: [port] } = await proxy(`/svc/x => 100 * /$/inet/127.0.0.1/${hole.port} & 1 * /$/inet/127.0.0.1/${live.port};`, '', '\n    connectTimeoutMs: 200');
    const t0 = performance.now();
    assert.equal(await roundTrip(port!, 'slow path'), 'slow path');
    assert.ok(performance.now() - t0 < 3000);
  });

  it('refuses beyond maxWaiters at once', async () => {
    const hole = await startBlackhole();
    cleanup.push(async () => hole.close());
    const { proxy: p, ports: [port] } = await proxy(`/svc/x => /$/inet/127.0.0.1/${hole.port};`, '', '\n    maxWaiters: 1\n    connectTimeoutMs: 5000');
    const first = await dial(port!);
    await p.waitForLog((l) => l.msg === 'connecting'); // the first is now a pending connect
    const second = await dial(port!);
    await deadline(3000, 'second refused', peerClosed(second));
    await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'waiters_full');
    first.destroy();
  });

  it('closes a connection idle for idleTimeoutMs, and keeps a busy one', async () => {
    const b = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(`/svc/x => /$/inet/127.0.0.1/${b.port};`, '\n    idleTimeoutMs: 400');
    const idle = await dial(port!);
    const busy = await dial(port!);
    let busyClosed = false;
    busy.on('close', () => (busyClosed = true));
    const t0 = performance.now();
    const idleClosed = peerClosed(idle);
    // The busy one exchanges a message every 100 ms (workload pacing, not a wait for state).
    for (let i = 0; i < 10; i++) {
      busy.write('tick');
      await deadline(2000, 'tick echo', once(busy, 'data'));
      await delay(100);
    }
    await deadline(3000, 'idle close', idleClosed);
    const took = performance.now() - t0;
    assert.ok(took >= 350, `idle connection closed after ${took}ms`);
    assert.equal(busyClosed, false, 'the busy connection was cut');
    await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'idle');
    busy.destroy();
  });

  it('minConnections: a pre-connected spare cuts time-to-first-byte', async () => {
    // A backend that greets 300 ms after accepting (like a slow database handshake).
    const greeted = new Set<Socket>();
    const greetedEvent = new EventTarget();
    const b = await backend((s) => {
      setTimeout(() => {
        if (s.destroyed) return;
        s.write('hello\n');
        greeted.add(s);
        greetedEvent.dispatchEvent(new Event('greeted'));
      }, 300);
      s.pipe(s);
    });
    const ttfb = async (port: number): Promise<number> => {
      const t0 = performance.now();
      const c = await dial(port);
      await deadline(3000, 'first byte', once(c, 'data'));
      const t = performance.now() - t0;
      c.destroy();
      return t;
    };
    const pooled = await proxy(`/svc/x => /$/inet/127.0.0.1/${b.port};`, '', '\n    minConnections: 2');
    await deadline(3000, 'pool filled and greeted', new Promise<void>((resolve) => {
      const check = () => (greeted.size >= 2 ? resolve() : greetedEvent.addEventListener('greeted', check, { once: true }));
      check();
    }));
    const fast = await ttfb(pooled.ports[0]!);
    const plain = await proxy(`/svc/x => /$/inet/127.0.0.1/${b.port};`);
    const slow = await ttfb(plain.ports[0]!);
    assert.ok(fast < 150, `pooled TTFB ${fast}ms`);
    assert.ok(slow >= 280, `unpooled TTFB ${slow}ms`);
    // The pool refills after a spare is used.
    await pooled.proxy.waitForLog((l) => l.msg === 'connection closed');
    await deadline(3000, 'refill', new Promise<void>((resolve) => {
      const check = () => (b.accepted >= 3 ? resolve() : greetedEvent.addEventListener('greeted', check, { once: true }));
      check();
    }));
  });

  it('minConnections: spares the backend closes are replaced, never handed out dead', async () => {
    let closeNext = 2;
    const b = await backend((s) => {
      if (closeNext-- > 0) s.end(); // the backend drops the first two idle connections
      else s.pipe(s);
    });
    const { proxy: p, ports: [port] } = await proxy(`/svc/x => /$/inet/127.0.0.1/${b.port};`, '', '\n    minConnections: 2');
    await deadline(5000, 'replacements', (async () => {
      while (b.accepted < 4) await once(b.server, 'connection');
    })());
    for (let i = 0; i < 3; i++) assert.equal(await roundTrip(port!, `r${i}`), `r${i}`);
    assert.ok(!p.logs.some((l) => l.msg === 'connection closed' && l['reason'] !== 'done'));
  });
});
