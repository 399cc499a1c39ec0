// Watches some files and calls back once one of them has changed and then stayed unchanged
// for `settleMs`. The watch is on their directories, because files are usually replaced by a
// rename (an editor's save, cert-manager, a Kubernetes ConfigMap's or Secret's `..data`
// symlink swap), which a watch on the old file never reports. But a directory event only
// makes us look: what counts is each file's identity as a stat through its symlinks sees it
// (device, inode, size, mtime, ctime), so a log file or anything else written beside the
// watched files never triggers, and a symlink swap always does. Settling means a file
// rewritten in place in several writes is read once it is whole.
import { type FSWatcher, realpathSync, statSync, watch } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Directory events come in bursts: look once they pause this long. */
const DEBOUNCE_MS = 100;

/** How long a changed file must stay unchanged before it is read: a write in several parts is whole by then. */
export const SETTLE_MS = 2000;

export interface WatchOptions {
  /** How long the files must stay unchanged before the callback runs (default SETTLE_MS; 0: at once). */
  readonly settleMs?: number;
}

/** What a stat through symlinks says of each file, in one string; a missing file is its error code. */
export function filesSignature(files: readonly string[]): string {
  return files.map((f) => {
    try {
      const st = statSync(f, { bigint: true });
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code ?? 'error';
    }
  }).join('|');
}

/** Each file's directory, and its symlink target's when that is a regular file elsewhere (edited in place there). */
function watchedDirs(files: readonly string[]): Set<string> {
  const dirs = new Set<string>();
  for (const f of files) {
    dirs.add(dirname(resolve(f)));
    try {
      if (statSync(f).isFile()) dirs.add(dirname(realpathSync(f)));
    } catch {
      // missing for now: its own directory's events will show it coming
    }
  }
  return dirs;
}

/** Starts watching; the returned function stops it. A directory that can't be watched is skipped (reported). */
export function watchFiles(files: readonly string[], onChange: () => void, onWatchError: (dir: string, err: Error) => void, opts: WatchOptions = {}): () => void {
  const settleMs = opts.settleMs ?? SETTLE_MS;
  let timer: NodeJS.Timeout | undefined;
  // The files as they were when we last called back (or started), and a change seen but not yet settled.
  let fired = filesSignature(files);
  let pending: { sig: string; since: number } | undefined;
  const later = (ms: number): void => {
    clearTimeout(timer);
    timer = setTimeout(look, ms);
    timer.unref();
  };
  function look(): void {
    const sig = filesSignature(files);
    if (sig === fired) {
      pending = undefined; // changed and changed back, or another file in the directory
      return;
    }
    const now = Date.now();
    if (pending?.sig !== sig) pending = { sig, since: now };
    const left = pending.since + settleMs - now;
    if (left > 0) return later(left);
    pending = undefined;
    fired = sig;
    onChange();
  }
  const watchers: FSWatcher[] = [];
  for (const dir of watchedDirs(files)) {
    try {
      const w = watch(dir, { persistent: false }, () => later(DEBOUNCE_MS));
      w.on('error', (e) => onWatchError(dir, e));
      watchers.push(w);
    } catch (e) {
      onWatchError(dir, e as Error);
    }
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
