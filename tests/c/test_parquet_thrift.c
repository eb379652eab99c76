/* test_parquet_thrift.c — the Thrift compact protocol of src/parquet and the
 * FileMetaData / PageHeader structs built on it: round trips of every field
 * we write, unknown fields skipped, and hostile input (truncation at every
 * byte, lists longer than the input, deep nesting, long varints, missing
 * required fields) refused with exact messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parquet/parquet_int.h"

static pt__pq_bytes B(const char *s) { return (pt__pq_bytes){(const uint8_t *)s, (int64_t)strlen(s)}; }

static bool bytes_eq(pt__pq_bytes a, const char *s) {
  return a.len == (int64_t)strlen(s) && memcmp(a.data, s, (size_t)a.len) == 0;
}

/* A small but complete FileMetaData: a root, three leaves with converted and
 * logical types, two row groups with statistics, key-value metadata. */
static void sample_meta(pt__pq_file_meta *m, pt__pq_schema_elem *schema, pt__pq_row_group *rgs,
                        pt__pq_column_chunk *chunks, pt__pq_kv *kv, int32_t *encodings,
                        pt__pq_bytes *paths) {
  memset(m, 0, sizeof *m);
  memset(schema, 0, 4 * sizeof *schema);
  schema[0] = (pt__pq_schema_elem){.type = -1, .repetition = -1, .name = B("schema"),
                                   .num_children = 3, .converted = -1};
  schema[1] = (pt__pq_schema_elem){.type = PT__PQ_INT64, .repetition = PT__PQ_OPTIONAL,
                                   .name = B("ts"), .converted = -1,
                                   .logical = {.kind = PT__LT_TIMESTAMP, .utc = true,
                                               .unit = PT__TU_NANOS}};
  schema[2] = (pt__pq_schema_elem){.type = PT__PQ_FIXED_LEN_BYTE_ARRAY, .type_length = 16,
                                   .repetition = PT__PQ_REQUIRED, .name = B("amount"),
                                   .converted = PT__CT_DECIMAL, .scale = 2, .precision = 30,
                                   .has_field_id = true, .field_id = 7,
                                   .logical = {.kind = PT__LT_DECIMAL, .scale = 2,
                                               .precision = 30}};
  schema[3] = (pt__pq_schema_elem){.type = PT__PQ_INT32, .repetition = PT__PQ_REQUIRED,
                                   .name = B("small"), .converted = PT__CT_UINT_8,
                                   .logical = {.kind = PT__LT_INTEGER, .bit_width = 8,
                                               .is_signed = false}};
  m->version = 2;
  m->schema = schema;
  m->n_schema = 4;
  m->num_rows = 300;
  encodings[0] = PT__ENC_PLAIN;
  encodings[1] = PT__ENC_RLE;
  encodings[2] = PT__ENC_RLE_DICTIONARY;
  paths[0] = B("ts");
  for (int g = 0; g < 2; g++) {
    pt__pq_column_chunk *c = &chunks[g];
    memset(c, 0, sizeof *c);
    c->file_offset = 4 + g * 1000;
    c->has_meta = true;
    c->meta = (pt__pq_column_meta){.type = PT__PQ_INT64, .encodings = encodings, .n_encodings = 3,
                                   .path = paths, .n_path = 1, .codec = PT__CODEC_SNAPPY,
                                   .num_values = 150, .total_uncompressed_size = 1200,
                                   .total_compressed_size = 900 + g,
                                   .data_page_offset = 4 + g * 1000 + 100,
                                   .has_dictionary_page_offset = true,
                                   .dictionary_page_offset = 4 + g * 1000,
                                   .has_stats = true};
    c->meta.stats = (pt__pq_stats){.has_null_count = true, .null_count = 3 + g,
                                   .has_min_value = true, .min_value = B("\x01\x02"),
                                   .has_max_value = true, .max_value = B("zz")};
    rgs[g] = (pt__pq_row_group){.columns = c, .n_columns = 1, .total_byte_size = 1200,
                                .num_rows = 150};
  }
  m->row_groups = rgs;
  m->n_row_groups = 2;
  kv[0] = (pt__pq_kv){.key = B("ARROW:schema"), .has_value = true, .value = B("abc")};
  kv[1] = (pt__pq_kv){.key = B("no value")};
  m->kv = kv;
  m->n_kv = 2;
  m->has_created_by = true;
  m->created_by = B("protium test");
  m->n_column_orders = 3;
}

static pt_buf encode_sample(void) {
  pt__pq_file_meta m;
  pt__pq_schema_elem schema[4];
  pt__pq_row_group rgs[2];
  pt__pq_column_chunk chunks[2];
  pt__pq_kv kv[2];
  int32_t enc[3];
  pt__pq_bytes paths[1];
  sample_meta(&m, schema, rgs, chunks, kv, enc, paths);
  pt_buf buf = {0};
  assert_int_equal(pt__pq_encode_file_meta(&m, &buf), PT_OK);
  return buf;
}

static void test_file_meta_round_trip(void **state) {
  pt_buf buf = encode_sample();
  pt__arena arena = {0};
  pt__pq_file_meta m;
  pt_error err;
  int rc = pt__pq_decode_file_meta((const uint8_t *)buf.data, (int64_t)buf.len, &arena, &m, &err);
  if (rc != PT_OK) fail_msg("%s", err.message);
  assert_int_equal(m.version, 2);
  assert_int_equal(m.num_rows, 300);
  assert_int_equal(m.n_schema, 4);
  assert_true(bytes_eq(m.schema[0].name, "schema"));
  assert_int_equal(m.schema[0].num_children, 3);
  assert_int_equal(m.schema[0].type, -1);
  assert_int_equal(m.schema[0].repetition, -1);
  assert_int_equal(m.schema[1].logical.kind, PT__LT_TIMESTAMP);
  assert_true(m.schema[1].logical.utc);
  assert_int_equal(m.schema[1].logical.unit, PT__TU_NANOS);
  assert_int_equal(m.schema[1].repetition, PT__PQ_OPTIONAL);
  assert_int_equal(m.schema[2].type, PT__PQ_FIXED_LEN_BYTE_ARRAY);
  assert_int_equal(m.schema[2].type_length, 16);
  assert_int_equal(m.schema[2].converted, PT__CT_DECIMAL);
  assert_int_equal(m.schema[2].precision, 30);
  assert_int_equal(m.schema[2].logical.scale, 2);
  assert_int_equal(m.schema[2].logical.precision, 30);
  assert_true(m.schema[2].has_field_id);
  assert_int_equal(m.schema[2].field_id, 7);
  assert_int_equal(m.schema[3].logical.kind, PT__LT_INTEGER);
  assert_int_equal(m.schema[3].logical.bit_width, 8);
  assert_false(m.schema[3].logical.is_signed);
  assert_int_equal(m.n_row_groups, 2);
  for (int g = 0; g < 2; g++) {
    const pt__pq_column_chunk *c = &m.row_groups[g].columns[0];
    assert_int_equal(m.row_groups[g].num_rows, 150);
    assert_int_equal(c->file_offset, 4 + g * 1000);
    assert_true(c->has_meta);
    assert_int_equal(c->meta.codec, PT__CODEC_SNAPPY);
    assert_int_equal(c->meta.n_encodings, 3);
    assert_int_equal(c->meta.encodings[2], PT__ENC_RLE_DICTIONARY);
    assert_true(bytes_eq(c->meta.path[0], "ts"));
    assert_int_equal(c->meta.total_compressed_size, 900 + g);
    assert_int_equal(c->meta.dictionary_page_offset, 4 + g * 1000);
    assert_true(c->meta.has_stats);
    assert_int_equal(c->meta.stats.null_count, 3 + g);
    assert_true(bytes_eq(c->meta.stats.min_value, "\x01\x02"));
    assert_true(bytes_eq(c->meta.stats.max_value, "zz"));
    assert_false(c->meta.stats.has_min);
  }
  assert_int_equal(m.n_kv, 2);
  assert_true(bytes_eq(m.kv[0].key, "ARROW:schema"));
  assert_true(bytes_eq(m.kv[0].value, "abc"));
  assert_false(m.kv[1].has_value);
  assert_true(bytes_eq(m.created_by, "protium test"));
  assert_int_equal(m.n_column_orders, 3);
  pt__arena_free(&arena);
  pt_buf_free(&buf);
}

static void test_page_header_round_trip(void **state) {
  pt__pq_page_header h = {.type = PT__PAGE_DATA_V2, .uncompressed_size = 1000,
                          .compressed_size = 500, .has_data_v2 = true, .num_values = 100,
                          .num_nulls = 5, .num_rows = 90, .encoding = PT__ENC_RLE_DICTIONARY,
                          .def_length = 12, .rep_length = 7, .is_compressed = false,
                          .has_stats = true,
                          .stats = {.has_null_count = true, .null_count = 5}};
  pt_buf buf = {0};
  assert_int_equal(pt__pq_encode_page_header(&h, &buf), PT_OK);
  /* Trailing page bytes after the header are not part of it. */
  assert_int_equal(pt__buf_append(&buf, "xyz", 3), PT_OK);
  pt__pq_page_header d;
  int64_t used;
  pt_error err;
  assert_int_equal(pt__pq_decode_page_header((uint8_t *)buf.data, (int64_t)buf.len, &d, &used, &err),
                   PT_OK);
  assert_int_equal(used, (int64_t)buf.len - 3);
  assert_int_equal(d.type, PT__PAGE_DATA_V2);
  assert_true(d.has_data_v2);
  assert_int_equal(d.num_values, 100);
  assert_int_equal(d.num_nulls, 5);
  assert_int_equal(d.num_rows, 90);
  assert_int_equal(d.def_length, 12);
  assert_int_equal(d.rep_length, 7);
  assert_false(d.is_compressed);
  assert_int_equal(d.stats.null_count, 5);

  pt__pq_page_header v1 = {.type = PT__PAGE_DATA, .uncompressed_size = 10, .compressed_size = 10,
                           .has_data = true, .num_values = 3, .encoding = PT__ENC_PLAIN,
                           .def_encoding = PT__ENC_RLE, .rep_encoding = PT__ENC_RLE};
  buf.len = 0;
  assert_int_equal(pt__pq_encode_page_header(&v1, &buf), PT_OK);
  assert_int_equal(pt__pq_decode_page_header((uint8_t *)buf.data, (int64_t)buf.len, &d, &used, &err),
                   PT_OK);
  assert_true(d.has_data);
  assert_int_equal(d.num_values, 3);
  assert_int_equal(d.def_encoding, PT__ENC_RLE);

  pt__pq_page_header dict = {.type = PT__PAGE_DICTIONARY, .uncompressed_size = 8,
                             .compressed_size = 8, .has_dict = true, .num_values = 2,
                             .encoding = PT__ENC_PLAIN};
  buf.len = 0;
  assert_int_equal(pt__pq_encode_page_header(&dict, &buf), PT_OK);
  assert_int_equal(pt__pq_decode_page_header((uint8_t *)buf.data, (int64_t)buf.len, &d, &used, &err),
                   PT_OK);
  assert_true(d.has_dict);
  assert_int_equal(d.num_values, 2);
  pt_buf_free(&buf);
}

/* Unknown fields of every type (a future parquet.thrift) are skipped. */
static void test_unknown_fields_skipped(void **state) {
  pt_buf buf = {0};
  pt__thrift_out o = {&buf, PT_OK};
  int16_t last = 0;
  pt__thrift_field_i64(&o, &last, 1, PT__TH_I32, 0); /* type DATA_PAGE */
  pt__thrift_field_i64(&o, &last, 2, PT__TH_I32, 4);
  pt__thrift_field_i64(&o, &last, 3, PT__TH_I32, 4);
  pt__thrift_put_field(&o, &last, 40, PT__TH_DOUBLE);
  assert_int_equal(pt__buf_append(&buf, "\0\0\0\0\0\0\xf0\x3f", 8), PT_OK);
  pt__thrift_put_field(&o, &last, 41, PT__TH_MAP);
  pt__thrift_put_varint(&o, 2);
  assert_int_equal(pt__buf_putc(&buf, (char)(PT__TH_BINARY << 4 | PT__TH_TRUE)), PT_OK);
  pt__thrift_put_binary(&o, "k1", 2);
  assert_int_equal(pt__buf_putc(&buf, 1), PT_OK);
  pt__thrift_put_binary(&o, "k2", 2);
  assert_int_equal(pt__buf_putc(&buf, 2), PT_OK);
  pt__thrift_put_field(&o, &last, 42, PT__TH_LIST);
  pt__thrift_put_list(&o, PT__TH_STRUCT, 1);
  int16_t l2 = 0;
  pt__thrift_field_i64(&o, &l2, 300, PT__TH_I64, -5);
  pt__thrift_field_bool(&o, &l2, 301, true);
  pt__thrift_put_stop(&o);
  pt__thrift_field_bool(&o, &last, 43, false);
  pt__thrift_put_field(&o, &last, 44, PT__TH_I8);
  assert_int_equal(pt__buf_putc(&buf, 0x7f), PT_OK);
  pt__thrift_put_stop(&o);
  assert_int_equal(o.rc, PT_OK);
  pt__pq_page_header h;
  int64_t used;
  pt_error err;
  int rc = pt__pq_decode_page_header((uint8_t *)buf.data, (int64_t)buf.len, &h, &used, &err);
  if (rc != PT_OK) fail_msg("%s", err.message);
  assert_int_equal(used, (int64_t)buf.len);
  assert_int_equal(h.compressed_size, 4);
  pt_buf_free(&buf);
}

/* Every prefix of valid metadata fails with PT_EFORMAT (and ASan sees no read
 * past the private copy). */
static void test_truncation_everywhere(void **state) {
  pt_buf buf = encode_sample();
  for (size_t n = 0; n < buf.len; n++) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, buf.data, n);
    pt__arena arena = {0};
    pt__pq_file_meta m;
    pt_error err = {0};
    int rc = pt__pq_decode_file_meta(copy, (int64_t)n, &arena, &m, &err);
    if (rc != PT_EFORMAT) fail_msg("prefix of %zu bytes: status %d", n, rc);
    assert_true(strncmp(err.message, "thrift: ", 8) == 0);
    pt__arena_free(&arena);
    free(copy);
  }
  pt_buf_free(&buf);
}

/* Deterministic byte flips: never a crash; failures are PT_EFORMAT. */
static void test_byte_flips(void **state) {
  pt_buf buf = encode_sample();
  uint32_t seed = 12345;
  uint8_t *copy = malloc(buf.len);
  for (int round = 0; round < 20000; round++) {
    memcpy(copy, buf.data, buf.len);
    for (int k = 0; k < 1 + round % 4; k++) {
      seed = seed * 1103515245u + 12345u;
      copy[(seed >> 8) % buf.len] ^= (uint8_t)(1u << ((seed >> 4) & 7));
    }
    pt__arena arena = {0};
    pt__pq_file_meta m;
    pt_error err;
    int rc = pt__pq_decode_file_meta(copy, (int64_t)buf.len, &arena, &m, &err);
    assert_true(rc == PT_OK || rc == PT_EFORMAT);
    pt__arena_free(&arena);
  }
  free(copy);
  pt_buf_free(&buf);
}

static int decode_header(const char *bytes, size_t n, pt_error *err) {
  pt__pq_page_header h;
  int64_t used;
  return pt__pq_decode_page_header((const uint8_t *)bytes, (int64_t)n, &h, &used, err);
}

static void test_hostile_messages(void **state) {
  pt_error err;
  /* A list claiming 2^24 elements in a 4-byte input. */
  const char big_list[] = {0x29, (char)0xfc, (char)0x80, (char)0x80, (char)0x80, 0x08};
  pt__arena arena = {0};
  pt__pq_file_meta m;
  assert_int_equal(pt__pq_decode_file_meta((const uint8_t *)big_list, sizeof big_list, &arena, &m,
                                           &err),
                   PT_EFORMAT);
  assert_string_equal(err.message,
                      "thrift: list of 16777216 elements at byte 6 but only 0 bytes left");
  pt__arena_free(&arena);

  /* A string (in unknown field 20) longer than what is left. */
  const char long_str[] = {0x08, 0x28, 0x7f, 'a'};
  assert_int_equal(decode_header(long_str, sizeof long_str, &err), PT_EFORMAT);
  assert_string_equal(err.message, "thrift: string of 127 bytes at byte 3 but only 1 bytes left");

  /* Structs nested 100 deep in an unknown field. */
  char deep[210];
  size_t n = 0;
  deep[n++] = (char)0x0c; /* long form: type struct, field id 20 (unknown) follows */
  deep[n++] = 0x28;       /* zigzag 20 */
  for (int i = 0; i < 100; i++) deep[n++] = 0x1c;
  assert_int_equal(decode_header(deep, n, &err), PT_EFORMAT);
  assert_string_equal(err.message, "thrift: nesting deeper than 64 at byte 65");

  /* A varint of 11 bytes. */
  const char varint[] = {0x15, (char)0x80, (char)0x80, (char)0x80, (char)0x80, (char)0x80,
                         (char)0x80, (char)0x80, (char)0x80, (char)0x80, (char)0x80, 0x01};
  assert_int_equal(decode_header(varint, sizeof varint, &err), PT_EFORMAT);
  assert_string_equal(err.message, "thrift: varint longer than 10 bytes at byte 11");

  /* Required fields missing, a known field of the wrong wire type. */
  const char empty[] = {0x00};
  assert_int_equal(decode_header(empty, 1, &err), PT_EFORMAT);
  assert_string_equal(err.message, "thrift: PageHeader lacks its required field type");
  const char wrong[] = {0x18, 0x00};
  assert_int_equal(decode_header(wrong, sizeof wrong, &err), PT_EFORMAT);
  assert_string_equal(err.message, "thrift: PageHeader field 1 has wire type 8 at byte 1");
  const char no_stop[] = {0x15, 0x00};
  assert_int_equal(decode_header(no_stop, sizeof no_stop, &err), PT_EFORMAT);
  assert_string_equal(err.message, "thrift: truncated struct (no stop field) at byte 2");
  const char negative[] = {0x15, 0x00, 0x15, 0x01, 0x15, 0x00, 0x00};
  assert_int_equal(decode_header(negative, sizeof negative, &err), PT_EFORMAT);
  assert_string_equal(err.message, "negative page size (0 compressed, -1 uncompressed)");
}

static void test_varint_limits(void **state) {
  pt_buf buf = {0};
  pt__thrift_out o = {&buf, PT_OK};
  const int64_t values[] = {0, 1, -1, 63, -64, 64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) pt__thrift_put_i64(&o, values[i]);
  assert_int_equal(o.rc, PT_OK);
  pt__thrift_in in = {(uint8_t *)buf.data, (uint8_t *)buf.data, (uint8_t *)buf.data + buf.len, 0};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    int64_t v;
    assert_int_equal(pt__thrift_i64(&in, &v, NULL), PT_OK);
    assert_true(v == values[i]);
  }
  assert_true(in.p == in.end);
  pt_buf_free(&buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_meta_round_trip), cmocka_unit_test(test_page_header_round_trip),
      cmocka_unit_test(test_unknown_fields_skipped), cmocka_unit_test(test_truncation_everywhere),
      cmocka_unit_test(test_byte_flips), cmocka_unit_test(test_hostile_messages),
      cmocka_unit_test(test_varint_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
