import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { describe, it } from 'node:test';
import type { Config } from '../config/types.ts';
import { loadNative } from '../engine/native-binding.ts';
import { PortBook } from './ports.ts';

/** Just the keys the book reads. */
const configWith = (servers: { ip: string; port: number }[]): Config =>
  ({ routers: [{ label: 'r', servers }] }) as unknown as Config;

const load = loadNative();
const native = load.kind === 'loaded' ? load.binding : undefined;

/** Listens on `port`, alone or with SO_REUSEPORT: the server, or the error code. */
async function tryListen(port: number, reusePort: boolean): Promise<Server | string> {
  const s = createServer((c) => c.end('here'));
  s.listen({ host: '127.0.0.1', port, reusePort, exclusive: true });
  try {
    await once(s, 'listening');
    return s;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

const closeServer = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

it('the native addon is here to hold ports (CI builds it; without it workers race for their ports)', () => {
  assert.equal(load.kind, 'loaded', load.kind === 'unavailable' ? load.reason : '');
});

for (const [kind, binding] of [['native holds', native], ['node check only', undefined]] as const) {
  describe(`port book (${kind})`, () => {
    it('port: 0 servers each get a port of their own (the kernel may hand a just-released port out again)', async () => {
      const book = new PortBook(binding);
      const n = 300;
      const out = await book.pin(configWith(Array.from({ length: n }, () => ({ ip: '127.0.0.1', port: 0 }))));
      const ports = out.routers[0]!.servers.map((s) => s.port);
      assert.ok(ports.every((p) => p > 0));
      assert.equal(new Set(ports).size, n);
      await book.keepOnly(configWith([]));
      assert.deepEqual(book.holding(), []);
    });

    it('a failed claim lets go of what it took; the error names the address and router', async () => {
      const taken = createServer().listen(0, '127.0.0.1');
      await once(taken, 'listening');
      const busy = (taken.address() as AddressInfo).port;
      const book = new PortBook(binding);
      try {
        const [first] = await book.claim([{ ip: '127.0.0.1', port: 0, rt: 'a' }]);
        await book.keepOnly(configWith([]));
        await assert.rejects(book.claim([{ ip: '127.0.0.1', port: first!, rt: 'a' }, { ip: '127.0.0.1', port: busy, rt: 'b' }]),
          new RegExp(`127\\.0\\.0\\.1:${busy} \\(router b\\): EADDRINUSE`));
        assert.deepEqual(book.holding(), []);
        assert.deepEqual(await book.claim([{ ip: '127.0.0.1', port: first!, rt: 'a' }]), [first], 'released after the failure');
        await book.keepOnly(configWith([]));
      } finally {
        taken.close();
      }
    });
  });
}

describe('port book: native holds', () => {
  it('a port whose last connections are in TIME_WAIT (a restart right after serving) is held again', async () => {
    // The server closes first, so its side of each connection waits in TIME_WAIT on the port.
    const server = createServer((c) => c.destroy());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    for (let i = 0; i < 5; i++) {
      const c = connect(port, '127.0.0.1');
      c.on('error', () => {});
      await once(c, 'close');
    }
    await closeServer(server);
    const book = new PortBook(native);
    assert.deepEqual(await book.claim([{ ip: '127.0.0.1', port, rt: 'r' }]), [port]);
    await book.keepOnly(configWith([]));
  });

  it('a held port takes workers (SO_REUSEPORT) beside it, refuses anyone else, never accepts itself, and is let go when the config drops it', async () => {
    const book = new PortBook(native);
    const pinned = await book.pin(configWith([{ ip: '127.0.0.1', port: 0 }, { ip: '127.0.0.1', port: 0 }]));
    const [a, b] = pinned.routers[0]!.servers.map((s) => s.port) as [number, number];
    assert.deepEqual(book.holding().sort(), [`127.0.0.1:${a}`, `127.0.0.1:${b}`].sort());
    assert.equal(await tryListen(a, false), 'EADDRINUSE', 'another program cannot take a held port');
    // Nothing listens yet: a client is refused, not queued on the hold.
    const refused = connect(a, '127.0.0.1');
    assert.equal(((await once(refused, 'error'))[0] as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    const worker = await tryListen(a, true);
    assert.ok(typeof worker !== 'string', `a worker binds beside the hold: ${String(worker)}`);
    for (let i = 0; i < 20; i++) {
      const c = connect(a, '127.0.0.1');
      let got = '';
      c.on('data', (d: Buffer) => { got += d.toString(); });
      await once(c, 'end');
      assert.equal(got, 'here', 'every connection reaches the listening worker');
    }
    await closeServer(worker);
    assert.equal(await tryListen(a, false), 'EADDRINUSE', 'still held after the worker is gone');
    await book.keepOnly(configWith([{ ip: '127.0.0.1', port: b }]));
    assert.deepEqual(book.holding(), [`127.0.0.1:${b}`]);
    const free = await tryListen(a, false);
    assert.ok(typeof free !== 'string', 'let go when the config has no server on it');
    await closeServer(free);
    await book.keepOnly(configWith([]));
    const last = await tryListen(b, false);
    assert.ok(typeof last !== 'string', 'all let go');
    await closeServer(last);
  });
});
