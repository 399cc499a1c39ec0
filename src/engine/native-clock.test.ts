// The native engine's times, end to end (issue 20, item 9): connect latency and durations in
// the access log, /metrics and the /api/state window are never negative. Those times once
// mixed the addon's clock with performance.now() through an offset estimated around `init`,
// off by half the call's duration; here `init` is slowed on purpose (a wrapper around the real
// binding), so such an offset would be 25 ms early and every loopback connect negative. Real
// addon, real sockets; its own file, since the engine is initialised once per process.
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { deadline, echo, startBackend } from '../../test/support/harness.ts';
import type { ServerConfig } from '../config/types.ts';
import type { Interpreter } from '../interpreter/interpreter.ts';
import { createLogger } from '../log.ts';
import { Registry } from '../metrics/registry.ts';
import type { Resolution } from '../naming/resolution.ts';
import { Router } from '../router/router.ts';
import { loadNative, type NativeBinding } from './native-binding.ts';
import { NativeEngine } from './native-engine.ts';
import { NativeServer } from './native-server.ts';

const load = loadNative();
const SLOW_INIT_MS = 50;
const DONE = 60, HELD = 10;

describe('native engine clock', { skip: load.kind !== 'loaded' ? 'addon not built' : false }, () => {
  if (load.kind !== 'loaded') return;
  const real = load.binding;
  // The addon's functions are non-writable properties: an own `init` on an object that inherits the rest.
  const slow = Object.create(real, {
    init: {
      value: (onBatch: (n: number) => void) => {
        const until = performance.now() + SLOW_INIT_MS;
        while (performance.now() < until); // a slow first call into the addon (page faults, GC, a loaded machine)
        return real.init(onBatch);
      },
    },
  }) as NativeBinding;
  const engine = new NativeEngine(slow);
  const cleanup: (() => unknown)[] = [];
  after(async () => { for (const f of cleanup.reverse()) await f(); });

  it('keeps connectMs, durations and latency stats >= 0, and connectMs <= durationMs', async () => {
    const lines: Record<string, unknown>[] = [];
    let wake: (() => void) | undefined;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        wake?.();
        done();
      },
    });
    const access = (): Record<string, unknown>[] => lines.filter((l) => l['log'] === 'access');
    const accessCount = (n: number): Promise<void> => new Promise<void>((resolve) => {
      wake = () => { if (access().length >= n) resolve(); };
      wake();
    });

    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const registry = new Registry();
    const log = createLogger('info', sink);
    let push: ((r: Resolution) => void) | undefined;
    const interpreter: Interpreter = { watch: (_dst, cb) => ((push = cb), { close: () => {} }), close: async () => {} };
    const router = new Router({ label: 'rt', interpreter, registry, log, client: { kind: 'io.l5d.global' }, highWaterMark: 16384 });
    cleanup.push(() => router.close());
    const config: ServerConfig = {
      ip: '127.0.0.1', port: 0, dstName: '/svc/echo', connectTimeoutMs: 2000, connectionLifetimeSecs: undefined,
      idleTimeoutMs: undefined, maxConcurrency: 1000, tls: undefined,
    };
    const server = new NativeServer({ config, router, registry, log, engine });
    await server.listen();
    cleanup.push(() => server.close());
    server.prepare();
    push!({ kind: 'bound', endpoints: [{ host: '127.0.0.1', port: be.port, weight: 1 }] });

    // Closed by the engine (both FINs: an OUT_CLOSED record's time), ten at a time.
    for (let i = 0; i < DONE; i += 10) {
      await Promise.all(Array.from({ length: 10 }, async () => {
        const c = connect(server.port, '127.0.0.1');
        c.on('error', () => {});
        const got: Buffer[] = [];
        c.on('data', (d: Buffer) => got.push(d));
        c.end('ping');
        await deadline(5000, 'echo and FIN', once(c, 'end'));
        assert.equal(Buffer.concat(got).toString(), 'ping');
        c.destroy();
      }));
    }
    await deadline(5000, `${DONE} access-log records`, accessCount(DONE));
    // Closed from JavaScript (a drain's cut: the close time is read in JavaScript).
    const held = Array.from({ length: HELD }, () => {
      const c = connect(server.port, '127.0.0.1');
      c.on('error', () => {});
      c.write('x');
      cleanup.push(() => c.destroy());
      return once(c, 'data');
    });
    await deadline(5000, 'held connections echo', Promise.all(held));
    server.stopAccepting();
    await deadline(5000, 'drain', server.drain(Date.now()));
    await deadline(5000, `${DONE + HELD} access-log records`, accessCount(DONE + HELD));

    const recs = access();
    assert.equal(recs.length, DONE + HELD);
    assert.deepEqual(recs.reduce<Record<string, number>>((m, r) => ((m[String(r['reason'])] = (m[String(r['reason'])] ?? 0) + 1), m), {}), { done: DONE, shutdown: HELD });
    for (const r of recs) {
      const connectMs = r['connectMs'] as number, durationMs = r['durationMs'] as number;
      assert.ok(typeof connectMs === 'number' && connectMs >= 0, `connectMs ${connectMs} (${JSON.stringify(r)})`);
      assert.ok(durationMs >= connectMs, `durationMs ${durationMs} < connectMs ${connectMs}`);
    }

    // /api/state's window (p50/p99 come from these samples) and /metrics' last interval.
    const window = server.metrics.connectLatencyUs.window!.recent();
    assert.equal(window.length, DONE + HELD);
    assert.ok(window.every((us) => us >= 0), `connect latency samples ${window.filter((us) => us < 0).join(', ')}`);
    registry.snapshot();
    const mins = registry.render().split('\n').filter((l) => /^[^#].*(latency_us|duration_ms)_min[{ ]/.test(l));
    assert.ok(mins.length >= 3, mins.join('\n')); // srv connect latency, srv and balancer durations
    for (const l of mins) assert.ok(Number(l.slice(l.lastIndexOf(' ') + 1)) >= 0, l);
  });
});
