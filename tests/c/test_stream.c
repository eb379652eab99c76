/* test_stream.c — streaming queries on the local engine with real executor
 * processes (this program, re-run by the session), a real directory that
 * files arrive in and real checkpoint files: every event reaches the sink
 * exactly once with files arriving during the run, under a killed executor,
 * across a crash between the sink's commit and the commit log (the rerun
 * keeps its batch id and offsets), and per-trigger limits; a failing
 * function stops the query with its message, a vanished source is retried
 * and then fails clearly, a checkpoint in use is refused. CSV files arrive
 * the same way, read with the batch reader's options and a given schema.
 */
#include <dirent.h>
#include <fcntl.h>
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

#include "core/core.h"
#include "protium.h"

#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

static pt_session *S;
static char ROOT[256];

/* ids [from, from + n) as struct<id: int64> in an IPC file (or Parquet),
 * written under a "." name and renamed, as a producer should. */
static void write_events(const char *dir, const char *name, int64_t from, int64_t n, int parquet) {
  struct ArrowSchema schema;
  CHECK(pt_schema_init(&schema, "+s", "", 0, 1, &err));
  CHECK(pt_schema_init(schema.children[0], "l", "id", 0, 0, &err));
  pt_builder *b;
  CHECK(pt_builder_new(&schema, &b, &err));
  for (int64_t i = from; i < from + n; i++) {
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 0), i), PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  struct ArrowArray batch;
  CHECK(pt_builder_finish(b, &batch, &err));
  char tmp[600], path[600];
  snprintf(tmp, sizeof tmp, "%s/.%s", dir, name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (parquet) {
    pt_parquet_writer *w;
    CHECK(pt_parquet_writer_open_path(tmp, &schema, NULL, &w, &err));
    CHECK(pt_parquet_writer_write(w, &batch, &err));
    CHECK(pt_parquet_writer_close(w, &err));
    pt_parquet_writer_free(w);
  } else {
    pt_ipc_write_options o;
    pt_ipc_write_options_init(&o);
    o.format = PT_IPC_FILE;
    pt_ipc_writer *w;
    CHECK(pt_ipc_writer_open_path(tmp, &schema, &o, &w, &err));
    CHECK(pt_ipc_writer_write(w, &batch, &err));
    CHECK(pt_ipc_writer_close(w, &err));
    pt_ipc_writer_free(w);
  }
  assert_int_equal(rename(tmp, path), 0);
  batch.release(&batch);
  pt_builder_free(b);
  schema.release(&schema);
}

/* Checks that the sink directory holds every id of [0, n) exactly once;
 * returns the number of rows. */
static int64_t check_exactly_once(const char *dir, int64_t n, int parquet) {
  pt_dataset *ds;
  if (parquet) CHECK(pt_read_parquet(S, dir, NULL, &ds, &err));
  else CHECK(pt_read_ipc(S, dir, &ds, &err));
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  int *seen = calloc((size_t)n, sizeof *seen);
  int64_t rows = 0;
  for (;;) {
    struct ArrowArray b;
    assert_int_equal(st.get_next(&st, &b), 0);
    if (!b.release) break;
    const int64_t *v = (const int64_t *)b.children[0]->buffers[1] + b.children[0]->offset;
    for (int64_t i = 0; i < b.length; i++) {
      if (v[i] < 0 || v[i] >= n) fail_msg("id %lld out of range", (long long)v[i]);
      if (seen[v[i]]++) fail_msg("id %lld written twice", (long long)v[i]);
    }
    rows += b.length;
    b.release(&b);
  }
  st.release(&st);
  pt_dataset_free(ds);
  for (int64_t i = 0; i < n; i++)
    if (!seen[i]) fail_msg("id %lld missing", (long long)i);
  free(seen);
  return rows;
}

static void paths(const char *what, char *in, char *out, char *ckpt) {
  snprintf(in, 512, "%s/%s-in", ROOT, what);
  snprintf(out, 512, "%s/%s-out", ROOT, what);
  snprintf(ckpt, 512, "%s/%s-ckpt", ROOT, what);
  pt_error e;
  assert_int_equal(pt__mkdirs(in, &e), PT_OK);
}

static pt_stream_query *start(const char *in, const char *out, const char *ckpt, int parquet,
                              int64_t max_files, pt_stream_trigger trigger,
                              pt_stream_transform_fn fn) {
  pt_stream_source src;
  pt_stream_sink sink;
  CHECK(pt_stream_files_source(in, parquet ? PT_STREAM_PARQUET : PT_STREAM_IPC, max_files, &src,
                               &err));
  if (parquet) CHECK(pt_stream_parquet_sink(out, NULL, &sink, &err));
  else CHECK(pt_stream_ipc_sink(out, NULL, &sink, &err));
  pt_stream_options o;
  pt_stream_options_init(&o);
  o.checkpoint_dir = ckpt;
  o.trigger = trigger;
  o.transform = fn;
  o.progress = 0;
  pt_stream_query *q;
  CHECK(pt_stream_start(S, &src, &sink, &o, &q, &err));
  assert_null(src.state); /* moved */
  return q;
}

static int64_t committed(pt_stream_query *q) {
  pt_stream_status st;
  CHECK(pt_stream_query_status(q, &st, &err));
  return st.batches_committed;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Waits (up to 60 s) until the sink directory holds `rows` rows. */
static void wait_rows(pt_stream_query *q, const char *out, int64_t rows) {
  for (int i = 0; i < 6000; i++) {
    pt_stream_progress p[64];
    int64_t n, sum = 0;
    CHECK(pt_stream_query_progress(q, p, 64, &n, &err));
    for (int64_t k = 0; k < n && k < 64; k++) sum += p[k].output_rows;
    if (sum >= rows) return;
    pt_stream_status st;
    CHECK(pt_stream_query_status(q, &st, &err));
    if (st.state == PT_STREAM_FAILED) fail_msg("query failed: %s", st.message);
    sleep_ms(10);
  }
  fail_msg("the sink never got %lld rows", (long long)rows);
}

static int setup(void **state) {
  snprintf(ROOT, sizeof ROOT, "%s/pt-stream-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(ROOT)) return -1;
  pt_conf *c;
  pt_error e;
  if (pt_conf_new(&c, &e) != PT_OK) return -1;
  if (pt_conf_set(c, "task.max_failures", "3", &e) != PT_OK ||
      pt_conf_set(c, "stream.max_retry_time", "1s", &e) != PT_OK)
    return -1;
  int rc = pt_session_open("local[2]", c, &S, &e);
  pt_conf_free(c);
  return rc == PT_OK ? 0 : -1;
}

static int teardown(void **state) {
  pt_session_close(S);
  pt__rm_rf(ROOT);
  return 0;
}

static void test_files_arriving_during_run(void **state) {
  char in[512], out[512], ckpt[512];
  paths("arrive", in, out, ckpt);
  write_events(in, "a-000.arrow", 0, 100, 0);
  pt_stream_query *q = start(in, out, ckpt, 0, 0, PT_TRIGGER_CONTINUOUS, NULL);
  for (int f = 1; f < 8; f++) {
    char name[32];
    snprintf(name, sizeof name, "a-%03d.arrow", f);
    write_events(in, name, f * 100, 100, 0);
    sleep_ms(30);
  }
  /* a file still being written is not read */
  FILE *partial = fopen(strcat(strcpy((char[600]){0}, in), "/.b-partial.arrow"), "w");
  fputs("not arrow yet", partial);
  fclose(partial);
  wait_rows(q, out, 800);
  CHECK(pt_stream_query_stop(q, &err));
  pt_stream_status st;
  CHECK(pt_stream_query_status(q, &st, &err));
  assert_int_equal(st.state, PT_STREAM_STOPPED);
  assert_int_equal(check_exactly_once(out, 800, 0), 800);
  pt_stream_progress p[64];
  int64_t n, files = 0, rows = 0;
  CHECK(pt_stream_query_progress(q, p, 64, &n, &err));
  assert_true(n >= 2); /* the files came while it ran: more than one batch */
  for (int64_t i = 0; i < n; i++) {
    assert_int_equal(p[i].batch_id, i);
    assert_true(p[i].records > 0);
    /* file times are event times: the file was there before the commit */
    assert_true(p[i].event_time_us > 0);
    assert_true(p[i].latency_us > 0);
    assert_int_equal(p[i].latency_us, p[i].committed_us - p[i].event_time_us);
    assert_true(p[i].duration_us > 0);
    assert_false(p[i].recovered);
    files += p[i].records;
    rows += p[i].input_rows;
  }
  assert_int_equal(files, 8);
  assert_int_equal(rows, 800);
  assert_string_equal(p[n - 1].end_offsets, "{\"files\":8}");
  /* the sink's names carry the batch id */
  char path[700];
  snprintf(path, sizeof path, "%s/part-0000000000-00000.arrow", out);
  assert_int_equal(access(path, F_OK), 0);
  const char *id = pt_stream_query_id(q);
  assert_int_equal(strlen(id), 32);
  char saved[33];
  strcpy(saved, id);
  pt_stream_query_free(q);

  /* A restart on the same checkpoint keeps the id and reads nothing again;
   * a new file is the only thing it adds. */
  write_events(in, "a-008.arrow", 800, 100, 0);
  q = start(in, out, ckpt, 0, 0, PT_TRIGGER_AVAILABLE_NOW, NULL);
  assert_string_equal(pt_stream_query_id(q), saved);
  int ended = 0;
  CHECK(pt_stream_query_await(q, 60000, &ended, &err));
  assert_true(ended);
  CHECK(pt_stream_query_progress(q, p, 64, &n, &err));
  assert_int_equal(n, 1);
  assert_int_equal(p[0].records, 1);
  pt_stream_query_free(q);
  assert_int_equal(check_exactly_once(out, 900, 0), 900);
}

static void test_available_now_limits_batches(void **state) {
  char in[512], out[512], ckpt[512];
  paths("limit", in, out, ckpt);
  for (int f = 0; f < 5; f++) {
    char name[32];
    snprintf(name, sizeof name, "f-%d.parquet", f);
    write_events(in, name, f * 10, 10, 1);
  }
  pt_stream_query *q = start(in, out, ckpt, 1, 2, PT_TRIGGER_AVAILABLE_NOW, NULL);
  int ended = 0;
  CHECK(pt_stream_query_await(q, 60000, &ended, &err));
  assert_true(ended);
  pt_stream_progress p[8];
  int64_t n;
  CHECK(pt_stream_query_progress(q, p, 8, &n, &err));
  assert_int_equal(n, 3);
  assert_int_equal(p[0].records, 2);
  assert_int_equal(p[1].records, 2);
  assert_int_equal(p[2].records, 1);
  assert_string_equal(p[1].start_offsets, "{\"files\":2}");
  assert_string_equal(p[1].end_offsets, "{\"files\":4}");
  pt_stream_query_free(q);
  assert_int_equal(check_exactly_once(out, 50, 1), 50);
}

/* The first attempt of partition 0 of every batch's job kills its own
 * executor, once per batch (a marker file per batch remembers). */
static int kill_first(const pt_task_context *ctx, const struct ArrowSchema *schema,
                      const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                      size_t arg_size, pt_error *err) {
  char marker[600];
  snprintf(marker, sizeof marker, "%.*s/killed-%lld", (int)arg_size, (const char *)arg,
           (long long)ctx->job_id);
  if (ctx->partition == 0 && access(marker, F_OK) != 0) {
    FILE *f = fopen(marker, "w");
    if (f) fclose(f);
    kill(getpid(), SIGKILL);
  }
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(kill_first)

static int kill_transform(pt_dataset *batch, void *arg, pt_dataset **out, pt_error *err) {
  int rc = pt_map_batches(batch, kill_first, NULL, ROOT, strlen(ROOT), out, err);
  pt_dataset_free(batch);
  return rc;
}

static void test_executor_killed_mid_batch(void **state) {
  char in[512], out[512], ckpt[512];
  paths("kill", in, out, ckpt);
  for (int f = 0; f < 4; f++) {
    char name[32];
    snprintf(name, sizeof name, "k-%d.arrow", f);
    write_events(in, name, f * 50, 50, 0);
  }
  pt_stream_query *q = start(in, out, ckpt, 0, 2, PT_TRIGGER_AVAILABLE_NOW, kill_transform);
  CHECK(pt_stream_query_await(q, 60000, NULL, &err));
  assert_int_equal(committed(q), 2);
  pt_stream_query_free(q);
  pt_job_stats *js; /* the last batch's job */
  CHECK(pt_session_job_stats(S, 0, &js, &err));
  assert_int_equal(js->executors_lost, 1); /* the fault did happen */
  pt_job_stats_free(js);
  assert_int_equal(check_exactly_once(out, 200, 0), 200);
}

/* A sink that commits through the real IPC sink and then fails as a crash
 * would, before the commit log: on batch `fail_at` (once), after or before
 * writing. */
typedef struct crash_sink {
  pt_stream_sink inner;
  int64_t fail_at;
  int after;
  int fired;
} crash_sink;

static int crash_write(void *state, pt_dataset *ds, int64_t id, int64_t *rows, pt_error *err) {
  crash_sink *c = state;
  if (id == c->fail_at && !c->fired && !c->after) {
    c->fired = 1;
    pt_dataset_free(ds);
    return pt__errorf(err, PT_EINTERNAL, "crash before the sink");
  }
  int rc = c->inner.write_batch(c->inner.state, ds, id, rows, err);
  if (rc == PT_OK && id == c->fail_at && !c->fired) {
    c->fired = 1;
    return pt__errorf(err, PT_EINTERNAL, "crash after the sink committed");
  }
  return rc;
}

static void crash_free(void *state) {
  crash_sink *c = state;
  c->inner.free(c->inner.state);
}

static void test_crash_between_sink_and_commit_log(void **state) {
  for (int after = 0; after < 2; after++) {
    char in[512], out[512], ckpt[512], what[16];
    snprintf(what, sizeof what, "crash%d", after);
    paths(what, in, out, ckpt);
    for (int f = 0; f < 6; f++) {
      char name[32];
      snprintf(name, sizeof name, "c-%d.arrow", f);
      write_events(in, name, f * 20, 20, 0);
    }
    crash_sink cs = {.fail_at = 1, .after = after};
    CHECK(pt_stream_ipc_sink(out, NULL, &cs.inner, &err));
    pt_stream_source src;
    CHECK(pt_stream_files_source(in, PT_STREAM_IPC, 2, &src, &err));
    pt_stream_sink sink = {.name = "crash", .state = &cs, .write_batch = crash_write,
                           .free = crash_free};
    pt_stream_options o;
    pt_stream_options_init(&o);
    o.checkpoint_dir = ckpt;
    o.trigger = PT_TRIGGER_AVAILABLE_NOW;
    o.progress = 0;
    pt_stream_query *q;
    CHECK(pt_stream_start(S, &src, &sink, &o, &q, &err));
    pt_error e = {0};
    int ended = 0;
    assert_int_equal(pt_stream_query_await(q, 60000, &ended, &e), PT_EINTERNAL);
    assert_true(ended);
    assert_non_null(strstr(e.message, after ? "after the sink" : "before the sink"));
    pt_stream_status st;
    CHECK(pt_stream_query_status(q, &st, &err));
    assert_int_equal(st.state, PT_STREAM_FAILED);
    pt_stream_query_free(q);
    /* batch 1 is in the offset log, not in the commit log */
    char path[700];
    snprintf(path, sizeof path, "%s/offsets/1", ckpt);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/commits/1", ckpt);
    assert_int_equal(access(path, F_OK), -1);
    /* a new file arrived meanwhile: it must not join the rerun batch */
    write_events(in, "c-6.arrow", 120, 20, 0);
    q = start(in, out, ckpt, 0, 2, PT_TRIGGER_AVAILABLE_NOW, NULL);
    CHECK(pt_stream_query_await(q, 60000, NULL, &err));
    pt_stream_progress p[8];
    int64_t n;
    CHECK(pt_stream_query_progress(q, p, 8, &n, &err));
    assert_int_equal(n, 3);
    assert_int_equal(p[0].batch_id, 1); /* the same id ... */
    assert_true(p[0].recovered);
    assert_string_equal(p[0].start_offsets, "{\"files\":2}"); /* ... and offsets */
    assert_string_equal(p[0].end_offsets, "{\"files\":4}");
    assert_int_equal(p[2].batch_id, 3);
    pt_stream_query_free(q);
    assert_int_equal(check_exactly_once(out, 140, 0), 140);
  }
}

static int fail_map(const pt_task_context *ctx, const struct ArrowSchema *schema,
                    const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                    size_t arg_size, pt_error *err) {
  return pt__errorf(err, PT_EINVAL, "model exploded on partition %lld",
                    (long long)ctx->partition);
}
PT_REGISTER_FN(fail_map)

static int fail_transform(pt_dataset *batch, void *arg, pt_dataset **out, pt_error *err) {
  int rc = pt_map_batches(batch, fail_map, NULL, NULL, 0, out, err);
  pt_dataset_free(batch);
  return rc;
}

static void test_failing_function_stops_query(void **state) {
  char in[512], out[512], ckpt[512];
  paths("fail", in, out, ckpt);
  write_events(in, "x.arrow", 0, 10, 0);
  pt_stream_query *q = start(in, out, ckpt, 0, 0, PT_TRIGGER_CONTINUOUS, fail_transform);
  pt_error e = {0};
  int ended = 0;
  assert_int_equal(pt_stream_query_await(q, 60000, &ended, &e), PT_EINVAL);
  assert_true(ended);
  assert_non_null(strstr(e.message, "failed 3 times")); /* retried as any job */
  assert_non_null(strstr(e.message, "model exploded"));
  pt_stream_status st;
  CHECK(pt_stream_query_status(q, &st, &err));
  assert_int_equal(st.state, PT_STREAM_FAILED);
  assert_non_null(strstr(st.message, "model exploded"));
  pt_stream_query_free(q);
  char path[700];
  snprintf(path, sizeof path, "%s/commits/0", ckpt);
  assert_int_equal(access(path, F_OK), -1);
}

static void test_source_gone_retried_then_fails(void **state) {
  char in[512], out[512], ckpt[512], moved[600];
  paths("gone", in, out, ckpt);
  write_events(in, "g-0.arrow", 0, 10, 0);
  snprintf(moved, sizeof moved, "%s.away", in);
  pt_stream_query *q = start(in, out, ckpt, 0, 0, PT_TRIGGER_CONTINUOUS, NULL);
  wait_rows(q, out, 10);
  /* gone for less than stream.max_retry_time (1 s): the query waits */
  assert_int_equal(rename(in, moved), 0);
  pt_stream_status st;
  for (int i = 0; i < 500; i++) {
    CHECK(pt_stream_query_status(q, &st, &err));
    if (st.state == PT_STREAM_RETRYING) break;
    sleep_ms(2);
  }
  assert_int_equal(st.state, PT_STREAM_RETRYING);
  assert_non_null(strstr(st.message, "files unavailable"));
  assert_int_equal(rename(moved, in), 0);
  write_events(in, "g-1.arrow", 10, 10, 0);
  wait_rows(q, out, 20);
  CHECK(pt_stream_query_status(q, &st, &err));
  assert_true(st.retries >= 1);
  /* gone for good: fails after about a second, with a clear message */
  assert_int_equal(rename(in, moved), 0);
  pt_error e = {0};
  int ended = 0;
  assert_int_equal(pt_stream_query_await(q, 30000, &ended, &e), PT_EIO);
  assert_true(ended);
  assert_non_null(strstr(e.message, "stream: files unavailable for"));
  assert_non_null(strstr(e.message, "stream.max_retry_time"));
  pt_stream_query_free(q);
  assert_int_equal(check_exactly_once(out, 20, 0), 20);
}

static void test_stop_while_retrying(void **state) {
  char in[512], out[512], ckpt[512], moved[600];
  paths("stopretry", in, out, ckpt);
  snprintf(moved, sizeof moved, "%s.away", in);
  pt_stream_query *q = start(in, out, ckpt, 0, 0, PT_TRIGGER_CONTINUOUS, NULL);
  assert_int_equal(rename(in, moved), 0);
  pt_stream_status st;
  for (int i = 0; i < 500; i++) {
    CHECK(pt_stream_query_status(q, &st, &err));
    if (st.state == PT_STREAM_RETRYING) break;
    sleep_ms(2);
  }
  assert_int_equal(st.state, PT_STREAM_RETRYING);
  CHECK(pt_stream_query_stop(q, &err)); /* interrupts the backoff */
  CHECK(pt_stream_query_status(q, &st, &err));
  assert_int_equal(st.state, PT_STREAM_STOPPED);
  int ended = 0;
  CHECK(pt_stream_query_await(q, 0, &ended, &err));
  assert_true(ended);
  pt_stream_query_free(q);
}

/* ids [from, from + n) as a CSV file "id,tag" with a header, written under
 * a "." name and renamed. */
static void write_csv(const char *dir, const char *name, int64_t from, int64_t n) {
  char tmp[600], path[600];
  snprintf(tmp, sizeof tmp, "%s/.%s", dir, name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fputs("id,tag\n", f);
  for (int64_t i = from; i < from + n; i++) fprintf(f, "%lld,\"t,%lld\"\n", (long long)i, (long long)i);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
}

static void csv_schema(struct ArrowSchema *s) {
  CHECK(pt_schema_init(s, "+s", "", 0, 2, &err));
  CHECK(pt_schema_init(s->children[0], "l", "id", 0, 0, &err));
  CHECK(pt_schema_init(s->children[1], "u", "tag", ARROW_FLAG_NULLABLE, 0, &err));
}

static void test_csv_files_exactly_once(void **state) {
  char in[512], out[512], ckpt[512];
  paths("csv", in, out, ckpt);
  write_csv(in, "a-000.csv", 0, 50);
  write_csv(in, "a-001.csv", 50, 50);
  char ignored[600];
  snprintf(ignored, sizeof ignored, "%s/notes.txt", in); /* not a .csv: never read */
  FILE *f = fopen(ignored, "w");
  fputs("not,csv\n", f);
  fclose(f);
  struct ArrowSchema schema;
  csv_schema(&schema);
  pt_csv_options co;
  pt_csv_options_init(&co);
  co.header = 1;
  co.schema = &schema;
  const char *nulls[] = {"NA"};
  co.null_values = nulls;
  co.n_null_values = 1;
  pt_stream_source src;
  pt_stream_sink sink;
  CHECK(pt_stream_csv_source(in, &co, 1, &src, &err));
  schema.release(&schema); /* copied by the source */
  CHECK(pt_stream_ipc_sink(out, NULL, &sink, &err));
  pt_stream_options o;
  pt_stream_options_init(&o);
  o.checkpoint_dir = ckpt;
  o.trigger = PT_TRIGGER_CONTINUOUS;
  o.progress = 0;
  pt_stream_query *q;
  CHECK(pt_stream_start(S, &src, &sink, &o, &q, &err));
  wait_rows(q, out, 100);
  /* files arriving while it runs, one with an old modification time */
  write_csv(in, "b-000.csv", 100, 30);
  write_csv(in, "0-late.csv", 130, 20);
  char late[600];
  snprintf(late, sizeof late, "%s/0-late.csv", in);
  struct timespec old[2] = {{1000, 0}, {1000, 0}};
  assert_int_equal(utimensat(AT_FDCWD, late, old, 0), 0);
  wait_rows(q, out, 150);
  CHECK(pt_stream_query_stop(q, &err));
  pt_stream_progress p[64];
  int64_t n;
  CHECK(pt_stream_query_progress(q, p, 64, &n, &err));
  assert_true(n >= 4); /* max_files_per_trigger 1: a batch per file */
  for (int64_t i = 0; i < n; i++) assert_int_equal(p[i].records, 1);
  pt_stream_query_free(q);
  assert_int_equal(check_exactly_once(out, 150, 0), 150);
}

static void test_bad_input(void **state) {
  char in[512], out[512], ckpt[512];
  paths("bad", in, out, ckpt);
  pt_stream_source src;
  pt_error e = {0};
  assert_int_equal(pt_stream_files_source("/nonexistent/dir", PT_STREAM_IPC, 0, &src, &e),
                   PT_EINVAL);
  assert_non_null(strstr(e.message, "is not a directory"));
  assert_int_equal(pt_stream_files_source(in, 7, 0, &src, &e), PT_EINVAL);
  /* CSV: its own constructor, and a schema given, not inferred */
  assert_int_equal(pt_stream_files_source(in, PT_STREAM_CSV, 0, &src, &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "use pt_stream_csv_source"));
  pt_csv_options co;
  pt_csv_options_init(&co);
  assert_int_equal(pt_stream_csv_source(in, &co, 0, &src, &e), PT_EINVAL);
  assert_string_equal(e.message, "stream csv source: a schema is required "
                                 "(pt_csv_options.schema): inferred per micro-batch, the "
                                 "columns could change from one to the next");
  assert_int_equal(pt_stream_csv_source(in, NULL, 0, &src, &e), PT_EINVAL);
  /* two queries on one checkpoint: the second is refused */
  pt_stream_query *q = start(in, out, ckpt, 0, 0, PT_TRIGGER_CONTINUOUS, NULL);
  pt_stream_sink sink;
  CHECK(pt_stream_files_source(in, PT_STREAM_IPC, 0, &src, &err));
  CHECK(pt_stream_ipc_sink(out, NULL, &sink, &err));
  pt_stream_options o;
  pt_stream_options_init(&o);
  o.checkpoint_dir = ckpt;
  pt_stream_query *q2 = NULL;
  assert_int_equal(pt_stream_start(S, &src, &sink, &o, &q2, &e), PT_ESTATE);
  assert_non_null(strstr(e.message, "in use by another running query"));
  assert_null(q2);
  assert_null(src.state); /* freed by the failed start */
  pt_stream_query_free(q);
  /* no checkpoint */
  CHECK(pt_stream_files_source(in, PT_STREAM_IPC, 0, &src, &err));
  CHECK(pt_stream_ipc_sink(out, NULL, &sink, &err));
  o.checkpoint_dir = NULL;
  assert_int_equal(pt_stream_start(S, &src, &sink, &o, &q2, &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "checkpoint directory is required"));
  /* a damaged offset log fails the query with a message naming the file */
  char path[700];
  snprintf(path, sizeof path, "%s/offsets/0", ckpt);
  FILE *f = fopen(path, "w");
  fputs("garbage", f);
  fclose(f);
  q = start(in, out, ckpt, 0, 0, PT_TRIGGER_CONTINUOUS, NULL);
  assert_int_equal(pt_stream_query_await(q, 30000, NULL, &e), PT_EFORMAT);
  assert_non_null(strstr(e.message, "is damaged"));
  pt_stream_query_free(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_files_arriving_during_run),
      cmocka_unit_test(test_available_now_limits_batches),
      cmocka_unit_test(test_executor_killed_mid_batch),
      cmocka_unit_test(test_crash_between_sink_and_commit_log),
      cmocka_unit_test(test_failing_function_stops_query),
      cmocka_unit_test(test_source_gone_retried_then_fails),
      cmocka_unit_test(test_stop_while_retrying),
      cmocka_unit_test(test_csv_files_exactly_once),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
