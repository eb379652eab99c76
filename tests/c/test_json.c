/* test_json.c — pt_json_write_batch: the exact JSON text of every type,
 * including the edges (extreme integers, shortest floats, dates and times far
 * from 1970, escaping, invalid UTF-8, base64 padding, nested nulls, slices,
 * dictionaries), and its errors. Arrays are laid out by hand from static
 * buffers so that offsets and null bitmaps are exactly what each case needs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arrow/arrow.h"
#include "core/core.h"

/* ------------------------------------------------------------------------ */
/* Hand-made schemas and arrays. Nodes come from an arena freed after each
 * test; their release callbacks only mark them released. */

#define NULLABLE ARROW_FLAG_NULLABLE
#define MAX_ARENA 512

static void *arena[MAX_ARENA];
static int arena_n;

static void *arena_alloc(size_t n) {
  assert_true(arena_n < MAX_ARENA);
  void *p = calloc(1, n);
  assert_non_null(p);
  arena[arena_n++] = p;
  return p;
}

static int arena_teardown(void **state) {
  for (int i = 0; i < arena_n; i++) free(arena[i]);
  arena_n = 0;
  return 0;
}

static void schema_release(struct ArrowSchema *s) { s->release = NULL; }
static void array_release(struct ArrowArray *a) { a->release = NULL; }

/* A schema node with n children (struct ArrowSchema * arguments). */
static struct ArrowSchema *S(const char *format, const char *name, int64_t flags, int64_t n,
                             ...) {
  struct ArrowSchema *s = arena_alloc(sizeof *s);
  s->format = format;
  s->name = name;
  s->flags = flags;
  s->n_children = n;
  s->children = arena_alloc(sizeof(struct ArrowSchema *) * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int64_t i = 0; i < n; i++) s->children[i] = va_arg(ap, struct ArrowSchema *);
  va_end(ap);
  s->release = schema_release;
  return s;
}

/* An array node: buffers b0..b2 (the first n_buffers used), then n children
 * (struct ArrowArray * arguments). */
static struct ArrowArray *A(int64_t length, int64_t null_count, int64_t offset,
                            int64_t n_buffers, const void *b0, const void *b1, const void *b2,
                            int64_t n, ...) {
  struct ArrowArray *a = arena_alloc(sizeof *a);
  a->length = length;
  a->null_count = null_count;
  a->offset = offset;
  a->n_buffers = n_buffers;
  a->buffers = arena_alloc(sizeof(void *) * 3);
  a->buffers[0] = b0;
  a->buffers[1] = b1;
  a->buffers[2] = b2;
  a->n_children = n;
  a->children = arena_alloc(sizeof(struct ArrowArray *) * (size_t)(n ? n : 1));
  va_list ap;
  va_start(ap, n);
  for (int64_t i = 0; i < n; i++) a->children[i] = va_arg(ap, struct ArrowArray *);
  va_end(ap);
  a->release = array_release;
  return a;
}

/* Writes the batch and compares the whole output with expected. */
static void expect_batch(struct ArrowSchema *schema, struct ArrowArray *batch,
                         const char *expected) {
  pt_buf out = {0};
  pt_error err = {0};
  int rc = pt_json_write_batch(schema, batch, &out, &err);
  if (rc != PT_OK) fail_msg("pt_json_write_batch: %s", err.message);
  char *text = calloc(1, out.len + 1);
  assert_non_null(text);
  if (out.len) memcpy(text, out.data, out.len);
  assert_string_equal(text, expected);
  free(text);
  pt_buf_free(&out);
}

/* One column "v" of the given values, one JSON text per row (NULL-ended). */
static void expect_values(struct ArrowSchema *col_schema, struct ArrowArray *col,
                          const char **values) {
  struct ArrowSchema *bs = S("+s", "", 0, 1, col_schema);
  int64_t rows = 0;
  while (values[rows]) rows++;
  struct ArrowArray *ba = A(rows, 0, 0, 1, NULL, NULL, NULL, 1, col);
  size_t size = 1;
  for (int64_t i = 0; i < rows; i++) size += strlen(values[i]) + 16;
  char *expected = calloc(1, size);
  assert_non_null(expected);
  for (int64_t i = 0; i < rows; i++) {
    strcat(expected, "{\"v\": ");
    strcat(expected, values[i]);
    strcat(expected, "}\n");
  }
  expect_batch(bs, ba, expected);
  free(expected);
}

#define EXPECT_VALUES(s, a, ...) expect_values((s), (a), (const char *[]){__VA_ARGS__, NULL})
#define COL(format) S(format, "v", NULLABLE, 0)

/* ------------------------------------------------------------------------ */
/* Scalars */

static void test_null_and_bool(void **state) {
  EXPECT_VALUES(COL("n"), A(2, 2, 0, 0, NULL, NULL, NULL, 0), "null", "null");
  /* Rows 3..8 of the bitmaps: the bit offset matters. */
  static const uint8_t valid[] = {0xF7, 0x01}; /* bits 0-2,4-8 set; 3 clear */
  static const uint8_t bits[] = {0x50, 0x01};  /* bits 4, 6, 8 set */
  EXPECT_VALUES(COL("b"), A(6, 1, 3, 2, valid, bits, NULL, 0), "null", "true", "false", "true",
                "false", "true");
}

static void test_integers(void **state) {
  static const int8_t i8[] = {-128, 127, 0};
  static const uint8_t v3[] = {0x03}; /* row 2 null */
  EXPECT_VALUES(COL("c"), A(3, 1, 0, 2, v3, i8, NULL, 0), "-128", "127", "null");
  static const uint8_t u8[] = {0, 255};
  EXPECT_VALUES(COL("C"), A(2, 0, 0, 2, NULL, u8, NULL, 0), "0", "255");
  static const int16_t i16[] = {-32768, 32767};
  EXPECT_VALUES(COL("s"), A(2, 0, 0, 2, NULL, i16, NULL, 0), "-32768", "32767");
  static const uint16_t u16[] = {65535};
  EXPECT_VALUES(COL("S"), A(1, 0, 0, 2, NULL, u16, NULL, 0), "65535");
  static const int32_t i32[] = {INT32_MIN, INT32_MAX, -1};
  EXPECT_VALUES(COL("i"), A(3, 0, 0, 2, NULL, i32, NULL, 0), "-2147483648", "2147483647", "-1");
  static const uint32_t u32[] = {UINT32_MAX};
  EXPECT_VALUES(COL("I"), A(1, 0, 0, 2, NULL, u32, NULL, 0), "4294967295");
  static const int64_t i64[] = {INT64_MIN, INT64_MAX, 0, -10};
  EXPECT_VALUES(COL("l"), A(4, 0, 0, 2, NULL, i64, NULL, 0), "-9223372036854775808",
                "9223372036854775807", "0", "-10");
  static const uint64_t u64[] = {UINT64_MAX, 0, 10000000000000000000u};
  EXPECT_VALUES(COL("L"), A(3, 0, 0, 2, NULL, u64, NULL, 0), "18446744073709551615", "0",
                "10000000000000000000");
  /* Sliced: offset 1. */
  EXPECT_VALUES(COL("l"), A(2, 0, 1, 2, NULL, i64, NULL, 0), "9223372036854775807", "0");
}

static void test_doubles(void **state) {
  static const double d[] = {0.0,
                             -0.0,
                             1.0,
                             0.1,
                             1e16,
                             1e15,
                             123456789012345680.0,
                             1e-5,
                             0.0001,
                             5e-324,
                             1.7976931348623157e308,
                             0x1p60, /* a power of two: lopsided rounding interval */
                             1.0 / 3,
                             100.0,
                             -2.5e-7,
                             0x1p-1022,
                             9007199254740993.0,
                             0x1p70,
                             NAN,
                             INFINITY,
                             -INFINITY};
  EXPECT_VALUES(COL("g"), A(21, 0, 0, 2, NULL, d, NULL, 0), "0.0", "-0.0", "1.0", "0.1",
                "1e+16", "1000000000000000.0", "1.2345678901234568e+17", "1e-05", "0.0001",
                "5e-324", "1.7976931348623157e+308", "1.152921504606847e+18",
                "0.3333333333333333", "100.0", "-2.5e-07", "2.2250738585072014e-308",
                "9007199254740992.0", "1.1805916207174113e+21", "\"NaN\"", "\"Infinity\"",
                "\"-Infinity\"");
}

static void test_float32(void **state) {
  static const float f[] = {0.1f,     16777216.0f, 3.4028235e38f, 1e-45f, 0.3f, 1.17549435e-38f,
                            0x1p-30f, 1e10f,       123456.789f,   -1.5f,  NAN};
  EXPECT_VALUES(COL("f"), A(11, 0, 0, 2, NULL, f, NULL, 0), "0.1", "16777216.0",
                "3.4028235e+38", "1e-45", "0.3", "1.1754944e-38", "9.313226e-10",
                "10000000000.0", "123456.79", "-1.5", "\"NaN\"");
}

static void test_float16(void **state) {
  static const uint16_t h[] = {0x3C00, 0x3555, 0x7BFF, 0x0001, 0x2E66, 0x03FF,
                               0x0400, 0x1400, 0xC000, 0x4248, 0x7E00, 0xFC00, 0x8000};
  EXPECT_VALUES(COL("e"), A(13, 0, 0, 2, NULL, h, NULL, 0), "1.0", "0.3333", "65500.0",
                "6e-08", "0.1", "6.1e-05", "6.104e-05", "0.000977", "-2.0", "3.14", "\"NaN\"",
                "\"-Infinity\"", "-0.0");
}

/* ------------------------------------------------------------------------ */
/* Strings, binary, decimals */

static void test_strings(void **state) {
  static const char data[] =
      "plain"                      /* 0..5 */
      "q\"b\\s"                    /* 5..10 */
      "\n\t\x01\x1f\x7f"           /* 10..15 */
      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" /* 15..24: é € 😀 */
      "\xff"                       /* 24..25 */
      "a\xe2\x82"                  /* 25..28: truncated at the end */
      "\xed\xa0\x80"               /* 28..31: a surrogate */
      "\xc0\xafz"                  /* 31..34: overlong */
      "\xf0\x9f\x98";              /* 34..37 */
  static const int32_t offsets[] = {0, 5, 10, 15, 24, 25, 28, 31, 34, 37, 37};
  EXPECT_VALUES(COL("u"), A(10, 0, 0, 3, NULL, offsets, data, 0), "\"plain\"",
                "\"q\\\"b\\\\s\"", "\"\\u000a\\u0009\\u0001\\u001f\x7f\"",
                "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"\xef\xbf\xbd\"",
                "\"a\xef\xbf\xbd\"", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
                "\"\xef\xbf\xbd\xef\xbf\xbdz\"", "\"\xef\xbf\xbd\"", "\"\"");
  /* large_utf8, sliced, with a null. */
  static const int64_t loff[] = {0, 1, 3, 3, 6};
  static const uint8_t valid[] = {0x0D}; /* row 1 null */
  EXPECT_VALUES(COL("U"), A(3, 1, 1, 3, valid, loff, "abbccc", 0), "null", "\"\"",
                "\"ccc\"");
  EXPECT_VALUES(COL("U"), A(3, 1, 0, 3, valid, loff, "abbccc", 0), "\"a\"", "null", "\"\"");
}

static void test_binary_base64(void **state) {
  static const int32_t off[] = {0, 0, 1, 3, 6, 10, 12};
  static const char data[] = "f" "fo" "foo" "foob" "\xff\xfe";
  EXPECT_VALUES(COL("z"), A(6, 0, 0, 3, NULL, off, data, 0), "\"\"", "\"Zg==\"", "\"Zm8=\"",
                "\"Zm9v\"", "\"Zm9vYg==\"", "\"//4=\"");
  static const int64_t loff[] = {0, 3};
  EXPECT_VALUES(COL("Z"), A(1, 0, 0, 3, NULL, loff, "\x00\x10\x83", 0), "\"ABCD\"");
  static const uint8_t valid[] = {0x05};
  EXPECT_VALUES(COL("w:3"), A(3, 1, 0, 2, valid, "foo\0\0\0bar", NULL, 0), "\"Zm9v\"", "null",
                "\"YmFy\"");
  /* width 1, sliced: rows 1..2. */
  EXPECT_VALUES(COL("w:1"), A(2, 0, 1, 2, NULL, "abc", NULL, 0), "\"Yg==\"", "\"Yw==\"");
}

/* decimal128 little-endian two's complement of a small integer. */
static void dec(uint8_t *out, int64_t v) {
  memcpy(out, &v, 8);
  memset(out + 8, v < 0 ? 0xFF : 0, 8);
}

static void test_decimal128(void **state) {
  static uint8_t d[6][16];
  dec(d[0], -12340);
  dec(d[1], 0);
  dec(d[2], 12);
  dec(d[3], -1);
  dec(d[4], 123456789);
  dec(d[5], 5);
  EXPECT_VALUES(COL("d:10,3"), A(6, 0, 0, 2, NULL, d, NULL, 0), "\"-12.340\"", "\"0.000\"",
                "\"0.012\"", "\"-0.001\"", "\"123456.789\"", "\"0.005\"");
  EXPECT_VALUES(COL("d:10,0"), A(3, 0, 0, 2, NULL, d, NULL, 0), "\"-12340\"", "\"0\"",
                "\"12\"");
  EXPECT_VALUES(COL("d:12,6"), A(2, 0, 2, 2, NULL, d, NULL, 0), "\"0.000012\"",
                "\"-0.000001\"");
  /* Full 128 bits: the largest 38-digit value. */
  static uint8_t big[16];
  /* 10^38 - 1 = 0x4B3B4CA85A86C47A098A223FFFFFFFFF */
  static const uint64_t lo = 0x098A223FFFFFFFFFull, hi = 0x4B3B4CA85A86C47Aull;
  memcpy(big, &lo, 8);
  memcpy(big + 8, &hi, 8);
  EXPECT_VALUES(COL("d:38,2"), A(1, 0, 0, 2, NULL, big, NULL, 0),
                "\"999999999999999999999999999999999999.99\"");
}

/* ------------------------------------------------------------------------ */
/* Dates and times */

static void test_date32(void **state) {
  static const int32_t days[] = {0,       -1,      11016,       -719528,    -719529, -719893,
                                 2932897, 2932896, INT32_MIN, INT32_MAX, -25508};
  EXPECT_VALUES(COL("tdD"), A(11, 0, 0, 2, NULL, days, NULL, 0), "\"1970-01-01\"",
                "\"1969-12-31\"", "\"2000-02-29\"", "\"0000-01-01\"", "\"-0001-12-31\"",
                "\"-0001-01-01\"", "\"+10000-01-01\"", "\"9999-12-31\"", "\"-5877641-06-23\"",
                "\"+5881580-07-11\"", "\"1900-03-01\"");
}

static void test_timestamps(void **state) {
  static const int64_t s[] = {0, -1, 1614834367, INT64_MIN, INT64_MAX};
  EXPECT_VALUES(COL("tss:"), A(5, 0, 0, 2, NULL, s, NULL, 0), "\"1970-01-01T00:00:00\"",
                "\"1969-12-31T23:59:59\"", "\"2021-03-04T05:06:07\"",
                "\"-292277022657-01-27T08:29:52\"", "\"+292277026596-12-04T15:30:07\"");
  static const int64_t ms[] = {-1, 1614834367123, INT64_MIN};
  EXPECT_VALUES(COL("tsm:"), A(3, 0, 0, 2, NULL, ms, NULL, 0), "\"1969-12-31T23:59:59.999\"",
                "\"2021-03-04T05:06:07.123\"", "\"-292275055-05-16T16:47:04.192\"");
  static const int64_t us[] = {1614834367123456, -1500000, 5};
  EXPECT_VALUES(COL("tsu:"), A(3, 0, 0, 2, NULL, us, NULL, 0),
                "\"2021-03-04T05:06:07.123456\"", "\"1969-12-31T23:59:58.500000\"",
                "\"1970-01-01T00:00:00.000005\"");
  static const int64_t ns[] = {-1, INT64_MIN, INT64_MAX};
  EXPECT_VALUES(COL("tsn:"), A(3, 0, 0, 2, NULL, ns, NULL, 0),
                "\"1969-12-31T23:59:59.999999999\"", "\"1677-09-21T00:12:43.145224192\"",
                "\"2262-04-11T23:47:16.854775807\"");
  /* With a time zone the value is UTC: a Z, whatever the zone's name. */
  static const uint8_t valid[] = {0x01};
  EXPECT_VALUES(COL("tsu:UTC"), A(2, 1, 0, 2, valid, us, NULL, 0),
                "\"2021-03-04T05:06:07.123456Z\"", "null");
  EXPECT_VALUES(COL("tss:America/New_York"), A(1, 0, 0, 2, NULL, s, NULL, 0),
                "\"1970-01-01T00:00:00Z\"");
}

static void test_durations(void **state) {
  static const int64_t v[] = {-5, 0, INT64_MIN, INT64_MAX};
  EXPECT_VALUES(COL("tDs"), A(4, 0, 0, 2, NULL, v, NULL, 0), "-5", "0", "-9223372036854775808",
                "9223372036854775807");
  EXPECT_VALUES(COL("tDn"), A(1, 0, 0, 2, NULL, v, NULL, 0), "-5");
}

static void test_date64_and_times(void **state) {
  static const int64_t ms[] = {0, -86400000, 951782400000, -62135596800000};
  EXPECT_VALUES(COL("tdm"), A(4, 0, 0, 2, NULL, ms, NULL, 0), "\"1970-01-01\"",
                "\"1969-12-31\"", "\"2000-02-29\"", "\"0001-01-01\"");
  static const int32_t t32[] = {0, 86399, 45296};
  EXPECT_VALUES(COL("tts"), A(3, 0, 0, 2, NULL, t32, NULL, 0), "\"00:00:00\"", "\"23:59:59\"",
                "\"12:34:56\"");
  /* What validation refuses first. */
  static const int32_t bad_t32[] = {86400};
  static const int64_t bad_ms[] = {1};
  pt_error err;
  struct ArrowSchema *ts = S("+s", "", 0, 1, COL("tts"));
  assert_int_equal(pt_array_validate(ts, A(1, 0, 0, 1, NULL, NULL, NULL, 1,
                                           A(1, 0, 0, 2, NULL, bad_t32, NULL, 0)), &err),
                   PT_EFORMAT);
  assert_string_equal(err.message, "column 'v': row 0: time 86400 s is not within one day");
  struct ArrowSchema *ds = S("+s", "", 0, 1, COL("tdm"));
  assert_int_equal(pt_array_validate(ds, A(1, 0, 0, 1, NULL, NULL, NULL, 1,
                                           A(1, 0, 0, 2, NULL, bad_ms, NULL, 0)), &err),
                   PT_EFORMAT);
  assert_string_equal(err.message,
                      "column 'v': row 0: date64 1 is not a whole number of days (of 86400000 ms)");
  static const int32_t t32ms[] = {45296789, 86399999};
  EXPECT_VALUES(COL("ttm"), A(2, 0, 0, 2, NULL, t32ms, NULL, 0), "\"12:34:56.789\"",
                "\"23:59:59.999\"");
  static const int64_t t64[] = {45296789012, 1};
  EXPECT_VALUES(COL("ttu"), A(2, 0, 0, 2, NULL, t64, NULL, 0), "\"12:34:56.789012\"",
                "\"00:00:00.000001\"");
  static const int64_t t64ns[] = {86399999999999, INT64_MAX};
  static const uint8_t valid[] = {0x01};
  EXPECT_VALUES(COL("ttn"), A(2, 1, 0, 2, valid, t64ns, NULL, 0), "\"23:59:59.999999999\"",
                "null");
}

static void test_maps(void **state) {
  /* map<utf8, int64>: rows {a: 1, b: null}, null, {} at offset 1 of entries. */
  static const int32_t offsets[] = {1, 3, 3, 3};
  static const int32_t key_offsets[] = {0, 1, 2, 3};
  static const char keys[] = "xab";
  static const int64_t values[] = {9, 1, 0};
  static const uint8_t map_valid[] = {0x05}, value_valid[] = {0x03};
  struct ArrowSchema *ks = S("u", "key", 0, 0), *vs = S("l", "value", NULLABLE, 0);
  struct ArrowSchema *es = S("+s", "entries", 0, 2, ks, vs);
  struct ArrowArray *ka = A(3, 0, 0, 3, NULL, key_offsets, keys, 0);
  struct ArrowArray *va = A(3, 1, 0, 2, value_valid, values, NULL, 0);
  struct ArrowArray *ea = A(3, 0, 0, 1, NULL, NULL, NULL, 2, ka, va);
  EXPECT_VALUES(S("+m", "v", NULLABLE, 1, es), A(3, 1, 0, 2, map_valid, offsets, NULL, 1, ea),
                "[{\"key\": \"a\", \"value\": 1}, {\"key\": \"b\", \"value\": null}]", "null",
                "[]");
}

static void test_unions(void **state) {
  /* sparse_union<i: int32=3, s: utf8=7>, from row 1: children indexed with
   * the union's offset. */
  static const int8_t types[] = {3, 7, 3, 7, 3};
  static const int32_t ints[] = {10, 11, 12, 13};
  static const uint8_t int_valid[] = {0x0b}; /* row 2 null */
  static const int32_t str_offsets[] = {0, 1, 2, 3, 4};
  static const char strs[] = "abcd";
  struct ArrowSchema *is = S("i", "i", NULLABLE, 0), *ss = S("u", "s", NULLABLE, 0);
  struct ArrowArray *ia = A(4, 1, 0, 2, int_valid, ints, NULL, 0);
  struct ArrowArray *sa = A(4, 0, 0, 3, NULL, str_offsets, strs, 0);
  struct ArrowSchema *us = S("+us:3,7", "v", NULLABLE, 2, is, ss);
  struct ArrowArray *ua = A(3, 0, 1, 1, types, NULL, NULL, 2, ia, sa);
  EXPECT_VALUES(us, ua, "{\"s\": \"b\"}", "{\"i\": null}", "{\"s\": \"d\"}");
  pt_error err;
  assert_int_equal(pt_array_validate(us, ua, &err), PT_OK);
  /* Dense: offsets into each child. */
  static const int8_t dtypes[] = {0, 1, 0, 1};
  static const int32_t doffsets[] = {1, 0, 0, 3};
  struct ArrowSchema *ds = S("+ud:0,1", "v", NULLABLE, 2, S("i", "i", NULLABLE, 0),
                             S("u", "s", NULLABLE, 0));
  struct ArrowArray *da = A(4, 0, 0, 2, dtypes, doffsets, NULL, 2, ia, sa);
  EXPECT_VALUES(ds, da, "{\"i\": 11}", "{\"s\": \"a\"}", "{\"i\": 10}", "{\"s\": \"d\"}");
  /* Children without names: keyed by type id. */
  struct ArrowSchema *ns = S("+ud:0,1", "v", NULLABLE, 2, S("i", "", NULLABLE, 0),
                             S("u", "", NULLABLE, 0));
  EXPECT_VALUES(ns, da, "{\"0\": 11}", "{\"1\": \"a\"}", "{\"0\": 10}", "{\"1\": \"d\"}");
  /* What validation refuses, by path. */
  static const int32_t bad_offsets[] = {1, 0, 0, 4};
  da->buffers[1] = bad_offsets;
  struct ArrowSchema *bs = S("+s", "", 0, 1, ds);
  struct ArrowArray *ba = A(4, 0, 0, 1, NULL, NULL, NULL, 1, da);
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "column 'v': row 3: offset 4 is out of range of child 1 (4 values)");
  static const int8_t bad_types[] = {0, 2, 0, 1};
  da->buffers[1] = doffsets;
  da->buffers[0] = bad_types;
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message, "column 'v': row 1: type id 2 is not one of the union's");
  da->buffers[0] = dtypes;
  da->null_count = 1;
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EINVAL);
  assert_string_equal(err.message,
                      "column 'v': null_count is 1 but a union has no validity bitmap");
  da->null_count = 0;
  ua->offset = 2; /* sparse children of 4 rows, union rows up to 5 */
  assert_int_equal(pt_array_validate(us, ua, &err), PT_EFORMAT);
  assert_string_equal(err.message, "column 'i': length 4 is shorter than the 5 rows of its sparse "
                                   "union (offset 2 + length 3)");
}

static void test_views(void **state) {
  /* Two data buffers; rows: inline "hi", out-of-line from buffer 1, null,
   * empty, 12 bytes inline, out-of-line from buffer 0. */
  static const char data0[] = "0123456789abcdefXYZ";
  static const char data1[] = "__hello, world of views";
  static uint8_t views[6][16];
  static int64_t sizes[2] = {19, 23};
  pt__view_make(views[0], (const uint8_t *)"hi", 2, 0, 0);
  pt__view_make(views[1], (const uint8_t *)data1 + 2, 21, 1, 2);
  pt__view_make(views[3], (const uint8_t *)"", 0, 0, 0);
  pt__view_make(views[4], (const uint8_t *)"twelve bytes", 12, 0, 0);
  pt__view_make(views[5], (const uint8_t *)data0 + 3, 16, 0, 3);
  static const uint8_t valid[] = {0x3b};
  struct ArrowArray *a = arena_alloc(sizeof *a);
  static const void *bufs[5];
  bufs[0] = valid, bufs[1] = views, bufs[2] = data0, bufs[3] = data1, bufs[4] = sizes;
  *a = (struct ArrowArray){.length = 6, .null_count = 1, .n_buffers = 5, .buffers = bufs,
                           .children = NULL, .release = array_release};
  EXPECT_VALUES(COL("vu"), a, "\"hi\"", "\"hello, world of views\"", "null", "\"\"",
                "\"twelve bytes\"", "\"3456789abcdefXYZ\"");
  EXPECT_VALUES(COL("vz"), a, "\"aGk=\"", "\"aGVsbG8sIHdvcmxkIG9mIHZpZXdz\"", "null", "\"\"",
                "\"dHdlbHZlIGJ5dGVz\"", "\"MzQ1Njc4OWFiY2RlZlhZWg==\"");
  /* What validation refuses. */
  pt_error err;
  struct ArrowSchema *bs = S("+s", "", 0, 1, COL("vu"));
  struct ArrowArray *ba = A(6, 0, 0, 1, NULL, NULL, NULL, 1, a);
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_OK);
  pt__store_i32(views[5] + 12, 4); /* bytes [4, 20) of 19 */
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message, "column 'v': row 5: view of bytes [4, 20) is outside data "
                                   "buffer 0 (19 bytes)");
  pt__store_i32(views[5] + 12, 2);
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message, "column 'v': row 5: view prefix differs from its data");
  pt__store_i32(views[5] + 8, 2);
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "column 'v': row 5: view of buffer 2, but there are 2 data buffers");
  pt__store_i32(views[5], -1);
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message, "column 'v': row 5: view length -1 is negative");
  a->n_buffers = 2;
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EINVAL);
  assert_string_equal(err.message, "column 'v': string_view array needs 4 buffers but has 2");
}

static void test_list_views(void **state) {
  /* Rows: [3, 4], [1, 2, 3] (overlapping), null (over a value), [] */
  static const int64_t items[] = {1, 2, 3, 4};
  static const int32_t offsets[] = {2, 0, 3, 1};
  static int32_t sizes[] = {2, 3, 1, 0};
  static const uint8_t valid[] = {0x0b};
  struct ArrowSchema *ls = S("+vl", "v", NULLABLE, 1, S("l", "item", NULLABLE, 0));
  struct ArrowArray *la = A(4, 1, 0, 3, valid, offsets, sizes, 1,
                            A(4, 0, 0, 2, NULL, items, NULL, 0));
  EXPECT_VALUES(ls, la, "[3, 4]", "[1, 2, 3]", "null", "[]");
  pt_error err;
  struct ArrowSchema *bs = S("+s", "", 0, 1, ls);
  struct ArrowArray *ba = A(4, 0, 0, 1, NULL, NULL, NULL, 1, la);
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_OK);
  sizes[1] = 5;
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message, "column 'v': row 1: list view of offset 0 and size 5 is "
                                   "outside the child's 4 values");
  sizes[1] = 3;
  /* A copy is compact: the span the valid rows cover. */
  struct ArrowArray copy;
  assert_int_equal(pt_array_copy(ls, la, &copy, &err), PT_OK);
  assert_int_equal(copy.children[0]->length, 4);
  assert_int_equal(pt__load_i32((const uint8_t *)copy.buffers[1] + 8), 0); /* the null row */
  assert_int_equal(pt__load_i32((const uint8_t *)copy.buffers[2] + 8), 0);
  expect_values(ls, &copy, (const char *[]){"[3, 4]", "[1, 2, 3]", "null", "[]", NULL});
  copy.release(&copy);
}

static void test_run_end_encoded(void **state) {
  /* Runs: 2 x 7, 1 x null, 3 x -1; viewed from row 1 for 5 rows. */
  static int32_t ends[] = {2, 3, 6};
  static const int64_t values[] = {7, 0, -1};
  static const uint8_t valid[] = {0x05};
  struct ArrowSchema *rs = S("+r", "v", NULLABLE, 2, S("i", "run_ends", 0, 0),
                             S("l", "values", NULLABLE, 0));
  struct ArrowArray *ra = A(5, 0, 1, 0, NULL, NULL, NULL, 2, A(3, 0, 0, 2, NULL, ends, NULL, 0),
                            A(3, 1, 0, 2, valid, values, NULL, 0));
  EXPECT_VALUES(rs, ra, "7", "null", "-1", "-1", "-1");
  struct ArrowArray copy;
  pt_error err;
  assert_int_equal(pt_array_copy(rs, ra, &copy, &err), PT_OK);
  assert_int_equal(copy.offset, 0);
  assert_int_equal(pt__load_i32(copy.children[0]->buffers[1]), 1); /* run ends rebased */
  assert_int_equal(pt__load_i32((const uint8_t *)copy.children[0]->buffers[1] + 8), 5);
  expect_values(rs, &copy, (const char *[]){"7", "null", "-1", "-1", "-1", NULL});
  copy.release(&copy);
  struct ArrowSchema *bs = S("+s", "", 0, 1, rs);
  struct ArrowArray *ba = A(5, 0, 0, 1, NULL, NULL, NULL, 1, ra);
  ends[2] = 5;
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message, "column 'v': the runs end at row 5, before the 6 rows (offset "
                                   "1 + length 5)");
  ends[2] = 3;
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "column 'v': run end 2 (3) is not above the one before (3)");
  ends[2] = 6;
  ra->null_count = 2;
  assert_int_equal(pt_array_validate(bs, ba, &err), PT_EINVAL);
  assert_string_equal(err.message, "column 'v': null_count is 2 but a run-end encoded array has "
                                   "no validity bitmap");
}

static void test_intervals(void **state) {
  static const int32_t months[] = {0, -1, INT32_MAX};
  EXPECT_VALUES(COL("tiM"), A(3, 0, 0, 2, NULL, months, NULL, 0), "0", "-1", "2147483647");
  static const int32_t dt[] = {1, 5, -2, INT32_MIN};
  EXPECT_VALUES(COL("tiD"), A(2, 0, 0, 2, NULL, dt, NULL, 0), "{\"days\": 1, \"milliseconds\": 5}",
                "{\"days\": -2, \"milliseconds\": -2147483648}");
  /* month_day_nano: int32 months, int32 days, int64 nanoseconds. */
  static uint8_t mdn[2][16];
  pt__store_i32(mdn[0], 14);
  pt__store_i32(mdn[0] + 4, -3);
  pt__store_i64(mdn[0] + 8, INT64_MIN);
  pt__store_i32(mdn[1], 0);
  pt__store_i32(mdn[1] + 4, 1);
  pt__store_i64(mdn[1] + 8, 1000);
  static const uint8_t valid[] = {0x02};
  EXPECT_VALUES(COL("tin"), A(2, 1, 0, 2, valid, mdn, NULL, 0), "null",
                "{\"months\": 0, \"days\": 1, \"nanoseconds\": 1000}");
  EXPECT_VALUES(COL("tin"), A(1, 0, 0, 2, NULL, mdn, NULL, 0),
                "{\"months\": 14, \"days\": -3, \"nanoseconds\": -9223372036854775808}");
}

static void test_decimal_widths(void **state) {
  static const int32_t d32[] = {-12340, 999999999, INT32_MIN};
  EXPECT_VALUES(COL("d:9,3,32"), A(3, 0, 0, 2, NULL, d32, NULL, 0), "\"-12.340\"",
                "\"999999.999\"", "\"-2147483.648\"");
  static const int64_t d64[] = {5, -999999999999999999};
  EXPECT_VALUES(COL("d:18,18,64"), A(2, 0, 0, 2, NULL, d64, NULL, 0),
                "\"0.000000000000000005\"", "\"-0.999999999999999999\"");
  EXPECT_VALUES(COL("d:18,-3,64"), A(1, 0, 0, 2, NULL, d64, NULL, 0), "\"5E+3\"");
  /* decimal256: 10^76 - 1 and -1 at scale 76. */
  static uint8_t d256[2][32];
  pt_error err;
  const char *nines = "9999999999999999999999999999999999999999999999999999999999999999999999999999";
  assert_int_equal(pt__decimal_from_string(nines, 32, 76, 0, d256[0], &err), PT_OK);
  memset(d256[1], 0xff, 32);
  char want[100];
  snprintf(want, sizeof want, "\"%s\"", nines);
  EXPECT_VALUES(COL("d:76,0,256"), A(1, 0, 0, 2, NULL, d256, NULL, 0), want);
  EXPECT_VALUES(COL("d:76,76,256"), A(1, 0, 1, 2, NULL, d256, NULL, 0),
                "\"-0.0000000000000000000000000000000000000000000000000000000000000000000000000001\"");
}

/* ------------------------------------------------------------------------ */
/* Nested */

static void test_lists(void **state) {
  static const int64_t values[] = {1, 2, 3, 4, 5, 6};
  static const uint8_t vvalid[] = {0x3B}; /* value 2 (=3) null */
  struct ArrowArray *items = A(6, 1, 0, 2, vvalid, values, NULL, 0);
  static const int32_t off[] = {0, 2, 2, 2, 6};
  static const uint8_t valid[] = {0x0B}; /* row 2 null */
  EXPECT_VALUES(S("+l", "v", NULLABLE, 1, COL("l")), A(4, 1, 0, 2, valid, off, NULL, 1, items),
                "[1, 2]", "[]", "null", "[null, 4, 5, 6]");
  /* Sliced list: rows 1..3 of the same array. */
  EXPECT_VALUES(S("+l", "v", NULLABLE, 1, COL("l")), A(3, 1, 1, 2, valid, off, NULL, 1, items),
                "[]", "null", "[null, 4, 5, 6]");
  static const int64_t loff[] = {1, 3, 6};
  EXPECT_VALUES(S("+L", "v", NULLABLE, 1, COL("l")), A(2, 0, 0, 2, NULL, loff, NULL, 1, items),
                "[2, null]", "[4, 5, 6]");
  /* fixed_size_list[2]: list i holds values [2i, 2i+2). Offset 1, list 1
   * null; then offset 0. */
  static const uint8_t fvalid[] = {0x04};
  EXPECT_VALUES(S("+w:2", "v", NULLABLE, 1, COL("l")),
                A(2, 1, 1, 1, fvalid, NULL, NULL, 1, items), "null", "[5, 6]");
  EXPECT_VALUES(S("+w:2", "v", NULLABLE, 1, COL("l")),
                A(2, 0, 0, 1, NULL, NULL, NULL, 1, items), "[1, 2]", "[null, 4]");
}

static void test_structs_and_nesting(void **state) {
  /* list<struct<x: int64, tags: list<utf8>>> with nulls at every level. */
  static const int64_t x[] = {10, 20, 30, 40};
  static const uint8_t xvalid[] = {0x0D}; /* x[1] null */
  static const int32_t toff[] = {0, 1, 1, 3, 3};
  static const int32_t soff[] = {0, 1, 2, 3};
  static const uint8_t svalid[] = {0x05}; /* "b" null */
  static const uint8_t tvalid[] = {0x0B}; /* tags[2] null */
  static const uint8_t stvalid[] = {0x0B}; /* struct row 2 null */
  struct ArrowSchema *st = S("+s", "item", NULLABLE, 2, S("l", "x", NULLABLE, 0),
                             S("+l", "tags", NULLABLE, 1, S("u", "item", NULLABLE, 0)));
  struct ArrowArray *sa =
      A(4, 1, 0, 1, stvalid, NULL, NULL, 2, A(4, 1, 0, 2, xvalid, x, NULL, 0),
        A(4, 1, 0, 2, tvalid, toff, NULL, 1, A(3, 1, 0, 3, svalid, soff, "abc", 0)));
  static const int32_t loff[] = {0, 3, 3, 4};
  static const uint8_t lvalid[] = {0x05};
  EXPECT_VALUES(S("+l", "v", NULLABLE, 1, st), A(3, 1, 0, 2, lvalid, loff, NULL, 1, sa),
                "[{\"x\": 10, \"tags\": [\"a\"]}, {\"x\": null, \"tags\": []}, null]", "null",
                "[{\"x\": 40, \"tags\": []}]");

  /* A sliced struct: its offset applies to its children. */
  static const int32_t a[] = {1, 2, 3};
  static const int32_t boff[] = {0, 1, 2, 3};
  EXPECT_VALUES(S("+s", "v", NULLABLE, 2, S("i", "a", NULLABLE, 0), S("u", "b", NULLABLE, 0)),
                A(2, 0, 1, 1, NULL, NULL, NULL, 2, A(3, 0, 0, 2, NULL, a, NULL, 0),
                  A(3, 0, 0, 3, NULL, boff, "pqr", 0)),
                "{\"a\": 2, \"b\": \"q\"}", "{\"a\": 3, \"b\": \"r\"}");
}

static void test_dictionary(void **state) {
  static const int32_t off[] = {0, 1, 2, 2};
  static const uint8_t dvalid[] = {0x03}; /* dictionary value 2 null */
  struct ArrowSchema *values = S("u", "", NULLABLE, 0);
  struct ArrowSchema *col = COL("c");
  col->dictionary = values;
  static const int8_t idx[] = {0, 1, 0, 0, 2};
  static const uint8_t ivalid[] = {0x1B}; /* index 2 null */
  struct ArrowArray *arr = A(5, 1, 0, 2, ivalid, idx, NULL, 0);
  arr->dictionary = A(3, 1, 0, 3, dvalid, off, "ab", 0);
  EXPECT_VALUES(col, arr, "\"a\"", "\"b\"", "null", "\"a\"", "null");

  /* Unsigned indices, a sliced index array, a dictionary of lists. */
  static const int64_t items[] = {7, 8, 9};
  static const int32_t loff[] = {0, 0, 3};
  struct ArrowSchema *lcol = COL("I");
  lcol->dictionary = S("+l", "", NULLABLE, 1, COL("l"));
  static const uint32_t uidx[] = {0, 1, 1, 0};
  struct ArrowArray *larr = A(3, 0, 1, 2, NULL, uidx, NULL, 0);
  larr->dictionary = A(2, 0, 0, 2, NULL, loff, NULL, 1, A(3, 0, 0, 2, NULL, items, NULL, 0));
  EXPECT_VALUES(lcol, larr, "[7, 8, 9]", "[7, 8, 9]", "[]");
}

/* ------------------------------------------------------------------------ */
/* Whole batches */

static void test_batch_columns_and_names(void **state) {
  static const int64_t n[] = {1, 2};
  static const int32_t off[] = {0, 1, 2};
  struct ArrowSchema *s =
      S("+s", "", 0, 3, S("l", "id", 0, 0), S("u", "we\"ird\n", NULLABLE, 0),
        S("b", "\xc3\xa9t\xc3\xa9", NULLABLE, 0));
  static const uint8_t bits[] = {0x02};
  struct ArrowArray *a =
      A(2, 0, 0, 1, NULL, NULL, NULL, 3, A(2, 0, 0, 2, NULL, n, NULL, 0),
        A(2, 0, 0, 3, NULL, off, "xy", 0), A(2, 0, 0, 2, NULL, bits, NULL, 0));
  expect_batch(s, a,
               "{\"id\": 1, \"we\\\"ird\\u000a\": \"x\", \"\xc3\xa9t\xc3\xa9\": false}\n"
               "{\"id\": 2, \"we\\\"ird\\u000a\": \"y\", \"\xc3\xa9t\xc3\xa9\": true}\n");
  /* The same batch sliced to its second row. */
  a->offset = 1;
  a->length = 1;
  expect_batch(s, a, "{\"id\": 2, \"we\\\"ird\\u000a\": \"y\", \"\xc3\xa9t\xc3\xa9\": true}\n");
  /* Empty batch, and a batch with no columns. */
  a->length = 0;
  expect_batch(s, a, "");
  expect_batch(S("+s", "", 0, 0), A(2, 0, 0, 1, NULL, NULL, NULL, 0), "{}\n{}\n");
}

static void test_appends_to_buffer(void **state) {
  static const int64_t n[] = {1};
  struct ArrowSchema *s = S("+s", "", 0, 1, S("l", "a", 0, 0));
  struct ArrowArray *a = A(1, 0, 0, 1, NULL, NULL, NULL, 1, A(1, 0, 0, 2, NULL, n, NULL, 0));
  pt_buf out = {0};
  assert_int_equal(pt__buf_append(&out, "x", 1), PT_OK);
  assert_int_equal(pt_json_write_batch(s, a, &out, NULL), PT_OK);
  assert_int_equal(pt_json_write_batch(s, a, &out, NULL), PT_OK);
  assert_int_equal(out.len, 1 + 2 * 9);
  assert_memory_equal(out.data, "x{\"a\": 1}\n{\"a\": 1}\n", out.len);
  pt_buf_free(&out);
}

static void test_errors(void **state) {
  pt_error err = {0};
  pt_buf out = {0};
  static const int64_t n[] = {1, 2};
  struct ArrowSchema *s = S("+s", "", 0, 1, S("l", "a", 0, 0));
  struct ArrowArray *a = A(2, 0, 0, 1, NULL, NULL, NULL, 1, A(2, 0, 0, 2, NULL, n, NULL, 0));
  assert_int_equal(pt_json_write_batch(NULL, a, &out, &err), PT_EINVAL);
  assert_int_equal(pt_json_write_batch(s, NULL, &out, &err), PT_EINVAL);
  assert_int_equal(pt_json_write_batch(s, a, NULL, &err), PT_EINVAL);

  /* Not a struct. */
  assert_int_equal(pt_json_write_batch(s->children[0], a->children[0], &out, &err), PT_EINVAL);
  assert_string_equal(err.message, "json: a record batch must be a struct array, not 'l'");

  /* Offsets going backwards: refused before any row is written. */
  static const int32_t bad_off[] = {0, 2, 1};
  struct ArrowSchema *us = S("+s", "", 0, 1, S("u", "a", 0, 0));
  struct ArrowArray *ua =
      A(2, 0, 0, 1, NULL, NULL, NULL, 1, A(2, 0, 0, 3, NULL, bad_off, "xy", 0));
  assert_int_equal(pt__buf_append(&out, "keep", 4), PT_OK);
  assert_int_not_equal(pt_json_write_batch(us, ua, &out, &err), PT_OK);
  assert_memory_equal(err.message, "json: ", 6);
  assert_int_equal(out.len, 4);

  /* Dictionary index out of range. */
  struct ArrowSchema *col = S("c", "a", NULLABLE, 0);
  col->dictionary = S("l", "", NULLABLE, 0);
  static const int8_t idx[] = {0, 5};
  struct ArrowArray *ia = A(2, 0, 0, 2, NULL, idx, NULL, 0);
  ia->dictionary = A(2, 0, 0, 2, NULL, n, NULL, 0);
  assert_int_not_equal(
      pt_json_write_batch(S("+s", "", 0, 1, col), A(2, 0, 0, 1, NULL, NULL, NULL, 1, ia), &out,
                          &err),
      PT_OK);
  assert_int_equal(out.len, 4);
  pt_buf_free(&out);
}

/* Every allocation failure gives PT_ENOMEM, leaves the buffer's contents as
 * they were, and leaks nothing (the ASan build checks the last part). */
static void test_allocation_failures(void **state) {
  static const int64_t n[] = {1, 2, 3};
  static const int32_t off[] = {0, 3, 6, 9};
  struct ArrowSchema *s = S("+s", "", 0, 2, S("l", "a", 0, 0),
                            S("+l", "b", NULLABLE, 1, S("u", "item", NULLABLE, 0)));
  static const int32_t loff[] = {0, 1, 2, 3};
  struct ArrowArray *a =
      A(3, 0, 0, 1, NULL, NULL, NULL, 2, A(3, 0, 0, 2, NULL, n, NULL, 0),
        A(3, 0, 0, 2, NULL, loff, NULL, 1, A(3, 0, 0, 3, NULL, off, "abcdefghi", 0)));
  const char *expected = "{\"a\": 1, \"b\": [\"abc\"]}\n{\"a\": 2, \"b\": [\"def\"]}\n"
                         "{\"a\": 3, \"b\": [\"ghi\"]}\n";
  for (int64_t fail = 0;; fail++) {
    pt_buf out = {0};
    pt_error err = {0};
    pt__alloc_fail_after(fail);
    int rc = pt_json_write_batch(s, a, &out, &err);
    pt__alloc_fail_after(-1);
    if (rc == PT_OK) {
      assert_int_equal(out.len, strlen(expected));
      assert_memory_equal(out.data, expected, out.len);
      pt_buf_free(&out);
      break;
    }
    assert_int_equal(rc, PT_ENOMEM);
    assert_int_equal(out.len, 0);
    pt_buf_free(&out);
    assert_true(fail < 100);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_null_and_bool, arena_teardown),
      cmocka_unit_test_teardown(test_integers, arena_teardown),
      cmocka_unit_test_teardown(test_doubles, arena_teardown),
      cmocka_unit_test_teardown(test_float32, arena_teardown),
      cmocka_unit_test_teardown(test_float16, arena_teardown),
      cmocka_unit_test_teardown(test_strings, arena_teardown),
      cmocka_unit_test_teardown(test_binary_base64, arena_teardown),
      cmocka_unit_test_teardown(test_decimal128, arena_teardown),
      cmocka_unit_test_teardown(test_date32, arena_teardown),
      cmocka_unit_test_teardown(test_timestamps, arena_teardown),
      cmocka_unit_test_teardown(test_durations, arena_teardown),
      cmocka_unit_test_teardown(test_date64_and_times, arena_teardown),
      cmocka_unit_test_teardown(test_intervals, arena_teardown),
      cmocka_unit_test_teardown(test_maps, arena_teardown),
      cmocka_unit_test_teardown(test_unions, arena_teardown),
      cmocka_unit_test_teardown(test_views, arena_teardown),
      cmocka_unit_test_teardown(test_list_views, arena_teardown),
      cmocka_unit_test_teardown(test_run_end_encoded, arena_teardown),
      cmocka_unit_test_teardown(test_decimal_widths, arena_teardown),
      cmocka_unit_test_teardown(test_lists, arena_teardown),
      cmocka_unit_test_teardown(test_structs_and_nesting, arena_teardown),
      cmocka_unit_test_teardown(test_dictionary, arena_teardown),
      cmocka_unit_test_teardown(test_batch_columns_and_names, arena_teardown),
      cmocka_unit_test_teardown(test_appends_to_buffer, arena_teardown),
      cmocka_unit_test_teardown(test_errors, arena_teardown),
      cmocka_unit_test_teardown(test_allocation_failures, arena_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
