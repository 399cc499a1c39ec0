// One proxied connection, from accept to close: wait for a resolution, dial the picked
// endpoint (retrying another one on a refused or timed-out connect, within the attempts
// and the server's connect deadline), pump, and account for the outcome exactly once.
// It owns at most one balancer lease and one wait slot at a time; `finish` releases the
// lease and cancels the slot whatever the phase, so nothing it held outlives it.
// Socket listeners are shared functions that find the connection through the socket, so
// a connection costs no closures; its only timer is the connect deadline or the lifetime.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Endpoint } from '../balancer/endpoint.ts';
import type { Lease, Outcome } from '../balancer/lease.ts';
import type { Slot } from '../balancer/wait-queue.ts';
import { type ConnectFailureCause, connectFailureCause, dial } from '../connector/dial.ts';
import { type Origin, proxyHeader } from '../connector/proxy-header.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import { noteFdExhaustion } from '../metrics/fd-exhaustion.ts';
import { pump } from '../proxy/duplex.ts';
import type { Destination, Grant, Waiter } from './destination.ts';

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
  | 'resolution_failed' // the name could not be bound (a failed binding, namerd failing before any answer)
  | 'resolution_timeout' // no first resolution within FIRST_RESOLUTION_WAIT_MS
  | 'waiters_full'
  | 'sni' // native engine: no usable SNI name (the node engine refuses before a Connection exists)
  | 'proxy_protocol' // native engine: no acceptable PROXY header (likewise)
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

export class Connection implements Waiter {
  readonly client: ConnSocket;
  readonly server: ServerSide;
  /** `ip:port` of the client, captured at accept only when access logs are on. */
  readonly peer: string;
  /** When the TCP connection was accepted (before any TLS handshake). */
  readonly acceptedAt: number;
  /** performance.now() by which the backend must be connected (server connectTimeoutMs). */
  readonly deadlineAt: number;
  backend: ConnSocket | undefined;
  destination: Destination | undefined;
  /** The balancer's claim on the endpoint being dialled or connected to. */
  lease: Lease | undefined;
  /** Our place in the destination's queue while waiting for a first resolution. */
  slot: Slot | undefined;
  attempts = 0;
  dialStartedAt = 0;
  connectedAt = 0;
  closedAt = 0;
  /** Idle sweep bookkeeping: bytes seen at the last sweep and when they last changed. */
  idleBytes = 0;
  idleSince = 0;
  reason: CloseReason | undefined;
  error: string | undefined;
  /** TLS servers: the SNI name asked for and the ALPN protocol agreed (passthrough: as the ClientHello offered). */
  sni: string | undefined;
  alpn: string | undefined;
  /** The client's addresses from a PROXY header the server received (PROXY send uses them). */
  origin: Origin | undefined;
  /** `{sni}` servers with defaultDstName: re-routes once when the SNI destination has nothing to offer. */
  fallback: (() => void) | undefined;
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
  get endpoint(): Endpoint | undefined {
    return this.lease?.endpoint;
  }

  /** Routed to `dest`: a spare, a lease to dial, a wait, or a failure. */
  route(dest: Destination): void {
    this.destination = dest;
    const spare = dest.takeSpare();
    if (spare) this.adopt(spare.socket, spare.lease);
    else this.granted(dest.request(this));
  }

  /** The destination's answer, at once or after waiting (Waiter). */
  granted(g: Grant): void {
    if (this.phase !== WAITING) {
      // Only a lease can arrive for a connection that is already gone; hand it straight back.
      if (g.kind === 'lease') g.lease.release({ kind: 'cancelled' });
      return;
    }
    if (this.slot) {
      this.slot.cancel();
      this.slot = undefined;
      this.client.removeListener('readable', onWaitReadable);
      this.client.removeListener('end', onWaitEnd);
    }
    switch (g.kind) {
      case 'lease':
        this.dial(g.lease);
        return;
      case 'wait':
        this.slot = g.slot;
        // Notice a client that leaves while we wait (its FIN), without consuming what it sent.
        this.client.on('readable', onWaitReadable);
        this.client.on('end', onWaitEnd);
        return;
      case 'fail':
        if (this.fallback && g.reason !== 'waiters_full') {
          const f = this.fallback;
          this.fallback = undefined;
          f();
          return;
        }
        this.finish(g.reason);
        return;
    }
  }

  /** Bytes moved so far, both sockets both ways (idle detection). */
  bytesMoved(): number {
    const c = this.client, b = this.backend;
    return c.bytesRead + c.bytesWritten + (b ? b.bytesRead + b.bytesWritten : 0);
  }

  /** Dials the endpoint of `lease` (pending), ours from now on. */
  private dial(lease: Lease): void {
    const dest = this.destination!;
    const ep = lease.endpoint;
    this.phase = CONNECTING;
    this.lease = lease;
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

  /** Idempotent: destroys both sockets, clears timers, leaves the queue, releases the lease, records the outcome. */
  finish(reason: CloseReason, err?: Error): void {
    const phase = this.phase;
    if (phase === DONE) return;
    this.phase = DONE;
    this.reason = reason;
    this.closedAt = performance.now();
    if (err) this.error = (err as NodeJS.ErrnoException).code ?? err.message;
    clearTimeout(this.timer);
    this.slot?.cancel();
    this.slot = undefined;
    this.lease?.release(outcomeOf(phase, reason, err, this.closedAt - this.connectedAt));
    this.client.destroy();
    this.backend?.destroy();
    const m = this.server.metrics;
    if (phase === OPEN) {
      if (reason === 'done') m.closes.value++;
      else {
        m.failures.value++;
        if (reason === 'lifetime' || reason === 'idle') m.streamFailureTimeout.value++;
        else m.streamFailureOther.value++;
      }
      m.durationMs.record(this.closedAt - this.connectedAt);
    } else {
      m.failures.value++;
      if (reason === 'connect_timeout' || reason === 'resolution_timeout') m.connectFailureTimeout.value++;
      else m.connectFailureOther.value++;
    }
    this.server.connectionClosed(this);
  }

  /** This attempt failed: retry on another endpoint if attempts, time and endpoints remain. */
  private attemptFailed(cause: ConnectFailureCause, err?: Error): void {
    const dest = this.destination!;
    const lease = this.lease!;
    lease.release({ kind: 'failed', cause }); // reported once, here; finish's release is then a no-op
    const final: CloseReason = cause === 'timeout' ? 'connect_timeout' : cause === 'refused' ? 'connect_refused' : 'connect_failed';
    const next = this.attempts < dest.config.connectAttempts && performance.now() < this.deadlineAt ? dest.retry(lease.endpoint) : undefined;
    if (!next) {
      this.finish(final, err);
      return;
    }
    const b = this.backend!;
    b.conn = undefined;
    b.destroy();
    this.backend = undefined;
    this.dial(next);
  }

  /** Takes over an established pre-connected backend socket (minConnections) and its open lease. */
  private adopt(backend: Socket, lease: Lease): void {
    this.lease = lease;
    const b = backend as ConnSocket;
    b.conn = this;
    b.on('error', onBackendError);
    this.backend = b;
    this.dialStartedAt = performance.now();
    this.start(this.dialStartedAt);
  }

  private connected(): void {
    const now = performance.now();
    this.lease!.connected((now - this.dialStartedAt) * 1000);
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
    const pp = this.destination?.config.proxyProtocol;
    // Before the first client byte (the pump starts below); spares were idle, so this is their first byte too.
    // ALPN TLV: the protocol agreed by our TLS termination; a passthrough only saw the client's offer.
    if (pp && !this.destination!.tls) this.backend!.write(proxyHeader(pp, this.client, this.origin, this.sni, 'encrypted' in this.client ? this.alpn : undefined));
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
  /** Waiting, the client's FIN arrived with nothing unread: it has gone. */
  static clientLeftWhileWaiting(conn: Connection): void {
    if (conn.phase === WAITING) conn.finish('client_error');
  }
  static timerFired(conn: Connection): void {
    if (conn.phase === CONNECTING && performance.now() < conn.deadlineAt - 1) conn.attemptFailed('timeout');
    else if (conn.phase === CONNECTING || conn.phase === WAITING) conn.finish('connect_timeout');
  }
}

/** The lease outcome for a connection ending in `phase` with `reason`. */
function outcomeOf(phase: number, reason: CloseReason, err: Error | undefined, openMs: number): Outcome {
  if (phase === OPEN) return { kind: 'closed', durationMs: openMs };
  if (err && isLocalShortage(err)) {
    noteFdExhaustion(); // for the open-files warning
    return { kind: 'cancelled' }; // our fds ran out: not the endpoint's fault
  }
  if (reason === 'connect_timeout') return { kind: 'failed', cause: 'timeout' };
  if (reason === 'connect_refused' || reason === 'connect_failed') return { kind: 'failed', cause: connectFailureCause(err) };
  return { kind: 'cancelled' }; // the client went away, or we are shutting down
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
