// What a closed connection leaves behind on its server: its byte counts in the connection
// histograms (only once it reached a backend) and one access-log record; and the record of a
// connection refused before it had any (maxConcurrency, a failed TLS handshake). One writer
// for both engines' servers, so the records carry the same fields in the same order whichever
// engine moved the bytes.
import type { Logger } from '../log.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import type { Registry } from '../metrics/registry.ts';

/** The fields of a finished connection the record needs (router/connection.ts and the native one). */
export interface ClosedConnection {
  readonly client: { readonly bytesRead: number; readonly bytesWritten: number };
  readonly peer: string;
  readonly destination: { readonly name: string } | undefined;
  readonly endpoint: { readonly key: string } | undefined;
  readonly sni: string | undefined;
  readonly alpn: string | undefined;
  /** acceptedAt, connectedAt and closedAt are read from one monotonic clock (performance.now() on the
   * node engine, the engine clock on the native one): only their differences are written. */
  readonly acceptedAt: number;
  /** 0 when no backend was ever reached. */
  readonly connectedAt: number;
  readonly closedAt: number;
  readonly reason: string | undefined;
  readonly error: string | undefined;
}

export interface ClosedRecordSink {
  readonly metrics: ServerMetrics;
  readonly accessLog: Logger;
  readonly srvAddr: string;
  /** The configured dstName, for a connection that never had a destination. */
  readonly dstName: string;
}

/**
 * Records `conn` (the caller adds its client-side bytes to the server's totals). `proxy` is the
 * access log's `proxy` field on servers that accept PROXY headers (omitted elsewhere).
 */
export function recordClosed(sink: ClosedRecordSink, conn: ClosedConnection, proxy?: { readonly proxy: string | null }): void {
  const rx = conn.client.bytesRead, tx = conn.client.bytesWritten;
  if (conn.connectedAt) {
    sink.metrics.connectionRxBytes.record(rx);
    sink.metrics.connectionTxBytes.record(tx);
  }
  if (sink.accessLog.isLevelEnabled('info')) {
    sink.accessLog.info({
      srv: sink.srvAddr, client: conn.peer, ...proxy,
      dst: conn.destination?.name ?? sink.dstName, endpoint: conn.endpoint?.key ?? null,
      sni: conn.sni ?? null, alpn: conn.alpn ?? null,
      rxBytes: rx, txBytes: tx,
      connectMs: conn.connectedAt ? round(conn.connectedAt - conn.acceptedAt) : null,
      durationMs: round(conn.closedAt - conn.acceptedAt),
      reason: conn.reason, error: conn.error ?? null,
    }, 'connection closed');
  }
}

/** The record of a connection closed before it reached a backend or moved a byte. */
export function recordRefused(sink: ClosedRecordSink, client: string | null, reason: string, error: string | null, sni: string | null = null): void {
  if (!sink.accessLog.isLevelEnabled('info')) return;
  sink.accessLog.info({
    srv: sink.srvAddr, client, dst: sink.dstName, endpoint: null, sni, alpn: null,
    rxBytes: 0, txBytes: 0, connectMs: null, durationMs: null, reason, error,
  }, 'connection closed');
}

/**
 * A client's TLS handshake that failed, on either engine: counted as a failure and by cause
 * (`l5d:srv:tls:failure`), logged at debug with the name the client asked for, one record.
 */
export function recordTlsFailure(
  sink: ClosedRecordSink, registry: Registry, log: Logger, rt: string,
  client: string | null, cause: string, sni: string | undefined, err: string,
): void {
  sink.metrics.failures.value++;
  registry.counter('l5d:srv:tls:failure', { rt, srv_addr: sink.srvAddr, cause }).value++;
  if (log.isLevelEnabled('debug')) log.debug({ srv: sink.srvAddr, client, cause, sni: sni ?? null, err }, 'tls handshake failed');
  recordRefused(sink, client, 'tls_handshake', cause, sni ?? null);
}

/** Milliseconds to two decimals, as every access-log duration is written. */
export function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
