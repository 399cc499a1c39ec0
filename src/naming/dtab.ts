// Dtabs: ordered rewrite rules `prefix => tree`. Lookup scans from the last rule (later
// rules win, earlier ones are fallbacks) and appends the unmatched rest of the path to
// every leaf of the destination tree.
import { mapTree, showNameTree } from './name-tree.ts';
import { showLabel, showPath } from './path.ts';
import { type Dentry, type Dtab, NEG, type NameTree, type Path, type Prefix, WILDCARD } from './types.ts';

export { type Dentry, type Dtab, type Prefix, WILDCARD } from './types.ts';
export { parseDentry, parseDtab } from './parser.ts';

export function showPrefix(p: Prefix): string {
  return '/' + p.map((e) => (e === WILDCARD ? '*' : showLabel(e))).join('/');
}

/** `prefix=>dst` with no spaces, as finagle prints it. */
export function showDentry(d: Dentry): string {
  return `${showPrefix(d.prefix)}=>${showNameTree(d.dst, showPath)}`;
}

export function showDtab(d: Dtab): string {
  return d.map(showDentry).join(';');
}

/** True when `prefix` matches the first labels of `path` (`*` matches any one label). */
export function matches(prefix: Prefix, path: Path): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== WILDCARD && prefix[i] !== path[i]) return false;
  return true;
}

/** The tree `path` rewrites to: neg when no rule matches, an alt (last rule first) when several do. */
export function lookup(dtab: Dtab, path: Path): NameTree<Path> {
  const found: NameTree<Path>[] = [];
  for (let i = dtab.length - 1; i >= 0; i--) {
    const d = dtab[i]!;
    if (!matches(d.prefix, path)) continue;
    const rest = path.slice(d.prefix.length);
    found.push(rest.length ? mapTree(d.dst, (p) => [...p, ...rest]) : d.dst);
  }
  if (found.length === 0) return NEG;
  return found.length === 1 ? found[0]! : { kind: 'alt', trees: found };
}
