// Which Host values the admin server answers to (pure): its own IP literals, `localhost`, and
// the names in admin.allowedHosts, with its own port or none. Anything else is a page that
// reached 127.0.0.1 under another name (DNS rebinding) or a misdirected request: refused
// before any other work. An IP literal can never be a rebinding (the page's origin would be
// that address), so the strictness that matters is on names.
import { isIPv4, isIPv6 } from 'node:net';

/** A Host field value taken apart: `host` lowercased, brackets and one trailing dot removed. */
export interface HostPort {
  readonly host: string;
  readonly ip: boolean;
  /** Undefined when absent or empty (`localhost:`). */
  readonly port: number | undefined;
}

export interface HostPolicy {
  /** Canonical IP literals that are ours (the bound address, or every local one on a wildcard bind). */
  readonly ips: ReadonlySet<string>;
  /** Names (lowercase, no trailing dot) and IP literals from admin.allowedHosts, plus `localhost`. */
  readonly names: ReadonlySet<string>;
  /** allowedHosts entries with an explicit port (`localhost:8080` behind a port-forward): `host:port`. */
  readonly namesWithPort: ReadonlySet<string>;
  /** The port the admin listens on. */
  readonly port: number;
}

export type HostVerdict =
  | { readonly kind: 'ok' }
  | { readonly kind: 'bad'; readonly why: string } // 400: not a Host value HTTP allows
  | { readonly kind: 'foreign'; readonly host: string }; // 421: not a name of this server

const HOST = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{0,5}))?$/;

/** Canonical text of an IP literal: IPv6 compressed and lowercased, IPv4-mapped as IPv4, any zone id (`%lo`) dropped. */
export function canonicalIp(ip: string): string {
  if (isIPv4(ip)) return ip;
  const v6 = new URL(`http://[${ip.replace(/%.*$/, '')}]/`).hostname.slice(1, -1); // URL throws on a zone id
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!mapped) return v6;
  const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Parses `host[:port]` (RFC 9110 §7.2: uri-host [":" port]); undefined when malformed. */
export function parseHostPort(value: string): HostPort | undefined {
  const m = HOST.exec(value);
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : undefined;
  if (port !== undefined && port > 65535) return undefined;
  if (m[1] !== undefined) return isIPv6(m[1]) ? { host: canonicalIp(m[1]), ip: true, port } : undefined;
  const name = m[2]!.toLowerCase().replace(/\.$/, '');
  if (name === '' || name.startsWith('.') || name.includes('..')) return undefined;
  return isIPv4(name) ? { host: name, ip: true, port } : { host: name, ip: false, port };
}

/** The policy for an admin bound to `ips`, answering also to `allowedHosts`. */
export function hostPolicy(ips: readonly string[], allowedHosts: readonly string[], port: number): HostPolicy {
  const names = new Set(['localhost']);
  const namesWithPort = new Set<string>();
  for (const entry of allowedHosts) {
    const hp = parseHostPort(entry);
    if (!hp) continue; // the config decoder has refused it already
    if (hp.port === undefined) names.add(hp.host);
    else namesWithPort.add(`${hp.host}:${hp.port}`);
  }
  return { ips: new Set(ips.map(canonicalIp)), names, namesWithPort, port };
}

/**
 * Whether a request's Host names this server. `host` is every Host field line received
 * (Node keeps only the first in `headers.host`); `localAddress` is the connection's own
 * address, ours by definition (an interface added after start, on a wildcard bind).
 */
export function checkHost(host: readonly string[], httpVersion: string, policy: HostPolicy, localAddress?: string): HostVerdict {
  if (host.length > 1) return { kind: 'bad', why: 'more than one Host field' };
  const value = host[0];
  // HTTP/1.0 may omit Host: then no name was used, so nothing was rebound. (Node answers
  // 400 itself to an HTTP/1.1 request without one.)
  if (value === undefined) return httpVersion === '1.0' ? { kind: 'ok' } : { kind: 'bad', why: 'no Host field' };
  const hp = parseHostPort(value.trim());
  if (!hp) return { kind: 'bad', why: 'malformed Host field' };
  if (hp.port !== undefined && policy.namesWithPort.has(`${hp.host}:${hp.port}`)) return { kind: 'ok' };
  if (hp.port !== undefined && hp.port !== policy.port) return { kind: 'foreign', host: value };
  if (policy.names.has(hp.host)) return { kind: 'ok' };
  if (hp.ip && (policy.ips.has(hp.host) || (localAddress !== undefined && canonicalIp(localAddress) === hp.host))) return { kind: 'ok' };
  return { kind: 'foreign', host: value };
}

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms: reachable from this machine only. */
export function isLoopback(ip: string): boolean {
  const c = isIPv4(ip) || isIPv6(ip) ? canonicalIp(ip) : ip;
  return c === '::1' || /^127\./.test(c);
}
