/* csv_num.c — the CSV reader's conversion of a field's text to a value:
 * integers, doubles, booleans, dates and timestamps, each as Spark reads
 * them. Apart from csv.c so that tests can hold each parser against a
 * reference (strtod for doubles) on millions of inputs. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/csv_num.h"

static int is_digit(char c) { return (unsigned)(c - '0') < 10; }

/* The value of the 8 digits in t, a little-endian word of ASCII digits less
 * '0' in each byte (the first digit lowest): pairs, then quads, then the
 * eight combined with three multiplications instead of eight. */
static uint64_t swar8(uint64_t t) {
  t = (t * 10 + (t >> 8)) & 0x00ff00ff00ff00ffull;   /* 2-digit pairs */
  t = (t * 100 + (t >> 16)) & 0x0000ffff0000ffffull; /* 4-digit quads */
  return (t * 10000 + (t >> 32)) & 0xffffffffull;    /* all eight */
}

static const uint64_t POW10U[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/* Appends the run of digits at s[i, n) to *w (*w * 10^k + their value for k
 * digits; past 19 digits the value wraps, so the caller counts them) and
 * returns the index after the run. One pass: the test for digits and the
 * value come from the same 8-byte load (reading the run, then its value,
 * went over the bytes twice). A byte is a digit when its high nibble is 3
 * and adding 6 keeps it so; a carry or borrow out of a non-digit byte
 * reaches only later bytes, which the shift drops. */
static inline __attribute__((always_inline)) int64_t take_digits(const char *s, int64_t i,
                                                                 int64_t n, uint64_t *w) {
  uint64_t v = *w;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const uint64_t hi = 0xf0f0f0f0f0f0f0f0ull, three = 0x3030303030303030ull;
  for (;;) {
    uint64_t x;
    int64_t left = n - i;
    if (left >= 8) {
      memcpy(&x, s + i, 8);
    } else if (n >= 8 && left > 0) {
      /* The last bytes, loaded as the field's last eight and shifted down:
       * the zero bytes shifted in are no digits. */
      memcpy(&x, s + n - 8, 8);
      x >>= 8 * (8 - left);
    } else {
      break;
    }
    uint64_t bad = ((x & hi) ^ three) | (((x + 0x0606060606060606ull) & hi) ^ three);
    uint64_t t = x - three;
    if (bad) {
      int k = __builtin_ctzll(bad) >> 3;
      if (k) v = v * POW10U[k] + swar8(t << (64 - 8 * k));
      *w = v;
      return i + k;
    }
    v = v * 100000000u + swar8(t);
    i += 8;
  }
#endif
  for (; i < n && is_digit(s[i]); i++) v = v * 10 + (uint64_t)(s[i] - '0');
  *w = v;
  return i;
}

int pt__csv_parse_int(const char *s, int64_t n, int64_t *out) {
  int64_t i = 0;
  int neg = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == n) return 0;
  if (n - i <= 18) { /* cannot overflow */
    uint64_t w = 0;
    if (take_digits(s, i, n, &w) != n) return 0;
    *out = neg ? -(int64_t)w : (int64_t)w;
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

#if defined(__SIZEOF_INT128__)
#define HAVE_EISEL_LEMIRE 1

/* Powers of five 5^q, q in [Q_MIN, Q_MAX], as 128-bit mantissas (the top
 * bit set): for q >= 0 the top 128 bits of 5^q, truncated; for q < 0 the
 * top 128 bits of 1 / 5^-q, plus one (so rounded up) when q >= -27, else
 * truncated, the table the Eisel-Lemire algorithm's error bounds were
 * proved for (Lemire, "Number Parsing at a Gigabyte per Second", 2021).
 * Computed exactly at first use (a millisecond) by the small big-integer
 * routine below rather than carried as ten kilobytes of constants.
 * Below Q_MIN any 19-digit mantissa gives a subnormal or zero, above Q_MAX
 * infinity: strtod's cases. */
enum { Q_MIN = -342, Q_MAX = 308, BIG_LIMBS = 14 };
static uint64_t pow5_hi[Q_MAX - Q_MIN + 1], pow5_lo[Q_MAX - Q_MIN + 1];
static pthread_once_t pow5_once = PTHREAD_ONCE_INIT;
static int pow5_ready; /* set (release) once the table is whole */

/* Unsigned big integers of BIG_LIMBS 64-bit limbs, least significant first:
 * 5^342 < 2^795 and twice it fit. */
typedef struct big {
  uint64_t l[BIG_LIMBS];
} big;

static void big_mul_small(big *a, uint64_t m) {
  unsigned __int128 carry = 0;
  for (int i = 0; i < BIG_LIMBS; i++) {
    carry += (unsigned __int128)a->l[i] * m;
    a->l[i] = (uint64_t)carry;
    carry >>= 64;
  }
}

static int big_bits(const big *a) {
  for (int i = BIG_LIMBS - 1; i >= 0; i--)
    if (a->l[i]) return i * 64 + 64 - __builtin_clzll(a->l[i]);
  return 0;
}

static int big_bit(const big *a, int k) { return k >= 0 && (int)((a->l[k / 64] >> (k % 64)) & 1); }

/* a and b below 2^(64 * nl). */
static int big_cmp(const big *a, const big *b, int nl) {
  for (int i = nl - 1; i >= 0; i--)
    if (a->l[i] != b->l[i]) return a->l[i] < b->l[i] ? -1 : 1;
  return 0;
}

static void big_sub(big *a, const big *b, int nl) { /* a >= b */
  uint64_t borrow = 0;
  for (int i = 0; i < nl; i++) {
    uint64_t x = a->l[i], y = b->l[i];
    a->l[i] = x - y - borrow;
    borrow = x < y || (x == y && borrow);
  }
}

static void big_shl1(big *a, int nl) {
  for (int i = nl - 1; i > 0; i--) a->l[i] = (a->l[i] << 1) | (a->l[i - 1] >> 63);
  a->l[0] <<= 1;
}

static void pow5_init(void) {
  big p = {{1}};
  for (int q = 0; q <= -Q_MIN; q++) {
    int z = big_bits(&p); /* 2^(z-1) <= 5^q < 2^z */
    if (q <= Q_MAX) {      /* the top 128 bits, truncated */
      uint64_t hi = 0, lo = 0;
      for (int k = 0; k < 128; k++) {
        int b = big_bit(&p, z - 1 - k);
        hi = (hi << 1) | (lo >> 63);
        lo = (lo << 1) | (uint64_t)b;
      }
      pow5_hi[q - Q_MIN] = hi;
      pow5_lo[q - Q_MIN] = lo;
    }
    if (q > 0) { /* 2^(z+127) / 5^q by long division: 128 quotient bits */
      big r = {{0}};
      r.l[(z - 1) / 64] = (uint64_t)1 << ((z - 1) % 64); /* 2^(z-1) < 5^q */
      uint64_t hi = 0, lo = 0;
      int nl = z / 64 + 1; /* limbs of r < 2 * 5^q < 2^(z+1) */
      for (int k = 0; k < 128; k++) {
        big_shl1(&r, nl);
        int b = big_cmp(&r, &p, nl) >= 0;
        if (b) big_sub(&r, &p, nl);
        hi = (hi << 1) | (lo >> 63);
        lo = (lo << 1) | (uint64_t)b;
      }
      if (q <= 27 && ++lo == 0) hi++; /* never carries out: hi < 2^64 - 1 */
      pow5_hi[-q - Q_MIN] = hi;
      pow5_lo[-q - Q_MIN] = lo;
    }
    big_mul_small(&p, 5);
  }
  __atomic_store_n(&pow5_ready, 1, __ATOMIC_RELEASE);
}

/* w * 10^q (w > 0, Q_MIN <= q <= Q_MAX) rounded to the nearest double, ties
 * to even, into *out (positive): 1 when the 128-bit product decides the
 * rounding, 0 when it cannot (a product too near a halfway point, or a
 * subnormal or infinite result), for strtod to decide. The steps and
 * their fallback conditions are those of the paper above. */
static int eisel_lemire(uint64_t w, int64_t q, double *out) {
  /* pthread_once alone cost more than the rest of the function. */
  if (!__atomic_load_n(&pow5_ready, __ATOMIC_ACQUIRE)) pthread_once(&pow5_once, pow5_init);
  int clz = __builtin_clzll(w);
  w <<= clz;
  /* floor(q * log2(10)) + 64 + bias - clz; 217706 / 2^16 is log2(10)
   * closely enough for |q| <= 350 (the shift floors: an arithmetic shift on
   * every compiler we build with). */
  int64_t e2 = ((217706 * q) >> 16) + 64 + 1023 - clz;
  uint64_t phi = pow5_hi[q - Q_MIN], plo = pow5_lo[q - Q_MIN];
  unsigned __int128 x = (unsigned __int128)w * phi;
  uint64_t hi = (uint64_t)(x >> 64), lo = (uint64_t)x;
  if ((hi & 0x1ff) == 0x1ff && lo + w < w) {
    /* The truncated table's error may reach the bits that round: add the
     * product with the table's low word. */
    unsigned __int128 y = (unsigned __int128)w * plo;
    uint64_t yhi = (uint64_t)(y >> 64), ylo = (uint64_t)y;
    uint64_t mlo = lo + yhi, mhi = hi + (mlo < lo);
    if ((mhi & 0x1ff) == 0x1ff && mlo + 1 == 0 && ylo + w < w) return 0;
    hi = mhi;
    lo = mlo;
  }
  int msb = (int)(hi >> 63);
  uint64_t m = hi >> (msb + 9); /* 54 bits: the 53 kept and one to round */
  e2 -= 1 ^ msb;
  if (lo == 0 && (hi & 0x1ff) == 0 && (m & 3) == 1) return 0; /* maybe a tie */
  m += m & 1;
  m >>= 1;
  if (m >> 53) { /* rounding carried into a new bit */
    m >>= 1;
    e2++;
  }
  if (e2 <= 0 || e2 >= 0x7ff) return 0; /* subnormal or infinite */
  uint64_t bits = (uint64_t)e2 << 52 | (m & (((uint64_t)1 << 52) - 1));
  memcpy(out, &bits, 8);
  return 1;
}
#endif

/* [sign] digits [. digits] [e [sign] digits] as w * 10^q with w the
 * significant digits (at most 19, else strtod decides), exactly rounded
 * to the nearest double, what strtod would give:
 * - w < 2^53 and |q| <= 22: w and 10^|q| are exact doubles, so w * 10^q
 *   (or w / 10^-q) is one rounding (Clinger's fast path);
 * - else Eisel-Lemire's 128-bit product, which decides all but a few
 *   texts in a billion; those, and what it leaves (subnormals, overflow),
 *   go to strtod. The bench's doubles have 17 digits, past Clinger's
 *   path: they went through x87 long double division before. */
int pt__csv_parse_double(const char *s, int64_t n, double *out) {
  int64_t i = 0;
  int neg = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  int64_t ib = i;
  uint64_t w = 0;
  i = take_digits(s, i, n, &w);
  int64_t ie = i, fb = i, fe = i;
  if (i < n && s[i] == '.') {
    fb = ++i;
    i = take_digits(s, i, n, &w);
    fe = i;
  }
  if (ie == ib && fe == fb) return parse_double_slow(s, n, out); /* nan, inf, not a number */
  int64_t q = -(fe - fb);
  if ((ie - ib) + (fe - fb) > 19) {
    /* w wrapped unless enough of the digits are leading zeros (which are
     * not significant): count them and read the rest again. */
    int64_t z = ib;
    while (z < ie && s[z] == '0') z++;
    w = 0;
    if (z < ie) {
      if ((ie - z) + (fe - fb) > 19) return parse_double_slow(s, n, out);
      take_digits(s, z, ie, &w);
      take_digits(s, fb, fe, &w);
    } else {
      z = fb;
      while (z < fe && s[z] == '0') z++;
      if (fe - z > 19) return parse_double_slow(s, n, out);
      take_digits(s, z, fe, &w);
    }
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
#if defined(HAVE_EISEL_LEMIRE)
  double v;
  if (q >= Q_MIN && q <= Q_MAX && eisel_lemire(w, q, &v)) {
    *out = neg ? -v : v;
    return 1;
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

/* Days since 1970-01-01 of a proleptic Gregorian date of years 0-9999
 * (month 1-12, day 1-31): in unsigned 32-bit arithmetic, one 400-year
 * era later so that nothing is negative, where the int64 divisions of
 * signed values had been a twentieth of a read. */
static int64_t days_from_civil(unsigned y, unsigned m, unsigned d) {
  y = y + 400 - (m <= 2);
  unsigned era = y / 400, yoe = y - era * 400;
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (int64_t)era * 146097 + doe - 719468 - 146097;
}

/* The value of the two digits at s, with NOT_TWO set when either is no
 * digit: no loop, and one test for several (their bitwise or), where
 * digits() had a branch per byte. */
enum { NOT_TWO = 1 << 10 };
static inline unsigned two(const char *s) {
  unsigned a = (unsigned)(unsigned char)s[0] - '0', b = (unsigned)(unsigned char)s[1] - '0';
  return ((a * 10 + b) & 127) | (unsigned)(a > 9 || b > 9) * NOT_TWO;
}

/* The date in the 10 bytes at s; inline in the timestamp parser too. */
static inline int date10(const char *s, int64_t *out) {
  if (s[4] != '-' || s[7] != '-') return 0;
  unsigned yh = two(s), yl = two(s + 2), m = two(s + 5), d = two(s + 8);
  if ((yh | yl | m | d) & NOT_TWO) return 0;
  unsigned y = yh * 100 + yl;
  static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return 0;
  *out = days_from_civil(y, m, d);
  return 1;
}

int pt__csv_parse_date(const char *s, int64_t n, int64_t *out) { return n == 10 && date10(s, out); }

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint64_t load8(const char *s) {
  uint64_t x;
  memcpy(&x, s, 8);
  return x;
}

/* 1 when the bytes of x under mask (0xff per byte) are all ASCII digits.
 * A carry out of a byte (only one of 0xfa and over) reaches only later
 * bytes, and the first bad byte is caught itself. */
static inline int all_digits(uint64_t x, uint64_t mask) {
  const uint64_t hi = 0xf0f0f0f0f0f0f0f0ull, three = 0x3030303030303030ull;
  return ((((x & hi) ^ three) | (((x + 0x0606060606060606ull) & hi) ^ three)) & mask) == 0;
}

/* Byte j of the result: the two-digit value of bytes j and j + 1 of x,
 * the bytes outside mask read as '0' (no byte carries: 9 * 10 + 9 < 256). */
static inline uint64_t pairs(uint64_t x, uint64_t mask) {
  const uint64_t zero = 0x3030303030303030ull;
  uint64_t t = ((x & mask) | (zero & ~mask)) - zero;
  return t * 10 + (t >> 8);
}

/* YYYY-MM-DD[T ]HH:MM:SS and the same with .ffffff (n 19 or 26), what most
 * writers write (pyarrow, Spark, Python's isoformat): from four 8-byte
 * loads with no per-byte test (two digits at a time had cost twice as
 * much). 1 with *out set; 0 when the text is another layout or not valid,
 * for the general path to decide. */
static int ts_fixed(const char *s, int64_t n, int64_t *out) {
  /* bytes 0 1 . 3 4 . 6 7 of "YY-MM-DD" and "HH:MM:SS" are digits */
  const uint64_t M2 = 0xffff00ffff00ffffull, MY = 0xffff, MF = 0xffffffffffff0000ull;
  const uint64_t DASHES = (uint64_t)'-' << 16 | (uint64_t)'-' << 40,
                 COLONS = (uint64_t)':' << 16 | (uint64_t)':' << 40;
  if (s[10] != ' ' && s[10] != 'T') return 0;
  uint64_t a = load8(s), b = load8(s + 2), c = load8(s + 11), f = 0;
  if ((b & ~M2) != DASHES || (c & ~M2) != COLONS) return 0;
  if (!all_digits(a, MY) || !all_digits(b, M2) || !all_digits(c, M2)) return 0;
  uint64_t pa = pairs(a, MY), pb = pairs(b, M2), pc = pairs(c, M2);
  unsigned y = (unsigned)(pa & 0xff) * 100 + (unsigned)(pb & 0xff);
  unsigned m = (unsigned)(pb >> 24) & 0xff, d = (unsigned)(pb >> 48) & 0xff;
  unsigned h = (unsigned)pc & 0xff, mi = (unsigned)(pc >> 24) & 0xff,
           sc = (unsigned)(pc >> 48) & 0xff;
  if (n == 26) { /* "S.ffffff": the point, then six digits */
    uint64_t x = load8(s + 18);
    if ((x & 0xff00) != (uint64_t)'.' << 8 || !all_digits(x, MF)) return 0;
    uint64_t pf = pairs(x, MF);
    f = ((pf >> 16) & 0xff) * 10000 + ((pf >> 32) & 0xff) * 100 + ((pf >> 48) & 0xff);
  }
  static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] || h > 23 || mi > 59 || sc > 59) return 0;
  if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 0;
  *out = ((days_from_civil(y, m, d) * 24 + h) * 60 + mi) * 60 * 1000000 +
         (int64_t)sc * 1000000 + (int64_t)f;
  return 1;
}
#endif

/* YYYY-MM-DD[T ]HH:MM[:SS[.f{1,9}]][Z] to microseconds since the epoch
 * (digits past the sixth fraction digit are truncated). */
int pt__csv_parse_ts(const char *s, int64_t n, int64_t *out) {
  int64_t days;
  int hh, mi, ss = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if ((n == 19 || n == 26) && ts_fixed(s, n, out)) return 1;
#endif
  if (n == 10 && date10(s, &days)) return *out = days * 86400 * 1000000, 1;
  if (n < 16 || (s[10] != 'T' && s[10] != ' ')) return 0;
  if (!date10(s, &days)) return 0;
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
