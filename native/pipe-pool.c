/* Pooled kernel pipes, as HAProxy's pipe.c: a connection's direction takes a pipe only
 * while bytes are in flight and gives it back once it is empty, so idle connections hold
 * no pipe fds. Invariants: every pipe in the pool is empty and non-blocking; a pipe given
 * back non-empty (its connection died with bytes in it) is closed, never pooled; the pool
 * keeps at most POOL_MAX spare pipes and closes the rest. */
#include "engine.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define POOL_MAX 256

int pipe_get(pipe_pool_t *p, int *r, int *w) {
  if (p->n > 0) {
    p->n--;
    *r = p->fds[2 * p->n];
    *w = p->fds[2 * p->n + 1];
    p->in_use++;
    return 0;
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -errno;
  *r = fds[0];
  *w = fds[1];
  p->in_use++;
  p->created++;
  return 0;
}

static void close_pair(pipe_pool_t *p, int r, int w) {
  /* close() of a pipe end cannot fail in a way we could act on (EINTR still closes on Linux). */
  if (close(r) != 0 && errno != EINTR) errno = 0;
  if (close(w) != 0 && errno != EINTR) errno = 0;
  p->closed++;
}

void pipe_put(pipe_pool_t *p, int r, int w, int empty) {
  p->in_use--;
  if (!empty || p->n >= POOL_MAX) {
    close_pair(p, r, w);
    return;
  }
  if (p->n == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    int *fds = realloc(p->fds, cap * 2 * sizeof(int));
    if (fds == NULL) {
      close_pair(p, r, w);
      return;
    }
    p->fds = fds;
    p->cap = cap;
  }
  p->fds[2 * p->n] = r;
  p->fds[2 * p->n + 1] = w;
  p->n++;
}

void pipe_pool_destroy(pipe_pool_t *p) {
  for (size_t i = 0; i < p->n; i++) close_pair(p, p->fds[2 * i], p->fds[2 * i + 1]);
  p->n = 0;
  free(p->fds);
  p->fds = NULL;
  p->cap = 0;
}
