// What a reload would change, pure: servers added, removed, changed and kept (matched by
// router label and listen address; `port: 0` ones by their place in the router), routers
// whose naming or client settings changed, and the top-level keys only a restart applies.
// Used to apply a reload, to log it, to answer POST /reload, and by `--check --diff`.
import type { Config, RouterConfig, ServerConfig } from '../config/types.ts';

export type ChangeKind = 'added' | 'removed' | 'changed' | 'kept';

export interface ServerChange {
  readonly kind: ChangeKind;
  readonly rt: string;
  /** `ip:port` as configured (`ip:0#j` for an any-port server, j its index in the router). */
  readonly key: string;
  /** [router index, server index] in the old and the new config. */
  readonly old: readonly [number, number] | undefined;
  readonly next: readonly [number, number] | undefined;
  /** Changed keys (`dstName`, `tls`, …); for a kept server whose router changed, `router`. */
  readonly what: readonly string[];
}

export interface RouterChange {
  readonly kind: ChangeKind;
  readonly label: string;
  readonly old: number | undefined;
  readonly next: number | undefined;
  /** Changed keys: `dtab`, `interpreter`, `client`, `namers` (the default interpreter's), … */
  readonly what: readonly string[];
}

export interface ReloadPlan {
  readonly routers: readonly RouterChange[];
  readonly servers: readonly ServerChange[];
  /** Top-level keys that differ but only a restart applies (`workers`, `admin.port`, …). */
  readonly needsRestart: readonly string[];
  /** watchConfig turned on or off (applied live). */
  readonly watchConfig: boolean | undefined;
}

/** Keys a running proxy cannot change: reported, and the running value kept. */
const RESTART_KEYS = ['workers', 'bufferSizeBytes', 'engine', 'threads'] as const;

const json = (v: unknown): string => JSON.stringify(v) ?? 'undefined';

function changedKeys(a: object, b: object, skip: readonly string[] = []): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const out: string[] = [];
  for (const k of keys) {
    if (skip.includes(k)) continue;
    if (json((a as Record<string, unknown>)[k]) !== json((b as Record<string, unknown>)[k])) out.push(k);
  }
  return out.sort();
}

/** What a router's destinations depend on, besides its servers. */
function routerWhat(old: RouterConfig, next: RouterConfig, oldCfg: Config, nextCfg: Config): string[] {
  const what = changedKeys(old, next, ['servers']);
  if (next.interpreter.kind === 'default' && json(oldCfg.namers) !== json(nextCfg.namers)) what.push('namers');
  return what;
}

export function serverKey(s: ServerConfig, j: number): string {
  const ip = s.ip.includes(':') ? `[${s.ip}]` : s.ip;
  return s.port === 0 ? `${ip}:0#${j}` : `${ip}:${s.port}`;
}

export function planReload(old: Config, next: Config): ReloadPlan {
  const routers: RouterChange[] = [];
  const servers: ServerChange[] = [];
  const oldByLabel = new Map(old.routers.map((r, i) => [r.label, i] as const));
  const nextLabels = new Set(next.routers.map((r) => r.label));
  next.routers.forEach((nr, ni) => {
    const oi = oldByLabel.get(nr.label);
    const or = oi === undefined ? undefined : old.routers[oi]!;
    const what = or ? routerWhat(or, nr, old, next) : [];
    routers.push({ kind: !or ? 'added' : what.length ? 'changed' : 'kept', label: nr.label, old: oi, next: ni, what });
    const oldServers = new Map((or?.servers ?? []).map((s, j) => [serverKey(s, j), j] as const));
    const seen = new Set<string>();
    nr.servers.forEach((ns, nj) => {
      const key = serverKey(ns, nj);
      seen.add(key);
      const oj = oldServers.get(key);
      if (oi === undefined || oj === undefined) {
        servers.push({ kind: 'added', rt: nr.label, key, old: undefined, next: [ni, nj], what: [] });
        return;
      }
      const sw = changedKeys(or!.servers[oj]!, ns);
      const kind: ChangeKind = sw.length ? 'changed' : 'kept';
      servers.push({ kind, rt: nr.label, key, old: [oi, oj], next: [ni, nj], what: sw.length ? sw : what.length ? ['router'] : [] });
    });
    or?.servers.forEach((os, oj) => {
      const key = serverKey(os, oj);
      if (!seen.has(key)) servers.push({ kind: 'removed', rt: nr.label, key, old: [oi!, oj], next: undefined, what: [] });
    });
  });
  old.routers.forEach((or, oi) => {
    if (nextLabels.has(or.label)) return;
    routers.push({ kind: 'removed', label: or.label, old: oi, next: undefined, what: [] });
    or.servers.forEach((os, oj) => servers.push({ kind: 'removed', rt: or.label, key: serverKey(os, oj), old: [oi, oj], next: undefined, what: [] }));
  });
  const needsRestart: string[] = [];
  for (const k of RESTART_KEYS) if (json(old[k]) !== json(next[k])) needsRestart.push(k);
  for (const k of changedKeys(old.admin, next.admin)) needsRestart.push(`admin.${k}`);
  const watchConfig = (old.watchConfig ?? false) === (next.watchConfig ?? false) ? undefined : next.watchConfig ?? false;
  return { routers, servers, needsRestart, watchConfig };
}

/** True when applying the plan would change nothing that runs. */
export function isEmpty(p: ReloadPlan): boolean {
  return p.routers.every((r) => r.kind === 'kept') && p.servers.every((s) => s.kind === 'kept') && p.watchConfig === undefined;
}

/** The config that runs after applying `next`: the keys only a restart applies keep their running values. */
export function effectiveConfig(running: Config, next: Config): Config {
  return { ...next, workers: running.workers, bufferSizeBytes: running.bufferSizeBytes, engine: running.engine, threads: running.threads, admin: running.admin };
}

/** One line per change, for logs, POST /reload and `--check --diff`. */
export function planLines(p: ReloadPlan): string[] {
  const lines: string[] = [];
  for (const r of p.routers) {
    if (r.kind === 'added') lines.push(`router ${r.label}: added`);
    else if (r.kind === 'removed') lines.push(`router ${r.label}: removed (its open connections finish)`);
    else if (r.kind === 'changed') lines.push(`router ${r.label}: ${r.what.join(', ')} changed (new connections; open ones keep theirs)`);
  }
  for (const s of p.servers) {
    if (s.kind === 'added') lines.push(`server ${s.rt} ${s.key}: added (starts listening)`);
    else if (s.kind === 'removed') lines.push(`server ${s.rt} ${s.key}: removed (stops accepting; open connections drain for admin.graceSecs, then the rest are cut)`);
    else if (s.kind === 'changed') lines.push(`server ${s.rt} ${s.key}: ${s.what.join(', ')} changed (new connections get the new settings; open ones keep theirs and run to their end)`);
  }
  if (p.watchConfig !== undefined) lines.push(`watchConfig: ${p.watchConfig ? 'on' : 'off'}`);
  for (const k of p.needsRestart) lines.push(`${k}: changed, needs a restart (the running value stays)`);
  return lines;
}
