// Applies a reload plan to the running parts, in two steps so a worker of several can be
// told "prepare" and then "commit" or "abort" with the others: prepare builds everything
// new (TLS material loaded, new listeners bound) and changes nothing that serves; commit
// swaps it in (routers for new connections, servers retargeted, removed ones draining);
// abort closes what prepare built. Open connections keep the router and server they
// started with: a server whose settings changed hands its address to a new listener and
// keeps its open connections, with their settings, until they end on their own (only a
// removed server cuts what is left after admin.graceSecs); a replaced router closes once
// no connection uses it.
import type { Config, RouterConfig, ServerConfig } from '../config/types.ts';
import type { Logger } from '../log.ts';
import { effectiveConfig, type ReloadPlan, type ServerChange } from './plan.ts';

export interface LiveRouter {
  readonly label: string;
  readonly destinations: ReadonlyMap<string, unknown>;
  close(): Promise<void>;
}

export interface LiveServer<R extends LiveRouter> {
  readonly rt: string;
  readonly config: ServerConfig;
  readonly live: ReadonlySet<{ readonly destination: unknown }>;
  /** The port bound (while listening). */
  readonly port: number;
  listen(): Promise<void>;
  prepare(): void;
  stopAccepting(): void;
  drain(deadlineMs: number): Promise<void>;
  /** Resolves once the server has no connection left (a replaced server's run to their end). */
  whenIdle(): Promise<void>;
  close(): void;
  /** New connections go to this router (its label is the same). */
  retarget(router: R): void;
  /** The totals of the server this one took over from, so byte counters carry on. */
  carry: (() => { rx: number; tx: number }) | undefined;
  totalBytes(): { rx: number; tx: number };
}

/** What the app lends the reload: its parts, and how to build new ones. */
export interface LiveTarget<R extends LiveRouter, S extends LiveServer<R>> {
  config: Config;
  readonly routers: R[];
  readonly servers: S[];
  /** Removed or replaced servers still draining, and replaced routers still in use. */
  readonly draining: Set<S>;
  readonly retired: Set<R>;
  /** Listeners use SO_REUSEPORT (workers): a replacement binds before the old one closes. */
  readonly reusePort: boolean;
  /** Builds a router (its TLS contexts and interpreter); throws on bad TLS material. */
  makeRouter(rc: RouterConfig, i: number, next: Config): R;
  /** Builds a server (not listening); throws on bad TLS material. */
  makeServer(sc: ServerConfig, router: R, i: number, j: number, next: Config): S;
  /** A router built for a reload that was refused or superseded: close it and forget its TLS. */
  dropRouter(r: R): Promise<void>;
  /** After a commit: watch the new TLS files, log. */
  applied(): void;
  readonly log: Logger;
}

export interface PreparedReload {
  commit(): void;
  abort(): Promise<void>;
}

interface Built<R, S> {
  readonly change: ServerChange;
  readonly server: S;
  readonly old: S | undefined;
  readonly router: R;
  /** Binds at commit, once the listener it takes the address from has closed (no SO_REUSEPORT). */
  readonly later: boolean;
}

/**
 * The running server at [i, j] of the running config. Invariant: every server holds the
 * very ServerConfig object the running config has at its place (see `withLiveObjects`).
 */
function serverAt<R extends LiveRouter, S extends LiveServer<R>>(t: LiveTarget<R, S>, at: readonly [number, number]): S | undefined {
  const sc = t.config.routers[at[0]]?.servers[at[1]];
  return sc === undefined ? undefined : t.servers.find((s) => s.config === sc);
}

export async function prepareReload<R extends LiveRouter, S extends LiveServer<R>>(t: LiveTarget<R, S>, nextIn: Config, plan: ReloadPlan): Promise<PreparedReload> {
  const next = withLiveObjects(t, effectiveConfig(t.config, nextIn), plan);
  const routers = new Map<string, R>();
  const built: Built<R, S>[] = [];
  const bound: S[] = [];
  const abort = async (): Promise<void> => {
    for (const s of bound) {
      s.stopAccepting();
      await s.drain(Date.now());
      s.close();
    }
    for (const r of routers.values()) await t.dropRouter(r);
  };
  try {
    for (const rc of plan.routers) {
      if (rc.kind !== 'added' && rc.kind !== 'changed') continue;
      routers.set(rc.label, t.makeRouter(next.routers[rc.next!]!, rc.next!, next));
    }
    // Addresses a removed server gives up in this reload (say its router was renamed): taken over at commit.
    const freed = new Set(plan.servers.filter((ch) => ch.kind === 'removed').map((ch) => serverAt(t, ch.old!)).filter((s) => s !== undefined).map((s) => `${s.config.ip} ${s.config.port}`));
    for (const ch of plan.servers) {
      if (ch.kind !== 'added' && ch.kind !== 'changed') continue;
      const [i, j] = ch.next!;
      const sc = next.routers[i]!.servers[j]!;
      const router = routers.get(ch.rt) ?? t.routers.find((r) => r.label === ch.rt)!;
      const old = ch.kind === 'changed' ? serverAt(t, ch.old!) : undefined;
      const later = !t.reusePort && (old !== undefined || (sc.port !== 0 && freed.has(`${sc.ip} ${sc.port}`)));
      built.push({ change: ch, server: t.makeServer(sc, router, i, j, next), old, router, later });
    }
    // Bind what is new (with SO_REUSEPORT, replacements too: beside the listeners they replace).
    for (const b of built) {
      if (b.later) continue;
      await b.server.listen();
      bound.push(b.server);
    }
  } catch (e) {
    await abort();
    throw e;
  }
  return {
    abort,
    commit: () => commit(t, next, plan, routers, built),
  };
}

/**
 * `next` with the running servers' own config objects for kept servers, and for a replaced
 * `port: 0` server the port it has (its replacement listens there, not on a new one).
 */
function withLiveObjects<R extends LiveRouter, S extends LiveServer<R>>(t: LiveTarget<R, S>, next: Config, plan: ReloadPlan): Config {
  const routers = next.routers.map((r) => ({ ...r, servers: [...r.servers] }));
  for (const ch of plan.servers) {
    if (ch.kind !== 'kept' && ch.kind !== 'changed') continue;
    const old = serverAt(t, ch.old!);
    if (!old) continue;
    const [i, j] = ch.next!;
    const sc = routers[i]!.servers[j]!;
    if (ch.kind === 'kept') routers[i]!.servers[j] = old.config;
    else if (sc.port === 0) routers[i]!.servers[j] = { ...sc, port: old.port };
  }
  return { ...next, routers };
}

function commit<R extends LiveRouter, S extends LiveServer<R>>(t: LiveTarget<R, S>, next: Config, plan: ReloadPlan, routers: Map<string, R>, built: Built<R, S>[]): void {
  const deadline = Date.now() + next.admin.graceSecs * 1000;
  // Removed: drained for graceSecs, then the rest cut. Replaced: its connections run to their natural end.
  const retire = (s: S, how: 'removed' | 'replaced'): void => {
    s.stopAccepting();
    t.draining.add(s);
    void (how === 'removed' ? s.drain(deadline) : s.whenIdle()).then(() => {
      s.close();
      t.draining.delete(s);
    });
  };
  // Routers: replaced ones keep serving the connections they hold, and close once those are gone.
  for (const [label, r] of routers) {
    const i = t.routers.findIndex((o) => o.label === label);
    if (i >= 0) t.retired.add(t.routers.splice(i, 1, r)[0]!);
    else t.routers.push(r);
  }
  for (const rc of plan.routers) {
    if (rc.kind !== 'removed') continue;
    const i = t.routers.findIndex((o) => o.label === rc.label);
    if (i >= 0) t.retired.add(t.routers.splice(i, 1)[0]!);
  }
  // Servers: removed ones drain; replaced ones hand over; kept ones follow their router.
  const byOld = new Map(built.filter((b) => b.old).map((b) => [b.old!, b] as const));
  for (const ch of plan.servers) {
    if (ch.kind !== 'removed') continue;
    const s = serverAt(t, ch.old!);
    if (s && !byOld.has(s)) retire(s, 'removed');
  }
  const keep: S[] = [];
  for (const s of t.servers) {
    if (t.draining.has(s)) continue;
    const b = byOld.get(s);
    if (b) {
      b.server.carry = () => s.totalBytes();
      retire(s, 'replaced');
      continue;
    }
    const r = routers.get(s.rt);
    if (r) {
      s.retarget(r);
      s.prepare(); // subscribe its destination on the new router now, as at start
    }
    keep.push(s);
  }
  for (const b of built) keep.push(b.server);
  // Same address without SO_REUSEPORT: the old listener closed just above; the new one binds now.
  for (const b of built) {
    if (!b.later) continue;
    b.server.listen().catch((e: unknown) => t.log.error({ rt: b.change.rt, srv: b.change.key, err: (e as Error).message }, 'config reload: a listener taking over an address could not bind; that server is down until the next reload'));
  }
  // Config order, so /api/state lists servers as the file does.
  const order = new Map(next.routers.flatMap((r) => r.servers).map((sc, n) => [sc, n] as const));
  keep.sort((a, b) => (order.get(a.config) ?? 0) - (order.get(b.config) ?? 0));
  t.servers.splice(0, t.servers.length, ...keep);
  t.config = next;
  for (const b of built) b.server.prepare();
  t.applied();
}

/** Closes retired routers no live connection uses any more; call now and then. */
export async function closeIdleRouters<R extends LiveRouter, S extends LiveServer<R>>(t: LiveTarget<R, S>): Promise<void> {
  for (const r of [...t.retired]) {
    const dests = new Set(r.destinations.values());
    let used = false;
    for (const s of [...t.servers, ...t.draining]) {
      for (const c of s.live) if (c.destination !== undefined && dests.has(c.destination)) { used = true; break; }
      if (used) break;
    }
    if (used) continue;
    t.retired.delete(r);
    await r.close();
  }
}
