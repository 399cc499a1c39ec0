import assert from 'node:assert/strict';
import { constants } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { connect, createServer } from 'node:tls';
import { ExpiringLru, isTls13Session, SessionCache } from './session-cache.ts';

it('session cache: finds a session by id, forgets it after ttlMs, and keeps at most `max` (least recent out)', () => {
  let now = 0;
  const c = new SessionCache({ max: 2, ttlMs: 1000, now: () => now });
  const id = (n: number): Buffer => Buffer.from([n]);
  const got = (n: number): string | undefined => { let v: string | undefined; c.get(id(n), (d) => (v = d?.toString())); return v; };
  c.set(id(1), Buffer.from('one'));
  c.set(id(2), Buffer.from('two'));
  assert.equal(got(1), 'one');
  c.set(id(3), Buffer.from('three')); // over max: 1 (set first) goes
  assert.equal(got(1), undefined);
  assert.equal(got(2), 'two');
  now = 1001;
  assert.equal(got(3), undefined); // expired
  assert.equal(c.size, 1);
});

describe('isTls13Session', () => {
  /** What OpenSSL hands `newSession` for a real handshake at `version`. */
  async function sessionData(version: 'TLSv1.2' | 'TLSv1.3'): Promise<Buffer[]> {
    const PKI = new URL('../../test/fixtures/tls/', import.meta.url).pathname;
    const server = createServer({ key: readFileSync(`${PKI}ec.key`), cert: readFileSync(`${PKI}ec.pem`) }, (s) => s.end());
    const got: Buffer[] = [];
    const first = Promise.withResolvers<void>();
    server.on('newSession', (_id: Buffer, data: Buffer, done: () => void) => { got.push(data); first.resolve(); done(); });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    // TLS 1.2 without tickets: the client that resumes by session ID (with tickets OpenSSL stores none).
    const c = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, minVersion: version, maxVersion: version,
      secureOptions: version === 'TLSv1.2' ? constants.SSL_OP_NO_TICKET : 0 });
    c.on('data', () => {});
    await Promise.all([once(c, 'end'), first.promise]);
    c.destroy();
    server.close();
    return got;
  }

  it('tells a TLS 1.3 session (resumed by ticket only) from a TLS 1.2 one, from real handshakes', async () => {
    const v13 = await sessionData('TLSv1.3');
    const v12 = await sessionData('TLSv1.2');
    assert.ok(v13.every(isTls13Session));
    assert.ok(!v12.some(isTls13Session));
  });

  it('is false, never a throw, on anything else', () => {
    for (const b of [[], [0x30], [0x30, 0x05, 0x02, 0x01, 0x01, 0x02], [0x02, 0x01, 0x01], [0x30, 0x82, 0x01], [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x09, 0x03]]) {
      assert.equal(isTls13Session(Buffer.from(b)), false, JSON.stringify(b));
    }
    assert.equal(isTls13Session(Buffer.from([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x02, 0x03, 0x04])), true);
  });
});

it('expiring lru: bounded (least recent out) and expiring, whatever it holds', () => {
  let now = 0;
  const k = new ExpiringLru<true>({ max: 2, ttlMs: 1000, now: () => now });
  k.put('a', true);
  k.put('b', true);
  k.put('c', true);
  assert.deepEqual([k.lookup('a'), k.lookup('b'), k.lookup('c')], [undefined, true, true]);
  now = 1001;
  assert.equal(k.lookup('c'), undefined);
});
