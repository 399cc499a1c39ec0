import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../log.ts';
import { PER_CAUSE_PER_SEC, RecentErrors, teeErrors } from './recent-errors.ts';

describe('recent errors', () => {
  it('keeps connect and handshake failures (info records) as warnings, at most PER_CAUSE_PER_SEC a second per cause', () => {
    let now = 0;
    const errors = new RecentErrors(50, () => now);
    const log = teeErrors(silentLogger(), errors).child({ rt: 'r' });
    const dst = log.child({ dst: '/svc' });
    for (let i = 0; i < 20; i++) dst.info({ endpoint: '10.0.0.1:80', cause: 'refused' }, 'connect failed');
    dst.info({ endpoint: '10.0.0.2:80', cause: 'timeout' }, 'connect failed'); // another cause has its own budget
    log.info({ srv: '127.0.0.1:7443', client: '127.0.0.1:5000', sni: 'nope.test', reason: 'tls_handshake', error: 'unknown_sni' }, 'connection closed');
    log.info({ srv: '127.0.0.1:7443', reason: 'done', error: null }, 'connection closed'); // not a failure
    log.info({}, 'listening');
    const list = errors.list();
    assert.equal(list.filter((e) => e.msg === 'connect failed' && e.context['cause'] === 'refused').length, PER_CAUSE_PER_SEC);
    assert.deepEqual(list.find((e) => e.context['cause'] === 'timeout')?.context, { rt: 'r', dst: '/svc', endpoint: '10.0.0.2:80', cause: 'timeout' });
    const tls = list.find((e) => e.msg === 'tls handshake failed');
    assert.deepEqual(tls?.context, { rt: 'r', srv: '127.0.0.1:7443', client: '127.0.0.1:5000', sni: 'nope.test', cause: 'unknown_sni' });
    assert.equal(tls?.level, 'warn');
    assert.equal(list.length, PER_CAUSE_PER_SEC + 2);

    now = 1000; // a new second: the next one says how many were left out
    dst.info({ endpoint: '10.0.0.1:80', cause: 'refused' }, 'connect failed');
    assert.equal(errors.list().at(-1)?.context['suppressed'], 20 - PER_CAUSE_PER_SEC);
  });

  it('drops the pid key and keeps warnings from every child', () => {
    const errors = new RecentErrors();
    teeErrors(silentLogger(), errors).child({ component: 'primary' }).warn({ worker: 2, pid: 9, workerPid: 77 }, 'worker exited; restarting');
    assert.deepEqual(errors.list()[0]?.context, { worker: 2, workerPid: 77, component: 'primary' });
  });
});
