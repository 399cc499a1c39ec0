/* The balancer's pick (pick.c): the types its callers share. */
#ifndef LINKERD_TCP_PICK_H
#define LINKERD_TCP_PICK_H
#include <stddef.h>
#include <stdint.h>

/* mulberry32's state: the same sequence as test/support/random.ts seeded(a). */
typedef struct pick_rng { uint32_t a; } pick_rng_t;
/* An available endpoint as a pick sees it: its weight (0: never drawn) and load (open + pending). */
typedef struct pick_ep { double weight; double load; } pick_ep_t;
/* Room for a pick over n endpoints, lent by the caller: each array holds n. */
typedef struct pick_scratch { double *cls; size_t *count, *of, *members; } pick_scratch_t;

double pick_random(pick_rng_t *r); /* [0, 1) */
/* The index in eps of the endpoint chosen; -1 when none has a positive weight (after leaving
 * out `exclude`, an index or -1) or the draw landed on the `empty` share (0: none). */
int pick(const pick_ep_t *eps, size_t n, long exclude, double empty, pick_rng_t *rng, pick_scratch_t *s);
#endif
