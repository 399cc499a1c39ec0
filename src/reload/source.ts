// The config as a file the proxy can read again: its decoded form plus the SHA-256 of the
// bytes read (what /api/state shows and `sha256sum` prints), so a reload knows whether the
// file changed and an operator can tell which version runs.
import { createHash } from 'node:crypto';
import { parseConfig, readConfigText } from '../config/load.ts';
import type { Config } from '../config/types.ts';

export interface LoadedConfig {
  readonly config: Config;
  /** SHA-256 of the file's bytes, hex. */
  readonly hash: string;
  /** The path given (`-` for stdin, which cannot be read again). */
  readonly path: string;
  readonly loadedAt: number; // epoch ms
}

export const hashText = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Decodes text read from `path`; throws LinkerdTcpError naming the file and every key path. */
export function decodeConfigText(text: string, path: string, now: () => number = Date.now): LoadedConfig {
  return { config: parseConfig(text, path === '-' ? '<stdin>' : path), hash: hashText(text), path, loadedAt: now() };
}

/** Reads and decodes `path` (`-` = stdin). */
export function readConfigFile(path: string, now: () => number = Date.now): LoadedConfig {
  return decodeConfigText(readConfigText(path), path, now);
}
