// The seam between who needs health verdicts (a destination's endpoints) and who runs the
// checks: the checker in this process (checker.ts), or, in a worker of several, the
// primary's checker reached over IPC (remote.ts), so each endpoint is checked once per proxy.
import type { HealthCheckConfig } from '../config/types.ts';

/** One endpoint of one router's destination, under one check configuration. */
export interface HealthTarget {
  /** The router's label: two routers' destinations of one name are checked, and counted, apart. */
  readonly rt: string;
  readonly dst: string;
  readonly host: string;
  readonly port: number;
  readonly check: HealthCheckConfig;
}

/**
 * Called with each new verdict (and the current one, when known, soon after watch), and
 * with `passed` true after every passing check, the verdict unchanged or not: a pass ends
 * a fail-fast ejection (balancer.ts's checkPassed).
 */
export type HealthListener = (healthy: boolean, passed: boolean) => void;

export interface HealthSource {
  /** Starts (or joins) the checks of `t`; the returned function stops listening. */
  watch(t: HealthTarget, listener: HealthListener): () => void;
  close(): void;
}

/** Same router, destination, address and check configuration → one set of checks. */
export function targetKey(t: HealthTarget): string {
  return `${JSON.stringify(t.rt)} ${t.dst} ${t.host}:${t.port} ${JSON.stringify(t.check)}`;
}

/** Messages of the worker → primary → worker exchange (carried by src/cluster/protocol.ts). */
export type HealthToPrimary =
  | { readonly type: 'health-watch'; readonly key: string; readonly target: HealthTarget }
  | { readonly type: 'health-unwatch'; readonly key: string };
export type HealthToWorker = { readonly type: 'health'; readonly key: string; readonly healthy: boolean; readonly passed: boolean };
