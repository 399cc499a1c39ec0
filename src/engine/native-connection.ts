// One connection on the native engine, the TypeScript half: the addon moves its bytes and
// runs its timers; this object holds the balancer lease and wait slot and turns the
// engine's outcome records into the node engine's accounting (src/router/connection.ts):
// the same lease outcomes, metrics, retries on another endpoint and close reasons.
// `finish` is idempotent; a connection the engine closed first ends with the engine's record.
// Its times are all on the engine clock (binding.hrNow(), the clock of the records), never
// performance.now(): durations between them are differences of one monotonic clock, >= 0.
import { lookup } from 'node:dns/promises';
import type { Endpoint } from '../balancer/endpoint.ts';
import type { Lease, Outcome } from '../balancer/lease.ts';
import type { Slot } from '../balancer/wait-queue.ts';
import type { ConnectFailureCause } from '../connector/dial.ts';
import type { Origin } from '../connector/proxy-header.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import { noteFdExhaustion } from '../metrics/fd-exhaustion.ts';
import type { CloseReason } from '../router/connection.ts';
import type { Destination, Grant, Waiter } from '../router/destination.ts';
import type { NativeBinding } from './native-binding.ts';
import { nativeProxyHeader } from './native-preface.ts';
import { errnoName, type NativeConnHandler, R_BACKEND_ERROR, R_CLIENT_ERROR, R_DONE, R_IDLE, R_LIFETIME, R_WAIT_TIMEOUT } from './native-engine.ts';

/** What a native connection needs from its server (src/engine/native-server.ts). */
export interface NativeServerSide {
  readonly binding: NativeBinding;
  readonly connectTimeoutMs: number | undefined;
  readonly metrics: ServerMetrics;
  /** `ip:port` the server listens on (the destination address of a PROXY header sent). */
  readonly srvAddr: string;
  connectionClosed(conn: NativeConnection): void;
}

const WAITING = 0, CONNECTING = 1, OPEN = 2, DONE = 3;
const ECONNREFUSED = 111, ETIMEDOUT = 110, EMFILE = 24, ENFILE = 23, EINVAL = 22;

export class NativeConnection implements Waiter, NativeConnHandler {
  readonly id: number;
  readonly server: NativeServerSide;
  /** The client for the access log: the socket's peer, or the source of a PROXY header received. */
  peer: string;
  /** Addresses from a PROXY header received (server proxyProtocol), with the proxy peer. */
  origin: Origin | undefined;
  /** Engine-clock ms, as are deadlineAt, connectedAt and closedAt. */
  readonly acceptedAt: number;
  readonly deadlineAt: number;
  destination: Destination | undefined;
  lease: Lease | undefined;
  slot: Slot | undefined;
  attempts = 0;
  connectedAt = 0;
  closedAt = 0;
  reason: CloseReason | undefined;
  error: string | undefined;
  /** Client bytes (from, to), known once closed; live ones are the listener's (NativeServer.totalBytes). */
  readonly client = { bytesRead: 0, bytesWritten: 0 };
  /** `{sni}` servers: the name from the ClientHello (validated) and the ALPN protocols it offered. */
  sni: string | undefined;
  alpn: string | undefined;
  /** While the server reads a PROXY header or ClientHello (src/engine/native-preface.ts). */
  peekHandler: ((bytes: number, eof: boolean) => void) | undefined;
  /** `{sni}` servers with defaultDstName: re-routes once when the SNI destination has nothing to offer. */
  fallback: (() => void) | undefined;
  private phase = WAITING;

  /** `acceptedAt`: the OUT_ACCEPTED record's time (engine clock). */
  constructor(id: number, server: NativeServerSide, peer: string, acceptedAt: number) {
    this.id = id;
    this.server = server;
    this.peer = peer;
    this.acceptedAt = acceptedAt;
    const t = server.connectTimeoutMs;
    this.deadlineAt = t === undefined ? Infinity : acceptedAt + t; // the engine enforces it; this bounds retries
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

  route(dest: Destination): void {
    this.destination = dest;
    this.granted(dest.request(this));
  }

  granted(g: Grant): void {
    if (this.phase !== WAITING) {
      if (g.kind === 'lease') g.lease.release({ kind: 'cancelled' });
      return;
    }
    this.slot?.cancel();
    this.slot = undefined;
    if (g.kind === 'lease') this.dial(g.lease);
    else if (g.kind === 'wait') {
      this.slot = g.slot;
      this.server.binding.watchLeave(this.id); // a client that leaves meanwhile ends it (client_error)
    }
    else if (this.fallback && g.reason !== 'waiters_full') {
      const f = this.fallback;
      this.fallback = undefined;
      f();
    } else this.finish(g.reason);
  }

  private dial(lease: Lease): void {
    this.phase = CONNECTING;
    this.lease = lease;
    this.attempts++;
    const ep = lease.endpoint;
    // An address (the usual case) connects at once; the addon says EINVAL for anything else.
    if (this.connect(ep.host, ep.port) === EINVAL) {
      // A name from a namer that did not resolve it: look it up, as net.connect would.
      lookup(ep.host).then(
        (a) => { if (this.lease === lease && this.phase === CONNECTING) { if (this.connect(a.address, ep.port) === EINVAL) this.attemptFailed('other', 'EINVAL'); } },
        () => { if (this.lease === lease && this.phase === CONNECTING) this.attemptFailed('other', 'ENOTFOUND'); },
      );
    }
  }

  /** Starts an attempt; EINVAL (host is not an IP address) is left to the caller, before anything started. */
  private connect(host: string, port: number): number {
    const pp = this.destination!.config.proxyProtocol;
    // A PROXY header (client proxyProtocol) goes to the backend before any forwarded byte.
    const header = pp ? nativeProxyHeader(pp, this.origin, this.origin ? undefined : this.server.binding.peer(this.id), this.server.srvAddr, this.sni) : undefined;
    const r = this.server.binding.connect(this.id, host, port, this.destination!.connectTimeoutMs ?? 0, header);
    if (r === EINVAL) return r;
    if (r !== 0 && r !== 2 /* ENOENT: the engine closed it; its record follows */) this.attemptFailed('other', errnoName(r));
    return 0;
  }

  connected(latencyUs: number, at: number): void {
    if (this.phase !== CONNECTING) return;
    this.phase = OPEN;
    this.connectedAt = at;
    this.lease!.connected(latencyUs);
    this.server.metrics.connectLatencyUs.record((at - this.acceptedAt) * 1000);
  }

  connectFailed(errno: number): void {
    if (this.phase !== CONNECTING) return;
    const code = errnoName(errno);
    if (errno === EMFILE || errno === ENFILE) {
      noteFdExhaustion(); // for the open-files warning
      this.finish('connect_failed', code); // ours, not the endpoint's
    }
    else this.attemptFailed(errno === ECONNREFUSED ? 'refused' : errno === ETIMEDOUT ? 'timeout' : 'other', errno === ETIMEDOUT ? undefined : code);
  }

  private attemptFailed(cause: ConnectFailureCause, code: string | undefined): void {
    const dest = this.destination!;
    const lease = this.lease!;
    lease.release({ kind: 'failed', cause });
    const final: CloseReason = cause === 'timeout' ? 'connect_timeout' : cause === 'refused' ? 'connect_refused' : 'connect_failed';
    const next = this.attempts < dest.config.connectAttempts && this.server.binding.hrNow() < this.deadlineAt ? dest.retry(lease.endpoint) : undefined;
    if (!next) this.finish(final, code);
    else {
      this.phase = WAITING;
      this.dial(next);
    }
  }

  peeked(bytes: number, eof: boolean): void {
    this.peekHandler?.(bytes, eof);
  }

  /** The engine closed it (record): account with the engine's reason and byte counts. */
  closed(reason: number, errno: number, rx: number, tx: number, at: number): void {
    if (this.phase === DONE) return;
    const open = this.phase === OPEN;
    const r: CloseReason =
      reason === R_DONE ? 'done'
      : reason === R_CLIENT_ERROR ? 'client_error'
      : reason === R_BACKEND_ERROR ? 'backend_error'
      : reason === R_LIFETIME ? 'lifetime'
      : reason === R_IDLE ? 'idle'
      : reason === R_WAIT_TIMEOUT ? 'connect_timeout'
      : open ? 'backend_error' : 'connect_failed';
    this.account(r, errno ? errnoName(errno) : undefined, rx, tx, at);
  }

  /** Idempotent: closes it in the engine (unless the engine already did) and accounts for it. */
  finish(reason: CloseReason, code?: string): void {
    if (this.phase === DONE) return;
    const bytes = this.server.binding.close(this.id);
    if (!bytes) return; // the engine closed it first: its record (already queued) finishes it
    this.account(reason, code, bytes[0], bytes[1], this.server.binding.hrNow());
  }

  private account(reason: CloseReason, code: string | undefined, rx: number, tx: number, at: number): void {
    const phase = this.phase;
    this.phase = DONE;
    this.reason = reason;
    this.error = code;
    this.closedAt = at;
    this.client.bytesRead = rx;
    this.client.bytesWritten = tx;
    this.slot?.cancel();
    this.slot = undefined;
    this.lease?.release(outcomeOf(phase, reason, code, at - this.connectedAt));
    const m = this.server.metrics;
    if (phase === OPEN) {
      if (reason === 'done') m.closes.value++;
      else {
        m.failures.value++;
        if (reason === 'lifetime' || reason === 'idle') m.streamFailureTimeout.value++;
        else m.streamFailureOther.value++;
      }
      m.durationMs.record(at - this.connectedAt);
    } else {
      m.failures.value++;
      if (reason === 'connect_timeout' || reason === 'resolution_timeout') m.connectFailureTimeout.value++;
      else m.connectFailureOther.value++;
    }
    this.server.connectionClosed(this);
  }
}

function outcomeOf(phase: number, reason: CloseReason, code: string | undefined, openMs: number): Outcome {
  if (phase === OPEN) return { kind: 'closed', durationMs: openMs };
  if (code === 'EMFILE' || code === 'ENFILE') return { kind: 'cancelled' };
  if (reason === 'connect_timeout') return { kind: 'failed', cause: 'timeout' };
  if (reason === 'connect_refused') return { kind: 'failed', cause: 'refused' };
  if (reason === 'connect_failed') return { kind: 'failed', cause: 'other' };
  return { kind: 'cancelled' };
}
