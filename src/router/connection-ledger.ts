// The state machine of one proxied connection, shared by both engines: its phase, the
// balancer lease and wait slot it holds, a destination's answer (lease, wait or failure, and
// the `{sni}` fallback), the retry decision after a failed connect, and the accounting at
// its end (lease outcome, server metrics, the server told) exactly once. Pure: no sockets,
// no timers, no clock of its own (every time is passed in). Each engine's connection
// extends it with only its I/O: router/connection.ts (node: sockets, timers, the pump) and
// engine/native-connection.ts (native: addon calls and the addon's outcome records).
//
// Driving it: route(dest) → granted(grant) (Waiter) → the engine's dial(lease) hook; then
// connectSucceeded(latencyUs, at) or attemptFailed(cause, code, now) (which dials the next
// endpoint or finishes); end(reason, code, at) accounts for the close, once. The ledger
// calls back finish(reason, code) when it decides to close, and accounted() after the accounting.
import type { Endpoint } from '../balancer/endpoint.ts';
import type { FailureCause, Lease, Outcome } from '../balancer/lease.ts';
import type { Slot } from '../balancer/wait-queue.ts';
import type { Origin } from '../connector/proxy-header.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import { noteFdExhaustion } from '../metrics/fd-exhaustion.ts';
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

/**
 * Where a connection is, in order. Every phase before OPEN ends as a connect failure (and
 * a lease held then is blamed or cancelled, never closed). A pre-routing phase (a TLS
 * handshake with the client) goes before WAITING: the constructor would start there and
 * route() leave it; `account` below is where its own failures would be counted.
 */
export const Phase = { WAITING: 0, CONNECTING: 1, OPEN: 2, DONE: 3 } as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** What the ledger needs from the server that accepted the connection. */
export interface LedgerServer {
  readonly connectTimeoutMs: number | undefined;
  readonly metrics: ServerMetrics;
}

export abstract class ConnectionLedger implements Waiter {
  /** When the connection was accepted, on the engine's clock (as are every time below). */
  readonly acceptedAt: number;
  /** By when a backend must be connected (acceptedAt + the server's connectTimeoutMs), else Infinity. */
  readonly deadlineAt: number;
  destination: Destination | undefined;
  /** The balancer's claim on the endpoint being dialled or connected to. */
  lease: Lease | undefined;
  /** Our place in the destination's queue while waiting for a first resolution. */
  slot: Slot | undefined;
  /** Connect attempts started, each on its own lease. */
  attempts = 0;
  /** When the backend was ready (0: never). */
  connectedAt = 0;
  closedAt = 0;
  reason: CloseReason | undefined;
  /** The error code (or message) the connection ended with. */
  error: string | undefined;
  /** TLS servers: the SNI name asked for and the ALPN protocol (agreed, or offered on a passthrough). */
  sni: string | undefined;
  alpn: string | undefined;
  /** The client's addresses from a PROXY header the server received (PROXY send uses them). */
  origin: Origin | undefined;
  /** `{sni}` servers with defaultDstName: re-routes once when the SNI destination has nothing to offer. */
  fallback: (() => void) | undefined;
  protected phase: Phase = Phase.WAITING;
  private readonly metrics: ServerMetrics;

  constructor(server: LedgerServer, acceptedAt: number) {
    this.metrics = server.metrics;
    this.acceptedAt = acceptedAt;
    const t = server.connectTimeoutMs;
    this.deadlineAt = t === undefined ? Infinity : acceptedAt + t;
  }

  get waiting(): boolean {
    return this.phase === Phase.WAITING;
  }
  get connecting(): boolean {
    return this.phase === Phase.CONNECTING;
  }
  get open(): boolean {
    return this.phase === Phase.OPEN;
  }
  get done(): boolean {
    return this.phase === Phase.DONE;
  }
  get endpoint(): Endpoint | undefined {
    return this.lease?.endpoint;
  }

  /** Starts connecting to `lease.endpoint` (the ledger already holds the lease): the engine's I/O. */
  protected abstract dial(lease: Lease): void;
  /** Closes the connection (idempotent), ending in end(reason, code, at), now or from a later record. */
  abstract finish(reason: CloseReason, code?: string): void;
  /** After the accounting: the engine's own cleanup, then its server's connectionClosed. */
  protected abstract accounted(): void;
  /** Queued for a first resolution / out of the queue again: the engine may watch for a client leaving. */
  protected waitStarted(): void {}
  protected waitEnded(): void {}

  /** Routed to `dest`: asks it for a lease. */
  route(dest: Destination): void {
    this.destination = dest;
    this.granted(dest.request(this));
  }

  /** The destination's answer, at once or after waiting (Waiter). */
  granted(g: Grant): void {
    if (this.phase !== Phase.WAITING) {
      // Only a lease can arrive for a connection that is already gone; hand it straight back.
      if (g.kind === 'lease') g.lease.release({ kind: 'cancelled' });
      return;
    }
    if (this.slot) {
      this.slot.cancel();
      this.slot = undefined;
      this.waitEnded();
    }
    switch (g.kind) {
      case 'lease':
        this.attempt(g.lease);
        return;
      case 'wait':
        this.slot = g.slot;
        this.waitStarted();
        return;
      case 'fail':
        // waiters_full is this server's load, not the name's: no other destination would help.
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

  /** Takes over a lease already open (a pre-connected spare): the backend is ready at `at`. */
  adopt(lease: Lease, at: number): void {
    this.lease = lease;
    this.opened(at);
  }

  /** This attempt's backend is ready at `at`: CONNECTING → OPEN; false (nothing changes) in any other phase. */
  connectSucceeded(latencyUs: number, at: number): boolean {
    if (this.phase !== Phase.CONNECTING) return false;
    this.lease?.connected(latencyUs); // none: an attempt of the I/O threads on an endpoint the balancer no longer knows
    this.opened(at);
    return true;
  }

  /**
   * This attempt failed at `now` (the engine has dropped its socket, or will in dial): the
   * endpoint is blamed once, here, then another endpoint is dialled if attempts, time and
   * endpoints remain; else the connection finishes with the cause's reason and `code`.
   */
  attemptFailed(cause: FailureCause, code: string | undefined, now: number): void {
    if (this.phase !== Phase.CONNECTING) return;
    const dest = this.destination!;
    const lease = this.lease!;
    lease.release({ kind: 'failed', cause }); // finish's release is then a no-op
    const next = this.attempts < dest.config.connectAttempts && now < this.deadlineAt ? dest.retry(lease.endpoint) : undefined;
    if (next) this.attempt(next);
    else this.finish(cause === 'timeout' ? 'connect_timeout' : cause === 'refused' ? 'connect_refused' : 'connect_failed', code);
  }

  /**
   * Accounts for the close at `at`, once (false when already done): leaves the queue, ends
   * the lease with the outcome for this phase, counts the server metrics, then accounted().
   */
  end(reason: CloseReason, code: string | undefined, at: number): boolean {
    const phase = this.phase;
    if (phase === Phase.DONE) return false;
    this.phase = Phase.DONE;
    this.reason = reason;
    this.error = code;
    this.closedAt = at;
    this.slot?.cancel();
    this.slot = undefined;
    if (phase !== Phase.OPEN && isLocalShortage(code)) noteFdExhaustion(); // for the open-files warning
    this.lease?.release(outcomeOf(phase, reason, code, at - this.connectedAt));
    account(this.metrics, phase, reason, at - this.connectedAt);
    this.accounted();
    return true;
  }

  /**
   * An attempt the engine chose and dialled itself (the native I/O threads pick in C): its lease
   * (undefined when the endpoint is unknown here), in CONNECTING, with no dial. The engine
   * retries on its own, so a failed one is released here and the connection stays CONNECTING.
   */
  protected attemptedByEngine(lease: Lease | undefined): void {
    this.phase = Phase.CONNECTING;
    this.lease = lease;
    this.attempts++;
  }

  private attempt(lease: Lease): void {
    this.phase = Phase.CONNECTING;
    this.lease = lease;
    this.attempts++;
    this.dial(lease);
  }

  private opened(at: number): void {
    this.phase = Phase.OPEN;
    this.connectedAt = at;
    this.metrics.connectLatencyUs.record((at - this.acceptedAt) * 1000);
  }
}

/** The lease outcome for a connection ending in `phase` with `reason` and error `code`. */
export function outcomeOf(phase: Phase, reason: CloseReason, code: string | undefined, openMs: number): Outcome {
  if (phase === Phase.OPEN) return { kind: 'closed', durationMs: openMs };
  if (isLocalShortage(code)) return { kind: 'cancelled' }; // our fds ran out: not the endpoint's fault
  if (reason === 'connect_timeout') return { kind: 'failed', cause: 'timeout' };
  if (reason === 'connect_refused') return { kind: 'failed', cause: 'refused' };
  if (reason === 'connect_failed') return { kind: 'failed', cause: 'other' };
  return { kind: 'cancelled' }; // the client went away, or we are shutting down
}

/** EMFILE/ENFILE: this process (or the system) is out of file descriptors. */
export function isLocalShortage(code: string | undefined): boolean {
  return code === 'EMFILE' || code === 'ENFILE';
}

/** The server metrics of a connection ending in `phase` with `reason`, open `openMs` when it was. */
function account(m: ServerMetrics, phase: Phase, reason: CloseReason, openMs: number): void {
  if (phase === Phase.OPEN) {
    if (reason === 'done') m.closes.value++;
    else {
      m.failures.value++;
      if (reason === 'lifetime' || reason === 'idle') m.streamFailureTimeout.value++;
      else m.streamFailureOther.value++;
    }
    m.durationMs.record(openMs);
  } else {
    m.failures.value++;
    if (reason === 'connect_timeout' || reason === 'resolution_timeout') m.connectFailureTimeout.value++;
    else m.connectFailureOther.value++;
  }
}
