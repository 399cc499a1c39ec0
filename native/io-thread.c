/* Native I/O threads: each owns an engine on its own libuv loop and a listener of its own
 * (SO_REUSEPORT), and runs its connections end to end: accept, the pick (pick.c over the
 * published snapshot and the loads every thread shares), connect, another endpoint after a
 * failed attempt, forward, close. napi-io.c runs them for `threads: true`; test/native/harness.c
 * drives them without Node (under TSan and ASan/UBSan).
 * - Main → threads: an immutable snapshot per destination, published by pointer swap; a
 *   thread reads it only inside a batch (`active` set before the load, cleared after, then
 *   `epoch` bumped), so the main thread frees a retired snapshot once every thread was outside
 *   a batch when it was retired, or has finished a batch since (epoch-based reclamation).
 * - Threads → main: outcome records through a bounded single-producer ring each (ring.h),
 *   the thread's index in r[7]. Nothing is dropped: what the ring has no room for waits in the
 *   thread's overflow, in order, and the thread stops accepting until the main thread drained.
 * - Loads are atomics by endpoint id, shared: a pick sees every thread's connections.
 * - Before the first snapshot, accepted connections wait (`parked`, watched for the client
 *   leaving, bounded by the server's deadline and by max_waiters for the whole process, an
 *   atomic count); a publish wakes every thread, which dials them.
 * - Stop: the main thread sets `stopping` and wakes the thread; it accepts what is queued,
 *   closes its listener (io_stop waits for that, at most 2 s), unrefs its wake handle, and its
 *   loop ends once its connections have; io_cut closes them (ESHUTDOWN), and new ones at once.
 * Ownership: each thread's loop, engine, listener and overflow are its own until io_join,
 * which frees them; the ring is written by the thread and read by the main thread only. */
#include "io-thread.h"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define NO_EP UINT32_MAX

static io_thread_t *thread_of(engine_t *e) {
  return (io_thread_t *)((char *)e - offsetof(io_thread_t, e));
}

/* ---- records to the main thread ---- */

static void overflow_push(io_thread_t *t, const double *rec) {
  recs_append(&t->overflow, &t->noverflow, &t->cap_overflow, 256, rec);
}

/* Records are in the ring: the main thread is woken, unless it is polling the rings on a
 * timer (busy: it reads them within a tick) and `now` is 0 (a failed connect wakes it now).
 * The fence pairs with the main thread's when it stops polling (napi-io.c): either this load
 * sees polling off and wakes it, or its last drain after turning polling off sees the
 * records pushed before. */
static void wake_main(io_thread_t *t, int now) {
  atomic_thread_fence(memory_order_seq_cst);
  if ((now || !atomic_load(&t->p->main_polling)) && uv_async_send(t->p->main_wake) != 0) fprintf(stderr, "linkerd-tcp engine: cannot wake the main thread\n");
}

/* Moves what the overflow holds into the ring, oldest first; accepting resumes once empty. */
static void overflow_flush(io_thread_t *t) {
  size_t k = 0;
  while (k < t->noverflow && ring_push(&t->out, t->overflow + k * RING_REC) == 0) k++;
  memmove(t->overflow, t->overflow + k * RING_REC, (t->noverflow - k) * RING_REC * sizeof(double));
  t->noverflow -= k;
  if (k > 0) wake_main(t, 0);
  if (t->noverflow == 0) {
    atomic_store(&t->wants_room, 0);
    if (t->l && listener_hold(t->l, 0) != 0) fprintf(stderr, "linkerd-tcp engine: cannot resume accepting\n");
  }
}

static void emit(io_thread_t *t, const double *r) {
  double rec[RING_REC];
  memcpy(rec, r, sizeof(rec));
  rec[7] = (double)t->index;
  if (t->noverflow == 0 && ring_push(&t->out, rec) == 0) return;
  overflow_push(t, rec);
  if (!atomic_load(&t->wants_room)) {
    atomic_store(&t->wants_room, 1);
    atomic_fetch_add(&t->holds, 1);
    if (t->l && listener_hold(t->l, 1) != 0) fprintf(stderr, "linkerd-tcp engine: cannot pause accepting\n");
  }
}

/* ---- the control plane of a thread ---- */

static int slots_fit(io_thread_t *t) {
  size_t need = t->e.nconns_cap;
  if (need <= t->nslots) return 0;
  uint32_t *ep = realloc(t->ep_of, need * sizeof(*ep));
  if (!ep) return -1;
  t->ep_of = ep;
  uint8_t *tr = realloc(t->tries, need);
  if (!tr) return -1;
  t->tries = tr;
  uint8_t *w = realloc(t->waits, need);
  if (!w) return -1;
  t->waits = w;
  for (size_t i = t->nslots; i < need; i++) {
    t->ep_of[i] = NO_EP;
    t->tries[i] = 0;
    t->waits[i] = 0;
  }
  t->nslots = need;
  return 0;
}

/* A pick over the snapshot (leaving out endpoint id `exclude`) and a connect to it; 0, or an
 * errno when nothing could be dialled (the caller closes the conn). */
static int dial(io_thread_t *t, conn_t *c, const io_dest_t *d, uint32_t exclude) {
  if (!d || d->n == 0) return EHOSTUNREACH;
  pick_ep_t eps[IO_MAX_ENDPOINTS];
  double cls[IO_MAX_ENDPOINTS];
  size_t ix[3 * IO_MAX_ENDPOINTS];
  size_t at[IO_MAX_ENDPOINTS]; /* eps[k] is d->eps[at[k]] */
  pick_scratch_t s = {cls, ix, ix + IO_MAX_ENDPOINTS, ix + 2 * IO_MAX_ENDPOINTS};
  size_t n = d->n < IO_MAX_ENDPOINTS ? d->n : IO_MAX_ENDPOINTS;
  /* Fail-fast at once: an endpoint whose last max_failures connects failed (in any thread) is
   * left out until one succeeds or the main thread's snapshot says it is back; if that leaves
   * none, all are used, as the balancer revives all. */
  for (int all = 0; all < 2; all++) {
    size_t m = 0;
    long skip = -1;
    for (size_t i = 0; i < n; i++) {
      uint32_t id = d->eps[i].id;
      if (!all && d->max_failures > 0 && atomic_load_explicit(&t->p->fails[id], memory_order_relaxed) >= d->max_failures) continue;
      eps[m] = (pick_ep_t){d->eps[i].weight, (double)atomic_load_explicit(&t->p->loads[id], memory_order_relaxed)};
      if (id == exclude) skip = (long)m;
      at[m++] = i;
    }
    if (m == 0 || (m == 1 && skip == 0)) continue; /* nothing (else) left but suspects: all of them */
    /* Only a first attempt may be drawn onto an empty union branch (as Balancer.choose). */
    int k = pick(eps, m, skip, exclude == NO_EP ? d->empty : 0, &t->rng, &s);
    if (k < 0) return EHOSTUNREACH;
    const io_ep_t *ep = &d->eps[at[k]];
    int err = conn_connect(c, ep->host, ep->port, d->connect_timeout_ms, NULL, 0, NULL);
    if (err != 0) return err;
    t->ep_of[c->slot] = ep->id;
    t->tries[c->slot]++;
    atomic_fetch_add_explicit(&t->p->loads[ep->id], 1, memory_order_relaxed);
    return 0;
  }
  return EHOSTUNREACH;
}

/* The endpoint id a conn slot holds a load on, or NO_EP. */
static uint32_t ep_at(const io_thread_t *t, size_t slot) {
  return slot < t->nslots ? t->ep_of[slot] : NO_EP;
}

static void unload(io_thread_t *t, size_t slot) {
  uint32_t ep = ep_at(t, slot);
  if (ep == NO_EP) return;
  atomic_fetch_sub_explicit(&t->p->loads[ep], 1, memory_order_relaxed);
  t->ep_of[slot] = NO_EP;
}

/* A new conn becomes a waiter: for a first snapshot, then while it connects (as the node
 * engine's maxWaiters counts its queue and its clients' connects in flight), until
 * OUT_CONNECTED or its close. -1: max_waiters were waiting (for the whole process). */
static int wait_begin(io_thread_t *t, conn_t *c, const io_dest_t *d) {
  io_proxy_t *p = t->p;
  long max = d ? d->max_waiters : p->max_waiters; /* the destination's, once it has a snapshot; < 0: no limit */
  if (atomic_fetch_add(&p->waiting, 1) >= max && max >= 0) {
    atomic_fetch_sub(&p->waiting, 1);
    atomic_fetch_add(&p->rejected, 1);
    return -1;
  }
  t->waits[c->slot] = 1;
  return 0;
}

static void wait_end(io_thread_t *t, size_t slot) {
  if (slot >= t->nslots || !t->waits[slot]) return;
  t->waits[slot] = 0;
  atomic_fetch_sub(&t->p->waiting, 1);
}

static void park(io_thread_t *t, conn_t *c) {
  if (t->nparked == t->cap_parked) { /* first drop the ids of conns no longer parked (closed meanwhile) */
    size_t k = 0;
    for (size_t i = 0; i < t->nparked; i++) {
      conn_t *p = conn_find(&t->e, t->parked[i]);
      if (p && p->slot < t->nslots && t->tries[p->slot] == IO_WAITING) t->parked[k++] = t->parked[i];
    }
    t->nparked = k;
  }
  if (t->nparked == t->cap_parked) {
    size_t cap = t->cap_parked ? t->cap_parked * 2 : 64;
    double *ids = realloc(t->parked, cap * sizeof(*ids));
    if (!ids) {
      conn_close(c, R_LOCAL, ENOMEM, 1);
      return;
    }
    t->parked = ids;
    t->cap_parked = cap;
  }
  t->parked[t->nparked++] = c->id;
  t->tries[c->slot] = IO_WAITING;
  if (conn_watch_leave(c) != 0) errno = 0; /* without the watch, the deadline still ends it */
}

/* A parked conn is dialled, or closed. */
static void unpark(io_thread_t *t, size_t slot) {
  if (slot >= t->nslots || t->tries[slot] != IO_WAITING) return;
  t->tries[slot] = 0;
}

/* The client's address into an OUT_ACCEPTED record (io-thread.h says how); left 0 when it
 * cannot be read (the client already left: its close record follows). */
static void peer_into(const conn_t *c, double *r) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  r[2] = r[3] = r[4] = r[5] = 0;
  if (getpeername(c->cfd, (struct sockaddr *)&ss, &len) != 0) {
    errno = 0;
    return;
  }
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    r[2] = 4 * 65536 + ntohs(a->sin_port);
    r[3] = (double)ntohl(a->sin_addr.s_addr);
  } else if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    const uint8_t *b = a->sin6_addr.s6_addr;
    r[2] = 6 * 65536 + ntohs(a->sin6_port);
    for (int k = 0; k < 3; k++) {
      uint64_t v = 0;
      for (int j = 0; j < 6 && k * 6 + j < 16; j++) v = v << 8 | b[k * 6 + j];
      r[3 + k] = (double)v;
    }
  }
}

static int deliver(engine_t *e, size_t n) {
  io_thread_t *t = thread_of(e);
  atomic_store(&t->active, 1); /* before the snapshot is read (seq_cst): see io_reclaim */
  io_dest_t *d = atomic_load(&t->p->dest);
  if (slots_fit(t) != 0) {
    atomic_store(&t->active, 0);
    return -1; /* the records stay: the next loop turn tries again */
  }
  int failed_any = 0;
  for (size_t i = 0; i < n; i++) {
    double r[REC_DOUBLES];
    memcpy(r, e->records + REC_DOUBLES * i, sizeof(r));
    int kind = (int)r[0];
    conn_t *c = conn_find(e, r[1]);
    size_t slot = (size_t)((uint64_t)r[1] & 0x3fffff);
    switch (kind) {
      case OUT_ACCEPTED: {
        /* Every accepted conn counts until its OUT_CLOSED, except one refused here: decided on
         * the value the add returned (two threads adding at once cannot both see the other's
         * add and both refuse), and taken back at once (no over-refusal while its close waits). */
        long open = atomic_fetch_add(&t->p->conns, 1);
        if (c) {
          if (t->p->want_peer) peer_into(c, r);
          t->tries[c->slot] = 0;
          t->waits[c->slot] = 0;
          if (atomic_load(&t->cutting)) {
            emit(t, r);
            conn_close(c, R_LOCAL, ESHUTDOWN, 1);
            continue;
          }
          if (t->p->max_conns > 0 && open >= t->p->max_conns) {
            atomic_fetch_sub(&t->p->conns, 1);
            t->tries[c->slot] = IO_REFUSED; /* its OUT_CLOSED takes nothing back */
            emit(t, r); /* its OUT_ACCEPTED first, then the close */
            conn_close(c, R_LOCAL, EUSERS, 1);
            continue;
          }
          if (wait_begin(t, c, d) != 0) {
            emit(t, r);
            conn_close(c, R_LOCAL, EAGAIN, 1);
            continue;
          }
          if (!d) {
            park(t, c);
            break;
          }
          int err = dial(t, c, d, NO_EP);
          if (err != 0) conn_close(c, R_LOCAL, err, 1);
        }
        break;
      }
      case OUT_CONNECTED: {
        uint32_t ep = ep_at(t, slot);
        wait_end(t, slot);
        if (ep != NO_EP) atomic_store_explicit(&t->p->fails[ep], 0, memory_order_relaxed);
        r[IO_REC_EP] = ep != NO_EP ? (double)ep : -1;
        break;
      }
      case OUT_CONNECT_FAILED: {
        uint32_t failed = ep_at(t, slot);
        failed_any = 1;
        r[IO_REC_EP] = failed != NO_EP ? (double)failed : -1;
        if (c) {
          unload(t, c->slot);
          int attempt_err = (int)r[2];
          /* Out of descriptors is this process's shortage, not the endpoint's: no retry. */
          int local = attempt_err == EMFILE || attempt_err == ENFILE;
          if (!local && failed != NO_EP) atomic_fetch_add_explicit(&t->p->fails[failed], 1, memory_order_relaxed);
          int err = d && !local && t->tries[c->slot] <= d->retries ? dial(t, c, d, failed) : attempt_err;
          if (err == EHOSTUNREACH) err = attempt_err; /* no other endpoint: the close says why the last attempt failed */
          if (err != 0) {
            emit(t, r); /* the attempt's failure first, then the close */
            conn_close(c, R_LOCAL, err, 1);
            continue;
          }
        }
        break;
      }
      case OUT_CLOSED: {
        uint32_t ep = ep_at(t, slot);
        if ((int)r[2] == R_WAIT_TIMEOUT && ep != NO_EP && t->waits[slot]) {
          /* The server's deadline passed while an attempt was in flight: that endpoint is blamed,
           * as a timed-out attempt (as on the main thread), in a record before the close. */
          double f[REC_DOUBLES] = {OUT_CONNECT_FAILED, r[1], ETIMEDOUT, 0, 0, (double)ep, r[6], 0};
          atomic_fetch_add_explicit(&t->p->fails[ep], 1, memory_order_relaxed);
          failed_any = 1;
          emit(t, f);
        }
        unload(t, slot);
        unpark(t, slot);
        wait_end(t, slot);
        if (slot < t->nslots && t->tries[slot] == IO_REFUSED) t->tries[slot] = 0; /* not counted */
        else atomic_fetch_sub(&t->p->conns, 1);
        break;
      }
      default:
        break;
    }
    emit(t, r);
  }
  atomic_store(&t->active, 0);
  atomic_fetch_add(&t->epoch, 1);
  wake_main(t, failed_any); /* a failed connect may eject its endpoint: that snapshot should not wait a tick */
  return 0;
}

/* A snapshot was published: dial the conns that waited for one (those still open). */
static void dial_parked(io_thread_t *t) {
  atomic_store(&t->active, 1); /* as in deliver: the snapshot is read inside the section */
  io_dest_t *d = atomic_load(&t->p->dest);
  if (d) {
    for (size_t i = 0; i < t->nparked; i++) {
      conn_t *c = conn_find(&t->e, t->parked[i]);
      if (!c || c->slot >= t->nslots || t->tries[c->slot] != IO_WAITING) continue; /* closed meanwhile */
      unpark(t, c->slot);
      int err = dial(t, c, d, NO_EP);
      if (err != 0) conn_close(c, R_LOCAL, err, 1);
    }
    t->nparked = 0;
  }
  atomic_store(&t->active, 0);
  atomic_fetch_add(&t->epoch, 1);
}

/* The drain's deadline: every open conn is closed, each with its record. */
static void cut_all(io_thread_t *t) {
  for (size_t i = 0; i < t->e.nconns_cap; i++) {
    conn_t *c = t->e.conns[i];
    if (c) conn_close(c, R_LOCAL, ESHUTDOWN, 1);
  }
}

static void on_wake(uv_async_t *h) {
  io_thread_t *t = h->data;
  if (t->noverflow) overflow_flush(t);
  if (atomic_load(&t->stopping) && t->l) {
    listener_close_draining(t->l); /* what is queued is accepted (and served, unless cut) first */
    t->l = NULL;
    if (pthread_mutex_lock(&t->p->lock) != 0) abort();
    t->unlistened = 1;
    if (pthread_cond_broadcast(&t->p->closed) != 0 || pthread_mutex_unlock(&t->p->lock) != 0) abort();
    /* Open until io_join (the main thread may still send it), but no longer keeping the loop:
     * it ends once the connections have. */
    uv_unref((uv_handle_t *)&t->wake);
  }
  if (atomic_load(&t->cutting)) cut_all(t); /* conns accepted from here on are closed in deliver */
  if (t->nparked) dial_parked(t);
}

static void *run(void *arg) {
  io_thread_t *t = arg;
  if (uv_run(&t->loop, UV_RUN_DEFAULT) != 0) errno = 0; /* returns once stopped and every conn is gone */
  engine_close(&t->e);
  if (uv_run(&t->loop, UV_RUN_DEFAULT) != 0) errno = 0; /* the close callbacks */
  atomic_store(&t->ended, 1);
  if (uv_async_send(t->p->main_wake) != 0) fprintf(stderr, "linkerd-tcp engine: cannot wake the main thread\n");
  return NULL;
}

/* ---- the main thread ---- */

static void thread_free(io_thread_t *t) {
  uv_close((uv_handle_t *)&t->wake, NULL); /* the thread has ended: its loop is the main thread's now */
  if (uv_run(&t->loop, UV_RUN_DEFAULT) != 0) errno = 0;
  if (t->counted) listener_unref(t->counted); /* closed long since: freed now */
  t->counted = NULL;
  if (uv_loop_close(&t->loop) != 0) fprintf(stderr, "linkerd-tcp engine: an I/O thread's loop still had handles\n");
  ring_free(&t->out);
  free(t->overflow);
  free(t->ep_of);
  free(t->tries);
  free(t->waits);
  free(t->parked);
  free(t->e.conns);
  free(t->e.gens);
  free(t->e.free_slots);
  free(t->e.listeners);
  free(t->e.pending);
}

/* Undoes the setup of a thread that never ran, as far as it got: 1 loop and ring, 2 engine,
 * 3 wake handle, 4 listener. */
static void thread_unwind(io_thread_t *t, int stage) {
  if (stage >= 4) {
    engine_close(&t->e); /* its listener with it */
  }
  if (stage >= 3) uv_close((uv_handle_t *)&t->wake, NULL);
  if (stage >= 2 && uv_run(&t->loop, UV_RUN_DEFAULT) != 0) errno = 0; /* the close callbacks */
  if (stage >= 1 && uv_loop_close(&t->loop) != 0) fprintf(stderr, "linkerd-tcp engine: an I/O thread's loop still had handles\n");
  ring_free(&t->out);
  free(t->e.conns);
  free(t->e.gens);
  free(t->e.free_slots);
  free(t->e.listeners);
  free(t->e.pending);
}

/* One thread set up and running; 0, or an errno (then nothing of it is left). */
static int thread_start(io_proxy_t *p, io_thread_t *t, size_t i, size_t n, const char *host, int *port) {
  memset(t, 0, sizeof(*t));
  t->p = p;
  t->index = i;
  t->rng.a = 0x9e3779b9u * (uint32_t)(i + 1);
  t->e.deliver = deliver;
  t->e.records = t->records;
  if (uv_loop_init(&t->loop) != 0) return ENOMEM;
  if (ring_init(&t->out, p->ring_records ? p->ring_records : IO_RING_RECORDS) != 0) return thread_unwind(t, 1), ENOMEM;
  if (engine_init(&t->e, &t->loop) != 0) return thread_unwind(t, 2), ENOMEM;
  if (p->budget) t->e.budget = p->budget / n;
  if (uv_async_init(&t->loop, &t->wake, on_wake) != 0) {
    engine_close(&t->e);
    return thread_unwind(t, 2), ENOMEM;
  }
  t->wake.data = t;
  int err = 0;
  t->l = listener_open(&t->e, host, *port, 1024, 1, &err);
  if (!t->l) return thread_unwind(t, 4), err ? err : ENOMEM;
  t->l->connect_timeout_ms = p->wait_ms;
  t->l->idle_ms = p->idle_ms;
  t->l->lifetime_ms = p->lifetime_ms;
  if (engine_add_listener(&t->e, t->l) != 0) {
    listener_close_draining(t->l);
    return thread_unwind(t, 4), ENOMEM;
  }
  *port = listener_port(t->l); /* the others share the port the first was given */
  t->counted = t->l;
  t->counted->conns++; /* held: its memory outlives its close until thread_free */
  if (pthread_create(&t->tid, NULL, run, t) != 0) {
    t->counted->conns--;
    t->counted = NULL;
    return thread_unwind(t, 4), EAGAIN;
  }
  return 0;
}

int io_start(io_proxy_t *p, io_thread_t *threads, size_t n, const char *host, int port, int *port_out) {
  if (n == 0 || n > IO_MAX_THREADS) return EINVAL;
  if (pthread_mutex_init(&p->lock, NULL) != 0) return ENOMEM;
  pthread_condattr_t ca;
  int cerr = pthread_condattr_init(&ca);
  if (cerr == 0) {
    cerr = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* io_stop's bound: immune to clock steps */
    if (cerr == 0) cerr = pthread_cond_init(&p->closed, &ca);
    if (pthread_condattr_destroy(&ca) != 0) errno = 0;
  }
  if (cerr != 0) {
    if (pthread_mutex_destroy(&p->lock) != 0) errno = 0;
    return ENOMEM;
  }
  p->synced = 1;
  p->threads = threads;
  p->nthreads = 0;
  for (size_t i = 0; i < n; i++) {
    int err = thread_start(p, &threads[i], i, n, host, &port);
    if (err != 0) return err; /* the caller stops and joins the nthreads started */
    p->nthreads++;
  }
  *port_out = port;
  return 0;
}

void io_publish(io_proxy_t *p, io_dest_t *d) {
  io_dest_t *old = atomic_exchange(&p->dest, d);
  for (size_t i = 0; i < p->nthreads; i++) /* connections waiting for a first snapshot go on */
    if (!atomic_load(&p->threads[i].ended) && uv_async_send(&p->threads[i].wake) != 0) fprintf(stderr, "linkerd-tcp engine: cannot wake an I/O thread\n");
  if (!old) return;
  for (size_t i = 0; i < p->nthreads; i++) {
    /* The epoch first: a thread seen inside a batch after it is inside that batch or a later
     * one, which read the new snapshot; either way, a later epoch frees this one. */
    old->seen[i] = atomic_load(&p->threads[i].epoch);
    old->was_active[i] = (uint8_t)atomic_load(&p->threads[i].active);
  }
  old->next = p->retired;
  p->retired = old;
}

void io_reclaim(io_proxy_t *p) {
  io_dest_t **at = &p->retired;
  while (*at) {
    io_dest_t *d = *at;
    int held = 0;
    for (size_t i = 0; i < p->nthreads && !held; i++)
      held = d->was_active[i] && atomic_load(&p->threads[i].epoch) == d->seen[i];
    if (held) {
      at = &d->next;
      continue;
    }
    *at = d->next;
    free(d);
  }
}

size_t io_drain(io_proxy_t *p, void (*fn)(void *arg, const double *rec), void *arg) {
  size_t got = 0;
  double rec[RING_REC];
  for (size_t i = 0; i < p->nthreads; i++) {
    io_thread_t *t = &p->threads[i];
    while (ring_pop(&t->out, rec)) {
      fn(arg, rec);
      got++;
    }
    if (atomic_load(&t->wants_room) && !atomic_load(&t->ended) && uv_async_send(&t->wake) != 0) fprintf(stderr, "linkerd-tcp engine: cannot wake an I/O thread\n");
  }
  return got;
}

void io_stop(io_proxy_t *p) {
  for (size_t i = 0; i < p->nthreads; i++) {
    atomic_store(&p->threads[i].stopping, 1);
    if (uv_async_send(&p->threads[i].wake) != 0) fprintf(stderr, "linkerd-tcp engine: cannot wake an I/O thread\n");
  }
  /* Until every listener is closed (each thread does it at its next loop turn): at most 2 s,
   * in case a thread is stuck; then the rest close late. */
  struct timespec until;
  if (!p->synced || clock_gettime(CLOCK_MONOTONIC, &until) != 0) return;
  until.tv_sec += 2;
  if (pthread_mutex_lock(&p->lock) != 0) abort();
  for (;;) {
    size_t open = 0;
    for (size_t i = 0; i < p->nthreads; i++) open += !p->threads[i].unlistened && !atomic_load(&p->threads[i].ended);
    if (open == 0 || pthread_cond_timedwait(&p->closed, &p->lock, &until) == ETIMEDOUT) break;
  }
  if (pthread_mutex_unlock(&p->lock) != 0) abort();
}

void io_cut(io_proxy_t *p) {
  for (size_t i = 0; i < p->nthreads; i++) {
    atomic_store(&p->threads[i].cutting, 1);
    if (!atomic_load(&p->threads[i].ended) && uv_async_send(&p->threads[i].wake) != 0) fprintf(stderr, "linkerd-tcp engine: cannot wake an I/O thread\n");
  }
}

void io_bytes(const io_proxy_t *p, uint64_t *rx, uint64_t *tx) {
  *rx = *tx = 0;
  for (size_t i = 0; i < p->nthreads; i++) {
    const listener_t *l = p->threads[i].counted;
    if (!l) continue;
    *rx += atomic_load_explicit(&l->rx_all, memory_order_relaxed);
    *tx += atomic_load_explicit(&l->tx_all, memory_order_relaxed);
  }
}

int io_ended(const io_proxy_t *p) {
  for (size_t i = 0; i < p->nthreads; i++) if (!atomic_load(&p->threads[i].ended)) return 0;
  return 1;
}

int io_join(io_proxy_t *p, void (*fn)(void *arg, const double *rec), void *arg) {
  int r = 0;
  /* A thread never waits for the main thread to end: records it has no room for stay in its
   * overflow, which is read below. */
  for (size_t i = 0; i < p->nthreads; i++) {
    int err = pthread_join(p->threads[i].tid, NULL);
    if (err != 0 && r == 0) r = err;
  }
  io_drain(p, fn, arg);
  for (size_t i = 0; i < p->nthreads; i++) {
    io_thread_t *t = &p->threads[i];
    for (size_t k = 0; k < t->noverflow; k++) fn(arg, t->overflow + k * RING_REC); /* the thread has ended: its overflow is ours */
    t->noverflow = 0;
    thread_free(t);
  }
  io_dest_t *d = atomic_exchange(&p->dest, NULL);
  free(d);
  while (p->retired) {
    io_dest_t *next = p->retired->next;
    free(p->retired);
    p->retired = next;
  }
  p->nthreads = 0;
  if (p->synced && (pthread_cond_destroy(&p->closed) != 0 || pthread_mutex_destroy(&p->lock) != 0)) fprintf(stderr, "linkerd-tcp engine: a thread group's lock was still held\n");
  p->synced = 0;
  return r;
}
