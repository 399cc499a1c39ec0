// The native engine's byte budget for pipes and buffers: three quarters of the user's pipe
// quota, shared among the processes that serve (native/engine.h enforces it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pipeBudget } from './native-engine.ts';

describe('pipeBudget', () => {
  it('gives each process an even share of three quarters of the pipe quota', () => {
    // The kernel's default quota: 16,384 pages of 4 KiB = 64 MiB for the user.
    assert.equal(pipeBudget(1, 16384), 48 * 2 ** 20);
    assert.equal(pipeBudget(2, 16384), 24 * 2 ** 20);
    assert.equal(pipeBudget(16, 16384), 3 * 2 ** 20);
  });

  it('without a quota (0), shares 256 MiB', () => {
    assert.equal(pipeBudget(1, 0), 256 * 2 ** 20);
    assert.equal(pipeBudget(4, 0), 64 * 2 ** 20);
  });

  it('reads the quota of this machine when not given', () => {
    const b = pipeBudget(1);
    assert.ok(Number.isInteger(b) && b > 0, String(b));
  });
});
