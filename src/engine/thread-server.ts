// A plain TCP server on the native I/O threads (`threads: true`): every thread accepts on its
// own SO_REUSEPORT listener and runs its connections end to end in C (native/io-thread.c):
// the pick over the destination's snapshot (published by ThreadSnapshot), connect, retries,
// forwarding, timeouts, close, maxConcurrency and maxWaiters for the whole process. The main
// thread reads their outcome records (one call per drain, not per connection) and keeps the
// same metrics, access-log records, balancer loads and fail-fast, live set and drain as
// NativeServer, through ThreadConnection. Which servers run here: src/engine/select.ts.
import { SocketAddress } from 'node:net';
import type { ServerConfig } from '../config/types.ts';
import { LinkerdTcpError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type ServerMetrics, serverMetrics } from '../metrics/handles.ts';
import type { Registry } from '../metrics/registry.ts';
import { addrKey } from '../naming/resolution.ts';
import type { Destination } from '../router/destination.ts';
import type { Router } from '../router/router.ts';
import { type ClosedRecordSink, recordClosed, recordRefused } from '../server/closed-record.ts';
import { idleOrDeadline } from '../server/drain-wait.ts';
import type { NativeBinding } from './native-binding.ts';
import { ConnTable, logAcceptError, R_LOCAL } from './native-engine.ts';
import { ESHUTDOWN, EUSERS, ThreadConnection, type ThreadServerSide } from './thread-connection.ts';
import { ThreadSnapshot } from './thread-snapshot.ts';

const OUT_CONNECTED = 1, OUT_CONNECT_FAILED = 2, OUT_CLOSED = 3, OUT_ACCEPT_ERROR = 5, OUT_ACCEPTED = 6;
const REC = 8, EP = 5;

/** Addresses this process's thread groups listen on, until their threads have ended: how many groups each. */
const ownAddresses = new Map<string, number>();

export class ThreadServer implements ThreadServerSide {
  readonly engine = 'native';
  readonly rt: string;
  readonly config: ServerConfig;
  readonly connectTimeoutMs: number | undefined;
  readonly live = new Set<ThreadConnection>();
  readonly tls = undefined;
  readonly threads: number;
  srvAddr = '';
  metrics!: ServerMetrics;
  /** The totals of the server this one replaced in a config reload, so the byte counters carry on. */
  carry: (() => { rx: number; tx: number }) | undefined;
  private readonly binding: NativeBinding;
  private router: Router;
  private dest: Destination | undefined;
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly accessLog: Logger;
  private readonly snapshot: ThreadSnapshot;
  private sink!: ClosedRecordSink;
  private handle: number | undefined;
  private records: Float64Array | undefined;
  /** Connections by id, one table per thread (each thread numbers its own). */
  private readonly tables: ConnTable<ThreadConnection>[] = [];
  private stopped = false;
  private ended = false;
  private closedRx = 0;
  private closedTx = 0;
  /** The byte totals last answered (totalBytes never goes back). */
  private seenRx = 0;
  private seenTx = 0;
  private readonly idleWaiters = new Set<() => void>();

  /** Bytes for pipes and copy buffers, all this server's threads together (native/engine.h's budget). */
  private readonly budget: number;

  constructor(opts: { config: ServerConfig; router: Router; registry: Registry; log: Logger; binding: NativeBinding; threads: number; budget: number }) {
    this.config = opts.config;
    this.router = opts.router;
    this.rt = opts.router.label;
    this.registry = opts.registry;
    this.binding = opts.binding;
    this.threads = opts.threads;
    this.budget = opts.budget;
    this.connectTimeoutMs = opts.config.connectTimeoutMs;
    this.log = opts.log.child({ rt: this.rt });
    this.accessLog = this.log.child({ log: 'access' });
    this.snapshot = new ThreadSnapshot(this.binding, () => this.handle, this.log);
  }

  async listen(): Promise<void> {
    const { ip, port, connectTimeoutMs, idleTimeoutMs, connectionLifetimeSecs, maxConcurrency, dstName } = this.config;
    const dest = (this.dest = this.router.destination(dstName));
    const limit = (n: number): number => (Number.isFinite(n) && n > 0 ? n : 0);
    const settings = [
      this.threads, connectTimeoutMs ?? 0, idleTimeoutMs ?? 0, (connectionLifetimeSecs ?? 0) * 1000,
      Number.isFinite(dest.config.maxWaiters) ? dest.config.maxWaiters : -1 /* no limit */, limit(maxConcurrency), this.accessLog.isLevelEnabled('info') ? 1 : 0, this.budget,
    ];
    const onRecords = (n: number, ended: boolean): void => this.onRecords(n, ended);
    let started;
    try {
      // The threads bind with SO_REUSEPORT, which would share a port silently with another
      // process doing the same (a second linkerd-tcp): first a bind without it checks the port
      // is free (and turns 0 into a port), as the primary's hold does for its workers; held
      // until the threads have bound beside it. Not when this process's own threads still
      // listen there (a reload's replacement, while the old threads close their listeners).
      if (port !== 0 && (ownAddresses.get(addrKey(ip, port)) ?? 0) > 0) {
        started = this.binding.ioStart(ip, port, settings, onRecords);
      } else {
        const [hold, held] = this.binding.holdPort(ip, port);
        try {
          started = this.binding.ioStart(ip, held, settings, onRecords);
        } finally {
          this.binding.releasePort(hold);
        }
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new LinkerdTcpError('LISTEN', `cannot listen on ${addrKey(ip, port)} (router ${this.rt}): ${code}`, { cause: e });
    }
    this.handle = started.id;
    this.records = started.records;
    this.srvAddr = addrKey(ip, started.port);
    ownAddresses.set(this.srvAddr, (ownAddresses.get(this.srvAddr) ?? 0) + 1);
    this.metrics = serverMetrics(this.registry, this.rt, this.srvAddr, false, {
      active: () => this.live.size,
      waiters: () => { let n = 0; for (const c of this.live) if (!c.open) n++; return n; },
    });
    this.sink = { metrics: this.metrics, accessLog: this.accessLog, srvAddr: this.srvAddr, dstName };
    this.registry.onCollect(() => {
      const b = this.totalBytes();
      this.metrics.rxBytes.value = b.rx;
      this.metrics.txBytes.value = b.tx;
    });
    this.snapshot.follow(dest);
    this.log.info({ srv: this.srvAddr, dst: dstName, engine: 'native', threads: this.threads }, 'listening');
  }

  get port(): number {
    return Number(this.srvAddr.split(':').pop());
  }

  /**
   * Bytes from/to clients so far: the threads' running totals (live connections included),
   * never below what closed connections' records counted, nor below an earlier answer (a
   * counter: once the threads have ended, the records have every byte).
   */
  totalBytes(): { rx: number; tx: number } {
    const st = this.handle === undefined ? undefined : this.binding.ioStats(this.handle);
    this.seenRx = Math.max(this.seenRx, this.closedRx, st?.[4] ?? 0);
    this.seenTx = Math.max(this.seenTx, this.closedTx, st?.[5] ?? 0);
    const c = this.carry?.();
    return { rx: this.seenRx + (c?.rx ?? 0), tx: this.seenTx + (c?.tx ?? 0) };
  }
  prepare(): void {
    this.router.destination(this.config.dstName);
  }

  /** A config reload gives this server new connections' router: its destination's snapshot from now on. */
  retarget(router: Router): void {
    this.router = router;
    this.dest = router.destination(this.config.dstName);
    if (this.handle !== undefined) this.snapshot.follow(this.dest);
  }

  private table(thread: number): ConnTable<ThreadConnection> {
    return (this.tables[thread] ??= new ConnTable<ThreadConnection>());
  }

  private onRecords(n: number, ended: boolean): void {
    const r = this.records!;
    for (let i = 0; i < n; i++) {
      const o = i * REC;
      const kind = r[o]!, id = r[o + 1]!, at = r[o + 6]!, t = r[o + 7]!;
      switch (kind) {
        case OUT_ACCEPTED: {
          this.metrics.accepts.value++;
          const conn = new ThreadConnection(this, peerOf(r[o + 2]!, r[o + 3]!, r[o + 4]!, r[o + 5]!), at, this.dest!);
          this.table(t).set(id, conn);
          this.live.add(conn);
          // Its thread has already dialled (or parked it until a first resolution).
          if (this.log.isLevelEnabled('debug')) this.log.debug({ srv: this.srvAddr, client: conn.peer, thread: t }, 'accepted');
          break;
        }
        case OUT_CONNECTED:
          this.table(t).get(id)?.connected(this.snapshot.key(r[o + EP]!), r[o + 2]!, at);
          break;
        case OUT_CONNECT_FAILED:
          this.table(t).get(id)?.attemptFailedOn(this.snapshot.key(r[o + EP]!), r[o + 2]!);
          break;
        case OUT_CLOSED: {
          const tab = this.table(t), conn = tab.get(id);
          tab.delete(id);
          if (!conn) break;
          if (r[o + 2] === R_LOCAL && r[o + 3] === EUSERS) this.refused(conn);
          else conn.closed(r[o + 2]!, r[o + 3]!, r[o + 4]!, r[o + 5]!, at);
          break;
        }
        case OUT_ACCEPT_ERROR:
          logAcceptError(this.log, this.srvAddr, r[o + 2]!, r[o + 3]!);
          break;
      }
    }
    if (ended) {
      this.ended = true;
      this.handle = undefined;
      const own = (ownAddresses.get(this.srvAddr) ?? 1) - 1;
      if (own > 0) ownAddresses.set(this.srvAddr, own);
      else ownAddresses.delete(this.srvAddr);
      this.snapshot.close();
      // Every thread has ended, so every connection's close record came: none is left open.
      for (const c of [...this.live]) c.closed(R_LOCAL, ESHUTDOWN, 0, 0, this.binding.hrNow());
      this.wakeIdle();
    }
  }

  /** Past maxConcurrency (for the whole process): closed at once by its thread. */
  private refused(conn: ThreadConnection): void {
    this.live.delete(conn);
    this.metrics.rejected.value++;
    if (this.log.isLevelEnabled('debug')) this.log.debug({ srv: this.srvAddr }, 'maxConcurrency reached; connection closed');
    recordRefused(this.sink, conn.peer || null, 'max_concurrency', null);
    if (this.live.size === 0) this.wakeIdle();
  }

  connectionClosed(conn: ThreadConnection): void {
    this.live.delete(conn);
    recordClosed(this.sink, conn);
    this.closedRx += conn.client.bytesRead;
    this.closedTx += conn.client.bytesWritten;
    if (this.live.size === 0) this.wakeIdle();
  }

  private idle(): boolean {
    return this.stopped ? this.ended : this.live.size === 0;
  }

  private wakeIdle(): void {
    if (!this.idle()) return;
    for (const w of this.idleWaiters) w();
    this.idleWaiters.clear();
  }

  /** Resolves once no connection is open (after stopAccepting: once every thread has ended). */
  whenIdle(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.add(resolve));
  }

  /** The threads accept what the kernel had queued, then close their listeners. */
  stopAccepting(): void {
    if (this.handle === undefined || this.stopped) return;
    this.stopped = true;
    this.binding.ioStop(this.handle);
  }

  close(): void {
    this.snapshot.close();
  }

  /** Waits until every connection has closed, or `deadlineMs` (epoch ms), then cuts the rest. */
  async drain(deadlineMs: number): Promise<void> {
    if (!this.idle()) await idleOrDeadline(this.whenIdle(), deadlineMs);
    if (this.handle !== undefined) this.binding.ioCut(this.handle);
    await this.whenIdle();
  }
}

/** The client's address from an OUT_ACCEPTED record (native/io-thread.h), as `ip:port`; '' when the thread did not read it. */
export function peerOf(famPort: number, a: number, b: number, c: number): string {
  const family = Math.floor(famPort / 65536), port = famPort % 65536;
  if (family === 4) return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}:${port}`;
  if (family !== 6) return '';
  const bytes: number[] = [];
  for (const [v, len] of [[a, 6], [b, 6], [c, 4]] as const) for (let k = len - 1; k >= 0; k--) bytes.push(Math.floor(v / 2 ** (8 * k)) % 256);
  const groups: string[] = [];
  for (let k = 0; k < 16; k += 2) groups.push(((bytes[k]! << 8) | bytes[k + 1]!).toString(16));
  return addrKey(new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address, port);
}
