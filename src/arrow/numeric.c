/* numeric.c — the two value encodings of Arrow that C has no type for:
 * IEEE half-precision floats (float16) and decimal128 (a 128-bit two's
 * complement integer scaled by a power of ten), converted to and from double
 * and decimal text. Both conversions are exact or correctly rounded: they feed
 * JSON output and builders that users compare against pyarrow.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arrow/arrow.h"

/* ------------------------------------------------------------------------ */
/* Half floats: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. */

double pt__half_to_double(uint16_t h) {
  int sign = h >> 15;
  int exp = (h >> 10) & 0x1f;
  int mant = h & 0x3ff;
  double d;
  if (exp == 0) d = ldexp(mant, -24); /* zero and subnormals */
  else if (exp == 31) d = mant ? NAN : INFINITY;
  else d = ldexp(mant | 0x400, exp - 25);
  return sign ? -d : d;
}

/* Rounds m >> shift to nearest, ties to even. */
static uint64_t round_shift(uint64_t m, int shift) {
  if (shift <= 0) return m;
  if (shift >= 64) return 0;
  uint64_t q = m >> shift;
  uint64_t rem = m & ((UINT64_C(1) << shift) - 1);
  uint64_t half = UINT64_C(1) << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) q++;
  return q;
}

uint16_t pt__double_to_half(double d) {
  /* From the bits of the double, so there is one rounding (going through
   * float would round twice). */
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  uint16_t sign = (uint16_t)((bits >> 48) & 0x8000);
  int exp = (int)((bits >> 52) & 0x7ff);
  uint64_t mant = bits & ((UINT64_C(1) << 52) - 1);
  if (exp == 0x7ff) /* inf, or nan kept quiet with its top payload bits */
    return mant ? (uint16_t)(sign | 0x7e00 | ((mant >> 42) & 0x3ff)) : (uint16_t)(sign | 0x7c00);
  int e = exp - 1023; /* unbiased; double subnormals are far below half's range */
  if (e > 15) return sign | 0x7c00;
  if (e < -25) return sign; /* below half the smallest subnormal: rounds to 0 */
  uint64_t m = mant | (UINT64_C(1) << 52);
  if (e < -14) {
    /* Half subnormal: value = h * 2^-24, so h = m * 2^(e - 52 + 24). A
     * carry into 0x400 gives the smallest normal, which is correct. */
    return (uint16_t)(sign | round_shift(m, 28 - e));
  }
  /* Normal: keep 10 of 52 mantissa bits; a carry out of the mantissa bumps
   * the exponent, and past the largest finite value that is infinity. */
  uint64_t hm = round_shift(m, 42); /* 11 bits with the implicit one */
  uint32_t h = ((uint32_t)(e + 15) << 10) + (uint32_t)(hm - 0x400);
  if (h >= 0x7c00) return sign | 0x7c00;
  return (uint16_t)(sign | h);
}

/* ------------------------------------------------------------------------ */
/* decimal128 */

typedef unsigned __int128 u128;
typedef __int128 i128;

int pt__decimal128_to_string(const uint8_t le16[16], int32_t scale, char *out) {
  uint64_t lo = pt__load_u64(le16), hi = pt__load_u64(le16 + 8);
  u128 u = ((u128)hi << 64) | lo;
  int neg = (hi >> 63) != 0;
  if (neg) u = ~u + 1; /* the magnitude; INT128_MIN stays 2^127, still right */
  char digits[48];
  int nd = 0;
  do {
    digits[nd++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u != 0);
  /* digits[] is backwards; nd <= 39. */
  int n = 0;
  if (neg) out[n++] = '-';
  if (scale < -38 || scale > 38) {
    /* Out of what pt_type_parse accepts: say so rather than overflow out. */
    out[0] = '\0';
    return -1;
  }
  if (scale <= 0) {
    for (int i = nd - 1; i >= 0; i--) out[n++] = digits[i];
    if (scale < 0 && !(nd == 1 && digits[0] == '0')) {
      /* Exponent form keeps the text short: 123 at scale -2 is 123E+2. */
      n += snprintf(out + n, 8, "E+%d", -scale);
    }
  } else if (nd > scale) {
    for (int i = nd - 1; i >= scale; i--) out[n++] = digits[i];
    out[n++] = '.';
    for (int i = scale - 1; i >= 0; i--) out[n++] = digits[i];
  } else {
    out[n++] = '0';
    out[n++] = '.';
    for (int i = scale; i > nd; i--) out[n++] = '0';
    for (int i = nd - 1; i >= 0; i--) out[n++] = digits[i];
  }
  out[n] = '\0';
  return n;
}

int pt__decimal128_from_string(const char *text, int32_t precision, int32_t scale,
                               uint8_t le16[16], pt_error *err) {
  if (text == NULL) return pt__errorf(err, PT_EINVAL, "decimal text is NULL");
  if (precision < 1 || precision > 38)
    return pt__errorf(err, PT_EINVAL, "decimal128 precision %d is not in 1 to 38",
                      (int)precision);
  const char *p = text;
  int neg = 0;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  /* Syntax: digits with at most one point, at least one digit, then an
   * optional exponent. */
  const char *mant = p;
  int64_t n_digits = 0, int_digits = -1;
  for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
    if (*p == '.') {
      if (int_digits >= 0) goto invalid;
      int_digits = n_digits;
    } else {
      n_digits++;
    }
  }
  const char *mant_end = p;
  if (n_digits == 0) goto invalid;
  if (int_digits < 0) int_digits = n_digits;
  int64_t exponent = 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    int eneg = 0;
    if (*p == '+' || *p == '-') eneg = *p++ == '-';
    if (*p < '0' || *p > '9') goto invalid;
    for (; *p >= '0' && *p <= '9'; p++)
      if (exponent < 100000) exponent = exponent * 10 + (*p - '0');
    if (eneg) exponent = -exponent;
  }
  if (*p != '\0') goto invalid;

  /* Digit k (0-based, points skipped) stands for 10^(int_digits-1-k+exponent).
   * Only the span from the first to the last non-zero digit matters. */
  int64_t first = -1, last = -1, k = 0;
  for (const char *q = mant; q < mant_end; q++) {
    if (*q == '.') continue;
    if (*q != '0') {
      if (first < 0) first = k;
      last = k;
    }
    k++;
  }
  u128 v = 0;
  if (first >= 0) {
    int64_t power_last = int_digits - 1 - last + exponent;
    int64_t power_first = int_digits - 1 - first + exponent;
    if (power_last < -(int64_t)scale) goto too_many_fraction_digits;
    if (power_first + scale + 1 > precision) goto out_of_precision;
    k = 0;
    for (const char *q = mant; q < mant_end; q++) {
      if (*q == '.') continue;
      if (k >= first && k <= last) v = v * 10 + (u128)(*q - '0');
      k++;
    }
    for (int64_t i = 0; i < power_last + scale; i++) v *= 10;
  }
  /* precision <= 38 digits, so v < 10^38 < 2^127 and negating is safe. */
  u128 bits = neg ? (u128)(-(i128)v) : v;
  uint64_t lo = (uint64_t)bits, hi = (uint64_t)(bits >> 64);
  memcpy(le16, &lo, 8);
  memcpy(le16 + 8, &hi, 8);
  return PT_OK;

invalid:
  return pt__errorf(err, PT_EINVAL, "'%.64s' is not a decimal number", text);
too_many_fraction_digits:
  return pt__errorf(err, PT_ERANGE,
                    "decimal '%.64s' has more digits after the point than the scale %d allows",
                    text, (int)scale);
out_of_precision:
  return pt__errorf(err, PT_ERANGE, "decimal '%.64s' does not fit in precision %d, scale %d",
                    text, (int)precision, (int)scale);
}
