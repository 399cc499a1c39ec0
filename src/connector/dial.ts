// Dials a backend over TCP, or TLS when the destination's client config has `tls`. The
// error listener is attached in the same tick the socket is created; the caller owns
// timeouts (one connect-phase deadline per connection, which covers the TLS handshake).
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import { type ClientTls, dialTls } from './tls-client.ts';

export type ConnectFailureCause = 'timeout' | 'refused' | 'other';

/**
 * Errors that say "nothing can be reached at that address": counted and retried like a
 * refusal (another endpoint is tried, the endpoint heads for ejection).
 */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'EADDRNOTAVAIL']);

/** Maps a connect error to linkerd-tcp's `connection:failure` cause label. */
export function connectFailureCause(err: NodeJS.ErrnoException | undefined): ConnectFailureCause {
  if (!err) return 'timeout';
  if (err.code !== undefined && UNREACHABLE.has(err.code)) return 'refused';
  if (err.code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

/** Starts a connect (TCP, or TLS when `tls` is set); `onConnect` fires when the backend is ready for bytes. */
export function dial(
  host: string, port: number, highWaterMark: number, tls: ClientTls | undefined,
  onConnect: (this: Socket) => void, onError: (this: Socket, err: Error) => void,
): Socket {
  return tls ? dialTls(host, port, highWaterMark, tls, onConnect, onError) : dialTcp(host, port, highWaterMark, onConnect, onError);
}

/** Starts a TCP connect; `onError` gets any error before or after connect. */
export function dialTcp(
  host: string,
  port: number,
  highWaterMark: number,
  onConnect: (this: Socket) => void,
  onError: (this: Socket, err: Error) => void,
): Socket {
  // highWaterMark reaches the socket's Duplex (Node passes options through); @types omits it.
  const opts: NetConnectOpts & { highWaterMark: number } = { host, port, allowHalfOpen: true, noDelay: true, highWaterMark };
  const s = connect(opts);
  s.on('error', onError);
  s.once('connect', onConnect);
  return s;
}
