/* A client before its backend: peek at what it sent (MSG_PEEK, never consumed; SO_RCVLOWAT
 * when JavaScript wants at least peek_min bytes, so readiness says when they are there),
 * report the bytes to JavaScript as they are, drop exactly the header JavaScript measured,
 * and notice a client that leaves while its destination is still being resolved. Nothing
 * here parses network bytes: JavaScript's parsers (src/wire/) do.
 * Ownership: the peek buffer (c->peeked) belongs to the conn, grown here and freed with it;
 * the fds stay the conn's (conn.c). */
#include "engine.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static int set_lowat(conn_t *c, int v) {
  if (setsockopt(c->cfd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) != 0) return errno;
  c->lowat = v > 1;
  return 0;
}

/* Peeks what the client sent; reports it once peek_min bytes are there, or at EOF or error.
 * `events`: what epoll said (0 for the call from conn_peek). */
void conn_peek_ready(conn_t *c, uint32_t events) {
  ssize_t n = recv(c->cfd, c->peeked, c->peek_max, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return; /* the next EPOLLIN */
    conn_close(c, R_CLIENT_ERROR, errno, 1);
    return;
  }
  int eof = n == 0;
  if (n > 0 && (size_t)n < c->peek_min) {
    /* Not yet what JavaScript asked for: SO_RCVLOWAT wakes us when it is, a FIN at once. */
    if (!(events & (EPOLLRDHUP | EPOLLHUP))) return;
    eof = 1;
  }
  c->peeked_len = (size_t)n;
  c->state = S_WAITING;
  if (c->lowat && set_lowat(c, 1) != 0) {
    conn_close(c, R_LOCAL, errno, 1); /* splice's readiness would wait for the old mark */
    return;
  }
  if (conn_watch(c, 0, NOTHING) != 0) errno = 0; /* quiet until connected; a failed MOD only costs wakeups */
  out_record(c->e, OUT_PEEKED, c->id, (double)n, eof, 0, 0);
  timers_arm(c);
}

int conn_watch_leave(conn_t *c) {
  if (c->state != S_WAITING) return EBUSY;
  return conn_watch(c, 0, EPOLLRDHUP);
}

int conn_peek(conn_t *c, size_t max, size_t min) {
  if (c->state != S_WAITING || max == 0 || max > PEEK_MAX || min > max) return EINVAL;
  if (c->peek_max < max || !c->peeked) {
    uint8_t *buf = realloc(c->peeked, max);
    if (!buf) return ENOMEM;
    c->peeked = buf;
  }
  c->peeked_len = 0;
  c->peek_max = max;
  c->peek_min = min ? min : 1;
  /* Waiting for more than one byte: readiness (epoll) says when they are there, no re-peek pause. */
  if (c->peek_min > 1) {
    int r = set_lowat(c, (int)c->peek_min);
    if (r != 0) return r;
  }
  int r = conn_watch(c, 0, EPOLLIN | EPOLLRDHUP);
  if (r != 0) return r;
  c->state = S_PEEKING;
  timers_arm(c);
  /* Whatever is readable now is reported at once, as a level-triggered poll would. */
  if (c->peek_min <= 1) conn_peek_ready(c, 0);
  return 0;
}

/* Consumes the first n bytes of the client's stream (a header JavaScript parsed from a peek):
 * they are already in the socket, so recv never waits; each return is checked, and the
 * bytes are read into a bounded stack buffer and dropped. Counted as bytes from the client. */
int conn_drop(conn_t *c, size_t n) {
  if (c->state != S_WAITING || n == 0 || n > PEEK_MAX) return EINVAL;
  uint8_t buf[2048];
  size_t left = n;
  while (left > 0) {
    ssize_t r = recv(c->cfd, buf, left < sizeof(buf) ? left : sizeof(buf), MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno; /* EAGAIN included: fewer bytes than peeked cannot be */
    }
    if (r == 0) return ECONNRESET;
    left -= (size_t)r;
  }
  c->up.in += n;
  listener_count(c->l, 1, n);
  c->peeked_len = 0;
  return 0;
}
