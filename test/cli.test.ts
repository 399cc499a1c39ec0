// The command line as a user meets it: help, version, --check, bad configs (exit 1 with
// every problem and no stack trace), bad arguments (exit 2), a port already in use, bad
// environment values (exit 1, named), --help listing every variable the source reads, and
// both admin token sources refused by --check and before a start binds anything.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { deadline, deadPort, MAIN, runCli, writeConfig } from './support/harness.ts';

const SRC = new URL('../src/', import.meta.url).pathname;
/** README and the guides it leads to (docs/*.md): the environment table is in docs/operations.md. */
const DOCS = ['../README.md', '../docs/operations.md', '../docs/configuration.md'].map((f) => readFileSync(new URL(f, import.meta.url), 'utf8')).join('\n');

/**
 * The environment variables src/ reads: `process.env.X`, `env['X']`, `env?.['X']`, and
 * `env[NAME]` with `const NAME = 'X'` in the same file. A read it cannot name is returned
 * in `unnamed`, so a new spelling cannot slip past unseen.
 */
function envReads(): { names: Map<string, string>; unnamed: string[] } {
  const names = new Map<string, string>(), unnamed: string[] = [];
  const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []);
  for (const file of files(SRC)) {
    const text = readFileSync(file, 'utf8');
    const consts = new Map([...text.matchAll(/const ([A-Z][A-Z0-9_]*) = '([A-Z][A-Z0-9_]*)'/g)].map((m) => [m[1]!, m[2]!]));
    for (const m of text.matchAll(/\benv(?:\?\.)?(?:\[\s*'([A-Za-z0-9_]+)'\s*\]|\.([A-Z][A-Z0-9_]*)\b|\[\s*([A-Za-z_][A-Za-z0-9_]*)\s*\])/g)) {
      const name = m[1] ?? m[2] ?? consts.get(m[3]!);
      if (name) names.set(name, file.slice(SRC.length));
      else unnamed.push(`${file.slice(SRC.length)}: ${m[0]}`);
    }
  }
  return { names, unnamed };
}

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('cli', () => {
  it('-h and --help print usage with the exit codes', async () => {
    for (const flag of ['-h', '--help']) {
      const r = await runCli([flag]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /USAGE:\n\s+linkerd-tcp \[--check\] <PATH>/);
      assert.match(r.stdout, /EXIT CODES:/);
    }
  });

  it('-V and --version print the version', async () => {
    for (const flag of ['-V', '--version']) {
      const r = await runCli([flag]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `linkerd-tcp ${version}\n`);
    }
  });

  it('--check validates and shows routers, servers and resolved destinations', async () => {
    const r = await runCli(['--check', new URL('../example.yml', import.meta.url).pathname]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /example\.yml: config OK/);
    assert.match(r.stdout, /router default: interpreter default/);
    assert.match(r.stdout, /server 127\.0\.0\.1:7474 → \/svc\/default \(connectTimeoutMs=500, client\.connectTimeoutMs=400\)/);
    assert.match(r.stdout, /destination \/svc\/default → 127\.0\.0\.1:8080/);
  });

  it('--check reports a name that does not resolve without failing the config', async () => {
    const file = writeConfig('routers:\n- label: r\n  dtab: /svc/a => ~;\n  servers:\n  - {port: 1, dstName: /svc/a}\n');
    const r = await runCli(['--check', file]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /destination \/svc\/a → neg \(no such name\)/);
  });

  it('a bad config exits 1 naming the file and every key path, with no stack trace', async () => {
    const file = writeConfig('routers:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - {port: abc, dstName: /svc}\n  - {port: 1, dstName: svc, bogus: 1}\n');
    for (const args of [[file], ['--check', file]]) {
      const r = await runCli(args);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, [
        `linkerd-tcp: ${file}: routers[0].servers[0].port: expected an integer 0–65535, got "abc"`,
        `${file}: routers[0].servers[1].bogus: unknown key (expected one of: ip, port, dstName, connectTimeoutMs, connectionLifetimeSecs, idleTimeoutMs, maxConcurrency, tls, handshakeTimeoutMs, defaultDstName, proxyProtocol)`,
        `${file}: routers[0].servers[1].dstName: expected a path starting with '/', got "svc"`,
        '',
      ].join('\n'));
    }
  });

  it('a missing file exits 1 with a clear message', async () => {
    const r = await runCli(['/nonexistent/linkerd.yml']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'linkerd-tcp: /nonexistent/linkerd.yml: cannot read config: no such file\n');
  });

  it('a long report reaches a slow reader whole: the exit waits for the pipes (a loaded machine lost it all)', async () => {
    // 3,000 servers with an unknown key each: some 690 KB of problems, far more than a pipe holds.
    const servers = Array.from({ length: 3000 }, (_, i) => `  - {port: ${10_000 + i}, dstName: /svc/x, bogusKey${i}: 1}`).join('\n');
    const file = writeConfig(`routers:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n${servers}\n`);
    const p = spawn(process.execPath, [MAIN, '--check', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.pause();
    p.stderr.pause();
    const exited = once(p, 'exit');
    // A reader that starts late, as one on a loaded machine does (the stimulus, not a wait for the CLI).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stdout.resume();
    p.stderr.resume();
    const [[code]] = await deadline(20_000, 'the check to exit', Promise.all([exited, once(p, 'close')]));
    assert.equal(code, 1);
    for (const i of [0, 1500, 2999]) assert.match(out, new RegExp(`servers\\[${i}\\]\\.bogusKey${i}`), `problem ${i} in ${out.length} chars`);
  });

  it('bad arguments exit 2', async () => {
    assert.equal((await runCli([])).code, 2);
    assert.equal((await runCli(['a.yml', 'b.yml'])).code, 2);
    const r = await runCli(['--frobnicate', 'a.yml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Unknown option '--frobnicate'/);
  });

  it('a port already in use exits 1 naming the address', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as AddressInfo).port;
    try {
      const file = writeConfig(`admin: {port: 0}\nrouters:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - {port: ${port}, dstName: /svc}\n`);
      const r = await runCli([file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(router r\\): EADDRINUSE`));
    } finally {
      taken.close();
    }
  });

  it('--help lists every environment variable the source reads, and the docs (README, docs/operations.md) document each', async () => {
    const { names, unnamed } = envReads();
    assert.deepEqual(unnamed, [], 'every env read names its variable');
    for (const known of ['LOG_LEVEL', 'LOG_FORMAT', 'LINKERD_TCP_ENGINE', 'LINKERD_TCP_ADMIN_TOKEN', 'LINKERD_TCP_NATIVE_ADDON', 'LINKERD_TCP_WORKERS']) {
      assert.ok(names.has(known), `the scan finds ${known} (it would find nothing if the reads changed shape)`);
    }
    const r = await runCli(['--help']);
    const section = /\nENVIRONMENT:\n([\s\S]*?)\n\n/.exec(r.stdout)?.[1] ?? '';
    const missing = [...names].filter(([name]) => !new RegExp(`^ {4}${name}\\b`, 'm').test(section)).map(([name, file]) => `${name} (read in ${file})`);
    assert.deepEqual(missing, [], `--help's ENVIRONMENT lacks these:\n${section}`);
    const undocumented = [...names.keys()].filter((name) => !DOCS.includes(`\`${name}`));
    assert.deepEqual(undocumented, [], 'the docs name each variable');
  });

  it('a bad environment value is refused at start and at --check: exit 1 naming the variable, nothing started', async () => {
    const file = writeConfig('admin: {port: 0}\nrouters:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - {port: 0, dstName: /svc}\n');
    const bad: [string, string, RegExp][] = [
      ['LINKERD_TCP_ENGINE', 'bogus', /expected one of auto\|native\|node/],
      ['LOG_FORMAT', 'xml', /expected one of json\|text/],
      ...['abc', '0', '-1', '3.5', '65', '2x'].map((v): [string, string, RegExp] => ['LINKERD_TCP_WORKERS', v, /expected a whole number from 1 to 64/]),
    ];
    await Promise.all(bad.flatMap(([name, value, want]) => [[file], ['--check', file]].map(async (args) => {
      const r = await runCli(args, { LOG_LEVEL: 'info', [name]: value });
      const what = `${name}=${value} ${args.join(' ')}: ${JSON.stringify(r)}`;
      assert.equal(r.code, 1, what);
      assert.equal(r.stdout, '', what);
      assert.match(r.stderr, new RegExp(`^linkerd-tcp: ${name}: `), what);
      assert.match(r.stderr, want, what);
      assert.ok(r.stderr.endsWith(`got ${JSON.stringify(value)}\n`), what);
    })));
    // The values they name are accepted (empty means unset).
    for (const env of [{ LINKERD_TCP_ENGINE: 'node' }, { LOG_FORMAT: 'text' }, { LOG_FORMAT: 'json' }, { LINKERD_TCP_WORKERS: '2' }, { LINKERD_TCP_WORKERS: '' }]) {
      const r = await runCli(['--check', file], env);
      assert.equal(r.code, 0, `${JSON.stringify(env)}: ${r.stderr}`);
    }
  });

  it('both admin token sources: --check exits 1 naming both; a start refuses before binding anything, with workers too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l5d-token-'));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'from-the-file-0123456789\n');
    const port = await deadPort();
    const file = writeConfig(`admin: {port: 0, tokenFile: ${tokenFile}}\nrouters:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - {port: ${port}, dstName: /svc}\n`);
    const both = `admin.tokenFile: both it (${tokenFile}) and LINKERD_TCP_ADMIN_TOKEN are set; use one`;
    const env = { LINKERD_TCP_ADMIN_TOKEN: 'from-the-env-0123456789', LOG_LEVEL: 'debug' };
    const check = await runCli(['--check', file], env);
    assert.equal(check.code, 1, check.stdout);
    assert.match(check.stdout, /: config has 1 error\n/);
    assert.ok(check.stdout.includes(`\nerror: ${both}\n`), check.stdout);
    for (const workers of ['1', '2']) {
      const r = await runCli([file], { ...env, LINKERD_TCP_WORKERS: workers });
      assert.equal(r.code, 1, `workers ${workers}: ${r.stderr}`);
      assert.equal(r.stderr, `linkerd-tcp: ${both}\n`);
      assert.equal(r.stdout, '', `workers ${workers}: nothing started, bound or forked`);
    }
    // Either one alone is fine.
    assert.equal((await runCli(['--check', file], { LOG_LEVEL: 'info' })).code, 0);
  });
});
