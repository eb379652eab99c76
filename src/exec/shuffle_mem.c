/* shuffle_mem.c — map output kept in the executor's memory instead of a
 * file, up to a budget per executor (shuffle.memory_mb): reduce tasks of
 * this executor read it in place, the block server sends it to the others.
 * Outputs over the budget go to files as before. Buffers of outputs
 * cleaned up are kept (up to POOL_MAX bytes) for the next map task.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "exec/exec_int.h"

/* Cleaned-up buffers kept for reuse: memory the kernel hands out afresh is
 * slow to touch the first time (see shuffle.c), a buffer written before is
 * not. */
#define POOL_MAX ((int64_t)256 << 20)

struct pt__mem_out {
  struct pt__mem_out *next;
  int64_t shuffle_id;
  char *path;  /* the name the output has everywhere (owned) */
  pt_buf buf;  /* the IPC segments, as the file would hold them */
  int refs;    /* (mu) the table's, while listed, and each reader's */
};

typedef struct pooled_buf {
  struct pooled_buf *next;
  pt_buf buf;
} pooled_buf;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pt__mem_out *outs;    /* (mu) */
static int64_t budget;       /* (mu) bytes; 0 = off */
static int64_t used;         /* (mu) bytes charged by listed outputs and reservations */
static pooled_buf *pool;     /* (mu) */
static int64_t pool_bytes;   /* (mu) */

void pt__mem_set_budget(int64_t bytes) {
  pthread_mutex_lock(&mu);
  budget = bytes > 0 ? bytes : 0;
  pthread_mutex_unlock(&mu);
}

int pt__mem_reserve(int64_t bytes) {
  int ok;
  pthread_mutex_lock(&mu);
  ok = budget > 0 && bytes >= 0 && used + bytes <= budget;
  if (ok) used += bytes;
  pthread_mutex_unlock(&mu);
  return ok;
}

void pt__mem_unreserve(int64_t bytes) {
  pthread_mutex_lock(&mu);
  used -= bytes;
  pthread_mutex_unlock(&mu);
}

void pt__mem_buf_get(size_t want, pt_buf *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&mu);
  /* The smallest that fits, else the biggest (it grows from there). */
  pooled_buf **best = NULL;
  for (pooled_buf **p = &pool; *p != NULL; p = &(*p)->next) {
    size_t cap = (*p)->buf.cap, bc = best ? (*best)->buf.cap : 0;
    if (best == NULL || (cap >= want && (bc < want || cap < bc)) || (bc < want && cap > bc))
      best = p;
  }
  pooled_buf *got = NULL;
  if (best != NULL) {
    got = *best;
    *best = got->next;
    pool_bytes -= (int64_t)got->buf.cap;
  }
  pthread_mutex_unlock(&mu);
  if (got != NULL) {
    *out = got->buf;
    out->len = 0;
    pt__free(got);
  }
}

void pt__mem_buf_put(pt_buf *b) {
  pooled_buf *p = b->data != NULL ? pt__malloc(sizeof *p) : NULL;
  if (p != NULL) {
    pthread_mutex_lock(&mu);
    if (pool_bytes + (int64_t)b->cap <= POOL_MAX) {
      p->buf = *b;
      p->next = pool;
      pool = p;
      pool_bytes += (int64_t)b->cap;
      p = NULL;
      memset(b, 0, sizeof *b);
    }
    pthread_mutex_unlock(&mu);
    pt__free(p);
  }
  pt_buf_free(b);
}

static void out_free(pt__mem_out *o) {
  pt__mem_buf_put(&o->buf);
  pt__free(o->path);
  pt__free(o);
}

int pt__mem_put(int64_t shuffle_id, const char *path, pt_buf *buf, int64_t charged,
                int *listed, pt_error *err) {
  *listed = 0;
  pt__mem_out *o = pt__calloc(1, sizeof *o);
  char *p = pt__strdup(path);
  if (o == NULL || p == NULL) {
    pt__free(o);
    pt__free(p);
    pt__mem_unreserve(charged);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&mu);
  /* What the reservation guessed becomes what the buffer holds, if that
   * still fits. */
  int fits = used - charged + (int64_t)buf->cap <= budget;
  used += fits ? (int64_t)buf->cap - charged : -charged;
  if (fits) {
    o->shuffle_id = shuffle_id;
    o->path = p;
    o->buf = *buf;
    memset(buf, 0, sizeof *buf);
    o->refs = 1;
    o->next = outs;
    outs = o;
  }
  pthread_mutex_unlock(&mu);
  if (!fits) {
    pt__free(o);
    pt__free(p);
  }
  *listed = fits;
  return PT_OK;
}

pt__mem_out *pt__mem_get(const char *path, const uint8_t **data, size_t *len) {
  pthread_mutex_lock(&mu);
  pt__mem_out *o = outs;
  while (o != NULL && strcmp(o->path, path) != 0) o = o->next;
  if (o != NULL) {
    o->refs++;
    *data = (const uint8_t *)o->buf.data;
    *len = o->buf.len;
  }
  pthread_mutex_unlock(&mu);
  return o;
}

void pt__mem_unref(pt__mem_out *o) {
  if (o == NULL) return;
  pthread_mutex_lock(&mu);
  int last = --o->refs == 0;
  pthread_mutex_unlock(&mu);
  if (last) out_free(o);
}

void pt__mem_drop(int64_t shuffle_id) {
  pt__mem_out *dropped = NULL;
  pthread_mutex_lock(&mu);
  for (pt__mem_out **pp = &outs; *pp != NULL;) {
    pt__mem_out *o = *pp;
    if (o->shuffle_id != shuffle_id) {
      pp = &o->next;
      continue;
    }
    *pp = o->next;
    used -= (int64_t)o->buf.cap;
    if (--o->refs == 0) {
      o->next = dropped;
      dropped = o;
    }
  }
  pthread_mutex_unlock(&mu);
  while (dropped != NULL) {
    pt__mem_out *next = dropped->next;
    out_free(dropped);
    dropped = next;
  }
}

int64_t pt__mem_used(void) {
  pthread_mutex_lock(&mu);
  int64_t u = used;
  pthread_mutex_unlock(&mu);
  return u;
}
