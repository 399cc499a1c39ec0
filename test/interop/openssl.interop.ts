// `openssl s_client` against a TLS-terminating server, echoing through to a plain TCP
// backend: TLS 1.3 and 1.2, TLS 1.1 and a CBC suite refused, SNI identities, ALPN, chain
// verification against the root, and bytes echoed through intact.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { Backend, Proxy } from '../support/harness.ts';
import { Cleanup, deadline, echo, identity, pki, proxyConfig, report, startBackend, track } from './support.ts';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

interface Session {
  code: number | null;
  stdout: string;
  stderr: string;
  protocol?: string;
  cipher?: string;
  subject?: string;
  alpn?: string;
  verify?: string;
  echoed?: string;
}

function parse(code: number | null, stdout: string, stderr: string): Session {
  const m = /^New, (\S+), Cipher is (\S+)$/m.exec(stdout);
  return {
    code, stdout, stderr,
    protocol: m?.[1], cipher: m?.[2],
    subject: /^subject=(.*)$/m.exec(stdout)?.[1],
    alpn: /^ALPN protocol: (.*)$/m.exec(stdout)?.[1] ?? (/^No ALPN negotiated$/m.test(stdout) ? 'none' : undefined),
    verify: /^\s*Verify return code: (.*)$/m.exec(stdout)?.[1],
  };
}

/**
 * Runs s_client against `port` with `args`. With `payload`, once the handshake is done it
 * sends a ping, waits for its echo, sends `payload` between markers, waits for it to come
 * back, then closes stdin (s_client sends close_notify and exits); `echoed` is what came back.
 * Without, stdin is closed at once (for handshakes expected to fail).
 */
async function sClient(port: number, args: string[], payload?: string): Promise<Session> {
  const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki('ca.pem'), '-nocommands', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  track(p);
  let stdout = '', stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  p.stdin.on('error', () => {});
  const closed = once(p, 'close') as Promise<[number | null]>;
  const until = (marker: string, what: string): Promise<void> => deadline(15_000, `s_client ${what}\nstdout: ${stdout}\nstderr: ${stderr}`, new Promise<void>((resolve, reject) => {
    const check = (): void => { if (stdout.includes(marker)) { p.stdout.off('data', check); resolve(); } };
    p.stdout.on('data', check);
    p.once('close', () => (stdout.includes(marker) ? resolve() : reject(new Error(`s_client exited before ${what}\nstdout: ${stdout}\nstderr: ${stderr}`))));
    check();
  }));
  try {
    let echoed: string | undefined;
    if (payload !== undefined) {
      const tag = randomBytes(8).toString('hex');
      p.stdin.write(`ping-${tag}\n`);
      await until(`ping-${tag}\n`, 'ping echo');
      const begin = `BEGIN-${tag}\n`, end = `END-${tag}\n`;
      p.stdin.write(begin + payload + end);
      await until(end, 'payload echo');
      const from = stdout.indexOf(begin) + begin.length;
      echoed = stdout.slice(from, stdout.indexOf(end, from));
    }
    p.stdin.end();
    const [code] = await deadline(15_000, `s_client exit\nstdout: ${stdout}\nstderr: ${stderr}`, closed);
    return { ...parse(code, stdout, stderr), echoed };
  } finally {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

describe('openssl s_client through TLS termination', () => {
  const c = new Cleanup();
  let be: Backend;
  let proxy: Proxy;
  let port: number;
  // 256 KiB of text lines (s_client is line oriented on a terminal; a pipe is fine either way).
  const payload = Array.from({ length: 3500 }, () => randomBytes(57).toString('base64')).join('\n') + '\n';

  before(async () => {
    be = await startBackend(echo);
    c.add(() => be.close());
    ({ proxy, port } = await c.proxy(proxyConfig(be.port, {
      serverTls: `{defaultIdentity: ${identity('rsa')}, identities: {ec.test: ${identity('ec')}}, alpnProtocols: [h2, http/1.1]}`,
    })));
  });
  after(() => c.run());

  for (const [flag, version] of [['-tls1_3', 'TLSv1.3'], ['-tls1_2', 'TLSv1.2']] as const) {
    it(`${version}: negotiated, chain verified against the root, bytes echoed through intact`, async (t) => {
      const s = await sClient(port, [flag, '-servername', 'localhost', '-verify_hostname', 'localhost', '-verify_return_error'], payload);
      assert.equal(s.code, 0, s.stderr);
      assert.equal(s.protocol, version, s.stdout);
      assert.match(s.cipher ?? '', /GCM|CHACHA20/, `an AEAD suite: ${s.cipher}`);
      assert.equal(s.subject, 'CN = rsa');
      assert.equal(s.verify, '0 (ok)');
      assert.match(s.stdout, /^ 1 s:CN = linkerd-tcp test intermediate$/m, 'the intermediate is sent after the leaf');
      assert.equal(s.echoed?.length, payload.length);
      assert.equal(sha(s.echoed ?? ''), sha(payload));
      report(t, `openssl ${version}: ${s.cipher}, ${payload.length} bytes echoed`);
    });
  }

  it('SNI picks the identity: ec.test → the ec certificate; localhost, an unknown name and no SNI → the default (rsa)', async () => {
    const cases: [string[], string][] = [
      [['-servername', 'ec.test', '-verify_hostname', 'ec.test', '-verify_return_error'], 'CN = ec'],
      [['-servername', 'a.wild.test'], 'CN = rsa'], // not configured: the default
      [['-servername', 'rsa.test', '-verify_hostname', 'rsa.test', '-verify_return_error'], 'CN = rsa'],
      [['-noservername', '-verify_ip', '127.0.0.1', '-verify_return_error'], 'CN = rsa'],
    ];
    for (const [args, subject] of cases) {
      const s = await sClient(port, args, 'sni\n');
      assert.equal(s.code, 0, `${args.join(' ')}: ${s.stderr}`);
      assert.equal(s.subject, subject, args.join(' '));
      assert.equal(s.verify, '0 (ok)', args.join(' '));
      assert.equal(s.echoed, 'sni\n');
    }
    const sni = proxy.logs.filter((l) => l.msg === 'connection closed').map((l) => l['sni']);
    assert.ok(sni.includes('ec.test') && sni.includes('a.wild.test'), `SNI in the access log: ${JSON.stringify(sni)}`);
  });

  it('ALPN: h2 preferred by the server list, http/1.1 alone, none offered; an unshared protocol is refused (no_application_protocol)', async () => {
    for (const [offer, expected] of [['h2,http/1.1', 'h2'], ['http/1.1', 'http/1.1'], ['http/1.1,h2', 'h2']] as const) {
      const s = await sClient(port, ['-alpn', offer, '-servername', 'localhost'], 'alpn\n');
      assert.equal(s.code, 0, s.stderr);
      assert.equal(s.alpn, expected, `offered ${offer}`);
    }
    const none = await sClient(port, ['-servername', 'localhost'], 'x\n');
    assert.equal(none.alpn, 'none');
    const bad = await sClient(port, ['-alpn', 'spdy/1', '-servername', 'localhost']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /alert no application protocol/);
  });

  it('verification fails against a root that did not sign the chain', async () => {
    const s = await sClient(port, ['-servername', 'localhost', '-CAfile', pki('client-ca.pem')]);
    assert.match(s.verify ?? '', /^(20|21|2) \(unable to get (local )?issuer certificate/, s.stdout);
  });

  it('refuses TLS 1.1 (protocol_version) and a CBC suite (handshake_failure); neither reaches the backend', async () => {
    const before = be.accepted;
    const v11 = await sClient(port, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0', '-servername', 'localhost']);
    assert.notEqual(v11.code, 0);
    assert.equal(v11.cipher, '(NONE)');
    assert.match(v11.stderr, /alert protocol version/, 'the server, not the client, refused TLS 1.1');
    for (const suite of ['AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'AES256-SHA256']) {
      const cbc = await sClient(port, ['-tls1_2', '-cipher', suite, '-servername', 'localhost']);
      assert.notEqual(cbc.code, 0, suite);
      assert.equal(cbc.cipher, '(NONE)', suite);
      assert.match(cbc.stderr, /alert handshake failure/, suite);
    }
    const tls13 = await sClient(port, ['-tls1_3', '-ciphersuites', 'TLS_AES_128_CCM_SHA256', '-servername', 'localhost']);
    assert.notEqual(tls13.code, 0, 'TLS 1.3 CCM is outside the policy');
    assert.equal(be.accepted, before, 'refused handshakes never reach the backend');
    const failed = await proxy.waitForCount((l) => l.msg === 'connection closed' && l['reason'] === 'tls_handshake', 5, 10_000);
    const causes = failed.map((l) => l['error']);
    assert.ok(causes.includes('protocol_version') && causes.includes('no_shared_cipher'), JSON.stringify(causes));
  });
});
