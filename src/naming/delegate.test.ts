// Delegation against linkerd's and namerd's own vectors (reference §3.7: DelegatorTest,
// DelegateApiHandlerTest, HttpControlServiceTest, HttpNamerEndToEndTest), in the JSON shape
// linkerd answers (JsonDelegateTree), plus the bounds and the pending flag.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Activity, BoundName, NamerLookup } from './bind.ts';
import { delegate, PENDING_MESSAGE } from './delegate.ts';
import { delegateJson } from './delegate-json.ts';
import { parseDtab } from './dtab.ts';
import type { NameTree } from './name-tree.ts';
import { parsePath, type Path } from './path.ts';

const leaf = (id: string, residual: Path, port: number, weight = 1): Activity<NameTree<BoundName>> => ({
  kind: 'ok', value: { kind: 'leaf', value: { id, residual, addr: { kind: 'bound', endpoints: [{ host: '127.0.0.1', port, weight }] } } },
});

/**
 * The vectors' namers: `/#/namer/...` binds (id /#/namer), `/#/error/...` fails as the tests'
 * ErrorNamer does, `/io.l5d.w00t` knows only `woop`, `/$/inet/127.1/<port>` is loopback,
 * `/#/fs/<n>` binds to port n (weight `w` when the name is `<n>w<w>`), `/#/slow` is pending.
 */
const namers: NamerLookup = (p) => {
  const [a, b, c, d] = p;
  if (a === '#' && b === 'namer') return leaf('/#/namer', p.slice(2), 1);
  if (a === '#' && b === 'error') return { kind: 'failed', reason: `error naming /${p.join('/')}` };
  if (a === '#' && b === 'slow') return { kind: 'pending' };
  if (a === '#' && b === 'fs' && c) {
    const [port, weight] = c.split('w');
    return leaf(`/#/fs/${c}`, p.slice(3), Number(port), weight ? Number(weight) : 1);
  }
  if (a === 'io.l5d.w00t') return b === 'woop' ? leaf('/io.l5d.w00t/woop', p.slice(2), 9) : { kind: 'ok', value: { kind: 'neg' } };
  if (a === '$' && b === 'inet' && c === '127.1' && d) return leaf(`/$/inet/127.1/${d}`, p.slice(4), Number(d));
  return null;
};

const run = (dtab: string, path: string): unknown => delegateJson(delegate(parseDtab(dtab), parsePath(path), namers).tree);
const J = (s: string): unknown => JSON.parse(s);
const inet8080 = '{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080,"meta":{}}],"meta":{}},"id":"/$/inet/127.1/8080"';

describe('delegate: linkerd DelegatorTest (§3.7 a)', () => {
  const dtab = '/bah/humbug => /$/inet/127.1/8080 ; /beh => /#/error ; /foo => /bah | /$/fail ; /foo => /bar ; /boo => /foo ; /meh => /heh ;';
  const bahFail = '"dentry":{"prefix":"/foo","dst":"/bah | /$/fail"}';
  const table: [string, string, string][] = [
    ['no dentry matches', '/nope', '{"type":"neg","path":"/nope"}'],
    ['one rewrite to nothing', '/meh/hey', '{"type":"delegate","path":"/meh/hey","delegate":{"type":"neg","path":"/heh/hey","dentry":{"prefix":"/meh","dst":"/heh"}}}'],
    ['alternatives all expanded, the nested alt flattened', '/boo/lol',
      `{"type":"delegate","path":"/boo/lol","delegate":{"type":"alt","path":"/foo/lol","dentry":{"prefix":"/boo","dst":"/foo"},"alt":[` +
      `{"type":"neg","path":"/bar/lol","dentry":{"prefix":"/foo","dst":"/bar"}},{"type":"neg","path":"/bah/lol",${bahFail}},` +
      `{"type":"fail","path":"/$/fail/lol",${bahFail}}]}}`],
    ['a bound leaf with its residual', '/boo/humbug/ya',
      `{"type":"delegate","path":"/boo/humbug/ya","delegate":{"type":"alt","path":"/foo/humbug/ya","dentry":{"prefix":"/boo","dst":"/foo"},"alt":[` +
      `{"type":"neg","path":"/bar/humbug/ya","dentry":{"prefix":"/foo","dst":"/bar"}},` +
      `{"type":"delegate","path":"/bah/humbug/ya",${bahFail},"delegate":{"type":"leaf","path":"/$/inet/127.1/8080/ya","dentry":{"prefix":"/bah/humbug","dst":"/$/inet/127.1/8080"},"bound":${inet8080},"path":"/ya"}}},` +
      `{"type":"fail","path":"/$/fail/humbug/ya",${bahFail}}]}}`],
    ['a failing namer is an exception', '/beh/humbug',
      '{"type":"delegate","path":"/beh/humbug","delegate":{"type":"exception","path":"/#/error/humbug","dentry":{"prefix":"/beh","dst":"/#/error"},"message":"error naming /#/error/humbug"}}'],
  ];
  for (const [what, path, want] of table) it(`${path}: ${what}`, () => assert.deepEqual(run(dtab, path), J(want)));
  it('/nah/bro through a configured namer', () => {
    assert.deepEqual(run('/nah=>/#/namer;', '/nah/bro'), J('{"type":"delegate","path":"/nah/bro","delegate":{"type":"leaf","path":"/#/namer/bro","dentry":{"prefix":"/nah","dst":"/#/namer"},' +
      '"bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":1,"meta":{}}],"meta":{}},"id":"/#/namer","path":"/bro"}}}'));
  });
});

describe('delegate: linkerd DelegateApiHandlerTest JSON (§3.7 b)', () => {
  const dtab = '/beh => /#/error ; /bah/humbug => /$/inet/127.1/8080 ; /foo => /bah | /beh | /$/fail ; /foo => /bar ; /boo => /foo ; /meh => /heh ; /neg => ~ ;';
  const d3 = '"dentry":{"prefix":"/foo","dst":"/bah | /beh | /$/fail"}';
  const table: [string, string][] = [
    ['/boo/humbug', `{"type":"delegate","path":"/boo/humbug","delegate":{"type":"alt","path":"/foo/humbug","dentry":{"prefix":"/boo","dst":"/foo"},"alt":[` +
      `{"type":"neg","path":"/bar/humbug","dentry":{"prefix":"/foo","dst":"/bar"}},` +
      `{"type":"delegate","path":"/bah/humbug",${d3},"delegate":{"type":"leaf","path":"/$/inet/127.1/8080","dentry":{"prefix":"/bah/humbug","dst":"/$/inet/127.1/8080"},"bound":${inet8080},"path":"/"}}},` +
      `{"type":"delegate","path":"/beh/humbug",${d3},"delegate":{"type":"exception","path":"/#/error/humbug","dentry":{"prefix":"/beh","dst":"/#/error"},"message":"error naming /#/error/humbug"}},` +
      `{"type":"fail","path":"/$/fail/humbug",${d3}}]}}`],
    ['/meh', '{"type":"delegate","path":"/meh","delegate":{"type":"neg","path":"/heh","dentry":{"prefix":"/meh","dst":"/heh"}}}'],
    ['/neg', '{"type":"delegate","path":"/neg","delegate":{"type":"neg","path":"~","dentry":{"prefix":"/neg","dst":"~"}}}'],
  ];
  for (const [path, want] of table) it(path, () => assert.deepEqual(run(dtab, path), J(want)));
});

describe('delegate: namerd vectors (§3.7 c, d): a namespace dtab with a local dtab appended', () => {
  it('GET /api/1/delegate/yeezus?path=/yeezy', () => {
    assert.deepEqual(run('/yeezy => /yeezus', '/yeezy'), J('{"type":"delegate","path":"/yeezy","delegate":{"type":"neg","path":"/yeezus","dentry":{"prefix":"/yeezy","dst":"/yeezus"}}}'));
  });
  it('the local dtab takes precedence', () => {
    assert.deepEqual(run('/yeezy => /yeezus;/yeezy=>/bar', '/yeezy'), J('{"type":"alt","path":"/yeezy","alt":[{"type":"neg","path":"/bar","dentry":{"prefix":"/yeezy","dst":"/bar"}},' +
      '{"type":"neg","path":"/yeezus","dentry":{"prefix":"/yeezy","dst":"/yeezus"}}]}'));
  });
  it('HttpNamerEndToEndTest delegation', () => {
    const w00t = '"dentry":{"prefix":"/srv","dst":"/io.l5d.w00t"}';
    assert.deepEqual(run('/srv => /io.l5d.w00t; /host => /srv; /svc => /host; /host/poop => /srv/woop', '/svc/poop'), J(
      '{"type":"delegate","path":"/svc/poop","delegate":{"type":"alt","path":"/host/poop","dentry":{"prefix":"/svc","dst":"/host"},"alt":[' +
      `{"type":"delegate","path":"/srv/woop","dentry":{"prefix":"/host/poop","dst":"/srv/woop"},"delegate":{"type":"leaf","path":"/io.l5d.w00t/woop",${w00t},` +
      '"bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":9,"meta":{}}],"meta":{}},"id":"/io.l5d.w00t/woop","path":"/"}}},' +
      `{"type":"delegate","path":"/srv/poop","dentry":{"prefix":"/host","dst":"/srv"},"delegate":{"type":"neg","path":"/io.l5d.w00t/poop",${w00t}}}]}}`));
  });
});

describe('delegate: unions, the built-in names, and the bounds', () => {
  it('a weighted union keeps its weights; a single dentry with a union collapses into it', () => {
    const got = run('/svc => 3 * /#/fs/1 & 1 * /#/fs/2w5', '/svc');
    assert.deepEqual(got, J('{"type":"union","path":"/svc","union":[' +
      '{"weight":3,"tree":{"type":"leaf","path":"/#/fs/1","dentry":{"prefix":"/svc","dst":"3.00*/#/fs/1 & /#/fs/2w5"},"bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":1,"meta":{}}],"meta":{}},"id":"/#/fs/1","path":"/"}}},' +
      '{"weight":1,"tree":{"type":"leaf","path":"/#/fs/2w5","dentry":{"prefix":"/svc","dst":"3.00*/#/fs/1 & /#/fs/2w5"},"bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":2,"meta":{"endpoint_addr_weight":5}}],"meta":{}},"id":"/#/fs/2w5","path":"/"}}}]}'));
  });
  it('explicit ! and $ and the built-in /$/nil', () => {
    assert.deepEqual(run('/a => !; /b => $; /c => /$/nil', '/a'), J('{"type":"delegate","path":"/a","delegate":{"type":"fail","path":"!","dentry":{"prefix":"/a","dst":"!"}}}'));
    assert.deepEqual(run('/a => !; /b => $; /c => /$/nil', '/b'), J('{"type":"delegate","path":"/b","delegate":{"type":"empty","path":"$","dentry":{"prefix":"/b","dst":"$"}}}'));
    assert.deepEqual(run('/a => !; /b => $; /c => /$/nil', '/c/x'), J('{"type":"delegate","path":"/c/x","delegate":{"type":"empty","path":"/$/nil/x","dentry":{"prefix":"/c","dst":"/$/nil"}}}'));
  });
  it('a pending namer is flagged (the caller asks again) and shown as such', () => {
    const r = delegate(parseDtab('/s => /#/slow'), parsePath('/s'), namers);
    assert.equal(r.pending, true);
    assert.deepEqual(delegateJson(r.tree), { type: 'delegate', path: '/s', delegate: { type: 'exception', path: '/#/slow', dentry: { prefix: '/s', dst: '/#/slow' }, message: PENDING_MESSAGE } });
    assert.equal(delegate(parseDtab('/s => /#/namer'), parsePath('/s'), namers).pending, false);
  });
  it('an infinite loop stops at the max depth with linkerd\'s message', () => {
    const r = JSON.stringify(run('/foo/bar => /bar/foo; /bar/foo => /foo/bar', '/foo/bar'));
    assert.match(r, /"type":"exception","path":"\/(foo\/bar|bar\/foo)".*"message":"Max recursion level: 100 reached in Namer lookup"/);
  });
  it('a dtab whose alternatives explode answers at once with one exception node', () => {
    const dtab = Array.from({ length: 60 }, (_, i) => `/n${i} => /n${i + 1} | /n${i + 1}`).join(';');
    const t0 = performance.now();
    const r = delegate(parseDtab(dtab), parsePath('/n0'), namers);
    assert.ok(performance.now() - t0 < 5_000, 'bounded work');
    assert.equal(r.tree.kind, 'exception');
    assert.match(delegateJson(r.tree).type === 'exception' ? JSON.stringify(delegateJson(r.tree)) : '', /took over 100000 steps/);
  });
});
