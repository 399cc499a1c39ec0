// Conformance, TLS: termination with bytes intact and SNI/ALPN in the access log, SNI
// identities (exact, wildcard, default, none), ALPN, mTLS (required and optional),
// origination with name verification, session resumption (TLS 1.3 and 1.2 tickets, and
// across SNI names), certificate reload, the handshake timeout and the other hostile
// handshakes by cause, half-close through TLS, and large transfers by hash with plaintext
// byte counts. Every case checks the bytes and the proxy's accounting (/metrics and the
// access log). Run against each engine whose planner puts TLS on it (support.ts nativeRunsTls).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { deadline, echo, type LogLine, TEST_WORKERS } from '../support/harness.ts';
import { accessRecords, config, dial, type Engine, harness, inet, metric, nativeRunsTls, readAll } from './support.ts';

const PKI = new URL('../fixtures/tls/', import.meta.url).pathname;
const pem = (f: string): string => readFileSync(join(PKI, f), 'utf8');
const CA = pem('ca.pem');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
/** A real ClientHello (openssl s_client, TLS 1.3, SNI and ALPN): one TLS record. */
const HELLO = Buffer.from(readFileSync(new URL('../fixtures/client-hello/openssl-tls13-sni-alpn.hex', import.meta.url), 'utf8').trim(), 'hex');
const HALF_HELLO = HELLO.subarray(0, HELLO.length >> 1);

/** An identity from the test PKI as a YAML flow map: the leaf, then the intermediate. */
const id = (name: string): string => `{privateKey: ${join(PKI, name + '.key')}, certs: [${join(PKI, name + '.pem')}, ${join(PKI, 'chain.pem')}]}`;

/** The conformance config (router `t`, /svc/be → `dst`) with `tls` (a YAML flow map) on its server. */
const terminating = (dst: string, tls: string, client?: string): string => config(dst, { server: `\n    tls: ${tls}`, ...(client ? { client } : {}) });

interface Outcome {
  ok: boolean;
  s: TLSSocket;
  error?: string;
  cn?: string;
  alpn?: string | false;
  protocol?: string | null;
  reused?: boolean;
  /** Sessions the server handed this client ('session' events, TLS 1.3 tickets arrive after the handshake). */
  sessions: Buffer[];
}

/** Failed-handshake counters of one server, by cause (only those counted at least once). */
function tlsFailures(text: string, port: number): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^l5d:srv:tls:failure\\{cause="([^"]+)", rt="t", srv_addr="127\\.0\\.0\\.1:${port}"\\} (\\d+)$`, 'gm');
  for (const m of text.matchAll(re)) out[m[1]!] = Number(m[2]);
  return out;
}

const srv = (port: number): string => `{rt="t", srv_addr="127.0.0.1:${port}"}`;
const scrape = (admin: string): Promise<string> => deadline(5000, 'metrics', fetch(`${admin}/metrics`).then((r) => r.text()));

/** Writes `parts` in 256 KiB slices, honouring backpressure, then ends the write side. */
async function sendAll(s: Socket, parts: Buffer[]): Promise<void> {
  for (const part of parts) {
    for (let at = 0; at < part.length; at += 256 << 10) {
      if (!s.write(part.subarray(at, at + (256 << 10)))) {
        await new Promise<void>((resolve) => {
          const done = (): void => { s.off('drain', done); s.off('close', done); resolve(); };
          s.on('drain', done);
          s.on('close', done);
        });
      }
      if (s.destroyed) throw new Error('socket closed while sending');
    }
  }
  s.end();
}

/** Hashes what `s` receives until its end; resolves with the hash and the count. */
function hashAll(s: Socket): Promise<{ hash: string; n: number }> {
  const h = createHash('sha256');
  let n = 0;
  s.on('data', (d: Buffer) => { h.update(d); n += d.length; });
  return new Promise((resolve) => {
    let done = false;
    const fin = (): void => { if (!done) { done = true; resolve({ hash: h.digest('hex'), n }); } };
    s.once('end', fin);
    s.once('close', fin);
  });
}

const HAVE_OPENSSL = spawnSync('openssl', ['version']).status === 0;

export function tlsSuite(engine: Engine): void {
  describe(`conformance (${engine}): tls`, () => {
    const h = harness(engine);
    const sockets = new Set<Socket>();
    h.cleanup.push(() => { for (const s of sockets) s.destroy(); });
    // Origination needs the planner to put a client with `tls` on this engine too.
    const noOrigination = engine === 'native' && !nativeRunsTls('origination') ? 'TLS origination is not on the native engine yet' : false;

    /**
     * A TLS handshake through the proxy: its outcome, and the open socket when it worked.
     * `allowHalfOpen` (taken by tls.connect, missing from its types): the socket stays writable
     * after the peer's end, as a net socket with it does.
     */
    function handshake(port: number, opts: ConnectionOptions & { allowHalfOpen?: boolean } = {}): Promise<Outcome> {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost', ...opts });
      sockets.add(s);
      const sessions: Buffer[] = [];
      s.on('session', (b: Buffer) => sessions.push(b));
      return deadline(5000, 'TLS handshake', new Promise<Outcome>((resolve) => {
        s.once('secureConnect', () => resolve({
          ok: true, s, sessions, cn: String(s.getPeerCertificate().subject?.CN), alpn: s.alpnProtocol ?? false,
          protocol: s.getProtocol(), reused: s.isSessionReused(),
        }));
        s.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, s, sessions, error: e.code ?? e.message }));
        s.once('close', () => resolve({ ok: false, s, sessions, error: 'closed' }));
      }));
    }

    /**
     * A handshake the server must refuse. With TLS 1.3 the client may finish first (its
     * certificate is judged after its Finished): then the server's alert and close must follow,
     * with no byte of application data.
     */
    async function refused(port: number, opts: ConnectionOptions = {}): Promise<string> {
      const o = await handshake(port, opts);
      if (!o.ok) return o.error!;
      const got: Buffer[] = [];
      o.s.on('data', (d: Buffer) => got.push(d));
      o.s.write('must not arrive');
      const why = await deadline(5000, 'the server\'s refusal after the client finished', new Promise<string>((resolve) => {
        o.s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        o.s.once('close', () => resolve('closed'));
      }));
      assert.equal(Buffer.concat(got).length, 0, 'a refused client received application data');
      return why;
    }

    /**
     * `openssl s_client` to the proxy with `args`: sends a line and waits for its echo (so the
     * handshake, and a TLS 1.3 ticket sent right after it, are done), then closes its input
     * (close_notify, exit); resolves with all it printed (its own text comes out at exit).
     */
    async function sClient(port: number, args: string[]): Promise<string> {
      const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', join(PKI, 'ca.pem'), '-nocommands', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      h.cleanup.push(() => { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); });
      let out = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.stderr.resume();
      c.stdin.on('error', () => {});
      const exited = once(c, 'close');
      const token = `ping-${randomBytes(6).toString('hex')}`;
      c.stdin.write(token + '\n');
      await deadline(5000, `s_client ${args.join(' ')}: the echo`, new Promise<void>((resolve, reject) => {
        c.stdout.on('data', () => { if (out.includes(token)) resolve(); });
        c.once('close', () => (out.includes(token) ? resolve() : reject(new Error(`s_client exited first: ${out}`))));
      }));
      c.stdin.end();
      await deadline(5000, 's_client exit', exited);
      return out;
    }

    /** Sends `data`, half-closes, and resolves with everything until the peer's end. */
    async function roundTrip(s: TLSSocket, data: Buffer | string): Promise<Buffer> {
      const back = readAll(s);
      s.end(data);
      return deadline(10_000, 'echo through TLS', back);
    }

    /** A TLS echo backend (node:tls) with `name`'s identity; what each connection sent as SNI. */
    async function tlsBackend(name: string, handler: (s: TLSSocket) => void = (s) => s.pipe(s)): Promise<{ port: number; snis: (string | false)[]; secured: number }> {
      const r = { port: 0, snis: [] as (string | false)[], secured: 0 };
      const raws = new Set<Socket>();
      const server = createTlsServer({ key: pem(`${name}.key`), cert: pem(`${name}.pem`) + pem('chain.pem'), allowHalfOpen: true }, (s) => {
        r.secured++;
        r.snis.push(s.servername ?? false);
        s.on('error', () => {});
        handler(s);
      });
      server.on('tlsClientError', () => {});
      server.on('connection', (s: Socket) => { raws.add(s); s.on('close', () => raws.delete(s)); });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      h.cleanup.push(() => new Promise<void>((done) => { server.close(() => done()); for (const s of raws) s.destroy(); }));
      r.port = (server.address() as { port: number }).port;
      return r;
    }

    it('terminates TLS to a plain backend: bytes intact both ways, sni and alpn in the access log, plaintext counts in /metrics', async () => {
      const b = await h.backend(echo);
      const { proxy: p, port, admin } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, alpnProtocols: [h2, http/1.1]}`));
      const o = await handshake(port, { servername: 'rsa.test', ALPNProtocols: ['http/1.1'] });
      assert.ok(o.ok, o.error);
      assert.equal(o.s.authorized, true, 'the chain verifies against the test root for rsa.test');
      assert.equal(o.cn, 'rsa');
      assert.equal(o.alpn, 'http/1.1');
      const data = randomBytes(1 << 20);
      assert.equal(sha(await roundTrip(o.s, data)), sha(data));
      const [rec] = await p.waitForCount((l) => l.msg === 'connection closed', 1);
      assert.equal(rec!['sni'], 'rsa.test');
      assert.equal(rec!['alpn'], 'http/1.1');
      assert.equal(rec!['reason'], 'done');
      assert.equal(rec!['endpoint'], `127.0.0.1:${b.port}`);
      assert.equal(rec!['rxBytes'], data.length, 'plaintext bytes, not TLS records');
      assert.equal(rec!['txBytes'], data.length);
      const text = await scrape(admin);
      assert.equal(metric(text, `l5d:srv:stream:rx_bytes${srv(port)}`), data.length);
      assert.equal(metric(text, `l5d:srv:stream:tx_bytes${srv(port)}`), data.length);
      assert.ok(metric(text, `l5d:srv:tls:handshake_us_count${srv(port)}`) !== undefined, 'handshake latency is exported');
      assert.equal(metric(text, `l5d:srv:accepts${srv(port)}`), 1);
      assert.deepEqual(tlsFailures(text, port), {});
      assert.equal(b.accepted, 1);
    });

    it('SNI: an exact name and a wildcard pick their identities, an unknown name the default; without a default an unknown name is refused (unknown_sni), counted and logged with its name', async () => {
      const b = await h.backend(echo);
      const { proxy: p, port, admin } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, identities: {p8.test: ${id('p8')}, "*.wild.test": ${id('ec')}}}`));
      // Names the certificate holds are verified against the root; for the rest the CN tells which identity answered.
      const cases: [string, string, boolean][] = [['p8.test', 'p8', true], ['a.wild.test', 'ec', true], ['unknown.test', 'rsa', false], ['b.a.wild.test', 'rsa', false]];
      for (const [servername, cn, verify] of cases) {
        const o = await handshake(port, { servername, ...(verify ? {} : { checkServerIdentity: () => undefined }) });
        assert.ok(o.ok, `${servername}: ${o.error}`);
        assert.equal(o.cn, cn, servername);
        assert.equal(String(await roundTrip(o.s, servername)), servername);
      }
      const recs = await p.waitForCount((l) => l.msg === 'connection closed', cases.length);
      assert.deepEqual(recs.map((r) => [r['sni'], r['reason']]).sort(), cases.map(([n]) => [n, 'done']).sort());
      assert.deepEqual(tlsFailures(await scrape(admin), port), {});

      const { proxy: q, port: noDefault, admin: admin2 } = await h.proxy(terminating(inet(b.port), `{identities: {p8.test: ${id('p8')}}}`));
      const known = await handshake(noDefault, { servername: 'p8.test' });
      assert.ok(known.ok, known.error);
      assert.equal(String(await roundTrip(known.s, 'known')), 'known');
      const accepted = b.accepted;
      await refused(noDefault, { servername: 'nope.test', checkServerIdentity: () => undefined });
      const rec = await q.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'tls_handshake');
      assert.equal(rec['error'], 'unknown_sni');
      assert.equal(rec['sni'], 'nope.test', 'the record names the SNI the client sent');
      assert.equal(rec['rxBytes'], 0);
      assert.deepEqual(tlsFailures(await scrape(admin2), noDefault), { unknown_sni: 1 });
      assert.equal(b.accepted, accepted, 'a refused handshake never reaches the backend');
    });

    it('ALPN: a client offering h2 gets h2 (logged); one offering only `foo` is refused (alpn), as today on the node engine', async () => {
      const b = await h.backend(echo);
      const { proxy: p, port, admin } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, alpnProtocols: [h2, http/1.1]}`));
      const h2 = await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] });
      assert.ok(h2.ok, h2.error);
      assert.equal(h2.alpn, 'h2');
      assert.equal(String(await roundTrip(h2.s, 'h2 bytes')), 'h2 bytes');
      const foo = await handshake(port, { ALPNProtocols: ['foo'] });
      assert.equal(foo.ok, false, 'no protocol in common: refused (RFC 7301 no_application_protocol)');
      const recs = await p.waitForCount((l) => l.msg === 'connection closed', 2);
      const ok = recs.find((r) => r['reason'] === 'done')!;
      assert.equal(ok['alpn'], 'h2');
      const bad = recs.find((r) => r['reason'] === 'tls_handshake')!;
      assert.equal(bad['error'], 'alpn');
      assert.equal(bad['sni'], 'localhost');
      assert.deepEqual(tlsFailures(await scrape(admin), port), { alpn: 1 });
      assert.equal(b.accepted, 1);
    });

    it('mTLS: required — a good client certificate passes, none is refused (client_cert); not required — none passes, one from another CA is refused (client_cert)', async () => {
      const b = await h.backend(echo);
      const trust = `trustCerts: [${join(PKI, 'client-ca.pem')}]`;
      const good = { key: pem('client.key'), cert: pem('client.pem') };
      const rogue = { key: pem('rogue.key'), cert: pem('rogue.pem') };

      const { proxy: p, port, admin } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, clientAuth: {${trust}, required: true}}`));
      const withCert = await handshake(port, good);
      assert.ok(withCert.ok, withCert.error);
      assert.equal(String(await roundTrip(withCert.s, 'with a certificate')), 'with a certificate');
      await refused(port, {});
      const recs = await p.waitForCount((l) => l.msg === 'connection closed', 2);
      assert.deepEqual(recs.map((r) => [r['reason'], r['error']]).sort(), [['done', null], ['tls_handshake', 'client_cert']]);
      assert.deepEqual(tlsFailures(await scrape(admin), port), { client_cert: 1 });
      assert.equal(b.accepted, 1);

      const { proxy: q, port: optional, admin: admin2 } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, clientAuth: {${trust}, required: false}}`));
      const none = await handshake(optional, {});
      assert.ok(none.ok, none.error);
      assert.equal(String(await roundTrip(none.s, 'without a certificate')), 'without a certificate');
      const alsoGood = await handshake(optional, good);
      assert.ok(alsoGood.ok, alsoGood.error);
      assert.equal(String(await roundTrip(alsoGood.s, 'good')), 'good');
      // Pinned from the node engine: a certificate that is sent must verify, even when none is required.
      await refused(optional, rogue);
      const recs2 = await q.waitForCount((l) => l.msg === 'connection closed', 3);
      assert.deepEqual(recs2.map((r) => [r['reason'], r['error']]).sort(), [['done', null], ['done', null], ['tls_handshake', 'client_cert']]);
      assert.deepEqual(tlsFailures(await scrape(admin2), optional), { client_cert: 1 });
      assert.equal(b.accepted, 3);
    });

    it('originates TLS to a backend verified against dnsName (SNI sent, bytes intact); a wrong dnsName fails the connect, counted, no bytes', { skip: noOrigination }, async () => {
      const tb = await tlsBackend('rsa');
      const client = (dnsName: string): string => `    connectAttempts: 1\n    tls: {dnsName: ${dnsName}, trustCerts: [${join(PKI, 'ca.pem')}]}`;
      const { proxy: p, port, admin } = await h.proxy(config(inet(tb.port), { client: client('rsa.test') }));
      const c = await dial(port);
      const back = readAll(c);
      const data = randomBytes(1 << 20);
      c.end(data);
      assert.equal(sha(await deadline(10_000, 'echo through origination', back)), sha(data));
      assert.deepEqual(tb.snis, ['rsa.test']);
      const [rec] = await p.waitForCount((l) => l.msg === 'connection closed', 1);
      assert.deepEqual([rec!['reason'], rec!['rxBytes'], rec!['txBytes']], ['done', data.length, data.length]);
      const text = await scrape(admin);
      assert.equal(metric(text, 'l5d:balancer:connection:connects{dst="/svc/be", rt="t"}'), 1);

      const { proxy: q, port: wrong, admin: admin2 } = await h.proxy(config(inet(tb.port), { client: client('other.test') }));
      const c2 = await dial(wrong);
      const got = readAll(c2);
      c2.write('secret');
      assert.equal((await deadline(10_000, 'the client closed after the failed connect', got)).length, 0);
      const rec2 = await q.waitForLog((l) => l.msg === 'connection closed');
      assert.equal(rec2['reason'], 'connect_failed');
      assert.equal(rec2['error'], 'ERR_TLS_CERT_ALTNAME_INVALID');
      assert.equal(rec2['txBytes'], 0);
      const text2 = await scrape(admin2);
      assert.equal(metric(text2, 'l5d:balancer:connection:failure{cause="other", dst="/svc/be", rt="t"}'), 1);
      assert.equal(metric(text2, 'l5d:balancer:connection:connects{dst="/svc/be", rt="t"}') ?? 0, 0);
      assert.equal(tb.secured, 1, 'the backend finished no handshake with the proxy that refused its name');
    });

    it('resumes sessions: TLS 1.3 and TLS 1.2 tickets; across SNI names Node clients offer none, and the server resumes the one openssl s_client offers (pinned)', async (t) => {
      const b = await h.backend(echo);
      const { proxy: p, port, admin } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, identities: {"*.wild.test": ${id('ec')}}}`));
      /** A full handshake with `servername`: the session it leaves (the first one the server sent). */
      const first = async (opts: ConnectionOptions): Promise<Buffer> => {
        const o = await handshake(port, { checkServerIdentity: () => undefined, ...opts });
        assert.ok(o.ok, o.error);
        assert.equal(o.reused, false);
        // TLS 1.3 resumes by ticket only; a TLS 1.2 session must carry one too (not only a session ID).
        if (opts.maxVersion === 'TLSv1.2') assert.ok(o.s.getTLSTicket(), 'TLS 1.2: the session came with a ticket');
        assert.equal(String(await roundTrip(o.s, 'first')), 'first');
        assert.ok(o.sessions.length > 0, 'the server issued a session');
        return o.sessions[0]!;
      };
      const again = async (session: Buffer, opts: ConnectionOptions): Promise<Outcome> => {
        const o = await handshake(port, { checkServerIdentity: () => undefined, session, ...opts });
        assert.ok(o.ok, o.error);
        assert.equal(String(await roundTrip(o.s, 'again')), 'again');
        return o;
      };
      let n = 0;
      for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
        const o = await again(await first({ maxVersion, servername: 'a.wild.test' }), { maxVersion, servername: 'a.wild.test' });
        assert.equal(o.protocol, maxVersion);
        assert.equal(o.reused, true, `${maxVersion}: the second connection resumes`);
        // Node's TLS client offers a session only to the name it was made for (its own rule: the
        // same happens against a plain node:tls server), so to a Node client another name is a
        // full handshake with that name's certificate.
        const other = await again(await first({ maxVersion, servername: 'a.wild.test' }), { maxVersion, servername: 'b.wild.test' });
        assert.equal(other.reused, false, `${maxVersion}: a Node client does not offer a.wild.test's session to b.wild.test`);
        assert.equal(other.cn, 'ec');
        n += 4;
      }
      const recs = await p.waitForCount((l) => l.msg === 'connection closed', n);
      assert.ok(recs.every((r) => r['reason'] === 'done'), JSON.stringify(recs.map((r) => r['reason'])));
      // A known divergence: the node engine logs a resumed TLS 1.2 connection without its SNI
      // (Node's server-side TLSSocket has no servername when OpenSSL resumed the session); the
      // native engine logs the name sent. Both pinned until the node engine is fixed.
      const resumed12 = engine === 'node' ? null : 'a.wild.test';
      assert.deepEqual(recs.map((r) => r['sni']), ['a.wild.test', 'a.wild.test', 'a.wild.test', 'b.wild.test', 'a.wild.test', resumed12, 'a.wild.test', 'b.wild.test']);

      // The server's side across names needs a client that offers the session anyway.
      if (!HAVE_OPENSSL) return t.skip('openssl is not on PATH: the server side of resumption across names is not checked');
      const dir = mkdtempSync(join(tmpdir(), 'l5d-conf-sess-'));
      h.cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const sess = join(dir, 'session.pem');
      const seen: string[] = [];
      for (const flag of ['-tls1_3', '-tls1_2']) {
        for (const [from, to] of [['a.wild.test', 'b.wild.test'], ['localhost', 'c.wild.test']] as const) {
          await sClient(port, [flag, '-servername', from, '-sess_out', sess]);
          const out = await sClient(port, [flag, '-servername', to, '-sess_in', sess]);
          const line = /^(New|Reused), (TLSv1\.[23]),/m.exec(out);
          seen.push(`${flag} ${from} -> ${to}: ${line?.[1]} ${/^subject=CN = (\S+)/m.exec(out)?.[1]}`);
        }
      }
      // Pinned from the node engine (not an endorsement, see RFC 6066 §3 for TLS 1.2): the server
      // resumes a session offered for another name, also one made under another identity, and
      // the client then holds the first identity's certificate (rsa for c.wild.test).
      assert.deepEqual(seen, [
        '-tls1_3 a.wild.test -> b.wild.test: Reused ec',
        '-tls1_3 localhost -> c.wild.test: Reused rsa',
        '-tls1_2 a.wild.test -> b.wild.test: Reused ec',
        '-tls1_2 localhost -> c.wild.test: Reused rsa',
      ]);
      const recs2 = await p.waitForCount((l) => l.msg === 'connection closed', n + 8);
      // TLS 1.3 logs the name sent on the resumed connection. A resumed TLS 1.2 one: the node
      // engine none (as above), the native engine the session's name (OpenSSL's servername of a
      // resumed TLS 1.2 session), not the name sent. Neither is the name sent: both pinned.
      const across12 = (session: string): string | null => (engine === 'node' ? null : session);
      assert.deepEqual(recs2.slice(n).map((r) => [r['sni'], r['reason']]), [
        ['a.wild.test', 'done'], ['b.wild.test', 'done'], ['localhost', 'done'], ['c.wild.test', 'done'],
        ['a.wild.test', 'done'], [across12('a.wild.test'), 'done'], ['localhost', 'done'], [across12('localhost'), 'done'],
      ]);
      assert.deepEqual(tlsFailures(await scrape(admin), port), {});
    });

    it('reloads a rename-replaced certificate and key (then POST /reload): new handshakes see the new certificate, an open connection keeps working', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'l5d-conf-tls-'));
      h.cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const put = (text: string, dst: string): void => {
        writeFileSync(join(dir, dst + '.tmp'), text);
        renameSync(join(dir, dst + '.tmp'), join(dir, dst));
      };
      copyFileSync(join(PKI, 'rsa.key'), join(dir, 'key.pem'));
      writeFileSync(join(dir, 'cert.pem'), pem('rsa.pem') + pem('chain.pem'));
      const b = await h.backend(echo);
      const { proxy: p, port, admin } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: {privateKey: ${join(dir, 'key.pem')}, certs: [${join(dir, 'cert.pem')}]}}`));
      // Every worker must have loaded the first files (a worker still starting would read the new ones and log no reload).
      await p.waitForCount((l) => l.msg === 'listening', Number(TEST_WORKERS), 45_000, 'every worker listening');
      const open = await handshake(port, { servername: 'rsa.test' });
      assert.ok(open.ok, open.error);
      assert.equal(open.cn, 'rsa');
      const echoed = (s: TLSSocket, msg: string): Promise<string> => {
        const got = deadline(5000, 'echo on the open connection', once(s, 'data').then(([d]) => String(d)));
        s.write(msg);
        return got;
      };
      assert.equal(await echoed(open.s, 'before'), 'before');
      const from = p.logs.length;
      put(pem('ec.key'), 'key.pem');
      put(pem('ec.pem') + pem('chain.pem'), 'cert.pem');
      const r = await deadline(10_000, 'POST /reload', fetch(`${admin}/reload`, { method: 'POST' }));
      assert.equal(r.status, 200, await r.text());
      // The files are re-read by the watcher (POST /reload re-reads the config), in each worker on
      // its own: wait until every one has (any may accept the next handshake).
      const since = (l: LogLine): boolean => l.msg === 'tls reloaded' && p.logs.indexOf(l) >= from;
      const pids = (): number => new Set(p.logs.filter(since).map((l) => l['pid'])).size;
      await p.waitForCount((l) => since(l) && pids() >= Number(TEST_WORKERS), 1, 10_000, '\'tls reloaded\' from every worker');
      const fresh = await handshake(port, { servername: 'ec.test' });
      assert.ok(fresh.ok, fresh.error);
      assert.equal(fresh.cn, 'ec', 'a new handshake presents the new certificate');
      assert.equal(String(await roundTrip(fresh.s, 'after')), 'after');
      assert.equal(await echoed(open.s, 'still open'), 'still open');
      assert.equal(String(await roundTrip(open.s, 'kept')), 'kept');
      const recs = await p.waitForCount((l) => l.msg === 'connection closed', 2);
      assert.deepEqual(recs.map((x) => [x['sni'], x['reason']]).sort(), [['ec.test', 'done'], ['rsa.test', 'done']]);
      const text = await scrape(admin);
      assert.ok((metric(text, 'l5d:tls:reloads{result="ok"}') ?? 0) >= 1, 'reload counted');
    });

    it('a reload that changes clientAuth.trustCerts stops sessions made under the old trust from resuming (the session-ID context is a hash of it)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'l5d-conf-sid-'));
      h.cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      writeFileSync(join(dir, 'clients.pem'), pem('client-ca.pem'));
      const b = await h.backend(echo);
      // Two workers: their ticket keys come from the primary and outlive a reload, so only the
      // session-ID context can stop the old session (one node process makes new keys at a reload).
      const { proxy: p, port } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, clientAuth: {trustCerts: [${join(dir, 'clients.pem')}], required: false}}`), { LINKERD_TCP_WORKERS: '2' });
      await p.waitForCount((l) => l.msg === 'listening', 2, 45_000, 'every worker listening');
      const opts: ConnectionOptions = { maxVersion: 'TLSv1.3', servername: 'rsa.test' };
      const o = await handshake(port, opts);
      assert.ok(o.ok, o.error);
      assert.equal(String(await roundTrip(o.s, 'one')), 'one');
      const session = o.sessions[0]!;
      const before = await handshake(port, { ...opts, session });
      assert.ok(before.ok && before.reused, 'resumes while the trust is unchanged');
      before.s.destroy();
      const from = p.logs.length;
      writeFileSync(join(dir, 'clients.pem.tmp'), pem('rogue-ca.pem'));
      renameSync(join(dir, 'clients.pem.tmp'), join(dir, 'clients.pem'));
      const since = (l: LogLine): boolean => l.msg === 'tls reloaded' && p.logs.indexOf(l) >= from;
      const pids = (): number => new Set(p.logs.filter(since).map((l) => l['pid'])).size;
      await p.waitForCount((l) => since(l) && pids() >= 2, 1, 15_000, '\'tls reloaded\' from every worker');
      const after = await handshake(port, { ...opts, session });
      assert.ok(after.ok, after.error);
      assert.equal(after.reused, false, 'a session made under the removed CA no longer resumes');
      assert.equal(String(await roundTrip(after.s, 'two')), 'two');
    });

    it('a client that sends its ClientHello and FIN, then resets, is held to the deadline without the proxy spinning on the reset', async () => {
      const b = await h.backend(echo);
      // One process (its CPU is the one read), and a deadline long enough for a spin to show.
      const { proxy: p, port } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, handshakeTimeoutMs: 1500}`), { LINKERD_TCP_WORKERS: '1' });
      // A real ClientHello: what a TLS client sends first, caught by a plain listener.
      const catcher = createNetServer();
      catcher.listen(0, '127.0.0.1');
      await once(catcher, 'listening');
      const caught = once(catcher, 'connection').then(([c]) => once(c as Socket, 'data').then(([d]) => { (c as Socket).destroy(); return d as Buffer; }));
      const probe = tlsConnect({ port: (catcher.address() as AddressInfo).port, host: '127.0.0.1', servername: 'rsa.test' });
      probe.on('error', () => {});
      const hello = await deadline(5000, 'a ClientHello', caught);
      probe.destroy();
      catcher.close();
      const cpu = (): number => { const f = readFileSync(`/proc/${p.proc.pid!}/stat`, 'utf8').split(') ')[1]!.split(' '); return Number(f[11]) + Number(f[12]); };
      const s = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
      sockets.add(s);
      s.on('error', () => {});
      await deadline(5000, 'connect', once(s, 'connect'));
      s.end(hello); // the ClientHello, then FIN: the proxy answers, then reads EOF
      await deadline(5000, 'the server\'s first flight', once(s, 'data'));
      const t0 = performance.now(), c0 = cpu();
      s.resetAndDestroy(); // then RST: the socket reports ERR|HUP until the deadline ends it
      const rec = await p.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'tls_handshake', 10_000);
      const ticks = cpu() - c0, ms = performance.now() - t0;
      assert.equal(rec['error'], 'timeout');
      // clock ticks are 10 ms: a spin would spend most of the wait on the CPU.
      assert.ok(ticks * 10 < ms / 4, `the proxy used ${ticks * 10} ms of CPU in ${Math.round(ms)} ms waiting for the deadline`);
    });

    it('handshake timeout: silent and stalled clients, and a half ClientHello then FIN, are cut at the timeout (timeout); garbage is malformed; a half ClientHello then RST is closed; each only its own connection', async () => {
      const b = await h.backend(echo);
      const { proxy: p, port, admin } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}, handshakeTimeoutMs: 300}`));
      const healthy = await handshake(port);
      assert.ok(healthy.ok, healthy.error);
      /**
       * A raw client sending `bytes`, then: `stall` (nothing more), `fin` or `rst`. Resolves
       * once the proxy closed it, with the ms that took and the client's address as logged.
       */
      const raw = (bytes: Buffer | undefined, then: 'stall' | 'fin' | 'rst'): Promise<{ ms: number; client: string }> => new Promise((resolve) => {
        const t0 = performance.now();
        let client = '';
        const s: Socket = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => {
          client = `127.0.0.1:${s.localPort}`;
          const next = (): void => { if (then === 'fin') s.end(); else if (then === 'rst') s.resetAndDestroy(); };
          if (bytes) s.write(bytes, next); else next();
        });
        sockets.add(s);
        s.on('error', () => {});
        // The proxy's FIN (or RST) is its verdict; this side may still be open (allowHalfOpen).
        const done = (): void => resolve({ ms: performance.now() - t0, client });
        s.once('end', done);
        s.once('close', done);
        s.resume();
      });
      const [silent, stalled, garbage, fin] = await deadline(10_000, 'every hostile client closed', Promise.all([
        raw(undefined, 'stall'),
        raw(HALF_HELLO, 'stall'),
        raw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'stall'),
        raw(HALF_HELLO, 'fin'),
        raw(HALF_HELLO, 'rst'),
      ]));
      for (const [what, r] of [['silent', silent!], ['stalled', stalled!], ['FIN', fin!]] as const) assert.ok(r.ms >= 250, `${what}: cut at the handshake timeout, not before (${r.ms} ms)`);
      // The parallel good connection, opened before, still works; so does a new one.
      assert.equal(String(await roundTrip(healthy.s, 'still here')), 'still here');
      const again = await handshake(port);
      assert.ok(again.ok, again.error);
      assert.equal(String(await roundTrip(again.s, 'new')), 'new');
      const recs = await p.waitForCount((l) => l.msg === 'connection closed', 7);
      const cause = (client: string): unknown => recs.find((r) => r['client'] === client && r['reason'] === 'tls_handshake')?.['error'];
      assert.equal(cause(silent!.client), 'timeout', 'silent');
      assert.equal(cause(stalled!.client), 'timeout', 'half a ClientHello, then nothing');
      assert.equal(cause(garbage!.client), 'malformed', 'an HTTP request');
      // Pinned from the node engine: a half ClientHello then FIN is held to the timeout (counted
      // timeout, not closed); only a reset is counted closed (its record has no client address).
      assert.equal(cause(fin!.client), 'timeout', 'half a ClientHello, then FIN');
      assert.deepEqual(recs.filter((r) => r['reason'] === 'tls_handshake').map((r) => r['error']).sort(), ['closed', 'malformed', 'timeout', 'timeout', 'timeout']);
      assert.deepEqual(tlsFailures(await scrape(admin), port), { closed: 1, malformed: 1, timeout: 3 });
      assert.equal(b.accepted, 2, 'no failed handshake reached the backend');
      assert.equal(accessRecords(p).filter((r) => r['reason'] === 'done').length, 2);
    });

    it('half-close over TLS: the client ends first (close_notify) and still gets the reply; the backend ends first and the client still sends', async () => {
      let bsock!: Socket;
      let accepted = Promise.withResolvers<void>();
      const b = await h.backend((s) => { bsock = s; accepted.resolve(); });
      const { proxy: p, port } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}}`));
      const c = await handshake(port, { allowHalfOpen: true });
      assert.ok(c.ok, c.error);
      await deadline(5000, 'backend accept', accepted.promise);
      const fromClient = readAll(bsock);
      const toClient = readAll(c.s);
      c.s.end('request');
      assert.equal(String(await deadline(5000, 'the backend sees the client\'s end', fromClient)), 'request');
      bsock.end('late reply');
      assert.equal(String(await deadline(5000, 'the client gets the reply after its end', toClient)), 'late reply');

      accepted = Promise.withResolvers<void>();
      const c2 = await handshake(port, { allowHalfOpen: true });
      assert.ok(c2.ok, c2.error);
      await deadline(5000, 'backend accept', accepted.promise);
      const fromClient2 = readAll(bsock);
      const toClient2 = readAll(c2.s);
      bsock.end('server first');
      assert.equal(String(await deadline(5000, 'the client sees the backend\'s end', toClient2)), 'server first');
      assert.equal(c2.s.destroyed, false, 'the client may still send');
      c2.s.end('client after');
      assert.equal(String(await deadline(5000, 'the backend gets what the client sent after', fromClient2)), 'client after');
      const recs = await p.waitForCount((l) => l.msg === 'connection closed', 2);
      assert.deepEqual(recs.map((r) => [r['reason'], r['rxBytes'], r['txBytes']]), [['done', 7, 10], ['done', 12, 12]]);
    });

    it('carries 100 MiB each way through termination intact (by hash), the access log counting plaintext bytes', { timeout: 120_000 }, async () => {
      const size = 100 << 20;
      const up = randomBytes(size);
      const k = (size >> 1) + 7; // the backend sends `up` rotated by k: other bytes than it receives
      const down = [up.subarray(k), up.subarray(0, k)];
      const wantDown = createHash('sha256').update(down[0]!).update(down[1]!).digest('hex');
      let upGot!: Promise<{ hash: string; n: number }>;
      const b = await h.backend((s) => { upGot = hashAll(s); void sendAll(s, down).catch(() => {}); });
      const { proxy: p, port, admin } = await h.proxy(terminating(inet(b.port), `{defaultIdentity: ${id('rsa')}}`));
      const o = await handshake(port, { allowHalfOpen: true });
      assert.ok(o.ok, o.error);
      const downGot = hashAll(o.s);
      await deadline(60_000, 'sending 100 MiB', sendAll(o.s, [up]));
      const [u, d] = await deadline(60_000, '100 MiB each way', Promise.all([upGot, downGot]));
      assert.equal(u.n, size);
      assert.equal(u.hash, sha(up));
      assert.equal(d.n, size);
      assert.equal(d.hash, wantDown);
      const [rec] = await p.waitForCount((l) => l.msg === 'connection closed', 1);
      assert.deepEqual([rec!['reason'], rec!['rxBytes'], rec!['txBytes']], ['done', size, size]);
      const text = await scrape(admin);
      assert.equal(metric(text, `l5d:srv:stream:rx_bytes${srv(port)}`), size);
      assert.equal(metric(text, `l5d:srv:stream:tx_bytes${srv(port)}`), size);
    });

    it('carries 20 MiB each way through termination and origination intact, the access log counting plaintext bytes', { skip: noOrigination }, async () => {
      const size = 20 << 20;
      const up = randomBytes(size), down = randomBytes(size);
      let upGot!: Promise<{ hash: string; n: number }>;
      const tb = await tlsBackend('rsa', (s) => { upGot = hashAll(s); void sendAll(s, [down]).catch(() => {}); });
      const { proxy: p, port } = await h.proxy(terminating(inet(tb.port), `{defaultIdentity: ${id('ec')}}`, `    tls: {dnsName: rsa.test, trustCerts: [${join(PKI, 'ca.pem')}]}`));
      const o = await handshake(port, { servername: 'ec.test', allowHalfOpen: true });
      assert.ok(o.ok, o.error);
      const downGot = hashAll(o.s);
      await deadline(30_000, 'sending 20 MiB', sendAll(o.s, [up]));
      const [u, d] = await deadline(30_000, '20 MiB each way', Promise.all([upGot, downGot]));
      assert.deepEqual([u.n, u.hash], [size, sha(up)]);
      assert.deepEqual([d.n, d.hash], [size, sha(down)]);
      assert.deepEqual(tb.snis, ['rsa.test']);
      const [rec] = await p.waitForCount((l) => l.msg === 'connection closed', 1);
      assert.deepEqual([rec!['reason'], rec!['sni'], rec!['rxBytes'], rec!['txBytes']], ['done', 'ec.test', size, size]);
    });
  });
}
