import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Balancer } from './balancer.ts';
import { seeded } from '../../test/support/random.ts';

const addr = (port: number, weight = 1) => ({ host: '127.0.0.1', port, weight });

function balancer(now = () => 0) {
  return new Balancer({ random: seeded(1), now, failFast: { maxConsecutiveFailures: 2, failurePenaltySecs: 10 } });
}

describe('Balancer', () => {
  it('is unresolved until a bound or neg resolution, and failed keeps the set', () => {
    const b = balancer();
    b.update({ kind: 'failed', reason: 'namerd down' });
    assert.equal(b.resolved, false);
    b.update({ kind: 'bound', endpoints: [addr(1), addr(2)] });
    assert.equal(b.resolved, true);
    b.update({ kind: 'failed', reason: 'namerd down' });
    assert.deepEqual([...b.endpoints.keys()], ['127.0.0.1:1', '127.0.0.1:2']);
    b.update({ kind: 'neg' });
    assert.equal(b.endpoints.size, 0);
    assert.equal(b.acquire(), undefined);
  });

  it('normalises weights to sum 1', () => {
    const b = balancer();
    b.update({ kind: 'bound', endpoints: [addr(1, 3), addr(2, 1)] });
    assert.deepEqual([...b.endpoints.values()].map((e) => e.weight), [0.75, 0.25]);
  });

  it('retires a removed endpoint with connections, drops it when idle, and revives it if re-added', () => {
    const b = balancer();
    b.update({ kind: 'bound', endpoints: [addr(1)] });
    const lease = b.acquire()!;
    const ep = lease.endpoint;
    lease.connected(100);
    b.update({ kind: 'bound', endpoints: [addr(2)] });
    assert.equal(ep.state.kind, 'retired');
    assert.equal(b.count('retired'), 1);
    assert.equal(b.choose()!.port, 2, 'new connections follow the new set');
    b.update({ kind: 'bound', endpoints: [addr(1), addr(2)] });
    assert.equal(ep.state.kind, 'available');
    assert.equal(ep.open, 1, 'it keeps its state');
    b.update({ kind: 'bound', endpoints: [addr(2)] });
    lease.release({ kind: 'closed' });
    assert.equal(b.endpoints.has('127.0.0.1:1'), false);
  });

  it('ejects after consecutive failures, revives after the penalty, and revives all when none is left', () => {
    let now = 0;
    const ejected: string[] = [];
    const b = new Balancer({
      random: seeded(1), now: () => now, failFast: { maxConsecutiveFailures: 2, failurePenaltySecs: 10 },
      events: { ejected: (e) => ejected.push(e.key) },
    });
    b.update({ kind: 'bound', endpoints: [addr(1), addr(2, 0.000001)] });
    const one = b.endpoints.get('127.0.0.1:1')!;
    for (let i = 0; i < 2; i++) b.lease(one).release({ kind: 'failed', cause: 'refused' });
    assert.deepEqual(ejected, ['127.0.0.1:1']);
    assert.equal(one.state.kind, 'failed');
    assert.equal(b.choose()!.port, 2);
    now = 10_000;
    b.choose();
    assert.equal(one.state.kind, 'available');
    // Both eject → all revived.
    const two = b.endpoints.get('127.0.0.1:2')!;
    for (const ep of [one, two]) for (let i = 0; i < 2; i++) b.lease(ep).release({ kind: 'failed', cause: 'timeout' });
    assert.equal(b.count('failed'), 0);
    assert.equal(b.count('available'), 2);
  });
});
