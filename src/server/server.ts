// One listener: accepts connections (up to maxConcurrency), terminates TLS when configured,
// hands each to its router for the server's dstName, keeps the live set for draining and
// scrape-time byte counts, and writes one access-log record per connection.
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { LinkerdTcpError } from '../errors.ts';
import type { ServerConfig } from '../config/types.ts';
import type { Logger } from '../log.ts';
import { type ServerMetrics, serverMetrics } from '../metrics/handles.ts';
import type { Registry } from '../metrics/registry.ts';
import { addrKey } from '../naming/resolution.ts';
import { Connection, type ServerSide } from '../router/connection.ts';
import type { Router } from '../router/router.ts';
import type { Origin } from '../connector/proxy-header.ts';
import { type DstDecision, originKey, originOf, PrefaceGate } from './preface-gate.ts';
import type { PrefaceFailure, PrefaceRead } from './preface.ts';
import { type ClosedRecordSink, recordClosed, recordRefused, recordTlsFailure } from './closed-record.ts';
import { idleOrDeadline } from './drain-wait.ts';
import { type HandshakeFailure, TlsTerminator } from './tls.ts';

/** A raw socket whose PROXY header was read before its TLS handshake. */
interface OriginSocket extends Socket {
  ltOrigin?: { origin: Origin | undefined; client: string; at: number };
}

export class Server implements ServerSide {
  readonly rt: string;
  readonly config: ServerConfig;
  readonly connectTimeoutMs: number | undefined;
  readonly lifetimeMs: number | undefined;
  readonly highWaterMark: number;
  readonly live = new Set<Connection>();
  srvAddr = '';
  /** Where connection records go; set once the listener (and so srvAddr and metrics) exists. */
  private sink!: ClosedRecordSink;
  metrics!: ServerMetrics;
  /** Replaced by a config reload that changes the router (same label): new connections only. */
  private router: Router;
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly accessLog: Logger;
  private readonly net: NetServer;
  private closedRx = 0;
  private closedTx = 0;

  /** When several worker processes share the port (SO_REUSEPORT, each its own accept queue). */
  private readonly reusePort: boolean;

  /** TLS termination, when the server has `tls`. */
  readonly tls: TlsTerminator | undefined;
  /** PROXY header and SNI passthrough reading, and `{sni}` destination decisions. */
  readonly gate: PrefaceGate;

  constructor(opts: {
    config: ServerConfig; router: Router; registry: Registry; log: Logger; bufferSizeBytes: number; reusePort?: boolean;
    /** Key path of this server in the config, for errors (`routers[0].servers[1]`). */
    where?: string;
  }) {
    this.reusePort = opts.reusePort ?? false;
    this.config = opts.config;
    this.router = opts.router;
    this.rt = opts.router.label;
    this.registry = opts.registry;
    this.connectTimeoutMs = opts.config.connectTimeoutMs;
    this.lifetimeMs = opts.config.connectionLifetimeSecs === undefined ? undefined : opts.config.connectionLifetimeSecs * 1000;
    this.highWaterMark = opts.bufferSizeBytes;
    this.log = opts.log.child({ rt: this.rt });
    this.accessLog = this.log.child({ log: 'access' });
    // allowHalfOpen also reaches a TLS server's TLSSocket (copied from the raw socket), so a
    // client's FIN right after its last handshake flight never ends our side early.
    this.net = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: opts.bufferSizeBytes });
    this.net.on('connection', (s: Socket) => this.accept(s));
    const tc = opts.config.tls;
    if (tc) {
      // The handshake is part of the connect phase (reference §8.3), so connectTimeoutMs bounds it too.
      const handshakeMs = Math.min(tc.handshakeTimeoutMs, opts.config.connectTimeoutMs ?? Infinity);
      this.tls = new TlsTerminator(tc, `${opts.where ?? 'server'}.tls`, handshakeMs, {
        secure: (s, raw, us) => this.secure(s, raw, us),
        failed: (raw, cause, err, sni) => this.handshakeFailed(raw, cause, err, sni),
      });
    }
    this.gate = new PrefaceGate(opts.config, this.tls !== undefined, opts.registry);
  }

  /** Binds the listener; rejects with a LinkerdTcpError naming the address. */
  async listen(): Promise<void> {
    const { ip, port } = this.config;
    // exclusive: in a cluster worker, bind our own socket instead of asking the primary for its handle.
    this.net.listen({ host: ip, port, backlog: 1024, reusePort: this.reusePort, exclusive: this.reusePort });
    try {
      await once(this.net, 'listening');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new LinkerdTcpError('LISTEN', `cannot listen on ${addrKey(ip, port)} (router ${this.rt}): ${code}`, { cause: e });
    }
    this.net.on('error', (e) => this.log.error({ err: e.message }, 'listener error'));
    const a = this.net.address() as AddressInfo;
    this.srvAddr = addrKey(a.address, a.port);
    this.metrics = serverMetrics(this.registry, this.rt, this.srvAddr, this.tls !== undefined, {
      active: () => this.live.size + (this.tls?.handshaking.size ?? 0) + this.gate.prefacing.size,
      waiters: () => { let n = 0; for (const c of this.live) if (!c.open) n++; return n; },
    });
    this.gate.bind(this.rt, this.srvAddr);
    this.sink = { metrics: this.metrics, accessLog: this.accessLog, srvAddr: this.srvAddr, dstName: this.config.dstName };
    this.registry.onCollect(() => {
      const b = this.totalBytes();
      this.metrics.rxBytes.value = b.rx;
      this.metrics.txBytes.value = b.tx;
    });
    const idle = this.config.idleTimeoutMs;
    if (idle !== undefined) {
      // One coarse sweep per server instead of a timer reset per chunk: a connection is
      // closed between idleTimeoutMs and 1.25 × idleTimeoutMs after its last byte.
      this.idleSweep = setInterval(() => this.sweepIdle(idle), Math.max(50, idle / 4));
      this.idleSweep.unref();
    }
    this.log.info({ srv: this.srvAddr, dst: this.config.dstName, ...(this.tls ? { tls: this.tls.identities.map((i) => `${i.name}: ${i.names.join(' ')}`) } : {}) }, 'listening');
  }

  private idleSweep: NodeJS.Timeout | undefined;

  private sweepIdle(idleMs: number): void {
    const now = performance.now();
    for (const c of this.live) {
      if (!c.open) continue;
      const moved = c.bytesMoved();
      if (moved !== c.idleBytes) {
        c.idleBytes = moved;
        c.idleSince = now;
      } else if (now - c.idleSince >= idleMs) c.finish('idle');
    }
  }

  /** A config reload gives this server new connections' router (connections already routed keep theirs). */
  retarget(router: Router): void {
    this.router = router;
  }

  /** The totals of the server this one replaced in a config reload, so the byte counters carry on. */
  carry: (() => { rx: number; tx: number }) | undefined;

  /** Bytes read from / written to clients: closed connections plus live ones. */
  totalBytes(): { rx: number; tx: number } {
    const c = this.carry?.();
    let rx = this.closedRx + (c?.rx ?? 0), tx = this.closedTx + (c?.tx ?? 0);
    for (const c of this.live) { rx += c.client.bytesRead; tx += c.client.bytesWritten; }
    return { rx, tx };
  }

  get port(): number {
    return (this.net.address() as AddressInfo).port;
  }

  /** Creates (and subscribes) this server's destination before the first connection. */
  prepare(): void {
    if (!this.gate.sniRouting) this.router.destination(this.config.dstName);
    else if (this.config.defaultDstName !== undefined) this.router.destination(this.config.defaultDstName);
  }

  private accept(s: Socket): void {
    this.metrics.accepts.value++;
    const tls = this.tls;
    if (this.live.size + (tls?.handshaking.size ?? 0) + this.gate.prefacing.size >= this.config.maxConcurrency) {
      this.metrics.rejected.value++;
      s.on('error', noop);
      const client = this.accessLog.isLevelEnabled('info') ? addrKey(s.remoteAddress ?? '?', s.remotePort ?? 0) : ''; // gone after destroy
      s.destroy();
      if (this.log.isLevelEnabled('debug')) this.log.debug({ srv: this.srvAddr }, 'maxConcurrency reached; connection closed');
      // Every connection writes one record, this one too (the peer is read before the socket goes).
      recordRefused(this.sink, client, 'max_concurrency', null);
      return;
    }
    if (this.gate.spec) {
      // PROXY header and/or ClientHello first; the peer is needed for the trust check and the records.
      const peer = this.config.proxyProtocol || this.accessLog.isLevelEnabled('info') ? addrKey(s.remoteAddress ?? '?', s.remotePort ?? 0) : '';
      const at = performance.now();
      s.on('error', noop); // a reset mid-read ends in 'close', which the reader reports
      this.gate.start(s, (r) => this.prefaced(s, r, peer, at));
      return;
    }
    if (tls) {
      if (this.accessLog.isLevelEnabled('info')) void s.remoteAddress; // cached now: gone once a failed handshake closes the socket
      tls.accept(s); // continues in secure() or handshakeFailed()
      return;
    }
    const peer = this.accessLog.isLevelEnabled('info') ? addrKey(s.remoteAddress ?? '?', s.remotePort ?? 0) : '';
    const conn = new Connection(s, this, peer);
    this.live.add(conn);
    this.router.route(conn, this.config.dstName);
  }

  /** The PROXY header and/or ClientHello are read (or not): route, hand to TLS, or refuse. */
  private prefaced(s: Socket, r: PrefaceRead | PrefaceFailure, peer: string, at: number): void {
    if (r.kind === 'failed') {
      const unparsable = r.stage === 'sni' && (r.cause === 'not_tls' || r.cause === 'malformed' || r.cause === 'too_large');
      if (unparsable) this.routeDecided(s, { kind: 'failed', cause: r.cause, name: null }, peer, undefined, at, undefined, undefined);
      else {
        if (r.stage === 'sni') this.gate.failed('sni', r.cause);
        this.refused(s, peer, undefined, r.stage === 'proxy' ? 'proxy_protocol' : 'sni', r.cause, null, r.detail);
      }
      return;
    }
    const origin = originOf(r, peer);
    const client = origin ? originKey(origin) : peer;
    if (this.tls) {
      (s as OriginSocket).ltOrigin = { origin, client, at };
      this.tls.accept(s);
      return;
    }
    const h = r.hello;
    this.routeDecided(s, this.gate.decide(h?.sni), client, origin, at, undefined, h && h.alpn.length ? h.alpn.join(',') : undefined);
  }

  /** A destination is decided (or not): a Connection routed to it, or the socket refused. */
  private routeDecided(s: Socket, d: DstDecision, client: string, origin: Origin | undefined, at: number, sniSeen: string | undefined, alpn: string | undefined): void {
    let dst: string;
    if (d.kind === 'failed') {
      const f = this.gate.fallback(d.cause);
      if (f === undefined) return this.refused(s, client, origin, 'sni', d.cause, d.name, undefined);
      dst = f;
    } else dst = d.dst;
    const conn = new Connection(s, this, client, at);
    conn.origin = origin;
    conn.sni = d.kind === 'sni' ? d.name : d.kind === 'failed' ? (d.name ?? undefined) : sniSeen;
    conn.alpn = alpn;
    this.live.add(conn);
    if (d.kind !== 'sni') return this.router.route(conn, dst);
    const def = this.config.defaultDstName;
    if (def !== undefined) conn.fallback = () => { this.gate.fallback('unresolved'); this.router.route(conn, def); };
    this.router.routeSni(conn, dst);
  }

  /** Closed before routing (PROXY or SNI failure): counted, logged with the name asked for, one record. */
  private refused(s: Socket, client: string, origin: Origin | undefined, reason: 'proxy_protocol' | 'sni', cause: string, sni: string | null, detail: string | undefined): void {
    s.destroy();
    this.metrics.failures.value++;
    if (this.log.isLevelEnabled('debug')) this.log.debug({ srv: this.srvAddr, client, reason, cause, sni, err: detail ?? null }, 'connection refused before routing');
    if (this.accessLog.isLevelEnabled('info')) {
      this.accessLog.info({
        srv: this.srvAddr, client, ...(this.config.proxyProtocol ? { proxy: origin?.peer ?? null } : {}),
        dst: this.config.dstName, endpoint: null, sni, alpn: null,
        rxBytes: s.bytesRead, txBytes: 0, connectMs: null, durationMs: null, reason, error: cause,
      }, 'connection closed');
    }
    this.maybeDrained();
  }

  private maybeDrained(): void {
    if (!this.idle()) return;
    for (const w of this.idleWaiters) w();
    this.idleWaiters.clear();
  }

  private idle(): boolean {
    return this.live.size === 0 && (this.tls?.handshaking.size ?? 0) === 0 && this.gate.prefacing.size === 0;
  }

  private secure(s: TLSSocket, raw: Socket, handshakeUs: number): void {
    this.metrics.tlsHandshakeUs?.record(handshakeUs);
    const o = (raw as OriginSocket).ltOrigin;
    const at = o?.at ?? performance.now() - handshakeUs / 1000;
    const sni = s.servername || undefined, alpn = s.alpnProtocol || undefined;
    if (o || this.gate.sniRouting) {
      const peer = o?.client ?? addrKey(raw.remoteAddress ?? '?', raw.remotePort ?? 0);
      this.routeDecided(s, this.gate.decide(sni), peer, o?.origin, at, sni, alpn);
      return;
    }
    const peer = this.accessLog.isLevelEnabled('info') ? addrKey(raw.remoteAddress ?? '?', raw.remotePort ?? 0) : '';
    const conn = new Connection(s, this, peer, at);
    conn.sni = sni;
    conn.alpn = alpn;
    this.live.add(conn);
    this.router.route(conn, this.config.dstName);
  }

  private handshakeFailed(raw: Socket | undefined, cause: HandshakeFailure, err: Error, sni: string | undefined): void {
    const client = raw ? ((raw as OriginSocket).ltOrigin?.client ?? addrKey(raw.remoteAddress ?? '?', raw.remotePort ?? 0)) : null;
    recordTlsFailure(this.sink, this.registry, this.log, this.rt, client, cause, sni, err.message);
    this.maybeDrained();
  }

  connectionClosed(conn: Connection): void {
    this.live.delete(conn);
    recordClosed(this.sink, conn, this.config.proxyProtocol ? { proxy: conn.origin?.peer ?? null } : undefined);
    this.closedRx += conn.client.bytesRead;
    this.closedTx += conn.client.bytesWritten;
    this.maybeDrained();
  }

  private readonly idleWaiters = new Set<() => void>();

  /** Stops accepting; open connections continue. */
  stopAccepting(): void {
    if (this.net.listening) this.net.close();
  }

  /** Stops the idle sweep (after draining). */
  close(): void {
    clearInterval(this.idleSweep);
  }

  /** Resolves once no connection is open, handshaking or reading its preface (at once if none is). */
  whenIdle(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.add(resolve));
  }

  /** Waits until every connection has closed, or `deadline` (ms since epoch), then cuts the rest. */
  async drain(deadlineMs: number): Promise<void> {
    if (!this.idle()) await idleOrDeadline(this.whenIdle(), deadlineMs);
    this.tls?.cutHandshakes();
    this.gate.cut();
    for (const c of [...this.live]) c.finish('shutdown');
  }
}

function noop(): void {}
