/* test_parquet_paths.c — the C API of what the reader gained for issue 14:
 * columns named by a path below a struct ("s.a", read as a column of its
 * own, null where the struct is), filters on timestamps of another unit
 * than the column's and on decimals of another scale (row groups skipped,
 * counted), !=, NOT IN and IS NOT NULL against row groups of one value
 * and of nulls, their errors word for word, and pt_parquet_scan_info's refusal
 * of what pt_read_parquet did not make.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parquet/parquet.h"
#include "protium.h"

enum { ROWS = 4, GROUPS = 3 };

static void no_release(struct ArrowArray *a) { a->release = NULL; }

/* A file of GROUPS row groups of ROWS rows: s struct<a int64> (s null in
 * row 1 of each group, a null in row 2), ts timestamp[ms] (row r of group
 * g: (g * ROWS + r) seconds), d decimal128(10, 2) ((g * ROWS + r - 6) +
 * 0.25). */
static void make_file(pt_buf *file) {
  pt_error err;
  struct ArrowSchema schema;
  assert_int_equal(pt_schema_init(&schema, "+s", "", 0, 3, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[0], "+s", "s", ARROW_FLAG_NULLABLE, 1, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[0]->children[0], "l", "a", ARROW_FLAG_NULLABLE, 0,
                                  &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[1], "tsm:", "ts", 0, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[2], "d:10,2", "d", 0, 0, &err), PT_OK);
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.row_group_rows = ROWS;
  pt_parquet_writer *w;
  assert_int_equal(pt_parquet_writer_open_buf(file, &schema, &o, &w, &err), PT_OK);
  for (int g = 0; g < GROUPS; g++) {
    int64_t a[ROWS], ts[ROWS], dec[2 * ROWS];
    for (int r = 0; r < ROWS; r++) {
      int64_t i = g * ROWS + r;
      a[r] = i;
      ts[r] = i * 1000;
      dec[2 * r] = (i - 6) * 100 + 25; /* little-endian 128 bits */
      dec[2 * r + 1] = dec[2 * r] < 0 ? -1 : 0;
    }
    static const uint8_t s_valid = 0xd, a_valid = 0xb; /* row 1; row 2 */
    const void *ab[2] = {&a_valid, a}, *sb[1] = {&s_valid}, *tb[2] = {NULL, ts},
               *db[2] = {NULL, dec}, *bb[1] = {NULL};
    struct ArrowArray ca = {.length = ROWS, .null_count = 1, .n_buffers = 2, .buffers = ab,
                            .release = no_release};
    struct ArrowArray *sch[1] = {&ca};
    struct ArrowArray cs = {.length = ROWS, .null_count = 1, .n_buffers = 1, .buffers = sb,
                            .n_children = 1, .children = sch, .release = no_release};
    struct ArrowArray ct = {.length = ROWS, .n_buffers = 2, .buffers = tb, .release = no_release};
    struct ArrowArray cd = {.length = ROWS, .n_buffers = 2, .buffers = db, .release = no_release};
    struct ArrowArray *ch[3] = {&cs, &ct, &cd};
    struct ArrowArray batch = {.length = ROWS, .n_buffers = 1, .buffers = bb, .n_children = 3,
                               .children = ch, .release = no_release};
    assert_int_equal(pt_parquet_writer_write(w, &batch, &err), PT_OK);
  }
  assert_int_equal(pt_parquet_writer_close(w, &err), PT_OK);
  pt_parquet_writer_free(w);
  schema.release(&schema);
}

static void test_struct_field_as_column(void **state) {
  (void)state;
  pt_buf file = {0};
  make_file(&file);
  pt_error err;
  pt_parquet_read_options ro;
  pt_parquet_read_options_init(&ro);
  const char *cols[] = {"ts", "s.a"};
  ro.columns = cols;
  ro.n_columns = 2;
  struct ArrowArrayStream s;
  assert_int_equal(pt_parquet_read_buffer(file.data, (int64_t)file.len, NULL, NULL, &ro, &s, &err),
                   PT_OK);
  struct ArrowSchema schema;
  assert_int_equal(s.get_schema(&s, &schema), 0);
  assert_int_equal(schema.n_children, 2);
  assert_string_equal(schema.children[1]->name, "a");
  assert_string_equal(schema.children[1]->format, "l");
  assert_true(schema.children[1]->flags & ARROW_FLAG_NULLABLE);
  schema.release(&schema);
  for (int g = 0; g < GROUPS; g++) {
    struct ArrowArray b;
    assert_int_equal(s.get_next(&s, &b), 0);
    assert_int_equal(b.length, ROWS);
    const struct ArrowArray *a = b.children[1];
    const uint8_t *valid = a->buffers[0];
    const int64_t *v = a->buffers[1];
    assert_int_equal(a->null_count, 2); /* the struct's null and a's */
    for (int r = 0; r < ROWS; r++) {
      bool ok = (valid[(a->offset + r) / 8] >> ((a->offset + r) % 8)) & 1;
      assert_int_equal(ok, r != 1 && r != 2);
      if (ok) assert_int_equal(v[a->offset + r], g * ROWS + r);
    }
    b.release(&b);
  }
  s.release(&s);
  /* A path that is not there names itself. */
  const char *bad[] = {"s.b"};
  ro.columns = bad;
  ro.n_columns = 1;
  assert_int_equal(pt_parquet_read_buffer(file.data, (int64_t)file.len, NULL, NULL, &ro, &s, &err),
                   PT_EINVAL);
  assert_string_equal(err.message,
                      "parquet: buffer: no column 's.b' in the file (name struct fields as 'a.b', "
                      "fields in lists as 'a.list.element.b'); see its schema with `protium cat "
                      "--schema`");
  pt_buf_free(&file);
}

/* Row groups read and skipped with filter f (freed). */
static void count(const pt_buf *file, pt_parquet_filter *f, int64_t want_read) {
  pt_error err;
  pt_parquet_read_options ro;
  pt_parquet_read_options_init(&ro);
  ro.filter = f;
  struct ArrowArrayStream s;
  assert_int_equal(pt_parquet_read_buffer(file->data, (int64_t)file->len, NULL, NULL, &ro, &s, &err),
                   PT_OK);
  pt_parquet_filter_free(f);
  for (;;) {
    struct ArrowArray b;
    assert_int_equal(s.get_next(&s, &b), 0);
    if (!b.release) break;
    b.release(&b);
  }
  int64_t read, skipped;
  assert_int_equal(pt_parquet_stream_row_groups(&s, &read, &skipped, &err), PT_OK);
  assert_int_equal(read, want_read);
  assert_int_equal(skipped, GROUPS - want_read);
  s.release(&s);
}

static void test_timestamp_and_decimal_filters(void **state) {
  (void)state;
  pt_buf file = {0};
  make_file(&file);
  pt_error err;
  pt_parquet_filter *f;
  /* Seconds against milliseconds: 8 s is the first row of group 2. */
  int64_t t = 8;
  assert_int_equal(pt_parquet_filter_timestamp("ts", PT_PARQUET_GE, &t, 1, PT_PARQUET_UNIT_S, &f,
                                               &err), PT_OK);
  count(&file, f, 1);
  /* Nanoseconds: 3 s is the last row of group 0; 3.5 s is no row's. */
  t = 3000000000;
  assert_int_equal(pt_parquet_filter_timestamp("ts", PT_PARQUET_EQ, &t, 1, PT_PARQUET_UNIT_NS, &f,
                                               &err), PT_OK);
  count(&file, f, 1);
  t = 3500000000;
  assert_int_equal(pt_parquet_filter_timestamp("ts", PT_PARQUET_EQ, &t, 1, PT_PARQUET_UNIT_NS, &f,
                                               &err), PT_OK);
  count(&file, f, 0);
  t = 3999;
  assert_int_equal(pt_parquet_filter_timestamp("ts", PT_PARQUET_GT, &t, 1, PT_PARQUET_UNIT_MS, &f,
                                               &err), PT_OK);
  count(&file, f, 2);
  /* An integer says no unit: nothing is skipped. */
  assert_int_equal(pt_parquet_filter_int("ts", PT_PARQUET_GE, &t, 1, &f, &err), PT_OK);
  count(&file, f, 3);
  /* Decimals: -5.75 .. 5.25; -2.0 lies between values of group 0. */
  const char *lo[] = {"-2.000"}, *in[] = {"-5.75", "+5.2500"}, *none[] = {"0.2"};
  assert_int_equal(pt_parquet_filter_decimal("d", PT_PARQUET_LT, lo, 1, &f, &err), PT_OK);
  count(&file, f, 1);
  assert_int_equal(pt_parquet_filter_decimal("d", PT_PARQUET_IN, in, 2, &f, &err), PT_OK);
  count(&file, f, 2);
  assert_int_equal(pt_parquet_filter_decimal("d", PT_PARQUET_GE, none, 1, &f, &err), PT_OK);
  count(&file, f, 2);
  pt_buf_free(&file);
}

/* A file of GROUPS row groups of ROWS rows of k int64: 7 alone in group
 * 0, 7 and a null in group 1, nulls alone in group 2. */
static void make_sevens(pt_buf *file) {
  pt_error err;
  struct ArrowSchema schema;
  assert_int_equal(pt_schema_init(&schema, "+s", "", 0, 1, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[0], "l", "k", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.row_group_rows = ROWS;
  pt_parquet_writer *w;
  assert_int_equal(pt_parquet_writer_open_buf(file, &schema, &o, &w, &err), PT_OK);
  static const uint8_t valid[GROUPS] = {0xf, 0xd, 0x0}; /* group 1: row 1 null */
  static const int64_t k[ROWS] = {7, 7, 7, 7};
  static const int64_t nulls[GROUPS] = {0, 1, ROWS};
  for (int g = 0; g < GROUPS; g++) {
    const void *kb[2] = {&valid[g], k}, *bb[1] = {NULL};
    struct ArrowArray ck = {.length = ROWS, .null_count = nulls[g], .n_buffers = 2, .buffers = kb,
                            .release = no_release};
    struct ArrowArray *ch[1] = {&ck};
    struct ArrowArray batch = {.length = ROWS, .n_buffers = 1, .buffers = bb, .n_children = 1,
                               .children = ch, .release = no_release};
    assert_int_equal(pt_parquet_writer_write(w, &batch, &err), PT_OK);
  }
  assert_int_equal(pt_parquet_writer_close(w, &err), PT_OK);
  pt_parquet_writer_free(w);
  schema.release(&schema);
}

static void test_not_filters(void **state) {
  (void)state;
  pt_buf file = {0};
  make_sevens(&file);
  pt_error err;
  pt_parquet_filter *f, *g, *both;
  const int64_t seven[] = {7}, eight[] = {8}, seven_eight[] = {7, 8};
  const uint64_t useven[] = {7};
  const double dseven[] = {7.0};
  /* != 7: every group goes: group 0 (7 alone), group 1 (7 and a null,
   * which satisfies no comparison) and group 2 (nulls alone). */
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_NE, seven, 1, &f, &err), PT_OK);
  count(&file, f, 0);
  assert_int_equal(pt_parquet_filter_uint("k", PT_PARQUET_NE, useven, 1, &f, &err), PT_OK);
  count(&file, f, 0);
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_NE, eight, 1, &f, &err), PT_OK);
  count(&file, f, 2);
  /* A double against integers proves no equality: the nulls alone go. */
  assert_int_equal(pt_parquet_filter_double("k", PT_PARQUET_NE, dseven, 1, &f, &err), PT_OK);
  count(&file, f, 2);
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_NOT_IN, seven_eight, 2, &f, &err), PT_OK);
  count(&file, f, 0);
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_NOT_IN, eight, 1, &f, &err), PT_OK);
  count(&file, f, 2);
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_NOT_IN, NULL, 0, &f, &err), PT_OK);
  count(&file, f, 2);
  assert_int_equal(pt_parquet_filter_is_not_null("k", &f, &err), PT_OK);
  count(&file, f, 2);
  assert_int_equal(pt_parquet_filter_is_null("k", &f, &err), PT_OK);
  count(&file, f, 2);
  /* != 7 OR IS NULL: groups 1 and 2, which hold nulls, back. */
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_NE, seven, 1, &f, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_is_null("k", &g, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_combine(PT_PARQUET_OR, f, g, &both, &err), PT_OK);
  count(&file, both, 2);
  pt_buf_free(&file);
  /* Their errors: a second value for !=, the ops named when one is not. */
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_NE, seven_eight, 2, &f, &err), PT_EINVAL);
  assert_null(f);
  assert_string_equal(err.message, "parquet filter: 2 values for a comparison of one");
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_AND, seven, 1, &f, &err), PT_EINVAL);
  assert_null(f);
  assert_string_equal(err.message, "parquet filter: unknown comparison 8; use PT_PARQUET_EQ, _NE, "
                                   "_LT, _LE, _GT, _GE, _IN, _NOT_IN, _IS_NULL or _IS_NOT_NULL");
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_IS_NOT_NULL + 1, seven, 1, &f, &err),
                   PT_EINVAL);
  assert_int_equal(pt_parquet_filter_is_not_null("", &f, &err), PT_EINVAL);
  assert_string_equal(err.message, "parquet filter: a column name is needed");
}

/* Key values decide a filter only where they compare with its literal:
 * replace_where removes unread the files whose keys are decided to match,
 * so what cannot be compared here (a half-float key) stays a filter for
 * the rows. A decimal key against a number compares as row-by-row
 * evaluation does, so its directories are decided. */
static void bind_one(const pt_parquet_filter *f, const char *fmt, const char *value,
                     int want_may, int want_rest) {
  char *keys[] = {(char *)"k"}, *vals[] = {(char *)value};
  const char *formats[] = {fmt};
  pt_parquet_filter *rest = NULL;
  bool may = false;
  pt_error err;
  assert_int_equal(pt__filter_bind_partition(f, keys, vals, formats, 1, &rest, &may, &err), PT_OK);
  if (may != (bool)want_may || (rest != NULL) != (bool)want_rest)
    fail_msg("key %s '%s': may %d rest %d, want %d %d", fmt, value, may, rest != NULL, want_may,
             want_rest);
  pt_parquet_filter_free(rest);
}

static void test_bind_partition_keys(void **state) {
  (void)state;
  pt_error err;
  pt_parquet_filter *eq, *ne, *lt, *in, *ieq;
  const double d15[] = {1.5}, d2[] = {2.0}, both[] = {1.5, 9.0};
  const int64_t i2[] = {2};
  assert_int_equal(pt_parquet_filter_double("k", PT_PARQUET_EQ, d15, 1, &eq, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_double("k", PT_PARQUET_NE, d2, 1, &ne, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_double("k", PT_PARQUET_LT, d2, 1, &lt, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_double("k", PT_PARQUET_IN, both, 2, &in, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_int("k", PT_PARQUET_EQ, i2, 1, &ieq, &err), PT_OK);
  /* decimal(5,2) keys: decided, either way */
  bind_one(eq, "d:5,2", "1.50", 1, 0);
  bind_one(eq, "d:5,2", "2.00", 0, 0);
  bind_one(ne, "d:5,2", "2.00", 0, 0);
  bind_one(ne, "d:5,2", "1.50", 1, 0);
  bind_one(lt, "d:5,2", "1.99", 1, 0);
  bind_one(lt, "d:5,2", "2.00", 0, 0);
  bind_one(in, "d:5,2", "9.00", 1, 0);
  bind_one(in, "d:5,2", "-1.50", 0, 0);
  bind_one(ieq, "d:5,2", "2", 1, 0);
  bind_one(ieq, "d:5,2", "2.01", 0, 0);
  /* More decimals than the scale, or a 256-bit decimal: not decided here. */
  bind_one(eq, "d:5,2", "1.505", 1, 1);
  bind_one(eq, "d:40,2,256", "1.50", 1, 1);
  /* A half-float key is not compared here: the rows decide. */
  bind_one(eq, "e", "1.5", 1, 1);
  bind_one(eq, "e", "7", 1, 1);
  bind_one(ne, "e", "1.5", 1, 1);
  bind_one(lt, "e", "3", 1, 1);
  /* Nulls are decided whatever the type. */
  bind_one(eq, "e", NULL, 0, 0);
  pt_parquet_filter_free(eq);
  pt_parquet_filter_free(ne);
  pt_parquet_filter_free(lt);
  pt_parquet_filter_free(in);
  pt_parquet_filter_free(ieq);
}

static void test_errors(void **state) {
  (void)state;
  pt_error err;
  pt_parquet_filter *f;
  int64_t t = 1;
  assert_int_equal(pt_parquet_filter_timestamp("ts", PT_PARQUET_EQ, &t, 1, 9, &f, &err), PT_EINVAL);
  assert_null(f);
  assert_string_equal(err.message, "parquet filter: unknown time unit 9; use PT_PARQUET_UNIT_S, "
                                   "_MS, _US or _NS");
  const char *bad[] = {"1.2.3"};
  assert_int_equal(pt_parquet_filter_decimal("d", PT_PARQUET_EQ, bad, 1, &f, &err), PT_EINVAL);
  assert_null(f);
  assert_string_equal(err.message, "parquet filter: '1.2.3' is not a decimal; give digits with an "
                                   "optional sign and point (\"-12.345\"), at most 76");
  pt_parquet_scan scan;
  assert_int_equal(pt_parquet_scan_info(NULL, &scan, &err), PT_EINVAL);
  assert_string_equal(err.message, "parquet_scan_info: ds and out must not be NULL");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_struct_field_as_column),
      cmocka_unit_test(test_timestamp_and_decimal_filters),
      cmocka_unit_test(test_not_filters),
      cmocka_unit_test(test_bind_partition_keys),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
