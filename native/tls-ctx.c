/* TLS contexts: immutable snapshots built once from PEM bytes JavaScript read (the one file
 * reader, src/regular-file.ts; never OpenSSL's *_file calls), through the OpenSSL the running
 * node exports to addons (no -lssl; tls_unavailable() checks the symbols at init, since they
 * bind lazily and a missing one would end the process at its first call).
 * - A server snapshot (termination): one front SSL_CTX every handshake starts on (policy,
 *   session-ID cache, ticket-key callback, session-ID context), and one SSL_CTX per identity
 *   (certificate, chain, key), switched to in the server-name callback by the identity table:
 *   the exact name, then "*." + the name after its first label (src/server/tls.ts identityFor),
 *   else the front's default identity, else the handshake fails (unknown_sni). ALPN and client
 *   certificates (trust store, CA list sent in the request) are set on every context, since
 *   OpenSSL reads them from the context in use after the switch.
 * - A client snapshot (origination): policy, trust store (the roots JavaScript passes), an
 *   optional client identity, and the name to verify (DNS name or IP address).
 * Policy, as src/connector/tls-policy.ts: TLS 1.2-1.3, the suites and groups JavaScript passes
 * (pinned, not OpenSSL's defaults), server preference, no renegotiation, no compression;
 * SSL_MODE_RELEASE_BUFFERS so an idle connection holds no record buffers.
 * Tickets: the engine's keys (48 bytes as Node's setTicketKeys: name, HMAC-SHA256 key,
 * AES-128-CBC key), so tickets from either engine resume on the other; the previous set still
 * decrypts (and asks for a renewed ticket).
 * Ownership: a snapshot is reference-counted: JavaScript's id holds one (until tlsRelease),
 * a listener one, every conn that uses it one; SSL objects hold their own on SSL_CTXs.
 * Everything is freed at the last unref. Error-queue discipline: every function that calls
 * OpenSSL leaves the thread's error queue empty (Node uses the same queue on this thread). */
#include "engine.h"
#include <dlfcn.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tls.h"

struct tls_identity {
  char *name;   /* lowercase, no trailing dot; "*.example.com" for a wildcard */
  SSL_CTX *ctx;
};

struct tls_server {
  int refs;
  SSL_CTX *front;
  struct tls_identity *ids;
  size_t nids;
  int has_default;
  uint8_t *alpn;               /* wire format, or NULL */
  size_t alpn_len;
  uint32_t handshake_ms;
};

struct tls_client {
  int refs;
  SSL_CTX *ctx;
  char *name;                  /* dnsName */
  int name_is_ip;
};

/* ---- the symbols ---- */

static const char *const NEEDED[] = {
  "OpenSSL_version_num", "SSL_CTX_new", "SSL_CTX_free", "SSL_CTX_ctrl", "SSL_CTX_callback_ctrl",
  "SSL_CTX_set_options", "SSL_CTX_set_cipher_list", "SSL_CTX_set_ciphersuites", "SSL_CTX_set_verify",
  "SSL_CTX_use_certificate", "SSL_CTX_use_PrivateKey", "SSL_CTX_check_private_key", "SSL_CTX_get_cert_store",
  "SSL_CTX_add_client_CA", "SSL_CTX_set_session_id_context", "SSL_CTX_set_timeout", "SSL_CTX_set_alpn_select_cb",
  "SSL_CTX_set_tlsext_ticket_key_evp_cb", "SSL_new", "SSL_free", "SSL_set_fd", "SSL_set_ex_data", "SSL_get_ex_data",
  "SSL_set_SSL_CTX", "SSL_get_servername", "SSL_select_next_proto", "SSL_get0_alpn_selected", "SSL_do_handshake",
  "SSL_set_accept_state", "SSL_set_connect_state", "SSL_read_ex", "SSL_write_ex", "SSL_shutdown", "SSL_get_error",
  "SSL_has_pending", "SSL_peek_ex", "SSL_get_peer_finished", "SSL_session_reused", "SSL_ctrl", "SSL_set1_host", "SSL_get0_param", "SSL_get_verify_result",
  "SSL_get0_peer_certificate", "TLS_server_method", "TLS_client_method", "CRYPTO_get_ex_new_index",
  "X509_VERIFY_PARAM_set1_ip_asc", "X509_STORE_add_cert", "X509_free", "EVP_PKEY_free", "BIO_new_mem_buf",
  "BIO_free", "PEM_read_bio_X509", "PEM_read_bio_PrivateKey", "ERR_clear_error", "ERR_peek_last_error",
  "ERR_peek_error", "ERR_error_string_n", "EVP_aes_128_cbc", "EVP_EncryptInit_ex", "EVP_DecryptInit_ex",
  "EVP_MAC_CTX_set_params", "OSSL_PARAM_construct_octet_string", "OSSL_PARAM_construct_utf8_string",
  "OSSL_PARAM_construct_end", "RAND_bytes",
};

const char *tls_unavailable(void) {
  static char why[160];
  for (size_t i = 0; i < sizeof(NEEDED) / sizeof(NEEDED[0]); i++) {
    if (!dlsym(RTLD_DEFAULT, NEEDED[i])) {
      snprintf(why, sizeof(why), "this node does not export %s to addons", NEEDED[i]);
      return why;
    }
  }
  unsigned long v = OpenSSL_version_num();
  if (v < 0x30000000UL) {
    snprintf(why, sizeof(why), "this node carries OpenSSL %lx; TLS on the native engine needs 3.x", v);
    return why;
  }
  return NULL;
}

/* ---- shared pieces ---- */

static int conn_index = -1;
static pthread_once_t conn_index_once = PTHREAD_ONCE_INIT;

static void conn_index_make(void) {
  conn_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, NULL, NULL);
  ERR_clear_error();
}

/* One slot for every engine of the process (Node environments on other threads included). */
int tls_conn_index(void) {
  if (pthread_once(&conn_index_once, conn_index_make) != 0) return -1;
  return conn_index;
}

/* The last OpenSSL error into `err` (for JavaScript's message), then an empty queue. */
static void take_error(char *err, size_t errlen, const char *what) {
  unsigned long code = ERR_peek_last_error();
  char buf[200] = "";
  if (code) ERR_error_string_n(code, buf, sizeof(buf));
  snprintf(err, errlen, "%s%s%s", what, code ? ": " : "", buf);
  ERR_clear_error();
}

static SSL_CTX *policy_ctx(const SSL_METHOD *m, const tls_policy_t *p, int server, char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(m);
  if (!ctx) {
    take_error(err, errlen, "SSL_CTX_new");
    return NULL;
  }
  uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF;
  if (server) opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
  SSL_CTX_set_options(ctx, opts);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  /* Read as much as the socket has, not a record header then its body (two syscalls a record);
   * what OpenSSL then holds is read before waiting (tls-conn.c reads to WANT_READ). */
  SSL_CTX_set_read_ahead(ctx, 1);
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_cipher_list(ctx, p->ciphers12) || !SSL_CTX_set_ciphersuites(ctx, p->suites13) ||
      !SSL_CTX_set1_groups_list(ctx, p->groups)) {
    take_error(err, errlen, "the TLS policy");
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Every certificate in `pem` into the context's trust store (and its subject into the CA list
 * sent in a CertificateRequest when `ca_list`); -1 if none parses. */
static int add_trust(SSL_CTX *ctx, const tls_bytes_t *pem, int ca_list, char *err, size_t errlen) {
  BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
  if (!bio) {
    take_error(err, errlen, "trust");
    return -1;
  }
  int n = 0;
  X509 *x;
  X509_STORE *store = SSL_CTX_get_cert_store(ctx);
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    int ok = X509_STORE_add_cert(store, x) && (!ca_list || SSL_CTX_add_client_CA(ctx, x));
    X509_free(x);
    if (!ok) {
      BIO_free(bio);
      take_error(err, errlen, "trust: a certificate cannot be added");
      return -1;
    }
    n++;
  }
  BIO_free(bio);
  ERR_clear_error(); /* the end of the PEM stream leaves a "no start line" behind */
  if (n == 0) {
    snprintf(err, errlen, "trust: no PEM certificate");
    return -1;
  }
  return 0;
}

/* The leaf, its chain and the key of an identity into `ctx`; -1 on a bad one. */
static int use_identity(SSL_CTX *ctx, const tls_bytes_t *cert, const tls_bytes_t *key, char *err, size_t errlen) {
  BIO *bio = BIO_new_mem_buf(cert->data, (int)cert->len);
  if (!bio) {
    take_error(err, errlen, "certificate");
    return -1;
  }
  X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  if (!leaf || !SSL_CTX_use_certificate(ctx, leaf)) {
    X509_free(leaf);
    BIO_free(bio);
    take_error(err, errlen, "certificate");
    return -1;
  }
  X509_free(leaf);
  X509 *x;
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (!SSL_CTX_add1_chain_cert(ctx, x)) {
      X509_free(x);
      BIO_free(bio);
      take_error(err, errlen, "certificate chain");
      return -1;
    }
    X509_free(x);
  }
  BIO_free(bio);
  ERR_clear_error();
  bio = BIO_new_mem_buf(key->data, (int)key->len);
  EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  int ok = pk && SSL_CTX_use_PrivateKey(ctx, pk) && SSL_CTX_check_private_key(ctx);
  EVP_PKEY_free(pk);
  if (!ok) {
    take_error(err, errlen, "private key");
    return -1;
  }
  return 0;
}

/* ---- tickets ---- */

static int on_ticket(SSL *s, unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc) {
  conn_t *c = SSL_get_ex_data(s, tls_conn_index());
  if (!c || c->e->nticket_keys == 0) return enc ? -1 : 0;
  engine_t *e = c->e;
  const uint8_t *k = NULL;
  int ret = 1;
  if (enc) {
    k = e->ticket_keys[0];
    memcpy(key_name, k, 16);
    if (RAND_bytes(iv, 16) != 1) return -1;
  } else {
    for (int i = 0; i < e->nticket_keys && !k; i++) {
      if (memcmp(key_name, e->ticket_keys[i], 16) == 0) {
        k = e->ticket_keys[i];
        ret = i == 0 ? 1 : 2; /* the previous set: accept, and issue a ticket under the current one */
      }
    }
    if (!k) return 0; /* unknown key: a full handshake */
  }
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(k + 16), 16);
  params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
  params[2] = OSSL_PARAM_construct_end();
  int ok = enc ? EVP_EncryptInit_ex(ectx, EVP_aes_128_cbc(), NULL, k + 32, iv) : EVP_DecryptInit_ex(ectx, EVP_aes_128_cbc(), NULL, k + 32, iv);
  if (ok != 1 || EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
  return ret;
}

void tls_set_ticket_keys(engine_t *e, const uint8_t keys[48]) {
  if (e->nticket_keys > 0 && memcmp(e->ticket_keys[0], keys, 48) == 0) return;
  if (e->nticket_keys > 0) {
    memcpy(e->ticket_keys[1], e->ticket_keys[0], 48);
    e->nticket_keys = 2;
  } else e->nticket_keys = 1;
  memcpy(e->ticket_keys[0], keys, 48);
}

static int ensure_ticket_keys(engine_t *e) {
  if (e->nticket_keys > 0) return 0;
  uint8_t k[48];
  if (RAND_bytes(k, sizeof(k)) != 1) {
    ERR_clear_error();
    return -1;
  }
  tls_set_ticket_keys(e, k);
  return 0;
}

/* ---- termination ---- */

/* The identity context for `name` (exact, then one-label wildcard), or NULL. */
static SSL_CTX *identity_for(const tls_server_t *t, const char *name) {
  char low[256];
  size_t n = strnlen(name, sizeof(low));
  if (n == 0 || n >= sizeof(low)) return NULL;
  for (size_t i = 0; i < n; i++) low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
  low[n] = '\0';
  if (low[n - 1] == '.') low[--n] = '\0';
  for (size_t i = 0; i < t->nids; i++) if (strcmp(t->ids[i].name, low) == 0) return t->ids[i].ctx;
  const char *dot = strchr(low, '.');
  if (dot && dot > low) {
    for (size_t i = 0; i < t->nids; i++) {
      const char *w = t->ids[i].name;
      if (w[0] == '*' && strcmp(w + 1, dot) == 0) return t->ids[i].ctx;
    }
  }
  return NULL;
}

int tls_server_identity_index(const tls_server_t *t, const char *name) {
  SSL_CTX *ctx = identity_for(t, name);
  for (size_t i = 0; ctx && i < t->nids; i++) if (t->ids[i].ctx == ctx) return (int)i;
  return -1;
}

static int on_servername(SSL *s, int *alert, void *arg) {
  tls_server_t *t = arg;
  conn_t *c = SSL_get_ex_data(s, tls_conn_index());
  const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
  if (c && name && !c->sni) {
    size_t n = strnlen(name, 256);
    if (n > 0 && n < 256) {
      c->sni = malloc(n + 1);
      if (c->sni) {
        memcpy(c->sni, name, n);
        c->sni[n] = '\0';
      }
    }
  }
  SSL_CTX *id = name ? identity_for(t, name) : NULL;
  if (id) {
    if (SSL_set_SSL_CTX(s, id) != id) {
      *alert = SSL_AD_INTERNAL_ERROR;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
  }
  if (t->has_default) return SSL_TLSEXT_ERR_OK;
  if (c) c->tls_cause = TF_UNKNOWN_SNI;
  *alert = SSL_AD_UNRECOGNIZED_NAME;
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int on_alpn(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in, unsigned int inlen, void *arg) {
  tls_server_t *t = arg;
  (void)s;
  if (!t->alpn) return SSL_TLSEXT_ERR_NOACK;
  unsigned char *sel = NULL;
  /* Our order first (server preference), as Node's ALPNProtocols selection does. */
  if (SSL_select_next_proto(&sel, outlen, t->alpn, (unsigned int)t->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol (RFC 7301) */
  }
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* A server context with everything but the certificate: policy, callbacks, client auth. */
static SSL_CTX *server_ctx(tls_server_t *t, const tls_server_opts_t *o, char *err, size_t errlen) {
  SSL_CTX *ctx = policy_ctx(TLS_server_method(), &o->policy, 1, err, errlen);
  if (!ctx) return NULL;
  if (SSL_CTX_set_session_id_context(ctx, o->sid_ctx, o->sid_ctx_len) != 1 ||
      SSL_CTX_set_tlsext_servername_callback(ctx, on_servername) != 1 ||
      SSL_CTX_set_tlsext_servername_arg(ctx, t) != 1 ||
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket) != 1) {
    take_error(err, errlen, "server context");
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_timeout(ctx, o->session_timeout_s);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(ctx, 10000); /* as the node engine's cache: 10 000 sessions, 5 minutes */
  SSL_CTX_set_alpn_select_cb(ctx, on_alpn, t);
  if (o->client_auth) {
    if (add_trust(ctx, &o->client_ca, 1, err, errlen) != 0) {
      SSL_CTX_free(ctx);
      return NULL;
    }
    /* required: no certificate fails the handshake; optional: none is fine, but one sent must
     * verify (a bad one fails the handshake with a bad_certificate alert: cause client_cert). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (o->client_auth == 2 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
  }
  return ctx;
}

void tls_server_unref(tls_server_t *t) {
  if (!t || --t->refs > 0) return;
  for (size_t i = 0; i < t->nids; i++) {
    SSL_CTX_free(t->ids[i].ctx);
    free(t->ids[i].name);
  }
  free(t->ids);
  SSL_CTX_free(t->front);
  free(t->alpn);
  free(t);
}

void tls_server_ref(tls_server_t *t) {
  t->refs++;
}

tls_server_t *tls_server_new(engine_t *e, const tls_server_opts_t *o, char *err, size_t errlen) {
  if (ensure_ticket_keys(e) != 0) {
    snprintf(err, errlen, "no random bytes for ticket keys");
    return NULL;
  }
  tls_server_t *t = calloc(1, sizeof(*t));
  if (!t) {
    snprintf(err, errlen, "%s", strerror(ENOMEM));
    return NULL;
  }
  t->refs = 1;
  t->handshake_ms = o->handshake_ms;
  t->has_default = o->def.cert.len > 0;
  if (o->alpn.len > 0) {
    t->alpn = malloc(o->alpn.len);
    if (!t->alpn) goto nomem;
    memcpy(t->alpn, o->alpn.data, o->alpn.len);
    t->alpn_len = o->alpn.len;
  }
  t->front = server_ctx(t, o, err, errlen);
  if (!t->front) goto fail;
  if (t->has_default && use_identity(t->front, &o->def.cert, &o->def.key, err, errlen) != 0) goto fail;
  if (o->nids > 0) {
    t->ids = calloc(o->nids, sizeof(*t->ids));
    if (!t->ids) goto nomem;
  }
  for (size_t i = 0; i < o->nids; i++) {
    const tls_identity_opts_t *id = &o->ids[i];
    t->ids[i].name = strndup(id->name, 255);
    if (!t->ids[i].name) goto nomem;
    t->nids = i + 1;
    t->ids[i].ctx = server_ctx(t, o, err, errlen);
    if (!t->ids[i].ctx) goto fail;
    if (use_identity(t->ids[i].ctx, &id->cert, &id->key, err, errlen) != 0) goto fail;
  }
  ERR_clear_error();
  return t;
nomem:
  snprintf(err, errlen, "%s", strerror(ENOMEM));
fail:
  tls_server_unref(t);
  ERR_clear_error();
  return NULL;
}

uint32_t tls_server_handshake_ms(const tls_server_t *t) {
  return t->handshake_ms;
}

int tls_server_has_default(const tls_server_t *t) {
  return t->has_default;
}

SSL *tls_server_ssl(tls_server_t *t, conn_t *c) {
  SSL *s = SSL_new(t->front);
  if (!s || !SSL_set_fd(s, c->cfd) || !SSL_set_ex_data(s, tls_conn_index(), c)) {
    if (s) SSL_free(s);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_accept_state(s);
  return s;
}

/* ---- origination ---- */

void tls_client_unref(tls_client_t *t) {
  if (!t || --t->refs > 0) return;
  SSL_CTX_free(t->ctx);
  free(t->name);
  free(t);
}

void tls_client_ref(tls_client_t *t) {
  t->refs++;
}

tls_client_t *tls_client_new(const tls_client_opts_t *o, char *err, size_t errlen) {
  tls_client_t *t = calloc(1, sizeof(*t));
  if (!t) {
    snprintf(err, errlen, "%s", strerror(ENOMEM));
    return NULL;
  }
  t->refs = 1;
  t->name = strndup(o->name, 255);
  t->name_is_ip = o->name_is_ip;
  t->ctx = t->name ? policy_ctx(TLS_client_method(), &o->policy, 0, err, errlen) : NULL;
  if (!t->name) snprintf(err, errlen, "%s", strerror(ENOMEM));
  if (!t->ctx || add_trust(t->ctx, &o->trust, 0, err, errlen) != 0 ||
      (o->id.cert.len > 0 && use_identity(t->ctx, &o->id.cert, &o->id.key, err, errlen) != 0)) {
    tls_client_unref(t);
    ERR_clear_error();
    return NULL;
  }
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  ERR_clear_error();
  return t;
}

SSL *tls_client_ssl(tls_client_t *t, conn_t *c) {
  SSL *s = SSL_new(t->ctx);
  int ok = s && SSL_set_fd(s, c->bfd) && SSL_set_ex_data(s, tls_conn_index(), c);
  /* The name to verify: a DNS name (also sent as SNI) or an IP address (IP SANs only, no SNI). */
  if (ok && t->name_is_ip) ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), t->name);
  else if (ok) ok = SSL_set_tlsext_host_name(s, t->name) && SSL_set1_host(s, t->name);
  if (!ok) {
    if (s) SSL_free(s);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_connect_state(s);
  return s;
}

/* ---- the engine's snapshots ---- */

void tls_engine_destroy(engine_t *e) {
  for (size_t i = 0; i < e->ntls_servers; i++) tls_server_unref(e->tls_servers[i]);
  for (size_t i = 0; i < e->ntls_clients; i++) tls_client_unref(e->tls_clients[i]);
  free(e->tls_servers);
  free(e->tls_clients);
  e->tls_servers = NULL;
  e->tls_clients = NULL;
  e->ntls_servers = e->ntls_clients = 0;
  memset(e->ticket_keys, 0, sizeof(e->ticket_keys));
  e->nticket_keys = 0;
}
