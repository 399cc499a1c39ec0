// `openssl s_client` against a TLS-terminating server, echoing through to a plain TCP
// backend: TLS 1.3 and 1.2, TLS 1.1 and a CBC suite refused, SNI identities, ALPN, chain
// verification against the root, and bytes echoed through intact. Then the survey: every
// suite, group and signature algorithm openssl knows, offered one at a time, on the node
// engine and on the engine `auto` picks, which must accept the same sets (the policy's).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CIPHERS, CURVES } from '../../src/connector/tls-policy.ts';
import { type Backend, type Proxy, startProxy } from '../support/harness.ts';
import { Cleanup, deadline, echo, identity, pki, proxyConfig, report, run, runOk, startBackend, track } from './support.ts';

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

/** Runs `f` over `items` with at most `n` at a time; results in order. */
async function pool<T, R>(items: readonly T[], n: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  }));
  return out;
}

/** One handshake by `openssl s_client` with `args` and nothing to send: the protocol and suite it agreed on, if any. */
async function probe(port: number, args: string[]): Promise<{ ok: boolean; protocol?: string; cipher?: string }> {
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki('ca.pem'), '-nocommands', ...args], { timeoutMs: 15_000 });
  const m = /^(?:New|Reused), (\S+), Cipher is (\S+)$/m.exec(r.stdout);
  return { ok: r.code === 0 && m !== null && m[2] !== '(NONE)', protocol: m?.[1], cipher: m?.[2] };
}

interface Survey {
  engine: string;
  tls13Suites: string[];
  tls12Suites: string[];
  groups: { 'TLSv1.3': string[]; 'TLSv1.2': string[] };
  sigalgs: { 'TLSv1.3': string[]; 'TLSv1.2': string[] };
}

// Server names of the three identities below: RSA 2048 (the default), ECDSA P-256, ECDSA P-384.
const NAMES = ['localhost', 'ec.test', 'p8.test'];
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256'];
const GROUPS = ['X25519', 'X448', 'P-256', 'P-384', 'P-521', 'secp256k1', 'brainpoolP256r1', 'brainpoolP384r1', 'brainpoolP512r1', 'ffdhe2048', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192'];
const SIGALGS = [
  'rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384', 'rsa_pss_rsae_sha512', 'rsa_pss_pss_sha256', 'rsa_pss_pss_sha384', 'rsa_pss_pss_sha512',
  'rsa_pkcs1_sha256', 'rsa_pkcs1_sha384', 'rsa_pkcs1_sha512', 'rsa_pkcs1_sha1',
  'ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ecdsa_secp521r1_sha512', 'ecdsa_sha1', 'ed25519', 'ed448',
];

/**
 * What the TLS server on `port` accepts, each item offered alone by s_client: TLS 1.3 suites;
 * TLS 1.2 suites (every one `openssl ciphers` lists but PSK and SRP, to the identity its
 * authentication needs); groups and signature algorithms under each version (to any identity).
 */
async function survey(port: number, engine: string, tls12: { name: string; au: string }[]): Promise<Survey> {
  const P = 4; // s_client processes at a time (a 2-core box runs the proxy too)
  const t13 = await pool(TLS13_SUITES, P, async (suite) => ((await probe(port, ['-tls1_3', '-ciphersuites', suite, '-servername', 'localhost'])).cipher === suite ? suite : undefined));
  const t12 = await pool(tls12, P, async ({ name, au }) => {
    const r = await probe(port, ['-tls1_2', '-cipher', `${name}:@SECLEVEL=0`, '-servername', au === 'ECDSA' ? 'ec.test' : 'localhost']);
    return r.ok && r.cipher === name ? name : undefined;
  });
  const byVersion = async (items: string[], flag: '-groups' | '-sigalgs'): Promise<Survey['groups']> => {
    const out = { 'TLSv1.3': [] as string[], 'TLSv1.2': [] as string[] };
    const jobs = (['TLSv1.3', 'TLSv1.2'] as const).flatMap((v) => items.flatMap((item) => NAMES.map((sn) => ({ v, item, sn }))));
    const ok = await pool(jobs, P, async ({ v, item, sn }) => {
      const r = await probe(port, [v === 'TLSv1.3' ? '-tls1_3' : '-tls1_2', flag, item, '-servername', sn, ...(v === 'TLSv1.2' ? ['-cipher', 'DEFAULT:@SECLEVEL=0'] : [])]);
      return r.ok && r.protocol === v;
    });
    jobs.forEach((j, i) => { if (ok[i] && !out[j.v].includes(j.item)) out[j.v].push(j.item); });
    return out;
  };
  const defined = (xs: (string | undefined)[]): string[] => xs.filter((x): x is string => x !== undefined);
  return { engine, tls13Suites: defined(t13), tls12Suites: defined(t12), groups: await byVersion(GROUPS, '-groups'), sigalgs: await byVersion(SIGALGS, '-sigalgs') };
}

describe('openssl s_client survey: suites, groups and signature algorithms accepted, per engine', () => {
  const c = new Cleanup();
  after(() => c.run());

  it('the node engine and the engine auto picks accept the same suites, groups and signature algorithms; suites and groups are the policy\'s', { timeout: 240_000 }, async (t) => {
    const be = await startBackend(echo);
    c.add(() => be.close());
    const config = proxyConfig(be.port, { serverTls: `{defaultIdentity: ${identity('rsa')}, identities: {ec.test: ${identity('ec')}, p8.test: ${identity('p8')}}}` });
    // TLS 1.2 suites openssl knows, but PSK and SRP (which need client-side secrets to offer at all).
    const listed = (await runOk('openssl', ['ciphers', '-v', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'])).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
    const tls12 = listed.filter((f) => f[1] !== 'TLSv1.3').map((f) => ({ name: f[0]!, au: f.find((x) => x.startsWith('Au='))!.slice(3) })).filter((x) => x.au !== 'PSK' && x.au !== 'SRP');
    assert.ok(tls12.length > 40, `openssl lists ${tls12.length} TLS 1.2 suites`);
    const surveys: Survey[] = [];
    // LINKERD_TCP_ENGINE=node, then unset (the config's default, auto): the engine is read from the startup log.
    for (const env of [{ LINKERD_TCP_ENGINE: 'node' }, { LINKERD_TCP_ENGINE: undefined }]) {
      const { proxy, ports: [port] } = await startProxy(config, 1, env);
      track(proxy.proc);
      const cfgDir = dirname(proxy.proc.spawnargs.at(-1)!);
      c.add(async () => {
        await proxy.stop().catch(async () => { proxy.proc.kill('SIGKILL'); await proxy.exited; });
        if (cfgDir.startsWith(join(tmpdir(), 'l5d-tcp-'))) rmSync(cfgDir, { recursive: true, force: true });
      });
      const e = await proxy.waitForLog((l) => l.msg === 'engine');
      const engine = `${String(e['engine'])} (LINKERD_TCP_ENGINE=${env.LINKERD_TCP_ENGINE ?? 'unset'}: ${String(e['why'])})`;
      const t0 = performance.now();
      const s = await survey(port!, engine, tls12);
      report(t, `${engine}: ${JSON.stringify({ ...s, engine: undefined })} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      surveys.push(s);
    }
    const [node, auto] = surveys as [Survey, Survey];
    if (!auto.engine.startsWith('native')) report(t, `auto picked the node engine too (${auto.engine}): the native engine's TLS was not surveyed`);
    const { engine: _a, ...nodeSets } = node;
    const { engine: _b, ...autoSets } = auto;
    assert.deepEqual(autoSets, nodeSets, `${auto.engine} accepts other sets than ${node.engine}`);
    const policy = CIPHERS.split(':');
    assert.deepEqual([...node.tls13Suites, ...node.tls12Suites].sort(), [...policy].sort(), 'the suites accepted are exactly tls-policy.ts CIPHERS');
    for (const v of ['TLSv1.3', 'TLSv1.2'] as const) assert.deepEqual([...node.groups[v]].sort(), CURVES.split(':').sort(), `${v}: the groups accepted are exactly tls-policy.ts CURVES`);
    for (const v of ['TLSv1.3', 'TLSv1.2'] as const) assert.ok(node.sigalgs[v].length > 0, `${v}: some signature algorithm accepted`);
  });
});
