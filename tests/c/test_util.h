/* test_util.h — helpers the engine tests share: CHECK (a call that must
 * succeed, failing the test with its message), a local session with a few
 * configuration keys, the int64 column of a whole dataset collected and
 * sorted, the faults the SQL write tests inject, and a watch on a session's
 * executors that looks at the database while one of them is stopped (a
 * duplicated attempt). Header-only (static functions) so that each test
 * program stays one translation unit.
 */
#ifndef PT_TEST_UTIL_H
#define PT_TEST_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "protium.h"

/* Not every test program uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

/* call must return PT_OK; it sees a fresh `err` to fill. */
#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

/* A session on master with conf keys kv[0]=kv[1], kv[2]=kv[3] ... (n_kv
 * strings; kv may be NULL). NULL on failure, the reason on stderr. The
 * caller owns the session. */
static pt_session *pt_test_session(const char *master, const char *const *kv, int n_kv) {
  pt_conf *conf;
  pt_error err = {0};
  if (pt_conf_new(&conf, &err) != PT_OK) {
    fprintf(stderr, "%s\n", err.message);
    return NULL;
  }
  for (int i = 0; i + 1 < n_kv; i += 2)
    if (pt_conf_set(conf, kv[i], kv[i + 1], &err) != PT_OK) {
      fprintf(stderr, "%s\n", err.message);
      pt_conf_free(conf);
      return NULL;
    }
  pt_session *s = NULL;
  if (pt_session_open(master, conf, &s, &err) != PT_OK) fprintf(stderr, "%s\n", err.message);
  pt_conf_free(conf);
  return s;
}

/* What pt_test_ids found in a dataset. */
typedef struct pt_test_ids {
  int64_t *ids;       /* the non-null values, sorted ascending; owned (free) */
  int64_t n;          /* of ids */
  int64_t rows;       /* all rows, null ids included */
  int64_t nulls;      /* rows whose id is null */
  int64_t max_batch;  /* the longest batch seen */
  int64_t sum;        /* of ids */
} pt_test_ids;

static int pt_test_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Collects column `column` (int64, "l") of every row of ds into *out, sorted.
 * Fails the test when the column is not int64. */
static void pt_test_ids_collect(pt_dataset *ds, int64_t column, pt_test_ids *out) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  struct ArrowSchema schema;
  assert_int_equal(st.get_schema(&st, &schema), 0);
  assert_true(column < schema.n_children);
  assert_string_equal(schema.children[column]->format, "l");
  *out = (pt_test_ids){0};
  int64_t cap = 0;
  struct ArrowArray b;
  while (st.get_next(&st, &b) == 0 && b.release) {
    const struct ArrowArray *c = b.children[column];
    const int64_t *v = (const int64_t *)c->buffers[1] + c->offset;
    if (out->n + b.length > cap) {
      cap = 2 * (out->n + b.length);
      out->ids = realloc(out->ids, (size_t)cap * sizeof *out->ids);
      assert_non_null(out->ids);
    }
    for (int64_t r = 0; r < b.length; r++) {
      if (pt_array_is_valid(schema.children[column], c, r)) {
        out->ids[out->n++] = v[r];
        out->sum += v[r];
      } else {
        out->nulls++;
      }
    }
    out->rows += b.length;
    if (b.length > out->max_batch) out->max_batch = b.length;
    b.release(&b);
  }
  schema.release(&schema);
  st.release(&st);
  if (out->n > 1) qsort(out->ids, (size_t)out->n, sizeof *out->ids, pt_test_cmp_i64);
}

/* 1 when ids are exactly first, first + 1, ..., first + n - 1. */
static int pt_test_ids_are_range(const pt_test_ids *t, int64_t first, int64_t n) {
  if (t->n != n) return 0;
  for (int64_t i = 0; i < n; i++)
    if (t->ids[i] != first + i) return 0;
  return 1;
}

/* ------------------------------------------------------------------------ */
/* The faults the SQL write tests (PostgreSQL, MariaDB) inject, the same for
 * every database: over pt_range(0, 40000, 4 partitions) in batches of 1000,
 * partition 1's first attempt kills its executor at its fourth batch (ids
 * from 13000) and partition 2's fails at its sixth (ids from 25000), each
 * after staging rows; partition 3 can be made to fail on every attempt. */

enum { PT_TEST_NO_FAULT, PT_TEST_KILL, PT_TEST_FAIL };

/* The id the batch starts with (column 0, int64). */
static int64_t pt_test_first_id(const struct ArrowArray *batch) {
  const struct ArrowArray *c = batch->children[0];
  return ((const int64_t *)c->buffers[1])[c->offset + batch->offset];
}

/* Which fault this batch of this attempt gets. */
static int pt_test_write_fault(const pt_task_context *ctx, const struct ArrowArray *batch) {
  if (pt_ctx_task_attempt(ctx) != 0) return PT_TEST_NO_FAULT;
  int64_t first = pt_test_first_id(batch), p = pt_ctx_partition_id(ctx);
  if (p == 1 && first == 13000) return PT_TEST_KILL;
  if (p == 2 && first == 25000) return PT_TEST_FAIL;
  return PT_TEST_NO_FAULT;
}

/* Carries out fault (from pt_test_write_fault) or copies the batch: a map
 * function's body. */
static int pt_test_apply_fault(int fault, const struct ArrowSchema *schema,
                               const struct ArrowArray *batch, struct ArrowArray *out,
                               pt_error *err) {
  if (fault == PT_TEST_KILL) raise(SIGKILL);
  if (fault == PT_TEST_FAIL) {
    snprintf(err->message, sizeof err->message, "injected failure after 5 batches");
    return err->code = PT_EIO;
  }
  return pt_array_copy(schema, batch, out, err);
}

/* The body of a map function whose partition 3 always fails. */
static int pt_test_partition3_fails(const pt_task_context *ctx, const struct ArrowSchema *schema,
                                    const struct ArrowArray *batch, struct ArrowArray *out,
                                    pt_error *err) {
  if (pt_ctx_partition_id(ctx) == 3 && pt_test_first_id(batch) == 35000) {
    snprintf(err->message, sizeof err->message, "partition 3 always fails");
    return err->code = PT_EIO;
  }
  return pt_array_copy(schema, batch, out, err);
}

/* The last job of ds saw exactly the two injected faults: two failed
 * tasks, one of them by the executor it killed. */
static void pt_test_assert_two_faults(pt_dataset *ds) {
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(ds, &js, &err));
  pt_stage_stats tot;
  pt_job_stats_total(js, &tot);
  assert_int_equal(tot.tasks_failed, 2);
  assert_int_equal(tot.failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 1);
  assert_int_equal(js->executors_lost, 1);
  pt_job_stats_free(js);
}

/* ------------------------------------------------------------------------ */
/* A duplicated attempt, the same for every database: with
 * PROTIUM_FAULT_SQL_STOP_STAGED=<p> the first attempt of partition p stops
 * its executor (SIGSTOP) once its staging table is complete, before its
 * status goes out; the heartbeat timeout makes the driver find it lost,
 * kill it and run p again, so two complete staging tables exist for p, one
 * the driver never hears of. pt_test_freeze watches the executors from a
 * thread and, while one is stopped, lets the test look at the database. */

typedef struct pt_test_freeze {
  pt_session *s;                          /* whose executors are watched */
  void (*look)(struct pt_test_freeze *f); /* fills seen (and id); called once at most */
  const void *arg;                        /* look's */
  char seen[512];                         /* what look found; "" when it never ran */
  int64_t id;                             /* look's: the frozen staging table's identity,
                                             where the database has one (a PostgreSQL oid) */
  int64_t pid;                            /* the stopped executor's; 0 when none was seen */
  int still_stopped;                      /* the executor was still stopped after look */
  atomic_int done;                        /* set by pt_test_freeze_end */
  pthread_t thread;
} pt_test_freeze;

/* The state letter of /proc/<pid>/stat ('T': stopped), 0 when gone. */
static char pt_test_proc_state(int64_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* The command name in parentheses may hold spaces and ')': the state
   * follows the last ')'. */
  const char *p = strrchr(buf, ')');
  return p && p[1] == ' ' ? p[2] : 0;
}

static void *pt_test_freeze_watch(void *arg) {
  pt_test_freeze *f = arg;
  while (!atomic_load(&f->done)) {
    pt_executor_info info[8];
    int64_t n = 0;
    if (pt_session_executors(f->s, info, 8, &n, NULL) == PT_OK)
      for (int64_t i = 0; i < n && i < 8; i++)
        if (pt_test_proc_state(info[i].pid) == 'T') {
          f->pid = info[i].pid;
          f->look(f);
          f->still_stopped = pt_test_proc_state(info[i].pid) == 'T';
          return NULL;
        }
    usleep(1000);
  }
  return NULL;
}

/* Starts watching s's executors; look runs while one is stopped. */
static void pt_test_freeze_start(pt_test_freeze *f, pt_session *s,
                                 void (*look)(pt_test_freeze *f), const void *arg) {
  memset(f, 0, sizeof *f);
  f->s = s;
  f->look = look;
  f->arg = arg;
  atomic_init(&f->done, 0);
  assert_int_equal(pthread_create(&f->thread, NULL, pt_test_freeze_watch, f), 0);
}

/* Ends the watch (after the write), then checks what it saw: one executor
 * stopped, looked at while it stayed stopped, and killed since. */
static void pt_test_freeze_end(pt_test_freeze *f) {
  atomic_store(&f->done, 1);
  pthread_join(f->thread, NULL);
  if (f->pid == 0) fail_msg("no executor was seen stopped (PROTIUM_FAULT_SQL_STOP_STAGED)");
  assert_true(f->still_stopped);
  int dead = 0;
  for (int k = 0; k < 500 && !dead; k++) {
    dead = kill((pid_t)f->pid, 0) != 0 && errno == ESRCH;
    if (!dead) usleep(10000);
  }
  assert_true(dead);
}

/* A session of two executors whose first attempt of partition p stops
 * once staged, found lost after 2 s of silence. Close it with
 * pt_test_freeze_session_close. */
static pt_session *pt_test_freeze_session(int64_t p) {
  /* A stopped member of an orphaned process group (tests started in the
   * background from a shell that is gone) makes the kernel send the whole
   * group SIGHUP and SIGCONT when another member exits. In a group of its
   * own under ctest's, which the executors join, the test is never
   * orphaned (as test_engine_faults.c's frozen executor). */
  (void)setpgid(0, 0);
  char v[32];
  snprintf(v, sizeof v, "%lld", (long long)p);
  /* Executors read it from the environment they are started with. */
  setenv("PROTIUM_FAULT_SQL_STOP_STAGED", v, 1);
  const char *kv[] = {"range.batch_rows", "1000", "executor.heartbeat_interval", "100ms",
                      "executor.heartbeat_timeout", "2s"};
  pt_session *s = pt_test_session("local[2]", kv, 6);
  assert_non_null(s);
  return s;
}

static void pt_test_freeze_session_close(pt_session *s) {
  pt_session_close(s);
  unsetenv("PROTIUM_FAULT_SQL_STOP_STAGED");
}

/* The last job of ds lost one executor, the frozen one, with one running
 * task (tasks queued behind it were requeued, not failed), and every
 * partition succeeded once. */
static void pt_test_assert_one_frozen(pt_dataset *ds, int64_t partitions) {
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(ds, &js, &err));
  pt_stage_stats tot;
  pt_job_stats_total(js, &tot);
  assert_int_equal(js->executors_lost, 1);
  assert_int_equal(tot.failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 1);
  assert_int_equal(tot.tasks_failed, 1);
  assert_true(tot.tasks_retried >= 1);
  assert_int_equal(tot.tasks_succeeded, partitions);
  pt_job_stats_free(js);
}

#endif
