// A hostile "namerd" in front of the real CLI, polled by one router and watched by another:
// bytes that are not HTTP, a response head that never ends, a chunked body that never ends,
// a connection accepted and left silent. (test/namerd.test.ts feeds the interpreter alone
// HTTP-level garbage; this is the whole proxy, at the byte level, in both modes.) Each
// failure must be logged with its cause and counted, traffic must keep flowing to the last
// good endpoints, and a good answer afterwards must be followed at once.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import { deadline, echo, type Proxy, startBackend, startProxy } from '../support/harness.ts';
import { seeded } from '../support/random.ts';

/** Stops the proxy and removes the temp dir its config was written to (its last argument). */
async function dispose(proxy: { proc: ChildProcess; stop(signal: NodeJS.Signals): Promise<unknown> }): Promise<void> {
  await proxy.stop('SIGKILL');
  rmSync(dirname(String(proxy.proc.spawnargs.at(-1))), { recursive: true, force: true });
}

type Mode = { kind: 'good'; port: number } | { kind: 'not-http' } | { kind: 'endless-head' } | { kind: 'endless-body' } | { kind: 'silent' };

/** A raw TCP server that speaks (or mangles) namerd's HTTP API according to `mode`. */
class HostileNamerd {
  mode: Mode = { kind: 'silent' };
  private readonly server = createServer((s) => this.accept(s));
  private readonly sockets = new Set<Socket>();
  private readonly goodStreams = new Set<Socket>();
  private readonly rnd = seeded(7);
  private goodWatchListeners: (() => void)[] = [];

  static async start(): Promise<HostileNamerd> {
    const n = new HostileNamerd();
    n.server.listen(0, '127.0.0.1');
    await once(n.server, 'listening');
    return n;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Switches behaviour. Open good watch streams get the new answer (good) or a clean end, as namerd restarting would. */
  set(mode: Mode): void {
    this.mode = mode;
    for (const s of this.goodStreams) {
      if (mode.kind === 'good') s.write(chunk(bound(mode.port)));
      else {
        s.end('0\r\n\r\n');
        this.goodStreams.delete(s);
      }
    }
  }

  /** Resolves when a watch request has been answered with a good first line (after this call). */
  nextGoodWatch(): Promise<void> {
    return new Promise((resolve) => this.goodWatchListeners.push(resolve));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(s: Socket): void {
    this.sockets.add(s);
    s.on('error', () => {});
    const timers: NodeJS.Timeout[] = [];
    s.on('close', () => {
      this.sockets.delete(s);
      this.goodStreams.delete(s);
      for (const t of timers) clearInterval(t);
    });
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      s.resume();
      const watch = /[?&]watch=true/.test(head.split('\r\n')[0]!);
      const m = this.mode;
      switch (m.kind) {
        case 'good': {
          const body = bound(m.port);
          if (!watch) {
            s.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
            return;
          }
          s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(body)}`);
          this.goodStreams.add(s);
          const ls = this.goodWatchListeners;
          this.goodWatchListeners = [];
          for (const l of ls) l();
          return;
        }
        case 'not-http': {
          const junk = Buffer.alloc(4096);
          for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(this.rnd() * 256);
          s.end(junk);
          return;
        }
        case 'endless-head':
          s.write(`HTTP/1.1 200 OK\r\n${`X-Pad: ${'a'.repeat(1024)}\r\n`.repeat(20)}`); // past 16 KiB at once, then more forever
          timers.push(setInterval(() => s.write(`X-Pad: ${'a'.repeat(1024)}\r\n`), 5));
          return;
        case 'endless-body':
          // 1.5 MiB at once (over the limit well within requestTimeoutMs, even on a loaded machine), then more forever.
          s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('['.repeat(3 << 19))}`);
          timers.push(setInterval(() => s.write(chunk('['.repeat(64 << 10))), 5));
          return;
        case 'silent':
          return;
      }
    };
    s.on('data', onData);
  }
}

const bound = (port: number): string => `{"type":"bound","addrs":[{"ip":"127.0.0.1","port":${port},"meta":{}}],"meta":{}}\n`;
const chunk = (text: string): string => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

/** Sends `msg`, half-closes, and returns what came back. */
async function roundTrip(port: number, msg: string): Promise<string> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString()));
  s.end(msg);
  await deadline(5000, `round trip ${msg}`, once(s, 'end'));
  s.destroy();
  return got;
}

describe('hostile namerd', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it('not HTTP, an endless head, an endless body, silence: each logged and counted, last endpoints kept, both in poll and watch mode; then a good answer is followed', { timeout: 60_000 }, async (t) => {
    const a = await startBackend(echo), b = await startBackend(echo);
    const namerd = await HostileNamerd.start();
    cleanup.push(() => a.close(), () => b.close(), () => namerd.close());
    namerd.set({ kind: 'good', port: a.port });
    const interp = (extra: string): string => `{kind: io.l5d.namerd.http, baseUrl: "${namerd.baseUrl}", namespace: default, periodSecs: 1, requestTimeoutMs: 300${extra}}`;
    const { proxy, ports: [pollPort, watchPort] } = await startProxy(`
admin: {port: 0}
routers:
- label: poll
  interpreter: ${interp('')}
  servers: [{port: 0, dstName: /svc/poll}]
- label: watch
  interpreter: ${interp(', watch: true')}
  servers: [{port: 0, dstName: /svc/watch}]
`, 2);
    cleanup.push(() => dispose(proxy));
    const added = (p: Proxy, rt: string, port: number) => p.waitForLog((l) => l.msg === 'endpoint added' && l['rt'] === rt && l['endpoint'] === `127.0.0.1:${port}`, 10_000, `${rt}: endpoint ${port}`);
    await Promise.all([added(proxy, 'poll', a.port), added(proxy, 'watch', a.port)]);
    const failures = (dst: string) => (l: { msg?: string; [k: string]: unknown }) => l.msg === 'namerd resolution failed' && l['dst'] === dst;

    const cases: [Mode, RegExp][] = [
      [{ kind: 'not-http' }, /namerd request failed: HPE_/],
      [{ kind: 'endless-head' }, /namerd request failed: HPE_HEADER_OVERFLOW/],
      [{ kind: 'endless-body' }, /over 1048576 bytes/],
      [{ kind: 'silent' }, /no answer from namerd within 300ms/],
    ];
    for (const [mode, reason] of cases) {
      const seen = { poll: proxy.logs.filter(failures('/svc/poll')).length, watch: proxy.logs.filter(failures('/svc/watch')).length };
      namerd.set(mode); // the open watch stream ends cleanly: the watcher reconnects into the trouble
      const [pollFail, watchFail] = await Promise.all([
        proxy.waitForCount(failures('/svc/poll'), seen.poll + 1, 10_000),
        proxy.waitForCount(failures('/svc/watch'), seen.watch + 1, 10_000),
      ]);
      const reasons = [pollFail.at(-1)!['reason'], watchFail.at(-1)!['reason']].map(String);
      t.diagnostic(`${mode.kind}: poll → ${reasons[0]}; watch → ${reasons[1]}`);
      for (const r of reasons) assert.match(r, reason, mode.kind);
      // Traffic still goes to the last good endpoint, in both routers.
      assert.equal(await roundTrip(pollPort!, `poll during ${mode.kind}`), `poll during ${mode.kind}`);
      assert.equal(await roundTrip(watchPort!, `watch during ${mode.kind}`), `watch during ${mode.kind}`);
      // namerd heals; the watcher gets a good stream again (its backoff starts over).
      const healed = namerd.nextGoodWatch();
      namerd.set({ kind: 'good', port: a.port });
      await deadline(10_000, 'the watcher back on a good stream', healed);
    }
    assert.equal(a.accepted, 2 * cases.length);
    assert.ok(!proxy.logs.some((l) => l.msg === 'endpoint removed'), 'an endpoint was dropped on a failure');

    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    for (const rt of ['poll', 'watch']) {
      const m = new RegExp(`^l5d:resolver:failure_count\\{namespace="default", rt="${rt}"\\} (\\d+)$`, 'm').exec(metrics);
      t.diagnostic(`${rt}: failure_count ${m?.[1]}`);
      assert.ok(m && Number(m[1]) >= cases.length, `${rt}: failures counted`);
    }

    // A new answer: the watcher gets it pushed on its open stream, the poller on its next poll.
    namerd.set({ kind: 'good', port: b.port });
    await Promise.all([added(proxy, 'poll', b.port), added(proxy, 'watch', b.port)]);
    assert.equal(await roundTrip(pollPort!, 'poll after'), 'poll after');
    assert.equal(await roundTrip(watchPort!, 'watch after'), 'watch after');
    assert.equal(b.accepted, 2);
    assert.ok(!proxy.logs.some((l) => l.msg === 'connection closed' && l['reason'] !== 'done'), 'a client connection failed');
    assert.equal(proxy.stderr, '');
    assert.equal(await proxy.stop(), 0);
  });
});
