// What a native connection reads before routing, with the node engine's pure parsers
// (src/wire/): a PROXY header from a trusted peer (peeked, parsed here, then exactly its
// length dropped from the socket by the addon) and, for SNI passthrough, the ClientHello
// (peeked only: it stays in the socket and splice forwards it untouched). Nothing is parsed
// in C. An incomplete peek asks for at least the bytes the parser still needs and the addon
// waits for them by readiness (SO_RCVLOWAT), not by re-peeking. Reading is bounded by
// handshakeTimeoutMs through one coarse sweep per server, not a timer per connection.
import type { ServerConfig } from '../config/types.ts';
import type { Origin } from '../connector/proxy-header.ts';
import type { Counter, Registry } from '../metrics/registry.ts';
import { originOf, PrefaceGate, type SniFailure } from '../server/preface-gate.ts';
import { trusted } from '../server/preface.ts';
import { MAX_INPUT_BYTES, parseClientHello } from '../wire/client-hello.ts';
import { buildProxyV1, buildProxyV2 } from '../wire/proxy-protocol-build.ts';
import { parseProxyHeader, type ProxyFailure } from '../wire/proxy-protocol.ts';
import type { NativeBinding } from './native-binding.ts';

const FIRST_PEEK_BYTES = 4096;
/** A whole PROXY v2 header (16 bytes and a 16-bit length): PEEK_MAX in native/engine.h. */
const PROXY_MAX_BYTES = 16 + 0xffff;

/** The slice of a native connection the reader drives. */
export interface PrefaceConn {
  readonly id: number;
  /** The client as the access log shows it: the socket's peer, or the PROXY header's source. */
  peer: string;
  origin: Origin | undefined;
  sni: string | undefined;
  alpn: string | undefined;
  peekHandler: ((bytes: number, eof: boolean) => void) | undefined;
  readonly done: boolean;
}

/** What the server does once a destination is decided (or not). */
export interface PrefaceRouting<C extends PrefaceConn> {
  /** Routes to `dst`; `sni` routes go through the router's LRU, with `fallback` for names with no endpoints. */
  routeTo(c: C, dst: string, sni: boolean, fallback: string | undefined): void;
  /** Closes before routing: access-log reason `sni` or `proxy_protocol`, error `cause`. */
  refuse(c: C, reason: 'sni' | 'proxy_protocol', cause: string): void;
  /** TLS servers: the PROXY header is read, the handshake comes next (it decides the route). */
  afterProxy?(c: C): void;
}

export class NativePreface<C extends PrefaceConn> {
  readonly gate: PrefaceGate;
  private readonly binding: NativeBinding;
  private readonly registry: Registry;
  private readonly timeoutMs: number;
  private readonly out: PrefaceRouting<C>;
  private readonly accepted: (Counter | undefined)[] = [];
  private labels: { rt: string; srv_addr: string } = { rt: '', srv_addr: '' };
  /** Connections still reading, with when they were accepted (engine clock, binding.hrNow()) and their stage. */
  private readonly reading = new Map<C, { at: number; stage: 'proxy' | 'sni' }>();
  private sweep: NodeJS.Timeout | undefined;

  /** `terminating`: a TLS server (only a PROXY header is read here; its handshake names the route). */
  constructor(config: ServerConfig, registry: Registry, binding: NativeBinding, out: PrefaceRouting<C>, terminating = false) {
    this.gate = new PrefaceGate(config, terminating, registry);
    this.registry = registry;
    this.out = out;
    this.binding = binding;
    this.timeoutMs = this.gate.spec?.timeoutMs ?? 10_000;
  }

  /** After listen: metric labels. */
  bind(rt: string, srvAddr: string): void {
    this.labels = { rt, srv_addr: srvAddr };
    this.gate.bind(rt, srvAddr);
  }

  /** Reads what the server expects before routing (PROXY header, ClientHello), then routes or refuses. */
  start(c: C, at: number): void {
    const proxy = this.gate.spec?.proxy;
    if (proxy) {
      const address = /^\[?([^\]]*)\]?:\d+$/.exec(c.peer)?.[1];
      if (!trusted(proxy.trusted, address)) return this.failProxy(c, 'untrusted');
    }
    this.reading.set(c, { at, stage: proxy ? 'proxy' : 'sni' });
    this.sweep ??= setInterval(() => this.expire(), Math.max(25, this.timeoutMs / 4)).unref();
    if (proxy) this.readProxy(c);
    else this.readHello(c);
  }

  private peek(c: C, max: number, min: number, stage: 'proxy' | 'sni'): void {
    const r = this.binding.peek(c.id, max, min);
    if (r !== 0 && !c.done) this.fail(c, stage, 'eof');
  }

  private readProxy(c: C): void {
    const accept = this.gate.spec!.proxy!.accept;
    let max = FIRST_PEEK_BYTES;
    c.peekHandler = (bytes, eof) => {
      if (c.done) return void this.reading.delete(c);
      const buf = eof ? undefined : this.binding.peeked(c.id);
      if (!buf || bytes === 0) return this.fail(c, 'proxy', 'eof');
      const p = parseProxyHeader(buf, accept);
      if (p.kind === 'need-more') {
        const min = buf.length + p.needed;
        if (min > PROXY_MAX_BYTES) return this.fail(c, 'proxy', 'malformed');
        if (min > max) max = PROXY_MAX_BYTES;
        return this.peek(c, max, min, 'proxy');
      }
      if (p.kind === 'error') return this.fail(c, 'proxy', p.cause);
      const r = this.binding.drop(c.id, p.length);
      if (r !== 0) return c.done ? undefined : this.fail(c, 'proxy', 'eof');
      const i = p.version - 1;
      (this.accepted[i] ??= this.registry.counter('l5d:srv:proxy_protocol:accepted', { ...this.labels, version: `v${p.version}` })).value++;
      const origin = originOf({ kind: 'ok', proxy: p, hello: undefined }, c.peer);
      if (origin) {
        c.origin = origin;
        c.peer = /:/.test(origin.source.address) ? `[${origin.source.address}]:${origin.source.port}` : `${origin.source.address}:${origin.source.port}`;
      }
      if (this.gate.spec!.hello) {
        this.reading.get(c)!.stage = 'sni';
        return this.readHello(c);
      }
      this.done(c);
      if (this.out.afterProxy) return this.out.afterProxy(c);
      this.out.routeTo(c, this.gate.config.dstName, false, undefined);
    };
    this.peek(c, max, 1, 'proxy');
  }

  private readHello(c: C): void {
    let max = FIRST_PEEK_BYTES;
    c.peekHandler = (bytes, eof) => {
      if (c.done) return void this.reading.delete(c);
      const buf = eof ? undefined : this.binding.peeked(c.id);
      if (!buf || bytes === 0) return this.fail(c, 'sni', 'eof');
      const h = parseClientHello(buf);
      if (h.kind === 'need-more') {
        if (buf.length >= MAX_INPUT_BYTES) return this.fail(c, 'sni', 'too_large');
        if (buf.length >= max) max = MAX_INPUT_BYTES; // more may be there already: look further
        return this.peek(c, max, Math.min(max, buf.length + Math.max(1, h.needed)), 'sni');
      }
      this.done(c);
      if (h.kind === 'error') return this.fail(c, 'sni', h.cause);
      c.alpn = h.alpn.length ? h.alpn.join(',') : undefined;
      const d = this.gate.decide(h.sni);
      if (d.kind === 'failed') {
        c.sni = d.name ?? undefined;
        return this.fail(c, 'sni', d.cause);
      }
      c.sni = d.kind === 'sni' ? d.name : undefined;
      this.out.routeTo(c, d.dst, d.kind === 'sni', d.kind === 'sni' ? this.gate.config.defaultDstName : undefined);
    };
    this.peek(c, max, 1, 'sni');
  }

  private done(c: C): void {
    this.reading.delete(c);
    c.peekHandler = undefined;
  }

  /** Fails the connections past handshakeTimeoutMs; stops when none is reading. */
  private expire(): void {
    const limit = this.binding.hrNow() - this.timeoutMs;
    for (const [c, r] of this.reading) {
      if (c.done) this.reading.delete(c);
      else if (r.at <= limit) this.fail(c, r.stage, 'timeout');
    }
    if (this.reading.size === 0) {
      clearInterval(this.sweep);
      this.sweep = undefined;
    }
  }

  private fail(c: C, stage: 'proxy' | 'sni', cause: string): void {
    if (stage === 'proxy') this.failProxy(c, cause as ProxyFailure | 'untrusted' | 'timeout' | 'eof');
    else this.failSni(c, cause as SniFailure);
  }

  private failProxy(c: C, cause: ProxyFailure | 'untrusted' | 'timeout' | 'eof'): void {
    this.done(c);
    this.gate.failed('proxy', cause);
    this.out.refuse(c, 'proxy_protocol', cause);
  }

  /** No usable name: to defaultDstName when configured (bytes still untouched in the socket), else closed. */
  private failSni(c: C, cause: SniFailure): void {
    this.done(c);
    const to = cause === 'timeout' || cause === 'eof' ? (this.gate.failed('sni', cause), undefined) : this.gate.fallback(cause);
    if (to === undefined) this.out.refuse(c, 'sni', cause);
    else this.out.routeTo(c, to, false, undefined);
  }
}

/** The PROXY header for a native connection: the received origin, else the client `ip:port` from the engine and the listener's address. */
export function nativeProxyHeader(version: 'v1' | 'v2', origin: Origin | undefined, peer: string | undefined, listener: string, sni: string | undefined, alpn?: string): Buffer {
  const split = (s: string | undefined): { address: string; port: number } | undefined => {
    const m = s === undefined ? null : /^\[?([^\]]*)\]?:(\d+)$/.exec(s);
    return m ? { address: m[1]!, port: Number(m[2]) } : undefined;
  };
  const source = split(peer), destination = split(listener);
  const e = origin ?? (source && destination ? { source, destination } : undefined);
  return version === 'v1' ? buildProxyV1(e) : buildProxyV2(e, { alpn, authority: sni });
}
