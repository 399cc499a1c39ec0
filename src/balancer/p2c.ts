// Weighted least-loaded power-of-two-choices, pure: draws two distinct endpoints with
// probability proportional to weight and keeps the one with the lower load/weight.
//
// linkerd-tcp: scored `(load + 1) * (1 - weight)` over uniformly drawn candidates, which
// sends every sequential connection to the heaviest endpoint (weights never show up as
// traffic shares). Here weights decide who is drawn and scale the load comparison, so at
// equal load traffic splits in proportion to weight; weight 0 is never drawn.

export interface Candidate {
  readonly weight: number;
  /** Open plus pending connections. */
  readonly load: number;
}

/**
 * Index of the chosen candidate in `cs`, or -1 when none has a positive weight.
 * `random()` returns [0, 1) and is called at most twice.
 */
export function pickP2C(cs: readonly Candidate[], random: () => number): number {
  let total = 0;
  let eligible = 0;
  for (let i = 0; i < cs.length; i++) {
    const w = cs[i]!.weight;
    if (w > 0) {
      total += w;
      eligible++;
    }
  }
  if (eligible === 0) return -1;
  const first = draw(cs, total, -1, random);
  if (eligible === 1) return first;
  const second = draw(cs, total - cs[first]!.weight, first, random);
  const a = cs[first]!;
  const b = cs[second]!;
  // Compare a.load/a.weight with b.load/b.weight without dividing; ties keep the first.
  return b.load * a.weight < a.load * b.weight ? second : first;
}

/** Weighted draw over positive-weight candidates, skipping index `skip`. */
function draw(cs: readonly Candidate[], total: number, skip: number, random: () => number): number {
  let r = random() * total;
  let last = -1;
  for (let i = 0; i < cs.length; i++) {
    const w = cs[i]!.weight;
    if (i === skip || w <= 0) continue;
    last = i;
    if (r < w) return i;
    r -= w;
  }
  return last; // floating-point remainder: the last eligible one
}
