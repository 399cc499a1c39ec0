// The conformance suite on the native engine. On Linux x64 the addon must have loaded:
// a build that silently fell back to node would otherwise pass. LINKERD_TCP_ENGINE=node skips it.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { loadNative } from '../../src/engine/native-binding.ts';
import { bytesSuite } from './bytes.ts';
import { controlSuite } from './control.ts';
import { nativeRunsTls } from './support.ts';
import { tlsSuite } from './tls.ts';

const load = loadNative();
const forcedNode = process.env['LINKERD_TCP_ENGINE'] === 'node';
const required = process.platform === 'linux' && process.arch === 'x64' && !forcedNode;

it('the native engine loaded (Linux x64; LINKERD_TCP_ENGINE=node to run without it)', { skip: !required && 'not required here' }, () => {
  assert.equal(load.kind, 'loaded', load.kind === 'unavailable' ? load.reason : '');
});

if (load.kind === 'loaded' && !forcedNode) {
  bytesSuite('native');
  controlSuite('native');
  // TLS runs here once the engine planner puts a TLS server on the native engine (support.ts nativeRunsTls).
  if (nativeRunsTls()) tlsSuite('native');
  else it('conformance (native): tls', { skip: 'TLS is not on the native engine yet' }, () => {});
}
