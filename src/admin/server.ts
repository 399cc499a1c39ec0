// The admin HTTP server: /metrics (tacho-format Prometheus text), /ping, /ready, /api/state,
// the dashboard at /, and POST /shutdown, /abort and /reload. It only reads counters; it is hardened
// (header/request timeouts, header and body limits, a connection cap, every socket error
// handled) so a slow or hostile client costs the proxy nothing but a few sockets. Every
// request must name this server in Host (DNS rebinding, host-check.ts); every mutation goes
// through guard.ts (cross-site, bearer token) and acts only once its whole body has arrived.
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { Socket, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import type { AdminConfig } from '../config/types.ts';
import { LinkerdTcpError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type MetricDump, Registry } from '../metrics/registry.ts';
import { addrKey } from '../naming/resolution.ts';
import { redactUrl } from '../safe-text.ts';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard.ts';
import { answerDelegation, type Delegators } from './delegator.ts';
import { DELEGATOR_CSP, DELEGATOR_HTML } from './delegator-page.ts';
import { type AdminToken, MIN_TOKEN_CHARS, readAdminToken, refuseMutation, TOKEN_ENV } from './guard.ts';
import { checkHost, type HostPolicy, hostPolicy, isLoopback } from './host-check.ts';
import { type ProcessSampler, registerProcessMetrics } from './process-metrics.ts';
import type { AppState } from './state.ts';

export interface AdminLimits {
  readonly headersTimeoutMs: number; // whole request head must arrive within this (slowloris)
  readonly requestTimeoutMs: number; // whole request, body included
  readonly keepAliveTimeoutMs: number;
  readonly idleTimeoutMs: number; // a socket with no activity at all (e.g. a stalled reader)
  readonly maxHeaderBytes: number; // larger heads get 431
  readonly maxBodyBytes: number; // bodies are never used; larger ones get the socket cut
  readonly maxConnections: number;
}

export const DEFAULT_ADMIN_LIMITS: AdminLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 64 * 1024,
  maxConnections: 128,
};

export interface AdminServer {
  listen(): Promise<void>;
  /** The bound port (the configured one before listen). */
  readonly port: number;
  /** `ip:port` actually bound. */
  readonly address: string;
  close(): Promise<void>;
}

export interface AdminOptions {
  config: AdminConfig;
  registry: Registry;
  /** The state, or a promise of it (the primary of several workers gathers theirs). */
  state: () => AppState | Promise<AppState>;
  ready: () => boolean | Promise<boolean>;
  /**
   * Series beside the registry's (the workers' merged metrics), given as data so that one
   * render shows each family once, under one HELP and TYPE, with all its series together.
   */
  extraMetrics?: () => Promise<readonly MetricDump[]>;
  /** Begin a graceful drain; the caller exits when it is done. Called after the 202 is sent. */
  shutdown: () => void;
  /** Exit now. Called after the 202 is sent. */
  abort: () => void;
  /** GET /delegator.json and the /delegator page: the routers' interpreters (absent: 404). */
  delegators?: Delegators;
  /** POST /reload: re-read the config and apply it; answered with the outcome (absent: 404). */
  reload?: () => Promise<ReloadAnswer>;
  log: Logger;
  /** Shared with collectState so both see one event-loop monitor; one is made here if absent. */
  sampler?: ProcessSampler;
  limits?: Partial<AdminLimits>;
  /** Where LINKERD_TCP_ADMIN_TOKEN is read (tests pass their own); default the process's. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** What POST /reload answers (src/reload/reloader.ts's ReloadReport): 200 when applied or unchanged, 422 when refused. */
export interface ReloadAnswer {
  readonly result: 'ok' | 'unchanged' | 'failed';
  readonly error: string | null;
}

type Route = { readonly method: 'GET' | 'POST'; readonly handle: (req: IncomingMessage, res: ServerResponse) => void };

const PROM_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';
/** /metrics and /api/state answers being gathered at once, all clients together. */
const MAX_GATHERING = 64;

export function createAdminServer(opts: AdminOptions): AdminServer {
  const limits: AdminLimits = { ...DEFAULT_ADMIN_LIMITS, ...opts.limits };
  const log = opts.log.child({ component: 'admin' });
  const { ip, port } = opts.config;

  /** Runs an async handler; a rejection answers 500 like a throw does. */
  const later = (res: ServerResponse, work: Promise<void>): void => {
    work.catch((e: unknown) => {
      log.error({ err: (e as Error).message }, 'admin: request failed');
      if (!res.headersSent) send(res, 500, 'internal error', TEXT_TYPE);
      else res.destroy();
    });
  };
  // Answers gathered asynchronously (with workers, asked over IPC) put no bytes on the socket
  // until they are ready, so Node's pipelining backpressure never engages: a client pipelining
  // thousands of /metrics and reading none would have them all in flight at once (the supervisor
  // grew 143 MiB). Past MAX_GATHERING at once, the answer is an immediate 503.
  let gathering = 0;
  const gathered = (res: ServerResponse, work: () => Promise<void>): void => {
    if (gathering >= MAX_GATHERING) return send(res, 503, 'admin busy: too many answers being gathered', TEXT_TYPE, { 'Retry-After': '1' });
    gathering++;
    later(res, work().finally(() => gathering--));
  };
  // Scrapes that arrive while the workers' metrics are being gathered share that answer.
  let extraInFlight: Promise<readonly MetricDump[]> | undefined;
  const metrics = (_req: IncomingMessage, res: ServerResponse): void => {
    const extra = opts.extraMetrics;
    if (!extra) return send(res, 200, opts.registry.render(), PROM_TYPE);
    // Our own series are rendered once the workers' are in (a refused request renders nothing).
    gathered(res, () => (extraInFlight ??= extra().finally(() => { extraInFlight = undefined; })).then((more) => send(res, 200, Registry.merged([more, opts.registry.dump()]).render(), PROM_TYPE)));
  };
  const ping = (_req: IncomingMessage, res: ServerResponse): void => send(res, 200, 'pong', TEXT_TYPE);
  let token: AdminToken | undefined;
  let policy: HostPolicy | undefined;
  /**
   * The one gate every mutation's route goes through (POST /shutdown, /abort, /reload):
   * refused by the guard (cross-site, no or wrong token), else `act` runs only once the
   * whole body has arrived within the limits; a malformed, cut or oversized body acts on nothing.
   */
  const guarded = (what: string, act: (res: ServerResponse) => void) => (req: IncomingMessage, res: ServerResponse): void => {
    const caller = addrKey(req.socket.remoteAddress ?? '?', req.socket.remotePort ?? 0);
    const refused = refuseMutation(req, token);
    if (refused) {
      log.warn({ caller, origin: req.headers.origin ?? null, why: refused.why }, `admin: ${what} refused`);
      send(res, refused.status, refused.body, TEXT_TYPE, refused.headers);
      return;
    }
    void bodyComplete(req).then((complete) => {
      if (!complete) {
        log.warn({ caller }, `admin: ${what} ignored: its request body did not arrive whole`);
        return;
      }
      log.info({ caller }, `admin: ${what} requested`);
      act(res);
    });
  };
  /** A mutation answered 202 at once, its hook run once the answer is out. */
  const mutation = (what: string, accepted: string, hook: () => void) => guarded(what, (res) => {
    // 'close' fires once the response is flushed, or when the caller went away: run the hook either way.
    res.once('close', () => {
      try {
        hook();
      } catch (e) {
        log.error({ err: (e as Error).message }, `admin: ${what} hook failed`);
      }
    });
    send(res, 202, accepted, TEXT_TYPE);
  });
  let hostWarnedAt = -Infinity;
  /** Answers 400/421 and returns false when Host does not name this server. */
  const hostAllowed = (req: IncomingMessage, res: ServerResponse): boolean => {
    const hosts: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') hosts.push(req.rawHeaders[i + 1]!);
    const verdict = policy ? checkHost(hosts, req.httpVersion, policy, req.socket.localAddress) : { kind: 'bad' as const, why: 'not listening' };
    if (verdict.kind === 'ok') return true;
    const now = performance.now();
    const caller = addrKey(req.socket.remoteAddress ?? '?', req.socket.remotePort ?? 0);
    // Loud once a minute (a rebinding page may retry in a loop), quiet in between.
    const level = now - hostWarnedAt > 60_000 ? 'warn' : 'debug';
    if (level === 'warn') hostWarnedAt = now;
    if (log.isLevelEnabled(level)) log[level]({ caller, host: hosts.join(', ').slice(0, 200), path: String(req.url).slice(0, 200) }, 'admin: request for another host refused (allow it in admin.allowedHosts)');
    if (verdict.kind === 'bad') send(res, 400, `bad request: ${verdict.why}`, TEXT_TYPE, { Connection: 'close' });
    else send(res, 421, 'misdirected request: this admin server does not answer to that Host (see admin.allowedHosts)', TEXT_TYPE, { Connection: 'close' });
    return false;
  };
  const routes = new Map<string, Route>([
    ['/metrics', { method: 'GET', handle: metrics }],
    ['/admin/metrics/prometheus', { method: 'GET', handle: metrics }], // linkerd 1's path
    ['/ping', { method: 'GET', handle: ping }],
    ['/admin/ping', { method: 'GET', handle: ping }],
    ['/ready', { method: 'GET', handle: (_q, res) => later(res, Promise.resolve(opts.ready()).then((ok) => (ok ? send(res, 200, 'ready', TEXT_TYPE) : send(res, 503, 'not ready', TEXT_TYPE)))) }],
    ['/api/state', { method: 'GET', handle: (_q, res) => gathered(res, () => Promise.resolve().then(() => opts.state()).then((st) => send(res, 200, JSON.stringify(redacted(st)), 'application/json; charset=utf-8'))) }],
    ['/', {
      method: 'GET',
      handle: (_q, res) => send(res, 200, DASHBOARD_HTML, 'text/html; charset=utf-8', {
        'Content-Security-Policy': DASHBOARD_CSP, 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer',
      }),
    }],
    ['/shutdown', { method: 'POST', handle: mutation('shutdown', 'shutting down', opts.shutdown) }],
    ['/abort', { method: 'POST', handle: mutation('abort', 'aborting', opts.abort) }],
  ]);
  const delegators = opts.delegators;
  if (delegators) {
    // Read-only (GET), behind the same Host check as every route; a namerd delegation is
    // asked over the network, so it counts against the answers gathered at once.
    routes.set('/delegator.json', {
      method: 'GET',
      handle: (req, res) => gathered(res, async () => {
        const a = await answerDelegation(new URL(req.url ?? '/', 'http://admin').searchParams, delegators);
        send(res, a.status, a.body, a.json ? 'application/json; charset=utf-8' : TEXT_TYPE);
      }),
    });
    routes.set('/delegator', {
      method: 'GET',
      handle: (_q, res) => send(res, 200, DELEGATOR_HTML, 'text/html; charset=utf-8', {
        'Content-Security-Policy': DELEGATOR_CSP, 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer',
      }),
    });
  }
  const reload = opts.reload;
  if (reload) {
    // The same gate as every mutation; answered with the outcome once the reload is done.
    routes.set('/reload', {
      method: 'POST',
      handle: guarded('reload', (res) => later(res, reload().then((r) => {
        send(res, r.result === 'failed' ? 422 : 200, JSON.stringify(r, null, 2) + '\n', 'application/json; charset=utf-8');
      }))),
    });
  }

  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks the two timeouts above on this period (default 30 s, too coarse for them).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 2))),
  }, (req, res) => {
    // Host first, before any other work; the refused request's body is still drained (bounded).
    if (!hostAllowed(req, res)) {
      limitBody(req, limits.maxBodyBytes);
      return;
    }
    if (!limitBody(req, limits.maxBodyBytes)) return send(res, 413, 'request body too large', TEXT_TYPE, { Connection: 'close' });
    try {
      const path = pathOf(req.url);
      const route = path === undefined ? undefined : routes.get(path);
      if (!route) return send(res, 404, 'not found', TEXT_TYPE);
      const allowed = route.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
      if (!allowed.includes(req.method ?? '')) return send(res, 405, 'method not allowed', TEXT_TYPE, { Allow: allowed.join(', ') });
      route.handle(req, res);
    } catch (e) {
      log.error({ err: (e as Error).message, url: String(req.url).slice(0, 200) }, 'admin: request failed');
      if (!res.headersSent) send(res, 500, 'internal error', TEXT_TYPE);
      else res.destroy();
    }
  });
  server.maxConnections = limits.maxConnections;
  server.timeout = limits.idleTimeoutMs; // no 'timeout' listener: Node destroys idle sockets
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (log.isLevelEnabled('debug')) log.debug({ err: err.code ?? err.message }, 'admin: bad or slow client');
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    // A client that never reads our answer nor closes is cut shortly after.
    if (socket instanceof Socket) socket.setTimeout(2_000, () => socket.destroy());
  });

  let processMetrics: { close(): void } | undefined;
  let closing: Promise<void> | undefined;
  const bound = (): AddressInfo | undefined => {
    const a = server.address();
    return a !== null && typeof a === 'object' ? a : undefined;
  };

  const address = (): string => {
    const a = bound();
    return a ? addrKey(a.address, a.port) : addrKey(ip, port);
  };

  return {
    async listen(): Promise<void> {
      token = readAdminToken(opts.config, opts.env ?? process.env);
      server.listen({ host: ip, port });
      try {
        await once(server, 'listening');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        throw new LinkerdTcpError('LISTEN', `cannot listen on ${addrKey(ip, port)} (admin): ${code}`, { cause: e });
      }
      server.on('error', (e) => log.error({ err: e.message }, 'admin listener error'));
      const wildcard = ip === '0.0.0.0' || ip === '::';
      const own = wildcard ? Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)) : [ip];
      policy = hostPolicy(own, opts.config.allowedHosts ?? [], bound()?.port ?? port);
      if (!isLoopback(ip)) {
        log.warn({ admin: address(), token: token ? token.source : null }, token
          ? 'admin listens on a non-loopback address: anyone who can reach it can read /metrics and /api/state; POST /shutdown and /abort need the admin token'
          : `admin listens on a non-loopback address: anyone who can reach it can read /metrics and /api/state and stop the proxy with POST /shutdown or /abort; set ${TOKEN_ENV} or admin.tokenFile`);
      }
      if (token && token.chars < MIN_TOKEN_CHARS) log.warn({ source: token.source, chars: token.chars }, `admin token is short (under ${MIN_TOKEN_CHARS} characters): easy to guess`);
      processMetrics = registerProcessMetrics(opts.registry, opts.sampler);
      log.info({ admin: address() }, 'admin listening');
    },
    get port(): number {
      return bound()?.port ?? port;
    },
    get address(): string {
      return address();
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        processMetrics?.close();
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections(); // idle keep-alive sockets and anything still in flight
      });
      return closing;
    },
  };
}

function send(res: ServerResponse, status: number, body: string, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  });
  res.end(body); // Node drops the body itself for HEAD
}

/** The state as shown (/api/state, hence the dashboard): namerd's `user:password@` replaced by `***@`. */
function redacted(st: AppState): AppState {
  const routers = st.routers.map((r) => {
    const url = r.interpreter.baseUrl;
    return url === null ? r : { ...r, interpreter: { ...r.interpreter, baseUrl: redactUrl(url) } };
  });
  return { ...st, routers };
}

/** The path of a request target, without query; undefined when it is not origin-form. */
function pathOf(url: string | undefined): string | undefined {
  if (!url || !url.startsWith('/')) return undefined;
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * Bodies are never used: drain them, and cut a client that streams more than `max` bytes.
 * False when the declared length is already too large (answer 413 and close).
 */
function limitBody(req: IncomingMessage, max: number): boolean {
  req.on('error', () => {});
  if (Number(req.headers['content-length'] ?? 0) > max) return false;
  let seen = 0;
  req.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > max) req.socket.destroy();
  });
  req.resume();
  return true;
}

/** True once the request's whole body has arrived (limitBody drains it); false when it was cut or malformed. */
function bodyComplete(req: IncomingMessage): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    req.once('end', () => resolve(true));
    req.once('close', () => resolve(req.complete));
  });
}
