/* test_engine_claims.c — what README.md and docs/engine.md promise about
 * faults and files, each checked with real executor processes: retries not
 * counted for queued tasks of a lost executor and for fetch failures,
 * PT_EIO after repeated loss, stage.max_attempts, executors lost for a
 * protocol violation, for not connecting in time and after three start
 * failures in a row, lost executors' directories, Cleanup, collect's
 * files, pt_session_close's SIGKILL, and the configuration defaults.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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

/* Executors of this program hang (or exit) before they connect while
 * these are set: a constructor running before the executor hook's. */
__attribute__((constructor(200))) static void maybe_never_connect(void) {
  if (!getenv("PROTIUM_EXECUTOR_SOCKET")) return;
  if (getenv("PT_TEST_EXIT_BEFORE_HELLO")) _exit(3);
  if (getenv("PT_TEST_HANG_BEFORE_HELLO"))
    for (;;) pause();
}

/* ------------------------------------------------------------------------ */
/* User functions */

static int copy(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                struct ArrowArray *out, pt_error *err) {
  return pt_array_copy(schema, batch, out, err);
}

/* Partition 0's first attempt kills its executor; partition 1's second
 * attempt fails. */
static int kill_then_fail(const pt_task_context *ctx, const struct ArrowSchema *schema,
                          const struct ArrowArray *batch, struct ArrowArray *out,
                          const void *arg, size_t arg_size, pt_error *err) {
  if (ctx->partition == 0 && ctx->attempt == 0) kill(getpid(), SIGKILL);
  if (ctx->partition == 1 && ctx->attempt == 1) {
    if (err) snprintf(err->message, sizeof err->message, "second attempt fails");
    return PT_EIO;
  }
  return copy(schema, batch, out, err);
}
PT_REGISTER_FN(kill_then_fail)

static int kill_p0_always(const pt_task_context *ctx, const struct ArrowSchema *schema,
                          const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                          size_t arg_size, pt_error *err) {
  if (ctx->partition == 0) kill(getpid(), SIGKILL);
  return copy(schema, batch, out, err);
}
PT_REGISTER_FN(kill_p0_always)

static int kill_p0_first(const pt_task_context *ctx, const struct ArrowSchema *schema,
                         const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                         size_t arg_size, pt_error *err) {
  if (ctx->partition == 0 && ctx->attempt == 0) kill(getpid(), SIGKILL);
  return copy(schema, batch, out, err);
}
PT_REGISTER_FN(kill_p0_first)

/* Reduce side: partition 0's first attempt deletes the map output files
 * named by the glob in arg; partition 1 takes its time, so partition 2
 * starts after and finds its input gone (a fetch failure). */
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
  return copy(schema, batch, out, err);
}
PT_REGISTER_FN(reduce_delete)

/* Writes how many files the glob pattern (arg: "PATTERN\nFILE") matches
 * into FILE, once per task: what a reduce task sees of the map output on
 * disk. */
static int note_shuffle_files(const pt_task_context *ctx, const struct ArrowSchema *schema,
                              const struct ArrowArray *batch, struct ArrowArray *out,
                              const void *arg, size_t arg_size, pt_error *err) {
  char a[8400], *nl;
  snprintf(a, sizeof a, "%.*s", (int)arg_size, (const char *)arg);
  if ((nl = strchr(a, '\n')) != NULL) {
    *nl = 0;
    glob_t g;
    size_t n = glob(a, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
    if (n) globfree(&g);
    char path[8500];
    snprintf(path, sizeof path, "%s-%lld", nl + 1, (long long)ctx->partition);
    FILE *f = fopen(path, "w");
    if (f) {
      fprintf(f, "%zu\n", n);
      fclose(f);
    }
  }
  return copy(schema, batch, out, err);
}
PT_REGISTER_FN(note_shuffle_files)

/* Partition 0's first attempt writes garbage on its executor's connection
 * to the driver (the one socket connected to driver.sock). */
static int break_protocol(const pt_task_context *ctx, const struct ArrowSchema *schema,
                          const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                          size_t arg_size, pt_error *err) {
  if (ctx->partition == 0 && ctx->attempt == 0) {
    for (int fd = 3; fd < 1024; fd++) {
      struct sockaddr_un peer;
      socklen_t len = sizeof peer;
      if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0 || peer.sun_family != AF_UNIX)
        continue;
      if (!strstr(peer.sun_path, "driver.sock")) continue;
      uint8_t junk[64];
      memset(junk, 0xEE, sizeof junk);
      if (write(fd, junk, sizeof junk) < 0) break;
    }
    sleep(5); /* the driver kills this executor meanwhile */
  }
  return copy(schema, batch, out, err);
}
PT_REGISTER_FN(break_protocol)

/* ------------------------------------------------------------------------ */
/* Helpers */

static char local_dir[4096];

static pt_session *open_with(const char *master, const char *const *kv) {
  pt_conf *conf;
  pt_session *s;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "local.dir", local_dir, &err));
  CHECK(pt_conf_set(conf, "local.results_dir", local_dir, &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_interval", "100ms", &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_timeout", "1s", &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "100", &err));
  for (int i = 0; kv && kv[i]; i += 2) CHECK(pt_conf_set(conf, kv[i], kv[i + 1], &err));
  CHECK(pt_session_open(master, conf, &s, &err));
  pt_conf_free(conf);
  return s;
}

/* The one session directory under local_dir (fails if not exactly one). */
static void session_dir(char *out, size_t n) {
  char pattern[4200];
  snprintf(pattern, sizeof pattern, "%s/protium-%d-*", local_dir, (int)getpid());
  glob_t g;
  assert_int_equal(glob(pattern, 0, NULL, &g), 0);
  assert_int_equal(g.gl_pathc, 1);
  snprintf(out, n, "%s", g.gl_pathv[0]);
  globfree(&g);
}

static int count_glob(const char *pattern) {
  glob_t g;
  int n = glob(pattern, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
  if (n) globfree(&g);
  return n;
}

static pt_job_stats *last_job(pt_dataset *ds) {
  pt_job_stats *js = NULL;
  CHECK(pt_dataset_last_job(ds, &js, &err));
  return js;
}

static pt_stage_stats total(const pt_job_stats *js) {
  pt_stage_stats t;
  pt_job_stats_total(js, &t);
  return t;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Collects column 0 and checks it holds 0..n-1, each once, in any order. */
static void expect_ids(pt_dataset *ds, int64_t n) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  uint8_t *seen = calloc((size_t)n, 1);
  int64_t rows = 0;
  for (;;) {
    struct ArrowArray b;
    assert_int_equal(st.get_next(&st, &b), 0);
    if (!b.release) break;
    const struct ArrowArray *c = b.children[0];
    const int64_t *v = (const int64_t *)c->buffers[1] + c->offset + b.offset;
    for (int64_t i = 0; i < b.length; i++) {
      if (v[i] < 0 || v[i] >= n || seen[v[i]]++) fail_msg("row %lld twice or out of range",
                                                         (long long)v[i]);
    }
    rows += b.length;
    b.release(&b);
  }
  st.release(&st);
  free(seen);
  assert_int_equal(rows, n);
}

static int setup(void **state) {
  const char *t = getenv("TMPDIR");
  snprintf(local_dir, sizeof local_dir, "%s/pt-claims-XXXXXX", t && *t ? t : "/tmp");
  return mkdtemp(local_dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", local_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Retries */

/* local[1], four tasks queued behind the running one. Partition 0's first
 * attempt kills the executor (its queued tasks, partition 1 among them,
 * are requeued); on the replacement partition 1's second attempt fails.
 * With task.max_failures 2 the job succeeds only if the requeue did not
 * count as a failure of partition 1. */
static void test_queued_tasks_of_lost_executor_not_counted(void **state) {
  const char *kv[] = {"task.max_failures", "2", "executor.queue_depth", "4", NULL};
  pt_session *s = open_with("local[1]", kv);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 500, 5, &r, &err));
  CHECK(pt_map_batches(r, kill_then_fail, NULL, NULL, 0, &m, &err));
  expect_ids(m, 500);
  pt_job_stats *js = last_job(m);
  pt_stage_stats t = total(js);
  assert_int_equal(js->executors_lost, 1);
  assert_int_equal(t.failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 1);
  assert_int_equal(t.failed_by_cause[PT_CAUSE_ERROR], 1);
  assert_int_equal(t.tasks_requeued, 4);
  pt_job_stats_free(js);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* With task.max_failures 1 a fetch failure must not count, or the job
 * would fail. */
static void test_fetch_failure_not_counted(void **state) {
  const char *kv[] = {"task.max_failures", "1", "executor.queue_depth", "1", NULL};
  pt_session *s = open_with("local[2]", kv);
  char sd[4096], pattern[4300];
  session_dir(sd, sizeof sd);
  snprintf(pattern, sizeof pattern, "%s/exec-*/shuffle-*-1-0.arrows", sd);
  pt_dataset *r, *p, *red;
  CHECK(pt_range(s, 0, 4000, 4, &r, &err));
  CHECK(pt_repartition(r, 3, &p, &err));
  CHECK(pt_map_batches(p, reduce_delete, NULL, pattern, strlen(pattern), &red, &err));
  expect_ids(red, 4000);
  pt_job_stats *js = last_job(red);
  pt_stage_stats t = total(js);
  assert_true(t.failed_by_cause[PT_CAUSE_FETCH_FAILED] >= 1);
  assert_int_equal(t.outputs_lost, 1);
  pt_job_stats_free(js);
  pt_dataset_free(red);
  pt_dataset_free(p);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* Losing the executor on every attempt of a partition fails the job with
 * PT_EIO after task.max_failures attempts, naming the loss. One partition:
 * with more, a finished task whose status was still in the executor's
 * coalescing window when the kill came counts a loss too, and another
 * partition may reach the limit first. */
static void test_repeated_executor_loss_is_eio(void **state) {
  pt_session *s = open_with("local[2]", NULL);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 400, 1, &r, &err));
  CHECK(pt_map_batches(r, kill_p0_always, NULL, NULL, 0, &m, &err));
  pt_error e = {0};
  int64_t n;
  assert_int_equal(pt_count(m, &n, &e), PT_EIO);
  fprintf(stderr, "error: %s\n", e.message);
  assert_non_null(strstr(e.message, "partition 0 failed 4 times; last error: executor "));
  assert_non_null(strstr(e.message, " lost: ")); /* killed by signal 9, or its socket closed */
  pt_job_stats *js = last_job(m);
  assert_int_equal(js->status, PT_EIO);
  assert_int_equal(js->executors_lost, 4);
  assert_int_equal(total(js).failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 4);
  pt_job_stats_free(js);
  CHECK(pt_count(r, &n, &err)); /* the session goes on */
  assert_int_equal(n, 400);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* stage.max_attempts 1: the first loss of a finished map stage's output
 * fails the job. */
static void test_stage_max_attempts_exhausted(void **state) {
  const char *kv[] = {"stage.max_attempts", "1", "executor.queue_depth", "1", NULL};
  pt_session *s = open_with("local[2]", kv);
  char sd[4096], pattern[4300];
  session_dir(sd, sizeof sd);
  snprintf(pattern, sizeof pattern, "%s/exec-*/shuffle-*-1-0.arrows", sd);
  pt_dataset *r, *p, *red;
  CHECK(pt_range(s, 0, 4000, 4, &r, &err));
  CHECK(pt_repartition(r, 3, &p, &err));
  CHECK(pt_map_batches(p, reduce_delete, NULL, pattern, strlen(pattern), &red, &err));
  pt_error e = {0};
  int64_t n;
  assert_int_equal(pt_count(red, &n, &e), PT_EIO);
  assert_non_null(strstr(e.message, "lost its map output 1 times; last cause: shuffle read"));
  pt_dataset_free(red);
  pt_dataset_free(p);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* ------------------------------------------------------------------------ */
/* Executors lost */

static void test_protocol_violation_loses_executor(void **state) {
  const char *kv[] = {"task.max_failures", "1", NULL};
  pt_session *s = open_with("local[2]", kv);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 400, 4, &r, &err));
  CHECK(pt_map_batches(r, break_protocol, NULL, NULL, 0, &m, &err));
  pt_error e = {0};
  int64_t n;
  assert_int_equal(pt_count(m, &n, &e), PT_EIO);
  fprintf(stderr, "error: %s\n", e.message);
  assert_non_null(strstr(e.message, "partition 0 failed 1 times; last error: executor "));
  assert_non_null(strstr(e.message, "lost: protocol error: "));
  pt_job_stats *js = last_job(m);
  assert_int_equal(js->executors_lost, 1);
  pt_job_stats_free(js);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* Replacements that never connect (hang, or exit) are lost, after
 * executor.start_timeout for the hanging ones; three in a row fail the
 * job, and the session recovers once executors connect again. */
static void never_connecting(const char *var) {
  /* long enough for a healthy executor to connect on a loaded machine
   * (under the sanitizers too), short enough for three hanging ones */
  const char *kv[] = {"executor.start_timeout", "2s", NULL};
  pt_session *s = open_with("local[1]", kv);
  pt_dataset *r, *m;
  CHECK(pt_range(s, 0, 400, 4, &r, &err));
  CHECK(pt_map_batches(r, kill_p0_first, NULL, NULL, 0, &m, &err));
  setenv(var, "1", 1);
  pt_error e = {0};
  int64_t n;
  assert_int_equal(pt_count(m, &n, &e), PT_EIO);
  assert_non_null(strstr(e.message, "executors keep exiting before they connect"));
  pt_job_stats *js = last_job(m);
  assert_int_equal(js->executors_lost, 1 + 3);
  assert_int_equal(js->executors_started, 3);
  pt_job_stats_free(js);
  /* a new job fails at once while none connects */
  assert_int_equal(pt_count(r, &n, &e), PT_EIO);
  assert_non_null(strstr(e.message, "keep exiting before they connect"));
  unsetenv(var);
  /* the tick starts executors again; once one connects, jobs run */
  int rc = PT_EIO;
  for (int k = 0; k < 300 && rc != PT_OK; k++) {
    rc = pt_count(r, &n, NULL);
    if (rc != PT_OK) usleep(100000);
  }
  assert_int_equal(rc, PT_OK);
  assert_int_equal(n, 400);
  pt_dataset_free(m);
  pt_dataset_free(r);
  pt_session_close(s);
}

static void test_executor_not_connecting_within_start_timeout(void **state) {
  never_connecting("PT_TEST_HANG_BEFORE_HELLO");
}

static void test_three_start_failures_in_a_row(void **state) {
  never_connecting("PT_TEST_EXIT_BEFORE_HELLO");
}

/* An executor that is lost takes its directory (its shuffle files) along;
 * a replacement with a new id takes its place. */
static void test_lost_executor_directory_deleted(void **state) {
  pt_session *s = open_with("local[2]", NULL);
  char sd[4096], dir[4300];
  session_dir(sd, sizeof sd);
  pt_executor_info info[4];
  int64_t n;
  CHECK(pt_session_executors(s, info, 4, &n, &err));
  assert_int_equal(n, 2);
  snprintf(dir, sizeof dir, "%s/exec-%lld", sd, (long long)info[0].id);
  struct stat sb;
  assert_int_equal(stat(dir, &sb), 0);
  kill((pid_t)info[0].pid, SIGKILL);
  int gone = 0;
  for (int k = 0; k < 500 && !gone; k++) {
    gone = stat(dir, &sb) != 0 && errno == ENOENT;
    if (!gone) usleep(10000);
  }
  assert_true(gone);
  int replaced = 0;
  for (int k = 0; k < 500 && !replaced; k++) {
    pt_executor_info now[4];
    int64_t live;
    CHECK(pt_session_executors(s, now, 4, &live, &err));
    replaced = live == 2 && now[0].id != info[0].id && now[1].id != info[0].id;
    if (!replaced) usleep(10000);
  }
  assert_true(replaced);
  pt_session_close(s);
}

/* ------------------------------------------------------------------------ */
/* Files */

/* A job's shuffle files are deleted once it ends (Cleanup, sent with the
 * executor's next write or the next tick: within a second or so). */
static void test_cleanup_deletes_shuffle_files(void **state) {
  pt_session *s = open_with("local[2]", NULL);
  char sd[4096], pattern[4300];
  session_dir(sd, sizeof sd);
  snprintf(pattern, sizeof pattern, "%s/exec-*/shuffle-*", sd);
  pt_dataset *r, *p;
  CHECK(pt_range(s, 0, 4000, 4, &r, &err));
  CHECK(pt_repartition(r, 3, &p, &err));
  int64_t n;
  CHECK(pt_count(p, &n, &err));
  assert_int_equal(n, 4000);
  pt_job_stats *js = last_job(p);
  assert_true(total(js).bytes_written > 0); /* the map stage wrote files */
  pt_job_stats_free(js);
  int left = -1;
  for (int k = 0; k < 500 && left != 0; k++) {
    left = count_glob(pattern);
    if (left) usleep(10000);
  }
  assert_int_equal(left, 0);
  pt_dataset_free(p);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* Over TCP, map output stays in the executors' memory up to
 * shuffle.memory_mb each (no file: what reduce tasks see on disk while
 * they run), goes to files with 0, and beyond the budget to files for what
 * does not fit; the result is exact each time. */
static void test_map_output_in_memory_within_budget(void **state) {
  const char *budgets[] = {"1024", "0", "1"};
  for (int b = 0; b < 3; b++) {
    const char *kv[] = {"net.transport", "tcp", "shuffle.fetch", "remote", "shuffle.memory_mb",
                        budgets[b], "range.batch_rows", "65536", NULL};
    pt_session *s = open_with("local[2]", kv);
    char sd[4096], arg[8400], seen[4200];
    session_dir(sd, sizeof sd);
    snprintf(seen, sizeof seen, "%s/seen", local_dir);
    snprintf(arg, sizeof arg, "%s/exec-*/shuffle-*\n%s", sd, seen);
    /* 4 map tasks of 100,000 int64 (about 800 KB of output each): with
     * 1 MiB an executor keeps its first and writes its second. */
    pt_dataset *r, *p, *red;
    CHECK(pt_range(s, 0, 400000, 4, &r, &err));
    CHECK(pt_repartition(r, 3, &p, &err));
    CHECK(pt_map_batches(p, note_shuffle_files, NULL, arg, strlen(arg), &red, &err));
    expect_ids(red, 400000);
    int files = -1;
    char path[4300];
    snprintf(path, sizeof path, "%s-0", seen);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &files), 1);
    fclose(f);
    if (b == 0) assert_int_equal(files, 0);
    if (b == 1) assert_int_equal(files, 4);
    if (b == 2) assert_true(files >= 1 && files <= 3);
    pt_job_stats *js = last_job(red);
    assert_true(total(js).bytes_written > 3200000); /* what the map side wrote, anywhere */
    pt_job_stats_free(js);
    pt_dataset_free(red);
    pt_dataset_free(p);
    pt_dataset_free(r);
    pt_session_close(s);
  }
}

/* Executors get every configuration key, however many: with 200
 * placeholder keys before the real ones (PROTIUM_CONF_PAD) the key
 * shuffle.memory_mb = 0 still reaches them, and all 4 map outputs are
 * files (the default keeps them in memory: none). */
static void test_executors_get_every_conf_key(void **state) {
  setenv("PROTIUM_CONF_PAD", "200", 1);
  const char *kv[] = {"net.transport", "tcp", "shuffle.fetch", "remote", "shuffle.memory_mb",
                      "0", "range.batch_rows", "65536", NULL};
  pt_session *s = open_with("local[2]", kv);
  unsetenv("PROTIUM_CONF_PAD");
  char sd[4096], arg[8400], seen[4200];
  session_dir(sd, sizeof sd);
  snprintf(seen, sizeof seen, "%s/seen", local_dir);
  snprintf(arg, sizeof arg, "%s/exec-*/shuffle-*\n%s", sd, seen);
  pt_dataset *r, *p, *red;
  CHECK(pt_range(s, 0, 400000, 4, &r, &err));
  CHECK(pt_repartition(r, 3, &p, &err));
  CHECK(pt_map_batches(p, note_shuffle_files, NULL, arg, strlen(arg), &red, &err));
  expect_ids(red, 400000);
  int files = -1;
  char path[4300];
  snprintf(path, sizeof path, "%s-0", seen);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  assert_int_equal(fscanf(f, "%d", &files), 1);
  fclose(f);
  assert_int_equal(files, 4);
  pt_dataset_free(red);
  pt_dataset_free(p);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* Reads a collect of range(0, 1000) in 3 partitions whole, checking the
 * values; the pattern (glob) must match its 3 files before the read. */
static void collect_range_from(pt_session *s, const char *pattern) {
  pt_dataset *r;
  CHECK(pt_range(s, 0, 1000, 3, &r, &err));
  struct ArrowArrayStream st;
  CHECK(pt_collect(r, &st, &err));
  assert_int_equal(count_glob(pattern), 3);
  int64_t next = 0;
  for (;;) {
    struct ArrowArray b;
    assert_int_equal(st.get_next(&st, &b), 0);
    if (!b.release) break;
    const int64_t *v = (const int64_t *)b.children[0]->buffers[1] + b.children[0]->offset;
    for (int64_t i = 0; i < b.length; i++) assert_int_equal(v[i], next++);
    b.release(&b);
  }
  st.release(&st);
  assert_int_equal(next, 1000);
  assert_int_equal(count_glob(pattern), 0);
  pt_dataset_free(r);
}

/* local.results_dir on a tmpfs: a job's result files go there (in memory)
 * and nowhere below the session directory, and leave with the stream;
 * the session's directory there leaves with the session. When it is short
 * of room (PROTIUM_FAULT_RESULTS_FULL) they go below the session directory
 * instead. A session directory there whose process is gone is removed. */
static void test_results_in_memory(void **state) {
  struct stat sb;
  if (stat("/dev/shm", &sb) != 0 || access("/dev/shm", W_OK) != 0) {
    fprintf(stderr, "test_results_in_memory SKIPPED: no writable /dev/shm\n");
    skip();
  }
  /* A driver killed before its close: its directory there, named by a pid
   * that is gone. */
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  assert_true(dead > 0);
  assert_int_equal(waitpid(dead, NULL, 0), dead);
  char stale[256], mine[4300], pattern[4400], sd[4096];
  snprintf(stale, sizeof stale, "/dev/shm/protium-%d-stale0", (int)dead);
  assert_int_equal(mkdir(stale, 0700), 0);
  const char *kv[] = {"local.results_dir", "/dev/shm", NULL};
  pt_session *s = open_with("local[2]", kv);
  errno = 0;
  assert_int_equal(stat(stale, &sb), -1);
  assert_int_equal(errno, ENOENT);
  snprintf(pattern, sizeof pattern, "/dev/shm/protium-%d-*", (int)getpid());
  glob_t g;
  assert_int_equal(glob(pattern, 0, NULL, &g), 0);
  assert_int_equal(g.gl_pathc, 1);
  snprintf(mine, sizeof mine, "%s", g.gl_pathv[0]);
  globfree(&g);
  session_dir(sd, sizeof sd);
  snprintf(pattern, sizeof pattern, "%s/results/*/part-*", mine);
  collect_range_from(s, pattern);
  snprintf(pattern, sizeof pattern, "%s/results/*/part-*", sd);
  assert_int_equal(count_glob(pattern), 0);
  pt_session_close(s);
  errno = 0;
  assert_int_equal(stat(mine, &sb), -1);
  assert_int_equal(errno, ENOENT);

  /* Short of room: below the session directory, read the same. */
  setenv("PROTIUM_FAULT_RESULTS_FULL", "1", 1);
  s = open_with("local[2]", kv);
  session_dir(sd, sizeof sd);
  snprintf(pattern, sizeof pattern, "%s/results/*/part-*", sd);
  collect_range_from(s, pattern);
  pt_session_close(s);
  unsetenv("PROTIUM_FAULT_RESULTS_FULL");

  /* A directory that cannot be made, named by the user: the open fails. */
  pt_conf *conf;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "local.dir", local_dir, &err));
  CHECK(pt_conf_set(conf, "local.results_dir", "/proc/no-such-dir", &err));
  pt_session *bad = NULL;
  pt_error e = {0};
  assert_int_equal(pt_session_open("local[1]", conf, &bad, &e), PT_EIO);
  assert_null(bad);
  assert_non_null(strstr(e.message, "(local.results_dir)"));
  pt_conf_free(conf);
  assert_int_equal(count_glob(pattern), 0);
}

/* collect's result files live until the stream is released. */
static void test_collect_release_deletes_files(void **state) {
  pt_session *s = open_with("local[2]", NULL);
  char sd[4096], pattern[4300];
  session_dir(sd, sizeof sd);
  snprintf(pattern, sizeof pattern, "%s/results/*/part-*", sd);
  pt_dataset *r;
  CHECK(pt_range(s, 0, 1000, 3, &r, &err));
  struct ArrowArrayStream st;
  CHECK(pt_collect(r, &st, &err));
  assert_int_equal(count_glob(pattern), 3);
  struct ArrowArray b;
  assert_int_equal(st.get_next(&st, &b), 0);
  assert_non_null(b.release);
  st.release(&st);
  snprintf(pattern, sizeof pattern, "%s/results/*", sd);
  assert_int_equal(count_glob(pattern), 0);
  /* a batch taken before the release stays readable */
  assert_true(b.length > 0);
  const struct ArrowArray *c = b.children[0];
  assert_int_equal(((const int64_t *)c->buffers[1])[c->offset + b.offset], 0);
  b.release(&b);
  pt_dataset_free(r);
  pt_session_close(s);
}

/* An executor that does not exit on Shutdown (stopped) is SIGKILLed: close
 * returns and no process is left. */
static void test_close_escalates_to_sigkill(void **state) {
  /* A stopped member of an orphaned process group (tests started in the
   * background from a shell that is gone) makes the kernel send the whole
   * group SIGHUP and SIGCONT when another member exits: this test and the
   * frozen executor among them. In a group of its own under ctest's, which
   * its executors join, it is never orphaned. */
  (void)setpgid(0, 0);
  /* a heartbeat timeout longer than the test: no loss before the close */
  const char *kv[] = {"executor.heartbeat_timeout", "60s", NULL};
  pt_session *s = open_with("local[2]", kv);
  pt_executor_info info[4];
  int64_t n;
  CHECK(pt_session_executors(s, info, 4, &n, &err));
  assert_int_equal(n, 2);
  assert_int_equal(kill((pid_t)info[0].pid, SIGSTOP), 0);
  double t0 = now_ms();
  pt_session_close(s);
  double took = now_ms() - t0;
  fprintf(stderr, "close with a stopped executor took %.0f ms\n", took);
  for (int k = 0; k < 2; k++) {
    errno = 0;
    assert_int_equal(kill((pid_t)info[k].pid, 0), -1);
    assert_int_equal(errno, ESRCH);
  }
  assert_true(took >= 1500); /* it waited 2 s for a Shutdown that never came */
}

/* ------------------------------------------------------------------------ */
/* Configuration: every key of the README's table (and the driver README's)
 * has the default written there. */

static void check_table(const char *file) {
  const char *src = getenv("PT_SOURCE_DIR");
  assert_non_null(src);
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", src, file);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  pt_conf *c;
  CHECK(pt_conf_new(&c, &err));
  char line[1024];
  int in_table = 0, keys = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "| key | default |", 17) == 0) {
      in_table = 1;
      continue;
    }
    if (!in_table) continue;
    if (line[0] != '|') break;
    char key[128], def[128];
    if (sscanf(line, "| `%127[^`]` | %127[^|]|", key, def) != 2) continue;
    char *e = def + strlen(def);
    while (e > def && e[-1] == ' ') *--e = 0;
    if (strcmp(def, "(empty)") == 0) def[0] = 0; /* how the tables write "" */
    const char *got = pt_conf_get(c, key);
    if (!got) fail_msg("%s: key '%s' is not a configuration key", file, key);
    const char *t = getenv("TMPDIR");
    if (strcmp(key, "local.dir") == 0) {
      assert_string_equal(got, t && *t ? t : "/tmp");
    } else if (strcmp(key, "local.results_dir") == 0) {
      if (strcmp(got, "/dev/shm") != 0) assert_string_equal(got, t && *t ? t : "/tmp");
    } else if (strcmp(got, def) != 0) {
      fail_msg("%s: '%s' defaults to '%s', the table says '%s'", file, key, got, def);
    }
    keys++;
  }
  fclose(f);
  pt_conf_free(c);
  assert_int_equal(keys, 47);
}

static void test_configuration_defaults(void **state) {
  check_table("README.md");
  check_table("src/sched/README.md");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_configuration_defaults),
      cmocka_unit_test(test_queued_tasks_of_lost_executor_not_counted),
      cmocka_unit_test(test_fetch_failure_not_counted),
      cmocka_unit_test(test_repeated_executor_loss_is_eio),
      cmocka_unit_test(test_stage_max_attempts_exhausted),
      cmocka_unit_test(test_protocol_violation_loses_executor),
      cmocka_unit_test(test_executor_not_connecting_within_start_timeout),
      cmocka_unit_test(test_three_start_failures_in_a_row),
      cmocka_unit_test(test_lost_executor_directory_deleted),
      cmocka_unit_test(test_cleanup_deletes_shuffle_files),
      cmocka_unit_test(test_map_output_in_memory_within_budget),
      cmocka_unit_test(test_executors_get_every_conf_key),
      cmocka_unit_test(test_collect_release_deletes_files),
      cmocka_unit_test(test_results_in_memory),
      cmocka_unit_test(test_close_escalates_to_sigkill),
  };
  return cmocka_run_group_tests_name("engine_claims", tests, setup, teardown);
}
