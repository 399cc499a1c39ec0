// The conformance suite on the node engine (net streams), the reference the native engine is held to.
import { bytesSuite } from './bytes.ts';
import { controlSuite } from './control.ts';
import { tlsSuite } from './tls.ts';

bytesSuite('node');
controlSuite('node');
tlsSuite('node');
