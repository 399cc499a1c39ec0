// Watches the directories holding some files and calls back (debounced) after any change
// there. Directories rather than files, because certificates are usually replaced by a
// rename (an editor's save, cert-manager, a Kubernetes secret's `..data` symlink swap),
// which a watch on the old file never reports. The callback compares contents itself.
import { type FSWatcher, watch } from 'node:fs';
import { dirname, resolve } from 'node:path';

const DEBOUNCE_MS = 100;

/** Starts watching; the returned function stops it. A directory that can't be watched is skipped. */
export function watchFiles(files: readonly string[], onChange: () => void, onWatchError: (dir: string, err: Error) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const fire = (): void => {
    clearTimeout(timer);
    timer = setTimeout(onChange, DEBOUNCE_MS);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set(files.map((f) => dirname(resolve(f))))) {
    try {
      const w = watch(dir, { persistent: false }, fire);
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
