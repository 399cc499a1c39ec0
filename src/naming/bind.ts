// Binding (finagle's Namer.bind, as namerd runs it): rewrite a name through the dtab until
// namers turn paths into bound addresses, then flatten the bound tree into weighted
// endpoints. Pure and synchronous over a snapshot of namer state: when a namer changes,
// the caller binds again.
import { lookup, type Dtab } from './dtab.ts';
import { EMPTY, FAIL, NEG, type NameTree, simplify, type Weighted } from './name-tree.ts';
import type { Path } from './path.ts';
import { addrKey, type Resolution, type WeightedAddr } from './resolution.ts';

export type Addr =
  | { readonly kind: 'bound'; readonly endpoints: readonly WeightedAddr[] }
  | { readonly kind: 'neg' }
  | { readonly kind: 'pending' }
  | { readonly kind: 'failed'; readonly reason: string };

/** A name a namer bound: its id (e.g. `/$/inet/127.1/8080`), the unused rest of the path, and its addresses. */
export interface BoundName {
  readonly id: string;
  readonly residual: Path;
  readonly addr: Addr;
}

export type Activity<T> = { readonly kind: 'ok'; readonly value: T } | { readonly kind: 'pending' } | { readonly kind: 'failed'; readonly reason: string };

/** Binds a path the dtab does not rewrite; null when no namer owns it (→ neg). */
export type NamerLookup = (path: Path) => Activity<NameTree<BoundName>> | null;

type Bound = Activity<NameTree<BoundName>>;
const ok = (value: NameTree<BoundName>): Bound => ({ kind: 'ok', value });

/** Steps (name-tree nodes visited) one binding may take. */
export const MAX_BIND_STEPS = 100_000;

/** Binds `path` through `dtab` and `namers`; max depth as namerd's default (100), and a bounded amount of work. */
export function bind(dtab: Dtab, path: Path, namers: NamerLookup, maxDepth = 100, maxSteps = MAX_BIND_STEPS): Bound {
  // Depth alone does not bound the work: a dtab whose every dentry branches in two
  // (`/n0 => /n1 | /n1; /n1 => /n2 | /n2; …`) doubles it at each step. Count the steps too.
  let steps = 0;
  const bindTree = (t: NameTree<Path>, depth: number): Bound => {
    if (depth > maxDepth) return { kind: 'failed', reason: `Max recursion level: ${maxDepth} reached in Namer lookup` };
    if (++steps > maxSteps) return { kind: 'failed', reason: `binding took over ${maxSteps} steps: the dtab branches too much (an alternative or union at every level?)` };
    switch (t.kind) {
      case 'leaf': {
        const p = t.value;
        const t2 = lookup(dtab, p);
        if (t2.kind !== 'neg') return bindTree(t2, depth + 1);
        if (p[0] === '$' && p[1] === 'fail') return ok(FAIL);
        if (p[0] === '$' && p[1] === 'nil') return ok(EMPTY);
        return namers(p) ?? ok(NEG);
      }
      case 'fail':
      case 'neg':
      case 'empty':
        return ok(t);
      case 'alt': {
        for (const x of t.trees) {
          const r = bindTree(x, depth);
          if (r.kind === 'ok' && r.value.kind === 'neg') continue;
          return r; // fail stops; anything else (even empty) is the answer
        }
        return ok(NEG);
      }
      case 'union': {
        if (t.branches.length === 0) return ok(NEG);
        if (t.branches.length === 1) {
          const only = bindTree(t.branches[0]!.tree, depth);
          return only.kind === 'ok' && !isNegOrFail(only.value) ? ok({ kind: 'union', branches: [{ weight: t.branches[0]!.weight, tree: only.value }] }) : only;
        }
        const results = t.branches.map((b) => ({ weight: b.weight, r: bindTree(b.tree, depth) }));
        const kept: Weighted<BoundName>[] = [];
        for (const { weight, r } of results) if (r.kind === 'ok' && !isNegOrFail(r.value)) kept.push({ weight, tree: r.value });
        if (kept.length) return ok({ kind: 'union', branches: kept });
        const failed = results.find((x) => x.r.kind === 'failed');
        if (failed) return failed.r;
        if (results.some((x) => x.r.kind === 'pending')) return { kind: 'pending' };
        return ok(results.every((x) => x.r.kind === 'ok' && x.r.value.kind === 'fail') ? FAIL : NEG);
      }
    }
  };
  return bindTree({ kind: 'leaf', value: path }, 0);
}

function isNegOrFail(t: NameTree<BoundName>): boolean {
  return t.kind === 'neg' || t.kind === 'fail';
}

/** `empty`: the part of this subtree's share that lands on no endpoint (an empty branch of a union). */
type Flat = { kind: 'endpoints'; endpoints: Map<string, WeightedAddr>; empty: number } | { kind: 'neg' } | { kind: 'pending' } | { kind: 'failed'; reason: string };

/**
 * Flattens a bound tree into weighted endpoints. A union gives each branch it keeps the
 * share w_i / Σw, split among that branch's endpoints in proportion to their own weights,
 * so `3 * /a & 1 * /b` with one endpoint each gives 0.75/0.25. The same address reached
 * twice has its weights summed.
 *
 * A branch bound to no endpoints (a leaf whose set is empty or negative, `$`, `/$/nil`)
 * keeps its share as `emptyWeight`, as Finagle's NameTreeFactory keeps it in the union
 * (its Drv still draws it, and the leaf's balancer fails with no brokers): with
 * `9 * /web & 1 * /web-canary` and web emptied, 90 % of connections fail rather than the
 * canary taking 10× its planned load. What binding drops stays dropped: a branch that binds
 * to ~ or ! (Namer.bind's `Union.fromSeq(oks).simplified`), or whose binding failed or is
 * still pending.
 */
export function resolve(a: Bound): Resolution | 'pending' {
  if (a.kind === 'pending') return 'pending';
  if (a.kind === 'failed') return { kind: 'failed', reason: a.reason };
  const f = flatten(simplify(a.value), 1);
  switch (f.kind) {
    case 'pending':
      return 'pending';
    case 'failed':
      return { kind: 'failed', reason: f.reason };
    case 'neg':
      return { kind: 'neg' };
    case 'endpoints': {
      const endpoints = [...f.endpoints.values()];
      // Sources bound every weight (MAX_WEIGHT), so this holds; checked so that a namer that
      // forgot cannot hand the balancer shares of NaN or 0-of-Infinity.
      if (endpoints.some((e) => !Number.isFinite(e.weight))) return { kind: 'failed', reason: 'endpoint weights are not finite numbers' };
      // With no endpoints at all every connection fails anyway: no empty share to carry.
      return endpoints.length && f.empty > 0 ? { kind: 'bound', endpoints, emptyWeight: f.empty } : { kind: 'bound', endpoints };
    }
  }
}

function flatten(t: NameTree<BoundName>, share: number): Flat {
  switch (t.kind) {
    case 'neg':
      return { kind: 'neg' };
    case 'fail':
      return { kind: 'failed', reason: 'the name is bound to ! (fail)' };
    case 'empty':
      return { kind: 'endpoints', endpoints: new Map(), empty: share };
    case 'leaf': {
      const addr = t.value.addr;
      if (addr.kind !== 'bound') return addr.kind === 'failed' ? { kind: 'failed', reason: addr.reason } : { kind: addr.kind };
      const total = addr.endpoints.reduce((s, e) => s + e.weight, 0);
      const out = new Map<string, WeightedAddr>();
      for (const e of addr.endpoints) add(out, e, total > 0 ? (share * e.weight) / total : 0);
      // No endpoint (or only weight-0 ones) to take this leaf's share: it lands nowhere.
      return { kind: 'endpoints', endpoints: out, empty: total > 0 ? 0 : share };
    }
    case 'alt':
      for (const x of t.trees) {
        const r = flatten(x, share);
        if (r.kind !== 'neg') return r;
      }
      return { kind: 'neg' };
    case 'union': {
      const parts = t.branches.map((b) => ({ weight: b.weight, r: flatten(b.tree, 1) }));
      const usable = parts.filter((p) => p.r.kind === 'endpoints');
      if (usable.length === 0) {
        return parts.find((p) => p.r.kind === 'failed')?.r ?? parts.find((p) => p.r.kind === 'pending')?.r ?? { kind: 'neg' };
      }
      // Binding dropped ~ and ! branches, so a neg here is a leaf whose address set is
      // negative: Finagle's balancer takes Addr.Neg as an empty set (AddrLifecycle), an empty branch.
      const kept = parts.filter((p) => p.r.kind === 'endpoints' || p.r.kind === 'neg');
      const total = kept.reduce((s, p) => s + p.weight, 0);
      const out = new Map<string, WeightedAddr>();
      let empty = 0;
      for (const p of kept) {
        const bshare = total > 0 ? (share * p.weight) / total : 0;
        if (p.r.kind !== 'endpoints') {
          empty += bshare;
          continue;
        }
        for (const e of p.r.endpoints.values()) add(out, e, e.weight * bshare);
        empty += p.r.empty * bshare;
      }
      return { kind: 'endpoints', endpoints: out, empty };
    }
  }
}

function add(m: Map<string, WeightedAddr>, e: WeightedAddr, weight: number): void {
  const k = addrKey(e.host, e.port);
  const prev = m.get(k);
  m.set(k, { host: e.host, port: e.port, weight: (prev?.weight ?? 0) + weight });
}
