// A server (one listener) on the native engine: the addon listens and accepts; each accept
// (a record of the loop turn's batch) comes here, which applies maxConcurrency, creates a
// NativeConnection and routes it (the balancer's pick happens inside the call). Same metrics, access-log
// records, live set and drain as src/server/server.ts's Server, which App uses alike.
// TLS termination: the engine runs each client's handshake from the server's snapshot
// (src/engine/native-tls.ts); a connection joins the live set and is routed when its handshake
// is done (by the name it asked for on `{sni}` servers), and a failed one is counted, logged
// and recorded by cause exactly as the node engine does.
import type { ServerConfig } from '../config/types.ts';
import { PrefaceGate } from '../server/preface-gate.ts';
import { NativeTlsTerminator } from './native-tls.ts';
import { LinkerdTcpError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type ServerMetrics, serverMetrics } from '../metrics/handles.ts';
import type { Registry } from '../metrics/registry.ts';
import { addrKey } from '../naming/resolution.ts';
import type { Router } from '../router/router.ts';
import { type ClosedRecordSink, recordClosed, recordRefused, recordTlsFailure } from '../server/closed-record.ts';
import { idleOrDeadline } from '../server/drain-wait.ts';
import type { NativeBinding } from './native-binding.ts';
import { NativeConnection, type NativeServerSide } from './native-connection.ts';
import { logAcceptError, type NativeEngine, TLS_FAILURE_CAUSES } from './native-engine.ts';
import { NativePreface } from './native-preface.ts';


export class NativeServer implements NativeServerSide {
  readonly engine = 'native';
  readonly rt: string;
  readonly config: ServerConfig;
  readonly connectTimeoutMs: number | undefined;
  readonly live = new Set<NativeConnection>();
  readonly binding: NativeBinding;
  /** TLS termination, when the server has `tls`. */
  readonly tls: NativeTlsTerminator | undefined;
  /** Connections whose TLS handshake is under way (not yet live). */
  readonly handshaking = new Set<NativeConnection>();
  /** `{sni}` destinations decided from the name a terminated handshake asked for. */
  private readonly tlsGate: PrefaceGate | undefined;
  srvAddr = '';
  /** Where connection records go; set once the listener (and so srvAddr and metrics) exists. */
  private sink!: ClosedRecordSink;
  metrics!: ServerMetrics;
  private readonly eng: NativeEngine;
  /** Replaced by a config reload that changes the router (same label): new connections only. */
  private router: Router;
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly accessLog: Logger;
  private readonly reusePort: boolean;
  private listener: number | undefined;
  /** stopAccepting ran; `lateAccepts` connections it took from the kernel's queue are still to arrive. */
  private stopped = false;
  private lateAccepts = 0;
  private closedRx = 0;
  private closedTx = 0;
  private readonly idleWaiters = new Set<() => void>();
  /** `{sni}` or proxyProtocol servers: reads the PROXY header and/or ClientHello through the engine's peek, then routes (src/engine/native-preface.ts). */
  private readonly preface: NativePreface<NativeConnection> | undefined;

  constructor(opts: { config: ServerConfig; router: Router; registry: Registry; log: Logger; engine: NativeEngine; reusePort?: boolean; where?: string }) {
    this.config = opts.config;
    this.router = opts.router;
    this.rt = opts.router.label;
    this.registry = opts.registry;
    this.eng = opts.engine;
    this.binding = opts.engine.binding;
    this.reusePort = opts.reusePort ?? false;
    this.connectTimeoutMs = opts.config.connectTimeoutMs;
    this.log = opts.log.child({ rt: this.rt });
    this.accessLog = this.log.child({ log: 'access' });
    const tc = opts.config.tls;
    // The handshake is part of the connect phase, so connectTimeoutMs bounds it too (as on the node engine).
    this.tls = tc ? new NativeTlsTerminator(this.binding, tc, `${opts.where ?? 'server'}.tls`, Math.min(tc.handshakeTimeoutMs, opts.config.connectTimeoutMs ?? Infinity)) : undefined;
    this.preface = (!tc && opts.config.dstName.includes('{sni}')) || opts.config.proxyProtocol
      ? new NativePreface<NativeConnection>(opts.config, opts.registry, this.binding, {
        routeTo: (c, dst, sni, fallback) => {
          if (fallback !== undefined) c.fallback = () => { this.preface!.gate.fallback('unresolved'); c.route(this.router.destination(fallback)); };
          if (sni) this.router.touchSni(dst);
          c.route(this.router.destination(dst));
        },
        refuse: (c, reason, cause) => c.finish(reason, cause),
        // A TLS server reads the PROXY header first, then the handshake (its SNI decides `{sni}` routes).
        ...(tc ? { afterProxy: (c: NativeConnection) => this.startTls(c) } : {}),
      }, tc !== undefined)
      : undefined;
    this.tlsGate = tc ? (this.preface?.gate ?? new PrefaceGate(opts.config, true, opts.registry)) : undefined;
  }

  async listen(): Promise<void> {
    const { ip, port, connectTimeoutMs, idleTimeoutMs, connectionLifetimeSecs } = this.config;
    let id: number;
    try {
      id = this.binding.listen(ip, port, 1024, this.reusePort, connectTimeoutMs ?? 0, idleTimeoutMs ?? 0, (connectionLifetimeSecs ?? 0) * 1000);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new LinkerdTcpError('LISTEN', `cannot listen on ${addrKey(ip, port)} (router ${this.rt}): ${code}`, { cause: e });
    }
    this.listener = id;
    this.tls?.attach(id);
    this.eng.listeners.set(id, { accept: (c, at) => this.accept(c, at), acceptError: (n, refused) => logAcceptError(this.log, this.srvAddr, n, refused) });
    this.srvAddr = addrKey(ip, this.binding.listenerPort(id) ?? port);
    this.preface?.bind(this.rt, this.srvAddr);
    if (this.tlsGate !== this.preface?.gate) this.tlsGate?.bind(this.rt, this.srvAddr);
    this.metrics = serverMetrics(this.registry, this.rt, this.srvAddr, this.tls !== undefined, {
      active: () => this.live.size + this.handshaking.size,
      waiters: () => { let n = 0; for (const c of this.live) if (!c.open) n++; return n; },
    });
    this.sink = { metrics: this.metrics, accessLog: this.accessLog, srvAddr: this.srvAddr, dstName: this.config.dstName };
    this.registry.onCollect(() => {
      const b = this.totalBytes();
      this.metrics.rxBytes.value = b.rx;
      this.metrics.txBytes.value = b.tx;
    });
    this.log.info({ srv: this.srvAddr, dst: this.config.dstName, engine: 'native', ...(this.tls ? { tls: this.tls.identities.map((i) => `${i.name}: ${i.names.join(' ')}`) } : {}) }, 'listening');
  }

  get port(): number {
    return Number(this.srvAddr.split(':').pop());
  }

  /** Bytes from/to clients: closed connections plus live ones (counted by the engine). */
  totalBytes(): { rx: number; tx: number } {
    const [rx, tx] = this.listener === undefined ? [0, 0] : this.binding.listenerBytes(this.listener);
    const c = this.carry?.();
    return { rx: this.closedRx + rx + (c?.rx ?? 0), tx: this.closedTx + tx + (c?.tx ?? 0) };
  }

  /** A config reload gives this server new connections' router (connections already routed keep theirs). */
  retarget(router: Router): void {
    this.router = router;
  }

  /** The totals of the server this one replaced in a config reload, so the byte counters carry on. */
  carry: (() => { rx: number; tx: number }) | undefined;

  prepare(): void {
    if (this.preface?.gate.sniRouting || this.tlsGate?.sniRouting) {
      if (this.config.defaultDstName !== undefined) this.router.destination(this.config.defaultDstName);
      return;
    }
    this.router.destination(this.config.dstName);
  }

  /** `at`: when the engine accepted it (engine clock, like every time a native connection keeps). */
  private accept(id: number, at: number): void {
    if (this.stopped && this.lateAccepts > 0 && --this.lateAccepts === 0) queueMicrotask(() => { if (this.live.size === 0) this.wakeIdle(); });
    this.metrics.accepts.value++;
    if (this.live.size + this.handshaking.size >= this.config.maxConcurrency) {
      this.metrics.rejected.value++;
      const client = this.accessLog.isLevelEnabled('info') ? (this.binding.peer(id) ?? '?') : '';
      this.binding.close(id);
      if (this.log.isLevelEnabled('debug')) this.log.debug({ srv: this.srvAddr }, 'maxConcurrency reached; connection closed');
      recordRefused(this.sink, client, 'max_concurrency', null);
      return;
    }
    // The peer: for the access log, and for the PROXY header's trust check.
    const peer = this.config.proxyProtocol || this.accessLog.isLevelEnabled('info') ? (this.binding.peer(id) ?? '?') : '';
    const conn = new NativeConnection(id, this, peer, at);
    this.eng.conns.set(id, conn);
    if (this.tls) {
      // Routed once the handshake is done (tlsDone), or recorded as failed (tlsFailed); a
      // PROXY header first where the server takes them (a failed one: refused, recorded).
      this.handshaking.add(conn);
      if (this.preface) return this.preface.start(conn, at);
      return this.startTls(conn);
    }
    this.live.add(conn);
    if (this.preface) return this.preface.start(conn, at); // routed once its PROXY header / ClientHello is read
    conn.route(this.router.destination(this.config.dstName)); // the pick happens here, synchronously
  }

  private startTls(conn: NativeConnection): void {
    const r = this.binding.tlsStart(conn.id);
    if (r !== 0) this.tlsFailed(conn, 9 /* other: no SSL object could be made (or the client left) */);
  }

  /** The client's handshake finished: the connection is live and routed (by its SNI on `{sni}` servers). */
  tlsDone(conn: NativeConnection, us: number): void {
    if (!this.handshaking.delete(conn)) return;
    this.metrics.tlsHandshakeUs?.record(us);
    const info = this.binding.tlsInfo(conn.id);
    const sni = info?.[0], alpn = info?.[1];
    conn.sni = sni;
    conn.alpn = alpn;
    this.live.add(conn);
    const gate = this.tlsGate!;
    if (!gate.sniRouting) return conn.route(this.router.destination(this.config.dstName));
    const d = gate.decide(sni);
    if (d.kind === 'failed') {
      conn.sni = d.name ?? sni;
      const f = gate.fallback(d.cause);
      if (f === undefined) return conn.finish('sni', d.cause);
      return conn.route(this.router.destination(f));
    }
    if (d.kind !== 'sni') return conn.route(this.router.destination(d.dst));
    conn.sni = d.name;
    const def = this.config.defaultDstName;
    if (def !== undefined) conn.fallback = () => { gate.fallback('unresolved'); conn.route(this.router.destination(def)); };
    this.router.touchSni(d.dst);
    conn.route(this.router.destination(d.dst));
  }

  /** The client's handshake failed (`cause`: TF_* in native/engine.h): counted, logged with the name asked for, one record. */
  tlsFailed(conn: NativeConnection, causeCode: number): void {
    if (!this.handshaking.delete(conn)) return;
    const cause = TLS_FAILURE_CAUSES[causeCode] || 'other';
    const sni = this.binding.tlsInfo(conn.id)?.[0];
    this.eng.conns.delete(conn.id);
    this.binding.close(conn.id);
    recordTlsFailure(this.sink, this.registry, this.log, this.rt, conn.peer || null, cause, sni, `tls handshake: ${cause}`);
    if (this.live.size === 0 && this.handshaking.size === 0 && this.lateAccepts === 0) this.wakeIdle();
  }

  connectionClosed(conn: NativeConnection): void {
    this.handshaking.delete(conn);
    this.live.delete(conn);
    this.eng.conns.delete(conn.id);
    recordClosed(this.sink, conn, this.config.proxyProtocol ? { proxy: conn.origin?.peer ?? null } : undefined);
    this.closedRx += conn.client.bytesRead;
    this.closedTx += conn.client.bytesWritten;
    if (this.live.size === 0 && this.handshaking.size === 0 && this.lateAccepts === 0) this.wakeIdle();
  }

  private wakeIdle(): void {
    for (const w of this.idleWaiters) w();
    this.idleWaiters.clear();
  }

  /** Resolves once no connection is open and every accept taken from the queue at stopAccepting has arrived and closed. */
  whenIdle(): Promise<void> {
    if (this.live.size === 0 && this.handshaking.size === 0 && this.lateAccepts === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.add(resolve));
  }

  stopAccepting(): void {
    if (this.listener === undefined || this.stopped) return;
    this.stopped = true;
    // What the kernel had queued is accepted first (not reset); those accepts come in this loop turn's batch.
    this.lateAccepts = this.binding.listenerClose(this.listener);
  }

  close(): void {
    if (this.listener !== undefined) this.eng.listeners.delete(this.listener);
    this.tls?.close();
  }

  /** Waits until every connection has closed, or `deadlineMs` (epoch ms), then cuts the rest. */
  async drain(deadlineMs: number): Promise<void> {
    // The connections accepted from the queue at stopAccepting (they come this loop turn) are served like the others.
    if (this.live.size > 0 || this.handshaking.size > 0 || this.lateAccepts > 0) await idleOrDeadline(this.whenIdle(), deadlineMs);
    this.lateAccepts = 0; // past the deadline, no longer waited for
    for (const c of [...this.handshaking]) this.tlsFailed(c, 8 /* closed: cut by the shutdown */);
    for (const c of [...this.live]) c.finish('shutdown');
    // The engine closed these first; their records arrive at the end of this loop turn.
    if (this.live.size > 0) await this.whenIdle();
  }
}
