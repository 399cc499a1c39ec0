// Name trees: what a dtab rewrites a name to. `alt` (|) falls back, `union` (&) balances
// over weighted branches, `fail` (!) stops, `neg` (~) means no such name, `empty` ($) means
// the name exists with no endpoints. Printing follows finagle's `show`.
import { showPath } from './path.ts';
import { FAIL, NEG, type NameTree, type Path, type Weighted } from './types.ts';

export { EMPTY, FAIL, NEG, type NameTree, type Weighted } from './types.ts';
export { parseNameTree } from './parser.ts';

/** Replaces every leaf value. */
export function mapTree<A, B>(t: NameTree<A>, f: (a: A) => B): NameTree<B> {
  switch (t.kind) {
    case 'leaf':
      return { kind: 'leaf', value: f(t.value) };
    case 'alt':
      return { kind: 'alt', trees: t.trees.map((x) => mapTree(x, f)) };
    case 'union':
      return { kind: 'union', branches: t.branches.map((b) => ({ weight: b.weight, tree: mapTree(b.tree, f) })) };
    default:
      return t;
  }
}

/** finagle's `show`: ` | ` and ` & `, weights ≠ 1 as `%.2f*`, parentheses around nested alt/union. */
export function showNameTree<T>(t: NameTree<T>, showLeaf: (v: T) => string): string {
  const simple = (x: NameTree<T>): string => (x.kind === 'alt' || x.kind === 'union' ? `(${showNameTree(x, showLeaf)})` : showNameTree(x, showLeaf));
  switch (t.kind) {
    case 'leaf':
      return showLeaf(t.value);
    case 'fail':
      return '!';
    case 'neg':
      return '~';
    case 'empty':
      return '$';
    case 'alt':
      if (t.trees.length === 1) return showNameTree(t.trees[0]!, showLeaf);
      return t.trees.map((x) => (x.kind === 'alt' ? `(${showNameTree(x, showLeaf)})` : showNameTree(x, showLeaf))).join(' | ');
    case 'union':
      if (t.branches.length === 1 && t.branches[0]!.weight === 1) return showNameTree(t.branches[0]!.tree, showLeaf);
      return t.branches.map((b) => (b.weight === 1 ? '' : `${b.weight.toFixed(2)}*`) + simple(b.tree)).join(' & ');
  }
}

export const showPathTree = (t: NameTree<Path>): string => showNameTree(t, showPath);

/** finagle's `simplified`: drops neg branches, stops alts at fail, collapses singletons. */
export function simplify<T>(t: NameTree<T>): NameTree<T> {
  switch (t.kind) {
    case 'alt': {
      const kept: NameTree<T>[] = [];
      for (const x of t.trees) {
        const s = simplify(x);
        if (s.kind === 'neg') continue;
        kept.push(s);
        if (s.kind === 'fail') break;
      }
      if (kept.length === 0) return NEG;
      return kept.length === 1 ? kept[0]! : { kind: 'alt', trees: kept };
    }
    case 'union': {
      const kept: Weighted<T>[] = [];
      for (const b of t.branches) {
        const s = simplify(b.tree);
        if (s.kind !== 'neg' && s.kind !== 'fail') kept.push({ weight: b.weight, tree: s });
      }
      if (kept.length === 0) return t.branches.length > 0 && t.branches.every((b) => simplify(b.tree).kind === 'fail') ? FAIL : NEG;
      return kept.length === 1 ? kept[0]!.tree : { kind: 'union', branches: kept };
    }
    default:
      return t;
  }
}

/** finagle's `eval`: the set of leaves a tree denotes, or undefined when it denotes none (neg/fail). */
export function evalTree<T>(t: NameTree<T>): Set<T> | undefined {
  switch (t.kind) {
    case 'leaf':
      return new Set([t.value]);
    case 'empty':
      return new Set();
    case 'fail':
    case 'neg':
      return undefined;
    case 'alt':
      for (const x of t.trees) {
        if (x.kind === 'fail') return undefined;
        const r = evalTree(x);
        if (r) return r;
      }
      return undefined;
    case 'union': {
      let out: Set<T> | undefined;
      for (const b of t.branches) {
        const r = evalTree(b.tree);
        if (r) out = new Set([...(out ?? []), ...r]);
      }
      return out;
    }
  }
}
