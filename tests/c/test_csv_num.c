/* test_csv_num.c — the CSV reader's field parsers against references:
 * doubles bit for bit against strtod on millions of texts (printed doubles,
 * random digit strings, exact and near halfway points, subnormals, signed
 * zeros, overflow and underflow), integers against strtoll. Each text is
 * parsed from a heap block of exactly its length, so that a read past its
 * end is an AddressSanitizer error, at each of eight alignments. Dates
 * and timestamps against timegm, and their fixed-layout fast path against
 * the general one on the same texts with one byte changed. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "io/csv_num.h"

/* xorshift64*: the same cases every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

static int64_t checked;

/* s parsed by pt__csv_parse_double from n bytes at an address of alignment
 * align % 8 must give strtod's bits, and succeed exactly when strtod reads
 * all of s. */
static void check_double_at(const char *s, int align) {
  size_t n = strlen(s);
  char *block = malloc(n + 8); /* owned here */
  assert_non_null(block);
  char *copy = block + (align & 7);
  memcpy(copy, s, n);
  /* The bytes after the text are not part of it: shift the text to end the
   * block where it can (alignment 0), else put digits after it, which a
   * parser reading too far would take. */
  char *end_text = copy;
  if ((align & 7) == 0) {
    end_text = block + 8;
    memmove(end_text, s, n);
  } else {
    memset(copy + n, '7', (size_t)(8 - (align & 7)));
  }
  char *e;
  errno = 0;
  double want = strtod(s, &e);
  int want_ok = *e == 0 && n > 0;
  double got = 0;
  int ok = pt__csv_parse_double(end_text, (int64_t)n, &got);
  if (ok != want_ok || (ok && memcmp(&got, &want, 8) != 0)) {
    fprintf(stderr, "'%s': got %d %.17g, strtod %d %.17g\n", s, ok, got, want_ok, want);
    fail();
  }
  free(block);
  checked++;
}

static void check_double(const char *s) { check_double_at(s, (int)(rnd() & 7)); }

static double random_double(void) {
  for (;;) {
    uint64_t bits = rnd();
    double d;
    memcpy(&d, &bits, 8);
    if (isfinite(d)) return d;
  }
}

/* Random finite doubles (every exponent, subnormals included) printed with
 * 17, 16 and 15 significant digits and in the shortest form that reads back
 * as the same double. */
static void test_printed_doubles(void **state) {
  (void)state;
  char buf[64];
  for (int k = 0; k < 150000; k++) {
    double d = random_double();
    snprintf(buf, sizeof buf, "%.17g", d);
    check_double(buf);
    snprintf(buf, sizeof buf, "%.16g", d);
    check_double(buf);
    snprintf(buf, sizeof buf, "%.15e", d);
    check_double(buf);
    for (int p = 1; p <= 17; p++) {
      snprintf(buf, sizeof buf, "%.*g", p, d);
      if (strtod(buf, NULL) == d) break;
    }
    check_double(buf);
  }
  /* The bench's shape: 17 digits in [-1, 1], most past 2^53. */
  for (int k = 0; k < 150000; k++) {
    double d = (double)(rnd() >> 11) / 9007199254740992.0 * 2 - 1;
    snprintf(buf, sizeof buf, "%.17g", d);
    check_double_at(buf, k & 7);
    snprintf(buf, sizeof buf, "%.2f", d * 1e8);
    check_double_at(buf, k & 7);
  }
}

/* Random digit strings of 1 to 25 digits with a point anywhere (or none),
 * leading zeros sometimes, and exponents -350..310. */
static void test_digit_strings(void **state) {
  (void)state;
  char buf[96];
  for (int k = 0; k < 500000; k++) {
    int nd = 1 + (int)(rnd() % 25), len = 0;
    if (rnd() & 1) buf[len++] = rnd() & 1 ? '-' : '+';
    int point = (int)(rnd() % (uint64_t)(nd + 2)) - 1; /* -1: none */
    int zeros = rnd() % 4 == 0 ? (int)(rnd() % 6) : 0;
    for (int z = 0; z < zeros; z++) buf[len++] = '0';
    for (int i = 0; i < nd; i++) {
      if (i == point) buf[len++] = '.';
      buf[len++] = (char)('0' + rnd() % 10);
    }
    if (point == nd) buf[len++] = '.';
    if (rnd() % 8 != 0) {
      int e = (int)(rnd() % 661) - 350;
      len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%d", rnd() & 1 ? "e" : "E", e);
    }
    buf[len] = 0;
    if (strcmp(buf, ".") == 0 || strcmp(buf, "-.") == 0 || strcmp(buf, "+.") == 0) continue;
    check_double(buf);
  }
}

/* Points exactly halfway between two adjacent doubles (ties go to the even
 * one) and the texts just either side of them, written as integers, as
 * fractions with exact decimal digits, and cut to 17-25 digits. */
static void test_halfway(void **state) {
  (void)state;
  char buf[128];
  for (int k = 0; k < 100000; k++) {
    /* m / 2^j with m odd in [2^53, 2^54): halfway between two doubles, and
     * exactly j decimals long (a long double holds it exactly). */
    uint64_t m = (((uint64_t)1 << 53) | (rnd() >> 11)) | 1;
    int j = (int)(rnd() % 12);
    long double x = (long double)m / (long double)((uint64_t)1 << j);
    snprintf(buf, sizeof buf, "%.*Lf", j, x);
    check_double(buf);
    int len = (int)strlen(buf);
    /* One unit in the last place above and below, at 19 digits and more. */
    snprintf(buf + len, sizeof buf - (size_t)len, "%s", j ? "0001" : ".0001");
    check_double(buf);
    snprintf(buf, sizeof buf, "%.*Lf", j + 8, x - ldexpl(1, -j - 30));
    check_double(buf);
    /* Halfway points of random doubles, written with 17 to 25 digits. */
    double d = fabs(random_double()), up = nextafter(d, INFINITY);
    if (!isfinite(up)) continue;
    long double mid = ((long double)d + (long double)up) / 2;
    snprintf(buf, sizeof buf, "%.*Le", 16 + (int)(rnd() % 9), mid);
    check_double(buf);
    /* The same scaled by a power of ten, through the exponent. */
    snprintf(buf, sizeof buf, "%.0Lfe%d", (long double)m, (int)(rnd() % 40) - 20);
    check_double(buf);
  }
}

static void test_edges(void **state) {
  (void)state;
  static const char *const texts[] = {
      "0", "-0", "+0", "0.0", "-0.0", "0e0", "-0e-400", "0.000000000000000000000000001",
      "1", "-1", "9007199254740992", "9007199254740993", "9007199254740994",
      "9007199254740995", "18446744073709551615", "18446744073709551616",
      "9999999999999999999", "10000000000000000000", "0.1", "0.2", "0.3",
      "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
      "1e308", "1e309", "-1e400", "2.2250738585072014e-308", "2.2250738585072011e-308",
      "2.2250738585072009e-308", "4.9406564584124654e-324", "2.4703282292062327e-324",
      "2.4703282292062328e-324", "5e-324", "1e-400", "-1e-400", "1e-342", "1e-343",
      "1e308", "1e-22", "1e22", "1e23", "8.98846567431158e307", "123456789012345678901234567890",
      "0.000000000000000000000000000000000000000000001234567890123456789",
      "7.2057594037927933e16", "1.00000000000000011102230246251565404236316680908203125",
      "1.00000000000000011102230246251565404236316680908203124",
      "1.00000000000000011102230246251565404236316680908203126", "inf", "-Infinity", "1.",
      ".5", "-.5e1", "1e+5", "1E-5", "0001.2500", "00000000000000000000000000001",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    for (int a = 0; a < 8; a++) check_double_at(texts[i], a);
  /* Not numbers: refused, as strtod would not read all of them. */
  static const char *const bad[] = {"", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", "1x",
                                    "0x10", " 1", "1 ", "--1", "1e5.5", "nan(abc)x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    double v;
    assert_int_equal(pt__csv_parse_double(bad[i], (int64_t)strlen(bad[i]), &v), 0);
  }
  /* Every subnormal exponent and the normal boundary. */
  char buf[64];
  for (int k = 0; k < 100000; k++) {
    double d = ldexp((double)(rnd() >> 11), -1074 - 53 + (int)(rnd() % 80));
    snprintf(buf, sizeof buf, "%.*g", 1 + (int)(rnd() % 17), d);
    check_double(buf);
  }
  fprintf(stderr, "%lld texts held against strtod\n", (long long)checked);
}

/* Integers of every length at every alignment against strtoll. */
static void test_ints(void **state) {
  (void)state;
  char buf[48];
  for (int k = 0; k < 200000; k++) {
    int64_t v = (int64_t)rnd() >> (rnd() % 64);
    int len = snprintf(buf, sizeof buf, k % 3 == 0 ? "%+lld" : "%lld", (long long)v);
    char *block = malloc((size_t)len + 8); /* owned here */
    assert_non_null(block);
    char *s = block + (k & 7);
    memcpy(s, buf, (size_t)len);
    memset(s + len, '5', (size_t)(8 - (k & 7)));
    int64_t got;
    assert_int_equal(pt__csv_parse_int(s, len, &got), 1);
    assert_int_equal(got, v);
    /* A non-digit anywhere makes it no integer. */
    int at = (int)(rnd() % (uint64_t)len);
    char keep = s[at];
    s[at] = (char)("x:/ .e"[rnd() % 6]);
    if (!(at == 0 && (s[at] == '+' || s[at] == '-')))
      assert_int_equal(pt__csv_parse_int(s, len, &got), 0);
    s[at] = keep;
    free(block);
  }
  int64_t got;
  assert_int_equal(pt__csv_parse_int("9223372036854775807", 19, &got), 1);
  assert_int_equal(got, INT64_MAX);
  assert_int_equal(pt__csv_parse_int("-9223372036854775808", 20, &got), 1);
  assert_int_equal(got, INT64_MIN);
  assert_int_equal(pt__csv_parse_int("9223372036854775808", 19, &got), 0);
  assert_int_equal(pt__csv_parse_int("-", 1, &got), 0);
  assert_int_equal(pt__csv_parse_int("", 0, &got), 0);
}

/* ts parsed from a heap block of exactly its length. */
static int parse_ts_exact(const char *s, int64_t *out) {
  size_t n = strlen(s);
  char *copy = malloc(n + 1); /* owned here */
  assert_non_null(copy);
  memcpy(copy, s, n);
  int ok = pt__csv_parse_ts(copy, (int64_t)n, out);
  free(copy);
  return ok;
}

/* Random instants in years 0001-9999 as YYYY-MM-DD, YYYY-MM-DD HH:MM:SS and
 * YYYY-MM-DDTHH:MM:SS.ffffff against timegm; then, one byte changed, the
 * fast layouts (19 and 26 bytes) must agree with the general path, reached
 * by the same text with a Z after it. */
static void test_dates_and_timestamps(void **state) {
  (void)state;
  char buf[64], z[80];
  for (int k = 0; k < 200000; k++) {
    struct tm tm = {0};
    tm.tm_year = 1 + (int)(rnd() % 9999) - 1900;
    tm.tm_mon = (int)(rnd() % 12);
    tm.tm_mday = 1 + (int)(rnd() % 28);
    tm.tm_hour = (int)(rnd() % 24);
    tm.tm_min = (int)(rnd() % 60);
    tm.tm_sec = (int)(rnd() % 60);
    int64_t us = (int64_t)(rnd() % 1000000);
    int64_t secs = (int64_t)timegm(&tm), day = secs / 86400 - (secs % 86400 < 0), got;
    snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    assert_int_equal(pt__csv_parse_date(buf, 10, &got), 1);
    assert_int_equal(got, day);
    assert_int_equal(parse_ts_exact(buf, &got), 1);
    assert_int_equal(got, day * 86400 * 1000000);
    snprintf(buf + 10, sizeof buf - 10, " %02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
    assert_int_equal(parse_ts_exact(buf, &got), 1);
    assert_int_equal(got, secs * 1000000);
    snprintf(buf + 19, sizeof buf - 19, ".%06lld", (long long)us);
    buf[10] = k & 1 ? 'T' : ' ';
    assert_int_equal(parse_ts_exact(buf, &got), 1);
    assert_int_equal(got, secs * 1000000 + us);
    /* One byte changed (never to the Z the general path may take). */
    int n = k % 3 == 0 ? 19 : 26;
    buf[n] = 0;
    buf[rnd() % (uint64_t)n] = "0123456789:-. TxY9"[rnd() % 18];
    snprintf(z, sizeof z, "%sZ", buf);
    int64_t fast = 0, general = 0;
    int okf = parse_ts_exact(buf, &fast), okg = parse_ts_exact(z, &general);
    if (okf != okg || (okf && fast != general)) {
      fprintf(stderr, "'%s': %d %lld, '%s': %d %lld\n", buf, okf, (long long)fast, z, okg,
              (long long)general);
      fail();
    }
  }
  int64_t got;
  assert_int_equal(pt__csv_parse_date("2024-02-29", 10, &got), 1);
  assert_int_equal(pt__csv_parse_date("2023-02-29", 10, &got), 0);
  assert_int_equal(pt__csv_parse_date("1900-02-29", 10, &got), 0);
  assert_int_equal(pt__csv_parse_date("2000-02-29", 10, &got), 1);
  assert_int_equal(pt__csv_parse_date("2023-13-01", 10, &got), 0);
  assert_int_equal(pt__csv_parse_date("2023-1a-01", 10, &got), 0);
  /* Year 0 (a leap year) and 9999, the ends of what four digits hold. */
  assert_int_equal(pt__csv_parse_date("0000-01-01", 10, &got), 1);
  assert_int_equal(got, -719528);
  assert_int_equal(pt__csv_parse_date("0000-02-29", 10, &got), 1);
  assert_int_equal(got, -719528 + 59);
  assert_int_equal(pt__csv_parse_date("0000-03-01", 10, &got), 1);
  assert_int_equal(got, -719468);
  assert_int_equal(pt__csv_parse_date("9999-12-31", 10, &got), 1);
  assert_int_equal(got, 2932896);
  assert_int_equal(parse_ts_exact("0000-01-01 00:00:00", &got), 1);
  assert_int_equal(got, -719528LL * 86400 * 1000000);
  assert_int_equal(parse_ts_exact("2023-11-24 24:00:00", &got), 0);
  assert_int_equal(parse_ts_exact("2023-11-24 23:60:00.000000", &got), 0);
  assert_int_equal(parse_ts_exact("2023-11-24 23:59:60", &got), 0);
  assert_int_equal(parse_ts_exact("2023-11-24 23:59:59.12345Z", &got), 1);
  assert_int_equal(parse_ts_exact("1969-12-31T23:59:59.999999", &got), 1);
  assert_int_equal(got, -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_printed_doubles), cmocka_unit_test(test_digit_strings),
      cmocka_unit_test(test_halfway),         cmocka_unit_test(test_edges),
      cmocka_unit_test(test_ints),            cmocka_unit_test(test_dates_and_timestamps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
