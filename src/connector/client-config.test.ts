import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClientConfig } from '../config/types.ts';
import { connectorConfigFor, prefixMatches } from './client-config.ts';

describe('client config selection', () => {
  const table: [prefix: string, dst: string, matches: boolean][] = [
    ['/svc', '/svc', true],
    ['/svc', '/svc/web', true],
    ['/svc/', '/svc/web', true],
    ['/svc', '/svcs/web', false], // segment boundary, not string prefix
    ['/svc/web/extra', '/svc/web', false], // longer prefix (linkerd-tcp panicked here)
    ['/', '/anything', true],
  ];
  for (const [prefix, dst, matches] of table) {
    it(`${prefix} ${matches ? 'matches' : 'does not match'} ${dst}`, () => assert.equal(prefixMatches(prefix, dst), matches));
  }

  it('layers every matching static config, the longest prefix winning key by key', () => {
    const client: ClientConfig = {
      kind: 'io.l5d.static',
      configs: [
        { prefix: '/svc/web', connectTimeoutMs: 100 },
        { prefix: '/svc', connectTimeoutMs: 500, minConnections: 3, maxWaiters: 7 },
        { prefix: '/other', connectTimeoutMs: 1 },
      ],
    };
    assert.deepEqual(connectorConfigFor(client, '/svc/web/x'), {
      connectTimeoutMs: 100, connectAttempts: 3, minConnections: 3, maxWaiters: 7, failFast: undefined, tls: undefined, healthCheck: undefined,
    });
    assert.deepEqual(connectorConfigFor(client, '/nothing'), {
      connectTimeoutMs: undefined, connectAttempts: 3, minConnections: 0, maxWaiters: 1_000_000, failFast: undefined, tls: undefined, healthCheck: undefined,
    });
  });

  it('applies io.l5d.global to every destination', () => {
    assert.equal(connectorConfigFor({ kind: 'io.l5d.global', connectTimeoutMs: 42 }, '/a/b').connectTimeoutMs, 42);
  });
});
