/* Small Node-API helpers the API files (napi.c, napi-io.c, napi-tls.c) share: the engine of an
 * environment, a number or undefined for JavaScript (NULL when Node-API failed: the caller
 * returns it, and Node-API raises the pending error), and an errno thrown as an Error with its
 * code. No state, nothing owned. */
#ifndef LINKERD_TCP_NAPI_UTIL_H
#define LINKERD_TCP_NAPI_UTIL_H
#include "engine.h"
#include <stdio.h>
#include <string.h>

static inline engine_t *engine_of(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok) return NULL;
  return data;
}

static inline napi_value num(napi_env env, double d) {
  napi_value v;
  return napi_create_double(env, d, &v) == napi_ok ? v : NULL;
}

/* Throws Error(`what: strerror`) with code (EADDRINUSE…) and errno (negative, as Node's); NULL. */
static inline napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
  napi_value code, text, error, num;
  if (napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok) return NULL;
  if (napi_create_error(env, code, text, &error) != napi_ok) return NULL;
  if (napi_create_int32(env, -err, &num) != napi_ok || napi_set_named_property(env, error, "errno", num) != napi_ok) return NULL;
  if (napi_throw(env, error) != napi_ok) return NULL;
  return NULL;
}

static inline napi_value undef(napi_env env) {
  napi_value v;
  return napi_get_undefined(env, &v) == napi_ok ? v : NULL;
}

/* napi-io.c: ioStart, ioPublish, ioStop, ioCut, ioStats, ioLoad (the native I/O threads). */
napi_status napi_io_define(napi_env env, napi_value exports);

#endif
