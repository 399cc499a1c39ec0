// Name resolution for a worker of several: an Interpreter with the usual interface whose
// watches go to the primary, which runs the real interpreters (namerd poll or watch, dtab
// and namers) once for the whole proxy (names-hub.ts) and sends every resolution back. So
// N workers cost one namerd stream per destination, not N.
import type { Interpreter, Watch } from '../interpreter/interpreter.ts';
import type { Resolution } from '../naming/resolution.ts';

export type NamesToPrimary =
  | { readonly type: 'names-watch'; readonly rt: string; readonly dst: string }
  | { readonly type: 'names-unwatch'; readonly rt: string; readonly dst: string };

export type NamesToWorker = { readonly type: 'resolution'; readonly rt: string; readonly dst: string; readonly resolution: Resolution };

/** The key of one router's destination (router labels and paths contain no newline). */
export const namesKey = (rt: string, dst: string): string => `${rt}\n${dst}`;

/**
 * What a newcomer is sent to reach the state of those that saw every resolution: after a
 * failure, the last good one first (consumers keep its endpoints through failures), then it.
 */
export function replay(good: Resolution | undefined, last: Resolution | undefined): Resolution[] {
  if (last === undefined) return [];
  return last.kind === 'failed' && good !== undefined ? [good, last] : [last];
}

interface Watched {
  readonly listeners: Set<(r: Resolution) => void>;
  last: Resolution | undefined;
  good: Resolution | undefined; // the last that was not a failure
}

export class RemoteNames {
  private readonly watched = new Map<string, Watched>();
  private readonly send: (m: NamesToPrimary) => void;

  constructor(send: (m: NamesToPrimary) => void) {
    this.send = send;
  }

  /** The interpreter of router `rt`, as the worker's App uses it. */
  interpreter(rt: string): Interpreter {
    const open = new Set<Watch>();
    return {
      watch: (dst, onResolution) => {
        const w = this.watch(rt, dst, onResolution);
        const tracked: Watch = { close: () => { open.delete(tracked); w.close(); } };
        open.add(tracked);
        return tracked;
      },
      close: async () => {
        for (const w of [...open]) w.close();
      },
    };
  }

  /** A resolution from the primary. */
  deliver(rt: string, dst: string, r: Resolution): void {
    const w = this.watched.get(namesKey(rt, dst));
    if (!w) return; // unwatched meanwhile
    w.last = r;
    if (r.kind !== 'failed') w.good = r;
    for (const l of [...w.listeners]) l(r);
  }

  private watch(rt: string, dst: string, onResolution: (r: Resolution) => void): Watch {
    const key = namesKey(rt, dst);
    let w = this.watched.get(key);
    if (!w) {
      this.watched.set(key, (w = { listeners: new Set(), last: undefined, good: undefined }));
      this.send({ type: 'names-watch', rt, dst });
    }
    const entry = w;
    let closed = false;
    const listener = (r: Resolution): void => { if (!closed) onResolution(r); };
    entry.listeners.add(listener);
    const known = replay(entry.good, entry.last);
    // Never from inside watch() (the Interpreter contract): the known resolutions come next tick.
    if (known.length) queueMicrotask(() => { for (const r of known) listener(r); });
    return {
      close: () => {
        if (closed) return;
        closed = true;
        entry.listeners.delete(listener);
        if (entry.listeners.size > 0 || this.watched.get(key) !== entry) return;
        this.watched.delete(key);
        this.send({ type: 'names-unwatch', rt, dst });
      },
    };
  }
}
