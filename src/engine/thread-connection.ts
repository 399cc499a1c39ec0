// One connection of the native I/O threads, as the main thread accounts for it: the threads
// accept, pick, connect, retry and forward in C (native/io-thread.c) and only report; this
// object turns their records into the ledger's accounting (src/router/connection-ledger.ts):
// a lease on each endpoint an attempt went to (the balancer's loads, connect latency and
// fail-fast), the server and destination metrics, and the close reason of the access log,
// exactly as a connection the main thread drove would have them. It decides nothing.
import { constants } from 'node:os';
import type { FailureCause } from '../balancer/lease.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import { type CloseReason, ConnectionLedger, Phase } from '../router/connection-ledger.ts';
import type { Destination } from '../router/destination.ts';
import { errnoName, R_BACKEND_ERROR, R_CLIENT_ERROR, R_DONE, R_IDLE, R_LIFETIME, R_WAIT_TIMEOUT } from './native-engine.ts';

/** The errnos the threads close a connection with (native/io-thread.h), and those of an attempt. */
const { EHOSTUNREACH, EAGAIN, ECONNREFUSED, ETIMEDOUT, EMFILE, ENFILE } = constants.errno;
/** Linux's, which Node's os.constants.errno leaves out. */
export const EUSERS = 87, ESHUTDOWN = 108;

export interface ThreadServerSide {
  readonly connectTimeoutMs: number | undefined;
  readonly metrics: ServerMetrics;
  connectionClosed(conn: ThreadConnection): void;
}

export class ThreadConnection extends ConnectionLedger {
  readonly client = { bytesRead: 0, bytesWritten: 0 };
  /** The client for the access log (`ip:port`; '' when the access log is off). */
  readonly peer: string;
  private readonly server: ThreadServerSide;

  constructor(server: ThreadServerSide, peer: string, acceptedAt: number, dest: Destination) {
    super(server, acceptedAt);
    this.server = server;
    this.peer = peer;
    this.destination = dest;
  }

  /** The threads dial; nothing to do here. */
  protected override dial(): void {}

  /** The threads close their connections; the main thread only accounts for what they report. */
  override finish(): void {}

  protected override accounted(): void {
    this.server.connectionClosed(this);
  }

  /** An attempt on the endpoint at `key` (`host:port`), as this connection's destination knows it. */
  private attemptOn(key: string | undefined): void {
    const dest = this.destination!;
    const ep = key === undefined ? undefined : dest.balancer.endpoints.get(key);
    this.attemptedByEngine(ep ? dest.balancer.lease(ep) : undefined);
    dest.metrics.attempts.value++;
    if (this.attempts > 1) dest.metrics.retries.value++;
  }

  /** OUT_CONNECTED: the attempt on the endpoint at `key` connected. */
  connected(key: string | undefined, latencyUs: number, at: number): void {
    if (this.phase === Phase.DONE || this.phase === Phase.OPEN) return;
    this.attemptOn(key);
    this.connectSucceeded(latencyUs, at);
  }

  /**
   * OUT_CONNECT_FAILED: the attempt on the endpoint at `key` failed; the thread dials another
   * or closes (its record follows). Out of descriptors is ours, not the endpoint's: no blame.
   */
  attemptFailedOn(key: string | undefined, errno: number): void {
    if (this.phase === Phase.DONE || this.phase === Phase.OPEN) return;
    this.attemptOn(key);
    if (errno === EMFILE || errno === ENFILE) {
      this.lease?.release({ kind: 'cancelled' });
      return;
    }
    const cause: FailureCause = errno === ECONNREFUSED ? 'refused' : errno === ETIMEDOUT ? 'timeout' : 'other';
    this.lease?.release({ kind: 'failed', cause });
  }

  /** OUT_CLOSED, for a connection the threads did not refuse (the server handles EUSERS). */
  closed(reason: number, errno: number, rx: number, tx: number, at: number): void {
    if (this.phase === Phase.DONE) return;
    this.client.bytesRead = rx;
    this.client.bytesWritten = tx;
    const dest = this.destination!;
    let r: CloseReason;
    let code = errno ? errnoName(errno) : undefined;
    if (reason === R_DONE) r = 'done';
    else if (reason === R_CLIENT_ERROR) r = 'client_error';
    else if (reason === R_BACKEND_ERROR) r = 'backend_error';
    else if (reason === R_LIFETIME) r = 'lifetime';
    else if (reason === R_IDLE) r = 'idle';
    else if (reason === R_WAIT_TIMEOUT) r = 'connect_timeout';
    else if (errno === ESHUTDOWN) {
      r = 'shutdown';
      code = undefined;
    } else if (this.phase === Phase.OPEN) r = 'backend_error';
    else if (errno === EHOSTUNREACH && this.attempts === 0) {
      // Nothing to dial: no endpoint (or drawn onto an empty branch), or a first answer that failed.
      code = undefined;
      if (dest.balancer.resolved) {
        r = 'no_endpoints';
        dest.metrics.unavailable.value++;
      } else r = 'resolution_failed';
    } else if (errno === EAGAIN && this.attempts === 0) {
      r = 'waiters_full';
      code = undefined;
      dest.metrics.waitersRejected.value++;
    } else if (errno === ETIMEDOUT) {
      r = 'connect_timeout';
      code = undefined;
    } else if (errno === ECONNREFUSED) r = 'connect_refused';
    else r = 'connect_failed';
    this.end(r, code, at);
  }
}
