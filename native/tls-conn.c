/* A connection's TLS: the client's handshake (termination), the backend's (origination), and
 * the buffered pump a TLS connection forwards with (splice cannot cross a TLS layer).
 * - Handshakes run on the conn's sockets, non-blocking, driven by epoll events; OpenSSL parses
 *   every byte of them. A client handshake that finishes records OUT_TLS_DONE (JavaScript then
 *   routes the connection); one that fails records OUT_TLS_FAILED with its cause and waits,
 *   quiet, for JavaScript's close (it reads the name the client asked for first). A backend
 *   handshake is part of the connect attempt: success opens the conn, failure fails the attempt.
 * - The pump reads into the engine's one scratch buffer and writes straight on; only what the
 *   destination cannot take now is copied into a TLS_BUF buffer of the direction's own, held
 *   until it is written (pooled per engine, at most TLS_POOLED_BUFS kept); SSL_read/SSL_write may each need the other
 *   readiness of their socket (dir_t src_want_w / dst_want_r), which drive() in conn.c adds to
 *   the sockets' interest. A direction that used its rounds asks for its destination's
 *   writability (there is room: it fires at once), since bytes OpenSSL already holds would not
 *   wake a level-triggered epoll. EOF passes on as close_notify (TLS destination) then FIN.
 * - Byte counts are plaintext, as on the node engine.
 * Ownership: the conn owns cssl/bssl and the buffers; conn_tls_free (from conn_close) frees
 * them and drops the conn's snapshot references. Error queue: cleared before each OpenSSL call
 * whose result is read through SSL_get_error, and left empty after. */
#include "engine.h"
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "tls.h"

#define TLS_ROUNDS 16
#define TLS_POOLED_BUFS 32

/* ---- buffers ---- */

static uint8_t *buf_get(engine_t *e) {
  if (e->nbufs > 0) return e->bufs[--e->nbufs];
  return malloc(TLS_BUF);
}

static void buf_put(engine_t *e, dir_t *d) {
  if (!d->buf) return;
  if (e->nbufs < TLS_POOLED_BUFS) {
    if (!e->bufs) e->bufs = malloc(TLS_POOLED_BUFS * sizeof(*e->bufs));
    if (e->bufs) {
      e->bufs[e->nbufs++] = d->buf;
      d->buf = NULL;
    }
  }
  free(d->buf);
  d->buf = NULL;
  d->len = d->off = 0;
}

void conn_tls_buffers_destroy(engine_t *e) {
  free(e->tls_scratch);
  e->tls_scratch = NULL;
  for (size_t i = 0; i < e->nbufs; i++) free(e->bufs[i]);
  free(e->bufs);
  e->bufs = NULL;
  e->nbufs = 0;
}

void conn_tls_free(conn_t *c) {
  /* Plain conns call nothing of OpenSSL here: on a node without its exports they must still run. */
  if (!c->cssl && !c->bssl && !c->tsrv && !c->tcli && !c->up.buf && !c->down.buf && !c->sni) return;
  if (c->cssl) SSL_free(c->cssl);
  if (c->bssl) SSL_free(c->bssl);
  c->cssl = c->bssl = NULL;
  buf_put(c->e, &c->up);
  buf_put(c->e, &c->down);
  tls_server_unref(c->tsrv);
  tls_client_unref(c->tcli);
  c->tsrv = NULL;
  c->tcli = NULL;
  free(c->sni);
  c->sni = NULL;
  ERR_clear_error();
}

/* ---- the client's handshake ---- */

/* The cause of a failed client handshake, as src/server/tls.ts handshakeFailureCause names
 * Node's errors (they are OpenSSL's reasons there too). */
static int classify(conn_t *c, int sslerr) {
  if (c->tls_cause) return c->tls_cause; /* the server-name callback refused the name */
  if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) return TF_CLOSED;
  if (sslerr != SSL_ERROR_SSL) return TF_OTHER;
  unsigned long code = ERR_peek_last_error();
  if (ERR_GET_LIB(code) != ERR_LIB_SSL) return TF_OTHER;
  switch (ERR_GET_REASON(code)) {
    case SSL_R_UNSUPPORTED_PROTOCOL: case SSL_R_VERSION_TOO_LOW: case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION: case SSL_R_NO_PROTOCOLS_AVAILABLE:
      return TF_PROTOCOL_VERSION;
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
      /* Without a certificate for the name (no default identity), nothing can sign. */
      return c->tsrv && tls_server_has_default(c->tsrv) ? TF_NO_SHARED_CIPHER : TF_UNKNOWN_SNI;
    case SSL_R_NO_SHARED_CIPHER: case SSL_R_NO_SUITABLE_KEY_SHARE: case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_CIPHERS_AVAILABLE:
      return TF_NO_SHARED_CIPHER;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return TF_CLIENT_CERT;
    case SSL_R_NO_APPLICATION_PROTOCOL:
      return TF_ALPN;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return TF_CLOSED;
  }
  return TF_MALFORMED;
}

void conn_tls_fail(conn_t *c, int cause) {
  ERR_clear_error();
  c->state = S_TLS_FAILED;
  c->tls_cause = (uint8_t)cause;
  if (conn_watch(c, 0, WATCH_DONE) != 0) errno = 0; /* quiet until JavaScript closes it */
  timers_arm(c);                                     /* no deadline in this state */
  out_record(c->e, OUT_TLS_FAILED, c->id, cause, 0, 0, 0);
}

/* The handshake is done: waiting for a destination from JavaScript (OUT_TLS_DONE). */
static void tls_done(conn_t *c) {
  c->tls_reused = (uint8_t)SSL_session_reused(c->cssl);
  c->state = S_WAITING;
  c->attempt_deadline = 0;
  if (conn_watch(c, 0, NOTHING) != 0) errno = 0; /* quiet until routed (watchLeave) or connected */
  timers_arm(c);                                  /* the server's connect deadline again */
  out_record(c->e, OUT_TLS_DONE, c->id, (double)(uv_hrtime() - c->hs_started_ns) / 1000.0, c->tls_reused, 0, 0);
}

void conn_tls_handshake(conn_t *c) {
  if (c->tls_eof) return; /* the client sent its FIN: only the deadline ends it */
  ERR_clear_error();
  int r = SSL_do_handshake(c->cssl);
  if (r == 1) {
    ERR_clear_error();
    tls_done(c);
    return;
  }
  int err = errno, e = SSL_get_error(c->cssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    int w = conn_watch(c, 0, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
    if (w != 0) conn_tls_fail(c, TF_OTHER);
    return;
  }
  int gone = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL;
  uint8_t fin[64];
  if (gone && SSL_get_peer_finished(c->cssl, fin, sizeof(fin)) > 0) {
    /* The client finished its handshake and left while we wrote after it (TLS 1.3 tickets):
     * done, as on the node engine; forwarding then meets the error (client_error). */
    ERR_clear_error();
    tls_done(c);
    return;
  }
  if (gone && !c->tls_cause && (err == 0 || err == EAGAIN)) {
    /* A FIN mid-handshake (no reset): held to the handshake deadline, as the node engine
     * holds a half-closed client (cause timeout). Nothing more will come: stop watching. */
    ERR_clear_error();
    if (conn_watch(c, 0, NOTHING) != 0) errno = 0;
    c->tls_eof = 1;
    return;
  }
  conn_tls_fail(c, classify(c, e));
}

int conn_tls_start(conn_t *c) {
  if (c->state != S_WAITING || c->cssl || c->bfd >= 0) return EBUSY;
  tls_server_t *t = c->l->tls;
  if (!t) return EINVAL;
  c->cssl = tls_server_ssl(t, c);
  if (!c->cssl) return ENOMEM;
  tls_server_ref(t);
  c->tsrv = t;
  c->state = S_HANDSHAKE;
  c->hs_started_ns = uv_hrtime();
  uint32_t ms = tls_server_handshake_ms(t);
  c->attempt_deadline = ms ? uv_now(c->e->loop) + ms : 0;
  timers_arm(c);
  conn_tls_handshake(c); /* the ClientHello is most likely there already */
  return 0;
}

/* ---- the backend's handshake ---- */

void conn_tls_backend_step(conn_t *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->bssl);
  if (r == 1) {
    ERR_clear_error();
    conn_opened(c);
    return;
  }
  int e = SSL_get_error(c->bssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    int w = conn_watch(c, 1, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
    if (w != 0) conn_attempt_failed(c, w);
    return;
  }
  int err = errno;
  long vr = SSL_get_verify_result(c->bssl);
  ERR_clear_error();
  SSL_free(c->bssl);
  c->bssl = NULL;
  if (e == SSL_ERROR_SYSCALL && err != 0 && err != EAGAIN) conn_attempt_failed(c, err);
  else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) conn_attempt_failed(c, ECONNRESET); /* closed mid-handshake */
  else conn_attempt_failed_tls(c, vr);
}

int conn_tls_backend(conn_t *c) {
  c->bssl = tls_client_ssl(c->tcli, c);
  if (!c->bssl) {
    conn_attempt_failed(c, ENOMEM);
    return -1;
  }
  conn_tls_backend_step(c);
  return 0;
}

/* ---- the pump ---- */

/* A TLS call on an open conn failed for good: the side's error (errno, else EPROTO/ECONNRESET). */
static void tls_failed(conn_t *c, int client_side, int sslerr, int err) {
  ERR_clear_error();
  if (sslerr == SSL_ERROR_SYSCALL) conn_fail_side(c, client_side, err ? err : ECONNRESET);
  else conn_fail_side(c, client_side, EPROTO);
}

/* Writes p[0..len) to dst: 1 wrote *n (maybe fewer), 0 would block (wants set), -1 the conn closed. */
static int dir_write(conn_t *c, dir_t *d, SSL *s, int fd, int dst_is_client, const uint8_t *p, size_t len, size_t *n) {
  if (s) {
    ERR_clear_error();
    if (SSL_write_ex(s, p, len, n) == 1) return 1;
    int err = errno, e = SSL_get_error(s, 0);
    ERR_clear_error();
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

/* Reads from src into buf (TLS_BUF bytes): 1 read *n, 2 EOF, 0 would block (wants set), -1 closed. */
static int dir_read(conn_t *c, dir_t *d, SSL *s, int fd, int src_is_client, uint8_t *buf, size_t *n) {
  if (s) {
    ERR_clear_error();
    if (SSL_read_ex(s, buf, TLS_BUF, n) == 1) {
      /* Less than a buffer and nothing more held (read-ahead took what the socket had): most
       * likely drained, so wait for readable next instead of a read that says EAGAIN. */
      d->short_read = *n < TLS_BUF && !SSL_has_pending(s);
      return 1;
    }
    int err = errno, e = SSL_get_error(s, 0);
    ERR_clear_error();
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
    ssize_t r = recv(fd, buf, TLS_BUF, 0);
    if (r > 0) {
      *n = (size_t)r;
      d->short_read = r < TLS_BUF; /* most likely all the socket had: wait for readable next */
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
    ERR_clear_error();
    int r = SSL_shutdown(s);
    if (r < 0) {
      int err = errno, e = SSL_get_error(s, r);
      ERR_clear_error();
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
  if (!src_is_client) c->l->tx += n;
  c->last_active = uv_now(c->e->loop);
}

int conn_tls_pump(conn_t *c, dir_t *d, int src_is_client) {
  engine_t *e = c->e;
  SSL *ss = src_is_client ? c->cssl : c->bssl, *ds = src_is_client ? c->bssl : c->cssl;
  int src = src_is_client ? c->cfd : c->bfd, dst = src_is_client ? c->bfd : c->cfd;
  d->want_r = d->want_w = d->src_want_w = d->dst_want_r = 0;
  if (!e->tls_scratch && !(e->tls_scratch = malloc(TLS_BUF))) {
    conn_close(c, R_LOCAL, ENOMEM, 1);
    return -1;
  }
  for (int round = 0; round < TLS_ROUNDS; round++) {
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
    /* Read into the engine's scratch buffer and write straight on; only bytes the destination
     * cannot take now are copied into a buffer of the conn's own (the same bytes, moved:
     * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), so a conn holds one only while it is blocked. */
    if (d->short_read) {
      /* The last read gave less than a buffer: the source is most likely empty, so wait for
       * readable (level-triggered: bytes still there wake us at once) rather than read EAGAIN. */
      d->short_read = 0;
      d->want_r = 1;
      return 0;
    }
    size_t n = 0;
    int r = dir_read(c, d, ss, src, src_is_client, e->tls_scratch, &n);
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (r == 2) {
      d->eof = 1;
      continue;
    }
    d->in += n;
    if (src_is_client) c->l->rx += n;
    c->last_active = uv_now(e->loop);
    size_t w = 0;
    r = dir_write(c, d, ds, dst, !src_is_client, e->tls_scratch, n, &w);
    if (r < 0) return -1;
    if (r == 1) wrote(c, d, src_is_client, w);
    if (w < n) {
      if (!(d->buf = buf_get(e))) {
        conn_close(c, R_LOCAL, ENOMEM, 1);
        return -1;
      }
      memcpy(d->buf, e->tls_scratch + w, n - w);
      d->len = (uint32_t)(n - w);
      d->off = 0;
      if (r == 0) return 0; /* blocked: the wants are set */
    }
  }
  /* Rounds used up (fairness): come back at once, through the destination's writability. */
  d->want_w = 1;
  return 0;
}
