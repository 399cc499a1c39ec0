// linkerd-tcp's metric names (reference §8.6), bundled per scope so the data path holds
// direct references and never looks a metric up by name.
import type { Counter, Registry, Stat } from './registry.ts';
import { SampleWindow } from './window.ts';

export interface ServerMetrics {
  readonly accepts: Counter;
  readonly closes: Counter;
  readonly failures: Counter;
  /** new: connections closed at accept because maxConcurrency was reached. */
  readonly rejected: Counter;
  readonly connectFailureTimeout: Counter;
  readonly connectFailureOther: Counter;
  readonly connectLatencyUs: Stat;
  readonly streamFailureTimeout: Counter;
  readonly streamFailureOther: Counter;
  readonly rxBytes: Counter;
  readonly txBytes: Counter;
  readonly connectionRxBytes: Stat;
  readonly connectionTxBytes: Stat;
  readonly durationMs: Stat;
  /** TLS servers only: accept → handshake done. */
  readonly tlsHandshakeUs: Stat | undefined;
}

export function serverMetrics(reg: Registry, rt: string, srvAddr: string, tls: boolean, gauges: { active: () => number; waiters: () => number }): ServerMetrics {
  const l = { rt, srv_addr: srvAddr };
  reg.gauge('l5d:srv:active', l, gauges.active);
  reg.gauge('l5d:srv:waiters', l, gauges.waiters);
  return {
    accepts: reg.counter('l5d:srv:accepts', l),
    closes: reg.counter('l5d:srv:closes', l),
    failures: reg.counter('l5d:srv:failures', l),
    rejected: reg.counter('l5d:srv:rejected', { ...l, cause: 'max_concurrency' }),
    connectFailureTimeout: reg.counter('l5d:srv:connect:failure', { ...l, cause: 'timeout' }),
    connectFailureOther: reg.counter('l5d:srv:connect:failure', { ...l, cause: 'other' }),
    connectLatencyUs: withWindow(reg.stat('l5d:srv:connect:latency_us', l)),
    streamFailureTimeout: reg.counter('l5d:srv:stream:failure', { ...l, cause: 'timeout' }),
    streamFailureOther: reg.counter('l5d:srv:stream:failure', { ...l, cause: 'other' }),
    rxBytes: reg.counter('l5d:srv:stream:rx_bytes', l),
    txBytes: reg.counter('l5d:srv:stream:tx_bytes', l),
    connectionRxBytes: reg.stat('l5d:srv:stream:connection_rx_bytes', l),
    connectionTxBytes: reg.stat('l5d:srv:stream:connection_tx_bytes', l),
    durationMs: reg.stat('l5d:srv:stream:duration_ms', l),
    tlsHandshakeUs: tls ? reg.stat('l5d:srv:tls:handshake_us', l) : undefined,
  };
}

/** Keeps the last minute of the stat's values too (the dashboard's connect-latency quantiles). */
function withWindow(s: Stat): Stat {
  s.window ??= new SampleWindow();
  return s;
}

export interface DestinationMetrics {
  readonly attempts: Counter;
  readonly connects: Counter;
  readonly failureTimeout: Counter;
  readonly failureRefused: Counter;
  readonly failureOther: Counter;
  readonly unavailable: Counter;
  /** new: client connections served by a pre-connected spare (minConnections). */
  readonly pooled: Counter;
  /** new: connect attempts retried on another endpoint. */
  readonly retries: Counter;
  /** new: connections refused because maxWaiters were already waiting. */
  readonly waitersRejected: Counter;
  readonly latencyUs: Stat;
  readonly durationMs: Stat;
  /** linkerd-tcp's dispatcher poll time: here, each balancer decision (pick, resolution update). */
  readonly pollTimeUs: Stat;
}

export interface DestinationGauges {
  available(): number;
  failed(): number;
  retired(): number;
  pending(): number;
  open(): number;
  waiters(): number;
}

export function destinationMetrics(reg: Registry, rt: string, dst: string, g: DestinationGauges): DestinationMetrics {
  const l = { rt, dst };
  reg.gauge('l5d:balancer:endpoint:available', l, g.available);
  reg.gauge('l5d:balancer:endpoint:failed', l, g.failed);
  reg.gauge('l5d:balancer:endpoint:retired', l, g.retired);
  reg.gauge('l5d:balancer:connection:pending', l, g.pending);
  reg.gauge('l5d:balancer:connection:open', l, g.open);
  reg.gauge('l5d:balancer:waiters', l, g.waiters);
  return {
    attempts: reg.counter('l5d:balancer:connection:attempts', l),
    connects: reg.counter('l5d:balancer:connection:connects', l),
    failureTimeout: reg.counter('l5d:balancer:connection:failure', { ...l, cause: 'timeout' }),
    failureRefused: reg.counter('l5d:balancer:connection:failure', { ...l, cause: 'refused' }),
    failureOther: reg.counter('l5d:balancer:connection:failure', { ...l, cause: 'other' }),
    unavailable: reg.counter('l5d:balancer:unavailable', l),
    retries: reg.counter('l5d:balancer:connection:retries', l),
    pooled: reg.counter('l5d:balancer:connection:pooled', l),
    waitersRejected: reg.counter('l5d:balancer:rejected', { ...l, cause: 'max_waiters' }),
    latencyUs: reg.stat('l5d:balancer:connection:latency_us', l),
    durationMs: reg.stat('l5d:balancer:connection:duration_ms', l),
    pollTimeUs: reg.stat('l5d:balancer:poll_time_us', l),
  };
}
