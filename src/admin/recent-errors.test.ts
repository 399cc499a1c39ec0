import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../log.ts';
import { TransitionLog } from '../router/transition-log.ts';
import { PER_CAUSE_PER_SEC, RecentErrors, teeErrors } from './recent-errors.ts';

describe('recent errors', () => {
  it('keeps connect and handshake failures at info, as the log has them; a repeat counts into its entry; new ones at most PER_CAUSE_PER_SEC a second per cause', () => {
    let now = 0;
    const errors = new RecentErrors(50, () => now);
    const log = teeErrors(silentLogger(), errors).child({ rt: 'r' });
    const dst = log.child({ dst: '/svc' });
    for (let i = 0; i < 20; i++) {
      now = i;
      dst.info({ endpoint: '10.0.0.1:80', cause: 'refused' }, 'connect failed');
    }
    const [first] = errors.list();
    assert.deepEqual(first, {
      at: 19, firstAt: 0, count: 20, level: 'info', msg: 'connect failed',
      context: { rt: 'r', dst: '/svc', endpoint: '10.0.0.1:80', cause: 'refused' },
    });
    // New entries of one cause (other endpoints): PER_CAUSE_PER_SEC a second, the first one's included; repeats use none of it.
    for (let i = 2; i < 12; i++) dst.info({ endpoint: `10.0.0.${i}:80`, cause: 'refused' }, 'connect failed');
    dst.info({ endpoint: '10.0.0.99:80', cause: 'timeout' }, 'connect failed'); // another cause has its own budget
    log.info({ srv: '127.0.0.1:7443', client: '127.0.0.1:5000', sni: 'nope.test', reason: 'tls_handshake', error: 'unknown_sni' }, 'connection closed');
    log.info({ srv: '127.0.0.1:7443', reason: 'done', error: null }, 'connection closed'); // not a failure
    log.info({}, 'listening');
    const list = errors.list();
    assert.equal(list.filter((e) => e.msg === 'connect failed' && e.context['cause'] === 'refused').length, PER_CAUSE_PER_SEC);
    assert.deepEqual(list.find((e) => e.context['cause'] === 'timeout')?.context, { rt: 'r', dst: '/svc', endpoint: '10.0.0.99:80', cause: 'timeout' });
    const tls = list.find((e) => e.msg === 'tls handshake failed');
    assert.deepEqual(tls?.context, { rt: 'r', srv: '127.0.0.1:7443', client: '127.0.0.1:5000', sni: 'nope.test', cause: 'unknown_sni' });
    assert.deepEqual(new Set(list.map((e) => e.level)), new Set(['info']), 'the log writes these at info');
    assert.equal(list.length, PER_CAUSE_PER_SEC + 2);

    now = 1000; // a new second: the next new one says how many were left out
    dst.info({ endpoint: '10.0.0.50:80', cause: 'refused' }, 'connect failed');
    assert.equal(errors.list().at(-1)?.context['suppressed'], 10 - (PER_CAUSE_PER_SEC - 1));
    dst.info({ endpoint: '10.0.0.1:80', cause: 'refused' }, 'connect failed'); // still a repeat of the first: moves to the end
    assert.deepEqual([errors.list().at(-1)?.context['endpoint'], errors.list().at(-1)?.count, errors.list().length], ['10.0.0.1:80', 21, PER_CAUSE_PER_SEC + 3]);
  });

  it('a one-endpoint destination whose endpoint is dead does not fill the list: its failures, ejection and flapping summary once each', () => {
    let now = 0;
    const errors = new RecentErrors(50, () => now);
    const log = teeErrors(silentLogger(), errors).child({ rt: 'r' }).child({ dst: '/svc/one' });
    let due: { at: number; fn: () => void } | undefined;
    const transitions = new TransitionLog({
      log, now: () => now,
      setTimer: (fn, ms) => { const d = { at: now + ms, fn }; due = d; return () => { if (due === d) due = undefined; }; },
    });
    const fire = (): void => { if (due && due.at <= now) { const d = due; due = undefined; d.fn(); } };
    log.warn({ path: '/etc/x' }, 'an unrelated warning'); // must still be listed at the end
    const ep = '127.0.0.1:9';
    // 10 connects a second for 40 s, all refused; every 5th ejects the only endpoint, which
    // comes back at once (every endpoint ejected: all revived), as the balancer does.
    for (let i = 1; i <= 400; i++) {
      now = i * 100;
      log.info({ endpoint: ep, cause: 'refused' }, 'connect failed');
      if (i % 5 === 0) {
        transitions.ejected(ep, 5);
        transitions.revived(ep);
      }
      fire();
    }
    now = 61_000; // the flapping window ends: its summary
    fire();
    const list = errors.list();
    const summary = list.map((e) => `${e.level} ${e.msg} ×${e.count ?? 1}`);
    assert.deepEqual(summary, ['warn an unrelated warning ×1', 'warn endpoint ejected ×1', 'info connect failed ×400', 'warn endpoint flapping ×1'], JSON.stringify(summary.slice(0, 8)));
    assert.deepEqual(list.find((e) => e.msg === 'endpoint flapping')?.context, { endpoint: ep, ejections: 80, revivals: 80, state: 'available', windowSecs: 60, rt: 'r', dst: '/svc/one' });
    assert.equal(list.find((e) => e.msg === 'connect failed')?.firstAt, 100);
  });

  it('drops the pid key and keeps warnings from every child', () => {
    const errors = new RecentErrors();
    teeErrors(silentLogger(), errors).child({ component: 'primary' }).warn({ worker: 2, pid: 9, workerPid: 77 }, 'worker exited; restarting');
    assert.deepEqual(errors.list()[0]?.context, { worker: 2, workerPid: 77, component: 'primary' });
  });
});
