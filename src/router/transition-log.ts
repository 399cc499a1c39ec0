// Logs one destination's endpoint ejections and revivals without letting a flapping endpoint
// flood the log. A dead endpoint that is the destination's only one is ejected after
// maxConsecutiveFailures and revived at once (every endpoint ejected: all return), so 5,000
// connections made 1,000 `endpoint ejected` + 1,000 `endpoint revived` lines. Per endpoint, a
// window opens at its first transition: the first ejection and the first revival in it are
// logged as they happen, the rest only counted, and when the window ends one
// `endpoint flapping` line gives the counts and where the endpoint ended up. Metrics are not
// touched here (the balancer's gauges count every transition). One timer, for the window
// that ends first; close() writes the pending summaries and clears it.
import type { Logger } from '../log.ts';

/** How long an endpoint's transitions after its first are counted instead of logged one by one. */
export const FLAP_WINDOW_MS = 60_000;

/** Runs `fn` after `ms`; returns what cancels it (injected so tests drive the clock). */
export type SetTimer = (fn: () => void, ms: number) => () => void;

interface Window {
  readonly endsAt: number;
  ejections: number;
  revivals: number;
  /** Transitions counted but not logged one by one: a summary is due when > 0. */
  unlogged: number;
  state: 'ejected' | 'available';
}

const realTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref(); // a summary is not worth keeping the process up for; close() writes it anyway
  return () => clearTimeout(t);
};

export class TransitionLog {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly setTimer: SetTimer;
  /** Open windows by endpoint key. */
  private readonly windows = new Map<string, Window>();
  private cancel: (() => void) | undefined;
  private armedFor = Infinity;
  private closed = false;

  constructor(opts: { log: Logger; now: () => number; windowMs?: number; setTimer?: SetTimer }) {
    this.log = opts.log;
    this.now = opts.now;
    this.windowMs = opts.windowMs ?? FLAP_WINDOW_MS;
    this.setTimer = opts.setTimer ?? realTimer;
  }

  ejected(endpoint: string, failures: number): void {
    const w = this.closed ? undefined : this.window(endpoint);
    if (!w) return this.log.warn({ endpoint, failures }, 'endpoint ejected'); // after close: a lease's last report
    w.state = 'ejected';
    if (++w.ejections === 1) this.log.warn({ endpoint, failures }, 'endpoint ejected');
    else w.unlogged++;
  }

  /** `by`: what ended the ejection before its penalty did (a passing health check). */
  revived(endpoint: string, by?: 'health check'): void {
    const fields = by ? { endpoint, by } : { endpoint };
    const w = this.closed ? undefined : this.window(endpoint);
    if (!w) return this.log.info(fields, 'endpoint revived');
    w.state = 'available';
    if (++w.revivals === 1) this.log.info(fields, 'endpoint revived');
    else w.unlogged++;
  }

  /** Writes the summaries still due (their windows cut short) and stops the timer. */
  close(): void {
    this.closed = true;
    this.cancel?.();
    this.cancel = undefined;
    for (const [endpoint, w] of this.windows) this.summarise(endpoint, w);
    this.windows.clear();
  }

  private window(endpoint: string): Window {
    let w = this.windows.get(endpoint);
    if (w && w.endsAt <= this.now()) {
      // Its timer is late (a busy loop): end it here so this transition opens a new one.
      this.summarise(endpoint, w);
      this.windows.delete(endpoint);
      w = undefined;
    }
    if (!w) {
      w = { endsAt: this.now() + this.windowMs, ejections: 0, revivals: 0, unlogged: 0, state: 'available' };
      this.windows.set(endpoint, w);
      this.arm(w.endsAt);
    }
    return w;
  }

  private summarise(endpoint: string, w: Window): void {
    if (w.unlogged === 0) return; // every transition was logged: nothing to add
    this.log.warn({ endpoint, ejections: w.ejections, revivals: w.revivals, state: w.state, windowSecs: this.windowMs / 1000 }, 'endpoint flapping');
  }

  /** Ends the windows that are over, then waits for the next one to end. */
  private sweep(): void {
    this.cancel = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    let next = Infinity;
    for (const [endpoint, w] of this.windows) {
      if (w.endsAt <= now) {
        this.summarise(endpoint, w);
        this.windows.delete(endpoint);
      } else next = Math.min(next, w.endsAt);
    }
    if (next < Infinity) this.arm(next);
  }

  private arm(at: number): void {
    if (at >= this.armedFor) return;
    this.cancel?.();
    this.armedFor = at;
    this.cancel = this.setTimer(() => this.sweep(), Math.max(0, at - this.now()));
  }
}
