/* test_kafka.c — the Kafka source and sink against a real broker
 * (test_kafka_broker.h): topic offsets, offset ranges read exactly (checked
 * against librdkafka's own consumption), read_committed skipping aborted
 * transactions and their markers, long ranges split, writes exactly once
 * per batch id (written twice, and with the writer's executor killed
 * between produce and commit), brokers away, and bad input refused.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "protium.h"
#include "test_kafka_broker.h"

static pt_test_kafka g_k;
static pt_session *g_s;

static void opts(pt_kafka_options *o) {
  pt_kafka_options_init(o);
  o->bootstrap_servers = g_k.bootstrap;
  o->max_retry_ms = 20000;
}

static void produce_plain(const char *topic, int partition, int n, int first) {
  /* Idempotence keeps the records in the order they are produced, even when
   * a request is retried (as the first ones are while the topic is created). */
  const char *kv[] = {"enable.idempotence", "true", NULL};
  rd_kafka_t *rk = pt_test_kafka_client(&g_k, RD_KAFKA_PRODUCER, kv);
  for (int i = 0; i < n; i++) {
    char v[32], key[32];
    snprintf(v, sizeof v, "v%d", first + i);
    snprintf(key, sizeof key, "k%d", first + i);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "h", -1, key, -1);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_VALUE(v, strlen(v)), RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_TIMESTAMP(1700000000000LL + i),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);
}

static int setup(void **state) {
  (void)state;
  int rc = pt_test_kafka_start(&g_k);
  if (rc != 0) return -1;
  pt_error err;
  if (pt_session_open("local[2]", NULL, &g_s, &err) != PT_OK) {
    fprintf(stderr, "%s\n", err.message);
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  pt_session_close(g_s);
  pt_test_kafka_stop(&g_k);
  return 0;
}

static void collect_all(pt_dataset *ds, struct ArrowSchema *schema, struct ArrowArray *batches,
                        int cap, int *n) {
  pt_error err;
  struct ArrowArrayStream st;
  if (pt_collect(ds, &st, &err) != PT_OK) fail_msg("collect: %s", err.message);
  assert_int_equal(st.get_schema(&st, schema), 0);
  *n = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(st.get_next(&st, &a), 0);
    if (!a.release) break;
    assert_true(*n < cap);
    batches[(*n)++] = a;
  }
  st.release(&st);
}

static const char *str_at(const struct ArrowArray *col, int64_t i, int *len) {
  const int32_t *off = col->buffers[1];
  *len = off[col->offset + i + 1] - off[col->offset + i];
  return (const char *)col->buffers[2] + off[col->offset + i];
}

static void test_offsets_and_range_read(void **state) {
  (void)state;
  assert_int_equal(pt_test_kafka_create_topic(&g_k, "plain", 2), 0);
  produce_plain("plain", 0, 10, 0);
  produce_plain("plain", 1, 5, 100);
  pt_kafka_options o;
  opts(&o);
  pt_kafka_partition_offsets *po;
  int32_t n;
  pt_error err;
  if (pt_kafka_topic_offsets(&o, "plain", &po, &n, &err) != PT_OK) fail_msg("%s", err.message);
  assert_int_equal(n, 2);
  assert_int_equal(po[0].partition, 0);
  assert_int_equal(po[0].earliest, 0);
  assert_int_equal(po[0].latest, 10);
  assert_int_equal(po[1].partition, 1);
  assert_int_equal(po[1].latest, 5);
  free(po);

  int32_t parts[] = {0, 1};
  int64_t start[] = {2, 0}, end[] = {8, 5};
  pt_dataset *ds;
  if (pt_read_kafka(g_s, &o, "plain", parts, start, end, 2, &ds, &err) != PT_OK)
    fail_msg("%s", err.message);
  assert_int_equal(pt_dataset_num_partitions(ds), 2);
  struct ArrowSchema schema;
  struct ArrowArray b[16];
  int nb;
  collect_all(ds, &schema, b, 16, &nb);
  assert_int_equal(schema.n_children, 8);
  assert_string_equal(schema.children[5]->format, "tsm:UTC");
  assert_string_equal(schema.children[7]->format, "+l");
  /* What librdkafka itself consumes from partition 0. */
  char *ref[32];
  int64_t ref_off[32];
  int nref = pt_test_kafka_consume(&g_k, "plain", 0, ref, ref_off, 32);
  assert_int_equal(nref, 10);
  int64_t rows = 0, p0 = 0;
  for (int i = 0; i < nb; i++) {
    assert_int_equal(pt_array_validate(&schema, &b[i], &err), PT_OK);
    for (int64_t r = 0; r < b[i].length; r++, rows++) {
      int32_t part = ((const int32_t *)b[i].children[3]->buffers[1])[r];
      int64_t off = ((const int64_t *)b[i].children[4]->buffers[1])[r];
      int len;
      const char *v = str_at(b[i].children[1], r, &len);
      if (part == 0) {
        assert_true(off >= 2 && off < 8);
        assert_int_equal(len, (int)strlen(ref[off]));
        assert_memory_equal(v, ref[off], (size_t)len);
        assert_int_equal(ref_off[off], off);
        /* the record produced i-th ("v<i>") carries the timestamp base + i */
        int64_t ts = ((const int64_t *)b[i].children[5]->buffers[1])[r];
        assert_int_equal(ts, 1700000000000LL + atoll(ref[off] + 1));
        assert_int_equal(((const int32_t *)b[i].children[6]->buffers[1])[r], 0);
        /* one header h = key */
        const struct ArrowArray *h = b[i].children[7];
        const int32_t *ho = h->buffers[1];
        assert_int_equal(ho[r + 1] - ho[r], 1);
        int kl;
        const char *hk = str_at(h->children[0]->children[0], ho[r], &kl);
        assert_memory_equal(hk, "h", 1);
        p0++;
      } else {
        char want[16];
        snprintf(want, sizeof want, "v%d", 100 + (int)off);
        assert_int_equal(len, (int)strlen(want));
        assert_memory_equal(v, want, (size_t)len);
      }
      int tl;
      const char *t = str_at(b[i].children[2], r, &tl);
      assert_int_equal(tl, 5);
      assert_memory_equal(t, "plain", 5);
    }
    b[i].release(&b[i]);
  }
  for (int i = 0; i < nref; i++) free(ref[i]);
  assert_int_equal(p0, 6);
  assert_int_equal(rows, 11);
  schema.release(&schema);
  pt_dataset_free(ds);

  /* Split into engine partitions of at most 4 records. */
  o.max_records_per_partition = 4;
  if (pt_read_kafka(g_s, &o, "plain", parts, start, end, 2, &ds, &err) != PT_OK)
    fail_msg("%s", err.message);
  assert_int_equal(pt_dataset_num_partitions(ds), 4); /* [2,6) [6,8) [0,4) [4,5) */
  int64_t count;
  assert_int_equal(pt_count(ds, &count, &err), PT_OK);
  assert_int_equal(count, 11);
  pt_dataset_free(ds);
}

static void txn_produce(rd_kafka_t *rk, const char *topic, int first, int n, int commit) {
  assert_null(rd_kafka_begin_transaction(rk));
  for (int i = 0; i < n; i++) {
    char v[32];
    snprintf(v, sizeof v, "t%d", first + i);
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE(v, strlen(v)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  if (commit) assert_null(rd_kafka_commit_transaction(rk, 30000));
  else assert_null(rd_kafka_abort_transaction(rk, 30000));
}

static void test_read_committed_skips_aborted(void **state) {
  (void)state;
  assert_int_equal(pt_test_kafka_create_topic(&g_k, "txn", 1), 0);
  static const char *const kv[] = {"transactional.id", "test-txn", NULL};
  rd_kafka_t *rk = pt_test_kafka_client(&g_k, RD_KAFKA_PRODUCER, kv);
  assert_null(rd_kafka_init_transactions(rk, 30000));
  txn_produce(rk, "txn", 0, 3, 1);  /* offsets 0-2, marker 3 */
  txn_produce(rk, "txn", 10, 3, 0); /* 4-6 aborted, marker 7 */
  txn_produce(rk, "txn", 3, 2, 1);  /* 8-9, marker 10 */
  rd_kafka_destroy(rk);
  pt_kafka_options o;
  opts(&o);
  pt_kafka_partition_offsets *po;
  int32_t n;
  pt_error err;
  assert_int_equal(pt_kafka_topic_offsets(&o, "txn", &po, &n, &err), PT_OK);
  assert_int_equal(po[0].latest, 11);
  free(po);
  int32_t part = 0;
  int64_t start = 0, end = 11;
  pt_dataset *ds;
  assert_int_equal(pt_read_kafka(g_s, &o, "txn", &part, &start, &end, 1, &ds, &err), PT_OK);
  struct ArrowSchema schema;
  struct ArrowArray b[8];
  int nb;
  collect_all(ds, &schema, b, 8, &nb);
  int64_t rows = 0;
  static const char *want[] = {"t0", "t1", "t2", "t3", "t4"};
  for (int i = 0; i < nb; i++) {
    for (int64_t r = 0; r < b[i].length; r++, rows++) {
      int len;
      const char *v = str_at(b[i].children[1], r, &len);
      assert_true(rows < 5);
      assert_int_equal(len, 2);
      assert_memory_equal(v, want[rows], 2);
    }
    b[i].release(&b[i]);
  }
  assert_int_equal(rows, 5);
  schema.release(&schema);
  pt_dataset_free(ds);
  /* A range that ends inside the aborted records and a marker: no rows,
   * and it ends (the position passes end without a record). */
  start = 4;
  end = 8;
  assert_int_equal(pt_read_kafka(g_s, &o, "txn", &part, &start, &end, 1, &ds, &err), PT_OK);
  int64_t count = -1;
  if (pt_count(ds, &count, &err) != PT_OK) fail_msg("%s", err.message);
  assert_int_equal(count, 0);
  pt_dataset_free(ds);
}

/* value = "w<batch>-<id>" for each id of the range. */
static int to_values(const pt_task_context *ctx, const struct ArrowSchema *schema,
                     const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                     size_t arg_size, pt_error *err) {
  (void)ctx;
  (void)schema;
  (void)arg_size;
  struct ArrowSchema s;
  pt_schema_init(&s, "+s", "", 0, 1, err);
  pt_schema_init(s.children[0], "u", "value", 0, 0, err);
  pt_builder *b;
  int rc = pt_builder_new(&s, &b, err);
  s.release(&s);
  if (rc != PT_OK) return rc;
  const int64_t *ids = batch->children[0]->buffers[1];
  for (int64_t i = 0; i < batch->length; i++) {
    char v[48];
    int n = snprintf(v, sizeof v, "w%d-%lld", *(const int *)arg, (long long)ids[batch->offset + i]);
    pt_builder_append_bytes(pt_builder_child(b, 0), v, n);
    pt_builder_append_row(b);
  }
  rc = pt_builder_finish(b, out, err);
  pt_builder_free(b);
  return rc;
}
PT_REGISTER_FN(to_values)

static int count_prefix(char **vals, int n, const char *prefix) {
  int c = 0;
  for (int i = 0; i < n; i++) c += strncmp(vals[i], prefix, strlen(prefix)) == 0;
  return c;
}

static void values_schema(struct ArrowSchema *s) {
  pt_error err;
  pt_schema_init(s, "+s", "", 0, 1, &err);
  pt_schema_init(s->children[0], "u", "value", 0, 0, &err);
}

static void test_write_twice_once(void **state) {
  (void)state;
  assert_int_equal(pt_test_kafka_create_topic(&g_k, "out", 1), 0);
  pt_kafka_options o;
  opts(&o);
  pt_error err;
  pt_dataset *r, *ds;
  assert_int_equal(pt_range(g_s, 0, 100, 3, &r, &err), PT_OK);
  struct ArrowSchema vs;
  values_schema(&vs);
  int tag = 7;
  assert_int_equal(pt_map_batches(r, to_values, &vs, &tag, sizeof tag, &ds, &err), PT_OK);
  if (pt_write_kafka(ds, &o, "out", "q1", 0, &err) != PT_OK) fail_msg("%s", err.message);
  pt_job_stats *st;
  pt_stage_stats tot;
  assert_int_equal(pt_dataset_last_job(ds, &st, &err), PT_OK);
  pt_job_stats_total(st, &tot);
  assert_int_equal(tot.rows_written, 100);
  pt_job_stats_free(st);
  /* The same batch again: every partition sees its marker, nothing goes out. */
  if (pt_write_kafka(ds, &o, "out", "q1", 0, &err) != PT_OK) fail_msg("%s", err.message);
  assert_int_equal(pt_dataset_last_job(ds, &st, &err), PT_OK);
  pt_job_stats_total(st, &tot);
  assert_int_equal(tot.rows_written, 0);
  pt_job_stats_free(st);
  /* The next batch goes out. */
  tag = 8;
  pt_dataset *ds2;
  assert_int_equal(pt_map_batches(r, to_values, &vs, &tag, sizeof tag, &ds2, &err), PT_OK);
  if (pt_write_kafka(ds2, &o, "out", "q1", 1, &err) != PT_OK) fail_msg("%s", err.message);
  char *vals[512];
  int64_t offs[512];
  int n = pt_test_kafka_consume(&g_k, "out", 0, vals, offs, 512);
  assert_int_equal(n, 200);
  assert_int_equal(count_prefix(vals, n, "w7-"), 100);
  assert_int_equal(count_prefix(vals, n, "w8-"), 100);
  for (int i = 0; i < 100; i++) { /* each id once */
    char w[16];
    snprintf(w, sizeof w, "w7-%d", i);
    int c = 0;
    for (int j = 0; j < n; j++) c += strcmp(vals[j], w) == 0;
    assert_int_equal(c, 1);
  }
  for (int i = 0; i < n; i++) free(vals[i]);
  vs.release(&vs);
  pt_dataset_free(ds2);
  pt_dataset_free(ds);
  pt_dataset_free(r);
}

/* Emits the partition's ids as values in two batches; the first attempt of
 * partition 0 kills its executor between them, so its transaction holds
 * produced records that were never committed. */
static int emit_then_die(const pt_task_context *ctx, struct ArrowArrayStream *in, const void *arg, size_t arg_size,
                         pt_error *err) {
  struct ArrowArray batch;
  while (in->get_next(in, &batch) == 0 && batch.release) {
    int64_t half = batch.length / 2;
    for (int k = 0; k < 2; k++) {
      struct ArrowArray part, out;
      pt_array_slice(&batch, k == 0 ? 0 : half, k == 0 ? half : batch.length - half, &part, err);
      int tag = 9;
      int rc = to_values(ctx, NULL, &part, &out, &tag, sizeof tag, err);
      part.release(&part);
      if (rc == PT_OK) rc = pt_ctx_emit(ctx, &out, err);
      if (rc != PT_OK) {
        batch.release(&batch);
        return rc;
      }
      if (k == 0 && ctx->partition == 0 && ctx->attempt == 0) {
        struct timespec ts = {1, 0}; /* the producer sends what it holds */
        nanosleep(&ts, NULL);
        raise(SIGKILL);
      }
    }
    batch.release(&batch);
  }
  (void)arg;
  (void)arg_size;
  return PT_OK;
}
PT_REGISTER_FN(emit_then_die)

static void test_write_killed_writer(void **state) {
  (void)state;
  assert_int_equal(pt_test_kafka_create_topic(&g_k, "killed", 1), 0);
  pt_kafka_options o;
  opts(&o);
  pt_error err;
  pt_dataset *r, *ds;
  assert_int_equal(pt_range(g_s, 0, 40, 2, &r, &err), PT_OK);
  struct ArrowSchema vs;
  values_schema(&vs);
  assert_int_equal(pt_map_partitions(r, emit_then_die, &vs, NULL, 0, &ds, &err), PT_OK);
  if (pt_write_kafka(ds, &o, "killed", "q2", 5, &err) != PT_OK) fail_msg("%s", err.message);
  pt_job_stats *st;
  pt_stage_stats tot;
  assert_int_equal(pt_dataset_last_job(ds, &st, &err), PT_OK);
  pt_job_stats_total(st, &tot);
  assert_true(tot.failed_by_cause[PT_CAUSE_EXECUTOR_LOST] >= 1); /* the kill happened */
  pt_job_stats_free(st);
  char *vals[256];
  int64_t offs[256];
  int n = pt_test_kafka_consume(&g_k, "killed", 0, vals, offs, 256);
  assert_int_equal(n, 40);
  for (int i = 0; i < 40; i++) {
    char w[16];
    snprintf(w, sizeof w, "w9-%d", i);
    int c = 0;
    for (int j = 0; j < n; j++) c += strcmp(vals[j], w) == 0;
    assert_int_equal(c, 1);
  }
  /* The killed attempt's records are in the log, aborted: more offsets than
   * committed records. */
  assert_true(offs[n - 1] >= 40 + 10);
  for (int i = 0; i < n; i++) free(vals[i]);
  /* And a rerun of the batch writes nothing. */
  pt_dataset *ds2;
  assert_int_equal(pt_map_batches(r, to_values, &vs, &(int){9}, sizeof(int), &ds2, &err), PT_OK);
  if (pt_write_kafka(ds2, &o, "killed", "q2", 5, &err) != PT_OK) fail_msg("%s", err.message);
  assert_int_equal(pt_dataset_last_job(ds2, &st, &err), PT_OK);
  pt_job_stats_total(st, &tot);
  assert_int_equal(tot.rows_written, 0);
  pt_job_stats_free(st);
  vs.release(&vs);
  pt_dataset_free(ds2);
  pt_dataset_free(ds);
  pt_dataset_free(r);
}

static void test_broker_away(void **state) {
  (void)state;
  char bs[64];
  snprintf(bs, sizeof bs, "127.0.0.1:%d", pt_test_kafka_free_port());
  pt_kafka_options o;
  pt_kafka_options_init(&o);
  o.bootstrap_servers = bs;
  o.max_retry_ms = 1500;
  o.timeout_ms = 500;
  pt_kafka_partition_offsets *po;
  int32_t n;
  pt_error err;
  time_t t0 = time(NULL);
  assert_int_equal(pt_kafka_topic_offsets(&o, "plain", &po, &n, &err), PT_ETIMEDOUT);
  assert_true(time(NULL) - t0 < 15); /* the configured time, generously */
  assert_non_null(strstr(err.message, bs));
  assert_non_null(strstr(err.message, "did not answer"));
}

/* value_format JSON: every column of a row becomes its record's value. */
static void test_write_json_values(void **state) {
  (void)state;
  assert_int_equal(pt_test_kafka_create_topic(&g_k, "json", 1), 0);
  pt_kafka_options o;
  opts(&o);
  o.value_format = PT_KAFKA_VALUE_JSON;
  pt_error err;
  pt_dataset *r;
  assert_int_equal(pt_range(g_s, 0, 40, 2, &r, &err), PT_OK);
  if (pt_write_kafka(r, &o, "json", "qj", 0, &err) != PT_OK) fail_msg("%s", err.message);
  char *vals[64];
  int64_t offs[64];
  int n = pt_test_kafka_consume(&g_k, "json", 0, vals, offs, 64);
  assert_int_equal(n, 40);
  for (int i = 0; i < 40; i++) { /* each id once */
    char w[32];
    snprintf(w, sizeof w, "{\"id\":%d}", i);
    int c = 0;
    for (int j = 0; j < n; j++) c += strcmp(vals[j], w) == 0;
    assert_int_equal(c, 1);
  }
  for (int i = 0; i < n; i++) free(vals[i]);
  o.value_format = 7;
  assert_int_equal(pt_write_kafka(r, &o, "json", "qj", 1, &err), PT_EINVAL);
  assert_string_equal(err.message, "write_kafka: value_format 7 is not PT_KAFKA_VALUE_COLUMN "
                                   "(0) or PT_KAFKA_VALUE_JSON (1)");
  pt_dataset_free(r);
}

static void test_bad_input(void **state) {
  (void)state;
  pt_kafka_options o;
  opts(&o);
  pt_error err;
  pt_dataset *ds;
  int32_t part = 0;
  int64_t start = 5, end = 3;
  assert_int_equal(pt_read_kafka(g_s, &o, "plain", &part, &start, &end, 1, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "not a range of offsets"));
  pt_kafka_partition_offsets *po;
  int32_t n;
  assert_int_equal(pt_kafka_topic_offsets(&o, "no-such-topic", &po, &n, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "does not exist"));
  const char *k[] = {"no.such.property"}, *v[] = {"1"};
  o.property_keys = k;
  o.property_values = v;
  o.n_properties = 1;
  assert_int_equal(pt_kafka_topic_offsets(&o, "plain", &po, &n, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "no.such.property"));
  opts(&o);
  pt_dataset *r;
  assert_int_equal(pt_range(g_s, 0, 10, 1, &r, &err), PT_OK);
  assert_int_equal(pt_write_kafka(r, &o, "out", "q", 0, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "no 'value' column"));
  pt_dataset_free(r);
}

int main(void) {
  pt_test_kafka probe;
  (void)probe;
  if (access("/usr/bin/java", X_OK) != 0) {
    printf("skipped: Java is not installed (scripts/setup.sh installs it)\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_offsets_and_range_read),
      cmocka_unit_test(test_read_committed_skips_aborted),
      cmocka_unit_test(test_write_twice_once),
      cmocka_unit_test(test_write_killed_writer),
      cmocka_unit_test(test_broker_away),
      cmocka_unit_test(test_write_json_values),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
