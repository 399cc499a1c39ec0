// The dtab language against finagle's own test vectors (reference §3.1–3.3).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seeded } from '../../test/support/random.ts';
import { lookup, parseDentry, parseDtab, showDentry, showDtab, showPrefix } from './dtab.ts';
import { type NameTree, parseNameTree, showPathTree, simplify, evalTree } from './name-tree.ts';
import { parsePath, type Path, showPath } from './path.ts';

/** A compact, unambiguous rendering for comparisons: Alt(..), Union(w*..), leaves as paths. */
function r(t: NameTree<Path>): string {
  switch (t.kind) {
    case 'leaf':
      return showPath(t.value);
    case 'fail':
      return 'Fail';
    case 'neg':
      return 'Neg';
    case 'empty':
      return 'Empty';
    case 'alt':
      return `Alt(${t.trees.map(r).join(', ')})`;
    case 'union':
      return `Union(${t.branches.map((b) => `${b.weight}*${r(b.tree)}`).join(', ')})`;
  }
}

function parseError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

describe('paths', () => {
  const good: [string, Path][] = [
    ['/', []],
    ['  /foo/bar  ', ['foo', 'bar']],
    ['/\\x66\\x6f\\x6F', ['foo']],
    ['/#/io.l5d.fs/web', ['#', 'io.l5d.fs', 'web']],
    ['/$/inet/127.1/8080', ['$', 'inet', '127.1', '8080']],
  ];
  for (const [s, want] of good) it(`parses ${JSON.stringify(s)}`, () => assert.deepEqual(parsePath(s), want));
  for (const bad of ['', '/foo/bar/', '/{}', '/\\?', '/\\x?', '/\\x0?']) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.notEqual(parseError(() => parsePath(bad)), 'no error'));
  }
  it('points at the offending character', () => {
    assert.match(parseError(() => parsePath('/foo^bar')), /'\/foo\[\^\]bar'/);
    assert.match(parseError(() => parsePath('/foo/bar/')), /'\/foo\/bar\/\[\]'/);
    assert.equal(parseError(() => parseDtab('invalid-param')), "'/' expected but 'i' found at '[i]nvalid-param'");
  });
  it('shows non-showable labels as \\xHH', () => {
    assert.equal(showPath(['a b', 'ok']), '/\\x61\\x20\\x62/ok');
    assert.deepEqual(parsePath(showPath(['a b', 'ok'])), ['a b', 'ok']);
    assert.equal(showPath([]), '/');
  });
});

describe('name trees', () => {
  const good: [string, string][] = [
    ['! | ~ | $', 'Alt(Fail, Neg, Empty)'],
    ['/foo/bar', '/foo/bar'],
    ['  /foo & /bar  ', 'Union(1*/foo, 1*/bar)'],
    ['  /foo | /bar  ', 'Alt(/foo, /bar)'],
    ['/foo & /bar | /bar & /baz', 'Alt(Union(1*/foo, 1*/bar), Union(1*/bar, 1*/baz))'],
    ['1 * /foo & 2 * /bar | .5 * /bar & .5 * /baz', 'Alt(Union(1*/foo, 2*/bar), Union(0.5*/bar, 0.5*/baz))'],
    ['(/a | /b) & /c', 'Union(1*Alt(/a, /b), 1*/c)'],
  ];
  for (const [s, want] of good) it(`parses ${JSON.stringify(s)}`, () => assert.equal(r(parseNameTree(s)), want));
  for (const bad of ['', '#', '/foo &', '/foo & 0.1.2 * /bar', '/foo & . * /bar']) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.notEqual(parseError(() => parseNameTree(bad)), 'no error'));
  }
  it('shows as finagle does', () => {
    assert.equal(showPathTree(parseNameTree('0.7 * /a & 0.3 * /b')), '0.70*/a & 0.30*/b');
    assert.equal(showPathTree(parseNameTree('/bah | /beh | /$/fail')), '/bah | /beh | /$/fail');
    assert.equal(showPathTree(parseNameTree('(/a | /b) & /c')), '(/a | /b) & /c');
    assert.equal(showPathTree(parseNameTree('(/a & /b) | /c')), '/a & /b | /c');
  });
  it('round-trips show → parse for random trees with integer weights', () => {
    const rnd = seeded(11);
    const gen = (depth: number): NameTree<Path> => {
      const k = Math.floor(rnd() * (depth > 2 ? 4 : 6));
      switch (k) {
        case 0: return { kind: 'leaf', value: ['p' + Math.floor(rnd() * 9), 'q'] };
        case 1: return [{ kind: 'fail' }, { kind: 'neg' }, { kind: 'empty' }][Math.floor(rnd() * 3)] as NameTree<Path>;
        case 2: case 3: return { kind: 'leaf', value: ['x' + Math.floor(rnd() * 9)] };
        case 4: return { kind: 'alt', trees: [gen(depth + 1), gen(depth + 1)] };
        default: return { kind: 'union', branches: [{ weight: 1 + Math.floor(rnd() * 3), tree: gen(depth + 1) }, { weight: 1 + Math.floor(rnd() * 3), tree: gen(depth + 1) }] };
      }
    };
    for (let i = 0; i < 300; i++) {
      const t = gen(0);
      const shown = showPathTree(t);
      assert.equal(showPathTree(parseNameTree(shown)), shown);
    }
  });
  const evals: [string, string[] | undefined][] = [
    ['~', undefined], ['/ok', ['/ok']], ['/ok & /ok1', ['/ok', '/ok1']], ['/ok & ~ & /blah & $', ['/ok', '/blah']],
    ['$ & $ & $', []], ['~ & ~ & (~ | ~)', undefined], ['~ | /foo | /bar', ['/foo']], ['~ | $ | /blah', []],
    ['~ | (~ | $) | /blah', []], ['(~|$|/foo) & (/bar|/blah) & ~ & /FOO', ['/bar', '/FOO']],
    ['! | /ok', undefined], ['/ok & !', ['/ok']], ['! & ! & !', undefined], ['~ | /ok | !', ['/ok']],
  ];
  for (const [s, want] of evals) {
    it(`eval ${s}`, () => {
      const got = evalTree(parseNameTree(s));
      assert.deepEqual(got && [...got].map(showPath), want);
      const simple = evalTree(simplify(parseNameTree(s)));
      assert.deepEqual(simple && [...simple].map(showPath), want, 'simplify keeps the meaning');
    });
  }
});

describe('dtabs', () => {
  it('parses dentries and dtabs', () => {
    assert.equal(showDentry(parseDentry('/=>!')), '/=>!');
    assert.equal(showDentry(parseDentry('/ => !')), '/=>!');
    assert.equal(showPrefix(parseDentry('/foo/*/bar => !').prefix), '/foo/*/bar');
    assert.notEqual(parseError(() => parseDentry('/foo/*bar/baz => !')), 'no error');
    assert.notEqual(parseError(() => parseDentry('/&!')), 'no error');
    assert.equal(parseDtab('').length, 0);
    assert.equal(showDtab(parseDtab('  /=>!  ')), '/=>!');
    assert.equal(showDtab(parseDtab('/=>!;')), '/=>!');
    assert.equal(showDtab(parseDtab('/=>!;/foo=>/bar')), '/=>!;/foo=>/bar');
    assert.equal(parseDtab('/b => /c;\n /a => /b;\n').length, 2);
  });
  it('reads comments where whitespace may be', () => {
    const d = parseDtab('\n# a comment\n      /#foo => /biz  # another comment\n             | ( /bliz & # yet another comment\n                 /bluth ) # duh bluths\n             ; #finalmente\n      #/ignore=>/me;\n');
    assert.equal(d.length, 1);
    assert.equal(showPrefix(d[0]!.prefix), '/#foo');
    assert.equal(r(d[0]!.dst), 'Alt(/biz, Union(1*/bliz, 1*/bluth))');
  });
  it('looks up: last dentry first, residual appended to every leaf, wildcards, whole segments', () => {
    assert.equal(r(lookup(parseDtab('/a/*/c => /d'), parsePath('/a/b/c/e/f'))), '/d/e/f');
    assert.equal(r(lookup(parseDtab('/foo => /bar'), parsePath('/foobar'))), 'Neg');
    assert.equal(r(lookup(parseDtab('/s => /a | /b & /c'), parsePath('/s/x'))), 'Alt(/a/x, Union(1*/b/x, 1*/c/x))');
    assert.equal(r(lookup(parseDtab('/foo => /bar; /foo => /biz'), parsePath('/foo/1'))), 'Alt(/biz/1, /bar/1)');
    assert.equal(r(lookup(parseDtab('/=>!'), parsePath('/anything'))), 'Fail');
    assert.equal(r(lookup(parseDtab(''), parsePath('/x'))), 'Neg');
  });
  it('concatenation gives the appended dtab precedence', () => {
    const d = [...parseDtab('/foo => /bar'), ...parseDtab('/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090')];
    assert.equal(showDtab(d), '/foo=>/bar;/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090');
  });
});
