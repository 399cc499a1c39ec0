/* The JavaScript face of the engine (Node-API 8, ABI-stable): init, listen, connect, close,
 * peek, byte counts and stats, the byte budget, port holds, the pick (for its vector test);
 * the module's setup and cleanup (engine.c). Outcomes reach JavaScript in batches (batch.c
 * calls `deliver` here), never from inside a call JavaScript made into the engine.
 * Ownership: the engine (instance data) is freed at finalize; every fd it owns is closed by
 * the env cleanup hook (connections, listeners, pipes, holds, epoll, the reserve fd). */
#include "engine.h"
#include "pick.h"
#include "napi-util.h"
#include "tls.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)


/* ---- argument helpers ---- */

/* lo <= d <= hi, false for NaN. */
static int in_range(double d, double lo, double hi) {
  return d >= lo && d <= hi;
}

static int arg_double(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok ? 0 : -1;
}

static int arg_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len;
  return napi_get_value_string_utf8(env, v, buf, size, &len) == napi_ok && len < size - 1 ? 0 : -1;
}


static napi_value pair(napi_env env, double a, double b) {
  napi_value arr;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_set_element(env, arr, 0, num(env, a)));
  CHECK(napi_set_element(env, arr, 1, num(env, b)));
  return arr;
}

#define ARGS(n) \
  size_t argc = n; napi_value argv[n]; \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  engine_t *e = engine_of(env); \
  if (!e || argc < n) { napi_throw_type_error(env, NULL, "linkerd-tcp engine: bad arguments"); return NULL; }

static conn_t *conn_arg(napi_env env, engine_t *e, napi_value v) {
  double id;
  if (arg_double(env, v, &id) != 0) return NULL;
  return conn_find(e, id);
}

static listener_t *listener_arg(napi_env env, engine_t *e, napi_value v) {
  double id;
  if (arg_double(env, v, &id) != 0 || id < 0 || id >= (double)e->nlisteners) return NULL;
  return e->listeners[(size_t)id];
}

/* ---- the API ---- */

/* init(onBatch(count)) → { records: Float64Array }. Accepts arrive as records too
 * (OUT_ACCEPTED): one call into JavaScript per loop turn, not one per connection. */
static napi_value js_init(napi_env env, napi_callback_info info) {
  ARGS(1)
  if (e->on_batch) { napi_throw_error(env, NULL, "linkerd-tcp engine: already initialised"); return NULL; }
  CHECK(napi_create_reference(env, argv[0], 1, &e->on_batch));
  napi_value ab, arr, out, name;
  void *data;
  CHECK(napi_create_arraybuffer(env, BATCH_RECORDS * REC_DOUBLES * sizeof(double), &data, &ab));
  e->records = data;
  CHECK(napi_create_reference(env, ab, 1, &e->records_ref));
  CHECK(napi_create_typedarray(env, napi_float64_array, BATCH_RECORDS * REC_DOUBLES, ab, 0, &arr));
  CHECK(napi_create_string_utf8(env, "linkerd-tcp engine", NAPI_AUTO_LENGTH, &name));
  napi_value resource;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_async_init(env, resource, name, &e->actx));
  CHECK(napi_create_object(env, &out));
  CHECK(napi_set_named_property(env, out, "records", arr));
  return out;
}

/* listen(host, port, backlog, reusePort, connectTimeoutMs, idleMs, lifetimeMs) → listener id */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  ARGS(7)
  char host[64];
  double port, backlog, ct, idle, life;
  bool reuse;
  if (arg_string(env, argv[0], host, sizeof(host)) || arg_double(env, argv[1], &port) || arg_double(env, argv[2], &backlog) ||
      napi_get_value_bool(env, argv[3], &reuse) != napi_ok || arg_double(env, argv[4], &ct) ||
      arg_double(env, argv[5], &idle) || arg_double(env, argv[6], &life)) {
    napi_throw_type_error(env, NULL, "linkerd-tcp engine: listen(host, port, backlog, reusePort, connectTimeoutMs, idleMs, lifetimeMs)");
    return NULL;
  }
  /* Range-checked as doubles first: casting an out-of-range or NaN double is undefined. */
  if (!in_range(port, 0, 65535) || !in_range(backlog, 1, 65535) || !in_range(ct, 0, UINT32_MAX) ||
      !in_range(idle, 0, UINT32_MAX) || !in_range(life, 0, UINT32_MAX)) {
    return throw_errno(env, EINVAL, "listen");
  }
  int err = 0;
  listener_t *l = listener_open(e, host, (int)port, (int)backlog, reuse, &err);
  if (!l) return throw_errno(env, err, "listen");
  if (engine_add_listener(e, l) != 0) {
    listener_close(l);
    return throw_errno(env, ENOMEM, "listen");
  }
  l->connect_timeout_ms = (uint32_t)ct;
  l->idle_ms = (uint32_t)idle;
  l->lifetime_ms = (uint32_t)life;
  return num(env, l->id);
}

/* holdPort(host, port): the hold's id and the port held (a concrete one for 0), or throws with the errno. */
static napi_value js_hold_port(napi_env env, napi_callback_info info) {
  ARGS(2)
  char host[64];
  double port;
  if (arg_string(env, argv[0], host, sizeof(host)) || arg_double(env, argv[1], &port)) {
    napi_throw_type_error(env, NULL, "linkerd-tcp engine: holdPort(host, port)");
    return NULL;
  }
  if (!in_range(port, 0, 65535)) return throw_errno(env, EINVAL, "hold");
  int held = 0;
  int id = port_hold(e, host, (int)port, &held);
  return id < 0 ? throw_errno(env, -id, "hold") : pair(env, id, held);
}

static napi_value js_release_port(napi_env env, napi_callback_info info) {
  ARGS(1)
  double id;
  if (arg_double(env, argv[0], &id) || !in_range(id, 0, 65535)) return throw_errno(env, EINVAL, "release");
  int err = port_release(e, (int)id);
  return err ? throw_errno(env, err, "release") : undef(env);
}

static napi_value js_listener_port(napi_env env, napi_callback_info info) {
  ARGS(1)
  listener_t *l = listener_arg(env, e, argv[0]);
  if (!l || l->closing) return undef(env);
  int p = listener_port(l);
  return p < 0 ? throw_errno(env, -p, "getsockname") : num(env, p);
}

/* listenerClose(id) → how many queued connections it accepted before closing (their
 * OUT_ACCEPTED records come in this loop turn's batch); 0 for an unknown or closed one. */
static napi_value js_listener_close(napi_env env, napi_callback_info info) {
  ARGS(1)
  listener_t *l = listener_arg(env, e, argv[0]);
  return num(env, l && !l->closing ? listener_close_draining(l) : 0);
}

/* Bytes from / to the clients of the listener's live connections. */
static napi_value js_listener_bytes(napi_env env, napi_callback_info info) {
  ARGS(1)
  listener_t *l = listener_arg(env, e, argv[0]);
  return l ? pair(env, (double)l->rx, (double)l->tx) : pair(env, 0, 0);
}

/* connect(id, host, port, timeoutMs, header?: Uint8Array, tlsClientId?) → 0, or an errno (EBUSY: not
 * waiting, EINVAL: bad address or an unknown TLS client id). With a TLS client id, the attempt
 * includes the TLS handshake with the backend and its verification (tlsClient). */
static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = engine_of(env);
  char host[256]; /* a name (not an address) comes back as EINVAL: JavaScript resolves it */
  double port, timeout;
  if (!e || argc < 4 || arg_string(env, argv[1], host, sizeof(host)) || arg_double(env, argv[2], &port) || arg_double(env, argv[3], &timeout)) {
    napi_throw_type_error(env, NULL, "linkerd-tcp engine: connect(id, host, port, timeoutMs, header?)");
    return NULL;
  }
  conn_t *c = conn_arg(env, e, argv[0]);
  if (!c) return num(env, ENOENT);
  const uint8_t *hdr = NULL;
  size_t hdr_len = 0;
  bool is_ta = false;
  if (argc >= 5 && napi_is_typedarray(env, argv[4], &is_ta) == napi_ok && is_ta) {
    napi_typedarray_type type;
    size_t length, offset;
    void *data;
    napi_value ab;
    CHECK(napi_get_typedarray_info(env, argv[4], &type, &length, &data, &ab, &offset));
    if (type == napi_uint8_array) { hdr = data; hdr_len = length; }
  }
  if (!in_range(port, 1, 65535) || !(timeout <= UINT32_MAX)) return num(env, EINVAL); /* NaN fails both */
  tls_client_t *tls = NULL;
  napi_valuetype tt = napi_undefined;
  if (argc >= 6 && napi_typeof(env, argv[5], &tt) != napi_ok) return NULL;
  if (tt != napi_undefined) {
    /* A TLS id that is not a live one is refused: never a plaintext connect to a TLS backend. */
    double tid;
    if (arg_double(env, argv[5], &tid) != 0 || !(tls = tls_client_of(e, tid))) return num(env, EINVAL);
  }
  return num(env, conn_connect(c, host, (int)port, timeout > 0 ? (uint32_t)timeout : 0, hdr, hdr_len, tls));
}

/* close(id) → [bytesFromClient, bytesToClient], or undefined when the engine already closed it (its record is on its way). */
static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(1)
  conn_t *c = conn_arg(env, e, argv[0]);
  if (!c) return undef(env);
  double rx = (double)c->up.in, tx = (double)c->down.out;
  conn_close(c, R_DONE, 0, 0);
  return pair(env, rx, tx);
}

/* peer(id) → "ip:port" of the client, or undefined. */
static napi_value js_peer(napi_env env, napi_callback_info info) {
  ARGS(1)
  conn_t *c = conn_arg(env, e, argv[0]);
  if (!c) return undef(env);
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(c->cfd, (struct sockaddr *)&ss, &len) != 0) return undef(env);
  char ip[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 16];
  int port;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip))) return undef(env);
    port = ntohs(a->sin_port);
    snprintf(out, sizeof(out), "%s:%d", ip, port);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    if (!inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip))) return undef(env);
    port = ntohs(a->sin6_port);
    snprintf(out, sizeof(out), "[%s]:%d", ip, port);
  }
  napi_value s;
  CHECK(napi_create_string_utf8(env, out, NAPI_AUTO_LENGTH, &s));
  return s;
}

/* peek(id, maxBytes, minBytes?) → 0 or an errno; an OUT_PEEKED record follows once minBytes
 * (default 1) are readable, or at EOF. */
static napi_value js_peek(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = engine_of(env);
  if (!e || argc < 2) { napi_throw_type_error(env, NULL, "linkerd-tcp engine: peek(id, maxBytes, minBytes?)"); return NULL; }
  conn_t *c = conn_arg(env, e, argv[0]);
  double max, min = 1;
  if (!c) return num(env, ENOENT);
  if (arg_double(env, argv[1], &max) != 0 || !(max >= 1 && max <= PEEK_MAX)) return num(env, EINVAL);
  if (argc >= 3 && (arg_double(env, argv[2], &min) != 0 || !(min >= 1 && min <= max))) return num(env, EINVAL);
  return num(env, conn_peek(c, (size_t)max, (size_t)min));
}

/* drop(id, bytes) → 0 or an errno: consumes the first `bytes` of what the client sent (a
 * header parsed in JavaScript from a peek; ENOENT, EINVAL, or the recv's errno). */
static napi_value js_drop(napi_env env, napi_callback_info info) {
  ARGS(2)
  conn_t *c = conn_arg(env, e, argv[0]);
  double n;
  if (!c) return num(env, ENOENT);
  if (arg_double(env, argv[1], &n) != 0 || !(n >= 1 && n <= PEEK_MAX)) return num(env, EINVAL);
  return num(env, conn_drop(c, (size_t)n));
}

/* watchLeave(id) → 0 or an errno: while it waits for a destination, a client that leaves
 * (FIN with nothing unread, or an error) closes it with a client_error record. */
static napi_value js_watch_leave(napi_env env, napi_callback_info info) {
  ARGS(1)
  conn_t *c = conn_arg(env, e, argv[0]);
  if (!c) return num(env, ENOENT);
  return num(env, conn_watch_leave(c));
}

/* peeked(id) → a copy of the bytes of the last peek (the client's stream is untouched). */
static napi_value js_peeked(napi_env env, napi_callback_info info) {
  ARGS(1)
  conn_t *c = conn_arg(env, e, argv[0]);
  if (!c || !c->peeked) return undef(env);
  napi_value buf;
  void *data;
  CHECK(napi_create_buffer_copy(env, c->peeked_len, c->peeked, &data, &buf));
  return buf;
}

/* stats() → [liveConnections, pipesInUse, pipesPooled, pipesCreated, pipesClosed, heapTrims,
 *            pipeBytes, bufferBytes, budgetBytes, spliceRefused] */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  (void)info;
  engine_t *e = engine_of(env);
  if (!e) return NULL;
  napi_value arr;
  double v[10] = {(double)e->live, (double)e->pipes.in_use, (double)e->pipes.n, (double)e->pipes.created, (double)e->pipes.closed,
                  (double)e->trims, (double)e->pipes.bytes, (double)e->buf_bytes, (double)e->budget, (double)e->splice_refused};
  CHECK(napi_create_array_with_length(env, 10, &arr));
  for (uint32_t i = 0; i < 10; i++) CHECK(napi_set_element(env, arr, i, num(env, v[i])));
  return arr;
}

/* hrNow() → the engine clock in ms: uv_hrtime() / 1e6, the clock of every record's time (batch.c).
 * JavaScript keeps a native connection's times on it; no offset to performance.now() is taken. */
static napi_value js_hr_now(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, (double)uv_hrtime() / 1e6);
}

/* pick(weights, loads, exclude, empty, seed, draws) → Int32Array: `draws` picks (pick.c) over
 * the endpoints whose weights and loads the two Float64Arrays give, one random stream seeded
 * `seed`; each an index or -1. The threads' pick, reachable here for the shared vector table. */
static napi_value js_pick(napi_env env, napi_callback_info info) {
  ARGS(6)
  double *w = NULL, *l = NULL, exclude, empty, seed, draws;
  size_t nw = 0, nl = 0;
  napi_typedarray_type tw, tl;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[0], &tw, &nw, (void **)&w, &ab, &off) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &tl, &nl, (void **)&l, &ab, &off) != napi_ok || tw != napi_float64_array ||
      tl != napi_float64_array || nw != nl || nw > 4096 || arg_double(env, argv[2], &exclude) || arg_double(env, argv[3], &empty) ||
      arg_double(env, argv[4], &seed) || arg_double(env, argv[5], &draws) || !in_range(exclude, -1, (double)nw - 1) ||
      !in_range(seed, 0, UINT32_MAX) || !in_range(draws, 0, 1 << 20) || !(empty >= 0)) {
    napi_throw_type_error(env, NULL, "linkerd-tcp engine: pick(weights, loads, exclude, empty, seed, draws)");
    return NULL;
  }
  size_t n = nw, k = (size_t)draws;
  napi_value out, buf;
  int32_t *got;
  CHECK(napi_create_arraybuffer(env, (k ? k : 1) * sizeof(int32_t), (void **)&got, &buf)); /* before the allocations: CHECK returns */
  pick_ep_t *eps = malloc((n ? n : 1) * sizeof(*eps));
  double *cls = malloc((n ? n : 1) * sizeof(double));
  size_t *ix = malloc((n ? n : 1) * 3 * sizeof(size_t));
  if (!eps || !cls || !ix) {
    free(eps);
    free(cls);
    free(ix);
    return throw_errno(env, ENOMEM, "pick");
  }
  for (size_t i = 0; i < n; i++) eps[i] = (pick_ep_t){w[i], l[i]};
  pick_scratch_t s = {cls, ix, ix + n, ix + 2 * n};
  pick_rng_t rng = {(uint32_t)seed};
  for (size_t i = 0; i < k; i++) got[i] = pick(eps, n, (long)exclude, empty, &rng, &s);
  free(eps);
  free(cls);
  free(ix);
  CHECK(napi_create_typedarray(env, napi_int32_array, k, buf, 0, &out));
  return out;
}

/* setBudget(bytes): the byte budget for pipes and copy buffers (engine.h); spares past a
 * smaller one go as they come back. */
static napi_value js_set_budget(napi_env env, napi_callback_info info) {
  ARGS(1)
  double bytes;
  if (arg_double(env, argv[0], &bytes) || !in_range(bytes, 0, 1e15)) return throw_errno(env, EINVAL, "setBudget");
  e->budget = (size_t)bytes;
  pipe_trim(&e->pipes, pipe_limit(e));
  return NULL;
}

/* ---- records to JavaScript (e->deliver, called by batch.c's flush) ---- */

static void report_exception(napi_env env) {
  napi_value err;
  if (napi_get_and_clear_last_exception(env, &err) == napi_ok) {
    if (napi_fatal_exception(env, err) != napi_ok) fprintf(stderr, "linkerd-tcp engine: uncaught exception lost\n");
  }
}

/* onBatch(n): JavaScript reads records[0..n) of the shared array before it returns. */
static int deliver(engine_t *e, size_t n) {
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return -1;
  int r = -1;
  napi_value count, fn, recv, result;
  if (napi_create_uint32(env, (uint32_t)n, &count) != napi_ok) {
    fprintf(stderr, "linkerd-tcp engine: could not report %zu records (napi_create_uint32)\n", n);
  } else if (napi_get_reference_value(env, e->on_batch, &fn) == napi_ok && napi_get_global(env, &recv) == napi_ok) {
    napi_status s = napi_make_callback(env, e->actx, recv, fn, 1, &count, &result);
    if (s == napi_pending_exception) report_exception(env);
    else if (s != napi_ok) fprintf(stderr, "linkerd-tcp engine: call into JavaScript failed (napi status %d)\n", (int)s);
    r = 0; /* called: the records are read, whatever JavaScript threw */
  } else {
    /* No function to call (the environment is going away): drop them rather than spin the
     * loop retrying; nothing is left to account them. */
    fprintf(stderr, "linkerd-tcp engine: %zu records dropped: no JavaScript to hand them to\n", n);
    r = 0;
  }
  if (napi_close_handle_scope(env, scope) != napi_ok) fprintf(stderr, "linkerd-tcp engine: handle scope\n");
  return r;
}

/* ---- lifetime ---- */

static void cleanup(void *arg) {
  engine_close(arg);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  engine_t *e = data;
  free(e->pending);
  free(e->holds); /* their fds were closed at cleanup */
  /* conns, slot tables and listeners are left to the process's exit: their handles may still be closing. */
}

NAPI_MODULE_INIT() {
  engine_t *e = calloc(1, sizeof(*e));
  if (!e) return NULL;
  e->env = env;
  e->deliver = deliver;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || engine_init(e, loop) != 0) return NULL;
  CHECK(napi_set_instance_data(env, e, finalize, NULL));
  CHECK(napi_add_env_cleanup_hook(env, cleanup, e));
  napi_property_descriptor props[] = {
    {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
    {"listen", NULL, js_listen, NULL, NULL, NULL, napi_default, NULL},
    {"holdPort", NULL, js_hold_port, NULL, NULL, NULL, napi_default, NULL},
    {"releasePort", NULL, js_release_port, NULL, NULL, NULL, napi_default, NULL},
    {"listenerPort", NULL, js_listener_port, NULL, NULL, NULL, napi_default, NULL},
    {"listenerClose", NULL, js_listener_close, NULL, NULL, NULL, napi_default, NULL},
    {"listenerBytes", NULL, js_listener_bytes, NULL, NULL, NULL, napi_default, NULL},
    {"connect", NULL, js_connect, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
    {"peer", NULL, js_peer, NULL, NULL, NULL, napi_default, NULL},
    {"peek", NULL, js_peek, NULL, NULL, NULL, napi_default, NULL},
    {"peeked", NULL, js_peeked, NULL, NULL, NULL, napi_default, NULL},
    {"drop", NULL, js_drop, NULL, NULL, NULL, napi_default, NULL},
    {"watchLeave", NULL, js_watch_leave, NULL, NULL, NULL, napi_default, NULL},
    {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
    {"setBudget", NULL, js_set_budget, NULL, NULL, NULL, napi_default, NULL},
    {"pick", NULL, js_pick, NULL, NULL, NULL, napi_default, NULL},
    {"hrNow", NULL, js_hr_now, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  CHECK(napi_tls_define(env, exports));
  CHECK(napi_io_define(env, exports));
  return exports;
}
