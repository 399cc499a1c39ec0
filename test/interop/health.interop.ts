// Active health checks against real redis-servers (issue 16): a send-expect PING/+PONG check
// through the CLI; one redis stopped and started again (refused, then back), and one frozen
// with SIGSTOP (dead but listening: the kernel still accepts) and thawed. Clients through the
// proxy (redis-cli) never reach the one out of rotation.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Proxy } from '../support/harness.ts';
import { Cleanup, type Daemon, freePort, runOk, waitForPort } from './support.ts';

describe('health checks: redis-server under a PING/+PONG check', () => {
  const c = new Cleanup();
  const ports: number[] = [];
  const redis: Daemon[] = [];
  let proxy: Proxy;
  let port: number;
  const startRedis = async (i: number): Promise<void> => {
    const d = c.daemon(`redis-${i}`, 'redis-server', ['--port', String(ports[i]), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', c.tmpDir('redis')]);
    redis[i] = d;
    await d.waitFor(/Ready to accept connections/, 15_000);
    await waitForPort(ports[i]!, 5000);
  };
  const cli = (p: number, args: string[]) => runOk('redis-cli', ['-h', '127.0.0.1', '-p', String(p), ...args], { timeoutMs: 10_000 });
  const ep = (i: number) => `127.0.0.1:${ports[i]}`;
  const verdict = (msg: string, i: number) => (l: Record<string, unknown>) => l.msg === msg && l['endpoint'] === ep(i);

  before(async () => {
    for (let i = 0; i < 2; i++) ports.push(await freePort());
    for (let i = 0; i < 2; i++) await startRedis(i);
    // Tell the two apart: each holds its own name.
    for (let i = 0; i < 2; i++) await cli(ports[i]!, ['set', 'who', `redis-${i}`]);
    ({ proxy, port } = await c.proxy(`
admin: {port: 0, graceSecs: 1}
routers:
- label: interop
  dtab: /svc/be => /$/inet/127.0.0.1/${ports[0]} & /$/inet/127.0.0.1/${ports[1]};
  servers:
  - port: 0
    dstName: /svc/be
  client:
    healthCheck: {kind: send-expect, send: "PING\\r\\n", expect: "+PONG", intervalMs: 200, timeoutMs: 150, unhealthyThreshold: 2, healthyThreshold: 2}
`));
    for (let i = 0; i < 2; i++) await proxy.waitForLog(verdict('health check: first pass', i), 5000);
  });
  after(() => c.run());

  /** `n` GETs through the proxy; the names of the redis-servers that answered. */
  async function who(n: number): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let k = 0; k < n; k++) seen.add((await cli(port, ['get', 'who'])).stdout.trim());
    return seen;
  }

  it('both in rotation while both answer PONG', async () => {
    assert.deepEqual([...(await who(30))].sort(), ['redis-0', 'redis-1']);
  });

  it('redis stopped: out of rotation (refused) with no client error; started again: back', async () => {
    await redis[1]!.stop();
    const out = await proxy.waitForLog(verdict('endpoint unhealthy: health check failed', 1), 5000);
    assert.equal(out['result'], 'refused');
    assert.deepEqual([...(await who(20))], ['redis-0']);
    await startRedis(1);
    await cli(ports[1]!, ['set', 'who', 'redis-1']);
    await proxy.waitForLog(verdict('endpoint healthy: health check passed', 1), 5000);
    assert.deepEqual([...(await who(30))].sort(), ['redis-0', 'redis-1']);
  });

  it('redis frozen (SIGSTOP: dead but listening) leaves rotation on the checks alone within 2 × 200 + 150 ms; thawed, it returns', async () => {
    const unhealthyBefore = proxy.logs.filter(verdict('endpoint unhealthy: health check failed', 0)).length;
    const t0 = performance.now();
    process.kill(redis[0]!.proc.pid!, 'SIGSTOP');
    c.add(() => { try { process.kill(redis[0]!.proc.pid!, 'SIGCONT'); } catch { /* gone */ } });
    await proxy.waitForCount(verdict('endpoint unhealthy: health check failed', 0), unhealthyBefore + 1, 5000);
    const ms = performance.now() - t0;
    assert.ok(ms <= 2 * 200 + 150 + 250, `out of rotation after ${Math.round(ms)}ms`);
    assert.equal(proxy.logs.filter(verdict('endpoint unhealthy: health check failed', 0)).at(-1)!['result'], 'timeout');
    assert.deepEqual([...(await who(20))], ['redis-1'], 'no client was sent to the frozen one');
    process.kill(redis[0]!.proc.pid!, 'SIGCONT');
    await proxy.waitForCount(verdict('endpoint healthy: health check passed', 0), 1, 5000);
    assert.deepEqual([...(await who(30))].sort(), ['redis-0', 'redis-1']);
    assert.ok(!proxy.logs.some((l) => l.msg === 'connection closed' && l['reason'] !== 'done'), 'no client saw a failure');
  });
});
