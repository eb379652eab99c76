/* executor.c — the executor process: connects to the driver, says Hello,
 * then serves LaunchBatch / KillTasks / Cleanup / Shutdown with slots + 1
 * worker threads that take turns reading the socket and running tasks, and
 * report finished ones in coalesced StatusBatch writes. Threads and
 * lifetimes are described in README.md of this folder.
 * It runs before main() of the user's program (a constructor) and ends the
 * process with _exit: main() never runs in an executor.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "exec/barrier_area.h"
#include "exec/blocks.h"
#include "exec/exec_int.h"
#include "net/tcp.h"

#include <openssl/crypto.h>

const int pt__executor_linked = 1;

/* Statuses wait at most this long for company before being written, and at
 * most this many are written in one frame. */
#define FLUSH_DELAY_US 1000
#define FLUSH_MAX 512
/* An idle worker looks for a vacant reader role at least this often. */
#define STANDBY_MAX_US 1000000

/* Barrier payloads travel in frames of at most this many bytes. */
#define COORD_CHUNK (4u << 20)

/* Addresses a queued task keeps without an allocation (its refs). */
#define QUEUED_REFS 2

typedef struct queued {
  Protium__TaskLaunch launch; /* infos kept only with owned; resource_refs: see refs */
  Protium__TaskLaunch *owned; /* barrier tasks: a private copy launch points into */
  /* launch.resource_refs, copied (the LaunchBatch is freed after dispatch):
   * in refs when they fit, else in refs_heap (owned). Queue items move, so
   * launch.resource_refs is pointed at them only once the task is taken. */
  uint32_t refs[2 * QUEUED_REFS];
  uint32_t *refs_heap;
  pt__stage *stage;           /* a reference */
} queued;

/* A task thread waiting in barrier() / all_gather() for the driver's reply
 * (on its own stack; linked under mu). */
typedef struct waiter {
  int64_t task_id, seq;
  int done;                   /* the reply is complete, or failed */
  int rc;
  char error[PT_ERROR_SIZE];
  int have_sizes;
  size_t *sizes;              /* the caller's, n entries */
  int64_t n;
  uint8_t *buf;               /* malloc'd, total bytes: handed to the caller */
  size_t total, got;
  struct waiter *next;
} waiter;

/* A running task whose stage attempt the driver stopped. */
typedef struct stopped {
  int64_t task_id;
  char error[PT_ERROR_SIZE];
} stopped;

typedef struct executor {
  int fd;                 /* the driver connection (blocking) */
  pt__exec_env env;
  int slots;
  int slurm;              /* started by srun (PROTIUM_EXECUTOR_SLURM): node name, GPUs and
                             CPUs from Slurm */
  int64_t heartbeat_ms;
  int64_t silence_ms;     /* TCP: Welcome.heartbeat_timeout_ms, how long the driver's host may
                             leave what we send unacknowledged (0: no limit); set before the
                             threads start */

  pthread_mutex_t mu;
  pthread_cond_t work;    /* idle workers wait here for a task or the reader role */
  queued *q;              /* ring buffer of tasks not yet started (mu) */
  size_t q_head, q_len, q_cap;
  int running;            /* tasks being run (mu) */
  int reading;            /* 1 while a worker holds the reader role (mu) */
  int idle;               /* workers waiting on `work` (mu) */
  int64_t next_heartbeat_us; /* (mu) */
  Protium__TaskStatus *pending; /* finished, not yet written (mu) */
  size_t n_pending, cap_pending;
  int64_t pending_since_us; /* when the oldest pending status was added (mu) */
  pt_buf extra;           /* encoded frames to send besides statuses (mu) */
  int writing;            /* 1 while a thread encodes and writes (mu) */
  /* Barrier calls (mu). Waiters take the reader role themselves when it is
   * vacant, or wait on reply_cv, which the reader broadcasts after each
   * reply and when it gives the role up: a reply never waits for a
   * heartbeat-long standby. */
  pthread_cond_t reply_cv;
  waiter *waiters;
  int64_t *running_ids;   /* [slots] task ids being run, 0 = none */
  pt__area **areas;       /* [slots] the running task's shared barrier area, or NULL */
  stopped *stops;         /* [slots] tasks told to stop; task_id 0 = free */

  /* The reader role's own state: only the worker holding the role touches
   * it (handing the role over goes through mu). */
  pt__frame_decoder dec;  /* bytes read from the driver, not yet dispatched */
  pt__secret secret;      /* net.transport = tcp: the session's; len 0 on unix */
  pt__tls_ctx *tls;       /* net.tls = on: this executor's certificate and CA; else NULL */
  pt__block_server *blocks; /* TCP: serves local_dir's shuffle files; NULL on unix */
  int tcp_fd;               /* TCP: the socket to the driver under TLS, if any; else -1 */
  /* Stage definitions by (stage_id, attempt). */
  pt__stage **stages;
  size_t n_stages, cap_stages;
  /* Welcome.resources: what tasks' resource_refs index. Set before any
   * thread starts, then read-only. */
  Protium__Resource **res_table;
  size_t n_res_table;
} executor;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void logf_(executor *x, const char *fmt, ...) PT_PRINTF(2, 3);
static void logf_(executor *x, const char *fmt, ...) {
  char msg[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "protium executor %lld: %s\n", (long long)x->env.executor_id, msg);
}

/* The driver is gone or speaks nonsense: nothing left to do. Statuses of
 * running tasks cannot be delivered; the driver retries them elsewhere. */
static void die(executor *x, const char *why) {
  logf_(x, "%s; exiting", why);
  fflush(NULL);
  _exit(1); /* no leak check: an error path, like abort() */
}

/* ------------------------------------------------------------------------ */
/* Writing: one writer at a time, taking everything pending */

/* Called with mu held; returns with it held. If another thread is writing
 * it will pick up what is pending now, so return at once. */
static void flush_locked(executor *x) {
  if (x->writing) return;
  x->writing = 1;
  while (x->n_pending > 0 || x->extra.len > 0) {
    Protium__TaskStatus *sts = x->pending;
    size_t n = x->n_pending;
    pt_buf out = x->extra;
    x->pending = NULL;
    x->n_pending = x->cap_pending = 0;
    memset(&x->extra, 0, sizeof x->extra);
    pthread_mutex_unlock(&x->mu);

    pt_error err = {0};
    int rc = PT_OK;
    for (size_t i = 0; i < n && rc == PT_OK; i += FLUSH_MAX) {
      size_t k = n - i < FLUSH_MAX ? n - i : FLUSH_MAX;
      Protium__TaskStatus *ptrs[FLUSH_MAX];
      for (size_t j = 0; j < k; j++) ptrs[j] = &sts[i + j];
      Protium__StatusBatch sb;
      protium__status_batch__init(&sb);
      sb.n_statuses = k;
      sb.statuses = ptrs;
      rc = pt__frame_append(&out, PT__MSG_STATUS_BATCH, &sb.base, &err);
    }
    if (rc == PT_OK) rc = pt__write_all(x->fd, out.data, out.len, &err);
    if (rc != PT_OK) {
      char why[1100];
      snprintf(why, sizeof why, "cannot send to the driver: %s", err.message);
      die(x, why);
    }
    for (size_t i = 0; i < n; i++) pt__task_status_clear(&sts[i]);
    pt__free(sts);
    pt_buf_free(&out);
    pthread_mutex_lock(&x->mu);
  }
  x->writing = 0;
}

/* Adds a status (moved in: *st's fields now belong to the executor). mu
 * held. */
static void push_status_locked(executor *x, Protium__TaskStatus *st) {
  if (x->n_pending == x->cap_pending) {
    size_t cap = x->cap_pending ? x->cap_pending * 2 : 64;
    Protium__TaskStatus *grown = pt__realloc(x->pending, cap * sizeof *grown);
    if (grown == NULL) die(x, "out of memory for task statuses");
    x->pending = grown;
    x->cap_pending = cap;
  }
  if (x->n_pending == 0) x->pending_since_us = now_us();
  x->pending[x->n_pending++] = *st;
}

static void push_simple_status(executor *x, int64_t task_id, Protium__TaskState state,
                               const char *error) {
  Protium__TaskStatus st;
  protium__task_status__init(&st);
  st.task_id = task_id;
  st.state = state;
  if (state == PROTIUM__TASK_STATE__TASK_FAILED) st.error_code = PT_EINTERNAL;
  if (error != NULL) {
    char *e = pt__strdup(error);
    if (e != NULL) st.error = e;
  }
  push_status_locked(x, &st);
}

/* ------------------------------------------------------------------------ */
/* Barrier calls: a task's side of the driver's coordinator */

/* The task this thread runs, for its barrier calls: set by run_one_locked
 * around the task, read by pt_ctx_* on the same thread without a lock. */
static _Thread_local struct {
  int64_t task_id;
  pt__area *area;         /* mapped; NULL: every call goes to the driver */
} tl_task;

static void read_step(executor *x);

/* ------------------------------------------------------------------------ */
/* The crash note: which task's code ended the process */

/* "<local_dir>/crashed-task", set once before any task runs; the pid it is
 * for (a child forked by a task inherits the handlers and must not write). */
static char crash_note[4096];
static pid_t crash_pid;

/* Async-signal-safe: open, write, close, no allocation, no stdio. */
static void write_crash_note(int64_t task_id) {
  if (!crash_note[0] || task_id <= 0 || getpid() != crash_pid) return;
  char buf[24];
  size_t n = sizeof buf;
  buf[--n] = '\n';
  for (uint64_t v = (uint64_t)task_id; v > 0 && n > 0; v /= 10) buf[--n] = (char)('0' + v % 10);
  int fd = open(crash_note, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t w = write(fd, buf + n, sizeof buf - n);
  (void)w;
  close(fd);
}

void pt__executor_note_crash(void) { write_crash_note(tl_task.task_id); }

/* The signals a crash ends the process with, and the actions they had
 * before (the default, or a handler of the program's: Python's
 * faulthandler, a sanitizer's report). */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define N_FATAL ((int)(sizeof fatal_signals / sizeof *fatal_signals))
static struct sigaction fatal_prev[N_FATAL];

/* After the note, the signal goes again to the action it had before, which
 * ends the process as it would have (sigaction and raise are safe here). */
static void on_fatal_signal(int sig) {
  write_crash_note(tl_task.task_id);
  for (int i = 0; i < N_FATAL; i++)
    if (fatal_signals[i] == sig) sigaction(sig, &fatal_prev[i], NULL);
  raise(sig);
}

/* A crash on a task's thread (a segfault in a user function or a Python
 * extension, an abort) costs the whole process, and with it every task
 * running there; the note lets the driver count it against that task
 * alone and rerun the others. */
static void install_crash_note(const char *local_dir) {
  int n = snprintf(crash_note, sizeof crash_note, "%s/%s", local_dir, PT__CRASH_NOTE);
  if (n < 0 || (size_t)n >= sizeof crash_note) {
    crash_note[0] = '\0';
    return;
  }
  crash_pid = getpid();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal_signal;
  sa.sa_flags = SA_NODEFER; /* raise() in the handler reaches the previous action */
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < N_FATAL; i++) sigaction(fatal_signals[i], &sa, &fatal_prev[i]);
}

static stopped *find_stop_locked(executor *x, int64_t task_id) {
  for (int i = 0; i < x->slots; i++)
    if (x->stops[i].task_id == task_id) return &x->stops[i];
  return NULL;
}

static int coord_check(void *arg, int64_t task_id, pt_error *err) {
  executor *x = arg;
  pthread_mutex_lock(&x->mu);
  stopped *s = find_stop_locked(x, task_id);
  int rc = s ? pt__errorf(err, PT_ECANCELED, "%s", s->error) : PT_OK;
  pthread_mutex_unlock(&x->mu);
  return rc;
}

/* Gives the reader role up (mu held): a waiter may take it. */
static void release_reader_locked(executor *x) {
  x->reading = 0;
  if (x->waiters) pthread_cond_broadcast(&x->reply_cv);
}

/* Waits (mu held on entry, released on return) for w's reply, or its
 * failure by a BarrierAbort, holding the reader role when nobody does. */
static int wait_reply_locked(executor *x, waiter *w, void **out, pt_error *err) {
  w->next = x->waiters;
  x->waiters = w;
  flush_locked(x);
  while (!w->done) {
    if (!x->reading) {
      x->reading = 1;
      pthread_mutex_unlock(&x->mu);
      read_step(x);
      pthread_mutex_lock(&x->mu);
      release_reader_locked(x);
    } else {
      pthread_cond_wait(&x->reply_cv, &x->mu);
    }
  }
  for (waiter **pp = &x->waiters; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  /* This thread goes back to its task: someone else must read, as when
   * a reader becomes a runner (run_one_locked). */
  if (!x->reading && x->idle > 0 && (x->slots > 1 || x->q_len > 0 || x->n_pending > 0))
    pthread_cond_signal(&x->work);
  pthread_mutex_unlock(&x->mu);
  if (w->rc != PT_OK) {
    free(w->buf);
    return pt__errorf(err, w->rc, "%s", w->error);
  }
  if (out != NULL) *out = w->buf;
  else free(w->buf);
  return PT_OK;
}

/* A step in the shared area that did not complete: report a fault to the
 * driver, whose stop (a BarrierAbort) gives the reason every peer returns. */
static int area_failed(executor *x, int64_t task_id, int64_t seq, int outcome, int code,
                       const char *why, pt_error *err) {
  waiter w;
  memset(&w, 0, sizeof w);
  w.task_id = task_id;
  w.seq = seq;
  pthread_mutex_lock(&x->mu);
  stopped *s = find_stop_locked(x, task_id);
  if (s != NULL) {
    int rc = pt__errorf(err, PT_ECANCELED, "%s", s->error);
    pthread_mutex_unlock(&x->mu);
    return rc;
  }
  if (outcome == PT__AREA_FAULT) {
    Protium__BarrierFault f;
    protium__barrier_fault__init(&f);
    f.task_id = task_id;
    f.seq = seq;
    f.error = (char *)why;
    f.error_code = code;
    if (pt__frame_append(&x->extra, PT__MSG_BARRIER_FAULT, &f.base, NULL) != PT_OK) {
      pthread_mutex_unlock(&x->mu);
      return pt__errorf(err, PT_ENOMEM, "out of memory for a message to the driver");
    }
  }
  return wait_reply_locked(x, &w, NULL, err);
}

static int coord_call(void *arg, int64_t task_id, int64_t seq, int kind, const void *data,
                      size_t size, void **out, size_t *sizes, int64_t n, pt_error *err) {
  executor *x = arg;
  /* Same host: meet in the shared area; an all_gather's payloads then
   * still go through the driver. */
  pt__area *area = tl_task.task_id == task_id ? tl_task.area : NULL;
  if (tl_task.task_id != task_id) { /* a call from another thread of the function */
    pthread_mutex_lock(&x->mu);
    for (int k = 0; k < x->slots; k++)
      if (x->running_ids[k] == task_id) area = x->areas[k];
    pthread_mutex_unlock(&x->mu);
  }
  if (area != NULL) {
    int code = PT_OK;
    char why[PT_ERROR_SIZE];
    int r = pt__area_step(area, area->partition, seq, kind, &code, why, sizeof why);
    if (r != PT__AREA_DONE) return area_failed(x, task_id, seq, r, code, why, err);
    if (kind == PROTIUM__BARRIER_KIND__BARRIER_KIND_BARRIER) return PT_OK;
  }
  waiter w;
  memset(&w, 0, sizeof w);
  w.task_id = task_id;
  w.seq = seq;
  w.sizes = sizes;
  w.n = n;
  pthread_mutex_lock(&x->mu);
  stopped *s = find_stop_locked(x, task_id);
  if (s != NULL) {
    int rc = pt__errorf(err, PT_ECANCELED, "%s", s->error);
    pthread_mutex_unlock(&x->mu);
    return rc;
  }
  size_t off = 0;
  do {
    size_t len = size - off < COORD_CHUNK ? size - off : COORD_CHUNK;
    Protium__BarrierCall c;
    protium__barrier_call__init(&c);
    c.task_id = task_id;
    c.seq = seq;
    c.kind = (Protium__BarrierKind)kind;
    c.size = (int64_t)size;
    c.offset = (int64_t)off;
    c.data.data = (uint8_t *)data + off;
    c.data.len = len;
    if (pt__frame_append(&x->extra, PT__MSG_BARRIER_CALL, &c.base, NULL) != PT_OK) {
      pthread_mutex_unlock(&x->mu);
      return pt__errorf(err, PT_ENOMEM, "out of memory for a message to the driver");
    }
    off += len;
  } while (off < size);
  return wait_reply_locked(x, &w, out, err);
}

static waiter *find_waiter_locked(executor *x, int64_t task_id) {
  for (waiter *w = x->waiters; w; w = w->next)
    if (w->task_id == task_id) return w;
  return NULL;
}

static void waiter_fail(waiter *w, int rc, const char *why) {
  w->done = 1;
  w->rc = rc;
  snprintf(w->error, sizeof w->error, "%s", why);
}

static void on_barrier_reply(executor *x, const Protium__BarrierReply *r) {
  pthread_mutex_lock(&x->mu);
  waiter *w = find_waiter_locked(x, r->task_id);
  if (w == NULL || w->seq != r->seq || w->done) goto unlock; /* stopped meanwhile */
  if (r->error != NULL && r->error[0] != '\0') {
    int code = r->error_code > PT_OK && r->error_code <= PT_EINTERNAL ? r->error_code
                                                                      : PT_ECANCELED;
    waiter_fail(w, code, r->error);
    goto wake;
  }
  if (!w->have_sizes) {
    if ((int64_t)r->n_sizes != w->n && !(r->n_sizes == 0 && r->data.len == 0)) {
      waiter_fail(w, PT_EFORMAT, "the driver's reply has the payloads of a different number "
                                 "of tasks");
      goto wake;
    }
    size_t total = 0;
    for (size_t i = 0; i < r->n_sizes; i++) {
      if (r->sizes[i] < 0) {
        waiter_fail(w, PT_EFORMAT, "the driver's reply has a negative size");
        goto wake;
      }
      total += (size_t)r->sizes[i];
      if (w->sizes != NULL) w->sizes[i] = (size_t)r->sizes[i];
    }
    w->have_sizes = 1;
    w->total = total;
    w->buf = malloc(total ? total : 1);
    if (w->buf == NULL) {
      waiter_fail(w, PT_ENOMEM, "out of memory for the gathered payloads");
      goto wake;
    }
  }
  if (r->offset < 0 || (size_t)r->offset != w->got || r->data.len > w->total - w->got) {
    waiter_fail(w, PT_EFORMAT, "the driver's reply is out of order");
    goto wake;
  }
  if (r->data.len > 0) memcpy(w->buf + w->got, r->data.data, r->data.len);
  w->got += r->data.len;
  if (w->got < w->total) goto unlock;
  w->done = 1;
wake:
  pthread_cond_broadcast(&x->reply_cv);
unlock:
  pthread_mutex_unlock(&x->mu);
}

static void on_barrier_abort(executor *x, const Protium__BarrierAbort *a) {
  const char *why = a->error && a->error[0] ? a->error : "the barrier stage attempt was stopped";
  pthread_mutex_lock(&x->mu);
  for (size_t i = 0; i < a->n_task_ids; i++) {
    int64_t id = a->task_ids[i];
    int running = 0;
    for (int k = 0; k < x->slots; k++)
      if (id != 0 && x->running_ids[k] == id) {
        running = 1;
        /* Its peers in the shared area, on every executor, stop waiting. */
        if (x->areas[k] != NULL) pt__area_stop(x->areas[k]);
      }
    if (!running || find_stop_locked(x, id) != NULL) continue; /* ended already */
    stopped *s = find_stop_locked(x, 0);
    if (s == NULL) continue; /* cannot happen: one entry per slot */
    s->task_id = id;
    snprintf(s->error, sizeof s->error, "%s", why);
    waiter *w = find_waiter_locked(x, id);
    if (w != NULL && !w->done) waiter_fail(w, PT_ECANCELED, why);
  }
  pthread_cond_broadcast(&x->reply_cv);
  pthread_mutex_unlock(&x->mu);
}

/* ------------------------------------------------------------------------ */
/* Messages from the driver (the reader) */

static pt__stage *find_stage(executor *x, int64_t id, int64_t attempt) {
  for (size_t i = 0; i < x->n_stages; i++)
    if (pt__stage_id(x->stages[i]) == id && pt__stage_attempt(x->stages[i]) == attempt)
      return x->stages[i];
  return NULL;
}

/* The n (entry, address) pairs of refs as one message per table entry, in
 * order of first appearance, each listing its addresses in ref order: into
 * msgs, ptrs and addrs (n entries each), borrowing the table's strings.
 * Returns the number of messages. */
static size_t resolve_refs(const executor *x, const uint32_t *refs, size_t n,
                           Protium__Resource *msgs, Protium__Resource **ptrs, char **addrs) {
  size_t nm = 0, na = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t e = refs[2 * i];
    int seen = 0;
    for (size_t k = 0; k < i && !seen; k++) seen = refs[2 * k] == e;
    if (seen) continue;
    const Protium__Resource *t = x->res_table[e];
    Protium__Resource *m = &msgs[nm];
    protium__resource__init(m);
    m->name = t->name;
    m->env = t->env;
    m->addresses = &addrs[na];
    for (size_t k = i; k < n; k++)
      if (refs[2 * k] == e) m->addresses[m->n_addresses++] = t->addresses[refs[2 * k + 1]];
    na += m->n_addresses;
    ptrs[nm++] = m;
  }
  return nm;
}

/* A launch's (table entry, address) pairs, from either of its fields:
 * *refs (2 * *n values, pointing into tl or at one[]). 0 when they are
 * not pairs the table has. */
static int launch_refs(const executor *x, const Protium__TaskLaunch *tl, uint32_t one[2],
                       const uint32_t **refs, size_t *n) {
  *refs = tl->resource_refs;
  *n = tl->n_resource_refs;
  if (tl->resource_ref != 0) {
    if (*n != 0) return 0; /* one field or the other */
    one[0] = (uint32_t)((tl->resource_ref - 1) >> 32);
    one[1] = (uint32_t)(tl->resource_ref - 1);
    *refs = one;
    *n = 2;
  }
  if (*n % 2 != 0) return 0;
  for (size_t i = 0; i < *n; i += 2) {
    uint32_t e = (*refs)[i], a = (*refs)[i + 1];
    if (e >= x->n_res_table || a >= x->res_table[e]->n_addresses) return 0;
  }
  return 1;
}

static void on_launch(executor *x, const Protium__LaunchBatch *lb) {
  for (size_t i = 0; i < lb->n_stages; i++) {
    const Protium__StageDef *def = lb->stages[i];
    if (find_stage(x, def->stage_id, def->stage_attempt) != NULL) continue;
    pt__stage *s;
    pt_error err = {0};
    if (pt__stage_new(def, &s, &err) != PT_OK) die(x, err.message);
    if (x->n_stages == x->cap_stages) {
      size_t cap = x->cap_stages ? x->cap_stages * 2 : 16;
      pt__stage **grown = pt__realloc(x->stages, cap * sizeof *grown);
      if (grown == NULL) die(x, "out of memory for stages");
      x->stages = grown;
      x->cap_stages = cap;
    }
    x->stages[x->n_stages++] = s;
  }
  pthread_mutex_lock(&x->mu);
  size_t added = 0;
  for (size_t i = 0; i < lb->n_tasks; i++) {
    const Protium__TaskLaunch *tl = lb->tasks[i];
    pt__stage *s = find_stage(x, tl->stage_id, tl->stage_attempt);
    if (s == NULL) {
      char msg[200];
      snprintf(msg, sizeof msg, "executor has no definition of stage %lld attempt %lld",
               (long long)tl->stage_id, (long long)tl->stage_attempt);
      push_simple_status(x, tl->task_id, PROTIUM__TASK_STATE__TASK_FAILED, msg);
      continue;
    }
    if (x->q_len == x->q_cap) {
      size_t cap = x->q_cap ? x->q_cap * 2 : 256;
      queued *grown = pt__malloc(cap * sizeof *grown);
      if (grown == NULL) die(x, "out of memory for the task queue");
      for (size_t k = 0; k < x->q_len; k++) grown[k] = x->q[(x->q_head + k) % x->q_cap];
      pt__free(x->q);
      x->q = grown;
      x->q_cap = cap;
      x->q_head = 0;
    }
    uint32_t one[2];
    const uint32_t *refs;
    size_t n_refs;
    if (!launch_refs(x, tl, one, &refs, &n_refs)) {
      push_simple_status(x, tl->task_id, PROTIUM__TASK_STATE__TASK_FAILED,
                         "the driver named resources this executor was not told of");
      continue;
    }
    queued *item = &x->q[(x->q_head + x->q_len) % x->q_cap];
    item->owned = NULL;
    item->refs_heap = NULL;
    if (n_refs > 2 * QUEUED_REFS) {
      if ((item->refs_heap = pt__malloc(n_refs * sizeof *item->refs_heap)) == NULL)
        die(x, "out of memory for a task");
      memcpy(item->refs_heap, refs, n_refs * sizeof *item->refs_heap);
    } else if (n_refs > 0) {
      memcpy(item->refs, refs, n_refs * sizeof *item->refs);
    }
    if (tl->n_task_infos > 0) {
      /* The LaunchBatch is freed after dispatch: keep the infos. */
      size_t size = protium__task_launch__get_packed_size(tl);
      uint8_t *packed = pt__malloc(size ? size : 1);
      if (packed == NULL) die(x, "out of memory for a task");
      protium__task_launch__pack(tl, packed);
      item->owned = protium__task_launch__unpack(&pt__pb_allocator, size, packed);
      pt__free(packed);
      if (item->owned == NULL) die(x, "out of memory for a task");
      tl = item->owned;
    }
    item->launch = *tl;
    item->launch.resource_refs = NULL;
    item->launch.n_resource_refs = n_refs; /* both fields' pairs, in refs */
    item->launch.resource_ref = 0;
    pt__stage_ref(s);
    item->stage = s;
    x->q_len++;
    added++;
  }
  /* The reader runs one task itself when a slot is free; idle workers
   * take the others (all of them when the reader is a task waiting for
   * the driver). */
  if ((added > 1 || x->waiters != NULL) && x->idle > 0) pthread_cond_broadcast(&x->work);
  if (x->n_pending > 0) flush_locked(x);
  pthread_mutex_unlock(&x->mu);
}

static void on_kill(executor *x, const Protium__KillTasks *k) {
  pthread_mutex_lock(&x->mu);
  /* Queued tasks only: a running one cannot be stopped (the driver kills
   * the process when it must). */
  size_t kept = 0;
  for (size_t i = 0; i < x->q_len; i++) {
    queued item = x->q[(x->q_head + i) % x->q_cap];
    int kill = 0;
    for (size_t j = 0; j < k->n_task_ids && !kill; j++)
      kill = k->task_ids[j] == item.launch.task_id;
    if (kill) {
      push_simple_status(x, item.launch.task_id, PROTIUM__TASK_STATE__TASK_KILLED, NULL);
      pt__stage_unref(item.stage);
      if (item.owned) protium__task_launch__free_unpacked(item.owned, &pt__pb_allocator);
      pt__free(item.refs_heap);
    } else {
      x->q[(x->q_head + kept) % x->q_cap] = item;
      kept++;
    }
  }
  x->q_len = kept;
  flush_locked(x);
  pthread_mutex_unlock(&x->mu);
}

/* Files of the executor's directory named "<kind>-<id>-...": a shuffle's
 * map outputs, or a result stage's partitions the driver fetched. */
static void remove_shuffle_files(executor *x, const char *kind, int64_t sid) {
  DIR *d = opendir(x->env.local_dir);
  if (d == NULL) return;
  char prefix[64];
  int n = snprintf(prefix, sizeof prefix, "%s-%lld-", kind, (long long)sid);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, (size_t)n) != 0) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", x->env.local_dir, e->d_name);
    if (unlink(path) != 0 && errno != ENOENT)
      logf_(x, "cannot remove '%s': %s", path, strerror(errno));
  }
  closedir(d);
}

static void on_cleanup(executor *x, const Protium__Cleanup *c) {
  size_t kept = 0;
  for (size_t i = 0; i < x->n_stages; i++) {
    int drop = 0;
    for (size_t j = 0; j < c->n_stage_ids && !drop; j++)
      drop = pt__stage_id(x->stages[i]) == c->stage_ids[j];
    if (drop) pt__stage_unref(x->stages[i]); /* queued tasks keep their own references */
    else x->stages[kept++] = x->stages[i];
  }
  x->n_stages = kept;
  for (size_t j = 0; j < c->n_shuffle_ids; j++) {
    remove_shuffle_files(x, "shuffle", c->shuffle_ids[j]);
    pt__mem_drop(c->shuffle_ids[j]);
  }
  /* Results fetched by the driver: their stage is over. */
  for (size_t j = 0; j < c->n_stage_ids && x->env.results_stream; j++)
    remove_shuffle_files(x, "result", c->stage_ids[j]);
}

static void send_heartbeat(executor *x) {
  pthread_mutex_lock(&x->mu);
  Protium__Heartbeat hb;
  protium__heartbeat__init(&hb);
  hb.executor_id = x->env.executor_id;
  hb.running_tasks = x->running;
  if (pt__frame_append(&x->extra, PT__MSG_HEARTBEAT, &hb.base, NULL) != PT_OK)
    die(x, "out of memory for a heartbeat");
  x->next_heartbeat_us = now_us() + x->heartbeat_ms * 1000;
  flush_locked(x);
  pthread_mutex_unlock(&x->mu);
}

/* Handles one frame; returns 1 on Shutdown. */
static int dispatch(executor *x, const pt__frame *f) {
  ProtobufCMessage *m;
  pt_error err = {0};
  if (pt__msg_unpack(f->type, f->payload, f->len, &m, &err) != PT_OK) die(x, err.message);
  int stop = 0;
  switch (f->type) {
    case PT__MSG_LAUNCH_BATCH: on_launch(x, (Protium__LaunchBatch *)m); break;
    case PT__MSG_KILL_TASKS: on_kill(x, (Protium__KillTasks *)m); break;
    case PT__MSG_CLEANUP: on_cleanup(x, (Protium__Cleanup *)m); break;
    case PT__MSG_SHUTDOWN: stop = 1; break;
    case PT__MSG_BARRIER_REPLY: on_barrier_reply(x, (Protium__BarrierReply *)m); break;
    case PT__MSG_BARRIER_ABORT: on_barrier_abort(x, (Protium__BarrierAbort *)m); break;
    default: logf_(x, "ignoring a message of type %d", (int)f->type); break;
  }
  pt__msg_free(m);
  return stop;
}

/* Handles every complete frame in d; returns 1 on Shutdown (with output
 * flushed: running tasks end with the process). */
static int dispatch_buffered(executor *x, pt__frame_decoder *d) {
  for (;;) {
    pt__frame f;
    int have;
    pt_error err = {0};
    if (pt__frame_decoder_next(d, &f, &have, &err) != PT_OK) die(x, err.message);
    if (!have) return 0;
    if (dispatch(x, &f)) {
      fflush(NULL);
      return 1;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Workers: slots + 1 threads take turns holding the reader role and running
 * tasks; at most `slots` run tasks at once, so one is always left to read. */

/* One turn of the reader role (mu not held): write statuses that waited
 * too long, wait for the driver (until the next heartbeat, or 1 ms while
 * busy), dispatch what came, send a heartbeat when due. Exits the process
 * on Shutdown, EOF or an error. */
static void read_step(executor *x) {
  pthread_mutex_lock(&x->mu);
  int64_t now = now_us();
  if (x->n_pending > 0 && now - x->pending_since_us >= FLUSH_DELAY_US) flush_locked(x);
  int busy = x->q_len > 0 || x->running > 0 || x->n_pending > 0;
  int64_t wait_us = x->next_heartbeat_us - now;
  pthread_mutex_unlock(&x->mu);
  if (busy && wait_us > FLUSH_DELAY_US) wait_us = FLUSH_DELAY_US;
  struct pollfd pfd = {.fd = x->fd, .events = POLLIN};
  int n = poll(&pfd, 1, wait_us > 0 ? (int)((wait_us + 999) / 1000) : 0);
  if (n < 0 && errno != EINTR) die(x, "poll failed");
  if (n > 0) {
    int eof;
    pt_error err = {0};
    if (pt__frame_fill(x->fd, &x->dec, &eof, &err) != PT_OK) die(x, err.message);
    if (eof) die(x, "the driver closed the connection");
    if (dispatch_buffered(x, &x->dec)) { /* Shutdown: running tasks end with us */
      pt__sanitizer_leak_check();
      _exit(0);
    }
  }
  pthread_mutex_lock(&x->mu);
  int due = now_us() >= x->next_heartbeat_us;
  pthread_mutex_unlock(&x->mu);
  if (due) send_heartbeat(x);
}

/* Takes the queue's oldest task and runs it; mu held on entry and exit. */
static void run_one_locked(executor *x) {
  queued item = x->q[x->q_head];
  x->q_head = (x->q_head + 1) % x->q_cap;
  x->q_len--;
  x->running++;
  int slot = 0;
  while (slot < x->slots - 1 && x->running_ids[slot] != 0) slot++;
  x->running_ids[slot] = item.launch.task_id;
  /* The reader may have just become this runner. Someone must read on
   * (launches for other slots, kills, statuses to write after 1 ms), unless
   * this task was all there was to do on a one-slot executor: then the
   * wake-up would cost more than a short task, and an idle worker takes
   * the role by itself by the next heartbeat (worker_main). A task that
   * meets its peers in a shared area sleeps there, not as the reader: a
   * BarrierAbort for it must be read at once, so someone reads. */
  const char *area_path = item.stage->def->barrier_area;
  int in_area = item.stage->def->barrier && area_path && area_path[0];
  if (!x->reading && x->idle > 0 &&
      (x->slots > 1 || x->q_len > 0 || x->n_pending > 0 || in_area))
    pthread_cond_signal(&x->work);
  pthread_mutex_unlock(&x->mu);

  /* A barrier task on a host shared with all its peers meets them in the
   * attempt's area. One it cannot map is a fault the driver stops the
   * attempt for (its calls then fail with the driver's reason). */
  pt__area area = {0};
  const Protium__StageDef *def = item.stage->def;
  if (in_area) {
    pt_error aerr = {0};
    int rc = pt__area_open(def->barrier_area, def->stage_id, def->stage_attempt, def->num_tasks,
                           &area, &aerr);
    pthread_mutex_lock(&x->mu);
    if (rc == PT_OK) {
      area.partition = item.launch.partition;
      x->areas[slot] = &area;
      if (find_stop_locked(x, item.launch.task_id) != NULL) pt__area_stop(&area);
    } else {
      char why[PT_ERROR_SIZE];
      snprintf(why, sizeof why, "partition %lld: %.900s", (long long)item.launch.partition,
               aerr.message);
      Protium__BarrierFault f;
      protium__barrier_fault__init(&f);
      f.task_id = item.launch.task_id;
      f.error = why;
      f.error_code = rc;
      if (pt__frame_append(&x->extra, PT__MSG_BARRIER_FAULT, &f.base, NULL) == PT_OK)
        flush_locked(x);
    }
    pthread_mutex_unlock(&x->mu);
  }
  tl_task.task_id = item.launch.task_id;
  tl_task.area = area.head ? &area : NULL;

  /* Its resources as messages borrowing the table, on this stack. */
  item.launch.resource_refs = item.refs_heap ? item.refs_heap : item.refs;
  size_t n_addrs = item.launch.n_resource_refs / 2, n_res = 0;
  Protium__Resource res_buf[QUEUED_REFS], *res_ptrs_buf[QUEUED_REFS], **res_ptrs = res_ptrs_buf;
  char *addrs_buf[QUEUED_REFS];
  void *res_heap = NULL;
  if (n_addrs > 0) {
    Protium__Resource *msgs = res_buf;
    char **addrs = addrs_buf;
    if (n_addrs > QUEUED_REFS) {
      res_heap = pt__malloc(n_addrs * (sizeof *msgs + sizeof *res_ptrs + sizeof *addrs));
      if (res_heap == NULL) die(x, "out of memory for a task");
      msgs = res_heap;
      res_ptrs = (Protium__Resource **)(msgs + n_addrs);
      addrs = (char **)(res_ptrs + n_addrs);
    }
    n_res = resolve_refs(x, item.launch.resource_refs, n_addrs, msgs, res_ptrs, addrs);
  }

  Protium__TaskStatus st;
  pt__task_run(&x->env, item.stage, &item.launch, res_ptrs, n_res, &st);
  if (area.head && st.state == PROTIUM__TASK_STATE__TASK_SUCCEEDED)
    pt__area_ended(&area, item.launch.partition);
  tl_task.task_id = 0;
  tl_task.area = NULL;
  pt__stage_unref(item.stage);
  if (item.owned) protium__task_launch__free_unpacked(item.owned, &pt__pb_allocator);
  pt__free(item.refs_heap);
  pt__free(res_heap);

  pthread_mutex_lock(&x->mu);
  x->running--;
  x->running_ids[slot] = 0;
  x->areas[slot] = NULL;
  pt__area_close(&area);
  stopped *stop = find_stop_locked(x, item.launch.task_id);
  if (stop != NULL) stop->task_id = 0;
  push_status_locked(x, &st);
  /* More tasks queued: keep going and let statuses gather, at most
   * FLUSH_DELAY_US. Otherwise write now. */
  if (x->q_len == 0 || x->n_pending >= FLUSH_MAX ||
      now_us() - x->pending_since_us >= FLUSH_DELAY_US)
    flush_locked(x);
}

/* Every thread of the executor, the main thread included, runs this: run
 * a queued task when a slot is free, else hold the reader role when nobody
 * does, else wait. A task launched on an idle executor is run by the thread
 * that read it, which also writes its status: no hand-off between threads
 * on the way. Never returns. */
static void *worker_main(void *arg) {
  executor *x = arg;
  pthread_mutex_lock(&x->mu);
  for (;;) {
    if (x->q_len > 0 && x->running < x->slots) {
      run_one_locked(x);
    } else if (!x->reading && x->waiters == NULL) {
      /* With tasks waiting for the driver's replies, the role is theirs:
       * each reads its own reply, without a hand-off between threads. */
      x->reading = 1;
      pthread_mutex_unlock(&x->mu);
      read_step(x);
      pthread_mutex_lock(&x->mu);
      release_reader_locked(x);
    } else {
      /* Wake by the next heartbeat (1 s at most) even if not signalled:
       * the reader may be running a task (one slot), and the heartbeat
       * must go, a Shutdown or the driver's end be seen. */
      int64_t now = now_us();
      int64_t at = x->next_heartbeat_us > now ? x->next_heartbeat_us : now;
      if (at > now + STANDBY_MAX_US) at = now + STANDBY_MAX_US;
      at += FLUSH_DELAY_US;
      struct timespec ts = {.tv_sec = at / 1000000, .tv_nsec = (at % 1000000) * 1000};
      x->idle++;
      pthread_cond_timedwait(&x->work, &x->mu, &ts);
      x->idle--;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Start */

static char *take_env(const char *name) {
  const char *v = getenv(name);
  char *copy = v ? pt__strdup(v) : NULL;
  unsetenv(name); /* a user function calling system() must not become an executor */
  return copy;
}

/* The numeric address of this end of a connected socket. */
static void local_address(int fd, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  snprintf(out, cap, "127.0.0.1");
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return;
  /* A link-local address keeps its scope (fe80::2%eth0): peers on the same
   * link name their interface alike when they are set up alike. */
  if (pt__sockaddr_host(&ss, out, cap, NULL) != PT_OK) snprintf(out, cap, "127.0.0.1");
}

/* Keeps Welcome.resources (what tasks' resource_refs index) beyond the
 * message: each entry copied whole. */
static int keep_resources(executor *x, const Protium__Welcome *w, pt_error *err) {
  if (w->n_resources == 0) return PT_OK;
  x->res_table = pt__calloc(w->n_resources, sizeof *x->res_table);
  if (x->res_table == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (size_t i = 0; i < w->n_resources; i++) {
    size_t size = protium__resource__get_packed_size(w->resources[i]);
    uint8_t *packed = pt__malloc(size ? size : 1);
    if (packed == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    protium__resource__pack(w->resources[i], packed);
    x->res_table[i] = protium__resource__unpack(&pt__pb_allocator, size, packed);
    pt__free(packed);
    if (x->res_table[i] == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    x->n_res_table = i + 1;
  }
  return PT_OK;
}

/* Under Slurm (PROTIUM_EXECUTOR_SLURM): the GPUs of this step, as Slurm
 * says in the first of these variables that is set. */
static const char *slurm_gpus(void) {
  static const char *const vars[] = {"CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS"};
  for (int i = 0; i < 3; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) return v;
  }
  return NULL;
}

/* A driver whose host cannot be reached any more (its network down) never
 * closes the connection: without a limit the executor would wait, a stray
 * process holding its slots and GPUs, until the network came back.
 * TCP_USER_TIMEOUT would end it, but the kernel also ends a connection
 * whose peer is alive and only reads nothing for that long (a shut
 * window, its probes answered): a driver held up on a loaded machine
 * while a large all_gather payload waits to be sent. So a thread asks the
 * kernel instead, every heartbeat interval (TCP_INFO): bytes in flight, or
 * window probes, that nothing has answered for silence_ms mean that
 * nobody is there; answered probes mean a slow driver, and we wait.
 * Keepalive probes cover a connection with nothing to send. The
 * executor sends a heartbeat every interval, so the driver's host always
 * has something to acknowledge. */
static void limit_silence(int fd, int64_t ms) {
  int on = 1, idle = (int)(ms / 3000 > 0 ? ms / 3000 : 1), intvl = 1, cnt = 3;
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static void *watch_main(void *arg) {
  executor *x = arg;
  int64_t every_ms = x->heartbeat_ms < x->silence_ms / 4 ? x->heartbeat_ms : x->silence_ms / 4;
  if (every_ms < 10) every_ms = 10;
  int64_t unanswered_since = -1; /* now_us() when we first saw bytes or probes unanswered */
  for (;;) {
    struct timespec ts = {.tv_sec = every_ms / 1000, .tv_nsec = (every_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(x->tcp_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) continue;
    /* One probe may be on its way; a live peer's answer resets the count. */
    if (ti.tcpi_unacked == 0 && ti.tcpi_probes < 2) {
      unanswered_since = -1;
      continue;
    }
    int64_t now = now_us();
    if (unanswered_since < 0) unanswered_since = now;
    /* A live peer that cannot take more (its receive memory full) answers
     * each retransmission with a zero window, yet the retransmissions
     * back off (200, 400, 800 ms ...) and its answers come further and
     * further apart: silence longer than the current retransmission
     * timeout (tcpi_rto, backed off) means the last one went unanswered. */
    int64_t rto_ms = (int64_t)ti.tcpi_rto / 1000;
    int64_t answered_within = rto_ms + rto_ms / 4 + every_ms;
    /* Both: bytes sent after a long quiet spell have a stale last ack. */
    if (now - unanswered_since >= x->silence_ms * 1000 &&
        (int64_t)ti.tcpi_last_ack_recv >= x->silence_ms &&
        (ti.tcpi_unacked == 0 || (int64_t)ti.tcpi_last_ack_recv > answered_within)) {
      char why[200];
      snprintf(why, sizeof why, "the driver's host acknowledged nothing for %lld ms "
               "(executor.heartbeat_timeout): it cannot be reached",
               (long long)ti.tcpi_last_ack_recv);
      die(x, why);
    }
  }
  return NULL;
}

static int handshake(executor *x, pt__frame_decoder *d, pt_error *err) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  /* Slurm's name of the node: what task_infos and barrier placement
   * compare (nodes may share a hostname, as in the tests' namespaces). */
  const char *node = x->slurm ? getenv("SLURMD_NODENAME") : NULL;
  if (node && *node) snprintf(host, sizeof host, "%s", node);
  Protium__Resource gpu = PROTIUM__RESOURCE__INIT, *gpu_ptr = &gpu;
  char gpu_list[1024] = "", *gpu_addrs[64];
  const char *gl = x->slurm ? slurm_gpus() : NULL;
  if (gl) {
    snprintf(gpu_list, sizeof gpu_list, "%s", gl);
    char *save = NULL;
    for (char *t = strtok_r(gpu_list, ",", &save); t && gpu.n_addresses < 64;
         t = strtok_r(NULL, ",", &save))
      gpu_addrs[gpu.n_addresses++] = t;
    gpu.name = (char *)"gpu";
    gpu.addresses = gpu_addrs;
  }
  Protium__Hello hello;
  protium__hello__init(&hello);
  hello.protocol_version = PT__PROTOCOL_VERSION;
  hello.executor_id = x->env.executor_id;
  hello.pid = getpid();
  hello.slots = x->slots;
  hello.host = host;
  hello.local_dir = (char *)x->env.local_dir;
  if (x->blocks) hello.block_address = (char *)pt__block_server_address(x->blocks);
  if (gpu.n_addresses > 0) {
    hello.n_resources = 1;
    hello.resources = &gpu_ptr;
  }
  pt_buf out = {0};
  int rc = pt__frame_append(&out, PT__MSG_HELLO, &hello.base, err);
  if (rc == PT_OK) rc = pt__write_all(x->fd, out.data, out.len, err);
  pt_buf_free(&out);
  if (rc != PT_OK) return rc;
  pt__frame f;
  PT_RETURN_NOT_OK(pt__frame_read(x->fd, d, &f, err));
  if (f.type != PT__MSG_WELCOME)
    return pt__errorf(err, PT_EFORMAT, "expected Welcome, got message type %d", (int)f.type);
  ProtobufCMessage *m;
  PT_RETURN_NOT_OK(pt__msg_unpack(f.type, f.payload, f.len, &m, err));
  Protium__Welcome *w = (Protium__Welcome *)m;
  x->env.session_dir = pt__strdup(w->session_dir);
  int want_results = w->results_dir && *w->results_dir;
  x->env.results_memory = want_results ? pt__strdup(w->results_dir) : NULL;
  x->env.results_stream = w->results_stream && x->blocks != NULL;
  x->heartbeat_ms = w->heartbeat_interval_ms > 0 ? w->heartbeat_interval_ms : 1000;
  x->env.fetch_connect_timeout_ms = w->heartbeat_timeout_ms > 0 ? w->heartbeat_timeout_ms : 0;
  if (x->tcp_fd >= 0 && w->heartbeat_timeout_ms > 0) {
    limit_silence(x->tcp_fd, w->heartbeat_timeout_ms);
    x->silence_ms = w->heartbeat_timeout_ms;
  }
  for (size_t i = 0; i < w->n_conf; i++) {
    if (strcmp(w->conf[i]->key, "shuffle.fetch") == 0)
      x->env.fetch_remote = strcmp(w->conf[i]->value, "remote") == 0;
    /* Map output in memory needs the block server: other executors, even
     * on this host, can reach it only there. */
    if (strcmp(w->conf[i]->key, "shuffle.memory_mb") == 0 && x->blocks)
      pt__mem_set_budget(strtoll(w->conf[i]->value, NULL, 10) << 20);
  }
  rc = keep_resources(x, w, err);
  pt__msg_free(m);
  if (rc == PT_OK && (x->env.session_dir == NULL || (want_results && !x->env.results_memory)))
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  return rc;
}

int pt__executor_main(void) {
  pt__keep_freed_memory();
  /* Static, not on the stack: one executor per process, and what it owns
   * stays reachable from a global for the leak check before _exit (a
   * stack frame may live where LeakSanitizer does not look). */
  static executor x;
  memset(&x, 0, sizeof x);
  pt_error err0 = {0};
  x.fd = -1;
  char *sock = take_env("PROTIUM_EXECUTOR_SOCKET");
  char *id = take_env("PROTIUM_EXECUTOR_ID");
  char *slots = take_env("PROTIUM_EXECUTOR_SLOTS");
  char *dir = take_env("PROTIUM_EXECUTOR_DIR");
  char *secret_hex = take_env("PROTIUM_EXECUTOR_SECRET");
  char *slurm = take_env("PROTIUM_EXECUTOR_SLURM");
  char *tls_cert = take_env("PROTIUM_EXECUTOR_TLS_CERT");
  char *tls_key = take_env("PROTIUM_EXECUTOR_TLS_KEY");
  char *tls_ca = take_env("PROTIUM_EXECUTOR_TLS_CA");
  x.env.executor_id = id ? strtoll(id, NULL, 10) : 0;
  x.env.local_dir = dir;
  x.slots = slots ? atoi(slots) : 1;
  if (slurm) {
    /* A step of a Slurm allocation: as many slots as CPUs Slurm gave it
     * (its node's share, or its task's). */
    const char *cpus = getenv(strcmp(slurm, "task") == 0 ? "SLURM_CPUS_PER_TASK"
                                                         : "SLURM_CPUS_ON_NODE");
    if (cpus && atoi(cpus) > 0) x.slots = atoi(cpus);
    x.slurm = 1;
    pt__free(slurm);
    /* Its directory, on a node that need not share the driver's disk. */
    if (dir && pt__mkdirs(dir, &err0) != PT_OK) {
      logf_(&x, "%s", err0.message);
      return 1;
    }
  }
  if (x.slots < 1) x.slots = 1;
  pt__free(id);
  pt__free(slots);
  if (sock == NULL || dir == NULL) {
    logf_(&x, "PROTIUM_EXECUTOR_SOCKET and PROTIUM_EXECUTOR_DIR must be set");
    return 2;
  }
  /* A write to a closed socket must be an error, not a signal. */
  signal(SIGPIPE, SIG_IGN);
  install_crash_note(dir);
  pt_error err = {0};
  if (pt__net_connect(sock, &x.fd, &err) != PT_OK) {
    logf_(&x, "cannot connect to the driver: %s", err.message);
    return 1;
  }
  x.tcp_fd = secret_hex ? x.fd : -1;
  pt__free(sock);
  /* Shuffle files for other hosts, at the address this host has on the
   * way to the driver: one the driver's network reaches. */
  char host[PT__HOST_MAX] = "";
  local_address(x.fd, host, sizeof host);
  if (secret_hex && tls_cert) {
    /* net.tls = on: certificates both ways, then all of the rest inside. */
    int rc = pt__tls_ctx_new(tls_cert, tls_key, tls_ca, &x.tls, &err);
    int app = -1;
    if (rc == PT_OK) rc = pt__tls_wrap(x.tls, x.fd, 0, 30000, &app, &err);
    if (rc != PT_OK) {
      logf_(&x, "TLS with the driver failed: %s", err.message);
      return 1;
    }
    x.fd = app;
  }
  pt__free(tls_cert);
  pt__free(tls_key);
  pt__free(tls_ca);
  if (secret_hex) {
    /* TCP: prove the session's secret before anything else is said. */
    int rc = pt__secret_from_hex(secret_hex, &x.secret, &err);
    OPENSSL_cleanse(secret_hex, strlen(secret_hex));
    pt__free(secret_hex);
    if (rc == PT_OK) rc = pt__auth_client(x.fd, &x.secret, 30000, &err);
    if (rc != PT_OK) {
      logf_(&x, "authentication with the driver failed: %s", err.message);
      return 1;
    }
    if (pt__block_server_start(x.env.local_dir, &x.secret, x.tls, host, &x.blocks, &err) !=
        PT_OK) {
      logf_(&x, "%s", err.message);
      return 1;
    }
    x.env.secret = &x.secret;
    x.env.tls = x.tls;
    x.env.block_address = pt__block_server_address(x.blocks);
  }

  pt__frame_decoder_init(&x.dec);
  if (handshake(&x, &x.dec, &err) != PT_OK) {
    logf_(&x, "handshake with the driver failed: %s", err.message);
    return 1;
  }
  pthread_mutex_init(&x.mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadlines come from now_us() */
  pthread_cond_init(&x.work, &ca);
  pthread_cond_init(&x.reply_cv, &ca);
  pthread_condattr_destroy(&ca);
  x.running_ids = pt__calloc((size_t)x.slots, sizeof *x.running_ids);
  x.stops = pt__calloc((size_t)x.slots, sizeof *x.stops);
  x.areas = pt__calloc((size_t)x.slots, sizeof *x.areas);
  if (x.running_ids == NULL || x.stops == NULL || x.areas == NULL) die(&x, "out of memory");
  x.env.coord_call = coord_call;
  x.env.coord_check = coord_check;
  x.env.coord_arg = &x;
  x.next_heartbeat_us = now_us() + x.heartbeat_ms * 1000;
  /* The read that brought Welcome may have brought the first launches too:
   * poll would not report them again. This thread holds the reader role
   * until it enters worker_main. */
  if (dispatch_buffered(&x, &x.dec)) return 0;
  for (int i = 0; i < x.slots; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker_main, &x) != 0) die(&x, "cannot start worker threads");
    pthread_detach(t);
  }
  if (x.silence_ms > 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, watch_main, &x) != 0) die(&x, "cannot start a thread");
    pthread_detach(t);
  }
  worker_main(&x);
  return 0;
}

/* Called before main() by the constructor include/protium.h puts in the
 * user's program: it runs after the program's PT_REGISTER_FN constructors,
 * which a constructor of the library itself would not when libprotium is a
 * shared library (its constructors run before the program's). */
void pt_executor_hook(void) {
  if (getenv("PROTIUM_EXECUTOR_SOCKET") == NULL) return;
  int rc = pt__executor_main();
  pt__kafka_pool_clear(); /* idle Kafka clients close their connections */
  pt__sanitizer_leak_check();
  _exit(rc);
}
