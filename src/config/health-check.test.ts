import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeConfig } from './schema.ts';

function withClient(client: unknown): unknown {
  return { routers: [{ label: 'r', dtab: '/svc => /$/inet/127.0.0.1/1;', servers: [{ port: 0, dstName: '/svc/x' }], client }] };
}
function problems(client: unknown): string[] {
  const r = decodeConfig(withClient(client));
  return 'problems' in r ? r.problems.map((p) => `${p.path}: ${p.message}`) : [];
}

describe('healthCheck config', () => {
  it('decodes a global send-expect check with defaults filled in', () => {
    const r = decodeConfig(withClient({ healthCheck: { kind: 'send-expect', send: 'PING\r\n', expect: '+PONG' } }));
    assert.ok('config' in r);
    const c = r.config.routers[0]!.client;
    assert.equal(c.kind, 'io.l5d.global');
    assert.deepEqual(c.kind === 'io.l5d.global' && c.healthCheck, {
      kind: 'send-expect', send: 'PING\r\n', expect: '+PONG', intervalMs: 5000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 2,
    });
  });

  it('decodes a per-prefix connect check; a short interval bounds the default timeout', () => {
    const r = decodeConfig(withClient({ kind: 'io.l5d.static', configs: [{ prefix: '/svc', healthCheck: { kind: 'connect', intervalMs: 500 } }] }));
    assert.ok('config' in r);
    const c = r.config.routers[0]!.client;
    assert.deepEqual(c.kind === 'io.l5d.static' && c.configs[0]!.healthCheck, {
      kind: 'connect', intervalMs: 500, timeoutMs: 500, unhealthyThreshold: 3, healthyThreshold: 2,
    });
  });

  const bad: [what: string, check: unknown, expected: string][] = [
    ['no kind', { intervalMs: 100 }, 'routers[0].client.healthCheck.kind: expected one of: connect, send-expect; got undefined'],
    ['unknown kind', { kind: 'http' }, 'routers[0].client.healthCheck.kind: expected one of: connect, send-expect; got "http"'],
    ['not a map', 'connect', 'routers[0].client.healthCheck: expected a map, got "connect"'],
    ['send-expect without expect', { kind: 'send-expect', send: 'x' }, 'routers[0].client.healthCheck.expect: missing required key'],
    ['empty expect', { kind: 'send-expect', expect: '' }, 'routers[0].client.healthCheck.expect: expected a non-empty string'],
    ['send on a connect check', { kind: 'connect', send: 'x' }, 'routers[0].client.healthCheck.send: unknown key'],
    ['timeout over the interval', { kind: 'connect', intervalMs: 100, timeoutMs: 200 }, 'routers[0].client.healthCheck.timeoutMs: must be at most intervalMs (100)'],
    ['interval too short', { kind: 'connect', intervalMs: 1 }, 'routers[0].client.healthCheck.intervalMs: expected an integer 10–3600000, got 1'],
    ['threshold 0', { kind: 'connect', unhealthyThreshold: 0 }, 'routers[0].client.healthCheck.unhealthyThreshold: expected an integer 1–100, got 0'],
    ['expect not a string', { kind: 'send-expect', expect: 5 }, 'routers[0].client.healthCheck.expect: expected a string, got 5'],
  ];
  for (const [what, check, expected] of bad) {
    it(`rejects ${what}, naming the key path`, () => {
      const got = problems({ healthCheck: check });
      assert.ok(got.some((p) => p.startsWith(expected)), got.join('\n'));
    });
  }
  it('names the key path under a prefix config', () => {
    const got = problems({ kind: 'io.l5d.static', configs: [{ prefix: '/a', healthCheck: { kind: 'connect', timeoutMs: -1 } }] });
    assert.ok(got.some((p) => p.startsWith('routers[0].client.configs[0].healthCheck.timeoutMs:')), got.join('\n'));
  });
});
