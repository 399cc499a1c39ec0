// One proxied connection on the node engine, its I/O: the client and backend sockets, the
// connect-deadline and lifetime timer, and the pump. What it holds and decides (phase, lease,
// wait slot, retries on another endpoint, the accounting, exactly once) is the ledger it
// extends (connection-ledger.ts), shared with the native engine. `finish` is idempotent and
// destroys both sockets whatever the phase, so nothing it held outlives it.
// Socket listeners are shared functions that find the connection through the socket, so
// a connection costs no closures; its only timer is the connect deadline or the lifetime.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Lease } from '../balancer/lease.ts';
import { connectFailureCause, dial } from '../connector/dial.ts';
import { proxyHeader } from '../connector/proxy-header.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import { pump } from '../proxy/duplex.ts';
import { type CloseReason, ConnectionLedger, isLocalShortage, Phase } from './connection-ledger.ts';
import type { Destination } from './destination.ts';

export type { CloseReason } from './connection-ledger.ts';

/** What a connection needs from the server that accepted it. */
export interface ServerSide {
  readonly rt: string;
  readonly srvAddr: string;
  readonly connectTimeoutMs: number | undefined;
  readonly lifetimeMs: number | undefined;
  readonly highWaterMark: number;
  readonly metrics: ServerMetrics;
  connectionClosed(conn: Connection): void;
}

interface ConnSocket extends Socket {
  conn?: Connection | undefined;
}

export class Connection extends ConnectionLedger {
  readonly client: ConnSocket;
  readonly server: ServerSide;
  /** `ip:port` of the client, captured at accept only when access logs are on. */
  readonly peer: string;
  backend: ConnSocket | undefined;
  dialStartedAt = 0;
  /** Idle sweep bookkeeping: bytes seen at the last sweep and when they last changed. */
  idleBytes = 0;
  idleSince = 0;
  private socketsClosed = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `acceptedAt`: when the TCP connection was accepted (before any TLS handshake), performance.now(). */
  constructor(client: Socket, server: ServerSide, peer: string, acceptedAt = performance.now()) {
    super(server, acceptedAt);
    this.client = client;
    this.server = server;
    this.peer = peer;
    (client as ConnSocket).conn = this;
    client.on('error', onClientError);
    client.on('close', onSocketClose);
    if (this.deadlineAt !== Infinity) this.timer = setTimeout(onConnectTimer, Math.max(0, this.deadlineAt - performance.now()), this);
  }

  /** Routed to `dest`: a pre-connected spare when there is one, else the ledger asks for a lease. */
  override route(dest: Destination): void {
    const spare = dest.takeSpare();
    if (!spare) return super.route(dest);
    this.destination = dest;
    const b = spare.socket as ConnSocket;
    b.conn = this;
    b.on('error', onBackendError);
    this.backend = b;
    this.dialStartedAt = performance.now();
    this.adopt(spare.lease, this.dialStartedAt);
    this.start();
  }

  /** Bytes moved so far, both sockets both ways (idle detection). */
  bytesMoved(): number {
    const c = this.client, b = this.backend;
    return c.bytesRead + c.bytesWritten + (b ? b.bytesRead + b.bytesWritten : 0);
  }

  /** Dials the endpoint of `lease` (pending), dropping a previous attempt's socket. */
  protected override dial(lease: Lease): void {
    const dest = this.destination!;
    const ep = lease.endpoint;
    const old = this.backend;
    if (old) {
      old.conn = undefined;
      old.destroy();
    }
    const now = (this.dialStartedAt = performance.now());
    // One timer: the earlier of this attempt's timeout and the overall deadline (timerFired tells them apart).
    const wait = Math.min(dest.connectTimeoutMs ?? Infinity, this.deadlineAt - now);
    if (wait !== Infinity) {
      clearTimeout(this.timer);
      this.timer = setTimeout(onConnectTimer, Math.max(0, wait), this);
    }
    const b = dial(ep.host, ep.port, this.server.highWaterMark, dest.tls, onBackendConnect, onBackendError) as ConnSocket;
    b.conn = this;
    this.backend = b;
  }

  /** Idempotent: accounts for the close (the ledger), then accounted() destroys both sockets and clears the timer. */
  override finish(reason: CloseReason, err?: Error | string): void {
    this.end(reason, typeof err === 'object' ? errorCode(err) : err, performance.now());
  }

  protected override accounted(): void {
    clearTimeout(this.timer);
    this.client.destroy();
    this.backend?.destroy();
    this.server.connectionClosed(this);
  }

  /** Notice a client that leaves while we wait (its FIN), without consuming what it sent. */
  protected override waitStarted(): void {
    this.client.on('readable', onWaitReadable);
    this.client.on('end', onWaitEnd);
  }
  protected override waitEnded(): void {
    this.client.removeListener('readable', onWaitReadable);
    this.client.removeListener('end', onWaitEnd);
  }

  /** Backend ready (open): arm the lifetime timer and start pumping. */
  private start(): void {
    this.idleSince = this.connectedAt;
    clearTimeout(this.timer);
    this.timer = this.server.lifetimeMs === undefined ? undefined : setTimeout(onLifetime, this.server.lifetimeMs, this);
    this.backend!.on('close', onSocketClose);
    const pp = this.destination?.config.proxyProtocol;
    // Before the first client byte (the pump starts below); spares were idle, so this is their first byte too.
    // ALPN TLV: the protocol agreed by our TLS termination; a passthrough only saw the client's offer.
    if (pp && !this.destination!.tls) this.backend!.write(proxyHeader(pp, this.client, this.origin, this.sni, 'encrypted' in this.client ? this.alpn : undefined));
    pump(this.client, this.backend!);
  }

  /** Entry points for the shared listeners below (methods keep `this` typed and fields private). */
  static socketClosed(conn: Connection): void {
    if (conn.phase === Phase.OPEN) {
      if (++conn.socketsClosed === 2) conn.finish('done');
    } else conn.finish('client_error');
  }
  static backendConnected(conn: Connection): void {
    const now = performance.now();
    if (conn.connectSucceeded((now - conn.dialStartedAt) * 1000, now)) conn.start();
  }
  static backendFailed(conn: Connection, err: Error): void {
    if (conn.phase === Phase.OPEN) conn.finish('backend_error', err);
    // Out of descriptors here: another endpoint would fail the same way, and this one is not to blame.
    else if (conn.phase === Phase.CONNECTING && isLocalShortage(errorCode(err))) conn.finish('connect_failed', err);
    else if (conn.phase === Phase.CONNECTING) conn.attemptFailed(connectFailureCause(err), errorCode(err), performance.now());
  }
  /** Waiting, the client's FIN arrived with nothing unread: it has gone. */
  static clientLeftWhileWaiting(conn: Connection): void {
    if (conn.phase === Phase.WAITING) conn.finish('client_error');
  }
  /**
   * The connect timer: when it was armed for this attempt's own timeout (earlier than the
   * server's deadline), the attempt failed and another endpoint may be tried; when armed for
   * the server's deadline, the connection ends, blaming only the endpoint being dialled. Told
   * apart by what was armed, not by the clock: Node runs a timer up to a busy loop turn early.
   */
  static timerFired(conn: Connection): void {
    if (conn.phase === Phase.CONNECTING && conn.dialStartedAt + (conn.destination!.connectTimeoutMs ?? Infinity) < conn.deadlineAt) {
      conn.attemptFailed('timeout', undefined, performance.now());
    } else if (conn.phase === Phase.CONNECTING || conn.phase === Phase.WAITING) conn.finish('connect_timeout');
  }
}

/** The error as a connection records it: its code, else its message. */
function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

function onClientError(this: ConnSocket, err: Error): void {
  this.conn?.finish('client_error', err);
}
function onBackendError(this: ConnSocket, err: Error): void {
  if (this.conn) Connection.backendFailed(this.conn, err);
}
function onBackendConnect(this: ConnSocket): void {
  if (this.conn) Connection.backendConnected(this.conn);
}
function onSocketClose(this: ConnSocket): void {
  if (this.conn) Connection.socketClosed(this.conn);
}
/** Reads nothing while data is buffered; with the buffer empty, read() surfaces a pending EOF as 'end'. */
function onWaitReadable(this: ConnSocket): void {
  if (this.readableLength === 0) this.read();
}
function onWaitEnd(this: ConnSocket): void {
  if (this.conn) Connection.clientLeftWhileWaiting(this.conn);
}
function onConnectTimer(conn: Connection): void {
  Connection.timerFired(conn);
}
function onLifetime(conn: Connection): void {
  conn.finish('lifetime');
}
