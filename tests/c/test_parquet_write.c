/* test_parquet_write.c — the Parquet writer on Arrow types pyarrow cannot
 * make from Python: intervals of months and of days and milliseconds,
 * written as Parquet's INTERVAL (12 bytes: months, days, milliseconds,
 * little-endian unsigned) and read back as fixed_size_binary(12); a
 * negative one refused with the column and row named. Then the threads
 * option: the same bytes, and the same first error, whatever the number of
 * threads encoding the columns. And the writer's SNAPPY compressor, read
 * back by libsnappy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A batch of n rows: int64 (nulls), utf8, double, list<struct<a: int32,
 * b: utf8>> (empty and null lists), int32 (not nullable; when null_at >= 0
 * that row is null all the same, which the writer must refuse). */
static void mixed_batch(int64_t n, int64_t null_at, struct ArrowSchema *schema,
                        struct ArrowArray *batch) {
  pt_error err;
  assert_int_equal(pt_schema_init(schema, "+s", "", 0, 5, &err), PT_OK);
  static const char *names[5] = {"i", "s", "d", "l", "k"};
  static const char *fmts[5] = {"l", "u", "g", "+l", "i"};
  for (int k = 0; k < 5; k++)
    assert_int_equal(pt_schema_init(schema->children[k], fmts[k], names[k],
                                    k == 4 ? 0 : ARROW_FLAG_NULLABLE, k == 3 ? 1 : 0, &err),
                     PT_OK);
  struct ArrowSchema *st = schema->children[3]->children[0];
  assert_int_equal(pt_schema_init(st, "+s", "element", ARROW_FLAG_NULLABLE, 2, &err), PT_OK);
  assert_int_equal(pt_schema_init(st->children[0], "i", "a", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(st->children[1], "u", "b", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt_builder *b;
  assert_int_equal(pt_builder_new(schema, &b, &err), PT_OK);
  pt_builder *l = pt_builder_child(b, 3), *e = pt_builder_child(l, 0);
  char text[32];
  for (int64_t r = 0; r < n; r++) {
    uint64_t h = (uint64_t)r * 0x9e3779b97f4a7c15ull;
    if (r % 7 == 3) assert_int_equal(pt_builder_append_null(pt_builder_child(b, 0), 1), PT_OK);
    else assert_int_equal(pt_builder_append_int(pt_builder_child(b, 0), (int64_t)(h >> 40)), PT_OK);
    int len = snprintf(text, sizeof text, "v-%llx", (unsigned long long)(h >> (r % 3 ? 50 : 20)));
    assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 1), text, len), PT_OK);
    assert_int_equal(pt_builder_append_double(pt_builder_child(b, 2), (double)(h >> 11) / 3.0), PT_OK);
    if (r % 11 == 5) {
      assert_int_equal(pt_builder_append_null(l, 1), PT_OK);
    } else {
      for (int64_t j = 0; j < r % 4; j++) {
        assert_int_equal(pt_builder_append_int(pt_builder_child(e, 0), (int32_t)(h >> (j + 33))), PT_OK);
        assert_int_equal(pt_builder_append_bytes(pt_builder_child(e, 1), text, len - (int)j), PT_OK);
        assert_int_equal(pt_builder_append_row(e), PT_OK);
      }
      assert_int_equal(pt_builder_append_row(l), PT_OK);
    }
    if (r == null_at) assert_int_equal(pt_builder_append_null(pt_builder_child(b, 4), 1), PT_OK);
    else assert_int_equal(pt_builder_append_int(pt_builder_child(b, 4), r % 1000), PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  assert_int_equal(pt_builder_finish(b, batch, &err), PT_OK);
  pt_builder_free(b);
}

/* The file of batch (written in slices of 25000 rows) with threads. */
static int write_threads(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                         int threads, int codec, pt_buf *out, pt_error *err) {
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.threads = threads;
  o.codec = codec;
  o.row_group_rows = 30000;
  o.page_bytes = 64 * 1024;
  pt_parquet_writer *w;
  int rc = pt_parquet_writer_open_buf(out, schema, &o, &w, err);
  if (rc != PT_OK) return rc;
  for (int64_t at = 0; at < batch->length && rc == PT_OK; at += 25000) {
    struct ArrowArray slice = *batch;
    slice.offset = at;
    slice.length = batch->length - at < 25000 ? batch->length - at : 25000;
    rc = pt_parquet_writer_write(w, &slice, err);
  }
  if (rc == PT_OK) rc = pt_parquet_writer_close(w, err);
  pt_parquet_writer_free(w);
  return rc;
}

static void test_threads_same_bytes(void **state) {
  struct ArrowSchema schema;
  struct ArrowArray batch;
  mixed_batch(70000, -1, &schema, &batch);
  static const int codecs[2] = {PT_PARQUET_UNCOMPRESSED, PT_PARQUET_SNAPPY};
  for (int c = 0; c < 2; c++) {
    pt_error err;
    pt_buf one = {0};
    assert_int_equal(write_threads(&schema, &batch, 1, codecs[c], &one, &err), PT_OK);
    for (int t = 2; t <= 4; t++) {
      pt_buf more = {0};
      assert_int_equal(write_threads(&schema, &batch, t, codecs[c], &more, &err), PT_OK);
      assert_int_equal(more.len, one.len);
      assert_memory_equal(more.data, one.data, one.len);
      pt_buf_free(&more);
    }
    /* And it reads back whole: 70000 rows in 3 row groups. */
    struct ArrowArrayStream s;
    assert_int_equal(pt_parquet_read_buffer(one.data, (int64_t)one.len, NULL, NULL, NULL, &s, &err),
                     PT_OK);
    int64_t rows = 0, groups = 0, skipped = 0;
    struct ArrowArray a;
    while (s.get_next(&s, &a) == 0 && a.release != NULL) {
      rows += a.length;
      a.release(&a);
    }
    assert_null(s.get_last_error(&s));
    assert_int_equal(pt_parquet_stream_row_groups(&s, &groups, &skipped, &err), PT_OK);
    assert_int_equal(rows, 70000);
    assert_int_equal(groups, 3);
    s.release(&s);
    pt_buf_free(&one);
  }
  batch.release(&batch);
  schema.release(&schema);
}

static void test_threads_errors(void **state) {
  struct ArrowSchema schema;
  struct ArrowArray batch;
  mixed_batch(40000, 31234, &schema, &batch);
  /* The first error is the one a single thread meets, whatever the number. */
  for (int t = 1; t <= 3; t++) {
    pt_error err;
    pt_buf out = {0};
    assert_int_equal(write_threads(&schema, &batch, t, PT_PARQUET_SNAPPY, &out, &err), PT_EINVAL);
    assert_string_equal(err.message, "column 'k' is not nullable but row 31234 is null; mark the "
                                     "field nullable");
    pt_buf_free(&out);
  }
  pt_error err;
  pt_buf out = {0};
  assert_int_equal(write_threads(&schema, &batch, 17, PT_PARQUET_SNAPPY, &out, &err), PT_EINVAL);
  assert_string_equal(err.message, "parquet: threads must be between 1 and 16 (got 17)");
  pt_buf_free(&out);
  batch.release(&batch);
  schema.release(&schema);
}

/* Every allocation of a two-thread write failing in turn: out of memory
 * reported (by whichever thread met it), nothing leaked (ASan), until the
 * write gets through with the bytes of one thread's. */
static void test_threads_out_of_memory(void **state) {
  struct ArrowSchema schema;
  struct ArrowArray batch;
  mixed_batch(6000, -1, &schema, &batch);
  pt_error err;
  pt_buf want = {0};
  assert_int_equal(write_threads(&schema, &batch, 1, PT_PARQUET_SNAPPY, &want, &err), PT_OK);
  int rc = PT_ENOMEM;
  for (int64_t n = 0; rc != PT_OK; n++) {
    pt_buf out = {0};
    pt__alloc_fail_after(n);
    rc = write_threads(&schema, &batch, 2, PT_PARQUET_SNAPPY, &out, &err);
    pt__alloc_fail_after(-1);
    if (rc != PT_OK) {
      assert_int_equal(rc, PT_ENOMEM);
    } else {
      assert_int_equal(out.len, want.len);
      assert_memory_equal(out.data, want.data, want.len);
    }
    pt_buf_free(&out);
  }
  pt_buf_free(&want);
  batch.release(&batch);
  schema.release(&schema);
}

/* The writer's SNAPPY compressor against libsnappy's decompressor: inputs
 * of every shape (empty, a few bytes, no repeats, long runs, overlapping
 * copies, records like the bench's ids, sizes about the 64 KiB blocks).
 * The output buffer is exactly the bound, so ASan catches any write past
 * it. */
static void test_snappy_round_trip(void **state) {
  const int64_t sizes[] = {0, 1, 4, 15, 16, 17, 31, 100, 4096, 65535, 65536, 65537,
                           131077, 1 << 20};
  uint64_t seed = 88172645463325252ull;
  for (int kind = 0; kind < 5; kind++) {
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      int64_t n = sizes[si];
      uint8_t *in = malloc((size_t)n + 1);
      assert_non_null(in);
      for (int64_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        switch (kind) {
          case 0: in[i] = (uint8_t)seed; break;                       /* no repeats */
          case 1: in[i] = 'a'; break;                                 /* one long run */
          case 2: in[i] = (uint8_t)"abc"[i % 3]; break;               /* offset 3, overlapping */
          case 3: in[i] = (uint8_t)(i % 23 < 7 ? "\x13\0\0\0id-"[i % 23]
                                               : "0123456789abcdef"[seed & 15]); break;
          default: in[i] = (uint8_t)((i / 97) % 7 == 0 ? seed : (uint64_t)(i % 251)); break;
        }
      }
      int64_t bound = pt__pq_compress_bound(PT__CODEC_SNAPPY, n);
      uint8_t *z = malloc((size_t)bound);
      uint8_t *back = malloc((size_t)n + 1);
      assert_non_null(z);
      assert_non_null(back);
      int64_t zn = pt__snappy_compress(in, n, z);
      assert_true(zn > 0 && zn <= bound);
      pt_error err = {0};
      int rc = pt__pq_decompress(PT__CODEC_SNAPPY, z, zn, back, n, &err);
      if (rc != PT_OK) fail_msg("kind %d, %lld bytes: %s", kind, (long long)n, err.message);
      assert_memory_equal(back, in, (size_t)n);
      /* Runs compress (a million 'a's to a few hundred bytes). */
      if (kind == 1 && n == (1 << 20)) assert_true(zn < 1 << 16);
      free(in);
      free(z);
      free(back);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_month_intervals),
      cmocka_unit_test(test_day_time_intervals),
      cmocka_unit_test(test_threads_same_bytes),
      cmocka_unit_test(test_threads_errors),
      cmocka_unit_test(test_threads_out_of_memory),
      cmocka_unit_test(test_snappy_round_trip),
  };
  return cmocka_run_group_tests_name("parquet_write", tests, NULL, NULL);
}
