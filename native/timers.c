/* Per-connection deadlines on one uv_timer_t each (a heap node in the loop, no syscall):
 * waiting or peeking → the server's connect deadline; a client's TLS handshake → the earlier of
 * that and its handshake timeout (cause timeout); connecting → the earlier of that
 * deadline (the connection closes, R_WAIT_TIMEOUT) and this attempt's timeout (ETIMEDOUT);
 * open → the earlier of the lifetime and last byte + idle timeout. The idle deadline is
 * lazy, as HAProxy's: a byte only stores the loop time, and the timer re-arms itself when
 * it fires early. Invariant: the timer belongs to the conn and is closed with it. */
#include "engine.h"
#include <errno.h>

static uint64_t open_deadline(const conn_t *c) {
  uint64_t at = c->lifetime_at;
  if (c->idle_ms) {
    uint64_t idle_at = c->last_active + c->idle_ms;
    if (at == 0 || idle_at < at) at = idle_at;
  }
  return at;
}

static void arm_at(conn_t *c, uint64_t at) {
  if (at == 0) {
    if (uv_timer_stop(&c->timer) != 0) return;
    return;
  }
  uint64_t now = uv_now(c->e->loop);
  if (uv_timer_start(&c->timer, timers_on_fire, at > now ? at - now : 0, 0) != 0) {
    /* uv_timer_start fails only on a closing handle or a NULL callback: nothing to arm. */
    return;
  }
}

void timers_arm(conn_t *c) {
  switch (c->state) {
    case S_WAITING:
    case S_PEEKING:
      arm_at(c, c->wait_deadline);
      break;
    case S_HANDSHAKE: /* the earlier of the handshake's own timeout and the connect deadline */
    case S_CONNECTING: {
      uint64_t at = c->attempt_deadline;
      if (c->wait_deadline && (at == 0 || c->wait_deadline < at)) at = c->wait_deadline;
      arm_at(c, at);
      break;
    }
    case S_OPEN:
      arm_at(c, open_deadline(c));
      break;
    default:
      arm_at(c, 0);
  }
}

void timers_on_fire(uv_timer_t *t) {
  conn_t *c = t->data;
  uint64_t now = uv_now(c->e->loop);
  switch (c->state) {
    case S_WAITING:
    case S_PEEKING:
      if (c->wait_deadline && now >= c->wait_deadline) conn_close(c, R_WAIT_TIMEOUT, 0, 1);
      else timers_arm(c);
      break;
    case S_HANDSHAKE:
      if ((c->attempt_deadline && now >= c->attempt_deadline) || (c->wait_deadline && now >= c->wait_deadline)) conn_tls_fail(c, TF_TIMEOUT);
      else timers_arm(c);
      break;
    case S_CONNECTING:
      /* The server's deadline ends the connection (only the endpoint dialled is blamed, as
       * connect_timeout); only the attempt's own deadline is a failed attempt, to retry. */
      if (c->wait_deadline && now >= c->wait_deadline) conn_close(c, R_WAIT_TIMEOUT, 0, 1);
      else if (c->attempt_deadline && now >= c->attempt_deadline) conn_attempt_failed(c, ETIMEDOUT);
      else timers_arm(c);
      break;
    case S_OPEN:
      if (c->lifetime_at && now >= c->lifetime_at) conn_close(c, R_LIFETIME, 0, 1);
      else if (c->idle_ms && now - c->last_active >= c->idle_ms) conn_close(c, R_IDLE, 0, 1);
      else timers_arm(c);
      break;
    default:
      break;
  }
}
