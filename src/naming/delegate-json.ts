// linkerd's JsonDelegateTree (reference §1.6): the wire shape of a delegation, as linkerd's
// /delegator.json and namerd's /api/1/delegate answer it, keys in linkerd's order ("type"
// first). Addresses as in §1.1; an endpoint weight other than 1 is its `endpoint_addr_weight`.
import type { Addr } from './bind.ts';
import type { DelegateTree } from './delegate.ts';
import { showPrefix } from './dtab.ts';
import { showPathTree } from './name-tree.ts';
import { showPath } from './path.ts';
import type { Dentry } from './types.ts';

export interface JsonDentry {
  readonly prefix: string;
  readonly dst: string;
}

export type JsonAddr =
  | { readonly type: 'bound'; readonly addrs: readonly { readonly ip: string; readonly port: number; readonly meta: Readonly<Record<string, number>> }[]; readonly meta: Readonly<Record<string, never>> }
  | { readonly type: 'neg' }
  | { readonly type: 'pending' }
  | { readonly type: 'failed'; readonly cause: string };

interface JsonBase {
  readonly path: string;
  readonly dentry?: JsonDentry;
}

export type JsonDelegateTree =
  | (JsonBase & { readonly type: 'delegate'; readonly delegate: JsonDelegateTree })
  | (JsonBase & { readonly type: 'alt'; readonly alt: readonly JsonDelegateTree[] })
  | (JsonBase & { readonly type: 'union'; readonly union: readonly { readonly weight: number; readonly tree: JsonDelegateTree }[] })
  | (JsonBase & { readonly type: 'leaf'; readonly bound: { readonly addr: JsonAddr; readonly id: string; readonly path: string } })
  | (JsonBase & { readonly type: 'neg' | 'fail' | 'empty' })
  | (JsonBase & { readonly type: 'exception'; readonly message: string });

/** The explicit `~`, `!` and `$` of a dentry have no path of their own: linkerd shows the symbol. */
const EXPLICIT = { neg: '~', fail: '!', empty: '$' } as const;

export function delegateJson(t: DelegateTree): JsonDelegateTree {
  const path = t.path.length === 0 && (t.kind === 'neg' || t.kind === 'fail' || t.kind === 'empty') ? EXPLICIT[t.kind] : showPath(t.path);
  const head = { type: t.kind, path, ...(t.dentry ? { dentry: dentryJson(t.dentry) } : {}) };
  switch (t.kind) {
    case 'delegate':
      return { ...head, type: t.kind, delegate: delegateJson(t.tree) };
    case 'alt':
      return { ...head, type: t.kind, alt: t.trees.map(delegateJson) };
    case 'union':
      return { ...head, type: t.kind, union: t.branches.map((b) => ({ weight: b.weight, tree: delegateJson(b.tree) })) };
    case 'leaf':
      return { ...head, type: t.kind, bound: { addr: addrJson(t.bound.addr), id: t.bound.id, path: showPath(t.bound.residual) } };
    case 'exception':
      return { ...head, type: t.kind, message: t.message };
    default:
      return { ...head, type: t.kind };
  }
}

export function dentryJson(d: Dentry): JsonDentry {
  return { prefix: showPrefix(d.prefix), dst: showPathTree(d.dst) };
}

const NO_META: Readonly<Record<string, number>> = {};

export function addrJson(a: Addr): JsonAddr {
  switch (a.kind) {
    case 'bound':
      return {
        type: 'bound',
        addrs: a.endpoints.map((e) => ({ ip: e.host, port: e.port, meta: e.weight === 1 ? NO_META : { endpoint_addr_weight: e.weight } })),
        meta: {},
      };
    case 'failed':
      return { type: 'failed', cause: a.reason };
    default:
      return { type: a.kind };
  }
}
