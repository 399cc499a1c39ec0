// Every metric family the proxy exports, with its kind and one line of help: the source of
// `/metrics`' `# TYPE` and `# HELP` lines (tacho wrote neither), of the unit test that fails
// when a registered name is missing here, and of the Grafana dashboard's name check. Names
// and labels are linkerd-tcp's (dashboards keep working); only the comments are new.

/** counter: only goes up (until restart); gauge: a level read at scrape; stat: see STAT_PARTS. */
export type MetricKind = 'counter' | 'gauge' | 'stat';

export interface FamilyHelp {
  readonly kind: MetricKind;
  readonly help: string;
}

const c = (help: string): FamilyHelp => ({ kind: 'counter', help });
const g = (help: string): FamilyHelp => ({ kind: 'gauge', help });
const s = (help: string): FamilyHelp => ({ kind: 'stat', help });

export const METRIC_HELP: Readonly<Record<string, FamilyHelp>> = {
  // servers: labels rt, srv_addr
  'l5d:srv:accepts': c('Client connections accepted by this server.'),
  'l5d:srv:closes': c('Client connections closed (for any reason).'),
  'l5d:srv:failures': c('Client connections that ended in a failure (connect or stream).'),
  'l5d:srv:rejected': c('Client connections closed at accept because maxConcurrency was reached (label cause).'),
  'l5d:srv:active': g('Client connections open on this server now (including TLS handshakes and prefaces in progress).'),
  'l5d:srv:waiters': g('Client connections accepted and still waiting for a backend connection.'),
  'l5d:srv:connect:failure': c('Client connections whose backend could not be connected (label cause: timeout, other).'),
  'l5d:srv:connect:latency_us': s('Accept to backend connected, in microseconds.'),
  'l5d:srv:stream:failure': c('Connections that failed while streaming (label cause: timeout, other).'),
  'l5d:srv:stream:rx_bytes': c('Bytes read from clients.'),
  'l5d:srv:stream:tx_bytes': c('Bytes written to clients.'),
  'l5d:srv:stream:connection_rx_bytes': s('Bytes read from the client per closed connection.'),
  'l5d:srv:stream:connection_tx_bytes': s('Bytes written to the client per closed connection.'),
  'l5d:srv:stream:duration_ms': s('Lifetime of closed client connections, in milliseconds.'),
  'l5d:srv:tls:handshake_us': s('TLS servers: accept to handshake done, in microseconds.'),
  'l5d:srv:tls:failure': c('TLS handshakes that failed (label cause).'),
  'l5d:srv:sni:default': c('SNI-routed connections sent to the default destination (no or unknown server name).'),
  'l5d:srv:sni:failure': c('Connections closed because their ClientHello could not be read for SNI (label cause).'),
  'l5d:srv:proxy_protocol:accepted': c('PROXY protocol headers accepted (label version: v1, v2).'),
  'l5d:srv:proxy_protocol:failure': c('Connections closed because of a bad or missing PROXY protocol header (label cause).'),
  // balancers: labels rt, dst
  'l5d:balancer:endpoint:available': g('Endpoints of this destination in rotation.'),
  'l5d:balancer:endpoint:failed': g('Endpoints of this destination out of rotation: ejected after failures or unhealthy by health check.'),
  'l5d:balancer:endpoint:retired': g('Endpoints no longer in the resolution, kept until their connections close.'),
  'l5d:balancer:connection:pending': g('Backend connects in progress.'),
  'l5d:balancer:connection:open': g('Backend connections open now.'),
  'l5d:balancer:waiters': g('Client connections waiting for this destination to have an endpoint.'),
  'l5d:balancer:connection:attempts': c('Backend connect attempts.'),
  'l5d:balancer:connection:connects': c('Backend connects that succeeded.'),
  'l5d:balancer:connection:failure': c('Backend connects that failed (label cause: timeout, refused, other).'),
  'l5d:balancer:connection:retries': c('Backend connect attempts retried on another endpoint.'),
  'l5d:balancer:connection:pooled': c('Client connections served by a pre-connected spare (minConnections).'),
  'l5d:balancer:unavailable': c('Client connections refused because the destination had no endpoint available.'),
  'l5d:balancer:rejected': c('Client connections refused because maxWaiters were already waiting (label cause).'),
  'l5d:balancer:connection:latency_us': s('Backend connect time, in microseconds.'),
  'l5d:balancer:connection:duration_ms': s('Lifetime of closed backend connections, in milliseconds.'),
  'l5d:balancer:poll_time_us': s('Time of each balancer decision (pick, resolution update), in microseconds.'),
  // routers: label rt
  'l5d:route_create': c('Destinations created (a balancer built for a new name).'),
  'l5d:route_found': c('Connections routed to a destination already cached.'),
  'l5d:route_error': c('Connections whose destination name could not be routed.'),
  'l5d:route_time_us': s('Time to route a connection to its destination, in microseconds.'),
  'l5d:sni:destinations': g('SNI destinations cached by this router.'),
  'l5d:sni:evictions': c('SNI destinations evicted from the cache (least recently used).'),
  // health checks: labels rt, dst, endpoint
  'l5d:healthcheck:checks': c('Active health checks run (label result: ok or the failure).'),
  'l5d:healthcheck:healthy': g('1 when the endpoint passes its health check, 0 when it is out of rotation for failing it.'),
  'l5d:healthcheck:latency_us': s('Time of passing health checks, in microseconds.'),
  // namerd interpreter
  'l5d:resolver:request_latency_ms': s('namerd request time, in milliseconds.'),
  'l5d:resolver:success_count': c('namerd requests that succeeded.'),
  'l5d:resolver:failure_count': c('namerd requests that failed.'),
  // reloads: label result (ok, failed)
  'l5d:config:reloads': c('Configuration reloads (SIGHUP or POST /reload) by result.'),
  'l5d:tls:reloads': c('Reloads of TLS certificates and keys after their files changed, by result.'),
  // the native engine (summed over workers)
  'l5d:engine:pipe_bytes': g('Capacity of the kernel pipes the native engine holds, moving bytes or pooled, in bytes.'),
  'l5d:engine:buffer_bytes': g('Buffers of the native engine\'s buffered pump (held, pooled, and its scratch), in bytes.'),
  'l5d:engine:budget_bytes': g('The native engine\'s byte budget for its pipes and buffers (3/4 of the user\'s pipe quota).'),
  'l5d:engine:splice_refused': c('Bulk directions kept on the buffered pump because the budget had no pipe for them.'),
  'l5d:engine:heap_trims': c('Times the native engine gave free heap pages back to the kernel after a burst of TLS handshakes.'),
  // process (label worker when several workers run)
  'process:cpu_user_seconds': g('User CPU time used by the process, in seconds (a total: rate() it).'),
  'process:cpu_system_seconds': g('System CPU time used by the process, in seconds (a total: rate() it).'),
  'process:rss_bytes': g('Resident set size of the process, in bytes.'),
  'process:heap_used_bytes': g('V8 heap in use, in bytes.'),
  'process:open_fds': g('File descriptors open now.'),
  'process:max_fds': g('File descriptor limit (ulimit -n).'),
  'process:event_loop_delay_p99_ms': g('99th percentile of the event loop delay, in milliseconds.'),
  'process:uptime_seconds': g('Seconds since the process started.'),
};

/**
 * The series a stat renders (tacho's names). Each is its own gauge family: the values are of
 * the last snapshot interval (admin.metricsIntervalSecs), cleared at every snapshot, so they
 * are levels, not Prometheus counters or histograms (rate() over them would be wrong).
 */
export const STAT_PARTS: readonly { readonly suffix: string; readonly help: string }[] = [
  { suffix: '_count', help: 'values recorded in the last interval' },
  { suffix: '_bucket', help: 'values <= le recorded in the last interval (cumulative over le)' },
  { suffix: '_min', help: 'smallest value of the last interval' },
  { suffix: '_max', help: 'largest value of the last interval' },
  { suffix: '_sum', help: 'sum of the values of the last interval' },
];

/** `# HELP`/`# TYPE` lines of one exported family (a stat's part included), or [] when unknown. */
export function familyHeader(name: string, kind: 'counter' | 'gauge', help: string | undefined): string[] {
  const out = help === undefined ? [] : [`# HELP ${name} ${escapeHelp(help)}`];
  out.push(`# TYPE ${name} ${kind}`);
  return out;
}

/** Help text of a stat's part: the family's line and what the part holds. */
export function statPartHelp(name: string, suffix: string): string | undefined {
  const base = METRIC_HELP[name]?.help;
  const part = STAT_PARTS.find((p) => p.suffix === suffix)?.help;
  return base === undefined || part === undefined ? undefined : `${base.replace(/\.$/, '')}: ${part}.`;
}

/** Every exported family name (stats by their parts): what a dashboard query may name. */
export function exportedFamilies(): Set<string> {
  const out = new Set<string>();
  for (const [name, f] of Object.entries(METRIC_HELP)) {
    if (f.kind === 'stat') for (const p of STAT_PARTS) out.add(name + p.suffix);
    else out.add(name);
  }
  return out;
}

// The text format escapes only backslash and newline in HELP.
const escapeHelp = (t: string): string => t.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
