import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type Preparable, PreparedRounds } from './prepared-rounds.ts';

function prepared(): Preparable & { commits: number; aborts: number } {
  const p = { commits: 0, aborts: 0, commit: () => void p.commits++, abort: async () => void p.aborts++ };
  return p;
}

it('a prepared round is committed or aborted once, then forgotten', async () => {
  const rounds = new PreparedRounds<ReturnType<typeof prepared>>();
  const [a, b] = [prepared(), prepared()];
  assert.equal(await rounds.prepare(1, Promise.resolve(a)), null);
  assert.equal(await rounds.prepare(2, Promise.resolve(b)), null);
  rounds.commit(1);
  await rounds.abort(2);
  rounds.commit(1);
  await rounds.abort(2);
  assert.deepEqual([a.commits, a.aborts, b.commits, b.aborts], [1, 0, 0, 1]);
  assert.equal(rounds.held, 0);
});

it('a failed prepare answers its error and holds nothing', async () => {
  const rounds = new PreparedRounds<ReturnType<typeof prepared>>();
  assert.equal(await rounds.prepare(1, Promise.reject(new Error('tls: no such file'))), 'tls: no such file');
  assert.equal(rounds.held, 0);
});

it('an abort that overtakes its prepare (the primary timed the worker out) aborts it when it finishes, never keeps it', async () => {
  const rounds = new PreparedRounds<ReturnType<typeof prepared>>();
  const slow = Promise.withResolvers<ReturnType<typeof prepared>>();
  const answer = rounds.prepare(7, slow.promise);
  await rounds.abort(7); // arrives first
  const p = prepared();
  slow.resolve(p);
  assert.notEqual(await answer, null, 'not reported ready');
  assert.equal(p.aborts, 1, 'its listeners are let go');
  assert.equal(rounds.held, 0);
  rounds.commit(7); // a stray commit does nothing
  assert.equal(p.commits, 0);
});
