// The seam between naming and routing: an interpreter turns a destination name into a stream
// of Resolutions. Two implementations: namerd's HTTP API, and the local dtab + namers.
import type { Dtab } from '../naming/dtab.ts';
import type { Path } from '../naming/path.ts';
import type { Resolution } from '../naming/resolution.ts';

export interface Watch {
  /** Stop delivering updates for this subscription (idempotent). */
  close(): void;
}

export interface Interpreter {
  /**
   * Subscribe to the resolutions of `dstName` (a path such as `/svc/web`). `onResolution` is
   * called with every change, never synchronously from inside `watch()`, and never after
   * the returned Watch (or the interpreter) is closed.
   */
  watch(dstName: string, onResolution: (r: Resolution) => void): Watch;
  /**
   * linkerd's delegator: how `path` is rewritten through the router's dtab with `extra`
   * appended (it takes precedence), as a JsonDelegateTree, waiting at most `waitMs` for namers
   * or namerd. Never rejects: an error is an answer with its HTTP status (admin /delegator.json).
   * Absent where it cannot be shown (a worker's remote interpreter: the primary answers).
   */
  delegate?(path: Path, extra: Dtab, waitMs: number): Promise<DelegateAnswer>;
  /** Stop all timers, requests and watchers. Nothing of the interpreter keeps the loop alive after. */
  close(): Promise<void>;
}

/** A delegation (200, a JsonDelegateTree, `unknown` when namerd's) or why not, as namerd's status and message. */
export type DelegateAnswer =
  | { readonly status: 200; readonly tree: unknown }
  | { readonly status: number; readonly message: string };

/** `i`'s delegate as a plain function (null when it cannot delegate), for the admin's delegator. */
export function delegateOf(i: Interpreter): ((path: Path, extra: Dtab, waitMs: number) => Promise<DelegateAnswer>) | null {
  const d = i.delegate;
  return d ? (path, extra, waitMs) => d.call(i, path, extra, waitMs) : null;
}
