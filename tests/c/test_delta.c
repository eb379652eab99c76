/* test_delta.c — the Delta module without executors: the log's JSON parser
 * (exact errors, every truncation and random byte flips of a real commit
 * survived, allocation failures), the Delta <-> Arrow type mapping both
 * ways, dates and timestamps as the log spells them, log replay over
 * hand-written logs (add/remove, a later metaData, missing and damaged
 * files named in the error), the protocol check and replace_where's
 * row-by-row evaluation (three-valued logic over nulls).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "delta/delta.h"
#include "parquet/parquet.h"

static const char COMMIT[] =
    "{\"commitInfo\":{\"timestamp\":1700000000000,\"operation\":\"WRITE\"}}\n"
    "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n"
    "{\"metaData\":{\"id\":\"t1\",\"format\":{\"provider\":\"parquet\",\"options\":{}},"
    "\"schemaString\":\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[{\\\"name\\\":\\\"id\\\","
    "\\\"type\\\":\\\"long\\\",\\\"nullable\\\":true,\\\"metadata\\\":{}},{\\\"name\\\":\\\"p\\\","
    "\\\"type\\\":\\\"string\\\",\\\"nullable\\\":true,\\\"metadata\\\":{}}]}\","
    "\"partitionColumns\":[\"p\"],\"configuration\":{},\"createdTime\":1}}\n"
    "{\"add\":{\"path\":\"p=a/f%201.parquet\",\"partitionValues\":{\"p\":\"a\"},\"size\":10,"
    "\"modificationTime\":1,\"dataChange\":true,\"stats\":\"{\\\"numRecords\\\":3}\"}}\n"
    "{\"add\":{\"path\":\"p=__HIVE_DEFAULT_PARTITION__/f2.parquet\",\"partitionValues\":{\"p\":null},"
    "\"size\":20,\"modificationTime\":1,\"dataChange\":true}}\n";

static void test_json_values(void **state) {
  (void)state;
  pt_error err;
  pt__json *j;
  const char *text = " {\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {}} ";
  assert_int_equal(pt__json_parse(text, (int64_t)strlen(text), &j, &err), PT_OK);
  const pt__json *a = pt__json_get(j, "a");
  assert_non_null(a);
  assert_int_equal(a->n, 6);
  assert_true(a->items[0]->is_int);
  assert_int_equal(a->items[0]->i, 1);
  assert_false(a->items[1]->is_int);
  assert_true(a->items[1]->d == -2500.0);
  assert_true(a->items[2]->b);
  assert_int_equal(a->items[4]->type, PT__JSON_NULL);
  assert_string_equal(a->items[5]->str, "x\xc3\xa9\xf0\x9f\x98\x80\n");
  assert_int_equal(pt__json_get(j, "b")->type, PT__JSON_OBJECT);
  assert_null(pt__json_get(j, "c"));
  pt__json_free(j);

  static const struct { const char *text, *msg; } bad[] = {
      {"", "bad JSON at byte 0: expected a value"},
      {"{\"a\" 1}", "bad JSON at byte 5: expected ':'"},
      {"[1, 2", "bad JSON at byte 5: unterminated array or object"},
      {"\"abc", "bad JSON at byte 4: unterminated string"},
      {"01", "bad JSON at byte 1: text after the value"},
      {"-", "bad JSON at byte 0: bad number"},
      {"\"\\q\"", "bad JSON at byte 3: unknown escape"},
      {"\"\\u12zz\"", "bad JSON at byte 3: bad \\u escape"},
      {"\"\\u12\"", "bad JSON at byte 3: truncated \\u escape"},
      {"nul", "bad JSON at byte 0: unexpected character"},
      {"{1: 2}", "bad JSON at byte 1: expected a member name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(pt__json_parse(bad[i].text, (int64_t)strlen(bad[i].text), &j, &err), PT_EFORMAT);
    assert_string_equal(err.message, bad[i].msg);
  }
  char deep[200];
  memset(deep, '[', sizeof deep);
  assert_int_equal(pt__json_parse(deep, sizeof deep, &j, &err), PT_EFORMAT);
  assert_non_null(strstr(err.message, "nested too deep"));

  pt_buf b = {0};
  assert_int_equal(pt__json_put_string(&b, "a\"b\\c\n\x01", -1), PT_OK);
  assert_int_equal((int)b.len, 21);
  assert_memory_equal(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\"", 21);
  pt_buf_free(&b);
}

/* Every prefix and many random corruptions of a real commit: parsed or
 * refused, never a crash (ASan checks the reads). */
static void test_json_garbage(void **state) {
  (void)state;
  size_t n = strlen(COMMIT);
  char *buf = malloc(n);
  assert_non_null(buf);
  for (size_t cut = 0; cut < n; cut++) {
    pt_error err;
    pt__json *j = NULL;
    memcpy(buf, COMMIT, cut); /* exactly cut bytes: no terminator to lean on */
    int rc = pt__json_parse(buf, (int64_t)cut, &j, &err);
    assert_true(rc == PT_OK || rc == PT_EFORMAT);
    pt__json_free(j);
  }
  uint32_t seed = 12345;
  for (int round = 0; round < 20000; round++) {
    memcpy(buf, COMMIT, n);
    for (int k = 0; k < 4; k++) {
      seed = seed * 1103515245u + 12345u;
      buf[(seed >> 8) % n] = (char)(seed >> 24);
    }
    const char *p = buf;
    for (const char *nl; (nl = memchr(p, '\n', (size_t)(buf + n - p))) != NULL; p = nl + 1) {
      pt_error err;
      pt__json *j = NULL;
      int rc = pt__json_parse(p, nl - p, &j, &err);
      assert_true(rc == PT_OK || rc == PT_EFORMAT);
      pt__json_free(j);
    }
  }
  free(buf);
}

static void test_json_allocation_failures(void **state) {
  (void)state;
  const char *text = "{\"add\":{\"path\":\"a\",\"partitionValues\":{\"p\":\"x\"},\"n\":[1,2,3]}}";
  for (int64_t k = 0;; k++) {
    pt_error err;
    pt__json *j = NULL;
    pt__alloc_fail_after(k);
    int rc = pt__json_parse(text, (int64_t)strlen(text), &j, &err);
    pt__alloc_fail_after(-1);
    if (rc == PT_OK) {
      pt__json_free(j);
      break;
    }
    assert_int_equal(rc, PT_ENOMEM);
    assert_true(k < 1000);
  }
}

static void test_types_both_ways(void **state) {
  (void)state;
  const char *schema =
      "{\"type\":\"struct\",\"fields\":["
      "{\"name\":\"a\",\"type\":\"byte\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"b\",\"type\":\"short\",\"nullable\":false,\"metadata\":{}},"
      "{\"name\":\"c\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"d\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"e\",\"type\":\"float\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"f\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"g\",\"type\":\"boolean\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"h\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"i\",\"type\":\"binary\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"j\",\"type\":\"date\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"k\",\"type\":\"timestamp\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"l\",\"type\":\"timestamp_ntz\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"m\",\"type\":\"decimal(38,10)\",\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"n\",\"type\":{\"type\":\"array\",\"elementType\":\"integer\",\"containsNull\":false},\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"o\",\"type\":{\"type\":\"map\",\"keyType\":\"string\",\"valueType\":{\"type\":\"array\",\"elementType\":\"long\",\"containsNull\":true},\"valueContainsNull\":true},\"nullable\":true,\"metadata\":{}},"
      "{\"name\":\"p\",\"type\":{\"type\":\"struct\",\"fields\":[{\"name\":\"x\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}}]},\"nullable\":true,\"metadata\":{}}]}";
  pt_error err;
  struct ArrowSchema a;
  assert_int_equal(pt__delta_schema_to_arrow(schema, &a, &err), PT_OK);
  char name[1024];
  pt_type_name(&a, name, sizeof name);
  static const char *const formats[] = {"c", "s", "i", "l", "f", "g", "b", "u", "z", "tdD",
                                        "tsu:UTC", "tsu:", "d:38,10", "+l", "+m", "+s"};
  assert_int_equal(a.n_children, 16);
  for (int i = 0; i < 16; i++) assert_string_equal(a.children[i]->format, formats[i]);
  assert_int_equal(a.children[1]->flags & ARROW_FLAG_NULLABLE, 0);
  assert_int_equal(a.children[13]->children[0]->flags & ARROW_FLAG_NULLABLE, 0);
  assert_string_equal(a.children[14]->children[0]->children[1]->format, "+l");
  /* Back to Delta and to Arrow again: the same types. */
  pt_buf b = {0};
  assert_int_equal(pt__delta_schema_from_arrow(&a, &b, &err), PT_OK);
  assert_int_equal(pt__buf_putc(&b, '\0'), PT_OK);
  struct ArrowSchema a2;
  assert_int_equal(pt__delta_schema_to_arrow(b.data, &a2, &err), PT_OK);
  char name2[1024];
  pt_type_name(&a2, name2, sizeof name2);
  assert_string_equal(name, name2);
  pt_buf_free(&b);
  a2.release(&a2);
  a.release(&a);

  assert_int_equal(pt__delta_schema_to_arrow(
                       "{\"type\":\"struct\",\"fields\":[{\"name\":\"v\",\"type\":\"variant\"}]}", &a, &err),
                   PT_ENOTSUP);
  assert_string_equal(err.message, "column 'v' has the Delta type 'variant', which protium cannot read");
  assert_int_equal(pt__delta_schema_to_arrow("[1]", &a, &err), PT_EFORMAT);
  assert_string_equal(err.message, "schemaString: not a struct type");

  struct ArrowSchema u;
  assert_int_equal(pt_schema_init(&u, "+s", "", 0, 1, &err), PT_OK);
  assert_int_equal(pt_schema_init(u.children[0], "tsn:", "t", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt_buf b2 = {0};
  assert_int_equal(pt__delta_schema_from_arrow(&u, &b2, &err), PT_ENOTSUP);
  assert_string_equal(err.message, "column 't' has type timestamp[ns], which a Delta table cannot "
                                   "hold; cast it to timestamp[us] (Delta keeps microseconds)");
  pt_buf_free(&b2);
  u.release(&u);
}

static void test_dates_and_values(void **state) {
  (void)state;
  int64_t v;
  assert_true(pt__delta_parse_date("1970-01-01", &v) && v == 0);
  assert_true(pt__delta_parse_date("1969-12-31", &v) && v == -1);
  assert_true(pt__delta_parse_date("2000-03-01", &v) && v == 11017);
  assert_true(pt__delta_parse_date("0001-01-01", &v) && v == -719162);
  assert_false(pt__delta_parse_date("2000-13-01", &v));
  assert_false(pt__delta_parse_date("2000-01-01x", &v));
  assert_true(pt__delta_parse_timestamp("1970-01-01 00:00:01.5", &v) && v == 1500000);
  assert_true(pt__delta_parse_timestamp("1970-01-01T00:00:00.000001Z", &v) && v == 1);
  assert_true(pt__delta_parse_timestamp("1969-12-31 23:59:59.999999", &v) && v == -1);
  assert_true(pt__delta_parse_timestamp("1970-01-01T01:00:00+01:00", &v) && v == 0);
  assert_false(pt__delta_parse_timestamp("1970-01-01 25:00:00", &v));
  assert_false(pt__delta_parse_timestamp("2020020-01-01T00:00:00.000Z", &v)); /* past int64 µs */
  assert_true(pt__delta_parse_date("2020020-01-01", &v));
  pt_error err;
  char *out;
  /* The text the engine's partition columns parse, as Hive's directories give it. */
  assert_int_equal(pt__delta_partition_value("b", "True", &out, &err), PT_OK);
  assert_string_equal(out, "true");
  pt__free(out);
  assert_int_equal(pt__delta_partition_value("tdD", "2000-3-01", &out, &err), PT_EFORMAT);
  assert_int_equal(pt__delta_partition_value("tdD", "2000-03-01", &out, &err), PT_OK);
  assert_string_equal(out, "2000-03-01");
  pt__free(out);
  assert_int_equal(pt__delta_partition_value("tsu:UTC", "1970-01-01 00:00:01", &out, &err), PT_OK);
  assert_string_equal(out, "1970-01-01 00:00:01.000000");
  pt__free(out);
  assert_int_equal(pt__delta_partition_value("tsu:UTC", "1970-01-01T00:59:59.5+01:00", &out, &err),
                   PT_OK);
  assert_string_equal(out, "1969-12-31 23:59:59.500000");
  pt__free(out);
  assert_int_equal(pt__delta_partition_value("c", "128", &out, &err), PT_EFORMAT);
  assert_int_equal(pt__delta_partition_value("z", "\x01\x02", &out, &err), PT_OK);
  assert_string_equal(out, "\x01\x02");
  pt__free(out);
  assert_int_equal(pt__delta_partition_value("i", "12x", &out, &err), PT_EFORMAT);
  assert_string_equal(err.message, "partition value '12x' is not a value of its column's type");
}

/* ------------------------------------------------------------------------ */
/* Log replay over hand-written logs */

static char table[256];

static void put(const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/_delta_log/%s", table, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int make_table(void **state) {
  (void)state;
  snprintf(table, sizeof table, "/tmp/pt-test-delta-XXXXXX");
  assert_non_null(mkdtemp(table));
  char log[300];
  snprintf(log, sizeof log, "%s/_delta_log", table);
  assert_int_equal(mkdir(log, 0755), 0);
  return 0;
}

static int remove_table(void **state) {
  (void)state;
  pt__rm_rf(table);
  return 0;
}

static void test_replay(void **state) {
  (void)state;
  put("00000000000000000000.json", COMMIT);
  put("00000000000000000001.json",
      "{\"remove\":{\"path\":\"p=a/f%201.parquet\",\"dataChange\":true}}\n"
      "{\"add\":{\"path\":\"p=b/f3.parquet\",\"partitionValues\":{\"p\":\"b\"},\"size\":5,"
      "\"modificationTime\":1,\"dataChange\":true}}\n"
      "\n");
  pt_error err;
  pt__delta_snapshot s;
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &s, &err), PT_OK);
  assert_int_equal(s.version, 1);
  assert_int_equal(s.checkpoint, -1);
  assert_int_equal(s.n_files, 2);
  assert_string_equal(s.files[0].path, "p=__HIVE_DEFAULT_PARTITION__/f2.parquet");
  assert_null(s.files[0].values[0]);
  assert_string_equal(s.files[1].path, "p=b/f3.parquet");
  assert_string_equal(s.files[1].values[0], "b");
  assert_int_equal(s.n_partition_columns, 1);
  assert_int_equal(pt__delta_check_protocol(&s, true, &err), PT_OK);
  pt__delta_snapshot_free(&s);

  assert_int_equal(pt__delta_snapshot_load(table, 0, INT64_MIN, &s, &err), PT_OK);
  assert_int_equal(s.n_files, 2);
  assert_string_equal(s.files[0].path, "p=a/f%201.parquet");
  assert_string_equal(s.files[0].stats, "{\"numRecords\":3}");
  char *p = pt__delta_unescape_path(s.files[0].path);
  assert_string_equal(p, "p=a/f 1.parquet");
  pt__free(p);
  pt__delta_snapshot_free(&s);

  int64_t latest;
  assert_int_equal(pt__delta_latest_version(table, &latest, &err), PT_OK);
  assert_int_equal(latest, 1);

  /* Damage: an add without a path, then a file that is not JSON. */
  put("00000000000000000002.json", "{\"add\":{\"size\":1}}\n");
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &s, &err), PT_EFORMAT);
  assert_non_null(strstr(err.message, "00000000000000000002.json' line 1: an add action without a path"));
  put("00000000000000000002.json", "{\"commitInfo\":{}}\n{\"add\":{\"path\":\"x\",}}\n");
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &s, &err), PT_EFORMAT);
  assert_non_null(strstr(err.message, "00000000000000000002.json' line 2: bad JSON at byte 19: expected a member name"));
  /* A deletion vector on an add is refused by name. */
  put("00000000000000000002.json",
      "{\"add\":{\"path\":\"x\",\"deletionVector\":{\"storageType\":\"u\"}}}\n");
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &s, &err), PT_ENOTSUP);
  assert_non_null(strstr(err.message, "deletionVectors"));
  /* A gap in the commits. */
  char path[512];
  snprintf(path, sizeof path, "%s/_delta_log/00000000000000000002.json", table);
  unlink(path);
  put("00000000000000000003.json", "{\"commitInfo\":{}}\n");
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &s, &err), PT_EFORMAT);
  assert_non_null(strstr(err.message, "00000000000000000002.json' is missing"));
  assert_int_equal(pt__delta_snapshot_load(table, 7, INT64_MIN, &s, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "has no version 7; its latest is 3"));
}

/* A checkpoint protium writes replays to the same state without the
 * commits before it: files, values, stats, configuration, protocol. */
static void test_checkpoint_round_trip(void **state) {
  (void)state;
  put("00000000000000000000.json", COMMIT);
  put("00000000000000000001.json",
      "{\"protocol\":{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":"
      "[\"timestampNtz\"],\"writerFeatures\":[\"timestampNtz\",\"appendOnly\"]}}\n"
      "{\"metaData\":{\"id\":\"t1\",\"format\":{\"provider\":\"parquet\"},\"schemaString\":"
      "\"{\\\"type\\\":\\\"struct\\\",\\\"fields\\\":[{\\\"name\\\":\\\"id\\\",\\\"type\\\":"
      "\\\"long\\\",\\\"nullable\\\":true,\\\"metadata\\\":{}},{\\\"name\\\":\\\"p\\\","
      "\\\"type\\\":\\\"string\\\",\\\"nullable\\\":true,\\\"metadata\\\":{}}]}\","
      "\"partitionColumns\":[\"p\"],\"configuration\":{\"delta.appendOnly\":\"true\","
      "\"delta.checkpointInterval\":\"5\"},\"createdTime\":7}}\n");
  pt_error err;
  pt__delta_snapshot s, t;
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &s, &err), PT_OK);
  assert_int_equal(pt__delta_checkpoint_interval(&s), 5);
  assert_int_equal(pt__delta_checkpoint_write(table, &s, &err), PT_OK);
  char path[512];
  for (int v = 0; v < 2; v++) {
    snprintf(path, sizeof path, "%s/_delta_log/%020d.json", table, v);
    assert_int_equal(unlink(path), 0);
  }
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &t, &err), PT_OK);
  assert_int_equal(t.version, 1);
  assert_int_equal(t.checkpoint, 1);
  assert_int_equal(t.n_files, s.n_files);
  for (int64_t i = 0; i < s.n_files; i++) {
    assert_string_equal(t.files[i].path, s.files[i].path);
    assert_int_equal(t.files[i].size, s.files[i].size);
    assert_int_equal(t.files[i].mtime, 1);
    if (s.files[i].values[0]) assert_string_equal(t.files[i].values[0], s.files[i].values[0]);
    else assert_null(t.files[i].values[0]);
    if (s.files[i].stats) assert_string_equal(t.files[i].stats, s.files[i].stats);
    else assert_null(t.files[i].stats);
  }
  assert_string_equal(t.schema_string, s.schema_string);
  assert_true(t.append_only);
  assert_int_equal(t.created_time, 7);
  assert_int_equal(t.n_config, 2);
  assert_int_equal(pt__delta_checkpoint_interval(&t), 5);
  assert_int_equal(t.min_reader, 3);
  assert_int_equal(t.n_writer_features, 2);
  assert_string_equal(t.writer_features[1], "appendOnly");
  pt__delta_snapshot_free(&t);
  pt__delta_snapshot_free(&s);

  /* txn actions would be lost: refused. */
  put("00000000000000000002.json", "{\"txn\":{\"appId\":\"a\",\"version\":3}}\n");
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &s, &err), PT_OK);
  assert_int_equal(pt__delta_checkpoint_write(table, &s, &err), PT_ENOTSUP);
  assert_non_null(strstr(err.message, "txn or domainMetadata"));
  pt__delta_snapshot_free(&s);
}

static void test_no_metadata_and_not_a_table(void **state) {
  (void)state;
  put("00000000000000000000.json", "{\"protocol\":{\"minReaderVersion\":1,\"minWriterVersion\":2}}\n");
  pt_error err;
  pt__delta_snapshot s;
  assert_int_equal(pt__delta_snapshot_load(table, -1, INT64_MIN, &s, &err), PT_EFORMAT);
  assert_non_null(strstr(err.message, "has no metaData action up to version 0"));
  assert_int_equal(pt__delta_snapshot_load("/nonexistent/t", -1, INT64_MIN, &s, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "is not a Delta table: it has no _delta_log directory"));
}

static void test_protocol_features(void **state) {
  (void)state;
  pt__delta_snapshot s = {0};
  char *rf[] = {"timestampNtz", "v2Checkpoint"};
  pt_error err;
  s.min_reader = 3;
  s.min_writer = 7;
  s.reader_features = rf;
  s.n_reader_features = 1;
  assert_int_equal(pt__delta_check_protocol(&s, false, &err), PT_OK);
  s.n_reader_features = 2;
  assert_int_equal(pt__delta_check_protocol(&s, false, &err), PT_ENOTSUP);
  assert_string_equal(err.message, "the table uses the Delta reader feature 'v2Checkpoint', which "
                                   "protium does not support");
  s.n_reader_features = 0;
  char *wf[] = {"appendOnly", "generatedColumns"};
  s.writer_features = wf;
  s.n_writer_features = 2;
  assert_int_equal(pt__delta_check_protocol(&s, false, &err), PT_OK);
  assert_int_equal(pt__delta_check_protocol(&s, true, &err), PT_ENOTSUP);
  assert_string_equal(err.message, "the table uses the Delta writer feature 'generatedColumns', "
                                   "which protium does not support");
}

/* id: 1, null, 5, 7 (int64); s: "a", "b", null, "a" (utf8); u: uint64
 * max, 0, 1, 2. */
static void where_batch(struct ArrowSchema *schema, struct ArrowArray *batch) {
  pt_error err;
  assert_int_equal(pt_schema_init(schema, "+s", "", 0, 3, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema->children[0], "l", "id", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema->children[1], "u", "s", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema->children[2], "L", "u", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt_builder *b;
  assert_int_equal(pt_builder_new(schema, &b, &err), PT_OK);
  const int64_t ids[] = {1, -1, 5, 7};
  const char *ss[] = {"a", "b", NULL, "a"};
  const uint64_t us[] = {UINT64_MAX, 0, 1, 2};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(i == 1 ? pt_builder_append_null(pt_builder_child(b, 0), 1)
                            : pt_builder_append_int(pt_builder_child(b, 0), ids[i]), PT_OK);
    assert_int_equal(ss[i] ? pt_builder_append_bytes(pt_builder_child(b, 1), ss[i], 1)
                           : pt_builder_append_null(pt_builder_child(b, 1), 1), PT_OK);
    assert_int_equal(pt_builder_append_uint(pt_builder_child(b, 2), us[i]), PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  assert_int_equal(pt_builder_finish(b, batch, &err), PT_OK);
  pt_builder_free(b);
}

static void test_where_rows(void **state) {
  (void)state;
  struct ArrowSchema sc;
  struct ArrowArray batch;
  where_batch(&sc, &batch);
  pt_error err;
  uint8_t out[4];
  const int64_t two[] = {2}, zero[] = {0};
  const char *a[] = {"a"};
  pt_parquet_filter *gt, *eq, *or_, *gt2, *eq2, *and_, *isn, *neg, *str_int;
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_GT, two, 1, &gt, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_bytes("s", PT_PARQUET_EQ, a, NULL, 1, &eq, &err), PT_OK);
  /* id > 2: NULL for the null id, which does not match. */
  assert_int_equal(pt__filter_eval_rows(gt, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){0, 0, 1, 1}), 4);
  /* OR: TRUE wins over NULL; NULL OR FALSE stays NULL (no match). */
  assert_int_equal(pt_parquet_filter_combine(PT_PARQUET_OR, gt, eq, &or_, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(or_, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){1, 0, 1, 1}), 4);
  /* AND: FALSE wins over NULL. */
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_GT, two, 1, &gt2, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_bytes("s", PT_PARQUET_EQ, a, NULL, 1, &eq2, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_combine(PT_PARQUET_AND, gt2, eq2, &and_, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(and_, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){0, 0, 0, 1}), 4);
  /* IS NULL is never NULL; a column the batch lacks is null throughout. */
  assert_int_equal(pt_parquet_filter_is_null("s", &isn, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(isn, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){0, 0, 1, 0}), 4);
  pt_parquet_filter_free(isn);
  assert_int_equal(pt_parquet_filter_is_null("later", &isn, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(isn, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){1, 1, 1, 1}), 4);
  assert_string_equal(pt__filter_unknown_column(isn, &sc), "later");
  assert_null(pt__filter_unknown_column(and_, &sc));
  /* Unsigned columns against a signed literal: UINT64_MAX is not below 0. */
  assert_int_equal(pt_parquet_filter_int("u", PT_PARQUET_GT, zero, 1, &neg, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(neg, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){1, 0, 1, 1}), 4);
  /* A string column against a number: refused, naming it. */
  assert_int_equal(pt_parquet_filter_int("s", PT_PARQUET_EQ, two, 1, &str_int, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(str_int, &sc, &batch, out, &err), PT_EINVAL);
  assert_string_equal(err.message, "replace_where compares column 's' (utf8) with a number; "
                      "compare it with a value of its own type");
  pt_parquet_filter_free(or_);
  pt_parquet_filter_free(and_);
  pt_parquet_filter_free(isn);
  pt_parquet_filter_free(neg);
  pt_parquet_filter_free(str_int);
  batch.release(&batch);
  sc.release(&sc);
}

/* NE, NOT IN and IS NOT NULL row by row: a null is neither != nor NOT IN
 * anything (NULL, no match); IS NOT NULL is never NULL. */
static void test_where_rows_not_ops(void **state) {
  (void)state;
  struct ArrowSchema sc;
  struct ArrowArray batch;
  where_batch(&sc, &batch); /* id: 1, null, 5, 7; s: "a", "b", null, "a" */
  pt_error err;
  uint8_t out[4];
  const int64_t five[] = {5}, one_seven[] = {1, 7};
  const double five_d[] = {5.0};
  const char *a[] = {"a"};
  pt_parquet_filter *f;
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_NE, five, 1, &f, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(f, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){1, 0, 0, 1}), 4);
  pt_parquet_filter_free(f);
  assert_int_equal(pt_parquet_filter_double("id", PT_PARQUET_NE, five_d, 1, &f, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(f, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){1, 0, 0, 1}), 4);
  pt_parquet_filter_free(f);
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_NOT_IN, one_seven, 2, &f, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(f, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){0, 0, 1, 0}), 4);
  pt_parquet_filter_free(f);
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_NOT_IN, NULL, 0, &f, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(f, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){1, 0, 1, 1}), 4);
  pt_parquet_filter_free(f);
  assert_int_equal(pt_parquet_filter_bytes("s", PT_PARQUET_NE, a, NULL, 1, &f, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(f, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){0, 1, 0, 0}), 4);
  pt_parquet_filter_free(f);
  assert_int_equal(pt_parquet_filter_is_not_null("s", &f, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(f, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){1, 1, 0, 1}), 4);
  pt_parquet_filter_free(f);
  /* A column the batch lacks is null throughout: never NOT NULL, never !=. */
  assert_int_equal(pt_parquet_filter_is_not_null("later", &f, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(f, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){0, 0, 0, 0}), 4);
  pt_parquet_filter_free(f);
  assert_int_equal(pt_parquet_filter_int("later", PT_PARQUET_NE, five, 1, &f, &err), PT_OK);
  assert_int_equal(pt__filter_eval_rows(f, &sc, &batch, out, &err), PT_OK);
  assert_memory_equal(out, ((uint8_t[]){0, 0, 0, 0}), 4);
  pt_parquet_filter_free(f);
  batch.release(&batch);
  sc.release(&sc);
}

/* NE, NOT IN and IS NOT NULL against a file's stats: must match (every
 * literal outside [min, max], no null) and may match (only min == max ==
 * a literal with no null, or nulls alone, rule a file out). */
static void test_stats_not_ops(void **state) {
  (void)state;
  pt_error err;
  struct ArrowSchema sc;
  assert_int_equal(pt_schema_init(&sc, "+s", "", 0, 2, &err), PT_OK);
  assert_int_equal(pt_schema_init(sc.children[0], "l", "id", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(sc.children[1], "g", "x", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt__delta_snapshot snap = {0};
  char range[] = "{\"numRecords\":10,\"minValues\":{\"id\":3,\"x\":1.0},"
                 "\"maxValues\":{\"id\":9,\"x\":1.0},\"nullCount\":{\"id\":0,\"x\":0}}";
  char seven[] = "{\"numRecords\":10,\"minValues\":{\"id\":7},\"maxValues\":{\"id\":7},"
                 "\"nullCount\":{\"id\":0}}";
  char seven_nulls[] = "{\"numRecords\":10,\"minValues\":{\"id\":7},\"maxValues\":{\"id\":7},"
                       "\"nullCount\":{\"id\":2}}";
  char nulls[] = "{\"numRecords\":10,\"nullCount\":{\"id\":10}}";
  pt__delta_file file = {.path = "f.parquet", .stats = range};
  const int64_t two[] = {2}, seven_v[] = {7}, two_ten[] = {2, 10}, two_seven[] = {2, 7};
  const double one[] = {1.0};
  pt_parquet_filter *ne2, *ne7, *nin, *nin7, *nn, *xne;
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_NE, two, 1, &ne2, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_NE, seven_v, 1, &ne7, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_NOT_IN, two_ten, 2, &nin, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_NOT_IN, two_seven, 2, &nin7, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_is_not_null("id", &nn, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_double("x", PT_PARQUET_NE, one, 1, &xne, &err), PT_OK);
  /* ids 3..9, no null. */
  assert_true(pt__delta_file_must_match(ne2, &snap, &file, &sc));
  assert_false(pt__delta_file_must_match(ne7, &snap, &file, &sc));
  assert_true(pt__delta_file_must_match(nin, &snap, &file, &sc));
  assert_false(pt__delta_file_must_match(nin7, &snap, &file, &sc));
  assert_true(pt__delta_file_must_match(nn, &snap, &file, &sc));
  assert_false(pt__delta_file_must_match(xne, &snap, &file, &sc)); /* floats prove nothing */
  assert_true(pt__delta_file_may_match(xne, &snap, &file, &sc)); /* x 1.0 may hide a NaN */
  assert_true(pt__delta_file_may_match(ne7, &snap, &file, &sc));
  /* 7 alone: != 7 and NOT IN (2, 7) rule it out. */
  file.stats = seven;
  assert_false(pt__delta_file_may_match(ne7, &snap, &file, &sc));
  assert_false(pt__delta_file_may_match(nin7, &snap, &file, &sc));
  assert_true(pt__delta_file_may_match(ne2, &snap, &file, &sc));
  assert_true(pt__delta_file_may_match(nn, &snap, &file, &sc));
  /* 7 and nulls: ruled out too (a null satisfies no comparison). */
  file.stats = seven_nulls;
  assert_false(pt__delta_file_may_match(ne7, &snap, &file, &sc));
  assert_false(pt__delta_file_may_match(nin7, &snap, &file, &sc));
  assert_true(pt__delta_file_may_match(ne2, &snap, &file, &sc));
  assert_false(pt__delta_file_must_match(nn, &snap, &file, &sc));
  assert_false(pt__delta_file_must_match(ne2, &snap, &file, &sc));
  /* Nulls alone: nothing matches but IS NULL. */
  file.stats = nulls;
  assert_false(pt__delta_file_may_match(ne2, &snap, &file, &sc));
  assert_false(pt__delta_file_may_match(nin, &snap, &file, &sc));
  assert_false(pt__delta_file_may_match(nn, &snap, &file, &sc));
  pt_parquet_filter_free(ne2);
  pt_parquet_filter_free(ne7);
  pt_parquet_filter_free(nin);
  pt_parquet_filter_free(nin7);
  pt_parquet_filter_free(nn);
  pt_parquet_filter_free(xne);
  sc.release(&sc);
}

/* Proofs from stats that every row of a file matches replace_where. */
static void test_stats_prove_whole_matches(void **state) {
  (void)state;
  pt_error err;
  struct ArrowSchema sc;
  assert_int_equal(pt_schema_init(&sc, "+s", "", 0, 3, &err), PT_OK);
  assert_int_equal(pt_schema_init(sc.children[0], "l", "id", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(sc.children[1], "u", "s", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(sc.children[2], "g", "x", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt__delta_snapshot snap = {0};
  char stats[] = "{\"numRecords\":10,\"minValues\":{\"id\":3,\"s\":\"b\",\"x\":1.0},"
                 "\"maxValues\":{\"id\":9,\"s\":\"b\",\"x\":2.0},"
                 "\"nullCount\":{\"id\":0,\"s\":0,\"x\":0}}";
  char with_null[] = "{\"numRecords\":10,\"minValues\":{\"id\":3},\"maxValues\":{\"id\":9},"
                     "\"nullCount\":{\"id\":1}}";
  pt__delta_file file = {.path = "f.parquet", .stats = stats};
  const int64_t three[] = {3}, four[] = {4}, nine[] = {9};
  const double one[] = {0.5};
  const char *b[] = {"b"}, *c[] = {"c"};
  pt_parquet_filter *ge3, *ge4, *le9, *eqb, *eqc, *xgt, *and_, *or_;
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_GE, three, 1, &ge3, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_GE, four, 1, &ge4, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_LE, nine, 1, &le9, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_bytes("s", PT_PARQUET_EQ, b, NULL, 1, &eqb, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_bytes("s", PT_PARQUET_EQ, c, NULL, 1, &eqc, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_double("x", PT_PARQUET_GT, one, 1, &xgt, &err), PT_OK);
  assert_true(pt__delta_file_must_match(ge3, &snap, &file, &sc));
  assert_false(pt__delta_file_must_match(ge4, &snap, &file, &sc)); /* id 3 is below */
  assert_true(pt__delta_file_must_match(eqb, &snap, &file, &sc));
  assert_false(pt__delta_file_must_match(eqc, &snap, &file, &sc));
  assert_false(pt__delta_file_must_match(xgt, &snap, &file, &sc)); /* floats prove nothing */
  assert_int_equal(pt_parquet_filter_combine(PT_PARQUET_AND, ge3, eqb, &and_, &err), PT_OK);
  assert_true(pt__delta_file_must_match(and_, &snap, &file, &sc));
  assert_int_equal(pt_parquet_filter_combine(PT_PARQUET_OR, ge4, eqc, &or_, &err), PT_OK);
  assert_false(pt__delta_file_must_match(or_, &snap, &file, &sc));
  file.stats = with_null; /* a null id does not match id <= 9 */
  assert_false(pt__delta_file_must_match(le9, &snap, &file, &sc));
  file.stats = NULL;
  assert_false(pt__delta_file_must_match(le9, &snap, &file, &sc));
  pt_parquet_filter_free(and_);
  pt_parquet_filter_free(or_);
  pt_parquet_filter_free(le9);
  pt_parquet_filter_free(xgt);
  sc.release(&sc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_values),
      cmocka_unit_test(test_json_garbage),
      cmocka_unit_test(test_json_allocation_failures),
      cmocka_unit_test(test_types_both_ways),
      cmocka_unit_test(test_dates_and_values),
      cmocka_unit_test_setup_teardown(test_replay, make_table, remove_table),
      cmocka_unit_test_setup_teardown(test_checkpoint_round_trip, make_table, remove_table),
      cmocka_unit_test_setup_teardown(test_no_metadata_and_not_a_table, make_table, remove_table),
      cmocka_unit_test(test_protocol_features),
      cmocka_unit_test(test_where_rows),
      cmocka_unit_test(test_stats_prove_whole_matches),
      cmocka_unit_test(test_where_rows_not_ops),
      cmocka_unit_test(test_stats_not_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
