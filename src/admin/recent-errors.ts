// The last few warnings and errors, for /api/state and the dashboard. `teeErrors` wraps a
// Logger so every warn/error/fatal written through it (or its children, with their
// bindings) is also kept in a bounded ring. Only primitive context values are kept, cut
// short, so nothing large or secret-shaped lingers in memory.
import type { Logger, LogLevel } from '../log.ts';

export type ContextValue = string | number | boolean | null;

export interface RecentError {
  readonly at: number; // epoch ms
  readonly level: 'warn' | 'error' | 'fatal';
  readonly msg: string;
  readonly context: Readonly<Record<string, ContextValue>>;
}

const MAX_TEXT = 300;
const MAX_KEYS = 12;

export class RecentErrors {
  private readonly ring: RecentError[] = [];
  private readonly limit: number;
  private readonly now: () => number;

  constructor(limit = 50, now: () => number = Date.now) {
    this.limit = limit;
    this.now = now;
  }

  add(level: RecentError['level'], msg: string, ...contexts: readonly object[]): void {
    const context: Record<string, ContextValue> = {};
    let n = 0;
    for (const c of contexts) {
      for (const [k, v] of Object.entries(c)) {
        if (n >= MAX_KEYS || k === 'pid' || k in context) continue;
        const p = primitive(v);
        if (p === undefined) continue;
        context[k] = p;
        n++;
      }
    }
    this.ring.push({ at: this.now(), level, msg: cut(msg), context });
    if (this.ring.length > this.limit) this.ring.shift();
  }

  /** Oldest first. */
  list(): readonly RecentError[] {
    return [...this.ring];
  }
}

function cut(s: string): string {
  return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) + '…' : s;
}

function primitive(v: unknown): ContextValue | undefined {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string') return cut(v);
  if (v instanceof Error) return cut(v.message);
  return undefined;
}

/** A Logger that writes to `inner` and also records warn/error/fatal lines in `errors`. */
export function teeErrors(inner: Logger, errors: RecentErrors, bindings: Readonly<Record<string, unknown>> = {}): Logger {
  const capture = (level: RecentError['level']) => (obj: object, msg: string): void => {
    inner[level](obj, msg);
    errors.add(level, msg, obj, bindings);
  };
  return {
    trace: (obj, msg) => inner.trace(obj, msg),
    debug: (obj, msg) => inner.debug(obj, msg),
    info: (obj, msg) => inner.info(obj, msg),
    warn: capture('warn'),
    error: capture('error'),
    fatal: capture('fatal'),
    child: (b) => teeErrors(inner.child(b), errors, { ...bindings, ...b }),
    isLevelEnabled: (level: LogLevel) => inner.isLevelEnabled(level),
  };
}
