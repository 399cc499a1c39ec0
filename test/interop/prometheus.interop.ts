// A real Prometheus scraping the proxy's /metrics every second (issue 24): known traffic
// through the CLI (connections with known byte counts, connections to a dead backend) read
// back over Prometheus's query API; the TYPE and HELP metadata it keeps checked against
// src/metrics/help.ts; `promtool check metrics` on a scrape (only the warnings inherited
// from linkerd-tcp's names); and every query of the Grafana dashboard evaluated after the
// traffic: no errors, and data in the main panels.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportedFamilies, METRIC_HELP, STAT_PARTS } from '../../src/metrics/help.ts';
import { loadDashboard, panelTargets, substitute } from '../support/grafana.ts';
import type { Proxy } from '../support/harness.ts';
import { Cleanup, deadline, echo, freePort, run, startBackend, waitForPort } from './support.ts';

/** promtool's lint findings that come from linkerd-tcp's names and tacho's stat parts, kept for drop-in dashboards. */
export const INHERITED_WARNINGS: readonly RegExp[] = [
  /^\S+ metric names should not contain ':'$/, // l5d:srv:accepts: linkerd-tcp's scope separator
  /^\S+ counter metrics should have "_total" suffix$/, // l5d:srv:accepts, not l5d:srv:accepts_total
  /^\S+ metric names should not contain abbreviated units$/, // _us, _ms
  /^\S+_count non-histogram and non-summary metrics should not have "_count" suffix$/, // stat parts, and l5d:resolver:*_count
  /^\S+_sum non-histogram and non-summary metrics should not have "_sum" suffix$/,
  /^\S+_bucket non-histogram metrics should not have "_bucket" suffix$/,
  /^\S+_bucket non-histogram metrics should not have "le" label$/,
];

const K = 1000; // bytes each connection sends (and gets echoed back)
const FAILED = 3; // connections to the server whose backend is dead

describe('prometheus: scraping /metrics, typed; the Grafana dashboard queries', () => {
  const c = new Cleanup();
  let proxy: Proxy;
  let prom: string; // http://127.0.0.1:port
  let admin: string;
  let good: number, bad: number;
  let goodAddr: string;
  let conns = 0; // connections made to `good`, each K bytes each way
  let t0 = 0;

  const api = async (path: string, params: Record<string, string>): Promise<{ status: string; data: unknown; error?: string }> => {
    const r = await fetch(`${prom}${path}?${new URLSearchParams(params)}`, { signal: AbortSignal.timeout(5000) });
    return await r.json() as { status: string; data: unknown; error?: string };
  };
  /** An instant query's single value (summed by the query), or undefined when empty. */
  const value = async (q: string): Promise<number | undefined> => {
    const r = await api('/api/v1/query', { query: q });
    assert.equal(r.status, 'success', `${q}: ${r.error}`);
    const v = (r.data as { result: { value: [number, string] }[] }).result[0]?.value[1];
    return v === undefined ? undefined : Number(v);
  };
  /** Asks `probe` until it answers something other than undefined; bounded by `ms`. */
  const until = async <T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> => {
    const end = Date.now() + ms;
    let last: T | undefined;
    for (;;) {
      last = await probe();
      if (last !== undefined) return last;
      if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100)); // Prometheus has no push: poll its API, bounded
    }
  };
  const lastScrape = async (): Promise<number> => (await value('timestamp(up{job="linkerd-tcp"})')) ?? 0;
  const nextScrape = async (): Promise<void> => {
    const before = await lastScrape();
    await until('the next scrape', 10_000, async () => ((await lastScrape()) > before ? true : undefined));
  };

  /**
   * One client connection to `port`: K bytes out, the echo read back, closed; resolves with the
   * bytes echoed once closed. `failing`: the proxy may reset it (its backend is dead).
   */
  const exchange = (port: number, failing = false): Promise<number> => deadline(5000, `exchange on ${port}`, new Promise<number>((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = 0;
    s.on('error', (e) => { if (!failing) reject(e); });
    s.on('data', (d: Buffer) => { got += d.length; if (got >= K) s.end(); });
    s.on('close', () => resolve(got));
    s.write(Buffer.alloc(K, 'x'));
  }));

  before(async () => {
    const backend = await startBackend(echo);
    c.add(() => backend.close());
    const dead = await freePort();
    ({ proxy } = await c.proxy(`
admin: {port: 0, graceSecs: 1, metricsIntervalSecs: 1}
routers:
- label: interop
  dtab: |
    /svc/be => /$/inet/127.0.0.1/${backend.port};
    /svc/dead => /$/inet/127.0.0.1/${dead};
  servers:
  - port: 0
    dstName: /svc/be
  - port: 0
    dstName: /svc/dead
`, 2));
    const portFor = (dst: string): number => Number(String(proxy.logs.find((l) => l.msg === 'listening' && l['dst'] === dst)!['srv']).split(':').pop());
    good = portFor('/svc/be');
    bad = portFor('/svc/dead');
    goodAddr = `127.0.0.1:${good}`;
    admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);

    const dir = c.tmpDir('prometheus');
    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, [
      'global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}',
      'scrape_configs:',
      '- job_name: linkerd-tcp',
      `  static_configs: [{targets: ['${admin}']}]`,
      '',
    ].join('\n'));
    const port = await freePort(); // bound then released: Prometheus cannot listen on port 0
    prom = `http://127.0.0.1:${port}`;
    const d = c.daemon('prometheus', 'prometheus', [
      `--config.file=${config}`, `--web.listen-address=127.0.0.1:${port}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      '--storage.tsdb.retention.time=1h', '--log.level=warn',
    ]);
    await waitForPort(port, 20_000, 'prometheus');
    await until('prometheus to scrape the proxy (up == 1)', 20_000, async () => {
      try { return (await value('up{job="linkerd-tcp"}')) === 1 ? true : undefined; } catch { return undefined; }
    }).catch((e: Error) => { throw new Error(`${e.message}\n${d.output.slice(-2000)}`); });
    t0 = Date.now() / 1000 - 5;

    // Known traffic: batches of echo exchanges, one batch per scrape, until Prometheus has seen
    // a connect-latency interval (stats are per interval) and at least 20 connections were made.
    await until('a scraped connect-latency interval', 30_000, async () => {
      for (let i = 0; i < 5; i++) assert.equal(await exchange(good), K);
      conns += 5;
      await nextScrape();
      const seen = await value(`count(l5d:srv:connect:latency_us_bucket{srv_addr="${goodAddr}"})`);
      return conns >= 20 && seen !== undefined ? true : undefined;
    });
    for (let i = 0; i < FAILED; i++) assert.equal(await exchange(bad, true), 0, 'the dead backend: closed with nothing echoed');
  });
  after(() => c.run());

  it('reads back over the query API what happened: accepts, bytes each way, failures', async () => {
    const srv = `rt="interop", srv_addr="${goodAddr}"`;
    await until(`accepts = ${conns} and bytes = ${conns * K} each way`, 15_000, async () => {
      const [a, rx, tx] = await Promise.all([`l5d:srv:accepts{${srv}}`, `l5d:srv:stream:rx_bytes{${srv}}`, `l5d:srv:stream:tx_bytes{${srv}}`].map((q) => value(`sum(${q})`)));
      return a === conns && rx === conns * K && tx === conns * K ? true : undefined;
    }).catch(async (e: Error) => { throw new Error(`${e.message}\n${await (await fetch(`http://${admin}/metrics`)).text()}`); });
    assert.equal(await value(`sum(l5d:balancer:connection:connects{rt="interop", dst="/svc/be"})`), conns);
    const badSrv = `rt="interop", srv_addr="127.0.0.1:${bad}"`;
    await until(`${FAILED} accepted and failed on the dead backend's server`, 15_000, async () => {
      const [a, f] = await Promise.all([value(`sum(l5d:srv:accepts{${badSrv}})`), value(`sum(l5d:srv:failures{${badSrv}})`)]);
      return a === FAILED && f === FAILED ? true : undefined;
    });
    const refused = await value('sum(l5d:balancer:connection:failure{dst="/svc/dead", cause="refused"})');
    assert.ok((refused ?? 0) >= 1, `refused connects to the dead backend: ${refused}`);
    assert.equal(await value(`sum(l5d:srv:stream:rx_bytes{${badSrv}})`), 0);
  });

  it("Prometheus's metadata has every family's TYPE and HELP as declared", async () => {
    const r = await api('/api/v1/metadata', {});
    assert.equal(r.status, 'success');
    const meta = r.data as Record<string, { type: string; help: string }[]>;
    const declared = new Map<string, { type: string; help: string }>();
    for (const [name, f] of Object.entries(METRIC_HELP)) {
      if (f.kind !== 'stat') declared.set(name, { type: f.kind, help: f.help });
      else for (const p of STAT_PARTS) declared.set(name + p.suffix, { type: 'gauge', help: '' });
    }
    const ours = Object.keys(meta).filter((n) => /^(l5d|process):/.test(n));
    assert.ok(ours.length >= 30, `only ${ours.length} families in the metadata`);
    for (const n of ours) {
      const want = declared.get(n);
      assert.ok(want, `${n} is not in the help table`);
      assert.deepEqual(meta[n]!.map((m) => m.type), [want.type], n);
      assert.ok(meta[n]![0]!.help.length > 10, `${n} has help`);
      if (want.help) assert.equal(meta[n]![0]!.help, want.help, n);
    }
    for (const n of ['l5d:srv:accepts', 'l5d:srv:stream:rx_bytes', 'l5d:balancer:connection:connects']) assert.equal(meta[n]?.[0]?.type, 'counter', n);
    for (const n of ['l5d:srv:active', 'process:rss_bytes', 'l5d:srv:connect:latency_us_count', 'l5d:srv:connect:latency_us_bucket']) assert.equal(meta[n]?.[0]?.type, 'gauge', n);
  });

  it('promtool check metrics: no finding beyond those inherited from linkerd-tcp names', async () => {
    const text = await (await fetch(`http://${admin}/metrics`)).text();
    assert.match(text, /^# TYPE l5d:srv:accepts counter$/m);
    const r = await run('promtool', ['check', 'metrics'], { input: text, timeoutMs: 20_000 });
    const findings = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
    assert.ok(r.code === 0 || r.code === 3, `promtool exited ${r.code}: ${findings.join('\n')}`); // 3: lint findings only
    const unexpected = findings.filter((l) => !INHERITED_WARNINGS.some((re) => re.test(l)));
    assert.deepEqual(unexpected, [], 'promtool findings not inherited from linkerd-tcp');
    // The check can fail: a typo'd family (counter without help, histogram-less _bucket) is reported.
    const bad = await run('promtool', ['check', 'metrics'], { input: 'l5d_x_total 1\n', timeoutMs: 20_000 });
    assert.ok((bad.stdout + bad.stderr).split('\n').some((l) => l.trim() && !INHERITED_WARNINGS.some((re) => re.test(l))));
  });

  it('every Grafana dashboard query evaluates without error; the main panels have data', async () => {
    const targets = panelTargets(loadDashboard());
    const end = String(Date.now() / 1000);
    const empty: string[] = [];
    const values = [
      { rt: '.*', srv_addr: '.*', dst: '.*' },
      { rt: 'interop', srv_addr: goodAddr.replace(/\./g, '\\\\.'), dst: '/svc/be' },
    ];
    for (const vars of values) {
      for (const t of targets) {
        const q = substitute(t.expr, vars);
        const r = await api('/api/v1/query_range', { query: q, start: String(t0), end, step: '1' });
        assert.equal(r.status, 'success', `${t.panel}/${t.refId}: ${q}: ${r.error}`);
        if ((r.data as { result: unknown[] }).result.length === 0) empty.push(`${t.panel}/${t.refId}`);
      }
    }
    for (const main of ['Accepted connections', 'Backend connects', 'Bytes / s each way', 'Open connections', 'Connect latency quantiles', 'Endpoints by state', 'Process CPU', 'Process RSS']) {
      const ts = targets.filter((t) => t.panel.startsWith(main));
      assert.ok(ts.length > 0, `a panel "${main}"`);
      for (const t of ts.filter((x) => x.refId === 'A')) assert.ok(!empty.includes(`${t.panel}/A`), `${t.panel}: no data`);
    }
    // Every name the dashboard reads is one the proxy exports (deploy.test.ts checks the same offline).
    assert.ok(exportedFamilies().has('l5d:srv:connect:latency_us_bucket'));
  });
});
