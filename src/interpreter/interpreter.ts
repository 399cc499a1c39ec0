// The seam between naming and routing: an interpreter turns a destination name into a stream
// of Resolutions. Two implementations: namerd's HTTP API, and the local dtab + namers.
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
  /** Stop all timers, requests and watchers. Nothing of the interpreter keeps the loop alive after. */
  close(): Promise<void>;
}
