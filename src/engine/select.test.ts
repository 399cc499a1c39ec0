// The engine choice per server (select.ts): auto, native and node, the environment's
// override, and the config errors `engine: native` gives when it cannot be honoured.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseConfig } from '../config/load.ts';
import type { NativeBinding, NativeLoad } from './native-binding.ts';
import { planEngines } from './select.ts';

const loaded: NativeLoad = { kind: 'loaded', binding: { tlsAvailable: () => undefined } as NativeBinding, path: '/x.node' };
/** An addon on a node that does not export OpenSSL 3 to addons (native/tls-ctx.c tls_unavailable). */
const noTls: NativeLoad = { kind: 'loaded', binding: { tlsAvailable: () => 'this node does not export SSL_CTX_new to addons' } as NativeBinding, path: '/x.node' };
const missing: NativeLoad = { kind: 'unavailable', reason: 'the native addon was not built' };

const cfg = (engine: string, extra = '') => parseConfig(`
${engine ? `engine: ${engine}` : ''}
routers:
- label: r
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - {port: 0, dstName: /svc/plain}
${extra}`, 'c.yml');

const tlsServer = `  - {port: 0, dstName: /svc/tls, tls: {defaultIdentity: {privateKey: test/fixtures/tls/ec.key, certs: [test/fixtures/tls/ec.pem]}}}`;

it('auto (the default): native where the addon loaded (TLS too, where the node exports OpenSSL), node without the addon', () => {
  assert.deepEqual(planEngines(cfg('', tlsServer), { env: undefined, load: loaded }).map((p) => [p.kind, p.why]), [['native', 'plain TCP'], ['native', 'tls']]);
  // Without OpenSSL exports only the TLS server falls back; plain TCP stays native.
  assert.deepEqual(planEngines(cfg('', tlsServer), { env: undefined, load: noTls }).map((p) => [p.kind, p.why]),
    [['native', 'plain TCP'], ['node', 'tls: this node does not export SSL_CTX_new to addons']]);
  const tlsWithProxy = tlsServer.replace('dstName: /svc/tls,', 'dstName: /svc/tls, proxyProtocol: {trustedCidrs: [127.0.0.1/32]},');
  assert.deepEqual(planEngines(cfg('', tlsWithProxy), { env: undefined, load: loaded }).map((p) => p.why), ['plain TCP', 'tls']);
  assert.deepEqual(planEngines(cfg('auto'), { env: undefined, load: missing }).map((p) => p.kind), ['node']);
});

it('node everywhere with engine: node or LINKERD_TCP_ENGINE=node (which wins over the config)', () => {
  assert.deepEqual(planEngines(cfg('node'), { env: undefined, load: loaded }).map((p) => p.kind), ['node']);
  assert.deepEqual(planEngines(cfg('native'), { env: 'node', load: loaded }).map((p) => [p.kind, p.why]), [['node', 'LINKERD_TCP_ENGINE=node']]);
});

it('engine: native is a config error naming the reason when the addon is missing or a server needs node', () => {
  assert.throws(() => planEngines(cfg('native'), { env: undefined, load: missing, file: 'c.yml' }),
    { code: 'CONFIG_INVALID', message: 'c.yml: engine: native: the native engine is not available: the native addon was not built' });
  assert.throws(() => planEngines(cfg('native', tlsServer), { env: undefined, load: noTls }),
    { message: /engine: native: routers\[0\]\.servers\[1\] needs the node engine \(tls: this node does not export/ });
  assert.deepEqual(planEngines(cfg('native', tlsServer), { env: undefined, load: loaded }).map((p) => p.kind), ['native', 'native']);
  assert.deepEqual(planEngines(cfg('native'), { env: undefined, load: loaded }).map((p) => p.kind), ['native']);
});

it('an unknown engine is a config error naming the key', () => {
  assert.throws(() => cfg('fast'), { message: /c\.yml: engine: expected one of auto, native, node/ });
});
