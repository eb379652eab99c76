/* fuzz_parquet.c — libFuzzer target for the whole Parquet reader: the input
 * is opened with pt_parquet_read_buffer, every batch is pulled, validated and
 * (when small) rendered as JSON to touch every value, then released, on
 * three threads, or one reading the next row group ahead on a second, or
 * one alone. Half the inputs are read a second time with a column
 * projection, a filter and dictionary output picked by a hash of the input, so that pruning, the page index and dictionary decoding are fuzzed
 * too. Seeds: tests/fuzz/corpus/parquet (scripts/make_parquet_seeds.py).
 * A batch the reader returns that does not validate is a bug: abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protium.h"

/* Pulls every batch of s and checks it; releases s. */
static void drain(struct ArrowArrayStream *s) {
  pt_error err;
  struct ArrowSchema schema;
  if (s->get_schema(s, &schema) == 0) {
    for (int n = 0; n < 1000; n++) {
      struct ArrowArray a;
      if (s->get_next(s, &a) != 0 || a.release == NULL) break;
      if (pt_array_validate(&schema, &a, &err) != PT_OK) {
        fprintf(stderr, "reader returned an invalid batch: %s\n", err.message);
        abort();
      }
      if (a.length <= 4096) {
        pt_buf out = {0};
        pt_json_write_batch(&schema, &a, &out, &err);
        pt_buf_free(&out);
      }
      a.release(&a);
    }
    schema.release(&schema);
  }
  s->release(s);
}

enum { MAX_PATHS = 32 };

/* Paths of the top-level fields and of their struct members (a.b), as
 * filters and dictionary options name them. paths[k] owns a malloc'd copy. */
static int collect_paths(const struct ArrowSchema *schema, char **paths, int *top) {
  int n = 0;
  *top = 0;
  for (int64_t i = 0; i < schema->n_children && n < MAX_PATHS; i++) {
    const struct ArrowSchema *c = schema->children[i];
    if (c->name == NULL) continue;
    paths[n++] = strdup(c->name);
    (*top)++;
  }
  for (int64_t i = 0; i < schema->n_children && n < MAX_PATHS; i++) {
    const struct ArrowSchema *c = schema->children[i];
    if (c->name == NULL || c->format == NULL || strcmp(c->format, "+s") != 0) continue;
    for (int64_t j = 0; j < c->n_children && n < MAX_PATHS; j++) {
      const char *m = c->children[j]->name;
      if (m == NULL) continue;
      size_t len = strlen(c->name) + strlen(m) + 2;
      char *p = malloc(len);
      if (p == NULL) break;
      snprintf(p, len, "%s.%s", c->name, m);
      paths[n++] = p;
    }
  }
  return n;
}

/* A filter on one of paths picked by b: an integer, double or bytes
 * comparison (NE too), IN, NOT IN, IS NULL, IS NOT NULL, or two of them
 * combined. NULL when none. */
static pt_parquet_filter *pick_filter(char **paths, int n, const uint8_t *b, int depth) {
  if (n == 0) return NULL;
  pt_error err;
  pt_parquet_filter *f = NULL;
  const char *col = paths[b[0] % n];
  static const int ops[] = {PT_PARQUET_EQ, PT_PARQUET_LT, PT_PARQUET_LE, PT_PARQUET_GT,
                            PT_PARQUET_GE, PT_PARQUET_IN, PT_PARQUET_NE, PT_PARQUET_NOT_IN};
  int op = ops[b[1] % 8];
  int64_t nv = op == PT_PARQUET_IN || op == PT_PARQUET_NOT_IN ? 1 + b[2] % 3 : 1;
  int64_t ints[3] = {(int8_t)b[2], (int8_t)b[3] * 1000, (int64_t)b[4] << 40};
  switch ((b[5] >> 2) % 6) {
    case 0: case 1: pt_parquet_filter_int(col, op, ints, nv, &f, &err); break;
    case 2: {
      uint64_t u[3] = {b[2], (uint64_t)b[3] << 8, UINT64_MAX - b[4]};
      pt_parquet_filter_uint(col, op, u, nv, &f, &err);
      break;
    }
    case 3: {
      double d[3] = {(int8_t)b[2] / 4.0, b[3] * 1e3, -0.0};
      pt_parquet_filter_double(col, op, d, nv, &f, &err);
      break;
    }
    case 4: {
      const char *v[3] = {"a", "m", ""};
      char one[2] = {(char)b[3], 0};
      v[0] = one;
      pt_parquet_filter_bytes(col, op, v, NULL, nv, &f, &err);
      break;
    }
    default:
      if (b[3] & 1) pt_parquet_filter_is_not_null(col, &f, &err);
      else pt_parquet_filter_is_null(col, &f, &err);
      break;
  }
  if (f != NULL && depth == 0 && (b[5] & 3) != 0) {
    pt_parquet_filter *g = pick_filter(paths, n, b + 1, 1), *both = NULL;
    if (g != NULL) {
      if (pt_parquet_filter_combine((b[5] & 3) == 1 ? PT_PARQUET_AND : PT_PARQUET_OR, f, g, &both,
                                    &err) == PT_OK)
        return both;
      pt_parquet_filter_free(g);
    }
  }
  return f;
}

/* The same input read with options taken from b (bytes of a hash of the
 * input: a file's own last bytes are its footer length and magic, which
 * mutations may not touch without breaking the file). */
static void read_with_options(const uint8_t *copy, size_t size, const struct ArrowSchema *schema,
                              const uint8_t *b) {
  char *paths[MAX_PATHS];
  int top;
  int n = collect_paths(schema, paths, &top);
  pt_parquet_read_options opts;
  pt_parquet_read_options_init(&opts);
  opts.batch_size = 1 + b[8] % 64;
  opts.threads = b[9] & 1 ? 2 : 1;
  opts.no_readahead = (b[9] & 2) != 0;
  /* A projection: the top-level columns whose bit is set, in reverse. */
  const char *cols[MAX_PATHS];
  int n_cols = 0;
  uint32_t mask = (uint32_t)b[10] | (uint32_t)b[11] << 8;
  for (int k = top - 1; k >= 0; k--)
    if (mask & (1u << (k % 16))) cols[n_cols++] = paths[k];
  if ((b[12] & 1) && n_cols > 0) {
    opts.columns = cols;
    opts.n_columns = n_cols;
  }
  const char *dict[2];
  if (n > 0 && (b[12] & 2)) {
    dict[0] = paths[b[13] % n];
    opts.dictionary = dict;
    opts.n_dictionary = 1;
  }
  pt_parquet_filter *f = b[12] & 4 ? pick_filter(paths, n, b, 0) : NULL;
  opts.filter = f;
  struct ArrowArrayStream s;
  pt_error err;
  if (pt_parquet_read_buffer(copy, (int64_t)size, NULL, NULL, &opts, &s, &err) == PT_OK) drain(&s);
  pt_parquet_filter_free(f);
  for (int k = 0; k < n; k++) free(paths[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A private copy, so reads past the input's end hit ASan's redzone. */
  uint8_t *copy = malloc(size ? size : 1);
  if (copy == NULL) return 0;
  memcpy(copy, data, size);
  struct ArrowArrayStream s;
  pt_error err;
  pt_parquet_read_options opts;
  pt_parquet_read_options_init(&opts);
  opts.batch_size = 1000;
  /* The choices below come from a hash of the whole input, so that a
   * crash reproduces from its input alone. */
  uint8_t b[16];
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
  for (int k = 0; k < 16; k++) {
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    b[k] = (uint8_t)(h >> 56);
  }
  /* Half the inputs decoded on several threads, a quarter on one without
   * reading ahead. */
  opts.threads = b[15] & 1 ? 3 : 1;
  opts.no_readahead = (b[15] & 3) == 2;
  if (pt_parquet_read_buffer(copy, (int64_t)size, NULL, NULL, &opts, &s, &err) != PT_OK) {
    free(copy);
    return 0;
  }
  struct ArrowSchema schema;
  int have_schema = s.get_schema(&s, &schema) == 0;
  drain(&s);
  if (have_schema) {
    if (b[15] & 4) read_with_options(copy, size, &schema, b);
    schema.release(&schema);
  }
  free(copy);
  return 0;
}
