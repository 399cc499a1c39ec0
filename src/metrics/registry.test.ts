import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from './registry.ts';

describe('Registry', () => {
  it('renders tacho format: sorted labels joined by ", ", counters then gauges then stats', () => {
    const r = new Registry();
    r.stat('l5d:s', { rt: 'a' }).record(3);
    r.gauge('l5d:g', { z: '1', a: '2' }, () => 7);
    r.counter('l5d:c', { rt: 'a' }).value = 2;
    r.snapshot();
    // Names not in the help table get a TYPE but no HELP (help.test.ts keeps that from shipping).
    assert.equal(r.render(), [
      '# TYPE l5d:c counter',
      'l5d:c{rt="a"} 2',
      '# TYPE l5d:g gauge',
      'l5d:g{a="2", z="1"} 7',
      '# TYPE l5d:s_count gauge',
      'l5d:s_count{rt="a"} 1',
      '# TYPE l5d:s_bucket gauge',
      'l5d:s_bucket{le="5", rt="a"} 1',
      'l5d:s_bucket{le="+Inf", rt="a"} 1',
      '# TYPE l5d:s_min gauge',
      'l5d:s_min{rt="a"} 3',
      '# TYPE l5d:s_max gauge',
      'l5d:s_max{rt="a"} 3',
      '# TYPE l5d:s_sum gauge',
      'l5d:s_sum{rt="a"} 3',
      '',
    ].join('\n'));
  });

  it('keeps each family together under one HELP and TYPE, however its series were registered', () => {
    const r = new Registry();
    for (const rt of ['a', 'b']) {
      r.counter('l5d:srv:accepts', { rt }).value = 1;
      r.counter('l5d:srv:closes', { rt }).value = 1;
      r.stat('l5d:srv:connect:latency_us', { rt }).record(7);
    }
    r.stat('l5d:srv:connect:latency_us', { rt: 'c' }); // no values: only its _count
    r.snapshot();
    const lines = r.render().trimEnd().split('\n');
    const family = (l: string): string => (l.startsWith('# ') ? l.split(' ')[2]! : l.replace(/[{ ].*/, ''));
    // Contiguous: once a family's lines end, its name never comes back.
    const order = lines.map(family).filter((f, i, all) => i === 0 || all[i - 1] !== f);
    assert.deepEqual(order, [...new Set(order)]);
    assert.deepEqual(lines.slice(0, 4), [
      '# HELP l5d:srv:accepts Client connections accepted by this server.',
      '# TYPE l5d:srv:accepts counter',
      'l5d:srv:accepts{rt="a"} 1',
      'l5d:srv:accepts{rt="b"} 1',
    ]);
    for (const part of ['_count', '_bucket', '_min', '_max', '_sum']) {
      const name = `l5d:srv:connect:latency_us${part}`;
      assert.equal(lines.filter((l) => l === `# TYPE ${name} gauge`).length, 1, name);
      assert.match(lines.find((l) => l.startsWith(`# HELP ${name} `)) ?? '', /in microseconds: .*last interval/);
    }
    assert.ok(lines.includes('l5d:srv:connect:latency_us_count{rt="c"} 0'));
    assert.ok(!lines.some((l) => l.startsWith('l5d:srv:connect:latency_us_min{rt="c"}')));
  });

  it('shows stats per interval: a snapshot moves the interval out and starts a new one', () => {
    const r = new Registry();
    const s = r.stat('l5d:s');
    s.record(1);
    r.snapshot();
    s.record(100);
    assert.match(r.render(), /l5d:s_count 1\n/);
    r.snapshot();
    assert.match(r.render(), /l5d:s_max 100\n/);
  });

  it('merges dumps from several workers by summing', () => {
    const a = new Registry(), b = new Registry();
    for (const [r, n] of [[a, 2], [b, 3]] as const) {
      r.counter('l5d:srv:accepts', { rt: 'x' }).value = n;
      r.gauge('l5d:srv:active', { rt: 'x' }).value = n * 10;
      r.stat('l5d:lat', { rt: 'x' }).record(n);
      r.snapshot();
    }
    const m = Registry.merged([a.dump(), b.dump()]).render();
    assert.match(m, /l5d:srv:accepts\{rt="x"\} 5\n/);
    assert.match(m, /l5d:srv:active\{rt="x"\} 50\n/);
    assert.match(m, /l5d:lat_count\{rt="x"\} 2\n/);
    assert.match(m, /l5d:lat_min\{rt="x"\} 2\n/);
    assert.match(m, /l5d:lat_max\{rt="x"\} 3\n/);
  });

  it('renders merged dumps of several processes with one HELP and TYPE per family', () => {
    const worker = new Registry(), primary = new Registry();
    worker.gauge('process:rss_bytes', { worker: '1' }).value = 5;
    worker.counter('l5d:srv:accepts', { rt: 'x' }).value = 1;
    primary.gauge('process:rss_bytes').value = 7;
    const lines = Registry.merged([worker.dump(), primary.dump()]).render().split('\n');
    assert.equal(lines.filter((l) => l === '# TYPE process:rss_bytes gauge').length, 1);
    assert.equal(lines.filter((l) => l.startsWith('# HELP process:rss_bytes ')).length, 1);
    const at = lines.indexOf('# TYPE process:rss_bytes gauge');
    assert.deepEqual(lines.slice(at + 1, at + 3), ['process:rss_bytes{worker="1"} 5', 'process:rss_bytes 7']);
  });
});
