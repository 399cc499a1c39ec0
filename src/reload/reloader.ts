// Reloads the config file on request (SIGHUP, POST /reload, a change of the file with
// `watchConfig: true`): one at a time, re-read, decoded, planned against the running config
// and handed to `apply`, which applies all of it or nothing. A refused config leaves the
// running one serving; the error (with key paths) is logged, counted and returned.
import type { Config } from '../config/types.ts';
import { watchFiles } from '../connector/file-watch.ts';
import type { Logger } from '../log.ts';
import type { Counter, Registry } from '../metrics/registry.ts';
import { effectiveConfig, isEmpty, planLines, planReload, type ReloadPlan } from './plan.ts';
import { readConfigText } from '../config/load.ts';
import { decodeConfigText, hashText, type LoadedConfig } from './source.ts';

export interface ReloadReport {
  readonly result: 'ok' | 'unchanged' | 'failed';
  readonly trigger: string;
  readonly at: number; // epoch ms
  /** The running config's file hash after this attempt (unchanged when refused). */
  readonly hash: string;
  /** What changed (or would have), one line each. */
  readonly changes: readonly string[];
  /** Keys that differ but need a restart (the running values stay). */
  readonly needsRestart: readonly string[];
  /** Why it was refused: one line per problem, with key paths. */
  readonly error: string | null;
}

/** /api/state's `config`. */
export interface ConfigInfo {
  readonly path: string;
  readonly hash: string;
  readonly loadedAt: number;
  readonly watch: boolean;
  readonly lastReload: ReloadReport | null;
}

/** Applies a planned config, all or nothing; rejects (changing nothing) when it cannot. */
export type ApplyReload = (next: Config, plan: ReloadPlan) => Promise<void>;

export class Reloader {
  private running: LoadedConfig;
  private last: ReloadReport | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly apply: ApplyReload;
  private readonly log: Logger;
  private readonly counts: Record<'ok' | 'failed', Counter> | undefined;
  private stopWatching: (() => void) | undefined;
  /** The hash last tried by the watcher, so a refused file is not retried until it changes again. */
  private lastSeen: string;

  /** What `--check` finds wrong beyond decoding (TLS material that does not load, an engine that cannot run). */
  private readonly validate: (c: Config) => readonly string[];

  constructor(opts: { initial: LoadedConfig; apply: ApplyReload; log: Logger; registry?: Registry | undefined; validate?: (c: Config) => readonly string[] }) {
    this.validate = opts.validate ?? (() => []);
    this.running = opts.initial;
    this.lastSeen = opts.initial.hash;
    this.apply = opts.apply;
    this.log = opts.log;
    // Counted where the reload is decided (the single process, or the primary of several workers).
    this.counts = opts.registry && {
      ok: opts.registry.counter('l5d:config:reloads', { result: 'ok' }),
      failed: opts.registry.counter('l5d:config:reloads', { result: 'failed' }),
    };
    this.watch(opts.initial.config.watchConfig ?? false);
  }

  /** The config running now (file-level: as written, with restart-only keys at their running values). */
  get config(): Config {
    return this.running.config;
  }

  get info(): ConfigInfo {
    const r = this.running;
    return { path: r.path, hash: r.hash, loadedAt: r.loadedAt, watch: this.stopWatching !== undefined, lastReload: this.last };
  }

  /** Re-reads the file and applies it; resolves with what happened (never rejects). */
  reload(trigger: string): Promise<ReloadReport> {
    const p = this.queue.then(() => this.once(trigger));
    this.queue = p.catch(() => {});
    return p;
  }

  close(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  private async once(trigger: string): Promise<ReloadReport> {
    const at = Date.now();
    const base = { trigger, at };
    if (this.running.path === '-') return this.refuse(base, 'the config was read from stdin: start with a file to reload it', [], []);
    let next: LoadedConfig;
    try {
      const text = readConfigText(this.running.path);
      this.lastSeen = hashText(text);
      next = decodeConfigText(text, this.running.path);
    } catch (e) {
      return this.refuse(base, (e as Error).message, [], []);
    }
    const plan = planReload(this.running.config, next.config);
    const changes = planLines(plan).filter((l) => !plan.needsRestart.some((k) => l.startsWith(`${k}:`)));
    // Anything --check rejects refuses the whole file, also in routers and servers that did not change.
    const problems = this.validate(next.config);
    if (problems.length) return this.refuse(base, problems.join('\n'), changes, plan.needsRestart);
    if (isEmpty(plan)) {
      this.running = { ...next, config: effectiveConfig(this.running.config, next.config) };
      return this.done({ ...base, result: 'unchanged', hash: next.hash, changes, needsRestart: plan.needsRestart, error: null });
    }
    try {
      await this.apply(next.config, plan);
    } catch (e) {
      return this.refuse(base, (e as Error).message, changes, plan.needsRestart);
    }
    this.running = { ...next, config: effectiveConfig(this.running.config, next.config) };
    if (plan.watchConfig !== undefined) this.watch(plan.watchConfig);
    return this.done({ ...base, result: 'ok', hash: next.hash, changes, needsRestart: plan.needsRestart, error: null });
  }

  private refuse(base: { trigger: string; at: number }, error: string, changes: readonly string[], needsRestart: readonly string[]): ReloadReport {
    const r: ReloadReport = { ...base, result: 'failed', hash: this.running.hash, changes, needsRestart, error };
    this.last = r;
    if (this.counts) this.counts.failed.value++;
    this.log.error({ trigger: r.trigger, err: error, running: r.hash }, 'config reload failed');
    return r;
  }

  private done(r: ReloadReport): ReloadReport {
    this.last = r;
    if (this.counts) this.counts.ok.value++;
    if (r.result === 'unchanged') this.log.info({ trigger: r.trigger, hash: r.hash }, 'config reloaded: nothing to change');
    else this.log.info({ trigger: r.trigger, hash: r.hash, changes: r.changes }, 'config reloaded');
    if (r.needsRestart.length) this.log.warn({ keys: r.needsRestart }, 'config reload: these keys need a restart; their running values stay');
    return r;
  }

  /** watchConfig: re-read when the file (followed through symlinks) changes and settles. */
  private watch(on: boolean): void {
    if (!on) return this.close();
    if (this.stopWatching || this.running.path === '-') return;
    this.stopWatching = watchFiles([this.running.path], () => {
      // Called once the file has changed and then stayed unchanged for SETTLE_MS (a write in parts is whole).
      let hash: string | undefined;
      try {
        hash = hashText(readConfigText(this.running.path));
      } catch {
        hash = undefined; // gone, or no longer a regular file: the reload below says so, once per change
      }
      if (hash !== undefined && (hash === this.running.hash || hash === this.lastSeen)) return; // already running, or already tried
      void this.reload('file change');
    }, (dir, err) => this.log.warn({ dir, err: err.message }, 'cannot watch the config directory; reload with SIGHUP or POST /reload'));
  }
}
