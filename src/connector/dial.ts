// Dials a backend over TCP. The error listener is attached in the same tick the socket is
// created; the caller owns timeouts (one connect-phase deadline per connection).
import { connect, type NetConnectOpts, type Socket } from 'node:net';

export type ConnectFailureCause = 'timeout' | 'refused' | 'other';

/** Maps a connect error to linkerd-tcp's `connection:failure` cause label. */
export function connectFailureCause(err: NodeJS.ErrnoException | undefined): ConnectFailureCause {
  if (!err) return 'timeout';
  if (err.code === 'ECONNREFUSED') return 'refused';
  if (err.code === 'ETIMEDOUT') return 'timeout';
  return 'other';
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
