// The addon on its own, in this process: real sockets on 127.0.0.1, the engine's records
// checked against what the peers saw (bytes by hash both ways, half-close, refused and
// timed-out connects, the connect deadline, idle and lifetime timeouts, peek and header).
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { deadPort, deadline, echo, startBackend, startBlackhole, type Backend } from '../../test/support/harness.ts';
import { loadNative } from './native-binding.ts';
import { type NativeConnHandler, nativeEngine, R_DONE, R_IDLE, R_LIFETIME, R_WAIT_TIMEOUT } from './native-engine.ts';

const load = loadNative();
if (load.kind !== 'loaded' && process.platform === 'linux' && process.arch === 'x64' && process.env['LINKERD_TCP_ENGINE'] !== 'node') {
  throw new Error(`native engine did not load on Linux x64 (set LINKERD_TCP_ENGINE=node to test without it): ${load.reason}`);
}

interface Events { connected: Promise<number>; failed: Promise<number>; closed: Promise<{ reason: number; errno: number; rx: number; tx: number }>; peeked: Promise<number> }

function handler(): { h: NativeConnHandler; ev: Events } {
  const r: Partial<Record<keyof Events, (v: never) => void>> = {};
  const mk = <T>(k: keyof Events): Promise<T> => new Promise<T>((res) => (r[k] = res as (v: never) => void));
  const ev = { connected: mk<number>('connected'), failed: mk<number>('failed'), closed: mk<Events['closed'] extends Promise<infer U> ? U : never>('closed'), peeked: mk<number>('peeked') } as Events;
  const call = (k: keyof Events, v: unknown): void => (r[k] as (x: unknown) => void)(v);
  return {
    ev,
    h: {
      connected: (us) => call('connected', us),
      connectFailed: (e) => call('failed', e),
      closed: (reason, errno, rx, tx) => call('closed', { reason, errno, rx, tx }),
      peeked: (n) => call('peeked', n),
    },
  };
}

describe('native addon', { skip: load.kind !== 'loaded' ? 'addon not built' : false }, () => {
  if (load.kind !== 'loaded') return;
  const b = load.binding;
  const eng = nativeEngine(b);
  const cleanup: (() => unknown)[] = [];
  after(async () => { for (const f of cleanup.reverse()) await f(); });

  /** A listener whose accepts run `onConn(connId)`; returns its port and the accepted ids. */
  function listen(onConn: (id: number) => void, opts: { connectTimeoutMs?: number; idleMs?: number; lifetimeMs?: number } = {}): number {
    const lid = b.listen('127.0.0.1', 0, 128, false, opts.connectTimeoutMs ?? 0, opts.idleMs ?? 0, opts.lifetimeMs ?? 0);
    eng.listeners.set(lid, { accept: onConn, acceptError: () => {} });
    cleanup.push(() => { b.listenerClose(lid); eng.listeners.delete(lid); });
    return b.listenerPort(lid)!;
  }
  async function backend(h: (s: Socket) => void): Promise<Backend> {
    const be = await startBackend(h);
    cleanup.push(() => be.close());
    return be;
  }
  /** Accepted connections in order: their ids and events. */
  function acceptQueue(): { push(id: number): Events; next(): Promise<{ id: number; ev: Events }> } {
    const waiting: ((v: { id: number; ev: Events }) => void)[] = [];
    const ready: { id: number; ev: Events }[] = [];
    return {
      push(id) {
        const { h, ev } = handler();
        eng.conns.set(id, h);
        const w = waiting.shift();
        if (w) w({ id, ev });
        else ready.push({ id, ev });
        return ev;
      },
      next: () => deadline(5000, 'an accept', new Promise((res) => { const r = ready.shift(); if (r) res(r); else waiting.push(res); })),
    };
  }
  function proxyTo(port: number, header?: Uint8Array): { port: number; next(): Promise<{ id: number; ev: Events }> } {
    const q = acceptQueue();
    return { port: listen((id) => { q.push(id); assert.equal(b.connect(id, '127.0.0.1', port, 0, header), 0); }), next: q.next };
  }
  const sha = (d: Buffer): string => createHash('sha256').update(d).digest('hex');

  it('forwards bytes both ways intact and counts them exactly', async () => {
    const down = randomBytes(3 << 20);
    let got = Buffer.alloc(0);
    const be = await backend((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => { got = Buffer.concat(chunks); s.end(down); });
    });
    const p = proxyTo(be.port);
    const up = randomBytes(5 << 20);
    const c = connect(p.port, '127.0.0.1');
    const events = (await p.next()).ev;
    const back: Buffer[] = [];
    c.on('data', (d: Buffer) => back.push(d));
    c.end(up);
    await deadline(10_000, 'client end', once(c, 'end'));
    const closed = await deadline(5000, 'closed record', events.closed);
    assert.equal(sha(got), sha(up));
    assert.equal(sha(Buffer.concat(back)), sha(down));
    assert.deepEqual(closed, { reason: R_DONE, errno: 0, rx: up.length, tx: down.length });
    assert.ok((await events.connected) >= 0);
    c.destroy();
  });

  it('passes a FIN each way while the other direction keeps flowing', async () => {
    let bsock!: Socket;
    const gotEnd = Promise.withResolvers<void>();
    const be = await backend((s) => { bsock = s; s.resume(); s.on('end', () => gotEnd.resolve()); });
    const p = proxyTo(be.port);
    const c = connect(p.port, '127.0.0.1');
    const events = (await p.next()).ev;
    c.end('bye');
    await deadline(5000, 'backend sees the FIN', gotEnd.promise);
    const data: Buffer[] = [];
    c.on('data', (d: Buffer) => data.push(d));
    bsock.write('still ');
    bsock.end('flowing');
    await deadline(5000, 'client end', once(c, 'end'));
    assert.equal(Buffer.concat(data).toString(), 'still flowing');
    assert.equal((await deadline(5000, 'closed', events.closed)).reason, R_DONE);
  });

  it('reports a refused connect, then connects again when asked', async () => {
    const dead = await deadPort();
    const be = await backend(echo);
    const q = acceptQueue();
    const port = listen((id) => { q.push(id); assert.equal(b.connect(id, '127.0.0.1', dead, 0), 0); });
    const c = connect(port, '127.0.0.1');
    const { id: connId, ev: events } = await q.next();
    const err = await deadline(5000, 'connect failed', events.failed);
    assert.equal(err, 111); // ECONNREFUSED
    assert.equal(b.connect(connId, '127.0.0.1', be.port, 0), 0);
    await deadline(5000, 'connected', events.connected);
    c.end('ping');
    const [d] = await once(c, 'data');
    assert.equal(String(d), 'ping');
    assert.equal((await deadline(5000, 'closed', events.closed)).reason, R_DONE);
  });

  it('times an attempt out, and closes a connection still waiting at the connect deadline', async () => {
    const hole = await startBlackhole();
    cleanup.push(() => hole.close());
    const q = acceptQueue();
    const port = listen((id) => { q.push(id); assert.equal(b.connect(id, '127.0.0.1', hole.port, 150), 0); }, { connectTimeoutMs: 600 });
    const c = connect(port, '127.0.0.1');
    c.on('error', () => {});
    const events = (await q.next()).ev;
    assert.equal(await deadline(5000, 'attempt timeout', events.failed), 110); // ETIMEDOUT
    const closed = await deadline(5000, 'wait deadline', events.closed);
    assert.equal(closed.reason, R_WAIT_TIMEOUT);
    await deadline(5000, 'client closed', once(c, 'close'));
  });

  it('closes an idle connection, and one past its lifetime', async () => {
    const be = await backend(echo);
    for (const [opts, want] of [[{ idleMs: 150 }, R_IDLE], [{ lifetimeMs: 300 }, R_LIFETIME]] as const) {
      const q = acceptQueue();
      const port = listen((id) => { q.push(id); assert.equal(b.connect(id, '127.0.0.1', be.port, 0), 0); }, opts);
      const c = connect(port, '127.0.0.1');
      c.on('error', () => {});
      c.resume();
      const events = (await q.next()).ev;
      const ticker = setInterval(() => c.write('x'), 50); // keeps the idle timer away: only the lifetime ends it
      if ('idleMs' in opts) clearInterval(ticker);
      const closed = await deadline(5000, 'timeout', events.closed);
      clearInterval(ticker);
      assert.equal(closed.reason, want);
      await deadline(5000, 'client closed', once(c, 'close'));
    }
  });

  it('peeks without consuming, and writes a header before forwarding', async () => {
    const got: Buffer[] = [];
    const be = await backend((s) => { s.on('data', (d: Buffer) => got.push(d)); s.on('end', () => s.end()); });
    const q = acceptQueue();
    const port = listen((id) => { q.push(id); assert.equal(b.peek(id, 5), 0); });
    const c = connect(port, '127.0.0.1');
    c.end('hello world');
    const { id: connId, ev: events } = await q.next();
    assert.ok((await deadline(5000, 'peeked', events.peeked)) >= 1);
    assert.equal(String(b.peeked(connId)).length <= 5, true);
    assert.ok('hello'.startsWith(String(b.peeked(connId))));
    assert.equal(b.connect(connId, '127.0.0.1', be.port, 0, Buffer.from('HDR\n')), 0);
    const closed = await deadline(5000, 'closed', events.closed);
    assert.equal(Buffer.concat(got).toString(), 'HDR\nhello world');
    assert.equal(closed.rx, 11);
  });

  it('reports a peek once minBytes are readable (readiness, not a re-peek), then drops exactly the bytes asked', async () => {
    const got: Buffer[] = [];
    const be = await backend((s) => { s.on('data', (d: Buffer) => got.push(d)); s.on('end', () => s.end()); });
    const peeks: number[] = [];
    let id = -1, peeked: () => void = () => {}, closed: (rx: number) => void = () => {};
    const firstPeek = new Promise<void>((r) => (peeked = r)), closedRx = new Promise<number>((r) => (closed = r));
    const port = listen((connId) => {
      id = connId;
      eng.conns.set(connId, { connected: () => {}, connectFailed: () => {}, closed: (_r, _e, rx) => closed(rx), peeked: (n) => { peeks.push(n); peeked(); } });
      assert.equal(b.peek(connId, 64, 12), 0);
    });
    const c = connect(port, '127.0.0.1');
    c.setNoDelay(true);
    cleanup.push(() => c.destroy());
    await once(c, 'connect');
    c.write('HEADER'); // 6 bytes: fewer than the 12 asked for
    await new Promise((r) => setTimeout(r, 50)); // paces the client: the rest arrives apart
    c.end('-LEN|body');
    await deadline(5000, 'the peek record', firstPeek);
    assert.deepEqual(peeks, [15], 'one record, once 12 or more bytes were there');
    assert.equal(b.drop(id, 0), 22 /* EINVAL */);
    assert.equal(b.drop(id, 11), 0);
    assert.equal(b.connect(id, '127.0.0.1', be.port, 0), 0);
    assert.equal(await deadline(5000, 'closed', closedRx), 15, 'dropped bytes count as read from the client');
    assert.equal(Buffer.concat(got).toString(), 'body');
  });

  it('closing a listener accepts what the kernel queued on it first: beside a SO_REUSEPORT twin, no queued client is reset', async () => {
    const be = await backend(echo);
    const closes: Promise<unknown>[] = [];
    const route = (id: number): void => {
      const { h, ev } = handler();
      eng.conns.set(id, h);
      closes.push(ev.closed);
      assert.equal(b.connect(id, '127.0.0.1', be.port, 0), 0);
    };
    const l1 = b.listen('127.0.0.1', 0, 1024, true, 0, 0, 0);
    const port = b.listenerPort(l1)!;
    const l2 = b.listen('127.0.0.1', port, 1024, true, 0, 0, 0);
    for (const l of [l1, l2]) eng.listeners.set(l, { accept: route, acceptError: () => {} });
    cleanup.push(() => { b.listenerClose(l1); eng.listeners.delete(l1); eng.listeners.delete(l2); });
    const n = 200;
    const answers = Array.from({ length: n }, (_, i) => new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let got = '';
      s.on('connect', () => s.end(`c${i}`));
      s.on('data', (d: Buffer) => { got += d.toString(); });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('close', () => resolve(got));
    }));
    // Node connects to an IP on the next tick; on loopback the kernel finishes each handshake
    // in the connect call and queues it on one of the two listeners. The engine accepts in
    // the poll phase, which has not come yet: close one listener with its queue full.
    await new Promise<void>((r) => process.nextTick(r));
    const taken = b.listenerClose(l2);
    assert.ok(taken > 0 && taken < n, `the kernel queued some on each listener (${taken} of ${n} on the one closed)`);
    const got = await deadline(10_000, 'every client answered', Promise.all(answers));
    assert.deepEqual(got.filter((g, i) => g !== `c${i}`), [], 'none reset: each got its echo');
    await deadline(10_000, 'engine records', Promise.all(closes));
  });

  it('moves bulk through the buffered pump when the byte budget has no pipe for it, and splices once it has', async () => {
    /** 4 MiB each way through the engine under `budget` bytes; the stats it moved them with. */
    const bulk = async (budget: number): Promise<{ created: number; refused: number; pipeBytes: number }> => {
      b.setBudget(budget);
      const [, , , created0, , , , , , refused0] = b.stats();
      const down = randomBytes(4 << 20);
      let got = Buffer.alloc(0);
      const be = await backend((s) => {
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('end', () => { got = Buffer.concat(chunks); s.end(down); });
      });
      const p = proxyTo(be.port);
      const up = randomBytes(4 << 20);
      const c = connect(p.port, '127.0.0.1');
      const events = (await p.next()).ev;
      const back: Buffer[] = [];
      c.on('data', (d: Buffer) => back.push(d));
      c.end(up);
      await deadline(10_000, 'client end', once(c, 'end'));
      const closed = await deadline(5000, 'closed record', events.closed);
      assert.equal(sha(got), sha(up));
      assert.equal(sha(Buffer.concat(back)), sha(down));
      assert.deepEqual(closed, { reason: R_DONE, errno: 0, rx: up.length, tx: down.length });
      c.destroy();
      const s = b.stats();
      return { created: s[3] - created0, refused: s[9] - refused0, pipeBytes: s[6] };
    };
    const budget = b.stats()[8];
    try {
      // No room for a pipe: drain the pool (pooled pipes count against the budget), then both directions copy.
      const none = await bulk(0);
      assert.equal(none.created, 0, 'no pipe made past the budget');
      assert.equal(none.refused, 2, 'each bulk direction refused a pipe once');
      assert.equal(none.pipeBytes, 0, 'spares past the budget were closed, not pooled');
      assert.ok(b.stats()[7] > 0, 'the buffered pump\'s buffers are counted');
      const room = await bulk(budget);
      assert.equal(room.refused, 0);
      assert.ok(room.created > 0, 'with room, bulk splices through new pipes');
      assert.ok(room.pipeBytes > 0 && room.pipeBytes <= budget, `pipe bytes ${room.pipeBytes} within the budget`);
    } finally {
      b.setBudget(budget);
    }
  });

  it('a spliced direction whose pipe the budget took back goes on through the buffered pump', async () => {
    const budget = b.stats()[8];
    const got: Buffer[] = [];
    let size = 0, want = 0, reached: () => void = () => {};
    const be = await backend((s) => {
      s.on('data', (d: Buffer) => { got.push(d); size += d.length; if (size >= want) reached(); });
      s.on('end', () => s.end());
    });
    const p = proxyTo(be.port);
    const c = connect(p.port, '127.0.0.1');
    const events = (await p.next()).ev;
    const first = randomBytes(1 << 20), second = randomBytes(1 << 20);
    try {
      want = first.length;
      let arrived = new Promise<void>((r) => (reached = r));
      c.write(first);
      await deadline(10_000, 'the first MiB through (spliced)', arrived);
      const [, , , created, , , , , , refused] = b.stats();
      b.setBudget(0); // its pipe went back to the pool once empty: the pool is trimmed now
      assert.equal(b.stats()[6], 0, 'no pipe left open');
      want += second.length;
      arrived = new Promise<void>((r) => (reached = r));
      c.end(second);
      await deadline(10_000, 'the second MiB through', arrived);
      const closed = await deadline(5000, 'closed', events.closed);
      assert.equal(sha(Buffer.concat(got)), sha(Buffer.concat([first, second])));
      assert.equal(closed.rx, first.length + second.length);
      assert.equal(b.stats()[3], created, 'no new pipe');
      assert.equal(b.stats()[9], refused + 1, 'the direction refused once, then copied');
    } finally {
      b.setBudget(budget);
      c.destroy();
    }
  });

  it('leaves no connection or pipe behind', async () => {
    await new Promise((r) => setImmediate(r));
    const [live, inUse] = b.stats();
    assert.equal(live, 0);
    assert.equal(inUse, 0);
  });
});
