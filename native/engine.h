/* The native data plane's shared declarations: one engine per Node environment (process
 * or worker thread) and one per native I/O thread, its listeners, its connections, its pipe pool and its outcome batch.
 * An engine runs on one libuv loop (Node's, or an I/O thread's), without locks. Files by job:
 *   listener.c  listen/accept;           conn.c  connect, splice both ways, close;
 *   pipe-pool.c pooled kernel pipes;     timers.c  connect/idle/lifetime deadlines;
 *   napi.c      the JavaScript API;      batch.c   the outcome batch (accepts included), epoll;
 *   peek.c      a client before its backend; port-hold.c the primary's holds on its workers' ports;
 *   tls-ctx.c   TLS contexts (immutable snapshots built from PEM bytes);
 *   tls-conn.c  a connection's TLS handshakes;  copy.c  the buffered pump (TLS, and plain until bulk);
 *   napi-tls.c  the JavaScript API of the TLS parts;  heap.c  malloc_trim once handshakes quiet;
 *   pick.c      the balancer's pick in C (the I/O threads'; pick.h);
 *   engine.c    an engine's setup on a loop and its close (napi.c's, or the C harness's);
 *   io-thread.c native I/O threads, an engine each (io-thread.h, ring.h);  napi-io.c their JavaScript API.
 * Ownership in one place: a conn owns its client fd from accept and its backend fd from
 * socket() until conn_close(); a direction owns a pipe (splice) or a buffer (copy.c) only
 * while bytes are in it; a TLS conn owns its SSL objects and holds one reference on each context
 * snapshot it uses until it is freed; a port hold owns its fd until released. */
#ifndef LINKERD_TCP_ENGINE_H
#define LINKERD_TCP_ENGINE_H
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef struct engine engine_t;
typedef struct listener listener_t;
typedef struct conn conn_t;
typedef struct tls_server tls_server_t; /* tls-ctx.c */
typedef struct tls_client tls_client_t;
struct ssl_st;

/* Close reasons reported by the engine (the JavaScript side maps them to its names). */
enum {
  R_DONE = 0,          /* both directions finished: EOF read and FIN sent each way */
  R_CLIENT_ERROR = 1,  /* the client socket failed (reset, EPIPE, ...) */
  R_BACKEND_ERROR = 2, /* the backend socket failed */
  R_LIFETIME = 3,      /* connectionLifetimeSecs expired */
  R_IDLE = 4,          /* idleTimeoutMs without a byte either way */
  R_WAIT_TIMEOUT = 5,  /* the server's connect deadline passed before a backend was connected */
  R_LOCAL = 6          /* this process ran out of something (pipes, fds); errno says what */
};

/* Why a TLS handshake with a client failed (OUT_TLS_FAILED's a); JavaScript names them as the
 * node engine does (src/server/tls.ts HandshakeFailure). */
enum {
  TF_TIMEOUT = 1, TF_PROTOCOL_VERSION = 2, TF_UNKNOWN_SNI = 3, TF_NO_SHARED_CIPHER = 4, TF_ALPN = 5,
  TF_CLIENT_CERT = 6, TF_MALFORMED = 7, TF_CLOSED = 8, TF_OTHER = 9
};
/* A TLS connect to a backend that failed its handshake or verification: OUT_CONNECT_FAILED's a
 * is TLS_CONNECT_ERR and b the X509 verify result (0: not a verification failure). */
#define TLS_CONNECT_ERR 100000

/* Outcome records: REC_DOUBLES doubles each, [kind, id, a, b, c, d, t_ms, 0]. t_ms is the engine
 * clock (uv_hrtime() / 1e6 when the record was made; JavaScript reads it with hrNow()): the only
 * clock a native connection's times are kept on, so a duration between two of them is >= 0. */
enum {
  OUT_CONNECTED = 1,      /* a = connect latency in microseconds */
  OUT_CONNECT_FAILED = 2, /* a = errno (ETIMEDOUT for the attempt's timeout) */
  OUT_CLOSED = 3,         /* a = reason, b = errno or 0, c = bytes from client, d = bytes to client */
  OUT_PEEKED = 4,         /* a = bytes peeked, b = 1 when the client sent EOF before peek_min bytes */
  OUT_ACCEPT_ERROR = 5,   /* id = listener id, a = errno, b = connections refused (closed at once), -1: accepting paused 100 ms,
                           -2: resuming failed, retried in 100 ms, -3: the listener stopped accepting */
  OUT_ACCEPTED = 6,       /* a new connection, waiting for a destination: a = listener id */
  OUT_TLS_DONE = 7,       /* the client's TLS handshake finished: a = its duration in microseconds, b = 1 if resumed */
  OUT_TLS_FAILED = 8      /* it failed: a = TF_* cause; the conn stays (closed) until JavaScript closes it */
};
#define REC_DOUBLES 8
#define BATCH_RECORDS 1024
#define PEEK_MAX 65552 /* a whole PROXY v2 header: 16 bytes + a 16-bit length */

/* S_HANDSHAKE: the client's TLS handshake; S_TLS_FAILED: it failed, waiting for JavaScript's close;
 * S_CONNECTING covers the backend's TLS handshake too (bssl set). */
enum { S_WAITING = 0, S_PEEKING, S_CONNECTING, S_OPEN, S_CLOSED, S_HANDSHAKE, S_TLS_FAILED };

/* One direction of a connection: bytes read from `src` wait in a pipe until written to `dst`. */
typedef struct dir {
  int pr, pw;          /* the pipe while bytes are in flight, else -1 */
  size_t inpipe;       /* bytes in the pipe */
  size_t cap;          /* the pipe's capacity: a read shorter than this emptied the socket */
  uint64_t in, out;    /* bytes read from src, written to dst */
  uint8_t eof;         /* src sent FIN */
  uint8_t shut;        /* FIN passed on: shutdown(dst, SHUT_WR) done */
  uint8_t want_r, want_w;
  uint8_t short_read;  /* the last read took less than the pipe holds: wait for readable */
  uint8_t spliced;     /* plain: this direction moved from copy.c's buffered pump to splice */
  uint8_t refused;     /* plain and bulk, but no pipe for it (the budget): counted once until it splices */
  /* The buffered pump (copy.c): a buffer instead of a pipe, and the waits TLS adds: */
  uint8_t *buf;        /* COPY_BUF bytes while dst could not take what was read, else NULL (copy.c) */
  uint32_t len, off;   /* bytes in buf, and how many of them are written */
  uint8_t src_want_w;  /* the read side's SSL needs its socket writable */
  uint8_t dst_want_r;  /* the write side's SSL needs its socket readable */
  uint8_t notified;    /* dst is TLS: its close_notify is sent (before the FIN) */
} dir_t;

struct conn {
  engine_t *e;
  listener_t *l;
  uint32_t slot;
  double id;
  int state;
  int cfd, bfd;        /* owned; -1 once closed */
  uv_timer_t timer;    /* the one deadline of the current phase (timers.c) */
  uint32_t cev, bev;   /* epoll interest of cfd / bfd: 0 = not in the set (close() takes them out) */
  uint8_t attempt;     /* backend attempt number, in the epoll key: a stale event never reaches a newer fd */
  dir_t up, down;      /* up: client → backend; down: backend → client */
  uint64_t wait_deadline;   /* loop ms by which a backend must be connected, 0 = none */
  uint64_t attempt_deadline;
  uint64_t lifetime_at;     /* loop ms, 0 = none */
  uint64_t last_active;     /* loop ms of the last byte moved */
  uint32_t idle_ms;         /* 0 = none */
  uint64_t connect_started_ns;
  uint8_t *hdr;             /* bytes to write to the backend before forwarding (owned) */
  size_t hdr_len, hdr_off;
  size_t peek_max;
  size_t peek_min;          /* report a peek once this many bytes are readable (or EOF) */
  uint8_t lowat;            /* SO_RCVLOWAT raised on cfd for peek_min: put back to 1 when reported */
  uint8_t *peeked;          /* last MSG_PEEK result (owned) */
  size_t peeked_len;
  int handles_open;         /* embedded handles not yet closed; freed at 0 */
  /* TLS (tls-conn.c): owned SSL objects, and a reference on each snapshot they came from. */
  struct ssl_st *cssl, *bssl;   /* client side (termination), backend side (origination) */
  tls_server_t *tsrv;
  tls_client_t *tcli;           /* set by conn_connect for each TLS attempt */
  uint64_t hs_started_ns;
  uint8_t tls_cause;            /* TF_* once failed (or a cause noted by a callback) */
  uint8_t tls_eof;              /* the client's FIN came mid-handshake: waiting for the deadline */
  char *sni;                    /* the name the client asked for (owned, at most 255 bytes), or NULL */
};

struct listener {
  engine_t *e;
  uint32_t id;
  int fd;
  uv_poll_t poll;
  uv_timer_t pause;         /* accept paused after EMFILE/ENFILE */
  uint32_t connect_timeout_ms, idle_ms, lifetime_ms; /* 0 = none */
  tls_server_t *tls;        /* termination: the snapshot new handshakes start from (a reference), or NULL */
  uint64_t rx, tx;          /* bytes from / to clients of its live connections */
  _Atomic uint64_t rx_all, tx_all; /* every byte from / to its clients, never decremented; written by the loop's thread only (relaxed), read by others */
  size_t conns;             /* live connections: the listener's memory outlives them */
  uint8_t closing;
  uint8_t held;             /* accepting stopped by its owner (listener_hold: an I/O thread whose ring is full) */
  int handles_open;
};

/* Client bytes moved by a listener's conn: its live count and its running total (one writer,
 * the loop's thread: a relaxed load and store, no locked instruction). */
static inline void listener_count(listener_t *l, int from_client, uint64_t n) {
  if (from_client) {
    l->rx += n;
    atomic_store_explicit(&l->rx_all, atomic_load_explicit(&l->rx_all, memory_order_relaxed) + n, memory_order_relaxed);
  } else {
    l->tx += n;
    atomic_store_explicit(&l->tx_all, atomic_load_explicit(&l->tx_all, memory_order_relaxed) + n, memory_order_relaxed);
  }
}

typedef struct pipe_pool {
  int *fds;                 /* triples: [r0, w0, cap0, r1, w1, cap1, ...], all empty pipes */
  size_t n, cap;
  size_t in_use;            /* pipes held by connections */
  size_t created, closed;
  size_t pipe_size;         /* capacity of new pipes (F_SETPIPE_SZ, else the kernel's default) */
  size_t bytes;             /* capacity of every pipe open, held or pooled (what the user's pipe quota counts) */
  uint64_t retry_at;        /* loop ms: a new pipe failed (EMFILE...), none is tried again before then (conn.c) */
} pipe_pool_t;

#define PIPE_SIZE (256 * 1024) /* what a new pipe asks for (pipe-pool.c) */
#define DEFAULT_BUDGET ((size_t)48 << 20) /* until JavaScript sets one: 3/4 of the default per-user pipe quota (64 MiB) */

struct engine {
  napi_env env;             /* napi.c's: NULL in the C harness */
  uv_loop_t *loop;
  /* Hands records[0..n) to the control plane (napi.c: JavaScript's onBatch); 0 when read,
   * -1 when not (they stay, and the next loop turn tries again). Never called re-entrantly. */
  int (*deliver)(engine_t *e, size_t n);
  napi_ref on_batch, records_ref;
  napi_async_context actx;
  double *records;          /* the shared Float64Array's memory */
  size_t nrec;              /* records waiting to be flushed */
  double *pending;          /* overflow while JavaScript reads `records` */
  size_t npending, cap_pending;
  int epfd;                 /* every connection socket, level-triggered (conn.c); one uv_poll_t watches it */
  uv_poll_t ep_poll;
  uint8_t ep_ref;           /* ep_poll keeps the loop alive while connections live */
  uv_check_t flush_check;
  uv_idle_t flush_idle;     /* keeps the poll phase from blocking while records wait */
  uint8_t flush_armed, flushing;
  conn_t **conns;           /* slot table */
  uint32_t *gens;
  uint32_t *free_slots;
  size_t nconns_cap, nfree, live;
  listener_t **listeners;
  size_t nlisteners;
  pipe_pool_t pipes;
  int reserve_fd;           /* /dev/null, given up to accept-and-close when out of descriptors (listener.c) */
  uint64_t fd_pressure_until; /* loop ms: until then accept one connection a turn (out of descriptors lately) */
  long fd_limit;              /* the soft limit on descriptors as last read (-1: unknown or unlimited), listener.c */
  uint64_t fd_limit_at;       /* loop ms it was read at (0: never): read again after a second */
  int *holds;               /* port holds (port-hold.c): a bound, never listening fd per slot, -1 when free */
  size_t nholds;
  /* TLS (tls-ctx.c): snapshots by id (JavaScript holds one reference per id until tlsRelease). */
  tls_server_t **tls_servers;
  size_t ntls_servers;
  tls_client_t **tls_clients;
  size_t ntls_clients;
  uint8_t ticket_keys[2][48]; /* [0] issues and decrypts, [1] the previous set, decrypt only */
  uint8_t nticket_keys;       /* 0: none yet (made at the first TLS server) */
  uint8_t **bufs;             /* free copy buffers (copy.c) */
  uint8_t *copy_scratch;      /* every buffered read lands here first (copy.c); one engine, one thread */
  size_t nbufs;
  /* One budget in bytes for pipes (pipes.bytes) and copy buffers (buf_bytes: held, pooled and the
   * scratch). Buffers are never refused (a conn needs one for what its destination cannot take
   * yet), so pipes give way: past the budget no new pipe is made and a direction stays on (or
   * goes back to) the buffered pump; spares past it are freed, not pooled. */
  size_t budget;
  size_t buf_bytes;
  size_t splice_refused;      /* directions kept on the buffered pump for want of a pipe */
  size_t splice_fallbacks;    /* times a spliced direction found no pipe and went back to the pump (conn.c) */
  /* heap.c: handshakes since the last malloc_trim, the loop time of the newest, and since when a trim waits */
  uv_timer_t trim_timer;
  uint32_t hs_since_trim;
  uint64_t last_handshake, trim_pending_since;
  size_t trims;
};

/* pipe-pool.c: `limit` is what pipes may hold in all (the budget less the buffers) */
int pipe_get(pipe_pool_t *p, size_t limit, int *r, int *w, size_t *cap); /* 0, or -errno (ENOBUFS: past limit); cap = its capacity */
void pipe_put(pipe_pool_t *p, size_t limit, int r, int w, size_t cap, int empty);
void pipe_trim(pipe_pool_t *p, size_t limit); /* closes spares while the pipes hold more than limit */
static inline size_t pipe_limit(const engine_t *e) { return e->budget > e->buf_bytes ? e->budget - e->buf_bytes : 0; }
/* Whether a direction may move to splice: a spare pipe, or room in the budget for a new one. */
static inline int pipe_room(const engine_t *e) { return e->pipes.n > 0 || (e->pipes.bytes + PIPE_SIZE <= pipe_limit(e) && uv_now(e->loop) >= e->pipes.retry_at); }
void pipe_pool_destroy(pipe_pool_t *p);

/* heap.c */
int heap_init(engine_t *e);         /* 0, or -1 when the timer cannot be made */
void heap_destroy(engine_t *e);     /* at cleanup */
void heap_handshake(engine_t *e);   /* a TLS handshake (client or backend) begins */

/* timers.c */
void timers_arm(conn_t *c);   /* (re)arms the conn's timer for its state */
void timers_on_fire(uv_timer_t *t);

/* conn.c */
conn_t *conn_new(engine_t *e, listener_t *l, int cfd);
int conn_connect(conn_t *c, const char *host, int port, uint32_t timeout_ms, const uint8_t *hdr, size_t hdr_len, tls_client_t *tls);
int conn_watch(conn_t *c, int backend, uint32_t events); /* a socket's epoll interest; 0 or an errno */
#define WATCH_DONE 0x80000000u /* conn_watch: out of the set for good */
#define NOTHING EPOLLERR       /* conn_watch: in the set, waiting for nothing (0 means "not in the set") */
void conn_close(conn_t *c, int reason, int err, int report);
void conn_attempt_failed(conn_t *c, int err);
void conn_attempt_failed_tls(conn_t *c, long verify_result); /* the backend's TLS handshake failed */
void conn_opened(conn_t *c);   /* the backend is ready for bytes: S_OPEN, OUT_CONNECTED, forward */
void conn_fail_side(conn_t *c, int client_side, int err);
conn_t *conn_find(engine_t *e, double id);
int addr_fill(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len); /* 0, or EINVAL: not an IP address */
void conn_on_event(engine_t *e, uint64_t key, uint32_t events); /* one epoll event (napi.c reads the set) */

/* tls-ctx.c */
const char *tls_unavailable(void);              /* NULL when the running node exports what TLS needs, else why not */
void tls_server_ref(tls_server_t *t);
void tls_server_unref(tls_server_t *t);
void tls_client_ref(tls_client_t *t);
void tls_client_unref(tls_client_t *t);
struct ssl_st *tls_server_ssl(tls_server_t *t, conn_t *c);           /* a new SSL for a client, or NULL */
struct ssl_st *tls_client_ssl(tls_client_t *t, conn_t *c);           /* a new SSL for a backend, or NULL */
uint32_t tls_server_handshake_ms(const tls_server_t *t);
int tls_server_has_default(const tls_server_t *t);
void tls_engine_destroy(engine_t *e);                                 /* at cleanup: JavaScript's references on the snapshots, the ticket keys */

/* copy.c: the buffered pump */
#define COPY_BUF 16384 /* one TLS record's plaintext; a plain read that fills it moves the direction to splice */
int copy_pump(conn_t *c, dir_t *d, int src_is_client); /* 0 waiting, -1 closed, 1 plain bulk: splice from now on */
void copy_release(conn_t *c);          /* at close: the directions' buffers back to the pool */
void copy_destroy(engine_t *e);        /* at cleanup: the pool and the scratch buffer */

/* tls-conn.c */
int conn_tls_start(conn_t *c);         /* termination: the client's handshake begins; 0 or an errno */
void conn_tls_handshake(conn_t *c);    /* an event while S_HANDSHAKE */
int conn_tls_backend(conn_t *c);       /* origination: the TCP connect is done, the backend handshake begins; -1 when it ended the attempt */
void conn_tls_backend_step(conn_t *c); /* an event while the backend handshake runs */
void conn_tls_backend_free(conn_t *c); /* a failed attempt: its SSL object, if any */
void conn_tls_fail(conn_t *c, int cause); /* the client's handshake failed: record it, wait for JavaScript's close */
void conn_tls_free(conn_t *c);         /* at close: SSL objects, snapshot references, the SNI name */
ssize_t conn_tls_peek(conn_t *c);      /* waiting after a handshake: 1 unread bytes (in OpenSSL or the socket), 0 gone, -1 errno */

/* peek.c */
int conn_peek(conn_t *c, size_t max, size_t min); /* min > 1: wait (SO_RCVLOWAT) until that many are readable */
int conn_drop(conn_t *c, size_t n);             /* consumes n bytes JavaScript parsed as a header; 0 or an errno */
int conn_watch_leave(conn_t *c); /* while waiting: close (client_error) if the client leaves */
void conn_peek_ready(conn_t *c, uint32_t events); /* an epoll event (0: the first look) while peeking */

/* listener.c */
listener_t *listener_open(engine_t *e, const char *host, int port, int backlog, int reuse_port, int *err);
void listener_close(listener_t *l);
int listener_close_draining(listener_t *l); /* accepts what is queued (records), then closes: how many */
int listener_hold(listener_t *l, int hold);  /* stops (1) or restarts (0) accepting; 0 or a libuv error */
void listener_unref(listener_t *l); /* a conn of this listener closed */
int listener_port(listener_t *l);
int sock_port(int fd);         /* the port a socket is bound to, or -errno */

/* port-hold.c: the primary holds each server's port for its workers */
int port_hold(engine_t *e, const char *host, int port, int *port_out); /* the hold's id, or -errno */
int port_release(engine_t *e, int id);                                /* 0, or an errno (ENOENT: no such hold) */
void port_release_all(engine_t *e);

/* engine.c */
int engine_init(engine_t *e, uv_loop_t *loop); /* e zeroed, deliver and records set by the caller; 0 or -1 */
void engine_close(engine_t *e);                /* closes everything the engine owns (the env cleanup hook, the harness) */
int engine_add_listener(engine_t *e, listener_t *l); /* l->id is its index in e->listeners; 0 or ENOMEM */

/* batch.c: outcome records, their delivery (e->deliver), and the epoll set's reader */
void out_record(engine_t *e, int kind, double id, double a, double b, double c, double d);
void engine_on_epoll(uv_poll_t *h, int status, int events);
void engine_live_changed(engine_t *e);                        /* refs/unrefs the epoll watcher */
void engine_fd_pressure(engine_t *e, int err);                /* notes EMFILE/ENFILE: accept one a turn for 1 s */
void engine_arm_idle(engine_t *e);                            /* flushes records before the poll phase blocks */

#endif
