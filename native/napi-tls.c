/* The JavaScript face of the TLS parts (Node-API 8): build and release context snapshots,
 * give a listener its termination snapshot, start a client's handshake, read what it agreed,
 * set the ticket keys. No JavaScript is called during a handshake: everything a handshake
 * decides comes from the snapshot (tls-ctx.c).
 * Ownership: e->tls_servers / e->tls_clients hold JavaScript's reference per id until
 * tlsServerRelease / tlsClientRelease; the PEM bytes passed in are borrowed for the call. */
#include "engine.h"
#include "napi-util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tls.h"

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)
#define STR_MAX 2048



static napi_value str(napi_env env, const char *s, size_t len) {
  napi_value v;
  return napi_create_string_utf8(env, s, len, &v) == napi_ok ? v : NULL;
}

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* A named property of `obj`, or NULL when absent or undefined. */
static napi_value prop(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return NULL;
  return t == napi_undefined || t == napi_null ? NULL : v;
}

/* A Uint8Array (Buffers are) into `out`, borrowed for the call; -1 when it is not one. */
static int bytes_of(napi_env env, napi_value v, tls_bytes_t *out) {
  bool is_ta = false;
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return -1;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok || type != napi_uint8_array) return -1;
  if (length > 16 * 1024 * 1024) return -1;
  out->data = data;
  out->len = length;
  return 0;
}

/* A Uint8Array property into `out`; absent: empty. -1 when not a Uint8Array. */
static int prop_bytes(napi_env env, napi_value obj, const char *name, tls_bytes_t *out) {
  out->data = NULL;
  out->len = 0;
  napi_value v = prop(env, obj, name);
  return v ? bytes_of(env, v, out) : 0;
}

/* A string property into buf (required). */
static int prop_str(napi_env env, napi_value obj, const char *name, char *buf, size_t size) {
  napi_value v = prop(env, obj, name);
  size_t len;
  return v && napi_get_value_string_utf8(env, v, buf, size, &len) == napi_ok && len < size - 1 ? 0 : -1;
}

static int prop_num(napi_env env, napi_value obj, const char *name, double lo, double hi, double *out) {
  napi_value v = prop(env, obj, name);
  return v && napi_get_value_double(env, v, out) == napi_ok && *out >= lo && *out <= hi ? 0 : -1;
}

/* The policy strings (ciphers12, suites13, groups) into bufs. */
static int policy(napi_env env, napi_value o, char bufs[3][STR_MAX], tls_policy_t *p) {
  if (prop_str(env, o, "ciphers12", bufs[0], STR_MAX) || prop_str(env, o, "suites13", bufs[1], STR_MAX) ||
      prop_str(env, o, "groups", bufs[2], STR_MAX)) return -1;
  p->ciphers12 = bufs[0];
  p->suites13 = bufs[1];
  p->groups = bufs[2];
  return 0;
}

/* Stores a new snapshot under the first free id of a table; the id, or -1 (ENOMEM). */
static int store(void ***table, size_t *n, void *item) {
  for (size_t i = 0; i < *n; i++) {
    if (!(*table)[i]) {
      (*table)[i] = item;
      return (int)i;
    }
  }
  void **t = realloc(*table, (*n + 1) * sizeof(void *));
  if (!t) return -1;
  *table = t;
  t[*n] = item;
  return (int)(*n)++;
}

static napi_value js_tls_available(napi_env env, napi_callback_info info) {
  (void)info;
  const char *why = tls_unavailable();
  return why ? str(env, why, NAPI_AUTO_LENGTH) : undef(env);
}

/* tlsServer({ciphers12, suites13, groups, cert?, key?, identities: [{name, cert, key}], alpn?,
 * clientAuth: 0|1|2, clientCa?, sidCtx, sessionTimeoutS, handshakeMs}) → id; throws with
 * OpenSSL's reason on bad material. */
static napi_value js_tls_server(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value o;
  CHECK(napi_get_cb_info(env, info, &argc, &o, NULL, NULL));
  engine_t *e = engine_of(env);
  if (!e || argc < 1) return fail(env, "linkerd-tcp engine: tlsServer(options)");
  char pol[3][STR_MAX];
  tls_server_opts_t so;
  memset(&so, 0, sizeof(so));
  double auth, timeout, hs;
  tls_bytes_t sid;
  if (policy(env, o, pol, &so.policy) || prop_bytes(env, o, "cert", &so.def.cert) || prop_bytes(env, o, "key", &so.def.key) ||
      prop_bytes(env, o, "alpn", &so.alpn) || prop_bytes(env, o, "clientCa", &so.client_ca) || prop_bytes(env, o, "sidCtx", &sid) ||
      prop_num(env, o, "clientAuth", 0, 2, &auth) || prop_num(env, o, "sessionTimeoutS", 1, 86400 * 7, &timeout) ||
      prop_num(env, o, "handshakeMs", 0, UINT32_MAX, &hs) || sid.len == 0 || sid.len > 32 || so.alpn.len > 65535) {
    return fail(env, "linkerd-tcp engine: tlsServer: bad options");
  }
  so.client_auth = (int)auth;
  so.sid_ctx = sid.data;
  so.sid_ctx_len = (unsigned int)sid.len;
  so.session_timeout_s = (long)timeout;
  so.handshake_ms = (uint32_t)hs;
  napi_value ids = prop(env, o, "identities");
  uint32_t n = 0;
  if (ids && napi_get_array_length(env, ids, &n) != napi_ok) return fail(env, "linkerd-tcp engine: tlsServer: identities");
  if (n > 4096) return fail(env, "linkerd-tcp engine: tlsServer: too many identities");
  tls_identity_opts_t *list = n ? calloc(n, sizeof(*list)) : NULL;
  char (*names)[256] = n ? calloc(n, 256) : NULL;
  if (n && (!list || !names)) {
    free(list);
    free(names);
    return fail(env, "linkerd-tcp engine: tlsServer: out of memory");
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value id;
    if (napi_get_element(env, ids, i, &id) != napi_ok || prop_str(env, id, "name", names[i], 256) ||
        prop_bytes(env, id, "cert", &list[i].cert) || prop_bytes(env, id, "key", &list[i].key)) {
      free(list);
      free(names);
      return fail(env, "linkerd-tcp engine: tlsServer: bad identity");
    }
    list[i].name = names[i];
  }
  so.ids = list;
  so.nids = n;
  char err[300];
  tls_server_t *t = tls_server_new(e, &so, err, sizeof(err));
  free(list);
  free(names);
  if (!t) return fail(env, err);
  int slot = store((void ***)&e->tls_servers, &e->ntls_servers, t);
  if (slot < 0) {
    tls_server_unref(t);
    return fail(env, "linkerd-tcp engine: tlsServer: out of memory");
  }
  return num(env, slot);
}

/* tlsClient({ciphers12, suites13, groups, name, nameIsIp, trust, cert?, key?}) → id; throws on bad material. */
static napi_value js_tls_client(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value o;
  CHECK(napi_get_cb_info(env, info, &argc, &o, NULL, NULL));
  engine_t *e = engine_of(env);
  if (!e || argc < 1) return fail(env, "linkerd-tcp engine: tlsClient(options)");
  char pol[3][STR_MAX], name[256];
  tls_client_opts_t co;
  memset(&co, 0, sizeof(co));
  double ip;
  if (policy(env, o, pol, &co.policy) || prop_str(env, o, "name", name, sizeof(name)) || prop_num(env, o, "nameIsIp", 0, 1, &ip) ||
      prop_bytes(env, o, "trust", &co.trust) || prop_bytes(env, o, "cert", &co.id.cert) || prop_bytes(env, o, "key", &co.id.key)) {
    return fail(env, "linkerd-tcp engine: tlsClient: bad options");
  }
  co.name = name;
  co.name_is_ip = ip == 1;
  char err[300];
  tls_client_t *t = tls_client_new(&co, err, sizeof(err));
  if (!t) return fail(env, err);
  int slot = store((void ***)&e->tls_clients, &e->ntls_clients, t);
  if (slot < 0) {
    tls_client_unref(t);
    return fail(env, "linkerd-tcp engine: tlsClient: out of memory");
  }
  return num(env, slot);
}

static int id_arg(napi_env env, napi_value v, size_t n, size_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d >= (double)n) return -1;
  *out = (size_t)d;
  return 0;
}

tls_client_t *tls_client_of(engine_t *e, double id) {
  if (!(id >= 0) || id >= (double)e->ntls_clients) return NULL;
  return e->tls_clients[(size_t)id];
}

#define ARGS(n) \
  size_t argc = n; napi_value argv[n]; \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  engine_t *e = engine_of(env); \
  if (!e || argc < n) return fail(env, "linkerd-tcp engine: bad arguments");

/* tlsServerRelease(id) / tlsClientRelease(id): JavaScript's reference goes; users keep theirs. */
static napi_value js_tls_server_release(napi_env env, napi_callback_info info) {
  ARGS(1)
  size_t i;
  if (id_arg(env, argv[0], e->ntls_servers, &i) == 0 && e->tls_servers[i]) {
    tls_server_unref(e->tls_servers[i]);
    e->tls_servers[i] = NULL;
  }
  return undef(env);
}

static napi_value js_tls_client_release(napi_env env, napi_callback_info info) {
  ARGS(1)
  size_t i;
  if (id_arg(env, argv[0], e->ntls_clients, &i) == 0 && e->tls_clients[i]) {
    tls_client_unref(e->tls_clients[i]);
    e->tls_clients[i] = NULL;
  }
  return undef(env);
}

/* listenerTls(listenerId, serverTlsId) → 0 or an errno: new handshakes on that listener start
 * from this snapshot; handshakes under way and open connections keep theirs. */
static napi_value js_listener_tls(napi_env env, napi_callback_info info) {
  ARGS(2)
  size_t li, ti;
  if (id_arg(env, argv[0], e->nlisteners, &li) != 0 || !e->listeners[li]) return num(env, ENOENT);
  if (id_arg(env, argv[1], e->ntls_servers, &ti) != 0 || !e->tls_servers[ti]) return num(env, EINVAL);
  listener_t *l = e->listeners[li];
  tls_server_ref(e->tls_servers[ti]);
  tls_server_unref(l->tls);
  l->tls = e->tls_servers[ti];
  return num(env, 0);
}

/* tlsStart(connId) → 0 or an errno: the client's handshake begins (OUT_TLS_DONE / OUT_TLS_FAILED follow). */
static napi_value js_tls_start(napi_env env, napi_callback_info info) {
  ARGS(1)
  double id;
  if (napi_get_value_double(env, argv[0], &id) != napi_ok) return num(env, EINVAL);
  conn_t *c = conn_find(e, id);
  return num(env, c ? conn_tls_start(c) : ENOENT);
}

/* tlsInfo(connId) → [sni | undefined, alpn | undefined], or undefined for an unknown conn. */
static napi_value js_tls_info(napi_env env, napi_callback_info info) {
  ARGS(1)
  double id;
  if (napi_get_value_double(env, argv[0], &id) != napi_ok) return undef(env);
  conn_t *c = conn_find(e, id);
  if (!c) return undef(env);
  napi_value arr;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_set_element(env, arr, 0, c->sni ? str(env, c->sni, NAPI_AUTO_LENGTH) : undef(env)));
  const unsigned char *alpn = NULL;
  unsigned int alen = 0;
  if (c->cssl) SSL_get0_alpn_selected(c->cssl, &alpn, &alen);
  CHECK(napi_set_element(env, arr, 1, alen ? str(env, (const char *)alpn, alen) : undef(env)));
  return arr;
}

/* tlsTicketKeys(keys: 48-byte Uint8Array): new tickets under these; the previous set still decrypts. */
static napi_value js_tls_ticket_keys(napi_env env, napi_callback_info info) {
  ARGS(1)
  tls_bytes_t k;
  if (bytes_of(env, argv[0], &k) != 0 || k.len != 48) return fail(env, "linkerd-tcp engine: tlsTicketKeys(48 bytes)");
  tls_set_ticket_keys(e, k.data);
  return undef(env);
}

/* tlsIdentityIndex(serverTlsId, name) → the identity the name selects (index in the list
 * given), or -1: the same table test drives this and src/server/tls.ts identityFor. */
static napi_value js_tls_identity_index(napi_env env, napi_callback_info info) {
  ARGS(2)
  size_t ti;
  char name[512];
  size_t len;
  if (id_arg(env, argv[0], e->ntls_servers, &ti) != 0 || !e->tls_servers[ti] ||
      napi_get_value_string_utf8(env, argv[1], name, sizeof(name), &len) != napi_ok || strlen(name) != len) {
    return num(env, -1); /* a NUL inside: OpenSSL refuses such a server name in a handshake */
  }
  return num(env, tls_server_identity_index(e->tls_servers[ti], name));
}

napi_status napi_tls_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"tlsAvailable", NULL, js_tls_available, NULL, NULL, NULL, napi_default, NULL},
    {"tlsServer", NULL, js_tls_server, NULL, NULL, NULL, napi_default, NULL},
    {"tlsClient", NULL, js_tls_client, NULL, NULL, NULL, napi_default, NULL},
    {"tlsServerRelease", NULL, js_tls_server_release, NULL, NULL, NULL, napi_default, NULL},
    {"tlsClientRelease", NULL, js_tls_client_release, NULL, NULL, NULL, napi_default, NULL},
    {"listenerTls", NULL, js_listener_tls, NULL, NULL, NULL, napi_default, NULL},
    {"tlsStart", NULL, js_tls_start, NULL, NULL, NULL, napi_default, NULL},
    {"tlsInfo", NULL, js_tls_info, NULL, NULL, NULL, napi_default, NULL},
    {"tlsTicketKeys", NULL, js_tls_ticket_keys, NULL, NULL, NULL, napi_default, NULL},
    {"tlsIdentityIndex", NULL, js_tls_identity_index, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
