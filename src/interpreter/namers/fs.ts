// The `io.l5d.fs` namer: one file per service under `rootDir` (subdirectories are deeper
// path segments), each line `host port [* weight]`, `#` comments (linkerd's grammar,
// fs-file.ts). A host name is looked up through the system resolver when the file is read,
// again whenever the file is read again, and every `hostRefreshMs`. Every directory is watched;
// any event in a directory forgets every name read under it (so a symlink whose target moved,
// as in a Kubernetes ConfigMap's `..data` swap, is read again), and a periodic re-stat catches
// what events miss. A deleted rootDir is watched again, with backoff, when it comes back.
// A bad, oversized or non-regular file keeps its last good set.
import { type FSWatcher, type Stats, statSync, watch } from 'node:fs';
import { join, sep } from 'node:path';
import type { Activity, BoundName } from '../../naming/bind.ts';
import type { NameTree, Path } from '../../naming/types.ts';
import type { WeightedAddr } from '../../naming/resolution.ts';
import type { Logger } from '../../log.ts';
import { type FileEndpoint, parseEndpointFile, readEndpointFile } from './fs-file.ts';
import { HostLookups, type LookupAll } from './host-lookups.ts';
import { type Namer, type NamerContext, owns } from './namer.ts';

export { MAX_FILE_BYTES, parseEndpointFile } from './fs-file.ts';

/** `sig` identifies what was read (device, inode, size, mtime) so a re-stat can tell it changed. */
type FileState =
  | { kind: 'ok'; lines: readonly FileEndpoint[]; sig: string }
  | { kind: 'missing'; sig: string }
  | { kind: 'failed'; reason: string; sig: string };

const DEBOUNCE_MS = 20;
const ROOT_RETRY_MIN_MS = 100;
const ROOT_RETRY_MAX_MS = 5000;

const sigOf = (st: Stats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
function sigNow(file: string): string {
  try {
    return sigOf(statSync(file));
  } catch {
    return 'none';
  }
}

export class FsNamer implements Namer {
  /** The path this namer owns, e.g. ['#', 'io.l5d.fs']. */
  readonly prefix: Path;
  private readonly rootDir: string;
  private readonly log: Logger;
  private readonly onChange: () => void;
  private readonly files = new Map<string, FileState>();
  private readonly lastGood = new Map<string, FileState & { kind: 'ok' }>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly dirty = new Set<string>();
  private rootSig: string | undefined;
  private pending: NodeJS.Timeout | undefined;
  private rootTimer: NodeJS.Timeout | undefined;
  private rootRetryMs = ROOT_RETRY_MIN_MS;
  private readonly restat: NodeJS.Timeout;
  private readonly hosts: HostLookups;
  private closed = false;

  /**
   * `restatMs`: how often every name read is stat'ed again in case an event was missed
   * (default 5 s); `hostRefreshMs`: how often host names are looked up again (default 5 s,
   * as `/$/inet`); `lookup`: the resolver (tests).
   */
  constructor(opts: { prefix: string; rootDir: string; restatMs?: number; hostRefreshMs?: number | undefined; lookup?: LookupAll } & NamerContext) {
    this.prefix = ['#', ...opts.prefix.split('/').filter(Boolean)];
    this.rootDir = opts.rootDir;
    this.log = opts.log.child({ namer: 'io.l5d.fs', rootDir: opts.rootDir });
    this.onChange = opts.onChange;
    this.hosts = new HostLookups({ refreshMs: opts.hostRefreshMs ?? 5000, log: this.log, label: 'io.l5d.fs', onChange: opts.onChange, lookup: opts.lookup });
    if (!this.watchRoot()) this.retryRoot();
    this.restat = setInterval(() => this.recheck(), opts.restatMs ?? 5000);
    this.restat.unref();
  }

  /** Binds `path` when it is under this namer's prefix; null otherwise. */
  lookup(path: Path): Activity<NameTree<BoundName>> | null {
    if (!owns(this.prefix, path)) return null;
    const rest = path.slice(this.prefix.length);
    // Walk down while segments are directories; the first file found is the name.
    for (let n = 1; n <= rest.length; n++) {
      const rel = rest.slice(0, n).join(sep);
      if (rest[n - 1] === '..' || rest[n - 1] === '.' || rest[n - 1]!.includes(sep)) return { kind: 'ok', value: { kind: 'neg' } };
      const state = this.read(rel);
      if (state === 'dir') continue;
      if (state.kind === 'missing') return { kind: 'ok', value: { kind: 'neg' } };
      if (state.kind === 'failed') return { kind: 'failed', reason: state.reason };
      const endpoints = this.endpointsOf(state.lines);
      if (endpoints === 'pending') return { kind: 'pending' };
      const id = '/' + [...this.prefix, ...rest.slice(0, n)].join('/');
      return { kind: 'ok', value: { kind: 'leaf', value: { id, residual: rest.slice(n), addr: { kind: 'bound', endpoints } } } };
    }
    return { kind: 'ok', value: { kind: 'neg' } };
  }

  /**
   * A file's lines as addresses. A host name's line waits (pending) for its first lookup; a
   * name that does not resolve is left out (logged with why), as namerd drops the unresolved
   * address linkerd's `Address(host, port)` makes of it, and the rest of the file stays; a
   * name with several addresses shares its line's weight among them.
   */
  private endpointsOf(lines: readonly FileEndpoint[]): WeightedAddr[] | 'pending' {
    const out: WeightedAddr[] = [];
    let pending = false;
    for (const l of lines) {
      if (l.kind === 'ip') {
        out.push({ host: l.host, port: l.port, weight: l.weight });
        continue;
      }
      const ips = this.hosts.get(l.host); // every first lookup starts now, not one per rebind
      if (ips.kind === 'pending') pending = true;
      else if (ips.kind === 'ok') for (const ip of ips.value) out.push({ host: ip, port: l.port, weight: l.weight / ips.value.length });
    }
    return pending ? 'pending' : out;
  }

  close(): void {
    this.closed = true;
    this.hosts.close();
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    clearTimeout(this.pending);
    clearTimeout(this.rootTimer);
    clearInterval(this.restat);
  }

  private watchRoot(): boolean {
    const sig = sigNow(this.rootDir);
    if (sig === 'none' || !this.watchDir('')) return false;
    this.rootSig = sig.split(':').slice(0, 2).join(':'); // the directory's identity: device and inode
    this.rootRetryMs = ROOT_RETRY_MIN_MS;
    return true;
  }

  /** rootDir is gone (or was replaced): forget everything, and watch it again once it is back. */
  private rootLost(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.rootSig = undefined;
    this.files.clear();
    this.log.warn({}, 'io.l5d.fs: rootDir is gone; names are neg until it comes back');
    this.retryRoot();
  }

  private retryRoot(): void {
    if (this.closed || this.rootTimer) return;
    this.rootTimer = setTimeout(() => {
      this.rootTimer = undefined;
      if (this.closed) return;
      if (!this.watchRoot()) {
        this.rootRetryMs = Math.min(ROOT_RETRY_MAX_MS, this.rootRetryMs * 2);
        return this.retryRoot();
      }
      this.log.info({}, 'io.l5d.fs: watching rootDir again');
      this.files.clear();
      this.onChange();
    }, this.rootRetryMs);
    this.rootTimer.unref();
  }

  /**
   * Watches one directory (not recursively: Node's recursive watcher on Linux follows file
   * inodes, so an atomic rename-over would go unseen). An event marks the directory dirty.
   */
  private watchDir(rel: string): boolean {
    if (this.watchers.has(rel)) return true;
    try {
      const w = watch(join(this.rootDir, rel), { persistent: false }, () => this.event(rel));
      w.on('error', (e) => {
        if (this.watchers.get(rel) === w) this.watchers.delete(rel);
        w.close();
        this.event(rel);
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ dir: rel, err: e.message }, 'io.l5d.fs: watch failed');
      });
      this.watchers.set(rel, w);
      return true;
    } catch (e) {
      if (rel === '') this.log.warn({ err: (e as Error).message }, 'io.l5d.fs: cannot watch rootDir; retrying');
      return false;
    }
  }

  private read(rel: string): FileState | 'dir' {
    const cached = this.files.get(rel);
    if (cached) return cached;
    const file = join(this.rootDir, rel);
    let next: FileState;
    try {
      const got = readEndpointFile(file);
      if (got.kind === 'dir') {
        if (this.rootSig !== undefined) this.watchDir(rel);
        return 'dir';
      }
      next = { kind: 'ok', lines: parseEndpointFile(got.text), sig: sigOf(got.stat) };
      // Read again (it changed, or something near it did): its names are looked up again too,
      // as linkerd resolves them whenever it reads the file. Their answers stay meanwhile.
      if (this.lastGood.has(rel)) for (const l of next.lines) if (l.kind === 'name') this.hosts.refreshNow(l.host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') next = { kind: 'missing', sig: 'none' };
      else {
        const last = this.lastGood.get(rel);
        this.log.warn({ file, reason: (e as Error).message, keeping: last ? last.lines.length : 0 }, last ? 'io.l5d.fs: bad file; keeping the last good set' : 'io.l5d.fs: bad file');
        next = last ? { ...last, sig: sigNow(file) } : { kind: 'failed', reason: `${file}: ${(e as Error).message}`, sig: sigNow(file) };
      }
    }
    if (next.kind === 'ok') this.lastGood.set(rel, next);
    this.files.set(rel, next);
    return next;
  }

  private event(dir: string): void {
    if (this.closed) return;
    this.dirty.add(dir);
    if (this.pending) return;
    // Editors and kubelet change things in several steps; one re-read for the burst.
    this.pending = setTimeout(() => this.flush(), DEBOUNCE_MS);
    this.pending.unref();
  }

  /** Forgets every name read under a dirty directory (and their subdirectory watchers), then re-binds. */
  private flush(): void {
    this.pending = undefined;
    const dirs = [...this.dirty];
    this.dirty.clear();
    if (dirs.includes('') && this.rootSig !== undefined && !this.rootIsSame()) return void (this.rootLost(), this.onChange());
    const under = (rel: string): boolean => dirs.some((d) => d === '' || rel.startsWith(d + sep));
    for (const rel of this.files.keys()) if (under(rel)) this.files.delete(rel);
    for (const [rel, w] of this.watchers) {
      if (rel !== '' && under(rel)) {
        w.close(); // read() watches it again if it is still a directory
        this.watchers.delete(rel);
      }
    }
    this.onChange();
  }

  private rootIsSame(): boolean {
    return this.rootSig !== undefined && sigNow(this.rootDir).startsWith(this.rootSig + ':');
  }

  /** The safety net: a name whose file changed without an event (or a rootDir replaced) is read again. */
  private recheck(): void {
    if (this.closed || this.rootSig === undefined) return;
    if (!this.rootIsSame()) return void (this.rootLost(), this.onChange());
    // Host names no file read names any more are no longer looked up.
    const named = new Set<string>();
    for (const st of this.files.values()) if (st.kind === 'ok') for (const l of st.lines) if (l.kind === 'name') named.add(l.host);
    this.hosts.retain((h) => named.has(h));
    let changed = false;
    for (const [rel, st] of this.files) {
      if (sigNow(join(this.rootDir, rel)) !== st.sig) {
        this.files.delete(rel);
        changed = true;
      }
    }
    if (changed) this.onChange();
  }
}
