// A lease: one connection's claim on one endpoint (tower's load `Handle`). While pending it
// counts as a connect in flight, once connected as an open connection; `release(outcome)`
// ends it exactly once, from any state, so the endpoint's load and failure accrual cannot
// drift whatever path a connection takes to its end. Pure: the balancer is told, no I/O.
import type { Endpoint } from './endpoint.ts';

/** linkerd-tcp's `connection:failure` causes (connector/dial.ts maps errors to these). */
export type FailureCause = 'timeout' | 'refused' | 'other';

/** How a lease ends. Any kind is accepted in any state; see `Lease.release`. */
export type Outcome =
  /** The connection ended after connecting (`durationMs` open, for the duration stat). */
  | { readonly kind: 'closed'; readonly durationMs?: number }
  /** The connect attempt failed: counts against the endpoint (fail-fast). */
  | { readonly kind: 'failed'; readonly cause: FailureCause }
  /** Given up before connecting for a reason that is not the endpoint's (client gone, shutdown, EMFILE). */
  | { readonly kind: 'cancelled' };

/** What the balancer does with lease transitions (implemented by Balancer). */
export interface LeaseOwner {
  leaseConnected(lease: Lease, latencyUs: number): void;
  leaseReleased(lease: Lease, wasOpen: boolean, outcome: Outcome): void;
}

const PENDING = 0;
const OPEN = 1;
const RELEASED = 2;

export class Lease {
  readonly endpoint: Endpoint;
  /** Taken for a pre-connected spare (minConnections), not for a client connection. */
  readonly spare: boolean;
  private readonly owner: LeaseOwner;
  private state = PENDING;

  constructor(owner: LeaseOwner, endpoint: Endpoint, spare: boolean) {
    this.owner = owner;
    this.endpoint = endpoint;
    this.spare = spare;
  }

  get pending(): boolean {
    return this.state === PENDING;
  }
  get open(): boolean {
    return this.state === OPEN;
  }
  get released(): boolean {
    return this.state === RELEASED;
  }

  /** The connect succeeded: pending → open. False (and nothing changes) in any other state. */
  connected(latencyUs: number): boolean {
    if (this.state !== PENDING) return false;
    this.state = OPEN;
    this.owner.leaseConnected(this, latencyUs);
    return true;
  }

  /**
   * Ends the lease; idempotent (false when already released). From pending: `failed` is
   * recorded against the endpoint, `closed` and `cancelled` are not. From open: every kind
   * is a close (a `failed` after connecting is the stream's business, not the endpoint's).
   */
  release(outcome: Outcome): boolean {
    if (this.state === RELEASED) return false;
    const wasOpen = this.state === OPEN;
    this.state = RELEASED;
    this.owner.leaseReleased(this, wasOpen, outcome);
    return true;
  }
}
