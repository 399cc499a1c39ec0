// One backend address as a balancer sees it: its weight, its load, and its state.
// Transitions are pure functions of events and an injected clock (no timers here).
import type { FailFastConfig } from '../config/types.ts';

/** linkerd-tcp's DEFAULT_MAX_CONSECUTIVE_FAILURES and penalty: ejection is always on. */
export const DEFAULT_FAIL_FAST: FailFastConfig = { maxConsecutiveFailures: 5, failurePenaltySecs: 60 };

export type EndpointState =
  | { readonly kind: 'available' }
  /** Ejected after consecutive connect failures, until `until` (ms, injected clock). */
  | { readonly kind: 'failed'; readonly since: number; readonly until: number }
  /** Removed by discovery; kept while it still has connections, then dropped. */
  | { readonly kind: 'retired' };

export class Endpoint {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  state: EndpointState = { kind: 'available' };
  pending = 0;
  open = 0;
  consecutiveFailures = 0;
  /**
   * The active health check's verdict (src/health/), kept apart from `state` (passive
   * fail-fast): undefined = not checked or no verdict yet. New connections need both to
   * agree: `state` available and `healthy` not false.
   */
  healthy: boolean | undefined = undefined;
  /** Totals, for /api/state and the access log. */
  connects = 0;
  failures = 0;
  constructor(key: string, host: string, port: number, weight: number) {
    this.key = key;
    this.host = host;
    this.port = port;
    this.weight = weight;
  }
  get load(): number {
    return this.open + this.pending;
  }
  get idle(): boolean {
    return this.open === 0 && this.pending === 0;
  }
}

/** Outcome of a connect attempt; returns true when the endpoint was just ejected. */
export function recordConnect(ep: Endpoint, ok: boolean, now: number, failFast: FailFastConfig): boolean {
  if (ok) {
    ep.consecutiveFailures = 0;
    ep.connects++;
    return false;
  }
  ep.failures++;
  ep.consecutiveFailures++;
  if (ep.state.kind === 'available' && ep.consecutiveFailures >= failFast.maxConsecutiveFailures) {
    ep.state = { kind: 'failed', since: now, until: now + failFast.failurePenaltySecs * 1000 };
    return true;
  }
  return false;
}
