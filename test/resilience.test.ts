// Balancer resilience through the real CLI: connect retry on another endpoint, fail-fast
// ejection, maxWaiters, and the idle timeout.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type Backend, peerClosed, deadPort, deadline, echo, startBackend, startBlackhole, startProxy, TEST_WORKERS } from './support/harness.ts';

// Pools and fail-fast state are kept per worker (README): with N workers, N pools and N ejections.
const WORKERS = Number(TEST_WORKERS);

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
    const admin = String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const m = await (await fetch(`http://${admin}/metrics`)).text();
    assert.match(m, /l5d:balancer:endpoint:failed\{dst="\/svc\/x", rt="r"\} 1\n/);
    assert.match(m, /l5d:balancer:connection:retries\{dst="\/svc\/x", rt="r"\} [1-9]/);
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

  it('reports a refused connect once when no other endpoint exists, and leaves no pending count', async () => {
    const dead = await deadPort();
    const { proxy: p, ports: [port] } = await proxy(`/svc/x => /$/inet/127.0.0.1/${dead};`);
    assert.equal(await roundTrip(port!, 'x'), '');
    await p.waitForLog((l) => l.msg === 'connection closed');
    assert.equal(p.logs.filter((l) => l.msg === 'connect failed').length, 1);
    const admin = String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const m = await (await fetch(`http://${admin}/metrics`)).text();
    assert.match(m, /l5d:balancer:connection:failure\{cause="refused", dst="\/svc\/x", rt="r"\} 1\n/);
    assert.match(m, /l5d:balancer:connection:pending\{dst="\/svc\/x", rt="r"\} 0\n/);
    assert.match(m, /l5d:balancer:waiters\{dst="\/svc\/x", rt="r"\} 0\n/);
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
    // Each worker holds its own waiters: dial until one is refused; a worker gets a second one
    // within WORKERS + 1 connections (one process: the first is a pending connect, the second refused).
    const held: Socket[] = [];
    let pending = 0;
    for (let i = 0; i <= WORKERS; i++) {
      const s = await dial(port!);
      held.push(s);
      const outcome = await deadline(3000, `connection ${i} pending or refused`, Promise.race([
        peerClosed(s).then(() => 'refused' as const),
        p.waitForCount((l) => l.msg === 'connecting', pending + 1, 3000).then(() => 'pending' as const, () => 'neither' as const),
      ]));
      if (outcome === 'refused') break;
      pending++;
    }
    assert.ok(pending >= 1 && pending <= WORKERS, `${pending} pending connects before a refusal`);
    await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'waiters_full');
    for (const s of held) s.destroy();
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
      const check = () => (greeted.size >= 2 * WORKERS ? resolve() : greetedEvent.addEventListener('greeted', check, { once: true }));
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
      const check = () => (b.accepted >= 2 * WORKERS + 1 ? resolve() : greetedEvent.addEventListener('greeted', check, { once: true }));
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
      while (b.accepted < 2 * WORKERS + 2) await once(b.server, 'connection');
    })());
    for (let i = 0; i < 3; i++) assert.equal(await roundTrip(port!, `r${i}`), `r${i}`);
    assert.ok(!p.logs.some((l) => l.msg === 'connection closed' && l['reason'] !== 'done'));
  });

  it('splits sequential connections 0.9/0.1 as the weights say (±0.05)', async () => {
    const [heavy, light] = [await backend(echo), await backend(echo)];
    const { ports: [port] } = await proxy(`/svc/x => 9 * /$/inet/127.0.0.1/${heavy.port} & 1 * /$/inet/127.0.0.1/${light.port};`);
    const n = 300;
    for (let i = 0; i < n; i++) await roundTrip(port!, 'w');
    const share = heavy.accepted / n;
    assert.ok(Math.abs(share - 0.9) <= 0.05, `heavy share ${share}`);
    assert.equal(heavy.accepted + light.accepted, n);
  });

  it('a backend killed mid-stream ends only its own connections', async () => {
    // Each backend records the tokens it receives, so each client knows where it landed.
    const tokens = [new Set<string>(), new Set<string>()];
    const recording = (k: number) => (sock: Socket) => {
      sock.on('data', (d: Buffer) => tokens[k]!.add(d.toString()));
      sock.pipe(sock);
    };
    const [a, b] = [await backend(recording(0)), await backend(recording(1))];
    const { proxy: p, ports: [port] } = await proxy(`/svc/x => /$/inet/127.0.0.1/${a.port} & /$/inet/127.0.0.1/${b.port};`);
    const clients: { socket: Socket; token: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const socket = await dial(port!);
      const token = `client-${i}`;
      const echoed = once(socket, 'data');
      socket.write(token);
      await deadline(3000, 'echo', echoed);
      clients.push({ socket, token });
    }
    const onA = clients.filter((c) => tokens[0]!.has(c.token));
    const onB = clients.filter((c) => tokens[1]!.has(c.token));
    assert.ok(onA.length > 0 && onB.length > 0 && onA.length + onB.length === 10, `${onA.length} on A, ${onB.length} on B`);
    const cut = onA.map((c) => peerClosed(c.socket));
    for (const sock of a.sockets) sock.resetAndDestroy(); // the backend dies: RST on each of its connections
    await deadline(3000, 'A connections cut', Promise.all(cut));
    for (const c of onB) {
      const echoed = once(c.socket, 'data');
      c.socket.write('still here');
      await deadline(3000, 'B still echoes', echoed);
    }
    const closed = await p.waitForCount((l) => l.msg === 'connection closed', onA.length);
    assert.deepEqual(closed.map((l) => l['reason']), onA.map(() => 'backend_error'));
    for (const c of onB) c.socket.destroy();
  });

  it('an ejected endpoint is tried again after failurePenaltySecs and serves once it recovers', async () => {
    const port0 = await deadPort();
    const live = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(
      `/svc/x => /$/inet/127.0.0.1/${port0} & /$/inet/127.0.0.1/${live.port};`, '',
      '\n    failFast: {maxConsecutiveFailures: 1, failurePenaltySecs: 1}');
    // Traffic until the dead endpoint has been tried and ejected by every worker (retry hides it from clients).
    const ejectedBy = (): number => new Set(p.logs.filter((l) => l.msg === 'endpoint ejected').map((l) => l['pid'])).size;
    await deadline(5000, 'ejection', (async () => {
      while (ejectedBy() < WORKERS) assert.equal(await roundTrip(port!, 'e'), 'e');
    })());
    const back = await startBackend(echo, { port: port0 }); // the endpoint comes back
    cleanup.push(() => back.close());
    // Revival is checked at pick time once the penalty has passed: keep traffic flowing.
    await deadline(5000, 'traffic to the recovered endpoint', (async () => {
      while (back.accepted === 0) assert.equal(await roundTrip(port!, 'r'), 'r');
    })());
    assert.ok(p.logs.some((l) => l.msg === 'endpoint revived' && l['endpoint'] === `127.0.0.1:${port0}`));
  });

  it('ejects by default as linkerd-tcp does: 5 consecutive refused connects, no failFast block needed', async () => {
    const dead = await deadPort();
    const live = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(`/svc/x => /$/inet/127.0.0.1/${dead} & /$/inet/127.0.0.1/${live.port};`);
    // Traffic until every worker has ejected the dead endpoint, then more: it is not tried again.
    const ejectedBy = (): number => new Set(p.logs.filter((l) => l.msg === 'endpoint ejected' && l['endpoint'] === `127.0.0.1:${dead}`).map((l) => l['pid'])).size;
    let sent = 0;
    await deadline(20_000, 'ejection by every worker', (async () => {
      for (; ejectedBy() < WORKERS; sent++) assert.equal(await roundTrip(port!, `m${sent}`), `m${sent}`);
    })());
    for (let i = 0; i < 20; i++, sent++) assert.equal(await roundTrip(port!, `m${sent}`), `m${sent}`);
    const l = await p.waitForLog((x) => x.msg === 'admin listening');
    const text = await (await fetch(`http://${String(l['admin'])}/metrics`)).text();
    const refused = text.split('\n').find((x) => x.startsWith('l5d:balancer:connection:failure{cause="refused"'));
    assert.equal(Number(refused?.split(' ').pop()), 5 * WORKERS, `tried exactly 5 times (per worker) in ${sent} connections`);
    // linkerd-tcp's route and dispatcher timings are exported too (stats: per metricsIntervalSecs).
    assert.match(text, /^l5d:route_error\{rt="r"\} 0$/m);
    assert.match(text, /^l5d:route_time_us_count\{rt="r"\} \d+$/m);
    assert.match(text, /^l5d:balancer:poll_time_us_count\{dst="\/svc\/x", rt="r"\} \d+$/m);
  });

  it('leaves no socket behind: the proxy holds as many fds after a burst as before', async () => {
    const b = await backend(echo);
    const { proxy: p, ports: [port] } = await proxy(`/svc/x => /$/inet/127.0.0.1/${b.port};`, '\n    idleTimeoutMs: 60000');
    // Every process of the proxy: the supervisor and each worker (their pids are on their log lines),
    // each warmed by a connection of its own first.
    const pids = new Set([p.proc.pid!, ...(await p.waitForCount((l) => l.msg === 'listening', WORKERS)).map((l) => Number(l['pid']))]);
    const fds = (): number => [...pids].reduce((n, pid) => n + readdirSync(`/proc/${pid}/fd`).length, 0);
    const closedBy = (): number => new Set(p.logs.filter((l) => l.msg === 'connection closed').map((l) => l['pid'])).size;
    let warm = 0;
    await deadline(10_000, 'every worker warmed', (async () => {
      for (; closedBy() < WORKERS || warm === 0; warm++) {
        await roundTrip(port!, 'warm');
        await p.waitForCount((l) => l.msg === 'connection closed', warm + 1);
      }
    })());
    const before = fds();
    await Promise.all(Array.from({ length: 200 }, (_, i) => roundTrip(port!, `burst ${i}`)));
    await p.waitForCount((l) => l.msg === 'connection closed', warm + 200);
    assert.equal(fds(), before);
  });
});
