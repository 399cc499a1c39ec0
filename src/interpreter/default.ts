// The `kind: default` interpreter: binds destination names locally, with the router's dtab
// and the namers (`/$/inet`, and the configured `/#/io.l5d.fs`, `/#/io.l5d.dnssrv`), no namerd. Namers are
// stateful (DNS answers, files); whenever one changes, every watched name is bound again
// and watchers hear about the names whose resolution changed.
import type { NamerConfig } from '../config/types.ts';
import type { Logger } from '../log.ts';
import type { Registry } from '../metrics/registry.ts';
import { type Activity, type BoundName, bind, resolve } from '../naming/bind.ts';
import { delegate as delegateName } from '../naming/delegate.ts';
import { delegateJson } from '../naming/delegate-json.ts';
import { type Dtab, parseDtab } from '../naming/dtab.ts';
import type { NameTree } from '../naming/name-tree.ts';
import { parsePath, type Path } from '../naming/path.ts';
import { type Resolution, sameResolution } from '../naming/resolution.ts';
import type { DelegateAnswer, Interpreter, Watch } from './interpreter.ts';
import { DnsSrvNamer } from './namers/dnssrv.ts';
import { FsNamer } from './namers/fs.ts';
import { InetNamer } from './namers/inet.ts';
import type { Namer } from './namers/namer.ts';

interface Watched {
  readonly path: Path;
  readonly subscribers: Set<(r: Resolution) => void>;
  last: Resolution | undefined;
}

export function createDefaultInterpreter(opts: {
  dtab: string; namers: readonly NamerConfig[]; log: Logger; registry: Registry;
  /** How often host names (`/$/inet/<name>/…`, io.l5d.fs lines) are looked up again; default 5 s (tests shorten it). */
  inetRefreshMs?: number;
}): Interpreter {
  const dtab = parseDtab(opts.dtab);
  const log = opts.log.child({ interpreter: 'default' });
  const watched = new Map<string, Watched>();
  let scheduled = false;
  let closed = false;
  /** Delegations waiting for a pending namer: told after every namer change, and on close. */
  const delegations = new Set<() => void>();

  const evaluate = (name: string, w: Watched): void => {
    let r: Resolution | 'pending';
    try {
      r = resolve(bind(dtab, w.path, lookupNamer));
    } catch (e) {
      r = { kind: 'failed', reason: (e as Error).message };
    }
    if (r === 'pending' || (w.last && sameResolution(w.last, r))) return;
    w.last = r;
    if (r.kind === 'failed') log.warn({ dst: name, reason: r.reason }, 'binding failed');
    for (const cb of [...w.subscribers]) if (w.subscribers.has(cb)) cb(r);
  };
  const evaluateAll = (): void => {
    scheduled = false;
    if (closed) return;
    for (const [name, w] of watched) evaluate(name, w);
    for (const again of [...delegations]) again();
  };
  // Batches namer changes: one pass per tick, never inside the caller's stack.
  const schedule = (): void => {
    if (scheduled || closed) return;
    scheduled = true;
    setImmediate(evaluateAll);
  };

  // The built-in `/$/…` namer first (it owns every `/$/` path), then the configured `/#/<prefix>` ones.
  const inet = new InetNamer({ onChange: schedule, log, ...(opts.inetRefreshMs ? { refreshMs: opts.inetRefreshMs } : {}) });
  const configured: Namer[] = opts.namers.map((n) => {
    switch (n.kind) {
      case 'io.l5d.fs':
        return new FsNamer({ prefix: n.prefix, rootDir: n.rootDir, log, onChange: schedule, hostRefreshMs: opts.inetRefreshMs });
      case 'io.l5d.dnssrv':
        return new DnsSrvNamer({ ...n, log, onChange: schedule });
    }
  });
  const namers: readonly Namer[] = [inet, ...configured];
  const lookupNamer = (path: Path): Activity<NameTree<BoundName>> | null => {
    for (const n of namers) {
      const r = n.lookup(path);
      if (r) return r;
    }
    return null;
  };

  return {
    watch(dstName: string, onResolution: (r: Resolution) => void): Watch {
      let w = watched.get(dstName);
      if (!w) {
        w = { path: parsePath(dstName), subscribers: new Set(), last: undefined };
        watched.set(dstName, w);
      }
      const entry = w;
      // Each subscription gets its own function identity so the same callback can subscribe twice.
      const sub = (r: Resolution): void => onResolution(r);
      entry.subscribers.add(sub);
      setImmediate(() => {
        if (closed || !entry.subscribers.has(sub)) return;
        if (entry.last) sub(entry.last);
        else evaluate(dstName, entry);
      });
      return {
        close: () => {
          entry.subscribers.delete(sub);
          if (entry.subscribers.size === 0 && watched.get(dstName) === entry) watched.delete(dstName);
        },
      };
    },
    delegate(path: Path, extra: Dtab, waitMs: number): Promise<DelegateAnswer> {
      const full = [...dtab, ...extra];
      // A namer asked about a new name (a host to look up) answers pending and calls onChange
      // once it knows: delegate again then, until nothing is pending or waitMs have passed
      // (then the pending names show as such, rather than namerd's bare 503 "Request timed out.").
      return new Promise((done) => {
        const attempt = (last: boolean): void => {
          let answer: DelegateAnswer;
          try {
            const r = delegateName(full, path, lookupNamer);
            if (r.pending && !last && !closed) return;
            answer = { status: 200, tree: delegateJson(r.tree) };
          } catch (e) {
            answer = { status: 500, message: `delegation failed: ${(e as Error).message}` };
          }
          clearTimeout(timer);
          delegations.delete(again);
          done(answer);
        };
        const again = (): void => attempt(false);
        const timer = setTimeout(() => attempt(true), waitMs);
        delegations.add(again);
        attempt(false);
      });
    },
    async close(): Promise<void> {
      closed = true;
      for (const again of [...delegations]) again();
      watched.clear();
      for (const n of namers) n.close();
    },
  };
}
