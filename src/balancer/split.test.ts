// The balancer's one test table for traffic shares: a weighted union (9 * A & 1 * B) under
// every client load pattern of issue 13, plus least-loaded among equals. The native engine
// calls the same Balancer, so this table is the policy's single source of truth.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seeded } from '../../test/support/random.ts';
import { Balancer } from './balancer.ts';
import type { Lease } from './lease.ts';

const A = { host: '127.0.0.1', port: 1 };
const B = { host: '127.0.0.1', port: 2 };

function canary(seed: number): Balancer {
  const b = new Balancer({ random: seeded(seed), now: () => 0 });
  b.update({ kind: 'bound', endpoints: [{ ...A, weight: 9 }, { ...B, weight: 1 }] });
  return b;
}

/** Opens one connection (acquire + connected) and returns its lease. */
function open(b: Balancer): Lease {
  const l = b.acquire()!;
  l.connected(100);
  return l;
}

/** Holds `n` open connections on A, outside the counted traffic. */
function holdOnA(b: Balancer, n: number): void {
  const a = b.endpoints.get('127.0.0.1:1')!;
  for (let i = 0; i < n; i++) b.lease(a).connected(100);
}

interface Pattern {
  readonly name: string;
  readonly n: number;
  /** Runs the pattern; returns the ports of the endpoints that got each counted connection. */
  run(b: Balancer): number[];
}

const sequential = (n: number, held: number): Pattern['run'] => (b) => {
  holdOnA(b, held);
  const got: number[] = [];
  for (let i = 0; i < n; i++) {
    const l = open(b);
    got.push(l.endpoint.port);
    l.release({ kind: 'closed' });
  }
  return got;
};

const patterns: Pattern[] = [
  { name: '1000 sequential, each closed before the next', n: 1000, run: sequential(1000, 0) },
  {
    name: '1000 sequential, reconnecting before the previous close',
    n: 1000,
    run: (b) => {
      const got: number[] = [];
      let prev: Lease | undefined;
      for (let i = 0; i < 1000; i++) {
        const l = open(b);
        got.push(l.endpoint.port);
        prev?.release({ kind: 'closed' });
        prev = l;
      }
      return got;
    },
  },
  { name: 'one long-lived connection held on A, then 300 sequential', n: 300, run: sequential(300, 1) },
  { name: 'five held on A, then 500 sequential', n: 500, run: sequential(500, 5) },
];

/** B's expected share and the tolerance every pattern must meet. */
const B_SHARE = 0.1;
const TOLERANCE = 0.03;

describe('weighted split (9 * A & 1 * B) under every load pattern', () => {
  for (const p of patterns) {
    for (const seed of [1, 2, 3]) {
      it(`${p.name}: B gets ${B_SHARE * 100} % ± ${TOLERANCE * 100} % (seed ${seed})`, () => {
        const got = p.run(canary(seed));
        assert.equal(got.length, p.n);
        const share = got.filter((port) => port === B.port).length / p.n;
        assert.ok(Math.abs(share - B_SHARE) <= TOLERANCE, `B share ${share}`);
      });
    }
  }

  it('a held connection is still counted: load returns to zero once every lease is released', () => {
    const b = canary(9);
    const leases = [open(b), open(b), open(b)];
    assert.equal(b.total('open'), 3);
    for (const l of leases) l.release({ kind: 'closed' });
    assert.equal(b.total('open'), 0);
    assert.equal(b.total('pending'), 0);
  });
});

describe('least-loaded among equals', () => {
  it('equal weights: a loaded endpoint gets nothing while the others are idle', () => {
    const b = new Balancer({ random: seeded(4), now: () => 0 });
    b.update({ kind: 'bound', endpoints: [1, 2, 3].map((port) => ({ host: '127.0.0.1', port, weight: 1 })) });
    const one = b.endpoints.get('127.0.0.1:1')!;
    for (let i = 0; i < 5; i++) b.lease(one).connected(1);
    const counts = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const l = open(b);
      counts.set(l.endpoint.port, (counts.get(l.endpoint.port) ?? 0) + 1);
      l.release({ kind: 'closed' });
    }
    assert.equal(counts.get(1), undefined);
    assert.ok(Math.abs(counts.get(2)! / 300 - 0.5) <= 0.08, `2 got ${counts.get(2)}`);
  });

  it('inside a weight class the least loaded wins; the class share is kept', () => {
    // 2 * A, 1 * B, 1 * C → classes {A: 0.5} and {B, C: 0.25 each, 0.5 together}.
    const b = new Balancer({ random: seeded(5), now: () => 0 });
    b.update({ kind: 'bound', endpoints: [{ ...A, weight: 2 }, { ...B, weight: 1 }, { host: '127.0.0.1', port: 3, weight: 1 }] });
    for (let i = 0; i < 3; i++) b.lease(b.endpoints.get('127.0.0.1:2')!).connected(1);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 1000; i++) {
      const l = open(b);
      counts[l.endpoint.port]!++;
      l.release({ kind: 'closed' });
    }
    assert.equal(counts[2], 0, 'B is loaded: C takes the class');
    assert.ok(Math.abs(counts[1]! / 1000 - 0.5) <= 0.04, `A ${counts[1]}`);
    assert.ok(Math.abs(counts[3]! / 1000 - 0.5) <= 0.04, `C ${counts[3]}`);
  });

  it('concurrent connections that stay open spread by load inside a class', () => {
    const b = new Balancer({ random: seeded(6), now: () => 0 });
    b.update({ kind: 'bound', endpoints: [1, 2, 3, 4].map((port) => ({ host: '127.0.0.1', port, weight: 1 })) });
    for (let i = 0; i < 400; i++) open(b);
    for (const ep of b.endpoints.values()) assert.ok(Math.abs(ep.open - 100) <= 3, `${ep.key}: ${ep.open}`);
  });
});

describe('an empty union branch keeps its share (issue 21)', () => {
  // `9 * /web & 1 * /web-canary` with web bound to no endpoints: the flattened resolution is
  // the canary at 0.1 and an empty weight of 0.9 (bind.ts). Finagle's NameTreeFactory draws
  // the empty branch 90 % of the time and fails it; the canary keeps its 10 %.
  const emptied = (seed: number): Balancer => {
    const b = new Balancer({ random: seeded(seed), now: () => 0 });
    b.update({ kind: 'bound', endpoints: [{ ...B, weight: 0.1 }], emptyWeight: 0.9 });
    return b;
  };

  for (const seed of [1, 2, 3]) {
    it(`1000 first attempts: about 90 % get no endpoint, the canary about 10 % (seed ${seed})`, () => {
      const b = emptied(seed);
      let canary = 0;
      for (let i = 0; i < 1000; i++) {
        const l = b.acquire();
        if (!l) continue;
        assert.equal(l.endpoint.port, B.port);
        canary++;
        l.release({ kind: 'cancelled' });
      }
      // Binomial(1000, 0.1): σ ≈ 9.5; ± 50 is over 5σ.
      assert.ok(Math.abs(canary - 100) <= 50, `canary got ${canary} of 1000`);
    });
  }

  it('the endpoint weights shown are the real shares: the canary is 10 %, not 100 %', () => {
    const b = emptied(1);
    assert.equal(b.emptyShare, 0.9);
    assert.equal(b.endpoints.get(`127.0.0.1:${B.port}`)!.weight, 0.1);
  });

  it('a retry after a failed attempt and a spare stay among endpoints', () => {
    const b = new Balancer({ random: seeded(7), now: () => 0 });
    b.update({ kind: 'bound', endpoints: [{ ...A, weight: 0.05 }, { ...B, weight: 0.05 }], emptyWeight: 0.9 });
    const a = b.endpoints.get('127.0.0.1:1')!;
    for (let i = 0; i < 200; i++) {
      const retry = b.acquire({ exclude: a });
      assert.equal(retry?.endpoint.port, B.port, 'a retry lands on the other endpoint, never on the empty share');
      retry!.release({ kind: 'cancelled' });
      const spare = b.acquire({ spare: true });
      assert.ok(spare, 'a spare always gets an endpoint');
      spare.release({ kind: 'cancelled' });
    }
  });

  it('the empty share goes once the branch has endpoints again', () => {
    const b = emptied(4);
    b.update({ kind: 'bound', endpoints: [{ ...A, weight: 0.9 }, { ...B, weight: 0.1 }] });
    assert.equal(b.emptyShare, 0);
    for (let i = 0; i < 100; i++) {
      const l = b.acquire();
      assert.ok(l, 'every attempt gets an endpoint');
      l.release({ kind: 'cancelled' });
    }
  });
});
