/* test_bufpool.c — the buffer pools sources write batches into
 * (src/exec/bufpool.c): a released array's buffer comes back for the next,
 * the pool keeps no more than asked, outlives its owner while buffers are
 * out, takes buffers back from other threads, and fails cleanly when
 * memory runs out.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "exec/exec_int.h"

static void new_array(struct ArrowArray *a) {
  assert_int_equal(pt__array_init(a, 2, 0, false, NULL), PT_OK);
}

static void test_a_released_buffer_is_reused(void **state) {
  (void)state;
  pt__bufpool *pool;
  assert_int_equal(pt__bufpool_new(1000, 2, &pool, NULL), PT_OK);
  assert_int_equal(pt__bufpool_size(pool), 1024); /* rounded up to 64 */
  struct ArrowArray a, b;
  void *pa, *pb;
  new_array(&a);
  assert_int_equal(pt__bufpool_attach(pool, &a, 1, &pa, NULL), PT_OK);
  assert_ptr_equal(a.buffers[1], pa);
  assert_int_equal((uintptr_t)pa % 64, 0);
  memset(pa, 0xab, 1024); /* the whole size is ours to write */
  a.release(&a);
  new_array(&b);
  assert_int_equal(pt__bufpool_attach(pool, &b, 1, &pb, NULL), PT_OK);
  assert_ptr_equal(pa, pb);
  pt__bufpool_unref(pool);
  b.release(&b); /* the pool ends with its last buffer */
}

static void test_the_pool_keeps_at_most_what_it_was_told(void **state) {
  (void)state;
  pt__bufpool *pool;
  assert_int_equal(pt__bufpool_new(64, 2, &pool, NULL), PT_OK);
  struct ArrowArray arrays[5];
  void *first[5], *again[5];
  for (int i = 0; i < 5; i++) {
    new_array(&arrays[i]);
    assert_int_equal(pt__bufpool_attach(pool, &arrays[i], 1, &first[i], NULL), PT_OK);
  }
  for (int i = 0; i < 5; i++) arrays[i].release(&arrays[i]);
  /* the first two returned are kept (the rest freed), handed out latest
   * first */
  for (int i = 0; i < 5; i++) {
    new_array(&arrays[i]);
    assert_int_equal(pt__bufpool_attach(pool, &arrays[i], 1, &again[i], NULL), PT_OK);
  }
  assert_ptr_equal(again[0], first[1]);
  assert_ptr_equal(again[1], first[0]);
  for (int i = 0; i < 5; i++) arrays[i].release(&arrays[i]);
  pt__bufpool_unref(pool);
}

/* Arrays released on another thread, as pyarrow or a sink thread does. */
typedef struct {
  struct ArrowArray *arrays;
  int n;
} releaser;

static void *release_all(void *arg) {
  releaser *r = arg;
  for (int i = 0; i < r->n; i++) r->arrays[i].release(&r->arrays[i]);
  return NULL;
}

static void test_buffers_come_back_from_other_threads(void **state) {
  (void)state;
  enum { ROUNDS = 50, PER = 8 };
  pt__bufpool *pool;
  assert_int_equal(pt__bufpool_new(4096, 4, &pool, NULL), PT_OK);
  for (int round = 0; round < ROUNDS; round++) {
    struct ArrowArray arrays[PER];
    for (int i = 0; i < PER; i++) {
      void *p;
      new_array(&arrays[i]);
      assert_int_equal(pt__bufpool_attach(pool, &arrays[i], 1, &p, NULL), PT_OK);
      memset(p, round, 4096);
    }
    releaser r = {arrays, PER};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_all, &r), 0);
    if (round == ROUNDS - 1) pt__bufpool_unref(pool); /* while buffers are still out */
    pthread_join(t, NULL);
  }
}

static void test_out_of_memory_leaves_the_array_as_it_was(void **state) {
  (void)state;
  pt__bufpool *pool;
  pt_error err;
  assert_int_equal(pt__bufpool_new(256, 1, &pool, NULL), PT_OK);
  for (int64_t n = 0; n < 2; n++) { /* the buffer, then its holder */
    struct ArrowArray a;
    void *p = (void *)1;
    new_array(&a);
    pt__alloc_fail_after(n);
    int rc = pt__bufpool_attach(pool, &a, 1, &p, &err);
    pt__alloc_fail_after(-1);
    assert_int_equal(rc, PT_ENOMEM);
    assert_string_equal(err.message, "out of memory for a buffer of 256 bytes");
    assert_null(p);
    assert_null(a.buffers[1]);
    a.release(&a);
  }
  pt__alloc_fail_after(0);
  pt__bufpool *none = (pt__bufpool *)1;
  assert_int_equal(pt__bufpool_new(256, 1, &none, &err), PT_ENOMEM);
  pt__alloc_fail_after(-1);
  assert_null(none);
  assert_int_equal(pt__bufpool_new(0, 1, &none, &err), PT_EINVAL);
  pt__bufpool_unref(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_released_buffer_is_reused),
      cmocka_unit_test(test_the_pool_keeps_at_most_what_it_was_told),
      cmocka_unit_test(test_buffers_come_back_from_other_threads),
      cmocka_unit_test(test_out_of_memory_leaves_the_array_as_it_was),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
