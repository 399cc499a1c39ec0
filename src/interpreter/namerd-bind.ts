// `mode: bind`, what linkerd's own namerd interpreter does: /api/1/bind/<ns>?path=<name>
// gives the bound tree with its union weights (addresses inline, as of rendering), and
// /api/1/addr/<ns>?path=<leaf id> follows each leaf's addresses (a bind stream does not
// repeat when only addresses change). The tree and the latest addresses are flattened as
// the default interpreter flattens its own binding (branch share × normalised endpoint
// weight), so a canary `9 * /a & 1 * /b` written in namerd's dtab reaches the balancer as
// endpoint weights 0.9/0.1. A failed addr feed keeps that leaf's last good addresses (its
// failure is a warning once, then debug while it stays the same).
import { type Addr, type BoundName, resolve } from '../naming/bind.ts';
import { mapTree } from '../naming/name-tree.ts';
import type { Resolution } from '../naming/resolution.ts';
import type { NameTree } from '../naming/types.ts';
import type { InterpreterConfig } from '../config/types.ts';
import { boundText } from '../safe-text.ts';
import { type BoundLeaf, decodeAddr, decodeBoundTree } from './namerd-decode.ts';
import { Feed, type FeedEnv } from './namerd-feed.ts';

/** What a namerd loop needs: where namerd is, how to ask, and the feeds' settings. */
export interface LoopEnv {
  readonly config: Extract<InterpreterConfig, { kind: 'io.l5d.namerd.http' }>;
  readonly dtab: string;
  readonly feed: FeedEnv;
}

interface LeafFeed {
  readonly feed: Feed;
  addr: Addr | undefined; // undefined until the addr feed answers (the inline addr stands in)
  failure: string | undefined; // the failure last warned about, until a good answer
}

export class BindLoop {
  private readonly dst: string;
  private readonly env: LoopEnv;
  private readonly deliver: (r: Resolution) => void;
  private readonly bindFeed: Feed;
  private readonly leaves = new Map<string, LeafFeed>();
  private tree: NameTree<BoundLeaf> | undefined;
  private scheduled = false;
  private stopped = false;

  constructor(dst: string, env: LoopEnv, deliver: (r: Resolution) => void) {
    this.dst = dst;
    this.env = env;
    this.deliver = deliver;
    const url = this.url('bind', dst);
    if (env.dtab) url.searchParams.set('dtab', env.dtab);
    this.bindFeed = new Feed(url, env.feed, {
      value: (v) => this.onTree(v),
      failed: (reason) => this.deliver({ kind: 'failed', reason }),
    });
  }

  start(): void {
    this.bindFeed.start();
  }

  stop(): void {
    this.stopped = true;
    this.bindFeed.stop();
    for (const l of this.leaves.values()) l.feed.stop();
    this.leaves.clear();
  }

  private url(api: 'bind' | 'addr', path: string): URL {
    const c = this.env.config;
    const url = new URL(`${c.baseUrl}/api/1/${api}/${encodeURIComponent(c.namespace)}`);
    url.searchParams.set('path', path);
    return url;
  }

  private onTree(v: unknown): boolean {
    const d = decodeBoundTree(v);
    if (d.kind === 'failed') {
      this.deliver({ kind: 'failed', reason: d.reason });
      return false;
    }
    this.tree = d.tree;
    // One addr feed per leaf id in the tree: start the new ones, stop the ones gone.
    const ids = new Set<string>();
    const collect = (t: NameTree<BoundLeaf>): void => {
      if (t.kind === 'leaf') ids.add(t.value.id);
      else if (t.kind === 'alt') t.trees.forEach(collect);
      else if (t.kind === 'union') t.branches.forEach((b) => collect(b.tree));
    };
    collect(d.tree);
    for (const [id, l] of this.leaves) {
      if (ids.has(id)) continue;
      l.feed.stop();
      this.leaves.delete(id);
    }
    for (const id of ids) if (!this.leaves.has(id)) this.startLeaf(id);
    this.schedule();
    return true;
  }

  private startLeaf(id: string): void {
    const leaf: LeafFeed = {
      addr: undefined,
      failure: undefined,
      feed: new Feed(this.url('addr', id), this.env.feed, {
        value: (v) => {
          const r = decodeAddr(v);
          if (r === undefined) return true; // pending
          if (r.kind === 'failed' && leaf.addr?.kind === 'bound') {
            this.addrFailed(leaf, id, r.reason);
            return false;
          }
          if (r.kind !== 'failed') leaf.failure = undefined;
          leaf.addr = r;
          this.schedule();
          return r.kind !== 'failed';
        },
        failed: (reason) => this.addrFailed(leaf, id, reason),
      }),
    };
    this.leaves.set(id, leaf);
    leaf.feed.start();
  }

  /** A new failure of a leaf's addr feed is a warning; the same one every poll after it, debug. */
  private addrFailed(leaf: LeafFeed, id: string, reason: string): void {
    const log = this.env.feed.log;
    const fields = { dst: this.dst, id: boundText(id), reason }; // namerd names the id: it may be long
    if (leaf.failure === reason) {
      if (log.isLevelEnabled('debug')) log.debug(fields, 'namerd addr failed; keeping the last addresses');
      return;
    }
    leaf.failure = reason;
    log.warn(fields, 'namerd addr failed; keeping the last addresses');
  }

  /** Several feeds may answer in one turn: flatten once, after them. */
  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.stopped || !this.tree) return;
      const bound: NameTree<BoundName> = mapTree(this.tree, (l) => ({
        id: l.id, residual: [], addr: this.leaves.get(l.id)?.addr ?? l.addr ?? { kind: 'pending' },
      }));
      const r = resolve({ kind: 'ok', value: bound });
      if (r !== 'pending') this.deliver(r);
    });
  }
}
