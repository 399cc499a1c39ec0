import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SessionCache } from './session-cache.ts';

it('session cache: finds a session by id, forgets it after ttlMs, and keeps at most `max` (least recent out)', () => {
  let now = 0;
  const c = new SessionCache({ max: 2, ttlMs: 1000, now: () => now });
  const id = (n: number): Buffer => Buffer.from([n]);
  const got = (n: number): string | undefined => { let v: string | undefined; c.get(id(n), (d) => (v = d?.toString())); return v; };
  c.set(id(1), Buffer.from('one'));
  c.set(id(2), Buffer.from('two'));
  assert.equal(got(1), 'one');
  c.set(id(3), Buffer.from('three')); // over max: 1 (set first) goes
  assert.equal(got(1), undefined);
  assert.equal(got(2), 'two');
  now = 1001;
  assert.equal(got(3), undefined); // expired
  assert.equal(c.size, 1);
});
