import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../config/types.ts';
import { ReloadRounds, type ReloadToWorker } from './cluster-reload.ts';

const config = {} as Config;

/** Rounds whose workers answer each prepare through `answer` (an error text, or null), on the next microtask. */
/** Commits are acknowledged on the next microtask too, unless `committed` takes them. */
function rounds(answer: (worker: number) => string | null, committed?: (worker: number, id: number) => void): { r: ReloadRounds; sent: [number, ReloadToWorker['type']][] } {
  const sent: [number, ReloadToWorker['type']][] = [];
  const r: ReloadRounds = new ReloadRounds((worker, m) => {
    sent.push([worker, m.type]);
    if (m.type === 'reload-prepare') queueMicrotask(() => r.onMessage(worker, { type: 'reload-prepared', id: m.id, error: answer(worker) }));
    if (m.type === 'reload-commit') {
      if (committed) committed(worker, m.id);
      else queueMicrotask(() => r.onMessage(worker, { type: 'reload-committed', id: m.id }));
    }
    return true;
  });
  return { r, sent };
}

describe('reload rounds (primary)', () => {
  it('commits on every worker once all have prepared, after beforeCommit', async () => {
    const { r, sent } = rounds(() => null);
    let before = 0;
    await r.run([1, 2], config, async () => { before = sent.length; });
    assert.equal(before, 2, 'beforeCommit runs after both prepares, before any commit');
    assert.deepEqual(sent.slice(2), [[1, 'reload-commit'], [2, 'reload-commit']]);
  });

  it('answers only once every worker has the commit in force (or has exited)', async () => {
    const acks: (() => void)[] = [];
    const { r } = rounds(() => null, (w, id) => acks.push(() => r.onMessage(w, { type: 'reload-committed', id })));
    let answered = false;
    const run = r.run([1, 2, 3], config, async () => {}).then(() => { answered = true; });
    while (acks.length < 3) await new Promise((res) => setImmediate(res));
    acks[0]!();
    r.dropWorker(3); // exited after the commit was sent
    await new Promise((res) => setImmediate(res));
    assert.equal(answered, false, 'worker 2 has not committed yet');
    acks[1]!();
    await run;
    assert.equal(answered, true);
  });

  it('aborts on every worker when one fails to prepare, and rejects with its error', async () => {
    const { r, sent } = rounds((w) => (w === 2 ? 'routers[0].servers[0]: EADDRINUSE' : null));
    await assert.rejects(r.run([1, 2], config, async () => assert.fail('no commit')), /EADDRINUSE/);
    assert.deepEqual(sent.slice(2), [[1, 'reload-abort'], [2, 'reload-abort']]);
  });

  it('aborts on every worker when beforeCommit rejects: none is left holding a prepared config', async () => {
    const { r, sent } = rounds(() => null);
    await assert.rejects(r.run([1, 2], config, () => Promise.reject(new Error('naming failed'))), /naming failed/);
    assert.deepEqual(sent.slice(2), [[1, 'reload-abort'], [2, 'reload-abort']]);
  });
});
