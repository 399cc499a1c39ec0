// Decodes namerd's answers from `unknown`: Addr JSON (`/api/1/resolve` and `/api/1/addr`,
// reference §1.1) into a Resolution, and bound trees (`/api/1/bind`, §1.5) into a NameTree.
// Per-address weights come from `meta.endpoint_addr_weight` and are normalised to sum 1, as
// linkerd-tcp did; every weight is bounded (MAX_WEIGHT) and port 0 refused. Text namerd
// supplies (a cause, an unknown type) is bounded (boundText) before it becomes a reason that
// is logged and shown in /api/state.
import { isIP } from 'node:net';
import type { NameTree } from '../naming/types.ts';
import { badWeight, type Resolution, type WeightedAddr } from '../naming/resolution.ts';
import { boundText } from '../safe-text.ts';

/** The resolution a namerd answer means; undefined for `pending` (nothing to act on). */
export function decodeAddr(body: unknown): Resolution | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad('expected a JSON object');
  const o = body as Record<string, unknown>;
  switch (o['type']) {
    case 'bound':
      return decodeBound(o);
    case 'neg':
      // linkerd-tcp: required `addrs` and failed to parse this (#90); it means "no endpoints".
      return { kind: 'neg' };
    case 'failed':
      return { kind: 'failed', reason: `namerd: ${typeof o['cause'] === 'string' ? boundText(o['cause']) : 'failed'}` };
    case 'pending':
      return undefined;
    default:
      return bad(`unexpected type ${shown(o['type'])}`);
  }
}

function decodeBound(o: Record<string, unknown>): Resolution {
  const addrs = o['addrs'];
  if (!Array.isArray(addrs)) return bad('bound without an addrs list');
  const out: WeightedAddr[] = [];
  for (const [i, a] of addrs.entries()) {
    if (typeof a !== 'object' || a === null) return bad(`addrs[${i}] is not an object`);
    const { ip, port, meta } = a as Record<string, unknown>;
    if (typeof ip !== 'string' || !isIP(ip)) return bad(`addrs[${i}].ip is not an IP address`);
    // linkerd-tcp: port 0 cannot be dialled; rejecting the answer keeps the last good set.
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return bad(`addrs[${i}].port is not a port (1-65535)`);
    let weight = 1;
    if (typeof meta === 'object' && meta !== null) {
      const w = (meta as Record<string, unknown>)['endpoint_addr_weight'];
      if (w !== undefined) {
        const why = badWeight(w);
        if (why !== undefined) return bad(`addrs[${i}].meta.endpoint_addr_weight ${why}`);
        weight = w as number;
      }
    }
    out.push({ host: ip, port, weight });
  }
  const total = out.reduce((s, e) => s + e.weight, 0);
  return { kind: 'bound', endpoints: total > 0 ? out.map((e) => ({ ...e, weight: e.weight / total })) : out };
}

function bad(why: string): Resolution {
  return { kind: 'failed', reason: `unexpected namerd response: ${why}` };
}

/** A value namerd sent, as JSON cut to a readable length (it may be a megabyte). */
function shown(v: unknown): string {
  return boundText(JSON.stringify(v) ?? String(v), 100);
}

/** A leaf of a bound tree from `/api/1/bind`: the concrete id and the addr namerd rendered with it (undefined: pending). */
export interface BoundLeaf {
  readonly id: string;
  readonly addr: Resolution | undefined;
}

export type DecodedTree = { readonly kind: 'tree'; readonly tree: NameTree<BoundLeaf> } | { readonly kind: 'failed'; readonly reason: string };

const MAX_TREE_DEPTH = 100;

/**
 * Decodes namerd's bound-tree JSON (`/api/1/bind`, reference §1.5): leaf, union (with
 * weights, bounded like every weight), alt, neg, fail, empty. Every bad field is named by
 * its place in the tree (`union[1].tree.bound.id`).
 */
export function decodeBoundTree(body: unknown): DecodedTree {
  try {
    return { kind: 'tree', tree: tree(body, 'tree', 0) };
  } catch (e) {
    // Bounded already: namerd's values are cut (shown), and a place in the tree is at most MAX_TREE_DEPTH steps.
    return { kind: 'failed', reason: `unexpected namerd bind response: ${(e as Error).message}` };
  }
}

function tree(v: unknown, at: string, depth: number): NameTree<BoundLeaf> {
  // The reason first: a path 100 levels deep is long, and readers (and /api/state) may cut the end.
  if (depth > MAX_TREE_DEPTH) throw new Error(`nested over ${MAX_TREE_DEPTH} levels at ${at}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at} is not an object`);
  const o = v as Record<string, unknown>;
  switch (o['type']) {
    case 'neg':
    case 'fail':
    case 'empty':
      return { kind: o['type'] };
    case 'leaf': {
      const b = o['bound'];
      if (typeof b !== 'object' || b === null) throw new Error(`${at}.bound is not an object`);
      const { id, addr } = b as Record<string, unknown>;
      if (typeof id !== 'string' || !id.startsWith('/')) throw new Error(`${at}.bound.id is not a path`);
      const a = addr === undefined ? undefined : decodeAddr(addr);
      if (a?.kind === 'failed' && a.reason.startsWith('unexpected')) throw new Error(`${at}.bound.addr: ${a.reason}`);
      return { kind: 'leaf', value: { id, addr: a } };
    }
    case 'union': {
      const u = o['union'];
      if (!Array.isArray(u)) throw new Error(`${at}.union is not a list`);
      return {
        kind: 'union',
        branches: u.map((w: unknown, i) => {
          const wt = typeof w === 'object' && w !== null ? (w as Record<string, unknown>) : {};
          const why = badWeight(wt['weight']);
          if (why !== undefined) throw new Error(`${at}.union[${i}].weight ${why}`);
          return { weight: wt['weight'] as number, tree: tree(wt['tree'], `${at}.union[${i}].tree`, depth + 1) };
        }),
      };
    }
    case 'alt': {
      const a = o['alt'];
      if (!Array.isArray(a)) throw new Error(`${at}.alt is not a list`);
      return { kind: 'alt', trees: a.map((x: unknown, i) => tree(x, `${at}.alt[${i}]`, depth + 1)) };
    }
    default:
      throw new Error(`${at}.type ${shown(o['type'])} is not one of leaf, union, alt, neg, fail, empty`);
  }
}
