/* test_parquet_levels.c — pt__rle_get_levels, the decoder of definition and
 * repetition levels: the same values as the general RLE decoder for every
 * bit width and mix of runs (split across calls at odd places), its counts,
 * a level above the maximum refused, and random bytes never read past;
 * pt__rle_get (dictionary indices) at every bit width.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parquet/parquet_int.h"

/* Runs of equal values (long enough for RLE runs) between stretches of
 * random ones (bit-packed), all below 2^bw. */
static uint32_t rand_below(uint32_t top) { return ((uint32_t)rand() << 16 ^ (uint32_t)rand()) & top; }

static void make_levels(uint32_t *v, int64_t n, int bw, unsigned seed) {
  srand(seed);
  uint32_t top = bw == 0 ? 0 : bw >= 32 ? 0xffffffffu : (1u << bw) - 1;
  for (int64_t i = 0; i < n;) {
    int64_t len = 1 + rand() % 40;
    bool run = rand() % 2;
    uint32_t x = rand_below(top);
    for (int64_t j = 0; j < len && i < n; j++, i++) v[i] = run ? x : rand_below(top);
  }
}

/* Dictionary indices: every bit width through pt__rle_get, in calls of odd
 * sizes. */
static void test_rle_get_widths(void **state) {
  (void)state;
  enum { N = 3000 };
  uint32_t *want = malloc(N * sizeof *want), *got = malloc(N * sizeof *got);
  for (int bw = 0; bw <= 32; bw++) {
    make_levels(want, N, bw, (unsigned)bw + 100);
    pt_buf buf = {0};
    assert_int_equal(pt__rle_put(&buf, want, N, bw), PT_OK);
    pt__rle_dec d;
    pt__rle_init(&d, (const uint8_t *)buf.data, (int64_t)buf.len, bw);
    pt_error err;
    int64_t at = 0;
    for (int64_t step = 5; at < N; step = step * 7 % 301 + 1) {
      int64_t k = N - at < step ? N - at : step;
      assert_int_equal(pt__rle_get(&d, got + at, k, &err), PT_OK);
      at += k;
    }
    for (int64_t i = 0; i < N; i++) assert_int_equal(got[i], want[i]);
    pt_buf_free(&buf);
  }
  free(want);
  free(got);
}

static void test_same_as_rle_get(void **state) {
  (void)state;
  enum { N = 5000 };
  uint32_t *want = malloc(N * sizeof *want), *got32 = malloc(N * sizeof *got32);
  uint16_t *got = malloc(N * sizeof *got);
  for (int bw = 0; bw <= 10; bw++) {
    make_levels(want, N, bw, (unsigned)bw + 1);
    pt_buf buf = {0};
    assert_int_equal(pt__rle_put(&buf, want, N, bw), PT_OK);
    int max = bw == 0 ? 0 : (1 << bw) - 1;
    int slot = max / 2;
    pt__rle_dec d, d32;
    pt__rle_init(&d, (const uint8_t *)buf.data, (int64_t)buf.len, bw);
    pt__rle_init(&d32, (const uint8_t *)buf.data, (int64_t)buf.len, bw);
    pt_error err;
    /* Calls of odd sizes, so that a call starts inside a group. */
    int64_t at = 0, ge_all = 0, eq_all = 0;
    for (int64_t step = 1; at < N; step = step * 3 % 61 + 1) {
      int64_t k = N - at < step ? N - at : step;
      int64_t ge, eq;
      assert_int_equal(pt__rle_get_levels(&d, got + at, k, max, slot, &ge, &eq, &err), PT_OK);
      assert_int_equal(pt__rle_get(&d32, got32 + at, k, &err), PT_OK);
      ge_all += ge;
      eq_all += eq;
      at += k;
    }
    int64_t ge_want = 0, eq_want = 0;
    for (int64_t i = 0; i < N; i++) {
      assert_int_equal(got[i], want[i]);
      assert_int_equal(got32[i], want[i]);
      ge_want += want[i] >= (uint32_t)slot;
      eq_want += want[i] == (uint32_t)max;
    }
    assert_int_equal(ge_all, ge_want);
    assert_int_equal(eq_all, eq_want);
    pt_buf_free(&buf);
  }
  free(want);
  free(got32);
  free(got);
}

static void test_above_max_refused(void **state) {
  (void)state;
  uint32_t v[64];
  for (int i = 0; i < 64; i++) v[i] = i == 40 ? 3 : (uint32_t)(i % 3);
  pt_buf buf = {0};
  assert_int_equal(pt__rle_put(&buf, v, 64, 2), PT_OK);
  uint16_t out[64];
  pt__rle_dec d;
  pt__rle_init(&d, (const uint8_t *)buf.data, (int64_t)buf.len, 2);
  pt_error err;
  int64_t ge, eq;
  assert_int_equal(pt__rle_get_levels(&d, out, 64, 2, 0, &ge, &eq, &err), PT_EFORMAT);
  assert_string_equal(err.message, "level above the column's maximum of 2");
  /* An RLE run of a value above the maximum too. */
  uint32_t r[16];
  for (int i = 0; i < 16; i++) r[i] = 3;
  buf.len = 0;
  assert_int_equal(pt__rle_put(&buf, r, 16, 2), PT_OK);
  pt__rle_init(&d, (const uint8_t *)buf.data, (int64_t)buf.len, 2);
  assert_int_equal(pt__rle_get_levels(&d, out, 16, 2, 0, &ge, &eq, &err), PT_EFORMAT);
  pt_buf_free(&buf);
}

/* Random bytes: a clean error or values within the maximum, never a read
 * past the bytes (ASan watches the exact-size copy). */
static void test_garbage(void **state) {
  (void)state;
  srand(7);
  uint16_t out[300];
  for (int round = 0; round < 3000; round++) {
    int len = rand() % 40;
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    for (int i = 0; i < len; i++) p[i] = (uint8_t)rand();
    int bw = rand() % 11;
    int max = bw == 0 ? 0 : rand() % (1 << bw);
    pt__rle_dec d;
    pt__rle_init(&d, p, len, bw);
    pt_error err;
    int64_t ge, eq;
    int n = rand() % 300;
    if (pt__rle_get_levels(&d, out, n, max, 0, &ge, &eq, &err) == PT_OK) {
      for (int i = 0; i < n; i++) assert_true(out[i] <= max);
      assert_int_equal(ge, n);
    }
    uint32_t wide[300];
    int w = rand() % 33;
    pt__rle_init(&d, p, len, w);
    if (pt__rle_get(&d, wide, n, &err) == PT_OK && w < 32)
      for (int i = 0; i < n; i++) assert_true(wide[i] < (1u << w) || (w == 0 && wide[i] == 0));
    free(p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_as_rle_get),
      cmocka_unit_test(test_rle_get_widths),
      cmocka_unit_test(test_above_max_refused),
      cmocka_unit_test(test_garbage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
