/* A listening socket on the loop: bind (SO_REUSEPORT when worker processes share the port;
 * the primary checked that the port was free first; TCP_NODELAY, which accepted sockets
 * inherit), accept in bursts, and report each new connection as an OUT_ACCEPTED record of
 * the loop turn's batch (batch.c), on which JavaScript routes it or closes it. Closed by
 * JavaScript (drain, reload), it first accepts what is queued, so nothing queued is reset.
 * Ownership: the listener owns its fd until listener_close(), which unregisters the poll
 * handle before closing the fd; accepted fds belong to their conn from conn_new() on (or
 * are closed here if no conn could be made). Out of descriptors (EMFILE/ENFILE), the
 * waiting connections are accepted into the engine's reserve descriptor and closed at
 * once, as libuv does for Node's servers (clients are refused, not left hanging), and
 * accepting pauses for 100 ms only if even that fails: never a spin on a readable listener.
 * Before that point, a client accepted with too few descriptors left for its backend
 * socket (and those of the burst's earlier clients) is closed at once with the rest of the
 * queue, and accepting slows to one a turn: the descriptors left go to connects, so some
 * clients are served. */
#include "engine.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BURST 64
#define PAUSE_MS 100
#define REFUSE_BURST 1024
#define DRAIN_MAX 4096 /* connections accepted from the queue of a listener JavaScript closes */
#define FD_SPARE 2       /* descriptors kept free beyond one backend socket per client accepted */

static void on_accept(uv_poll_t *h, int status, int events);

static void maybe_free(listener_t *l) {
  if (l->handles_open == 0 && l->conns == 0) {
    engine_t *e = l->e;
    if (l->id < e->nlisteners && e->listeners[l->id] == l) e->listeners[l->id] = NULL;
    tls_server_unref(l->tls); /* the listener's reference (listenerTls) */
    free(l);
  }
}

static void on_closed(uv_handle_t *h) {
  listener_t *l = h->data;
  l->handles_open--;
  maybe_free(l);
}

void listener_unref(listener_t *l) {
  l->conns--;
  if (l->closing) maybe_free(l);
}

/* After a pause: take the reserve descriptor back if it was lost, and accept again. If the
 * poll cannot be restarted, JavaScript hears of it (b = -2) and the pause is tried again. */
static void on_resume(uv_timer_t *t) {
  listener_t *l = t->data;
  engine_t *e = l->e;
  if (l->closing || l->held) return; /* held: listener_hold(l, 0) starts it again */
  if (e->reserve_fd < 0) e->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* -1 again: still no room */
  int r = uv_poll_start(&l->poll, UV_READABLE, on_accept);
  if (r == 0) return;
  out_record(e, OUT_ACCEPT_ERROR, l->id, -r, -2, 0, 0);
  r = uv_timer_start(&l->pause, on_resume, PAUSE_MS, 0);
  if (r != 0) out_record(e, OUT_ACCEPT_ERROR, l->id, -r, -3, 0, 0);
}

/* Closes the connections waiting in the accept queue, using the reserve descriptor as room
 * to accept them; returns how many. The reserve is reopened afterwards. */
/* Accepts and closes what waits in the queue, one descriptor at a time; returns how many.
 * Bounded: a flood must not hold the loop here; the rest waits for the next readable event. */
static int close_queued(listener_t *l) {
  int n = 0;
  while (n < REFUSE_BURST) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    if (close(fd) != 0) errno = 0;
    n++;
  }
  return n;
}

static int refuse_queued(listener_t *l) {
  engine_t *e = l->e;
  if (e->reserve_fd < 0) return -1;
  if (close(e->reserve_fd) != 0) errno = 0;
  e->reserve_fd = -1;
  int n = close_queued(l);
  e->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* -1 if another fd took the room: pause next time */
  return n;
}

/* An accepted fd becomes a conn, reported in the loop turn's batch (OUT_ACCEPTED: no call
 * into JavaScript per accept); 0 if no conn could be made, the fd closed. */
static int hand_over(listener_t *l, int fd) {
  conn_t *c = conn_new(l->e, l, fd);
  if (!c) {
    if (close(fd) != 0) errno = 0;
    return 0;
  }
  out_record(l->e, OUT_ACCEPTED, c->id, l->id, 0, 0, 0);
  return 1;
}

/* The soft limit on descriptors, or -1 when unknown or unlimited: read again once a second
 * (prlimit can change it; one getrlimit per accept burst was a system call per connection
 * at a few connections a turn). */
static long fd_limit(engine_t *e) {
  uint64_t now = uv_now(e->loop);
  if (e->fd_limit_at != 0 && now - e->fd_limit_at < 1000) return e->fd_limit;
  struct rlimit r;
  e->fd_limit = getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY ? -1 : (long)r.rlim_cur;
  e->fd_limit_at = now ? now : 1;
  return e->fd_limit;
}

static void on_accept(uv_poll_t *h, int status, int events) {
  listener_t *l = h->data;
  engine_t *e = l->e;
  (void)events;
  if (status < 0) return;
  /* Out of descriptors lately: one accept a loop turn, so each accepted client gets its
   * backend connect (in JavaScript's turn) before the next client takes a descriptor;
   * a burst would spend them all on clients and serve none. */
  int burst = uv_now(e->loop) < e->fd_pressure_until ? 1 : ACCEPT_BURST;
  long limit = fd_limit(e);
  for (int i = 0; i < burst && !l->closing; i++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN) return;
      int err = errno;
      engine_fd_pressure(e, err);
      int refused = err == EMFILE || err == ENFILE ? refuse_queued(l) : -1;
      out_record(e, OUT_ACCEPT_ERROR, l->id, err, refused, 0, 0);
      if (refused >= 0) return;
      int r = uv_poll_stop(&l->poll);
      if (r == 0) r = uv_timer_start(&l->pause, on_resume, PAUSE_MS, 0);
      if (r != 0) out_record(e, OUT_ACCEPT_ERROR, l->id, -r, -3, 0, 0); /* JavaScript logs the listener stopped */
      return;
    }
    /* Descriptors are handed out lowest first, so fd + 1 is about how many are open. A
     * client that leaves no descriptor for its own backend socket, and for those of the
     * clients accepted before it in this burst, could not be served: refuse it and slow
     * down (a loaded machine's flood spent every descriptor on clients and served none). */
    if (limit > 0 && limit - ((long)fd + 1) < (long)(i + 1) + FD_SPARE) {
      if (close(fd) != 0) errno = 0;
      engine_fd_pressure(e, EMFILE);
      out_record(e, OUT_ACCEPT_ERROR, l->id, EMFILE, 1 + close_queued(l), 0, 0);
      return;
    }
    /* TCP_NODELAY comes from the listener (Linux copies it to accepted sockets). */
    if (!hand_over(l, fd)) out_record(e, OUT_ACCEPT_ERROR, l->id, ENOMEM, 0, 0, 0);
  }
}

/* Before the fd closes: accepts what the kernel already queued on it (bounded), each an
 * OUT_ACCEPTED record as in on_accept, so those clients are served rather than reset: with
 * SO_REUSEPORT the kernel does not hand a closing listener's queue to the other listeners
 * (unless net.ipv4.tcp_migrate_req is set). Stops at an empty queue or at any error (what
 * is left is reset, as without this). Returns how many were accepted. */
static int accept_queued(listener_t *l) {
  engine_t *e = l->e;
  int n = 0;
  while (n < DRAIN_MAX) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      engine_fd_pressure(e, errno);
      break;
    }
    if (!hand_over(l, fd)) break;
    n++;
  }
  return n;
}

int listener_hold(listener_t *l, int hold) {
  if (l->closing || l->held == (hold != 0)) return 0;
  l->held = hold != 0;
  return hold ? uv_poll_stop(&l->poll) : uv_poll_start(&l->poll, UV_READABLE, on_accept);
}

int listener_close_draining(listener_t *l) {
  int n = l->fd >= 0 && !l->closing ? accept_queued(l) : 0;
  listener_close(l);
  return n;
}

listener_t *listener_open(engine_t *e, const char *host, int port, int backlog, int reuse_port, int *err) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (addr_fill(host, port, &ss, &len) != 0) {
    *err = EINVAL;
    return NULL;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = errno;
    return NULL;
  }
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 || /* inherited by accepted sockets */
      (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
      bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
    *err = errno;
    if (close(fd) != 0) errno = 0;
    return NULL;
  }
  listener_t *l = calloc(1, sizeof(*l));
  if (!l) {
    *err = ENOMEM;
    if (close(fd) != 0) errno = 0;
    return NULL;
  }
  l->e = e;
  l->fd = fd;
  int r = uv_poll_init(e->loop, &l->poll, fd);
  if (r == 0) {
    l->poll.data = l;
    l->handles_open = 1;
    r = uv_timer_init(e->loop, &l->pause);
    if (r == 0) {
      l->pause.data = l;
      l->handles_open = 2;
      uv_unref((uv_handle_t *)&l->pause);
      r = uv_poll_start(&l->poll, UV_READABLE, on_accept);
    }
  }
  if (r != 0) {
    *err = -r;
    listener_close(l);
    return NULL;
  }
  return l;
}

int sock_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return -errno;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int listener_port(listener_t *l) {
  return sock_port(l->fd);
}

void listener_close(listener_t *l) {
  l->closing = 1;
  int fd = l->fd;
  l->fd = -1;
  if (l->handles_open == 0) {
    if (fd >= 0 && close(fd) != 0) errno = 0;
    maybe_free(l);
    return;
  }
  uv_close((uv_handle_t *)&l->poll, on_closed);
  if (l->handles_open == 2) uv_close((uv_handle_t *)&l->pause, on_closed);
  if (fd >= 0 && close(fd) != 0) errno = 0;
}
