/* Small Node-API helpers the API files (napi.c, napi-io.c, napi-tls.c) share: the engine of an
 * environment, and a number or undefined for JavaScript (NULL when Node-API failed: the
 * caller returns it, and Node-API raises the pending error). No state, nothing owned. */
#ifndef LINKERD_TCP_NAPI_UTIL_H
#define LINKERD_TCP_NAPI_UTIL_H
#include "engine.h"

static inline engine_t *engine_of(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok) return NULL;
  return data;
}

static inline napi_value num(napi_env env, double d) {
  napi_value v;
  return napi_create_double(env, d, &v) == napi_ok ? v : NULL;
}

static inline napi_value undef(napi_env env) {
  napi_value v;
  return napi_get_undefined(env, &v) == napi_ok ? v : NULL;
}

/* napi-io.c: ioStart, ioPublish, ioStop, ioCut, ioStats, ioLoad (the native I/O threads). */
napi_status napi_io_define(napi_env env, napi_value exports);

#endif
