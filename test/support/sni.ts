// Helpers for the SNI and PROXY protocol tests: TLS backends holding the test PKI's keys,
// a backend recording every byte, TLS and raw clients, metrics. Cleanups run after the file.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';
import { connect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { deadline, type LogLine, type Proxy, startBackend, startProxy } from './harness.ts';

export const PKI = new URL('../fixtures/tls/', import.meta.url).pathname;
export const pem = (f: string): string => readFileSync(join(PKI, f), 'utf8');
export const CA = pem('ca.pem');
export const HELLO = Buffer.from(readFileSync(new URL('../fixtures/client-hello/openssl-tls13-sni-alpn.hex', import.meta.url), 'utf8').trim(), 'hex');
export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Cleanups registered at creation, run after the test file's tests (each file imports its own copy). */
export const cleanup: (() => unknown)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

/** A TLS echo backend with one identity (the only place its key lives). */
export async function tlsBackend(name: 'rsa' | 'ec'): Promise<number> {
  const srv = createTlsServer({ key: pem(`${name}.key`), cert: pem(`${name}.pem`) + pem('chain.pem'), ALPNProtocols: ['h2', 'http/1.1'] }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanup.push(() => srv.close());
  return (srv.address() as { port: number }).port;
}

/** A TCP backend that records every byte each connection sends until it closes. */
export async function recorder(): Promise<{ port: number; got: Promise<Buffer>[] }> {
  const got: Promise<Buffer>[] = [];
  const be = await startBackend((s: Socket) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    got.push(new Promise((r) => s.on('close', () => r(Buffer.concat(chunks)))));
    s.on('end', () => s.end());
  });
  cleanup.push(() => be.close());
  return { port: be.port, got };
}

/** Starts the CLI; with `engine`, on that engine (LINKERD_TCP_ENGINE), checked in its startup log. */
export async function proxyWith(yaml: string, n = 1, engine?: 'node' | 'native'): Promise<{ proxy: Proxy; ports: number[] }> {
  const p = await startProxy(yaml, n, engine ? { LINKERD_TCP_ENGINE: engine } : {});
  cleanup.push(() => p.proxy.stop());
  if (engine) {
    const l = await p.proxy.waitForLog((x) => x.msg === 'engine', 5000, 'the engine log line');
    if (l['engine'] !== engine) throw new Error(`expected the ${engine} engine, got ${String(l['engine'])} (${String(l['why'])})`);
  }
  return p;
}

export async function metrics(p: Proxy): Promise<string> {
  const admin = String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);
  return deadline(5000, 'metrics', fetch(`http://${admin}/metrics`).then((r) => r.text()));
}
export const metric = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);

export function tlsClient(port: number, servername: string | undefined, alpn?: string[]): Promise<{ s: TLSSocket; cn: string; alpn: string | false }> {
  const s = connect({ host: '127.0.0.1', port, ca: CA, ...(servername ? { servername } : {}), ...(alpn ? { ALPNProtocols: alpn } : {}),
    checkServerIdentity: () => undefined });
  cleanup.push(() => s.destroy());
  return deadline(5000, `TLS to ${servername}`, new Promise((resolve, reject) => {
    s.once('secureConnect', () => resolve({ s, cn: String(s.getPeerCertificate().subject?.CN), alpn: s.alpnProtocol ?? false }));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the handshake')));
  }));
}

export async function roundTrip(s: Socket, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(s, 'end');
  s.end(data);
  await deadline(10_000, 'round trip', ended);
  return Buffer.concat(chunks);
}

/** Opens a raw TCP connection, writes `bytes`, and waits for the proxy to close it. */
export async function rawClosed(port: number, bytes: Buffer | undefined): Promise<void> {
  const s = netConnect(port, '127.0.0.1');
  cleanup.push(() => s.destroy());
  s.on('error', () => {});
  s.resume();
  if (bytes) s.write(bytes);
  await deadline(5000, 'proxy to close the connection', new Promise((r) => s.once('close', r)));
}

export const closedWith = (reason: string, error?: string) => (l: LogLine): boolean =>
  l.msg === 'connection closed' && l['reason'] === reason && (error === undefined || l['error'] === error);

