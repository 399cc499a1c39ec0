/* The balancer's pick in C, for the native I/O threads to come (issue 23): the policy of
 * src/balancer/classes.ts (endpoints of equal weight form a class; a class is drawn with
 * probability ∝ weight × members, beside the share of union branches bound to nothing) and
 * src/balancer/p2c.ts (weighted least-loaded power of two choices inside the class), step for
 * step in the same double arithmetic and the same order of additions, so that one seeded
 * vector table (test/fixtures/pick-vectors.json) holds both executions to the same choices.
 * Built with -ffp-contract=off (binding.gyp, Makefile): a fused multiply-add would round
 * differently from JavaScript's two operations and could flip a near-tie.
 * Pure: no state but the caller's random source; nothing allocated (the caller lends scratch). */
#include "pick.h"
#include <math.h>

/* Weights closer than this (relative) are one class, as classes.ts's SAME. */
#define SAME 1e-9

double pick_random(pick_rng_t *r) {
  /* mulberry32, as test/support/random.ts (and the same 32-bit wrap-around as Math.imul). */
  r->a += 0x6d2b79f5u;
  uint32_t t = r->a;
  t = (t ^ (t >> 15)) * (t | 1u);
  t ^= t + (t ^ (t >> 7)) * (t | 61u);
  return (double)(t ^ (t >> 14)) / 4294967296.0;
}

/* Weighted draw over members with a positive weight, skipping `skip` (p2c.ts draw). */
static size_t draw(const pick_ep_t *eps, const size_t *m, size_t nm, double total, size_t skip, pick_rng_t *rng) {
  double r = pick_random(rng) * total;
  size_t last = SIZE_MAX;
  for (size_t i = 0; i < nm; i++) {
    double w = eps[m[i]].weight;
    if (i == skip || !(w > 0)) continue;
    last = i;
    if (r < w) return i;
    r -= w;
  }
  return last; /* floating-point remainder: the last eligible one */
}

/* p2c.ts pickP2C over the class's members `m` (indices into eps): a position in m, or SIZE_MAX. */
static size_t p2c(const pick_ep_t *eps, const size_t *m, size_t nm, pick_rng_t *rng) {
  double total = 0;
  size_t eligible = 0;
  for (size_t i = 0; i < nm; i++) {
    double w = eps[m[i]].weight;
    if (w > 0) {
      total += w;
      eligible++;
    }
  }
  if (eligible == 0) return SIZE_MAX;
  size_t first = draw(eps, m, nm, total, SIZE_MAX, rng);
  if (eligible == 1) return first;
  size_t second = draw(eps, m, nm, total - eps[m[first]].weight, first, rng);
  const pick_ep_t *a = &eps[m[first]], *b = &eps[m[second]];
  /* a.load / a.weight against b.load / b.weight without dividing; ties keep the first. */
  return b->load * a->weight < a->load * b->weight ? second : first;
}

int pick(const pick_ep_t *eps, size_t n, long exclude, double empty, pick_rng_t *rng, pick_scratch_t *s) {
  /* Classes in order of first appearance (classes.ts weightClasses): s->cls[k] is the weight
   * of class k, s->of[i] the class of endpoint i (or SIZE_MAX: weight 0, or excluded). */
  size_t ncls = 0;
  for (size_t i = 0; i < n; i++) {
    double w = eps[i].weight;
    s->of[i] = SIZE_MAX;
    if ((long)i == exclude || !(w > 0)) continue;
    size_t k = 0;
    while (k < ncls && !(fabs(s->cls[k] - w) <= SAME * (s->cls[k] > w ? s->cls[k] : w))) k++;
    if (k == ncls) {
      s->cls[ncls] = w;
      s->count[ncls] = 0;
      ncls++;
    }
    s->count[k]++;
    s->of[i] = k;
  }
  /* classes.ts pickClass: a class drawn ∝ weight × members, the empty share drawn last. */
  int with_empty = empty > 0;
  size_t c;
  if (ncls == 0) return -1;
  if (ncls == 1 && !with_empty) {
    c = 0;
  } else {
    double sum = with_empty ? empty : 0;
    for (size_t k = 0; k < ncls; k++) sum += s->cls[k] * (double)s->count[k];
    double r = pick_random(rng) * sum;
    c = SIZE_MAX;
    for (size_t k = 0; k < ncls; k++) {
      double t = s->cls[k] * (double)s->count[k];
      if (r < t) {
        c = k;
        break;
      }
      r -= t;
    }
    if (c == SIZE_MAX) {
      if (with_empty) return -1;
      c = ncls - 1;
    }
  }
  size_t nm = 0;
  for (size_t i = 0; i < n; i++) if (s->of[i] == c) s->members[nm++] = i;
  size_t at = p2c(eps, s->members, nm, rng);
  return at == SIZE_MAX ? -1 : (int)s->members[at];
}
