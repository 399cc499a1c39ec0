// Decodes namerd's Addr JSON (`/api/1/resolve`, reference §1.1) from `unknown` into a
// Resolution. Per-address weights come from `meta.endpoint_addr_weight` and are normalised
// to sum 1, as linkerd-tcp did.
import { isIP } from 'node:net';
import { badWeight, type Resolution, type WeightedAddr } from '../naming/resolution.ts';

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
      return { kind: 'failed', reason: `namerd: ${typeof o['cause'] === 'string' ? o['cause'] : 'failed'}` };
    case 'pending':
      return undefined;
    default:
      return bad(`unexpected type ${JSON.stringify(o['type'])}`);
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
