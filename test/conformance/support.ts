// Shared pieces of the conformance suite: a proxy started on one engine (checked from its
// startup log), clients, admin scraping, and cleanup. Each scenario file takes the engine
// as a parameter, so the same tests run against `native` and `node`.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { loadNative } from '../../src/engine/native-binding.ts';
import { planEngines } from '../../src/engine/select.ts';
import { type Backend, deadline, type Proxy, startBackend, startProxy } from '../support/harness.ts';

/** `threads`: the native engine with `threads: true` and `workers: 2` (one process, two native I/O threads). */
export type Engine = 'native' | 'node' | 'threads';

export function dial(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  return deadline(5000, 'client connect', once(s, 'connect').then(() => s));
}

/** Everything the socket receives until EOF (or close). */
export function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => {
    const done = (): void => resolve(Buffer.concat(chunks));
    s.once('end', done);
    s.once('close', done);
  });
}

/** The value of one exact metric line (name plus rendered labels), or undefined. */
export function metric(text: string, nameAndLabels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(nameAndLabels + ' '));
  return line === undefined ? undefined : Number(line.slice(nameAndLabels.length + 1));
}

export const accessRecords = (p: Proxy): Record<string, unknown>[] => p.logs.filter((l) => l.msg === 'connection closed' && l['log'] === 'access');

/** A router `t` with one server on /svc/be → `dst`, plus extra YAML under the server and the router. */
export function config(dst: string, opts: { server?: string; client?: string; top?: string } = {}): string {
  return `
admin: {graceSecs: 5, port: 0}
${opts.top ?? ''}
routers:
- label: t
  dtab: |
    /svc/be => ${dst};
  servers:
  - port: 0
    dstName: /svc/be${opts.server ?? ''}
${opts.client ? `  client:\n${opts.client}` : ''}`;
}

export const inet = (...ports: number[]): string => ports.map((p) => `/$/inet/127.0.0.1/${p}`).join(' & ');

/** Per-describe cleanup plus helpers bound to one engine. */
export function harness(engine: Engine) {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  return {
    cleanup,
    async backend(h: (s: Socket) => void): Promise<Backend> {
      const b = await startBackend(h);
      cleanup.push(() => b.close());
      return b;
    },
    /** Starts the CLI on `cfg` with LINKERD_TCP_ENGINE=engine and checks that it runs there. */
    async proxy(cfg: string, env: NodeJS.ProcessEnv = {}): Promise<{ proxy: Proxy; port: number; admin: string }> {
      const threads = engine === 'threads';
      const { proxy, ports } = await startProxy(threads ? `threads: true\nworkers: 2\n${cfg}` : cfg, 1, { LINKERD_TCP_ENGINE: threads ? 'native' : engine, ...env });
      cleanup.push(() => proxy.stop('SIGKILL'));
      const e = await proxy.waitForLog((l) => l.msg === 'engine');
      assert.equal(e['engine'], threads ? 'native' : engine, `the server runs on the ${engine} engine`);
      if (threads) assert.match(String(e['why']), /on the I\/O threads|main thread/, 'threads: the plan says where the server runs');
      const a = await proxy.waitForLog((l) => l.msg === 'admin listening');
      return { proxy, port: ports[0]!, admin: `http://${String(a['admin'])}` };
    },
  };
}

const FIXTURES = new URL('../fixtures/tls/', import.meta.url).pathname;

/**
 * Whether the engine planner (src/engine/select.ts planEngines, LINKERD_TCP_ENGINE=auto, the
 * addon as loaded here) puts a TLS server on the native engine: `termination` a server with
 * `tls`, `origination` a plain server whose client has `tls`. Read without starting a proxy,
 * so native.test.ts can skip the TLS suite with a reason until the native engine carries TLS,
 * and run it from the day it does. False where the addon is not loaded.
 */
export function nativeRunsTls(side: 'termination' | 'origination' = 'termination'): boolean {
  const id = `{privateKey: ${FIXTURES}rsa.key, certs: [${FIXTURES}rsa.pem, ${FIXTURES}chain.pem]}`;
  const text = side === 'termination'
    ? config(inet(1), { server: `\n    tls: {defaultIdentity: ${id}}` })
    : config(inet(1), { client: `    tls: {dnsName: rsa.test, trustCerts: [${FIXTURES}ca.pem]}` });
  const [plan] = planEngines(parseConfig(text, 'nativeRunsTls probe'), { env: 'auto', load: loadNative() });
  return plan?.kind === 'native';
}
