// Active health checks and the rest of the proxy, through the real CLI (issue 21): a passing
// check ends a passive fail-fast ejection at once (as Envoy's
// successful_active_health_check_uneject_host and HAProxy's observe/on-error do), not after
// failurePenaltySecs; and two routers checking one destination name and endpoint export one
// l5d:healthcheck:* series each, labelled `rt`, instead of one shared series.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { type Backend, echo, type Proxy, startBackend, startProxy } from './support/harness.ts';
import { roundTrip } from './support/client.ts';

const CHECK = 'hc\n';
const adminOf = async (p: Proxy): Promise<string> => String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);

describe('health checks with fail-fast and routers', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  /** Echoes; counts client connections (first bytes other than the check's). */
  async function backend(port?: number): Promise<Backend & { clients: () => number }> {
    let clients = 0;
    const b = await startBackend((s: Socket) => {
      s.once('data', (d: Buffer) => {
        if (d.toString() !== CHECK) clients++;
        s.write(d);
        echo(s);
      });
    }, port === undefined ? {} : { port });
    cleanup.push(() => b.close());
    return Object.assign(b, { clients: () => clients });
  }

  it('a passing check ends a fail-fast ejection long before failurePenaltySecs', async () => {
    const a = await backend();
    let bad = await backend();
    const badPort = bad.port;
    // The check would need 100 failures in a row (50 s) to call the endpoint unhealthy: only
    // fail-fast ejects it here, and only a pass (or the hour's penalty) can end that.
    const { proxy: p, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: r
  dtab: /svc/x => /$/inet/127.0.0.1/${a.port} & /$/inet/127.0.0.1/${badPort};
  servers:
  - {port: 0, dstName: /svc/x}
  client:
    kind: io.l5d.global
    failFast: {maxConsecutiveFailures: 2, failurePenaltySecs: 3600}
    healthCheck: {kind: send-expect, send: "hc\\n", expect: "hc", intervalMs: 500, timeoutMs: 400, unhealthyThreshold: 100, healthyThreshold: 2}
`);
    cleanup.push(() => p.stop('SIGKILL'));
    const badKey = `127.0.0.1:${badPort}`;
    await p.waitForLog((l) => l.msg === 'health check: first pass' && l['endpoint'] === badKey, 5000, 'the first pass');

    await bad.close(); // refused from now on: real connects fail (and are retried on `a`)
    const ejected = (l: Record<string, unknown>): boolean => l.msg === 'endpoint ejected' && l['endpoint'] === badKey;
    for (let i = 0; i < 200 && !p.logs.some(ejected); i++) assert.equal(await roundTrip(port!, `c${i}`), `c${i}`);
    await p.waitForLog(ejected, 5000, 'the fail-fast ejection');

    bad = await backend(badPort); // listening again: the next check passes
    const revived = await p.waitForLog((l) => l.msg === 'endpoint revived' && l['endpoint'] === badKey, 10_000, 'the revival by a passing check');
    assert.equal(revived['by'], 'health check');
    for (let i = 0; i < 60 && bad.clients() === 0; i++) assert.equal(await roundTrip(port!, `again ${i}`), `again ${i}`);
    assert.ok(bad.clients() > 0, 'back in rotation within the penalty hour');
  });

  it('two routers checking one destination name and endpoint: a series each, labelled rt', async () => {
    const b = await backend();
    const router = (label: string) => `
- label: ${label}
  dtab: /svc/x => /$/inet/127.0.0.1/${b.port};
  servers:
  - {port: 0, dstName: /svc/x}
  client:
    kind: io.l5d.global
    healthCheck: {kind: send-expect, send: "hc\\n", expect: "hc", intervalMs: 300, timeoutMs: 250}`;
    const { proxy: p, ports } = await startProxy(`
admin: {port: 0}
routers:${router('a')}${router('b')}
`, 2);
    cleanup.push(() => p.stop('SIGKILL'));
    // Destinations are made by the first connection to each server.
    for (const port of ports) assert.equal(await roundTrip(port, 'hi'), 'hi');
    const firstPass = (rt: string) => (l: Record<string, unknown>): boolean => l.msg === 'health check: first pass' && l['rt'] === rt;
    await p.waitForLog(firstPass('a'), 5000, "router a's first pass");
    await p.waitForLog(firstPass('b'), 5000, "router b's first pass");
    const metrics = await (await fetch(`http://${await adminOf(p)}/metrics`)).text();
    const ep = `127.0.0.1:${b.port}`;
    for (const rt of ['a', 'b']) {
      assert.match(metrics, new RegExp(`l5d:healthcheck:healthy\\{dst="/svc/x", endpoint="${ep}", rt="${rt}"\\} 1\\n`));
      assert.match(metrics, new RegExp(`l5d:healthcheck:checks\\{dst="/svc/x", endpoint="${ep}", result="ok", rt="${rt}"\\} [1-9]`));
    }
    assert.doesNotMatch(metrics, new RegExp(`l5d:healthcheck:\\w+\\{dst="/svc/x", endpoint="${ep}"(, result="\\w+")?\\}`), 'no series without rt');
  });
});
