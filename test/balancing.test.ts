// Traffic shares through the real CLI: a dtab canary `9 * A & 1 * B` must send about 10 %
// of new connections to B under every client load pattern of issue 13, with one worker and
// with two. The pure balancer has the same table (src/balancer/split.test.ts); this one
// proves it holds end to end (sockets, timing, several balancers in several workers).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Backend, deadline, echo, peerClosed, startBackend, startProxy } from './support/harness.ts';

function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, 'client connect', once(s, 'connect').then(() => s));
}

/** Connects and waits for one echoed byte, so the proxy has picked and connected a backend. */
async function established(port: number): Promise<Socket> {
  const s = await dial(port);
  const echoed = once(s, 'data');
  s.write('x');
  await deadline(5000, 'echo', echoed);
  return s;
}

interface Pattern {
  readonly name: string;
  readonly n: number;
  /** B's share must be 0.1 ± this (about 4.5 standard deviations of a binomial over n). */
  readonly tolerance: number;
  /** Long-lived connections held on A before the counted ones. */
  readonly held: number;
  /** Close each connection before opening the next (true), or reconnect at once (false). */
  readonly waitClose: boolean;
}

const patterns: Pattern[] = [
  { name: '1000 sequential, waiting for each close', n: 1000, tolerance: 0.045, held: 0, waitClose: true },
  { name: '1000 sequential, reconnecting without waiting for the close', n: 1000, tolerance: 0.045, held: 0, waitClose: false },
  { name: 'one long-lived connection held on A, then 300 sequential', n: 300, tolerance: 0.08, held: 1, waitClose: true },
  { name: 'five held on A, then 500 sequential', n: 500, tolerance: 0.06, held: 5, waitClose: true },
];

/** The measured split of each run, printed at the end (the closing table). */
const measured: string[] = [];

for (const workers of ['1', '2']) {
  describe(`weighted split through the proxy, ${workers} worker(s)`, () => {
    const cleanup: (() => Promise<unknown>)[] = [];
    after(async () => {
      for (const c of cleanup.reverse()) await c();
      if (workers === '2') console.log(`\nA/B split (9 * A & 1 * B):\n${measured.join('\n')}`);
    });

    for (const p of patterns) {
      it(`${p.name}: B gets 10 % ± ${p.tolerance * 100} %`, async () => {
        const a: Backend = await startBackend(echo);
        const b: Backend = await startBackend(echo);
        cleanup.push(() => a.close(), () => b.close());
        const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: r
  dtab: |
    /svc/web => 9 * /$/inet/127.0.0.1/${a.port} & 1 * /$/inet/127.0.0.1/${b.port};
  servers:
  - port: 0
    dstName: /svc/web
`, 1, { LINKERD_TCP_WORKERS: workers });
        cleanup.push(() => proxy.stop('SIGKILL'));
        // Long-lived connections on A: open until `held` have landed there (closing those that land on B).
        const held: Socket[] = [];
        while (held.length < p.held) {
          const before = a.accepted;
          const s = await established(port!);
          if (a.accepted > before) held.push(s);
          else {
            s.end();
            await deadline(5000, 'close', peerClosed(s));
          }
        }
        const [a0, b0] = [a.accepted, b.accepted];
        let prev: Socket | undefined;
        for (let i = 0; i < p.n; i++) {
          const s = await established(port!);
          s.end();
          if (p.waitClose) await deadline(5000, 'close', peerClosed(s));
          else {
            prev?.destroy();
            prev = s;
          }
        }
        prev?.destroy();
        const [na, nb] = [a.accepted - a0, b.accepted - b0];
        measured.push(`${workers} worker(s) | ${p.name} | ${na}/${nb}`);
        for (const s of held) s.destroy();
        assert.equal(na + nb, p.n);
        const share = nb / p.n;
        assert.ok(Math.abs(share - 0.1) <= p.tolerance, `B share ${share} (A ${na}, B ${nb})`);
      });
    }
  });
}

describe('weighted split from an io.l5d.fs file (`host port * 9`)', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('one connection held on A, then 300 sequential: B gets 10 % ± 8 %', async () => {
    const a = await startBackend(echo);
    const b = await startBackend(echo);
    cleanup.push(() => a.close(), () => b.close());
    const dir = mkdtempSync(join(tmpdir(), 'l5d-fs-'));
    writeFileSync(join(dir, 'web'), `127.0.0.1 ${a.port} * 9\n127.0.0.1 ${b.port} * 1\n`);
    const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
namers:
- {kind: io.l5d.fs, rootDir: "${dir}"}
routers:
- label: r
  dtab: |
    /svc => /#/io.l5d.fs;
  servers:
  - port: 0
    dstName: /svc/web
`);
    cleanup.push(() => proxy.stop('SIGKILL'));
    let held: Socket | undefined;
    while (!held) {
      const before = a.accepted;
      const s = await established(port!);
      if (a.accepted > before) held = s;
      else s.destroy();
    }
    const [a0, b0] = [a.accepted, b.accepted];
    for (let i = 0; i < 300; i++) {
      const s = await established(port!);
      s.end();
      await deadline(5000, 'close', peerClosed(s));
    }
    held.destroy();
    const [na, nb] = [a.accepted - a0, b.accepted - b0];
    assert.equal(na + nb, 300);
    assert.ok(Math.abs(nb / 300 - 0.1) <= 0.08, `B share ${nb / 300} (A ${na}, B ${nb})`);
  });
});
