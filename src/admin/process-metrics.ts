// Process figures (CPU, memory, open fds, event-loop delay, uptime), sampled on demand:
// as `process:*` gauges read at scrape time, and as the `process` block of /api/state.
// One event-loop delay monitor per sampler; `close()` stops it.
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from '../metrics/registry.ts';

export interface ProcessInfo {
  readonly pid: number;
  readonly nodeVersion: string;
  readonly startedAt: number; // epoch ms
  readonly uptimeSecs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  readonly cpuUserSecs: number;
  readonly cpuSystemSecs: number;
  readonly openFds: number | null; // null where /proc/self/fd does not exist
  readonly eventLoopDelayP99Ms: number | null; // null before the first sample
}

export interface ProcessSampler {
  sample(): ProcessInfo;
  cpuSecs(): { user: number; system: number };
  uptimeSecs(): number;
  openFds(): number | null;
  /** p99 of the event-loop delay over the last complete window (or the current one at first). */
  eventLoopDelayP99Ms(): number | null;
  close(): void;
}

/** Event-loop p99 is reported per window of `windowMs`, so one stall is visible for a while, then ages out. */
export function createProcessSampler(opts: { startedAt?: number; windowMs?: number; now?: () => number } = {}): ProcessSampler {
  const now = opts.now ?? Date.now;
  const startedAt = opts.startedAt ?? now();
  const windowMs = opts.windowMs ?? 10_000;
  let h: ReturnType<typeof monitorEventLoopDelay> | undefined = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let windowStart = now();
  let lastP99: number | null = null;

  const eventLoopDelayP99Ms = (): number | null => {
    if (!h) return lastP99;
    const t = now();
    const current = h.count > 0 ? h.percentile(99) / 1e6 : null;
    if (t - windowStart >= windowMs) {
      if (current !== null) lastP99 = current;
      h.reset();
      windowStart = t;
      return lastP99;
    }
    return lastP99 ?? current;
  };
  const cpuSecs = (): { user: number; system: number } => {
    const c = process.cpuUsage();
    return { user: c.user / 1e6, system: c.system / 1e6 };
  };
  const uptimeSecs = (): number => Math.max(0, (now() - startedAt) / 1000);
  return {
    cpuSecs,
    uptimeSecs,
    openFds,
    eventLoopDelayP99Ms,
    sample(): ProcessInfo {
      const mem = process.memoryUsage();
      const cpu = cpuSecs();
      return {
        pid: process.pid,
        nodeVersion: process.version,
        startedAt,
        uptimeSecs: uptimeSecs(),
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        heapTotalBytes: mem.heapTotal,
        cpuUserSecs: cpu.user,
        cpuSystemSecs: cpu.system,
        openFds: openFds(),
        eventLoopDelayP99Ms: eventLoopDelayP99Ms(),
      };
    },
    close(): void {
      h?.disable();
      h = undefined;
    },
  };
}

/** Open file descriptors of this process (Linux); the directory handle itself is not counted. */
function openFds(): number | null {
  try {
    return Math.max(0, readdirSync('/proc/self/fd').length - 1);
  } catch {
    return null;
  }
}

export const PROCESS_METRIC_NAMES: readonly string[] = [
  'process:cpu_user_seconds',
  'process:cpu_system_seconds',
  'process:rss_bytes',
  'process:heap_used_bytes',
  'process:open_fds',
  'process:event_loop_delay_p99_ms',
  'process:uptime_seconds',
];

/**
 * Registers the `process:*` gauges (sampled at scrape time). The returned `close()` removes
 * them and stops the sampler's monitor when the sampler was created here.
 */
export function registerProcessMetrics(registry: Registry, sampler?: ProcessSampler): { close(): void } {
  const s = sampler ?? createProcessSampler();
  registry.gauge('process:cpu_user_seconds', {}, () => s.cpuSecs().user);
  registry.gauge('process:cpu_system_seconds', {}, () => s.cpuSecs().system);
  registry.gauge('process:rss_bytes', {}, () => process.memoryUsage.rss());
  registry.gauge('process:heap_used_bytes', {}, () => process.memoryUsage().heapUsed);
  registry.gauge('process:open_fds', {}, () => s.openFds() ?? 0);
  registry.gauge('process:event_loop_delay_p99_ms', {}, () => s.eventLoopDelayP99Ms() ?? 0);
  registry.gauge('process:uptime_seconds', {}, () => s.uptimeSecs());
  let closed = false;
  return {
    close(): void {
      if (closed) return;
      closed = true;
      registry.removeWhere((name) => PROCESS_METRIC_NAMES.includes(name));
      if (!sampler) s.close();
    },
  };
}
