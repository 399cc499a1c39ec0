/* The outcome batch and the engine's loop hooks: records (native/engine.h) go into one
 * array (napi.c: a Float64Array JavaScript shares) and are delivered (e->deliver) once per
 * loop turn (check phase; an idle handle keeps the poll phase from blocking while records
 * wait); records made while the control plane reads the batch wait in `pending`. The epoll set of every connection socket is
 * read here, from one uv_poll_t. Invariant: JavaScript is only ever called from these loop
 * callbacks, never from inside a call JavaScript made into the engine (napi.c).
 * Ownership: `pending` is the engine's (grown here, freed at finalize); the shared array
 * belongs to JavaScript (kept alive by records_ref). */
#include "engine.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static void flush(engine_t *e);
static void on_check(uv_check_t *h) { flush(h->data); }
static void on_idle(uv_idle_t *h) { flush(h->data); }

void engine_fd_pressure(engine_t *e, int err) {
  if (err == EMFILE || err == ENFILE) e->fd_pressure_until = uv_now(e->loop) + 1000;
}

/* The idle handle keeps the poll phase from blocking while records wait. */
void engine_arm_idle(engine_t *e) {
  if (uv_idle_start(&e->flush_idle, on_idle) != 0) fprintf(stderr, "linkerd-tcp engine: cannot arm the idle handle\n");
}

static void arm_flush(engine_t *e) {
  if (e->flush_armed) return;
  e->flush_armed = 1;
  if (uv_check_start(&e->flush_check, on_check) != 0) fprintf(stderr, "linkerd-tcp engine: cannot arm the outcome flush\n");
  engine_arm_idle(e);
}

/* Reads the engine's epoll set and hands each event to its connection. */
void engine_on_epoll(uv_poll_t *h, int status, int events) {
  engine_t *e = h->data;
  (void)status;
  (void)events;
  struct epoll_event evs[256];
  for (int round = 0; round < 8; round++) {
    int n = epoll_wait(e->epfd, evs, 256, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "linkerd-tcp engine: epoll_wait: %s\n", strerror(errno));
      return;
    }
    for (int i = 0; i < n; i++) conn_on_event(e, evs[i].data.u64, evs[i].events);
    if (n < 256) return;
  }
}

/* Live connections keep the loop alive, as Node's sockets do; an idle engine does not. */
void engine_live_changed(engine_t *e) {
  if (e->live > 0 && !e->ep_ref) {
    uv_ref((uv_handle_t *)&e->ep_poll);
    e->ep_ref = 1;
  } else if (e->live == 0 && e->ep_ref) {
    uv_unref((uv_handle_t *)&e->ep_poll);
    e->ep_ref = 0;
  }
}

void out_record(engine_t *e, int kind, double id, double a, double b, double c, double d) {
  double *r;
  if (!e->flushing && e->npending == 0 && e->nrec < BATCH_RECORDS) {
    r = e->records + REC_DOUBLES * e->nrec++;
  } else {
    if (e->npending == e->cap_pending) {
      size_t cap = e->cap_pending ? e->cap_pending * 2 : 256;
      double *p = realloc(e->pending, cap * REC_DOUBLES * sizeof(double));
      if (!p) {
        fprintf(stderr, "linkerd-tcp engine: out of memory for outcome records\n");
        abort();
      }
      e->pending = p;
      e->cap_pending = cap;
    }
    r = e->pending + REC_DOUBLES * e->npending++;
  }
  r[0] = kind; r[1] = id; r[2] = a; r[3] = b; r[4] = c; r[5] = d;
  r[6] = (double)uv_hrtime() / 1e6;
  r[7] = 0;
  arm_flush(e);
}

static void flush(engine_t *e) {
  if (e->flushing) return;
  e->flushing = 1;
  while (e->nrec > 0) {
    if (e->deliver(e, e->nrec) != 0) break; /* the records stay; flush_armed stays set, so the check handle retries next turn */
    e->nrec = 0;
    size_t move = e->npending < BATCH_RECORDS ? e->npending : BATCH_RECORDS;
    if (move > 0) {
      memcpy(e->records, e->pending, move * REC_DOUBLES * sizeof(double));
      memmove(e->pending, e->pending + move * REC_DOUBLES, (e->npending - move) * REC_DOUBLES * sizeof(double));
      e->npending -= move;
      e->nrec = move;
    }
  }
  e->flushing = 0;
  if (e->nrec > 0) return; /* not delivered: stay armed, the next loop turn tries again */
  e->flush_armed = 0;
  if (uv_check_stop(&e->flush_check) != 0 || uv_idle_stop(&e->flush_idle) != 0) return;
}
