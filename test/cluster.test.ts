// Several worker processes (`workers: 2`): both serve the same port, the admin server sums
// their metrics and state, a worker that dies is restarted, and SIGTERM drains them all.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { deadline, deadPort, echo, startBackend, startProxy } from './support/harness.ts';
import { roundTrip } from './support/client.ts';

describe('workers', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('share the port, sum their metrics, restart a dead worker, and drain on SIGTERM', { timeout: 60_000 }, async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { proxy: p, ports: [port] } = await startProxy(`
workers: 2
admin: {port: 0, graceSecs: 5}
routers:
- label: w
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - {port: 0, dstName: /svc}
`);
    cleanup.push(() => p.stop('SIGKILL'));
    const listening = await p.waitForCount((l) => l.msg === 'listening', 2);
    assert.equal(new Set(listening.map((l) => l['pid'])).size, 2, 'two worker processes');
    assert.equal(new Set(listening.map((l) => l['srv'])).size, 1, 'on one port');
    const admin = `http://${String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin'])}`;
    await p.waitForCount((l) => l.msg === 'endpoint added', 2); // each worker resolved its destination
    assert.equal((await fetch(`${admin}/ready`)).status, 200);

    const n = 60;
    for (let i = 0; i < n; i++) assert.equal(await roundTrip(port!, `m${i}`), `m${i}`);
    const closed = await p.waitForCount((l) => l.msg === 'connection closed', n);
    assert.equal(new Set(closed.map((l) => l['pid'])).size, 2, 'both workers served connections');
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    assert.match(metrics, new RegExp(`l5d:srv:accepts\\{rt="w", srv_addr="127\\.0\\.0\\.1:${port}"\\} ${n}\\n`));
    // Each worker's own process figures, by worker, beside the primary's.
    for (const w of ['1', '2']) assert.match(metrics, new RegExp(`^process:rss_bytes\\{worker="${w}"\\} [1-9]\\d+$`, 'm'));
    assert.match(metrics, /^process:rss_bytes [1-9]\d+$/m);
    // The workers' series and the primary's in one text: each family typed and documented once.
    for (const kind of ['HELP', 'TYPE']) {
      const names = metrics.split('\n').filter((l) => l.startsWith(`# ${kind} `)).map((l) => l.split(' ')[2]);
      assert.deepEqual(names, [...new Set(names)], `one ${kind} per family`);
    }
    assert.equal(metrics.split('\n').filter((l) => l === '# TYPE process:rss_bytes gauge').length, 1);
    assert.equal(metrics.split('\n').filter((l) => l === '# TYPE l5d:srv:accepts counter').length, 1);
    const state = await (await fetch(`${admin}/api/state`)).json() as { servers: { accepts: number }[] };
    assert.equal(state.servers.length, 1);
    assert.equal(state.servers[0]!.accepts, n);

    // Kill one worker: it is restarted and service continues.
    const victim = Number(listening[0]!['pid']);
    process.kill(victim, 'SIGKILL');
    await p.waitForLog((l) => l.msg === 'worker exited; restarting' && l['workerPid'] === victim);
    await p.waitForCount((l) => l.msg === 'listening', 3);
    for (let i = 0; i < 10; i++) assert.equal(await roundTrip(port!, `after ${i}`), `after ${i}`);

    p.proc.kill('SIGTERM');
    assert.equal(await deadline(15_000, 'exit', p.exited), 0);
  });

  it('start again on the same port right after serving, its connections still in TIME_WAIT there', { timeout: 60_000 }, async () => {
    const b = await startBackend((s) => s.end('bye')); // the backend closes first, so the proxy closes its client first
    cleanup.push(() => b.close());
    const port = await deadPort();
    const config = `
workers: 2
admin: {port: 0}
routers:
- label: w
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - {port: ${port}, dstName: /svc}
`;
    const first = await startProxy(config);
    cleanup.push(() => first.proxy.stop('SIGKILL'));
    // The client sends nothing and closes only after the proxy's FIN: the proxy closes first.
    const hear = async (): Promise<string> => {
      const c = connect(port, '127.0.0.1');
      let got = '';
      c.on('data', (d: Buffer) => { got += d.toString(); });
      await deadline(5000, 'the backend\'s bye', once(c, 'close'));
      return got;
    };
    for (let i = 0; i < 10; i++) assert.equal(await hear(), 'bye');
    first.proxy.proc.kill('SIGTERM');
    assert.equal(await deadline(15_000, 'exit', first.proxy.exited), 0);
    // TIME_WAIT (state 06) sockets on the port: what a plain bind (no SO_REUSEADDR) refuses.
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    // Fields: sl, local, remote, state (sl is right-aligned in 4 columns, wider past 9999 sockets).
    const timeWait = readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
      .filter((f) => f[1]?.endsWith(`:${hex}`) && f[3] === '06');
    assert.ok(timeWait.length > 0, 'the first proxy left connections in TIME_WAIT on its port');
    const again = await startProxy(config);
    cleanup.push(() => again.proxy.stop('SIGKILL'));
    assert.equal(await hear(), 'bye');
  });
});
