import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { quantileOf, SampleWindow } from './window.ts';

describe('SampleWindow', () => {
  it('gives exact nearest-rank quantiles, not bucket bounds', () => {
    assert.equal(quantileOf([], 0.5), 0);
    assert.equal(quantileOf([412], 0.5), 412);
    assert.equal(quantileOf([412], 0.99), 412);
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(quantileOf(xs, 0.5), 50);
    assert.equal(quantileOf(xs, 0.99), 99);
  });

  it('forgets samples older than the window, and keeps at most `capacity`', () => {
    let now = 0;
    const w = new SampleWindow({ windowMs: 1000, capacity: 3, now: () => now });
    w.record(1);
    now = 500;
    w.record(2);
    assert.deepEqual(w.recent(), [1, 2]);
    now = 1200; // the first is out of the window
    assert.deepEqual(w.recent(), [2]);
    w.record(3);
    w.record(4);
    w.record(5); // over capacity: 2 goes
    assert.deepEqual(w.recent(), [3, 4, 5]);
  });
});
