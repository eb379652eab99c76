/* test_arrow_builders.c — pt_builder_* of src/arrow: every type built, viewed
 * and read back; nulls in nested builders; dictionaries; errors with their
 * messages; reuse after finish; allocation failure at every step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arrow/arrow.h"

static void node(struct ArrowSchema *s, const char *format, const char *name, int64_t n) {
  assert_int_equal(pt_schema_init(s, format, name, ARROW_FLAG_NULLABLE, n, NULL), PT_OK);
}

enum { N_COLS = 27, N_ROWS = 5 };

/* The batch with a column of every type. */
static void all_types_schema(struct ArrowSchema *s) {
  static const char *const formats[] = {
      "b", "c", "C", "s", "S", "i", "I", "l", "L", "e", "f", "g", "u", "U",
      "z", "Z", "w:3", "tdD", "tsu:UTC", "tDn", "d:10,3", "+l", "+L", "+w:2", "+s", "c", "n"};
  node(s, "+s", "", N_COLS);
  for (int c = 0; c < N_COLS; c++) {
    char name[8];
    snprintf(name, sizeof name, "c%d", c);
    int64_t n = formats[c][0] == '+' ? (formats[c][1] == 's' ? 2 : 1) : 0;
    node(s->children[c], formats[c], name, n);
  }
  node(s->children[21]->children[0], "i", "item", 0);
  node(s->children[22]->children[0], "u", "item", 0);
  node(s->children[23]->children[0], "s", "item", 0);
  node(s->children[24]->children[0], "i", "a", 0);
  node(s->children[24]->children[1], "u", "b", 0);
  struct ArrowSchema d;
  node(&d, "u", "", 0);
  assert_int_equal(pt_schema_set_dictionary(s->children[25], &d, NULL), PT_OK);
}

/* Appends row r (null in every column when r == 2) to the all-types batch.
 * Returns the first failing status. */
static int append_row(pt_builder *b, int r) {
  int rc;
#define TRY(x)                      \
  do {                              \
    if ((rc = (x)) != PT_OK) return rc; \
  } while (0)
  if (r == 2) {
    for (int c = 0; c < N_COLS; c++) TRY(pt_builder_append_null(pt_builder_child(b, c), 1));
    return pt_builder_append_row(b);
  }
  char text[32];
  TRY(pt_builder_append_int(pt_builder_child(b, 0), r & 1));
  TRY(pt_builder_append_int(pt_builder_child(b, 1), -100 - r));
  TRY(pt_builder_append_int(pt_builder_child(b, 2), 200 + r));
  TRY(pt_builder_append_int(pt_builder_child(b, 3), -30000 + r));
  TRY(pt_builder_append_uint(pt_builder_child(b, 4), 60000 + r));
  TRY(pt_builder_append_int(pt_builder_child(b, 5), -2000000000 + r));
  TRY(pt_builder_append_uint(pt_builder_child(b, 6), 4000000000u + r));
  TRY(pt_builder_append_int(pt_builder_child(b, 7), INT64_MIN + r));
  TRY(pt_builder_append_uint(pt_builder_child(b, 8), UINT64_MAX - r));
  TRY(pt_builder_append_double(pt_builder_child(b, 9), 1.5 + r));
  TRY(pt_builder_append_double(pt_builder_child(b, 10), 0.25 * r));
  TRY(pt_builder_append_double(pt_builder_child(b, 11), 1e300 * r));
  snprintf(text, sizeof text, "s%d", r);
  for (int c = 12; c <= 15; c++)
    TRY(pt_builder_append_bytes(pt_builder_child(b, c), text, (int64_t)strlen(text)));
  TRY(pt_builder_append_bytes(pt_builder_child(b, 16), "abc", 3));
  TRY(pt_builder_append_int(pt_builder_child(b, 17), 19000 + r));
  TRY(pt_builder_append_int(pt_builder_child(b, 18), 1700000000000000 + r));
  TRY(pt_builder_append_int(pt_builder_child(b, 19), -r));
  snprintf(text, sizeof text, "-%d.25", r);
  TRY(pt_builder_append_decimal_string(pt_builder_child(b, 20), text));
  /* list<int32>: r values 0..r-1 */
  pt_builder *l = pt_builder_child(b, 21);
  for (int k = 0; k < r; k++) TRY(pt_builder_append_int(pt_builder_child(l, 0), k));
  TRY(pt_builder_append_row(l));
  /* large_list<utf8>: one string, then a null inside */
  pt_builder *ll = pt_builder_child(b, 22);
  TRY(pt_builder_append_bytes(pt_builder_child(ll, 0), "x", 1));
  TRY(pt_builder_append_null(pt_builder_child(ll, 0), 1));
  TRY(pt_builder_append_row(ll));
  /* fixed_size_list<int16>[2] */
  pt_builder *fl = pt_builder_child(b, 23);
  TRY(pt_builder_append_int(pt_builder_child(fl, 0), r));
  TRY(pt_builder_append_int(pt_builder_child(fl, 0), -r));
  TRY(pt_builder_append_row(fl));
  /* struct<a: int32, b: utf8> */
  pt_builder *st = pt_builder_child(b, 24);
  TRY(pt_builder_append_int(pt_builder_child(st, 0), r * 10));
  TRY(pt_builder_append_bytes(pt_builder_child(st, 1), "yz", 2));
  TRY(pt_builder_append_row(st));
  /* dictionary: index r % 2 */
  TRY(pt_builder_append_int(pt_builder_child(b, 25), r % 2));
  TRY(pt_builder_append_null(pt_builder_child(b, 26), 1));
  return pt_builder_append_row(b);
#undef TRY
}

/* Builds the all-types batch (after dictionary values "red", "green"). */
static int build_all(const struct ArrowSchema *s, struct ArrowArray *out) {
  pt_builder *b = NULL;
  int rc = pt_builder_new(s, &b, NULL);
  if (rc != PT_OK) return rc;
  pt_builder *d = pt_builder_dictionary(pt_builder_child(b, 25));
  if ((rc = pt_builder_append_bytes(d, "red", 3)) != PT_OK) goto free_builder;
  if ((rc = pt_builder_append_bytes(d, "green", 5)) != PT_OK) goto free_builder;
  for (int r = 0; r < N_ROWS; r++)
    if ((rc = append_row(b, r)) != PT_OK) goto free_builder;
  rc = pt_builder_finish(b, out, NULL);
free_builder:
  pt_builder_free(b);
  return rc;
}

static void check_aligned(const struct ArrowArray *a) {
  for (int64_t i = 0; i < a->n_buffers; i++)
    if (a->buffers[i] != NULL) assert_int_equal((uintptr_t)a->buffers[i] % 64, 0);
  for (int64_t i = 0; i < a->n_children; i++) check_aligned(a->children[i]);
  if (a->dictionary) check_aligned(a->dictionary);
}

static void assert_bytes(const pt__view *v, int64_t i, const char *want) {
  int64_t len;
  const uint8_t *p = pt__view_get_bytes(v, i, &len);
  assert_int_equal(len, (int64_t)strlen(want));
  assert_memory_equal(p, want, (size_t)len);
}

static void test_all_types_roundtrip(void **state) {
  struct ArrowSchema s;
  all_types_schema(&s);
  struct ArrowArray a;
  assert_int_equal(build_all(&s, &a), PT_OK);
  assert_true(pt__array_is_ours(&a));
  pt_error err = {0};
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  check_aligned(&a);
  assert_int_equal(a.length, N_ROWS);
  assert_int_equal(a.null_count, 0);
  assert_null(a.buffers[0]); /* no nulls, no bitmap */

  pt__view v;
  assert_int_equal(pt__view_init(&v, &s, &a, &err), PT_OK);
  for (int c = 0; c < N_COLS; c++) {
    const pt__view *col = &v.children[c];
    assert_int_equal(col->length, N_ROWS);
    assert_int_equal(col->null_count, c == 26 ? N_ROWS : 1);
    if (c != 26) assert_non_null(col->validity);
    for (int r = 0; r < N_ROWS; r++) assert_int_equal(pt__view_is_valid(col, r), c != 26 && r != 2);
    assert_int_equal(pt_array_is_valid(s.children[c], a.children[c], 2), 0);
    assert_int_equal(pt_array_is_valid(s.children[c], a.children[c], 1), c != 26);
  }
  const pt__view *ch = v.children;
  for (int r = 0; r < N_ROWS; r++) {
    if (r == 2) continue;
    char text[32];
    assert_int_equal(pt__view_get_bool(&ch[0], r), r & 1);
    assert_int_equal(pt__view_get_int(&ch[1], r), -100 - r);
    assert_int_equal(pt__view_get_uint(&ch[2], r), 200 + r);
    assert_int_equal(pt__view_get_int(&ch[3], r), -30000 + r);
    assert_int_equal(pt__view_get_uint(&ch[4], r), 60000 + r);
    assert_int_equal(pt__view_get_int(&ch[5], r), -2000000000 + r);
    assert_int_equal(pt__view_get_uint(&ch[6], r), 4000000000u + r);
    assert_true(pt__view_get_int(&ch[7], r) == INT64_MIN + r);
    assert_true(pt__view_get_uint(&ch[8], r) == UINT64_MAX - r);
    assert_true(pt__view_get_double(&ch[9], r) == 1.5 + r);
    assert_true(pt__view_get_double(&ch[10], r) == 0.25 * r);
    assert_true(pt__view_get_double(&ch[11], r) == 1e300 * r);
    snprintf(text, sizeof text, "s%d", r);
    for (int c = 12; c <= 15; c++) assert_bytes(&ch[c], r, text);
    assert_bytes(&ch[16], r, "abc");
    assert_int_equal(pt__view_get_int(&ch[17], r), 19000 + r);
    assert_int_equal(pt__view_get_int(&ch[18], r), 1700000000000000 + r);
    assert_int_equal(pt__view_get_int(&ch[19], r), -r);
    int64_t len;
    const uint8_t *dec = pt__view_get_bytes(&ch[20], r, &len);
    assert_int_equal(len, 16);
    char dtext[48];
    pt__decimal128_to_string(dec, 3, dtext);
    snprintf(text, sizeof text, "-%d.250", r);
    assert_string_equal(dtext, text);
    int64_t start, end;
    pt__view_list_range(&ch[21], r, &start, &end);
    assert_int_equal(end - start, r);
    for (int k = 0; k < r; k++) assert_int_equal(pt__view_get_int(&ch[21].children[0], start + k), k);
    pt__view_list_range(&ch[22], r, &start, &end);
    assert_int_equal(end - start, 2);
    assert_bytes(&ch[22].children[0], start, "x");
    assert_false(pt__view_is_valid(&ch[22].children[0], start + 1));
    pt__view_list_range(&ch[23], r, &start, &end);
    assert_int_equal(start, 2 * r);
    assert_int_equal(end, 2 * r + 2);
    assert_int_equal(pt__view_get_int(&ch[23].children[0], start), r);
    assert_int_equal(pt__view_get_int(&ch[23].children[0], start + 1), -r);
    assert_int_equal(pt__view_get_int(&ch[24].children[0], r), r * 10);
    assert_bytes(&ch[24].children[1], r, "yz");
    int64_t k = pt__view_dict_index(&ch[25], r);
    assert_int_equal(k, r % 2);
    assert_bytes(ch[25].dictionary, k, r % 2 ? "green" : "red");
  }
  /* The null row: an empty list, struct children null, fixed list child nulls. */
  int64_t start, end;
  pt__view_list_range(&ch[21], 2, &start, &end);
  assert_int_equal(start, end);
  assert_false(pt__view_is_valid(&ch[24].children[0], 2));
  assert_false(pt__view_is_valid(&ch[24].children[1], 2));
  assert_false(pt__view_is_valid(&ch[23].children[0], 4));
  assert_false(pt__view_is_valid(&ch[23].children[0], 5));
  assert_int_equal(ch[23].children[0].length, 2 * N_ROWS);
  /* Values of null slots and bits past the end are zero. */
  assert_int_equal(pt__view_get_int(&ch[7], 2), 0);
  const uint8_t *bits = ch[0].validity;
  assert_int_equal(bits[0], 0x1b);
  for (int i = 1; i < 64; i++) assert_int_equal(bits[i], 0);
  pt__view_reset(&v);
  a.release(&a);
  assert_null(a.release);
  s.release(&s);
}

static void test_nulls_in_nested_builders(void **state) {
  /* struct<l: list<int64>, f: fixed_size_list<utf8>[3]> */
  struct ArrowSchema s;
  node(&s, "+s", "", 2);
  node(s.children[0], "+l", "l", 1);
  node(s.children[0]->children[0], "l", "item", 0);
  node(s.children[1], "+w:3", "f", 1);
  node(s.children[1]->children[0], "u", "item", 0);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&s, &b, NULL), PT_OK);
  assert_int_equal(pt_builder_append_null(b, 3), PT_OK);
  assert_int_equal(pt_builder_length(b), 3);
  assert_int_equal(pt_builder_length(pt_builder_child(b, 0)), 3);
  assert_int_equal(pt_builder_length(pt_builder_child(pt_builder_child(b, 1), 0)), 9);
  assert_int_equal(pt_builder_append_null(b, 0), PT_OK);
  assert_int_equal(pt_builder_append_null(b, -1), PT_EINVAL);
  assert_null(pt_builder_child(b, 2));
  assert_null(pt_builder_child(b, -1));
  assert_null(pt_builder_dictionary(b));
  struct ArrowArray a;
  pt_error err;
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  assert_int_equal(a.null_count, 3);
  assert_int_equal(a.children[0]->null_count, 3);
  assert_int_equal(a.children[1]->children[0]->length, 9);
  assert_int_equal(a.children[1]->children[0]->null_count, 9);
  const int32_t *offsets = a.children[0]->buffers[1];
  for (int i = 0; i <= 3; i++) assert_int_equal(offsets[i], 0);
  a.release(&a);

  /* The builder is empty and reusable after finish. */
  assert_int_equal(pt_builder_length(b), 0);
  pt_builder *l = pt_builder_child(b, 0), *f = pt_builder_child(b, 1);
  assert_int_equal(pt_builder_append_int(pt_builder_child(l, 0), 7), PT_OK);
  assert_int_equal(pt_builder_append_row(l), PT_OK);
  for (int i = 0; i < 3; i++)
    assert_int_equal(pt_builder_append_bytes(pt_builder_child(f, 0), "ab", 2), PT_OK);
  assert_int_equal(pt_builder_append_row(f), PT_OK);
  assert_int_equal(pt_builder_append_row(b), PT_OK);
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  assert_int_equal(a.length, 1);
  assert_int_equal(a.null_count, 0);
  assert_null(a.buffers[0]);
  assert_int_equal(((const int64_t *)a.children[0]->children[0]->buffers[1])[0], 7);
  a.release(&a);

  /* A null list row repeats the last offset even when child values wait
   * for the next append_row: they belong to that next row. */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(pt_builder_append_int(pt_builder_child(l, 0), i + 1), PT_OK);
    if (i == 0) assert_int_equal(pt_builder_append_null(l, 1), PT_OK);
    else assert_int_equal(pt_builder_append_row(l), PT_OK);
    assert_int_equal(pt_builder_append_null(pt_builder_child(f, 0), 3), PT_OK);
    assert_int_equal(pt_builder_append_row(f), PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  static const int32_t want_offsets[3] = {0, 0, 2};
  assert_memory_equal(a.children[0]->buffers[1], want_offsets, sizeof want_offsets);
  assert_int_equal(a.children[0]->null_count, 1);
  a.release(&a);

  /* An empty finish gives valid zero-length arrays with real buffers. */
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(a.length, 0);
  assert_non_null(a.children[0]->buffers[1]);
  assert_non_null(a.children[1]->children[0]->buffers[2]);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  a.release(&a);
  pt_builder_free(b);
  s.release(&s);
}

static void test_builder_errors(void **state) {
  struct ArrowSchema s;
  node(&s, "+s", "", 6);
  node(s.children[0], "c", "i8", 0);
  node(s.children[1], "u", "str", 0);
  node(s.children[2], "w:4", "fsb", 0);
  node(s.children[3], "+w:2", "fl", 1);
  node(s.children[3]->children[0], "i", "item", 0);
  node(s.children[4], "b", "flag", 0);
  node(s.children[5], "d:5,2", "dec", 0);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&s, &b, NULL), PT_OK);
  pt_builder *i8 = pt_builder_child(b, 0);
  assert_string_equal(pt_builder_last_error(b), "");
  assert_int_equal(pt_builder_append_int(i8, 128), PT_ERANGE);
  assert_string_equal(pt_builder_last_error(i8), "value 128 is out of range for int8");
  /* The parent sees its children's errors. */
  assert_string_equal(pt_builder_last_error(b), "value 128 is out of range for int8");
  assert_int_equal(pt_builder_append_int(i8, -129), PT_ERANGE);
  assert_int_equal(pt_builder_append_uint(i8, UINT64_MAX), PT_ERANGE);
  assert_string_equal(pt_builder_last_error(i8),
                      "value 18446744073709551615 is out of range for int8");
  assert_int_equal(pt_builder_append_int(i8, -128), PT_OK);
  assert_int_equal(pt_builder_append_double(i8, 1.0), PT_EINVAL);
  assert_string_equal(pt_builder_last_error(i8),
                      "cannot append a floating-point number to a int8 builder");
  assert_int_equal(pt_builder_length(i8), 1); /* failed appends add nothing */
  assert_int_equal(pt_builder_append_int(pt_builder_child(b, 1), 5), PT_EINVAL);
  assert_string_equal(pt_builder_last_error(b), "cannot append an integer to a utf8 builder");
  assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 2), "abc", 3), PT_EINVAL);
  assert_string_equal(pt_builder_last_error(b),
                      "fixed_size_binary[4] value must have 4 bytes, not 3");
  assert_int_equal(pt_builder_append_int(pt_builder_child(b, 4), 2), PT_ERANGE);
  assert_int_equal(pt_builder_append_decimal_string(pt_builder_child(b, 5), "1234"), PT_ERANGE);
  assert_string_equal(pt_builder_last_error(b),
                      "decimal '1234' does not fit in precision 5, scale 2");
  assert_int_equal(pt_builder_append_decimal_string(pt_builder_child(b, 0), "1"), PT_EINVAL);
  /* Decimal from an integer is scaled. */
  assert_int_equal(pt_builder_append_int(pt_builder_child(b, 5), 12), PT_OK);
  assert_int_equal(pt_builder_append_int(pt_builder_child(b, 5), 1000), PT_ERANGE);

  pt_builder *fl = pt_builder_child(b, 3);
  assert_int_equal(pt_builder_append_int(pt_builder_child(fl, 0), 1), PT_OK);
  assert_int_equal(pt_builder_append_row(fl), PT_ESTATE);
  assert_string_equal(pt_builder_last_error(b),
                      "fixed_size_list row 0: the child has 1 values, expected 2 (2 per row)");
  assert_int_equal(pt_builder_append_row(i8), PT_EINVAL);
  assert_string_equal(pt_builder_last_error(b),
                      "append_row is for struct and list builders, not int8");
  /* The struct row does not close while children disagree. */
  assert_int_equal(pt_builder_append_row(b), PT_ESTATE);
  assert_string_equal(pt_builder_last_error(b),
                      "struct row 0: child 1 ('str') has 0 rows, expected 1");
  struct ArrowArray a;
  pt_error err;
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_ESTATE);
  assert_string_equal(err.message,
                      "struct has 0 rows but its child 0 has 1; close each row with "
                      "pt_builder_append_row");
  assert_null(a.release);
  pt_builder_free(b);
  s.release(&s);

  /* Unclosed list values and dictionary indices out of range. */
  node(&s, "+l", "l", 1);
  node(s.children[0], "s", "item", 0);
  struct ArrowSchema d;
  node(&d, "g", "", 0);
  assert_int_equal(pt_schema_set_dictionary(s.children[0], &d, NULL), PT_OK);
  assert_int_equal(pt_builder_new(&s, &b, NULL), PT_OK);
  pt_builder *idx = pt_builder_child(b, 0);
  assert_int_equal(pt_builder_append_int(idx, 1), PT_OK);
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_ESTATE);
  assert_string_equal(err.message,
                      "1 child values were appended after the last list row; close each row "
                      "with pt_builder_append_row");
  assert_int_equal(pt_builder_append_row(b), PT_OK);
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_ERANGE);
  assert_string_equal(err.message,
                      "child 0: dictionary index 1 at row 0 is out of range for a dictionary "
                      "of 0 values");
  assert_int_equal(pt_builder_append_double(pt_builder_dictionary(idx), 0.5), PT_OK);
  assert_int_equal(pt_builder_append_double(pt_builder_dictionary(idx), 1.5), PT_OK);
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  assert_int_equal(a.children[0]->dictionary->length, 2);
  a.release(&a);
  pt_builder_free(b);
  s.release(&s);

  /* Schemas that do not parse. */
  node(&s, "+r", "m", 0);
  assert_int_equal(pt_builder_new(&s, &b, &err), PT_EINVAL);
  assert_null(b);
  s.release(&s);
}

/* Times of day, intervals and decimals of every width: ranges and sizes
 * checked with messages naming the type. */
static void test_temporal_and_decimal_builders(void **state) {
  struct ArrowSchema s;
  pt_builder *b;
  pt_error err;
  struct ArrowArray a;
  node(&s, "tts", "t", 0);
  assert_int_equal(pt_builder_new(&s, &b, &err), PT_OK);
  assert_int_equal(pt_builder_append_int(b, 86399), PT_OK);
  assert_int_equal(pt_builder_append_int(b, 86400), PT_ERANGE);
  assert_string_equal(pt_builder_last_error(b), "value 86400 is out of range for time32[s]");
  assert_int_equal(pt_builder_append_int(b, -1), PT_ERANGE);
  assert_int_equal(pt_builder_append_uint(b, UINT64_MAX), PT_ERANGE);
  assert_int_equal(pt_builder_append_bytes(b, "x", 1), PT_EINVAL);
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(a.length, 1);
  assert_int_equal(pt__load_i32(a.buffers[1]), 86399);
  a.release(&a);
  pt_builder_free(b);
  s.release(&s);

  node(&s, "ttn", "t", 0);
  assert_int_equal(pt_builder_new(&s, &b, &err), PT_OK);
  assert_int_equal(pt_builder_append_int(b, 86399999999999), PT_OK);
  assert_int_equal(pt_builder_append_int(b, 86400000000000), PT_ERANGE);
  pt_builder_free(b);
  s.release(&s);

  node(&s, "tiD", "iv", 0);
  assert_int_equal(pt_builder_new(&s, &b, &err), PT_OK);
  int32_t dt[2] = {3, -4};
  assert_int_equal(pt_builder_append_bytes(b, dt, 8), PT_OK);
  assert_int_equal(pt_builder_append_bytes(b, dt, 4), PT_EINVAL);
  assert_string_equal(pt_builder_last_error(b),
                      "day_time_interval value must have 8 bytes, not 4");
  assert_int_equal(pt_builder_append_int(b, 1), PT_EINVAL);
  assert_int_equal(pt_builder_append_null(b, 1), PT_OK);
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(a.null_count, 1);
  assert_int_equal(pt__load_i32((const uint8_t *)a.buffers[1] + 4), -4);
  a.release(&a);
  pt_builder_free(b);
  s.release(&s);

  static const struct {
    const char *format, *text;
    int bytes;
    int64_t low; /* the low 64 bits of the unscaled value */
  } decs[] = {
      {"d:9,2,32", "-1.5", 4, -150},
      {"d:18,3,64", "123456789012345.678", 8, 123456789012345678},
      {"d:76,0,256", "-7", 32, -7},
  };
  for (size_t k = 0; k < sizeof decs / sizeof decs[0]; k++) {
    node(&s, decs[k].format, "d", 0);
    assert_int_equal(pt_builder_new(&s, &b, &err), PT_OK);
    assert_int_equal(pt_builder_append_decimal_string(b, decs[k].text), PT_OK);
    assert_int_equal(pt_builder_append_int(b, 2), PT_OK);
    assert_int_equal(pt_builder_append_bytes(b, "abc", 3), PT_EINVAL);
    assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
    const uint8_t *v = a.buffers[1];
    int64_t low = decs[k].bytes == 4 ? pt__load_i32(v) : pt__load_i64(v);
    assert_int_equal(low, decs[k].low);
    assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
    a.release(&a);
    pt_builder_free(b);
    s.release(&s);
  }
  node(&s, "d:9,2,32", "d", 0);
  assert_int_equal(pt_builder_new(&s, &b, &err), PT_OK);
  assert_int_equal(pt_builder_append_decimal_string(b, "12345678.9"), PT_ERANGE);
  assert_string_equal(pt_builder_last_error(b),
                      "decimal '12345678.9' does not fit in precision 9, scale 2");
  pt_builder_free(b);
  s.release(&s);
}

/* A map is built as a list of struct entries; validation refuses null keys. */
static void test_map_builder(void **state) {
  struct ArrowSchema s;
  node(&s, "+m", "m", 1);
  node(s.children[0], "+s", "entries", 2);
  node(s.children[0]->children[0], "u", "key", 0);
  node(s.children[0]->children[1], "l", "value", 0);
  pt_builder *b;
  pt_error err;
  assert_int_equal(pt_builder_new(&s, &b, &err), PT_OK);
  pt_builder *entries = pt_builder_child(b, 0);
  pt_builder *keys = pt_builder_child(entries, 0), *values = pt_builder_child(entries, 1);
  assert_int_equal(pt_builder_append_bytes(keys, "a", 1), PT_OK);
  assert_int_equal(pt_builder_append_int(values, 1), PT_OK);
  assert_int_equal(pt_builder_append_row(entries), PT_OK);
  assert_int_equal(pt_builder_append_row(b), PT_OK);
  assert_int_equal(pt_builder_append_null(b, 1), PT_OK);
  assert_int_equal(pt_builder_append_null(keys, 1), PT_OK);
  assert_int_equal(pt_builder_append_int(values, 2), PT_OK);
  assert_int_equal(pt_builder_append_row(entries), PT_OK);
  /* An entry appended but its row not closed. */
  assert_int_equal(pt_builder_append_bytes(keys, "z", 1), PT_OK);
  assert_int_equal(pt_builder_append_int(values, 3), PT_OK);
  assert_int_equal(pt_builder_append_row(entries), PT_OK);
  struct ArrowArray a;
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_ESTATE);
  assert_int_equal(pt_builder_append_row(b), PT_OK);
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(a.length, 3);
  assert_int_equal(a.null_count, 1);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_EFORMAT);
  assert_string_equal(err.message, "map entry 1 has a null key; map keys must not be null");
  /* Rows without the null key are fine. */
  struct ArrowArray first;
  assert_int_equal(pt_array_slice(&a, 0, 2, &first, &err), PT_OK);
  assert_int_equal(pt_array_validate(&s, &first, &err), PT_OK);
  first.release(&first);
  a.release(&a);
  pt_builder_free(b);
  s.release(&s);
}

/* Run-end encoded: runs closed with append_run, run ends kept by the
 * builder and bounded by their type. */
static void test_run_end_encoded_builder(void **state) {
  struct ArrowSchema s;
  node(&s, "+r", "r", 2);
  node(s.children[0], "s", "run_ends", 0);
  node(s.children[1], "u", "values", 0);
  pt_builder *b;
  pt_error err;
  assert_int_equal(pt_builder_new(&s, &b, &err), PT_OK);
  pt_builder *values = pt_builder_child(b, 1);
  assert_int_equal(pt_builder_append_run(b, 1), PT_ESTATE);
  assert_string_equal(pt_builder_last_error(b), "run 0: the values child has 0 values, expected "
                                                "1 (append the run's value to it first)");
  assert_int_equal(pt_builder_append_bytes(values, "a", 1), PT_OK);
  assert_int_equal(pt_builder_append_run(b, 0), PT_EINVAL);
  assert_int_equal(pt_builder_append_run(b, 3), PT_OK);
  assert_int_equal(pt_builder_append_null(b, 2), PT_OK);
  assert_int_equal(pt_builder_append_bytes(values, "b", 1), PT_OK);
  assert_int_equal(pt_builder_append_run(b, 40000), PT_ERANGE); /* int16 run ends */
  assert_int_equal(pt_builder_append_run(b, 1), PT_OK);
  assert_int_equal(pt_builder_length(b), 6);
  assert_int_equal(pt_builder_append_int(b, 1), PT_EINVAL);
  struct ArrowArray a;
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
  assert_int_equal(a.length, 6);
  assert_int_equal(a.n_buffers, 0);
  assert_int_equal(a.children[0]->length, 3);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  /* No bitmap of its own: the run's value decides. */
  assert_int_equal(pt_array_is_valid(&s, &a, 0), 1);
  assert_int_equal(pt_array_is_valid(&s, &a, 3), 0);
  a.release(&a);
  assert_int_equal(pt_builder_append_bytes(values, "c", 1), PT_OK);
  assert_int_equal(pt_builder_finish(b, &a, &err), PT_ESTATE);
  assert_string_equal(err.message, "run-end encoded has 0 runs but 1 values; close each run "
                                   "with pt_builder_append_run");
  pt_builder_free(b);
  s.release(&s);
}

static void test_half_float_and_bool_builders(void **state) {
  struct ArrowSchema s;
  node(&s, "e", "h", 0);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&s, &b, NULL), PT_OK);
  assert_int_equal(pt_builder_append_double(b, 1 + ldexp(1, -11)), PT_OK);
  assert_int_equal(pt_builder_append_double(b, 1e6), PT_OK);
  assert_int_equal(pt_builder_append_int(b, 3), PT_OK);
  struct ArrowArray a;
  assert_int_equal(pt_builder_finish(b, &a, NULL), PT_OK);
  const uint16_t *h = a.buffers[1];
  assert_int_equal(h[0], 0x3c00);
  assert_int_equal(h[1], 0x7c00);
  assert_int_equal(h[2], 0x4200);
  a.release(&a);
  pt_builder_free(b);
  s.release(&s);

  /* 100 bools, every third null: the bitmap crosses bytes. */
  node(&s, "b", "flag", 0);
  assert_int_equal(pt_builder_new(&s, &b, NULL), PT_OK);
  for (int i = 0; i < 100; i++) {
    if (i % 3 == 0) assert_int_equal(pt_builder_append_null(b, 1), PT_OK);
    else assert_int_equal(pt_builder_append_uint(b, (uint64_t)(i & 1)), PT_OK);
  }
  assert_int_equal(pt_builder_finish(b, &a, NULL), PT_OK);
  assert_int_equal(a.null_count, 34);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(pt_array_is_valid(&s, &a, i), i % 3 != 0);
    if (i % 3) assert_int_equal(pt__bit_get(a.buffers[1], i), i & 1);
  }
  assert_int_equal(pt_array_validate(&s, &a, NULL), PT_OK);
  a.release(&a);
  pt_builder_free(b);
  s.release(&s);
}

static void test_large_builder_growth(void **state) {
  struct ArrowSchema s;
  node(&s, "u", "s", 0);
  pt_builder *b;
  assert_int_equal(pt_builder_new(&s, &b, NULL), PT_OK);
  for (int i = 0; i < 100000; i++) {
    char text[16];
    int n = snprintf(text, sizeof text, "%d", i);
    if (i % 1000 == 999) assert_int_equal(pt_builder_append_null(b, 1), PT_OK);
    else assert_int_equal(pt_builder_append_bytes(b, text, n), PT_OK);
  }
  struct ArrowArray a;
  assert_int_equal(pt_builder_finish(b, &a, NULL), PT_OK);
  assert_int_equal(a.null_count, 100);
  pt__view v;
  assert_int_equal(pt__view_init(&v, &s, &a, NULL), PT_OK);
  assert_int_equal(pt__view_validate(&v, NULL, NULL, NULL), PT_OK);
  assert_bytes(&v, 12345, "12345");
  assert_bytes(&v, 99999 - 1, "99998");
  pt__view_reset(&v);
  a.release(&a);
  pt_builder_free(b);
  s.release(&s);
}

/* Building, then slicing and copying the result, under an allocation
 * failure at every step: every failure is PT_ENOMEM and leaks nothing. */
static void test_builder_fault_injection(void **state) {
  struct ArrowSchema s;
  all_types_schema(&s);
  int done = 0;
  int64_t n;
  for (n = 0; n < 10000 && !done; n++) {
    struct ArrowArray a;
    pt__alloc_fail_after(n);
    int rc = build_all(&s, &a);
    pt__alloc_fail_after(-1);
    if (rc == PT_OK) {
      done = 1;
      assert_int_equal(pt_array_validate(&s, &a, NULL), PT_OK);
      a.release(&a);
    } else {
      assert_int_equal(rc, PT_ENOMEM);
    }
  }
  assert_true(done);
  assert_true(n > 20);

  struct ArrowArray a;
  assert_int_equal(build_all(&s, &a), PT_OK);
  for (done = 0, n = 0; n < 10000 && !done; n++) {
    struct ArrowArray sl, copy;
    pt_error err;
    pt__alloc_fail_after(n);
    int rc = pt_array_slice(&a, 1, 3, &sl, &err);
    if (rc == PT_OK) {
      rc = pt_array_copy(&s, &sl, &copy, &err);
      if (rc == PT_OK) {
        done = 1;
        pt__alloc_fail_after(-1);
        assert_int_equal(pt_array_validate(&s, &copy, &err), PT_OK);
        assert_int_equal(copy.length, 3);
        copy.release(&copy);
      }
      sl.release(&sl);
    }
    pt__alloc_fail_after(-1);
    if (!done) {
      assert_int_equal(rc, PT_ENOMEM);
      assert_int_equal(err.code, PT_ENOMEM);
    }
    /* Whatever happened, the original is intact. */
    assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
    assert_int_equal(a.length, N_ROWS);
  }
  assert_true(done);
  a.release(&a);
  s.release(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_types_roundtrip),
      cmocka_unit_test(test_nulls_in_nested_builders),
      cmocka_unit_test(test_builder_errors),
      cmocka_unit_test(test_half_float_and_bool_builders),
      cmocka_unit_test(test_temporal_and_decimal_builders),
      cmocka_unit_test(test_map_builder),
      cmocka_unit_test(test_run_end_encoded_builder),
      cmocka_unit_test(test_large_builder_growth),
      cmocka_unit_test(test_builder_fault_injection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
