import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { ancestry, defaultWorkers, parseCfs, parseCpuMax, readCpuLimit, tightest } from './cpu-quota.ts';

it('parses cgroup v2 cpu.max', () => {
  const cases: [string, number | undefined][] = [
    ['max 100000\n', undefined], ['200000 100000\n', 2], ['150000 100000', 1.5], ['50000 100000', 0.5],
    ['100000', 1], ['', undefined], ['junk 100000', undefined], ['0 100000', undefined], ['100000 0', undefined],
  ];
  for (const [text, want] of cases) assert.equal(parseCpuMax(text), want, JSON.stringify(text));
});

it('parses cgroup v1 cfs quota and period', () => {
  const cases: [string, string, number | undefined][] = [
    ['-1\n', '100000\n', undefined], ['300000\n', '100000\n', 3], ['25000', '100000', 0.25], ['x', '100000', undefined],
  ];
  for (const [q, p, want] of cases) assert.equal(parseCfs(q, p), want, `${q}/${p}`);
});

it('defaults workers to the cores capped by the quota, rounded up, at least one', () => {
  const cases: [number, number | undefined, number][] = [
    [8, undefined, 8], [8, 2, 2], [8, 1.5, 2], [8, 0.5, 1], [2, 16, 2], [1, undefined, 1], [4, tightest([undefined, 3, 1]), 1],
  ];
  for (const [cores, limit, want] of cases) assert.equal(defaultWorkers(cores, limit), want, `${cores} cores, limit ${limit}`);
  assert.equal(tightest([]), undefined);
  assert.deepEqual(ancestry('/a/b'), ['/a/b', '/a', '']);
  assert.deepEqual(ancestry('/'), ['']);
});

it('reads the tightest limit of a cgroup and its ancestors (v2) or the v1 cpu controller', () => {
  const root = mkdtempSync(join(tmpdir(), 'cgroup-'));
  mkdirSync(join(root, 'kubepods/pod1'), { recursive: true });
  writeFileSync(join(root, 'cpu.max'), 'max 100000\n');
  writeFileSync(join(root, 'kubepods/cpu.max'), '400000 100000\n');
  writeFileSync(join(root, 'kubepods/pod1/cpu.max'), '150000 100000\n');
  assert.equal(readCpuLimit(root, '0::/kubepods/pod1\n'), 1.5);
  assert.equal(readCpuLimit(root, '0::/\n'), undefined, 'the root has no quota');
  assert.equal(readCpuLimit(root, '0::/elsewhere/not-mounted\n'), undefined);
  const v1 = mkdtempSync(join(tmpdir(), 'cgroup-v1-'));
  mkdirSync(join(v1, 'cpu,cpuacct/docker/abc'), { recursive: true });
  writeFileSync(join(v1, 'cpu,cpuacct/docker/abc/cpu.cfs_quota_us'), '200000\n');
  writeFileSync(join(v1, 'cpu,cpuacct/docker/abc/cpu.cfs_period_us'), '100000\n');
  assert.equal(readCpuLimit(v1, '4:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n'), 2);
});
