// Delegation (linkerd's "dtab playground", ConfiguredNamersInterpreter.delegate and
// DelegateTree.simplified, reference §3.7): how a name is rewritten, step by step, through a
// dtab down to what the namers bind. Unlike bind, every alternative is expanded (an operator
// wants to see the fallbacks too) and failures become exception nodes. Pure and synchronous
// over a snapshot of namer state, as bind is; the caller asks again when a namer was pending.
import { MAX_BIND_STEPS, type BoundName, type NamerLookup } from './bind.ts';
import { type Dentry, type Dtab, matches } from './dtab.ts';
import type { NameTree, Path } from './types.ts';

interface Base {
  /** The name at this node; [] for an explicit `~`, `!` or `$` in a dentry (shown as such). */
  readonly path: Path;
  /** The dentry that produced this node; null at the root (finagle's Dentry.nop). */
  readonly dentry: Dentry | null;
}

export type DelegateTree =
  | (Base & { readonly kind: 'delegate'; readonly tree: DelegateTree })
  | (Base & { readonly kind: 'alt'; readonly trees: readonly DelegateTree[] })
  | (Base & { readonly kind: 'union'; readonly branches: readonly { readonly weight: number; readonly tree: DelegateTree }[] })
  | (Base & { readonly kind: 'leaf'; readonly bound: BoundName })
  | (Base & { readonly kind: 'neg' | 'fail' | 'empty' })
  | (Base & { readonly kind: 'exception'; readonly message: string });

export interface Delegation {
  readonly tree: DelegateTree;
  /** Some namer had no answer yet (its node is an exception saying so): ask again once it has. */
  readonly pending: boolean;
}

/** What a pending namer's node says while the caller has stopped waiting. */
export const PENDING_MESSAGE = 'pending: the namer has no answer for this name yet';

/** Thrown inside the walk only, when it has taken more than maxSteps steps. */
class TooMuchWork extends Error {}

/**
 * Delegates `path` through `dtab` and `namers`, depth-bounded as namerd (100 rewrites) and
 * work-bounded as bind (MAX_BIND_STEPS nodes): every alternative is expanded, so a dtab
 * branching in two at each level would otherwise build 2^100 nodes. Past the bound, the
 * answer is one exception node saying so (small, and shown like any other failure).
 */
export function delegate(dtab: Dtab, path: Path, namers: NamerLookup, maxDepth = 100, maxSteps = MAX_BIND_STEPS): Delegation {
  let steps = 0;
  let pending = false;
  const step = (): void => {
    if (++steps > maxSteps) throw new TooMuchWork();
  };

  const walkPath = (p: Path, dentry: Dentry | null, depth: number): DelegateTree => {
    step();
    if (depth > maxDepth) return { kind: 'exception', path: p, dentry, message: `Max recursion level: ${maxDepth} reached in Namer lookup` };
    const rewrites: DelegateTree[] = [];
    // Last dentry first, as lookup: later dentries take precedence.
    for (let i = dtab.length - 1; i >= 0; i--) {
      const d = dtab[i]!;
      if (!matches(d.prefix, p)) continue;
      const rest = p.slice(d.prefix.length);
      rewrites.push(fromDst(p, d, d.dst, rest, depth + 1));
    }
    if (rewrites.length === 0) return namerNode(p, dentry);
    if (rewrites.length === 1) return { kind: 'delegate', path: p, dentry, tree: rewrites[0]! };
    return { kind: 'alt', path: p, dentry, trees: rewrites };
  };

  // A dentry's destination, its leaves rewritten (`rest` appended) and delegated in turn.
  const fromDst = (p: Path, d: Dentry, t: NameTree<Path>, rest: Path, depth: number): DelegateTree => {
    step();
    switch (t.kind) {
      case 'leaf':
        return walkPath([...t.value, ...rest], d, depth);
      case 'neg':
      case 'fail':
      case 'empty':
        return { kind: t.kind, path: [], dentry: d };
      case 'alt':
        return { kind: 'alt', path: p, dentry: d, trees: t.trees.map((x) => fromDst(p, d, x, rest, depth)) };
      case 'union':
        return { kind: 'union', path: p, dentry: d, branches: t.branches.map((b) => ({ weight: b.weight, tree: fromDst(p, d, b.tree, rest, depth) })) };
    }
  };

  // No dentry matches: the built-in /$/fail and /$/nil, then the namers; else neg.
  const namerNode = (p: Path, dentry: Dentry | null): DelegateTree => {
    if (p[0] === '$' && p[1] === 'fail') return { kind: 'fail', path: p, dentry };
    if (p[0] === '$' && p[1] === 'nil') return { kind: 'empty', path: p, dentry };
    const r = namers(p);
    if (r === null) return { kind: 'neg', path: p, dentry };
    if (r.kind === 'pending') {
      pending = true;
      return { kind: 'exception', path: p, dentry, message: PENDING_MESSAGE };
    }
    if (r.kind === 'failed') return { kind: 'exception', path: p, dentry, message: r.reason };
    return fromBound(p, dentry, r.value);
  };

  const fromBound = (p: Path, dentry: Dentry | null, t: NameTree<BoundName>): DelegateTree => {
    step();
    switch (t.kind) {
      case 'leaf':
        return { kind: 'leaf', path: p, dentry, bound: t.value };
      case 'neg':
      case 'fail':
      case 'empty':
        return { kind: t.kind, path: p, dentry };
      case 'alt':
        return { kind: 'alt', path: p, dentry, trees: t.trees.map((x) => fromBound(p, dentry, x)) };
      case 'union':
        return { kind: 'union', path: p, dentry, branches: t.branches.map((b) => ({ weight: b.weight, tree: fromBound(p, dentry, b.tree) })) };
    }
  };

  try {
    const tree = simplify(walkPath(path, null, 0));
    return { tree, pending };
  } catch (e) {
    if (!(e instanceof TooMuchWork)) throw e;
    const message = `delegation took over ${maxSteps} steps: the dtab branches too much (an alternative or union at every level?)`;
    return { tree: { kind: 'exception', path, dentry: null, message }, pending: false };
  }
}

function samePath(a: Path, b: Path): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * DelegateTree.simplified: a delegate whose child names the same path is that child (with the
 * delegate's dentry); a single-child alt or union is a delegate; an empty one is neg; an alt
 * nested in an alt of the same path is flattened into it.
 */
export function simplify(t: DelegateTree): DelegateTree {
  switch (t.kind) {
    case 'delegate': {
      const s = simplify(t.tree);
      return samePath(s.path, t.path) ? { ...s, dentry: t.dentry } : { ...t, tree: s };
    }
    case 'alt': {
      if (t.trees.length === 0) return { kind: 'neg', path: t.path, dentry: t.dentry };
      if (t.trees.length === 1) return simplify({ kind: 'delegate', path: t.path, dentry: t.dentry, tree: t.trees[0]! });
      const trees = t.trees.map(simplify).flatMap((x) => (x.kind === 'alt' && samePath(x.path, t.path) ? x.trees : [x]));
      return { ...t, trees };
    }
    case 'union': {
      if (t.branches.length === 0) return { kind: 'neg', path: t.path, dentry: t.dentry };
      if (t.branches.length === 1) return simplify({ kind: 'delegate', path: t.path, dentry: t.dentry, tree: t.branches[0]!.tree });
      return { ...t, branches: t.branches.map((b) => ({ weight: b.weight, tree: simplify(b.tree) })) };
    }
    default:
      return t;
  }
}
