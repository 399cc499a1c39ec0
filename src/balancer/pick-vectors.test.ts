// One policy, two executions: the pick in TypeScript (classes.ts pickFrom, what Balancer.choose
// runs) and in C (native/pick.c, for the engine's threads) against one seeded vector table,
// test/fixtures/pick-vectors.json: endpoints (weights, loads), an excluded one, the empty
// share, a seed, and the choices a stream of draws makes. A change to either execution that
// moves one choice fails here; a deliberate change to the policy rewrites the table
// (PICK_VECTORS_WRITE=1 node --test src/balancer/pick-vectors.test.ts) and shows in its diff.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { seeded } from '../../test/support/random.ts';
import { loadNative } from '../engine/native-binding.ts';
import { pickFrom, weightClasses } from './classes.ts';

interface Vector {
  readonly weights: number[];
  readonly loads: number[];
  /** An index left out (the endpoint that just failed a retry), or -1. */
  readonly exclude: number;
  readonly empty: number;
  readonly seed: number;
  /** The index chosen by each draw in turn (one random stream), -1 for none. */
  readonly picks: number[];
}

const FILE = new URL('../../test/fixtures/pick-vectors.json', import.meta.url);
const DRAWS = 12;

/** `draws` choices by the TypeScript pick over the vector's endpoints. */
function tsPicks(v: Omit<Vector, 'picks'>, draws: number): number[] {
  const random = seeded(v.seed);
  const eps = v.weights.map((weight, i) => ({ weight, load: v.loads[i]!, i })).filter((e) => e.i !== v.exclude);
  const classes = weightClasses(eps);
  return Array.from({ length: draws }, () => pickFrom(classes, random, v.empty)?.i ?? -1);
}

/** The table's cases: edge cases first, then seeded random ones (weights as dtabs make them). */
function cases(): Omit<Vector, 'picks'>[] {
  const out: Omit<Vector, 'picks'>[] = [
    { weights: [], loads: [], exclude: -1, empty: 0, seed: 1 },
    { weights: [0, 0], loads: [0, 0], exclude: -1, empty: 0, seed: 2 },
    { weights: [1], loads: [3], exclude: -1, empty: 0, seed: 3 },
    { weights: [1], loads: [0], exclude: 0, empty: 0, seed: 4 },
    { weights: [0.5, 0.5], loads: [0, 0], exclude: -1, empty: 0.5, seed: 5 },
    { weights: [0.25, 0.25, 0.5], loads: [4, 0, 1], exclude: 1, empty: 0, seed: 6 },
    // 0.1 + 0.2 and 0.3 differ in the last bit: one class (SAME), not two.
    { weights: [0.1 + 0.2, 0.3, 0.3 * (1 + 1e-12), 0.4], loads: [1, 2, 0, 5], exclude: -1, empty: 0, seed: 7 },
  ];
  const r = seeded(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const WEIGHTS = [0, 0.1, 0.2, 0.2, 0.25, 1 / 3, 0.5, 1, 1, 2, 0.7 / 3];
  for (let k = 0; k < 200; k++) {
    const n = 1 + Math.floor(r() * 8);
    const weights = Array.from({ length: n }, () => pick(WEIGHTS));
    const total = weights.reduce((a, b) => a + b, 0);
    // Half normalised to sum 1, as Balancer.update does with dtab weights.
    const ws = r() < 0.5 && total > 0 ? weights.map((w) => w / total) : weights;
    out.push({
      weights: ws,
      loads: Array.from({ length: n }, () => Math.floor(r() * 7)),
      exclude: r() < 0.25 ? Math.floor(r() * n) : -1,
      empty: r() < 0.2 ? pick([0.1, 0.3, 0.5]) : 0,
      seed: Math.floor(r() * 2 ** 32),
    });
  }
  return out;
}

describe('the pick, one vector table for TypeScript and C', () => {
  if (process.env['PICK_VECTORS_WRITE'] === '1') {
    const table = cases().map((c) => ({ ...c, picks: tsPicks(c, DRAWS) }));
    writeFileSync(FILE, JSON.stringify(table, null, 0).replace(/\},\{/g, '},\n{') + '\n');
  }
  const table = JSON.parse(readFileSync(FILE, 'utf8')) as Vector[];

  it('the table covers what the pick decides', () => {
    assert.ok(table.length >= 200);
    const all = table.flatMap((v) => v.picks);
    assert.ok(all.includes(-1), 'some draws land on nothing (the empty share, or no weight)');
    assert.ok(table.some((v) => v.exclude >= 0 && v.picks.every((p) => p !== v.exclude)), 'retries leave the excluded one out');
    assert.ok(table.some((v) => new Set(v.picks).size > 1), 'draws differ within a stream');
    assert.deepEqual(table.map(({ picks: _, ...c }) => c), cases(), 'the table is made from these cases');
  });

  it('TypeScript (classes.ts pickFrom) makes every choice in the table', () => {
    for (const [i, v] of table.entries()) assert.deepEqual(tsPicks(v, v.picks.length), v.picks, `case ${i}: ${JSON.stringify(v)}`);
  });

  const load = loadNative();
  it('C (native/pick.c) makes every choice in the table', { skip: load.kind !== 'loaded' ? 'the native engine is not built here' : false }, () => {
    if (load.kind !== 'loaded') return;
    for (const [i, v] of table.entries()) {
      const got = load.binding.pick(new Float64Array(v.weights), new Float64Array(v.loads), v.exclude, v.empty, v.seed, v.picks.length);
      assert.deepEqual([...got], v.picks, `case ${i}: ${JSON.stringify(v)}`);
    }
  });

  it('C draws the same random stream as test/support/random.ts', { skip: load.kind !== 'loaded' ? 'the native engine is not built here' : false }, () => {
    if (load.kind !== 'loaded') return;
    // One class (equal weights), no load: P2C keeps its first draw, floor(random() * n), and
    // spends a second random on the other candidate; so pick k is floor(random_2k * n).
    const n = 1000, random = seeded(0xdeadbeef);
    const want = Array.from({ length: 64 }, () => { const r = random(); random(); return Math.floor(r * n); });
    const got = load.binding.pick(new Float64Array(n).fill(1), new Float64Array(n), -1, 0, 0xdeadbeef, 64);
    assert.deepEqual([...got], want);
  });
});
