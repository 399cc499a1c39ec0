/* Port holds for the primary of several worker processes (src/cluster/ports.ts). A hold
 * checks that ip:port is free, by binding it without SO_REUSEPORT (which fails while
 * anything listens there or holds it; port 0 gets a concrete one), then sets SO_REUSEPORT on that
 * same bound socket and never listens on it. The workers' listeners (SO_REUSEPORT, same
 * user) bind beside it; connections only ever reach listening sockets; and nothing else,
 * an outgoing connection's ephemeral port included, can take the port between the check
 * and the workers' binds, or while every worker is being replaced. No window: the socket
 * that checked is the socket that holds.
 * Ownership: each held fd belongs to its slot in e->holds (an index JavaScript knows as the
 * hold's id) until port_release() or the env's cleanup closes it; on every failure path
 * the socket is closed here before returning. */
#include "engine.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(int fd, int err) {
  if (close(fd) != 0) errno = 0;
  return -err;
}

/* A free slot in e->holds (grown by one when none is free), or -ENOMEM. */
static int free_slot(engine_t *e) {
  for (size_t i = 0; i < e->nholds; i++) if (e->holds[i] < 0) return (int)i;
  if (e->nholds >= 65536) return -ENOMEM;
  int *h = realloc(e->holds, (e->nholds + 1) * sizeof(*h));
  if (!h) return -ENOMEM;
  e->holds = h;
  e->holds[e->nholds] = -1;
  return (int)e->nholds++;
}

int port_hold(engine_t *e, const char *host, int port, int *port_out) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (port < 0 || port > 65535 || addr_fill(host, port, &ss, &len) != 0) return -EINVAL;
  int slot = free_slot(e);
  if (slot < 0) return slot;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  /* Without SO_REUSEADDR first: then no other socket can bind beside the hold, whatever its
   * options. Connections in TIME_WAIT on the port (a restart right after serving) refuse
   * that bind, so on EADDRINUSE try again with SO_REUSEADDR, as libuv binds every listener:
   * TIME_WAIT no longer counts, a socket listening there still does, and the hold still
   * keeps outgoing connections and sockets without SO_REUSEADDR off the port. */
  if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
    if (errno != EADDRINUSE) return fail(fd, errno);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) return fail(fd, errno);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) return fail(fd, errno);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) return fail(fd, errno);
  int p = sock_port(fd);
  if (p < 0) return fail(fd, -p);
  e->holds[slot] = fd;
  *port_out = p;
  return slot;
}

int port_release(engine_t *e, int id) {
  if (id < 0 || (size_t)id >= e->nholds || e->holds[id] < 0) return ENOENT;
  int fd = e->holds[id];
  e->holds[id] = -1;
  return close(fd) == 0 ? 0 : errno;
}

void port_release_all(engine_t *e) {
  for (size_t i = 0; i < e->nholds; i++) {
    if (e->holds[i] >= 0 && close(e->holds[i]) != 0) errno = 0;
    e->holds[i] = -1;
  }
}
