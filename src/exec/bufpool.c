/* bufpool.c — equal-size batch buffers that a source hands out and gets
 * back when the arrays holding them are released, so that each batch is
 * written into memory already mapped and warm instead of a fresh allocation
 * (a large one is a new mapping whose every page faults in: ~200 us for a
 * 512 KiB batch against ~10 us to fill it). See pt__bufpool in exec_int.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"

struct pt__bufpool {
  pt__shared *self;    /* one reference for the owner, one per buffer out */
  pthread_mutex_t mu;  /* guards n_free and free_list (arrays are released
                          on any thread) */
  size_t size;         /* bytes of every buffer, a multiple of 64 */
  int keep;            /* at most this many returned buffers are kept */
  int n_free;
  void **free_list;    /* keep entries */
};

static void pool_destroy(void *data, void *arg) {
  (void)arg;
  pt__bufpool *pool = data;
  for (int i = 0; i < pool->n_free; i++) pt__free(pool->free_list[i]);
  pthread_mutex_destroy(&pool->mu);
  pt__free(pool->free_list);
  pt__free(pool);
}

int pt__bufpool_new(size_t size, int keep, pt__bufpool **out, pt_error *err) {
  *out = NULL;
  size_t rounded = (size + 63) & ~(size_t)63;
  if (rounded < size || rounded == 0 || keep < 0)
    return pt__errorf(err, PT_EINVAL, "buffer pool: bad size %zu or count %d", size, keep);
  pt__bufpool *pool = pt__calloc(1, sizeof *pool);
  void **list = pt__calloc(keep > 0 ? (size_t)keep : 1, sizeof *list);
  pt__shared *self = pool && list ? pt__shared_new(pool, pool_destroy, NULL) : NULL;
  if (self == NULL) {
    pt__free(list);
    pt__free(pool);
    return pt__errorf(err, PT_ENOMEM, "out of memory for a buffer pool");
  }
  pthread_mutex_init(&pool->mu, NULL);
  pool->self = self;
  pool->size = rounded;
  pool->keep = keep;
  pool->free_list = list;
  *out = pool;
  return PT_OK;
}

void pt__bufpool_unref(pt__bufpool *pool) {
  if (pool != NULL) pt__shared_unref(pool->self);
}

size_t pt__bufpool_size(const pt__bufpool *pool) { return pool->size; }

/* A buffer's holder ran out of references: back to the pool, or freed
 * when the pool keeps enough; then the buffer's reference on the pool. */
static void give_back(void *buffer, void *arg) {
  pt__bufpool *pool = arg;
  pthread_mutex_lock(&pool->mu);
  if (pool->n_free < pool->keep) {
    pool->free_list[pool->n_free++] = buffer;
    buffer = NULL;
  }
  pthread_mutex_unlock(&pool->mu);
  pt__free(buffer);
  pt__shared_unref(pool->self);
}

int pt__bufpool_attach(pt__bufpool *pool, struct ArrowArray *a, int64_t i, void **out,
                       pt_error *err) {
  *out = NULL;
  void *buffer = NULL;
  pthread_mutex_lock(&pool->mu);
  if (pool->n_free > 0) buffer = pool->free_list[--pool->n_free];
  pthread_mutex_unlock(&pool->mu);
  if (buffer == NULL) buffer = pt__malloc_aligned(pool->size);
  pt__shared *holder = buffer ? pt__shared_new(buffer, give_back, pool) : NULL;
  if (holder == NULL) {
    pt__free(buffer);
    return pt__errorf(err, PT_ENOMEM, "out of memory for a buffer of %zu bytes", pool->size);
  }
  pt__shared_ref(pool->self);
  pt__array_set_buffer(a, i, buffer, false);
  pt__array_hold(a, holder); /* the array's reference; ours goes */
  pt__shared_unref(holder);
  *out = buffer;
  return PT_OK;
}
