// Logs and state a peer can grow (issue 20, item 6), on the real CLI. A namerd that answers
// `failed` with a 200 KB cause at every poll must not put 200 KB into each log line nor into
// /api/state, and must be warned about once, not at every poll. A dead endpoint that is its
// destination's only one flaps (ejected, revived at once because every endpoint is out) at
// every connection: 2 lines per connection before, now its first ejection and revival and
// one `endpoint flapping` summary with the counts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { deadline, deadPort, echo, type Proxy, startBackend, startProxy } from '../support/harness.ts';
import { NamerdDouble } from '../support/namerd-double.ts';

/** The longest a log line may be, and /api/state, whatever namerd says. */
const MAX_LINE_BYTES = 4096;
const MAX_STATE_BYTES = 16 * 1024;

type Line = Proxy['logs'][number];

async function adminUrl(p: Proxy): Promise<string> {
  return `http://${String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin'])}`;
}

/** Connects and waits for the proxy to close the connection (the backend refuses). */
async function refused(port: number): Promise<void> {
  const s = connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  await deadline(5000, 'the proxy to close a connection', once(s, 'close'));
}

describe('logs and state bounded against what peers send', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it('namerd answering `failed` with a 200 KB cause at every poll: every log line under 4 KiB, /api/state under 16 KiB, one warning', async (t) => {
    const backend = await startBackend(echo);
    const nd = await NamerdDouble.start();
    cleanup.push(() => backend.close(), () => nd.close());
    nd.set('default', '/svc/app', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: backend.port }] });
    const { proxy } = await startProxy(`
admin: {port: 0}
routers:
- label: nd
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "${nd.baseUrl}", namespace: default, periodSecs: 1}
  servers: [{port: 0, dstName: /svc/app}]
`);
    cleanup.push(() => proxy.stop('SIGKILL'));
    await proxy.waitForLog((l) => l.msg === 'endpoint added' && l['endpoint'] === `127.0.0.1:${backend.port}`);

    const cause = `java.lang.IllegalStateException: ${'x'.repeat(200_000)}`;
    nd.set('default', '/svc/app', { type: 'failed', cause });
    const failure = (l: Line): boolean => l.msg === 'namerd resolution failed';
    const polls = await proxy.waitForCount(failure, 3, 10_000, 'three polls answered with the failure');
    // Each is reported (debug after the first), with the cause cut short and a count of the rest.
    for (const l of polls) assert.match(String(l['reason']), /^namerd: java\.lang\.IllegalStateException: x+… \(\d+ bytes more\)$/);
    const warnings = proxy.logs.filter((l) => failure(l) && l['level'] === 40);
    assert.equal(new Set(warnings.map((l) => l['pid'])).size, warnings.length, 'one warning per process, not one per poll');

    const text = await (await fetch(`${await adminUrl(proxy)}/api/state`)).text();
    t.diagnostic(`/api/state: ${text.length} bytes; longest log line: ${Math.max(...proxy.logs.map((l) => JSON.stringify(l).length))} bytes`);
    assert.ok(text.length < MAX_STATE_BYTES, `/api/state is ${text.length} bytes`);
    assert.match(text, /"reason":"namerd: java\.lang\.IllegalStateException: x+… \(\d+ bytes more\)"/);
    for (const l of proxy.logs) {
      const n = JSON.stringify(l).length;
      assert.ok(n < MAX_LINE_BYTES, `a ${n}-byte log line: ${String(l.msg)}`);
    }
    assert.equal(proxy.stderr, '');
  });

  it('the only endpoint dead under 200 connections: 400 transitions, its first ejection and revival logged, then one `endpoint flapping` line with the counts', async (t) => {
    const dead = await deadPort();
    const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: r
  dtab: /svc/x => /$/inet/127.0.0.1/${dead};
  servers: [{port: 0, dstName: /svc/x}]
  client:
    kind: io.l5d.global
    failFast: {maxConsecutiveFailures: 1, failurePenaltySecs: 60}
`);
    cleanup.push(() => proxy.stop('SIGKILL'));
    const CONNECTIONS = 200;
    for (let i = 0; i < CONNECTIONS; i += 20) await Promise.all(Array.from({ length: 20 }, () => refused(port!)));
    await proxy.waitForCount((l) => l.msg === 'connection closed', CONNECTIONS);
    const metrics = await (await fetch(`${await adminUrl(proxy)}/metrics`)).text();
    // Every connect is refused, and each refusal ejects (one failure is enough) and revives it (the only endpoint).
    const refusals = Number(/^l5d:balancer:connection:failure\{cause="refused", dst="\/svc\/x", rt="r"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.equal(refusals, CONNECTIONS);

    // Closing the destination (SIGTERM) writes the summary its window still owes.
    assert.equal(await proxy.stop(), 0);
    const ofDead = (msg: string) => proxy.logs.filter((l) => l.msg === msg && l['endpoint'] === `127.0.0.1:${dead}`);
    const [ejected, revived, flapping] = [ofDead('endpoint ejected'), ofDead('endpoint revived'), ofDead('endpoint flapping')];
    t.diagnostic(`${refusals} ejections: ${ejected.length} ejected, ${revived.length} revived, ${flapping.length} flapping lines: ${JSON.stringify(flapping.map((l) => [l['ejections'], l['revivals'], l['state']]))}`);
    const pids = new Set(ejected.map((l) => l['pid']));
    assert.equal(ejected.length, pids.size, 'one ejection logged per process');
    assert.ok(revived.length <= pids.size, 'at most one revival logged per process');
    assert.equal(flapping.length, pids.size, 'one summary per process');
    assert.equal(flapping.reduce((n, l) => n + Number(l['ejections']), 0), refusals, 'the summaries count every ejection');
    assert.equal(flapping.reduce((n, l) => n + Number(l['revivals']), 0), refusals, 'and every revival');
    for (const l of flapping) assert.deepEqual([l['state'], l['windowSecs'], l['level']], ['available', 60, 40]);
  });
});
