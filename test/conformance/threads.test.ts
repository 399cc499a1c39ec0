// The conformance suite on the native I/O threads (`threads: true`, `workers: 2`: one
// process, two threads, each accepting on its own SO_REUSEPORT listener). Servers the threads
// do not carry yet (PROXY headers, `{sni}`, TLS) run natively on the main thread, so the
// same scenarios pass either way. LINKERD_TCP_ENGINE=node skips it, as native.test.ts.
import { loadNative } from '../../src/engine/native-binding.ts';
import { bytesSuite } from './bytes.ts';
import { controlSuite } from './control.ts';

const load = loadNative();
if (load.kind === 'loaded' && process.env['LINKERD_TCP_ENGINE'] !== 'node') {
  bytesSuite('threads');
  controlSuite('threads');
}
