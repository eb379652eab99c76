/* test_ipc_util.h — helpers shared by the IPC tests: building schemas and
 * deterministic batches of every type, comparing arrays by value, and
 * writing/reading IPC bytes in memory. Header-only (static functions) so
 * that each test program stays one translation unit.
 */
#ifndef PT_TEST_IPC_UTIL_H
#define PT_TEST_IPC_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arrow/arrow.h"

/* Not every test program uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define OK(expr)                                                                       \
  do {                                                                                 \
    pt_error ok_err_ = {0};                                                            \
    (void)ok_err_;                                                                     \
    int ok_rc_ = (expr);                                                               \
    if (ok_rc_ != PT_OK) fail_msg("%s failed: %d", #expr, ok_rc_);                     \
  } while (0)

/* Like OK, for calls that take a pt_error * named err. */
#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Schemas */

static void schema_node(struct ArrowSchema *s, const char *fmt, const char *name, int64_t n) {
  pt_error err;
  if (pt_schema_init(s, fmt, name, ARROW_FLAG_NULLABLE, n, &err) != PT_OK)
    fail_msg("pt_schema_init(%s): %s", fmt, err.message);
}

static void schema_dict(struct ArrowSchema *s, const char *index_fmt, const char *value_fmt,
                        const char *name) {
  pt_error err;
  schema_node(s, index_fmt, name, 0);
  struct ArrowSchema v;
  schema_node(&v, value_fmt, NULL, 0);
  if (pt_schema_set_dictionary(s, &v, &err) != PT_OK) fail_msg("set_dictionary: %s", err.message);
}

/* The columns of the every-type schema. */
static const char *const all_columns[] = {
    "n", "b", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f16", "f32", "f64",
    "s", "ls", "bin", "lbin", "fsb", "d", "ts", "tsn", "dur", "dec", "lst", "llst", "fsl",
    "st", "dict", "dict_st", "dict_lst", "d64", "t32", "t64", "ivm", "ivd", "ivn", "dec32",
    "dec64", "dec256", "map", "lv", "ree", "sv", "su", "du"};
/* The union columns, last: they cannot be hash keys. */
#define N_HASHABLE_COLUMNS (N_ALL_COLUMNS - 2)
#define N_ALL_COLUMNS ((int64_t)(sizeof all_columns / sizeof all_columns[0]))

static void make_all_schema(struct ArrowSchema *s) {
  schema_node(s, "+s", "", N_ALL_COLUMNS);
  static const char *const fmts[] = {"n", "b", "c", "C", "s", "S", "i", "I", "l", "L", "e",
                                     "f", "g", "u", "U", "z", "Z", "w:3", "tdD", "tsu:UTC",
                                     "tsn:", "tDm", "d:10,2"};
  int64_t k = 0;
  for (; k < (int64_t)(sizeof fmts / sizeof fmts[0]); k++)
    schema_node(s->children[k], fmts[k], all_columns[k], 0);
  /* lst: list<int32> */
  schema_node(s->children[k], "+l", all_columns[k], 1);
  schema_node(s->children[k]->children[0], "i", "item", 0);
  k++;
  /* llst: large_list<utf8> */
  schema_node(s->children[k], "+L", all_columns[k], 1);
  schema_node(s->children[k]->children[0], "u", "item", 0);
  k++;
  /* fsl: fixed_size_list<double, 2> */
  schema_node(s->children[k], "+w:2", all_columns[k], 1);
  schema_node(s->children[k]->children[0], "g", "item", 0);
  k++;
  /* st: struct<a: int64, b: utf8> */
  schema_node(s->children[k], "+s", all_columns[k], 2);
  schema_node(s->children[k]->children[0], "l", "a", 0);
  schema_node(s->children[k]->children[1], "u", "b", 0);
  k++;
  /* dict: dictionary<int16 -> utf8> */
  schema_dict(s->children[k], "s", "u", all_columns[k]);
  k++;
  /* dict_st: struct<x: dictionary<int8 -> int64>> */
  schema_node(s->children[k], "+s", all_columns[k], 1);
  schema_dict(s->children[k]->children[0], "c", "l", "x");
  k++;
  /* dict_lst: list<dictionary<uint32 -> utf8>> */
  schema_node(s->children[k], "+l", all_columns[k], 1);
  schema_dict(s->children[k]->children[0], "I", "u", "item");
  k++;
  static const char *const more[] = {"tdm", "ttm", "ttn", "tiM", "tiD", "tin",
                                     "d:9,2,32", "d:18,4,64", "d:60,10,256"};
  for (size_t m = 0; m < sizeof more / sizeof more[0]; m++, k++)
    schema_node(s->children[k], more[m], all_columns[k], 0);
  /* map: map<utf8, int32>, keys sorted */
  schema_node(s->children[k], "+m", all_columns[k], 1);
  s->children[k]->flags |= ARROW_FLAG_MAP_KEYS_SORTED;
  schema_node(s->children[k]->children[0], "+s", "entries", 2);
  s->children[k]->children[0]->flags = 0;
  schema_node(s->children[k]->children[0]->children[0], "u", "key", 0);
  s->children[k]->children[0]->children[0]->flags = 0;
  schema_node(s->children[k]->children[0]->children[1], "i", "value", 0);
  k++;
  /* lv: large_list_view<int16> */
  schema_node(s->children[k], "+vL", all_columns[k], 1);
  schema_node(s->children[k]->children[0], "s", "item", 0);
  k++;
  /* ree: run_end_encoded<int16, utf8> */
  schema_node(s->children[k], "+r", all_columns[k], 2);
  schema_node(s->children[k]->children[0], "s", "run_ends", 0);
  s->children[k]->children[0]->flags = 0;
  schema_node(s->children[k]->children[1], "u", "values", 0);
  k++;
  schema_node(s->children[k], "vu", all_columns[k], 0); /* sv: string_view */
  k++;
  /* su: sparse_union<i: int32=2, s: utf8=9>; du: dense_union<l: int64=0, b: binary=1> */
  schema_node(s->children[k], "+us:2,9", all_columns[k], 2);
  schema_node(s->children[k]->children[0], "i", "i", 0);
  schema_node(s->children[k]->children[1], "u", "s", 0);
  k++;
  schema_node(s->children[k], "+ud:0,1", all_columns[k], 2);
  schema_node(s->children[k]->children[0], "l", "l", 0);
  schema_node(s->children[k]->children[1], "z", "b", 0);
  k++;
  assert_int_equal(k, N_ALL_COLUMNS);
}

/* ------------------------------------------------------------------------ */
/* Batches */

static int is_null_at(int64_t i, int seed, int col) { return ((i * 7 + seed + col * 3) % 5) == 0; }

#define B(call)                                                                        \
  do {                                                                                 \
    if ((call) != PT_OK) fail_msg("%s: %s", #call, pt_builder_last_error(root));       \
  } while (0)

static void append_text(pt_builder *root, pt_builder *b, int64_t v) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "v%lld", (long long)v);
  if (v % 4 == 0) n = 0; /* some empty strings */
  B(pt_builder_append_bytes(b, buf, n));
}

/* A batch of the every-type schema: rows values depend on (i, seed). */
static void make_all_batch(const struct ArrowSchema *schema, int64_t rows, int seed,
                           struct ArrowArray *out) {
  pt_builder *root;
  CHECK(pt_builder_new(schema, &root, &err));
  /* Dictionaries first: fixed values so indices stay in range. */
  pt_builder *dict = pt_builder_dictionary(pt_builder_child(root, 27));
  for (int k = 0; k < 5; k++) append_text(root, dict, k + 1);
  pt_builder *dict_x = pt_builder_dictionary(pt_builder_child(pt_builder_child(root, 28), 0));
  for (int k = 0; k < 3; k++) B(pt_builder_append_int(dict_x, 1000 * k - 1));
  pt_builder *dict_item =
      pt_builder_dictionary(pt_builder_child(pt_builder_child(root, 29), 0));
  for (int k = 0; k < 4; k++) append_text(root, dict_item, 100 + k);

  for (int64_t i = 0; i < rows; i++) {
    int64_t v = i * 31 + seed;
    for (int64_t c = 0; c < N_ALL_COLUMNS; c++) {
      pt_builder *b = pt_builder_child(root, c);
      if (c == 0) {
        B(pt_builder_append_null(b, 1));
        continue;
      }
      if (is_null_at(i, seed, (int)c)) {
        B(pt_builder_append_null(b, 1));
        continue;
      }
      switch (c) {
        case 1: B(pt_builder_append_int(b, v & 1)); break;
        case 2: B(pt_builder_append_int(b, (v % 200) - 100)); break;
        case 3: B(pt_builder_append_uint(b, (uint64_t)(v % 250))); break;
        case 4: B(pt_builder_append_int(b, (v % 60000) - 30000)); break;
        case 5: B(pt_builder_append_uint(b, (uint64_t)(v % 65000))); break;
        case 6: B(pt_builder_append_int(b, v * 1000 - 7)); break;
        case 7: B(pt_builder_append_uint(b, (uint64_t)v * 3u)); break;
        case 8: B(pt_builder_append_int(b, -v * 1000000007LL)); break;
        case 9: B(pt_builder_append_uint(b, (uint64_t)v * 0x9E3779B97F4A7C15ULL)); break;
        case 10: B(pt_builder_append_double(b, (double)(v % 100) / 4)); break;
        case 11: B(pt_builder_append_double(b, (double)v / 8)); break;
        case 12: B(pt_builder_append_double(b, (double)v * 1.5e-3)); break;
        case 13:
        case 14:
        case 15:
        case 16: append_text(root, b, v + c); break;
        case 17: {
          char w[3] = {(char)v, (char)(v >> 8), (char)c};
          B(pt_builder_append_bytes(b, w, 3));
          break;
        }
        case 18: B(pt_builder_append_int(b, 18000 + v)); break;
        case 19: B(pt_builder_append_int(b, 1600000000000000LL + v)); break;
        case 20: B(pt_builder_append_int(b, -v * 999)); break;
        case 21: B(pt_builder_append_int(b, v * 60000)); break;
        case 22: {
          char text[32];
          snprintf(text, sizeof text, "%lld.%02d", (long long)(v - 50), (int)(v % 100));
          B(pt_builder_append_decimal_string(b, text));
          break;
        }
        case 23: {
          pt_builder *item = pt_builder_child(b, 0);
          for (int64_t k = 0; k < v % 4; k++) {
            if ((v + k) % 6 == 0) B(pt_builder_append_null(item, 1));
            else B(pt_builder_append_int(item, v + k));
          }
          B(pt_builder_append_row(b));
          break;
        }
        case 24: {
          pt_builder *item = pt_builder_child(b, 0);
          for (int64_t k = 0; k < v % 3; k++) append_text(root, item, v * 10 + k);
          B(pt_builder_append_row(b));
          break;
        }
        case 25: {
          pt_builder *item = pt_builder_child(b, 0);
          B(pt_builder_append_double(item, (double)v));
          if (v % 5 == 1) B(pt_builder_append_null(item, 1));
          else B(pt_builder_append_double(item, -(double)v / 3));
          B(pt_builder_append_row(b));
          break;
        }
        case 26: {
          B(pt_builder_append_int(pt_builder_child(b, 0), v * 5));
          if (v % 3 == 0) B(pt_builder_append_null(pt_builder_child(b, 1), 1));
          else append_text(root, pt_builder_child(b, 1), v);
          B(pt_builder_append_row(b));
          break;
        }
        case 27: B(pt_builder_append_int(b, v % 5)); break;
        case 28: {
          pt_builder *x = pt_builder_child(b, 0);
          if (v % 4 == 3) B(pt_builder_append_null(x, 1));
          else B(pt_builder_append_int(x, v % 3));
          B(pt_builder_append_row(b));
          break;
        }
        case 29: {
          pt_builder *item = pt_builder_child(b, 0);
          for (int64_t k = 0; k < v % 3; k++) B(pt_builder_append_uint(item, (uint64_t)(v + k) % 4));
          B(pt_builder_append_row(b));
          break;
        }
        case 30: B(pt_builder_append_int(b, (v - 500) * 86400000LL)); break;
        case 31: B(pt_builder_append_int(b, (v * 7919) % 86400000)); break;
        case 32: B(pt_builder_append_int(b, (v * 7919000013LL) % 86400000000000LL)); break;
        case 33: B(pt_builder_append_int(b, v - 100)); break;
        case 34: {
          int32_t dt[2] = {(int32_t)(v - 50), (int32_t)(v * 1000)};
          B(pt_builder_append_bytes(b, dt, 8));
          break;
        }
        case 35: {
          uint8_t mdn[16];
          pt__store_i32(mdn, (int32_t)v);
          pt__store_i32(mdn + 4, (int32_t)-v);
          pt__store_i64(mdn + 8, v * 1000000007LL);
          B(pt_builder_append_bytes(b, mdn, 16));
          break;
        }
        case 39: {
          pt_builder *entries = pt_builder_child(b, 0);
          for (int64_t k = 0; k < v % 3; k++) {
            append_text(root, pt_builder_child(entries, 0), v * 3 + k);
            if ((v + k) % 4 == 0) B(pt_builder_append_null(pt_builder_child(entries, 1), 1));
            else B(pt_builder_append_int(pt_builder_child(entries, 1), v - k));
            B(pt_builder_append_row(entries));
          }
          B(pt_builder_append_row(b));
          break;
        }
        case 40: {
          pt_builder *item = pt_builder_child(b, 0);
          for (int64_t k = 0; k < v % 4; k++) {
            if ((v + k) % 5 == 0) B(pt_builder_append_null(item, 1));
            else B(pt_builder_append_int(item, (v * 4 + k) % 30000));
          }
          B(pt_builder_append_row(b));
          break;
        }
        case 41:
          /* A run per row here (the null rows get runs of their own); the
           * value of every other run is null. */
          if (v % 4 == 1) {
            B(pt_builder_append_null(b, 1));
          } else {
            append_text(root, pt_builder_child(b, 1), v / 3);
            B(pt_builder_append_run(b, 1));
          }
          break;
        case 42: {
          /* Inline (up to 12 bytes) and out-of-line views. */
          char text[64];
          int n = snprintf(text, sizeof text, "%.*s%lld", (int)(v % 20), "abcdefghijklmnopqrst",
                           (long long)v);
          B(pt_builder_append_bytes(b, text, n));
          break;
        }
        case 43:
          if (v % 3 == 0) {
            B(pt_builder_append_int(pt_builder_child(b, 0), v));
            B(pt_builder_append_union(b, 2));
          } else {
            if (v % 7 == 1) B(pt_builder_append_null(pt_builder_child(b, 1), 1));
            else append_text(root, pt_builder_child(b, 1), v);
            B(pt_builder_append_union(b, 9));
          }
          break;
        case 44:
          if (v % 2 == 0) {
            if (v % 10 == 4) B(pt_builder_append_null(pt_builder_child(b, 0), 1));
            else B(pt_builder_append_int(pt_builder_child(b, 0), -v));
            B(pt_builder_append_union(b, 0));
          } else {
            append_text(root, pt_builder_child(b, 1), v);
            B(pt_builder_append_union(b, 1));
          }
          break;
        case 36:
        case 37:
        case 38: {
          char text[80];
          snprintf(text, sizeof text, "%s%lld.%02d", v % 2 ? "-" : "", (long long)v * (c - 35),
                   (int)(v % 100));
          if (c == 38) snprintf(text, sizeof text, "-1234567890123456789012345678901234567%lld", (long long)v);
          B(pt_builder_append_decimal_string(b, text));
          break;
        }
      }
    }
    B(pt_builder_append_row(root));
  }
  CHECK(pt_builder_finish(root, out, &err));
  pt_builder_free(root);
}

/* ------------------------------------------------------------------------ */
/* Comparison by value */

static int views_equal(const pt__view *a, int64_t ai, const pt__view *b, int64_t bi, int64_t n,
                       char *why, size_t why_size);

static int values_equal(const pt__view *a, int64_t i, const pt__view *b, int64_t j, char *why,
                        size_t why_size) {
  const pt_type *t = &a->type;
  if (a->dictionary != NULL) {
    int64_t x = pt__view_dict_index(a, i), y = pt__view_dict_index(b, j);
    return views_equal(a->dictionary, x, b->dictionary, y, 1, why, why_size);
  }
  switch (t->id) {
    case PT_TYPE_NA: return 1;
    case PT_TYPE_BOOL: return pt__view_get_bool(a, i) == pt__view_get_bool(b, j);
    case PT_TYPE_UINT8:
    case PT_TYPE_UINT16:
    case PT_TYPE_UINT32:
    case PT_TYPE_UINT64: return pt__view_get_uint(a, i) == pt__view_get_uint(b, j);
    case PT_TYPE_HALF_FLOAT:
    case PT_TYPE_FLOAT:
    case PT_TYPE_DOUBLE: return pt__view_get_double(a, i) == pt__view_get_double(b, j);
    case PT_TYPE_STRING:
    case PT_TYPE_LARGE_STRING:
    case PT_TYPE_BINARY:
    case PT_TYPE_LARGE_BINARY:
    case PT_TYPE_FIXED_SIZE_BINARY:
    case PT_TYPE_STRING_VIEW:
    case PT_TYPE_BINARY_VIEW:
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256:
    case PT_TYPE_INTERVAL_DAY_TIME:
    case PT_TYPE_INTERVAL_MONTH_DAY_NANO: {
      int64_t la, lb;
      const uint8_t *pa = pt__view_get_bytes(a, i, &la), *pb = pt__view_get_bytes(b, j, &lb);
      return la == lb && (la == 0 || memcmp(pa, pb, (size_t)la) == 0);
    }
    case PT_TYPE_LIST:
    case PT_TYPE_LARGE_LIST:
    case PT_TYPE_FIXED_SIZE_LIST:
    case PT_TYPE_MAP:
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW: {
      int64_t s1, e1, s2, e2;
      pt__view_list_range(a, i, &s1, &e1);
      pt__view_list_range(b, j, &s2, &e2);
      if (e1 - s1 != e2 - s2) return 0;
      return views_equal(&a->children[0], s1, &b->children[0], s2, e1 - s1, why, why_size);
    }
    case PT_TYPE_SPARSE_UNION:
    case PT_TYPE_DENSE_UNION: {
      int64_t ra, rb;
      int ca = pt__view_union_at(a, i, &ra), cb = pt__view_union_at(b, j, &rb);
      return ca == cb && views_equal(&a->children[ca], ra, &b->children[cb], rb, 1, why, why_size);
    }
    case PT_TYPE_RUN_END_ENCODED:
      return views_equal(&a->children[1], pt__view_ree_run(a, i), &b->children[1],
                         pt__view_ree_run(b, j), 1, why, why_size);
    case PT_TYPE_STRUCT:
      for (int64_t k = 0; k < a->n_children; k++)
        if (!views_equal(&a->children[k], a->offset + i, &b->children[k], b->offset + j, 1, why,
                         why_size))
          return 0;
      return 1;
    default: return pt__view_get_int(a, i) == pt__view_get_int(b, j);
  }
}

static int views_equal(const pt__view *a, int64_t ai, const pt__view *b, int64_t bi, int64_t n,
                       char *why, size_t why_size) {
  if (a->type.id != b->type.id || (a->dictionary == NULL) != (b->dictionary == NULL)) {
    snprintf(why, why_size, "types differ: %s vs %s", a->schema->format, b->schema->format);
    return 0;
  }
  for (int64_t k = 0; k < n; k++) {
    int va = pt__view_is_valid(a, ai + k), vb = pt__view_is_valid(b, bi + k);
    if (va != vb) {
      snprintf(why, why_size, "'%s' row %lld: validity %d vs %d", a->schema->name ? a->schema->name : "",
               (long long)(ai + k), va, vb);
      return 0;
    }
    if (va && !values_equal(a, ai + k, b, bi + k, why, why_size)) {
      if (!why[0])
        snprintf(why, why_size, "'%s' (%s) row %lld differs", a->schema->name ? a->schema->name : "",
                 a->schema->format, (long long)(ai + k));
      return 0;
    }
  }
  return 1;
}

/* Asserts rows [ao, ao+n) of batch a equal rows [bo, bo+n) of batch b. */
static void assert_rows_equal(const struct ArrowSchema *schema, const struct ArrowArray *a,
                              int64_t ao, const struct ArrowArray *b, int64_t bo, int64_t n) {
  pt__view va, vb;
  CHECK(pt__view_init(&va, schema, a, &err));
  CHECK(pt__view_init(&vb, schema, b, &err));
  char why[256] = "";
  int eq = 1;
  for (int64_t c = 0; c < va.n_children && eq; c++)
    eq = views_equal(&va.children[c], va.offset + ao, &vb.children[c], vb.offset + bo, n, why,
                     sizeof why);
  pt__view_reset(&va);
  pt__view_reset(&vb);
  if (!eq) fail_msg("batches differ: %s", why);
}

static void assert_batches_equal(const struct ArrowSchema *schema, const struct ArrowArray *a,
                                 const struct ArrowArray *b) {
  assert_int_equal(a->length, b->length);
  assert_rows_equal(schema, a, 0, b, 0, a->length);
}

/* ------------------------------------------------------------------------ */
/* IPC in memory */

typedef struct bytes {
  uint8_t *data;
  int64_t size;
} bytes;

static void bytes_free(bytes *b) {
  free(b->data);
  b->data = NULL;
  b->size = 0;
}

/* Writes n batches into an IPC buffer. */
static bytes write_batches(const struct ArrowSchema *schema, struct ArrowArray *batches, int n,
                           const pt_ipc_write_options *opts) {
  pt_ipc_writer *w;
  CHECK(pt_ipc_writer_open_buffer(schema, opts, &w, &err));
  for (int i = 0; i < n; i++) CHECK(pt_ipc_writer_write(w, &batches[i], &err));
  CHECK(pt_ipc_writer_close(w, &err));
  bytes out;
  void *data;
  CHECK(pt_ipc_writer_take_buffer(w, &data, &out.size, &err));
  out.data = data;
  pt_ipc_writer_free(w);
  return out;
}

/* Reads every batch of an IPC buffer (up to max); returns how many. */
static int read_batches(const bytes *in, struct ArrowSchema *schema, struct ArrowArray *out,
                        int max) {
  struct ArrowArrayStream s;
  CHECK(pt_ipc_read_buffer(in->data, in->size, NULL, NULL, &s, &err));
  assert_int_equal(s.get_schema(&s, schema), 0);
  int n = 0;
  for (;;) {
    struct ArrowArray a;
    int e = s.get_next(&s, &a);
    if (e != 0) fail_msg("get_next: %d %s", e, s.get_last_error(&s));
    if (a.release == NULL) break;
    if (n >= max) fail_msg("more than %d batches", max);
    pt_error err;
    if (pt_array_validate(schema, &a, &err) != PT_OK) fail_msg("invalid batch: %s", err.message);
    out[n++] = a;
  }
  s.release(&s);
  return n;
}

static void opts_init(pt_ipc_write_options *o, pt_ipc_format f, pt_compression c) {
  pt_ipc_write_options_init(o);
  o->format = f;
  o->compression = c;
}

#endif /* PT_TEST_IPC_UTIL_H */
