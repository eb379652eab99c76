/* csv_num.c — the CSV reader's conversion of a field's text to a value:
 * integers, doubles, booleans, dates and timestamps, each as Spark reads
 * them. Apart from csv.c so that tests can hold each parser against a
 * reference (strtod for doubles) on millions of inputs. */
#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/csv_num.h"

static int is_digit(char c) { return (unsigned)(c - '0') < 10; }

/* The value of 8 ASCII digits (checked by the caller) read as one
 * little-endian word: pairs, then quads, then the eight combined with
 * three multiplications instead of eight. */
static uint64_t digits8(const char *s) {
  uint64_t v;
  memcpy(&v, s, 8);
  v -= 0x3030303030303030ull;
  v = (v * 10 + (v >> 8)) & 0x00ff00ff00ff00ffull;          /* 2-digit pairs */
  v = (v * 100 + (v >> 16)) & 0x0000ffff0000ffffull;        /* 4-digit quads */
  return (v * 10000 + (v >> 32)) & 0xffffffffull;           /* all eight */
}

/* The end of the run of digits at s[i] (before n): eight bytes at a time,
 * a byte being a digit when its high nibble is 3 and adding 6 keeps it so
 * (a carry out of a non-digit byte reaches only later bytes). */
static int64_t digit_run(const char *s, int64_t i, int64_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const uint64_t hi = 0xf0f0f0f0f0f0f0f0ull, three = 0x3030303030303030ull;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, s + i, 8);
    uint64_t bad = ((v & hi) ^ three) | (((v + 0x0606060606060606ull) & hi) ^ three);
    if (bad) return i + (__builtin_ctzll(bad) >> 3);
  }
#endif
  while (i < n && is_digit(s[i])) i++;
  return i;
}

/* The value of the n (at most 19) digits at s. */
static uint64_t digits_value(const char *s, int64_t n) {
  uint64_t v = 0;
  int64_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  for (; i + 8 <= n; i += 8) v = v * 100000000u + digits8(s + i);
#endif
  for (; i < n; i++) v = v * 10 + (uint64_t)(s[i] - '0');
  return v;
}

int pt__csv_parse_int(const char *s, int64_t n, int64_t *out) {
  int64_t i = 0;
  int neg = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == n) return 0;
  if (n - i <= 18) { /* cannot overflow */
    if (digit_run(s, i, n) != n) return 0;
    int64_t v = (int64_t)digits_value(s + i, n - i);
    *out = neg ? -v : v;
    return 1;
  }
  uint64_t v = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    unsigned dgt = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - dgt) / 10) return 0;
    v = v * 10 + dgt;
  }
  if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) return 0;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 1;
}

/* strtod on a copy: the exact answer for any text, slowly (glibc's
 * multi-precision path for long mantissas). */
static int parse_double_slow(const char *s, int64_t n, double *out) {
  if (n == 0 || n > 64) return 0;
  for (int64_t i = 0; i < n; i++) {
    char c = s[i];
    /* strtod also reads hex floats and leading spaces; CSV numbers have
     * neither. */
    if (c == 'x' || c == 'X' || c == ' ' || c == '\t') return 0;
  }
  char buf[65];
  memcpy(buf, s, (size_t)n);
  buf[n] = 0;
  char *e;
  errno = 0;
  double v = strtod(buf, &e);
  if (e != buf + n) return 0;
  *out = v;
  return 1;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* [sign] digits [. digits] [e [sign] digits] as w * 10^q with w the first
 * 19 significant digits, exactly rounded to the nearest double whenever
 * one correctly rounded operation gives it (what strtod would give), else
 * through strtod. Measured here: most of a CSV read went to strtod before.
 * - w < 2^53 and |q| <= 22: w and 10^|q| are exact doubles, so w * 10^q
 *   (or w / 10^-q) is one rounding (Clinger's fast path).
 * - with an x87 long double (64-bit mantissa), w < 2^64 and |q| <= 27:
 *   w and 10^|q| are exact long doubles; the product or quotient rounded to
 *   64 bits, then to 53, equals the one rounding to 53 bits unless the
 *   64-bit result lies exactly halfway between two doubles, which is
 *   checked (then strtod decides). */
int pt__csv_parse_double(const char *s, int64_t n, double *out) {
  int64_t i = 0;
  int neg = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  /* The digit runs before and after the point, then their value without
   * leading zeros (which are not significant digits). */
  int64_t ib = i;
  i = digit_run(s, i, n);
  int64_t ie = i, fb = i, fe = i;
  if (i < n && s[i] == '.') {
    fb = ++i;
    i = digit_run(s, i, n);
    fe = i;
  }
  if (ie == ib && fe == fb) return parse_double_slow(s, n, out); /* nan, inf, not a number */
  int64_t q = -(fe - fb);
  uint64_t w;
  int64_t z = ib;
  while (z < ie && s[z] == '0') z++;
  if (z < ie) {
    if ((ie - z) + (fe - fb) > 19) return parse_double_slow(s, n, out);
    w = digits_value(s + z, ie - z);
    int64_t k = fb;
    for (; k + 8 <= fe; k += 8) w = w * 100000000u + digits8(s + k);
    for (; k < fe; k++) w = w * 10 + (uint64_t)(s[k] - '0');
  } else {
    z = fb;
    while (z < fe && s[z] == '0') z++;
    if (fe - z > 19) return parse_double_slow(s, n, out);
    w = digits_value(s + z, fe - z);
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    int64_t j = i + 1, e = 0;
    int eneg = 0;
    if (j < n && (s[j] == '-' || s[j] == '+')) eneg = s[j++] == '-';
    if (j == n) return 0;
    for (; j < n && is_digit(s[j]); j++) {
      if (e > 100000) return parse_double_slow(s, n, out);
      e = e * 10 + (s[j] - '0');
    }
    q += eneg ? -e : e;
    i = j;
  }
  if (i != n) return parse_double_slow(s, n, out);
  if (w == 0) {
    *out = neg ? -0.0 : 0.0;
    return 1;
  }
  if (w < ((uint64_t)1 << 53) && q >= -22 && q <= 22) {
    double v = (double)w;
    v = q < 0 ? v / POW10[-q] : v * POW10[q];
    *out = neg ? -v : v;
    return 1;
  }
#if defined(__x86_64__) && LDBL_MANT_DIG == 64
  if (q >= -27 && q <= 27) {
    /* 10^k for k <= 27 is exact in 64 bits of mantissa (5^27 < 2^63). */
    static const long double LPOW10[] = {
        1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
        1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
        1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
    long double p = LPOW10[q < 0 ? -q : q];
    long double x = (long double)w;
    x = q < 0 ? x / p : x * p;
    uint64_t m;
    memcpy(&m, &x, 8); /* the explicit 64-bit mantissa of the x87 format */
    if ((m & 0x7ff) != 0x400) {
      double v = (double)x;
      *out = neg ? -v : v;
      return 1;
    }
  }
#endif
  return parse_double_slow(s, n, out);
}

static int ieq(const char *s, int64_t n, const char *w) {
  if ((int64_t)strlen(w) != n) return 0;
  for (int64_t i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != w[i]) return 0;
  }
  return 1;
}

int pt__csv_parse_bool(const char *s, int64_t n, int64_t *out) {
  if (ieq(s, n, "true")) return *out = 1, 1;
  if (ieq(s, n, "false")) return *out = 0, 1;
  return 0;
}

static int digits(const char *s, int k, int *out) {
  int v = 0;
  for (int i = 0; i < k; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int pt__csv_parse_date(const char *s, int64_t n, int64_t *out) {
  int y, m, d;
  if (n != 10 || s[4] != '-' || s[7] != '-') return 0;
  if (!digits(s, 4, &y) || !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d)) return 0;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return 0;
  *out = days_from_civil(y, m, d);
  return 1;
}

/* YYYY-MM-DD[T ]HH:MM[:SS[.f{1,9}]][Z] to microseconds since the epoch
 * (digits past the sixth fraction digit are truncated). */
int pt__csv_parse_ts(const char *s, int64_t n, int64_t *out) {
  int64_t days;
  int hh, mi, ss = 0;
  if (n == 10 && pt__csv_parse_date(s, n, &days)) return *out = days * 86400 * 1000000, 1;
  if (n < 16 || (s[10] != 'T' && s[10] != ' ')) return 0;
  if (!pt__csv_parse_date(s, 10, &days)) return 0;
  if (s[13] != ':' || !digits(s + 11, 2, &hh) || !digits(s + 14, 2, &mi)) return 0;
  int64_t i = 16, us = 0;
  if (i < n && s[i] == ':') {
    if (n < 19 || !digits(s + 17, 2, &ss)) return 0;
    i = 19;
    if (i < n && s[i] == '.') {
      int64_t k = 0;
      static const int64_t SCALE[] = {100000, 10000, 1000, 100, 10, 1};
      for (i++; i < n && is_digit(s[i]); i++, k++) {
        if (k < 6) us += (s[i] - '0') * SCALE[k];
      }
      if (k == 0 || k > 9) return 0;
    }
  }
  if (i < n && s[i] == 'Z') i++;
  if (i != n || hh > 23 || mi > 59 || ss > 59) return 0;
  *out = ((days * 24 + hh) * 60 + mi) * 60 * 1000000 + (int64_t)ss * 1000000 + us;
  return 1;
}
