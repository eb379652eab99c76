/* schema.c — Delta's types and Arrow's, both ways: a table's schemaString
 * as an Arrow struct schema (what pt_read_delta hands out) and an Arrow
 * schema as a schemaString (what pt_write_delta records); partition values
 * and dates/timestamps as the log spells them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "delta/delta.h"

/* ------------------------------------------------------------------------ */
/* Delta -> Arrow */

static const struct {
  const char *delta, *arrow;
} PRIMS[] = {
    {"string", "u"},   {"long", "l"},    {"integer", "i"},     {"short", "s"},
    {"byte", "c"},     {"float", "f"},   {"double", "g"},      {"boolean", "b"},
    {"binary", "z"},   {"date", "tdD"},  {"timestamp", "tsu:UTC"}, {"timestamp_ntz", "tsu:"},
};

static int to_arrow(const pt__json *type, const char *name, bool nullable, struct ArrowSchema *out,
                    int depth, pt_error *err);

static int unsupported(const char *name, const char *type, pt_error *err) {
  return pt__errorf(err, PT_ENOTSUP, "column '%s' has the Delta type '%s', which protium cannot "
                    "read", name, type);
}

static int struct_to_arrow(const pt__json *t, const char *name, bool nullable,
                           struct ArrowSchema *out, int depth, pt_error *err) {
  const pt__json *fields = pt__json_get(t, "fields");
  if (!fields || fields->type != PT__JSON_ARRAY)
    return pt__errorf(err, PT_EFORMAT, "struct '%s' has no fields", name);
  PT_RETURN_NOT_OK(pt_schema_init(out, "+s", name, nullable ? ARROW_FLAG_NULLABLE : 0, fields->n, err));
  for (int64_t i = 0; i < fields->n; i++) {
    const pt__json *f = fields->items[i];
    const char *fname = pt__json_str(f, "name");
    const pt__json *ft = pt__json_get(f, "type"), *fn = pt__json_get(f, "nullable");
    int rc = !fname || !ft ? pt__errorf(err, PT_EFORMAT, "a field of '%s' has no name or type", name)
                           : to_arrow(ft, fname, !fn || fn->type != PT__JSON_BOOL || fn->b,
                                      out->children[i], depth + 1, err);
    if (rc != PT_OK) {
      out->release(out);
      return rc;
    }
  }
  return PT_OK;
}

static int to_arrow(const pt__json *type, const char *name, bool nullable, struct ArrowSchema *out,
                    int depth, pt_error *err) {
  int flags = nullable ? ARROW_FLAG_NULLABLE : 0;
  if (depth > 32) return pt__errorf(err, PT_EFORMAT, "column '%s' nests deeper than 32", name);
  if (type->type == PT__JSON_STRING) {
    const char *t = type->str;
    for (size_t i = 0; i < sizeof PRIMS / sizeof PRIMS[0]; i++)
      if (strcmp(t, PRIMS[i].delta) == 0) return pt_schema_init(out, PRIMS[i].arrow, name, flags, 0, err);
    int p, s, used = 0;
    if (sscanf(t, "decimal(%d,%d)%n", &p, &s, &used) == 2 && t[used] == '\0' && p >= 1 && p <= 38 &&
        s >= 0 && s <= p) {
      char f[32];
      snprintf(f, sizeof f, "d:%d,%d", p, s);
      return pt_schema_init(out, f, name, flags, 0, err);
    }
    return unsupported(name, t, err);
  }
  if (type->type != PT__JSON_OBJECT) return pt__errorf(err, PT_EFORMAT, "column '%s' has a malformed type", name);
  const char *kind = pt__json_str(type, "type");
  if (!kind) return pt__errorf(err, PT_EFORMAT, "column '%s' has a malformed type", name);
  if (strcmp(kind, "struct") == 0) return struct_to_arrow(type, name, nullable, out, depth, err);
  if (strcmp(kind, "array") == 0) {
    const pt__json *et = pt__json_get(type, "elementType"), *cn = pt__json_get(type, "containsNull");
    if (!et) return pt__errorf(err, PT_EFORMAT, "array column '%s' has no elementType", name);
    PT_RETURN_NOT_OK(pt_schema_init(out, "+l", name, flags, 1, err));
    int rc = to_arrow(et, "element", !cn || cn->type != PT__JSON_BOOL || cn->b, out->children[0],
                      depth + 1, err);
    if (rc != PT_OK) out->release(out);
    return rc;
  }
  if (strcmp(kind, "map") == 0) {
    const pt__json *kt = pt__json_get(type, "keyType"), *vt = pt__json_get(type, "valueType"),
                   *vn = pt__json_get(type, "valueContainsNull");
    if (!kt || !vt) return pt__errorf(err, PT_EFORMAT, "map column '%s' has no keyType or valueType", name);
    PT_RETURN_NOT_OK(pt_schema_init(out, "+m", name, flags, 1, err));
    int rc = pt_schema_init(out->children[0], "+s", "entries", 0, 2, err);
    if (rc == PT_OK) rc = to_arrow(kt, "key", false, out->children[0]->children[0], depth + 1, err);
    if (rc == PT_OK)
      rc = to_arrow(vt, "value", !vn || vn->type != PT__JSON_BOOL || vn->b,
                    out->children[0]->children[1], depth + 1, err);
    if (rc != PT_OK) out->release(out);
    return rc;
  }
  return unsupported(name, kind, err);
}

int pt__delta_schema_to_arrow(const char *schema_string, struct ArrowSchema *out, pt_error *err) {
  pt__json *j;
  int rc = pt__json_parse(schema_string, (int64_t)strlen(schema_string), &j, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "schemaString: ");
  const char *kind = pt__json_str(j, "type");
  if (!kind || strcmp(kind, "struct") != 0)
    rc = pt__errorf(err, PT_EFORMAT, "schemaString: not a struct type");
  else
    rc = struct_to_arrow(j, "", false, out, 0, err);
  pt__json_free(j);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Arrow -> Delta */

static int type_json(const struct ArrowSchema *s, const char *column, pt_buf *b, int depth,
                     pt_error *err);

static int field_json(const struct ArrowSchema *s, const char *column, pt_buf *b, int depth,
                      pt_error *err) {
  if (pt__buf_printf(b, "{\"name\":") != PT_OK || pt__json_put_string(b, s->name ? s->name : "", -1) != PT_OK ||
      pt__buf_printf(b, ",\"type\":") != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  PT_RETURN_NOT_OK(type_json(s, column, b, depth, err));
  if (pt__buf_printf(b, ",\"nullable\":%s,\"metadata\":{}}",
                     (s->flags & ARROW_FLAG_NULLABLE) ? "true" : "false") != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  return PT_OK;
}

static int type_json(const struct ArrowSchema *s, const char *column, pt_buf *b, int depth,
                     pt_error *err) {
  const char *f = s->format;
  const char *prim = NULL;
  if (depth > 32) return pt__errorf(err, PT_EINVAL, "column '%s' nests deeper than 32", column);
  if (strcmp(f, "c") == 0) prim = "byte";
  else if (strcmp(f, "s") == 0) prim = "short";
  else if (strcmp(f, "i") == 0) prim = "integer";
  else if (strcmp(f, "l") == 0) prim = "long";
  else if (strcmp(f, "f") == 0) prim = "float";
  else if (strcmp(f, "g") == 0) prim = "double";
  else if (strcmp(f, "b") == 0) prim = "boolean";
  else if (strcmp(f, "u") == 0 || strcmp(f, "U") == 0 || strcmp(f, "vu") == 0) prim = "string";
  else if (strcmp(f, "z") == 0 || strcmp(f, "Z") == 0 || strcmp(f, "vz") == 0) prim = "binary";
  else if (strcmp(f, "tdD") == 0) prim = "date";
  else if (strcmp(f, "tsu:") == 0) prim = "timestamp_ntz";
  else if (strncmp(f, "tsu:", 4) == 0) prim = "timestamp";
  if (prim) {
    if (pt__json_put_string(b, prim, -1) != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
    return PT_OK;
  }
  int p, sc, used = 0;
  if (sscanf(f, "d:%d,%d%n", &p, &sc, &used) == 2 && f[used] == '\0') {
    if (p < 1 || p > 38 || sc < 0 || sc > p)
      return pt__errorf(err, PT_ENOTSUP, "column '%s': Delta decimals have a precision of 1 to 38 "
                        "and a scale of 0 to the precision, not (%d, %d)", column, p, sc);
    if (pt__buf_printf(b, "\"decimal(%d,%d)\"", p, sc) != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    return PT_OK;
  }
  if ((strcmp(f, "+l") == 0 || strcmp(f, "+L") == 0) && s->n_children == 1) {
    const struct ArrowSchema *e = s->children[0];
    if (pt__buf_printf(b, "{\"type\":\"array\",\"elementType\":") != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    PT_RETURN_NOT_OK(type_json(e, column, b, depth + 1, err));
    if (pt__buf_printf(b, ",\"containsNull\":%s}",
                       (e->flags & ARROW_FLAG_NULLABLE) ? "true" : "false") != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    return PT_OK;
  }
  if (strcmp(f, "+m") == 0 && s->n_children == 1 && s->children[0]->n_children == 2) {
    const struct ArrowSchema *k = s->children[0]->children[0], *v = s->children[0]->children[1];
    if (pt__buf_printf(b, "{\"type\":\"map\",\"keyType\":") != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    PT_RETURN_NOT_OK(type_json(k, column, b, depth + 1, err));
    if (pt__buf_printf(b, ",\"valueType\":") != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
    PT_RETURN_NOT_OK(type_json(v, column, b, depth + 1, err));
    if (pt__buf_printf(b, ",\"valueContainsNull\":%s}",
                       (v->flags & ARROW_FLAG_NULLABLE) ? "true" : "false") != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    return PT_OK;
  }
  if (strcmp(f, "+s") == 0) {
    if (pt__buf_printf(b, "{\"type\":\"struct\",\"fields\":[") != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t i = 0; i < s->n_children; i++) {
      if (i > 0 && pt__buf_putc(b, ',') != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
      PT_RETURN_NOT_OK(field_json(s->children[i], column, b, depth + 1, err));
    }
    if (pt__buf_printf(b, "]}") != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
    return PT_OK;
  }
  char t[256];
  pt_type_name(s, t, sizeof t);
  const char *hint = strncmp(f, "ts", 2) == 0 ? "; cast it to timestamp[us] (Delta keeps microseconds)"
                   : f[0] == 'C' || f[0] == 'S' || f[0] == 'I' || f[0] == 'L'
                       ? "; cast it to a signed integer type (Delta has no unsigned types)"
                       : "";
  return pt__errorf(err, PT_ENOTSUP, "column '%s' has type %s, which a Delta table cannot hold%s",
                    column, t, hint);
}

int pt__delta_schema_from_arrow(const struct ArrowSchema *schema, pt_buf *out, pt_error *err) {
  if (strcmp(schema->format, "+s") != 0)
    return pt__errorf(err, PT_EINVAL, "a Delta table's schema must be a struct");
  if (pt__buf_printf(out, "{\"type\":\"struct\",\"fields\":[") != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t i = 0; i < schema->n_children; i++) {
    const struct ArrowSchema *c = schema->children[i];
    if (i > 0 && pt__buf_putc(out, ',') != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
    PT_RETURN_NOT_OK(field_json(c, c->name ? c->name : "", out, 0, err));
  }
  if (pt__buf_printf(out, "]}") != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Values */

/* Days from 1970-01-01 of a proleptic Gregorian date (era arithmetic: a
 * 400-year cycle has 146097 days). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void pt__delta_civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static bool num(const char **p, int n, int64_t *out) {
  int64_t v = 0;
  for (int i = 0; i < n; i++) {
    if ((*p)[i] < '0' || (*p)[i] > '9') return false;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return true;
}

static bool parse_date_at(const char **p, int64_t *days) {
  const char *s = *p;
  bool neg = *s == '-';
  if (neg || *s == '+') s++;
  int64_t y = 0;
  int nd = 0;
  while (s[nd] >= '0' && s[nd] <= '9' && nd < 9) nd++;
  int64_t m, d;
  if (nd < 4 || !num(&s, nd, &y) || *s++ != '-' || !num(&s, 2, &m) || *s++ != '-' || !num(&s, 2, &d))
    return false;
  if (m < 1 || m > 12 || d < 1 || d > 31) return false;
  *days = days_from_civil(neg ? -y : y, m, d);
  *p = s;
  return true;
}

bool pt__delta_parse_date(const char *s, int64_t *days) {
  return parse_date_at(&s, days) && *s == '\0';
}

bool pt__delta_parse_timestamp(const char *s, int64_t *us) {
  int64_t days, h = 0, mi = 0, sec = 0, frac = 0;
  if (!parse_date_at(&s, &days)) return false;
  if (*s == ' ' || *s == 'T') {
    s++;
    if (!num(&s, 2, &h) || *s++ != ':' || !num(&s, 2, &mi)) return false;
    if (*s == ':') {
      s++;
      if (!num(&s, 2, &sec)) return false;
    }
    if (*s == '.') {
      s++;
      int n = 0;
      while (s[n] >= '0' && s[n] <= '9') n++;
      if (n == 0 || n > 9) return false;
      for (int i = 0; i < 6; i++) frac = frac * 10 + (i < n ? s[i] - '0' : 0);
      s += n;
    }
    if (h > 23 || mi > 59 || sec > 60) return false;
  }
  int64_t offset_min = 0;
  if (*s == 'Z') {
    s++;
  } else if (*s == '+' || *s == '-') {
    int sign = *s++ == '-' ? -1 : 1;
    int64_t oh, om = 0;
    if (!num(&s, 2, &oh)) return false;
    if (*s == ':') s++;
    if (*s && !num(&s, 2, &om)) return false;
    offset_min = sign * (oh * 60 + om);
  }
  if (*s != '\0') return false;
  /* int64 microseconds reach about 292,000 years either side of 1970. */
  if (days > 106751990 || days < -106751990) return false;
  *us = ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000000 + frac;
  return true;
}

/* A binary partition value: delta-rs (and protium) spell each byte as the
 * text \u00XX, so that the log stays UTF-8 whatever the bytes; a value made
 * only of such escapes is those bytes, any other text is its own bytes. A
 * zero byte cannot pass on as a C string and is refused. */
static int binary_value(const char *text, char **out, pt_error *err) {
  size_t n = strlen(text);
  bool spelled = n > 0 && n % 6 == 0;
  for (size_t i = 0; spelled && i < n; i += 6)
    spelled = text[i] == '\\' && text[i + 1] == 'u' && text[i + 2] == '0' && text[i + 3] == '0' &&
              isxdigit((unsigned char)text[i + 4]) && isxdigit((unsigned char)text[i + 5]);
  if (!spelled) {
    *out = pt__strdup(text);
    return *out ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  char *o = pt__malloc(n / 6 + 1);
  if (!o) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i += 6) {
    char hex[3] = {text[i + 4], text[i + 5], 0};
    o[i / 6] = (char)strtol(hex, NULL, 16);
    if (o[i / 6] == 0) {
      pt__free(o);
      return pt__errorf(err, PT_ENOTSUP,
                        "binary partition value '%s' holds a zero byte, which protium cannot "
                        "read as a partition value",
                        text);
    }
  }
  o[n / 6] = '\0';
  *out = o;
  return PT_OK;
}

int pt__delta_partition_value(const char *format, const char *text, char **out, pt_error *err) {
  char buf[64];
  const char *v = text;
  if (strcmp(format, "b") == 0) {
    /* Spark writes true/false; other writers have been seen to capitalize. */
    if (strcasecmp(text, "true") == 0) v = "true";
    else if (strcasecmp(text, "false") == 0) v = "false";
    else v = NULL;
  } else if (strcmp(format, "c") == 0 || strcmp(format, "s") == 0 || strcmp(format, "i") == 0 ||
             strcmp(format, "l") == 0) {
    char *end;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    bool fits = format[0] == 'l' || (format[0] == 'i' && x >= INT32_MIN && x <= INT32_MAX) ||
                (format[0] == 's' && x >= INT16_MIN && x <= INT16_MAX) ||
                (format[0] == 'c' && x >= INT8_MIN && x <= INT8_MAX);
    if (*text == '\0' || *end != '\0' || errno == ERANGE || !fits) v = NULL;
  } else if (strcmp(format, "f") == 0 || strcmp(format, "g") == 0) {
    char *end;
    (void)strtod(text, &end);
    if (*text == '\0' || *end != '\0') v = NULL;
  } else if (strcmp(format, "tdD") == 0) {
    int64_t d, y;
    int m, dd;
    v = NULL;
    if (pt__delta_parse_date(text, &d)) {
      pt__delta_civil_from_days(d, &y, &m, &dd);
      if (y >= 0 && y <= 9999) snprintf(buf, sizeof buf, "%04d-%02d-%02d", (int)y, m, dd), v = buf;
    }
  } else if (strncmp(format, "tsu:", 4) == 0) {
    /* Any spelling the protocol allows (an ISO 8601 instant with a zone
     * among them) becomes the UTC wall clock to the microsecond. */
    int64_t us, y;
    int m, dd;
    v = NULL;
    if (pt__delta_parse_timestamp(text, &us)) {
      int64_t days = us / 86400000000LL - (us % 86400000000LL < 0);
      int64_t rest = us - days * 86400000000LL;
      pt__delta_civil_from_days(days, &y, &m, &dd);
      if (y >= 0 && y <= 9999)
        snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06d", (int)y, m, dd,
                 (int)(rest / 3600000000LL), (int)(rest / 60000000 % 60),
                 (int)(rest / 1000000 % 60), (int)(rest % 1000000)), v = buf;
    }
  } else if (strcmp(format, "z") == 0) {
    return binary_value(text, out, err);
  } else if (format[0] == 'd' || strcmp(format, "u") == 0) {
    v = text;
  } else {
    return pt__errorf(err, PT_ENOTSUP, "partition values of format '%s' are not supported", format);
  }
  if (!v) return pt__errorf(err, PT_EFORMAT, "partition value '%s' is not a value of its column's type",
                            text);
  *out = pt__strdup(v);
  return *out ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
}
