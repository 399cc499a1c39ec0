/* A bounded single-producer single-consumer ring of outcome records (REC_DOUBLES doubles
 * each): an I/O thread pushes, the main thread pops. Lock-free: `head` is written only by the
 * consumer and `tail` only by the producer, each with release order, and read by the other
 * side with acquire order, so a record's doubles are visible before its slot is. A full ring
 * refuses the push; the producer keeps the record (io-thread.c) and stops accepting.
 * Ownership: `slots` belongs to the ring (ring_init / ring_free), freed once both sides stopped.
 * recs_append grows a plain array of records (a thread's overflow, the main thread's drained
 * records): the array belongs to whoever holds the pointer. */
#ifndef LINKERD_TCP_RING_H
#define LINKERD_TCP_RING_H
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_REC 8 /* doubles per record: REC_DOUBLES (engine.h) */

typedef struct ring {
  _Atomic size_t head; /* next record to pop (the consumer's) */
  _Atomic size_t tail; /* next slot to fill (the producer's) */
  size_t mask;         /* capacity - 1, the capacity a power of two */
  double *slots;
} ring_t;

/* 0, or -1 when out of memory; `cap` is rounded up to a power of two. */
static inline int ring_init(ring_t *r, size_t cap) {
  size_t c = 1;
  while (c < cap) c <<= 1;
  r->slots = malloc(c * RING_REC * sizeof(double));
  if (!r->slots) return -1;
  r->mask = c - 1;
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  return 0;
}

/* Appends one record to a growable array of records (`*n` used of `*cap`, doubled from
 * `first` when full). Out of memory aborts: a record lost would be a connection never
 * accounted for (as batch.c). The array is its caller's to free. */
static inline void recs_append(double **recs, size_t *n, size_t *cap, size_t first, const double *rec) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : first;
    double *g = (double *)realloc(*recs, c * RING_REC * sizeof(double));
    if (!g) {
      fputs("linkerd-tcp engine: out of memory for outcome records\n", stderr);
      abort();
    }
    *recs = g;
    *cap = c;
  }
  memcpy(*recs + (*n)++ * RING_REC, rec, RING_REC * sizeof(double));
}

static inline void ring_free(ring_t *r) {
  free(r->slots);
  r->slots = NULL;
}

/* Producer: 0, or -1 when full (nothing written). */
static inline int ring_push(ring_t *r, const double *rec) {
  size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (t - atomic_load_explicit(&r->head, memory_order_acquire) > r->mask) return -1;
  memcpy(r->slots + (t & r->mask) * RING_REC, rec, RING_REC * sizeof(double));
  atomic_store_explicit(&r->tail, t + 1, memory_order_release);
  return 0;
}

/* Consumer: 1 with the oldest record copied into rec, 0 when empty. */
static inline int ring_pop(ring_t *r, double *rec) {
  size_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  if (h == atomic_load_explicit(&r->tail, memory_order_acquire)) return 0;
  memcpy(rec, r->slots + (h & r->mask) * RING_REC, RING_REC * sizeof(double));
  atomic_store_explicit(&r->head, h + 1, memory_order_release);
  return 1;
}
#endif
