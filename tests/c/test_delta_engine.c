/* test_delta_engine.c — Delta tables through the engine with real executor
 * processes (the Python tests hold the comparisons with deltalake): a
 * partitioned table written, its schema merged, partitions replaced by
 * replace_where (and rows by a replace_where on data columns), read back with its columns in the table's order and nulls
 * for the files that predate a column, filtered by partition and data
 * columns at once, and checkpointed at version 10 so that it reads without
 * the commits before; a small partitioned table dealt to both task slots.
 */
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
#include "protium.h"
#include "test_util.h"

static pt_session *S;
static char DIR_[256];
static char TABLE[300];

static int setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(DIR_, sizeof DIR_, "%s/pt-delta-engine-XXXXXX", tmp);
  if (mkdtemp(DIR_) == NULL) return -1;
  snprintf(TABLE, sizeof TABLE, "%s/t", DIR_);
  S = pt_test_session("local[2]", NULL, 0);
  return S ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  pt_session_close(S);
  pt__rm_rf(DIR_);
  return 0;
}

/* Rows first .. first + n - 1 in two partitions: id, part (part_of(id);
 * NULL: null) and, with_x, x = id / 2. */
static pt_dataset *rows(int64_t first, int64_t n, const char *(*part_of)(int64_t), bool with_x) {
  struct ArrowSchema schema;
  CHECK(pt_schema_init(&schema, "+s", "", 0, with_x ? 3 : 2, &err));
  CHECK(pt_schema_init(schema.children[0], "l", "id", ARROW_FLAG_NULLABLE, 0, &err));
  CHECK(pt_schema_init(schema.children[1], "u", "part", ARROW_FLAG_NULLABLE, 0, &err));
  if (with_x) CHECK(pt_schema_init(schema.children[2], "g", "x", ARROW_FLAG_NULLABLE, 0, &err));
  struct ArrowArray batches[2];
  for (int b = 0; b < 2; b++) {
    pt_builder *bl;
    CHECK(pt_builder_new(&schema, &bl, &err));
    for (int64_t i = first + b; i < first + n; i += 2) {
      assert_int_equal(pt_builder_append_int(pt_builder_child(bl, 0), i), PT_OK);
      const char *p = part_of(i);
      assert_int_equal(p ? pt_builder_append_bytes(pt_builder_child(bl, 1), p, (int64_t)strlen(p))
                         : pt_builder_append_null(pt_builder_child(bl, 1), 1), PT_OK);
      if (with_x) assert_int_equal(pt_builder_append_double(pt_builder_child(bl, 2), (double)i / 2), PT_OK);
      assert_int_equal(pt_builder_append_row(bl), PT_OK);
    }
    CHECK(pt_builder_finish(bl, &batches[b], &err));
    pt_builder_free(bl);
  }
  pt_dataset *ds;
  CHECK(pt_from_batches(S, &schema, batches, 2, &ds, &err));
  schema.release(&schema);
  return ds;
}

static const char *abn(int64_t i) { return i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : NULL; }
static const char *only_a(int64_t i) { (void)i; return "a"; }
static const char *only_b(int64_t i) { (void)i; return "b"; }

/* Reads the table (filter may be NULL) and checks its columns' order. */
static pt_dataset *read_table(const pt_parquet_filter *filter) {
  pt_delta_read_options o;
  pt_delta_read_options_init(&o);
  o.filter = filter;
  pt_dataset *ds;
  CHECK(pt_read_delta(S, TABLE, &o, &ds, &err));
  struct ArrowSchema sc;
  CHECK(pt_dataset_schema(ds, &sc, &err));
  assert_int_equal(sc.n_children, 3);
  assert_string_equal(sc.children[0]->name, "id");
  assert_string_equal(sc.children[1]->name, "part");
  assert_string_equal(sc.children[2]->name, "x");
  sc.release(&sc);
  return ds;
}

/* Rows of ds and how many have a null x (column 2) or part "a". */
static void count(pt_dataset *ds, int64_t *n, int64_t *null_x, int64_t *part_a) {
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  struct ArrowSchema sc;
  assert_int_equal(st.get_schema(&st, &sc), 0);
  *n = *null_x = *part_a = 0;
  struct ArrowArray b;
  while (st.get_next(&st, &b) == 0 && b.release) {
    const struct ArrowArray *p = b.children[1];
    const int32_t *off = (const int32_t *)p->buffers[1] + p->offset;
    for (int64_t r = 0; r < b.length; r++) {
      *null_x += !pt_array_is_valid(sc.children[2], b.children[2], r);
      *part_a += pt_array_is_valid(sc.children[1], p, r) && off[r + 1] - off[r] == 1 &&
                 ((const char *)p->buffers[2])[off[r]] == 'a';
    }
    *n += b.length;
    b.release(&b);
  }
  sc.release(&sc);
  st.release(&st);
}

static void write_rows(pt_dataset *ds, pt_delta_mode mode, int merge, const pt_parquet_filter *where) {
  const char *keys[] = {"part"};
  pt_delta_write_options o;
  pt_delta_write_options_init(&o);
  o.mode = mode;
  o.partition_by = keys;
  o.n_partition_by = 1;
  o.merge_schema = merge;
  o.replace_where = where;
  CHECK(pt_write_delta(ds, TABLE, &o, &err));
}

static void test_merge_replace_read_checkpoint(void **state) {
  (void)state;
  pt_dataset *v0 = rows(0, 99, abn, false); /* 33 a, 33 b, 33 null */
  write_rows(v0, PT_DELTA_ERROR, 0, NULL);

  /* A new column: refused without merge_schema, added with it. */
  pt_dataset *v1 = rows(100, 50, only_a, true);
  pt_delta_write_options o;
  pt_delta_write_options_init(&o);
  o.mode = PT_DELTA_APPEND;
  pt_error err;
  assert_int_equal(pt_write_delta(v1, TABLE, &o, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "not in the table: 'x'; not in the dataset: none"));
  write_rows(v1, PT_DELTA_APPEND, 1, NULL);

  /* The partition b replaced; rows outside the predicate refused. */
  const char *b[] = {"b"};
  pt_parquet_filter *where;
  CHECK(pt_parquet_filter_bytes("part", PT_PARQUET_EQ, b, NULL, 1, &where, &err));
  pt_dataset *outside = rows(300, 4, only_a, true);
  pt_delta_write_options_init(&o);
  o.mode = PT_DELTA_OVERWRITE;
  o.replace_where = where;
  assert_int_equal(pt_write_delta(outside, TABLE, &o, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "rows outside replace_where"));
  pt_dataset *v2 = rows(200, 10, only_b, true);
  write_rows(v2, PT_DELTA_OVERWRITE, 0, where);

  int64_t n, null_x, part_a;
  pt_dataset *all = read_table(NULL);
  count(all, &n, &null_x, &part_a);
  assert_int_equal(n, 33 + 33 + 50 + 10);   /* the b rows of v0 gone */
  assert_int_equal(null_x, 66);             /* v0's files predate x */
  assert_int_equal(part_a, 33 + 50);

  /* Partition and data columns in one filter: one file per task of part a
   * with id >= 120 (v1's), the rest skipped. */
  const int64_t lo[] = {120};
  pt_parquet_filter *pa_, *ge, *both;
  const char *a[] = {"a"};
  CHECK(pt_parquet_filter_bytes("part", PT_PARQUET_EQ, a, NULL, 1, &pa_, &err));
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_GE, lo, 1, &ge, &err));
  CHECK(pt_parquet_filter_combine(PT_PARQUET_AND, pa_, ge, &both, &err));
  pt_dataset *some = read_table(both);
  pt_delta_scan scan;
  CHECK(pt_delta_scan_info(some, &scan, &err));
  assert_int_equal(scan.version, 2);
  assert_int_equal(scan.files_skipped, scan.files - 2);
  count(some, &n, &null_x, &part_a);
  assert_int_equal(n, 50);
  assert_int_equal(part_a, 50);
  assert_int_equal(null_x, 0);

  /* Versions 3 .. 10: a checkpoint at 10; the table then reads without
   * the commits before it. */
  pt_dataset *more = rows(1000, 2, only_a, true);
  for (int v = 3; v <= 10; v++) write_rows(more, PT_DELTA_APPEND, 0, NULL);
  char path[600];
  struct stat sb;
  snprintf(path, sizeof path, "%s/_delta_log/%020d.checkpoint.parquet", TABLE, 10);
  assert_int_equal(stat(path, &sb), 0);
  snprintf(path, sizeof path, "%s/_delta_log/_last_checkpoint", TABLE);
  assert_int_equal(stat(path, &sb), 0);
  for (int v = 0; v < 10; v++) {
    snprintf(path, sizeof path, "%s/_delta_log/%020d.json", TABLE, v);
    assert_int_equal(unlink(path), 0);
  }
  pt_dataset *after = read_table(NULL);
  count(after, &n, &null_x, &part_a);
  assert_int_equal(n, 126 + 8 * 2);
  assert_int_equal(null_x, 66);

  /* replace_where on a data column: part a's ids 140 .. 149, the 16 rows
   * of ids 1000 and 1001 and part b's ids 200 .. 209 replaced by ids
   * 140 .. 144; the files that hold both sides rewritten in the same
   * commit. */
  const int64_t from[] = {140};
  pt_parquet_filter *high, *is_null;
  CHECK(pt_parquet_filter_int("id", PT_PARQUET_GE, from, 1, &high, &err));
  pt_dataset *low = rows(100, 5, only_a, true);
  pt_delta_write_options_init(&o);
  o.mode = PT_DELTA_OVERWRITE;
  o.replace_where = high;
  assert_int_equal(pt_write_delta(low, TABLE, &o, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "rows outside replace_where"));
  pt_dataset *v12 = rows(140, 5, only_a, true);
  write_rows(v12, PT_DELTA_OVERWRITE, 0, high);
  pt_dataset *after_high = read_table(NULL);
  count(after_high, &n, &null_x, &part_a);
  assert_int_equal(n, 142 - 36 + 5);
  assert_int_equal(part_a, 33 + 50 + 16 - 26 + 5);
  assert_int_equal(null_x, 66);

  /* x IS NULL: v0's files, which predate x, read as null there and go
   * whole; rows without x take their place. */
  CHECK(pt_parquet_filter_is_null("x", &is_null, &err));
  pt_dataset *no_x = rows(500, 4, only_b, false);
  write_rows(no_x, PT_DELTA_OVERWRITE, 1, is_null);
  pt_dataset *after_null = read_table(NULL);
  count(after_null, &n, &null_x, &part_a);
  assert_int_equal(n, 111 - 66 + 4);
  assert_int_equal(null_x, 4);
  assert_int_equal(part_a, 78 - 33);
  pt_parquet_filter_free(high);
  pt_parquet_filter_free(is_null);
  pt_dataset_free(low);
  pt_dataset_free(v12);
  pt_dataset_free(after_high);
  pt_dataset_free(no_x);
  pt_dataset_free(after_null);

  pt_parquet_filter_free(where);
  pt_parquet_filter_free(both);
  pt_dataset_free(after);
  pt_dataset_free(more);
  pt_dataset_free(some);
  pt_dataset_free(all);
  pt_dataset_free(v2);
  pt_dataset_free(outside);
  pt_dataset_free(v1);
  pt_dataset_free(v0);
}

/* A partitioned table of six files, 9.6 MB of values in all, under
 * parquet.partition_bytes: read by both slots of local[2], each file's
 * partition value still its own. */
static void test_small_table_dealt_to_every_slot(void **state) {
  (void)state;
  char path[320];
  snprintf(path, sizeof path, "%s/slots", DIR_);
  pt_dataset *src = rows(0, 600000, abn, true); /* 200,000 each of a, b, null */
  const char *keys[] = {"part"};
  pt_delta_write_options w;
  pt_delta_write_options_init(&w);
  w.partition_by = keys;
  w.n_partition_by = 1;
  CHECK(pt_write_delta(src, path, &w, &err));
  pt_dataset *ds;
  CHECK(pt_read_delta(S, path, NULL, &ds, &err));
  pt_delta_scan scan;
  CHECK(pt_delta_scan_info(ds, &scan, &err));
  assert_int_equal(scan.files, 6);
  assert_int_equal(pt_dataset_num_partitions(ds), 2);
  int64_t n, null_x, part_a;
  count(ds, &n, &null_x, &part_a);
  assert_int_equal(n, 600000);
  assert_int_equal(null_x, 0);
  assert_int_equal(part_a, 200000);
  pt_dataset_free(ds);
  pt_dataset_free(src);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merge_replace_read_checkpoint),
      cmocka_unit_test(test_small_table_dealt_to_every_slot),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
