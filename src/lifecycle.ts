// One lifecycle for every process: the single process, the primary and each worker. It
// turns stop requests into a drain and an exit code: the first SIGINT/SIGTERM (or POST
// /shutdown, or the primary's word) drains for the grace period and exits 0; a second
// signal, /abort, or a drain that outlives grace + margin exits 1 at once. A stop asked for
// while the start runs waits for it (the drain never closes a half-built app under its own
// start); one asked for before it abandons it. main.ts calls process.exit with the code;
// `halt` is where a primary kills what must not outlive it. signals.ts routes the signals.
import type { Logger } from './log.ts';

/** A drain may run this long past the grace period before the hard exit (`--help`, README). */
export const HARD_EXIT_MARGIN_MS = 2000;
/** With workers, the first process's hard exit comes this much later still, so workers get theirs first. */
export const PRIMARY_EXTRA_MARGIN_MS = 1000;

/** The exit codes of `--help` and README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 70 } as const;

/** What asked for the stop: a signal escalates when repeated; the others never do. */
export type StopCause = 'SIGINT' | 'SIGTERM' | 'admin' | 'primary';

export interface LifecycleOptions {
  readonly log: Logger;
  /** The grace period in ms (the config's admin.graceSecs; read when the stop begins). */
  graceMs(): number;
  /** The graceful drain; resolves when done, with an exit code (default 0). */
  drain(graceMs: number): Promise<number | void>;
  /** Runs once before any exit that does not wait for the drain (e.g. SIGKILL the workers). */
  halt?(): void;
  /** How long past the grace period the drain may run before the hard exit. */
  readonly marginMs: number;
}

export class Lifecycle {
  /** The exit code, once decided. */
  readonly exitCode: Promise<number>;
  private readonly opts: LifecycleOptions;
  private readonly settleWith: (code: number) => void;
  private settled = false;
  private draining = false;
  private starting = false;
  /** A stop asked for while starting: it drains once the start is done. */
  private pending: StopCause | undefined;
  private signals = 0;
  private hardTimer: NodeJS.Timeout | undefined;

  constructor(opts: LifecycleOptions) {
    this.opts = opts;
    const { promise, resolve } = Promise.withResolvers<number>();
    this.exitCode = promise;
    this.settleWith = resolve;
  }

  /** A stop was asked for (draining, settled, or waiting for the start to finish). */
  get stopping(): boolean {
    return this.draining || this.settled || this.pending !== undefined;
  }

  /**
   * Runs the start under this lifecycle; resolves whether it ran. A stop asked for before
   * abandons it (`start` never runs: the drain found nothing to close); one asked for
   * meanwhile drains as soon as it has finished. A failed start rejects: the caller reports
   * it and `finish`es, and a stop waiting for it is moot. A second signal exits at once
   * either way: callers race this with `exitCode`.
   */
  async start(start: () => Promise<void>): Promise<boolean> {
    if (this.stopping) return false;
    this.starting = true;
    try {
      await start();
    } finally {
      this.starting = false;
    }
    const cause = this.pending;
    if (cause !== undefined && !this.settled) {
      this.pending = undefined;
      this.drain(cause);
    }
    return true;
  }

  /** Begins the drain; a second signal (not a repeated /shutdown) exits now with code 1. */
  stop(cause: StopCause): void {
    if (this.settled) return;
    const signal = cause === 'SIGINT' || cause === 'SIGTERM';
    if (signal && ++this.signals > 1) {
      this.opts.log.warn({ signal: cause }, 'second signal: exiting now');
      return this.exitNow(EXIT.failed);
    }
    if (this.draining || this.pending !== undefined) return;
    if (this.starting) {
      this.pending = cause;
      this.opts.log.info({ signal: cause }, 'stop requested while starting: draining once started');
      // The deadline counts from the request, as a supervisor's stop timeout does: a start that hangs cannot hold the exit.
      this.armDeadline(this.opts.graceMs());
      return;
    }
    this.drain(cause);
  }

  private armDeadline(graceMs: number): void {
    this.hardTimer ??= setTimeout(() => {
      this.opts.log.error({ graceSecs: graceMs / 1000, marginMs: this.opts.marginMs }, 'drain deadline passed: exiting now');
      this.exitNow(EXIT.failed);
    }, graceMs + this.opts.marginMs);
  }

  private drain(cause: StopCause): void {
    this.draining = true;
    const graceMs = this.opts.graceMs();
    // The drain's synchronous part closes the listeners: 'shutting down' comes after it, so
    // whoever reads that line finds new connections refused (before, a loaded machine could
    // run the reader between the line and the close, and its connection was accepted).
    let drained: Promise<number | void>;
    try {
      drained = this.opts.drain(graceMs);
    } catch (e) {
      drained = Promise.reject(e);
    }
    this.opts.log.info({ signal: cause, graceSecs: graceMs / 1000 }, 'shutting down');
    // The hard deadline: whatever holds the drain up (a hung worker, a stuck socket), exit.
    this.armDeadline(graceMs);
    drained.then(
      (code) => this.settle(code ?? EXIT.ok),
      (e: unknown) => {
        this.opts.log.error({ err: (e as Error).message }, 'drain failed: exiting now');
        this.exitNow(EXIT.failed);
      },
    );
  }

  /** Exits now with code 1 (POST /abort, the primary gone). */
  abort(msg = 'abort requested: exiting now'): void {
    if (this.settled) return;
    this.opts.log.warn({}, msg);
    this.exitNow(EXIT.failed);
  }

  /** Ends with `code` without a drain or a log line (a start failure already reported). */
  finish(code: number): void {
    if (!this.settled) this.exitNow(code);
  }

  private exitNow(code: number): void {
    if (this.settled) return;
    try {
      this.opts.halt?.();
    } finally {
      this.settle(code);
    }
  }

  private settle(code: number): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.hardTimer);
    this.settleWith(code);
  }
}
