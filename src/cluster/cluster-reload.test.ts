import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Config } from '../config/types.ts';
import { ReloadRounds, type ReloadToWorker } from './cluster-reload.ts';

const config = {} as Config;

/** Rounds whose workers answer each prepare through `answer` (an error text, or null), on the next microtask. */
function rounds(answer: (worker: number) => string | null): { r: ReloadRounds; sent: [number, ReloadToWorker['type']][] } {
  const sent: [number, ReloadToWorker['type']][] = [];
  const r: ReloadRounds = new ReloadRounds((worker, m) => {
    sent.push([worker, m.type]);
    if (m.type === 'reload-prepare') queueMicrotask(() => r.onMessage(worker, { type: 'reload-prepared', id: m.id, error: answer(worker) }));
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
