// TLS origination: one client context per `tls` setting, verifying the backend's
// certificate against `dnsName` (sent as SNI unless it is an IP address) with the system
// roots plus `trustCerts`, and presenting `clientIdentity` to backends that ask for one.
// The context is rebuilt in place on reload; connections already open keep theirs. The
// native engine's snapshot of the same material (native/tls-ctx.c) is made on first use and
// again after a reload changed it: one setting, one set of files, both engines.
import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect, type ConnectionOptions, createSecureContext, getCACertificates, type PeerCertificate, rootCertificates, type SecureContext } from 'node:tls';
import type { ClientTlsConfig } from '../config/types.ts';
import { identityFiles, type KeyPair, loadIdentity, loadTrust, nativePolicy, POLICY } from './tls-policy.ts';

/** Without a configured connectTimeoutMs, a TLS handshake with a backend is still bounded:
 * the kernel bounds a TCP connect, but nothing bounds a backend that accepts and never answers. */
export const TLS_CONNECT_TIMEOUT_MS = 10_000;

export class ClientTls {
  readonly config: ClientTlsConfig;
  /** Key path of the setting, for errors (`routers[0].client.tls`). */
  readonly where: string;
  context: SecureContext;
  private material: string;
  private built: Built;
  /** The native engine's snapshot of the current material (an id of `binding`), made on first use. */
  private native: { binding: NativeTlsClients; id: number; material: string } | undefined;

  constructor(config: ClientTlsConfig, where: string) {
    this.config = config;
    this.where = where;
    const built = this.build();
    this.built = built;
    this.context = built.context;
    this.material = built.material;
  }

  /** The native snapshot for new connections (throws with OpenSSL's reason on material it refuses). */
  nativeId(binding: NativeTlsClients): number {
    const n = this.native;
    if (n && n.binding === binding && n.material === this.material) return n.id;
    const b = this.built, name = this.config.dnsName;
    const id = binding.tlsClient({
      ...nativePolicy(), name, nameIsIp: isIP(name) ? 1 : 0,
      trust: Buffer.from(b.roots.join('\n')),
      ...(b.id ? { cert: Buffer.from(b.id.cert), key: Buffer.from(b.id.key) } : {}),
    });
    if (n) n.binding.tlsClientRelease(n.id); // connections made with it keep their own reference
    this.native = { binding, id, material: this.material };
    return id;
  }

  /** Every file this setting reads. */
  files(): string[] {
    return [...(this.config.trustCerts ?? []), ...identityFiles(this.config.clientIdentity)];
  }

  /** Re-reads the files: true when they changed and the new context is in use; throws (keeping the old one) when bad. */
  reload(): boolean {
    const built = this.build();
    if (built.material === this.material) return false;
    this.built = built;
    this.context = built.context;
    this.material = built.material;
    return true;
  }

  private build(): Built {
    const c = this.config;
    const trust = c.trustCerts ? loadTrust(c.trustCerts, `${this.where}.trustCerts`) : undefined;
    const id = c.clientIdentity ? loadIdentity(c.clientIdentity, `${this.where}.clientIdentity`) : undefined;
    // linkerd-tcp: trustCerts replaced the roots (an empty store without them); here they add to the system's.
    const ca = trust ? [...systemRoots(), ...trust] : undefined;
    const context = createSecureContext({ ...POLICY, ...(ca ? { ca } : {}), ...(id ? { key: id.key, cert: id.cert } : {}) });
    return { context, material: [...(trust ?? []), id?.key ?? '', id?.cert ?? ''].join('\n'), roots: ca ?? systemRoots(), id };
  }
}

/** What the native engine offers for origination (src/engine/native-binding.ts has the whole API). */
export interface NativeTlsClients {
  tlsClient(o: {
    ciphers12: string; suites13: string; groups: string; name: string; nameIsIp: 0 | 1;
    trust: Uint8Array; cert?: Uint8Array; key?: Uint8Array;
  }): number;
  tlsClientRelease(id: number): void;
}

interface Built {
  context: SecureContext;
  material: string;
  /** What verifies the backend: Node's default roots, plus trustCerts. */
  roots: readonly string[];
  id: KeyPair | undefined;
}

function systemRoots(): readonly string[] {
  // The roots Node uses by default (its bundled Mozilla set, plus the system's when Node runs with --use-system-ca).
  return typeof getCACertificates === 'function' ? getCACertificates('default') : rootCertificates;
}

/** Starts a TLS connect; `onConnect` fires once the handshake has verified the backend. */
export function dialTls(
  host: string, port: number, highWaterMark: number, tls: ClientTls,
  onConnect: (this: Socket) => void, onError: (this: Socket, err: Error) => void,
): Socket {
  const name = tls.config.dnsName;
  // allowHalfOpen and highWaterMark reach the TLSSocket (tls.connect passes them on); @types omits them.
  const opts: ConnectionOptions & { allowHalfOpen: boolean; highWaterMark: number } = {
    host, port, allowHalfOpen: true, highWaterMark,
    secureContext: tls.context,
    // SNI carries host names only (RFC 6066); an IP dnsName is still checked against the certificate's IP SANs.
    ...(isIP(name) ? {} : { servername: name }),
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert),
  };
  const s = connect(opts);
  s.setNoDelay(true);
  s.on('error', onError);
  s.once('secureConnect', onConnect);
  return s;
}
