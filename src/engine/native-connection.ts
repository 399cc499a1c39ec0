// One connection on the native engine, the TypeScript half: the addon moves its bytes and
// runs its timers; this object makes the addon calls (connect, close, watch a waiting
// client) and maps the addon's outcome records (R_* reasons, errnos) onto the ledger it
// extends (src/router/connection-ledger.ts), which holds the lease and wait slot and does
// the node engine's accounting: the same lease outcomes, metrics, retries and close reasons.
// `finish` is idempotent; a connection the engine closed first ends with the engine's record.
// Its times are all on the engine clock (binding.hrNow(), the clock of the records), never
// performance.now(): durations between them are differences of one monotonic clock, >= 0.
import { lookup } from 'node:dns/promises';
import { constants } from 'node:os';
import type { Lease } from '../balancer/lease.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import { type CloseReason, ConnectionLedger, Phase } from '../router/connection-ledger.ts';
import type { NativeBinding } from './native-binding.ts';
import { nativeProxyHeader } from './native-preface.ts';
import { errnoName, type NativeConnHandler, TLS_CONNECT_ERR, R_BACKEND_ERROR, R_CLIENT_ERROR, R_DONE, R_IDLE, R_LIFETIME, R_WAIT_TIMEOUT } from './native-engine.ts';

/** What a native connection needs from its server (src/engine/native-server.ts). */
export interface NativeServerSide {
  readonly binding: NativeBinding;
  readonly connectTimeoutMs: number | undefined;
  readonly metrics: ServerMetrics;
  /** `ip:port` the server listens on (the destination address of a PROXY header sent). */
  readonly srvAddr: string;
  /** Set on TLS-terminating servers. */
  readonly tls?: unknown;
  connectionClosed(conn: NativeConnection): void;
  /** TLS servers: the client's handshake finished or failed (records OUT_TLS_DONE / OUT_TLS_FAILED). */
  tlsDone?(conn: NativeConnection, us: number): void;
  tlsFailed?(conn: NativeConnection, cause: number): void;
}

const { ECONNREFUSED, ETIMEDOUT, EMFILE, ENFILE, EINVAL } = constants.errno;

export class NativeConnection extends ConnectionLedger implements NativeConnHandler {
  readonly id: number;
  readonly server: NativeServerSide;
  /** The client for the access log: the socket's peer, or the source of a PROXY header received. */
  peer: string;
  /** Client bytes (from, to), known once closed; live ones are the listener's (NativeServer.totalBytes). */
  readonly client = { bytesRead: 0, bytesWritten: 0 };
  /** While the server reads a PROXY header or ClientHello (src/engine/native-preface.ts). */
  peekHandler: ((bytes: number, eof: boolean) => void) | undefined;

  /** `acceptedAt`: the OUT_ACCEPTED record's time (engine clock). deadlineAt is enforced by the engine; here it bounds retries. */
  constructor(id: number, server: NativeServerSide, peer: string, acceptedAt: number) {
    super(server, acceptedAt);
    this.id = id;
    this.server = server;
    this.peer = peer;
  }

  protected override dial(lease: Lease): void {
    const ep = lease.endpoint;
    // An address (the usual case) connects at once; the addon says EINVAL for anything else.
    if (this.connect(ep.host, ep.port) === EINVAL) {
      // A name from a namer that did not resolve it: look it up, as net.connect would.
      lookup(ep.host).then(
        (a) => { if (this.lease === lease && this.phase === Phase.CONNECTING && this.connect(a.address, ep.port) === EINVAL) this.failed('other', 'EINVAL'); },
        () => { if (this.lease === lease && this.phase === Phase.CONNECTING) this.failed('other', 'ENOTFOUND'); },
      );
    }
  }

  /** Starts an attempt; EINVAL (host is not an IP address) is left to the caller, before anything started. */
  private connect(host: string, port: number): number {
    const pp = this.destination!.config.proxyProtocol;
    // A PROXY header (client proxyProtocol) goes to the backend before any forwarded byte.
    // ALPN TLV: the protocol our TLS termination agreed (a passthrough only saw the client's offer).
    const header = pp ? nativeProxyHeader(pp, this.origin, this.origin ? undefined : this.server.binding.peer(this.id), this.server.srvAddr, this.sni, this.server.tls ? this.alpn : undefined) : undefined;
    const tls = this.destination!.tls;
    let tlsId: number | undefined;
    try {
      tlsId = tls?.nativeId(this.server.binding); // the origination snapshot of the setting's current files
    } catch (e) {
      this.failed('other', (e as Error).message);
      return 0;
    }
    const r = this.server.binding.connect(this.id, host, port, this.destination!.connectTimeoutMs ?? 0, header, tlsId);
    if (r === EINVAL) return r;
    if (r !== 0 && r !== 2 /* ENOENT: the engine closed it; its record follows */) this.failed('other', errnoName(r));
    return 0;
  }

  private failed(cause: 'timeout' | 'refused' | 'other', code: string | undefined): void {
    this.attemptFailed(cause, code, this.server.binding.hrNow());
  }

  /** OUT_CONNECTED record. */
  connected(latencyUs: number, at: number): void {
    this.connectSucceeded(latencyUs, at);
  }

  /** OUT_CONNECT_FAILED record: the engine dropped the attempt's socket and waits for the next. */
  connectFailed(errno: number, _at?: number, detail = 0): void {
    if (this.phase !== Phase.CONNECTING) return;
    if (errno === TLS_CONNECT_ERR) return this.failed('other', tlsConnectError(detail)); // the backend's TLS: refused or not verified
    const code = errnoName(errno);
    if (errno === EMFILE || errno === ENFILE) this.finish('connect_failed', code); // ours, not the endpoint's
    else this.failed(errno === ECONNREFUSED ? 'refused' : errno === ETIMEDOUT ? 'timeout' : 'other', errno === ETIMEDOUT ? undefined : code);
  }

  peeked(bytes: number, eof: boolean): void {
    this.peekHandler?.(bytes, eof);
  }

  tlsDone(us: number): void {
    this.server.tlsDone?.(this, us);
  }

  tlsFailed(cause: number): void {
    this.server.tlsFailed?.(this, cause);
  }

  /**
   * OUT_CLOSED record: the engine closed it; account with the engine's reason and byte counts.
   * R_WAIT_TIMEOUT is the server's connect deadline (waiting, or while dialling: then only
   * the endpoint dialled is blamed, as connect_timeout).
   */
  closed(reason: number, errno: number, rx: number, tx: number, at: number): void {
    if (this.phase === Phase.DONE) return;
    const r: CloseReason =
      reason === R_DONE ? 'done'
      : reason === R_CLIENT_ERROR ? 'client_error'
      : reason === R_BACKEND_ERROR ? 'backend_error'
      : reason === R_LIFETIME ? 'lifetime'
      : reason === R_IDLE ? 'idle'
      : reason === R_WAIT_TIMEOUT ? 'connect_timeout'
      : this.phase === Phase.OPEN ? 'backend_error' : 'connect_failed';
    this.endWith(r, errno ? errnoName(errno) : undefined, rx, tx, at);
  }

  /** Idempotent: closes it in the engine (unless the engine already did) and accounts for it. */
  override finish(reason: CloseReason, code?: string): void {
    if (this.phase === Phase.DONE) return;
    const bytes = this.server.binding.close(this.id);
    if (!bytes) return; // the engine closed it first: its record (already queued) finishes it
    this.endWith(reason, code, bytes[0], bytes[1], this.server.binding.hrNow());
  }

  /** A client that leaves while we wait ends it (client_error, from the engine). */
  protected override waitStarted(): void {
    this.server.binding.watchLeave(this.id);
  }

  protected override accounted(): void {
    this.server.connectionClosed(this);
  }

  private endWith(reason: CloseReason, code: string | undefined, rx: number, tx: number, at: number): void {
    this.client.bytesRead = rx;
    this.client.bytesWritten = tx;
    this.end(reason, code, at);
  }
}

/** X509 verify results (OpenSSL's X509_V_ERR_*) by the code Node gives the same failure. */
const VERIFY_CODES: Readonly<Record<number, string>> = {
  2: 'UNABLE_TO_GET_ISSUER_CERT', 10: 'CERT_HAS_EXPIRED', 9: 'CERT_NOT_YET_VALID', 18: 'DEPTH_ZERO_SELF_SIGNED_CERT',
  19: 'SELF_SIGNED_CERT_IN_CHAIN', 20: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 21: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  23: 'CERT_REVOKED', 26: 'INVALID_PURPOSE', 62: 'ERR_TLS_CERT_ALTNAME_INVALID', 64: 'ERR_TLS_CERT_ALTNAME_INVALID',
};

/** The access-log code of a backend TLS failure: Node's code for a verification failure, else the handshake's. */
export function tlsConnectError(verifyResult: number): string {
  return VERIFY_CODES[verifyResult] ?? (verifyResult ? `X509_V_ERR ${verifyResult}` : 'ERR_SSL_HANDSHAKE_FAILURE');
}
