/* Gives the malloc heap that TLS handshakes churn back to the kernel once they quiet down.
 * A handshake allocates ~40 KiB of temporaries (OpenSSL's record buffers, its handshake
 * buffer, key shares) around the ~22 KiB an idle TLS connection keeps; handshakes that overlap
 * interleave the two, and the holes the temporaries leave stay resident: 2.7 KiB per idle
 * connection after 2,000 handshakes 200 at a time (BENCHMARKS.md). glibc returns whole free
 * pages inside the heap only on malloc_trim() (HAProxy calls it from its pool collector too).
 * Policy: after TRIM_MIN_HANDSHAKES handshakes (client or backend) since the last trim, trim
 * once TRIM_QUIET_MS pass without a new one; under handshakes that never stop, TRIM_MAX_DEFER_MS
 * after the threshold was reached. malloc_trim works on every arena of the process: engines on
 * several threads (io-thread.c) will want one rate limit per process. The pages come back on their next use (a page fault each). A trim
 * of a 50 MiB heap (2,000 idle TLS connections) takes 1.1-1.3 ms of the loop.
 * Owns: e->trim_timer (unreferenced: never keeps the loop alive), closed at cleanup. */
#include "engine.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define TRIM_MIN_HANDSHAKES 64
#define TRIM_QUIET_MS 250
#define TRIM_MAX_DEFER_MS 10000

int heap_init(engine_t *e) {
  if (uv_timer_init(e->loop, &e->trim_timer) != 0) return -1;
  e->trim_timer.data = e;
  uv_unref((uv_handle_t *)&e->trim_timer);
  return 0;
}

void heap_destroy(engine_t *e) {
  uv_close((uv_handle_t *)&e->trim_timer, NULL);
}

static void trim(engine_t *e) {
  e->hs_since_trim = 0;
  e->trims++;
#ifdef __GLIBC__
  (void)malloc_trim(0); /* 1 if memory was released, 0 if none: either is fine */
#endif
}

static void on_trim_timer(uv_timer_t *t) {
  engine_t *e = t->data;
  uint64_t now = uv_now(e->loop);
  uint64_t quiet_at = e->last_handshake + TRIM_QUIET_MS, latest = e->trim_pending_since + TRIM_MAX_DEFER_MS;
  if (now < quiet_at && now < latest) {
    uint64_t at = quiet_at < latest ? quiet_at : latest;
    if (uv_timer_start(&e->trim_timer, on_trim_timer, at - now, 0) == 0) return;
  }
  trim(e);
}

void heap_handshake(engine_t *e) {
  uint64_t now = uv_now(e->loop);
  e->last_handshake = now;
  if (++e->hs_since_trim != TRIM_MIN_HANDSHAKES) return;
  e->trim_pending_since = now;
  /* uv_timer_start fails only on a closing handle (cleanup): then nothing is left to trim for. */
  if (uv_timer_start(&e->trim_timer, on_trim_timer, TRIM_QUIET_MS, 0) != 0) e->hs_since_trim = 0;
}
