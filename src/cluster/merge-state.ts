// Merges the /api/state of several workers into one view: servers and endpoints add up,
// an endpoint is shown in its best state across workers (each worker balances on its own),
// connect latencies are pooled before taking quantiles, every process of the tree is
// listed, and recent errors interleave by time.
import type { ProcessInfo } from '../admin/process-metrics.ts';
import { type AppState, type DestinationJson, type EndpointJson, latencyJson, type RouterJson, type ServerJson } from '../admin/state.ts';

const RANK: Record<EndpointJson['state'], number> = { available: 0, failed: 1, retired: 2 };

function mergeEndpoints(all: readonly EndpointJson[]): EndpointJson[] {
  const by = new Map<string, EndpointJson>();
  for (const e of all) {
    const m = by.get(e.key);
    if (!m) {
      by.set(e.key, e);
      continue;
    }
    by.set(e.key, {
      ...m,
      state: RANK[e.state] < RANK[m.state] ? e.state : m.state,
      cause: RANK[e.state] < RANK[m.state] ? e.cause : m.cause,
      healthy: m.healthy ?? e.healthy, // one checker for the proxy: workers agree
      failedUntil: m.failedUntil ?? e.failedUntil,
      load: m.load + e.load, open: m.open + e.open, pending: m.pending + e.pending,
      connects: m.connects + e.connects, failures: m.failures + e.failures,
      consecutiveFailures: Math.max(m.consecutiveFailures, e.consecutiveFailures),
    });
  }
  return [...by.values()];
}

/** SNI destinations: each worker keeps its own LRU; the fullest one is shown (as the l5d:sni:destinations gauge). */
function mergeSni(rs: readonly RouterJson[]): Pick<RouterJson, 'sniDestinations'> {
  const all = rs.flatMap((r) => (r.sniDestinations ? [r.sniDestinations] : []));
  return all.length ? { sniDestinations: { count: Math.max(...all.map((x) => x.count)), max: all[0]!.max } } : {};
}

function mergeDestinations(all: readonly DestinationJson[]): DestinationJson[] {
  const groups = new Map<string, DestinationJson[]>();
  for (const d of all) groups.set(d.name, [...(groups.get(d.name) ?? []), d]);
  return [...groups.values()].map((ds) => {
    const endpoints = mergeEndpoints(ds.flatMap((d) => d.endpoints));
    const count = (s: EndpointJson['state']): number => endpoints.filter((e) => e.state === s).length;
    return {
      ...ds[0]!,
      resolved: ds.every((d) => d.resolved),
      waiters: ds.reduce((n, d) => n + d.waiters, 0),
      open: ds.reduce((n, d) => n + d.open, 0),
      pending: ds.reduce((n, d) => n + d.pending, 0),
      available: count('available'), failed: count('failed'), retired: count('retired'),
      endpoints,
    };
  });
}

function mergeServers(all: readonly ServerJson[]): ServerJson[] {
  const by = new Map<string, ServerJson>();
  for (const s of all) {
    const k = `${s.router} ${s.srvAddr}`;
    const m = by.get(k);
    if (!m) {
      by.set(k, s);
      continue;
    }
    const samples = [...(m.connectLatencyUs.samples ?? []), ...(s.connectLatencyUs.samples ?? [])];
    const tlsFailures: Record<string, number> = { ...m.tlsFailures };
    for (const [cause, n] of Object.entries(s.tlsFailures ?? {})) tlsFailures[cause] = (tlsFailures[cause] ?? 0) + n;
    by.set(k, {
      ...m,
      listening: m.listening && s.listening,
      active: m.active + s.active, waiters: m.waiters + s.waiters, accepts: m.accepts + s.accepts,
      closes: m.closes + s.closes, failures: m.failures + s.failures, rejected: m.rejected + s.rejected,
      rxBytes: m.rxBytes + s.rxBytes, txBytes: m.txBytes + s.txBytes,
      // Quantiles do not add: pool the workers' samples (dropped below, once the quantiles are taken).
      connectLatencyUs: { ...m.connectLatencyUs, samples },
      tlsFailures,
    });
  }
  return [...by.values()].map((s) => ({
    ...s, connectLatencyUs: latencyJson(s.connectLatencyUs.samples ?? [], s.connectLatencyUs.windowSecs, false), tlsFailures: s.tlsFailures ?? {},
  }));
}

/** One state for the whole process group (pure); `primary` supplies the process block and its own recent errors. */
export function mergeStates(
  primary: { readonly process: ProcessInfo; readonly recentErrors: AppState['recentErrors'] },
  byWorker: readonly { readonly worker: number; readonly state: AppState }[],
  now: () => number = Date.now,
): AppState {
  const workers = byWorker.map((w) => w.state);
  const routers = new Map<string, RouterJson[]>();
  for (const w of workers) for (const r of w.routers) routers.set(r.label, [...(routers.get(r.label) ?? []), r]);
  return {
    at: now(),
    process: primary.process,
    processes: [
      { ...primary.process, role: 'primary', worker: null },
      ...[...byWorker].sort((a, b) => a.worker - b.worker).map((w) => ({ ...w.state.process, role: 'worker' as const, worker: w.worker })),
    ],
    routers: [...routers.values()].map((rs) => ({ ...rs[0]!, destinations: mergeDestinations(rs.flatMap((r) => r.destinations)), ...mergeSni(rs) })),
    servers: mergeServers(workers.flatMap((w) => w.servers)),
    recentErrors: [...primary.recentErrors, ...workers.flatMap((w) => w.recentErrors)].sort((a, b) => a.at - b.at).slice(-50),
  };
}
