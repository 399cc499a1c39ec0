// Process figures (CPU, memory, open fds, event-loop delay, uptime), sampled on demand:
// as `process:*` gauges read at scrape time, and as the `process` block of /api/state.
// One event-loop delay monitor per sampler; `close()` stops it.
import { readdirSync, readFileSync } from 'node:fs';
import { fdExhaustions } from '../metrics/fd-exhaustion.ts';
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

/** The soft limit on open files (Linux `/proc/self/limits`), or null when unknown or unlimited. */
export function fdLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Watches open files against the limit once a second. At the limit the kernel (through
 * libuv) accepts and closes new connections without telling anyone; this makes it visible:
 * `warn` when 95 % is reached or an accept or connect failed with EMFILE/ENFILE since the last
 * look (at most every 10 s while it lasts), `info` once back under 80 % with no new failure.
 */
export function watchFdLimit(onState: (state: 'near' | 'clear', openFds: number, limit: number) => void, everyMs = 1000): { close(): void } {
  let near = false;
  let warnedAt = 0;
  let lastLimit = fdLimit();
  let lastExhaustions = fdExhaustions();
  const timer = setInterval(() => {
    // At the limit even these reads fail (they need a descriptor): that failure is the answer.
    const limit = (lastLimit = fdLimit() ?? lastLimit);
    if (limit === null) return;
    let open: number;
    try {
      open = readdirSync('/proc/self/fd').length - 1;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EMFILE' && (e as NodeJS.ErrnoException).code !== 'ENFILE') return;
      open = limit;
    }
    // An accept or connect refused for want of descriptors since the last look: the table was
    // full then, even if it is not at this moment.
    const exhausted = fdExhaustions() !== lastExhaustions;
    lastExhaustions = fdExhaustions();
    if (exhausted || open >= limit * 0.95) {
      if (!near || Date.now() - warnedAt >= 10_000) {
        warnedAt = Date.now();
        onState('near', open, limit);
      }
      near = true;
    } else if (near && open < limit * 0.8) {
      near = false;
      onState('clear', open, limit);
    }
  }, everyMs);
  timer.unref();
  return { close: () => clearInterval(timer) };
}

export const PROCESS_METRIC_NAMES: readonly string[] = [
  'process:cpu_user_seconds',
  'process:cpu_system_seconds',
  'process:rss_bytes',
  'process:heap_used_bytes',
  'process:open_fds',
  'process:max_fds',
  'process:event_loop_delay_p99_ms',
  'process:uptime_seconds',
];

/**
 * Registers the `process:*` gauges (sampled at scrape time). The returned `close()` removes
 * them and stops the sampler's monitor when the sampler was created here.
 */
export function registerProcessMetrics(registry: Registry, sampler?: ProcessSampler, labels: Readonly<Record<string, string>> = {}): { close(): void } {
  const s = sampler ?? createProcessSampler();
  registry.gauge('process:cpu_user_seconds', labels, () => s.cpuSecs().user);
  registry.gauge('process:cpu_system_seconds', labels, () => s.cpuSecs().system);
  registry.gauge('process:rss_bytes', labels, () => process.memoryUsage.rss());
  registry.gauge('process:heap_used_bytes', labels, () => process.memoryUsage().heapUsed);
  registry.gauge('process:open_fds', labels, () => s.openFds() ?? 0);
  registry.gauge('process:max_fds', labels, () => fdLimit() ?? 0);
  registry.gauge('process:event_loop_delay_p99_ms', labels, () => s.eventLoopDelayP99Ms() ?? 0);
  registry.gauge('process:uptime_seconds', labels, () => s.uptimeSecs());
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
