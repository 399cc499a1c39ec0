/* The JavaScript face of the native I/O threads (io-thread.c): a server's threads started,
 * its destination's snapshots published, its outcome records handed to JavaScript on Node's
 * loop (woken by a thread, then read on a 4 ms timer while they keep coming), stop, the
 * drain's cut, and the join once every thread has ended.
 * Ownership: an io_handle_t (its proxy, its threads, its records) is made by ioStart and
 * freed on Node's loop after the join (the second close callback of its two handles), or by the env
 * cleanup hook, which stops, cuts and joins whatever still runs. Snapshots belong to the
 * proxy once published (io_reclaim and io_join free them). The records buffer handed to
 * JavaScript is a Float64Array over memory Node owns (an ArrayBuffer held by reference). */
#include "io-thread.h"
#include "napi-util.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IO_HANDLES 256
/* Busy, the main thread reads the rings on a timer instead of being woken for each batch (a
 * wake costs the thread a write and the main thread a read and a loop turn): every POLL_MS,
 * until IDLE_POLLS ticks in a row found nothing. The records are accounting only (nothing on
 * the data path waits for them), so they may wait a tick. */
#define POLL_MS 4
#define IDLE_POLLS 4
#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

typedef struct io_handle {
  io_proxy_t p;
  io_thread_t threads[IO_MAX_THREADS];
  uv_async_t wake;              /* the threads' main_wake, on Node's loop */
  uv_timer_t poll;              /* while records keep coming: the rings are read every POLL_MS, the threads wake no one */
  int idle_polls;               /* ticks in a row that found nothing */
  int closing;                  /* handles still to close before the handle is freed */
  napi_env env;
  napi_ref on_records;          /* onRecords(count, ended) */
  napi_ref records_ref;         /* the ArrayBuffer behind `records` */
  double *records;              /* BATCH_RECORDS records, read by JavaScript during onRecords */
  napi_async_context actx;
  double *got;                  /* drained, not yet handed over */
  size_t ngot, cap_got;
  int stopped, joined;
  size_t index;                 /* in handles[] */
} io_handle_t;

/* Every handle of this process not yet freed (the addon runs in one env: the main thread's). */
static io_handle_t *handles[IO_HANDLES];

static void collect(void *arg, const double *rec) {
  io_handle_t *h = arg;
  recs_append(&h->got, &h->ngot, &h->cap_got, 1024, rec);
}

/* Hands what was collected to JavaScript, BATCH_RECORDS at a time; `ended` with the last call. */
static void hand_over(io_handle_t *h, int ended) {
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    fprintf(stderr, "linkerd-tcp engine: %zu thread records not handed over (handle scope)\n", h->ngot);
    h->ngot = 0;
    return;
  }
  size_t off = 0;
  do {
    size_t n = h->ngot - off < BATCH_RECORDS ? h->ngot - off : BATCH_RECORDS;
    if (n > 0) memcpy(h->records, h->got + off * REC_DOUBLES, n * REC_DOUBLES * sizeof(double)); /* none: `got` may be NULL */
    off += n;
    napi_value args[2], fn, recv, result;
    if (napi_create_uint32(env, (uint32_t)n, &args[0]) != napi_ok || napi_get_boolean(env, ended && off == h->ngot, &args[1]) != napi_ok ||
        napi_get_reference_value(env, h->on_records, &fn) != napi_ok || fn == NULL || napi_get_global(env, &recv) != napi_ok) {
      fprintf(stderr, "linkerd-tcp engine: %zu thread records dropped: no JavaScript to hand them to\n", n);
      continue;
    }
    napi_status s = napi_make_callback(env, h->actx, recv, fn, 2, args, &result);
    if (s == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok && napi_fatal_exception(env, err) != napi_ok) fprintf(stderr, "linkerd-tcp engine: uncaught exception lost\n");
    } else if (s != napi_ok) {
      fprintf(stderr, "linkerd-tcp engine: call into JavaScript failed (napi status %d)\n", (int)s);
    }
  } while (off < h->ngot);
  h->ngot = 0;
  if (napi_close_handle_scope(env, scope) != napi_ok) fprintf(stderr, "linkerd-tcp engine: handle scope\n");
}

static void handle_free(uv_handle_t *w) {
  io_handle_t *h = w->data;
  if (--h->closing > 0) return;
  free(h->got);
  free(h);
}

/* Closes the group's two handles; the memory goes with the second close callback. */
static void handles_close(io_handle_t *h) {
  h->closing = 2;
  uv_close((uv_handle_t *)&h->poll, handle_free);
  uv_close((uv_handle_t *)&h->wake, handle_free);
}

/* After the join: JavaScript's references go, and the handle once its handles closed. */
static void release(io_handle_t *h) {
  handles[h->index] = NULL;
  if (napi_delete_reference(h->env, h->on_records) != napi_ok || napi_delete_reference(h->env, h->records_ref) != napi_ok ||
      napi_async_destroy(h->env, h->actx) != napi_ok) {
    fprintf(stderr, "linkerd-tcp engine: could not release a thread group's references\n");
  }
  handles_close(h);
}

/* Reads the rings; hands what came to JavaScript; joins once every thread ended after a stop.
 * How many records came. */
static size_t take(io_handle_t *h) {
  size_t n = io_drain(&h->p, collect, h);
  io_reclaim(&h->p);
  int ended = h->stopped && io_ended(&h->p);
  if (ended) {
    if (uv_timer_stop(&h->poll) != 0) errno = 0;
    if (io_join(&h->p, collect, h) != 0) fprintf(stderr, "linkerd-tcp engine: joining the I/O threads failed\n");
    h->joined = 1;
  }
  if (h->ngot || ended) hand_over(h, ended);
  if (ended) release(h);
  return n;
}

static void on_poll(uv_timer_t *timer) {
  io_handle_t *h = timer->data;
  if (h->joined) return;
  if (take(h) > 0) {
    h->idle_polls = 0;
    return;
  }
  if (h->joined || ++h->idle_polls < IDLE_POLLS) return;
  /* Quiet: back to being woken. Polling off first, then one more read (the threads' fence
   * in wake_main pairs with this one): a record pushed meanwhile is read here, or woke us. */
  if (uv_timer_stop(&h->poll) != 0) errno = 0;
  atomic_store(&h->p.main_polling, 0);
  atomic_thread_fence(memory_order_seq_cst);
  take(h);
}

/* Node's loop: a thread left records (or ended): read them, and poll while more come. */
static void on_main_wake(uv_async_t *w) {
  io_handle_t *h = w->data;
  if (h->joined) return;
  if (take(h) == 0 || h->joined || atomic_load(&h->p.main_polling)) return;
  h->idle_polls = 0;
  atomic_store(&h->p.main_polling, 1);
  if (uv_timer_start(&h->poll, on_poll, POLL_MS, POLL_MS) != 0) { /* woken as before; what came meanwhile is read now */
    atomic_store(&h->p.main_polling, 0);
    atomic_thread_fence(memory_order_seq_cst);
    take(h);
  }
}

/* ---- the API ---- */

static io_handle_t *handle_arg(napi_env env, napi_value v) {
  double id;
  if (napi_get_value_double(env, v, &id) != napi_ok || !(id >= 0 && id < IO_HANDLES)) return NULL;
  io_handle_t *h = handles[(size_t)id];
  return h && !h->joined ? h : NULL;
}

/* The group a call's first argument names (NULL: unknown, ended, or too few arguments); its
 * `n` arguments in `argv`. */
static io_handle_t *group_of(napi_env env, napi_callback_info info, napi_value *argv, size_t n) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) return NULL;
  return handle_arg(env, argv[0]);
}

/* Numbers of ioStart's settings array, in this order. */
enum { S_THREADS, S_WAIT_MS, S_IDLE_MS, S_LIFETIME_MS, S_MAX_WAITERS, S_MAX_CONNS, S_WANT_PEER, S_BUDGET, S_COUNT };

/* ioStart(host, port, settings: number[S_COUNT], onRecords(count, ended)) → [id, port, records] */
static napi_value js_io_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[64];
  size_t len;
  double port, set[S_COUNT];
  uint32_t nset = 0;
  napi_valuetype fnt = napi_undefined;
  int bad = argc < 4 || napi_get_value_string_utf8(env, argv[0], host, sizeof(host), &len) != napi_ok || len >= sizeof(host) - 1 ||
            napi_get_value_double(env, argv[1], &port) != napi_ok || napi_get_array_length(env, argv[2], &nset) != napi_ok ||
            nset != S_COUNT || napi_typeof(env, argv[3], &fnt) != napi_ok || fnt != napi_function;
  for (uint32_t i = 0; !bad && i < S_COUNT; i++) {
    napi_value v;
    bad = napi_get_element(env, argv[2], i, &v) != napi_ok || napi_get_value_double(env, v, &set[i]) != napi_ok ||
          !(set[i] >= (i == S_MAX_WAITERS ? -1 : 0) && set[i] <= 1e15); /* maxWaiters -1: no limit */
  }
  if (bad || !(port >= 0 && port <= 65535) || !(set[S_THREADS] >= 1 && set[S_THREADS] <= IO_MAX_THREADS) || set[S_WAIT_MS] > UINT32_MAX || set[S_IDLE_MS] > UINT32_MAX || set[S_LIFETIME_MS] > UINT32_MAX) {
    napi_throw_type_error(env, NULL, "linkerd-tcp engine: ioStart(host, port, settings, onRecords)");
    return NULL;
  }
  size_t index = 0;
  while (index < IO_HANDLES && handles[index]) index++;
  if (index == IO_HANDLES) return throw_errno(env, EMFILE, "ioStart");
  io_handle_t *h = calloc(1, sizeof(*h));
  if (!h) return throw_errno(env, ENOMEM, "ioStart");
  h->env = env;
  h->index = index;
  h->p.wait_ms = (uint32_t)set[S_WAIT_MS];
  h->p.idle_ms = (uint32_t)set[S_IDLE_MS];
  h->p.lifetime_ms = (uint32_t)set[S_LIFETIME_MS];
  h->p.max_waiters = (long)set[S_MAX_WAITERS];
  h->p.max_conns = (long)set[S_MAX_CONNS];
  h->p.want_peer = set[S_WANT_PEER] != 0;
  h->p.budget = (size_t)set[S_BUDGET];
  h->p.main_wake = &h->wake;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_timer_init(loop, &h->poll) != 0) {
    free(h);
    return throw_errno(env, ENOMEM, "ioStart");
  }
  h->poll.data = h;
  uv_unref((uv_handle_t *)&h->poll); /* the wake handle keeps the loop while the threads run */
  if (uv_async_init(loop, &h->wake, on_main_wake) != 0) {
    h->closing = 1;
    uv_close((uv_handle_t *)&h->poll, handle_free);
    return throw_errno(env, ENOMEM, "ioStart");
  }
  h->wake.data = h;
  napi_value ab, arr, name, resource, out, idv, portv;
  void *data;
  if (napi_create_arraybuffer(env, BATCH_RECORDS * REC_DOUBLES * sizeof(double), &data, &ab) != napi_ok ||
      napi_create_reference(env, ab, 1, &h->records_ref) != napi_ok) {
    handles_close(h);
    return NULL;
  }
  h->records = data;
  if (napi_create_typedarray(env, napi_float64_array, BATCH_RECORDS * REC_DOUBLES, ab, 0, &arr) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &h->on_records) != napi_ok ||
      napi_create_string_utf8(env, "linkerd-tcp io threads", NAPI_AUTO_LENGTH, &name) != napi_ok || napi_create_object(env, &resource) != napi_ok ||
      napi_async_init(env, resource, name, &h->actx) != napi_ok) {
    if (napi_delete_reference(env, h->records_ref) != napi_ok) fprintf(stderr, "linkerd-tcp engine: reference\n");
    handles_close(h);
    return NULL;
  }
  /* What JavaScript gets, made before any thread runs (a failure here leaves nothing running). */
  if (napi_create_object(env, &out) != napi_ok || napi_set_named_property(env, out, "records", arr) != napi_ok ||
      napi_create_uint32(env, (uint32_t)index, &idv) != napi_ok || napi_set_named_property(env, out, "id", idv) != napi_ok) {
    if (napi_delete_reference(env, h->records_ref) != napi_ok || napi_delete_reference(env, h->on_records) != napi_ok ||
        napi_async_destroy(env, h->actx) != napi_ok) fprintf(stderr, "linkerd-tcp engine: reference\n");
    handles_close(h);
    return NULL;
  }
  int bound = 0;
  int err = io_start(&h->p, h->threads, (size_t)set[S_THREADS], host, (int)port, &bound);
  handles[index] = h;
  if (err != 0) {
    /* The threads that started stop, are cut (one may have accepted a client already, parked
     * for want of a snapshot) and joined now. */
    io_stop(&h->p);
    io_cut(&h->p);
    if (io_join(&h->p, collect, h) != 0) fprintf(stderr, "linkerd-tcp engine: joining the I/O threads failed\n");
    h->joined = 1;
    h->ngot = 0;
    release(h);
    return throw_errno(env, err, "listen");
  }
  /* Running: should this fail, the group is still in handles[] (the env cleanup hook ends it). */
  CHECK(napi_create_int32(env, bound, &portv));
  CHECK(napi_set_named_property(env, out, "port", portv));
  return out;
}

/* ioPublish(id, hosts: string[], ports: number[], weights: number[], ids: number[], empty, connectTimeoutMs, retries,
 * maxWaiters (-1: no limit), maxFailures (0: never left out), resets: boolean[] (the threads' failure
 * count of that endpoint starts again)): the snapshot new picks use. Hosts are IP literals (the threads connect without a
 * lookup). A group that has ended takes none (undefined). */
static napi_value js_io_publish(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 11) {
    napi_throw_type_error(env, NULL, "linkerd-tcp engine: ioPublish(id, hosts, ports, weights, ids, empty, connectTimeoutMs, retries, maxWaiters, maxFailures, resets)");
    return NULL;
  }
  io_handle_t *h = handle_arg(env, argv[0]);
  if (!h) return undef(env); /* the group has ended (its last records may still be on their way to JavaScript) */
  uint32_t n = 0, n2 = 0, n3 = 0, n4 = 0, n5 = 0;
  double empty, connect_ms, retries, max_waiters, max_failures;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || napi_get_array_length(env, argv[2], &n2) != napi_ok ||
      napi_get_array_length(env, argv[3], &n3) != napi_ok || napi_get_array_length(env, argv[4], &n4) != napi_ok ||
      napi_get_array_length(env, argv[10], &n5) != napi_ok || n != n2 || n != n3 || n != n4 || n != n5 || n > IO_MAX_ENDPOINTS ||
      napi_get_value_double(env, argv[5], &empty) != napi_ok || !(empty >= 0 && empty <= 1) ||
      napi_get_value_double(env, argv[6], &connect_ms) != napi_ok || !(connect_ms >= 0 && connect_ms <= UINT32_MAX) ||
      napi_get_value_double(env, argv[7], &retries) != napi_ok || !(retries >= 0 && retries <= 100) ||
      napi_get_value_double(env, argv[8], &max_waiters) != napi_ok || !(max_waiters >= -1 && max_waiters <= 1e15) ||
      napi_get_value_double(env, argv[9], &max_failures) != napi_ok || !(max_failures >= 0 && max_failures <= 1e9)) {
    napi_throw_type_error(env, NULL, "linkerd-tcp engine: ioPublish(id, hosts, ports, weights, ids, empty, connectTimeoutMs, retries, maxWaiters, maxFailures, resets)");
    return NULL;
  }
  io_dest_t *d = calloc(1, sizeof(*d) + n * sizeof(io_ep_t));
  if (!d) return throw_errno(env, ENOMEM, "ioPublish");
  d->n = n;
  d->empty = empty;
  d->connect_timeout_ms = (uint32_t)connect_ms;
  d->retries = (int)retries;
  d->max_waiters = (long)max_waiters;
  d->max_failures = (long)max_failures;
  for (uint32_t i = 0; i < n; i++) {
    napi_value hv, pv, wv, iv;
    size_t len;
    double port, weight, id;
    if (napi_get_element(env, argv[1], i, &hv) != napi_ok || napi_get_value_string_utf8(env, hv, d->eps[i].host, sizeof(d->eps[i].host), &len) != napi_ok ||
        len >= sizeof(d->eps[i].host) - 1 || napi_get_element(env, argv[2], i, &pv) != napi_ok || napi_get_value_double(env, pv, &port) != napi_ok ||
        napi_get_element(env, argv[3], i, &wv) != napi_ok || napi_get_value_double(env, wv, &weight) != napi_ok ||
        napi_get_element(env, argv[4], i, &iv) != napi_ok || napi_get_value_double(env, iv, &id) != napi_ok ||
        !(port >= 1 && port <= 65535) || !(weight >= 0 && weight <= 1e9) || !(id >= 0 && id < IO_MAX_ENDPOINTS)) {
      free(d);
      napi_throw_type_error(env, NULL, "linkerd-tcp engine: ioPublish: a bad endpoint");
      return NULL;
    }
    d->eps[i].port = (int)port;
    d->eps[i].weight = weight;
    d->eps[i].id = (uint32_t)id;
  }
  /* Endpoints the balancer counts no failure against (revived, or never failed): the threads' counts start again. */
  for (uint32_t i = 0; i < n; i++) {
    napi_value rv;
    bool reset = false;
    if (napi_get_element(env, argv[10], i, &rv) == napi_ok && napi_get_value_bool(env, rv, &reset) == napi_ok && reset)
      atomic_store_explicit(&h->p.fails[d->eps[i].id], 0, memory_order_relaxed);
  }
  io_publish(&h->p, d);
  io_reclaim(&h->p);
  return undef(env);
}

/* ioStop(id): the threads stop accepting; onRecords(…, true) follows once each has ended. */
static napi_value js_io_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  io_handle_t *h = group_of(env, info, argv, 1);
  if (!h) return undef(env);
  h->stopped = 1;
  io_stop(&h->p);
  return undef(env);
}

/* ioCut(id): every open connection of the group is closed (ESHUTDOWN records). */
static napi_value js_io_cut(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  io_handle_t *h = group_of(env, info, argv, 1);
  if (h) io_cut(&h->p);
  return undef(env);
}

/* ioStats(id) → [open connections, waiting (for a first snapshot, or connecting), refused for max_waiters, times accepting was held,
 * bytes from clients so far, bytes to clients so far] */
static napi_value js_io_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr;
  io_handle_t *h = group_of(env, info, argv, 1);
  if (!h) return undef(env);
  size_t holds = 0;
  for (size_t i = 0; i < h->p.nthreads; i++) holds += atomic_load(&h->threads[i].holds);
  uint64_t rx, tx;
  io_bytes(&h->p, &rx, &tx);
  double v[6] = {(double)atomic_load(&h->p.conns), (double)atomic_load(&h->p.waiting), (double)atomic_load(&h->p.rejected), (double)holds,
                 (double)rx, (double)tx};
  CHECK(napi_create_array_with_length(env, 6, &arr));
  for (uint32_t i = 0; i < 6; i++) CHECK(napi_set_element(env, arr, i, num(env, v[i])));
  return arr;
}

/* ioLoad(id, endpointId) → connects pending plus open on that endpoint id, every thread together */
static napi_value js_io_load(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  io_handle_t *h = group_of(env, info, argv, 2);
  double ep;
  if (!h || napi_get_value_double(env, argv[1], &ep) != napi_ok || !(ep >= 0 && ep < IO_MAX_ENDPOINTS)) return undef(env);
  return num(env, (double)atomic_load(&h->p.loads[(size_t)ep]));
}

/* The env is going away: whatever still runs is stopped, cut and joined (its records dropped). */
static void cleanup(void *arg) {
  (void)arg;
  for (size_t i = 0; i < IO_HANDLES; i++) {
    io_handle_t *h = handles[i];
    if (!h || h->joined) continue;
    io_stop(&h->p);
    io_cut(&h->p);
    if (io_join(&h->p, collect, h) != 0) fprintf(stderr, "linkerd-tcp engine: joining the I/O threads failed\n");
    h->joined = 1;
    handles[i] = NULL;
    if (uv_timer_stop(&h->poll) != 0) errno = 0;
    handles_close(h);
  }
}

napi_status napi_io_define(napi_env env, napi_value exports) {
  napi_status s = napi_add_env_cleanup_hook(env, cleanup, NULL);
  if (s != napi_ok) return s;
  napi_property_descriptor props[] = {
    {"ioStart", NULL, js_io_start, NULL, NULL, NULL, napi_default, NULL},
    {"ioPublish", NULL, js_io_publish, NULL, NULL, NULL, napi_default, NULL},
    {"ioStop", NULL, js_io_stop, NULL, NULL, NULL, napi_default, NULL},
    {"ioCut", NULL, js_io_cut, NULL, NULL, NULL, napi_default, NULL},
    {"ioStats", NULL, js_io_stats, NULL, NULL, NULL, napi_default, NULL},
    {"ioLoad", NULL, js_io_load, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
