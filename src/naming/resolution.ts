// The one type interpreters and routers share: what a destination name currently resolves to.
// Interpreters produce it (namerd, dtab + namers); balancers consume it. Neither side knows the other.

/** One backend address with its relative weight (weights are normalised by the consumer). */
export interface WeightedAddr {
  readonly host: string; // an IP literal (v4 or v6)
  readonly port: number;
  readonly weight: number; // >= 0; 0 means "receives no traffic"
}

export type Resolution =
  /** The name exists; these are its endpoints (possibly none). */
  | { readonly kind: 'bound'; readonly endpoints: readonly WeightedAddr[] }
  /** The name does not exist: no endpoints. */
  | { readonly kind: 'neg' }
  /** Resolution failed (namerd down, bad answer...): consumers keep the last good set. */
  | { readonly kind: 'failed'; readonly reason: string };

/** A stable key for an address: `1.2.3.4:80` or `[::1]:80`. */
export function addrKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** True when two resolutions describe the same thing (used to suppress duplicate updates). */
export function sameResolution(a: Resolution, b: Resolution): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'neg':
      return true;
    case 'failed':
      return a.reason === (b as typeof a).reason;
    case 'bound': {
      const be = (b as typeof a).endpoints;
      if (a.endpoints.length !== be.length) return false;
      for (let i = 0; i < be.length; i++) {
        const x = a.endpoints[i]!;
        const y = be[i]!;
        if (x.host !== y.host || x.port !== y.port || x.weight !== y.weight) return false;
      }
      return true;
    }
  }
}
