import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { handshakeFailureCause, type HandshakeFailure, identityFor } from './tls.ts';

describe('handshakeFailureCause', () => {
  const table: [string | undefined, boolean, HandshakeFailure][] = [
    ['ERR_TLS_HANDSHAKE_TIMEOUT', true, 'timeout'],
    ['ERR_TLS_UNKNOWN_SNI', false, 'unknown_sni'],
    ['ERR_TLS_CLIENT_CERT', true, 'client_cert'],
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', true, 'protocol_version'],
    ['ERR_SSL_VERSION_TOO_LOW', true, 'protocol_version'],
    ['ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM', true, 'no_shared_cipher'],
    ['ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM', false, 'unknown_sni'], // no certificate to sign with
    ['ERR_SSL_NO_SHARED_CIPHER', true, 'no_shared_cipher'],
    ['ERR_SSL_NO_SHARED_GROUPS', true, 'no_shared_cipher'],
    ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', true, 'client_cert'],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', true, 'client_cert'],
    ['ERR_SSL_NO_APPLICATION_PROTOCOL', true, 'alpn'],
    ['ECONNRESET', true, 'closed'],
    ['EPIPE', true, 'closed'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', true, 'malformed'], // not TLS, e.g. plain HTTP
    ['ERR_SSL_HTTP_REQUEST', true, 'malformed'],
    ['ETIMEDOUT', true, 'other'],
    [undefined, true, 'other'],
  ];
  for (const [code, hasDefault, want] of table) {
    it(`${code ?? '(no code)'}${hasDefault ? '' : ' without a default identity'} → ${want}`, () => {
      assert.equal(handshakeFailureCause(code === undefined ? {} : { code }, hasDefault), want);
    });
  }
});

describe('identityFor', () => {
  const names = new Set(['api.example.com', '*.example.com', 'ec.test']);
  const table: [string, string | undefined][] = [
    ['api.example.com', 'api.example.com'], // exact beats the wildcard
    ['API.Example.COM.', 'api.example.com'], // case-insensitive, trailing dot ignored
    ['web.example.com', '*.example.com'], // one label
    ['a.b.example.com', undefined], // a wildcard covers one label only
    ['example.com', undefined],
    ['ec.test', 'ec.test'],
    ['nope.test', undefined],
    ['', undefined],
  ];
  for (const [servername, want] of table) it(`${JSON.stringify(servername)} → ${String(want)}`, () => assert.equal(identityFor(names, servername), want));
});
