// Conformance, the byte path: integrity by hash both ways with exact metrics and access-log
// figures, half-close each way, a backend killed mid-stream, and a slow consumer held by
// backpressure with the proxy's memory bounded. Run against each engine.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { deadline, echo, peerClosed } from '../support/harness.ts';
import { accessRecords, config, dial, type Engine, harness, inet, metric, readAll } from './support.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Resident set of `pid` in bytes (/proc). */
export function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

export function bytesSuite(engine: Engine): void {
  describe(`conformance (${engine}): bytes`, () => {
    const h = harness(engine);

    it('carries random bytes both ways intact; metrics and the access log count them exactly', async () => {
      const up = randomBytes(6 << 20), down = randomBytes(5 << 20);
      let got = Buffer.alloc(0);
      const b = await h.backend((s) => {
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('end', () => { got = Buffer.concat(chunks); s.end(down); });
      });
      const { proxy: p, port, admin } = await h.proxy(config(inet(b.port)));
      const c = await dial(port);
      const back = readAll(c);
      c.end(up);
      assert.equal(sha(await deadline(20_000, 'response', back)), sha(down));
      assert.equal(sha(got), sha(up));
      const [rec] = await p.waitForCount((l) => l.msg === 'connection closed', 1);
      assert.equal(rec!['rxBytes'], up.length);
      assert.equal(rec!['txBytes'], down.length);
      assert.equal(rec!['reason'], 'done');
      assert.equal(rec!['endpoint'], `127.0.0.1:${b.port}`);
      const text = await (await fetch(`${admin}/metrics`)).text();
      const srv = `{rt="t", srv_addr="127.0.0.1:${port}"}`;
      assert.equal(metric(text, `l5d:srv:stream:rx_bytes${srv}`), up.length);
      assert.equal(metric(text, `l5d:srv:stream:tx_bytes${srv}`), down.length);
      assert.equal(metric(text, `l5d:srv:accepts${srv}`), 1);
      assert.equal(metric(text, `l5d:srv:closes${srv}`), 1);
      assert.equal(metric(text, `l5d:srv:active${srv}`), 0);
      assert.equal(metric(text, `l5d:balancer:connection:connects{dst="/svc/be", rt="t"}`), 1);
    });

    it('passes a FIN each way while the other direction keeps flowing', async () => {
      // Client FIN first: the backend sees it, then still answers.
      let bsock!: Socket;
      const accepted = Promise.withResolvers<void>();
      const b = await h.backend((s) => { bsock = s; accepted.resolve(); });
      const { port } = await h.proxy(config(inet(b.port)));
      const c = await dial(port);
      await deadline(5000, 'backend accept', accepted.promise);
      const fromClient = readAll(bsock);
      c.end('request');
      assert.equal(String(await deadline(5000, 'backend sees the FIN', fromClient)), 'request');
      const toClient = readAll(c);
      bsock.end('late reply');
      assert.equal(String(await deadline(5000, 'client end', toClient)), 'late reply');
      // Backend FIN first: the client sees it, then still sends.
      const accepted2 = once(b.server, 'connection');
      const c2 = await dial(port);
      const [s2] = (await deadline(5000, 'backend accept', accepted2)) as [Socket];
      const toClient2 = readAll(c2);
      const fromClient2 = readAll(s2);
      s2.end('server first');
      assert.equal(String(await deadline(5000, 'client sees the FIN', toClient2)), 'server first');
      c2.end('client after');
      assert.equal(String(await deadline(5000, 'backend end', fromClient2)), 'client after');
    });

    it('closes the client when the backend dies mid-stream, with one record', async () => {
      const b = await h.backend((s) => s.once('data', () => { s.resume(); s.write(randomBytes(1 << 16)); setImmediate(() => s.resetAndDestroy()); }));
      const { proxy: p, port } = await h.proxy(config(inet(b.port)));
      const c = await dial(port);
      c.resume();
      c.write(randomBytes(1 << 20));
      await deadline(5000, 'client closed', peerClosed(c));
      const [rec] = await p.waitForCount((l) => l.msg === 'connection closed', 1);
      assert.ok(['backend_error', 'done'].includes(String(rec!['reason'])), String(rec!['reason']));
      assert.equal(accessRecords(p).length, 1);
    });

    it('holds a fast sender by backpressure while the backend does not read; RSS stays bounded', async () => {
      let bsock!: Socket;
      const accepted = Promise.withResolvers<void>();
      const b = await h.backend((s) => { bsock = s; s.pause(); accepted.resolve(); });
      const { proxy: p, port } = await h.proxy(config(inet(b.port)));
      const pid = p.proc.pid!;
      const c = await dial(port);
      await deadline(5000, 'backend accept', accepted.promise);
      const before = rss(pid);
      const chunk = randomBytes(1 << 20);
      const hash = createHash('sha256');
      let sent = 0;
      // Write until the kernel and the proxy stop taking bytes (no 'drain' within a second).
      for (;;) {
        hash.update(chunk);
        sent += chunk.length;
        if (c.write(chunk)) continue;
        const drained = await Promise.race([once(c, 'drain').then(() => true), new Promise<false>((r) => setTimeout(r, 1000, false))]);
        if (!drained || sent > 512 << 20) break;
      }
      assert.ok(sent < 96 << 20, `the proxy buffered without bound: ${sent >> 20} MiB accepted while the backend read nothing`);
      assert.ok(rss(pid) - before < 64 << 20, `RSS grew by ${(rss(pid) - before) >> 20} MiB`);
      const all = readAll(bsock);
      bsock.resume();
      c.end();
      const got = await deadline(20_000, 'everything delivered', all);
      assert.equal(got.length, sent);
      assert.equal(sha(got), hash.digest('hex'));
    });

    it('echoes many small exchanges on one connection (keep-alive) without loss', async () => {
      const b = await h.backend(echo);
      const { port } = await h.proxy(config(inet(b.port)));
      const c = await dial(port);
      let buf = '';
      c.setEncoding('utf8');
      for (let i = 0; i < 300; i++) {
        const want = `msg-${i};`;
        const got = new Promise<void>((resolve) => {
          const on = (d: string): void => { buf += d; if (buf.endsWith(want)) { c.off('data', on); resolve(); } };
          c.on('data', on);
        });
        c.write(want);
        await deadline(5000, `echo ${i}`, got);
      }
      assert.equal(buf.length, Array.from({ length: 300 }, (_, i) => `msg-${i};`).join('').length);
      c.end();
    });
  });
}
