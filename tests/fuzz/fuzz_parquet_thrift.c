/* fuzz_parquet_thrift.c — libFuzzer target for the Thrift compact-protocol
 * decoder of src/parquet: the input is decoded as a FileMetaData, a
 * PageHeader, a ColumnIndex and an OffsetIndex (the page index). What
 * decodes must encode and decode again to the same counts; a difference is
 * a bug: abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parquet/parquet_int.h"

static void check_column_index(const uint8_t *data, size_t size) {
  pt_error err;
  pt__arena arena = {0};
  pt__pq_column_index ci;
  if (pt__pq_decode_column_index(data, (int64_t)size, &arena, &ci, &err) == PT_OK) {
    pt_buf buf = {0};
    if (pt__pq_encode_column_index(&ci, &buf) == PT_OK) {
      pt__arena arena2 = {0};
      pt__pq_column_index ci2;
      if (pt__pq_decode_column_index((uint8_t *)buf.data, (int64_t)buf.len, &arena2, &ci2, &err) !=
              PT_OK ||
          ci2.n_pages != ci.n_pages || ci2.n_min != ci.n_min || ci2.n_max != ci.n_max ||
          ci2.n_null_counts != ci.n_null_counts || ci2.boundary_order != ci.boundary_order) {
        fprintf(stderr, "re-encoded column index differs: %s\n", err.message);
        abort();
      }
      pt__arena_free(&arena2);
    }
    pt_buf_free(&buf);
  }
  pt__arena_free(&arena);
}

static void check_offset_index(const uint8_t *data, size_t size) {
  pt_error err;
  pt__arena arena = {0};
  pt__pq_offset_index oi;
  if (pt__pq_decode_offset_index(data, (int64_t)size, &arena, &oi, &err) == PT_OK) {
    pt_buf buf = {0};
    if (pt__pq_encode_offset_index(&oi, &buf) == PT_OK) {
      pt__arena arena2 = {0};
      pt__pq_offset_index oi2;
      if (pt__pq_decode_offset_index((uint8_t *)buf.data, (int64_t)buf.len, &arena2, &oi2, &err) !=
              PT_OK ||
          oi2.n_pages != oi.n_pages ||
          (oi.n_pages > 0 && (oi2.pages[0].offset != oi.pages[0].offset ||
                              oi2.pages[oi.n_pages - 1].first_row_index !=
                                  oi.pages[oi.n_pages - 1].first_row_index))) {
        fprintf(stderr, "re-encoded offset index differs: %s\n", err.message);
        abort();
      }
      pt__arena_free(&arena2);
    }
    pt_buf_free(&buf);
  }
  pt__arena_free(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A private copy, so reads past the input's end hit ASan's redzone. */
  uint8_t *copy = malloc(size ? size : 1);
  if (copy == NULL) return 0;
  memcpy(copy, data, size);
  pt_error err;
  pt__arena arena = {0};
  pt__pq_file_meta m;
  if (pt__pq_decode_file_meta(copy, (int64_t)size, &arena, &m, &err) == PT_OK) {
    pt_buf buf = {0};
    if (pt__pq_encode_file_meta(&m, &buf) == PT_OK) {
      pt__arena arena2 = {0};
      pt__pq_file_meta m2;
      if (pt__pq_decode_file_meta((uint8_t *)buf.data, (int64_t)buf.len, &arena2, &m2, &err) !=
              PT_OK ||
          m2.n_schema != m.n_schema || m2.n_row_groups != m.n_row_groups ||
          m2.num_rows != m.num_rows || m2.n_kv != m.n_kv) {
        fprintf(stderr, "re-encoded metadata differs: %s\n", err.message);
        abort();
      }
      pt__arena_free(&arena2);
    }
    pt_buf_free(&buf);
  }
  pt__arena_free(&arena);
  pt__pq_page_header h;
  int64_t used;
  if (pt__pq_decode_page_header(copy, (int64_t)size, &h, &used, &err) == PT_OK &&
      (used < 0 || used > (int64_t)size))
    abort();
  check_column_index(copy, size);
  check_offset_index(copy, size);
  free(copy);
  return 0;
}
