// The one type interpreters and routers share: what a destination name currently resolves to.
// Interpreters produce it (namerd, dtab + namers); balancers consume it. Neither side knows the other.

/** One backend address with its relative weight (weights are normalised by the consumer). */
export interface WeightedAddr {
  readonly host: string; // an IP literal (v4 or v6)
  readonly port: number;
  readonly weight: number; // >= 0; 0 means "receives no traffic"
}

export type Resolution =
  /**
   * The name exists; these are its endpoints (possibly none). `emptyWeight` (absent: 0), in
   * the endpoints' weight units, is the share of weighted-union branches bound to no
   * endpoints: Finagle keeps such a branch in the union (NameTreeFactory), so the
   * connections drawn there fail, and it does not hand its share to the other branches.
   */
  | { readonly kind: 'bound'; readonly endpoints: readonly WeightedAddr[]; readonly emptyWeight?: number }
  /** The name does not exist: no endpoints. */
  | { readonly kind: 'neg' }
  /** Resolution failed (namerd down, bad answer...): consumers keep the last good set. */
  | { readonly kind: 'failed'; readonly reason: string };

/**
 * The largest weight any source may give (a dtab's `N *`, an fs file's `* N`, namerd's
 * `endpoint_addr_weight`, an SRV weight). Bounded so that sums stay finite: two weights of
 * 1e308 would sum to Infinity and normalise every share to 0. Sources reject a larger or
 * non-finite weight as a bad answer (the last good set stays).
 */
export const MAX_WEIGHT = 1_000_000;

/** Why `w` is not a usable weight (a finite number in [0, MAX_WEIGHT]), or undefined when it is. */
export function badWeight(w: unknown): string | undefined {
  if (typeof w !== 'number' || Number.isNaN(w)) return 'is not a number';
  if (w < 0) return 'is negative';
  if (!(w <= MAX_WEIGHT)) return `is over the limit of ${MAX_WEIGHT}`;
  return undefined;
}

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
      if (a.endpoints.length !== be.length || (a.emptyWeight ?? 0) !== ((b as typeof a).emptyWeight ?? 0)) return false;
      for (let i = 0; i < be.length; i++) {
        const x = a.endpoints[i]!;
        const y = be[i]!;
        if (x.host !== y.host || x.port !== y.port || x.weight !== y.weight) return false;
      }
      return true;
    }
  }
}
