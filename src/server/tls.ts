// TLS termination for one server: picks the identity by SNI (exact name, then a `*.`
// wildcard for one label, then the default), offers ALPN, applies the TLS policy, verifies
// client certificates when asked (mTLS), and bounds the handshake in time. A handshake that
// fails is classified by cause and closes only its own connection. Identities reload in
// place: new handshakes use the new ones, open connections keep theirs.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { createSecureContext, createServer, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { ServerTlsConfig } from '../config/types.ts';
import { identityFiles, type KeyPair, loadIdentity, loadTrust, POLICY } from '../connector/tls-policy.ts';
import { isTls13Session, SessionCache, type SessionStore } from './session-cache.ts';

export type HandshakeFailure =
  | 'timeout' // no complete ClientHello or handshake within handshakeTimeoutMs
  | 'protocol_version' // SSL 3, TLS 1.0 or 1.1 offered
  | 'unknown_sni' // no identity for the name asked for, and no defaultIdentity
  | 'no_shared_cipher' // no suite, group or signature algorithm in common
  | 'alpn' // the client offered ALPN protocols, none of them ours (RFC 7301 no_application_protocol)
  | 'client_cert' // mTLS: no client certificate, or one that does not verify
  | 'malformed' // not TLS at all (plain TCP, HTTP) or a broken record
  | 'closed' // the client went away mid-handshake (a truncated ClientHello)
  | 'other';

/** Maps a handshake error to its cause (pure). `hasDefault`: whether a default identity exists. */
export function handshakeFailureCause(err: { code?: string | undefined; message?: string }, hasDefault: boolean): HandshakeFailure {
  const code = err.code ?? '';
  switch (code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT': return 'timeout';
    case 'ERR_TLS_UNKNOWN_SNI': return 'unknown_sni';
    case 'ERR_TLS_CLIENT_CERT': return 'client_cert';
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL': case 'ERR_SSL_VERSION_TOO_LOW': case 'ERR_SSL_WRONG_SSL_VERSION':
    case 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION': case 'ERR_SSL_NO_PROTOCOLS_AVAILABLE':
      return 'protocol_version';
    case 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM':
      // Without SNI (or with an unknown name) and no default identity, there is no certificate to sign with.
      return hasDefault ? 'no_shared_cipher' : 'unknown_sni';
    case 'ERR_SSL_NO_SHARED_CIPHER': case 'ERR_SSL_NO_SUITABLE_KEY_SHARE': case 'ERR_SSL_NO_SHARED_GROUPS':
    case 'ERR_SSL_NO_SUITABLE_GROUPS': case 'ERR_SSL_NO_CIPHERS_AVAILABLE':
      return 'no_shared_cipher';
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE': case 'ERR_SSL_CERTIFICATE_VERIFY_FAILED':
    case 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED':
      return 'client_cert';
    case 'ERR_SSL_NO_APPLICATION_PROTOCOL': return 'alpn';
    case 'ECONNRESET': case 'EPIPE': return 'closed';
  }
  return code.startsWith('ERR_SSL_') ? 'malformed' : 'other';
}

/** The identity key for `servername` among `names` (pure): exact, then `*.` for the first label. */
export function identityFor(names: ReadonlySet<string>, servername: string): string | undefined {
  const name = servername.toLowerCase().replace(/\.$/, '');
  if (names.has(name)) return name;
  const dot = name.indexOf('.');
  if (dot > 0) {
    const wild = '*' + name.slice(dot);
    if (names.has(wild)) return wild;
  }
  return undefined;
}

export interface TlsHandshakeEvents {
  /** The handshake finished: hand the connection on. */
  secure(socket: TLSSocket, raw: Socket, handshakeUs: number): void;
  /** The handshake failed (the socket is already destroyed); `sni`: the name the client asked for, if it got that far. */
  failed(raw: Socket | undefined, cause: HandshakeFailure, err: Error, sni: string | undefined): void;
}

interface RawSocket extends Socket {
  tlsAcceptedAt?: number;
}

/** The ClientHello's server name, kept by SNICallback: a failed handshake's TLSSocket has no `servername`. */
interface SniSocket extends TLSSocket {
  ltSni?: string;
}

/** An identity name as the table keys it: lowercase, no trailing dot (`*.` kept). */
export function identityKey(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** A termination setting's files, read and checked: what both engines build their contexts from. */
export interface ServerTlsMaterial {
  /** Client-certificate trust (mTLS), PEM each. */
  readonly ca: string[] | undefined;
  readonly def: KeyPair | undefined;
  /** Identity name as configured, and its pair. */
  readonly pairs: readonly (readonly [string, KeyPair])[];
  /** Everything read, to tell a reload that changed something. Never logged. */
  readonly material: string;
  /**
   * The session-ID context: a hash of the trust material and client-auth mode, so sessions made
   * under another client CA (or another mode) never resume after a reload changes it.
   */
  readonly sessionIdContext: string;
  readonly summary: { name: string; names: readonly string[]; notAfter: string }[];
}

/** Every file a termination setting reads (for the reload watcher). */
export function serverTlsFiles(c: ServerTlsConfig): string[] {
  return [...identityFiles(c.defaultIdentity), ...Object.values(c.identities).flatMap(identityFiles), ...(c.clientAuth?.trustCerts ?? [])];
}

/** Reads every file of a termination setting (throws a config error naming the key path and file). */
export function readServerTls(c: ServerTlsConfig, where: string): ServerTlsMaterial {
  const ca = c.clientAuth ? loadTrust(c.clientAuth.trustCerts, `${where}.clientAuth.trustCerts`) : undefined;
  const pairs: [string, KeyPair][] = Object.entries(c.identities).map(([name, id]) => [name, loadIdentity(id, `${where}.identities.${name}`)]);
  const def = c.defaultIdentity ? loadIdentity(c.defaultIdentity, `${where}.defaultIdentity`) : undefined;
  const trust = `${c.clientAuth ? (c.clientAuth.required ? 'required' : 'optional') : 'none'}\n${ca?.join('') ?? ''}`;
  return {
    ca, def, pairs,
    material: [ca?.join('') ?? '', ...pairs.map(([n, p]) => `${n}\n${p.key}${p.cert}`), def ? `default\n${def.key}${def.cert}` : ''].join('\n'),
    sessionIdContext: createHash('sha256').update(trust).digest('hex').slice(0, 32),
    summary: [...pairs, ...(def ? [['default', def] as const] : [])].map(([name, p]) => ({ name, names: p.names, notAfter: p.notAfter })),
  };
}

interface Contexts {
  readonly byName: ReadonlyMap<string, SecureContext>;
  readonly names: ReadonlySet<string>;
  readonly defaultOptions: SecureContextOptions;
  readonly hasDefault: boolean;
  readonly material: string;
  readonly sessionIdContext: string;
  readonly summary: { name: string; names: readonly string[]; notAfter: string }[];
}

export class TlsTerminator {
  readonly config: ServerTlsConfig;
  /** Key path of the setting, for errors (`routers[0].servers[0].tls`). */
  readonly where: string;
  private readonly server: TlsServer;
  private contexts: Contexts;
  private readonly events: TlsHandshakeEvents;
  /** Raw sockets whose handshake is under way. */
  readonly handshaking = new Set<Socket>();
  /** Session-ticket keys shared by every worker (from the primary); Node's own random ones otherwise. */
  private ticketKeys: Buffer | undefined;
  /** Session-ID resumption (clients without tickets): this process's cache, or the primary's shared one. */
  private sessions: SessionStore = new SessionCache();

  constructor(config: ServerTlsConfig, where: string, handshakeTimeoutMs: number, events: TlsHandshakeEvents) {
    this.config = config;
    this.where = where;
    this.events = events;
    this.contexts = this.build();
    const auth = config.clientAuth;
    const contexts = (): Contexts => this.contexts;
    this.server = createServer({
      ...this.contexts.defaultOptions,
      sessionIdContext: this.contexts.sessionIdContext,
      handshakeTimeout: handshakeTimeoutMs,
      ...(config.alpnProtocols ? { ALPNProtocols: [...config.alpnProtocols] } : {}),
      // With `required: false` a client may come without a certificate; one it does send must verify (checked in onSecure).
      requestCert: auth !== undefined,
      rejectUnauthorized: auth?.required ?? false,
      // A plain function: Node calls it as a method of the TLSSocket being handshaken (its `this`).
      SNICallback: function (this: SniSocket, servername, cb) {
        if (this && typeof this === 'object') this.ltSni = servername;
        const c = contexts();
        const key = identityFor(c.names, servername);
        if (key !== undefined) cb(null, c.byName.get(key));
        else if (c.hasDefault) cb(null, undefined); // the default identity
        else cb(Object.assign(new Error(`no identity for SNI name "${servername}" and no defaultIdentity`), { code: 'ERR_TLS_UNKNOWN_SNI' }), undefined);
      },
    });
    this.server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
      if (!isTls13Session(data)) this.sessions.set(id, data); // TLS 1.3 resumes by ticket only
      done();
    });
    this.server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
      this.sessions.get(id, (data) => done(null, data ?? null));
    });
    this.server.on('secureConnection', (s: TLSSocket) => this.onSecure(s));
    this.server.on('tlsClientError', (err: Error, s: TLSSocket) => this.onFailed(err, s));
  }

  /** Identity names and expiry, for logs and /api/state. */
  get identities(): Contexts['summary'] {
    return this.contexts.summary;
  }

  /** Every file this server's TLS reads. */
  files(): string[] {
    return serverTlsFiles(this.config);
  }

  /** Starts the handshake on a raw accepted socket. */
  accept(raw: Socket): void {
    (raw as RawSocket).tlsAcceptedAt = performance.now();
    this.handshaking.add(raw);
    this.server.emit('connection', raw);
  }

  /** Keeps sessions for ID resumption in `store` from now on (a worker: the primary's shared cache). */
  setSessionStore(store: SessionStore): void {
    this.sessions = store;
  }

  /** Uses these session-ticket keys (48 bytes) from now on, also across reloads. Never log them. */
  setTicketKeys(keys: Buffer): void {
    this.ticketKeys = keys;
    this.server.setTicketKeys(keys);
  }

  /** Re-reads every file: true when something changed and new handshakes use it; throws (keeping the old) when bad. */
  reload(): boolean {
    const next = this.build();
    if (next.material === this.contexts.material) return false;
    // A new session-ID context when the trust changed: sessions of a removed CA stop resuming.
    this.server.setSecureContext({ ...next.defaultOptions, sessionIdContext: next.sessionIdContext } as SecureContextOptions);
    if (this.ticketKeys) this.server.setTicketKeys(this.ticketKeys); // setSecureContext makes new ones
    this.contexts = next;
    return true;
  }

  /** Cuts every handshake under way (shutdown). */
  cutHandshakes(): void {
    for (const s of [...this.handshaking]) s.destroy();
  }

  private onSecure(s: TLSSocket): void {
    const raw = parentOf(s);
    if (raw) this.handshaking.delete(raw);
    if (this.config.clientAuth && !s.authorized && s.getPeerCertificate().raw !== undefined) {
      // `required: false` let it through the handshake; a certificate sent must still verify.
      s.destroy();
      const why = s.authorizationError instanceof Error ? s.authorizationError.message : String(s.authorizationError);
      this.events.failed(raw, 'client_cert', Object.assign(new Error(`client certificate rejected: ${why}`), { code: 'ERR_TLS_CLIENT_CERT' }), s.servername || undefined);
      return;
    }
    // Already true (copied from the raw socket, see Server); the pump depends on it, so say it here too.
    s.allowHalfOpen = true;
    const started = (raw as RawSocket | undefined)?.tlsAcceptedAt ?? performance.now();
    this.events.secure(s, raw ?? s, (performance.now() - started) * 1000);
  }

  private onFailed(err: Error, s: TLSSocket): void {
    // A handshake timeout only reports; the socket must be closed here.
    s.destroy();
    const raw = parentOf(s);
    if (raw) {
      if (!this.handshaking.delete(raw)) return; // already accounted for
      raw.destroy();
    }
    // A client certificate that fails verification is refused by Node after the handshake (a
    // close, reported as a hang-up); authorizationError tells it apart from a client that left.
    const cause = s.authorizationError ? 'client_cert' : handshakeFailureCause(err as NodeJS.ErrnoException, this.contexts.hasDefault);
    const sni = (s as SniSocket).ltSni ?? (s.servername || undefined);
    this.events.failed(raw, cause, s.authorizationError ? new Error(`client certificate rejected: ${String(s.authorizationError)}`) : err, sni);
  }

  private build(): Contexts {
    const m = readServerTls(this.config, this.where);
    const base: SecureContextOptions = { ...POLICY, ...(m.ca ? { ca: m.ca } : {}) };
    const byName = new Map<string, SecureContext>();
    for (const [name, pair] of m.pairs) byName.set(identityKey(name), createSecureContext({ ...base, key: pair.key, cert: pair.cert }));
    return {
      byName, names: new Set(byName.keys()),
      defaultOptions: m.def ? { ...base, key: m.def.key, cert: m.def.cert } : base,
      hasDefault: m.def !== undefined,
      material: m.material, sessionIdContext: m.sessionIdContext, summary: m.summary,
    };
  }
}

/** The raw TCP socket a server-side TLSSocket wraps. */
function parentOf(s: TLSSocket): Socket | undefined {
  return (s as TLSSocket & { _parent?: Socket | null })._parent ?? undefined;
}

