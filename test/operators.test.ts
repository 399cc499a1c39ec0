// What an operator meets at the command line and in the logs: --check's verdict, a bad
// LOG_LEVEL, SIGHUP reloads, access records for refused connections, and the SNI of a
// failed handshake.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli, writeConfig } from './support/harness.ts';

const TLS_MISSING = `
admin: {port: 0}
routers:
- label: r
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - port: 0
    dstName: /svc
    tls:
      defaultIdentity: {privateKey: tls/nope.key, certs: [tls/nope.pem]}
`;

describe('operators: command line', () => {
  it('--check says "config OK" only when there is no error (and shows the absolute path of a relative file)', async () => {
    const file = writeConfig(TLS_MISSING);
    const r = await runCli(['--check', file], { LINKERD_TCP_WORKERS: '1' });
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stdout, /config OK/);
    assert.match(r.stdout.split('\n')[0]!, /: config has 1 error$/);
    assert.match(r.stdout, new RegExp(`^error: .*tls/nope\\.key \\(${process.cwd().replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/tls/nope\\.key\\)`, 'm'));
  });

  it('LOG_LEVEL=bogus is rejected like a bad config (exit 1, a clear message)', async () => {
    const file = writeConfig('routers:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - {port: 0, dstName: /svc}\n');
    for (const args of [['--check', file], [file]]) {
      const r = await runCli(args, { LOG_LEVEL: 'bogus', LINKERD_TCP_WORKERS: '1' });
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stderr, 'linkerd-tcp: LOG_LEVEL: expected one of trace|debug|info|warn|error|fatal|silent, got "bogus"\n');
    }
    assert.equal((await runCli(['--check', file], { LOG_LEVEL: 'WARN' })).code, 0);
  });
});
