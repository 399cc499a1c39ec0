// TLS through the real CLI with Node's own TLS clients and servers: versions, suites and
// groups offered and refused, SNI identities (exact, wildcard, default, none), ALPN, mTLS,
// hostile handshakes counted by cause, origination with name verification and a client
// certificate, reload on file change and SIGHUP without dropping open connections, and
// bad key material at start. The PKI is test/fixtures/tls (made by make.sh there).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect, type ConnectionOptions, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { deadline, echo, type LogLine, type Proxy, runCli, startBackend, startProxy, TEST_WORKERS, writeConfig } from './support/harness.ts';

const PKI = new URL('./fixtures/tls/', import.meta.url).pathname;
const pem = (f: string): string => readFileSync(join(PKI, f), 'utf8');
const CA = pem('ca.pem');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Outcome { ok: boolean; socket: TLSSocket; error?: string; subject?: string; protocol?: string | null; cipher?: string; group?: string | undefined; alpn?: string | false }

/** Every client socket made here, destroyed at the end whatever happened. */
const clients = new Set<Socket>();
function closeClients(): void {
  for (const s of clients) s.destroy();
  clients.clear();
}

/** A TLS handshake against `port`: its outcome (and the open socket when it worked). */
function handshake(port: number, opts: ConnectionOptions = {}): Promise<Outcome> {
  const s = connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ...opts });
  clients.add(s);
  return deadline(5000, 'TLS handshake', new Promise<Outcome>((resolve) => {
    s.once('secureConnect', () => {
      const cert = s.getPeerCertificate();
      resolve({
        ok: true, socket: s, subject: String(cert.subject?.CN), protocol: s.getProtocol(), cipher: s.getCipher().standardName,
        group: (s.getEphemeralKeyInfo() as { name?: string } | null)?.name,
        alpn: s.alpnProtocol ?? false,
      });
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, socket: s, error: e.code ?? e.message }));
    // TLS 1.3 reports a rejected client certificate after the client's handshake is done: wait for the server's verdict.
    s.once('close', () => resolve({ ok: false, socket: s, error: 'closed' }));
  }));
}

/** Sends `data` over an established socket, half-closes, and resolves with what came back. */
async function roundTrip(s: TLSSocket, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(s, 'end');
  s.end(data);
  await deadline(10_000, 'echo through TLS', ended);
  return Buffer.concat(chunks);
}

/** The proxy's /metrics text. */
async function metrics(p: Proxy): Promise<string> {
  const admin = String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);
  return deadline(5000, 'metrics', fetch(`http://${admin}/metrics`).then((r) => r.text()));
}
const metric = (text: string, line: RegExp): number => Number(line.exec(text)?.[1] ?? NaN);

const id = (name: string, chain = true): string => `{privateKey: ${join(PKI, name + '.key')}, certs: [${join(PKI, name + '.pem')}${chain ? ', ' + join(PKI, 'chain.pem') : ''}]}`;

function terminating(backend: number, tls: string, server = ''): string {
  return `
admin: {port: 0, graceSecs: 2}
routers:
- label: tls
  dtab: /svc/be => /$/inet/127.0.0.1/${backend};
  servers:
  - port: 0
    dstName: /svc/be
    ${server}
    tls:
      ${tls.trim().split('\n').join('\n      ')}
`;
}

describe('TLS termination', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { closeClients(); for (const c of cleanup.reverse()) await c(); });

  it('terminates TLS 1.3 and 1.2 with the default identity and its chain; bytes intact both ways; SNI and ALPN in the access log; handshake latency in /metrics', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(terminating(be.port, `defaultIdentity: ${id('rsa')}\nalpnProtocols: [h2, http/1.1]`));
    cleanup.push(() => proxy.stop());
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const o = await handshake(port!, { maxVersion, ALPNProtocols: ['http/1.1'] });
      assert.ok(o.ok, o.error);
      assert.equal(o.protocol, maxVersion);
      assert.equal(o.subject, 'rsa');
      assert.equal(o.alpn, 'http/1.1');
      const data = randomBytes(1 << 20);
      assert.equal(sha(await roundTrip(o.socket, data)), sha(data));
    }
    const recs = await proxy.waitForCount((l) => l.msg === 'connection closed', 2);
    assert.deepEqual(recs.map((r) => [r['sni'], r['alpn'], r['reason'], r['rxBytes']]), [['localhost', 'http/1.1', 'done', 1 << 20], ['localhost', 'http/1.1', 'done', 1 << 20]]);
    assert.match(await metrics(proxy), /^l5d:srv:tls:handshake_us_count\{rt="tls", srv_addr="[^"]+"\} \d+$/m);
    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const state = await deadline(5000, 'state', fetch(`http://${admin}/api/state`).then((r) => r.json())) as { servers: { tls: boolean; tlsIdentities: { name: string; names: string[]; notAfter: string }[] }[] };
    assert.equal(state.servers[0]!.tls, true);
    assert.deepEqual(state.servers[0]!.tlsIdentities.map((i) => [i.name, i.names]), [['default', ['localhost', 'rsa.test', '127.0.0.1']]]);
    assert.ok(Date.parse(state.servers[0]!.tlsIdentities[0]!.notAfter) > Date.now(), 'expiry shown');
  });

  it('picks the identity by SNI: exact, wildcard, case-insensitive, else the default; without a default an unknown name is refused and counted', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy: p1, ports: [withDefault] } = await startProxy(terminating(be.port, `defaultIdentity: ${id('rsa')}\nidentities:\n  ec.test: ${id('ec')}\n  "*.wild.test": ${id('ec')}\n  p8.test: ${id('p8')}`));
    cleanup.push(() => p1.stop());
    const cases: [string, string][] = [['ec.test', 'ec'], ['EC.Test', 'ec'], ['a.wild.test', 'ec'], ['p8.test', 'p8'], ['localhost', 'rsa'], ['b.a.wild.test', 'rsa']];
    for (const [servername, cn] of cases) {
      // Verify the name against the certificate only where it should match; the CN tells which identity answered.
      const o = await handshake(withDefault!, { servername, checkServerIdentity: () => undefined });
      assert.ok(o.ok, `${servername}: ${o.error}`);
      assert.equal(o.subject, cn, servername);
      o.socket.destroy();
    }
    const { proxy: p2, ports: [noDefault] } = await startProxy(terminating(be.port, `identities:\n  ec.test: ${id('ec')}`));
    cleanup.push(() => p2.stop());
    const known = await handshake(noDefault!, { servername: 'ec.test' });
    assert.ok(known.ok, known.error);
    known.socket.destroy();
    for (const servername of ['nope.test', '']) {
      const o = await handshake(noDefault!, { servername, checkServerIdentity: () => undefined });
      assert.equal(o.ok, false, `SNI "${servername}" must be refused`);
    }
    const m = await metrics(p2);
    assert.equal(metric(m, /^l5d:srv:tls:failure\{cause="unknown_sni", rt="tls", srv_addr="[^"]+"\} (\d+)$/m), 2);
    const rec = await p2.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'tls_handshake');
    assert.equal(rec['error'], 'unknown_sni');
  });

  it('refuses TLS 1.0/1.1, CBC suites and unlisted groups; negotiates ChaCha20, AES-256-GCM, P-256 and P-384', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(terminating(be.port, `defaultIdentity: ${id('ec')}`));
    cleanup.push(() => proxy.stop());
    const opts = { servername: 'ec.test' };
    const accepted: [string, ConnectionOptions, (o: Outcome) => void][] = [
      ['TLS 1.3 ChaCha20', { ...opts, ciphers: 'TLS_CHACHA20_POLY1305_SHA256' }, (o) => assert.equal(o.cipher, 'TLS_CHACHA20_POLY1305_SHA256')],
      ['TLS 1.2 ECDHE-ECDSA-AES256-GCM', { ...opts, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }, (o) => assert.equal(o.cipher, 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384')],
      ['TLS 1.2 ChaCha20', { ...opts, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' }, (o) => assert.equal(o.cipher, 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256')],
      ['group P-256', { ...opts, ecdhCurve: 'P-256' }, (o) => assert.equal(o.group, 'prime256v1')],
      ['group P-384', { ...opts, ecdhCurve: 'P-384' }, (o) => assert.equal(o.group, 'secp384r1')],
      ['group X25519', { ...opts, ecdhCurve: 'X25519' }, (o) => assert.equal(o.group, 'X25519')],
    ];
    for (const [what, o, check] of accepted) {
      const r = await handshake(port!, { ...o, ca: CA });
      assert.ok(r.ok, `${what}: ${r.error}`);
      check(r);
      r.socket.destroy();
    }
    const refused: [string, ConnectionOptions, string][] = [
      ['TLS 1.0', { ...opts, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, 'protocol_version'],
      ['TLS 1.1', { ...opts, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, 'protocol_version'],
      ['TLS 1.2 CBC only', { ...opts, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }, 'no_shared_cipher'],
      ['group P-521 only', { ...opts, ecdhCurve: 'P-521' }, 'no_shared_cipher'],
    ];
    for (const [what, o] of refused) {
      const r = await handshake(port!, o);
      assert.equal(r.ok, false, `${what} must be refused`);
    }
    const m = await metrics(proxy);
    assert.equal(metric(m, /^l5d:srv:tls:failure\{cause="protocol_version", rt="tls", srv_addr="[^"]+"\} (\d+)$/m), 2);
    assert.equal(metric(m, /^l5d:srv:tls:failure\{cause="no_shared_cipher", rt="tls", srv_addr="[^"]+"\} (\d+)$/m), 2);
  });

  it('ALPN: agrees on a common protocol, none when the client offers none, and refuses a client with none in common', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(terminating(be.port, `defaultIdentity: ${id('rsa')}\nalpnProtocols: [h2, http/1.1]`));
    cleanup.push(() => proxy.stop());
    const h2 = await handshake(port!, { ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(h2.alpn, 'h2');
    h2.socket.destroy();
    const none = await handshake(port!, {});
    assert.ok(none.ok);
    assert.equal(none.alpn, false);
    none.socket.destroy();
    const other = await handshake(port!, { ALPNProtocols: ['spdy/1'] });
    assert.equal(other.ok, false, 'no protocol in common: refused (RFC 7301)');
    const rec = await proxy.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'tls_handshake');
    assert.equal(rec['error'], 'alpn');
  });

  it('mTLS: a client certificate from the configured CA gets through; none, or one from another CA, is refused and counted', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(terminating(be.port, `defaultIdentity: ${id('rsa')}\nclientAuth: {trustCerts: [${join(PKI, 'client-ca.pem')}]}`));
    cleanup.push(() => proxy.stop());
    const good = await handshake(port!, { key: pem('client.key'), cert: pem('client.pem') });
    assert.ok(good.ok, good.error);
    assert.equal((await roundTrip(good.socket, Buffer.from('hello'))).toString(), 'hello');
    for (const o of [{}, { key: pem('rogue.key'), cert: pem('rogue.pem') }]) {
      const r = await handshake(port!, o);
      if (r.ok) {
        // TLS 1.3: the client finishes first; the server's refusal arrives as an alert and a close.
        const closed = await deadline(5000, 'server refusal', new Promise<string>((resolve) => {
          r.socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          r.socket.on('close', () => resolve('closed'));
          r.socket.resume();
        }));
        assert.ok(closed, 'refused');
      }
    }
    await proxy.waitForCount((l) => l.msg === 'connection closed', 3).catch(() => assert.fail(JSON.stringify(proxy.logs.filter((l) => l.msg === 'connection closed' || l.msg === 'tls handshake failed'))));
    const m = await metrics(proxy);
    assert.deepEqual(m.split('\n').filter((l) => l.startsWith('l5d:srv:tls:failure')).map((l) => l.replace(/, rt=.*\}/, '}')), ['l5d:srv:tls:failure{cause="client_cert"} 2']);
    assert.equal(be.accepted, 1, `refused clients never reach the backend: ${JSON.stringify(proxy.logs.filter((l) => l.msg === 'connection closed' || l.msg === 'tls handshake failed'))}`);
  });

  it('hostile handshakes close only their own connection, each counted by cause: plain TCP, garbage, a truncated ClientHello, a stalled client', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(terminating(be.port, `defaultIdentity: ${id('rsa')}\nhandshakeTimeoutMs: 300`));
    cleanup.push(() => proxy.stop());
    // An open, healthy TLS connection that must survive all of it.
    const healthy = await handshake(port!);
    assert.ok(healthy.ok);
    const HELLO_START = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
    const reset = (bytes: Buffer): Promise<void> => new Promise<void>((resolve) => {
      const s: Socket = netConnect(port!, '127.0.0.1', () => s.write(bytes, () => s.resetAndDestroy()));
      clients.add(s);
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    const raw = (bytes: Buffer | undefined, end: boolean): Promise<void> => new Promise<void>((resolve) => {
      const s: Socket = netConnect(port!, '127.0.0.1', () => { if (bytes) s.write(bytes); if (end) s.end(); });
      clients.add(s);
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.resume();
    });
    await deadline(10_000, 'hostile clients closed', Promise.all([
      raw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), false),
      raw(randomBytes(4096).fill(0xab, 0, 1), false),
      raw(HELLO_START, true), // a ClientHello cut short, then FIN: held to the handshake timeout
      reset(HELLO_START), // a ClientHello cut short, then RST
      raw(undefined, false), // says nothing
      raw(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0xff, 0xff, 0xff]), false), // a header promising more, then silence
    ]));
    assert.equal((await roundTrip(healthy.socket, Buffer.from('still here'))).toString(), 'still here');
    const m = await metrics(proxy);
    const failures = m.split('\n').filter((l) => l.startsWith('l5d:srv:tls:failure')).map((l) => l.replace(/, rt=.*\}/, '}')).sort();
    assert.deepEqual(failures, ['l5d:srv:tls:failure{cause="closed"} 1', 'l5d:srv:tls:failure{cause="malformed"} 2', 'l5d:srv:tls:failure{cause="timeout"} 3']);
    assert.equal(be.accepted, 1, 'no failed handshake reached the backend');
    const again = await handshake(port!);
    assert.ok(again.ok, 'still serving');
    again.socket.destroy();
  });
});

describe('TLS origination', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { closeClients(); for (const c of cleanup.reverse()) await c(); });

  /** A TLS echo backend with `name`'s certificate, optionally asking for a client certificate. */
  async function tlsBackend(name: string, mtls = false): Promise<{ port: number; peers: (string | undefined)[]; snis: (string | false)[] }> {
    const peers: (string | undefined)[] = [];
    const snis: (string | false)[] = [];
    const server = createTlsServer({
      key: pem(`${name}.key`), cert: pem(`${name}.pem`) + pem('chain.pem'), allowHalfOpen: true,
      ...(mtls ? { requestCert: true, rejectUnauthorized: true, ca: pem('client-ca.pem') } : {}),
    }, (s) => {
      const cn = s.getPeerCertificate().subject?.CN;
      peers.push(cn === undefined ? undefined : String(cn));
      snis.push(s.servername ?? false);
      s.on('error', () => {});
      s.pipe(s);
    });
    server.on('tlsClientError', () => {});
    // Node's TLS server holds a connection whose peer left mid-handshake until its handshake timeout: cut them all at the end.
    const raws = new Set<Socket>();
    server.on('connection', (s: Socket) => { raws.add(s); s.on('close', () => raws.delete(s)); });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanup.push(() => new Promise<void>((r) => { server.close(() => r()); for (const s of raws) s.destroy(); }));
    return { port: (server.address() as { port: number }).port, peers, snis };
  }

  function originating(backend: number, tls: string): string {
    return `
admin: {port: 0, graceSecs: 2}
routers:
- label: orig
  dtab: /svc/be => /$/inet/127.0.0.1/${backend};
  servers:
  - {port: 0, dstName: /svc/be}
  client:
    connectAttempts: 1
    tls: ${tls}
`;
  }

  async function through(port: number, data: Buffer): Promise<{ got: Buffer; closedEarly: boolean }> {
    const s = netConnect(port, '127.0.0.1');
    clients.add(s);
    s.on('error', () => {});
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.end(data);
    await deadline(10_000, 'client closed', new Promise((resolve) => s.once('close', resolve)));
    const got = Buffer.concat(chunks);
    return { got, closedEarly: got.length < data.length };
  }

  it('verifies the backend against dnsName with trustCerts added to the system roots, sends SNI, and carries bytes intact', async () => {
    const b = await tlsBackend('rsa');
    const { proxy, ports: [port] } = await startProxy(originating(b.port, `{dnsName: rsa.test, trustCerts: [${join(PKI, 'ca.pem')}]}`));
    cleanup.push(() => proxy.stop());
    const data = randomBytes(1 << 20);
    const r = await through(port!, data);
    assert.equal(sha(r.got), sha(data));
    assert.deepEqual(b.snis, ['rsa.test']);
  });

  it('refuses a backend whose certificate names another host, or chains to no trusted root, and says why', async () => {
    const b = await tlsBackend('other');
    const { proxy: p1, ports: [wrongName] } = await startProxy(originating(b.port, `{dnsName: rsa.test, trustCerts: [${join(PKI, 'ca.pem')}]}`));
    cleanup.push(() => p1.stop());
    const r1 = await through(wrongName!, Buffer.from('secret'));
    assert.equal(r1.got.length, 0);
    const rec1 = await p1.waitForLog((l) => l.msg === 'connection closed');
    assert.equal(rec1['reason'], 'connect_failed');
    assert.equal(rec1['error'], 'ERR_TLS_CERT_ALTNAME_INVALID');

    const { proxy: p2, ports: [noTrust] } = await startProxy(originating(b.port, '{dnsName: other.test}'));
    cleanup.push(() => p2.stop());
    const r2 = await through(noTrust!, Buffer.from('secret'));
    assert.equal(r2.got.length, 0);
    const rec2 = await p2.waitForLog((l) => l.msg === 'connection closed');
    assert.equal(rec2['reason'], 'connect_failed');
    assert.match(String(rec2['error']), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED/);
    assert.equal(b.peers.length, 0, 'no connection was handed to an unverified backend');
  });

  it('minConnections against a backend that refuses our certificate after the TLS 1.3 handshake: backs off instead of spinning', async () => {
    const b = await tlsBackend('rsa', true);
    const { proxy } = await startProxy(`
admin: {port: 0}
routers:
- label: spares
  dtab: /svc/be => /$/inet/127.0.0.1/${b.port};
  servers: [{port: 0, dstName: /svc/be}]
  client:
    minConnections: 2
    tls: {dnsName: rsa.test, trustCerts: [${join(PKI, 'ca.pem')}]}
`);
    cleanup.push(() => proxy.stop());
    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    await new Promise((r) => setTimeout(r, 2000)); // a measurement window: how often does the pool try?
    const m = await deadline(5000, 'metrics', fetch(`http://${admin}/metrics`).then((r) => r.text()));
    const connects = metric(m, /^l5d:balancer:connection:connects\{dst="\/svc\/be", rt="spares"\} (\d+)$/m);
    assert.ok(connects >= 2 && connects <= 12, `${connects} spare handshakes in 2 s (a loop makes hundreds)`);
  });

  it('presents clientIdentity to a backend that requires a client certificate', async () => {
    const b = await tlsBackend('rsa', true);
    const { proxy, ports: [port] } = await startProxy(originating(b.port, `{dnsName: rsa.test, trustCerts: [${join(PKI, 'ca.pem')}], clientIdentity: {privateKey: ${join(PKI, 'client.key')}, certs: [${join(PKI, 'client.pem')}]}}`));
    cleanup.push(() => proxy.stop());
    const r = await through(port!, Buffer.from('with a client cert'));
    assert.equal(r.got.toString(), 'with a client cert');
    assert.deepEqual(b.peers, ['client']);
  });
});

describe('TLS material', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { closeClients(); for (const c of cleanup.reverse()) await c(); });

  it('reloads the identity when its files are replaced and on SIGHUP; open connections keep going; a bad file keeps the old identity', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l5d-tls-reload-'));
    const put = (src: string, dst: string): void => {
      // Replace by rename, as cert-manager and editors do.
      copyFileSync(join(PKI, src), join(dir, dst + '.tmp'));
      renameSync(join(dir, dst + '.tmp'), join(dir, dst));
    };
    put('rsa.key', 'key.pem');
    writeFileSync(join(dir, 'cert.pem'), pem('rsa.pem') + pem('chain.pem'));
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(terminating(be.port, `defaultIdentity: {privateKey: ${join(dir, 'key.pem')}, certs: [${join(dir, 'cert.pem')}]}`));
    cleanup.push(() => proxy.stop());
    const open = await handshake(port!, { checkServerIdentity: () => undefined });
    assert.equal(open.subject, 'rsa');
    // Each worker reloads its files on its own and logs it: wait until every one has (any may accept the next handshake).
    const fromAll = (msg: string, from: number): Promise<LogLine[]> => {
      const since = (l: LogLine): boolean => l.msg === msg && proxy.logs.indexOf(l) >= from;
      const pids = (): number => new Set(proxy.logs.filter(since).map((l) => l['pid'])).size;
      return proxy.waitForCount((l) => since(l) && pids() >= Number(TEST_WORKERS), 1, 10_000, `'${msg}' from every worker`);
    };
    await proxy.waitForCount((l) => l.msg === 'listening', Number(TEST_WORKERS), 45_000, 'every worker listening');

    // 1. Files replaced: the key first (a mismatch, refused), then the certificate (now they match).
    writeFileSync(join(dir, 'cert.tmp'), pem('ec.pem') + pem('chain.pem'));
    put('ec.key', 'key.pem');
    renameSync(join(dir, 'cert.tmp'), join(dir, 'cert.pem'));
    await fromAll('tls reloaded', 0);
    const after1 = await handshake(port!, { checkServerIdentity: () => undefined });
    assert.equal(after1.subject, 'ec');
    after1.socket.destroy();

    // 2. A broken file: the old identity stays, the failure is logged with the file's key path.
    writeFileSync(join(dir, 'cert.pem'), 'not a certificate');
    const [failed] = await fromAll('tls reload failed; keeping the previous keys and certificates', proxy.logs.length);
    assert.match(String(failed!['err']), /defaultIdentity\.certs\[0\]: .*cert\.pem holds no PEM certificate/);
    const still = await handshake(port!, { checkServerIdentity: () => undefined });
    assert.equal(still.subject, 'ec');
    still.socket.destroy();

    // 3. SIGHUP after a fix that the watcher is not told about (same content as before the break → rsa again).
    const before = proxy.logs.length;
    writeFileSync(join(dir, 'cert.pem'), pem('rsa.pem') + pem('chain.pem'));
    put('rsa.key', 'key.pem');
    proxy.proc.kill('SIGHUP');
    await fromAll('tls reloaded', before);
    const after3 = await handshake(port!, { checkServerIdentity: () => undefined });
    assert.equal(after3.subject, 'rsa');
    after3.socket.destroy();

    // The connection opened before any reload still works.
    assert.equal((await roundTrip(open.socket, Buffer.from('kept'))).toString(), 'kept');
  });

  // Seven starts and checks one after another: on a loaded machine with two workers each, over the 60 s default.
  it('refuses to start on a missing, unreadable, non-PEM or mismatched key or certificate, naming the key path and the file', { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l5d-tls-bad-'));
    writeFileSync(join(dir, 'garbage.pem'), 'hello');
    const cases: [string, RegExp][] = [
      [`defaultIdentity: {privateKey: ${join(dir, 'missing.key')}, certs: [${join(PKI, 'rsa.pem')}]}`, /routers\[0\]\.servers\[0\]\.tls\.defaultIdentity\.privateKey: cannot read .*missing\.key: ENOENT/],
      [`defaultIdentity: {privateKey: ${join(dir, 'garbage.pem')}, certs: [${join(PKI, 'rsa.pem')}]}`, /defaultIdentity\.privateKey: .*garbage\.pem is not a PEM private key/],
      [`defaultIdentity: {privateKey: ${join(PKI, 'rsa.key')}, certs: [${join(dir, 'garbage.pem')}]}`, /defaultIdentity\.certs\[0\]: .*garbage\.pem holds no PEM certificate/],
      [`defaultIdentity: {privateKey: ${join(PKI, 'ec.key')}, certs: [${join(PKI, 'rsa.pem')}]}`, /defaultIdentity: the key in .*ec\.key does not match the certificate in .*rsa\.pem/],
      [`identities: {ec.test: {privateKey: ${join(PKI, 'ec.key')}, certs: [${join(dir, 'nope.pem')}]}}`, /identities\.ec\.test\.certs\[0\]: cannot read .*nope\.pem: ENOENT/],
      [`defaultIdentity: ${id('rsa')}\nclientAuth: {trustCerts: [${join(dir, 'garbage.pem')}]}`, /clientAuth\.trustCerts\[0\]: .*garbage\.pem holds no PEM certificate/],
    ];
    for (const [tls, want] of cases) {
      const file = writeConfig(terminating(1, tls));
      const [start, check] = await Promise.all([runCli([file], { LINKERD_TCP_WORKERS: '1' }), runCli(['--check', file])]);
      assert.equal(start.code, 1, JSON.stringify(start));
      assert.match(start.stderr, want, JSON.stringify(start));
      assert.doesNotMatch(start.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(check.code, 1, JSON.stringify(check));
      assert.match(check.stdout, want, JSON.stringify(check));
    }
    const client = writeConfig(`
admin: {port: 0}
routers:
- label: x
  dtab: /svc/be => /$/inet/127.0.0.1/1;
  servers: [{port: 0, dstName: /svc/be}]
  client: {kind: io.l5d.static, configs: [{prefix: /svc, tls: {dnsName: x, trustCerts: [${join(dir, 'gone.pem')}]}}]}
`);
    const r = await runCli([client], { LINKERD_TCP_WORKERS: '1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /routers\[0\]\.client\.configs\[0\]\.tls\.trustCerts\[0\]: cannot read .*gone\.pem: ENOENT/);
  });
});
