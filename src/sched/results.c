/* results.c — results over the network: an executor whose files the driver
 * cannot read (another host, or net.results = stream) writes each result
 * partition into its own directory, and the driver fetches the file from
 * that executor's block server into the job's results directory before the
 * task counts as done. Fetches run on threads of their own: a large result
 * must not stall the loop that schedules every other task. A small result
 * comes in its task's status instead (pt__results_inline), no fetch at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "exec/blocks.h"
#include "net/net.h"
#include "sched/sched.h"

#define FETCH_THREADS 2
/* Bytes per block request: the block protocol's limit is one frame. */
#define FETCH_CHUNK (16u << 20)

typedef struct fetch {
  int64_t job_id, stage_id, stage_attempt, partition, exec_id, pid;
  int64_t rows, count;
  int64_t size;       /* bytes of the executor's file */
  char *addr;         /* its block server, "HOST:PORT" (owned) */
  char *remote;       /* the file there (owned) */
  char *local;        /* <results dir>/<job>/part-<p>-<a>.arrows (owned) */
  int rc, unreachable;
  char error[PT_ERROR_SIZE];
  struct fetch *next;
} fetch;

struct pt__rfetch {
  pt__driver *d;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  fetch *queue, **queue_tail; /* (mu) waiting for a thread */
  fetch *done;                /* (mu) ended, for the loop */
  int stop;                   /* (mu) */
  pthread_t threads[FETCH_THREADS];
  int n_threads;
  /* PROTIUM_FAULT_RESULT_FETCH=kill_executor (tests): the executor of the
   * session's first result fetch is killed just before it, once. */
  int kill_first; /* (mu) */
};

static void fetch_free(fetch *f) {
  if (!f) return;
  pt__free(f->addr);
  pt__free(f->remote);
  pt__free(f->local);
  pt__free(f);
}

/* Whether host names the machine called self: equal, or one is the
 * other's first label (a node name beside a fully qualified host name). */
static int same_host(const char *host, const char *self) {
  size_t a = strcspn(host, "."), b = strcspn(self, ".");
  if (strcmp(host, self) == 0) return 1;
  return a == b && strncmp(host, self, a) == 0 && (!host[a] || !self[b]);
}

int pt__executor_here(const pt__executor *ex) {
  if (!ex->block_address) return 1; /* unix sockets: this machine */
  char self[256] = "";
  if (gethostname(self, sizeof self - 1) != 0) return 0;
  return ex->host && same_host(ex->host, self);
}

int pt__results_stream_for(const pt__driver *d, const pt__executor *ex) {
  if (!ex->block_address) return 0; /* unix sockets: this machine */
  if (d->opts.results == PT__RESULTS_STREAM) return 1;
  if (d->opts.results == PT__RESULTS_FILES) return 0;
  char self[256] = "";
  if (gethostname(self, sizeof self - 1) != 0) return 1;
  return !ex->host || !same_host(ex->host, self);
}

/* The fault hook's kill: SIGKILL, then wait (5 s at most) until the
 * process has ended, so that the fetch meets a dead executor. */
static void kill_and_wait(int64_t pid) {
  if (pid <= 0 || kill((pid_t)pid, SIGKILL) != 0) return;
  char path[64];
  snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
  for (int i = 0; i < 500; i++) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512] = "";
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    const char *close_paren = ok ? strrchr(line, ')') : NULL;
    if (!close_paren || close_paren[1] != ' ' || close_paren[2] == 'Z' || close_paren[2] == 'X')
      return;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Copies the executor's file into f->local: the file made at its full
 * size, mapped, and each chunk received straight into its place. */
static void run_fetch(pt__driver *d, fetch *f) {
  pt_error err = {0};
  int fd = open(f->local, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    f->rc = pt__errorf(&err, PT_EIO, "cannot create '%s': %s", f->local, strerror(errno));
    goto done;
  }
  int e = posix_fallocate(fd, 0, (off_t)f->size);
  if (e != 0) {
    f->rc = pt__errorf(&err, PT_EIO, "cannot make '%s' %lld bytes long: %s", f->local,
                       (long long)f->size, strerror(e));
    goto close_file;
  }
  uint8_t *map = mmap(NULL, (size_t)f->size, PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    f->rc = pt__errorf(&err, PT_EIO, "cannot map '%s': %s", f->local, strerror(errno));
    goto close_file;
  }
  for (int64_t off = 0; off < f->size && f->rc == PT_OK;) {
    size_t n = f->size - off < FETCH_CHUNK ? (size_t)(f->size - off) : FETCH_CHUNK;
    f->rc = pt__block_fetch(f->addr, &d->secret, d->tls, d->opts.heartbeat_timeout_ms,
                            f->remote, off, n, map + off, &f->unreachable, &err);
    off += (int64_t)n;
  }
  munmap(map, (size_t)f->size);
close_file:
  close(fd);
done:
  if (f->rc != PT_OK) {
    unlink(f->local);
    snprintf(f->error, sizeof f->error, "%s", err.message);
  }
}

static void *fetch_main(void *arg) {
  pt__rfetch *r = arg;
  pthread_mutex_lock(&r->mu);
  for (;;) {
    while (!r->queue && !r->stop) pthread_cond_wait(&r->cv, &r->mu);
    if (r->stop) break;
    fetch *f = r->queue;
    r->queue = f->next;
    if (!r->queue) r->queue_tail = &r->queue;
    int kill_first = r->kill_first;
    r->kill_first = 0;
    pthread_mutex_unlock(&r->mu);
    if (kill_first) kill_and_wait(f->pid);
    run_fetch(r->d, f);
    pthread_mutex_lock(&r->mu);
    f->next = r->done;
    r->done = f;
    pt__cluster_wake(r->d);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static int rfetch_start(pt__driver *d) {
  pt__rfetch *r = pt__calloc(1, sizeof *r);
  if (!r) return PT_ENOMEM;
  r->d = d;
  r->queue_tail = &r->queue;
  const char *fault = getenv("PROTIUM_FAULT_RESULT_FETCH");
  r->kill_first = fault && strcmp(fault, "kill_executor") == 0;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  for (int i = 0; i < FETCH_THREADS; i++)
    if (pthread_create(&r->threads[r->n_threads], NULL, fetch_main, r) == 0) r->n_threads++;
  if (r->n_threads == 0) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    pt__free(r);
    return PT_ENOMEM;
  }
  d->rfetch = r;
  return PT_OK;
}

/* <dir>/part-<p>-<attempt>.arrows, owned by the caller. */
static char *part_path(const char *dir, long long p, long long attempt) {
  int n = snprintf(NULL, 0, "%s/part-%lld-%lld.arrows", dir, p, attempt);
  char *s = n >= 0 ? pt__malloc((size_t)n + 1) : NULL;
  if (s) snprintf(s, (size_t)n + 1, "%s/part-%lld-%lld.arrows", dir, p, attempt);
  return s;
}

int pt__results_fetch(pt__driver *d, pt__executor *ex, pt__sched_stage *st, int64_t p,
                      const Protium__TaskStatus *ts, pt_error *err) {
  if (!d->rfetch && rfetch_start(d) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "driver out of memory");
  fetch *f = pt__calloc(1, sizeof *f);
  if (!f) return pt__errorf(err, PT_ENOMEM, "driver out of memory");
  f->job_id = st->job->id;
  f->stage_id = st->id;
  f->stage_attempt = st->attempt;
  f->partition = p;
  f->exec_id = ex->id;
  f->pid = ex->pid;
  f->rows = ts->rows;
  f->count = ts->count;
  f->size = ts->bytes_written;
  f->addr = pt__strdup(ex->block_address);
  f->remote = pt__strdup(ts->output_path);
  /* The attempt number is in the executor's file name; the local name
   * keeps it so that two attempts of a partition never share a file. */
  const char *dash = strrchr(ts->output_path, '-');
  long long attempt = dash ? strtoll(dash + 1, NULL, 10) : 0;
  char *dir = NULL;
  int rc = pt__results_job_dir(d->results_memory, d->results_disk, f->job_id, &dir, err);
  if (rc != PT_OK) {
    fetch_free(f);
    return rc;
  }
  f->local = part_path(dir, (long long)p, attempt);
  pt__free(dir);
  if (!f->addr || !f->remote || !f->local) {
    fetch_free(f);
    return pt__errorf(err, PT_ENOMEM, "driver out of memory");
  }
  pt__rfetch *r = d->rfetch;
  pthread_mutex_lock(&r->mu);
  *r->queue_tail = f;
  r->queue_tail = &f->next;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return PT_OK;
}

static void release_stream(struct ArrowArrayStream *s) {
  if (s->release) s->release(s);
}

int pt__results_inline_check(const Protium__TaskStatus *ts, int64_t p, pt_error *err) {
  size_t n = ts->result_inline.len;
  if (n > PT__INLINE_RESULT_MAX)
    return pt__errorf(err, PT_EFORMAT, "the executor sent a %zu-byte result in its status, over "
                      "the %u-byte limit of inline results (an executor of another protium "
                      "version?); run the same protium on every host", n, PT__INLINE_RESULT_MAX);
  /* Checked whole now, so that a damaged result fails this attempt (and
   * is retried) instead of the collect that reads it later. */
  struct ArrowArrayStream in = {0};
  pt_error rerr = {0};
  int64_t rows = 0;
  int rc = pt_ipc_read_buffer(ts->result_inline.data, (int64_t)n, NULL, NULL, &in, &rerr);
  while (rc == PT_OK) {
    struct ArrowArray b;
    if (in.get_next(&in, &b) != 0) {
      const char *m = in.get_last_error ? in.get_last_error(&in) : NULL;
      rc = pt__errorf(&rerr, PT_EFORMAT, "%s", m && *m ? m : "unreadable record batch");
      break;
    }
    if (!b.release) break;
    rows += b.length;
    b.release(&b);
  }
  release_stream(&in);
  if (rc == PT_OK && rows != ts->rows)
    rc = pt__errorf(&rerr, PT_EFORMAT, "it holds %lld rows, the task reported %lld",
                    (long long)rows, (long long)ts->rows);
  if (rc != PT_OK)
    return pt__errorf(err, PT_EFORMAT, "the result in the status of partition %lld is not a "
                      "valid Arrow IPC stream (%zu bytes): %.600s", (long long)p, n, rerr.message);
  return PT_OK;
}

int pt__results_inline(pt__driver *d, pt__sched_stage *st, int64_t p, int32_t attempt,
                       const Protium__TaskStatus *ts, char **out, pt_error *err) {
  *out = NULL;
  size_t n = ts->result_inline.len;
  int rc = pt__results_inline_check(ts, p, err);
  if (rc != PT_OK) return rc;
  char *dir = NULL;
  PT_RETURN_NOT_OK(pt__results_job_dir(d->results_memory, d->results_disk, st->job->id, &dir,
                                       err));
  char *path = part_path(dir, (long long)p, (long long)attempt);
  pt__free(dir);
  if (!path) return pt__errorf(err, PT_ENOMEM, "driver out of memory");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = pt__errorf(err, PT_EIO, "cannot create '%s': %s", path, strerror(errno));
    pt__free(path);
    return rc;
  }
  rc = pt__write_all(fd, ts->result_inline.data, n, err);
  if (close(fd) != 0 && rc == PT_OK)
    rc = pt__errorf(err, PT_EIO, "cannot write '%s': %s", path, strerror(errno));
  if (rc != PT_OK) {
    unlink(path);
    pt__free(path);
    return rc;
  }
  *out = path;
  return PT_OK;
}

void pt__results_poll(pt__driver *d) {
  pt__rfetch *r = d->rfetch;
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  fetch *list = r->done;
  r->done = NULL;
  pthread_mutex_unlock(&r->mu);
  /* Oldest first: the list was built by pushing. */
  fetch *rev = NULL;
  while (list) {
    fetch *next = list->next;
    list->next = rev;
    rev = list;
    list = next;
  }
  while (rev) {
    fetch *f = rev;
    rev = f->next;
    pt__sched_result_fetched(d, f->job_id, f->stage_id, f->stage_attempt, f->partition,
                             f->exec_id, f->rows, f->count, f->local, f->rc, f->unreachable,
                             f->error);
    fetch_free(f);
  }
}

void pt__results_stop(pt__driver *d) {
  pt__rfetch *r = d->rfetch;
  if (!r) return;
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  for (int i = 0; i < r->n_threads; i++) pthread_join(r->threads[i], NULL);
  for (fetch *lists[2] = {r->queue, r->done}, **l = lists; l < lists + 2; l++)
    while (*l) {
      fetch *next = (*l)->next;
      fetch_free(*l);
      *l = next;
    }
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  pt__free(r);
  d->rfetch = NULL;
}
