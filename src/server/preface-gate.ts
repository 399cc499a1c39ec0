// A server's decisions before routing: whether to read a PROXY header and/or a ClientHello
// (server/preface.ts), what the PROXY header tells about the client, and which destination
// a `{sni}` dstName names for a given SNI (validated, lowercased) or why there is none.
// Counts each failure by cause; the server writes the access-log record.
import type { Socket } from 'node:net';
import type { ServerConfig } from '../config/types.ts';
import type { Origin } from '../connector/proxy-header.ts';
import type { Counter, Registry } from '../metrics/registry.ts';
import { addrKey } from '../naming/resolution.ts';
import { expandSni, hasSniPlaceholder, printable, validateSniName } from '../wire/sni-name.ts';
import { abandonPreface, type PrefaceFailure, type PrefaceRead, type PrefaceSpec, readPreface, trustList } from './preface.ts';

export type SniFailure = 'no_sni' | 'invalid_name' | 'not_tls' | 'malformed' | 'too_large' | 'timeout' | 'eof' | 'unresolved';

export type DstDecision =
  | { readonly kind: 'fixed'; readonly dst: string }
  | { readonly kind: 'sni'; readonly dst: string; readonly name: string }
  | { readonly kind: 'failed'; readonly cause: SniFailure; readonly name: string | null };

export class PrefaceGate {
  /** What to read before routing; undefined when nothing is (the common, cheapest case). */
  readonly spec: PrefaceSpec | undefined;
  readonly sniRouting: boolean;
  readonly prefacing = new Set<Socket>();
  readonly config: ServerConfig;
  private readonly registry: Registry;
  private labels: { rt: string; srv_addr: string } = { rt: '', srv_addr: '' };
  private defaulted: Counter | undefined;

  constructor(config: ServerConfig, terminating: boolean, registry: Registry) {
    this.config = config;
    this.registry = registry;
    this.sniRouting = hasSniPlaceholder(config.dstName);
    const pp = config.proxyProtocol;
    const hello = this.sniRouting && !terminating;
    this.spec = pp || hello
      ? {
        proxy: pp ? { accept: pp.accept, trusted: trustList(pp.trustedCidrs) } : undefined,
        hello,
        timeoutMs: Math.min(config.handshakeTimeoutMs ?? 10_000, config.connectTimeoutMs ?? Infinity),
      }
      : undefined;
  }

  /** After listen: metric labels, and the series operators will look for. */
  bind(rt: string, srvAddr: string): void {
    this.labels = { rt, srv_addr: srvAddr };
    if (this.sniRouting) this.defaulted = this.registry.counter('l5d:srv:sni:default', this.labels);
  }

  start(s: Socket, done: (r: PrefaceRead | PrefaceFailure) => void): void {
    this.prefacing.add(s);
    readPreface(s, this.spec!, (r) => {
      this.prefacing.delete(s);
      if (r.kind === 'failed' && r.stage === 'proxy') this.failed('proxy', r.cause); // SNI failures: counted by fallback()
      else if (r.kind === 'ok' && r.proxy) this.registry.counter('l5d:srv:proxy_protocol:accepted', { ...this.labels, version: `v${r.proxy.version}` }).value++;
      done(r);
    });
  }

  failed(stage: 'sni' | 'proxy', cause: string): void {
    this.registry.counter(stage === 'sni' ? 'l5d:srv:sni:failure' : 'l5d:srv:proxy_protocol:failure', { ...this.labels, cause }).value++;
  }

  /** Cuts every socket still being read (shutdown). */
  cut(): void {
    for (const s of [...this.prefacing]) {
      abandonPreface(s);
      s.destroy();
    }
    this.prefacing.clear();
  }

  /** The destination for a connection whose client sent `raw` as SNI (undefined: none). */
  decide(raw: string | undefined): DstDecision {
    if (!this.sniRouting) return { kind: 'fixed', dst: this.config.dstName };
    if (raw === undefined || raw === '') return { kind: 'failed', cause: 'no_sni', name: null };
    const v = validateSniName(raw);
    if (v.kind === 'error') return { kind: 'failed', cause: 'invalid_name', name: printable(raw) };
    return { kind: 'sni', dst: expandSni(this.config.dstName, v.name), name: v.name };
  }

  /** The configured fallback for a failed decision (counted), or undefined. */
  fallback(cause: SniFailure): string | undefined {
    this.failed('sni', cause);
    const d = this.config.defaultDstName;
    if (d !== undefined && this.defaulted) this.defaulted.value++;
    return d;
  }
}

/** The client as a PROXY header tells it (PROXY over TCP only; LOCAL and UNKNOWN keep the socket's). */
export function originOf(r: PrefaceRead, peer: string): Origin | undefined {
  const p = r.proxy;
  if (!p || p.command !== 'proxy' || p.source?.kind !== 'inet' || p.destination?.kind !== 'inet') return undefined;
  return { source: { address: p.source.address, port: p.source.port }, destination: { address: p.destination.address, port: p.destination.port }, peer };
}

export function originKey(o: Origin): string {
  return addrKey(o.source.address, o.source.port);
}
