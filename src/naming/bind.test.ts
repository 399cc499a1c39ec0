// Binding against finagle's NamerTest vectors (reference §3.4), and flattening to weighted endpoints.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Activity, bind, type BoundName, type NamerLookup, resolve } from './bind.ts';
import { parseDtab } from './dtab.ts';
import type { NameTree } from './name-tree.ts';
import { parsePath, type Path } from './path.ts';

// number = bound to 127.0.0.1:<n>; 'none' = a leaf bound to no addresses (an emptied fs file);
// 'negaddr' = a leaf whose address set is negative (Addr.Neg); 'empty' = the tree $.
type TestState = 'pending' | 'failed' | 'neg' | 'empty' | 'none' | 'negaddr' | number;

/** A namer for `/test/N` paths whose states the test sets. */
function testNamer(states: Record<string, TestState>): NamerLookup {
  return (p: Path): Activity<NameTree<BoundName>> | null => {
    if (p[0] !== 'test') return null;
    const s = states[p[1] ?? ''] ?? 'neg';
    if (s === 'pending') return { kind: 'pending' };
    if (s === 'failed') return { kind: 'failed', reason: `test ${p[1]} failed` };
    if (s === 'neg') return { kind: 'ok', value: { kind: 'neg' } };
    if (s === 'empty') return { kind: 'ok', value: { kind: 'empty' } };
    if (s === 'none' || s === 'negaddr') {
      return { kind: 'ok', value: { kind: 'leaf', value: { id: `/test/${p[1]}`, residual: p.slice(2), addr: s === 'none' ? { kind: 'bound', endpoints: [] } : { kind: 'neg' } } } };
    }
    return { kind: 'ok', value: { kind: 'leaf', value: { id: `/test/${p[1]}`, residual: p.slice(2), addr: { kind: 'bound', endpoints: [{ host: '127.0.0.1', port: s, weight: 1 }] } } } };
  };
}

/** Binds `tree` (written as a dtab destination) and resolves it, as a short string. */
function run(tree: string, states: Record<string, TestState> = {}, dtab = ''): string {
  const d = parseDtab(`${dtab};/x => ${tree}`);
  const r = resolve(bind(d, parsePath('/x'), testNamer(states)));
  if (r === 'pending') return 'pending';
  switch (r.kind) {
    case 'neg':
      return 'neg';
    case 'failed':
      return `failed: ${r.reason}`;
    case 'bound': {
      const empty = r.emptyWeight === undefined ? '' : ` empty*${Math.round(r.emptyWeight * 100) / 100}`;
      return `{${r.endpoints.map((e) => `${e.port}${e.weight === 1 ? '' : '*' + Math.round(e.weight * 100) / 100}`).join(',')}}${empty}`;
    }
  }
}

describe('bind', () => {
  const table: [tree: string, states: Record<string, TestState>, want: string][] = [
    ['(! | /test/1 | /test/2)', { 1: 1, 2: 2 }, 'failed: the name is bound to ! (fail)'],
    ['(~ | /$/fail | /test/1)', { 1: 1 }, 'failed: the name is bound to ! (fail)'],
    ['(/$/nil | /$/fail | /test/1)', { 1: 1 }, '{}'],
    ['/test/0 | /test/1 & /test/2', { 0: 'empty', 1: 'neg', 2: 'neg' }, '{}'],
    ['/test/0 | /test/1 & /test/2', { 0: 1 }, '{1}'],
    ['/test/0 | /test/1 & /test/2', { 0: 'neg', 2: 2 }, '{2}'],
    ['/test/0 & /test/1', { 0: 'pending', 1: 'pending' }, 'pending'],
    ['/test/0 & /test/1', { 0: 1, 1: 'pending' }, '{1}'],
    ['/test/0 & /test/1', { 0: 'failed', 1: 'pending' }, 'failed: test 0 failed'],
    ['/test/0 & /test/1', { 0: 1, 1: 'neg' }, '{1}'],
    ['/test/0 & /test/1', { 0: 1, 1: 'failed' }, '{1}'],
    ['/test/0 & /test/1', { 0: 'failed', 1: 'failed' }, 'failed: test 0 failed'],
    ['/test/0 & /test/1', { 0: 'neg', 1: 'neg' }, 'neg'],
    ['/test/0 & /test/1', { 0: 'empty', 1: 'neg' }, '{}'],
    ['~', {}, 'neg'],
    ['/nowhere', {}, 'neg'],
    // Weighted unions become endpoint weights: each branch gets its share.
    ['3 * /test/1 & 1 * /test/2', { 1: 1, 2: 2 }, '{1*0.75,2*0.25}'],
    ['3 * /test/1 & 1 * /test/2', { 1: 1, 2: 'neg' }, '{1}'],
    ['/test/1 & /test/1', { 1: 1 }, '{1}'],
    // A branch bound to no endpoints keeps its share (Finagle's NameTreeFactory draws it and
    // fails with no brokers): the canary is not handed the emptied main branch's 90 % (issue 21).
    ['9 * /test/1 & 1 * /test/2', { 1: 'none', 2: 2 }, '{2*0.1} empty*0.9'],
    ['9 * /test/1 & 1 * /test/2', { 1: 'negaddr', 2: 2 }, '{2*0.1} empty*0.9'],
    ['9 * /test/1 & 1 * /test/2', { 1: 1, 2: 'none' }, '{1*0.9} empty*0.1'],
    ['1 * (1 * /test/1 & 1 * /test/2) & 2 * /test/3', { 1: 'none', 2: 2, 3: 3 }, '{2*0.17,3*0.67} empty*0.17'],
    ['/test/1 | /test/2', { 1: 'none', 2: 2 }, '{}'], // an empty leaf is not negative: no fallback
    // `$` and `/$/nil` in a union are kept too: Finagle's NameTree.simplify drops only ~ and ! from a union.
    ['9 * $ & 1 * /test/2', { 2: 2 }, '{2*0.1} empty*0.9'],
    ['9 * /$/nil & 1 * /test/2', { 2: 2 }, '{2*0.1} empty*0.9'],
    ['9 * /test/1 & 1 * /test/2', { 1: 'empty', 2: 2 }, '{2*0.1} empty*0.9'],
    // What binding drops stays dropped: ~, !, a name that does not exist, a failed or pending branch.
    ['9 * ~ & 1 * /test/2', { 2: 2 }, '{2}'],
    ['9 * ! & 1 * /test/2', { 2: 2 }, '{2}'],
    ['9 * /test/1 & 1 * /test/2', { 1: 'neg', 2: 2 }, '{2}'],
    ['9 * /test/1 & 1 * /test/2', { 1: 'failed', 2: 2 }, '{2}'],
    ['9 * /test/1 & 1 * /test/2', { 1: 'pending', 2: 2 }, '{2}'],
    // A weight of 0 is no share; a name with no endpoints at all has nothing to split.
    ['0 * /test/1 & 1 * /test/2', { 1: 'none', 2: 2 }, '{2}'],
    ['/test/1', { 1: 'none' }, '{}'],
    ['9 * /test/1 & 1 * /test/2', { 1: 'none', 2: 'none' }, '{}'],
    ['9 * /test/1 & 1 * /test/2', { 1: 'negaddr', 2: 'negaddr' }, 'neg'],
  ];
  for (const [tree, states, want] of table) {
    it(`${tree} with ${JSON.stringify(states)} → ${want}`, () => assert.equal(run(tree, states), want));
  }

  it('rewrites through several dentries and keeps the residual', () => {
    const d = parseDtab('/svc => /srv; /srv => /test');
    const a = bind(d, parsePath('/svc/7/extra'), testNamer({ 7: 7 }));
    assert.equal(a.kind, 'ok');
    const leaf = (a as { value: NameTree<BoundName> }).value;
    assert.equal(leaf.kind, 'leaf');
    assert.deepEqual(leaf.kind === 'leaf' && leaf.value.residual, ['extra']);
  });

  it('stops an infinite loop at the max depth', () => {
    const d = parseDtab('/foo/bar => /bar/foo; /bar/foo => /foo/bar');
    assert.deepEqual(bind(d, parsePath('/foo/bar'), testNamer({})), { kind: 'failed', reason: 'Max recursion level: 100 reached in Namer lookup' });
    assert.deepEqual(bind(parseDtab('/s => /s/srv'), parsePath('/s/foo/bar'), testNamer({}), 2), { kind: 'failed', reason: 'Max recursion level: 2 reached in Namer lookup' });
  });

  it('fails a dtab that branches at every level instead of doubling its work 60 times', () => {
    const d = parseDtab(Array.from({ length: 60 }, (_, i) => `/n${i} => /n${i + 1} | /n${i + 1}`).join(';'));
    const r = bind(d, parsePath('/n0'), testNamer({}));
    assert.equal(r.kind, 'failed');
    assert.match(r.kind === 'failed' ? r.reason : '', /over 100000 steps/);
    // A modest branching dtab is unaffected.
    const small = parseDtab(Array.from({ length: 8 }, (_, i) => `/n${i} => /n${i + 1} | /n${i + 1}`).join(';') + '; /n8 => /test/1');
    assert.equal(bind(small, parsePath('/n0'), testNamer({ 1: 1 })).kind, 'ok');
  });

  it('falls back through alternatives: later dentries first, then earlier ones', () => {
    const dtab = '/smitten => /test/1; /iceCreamStore => /smitten; /iceCreamStore => /humphrys;';
    assert.equal(run('/iceCreamStore', { 1: 1 }, dtab), '{1}');
    assert.equal(run('/iceCreamStore', { 1: 1 }, dtab + '/humphrys => /test/2'), '{1}'); // /test/2 is neg → falls back
    assert.equal(run('/iceCreamStore', { 1: 1, 2: 2 }, dtab + '/humphrys => /test/2'), '{2}');
  });
});
