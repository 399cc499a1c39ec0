// The built-in `/$/…` namer: `/$/inet/<host>/<port>[/residual…]` (and `/$/inet/<port>` for
// loopback), and linkerd's `/$/io.buoyant.rinet/<port>/<host>` (the same, reversed). IP
// literals bind at once, including inet_aton short forms such as `127.1`; host names are
// looked up through the system resolver and re-resolved every 5 s, as linkerd does. Any other
// `/$/<class>` fails with its name, as linkerd's class loading does (`/$/fail`, `/$/nil` are bind's).
import { isIPv6 } from 'node:net';
import type { Activity, BoundName } from '../../naming/bind.ts';
import type { NameTree } from '../../naming/name-tree.ts';
import { type Path, showPath } from '../../naming/path.ts';
import type { WeightedAddr } from '../../naming/resolution.ts';
import { HostLookups } from './host-lookups.ts';
import type { Namer, NamerContext } from './namer.ts';

/** The `/$/<class>` names this namer knows (besides `fail` and `nil`, which binding handles). */
export const GLOBAL_CLASSES = ['inet', 'io.buoyant.rinet'] as const;

/** Parses an IPv4 address the way inet_aton does (`127.1`, `10.1.2`, `0x7f.1`); null if not one. */
export function parseInetAton(s: string): string | null {
  const parts = s.split('.');
  if (parts.length < 1 || parts.length > 4) return null;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0x[0-9a-f]+$/i.test(p)) n = parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) n = parseInt(p, 8);
    else if (/^[1-9][0-9]*$/.test(p)) n = parseInt(p, 10);
    else return null;
    nums.push(n);
  }
  const last = nums.pop()!;
  if (nums.some((n) => n > 255)) return null;
  const lastMax = 2 ** (8 * (4 - nums.length)) - 1;
  if (last > lastMax) return null;
  let v = 0;
  for (const n of nums) v = v * 256 + n;
  v = v * (lastMax + 1) + last;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

export class InetNamer implements Namer {
  private readonly hosts: HostLookups;

  constructor(opts: NamerContext & { refreshMs?: number }) {
    this.hosts = new HostLookups({ refreshMs: opts.refreshMs ?? 5000, log: opts.log, label: 'inet', onChange: opts.onChange });
  }

  /** Binds a path that starts with `$` (null for other paths); an unknown `/$/<class>` is failed. */
  lookup(path: Path): Activity<NameTree<BoundName>> | null {
    if (path[0] !== '$') return null;
    const cls = path[1];
    const rest = path.slice(2);
    if (cls === 'inet') {
      // `/$/inet/<port>` (loopback) or `/$/inet/<host>/<port>`.
      const portFirst = rest.length >= 1 && /^\d+$/.test(rest[0]!) && !(rest.length >= 2 && /^\d+$/.test(rest[1]!));
      if (portFirst) return this.bindHostPort('127.0.0.1', rest[0]!, path.slice(0, 3), path.slice(3), path);
      return this.bindHostPort(rest[0], rest[1], path.slice(0, 4), path.slice(4), path);
    }
    if (cls === 'io.buoyant.rinet') {
      // linkerd's RinetNamer rewrites to /$/inet/<host>/<port>, so that is the bound id.
      const [port, host] = rest;
      const id = host === undefined || port === undefined ? path : ['$', 'inet', host, port];
      return this.bindHostPort(host, port, id, path.slice(4), path);
    }
    const known = GLOBAL_CLASSES.map((c) => `/$/${c}`).join(', ');
    return { kind: 'failed', reason: `unknown namer /$/${cls ?? ''} in ${showPath(path)} (known: ${known}, /$/fail, /$/nil)` };
  }

  private bindHostPort(host: string | undefined, portStr: string | undefined, idPath: Path, residual: Path, path: Path): Activity<NameTree<BoundName>> {
    const port = portStr !== undefined && /^\d+$/.test(portStr) ? Number(portStr) : NaN;
    if (host === undefined || !(port >= 1 && port <= 65535)) {
      const form = path[1] === 'inet' ? '/$/inet/<host>/<port>' : '/$/io.buoyant.rinet/<port>/<host>';
      return { kind: 'failed', reason: `${form} expected (port 1-65535), got ${showPath(path)}` };
    }
    const ips = this.resolveHost(host);
    if (ips.kind !== 'ok') return ips;
    const endpoints: WeightedAddr[] = ips.value.map((ip: string) => ({ host: ip, port, weight: 1 }));
    return { kind: 'ok', value: { kind: 'leaf', value: { id: showPath(idPath), residual, addr: { kind: 'bound', endpoints } } } };
  }

  close(): void {
    this.hosts.close();
  }

  private resolveHost(host: string): Activity<readonly string[]> {
    const v4 = parseInetAton(host);
    if (v4) return { kind: 'ok', value: [v4] };
    if (isIPv6(host)) return { kind: 'ok', value: [host] };
    return this.hosts.get(host);
  }
}
