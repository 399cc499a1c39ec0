// The server's connect deadline (connectTimeoutMs) passing while a backend is being dialled
// ends the connection with connect_timeout and blames only the endpoint being dialled, on
// both engines: it is not a per-attempt timeout that sends the connection to another
// endpoint (which the native engine's C deadline, a little earlier than JavaScript's, used
// to do: the second endpoint's attempt then failed at once, blamed too, toward ejection).
// On the native I/O threads too (`threads`), which report the attempt in flight.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { loadNative } from '../src/engine/native-binding.ts';
import { accessRecords, config, dial, type Engine, harness, inet, metric } from './conformance/support.ts';
import { deadline, peerClosed, startBlackhole } from './support/harness.ts';

const native = loadNative().kind === 'loaded' && process.env['LINKERD_TCP_ENGINE'] !== 'node';
const engines: Engine[] = native ? ['node', 'native', 'threads'] : ['node'];

for (const engine of engines) {
  describe(`connect deadline (${engine})`, () => {
    const h = harness(engine);

    it('the server deadline passing mid-connect closes with connect_timeout, one endpoint blamed per connection', async () => {
      const holes = [await startBlackhole(), await startBlackhole()];
      for (const hole of holes) h.cleanup.push(() => hole.close());
      // No per-attempt timeout: only the server's deadline can end these connects.
      const { proxy: p, port, admin } = await h.proxy(config(inet(holes[0]!.port, holes[1]!.port), { server: '\n    connectTimeoutMs: 300' }));
      // The drift was a race of sub-millisecond clocks: bursts (accepted in one loop turn, their
      // deadlines firing in one) at staggered moments give it many independent chances.
      const sizes = [1, 8, 2, 8, 4, 8, 1, 8, 2, 8, 4, 8];
      const n = sizes.reduce((a, b) => a + b);
      const clients: Socket[] = [];
      for (const size of sizes) {
        clients.push(...await Promise.all(Array.from({ length: size }, () => dial(port))));
        await new Promise((r) => setTimeout(r, 1 + Math.random() * 7));
      }
      await deadline(5000, 'every client closed', Promise.all(clients.map(peerClosed)));
      const recs = await p.waitForCount((l) => l.msg === 'connection closed' && l['log'] === 'access', n);
      assert.deepEqual(recs.map((r) => r['reason']), Array(n).fill('connect_timeout'));
      const failed = p.logs.filter((l) => l.msg === 'connect failed');
      assert.equal(failed.length, n, `one blamed endpoint per connection: ${failed.map((l) => `${String(l['endpoint'])} ${String(l['cause'])}`).join(', ')}`);
      assert.ok(failed.every((l) => l['cause'] === 'timeout'));
      // The endpoint each record names is the one blamed: nothing was dialled after it.
      assert.deepEqual(recs.map((r) => r['endpoint']).sort(), failed.map((l) => l['endpoint']).sort());
      assert.equal(accessRecords(p).length, n);
      const text = await (await fetch(`${admin}/metrics`)).text();
      assert.equal(metric(text, 'l5d:balancer:connection:failure{cause="timeout", dst="/svc/be", rt="t"}'), n);
      assert.equal(metric(text, 'l5d:balancer:connection:retries{dst="/svc/be", rt="t"}') ?? 0, 0);
      assert.equal(metric(text, `l5d:srv:connect:failure{cause="timeout", rt="t", srv_addr="127.0.0.1:${port}"}`), n, 'the server counts each as a connect timeout');
    });
  });
}
