// The live state behind /api/state and the dashboard: routers with their destinations'
// resolution status and endpoints, servers with their counters, process figures and
// recent errors. Read-only: it walks the objects the data path already keeps and copies
// plain numbers, so a poll costs O(destinations + endpoints + live connections).
import type { EndpointState as EpState } from '../balancer/endpoint.ts';
import type { RouterConfig } from '../config/types.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import type { MetricDump } from '../metrics/registry.ts';
import { quantileOf } from '../metrics/window.ts';
import type { Resolution } from '../naming/resolution.ts';
import { boundText } from '../safe-text.ts';
import type { ProcessInfo, ProcessSampler } from './process-metrics.ts';
import type { RecentError } from './recent-errors.ts';

// What collectState reads, as structural views: src/router/router.ts's Router and
// src/server/server.ts's Server satisfy them, and unit tests can pass plain objects.
export interface EndpointView {
  readonly key: string;
  readonly state: EpState;
  readonly weight: number;
  readonly load: number;
  readonly open: number;
  readonly pending: number;
  readonly connects: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  /** The active health check's verdict; undefined when not checked or not yet judged. */
  readonly healthy?: boolean | undefined;
}
export interface DestinationView {
  readonly name: string;
  readonly waiters: { readonly size: number };
  readonly balancer: {
    readonly resolved: boolean;
    readonly lastResolution: Resolution | undefined;
    readonly endpoints: ReadonlyMap<string, EndpointView>;
  };
}
export interface RouterView {
  readonly label: string;
  readonly destinations: ReadonlyMap<string, DestinationView>;
  /** Destinations named from client SNI (an LRU); the router's SniLru. */
  readonly sni?: { readonly size: number; readonly capacity: number; has(name: string): boolean };
}
export interface ServerView {
  readonly rt: string;
  readonly srvAddr: string; // '' until listening
  readonly config: { readonly ip: string; readonly port: number; readonly dstName: string; readonly tls: unknown };
  readonly live: ReadonlySet<{ readonly open: boolean; readonly client: { readonly bytesRead: number; readonly bytesWritten: number } }>;
  readonly metrics: ServerMetrics;
  /** Bytes from/to clients, closed plus live connections; optional until Server has it. */
  totalBytes?(): { rx: number; tx: number };
  /** TLS servers: the identities served (names and expiry), for operators. */
  readonly tls?: { readonly identities: readonly TlsIdentityJson[] } | undefined;
  /** Which engine moves its bytes (src/engine/select.ts); the node Server leaves it unset. */
  readonly engine?: 'native' | 'node';
  /** `threads: true`: the native I/O threads it runs on (unset: on the main thread). */
  readonly threads?: number;
}

export interface TlsIdentityJson {
  readonly name: string; // 'default' or the SNI key
  readonly names: readonly string[]; // the certificate's DNS and IP names
  readonly notAfter: string;
}

export type ResolutionStatus =
  | { readonly kind: 'pending' } // no resolution yet
  | { readonly kind: 'bound'; readonly endpoints: number }
  | { readonly kind: 'neg' }
  | { readonly kind: 'failed'; readonly reason: string };

export interface EndpointJson {
  readonly key: string;
  /** `failed` when ejected by either judge: fail-fast (passive) or the health check (active). */
  readonly state: EpState['kind'];
  /** Why it is ejected: 'fail-fast', 'health check', or both joined by ', '; null when it is not. */
  readonly cause: string | null;
  /** The health check's verdict: null when not checked (or no verdict yet). */
  readonly healthy: boolean | null;
  readonly failedUntil: number | null; // ms on the balancer's clock (Date.now in the app)
  readonly weight: number;
  readonly load: number;
  readonly open: number;
  readonly pending: number;
  readonly connects: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
}

export interface DestinationJson {
  readonly name: string;
  /** Named from a client's SNI (`dstName: .../{sni}`), one of the router's LRU. */
  readonly sni?: boolean;
  readonly resolved: boolean; // a usable (bound or neg) resolution has arrived
  readonly resolution: ResolutionStatus; // the last one, which may be a failure on top of a kept set
  readonly waiters: number;
  readonly available: number;
  readonly failed: number;
  readonly retired: number;
  readonly open: number;
  readonly pending: number;
  readonly endpoints: readonly EndpointJson[];
}

export interface RouterJson {
  readonly label: string;
  readonly interpreter: { readonly kind: string; readonly namespace: string | null; readonly baseUrl: string | null };
  readonly destinations: readonly DestinationJson[];
  /** Destinations made from client SNI names now kept, and the bound (maxSniDestinations); only once there are any. */
  readonly sniDestinations?: { readonly count: number; readonly max: number };
}

export interface ServerJson {
  readonly router: string;
  readonly srvAddr: string;
  readonly listening: boolean;
  readonly dstName: string;
  readonly tls: boolean;
  readonly tlsIdentities: readonly TlsIdentityJson[];
  /** Which engine moves its bytes: `native` (the addon) or `node`. */
  readonly engine?: 'native' | 'node';
  /** The native I/O threads it runs on (`threads: true`); absent on the main thread. */
  readonly threads?: number;
  readonly active: number;
  readonly waiters: number;
  readonly accepts: number;
  readonly closes: number;
  readonly failures: number;
  readonly rejected: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  /**
   * Accept → backend connected, over a sliding window of the last `windowSecs` (at most 1024
   * samples per process): `count` samples, exact p50/p99. `samples` only travels from a
   * worker to its primary, which pools them before taking the quantiles.
   */
  readonly connectLatencyUs: { readonly count: number; readonly p50: number; readonly p99: number; readonly windowSecs: number; readonly samples?: readonly number[] };
  /** TLS servers: failed client handshakes by cause (`l5d:srv:tls:failure`); {} otherwise. */
  readonly tlsFailures: Readonly<Record<string, number>>;
}

/** One process of the proxy: the only one, or the primary or a worker of several. */
export interface ProcessEntry extends ProcessInfo {
  readonly role: 'single' | 'primary' | 'worker';
  readonly worker: number | null;
}

export interface AppState {
  readonly at: number; // epoch ms when collected
  readonly process: ProcessInfo;
  /** Every process of the proxy (with workers: the primary, then each worker). */
  readonly processes: readonly ProcessEntry[];
  readonly routers: readonly RouterJson[];
  readonly servers: readonly ServerJson[];
  readonly recentErrors: readonly RecentError[];
  /** The running config file: its SHA-256, when it was loaded, and the last reload (src/reload/). */
  readonly config?: ConfigStateJson;
}

export interface ConfigStateJson {
  readonly path: string;
  readonly hash: string;
  readonly loadedAt: number; // epoch ms
  readonly watch: boolean; // watchConfig is on
  readonly lastReload: {
    readonly result: 'ok' | 'unchanged' | 'failed';
    readonly trigger: string;
    readonly at: number;
    readonly hash: string;
    readonly changes: readonly string[];
    readonly needsRestart: readonly string[];
    readonly error: string | null;
  } | null;
}

export function collectState(input: {
  routers: readonly RouterView[];
  servers: readonly ServerView[];
  startedAt: number;
  recentErrors: readonly RecentError[];
  /** For interpreter kinds (matched by label); routers without one show `unknown`. */
  routerConfigs?: readonly RouterConfig[];
  /** For the process block; without it only pid/uptime/memory/cpu are given (no event-loop delay). */
  sampler?: ProcessSampler;
  /** The registry's values, for TLS handshake failures by cause. */
  metrics?: readonly MetricDump[];
  /** A worker: include connect-latency samples so the primary can pool them. */
  latencySamples?: boolean;
  now?: () => number;
}): AppState {
  const now = (input.now ?? Date.now)();
  const process = input.sampler
    ? { ...input.sampler.sample(), startedAt: input.startedAt, uptimeSecs: Math.max(0, (now - input.startedAt) / 1000) }
    : basicProcess(input.startedAt, now);
  const tlsFailures = tlsFailuresBySrv(input.metrics ?? []);
  return {
    at: now,
    process,
    processes: [{ ...process, role: 'single', worker: null }],
    routers: input.routers.map((r) => routerJson(r, input.routerConfigs?.find((c) => c.label === r.label))),
    servers: input.servers.map((s) => serverJson(s, tlsFailures, input.latencySamples ?? false)),
    recentErrors: input.recentErrors,
  };
}

function routerJson(r: RouterView, rc: RouterConfig | undefined): RouterJson {
  const ic = rc?.interpreter;
  return {
    label: r.label,
    interpreter: ic?.kind === 'io.l5d.namerd.http'
      ? { kind: ic.kind, namespace: ic.namespace, baseUrl: ic.baseUrl }
      : { kind: ic?.kind ?? 'unknown', namespace: null, baseUrl: null },
    destinations: [...r.destinations.values()].map((d) => (r.sni?.has(d.name) ? { ...destinationJson(d), sni: true } : destinationJson(d))),
    ...(r.sni && r.sni.size > 0 ? { sniDestinations: { count: r.sni.size, max: r.sni.capacity } } : {}),
  };
}

function destinationJson(d: DestinationView): DestinationJson {
  const b = d.balancer;
  const endpoints: EndpointJson[] = [];
  const counts = { available: 0, failed: 0, retired: 0, open: 0, pending: 0 };
  for (const ep of b.endpoints.values()) {
    const causes = [...(ep.state.kind === 'failed' ? ['fail-fast'] : []), ...(ep.healthy === false && ep.state.kind !== 'retired' ? ['health check'] : [])];
    const state = causes.length > 0 ? 'failed' : ep.state.kind;
    counts[state]++;
    counts.open += ep.open;
    counts.pending += ep.pending;
    endpoints.push({
      key: ep.key, state, cause: causes.length > 0 ? causes.join(', ') : null, healthy: ep.healthy ?? null, failedUntil: ep.state.kind === 'failed' ? ep.state.until : null,
      weight: ep.weight, load: ep.load, open: ep.open, pending: ep.pending,
      connects: ep.connects, failures: ep.failures, consecutiveFailures: ep.consecutiveFailures,
    });
  }
  return { name: d.name, resolved: b.resolved, resolution: status(b.lastResolution), waiters: d.waiters.size, ...counts, endpoints };
}

function status(r: Resolution | undefined): ResolutionStatus {
  if (!r) return { kind: 'pending' };
  switch (r.kind) {
    case 'bound':
      return { kind: 'bound', endpoints: r.endpoints.length };
    case 'neg':
      return { kind: 'neg' };
    case 'failed':
      // Interpreters bound what their peers say; this keeps /api/state small whatever the source.
      return { kind: 'failed', reason: boundText(r.reason) };
  }
}

/** `l5d:srv:tls:failure{cause}` counts by server address, then cause. */
function tlsFailuresBySrv(metrics: readonly MetricDump[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const d of metrics) {
    if (d.t !== 'c' || d.name !== 'l5d:srv:tls:failure') continue;
    const cause = /cause="([^"]*)"/.exec(d.labels)?.[1], srv = /srv_addr="([^"]*)"/.exec(d.labels)?.[1];
    if (cause === undefined || srv === undefined) continue;
    const m = out.get(srv) ?? {};
    m[cause] = (m[cause] ?? 0) + d.value;
    out.set(srv, m);
  }
  return out;
}

function serverJson(s: ServerView, tlsFailures: ReadonlyMap<string, Record<string, number>>, withSamples: boolean): ServerJson {
  const listening = s.srvAddr !== '';
  // `metrics` is assigned when the server starts listening.
  const m: ServerMetrics | undefined = listening ? s.metrics : undefined;
  let liveRx = 0, liveTx = 0, waiters = 0;
  for (const c of s.live) {
    liveRx += c.client.bytesRead;
    liveTx += c.client.bytesWritten;
    if (!c.open) waiters++;
  }
  // Without totalBytes(), the counters hold the totals folded in at the last /metrics scrape.
  const bytes = s.totalBytes?.() ?? { rx: Math.max(m?.rxBytes.value ?? 0, liveRx), tx: Math.max(m?.txBytes.value ?? 0, liveTx) };
  const lat = m?.connectLatencyUs;
  return {
    router: s.rt,
    srvAddr: listening ? s.srvAddr : `${s.config.ip}:${s.config.port}`,
    listening,
    dstName: s.config.dstName,
    tls: s.config.tls !== undefined,
    tlsIdentities: s.tls?.identities ?? [],
    engine: s.engine ?? 'node',
    ...(s.threads ? { threads: s.threads } : {}),
    active: s.live.size,
    waiters,
    accepts: m?.accepts.value ?? 0,
    closes: m?.closes.value ?? 0,
    failures: m?.failures.value ?? 0,
    rejected: m?.rejected.value ?? 0,
    rxBytes: bytes.rx,
    txBytes: bytes.tx,
    connectLatencyUs: latencyJson(lat?.window?.recent() ?? [], (lat?.window?.windowMs ?? 60_000) / 1000, withSamples),
    tlsFailures: (listening ? tlsFailures.get(s.srvAddr) : undefined) ?? {},
  };
}

/** Quantiles over `samples` (pure); the samples themselves only when asked for. */
export function latencyJson(samples: readonly number[], windowSecs: number, withSamples: boolean): ServerJson['connectLatencyUs'] {
  const q = { count: samples.length, p50: quantileOf(samples, 0.5), p99: quantileOf(samples, 0.99), windowSecs };
  return withSamples ? { ...q, samples } : q;
}

function basicProcess(startedAt: number, now: number): ProcessInfo {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    pid: process.pid, nodeVersion: process.version, startedAt, uptimeSecs: Math.max(0, (now - startedAt) / 1000),
    rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal,
    cpuUserSecs: cpu.user / 1e6, cpuSystemSecs: cpu.system / 1e6, openFds: null, eventLoopDelayP99Ms: null,
  };
}
