/* A connection's TLS: the client's handshake (termination) and the backend's (origination);
 * a TLS connection then forwards through copy.c's buffered pump (splice cannot cross a TLS layer).
 * - Handshakes run on the conn's sockets, non-blocking, driven by epoll events; OpenSSL parses
 *   every byte of them. A client handshake that finishes records OUT_TLS_DONE (JavaScript then
 *   routes the connection); one that fails records OUT_TLS_FAILED with its cause and waits,
 *   quiet, for JavaScript's close (it reads the name the client asked for first). A backend
 *   handshake is part of the connect attempt: success opens the conn, failure fails the attempt.
 * - Byte counts are plaintext, as on the node engine.
 * Ownership: the conn owns cssl/bssl; conn_tls_free (from conn_close) frees them and drops
 * the conn's snapshot references; a failed attempt (its handshake included) frees bssl at
 * once, with the backend socket (conn.c attempt_failed). Error queue: cleared before each OpenSSL call
 * whose result is read through SSL_get_error, and left empty after. */
#include "engine.h"
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "tls.h"


void conn_tls_free(conn_t *c) {
  /* Plain conns call nothing of OpenSSL here: on a node without its exports they must still run. */
  if (!c->cssl && !c->bssl && !c->tsrv && !c->tcli && !c->sni) return;
  if (c->cssl) SSL_free(c->cssl);
  if (c->bssl) SSL_free(c->bssl);
  c->cssl = c->bssl = NULL;
  tls_server_unref(c->tsrv);
  tls_client_unref(c->tcli);
  c->tsrv = NULL;
  c->tcli = NULL;
  free(c->sni);
  c->sni = NULL;
  tls_err_clear();
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
  tls_err_clear();
  c->state = S_TLS_FAILED;
  c->tls_cause = (uint8_t)cause;
  if (conn_watch(c, 0, WATCH_DONE) != 0) errno = 0; /* quiet until JavaScript closes it */
  timers_arm(c);                                     /* no deadline in this state */
  out_record(c->e, OUT_TLS_FAILED, c->id, cause, 0, 0, 0);
}

/* The handshake is done: waiting for a destination from JavaScript (OUT_TLS_DONE). */
static void tls_done(conn_t *c) {
  c->state = S_WAITING;
  c->attempt_deadline = 0;
  if (conn_watch(c, 0, NOTHING) != 0) errno = 0; /* quiet until routed (watchLeave) or connected */
  timers_arm(c);                                  /* the server's connect deadline again */
  out_record(c->e, OUT_TLS_DONE, c->id, (double)(uv_hrtime() - c->hs_started_ns) / 1000.0, SSL_session_reused(c->cssl), 0, 0);
}

void conn_tls_handshake(conn_t *c) {
  if (c->tls_eof) return; /* the client sent its FIN: only the deadline ends it */
  tls_err_clear();
  errno = 0; /* read after a failure: never an earlier call's */
  int r = SSL_do_handshake(c->cssl);
  if (r == 1) {
    tls_err_clear();
    tls_done(c);
    return;
  }
  int err = errno, e = SSL_get_error(c->cssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    tls_err_clear();
    int w = conn_watch(c, 0, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
    if (w != 0) conn_tls_fail(c, TF_OTHER);
    return;
  }
  int gone = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL;
  uint8_t fin[64];
  if (gone && SSL_get_peer_finished(c->cssl, fin, sizeof(fin)) > 0) {
    /* The client finished its handshake and left while we wrote after it (TLS 1.3 tickets):
     * done, as on the node engine; forwarding then meets the error (client_error). */
    tls_err_clear();
    tls_done(c);
    return;
  }
  if (gone && !c->tls_cause && (err == 0 || err == EAGAIN)) {
    /* A FIN mid-handshake (no reset): held to the handshake deadline, as the node engine
     * holds a half-closed client (cause timeout). Nothing more will come: out of the epoll
     * set for good (a reset arriving later would otherwise report ERR|HUP at every turn). */
    tls_err_clear();
    if (conn_watch(c, 0, WATCH_DONE) != 0) errno = 0;
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
  heap_handshake(c->e);
  uint32_t ms = tls_server_handshake_ms(t);
  c->attempt_deadline = ms ? uv_now(c->e->loop) + ms : 0;
  timers_arm(c);
  conn_tls_handshake(c); /* the ClientHello is most likely there already */
  return 0;
}

/* Whether a TLS client waiting for its destination has gone: read-ahead may have taken its
 * request (and seen its FIN) into OpenSSL, so the raw socket cannot tell. 1: bytes unread
 * (a request, still to be served), 0: close_notify or EOF with nothing unread, -1 with errno
 * (EAGAIN: nothing yet). Consumes nothing. */
ssize_t conn_tls_peek(conn_t *c) {
  uint8_t b;
  size_t n = 0;
  tls_err_clear();
  errno = 0;
  if (SSL_peek_ex(c->cssl, &b, 1, &n) == 1) return 1;
  int err = errno, e = SSL_get_error(c->cssl, 0);
  tls_err_clear();
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && err == 0)) return 0;
  errno = err ? err : ECONNRESET;
  return -1;
}

/* ---- the backend's handshake ---- */

void conn_tls_backend_free(conn_t *c) {
  if (!c->bssl) return;
  SSL_free(c->bssl);
  c->bssl = NULL;
  tls_err_clear();
}

void conn_tls_backend_step(conn_t *c) {
  tls_err_clear();
  errno = 0;
  int r = SSL_do_handshake(c->bssl);
  if (r == 1) {
    tls_err_clear();
    conn_opened(c);
    return;
  }
  int err = errno, e = SSL_get_error(c->bssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    tls_err_clear();
    int w = conn_watch(c, 1, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
    if (w != 0) conn_attempt_failed(c, w);
    return;
  }
  long vr = SSL_get_verify_result(c->bssl);
  tls_err_clear();
  /* The failed attempt frees bssl with the backend socket (conn.c attempt_failed → conn_tls_backend_free). */
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
  heap_handshake(c->e);
  conn_tls_backend_step(c);
  return 0;
}

