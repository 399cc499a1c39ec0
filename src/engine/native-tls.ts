// TLS termination on the native engine, the TypeScript half: reads a server's `tls` files with
// the same reader and checks as the node engine (src/server/tls.ts readServerTls), hands the
// bytes to the addon as one immutable snapshot (native/tls-ctx.c: policy, identities chosen
// by SNI, ALPN, client certificates, tickets), and gives the listener a new snapshot when a
// reload changed the files (new handshakes use it; handshakes under way and open connections
// keep theirs). Every handshake-time decision is made in C from the snapshot: nothing here
// runs per handshake. Session IDs resume on the process that issued them (no shared cache);
// tickets resume everywhere (the primary's keys, tlsTicketKeys).
import type { ServerTlsConfig } from '../config/types.ts';
import { nativePolicy } from '../connector/tls-policy.ts';
import { LinkerdTcpError } from '../errors.ts';
import { identityKey, readServerTls, serverTlsFiles, type ServerTlsMaterial } from '../server/tls.ts';
import type { NativeBinding, NativeTlsServerOptions } from './native-binding.ts';

/** Sessions (IDs and tickets) live as long as the node engine's default (`sessionTimeout`). */
const SESSION_TIMEOUT_S = 300;

/** ALPN protocol names in wire format (each length-prefixed). */
export function alpnWire(protocols: readonly string[]): Buffer {
  return Buffer.concat(protocols.map((p) => {
    const b = Buffer.from(p);
    return Buffer.concat([Buffer.from([b.length]), b]);
  }));
}

/** The snapshot options for `m` (pure but for Buffer copies). */
export function serverOptions(c: ServerTlsConfig, m: ServerTlsMaterial, handshakeMs: number): NativeTlsServerOptions {
  return {
    ...nativePolicy(),
    ...(m.def ? { cert: Buffer.from(m.def.cert), key: Buffer.from(m.def.key) } : {}),
    identities: m.pairs.map(([name, p]) => ({ name: identityKey(name), cert: Buffer.from(p.cert), key: Buffer.from(p.key) })),
    ...(c.alpnProtocols?.length ? { alpn: alpnWire(c.alpnProtocols) } : {}),
    clientAuth: c.clientAuth ? (c.clientAuth.required ? 2 : 1) : 0,
    ...(m.ca ? { clientCa: Buffer.from(m.ca.join('\n')) } : {}),
    sidCtx: Buffer.from(m.sessionIdContext),
    sessionTimeoutS: SESSION_TIMEOUT_S,
    handshakeMs,
  };
}

export class NativeTlsTerminator {
  readonly config: ServerTlsConfig;
  /** Key path of the setting, for errors (`routers[0].servers[0].tls`). */
  readonly where: string;
  private readonly binding: NativeBinding;
  private readonly handshakeMs: number;
  private material: ServerTlsMaterial;
  private id: number;
  private listener: number | undefined;

  constructor(binding: NativeBinding, config: ServerTlsConfig, where: string, handshakeMs: number) {
    this.binding = binding;
    this.config = config;
    this.where = where;
    this.handshakeMs = handshakeMs;
    this.material = readServerTls(config, where);
    this.id = this.snapshot(this.material);
  }

  /** Identity names and expiry, for logs and /api/state. */
  get identities(): ServerTlsMaterial['summary'] {
    return this.material.summary;
  }

  /** Every file this server's TLS reads. */
  files(): string[] {
    return serverTlsFiles(this.config);
  }

  /** Handshakes on `listenerId` start from this server's snapshot (now, and after each reload). */
  attach(listenerId: number): void {
    this.listener = listenerId;
    const r = this.binding.listenerTls(listenerId, this.id);
    if (r !== 0) throw new LinkerdTcpError('TLS_MATERIAL', `${this.where}: the native engine refused the TLS context (errno ${r})`);
  }

  /** Re-reads every file: true when something changed and new handshakes use it; throws (keeping the old) when bad. */
  reload(): boolean {
    const next = readServerTls(this.config, this.where);
    if (next.material === this.material.material) return false;
    const id = this.snapshot(next);
    if (this.listener !== undefined && this.binding.listenerTls(this.listener, id) !== 0) {
      this.binding.tlsServerRelease(id);
      throw new LinkerdTcpError('TLS_MATERIAL', `${this.where}: the native engine refused the new TLS context`);
    }
    this.binding.tlsServerRelease(this.id); // handshakes under way and open connections keep their reference
    this.id = id;
    this.material = next;
    return true;
  }

  /** Session-ticket keys (48 bytes) for every native TLS server of this process. Never log them. */
  setTicketKeys(keys: Buffer): void {
    this.binding.tlsTicketKeys(keys);
  }

  /** Session IDs resume on the process that issued them on this engine (no cross-process cache). */
  setSessionStore(): void {}

  /** The snapshot's id, for the identity-matching table test. */
  get snapshotId(): number {
    return this.id;
  }

  /** Drops this server's snapshot (the listener and its connections keep theirs until they end). */
  close(): void {
    this.binding.tlsServerRelease(this.id);
  }

  private snapshot(m: ServerTlsMaterial): number {
    try {
      return this.binding.tlsServer(serverOptions(this.config, m, this.handshakeMs));
    } catch (e) {
      throw new LinkerdTcpError('TLS_MATERIAL', `${this.where}: OpenSSL refused the key or certificates: ${(e as Error).message}`, { cause: e });
    }
  }
}
