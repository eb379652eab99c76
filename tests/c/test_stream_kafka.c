/* test_stream_kafka.c — streaming queries from a Kafka topic into a Kafka
 * topic against a real broker (test_kafka_broker.h) and real executors:
 * records produced before and during the run come out exactly once to a
 * read_committed consumer, with per-trigger limits; a crash after the
 * sink's transaction committed but before the commit log reruns the batch,
 * which the sink skips; an executor killed mid-batch and a broker restarted
 * mid-stream lose and duplicate nothing.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "protium.h"
#include "test_kafka_broker.h"

#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

static pt_test_kafka K;
static pt_session *S;
static char ROOT[256];

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static void kopts(pt_kafka_options *o) {
  pt_kafka_options_init(o);
  o->bootstrap_servers = K.bootstrap;
}

/* Values "e<first>".."e<first+n-1>", round robin over `parts` partitions. */
static void produce(const char *topic, int parts, int first, int n) {
  rd_kafka_t *rk = pt_test_kafka_client(&K, RD_KAFKA_PRODUCER, NULL);
  for (int i = first; i < first + n; i++) {
    char v[32];
    snprintf(v, sizeof v, "e%d", i);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(i % parts),
                                       RD_KAFKA_V_VALUE(v, strlen(v)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);
}

/* Counts every "e<i>" a read_committed consumer sees in topic; fails on
 * a duplicate; returns how many distinct of [0, n) it saw. */
static int consume_once(const char *topic, int parts, int n) {
  int *seen = calloc((size_t)n, sizeof *seen), distinct = 0;
  char **vals = calloc(20000, sizeof *vals);
  int64_t *offs = calloc(20000, sizeof *offs);
  for (int p = 0; p < parts; p++) {
    int got = pt_test_kafka_consume(&K, topic, p, vals, offs, 20000);
    for (int i = 0; i < got; i++) {
      int v = atoi(vals[i] + 1);
      if (vals[i][0] != 'e' || v < 0 || v >= n) fail_msg("unexpected value '%s'", vals[i]);
      if (seen[v]++) fail_msg("'%s' delivered twice", vals[i]);
      distinct++;
      free(vals[i]);
    }
  }
  free(vals);
  free(offs);
  free(seen);
  return distinct;
}

static int64_t output_rows(pt_stream_query *q) {
  pt_stream_progress p[128];
  int64_t n, sum = 0;
  CHECK(pt_stream_query_progress(q, p, 128, &n, &err));
  for (int64_t i = 0; i < n && i < 128; i++) sum += p[i].output_rows;
  return sum;
}

static void wait_output(pt_stream_query *q, int64_t rows) {
  for (int i = 0; i < 9000 && output_rows(q) < rows; i++) {
    pt_stream_status st;
    CHECK(pt_stream_query_status(q, &st, &err));
    if (st.state == PT_STREAM_FAILED) fail_msg("query failed: %s", st.message);
    sleep_ms(10);
  }
  assert_true(output_rows(q) >= rows);
}

static pt_stream_query *start(const char *in, const char *out, const char *ckpt_name,
                              int64_t max, pt_stream_trigger trigger, pt_stream_sink *wrap,
                              pt_stream_transform_fn fn) {
  pt_kafka_options o;
  kopts(&o);
  pt_stream_source src;
  pt_stream_sink sink;
  CHECK(pt_stream_kafka_source(&o, in, "earliest", max, &src, &err));
  CHECK(pt_stream_kafka_sink(&o, out, NULL, wrap ? wrap : &sink, &err));
  char ckpt[512];
  snprintf(ckpt, sizeof ckpt, "%s/%s", ROOT, ckpt_name);
  pt_stream_options opts;
  pt_stream_options_init(&opts);
  opts.checkpoint_dir = ckpt;
  opts.trigger = trigger;
  opts.transform = fn;
  opts.progress = 0;
  pt_stream_query *q;
  CHECK(pt_stream_start(S, &src, wrap ? NULL : &sink, &opts, &q, &err));
  return q;
}

static void test_topic_to_topic_exactly_once(void **state) {
  assert_int_equal(pt_test_kafka_create_topic(&K, "ev1", 3), 0);
  assert_int_equal(pt_test_kafka_create_topic(&K, "out1", 3), 0);
  produce("ev1", 3, 0, 300);
  pt_stream_query *q = start("ev1", "out1", "ck1", 120, PT_TRIGGER_CONTINUOUS, NULL, NULL);
  produce("ev1", 3, 300, 300); /* while it runs */
  wait_output(q, 600);
  CHECK(pt_stream_query_stop(q, &err));
  pt_stream_progress p[64];
  int64_t n, records = 0;
  CHECK(pt_stream_query_progress(q, p, 64, &n, &err));
  assert_true(n >= 5); /* 600 records, at most 120 a batch */
  for (int64_t i = 0; i < n; i++) {
    assert_true(p[i].records <= 120);
    assert_int_equal(p[i].input_rows, p[i].records);
    records += p[i].records;
  }
  assert_int_equal(records, 600);
  assert_string_equal(p[n - 1].end_offsets, "{\"ev1\":{\"0\":200,\"1\":200,\"2\":200}}");
  pt_stream_query_free(q);
  assert_int_equal(consume_once("out1", 3, 600), 600);
}

/* The real Kafka sink, then a crash before the commit log, once. */
typedef struct crash_sink {
  pt_stream_sink inner;
  int fired;
} crash_sink;

static int crash_open(void *state, pt_session *s, const char *id, pt_error *err) {
  crash_sink *c = state;
  return c->inner.open(c->inner.state, s, id, err);
}

static int crash_write(void *state, pt_dataset *ds, int64_t id, int64_t *rows, pt_error *err) {
  crash_sink *c = state;
  int rc = c->inner.write_batch(c->inner.state, ds, id, rows, err);
  if (rc == PT_OK && id == 1 && !c->fired) {
    c->fired = 1;
    return pt__errorf(err, PT_EINTERNAL, "crash after the transaction committed");
  }
  return rc;
}

static void crash_free(void *state) {
  crash_sink *c = state;
  c->inner.free(c->inner.state);
}

static void test_crash_after_sink_commit(void **state) {
  assert_int_equal(pt_test_kafka_create_topic(&K, "ev2", 2), 0);
  assert_int_equal(pt_test_kafka_create_topic(&K, "out2", 2), 0);
  produce("ev2", 2, 0, 400);
  crash_sink cs = {0};
  pt_stream_sink sink = {.name = "crash", .state = &cs, .open = crash_open,
                         .write_batch = crash_write, .free = crash_free};
  pt_kafka_options o;
  kopts(&o);
  CHECK(pt_stream_kafka_sink(&o, "out2", NULL, &cs.inner, &err));
  pt_stream_source src;
  CHECK(pt_stream_kafka_source(&o, "ev2", "earliest", 100, &src, &err));
  char ckpt[512];
  snprintf(ckpt, sizeof ckpt, "%s/ck2", ROOT);
  pt_stream_options opts;
  pt_stream_options_init(&opts);
  opts.checkpoint_dir = ckpt;
  opts.trigger = PT_TRIGGER_AVAILABLE_NOW;
  opts.progress = 0;
  pt_stream_query *q;
  CHECK(pt_stream_start(S, &src, &sink, &opts, &q, &err));
  pt_error e = {0};
  assert_int_equal(pt_stream_query_await(q, 120000, NULL, &e), PT_EINTERNAL);
  pt_stream_query_free(q);
  /* batch 1 is in Kafka, committed, but not in the commit log */
  assert_int_equal(consume_once("out2", 2, 400), 200);
  q = start("ev2", "out2", "ck2", 100, PT_TRIGGER_AVAILABLE_NOW, NULL, NULL);
  CHECK(pt_stream_query_await(q, 120000, NULL, &err));
  pt_stream_progress p[8];
  int64_t n;
  CHECK(pt_stream_query_progress(q, p, 8, &n, &err));
  assert_int_equal(n, 3);
  assert_int_equal(p[0].batch_id, 1);
  assert_true(p[0].recovered);
  assert_int_equal(p[0].output_rows, 0); /* the sink found batch 1 committed */
  pt_stream_query_free(q);
  assert_int_equal(consume_once("out2", 2, 400), 400);
}

static int kill_once(const pt_task_context *ctx, const struct ArrowSchema *schema,
                     const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                     size_t arg_size, pt_error *err) {
  char marker[600];
  snprintf(marker, sizeof marker, "%.*s/killed", (int)arg_size, (const char *)arg);
  if (ctx->partition == 0 && access(marker, F_OK) != 0) {
    FILE *f = fopen(marker, "w");
    if (f) fclose(f);
    kill(getpid(), SIGKILL);
  }
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(kill_once)

static int kill_transform(pt_dataset *batch, void *arg, pt_dataset **out, pt_error *err) {
  int rc = pt_map_batches(batch, kill_once, NULL, ROOT, strlen(ROOT), out, err);
  pt_dataset_free(batch);
  return rc;
}

static void test_executor_killed_and_broker_restarted(void **state) {
  assert_int_equal(pt_test_kafka_create_topic(&K, "ev3", 2), 0);
  assert_int_equal(pt_test_kafka_create_topic(&K, "out3", 2), 0);
  produce("ev3", 2, 0, 200);
  pt_stream_query *q = start("ev3", "out3", "ck3", 0, PT_TRIGGER_CONTINUOUS, NULL, kill_transform);
  wait_output(q, 200);
  char marker[600];
  snprintf(marker, sizeof marker, "%s/killed", ROOT);
  assert_int_equal(access(marker, F_OK), 0); /* an executor died mid-batch */
  /* the broker goes away and comes back on the same port and data */
  char cmd[1400];
  snprintf(cmd, sizeof cmd, "%s restart %s/broker > /dev/null", pt_test_kafka_script, K.dir);
  assert_int_equal(system(cmd), 0);
  produce("ev3", 2, 200, 200);
  wait_output(q, 400);
  pt_stream_status st;
  CHECK(pt_stream_query_status(q, &st, &err));
  assert_int_equal(st.state != PT_STREAM_FAILED, 1);
  pt_stream_query_free(q);
  assert_int_equal(consume_once("out3", 2, 400), 400);
}

static void test_bad_input(void **state) {
  pt_kafka_options o;
  kopts(&o);
  pt_stream_source src;
  pt_error e = {0};
  assert_int_equal(pt_stream_kafka_source(&o, "ev1", "middle", 0, &src, &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "is not \"earliest\""));
  assert_int_equal(pt_stream_kafka_source(&o, "ev1", "{\"other\":{\"0\":1}}", 0, &src, &e),
                   PT_EFORMAT);
  assert_int_equal(pt_stream_kafka_source(&o, "ev1", "{\"ev1\":{\"0\":x}}", 0, &src, &e),
                   PT_EFORMAT);
  pt_kafka_options none;
  pt_kafka_options_init(&none);
  assert_int_equal(pt_stream_kafka_source(&none, "ev1", "earliest", 0, &src, &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "bootstrap servers are required"));
  /* explicit starting offsets are taken as they are */
  CHECK(pt_stream_kafka_source(&o, "ev1", "{\"ev1\":{\"0\":150,\"1\":150,\"2\":150}}", 0, &src,
                               &err));
  char *start = NULL;
  CHECK(src.initial_offsets(src.state, &start, &err));
  assert_string_equal(start, "{\"ev1\":{\"0\":150,\"1\":150,\"2\":150}}");
  free(start);
  src.free(src.state);
}

int main(void) {
  (void)pt_test_kafka_free_port; /* the fixture's, unused here */
  snprintf(ROOT, sizeof ROOT, "%s/pt-stream-kafka-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(ROOT)) return 1;
  int rc = pt_test_kafka_start(&K);
  if (rc == 77) {
    printf("skipped: Java or the Kafka jars are missing (scripts/setup.sh)\n");
    return 77;
  }
  if (rc != 0) return 1;
  pt_conf *c;
  pt_error e;
  if (pt_conf_new(&c, &e) != PT_OK || pt_conf_set(c, "stream.max_retry_time", "60s", &e) != PT_OK)
    return 1;
  rc = pt_session_open("local[2]", c, &S, &e);
  pt_conf_free(c);
  if (rc != PT_OK) {
    fprintf(stderr, "%s\n", e.message);
    pt_test_kafka_stop(&K);
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topic_to_topic_exactly_once),
      cmocka_unit_test(test_crash_after_sink_commit),
      cmocka_unit_test(test_executor_killed_and_broker_restarted),
      cmocka_unit_test(test_bad_input),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  pt_session_close(S);
  pt_test_kafka_stop(&K);
  pt__rm_rf(ROOT);
  return failed;
}
