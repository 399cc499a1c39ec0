// The active health check's flag beside the passive fail-fast state (issue 16): an endpoint
// takes new connections only when both say so. A passing check ends a fail-fast ejection
// (issue 21, as Envoy's and HAProxy's do); the penalty ending never overrides the check.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seeded } from '../../test/support/random.ts';
import { Balancer } from './balancer.ts';

const addr = (port: number) => ({ host: '127.0.0.1', port, weight: 1 });

function setup() {
  let now = 0;
  const revived: string[] = [];
  const b = new Balancer({
    random: seeded(3), now: () => now, failFast: { maxConsecutiveFailures: 2, failurePenaltySecs: 10 },
    events: { revived: (e, by) => revived.push(`${e.port}${by ? ` by ${by}` : ''}`) },
  });
  b.update({ kind: 'bound', endpoints: [addr(1), addr(2), addr(3)] });
  const ep = (port: number) => b.endpoints.get(`127.0.0.1:${port}`)!;
  const picks = (n = 60): Set<number> => {
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const l = b.acquire();
      if (!l) break;
      seen.add(l.endpoint.port);
      l.release({ kind: 'cancelled' });
    }
    return seen;
  };
  const failTwice = (port: number) => {
    for (let i = 0; i < 2; i++) b.lease(ep(port)).release({ kind: 'failed', cause: 'refused' });
  };
  return { b, ep, picks, failTwice, revived, advance: (ms: number) => (now += ms) };
}

describe('balancer: health flag beside fail-fast', () => {
  it('an unhealthy endpoint gets no new connections; healthy again, it does', () => {
    const { b, ep, picks } = setup();
    b.setHealthy(ep(1), false);
    assert.deepEqual([...picks()].sort(), [2, 3]);
    b.setHealthy(ep(1), true);
    assert.deepEqual([...picks()].sort(), [1, 2, 3]);
  });

  it('no verdict yet (undefined) is in rotation', () => {
    const { ep, picks } = setup();
    assert.equal(ep(1).healthy, undefined);
    assert.ok(picks().has(1));
  });

  it('a passing check ends a fail-fast ejection at once, failure count cleared (Envoy, HAProxy)', () => {
    const { b, ep, picks, failTwice, revived } = setup();
    failTwice(1);
    assert.equal(ep(1).state.kind, 'failed');
    b.setHealthy(ep(1), true); // a verdict alone is not a pass
    assert.equal(picks().has(1), false);
    b.checkPassed(ep(1));
    assert.equal(ep(1).state.kind, 'available');
    assert.equal(ep(1).consecutiveFailures, 0);
    assert.deepEqual(revived, ['1 by health check']);
    assert.ok(picks().has(1));
    // One new failure does not eject again: the count started over.
    b.lease(ep(1)).release({ kind: 'failed', cause: 'refused' });
    assert.equal(ep(1).state.kind, 'available');
  });

  it('a pass while the check still calls it unhealthy (fewer than healthyThreshold) ends nothing', () => {
    const { b, ep, picks, failTwice, revived } = setup();
    failTwice(1);
    b.setHealthy(ep(1), false);
    b.checkPassed(ep(1));
    assert.equal(ep(1).state.kind, 'failed');
    assert.deepEqual(revived, []);
    b.setHealthy(ep(1), true);
    b.checkPassed(ep(1)); // the healthyThreshold-th pass: healthy, and the ejection ends with it
    assert.equal(ep(1).state.kind, 'available');
    assert.ok(picks().has(1));
  });

  it('a pass on an endpoint that is not ejected changes nothing', () => {
    const { b, ep, revived } = setup();
    b.lease(ep(1)).release({ kind: 'failed', cause: 'refused' });
    b.checkPassed(ep(1));
    assert.equal(ep(1).consecutiveFailures, 1, 'only an ejection is ended; connect failures still count');
    assert.deepEqual(revived, []);
  });

  it('the fail-fast penalty ending does not return an endpoint its check calls unhealthy', () => {
    const { b, ep, picks, failTwice, advance } = setup();
    failTwice(1);
    b.setHealthy(ep(1), false);
    advance(10_000);
    assert.equal(picks().has(1), false);
    assert.equal(ep(1).state.kind, 'available', 'the passive state recovered on its own');
    b.setHealthy(ep(1), true);
    assert.ok(picks().has(1));
  });

  it('reviving all when every endpoint is ejected leaves unhealthy ones out', () => {
    const { b, ep, picks, failTwice } = setup();
    b.setHealthy(ep(3), false);
    failTwice(1);
    failTwice(2); // the last available one ejected: linkerd-tcp returns all fail-fast ejections
    assert.deepEqual([...picks()].sort(), [1, 2]);
  });

  it('every endpoint unhealthy: no endpoint (the check is trusted over a guess)', () => {
    const { b, ep } = setup();
    for (const p of [1, 2, 3]) b.setHealthy(ep(p), false);
    assert.equal(b.acquire(), undefined);
  });
});
