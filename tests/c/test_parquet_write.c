/* test_parquet_write.c — the Parquet writer on Arrow types pyarrow cannot
 * make from Python: intervals of months and of days and milliseconds,
 * written as Parquet's INTERVAL (12 bytes: months, days, milliseconds,
 * little-endian unsigned) and read back as fixed_size_binary(12); a
 * negative one refused with the column and row named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "parquet/parquet_int.h"

static void no_release(struct ArrowArray *a) { a->release = NULL; }

/* A batch of one column of format fmt over values (3 rows, row 1 null). */
static void one_column(const char *fmt, const void *values, struct ArrowSchema *schema,
                       struct ArrowArray *batch, struct ArrowArray *col,
                       struct ArrowArray **children, const void **bufs, const void **cbufs) {
  pt_error err;
  assert_int_equal(pt_schema_init(schema, "+s", "", 0, 1, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema->children[0], fmt, "iv", ARROW_FLAG_NULLABLE, 0, &err),
                   PT_OK);
  static const uint8_t valid = 0x5; /* rows 0 and 2 */
  cbufs[0] = &valid;
  cbufs[1] = values;
  *col = (struct ArrowArray){.length = 3, .null_count = 1, .n_buffers = 2, .buffers = cbufs,
                             .release = no_release};
  children[0] = col;
  bufs[0] = NULL;
  *batch = (struct ArrowArray){.length = 3, .n_buffers = 1, .buffers = bufs, .n_children = 1,
                               .children = children, .release = no_release};
}

static void check_written(const pt_buf *file, const uint32_t want[2][3]) {
  pt_error err;
  /* The column is an INTERVAL. */
  pt__arena arena = {0};
  pt__pq_file_meta m;
  uint32_t flen = pt__load_u32((const uint8_t *)file->data + file->len - 8);
  assert_int_equal(pt__pq_decode_file_meta((const uint8_t *)file->data + file->len - 8 - flen,
                                           flen, &arena, &m, &err), PT_OK);
  assert_int_equal(m.schema[1].type, PT__PQ_FIXED_LEN_BYTE_ARRAY);
  assert_int_equal(m.schema[1].type_length, 12);
  assert_int_equal(m.schema[1].converted, PT__CT_INTERVAL);
  pt__arena_free(&arena);
  /* Read back: 12 bytes a row. */
  struct ArrowArrayStream s;
  assert_int_equal(pt_parquet_read_buffer(file->data, (int64_t)file->len, NULL, NULL, NULL, &s,
                                          &err), PT_OK);
  struct ArrowSchema schema;
  assert_int_equal(s.get_schema(&s, &schema), 0);
  assert_string_equal(schema.children[0]->format, "w:12");
  schema.release(&schema);
  struct ArrowArray a;
  assert_int_equal(s.get_next(&s, &a), 0);
  assert_int_equal(a.length, 3);
  const struct ArrowArray *c = a.children[0];
  assert_int_equal(c->null_count, 1);
  for (int r = 0; r < 3; r += 2) {
    const uint8_t *v = (const uint8_t *)c->buffers[1] + (c->offset + r) * 12;
    const int w = r / 2;
    assert_int_equal(pt__load_u32(v), want[w][0]);
    assert_int_equal(pt__load_u32(v + 4), want[w][1]);
    assert_int_equal(pt__load_u32(v + 8), want[w][2]);
  }
  a.release(&a);
  s.release(&s);
}

static void write_buf(const struct ArrowSchema *schema, const struct ArrowArray *batch, pt_buf *out,
                      int want_rc, const char *want_msg) {
  pt_error err;
  pt_parquet_writer *w;
  assert_int_equal(pt_parquet_writer_open_buf(out, schema, NULL, &w, &err), PT_OK);
  int rc = pt_parquet_writer_write(w, batch, &err);
  assert_int_equal(rc, want_rc);
  if (want_msg) assert_string_equal(err.message, want_msg);
  if (rc == PT_OK) assert_int_equal(pt_parquet_writer_close(w, &err), PT_OK);
  pt_parquet_writer_free(w);
}

static void test_month_intervals(void **state) {
  static const int32_t months[3] = {14, 99, 0};
  struct ArrowSchema schema;
  struct ArrowArray batch, col, *children[1];
  const void *bufs[1], *cbufs[2];
  one_column("tiM", months, &schema, &batch, &col, children, bufs, cbufs);
  pt_buf file = {0};
  write_buf(&schema, &batch, &file, PT_OK, NULL);
  static const uint32_t want[2][3] = {{14, 0, 0}, {0, 0, 0}};
  check_written(&file, want);
  pt_buf_free(&file);
  schema.release(&schema);
}

static void test_day_time_intervals(void **state) {
  static const int32_t dt[6] = {3, 1500, -7, -7, 0, 86399999};
  struct ArrowSchema schema;
  struct ArrowArray batch, col, *children[1];
  const void *bufs[1], *cbufs[2];
  one_column("tiD", dt, &schema, &batch, &col, children, bufs, cbufs);
  pt_buf file = {0};
  write_buf(&schema, &batch, &file, PT_OK, NULL); /* the null row's negatives do not count */
  static const uint32_t want[2][3] = {{0, 3, 1500}, {0, 0, 86399999}};
  check_written(&file, want);
  pt_buf_free(&file);
  /* A negative day in a valid row is refused. */
  static const int32_t neg[6] = {-1, 0, 0, 0, 0, 0};
  cbufs[1] = neg;
  pt_buf none = {0};
  write_buf(&schema, &batch, &none, PT_EINVAL,
            "parquet: column 'iv': row 0 has a negative interval (or one over 2^32 ms); "
            "Parquet's INTERVAL holds unsigned months, days and milliseconds");
  pt_buf_free(&none);
  schema.release(&schema);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_month_intervals),
      cmocka_unit_test(test_day_time_intervals),
  };
  return cmocka_run_group_tests_name("parquet_write", tests, NULL, NULL);
}
