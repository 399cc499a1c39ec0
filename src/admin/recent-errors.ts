// The last few warnings and errors, for /api/state and the dashboard. `teeErrors` wraps a
// Logger so every warn/error/fatal written through it (or its children, with their
// bindings) is also kept in a bounded ring. Only primitive context values are kept, cut
// short, so nothing large or secret-shaped lingers in memory. Backend connect failures and
// failed TLS handshakes (logged at info: they are expected outcomes) are kept too, at info
// as the log has them. A repeat (same level, message and context) updates its entry (`count`,
// `at`; `firstAt` stays) instead of adding one, as the log sums a flapping endpoint's
// transitions (router/transition-log.ts): one dead endpoint cannot fill the ring. New
// entries of a failure cause are kept at most PER_CAUSE_PER_SEC a second.
import type { Logger, LogLevel } from '../log.ts';
import { boundText } from '../safe-text.ts';

export type ContextValue = string | number | boolean | null;

export interface RecentError {
  readonly at: number; // epoch ms, of the last occurrence
  readonly level: 'info' | 'warn' | 'error' | 'fatal';
  readonly msg: string;
  readonly context: Readonly<Record<string, ContextValue>>;
  /** Occurrences summed into this entry (1 when absent). */
  readonly count?: number;
  /** Epoch ms of the first occurrence (`at` when absent). */
  readonly firstAt?: number;
}

/** An entry and what makes a repeat of it: level, message and context but `suppressed`. */
interface Kept {
  readonly key: string;
  entry: RecentError;
}

const MAX_TEXT = 300;
const MAX_KEYS = 12;
export const PER_CAUSE_PER_SEC = 5;

export class RecentErrors {
  private readonly ring: Kept[] = [];
  private readonly limit: number;
  private readonly now: () => number;

  constructor(limit = 50, now: () => number = Date.now) {
    this.limit = limit;
    this.now = now;
  }

  add(level: RecentError['level'], msg: string, ...contexts: readonly object[]): void {
    const context = contextOf(contexts);
    const key = keyOf(level, msg, context);
    if (!this.repeat(key)) this.push(key, level, msg, context);
  }

  private readonly limits = new Map<string, { since: number; n: number; dropped: number }>();

  /**
   * Like `add`, but a new entry (not a repeat) is kept at most PER_CAUSE_PER_SEC a second for
   * each `key` (a small, bounded set: the failure causes); the next one kept says how many
   * were left out (`suppressed`). Returns whether it was kept.
   */
  addLimited(key: string, level: RecentError['level'], msg: string, ...contexts: readonly object[]): boolean {
    const context = contextOf(contexts);
    const entryKey = keyOf(level, msg, context);
    if (this.repeat(entryKey)) return true;
    const t = this.now();
    let l = this.limits.get(key);
    if (!l || t - l.since >= 1000) this.limits.set(key, (l = { since: t, n: 0, dropped: l?.dropped ?? 0 }));
    if (l.n >= PER_CAUSE_PER_SEC) {
      l.dropped++;
      return false;
    }
    l.n++;
    const dropped = l.dropped;
    l.dropped = 0;
    this.push(entryKey, level, msg, dropped > 0 ? { ...context, suppressed: dropped } : context);
    return true;
  }

  /** Oldest first (by last occurrence). */
  list(): readonly RecentError[] {
    return this.ring.map((k) => k.entry);
  }

  /** Counts a repeat into its entry, which moves to the end; false when there is none. */
  private repeat(key: string): boolean {
    const i = this.ring.findIndex((k) => k.key === key);
    if (i < 0) return false;
    const [k] = this.ring.splice(i, 1);
    const e = k!.entry;
    k!.entry = { ...e, at: this.now(), count: (e.count ?? 1) + 1 };
    this.ring.push(k!);
    return true;
  }

  private push(key: string, level: RecentError['level'], msg: string, context: Record<string, ContextValue>): void {
    const at = this.now();
    this.ring.push({ key, entry: { at, level, msg: cut(msg), context, count: 1, firstAt: at } });
    if (this.ring.length > this.limit) this.ring.shift();
  }
}

/** The primitive values of the contexts, first key wins, at most MAX_KEYS, without `pid`. */
function contextOf(contexts: readonly object[]): Record<string, ContextValue> {
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
  return context;
}

function keyOf(level: string, msg: string, context: Readonly<Record<string, ContextValue>>): string {
  return `${level}\0${msg}\0${JSON.stringify(context)}`;
}

function cut(s: string): string {
  return boundText(s, MAX_TEXT);
}

function primitive(v: unknown): ContextValue | undefined {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string') return cut(v);
  if (v instanceof Error) return cut(v.message);
  return undefined;
}

/** Connect failures and failed handshakes (info records) go to the ring at info, new ones rate-limited. */
function keepFailure(errors: RecentErrors, obj: object, msg: string, bindings: Readonly<Record<string, unknown>>): void {
  const o = obj as Record<string, unknown>;
  if (msg === 'connect failed') {
    errors.addLimited(`connect ${String(o['cause'])}`, 'info', 'connect failed', { rt: bindings['rt'], dst: bindings['dst'], endpoint: o['endpoint'], cause: o['cause'] });
  } else if (o['reason'] === 'tls_handshake') {
    errors.addLimited(`tls ${String(o['error'])}`, 'info', 'tls handshake failed', { rt: bindings['rt'], srv: o['srv'], client: o['client'], sni: o['sni'], cause: o['error'] });
  }
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
    info: (obj, msg) => {
      inner.info(obj, msg);
      if (msg === 'connect failed' || msg === 'connection closed') keepFailure(errors, obj, msg, bindings);
    },
    warn: capture('warn'),
    error: capture('error'),
    fatal: capture('fatal'),
    child: (b) => teeErrors(inner.child(b), errors, { ...bindings, ...b }),
    isLevelEnabled: (level: LogLevel) => inner.isLevelEnabled(level),
  };
}
