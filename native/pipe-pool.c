/* Pooled kernel pipes, as HAProxy's pipe.c: a connection's direction takes a pipe only
 * while bytes are in flight and gives it back once it is empty, so idle connections hold
 * no pipe fds. Invariants: every pipe in the pool is empty and non-blocking; a pipe given
 * back non-empty (its connection died with bytes in it) is closed, never pooled; the pool
 * keeps at most POOL_MAX spare pipes and closes the rest. New pipes ask for PIPE_SIZE
 * (fewer splices per byte on bulk streams); each keeps the capacity it actually got.
 * Budget: `bytes` is the capacity of every pipe open (held or pooled), which is what the
 * kernel counts against the user's pipe quota (fs.pipe-user-pages-soft: past it, an
 * unprivileged user's new pipes get 8 KiB and F_SETPIPE_SZ fails); no new pipe is made past
 * the caller's limit (ENOBUFS), and a pipe given back while over it is closed, not pooled. */
#include "engine.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define POOL_MAX 256

int pipe_get(pipe_pool_t *p, size_t limit, int *r, int *w, size_t *cap) {
  if (p->n > 0) {
    p->n--;
    *r = p->fds[3 * p->n];
    *w = p->fds[3 * p->n + 1];
    *cap = (size_t)p->fds[3 * p->n + 2];
    p->in_use++;
    return 0;
  }
  if (p->bytes + PIPE_SIZE > limit) return -ENOBUFS;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -errno;
  /* A larger pipe may be refused (pipe-max-size, the user's pipe quota): keep what we got. */
  int size = fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
  if (size < 0) size = fcntl(fds[1], F_GETPIPE_SZ);
  p->pipe_size = size > 0 ? (size_t)size : 65536;
  *cap = p->pipe_size;
  p->bytes += p->pipe_size;
  *r = fds[0];
  *w = fds[1];
  p->in_use++;
  p->created++;
  return 0;
}

static void close_pair(pipe_pool_t *p, int r, int w, size_t cap) {
  /* close() of a pipe end cannot fail in a way we could act on (EINTR still closes on Linux). */
  if (close(r) != 0 && errno != EINTR) errno = 0;
  if (close(w) != 0 && errno != EINTR) errno = 0;
  p->closed++;
  p->bytes -= cap;
}

void pipe_put(pipe_pool_t *p, size_t limit, int r, int w, size_t cap, int empty) {
  p->in_use--;
  if (!empty || p->n >= POOL_MAX || p->bytes > limit) {
    close_pair(p, r, w, cap);
    return;
  }
  if (p->n == p->cap) {
    size_t ncap = p->cap ? p->cap * 2 : 16;
    int *fds = realloc(p->fds, ncap * 3 * sizeof(int));
    if (fds == NULL) {
      close_pair(p, r, w, cap);
      return;
    }
    p->fds = fds;
    p->cap = ncap;
  }
  p->fds[3 * p->n] = r;
  p->fds[3 * p->n + 1] = w;
  p->fds[3 * p->n + 2] = (int)cap;
  p->n++;
}

void pipe_trim(pipe_pool_t *p, size_t limit) {
  while (p->n > 0 && p->bytes > limit) {
    p->n--;
    close_pair(p, p->fds[3 * p->n], p->fds[3 * p->n + 1], (size_t)p->fds[3 * p->n + 2]);
  }
}

void pipe_pool_destroy(pipe_pool_t *p) {
  for (size_t i = 0; i < p->n; i++) close_pair(p, p->fds[3 * i], p->fds[3 * i + 1], (size_t)p->fds[3 * i + 2]);
  p->n = 0;
  free(p->fds);
  p->fds = NULL;
  p->cap = 0;
}
