// Redis through the proxy: redis-benchmark (SET/GET, plain and pipelined), redis-cli
// commands, and a 1 MiB binary value stored through the proxy and read back both through
// it and directly from redis-server.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Proxy } from '../support/harness.ts';
import { Cleanup, freePort, proxyConfig, report, runOk, waitForPort } from './support.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** `SET: 12345.67 requests per second, …` lines of `redis-benchmark -q` (progress lines end in \r). */
function rates(out: string): Record<string, number> {
  const r: Record<string, number> = {};
  for (const line of out.split(/[\r\n]+/)) {
    const m = /^(\w+): ([\d.]+) requests per second/.exec(line);
    if (m) r[m[1]!] = Number(m[2]);
  }
  return r;
}

describe('redis through the proxy', () => {
  const c = new Cleanup();
  let redisPort: number;
  let port: number;
  let proxy: Proxy;
  const cli = (p: number, args: string[], input?: Buffer): ReturnType<typeof runOk> =>
    runOk('redis-cli', ['-h', '127.0.0.1', '-p', String(p), ...args], { timeoutMs: 30_000, ...(input ? { input } : {}) });

  before(async () => {
    redisPort = await freePort();
    const dir = c.tmpDir('redis');
    const redis = c.daemon('redis-server', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
    await redis.waitFor(/Ready to accept connections/, 15_000);
    await waitForPort(redisPort, 5000);
    ({ proxy, port } = await c.proxy(proxyConfig(redisPort)));
  });
  after(() => c.run());

  it('redis-cli: SET k v, GET k → v, through the proxy; the value is in redis-server', async () => {
    assert.equal((await cli(port, ['ping'])).stdout.trim(), 'PONG');
    assert.equal((await cli(port, ['set', 'k', 'v'])).stdout.trim(), 'OK');
    assert.equal((await cli(port, ['get', 'k'])).stdout.trim(), 'v');
    assert.equal((await cli(redisPort, ['get', 'k'])).stdout.trim(), 'v', 'read directly from redis-server');
  });

  it('redis-benchmark -n 20000 -c 20 -t set,get (and pipelined -P 16): both report requests/s', async (t) => {
    for (const pipeline of ['1', '16']) {
      const r = await runOk('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-n', '20000', '-c', '20', '-P', pipeline, '-t', 'set,get', '-q'], { timeoutMs: 60_000 });
      const rate = rates(r.stdout);
      assert.ok((rate['SET'] ?? 0) > 0 && (rate['GET'] ?? 0) > 0, `SET and GET rates: ${JSON.stringify(r.stdout)}`);
      report(t, `redis-benchmark through the proxy (-c 20${pipeline === '1' ? '' : ` -P ${pipeline}`}): SET ${rate['SET']} req/s, GET ${rate['GET']} req/s`);
    }
    // Every benchmark connection went through the proxy and closed cleanly.
    const closed = proxy.logs.filter((l) => l.msg === 'connection closed');
    assert.ok(closed.length >= 40, `access-log records: ${closed.length}`);
    assert.deepEqual([...new Set(closed.map((l) => l['reason']))], ['done']);
  });

  it('redis-benchmark directly (baseline for the figures above)', async (t) => {
    const r = await runOk('redis-benchmark', ['-h', '127.0.0.1', '-p', String(redisPort), '-n', '20000', '-c', '20', '-t', 'set,get', '-q'], { timeoutMs: 60_000 });
    const rate = rates(r.stdout);
    assert.ok((rate['SET'] ?? 0) > 0 && (rate['GET'] ?? 0) > 0, r.stdout);
    report(t, `redis-benchmark direct (-c 20): SET ${rate['SET']} req/s, GET ${rate['GET']} req/s`);
  });

  it('a 1 MiB binary value: SET -x through the proxy, GET back intact through the proxy and directly', async () => {
    const value = randomBytes(1 << 20);
    assert.equal((await cli(port, ['-x', 'set', 'big'], value)).stdout.trim(), 'OK');
    assert.equal((await cli(port, ['strlen', 'big'])).stdout.trim(), String(value.length));
    for (const p of [port, redisPort]) {
      const got = (await cli(p, ['--raw', 'get', 'big'])).out;
      // --raw prints the bulk string as is, then a newline.
      assert.equal(got.length, value.length + 1, `port ${p}`);
      assert.equal(sha(got.subarray(0, value.length)), sha(value), `port ${p}`);
    }
  });
});
