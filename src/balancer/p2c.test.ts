import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seeded } from '../../test/support/random.ts';
import { type Candidate, pickP2C } from './p2c.ts';

/** Picks `n` times at equal (zero) load and returns each candidate's share. */
function shares(weights: number[], n: number, seed: number): number[] {
  const cs: Candidate[] = weights.map((weight) => ({ weight, load: 0 }));
  const counts = weights.map(() => 0);
  const random = seeded(seed);
  for (let i = 0; i < n; i++) counts[pickP2C(cs, random)]!++;
  return counts.map((c) => c / n);
}

describe('pickP2C', () => {
  it('returns -1 with no candidates or only weight 0', () => {
    assert.equal(pickP2C([], Math.random), -1);
    assert.equal(pickP2C([{ weight: 0, load: 0 }], Math.random), -1);
  });

  it('returns the only eligible candidate', () => {
    assert.equal(pickP2C([{ weight: 0, load: 0 }, { weight: 1, load: 99 }], seeded(1)), 1);
  });

  it('draws two distinct candidates and keeps the first on a tie', () => {
    // random 0.1 draws index 0 first; the second draw must skip index 0.
    const draws = [0.1, 0.1];
    const rnd = () => draws.shift()!;
    assert.equal(pickP2C([{ weight: 1, load: 3 }, { weight: 1, load: 3 }, { weight: 1, load: 3 }], rnd), 0);
    // Same draws, candidate 1 less loaded: the second pick (index 1, not 0 again) wins.
    const draws2 = [0.1, 0.1];
    assert.equal(pickP2C([{ weight: 1, load: 3 }, { weight: 1, load: 1 }, { weight: 1, load: 3 }], () => draws2.shift()!), 1);
  });

  it('prefers the lower load relative to weight', () => {
    // load/weight: a = 4/2 = 2, b = 1/0.25 = 4 → a wins even though its raw load is higher.
    const cs = [{ weight: 0.25, load: 1 }, { weight: 2, load: 4 }];
    for (let i = 0; i < 50; i++) assert.equal(pickP2C(cs, seeded(i)), 1);
  });

  const table: { weights: number[]; tolerance: number }[] = [
    { weights: [0.9, 0.1], tolerance: 0.02 },
    { weights: [1, 1, 2], tolerance: 0.02 },
    { weights: [1, 0, 1], tolerance: 0.02 },
    { weights: [5, 3, 1, 1], tolerance: 0.02 },
  ];
  for (const { weights, tolerance } of table) {
    it(`at equal load splits 10k picks as weights ${weights.join('/')} (±${tolerance})`, () => {
      const total = weights.reduce((a, b) => a + b, 0);
      const got = shares(weights, 10_000, 42);
      weights.forEach((w, i) => {
        assert.ok(Math.abs(got[i]! - w / total) <= tolerance, `candidate ${i}: share ${got[i]} vs weight ${w / total}`);
      });
    });
  }

  it('never picks weight 0', () => {
    const got = shares([0, 1, 0, 3, 0], 10_000, 7);
    assert.equal(got[0], 0);
    assert.equal(got[2], 0);
    assert.equal(got[4], 0);
  });

  it('spreads concurrent connections by load in proportion to weight', () => {
    // Connections that stay open: load accumulates, and the picks follow load/weight.
    const cs = [{ weight: 1, load: 0 }, { weight: 1, load: 0 }, { weight: 2, load: 0 }];
    const random = seeded(3);
    for (let i = 0; i < 400; i++) cs[pickP2C(cs, random)]!.load++;
    assert.deepEqual(cs.map((c) => c.load).map((l) => Math.round(l / 10)), [10, 10, 20]);
  });
});
