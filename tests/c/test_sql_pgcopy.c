/* test_sql_pgcopy.c — the binary COPY decoder of src/sql on hand-built
 * streams: every mapped type with its epoch shifts and NULLs, then hostile
 * input (truncation at every byte, lying lengths, wrong field counts, bad
 * signature, trailing bytes) refused with exact messages, never read past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sql/sql.h"

typedef struct {
  uint8_t b[4096];
  int64_t n;
} sbuf;

static void put(sbuf *s, const void *p, int64_t n) {
  memcpy(s->b + s->n, p, (size_t)n);
  s->n += n;
}
static void put16(sbuf *s, int v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(s, x, 2);
}
static void put32(sbuf *s, int64_t v) {
  uint32_t u = (uint32_t)v;
  uint8_t x[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
  put(s, x, 4);
}
static void put64(sbuf *s, int64_t v) {
  put32(s, (int64_t)((uint64_t)v >> 32));
  put32(s, v & 0xffffffff);
}
static void header(sbuf *s) {
  put(s, "PGCOPY\n\377\r\n\0", 11);
  put32(s, 0);
  put32(s, 0);
}

static const pt__pg_kind k_kinds[] = {PT__PG_BOOL,  PT__PG_INT2,      PT__PG_INT4,
                                      PT__PG_INT8,  PT__PG_FLOAT8,    PT__PG_TEXT,
                                      PT__PG_JSONB, PT__PG_BYTEA,     PT__PG_DATE,
                                      PT__PG_TIMESTAMP, PT__PG_TIMESTAMPTZ, PT__PG_UUID,
                                      PT__PG_FLOAT4};
static const char *const k_names[] = {"b", "i2", "i4", "i8", "f8", "t", "jb",
                                      "by", "d", "ts", "tstz", "u", "f4"};
#define NCOL 13

/* Two rows: one of values, one of NULLs; then the trailer. */
static void sample(sbuf *s) {
  header(s);
  put16(s, NCOL);
  put32(s, 1), put(s, "\1", 1);
  put32(s, 2), put16(s, -2);
  put32(s, 4), put32(s, 100000);
  put32(s, 8), put64(s, -5000000000LL);
  double f = 2.5;
  uint64_t u;
  memcpy(&u, &f, 8);
  put32(s, 8), put64(s, (int64_t)u);
  put32(s, 5), put(s, "hello", 5);
  put32(s, 8), put(s, "\1{\"a\":1}", 8);
  put32(s, 3), put(s, "\0\1\2", 3);
  put32(s, 4), put32(s, 1);                 /* 2000-01-02 */
  put32(s, 8), put64(s, 1000000);           /* 2000-01-01 00:00:01 */
  put32(s, 8), put64(s, -946684800000000LL); /* 1970-01-01 */
  put32(s, 16), put(s, "0123456789abcdef", 16);
  float f4 = -1.5f;
  uint32_t u4;
  memcpy(&u4, &f4, 4);
  put32(s, 4), put32(s, u4);
  put16(s, NCOL);
  for (int i = 0; i < NCOL; i++) put32(s, -1);
  put16(s, -1);
}

typedef struct {
  struct ArrowSchema schema;
  pt_builder *b;
  pt__pgcopy d;
} fixture;

static void open_fixture(fixture *f) {
  pt_error err;
  assert_int_equal(pt__pg_schema(NCOL, k_names, k_kinds, NULL, &f->schema, &err), PT_OK);
  assert_int_equal(pt_builder_new(&f->schema, &f->b, &err), PT_OK);
  pt__pgcopy_init(&f->d, NCOL, k_kinds, f->b);
}

static void close_fixture(fixture *f) {
  pt_builder_free(f->b);
  f->schema.release(&f->schema);
}

static void test_decode_all_types(void **state) {
  (void)state;
  sbuf s = {0};
  sample(&s);
  fixture f;
  open_fixture(&f);
  pt_error err;
  assert_int_equal(pt__pgcopy_feed(&f.d, s.b, s.n, &err), PT_OK);
  assert_int_equal(pt__pgcopy_finish(&f.d, &err), PT_OK);
  assert_int_equal(f.d.rows, 2);
  struct ArrowArray a;
  assert_int_equal(pt_builder_finish(f.b, &a, &err), PT_OK);
  assert_int_equal(pt_array_validate(&f.schema, &a, &err), PT_OK);
  assert_int_equal(a.length, 2);
  for (int c = 0; c < NCOL; c++) {
    assert_int_equal(a.children[c]->null_count, 1);
    assert_true(pt_array_is_valid(f.schema.children[c], a.children[c], 0));
    assert_false(pt_array_is_valid(f.schema.children[c], a.children[c], 1));
  }
  const uint8_t *bits = a.children[0]->buffers[1];
  assert_int_equal(bits[0] & 1, 1);
  assert_int_equal(((const int16_t *)a.children[1]->buffers[1])[0], -2);
  assert_int_equal(((const int32_t *)a.children[2]->buffers[1])[0], 100000);
  assert_int_equal(((const int64_t *)a.children[3]->buffers[1])[0], -5000000000LL);
  assert_true(((const double *)a.children[4]->buffers[1])[0] == 2.5);
  const int32_t *off = a.children[5]->buffers[1];
  assert_int_equal(off[1] - off[0], 5);
  assert_memory_equal((const char *)a.children[5]->buffers[2] + off[0], "hello", 5);
  off = a.children[6]->buffers[1];
  assert_int_equal(off[1] - off[0], 7);
  assert_memory_equal((const char *)a.children[6]->buffers[2] + off[0], "{\"a\":1}", 7);
  off = a.children[7]->buffers[1];
  assert_int_equal(off[1] - off[0], 3);
  assert_int_equal(((const int32_t *)a.children[8]->buffers[1])[0], 10958);
  assert_int_equal(((const int64_t *)a.children[9]->buffers[1])[0], 946684801000000LL);
  assert_int_equal(((const int64_t *)a.children[10]->buffers[1])[0], 0);
  assert_memory_equal(a.children[11]->buffers[1], "0123456789abcdef", 16);
  assert_true(((const float *)a.children[12]->buffers[1])[0] == -1.5f);
  a.release(&a);
  close_fixture(&f);
}

/* The stream in pieces, as PostgreSQL sends it (header with the first row). */
static void test_decode_in_pieces(void **state) {
  (void)state;
  sbuf s = {0};
  sample(&s);
  fixture f;
  open_fixture(&f);
  pt_error err;
  int64_t first_row_end = 19 + 2;
  /* Walk the first row's fields to find where it ends. */
  for (int c = 0; c < NCOL; c++) {
    int32_t l = (int32_t)(((uint32_t)s.b[first_row_end] << 24) | (s.b[first_row_end + 1] << 16) |
                          (s.b[first_row_end + 2] << 8) | s.b[first_row_end + 3]);
    first_row_end += 4 + (l > 0 ? l : 0);
  }
  assert_int_equal(pt__pgcopy_feed(&f.d, s.b, first_row_end, &err), PT_OK);
  assert_int_equal(pt__pgcopy_finish(&f.d, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "pgcopy: the stream ended after 1 rows without its end-of-data marker");
  assert_int_equal(pt__pgcopy_feed(&f.d, s.b + first_row_end, s.n - first_row_end, &err), PT_OK);
  assert_int_equal(pt__pgcopy_finish(&f.d, &err), PT_OK);
  assert_int_equal(f.d.rows, 2);
  close_fixture(&f);
}

/* Every prefix of the stream, fed to a fresh decoder from a private copy of
 * exactly that size (so ASan sees any read past it): an error or a missing
 * trailer, never a crash. */
static void test_truncated_everywhere(void **state) {
  (void)state;
  sbuf s = {0};
  sample(&s);
  for (int64_t n = 0; n < s.n; n++) {
    fixture f;
    open_fixture(&f);
    uint8_t *copy = malloc((size_t)(n ? n : 1));
    memcpy(copy, s.b, (size_t)n);
    pt_error err;
    int rc = pt__pgcopy_feed(&f.d, copy, n, &err);
    if (rc == PT_OK) rc = pt__pgcopy_finish(&f.d, &err);
    assert_int_equal(rc, PT_EFORMAT);
    free(copy);
    close_fixture(&f);
  }
}

static int decode_bytes(const sbuf *s, pt_error *err) {
  fixture f;
  open_fixture(&f);
  int rc = pt__pgcopy_feed(&f.d, s->b, s->n, err);
  if (rc == PT_OK) rc = pt__pgcopy_finish(&f.d, err);
  close_fixture(&f);
  return rc;
}

static void test_hostile(void **state) {
  (void)state;
  pt_error err;
  sbuf s = {0};
  put(&s, "PGCOPY\n\377\r\n\1", 11), put32(&s, 0), put32(&s, 0);
  assert_int_equal(decode_bytes(&s, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "pgcopy: the stream does not start with the binary COPY signature");

  s.n = 0;
  put(&s, "PGCOPY\n\377\r\n\0", 11), put32(&s, 0), put32(&s, 0x7fffffff);
  assert_int_equal(decode_bytes(&s, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "pgcopy: header extension of 2147483647 bytes runs past the data");

  s.n = 0;
  put(&s, "PGCOPY\n\377\r\n\0", 11), put32(&s, 1 << 16), put32(&s, 0);
  assert_int_equal(decode_bytes(&s, &err), PT_ENOTSUP);

  s.n = 0;
  header(&s), put16(&s, 2);
  assert_int_equal(decode_bytes(&s, &err), PT_EFORMAT);
  assert_string_equal(err.message, "pgcopy: row 0 has 2 fields; 13 expected");

  s.n = 0;
  header(&s), put16(&s, NCOL), put32(&s, 1), put(&s, "\1", 1), put32(&s, 0x7ffffff0);
  assert_int_equal(decode_bytes(&s, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "pgcopy: row 0 column 1: field length 2147483632 runs past the data");

  s.n = 0;
  header(&s), put16(&s, NCOL), put32(&s, -7);
  assert_int_equal(decode_bytes(&s, &err), PT_EFORMAT);
  assert_string_equal(err.message, "pgcopy: row 0 column 0: field length -7 runs past the data");

  s.n = 0;
  header(&s), put16(&s, NCOL), put32(&s, 1), put(&s, "\1", 1), put32(&s, 4), put32(&s, 0);
  assert_int_equal(decode_bytes(&s, &err), PT_EFORMAT);
  assert_string_equal(err.message,
                      "pgcopy: row 0 column 1: field of 4 bytes where 2 are expected");

  s.n = 0;
  header(&s), put16(&s, NCOL), put32(&s, 1), put(&s, "\7", 1);
  assert_int_equal(decode_bytes(&s, &err), PT_EFORMAT);
  assert_string_equal(err.message, "pgcopy: row 0 column 0: boolean byte 7");

  s.n = 0;
  header(&s), put16(&s, -1), put16(&s, 0);
  assert_int_equal(decode_bytes(&s, &err), PT_EFORMAT);
  assert_string_equal(err.message, "pgcopy: 2 bytes after the end-of-data marker");
}

/* A one-column numeric(20, 4) stream of the given send-format fields. */
static int numeric_stream(const int16_t *const *fields, int n, struct ArrowArray *out,
                          pt_error *err) {
  static const pt__pg_kind kinds[] = {PT__PG_NUMERIC};
  static const char *const names[] = {"n"};
  int32_t typmod = ((20 << 16) | 4) + 4;
  sbuf s = {0};
  header(&s);
  for (int i = 0; i < n; i++) {
    int nd = fields[i][0];
    put16(&s, 1), put32(&s, 8 + 2 * nd);
    for (int k = 0; k < 4 + nd; k++) put16(&s, fields[i][k]);
  }
  put16(&s, -1);
  struct ArrowSchema schema;
  assert_int_equal(pt__pg_schema(1, names, kinds, &typmod, &schema, err), PT_OK);
  assert_string_equal(schema.children[0]->format, "d:20,4");
  pt_builder *b;
  assert_int_equal(pt_builder_new(&schema, &b, err), PT_OK);
  pt__pgcopy d;
  pt__pgcopy_init(&d, 1, kinds, b);
  int rc = pt__pgcopy_feed(&d, s.b, s.n, err);
  if (rc == PT_OK) rc = pt__pgcopy_finish(&d, err);
  if (rc == PT_OK) rc = pt_builder_finish(b, out, err);
  pt_builder_free(b);
  schema.release(&schema);
  return rc;
}

static void test_numeric(void **state) {
  (void)state;
  /* 12345678.9012 = digits 1234 5678 9012, weight 1; -0.0005 = digit 5,
   * weight -1; 0 = no digits. */
  static const int16_t a[] = {3, 1, 0, 4, 1234, 5678, 9012};
  static const int16_t b[] = {1, -1, 0x4000, 4, 5};
  static const int16_t c[] = {0, 0, 0, 4};
  static const int16_t d[] = {1, 2, 0, 0, 7}; /* 7 * 10000^2, scale 0 */
  const int16_t *fields[] = {a, b, c, d};
  struct ArrowArray out;
  pt_error err;
  assert_int_equal(numeric_stream(fields, 4, &out, &err), PT_OK);
  const int64_t *v = (const int64_t *)out.children[0]->buffers[1]; /* low words, little-endian */
  assert_int_equal(v[0], 123456789012LL);
  assert_int_equal(v[2], -5);
  assert_int_equal(v[3], -1); /* the high word of -5 */
  assert_int_equal(v[4], 0);
  assert_int_equal(v[6], 7LL * 100000000 * 10000);
  out.release(&out);

  static const int16_t nan[] = {0, 0, (int16_t)0xC000, 0};
  const int16_t *f_nan[] = {nan};
  assert_int_equal(numeric_stream(f_nan, 1, &out, &err), PT_ERANGE);
  assert_string_equal(err.message, "pgcopy: row 0 column 0: numeric NaN or infinity has no "
                                   "Arrow decimal value; filter it in the query");
  static const int16_t bad_digit[] = {1, 0, 0, 0, 10000};
  const int16_t *f_bad[] = {bad_digit};
  assert_int_equal(numeric_stream(f_bad, 1, &out, &err), PT_EFORMAT);
  assert_string_equal(err.message, "pgcopy: row 0 column 0: numeric digit 10000");
  static const int16_t huge[] = {1, 12, 0, 0, 1};
  const int16_t *f_huge[] = {huge};
  assert_int_equal(numeric_stream(f_huge, 1, &out, &err), PT_ERANGE);

  static const pt__pg_kind kinds[] = {PT__PG_NUMERIC};
  static const char *const names[] = {"amount"};
  struct ArrowSchema schema;
  assert_int_equal(pt__pg_schema(1, names, kinds, NULL, &schema, &err), PT_ENOTSUP);
  assert_string_equal(err.message,
                      "sql: column \"amount\" is numeric without a precision of at most 38 and "
                      "a scale in 0..precision; cast it in the query (e.g. ::numeric(38,6) or "
                      "::text)");
}

static void test_unmappable_type_named(void **state) {
  (void)state;
  pt_error err;
  pt__pg_kind k;
  assert_int_equal(pt__pg_kind_of(600, "where", "point", &k, &err), PT_ENOTSUP);
  assert_string_equal(err.message,
                      "sql: column \"where\" has type point (oid 600), which protium cannot map "
                      "to Arrow; cast it in the query (e.g. ::text) or leave it out");
  assert_int_equal(pt__pg_kind_of(1043, "v", "varchar", &k, &err), PT_OK);
  assert_int_equal(k, PT__PG_TEXT);
}

/* One int4[] column: a well-formed array decodes; every hostile header or
 * element length is refused with the row and column, never read past. */
static void test_array_hostile(void **state) {
  (void)state;
  const pt__pg_kind kinds[] = {PT__PG_ARRAY_OF(PT__PG_INT4)};
  const char *names[] = {"a"};
  struct {
    int32_t ndim, flags, n, elem_len;
    int extra;
    int code;
    const char *msg;
  } cases[] = {
      {1, 0, 2, 4, 0, PT_OK, NULL},
      {2, 0, 2, 4, 0, PT_ENOTSUP, "a 2-dimensional array"},
      {-1, 0, 2, 4, 0, PT_EFORMAT, "array header"},
      {1, 4, 2, 4, 0, PT_EFORMAT, "array header"},
      {1, 0, 1 << 30, 4, 0, PT_EFORMAT, "elements in"},
      {1, 0, 2, 400, 0, PT_EFORMAT, "runs past the array"},
      {1, 0, 2, 3, 0, PT_EFORMAT, "field of 3 bytes"},
      {1, 0, 2, 4, 3, PT_EFORMAT, "bytes after the array's elements"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    sbuf s = {.n = 0};
    header(&s);
    put16(&s, 1);
    int64_t w = cases[k].elem_len > 0 && cases[k].elem_len < 100 ? cases[k].elem_len : 4;
    int64_t body = 20 + 2 * (4 + w) + cases[k].extra;
    put32(&s, body);
    put32(&s, cases[k].ndim), put32(&s, cases[k].flags), put32(&s, 23);
    put32(&s, cases[k].n), put32(&s, 1);
    for (int e = 0; e < 2; e++) {
      put32(&s, cases[k].elem_len);
      for (int64_t i = 0; i < w; i++) put(&s, "\0", 1);
    }
    for (int i = 0; i < cases[k].extra; i++) put(&s, "x", 1);
    put16(&s, -1);
    pt_error err;
    struct ArrowSchema schema;
    pt_builder *b;
    assert_int_equal(pt__pg_schema(1, names, kinds, NULL, &schema, &err), PT_OK);
    assert_int_equal(pt_builder_new(&schema, &b, &err), PT_OK);
    pt__pgcopy d;
    pt__pgcopy_init(&d, 1, kinds, b);
    int rc = pt__pgcopy_feed(&d, s.b, s.n, &err);
    if (rc != cases[k].code) fail_msg("case %zu: rc %d: %s", k, rc, err.message);
    if (cases[k].msg && !strstr(err.message, cases[k].msg))
      fail_msg("case %zu: %s", k, err.message);
    if (rc == PT_OK) {
      struct ArrowArray a;
      assert_int_equal(pt_builder_finish(b, &a, &err), PT_OK);
      assert_int_equal(pt_array_validate(&schema, &a, &err), PT_OK);
      assert_int_equal(a.children[0]->children[0]->length, 2);
      a.release(&a);
    }
    pt_builder_free(b);
    schema.release(&schema);
  }
}

/* The encoder (pgwrite.c) is the decoder's inverse: a batch of every type
 * it writes, encoded and decoded, prints as the same JSON. */
static void test_encode_round_trip(void **state) {
  (void)state;
  pt_error err;
  struct ArrowSchema s;
  const char *formats[] = {"b", "s", "i", "l", "f", "g", "u", "z", "tdD", "tsu:", "tsu:UTC",
                           "d:12,3", "w:16"};
  const pt__pg_kind kinds[] = {PT__PG_BOOL, PT__PG_INT2, PT__PG_INT4, PT__PG_INT8,
                               PT__PG_FLOAT4, PT__PG_FLOAT8, PT__PG_TEXT, PT__PG_BYTEA,
                               PT__PG_DATE, PT__PG_TIMESTAMP, PT__PG_TIMESTAMPTZ,
                               PT__PG_NUMERIC, PT__PG_UUID};
  enum { NC = 13 };
  assert_int_equal(pt_schema_init(&s, "+s", "", 0, NC, &err), PT_OK);
  for (int c = 0; c < NC; c++) {
    char name[8];
    snprintf(name, sizeof name, "c%d", c);
    assert_int_equal(pt_schema_init(s.children[c], formats[c], name, ARROW_FLAG_NULLABLE, 0, &err),
                     PT_OK);
  }
  pt_builder *b;
  assert_int_equal(pt_builder_new(&s, &b, &err), PT_OK);
  const char *decs[] = {"0.000", "-1.500", "123456789.012", "-0.001", "10000.000", "0.100"};
  for (int r = 0; r < 6; r++) {
    int64_t k = r * 7919 - 20000;
    if (r == 3) { /* every field null (PostgreSQL has no null rows) */
      for (int c = 0; c < NC; c++)
        assert_int_equal(pt_builder_append_null(pt_builder_child(b, c), 1), PT_OK);
      assert_int_equal(pt_builder_append_row(b), PT_OK);
      continue;
    }
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 0), r % 2), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 1), k % 30000), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 2), k * 1000), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 3), k * 1000000007LL), PT_OK);
    assert_int_equal(pt_builder_append_double(pt_builder_child(b, 4), k / 8.0), PT_OK);
    assert_int_equal(pt_builder_append_double(pt_builder_child(b, 5), k / 3.0), PT_OK);
    assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 6), "h\xc3\xa9llo", 6), PT_OK);
    assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 7), "\0\xff", 2), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 8), k), PT_OK);
    assert_int_equal(pt_builder_append_int(pt_builder_child(b, 9), k * 1000003LL), PT_OK);
    if (r == 5) assert_int_equal(pt_builder_append_null(pt_builder_child(b, 10), 1), PT_OK);
    else assert_int_equal(pt_builder_append_int(pt_builder_child(b, 10), -k * 999983LL), PT_OK);
    assert_int_equal(pt_builder_append_decimal_string(pt_builder_child(b, 11), decs[r]), PT_OK);
    assert_int_equal(pt_builder_append_bytes(pt_builder_child(b, 12), "0123456789abcdef", 16),
                     PT_OK);
    assert_int_equal(pt_builder_append_row(b), PT_OK);
  }
  struct ArrowArray batch;
  assert_int_equal(pt_builder_finish(b, &batch, &err), PT_OK);
  pt_builder_free(b);
  pt_buf bytes = {0};
  assert_int_equal(pt__pgcopy_encode(&s, &batch, 1, &bytes, &err), PT_OK);
  const char trailer[2] = {(char)0xff, (char)0xff};
  for (int i = 0; i < 2; i++) {
    if (bytes.len == bytes.cap) {
      bytes.cap = bytes.cap * 2 + 8;
      bytes.data = realloc(bytes.data, bytes.cap);
    }
    bytes.data[bytes.len++] = trailer[i];
  }
  /* Decode into the schema the reader makes for these PostgreSQL types. */
  const char *names[NC];
  int32_t typmods[NC];
  for (int c = 0; c < NC; c++) {
    names[c] = s.children[c]->name;
    typmods[c] = c == 11 ? ((12 << 16) | 3) + 4 : -1;
  }
  struct ArrowSchema ds;
  assert_int_equal(pt__pg_schema(NC, names, kinds, typmods, &ds, &err), PT_OK);
  pt_builder *db;
  assert_int_equal(pt_builder_new(&ds, &db, &err), PT_OK);
  pt__pgcopy d;
  pt__pgcopy_init(&d, NC, kinds, db);
  if (pt__pgcopy_feed(&d, (const uint8_t *)bytes.data, (int64_t)bytes.len, &err) != PT_OK)
    fail_msg("%s", err.message);
  assert_int_equal(pt__pgcopy_finish(&d, &err), PT_OK);
  struct ArrowArray back;
  assert_int_equal(pt_builder_finish(db, &back, &err), PT_OK);
  pt_builder_free(db);
  pt_buf j1 = {0}, j2 = {0};
  assert_int_equal(pt_json_write_batch(&s, &batch, &j1, &err), PT_OK);
  assert_int_equal(pt_json_write_batch(&ds, &back, &j2, &err), PT_OK);
  if (j1.len != j2.len || memcmp(j1.data, j2.data, j1.len) != 0)
    fail_msg("encoded:\n%.*s\ndecoded:\n%.*s", (int)j1.len, j1.data, (int)j2.len, j2.data);
  assert_memory_equal(j1.data, j2.data, j1.len);
  assert_non_null(strstr(j1.data, "\"123456789.012\""));
  pt_buf_free(&j1);
  pt_buf_free(&j2);
  pt_buf_free(&bytes);
  back.release(&back);
  batch.release(&batch);
  ds.release(&ds);
  s.release(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_all_types),
      cmocka_unit_test(test_decode_in_pieces),
      cmocka_unit_test(test_truncated_everywhere),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_numeric),
      cmocka_unit_test(test_unmappable_type_named),
      cmocka_unit_test(test_encode_round_trip),
      cmocka_unit_test(test_array_hostile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
