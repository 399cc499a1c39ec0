// sameResolution (what suppresses duplicate updates), the weight bound every source applies,
// and that a dtab cannot smuggle in a weight that overflows a union's total.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bind, resolve } from './bind.ts';
import { parseDtab } from './dtab.ts';
import { parsePath } from './path.ts';
import { addrKey, badWeight, MAX_WEIGHT, type Resolution, sameResolution } from './resolution.ts';

const b = (...eps: [string, number, number][]): Resolution => ({ kind: 'bound', endpoints: eps.map(([host, port, weight]) => ({ host, port, weight })) });

describe('sameResolution', () => {
  const table: [string, Resolution, Resolution, boolean][] = [
    ['neg = neg', { kind: 'neg' }, { kind: 'neg' }, true],
    ['neg ≠ bound with none', { kind: 'neg' }, b(), false],
    ['failed, same reason', { kind: 'failed', reason: 'x' }, { kind: 'failed', reason: 'x' }, true],
    ['failed, other reason', { kind: 'failed', reason: 'x' }, { kind: 'failed', reason: 'y' }, false],
    ['bound, same', b(['::1', 1, 0.5], ['127.0.0.1', 2, 0.5]), b(['::1', 1, 0.5], ['127.0.0.1', 2, 0.5]), true],
    ['bound, weight differs', b(['::1', 1, 0.5]), b(['::1', 1, 0.25]), false],
    ['bound, port differs', b(['::1', 1, 1]), b(['::1', 2, 1]), false],
    ['bound, one more', b(['::1', 1, 1]), b(['::1', 1, 1], ['::1', 2, 1]), false],
    ['bound, empty = empty', b(), b(), true],
    ['failed ≠ neg', { kind: 'failed', reason: 'neg' }, { kind: 'neg' }, false],
  ];
  for (const [name, x, y, want] of table) {
    it(name, () => {
      assert.equal(sameResolution(x, y), want);
      assert.equal(sameResolution(y, x), want, 'symmetric');
    });
  }
});

describe('weights are bounded from every source', () => {
  it('badWeight accepts [0, MAX_WEIGHT] and names what is wrong otherwise', () => {
    for (const w of [0, 0.25, 1, 65535, MAX_WEIGHT]) assert.equal(badWeight(w), undefined, String(w));
    for (const w of [1e308, Infinity, -1, NaN, '3', null]) assert.ok(badWeight(w), String(w));
  });

  it('a dtab weight over the bound is a parse error naming it; 1e6 is fine', () => {
    assert.throws(() => parseDtab(`/svc => ${'1'.padEnd(310, '0')} * /$/inet/127.0.0.1/1 & 1 * /$/inet/127.0.0.1/2`), /a weight of at most 1000000 expected/);
    assert.throws(() => parseDtab('/svc => 1000001 * /a'), /at most 1000000/);
    assert.doesNotThrow(() => parseDtab('/svc => 1000000 * /a & .5 * /b'));
  });

  it('a union of two maximal weights still gives finite, equal shares', () => {
    const dtab = parseDtab('/svc => 1000000 * /x/1 & 1000000 * /x/2');
    const r = resolve(bind(dtab, parsePath('/svc'), (p) => ({ kind: 'ok', value: { kind: 'leaf', value: { id: `/x/${p[1]}`, residual: [], addr: { kind: 'bound', endpoints: [{ host: '127.0.0.1', port: Number(p[1]), weight: MAX_WEIGHT }, { host: '127.0.0.2', port: 1, weight: MAX_WEIGHT }] } } } })));
    assert.ok(r !== 'pending' && r.kind === 'bound');
    // 127.0.0.2:1 is in both branches, so its shares add up.
    assert.deepEqual(Object.fromEntries(r.endpoints.map((e) => [addrKey(e.host, e.port), e.weight])), { '127.0.0.1:1': 0.25, '127.0.0.2:1': 0.5, '127.0.0.1:2': 0.25 });
  });
});

describe('addrKey', () => {
  it('brackets IPv6', () => {
    assert.equal(addrKey('::1', 24001), '[::1]:24001');
    assert.equal(addrKey('127.0.0.1', 80), '127.0.0.1:80');
  });
});
