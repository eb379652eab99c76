/* test_parquet_corrupt.c — the Parquet reader on bad input: the files of
 * tests/data/parquet cut at every byte and with seeded byte flips, and
 * hand-made damage with its exact messages. Each read must fail with a clear
 * error or give batches that validate; the ASan build checks that no byte
 * outside the input is read.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "parquet/parquet_int.h"

static const char *const FILES[] = {
    "v1_snappy_dict.parquet", "v2_zstd_dict.parquet", "v1_plain_none.parquet",
    "v2_gzip_plain.parquet",  "v1_lz4_brotli.parquet", "v2_delta_split.parquet",
    "v1_delta_length.parquet", "nested.parquet", "int96.parquet",
    "v1_rowgroups_mixed.parquet",
};

typedef struct bytes {
  uint8_t *data;
  int64_t size;
} bytes;

static bytes load(const char *name) {
  const char *src = getenv("PT_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/data/parquet/%s", src ? src : ".", name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  bytes b = {NULL, ftell(f)};
  fseek(f, 0, SEEK_SET);
  b.data = malloc((size_t)b.size);
  assert_int_equal(fread(b.data, 1, (size_t)b.size, f), (size_t)b.size);
  fclose(f);
  return b;
}

/* Reads everything from a private copy of data[0, size) on `threads`
 * threads (0: one, without reading ahead on a second); returns the first failure status (its message in *err) or
 * PT_OK; *rows = rows read; with json, the batches as JSON lines. */
static int read_with(const uint8_t *data, int64_t size, int threads, int64_t *rows, pt_buf *json,
                     pt_error *err) {
  uint8_t *copy = malloc((size_t)(size ? size : 1));
  memcpy(copy, data, (size_t)size);
  struct ArrowArrayStream s;
  pt_parquet_read_options opts;
  pt_parquet_read_options_init(&opts);
  opts.batch_size = 16;
  opts.threads = threads > 0 ? threads : 1;
  opts.no_readahead = threads == 0;
  *rows = 0;
  int rc = pt_parquet_read_buffer(copy, size, NULL, NULL, &opts, &s, err);
  if (rc != PT_OK) {
    if (rc != PT_EFORMAT && rc != PT_ENOTSUP) fail_msg("status %d: %s", rc, err->message);
    free(copy);
    return rc;
  }
  struct ArrowSchema schema;
  assert_int_equal(s.get_schema(&s, &schema), 0);
  for (;;) {
    struct ArrowArray a;
    int e = s.get_next(&s, &a);
    if (e != 0) {
      if (e != EINVAL && e != ENOSYS) fail_msg("errno %d: %s", e, s.get_last_error(&s));
      snprintf(err->message, sizeof err->message, "%s", s.get_last_error(&s));
      rc = e == EINVAL ? PT_EFORMAT : PT_ENOTSUP;
      break;
    }
    if (a.release == NULL) break;
    pt_error verr;
    if (pt_array_validate(&schema, &a, &verr) != PT_OK)
      fail_msg("the reader returned an invalid batch: %s", verr.message);
    pt_buf out = {0};
    pt_json_write_batch(&schema, &a, json ? json : &out, &verr);
    pt_buf_free(&out);
    *rows += a.length;
    a.release(&a);
  }
  schema.release(&schema);
  s.release(&s);
  free(copy);
  return rc;
}

static int read_all(const uint8_t *data, int64_t size, int64_t *rows, pt_error *err) {
  return read_with(data, size, 1, rows, NULL, err);
}

/* The same on the calling thread alone. */
static int read_alone(const uint8_t *data, int64_t size, int64_t *rows, pt_error *err) {
  return read_with(data, size, 0, rows, NULL, err);
}

static void test_files_read_whole(void **state) {
  for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
    bytes b = load(FILES[i]);
    pt_error err = {0};
    int64_t rows;
    if (read_all(b.data, b.size, &rows, &err) != PT_OK) fail_msg("%s: %s", FILES[i], err.message);
    assert_int_equal(rows, strcmp(FILES[i], "int96.parquet") == 0    ? 3
                           : strcmp(FILES[i], "nested.parquet") == 0 ? 30
                                                                     : 40);
    free(b.data);
  }
}

/* Every prefix fails cleanly, with the file's label in front. */
static void test_truncation_at_every_byte(void **state) {
  for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
    bytes b = load(FILES[i]);
    for (int64_t n = 0; n < b.size; n++) {
      pt_error err = {0};
      int64_t rows;
      int rc = read_all(b.data, n, &rows, &err);
      if (rc == PT_OK) fail_msg("%s cut at %lld read without error", FILES[i], (long long)n);
      assert_true(strncmp(err.message, "parquet: buffer: ", 17) == 0);
    }
    free(b.data);
  }
}

/* Seeded byte flips anywhere: a clear error or valid batches. */
static void test_byte_flips(void **state) {
  uint32_t seed = 2024;
  int failures = 0, total = 0;
  for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
    bytes b = load(FILES[i]);
    uint8_t *copy = malloc((size_t)b.size);
    for (int round = 0; round < 1500; round++) {
      memcpy(copy, b.data, (size_t)b.size);
      for (int k = 0; k < 1 + round % 3; k++) {
        seed = seed * 1103515245u + 12345u;
        copy[(seed >> 8) % (uint32_t)b.size] ^= (uint8_t)(1u << ((seed >> 4) & 7));
      }
      pt_error err = {0};
      int64_t rows;
      int rc = read_all(copy, b.size, &rows, &err);
      if (rc != PT_OK) {
        failures++;
        assert_true(strncmp(err.message, "parquet: buffer: ", 17) == 0);
      }
      total++;
    }
    free(copy);
    free(b.data);
  }
  /* Most flips land in values (still valid data); some must be caught. */
  assert_true(failures > 0 && failures < total);
}

/* Decoding on several threads (column chunks shared out; with 16, several
 * row groups at once), or on one with the next row group read ahead on a
 * second, gives the same batches as the calling thread alone, and on
 * damaged files the same rows before the same error. */
static void test_threads_same_as_one(void **state) {
  uint32_t seed = 77;
  int failures = 0;
  for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
    bytes b = load(FILES[i]);
    uint8_t *copy = malloc((size_t)b.size);
    for (int round = 0; round < 300; round++) {
      memcpy(copy, b.data, (size_t)b.size);
      for (int k = 0; round > 0 && k < 1 + round % 3; k++) {
        seed = seed * 1103515245u + 12345u;
        copy[(seed >> 8) % (uint32_t)b.size] ^= (uint8_t)(1u << ((seed >> 4) & 7));
      }
      pt_error err1 = {0};
      int64_t rows1;
      pt_buf json1 = {0};
      int rc1 = read_with(copy, b.size, 0, &rows1, &json1, &err1);
      failures += rc1 != PT_OK;
      for (int threads = 1; threads <= 16; threads = threads == 1 ? 2 : threads + 14) {
        pt_error errn = {0};
        int64_t rowsn;
        pt_buf jsonn = {0};
        int rcn = read_with(copy, b.size, threads, &rowsn, &jsonn, &errn);
        if (rcn != rc1 || rowsn != rows1 || jsonn.len != json1.len ||
            (json1.len > 0 && memcmp(jsonn.data, json1.data, json1.len) != 0) ||
            strcmp(errn.message, err1.message) != 0)
          fail_msg("%s, round %d, %d threads: %d, %lld rows, '%s'; one thread: %d, %lld rows, '%s'",
                   FILES[i], round, threads, rcn, (long long)rowsn, errn.message, rc1,
                   (long long)rows1, err1.message);
        pt_buf_free(&jsonn);
      }
      pt_buf_free(&json1);
    }
    free(copy);
    free(b.data);
  }
  assert_true(failures > 0);
}

/* Where the first data page of column `col` of row group `rg` starts, and
 * its header: from the file's own footer. */
static int64_t page_at(const bytes *b, int64_t rg, int64_t col, pt__pq_page_header *h,
                       int64_t *header_len) {
  uint32_t flen = pt__load_u32(b->data + b->size - 8);
  pt__arena arena = {0};
  pt__pq_file_meta m;
  pt_error err;
  if (pt__pq_decode_file_meta(b->data + b->size - 8 - flen, flen, &arena, &m, &err) != PT_OK)
    fail_msg("footer: %s", err.message);
  assert_true(rg < m.n_row_groups && col < m.row_groups[rg].n_columns);
  int64_t at = m.row_groups[rg].columns[col].meta.data_page_offset;
  pt__arena_free(&arena);
  if (pt__pq_decode_page_header(b->data + at, b->size - at, h, header_len, &err) != PT_OK)
    fail_msg("page header: %s", err.message);
  return at;
}

/* A damaged page in a row group that one thread reads ahead on a second:
 * the error names the row group, column and page, after every row of the
 * row groups before it, whichever thread met it, and nothing leaks (ASan).
 * v1_rowgroups_mixed.parquet: five row groups of 8 rows; i32 (column 0)
 * is ZSTD, i64 (column 1) SNAPPY, s (column 5) ZSTD. */
static void test_readahead_errors(void **state) {
  bytes b = load("v1_rowgroups_mixed.parquet");
  uint8_t *copy = malloc((size_t)b.size);
  const struct {
    int64_t rg, col;
    const char *name;
  } cases[] = {{1, 0, "i32"}, {3, 1, "i64"}, {2, 5, "s"}, {4, 0, "i32"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memcpy(copy, b.data, (size_t)b.size);
    pt__pq_page_header h;
    int64_t hl;
    int64_t at = page_at(&b, cases[i].rg, cases[i].col, &h, &hl);
    /* The compressed body made noise: the codec refuses it. */
    for (int32_t k = 0; k < h.compressed_size; k++) copy[at + hl + k] = (uint8_t)(0xA5 ^ (k * 7));
    char want[128];
    snprintf(want, sizeof want, "parquet: buffer: row group %lld, column '%s', page ",
             (long long)cases[i].rg, cases[i].name);
    pt_error alone = {0};
    int64_t rows_alone;
    assert_int_equal(read_alone(copy, b.size, &rows_alone, &alone), PT_EFORMAT);
    assert_int_equal(rows_alone, cases[i].rg * 8);
    if (strncmp(alone.message, want, strlen(want)) != 0)
      fail_msg("'%s' does not start with '%s'", alone.message, want);
    /* Either thread may take the damaged row group: the same every time. */
    for (int round = 0; round < 20; round++) {
      pt_error err = {0};
      int64_t rows;
      assert_int_equal(read_all(copy, b.size, &rows, &err), PT_EFORMAT);
      assert_int_equal(rows, rows_alone);
      assert_string_equal(err.message, alone.message);
    }
  }
  free(copy);
  free(b.data);
}

static int open_err(const uint8_t *data, int64_t size, pt_error *err) {
  struct ArrowArrayStream s;
  int rc = pt_parquet_read_buffer(data, size, NULL, NULL, NULL, &s, err);
  if (rc == PT_OK) s.release(&s);
  return rc;
}

static void test_exact_messages(void **state) {
  pt_error err;
  assert_int_equal(open_err((const uint8_t *)"PAR1", 4, &err), PT_EFORMAT);
  assert_string_equal(err.message, "parquet: buffer: not a Parquet file: 4 bytes is too short");
  assert_int_equal(open_err((const uint8_t *)"ARROW1\0\0ARROW1", 14, &err), PT_EFORMAT);
  assert_string_equal(err.message, "parquet: buffer: not a Parquet file: no PAR1 magic at the start");

  bytes b = load("v1_plain_none.parquet");
  uint8_t *copy = malloc((size_t)b.size);
  /* The footer length pointing before the start. */
  memcpy(copy, b.data, (size_t)b.size);
  pt__store_u32(copy + b.size - 8, (uint32_t)b.size);
  assert_int_equal(open_err(copy, b.size, &err), PT_EFORMAT);
  char want[256];
  snprintf(want, sizeof want,
           "parquet: buffer: footer of %lld bytes does not fit the %lld-byte file",
           (long long)b.size, (long long)b.size);
  assert_string_equal(err.message, want);
  /* The end magic gone. */
  memcpy(copy, b.data, (size_t)b.size);
  copy[b.size - 1] = 'X';
  assert_int_equal(open_err(copy, b.size, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "parquet: buffer: no PAR1 magic at the end: the file is truncated or not "
                      "Parquet");
  /* An encrypted footer. */
  memcpy(copy + b.size - 4, "PARE", 4);
  assert_int_equal(open_err(copy, b.size, &err), PT_ENOTSUP);
  assert_string_equal(err.message,
                      "parquet: buffer: encrypted Parquet files (PARE footer) are not supported");
  /* The first page's header cut: its compressed size made huge. The first
   * page header starts at byte 4: type (0x15 0x00), uncompressed size,
   * compressed size. */
  memcpy(copy, b.data, (size_t)b.size);
  assert_int_equal(copy[4], 0x15);
  int64_t rows;
  int p = 7;
  while (copy[p] & 0x80) p++; /* skip the uncompressed size */
  p++;
  assert_int_equal(copy[p], 0x15); /* the compressed size's field header */
  assert_int_equal(copy[p + 1] & 0x80, 0x80); /* a two-byte varint: keep its length */
  copy[p + 1] = 0xff;
  copy[p + 2] = 0x7f; /* zigzag 16383 = -8192 */
  assert_int_equal(read_all(copy, b.size, &rows, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "parquet: buffer: row group 0, column 'i32', page 0: negative page size "
                      "(-8192 compressed, 146 uncompressed)");
  free(copy);
  free(b.data);
}

/* Reads the file at path to its end; PT_OK or the first failure (its
 * message in *err). */
static int read_path_all(const char *path, pt_error *err) {
  struct ArrowArrayStream s;
  int rc = pt_parquet_read_path(path, NULL, &s, err);
  if (rc != PT_OK) return rc;
  for (;;) {
    struct ArrowArray a;
    int e = s.get_next(&s, &a);
    if (e != 0) {
      snprintf(err->message, sizeof err->message, "%s", s.get_last_error(&s));
      rc = e == EINVAL ? PT_EFORMAT : e == ENOSYS ? PT_ENOTSUP : PT_EIO;
      break;
    }
    if (a.release == NULL) break;
    a.release(&a);
  }
  s.release(&s);
  return rc;
}

static void write_file(const char *path, const uint8_t *data, int64_t size) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, (size_t)size, f), (size_t)size);
  fclose(f);
}

/* Rewrites the varint at p (of *len bytes) as v in the same number of
 * bytes (continuation bits pad it): the header keeps its length. */
static void put_varint_in_place(uint8_t *p, int len, uint64_t v) {
  for (int k = 0; k < len; k++) {
    p[k] = (uint8_t)(v & 0x7f) | (k < len - 1 ? 0x80 : 0);
    v >>= 7;
  }
  assert_int_equal(v, 0);
}

static int varint_len(const uint8_t *p) {
  int n = 1;
  while (p[n - 1] & 0x80) n++;
  return n;
}

/* Damage inside the pages of a file on disk: the error names the file's
 * path, the row group, the column and the page (counted from the chunk's
 * first, the dictionary page included), not only the footer. */
static void test_page_damage_names_file_and_page(void **state) {
  char dir[] = "/tmp/pt-pq-damage.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/damaged.parquet", dir);

  /* Every page of every compressed chunk (ZSTD, SNAPPY and others, by
   * column), its body made noise: the codec refuses it. */
  bytes b = load("v1_rowgroups_mixed.parquet");
  uint8_t *copy = malloc((size_t)b.size);
  uint32_t flen = pt__load_u32(b.data + b.size - 8);
  pt__arena arena = {0};
  pt__pq_file_meta m;
  pt_error err;
  if (pt__pq_decode_file_meta(b.data + b.size - 8 - flen, flen, &arena, &m, &err) != PT_OK)
    fail_msg("footer: %s", err.message);
  int damaged = 0;
  for (int64_t rg = 0; rg < m.n_row_groups; rg++) {
    for (int64_t col = 0; col < m.row_groups[rg].n_columns; col++) {
      const pt__pq_column_meta *cm = &m.row_groups[rg].columns[col].meta;
      if (cm->codec == PT__CODEC_UNCOMPRESSED) continue; /* noise may be values */
      int64_t at = cm->has_dictionary_page_offset && cm->dictionary_page_offset > 0
                       ? cm->dictionary_page_offset
                       : cm->data_page_offset;
      int64_t end = at + cm->total_compressed_size;
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)cm->path[0].len, (const char *)cm->path[0].data);
      for (int64_t page = 0; at < end; page++) {
        pt__pq_page_header h;
        int64_t hl;
        if (pt__pq_decode_page_header(b.data + at, end - at, &h, &hl, &err) != PT_OK)
          fail_msg("page header: %s", err.message);
        memcpy(copy, b.data, (size_t)b.size);
        for (int32_t k = 0; k < h.compressed_size; k++) copy[at + hl + k] = (uint8_t)(0x5A ^ (k * 13));
        write_file(path, copy, b.size);
        char want[512];
        snprintf(want, sizeof want, "parquet: %s: row group %lld, column '%s', page %lld: ", path,
                 (long long)rg, name, (long long)page);
        pt_error got = {0};
        assert_int_equal(read_path_all(path, &got), PT_EFORMAT);
        if (strncmp(got.message, want, strlen(want)) != 0)
          fail_msg("'%s' does not start with '%s'", got.message, want);
        damaged++;
        at += hl + h.compressed_size;
      }
    }
  }
  assert_true(damaged >= 40); /* 5 row groups of 8 compressed columns, a page or more each */
  pt__arena_free(&arena);
  free(copy);
  free(b.data);

  /* An uncompressed file whose pages are cut short: each column's page
   * claims 16 bytes fewer (2 for pages under 64 bytes; both sizes), so
   * its values run out. */
  b = load("v1_plain_none.parquet");
  copy = malloc((size_t)b.size);
  flen = pt__load_u32(b.data + b.size - 8);
  arena = (pt__arena){0};
  if (pt__pq_decode_file_meta(b.data + b.size - 8 - flen, flen, &arena, &m, &err) != PT_OK)
    fail_msg("footer: %s", err.message);
  for (int64_t col = 0; col < m.row_groups[0].n_columns; col++) {
    const pt__pq_column_meta *cm = &m.row_groups[0].columns[col].meta;
    int64_t at = cm->data_page_offset;
    pt__pq_page_header h;
    int64_t hl;
    if (pt__pq_decode_page_header(b.data + at, b.size - at, &h, &hl, &err) != PT_OK)
      fail_msg("page header: %s", err.message);
    int32_t cut = h.compressed_size >= 64 ? 16 : 2;
    memcpy(copy, b.data, (size_t)b.size);
    /* type (0x15 varint), uncompressed size (0x15 varint), compressed size
     * (0x15 varint): zigzag values. */
    uint8_t *p = copy + at;
    assert_int_equal(p[0], 0x15);
    p += 1 + varint_len(p + 1);
    for (int f = 0; f < 2; f++) {
      assert_int_equal(p[0], 0x15);
      int len = varint_len(p + 1);
      put_varint_in_place(p + 1, len, (uint64_t)(h.compressed_size - cut) * 2);
      p += 1 + len;
    }
    write_file(path, copy, b.size);
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)cm->path[0].len, (const char *)cm->path[0].data);
    char want[512];
    snprintf(want, sizeof want, "parquet: %s: row group 0, column '%s', page 0: ", path, name);
    pt_error got = {0};
    assert_int_equal(read_path_all(path, &got), PT_EFORMAT);
    if (strncmp(got.message, want, strlen(want)) != 0)
      fail_msg("'%s' does not start with '%s'", got.message, want);
    if (strcmp(name, "i64") == 0) {
      /* 40 values of 8 bytes, the page's levels before them. */
      snprintf(want, sizeof want,
               "parquet: %s: row group 0, column 'i64', page 0: 40 values need 320 bytes but the "
               "page has 304",
               path);
      assert_string_equal(got.message, want);
    }
  }
  pt__arena_free(&arena);
  free(copy);
  free(b.data);
  unlink(path);
  rmdir(dir);
}

/* Inputs the fuzzer found, kept as seeds: each must fail cleanly (under
 * ASan: without leaking). */
static void test_fuzz_regressions(void **state) {
  const char *src = getenv("PT_SOURCE_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/fuzz/corpus/parquet/regress-second-dictionary.parquet",
           src ? src : ".");
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *data = malloc((size_t)size);
  assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  pt_error err = {0};
  int64_t rows;
  assert_int_equal(read_all(data, size, &rows, &err), PT_EFORMAT);
  assert_non_null(strstr(err.message, "a second dictionary page"));
  free(data);
  /* Pages without values (a dictionary page of nulls, DELTA values of
   * none) decoded by a thread whose scratch has no buffers yet: the
   * sanitizers' build stopped on the null pointer arithmetic there was.
   * The same result on 1 and 3 threads. */
  static const char *const threaded[] = {"regress-null-dict-page-threads.parquet",
                                         "regress-null-plain-threads.parquet"};
  for (size_t i = 0; i < 2; i++) {
    char name[256];
    snprintf(name, sizeof name, "../../fuzz/corpus/parquet/%s", threaded[i]);
    bytes b = load(name);
    pt_error err1 = {0}, err3 = {0};
    int64_t rows1, rows3;
    int rc1 = read_with(b.data, b.size, 1, &rows1, NULL, &err1);
    int rc3 = read_with(b.data, b.size, 3, &rows3, NULL, &err3);
    assert_int_equal(rc1, rc3);
    assert_int_equal(rows1, rows3);
    assert_string_equal(err1.message, err3.message);
    free(b.data);
  }
  /* A time32 column whose values a flip took past one day: the reader gave
   * an array Arrow's validation refuses; the read now fails. */
  bytes t = load("../../fuzz/corpus/parquet/regress-time-past-a-day.parquet");
  pt_error terr = {0};
  assert_int_equal(read_alone(t.data, t.size, &rows, &terr), PT_EFORMAT);
  if (strstr(terr.message, "column 't32': TIME value ") == NULL ||
      strstr(terr.message, " is not within one day (of 86400000 ms)") == NULL)
    fail_msg("unexpected message: %s", terr.message);
  free(t.data);
}

/* A file of the writer with a page index: 20000 sorted ids in pages of
 * about 100 rows, and a string column. */
static pt_buf page_index_file(void) {
  struct ArrowSchema schema;
  pt_error err;
  assert_int_equal(pt_schema_init(&schema, "+s", "", 0, 2, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[0], "l", "id", 0, 0, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[1], "u", "s", ARROW_FLAG_NULLABLE, 0, &err), PT_OK);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&schema, &b, &err), PT_OK);
  for (int64_t i = 0; i < 20000; i++) {
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 0), i), PT_OK);
    char t[16];
    int n = snprintf(t, sizeof t, "k%lld", (long long)(i % 7));
    if (i % 5 == 0) assert_int_equal(pt_builder_append_null(pt_builder_child(b, 1), 1), PT_OK);
    else assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 1), t, n), PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  struct ArrowArray batch;
  assert_int_equal(pt_builder_finish(b, &batch, &err), PT_OK);
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.page_bytes = 800;
  o.use_dictionary = 0;
  pt_buf buf = {0};
  pt_parquet_writer *w;
  assert_int_equal(pt_parquet_writer_open_buf(&buf, &schema, &o, &w, &err), PT_OK);
  assert_int_equal(pt_parquet_writer_write(w, &batch, &err), PT_OK);
  assert_int_equal(pt_parquet_writer_close(w, &err), PT_OK);
  pt_parquet_writer_free(w);
  batch.release(&batch);
  pt_builder_free(b);
  schema.release(&schema);
  return buf;
}

/* Reads data with the filter id in [lo, hi); *rows, *ok_rows: rows read and
 * those in range; the pages counts. Returns the status. */
static int read_filtered(const uint8_t *data, int64_t size, int64_t lo, int64_t hi, int64_t *rows,
                         int64_t *ok_rows, int64_t *pages_read, int64_t *pages_skipped) {
  pt_error err;
  pt_parquet_filter *a, *z, *f;
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_GE, &lo, 1, &a, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_int("id", PT_PARQUET_LT, &hi, 1, &z, &err), PT_OK);
  assert_int_equal(pt_parquet_filter_combine(PT_PARQUET_AND, a, z, &f, &err), PT_OK);
  pt_parquet_read_options opts;
  pt_parquet_read_options_init(&opts);
  opts.filter = f;
  struct ArrowArrayStream s;
  int rc = pt_parquet_read_buffer(data, size, NULL, NULL, &opts, &s, &err);
  pt_parquet_filter_free(f);
  *rows = *ok_rows = 0;
  if (rc != PT_OK) return rc;
  struct ArrowSchema schema;
  assert_int_equal(s.get_schema(&s, &schema), 0);
  for (;;) {
    struct ArrowArray arr;
    if (s.get_next(&s, &arr) != 0) {
      rc = PT_EFORMAT;
      break;
    }
    if (arr.release == NULL) break;
    if (pt_array_validate(&schema, &arr, &err) != PT_OK)
      fail_msg("the reader returned an invalid batch: %s", err.message);
    const struct ArrowArray *id = arr.children[0];
    for (int64_t i = 0; i < arr.length; i++) {
      int64_t v = ((const int64_t *)id->buffers[1])[id->offset + arr.offset + i];
      *ok_rows += v >= lo && v < hi;
    }
    *rows += arr.length;
    arr.release(&arr);
  }
  assert_int_equal(pt_parquet_stream_pages(&s, pages_read, pages_skipped, &err), PT_OK);
  schema.release(&schema);
  s.release(&s);
  return rc;
}

/* Pages the page index rules out are not decoded, in any column, and the
 * rows of the others are all there; a damaged page index never crashes
 * the reader nor loses a matching row: it is decoded within its bounds
 * and ignored when it does not hold together. */
static void test_page_index(void **state) {
  pt_buf file = page_index_file();
  int64_t rows, ok, pr, ps;
  assert_int_equal(read_filtered((uint8_t *)file.data, (int64_t)file.len, 5000, 5100, &rows, &ok,
                                 &pr, &ps), PT_OK);
  assert_int_equal(ok, 100);
  assert_true(rows >= 100 && rows <= 2048); /* the pages around [5000, 5100) */
  assert_true(ps > 10 * pr);                /* most pages of both columns passed over */
  /* A filter outside every page: the row group is skipped whole. */
  assert_int_equal(read_filtered((uint8_t *)file.data, (int64_t)file.len, 30000, 40000, &rows,
                                 &ok, &pr, &ps), PT_OK);
  assert_int_equal(rows, 0);
  /* Byte flips in the page indexes (between the last page and the footer). */
  pt__arena arena = {0};
  pt__pq_file_meta m;
  uint32_t flen = pt__load_u32((uint8_t *)file.data + file.len - 8);
  pt_error err;
  assert_int_equal(pt__pq_decode_file_meta((uint8_t *)file.data + file.len - 8 - flen, flen, &arena,
                                           &m, &err), PT_OK);
  int64_t start = m.row_groups[0].columns[0].column_index_offset;
  int64_t end = (int64_t)file.len - 8 - flen;
  assert_true(m.row_groups[0].columns[0].has_column_index && start > 4 && start < end);
  pt__arena_free(&arena);
  uint8_t *copy = malloc(file.len);
  uint32_t seed = 7;
  for (int round = 0; round < 2000; round++) {
    memcpy(copy, file.data, file.len);
    for (int k = 0; k < 1 + round % 3; k++) {
      seed = seed * 1103515245u + 12345u;
      copy[start + (seed >> 8) % (uint32_t)(end - start)] ^= (uint8_t)(1u << ((seed >> 4) & 7));
    }
    int rc = read_filtered(copy, (int64_t)file.len, 5000, 5100, &rows, &ok, &pr, &ps);
    /* A flipped min/max may hide matching pages (the index is the file's
     * word); what comes back is valid, and never more than the file. */
    assert_true(rc == PT_OK || rc == PT_EFORMAT);
    assert_true(rows <= 20000 && ok <= 100);
  }
  free(copy);
  pt_buf_free(&file);
}

/* INT96 timestamps: timestamp[ns] as pyarrow reads them, but a table
 * format's read (plain_binary: Delta, whose timestamp is microseconds in
 * UTC) gets timestamp[us, UTC] with the same instants. */
static void test_int96_for_a_table_format(void **state) {
  (void)state;
  bytes b = load("int96.parquet");
  const int64_t want_s[] = {0, 1600000000};
  for (int plain = 0; plain <= 1; plain++) {
    pt_parquet_read_options opts;
    pt_parquet_read_options_init(&opts);
    opts.plain_binary = plain;
    struct ArrowArrayStream s;
    pt_error err;
    assert_int_equal(pt_parquet_read_buffer(b.data, b.size, NULL, NULL, &opts, &s, &err), PT_OK);
    struct ArrowSchema schema;
    assert_int_equal(s.get_schema(&s, &schema), 0);
    assert_string_equal(schema.children[0]->format, plain ? "tsu:UTC" : "tsn:");
    struct ArrowArray a;
    assert_int_equal(s.get_next(&s, &a), 0);
    assert_int_equal(a.length, 3);
    const struct ArrowArray *c = a.children[0];
    const int64_t *v = (const int64_t *)c->buffers[1];
    const uint8_t *valid = (const uint8_t *)c->buffers[0];
    for (int i = 0; i < 2; i++)
      assert_true(v[c->offset + i] == want_s[i] * (plain ? 1000000 : 1000000000));
    assert_int_equal(c->null_count, 1);
    assert_false(valid[(c->offset + 2) / 8] & (1u << ((c->offset + 2) % 8)));
    a.release(&a);
    schema.release(&schema);
    s.release(&s);
  }
  free(b.data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_files_read_whole),
      cmocka_unit_test(test_truncation_at_every_byte),
      cmocka_unit_test(test_byte_flips),
      cmocka_unit_test(test_threads_same_as_one),
      cmocka_unit_test(test_readahead_errors),
      cmocka_unit_test(test_exact_messages),
      cmocka_unit_test(test_page_damage_names_file_and_page),
      cmocka_unit_test(test_fuzz_regressions),
      cmocka_unit_test(test_page_index),
      cmocka_unit_test(test_int96_for_a_table_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
