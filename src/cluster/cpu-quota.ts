// How many CPUs this process may use under its cgroup's quota (containers, systemd
// CPUQuota=): cgroup v2 `cpu.max` ("max 100000" or "200000 100000") in its cgroup and
// every ancestor, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`. The parsing is pure;
// readCpuLimit reads the files. No quota (or none readable): undefined, use the cores.
import { readFileSync } from 'node:fs';

/** CPUs allowed by one v2 `cpu.max` text; undefined when unlimited or unreadable. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  return ratio(quota, period ?? '100000');
}

/** CPUs allowed by v1 `cpu.cfs_quota_us` (-1: none) over `cpu.cfs_period_us`. */
export function parseCfs(quotaUs: string, periodUs: string): number | undefined {
  return ratio(quotaUs.trim(), periodUs.trim());
}

function ratio(quota: string | undefined, period: string): number | undefined {
  if (quota === undefined || !/^\d+$/.test(quota) || !/^\d+$/.test(period)) return undefined; // "max", "-1", junk
  const q = Number(quota), p = Number(period);
  return q > 0 && p > 0 ? q / p : undefined;
}

/** The tightest of several limits (a cgroup and its ancestors); undefined when none. */
export function tightest(limits: readonly (number | undefined)[]): number | undefined {
  const set = limits.filter((l): l is number => l !== undefined);
  return set.length === 0 ? undefined : Math.min(...set);
}

/** Workers by default: the cores, capped by the quota rounded up, at least 1. */
export function defaultWorkers(cores: number, limit: number | undefined): number {
  return Math.max(1, limit === undefined ? cores : Math.min(cores, Math.ceil(limit)));
}

/** `/a/b` → [`/a/b`, `/a`, ``]: a cgroup and its ancestors, as paths under the mount. */
export function ancestry(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '');
  const out: string[] = [];
  for (let i = parts.length; i >= 0; i--) out.push(parts.slice(0, i).map((p) => `/${p}`).join(''));
  return out;
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** The CPU limit of this process's cgroup (v2, else v1), from /proc/self/cgroup and /sys/fs/cgroup. */
export function readCpuLimit(root = '/sys/fs/cgroup', self = read('/proc/self/cgroup') ?? ''): number | undefined {
  const lines = self.split('\n').map((l) => l.split(':'));
  const v2 = lines.find((l) => l[0] === '0' && l[1] === '');
  const v1 = lines.find((l) => (l[1] ?? '').split(',').includes('cpu'));
  const limits: (number | undefined)[] = [];
  // In a container the cgroup path may be the host's and not mounted: its ancestors end at the mount root.
  for (const dir of ancestry(v2?.[2] ?? '/')) {
    const max = read(`${root}${dir}/cpu.max`);
    if (max !== undefined) limits.push(parseCpuMax(max));
  }
  if (v1) {
    for (const mount of [`${root}/${v1[1]}`, `${root}/cpu,cpuacct`, `${root}/cpu`]) {
      for (const dir of ancestry(v1[2] ?? '/')) {
        const q = read(`${mount}${dir}/cpu.cfs_quota_us`), p = read(`${mount}${dir}/cpu.cfs_period_us`);
        if (q !== undefined && p !== undefined) limits.push(parseCfs(q, p));
      }
    }
  }
  return tightest(limits);
}
