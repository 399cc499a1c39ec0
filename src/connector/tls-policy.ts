// TLS policy and key material shared by termination (server/) and origination (here):
// TLS 1.2 and 1.3 only, ECDHE over x25519, P-256 and P-384 only, AEAD suites only. Key and
// certificate files are read and checked here, with errors that name the key path and the
// file (never their contents).
import { isAbsolute, resolve } from 'node:path';
import { constants, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import type { TlsIdentity } from '../config/types.ts';
import { LinkerdTcpError } from '../errors.ts';
import { readRegularFile } from '../regular-file.ts';

/** TLS 1.3 suites, then ECDHE (forward secret) AEAD suites for TLS 1.2; ECDSA before RSA. */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const CURVES = 'X25519:P-256:P-384';

/** The options every context of ours starts from. */
export const POLICY: SecureContextOptions = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: CIPHERS,
  ecdhCurve: CURVES,
  honorCipherOrder: true,
  // No TLS 1.2 renegotiation (a client-driven CPU sink) and no compression (CRIME).
  secureOptions: constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_COMPRESSION,
};

/** The same policy for the native engine (native/tls-ctx.c): TLS 1.3 suites apart, groups pinned. */
export function nativePolicy(): { ciphers12: string; suites13: string; groups: string } {
  const all = CIPHERS.split(':');
  return { ciphers12: all.filter((c) => !c.startsWith('TLS_')).join(':'), suites13: all.filter((c) => c.startsWith('TLS_')).join(':'), groups: CURVES };
}

/** A file as the config names it, with the absolute path when relative (resolved against the working directory). */
export function shownPath(file: string): string {
  return isAbsolute(file) ? file : `${file} (${resolve(file)})`;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A key and its certificate chain, checked against each other. */
export interface KeyPair {
  readonly key: string;
  readonly cert: string; // leaf then chain, PEM
  /** The leaf's DNS and IP names, for logs. */
  readonly names: readonly string[];
  readonly notAfter: string;
}

function read(where: string, file: string): string {
  try {
    return readRegularFile(file).text;
  } catch (e) {
    throw new LinkerdTcpError('TLS_MATERIAL', `${where}: cannot read ${shownPath(file)}: ${(e as Error).message}`, { cause: e });
  }
}

/** The PEM certificates in `file`, each parsed; at least one. */
function certificates(where: string, file: string): { pem: string[]; parsed: X509Certificate[] } {
  const pem = read(where, file).match(PEM_CERT) ?? [];
  if (pem.length === 0) throw new LinkerdTcpError('TLS_MATERIAL', `${where}: ${shownPath(file)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  const parsed = pem.map((p, i) => {
    try {
      return new X509Certificate(p);
    } catch (e) {
      throw new LinkerdTcpError('TLS_MATERIAL', `${where}: certificate ${i + 1} in ${shownPath(file)} does not parse: ${(e as Error).message}`, { cause: e });
    }
  });
  return { pem, parsed };
}

/** Reads and checks an identity: the key parses (PKCS#1, PKCS#8 or SEC1 PEM) and matches the leaf. */
export function loadIdentity(id: TlsIdentity, where: string): KeyPair {
  const keyPem = read(`${where}.privateKey`, id.privateKey);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    const why = /passphrase/i.test((e as Error).message) ? 'is encrypted (linkerd-tcp needs an unencrypted key)' : 'is not a PEM private key (PKCS#1, PKCS#8 or SEC1)';
    throw new LinkerdTcpError('TLS_MATERIAL', `${where}.privateKey: ${shownPath(id.privateKey)} ${why}`, { cause: e });
  }
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') {
    throw new LinkerdTcpError('TLS_MATERIAL', `${where}.privateKey: ${shownPath(id.privateKey)} is a ${key.asymmetricKeyType ?? 'unknown'} key; expected RSA or ECDSA`);
  }
  const pems: string[] = [];
  let leaf: X509Certificate | undefined;
  id.certs.forEach((file, i) => {
    const c = certificates(`${where}.certs[${i}]`, file);
    leaf ??= c.parsed[0];
    pems.push(...c.pem);
  });
  if (!leaf!.checkPrivateKey(key)) {
    throw new LinkerdTcpError('TLS_MATERIAL', `${where}: the key in ${shownPath(id.privateKey)} does not match the certificate in ${shownPath(id.certs[0]!)}`);
  }
  const names = (leaf!.subjectAltName ?? '').split(', ').filter(Boolean).map((n) => n.replace(/^(DNS|IP Address):/, ''));
  return { key: keyPem, cert: pems.join('\n') + '\n', names, notAfter: leaf!.validTo };
}

/** Reads CA certificate files into PEM strings. */
export function loadTrust(files: readonly string[], where: string): string[] {
  return files.flatMap((file, i) => certificates(`${where}[${i}]`, file).pem);
}

/** Every file a TLS setting reads, for the reload watcher. */
export function identityFiles(id: TlsIdentity | undefined): string[] {
  return id ? [id.privateKey, ...id.certs] : [];
}
