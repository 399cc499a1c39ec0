// The `io.l5d.fs` namer: one file per service under `rootDir` (subdirectories are deeper
// path segments), each line `host port [* weight]`, `#` comments. The tree is watched;
// a changed file is read again, and a bad or oversized file keeps its last good set.
import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { isIPv6 } from 'node:net';
import type { Activity, BoundName } from '../../naming/bind.ts';
import type { NameTree } from '../../naming/name-tree.ts';
import type { Path } from '../../naming/path.ts';
import type { WeightedAddr } from '../../naming/resolution.ts';
import type { Logger } from '../../log.ts';
import { parseInetAton } from './inet.ts';

export const MAX_FILE_BYTES = 1 << 20;

/** Parses an endpoint file; throws with the line number on the first bad line. */
export function parseEndpointFile(text: string): WeightedAddr[] {
  const out: WeightedAddr[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const m = /^(\S+)\s+(\d+)(?:\s*\*\s*([0-9]*\.?[0-9]+))?$/.exec(line);
    const host = m ? (parseInetAton(m[1]!) ?? (isIPv6(m[1]!) ? m[1]! : null)) : null;
    const port = m ? Number(m[2]) : NaN;
    if (!m || host === null || port > 65535) {
      throw new Error(`line ${i + 1}: expected "<ip> <port> [* <weight>]", got ${JSON.stringify(raw.trim())}`);
    }
    out.push({ host, port, weight: m[3] === undefined ? 1 : Number(m[3]) });
  });
  return out;
}

type FileState = { kind: 'ok'; endpoints: readonly WeightedAddr[] } | { kind: 'missing' } | { kind: 'failed'; reason: string };

export class FsNamer {
  /** The path this namer owns, e.g. ['#', 'io.l5d.fs']. */
  readonly prefix: Path;
  private readonly rootDir: string;
  private readonly log: Logger;
  private readonly onChange: () => void;
  private readonly files = new Map<string, FileState>();
  private readonly watchers = new Map<string, FSWatcher>();
  private pending: NodeJS.Timeout | undefined;
  private readonly dirty = new Set<string>();

  constructor(opts: { prefix: string; rootDir: string; log: Logger; onChange: () => void }) {
    this.prefix = ['#', ...opts.prefix.split('/').filter(Boolean)];
    // A relative rootDir resolves against the working directory; logs and errors show it absolute.
    this.rootDir = resolve(opts.rootDir);
    this.log = opts.log.child({ namer: 'io.l5d.fs', rootDir: this.rootDir });
    this.onChange = opts.onChange;
    this.watchDir('');
  }

  /**
   * Watches one directory (not recursively: Node's recursive watcher on Linux follows file
   * inodes, so an atomic rename-over would go unseen). Directory events name the child.
   */
  private watchDir(rel: string): void {
    if (this.watchers.has(rel)) return;
    try {
      const w = watch(join(this.rootDir, rel), { persistent: false }, (_event, file) => this.changed(file === null ? rel : join(rel, String(file))));
      w.on('error', (e) => {
        this.watchers.delete(rel);
        w.close();
        this.changed(rel);
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ dir: rel, err: e.message }, 'io.l5d.fs: watch failed');
      });
      this.watchers.set(rel, w);
    } catch (e) {
      if (rel === '') this.log.warn({ err: (e as Error).message }, 'io.l5d.fs: cannot watch rootDir; names will not update');
    }
  }

  /** Binds `path` when it is under this namer's prefix; null otherwise. */
  lookup(path: Path): Activity<NameTree<BoundName>> | null {
    if (path.length < this.prefix.length || this.prefix.some((p, i) => path[i] !== p)) return null;
    const rest = path.slice(this.prefix.length);
    // Walk down while segments are directories; the first file found is the name.
    for (let n = 1; n <= rest.length; n++) {
      const rel = rest.slice(0, n).join(sep);
      if (rest[n - 1] === '..' || rest[n - 1] === '.') return { kind: 'ok', value: { kind: 'neg' } };
      const state = this.read(rel);
      if (state === 'dir') continue;
      if (state.kind === 'missing') return { kind: 'ok', value: { kind: 'neg' } };
      if (state.kind === 'failed') return { kind: 'failed', reason: state.reason };
      const id = '/' + [...this.prefix, ...rest.slice(0, n)].join('/');
      return { kind: 'ok', value: { kind: 'leaf', value: { id, residual: rest.slice(n), addr: { kind: 'bound', endpoints: state.endpoints } } } };
    }
    return { kind: 'ok', value: { kind: 'neg' } };
  }

  close(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    clearTimeout(this.pending);
  }

  private read(rel: string): FileState | 'dir' {
    const cached = this.files.get(rel);
    if (cached) return cached;
    const file = join(this.rootDir, rel);
    let next: FileState;
    try {
      const st = statSync(file);
      if (st.isDirectory()) {
        this.watchDir(rel);
        return 'dir';
      }
      if (st.size > MAX_FILE_BYTES) throw new Error(`file is ${st.size} bytes, over the ${MAX_FILE_BYTES}-byte limit`);
      next = { kind: 'ok', endpoints: parseEndpointFile(readFileSync(file, 'utf8')) };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') next = { kind: 'missing' };
      else {
        const reason = `${file}: ${(e as Error).message}`;
        const last = this.lastGood.get(rel);
        this.log.warn({ file, reason: (e as Error).message, keeping: last ? last.endpoints.length : 0 }, last ? 'io.l5d.fs: bad file; keeping the last good set' : 'io.l5d.fs: bad file');
        next = last ?? { kind: 'failed', reason };
      }
    }
    if (next.kind === 'ok') this.lastGood.set(rel, next);
    this.files.set(rel, next);
    return next;
  }

  private readonly lastGood = new Map<string, { kind: 'ok'; endpoints: readonly WeightedAddr[] }>();

  /** A watch event: forget the file (and, for a directory event, everything under it), then re-bind soon. */
  private changed(file: string | Buffer | null): void {
    this.dirty.add(file === null ? '' : String(file));
    if (this.pending) return;
    // Editors write in several steps; collect a burst of events into one re-read.
    this.pending = setTimeout(() => {
      this.pending = undefined;
      const dirty = [...this.dirty];
      this.dirty.clear();
      for (const rel of this.files.keys()) {
        if (dirty.some((d) => d === '' || rel === d || rel.startsWith(d + sep) || d.startsWith(rel + sep))) this.files.delete(rel);
      }
      this.onChange();
    }, 20);
    this.pending.unref();
  }
}
