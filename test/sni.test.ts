// SNI routing through the real CLI: passthrough to two real TLS backends chosen by the
// name in the ClientHello (keys only on the backends), a hello trickled byte by byte and
// forwarded untouched, each failure cause counted and logged with the name (no SNI,
// invalid name, not TLS, timeout, unresolved), defaultDstName as the fallback, the LRU of
// SNI destinations, `{sni}` after TLS termination, and config errors with key paths.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { deadline, runCli, writeConfig } from './support/harness.ts';
import { cleanup, closedWith, HELLO, metric, metrics, PKI, proxyWith, rawClosed, recorder, roundTrip, sha, tlsBackend, tlsClient } from './support/sni.ts';

const passthrough = (dtab: string, extra = ''): string => `
admin: {port: 0, graceSecs: 1}
routers:
- label: sni
  dtab: ${dtab}
  ${extra.includes('maxSniDestinations') ? extra : ''}
  servers:
  - port: 0
    dstName: /svc/sni/{sni}
    handshakeTimeoutMs: 400
    ${extra.includes('maxSniDestinations') ? '' : extra}
`;

for (const engine of ['node', 'native'] as const) describe(`SNI passthrough (${engine} engine)`, () => {
  it('one port, two TLS services by name: each handshake reaches the backend holding that name\'s key; bytes intact; SNI, ALPN and dst in the access log', async () => {
    const [rsa, ec] = [await tlsBackend('rsa'), await tlsBackend('ec')];
    const { proxy, ports: [port] } = await proxyWith(passthrough(`/svc/sni/rsa.test => /$/inet/127.0.0.1/${rsa}; /svc/sni/ec.test => /$/inet/127.0.0.1/${ec};`), 1, engine);
    for (const [name, cn] of [['rsa.test', 'rsa'], ['EC.Test', 'ec'], ['rsa.test.', 'rsa']] as const) {
      const c = await tlsClient(port!, name, ['h2', 'http/1.1']);
      assert.equal(c.cn, cn, `${name} answered by ${c.cn}`);
      assert.equal(c.alpn, 'h2');
      const data = randomBytes(256 * 1024);
      assert.equal(sha(await roundTrip(c.s, data)), sha(data));
    }
    const rec = await proxy.waitForLog((l) => l.msg === 'connection closed' && l['sni'] === 'ec.test');
    assert.equal(rec['dst'], '/svc/sni/ec.test');
    assert.equal(rec['alpn'], 'h2,http/1.1'); // passthrough: what the client offered
    assert.equal(rec['reason'], 'done');
  });

  it('a ClientHello trickled one byte per segment is reassembled, and every byte reaches the backend untouched', async () => {
    const be = await recorder();
    const { ports: [port] } = await proxyWith(passthrough(`/svc/sni/db.example.com => /$/inet/127.0.0.1/${be.port};`).replace('handshakeTimeoutMs: 400', 'handshakeTimeoutMs: 10000'), 1, engine);
    const s = netConnect(port!, '127.0.0.1');
    cleanup.push(() => s.destroy());
    s.setNoDelay(true);
    await once(s, 'connect');
    const tail = Buffer.from('after the hello');
    for (let i = 0; i < HELLO.length; i++) {
      s.write(HELLO.subarray(i, i + 1));
      await new Promise((r) => setImmediate(r)); // separate segments, not a sleep
    }
    s.end(tail);
    await deadline(5000, 'backend connection', (async () => { while (be.got.length === 0) await new Promise((r) => setImmediate(r)); })());
    const got = await deadline(5000, 'backend to see the end', be.got[0]!);
    assert.equal(got.toString('hex'), Buffer.concat([HELLO, tail]).toString('hex'));
  });

  it('failures are closed and counted by cause, logged with the name asked for: no SNI, invalid name, not TLS, timeout, unresolved', async () => {
    const [rsa] = [await tlsBackend('rsa')];
    const { proxy, ports: [port] } = await proxyWith(passthrough(`/svc/sni/rsa.test => /$/inet/127.0.0.1/${rsa}; /svc/sni/gone.test => ~;`), 1, engine);
    await assert.rejects(tlsClient(port!, undefined));
    await assert.rejects(tlsClient(port!, 'under_score.test'));
    await rawClosed(port!, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await rawClosed(port!, HELLO.subarray(0, 20)); // then silence: handshakeTimeoutMs
    await assert.rejects(tlsClient(port!, 'gone.test'));
    await proxy.waitForLog(closedWith('sni', 'no_sni'));
    const bad = await proxy.waitForLog(closedWith('sni', 'invalid_name'));
    assert.equal(bad['sni'], 'under_score.test');
    await proxy.waitForLog(closedWith('sni', 'not_tls'));
    await proxy.waitForLog(closedWith('sni', 'timeout'));
    const gone = await proxy.waitForLog((l) => l.msg === 'connection closed' && l['sni'] === 'gone.test');
    assert.equal(gone['reason'], 'no_endpoints');
    const m = await metrics(proxy);
    for (const cause of ['no_sni', 'invalid_name', 'not_tls', 'timeout']) {
      assert.equal(metric(m, new RegExp(`^l5d:srv:sni:failure\\{cause="${cause}",[^}]*\\} (\\d+)`, 'm')), 1, `${cause}\n${m}`);
    }
    // The good name still works after all that.
    assert.equal((await tlsClient(port!, 'rsa.test')).cn, 'rsa');
  });

  it('defaultDstName takes what has no usable name, and names that resolve to nothing', async () => {
    const [rsa, ec] = [await tlsBackend('rsa'), await tlsBackend('ec')];
    const { proxy, ports: [port] } = await proxyWith(passthrough(`/svc/sni/ec.test => /$/inet/127.0.0.1/${ec}; /svc/sni/gone.test => ~; /svc/default => /$/inet/127.0.0.1/${rsa};`,
      'defaultDstName: /svc/default'), 1, engine);
    assert.equal((await tlsClient(port!, undefined)).cn, 'rsa');
    assert.equal((await tlsClient(port!, 'bad!name')).cn, 'rsa');
    assert.equal((await tlsClient(port!, 'gone.test')).cn, 'rsa');
    assert.equal((await tlsClient(port!, 'ec.test')).cn, 'ec');
    const m = await metrics(proxy);
    assert.equal(metric(m, /^l5d:srv:sni:default\{[^}]*\} (\d+)/m), 3, m);
    assert.equal(metric(m, /^l5d:srv:sni:failure\{cause="unresolved",[^}]*\} (\d+)/m), 1, m);
  });

  it('destinations made from client-chosen names are bounded (LRU) and evictions counted', async () => {
    const be = await recorder();
    const names = ['a.example.test', 'b.example.test', 'c.example.test']; // as long as the fixture's db.example.com
    // One process: each worker keeps its own LRU.
    const { proxy, ports: [port] } = await proxyWith(`workers: 1\n${passthrough(names.map((n) => `/svc/sni/${n} => /$/inet/127.0.0.1/${be.port};`).join(' '), 'maxSniDestinations: 2')}`, 1, engine);
    let done = 0;
    for (const n of [...names, names[0]!]) {
      const s = netConnect(port!, '127.0.0.1');
      cleanup.push(() => s.destroy());
      s.on('error', () => {});
      s.end(Buffer.from(HELLO.toString('latin1').replace('db.example.com', n), 'latin1'));
      await proxy.waitForCount((l) => l.msg === 'connection closed' && l['reason'] === 'done', ++done, 5000, `record for ${n}`);
    }
    const m = await metrics(proxy);
    assert.equal(metric(m, /^l5d:sni:destinations\{[^}]*\} (\d+)/m), 2, m);
    assert.equal(metric(m, /^l5d:sni:evictions\{[^}]*\} (\d+)/m), 2, m);
    // /api/state (and so the dashboard): the SNI destinations kept, marked, and the bound.
    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const state = await deadline(5000, 'state', fetch(`http://${admin}/api/state`).then((r) => r.json())) as { routers: { sniDestinations?: unknown; destinations: { name: string; sni?: boolean }[] }[] };
    assert.deepEqual(state.routers[0]!.sniDestinations, { count: 2, max: 2 });
    assert.deepEqual(state.routers[0]!.destinations.filter((d) => d.sni).map((d) => d.name).sort(), ['/svc/sni/a.example.test', '/svc/sni/c.example.test']);
  });
});

describe('{sni} on a terminating server', () => {
  it('routes by the SNI of the completed handshake', async () => {
    const [a, b] = [await recorder(), await recorder()];
    const id = (n: string) => `{privateKey: ${join(PKI, n + '.key')}, certs: [${join(PKI, n + '.pem')}, ${join(PKI, 'chain.pem')}]}`;
    const { proxy, ports: [port] } = await proxyWith(`
admin: {port: 0, graceSecs: 1}
routers:
- label: term
  dtab: /svc/t/rsa.test => /$/inet/127.0.0.1/${a.port}; /svc/t/ec.test => /$/inet/127.0.0.1/${b.port};
  servers:
  - port: 0
    dstName: /svc/t/{sni}
    tls:
      identities: {rsa.test: ${id('rsa')}, ec.test: ${id('ec')}}
`);
    const c = await tlsClient(port!, 'ec.test');
    assert.equal(c.cn, 'ec');
    c.s.end('to ec');
    const got = await deadline(5000, 'backend b', (async () => { while (b.got.length === 0) await new Promise((r) => setImmediate(r)); return b.got[0]!; })());
    assert.equal(got.toString(), 'to ec');
    assert.equal(a.got.length, 0);
    const rec = await proxy.waitForLog((l) => l.msg === 'connection closed' && l['sni'] === 'ec.test');
    assert.equal(rec['dst'], '/svc/t/ec.test');
  });
});

describe('config', () => {
  const bad: [string, string, RegExp][] = [
    ['unknown placeholder', 'dstName: /svc/{host}', /servers\[0\]\.dstName: unknown placeholder \{host\}/],
    ['defaultDstName without {sni}', 'dstName: /svc/a\n    defaultDstName: /svc/b', /servers\[0\]\.defaultDstName: only meaningful/],
    ['bad trusted CIDR', 'dstName: /svc/a\n    proxyProtocol: {trustedCidrs: [10.0.0.0/33]}', /servers\[0\]\.proxyProtocol\.trustedCidrs\[0\]: expected a CIDR/],
    ['bad accept', 'dstName: /svc/a\n    proxyProtocol: {accept: v3, trustedCidrs: [127.0.0.1]}', /servers\[0\]\.proxyProtocol\.accept: expected one of: v1, v2, any/],
    ['no trusted CIDRs', 'dstName: /svc/a\n    proxyProtocol: {accept: v1}', /servers\[0\]\.proxyProtocol\.trustedCidrs: missing/],
  ];
  for (const [name, server, want] of bad) {
    it(`${name}: exit 1 naming the key path`, async () => {
      const file = writeConfig(`routers:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - port: 0\n    ${server}\n`);
      const r = await runCli(['--check', file]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, want);
    });
  }
  it('client proxyProtocol: bad value and with tls', async () => {
    const file = writeConfig(`routers:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers: [{port: 0, dstName: /svc/a}]\n  client:\n    kind: io.l5d.static\n    configs:\n    - {prefix: /svc, proxyProtocol: v3}\n    - {prefix: /svc/x, proxyProtocol: v2, tls: {dnsName: x}}\n`);
    const r = await runCli(['--check', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /client\.configs\[0\]\.proxyProtocol: expected one of: v1, v2/);
    assert.match(r.stderr, /client\.configs\[1\]\.proxyProtocol: not supported together with tls/);
  });
});
