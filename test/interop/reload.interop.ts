// The issue's "done when" for live reload: redis-benchmark and iperf3 keep running through
// the proxy while the config is edited and reloaded with SIGHUP twice (a server added, the
// router's client settings changed, the server removed again), and neither sees an error;
// /api/state then shows the hash of the file last loaded.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Proxy } from '../support/harness.ts';
import { Cleanup, freePort, report, run, waitForPort } from './support.ts';

describe('live reload under redis-benchmark and iperf3', () => {
  const c = new Cleanup();
  let proxy: Proxy;
  let file: string;
  const ports: Record<'redis' | 'iperf' | 'pRedis' | 'pIperf' | 'pExtra', number> = { redis: 0, iperf: 0, pRedis: 0, pIperf: 0, pExtra: 0 };
  const config = (extraServer: boolean, connectTimeoutMs: number): string => `
admin: {port: 0, graceSecs: 5}
routers:
- label: interop
  dtab: /svc/redis => /$/inet/127.0.0.1/${ports.redis}; /svc/iperf => /$/inet/127.0.0.1/${ports.iperf};
  servers:
  - {port: ${ports.pRedis}, dstName: /svc/redis}
  - {port: ${ports.pIperf}, dstName: /svc/iperf}${extraServer ? `\n  - {port: ${ports.pExtra}, dstName: /svc/redis}` : ''}
  client: {connectTimeoutMs: ${connectTimeoutMs}}
`;

  before(async () => {
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    const redis = c.daemon('redis-server', 'redis-server', ['--port', String(ports.redis), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', c.tmpDir('redis')]);
    await redis.waitFor(/Ready to accept connections/, 15_000);
    await waitForPort(ports.redis, 5000);
    const iperf = c.daemon('iperf3 -s', 'iperf3', ['-s', '-p', String(ports.iperf), '--bind', '127.0.0.1', '--forceflush']);
    await iperf.waitFor(/Server listening on/, 15_000);
    ({ proxy } = await c.proxy(config(false, 1000)));
    file = proxy.proc.spawnargs.at(-1)!;
  });
  after(() => c.run());

  it('both tools finish without an error while SIGHUP applies two config edits', async (t) => {
    const bench = run('redis-benchmark', ['-h', '127.0.0.1', '-p', String(ports.pRedis), '-n', '200000', '-c', '20', '-t', 'set,get', '-q'], { timeoutMs: 120_000 });
    const iperf = run('iperf3', ['-c', '127.0.0.1', '-p', String(ports.pIperf), '-t', '4', '-J'], { timeoutMs: 60_000 });
    // Both are connected through the proxy before the first reload.
    const opened = (dst: string) => (l: Record<string, unknown>) => l.msg === 'connecting' && l['dst'] === dst;
    await proxy.waitForCount(opened('/svc/redis'), 20, 20_000, 'redis-benchmark connected');
    await proxy.waitForCount(opened('/svc/iperf'), 2, 20_000, 'iperf3 connected');
    const reloaded = (n: number) => proxy.waitForCount((l) => l.msg === 'config reloaded' || l.msg === 'config reload failed', n, 20_000, `reload ${n}`);
    writeFileSync(file, config(true, 2000));
    proxy.proc.kill('SIGHUP');
    assert.equal((await reloaded(1)).at(-1)!.msg, 'config reloaded');
    await waitForPort(ports.pExtra, 5000);
    writeFileSync(file, config(false, 3000));
    proxy.proc.kill('SIGHUP');
    assert.equal((await reloaded(2)).at(-1)!.msg, 'config reloaded');
    const [b, i] = await Promise.all([bench, iperf]);
    assert.equal(b.code, 0, b.stderr);
    const rates = [...b.stdout.matchAll(/^(\w+): ([\d.]+) requests per second/gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.equal(rates.length, 2, b.stdout);
    assert.equal(i.code, 0, i.stderr);
    const j = JSON.parse(i.stdout) as { error?: string; end: { sum_received: { bits_per_second: number } } };
    assert.equal(j.error, undefined);
    report(t, `through two reloads: redis-benchmark ${rates.join(', ')} req/s; iperf3 ${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`);
    // Every redis-benchmark connection ended cleanly (iperf3 resets its data sockets itself).
    const redisClosed = proxy.logs.filter((l) => l.msg === 'connection closed' && l['dst'] === '/svc/redis');
    assert.ok(redisClosed.length >= 20);
    assert.deepEqual([...new Set(redisClosed.map((l) => l['reason']))], ['done']);
    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const st = await (await fetch(`http://${admin}/api/state`)).json() as { config: { hash: string } };
    assert.equal(st.config.hash, createHash('sha256').update(readFileSync(file)).digest('hex'));
  });
});
