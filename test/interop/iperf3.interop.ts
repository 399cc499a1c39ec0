// iperf3 through the proxy: forward, reverse (-R) and 4 parallel streams, 2 s each; every
// byte the sender wrote goes through the proxy, and the throughput is reported next to
// direct runs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Proxy } from '../support/harness.ts';
import { Cleanup, type Daemon, freePort, proxyConfig, report, runOk } from './support.ts';

interface Sum { bytes: number; bits_per_second: number; seconds: number }

/** The most bytes one stream can hold between iperf3's two ends: what the kernel lets the two
 * socket pairs buffer (the sender's and the proxy's send buffers, the proxy's and the
 * receiver's receive buffers: net.ipv4.tcp_wmem / tcp_rmem maxima, autotuned up to them), plus
 * the proxy's own (a 256 KiB pipe, or a 16 KiB copy buffer). A proxy that held more would be
 * keeping bytes it should have passed on. (A fixed 64 MiB bound failed once with 85 MiB in
 * flight over 4 streams where tcp_rmem allows 32 MiB per socket.) */
const maxOf = (file: string): number => Number(readFileSync(file, 'utf8').trim().split(/\s+/)[2]);
const IN_FLIGHT_PER_STREAM = 2 * maxOf('/proc/sys/net/ipv4/tcp_wmem') + 2 * maxOf('/proc/sys/net/ipv4/tcp_rmem') + 256 * 1024;
interface Result { end: { sum_sent: Sum; sum_received: Sum }; error?: string }

describe('iperf3 through the proxy', () => {
  const c = new Cleanup();
  let server: Daemon;
  let serverPort: number;
  let port: number;
  let proxy: Proxy;

  before(async () => {
    serverPort = await freePort();
    server = c.daemon('iperf3 -s', 'iperf3', ['-s', '-p', String(serverPort), '--bind', '127.0.0.1', '--forceflush']);
    await server.waitFor(/Server listening on/, 15_000);
    ({ proxy, port } = await c.proxy(proxyConfig(serverPort)));
  });
  after(() => c.run());

  async function iperf(p: number, extra: string[]): Promise<Result> {
    const r = await runOk('iperf3', ['-c', '127.0.0.1', '-p', String(p), '-t', '2', '-J', ...extra], { timeoutMs: 30_000 });
    const j = JSON.parse(r.stdout) as Result;
    assert.equal(j.error, undefined, j.error);
    return j;
  }
  const gbps = (s: Sum): string => (s.bits_per_second / 1e9).toFixed(2);

  // iperf3's sum_received is what the receiver had read when the sender's TEST_END arrived on
  // the control connection; through any proxy, data still buffered on the data connection
  // (in the proxy and two kernel socket pairs) is not counted, and iperf3 then closes the
  // data socket with it unread, which resets the connection (the proxy then drops the
  // chunk it was moving, up to one read buffer). Even direct, a gap often shows. So the
  // check is the chain receiver ≤ proxy ≤ sender, exact where nothing was reset, with the
  // proxy's side taken from its access log (the client's bytes read by the proxy forward,
  // the bytes it wrote to the client with -R), and a bounded in-flight gap.
  for (const [what, extra] of [['forward', []], ['reverse (-R)', ['-R']], ['4 streams (-P 4)', ['-P', '4']]] as [string, string[]][]) {
    it(`${what}: the bytes iperf3 sent went through the proxy; throughput > 0`, async (t) => {
      const before = proxy.logs.filter((l) => l.msg === 'connection closed').length;
      const j = await iperf(port, extra);
      const { sum_sent: sent, sum_received: received } = j.end;
      assert.ok(sent.bytes > 0 && sent.bits_per_second > 0, JSON.stringify(j.end));
      assert.ok(received.bytes > 0 && received.bits_per_second > 0, JSON.stringify(j.end));
      const reverse = extra.includes('-R');
      const streams = extra.includes('-P') ? 4 : 1;
      // The control connection plus one data connection per stream.
      const recs = (await proxy.waitForCount((l) => l.msg === 'connection closed', before + 1 + streams, 10_000)).slice(before);
      assert.equal(recs.length, 1 + streams);
      const bytes = (l: Record<string, unknown>): number => Number(l['rxBytes']) + Number(l['txBytes']);
      const data = [...recs].sort((a, b) => bytes(b) - bytes(a)).slice(0, streams);
      const control = recs.find((l) => !data.includes(l))!;
      assert.equal(control['reason'], 'done', JSON.stringify(control));
      const COOKIE = 37; // iperf3 opens each data connection with its 37-byte cookie
      const rx = data.reduce((n, l) => n + Number(l['rxBytes']), 0);
      const tx = data.reduce((n, l) => n + Number(l['txBytes']), 0);
      const viaProxy = reverse ? tx : rx - streams * COOKIE;
      assert.equal(reverse ? rx : tx, reverse ? streams * COOKIE : 0, 'nothing the other way but the cookies');
      assert.ok(received.bytes <= viaProxy && viaProxy <= sent.bytes, `received ${received.bytes} ≤ through the proxy ${viaProxy} ≤ sent ${sent.bytes}`);
      const clean = data.every((l) => l['reason'] === 'done');
      if (clean) assert.equal(viaProxy, sent.bytes);
      const gap = sent.bytes - received.bytes;
      assert.ok(gap >= 0 && gap <= streams * IN_FLIGHT_PER_STREAM, `in flight at TEST_END: ${gap} bytes (at most ${streams} × ${IN_FLIGHT_PER_STREAM})`);
      report(t, `iperf3 through the proxy, ${what}: ${gbps(received)} Gbit/s (${(sent.bytes / 1e9).toFixed(2)} GB sent in ${sent.seconds.toFixed(1)} s; ${(gap / 2 ** 20).toFixed(1)} MiB still in flight at the end; ${((sent.bytes - viaProxy) / 2 ** 10).toFixed(0)} KiB dropped at the reset; data connections closed: ${data.map((l) => l['reason']).join(',')})`);
    });
  }

  it('direct (baseline for the figures above)', async (t) => {
    for (const extra of [[], ['-R']]) {
      const j = await iperf(serverPort, extra);
      assert.ok(j.end.sum_received.bits_per_second > 0);
      report(t, `iperf3 direct, ${extra.length ? 'reverse' : 'forward'}: ${gbps(j.end.sum_received)} Gbit/s (${((j.end.sum_sent.bytes - j.end.sum_received.bytes) / 2 ** 20).toFixed(1)} MiB in flight at the end)`);
    }
  });
});
