import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seeded } from '../../test/support/random.ts';
import { Balancer } from './balancer.ts';
import type { Outcome } from './lease.ts';
import { WaitQueue } from './wait-queue.ts';

function balancer(events: string[] = []): Balancer {
  const b = new Balancer({
    random: seeded(1), now: () => 0, failFast: { maxConsecutiveFailures: 2, failurePenaltySecs: 10 },
    events: {
      connected: (ep, us) => events.push(`connected ${ep.port} ${us}`),
      failed: (ep, cause) => events.push(`failed ${ep.port} ${cause}`),
      closed: (ep, ms) => events.push(`closed ${ep.port} ${ms}`),
    },
  });
  b.update({ kind: 'bound', endpoints: [{ host: '127.0.0.1', port: 1, weight: 1 }] });
  return b;
}

describe('Lease', () => {
  const table: { name: string; connect: boolean; outcome: Outcome; events: string[]; failures: number }[] = [
    { name: 'pending, failed: counts against the endpoint', connect: false, outcome: { kind: 'failed', cause: 'refused' }, events: ['failed 1 refused'], failures: 1 },
    { name: 'pending, cancelled: not the endpoint\'s fault', connect: false, outcome: { kind: 'cancelled' }, events: [], failures: 0 },
    { name: 'pending, closed: as cancelled', connect: false, outcome: { kind: 'closed' }, events: [], failures: 0 },
    { name: 'open, closed: the duration is reported', connect: true, outcome: { kind: 'closed', durationMs: 7 }, events: ['connected 1 50', 'closed 1 7'], failures: 0 },
    { name: 'open, failed: a close, not a connect failure', connect: true, outcome: { kind: 'failed', cause: 'other' }, events: ['connected 1 50', 'closed 1 undefined'], failures: 0 },
  ];
  for (const c of table) {
    it(`${c.name}; release is idempotent and load returns to zero`, () => {
      const events: string[] = [];
      const b = balancer(events);
      const lease = b.acquire()!;
      assert.equal(b.total('pending'), 1);
      assert.equal(b.clientsConnecting, 1);
      if (c.connect) assert.equal(lease.connected(50), true);
      assert.equal(lease.release(c.outcome), true);
      assert.equal(lease.release({ kind: 'failed', cause: 'timeout' }), false, 'second release is a no-op');
      assert.equal(lease.connected(1), false, 'no connect after release');
      assert.deepEqual(events, c.events);
      assert.equal(lease.endpoint.failures, c.failures);
      assert.equal(b.total('pending') + b.total('open'), 0);
      assert.equal(b.clientsConnecting, 0);
    });
  }

  it('spare leases do not count as clients connecting', () => {
    const b = balancer();
    const l = b.acquire({ spare: true })!;
    assert.equal(b.clientsConnecting, 0);
    l.connected(1);
    l.release({ kind: 'closed' });
    assert.equal(b.total('open'), 0);
  });

  it('ejection is on by default: 5 consecutive failures, 60 s (linkerd-tcp)', () => {
    let now = 0;
    const b = new Balancer({ random: seeded(1), now: () => now });
    b.update({ kind: 'bound', endpoints: [{ host: '127.0.0.1', port: 1, weight: 1 }, { host: '127.0.0.1', port: 2, weight: 1 }] });
    const one = b.endpoints.get('127.0.0.1:1')!;
    const state = (): string => one.state.kind;
    for (let i = 0; i < 4; i++) b.lease(one).release({ kind: 'failed', cause: 'refused' });
    assert.equal(state(), 'available');
    b.lease(one).release({ kind: 'failed', cause: 'refused' });
    assert.equal(state(), 'failed');
    now = 59_999;
    b.choose();
    assert.equal(state(), 'failed');
    now = 60_000;
    b.choose();
    assert.equal(state(), 'available');
  });
});

describe('WaitQueue', () => {
  it('drains in arrival order, skips cancelled slots, and cancel is idempotent', () => {
    const q = new WaitQueue<string>();
    const a = q.add('a', 1);
    const b = q.add('b', 2);
    q.add('c', 3);
    b.cancel();
    b.cancel();
    assert.equal(q.size, 2);
    assert.equal(q.oldest, 1);
    assert.deepEqual(q.drain(), ['a', 'c']);
    assert.equal(a.queued, false);
    a.cancel();
    assert.equal(q.size, 0);
    assert.equal(q.oldest, undefined);
  });

  it('expires the slots queued at or before a time, oldest first', () => {
    const q = new WaitQueue<number>();
    for (const t of [1, 2, 3, 4]) q.add(t, t);
    assert.deepEqual(q.expire(2), [1, 2]);
    assert.equal(q.oldest, 3);
    assert.deepEqual(q.drain(), [3, 4]);
  });
});
