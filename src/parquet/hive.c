/* hive.c — Hive-style partition directories: how a partition column's
 * value is spelled in a key=value path segment (as Spark and Hive spell it,
 * with the same escapes and null marker) when writing, and, when reading,
 * the type Spark infers for a key and the value a segment's text gives.
 * Shared by the driver (which checks and types the keys before a job runs)
 * and the executors (their partitioned sink and the Parquet source).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "parquet/parquet.h"

#define HIVE_NULL "__HIVE_DEFAULT_PARTITION__"

bool pt__hive_key_supported(const char *format) {
  static const char *const ok[] = {"b", "c", "C", "s", "S", "i", "I", "l", "L",
                                   "f", "g", "u", "U", "z", "Z", "tdD"};
  if (format == NULL) return false;
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (strcmp(format, ok[i]) == 0) return true;
  /* timestamps of any unit and zone; decimals of any width */
  return (strncmp(format, "ts", 2) == 0 && strchr("smun", format[2]) && format[2] != '\0' &&
          format[3] == ':') ||
         (strncmp(format, "d:", 2) == 0);
}

/* Spark's ExternalCatalogUtils.escapePathName: control characters and the
 * characters a path or Hive's own parsing would misread become %XX. */
static bool needs_escape(unsigned char c) {
  return c < 0x20 || c == 0x7F || strchr("\"#%'*/:=?\\{[]^", c) != NULL;
}

int pt__hive_escape(pt_buf *out, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c != '\0' && !needs_escape(c)) {
      PT_RETURN_NOT_OK(pt__buf_append(out, &s[i], 1));
    } else {
      char hex[4];
      snprintf(hex, sizeof hex, "%%%02X", c);
      PT_RETURN_NOT_OK(pt__buf_append(out, hex, 3));
    }
  }
  return PT_OK;
}

static bool bit(const void *bits, int64_t i) {
  return bits == NULL || (((const uint8_t *)bits)[i >> 3] >> (i & 7)) & 1;
}

/* A double as the shortest text that reads back the same, with ".0" on
 * whole numbers so that it is inferred as a float again (Java's spelling of
 * NaN and the infinities, which strtod also reads). */
static int append_double(pt_buf *out, double v) {
  char t[40];
  if (isnan(v)) snprintf(t, sizeof t, "NaN");
  else if (isinf(v)) snprintf(t, sizeof t, v > 0 ? "Infinity" : "-Infinity");
  else {
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(t, sizeof t, "%.*g", prec, v);
      if (strtod(t, NULL) == v) break;
    }
    if (strpbrk(t, ".eEn") == NULL) strcat(t, ".0");
  }
  return pt__buf_append(out, t, strlen(t));
}

/* Days since 1970-01-01 as YYYY-MM-DD (proleptic Gregorian). */
static int append_date(pt_buf *out, int32_t days) {
  int64_t z = (int64_t)days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y++;
  char t[64];
  snprintf(t, sizeof t, "%04lld-%02lld-%02lld", (long long)y, (long long)m, (long long)d);
  return pt__buf_append(out, t, strlen(t));
}

/* A timestamp as Spark casts it to text, "YYYY-MM-DD HH:MM:SS" and the
 * fraction without its trailing zeros; ':' is escaped. */
static int append_timestamp(pt_buf *out, int64_t v, pt_time_unit unit) {
  static const int64_t per_s[] = {1, 1000, 1000000, 1000000000};
  int64_t ps = per_s[unit];
  int64_t secs = v / ps, frac = v % ps;
  if (frac < 0) {
    frac += ps;
    secs--;
  }
  int64_t days = secs / 86400, sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days--;
  }
  if (days < INT32_MIN || days > INT32_MAX) return PT_ENOTSUP;
  PT_RETURN_NOT_OK(append_date(out, (int32_t)days));
  char t[48];
  int n = snprintf(t, sizeof t, " %02d%%3A%02d%%3A%02d", (int)(sod / 3600), (int)(sod / 60 % 60),
                   (int)(sod % 60));
  if (frac != 0) {
    int digits = unit == PT_MILLI ? 3 : unit == PT_MICRO ? 6 : 9;
    n += snprintf(t + n, sizeof t - (size_t)n, ".%0*lld", digits, (long long)frac);
    while (t[n - 1] == '0') t[--n] = '\0';
  }
  return pt__buf_append(out, t, (size_t)n);
}

int pt__hive_append_value(pt_buf *out, const struct ArrowSchema *schema,
                          const struct ArrowArray *array, int64_t row) {
  int64_t i = array->offset + row;
  const char *f = schema->format;
  if (array->null_count != 0 && !bit(array->buffers[0], i))
    return pt__buf_append(out, HIVE_NULL, strlen(HIVE_NULL));
  const void *v = array->buffers[1];
  char t[32];
  switch (f[0]) {
    case 'b': snprintf(t, sizeof t, "%s", bit(v, i) ? "true" : "false"); break;
    case 'c': snprintf(t, sizeof t, "%d", ((const int8_t *)v)[i]); break;
    case 'C': snprintf(t, sizeof t, "%u", ((const uint8_t *)v)[i]); break;
    case 's': snprintf(t, sizeof t, "%d", ((const int16_t *)v)[i]); break;
    case 'S': snprintf(t, sizeof t, "%u", ((const uint16_t *)v)[i]); break;
    case 'i': snprintf(t, sizeof t, "%d", ((const int32_t *)v)[i]); break;
    case 'I': snprintf(t, sizeof t, "%u", ((const uint32_t *)v)[i]); break;
    case 'l': snprintf(t, sizeof t, "%lld", (long long)((const int64_t *)v)[i]); break;
    case 'L': snprintf(t, sizeof t, "%llu", (unsigned long long)((const uint64_t *)v)[i]); break;
    case 'f': return append_double(out, ((const float *)v)[i]);
    case 'g': return append_double(out, ((const double *)v)[i]);
    case 't':
      if (f[1] == 's') {
        pt_type ty;
        if (pt_type_parse(schema, &ty, NULL) != PT_OK) return PT_ENOTSUP;
        return append_timestamp(out, ((const int64_t *)v)[i], ty.unit);
      }
      return append_date(out, ((const int32_t *)v)[i]);
    case 'd': {
      pt_type ty;
      if (pt_type_parse(schema, &ty, NULL) != PT_OK) return PT_ENOTSUP;
      int bytes = pt__type_decimal_bytes(ty.id);
      char d[PT__DECIMAL_TEXT_MAX];
      if (bytes == 0 || ty.scale < 0 ||
          pt__decimal_to_string((const uint8_t *)v + i * bytes, bytes, ty.scale, d) < 0)
        return PT_ENOTSUP;
      return pt__buf_append(out, d, strlen(d));
    }
    case 'u':
    case 'U':
    case 'z':
    case 'Z': {
      int64_t a, b;
      if (f[0] == 'u' || f[0] == 'z') {
        a = ((const int32_t *)v)[i];
        b = ((const int32_t *)v)[i + 1];
      } else {
        a = ((const int64_t *)v)[i];
        b = ((const int64_t *)v)[i + 1];
      }
      if (a == b) return pt__buf_append(out, HIVE_NULL, strlen(HIVE_NULL));
      return pt__hive_escape(out, (const char *)array->buffers[2] + a, (size_t)(b - a));
    }
    default: return PT_ENOTSUP;
  }
  return pt__buf_append(out, t, strlen(t));
}

/* ------------------------------------------------------------------------ */
/* Reading: types and values of partition keys */

static int64_t days_from_ymd(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* n digits at s as a number; -1 when one is not a digit. */
static int64_t digits(const char *s, int n) {
  int64_t v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* "YYYY-MM-DD" of a real day; the number of characters read, 0 if none. */
static int parse_ymd(const char *s, int64_t *days) {
  int64_t y = digits(s, 4), m = -1, d = -1;
  if (y >= 0 && s[4] == '-') m = digits(s + 5, 2);
  if (m >= 1 && m <= 12 && s[7] == '-') d = digits(s + 8, 2);
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (d < 1 || d > mdays[m - 1]) return 0;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return 0;
  *days = days_from_ymd(y, (int)m, (int)d);
  return 10;
}

bool pt__hive_parse_date(const char *s, int32_t *days) {
  int64_t d;
  if (parse_ymd(s, &d) != 10 || s[10] != '\0') return false;
  *days = (int32_t)d;
  return true;
}

bool pt__hive_parse_timestamp(const char *s, int64_t *micros) {
  int64_t days;
  if (parse_ymd(s, &days) != 10 || (s[10] != ' ' && s[10] != 'T')) return false;
  int64_t h = digits(s + 11, 2), mi = -1, se = -1;
  if (h >= 0 && h < 24 && s[13] == ':') mi = digits(s + 14, 2);
  if (mi >= 0 && mi < 60 && s[16] == ':') se = digits(s + 17, 2);
  if (se < 0 || se > 59) return false;
  int64_t us = 0;
  const char *p = s + 19;
  if (*p == '.') {
    int n = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, n++)
      if (n < 6) us = us * 10 + (*p - '0');
      else if (*p != '0') return false; /* below a microsecond */
    if (n == 0) return false;
    for (; n < 6; n++) us *= 10;
  }
  if (*p != '\0') return false;
  *micros = ((days * 24 + h) * 60 + mi) * 60 * 1000000 + se * 1000000 + us;
  return true;
}

/* Whether s is an integer of at most 38 digits (a sign allowed): *nd its
 * digits. */
static bool integral(const char *s, int *nd) {
  const char *p = s + (*s == '-' || *s == '+');
  int n = 0;
  for (; *p >= '0' && *p <= '9'; p++) n++;
  *nd = n;
  return n > 0 && n <= 38 && *p == '\0';
}

int pt__hive_infer_format(char *const *vals, int64_t stride, int64_t n, char *fmt, size_t cap) {
  bool i32 = true, i64 = true, dec = true, num = true, when = true, dates = true;
  int precision = 0;
  int64_t known = 0;
  for (int64_t i = 0; i < n; i++) {
    const char *v = vals[i * stride];
    if (v == NULL) continue;
    known++;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    bool is_int = *v != '\0' && *end == '\0' && errno != ERANGE;
    if (!is_int) i64 = i32 = false;
    else if (x < INT32_MIN || x > INT32_MAX) i32 = false;
    int nd;
    if (!integral(v, &nd)) dec = false;
    else precision = nd > precision ? nd : precision;
    errno = 0;
    (void)strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno == ERANGE) num = false;
    int64_t us;
    int32_t days;
    bool is_date = pt__hive_parse_date(v, &days);
    if (!is_date) dates = false;
    if (!is_date && !pt__hive_parse_timestamp(v, &us)) when = false;
  }
  /* Spark's order: int, bigint, decimal(p, 0) of the integers beyond
   * bigint (with room for the bigints among them), double, timestamp (a
   * date among timestamps widens to one), date, string. */
  /* A key whose every value is __HIVE_DEFAULT_PARTITION__ (null): Spark
   * gives it NullType and then string, never a number. */
  const char *f = known == 0 ? "u" : i32 ? "i" : i64 ? "l" : NULL;
  char d[32];
  if (!f && dec) {
    snprintf(d, sizeof d, "d:%d,0", precision < 20 ? 20 : precision);
    f = d;
  }
  if (!f) f = num ? "g" : dates ? "tdD" : when ? "tsu:" : "u";
  if (strlen(f) + 1 > cap) return PT_ERANGE;
  memcpy(fmt, f, strlen(f) + 1);
  return PT_OK;
}

bool pt__hive_read_supported(const char *format) {
  return pt__hive_key_supported(format) || (format && strcmp(format, "tdm") == 0);
}

int pt__hive_append_text(pt_builder *b, const struct ArrowSchema *field, const char *text,
                         int64_t n) {
  const char *f = field->format;
  if (text == NULL) return pt_builder_append_null(b, n);
  pt_type ty;
  if (!pt__hive_read_supported(f) || pt_type_parse(field, &ty, NULL) != PT_OK) return PT_ENOTSUP;
  size_t len = strlen(text);
  char *end;
  errno = 0;
  switch (f[0]) {
    case 'u': case 'U': case 'z': case 'Z':
      for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(pt_builder_append_bytes(b, text, (int64_t)len));
      return PT_OK;
    case 'b': {
      bool t = strcmp(text, "true") == 0;
      if (!t && strcmp(text, "false") != 0) return PT_EINVAL;
      for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(pt_builder_append_int(b, t));
      return PT_OK;
    }
    case 'f': case 'g': {
      double x = strtod(text, &end);
      if (*text == '\0' || *end != '\0') return PT_EINVAL;
      for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(pt_builder_append_double(b, x));
      return PT_OK;
    }
    case 'C': case 'S': case 'I': case 'L': {
      if (*text == '-') return PT_EINVAL;
      unsigned long long x = strtoull(text, &end, 10);
      if (*text == '\0' || *end != '\0' || errno == ERANGE) return PT_EINVAL;
      for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(pt_builder_append_uint(b, x));
      return PT_OK;
    }
    case 'c': case 's': case 'i': case 'l': {
      long long x = strtoll(text, &end, 10);
      if (*text == '\0' || *end != '\0' || errno == ERANGE) return PT_EINVAL;
      for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(pt_builder_append_int(b, x));
      return PT_OK;
    }
    case 'd':
      for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(pt_builder_append_decimal_string(b, text));
      return PT_OK;
    case 't': {
      int64_t v;
      if (f[1] == 'd') {
        int32_t days;
        if (!pt__hive_parse_date(text, &days)) return PT_EINVAL;
        v = f[2] == 'm' ? (int64_t)days * 86400000 : days;
      } else {
        int64_t us;
        if (!pt__hive_parse_timestamp(text, &us)) {
          int32_t days; /* a date among timestamps: its midnight */
          if (!pt__hive_parse_date(text, &days)) return PT_EINVAL;
          us = (int64_t)days * 86400 * 1000000;
        }
        switch (ty.unit) {
          case PT_SECOND: if (us % 1000000) return PT_EINVAL; v = us / 1000000; break;
          case PT_MILLI: if (us % 1000) return PT_EINVAL; v = us / 1000; break;
          case PT_MICRO: v = us; break;
          default:
            if (us > INT64_MAX / 1000 || us < INT64_MIN / 1000) return PT_EINVAL;
            v = us * 1000;
        }
      }
      for (int64_t i = 0; i < n; i++) PT_RETURN_NOT_OK(pt_builder_append_int(b, v));
      return PT_OK;
    }
    default: return PT_ENOTSUP;
  }
}

int pt__hive_copy_metadata(const struct ArrowSchema *from, struct ArrowSchema *to,
                           pt_error *err) {
  const char *p;
  int32_t n = pt__md_count(from->metadata, &p);
  if (n <= 0) return PT_OK;
  const char **kv = pt__calloc((size_t)n * 2, sizeof *kv);
  int64_t *lens = pt__calloc((size_t)n * 2, sizeof *lens);
  if (kv == NULL || lens == NULL) {
    pt__free(kv);
    pt__free(lens);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  for (int32_t j = 0; j < n; j++) {
    pt__md_pair e = pt__md_next(&p);
    kv[j] = e.key;
    lens[j] = e.key_len;
    kv[n + j] = e.value;
    lens[n + j] = e.value_len;
  }
  int rc = pt_schema_set_metadata_n(to, n, kv, lens, kv + n, lens + n, err);
  pt__free(kv);
  pt__free(lens);
  return rc;
}
