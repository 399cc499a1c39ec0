// linkerd-tcp's config schema (reference §8.1) plus our additions, decoded from `unknown`
// with defaults applied. Every problem is collected with its key path; nothing throws.
import { isIP } from 'node:net';
import { LinkerdTcpError } from '../errors.ts';
import { parseDtab } from '../naming/dtab.ts';
import { parsePath } from '../naming/path.ts';
import { redactUrl } from '../safe-text.ts';
import {
  boolean, Cursor, describe, type Fields, integer, listOf, nonEmptyString, nonNegInt, object, opt, port,
  type Problem, posInt, req, string,
} from './decode.ts';
import { healthCheck } from './health-check.ts';
import { checkSniServer, dstPath, proxySend, sniProxyServerKeys } from './sni-proxy.ts';
import type {
  AdminConfig, ClientAuthConfig, ClientConfig, ClientTlsConfig, Config, FailFastConfig, InterpreterConfig, NamerConfig,
  PartialConnectorConfig, RouterConfig, ServerConfig, ServerTlsConfig, TlsIdentity,
} from './types.ts';

const ipLiteral = (c: Cursor, v: unknown): string | undefined => {
  const s = string(c, v);
  if (s === undefined) return undefined;
  return isIP(s) ? s : c.fail(`expected an IP address (e.g. 127.0.0.1 or ::1), got ${describe(v)}`);
};

/** A path such as `/svc/web`, checked with the dtab grammar. */
const pathString = (c: Cursor, v: unknown): string | undefined => {
  const s = string(c, v);
  if (s === undefined) return undefined;
  if (!s.startsWith('/')) return c.fail(`expected a path starting with '/', got ${describe(v)}`);
  try {
    parsePath(s);
    return s;
  } catch (e) {
    return c.fail(`invalid path: ${(e as Error).message}`);
  }
};

const dtabString = (c: Cursor, v: unknown): string | undefined => {
  const s = string(c, v);
  if (s === undefined) return undefined;
  try {
    parseDtab(s);
    return s;
  } catch (e) {
    return c.fail(`invalid dtab: ${(e as Error).message}`);
  }
};

const url = (c: Cursor, v: unknown): string | undefined => {
  const s = string(c, v);
  if (s === undefined) return undefined;
  try {
    const u = new URL(s);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return c.fail(`expected an http(s) URL, got ${redactUrl(describe(v))}`);
    return s.replace(/\/+$/, '');
  } catch {
    return c.fail(`expected a URL such as http://127.0.0.1:4180, got ${redactUrl(describe(v))}`);
  }
};

/** An admin.allowedHosts entry: a DNS name or an IP literal (IPv6 in brackets), optionally `:port`. */
const allowedHost = (c: Cursor, v: unknown): string | undefined => {
  const s = string(c, v, { nonEmpty: true });
  if (s === undefined) return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?))(?::(\d{1,5}))?$/.exec(s);
  if (!m || (m[1] !== undefined && !isIP(m[1])) || Number(m[3] ?? 0) > 65535) {
    return c.fail(`expected a host name or IP literal, optionally with :port (e.g. admin.example.com, [::1]:9989), got ${describe(v)}`);
  }
  return s;
};

function admin(c: Cursor, v: unknown): AdminConfig | undefined {
  const f = object(c, v, ['ip', 'port', 'metricsIntervalSecs', 'graceSecs', 'allowedHosts', 'tokenFile']);
  if (!f) return undefined;
  const tokenFile = opt(c, f, 'tokenFile', nonEmptyString, undefined);
  return {
    ip: opt(c, f, 'ip', ipLiteral, '127.0.0.1'),
    port: opt(c, f, 'port', port, 9989),
    metricsIntervalSecs: opt(c, f, 'metricsIntervalSecs', posInt, 60),
    graceSecs: opt(c, f, 'graceSecs', nonNegInt, 10),
    allowedHosts: opt(c, f, 'allowedHosts', listOf(allowedHost), []),
    ...(tokenFile === undefined ? {} : { tokenFile }),
  };
}
const DEFAULT_ADMIN: AdminConfig = { ip: '127.0.0.1', port: 9989, metricsIntervalSecs: 60, graceSecs: 10, allowedHosts: [] };

function namer(c: Cursor, v: unknown): NamerConfig | undefined {
  const kind = typeof v === 'object' && v !== null ? (v as Fields)['kind'] : undefined;
  switch (kind) {
    case 'io.l5d.fs': {
      const f = object(c, v, ['kind', 'prefix', 'rootDir']);
      if (!f) return undefined;
      const rootDir = req(c, f, 'rootDir', nonEmptyString);
      const prefix = opt(c, f, 'prefix', pathString, '/io.l5d.fs');
      return rootDir === undefined ? undefined : { kind, prefix, rootDir };
    }
    case 'io.l5d.dnssrv': {
      const f = object(c, v, ['kind', 'prefix', 'refreshIntervalSeconds', 'dnsHosts']);
      if (!f) return undefined;
      const hostPort = (hc: Cursor, hv: unknown) => {
        const s = string(hc, hv);
        if (s === undefined) return undefined;
        const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(s);
        const host = m?.[1] ?? m?.[2];
        if (!host || !isIP(host)) return hc.fail(`expected an IP with optional :port, got ${describe(hv)}`);
        return { host, port: m?.[3] ? Number(m[3]) : 53 };
      };
      return {
        kind,
        prefix: opt(c, f, 'prefix', pathString, '/io.l5d.dnssrv'),
        refreshIntervalSeconds: opt(c, f, 'refreshIntervalSeconds', posInt, 5),
        dnsHosts: opt(c, f, 'dnsHosts', listOf(hostPort), []),
      };
    }
    default:
      return c.key('kind').fail(`expected one of: io.l5d.fs, io.l5d.dnssrv; got ${describe(kind)}`);
  }
}

function interpreter(c: Cursor, v: unknown): InterpreterConfig | undefined {
  const kind = typeof v === 'object' && v !== null ? (v as Fields)['kind'] : undefined;
  switch (kind) {
    case 'default':
      return object(c, v, ['kind']) && { kind };
    case 'io.l5d.namerd.http': {
      const f = object(c, v, ['kind', 'baseUrl', 'namespace', 'periodSecs', 'watch', 'requestTimeoutMs', 'mode']);
      if (!f) return undefined;
      const baseUrl = req(c, f, 'baseUrl', url);
      const namespace = req(c, f, 'namespace', nonEmptyString);
      const periodSecs = req(c, f, 'periodSecs', posInt);
      const watch = opt(c, f, 'watch', boolean, false);
      const requestTimeoutMs = opt(c, f, 'requestTimeoutMs', posInt, 10_000);
      // `resolve`: linkerd-tcp's /api/1/resolve (a weighted union comes back as one branch);
      // `bind`: linkerd's /api/1/bind + /api/1/addr (the tree with its weights).
      const mode = opt(c, f, 'mode', (mc: Cursor, mv: unknown) => (mv === 'resolve' || mv === 'bind' ? mv : mc.fail(`expected one of: resolve, bind; got ${describe(mv)}`)), 'resolve' as const);
      if (baseUrl === undefined || namespace === undefined || periodSecs === undefined) return undefined;
      return { kind, baseUrl, namespace, periodSecs, watch, requestTimeoutMs, mode };
    }
    default:
      return c.key('kind').fail(`expected one of: default, io.l5d.namerd.http; got ${describe(kind)}`);
  }
}

function identity(c: Cursor, v: unknown): TlsIdentity | undefined {
  const f = object(c, v, ['privateKey', 'certs']);
  if (!f) return undefined;
  const privateKey = req(c, f, 'privateKey', nonEmptyString);
  const certs = req(c, f, 'certs', listOf(nonEmptyString));
  if (certs && certs.length === 0) c.key('certs').fail('expected at least one certificate file');
  return privateKey === undefined || !certs?.length ? undefined : { privateKey, certs };
}

function clientAuth(c: Cursor, v: unknown): ClientAuthConfig | undefined {
  const f = object(c, v, ['trustCerts', 'required']);
  if (!f) return undefined;
  const trustCerts = req(c, f, 'trustCerts', listOf(nonEmptyString));
  if (trustCerts && trustCerts.length === 0) c.key('trustCerts').fail('expected at least one CA certificate file');
  const required = opt(c, f, 'required', boolean, true);
  return trustCerts?.length ? { trustCerts, required } : undefined;
}

/** An SNI name for `identities`: a DNS name, optionally `*.` followed by one. */
function sniName(c: Cursor, name: string): boolean {
  if (/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(name)) return true;
  c.key('identities').key(name).fail('expected a DNS name such as foo.example.com or *.example.com');
  return false;
}

function serverTls(c: Cursor, v: unknown): ServerTlsConfig | undefined {
  const f = object(c, v, ['alpnProtocols', 'defaultIdentity', 'identities', 'handshakeTimeoutMs', 'clientAuth']);
  if (!f) return undefined;
  const identities: Record<string, TlsIdentity> = {};
  const ids = f['identities'];
  if (ids !== undefined && ids !== null) {
    const m = object(c.key('identities'), ids, Object.keys(ids as object));
    for (const [name, idv] of Object.entries(m ?? {})) {
      if (!sniName(c, name)) continue;
      const id = identity(c.key('identities').key(name), idv);
      if (id) identities[name] = id;
    }
  }
  const defaultIdentity = opt(c, f, 'defaultIdentity', identity, undefined);
  if (f['defaultIdentity'] == null && f['identities'] == null) {
    c.fail('expected defaultIdentity or identities');
  }
  const alpnProtocols = opt(c, f, 'alpnProtocols', listOf(nonEmptyString), undefined);
  alpnProtocols?.forEach((p, i) => { if (Buffer.byteLength(p) > 255) c.key('alpnProtocols').index(i).fail('an ALPN protocol name is at most 255 bytes'); });
  return {
    alpnProtocols, defaultIdentity, identities,
    handshakeTimeoutMs: opt(c, f, 'handshakeTimeoutMs', posInt, 10_000),
    clientAuth: opt(c, f, 'clientAuth', clientAuth, undefined),
  };
}

function server(c: Cursor, v: unknown): ServerConfig | undefined {
  const f = object(c, v, ['ip', 'port', 'dstName', 'connectTimeoutMs', 'connectionLifetimeSecs', 'idleTimeoutMs', 'maxConcurrency', 'tls',
    'handshakeTimeoutMs', 'defaultDstName', 'proxyProtocol']);
  if (!f) return undefined;
  const p = req(c, f, 'port', port);
  const dstName = req(c, f, 'dstName', dstPath);
  const defaultDstName = opt(c, f, 'defaultDstName', dstPath, undefined);
  checkSniServer(c, dstName, defaultDstName);
  const s: ServerConfig = {
    ip: opt(c, f, 'ip', ipLiteral, '127.0.0.1'),
    port: p ?? 0,
    dstName: dstName ?? '/',
    connectTimeoutMs: opt(c, f, 'connectTimeoutMs', posInt, undefined),
    connectionLifetimeSecs: opt(c, f, 'connectionLifetimeSecs', posInt, undefined),
    idleTimeoutMs: opt(c, f, 'idleTimeoutMs', posInt, undefined),
    maxConcurrency: opt(c, f, 'maxConcurrency', posInt, 100_000),
    tls: opt(c, f, 'tls', serverTls, undefined),
    ...sniProxyServerKeys(c, f, defaultDstName),
  };
  return p === undefined || dstName === undefined ? undefined : s;
}

function failFast(c: Cursor, v: unknown): FailFastConfig | undefined {
  const f = object(c, v, ['maxConsecutiveFailures', 'failurePenaltySecs']);
  if (!f) return undefined;
  return {
    maxConsecutiveFailures: opt(c, f, 'maxConsecutiveFailures', posInt, 5),
    failurePenaltySecs: opt(c, f, 'failurePenaltySecs', posInt, 60),
  };
}

function clientTls(c: Cursor, v: unknown): ClientTlsConfig | undefined {
  const f = object(c, v, ['dnsName', 'trustCerts', 'clientIdentity']);
  if (!f) return undefined;
  const dnsName = req(c, f, 'dnsName', nonEmptyString);
  const trustCerts = opt(c, f, 'trustCerts', listOf(nonEmptyString), undefined);
  const clientIdentity = opt(c, f, 'clientIdentity', identity, undefined);
  return dnsName === undefined ? undefined : { dnsName, trustCerts, clientIdentity };
}

const CONNECTOR_KEYS = ['connectTimeoutMs', 'connectAttempts', 'minConnections', 'maxWaiters', 'failFast', 'tls', 'healthCheck', 'proxyProtocol'] as const;

/** Only the keys written, so that per-prefix configs can be layered over defaults. */
function connectorFields(c: Cursor, f: Fields): PartialConnectorConfig {
  const out: { -readonly [K in keyof PartialConnectorConfig]: PartialConnectorConfig[K] } = {};
  const put = <K extends keyof PartialConnectorConfig>(k: K, d: (c: Cursor, v: unknown) => PartialConnectorConfig[K]) => {
    if (f[k] !== undefined && f[k] !== null) {
      const val = d(c.key(k), f[k]);
      if (val !== undefined) out[k] = val;
    }
  };
  put('connectTimeoutMs', posInt);
  put('connectAttempts', (cc, v) => integer(cc, v, 1, 100));
  put('minConnections', nonNegInt);
  put('maxWaiters', nonNegInt);
  put('failFast', failFast);
  put('tls', clientTls);
  put('healthCheck', healthCheck);
  put('proxyProtocol', proxySend);
  // linkerd-tcp: a header before a TLS handshake to the backend is not supported yet.
  if (f['proxyProtocol'] != null && f['tls'] != null) c.key('proxyProtocol').fail('not supported together with tls (a header before a TLS handshake to the backend)');
  return out;
}

function client(c: Cursor, v: unknown): ClientConfig | undefined {
  const kind: unknown = typeof v === 'object' && v !== null ? ((v as Fields)['kind'] ?? 'io.l5d.global') : undefined;
  switch (kind) {
    case 'io.l5d.global': {
      const f = object(c, v, ['kind', 'prefix', ...CONNECTOR_KEYS]);
      if (!f) return undefined;
      if (f['prefix'] !== undefined) c.key('prefix').fail('not allowed with kind io.l5d.global (use io.l5d.static)');
      return { kind, ...connectorFields(c, f) };
    }
    case 'io.l5d.static': {
      const f = object(c, v, ['kind', 'configs']);
      if (!f) return undefined;
      const one = (cc: Cursor, cv: unknown) => {
        const g = object(cc, cv, ['prefix', ...CONNECTOR_KEYS]);
        if (!g) return undefined;
        const prefix = req(cc, g, 'prefix', pathString);
        return prefix === undefined ? undefined : { prefix, ...connectorFields(cc, g) };
      };
      return { kind, configs: req(c, f, 'configs', listOf(one)) ?? [] };
    }
    default:
      if (kind === undefined) return c.fail(`expected a map, got ${describe(v)}`);
      return c.key('kind').fail(`expected one of: io.l5d.global, io.l5d.static; got ${describe(kind)}`);
  }
}

function router(c: Cursor, v: unknown): RouterConfig | undefined {
  const f = object(c, v, ['label', 'interpreter', 'dtab', 'servers', 'client', 'maxSniDestinations']);
  if (!f) return undefined;
  const label = req(c, f, 'label', nonEmptyString);
  // Absent means the default interpreter; a block that fails to decode is `undefined`, not
  // the default: it has its own problems, and the default's dtab rule below must not add one.
  const interp = f['interpreter'] == null ? ({ kind: 'default' } as const) : interpreter(c.key('interpreter'), f['interpreter']);
  const dtab = opt(c, f, 'dtab', dtabString, '');
  const servers = req(c, f, 'servers', listOf(server));
  if (Array.isArray(f['servers']) && f['servers'].length === 0) c.key('servers').fail('expected at least one server');
  const cl = opt(c, f, 'client', client, { kind: 'io.l5d.global' } as const);
  if (interp?.kind === 'default' && dtab === '' && f['dtab'] === undefined) {
    c.key('dtab').fail('missing: a router with the default interpreter needs a dtab (e.g. "/svc => /$/inet/127.0.0.1/8080;")');
  }
  if (label === undefined || !servers || !interp) return undefined;
  const maxSniDestinations = opt(c, f, 'maxSniDestinations', posInt, undefined);
  return { label, interpreter: interp, dtab, servers, client: cl, ...(maxSniDestinations === undefined ? {} : { maxSniDestinations }) };
}

/** `auto`, `native` or `node` (src/engine/select.ts decides per server). */
function engineSetting(c: Cursor, v: unknown): 'auto' | 'native' | 'node' | undefined {
  if (v === 'auto' || v === 'native' || v === 'node') return v;
  c.fail(`expected one of auto, native, node (got ${describe(v)})`);
  return undefined;
}

/** Decodes a parsed config document; returns the config or every problem found. */
export function decodeConfig(doc: unknown): { config: Config } | { problems: Problem[] } {
  const c = new Cursor();
  const f = object(c, doc, ['workers', 'bufferSizeBytes', 'engine', 'threads', 'watchConfig', 'admin', 'namers', 'routers']);
  if (!f) return { problems: c.problems };
  const routers = req(c, f, 'routers', listOf(router)) ?? [];
  if (Array.isArray(f['routers']) && f['routers'].length === 0) c.key('routers').fail('expected at least one router');
  const config: Config = {
    workers: opt(c, f, 'workers', (cc, v) => integer(cc, v, 1, 64), undefined),
    bufferSizeBytes: opt(c, f, 'bufferSizeBytes', (cc, v) => integer(cc, v, 1024, 16 * 1024 * 1024), 16 * 1024),
    engine: opt(c, f, 'engine', engineSetting, 'auto'),
    threads: opt(c, f, 'threads', boolean, false),
    watchConfig: opt(c, f, 'watchConfig', boolean, false),
    admin: opt(c, f, 'admin', admin, DEFAULT_ADMIN),
    namers: opt(c, f, 'namers', listOf(namer), []),
    routers,
  };
  checkUnique(c, config);
  return c.problems.length ? { problems: c.problems } : { config };
}

/** Cross-field rules: router labels, listen addresses and namer prefixes must not collide. */
function checkUnique(c: Cursor, config: Config): void {
  const labels = new Map<string, number>();
  const listens = new Map<string, string>();
  config.routers.forEach((r, i) => {
    const seen = labels.get(r.label);
    if (seen !== undefined) c.key('routers').index(i).key('label').fail(`duplicate router label "${r.label}" (also routers[${seen}])`);
    else labels.set(r.label, i);
    r.servers.forEach((s, j) => {
      if (s.port === 0) return;
      const key = `${s.ip}:${s.port}`;
      const where = `routers[${i}].servers[${j}]`;
      const other = listens.get(key);
      if (other) c.key('routers').index(i).key('servers').index(j).key('port').fail(`${key} is already used by ${other}`);
      else listens.set(key, where);
    });
  });
  const prefixes = new Map<string, number>();
  config.namers.forEach((n, i) => {
    const seen = prefixes.get(n.prefix);
    if (seen !== undefined) c.key('namers').index(i).key('prefix').fail(`duplicate namer prefix ${n.prefix} (also namers[${seen}])`);
    else prefixes.set(n.prefix, i);
  });
}

export function configError(file: string, problems: readonly Problem[]): LinkerdTcpError {
  const lines = problems.map((p) => `${file}: ${p.path}: ${p.message}`);
  return new LinkerdTcpError('CONFIG_INVALID', lines.join('\n'));
}
