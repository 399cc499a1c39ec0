/* One proxied connection: the non-blocking connect to the address JavaScript chose, then
 * splice both ways through pooled pipes, half-close (EOF read one way → shutdown(SHUT_WR)
 * the other way while the other direction flows), exact byte counts, a close reason.
 * It never looks at the bytes (peek.c peeks on request and hands them to JavaScript as is).
 * I/O readiness comes from the engine's own epoll set, level-triggered: each socket is
 * added once, its interest changed (EPOLL_CTL_MOD) only when it changes, and close()
 * takes it out; the key carries the slot, its generation and the attempt, so an event of
 * a closed fd is dropped. A socket both of whose directions are finished leaves the set
 * (its HUP would otherwise be reported at every turn while the other side drains).
 * Every direction starts on copy.c's buffered pump (one recv and one send for a small
 * exchange); a plain one moves to splice once a read fills the buffer (bulk), a TLS one stays.
 * Ownership: the conn owns cfd from accept and bfd from socket() until conn_close(); a
 * failed attempt closes bfd (and frees its SSL); conn_close frees the TLS state and the
 * copy buffers; the conn's memory is freed when its timer's close callback has run (so a
 * pointer met later in the same epoll batch is still valid: state CLOSED). */
#include "engine.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIPE_CHUNK (1 << 20) /* at most what the pipe holds (pipe-pool.c sizes them) */
#define PUMP_ROUNDS 16


static void close_fd(int fd) {
  if (close(fd) != 0 && errno != EINTR) errno = 0; /* nothing left to do about a failed close */
}

conn_t *conn_find(engine_t *e, double id) {
  if (!(id >= 0) || id > 9007199254740991.0) return NULL;
  uint64_t v = (uint64_t)id;
  uint32_t slot = (uint32_t)(v & 0x3fffff), gen = (uint32_t)(v >> 22);
  if (slot >= e->nconns_cap || e->gens[slot] != gen) return NULL;
  conn_t *c = e->conns[slot];
  return c && c->state != S_CLOSED ? c : NULL;
}

static int slot_take(engine_t *e, conn_t *c) {
  if (e->nfree == 0) {
    size_t cap = e->nconns_cap ? e->nconns_cap * 2 : 1024;
    if (cap > 0x400000) return -1;
    conn_t **conns = realloc(e->conns, cap * sizeof(*conns));
    if (!conns) return -1;
    e->conns = conns;
    uint32_t *gens = realloc(e->gens, cap * sizeof(*gens));
    if (!gens) return -1;
    e->gens = gens;
    uint32_t *fr = realloc(e->free_slots, cap * sizeof(*fr));
    if (!fr) return -1;
    e->free_slots = fr;
    for (size_t i = cap; i > e->nconns_cap; i--) {
      e->conns[i - 1] = NULL;
      e->gens[i - 1] = 0;
      e->free_slots[e->nfree++] = (uint32_t)(i - 1);
    }
    e->nconns_cap = cap;
  }
  uint32_t slot = e->free_slots[--e->nfree];
  e->conns[slot] = c;
  e->gens[slot] = (e->gens[slot] + 1) & 0x7fffffff;
  c->slot = slot;
  c->id = (double)(((uint64_t)e->gens[slot] << 22) | slot);
  return 0;
}

conn_t *conn_new(engine_t *e, listener_t *l, int cfd) {
  conn_t *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  if (slot_take(e, c) != 0) {
    free(c);
    return NULL;
  }
  c->e = e;
  c->l = l;
  c->cfd = cfd;
  c->bfd = -1;
  c->up.pr = c->up.pw = c->down.pr = c->down.pw = -1;
  c->state = S_WAITING;
  if (uv_timer_init(e->loop, &c->timer) != 0) {
    e->conns[c->slot] = NULL;
    e->free_slots[e->nfree++] = c->slot;
    free(c);
    return NULL;
  }
  c->timer.data = c;
  c->handles_open = 1;
  uint64_t now = uv_now(e->loop);
  if (l->connect_timeout_ms) c->wait_deadline = now + l->connect_timeout_ms;
  c->idle_ms = l->idle_ms;
  l->conns++;
  e->live++;
  engine_live_changed(e);
  timers_arm(c);
  return c;
}

static void on_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles_open == 0) {
    free(c->hdr);
    free(c->peeked);
    free(c);
  }
}

/* Closes the backend socket of this attempt (close() also takes it out of the epoll set). */
static void backend_drop(conn_t *c) {
  if (c->bfd >= 0) close_fd(c->bfd);
  c->bfd = -1;
  c->bev = 0;
}

static void dir_release(engine_t *e, dir_t *d) {
  if (d->pr >= 0) pipe_put(&e->pipes, pipe_limit(e), d->pr, d->pw, d->cap, d->inpipe == 0);
  d->pr = d->pw = -1;
  d->inpipe = 0;
}

/* The epoll key: slot (22 bits), generation (low 24 bits), attempt (8 bits), side (1 bit). */
static uint64_t key_of(const conn_t *c, int backend) {
  return ((uint64_t)c->slot << 33) | ((uint64_t)(c->e->gens[c->slot] & 0xffffff) << 9) | ((uint64_t)c->attempt << 1) | (uint64_t)backend;
}

/* Sets a socket's interest: ADD the first time, MOD when it changes, DEL for WATCH_DONE. */
int conn_watch(conn_t *c, int backend, uint32_t events) {
  int fd = backend ? c->bfd : c->cfd;
  uint32_t *cur = backend ? &c->bev : &c->cev;
  if (*cur == events) return 0;
  if (*cur == 0 && events == WATCH_DONE) {
    *cur = WATCH_DONE; /* never added: nothing to remove */
    return 0;
  }
  int op = *cur == 0 ? EPOLL_CTL_ADD : events == WATCH_DONE ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (*cur == WATCH_DONE) return 0; /* finished for good */
  struct epoll_event ev;
  ev.events = events == WATCH_DONE ? 0 : events;
  ev.data.u64 = key_of(c, backend);
  if (epoll_ctl(c->e->epfd, op, fd, &ev) != 0) return errno;
  *cur = events;
  return 0;
}

void conn_close(conn_t *c, int reason, int err, int report) {
  if (c->state == S_CLOSED) return;
  engine_t *e = c->e;
  c->state = S_CLOSED;
  conn_tls_free(c); /* SSL objects first: they point at the fds closed below */
  copy_release(c);
  if (report) out_record(e, OUT_CLOSED, c->id, reason, err, (double)c->up.in, (double)c->down.out);
  dir_release(e, &c->up);
  dir_release(e, &c->down);
  backend_drop(c);
  if (c->cfd >= 0) close_fd(c->cfd);
  c->cfd = -1;
  e->conns[c->slot] = NULL;
  e->free_slots[e->nfree++] = c->slot;
  e->live--;
  c->l->rx -= c->up.in;
  c->l->tx -= c->down.out;
  listener_unref(c->l);
  engine_live_changed(e);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}


void conn_fail_side(conn_t *c, int client_side, int err) {
  engine_fd_pressure(c->e, err);
  if (err == EMFILE || err == ENFILE || err == ENOMEM) conn_close(c, R_LOCAL, err, 1);
  else conn_close(c, client_side ? R_CLIENT_ERROR : R_BACKEND_ERROR, err, 1);
}

/* Moves bytes src → dst until a socket would block; returns -1 when the conn closed.
 * Leaves d->want_r / d->want_w saying what to wait for. */
static int pump(conn_t *c, dir_t *d, int src, int dst, int src_is_client) {
  engine_t *e = c->e;
  d->want_r = d->want_w = 0;
  for (int round = 0; round < PUMP_ROUNDS; round++) {
    if (d->inpipe > 0) {
      ssize_t n = splice(d->pr, NULL, dst, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          d->want_w = 1; /* dst is full: the bytes wait in the pipe (backpressure) */
          return 0;
        }
        conn_fail_side(c, !src_is_client, errno);
        return -1;
      }
      d->inpipe -= (size_t)n;
      d->out += (uint64_t)n;
      if (!src_is_client) listener_count(c->l, 0, (uint64_t)n);
      c->last_active = uv_now(e->loop);
      if (d->inpipe > 0) continue;
    }
    if (d->eof) {
      dir_release(e, d);
      if (!d->shut) {
        d->shut = 1;
        dir_t *other = d == &c->up ? &c->down : &c->up;
        /* The last direction to finish: close() sends the FIN, no shutdown() needed. */
        if (!other->shut && shutdown(dst, SHUT_WR) != 0 && errno != ENOTCONN) {
          conn_fail_side(c, !src_is_client, errno);
          return -1;
        }
      }
      return 0;
    }
    if (d->short_read) {
      d->short_read = 0;
      dir_release(e, d); /* empty: back to the pool while we wait */
      d->want_r = 1;
      return 0;
    }
    int perr = d->pr < 0 ? pipe_get(&e->pipes, pipe_limit(e), &d->pr, &d->pw, &d->cap) : 0;
    if (perr != 0) {
      /* No pipe (the budget is spent, or no descriptor for one): the buffered pump moves
       * this direction's bytes instead, until a later read that fills its buffer finds room.
       * Out of descriptors, no new pipe is tried for a second (pipe_room), not at every read. */
      if (perr != -ENOBUFS) e->pipes.retry_at = uv_now(e->loop) + 1000;
      d->spliced = 0;
      e->splice_fallbacks++;
      if (!d->refused) e->splice_refused++;
      d->refused = 1;
      int r = copy_pump(c, d, src_is_client);
      if (r == 1) d->want_r = 1; /* bulk again with room now: the next readiness splices */
      return r < 0 ? -1 : 0;
    }
    ssize_t n = splice(src, NULL, d->pw, NULL, d->cap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->in += (uint64_t)n;
      d->inpipe = (size_t)n;
      if (src_is_client) listener_count(c->l, 1, (uint64_t)n);
      c->last_active = uv_now(e->loop);
      /* Shorter than the pipe's room: most likely all the socket had. Forward it and wait
       * for readable instead of a read that would only say EAGAIN; polling is
       * level-triggered, so bytes still there (a pipe out of slots) wake us at once. */
      if ((size_t)n < d->cap) d->short_read = 1;
      continue;
    }
    if (n == 0) {
      d->eof = 1;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      dir_release(e, d);
      d->want_r = 1;
      return 0;
    }
    conn_fail_side(c, src_is_client, errno);
    return -1;
  }
  /* Fairness: let other connections run; level-triggered polling brings us back. */
  d->want_r = !d->eof && d->inpipe == 0;
  d->want_w = d->inpipe > 0;
  return 0;
}

/* Writes the header bytes given at connect; returns 1 while some remain, -1 when closed. */
static int write_header(conn_t *c) {
  while (c->hdr_off < c->hdr_len) {
    ssize_t n = send(c->bfd, c->hdr + c->hdr_off, c->hdr_len - c->hdr_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return 1;
      conn_fail_side(c, 0, errno);
      return -1;
    }
    c->hdr_off += (size_t)n;
  }
  return 0;
}

/* One direction: copy.c's buffered pump (TLS always; plain until a read fills its buffer),
 * then splice for a plain direction that turned out to be bulk. 0, or -1 when it closed. */
static int move(conn_t *c, dir_t *d, int up) {
  if (!d->spliced) {
    int r = copy_pump(c, d, up);
    if (r != 1) return r;
    d->spliced = 1;
    d->refused = 0;
  }
  return up ? pump(c, d, c->cfd, c->bfd, 1) : pump(c, d, c->bfd, c->cfd, 0);
}

/* Runs both directions, then sets each socket's interest or finishes the connection. */
static void drive(conn_t *c) {
  int hdr_left = 0;
  if (c->hdr_off < c->hdr_len) {
    hdr_left = write_header(c);
    if (hdr_left < 0) return;
  }
  if (!hdr_left && move(c, &c->up, 1) < 0) return;
  if (move(c, &c->down, 0) < 0) return;
  if (c->up.shut && c->down.shut) {
    conn_close(c, R_DONE, 0, 1);
    return;
  }
  /* A socket read to EOF whose other direction is shut has nothing more to say (only HUP).
   * TLS adds the other readiness each SSL may need on its own socket (src_want_w, dst_want_r). */
  uint32_t cev = c->up.eof && c->down.shut ? WATCH_DONE
    : (!hdr_left && c->up.want_r ? EPOLLIN : 0) | (c->down.want_w || c->up.src_want_w ? EPOLLOUT : 0) | (c->down.dst_want_r ? EPOLLIN : 0);
  uint32_t bev = c->down.eof && c->up.shut ? WATCH_DONE
    : (c->down.want_r || c->up.dst_want_r ? EPOLLIN : 0) | (hdr_left || c->up.want_w || c->down.src_want_w ? EPOLLOUT : 0);
  int r = conn_watch(c, 0, cev ? cev : NOTHING);
  if (r == 0) r = conn_watch(c, 1, bev ? bev : NOTHING);
  if (r != 0) conn_close(c, R_LOCAL, r, 1);
}

static int sock_error(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

static void attempt_failed(conn_t *c, int err, double detail) {
  engine_fd_pressure(c->e, err);
  conn_tls_backend_free(c); /* the attempt's SSL, before its socket */
  backend_drop(c);
  c->state = S_WAITING;
  c->attempt_deadline = 0;
  out_record(c->e, OUT_CONNECT_FAILED, c->id, err, detail, 0, 0);
  timers_arm(c);
}

void conn_attempt_failed(conn_t *c, int err) {
  attempt_failed(c, err, 0);
}

void conn_attempt_failed_tls(conn_t *c, long verify_result) {
  attempt_failed(c, TLS_CONNECT_ERR, (double)verify_result);
}

/* The TCP connect is done: open, or first the backend's TLS handshake (tls-conn.c opens it). */
static void connected(conn_t *c) {
  if (c->tcli) {
    if (conn_tls_backend(c) != 0) errno = 0; /* the attempt failed (recorded) */
    return;
  }
  conn_opened(c);
}

void conn_opened(conn_t *c) {
  engine_t *e = c->e;
  c->state = S_OPEN;
  uint64_t now = uv_now(e->loop);
  c->last_active = now;
  if (c->l->lifetime_ms) c->lifetime_at = now + c->l->lifetime_ms;
  out_record(e, OUT_CONNECTED, c->id, (double)(uv_hrtime() - c->connect_started_ns) / 1000.0, 0, 0, 0);
  timers_arm(c);
  drive(c); /* reads what is there and sets both sockets' interest */
}

/* One epoll event: find the conn (dropping stale keys) and move what can be moved. */
void conn_on_event(engine_t *e, uint64_t key, uint32_t events) {
  uint32_t slot = (uint32_t)(key >> 33), gen = (uint32_t)((key >> 9) & 0xffffff);
  uint8_t attempt = (uint8_t)((key >> 1) & 0xff);
  int backend = (int)(key & 1);
  if (slot >= e->nconns_cap || (e->gens[slot] & 0xffffff) != gen) return;
  conn_t *c = e->conns[slot];
  if (!c || c->state == S_CLOSED) return;
  if (backend && (c->attempt != attempt || c->bfd < 0)) return;
  if (c->state == S_HANDSHAKE) {
    if (!backend) conn_tls_handshake(c); /* errors surface from the handshake itself (cause closed) */
    return;
  }
  if (c->state == S_TLS_FAILED) return;
  if ((events & EPOLLERR) && (c->state == S_OPEN || !backend)) {
    int err = sock_error(backend ? c->bfd : c->cfd);
    if (err) {
      if (c->state == S_OPEN) conn_fail_side(c, !backend, err);
      else conn_close(c, R_CLIENT_ERROR, err, 1); /* gone while waiting or peeking */
      return;
    }
  }
  if (backend) {
    if (c->state == S_CONNECTING && c->bssl) {
      conn_tls_backend_step(c);
      return;
    }
    if (c->state == S_CONNECTING) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int err = events & (EPOLLERR | EPOLLHUP) ? sock_error(c->bfd) : 0;
      if (err == 0 && (events & (EPOLLERR | EPOLLHUP))) err = ECONNRESET;
      if (err != 0) conn_attempt_failed(c, err);
      else connected(c);
      return;
    }
  } else if (c->state == S_PEEKING) {
    conn_peek_ready(c, events);
    return;
  }
  if (c->state == S_OPEN) {
    drive(c); /* errors surface from splice itself */
    return;
  }
  if (backend) return;
  if (c->state == S_WAITING && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    /* Waiting for a destination (conn_watch_leave): a FIN with nothing unread means the
     * client has gone; one behind bytes it sent is a request, still to be served. */
    uint8_t b;
    ssize_t n = c->cssl ? conn_tls_peek(c) : recv(c->cfd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
      conn_close(c, R_CLIENT_ERROR, 0, 1);
      return;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      conn_close(c, R_CLIENT_ERROR, errno, 1);
      return;
    }
  }
  if (conn_watch(c, 0, NOTHING) != 0) errno = 0; /* quiet until connected (level-triggered would repeat) */
}

int addr_fill(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof(*a4);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*a6);
    return 0;
  }
  return EINVAL;
}

/* Starts a connect attempt (`tls`: then a TLS handshake with the backend, within the
 * attempt); returns 0 (the outcome comes as a record), EBUSY (not waiting), EINVAL (bad port,
 * not an address, or a header with TLS) or ENOMEM. */
int conn_connect(conn_t *c, const char *host, int port, uint32_t timeout_ms, const uint8_t *hdr, size_t hdr_len, tls_client_t *tls) {
  if (c->state != S_WAITING) return EBUSY;
  if (port <= 0 || port > 65535) return EINVAL;
  if (tls && hdr_len > 0) return EINVAL; /* a header would go out in plaintext inside the TLS stream */
  struct sockaddr_storage ss;
  socklen_t len;
  if (addr_fill(host, port, &ss, &len) != 0) return EINVAL;
  engine_t *e = c->e;
  /* Each attempt carries exactly the header it was given (none: none), from its first byte. */
  uint8_t *copy = NULL;
  if (hdr_len > 0) {
    copy = malloc(hdr_len);
    if (!copy) return ENOMEM;
    memcpy(copy, hdr, hdr_len);
  }
  free(c->hdr);
  c->hdr = copy;
  if (tls != c->tcli) { /* the attempt's origination context (references: one per conn) */
    if (tls) tls_client_ref(tls);
    tls_client_unref(c->tcli);
    c->tcli = tls;
  }
  c->hdr_len = hdr_len;
  c->hdr_off = 0;
  c->state = S_CONNECTING;
  c->attempt++;
  c->connect_started_ns = uv_hrtime();
  c->attempt_deadline = timeout_ms ? uv_now(e->loop) + timeout_ms : 0;
  timers_arm(c);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    conn_attempt_failed(c, errno);
    return 0;
  }
  c->bfd = fd;
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    conn_attempt_failed(c, errno);
    return 0;
  }
  if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
    conn_attempt_failed(c, errno);
    return 0;
  }
  int r = conn_watch(c, 1, EPOLLOUT);
  if (r != 0) conn_attempt_failed(c, r);
  return 0;
}
