/* test_core.c — errors, allocation fault injection, growable buffers and bit
 * helpers of src/core. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

static void test_errorf_and_prefix(void **state) {
  pt_error err;
  assert_int_equal(pt__errorf(&err, PT_EFORMAT, "buffer %d out of range", 2), PT_EFORMAT);
  assert_string_equal(err.message, "buffer 2 out of range");
  assert_int_equal(err.code, PT_EFORMAT);
  pt__error_prefix(&err, PT_EFORMAT, "ipc: record batch %d: ", 3);
  assert_string_equal(err.message, "ipc: record batch 3: buffer 2 out of range");
  /* NULL error pointers are allowed everywhere. */
  assert_int_equal(pt__errorf(NULL, PT_EINVAL, "x"), PT_EINVAL);
  assert_int_equal(pt__error_prefix(NULL, PT_EINVAL, "x"), PT_EINVAL);
}

static void test_error_prefix_truncates(void **state) {
  pt_error err;
  char big[2000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  pt__errorf(&err, PT_EIO, "%s", big);
  assert_int_equal(strlen(err.message), PT_ERROR_SIZE - 1);
  pt__error_prefix(&err, PT_EIO, "ctx: ");
  assert_int_equal(strlen(err.message), PT_ERROR_SIZE - 1);
  assert_memory_equal(err.message, "ctx: aaa", 8);
}

static void test_strerror_and_version(void **state) {
  assert_string_equal(pt_strerror(PT_OK), "ok");
  assert_string_equal(pt_strerror(PT_EFORMAT), "malformed input");
  assert_string_equal(pt_strerror(12345), "unknown error");
  assert_string_equal(pt_version(), PT_VERSION_STRING);
}

static void test_alloc_fail_after(void **state) {
  pt__alloc_fail_after(2);
  void *a = pt__malloc(8), *b = pt__malloc(8), *c = pt__malloc(8), *d = pt__calloc(1, 8);
  pt__alloc_fail_after(-1);
  assert_non_null(a);
  assert_non_null(b);
  assert_null(c);
  assert_null(d);
  void *e = pt__malloc_aligned(100);
  assert_non_null(e);
  assert_int_equal((uintptr_t)e % 64, 0);
  pt__free(a);
  pt__free(b);
  pt__free(e);
}

static void test_buf(void **state) {
  pt_buf b = {0};
  for (int i = 0; i < 1000; i++) assert_int_equal(pt__buf_printf(&b, "%d,", i), PT_OK);
  assert_int_equal(pt__buf_putc(&b, '!'), PT_OK);
  assert_memory_equal(b.data, "0,1,2,", 6);
  assert_int_equal(b.data[b.len - 1], '!');
  char long_text[300];
  memset(long_text, 'x', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  size_t before = b.len;
  assert_int_equal(pt__buf_printf(&b, "%s", long_text), PT_OK);
  assert_int_equal(b.len, before + 299);
  pt_buf_free(&b);
  assert_null(b.data);
  pt__alloc_fail_after(0);
  assert_int_equal(pt__buf_append(&b, "abc", 3), PT_ENOMEM);
  pt__alloc_fail_after(-1);
  pt_buf_free(&b);
}

static void test_bits(void **state) {
  uint8_t src[32], dst[32];
  for (int i = 0; i < 32; i++) src[i] = (uint8_t)(i * 37 + 11);
  int64_t naive = 0;
  for (int64_t i = 3; i < 3 + 200; i++) naive += pt__bit_get(src, i);
  assert_int_equal(pt__bits_count(src, 3, 200), naive);
  for (int off = 0; off < 9; off++) {
    memset(dst, 0, sizeof dst);
    pt__bits_copy(src, 5, dst, off, 150);
    for (int64_t i = 0; i < 150; i++)
      assert_int_equal(pt__bit_get(dst, off + i), pt__bit_get(src, 5 + i));
  }
  memset(dst, 0, sizeof dst);
  pt__bits_copy(src, 8, dst, 16, 77);
  for (int64_t i = 0; i < 77; i++) assert_int_equal(pt__bit_get(dst, 16 + i), pt__bit_get(src, 8 + i));
}

static void test_utf8(void **state) {
  const char *good[] = {"", "ascii only, longer than eight bytes", "caf\xc3\xa9",
                        "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
  const char *bad[] = {"\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                       "\xf4\x90\x80\x80", "\xff", "abcdefgh\x80", "\xe2\x82"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    assert_true(pt__utf8_valid((const uint8_t *)good[i], strlen(good[i])));
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_false(pt__utf8_valid((const uint8_t *)bad[i], strlen(bad[i])));
}

static void test_grow(void **state) {
  int64_t *v = NULL, cap = 0;
  for (int64_t i = 0; i < 1000; i++) {
    assert_int_equal(pt__grow((void **)&v, &cap, i + 1, sizeof *v), PT_OK);
    assert_true(cap >= i + 1);
    v[i] = i;
  }
  for (int64_t i = 0; i < 1000; i++) assert_int_equal(v[i], i);
  int64_t before = cap;
  assert_int_equal(pt__grow((void **)&v, &cap, 10, sizeof *v), PT_OK); /* no shrink */
  assert_int_equal(cap, before);
  pt__alloc_fail_after(0);
  assert_int_equal(pt__grow((void **)&v, &cap, cap + 1, sizeof *v), PT_ENOMEM);
  pt__alloc_fail_after(-1);
  assert_int_equal(cap, before); /* unchanged on failure */
  assert_int_equal(v[999], 999);
  assert_int_equal(pt__grow((void **)&v, &cap, INT64_MAX, sizeof *v), PT_ENOMEM);
  pt__free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errorf_and_prefix), cmocka_unit_test(test_error_prefix_truncates),
      cmocka_unit_test(test_strerror_and_version), cmocka_unit_test(test_alloc_fail_after),
      cmocka_unit_test(test_buf), cmocka_unit_test(test_bits), cmocka_unit_test(test_utf8), cmocka_unit_test(test_grow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
