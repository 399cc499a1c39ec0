// The PROXY protocol header a destination with `proxyProtocol: v1 | v2` writes to its
// backend before the first byte: the original client and the address it connected to
// (from a PROXY header we received, else the client socket), and for v2 the SNI name and
// ALPN protocol as AUTHORITY and ALPN TLVs when known.
import type { Socket } from 'node:net';
import { buildProxyV1, buildProxyV2, type Endpoints } from '../wire/proxy-protocol-build.ts';

/** Addresses learnt from a PROXY header received by the server, which replace the socket's. */
export interface Origin {
  readonly source: { readonly address: string; readonly port: number };
  readonly destination: { readonly address: string; readonly port: number };
  /** The proxy that sent the header (`ip:port`), for the access log. */
  readonly peer?: string;
}

export function proxyHeader(version: 'v1' | 'v2', client: Socket, origin: Origin | undefined, sni: string | undefined, alpn: string | undefined): Buffer {
  let e: Endpoints | undefined = origin;
  if (!e && client.remoteAddress && client.localAddress && client.remotePort !== undefined && client.localPort !== undefined) {
    e = { source: { address: client.remoteAddress, port: client.remotePort }, destination: { address: client.localAddress, port: client.localPort } };
  }
  return version === 'v1' ? buildProxyV1(e) : buildProxyV2(e, { alpn, authority: sni });
}
