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
