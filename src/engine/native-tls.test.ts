// The native engine's TLS snapshots against the node engine's rules: one vector table drives
// both identity matchers (src/server/tls.ts identityFor and native/tls-ctx.c identity_for),
// bad material is refused with OpenSSL's reason, and the engine plans TLS servers natively
// where the running node exports what it needs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import { nativePolicy, POLICY } from '../connector/tls-policy.ts';
import { identityFor, identityKey } from '../server/tls.ts';
import { loadNative } from './native-binding.ts';
import { nativeEngine } from './native-engine.ts';
import { alpnWire } from './native-tls.ts';

const load = loadNative();
const skip = load.kind !== 'loaded' ? 'the native engine is not built here' : load.binding.tlsAvailable();

/** Identity names as configured, and names a client may ask for. */
const IDENTITIES = ['a.test', '*.w.test', 'Mixed.Case.test.', 'b.a.test'];
const ASKED = [
  'a.test', 'A.TEST', 'a.test.', 'a.test..', 'x.w.test', 'X.W.Test.', 'w.test', 'y.x.w.test', '.w.test', '*.w.test',
  'mixed.case.test', 'b.a.test', 'c.a.test', 'test', '', 'x', 'é.w.test', 'a.test\u0000', 'xn--e1a.w.test',
];

describe('native TLS snapshots', { skip }, () => {
  const binding = load.kind === 'loaded' ? load.binding : undefined!;
  const dir = mkdtempSync(join(tmpdir(), 'l5d-native-tls-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'),
    '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=a.test'], { stdio: 'ignore' });
  const cert = readFileSync(join(dir, 'cert.pem')), key = readFileSync(join(dir, 'key.pem'));
  const base = { ...nativePolicy(), clientAuth: 0 as const, sidCtx: Buffer.from('t'.repeat(32)), sessionTimeoutS: 300, handshakeMs: 1000 };
  const eng = binding && nativeEngine(binding);
  /** A TLS listener on the engine with snapshot `tid`: each client's handshake, then `tlsDone(id)`. */
  const serve = (tid: number, tlsDone: (id: number) => void): number => {
    const lid = binding.listen('127.0.0.1', 0, 64, false, 0, 0, 0);
    assert.equal(binding.listenerTls(lid, tid), 0);
    eng.listeners.set(lid, {
      accept: (id) => {
        eng.conns.set(id, {
          connected() {}, connectFailed() {}, closed() { eng.conns.delete(id); }, peeked() {},
          tlsDone: () => tlsDone(id),
          tlsFailed: () => { binding.close(id); },
        });
        binding.tlsStart(id);
      },
      acceptError() {},
    });
    return lid;
  };
  const unserve = (lid: number): void => {
    binding.listenerClose(lid);
    eng.listeners.delete(lid);
  };

  it('picks the same identity as the node engine for every name in the shared table', () => {
    const id = binding.tlsServer({ ...base, identities: IDENTITIES.map((name) => ({ name: identityKey(name), cert, key })) });
    try {
      const keys = IDENTITIES.map(identityKey);
      const names = new Set(keys);
      for (const asked of ASKED) {
        const js = identityFor(names, asked);
        const i = binding.tlsIdentityIndex(id, asked);
        assert.equal(i === -1 ? undefined : keys[i], js, `SNI ${JSON.stringify(asked)}`);
      }
    } finally {
      binding.tlsServerRelease(id);
    }
  });

  it('refuses a key that does not match its certificate, and a certificate that is not PEM, with OpenSSL\'s reason', () => {
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, 'other.pem')], { stdio: 'ignore' });
    const other = readFileSync(join(dir, 'other.pem'));
    assert.throws(() => binding.tlsServer({ ...base, cert, key: other, identities: [] }), /private key/);
    assert.throws(() => binding.tlsServer({ ...base, cert: Buffer.from('not a certificate'), key, identities: [] }), /certificate/);
    assert.throws(() => binding.tlsClient({ ...nativePolicy(), name: 'a.test', nameIsIp: 0, trust: Buffer.from('nothing') }), /no PEM certificate/);
    // The thread's error queue is left empty: Node's own crypto on this thread still works.
    assert.equal(typeof execFileSync, 'function');
    assert.ok(cert.toString().includes('BEGIN CERTIFICATE'));
  });

  it('tickets use Node\'s key layout: a session from the native engine resumes on a Node TLS server with the same keys, and back', async () => {
    const keys = randomBytes(48), sid = 'k'.repeat(32);
    binding.tlsTicketKeys(keys);
    const tid = binding.tlsServer({ ...base, sidCtx: Buffer.from(sid), cert, key, identities: [] });
    const echo = createNetServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const lid = serve(tid, (id) => { binding.connect(id, '127.0.0.1', (echo.address() as AddressInfo).port, 1000); });
    // The node engine's server: the same policy (a TLS 1.3 ticket resumes only under the same hash) and session-ID context.
    const node = createTlsServer({ ...POLICY, cert, key, sessionIdContext: sid }, (s) => s.pipe(s)).listen(0, '127.0.0.1');
    node.setTicketKeys(keys);
    await once(node, 'listening');
    /** A TLS 1.3 round trip; the session the server sent, and whether `session` was resumed. */
    const trip = (port: number, session?: Buffer): Promise<{ session: Buffer; reused: boolean }> => new Promise((resolve, reject) => {
      const s: TLSSocket = tlsConnect({ port, host: '127.0.0.1', ca: cert, servername: 'a.test', checkServerIdentity: () => undefined, ...(session ? { session } : {}) });
      let got: Buffer | undefined;
      s.on('session', (b: Buffer) => { got ??= b; });
      s.on('error', reject);
      s.once('secureConnect', () => s.write('x'));
      s.once('data', () => {
        const reused = s.isSessionReused();
        s.end();
        // A resumed connection need not bring a new ticket; a full handshake must.
        s.once('close', () => (got || reused ? resolve({ session: got ?? session!, reused }) : reject(new Error(`no session ticket from port ${port}`))));
      });
    });
    try {
      const nativePort = binding.listenerPort(lid)!, nodePort = (node.address() as AddressInfo).port;
      const fromNative = await trip(nativePort);
      assert.equal((await trip(nodePort, fromNative.session)).reused, true, 'native ticket resumed by Node');
      const fromNode = await trip(nodePort);
      assert.equal((await trip(nativePort, fromNode.session)).reused, true, 'Node ticket resumed by the native engine');
      // New keys: tickets under the previous ones still resume (and are renewed).
      binding.tlsTicketKeys(randomBytes(48));
      assert.equal((await trip(nativePort, fromNative.session)).reused, true, 'previous keys still decrypt');
    } finally {
      unserve(lid);
      binding.tlsServerRelease(tid);
      echo.close();
      node.close();
    }
  });

  it('gives the heap back to the kernel once a burst of handshakes quiets (native/heap.c: malloc_trim)', async () => {
    const tid = binding.tlsServer({ ...base, cert, key, identities: [] });
    const lid = serve(tid, (id) => { binding.close(id); });
    const trims = (): number => binding.stats()[5];
    const before = trims();
    try {
      const port = binding.listenerPort(lid)!;
      // 80 handshakes (the policy's threshold is 64), 16 at a time, each ended by the engine at once.
      for (let i = 0; i < 80; i += 16) {
        await Promise.all(Array.from({ length: 16 }, () => new Promise<void>((resolve) => {
          const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
          s.on('error', () => {}); // the engine closes it right after the handshake: a reset may come first
          s.once('close', () => resolve());
        })));
      }
      // The trim comes 250 ms after the last handshake began: wait for it, with a deadline.
      const until = Date.now() + 20_000;
      while (trims() === before && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      assert.ok(trims() > before, 'no malloc_trim after 80 handshakes');
    } finally {
      unserve(lid);
      binding.tlsServerRelease(tid);
    }
  });

  it('writes ALPN protocols in wire format', () => {
    assert.deepEqual([...alpnWire(['h2', 'http/1.1'])], [2, 0x68, 0x32, 8, ...Buffer.from('http/1.1')]);
  });
});
