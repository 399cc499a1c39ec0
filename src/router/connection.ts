// One proxied connection, from accept to close: wait for a resolution, dial the picked
// endpoint (retrying another one on a refused or timed-out connect, within the attempts
// and the server's connect deadline), pump, and account for the outcome exactly once.
// Socket listeners are shared functions that find the connection through the socket, so
// a connection costs no closures; its only timer is the connect deadline or the lifetime.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Endpoint } from '../balancer/endpoint.ts';
import { type ConnectFailureCause, connectFailureCause, dial } from '../connector/dial.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import { pump } from '../proxy/duplex.ts';
import type { Destination } from './destination.ts';

export type CloseReason =
  | 'done' // both directions finished cleanly
  | 'client_error'
  | 'backend_error'
  | 'lifetime' // connectionLifetimeSecs expired
  | 'idle' // idleTimeoutMs: no byte either way
  | 'connect_timeout'
  | 'connect_refused'
  | 'connect_failed'
  | 'no_endpoints'
  | 'resolution_failed'
  | 'waiters_full'
  | 'shutdown';

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

const WAITING = 0;
const CONNECTING = 1;
const OPEN = 2;
const DONE = 3;

interface ConnSocket extends Socket {
  conn?: Connection | undefined;
}

export class Connection {
  readonly client: ConnSocket;
  readonly server: ServerSide;
  /** `ip:port` of the client, captured at accept only when access logs are on. */
  readonly peer: string;
  /** When the TCP connection was accepted (before any TLS handshake). */
  readonly acceptedAt: number;
  /** performance.now() by which the backend must be connected (server connectTimeoutMs). */
  readonly deadlineAt: number;
  backend: ConnSocket | undefined;
  endpoint: Endpoint | undefined;
  destination: Destination | undefined;
  attempts = 0;
  dialStartedAt = 0;
  connectedAt = 0;
  closedAt = 0;
  /** Idle sweep bookkeeping: bytes seen at the last sweep and when they last changed. */
  idleBytes = 0;
  idleSince = 0;
  reason: CloseReason | undefined;
  error: string | undefined;
  /** TLS servers: the SNI name asked for and the ALPN protocol agreed. */
  sni: string | undefined;
  alpn: string | undefined;
  private phase = WAITING;
  private socketsClosed = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(client: Socket, server: ServerSide, peer: string, acceptedAt = performance.now()) {
    this.acceptedAt = acceptedAt;
    this.client = client;
    this.server = server;
    this.peer = peer;
    (client as ConnSocket).conn = this;
    client.on('error', onClientError);
    client.on('close', onSocketClose);
    const t = server.connectTimeoutMs;
    this.deadlineAt = t === undefined ? Infinity : this.acceptedAt + t;
    if (t !== undefined) this.timer = setTimeout(onConnectTimer, Math.max(0, this.deadlineAt - performance.now()), this);
  }

  get waiting(): boolean {
    return this.phase === WAITING;
  }
  get open(): boolean {
    return this.phase === OPEN;
  }
  get done(): boolean {
    return this.phase === DONE;
  }

  /** Bytes moved so far, both sockets both ways (idle detection). */
  bytesMoved(): number {
    const c = this.client, b = this.backend;
    return c.bytesRead + c.bytesWritten + (b ? b.bytesRead + b.bytesWritten : 0);
  }

  /** Dials `ep` (already marked pending by the balancer) for `dest`. */
  dial(dest: Destination, ep: Endpoint): void {
    this.phase = CONNECTING;
    this.destination = dest;
    this.endpoint = ep;
    this.attempts++;
    const now = (this.dialStartedAt = performance.now());
    // One timer: the earlier of this attempt's timeout and the overall deadline.
    const attemptMs = dest.connectTimeoutMs ?? Infinity;
    const wait = Math.min(attemptMs, this.deadlineAt - now);
    if (wait !== Infinity) {
      clearTimeout(this.timer);
      this.timer = setTimeout(onConnectTimer, Math.max(0, wait), this);
    }
    const b = dial(ep.host, ep.port, this.server.highWaterMark, dest.tls, onBackendConnect, onBackendError) as ConnSocket;
    b.conn = this;
    this.backend = b;
  }

  /** Idempotent: destroys both sockets, clears timers, releases the endpoint, records the outcome. */
  finish(reason: CloseReason, err?: Error): void {
    const phase = this.phase;
    if (phase === DONE) return;
    this.phase = DONE;
    this.reason = reason;
    this.closedAt = performance.now();
    if (err) this.error = (err as NodeJS.ErrnoException).code ?? err.message;
    clearTimeout(this.timer);
    this.client.destroy();
    this.backend?.destroy();
    const m = this.server.metrics;
    const dest = this.destination;
    if (phase === OPEN) {
      if (reason === 'done') m.closes.value++;
      else {
        m.failures.value++;
        if (reason === 'lifetime' || reason === 'idle') m.streamFailureTimeout.value++;
        else m.streamFailureOther.value++;
      }
      m.durationMs.record(this.closedAt - this.connectedAt);
      if (dest && this.endpoint) dest.closed(this.endpoint, this.closedAt - this.connectedAt);
    } else {
      m.failures.value++;
      if (reason === 'connect_timeout') m.connectFailureTimeout.value++;
      else m.connectFailureOther.value++;
      if (phase === CONNECTING && dest && this.endpoint) {
        if (err && isLocalShortage(err)) dest.connectCancelled(this.endpoint); // our fds ran out: not the endpoint's fault
        else if (reason === 'connect_timeout') dest.connectFailed(this.endpoint, 'timeout');
        else if (reason === 'connect_refused' || reason === 'connect_failed') dest.connectFailed(this.endpoint, connectFailureCause(err));
        else dest.connectCancelled(this.endpoint); // the client went away or we are shutting down
      }
      if (phase === WAITING) dest?.waiters.delete(this);
    }
    this.server.connectionClosed(this);
  }

  /** This attempt failed: retry on another endpoint if attempts, time and endpoints remain. */
  private attemptFailed(cause: ConnectFailureCause, err?: Error): void {
    const dest = this.destination!;
    const failed = this.endpoint!;
    const final: CloseReason = cause === 'timeout' ? 'connect_timeout' : cause === 'refused' ? 'connect_refused' : 'connect_failed';
    const next = this.attempts < dest.config.connectAttempts && performance.now() < this.deadlineAt ? dest.balancer.pick(failed) : undefined;
    if (!next) {
      this.finish(final, err); // reports the failed attempt once, as every final failure does
      return;
    }
    const b = this.backend!;
    b.conn = undefined;
    b.destroy();
    this.backend = undefined;
    dest.connectFailed(failed, cause);
    dest.retry(this, next);
  }

  /** Takes over an established pre-connected backend socket (minConnections). */
  adopt(dest: Destination, backend: Socket, ep: Endpoint): void {
    this.destination = dest;
    this.endpoint = ep;
    const b = backend as ConnSocket;
    b.conn = this;
    b.on('error', onBackendError);
    this.backend = b;
    this.dialStartedAt = performance.now();
    this.start(this.dialStartedAt);
  }

  private connected(): void {
    const now = performance.now();
    this.destination!.connectSucceeded(this.endpoint!, (now - this.dialStartedAt) * 1000);
    this.start(now);
  }

  /** Backend ready: arm the lifetime timer and start pumping. */
  private start(now: number): void {
    this.phase = OPEN;
    this.connectedAt = this.idleSince = now;
    clearTimeout(this.timer);
    this.timer = this.server.lifetimeMs === undefined ? undefined : setTimeout(onLifetime, this.server.lifetimeMs, this);
    this.server.metrics.connectLatencyUs.record((now - this.acceptedAt) * 1000);
    this.backend!.on('close', onSocketClose);
    pump(this.client, this.backend!);
  }

  /** Entry points for the shared listeners below (methods keep `this` typed and fields private). */
  static socketClosed(conn: Connection): void {
    if (conn.phase === OPEN) {
      if (++conn.socketsClosed === 2) conn.finish('done');
    } else conn.finish('client_error');
  }
  static backendConnected(conn: Connection): void {
    if (conn.phase === CONNECTING) conn.connected();
  }
  static backendFailed(conn: Connection, err: Error): void {
    if (conn.phase === OPEN) conn.finish('backend_error', err);
    // Out of descriptors here: another endpoint would fail the same way, and this one is not to blame.
    else if (conn.phase === CONNECTING && isLocalShortage(err)) conn.finish('connect_failed', err);
    else if (conn.phase === CONNECTING) conn.attemptFailed(connectFailureCause(err), err);
  }
  static timerFired(conn: Connection): void {
    if (conn.phase === CONNECTING && performance.now() < conn.deadlineAt - 1) conn.attemptFailed('timeout');
    else if (conn.phase === CONNECTING || conn.phase === WAITING) conn.finish('connect_timeout');
  }
}

/** EMFILE/ENFILE: this process (or the system) is out of file descriptors. */
function isLocalShortage(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EMFILE' || code === 'ENFILE';
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
function onConnectTimer(conn: Connection): void {
  Connection.timerFired(conn);
}
function onLifetime(conn: Connection): void {
  conn.finish('lifetime');
}
