// Messages between the primary and its workers (node:cluster IPC, 'advanced' serialization).
import type { AppState } from '../admin/state.ts';
import type { Config } from '../config/types.ts';
import type { MetricDump } from '../metrics/registry.ts';

export type ToWorker =
  | { readonly type: 'start'; readonly config: Config }
  | { readonly type: 'req'; readonly id: number; readonly what: 'metrics' | 'state' | 'ready' }
  | { readonly type: 'shutdown'; readonly graceMs: number }
  | { readonly type: 'reload' }; // SIGHUP: re-read TLS keys and certificates

export type Answer = MetricDump[] | AppState | boolean;

export type ToPrimary =
  | { readonly type: 'listening' }
  | { readonly type: 'failed'; readonly message: string } // could not start (bad TLS material, port in use)
  | { readonly type: 'res'; readonly id: number; readonly value: Answer }
  | { readonly type: 'admin'; readonly what: 'shutdown' | 'abort' };
