// Every metric the code registers has its kind and help in METRIC_HELP (the table is what
// `/metrics` types and documents, and what the Grafana dashboard test checks names against).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ProcessSampler, registerProcessMetrics } from '../admin/process-metrics.ts';
import { destinationMetrics, serverMetrics } from './handles.ts';
import { exportedFamilies, METRIC_HELP, type MetricKind } from './help.ts';
import { Registry } from './registry.ts';

const SRC = new URL('..', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return sources(p);
    return d.name.endsWith('.ts') && !d.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Every `reg.counter(…)`, `registry.gauge(…)`, `this.registry.stat(…)` in src: its kind and the names its first argument can be. */
function registrations(): { file: string; kind: MetricKind; names: string[]; arg: string }[] {
  const out: { file: string; kind: MetricKind; names: string[]; arg: string }[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\b(?:reg|registry)\.(counter|gauge|stat)\(([^,)]*)/g)) {
      const arg = m[2]!;
      const names = [...arg.matchAll(/'([a-z0-9_]+:[a-z0-9_:]+)'/g)].map((x) => x[1]!);
      out.push({ file: file.slice(SRC.length), kind: m[1] as MetricKind, names, arg });
    }
  }
  return out;
}

describe('metric help table', () => {
  const found = registrations();

  it('finds the registrations (the scan itself works)', () => {
    assert.ok(found.length >= 60, `only ${found.length} registrations found`);
    assert.ok(found.some((r) => r.names.includes('l5d:srv:accepts') && r.kind === 'counter'));
  });

  it('every registered name has help, with the kind it is registered as', () => {
    for (const r of found) {
      assert.ok(r.names.length > 0, `${r.file}: ${r.kind}(${r.arg}): a name the scan cannot read; use string literals`);
      for (const n of r.names) {
        const h = METRIC_HELP[n];
        assert.ok(h, `${r.file}: ${n} has no entry in src/metrics/help.ts`);
        assert.equal(h.kind, r.kind, `${r.file}: ${n} is registered as a ${r.kind}`);
        assert.match(h.help, /^\S.*\.$/, `${n}: one sentence`);
        assert.doesNotMatch(h.help, /\n/, `${n}: one line`);
      }
    }
  });

  it('has no entry for a name nothing registers', () => {
    const registered = new Set(found.flatMap((r) => r.names));
    for (const n of Object.keys(METRIC_HELP)) assert.ok(registered.has(n), `${n} is in help.ts but never registered`);
  });

  it('a live registry renders one HELP and one TYPE per family, before its samples', () => {
    const reg = new Registry();
    serverMetrics(reg, 'r', '127.0.0.1:1', true, { active: () => 1, waiters: () => 0 }).connectLatencyUs.record(5);
    const z = () => 0;
    destinationMetrics(reg, 'r', '/svc/x', { available: z, failed: z, retired: z, pending: z, open: z, waiters: z }).latencyUs.record(9);
    const sampler: ProcessSampler = {
      sample: () => { throw new Error('not used by the gauges'); },
      cpuSecs: () => ({ user: 1, system: 1 }), uptimeSecs: () => 1, openFds: () => 3, eventLoopDelayP99Ms: () => 1, close() {},
    };
    const proc = registerProcessMetrics(reg, sampler);
    reg.snapshot();
    const lines = reg.render().trimEnd().split('\n');
    proc.close();
    const families = new Set(lines.filter((l) => !l.startsWith('#')).map((l) => l.replace(/[{ ].*/, '')));
    const exported = exportedFamilies();
    for (const f of families) {
      assert.ok(exported.has(f), `${f} is not in the help table`);
      const first = lines.findIndex((l) => l.startsWith(`${f}{`) || l.startsWith(`${f} `));
      assert.equal(lines.filter((l) => l.startsWith(`# HELP ${f} `)).length, 1, `${f}: one HELP`);
      assert.equal(lines.filter((l) => l.startsWith(`# TYPE ${f} `)).length, 1, `${f}: one TYPE`);
      assert.ok(lines.indexOf(lines.find((l) => l.startsWith(`# TYPE ${f} `))!) < first, `${f}: TYPE before its samples`);
    }
    assert.ok(families.has('process:rss_bytes') && families.has('l5d:balancer:connection:latency_us_bucket'));
  });
});
