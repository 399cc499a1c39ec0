// The one interface every namer implements (the built-in `/$/…` namer, io.l5d.fs,
// io.l5d.dnssrv), and what the default interpreter gives each at construction. Namers keep
// state (files, DNS answers) and report a change through `onChange`; the interpreter then
// binds again, reading the namers' snapshots through `lookup`.
import type { Activity, BoundName } from '../../naming/bind.ts';
import type { NameTree, Path } from '../../naming/types.ts';
import type { Logger } from '../../log.ts';

export interface Namer {
  /**
   * Binds `path` when this namer owns it (null otherwise) from the namer's current state:
   * `pending` until a first answer, then the last good answer through later failures.
   * Never calls `onChange` from inside `lookup`.
   */
  lookup(path: Path): Activity<NameTree<BoundName>> | null;
  /** Stops timers and watchers; `onChange` is never called after. */
  close(): void;
}

export interface NamerContext {
  readonly log: Logger;
  /** Something this namer answers may have changed: bind again (called asynchronously, coalesced). */
  readonly onChange: () => void;
}

/** True when `path` starts with `prefix`. */
export function owns(prefix: Path, path: Path): boolean {
  return path.length >= prefix.length && prefix.every((p, i) => path[i] === p);
}
