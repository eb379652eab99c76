/* hive.c — Hive-style partition directories on the writing side: how a
 * partition column's value is spelled in a key=value path segment (as Spark
 * and Hive spell it, with the same escapes and null marker), shared by the
 * driver (which checks the columns before a job runs) and the executors'
 * partitioned sink.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parquet/parquet.h"

#define HIVE_NULL "__HIVE_DEFAULT_PARTITION__"

bool pt__hive_key_supported(const char *format) {
  static const char *const ok[] = {"b", "c", "C", "s", "S", "i", "I", "l", "L",
                                   "f", "g", "u", "U", "tdD"};
  if (format == NULL) return false;
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
    if (strcmp(format, ok[i]) == 0) return true;
  return false;
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
    case 't': return append_date(out, ((const int32_t *)v)[i]);
    case 'u':
    case 'U': {
      int64_t a, b;
      if (f[0] == 'u') {
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
