// Active health checks through the real CLI (issue 16): a backend that goes dead but keeps
// listening leaves rotation on the checks alone (no client sees it fail) and comes back;
// wrong answers; flapping; no checks when none is configured; one checker for several workers.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { type Backend, deadline, echo, type Proxy, startBackend, startProxy } from './support/harness.ts';
import { roundTrip } from './support/client.ts';

type Mode = 'ok' | 'silent' | 'wrong';
const CHECK = 'hc\n';

/** A backend whose answer to a check depends on `mode`; clients are always echoed unless silent. */
interface ModalBackend {
  readonly b: Backend;
  mode: Mode | (() => Mode);
  checks: number;
  clients: number;
  onCheck: (() => void) | undefined;
}

const adminOf = async (p: Proxy): Promise<string> => String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);

describe('active health checks', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  async function backend(mode: Mode = 'ok'): Promise<ModalBackend> {
    const m: ModalBackend = { b: undefined as unknown as Backend, mode, checks: 0, clients: 0, onCheck: undefined };
    const b = await startBackend((s: Socket) => {
      s.once('data', (d: Buffer) => {
        const isCheck = d.toString() === CHECK;
        const mode = typeof m.mode === 'function' ? m.mode() : m.mode;
        if (isCheck) {
          m.checks++;
          m.onCheck?.();
        } else m.clients++;
        if (mode === 'silent') return; // accepts, reads, never answers: dead but listening
        if (mode === 'wrong' && isCheck) return void s.end('nope\n');
        s.write(d);
        echo(s);
      });
    });
    (m as { b: Backend }).b = b;
    cleanup.push(() => b.close());
    return m;
  }

  async function proxy(ports: number[], healthCheck: string | undefined, extra = '', env: NodeJS.ProcessEnv = {}) {
    const dtab = ports.map((p) => `/$/inet/127.0.0.1/${p}`).join(' & ');
    const p = await startProxy(`
admin: {port: 0}${extra}
routers:
- label: r
  dtab: /svc/x => ${dtab};
  servers:
  - port: 0
    dstName: /svc/x
  client:
    kind: io.l5d.global${healthCheck ? `\n    healthCheck: ${healthCheck}` : ''}
`, 1, env);
    cleanup.push(() => p.proxy.stop('SIGKILL'));
    return p;
  }

  const HC = (over = '') => `{kind: send-expect, send: "hc\\n", expect: "hc", intervalMs: 300, timeoutMs: 250, unhealthyThreshold: 2, healthyThreshold: 2${over}}`;
  const unhealthy = (port: number) => (l: Record<string, unknown>) => l.msg === 'endpoint unhealthy: health check failed' && l['endpoint'] === `127.0.0.1:${port}`;
  const healthy = (port: number) => (l: Record<string, unknown>) => l.msg === 'endpoint healthy: health check passed' && l['endpoint'] === `127.0.0.1:${port}`;
  const firstPass = (port: number) => (l: Record<string, unknown>) => l.msg === 'health check: first pass' && l['endpoint'] === `127.0.0.1:${port}`;
  // With workers, the supervisor checks and logs the verdict, then sends it to each worker; a
  // scrape asks every worker over the same ordered channel, so once answered all have the verdict.
  const verdictDelivered = async (p: Proxy): Promise<void> => void (await fetch(`http://${await adminOf(p)}/metrics`)).text();

  it('a dead-but-listening backend leaves rotation at its unhealthyThreshold-th failed check, before any client sees it fail, and comes back', async () => {
    const a = await backend();
    const bad = await backend();
    const { proxy: p, ports: [port] } = await proxy([a.b.port, bad.b.port], HC());
    await p.waitForLog(firstPass(bad.b.port), 5000);
    bad.mode = 'silent';
    const line = await p.waitForLog(unhealthy(bad.b.port), 10_000, 'the unhealthy verdict');
    // Out at the unhealthyThreshold-th failed check in a row (so within unhealthyThreshold ×
    // intervalMs + timeoutMs of going silent), counted by the checker rather than timed by the
    // test: a wall-clock bound failed on a loaded machine.
    assert.equal(line['fails'], 2);
    assert.equal(line['result'], 'timeout');
    await verdictDelivered(p);
    const clientsBefore = bad.clients;
    for (let i = 0; i < 30; i++) assert.equal(await roundTrip(port!, `client ${i}`), `client ${i}`);
    assert.equal(bad.clients, clientsBefore, 'no new client connection reached the unhealthy endpoint');
    assert.ok(!p.logs.some((l) => l.msg === 'connection closed' && l['reason'] !== 'done'), 'no client saw a failure');

    const admin = await adminOf(p);
    const state = await (await fetch(`http://${admin}/api/state`)).json() as { routers: { destinations: { failed: number; endpoints: { key: string; state: string; cause: string | null; healthy: boolean | null }[] }[] }[] };
    const dst = state.routers[0]!.destinations[0]!;
    const ep = dst.endpoints.find((e) => e.key === `127.0.0.1:${bad.b.port}`)!;
    assert.deepEqual({ state: ep.state, cause: ep.cause, healthy: ep.healthy }, { state: 'failed', cause: 'health check', healthy: false });
    assert.equal(dst.failed, 1);
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    assert.match(metrics, new RegExp(`l5d:healthcheck:checks\\{dst="/svc/x", endpoint="127.0.0.1:${bad.b.port}", result="timeout", rt="r"\\} [2-9]`));
    assert.match(metrics, new RegExp(`l5d:healthcheck:healthy\\{dst="/svc/x", endpoint="127.0.0.1:${bad.b.port}", rt="r"\\} 0\\n`));
    assert.match(metrics, new RegExp(`l5d:healthcheck:healthy\\{dst="/svc/x", endpoint="127.0.0.1:${a.b.port}", rt="r"\\} 1\\n`));

    bad.mode = 'ok';
    const back = await p.waitForLog(healthy(bad.b.port), 5000, 'the healthy verdict');
    assert.equal(back['passes'], 2);
    for (let i = 0; i < 40 && bad.clients === clientsBefore; i++) assert.equal(await roundTrip(port!, `again ${i}`), `again ${i}`);
    assert.ok(bad.clients > clientsBefore, 'back in rotation');
  });

  it('a backend answering the wrong bytes is unhealthy (result "mismatch")', async () => {
    const a = await backend();
    const bad = await backend('wrong');
    const { proxy: p, ports: [port] } = await proxy([a.b.port, bad.b.port], HC());
    const line = await p.waitForLog(unhealthy(bad.b.port), 5000);
    assert.equal(line['result'], 'mismatch');
    await verdictDelivered(p);
    for (let i = 0; i < 20; i++) assert.equal(await roundTrip(port!, `c${i}`), `c${i}`);
    assert.equal(bad.clients, 0);
  });

  it('flapping: alternating answers never cross the thresholds; down/up cycles go out and back each time', async () => {
    const a = await backend();
    const flap = await backend();
    let n = 0;
    flap.mode = () => (n++ % 2 === 0 ? 'ok' : 'silent');
    const { proxy: p } = await proxy([a.b.port, flap.b.port], HC());
    await deadline(10_000, '10 checks', new Promise<void>((resolve) => (flap.onCheck = () => flap.checks >= 10 && resolve())));
    flap.onCheck = undefined;
    assert.ok(!p.logs.some(unhealthy(flap.b.port)), 'one failure between passes never ejects (unhealthyThreshold 2)');
    for (let cycle = 1; cycle <= 3; cycle++) {
      flap.mode = 'silent';
      await p.waitForCount(unhealthy(flap.b.port), cycle, 5000, `unhealthy #${cycle}`);
      flap.mode = 'ok';
      await p.waitForCount(healthy(flap.b.port), cycle, 5000, `healthy #${cycle}`);
    }
    const order = p.logs.filter((l) => unhealthy(flap.b.port)(l) || healthy(flap.b.port)(l)).map((l) => (unhealthy(flap.b.port)(l) ? 'U' : 'H')).join('');
    assert.equal(order, 'UHUHUH');
  });

  it('costs nothing when not configured: no check connection, no healthcheck metric', async () => {
    const a = await backend();
    const { proxy: p, ports: [port] } = await proxy([a.b.port], undefined);
    for (let i = 0; i < 10; i++) assert.equal(await roundTrip(port!, `c${i}`), `c${i}`);
    const metrics = await (await fetch(`http://${await adminOf(p)}/metrics`)).text();
    assert.doesNotMatch(metrics, /l5d:healthcheck:/);
    assert.equal(a.checks, 0);
    assert.equal(a.b.accepted, 10);
  });

  it('with two workers an endpoint is checked once per proxy (by the primary), and both workers honour the verdict', async () => {
    const a = await backend();
    const bad = await backend();
    const hc = '{kind: send-expect, send: "hc\\n", expect: "hc", intervalMs: 150, timeoutMs: 140, unhealthyThreshold: 2, healthyThreshold: 2}';
    const { proxy: p, ports: [port] } = await proxy([a.b.port, bad.b.port], hc, '\nworkers: 2', { LINKERD_TCP_WORKERS: '2' });
    await p.waitForCount((l) => l.msg === 'listening', 2, 45_000, 'two workers listening');
    // One checker: 15 checks take at least 14 × 120 ms (intervalMs less the jitter); two would take half that.
    await deadline(10_000, 'a first check', new Promise<void>((resolve) => (a.onCheck = resolve)));
    const start = a.checks;
    const t0 = performance.now();
    await deadline(10_000, '15 more checks', new Promise<void>((resolve) => (a.onCheck = () => a.checks - start >= 15 && resolve())));
    a.onCheck = undefined;
    const ms = performance.now() - t0;
    assert.ok(ms >= 14 * 120 - 20, `15 checks in ${Math.round(ms)}ms: more than one checker`);
    bad.mode = 'silent';
    await p.waitForLog(unhealthy(bad.b.port), 5000);
    assert.equal(p.logs.filter(unhealthy(bad.b.port)).length, 1, 'one verdict logged, by the primary');
    // Clients spread over both workers (SO_REUSEPORT): none reaches the unhealthy endpoint.
    const before = bad.clients;
    await deadline(10_000, 'both workers told', (async () => {
      for (;;) {
        const st = await (await fetch(`http://${await adminOf(p)}/api/state`)).json() as { routers: { destinations: { endpoints: { key: string; cause: string | null }[] }[] }[] };
        const ep = st.routers[0]?.destinations[0]?.endpoints.find((e) => e.key === `127.0.0.1:${bad.b.port}`);
        if (ep?.cause === 'health check') return;
        await new Promise((r) => setImmediate(r));
      }
    })());
    for (let i = 0; i < 40; i++) assert.equal(await roundTrip(port!, `w${i}`), `w${i}`);
    assert.equal(bad.clients, before);
  });
});
