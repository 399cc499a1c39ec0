/* The buffered pump: reads, then writes, through user space. TLS connections always forward
 * with it (SSL_read / SSL_write on a TLS side, recv / send on a plain one); plain connections
 * start with it and a direction moves to splice (conn.c) once one read fills the buffer, as
 * HAProxy's splice-auto does: small exchanges cost one recv and one send, bulk goes through
 * kernel pipes.
 * - Each read lands in the engine's one scratch buffer and is written straight on; only what
 *   the destination cannot take now is copied into a COPY_BUF buffer of the direction's own,
 *   held until written (pooled per engine, at most COPY_POOLED kept).
 * - A read shorter than the buffer (with nothing more held by OpenSSL) waits for readable
 *   instead of reading EAGAIN; a direction that used its rounds asks for its destination's
 *   writability (there is room: it fires at once), since bytes OpenSSL already holds would not
 *   wake a level-triggered epoll. SSL_read / SSL_write may each need the other readiness of
 *   their socket (dir_t src_want_w / dst_want_r), which drive() in conn.c adds to the interest.
 * - EOF passes on as close_notify (TLS destination) then FIN (unless the last direction).
 * Ownership: a direction's buffer belongs to it until written out or the conn closes
 * (copy_release); pooled buffers and the scratch belong to the engine (copy_destroy).
 * Error queue: OpenSSL is called only on a TLS side, cleared before each call whose result is
 * read through SSL_get_error and left empty after; a plain connection calls none of it. */
#include "engine.h"
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "tls.h"

#define COPY_ROUNDS 16
#define COPY_POOLED 32

/* ---- buffers ---- */

static uint8_t *buf_get(engine_t *e) {
  if (e->nbufs > 0) return e->bufs[--e->nbufs];
  uint8_t *b = malloc(COPY_BUF);
  if (b) e->buf_bytes += COPY_BUF;
  return b;
}

/* Pooled unless COPY_POOLED are kept or the engine is over its budget (engine.h). */
static void buf_put(engine_t *e, dir_t *d) {
  if (!d->buf) return;
  if (e->nbufs < COPY_POOLED && e->pipes.bytes + e->buf_bytes <= e->budget) {
    if (!e->bufs) e->bufs = malloc(COPY_POOLED * sizeof(*e->bufs));
    if (e->bufs) {
      e->bufs[e->nbufs++] = d->buf;
      d->buf = NULL;
    }
  }
  if (d->buf) e->buf_bytes -= COPY_BUF;
  free(d->buf);
  d->buf = NULL;
  d->len = d->off = 0;
}

void copy_destroy(engine_t *e) {
  if (e->copy_scratch) e->buf_bytes -= COPY_BUF;
  free(e->copy_scratch);
  e->copy_scratch = NULL;
  e->buf_bytes -= e->nbufs * COPY_BUF;
  for (size_t i = 0; i < e->nbufs; i++) free(e->bufs[i]);
  free(e->bufs);
  e->bufs = NULL;
  e->nbufs = 0;
}

void copy_release(conn_t *c) {
  buf_put(c->e, &c->up);
  buf_put(c->e, &c->down);
}

/* ---- the pump ---- */

/* A TLS call on an open conn failed for good: the side's error (errno, else EPROTO/ECONNRESET). */
static void tls_failed(conn_t *c, int client_side, int sslerr, int err) {
  tls_err_clear();
  if (sslerr == SSL_ERROR_SYSCALL) conn_fail_side(c, client_side, err ? err : ECONNRESET);
  else conn_fail_side(c, client_side, EPROTO);
}

/* Writes p[0..len) to dst: 1 wrote *n (maybe fewer), 0 would block (wants set), -1 the conn closed. */
static int dir_write(conn_t *c, dir_t *d, SSL *s, int fd, int dst_is_client, const uint8_t *p, size_t len, size_t *n) {
  if (s) {
    tls_err_clear();
    errno = 0; /* read after a failure: never an earlier call's */
    if (SSL_write_ex(s, p, len, n) == 1) return 1;
    int err = errno, e = SSL_get_error(s, 0);
    tls_err_clear();
    if (e == SSL_ERROR_WANT_WRITE) d->want_w = 1;
    else if (e == SSL_ERROR_WANT_READ) d->dst_want_r = 1;
    else {
      tls_failed(c, dst_is_client, e, err);
      return -1;
    }
    return 0;
  }
  for (;;) {
    ssize_t r = send(fd, p, len, MSG_NOSIGNAL);
    if (r >= 0) {
      *n = (size_t)r;
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      d->want_w = 1;
      return 0;
    }
    conn_fail_side(c, dst_is_client, errno);
    return -1;
  }
}

/* Reads from src into buf (COPY_BUF bytes): 1 read *n, 2 EOF, 0 would block (wants set), -1 closed. */
static int dir_read(conn_t *c, dir_t *d, SSL *s, int fd, int src_is_client, uint8_t *buf, size_t *n) {
  if (s) {
    tls_err_clear();
    errno = 0; /* read after a failure: never an earlier call's */
    if (SSL_read_ex(s, buf, COPY_BUF, n) == 1) {
      /* Less than a buffer and nothing more held (read-ahead took what the socket had): most
       * likely drained, so wait for readable next instead of a read that says EAGAIN. */
      d->short_read = *n < COPY_BUF && !SSL_has_pending(s);
      return 1;
    }
    int err = errno, e = SSL_get_error(s, 0);
    tls_err_clear();
    if (e == SSL_ERROR_WANT_READ) d->want_r = 1;
    else if (e == SSL_ERROR_WANT_WRITE) d->src_want_w = 1;
    else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && err == 0)) return 2;
    else {
      tls_failed(c, src_is_client, e, err);
      return -1;
    }
    return 0;
  }
  for (;;) {
    ssize_t r = recv(fd, buf, COPY_BUF, 0);
    if (r > 0) {
      *n = (size_t)r;
      d->short_read = r < COPY_BUF; /* most likely all the socket had: wait for readable next */
      return 1;
    }
    if (r == 0) return 2;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      d->want_r = 1;
      return 0;
    }
    conn_fail_side(c, src_is_client, errno);
    return -1;
  }
}

/* The source ended: close_notify (TLS destination), then the FIN unless this is the last
 * direction (close() sends it). 0, or -1 when the conn closed. */
static int dir_finish(conn_t *c, dir_t *d, SSL *s, int fd, int dst_is_client) {
  buf_put(c->e, d);
  if (d->shut) return 0;
  if (s && !d->notified) {
    tls_err_clear();
    errno = 0; /* read after a failure: never an earlier call's */
    int r = SSL_shutdown(s);
    if (r < 0) {
      int err = errno, e = SSL_get_error(s, r);
      tls_err_clear();
      if (e == SSL_ERROR_WANT_WRITE) {
        d->want_w = 1;
        return 0;
      }
      if (e == SSL_ERROR_WANT_READ) {
        d->dst_want_r = 1;
        return 0;
      }
      tls_failed(c, dst_is_client, e, err);
      return -1;
    }
    d->notified = 1;
  }
  d->shut = 1;
  dir_t *other = d == &c->up ? &c->down : &c->up;
  if (!other->shut && shutdown(fd, SHUT_WR) != 0 && errno != ENOTCONN) {
    conn_fail_side(c, dst_is_client, errno);
    return -1;
  }
  return 0;
}

/* Bytes written to dst: counted, and the idle clock reset. */
static void wrote(conn_t *c, dir_t *d, int src_is_client, size_t n) {
  d->out += n;
  if (!src_is_client) listener_count(c->l, 0, n);
  c->last_active = uv_now(c->e->loop);
}

int copy_pump(conn_t *c, dir_t *d, int src_is_client) {
  /* 0: waiting (wants set), -1: the conn closed, 1: plain and bulk: splice this direction now. */
  engine_t *e = c->e;
  SSL *ss = src_is_client ? c->cssl : c->bssl, *ds = src_is_client ? c->bssl : c->cssl;
  int src = src_is_client ? c->cfd : c->bfd, dst = src_is_client ? c->bfd : c->cfd;
  d->want_r = d->want_w = d->src_want_w = d->dst_want_r = 0;
  if (!e->copy_scratch) {
    if (!(e->copy_scratch = malloc(COPY_BUF))) {
      conn_close(c, R_LOCAL, ENOMEM, 1);
      return -1;
    }
    e->buf_bytes += COPY_BUF;
  }
  for (int round = 0; round < COPY_ROUNDS; round++) {
    if (d->off < d->len) {
      size_t n = 0;
      int r = dir_write(c, d, ds, dst, !src_is_client, d->buf + d->off, d->len - d->off, &n);
      if (r <= 0) return r;
      d->off += (uint32_t)n;
      wrote(c, d, src_is_client, n);
      if (d->off < d->len) continue;
      buf_put(e, d); /* written out: the conn holds no buffer again */
    }
    if (d->eof) return dir_finish(c, d, ds, dst, !src_is_client);
    if (d->short_read) {
      /* The last read gave less than a buffer: the source is most likely empty, so wait for
       * readable (level-triggered: bytes still there wake us at once) rather than read EAGAIN. */
      d->short_read = 0;
      d->want_r = 1;
      return 0;
    }
    /* Read into the engine's scratch buffer and write straight on; only bytes the destination
     * cannot take now are copied into a buffer of the conn's own (the same bytes, moved:
     * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), so a conn holds one only while it is blocked. */
    size_t n = 0;
    int r = dir_read(c, d, ss, src, src_is_client, e->copy_scratch, &n);
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (r == 2) {
      d->eof = 1;
      continue;
    }
    d->in += n;
    if (src_is_client) listener_count(c->l, 1, n);
    c->last_active = uv_now(e->loop);
    size_t w = 0;
    r = dir_write(c, d, ds, dst, !src_is_client, e->copy_scratch, n, &w);
    if (r < 0) return -1;
    if (r == 1) wrote(c, d, src_is_client, w);
    /* Plain both ways and a read filled the buffer, all of it written: bulk, splice from now
     * on, if the budget has a pipe for it (else counted once, and asked again at the next). */
    if (!ss && !ds && n == COPY_BUF && w == n) {
      if (pipe_room(e)) return 1;
      if (!d->refused) e->splice_refused++;
      d->refused = 1;
    }
    if (w < n) {
      if (!(d->buf = buf_get(e))) {
        conn_close(c, R_LOCAL, ENOMEM, 1);
        return -1;
      }
      memcpy(d->buf, e->copy_scratch + w, n - w);
      d->len = (uint32_t)(n - w);
      d->off = 0;
      if (r == 0) return 0; /* blocked: the wants are set */
    }
  }
  /* Rounds used up (fairness): come back at once, through the destination's writability. */
  d->want_w = 1;
  return 0;
}
