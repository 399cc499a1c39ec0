// The LRU of SNI destinations: recency order, eviction at capacity, busy names passed over.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SniLru } from './sni-lru.ts';

it('evicts the least recently used name at capacity; a touch makes a name recent', () => {
  const l = new SniLru(2);
  assert.deepEqual(l.touch('a'), []);
  assert.deepEqual(l.touch('b'), []);
  assert.deepEqual(l.touch('a'), []);
  assert.deepEqual(l.touch('c'), ['b']);
  assert.deepEqual(l.touch('d'), ['a']);
  assert.equal(l.size, 2);
  assert.ok(l.has('c') && l.has('d'));
});

it('passes over busy names (connections waiting on them) and may exceed its capacity until they are idle', () => {
  const l = new SniLru(2);
  l.touch('a');
  l.touch('b');
  const busy = new Set(['a']);
  assert.deepEqual(l.touch('c', (n) => busy.has(n)), ['b']);
  assert.deepEqual(l.touch('d', (n) => busy.has(n) || n === 'c'), []);
  assert.equal(l.size, 3);
  busy.clear();
  assert.deepEqual(l.touch('e'), ['a', 'c']);
  assert.equal(l.size, 2);
});
