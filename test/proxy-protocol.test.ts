// The PROXY protocol through the real CLI. Receive: v1 and v2 headers from a trusted peer
// become the access log's `client` (the peer kept as `proxy`), the stream after the header
// reaches the backend intact, headers from untrusted peers, of the wrong version or
// missing are refused and counted; a PROXY header before a TLS handshake. Send: v1 and v2
// headers written to the backend before the first byte, v2 with the SNI as AUTHORITY, on
// both engines (the native one writes the header through the addon before splicing).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { buildProxyV1, buildProxyV2 } from '../src/wire/proxy-protocol-build.ts';
import { parseProxyHeader } from '../src/wire/proxy-protocol.ts';
import { deadline } from './support/harness.ts';
import { CA, cleanup, closedWith, HELLO, metric, metrics, PKI, proxyWith, rawClosed, recorder } from './support/sni.ts';

const receiving = (backend: number, proxyProtocol: string, extra = ''): string => `
admin: {port: 0, graceSecs: 1}
routers:
- label: pp
  dtab: /svc/be => /$/inet/127.0.0.1/${backend};
  servers:
  - port: 0
    dstName: /svc/be
    handshakeTimeoutMs: 500
    proxyProtocol: ${proxyProtocol}
    ${extra}
`;

const FROM = { source: { address: '203.0.113.7', port: 4242 }, destination: { address: '198.51.100.1', port: 443 } };

async function firstRecord(be: { got: Promise<Buffer>[] }): Promise<Buffer> {
  await deadline(5000, 'a backend connection', (async () => { while (be.got.length === 0) await new Promise((r) => setImmediate(r)); })());
  return deadline(5000, 'the backend connection to end', be.got[be.got.length - 1]!);
}

describe('PROXY protocol: receive', () => {
  for (const engine of ['node', 'native'] as const) for (const [version, header] of [['v1', buildProxyV1(FROM)], ['v2', buildProxyV2(FROM, { authority: 'x.test' })]] as const) {
    it(`${version} from a trusted peer (${engine} engine): the original client in the access log, the proxy peer beside it, the stream intact`, async () => {
      const be = await recorder();
      const { proxy, ports: [port] } = await proxyWith(receiving(be.port, '{accept: any, trustedCidrs: [127.0.0.0/8]}'), 1, engine);
      const s = netConnect(port!, '127.0.0.1');
      cleanup.push(() => s.destroy());
      await once(s, 'connect');
      const local = s.localPort;
      // Header and payload in one segment, then more payload: the header is cut exactly.
      s.write(Buffer.concat([header, Buffer.from('hello ')]));
      s.end('world');
      assert.equal((await firstRecord(be)).toString(), 'hello world');
      const rec = await proxy.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'done');
      assert.equal(rec['client'], '203.0.113.7:4242');
      assert.equal(rec['proxy'], `127.0.0.1:${local}`);
      const m = await metrics(proxy);
      assert.equal(metric(m, new RegExp(`^l5d:srv:proxy_protocol:accepted\\{[^}]*version="${version}"\\} (\\d+)`, 'm')), 1, m);
    });
  }

  for (const engine of ['node', 'native'] as const) it(`refused and counted (${engine} engine): an untrusted peer, a missing header, the wrong version, a header that never completes`, async () => {
    const be = await recorder();
    const untrusted = await proxyWith(receiving(be.port, '{accept: any, trustedCidrs: [10.0.0.0/8, "::1/128"]}'), 1, engine);
    await rawClosed(untrusted.ports[0]!, buildProxyV1(FROM));
    await untrusted.proxy.waitForLog(closedWith('proxy_protocol', 'untrusted'));
    const only2 = await proxyWith(receiving(be.port, '{accept: v2, trustedCidrs: [127.0.0.1]}'), 1, engine);
    const port = only2.ports[0]!;
    await rawClosed(port, buildProxyV1(FROM));
    await rawClosed(port, Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    await rawClosed(port, buildProxyV2(FROM).subarray(0, 20));
    for (const cause of ['version', 'missing', 'timeout']) await only2.proxy.waitForLog(closedWith('proxy_protocol', cause));
    const m = await metrics(only2.proxy);
    for (const cause of ['version', 'missing', 'timeout']) assert.equal(metric(m, new RegExp(`^l5d:srv:proxy_protocol:failure\\{cause="${cause}",[^}]*\\} (\\d+)`, 'm')), 1, m);
    assert.equal(metric(await metrics(untrusted.proxy), /^l5d:srv:proxy_protocol:failure\{cause="untrusted",[^}]*\} (\d+)/m), 1);
    assert.equal(be.got.length, 0, 'nothing reached the backend');
  });

  it('a PROXY header before a TLS handshake (termination)', async () => {
    const be = await recorder();
    const id = `{privateKey: ${join(PKI, 'rsa.key')}, certs: [${join(PKI, 'rsa.pem')}, ${join(PKI, 'chain.pem')}]}`;
    const { proxy, ports: [port] } = await proxyWith(receiving(be.port, '{accept: v2, trustedCidrs: [127.0.0.0/8]}', `tls: {defaultIdentity: ${id}}`));
    const raw = netConnect(port!, '127.0.0.1');
    cleanup.push(() => raw.destroy());
    await once(raw, 'connect');
    raw.write(buildProxyV2(FROM));
    const t = tlsConnect({ socket: raw, ca: CA, servername: 'localhost' });
    t.on('error', () => {});
    await deadline(5000, 'TLS over the PROXY-prefixed stream', once(t, 'secureConnect'));
    t.end('secret');
    assert.equal((await firstRecord(be)).toString(), 'secret');
    const rec = await proxy.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'done');
    assert.equal(rec['client'], '203.0.113.7:4242');

  });

  for (const engine of ['node', 'native'] as const) it(`a PROXY header before a ClientHello (SNI passthrough, ${engine} engine), each sent in pieces`, async () => {
    const be2 = await recorder();
    const pass = await proxyWith(receiving(be2.port, '{accept: any, trustedCidrs: [127.0.0.0/8]}').replace('dstName: /svc/be', 'dstName: /svc/{sni}').replace('/svc/be =>', '/svc/db.example.com =>'), 1, engine);
    const s = netConnect(pass.ports[0]!, '127.0.0.1');
    cleanup.push(() => s.destroy());
    s.setNoDelay(true);
    await once(s, 'connect');
    // Split inside the v2 header, then inside the hello: the reader must wait for the rest.
    const bytes = Buffer.concat([buildProxyV2(FROM), HELLO]);
    for (const [a, b] of [[0, 10], [10, 40], [40, 60], [60, bytes.length]] as const) {
      s.write(bytes.subarray(a, b));
      await new Promise((r) => setTimeout(r, 30)); // paces the client so the pieces arrive apart (nothing waits on a state)
    }
    s.end();
    assert.equal((await firstRecord(be2)).toString('hex'), HELLO.toString('hex'), 'the hello, without the PROXY header, untouched');
    const r2 = await pass.proxy.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'done');
    assert.equal(r2['client'], '203.0.113.7:4242');
    assert.equal(r2['sni'], 'db.example.com');
  });
});

describe('PROXY protocol: send', () => {
  for (const engine of ['node', 'native'] as const) for (const version of ['v1', 'v2'] as const) {
    it(`${version} (${engine} engine): the header reaches the backend before the first byte, with the client's and the listener's addresses`, async () => {
      const be = await recorder();
      const { ports: [port] } = await proxyWith(`
admin: {port: 0, graceSecs: 1}
routers:
- label: send
  dtab: /svc/db.example.com => /$/inet/127.0.0.1/${be.port};
  servers:
  - {port: 0, dstName: "/svc/{sni}"}
  client:
    kind: io.l5d.static
    configs:
    - {prefix: /svc/db.example.com, proxyProtocol: ${version}}
`, 1, engine);
      const s = netConnect(port!, '127.0.0.1');
      cleanup.push(() => s.destroy());
      await once(s, 'connect');
      const local = s.localPort;
      s.end(HELLO);
      const got = await firstRecord(be);
      const h = parseProxyHeader(got, version);
      assert.equal(h.kind, 'ok', JSON.stringify(h));
      if (h.kind !== 'ok') return;
      assert.deepEqual(h.source, { kind: 'inet', address: '127.0.0.1', port: local });
      assert.deepEqual(h.destination, { kind: 'inet', address: '127.0.0.1', port });
      // AUTHORITY: the SNI; no ALPN TLV, as a passthrough never learns the protocol agreed.
      if (version === 'v2') assert.deepEqual([h.authority, h.alpn], ['db.example.com', undefined]);
      assert.equal(got.subarray(h.length).toString('hex'), HELLO.toString('hex'));
    });
  }
});
