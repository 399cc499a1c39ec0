import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SessionCache } from '../server/session-cache.ts';
import { answerSessions, RemoteSessions, type SessionsToPrimary } from './remote-sessions.ts';

it('remote sessions: a session set by one worker is found by another through the primary; no answer is a miss', async () => {
  const cache = new SessionCache();
  const workers: RemoteSessions[] = [];
  const worker = (): RemoteSessions => {
    const w: RemoteSessions = new RemoteSessions((m: SessionsToPrimary) => answerSessions(cache, m, (r) => w.answer(r.req, r.data)));
    workers.push(w);
    return w;
  };
  const [a, b] = [worker(), worker()];
  a.set(Buffer.from('id1'), Buffer.from('secret'));
  const found = await new Promise<Buffer | undefined>((r) => b.get(Buffer.from('id1'), r));
  assert.equal(found?.toString(), 'secret');
  const missing = await new Promise<Buffer | undefined>((r) => b.get(Buffer.from('nope'), r));
  assert.equal(missing, undefined);
  const silent = new RemoteSessions(() => {}); // the primary never answers: the lookup times out as a miss
  const t0 = performance.now();
  assert.equal(await new Promise<Buffer | undefined>((r) => silent.get(Buffer.from('id1'), r)), undefined);
  assert.ok(performance.now() - t0 >= 200);
});
