/* test_parquet_write.c — the Parquet writer on Arrow types pyarrow cannot
 * make from Python: intervals of months and of days and milliseconds,
 * written as Parquet's INTERVAL (12 bytes: months, days, milliseconds,
 * little-endian unsigned) and read back as fixed_size_binary(12); a
 * negative one refused with the column and row named. Then the threads
 * option: the same bytes, and the same first error, whatever the number of
 * threads encoding the columns. And the writer's SNAPPY compressor, read
 * back by libsnappy. And the page index: each page's min, max and null
 * count in the ColumnIndex against those of the rows the OffsetIndex puts
 * in the page (pyarrow does not expose the ColumnIndex), pages of nulls
 * only among them, and the pages a filter skips by it. And key-value
 * metadata and the UUID logical type through a write and a read.
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

/* Decodes the footer of the Parquet file in *file into *m (its memory in
 * *arena, for the caller to free). */
static void decode_footer(const pt_buf *file, pt__arena *arena, pt__pq_file_meta *m) {
  pt_error err;
  const uint8_t *f = (const uint8_t *)file->data;
  uint32_t flen = pt__load_u32(f + file->len - 8);
  assert_int_equal(pt__pq_decode_file_meta(f + file->len - 8 - flen, flen, arena, m, &err), PT_OK);
}

static void check_written(const pt_buf *file, const uint32_t want[2][3]) {
  pt_error err;
  /* The column is an INTERVAL. */
  pt__arena arena = {0};
  pt__pq_file_meta m;
  decode_footer(file, &arena, &m);
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

/* One batch into *out with the writer's options o (NULL: the defaults). */
static void write_buf_opts(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                           const pt_parquet_write_options *o, pt_buf *out, int want_rc,
                           const char *want_msg) {
  pt_error err;
  pt_parquet_writer *w;
  assert_int_equal(pt_parquet_writer_open_buf(out, schema, o, &w, &err), PT_OK);
  int rc = pt_parquet_writer_write(w, batch, &err);
  assert_int_equal(rc, want_rc);
  if (want_msg) assert_string_equal(err.message, want_msg);
  if (rc == PT_OK) assert_int_equal(pt_parquet_writer_close(w, &err), PT_OK);
  pt_parquet_writer_free(w);
}

static void write_buf(const struct ArrowSchema *schema, const struct ArrowArray *batch, pt_buf *out,
                      int want_rc, const char *want_msg) {
  write_buf_opts(schema, batch, NULL, out, want_rc, want_msg);
}

/* A null run longer than a page's row limit (20000) gives pages of nulls
 * alone: x is null on rows [NP_RUN, NP_RUN + 60000), else i % 50. */
#define NP_RUN 3000
#define NP_ROWS (NP_RUN + 60000 + NP_RUN)
static bool np_null(int64_t i) { return i >= NP_RUN && i < NP_ROWS - NP_RUN; }

/* Reads file with filter f; *rows: the rows the pages kept hold; *match:
 * those of them that pred keeps (0: x = 7, 1: x >= INT64_MIN, 2: x is
 * null); the ids of those summed into *sum; the pages counts. */
static void np_read(const pt_buf *file, pt_parquet_filter *f, int pred, int64_t *rows,
                    int64_t *match, int64_t *sum, int64_t *pages_read, int64_t *pages_skipped) {
  pt_error err;
  pt_parquet_read_options o;
  pt_parquet_read_options_init(&o);
  o.filter = f;
  struct ArrowArrayStream st;
  assert_int_equal(
      pt_parquet_read_buffer(file->data, (int64_t)file->len, NULL, NULL, &o, &st, &err), PT_OK);
  pt_parquet_filter_free(f);
  *rows = *match = *sum = 0;
  struct ArrowArray a;
  while (st.get_next(&st, &a) == 0 && a.release) {
    const struct ArrowArray *id = a.children[0], *x = a.children[1];
    for (int64_t i = 0; i < a.length; i++) {
      int64_t r = ((const int64_t *)id->buffers[1])[id->offset + a.offset + i];
      int64_t at = x->offset + a.offset + i;
      bool null = x->null_count != 0 && !pt__bit_get(x->buffers[0], at);
      /* The rows kept are the file's, in place. */
      assert_int_equal(null, np_null(r));
      if (!null) assert_int_equal(((const int64_t *)x->buffers[1])[at], r % 50);
      bool m = pred == 0 ? !null && r % 50 == 7 : pred == 1 ? !null : null;
      *match += m;
      *sum += m ? r : 0;
    }
    *rows += a.length;
    a.release(&a);
  }
  assert_null(st.get_last_error(&st));
  assert_int_equal(pt_parquet_stream_pages(&st, pages_read, pages_skipped, &err), PT_OK);
  st.release(&st);
}

/* Pages made only of nulls: the ColumnIndex says null_pages true with empty
 * min and max, and null counts that are the data's; = and a comparison
 * every value passes (IS NOT NULL for int64: the filters have no NOT) skip
 * exactly those pages of x, IS NULL exactly x's pages without nulls, and
 * with them the pages of id holding none of the rows kept; the rows that
 * match are all there. */
static void test_page_index_null_pages(void **state) {
  (void)state;
  pt_error err;
  struct ArrowSchema schema;
  assert_int_equal(pt_schema_init(&schema, "+s", "", 0, 2, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[0], "l", "id", 0, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[1], "l", "x", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&schema, &b, &err), PT_OK);
  for (int64_t i = 0; i < NP_ROWS; i++) {
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 0), i), PT_OK);
    if (np_null(i)) assert_int_equal(pt_builder_append_null(pt_builder_child(b, 1), 1), PT_OK);
    else assert_int_equal(pt_builder_append_int(pt_builder_child(b, 1), i % 50), PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  struct ArrowArray batch;
  assert_int_equal(pt_builder_finish(b, &batch, &err), PT_OK);
  pt_builder_free(b);
  for (int dict = 0; dict <= 1; dict++) {
    pt_parquet_write_options o;
    pt_parquet_write_options_init(&o);
    o.page_bytes = 800; /* pages close as soon as they may (every 1024 rows) */
    o.use_dictionary = dict;
    o.data_page_version = 2 - dict;
    pt_buf file = {0};
    pt_parquet_writer *w;
    assert_int_equal(pt_parquet_writer_open_buf(&file, &schema, &o, &w, &err), PT_OK);
    assert_int_equal(pt_parquet_writer_write(w, &batch, &err), PT_OK);
    assert_int_equal(pt_parquet_writer_close(w, &err), PT_OK);
    pt_parquet_writer_free(w);
    const uint8_t *f = (const uint8_t *)file.data;
    pt__arena arena = {0};
    pt__pq_file_meta m;
    decode_footer(&file, &arena, &m);
    assert_int_equal(m.n_row_groups, 1);
    /* Each column's pages as row ranges [first[p], first[p + 1]). */
    int64_t n_pages[2], *first[2];
    bool *x_null_page = NULL, *x_has_null = NULL, *x_has_7 = NULL;
    int64_t null_pages = 0, no_null_pages = 0;
    for (int k = 0; k < 2; k++) {
      const pt__pq_column_chunk *cc = &m.row_groups[0].columns[k];
      pt__pq_offset_index oi;
      pt__pq_column_index ci;
      assert_int_equal(pt__pq_decode_offset_index(f + cc->offset_index_offset,
                                                  cc->offset_index_length, &arena, &oi, &err), PT_OK);
      assert_int_equal(pt__pq_decode_column_index(f + cc->column_index_offset,
                                                  cc->column_index_length, &arena, &ci, &err), PT_OK);
      assert_int_equal(ci.n_pages, oi.n_pages);
      assert_int_equal(ci.n_null_counts, oi.n_pages);
      assert_true(oi.n_pages > 0);
      n_pages[k] = oi.n_pages;
      size_t np = (size_t)(oi.n_pages > 0 ? oi.n_pages : 1);
      first[k] = malloc((np + 1) * sizeof *first[k]);
      for (int64_t p = 0; p < oi.n_pages; p++) first[k][p] = oi.pages[p].first_row_index;
      first[k][oi.n_pages] = NP_ROWS;
      if (k == 0) continue;
      x_null_page = calloc(np, sizeof *x_null_page);
      x_has_null = calloc(np, sizeof *x_has_null);
      x_has_7 = calloc(np, sizeof *x_has_7);
      for (int64_t p = 0; p < oi.n_pages; p++) {
        int64_t lo = first[1][p], hi = first[1][p + 1], nulls = 0;
        for (int64_t i = lo; i < hi; i++) {
          nulls += np_null(i);
          x_has_7[p] = x_has_7[p] || (!np_null(i) && i % 50 == 7);
        }
        assert_int_equal(ci.null_counts[p], nulls);
        assert_int_equal(ci.null_pages[p], nulls == hi - lo);
        if (ci.null_pages[p]) {
          assert_int_equal(ci.min_values[p].len, 0);
          assert_int_equal(ci.max_values[p].len, 0);
        }
        x_null_page[p] = ci.null_pages[p];
        x_has_null[p] = nulls > 0;
        null_pages += ci.null_pages[p];
        no_null_pages += nulls == 0;
      }
    }
    pt__arena_free(&arena);
    /* 60000 nulls in a row fill at least two pages of 20000 rows. */
    if (null_pages < 2)
      fail_msg("dictionary %d: %lld pages of nulls only", dict, (long long)null_pages);
    assert_true(no_null_pages >= 2);
    int64_t want_match[3] = {0, 0, 0}, want_sum[3] = {0, 0, 0};
    for (int64_t i = 0; i < NP_ROWS; i++) {
      bool ms[3] = {!np_null(i) && i % 50 == 7, !np_null(i), np_null(i)};
      for (int q = 0; q < 3; q++) {
        want_match[q] += ms[q];
        want_sum[q] += ms[q] ? i : 0;
      }
    }
    const int64_t seven = 7, lowest = INT64_MIN;
    for (int q = 0; q < 3; q++) {
      pt_parquet_filter *flt;
      int rc = q == 0   ? pt_parquet_filter_int("x", PT_PARQUET_EQ, &seven, 1, &flt, &err)
               : q == 1 ? pt_parquet_filter_int("x", PT_PARQUET_GE, &lowest, 1, &flt, &err)
                        : pt_parquet_filter_is_null("x", &flt, &err);
      assert_int_equal(rc, PT_OK);
      /* x's pages that may match: = 7 those with a 7, >= INT64_MIN those
       * with a value (not of nulls only), IS NULL those with a null. The
       * rows of the others are left out of both columns; a page of id is
       * skipped when none of its rows is kept. */
      int64_t want_rows = 0, want_skipped = 0;
      for (int64_t p = 0; p < n_pages[1]; p++) {
        bool may = q == 0 ? x_has_7[p] : q == 1 ? !x_null_page[p] : x_has_null[p];
        if (q == 0 && !x_null_page[p]) assert_true(x_has_7[p]); /* i % 50 in every value page */
        if (may) want_rows += first[1][p + 1] - first[1][p];
        else want_skipped++;
      }
      for (int64_t p = 0; p < n_pages[0]; p++) {
        bool kept = false;
        for (int64_t r = 0; r < n_pages[1] && !kept; r++) {
          bool may = q == 0 ? x_has_7[r] : q == 1 ? !x_null_page[r] : x_has_null[r];
          kept = may && first[1][r] < first[0][p + 1] && first[0][p] < first[1][r + 1];
        }
        want_skipped += !kept;
      }
      int64_t rows, match, sum, pr, ps;
      np_read(&file, flt, q, &rows, &match, &sum, &pr, &ps);
      assert_int_equal(match, want_match[q]);
      assert_int_equal(sum, want_sum[q]);
      assert_int_equal(rows, want_rows);
      assert_int_equal(pr + ps, n_pages[0] + n_pages[1]);
      assert_int_equal(ps, want_skipped);
      assert_true(ps >= (q == 2 ? no_null_pages : null_pages));
    }
    for (int k = 0; k < 2; k++) free(first[k]);
    free(x_null_page);
    free(x_has_null);
    free(x_has_7);
    pt_buf_free(&file);
  }
  batch.release(&batch);
  schema.release(&schema);
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

/* Page index: int64, utf8 and float64 columns with nulls and a stretch of
 * null rows, small pages, dictionary on (pages v1) and off (v2). */
#define PI_ROWS 3000
#define PI_RG 1500
static bool pi_null(int64_t i) { return i % 7 == 3 || (i >= 1000 && i < 1400); }
static int64_t pi_int(int64_t i) { return (int64_t)((uint64_t)(i * 2654435761u) % 100003) - 50000; }
static double pi_double(int64_t i) { return (double)pi_int(i * 3 + 1) / 8.0; }
static int pi_text(int64_t i, char *s) { return snprintf(s, 16, "v%lld", (long long)(pi_int(i) % 977)); }

static int cmp_bytes(const void *a, int64_t al, const void *b, int64_t bl) {
  int c = memcmp(a, b, (size_t)(al < bl ? al : bl));
  return c != 0 ? c : al < bl ? -1 : al > bl;
}

static void test_page_index_bounds(void **state) {
  (void)state;
  pt_error err;
  struct ArrowSchema schema;
  assert_int_equal(pt_schema_init(&schema, "+s", "", 0, 3, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[0], "l", "l", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[1], "u", "u", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[2], "g", "g", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&schema, &b, &err), PT_OK);
  char s[16];
  for (int64_t i = 0; i < PI_ROWS; i++) {
    if (pi_null(i)) {
      for (int k = 0; k < 3; k++) assert_int_equal(pt_builder_append_null(pt_builder_child(b, k), 1), PT_OK);
    } else {
      assert_int_equal(pt_builder_append_int(pt_builder_child(b, 0), pi_int(i)), PT_OK);
      assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 1), s, pi_text(i, s)), PT_OK);
      assert_int_equal(pt_builder_append_double(pt_builder_child(b, 2), pi_double(i)), PT_OK);
    }
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  struct ArrowArray batch;
  assert_int_equal(pt_builder_finish(b, &batch, &err), PT_OK);
  pt_builder_free(b);
  for (int dict = 0; dict <= 1; dict++) {
    pt_parquet_write_options o;
    pt_parquet_write_options_init(&o);
    o.row_group_rows = PI_RG;
    o.page_bytes = 300;
    o.use_dictionary = dict;
    o.data_page_version = 2 - dict;
    pt_buf buf = {0};
    pt_parquet_writer *w;
    assert_int_equal(pt_parquet_writer_open_buf(&buf, &schema, &o, &w, &err), PT_OK);
    /* In slices of 100 rows: pages close between the writes too. */
    for (int64_t at = 0; at < PI_ROWS; at += 100) {
      struct ArrowArray slice = batch;
      slice.offset = at;
      slice.length = 100;
      slice.release = no_release;
      assert_int_equal(pt_parquet_writer_write(w, &slice, &err), PT_OK);
    }
    assert_int_equal(pt_parquet_writer_close(w, &err), PT_OK);
    pt_parquet_writer_free(w);
    const uint8_t *f = (const uint8_t *)buf.data;
    pt__arena arena = {0};
    pt__pq_file_meta m;
    decode_footer(&buf, &arena, &m);
    assert_int_equal(m.n_row_groups, PI_ROWS / PI_RG);
    int64_t checked = 0, null_pages = 0;
    for (int64_t g = 0; g < m.n_row_groups; g++) {
      for (int k = 0; k < 3; k++) {
        const pt__pq_column_chunk *cc = &m.row_groups[g].columns[k];
        assert_true(cc->has_column_index && cc->has_offset_index);
        pt__pq_offset_index oi;
        pt__pq_column_index ci;
        assert_int_equal(pt__pq_decode_offset_index(f + cc->offset_index_offset,
                                                    cc->offset_index_length, &arena, &oi, &err), PT_OK);
        assert_int_equal(pt__pq_decode_column_index(f + cc->column_index_offset,
                                                    cc->column_index_length, &arena, &ci, &err), PT_OK);
        if (oi.n_pages < 3) fail_msg("dictionary %d, row group %lld, column %d: %lld pages", dict,
                                     (long long)g, k, (long long)oi.n_pages);
        assert_int_equal(ci.n_pages, oi.n_pages);
        assert_int_equal(ci.n_null_counts, oi.n_pages);
        for (int64_t p = 0; p < oi.n_pages; p++) {
          int64_t lo = g * PI_RG + oi.pages[p].first_row_index;
          int64_t hi = g * PI_RG + (p + 1 < oi.n_pages ? oi.pages[p + 1].first_row_index : PI_RG);
          assert_true(lo < hi);
          /* The true bounds of the page's rows. */
          int64_t nulls = 0, imin = INT64_MAX, imax = INT64_MIN;
          double dmin = 1e300, dmax = -1e300;
          char smin[16] = "", smax[16] = "";
          int sminl = -1, smaxl = -1;
          for (int64_t i = lo; i < hi; i++) {
            if (pi_null(i)) {
              nulls++;
              continue;
            }
            int64_t v = pi_int(i);
            double d = pi_double(i);
            imin = v < imin ? v : imin;
            imax = v > imax ? v : imax;
            dmin = d < dmin ? d : dmin;
            dmax = d > dmax ? d : dmax;
            int l = pi_text(i, s);
            if (sminl < 0 || cmp_bytes(s, l, smin, sminl) < 0) memcpy(smin, s, (size_t)(sminl = l));
            if (smaxl < 0 || cmp_bytes(s, l, smax, smaxl) > 0) memcpy(smax, s, (size_t)(smaxl = l));
          }
          assert_int_equal(ci.null_counts[p], nulls);
          assert_int_equal(ci.null_pages[p], nulls == hi - lo);
          if (nulls == hi - lo) {
            null_pages++;
            continue;
          }
          const pt__pq_bytes *mn = &ci.min_values[p], *mx = &ci.max_values[p];
          if (k == 0) {
            int64_t a, c;
            assert_int_equal(mn->len, 8);
            assert_int_equal(mx->len, 8);
            memcpy(&a, mn->data, 8);
            memcpy(&c, mx->data, 8);
            assert_int_equal(a, imin);
            assert_int_equal(c, imax);
          } else if (k == 1) {
            assert_int_equal(cmp_bytes(mn->data, mn->len, smin, sminl), 0);
            assert_int_equal(cmp_bytes(mx->data, mx->len, smax, smaxl), 0);
          } else {
            double a, c;
            assert_int_equal(mn->len, 8);
            memcpy(&a, mn->data, 8);
            memcpy(&c, mx->data, 8);
            assert_true(a == dmin && c == dmax);
          }
          checked++;
        }
      }
    }
    assert_true(checked > 20);
    /* Pages close on bytes of values, so the 400 null rows from 1000 sit
     * with values in a page of their own count (a page of nulls alone is
     * not made here; null_pages counts any). */
    (void)null_pages;
    pt__arena_free(&arena);
    pt_buf_free(&buf);
  }
  batch.release(&batch);
  schema.release(&schema);
}

/* The value of key in C Data metadata md, or NULL (into a static buffer). */
static const char *md_get(const char *md, const char *key) {
  static char out[64];
  if (md == NULL) return NULL;
  int32_t n;
  memcpy(&n, md, 4);
  const char *p = md + 4;
  for (int32_t j = 0; j < n; j++) {
    int32_t kl, vl;
    memcpy(&kl, p, 4);
    const char *k = p + 4;
    memcpy(&vl, k + kl, 4);
    const char *v = k + kl + 4;
    p = v + vl;
    if ((size_t)kl == strlen(key) && memcmp(k, key, (size_t)kl) == 0) {
      snprintf(out, sizeof out, "%.*s", (int)vl, v);
      return out;
    }
  }
  return NULL;
}

/* The schema's metadata and the extra pairs reach the footer (and come
 * back as the schema's metadata, with and without ARROW:schema); an
 * arrow.uuid column is written as UUID and read back as arrow.uuid. */
static void test_metadata_and_uuid(void **state) {
  (void)state;
  pt_error err;
  struct ArrowSchema schema;
  assert_int_equal(pt_schema_init(&schema, "+s", "", 0, 1, &err), PT_OK);
  const char *sk[] = {"k", "owner"}, *sv[] = {"v", "ml"};
  assert_int_equal(pt_schema_set_metadata(&schema, 2, sk, sv, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[0], "w:16", "u", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  const char *fk[] = {"ARROW:extension:name", "ARROW:extension:metadata"}, *fv[] = {"arrow.uuid", ""};
  assert_int_equal(pt_schema_set_metadata(schema.children[0], 2, fk, fv, &err), PT_OK);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&schema, &b, &err), PT_OK);
  assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 0), "0123456789abcdef", 16), PT_OK);
  assert_int_equal(pt_builder_append_row(b), PT_OK);
  struct ArrowArray batch;
  assert_int_equal(pt_builder_finish(b, &batch, &err), PT_OK);
  pt_builder_free(b);
  for (int store = 0; store <= 1; store++) {
    pt_parquet_write_options o;
    pt_parquet_write_options_init(&o);
    o.store_arrow_schema = store;
    const char *keys[] = {"extra", "k"}, *values[] = {"x", NULL};
    o.metadata_keys = keys;
    o.metadata_values = values;
    o.n_metadata = 2;
    pt_buf buf = {0};
    write_buf_opts(&schema, &batch, &o, &buf, PT_OK, NULL);
    /* The footer: ARROW:schema (when stored), then k (given "" by the
     * options), owner, extra. */
    pt__arena arena = {0};
    pt__pq_file_meta m;
    decode_footer(&buf, &arena, &m);
    assert_int_equal(m.n_kv, 3 + store);
    const char *want[][2] = {{"k", ""}, {"owner", "ml"}, {"extra", "x"}};
    for (int j = 0; j < 3; j++) {
      const pt__pq_kv *kv = &m.kv[j + store];
      assert_int_equal(kv->key.len, (int64_t)strlen(want[j][0]));
      assert_memory_equal(kv->key.data, want[j][0], strlen(want[j][0]));
      assert_int_equal(kv->value.len, (int64_t)strlen(want[j][1]));
      assert_memory_equal(kv->value.data, want[j][1], strlen(want[j][1]));
    }
    assert_int_equal(m.schema[1].logical.kind, PT__LT_UUID);
    pt__arena_free(&arena);
    struct ArrowArrayStream s;
    assert_int_equal(pt_parquet_read_buffer(buf.data, (int64_t)buf.len, NULL, NULL, NULL, &s, &err), PT_OK);
    struct ArrowSchema back;
    assert_int_equal(s.get_schema(&s, &back), 0);
    assert_string_equal(md_get(back.metadata, "owner"), "ml");
    assert_string_equal(md_get(back.metadata, "k"), "");
    assert_string_equal(md_get(back.metadata, "extra"), "x");
    assert_string_equal(back.children[0]->format, "w:16");
    assert_string_equal(md_get(back.children[0]->metadata, "ARROW:extension:name"), "arrow.uuid");
    back.release(&back);
    s.release(&s);
    pt_buf_free(&buf);
  }
  /* ARROW:schema is the writer's own key. */
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  const char *bad[] = {"ARROW:schema"};
  o.metadata_keys = bad;
  o.n_metadata = 1;
  pt_buf buf = {0};
  pt_parquet_writer *w;
  assert_int_equal(pt_parquet_writer_open_buf(&buf, &schema, &o, &w, &err), PT_EINVAL);
  assert_string_equal(err.message, "parquet: metadata key ARROW:schema is the writer's own "
                                   "(store_arrow_schema); choose another key");
  pt_buf_free(&buf);
  batch.release(&batch);
  schema.release(&schema);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metadata_and_uuid),
      cmocka_unit_test(test_page_index_bounds),
      cmocka_unit_test(test_page_index_null_pages),
      cmocka_unit_test(test_month_intervals),
      cmocka_unit_test(test_day_time_intervals),
      cmocka_unit_test(test_threads_same_bytes),
      cmocka_unit_test(test_threads_errors),
      cmocka_unit_test(test_threads_out_of_memory),
      cmocka_unit_test(test_snappy_round_trip),
  };
  return cmocka_run_group_tests_name("parquet_write", tests, NULL, NULL);
}
