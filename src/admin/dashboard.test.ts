// The dashboard script run in a vm against a tiny fake DOM (the browser test in
// test/dashboard.test.ts runs it in Chromium): rates from successive samples, sparkline
// history, endpoint states, resolver status, errors, and the "disconnected" state.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Script, createContext } from 'node:vm';
import { DASHBOARD_SCRIPT } from './dashboard-script.ts';
import type { RecentError } from './recent-errors.ts';
import type { AppState } from './state.ts';

class FakeNode {
  readonly tagName: string;
  children: FakeNode[] = [];
  readonly attrs = new Map<string, string>();
  text = '';
  constructor(tagName: string) {
    this.tagName = tagName;
  }
  get className(): string { return this.attrs.get('class') ?? ''; }
  set className(v: string) { this.attrs.set('class', v); }
  get textContent(): string { return this.tagName === '#text' ? this.text : this.children.map((c) => c.textContent).join(''); }
  set textContent(v: string) {
    const t = new FakeNode('#text');
    t.text = String(v);
    this.children = [t];
  }
  setAttribute(k: string, v: string): void { this.attrs.set(k, String(v)); }
  getAttribute(k: string): string | null { return this.attrs.get(k) ?? null; }
  appendChild(c: FakeNode): FakeNode { this.children.push(c); return c; }
  replaceChildren(...cs: FakeNode[]): void { this.children = [...cs]; }
  *walk(): Generator<FakeNode> {
    yield this;
    for (const c of this.children) yield* c.walk();
  }
}

function page(states: (() => AppState | Error)[]) {
  const body = new FakeNode('body');
  // The containers of dashboard.ts's HTML, with their ids and test ids.
  for (const [id, testid] of [['status', 'conn-status'], ['updated', 'updated'], ['process'], ['servers'], ['routers'], ['errors-count', 'errors-count'], ['errors']]) {
    const n = body.appendChild(new FakeNode('div'));
    n.setAttribute('id', id!);
    if (testid) n.setAttribute('data-testid', testid);
  }
  const find = (attr: string, v: string): FakeNode | undefined => [...body.walk()].find((n) => n.attrs.get(attr) === v);
  const document = {
    body,
    createElement: (tag: string) => new FakeNode(tag),
    createElementNS: (_ns: string, tag: string) => new FakeNode(tag),
    getElementById: (id: string) => find('id', id) ?? null,
  };
  let next: (() => void) | undefined;
  let cycle = Promise.withResolvers<void>();
  let i = 0;
  const fetch = (): Promise<unknown> => {
    const s = states[i++]!();
    if (s instanceof Error) return Promise.reject(s);
    const text = JSON.stringify(s);
    return Promise.resolve({ ok: true, status: 200, json: () => Promise.resolve(JSON.parse(text)) });
  };
  const setTimeout = (fn: () => void, ms: number): number => {
    if (ms === 100) {
      next = fn; // the next poll: one cycle is done
      cycle.resolve();
    }
    return 0;
  };
  const ctx = createContext({ document, location: { search: '?interval=100' }, URLSearchParams, AbortController, fetch, setTimeout, clearTimeout: () => {} });
  return {
    text: (testid: string) => find('data-testid', testid)?.textContent,
    node: (testid: string) => find('data-testid', testid),
    /** The element holding the one with this test id (a tile, for a tile's value). */
    parentOf: (testid: string) => { const n = find('data-testid', testid); return n && [...body.walk()].find((x) => x.children.includes(n)); },
    /** Runs the script (first poll) or the next poll, and waits until it has rescheduled itself. */
    async step(): Promise<void> {
      cycle = Promise.withResolvers<void>();
      if (next) next();
      else new Script(DASHBOARD_SCRIPT).runInContext(ctx);
      await cycle.promise;
    },
  };
}

const XSS = '/svc/<img src=x onerror=alert(1)>';

function state(at: number, accepts: number, rx: number): AppState {
  return {
    at,
    process: {
      pid: 42, nodeVersion: 'v24.0.0', startedAt: 0, uptimeSecs: 3725, rssBytes: 50 << 20, heapUsedBytes: 10 << 20,
      heapTotalBytes: 20 << 20, cpuUserSecs: at / 4000, cpuSystemSecs: 0, openFds: 17, eventLoopDelayP99Ms: 12.34,
    },
    routers: [{
      label: 'web', interpreter: { kind: 'io.l5d.namerd.http', namespace: 'default', baseUrl: 'http://namerd:4180' },
      destinations: [{
        name: XSS, resolved: true, resolution: { kind: 'failed', reason: 'namerd 503' }, waiters: 0,
        available: 1, failed: 1, retired: 0, open: 2, pending: 0,
        endpoints: [
          { key: '10.0.0.1:80', state: 'available', cause: null, healthy: null, failedUntil: null, weight: 0.75, load: 2, open: 2, pending: 0, connects: 9, failures: 0, consecutiveFailures: 0 },
          { key: '10.0.0.2:80', state: 'failed', cause: 'fail-fast', healthy: null, failedUntil: 60_000, weight: 0.25, load: 0, open: 0, pending: 0, connects: 1, failures: 5, consecutiveFailures: 5 },
        ],
      }],
    }],
    servers: [{
      router: 'web', srvAddr: '127.0.0.1:7474', listening: true, dstName: XSS, tls: false, tlsIdentities: [], active: 3, waiters: 1,
      accepts, closes: 0, failures: 2, rejected: 0, rxBytes: rx, txBytes: rx / 2, connectLatencyUs: { count: 5, p50: 412, p99: 2500, windowSecs: 60 }, tlsFailures: {},
    }],
    processes: [],
    recentErrors: [{ at: 1000, level: 'warn', msg: 'endpoint ejected', context: { endpoint: '10.0.0.2:80', failures: 5 } }],
  };
}

describe('dashboard script', () => {
  it('renders state, rates from successive samples, sparklines, and a lost connection', async () => {
    const p = page([() => state(1000, 10, 0), () => state(2000, 15, 2048), () => state(4000, 25, 2048), () => new Error('HTTP 502')]);
    await p.step();
    assert.equal(p.text('conn-status'), 'live');
    assert.equal(p.text('srv-active-127.0.0.1:7474'), '3');
    assert.equal(p.text('srv-accepts-rate-127.0.0.1:7474'), '\u2013'); // no rate from one sample
    assert.equal(p.text('srv-lat-p50-127.0.0.1:7474'), '412 \u00b5s');
    assert.equal(p.text('srv-lat-p99-127.0.0.1:7474'), '2.5 ms');
    assert.equal(p.text('srv-dst-127.0.0.1:7474'), ` \u2192 ${XSS}`);
    assert.equal(p.text('ep-state-10.0.0.1:80'), 'available');
    assert.equal(p.text('ep-state-10.0.0.2:80'), 'failed');
    assert.equal(p.node('ep-state-10.0.0.2:80')?.className, 'state failed');
    assert.equal(p.text('ep-weight-10.0.0.1:80'), '75.0%');
    assert.equal(p.text('ep-failures-10.0.0.2:80'), '5');
    assert.equal(p.text(`dst-status-web-${XSS}`), 'failed, keeping last set: namerd 503');
    assert.equal(p.text('rt-interp-web'), 'io.l5d.namerd.http');
    assert.equal(p.text('errors-count'), '1');
    assert.match(p.text('errors') ?? '', /endpoint ejected endpoint=10\.0\.0\.2:80 failures=5/);
    assert.equal(p.text('proc-pid'), '42');
    assert.equal(p.text('proc-uptime'), '1h 2m 5s');
    assert.equal(p.text('proc-eld'), '12.3 ms');

    await p.step();
    assert.equal(p.text('srv-accepts-rate-127.0.0.1:7474'), '5.0/s');
    assert.equal(p.text('srv-rx-rate-127.0.0.1:7474'), '2.0 KiB/s');
    assert.equal(p.text('srv-tx-rate-127.0.0.1:7474'), '1.0 KiB/s');
    assert.equal(p.text('rt-accepts-rate-web'), '5.0/s');
    assert.equal(p.text('rt-active-web'), '3');
    assert.equal(p.text('proc-cpu'), '25.0%');
    assert.equal(p.node('spark-srv-active-127.0.0.1:7474')?.getAttribute('data-points'), '2');
    assert.equal(p.node('spark-srv-accepts-rate-127.0.0.1:7474')?.getAttribute('data-points'), '1');

    await p.step(); // 10 accepts over 2 s; no new bytes
    assert.equal(p.text('srv-accepts-rate-127.0.0.1:7474'), '5.0/s');
    assert.equal(p.text('srv-rx-rate-127.0.0.1:7474'), '0 B/s');
    assert.equal(p.node('spark-srv-accepts-rate-127.0.0.1:7474')?.getAttribute('data-points'), '2');
    const line = p.node('spark-srv-accepts-rate-127.0.0.1:7474')?.children[0];
    assert.equal(line?.tagName, 'polyline');
    assert.match(line?.getAttribute('points') ?? '', /^[\d.]+,[\d.]+ [\d.]+,[\d.]+$/);

    await p.step(); // the fetch fails: status says so, the last data stays
    assert.equal(p.text('conn-status'), 'disconnected: HTTP 502');
    assert.equal(p.text('srv-active-127.0.0.1:7474'), '3');
  });

  it('shows the whole process tree, failing endpoints in colour, TLS failures by cause, and chart scales', async () => {
    const proc = (pid: number, cpu: number, rss: number) => ({ ...state(0, 0, 0).process, pid, cpuUserSecs: cpu, cpuSystemSecs: 0, rssBytes: rss });
    const tree = (at: number, k: number): AppState => {
      const base = state(at, 10 * k, 0);
      const [srv] = base.servers;
      const [rt] = base.routers;
      const [dst] = rt!.destinations;
      return {
        ...base,
        process: proc(42, 0.01 * k, 50 << 20),
        processes: [
          { ...proc(42, 0.01 * k, 50 << 20), role: 'primary', worker: null },
          { ...proc(43, 0.2 * k, 100 << 20), role: 'worker', worker: 1 },
          { ...proc(44, 0.3 * k, 110 << 20), role: 'worker', worker: 2 },
        ],
        servers: [{ ...srv!, tls: true, tlsFailures: { unknown_sni: 3, timeout: 1 }, connectLatencyUs: { count: 3, p50: 800, p99: 1500 + 1000 * k, windowSecs: 60 } }],
        routers: [{ ...rt!, destinations: [{ ...dst!, endpoints: [
          { ...dst!.endpoints[0]!, failures: 274, consecutiveFailures: 146 },
          { ...dst!.endpoints[1]!, failedUntil: 60_000 },
        ] }] }],
      };
    };
    const p = page([() => tree(1000, 1), () => tree(2000, 2)]);
    await p.step();
    await p.step();
    assert.equal(p.text('proc-count'), '3');
    assert.equal(p.text('proc-rss'), '260.0 MiB'); // the sum over the tree, not the primary's 50 MiB
    assert.equal(p.text('proc-cpu'), '51.0%'); // 1 % + 20 % + 30 %
    assert.equal(p.text('proc-role-43'), 'worker 1');
    assert.equal(p.text('proc-cpu-44'), '30.0%');
    assert.equal(p.text('proc-rss-43'), '100.0 MiB');
    // An available endpoint failing its connects is not green.
    assert.equal(p.node('ep-state-10.0.0.1:80')?.className, 'state available failing');
    assert.equal(p.node('ep-failures-10.0.0.1:80')?.className, 'num bad');
    assert.equal(p.text('ep-consecutive-10.0.0.1:80'), '146');
    assert.equal(p.node('ep-consecutive-10.0.0.1:80')?.className, 'num bad');
    assert.equal(p.text('ep-ejected-10.0.0.2:80'), '00:01:00');
    assert.equal(p.text('srv-tls-failures-127.0.0.1:7474'), 'timeout 1 \u00b7 unknown_sni 3');
    assert.equal(p.text('srv-lat-p99-127.0.0.1:7474'), '3.5 ms');
    assert.equal(p.text('scale-srv-lat-p99-127.0.0.1:7474'), '0 \u2013 3.5 ms');
    assert.equal(p.text('scale-proc-rss'), '0 \u2013 260.0 MiB');
  });

  it('a latency tile with no connects in the window shows a dash, not 0', async () => {
    const p = page([() => {
      const st = state(1000, 0, 0);
      return { ...st, servers: [{ ...st.servers[0]!, connectLatencyUs: { count: 0, p50: 0, p99: 0, windowSecs: 60 } }] };
    }]);
    await p.step();
    assert.equal(p.text('srv-lat-p50-127.0.0.1:7474'), '\u2013');
  });

  it('shows the running config (hash, load time) and an endpoint ejected by its health check', async () => {
    const p = page([() => {
      const st = state(1000, 0, 0);
      const d = st.routers[0]!.destinations[0]!;
      return {
        ...st,
        config: {
          path: 'c.yml', hash: 'ab'.repeat(32), loadedAt: Date.UTC(2026, 10, 30, 6, 7, 8), watch: false,
          lastReload: { result: 'failed', trigger: 'SIGHUP', at: 0, hash: 'ab'.repeat(32), changes: [], needsRestart: [], error: 'c.yml: routers[0].x: unknown key' },
        },
        routers: [{ ...st.routers[0]!, destinations: [{ ...d, endpoints: [{ ...d.endpoints[0]!, state: 'failed', cause: 'health check', healthy: false }] }] }],
      };
    }]);
    await p.step();
    assert.equal(p.text('config-hash'), 'abababababab \u00b7 06:07:08');
    assert.equal(p.text('ep-state-10.0.0.1:80'), 'failed (health check)');
  });

  it('failures: the server shows failures per second, red only while they happen; an endpoint\'s count is red while it grows', async () => {
    // failures: 2, 2, 7 (5 in the last second), 7; endpoint 10.0.0.3 fails the same way, consecutive 0.
    const at = (t: number, failures: number): AppState => {
      const st = state(t, 10, 0);
      const d = st.routers[0]!.destinations[0]!;
      return {
        ...st,
        servers: [{ ...st.servers[0]!, failures }],
        routers: [{ ...st.routers[0]!, destinations: [{ ...d, endpoints: [...d.endpoints,
          { ...d.endpoints[0]!, key: '10.0.0.3:80', failures, consecutiveFailures: 0 }] }] }],
      };
    };
    const p = page([() => at(1000, 2), () => at(2000, 2), () => at(3000, 7), () => at(4000, 7)]);
    const srv = '127.0.0.1:7474';
    const look = (): [string | undefined, boolean, string | undefined, string | undefined] => [
      p.text(`srv-failures-rate-${srv}`), /\bbad\b/.test(p.parentOf(`srv-failures-rate-${srv}`)?.className ?? ''),
      p.text(`srv-failures-${srv}`), p.node('ep-failures-10.0.0.3:80')?.className,
    ];
    await p.step();
    assert.deepEqual(look(), ['\u2013', false, '2', 'num'], 'one sample: no rate, nothing red');
    await p.step();
    assert.deepEqual(look(), ['0.0/s', false, '2', 'num'], 'failures long ago are not red');
    await p.step();
    assert.deepEqual(look(), ['5.0/s', true, '7', 'num bad'], 'failures in the last interval are');
    await p.step();
    assert.deepEqual(look(), ['0.0/s', false, '7', 'num'], 'and stop being red when they stop');
    assert.equal(/\bbad\b/.test(p.parentOf(`srv-failures-${srv}`)?.className ?? ''), false, 'the total is never red');
    assert.equal(p.node('ep-failures-10.0.0.2:80')?.className, 'num bad', 'an endpoint failing now (consecutive failures) stays red');
  });

  it('recent errors: at the level the log wrote them, a repeated entry counted, newest first', async () => {
    const recentErrors: RecentError[] = [
      { at: 900, level: 'warn', msg: 'endpoint ejected', context: { endpoint: '10.0.0.2:80', failures: 5 }, count: 1, firstAt: 900 },
      { at: 61_000, level: 'info', msg: 'connect failed', context: { endpoint: '10.0.0.2:80', cause: 'refused' }, count: 400, firstAt: 100 },
    ];
    const p = page([() => ({ ...state(1000, 0, 0), recentErrors })]);
    await p.step();
    assert.equal(p.node('err-0')?.className, 'info');
    assert.equal(p.text('err-level-0'), 'info ');
    assert.equal(p.text('err-count-0'), ' \u00d7400 since 00:00:00');
    assert.equal(p.node('err-1')?.className, 'warn');
    assert.equal(p.node('err-count-1'), undefined, 'no count on a single one');
    assert.equal(p.text('errors-count'), '2');
  });

  it('inserts server data as text only', () => {
    assert.doesNotMatch(DASHBOARD_SCRIPT, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    assert.doesNotMatch(DASHBOARD_SCRIPT, /<\/script/i);
  });
});
