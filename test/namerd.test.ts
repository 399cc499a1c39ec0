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
import { NamerdDouble } from './support/namerd-double.ts';

type NamerdConfig = Extract<InterpreterConfig, { kind: 'io.l5d.namerd.http' }>;

async function setup(t: TestContext, over: Partial<NamerdConfig> = {}, periodMs = 50, dtab = '') {
  const namerd = await NamerdDouble.start();
  t.after(() => namerd.close());
  const registry = new Registry();
  const interp = createNamerdInterpreter({
    config: { kind: 'io.l5d.namerd.http', baseUrl: namerd.baseUrl, namespace: 'default', periodSecs: 20, watch: false, requestTimeoutMs: 500, ...over },
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
    assert.deepEqual(rec, { namespace: 'default', path: '/svc/default', dtab: '/svc => /#/io.l5d.fs;', watch: false });
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
