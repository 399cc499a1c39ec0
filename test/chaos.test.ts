// Chaos through the real CLI: namerd gone (the process, not just errors) and back on the
// same port; a backend process killed with SIGKILL mid-stream; SIGTERM while many
// connections are moving bytes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { deadline, echo, startBackend, startProxy, TEST_WORKERS } from './support/harness.ts';
import { NamerdDouble } from './support/namerd-double.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Sends `data`, half-closes, and resolves with everything that came back (or rejects on an error). */
function exchange(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('end', () => { s.destroy(); resolve(Buffer.concat(chunks)); });
    s.end(data);
  });
}

describe('chaos', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it('namerd down: the last endpoints keep serving; namerd back on its port: new answers are followed', async () => {
    const [a, b] = [await startBackend(echo), await startBackend(echo)];
    cleanup.push(() => a.close(), () => b.close());
    let nd = await NamerdDouble.start();
    const port = Number(new URL(nd.baseUrl).port);
    nd.set('default', '/svc/app', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: a.port }] });
    const { proxy, ports: [p] } = await startProxy(`
admin: {port: 0}
routers:
- label: nd
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "${nd.baseUrl}", namespace: default, periodSecs: 1, requestTimeoutMs: 500}
  servers: [{port: 0, dstName: /svc/app}]
`);
    cleanup.push(() => proxy.stop());
    await proxy.waitForLog((l) => l.msg === 'endpoint added');
    await nd.close(); // namerd is gone: connections to it are refused
    await proxy.waitForLog((l) => l.msg === 'namerd resolution failed' && /ECONNREFUSED/.test(String(l['reason'])));
    for (let i = 0; i < 5; i++) assert.equal((await exchange(p!, Buffer.from(`outage ${i}`))).toString(), `outage ${i}`);
    assert.equal(a.accepted, 5);
    nd = await NamerdDouble.start(port);
    cleanup.push(() => nd.close());
    nd.set('default', '/svc/app', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: b.port }] });
    // Every worker follows the new answer (each logs it), before a connection may land on any of them.
    await proxy.waitForCount((l) => l.msg === 'endpoint added' && l['endpoint'] === `127.0.0.1:${b.port}`, Number(TEST_WORKERS), 10_000);
    assert.equal((await exchange(p!, Buffer.from('back'))).toString(), 'back');
    assert.equal(b.accepted, 1);
  });

  it('a backend process killed with SIGKILL mid-stream ends its own connections only', async () => {
    // A backend in its own process (Python echo), so that SIGKILL is the real thing.
    const py = spawn('python3', ['-c', [
      'import socket, threading',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(64)',
      'print(s.getsockname()[1], flush=True)',
      'def echo(c):',
      '    while True:',
      '        d = c.recv(65536)',
      '        if not d: break',
      '        c.sendall(d)',
      'while True:',
      '    c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()',
    ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.push(async () => { py.kill('SIGKILL'); });
    const [line] = await deadline(5000, 'python backend', once(py.stdout!.setEncoding('utf8'), 'data'));
    const victim = Number(String(line).trim());
    const healthy = await startBackend(echo);
    cleanup.push(() => healthy.close());
    const { proxy, ports: [pv, ph] } = await startProxy(`
admin: {port: 0}
routers:
- label: kill
  dtab: |
    /svc/victim => /$/inet/127.0.0.1/${victim};
    /svc/healthy => /$/inet/127.0.0.1/${healthy.port};
  servers: [{port: 0, dstName: /svc/victim}, {port: 0, dstName: /svc/healthy}]
`, 2);
    cleanup.push(() => proxy.stop());
    const open = (port: number): Promise<Socket> => new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => {});
    });
    const v = await open(pv!), h = await open(ph!);
    const roundTrip = async (s: Socket, text: string): Promise<void> => {
      const got = once(s, 'data');
      s.write(text);
      assert.equal(String((await deadline(5000, 'echo', got))[0]), text);
    };
    await roundTrip(v, 'before');
    await roundTrip(h, 'before');
    const vClosed = new Promise<void>((r) => v.once('close', () => r()));
    py.kill('SIGKILL');
    await deadline(5000, 'the victim connection closed', vClosed);
    const rec = await proxy.waitForLog((l) => l.msg === 'connection closed' && l['endpoint'] === `127.0.0.1:${victim}`);
    assert.match(String(rec['reason']), /backend_error|done/);
    await roundTrip(h, 'after'); // the other backend's connection never noticed
    h.destroy();
  });

  it('SIGTERM while 40 connections move bytes: no new connection is accepted, every open one completes intact, exit 0', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0, graceSecs: 20}
routers:
- label: drain
  dtab: /svc/be => /$/inet/127.0.0.1/${be.port};
  servers: [{port: 0, dstName: /svc/be}]
`);
    // 40 connections, each sending 4 MiB in 64 KiB pieces; SIGTERM arrives after the first piece of each.
    const started: Promise<void>[] = [];
    const results = Array.from({ length: 40 }, () => {
      const data = randomBytes(4 << 20);
      let firstSent!: () => void;
      started.push(new Promise<void>((r) => (firstSent = r)));
      return new Promise<boolean>((resolve) => {
        const s = connect(port!, '127.0.0.1');
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('error', () => resolve(false));
        s.on('end', () => { s.destroy(); resolve(sha(Buffer.concat(chunks)) === sha(data)); });
        s.on('connect', () => void (async () => {
          for (let off = 0; off < data.length; off += 65536) {
            if (!s.write(data.subarray(off, off + 65536))) await once(s, 'drain');
            if (off === 0) firstSent();
            if (off === 65536 * 8) await stopping; // the rest after SIGTERM
          }
          s.end();
        })().catch(() => resolve(false)));
      });
    });
    let signalled!: () => void;
    const stopping = new Promise<void>((r) => (signalled = r));
    await deadline(10_000, 'all 40 streaming', Promise.all(started));
    // Accepted by the proxy and connected through (a connection still in the kernel's accept
    // queue when the listener closes is reset by the kernel: it was never open here).
    await deadline(10_000, 'all 40 at the backend', (async () => { while (be.accepted < 40) await new Promise((r) => setTimeout(r, 20)); })());
    proxy.proc.kill('SIGTERM');
    await proxy.waitForLog((l) => l.msg === 'shutting down');
    signalled();
    const refused = await new Promise<string>((resolve) => {
      const s = connect(port!, '127.0.0.1');
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('connect', () => { s.destroy(); resolve('accepted'); });
    });
    assert.equal(refused, 'ECONNREFUSED');
    const ok = await deadline(30_000, 'the 40 streams', Promise.all(results));
    assert.equal(ok.filter(Boolean).length, 40, 'every stream intact');
    assert.equal(await deadline(20_000, 'exit', proxy.exited), 0);
  });
});
