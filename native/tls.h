/* What the TLS files share beyond engine.h: the options a snapshot is built from (napi-tls.c
 * fills them from JavaScript's arguments; every pointer in them is borrowed for the call and
 * copied by tls-ctx.c where kept), and the snapshot constructors. */
#ifndef LINKERD_TCP_TLS_H
#define LINKERD_TCP_TLS_H
#include "engine.h"
#include <openssl/err.h>
#include <openssl/ssl.h>

/* The thread's OpenSSL error queue emptied: ERR_clear_error only when something is queued
 * (it wipes all 16 slots each call: 1.7 % of a TLS keep-alive worker's CPU; a peek is a
 * lookup). The pump and the handshakes call this around every SSL call. */
static inline void tls_err_clear(void) {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

typedef struct tls_bytes {
  const uint8_t *data;
  size_t len;
} tls_bytes_t;

typedef struct tls_policy {
  const char *ciphers12; /* TLS 1.2 cipher list */
  const char *suites13;  /* TLS 1.3 suites */
  const char *groups;    /* key-exchange groups, pinned */
} tls_policy_t;

typedef struct tls_identity_opts {
  const char *name;      /* normalised (lowercase, no trailing dot); "*.x.y" for a wildcard */
  tls_bytes_t cert, key; /* PEM: leaf then chain; key */
} tls_identity_opts_t;

typedef struct tls_server_opts {
  tls_policy_t policy;
  tls_identity_opts_t def;    /* cert.len == 0: no default identity */
  const tls_identity_opts_t *ids;
  size_t nids;
  tls_bytes_t alpn;           /* wire format (length-prefixed names), len 0 = no ALPN */
  int client_auth;            /* 0 none, 1 optional, 2 required */
  tls_bytes_t client_ca;      /* PEM, when client_auth */
  const uint8_t *sid_ctx;     /* session-ID context (a hash of the trust material), <= 32 bytes */
  unsigned int sid_ctx_len;
  long session_timeout_s;
  uint32_t handshake_ms;
} tls_server_opts_t;

typedef struct tls_client_opts {
  tls_policy_t policy;
  const char *name;           /* dnsName: verified, and sent as SNI unless an IP address */
  int name_is_ip;
  tls_bytes_t trust;          /* PEM roots (Node's default set plus trustCerts) */
  tls_identity_opts_t id;     /* client identity, cert.len == 0: none */
} tls_client_opts_t;

/* tls-ctx.c */
tls_server_t *tls_server_new(engine_t *e, const tls_server_opts_t *o, char *err, size_t errlen);
tls_client_t *tls_client_new(const tls_client_opts_t *o, char *err, size_t errlen);
int tls_server_identity_index(const tls_server_t *t, const char *name); /* for the shared vector test */
void tls_set_ticket_keys(engine_t *e, const uint8_t keys[48]);
int tls_conn_index(void);     /* the SSL ex_data slot holding its conn */

/* napi-tls.c */
napi_status napi_tls_define(napi_env env, napi_value exports);
tls_client_t *tls_client_of(engine_t *e, double id); /* NULL for an unknown or released id */

#endif
