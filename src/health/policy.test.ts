import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seeded } from '../../test/support/random.ts';
import { firstDelayMs, JITTER, newHealthState, nextDelayMs, recordCheck } from './policy.ts';

const t = { intervalMs: 1000, timeoutMs: 200, unhealthyThreshold: 3, healthyThreshold: 2 };

/** Feeds a string of results ('+' pass, '-' fail) and returns the verdict after each ('.' no change). */
function run(results: string): string {
  const s = newHealthState();
  return [...results].map((r) => {
    const v = recordCheck(s, r === '+', t);
    return v === undefined ? '.' : v ? 'H' : 'U';
  }).join('');
}

describe('health policy', () => {
  const table: [results: string, verdicts: string][] = [
    ['+', 'H'], // the first pass gives a verdict at once
    ['--', '..'], // under the unhealthy threshold: no verdict, still in rotation
    ['---', '..U'],
    ['+---', 'H..U'],
    ['+--+--', 'H.....'], // a pass resets the failure count
    ['---+', '..U.'], // one pass is not enough to come back
    ['---++', '..U.H'],
    ['---+-++', '..U...H'], // a failure resets the pass count
    ['+-+-+-+-+-', 'H.........'], // flapping every check never leaves rotation
    ['---++---++', '..U.H..U.H'],
  ];
  for (const [results, verdicts] of table) {
    it(`${results} → ${verdicts}`, () => assert.equal(run(results), verdicts));
  }

  it('spreads first checks over one interval and never waits longer than one interval start to start', () => {
    const random = seeded(5);
    const firsts = Array.from({ length: 1000 }, () => firstDelayMs(t, random));
    assert.ok(Math.min(...firsts) >= 0 && Math.max(...firsts) < t.intervalMs);
    assert.ok(Math.max(...firsts) - Math.min(...firsts) > 0.9 * t.intervalMs, 'spread over the interval');
    const nexts = Array.from({ length: 1000 }, () => nextDelayMs(t, random, 50));
    assert.ok(Math.max(...nexts) <= t.intervalMs - 50, 'start to start at most intervalMs');
    assert.ok(Math.min(...nexts) >= t.intervalMs * (1 - JITTER) - 50 - 1);
    assert.equal(nextDelayMs(t, random, 5000), 0, 'a check that overran starts the next at once');
  });
});
