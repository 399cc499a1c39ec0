// Pre-connected backend connections for one destination (`minConnections`): keeps that
// many established, idle connections so a new client skips the connect round trip (and a
// backend's greeting is already here). Spares the backend closes are replaced; a spare that
// died while idle is never handed out; failed connects back off before trying again.
import type { Socket } from 'node:net';
import type { Balancer } from '../balancer/balancer.ts';
import type { Lease } from '../balancer/lease.ts';
import { connectFailureCause, dial } from '../connector/dial.ts';
import type { ClientTls } from '../connector/tls-client.ts';

/** An established backend connection; its lease is open and now the taker's to release. */
export interface Spare {
  readonly socket: Socket;
  readonly lease: Lease;
}

interface SpareSocket extends Socket {
  pool?: SparePool | undefined;
  lease?: Lease;
  /** performance.now() when it was connected (and, over TLS, handshaken); unset until then. */
  readyAt?: number;
}

const RETRY_MS = 1000;
/** A spare that dies this soon after connecting was refused, not retired (e.g. a TLS 1.3
 * backend rejecting our client certificate after the handshake): back off, don't spin. */
const EARLY_DEATH_MS = 1000;

export class SparePool {
  private readonly size: number;
  private readonly balancer: Balancer;
  private readonly highWaterMark: number;
  private readonly connectTimeoutMs: number | undefined;
  private readonly tls: ClientTls | undefined;
  private readonly idle: SpareSocket[] = [];
  private connecting = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: {
    size: number; balancer: Balancer; highWaterMark: number; connectTimeoutMs: number | undefined; tls: ClientTls | undefined;
  }) {
    this.size = opts.size;
    this.balancer = opts.balancer;
    this.highWaterMark = opts.highWaterMark;
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.tls = opts.tls;
  }

  get available(): number {
    return this.idle.length;
  }

  /** An established spare, detached from the pool (the caller owns it), or undefined. */
  take(): Spare | undefined {
    let s: SpareSocket | undefined;
    while ((s = this.idle.shift())) {
      if (s.destroyed || s.readableEnded) continue; // died while idle: already released
      detach(s);
      const spare = { socket: s, lease: s.lease! };
      this.fill();
      return spare;
    }
    this.fill();
    return undefined;
  }

  /** Starts connects until `size` spares exist or are on their way. */
  fill(): void {
    if (this.closed || this.retryTimer) return;
    while (this.idle.length + this.connecting < this.size) {
      const lease = this.balancer.acquire({ spare: true });
      if (!lease) return;
      this.connect(lease);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const s of this.idle.splice(0)) this.release(s);
  }

  private connect(lease: Lease): void {
    this.connecting++;
    const started = performance.now();
    const ep = lease.endpoint;
    const s = dial(ep.host, ep.port, this.highWaterMark, this.tls, onConnect, onError) as SpareSocket;
    s.pool = this;
    s.lease = lease;
    if (this.connectTimeoutMs !== undefined) {
      s.setTimeout(this.connectTimeoutMs, () => {
        if (s.readyAt === undefined) s.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
      });
    }
    (s as SpareSocket & { startedAt?: number }).startedAt = started;
  }

  /** Called from the shared listeners below. */
  static connected(pool: SparePool, s: SpareSocket): void {
    pool.connecting--;
    s.readyAt = performance.now();
    s.setTimeout(0);
    const startedAt = (s as SpareSocket & { startedAt?: number }).startedAt ?? performance.now();
    s.lease!.connected((performance.now() - startedAt) * 1000);
    if (pool.closed) {
      pool.release(s);
      return;
    }
    // Read (into the buffer, not consumed) so that a close while idle is noticed.
    s.on('readable', noop);
    s.on('end', onIdleEnd);
    s.on('close', onIdleClose);
    pool.idle.push(s);
  }

  static failed(pool: SparePool, s: SpareSocket, err: Error): void {
    if (s.readyAt === undefined || !pool.idle.includes(s)) {
      // A connect that failed.
      pool.connecting--;
      s.pool = undefined;
      s.lease!.release({ kind: 'failed', cause: connectFailureCause(err as NodeJS.ErrnoException) });
      pool.backoff();
      return;
    }
    pool.dropIdle(s);
  }

  dropIdle(s: SpareSocket): void {
    const i = this.idle.indexOf(s);
    if (i >= 0) this.idle.splice(i, 1);
    const early = performance.now() - (s.readyAt ?? 0) < EARLY_DEATH_MS;
    this.release(s);
    if (early) this.backoff(); // refused right after connecting: try again later, not in a loop
    else this.fill();
  }

  private release(s: SpareSocket): void {
    if (s.pool !== this) return;
    s.pool = undefined;
    detach(s);
    s.destroy();
    s.lease!.release({ kind: 'closed' });
  }

  private backoff(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.fill();
    }, RETRY_MS);
    this.retryTimer.unref();
  }
}

function detach(s: SpareSocket): void {
  s.removeListener('readable', noop);
  s.removeListener('end', onIdleEnd);
  s.removeListener('close', onIdleClose);
  s.removeListener('error', onError);
  s.removeListener('connect', onConnect);
  s.pool = undefined;
}

function noop(): void {}
function onConnect(this: SpareSocket): void {
  if (this.pool) SparePool.connected(this.pool, this);
}
function onError(this: SpareSocket, err: Error): void {
  if (this.pool) SparePool.failed(this.pool, this, err);
}
function onIdleEnd(this: SpareSocket): void {
  this.pool?.dropIdle(this);
}
function onIdleClose(this: SpareSocket): void {
  this.pool?.dropIdle(this);
}
