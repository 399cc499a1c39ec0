// Which engine runs each server: `native` (the addon moves the bytes) or `node` (net/tls
// streams). The config's `engine` (auto | native | node, default auto) can be overridden by
// LINKERD_TCP_ENGINE. auto = native where the addon loaded: plain TCP, SNI passthrough, PROXY
// headers sent and received, and TLS termination and origination when the running node exports
// the OpenSSL the engine needs (else TLS servers alone stay on node). Spare connections
// (minConnections) and PROXY headers sent over TLS origination stay on node. `native` that cannot be honoured is a config error.
// With `threads: true`, plain TCP servers run on the native I/O threads, the others natively on
// the main thread (or on node, as above).
import type { Config, RouterConfig, ServerConfig } from '../config/types.ts';
import { connectorConfigFor } from '../connector/client-config.ts';
import { LinkerdTcpError } from '../errors.ts';
import { loadNative, type NativeLoad } from './native-binding.ts';

export type EngineSetting = 'auto' | 'native' | 'node';
export type EngineKind = 'native' | 'node';

export interface EnginePlan {
  readonly kind: EngineKind;
  /** `threads: true` and a plain TCP server: on the native I/O threads (src/engine/thread-server.ts). */
  readonly threads?: boolean;
  /** Why this engine, for --check, the startup log and /api/state. */
  readonly why: string;
}

/**
 * Why a server must run on the node engine, or undefined when native can carry it.
 * `tlsMissing`: why the native engine cannot run TLS here (binding.tlsAvailable()), if it cannot.
 */
export function nodeOnlyReason(sc: ServerConfig, rc: RouterConfig, tlsMissing?: string): string | undefined {
  if (sc.tls && tlsMissing) return `tls: ${tlsMissing}`;
  // `{sni}`: the destination is known per connection, so every client config that may apply counts.
  const sni = sc.dstName.includes('{sni}');
  const names = sni
    ? [sc.dstName.split('{sni}').join('x'), ...(sc.defaultDstName ? [sc.defaultDstName] : []), ...(rc.client.kind === 'io.l5d.static' ? rc.client.configs.map((c) => c.prefix) : [])]
    : [sc.dstName];
  for (const name of names) {
    const cc = connectorConfigFor(rc.client, name);
    if (cc.tls && tlsMissing) return `client tls: ${tlsMissing}`;
    if (cc.tls && cc.proxyProtocol) return 'client tls with proxyProtocol';
    if (cc.minConnections > 0) return 'client minConnections';
    // The header names the listener's address, which a wildcard bind does not tell.
    if (cc.proxyProtocol && (sc.ip === '0.0.0.0' || sc.ip === '::')) return 'client proxyProtocol on a wildcard address';
  }
  return undefined;
}

/**
 * Why a server that runs natively stays off the I/O threads (on the main thread's engine, one
 * core), or undefined when the threads can carry it: for now they run plain TCP to one
 * destination name, without PROXY headers either way.
 */
export function notThreadedReason(sc: ServerConfig, rc: RouterConfig): string | undefined {
  if (sc.tls) return 'tls (not on the I/O threads yet)';
  if (sc.dstName.includes('{sni}')) return '{sni} routing (not on the I/O threads yet)';
  if (sc.proxyProtocol) return 'proxyProtocol received (not on the I/O threads yet)';
  const cc = connectorConfigFor(rc.client, sc.dstName);
  if (cc.tls) return 'client tls (not on the I/O threads yet)';
  if (cc.proxyProtocol) return 'client proxyProtocol (not on the I/O threads yet)';
  return undefined;
}

const SETTINGS: readonly EngineSetting[] = ['auto', 'native', 'node'];

/** The setting in force: LINKERD_TCP_ENGINE when set, else the config's. */
export function engineSetting(config: Config, env: string | undefined): EngineSetting {
  if (env === 'node' || env === 'native' || env === 'auto') return env;
  return config.engine ?? 'auto';
}

/**
 * What is wrong with LINKERD_TCP_ENGINE, or undefined when it is unset (or empty) or valid:
 * engineSetting would read `bogus` as unset, so the CLI refuses it first.
 */
export function engineEnvProblem(env: string | undefined): string | undefined {
  if (env === undefined || env === '' || (SETTINGS as readonly string[]).includes(env)) return undefined;
  return `LINKERD_TCP_ENGINE: expected one of ${SETTINGS.join('|')}, got ${JSON.stringify(env.slice(0, 40))}`;
}

/**
 * One plan per server, in config order (routers, then their servers); throws a config
 * error when `native` is asked for and cannot be honoured.
 */
export function planEngines(config: Config, opts: { env?: string | undefined; load?: NativeLoad; file?: string } = {}): EnginePlan[] {
  const env = 'env' in opts ? opts.env : process.env['LINKERD_TCP_ENGINE'];
  const load = opts.load ?? loadNative();
  const setting = engineSetting(config, env);
  const where = env === 'native' ? 'LINKERD_TCP_ENGINE=native' : 'engine: native';
  const plans: EnginePlan[] = [];
  const problems: string[] = [];
  if (setting === 'native' && load.kind !== 'loaded') problems.push(`${where}: the native engine is not available: ${load.reason}`);
  const tlsMissing = load.kind === 'loaded' ? nativeTlsMissing(load) : undefined;
  config.routers.forEach((rc, i) => rc.servers.forEach((sc, j) => {
    if (setting === 'node') return plans.push({ kind: 'node', why: env === 'node' ? 'LINKERD_TCP_ENGINE=node' : 'engine: node' });
    const reason = nodeOnlyReason(sc, rc, tlsMissing);
    if (reason) {
      if (setting === 'native') problems.push(`${where}: routers[${i}].servers[${j}] needs the node engine (${reason}); use engine: auto`);
      return plans.push({ kind: 'node', why: reason });
    }
    if (load.kind !== 'loaded') return plans.push({ kind: 'node', why: 'native engine unavailable' });
    const why = setting === 'native' ? where : sc.tls ? 'tls' : 'plain TCP';
    if (config.threads) {
      const off = notThreadedReason(sc, rc);
      if (!off) return plans.push({ kind: 'native', threads: true, why: `${why}, on the I/O threads` });
      return plans.push({ kind: 'native', why: `${why}; main thread: ${off}` });
    }
    return plans.push({ kind: 'native', why });
  }));
  if (problems.length) throw new LinkerdTcpError('CONFIG_INVALID', problems.map((p) => (opts.file ? `${opts.file}: ${p}` : p)).join('\n'));
  return plans;
}

/** Why the loaded addon cannot run TLS (the running node lacks OpenSSL 3 exports), or undefined. */
export function nativeTlsMissing(load: NativeLoad): string | undefined {
  if (load.kind !== 'loaded') return load.reason;
  return typeof load.binding.tlsAvailable === 'function' ? load.binding.tlsAvailable() : 'the addon has no TLS (rebuild it)';
}
