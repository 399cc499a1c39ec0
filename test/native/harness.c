/* The native engine without Node: its core (every native C file but the two Node-API ones) on a
 * libuv loop of this process, with a control plane in C where JavaScript would be: accepted
 * connections get a backend from native/pick.c (least loaded of three echo servers) and are
 * connected; the outcome records are checked. Clients and backends are threads of this
 * process using blocking sockets; the engine runs on the main thread alone, as it will on
 * each I/O thread. Rounds: small exchanges (the buffered pump), bulk (splice), bulk with a
 * budget of 0 (the pump instead of pipes), half-closes, and connects refused by a dead port.
 * Then two native I/O threads (native/io-thread.c) on one port, the main thread taking their
 * records from rings of 16 (so a thread stops accepting for want of room, and resumes): waves
 * of clients over every backend, a snapshot without one backend (none goes there, the old
 * snapshot is freed), a dead endpoint whose attempts are retried on another, connections
 * waiting for a first snapshot (max_waiters), max_conns for both threads and the drain's cut
 * (io_cut), the byte totals read while the threads run, stop and join.
 * Built under ASan/UBSan and under TSan by native/Makefile (`make harness`), run by CI.
 * Every check failing prints what and exits 1; ownership: each thread closes what it opened. */
#define _GNU_SOURCE
#include "../../native/engine.h"
#include "../../native/io-thread.h"
#include "../../native/pick.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NBACK 3
#define MAX_CONNS 4096

static int failures;
#define EXPECT(cond, ...) do { if (!(cond)) { fprintf(stderr, "harness: FAILED %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); failures++; } } while (0)

/* ---- backends: echo servers, a thread per connection ---- */

typedef struct backend { int fd, port; pthread_t thread; atomic_int accepted; } backend_t;
static backend_t backends[NBACK];

static void *echo_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(fd, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) goto done;
      off += w;
    }
  }
  if (shutdown(fd, SHUT_WR) != 0) errno = 0; /* the client may be gone: nothing to do */
done:
  if (close(fd) != 0) errno = 0;
  return NULL;
}

static void *echo_server(void *arg) {
  backend_t *b = arg;
  for (;;) {
    int fd = accept4(b->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return NULL; /* the listening socket was shut down: the end */
    }
    atomic_fetch_add(&b->accepted, 1);
    pthread_t t;
    if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd) != 0 || pthread_detach(t) != 0) {
      fprintf(stderr, "harness: cannot start an echo thread\n");
      exit(1);
    }
  }
}

/* A port bound but not listening, held by the returned fd: a connect to it is refused, and
 * nothing else can take the port while the fd is open. */
static int dead_port_fd(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (close(fd) != 0) errno = 0;
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

static int listen_any(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 512) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (close(fd) != 0) errno = 0;
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

/* ---- clients: each sends its bytes, half-closes, reads the echo to EOF, compares ---- */

typedef struct job { int port; size_t bytes; int count; uint32_t seed; atomic_int *done; uv_async_t *wake; } job_t;
static atomic_int client_errors;

static uint8_t byte_at(uint32_t seed, size_t i) { return (uint8_t)((seed * 2654435761u) ^ (uint32_t)(i * 40503u) ^ (uint32_t)(i >> 11)); }

static int one_exchange(int port, size_t bytes, uint32_t seed) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  /* A lost FIN or byte ends in a failed exchange after 30 s, not a hang. */
  struct timeval tv = {.tv_sec = 30};
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int ok = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 && setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
           connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  uint8_t *out = malloc(bytes ? bytes : 1), *in = malloc(bytes + 1);
  ok = ok && out && in;
  for (size_t i = 0; ok && i < bytes; i++) out[i] = byte_at(seed, i);
  /* Writes and reads interleaved by a second thread would be simpler; a small exchange fits in
   * the socket buffers, and bulk is written in slices with reads between, so nothing deadlocks. */
  size_t sent = 0, got = 0;
  while (ok && sent < bytes) {
    size_t slice = bytes - sent < 65536 ? bytes - sent : 65536;
    ssize_t w = write(fd, out + sent, slice);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { ok = 0; break; }
    sent += (size_t)w;
    while (ok && got + 65536 < sent) { /* keep the echo flowing back */
      ssize_t r = read(fd, in + got, sent - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) { ok = 0; break; }
      got += (size_t)r;
    }
  }
  if (ok && shutdown(fd, SHUT_WR) != 0) ok = 0;
  while (ok) {
    ssize_t r = read(fd, in + got, bytes + 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { ok = 0; break; }
    if (r == 0) break;
    got += (size_t)r;
    if (got > bytes) { ok = 0; break; }
  }
  if (ok && (got != bytes || (bytes && memcmp(in, out, bytes) != 0))) ok = 0;
  free(out);
  free(in);
  if (close(fd) != 0) errno = 0;
  return ok ? 0 : -1;
}

static void *client(void *arg) {
  job_t *j = arg;
  for (int k = 0; k < j->count; k++) {
    if (one_exchange(j->port, j->bytes, j->seed + (uint32_t)k) != 0) atomic_fetch_add(&client_errors, 1);
  }
  atomic_fetch_add(j->done, 1);
  if (uv_async_send(j->wake) != 0) fprintf(stderr, "harness: uv_async_send failed\n");
  return NULL;
}

/* ---- the control plane: what JavaScript does with the records ---- */

static engine_t E;
static double records[BATCH_RECORDS * REC_DOUBLES];
static pick_rng_t rng = {42};
static double load[NBACK];
static int8_t backend_of[MAX_CONNS]; /* by slot */
static int accepted, connected, connect_failed, closed_done, closed_other;
static double rx_total, tx_total;
static int dead_port; /* when set, every connect goes there (a refused connect) */

static size_t slot_of(double id) { return (size_t)((uint64_t)id & 0x3fffff); }

static int deliver(engine_t *e, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const double *r = e->records + REC_DOUBLES * i;
    int kind = (int)r[0];
    double id = r[1];
    conn_t *c = conn_find(e, id);
    switch (kind) {
      case OUT_ACCEPTED: {
        accepted++;
        if (!c) break;
        pick_ep_t eps[NBACK];
        double cls[NBACK];
        size_t ix[3 * NBACK];
        pick_scratch_t s = {cls, ix, ix + NBACK, ix + 2 * NBACK};
        for (int b = 0; b < NBACK; b++) eps[b] = (pick_ep_t){1.0, load[b]};
        int b = pick(eps, NBACK, -1, 0, &rng, &s);
        EXPECT(b >= 0 && b < NBACK, "pick gave %d", b);
        if (b < 0) b = 0;
        EXPECT(slot_of(id) < MAX_CONNS, "slot %zu", slot_of(id));
        backend_of[slot_of(id) % MAX_CONNS] = (int8_t)b;
        load[b]++;
        int err = conn_connect(c, "127.0.0.1", dead_port ? dead_port : backends[b].port, 0, NULL, 0, NULL);
        EXPECT(err == 0, "conn_connect: %s", strerror(err));
        break;
      }
      case OUT_CONNECTED:
        connected++;
        break;
      case OUT_CONNECT_FAILED:
        connect_failed++;
        EXPECT((int)r[2] == ECONNREFUSED, "connect failed with errno %d", (int)r[2]);
        if (c) conn_close(c, R_LOCAL, (int)r[2], 1); /* no retry here: JavaScript would pick again */
        break;
      case OUT_CLOSED:
        load[backend_of[slot_of(id) % MAX_CONNS]]--;
        if ((int)r[2] == R_DONE) closed_done++;
        else closed_other++;
        rx_total += r[4];
        tx_total += r[5];
        break;
      default:
        EXPECT(0, "unexpected record kind %d", kind);
    }
  }
  return 0;
}

/* ---- rounds ---- */

/* The pipe thief: with a budget of one pipe, takes the pooled pipe every other millisecond and
 * gives it back the next, so spliced directions find none now and then (conn.c's fallback). */
static uv_timer_t thief;
static int thief_on, thief_holds, thief_r, thief_w;
static size_t thief_cap;

static void on_thief(uv_timer_t *h) {
  (void)h;
  if (thief_holds) {
    pipe_put(&E.pipes, pipe_limit(&E), thief_r, thief_w, thief_cap, 1);
    thief_holds = 0;
  } else if (E.pipes.n > 0 && pipe_get(&E.pipes, pipe_limit(&E), &thief_r, &thief_w, &thief_cap) == 0) {
    thief_holds = 1;
  }
}

static void thief_stop(void) {
  if (!thief_on) return;
  if (uv_timer_stop(&thief) != 0) exit(1);
  if (thief_holds) pipe_put(&E.pipes, pipe_limit(&E), thief_r, thief_w, thief_cap, 1);
  thief_holds = 0;
}

static listener_t *L;
static atomic_int clients_done;
static int clients_total;
static uv_async_t wake;

static void on_wake(uv_async_t *h) {
  (void)h;
  if (atomic_load(&clients_done) < clients_total) return;
  /* Every client is done: the engine's records for them may still be in this turn's batch.
   * Close the listener and let the loop run dry (the wake is closed once the clients are
   * joined: a client may still be sending it). */
  if (L) listener_close(L);
  L = NULL;
  thief_stop();
  uv_unref((uv_handle_t *)&wake);
}

static void round_run(const char *name, size_t bytes, int threads, int per_thread, size_t budget, int refuse) {
  accepted = connected = connect_failed = closed_done = closed_other = 0;
  rx_total = tx_total = 0;
  atomic_store(&client_errors, 0);
  atomic_store(&clients_done, 0);
  clients_total = threads;
  E.budget = budget;
  pipe_trim(&E.pipes, pipe_limit(&E));
  int err = 0;
  L = listener_open(&E, "127.0.0.1", 0, 512, 0, &err);
  if (!L || engine_add_listener(&E, L) != 0) {
    fprintf(stderr, "harness: listen: %s\n", strerror(err));
    exit(1);
  }
  if (uv_async_init(E.loop, &wake, on_wake) != 0) exit(1);
  if (thief_on && uv_timer_start(&thief, on_thief, 1, 1) != 0) exit(1);
  int port = listener_port(L);
  int dead_fd = -1;
  dead_port = 0;
  if (refuse && (dead_fd = dead_port_fd(&dead_port)) < 0) exit(1);
  pthread_t *ts = calloc((size_t)threads, sizeof(*ts));
  job_t *jobs = calloc((size_t)threads, sizeof(*jobs));
  if (!ts || !jobs) exit(1);
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job_t){port, bytes, per_thread, (uint32_t)(t * 7919), &clients_done, &wake};
    if (pthread_create(&ts[t], NULL, client, &jobs[t]) != 0) exit(1);
  }
  if (uv_run(E.loop, UV_RUN_DEFAULT) != 0) errno = 0; /* returns once nothing is left: listener closed, conns done */
  for (int t = 0; t < threads; t++) if (pthread_join(ts[t], NULL) != 0) exit(1);
  uv_close((uv_handle_t *)&wake, NULL);
  if (uv_run(E.loop, UV_RUN_DEFAULT) != 0) errno = 0;
  free(ts);
  free(jobs);
  if (dead_fd >= 0 && close(dead_fd) != 0) exit(1);
  int n = threads * per_thread;
  EXPECT(accepted == n, "%s: %d accepted of %d", name, accepted, n);
  if (refuse) {
    EXPECT(connect_failed == n && connected == 0 && closed_other == n, "%s: %d refused, %d connected, %d closed of %d", name, connect_failed,
           connected, closed_other, n);
    EXPECT(atomic_load(&client_errors) == n, "%s: %d clients saw the close", name, atomic_load(&client_errors));
  } else {
    EXPECT(atomic_load(&client_errors) == 0, "%s: %d clients got other bytes than they sent", name, atomic_load(&client_errors));
    EXPECT(connected == n && closed_done == n && closed_other == 0, "%s: %d connected, %d done, %d other of %d", name, connected, closed_done, closed_other, n);
    EXPECT(rx_total == (double)n * (double)bytes && tx_total == rx_total, "%s: rx %.0f tx %.0f, want %.0f", name, rx_total, tx_total, (double)n * (double)bytes);
  }
  EXPECT(E.live == 0, "%s: %zu conns left", name, E.live);
  EXPECT(E.pipes.in_use == 0, "%s: %zu pipes held", name, E.pipes.in_use);
  size_t pooled = 0;
  for (size_t i = 0; i < E.pipes.n; i++) pooled += (size_t)E.pipes.fds[3 * i + 2];
  EXPECT(E.pipes.bytes == pooled, "%s: %zu pipe bytes counted, %zu pooled", name, E.pipes.bytes, pooled);
  EXPECT(E.buf_bytes == COPY_BUF * (E.nbufs + (E.copy_scratch != NULL)), "%s: %zu buffer bytes counted, %zu pooled", name, E.buf_bytes,
         COPY_BUF * (E.nbufs + (E.copy_scratch != NULL)));
  for (int b = 0; b < NBACK; b++) EXPECT(load[b] == 0, "%s: backend %d load %.0f", name, b, load[b]);
  fprintf(stderr, "harness: %-28s %4d connections x %7zu bytes: %s (pipes made so far %zu, refused a pipe %zu)\n", name, n, bytes,
          failures ? "FAILED" : "ok", E.pipes.created, E.splice_refused);
}

/* ---- native I/O threads (io-thread.c): two engines on threads of their own ---- */

typedef struct tally { int accepted, connected, failed, done, other, eusers, eshutdown, by_thread[2]; double rx, tx; } tally_t;
static io_proxy_t P;
static io_thread_t T[2];
static tally_t tally;
static uv_loop_t mloop;
static uv_async_t main_wake;
static uv_timer_t give_up;
static uv_async_t clients_wake; /* sent by each client thread as it ends: this part waits on the records instead */
static int want_closed, stopping_threads;

static void count(void *arg, const double *r) {
  tally_t *t = arg;
  int th = (int)r[7];
  EXPECT(th == 0 || th == 1, "record from thread %d", th);
  switch ((int)r[0]) {
    case OUT_ACCEPTED: t->accepted++; if (th == 0 || th == 1) t->by_thread[th]++; break;
    case OUT_CONNECTED: t->connected++; break;
    case OUT_CONNECT_FAILED: t->failed++; break;
    case OUT_CLOSED:
      if ((int)r[2] == R_DONE) t->done++;
      else t->other++;
      if ((int)r[2] == R_LOCAL && (int)r[3] == EUSERS) t->eusers++;
      if ((int)r[2] == R_LOCAL && (int)r[3] == ESHUTDOWN) t->eshutdown++;
      t->rx += r[4];
      t->tx += r[5];
      break;
    default: EXPECT(0, "record kind %d", (int)r[0]);
  }
}

/* Main-thread wake: take the records; stop waiting once the closes wanted are in (or the
 * threads have ended, when stopping). */
static int (*waiting_for)(void); /* when set, what main_wait waits for instead */

static int waited_enough(void) {
  if (waiting_for) return waiting_for();
  return stopping_threads ? io_ended(&P) : tally.done + tally.other >= want_closed;
}

static void on_main_wake(uv_async_t *h) {
  (void)h;
  io_drain(&P, count, &tally);
  io_reclaim(&P);
  if (waited_enough()) uv_stop(&mloop);
}

static void on_give_up(uv_timer_t *h) {
  (void)h;
  EXPECT(0, "threads: waited 60 s (for %d closes, %d came; %ld waiting, %ld rejected)", want_closed, tally.done + tally.other,
         atomic_load(&P.waiting), atomic_load(&P.rejected));
  uv_stop(&mloop);
}

/* Runs the main loop until on_main_wake stops it (a 60 s bound only against a hang). */
static void main_wait(void) {
  if (uv_timer_start(&give_up, on_give_up, 60000, 0) != 0) exit(1);
  io_drain(&P, count, &tally); /* what is already there */
  if (!waited_enough() && uv_run(&mloop, UV_RUN_DEFAULT) != 0) errno = 0;
  if (uv_timer_stop(&give_up) != 0) exit(1);
}

static io_dest_t *dest_of(const int *ports, const uint32_t *ids, size_t n) {
  io_dest_t *d = calloc(1, sizeof(*d) + n * sizeof(io_ep_t));
  if (!d) exit(1);
  d->n = n;
  d->connect_timeout_ms = 0; /* no attempt deadline: a loaded machine must not turn a connect into a failure */
  d->retries = 1;
  d->max_waiters = -1;       /* no limit */
  for (size_t i = 0; i < n; i++) {
    snprintf(d->eps[i].host, sizeof(d->eps[i].host), "127.0.0.1");
    d->eps[i].port = ports[i];
    d->eps[i].weight = 1.0 / (double)n;
    d->eps[i].id = ids[i];
  }
  return d;
}

/* A wave of clients through the threads' port; waits for every close record. */
static void wave(const char *name, int port, size_t bytes, int threads, int per_thread) {
  int before = tally.done + tally.other;
  atomic_store(&client_errors, 0);
  pthread_t ts[16];
  job_t jobs[16];
  atomic_int done = 0;
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job_t){port, bytes, per_thread, (uint32_t)(t * 104729), &done, &clients_wake};
    if (pthread_create(&ts[t], NULL, client, &jobs[t]) != 0) exit(1);
  }
  /* The main loop takes the records while the clients run: a thread whose ring is full stops
   * accepting until then (the ring here holds 16 records, so that happens). */
  want_closed = before + threads * per_thread;
  main_wait();
  for (int t = 0; t < threads; t++) if (pthread_join(ts[t], NULL) != 0) exit(1);
  EXPECT(atomic_load(&client_errors) == 0, "%s: %d clients got other bytes than they sent", name, atomic_load(&client_errors));
  EXPECT(tally.done + tally.other == want_closed, "%s: %d closes of %d", name, tally.done + tally.other, want_closed);
  long loads = 0;
  for (int i = 0; i < IO_MAX_ENDPOINTS; i++) loads += atomic_load(&P.loads[i]);
  EXPECT(loads == 0, "%s: loads add up to %ld with every connection closed", name, loads);
  fprintf(stderr, "harness: threads: %-22s %4d connections x %7zu bytes: %s\n", name, threads * per_thread, bytes, failures ? "FAILED" : "ok");
}

static int six_waiting_two_rejected(void) {
  return atomic_load(&P.waiting) == 6 && atomic_load(&P.rejected) == 2;
}

/* A proxy started before its destination resolved: connections wait for the first snapshot,
 * at most max_waiters of them (here 6: the other 2 of 8 are closed at once), then go on. */
static void waiting_round(void) {
  memset(&P, 0, sizeof(P));
  P.main_wake = &main_wake;
  P.max_waiters = 6;
  P.wait_ms = 60000;
  P.ring_records = 16;
  int port = 0, err = io_start(&P, T, 2, "127.0.0.1", 0, &port);
  if (err != 0) exit(1);
  memset(&tally, 0, sizeof(tally));
  stopping_threads = 0;
  atomic_store(&client_errors, 0);
  pthread_t ts[8];
  job_t jobs[8];
  atomic_int done = 0;
  for (int t = 0; t < 8; t++) {
    jobs[t] = (job_t){port, 100, 1, (uint32_t)(t * 31), &done, &clients_wake};
    if (pthread_create(&ts[t], NULL, client, &jobs[t]) != 0) exit(1);
  }
  waiting_for = six_waiting_two_rejected;
  main_wait();
  waiting_for = NULL;
  EXPECT(atomic_load(&P.waiting) == 6 && atomic_load(&P.rejected) == 2, "waiting: %ld waiting, %ld rejected, want 6 and 2",
         atomic_load(&P.waiting), atomic_load(&P.rejected));
  int ports[NBACK];
  uint32_t ids[NBACK];
  for (int b = 0; b < NBACK; b++) { ports[b] = backends[b].port; ids[b] = (uint32_t)b; }
  io_publish(&P, dest_of(ports, ids, NBACK)); /* resolved: the six go on */
  want_closed = 8;
  main_wait();
  for (int t = 0; t < 8; t++) if (pthread_join(ts[t], NULL) != 0) exit(1);
  EXPECT(atomic_load(&client_errors) == 2, "waiting: %d clients failed, want the 2 rejected", atomic_load(&client_errors));
  EXPECT(tally.done == 6 && tally.other == 2 && atomic_load(&P.waiting) == 0, "waiting: %d done, %d not, %ld still waiting", tally.done, tally.other,
         atomic_load(&P.waiting));
  stopping_threads = 1;
  io_stop(&P);
  main_wait();
  EXPECT(io_join(&P, count, &tally) == 0, "io_join");
  fprintf(stderr, "harness: threads: %-22s    8 connections before a first snapshot, max_waiters 6: %s\n", "waiting", failures ? "FAILED" : "ok");
}

/* A client that connects and holds until the proxy closes it (EOF or reset): 0, or -1 when
 * it could not connect or the close never came (30 s). */
static void *holder(void *arg) {
  job_t *j = arg;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {.tv_sec = 30};
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  char b[64];
  while (ok) {
    ssize_t r = read(fd, b, sizeof(b));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ok = 0; /* the 30 s passed: never closed */
    break;                                                          /* EOF or a reset: closed */
  }
  if (!ok) atomic_fetch_add(&client_errors, 1);
  if (fd >= 0 && close(fd) != 0) errno = 0;
  atomic_fetch_add(j->done, 1);
  if (uv_async_send(j->wake) != 0) fprintf(stderr, "harness: uv_async_send failed\n");
  return NULL;
}

static int six_in_two_refused(void) {
  return tally.accepted == 6 && tally.connected == 4 && tally.eusers == 2;
}

static int four_cut(void) {
  return tally.eshutdown == 4;
}

/* maxConcurrency for both threads together (max_conns 4: of 6 held clients, 2 are closed at
 * once, EUSERS), then the drain's cut (io_cut: the 4 left are closed, ESHUTDOWN). */
static void limit_and_cut_round(void) {
  memset(&P, 0, sizeof(P));
  P.main_wake = &main_wake;
  P.max_waiters = -1;
  P.max_conns = 4;
  int ports[NBACK];
  uint32_t ids[NBACK];
  for (int b = 0; b < NBACK; b++) { ports[b] = backends[b].port; ids[b] = (uint32_t)b; }
  io_publish(&P, dest_of(ports, ids, NBACK));
  int port = 0;
  if (io_start(&P, T, 2, "127.0.0.1", 0, &port) != 0) exit(1);
  memset(&tally, 0, sizeof(tally));
  stopping_threads = 0;
  atomic_store(&client_errors, 0);
  pthread_t ts[6];
  job_t jobs[6];
  atomic_int done = 0;
  for (int t = 0; t < 6; t++) {
    jobs[t] = (job_t){port, 0, 1, 0, &done, &clients_wake};
    if (pthread_create(&ts[t], NULL, holder, &jobs[t]) != 0) exit(1);
  }
  waiting_for = six_in_two_refused;
  main_wait();
  EXPECT(six_in_two_refused(), "limit: %d accepted, %d connected, %d refused (EUSERS), want 6, 4, 2", tally.accepted, tally.connected, tally.eusers);
  EXPECT(atomic_load(&P.conns) == 4, "limit: %ld open, want 4", atomic_load(&P.conns));
  waiting_for = four_cut;
  io_cut(&P);
  main_wait();
  waiting_for = NULL;
  for (int t = 0; t < 6; t++) if (pthread_join(ts[t], NULL) != 0) exit(1);
  EXPECT(four_cut() && atomic_load(&P.conns) == 0, "cut: %d closed ESHUTDOWN, %ld open", tally.eshutdown, atomic_load(&P.conns));
  EXPECT(atomic_load(&client_errors) == 0, "cut: %d clients were never closed", atomic_load(&client_errors));
  stopping_threads = 1;
  io_stop(&P);
  main_wait();
  EXPECT(io_join(&P, count, &tally) == 0, "io_join");
  fprintf(stderr, "harness: threads: %-22s    6 held connections, max_conns 4, then io_cut: %s\n", "limit and cut", failures ? "FAILED" : "ok");
}

static void threads_rounds(void) {
  if (uv_loop_init(&mloop) != 0 || uv_async_init(&mloop, &main_wake, on_main_wake) != 0 || uv_timer_init(&mloop, &give_up) != 0 ||
      uv_async_init(&mloop, &clients_wake, NULL) != 0)
    exit(1);
  int ports[NBACK];
  uint32_t ids[NBACK];
  for (int b = 0; b < NBACK; b++) { ports[b] = backends[b].port; ids[b] = (uint32_t)b; }
  P.main_wake = &main_wake;
  P.max_waiters = -1;
  P.ring_records = 16; /* tiny: overflow, a held listener and the wake for room all happen */
  io_publish(&P, dest_of(ports, ids, NBACK));
  int port = 0, err = io_start(&P, T, 2, "127.0.0.1", 0, &port);
  if (err != 0) {
    fprintf(stderr, "harness: io_start: %s\n", strerror(err));
    exit(1);
  }
  int before[NBACK];
  for (int b = 0; b < NBACK; b++) before[b] = atomic_load(&backends[b].accepted);
  wave("every backend", port, 100, 8, 30);
  uint64_t rx = 0, tx = 0;
  io_bytes(&P, &rx, &tx); /* read while the threads run (TSan: their relaxed stores, these loads) */
  EXPECT(rx == 240 * 100 && tx == 240 * 100, "threads: io_bytes %llu / %llu, want 24000 each way", (unsigned long long)rx, (unsigned long long)tx);
  wave("bulk", port, 1 << 20, 4, 2);
  EXPECT(tally.by_thread[0] > 0 && tally.by_thread[1] > 0, "threads: accepts %d / %d: one thread took none", tally.by_thread[0], tally.by_thread[1]);
  for (int b = 0; b < NBACK; b++) EXPECT(atomic_load(&backends[b].accepted) > before[b], "threads: backend %d never picked", b);
  EXPECT(tally.connected == tally.accepted && tally.failed == 0 && tally.other == 0, "threads: %d accepted, %d connected, %d failed, %d not done",
         tally.accepted, tally.connected, tally.failed, tally.other);

  /* A new snapshot without backend 2: the old one is freed once no thread can hold it, and no new connection goes there. */
  io_publish(&P, dest_of(ports, ids, 2));
  io_reclaim(&P);
  EXPECT(P.retired == NULL, "threads: an idle thread still holds the old snapshot");
  int b2 = atomic_load(&backends[2].accepted);
  wave("backend 2 removed", port, 100, 8, 20);
  EXPECT(atomic_load(&backends[2].accepted) == b2, "threads: %d connections went to the removed backend", atomic_load(&backends[2].accepted) - b2);

  /* A dead endpoint beside backend 0: attempts on it fail (refused) and go on to backend 0. */
  int dead = 0, fd = dead_port_fd(&dead);
  if (fd < 0) exit(1);
  int ports2[2] = {dead, ports[0]};
  uint32_t ids2[2] = {NBACK, 0};
  io_publish(&P, dest_of(ports2, ids2, 2));
  int failed0 = tally.failed;
  wave("a dead endpoint, retried", port, 100, 4, 20);
  EXPECT(tally.failed > failed0, "threads: no attempt reached the dead endpoint");

  /* Fail-fast at once: with max_failures 2, the dead endpoint takes at most two attempts from
   * here on (4 clients at a time: up to 3 more may already be on their way to it), then is
   * left out by both threads; a published reset lets it back. */
  io_dest_t *ff = dest_of(ports2, ids2, 2);
  ff->max_failures = 2;
  atomic_store(&P.fails[NBACK], 0);
  io_publish(&P, ff);
  failed0 = tally.failed;
  wave("a dead endpoint, fail-fast", port, 100, 4, 20);
  EXPECT(tally.failed - failed0 <= 2 + 3, "threads: %d attempts on an endpoint left out after 2 failures", tally.failed - failed0);
  EXPECT(atomic_load(&P.fails[NBACK]) >= 2, "threads: the dead endpoint's failures were not counted (%ld)", atomic_load(&P.fails[NBACK]));
  if (close(fd) != 0) exit(1);
  EXPECT(tally.other == 0, "threads: %d connections not done", tally.other);

  stopping_threads = 1;
  io_stop(&P);
  main_wait();
  EXPECT(io_ended(&P), "threads: not ended after io_stop");
  size_t holds = atomic_load(&T[0].holds) + atomic_load(&T[1].holds); /* read before io_join frees nothing of it, but after the threads ended */
  EXPECT(io_join(&P, count, &tally) == 0, "io_join");
  EXPECT(tally.accepted == tally.done + tally.other, "threads: %d accepted, %d closed", tally.accepted, tally.done + tally.other);
  EXPECT(tally.rx == tally.tx, "threads: %.0f bytes from clients, %.0f to them", tally.rx, tally.tx);
  waiting_round();
  limit_and_cut_round();
  uv_close((uv_handle_t *)&main_wake, NULL);
  uv_close((uv_handle_t *)&give_up, NULL);
  uv_close((uv_handle_t *)&clients_wake, NULL);
  if (uv_run(&mloop, UV_RUN_DEFAULT) != 0) errno = 0;
  EXPECT(uv_loop_close(&mloop) == 0, "threads: handles left on the main loop");
  fprintf(stderr, "harness: threads: stopped and joined, %d records, accepting held %zu times for a full ring: %s\n",
          tally.accepted + tally.connected + tally.failed + tally.done + tally.other, holds, failures ? "FAILED" : "ok");
}

/* `harness count N`: one I/O thread, N exchanges of 16 bytes (4 clients at a time), nothing
 * else: what `valgrind --tool=callgrind --toggle-collect=run` counts per connection. */
static int count_only(int n) {
  if (uv_loop_init(&mloop) != 0 || uv_async_init(&mloop, &main_wake, on_main_wake) != 0 || uv_timer_init(&mloop, &give_up) != 0 ||
      uv_async_init(&mloop, &clients_wake, NULL) != 0)
    return 1;
  int ports[NBACK];
  uint32_t ids[NBACK];
  for (int b = 0; b < NBACK; b++) { ports[b] = backends[b].port; ids[b] = (uint32_t)b; }
  P.main_wake = &main_wake;
  P.max_waiters = -1;
  io_publish(&P, dest_of(ports, ids, NBACK));
  int port = 0;
  if (io_start(&P, T, 1, "127.0.0.1", 0, &port) != 0) return 1;
  wave("count", port, 16, 4, n / 4);
  stopping_threads = 1;
  io_stop(&P);
  main_wait();
  EXPECT(io_join(&P, count, &tally) == 0, "io_join");
  return failures ? 1 : 0;
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "harness: FAILED: still running after 300 s (a connection that never closed?)\n";
  if (write(2, msg, sizeof(msg) - 1) < 0) _exit(2);
  _exit(1);
}

int main(int argc, char **argv) {
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || signal(SIGALRM, on_alarm) == SIG_ERR) return 1;
  alarm(300); /* a hang fails with a line, well inside CI's bound */
  for (int b = 0; b < NBACK; b++) {
    backends[b].fd = listen_any(&backends[b].port);
    if (backends[b].fd < 0 || pthread_create(&backends[b].thread, NULL, echo_server, &backends[b]) != 0) return 1;
  }
  if (argc == 3 && strcmp(argv[1], "count") == 0) return count_only(atoi(argv[2]));
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return 1;
  E.deliver = deliver;
  E.records = records;
  if (engine_init(&E, &loop) != 0) return 1;
  size_t budget = DEFAULT_BUDGET;
  round_run("small exchanges", 100, 8, 40, budget, 0);
  round_run("bulk, spliced", 3 << 20, 4, 3, budget, 0);
  size_t made = E.pipes.created;
  EXPECT(made > 0, "bulk made no pipe");
  round_run("bulk, budget 0 (pump)", 3 << 20, 4, 2, 0, 0);
  EXPECT(E.pipes.created == made, "a pipe was made past a budget of 0");
  EXPECT(E.splice_refused > 0, "no direction was refused a pipe");
  size_t fallbacks = E.splice_fallbacks;
  if (uv_timer_init(&loop, &thief) != 0) exit(1);
  thief_on = 1;
  round_run("bulk, one pipe and a thief", 8 << 20, 4, 2, PIPE_SIZE + 3 * COPY_BUF, 0);
  thief_on = 0;
  uv_close((uv_handle_t *)&thief, NULL);
  EXPECT(E.splice_fallbacks > fallbacks, "no spliced direction went back to the pump");
  fprintf(stderr, "harness: %zu times a spliced direction went back to the pump\n", E.splice_fallbacks - fallbacks);
  round_run("refused connects", 10, 4, 5, budget, 1);
  int spread = 0;
  for (int b = 0; b < NBACK; b++) spread += atomic_load(&backends[b].accepted) > 0;
  EXPECT(spread == NBACK, "the pick used %d of %d backends", spread, NBACK);
  engine_close(&E);
  if (uv_run(&loop, UV_RUN_DEFAULT) != 0) errno = 0;
  EXPECT(E.pipes.bytes == 0 && E.buf_bytes == 0, "after close: %zu pipe bytes, %zu buffer bytes", E.pipes.bytes, E.buf_bytes);
  threads_rounds();
  EXPECT(uv_loop_close(&loop) == 0, "handles left on the loop");
  for (int b = 0; b < NBACK; b++) {
    if (shutdown(backends[b].fd, SHUT_RDWR) != 0) errno = 0; /* wakes its accept */
    if (pthread_join(backends[b].thread, NULL) != 0) return 1;
    if (close(backends[b].fd) != 0) return 1;
  }
  free(E.conns);
  free(E.gens);
  free(E.free_slots);
  free(E.listeners);
  free(E.pending);
  fprintf(stderr, "harness: %s\n", failures ? "FAILED" : "all rounds passed");
  return failures ? 1 : 0;
}
