/* test_parquet_zerocopy.c — a column chunk that is one uncompressed PLAIN
 * page of 4- or 8-byte values without nulls, whose values start at a
 * multiple of their width in the file, is handed out in place: its buffer
 * points into the file's mapping (found in /proc/self/maps), which lives
 * until the last array using it is released. Any other chunk is copied.
 * Where a chunk's values lie is found by searching the file for them.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "protium.h"

static void no_release(struct ArrowArray *a) { a->release = NULL; }

/* splitmix64's finalizer: values that occur once in a file. */
static int64_t mix(int64_t x) {
  uint64_t z = (uint64_t)x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (int64_t)(z ^ (z >> 31));
}

typedef struct wcase {
  int width;        /* 4 (int32) or 8 (int64) */
  bool nullable;    /* declared nullable (no value is null unless nulls) */
  bool nulls;       /* rows 1, 1001, 2001, ... null: one in each row group */
  int codec;        /* PT_PARQUET_* */
  int version;      /* data page version */
  int64_t rows, rg_rows;
} wcase;

static int64_t value(const wcase *c, int64_t i) {
  return c->width == 8 ? mix(i) : (int64_t)(int32_t)mix(i);
}

/* One column "v", c->rows rows in row groups of c->rg_rows, every chunk
 * one page (under the writer's 20000 rows a page). */
static void write_file(const char *path, const wcase *c) {
  pt_error err;
  struct ArrowSchema schema;
  assert_int_equal(pt_schema_init(&schema, "+s", "", 0, 1, &err), PT_OK);
  assert_int_equal(pt_schema_init(schema.children[0], c->width == 8 ? "l" : "i", "v",
                                  c->nullable ? ARROW_FLAG_NULLABLE : 0, 0, &err),
                   PT_OK);
  uint8_t *vals = calloc((size_t)c->rows, (size_t)c->width);
  uint8_t *valid = calloc((size_t)(c->rows + 7) / 8, 1);
  assert_non_null(vals);
  assert_non_null(valid);
  for (int64_t i = 0; i < c->rows; i++) {
    int64_t x = value(c, i);
    int32_t x4 = (int32_t)x;
    memcpy(vals + i * c->width, c->width == 8 ? (void *)&x : (void *)&x4, (size_t)c->width);
    if (!(c->nulls && i % 1000 == 1)) valid[i / 8] |= (uint8_t)(1u << (i % 8));
  }
  pt_parquet_write_options o;
  pt_parquet_write_options_init(&o);
  o.codec = c->codec;
  o.use_dictionary = 0;
  o.row_group_rows = c->rg_rows;
  o.page_bytes = INT64_C(1) << 30;
  o.data_page_version = c->version;
  pt_parquet_writer *w;
  assert_int_equal(pt_parquet_writer_open_path(path, &schema, &o, &w, &err), PT_OK);
  const void *b0[2] = {c->nulls ? valid : NULL, vals}, *bb[1] = {NULL};
  struct ArrowArray c0 = {.length = c->rows, .null_count = c->nulls ? (c->rows + 998) / 1000 : 0,
                          .n_buffers = 2, .buffers = b0, .release = no_release};
  struct ArrowArray *ch[1] = {&c0};
  struct ArrowArray batch = {.length = c->rows, .n_buffers = 1, .buffers = bb, .n_children = 1,
                             .children = ch, .release = no_release};
  assert_int_equal(pt_parquet_writer_write(w, &batch, &err), PT_OK);
  assert_int_equal(pt_parquet_writer_close(w, &err), PT_OK);
  pt_parquet_writer_free(w);
  schema.release(&schema);
  free(vals);
  free(valid);
}

static uint8_t *slurp(const char *path, int64_t *size) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)*size);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)*size, f), (size_t)*size);
  fclose(f);
  return p;
}

/* Where the first values of the row group starting at row `first` lie in
 * the file (-1: not found as they are, e.g. compressed). */
static int64_t values_at(const uint8_t *file, int64_t size, const wcase *c, int64_t first) {
  uint8_t key[32];
  int64_t n = 32 / c->width;
  if (first + n > c->rows) return -1;
  for (int64_t i = 0; i < n; i++) {
    int64_t x = value(c, first + i);
    int32_t x4 = (int32_t)x;
    memcpy(key + i * c->width, c->width == 8 ? (void *)&x : (void *)&x4, (size_t)c->width);
  }
  for (int64_t at = 0; at + 32 <= size; at++)
    if (memcmp(file + at, key, 32) == 0) return at;
  return -1;
}

/* The start of the mapping of path that holds p, or 0 when p is in none. */
static uintptr_t mapped_at(const char *path, const void *p) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[4096];
  uintptr_t found = 0;
  while (found == 0 && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char name[4096] = "";
    if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %4095s", &lo, &hi, name) < 2) continue;
    if (strcmp(name, path) == 0 && (uintptr_t)p >= lo && (uintptr_t)p < hi) found = lo;
  }
  fclose(f);
  return found;
}

/* Reads c's file back: every value checked, the counter returned; each
 * batch's buffer is in the mapping exactly when its chunk is aligned. */
static int64_t read_back(const char *path, const wcase *c) {
  int64_t size;
  uint8_t *file = slurp(path, &size);
  pt_error err;
  struct ArrowArrayStream s;
  pt_parquet_read_options ro;
  pt_parquet_read_options_init(&ro);
  ro.batch_size = 3000; /* batches are slices of the row group's array */
  assert_int_equal(pt_parquet_read_path(path, &ro, &s, &err), PT_OK);
  int64_t row = 0, expect = 0;
  for (;;) {
    struct ArrowArray a;
    assert_int_equal(s.get_next(&s, &a), 0);
    if (a.release == NULL) break;
    const struct ArrowArray *v = a.children[0];
    const uint8_t *buf = (const uint8_t *)v->buffers[1] + v->offset * c->width;
    int64_t first = row / c->rg_rows * c->rg_rows; /* the row group's */
    int64_t at = values_at(file, size, c, first);
    bool aligned = c->codec == PT_PARQUET_UNCOMPRESSED && !c->nulls && at >= 0 &&
                   at % c->width == 0;
    uintptr_t base = mapped_at(path, buf);
    if (aligned) {
      assert_true(base != 0);
      assert_true((uintptr_t)buf - base == (uintptr_t)(at + (row - first) * c->width));
      if (row == first) expect++;
    } else {
      assert_true(base == 0);
    }
    for (int64_t i = 0; i < a.length; i++) {
      int64_t want = value(c, row + i);
      if (c->nulls && (row + i) % 1000 == 1) {
        assert_false(v->buffers[0] == NULL ||
                     (((const uint8_t *)v->buffers[0])[(v->offset + i) / 8] >> ((v->offset + i) % 8)) & 1);
        continue;
      }
      int64_t got;
      if (c->width == 8) {
        memcpy(&got, buf + i * 8, 8);
      } else {
        int32_t g4;
        memcpy(&g4, buf + i * 4, 4);
        got = g4;
      }
      assert_true(got == want);
    }
    row += a.length;
    a.release(&a);
  }
  assert_int_equal(row, c->rows);
  int64_t zc = -1;
  assert_int_equal(pt_parquet_stream_zero_copy(&s, &zc, &err), PT_OK);
  assert_int_equal(zc, expect);
  s.release(&s);
  free(file);
  return zc;
}

static void temp_path(char *path) {
  strcpy(path, "/tmp/pt_pq_zc_XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
}

/* Row counts whose page headers differ in size (varints of sizes and
 * counts), so that the values land at different offsets mod 8. */
static const int64_t row_counts[] = {3, 40, 200, 1000, 5000, 12345, 20000};

static void run_cases(wcase c, int64_t *aligned, int64_t *unaligned) {
  char path[64];
  temp_path(path);
  for (size_t k = 0; k < sizeof row_counts / sizeof row_counts[0]; k++) {
    c.rows = c.rg_rows = row_counts[k];
    write_file(path, &c);
    int64_t zc = read_back(path, &c);
    *aligned += zc;
    *unaligned += 1 - zc;
  }
  /* Several row groups, each its own chunk. */
  c.rows = 40000;
  c.rg_rows = 10000;
  write_file(path, &c);
  int64_t zc = read_back(path, &c);
  *aligned += zc;
  *unaligned += 4 - zc;
  unlink(path);
}

static void test_eligible_chunks_read_in_place(void **state) {
  (void)state;
  int64_t aligned = 0, unaligned = 0;
  for (int width = 4; width <= 8; width += 4)
    for (int nullable = 0; nullable <= 1; nullable++)
      for (int version = 1; version <= 2; version++) {
        wcase c = {.width = width, .nullable = nullable, 
                   .codec = PT_PARQUET_UNCOMPRESSED, .version = version};
        run_cases(c, &aligned, &unaligned);
      }
  print_message("chunks read in place: %lld, copied (unaligned): %lld\n", (long long)aligned,
                (long long)unaligned);
  /* Both kinds occur among these files, so both paths were checked. */
  assert_true(aligned > 0);
  assert_true(unaligned > 0);
}

static void test_compressed_or_null_chunks_copied(void **state) {
  (void)state;
  int64_t aligned = 0, unaligned = 0;
  for (int width = 4; width <= 8; width += 4)
    for (int version = 1; version <= 2; version++) {
      wcase z = {.width = width, .codec = PT_PARQUET_SNAPPY, .version = version};
      run_cases(z, &aligned, &unaligned);
      wcase n = {.width = width, .nullable = true, .nulls = true, .codec = PT_PARQUET_UNCOMPRESSED,
                 .version = version};
      run_cases(n, &aligned, &unaligned);
    }
  assert_int_equal(aligned, 0);
}

/* The first int64 file of run_cases' that is read in place (left at path). */
static bool aligned_case(const char *path, wcase *out) {
  for (int version = 1; version <= 2; version++)
    for (int nullable = 0; nullable <= 1; nullable++)
      for (size_t k = 0; k < sizeof row_counts / sizeof row_counts[0]; k++) {
        wcase c = {.width = 8, .nullable = nullable, .codec = PT_PARQUET_UNCOMPRESSED,
                   .version = version, .rows = row_counts[k], .rg_rows = row_counts[k]};
        write_file(path, &c);
        int64_t size;
        uint8_t *file = slurp(path, &size);
        int64_t at = values_at(file, size, &c, 0);
        free(file);
        if (at >= 0 && at % 8 == 0) {
          *out = c;
          return true;
        }
      }
  return false;
}

static void test_mapping_outlives_reader(void **state) {
  (void)state;
  char path[64];
  temp_path(path);
  wcase c = {0};
  assert_true(aligned_case(path, &c));
  const int64_t rows = c.rows;
  pt_error err;
  struct ArrowArrayStream s;
  assert_int_equal(pt_parquet_read_path(path, NULL, &s, &err), PT_OK);
  struct ArrowArray a, end;
  assert_int_equal(s.get_next(&s, &a), 0);
  assert_non_null(a.release);
  assert_int_equal(s.get_next(&s, &end), 0);
  assert_null(end.release);
  int64_t zc = 0;
  assert_int_equal(pt_parquet_stream_zero_copy(&s, &zc, &err), PT_OK);
  assert_int_equal(zc, 1);
  /* The column moved out of its batch, the batch and the reader released:
   * the column alone keeps the file mapped. */
  struct ArrowArray col = *a.children[0];
  a.children[0]->release = NULL;
  a.release(&a);
  s.release(&s);
  const int64_t *v = (const int64_t *)col.buffers[1] + col.offset;
  assert_true(mapped_at(path, v) != 0);
  for (int64_t i = 0; i < rows; i++) assert_true(v[i] == mix(i));
  col.release(&col);
  assert_true(mapped_at(path, v) == 0);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eligible_chunks_read_in_place),
      cmocka_unit_test(test_compressed_or_null_chunks_copied),
      cmocka_unit_test(test_mapping_outlives_reader),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
