import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SessionCache } from '../server/session-cache.ts';
import { answerSessions, RemoteSessions, type SessionsToPrimary, type SessionsToWorker } from './remote-sessions.ts';

/** Workers wired to one primary cache; `sent` counts what reaches the primary. */
function cluster(): { worker: () => RemoteSessions; sent: SessionsToPrimary[] } {
  const cache = new SessionCache();
  const workers: RemoteSessions[] = [];
  const sent: SessionsToPrimary[] = [];
  const deliver = (w: RemoteSessions, r: SessionsToWorker): void => {
    if (r.type === 'session') w.answer(r.req, r.data);
    else w.learn(r.id);
  };
  const worker = (): RemoteSessions => {
    const w: RemoteSessions = new RemoteSessions((m: SessionsToPrimary) => {
      sent.push(m);
      answerSessions(cache, m, (r) => deliver(w, r), (r) => { for (const o of workers) deliver(o, r); });
    });
    workers.push(w);
    return w;
  };
  return { worker, sent };
}

it('remote sessions: a session set by one worker is found by another through the primary; no answer is a miss', async () => {
  const { worker, sent } = cluster();
  const [a, b] = [worker(), worker()];
  a.set(Buffer.from('id1'), Buffer.from('secret'));
  const found = await new Promise<Buffer | undefined>((r) => b.get(Buffer.from('id1'), r));
  assert.equal(found?.toString(), 'secret');
  assert.equal(sent.filter((m) => m.type === 'session-get').length, 1);
  // An ID no worker stored (a TLS 1.3 client's random legacy session ID) misses at once, never asked.
  let missing: Buffer | undefined | null = null;
  b.get(Buffer.from('nope'), (d) => { missing = d; });
  assert.equal(missing, undefined, 'answered synchronously');
  assert.equal(sent.filter((m) => m.type === 'session-get').length, 1, 'no round trip to the primary');
  const silent = new RemoteSessions(() => {}); // the primary never answers: the lookup times out as a miss
  silent.learn(Buffer.from('id1').toString('hex'));
  const t0 = performance.now();
  assert.equal(await new Promise<Buffer | undefined>((r) => silent.get(Buffer.from('id1'), r)), undefined);
  assert.ok(performance.now() - t0 >= 200);
});
