// The command line as a user meets it: help, version, --check, bad configs (exit 1 with
// every problem and no stack trace), bad arguments (exit 2), and a port already in use.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { runCli, writeConfig } from './support/harness.ts';

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
});
