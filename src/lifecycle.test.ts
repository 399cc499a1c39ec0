import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Lifecycle, type StopCause } from './lifecycle.ts';
import { silentLogger } from './log.ts';

/** A lifecycle whose drain ends when `finishDrain` is called (or never); records halts. */
function make(graceMs = 50, marginMs = 50): { lc: Lifecycle; drains: number[]; halts: () => number; finishDrain: (code?: number) => void } {
  const drains: number[] = [];
  let halts = 0;
  const done = Promise.withResolvers<number | void>();
  const lc = new Lifecycle({
    log: silentLogger(), marginMs, graceMs: () => graceMs,
    drain: (g) => { drains.push(g); return done.promise; },
    halt: () => { halts++; },
  });
  return { lc, drains, halts: () => halts, finishDrain: (code) => done.resolve(code) };
}

it('the first stop drains with the grace period; the drain ending decides the code', async () => {
  for (const [code, want] of [[undefined, 0], [0, 0], [1, 1]] as const) {
    const t = make(1000, 1000);
    t.lc.stop('SIGTERM');
    assert.deepEqual(t.drains, [1000]);
    t.finishDrain(code);
    assert.equal(await t.lc.exitCode, want);
    assert.equal(t.halts(), 0);
  }
});

it('a second signal exits 1 at once and halts; repeated admin or primary stops never escalate', async () => {
  const table: [StopCause[], number | 'draining'][] = [
    [['SIGTERM', 'SIGTERM'], 1], [['SIGINT', 'SIGINT'], 1], [['SIGTERM', 'SIGINT'], 1],
    [['admin', 'admin'], 'draining'], [['primary', 'SIGINT'], 'draining'], [['SIGINT', 'primary', 'admin'], 'draining'],
    [['admin', 'SIGTERM', 'SIGTERM'], 1],
  ];
  for (const [causes, want] of table) {
    const t = make(60_000, 60_000);
    for (const c of causes) t.lc.stop(c);
    assert.equal(t.drains.length, 1, causes.join(' '));
    const settled = await Promise.race([t.lc.exitCode, Promise.resolve('draining' as const)]);
    assert.equal(settled, want, causes.join(' '));
    assert.equal(t.halts(), want === 1 ? 1 : 0, causes.join(' '));
    t.finishDrain();
  }
});

it('a drain that outlives grace + margin exits 1 (the hard deadline); abort exits 1 at once', async () => {
  const t = make(20, 20);
  const t0 = performance.now();
  t.lc.stop('SIGTERM');
  assert.equal(await t.lc.exitCode, 1);
  assert.ok(performance.now() - t0 >= 35);
  assert.equal(t.halts(), 1);
  const a = make();
  a.lc.abort();
  assert.equal(await a.lc.exitCode, 1);
  assert.equal(a.halts(), 1);
  assert.equal(a.drains.length, 0);
  a.lc.stop('SIGTERM'); // after the exit is decided, nothing changes
  assert.equal(a.drains.length, 0);
  const f = make();
  f.lc.finish(1);
  assert.equal(await f.lc.exitCode, 1);
  assert.ok(f.lc.stopping);
});

it('a stop before the start abandons it; one during the start waits for it, then drains; a second signal does not wait', async () => {
  const before = make(1000, 1000);
  before.lc.stop('SIGTERM');
  let ran = false;
  assert.equal(await before.lc.start(async () => { ran = true; }), false);
  assert.equal(ran, false);
  assert.deepEqual(before.drains, [1000]);
  before.finishDrain();
  assert.equal(await before.lc.exitCode, 0);

  const during = make(1000, 1000);
  const gate = Promise.withResolvers<void>();
  const started = during.lc.start(() => gate.promise);
  during.lc.stop('SIGTERM');
  during.lc.stop('admin'); // not a signal: no escalation, and still one drain
  assert.ok(during.lc.stopping);
  assert.deepEqual(during.drains, [], 'no drain under a start still running');
  gate.resolve();
  assert.equal(await started, true);
  assert.deepEqual(during.drains, [1000]);
  during.finishDrain();
  assert.equal(await during.lc.exitCode, 0);

  const twice = make(1000, 1000);
  void twice.lc.start(() => new Promise(() => {})); // never finishes
  twice.lc.stop('SIGINT');
  twice.lc.stop('SIGTERM');
  assert.equal(await twice.lc.exitCode, 1);
  assert.equal(twice.halts(), 1);
  assert.deepEqual(twice.drains, []);
});

it('a start that fails with a stop waiting rejects and drains nothing; one that hangs meets the deadline from the request', async () => {
  const failed = make(1000, 1000);
  const started = failed.lc.start(() => Promise.reject(new Error('bind failed')));
  failed.lc.stop('SIGTERM');
  await assert.rejects(started, /bind failed/);
  assert.deepEqual(failed.drains, []);
  failed.lc.finish(1);
  assert.equal(await failed.lc.exitCode, 1);

  const hung = make(20, 20);
  void hung.lc.start(() => new Promise(() => {}));
  hung.lc.stop('SIGTERM');
  assert.equal(await hung.lc.exitCode, 1);
  assert.deepEqual(hung.drains, []);
});
