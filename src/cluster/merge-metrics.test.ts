import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MetricDump } from '../metrics/registry.ts';
import { ClusterMetrics, mergeDumps } from './merge-metrics.ts';

const c = (name: string, value: number, labels = 'rt="r"'): MetricDump => ({ t: 'c', name, labels, value });
const g = (name: string, value: number, labels = 'dst="/svc", rt="r"'): MetricDump => ({ t: 'g', name, labels, value });
const line = (text: string, name: string): string | undefined => text.split('\n').find((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));

describe('mergeDumps', () => {
  it('adds counters and load gauges; takes the largest of shared-state gauges', () => {
    const out = mergeDumps([
      [c('l5d:srv:accepts', 3), g('l5d:balancer:endpoint:available', 1), g('l5d:srv:active', 2, 'rt="r"')],
      [c('l5d:srv:accepts', 4), g('l5d:balancer:endpoint:available', 1), g('l5d:srv:active', 5, 'rt="r"')],
    ]);
    const v = (n: string): number | undefined => out.find((d) => d.name === n && d.t !== 's')?.['value' as never];
    assert.equal(v('l5d:srv:accepts'), 7);
    assert.equal(v('l5d:balancer:endpoint:available'), 1);
    assert.equal(v('l5d:srv:active'), 7);
  });

  it('adds stats bucket by bucket', () => {
    const s = (count: number, max: number): MetricDump => ({ t: 's', name: 'l5d:srv:connect:latency_us', labels: '', count, sum: count * 10, min: 1, max, buckets: [count, 0] });
    const [m] = mergeDumps([[s(2, 50)], [s(3, 70)]]);
    assert.deepEqual(m, { t: 's', name: 'l5d:srv:connect:latency_us', labels: '', count: 5, sum: 50, min: 1, max: 70, buckets: [5, 0] });
  });
});

describe('ClusterMetrics', () => {
  it('keeps a dead worker\'s counts (never going backwards), forgets its gauges, and ignores an answer that arrives after its exit', () => {
    const m = new ClusterMetrics();
    m.update(1, [c('l5d:srv:accepts', 21), g('process:rss_bytes', 9, 'worker="1"')]);
    m.update(2, [c('l5d:srv:accepts', 19), g('process:rss_bytes', 8, 'worker="2"')]);
    assert.equal(line(m.render(), 'l5d:srv:accepts'), 'l5d:srv:accepts{rt="r"} 40');
    m.exited(1);
    m.update(1, [c('l5d:srv:accepts', 22)]); // late: already folded in
    m.update(2, undefined); // missed a scrape: its last answer counts
    const after = m.render();
    assert.equal(line(after, 'l5d:srv:accepts'), 'l5d:srv:accepts{rt="r"} 40');
    assert.doesNotMatch(after, /worker="1"/);
    assert.match(after, /process:rss_bytes\{worker="2"\} 8/);
    m.update(3, [c('l5d:srv:accepts', 5)]); // the replacement starts from 0
    assert.equal(line(m.render(), 'l5d:srv:accepts'), 'l5d:srv:accepts{rt="r"} 45');
  });
});
