// Messages between the primary and its workers (node:cluster IPC, 'advanced' serialization).
import type { AppState } from '../admin/state.ts';
import type { Config } from '../config/types.ts';
import type { HealthToPrimary, HealthToWorker } from '../health/source.ts';
import type { ReloadToPrimary, ReloadToWorker } from './cluster-reload.ts';
import type { NamesToPrimary, NamesToWorker } from './remote-names.ts';
import type { SessionsToPrimary, SessionsToWorker } from './remote-sessions.ts';
import type { MetricDump } from '../metrics/registry.ts';

export type ToWorker =
  | { readonly type: 'start'; readonly config: Config; readonly processes: number }
  | { readonly type: 'req'; readonly id: number; readonly what: 'metrics' | 'state' | 'ready' }
  | { readonly type: 'shutdown'; readonly graceMs: number }
  | { readonly type: 'ticket-keys'; readonly keys: Uint8Array } // TLS session-ticket keys, shared by every worker; never logged
  | { readonly type: 'reload' } // SIGHUP: re-read TLS keys and certificates
  | HealthToWorker
  | NamesToWorker
  | SessionsToWorker // a health check verdict from the primary's checker
  | ReloadToWorker; // a config reload: prepare, then commit or abort (cluster-reload.ts)

export type Answer = MetricDump[] | AppState | boolean;

export type ToPrimary =
  | { readonly type: 'listening' }
  | { readonly type: 'failed'; readonly message: string } // could not start (bad TLS material, port in use)
  | { readonly type: 'res'; readonly id: number; readonly value: Answer }
  | { readonly type: 'admin'; readonly what: 'shutdown' | 'abort' }
  | HealthToPrimary
  | NamesToPrimary
  | SessionsToPrimary // watch/unwatch an endpoint's health (the primary checks once for all workers)
  | ReloadToPrimary; // this worker prepared a reload (error null) or could not, or has committed it

/** /api/state's `workers` (several workers only): who is serving, and restarts that failed. */
export interface WorkersState {
  readonly configured: number;
  readonly live: number; // forked, not exited
  readonly listening: number; // started and serving
  readonly restarts: number; // workers that exited and were forked again
  readonly failedStarts: number;
  /** A worker is missing after the start: the others serve, with its share of the cores idle. */
  readonly degraded: boolean;
  /** Why the last replacement could not start (cleared once one starts). */
  readonly lastFailure: string | null;
}
