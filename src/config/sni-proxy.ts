// Config decoders for SNI routing and the PROXY protocol: a dstName that may hold the
// `{sni}` placeholder, `defaultDstName`, a server's `proxyProtocol: {accept, trustedCidrs}`
// (receive) and a client's `proxyProtocol: v1 | v2` (send), each problem with its key path.
import { isIP } from 'node:net';
import { parsePath } from '../naming/path.ts';
import { hasSniPlaceholder, SNI_PLACEHOLDER } from '../wire/sni-name.ts';
import { type Cursor, describe, type Fields, listOf, object, opt, posInt, req, string } from './decode.ts';
import type { ProxyReceiveConfig, ServerConfig } from './types.ts';

/** A destination path, where `{sni}` may stand for a host name anywhere (checked with an example name). */
export const dstPath = (c: Cursor, v: unknown): string | undefined => {
  const s = string(c, v);
  if (s === undefined) return undefined;
  if (!s.startsWith('/')) return c.fail(`expected a path starting with '/', got ${describe(v)}`);
  const unknownBrace = /\{(?!sni\})[^}]*\}/.exec(s);
  if (unknownBrace) return c.fail(`unknown placeholder ${unknownBrace[0]} (only ${SNI_PLACEHOLDER} is known)`);
  try {
    parsePath(s.split(SNI_PLACEHOLDER).join('sni.example.com'));
    return s;
  } catch (e) {
    return c.fail(`invalid path: ${(e as Error).message}`);
  }
};

/** `a.b.c.d/n` or `v6/n`; a bare address is one host (/32 or /128). */
export const cidr = (c: Cursor, v: unknown): string | undefined => {
  const s = string(c, v, { nonEmpty: true });
  if (s === undefined) return undefined;
  const [ip, bits, ...rest] = s.split('/');
  const fam = isIP(ip ?? '');
  const max = fam === 6 ? 128 : 32;
  if (fam === 0 || rest.length > 0 || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))) {
    return c.fail(`expected a CIDR such as 127.0.0.0/8 or ::1/128, got ${describe(v)}`);
  }
  return bits === undefined ? `${ip}/${max}` : s;
};

export function proxyReceive(c: Cursor, v: unknown): ProxyReceiveConfig | undefined {
  const f = object(c, v, ['accept', 'trustedCidrs']);
  if (!f) return undefined;
  const accept = opt(c, f, 'accept', oneOf(['v1', 'v2', 'any'] as const), 'any');
  const trustedCidrs = req(c, f, 'trustedCidrs', listOf(cidr));
  if (trustedCidrs && trustedCidrs.length === 0) c.key('trustedCidrs').fail('expected at least one CIDR (the proxies allowed to send PROXY headers)');
  return trustedCidrs?.length ? { accept, trustedCidrs } : undefined;
}

export const proxySend = (c: Cursor, v: unknown): 'v1' | 'v2' | undefined => oneOf(['v1', 'v2'] as const)(c, v);

function oneOf<T extends string>(values: readonly T[]) {
  return (c: Cursor, v: unknown): T | undefined =>
    (values as readonly unknown[]).includes(v) ? (v as T) : c.fail(`expected one of: ${values.join(', ')}; got ${describe(v)}`);
}

/** A server's new keys, present only when written (handshakeTimeoutMs defaults to 10000 where it is used). */
export function sniProxyServerKeys(c: Cursor, f: Fields, defaultDstName: string | undefined): Pick<ServerConfig, 'handshakeTimeoutMs' | 'defaultDstName' | 'proxyProtocol'> {
  const handshakeTimeoutMs = opt(c, f, 'handshakeTimeoutMs', posInt, undefined);
  const proxyProtocol = opt(c, f, 'proxyProtocol', proxyReceive, undefined);
  return {
    ...(handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs }),
    ...(defaultDstName === undefined ? {} : { defaultDstName }),
    ...(proxyProtocol === undefined ? {} : { proxyProtocol }),
  };
}

/** Cross-field rules of one server: `defaultDstName` only with `{sni}` and without a placeholder of its own. */
export function checkSniServer(c: Cursor, dstName: string | undefined, defaultDstName: string | undefined): void {
  if (defaultDstName === undefined) return;
  if (dstName !== undefined && !hasSniPlaceholder(dstName)) c.key('defaultDstName').fail(`only meaningful when dstName holds ${SNI_PLACEHOLDER}`);
  if (hasSniPlaceholder(defaultDstName)) c.key('defaultDstName').fail(`must not hold ${SNI_PLACEHOLDER}`);
}
