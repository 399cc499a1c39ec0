import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalIp, checkHost, hostPolicy, isLoopback } from './host-check.ts';

describe('checkHost', () => {
  const v4 = hostPolicy(['127.0.0.1'], ['admin.example.com', '10.1.2.3', 'fwd.example:8080'], 9989);
  const v6 = hostPolicy(['::1'], [], 9989);
  const table: [string, readonly string[], string, 'ok' | 'bad' | 'foreign', typeof v4?][] = [
    ['the bound address with its port', ['127.0.0.1:9989'], '1.1', 'ok'],
    ['the bound address without a port', ['127.0.0.1'], '1.1', 'ok'],
    ['localhost', ['localhost:9989'], '1.1', 'ok'],
    ['LOCALHOST (names are case-insensitive)', ['LOCALHOST:9989'], '1.1', 'ok'],
    ['localhost. (a trailing dot)', ['localhost.:9989'], '1.1', 'ok'],
    ['an empty port', ['localhost:'], '1.1', 'ok'],
    ['an allowed name, any case, trailing dot', ['Admin.Example.COM.:9989'], '1.1', 'ok'],
    ['an allowed IP literal', ['10.1.2.3:9989'], '1.1', 'ok'],
    ['an allowed name with its own port', ['fwd.example:8080'], '1.1', 'ok'],
    ['that name on the admin port', ['fwd.example:9989'], '1.1', 'foreign'],
    ['a rebinding name', ['evil.example:9989'], '1.1', 'foreign'],
    ['a rebinding name, no port', ['evil.example'], '1.1', 'foreign'],
    ['a subdomain of localhost', ['x.localhost:9989'], '1.1', 'foreign'],
    ['the right name on another port', ['localhost:80'], '1.1', 'foreign'],
    ['another IP literal', ['127.0.0.2:9989'], '1.1', 'foreign'],
    ['userinfo', ['user:pw@localhost:9989'], '1.1', 'bad'],
    ['userinfo, no password', ['evil@127.0.0.1'], '1.1', 'bad'],
    ['two Host fields', ['localhost:9989', 'evil.example'], '1.1', 'bad'],
    ['no Host on HTTP/1.1', [], '1.1', 'bad'],
    ['no Host on HTTP/1.0 (no name used)', [], '1.0', 'ok'],
    ['empty Host', [''], '1.1', 'bad'],
    ['a path in Host', ['localhost/x'], '1.1', 'bad'],
    ['a port over 65535', ['localhost:99989'], '1.1', 'bad'],
    ['an unbracketed IPv6', ['::1'], '1.1', 'bad'],
    ['a bracketed non-address', ['[evil.example]:9989'], '1.1', 'bad'],
    ['double dots', ['local..host'], '1.1', 'bad'],
    ['[::1] on an IPv6 bind', ['[::1]:9989'], '1.1', 'ok', v6],
    ['[0:0::1] (the same address written longer)', ['[0:0:0:0:0:0:0:1]:9989'], '1.1', 'ok', v6],
    ['127.0.0.1 on an [::1] bind', ['127.0.0.1:9989'], '1.1', 'foreign', v6],
    ['localhost on an [::1] bind', ['localhost:9989'], '1.1', 'ok', v6],
  ];
  for (const [name, host, version, want, policy] of table) {
    it(`${name}: ${want}`, () => assert.equal(checkHost(host, version, policy ?? v4).kind, want));
  }
  it('accepts the connection\'s own local address (a wildcard bind), IPv4-mapped too', () => {
    const any = hostPolicy([], [], 9989);
    assert.equal(checkHost(['192.0.2.7:9989'], '1.1', any, '::ffff:192.0.2.7').kind, 'ok');
    assert.equal(checkHost(['192.0.2.8:9989'], '1.1', any, '::ffff:192.0.2.7').kind, 'foreign');
    assert.equal(checkHost(['[::ffff:127.0.0.1]:9989'], '1.1', v4).kind, 'ok');
  });
});

describe('canonicalIp and isLoopback', () => {
  it('canonicalises', () => {
    assert.equal(canonicalIp('0:0:0:0:0:0:0:1'), '::1');
    assert.equal(canonicalIp('::FFFF:7F00:1'), '127.0.0.1');
    assert.equal(canonicalIp('10.0.0.1'), '10.0.0.1');
  });
  it('takes an IPv6 zone id off (admin.ip may carry one; no Host field does)', () => {
    assert.equal(canonicalIp('FE80::1%lo'), 'fe80::1');
    assert.ok(!isLoopback('fe80::1%eth0'));
    const policy = hostPolicy(['fe80::1%lo'], [], 9989);
    assert.equal(checkHost(['[fe80::1]:9989'], '1.1', policy).kind, 'ok');
  });
  it('knows loopback', () => {
    for (const ip of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(ip), ip);
    for (const ip of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1']) assert.ok(!isLoopback(ip), ip);
  });
});
