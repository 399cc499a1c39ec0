/* An engine's life on a libuv loop, apart from Node: engine_init sets it up on the loop it
 * will run on (its epoll set and the uv_poll_t that reads it, the flush hooks, the heap trim
 * timer, the reserve fd), engine_close ends everything it owns (connections, listeners, pipes,
 * TLS snapshots, buffers, port holds, the epoll fd, the reserve fd, its handles). napi.c runs
 * one per Node environment and hands its records to JavaScript (e->deliver); the C harness
 * (test/harness.c) runs one with a control plane of its own, without Node.
 * Ownership: the engine's memory is its creator's; what engine_close leaves (the slot tables,
 * conns whose handles are still closing) goes with the loop's last turn or the process. */
#include "engine.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

int engine_init(engine_t *e, uv_loop_t *loop) {
  e->loop = loop;
  e->budget = DEFAULT_BUDGET;
  e->reserve_fd = -1;
  e->epfd = -1;
  if (uv_check_init(loop, &e->flush_check) != 0 || uv_idle_init(loop, &e->flush_idle) != 0 || heap_init(e) != 0) return -1;
  e->flush_check.data = e;
  e->flush_idle.data = e;
  uv_unref((uv_handle_t *)&e->flush_check);
  uv_unref((uv_handle_t *)&e->flush_idle);
  e->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* -1 is survivable: listener.c then has no reserve */
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) return -1;
  if (uv_poll_init(loop, &e->ep_poll, e->epfd) != 0) return -1;
  e->ep_poll.data = e;
  if (uv_poll_start(&e->ep_poll, UV_READABLE, engine_on_epoll) != 0) return -1;
  uv_unref((uv_handle_t *)&e->ep_poll);
  return 0;
}

int engine_add_listener(engine_t *e, listener_t *l) {
  listener_t **ls = realloc(e->listeners, (e->nlisteners + 1) * sizeof(*ls));
  if (!ls) return ENOMEM;
  e->listeners = ls;
  l->id = (uint32_t)e->nlisteners;
  e->listeners[e->nlisteners++] = l;
  return 0;
}

void engine_close(engine_t *e) {
  for (size_t i = 0; i < e->nconns_cap; i++) if (e->conns[i]) conn_close(e->conns[i], R_DONE, 0, 0);
  for (size_t i = 0; i < e->nlisteners; i++) if (e->listeners[i] && !e->listeners[i]->closing) listener_close(e->listeners[i]);
  pipe_pool_destroy(&e->pipes);
  if (e->ntls_servers || e->ntls_clients) tls_engine_destroy(e); /* OpenSSL only where TLS ran */
  copy_destroy(e);
  heap_destroy(e);
  port_release_all(e);
  uv_close((uv_handle_t *)&e->ep_poll, NULL);
  if (close(e->epfd) != 0) fprintf(stderr, "linkerd-tcp engine: close of the epoll fd failed\n");
  if (e->reserve_fd >= 0 && close(e->reserve_fd) != 0) fprintf(stderr, "linkerd-tcp engine: close of the reserve fd failed\n");
  e->reserve_fd = -1;
  uv_close((uv_handle_t *)&e->flush_check, NULL);
  uv_close((uv_handle_t *)&e->flush_idle, NULL);
}
