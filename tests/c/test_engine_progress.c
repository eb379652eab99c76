/* test_engine_progress.c — pt_session_progress while a two-stage job runs
 * on real executors: the job's stages and tasks, done never going back,
 * nothing listed before and after.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "protium.h"

#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

/* The identity, slowly: 150 ms per batch. */
static int slow(const pt_task_context *ctx, const struct ArrowSchema *schema,
                const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                size_t arg_size, pt_error *err) {
  usleep(150 * 1000);
  return pt_array_slice((struct ArrowArray *)batch, 0, batch->length, out, err);
}
PT_REGISTER_FN(slow)

static pt_session *S;

static int setup(void **state) {
  CHECK(pt_session_open("local[2]", NULL, &S, &err));
  return 0;
}

static int teardown(void **state) {
  pt_session_close(S);
  return 0;
}

static void *count_job(void *arg) {
  int64_t n = -1;
  CHECK(pt_count((pt_dataset *)arg, &n, &err));
  assert_int_equal(n, 600);
  return NULL;
}

static void test_progress_of_a_running_job(void **state) {
  /* 2 map tasks, then 4 reduce tasks of 2 batches (one segment per map) */
  pt_dataset *r, *sh, *m;
  CHECK(pt_range(S, 0, 600, 2, &r, &err));
  CHECK(pt_repartition(r, 4, &sh, &err));
  CHECK(pt_map_batches(sh, slow, NULL, NULL, 0, &m, &err));
  pt_job_progress p[4];
  int64_t n = -1;
  CHECK(pt_session_progress(S, p, 4, &n, &err));
  assert_int_equal(n, 0); /* nothing running yet */
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, count_job, m), 0);
  int seen_mid = 0;
  int64_t last_done = 0;
  for (int i = 0; i < 400; i++) { /* up to 20 s: generous */
    CHECK(pt_session_progress(S, p, 4, &n, &err));
    if (n == 0 && seen_mid) break;
    if (n == 1) {
      assert_int_equal(p[0].stages, 2);
      assert_int_equal(p[0].tasks, 2 + 4);
      assert_true(p[0].tasks_done >= last_done); /* no loss here: never goes back */
      assert_true(p[0].tasks_done + p[0].tasks_running <= p[0].tasks);
      last_done = p[0].tasks_done;
      if (p[0].stages_done == 1 && p[0].tasks_running > 0) seen_mid = 1;
    }
    usleep(50 * 1000);
  }
  pthread_join(th, NULL);
  assert_true(seen_mid); /* the map stage done, reducers running */
  CHECK(pt_session_progress(S, p, 4, &n, &err));
  assert_int_equal(n, 0);
  pt_error e = {0};
  assert_int_equal(pt_session_progress(S, NULL, 4, &n, &e), PT_EINVAL);
  pt_dataset_free(m);
  pt_dataset_free(sh);
  pt_dataset_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_progress_of_a_running_job),
  };
  return cmocka_run_group_tests_name("engine_progress", tests, setup, teardown);
}
