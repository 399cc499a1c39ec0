// The health-check policy, pure: consecutive passes and failures move an endpoint's verdict
// across the thresholds, and the schedule spreads checks over the interval. No I/O, no
// timers; the checker (checker.ts) passes results in and the clock's randomness.
import type { HealthCheckTiming } from '../config/types.ts';

/** One endpoint's check history. `healthy` undefined: no verdict yet (treated as usable). */
export interface HealthState {
  healthy: boolean | undefined;
  passes: number; // consecutive
  fails: number; // consecutive
}

export const newHealthState = (): HealthState => ({ healthy: undefined, passes: 0, fails: 0 });

/**
 * Records one check; returns the new verdict when it changed, else undefined. The first
 * pass gives a verdict of healthy at once (an endpoint starts in rotation); leaving
 * rotation takes `unhealthyThreshold` failures in a row, returning `healthyThreshold` passes.
 */
export function recordCheck(s: HealthState, ok: boolean, t: HealthCheckTiming): boolean | undefined {
  if (ok) {
    s.passes++;
    s.fails = 0;
    if (s.healthy === undefined || (s.healthy === false && s.passes >= t.healthyThreshold)) return (s.healthy = true);
    return undefined;
  }
  s.fails++;
  s.passes = 0;
  if (s.healthy !== false && s.fails >= t.unhealthyThreshold) return (s.healthy = false);
  return undefined;
}

/** Share of the interval taken off at random, so checks of many endpoints drift apart. */
export const JITTER = 0.2;

/** Delay before an endpoint's first check: anywhere in one interval, so a new set spreads out. */
export function firstDelayMs(t: HealthCheckTiming, random: () => number): number {
  return Math.floor(random() * t.intervalMs);
}

/**
 * Delay from the end of a check to the start of the next, `elapsedMs` after it started.
 * Start to start is never longer than `intervalMs` (jitter only shortens it), so an
 * endpoint that dies is judged within unhealthyThreshold × intervalMs + timeoutMs.
 */
export function nextDelayMs(t: HealthCheckTiming, random: () => number, elapsedMs: number): number {
  return Math.max(0, Math.floor(t.intervalMs * (1 - JITTER * random()) - elapsedMs));
}
