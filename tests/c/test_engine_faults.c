/* test_engine_faults.c — the engine under faults, with real executor
 * processes: a task that aborts its executor, a task that always fails, an
 * executor killed mid-job, map output lost before the reducers finish (only
 * the lost map tasks rerun), a hung task killed by task.timeout, and
 * write_ipc committing exactly once despite a half-written attempt.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "protium.h"

#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

/* ------------------------------------------------------------------------ */
/* User functions (run in the executors) */

static const int64_t *col_i64(const struct ArrowArray *batch, int c) {
  const struct ArrowArray *col = batch->children[c];
  return (const int64_t *)col->buffers[1] + col->offset + batch->offset;
}

static int copy_batch(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                      struct ArrowArray *out, pt_error *err) {
  return pt_array_copy(schema, batch, out, err);
}

/* Appends "<tag> <partition> <attempt> <executor>" to the file named by arg
 * (one write with O_APPEND: lines from processes do not mix). */
static void log_task(const pt_task_context *ctx, const void *arg, size_t arg_size, const char *tag) {
  if (!arg_size) return;
  char path[4096];
  snprintf(path, sizeof path, "%.*s", (int)arg_size, (const char *)arg);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return;
  char line[128];
  int n = snprintf(line, sizeof line, "%s %lld %lld %lld\n", tag, (long long)ctx->partition,
                   (long long)ctx->attempt, (long long)ctx->executor_id);
  if (write(fd, line, (size_t)n) != n) abort();
  close(fd);
}

static int abort_p3_first(const pt_task_context *ctx, const struct ArrowSchema *schema,
                          const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                          size_t arg_size, pt_error *err) {
  if (ctx->partition == 3 && ctx->attempt == 0) abort();
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(abort_p3_first)

/* Partition 1 sits in its slot; partition 0, once it is there (its
 * executor has two slots), aborts the process from its own thread, on its
 * first attempt only. arg: the log (log_task). */
static atomic_int p1_running;
static int abort_beside(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  static _Thread_local int64_t logged = -1;
  if (logged != ctx->attempt * 16 + ctx->partition) log_task(ctx, arg, arg_size, "run");
  logged = ctx->attempt * 16 + ctx->partition;
  if (ctx->partition == 1 && ctx->attempt == 0) {
    atomic_store(&p1_running, 1);
    usleep(30 * 1000 * 1000); /* the crash beside it ends this */
  }
  if (ctx->partition == 0 && ctx->attempt == 0) {
    for (int i = 0; i < 2000 && !atomic_load(&p1_running); i++) usleep(10000);
    abort(); /* (a segfault would be a finding of the sanitizer builds) */
  }
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(abort_beside)

static int fail_always(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  if (ctx->partition == 2) {
    if (err) snprintf(err->message, sizeof err->message, "boom");
    return PT_EINVAL;
  }
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(fail_always)

static int kill_self_p1_first(const pt_task_context *ctx, const struct ArrowSchema *schema,
                              const struct ArrowArray *batch, struct ArrowArray *out,
                              const void *arg, size_t arg_size, pt_error *err) {
  if (ctx->partition == 1 && ctx->attempt == 0) kill(getpid(), SIGKILL);
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(kill_self_p1_first)

static int log_map(const pt_task_context *ctx, const struct ArrowSchema *schema,
                   const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                   size_t arg_size, pt_error *err) {
  static int64_t last = -1;
  int64_t key = ctx->stage_id << 40 | ctx->partition << 20 | ctx->attempt;
  if (key != last) log_task(ctx, arg, arg_size, "map"); /* once per task */
  last = key;
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(log_map)

/* Reduce side: the first attempt of partition 0 kills its own executor,
 * which holds some of the map outputs. */
static int reduce_kill(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  if (ctx->partition == 0 && ctx->attempt == 0) {
    log_task(ctx, arg, arg_size, "kill");
    kill(getpid(), SIGKILL);
  }
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(reduce_kill)

/* Reduce side for the fetch-failure test: arg is a glob of map output
 * files. Partition 0 (first attempt) deletes them before it returns;
 * partition 1 takes its time, so partition 2 starts after the deletion and
 * finds the output gone. */
static int reduce_delete(const pt_task_context *ctx, const struct ArrowSchema *schema,
                         const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                         size_t arg_size, pt_error *err) {
  if (ctx->partition == 0 && ctx->attempt == 0) {
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%.*s", (int)arg_size, (const char *)arg);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) unlink(g.gl_pathv[i]);
      globfree(&g);
    }
  }
  if (ctx->partition == 1 && ctx->attempt == 0) usleep(300000);
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(reduce_delete)

static int hang_p1_first(const pt_task_context *ctx, const struct ArrowSchema *schema,
                         const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                         size_t arg_size, pt_error *err) {
  log_task(ctx, arg, arg_size, "run");
  int always = arg_size == 0;
  if (ctx->partition == 1 && (ctx->attempt == 0 || always))
    for (;;) usleep(1000);
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(hang_p1_first)

/* Partition 2, attempt 0: passes its first batch (the sink writes it), then
 * fails on the second. */
static int fail_half(const pt_task_context *ctx, const struct ArrowSchema *schema,
                     const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                     size_t arg_size, pt_error *err) {
  static int64_t last = -1, seen = 0;
  int64_t key = ctx->stage_id << 40 | ctx->partition << 20 | ctx->attempt;
  if (key != last) seen = 0;
  last = key;
  if (ctx->partition == 2 && ctx->attempt == 0 && seen++ == 1) {
    if (err) snprintf(err->message, sizeof err->message, "failed half way");
    return PT_EIO;
  }
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(fail_half)

static int sleepy(const pt_task_context *ctx, const struct ArrowSchema *schema,
                  const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                  size_t arg_size, pt_error *err) {
  usleep(150000);
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(sleepy)

/* Fails the first attempt of partition 2, logging where every attempt ran. */
static int fail_p2_first(const pt_task_context *ctx, const struct ArrowSchema *schema,
                         const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                         size_t arg_size, pt_error *err) {
  log_task(ctx, arg, arg_size, "run");
  if (ctx->partition == 2 && ctx->attempt == 0) {
    if (err) snprintf(err->message, sizeof err->message, "first attempt fails");
    return PT_EIO;
  }
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(fail_p2_first)

/* Logs "run" and takes its time: the heartbeat test freezes the executor
 * of the first task that logs. */
static int log_sleepy(const pt_task_context *ctx, const struct ArrowSchema *schema,
                      const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                      size_t arg_size, pt_error *err) {
  log_task(ctx, arg, arg_size, "run");
  usleep(100000);
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(log_sleepy)

/* write_ipc with a completed attempt whose status is lost: the executor
 * that ran partition 1's first attempt (which wrote its whole file) kills
 * itself in its next task, before the status has left (an executor sends
 * the statuses of back-to-back tasks together). arg: the output directory;
 * the log is <arg>.log. The killer logs "saw <size of part-1-0>". */
static int ipc_status_lost(const pt_task_context *ctx, const struct ArrowSchema *schema,
                           const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                           size_t arg_size, pt_error *err) {
  static int after_p1 = 0;
  char dir[4096], logp[4200];
  snprintf(dir, sizeof dir, "%.*s", (int)arg_size, (const char *)arg);
  snprintf(logp, sizeof logp, "%s.log", dir);
  log_task(ctx, logp, strlen(logp), "run");
  if (ctx->partition == 1 && ctx->attempt == 0) {
    after_p1 = 1;
  } else if (after_p1) {
    char pattern[4300];
    snprintf(pattern, sizeof pattern, "%s/_temporary/*/part-1-0.arrow", dir);
    glob_t g;
    long long size = -1;
    struct stat sb;
    if (glob(pattern, 0, NULL, &g) == 0) {
      if (g.gl_pathc == 1 && stat(g.gl_pathv[0], &sb) == 0) size = (long long)sb.st_size;
      globfree(&g);
    }
    pt_task_context c = *ctx;
    c.partition = size;
    log_task(&c, logp, strlen(logp), "saw");
    kill(getpid(), SIGKILL);
  }
  return copy_batch(schema, batch, out, err);
}
PT_REGISTER_FN(ipc_status_lost)

/* ------------------------------------------------------------------------ */
/* Helpers */

static pt_job_stats *last_job(pt_dataset *ds) {
  pt_job_stats *js = NULL;
  CHECK(pt_dataset_last_job(ds, &js, &err));
  return js;
}

/* Totals over every stage attempt of the job. */
static pt_stage_stats job_total(const pt_job_stats *js) {
  pt_stage_stats t;
  pt_job_stats_total(js, &t);
  return t;
}

/* The entry of the job's map stage (map = 1) or final stage (0) at stage
 * attempt a, or NULL (jobs of one shuffle). */
static const pt_stage_stats *stage_attempt(const pt_job_stats *js, int map, int64_t a) {
  for (int64_t i = 0; i < js->n_stages; i++)
    if (js->stages[i].is_map == map && js->stages[i].attempt == a) return &js->stages[i];
  return NULL;
}

/* files: map output always in files (shuffle.memory_mb = 0), for tests
 * that take one away. */
static pt_session *open_session_files(const char *timeout, int files) {
  pt_conf *conf;
  pt_session *s;
  CHECK(pt_conf_new(&conf, &err));
  if (files) CHECK(pt_conf_set(conf, "shuffle.memory_mb", "0", &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_interval", "100ms", &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_timeout", "2s", &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "100", &err));
  CHECK(pt_conf_set(conf, "executor.queue_depth", "1", &err));
  if (timeout) CHECK(pt_conf_set(conf, "task.timeout", timeout, &err));
  CHECK(pt_session_open("local[2]", conf, &s, &err));
  pt_conf_free(conf);
  return s;
}

static pt_session *open_session(const char *timeout) { return open_session_files(timeout, 0); }

static int64_t *collect_col(pt_dataset *ds, int64_t *n) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int64_t cap = 1024, len = 0;
  int64_t *v = malloc((size_t)cap * sizeof *v);
  for (;;) {
    struct ArrowArray b;
    if (st.get_next(&st, &b)) fail_msg("get_next: %s", st.get_last_error(&st));
    if (!b.release) break;
    while (len + b.length > cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
    memcpy(v + len, col_i64(&b, 0), (size_t)b.length * sizeof *v);
    len += b.length;
    b.release(&b);
  }
  st.release(&st);
  *n = len;
  return v;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void make_tmpdir(char *buf, size_t n) {
  const char *t = getenv("TMPDIR");
  snprintf(buf, n, "%s/pt-faults-XXXXXX", t && *t ? t : "/tmp");
  assert_non_null(mkdtemp(buf));
}

static void rm_rf(const char *path) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  assert_int_equal(system(cmd), 0);
}

/* Lines of the log: tag, partition, attempt, executor. */
typedef struct entry {
  char tag[8];
  long long p, a, e;
} entry;

static int read_log(const char *path, entry *out, int cap) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int n = 0;
  while (n < cap && fscanf(f, "%7s %lld %lld %lld", out[n].tag, &out[n].p, &out[n].a, &out[n].e) == 4)
    n++;
  fclose(f);
  return n;
}

static void expect_range(pt_dataset *ds, int64_t n_expected, int sorted) {
  int64_t n;
  int64_t *v = collect_col(ds, &n);
  assert_int_equal(n, n_expected);
  if (!sorted) qsort(v, (size_t)n, sizeof *v, cmp_i64);
  for (int64_t i = 0; i < n; i++)
    if (v[i] != i) fail_msg("row %lld is %lld", (long long)i, (long long)v[i]);
  free(v);
}

/* ------------------------------------------------------------------------ */
/* Tests */

static void test_abort_first_attempt(void **state) {
  pt_session *s = open_session(NULL);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 8000, 8, &r, &err));
  CHECK(pt_map_batches(r, abort_p3_first, NULL, NULL, 0, &m, &err));
  expect_range(m, 8000, 1); /* identical to a clean run, in order */
  pt_job_stats *js = last_job(m);
  pt_stage_stats t = job_total(js);
  assert_int_equal(js->status, PT_OK);
  assert_int_equal(js->executors_lost, 1);
  assert_true(js->executors_started >= 1);
  assert_int_equal(t.failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 1);
  assert_int_equal(t.tasks_failed, 1);
  assert_true(t.tasks_retried >= 1); /* partition 3, and the aborted one's queue */
  /* With results left on the executors (net.results=stream), a task that had
   * finished on the aborted executor before the driver fetched its result
   * runs again, and that second success counts, rows and all. */
  int64_t reruns = t.tasks_succeeded - 8;
  const char *res = getenv("PROTIUM_NET_RESULTS");
  if (!res || strcmp(res, "stream") != 0) assert_int_equal(reruns, 0);
  assert_true(reruns >= 0 && reruns < 8);
  assert_int_equal(t.rows_read, 8000 + 1000 * reruns);
  assert_int_equal(t.rows_written, 8000 + 1000 * reruns);
  assert_true(t.bytes_written > 8000 * 8);
  pt_job_stats_free(js);
  /* the aborted one is replaced (the replacement may still be starting) */
  pt_executor_info info[8];
  int64_t n = 0;
  for (int i = 0; i < 500 && n != 2; i++) {
    CHECK(pt_session_executors(s, info, 8, &n, &err));
    if (n != 2) usleep(10000);
  }
  assert_int_equal(n, 2);
  assert_true(info[0].id == 3 || info[1].id == 3);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* A crash (SIGABRT) in one slot of a two-slot executor: the executor's crash
 * note names the crashing task, which alone fails; the task beside it is
 * rerun without counting. */
static void test_crash_fails_only_its_own_task(void **state) {
  char log[] = "/tmp/pt-crash-XXXXXX";
  int fd = mkstemp(log);
  assert_true(fd >= 0);
  close(fd);
  pt_conf *conf;
  pt_session *s;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "executor.slots", "2", &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "100", &err));
  CHECK(pt_session_open("local[1]", conf, &s, &err));
  pt_conf_free(conf);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 200, 2, &r, &err));
  CHECK(pt_map_batches(r, abort_beside, NULL, log, strlen(log), &m, &err));
  int64_t count = 0;
  CHECK(pt_count(m, &count, &err));
  assert_int_equal(count, 200);
  pt_job_stats *js = last_job(m);
  pt_stage_stats t = job_total(js);
  assert_int_equal(js->status, PT_OK);
  assert_int_equal(js->executors_lost, 1);
  assert_int_equal(t.tasks_failed, 1); /* partition 0's crash, nothing else */
  assert_int_equal(t.failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 1);
  assert_int_equal(t.tasks_requeued, 1); /* partition 1, rerun uncounted */
  assert_int_equal(t.tasks_succeeded, 2);
  pt_job_stats_free(js);
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  int saw_p1 = 0;
  char tag[16];
  long long p, a, ex;
  while (fscanf(f, "%15s %lld %lld %lld", tag, &p, &a, &ex) == 4) saw_p1 |= p == 1 && a == 0;
  fclose(f);
  assert_true(saw_p1); /* it was running beside the crash */
  unlink(log);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
}

static void test_fail_always(void **state) {
  pt_session *s = open_session(NULL);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 1000, 4, &r, &err));
  CHECK(pt_map_batches(r, fail_always, NULL, NULL, 0, &m, &err));
  pt_error err = {0};
  int64_t count;
  /* The job fails with the task's own code (fail_always: PT_EINVAL). */
  assert_int_equal(pt_count(m, &count, &err), PT_EINVAL);
  assert_int_equal(err.code, PT_EINVAL);
  fprintf(stderr, "error: %s\n", err.message);
  assert_non_null(strstr(err.message, "partition 2 failed 4 times; last error: "));
  assert_non_null(strstr(err.message, "boom"));
  assert_non_null(strstr(err.message, "fail_always"));
  pt_job_stats *js = last_job(m);
  pt_stage_stats t = job_total(js);
  assert_int_equal(js->status, PT_EINVAL);
  assert_int_equal(t.failed_by_cause[PT_CAUSE_ERROR], 4); /* task.max_failures */
  assert_int_equal(t.tasks_failed, 4);
  assert_int_equal(js->executors_lost, 0);
  pt_job_stats_free(js);
  /* the session still works */
  CHECK(pt_count(r, &count, &err));
  assert_int_equal(count, 1000);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
}

static void test_executor_killed_mid_job(void **state) {
  pt_session *s = open_session(NULL);
  pt_dataset *r, *m, *p;
  CHECK(pt_range(s, 0, 6000, 6, &r, &err));
  CHECK(pt_map_batches(r, kill_self_p1_first, NULL, NULL, 0, &m, &err));
  expect_range(m, 6000, 1);
  pt_job_stats *js = last_job(m);
  assert_int_equal(js->executors_lost, 1);
  assert_int_equal(job_total(js).failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 1);
  pt_job_stats_free(js);
  /* and across a shuffle */
  CHECK(pt_repartition(m, 3, &p, &err));
  expect_range(p, 6000, 0);
  js = last_job(p);
  assert_int_equal(js->executors_lost, 1);
  assert_true(job_total(js).tasks_succeeded >= 6 + 3); /* + map outputs lost with it */
  pt_job_stats_free(js);
  pt_dataset_free(p);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
}

static void test_map_output_lost(void **state) {
  char dir[4096], log[4200];
  make_tmpdir(dir, sizeof dir);
  snprintf(log, sizeof log, "%s/log", dir);
  pt_session *s = open_session(NULL);
  pt_dataset *r, *m, *p, *red;
  CHECK(pt_range(s, 0, 4000, 4, &r, &err));
  CHECK(pt_map_batches(r, log_map, NULL, log, strlen(log), &m, &err));
  CHECK(pt_repartition(m, 3, &p, &err));
  CHECK(pt_map_batches(p, reduce_kill, NULL, log, strlen(log), &red, &err));
  expect_range(red, 4000, 0);

  entry e[256];
  int n = read_log(log, e, 256);
  long long killed = -1;
  int first_runs = 0, reruns = 0;
  for (int i = 0; i < n; i++)
    if (strcmp(e[i].tag, "kill") == 0) killed = e[i].e;
  assert_true(killed > 0);
  /* map partitions whose first output lived on the killed executor rerun,
   * and only those */
  int on_killed[4] = {0}, rerun[4] = {0};
  for (int i = 0; i < n; i++) {
    if (strcmp(e[i].tag, "map") != 0) continue;
    if (e[i].a == 0) {
      first_runs++;
      if (e[i].e == killed) on_killed[e[i].p] = 1;
    } else {
      reruns++;
      rerun[e[i].p]++;
    }
  }
  fprintf(stderr, "map runs: %d first, %d reruns; killed executor %lld\n", first_runs, reruns,
          killed);
  assert_int_equal(first_runs, 4);
  for (int q = 0; q < 4; q++) assert_int_equal(rerun[q], on_killed[q]);
  assert_true(reruns > 0 && reruns < 4);
  /* the metrics say the same: the killed executor held map output when it
   * died, exactly those partitions were lost and recomputed, under a new
   * attempt of the map stage, then the reducers ran again */
  pt_job_stats *js = last_job(red);
  const pt_stage_stats *map0 = stage_attempt(js, 1, 0), *map1 = stage_attempt(js, 1, 1);
  assert_non_null(map0);
  assert_true(map0->is_map);
  assert_non_null(map1);
  /* Over TCP a reducer's failed fetch from the dead executor's block server
   * may reach the driver before the loss does: an output then counts as lost
   * under the attempt that fetch failure started. */
  /* Summed over the map stage's attempts: a second reducer's fetch failure
   * may reach the driver after the first rerun attempt began, and the lost
   * outputs are then rerun under two attempts. */
  int64_t lost = 0, launched = 0, succeeded = 0;
  for (int64_t a = 0; a < 4; a++) {
    const pt_stage_stats *st = stage_attempt(js, 1, a);
    if (!st) continue;
    lost += st->outputs_lost;
    for (int64_t i = 0; i < st->outputs_lost; i++) assert_true(on_killed[st->lost_partitions[i]]);
    launched += st->tasks_launched;
    succeeded += st->tasks_succeeded;
  }
  assert_int_equal(lost, reruns);
  assert_int_equal(launched, 4 + reruns);
  assert_int_equal(succeeded, 4 + reruns);
  assert_true(map1->tasks_launched >= 1);
  assert_int_equal(js->executors_lost, 1);
  assert_true(js->executors_started >= 1);
  assert_non_null(stage_attempt(js, 0, 1)); /* the reducers under a new attempt */
  pt_job_stats_free(js);
  pt_dataset_free(red);
  pt_dataset_free(p);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
  rm_rf(dir);
}

/* Two shuffles; the executor killed in the final stage holds map outputs
 * of both map stages. The first stage's lost outputs are rerun before the
 * second stage reruns its own (not found one fetch failure at a time): with
 * stage.max_attempts 2 the job succeeds, every row once. */
static void test_executor_lost_across_two_shuffles(void **state) {
  char dir[4096], log[4200];
  make_tmpdir(dir, sizeof dir);
  snprintf(log, sizeof log, "%s/log", dir);
  pt_conf *conf;
  pt_session *s;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "100", &err));
  CHECK(pt_conf_set(conf, "executor.queue_depth", "1", &err));
  CHECK(pt_conf_set(conf, "stage.max_attempts", "2", &err));
  CHECK(pt_session_open("local[2]", conf, &s, &err));
  pt_conf_free(conf);
  pt_dataset *r, *a, *p1, *b, *p2, *red;
  CHECK(pt_range(s, 0, 8000, 8, &r, &err));
  CHECK(pt_map_batches(r, log_map, NULL, log, strlen(log), &a, &err));
  CHECK(pt_repartition(a, 6, &p1, &err));
  CHECK(pt_map_batches(p1, sleepy, NULL, NULL, 0, &b, &err)); /* B is done before C starts */
  CHECK(pt_repartition(b, 3, &p2, &err));
  CHECK(pt_map_batches(p2, reduce_kill, NULL, log, strlen(log), &red, &err));
  expect_range(red, 8000, 0);
  pt_job_stats *js = last_job(red);
  assert_int_equal(js->status, PT_OK);
  assert_int_equal(js->executors_lost, 1);
  int64_t lost = 0;
  for (int64_t i = 0; i < js->n_stages; i++) lost += js->stages[i].outputs_lost;
  fprintf(stderr, "map outputs lost: %lld; stage attempts: %lld\n", (long long)lost,
          (long long)js->n_stages);
  assert_true(lost > 0);
  assert_int_equal(job_total(js).failed_by_cause[PT_CAUSE_ERROR], 0);
  pt_job_stats_free(js);
  pt_dataset_free(red);
  pt_dataset_free(p2);
  pt_dataset_free(b);
  pt_dataset_free(p1);
  pt_dataset_free(a);
  pt_dataset_free(r);
  pt_session_close(s);
  rm_rf(dir);
}

static void test_task_timeout(void **state) {
  char dir[4096], log[4200];
  make_tmpdir(dir, sizeof dir);
  snprintf(log, sizeof log, "%s/log", dir);
  pt_session *s = open_session("500ms");
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 400, 4, &r, &err));
  CHECK(pt_map_batches(r, hang_p1_first, NULL, log, strlen(log), &m, &err));
  expect_range(m, 400, 1);
  entry e[256];
  int n = read_log(log, e, 256);
  int p1_attempts = 0;
  for (int i = 0; i < n; i++) p1_attempts += e[i].p == 1;
  assert_true(p1_attempts >= 2);
  pt_job_stats *js = last_job(m);
  assert_int_equal(job_total(js).failed_by_cause[PT_CAUSE_TIMEOUT], 1);
  assert_int_equal(js->executors_lost, 1);
  pt_job_stats_free(js);
  pt_dataset_free(m);

  /* a task that always hangs: the job fails and says why */
  pt_error err = {0};
  int64_t count;
  CHECK(pt_map_batches(r, hang_p1_first, NULL, NULL, 0, &m, &err));
  assert_int_equal(pt_count(m, &count, &err), PT_ETIMEDOUT);
  fprintf(stderr, "error: %s\n", err.message);
  assert_non_null(strstr(err.message, "partition 1 failed 4 times; last error: task timed out after 500ms"));
  js = last_job(m);
  assert_int_equal(js->status, PT_ETIMEDOUT);
  assert_int_equal(job_total(js).failed_by_cause[PT_CAUSE_TIMEOUT], 4);
  assert_int_equal(js->executors_lost, 4);
  pt_job_stats_free(js);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
  rm_rf(dir);
}

/* A map output file vanishes (the executor stays): the reducer that needs it
 * reports a fetch failure, only that map partition reruns, the reducer
 * reruns, the result is exact. */
static void test_fetch_failure_reruns_lost_map_only(void **state) {
  char dir[4096], log[4200], pattern[4200];
  make_tmpdir(dir, sizeof dir);
  snprintf(log, sizeof log, "%s/log", dir);
  const char *t = getenv("TMPDIR");
  /* map partition 1's first attempt, wherever it ran (exec.h names them
   * shuffle-<shuffle>-<partition>-<attempt>.arrows) */
  snprintf(pattern, sizeof pattern, "%s/protium-%d-*/exec-*/shuffle-*-1-0.arrows",
           t && *t ? t : "/tmp", (int)getpid());
  pt_session *s = open_session_files(NULL, 1);
  pt_dataset *r, *m, *p, *red;
  CHECK(pt_range(s, 0, 4000, 4, &r, &err));
  CHECK(pt_map_batches(r, log_map, NULL, log, strlen(log), &m, &err));
  CHECK(pt_repartition(m, 3, &p, &err));
  CHECK(pt_map_batches(p, reduce_delete, NULL, pattern, strlen(pattern), &red, &err));
  expect_range(red, 4000, 0);
  entry e[256];
  int n = read_log(log, e, 256);
  int runs[4] = {0};
  for (int i = 0; i < n; i++)
    if (strcmp(e[i].tag, "map") == 0) runs[e[i].p]++;
  fprintf(stderr, "map runs per partition: %d %d %d %d\n", runs[0], runs[1], runs[2], runs[3]);
  assert_int_equal(runs[0], 1);
  assert_int_equal(runs[1], 2);
  assert_int_equal(runs[2], 1);
  assert_int_equal(runs[3], 1);
  pt_job_stats *js = last_job(red);
  const pt_stage_stats *map0 = stage_attempt(js, 1, 0);
  assert_int_equal(map0->outputs_lost, 1);
  assert_int_equal(map0->lost_partitions[0], 1);
  pt_stage_stats tot = job_total(js);
  assert_true(tot.failed_by_cause[PT_CAUSE_FETCH_FAILED] >= 1);
  assert_int_equal(tot.failed_by_cause[PT_CAUSE_ERROR], 0);
  assert_int_equal(js->executors_lost, 0);
  pt_job_stats_free(js);
  pt_dataset_free(red);
  pt_dataset_free(p);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
  rm_rf(dir);
}

typedef struct stopper {
  pt_session *s;
  const char *log;
  int64_t stopped_id, stopped_pid;
  uint64_t stopped_at_us;
} stopper;

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Waits until a task has logged that it runs, then freezes (SIGSTOP) the
 * executor that runs it: it stays connected but sends no heartbeat, so
 * only the heartbeat timeout can find it out. No sleep has to land
 * mid-job: the task is running when the signal is sent. */
static void *stop_one(void *arg) {
  stopper *st = arg;
  for (int k = 0; k < 20000; k++) {
    entry e[4];
    if (read_log(st->log, e, 4) >= 1) {
      pt_executor_info info[4];
      int64_t n;
      if (pt_session_executors(st->s, info, 4, &n, NULL) != PT_OK) return NULL;
      for (int64_t i = 0; i < n && i < 4; i++)
        if (info[i].id == e[0].e) {
          st->stopped_id = info[i].id;
          st->stopped_pid = info[i].pid;
          st->stopped_at_us = now_us();
          kill((pid_t)info[i].pid, SIGSTOP);
        }
      return NULL;
    }
    usleep(500);
  }
  return NULL;
}

static void test_executor_stopped_heartbeat_timeout(void **state) {
  /* A stopped member of an orphaned process group (tests started in the
   * background from a shell that is gone) makes the kernel send the whole
   * group SIGHUP and SIGCONT when another member exits: this test and the
   * frozen executor among them. In a group of its own under ctest's, which
   * its executors join, it is never orphaned. */
  (void)setpgid(0, 0);
  char dir[4096], log[4200];
  make_tmpdir(dir, sizeof dir);
  snprintf(log, sizeof log, "%s/log", dir);
  pt_conf *conf;
  pt_session *s;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_interval", "100ms", &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_timeout", "1s", &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "100", &err));
  CHECK(pt_session_open("local[2]", conf, &s, &err));
  pt_conf_free(conf);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 1000, 10, &r, &err));
  CHECK(pt_map_batches(r, log_sleepy, NULL, log, strlen(log), &m, &err));
  stopper st = {s, log, 0, 0, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stop_one, &st), 0);
  expect_range(m, 1000, 1);
  pthread_join(t, NULL);
  assert_true(st.stopped_id > 0);
  /* the frozen executor is declared lost within the heartbeat timeout (and
   * a tick), and killed: its process is gone, not left stopped */
  int gone = 0;
  uint64_t lost_at = 0;
  for (int k = 0; k < 1000 && !gone; k++) {
    pt_executor_info info[4];
    int64_t n;
    CHECK(pt_session_executors(s, info, 4, &n, &err));
    gone = 1;
    for (int64_t i = 0; i < n && i < 4; i++) gone &= info[i].id != st.stopped_id;
    if (gone) lost_at = now_us();
    else usleep(10000);
  }
  assert_true(gone);
  fprintf(stderr, "frozen executor %lld lost after %llu ms\n", (long long)st.stopped_id,
          (unsigned long long)(lost_at - st.stopped_at_us) / 1000);
  assert_true(lost_at - st.stopped_at_us < 1000000u + 1500000u); /* timeout + tick, generous */
  int dead = 0;
  for (int k = 0; k < 500 && !dead; k++) {
    dead = kill((pid_t)st.stopped_pid, 0) != 0 && errno == ESRCH;
    if (!dead) usleep(10000);
  }
  assert_true(dead);
  /* its running task failed with it and ran again on another executor; a
   * replacement started */
  pt_job_stats *js = last_job(m);
  pt_stage_stats tot = job_total(js);
  assert_int_equal(js->executors_lost, 1);
  assert_true(js->executors_started >= 1);
  assert_int_equal(tot.failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 1);
  assert_int_equal(tot.tasks_succeeded, 10);
  entry e[256];
  int n = read_log(log, e, 256);
  long long frozen_p = -1;
  for (int i = 0; i < n && frozen_p < 0; i++)
    if (e[i].e == st.stopped_id) frozen_p = e[i].p;
  int rerun_elsewhere = 0;
  for (int i = 0; i < n; i++)
    rerun_elsewhere |= e[i].p == frozen_p && e[i].a > 0 && e[i].e != st.stopped_id;
  assert_true(rerun_elsewhere);
  pt_job_stats_free(js);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
  rm_rf(dir);
}

/* A failed attempt is retried on another executor when there is one; the
 * metrics count the attempts. */
static void test_retry_on_another_executor(void **state) {
  char dir[4096], log[4200];
  make_tmpdir(dir, sizeof dir);
  snprintf(log, sizeof log, "%s/log", dir);
  pt_session *s = open_session(NULL);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 800, 8, &r, &err));
  CHECK(pt_map_batches(r, fail_p2_first, NULL, log, strlen(log), &m, &err));
  expect_range(m, 800, 1);
  pt_job_stats *js = last_job(m);
  pt_stage_stats t = job_total(js);
  assert_int_equal(t.tasks_launched, 9);
  assert_int_equal(t.tasks_retried, 1);
  assert_int_equal(t.tasks_failed, 1);
  assert_int_equal(t.failed_by_cause[PT_CAUSE_ERROR], 1);
  assert_int_equal(t.tasks_succeeded, 8);
  entry e[64];
  int n = read_log(log, e, 64);
  long long first = -1, second = -1;
  for (int i = 0; i < n; i++)
    if (e[i].p == 2) *(e[i].a == 0 ? &first : &second) = e[i].e;
  assert_true(first > 0 && second > 0);
  assert_int_not_equal(first, second);
  pt_job_stats_free(js);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
  rm_rf(dir);
}

static int count_entries(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
  closedir(d);
  return n;
}

static void test_write_ipc_exactly_once(void **state) {
  char dir[4096], out[4200], path[4300];
  make_tmpdir(dir, sizeof dir);
  snprintf(out, sizeof out, "%s/out", dir);
  pt_session *s = open_session(NULL);
  pt_dataset *r, *m, *back;
  CHECK(pt_range(s, 0, 2000, 4, &r, &err)); /* 5 batches of 100 per partition */
  CHECK(pt_map_batches(r, fail_half, NULL, NULL, 0, &m, &err));
  CHECK(pt_write_ipc(m, out, NULL, &err));
  assert_int_equal(count_entries(out, "part-"), 4);
  snprintf(path, sizeof path, "%s/_SUCCESS", out);
  assert_int_equal(access(path, F_OK), 0);
  assert_int_equal(count_entries(out, "_temporary"), 0);
  CHECK(pt_read_ipc(s, out, &back, &err));
  expect_range(back, 2000, 1);
  pt_dataset_free(back);

  /* a job that fails for good leaves no part files (dir given, empty) */
  snprintf(out, sizeof out, "%s/out2", dir);
  assert_int_equal(mkdir(out, 0755), 0);
  pt_dataset *f;
  CHECK(pt_map_batches(r, fail_always, NULL, NULL, 0, &f, &err));
  pt_error err = {0};
  assert_int_equal(pt_write_ipc(f, out, NULL, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "boom"));
  assert_int_equal(count_entries(out, "part-"), 0);
  assert_int_equal(count_entries(out, "_"), 0);
  /* and a directory it made itself is removed again */
  snprintf(out, sizeof out, "%s/out3", dir);
  assert_int_not_equal(pt_write_ipc(f, out, NULL, &err), PT_OK);
  assert_int_not_equal(access(out, F_OK), 0);
  pt_dataset_free(f);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
  rm_rf(dir);
}

/* Two attempts of partition 1 both write their whole file: the first's
 * status is lost with its executor. Exactly one is committed, with every
 * row once; the other is removed with the temporary directory. Whether the
 * status left before the kill depends on the executor's status batching,
 * so the scenario is run until it happened (the log says so), at most 8
 * times. */
static void test_write_ipc_two_complete_attempts(void **state) {
  char dir[4096], out[4200], logp[4300], path[4300];
  make_tmpdir(dir, sizeof dir);
  pt_session *s = open_session(NULL);
  int happened = 0;
  for (int round = 0; round < 8 && !happened; round++) {
    snprintf(out, sizeof out, "%s/out%d", dir, round);
    snprintf(logp, sizeof logp, "%s.log", out);
    pt_dataset *r, *m, *back;
    CHECK(pt_range(s, 0, 800, 8, &r, &err));
    CHECK(pt_map_batches(r, ipc_status_lost, NULL, out, strlen(out), &m, &err));
    CHECK(pt_write_ipc(m, out, NULL, &err));
    entry e[64];
    int n = read_log(logp, e, 64);
    long long saw = -1;
    int p1_again = 0;
    for (int i = 0; i < n; i++) {
      if (strcmp(e[i].tag, "saw") == 0) saw = e[i].p;
      if (strcmp(e[i].tag, "run") == 0 && e[i].p == 1 && e[i].a > 0) p1_again = 1;
    }
    happened = saw > 0 && p1_again;
    fprintf(stderr, "round %d: part-1-0 had %lld bytes when its executor died; rerun: %d\n",
            round, saw, p1_again);
    /* whatever happened: every partition committed once, nothing else */
    assert_int_equal(count_entries(out, "part-"), 8);
    assert_int_equal(count_entries(out, "_temporary"), 0);
    snprintf(path, sizeof path, "%s/_SUCCESS", out);
    assert_int_equal(access(path, F_OK), 0);
    CHECK(pt_read_ipc(s, out, &back, &err));
    expect_range(back, 800, 1);
    pt_job_stats *js = last_job(m);
    assert_int_equal(js->executors_lost, 1);
    pt_job_stats_free(js);
    if (happened) {
      /* the committed file is the second attempt's, the same size */
      struct stat sb;
      snprintf(path, sizeof path, "%s/part-00001.arrow", out);
      assert_int_equal(stat(path, &sb), 0);
      assert_int_equal((long long)sb.st_size, saw);
    }
    pt_dataset_free(back);
    pt_dataset_free(m);
    pt_dataset_free(r);
  }
#ifdef __SANITIZE_ADDRESS__
  /* The sanitizer's slower executors flush p1's status before the next
   * task starts, so the scenario may not arise; every round above still
   * checked exactly-once output. The plain build must provoke it. */
  if (!happened) {
    fprintf(stderr, "SKIPPED: a lost status after a complete attempt was not provoked in 8 "
                    "rounds under the sanitizer\n");
    pt_session_close(s);
    rm_rf(dir);
    skip();
  }
#endif
  assert_true(happened);
  pt_session_close(s);
  rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_abort_first_attempt),
      cmocka_unit_test(test_crash_fails_only_its_own_task),
      cmocka_unit_test(test_fail_always),
      cmocka_unit_test(test_executor_killed_mid_job),
      cmocka_unit_test(test_map_output_lost),
      cmocka_unit_test(test_executor_stopped_heartbeat_timeout),
      cmocka_unit_test(test_fetch_failure_reruns_lost_map_only),
      cmocka_unit_test(test_task_timeout),
      cmocka_unit_test(test_write_ipc_exactly_once),
      cmocka_unit_test(test_write_ipc_two_complete_attempts),
      cmocka_unit_test(test_retry_on_another_executor),
      cmocka_unit_test(test_executor_lost_across_two_shuffles),
  };
  return cmocka_run_group_tests_name("engine_faults", tests, NULL, NULL);
}
