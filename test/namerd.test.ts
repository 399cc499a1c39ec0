// The io.l5d.namerd.http interpreter against the namerd test double: polling and watching,
// every answer shape namerd gives, and every way it can fail.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { InterpreterConfig } from '../src/config/types.ts';
import { createNamerdInterpreter } from '../src/interpreter/namerd.ts';
import { silentLogger } from '../src/log.ts';
import { Registry } from '../src/metrics/registry.ts';
import type { Resolution } from '../src/naming/resolution.ts';
import { deadline } from './support/harness.ts';
import { type Answer, body, NamerdDouble, type Tree, treeBody } from './support/namerd-double.ts';

type NamerdConfig = Extract<InterpreterConfig, { kind: 'io.l5d.namerd.http' }>;

async function setup(t: TestContext, over: Partial<NamerdConfig> = {}, periodMs = 50, dtab = '') {
  const namerd = await NamerdDouble.start();
  t.after(() => namerd.close());
  const registry = new Registry();
  const interp = createNamerdInterpreter({
    config: { kind: 'io.l5d.namerd.http', baseUrl: namerd.baseUrl, namespace: 'default', periodSecs: 20, watch: false, requestTimeoutMs: 500, mode: 'resolve', ...over },
    routerLabel: 'rt', dtab, registry, log: silentLogger(), periodMs, backoffMinMs: 20, random: () => 0.5,
  });
  t.after(() => interp.close());
  /** Resolutions seen by one watcher, with a way to wait for the next one matching. */
  const watch = (dst: string) => {
    const seen: Resolution[] = [];
    let waiter: { pred: (r: Resolution) => boolean; resolve: (r: Resolution) => void } | undefined;
    const w = interp.watch(dst, (r) => {
      seen.push(r);
      if (waiter?.pred(r)) waiter.resolve(r);
    });
    t.after(() => w.close());
    const next = (pred: (r: Resolution) => boolean, what: string): Promise<Resolution> => {
      const already = seen.find(pred);
      if (already) return Promise.resolve(already);
      return deadline(3000, what, new Promise<Resolution>((resolve) => (waiter = { pred, resolve })));
    };
    return { seen, next, close: () => w.close() };
  };
  return { namerd, registry, interp, watch };
}

const bound = (r: Resolution) => (r.kind === 'bound' ? r.endpoints.map((e) => `${e.host}:${e.port}*${e.weight}`).join(',') : r.kind);

describe('namerd interpreter (poll)', () => {
  it('resolves a bound name with normalised weights, asking as linkerd-tcp does', async (t) => {
    const { namerd, registry, watch } = await setup(t, {}, 50, '/svc => /#/io.l5d.fs;');
    namerd.set('default', '/svc/default', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1, weight: 9 }, { ip: '127.0.0.1', port: 2, weight: 1 }] });
    const req = namerd.nextRequest();
    const w = watch('/svc/default');
    const r = await w.next((x) => x.kind === 'bound', 'bound');
    assert.equal(bound(r), '127.0.0.1:1*0.9,127.0.0.1:2*0.1');
    const rec = await req;
    assert.deepEqual(rec, { api: 'resolve', namespace: 'default', path: '/svc/default', dtab: '/svc => /#/io.l5d.fs;', watch: false });
    assert.ok(registry.render().includes('l5d:resolver:success_count{namespace="default", rt="rt"} '));
  });

  it('percent-encodes the path in the query string', async (t) => {
    const { namerd, watch } = await setup(t);
    const req = namerd.nextRequest();
    watch('/svc/a b#c');
    assert.equal((await req).path, '/svc/a b#c');
  });

  it('follows changes on the next poll, and reports neg (linkerd-tcp #90)', async (t) => {
    const { namerd, watch } = await setup(t);
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }] });
    const w = watch('/svc/x');
    await w.next((r) => bound(r) === '127.0.0.1:1*1', 'A');
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 2 }] });
    await w.next((r) => bound(r) === '127.0.0.1:2*1', 'B');
    namerd.set('default', '/svc/x', { type: 'neg' });
    await w.next((r) => r.kind === 'neg', 'neg');
  });

  const failures: [string, Parameters<NamerdDouble['set']>[2], RegExp][] = [
    ['a failed answer', { type: 'failed', cause: 'no dtab' }, /namerd: no dtab/],
    ['HTTP 500', { type: 'status', status: 500 }, /HTTP 500/],
    ['garbage', { type: 'garbage', body: '<html>oops' }, /not JSON/],
    ['a wrong shape', { type: 'garbage', body: '{"type":"bound","addrs":[{"ip":"nope","port":1}]}' }, /addrs\[0\]\.ip/],
    ['a hung response', { type: 'hang' }, /no answer from namerd within 500ms/],
    ['a huge body', { type: 'garbage', body: ' '.repeat(3 << 20) }, /over 1048576 bytes/],
    ['a body that never ends, fast', { type: 'endless', chunkBytes: 64 << 10, everyMs: 5 }, /over 1048576 bytes/],
    ['a body that never ends, slowly', { type: 'endless', chunkBytes: 1, everyMs: 50 }, /no answer from namerd within 500ms/],
  ];
  for (const [name, answer, reason] of failures) {
    it(`delivers failed for ${name}, counts it, and recovers`, async (t) => {
      const { namerd, registry, watch } = await setup(t);
      namerd.set('default', '/svc/x', answer);
      const w = watch('/svc/x');
      const r = await w.next((x) => x.kind === 'failed', 'failed');
      assert.match(r.kind === 'failed' ? r.reason : '', reason);
      assert.match(registry.render(), /l5d:resolver:failure_count\{namespace="default", rt="rt"\} [1-9]/);
      namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 7 }] });
      await w.next((x) => x.kind === 'bound', 'recovery');
    });
  }

  it('is refused → failed, then recovers when namerd comes back', async (t) => {
    const { namerd, watch } = await setup(t, { baseUrl: 'http://127.0.0.1:1' });
    const w = watch('/svc/x');
    const r = await w.next((x) => x.kind === 'failed', 'failed');
    assert.match(r.kind === 'failed' ? r.reason : '', /ECONNREFUSED/);
    void namerd;
  });

  it('shares one loop between watchers of one name, and stops it when the last closes', async (t) => {
    const { namerd, watch } = await setup(t, {}, 100_000);
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }] });
    const a = watch('/svc/x');
    await a.next((r) => r.kind === 'bound', 'first');
    const b = watch('/svc/x');
    await b.next((r) => r.kind === 'bound', 'second watcher gets the current value');
    assert.equal(namerd.requests.length, 1);
  });
});

describe('namerd interpreter (watch)', () => {
  it('gets pushed updates without polling', async (t) => {
    const { namerd, watch } = await setup(t, { watch: true }, 100_000);
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }] });
    const w = watch('/svc/x');
    await w.next((r) => bound(r) === '127.0.0.1:1*1', 'first');
    assert.equal(namerd.requests[0]!.watch, true);
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }, { ip: '127.0.0.1', port: 2 }] });
    await w.next((r) => bound(r) === '127.0.0.1:1*0.5,127.0.0.1:2*0.5', 'pushed');
    namerd.set('default', '/svc/x', { type: 'neg' });
    await w.next((r) => r.kind === 'neg', 'neg');
    assert.equal(namerd.requests.length, 1, 'one streaming request');
  });

  it('reconnects after the stream ends and after an error line', async (t) => {
    const { namerd, watch } = await setup(t, { watch: true }, 100_000);
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }] });
    const w = watch('/svc/x');
    await w.next((r) => r.kind === 'bound', 'first');
    const again = namerd.nextRequest();
    namerd.dropStreams();
    await deadline(3000, 'reconnect after EOF', again);
    namerd.set('default', '/svc/x', { type: 'error-line', message: 'java.lang.Exception: boom' });
    await w.next((x) => x.kind === 'failed' && /namerd watch error: java.lang.Exception: boom/.test(x.reason), 'error line');
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 3 }] });
    await w.next((x) => bound(x) === '127.0.0.1:3*1', 'recovered');
  });

  it('times out a stream that never sends its first line', async (t) => {
    const { namerd, watch } = await setup(t, { watch: true, requestTimeoutMs: 200 }, 100_000);
    namerd.set('default', '/svc/x', { type: 'hang' });
    const w = watch('/svc/x');
    const r = await w.next((x) => x.kind === 'failed', 'timeout');
    assert.match(r.kind === 'failed' ? r.reason : '', /within 200ms/);
  });

  it('cuts a stream whose line never ends (over 1 MiB), keeps the last good set, and recovers', async (t) => {
    const { namerd, watch } = await setup(t, { watch: true }, 100_000);
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }] });
    const w = watch('/svc/x');
    await w.next((r) => r.kind === 'bound', 'first');
    namerd.set('default', '/svc/x', { type: 'endless', chunkBytes: 64 << 10, everyMs: 5 });
    namerd.dropStreams(); // the reconnect meets the endless answer
    await w.next((x) => x.kind === 'failed' && /line over 1048576 bytes/.test(x.reason), 'oversized line');
    namerd.set('default', '/svc/x', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 4 }] });
    await w.next((x) => bound(x) === '127.0.0.1:4*1', 'recovered');
  });
});

describe('namerd interpreter, mode: bind (linkerd\'s /api/1/bind + /api/1/addr)', () => {
  const canary: Tree = { type: 'union', union: [{ weight: 9, tree: { type: 'leaf', id: '/#/io.l5d.fs/a' } }, { weight: 1, tree: { type: 'leaf', id: '/#/io.l5d.fs/b' } }] };
  const sorted = (r: Resolution) => (r.kind === 'bound' ? r.endpoints.map((e) => `${e.host}:${e.port}*${Math.round(e.weight * 1000) / 1000}`).sort().join(',') : r.kind);

  it('the double renders bind and addr bodies byte for byte as namerd (reference §1.3, §1.5)', () => {
    const addr = (): Answer => ({ type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }] });
    assert.equal(treeBody({ type: 'leaf', id: '/#/io.l5d.namer/foo' }, addr),
      '{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":1,"meta":{}}],"meta":{}},"id":"/#/io.l5d.namer/foo","path":"/"}}\n');
    assert.equal(body(addr()), '{"type":"bound","addrs":[{"ip":"127.0.0.1","port":1,"meta":{}}],"meta":{}}\n');
    assert.match(treeBody({ type: 'union', union: [{ weight: 3, tree: { type: 'leaf', id: '/#/io.l5d.fs/a' } }, { weight: 1, tree: { type: 'neg' } }] }, addr),
      /^\{"type":"union","union":\[\{"weight":3\.0,"tree":\{"type":"leaf","bound":\{"addr":\{"type":"bound","addrs":\[.*\],"meta":\{"namer_nametree_weight":3\.0\}\},"id":"\/#\/io\.l5d\.fs\/a","path":"\/"\}\}\},\{"weight":1\.0,"tree":\{"type":"neg"\}\}\]\}\n$/);
  });

  it('polls the tree and each leaf: a 9:1 union reaches the balancer as weights (resolve would pick one branch)', async (t) => {
    const { namerd, watch } = await setup(t, { mode: 'bind' }, 50, '/svc => /#/io.l5d.fs;');
    namerd.setTree('default', '/svc/web', canary);
    namerd.setAddr('/#/io.l5d.fs/a', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }] });
    namerd.setAddr('/#/io.l5d.fs/b', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 2 }, { ip: '127.0.0.1', port: 3, weight: 3 }] });
    const w = watch('/svc/web');
    await w.next((r) => sorted(r) === '127.0.0.1:1*0.9,127.0.0.1:2*0.025,127.0.0.1:3*0.075', 'weights multiplied out');
    const bind = namerd.requests.find((r) => r.api === 'bind')!;
    assert.deepEqual(bind, { api: 'bind', namespace: 'default', path: '/svc/web', dtab: '/svc => /#/io.l5d.fs;', watch: false });
    const addrs = () => namerd.requests.filter((r) => r.api === 'addr');
    await deadline(3000, 'addr requests', (async () => { while (addrs().length < 2) await namerd.nextRequest(); })());
    assert.deepEqual(addrs().map((r) => r.path).sort().slice(0, 2), ['/#/io.l5d.fs/a', '/#/io.l5d.fs/b']);
    // A leaf's addresses change: the next addr poll brings them.
    namerd.setAddr('/#/io.l5d.fs/a', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 4 }] });
    await w.next((r) => sorted(r).startsWith('127.0.0.1:2*0.025,127.0.0.1:3*0.075,127.0.0.1:4*0.9'), 'leaf a moved');
  });

  it('watches the tree and each leaf; a failed leaf keeps its last addresses; a bad tree is failed', async (t) => {
    const { namerd, watch } = await setup(t, { mode: 'bind', watch: true }, 100_000);
    namerd.setAddr('/#/io.l5d.fs/a', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1 }] });
    namerd.setAddr('/#/io.l5d.fs/b', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 2 }] });
    namerd.setTree('default', '/svc/web', canary);
    const w = watch('/svc/web');
    await w.next((r) => sorted(r) === '127.0.0.1:1*0.9,127.0.0.1:2*0.1', 'canary');
    assert.ok(namerd.requests.every((r) => r.watch), 'every request streams');
    namerd.setAddr('/#/io.l5d.fs/b', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 5 }] });
    await w.next((r) => sorted(r) === '127.0.0.1:1*0.9,127.0.0.1:5*0.1', 'addr pushed');
    namerd.setAddr('/#/io.l5d.fs/b', { type: 'error-line', message: 'com.twitter.finagle.NoBrokersAvailableException' });
    namerd.setTree('default', '/svc/web', { type: 'union', union: [{ weight: 1, tree: { type: 'leaf', id: '/#/io.l5d.fs/a' } }, { weight: 1, tree: { type: 'leaf', id: '/#/io.l5d.fs/b' } }] });
    await w.next((r) => sorted(r) === '127.0.0.1:1*0.5,127.0.0.1:5*0.5', 'tree pushed; the failed leaf kept its addresses');
    namerd.setTree('default', '/svc/web', { type: 'union', union: [{ weight: 1e308, tree: { type: 'leaf', id: '/#/io.l5d.fs/a' } }, { weight: 1e308, tree: { type: 'leaf', id: '/#/io.l5d.fs/b' } }] });
    const f = await w.next((r) => r.kind === 'failed', 'overflowing weights refused');
    assert.match(f.kind === 'failed' ? f.reason : '', /tree\.union\[0\]\.weight is over the limit of 1000000/);
    namerd.setTree('default', '/svc/web', { type: 'leaf', id: '/#/io.l5d.fs/a' });
    await w.next((r) => sorted(r) === '127.0.0.1:1*1', 'a plain leaf');
  });
});
