// The probe and the checker against real sockets on 127.0.0.1: every probe result from a
// real backend's behaviour, verdicts crossing the thresholds, the in-flight bounds, and
// that a target nobody watches costs nothing.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { type Backend, deadline, deadPort, echo, startBackend, startBlackhole } from '../../test/support/harness.ts';
import type { HealthCheckConfig } from '../config/types.ts';
import { silentLogger } from '../log.ts';
import { Registry } from '../metrics/registry.ts';
import { HealthChecker } from './checker.ts';
import { probe, type ProbeResult } from './probe.ts';

const timing = { intervalMs: 150, timeoutMs: 120, unhealthyThreshold: 2, healthyThreshold: 2 };
const sendExpect = (send: string, expect: string): HealthCheckConfig => ({ kind: 'send-expect', send, expect, ...timing });

describe('health checks against real backends', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  async function backend(h: (s: Socket) => void): Promise<Backend> {
    const b = await startBackend(h);
    cleanup.push(() => b.close());
    return b;
  }

  const cases: [what: string, handler: ((s: Socket) => void) | 'dead' | 'blackhole', check: HealthCheckConfig, result: ProbeResult][] = [
    ['connect to a listener', () => {}, { kind: 'connect', ...timing }, 'ok'],
    ['connect to a closed port', 'dead', { kind: 'connect', ...timing }, 'refused'],
    ['connect that never completes (full accept queue)', 'blackhole', { kind: 'connect', ...timing }, 'timeout'],
    ['send-expect, echoed', echo, sendExpect('ping\n', 'ping'), 'ok'],
    ['send-expect, answer split over writes', (s) => s.once('data', () => { s.write('+PO'); setImmediate(() => s.write('NG\r\n')); }), sendExpect('PING\r\n', '+PONG'), 'ok'],
    ['expect only (a greeting read)', (s) => s.write('\x0a5.5.5-MariaDB\0mysql_native_password\0'), sendExpect('', 'mysql_native_password'), 'ok'],
    ['accepts but never answers', () => {}, sendExpect('PING\r\n', '+PONG'), 'timeout'],
    ['answers the wrong bytes', (s) => s.once('data', () => s.write('-ERR wrong\r\n')), sendExpect('PING\r\n', '+PONG'), 'mismatch'],
    ['answers wrong bytes then closes', (s) => s.once('data', () => s.end('nope')), sendExpect('PING\r\n', '+PONG'), 'mismatch'],
    ['closes without answering', (s) => s.end(), sendExpect('PING\r\n', '+PONG'), 'closed'],
  ];
  for (const [what, handler, check, result] of cases) {
    it(`probe: ${what} → ${result}`, async () => {
      let port: number;
      if (handler === 'dead') port = await deadPort();
      else if (handler === 'blackhole') {
        const bh = await startBlackhole();
        cleanup.push(() => bh.close());
        port = bh.port;
      } else port = (await backend(handler)).port;
      const out = await deadline(2000, 'probe', probe('127.0.0.1', port, check));
      assert.equal(out.result, result, out.detail);
    });
  }

  it('a backend going dead-but-listening is judged unhealthy, then healthy again, with metrics', async () => {
    let answer = true;
    const b = await backend((s) => s.on('data', (d) => answer && s.write(d)));
    const registry = new Registry();
    const checker = new HealthChecker({ registry, log: silentLogger() });
    cleanup.push(() => checker.close());
    const verdicts: boolean[] = [];
    let notify: (() => void) | undefined;
    const next = (): Promise<void> => new Promise((r) => (notify = r));
    const target = { rt: 'r', dst: '/svc/x', host: '127.0.0.1', port: b.port, check: sendExpect('ping', 'ping') };
    let waiting = next();
    // Verdict changes only: every pass is reported too (the next test).
    checker.watch(target, (h) => { if (verdicts.at(-1) !== h) { verdicts.push(h); notify?.(); } });
    await deadline(2000, 'first verdict', waiting);
    assert.deepEqual(verdicts, [true]);
    answer = false;
    const t0 = performance.now();
    waiting = next();
    await deadline(2000, 'unhealthy verdict', waiting);
    const tookMs = performance.now() - t0;
    assert.deepEqual(verdicts, [true, false]);
    // Bound: unhealthyThreshold × intervalMs + timeoutMs (plus timer slack on a busy machine).
    assert.ok(tookMs <= timing.unhealthyThreshold * timing.intervalMs + timing.timeoutMs + 250, `took ${tookMs}ms`);
    answer = true;
    waiting = next();
    await deadline(2000, 'healthy again', waiting);
    assert.deepEqual(verdicts, [true, false, true]);
    const text = registry.render();
    for (const result of ['ok', 'timeout']) {
      assert.match(text, new RegExp(`l5d:healthcheck:checks\\{dst="/svc/x", endpoint="127.0.0.1:${b.port}", result="${result}", rt="r"\\} [1-9]`));
    }
    assert.match(text, new RegExp(`l5d:healthcheck:healthy\\{dst="/svc/x", endpoint="127.0.0.1:${b.port}", rt="r"\\} 1`));
  });

  it('a second watcher of the same target gets the known verdict and shares its checks; the last unwatch stops them', async () => {
    const b = await backend(() => {});
    const registry = new Registry();
    const checker = new HealthChecker({ registry, log: silentLogger() });
    cleanup.push(() => checker.close());
    // A name with a quote and a backslash: its metrics are found (escaped as rendered) and dropped too.
    const target = { rt: 'r', dst: '/svc/"y\\', host: '127.0.0.1', port: b.port, check: { kind: 'connect', ...timing } as const };
    const first = new Promise<boolean>((r) => checker.watch(target, r));
    assert.equal(await deadline(2000, 'first verdict', first), true);
    const second = await deadline(1000, 'known verdict', new Promise<boolean>((r) => {
      const stop = checker.watch(target, r);
      cleanup.push(stop);
    }));
    assert.equal(second, true);
    assert.equal(checker.size, 1, 'one set of checks for both watchers');
    assert.match(registry.render(), /l5d:healthcheck:healthy\{dst="\/svc\/\\"y\\\\"/);
    checker.close();
    assert.equal(checker.size, 0);
    assert.doesNotMatch(registry.render(), /l5d:healthcheck:/, 'metrics of unwatched targets are dropped');
  });

  it('every passing check reaches the listeners (passed: true), also when the verdict stays; a failing one that changes nothing does not', async () => {
    let answer = true;
    const b = await backend((s) => s.on('data', (d) => answer && s.write(d)));
    const checker = new HealthChecker({ registry: new Registry(), log: silentLogger() });
    cleanup.push(() => checker.close());
    const calls: [boolean, boolean][] = [];
    let notify: (() => void) | undefined;
    checker.watch({ rt: 'r', dst: '/svc/p', host: '127.0.0.1', port: b.port, check: sendExpect('ping', 'ping') }, (h, passed) => {
      calls.push([h, passed]);
      notify?.();
    });
    await deadline(3000, 'three passes', new Promise<void>((r) => (notify = () => calls.length >= 3 && r())));
    assert.deepEqual(calls.slice(0, 3), [[true, true], [true, true], [true, true]]);
    answer = false;
    await deadline(3000, 'the unhealthy verdict', new Promise<void>((r) => (notify = () => calls.at(-1)![0] === false && r())));
    // Two failures (unhealthyThreshold 2): only the second changed the verdict, so only it was told.
    assert.deepEqual(calls.slice(3), [[false, false]]);
  });

  it('two routers checking one destination name and endpoint: one series each (rt), neither summed into the other', async () => {
    const b = await backend(() => {});
    const registry = new Registry();
    const checker = new HealthChecker({ registry, log: silentLogger() });
    cleanup.push(() => checker.close());
    const check = { kind: 'connect', ...timing } as const;
    const passes = new Map<string, number>();
    let notify: (() => void) | undefined;
    const stops = ['a', 'b'].map((rt) => checker.watch({ rt, dst: '/svc/same', host: '127.0.0.1', port: b.port, check }, (_h, passed) => {
      if (passed) passes.set(rt, (passes.get(rt) ?? 0) + 1);
      notify?.();
    }));
    await deadline(3000, 'passes for both', new Promise<void>((r) => (notify = () => (passes.get('a') ?? 0) >= 2 && (passes.get('b') ?? 0) >= 2 && r())));
    assert.equal(checker.size, 2, 'each router has its own checks');
    const ok = (rt: string): number => Number(new RegExp(`l5d:healthcheck:checks\\{dst="/svc/same", endpoint="127.0.0.1:${b.port}", result="ok", rt="${rt}"\\} (\\d+)`).exec(registry.render())?.[1]);
    assert.ok(ok('a') >= 2 && ok('b') >= 2, registry.render());
    for (const rt of ['a', 'b']) assert.match(registry.render(), new RegExp(`l5d:healthcheck:healthy\\{dst="/svc/same", endpoint="127.0.0.1:${b.port}", rt="${rt}"\\} 1`));
    stops[0]!();
    assert.doesNotMatch(registry.render(), /rt="a"/, "router a's series go with its watch");
    assert.match(registry.render(), /l5d:healthcheck:healthy\{[^}]*rt="b"\} 1/, "router b's stay");
  });

  it('never more than one check in flight per endpoint, nor more than maxInFlight overall', async () => {
    let open = 0, maxOpen = 0, accepted = 0;
    const perBackend = new Map<number, number>();
    let maxPerBackend = 0;
    const backends: Backend[] = [];
    for (let i = 0; i < 5; i++) {
      const b = await backend((s) => {
        // Never answers: every check runs to its timeout, the worst case for overlap.
        accepted++;
        open++;
        maxOpen = Math.max(maxOpen, open);
        const n = (perBackend.get(i) ?? 0) + 1;
        perBackend.set(i, n);
        maxPerBackend = Math.max(maxPerBackend, n);
        // The checker's FIN (the backend is half-open: it never ends its side) or a reset.
        let gone = false;
        const done = (): void => { if (!gone) { gone = true; open--; perBackend.set(i, perBackend.get(i)! - 1); s.destroy(); } };
        s.on('end', done);
        s.on('close', done);
        s.resume();
      });
      backends.push(b);
    }
    const checker = new HealthChecker({ registry: new Registry(), log: silentLogger(), maxInFlight: 2 });
    cleanup.push(() => checker.close());
    let unhealthy = 0;
    const allDown = new Promise<void>((resolve) => {
      for (const b of backends) {
        checker.watch({ rt: 'r', dst: '/svc/z', host: '127.0.0.1', port: b.port, check: sendExpect('x', 'y') }, (h) => {
          if (!h && ++unhealthy === backends.length) resolve();
        });
      }
    });
    await deadline(5000, 'every endpoint judged unhealthy', allDown);
    assert.ok(accepted >= 10, `checks: ${accepted}`);
    assert.ok(maxOpen <= 2, `max checks in flight: ${maxOpen}`);
    assert.equal(maxPerBackend, 1);
  });
});
