// Reads what comes before routing on a raw accepted socket: a PROXY protocol header (from
// trusted peers only) and, for SNI passthrough, the ClientHello, using the pure parsers of
// src/wire/. Bounded in time (one timer per socket) and in size (the parsers' bounds).
// On success the socket is paused with every byte after the PROXY header put back
// (unshift), so the pump, or the TLS server, sees the stream from the ClientHello on.
import { BlockList, isIPv6, type Socket } from 'node:net';
import { type ClientHello, type HelloFailure, MAX_INPUT_BYTES, parseClientHello } from '../wire/client-hello.ts';
import { unmapV4 } from '../wire/ip-bytes.ts';
import { parseProxyHeader, type ProxyAccept, type ProxyFailure, type ProxyHeader } from '../wire/proxy-protocol.ts';

export type PrefaceFailure = { readonly kind: 'failed'; readonly detail: string } & (
  | { readonly stage: 'proxy'; readonly cause: ProxyFailure | 'untrusted' | 'timeout' | 'eof' }
  | { readonly stage: 'sni'; readonly cause: HelloFailure | 'timeout' | 'eof' });

export interface PrefaceRead {
  readonly kind: 'ok';
  readonly proxy: ProxyHeader | undefined;
  readonly hello: ClientHello | undefined;
}

export interface PrefaceSpec {
  readonly proxy: { readonly accept: ProxyAccept; readonly trusted: BlockList } | undefined;
  readonly hello: boolean;
  readonly timeoutMs: number;
}

/** A BlockList of the trusted CIDRs (already validated by the config). */
export function trustList(cidrs: readonly string[]): BlockList {
  const b = new BlockList();
  for (const c of cidrs) {
    const [ip, bits] = c.split('/') as [string, string];
    b.addSubnet(ip, Number(bits), isIPv6(ip) ? 'ipv6' : 'ipv4');
  }
  return b;
}

export function trusted(list: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const a = unmapV4(address);
  return list.check(a, isIPv6(a) ? 'ipv6' : 'ipv4');
}

interface PrefaceSocket extends Socket {
  preface?: Reading | undefined;
}

interface Reading {
  readonly spec: PrefaceSpec;
  readonly done: (r: PrefaceRead | PrefaceFailure) => void;
  buf: Buffer;
  proxy: ProxyHeader | undefined;
  stage: 'proxy' | 'sni';
  timer: NodeJS.Timeout;
}

/** Starts reading; `done` is called exactly once (not after the socket is destroyed by the caller's drain). */
export function readPreface(s: Socket, spec: PrefaceSpec, done: Reading['done']): void {
  const ps = s as PrefaceSocket;
  if (spec.proxy && !trusted(spec.proxy.trusted, s.remoteAddress)) {
    done({ kind: 'failed', stage: 'proxy', cause: 'untrusted', detail: `PROXY header not accepted from ${s.remoteAddress ?? '?'}` });
    return;
  }
  const r: Reading = {
    spec, done, buf: Buffer.alloc(0), proxy: undefined, stage: spec.proxy ? 'proxy' : 'sni',
    timer: setTimeout(onTimeout, spec.timeoutMs, ps),
  };
  ps.preface = r;
  s.on('data', onData);
  s.on('end', onEnd);
  s.on('close', onEnd); // a reset: 'error' (the caller's listener), then 'close' without 'end'
  s.resume();
}

function finish(s: PrefaceSocket, out: PrefaceRead | PrefaceFailure, rest?: Buffer): void {
  const r = s.preface;
  if (!r) return;
  s.preface = undefined;
  clearTimeout(r.timer);
  s.removeListener('data', onData);
  s.removeListener('end', onEnd);
  s.removeListener('close', onEnd);
  s.pause();
  if (rest && rest.length) s.unshift(rest);
  r.done(out);
}

function onData(this: PrefaceSocket, chunk: Buffer): void {
  const r = this.preface;
  if (!r) return;
  r.buf = r.buf.length ? Buffer.concat([r.buf, chunk]) : chunk;
  if (r.stage === 'proxy') {
    const p = parseProxyHeader(r.buf, r.spec.proxy!.accept);
    if (p.kind === 'need-more') return;
    if (p.kind === 'error') return finish(this, { kind: 'failed', stage: 'proxy', cause: p.cause, detail: p.detail });
    r.proxy = p;
    r.buf = r.buf.subarray(p.length);
    if (!r.spec.hello) return finish(this, { kind: 'ok', proxy: p, hello: undefined }, r.buf);
    r.stage = 'sni';
    if (r.buf.length === 0) return;
  }
  const h = parseClientHello(r.buf);
  if (h.kind === 'need-more') {
    if (r.buf.length > MAX_INPUT_BYTES) finish(this, { kind: 'failed', stage: 'sni', cause: 'too_large', detail: 'ClientHello input bound exceeded' }, r.buf);
    return;
  }
  if (h.kind === 'error') return finish(this, { kind: 'failed', stage: 'sni', cause: h.cause, detail: h.detail }, r.buf); // kept for a defaultDstName
  finish(this, { kind: 'ok', proxy: r.proxy, hello: h }, r.buf);
}

function onEnd(this: PrefaceSocket): void {
  const r = this.preface;
  if (r) finish(this, { kind: 'failed', stage: r.stage, cause: 'eof', detail: `client closed after ${r.buf.length} bytes` });
}

function onTimeout(s: PrefaceSocket): void {
  const r = s.preface;
  if (r) finish(s, { kind: 'failed', stage: r.stage, cause: 'timeout', detail: `no complete ${r.stage === 'proxy' ? 'PROXY header' : 'ClientHello'} within ${r.spec.timeoutMs} ms (${r.buf.length} bytes)` });
}

/** Stops reading (the caller is closing the socket, e.g. shutdown); `done` is not called. */
export function abandonPreface(s: Socket): void {
  const ps = s as PrefaceSocket;
  if (ps.preface) {
    clearTimeout(ps.preface.timer);
    ps.preface = undefined;
  }
}
