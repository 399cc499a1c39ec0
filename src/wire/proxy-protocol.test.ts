// PROXY protocol v1/v2 against the examples and rules of haproxy's proxy-protocol.txt
// (§2.1 v1 lines incl. the 107-byte worst case, §2.2 v2 LOCAL/PROXY over IPv4, IPv6 and
// UNIX with TLVs), the builders round-tripping through the parser, and a seeded fuzz run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seeded } from '../../test/support/random.ts';
import { buildProxyV1, buildProxyV2 } from './proxy-protocol-build.ts';
import { parseProxyHeader, V2_SIGNATURE } from './proxy-protocol.ts';

const F6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
const v2 = (verCmd: number, fam: number, body: Buffer): Buffer => {
  const h = Buffer.alloc(16);
  h.set(V2_SIGNATURE);
  h[12] = verCmd;
  h[13] = fam;
  h.writeUInt16BE(body.length, 14);
  return Buffer.concat([h, body]);
};
const tlv = (t: number, v: Buffer): Buffer => Buffer.concat([Buffer.from([t, v.length >> 8, v.length & 0xff]), v]);
const ip4 = Buffer.from([192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb]); // :56324 → :443
const ip6 = Buffer.concat([Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from('20010db8000000000000000000000002', 'hex'), Buffer.from([0x30, 0x39, 0x00, 0x50])]);
const unixBlock = Buffer.concat([Buffer.from('/run/a.sock'.padEnd(108, '\0')), Buffer.from('/run/b.sock'.padEnd(108, '\0'))]);

const CASES: { name: string; bytes: Buffer; accept?: 'v1' | 'v2' | 'any'; want: string; src?: string; dst?: string; family?: string; alpn?: string; authority?: string; length?: number }[] = [
  { name: 'v1 TCP4 (spec example)', bytes: Buffer.from('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /'), want: 'ok', src: '192.168.0.1:56324', dst: '192.168.0.11:443', family: 'tcp4', length: 47 },
  { name: 'v1 TCP4 worst case', bytes: Buffer.from('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'), want: 'ok', src: '255.255.255.255:65535', length: 56 },
  { name: 'v1 TCP6 worst case (104 bytes)', bytes: Buffer.from(`PROXY TCP6 ${F6} ${F6} 65535 65535\r\n`), want: 'ok', src: `${F6}:65535`, family: 'tcp6', length: 104 },
  { name: 'v1 TCP6 compressed', bytes: Buffer.from('PROXY TCP6 2001:db8::1 ::1 1 2\r\n'), want: 'ok', src: '2001:db8::1:1', dst: '::1:2' },
  { name: 'v1 UNKNOWN', bytes: Buffer.from('PROXY UNKNOWN\r\n'), want: 'ok', family: 'unknown', length: 15 },
  { name: 'v1 UNKNOWN worst case (107 bytes)', bytes: Buffer.from(`PROXY UNKNOWN ${F6} ${F6} 65535 65535\r\n`), want: 'ok', family: 'unknown', length: 107 },
  { name: 'v1 line of 108 bytes', bytes: Buffer.from(`PROXY UNKNOWN ${F6} ${F6} 65535 655355\r\n`), want: 'malformed' },
  { name: 'v1 without CRLF within 107 bytes', bytes: Buffer.from('PROXY TCP4 ' + '1'.repeat(120)), want: 'malformed' },
  { name: 'v1 LF only', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), want: 'malformed' },
  { name: 'v1 TCP4 with an IPv6 address', bytes: Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'), want: 'malformed' },
  { name: 'v1 octet 256', bytes: Buffer.from('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n'), want: 'malformed' },
  { name: 'v1 port 65536', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), want: 'malformed' },
  { name: 'v1 port with a leading zero', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'), want: 'malformed' },
  { name: 'v1 missing field', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), want: 'malformed' },
  { name: 'v1 double space', bytes: Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), want: 'malformed' },
  { name: 'v1 refused when only v2 is accepted', bytes: Buffer.from('PROXY UNKNOWN\r\n'), accept: 'v2', want: 'version' },
  { name: 'v2 PROXY TCP4', bytes: v2(0x21, 0x11, ip4), want: 'ok', src: '192.168.0.1:56324', dst: '192.168.0.11:443', family: 'tcp4', length: 28 },
  { name: 'v2 PROXY TCP6', bytes: v2(0x21, 0x21, ip6), want: 'ok', src: '2001:db8::1:12345', dst: '2001:db8::2:80', family: 'tcp6', length: 52 },
  { name: 'v2 PROXY UNIX stream', bytes: v2(0x21, 0x31, unixBlock), want: 'ok', src: '/run/a.sock', dst: '/run/b.sock', family: 'unix' },
  { name: 'v2 PROXY UDP4', bytes: v2(0x21, 0x12, ip4), want: 'ok', family: 'udp4' },
  { name: 'v2 LOCAL with no addresses (health check)', bytes: v2(0x20, 0x00, Buffer.alloc(0)), want: 'ok', family: 'unknown', length: 16 },
  { name: 'v2 LOCAL with an address block to ignore', bytes: v2(0x20, 0x11, ip4), want: 'ok', length: 28 },
  { name: 'v2 PROXY UNSPEC', bytes: v2(0x21, 0x00, Buffer.from([1, 2, 3])), want: 'ok', family: 'unknown', length: 19 },
  { name: 'v2 TLVs: ALPN, AUTHORITY, CRC32C, NOOP, SSL and a custom one skipped', bytes: v2(0x21, 0x11, Buffer.concat([ip4,
    tlv(0x01, Buffer.from('h2')), tlv(0x02, Buffer.from('db.example.com')), tlv(0x03, Buffer.alloc(4)), tlv(0x04, Buffer.alloc(0)),
    tlv(0x20, Buffer.from([1, 0, 0, 0, 0])), tlv(0xe0, Buffer.alloc(300, 9))])), want: 'ok', alpn: 'h2', authority: 'db.example.com' },
  { name: 'v2 TLV length past the header', bytes: v2(0x21, 0x11, Buffer.concat([ip4, Buffer.from([0x01, 0x00, 0x09, 0x61])])), want: 'malformed' },
  { name: 'v2 TLV header cut short', bytes: v2(0x21, 0x11, Buffer.concat([ip4, Buffer.from([0x01, 0x00])])), want: 'malformed' },
  { name: 'v2 TCP6 with a TCP4-sized block', bytes: v2(0x21, 0x21, ip4), want: 'malformed' },
  { name: 'v2 version 1 in the version nibble', bytes: v2(0x11, 0x11, ip4), want: 'malformed' },
  { name: 'v2 command 2', bytes: v2(0x22, 0x11, ip4), want: 'malformed' },
  { name: 'v2 unknown family 0x41', bytes: v2(0x21, 0x41, ip4), want: 'malformed' },
  { name: 'v2 refused when only v1 is accepted', bytes: v2(0x21, 0x11, ip4), accept: 'v1', want: 'version' },
  { name: 'a TLS ClientHello where a header must be', bytes: Buffer.from([0x16, 3, 1, 0, 200, 1]), want: 'missing' },
  { name: 'plain text where a header must be', bytes: Buffer.from('GET / HTTP/1.0\r\n\r\n'), want: 'missing' },
  { name: '"PROXYX"', bytes: Buffer.from('PROXYX TCP4\r\n'), want: 'missing' },
  { name: 'a v2 signature with one byte wrong', bytes: Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b, 0x21, 0x11, 0, 0]), want: 'missing' },
];

const at = (a: { kind: string; address?: string; port?: number; path?: string } | undefined): string | undefined =>
  a === undefined ? undefined : a.kind === 'unix' ? a.path : `${a.address}:${a.port}`;

describe('PROXY protocol headers (spec vectors)', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const r = parseProxyHeader(c.bytes, c.accept ?? 'any');
      assert.equal(r.kind === 'error' ? r.cause : r.kind, c.want, JSON.stringify(r));
      if (r.kind !== 'ok') return;
      if (c.src !== undefined) assert.equal(at(r.source), c.src);
      if (c.dst !== undefined) assert.equal(at(r.destination), c.dst);
      if (c.family !== undefined) assert.equal(r.family, c.family);
      if (c.alpn !== undefined) assert.equal(r.alpn, c.alpn);
      if (c.authority !== undefined) assert.equal(r.authority, c.authority);
      if (c.length !== undefined) assert.equal(r.length, c.length);
    });
  }
  it('every proper prefix of a good header asks for more', () => {
    for (const c of CASES.filter((x) => x.want === 'ok')) {
      const end = parseProxyHeader(c.bytes);
      assert.equal(end.kind, 'ok');
      if (end.kind !== 'ok') continue;
      for (let n = 0; n < end.length; n++) {
        const r = parseProxyHeader(c.bytes.subarray(0, n));
        assert.equal(r.kind, 'need-more', `${c.name}, prefix ${n}: ${JSON.stringify(r)}`);
      }
    }
  });
});

describe('building headers', () => {
  const e4 = { source: { address: '10.1.2.3', port: 40000 }, destination: { address: '127.0.0.1', port: 443 } };
  const e6 = { source: { address: '2001:db8::7', port: 1 }, destination: { address: '::1', port: 2 } };
  it('v1 TCP4, TCP6, mixed (mapped to TCP6) and UNKNOWN', () => {
    assert.equal(buildProxyV1(e4).toString(), 'PROXY TCP4 10.1.2.3 127.0.0.1 40000 443\r\n');
    assert.equal(buildProxyV1(e6).toString(), 'PROXY TCP6 2001:db8::7 ::1 1 2\r\n');
    assert.equal(buildProxyV1({ source: { address: '::ffff:10.0.0.1', port: 5 }, destination: { address: '127.0.0.1', port: 6 } }).toString(), 'PROXY TCP4 10.0.0.1 127.0.0.1 5 6\r\n');
    assert.equal(buildProxyV1({ source: { address: '10.0.0.1', port: 5 }, destination: { address: '::1', port: 6 } }).toString(), 'PROXY TCP6 ::ffff:10.0.0.1 ::1 5 6\r\n');
    assert.equal(buildProxyV1(undefined).toString(), 'PROXY UNKNOWN\r\n');
    assert.equal(buildProxyV1({ source: { address: 'x', port: 1 }, destination: { address: '::1', port: 2 } }).toString(), 'PROXY UNKNOWN\r\n');
  });
  it('v1 and v2 round-trip through the parser, with TLVs', () => {
    for (const e of [e4, e6]) {
      for (const b of [buildProxyV1(e), buildProxyV2(e, { alpn: 'h2', authority: 'db.example.com' })]) {
        const r = parseProxyHeader(Buffer.concat([b, Buffer.from('payload')]));
        assert.equal(r.kind, 'ok');
        if (r.kind !== 'ok') continue;
        assert.equal(r.length, b.length);
        assert.equal(at(r.source), `${e.source.address}:${e.source.port}`);
        assert.equal(at(r.destination), `${e.destination.address}:${e.destination.port}`);
        if (r.version === 2) assert.deepEqual([r.alpn, r.authority], ['h2', 'db.example.com']);
      }
    }
  });
  it('v2 without addresses is LOCAL; the byte layout matches the spec', () => {
    const b = buildProxyV2(undefined);
    assert.equal(b.toString('hex'), '0d0a0d0a000d0a515549540a' + '20' + '00' + '0000');
    assert.equal(buildProxyV2(e4).toString('hex'), '0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + '0a010203' + '7f000001' + '9c40' + '01bb');
  });
});

describe('fuzz', () => {
  it('mutated and random headers: a result every time, never a throw', () => {
    const rnd = seeded(1515);
    const int = (n: number) => Math.floor(rnd() * n);
    const seeds = CASES.map((c) => c.bytes);
    const kinds = new Set(['need-more', 'ok', 'error']);
    for (let i = 0; i < 30_000; i++) {
      let b = Buffer.from(seeds[i % seeds.length]!);
      for (let k = 0, n = 1 + int(3); k < n && b.length; k++) b[int(b.length)] = [0, 0xff, 0x20, 0x0d, 0x0a, int(256)][int(6)]!;
      if (rnd() < 0.3) b = b.subarray(0, int(b.length + 1));
      if (i % 7 === 0) b = Buffer.from(Array.from({ length: int(120) }, () => int(256)));
      const r = parseProxyHeader(b, (['v1', 'v2', 'any'] as const)[i % 3]);
      assert.ok(kinds.has(r.kind), `case ${i}`);
      if (r.kind === 'ok') assert.ok(r.length <= b.length, `case ${i}: header longer than its input`);
      if (r.kind === 'need-more') assert.ok(r.needed >= 1);
    }
  });
});
