/* test_engine.c — the local engine end to end with real executor processes
 * (this test program, re-run by the session as executors): range, from
 * batches, read_ipc, map_batches, filter, map_partitions, repartition (round
 * robin and by key), collect, count and write_ipc, with exact results;
 * configuration and master parsing errors; session start and stop time.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <pthread.h>
#include <setjmp.h>
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

#include "core/core.h" /* pt__alloc_fail_after */
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

static int build_i64(const struct ArrowSchema *schema, int64_t n, const int64_t *const *cols,
                     struct ArrowArray *out, pt_error *err) {
  pt_builder *b;
  int rc = pt_builder_new(schema, &b, err);
  if (rc != PT_OK) return rc;
  for (int64_t i = 0; i < n && rc == PT_OK; i++) {
    for (int64_t c = 0; c < schema->n_children && rc == PT_OK; c++)
      rc = pt_builder_append_int(pt_builder_child(b, c), cols[c][i]);
    if (rc == PT_OK) rc = pt_builder_append_row(b);
  }
  if (rc == PT_OK) rc = pt_builder_finish(b, out, err);
  pt_builder_free(b);
  return rc;
}

/* id -> id * arg (int64 multiplier; 2 without arg). */
static int times(const pt_task_context *ctx, const struct ArrowSchema *schema,
                 const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                 size_t arg_size, pt_error *err) {
  int64_t k = 2;
  if (arg_size == sizeof k) memcpy(&k, arg, sizeof k);
  int64_t *v = malloc((size_t)(batch->length ? batch->length : 1) * sizeof *v);
  const int64_t *in = col_i64(batch, 0);
  for (int64_t i = 0; i < batch->length; i++) v[i] = in[i] * k;
  const int64_t *cols[] = {v};
  int rc = build_i64(schema, batch->length, cols, out, err);
  free(v);
  return rc;
}
PT_REGISTER_FN(times)

/* Keeps rows whose id is a multiple of arg. */
static int keep_multiple(const pt_task_context *ctx, const struct ArrowSchema *schema,
                         const struct ArrowArray *batch, uint8_t *keep, const void *arg,
                         size_t arg_size, pt_error *err) {
  int64_t k;
  memcpy(&k, arg, sizeof k);
  const int64_t *in = col_i64(batch, 0);
  for (int64_t i = 0; i < batch->length; i++)
    if (in[i] % k == 0) keep[i >> 3] |= (uint8_t)(1u << (i & 7));
  return PT_OK;
}
PT_REGISTER_FN(keep_multiple)

/* {id} -> {id, key = id % 7} */
static int add_key(const pt_task_context *ctx, const struct ArrowSchema *schema,
                   const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                   size_t arg_size, pt_error *err) {
  int64_t *k = malloc((size_t)(batch->length ? batch->length : 1) * sizeof *k);
  const int64_t *in = col_i64(batch, 0);
  for (int64_t i = 0; i < batch->length; i++) k[i] = in[i] % 7;
  /* schema here is the input's; build with the output schema */
  struct ArrowSchema os;
  pt_schema_init(&os, "+s", "", 0, 2, NULL);
  pt_schema_init(os.children[0], "l", "id", 0, 0, NULL);
  pt_schema_init(os.children[1], "l", "key", 0, 0, NULL);
  const int64_t *cols[] = {in, k};
  int rc = build_i64(&os, batch->length, cols, out, err);
  os.release(&os);
  free(k);
  return rc;
}
PT_REGISTER_FN(add_key)

/* A partition function: {id} -> {id, prefix sum of id in the partition,
 * num_tasks}, emitted in batches of 700 rows whatever the input's batches.
 * arg "fail": fails; "bad": emits a batch of the wrong schema. */
static int prefix_sums(const pt_task_context *ctx, struct ArrowArrayStream *input,
                       const void *arg, size_t arg_size, pt_error *err) {
  if (arg_size == 4 && memcmp(arg, "fail", 4) == 0) {
    snprintf(err->message, sizeof err->message, "boom");
    return PT_EINVAL;
  }
  int bad = arg_size == 3 && memcmp(arg, "bad", 3) == 0; /* two columns of three */
  struct ArrowSchema os;
  pt_schema_init(&os, "+s", "", 0, bad ? 2 : 3, NULL);
  pt_schema_init(os.children[0], "l", "id", 0, 0, NULL);
  pt_schema_init(os.children[1], "l", "prefix", 0, 0, NULL);
  if (!bad) pt_schema_init(os.children[2], "l", "num_tasks", 0, 0, NULL);
  int64_t ids[700], sums[700], nt[700], n = 0, sum = 0;
  const int64_t *cols[] = {ids, sums, nt};
  int rc = PT_OK;
  struct ArrowArray b;
  while (rc == PT_OK && input->get_next(input, &b) == 0 && b.release) {
    const int64_t *v = col_i64(&b, 0);
    for (int64_t i = 0; i < b.length && rc == PT_OK; i++) {
      sum += v[i];
      ids[n] = v[i], sums[n] = sum, nt[n] = pt_ctx_num_tasks(ctx);
      if (++n == 700) {
        struct ArrowArray out;
        rc = build_i64(&os, n, cols, &out, err);
        if (rc == PT_OK) rc = pt_ctx_emit(ctx, &out, err);
        n = 0;
      }
    }
    b.release(&b);
  }
  struct ArrowArray out;
  if (rc == PT_OK && n > 0 && (rc = build_i64(&os, n, cols, &out, err)) == PT_OK)
    rc = pt_ctx_emit(ctx, &out, err);
  os.release(&os);
  return rc;
}
PT_REGISTER_FN(prefix_sums)

/* A map function cannot emit: that is for partition functions. */
static int emits(const pt_task_context *ctx, const struct ArrowSchema *schema,
                 const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                 size_t arg_size, pt_error *err) {
  struct ArrowArray copy;
  int rc = pt_array_copy(schema, batch, &copy, err);
  if (rc == PT_OK) rc = pt_ctx_emit(ctx, &copy, err);
  return rc == PT_OK ? pt_array_copy(schema, batch, out, err) : rc;
}
PT_REGISTER_FN(emits)

static int not_registered(const pt_task_context *ctx, const struct ArrowSchema *schema,
                          const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                          size_t arg_size, pt_error *err) {
  return PT_EINVAL;
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static pt_session *S;

static void open_session(const char *master) {
  pt_conf *conf;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_interval", "100ms", &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_timeout", "3s", &err));
  CHECK(pt_conf_set(conf, "range.batch_rows", "1000", &err));
  CHECK(pt_session_open(master, conf, &S, &err));
  pt_conf_free(conf);
}

static int setup(void **state) {
  open_session("local[2]");
  return 0;
}

static int teardown(void **state) {
  pt_session_close(S);
  S = NULL;
  return 0;
}

/* Every value of int64 column c, in stream order. */
static int64_t *collect_col(pt_dataset *ds, int c, int64_t *n) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  struct ArrowSchema schema;
  assert_int_equal(st.get_schema(&st, &schema), 0);
  assert_true(c < schema.n_children);
  assert_string_equal(schema.children[c]->format, "l");
  schema.release(&schema);
  int64_t cap = 1024, len = 0;
  int64_t *v = malloc((size_t)cap * sizeof *v);
  for (;;) {
    struct ArrowArray b;
    int e = st.get_next(&st, &b);
    if (e) fail_msg("get_next: %s", st.get_last_error(&st));
    if (!b.release) break;
    const int64_t *p = col_i64(&b, c);
    while (len + b.length > cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
    memcpy(v + len, p, (size_t)b.length * sizeof *v);
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
  snprintf(buf, n, "%s/pt-engine-XXXXXX", t && *t ? t : "/tmp");
  assert_non_null(mkdtemp(buf));
}

static void rm_rf(const char *path) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  assert_int_equal(system(cmd), 0);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------ */
/* Tests */

static void test_conf(void **state) {
  pt_conf *c;
  pt_error err = {0};
  CHECK(pt_conf_new(&c, &err));
  assert_string_equal(pt_conf_get(c, "executor.slots"), "1");
  assert_string_equal(pt_conf_get(c, "task.max_failures"), "4");
  assert_string_equal(pt_conf_get(c, "executor.queue_depth"), "8");
  assert_null(pt_conf_get(c, "no.such.key"));
  assert_int_equal(pt_conf_set(c, "no.such.key", "1", &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "unknown configuration key 'no.such.key'"));
  assert_non_null(strstr(err.message, "executor.slots"));
  assert_int_equal(pt_conf_set(c, "executor.slots", "0", &err), PT_EINVAL);
  assert_string_equal(err.message,
                      "configuration key 'executor.slots': '0' is not an integer >= 1");
  assert_int_equal(pt_conf_set(c, "task.timeout", "2 parsecs", &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "'task.timeout': '2 parsecs' is not a duration"));
  CHECK(pt_conf_set(c, "task.timeout", "500ms", &err));
  CHECK(pt_conf_set(c, "task.timeout", "2s", &err));
  CHECK(pt_conf_set(c, "task.timeout", "1m", &err));
  CHECK(pt_conf_set(c, "task.timeout", "3", &err));
  assert_string_equal(pt_conf_get(c, "task.timeout"), "3");
  pt_conf_free(c);
}

static void test_master_errors(void **state) {
  pt_session *s = NULL;
  pt_error err = {0};
  assert_int_equal(pt_session_open("yarn", NULL, &s, &err), PT_EINVAL);
  assert_string_equal(err.message, "master 'yarn' is not supported; use local[N] or slurm");
  assert_int_equal(pt_session_open("local[0]", NULL, &s, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "master 'local[0]'"));
  assert_int_equal(pt_session_open("local[x]", NULL, &s, &err), PT_EINVAL);
  assert_null(s);
  pt_conf *c;
  CHECK(pt_conf_new(&c, &err));
  CHECK(pt_conf_set(c, "local.dir", "/nonexistent/protium", &err));
  assert_int_equal(pt_session_open("local[1]", c, &s, &err), PT_EIO);
  assert_non_null(strstr(err.message, "cannot create a directory in '/nonexistent/protium'"));
  assert_null(s);
  pt_conf_free(c);
}

/* Sessions of this process (their directories under local.dir). */
static int count_session_dirs(const char *local) {
  char pattern[4200];
  snprintf(pattern, sizeof pattern, "%s/protium-%d-*", local, (int)getpid());
  glob_t g;
  int n = glob(pattern, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
  if (n) globfree(&g);
  return n;
}

/* Open returns with every executor connected and alive; close ends every
 * executor process and removes the session's directory. (How fast is
 * measured by bench/run tasks, session_start_ms, not here.) */
static void test_session_start_stop(void **state) {
  char local[4096];
  make_tmpdir(local, sizeof local);
  pt_conf *c;
  CHECK(pt_conf_new(&c, &err));
  CHECK(pt_conf_set(c, "local.dir", local, &err));
  for (int i = 0; i < 3; i++) {
    pt_session *s;
    double t0 = now_ms();
    CHECK(pt_session_open("local[2]", c, &s, &err));
    double t1 = now_ms();
    assert_int_equal(count_session_dirs(local), 1);
    pt_executor_info info[4];
    int64_t n;
    CHECK(pt_session_executors(s, info, 4, &n, &err));
    assert_int_equal(n, 2);
    for (int k = 0; k < 2; k++) {
      assert_int_equal(info[k].alive, 1);
      assert_true(info[k].pid > 0);
      assert_int_equal(kill((pid_t)info[k].pid, 0), 0); /* a live process */
    }
    assert_true(info[0].id != info[1].id);
    pt_session_close(s);
    double t2 = now_ms();
    for (int k = 0; k < 2; k++) {
      errno = 0;
      assert_int_equal(kill((pid_t)info[k].pid, 0), -1); /* gone, and reaped */
      assert_int_equal(errno, ESRCH);
    }
    assert_int_equal(count_session_dirs(local), 0);
    fprintf(stderr, "session open %.1f ms, close %.1f ms\n", t1 - t0, t2 - t1);
  }
  pt_conf_free(c);
  rm_rf(local);
}

/* A process that still has the executor environment when main() runs (the
 * executor hook was not compiled in) must not start executors itself: they
 * would do the same, without end. */
static void test_no_executors_from_a_would_be_executor(void **state) {
  pt_error err = {0};
  pt_session *s = NULL;
  setenv("PROTIUM_EXECUTOR_SOCKET", "/nonexistent/driver.sock", 1);
  int rc = pt_session_open("local[1]", NULL, &s, &err);
  unsetenv("PROTIUM_EXECUTOR_SOCKET");
  assert_int_equal(rc, PT_ESTATE);
  assert_null(s);
  assert_non_null(strstr(err.message, "started as a protium executor but is running main()"));
}

static void test_range_collect(void **state) {
  pt_dataset *ds;
  CHECK(pt_range(S, 10, 100010, 4, &ds, &err));
  assert_int_equal(pt_dataset_num_partitions(ds), 4);
  int64_t n;
  int64_t *v = collect_col(ds, 0, &n);
  assert_int_equal(n, 100000);
  for (int64_t i = 0; i < n; i++)
    if (v[i] != 10 + i) fail_msg("row %lld: %lld", (long long)i, (long long)v[i]);
  free(v);
  int64_t count;
  CHECK(pt_count(ds, &count, &err));
  assert_int_equal(count, 100000);
  pt_dataset_free(ds);
}

static void test_map_filter_count(void **state) {
  pt_dataset *r, *m, *f;
  CHECK(pt_range(S, 0, 10000, 3, &r, &err));
  int64_t k = 3;
  CHECK(pt_map_batches(r, times, NULL, &k, sizeof k, &m, &err));
  int64_t five = 5;
  CHECK(pt_filter(m, keep_multiple, &five, sizeof five, &f, &err));
  pt_dataset_free(r);
  pt_dataset_free(m); /* f keeps its parents */
  int64_t n;
  int64_t *v = collect_col(f, 0, &n);
  assert_int_equal(n, 2000); /* 3i % 5 == 0 <=> i % 5 == 0 */
  for (int64_t i = 0; i < n; i++) assert_int_equal(v[i], 15 * i);
  free(v);
  int64_t count;
  CHECK(pt_count(f, &count, &err));
  assert_int_equal(count, 2000);
  pt_dataset_free(f);
}

/* range -> map_batches -> map_partitions -> filter: the function sees
 * its whole partition, re-chunks it, and what it emits goes on through the
 * filter; errors in it and in what it emits name it. */
static void test_map_partitions(void **state) {
  pt_dataset *r, *m, *p, *f;
  struct ArrowSchema os;
  pt_schema_init(&os, "+s", "", 0, 3, NULL);
  pt_schema_init(os.children[0], "l", "id", 0, 0, NULL);
  pt_schema_init(os.children[1], "l", "prefix", 0, 0, NULL);
  pt_schema_init(os.children[2], "l", "num_tasks", 0, 0, NULL);
  CHECK(pt_range(S, 0, 10000, 4, &r, &err)); /* batches of 1,000 rows */
  int64_t k = 3, two = 2;
  CHECK(pt_map_batches(r, times, NULL, &k, sizeof k, &m, &err));
  CHECK(pt_map_partitions(m, prefix_sums, &os, NULL, 0, &p, &err));
  CHECK(pt_filter(p, keep_multiple, &two, sizeof two, &f, &err));
  int64_t n, n2, n3;
  int64_t *ids = collect_col(f, 0, &n), *sums = collect_col(f, 1, &n2);
  int64_t *nt = collect_col(f, 2, &n3);
  assert_int_equal(n, 5000);
  for (int64_t i = 0; i < n; i++) {
    int64_t id = ids[i], first = 3 * (id / 3 / 2500 * 2500); /* partition's first id */
    assert_int_equal(id, 6 * i);
    assert_int_equal(sums[i], (first + id) * ((id - first) / 3 + 1) / 2);
    assert_int_equal(nt[i], 4);
  }
  free(ids), free(sums), free(nt);
  int64_t count;
  CHECK(pt_count(p, &count, &err));
  assert_int_equal(count, 10000);

  pt_dataset *bad;
  pt_error err = {0};
  CHECK(pt_map_partitions(m, prefix_sums, &os, "fail", 4, &bad, &err));
  assert_int_equal(pt_count(bad, &count, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "last error: map_partitions 'prefix_sums': boom"));
  pt_dataset_free(bad);
  CHECK(pt_map_partitions(m, prefix_sums, &os, "bad", 3, &bad, &err));
  assert_int_equal(pt_count(bad, &count, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "emit: the batch does not match the output schema of "
                                      "map_partitions 'prefix_sums'"));
  pt_dataset_free(bad);
  CHECK(pt_map_batches(r, emits, NULL, NULL, 0, &bad, &err));
  assert_int_equal(pt_count(bad, &count, &err), PT_ESTATE);
  assert_non_null(strstr(err.message, "emit: only a partition function (pt_map_partitions)"));
  pt_dataset_free(bad);
  os.release(&os);
  pt_dataset_free(f);
  pt_dataset_free(p);
  pt_dataset_free(m);
  pt_dataset_free(r);
}

static void test_unregistered_and_bad_keys(void **state) {
  pt_dataset *r, *m = NULL;
  pt_error err = {0};
  CHECK(pt_range(S, 0, 10, 1, &r, &err));
  assert_int_equal(pt_map_batches(r, not_registered, NULL, NULL, 0, &m, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "is not registered"));
  assert_non_null(strstr(err.message, "PT_REGISTER_FN"));
  assert_null(m);
  const char *keys[] = {"nope"};
  assert_int_equal(pt_repartition_by(r, 2, keys, 1, &m, &err), PT_EINVAL);
  assert_string_equal(err.message, "repartition_by: key 'nope' is not a column; columns: 'id'");
  assert_int_equal(pt_repartition(r, 0, &m, &err), PT_EINVAL);
  pt_dataset_free(r);
}

static void test_repartition_round_robin(void **state) {
  pt_dataset *r, *p, *m;
  CHECK(pt_range(S, 0, 5000, 3, &r, &err));
  CHECK(pt_repartition(r, 5, &p, &err));
  assert_int_equal(pt_dataset_num_partitions(p), 5);
  CHECK(pt_map_batches(p, times, NULL, NULL, 0, &m, &err));
  int64_t n;
  int64_t *v = collect_col(m, 0, &n);
  assert_int_equal(n, 5000);
  qsort(v, (size_t)n, sizeof *v, cmp_i64);
  for (int64_t i = 0; i < n; i++) assert_int_equal(v[i], 2 * i);
  free(v);
  int64_t count;
  CHECK(pt_count(p, &count, &err));
  assert_int_equal(count, 5000);
  pt_dataset_free(m);
  pt_dataset_free(p);
  pt_dataset_free(r);
}

/* Reads every part file of dir: total rows, and for column c the set of
 * values per file (checked disjoint by the caller). */
static int64_t read_parts(const char *dir, int64_t n_parts, int c, int64_t (*seen)[7]) {
  int64_t total = 0;
  for (int64_t p = 0; p < n_parts; p++) {
    char path[4200];
    assert_true(snprintf(path, sizeof path, "%s/part-%05lld.arrow", dir, (long long)p) <
                (int)sizeof path);
    struct ArrowArrayStream st;
    CHECK(pt_ipc_read_path(path, &st, &err));
    for (;;) {
      struct ArrowArray b;
      assert_int_equal(st.get_next(&st, &b), 0);
      if (!b.release) break;
      if (seen) {
        const int64_t *k = col_i64(&b, c);
        for (int64_t i = 0; i < b.length; i++) seen[p][k[i]]++;
      }
      total += b.length;
      b.release(&b);
    }
    st.release(&st);
  }
  return total;
}

static void test_repartition_by_key_write_read(void **state) {
  char dir[4096], out[4200];
  make_tmpdir(dir, sizeof dir);
  snprintf(out, sizeof out, "%s/out", dir);
  pt_dataset *r, *m, *p;
  CHECK(pt_range(S, 0, 7000, 3, &r, &err));
  struct ArrowSchema os;
  CHECK(pt_schema_init(&os, "+s", "", 0, 2, &err));
  CHECK(pt_schema_init(os.children[0], "l", "id", 0, 0, &err));
  CHECK(pt_schema_init(os.children[1], "l", "key", 0, 0, &err));
  CHECK(pt_map_batches(r, add_key, &os, NULL, 0, &m, &err));
  os.release(&os);
  const char *keys[] = {"key"};
  CHECK(pt_repartition_by(m, 4, keys, 1, &p, &err));
  CHECK(pt_write_ipc(p, out, NULL, &err));

  /* each partition once, _SUCCESS, no _temporary; equal keys together */
  char path[4300];
  snprintf(path, sizeof path, "%s/_SUCCESS", out);
  assert_int_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "%s/_temporary", out);
  assert_int_not_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "%s/part-00004.arrow", out);
  assert_int_not_equal(access(path, F_OK), 0);
  int64_t seen[4][7] = {{0}};
  assert_int_equal(read_parts(out, 4, 1, seen), 7000);
  for (int k = 0; k < 7; k++) {
    int holders = 0;
    int64_t sum = 0;
    for (int q = 0; q < 4; q++) holders += seen[q][k] > 0, sum += seen[q][k];
    assert_int_equal(holders, 1);
    assert_int_equal(sum, 1000);
  }

  /* read it back */
  pt_dataset *back;
  CHECK(pt_read_ipc(S, out, &back, &err));
  assert_int_equal(pt_dataset_num_partitions(back), 4);
  int64_t count;
  CHECK(pt_count(back, &count, &err));
  assert_int_equal(count, 7000);
  int64_t n;
  int64_t *v = collect_col(back, 0, &n);
  qsort(v, (size_t)n, sizeof *v, cmp_i64);
  for (int64_t i = 0; i < n; i++) assert_int_equal(v[i], i);
  free(v);

  /* a second write to the same (non-empty) directory is refused */
  pt_error err = {0};
  assert_int_equal(pt_write_ipc(p, out, NULL, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "is not empty"));

  pt_dataset_free(back);
  pt_dataset_free(p);
  pt_dataset_free(m);
  pt_dataset_free(r);
  rm_rf(dir);
}

static void test_from_batches(void **state) {
  struct ArrowSchema schema;
  CHECK(pt_schema_init(&schema, "+s", "", 0, 1, &err));
  CHECK(pt_schema_init(schema.children[0], "l", "id", 0, 0, &err));
  struct ArrowArray batches[3];
  int64_t vals[300];
  for (int i = 0; i < 300; i++) vals[i] = 1000 - i;
  for (int b = 0; b < 3; b++) {
    const int64_t *cols[] = {vals + 100 * b};
    CHECK(build_i64(&schema, 100, cols, &batches[b], &err));
  }
  pt_dataset *ds, *m;
  CHECK(pt_from_batches(S, &schema, batches, 3, &ds, &err));
  for (int b = 0; b < 3; b++) assert_null(batches[b].release);
  assert_int_equal(pt_dataset_num_partitions(ds), 3);
  CHECK(pt_map_batches(ds, times, NULL, NULL, 0, &m, &err));
  int64_t n;
  int64_t *v = collect_col(m, 0, &n);
  assert_int_equal(n, 300);
  for (int i = 0; i < 300; i++) assert_int_equal(v[i], 2 * vals[i]);
  free(v);
  struct ArrowSchema got;
  CHECK(pt_dataset_schema(m, &got, &err));
  assert_string_equal(got.children[0]->name, "id");
  got.release(&got);
  pt_dataset_free(m);
  pt_dataset_free(ds);
  schema.release(&schema);
}

static void test_read_ipc_errors(void **state) {
  char dir[4096], path[4200];
  make_tmpdir(dir, sizeof dir);
  pt_dataset *ds = NULL;
  pt_error err = {0};
  snprintf(path, sizeof path, "%s/missing", dir);
  assert_int_equal(pt_read_ipc(S, path, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "does not exist"));
  snprintf(path, sizeof path, "%s/*.arrow", dir);
  assert_int_equal(pt_read_ipc(S, path, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "no files match"));

  /* two files, two schemas */
  struct ArrowSchema a, b;
  CHECK(pt_schema_init(&a, "+s", "", 0, 1, &err));
  CHECK(pt_schema_init(a.children[0], "l", "id", 0, 0, &err));
  CHECK(pt_schema_init(&b, "+s", "", 0, 1, &err));
  CHECK(pt_schema_init(b.children[0], "i", "id", 0, 0, &err));
  pt_ipc_writer *w;
  snprintf(path, sizeof path, "%s/a.arrow", dir);
  CHECK(pt_ipc_writer_open_path(path, &a, NULL, &w, &err));
  CHECK(pt_ipc_writer_close(w, &err));
  pt_ipc_writer_free(w);
  snprintf(path, sizeof path, "%s/b.arrow", dir);
  CHECK(pt_ipc_writer_open_path(path, &b, NULL, &w, &err));
  CHECK(pt_ipc_writer_close(w, &err));
  pt_ipc_writer_free(w);
  a.release(&a);
  b.release(&b);
  assert_int_equal(pt_read_ipc(S, dir, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "b.arrow' has schema"));
  assert_null(ds);
  rm_rf(dir);
}

static void test_empty_partitions(void **state) {
  /* more partitions than rows: some are empty; zero-row range */
  pt_dataset *r, *p;
  CHECK(pt_range(S, 0, 3, 8, &r, &err));
  CHECK(pt_repartition(r, 6, &p, &err));
  int64_t n;
  int64_t *v = collect_col(p, 0, &n);
  assert_int_equal(n, 3);
  qsort(v, (size_t)n, sizeof *v, cmp_i64);
  for (int64_t i = 0; i < n; i++) assert_int_equal(v[i], i);
  free(v);
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(p, &js, &err));
  pt_stage_stats t;
  pt_job_stats_total(js, &t);
  assert_int_equal(t.tasks_succeeded, 8 + 6); /* empty partitions too */
  assert_int_equal(t.rows_written, 3 + 3);
  pt_job_stats_free(js);
  pt_dataset_free(p);
  pt_dataset_free(r);
  CHECK(pt_range(S, 5, 5, 2, &r, &err));
  int64_t count = -1;
  CHECK(pt_count(r, &count, &err));
  assert_int_equal(count, 0);
  pt_dataset_free(r);
}

/* Building plans under allocation failure: every failure is reported as
 * such and leaks nothing (ASan builds check the leaks). */
static void test_plan_alloc_failures(void **state) {
  struct ArrowSchema os;
  CHECK(pt_schema_init(&os, "+s", "", 0, 2, &err));
  CHECK(pt_schema_init(os.children[0], "l", "id", 0, 0, &err));
  CHECK(pt_schema_init(os.children[1], "l", "key", 0, 0, &err));
  const char *keys[] = {"key"};
  int64_t five = 5;
  int n;
  for (n = 0; n < 1000; n++) {
    pt_dataset *r = NULL, *m = NULL, *p = NULL, *f = NULL;
    pt_error err = {0};
    pt__alloc_fail_after(n);
    int rc = pt_range(S, 0, 100, 2, &r, &err);
    if (rc == PT_OK) rc = pt_map_batches(r, add_key, &os, NULL, 0, &m, &err);
    if (rc == PT_OK) rc = pt_repartition_by(m, 3, keys, 1, &p, &err);
    if (rc == PT_OK) rc = pt_filter(p, keep_multiple, &five, sizeof five, &f, &err);
    pt__alloc_fail_after(-1);
    pt_dataset_free(f);
    pt_dataset_free(p);
    pt_dataset_free(m);
    pt_dataset_free(r);
    if (rc == PT_OK) break;
    assert_int_equal(rc, PT_ENOMEM);
  }
  assert_true(n > 5 && n < 1000);
  os.release(&os);
}

/* Whole jobs under allocation failure in the driver (user and driver
 * threads): each either fails with an error or returns the exact count;
 * none hangs, and the session keeps working. */
static void test_job_alloc_failures(void **state) {
  /* its own session: a fast tick (heartbeat_timeout / 4) brings lost
   * executors back quickly */
  pt_conf *conf;
  pt_session *s;
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_interval", "50ms", &err));
  CHECK(pt_conf_set(conf, "executor.heartbeat_timeout", "400ms", &err));
  CHECK(pt_session_open("local[2]", conf, &s, &err));
  pt_conf_free(conf);
  pt_dataset *r, *p;
  CHECK(pt_range(s, 0, 1000, 3, &r, &err));
  CHECK(pt_repartition(r, 2, &p, &err));
  int n, failures = 0;
  for (n = 0; n < 5000; n += 1 + n / 16) {
    int64_t count = -1;
    pt_error err = {0};
    if (getenv("PT_TEST_VERBOSE")) fprintf(stderr, "n=%d\n", n);
    pt__alloc_fail_after(n);
    int rc = pt_count(p, &count, &err);
    pt__alloc_fail_after(-1);
    if (rc == PT_OK) {
      assert_int_equal(count, 1000);
      break;
    }
    if (getenv("PT_TEST_VERBOSE")) fprintf(stderr, "  %d: %s\n", rc, err.message);
    assert_true(rc == PT_ENOMEM || strstr(err.message, "out of memory"));
    failures++;
    /* memory is back: wait for the executors to be back too */
    int64_t live = 0;
    for (int k = 0; k < 500 && live < 2; k++) {
      pt_executor_info info[4];
      CHECK(pt_session_executors(s, info, 4, &live, &err));
      if (live < 2) usleep(10000);
    }
    assert_int_equal(live, 2);
  }
  fprintf(stderr, "%d injected failures before the job got through (n = %d)\n", failures, n);
  assert_true(failures > 0 && n < 5000);
  int64_t count;
  CHECK(pt_count(p, &count, &err));
  assert_int_equal(count, 1000);
  pt_dataset_free(p);
  pt_dataset_free(r);
  pt_session_close(s);
}

typedef struct job_arg {
  int64_t n, parts, count;
  int rc;
  int64_t bad_row;     /* -1: every row 0..n-1 came back exactly once */
  int64_t job_rows;    /* rows the job's final stage wrote (metrics) */
} job_arg;

/* No cmocka assertions here (other threads): results go to *a. */
static void *count_job(void *arg) {
  job_arg *a = arg;
  pt_dataset *r, *p = NULL;
  a->rc = pt_range(S, 0, a->n, a->parts, &r, NULL);
  if (a->rc) return NULL;
  a->rc = pt_repartition(r, 3, &p, NULL);
  if (!a->rc) a->rc = pt_count(p, &a->count, NULL);
  struct ArrowArrayStream st;
  if (!a->rc) a->rc = pt_collect(p, &st, NULL);
  if (!a->rc) {
    int64_t *v = calloc((size_t)a->n, sizeof *v), len = 0, total = 0;
    for (;;) {
      struct ArrowArray b;
      if (st.get_next(&st, &b) != 0) {
        a->rc = PT_EIO;
        break;
      }
      if (!b.release) break;
      const int64_t *x = col_i64(&b, 0);
      for (int64_t i = 0; i < b.length && len < a->n; i++) v[len++] = x[i];
      total += b.length;
      b.release(&b);
    }
    st.release(&st);
    qsort(v, (size_t)len, sizeof *v, cmp_i64);
    a->bad_row = total == a->n ? -1 : total; /* a row count that is off */
    for (int64_t i = 0; i < a->n && total == a->n && a->bad_row < 0; i++)
      if (v[i] != i) a->bad_row = i;
    free(v);
    pt_job_stats *js;
    if (pt_dataset_last_job(p, &js, NULL) == PT_OK) {
      for (int64_t i = 0; i < js->n_stages; i++)
        if (!js->stages[i].is_map) a->job_rows += js->stages[i].rows_written;
      pt_job_stats_free(js);
    }
  }
  pt_dataset_free(p);
  pt_dataset_free(r);
  return NULL;
}

/* Jobs from several threads at once share the executors. */
static void test_concurrent_jobs(void **state) {
  enum { T = 4 };
  pthread_t t[T];
  job_arg a[T];
  for (int i = 0; i < T; i++) {
    a[i] = (job_arg){1000 * (i + 1), 5 + i, -1, -1, 0, 0};
    assert_int_equal(pthread_create(&t[i], NULL, count_job, &a[i]), 0);
  }
  for (int i = 0; i < T; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(a[i].rc, PT_OK);
    assert_int_equal(a[i].count, 1000 * (i + 1));
    assert_int_equal(a[i].bad_row, -1); /* every row, each once */
    assert_int_equal(a[i].job_rows, 1000 * (i + 1));
  }
}

/* A job of 100,000 tasks (one row each) completes, every task launched
 * once; and a shuffle of 300 x 300 blocks. (bench/run scale measures
 * them, and the 1,000 x 1,000 shuffle.) */
static void test_many_tasks(void **state) {
  pt_dataset *r, *p;
  int64_t n;
  CHECK(pt_range(S, 0, 100000, 100000, &r, &err));
  CHECK(pt_count(r, &n, &err));
  assert_int_equal(n, 100000);
  pt_job_stats *js;
  CHECK(pt_dataset_last_job(r, &js, &err));
  assert_int_equal(js->n_stages, 1);
  assert_int_equal(js->stages[0].tasks_launched, 100000);
  assert_int_equal(js->stages[0].tasks_succeeded, 100000);
  pt_job_stats_free(js);
  pt_dataset_free(r);
  CHECK(pt_range(S, 0, 300000, 300, &r, &err));
  CHECK(pt_repartition(r, 300, &p, &err));
  CHECK(pt_count(p, &n, &err));
  assert_int_equal(n, 300000);
  pt_dataset_free(p);
  pt_dataset_free(r);
}

/* The metrics of a two-stage job add up: what the map stage wrote, the
 * reducers read; and the API's errors. */
static void test_job_stats(void **state) {
  pt_dataset *r, *p;
  pt_job_stats *js = NULL;
  pt_error e = {0};
  CHECK(pt_range(S, 0, 30000, 4, &r, &err));
  CHECK(pt_repartition(r, 3, &p, &err));
  assert_int_equal(pt_dataset_last_job(p, &js, &e), PT_ESTATE);
  assert_string_equal(e.message, "last_job: no action has run on this dataset yet");
  assert_null(js);
  int64_t n;
  int64_t *v = collect_col(p, 0, &n);
  free(v);
  CHECK(pt_dataset_last_job(p, &js, &err));
  assert_int_equal(js->status, PT_OK);
  assert_int_equal(js->n_stages, 2);
  const pt_stage_stats *map = js->stages[0].is_map ? &js->stages[0] : &js->stages[1];
  const pt_stage_stats *red = js->stages[0].is_map ? &js->stages[1] : &js->stages[0];
  assert_int_equal(map->partitions, 4);
  assert_int_equal(map->tasks_launched, 4);
  assert_int_equal(map->tasks_succeeded, 4);
  assert_int_equal(map->rows_read, 30000);
  assert_int_equal(map->bytes_read, 0); /* generated, not read */
  assert_int_equal(map->rows_written, 30000);
  assert_int_equal(red->partitions, 3);
  assert_int_equal(red->tasks_succeeded, 3);
  assert_int_equal(red->rows_read, 30000);
  assert_true(map->bytes_written > 30000 * 8);
  assert_int_equal(red->bytes_read, map->bytes_written); /* every segment, once */
  assert_int_equal(red->rows_written, 30000);
  assert_true(red->bytes_written > 30000 * 8);
  assert_int_equal(map->tasks_failed + red->tasks_failed, 0);
  assert_true(map->duration_us > 0 && red->duration_us > 0 && map->task_time_us > 0);
  assert_true(js->duration_us >= map->duration_us);
  assert_int_equal(js->executors_lost, 0);
  int64_t id = js->job_id;
  pt_job_stats_free(js);
  /* the session knows it by id, and as its last job */
  CHECK(pt_session_job_stats(S, id, &js, &err));
  assert_int_equal(js->job_id, id);
  pt_job_stats_free(js);
  CHECK(pt_session_job_stats(S, 0, &js, &err));
  assert_int_equal(js->job_id, id);
  pt_job_stats_free(js);
  assert_int_equal(pt_session_job_stats(S, id + 1000, &js, &e), PT_ESTATE);
  /* 64 jobs later it is gone */
  for (int i = 0; i < 64; i++) CHECK(pt_count(r, &n, &err));
  assert_int_equal(pt_session_job_stats(S, id, &js, &e), PT_ERANGE);
  assert_non_null(strstr(e.message, "older than the 64 jobs"));
  assert_int_equal(pt_dataset_last_job(p, &js, &e), PT_ERANGE);
  CHECK(pt_dataset_last_job(r, &js, &err));
  assert_int_equal(js->job_id, id + 64);
  pt_job_stats_free(js);
  pt_dataset_free(p);
  pt_dataset_free(r);
}

int main(void) {
  const struct CMUnitTest alone[] = {
      cmocka_unit_test(test_conf),
      cmocka_unit_test(test_master_errors),
      cmocka_unit_test(test_session_start_stop),
      cmocka_unit_test(test_no_executors_from_a_would_be_executor),
  };
  const struct CMUnitTest shared[] = {
      cmocka_unit_test(test_range_collect),
      cmocka_unit_test(test_map_filter_count),
      cmocka_unit_test(test_map_partitions),
      cmocka_unit_test(test_unregistered_and_bad_keys),
      cmocka_unit_test(test_repartition_round_robin),
      cmocka_unit_test(test_repartition_by_key_write_read),
      cmocka_unit_test(test_from_batches),
      cmocka_unit_test(test_read_ipc_errors),
      cmocka_unit_test(test_empty_partitions),
      cmocka_unit_test(test_concurrent_jobs),
      cmocka_unit_test(test_job_stats),
      cmocka_unit_test(test_many_tasks),
      cmocka_unit_test(test_plan_alloc_failures),
      cmocka_unit_test(test_job_alloc_failures),
  };
  int failed = cmocka_run_group_tests_name("engine", alone, NULL, NULL);
  failed += cmocka_run_group_tests_name("engine_session", shared, setup, teardown);
  return failed;
}
