/* Native I/O threads (io-thread.c): what the main thread and the threads share. */
#ifndef LINKERD_TCP_IO_THREAD_H
#define LINKERD_TCP_IO_THREAD_H
#include "engine.h"
#include "pick.h"
#include "ring.h"
#include <pthread.h>
#include <stdatomic.h>

#define IO_MAX_THREADS 64
#define IO_MAX_ENDPOINTS 1024 /* endpoint ids: indices into io_proxy_t.loads */
#define IO_RING_RECORDS 16384
#define IO_WAITING 0xff /* tries[slot]: waiting for a first snapshot */
#define IO_REFUSED 0xfe /* tries[slot]: closed at once for max_conns (not in p->conns) */

/* One endpoint of a snapshot: its address, its weight as the balancer normalised it, and its
 * id (stable across snapshots: the index of its load). */
typedef struct io_ep {
  char host[46];
  int port;
  double weight;
  uint32_t id;
} io_ep_t;

/* An immutable snapshot of a destination: its available endpoints and its connect settings. The main thread builds it,
 * publishes it (io_publish) and frees it once no thread can hold it (io_reclaim). None
 * published yet (NULL): the destination is not resolved, and connections wait for it (up to
 * the server's connect deadline, at most max_waiters of them); one with no endpoint
 * (n == 0): resolved to nothing, connections close at once. */
typedef struct io_dest {
  struct io_dest *next;              /* the main thread's list of retired snapshots */
  uint64_t seen[IO_MAX_THREADS];     /* each thread's epoch when this one was retired */
  uint8_t was_active[IO_MAX_THREADS]; /* whether that thread was inside a batch then */
  uint32_t connect_timeout_ms;       /* per attempt (0: none) */
  int retries;                       /* attempts on another endpoint after a failed one */
  long max_failures;                 /* failFast.maxConsecutiveFailures: a thread leaves out an endpoint that many failures in a row (0: never) */
  long max_waiters;                  /* the destination's maxWaiters (< 0: no limit; 0: every connection refused, as on the main thread); io_proxy_t's until the first snapshot */
  double empty;                      /* the share of first attempts drawn onto a union branch with no endpoint: they get none */
  size_t n;
  io_ep_t eps[];
} io_dest_t;

typedef struct io_thread io_thread_t;

/* What every thread of one proxy shares with the main thread. */
typedef struct io_proxy {
  _Atomic(io_dest_t *) dest;          /* the snapshot new picks use */
  _Atomic long loads[IO_MAX_ENDPOINTS]; /* by endpoint id: connects pending plus open, every thread */
  _Atomic long fails[IO_MAX_ENDPOINTS]; /* by endpoint id: connects failed in a row, every thread (a success, or the main thread, resets it) */
  io_thread_t *threads;
  size_t nthreads;
  io_dest_t *retired;                 /* the main thread's */
  uv_async_t *main_wake;              /* sent by a thread when it left records (thread-safe) */
  _Atomic int main_polling;           /* the main thread reads the rings on a timer: no wake needed (0: wake it) */
  uint32_t wait_ms, idle_ms, lifetime_ms; /* the server's connect deadline (waiting included), idle and lifetime timeouts; 0 = none */
  long max_waiters;                   /* connections waiting for a first snapshot or connecting, all threads together (< 0: no limit), until a snapshot says */
  _Atomic long waiting;               /* waiting now, all threads */
  _Atomic long rejected;              /* closed at once: max_waiters were waiting */
  size_t ring_records;                /* each thread's ring (0: IO_RING_RECORDS) */
  long max_conns;                     /* open connections, all threads together (0: no limit); past it, closed at once (EUSERS) */
  _Atomic long conns;                 /* open now, all threads */
  int want_peer;                      /* OUT_ACCEPTED carries the client's address (getpeername: one system call) */
  size_t budget;                      /* bytes for pipes and copy buffers, all threads together (0: the engine's default each) */
  pthread_mutex_t lock;               /* with `closed`: io_stop waits until every listener is closed */
  pthread_cond_t closed;
  int synced;                         /* lock and closed are initialised (io_start) */
} io_proxy_t;

struct io_thread {
  io_proxy_t *p;
  size_t index;
  pthread_t tid;
  uv_loop_t loop;
  engine_t e;
  uv_async_t wake;                    /* main → thread: stop, or room in the ring again */
  _Atomic int stopping;
  _Atomic int cutting;                /* close every connection (ESHUTDOWN): the drain's deadline passed */
  _Atomic int active;                 /* inside a batch: may hold a snapshot pointer */
  _Atomic uint64_t epoch;             /* batches finished */
  _Atomic int wants_room;             /* records wait in `overflow`: wake it after draining */
  _Atomic int ended;                  /* its loop has ended (io_join will not wait) */
  int unlistened;                     /* its listener is closed (under p->lock) */
  _Atomic size_t holds;               /* times it stopped accepting for want of room in the ring */
  ring_t out;                         /* records for the main thread (r[7] = the thread's index) */
  double *overflow;                   /* the thread's: records the ring had no room for, in order */
  size_t noverflow, cap_overflow;
  listener_t *l;
  listener_t *counted;                /* its listener, held (a conns reference) until thread_free: the main thread reads its byte totals */
  pick_rng_t rng;
  double records[BATCH_RECORDS * REC_DOUBLES];
  uint32_t *ep_of;                    /* by conn slot: the endpoint id it holds a load on, or UINT32_MAX */
  uint8_t *tries;                     /* by conn slot: attempts made, or IO_WAITING */
  uint8_t *waits;                     /* by conn slot: 1 while it counts in p->waiting (parked, or connecting) */
  double *parked;                     /* ids of conns waiting for a first snapshot (some may have closed since) */
  size_t nparked, cap_parked;
  size_t nslots;
};

/* What the records a thread sends carry beyond engine.h's: OUT_CONNECTED and OUT_CONNECT_FAILED
 * have the endpoint id dialled in r[5] (the server's deadline passing mid-connect sends an
 * OUT_CONNECT_FAILED, ETIMEDOUT, for the attempt in flight before the R_WAIT_TIMEOUT close); OUT_ACCEPTED (with want_peer) has the client's address:
 * r[2] = family (4 or 6) * 65536 + port, r[3..5] = the address's bytes big-endian, 6 per double
 * (IPv4: r[3] alone); r[7] is the thread's index. A conn the thread closes itself has reason
 * R_LOCAL and an errno saying why: EHOSTUNREACH (no endpoint, or an empty snapshot), EAGAIN
 * (max_waiters), EUSERS (max_conns), ESHUTDOWN (io_cut), else the last attempt's errno (no
 * retry after EMFILE/ENFILE: the process's shortage; EHOSTUNREACH only when no attempt was made). */
#define IO_REC_EP 5

/* Main thread. io_start: `n` threads listening on host:port (0: one port the first binds,
 * the others share with SO_REUSEPORT); 0 or an errno. io_publish: the snapshot new picks use
 * (the previous one is retired). io_reclaim: frees retired snapshots no thread can still read.
 * io_drain: hands every record waiting in the rings to fn, and wakes threads that wait for
 * room; how many. io_stop: the threads stop accepting (what is queued is still served; it returns once every
 * listener is closed, so a new connect is refused) and end once their connections have (io_ended; each wakes main_wake as it ends). io_join: after
 * io_stop, waits for the threads, hands over their last records, frees them; 0 or an errno. */
int io_start(io_proxy_t *p, io_thread_t *threads, size_t n, const char *host, int port, int *port_out);
void io_publish(io_proxy_t *p, io_dest_t *d);
void io_reclaim(io_proxy_t *p);
size_t io_drain(io_proxy_t *p, void (*fn)(void *arg, const double *rec), void *arg);
void io_stop(io_proxy_t *p);
void io_cut(io_proxy_t *p);        /* every open connection is closed (ESHUTDOWN): a drain's deadline */
void io_bytes(const io_proxy_t *p, uint64_t *rx, uint64_t *tx); /* every byte from / to clients so far, all threads */
int io_ended(const io_proxy_t *p); /* every thread's loop has ended */
int io_join(io_proxy_t *p, void (*fn)(void *arg, const double *rec), void *arg);
#endif
