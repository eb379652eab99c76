/* barrier_area.c — barrier() of one stage attempt's tasks on one host, in a
 * mapped file: a counter of arrivals, a step number, and a futex word to
 * sleep on. Lock-free, so a task killed anywhere in it leaves nothing held;
 * its peers learn of the death from the driver (pt__area_stop).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "exec/barrier_area.h"
#include "net/control.pb-c.h"

_Static_assert(sizeof(pt__area_head) == 128, "area header layout");
_Static_assert(sizeof(pt__area_slot) == 64, "area slot layout");

/* A sleeping waiter looks again at least this often, whatever it waits for. */
#define RECHECK_NS 100000000

size_t pt__area_size(int64_t n) {
  return sizeof(pt__area_head) + (size_t)(n > 0 ? n : 1) * sizeof(pt__area_slot);
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Shared (not private) futex operations: the waiters are other processes. */
static void futex_wait(_Atomic uint32_t *word, uint32_t expect, int64_t ns) {
  struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
  (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expect, &ts, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word) {
  (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Tells every waiter that something changed. */
static void ring(pt__area_head *h) {
  atomic_fetch_add(&h->bell, 1);
  if (atomic_load(&h->sleepers) > 0) futex_wake_all(&h->bell);
}

int pt__area_create(const char *path, int64_t stage_id, int64_t attempt, int64_t n,
                    int64_t timeout_ms, pt_error *err) {
  if (n <= 0 || n > (INT64_C(1) << 24))
    return pt__errorf(err, PT_EINVAL, "barrier area: %lld tasks is out of range", (long long)n);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return pt__errorf(err, PT_EIO, "barrier area %s: cannot create: %s", path, strerror(errno));
  pt__area_head h;
  memset(&h, 0, sizeof h);
  h.magic = PT__AREA_MAGIC;
  h.slot_size = sizeof(pt__area_slot);
  h.stage_id = stage_id;
  h.attempt = attempt;
  h.n = n;
  h.timeout_ms = timeout_ms;
  int rc = PT_OK;
  /* The fixed fields, then zeros (a sparse tail) up to the full size. */
  if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || ftruncate(fd, (off_t)pt__area_size(n)))
    rc = pt__errorf(err, PT_EIO, "barrier area %s: cannot write: %s", path, strerror(errno));
  close(fd);
  if (rc != PT_OK) unlink(path);
  return rc;
}

int pt__area_open(const char *path, int64_t stage_id, int64_t attempt, int64_t n,
                  pt__area *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return pt__errorf(err, PT_EIO, "barrier area %s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  size_t want = pt__area_size(n);
  if (fstat(fd, &sb) != 0 || n <= 0 || (uint64_t)sb.st_size != (uint64_t)want) {
    close(fd);
    return pt__errorf(err, PT_EFORMAT, "barrier area %s: not the area of %lld tasks (size %lld)",
                      path, (long long)n, (long long)sb.st_size);
  }
  void *m = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  close(fd);
  if (m == MAP_FAILED)
    return pt__errorf(err, PT_EIO, "barrier area %s: cannot map: %s", path, strerror(e));
  pt__area_head *h = m;
  if (h->magic != PT__AREA_MAGIC || h->slot_size != sizeof(pt__area_slot) ||
      h->stage_id != stage_id || h->attempt != attempt || h->n != n) {
    munmap(m, want);
    return pt__errorf(err, PT_EFORMAT, "barrier area %s: not the area of stage %lld attempt "
                      "%lld", path, (long long)stage_id, (long long)attempt);
  }
  out->head = h;
  out->slots = (pt__area_slot *)((char *)m + sizeof(pt__area_head));
  out->size = want;
  out->n = n;
  return PT_OK;
}

void pt__area_close(pt__area *a) {
  if (a->head) munmap(a->head, a->size);
  memset(a, 0, sizeof *a);
}

void pt__area_stop(pt__area *a) {
  if (!a->head) return;
  atomic_store(&a->head->stopped, 1);
  ring(a->head);
}

void pt__area_ended(pt__area *a, int64_t p) {
  if (!a->head || p < 0 || p >= a->n) return;
  pt__area_slot *s = &a->slots[p];
  atomic_store(&s->ended, atomic_load(&s->calls) + 1);
  ring(a->head);
}

static const char *kind_name(int kind) {
  return kind == PROTIUM__BARRIER_KIND__BARRIER_KIND_ALL_GATHER ? "all_gather()" : "barrier()";
}

/* A peer that returned before making call seq: the step can never end. */
static int find_ended(pt__area *a, int64_t seq) {
  for (int64_t q = 0; q < a->n; q++) {
    int64_t e = atomic_load(&a->slots[q].ended);
    if (e != 0 && e - 1 <= seq) return (int)q;
  }
  return -1;
}

/* barrier.timeout's message names the partitions that never arrived. */
static void timed_out(pt__area *a, int64_t seq, int kind, char *why, size_t cap) {
  char missing[256], t[32];
  size_t len = 0;
  int named = 0;
  missing[0] = '\0';
  for (int64_t q = 0; q < a->n && len + 24 < sizeof missing; q++) {
    if (atomic_load(&a->slots[q].calls) > seq) continue;
    if (named == 16) {
      len += (size_t)snprintf(missing + len, sizeof missing - len, ", ...");
      break;
    }
    len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%lld", named ? ", " : "",
                            (long long)q);
    named++;
  }
  int64_t ms = a->head->timeout_ms;
  if (ms % 1000 == 0) snprintf(t, sizeof t, "%llds", (long long)(ms / 1000));
  else snprintf(t, sizeof t, "%lldms", (long long)ms);
  snprintf(why, cap, "%s step %lld timed out after %s (barrier.timeout): partitions %s never "
           "arrived", kind_name(kind), (long long)seq, t, missing);
}

int pt__area_step(pt__area *a, int64_t p, int64_t seq, int kind, int *code, char *why,
                  size_t cap) {
  pt__area_head *h = a->head;
  if (atomic_load(&h->stopped)) return PT__AREA_STOPPED;
  /* The first call of the step sets its kind; a later one that differs is
   * a fault (the step cannot complete). */
  uint64_t me = ((uint64_t)(p + 1) << 2) | (uint64_t)(kind & 3);
  uint64_t first = 0;
  if (atomic_compare_exchange_strong(&h->first, &first, me)) {
    atomic_store(&h->first_ns, mono_ns());
    first = me;
  } else if ((int)(first & 3) != kind) {
    *code = PT_EINVAL;
    snprintf(why, cap, "step %lld: partition %lld called %s but partition %lld called %s; every "
             "task must make the same calls in the same order", (long long)seq, (long long)p,
             kind_name(kind), (long long)(first >> 2) - 1, kind_name((int)(first & 3)));
    return PT__AREA_FAULT;
  }
  atomic_store(&a->slots[p].calls, seq + 1);
  int q = find_ended(a, seq);
  if (q >= 0) goto returned;
  if (atomic_fetch_add(&h->arrived, 1) + 1 == (uint32_t)a->n) {
    /* The last arrival: reset the step, then open the next one. Nobody can
     * touch the step's fields until `steps` moves. */
    atomic_store(&h->arrived, 0);
    atomic_store(&h->first_ns, 0);
    atomic_store(&h->first, 0);
    atomic_store(&h->steps, seq + 1);
    ring(h);
    return PT__AREA_DONE;
  }
  /* No spinning: measured on a busy host, a spinning waiter holds the
   * core its last peer needs, and a futex wake-up is cheaper than that. */
  for (;;) {
    uint32_t bell = atomic_load(&h->bell);
    if (atomic_load(&h->steps) > seq) return PT__AREA_DONE;
    if (atomic_load(&h->stopped)) return PT__AREA_STOPPED;
    if ((q = find_ended(a, seq)) >= 0) goto returned;
    int64_t now = mono_ns();
    int64_t since = atomic_load(&h->first_ns);
    int64_t limit = h->timeout_ms * 1000000;
    if (since > 0 && now - since > limit) {
      *code = PT_ETIMEDOUT;
      timed_out(a, seq, kind, why, cap);
      return PT__AREA_FAULT;
    }
    int64_t wait = since > 0 ? since + limit - now + 1000000 : RECHECK_NS;
    if (wait > RECHECK_NS) wait = RECHECK_NS;
    if (wait < 1000) wait = 1000;
    atomic_fetch_add(&h->sleepers, 1);
    /* Changes made before the bell moved are seen here or wake the wait. */
    if (atomic_load(&h->bell) == bell) futex_wait(&h->bell, bell, wait);
    atomic_fetch_sub(&h->sleepers, 1);
  }
returned:
  *code = PT_ESTATE;
  snprintf(why, cap, "partition %d returned without calling %s step %lld, in which others "
           "wait; every task must make the same calls", q, kind_name(kind), (long long)seq);
  return PT__AREA_FAULT;
}
