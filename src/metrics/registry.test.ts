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
    assert.equal(r.render(), [
      'l5d:c{rt="a"} 2',
      'l5d:g{a="2", z="1"} 7',
      'l5d:s_count{rt="a"} 1',
      'l5d:s_bucket{le="5", rt="a"} 1',
      'l5d:s_bucket{le="+Inf", rt="a"} 1',
      'l5d:s_min{rt="a"} 3',
      'l5d:s_max{rt="a"} 3',
      'l5d:s_sum{rt="a"} 3',
      '',
    ].join('\n'));
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
});
