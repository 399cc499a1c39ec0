// Merges the /api/state of several workers into one view: servers and endpoints add up,
// an endpoint is shown in its best state across workers (each worker balances on its own),
// recent errors interleave by time.
import type { AppState, DestinationJson, EndpointJson, RouterJson, ServerJson } from '../admin/state.ts';

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
      failedUntil: m.failedUntil ?? e.failedUntil,
      load: m.load + e.load, open: m.open + e.open, pending: m.pending + e.pending,
      connects: m.connects + e.connects, failures: m.failures + e.failures,
      consecutiveFailures: Math.max(m.consecutiveFailures, e.consecutiveFailures),
    });
  }
  return [...by.values()];
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
    const lat = m.connectLatencyUs, l2 = s.connectLatencyUs;
    by.set(k, {
      ...m,
      listening: m.listening && s.listening,
      active: m.active + s.active, waiters: m.waiters + s.waiters, accepts: m.accepts + s.accepts,
      closes: m.closes + s.closes, failures: m.failures + s.failures, rejected: m.rejected + s.rejected,
      rxBytes: m.rxBytes + s.rxBytes, txBytes: m.txBytes + s.txBytes,
      // Quantiles do not add: the larger of the workers' is a safe upper bound.
      connectLatencyUs: { count: lat.count + l2.count, p50: Math.max(lat.p50, l2.p50), p99: Math.max(lat.p99, l2.p99) },
    });
  }
  return [...by.values()];
}

/** One state for the whole process group; `primary` supplies the process block. */
export function mergeStates(primary: Pick<AppState, 'process' | 'recentErrors'>, workers: readonly AppState[]): AppState {
  const routers = new Map<string, RouterJson[]>();
  for (const w of workers) for (const r of w.routers) routers.set(r.label, [...(routers.get(r.label) ?? []), r]);
  return {
    at: Date.now(),
    process: primary.process,
    routers: [...routers.values()].map((rs) => ({ ...rs[0]!, destinations: mergeDestinations(rs.flatMap((r) => r.destinations)) })),
    servers: mergeServers(workers.flatMap((w) => w.servers)),
    recentErrors: [...primary.recentErrors, ...workers.flatMap((w) => w.recentErrors)].sort((a, b) => a.at - b.at).slice(-50),
  };
}
