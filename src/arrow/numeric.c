/* numeric.c — the two value encodings of Arrow that C has no type for:
 * IEEE half-precision floats (float16) and decimals (a 32- to 256-bit two's
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
/* Decimals of 4 to 32 bytes: little-endian two's complement integers, held
 * here as up to eight 32-bit limbs (least significant first) so that one
 * routine serves decimal32 to decimal256. */

#define MAX_LIMBS 8

static void negate_limbs(uint32_t *limb, int n) {
  uint64_t carry = 1;
  for (int i = 0; i < n; i++) {
    uint64_t x = (uint64_t)(uint32_t)~limb[i] + carry;
    limb[i] = (uint32_t)x;
    carry = x >> 32;
  }
}

/* limb /= d; returns the remainder. */
static uint32_t div_limbs(uint32_t *limb, int n, uint32_t d) {
  uint64_t rem = 0;
  for (int i = n - 1; i >= 0; i--) {
    uint64_t cur = (rem << 32) | limb[i];
    limb[i] = (uint32_t)(cur / d);
    rem = cur % d;
  }
  return (uint32_t)rem;
}

/* limb = limb * 10 + d. */
static void mul_add_limbs(uint32_t *limb, int n, uint32_t d) {
  uint64_t carry = d;
  for (int i = 0; i < n; i++) {
    uint64_t x = (uint64_t)limb[i] * 10 + carry;
    limb[i] = (uint32_t)x;
    carry = x >> 32;
  }
}

static bool limbs_zero(const uint32_t *limb, int n) {
  for (int i = 0; i < n; i++)
    if (limb[i] != 0) return false;
  return true;
}

int pt__decimal_to_string(const uint8_t *le, int bytes, int32_t scale, char *out) {
  out[0] = '\0';
  if ((bytes != 4 && bytes != 8 && bytes != 16 && bytes != 32) || scale < -76 || scale > 76)
    return -1;
  uint32_t limb[MAX_LIMBS];
  int nl = bytes / 4;
  for (int i = 0; i < nl; i++) limb[i] = pt__load_u32(le + 4 * i);
  int neg = (limb[nl - 1] >> 31) != 0;
  /* The magnitude; the most negative value stays 2^(bits-1), still right
   * read as unsigned. */
  if (neg) negate_limbs(limb, nl);
  char digits[80];
  int nd = 0;
  do {
    digits[nd++] = (char)('0' + div_limbs(limb, nl, 10));
  } while (!limbs_zero(limb, nl));
  /* digits[] is backwards; nd <= 78. */
  int n = 0;
  if (neg) out[n++] = '-';
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

int pt__decimal128_to_string(const uint8_t le16[16], int32_t scale, char *out) {
  /* Beyond what pt_type_parse accepts for decimal128 (and 48 bytes). */
  if (scale < -38 || scale > 38) {
    out[0] = '\0';
    return -1;
  }
  return pt__decimal_to_string(le16, 16, scale, out);
}

int pt__decimal_from_string(const char *text, int bytes, int32_t precision, int32_t scale,
                            uint8_t *le, pt_error *err) {
  if (text == NULL) return pt__errorf(err, PT_EINVAL, "decimal text is NULL");
  int max_digits = bytes == 4 ? 9 : bytes == 8 ? 18 : bytes == 16 ? 38 : bytes == 32 ? 76 : 0;
  if (max_digits == 0) return pt__errorf(err, PT_EINVAL, "a decimal has no %d-byte form", bytes);
  if (precision < 1 || precision > max_digits)
    return pt__errorf(err, PT_EINVAL, "decimal%d precision %d is not in 1 to %d", bytes * 8,
                      (int)precision, max_digits);
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
  uint32_t limb[MAX_LIMBS] = {0};
  int nl = bytes / 4;
  if (first >= 0) {
    int64_t power_last = int_digits - 1 - last + exponent;
    int64_t power_first = int_digits - 1 - first + exponent;
    if (power_last < -(int64_t)scale) goto too_many_fraction_digits;
    if (power_first + scale + 1 > precision) goto out_of_precision;
    /* At most `precision` digits: the value stays below 10^precision, below
     * 2^(bits-1), so neither the products nor the negation overflow. */
    k = 0;
    for (const char *q = mant; q < mant_end; q++) {
      if (*q == '.') continue;
      if (k >= first && k <= last) mul_add_limbs(limb, nl, (uint32_t)(*q - '0'));
      k++;
    }
    for (int64_t i = 0; i < power_last + scale; i++) mul_add_limbs(limb, nl, 0);
  }
  if (neg) negate_limbs(limb, nl);
  for (int i = 0; i < nl; i++) pt__store_u32(le + 4 * i, limb[i]);
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

double pt__decimal128_to_double(const uint8_t le16[16], int32_t scale) {
  uint64_t lo;
  int64_t hi;
  memcpy(&lo, le16, 8);
  memcpy(&hi, le16 + 8, 8);
  return ((double)hi * 18446744073709551616.0 + (double)lo) / pow(10.0, scale);
}

int pt__decimal128_from_string(const char *text, int32_t precision, int32_t scale,
                               uint8_t le16[16], pt_error *err) {
  return pt__decimal_from_string(text, 16, precision, scale, le16, err);
}
