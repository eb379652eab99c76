/* pool.c — the worker threads behind pt__pool_run: started once per process
 * on first use (one per online CPU besides the caller), then idle on a
 * condition variable between calls, never stopped (they hold nothing that
 * must be released at exit). Work is a queue of jobs, each a range of items
 * handed out one at a time under the pool lock; callers work on their own
 * job too, so a job always finishes even when no worker runs. After fork the
 * child starts with no workers and makes its own pool on first use.
 */
#include "arrow/pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

/* More would only contend for the lock: items are whole buffers. */
#define MAX_WORKERS 63

typedef struct job {
  pt__pool_fn fn;
  void *arg;
  int64_t n;        /* items */
  int64_t next;     /* first item not yet handed out (pool.lock) */
  int64_t done;     /* items finished (pool.lock) */
  struct job *link; /* next job in pool.jobs (pool.lock) */
} job;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t work;  /* signalled when jobs gets items */
  pthread_cond_t done;  /* broadcast when a job's last item finishes */
  job *jobs;            /* jobs with items left to hand out, oldest first (lock) */
  int workers;          /* threads started (start_lock; read after started) */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL,
        0};

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool started;     /* pool.workers is final (start_lock to set) */
static bool atfork_registered; /* start_lock */

/* Hands out the next item of j, which must have one; j leaves the queue
 * with its last. Called with pool.lock held. */
static int64_t claim(job *j) {
  int64_t i = j->next++;
  if (j->next == j->n) {
    job **at = &pool.jobs;
    while (*at != NULL && *at != j) at = &(*at)->link;
    if (*at == j) *at = j->link;
  }
  return i;
}

/* Called with pool.lock held, returns with it held. Once done reaches n the
 * owner may return and its job (on its stack) is gone: the broadcast is the
 * last touch. */
static void finish(job *j) {
  if (++j->done == j->n) pthread_cond_broadcast(&pool.done);
}

static void *worker_main(void *unused) {
  (void)unused;
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    job *j = pool.jobs;
    if (j == NULL) {
      pthread_cond_wait(&pool.work, &pool.lock);
      continue;
    }
    int64_t i = claim(j);
    pthread_mutex_unlock(&pool.lock);
    j->fn(j->arg, i);
    pthread_mutex_lock(&pool.lock);
    finish(j);
  }
  return NULL;
}

/* fork: the child must not inherit a lock held by a thread it does not have,
 * nor a queue of jobs whose owners do not exist there. */
static void before_fork(void) {
  pthread_mutex_lock(&start_lock);
  pthread_mutex_lock(&pool.lock);
}

static void after_fork_parent(void) {
  pthread_mutex_unlock(&pool.lock);
  pthread_mutex_unlock(&start_lock);
}

static void after_fork_child(void) {
  pthread_mutex_init(&pool.lock, NULL);
  pthread_cond_init(&pool.work, NULL);
  pthread_cond_init(&pool.done, NULL);
  pool.jobs = NULL;
  pool.workers = 0;
  atomic_store(&started, false);
  pthread_mutex_init(&start_lock, NULL);
}

/* Starts the workers once; returns how many there are. */
static int ensure_started(void) {
  if (atomic_load_explicit(&started, memory_order_acquire)) return pool.workers;
  pthread_mutex_lock(&start_lock);
  if (!atomic_load_explicit(&started, memory_order_relaxed)) {
    if (!atfork_registered)
      atfork_registered = pthread_atfork(before_fork, after_fork_parent, after_fork_child) == 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cpus > 1 ? (int)(cpus - 1 < MAX_WORKERS ? cpus - 1 : MAX_WORKERS) : 0;
    /* Without atfork handlers a child could deadlock on our lock: no workers. */
    if (!atfork_registered) want = 0;
    /* Workers take no signals: they stay the application's threads' business. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    if (want > 0 && pthread_attr_init(&attr) == 0) {
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      for (int k = 0; k < want; k++) {
        pthread_t t;
        if (pthread_create(&t, &attr, worker_main, NULL) != 0) break;
        pool.workers++;
      }
      pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atomic_store_explicit(&started, true, memory_order_release);
  }
  pthread_mutex_unlock(&start_lock);
  return pool.workers;
}

int pt__pool_workers(void) {
  return atomic_load_explicit(&started, memory_order_acquire) ? pool.workers : 0;
}

int pt__pool_threads(void) { return ensure_started() + 1; }

void pt__pool_run(int64_t n, pt__pool_fn fn, void *arg) {
  if (n <= 0) return;
  if (n == 1 || ensure_started() == 0) {
    for (int64_t i = 0; i < n; i++) fn(arg, i);
    return;
  }
  job j = {fn, arg, n, 0, 0, NULL};
  pthread_mutex_lock(&pool.lock);
  job **tail = &pool.jobs;
  while (*tail != NULL) tail = &(*tail)->link;
  *tail = &j;
  /* The caller takes one item itself; wake at most one worker per other. */
  if (n - 1 >= pool.workers) pthread_cond_broadcast(&pool.work);
  else
    for (int64_t k = 0; k < n - 1; k++) pthread_cond_signal(&pool.work);
  while (j.next < j.n) {
    int64_t i = claim(&j);
    pthread_mutex_unlock(&pool.lock);
    fn(arg, i);
    pthread_mutex_lock(&pool.lock);
    finish(&j);
  }
  while (j.done < j.n) pthread_cond_wait(&pool.done, &pool.lock);
  pthread_mutex_unlock(&pool.lock);
}
