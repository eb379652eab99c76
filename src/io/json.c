/* json.c — JSON lines output of Arrow record batches: one object per row, keys
 * in schema order (what `protium cat` prints). The value rules are the table
 * in src/io/README.md. Everything is written straight into the caller's
 * pt_buf: no allocation per value, only the buffer's geometric growth.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "core/core.h"

/* Nesting deeper than this is refused rather than risking the stack on a
 * hostile schema (each level is one recursive call). */
#define MAX_DEPTH 128

/* Room for any scalar that is not a string: the longest is a timestamp of an
 * extreme int64 second count (~40 bytes) or a float in exponent form. */
#define SCALAR_ROOM (PT__DECIMAL_TEXT_MAX + 8)

/* ------------------------------------------------------------------------ */
/* Integers */

/* Writes the decimal digits of v at p; returns the count. */
static int u64_to_text(uint64_t v, char *p) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
  return n;
}

static int i64_to_text(int64_t v, char *p) {
  if (v >= 0) return u64_to_text((uint64_t)v, p);
  p[0] = '-';
  /* Negate in unsigned arithmetic so that INT64_MIN has a magnitude. */
  return 1 + u64_to_text(0 - (uint64_t)v, p + 1);
}

/* Zero-padded to at least width digits (width <= 9 here). */
static int u64_to_text_pad(uint64_t v, int width, char *p) {
  char tmp[20];
  int n = u64_to_text(v, tmp);
  int pad = n < width ? width - n : 0;
  for (int i = 0; i < pad; i++) p[i] = '0';
  memcpy(p + pad, tmp, (size_t)n);
  return pad + n;
}

/* ------------------------------------------------------------------------ */
/* Floats: the shortest decimal that reads back to the same value.
 *
 * glibc's printf rounds correctly, so "%.{P-1}e" is the P-digit decimal
 * nearest to x. A decimal of k <= P digits that reads back to x lies within
 * half an ulp of x; while the P-digit grid is coarser than an ulp (P <= 15 for
 * double, 6 for float, 3 for half, for normal numbers), that decimal is the
 * nearest grid point, so one printf at that P finds it if it exists. Above
 * that, each P up to the always-sufficient 17/9/5 is tried; for an exact
 * power of two the interval of values that read back is lopsided (twice as
 * wide above), so the decimal just above the nearest one is tried too.
 * Subnormals have wider intervals and start from P = 1. The result is what
 * Python's repr and David Gay's shortest mode give. */

typedef enum { F16, F32, F64 } float_kind;

typedef struct shortest {
  char digits[24]; /* significant digits, no trailing zeros */
  int n;           /* number of digits */
  int exp10;       /* value = d.ddd × 10^exp10 */
} shortest;

/* Whether text reads back as exactly ax (a non-negative finite value of the
 * given kind). */
static bool reads_back(const char *text, double ax, float_kind kind) {
  switch (kind) {
    case F64: return strtod(text, NULL) == ax;
    case F32: return strtof(text, NULL) == (float)ax;
    case F16: return pt__double_to_half(strtod(text, NULL)) == pt__double_to_half(ax);
  }
  return false;
}

/* Splits printf's "d.ddde±XX" into digits and exponent, dropping trailing
 * zeros. */
static void parse_e_format(const char *text, shortest *s) {
  s->n = 0;
  const char *p = text;
  for (; *p != 'e'; p++) {
    if (*p >= '0' && *p <= '9') s->digits[s->n++] = *p;
  }
  s->exp10 = (int)strtol(p + 1, NULL, 10);
  while (s->n > 1 && s->digits[s->n - 1] == '0') s->n--;
}

/* The candidate one unit of the last digit above s (digits of length prec),
 * written as text for strtod. */
static void next_up(const char *text, int prec, shortest *up, char *out, size_t size) {
  parse_e_format(text, up);
  /* parse_e_format dropped zeros; put the full precision back. */
  while (up->n < prec) up->digits[up->n++] = '0';
  int i = up->n - 1;
  while (i >= 0 && up->digits[i] == '9') up->digits[i--] = '0';
  if (i >= 0) {
    up->digits[i]++;
  } else { /* 999 -> 1000: one digit more, same precision */
    up->digits[0] = '1';
    for (int k = 1; k < up->n; k++) up->digits[k] = '0';
    up->exp10++;
  }
  up->digits[up->n] = '\0';
  snprintf(out, size, "%se%d", up->digits, up->exp10 - (up->n - 1));
  while (up->n > 1 && up->digits[up->n - 1] == '0') up->n--;
}

/* Powers of ten that doubles hold exactly. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The fast path for values that are short decimals (prices, measurements,
 * counts): if some integer N and k give N / 10^k == ax, then "N e-k" reads
 * back as ax (for double, strtod and the division round the same exact
 * quotient of two exact doubles), and a decimal of at most 15 (float: 6)
 * digits that reads back is the unique shortest one (see above). No printf,
 * no strtod. In its range of values every decimal of at most 15 (6) digits
 * has such an N and k: y = ax * 10^k is within 0.2 of N, so nearbyint finds
 * it, and when the search fails the slow path can start one digit later.
 * For float the quotient is rounded twice (to double, then to
 * float); that is exact while 10^k has few enough factors of 5 (k <= 11):
 * a quotient of N < 10^6 by 10^k cannot then lie within 2^-53 of a point
 * halfway between two floats without being on it. */
static int short_decimal(double ax, float_kind kind, shortest *s) {
  double lo = kind == F64 ? 1e-7 : 1e-5, max_n = kind == F64 ? 1e15 : 1e6;
  int max_k = kind == F64 ? 22 : 11;
  if (!(ax >= lo && ax < max_n)) return -1;
  for (int k = 0; k <= max_k; k++) {
    double y = ax * exact_pow10[k];
    if (y >= max_n) return 0;
    double n = nearbyint(y);
    double q = n / exact_pow10[k];
    if (kind == F64 ? q != ax : (float)q != (float)ax) continue;
    char tmp[20];
    int len = u64_to_text((uint64_t)n, tmp);
    s->exp10 = len - 1 - k;
    while (len > 1 && tmp[len - 1] == '0') len--;
    memcpy(s->digits, tmp, (size_t)len);
    s->n = len;
    return 1;
  }
  return 0;
}

static void shortest_digits(double ax, float_kind kind, shortest *s) {
  int first, last;
  int fast = kind == F16 ? -1 : short_decimal(ax, kind, s);
  if (fast == 1) return;
  bool subnormal, pow2;
  int e2;
  double m = frexp(ax, &e2); /* ax = m * 2^e2, m in [0.5, 1) */
  pow2 = m == 0.5;
  switch (kind) {
    case F64: first = 15; last = 17; subnormal = ax < DBL_MIN; break;
    case F32: first = 6; last = 9; subnormal = ax < FLT_MIN; break;
    default: first = 3; last = 5; subnormal = ax < 0x1p-14; break;
  }
  if (subnormal) {
    first = 1;
    pow2 = false; /* subnormal spacing is even on both sides */
  }
  /* When the fast path searched and failed, no decimal of `first` digits
   * reads back: start one digit later. */
  int start = fast == 0 && !subnormal ? first + 1 : first;
  char text[48], up_text[48];
  for (int prec = start; prec <= last; prec++) {
    snprintf(text, sizeof text, "%.*e", prec - 1, ax);
    if (prec == last || reads_back(text, ax, kind)) {
      parse_e_format(text, s);
      return;
    }
    if (pow2 && prec > first) {
      next_up(text, prec, s, up_text, sizeof up_text);
      if (reads_back(up_text, ax, kind)) return;
    }
  }
}

/* Writes a finite float x of the given kind. Layout as Python's repr:
 * positional for 1e-4 <= |x| < 1e16 with ".0" after integral values, else
 * d.ddde±XX (at least two exponent digits). */
static int float_to_text(double x, float_kind kind, char *p) {
  int len = 0;
  if (signbit(x)) p[len++] = '-';
  double ax = fabs(x);
  if (ax == 0) {
    memcpy(p + len, "0.0", 3);
    return len + 3;
  }
  shortest s;
  shortest_digits(ax, kind, &s);
  int e = s.exp10;
  if (e < -4 || e >= 16) {
    p[len++] = s.digits[0];
    if (s.n > 1) {
      p[len++] = '.';
      memcpy(p + len, s.digits + 1, (size_t)(s.n - 1));
      len += s.n - 1;
    }
    p[len++] = 'e';
    p[len++] = e < 0 ? '-' : '+';
    len += u64_to_text_pad((uint64_t)(e < 0 ? -e : e), 2, p + len);
  } else if (e >= 0) {
    /* e + 1 integer digits, padded with zeros past the significant ones. */
    for (int i = 0; i <= e; i++) p[len++] = i < s.n ? s.digits[i] : '0';
    p[len++] = '.';
    if (s.n > e + 1) {
      memcpy(p + len, s.digits + e + 1, (size_t)(s.n - e - 1));
      len += s.n - e - 1;
    } else {
      p[len++] = '0';
    }
  } else {
    p[len++] = '0';
    p[len++] = '.';
    for (int i = 0; i < -e - 1; i++) p[len++] = '0';
    memcpy(p + len, s.digits, (size_t)s.n);
    len += s.n;
  }
  return len;
}

/* NaN and infinities are not JSON numbers: they become strings. */
static int float_value_to_text(double x, float_kind kind, char *p) {
  if (isnan(x)) {
    memcpy(p, "\"NaN\"", 5);
    return 5;
  }
  if (isinf(x)) {
    if (x > 0) {
      memcpy(p, "\"Infinity\"", 10);
      return 10;
    }
    memcpy(p, "\"-Infinity\"", 11);
    return 11;
  }
  return float_to_text(x, kind, p);
}

/* ------------------------------------------------------------------------ */
/* Dates and times */

static int64_t floor_div(int64_t a, int64_t b, int64_t *rem) {
  int64_t q = a / b, r = a % b;
  if (r < 0) {
    r += b;
    q -= 1;
  }
  *rem = r;
  return q;
}

/* Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
 * civil_from_days: shift to an era of 400 years starting in March, so that
 * the leap day is the last day of the shifted year). */
static void civil_from_days(int64_t z, int64_t *year, int *month, int *day) {
  z += 719468; /* days from 0000-03-01 to 1970-01-01 */
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;                                     /* [0, 146096] */
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);              /* [0, 365] */
  int64_t mp = (5 * doy + 2) / 153;                                   /* [0, 11], March = 0 */
  *day = (int)(doy - (153 * mp + 2) / 5 + 1);
  *month = (int)(mp < 10 ? mp + 3 : mp - 9);
  *year = yoe + era * 400 + (*month <= 2);
}

/* "YYYY-MM-DD"; years outside 0..9999 carry a sign and at least four digits
 * ("-0001-12-31", "+10000-01-01"), as ISO 8601's expanded form has them. */
static int date_to_text(int64_t days, char *p) {
  int64_t y;
  int m, d, len = 0;
  civil_from_days(days, &y, &m, &d);
  if (y < 0) {
    p[len++] = '-';
    len += u64_to_text_pad(0 - (uint64_t)y, 4, p + len);
  } else {
    if (y > 9999) p[len++] = '+';
    len += u64_to_text_pad((uint64_t)y, 4, p + len);
  }
  p[len++] = '-';
  len += u64_to_text_pad((uint64_t)m, 2, p + len);
  p[len++] = '-';
  len += u64_to_text_pad((uint64_t)d, 2, p + len);
  return len;
}

static const int64_t unit_per_second[] = {1, 1000, 1000000, 1000000000};
static const int unit_digits[] = {0, 3, 6, 9};

/* ISO 8601 without the quotes; floor division so that instants before 1970
 * have a non-negative time of day and fraction. */
static int timestamp_to_text(int64_t v, pt_time_unit unit, bool utc, char *p) {
  int64_t frac, sod;
  int64_t secs = floor_div(v, unit_per_second[unit], &frac);
  int64_t days = floor_div(secs, 86400, &sod);
  int len = date_to_text(days, p);
  p[len++] = 'T';
  len += u64_to_text_pad((uint64_t)(sod / 3600), 2, p + len);
  p[len++] = ':';
  len += u64_to_text_pad((uint64_t)(sod / 60 % 60), 2, p + len);
  p[len++] = ':';
  len += u64_to_text_pad((uint64_t)(sod % 60), 2, p + len);
  if (unit != PT_SECOND) {
    p[len++] = '.';
    len += u64_to_text_pad((uint64_t)frac, unit_digits[unit], p + len);
  }
  if (utc) p[len++] = 'Z';
  return len;
}

/* A time of day "HH:MM:SS" + fraction digits of the unit, with quotes
 * (validation made it lie within the day). */
static int time_to_text(int64_t v, pt_time_unit unit, char *p) {
  int64_t per = unit_per_second[unit];
  int64_t secs = v / per, frac = v % per;
  int len = 0;
  p[len++] = '"';
  len += u64_to_text_pad((uint64_t)(secs / 3600), 2, p + len);
  p[len++] = ':';
  len += u64_to_text_pad((uint64_t)(secs / 60 % 60), 2, p + len);
  p[len++] = ':';
  len += u64_to_text_pad((uint64_t)(secs % 60), 2, p + len);
  if (unit != PT_SECOND) {
    p[len++] = '.';
    len += u64_to_text_pad((uint64_t)frac, unit_digits[unit], p + len);
  }
  p[len++] = '"';
  return len;
}

/* Intervals as objects of their parts, e.g. {"days": 1, "milliseconds": 5}. */
static int interval_to_text(const pt__view *v, int64_t i, char *p) {
  int64_t len;
  const uint8_t *x = pt__view_get_bytes(v, i, &len);
  int n = 0;
  if (v->type.id == PT_TYPE_INTERVAL_DAY_TIME) {
    memcpy(p + n, "{\"days\": ", 9), n += 9;
    n += i64_to_text(pt__load_i32(x), p + n);
    memcpy(p + n, ", \"milliseconds\": ", 18), n += 18;
    n += i64_to_text(pt__load_i32(x + 4), p + n);
  } else {
    memcpy(p + n, "{\"months\": ", 11), n += 11;
    n += i64_to_text(pt__load_i32(x), p + n);
    memcpy(p + n, ", \"days\": ", 10), n += 10;
    n += i64_to_text(pt__load_i32(x + 4), p + n);
    memcpy(p + n, ", \"nanoseconds\": ", 17), n += 17;
    n += i64_to_text(pt__load_i64(x + 8), p + n);
  }
  p[n++] = '}';
  return n;
}

/* ------------------------------------------------------------------------ */
/* Strings and bytes */

static const char hex_digits[] = "0123456789abcdef";

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or, if it
 * is ill-formed, minus the length of its maximal subpart (the bytes that
 * replace with one U+FFFD, as Unicode recommends and Python does). */
static int utf8_sequence(const uint8_t *s, int64_t n) {
  uint8_t c = s[0];
  int need;
  uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F; /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
  } else {
    return -1;
  }
  for (int k = 1; k < need; k++) {
    if (k >= n) return -k;
    uint8_t b = s[k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -k;
  }
  return need;
}

/* Appends s as a JSON string: '"' and '\' escaped, control characters as
 * \u00XX, valid UTF-8 as is, ill-formed bytes as U+FFFD. */
static int write_string(pt_buf *b, const uint8_t *s, int64_t n) {
  /* Room for the common case (nothing to escape); escapes reserve more. */
  PT_RETURN_NOT_OK(pt__buf_reserve(b, (size_t)n + 2));
  b->data[b->len++] = '"';
  int64_t i = 0;
  while (i < n) {
    int64_t run = i;
    while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\') run++;
    if (run > i) {
      PT_RETURN_NOT_OK(pt__buf_append(b, s + i, (size_t)(run - i)));
      i = run;
      if (i == n) break;
    }
    uint8_t c = s[i];
    if (c < 0x80) {
      char esc[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 15]};
      if (c == '"' || c == '\\') {
        esc[1] = (char)c;
        PT_RETURN_NOT_OK(pt__buf_append(b, esc, 2));
      } else {
        PT_RETURN_NOT_OK(pt__buf_append(b, esc, 6));
      }
      i++;
      continue;
    }
    int len = utf8_sequence(s + i, n - i);
    if (len > 0) {
      PT_RETURN_NOT_OK(pt__buf_append(b, s + i, (size_t)len));
      i += len;
    } else {
      PT_RETURN_NOT_OK(pt__buf_append(b, "\xEF\xBF\xBD", 3));
      i += -len;
    }
  }
  return pt__buf_putc(b, '"');
}

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Appends s as a JSON string of standard base64 with '=' padding. */
static int write_base64(pt_buf *b, const uint8_t *s, int64_t n) {
  PT_RETURN_NOT_OK(pt__buf_reserve(b, (size_t)((n + 2) / 3 * 4 + 2)));
  char *p = b->data + b->len;
  *p++ = '"';
  int64_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
    p[0] = base64_alphabet[v >> 18];
    p[1] = base64_alphabet[(v >> 12) & 63];
    p[2] = base64_alphabet[(v >> 6) & 63];
    p[3] = base64_alphabet[v & 63];
    p += 4;
  }
  if (i < n) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
    p[0] = base64_alphabet[v >> 18];
    p[1] = base64_alphabet[(v >> 12) & 63];
    p[2] = i + 1 < n ? base64_alphabet[(v >> 6) & 63] : '=';
    p[3] = '=';
    p += 4;
  }
  *p++ = '"';
  b->len = (size_t)(p - b->data);
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Values */

static int write_value(const pt__view *v, int64_t i, pt_buf *b);

/* Row i of a struct view as an object. The struct's own offset applies to
 * its children (C Data Interface); each child's offset is added by the
 * getters. */
static int write_object(const pt__view *v, int64_t i, pt_buf *b) {
  PT_RETURN_NOT_OK(pt__buf_putc(b, '{'));
  int64_t row = v->offset + i;
  for (int64_t k = 0; k < v->n_children; k++) {
    if (k > 0) PT_RETURN_NOT_OK(pt__buf_append(b, ", ", 2));
    const char *name = v->schema->children[k]->name;
    if (name == NULL) name = "";
    PT_RETURN_NOT_OK(write_string(b, (const uint8_t *)name, (int64_t)strlen(name)));
    PT_RETURN_NOT_OK(pt__buf_append(b, ": ", 2));
    PT_RETURN_NOT_OK(write_value(&v->children[k], row, b));
  }
  return pt__buf_putc(b, '}');
}

static int write_value(const pt__view *v, int64_t i, pt_buf *b) {
  /* A union row is null when its child's is, but still names the child. */
  bool is_union = v->type.id == PT_TYPE_SPARSE_UNION || v->type.id == PT_TYPE_DENSE_UNION;
  if (!is_union && !pt__view_is_valid(v, i)) return pt__buf_append(b, "null", 4);
  if (v->dictionary != NULL) {
    /* Validation checked the index against the dictionary's length. */
    return write_value(v->dictionary, pt__view_dict_index(v, i), b);
  }
  const uint8_t *bytes;
  int64_t len, start, end;
  char *p;
  switch (v->type.id) {
    case PT_TYPE_NA: return pt__buf_append(b, "null", 4);
    case PT_TYPE_BOOL:
      return pt__view_get_bool(v, i) ? pt__buf_append(b, "true", 4)
                                     : pt__buf_append(b, "false", 5);
    case PT_TYPE_STRING:
    case PT_TYPE_LARGE_STRING:
    case PT_TYPE_STRING_VIEW:
      bytes = pt__view_get_bytes(v, i, &len);
      return write_string(b, bytes, len);
    case PT_TYPE_BINARY:
    case PT_TYPE_LARGE_BINARY:
    case PT_TYPE_BINARY_VIEW:
    case PT_TYPE_FIXED_SIZE_BINARY:
      bytes = pt__view_get_bytes(v, i, &len);
      return write_base64(b, bytes, len);
    case PT_TYPE_LIST:
    case PT_TYPE_LARGE_LIST:
    case PT_TYPE_FIXED_SIZE_LIST:
    case PT_TYPE_MAP: /* an array of {"key": k, "value": v} entries */
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW:
      pt__view_list_range(v, i, &start, &end);
      PT_RETURN_NOT_OK(pt__buf_putc(b, '['));
      for (int64_t k = start; k < end; k++) {
        if (k > start) PT_RETURN_NOT_OK(pt__buf_append(b, ", ", 2));
        PT_RETURN_NOT_OK(write_value(&v->children[0], k, b));
      }
      return pt__buf_putc(b, ']');
    case PT_TYPE_STRUCT: return write_object(v, i, b);
    case PT_TYPE_RUN_END_ENCODED: /* the value of the row's run */
      return write_value(&v->children[1], pt__view_ree_run(v, i), b);
    case PT_TYPE_SPARSE_UNION:
    case PT_TYPE_DENSE_UNION: {
      /* {"child": value}: the key says which child the row's type id
       * selected, which the value alone cannot (two children may hold the
       * same JSON value, and a child's null is not the union's). A child
       * without a name is keyed by its type id. */
      int64_t row;
      int c = pt__view_union_at(v, i, &row);
      const char *name = v->schema->children[c]->name;
      char id_text[8];
      if (name == NULL || name[0] == '\0') {
        int8_t id = ((const int8_t *)v->values)[v->offset + i];
        snprintf(id_text, sizeof id_text, "%d", (int)id);
        name = id_text;
      }
      PT_RETURN_NOT_OK(pt__buf_putc(b, '{'));
      PT_RETURN_NOT_OK(write_string(b, (const uint8_t *)name, (int64_t)strlen(name)));
      PT_RETURN_NOT_OK(pt__buf_append(b, ": ", 2));
      PT_RETURN_NOT_OK(write_value(&v->children[c], row, b));
      return pt__buf_putc(b, '}');
    }
    default: break;
  }

  /* Scalars of bounded length: format in place. */
  PT_RETURN_NOT_OK(pt__buf_reserve(b, SCALAR_ROOM));
  p = b->data + b->len;
  int n = 0;
  switch (v->type.id) {
    case PT_TYPE_INT8:
    case PT_TYPE_INT16:
    case PT_TYPE_INT32:
    case PT_TYPE_INT64:
    case PT_TYPE_DURATION:
    case PT_TYPE_INTERVAL_MONTHS: n = i64_to_text(pt__view_get_int(v, i), p); break;
    case PT_TYPE_UINT8:
    case PT_TYPE_UINT16:
    case PT_TYPE_UINT32:
    case PT_TYPE_UINT64: n = u64_to_text(pt__view_get_uint(v, i), p); break;
    case PT_TYPE_HALF_FLOAT: n = float_value_to_text(pt__view_get_double(v, i), F16, p); break;
    case PT_TYPE_FLOAT: n = float_value_to_text(pt__view_get_double(v, i), F32, p); break;
    case PT_TYPE_DOUBLE: n = float_value_to_text(pt__view_get_double(v, i), F64, p); break;
    case PT_TYPE_DATE32:
      p[0] = '"';
      n = 1 + date_to_text(pt__view_get_int(v, i), p + 1);
      p[n++] = '"';
      break;
    case PT_TYPE_TIMESTAMP:
      p[0] = '"';
      n = 1 + timestamp_to_text(pt__view_get_int(v, i), v->type.unit,
                                v->type.tz != NULL && v->type.tz[0] != '\0', p + 1);
      p[n++] = '"';
      break;
    case PT_TYPE_DATE64:
      p[0] = '"';
      /* Whole days: validation checked. */
      n = 1 + date_to_text(pt__view_get_int(v, i) / 86400000, p + 1);
      p[n++] = '"';
      break;
    case PT_TYPE_TIME32:
    case PT_TYPE_TIME64: n = time_to_text(pt__view_get_int(v, i), v->type.unit, p); break;
    case PT_TYPE_INTERVAL_DAY_TIME:
    case PT_TYPE_INTERVAL_MONTH_DAY_NANO: n = interval_to_text(v, i, p); break;
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256:
      bytes = pt__view_get_bytes(v, i, &len);
      p[0] = '"';
      n = 1 + pt__decimal_to_string(bytes, (int)len, v->type.scale, p + 1);
      p[n++] = '"';
      break;
    default: return PT_ENOTSUP;
  }
  b->len += (size_t)n;
  return PT_OK;
}

/* Bounds the recursion of write_value before the row loop. */
static int check_depth(const pt__view *v, const char *name, int depth, pt_error *err) {
  if (depth > MAX_DEPTH)
    return pt__errorf(err, PT_ENOTSUP, "json: column '%s': nested more than %d levels deep",
                      name, MAX_DEPTH);
  if (v->dictionary != NULL) PT_RETURN_NOT_OK(check_depth(v->dictionary, name, depth + 1, err));
  for (int64_t k = 0; k < v->n_children; k++)
    PT_RETURN_NOT_OK(check_depth(&v->children[k], name, depth + 1, err));
  return PT_OK;
}

int pt_json_write_batch(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                        pt_buf *out, pt_error *err) {
  if (schema == NULL || batch == NULL || out == NULL)
    return pt__errorf(err, PT_EINVAL, "json: schema, batch and out must not be NULL");
  pt__view v;
  int rc = pt__view_init(&v, schema, batch, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "json: ");
  size_t start_len = out->len;
  if (v.type.id != PT_TYPE_STRUCT || v.dictionary != NULL) {
    rc = pt__errorf(err, PT_EINVAL, "json: a record batch must be a struct array, not '%s'",
                    schema->format);
    goto reset_view;
  }
  /* The getters do no bounds checks: check offsets and indices first. */
  rc = pt__view_validate(&v, NULL, NULL, err);
  if (rc != PT_OK) {
    pt__error_prefix(err, rc, "json: ");
    goto reset_view;
  }
  for (int64_t k = 0; k < v.n_children; k++) {
    const char *name = schema->children[k]->name ? schema->children[k]->name : "";
    rc = check_depth(&v.children[k], name, 1, err);
    if (rc != PT_OK) goto reset_view;
  }

  for (int64_t i = 0; i < v.length; i++) {
    /* A null row of the batch itself (never in IPC data) prints as null. */
    rc = write_value(&v, i, out);
    if (rc == PT_OK) rc = pt__buf_putc(out, '\n');
    if (rc != PT_OK) {
      pt__errorf(err, rc, "json: row %lld: %s", (long long)i,
                 rc == PT_ENOMEM ? "out of memory" : "cannot print this type");
      goto truncate;
    }
  }
  pt__view_reset(&v);
  return PT_OK;

truncate:
  /* On failure the caller's buffer is as it was. */
  out->len = start_len;
reset_view:
  pt__view_reset(&v);
  return rc;
}
