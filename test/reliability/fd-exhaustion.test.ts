// File-descriptor exhaustion from the first instant: the CLI is started under `ulimit -n 64`
// with two workers (test/hostile.test.ts lowers one running process's limit with prlimit;
// this covers a limit inherited at start, the cluster, and the admin port meanwhile), then
// flooded with far more connections than it has descriptors. The excess must be closed and
// logged, no process may crash or spin, the admin port (the primary's own descriptors)
// must keep answering, and once the flood lets go, service must be normal again.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import { deadline, echo, Proxy, startBackend, writeConfig } from '../support/harness.ts';

/** Stops the proxy and removes the temp dir its config was written to (its last argument). */
async function dispose(proxy: { proc: ChildProcess; stop(signal: NodeJS.Signals): Promise<unknown> }): Promise<void> {
  await proxy.stop('SIGKILL');
  rmSync(dirname(String(proxy.proc.spawnargs.at(-1))), { recursive: true, force: true });
}

const LIMIT = 64;
const FLOOD = 300;

/** utime + stime of `pid`, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

describe('fd exhaustion', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it(`started under ulimit -n ${LIMIT} with 2 workers, ${FLOOD} connections at once: excess closed and logged, no crash or spin, admin answers, service resumes`, { timeout: 60_000 }, async (t) => {
    const [a, b] = [await startBackend(echo), await startBackend(echo)];
    cleanup.push(() => a.close(), () => b.close());
    const proxy = new Proxy([writeConfig(`
admin: {port: 0, graceSecs: 2}
routers:
- label: fd
  dtab: /svc/be => /$/inet/127.0.0.1/${a.port} & /$/inet/127.0.0.1/${b.port};
  servers: [{port: 0, dstName: /svc/be}]
  client:
    failFast: {maxConsecutiveFailures: 5, failurePenaltySecs: 60}
`)], { LINKERD_TCP_WORKERS: '2' }, { nofile: LIMIT });
    cleanup.push(() => dispose(proxy));
    const listening = await proxy.waitForCount((l) => l.msg === 'listening', 2, 20_000, 'both workers listening');
    const workerPids = [...new Set(listening.map((l) => Number(l['pid'])))];
    assert.equal(workerPids.length, 2, 'two worker processes');
    const port = Number(String(listening[0]!['srv']).split(':').pop());
    const [adminLine] = await proxy.waitForCount((l) => l.msg === 'admin listening', 1, 10_000, 'admin');
    const admin = `http://${String(adminLine!['admin'])}`;
    for (const pid of [proxy.proc.pid!, ...workerPids]) {
      assert.match(readFileSync(`/proc/${pid}/limits`, 'utf8'), new RegExp(`^Max open files\\s+${LIMIT}\\s`, 'm'), `pid ${pid} runs under the limit`);
    }

    // The flood: every connection sends a byte and waits for its echo, or for being closed.
    const flood: Socket[] = [];
    const open = (): Promise<'echoed' | 'closed'> => new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      flood.push(s);
      s.on('error', () => resolve('closed'));
      s.on('close', () => resolve('closed'));
      s.once('data', () => resolve('echoed'));
      s.write('x');
    });
    const outcomes = await deadline(20_000, 'every flood connection echoed or closed', Promise.all(Array.from({ length: FLOOD }, open)));
    const served = outcomes.filter((o) => o === 'echoed').length;
    t.diagnostic(`${FLOOD} connections under ${LIMIT} fds per worker: ${served} served and held open, ${FLOOD - served} closed by the proxy`);
    assert.ok(served > 0, 'nothing was served');
    assert.ok(served <= 2 * (LIMIT / 2), `${served} served: more than two workers' descriptors allow`);
    assert.ok(FLOOD - served >= FLOOD / 2, `only ${FLOOD - served} refused`);

    // Each worker notices and says so (the check runs once a second).
    const warned = await proxy.waitForCount((l) => String(l.msg).startsWith('open files at the limit'), 2, 10_000, 'both workers warn');
    assert.deepEqual(new Set(warned.map((l) => l['pid'])), new Set(workerPids));
    assert.ok(warned.every((l) => l['limit'] === LIMIT), 'the warning names the limit');

    // Saturated: the admin port, in the primary, still answers and shows the workers' fds.
    const ping = await fetch(`${admin}/ping`);
    assert.equal(await ping.text(), 'pong');
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    const fdLines = metrics.split('\n').filter((l) => /^process:(open|max)_fds\{worker=/.test(l));
    t.diagnostic(`while saturated: ${fdLines.join('; ')}`);
    assert.ok(fdLines.some((l) => /^process:max_fds\{worker="\d"\} 64$/.test(l)), 'the workers\' limit is in /metrics');

    // No busy loop while every descriptor is held and new connections keep arriving (each
    // is closed at once): under a fifth of a core for all three processes over one second.
    const pids = [proxy.proc.pid!, ...workerPids];
    const before = pids.map(cpuTicks);
    const extra = await Promise.all(Array.from({ length: 20 }, open));
    await new Promise((r) => setTimeout(r, 1000)); // the measurement window
    const ticks = pids.map((p, i) => cpuTicks(p) - before[i]!);
    t.diagnostic(`CPU ticks (1/100 s) in the saturated second: primary ${ticks[0]}, workers ${ticks.slice(1).join(', ')}; ${extra.filter((o) => o === 'closed').length} of 20 more connections closed`);
    assert.ok(ticks.reduce((x, y) => x + y, 0) < 20, `${ticks.join('+')} ticks in 1 s while saturated`);
    assert.ok(extra.filter((o) => o === 'closed').length >= 10, 'connections arriving at the limit were not closed');
    assert.equal(proxy.proc.exitCode, null, 'still running');
    assert.ok(!proxy.logs.some((l) => l.msg === 'worker exited; restarting'), 'a worker died');

    // What the proxy logged for the excess: one access record each, closed before any backend byte.
    const reasons = new Map<string, number>();
    for (const l of proxy.logs) if (l.msg === 'connection closed') reasons.set(String(l['reason']), (reasons.get(String(l['reason'])) ?? 0) + 1);
    t.diagnostic(`access-log reasons during the flood: ${JSON.stringify(Object.fromEntries(reasons))}`);
    const ejections = proxy.logs.filter((l) => l.msg === 'endpoint ejected').length;
    t.diagnostic(`endpoint ejected ${ejections} times, revived ${proxy.logs.filter((l) => l.msg === 'endpoint revived').length} times (both backends were healthy throughout)`);

    // The flood lets go: both workers clear, and fresh connections are proxied as usual.
    for (const s of flood) s.destroy();
    await proxy.waitForCount((l) => l.msg === 'open files back under the limit', 2, 10_000, 'both workers back under the limit');
    for (let i = 0; i < 10; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      let back = '';
      s.on('data', (d: Buffer) => (back += d.toString()));
      s.end(`after the flood ${i}`);
      await deadline(5000, 'echo after the flood', once(s, 'end'));
      assert.equal(back, `after the flood ${i}`);
      s.destroy();
    }
    assert.ok(!proxy.logs.some((l) => typeof l['level'] === 'number' && l['level'] >= 50), 'an error-level log line');
    assert.equal(proxy.stderr, '');
    assert.equal(await proxy.stop('SIGTERM'), 0);

    await t.test('healthy endpoints are not ejected for the proxy\'s own EMFILE', () => {
      assert.equal(ejections, 0, `${ejections} ejections of healthy endpoints`);
    });
  });
});
