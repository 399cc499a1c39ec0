import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProcessInfo } from '../admin/process-metrics.ts';
import type { AppState, DestinationJson, EndpointJson, ServerJson } from '../admin/state.ts';
import { mergeStates } from './merge-state.ts';

const proc = (pid: number): ProcessInfo => ({
  pid, nodeVersion: 'v24', startedAt: 0, uptimeSecs: 1, rssBytes: pid << 20, heapUsedBytes: 1, heapTotalBytes: 2,
  cpuUserSecs: 1, cpuSystemSecs: 0, openFds: 10, eventLoopDelayP99Ms: 1,
});
const ep = (o: Partial<EndpointJson>): EndpointJson => ({
  key: '10.0.0.1:80', state: 'available', failedUntil: null, weight: 1, load: 0, open: 0, pending: 0, connects: 0, failures: 0, consecutiveFailures: 0, ...o,
}) as EndpointJson;
const srv = (o: Partial<ServerJson>): ServerJson => ({
  router: 'r', srvAddr: '127.0.0.1:7474', listening: true, dstName: '/svc', tls: true, tlsIdentities: [], active: 0, waiters: 0,
  accepts: 0, closes: 0, failures: 0, rejected: 0, rxBytes: 0, txBytes: 0,
  connectLatencyUs: { count: 0, p50: 0, p99: 0, windowSecs: 60 }, tlsFailures: {}, ...o,
});
const dst = (endpoints: EndpointJson[]): DestinationJson => ({
  name: '/svc', resolved: true, resolution: { kind: 'bound', endpoints: endpoints.length }, waiters: 0,
  available: 0, failed: 0, retired: 0, open: 0, pending: 0, endpoints,
});
const state = (pid: number, o: { endpoints?: EndpointJson[]; server?: Partial<ServerJson>; errors?: AppState['recentErrors'] }): AppState => ({
  at: 0, process: proc(pid), processes: [{ ...proc(pid), role: 'single', worker: null }],
  routers: [{ label: 'r', interpreter: { kind: 'default', namespace: null, baseUrl: null }, destinations: [dst(o.endpoints ?? [])] }],
  servers: [srv(o.server ?? {})],
  recentErrors: o.errors ?? [],
});

describe('mergeStates', () => {
  const w1 = state(101, {
    endpoints: [ep({ state: 'failed', failedUntil: 5000, open: 1, connects: 3, failures: 5, consecutiveFailures: 5 })],
    server: { accepts: 10, active: 1, tlsFailures: { unknown_sni: 2 }, connectLatencyUs: { count: 3, p50: 200, p99: 300, windowSecs: 60, samples: [100, 200, 300] } },
    errors: [{ at: 30, level: 'warn', msg: 'w1', context: {} }],
  });
  const w2 = state(102, {
    endpoints: [ep({ open: 2, connects: 7, failures: 1, consecutiveFailures: 1 })],
    server: { accepts: 5, active: 2, tlsFailures: { unknown_sni: 1, timeout: 4 }, connectLatencyUs: { count: 1, p50: 1000, p99: 1000, windowSecs: 60, samples: [1000] } },
    errors: [{ at: 10, level: 'error', msg: 'w2', context: {} }],
  });
  const merged = mergeStates(
    { process: proc(100), recentErrors: [{ at: 20, level: 'warn', msg: 'worker exited; restarting', context: {} }] },
    [{ worker: 2, state: w2 }, { worker: 1, state: w1 }],
    () => 99,
  );

  it('adds server counters, pools latency samples for exact quantiles (and drops them), adds TLS failures by cause', () => {
    const [s] = merged.servers;
    assert.equal(merged.servers.length, 1);
    assert.equal(s!.accepts, 15);
    assert.equal(s!.active, 3);
    assert.deepEqual(s!.connectLatencyUs, { count: 4, p50: 200, p99: 1000, windowSecs: 60 });
    assert.deepEqual(s!.tlsFailures, { unknown_sni: 3, timeout: 4 });
  });

  it('shows an endpoint in its best state across workers, with summed counts and the worst consecutive failures', () => {
    const d = merged.routers[0]!.destinations[0]!;
    assert.equal(d.endpoints.length, 1);
    const e = d.endpoints[0]!;
    assert.equal(e.state, 'available');
    assert.equal(e.open, 3);
    assert.equal(e.connects, 10);
    assert.equal(e.failures, 6);
    assert.equal(e.consecutiveFailures, 5);
    assert.equal(d.available, 1);
  });

  it('lists the primary then each worker by id, and interleaves recent errors by time', () => {
    assert.deepEqual(merged.processes.map((p) => [p.role, p.worker, p.pid]), [['primary', null, 100], ['worker', 1, 101], ['worker', 2, 102]]);
    assert.equal(merged.process.pid, 100);
    assert.deepEqual(merged.recentErrors.map((e) => e.msg), ['w2', 'worker exited; restarting', 'w1']);
    assert.equal(merged.at, 99);
  });
});
