/* test_arrow_types.c — format strings (pt_type_parse), type names, layout
 * helpers, protium-owned schemas (pt_schema_*), half-float conversions and
 * decimal128 text of src/arrow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "arrow/arrow.h"

/* A schema node with no children, for parsing a lone format string. */
static void leaf(struct ArrowSchema *s, const char *format) {
  assert_int_equal(pt_schema_init(s, format, "x", ARROW_FLAG_NULLABLE, 0, NULL), PT_OK);
}

static void test_parse_simple_formats(void **state) {
  static const struct {
    const char *format;
    pt_type_id id;
    int64_t bits;
    int n_buffers;
  } cases[] = {
      {"n", PT_TYPE_NA, 0, 0},          {"b", PT_TYPE_BOOL, 1, 2},
      {"c", PT_TYPE_INT8, 8, 2},        {"C", PT_TYPE_UINT8, 8, 2},
      {"s", PT_TYPE_INT16, 16, 2},      {"S", PT_TYPE_UINT16, 16, 2},
      {"i", PT_TYPE_INT32, 32, 2},      {"I", PT_TYPE_UINT32, 32, 2},
      {"l", PT_TYPE_INT64, 64, 2},      {"L", PT_TYPE_UINT64, 64, 2},
      {"e", PT_TYPE_HALF_FLOAT, 16, 2}, {"f", PT_TYPE_FLOAT, 32, 2},
      {"g", PT_TYPE_DOUBLE, 64, 2},     {"u", PT_TYPE_STRING, 0, 3},
      {"U", PT_TYPE_LARGE_STRING, 0, 3}, {"z", PT_TYPE_BINARY, 0, 3},
      {"Z", PT_TYPE_LARGE_BINARY, 0, 3}, {"tdD", PT_TYPE_DATE32, 32, 2},
      {"tDs", PT_TYPE_DURATION, 64, 2}, {"w:16", PT_TYPE_FIXED_SIZE_BINARY, 128, 2},
      {"d:10,2", PT_TYPE_DECIMAL128, 128, 2}, {"d:38,-3,128", PT_TYPE_DECIMAL128, 128, 2},
      {"d:9,2,32", PT_TYPE_DECIMAL32, 32, 2}, {"d:18,0,64", PT_TYPE_DECIMAL64, 64, 2},
      {"d:76,-76,256", PT_TYPE_DECIMAL256, 256, 2}, {"tdm", PT_TYPE_DATE64, 64, 2},
      {"tts", PT_TYPE_TIME32, 32, 2},   {"ttm", PT_TYPE_TIME32, 32, 2},
      {"ttu", PT_TYPE_TIME64, 64, 2},   {"ttn", PT_TYPE_TIME64, 64, 2},
      {"tiM", PT_TYPE_INTERVAL_MONTHS, 32, 2}, {"tiD", PT_TYPE_INTERVAL_DAY_TIME, 64, 2},
      {"tin", PT_TYPE_INTERVAL_MONTH_DAY_NANO, 128, 2},
      {"vu", PT_TYPE_STRING_VIEW, 0, 4},  {"vz", PT_TYPE_BINARY_VIEW, 0, 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ArrowSchema s;
    leaf(&s, cases[i].format);
    pt_type t;
    pt_error err = {0};
    int rc = pt_type_parse(&s, &t, &err);
    if (rc != PT_OK) fail_msg("%s: %s", cases[i].format, err.message);
    assert_int_equal(t.id, cases[i].id);
    assert_int_equal(pt__type_bit_width(&t), cases[i].bits);
    assert_int_equal(pt__type_n_buffers(t.id), cases[i].n_buffers);
    assert_int_equal(t.dictionary, 0);
    s.release(&s);
  }
}

static void test_parse_parameters(void **state) {
  struct ArrowSchema s;
  pt_type t;
  leaf(&s, "tsu:UTC");
  assert_int_equal(pt_type_parse(&s, &t, NULL), PT_OK);
  assert_int_equal(t.id, PT_TYPE_TIMESTAMP);
  assert_int_equal(t.unit, PT_MICRO);
  assert_string_equal(t.tz, "UTC");
  s.release(&s);

  leaf(&s, "tss:");
  assert_int_equal(pt_type_parse(&s, &t, NULL), PT_OK);
  assert_int_equal(t.unit, PT_SECOND);
  assert_null(t.tz);
  s.release(&s);

  leaf(&s, "tsn:America/New_York");
  assert_int_equal(pt_type_parse(&s, &t, NULL), PT_OK);
  assert_int_equal(t.unit, PT_NANO);
  assert_string_equal(t.tz, "America/New_York");
  s.release(&s);

  const char *durations[] = {"tDs", "tDm", "tDu", "tDn"};
  for (int u = 0; u < 4; u++) {
    leaf(&s, durations[u]);
    assert_int_equal(pt_type_parse(&s, &t, NULL), PT_OK);
    assert_int_equal(t.id, PT_TYPE_DURATION);
    assert_int_equal((int)t.unit, u);
    s.release(&s);
  }

  leaf(&s, "d:38,10");
  assert_int_equal(pt_type_parse(&s, &t, NULL), PT_OK);
  assert_int_equal(t.precision, 38);
  assert_int_equal(t.scale, 10);
  s.release(&s);

  leaf(&s, "w:3");
  assert_int_equal(pt_type_parse(&s, &t, NULL), PT_OK);
  assert_int_equal(t.byte_width, 3);
  assert_int_equal(pt__type_bit_width(&t), 24);
  s.release(&s);

  assert_int_equal(pt_schema_init(&s, "+w:4", "v", 0, 1, NULL), PT_OK);
  leaf(s.children[0], "f");
  assert_int_equal(pt_type_parse(&s, &t, NULL), PT_OK);
  assert_int_equal(t.id, PT_TYPE_FIXED_SIZE_LIST);
  assert_int_equal(t.list_size, 4);
  assert_int_equal(pt__type_n_buffers(t.id), 1);
  s.release(&s);
}

static void test_parse_errors(void **state) {
  static const struct {
    const char *format;
    int code;
    const char *message;
  } cases[] = {
      {"tdx", PT_EINVAL, "invalid type format 'tdx'"},
      {"tt", PT_EINVAL, "invalid type format 'tt'"},
      {"ttx", PT_EINVAL, "invalid type format 'ttx'"},
      {"ttss", PT_EINVAL, "invalid type format 'ttss'"},
      {"tiY", PT_EINVAL, "invalid type format 'tiY'"},
      {"+m", PT_EINVAL, "type format '+m' needs 1 children, the schema has 0"},
      {"+ud:0,1", PT_EINVAL, "union format '+ud:0,1' lists 2 type ids for 0 children"},
      {"+us:", PT_OK, ""},
      {"+us:0,", PT_EINVAL, "invalid type format '+us:0,'"},
      {"+us:128", PT_EINVAL, "invalid type format '+us:128'"},
      {"+ud:a", PT_EINVAL, "invalid type format '+ud:a'"},
      {"+ux:0", PT_EINVAL, "invalid type format '+ux:0'"},
      {"vx", PT_EINVAL, "invalid type format 'vx'"},
      {"+vl", PT_EINVAL, "type format '+vl' needs 1 children, the schema has 0"},
      {"+vx", PT_EINVAL, "invalid type format '+vx'"},
      {"+r", PT_EINVAL, "type format '+r' needs 2 children, the schema has 0"},
      {"d:40,2", PT_EINVAL, "invalid type format 'd:40,2': decimal128 precision must be 1 to 38"},
      {"d:10,2,32", PT_EINVAL, "invalid type format 'd:10,2,32': decimal32 precision must be 1 to 9"},
      {"d:19,2,64", PT_EINVAL,
       "invalid type format 'd:19,2,64': decimal64 precision must be 1 to 18"},
      {"d:77,2,256", PT_EINVAL,
       "invalid type format 'd:77,2,256': decimal256 precision must be 1 to 76"},
      {"d:0,0,256", PT_EINVAL,
       "invalid type format 'd:0,0,256': decimal256 precision must be 1 to 76"},
      {"d:5,10,32", PT_ENOTSUP,
       "type format 'd:5,10,32': decimal32 scales beyond -9..9 are not supported"},
      {"d:38,39", PT_ENOTSUP,
       "type format 'd:38,39': decimal128 scales beyond -38..38 are not supported"},
      {"d:10,2,100", PT_EINVAL, "invalid type format 'd:10,2,100'"},
      {"q", PT_EINVAL, "invalid type format 'q'"},
      {"", PT_EINVAL, "invalid type format ''"},
      {"ll", PT_EINVAL, "invalid type format 'll'"},
      {"w:", PT_EINVAL, "invalid type format 'w:'"},
      {"w:-1", PT_EINVAL, "invalid type format 'w:-1'"},
      {"tss", PT_EINVAL, "invalid type format 'tss'"},
      {"tsx:", PT_EINVAL, "invalid type format 'tsx:'"},
      {"tDs:", PT_EINVAL, "invalid type format 'tDs:'"},
      {"d:10", PT_EINVAL, "invalid type format 'd:10'"},
      {"w:99999999999", PT_EINVAL, "invalid type format 'w:99999999999'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ArrowSchema s;
    leaf(&s, cases[i].format);
    pt_type t;
    pt_error err = {0};
    assert_int_equal(pt_type_parse(&s, &t, &err), cases[i].code);
    if (cases[i].code != PT_OK) {
      assert_string_equal(err.message, cases[i].message);
      assert_int_equal(err.code, cases[i].code);
    }
    s.release(&s);
  }
}

static void test_parse_structure_errors(void **state) {
  struct ArrowSchema s;
  pt_type t;
  pt_error err;
  /* A list needs exactly one child. */
  assert_int_equal(pt_schema_init(&s, "+l", "x", 0, 0, NULL), PT_OK);
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_EINVAL);
  assert_string_equal(err.message, "type format '+l' needs 1 children, the schema has 0");
  s.release(&s);
  /* Union type ids: one per child, no repeats. */
  assert_int_equal(pt_schema_init(&s, "+ud:3,3", "u", 0, 2, NULL), PT_OK);
  leaf(s.children[0], "i");
  leaf(s.children[1], "u");
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_EINVAL);
  assert_string_equal(err.message, "union format '+ud:3,3' lists type id 3 twice");
  s.release(&s);
  assert_int_equal(pt_schema_init(&s, "+us:3,127", "u", 0, 2, NULL), PT_OK);
  assert_int_equal(pt_schema_init(s.children[0], "i", "a", 0, 0, NULL), PT_OK);
  assert_int_equal(pt_schema_init(s.children[1], "u", "b", 0, 0, NULL), PT_OK);
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_OK);
  assert_int_equal(t.id, PT_TYPE_SPARSE_UNION);
  assert_string_equal(t.type_codes, "3,127");
  assert_int_equal(pt__type_n_buffers(t.id), 1);
  assert_int_equal(pt__type_n_buffers(PT_TYPE_DENSE_UNION), 2);
  char uname[64];
  pt_type_name(&s, uname, sizeof uname);
  assert_string_equal(uname, "sparse_union<a: int32=3, b: utf8=127>");
  s.release(&s);
  /* A map's one child is a struct of two. */
  assert_int_equal(pt_schema_init(&s, "+m", "m", 0, 1, NULL), PT_OK);
  leaf(s.children[0], "i");
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_EINVAL);
  assert_string_equal(err.message, "map needs one child of format '+s' with two children (key, "
                                   "value), not 'i' with 0");
  s.release(&s);
  assert_int_equal(pt_schema_init(&s, "+m", "m", ARROW_FLAG_MAP_KEYS_SORTED, 1, NULL), PT_OK);
  assert_int_equal(pt_schema_init(s.children[0], "+s", "entries", 0, 2, NULL), PT_OK);
  leaf(s.children[0]->children[0], "u");
  leaf(s.children[0]->children[1], "+l");
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_OK);
  assert_int_equal(t.id, PT_TYPE_MAP);
  char name[64];
  assert_int_equal(pt_type_name(&s, name, sizeof name), -1); /* the list has no child */
  s.children[0]->children[1]->release(s.children[0]->children[1]);
  leaf(s.children[0]->children[1], "g");
  pt_type_name(&s, name, sizeof name);
  assert_string_equal(name, "map<utf8, float64, keys_sorted>");
  s.release(&s);
  /* Leaves have none. */
  assert_int_equal(pt_schema_init(&s, "i", "x", 0, 1, NULL), PT_OK);
  leaf(s.children[0], "i");
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_EINVAL);
  s.release(&s);
  /* Released and NULL schemas. */
  assert_int_equal(pt_type_parse(NULL, &t, &err), PT_EINVAL);
  assert_string_equal(err.message, "schema is NULL");
  memset(&s, 0, sizeof s);
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_EINVAL);
  assert_string_equal(err.message, "schema has been released");
  /* A struct may have any number, including zero. */
  assert_int_equal(pt_schema_init(&s, "+s", "x", 0, 0, NULL), PT_OK);
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_OK);
  s.release(&s);
}

static void test_dictionary_schema(void **state) {
  struct ArrowSchema s, d;
  pt_type t;
  pt_error err;
  leaf(&s, "i");
  leaf(&d, "u");
  assert_int_equal(pt_schema_set_dictionary(&s, &d, &err), PT_OK);
  assert_null(d.release);
  assert_non_null(s.dictionary);
  assert_int_equal(pt_type_parse(&s, &t, &err), PT_OK);
  assert_int_equal(t.id, PT_TYPE_INT32);
  assert_int_equal(t.dictionary, 1);
  char name[128];
  assert_int_equal(pt_type_name(&s, name, sizeof name),
                   (int)strlen("dictionary<values=utf8, indices=int32>"));
  assert_string_equal(name, "dictionary<values=utf8, indices=int32>");
  /* Replacing the dictionary releases the old one (ASan checks the leak). */
  leaf(&d, "z");
  assert_int_equal(pt_schema_set_dictionary(&s, &d, &err), PT_OK);
  assert_string_equal(s.dictionary->format, "z");
  s.release(&s);

  leaf(&s, "g");
  leaf(&d, "u");
  assert_int_equal(pt_schema_set_dictionary(&s, &d, &err), PT_EINVAL);
  assert_string_equal(err.message,
                      "dictionary-encoded type needs an integer index type, not 'g'");
  assert_non_null(d.release); /* not moved on failure */
  d.release(&d);
  s.release(&s);
}

static void test_type_names(void **state) {
  struct ArrowSchema s;
  char buf[256];
  static const struct {
    const char *format, *name;
  } leaves[] = {
      {"tsu:UTC", "timestamp[us, tz=UTC]"}, {"tsm:", "timestamp[ms]"},
      {"tDn", "duration[ns]"},               {"d:10,2", "decimal128(10, 2)"},
      {"w:5", "fixed_size_binary[5]"},       {"e", "float16"},
      {"U", "large_utf8"},                   {"tdD", "date32"},
      {"n", "null"},                         {"tdm", "date64[ms]"},
      {"tts", "time32[s]"},                  {"ttm", "time32[ms]"},
      {"ttu", "time64[us]"},                 {"ttn", "time64[ns]"},
      {"tiM", "month_interval"},             {"tiD", "day_time_interval"},
      {"tin", "month_day_nano_interval"},    {"d:9,2,32", "decimal32(9, 2)"},
      {"d:18,-1,64", "decimal64(18, -1)"},   {"d:76,20,256", "decimal256(76, 20)"},
      {"vu", "string_view"},                 {"vz", "binary_view"},
  };
  for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
    leaf(&s, leaves[i].format);
    assert_int_equal(pt_type_name(&s, buf, sizeof buf), (int)strlen(leaves[i].name));
    assert_string_equal(buf, leaves[i].name);
    s.release(&s);
  }

  /* struct<a: int64, tags: list<utf8>, v: fixed_size_list<float32>[3]> */
  assert_int_equal(pt_schema_init(&s, "+s", "", 0, 3, NULL), PT_OK);
  assert_int_equal(pt_schema_init(s.children[0], "l", "a", 0, 0, NULL), PT_OK);
  assert_int_equal(pt_schema_init(s.children[1], "+l", "tags", 0, 1, NULL), PT_OK);
  assert_int_equal(pt_schema_init(s.children[1]->children[0], "u", "item", 0, 0, NULL), PT_OK);
  assert_int_equal(pt_schema_init(s.children[2], "+w:3", "v", 0, 1, NULL), PT_OK);
  assert_int_equal(pt_schema_init(s.children[2]->children[0], "f", "item", 0, 0, NULL), PT_OK);
  const char *want = "struct<a: int64, tags: list<utf8>, v: fixed_size_list<float32>[3]>";
  assert_int_equal(pt_type_name(&s, buf, sizeof buf), (int)strlen(want));
  assert_string_equal(buf, want);
  /* Truncation works like snprintf. */
  assert_int_equal(pt_type_name(&s, buf, 7), (int)strlen(want));
  assert_string_equal(buf, "struct");
  assert_int_equal(pt_type_name(&s, NULL, 0), (int)strlen(want));
  s.release(&s);

  leaf(&s, "bogus");
  assert_int_equal(pt_type_name(&s, buf, sizeof buf), -1);
  assert_string_equal(buf, "");
  s.release(&s);
}

static void test_layout_helpers(void **state) {
  assert_int_equal(pt__type_offsets_kind(PT_TYPE_STRING), 1);
  assert_int_equal(pt__type_offsets_kind(PT_TYPE_LARGE_BINARY), 2);
  assert_int_equal(pt__type_offsets_kind(PT_TYPE_LIST), 1);
  assert_int_equal(pt__type_offsets_kind(PT_TYPE_LARGE_LIST), 2);
  assert_int_equal(pt__type_offsets_kind(PT_TYPE_INT32), 0);
  assert_int_equal(pt__type_n_children(PT_TYPE_STRUCT), -1);
  assert_int_equal(pt__type_n_children(PT_TYPE_FIXED_SIZE_LIST), 1);
  assert_int_equal(pt__type_n_children(PT_TYPE_DOUBLE), 0);
  assert_true(pt__type_is_signed_int(PT_TYPE_INT16));
  assert_false(pt__type_is_signed_int(PT_TYPE_UINT16));
  assert_true(pt__type_is_unsigned_int(PT_TYPE_UINT64));
  assert_false(pt__type_is_unsigned_int(PT_TYPE_DATE32));
  assert_int_equal(pt__type_n_buffers(PT_TYPE_LIST), 2);
  assert_int_equal(pt__type_n_buffers(PT_TYPE_STRUCT), 1);
}

/* ------------------------------------------------------------------------ */
/* Schemas */

static void test_schema_metadata_and_copy(void **state) {
  struct ArrowSchema s, c;
  pt_error err;
  assert_int_equal(pt_schema_init(&s, "+s", "batch", 0, 2, &err), PT_OK);
  leaf(s.children[0], "i");
  assert_int_equal(pt_schema_init(s.children[1], "+l", "list", ARROW_FLAG_NULLABLE, 1, &err),
                   PT_OK);
  leaf(s.children[1]->children[0], "i");
  struct ArrowSchema d;
  leaf(&d, "u");
  assert_int_equal(pt_schema_set_dictionary(s.children[1]->children[0], &d, &err), PT_OK);
  const char *keys[] = {"k", "empty"}, *values[] = {"value", ""};
  assert_int_equal(pt_schema_set_metadata(&s, 2, keys, values, &err), PT_OK);
  static const char expect[] = "\2\0\0\0"
                               "\1\0\0\0k\5\0\0\0value"
                               "\5\0\0\0empty\0\0\0\0";
  assert_memory_equal(s.metadata, expect, sizeof expect - 1);

  assert_int_equal(pt_schema_copy(&s, &c, &err), PT_OK);
  assert_string_equal(c.format, "+s");
  assert_string_equal(c.name, "batch");
  assert_ptr_not_equal(c.format, s.format);
  assert_memory_equal(c.metadata, expect, sizeof expect - 1);
  assert_int_equal(c.n_children, 2);
  assert_string_equal(c.children[1]->name, "list");
  assert_int_equal(c.children[1]->flags, ARROW_FLAG_NULLABLE);
  assert_string_equal(c.children[1]->children[0]->dictionary->format, "u");
  s.release(&s);
  char name[128];
  pt_type_name(&c, name, sizeof name);
  assert_string_equal(name,
                      "struct<x: int32, list: list<dictionary<values=utf8, indices=int32>>>");
  /* With lengths: any bytes, NUL included; NULL lengths: strlen. */
  const char *bk[] = {"a\0b"}, *bv[] = {"\0"};
  const int64_t bkl[] = {3}, bvl[] = {1}, neg[] = {-1};
  assert_int_equal(pt_schema_set_metadata_n(&c, 1, bk, bkl, bv, bvl, &err), PT_OK);
  assert_memory_equal(c.metadata, "\1\0\0\0\3\0\0\0a\0b\1\0\0\0\0", 16);
  assert_int_equal(pt_schema_set_metadata_n(&c, 1, bk, NULL, bv, bvl, &err), PT_OK);
  assert_memory_equal(c.metadata, "\1\0\0\0\1\0\0\0a\1\0\0\0\0", 14);
  assert_int_equal(pt_schema_set_metadata_n(&c, 1, bk, neg, bv, bvl, &err), PT_EINVAL);
  assert_string_equal(err.message, "set_metadata: pair 0 has a negative length");
  assert_int_equal(pt_schema_set_metadata_n(&c, 1, NULL, NULL, bv, NULL, &err), PT_EINVAL);
  /* Clearing metadata. */
  assert_int_equal(pt_schema_set_metadata(&c, 0, NULL, NULL, &err), PT_OK);
  assert_null(c.metadata);
  c.release(&c);
  assert_null(c.release);
}

static void test_schema_fault_injection(void **state) {
  struct ArrowSchema s;
  assert_int_equal(pt_schema_init(&s, "+s", "batch", 0, 2, NULL), PT_OK);
  leaf(s.children[0], "tsu:UTC");
  assert_int_equal(pt_schema_init(s.children[1], "+l", "l", 0, 1, NULL), PT_OK);
  leaf(s.children[1]->children[0], "s");
  struct ArrowSchema d;
  leaf(&d, "u");
  assert_int_equal(pt_schema_set_dictionary(s.children[1]->children[0], &d, NULL), PT_OK);
  const char *k[] = {"a"}, *v[] = {"b"};
  assert_int_equal(pt_schema_set_metadata(s.children[0], 1, k, v, NULL), PT_OK);
  int ok = 0;
  for (int64_t n = 0; n < 1000 && !ok; n++) {
    struct ArrowSchema c;
    pt_error err = {0};
    pt__alloc_fail_after(n);
    int rc = pt_schema_copy(&s, &c, &err);
    pt__alloc_fail_after(-1);
    if (rc == PT_OK) {
      ok = 1;
      assert_true(n > 5);
      c.release(&c);
    } else {
      assert_int_equal(rc, PT_ENOMEM);
      assert_null(c.release);
    }
  }
  assert_true(ok);
  s.release(&s);
}

/* ------------------------------------------------------------------------ */
/* Half floats */

static void test_half_to_double(void **state) {
  assert_true(pt__half_to_double(0x3c00) == 1.0);
  assert_true(pt__half_to_double(0xc000) == -2.0);
  assert_true(pt__half_to_double(0x7bff) == 65504.0);
  assert_true(pt__half_to_double(0x0001) == ldexp(1, -24));
  assert_true(pt__half_to_double(0x03ff) == ldexp(1023, -24));
  assert_true(pt__half_to_double(0x0400) == ldexp(1, -14));
  assert_true(pt__half_to_double(0x3555) == 0.333251953125);
  assert_true(isinf(pt__half_to_double(0x7c00)) && pt__half_to_double(0x7c00) > 0);
  assert_true(isinf(pt__half_to_double(0xfc00)) && pt__half_to_double(0xfc00) < 0);
  assert_true(isnan(pt__half_to_double(0x7e00)));
  assert_true(signbit(pt__half_to_double(0x8000)));
}

static void test_double_to_half(void **state) {
  assert_int_equal(pt__double_to_half(1.0), 0x3c00);
  assert_int_equal(pt__double_to_half(-2.0), 0xc000);
  assert_int_equal(pt__double_to_half(0.0), 0x0000);
  assert_int_equal(pt__double_to_half(-0.0), 0x8000);
  assert_int_equal(pt__double_to_half(65504.0), 0x7bff);
  /* Halfway between the largest finite value and 2^16: ties to even, which
   * is the (infinite) 2^16. Just below stays finite. */
  assert_int_equal(pt__double_to_half(65520.0), 0x7c00);
  assert_int_equal(pt__double_to_half(65519.99), 0x7bff);
  assert_int_equal(pt__double_to_half(1e10), 0x7c00);
  assert_int_equal(pt__double_to_half(-1e300), 0xfc00);
  assert_int_equal(pt__double_to_half(INFINITY), 0x7c00);
  assert_int_equal(pt__double_to_half(-INFINITY), 0xfc00);
  uint16_t nan = pt__double_to_half(NAN);
  assert_int_equal(nan & 0x7c00, 0x7c00);
  assert_true((nan & 0x3ff) != 0);
  /* Round to nearest even at 1: 1 + 2^-11 is a tie (down to even 1.0),
   * 1 + 3 * 2^-11 is a tie (up to even 1 + 2^-9). */
  assert_int_equal(pt__double_to_half(1 + ldexp(1, -11)), 0x3c00);
  assert_int_equal(pt__double_to_half(1 + 3 * ldexp(1, -11)), 0x3c02);
  assert_int_equal(pt__double_to_half(1 + ldexp(1, -11) + ldexp(1, -30)), 0x3c01);
  /* Subnormals: 2^-25 ties to 0, just above rounds up to the smallest
   * subnormal, 3 * 2^-25 ties to even 2 * 2^-24. */
  assert_int_equal(pt__double_to_half(ldexp(1, -24)), 0x0001);
  assert_int_equal(pt__double_to_half(ldexp(1, -25)), 0x0000);
  assert_int_equal(pt__double_to_half(ldexp(1, -25) * 1.0000001), 0x0001);
  assert_int_equal(pt__double_to_half(3 * ldexp(1, -25)), 0x0002);
  assert_int_equal(pt__double_to_half(ldexp(1, -30)), 0x0000);
  assert_int_equal(pt__double_to_half(-ldexp(1, -24)), 0x8001);
  assert_int_equal(pt__double_to_half(5e-324), 0x0000);
  /* The largest subnormal rounds up into the smallest normal. */
  assert_int_equal(pt__double_to_half(ldexp(1, -14) - ldexp(1, -26)), 0x0400);
  assert_int_equal(pt__double_to_half(ldexp(1023, -24)), 0x03ff);
  /* Every finite half survives a round trip. */
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* nan */
    if (pt__double_to_half(pt__half_to_double((uint16_t)h)) != h) fail_msg("half 0x%04x", h);
  }
}

/* ------------------------------------------------------------------------ */
/* decimal128 */

static void roundtrip(const char *text, int precision, int scale, const char *want) {
  uint8_t v[16];
  pt_error err = {0};
  int rc = pt__decimal128_from_string(text, precision, scale, v, &err);
  if (rc != PT_OK) fail_msg("'%s': %s", text, err.message);
  char out[48];
  int n = pt__decimal128_to_string(v, scale, out);
  assert_string_equal(out, want);
  assert_int_equal(n, (int)strlen(want));
}

static int64_t decimal_low(const char *text, int precision, int scale) {
  uint8_t v[16];
  assert_int_equal(pt__decimal128_from_string(text, precision, scale, v, NULL), PT_OK);
  int64_t lo, hi;
  memcpy(&lo, v, 8);
  memcpy(&hi, v + 8, 8);
  assert_int_equal(hi, lo < 0 ? -1 : 0);
  return lo;
}

static void test_decimal_text(void **state) {
  roundtrip("-12.340", 10, 3, "-12.340");
  roundtrip("0.001", 10, 3, "0.001");
  roundtrip("12.34", 10, 3, "12.340");
  roundtrip("+7", 5, 2, "7.00");
  roundtrip("-0", 5, 2, "0.00");
  roundtrip("000123.4500", 10, 2, "123.45");
  roundtrip(".5", 3, 1, "0.5");
  roundtrip("5.", 3, 1, "5.0");
  roundtrip("1e3", 10, 2, "1000.00");
  roundtrip("1.5E-2", 10, 3, "0.015");
  roundtrip("12300", 10, -2, "123E+2");
  roundtrip("0", 10, -2, "0");
  roundtrip("42", 10, 0, "42");
  roundtrip("99999999999999999999999999999999999999", 38, 0,
            "99999999999999999999999999999999999999");
  roundtrip("-99999999999999999999999999999999999999", 38, 0,
            "-99999999999999999999999999999999999999");
  roundtrip("0.99999999999999999999999999999999999999", 38, 38,
            "0.99999999999999999999999999999999999999");
  roundtrip("-0.00000000000000000000000000000000000001", 38, 38,
            "-0.00000000000000000000000000000000000001");
  assert_int_equal(decimal_low("-12.340", 10, 3), -12340);
  assert_int_equal(decimal_low("0.001", 10, 3), 1);
  assert_int_equal(decimal_low("1.2", 10, 3), 1200);

  /* The most negative 128-bit value prints without overflow. */
  uint8_t min[16] = {0};
  min[15] = 0x80;
  char out[48];
  assert_int_equal(pt__decimal128_to_string(min, 0, out), 40);
  assert_string_equal(out, "-170141183460469231731687303715884105728");
  assert_int_equal(pt__decimal128_to_string(min, 38, out), 41);
  assert_string_equal(out, "-1.70141183460469231731687303715884105728");
}

/* Text of a decimal of `bytes` bytes and back. */
static void roundtrip_n(int bytes, const char *text, int precision, int scale, const char *want) {
  uint8_t v[32];
  pt_error err = {0};
  int rc = pt__decimal_from_string(text, bytes, precision, scale, v, &err);
  if (rc != PT_OK) fail_msg("'%s': %s", text, err.message);
  char out[PT__DECIMAL_TEXT_MAX];
  int n = pt__decimal_to_string(v, bytes, scale, out);
  assert_string_equal(out, want);
  assert_int_equal(n, (int)strlen(want));
}

static void test_decimal_widths(void **state) {
  roundtrip_n(4, "-12.34", 9, 2, "-12.34");
  roundtrip_n(4, "999999999", 9, 0, "999999999");
  roundtrip_n(4, "-999999999", 9, 0, "-999999999");
  roundtrip_n(4, "0.000000001", 9, 9, "0.000000001");
  roundtrip_n(8, "-999999999999999999", 18, 0, "-999999999999999999");
  roundtrip_n(8, "1.5", 18, 17, "1.50000000000000000");
  roundtrip_n(8, "12300", 10, -2, "123E+2");
  roundtrip_n(32, "9999999999999999999999999999999999999999999999999999999999999999999999999999",
              76, 0, "9999999999999999999999999999999999999999999999999999999999999999999999999999");
  roundtrip_n(32, "-1e75", 76, 0,
              "-1000000000000000000000000000000000000000000000000000000000000000000000000000");
  roundtrip_n(32, "-0.1", 76, 76,
              "-0.1000000000000000000000000000000000000000000000000000000000000000000000000000");
  roundtrip_n(32, "5e70", 1, -70, "5E+70");
  roundtrip_n(32, "0", 76, -76, "0");

  /* Exact little-endian bytes: -2 in 4 and 32 bytes. */
  uint8_t v[32];
  assert_int_equal(pt__decimal_from_string("-2", 4, 9, 0, v, NULL), PT_OK);
  assert_int_equal(pt__load_i32(v), -2);
  assert_int_equal(pt__decimal_from_string("-2", 32, 76, 0, v, NULL), PT_OK);
  assert_int_equal(pt__load_i64(v), -2);
  for (int i = 8; i < 32; i++) assert_int_equal(v[i], 0xff);

  /* The most negative values print without overflow. */
  char out[PT__DECIMAL_TEXT_MAX];
  uint8_t min[32] = {0};
  min[3] = 0x80;
  assert_int_equal(pt__decimal_to_string(min, 4, 0, out), 11);
  assert_string_equal(out, "-2147483648");
  memset(min, 0, sizeof min);
  min[31] = 0x80;
  pt__decimal_to_string(min, 32, 0, out);
  assert_string_equal(
      out, "-57896044618658097711785492504343953926634992332820282019728792003956564819968");

  pt_error err;
  assert_int_equal(pt__decimal_from_string("1234567890", 4, 9, 0, v, &err), PT_ERANGE);
  assert_string_equal(err.message, "decimal '1234567890' does not fit in precision 9, scale 0");
  assert_int_equal(pt__decimal_from_string("1", 4, 10, 0, v, &err), PT_EINVAL);
  assert_string_equal(err.message, "decimal32 precision 10 is not in 1 to 9");
  assert_int_equal(pt__decimal_from_string("1", 12, 5, 0, v, &err), PT_EINVAL);
  assert_int_equal(pt__decimal_to_string(v, 32, 77, out), -1);
  assert_int_equal(pt__decimal_to_string(v, 12, 0, out), -1);
}

static void test_decimal_errors(void **state) {
  uint8_t v[16];
  pt_error err;
  assert_int_equal(pt__decimal128_from_string("1.2345", 10, 3, v, &err), PT_ERANGE);
  assert_string_equal(err.message,
                      "decimal '1.2345' has more digits after the point than the scale 3 allows");
  assert_int_equal(pt__decimal128_from_string("1234", 5, 2, v, &err), PT_ERANGE);
  assert_string_equal(err.message, "decimal '1234' does not fit in precision 5, scale 2");
  assert_int_equal(pt__decimal128_from_string("999", 5, 2, v, &err), PT_OK);
  assert_int_equal(
      pt__decimal128_from_string("100000000000000000000000000000000000000", 38, 0, v, &err),
      PT_ERANGE);
  assert_int_equal(pt__decimal128_from_string("1e40", 38, 0, v, &err), PT_ERANGE);
  assert_int_equal(pt__decimal128_from_string("1e-99999999999", 38, 0, v, &err), PT_ERANGE);
  assert_int_equal(pt__decimal128_from_string("0e99999999999", 38, 0, v, &err), PT_OK);
  /* Trailing fractional zeros beyond the scale are harmless. */
  assert_int_equal(pt__decimal128_from_string("1.50000000000000000000000000000000000000000000",
                                              5, 1, v, &err),
                   PT_OK);
  const char *bad[] = {"", "-", "+", ".", "1.2.3", "abc", "1e", "1e+", "12a", " 1", "1 ", "--1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(pt__decimal128_from_string(bad[i], 10, 2, v, &err), PT_EINVAL);
  }
  assert_string_equal(err.message, "'--1' is not a decimal number");
  assert_int_equal(pt__decimal128_from_string("1", 39, 0, v, &err), PT_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_simple_formats),
      cmocka_unit_test(test_parse_parameters),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_parse_structure_errors),
      cmocka_unit_test(test_dictionary_schema),
      cmocka_unit_test(test_type_names),
      cmocka_unit_test(test_layout_helpers),
      cmocka_unit_test(test_schema_metadata_and_copy),
      cmocka_unit_test(test_schema_fault_injection),
      cmocka_unit_test(test_half_to_double),
      cmocka_unit_test(test_double_to_half),
      cmocka_unit_test(test_decimal_text),
      cmocka_unit_test(test_decimal_errors),
      cmocka_unit_test(test_decimal_widths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
