/* test_barrier.c — barrier execution mode with real executor processes:
 * gang launch, 1,000 barrier() steps at N = 1, 2, 4, 8, all_gather payloads
 * up to 16 MiB, task infos, SIGKILL of a task mid-stage (the whole stage
 * reruns, output exact, for collect and for write_ipc as the last stage),
 * checkpoint resume, barrier.timeout, a dead peer, mismatched calls, too
 * few slots, waiting for busy slots, lost barrier shuffle output, a task
 * returning without a call, the same-host shared area (one per attempt),
 * the failures again with every call through the driver, and no executor
 * process left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* one clock for every process */
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------ */
/* The partition function every test runs, steered by its arg */

typedef struct gang_arg {
  int64_t steps;          /* barrier() calls */
  int64_t gather;         /* >= 0: one all_gather; partition p gives gather + p bytes
                             (just gather when gather is 0) */
  int64_t kill_part;      /* this partition SIGKILLs its executor, attempt 0 ... */
  int64_t kill_step;      /* ... before this step (-1: never) */
  int64_t hang_part;      /* never calls barrier(): sleeps hang_ms instead (-1: none) */
  int64_t hang_ms;
  int64_t hang_first;     /* ... in attempt 0 only */
  int64_t mismatch_part;  /* calls all_gather where the others call barrier() (-1: none) */
  int64_t checkpoint;     /* resume from the checkpoint directory */
  int64_t check_infos;    /* verify task infos */
  char log[1024];         /* appended lines, "" = none */
  char go_file[1024];     /* attempts > 0 wait for this file before their steps; hold_slot
                             holds its slot until it exists ("" = no) */
} gang_arg;

static gang_arg gang_default(void) {
  gang_arg a;
  memset(&a, 0, sizeof a);
  a.gather = -1;
  a.kill_part = a.kill_step = a.hang_part = a.mismatch_part = -1;
  return a;
}

static void log_line(const gang_arg *a, const char *fmt, ...) {
  if (!a->log[0]) return;
  char line[1200];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  int fd = open(a->log, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return;
  if (write(fd, line, (size_t)n) != n) abort(); /* O_APPEND: lines do not mix */
  close(fd);
}

static uint8_t pattern(int64_t p, size_t i) { return (uint8_t)(p * 131 + i * 7 + (i >> 9)); }

/* Output: struct<id, partition, stage_attempt, value: int64>. */
static int out_schema(struct ArrowSchema *s, pt_error *err) {
  const char *names[] = {"id", "partition", "stage_attempt", "value"};
  if (pt_schema_init(s, "+s", "", 0, 4, err) != PT_OK) return err->code;
  for (int i = 0; i < 4; i++)
    if (pt_schema_init(s->children[i], "l", names[i], 0, 0, err) != PT_OK) {
      s->release(s);
      return err->code;
    }
  return PT_OK;
}

static int fail_with(pt_error *err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return code;
}

/* The checks a task makes of its own view; value 1 = all held. */
static int64_t check_infos(const pt_task_context *ctx, pt_error *err) {
  const pt_task_info *infos;
  int64_t n;
  if (pt_ctx_task_infos(ctx, &infos, &n, err) != PT_OK) return 0;
  if (n != pt_ctx_num_tasks(ctx)) return 0;
  for (int64_t i = 0; i < n; i++) {
    if (infos[i].partition != i || infos[i].port <= 0 || !infos[i].host[0]) return 0;
    for (int64_t j = 0; j < i; j++)
      if (infos[j].port == infos[i].port) return 0;
  }
  const pt_task_info *me = &infos[pt_ctx_partition_id(ctx)];
  return me->pid == getpid() && me->executor_id == ctx->executor_id;
}

static int gang(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *argp,
                size_t arg_size, pt_error *err) {
  gang_arg a;
  if (arg_size != sizeof a) return fail_with(err, PT_EINVAL, "arg must be a gang_arg");
  memcpy(&a, argp, sizeof a);
  int64_t p = pt_ctx_partition_id(ctx), attempt = pt_ctx_stage_attempt(ctx);
  log_line(&a, "start %lld %lld %lld %lld", (long long)p, (long long)attempt,
           (long long)now_us(), (long long)getpid());

  /* The input's ids, whole. */
  int64_t *ids = NULL, n_ids = 0, cap = 0;
  for (;;) {
    struct ArrowArray b;
    if (input->get_next(input, &b) != 0) {
      free(ids);
      return fail_with(err, PT_EIO, "input: %s", input->get_last_error(input));
    }
    if (!b.release) break;
    const struct ArrowArray *c = b.children[0];
    const int64_t *v = (const int64_t *)c->buffers[1] + c->offset + b.offset;
    if (n_ids + b.length > cap) {
      cap = (n_ids + b.length) * 2;
      ids = realloc(ids, (size_t)cap * sizeof *ids);
    }
    memcpy(ids + n_ids, v, (size_t)b.length * sizeof *v);
    n_ids += b.length;
    b.release(&b);
  }

  int64_t value = 1, start = 0;
  int rc = PT_OK;
  const char *cp = NULL;
  char progress[2048];
  if (a.checkpoint) {
    rc = pt_ctx_checkpoint_dir(ctx, &cp, err);
    if (rc != PT_OK) goto done;
    snprintf(progress, sizeof progress, "%s/progress-%lld", cp, (long long)p);
    FILE *f = fopen(progress, "r");
    if (f) {
      if (fscanf(f, "%lld", (long long *)&start) != 1) start = 0;
      fclose(f);
    }
    value = start;
  }
  if (a.check_infos) value = check_infos(ctx, err);
  if (p == a.hang_part && (!a.hang_first || attempt == 0)) {
    usleep((useconds_t)a.hang_ms * 1000);
    goto done;
  }
  while (a.go_file[0] && attempt > 0 && access(a.go_file, F_OK) != 0) usleep(2000);
  for (int64_t s = start; s < a.steps; s++) {
    if (a.checkpoint) { /* steps before s are done */
      char tmp[2100];
      snprintf(tmp, sizeof tmp, "%s.tmp", progress);
      FILE *f = fopen(tmp, "w");
      if (!f) { rc = fail_with(err, PT_EIO, "cannot write '%s'", tmp); goto done; }
      fprintf(f, "%lld\n", (long long)s);
      fclose(f);
      rename(tmp, progress);
    }
    if (p == a.kill_part && s == a.kill_step && attempt == 0) kill(getpid(), SIGKILL);
    int64_t t0 = now_us();
    if (p == a.mismatch_part) {
      void *out;
      size_t sizes[64];
      rc = pt_ctx_all_gather(ctx, "x", 1, &out, sizes, err);
      if (rc == PT_OK) free(out);
    } else {
      rc = pt_ctx_barrier(ctx, err);
    }
    if (rc != PT_OK) {
      /* Calls after the stop fail at once too. */
      pt_error again = {0};
      int64_t t1 = now_us();
      int rc2 = pt_ctx_barrier(ctx, &again);
      log_line(&a, "error %lld %lld %lld %d %s", (long long)p, (long long)(t1 - t0),
               (long long)(now_us() - t1), rc2, err->message);
      goto done;
    }
  }
  if (a.gather >= 0) {
    int64_t n = pt_ctx_num_tasks(ctx);
    size_t mine = (size_t)(a.gather ? a.gather + p : 0);
    uint8_t *data = malloc(mine ? mine : 1);
    for (size_t i = 0; i < mine; i++) data[i] = pattern(p, i);
    void *out = NULL;
    size_t *sizes = calloc((size_t)n, sizeof *sizes);
    rc = pt_ctx_all_gather(ctx, data, mine, &out, sizes, err);
    free(data);
    if (rc == PT_OK) {
      const uint8_t *o = out;
      for (int64_t q = 0; q < n && value; q++) {
        size_t want = (size_t)(a.gather ? a.gather + q : 0);
        if (sizes[q] != want) value = 0;
        for (size_t i = 0; value && i < want; i++) value = o[i] == pattern(q, i);
        o += sizes[q];
      }
    }
    free(out);
    free(sizes);
    if (rc != PT_OK) goto done;
  }

  /* One output row per input row. */
  struct ArrowSchema s;
  pt_builder *bld;
  rc = out_schema(&s, err);
  if (rc != PT_OK) goto done;
  rc = pt_builder_new(&s, &bld, err);
  s.release(&s);
  if (rc != PT_OK) goto done;
  for (int64_t i = 0; i < n_ids && rc == PT_OK; i++) {
    int64_t row[4] = {ids[i], p, attempt, value};
    for (int c = 0; c < 4 && rc == PT_OK; c++)
      rc = pt_builder_append_int(pt_builder_child(bld, c), row[c]);
    if (rc == PT_OK) rc = pt_builder_append_row(bld);
  }
  struct ArrowArray batch;
  if (rc == PT_OK) rc = pt_builder_finish(bld, &batch, err);
  pt_builder_free(bld);
  if (rc == PT_OK) rc = pt_ctx_emit(ctx, &batch, err);
done:
  log_line(&a, "end %lld %lld %d %lld", (long long)p, (long long)attempt, rc,
           (long long)now_us());
  free(ids);
  return rc;
}
PT_REGISTER_FN(gang)

/* An ordinary partition function: the sum of its ids, as one row. */
static int sum_ids(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *arg,
                   size_t arg_size, pt_error *err) {
  int64_t sum = 0;
  struct ArrowArray b;
  while (input->get_next(input, &b) == 0 && b.release) {
    const struct ArrowArray *c = b.children[0];
    const int64_t *v = (const int64_t *)c->buffers[1] + c->offset + b.offset;
    for (int64_t i = 0; i < b.length; i++) sum += v[i];
    b.release(&b);
  }
  /* Not a barrier stage: the coordinator is out of reach. */
  pt_error e = {0};
  int64_t ok = pt_ctx_barrier(ctx, &e) == PT_ESTATE && strstr(e.message, "not a barrier stage");
  struct ArrowSchema s;
  pt_builder *bld;
  int rc = out_schema(&s, err);
  if (rc != PT_OK) return rc;
  rc = pt_builder_new(&s, &bld, err);
  s.release(&s);
  if (rc != PT_OK) return rc;
  int64_t row[4] = {sum, ctx->partition, pt_ctx_stage_attempt(ctx), ok};
  for (int c = 0; c < 4; c++) pt_builder_append_int(pt_builder_child(bld, c), row[c]);
  pt_builder_append_row(bld);
  struct ArrowArray out;
  rc = pt_builder_finish(bld, &out, err);
  pt_builder_free(bld);
  if (rc == PT_OK) rc = pt_ctx_emit(ctx, &out, err);
  return rc;
}
PT_REGISTER_FN(sum_ids)

/* Ordinary tasks that hold their slot (until go_file exists, or a while)
 * and log when they took it and when they let go. */
static int hold_slot(const pt_task_context *ctx, const struct ArrowSchema *schema,
                     const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                     size_t arg_size, pt_error *err) {
  gang_arg a;
  memcpy(&a, arg, sizeof a);
  log_line(&a, "hold %lld %lld", (long long)ctx->partition, (long long)now_us());
  if (a.go_file[0])
    while (access(a.go_file, F_OK) != 0) usleep(2000);
  else
    usleep((useconds_t)(a.hang_ms * 1000 * (ctx->partition + 1)));
  log_line(&a, "release %lld %lld", (long long)ctx->partition, (long long)now_us());
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(hold_slot)

/* Reduce side of a barrier map stage: the first attempt of partition 0
 * kills its own executor, which holds barrier map outputs. */
static int reduce_kill(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  if (ctx->partition == 0 && ctx->attempt == 0) kill(getpid(), SIGKILL);
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(reduce_kill)

/* ------------------------------------------------------------------------ */
/* Helpers */

static char local_dir[256];
/* Configuration every session of a test gets besides its own (NULL-ended
 * pairs, or NULL). */
static const char *const *extra_kv;

static void rm_rf(const char *path) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fail_msg("rm -rf %s failed", path);
}

/* Our children that are still in the process table (executors, zombies
 * included). */
static int count_children(void) {
  DIR *d = opendir("/proc");
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    char *r = strrchr(buf, ')'); /* the name may hold spaces */
    int ppid = 0;
    char st;
    if (r && sscanf(r + 1, " %c %d", &st, &ppid) == 2 && ppid == getpid()) n++;
  }
  if (d) closedir(d);
  return n;
}

static pt_session *open_n(int executors, int slots, const char *const *kv) {
  pt_conf *conf;
  pt_session *s;
  char master[32], sl[16];
  snprintf(master, sizeof master, "local[%d]", executors);
  snprintf(sl, sizeof sl, "%d", slots);
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "executor.slots", sl, &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_interval", "200ms", &err));
  CHECK(pt_conf_set(conf, "local.dir", local_dir, &err));
  /* result files below the session directory, where the tests look */
  CHECK(pt_conf_set(conf, "local.results_dir", local_dir, &err));
  for (; kv && kv[0]; kv += 2) CHECK(pt_conf_set(conf, kv[0], kv[1], &err));
  for (kv = extra_kv; kv && kv[0]; kv += 2) CHECK(pt_conf_set(conf, kv[0], kv[1], &err));
  CHECK(pt_session_open(master, conf, &s, &err));
  pt_conf_free(conf);
  return s;
}

static void close_session(pt_session *s) {
  pt_session_close(s);
  assert_int_equal(count_children(), 0);
}

/* range(0, rows, parts) -> barrier -> map_partitions(gang, a). */
static pt_dataset *gang_ds(pt_session *s, int64_t rows, int64_t parts, const gang_arg *a) {
  pt_dataset *r, *b, *m;
  struct ArrowSchema sch;
  CHECK(pt_range(s, 0, rows, parts, &r, &err));
  CHECK(pt_barrier(r, &b, &err));
  CHECK(out_schema(&sch, &err));
  CHECK(pt_map_partitions(b, gang, &sch, a, sizeof *a, &m, &err));
  sch.release(&sch);
  pt_dataset_free(r);
  pt_dataset_free(b);
  return m;
}

typedef struct rows {
  int64_t n;
  int64_t *v[4]; /* id, partition, stage_attempt, value */
} rows;

static void rows_add(rows *r, const struct ArrowArray *b) {
  for (int c = 0; c < 4; c++) {
    r->v[c] = realloc(r->v[c], (size_t)(r->n + b->length + 1) * sizeof(int64_t));
    const struct ArrowArray *col = b->children[c];
    memcpy(r->v[c] + r->n, (const int64_t *)col->buffers[1] + col->offset + b->offset,
           (size_t)b->length * sizeof(int64_t));
  }
  r->n += b->length;
}

static void rows_free(rows *r) {
  for (int c = 0; c < 4; c++) free(r->v[c]);
  memset(r, 0, sizeof *r);
}

static void read_stream(struct ArrowArrayStream *st, rows *r) {
  for (;;) {
    struct ArrowArray b;
    if (st->get_next(st, &b)) fail_msg("get_next: %s", st->get_last_error(st));
    if (!b.release) break;
    rows_add(r, &b);
    b.release(&b);
  }
  st->release(st);
}

static rows collect_rows(pt_dataset *ds) {
  rows r = {0};
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  read_stream(&st, &r);
  return r;
}

/* Every id 0..n-1 exactly once, every row from stage attempt `attempt`
 * and with value `value`. */
static void expect_exact(const rows *r, int64_t n, int64_t attempt, int64_t value) {
  assert_int_equal(r->n, n);
  uint8_t *seen = calloc((size_t)n, 1);
  for (int64_t i = 0; i < r->n; i++) {
    int64_t id = r->v[0][i];
    assert_true(id >= 0 && id < n);
    assert_int_equal(seen[id], 0);
    seen[id] = 1;
    if (attempt >= 0) assert_int_equal(r->v[2][i], attempt);
    if (value >= 0) assert_int_equal(r->v[3][i], value);
  }
  free(seen);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return strdup("");
  char *buf = calloc(1, 1 << 20);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void log_path(gang_arg *a, const char *name) {
  snprintf(a->log, sizeof a->log, "%s/%s.log", local_dir, name);
  unlink(a->log);
}

/* How long a test waits for something the engine must do before it calls
 * it a failure: far more than any loaded machine needs. */
#define WAIT_US (120 * 1000000LL)

/* Lines of the log that start with prefix. */
static int count_lines(const char *path, const char *prefix) {
  char *log = slurp(path);
  int n = 0;
  size_t len = strlen(prefix);
  for (char *line = log; *line;) {
    if (strncmp(line, prefix, len) == 0) n++;
    char *nl = strchr(line, '\n');
    if (!nl) break;
    line = nl + 1;
  }
  free(log);
  return n;
}

/* Waits until the log has n lines starting with prefix. */
static void wait_lines(const char *path, const char *prefix, int n) {
  int64_t deadline = now_us() + WAIT_US;
  int got;
  while ((got = count_lines(path, prefix)) < n) {
    if (now_us() > deadline) fail_msg("%d of %d '%s' lines in %s after 120 s", got, n, prefix, path);
    usleep(10000);
  }
}

static void touch(const char *path) {
  int fd = open(path, O_CREAT | O_WRONLY, 0644);
  assert_true(fd >= 0);
  close(fd);
}

/* ------------------------------------------------------------------------ */
/* Tests */

/* N = 1, 2, 4, 8 tasks (8 slots on 4 executors): 1,000 barrier() steps,
 * task infos right, one row per input row. */
static void test_thousand_barriers(void **state) {
  pt_session *s = open_n(4, 2, NULL);
  for (int64_t n = 1; n <= 8; n *= 2) {
    gang_arg a = gang_default();
    a.steps = 1000;
    a.check_infos = 1;
    pt_dataset *ds = gang_ds(s, 100 * n, n, &a);
    rows r = collect_rows(ds);
    expect_exact(&r, 100 * n, 0, 1);
    for (int64_t i = 0; i < r.n; i++) assert_int_equal(r.v[1][i], r.v[0][i] / 100);
    rows_free(&r);
    pt_dataset_free(ds);
  }
  close_session(s);
}

/* all_gather payloads of 0 B, 1 B, 1 MiB and 16 MiB (+ p bytes each):
 * exact bytes, partition order; several N for the small ones. */
static void test_all_gather_payloads(void **state) {
  pt_session *s = open_n(4, 2, NULL);
  const int64_t sizes[] = {0, 1, 1 << 20, 16 << 20};
  for (int k = 0; k < 4; k++) {
    for (int64_t n = 1; n <= 8; n *= 2) {
      if (sizes[k] > (1 << 20) && n != 4) continue; /* 16 MiB: N = 4 (64 MiB gathered) */
      gang_arg a = gang_default();
      a.steps = 2;
      a.gather = sizes[k];
      pt_dataset *ds = gang_ds(s, 10 * n, n, &a);
      int64_t count;
      rows r = collect_rows(ds);
      expect_exact(&r, 10 * n, 0, 1);
      rows_free(&r);
      CHECK(pt_count(ds, &count, &err));
      assert_int_equal(count, 10 * n);
      pt_dataset_free(ds);
    }
  }
  close_session(s);
}

/* One task's executor SIGKILLed at a random step: every task of the
 * attempt ends, the stage reruns whole as attempt 1, rows exact. The
 * stopped tasks return at once; the grace only bounds how long a loaded
 * machine may take them to (past it they would go with their executors,
 * unlogged). */
static void test_kill_reruns_stage(void **state) {
  const char *kv[] = {"barrier.stop_grace", "60s", NULL};
  pt_session *s = open_n(4, 1, kv);
  srand((unsigned)time(NULL));
  gang_arg a = gang_default();
  a.steps = 40;
  a.kill_part = 1 + rand() % 3;
  a.kill_step = rand() % 40;
  log_path(&a, "kill");
  pt_dataset *ds = gang_ds(s, 1000, 4, &a);
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  /* The job's result files: one per partition of attempt 1; of attempt 0
   * at most the killed task's unfinished one (its process died before it
   * could remove it; it goes with the results when the stream is
   * released, and is never read). */
  glob_t g;
  char pat[600], killed[64];
  snprintf(pat, sizeof pat, "%s/protium-*/results/*/*", local_dir);
  snprintf(killed, sizeof killed, "/part-%lld-0.arrows", (long long)a.kill_part);
  assert_int_equal(glob(pat, 0, NULL, &g), 0);
  int of_1 = 0;
  for (size_t i = 0; i < g.gl_pathc; i++) {
    if (strstr(g.gl_pathv[i], "-1.arrows")) of_1++;
    else assert_non_null(strstr(g.gl_pathv[i], killed));
  }
  assert_int_equal(of_1, 4);
  globfree(&g);
  rows r = {0};
  read_stream(&st, &r);
  expect_exact(&r, 1000, 1, 1);
  rows_free(&r);
  /* The job's metrics: attempt 0 lost one task with its executor and
   * stopped the other three; attempt 1 ran all four. */
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(ds, &js, &err));
  assert_int_equal(js->n_stages, 2);
  assert_int_equal(js->stages[0].attempt, 0);
  assert_int_equal(js->stages[0].tasks_launched, 4);
  assert_int_equal(js->stages[0].failed_by_cause[PT_CAUSE_EXECUTOR_LOST], 1);
  assert_int_equal(js->stages[0].tasks_orphaned, 3);
  assert_int_equal(js->stages[0].tasks_succeeded, 0);
  assert_int_equal(js->stages[1].attempt, 1);
  assert_int_equal(js->stages[1].tasks_launched, 4);
  assert_int_equal(js->stages[1].tasks_succeeded, 4);
  assert_int_equal(js->executors_lost, 1);
  pt_job_stats_free(js);
  /* Every task of attempt 0 ended (the killed one by its signal). */
  char *log = slurp(a.log);
  for (int p = 0; p < 4; p++) {
    char want[64];
    snprintf(want, sizeof want, "start %d 1 ", p);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof want, "end %d 1 0 ", p);
    assert_non_null(strstr(log, want));
    if (p == a.kill_part) continue;
    snprintf(want, sizeof want, "end %d 0 ", p);
    assert_non_null(strstr(log, want));
  }
  free(log);
  pt_dataset_free(ds);
  close_session(s);
}

/* The same with write_ipc as the job's last stage: the directory holds
 * exactly the rows of the one complete attempt, nothing of attempt 0. */
static void test_kill_write_ipc_exactly_once(void **state) {
  pt_session *s = open_n(4, 1, NULL);
  gang_arg a = gang_default();
  a.steps = 30;
  a.kill_part = rand() % 4;
  a.kill_step = rand() % 30;
  pt_dataset *ds = gang_ds(s, 1000, 4, &a);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/out", local_dir);
  rm_rf(dir);
  CHECK(pt_write_ipc(ds, dir, NULL, &err));
  glob_t g;
  char pat[600];
  snprintf(pat, sizeof pat, "%s/*", dir);
  assert_int_equal(glob(pat, 0, NULL, &g), 0);
  assert_int_equal(g.gl_pathc, 5); /* part-00000..3.arrow, _SUCCESS */
  globfree(&g);
  snprintf(pat, sizeof pat, "%s/_temporary", dir);
  assert_int_equal(access(pat, F_OK), -1);
  pt_dataset *back;
  CHECK(pt_read_ipc(s, dir, &back, &err));
  rows r = collect_rows(back);
  expect_exact(&r, 1000, 1, 1);
  rows_free(&r);
  pt_dataset_free(back);
  pt_dataset_free(ds);
  close_session(s);
}

/* Attempt 0 saves its progress and dies at step 10; attempt 1 resumes
 * there. The checkpoint directory is gone when the job ends. */
static void test_checkpoint_resume(void **state) {
  pt_session *s = open_n(3, 1, NULL);
  gang_arg a = gang_default();
  a.steps = 20;
  a.checkpoint = 1;
  a.kill_part = 0;
  a.kill_step = 10;
  pt_dataset *ds = gang_ds(s, 300, 3, &a);
  rows r = collect_rows(ds);
  expect_exact(&r, 300, 1, 10); /* value: the step each task resumed from */
  rows_free(&r);
  glob_t g;
  char pat[600];
  snprintf(pat, sizeof pat, "%s/protium-*/checkpoints/*/*", local_dir);
  assert_int_equal(glob(pat, 0, NULL, &g), GLOB_NOMATCH);
  pt_dataset_free(ds);
  close_session(s);
}

/* A task that never reaches barrier(): the attempt fails after
 * barrier.timeout naming it; with one attempt allowed, so does the job. */
static void test_barrier_timeout_names_missing(void **state) {
  const char *kv[] = {"barrier.timeout", "1s", "barrier.max_attempts", "1",
                      "barrier.stop_grace", "1s", NULL};
  pt_session *s = open_n(4, 1, kv);
  gang_arg a = gang_default();
  a.steps = 3;
  a.hang_part = 2;
  a.hang_ms = 20000;
  pt_dataset *ds = gang_ds(s, 40, 4, &a);
  int64_t n;
  pt_error err = {0};
  assert_int_equal(pt_count(ds, &n, &err), PT_ETIMEDOUT);
  assert_non_null(strstr(err.message, "timed out after 1s (barrier.timeout): partitions 2 "
                                      "never arrived"));
  pt_dataset_free(ds);
  /* The hung task went with its executor after barrier.stop_grace. */
  close_session(s);
}

typedef struct job_thread {
  pt_dataset *ds;
  int rc;
  pt_error err;
  rows rows;
} job_thread;

static void *collect_job(void *arg) {
  job_thread *j = arg;
  struct ArrowArrayStream st;
  j->rc = pt_collect(j->ds, &st, &j->err);
  if (j->rc == PT_OK) read_stream(&st, &j->rows);
  return NULL;
}

static void *count_job(void *arg) {
  job_thread *j = arg;
  int64_t n;
  j->rc = pt_count(j->ds, &n, &j->err);
  return NULL;
}

/* Partition 0's executor is SIGKILLed from outside while it waits inside
 * barrier() (partition 3 holds the step up): nobody is left stuck, the
 * hung task goes after barrier.stop_grace, attempt 1 completes. */
static void test_killed_inside_barrier(void **state) {
  const char *kv[] = {"barrier.stop_grace", "1s", NULL};
  pt_session *s = open_n(4, 1, kv);
  gang_arg a = gang_default();
  a.steps = 3;
  a.hang_part = 3;
  a.hang_ms = 30000;
  a.hang_first = 1;
  log_path(&a, "inside");
  pt_dataset *ds = gang_ds(s, 400, 4, &a);
  job_thread j = {.ds = ds};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, collect_job, &j), 0);
  long long victim = 0;
  for (int64_t deadline = now_us() + WAIT_US; !victim && now_us() < deadline;) {
    usleep(10000);
    char *log = slurp(a.log);
    int started = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
      long long p, at, ts, pid;
      if (sscanf(line, "start %lld %lld %lld %lld", &p, &at, &ts, &pid) == 4 && at == 0) {
        started++;
        if (p == 0) victim = pid;
      }
    }
    free(log);
    if (started < 4) victim = 0;
  }
  assert_true(victim > 0);
  usleep(200000); /* partitions 0, 1, 2 wait in step 0 */
  assert_int_equal(kill((pid_t)victim, SIGKILL), 0);
  pthread_join(t, NULL);
  if (j.rc != PT_OK) fail_msg("collect: %s", j.err.message);
  expect_exact(&j.rows, 400, 1, 1);
  rows_free(&j.rows);
  pt_dataset_free(ds);
  close_session(s);
}

/* A peer dies while the others wait: their barrier() fails naming it, long
 * before barrier.timeout (~1 s on a quiet machine), and calls after that
 * fail at once. */
static void test_dead_peer_errors_at_once(void **state) {
  const char *kv[] = {"barrier.max_attempts", "1", "barrier.timeout", "120s", NULL};
  pt_session *s = open_n(4, 1, kv);
  gang_arg a = gang_default();
  a.steps = 10;
  a.kill_part = 3;
  a.kill_step = 5;
  log_path(&a, "peer");
  pt_dataset *ds = gang_ds(s, 40, 4, &a);
  int64_t n;
  pt_error err = {0};
  assert_int_equal(pt_count(ds, &n, &err), PT_EIO);
  assert_non_null(strstr(err.message, "partition 3 lost: executor"));
  assert_non_null(strstr(err.message, "failed 1 times"));
  pt_dataset_free(ds);
  /* The stopped tasks log their error as they return (the job ended
   * first). */
  wait_lines(a.log, "end ", 3);
  char *log = slurp(a.log);
  close_session(s);
  int errors = 0;
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
    long long p, waited, again;
    int rc2, off = 0;
    if (sscanf(line, "error %lld %lld %lld %d %n", &p, &waited, &again, &rc2, &off) != 4)
      continue;
    errors++;
    /* Woken by the death, not by barrier.timeout (120 s): with the
     * timeout as the only wake-up, waited would be 120 s. */
    assert_true(waited < 60000000);
    assert_true(again < 60000000);
    assert_int_equal(rc2, PT_ECANCELED);
    assert_non_null(strstr(line + off, "partition 3 lost"));
  }
  free(log);
  assert_int_equal(errors, 3);
}

/* barrier() here, all_gather() there: an error for all, naming both. */
static void test_mismatched_calls(void **state) {
  const char *kv[] = {"barrier.max_attempts", "2", NULL};
  pt_session *s = open_n(2, 1, kv);
  gang_arg a = gang_default();
  a.steps = 3;
  a.mismatch_part = 1;
  pt_dataset *ds = gang_ds(s, 20, 2, &a);
  int64_t n;
  pt_error err = {0};
  assert_int_equal(pt_count(ds, &n, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "failed 2 times: attempt 0: step 0: partition"));
  assert_non_null(strstr(err.message, "every task must make the same calls"));
  assert_non_null(strstr(err.message, "; attempt 1: "));
  pt_dataset_free(ds);
  close_session(s);
}

/* pt_barrier_attempts: the stage's own limit wins over barrier.max_attempts
 * (4 here), and a bad one is refused. */
static void test_stage_max_attempts(void **state) {
  pt_session *s = open_n(2, 1, NULL);
  gang_arg a = gang_default();
  a.steps = 3;
  a.mismatch_part = 1;
  pt_dataset *r, *b, *m;
  struct ArrowSchema sch;
  pt_error err = {0};
  CHECK(pt_range(s, 0, 20, 2, &r, &err));
  assert_int_equal(pt_barrier_attempts(r, -1, &b, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "max_attempts must be at least 1"));
  CHECK(pt_barrier_attempts(r, 1, &b, &err));
  CHECK(out_schema(&sch, &err));
  CHECK(pt_map_partitions(b, gang, &sch, &a, sizeof a, &m, &err));
  sch.release(&sch);
  int64_t n;
  assert_int_equal(pt_count(m, &n, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "failed 1 times: attempt 0: "));
  assert_null(strstr(err.message, "; attempt 1: "));
  pt_dataset_free(m);
  pt_dataset_free(b);
  pt_dataset_free(r);
  close_session(s);
}

/* A task that returns without making a call its peers make: they fail at
 * once naming it (not after barrier.timeout). */
static void test_returned_without_call(void **state) {
  const char *kv[] = {"barrier.max_attempts", "1", NULL};
  pt_session *s = open_n(4, 1, kv);
  gang_arg a = gang_default();
  a.steps = 3;
  a.hang_part = 2;
  a.hang_ms = 0;
  pt_dataset *ds = gang_ds(s, 40, 4, &a);
  int64_t n;
  pt_error err = {0};
  assert_int_equal(pt_count(ds, &n, &err), PT_ESTATE);
  assert_non_null(strstr(err.message, "partition 2 returned without calling barrier() step 0"));
  pt_dataset_free(ds);
  close_session(s);
}

static int count_areas(int64_t attempt) {
  char pat[600];
  glob_t g;
  snprintf(pat, sizeof pat, "%s/protium-*/checkpoints/*/stage-*-attempt-%lld.barrier",
           local_dir, (long long)attempt);
  int n = glob(pat, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
  globfree(&g);
  return n;
}

/* Tasks on one host meet in a shared area of their attempt: it exists
 * while attempt 0 runs, goes when a SIGKILL stops the attempt, attempt 1
 * has a new one (nothing of the killed step read as its own), and none is
 * left when the job ends. */
static void test_shared_area_per_attempt(void **state) {
  const char *kv[] = {"barrier.stop_grace", "1s", NULL};
  pt_session *s = open_n(4, 1, kv);
  gang_arg a = gang_default();
  a.steps = 50;
  a.hang_part = 3;
  a.hang_ms = 30000;
  a.hang_first = 1;
  log_path(&a, "areas");
  snprintf(a.go_file, sizeof a.go_file, "%s/go-areas", local_dir);
  pt_dataset *ds = gang_ds(s, 400, 4, &a);
  job_thread j = {.ds = ds};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, collect_job, &j), 0);
  long long victim = 0;
  int started1 = 0, killed = 0;
  for (int64_t deadline = now_us() + WAIT_US; started1 < 4 && now_us() < deadline;) {
    usleep(10000);
    char *log = slurp(a.log);
    int started0 = 0;
    started1 = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
      long long p, at, ts, pid;
      if (sscanf(line, "start %lld %lld %lld %lld", &p, &at, &ts, &pid) != 4) continue;
      started0 += at == 0;
      started1 += at == 1;
      if (at == 0 && p == 0) victim = pid;
    }
    free(log);
    if (!killed && started0 == 4 && count_areas(0) == 1) {
      assert_int_equal(count_areas(1), 0);
      usleep(100000); /* partitions 0, 1, 2 wait in step 0, in the area */
      assert_int_equal(kill((pid_t)victim, SIGKILL), 0);
      killed = 1;
    }
  }
  assert_true(killed);
  assert_int_equal(started1, 4);
  assert_int_equal(count_areas(0), 0);
  assert_int_equal(count_areas(1), 1);
  touch(a.go_file);
  pthread_join(t, NULL);
  if (j.rc != PT_OK) fail_msg("collect: %s", j.err.message);
  expect_exact(&j.rows, 400, 1, 1);
  rows_free(&j.rows);
  assert_int_equal(count_areas(0) + count_areas(1), 0);
  pt_dataset_free(ds);
  close_session(s);
}

/* The same failures with every call through the driver, as when a stage
 * attempt's tasks run on several hosts. */
static const char *const driver_path_kv[] = {"barrier.shared_memory", "0", NULL};

static void test_driver_path_failures(void **state) {
  extra_kv = driver_path_kv;
  test_barrier_timeout_names_missing(state);
  test_dead_peer_errors_at_once(state);
  test_mismatched_calls(state);
  test_returned_without_call(state);
  test_killed_inside_barrier(state);
  extra_kv = NULL;
}

/* More tasks than slots: the job fails at once, saying both numbers. */
static void test_oversubscribed_fails_at_once(void **state) {
  pt_session *s = open_n(2, 1, NULL);
  gang_arg a = gang_default();
  pt_dataset *ds = gang_ds(s, 30, 3, &a);
  int64_t n;
  pt_error err = {0};
  assert_int_equal(pt_count(ds, &n, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "needs 3 slots at once but the cluster has 2 (2 "
                                      "executors x 1 slots)"));
  pt_dataset_free(ds);
  close_session(s);
}

/* Ordinary tasks hold both slots; the barrier stage submitted meanwhile
 * starts all its tasks only after the last slot came free. */
static void test_waits_for_busy_slots(void **state) {
  pt_session *s = open_n(2, 1, NULL);
  gang_arg a = gang_default();
  a.hang_ms = 300; /* partition 0 holds its slot 300 ms, partition 1 600 ms */
  log_path(&a, "busy");
  pt_dataset *r, *held;
  CHECK(pt_range(s, 0, 20, 2, &r, &err));
  CHECK(pt_map_batches(r, hold_slot, NULL, &a, sizeof a, &held, &err));
  job_thread first = {.ds = held};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, count_job, &first), 0);
  wait_lines(a.log, "hold ", 2); /* the ordinary tasks are running */
  a.steps = 5;
  pt_dataset *ds = gang_ds(s, 20, 2, &a);
  int64_t n;
  CHECK(pt_count(ds, &n, &err));
  assert_int_equal(n, 20);
  pthread_join(t, NULL);
  assert_int_equal(first.rc, PT_OK);
  char *log = slurp(a.log);
  long long last_release = 0, first_start = INT64_MAX;
  int starts = 0, releases = 0;
  for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
    long long p, at, ts;
    if (sscanf(line, "release %lld %lld", &p, &ts) == 2) {
      releases++;
      if (ts > last_release) last_release = ts;
    } else if (sscanf(line, "start %lld %lld %lld", &p, &at, &ts) == 3) {
      starts++;
      if (ts < first_start) first_start = ts;
    }
  }
  free(log);
  assert_int_equal(releases, 2);
  assert_int_equal(starts, 2);
  assert_true(first_start > last_release);
  pt_dataset_free(ds);
  pt_dataset_free(held);
  pt_dataset_free(r);
  close_session(s);
}

/* Slots stay busy past barrier.admission_timeout: the job fails saying how
 * many were free and what held the others. */
static void test_admission_timeout(void **state) {
  const char *kv[] = {"barrier.admission_timeout", "500ms", NULL};
  pt_session *s = open_n(2, 1, kv);
  gang_arg a = gang_default();
  log_path(&a, "admission");
  snprintf(a.go_file, sizeof a.go_file, "%s/go-admission", local_dir);
  pt_dataset *r, *held;
  CHECK(pt_range(s, 0, 20, 2, &r, &err));
  CHECK(pt_map_batches(r, hold_slot, NULL, &a, sizeof a, &held, &err));
  job_thread first = {.ds = held};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, count_job, &first), 0);
  wait_lines(a.log, "hold ", 2); /* both slots held until go_file exists */
  gang_arg g = gang_default();
  pt_dataset *ds = gang_ds(s, 20, 2, &g);
  int64_t n;
  pt_error err = {0};
  assert_int_equal(pt_count(ds, &n, &err), PT_ETIMEDOUT);
  assert_non_null(strstr(err.message, "needs 2 slots at once; after waiting 500ms "
                                      "(barrier.admission_timeout) only 0 were free, the "
                                      "others held by job"));
  assert_non_null(strstr(err.message, "(2 tasks)"));
  touch(a.go_file);
  pthread_join(t, NULL);
  assert_int_equal(first.rc, PT_OK);
  pt_dataset_free(ds);
  pt_dataset_free(held);
  pt_dataset_free(r);
  close_session(s);
}

/* ordinary -> shuffle -> barrier -> ordinary in one job, with every
 * action; map_partitions in an ordinary stage; two in one stage refused. */
static void test_composition(void **state) {
  pt_session *s = open_n(3, 1, NULL);
  gang_arg a = gang_default();
  a.steps = 5;
  a.gather = 16;
  pt_dataset *r, *shuf, *bar, *g, *sums, *again;
  struct ArrowSchema sch;
  CHECK(pt_range(s, 0, 3000, 5, &r, &err));
  CHECK(pt_repartition(r, 3, &shuf, &err));
  CHECK(pt_barrier(shuf, &bar, &err));
  CHECK(out_schema(&sch, &err));
  CHECK(pt_map_partitions(bar, gang, &sch, &a, sizeof a, &g, &err));
  /* after the barrier stage: a shuffle, then an ordinary partition function */
  pt_dataset *shuf2;
  CHECK(pt_repartition(g, 2, &shuf2, &err));
  CHECK(pt_map_partitions(shuf2, sum_ids, &sch, NULL, 0, &sums, &err));
  rows rr = collect_rows(sums);
  assert_int_equal(rr.n, 2);
  assert_int_equal(rr.v[0][0] + rr.v[0][1], 2999 * 3000 / 2);
  assert_int_equal(rr.v[3][0], 1); /* barrier() refused in an ordinary stage */
  rows_free(&rr);
  rows r2 = collect_rows(g);
  expect_exact(&r2, 3000, 0, 1);
  rows_free(&r2);
  int64_t n;
  CHECK(pt_count(g, &n, &err));
  assert_int_equal(n, 3000);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/composed", local_dir);
  rm_rf(dir);
  CHECK(pt_write_ipc(g, dir, NULL, &err));
  pt_dataset *back;
  CHECK(pt_read_ipc(s, dir, &back, &err));
  CHECK(pt_count(back, &n, &err));
  assert_int_equal(n, 3000);
  pt_dataset_free(back);
  /* Two partition functions in one stage cannot be planned. */
  CHECK(pt_map_partitions(sums, sum_ids, &sch, NULL, 0, &again, &err));
  pt_error err = {0};
  assert_int_equal(pt_count(again, &n, &err), PT_ENOTSUP);
  assert_non_null(strstr(err.message, "put a pt_repartition between them"));
  sch.release(&sch);
  pt_dataset_free(again);
  pt_dataset_free(sums);
  pt_dataset_free(shuf2);
  pt_dataset_free(g);
  pt_dataset_free(bar);
  pt_dataset_free(shuf);
  pt_dataset_free(r);
  close_session(s);
}

/* A reducer kills its executor, which held barrier map outputs: the whole
 * barrier stage reruns (every partition at attempt 1), the result exact. */
static void test_lost_barrier_output_reruns_all(void **state) {
  pt_session *s = open_n(3, 1, NULL);
  gang_arg a = gang_default();
  a.steps = 3;
  log_path(&a, "lost");
  pt_dataset *g = gang_ds(s, 900, 3, &a), *shuf, *red;
  CHECK(pt_repartition(g, 3, &shuf, &err));
  CHECK(pt_map_batches(shuf, reduce_kill, NULL, NULL, 0, &red, &err));
  rows r = collect_rows(red);
  expect_exact(&r, 900, -1, 1);
  for (int64_t i = 0; i < r.n; i++) assert_true(r.v[2][i] == 0 || r.v[2][i] == 1);
  rows_free(&r);
  char *log = slurp(a.log);
  int reruns = 0;
  for (int p = 0; p < 3; p++) {
    char want[32];
    snprintf(want, sizeof want, "start %d 1 ", p);
    reruns += strstr(log, want) != NULL;
  }
  free(log);
  /* Every executor held one barrier map output: all of the stage reran,
   * never a subset. */
  assert_int_equal(reruns, 3);
  pt_dataset_free(red);
  pt_dataset_free(shuf);
  pt_dataset_free(g);
  close_session(s);
}

/* A driver held up (given no CPU on a loaded machine) for four heartbeat
 * timeouts while its executors send 16 MiB all_gather payloads and their
 * heartbeats: running again, it reads what they sent before it judges
 * their silence, and over TCP their kernels wait for it. Nobody is lost,
 * one attempt, rows exact. */
static void test_slow_driver_loses_nobody(void **state) {
  const char *kv[] = {"executor.heartbeat_timeout", "1s", NULL};
  setenv("PROTIUM_FAULT_DRIVER_STALL_MS", "4000", 1);
  pt_session *s = open_n(4, 1, kv);
  unsetenv("PROTIUM_FAULT_DRIVER_STALL_MS");
  gang_arg a = gang_default();
  a.steps = 1;
  a.gather = 16 << 20;
  pt_dataset *ds = gang_ds(s, 40, 4, &a);
  rows r = collect_rows(ds);
  expect_exact(&r, 40, 0, 1);
  rows_free(&r);
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(ds, &js, &err));
  assert_int_equal(js->executors_lost, 0);
  assert_int_equal(js->n_stages, 1);
  assert_int_equal(js->stages[0].tasks_succeeded, 4);
  pt_job_stats_free(js);
  pt_dataset_free(ds);
  close_session(s);
}

static int setup(void **state) {
  snprintf(local_dir, sizeof local_dir, "/tmp/pt-barrier-test-%d", (int)getpid());
  mkdir(local_dir, 0755);
  return 0;
}

static int teardown(void **state) {
  rm_rf(local_dir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thousand_barriers),
      cmocka_unit_test(test_all_gather_payloads),
      cmocka_unit_test(test_kill_reruns_stage),
      cmocka_unit_test(test_kill_write_ipc_exactly_once),
      cmocka_unit_test(test_checkpoint_resume),
      cmocka_unit_test(test_barrier_timeout_names_missing),
      cmocka_unit_test(test_killed_inside_barrier),
      cmocka_unit_test(test_dead_peer_errors_at_once),
      cmocka_unit_test(test_mismatched_calls),
      cmocka_unit_test(test_returned_without_call),
      cmocka_unit_test(test_shared_area_per_attempt),
      cmocka_unit_test(test_driver_path_failures),
      cmocka_unit_test(test_oversubscribed_fails_at_once),
      cmocka_unit_test(test_waits_for_busy_slots),
      cmocka_unit_test(test_admission_timeout),
      cmocka_unit_test(test_composition),
      cmocka_unit_test(test_stage_max_attempts),
      cmocka_unit_test(test_lost_barrier_output_reruns_all),
      cmocka_unit_test(test_slow_driver_loses_nobody),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
