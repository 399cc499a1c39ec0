// SNI passthrough and PROXY headers on the native engine, with the same pure parsers and
// builders as the node engine (src/wire/): the addon peeks the client's first bytes
// (MSG_PEEK, so they stay in the socket and splice forwards the ClientHello untouched) and
// writes a header to the backend before forwarding; nothing is parsed in C.
// A peek reports whatever is readable, again at once while nothing new arrives, so an
// incomplete hello is re-peeked after a short, growing pause (1 ms … 32 ms). Reading is
// bounded by handshakeTimeoutMs through one coarse sweep per server, not a timer each. The
// first peek asks for 4 KiB (hellos are smaller), a fuller one for up to MAX_INPUT_BYTES.
import type { ServerConfig } from '../config/types.ts';
import type { Registry } from '../metrics/registry.ts';
import { PrefaceGate, type SniFailure } from '../server/preface-gate.ts';
import { MAX_INPUT_BYTES, parseClientHello } from '../wire/client-hello.ts';
import { buildProxyV1, buildProxyV2 } from '../wire/proxy-protocol-build.ts';
import type { NativeBinding } from './native-binding.ts';

const FIRST_PEEK_BYTES = 4096;

/** The slice of a native connection the SNI reader drives. */
export interface SniConn {
  readonly id: number;
  sni: string | undefined;
  alpn: string | undefined;
  peekHandler: ((bytes: number, eof: boolean) => void) | undefined;
  readonly done: boolean;
}

/** What the server does once a destination is decided (or not). */
export interface SniRouting<C extends SniConn> {
  /** Routes to `dst`; `sni` routes go through the router's LRU, with `fallback` for names with no endpoints. */
  routeTo(c: C, dst: string, sni: boolean, fallback: string | undefined): void;
  /** Closes before routing: access-log reason `sni`, error `cause`. */
  refuse(c: C, cause: SniFailure): void;
}

export class NativeSni<C extends SniConn> {
  readonly gate: PrefaceGate;
  private readonly binding: NativeBinding;
  private readonly timeoutMs: number;
  private readonly out: SniRouting<C>;
  /** Connections still reading their hello, with when they started (performance.now()). */
  private readonly reading = new Map<C, number>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(config: ServerConfig, registry: Registry, binding: NativeBinding, out: SniRouting<C>) {
    this.gate = new PrefaceGate(config, false, registry);
    this.out = out;
    this.binding = binding;
    this.timeoutMs = Math.min(config.handshakeTimeoutMs ?? 10_000, config.connectTimeoutMs ?? Infinity);
  }

  /** Reads the hello of a new connection, then routes or refuses it. */
  start(c: C): void {
    let delay = 1, last = -1, max = FIRST_PEEK_BYTES;
    this.reading.set(c, performance.now());
    if (!this.sweep) this.sweep = setInterval(() => this.expire(), Math.max(25, this.timeoutMs / 4)).unref();
    const peek = (): void => {
      const r = this.binding.peek(c.id, max);
      if (r !== 0 && !c.done) this.fail(c, 'eof');
    };
    c.peekHandler = (bytes, eof) => {
      if (c.done) return void this.reading.delete(c);
      const buf = eof ? undefined : this.binding.peeked(c.id);
      if (!buf || bytes === 0) return this.fail(c, 'eof');
      const h = parseClientHello(buf);
      if (h.kind === 'need-more') {
        if (buf.length >= MAX_INPUT_BYTES) return this.fail(c, 'too_large');
        if (buf.length >= max) { max = MAX_INPUT_BYTES; return peek(); } // more is there already: look further
        delay = buf.length > last ? 1 : Math.min(delay * 2, 32);
        last = buf.length;
        setTimeout(() => { if (!c.done) peek(); }, delay);
        return;
      }
      this.reading.delete(c);
      c.peekHandler = undefined;
      if (h.kind === 'error') return this.fail(c, h.cause);
      c.alpn = h.alpn.length ? h.alpn.join(',') : undefined;
      const d = this.gate.decide(h.sni);
      if (d.kind === 'failed') {
        c.sni = d.name ?? undefined;
        return this.fail(c, d.cause);
      }
      c.sni = d.kind === 'sni' ? d.name : undefined;
      this.out.routeTo(c, d.dst, d.kind === 'sni', d.kind === 'sni' ? this.gate.config.defaultDstName : undefined);
    };
    peek();
  }

  /** Fails the connections past handshakeTimeoutMs; stops when none is reading. */
  private expire(): void {
    const limit = performance.now() - this.timeoutMs;
    for (const [c, at] of this.reading) {
      if (c.done) this.reading.delete(c);
      else if (at <= limit) this.fail(c, 'timeout');
    }
    if (this.reading.size === 0) {
      clearInterval(this.sweep);
      this.sweep = undefined;
    }
  }

  /** No usable name: to defaultDstName when configured (bytes still untouched in the socket), else closed. */
  private fail(c: C, cause: SniFailure): void {
    this.reading.delete(c);
    c.peekHandler = undefined;
    const to = cause === 'timeout' || cause === 'eof' ? (this.gate.failed('sni', cause), undefined) : this.gate.fallback(cause);
    if (to === undefined) this.out.refuse(c, cause);
    else this.out.routeTo(c, to, false, undefined);
  }
}

/** The PROXY header for a native connection: client `ip:port` from the engine, the listener's address. */
export function nativeProxyHeader(version: 'v1' | 'v2', peer: string | undefined, listener: string, sni: string | undefined): Buffer {
  const split = (s: string | undefined): { address: string; port: number } | undefined => {
    const m = s === undefined ? null : /^\[?([^\]]*)\]?:(\d+)$/.exec(s);
    return m ? { address: m[1]!, port: Number(m[2]) } : undefined;
  };
  const source = split(peer), destination = split(listener);
  const e = source && destination ? { source, destination } : undefined;
  return version === 'v1' ? buildProxyV1(e) : buildProxyV2(e, { authority: sni });
}
