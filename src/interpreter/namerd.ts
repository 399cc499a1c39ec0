// The `io.l5d.namerd.http` interpreter: asks namerd's HTTP API what a name resolves to.
// `mode: resolve` (linkerd-tcp's): GET /api/1/resolve/<ns>?path=…, which namerd answers with
// the addresses of ONE branch of a weighted union. `mode: bind` (linkerd's): /api/1/bind for
// the tree with its weights, and /api/1/addr for each leaf (namerd-bind.ts). Either polls
// every periodSecs or, with `watch: true`, streams. Failures are delivered (consumers keep
// their last good set), logged and counted; a watched name's updates are coalesced. The same
// failure answered again (every poll while namerd is down) is a warning once, then at most
// every REPEAT_WARN_MS with the count in between (debug for each one).
import type { InterpreterConfig } from '../config/types.ts';
import type { Logger } from '../log.ts';
import type { Registry } from '../metrics/registry.ts';
import { type Resolution, sameResolution } from '../naming/resolution.ts';
import type { Interpreter, Watch } from './interpreter.ts';
import { BindLoop, type LoopEnv } from './namerd-bind.ts';
import { decodeAddr } from './namerd-decode.ts';
import { namerdDelegate } from './namerd-delegate.ts';
import { Feed } from './namerd-feed.ts';

export { MAX_BODY_BYTES } from './namerd-feed.ts';

type NamerdConfig = Extract<InterpreterConfig, { kind: 'io.l5d.namerd.http' }>;

const BACKOFF_MIN_MS = 500;
/** A watched name's resolution changes at most this often (the latest answer wins). */
export const COALESCE_MS = 250;
/** A failure that stays the same is warned about again after this long, with how often it came meanwhile. */
export const REPEAT_WARN_MS = 60_000;

interface Loop {
  start(): void;
  stop(): void;
}

/** One watched name: its loop, its subscribers, the last resolution handed on. */
interface Entry {
  loop: Loop;
  readonly subscribers: Set<(r: Resolution) => void>;
  last: Resolution | undefined;
  /** When the current failure was last warned about, and how often it came since. */
  warnedAt: number;
  repeats: number;
}

export function createNamerdInterpreter(opts: {
  config: NamerdConfig; routerLabel: string; dtab: string; registry: Registry; log: Logger;
  random?: () => number; periodMs?: number; backoffMinMs?: number; coalesceMs?: number; now?: () => number;
}): Interpreter {
  const { config } = opts;
  const labels = { namespace: config.namespace, rt: opts.routerLabel };
  const log = opts.log.child({ interpreter: 'io.l5d.namerd.http', namespace: config.namespace });
  const now = opts.now ?? (() => performance.now());
  const env: LoopEnv = {
    config,
    dtab: opts.dtab.replace(/\s+/g, ' ').trim(),
    feed: {
      watch: config.watch, requestTimeoutMs: config.requestTimeoutMs, log, random: opts.random ?? Math.random,
      periodMs: opts.periodMs ?? config.periodSecs * 1000,
      backoffMinMs: opts.backoffMinMs ?? BACKOFF_MIN_MS,
      coalesceMs: opts.coalesceMs ?? COALESCE_MS,
      metrics: {
        latencyMs: opts.registry.stat('l5d:resolver:request_latency_ms', labels),
        success: opts.registry.counter('l5d:resolver:success_count', labels),
        failure: opts.registry.counter('l5d:resolver:failure_count', labels),
      },
    },
  };
  const names = new Map<string, Entry>();
  // A new failure is a warning; the same one again (the next poll, the next reconnect) is
  // debug until REPEAT_WARN_MS have passed, so a namerd down for an hour is not 720 warnings.
  const logFailure = (dst: string, e: Entry, reason: string, same: boolean): void => {
    const t = now();
    if (!same || t - e.warnedAt >= REPEAT_WARN_MS) {
      log.warn({ dst, reason, ...(same ? { repeats: e.repeats } : {}) }, 'namerd resolution failed');
      e.warnedAt = t;
      e.repeats = 0;
      return;
    }
    e.repeats++;
    if (log.isLevelEnabled('debug')) log.debug({ dst, reason, repeats: e.repeats }, 'namerd resolution failed');
  };
  let closed = false;

  return {
    watch(dstName: string, onResolution: (r: Resolution) => void): Watch {
      let n = names.get(dstName);
      if (!n) {
        const entry: Entry = { loop: undefined as unknown as Loop, subscribers: new Set(), last: undefined, warnedAt: 0, repeats: 0 };
        const deliver = (r: Resolution): void => {
          if (closed || names.get(dstName) !== entry) return;
          const same = entry.last !== undefined && sameResolution(entry.last, r);
          if (r.kind === 'failed') logFailure(dstName, entry, r.reason, same);
          if (same) return;
          entry.last = r;
          for (const s of [...entry.subscribers]) if (entry.subscribers.has(s)) s(r);
        };
        entry.loop = config.mode === 'bind' ? new BindLoop(dstName, env, deliver) : resolveLoop(dstName, env, deliver);
        names.set(dstName, (n = entry));
        entry.loop.start();
      }
      const e = n;
      const sub = (r: Resolution): void => onResolution(r);
      e.subscribers.add(sub);
      if (e.last) {
        const last = e.last;
        setImmediate(() => !closed && e.subscribers.has(sub) && sub(last));
      }
      return {
        close: () => {
          e.subscribers.delete(sub);
          if (e.subscribers.size === 0 && names.get(dstName) === e) {
            names.delete(dstName);
            e.loop.stop();
          }
        },
      };
    },
    // namerd has the namespace's dtab and namers: it answers, bounded by its request timeout too.
    delegate: (path, extra, waitMs) => namerdDelegate({ baseUrl: config.baseUrl, namespace: config.namespace, dtab: env.dtab }, path, extra, Math.min(waitMs, config.requestTimeoutMs)),
    async close(): Promise<void> {
      closed = true;
      for (const n of names.values()) n.loop.stop();
      names.clear();
    },
  };
}

/** linkerd-tcp's way: one /api/1/resolve feed per name. */
function resolveLoop(dst: string, env: LoopEnv, deliver: (r: Resolution) => void): Loop {
  const url = new URL(`${env.config.baseUrl}/api/1/resolve/${encodeURIComponent(env.config.namespace)}`);
  url.searchParams.set('path', dst);
  if (env.dtab) url.searchParams.set('dtab', env.dtab);
  return new Feed(url, env.feed, {
    value(v: unknown): boolean {
      const r = decodeAddr(v);
      if (r) deliver(r); // undefined: pending, nothing to act on
      return r?.kind !== 'failed';
    },
    failed: (reason) => deliver({ kind: 'failed', reason }),
  });
}
