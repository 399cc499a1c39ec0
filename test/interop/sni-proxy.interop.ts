// SNI passthrough and the PROXY protocol with real software. nginx holds two certificates
// (rsa.test, ec.test) on two ports, each `listen ... ssl proxy_protocol` logging
// $proxy_protocol_addr; the proxy serves both names on ONE port by reading the ClientHello,
// without keys, and tells nginx the client's address (PROXY v2 to one, v1 to the other).
// curl and openssl s_client connect from 127.0.0.2, so nginx can only learn that address
// from the header. HAProxy in front with send-proxy and send-proxy-v2 tells the proxy the
// same, end to end. Hostile ClientHellos leave the proxy and nginx serving.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Proxy } from '../support/harness.ts';
import { Cleanup, deadline, freePort, pki, run, runOk, waitForPort } from './support.ts';

const CLIENT_IP = '127.0.0.2';

/** A ClientHello record for `name` with extra extensions (hostile variants built from it). */
function hello(name: Buffer | undefined, extra: Buffer = Buffer.alloc(0)): Buffer {
  const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
  const sni = name ? Buffer.concat([u16(0), u16(name.length + 5), u16(name.length + 3), Buffer.from([0]), u16(name.length), name]) : Buffer.alloc(0);
  const ext = Buffer.concat([sni, extra]);
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 1), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(ext.length), ext]);
  const msg = Buffer.concat([Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  const out: Buffer[] = []; // records of at most 16 KiB, as a TLS stack would send a big hello
  for (let o = 0; o < msg.length; o += 16384) {
    const frag = msg.subarray(o, o + 16384);
    out.push(Buffer.from([0x16, 3, 1]), u16(frag.length), frag);
  }
  return Buffer.concat(out);
}

describe('nginx with two certificates behind one SNI-routing port, told the client by PROXY v1/v2; HAProxy in front', () => {
  const c = new Cleanup();
  let port = 0, haV1 = 0, haV2 = 0, log = '';
  let proxyLogs: () => Record<string, unknown>[];
  let direct: Proxy;
  before(async () => {
    const dir = c.tmpDir('nginx-sni');
    const [a, b] = [await freePort(), await freePort()];
    log = join(dir, 'access.log');
    const crt = (n: string) => { const f = join(dir, `${n}.pem`); writeFileSync(f, readFileSync(pki(`${n}.pem`), 'utf8') + readFileSync(pki('chain.pem'), 'utf8')); return f; };
    writeFileSync(join(dir, 'nginx.conf'), `worker_processes 1; daemon off; user root; pid ${dir}/nginx.pid; error_log stderr warn;
events { worker_connections 256; }
http {
  log_format pp '$server_name $proxy_protocol_addr $proxy_protocol_port $remote_addr $ssl_server_name';
  access_log ${log} pp;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  ssl_protocols TLSv1.2 TLSv1.3;
  server { listen 127.0.0.1:${a} ssl proxy_protocol; server_name rsa.test; ssl_certificate ${crt('rsa')}; ssl_certificate_key ${pki('rsa.key')};
    location / { return 200 "rsa.test saw $proxy_protocol_addr via $remote_addr\\n"; } }
  server { listen 127.0.0.1:${b} ssl proxy_protocol; server_name ec.test; ssl_certificate ${crt('ec')}; ssl_certificate_key ${pki('ec.key')};
    location / { return 200 "ec.test saw $proxy_protocol_addr via $remote_addr\\n"; } }
}\n`);
    const ng = c.daemon('nginx', 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]);
    await waitForPort(a, 15_000, `nginx (${ng.output})`);
    const { proxy, port: p } = await c.proxy(`
admin: {port: 0, graceSecs: 1}
routers:
- label: sni
  dtab: /svc/sni/rsa.test => /$/inet/127.0.0.1/${a}; /svc/sni/ec.test => /$/inet/127.0.0.1/${b};
  servers:
  - port: 0
    dstName: /svc/sni/{sni}
    handshakeTimeoutMs: 1000
  client:
    kind: io.l5d.static
    configs:
    - {prefix: /svc/sni/rsa.test, proxyProtocol: v2}
    - {prefix: /svc/sni/ec.test, proxyProtocol: v1}
`);
    port = p;
    direct = proxy;
    proxyLogs = () => proxy.logs;
    // A second proxy port behind HAProxy, expecting PROXY headers from it (127.0.0.1 only).
    const behind = await c.proxy(`
admin: {port: 0, graceSecs: 1}
routers:
- label: behind-haproxy
  dtab: /svc/sni/rsa.test => /$/inet/127.0.0.1/${a}; /svc/sni/ec.test => /$/inet/127.0.0.1/${b};
  servers:
  - port: 0
    dstName: /svc/sni/{sni}
    proxyProtocol: {accept: any, trustedCidrs: [127.0.0.1/32]}
  client: {kind: io.l5d.global, proxyProtocol: v2}
`);
    const prev = proxyLogs;
    proxyLogs = () => [...prev(), ...behind.proxy.logs];
    [haV1, haV2] = [await freePort(), await freePort()];
    writeFileSync(join(dir, 'haproxy.cfg'), `global
  maxconn 200
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend v1
  bind 127.0.0.1:${haV1}
  default_backend l5d_v1
frontend v2
  bind 127.0.0.1:${haV2}
  default_backend l5d_v2
backend l5d_v1
  server l5d 127.0.0.1:${behind.port} send-proxy
backend l5d_v2
  server l5d 127.0.0.1:${behind.port} send-proxy-v2
`);
    const ha = c.daemon('haproxy', 'haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')]);
    await waitForPort(haV2, 15_000, `haproxy (${ha.output})`);
  });
  after(() => c.run());

  const curl = (p: number, name: string) => runOk('curl', ['-sS', '--fail', '--interface', CLIENT_IP, '--cacert', pki('ca.pem'), '--resolve', `${name}:${p}:127.0.0.1`,
    '-w', ' %{ssl_verify_result} %{local_port}', `https://${name}:${p}/`], { timeoutMs: 20_000 });

  it('curl: one proxy port, two names, each verified against its own certificate on nginx; nginx learns the client (127.0.0.2) from PROXY v2 and v1', async () => {
    for (const name of ['rsa.test', 'ec.test']) {
      const r = await curl(port, name);
      const [, verify, localPort] = /^.*\n? (\d+) (\d+)$/s.exec(r.stdout) ?? [];
      assert.match(r.stdout, new RegExp(`^${name.replace('.', '\\.')} saw ${CLIENT_IP.replace(/\./g, '\\.')} via 127\\.0\\.0\\.1\\n`), r.stdout);
      assert.equal(verify, '0');
      const line = readFileSync(log, 'utf8').trim().split('\n').find((l) => l.startsWith(`${name} ${CLIENT_IP} ${localPort} `));
      assert.ok(line, `nginx access log has ${name} ${CLIENT_IP} ${localPort}:\n${readFileSync(log, 'utf8')}`);
      assert.match(line!, new RegExp(` 127\\.0\\.0\\.1 ${name.replace('.', '\\.')}$`));
    }
  });

  it('openssl s_client -servername picks the certificate on the same port (TLS 1.2 and 1.3), verified against the CA', async () => {
    for (const [name, cn, v] of [['rsa.test', 'rsa', '-tls1_3'], ['ec.test', 'ec', '-tls1_2']] as const) {
      const r = await run('openssl', ['s_client', v, '-connect', `127.0.0.1:${port}`, '-servername', name, '-CAfile', pki('ca.pem'), '-verify_return_error', '-brief', '-ign_eof'],
        { input: 'GET / HTTP/1.0\r\n\r\n', timeoutMs: 20_000 });
      const out = r.stdout + r.stderr;
      assert.match(out, new RegExp(`Peer certificate: CN ?= ?${cn}`), out);
      assert.match(out, /Verification: OK/, out);
      assert.match(out, new RegExp(`${name.replace('.', '\\.')} saw 127\\.0\\.0\\.1`), out);
    }
  });

  for (const [version, haPort] of [['send-proxy', () => haV1], ['send-proxy-v2', () => haV2]] as const) {
    it(`HAProxy ${version} → proxy → nginx: the proxy logs the client 127.0.0.2 (HAProxy as proxy peer), nginx sees it too`, async () => {
      const r = await curl(haPort(), 'ec.test');
      assert.match(r.stdout, new RegExp(`^ec\\.test saw ${CLIENT_IP.replace(/\./g, '\\.')} via 127\\.0\\.0\\.1`), r.stdout);
      const localPort = /(\d+)$/.exec(r.stdout)![1];
      const rec = await deadline(5000, 'access record', (async () => {
        for (;;) {
          const l = proxyLogs().find((x) => x['msg'] === 'connection closed' && x['client'] === `${CLIENT_IP}:${localPort}`);
          if (l) return l;
          await new Promise((res) => setImmediate(res));
        }
      })());
      assert.match(String(rec['proxy']), /^127\.0\.0\.1:\d+$/);
      assert.equal(rec['sni'], 'ec.test');
      assert.equal(rec['reason'], 'done');
    });
  }

  it('hostile ClientHellos (64 KiB extension, zero-length name, name with "/", garbage, a hello that never ends) are refused; nginx and the proxy keep serving', async () => {
    const hostile = [
      hello(Buffer.from('rsa.test'), Buffer.concat([Buffer.from([0, 21, 0xff, 0xff]), Buffer.alloc(65535)])),
      hello(Buffer.alloc(0)),
      hello(Buffer.from('rsa.test/../ec.test')),
      hello(Buffer.from('*.test')),
      Buffer.from('\x16\x03\x01\xff\xff' + 'x'.repeat(100), 'latin1'),
      Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'),
      hello(Buffer.from('rsa.test')).subarray(0, 30),
    ];
    await Promise.all(hostile.map((bytes) => new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.resume();
      s.write(bytes);
    })));
    // The direct proxy's records (a record may reach its log just after the client saw the close).
    for (const cause of ['too_large', 'malformed', 'invalid_name', 'not_tls', 'timeout']) {
      await direct.waitForLog((l) => l.msg === 'connection closed' && l['reason'] === 'sni' && l['error'] === cause, 5000, `a record with cause ${cause}`);
    }
    assert.equal((await curl(port, 'rsa.test')).code, 0);
  });
});
