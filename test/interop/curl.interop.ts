// curl through the proxy: HTTPS terminated by the proxy in front of Python's plain
// http.server (HTTP/1.1, kept alive), and plain HTTP originated as TLS by the proxy to a
// Node HTTPS backend (its name verified against client.tls.dnsName).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { Cleanup, freePort, identity, pki, proxyConfig, report, run, runOk, waitForPort } from './support.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const FILE = randomBytes(4 << 20); // 4 MiB
const SMALL = randomBytes(1000);

describe('curl over HTTPS through TLS termination to python3 http.server', () => {
  const c = new Cleanup();
  let port: number;
  let httpPort: number;
  before(async () => {
    const root = c.tmpDir('www');
    writeFileSync(join(root, 'file.bin'), FILE);
    writeFileSync(join(root, 'small.bin'), SMALL);
    httpPort = await freePort();
    const py = c.daemon('python3 http.server', 'python3', ['-m', 'http.server', String(httpPort), '--bind', '127.0.0.1', '--directory', root, '--protocol', 'HTTP/1.1']);
    await waitForPort(httpPort, 15_000, `python3 http.server (${py.output})`);
    ({ port } = await c.proxy(proxyConfig(httpPort, { serverTls: `{defaultIdentity: ${identity('rsa')}, alpnProtocols: [http/1.1]}` })));
  });
  after(() => c.run());

  it('GET https://localhost:<port>/file.bin with --cacert ca.pem: 200, body intact (sha256)', async (t) => {
    const out = join(c.tmpDir('curl'), 'out');
    const r = await runOk('curl', ['-sS', '--fail', '--cacert', pki('ca.pem'), '-o', out, '-w', '%{http_code} %{ssl_verify_result} %{http_version} %{speed_download}',
      `https://localhost:${port}/file.bin`], { timeoutMs: 30_000 });
    const [code, verify, version, speed] = r.stdout.split(' ');
    assert.equal(code, '200');
    assert.equal(verify, '0', 'certificate verified');
    assert.equal(version, '1.1', 'ALPN http/1.1 (the only protocol offered by the server)');
    const body = readFileSync(out);
    assert.equal(body.length, FILE.length);
    assert.equal(sha(body), sha(FILE));
    report(t, `curl https (terminated) 4 MiB download: ${(Number(speed) / 1e6).toFixed(1)} MB/s`);
  });

  it('--http1.1 with ALPN: the server accepts http/1.1; two requests on one kept-alive TLS connection by name (rsa.test)', async () => {
    const r = await runOk('curl', ['-sS', '-v', '--fail', '--http1.1', '--cacert', pki('ca.pem'), '--resolve', `rsa.test:${port}:127.0.0.1`,
      `https://rsa.test:${port}/small.bin`, `https://rsa.test:${port}/small.bin`], { timeoutMs: 30_000 });
    assert.match(r.stderr, /ALPN: server accepted http\/1\.1|ALPN, server accepted to use http\/1\.1/);
    assert.match(r.stderr, /subject: CN=rsa/);
    assert.match(r.stderr, /SSL certificate verify ok/);
    assert.match(r.stderr, /Re-using existing connection/);
    assert.deepEqual(r.out, Buffer.concat([SMALL, SMALL]));
  });

  it('a wrong name is refused by curl (the certificate does not name it)', async () => {
    const r = await run('curl', ['-sS', '--cacert', pki('ca.pem'), '--resolve', `ec.test:${port}:127.0.0.1`, `https://ec.test:${port}/small.bin`], { timeoutMs: 30_000 });
    assert.equal(r.code, 60, `curl exit 60 (peer certificate cannot be authenticated): ${r.stderr}`);
  });
});

describe('curl over plain HTTP through TLS origination to a Node HTTPS backend', () => {
  const c = new Cleanup();
  let httpsPort: number;
  const sni: (string | false | null)[] = [];
  before(async () => {
    const server = createHttpsServer({
      key: readFileSync(pki('rsa.key')),
      cert: Buffer.concat([readFileSync(pki('rsa.pem')), readFileSync(pki('chain.pem'))]),
    }, (req, res) => {
      sni.push((req.socket as TLSSocket).servername);
      if (req.url === '/file.bin') res.end(FILE);
      else res.writeHead(404).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    httpsPort = (server.address() as AddressInfo).port;
    c.add(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  });
  after(() => c.run());

  it('client.tls {dnsName: rsa.test, trustCerts: [ca.pem]}: body intact, SNI rsa.test sent to the backend', async (t) => {
    const { port } = await c.proxy(proxyConfig(httpsPort, { clientTls: `{dnsName: rsa.test, trustCerts: [${pki('ca.pem')}]}` }));
    const out = join(c.tmpDir('curl'), 'out');
    const r = await runOk('curl', ['-sS', '--fail', '-o', out, '-w', '%{http_code} %{speed_download}', `http://127.0.0.1:${port}/file.bin`], { timeoutMs: 30_000 });
    const [code, speed] = r.stdout.split(' ');
    assert.equal(code, '200');
    const body = readFileSync(out);
    assert.equal(body.length, FILE.length);
    assert.equal(sha(body), sha(FILE));
    assert.deepEqual(sni, ['rsa.test']);
    report(t, `curl http (originated TLS) 4 MiB download: ${(Number(speed) / 1e6).toFixed(1)} MB/s`);
  });

  it('a wrong dnsName (other.test): the backend certificate is refused, curl gets no reply, the access log says why', async () => {
    const { proxy, port } = await c.proxy(proxyConfig(httpsPort, { clientTls: `{dnsName: other.test, trustCerts: [${pki('ca.pem')}]}` }));
    const before = sni.length;
    const r = await run('curl', ['-sS', `http://127.0.0.1:${port}/file.bin`], { timeoutMs: 30_000 });
    assert.ok(r.code === 52 || r.code === 56, `curl: empty reply (52) or recv failure (56), got ${r.code}: ${r.stderr}`);
    assert.equal(r.out.length, 0);
    assert.equal(sni.length, before, 'no request reached the backend');
    const rec = await proxy.waitForLog((l) => l.msg === 'connection closed', 10_000);
    assert.equal(rec['reason'], 'connect_failed', JSON.stringify(rec));
    assert.match(String(rec['error']), /ERR_TLS_CERT_ALTNAME_INVALID/, JSON.stringify(rec));
  });
});
