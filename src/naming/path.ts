// Paths (`/svc/web`): sequences of labels. Labels may hold any byte, written as `\xHH`
// when not showable. Parsing lives in parser.ts; this module shows and compares.
import type { Path } from './types.ts';

export type { Path } from './types.ts';
export { parsePath } from './parser.ts';

const SHOWABLE = /^[0-9A-Za-z_:.#$%-]+$/;

/** One label as written in a path: as is when showable, else every char as `\xHH`. */
export function showLabel(label: string): string {
  if (SHOWABLE.test(label)) return label;
  let out = '';
  for (let i = 0; i < label.length; i++) out += '\\x' + label.charCodeAt(i).toString(16).padStart(2, '0');
  return out;
}

export function showPath(p: Path): string {
  return '/' + p.map(showLabel).join('/');
}

/** True when `prefix` is the first `prefix.length` labels of `path`. */
export function startsWith(path: Path, prefix: Path): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) return false;
  return true;
}
