/* type.c — parsing of C Data Interface format strings into pt_type, the
 * buffer layout of each type (what validation, copying, builders and IPC
 * agree on), and human-readable type names for messages and `protium schema`.
 * Every type of the Arrow columnar format parses; malformed formats fail
 * with PT_EINVAL naming the format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"

/* ------------------------------------------------------------------------ */
/* Layout helpers */

int pt__type_n_buffers(pt_type_id id) {
  switch (id) {
    case PT_TYPE_NA:
    case PT_TYPE_RUN_END_ENCODED: return 0;
    case PT_TYPE_STRING:
    case PT_TYPE_LARGE_STRING:
    case PT_TYPE_BINARY:
    case PT_TYPE_LARGE_BINARY:
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW: return 3;
    /* validity, views, one data buffer, the data buffers' sizes: what
     * protium makes; foreign arrays may have any number of data buffers. */
    case PT_TYPE_STRING_VIEW:
    case PT_TYPE_BINARY_VIEW: return 4;
    case PT_TYPE_LIST:
    case PT_TYPE_LARGE_LIST:
    case PT_TYPE_MAP: return 2;
    case PT_TYPE_FIXED_SIZE_LIST:
    case PT_TYPE_STRUCT:
    case PT_TYPE_SPARSE_UNION: return 1;
    default: return 2;
  }
}

int64_t pt__type_bit_width(const pt_type *t) {
  switch (t->id) {
    case PT_TYPE_BOOL: return 1;
    case PT_TYPE_INT8:
    case PT_TYPE_UINT8: return 8;
    case PT_TYPE_INT16:
    case PT_TYPE_UINT16:
    case PT_TYPE_HALF_FLOAT: return 16;
    case PT_TYPE_INT32:
    case PT_TYPE_UINT32:
    case PT_TYPE_FLOAT:
    case PT_TYPE_DATE32:
    case PT_TYPE_TIME32:
    case PT_TYPE_INTERVAL_MONTHS:
    case PT_TYPE_DECIMAL32: return 32;
    case PT_TYPE_INT64:
    case PT_TYPE_UINT64:
    case PT_TYPE_DOUBLE:
    case PT_TYPE_TIMESTAMP:
    case PT_TYPE_DURATION:
    case PT_TYPE_DATE64:
    case PT_TYPE_TIME64:
    case PT_TYPE_INTERVAL_DAY_TIME:
    case PT_TYPE_DECIMAL64: return 64;
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_INTERVAL_MONTH_DAY_NANO: return 128;
    case PT_TYPE_DECIMAL256: return 256;
    case PT_TYPE_FIXED_SIZE_BINARY: return (int64_t)t->byte_width * 8;
    default: return 0;
  }
}

int pt__type_offsets_kind(pt_type_id id) {
  switch (id) {
    case PT_TYPE_STRING:
    case PT_TYPE_BINARY:
    case PT_TYPE_LIST:
    case PT_TYPE_MAP: return 1;
    case PT_TYPE_LARGE_STRING:
    case PT_TYPE_LARGE_BINARY:
    case PT_TYPE_LARGE_LIST: return 2;
    default: return 0;
  }
}

int pt__type_n_children(pt_type_id id) {
  switch (id) {
    case PT_TYPE_LIST:
    case PT_TYPE_LARGE_LIST:
    case PT_TYPE_FIXED_SIZE_LIST:
    case PT_TYPE_MAP:
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW: return 1;
    case PT_TYPE_RUN_END_ENCODED: return 2;
    case PT_TYPE_STRUCT:
    case PT_TYPE_SPARSE_UNION:
    case PT_TYPE_DENSE_UNION: return -1;
    default: return 0;
  }
}

bool pt__type_is_signed_int(pt_type_id id) {
  return id == PT_TYPE_INT8 || id == PT_TYPE_INT16 || id == PT_TYPE_INT32 ||
         id == PT_TYPE_INT64;
}

int pt__type_decimal_bytes(pt_type_id id) {
  switch (id) {
    case PT_TYPE_DECIMAL32: return 4;
    case PT_TYPE_DECIMAL64: return 8;
    case PT_TYPE_DECIMAL128: return 16;
    case PT_TYPE_DECIMAL256: return 32;
    default: return 0;
  }
}

int pt__type_list_view_width(pt_type_id id) {
  return id == PT_TYPE_LIST_VIEW ? 4 : id == PT_TYPE_LARGE_LIST_VIEW ? 8 : 0;
}

bool pt__type_is_view(pt_type_id id) {
  return id == PT_TYPE_STRING_VIEW || id == PT_TYPE_BINARY_VIEW;
}

bool pt__type_is_union(pt_type_id id) {
  return id == PT_TYPE_SPARSE_UNION || id == PT_TYPE_DENSE_UNION;
}

int pt__union_codes(const char *codes, int8_t *out, int max) {
  int n = 0;
  const char *p = codes;
  if (*p == '\0') return 0;
  for (;;) {
    if (*p < '0' || *p > '9') return -1;
    int v = 0;
    while (*p >= '0' && *p <= '9') {
      v = v * 10 + (*p++ - '0');
      if (v > 127) return -1;
    }
    if (n >= max) return -1;
    out[n++] = (int8_t)v;
    if (*p == '\0') return n;
    if (*p++ != ',') return -1;
  }
}

bool pt__type_is_unsigned_int(pt_type_id id) {
  return id == PT_TYPE_UINT8 || id == PT_TYPE_UINT16 || id == PT_TYPE_UINT32 ||
         id == PT_TYPE_UINT64;
}

/* ------------------------------------------------------------------------ */
/* Format strings */

/* Parses a non-negative decimal integer at *p (advancing it); -1 if there is
 * none or it does not fit an int32. */
static int64_t parse_count(const char **p) {
  const char *s = *p;
  if (*s < '0' || *s > '9') return -1;
  int64_t v = 0;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (*s - '0');
    if (v > INT32_MAX) return -1;
    s++;
  }
  *p = s;
  return v;
}

static int parse_unit(char c, pt_time_unit *out) {
  switch (c) {
    case 's': *out = PT_SECOND; return 0;
    case 'm': *out = PT_MILLI; return 0;
    case 'u': *out = PT_MICRO; return 0;
    case 'n': *out = PT_NANO; return 0;
    default: return -1;
  }
}

static int bad_format(pt_error *err, const char *fmt) {
  return pt__errorf(err, PT_EINVAL, "invalid type format '%s'", fmt);
}

/* The part of parsing that looks at the format string alone. */
static int parse_format(const char *f, pt_type *t, pt_error *err) {
  if (f[0] != '\0' && f[1] == '\0') {
    switch (f[0]) {
      case 'n': t->id = PT_TYPE_NA; return PT_OK;
      case 'b': t->id = PT_TYPE_BOOL; return PT_OK;
      case 'c': t->id = PT_TYPE_INT8; return PT_OK;
      case 'C': t->id = PT_TYPE_UINT8; return PT_OK;
      case 's': t->id = PT_TYPE_INT16; return PT_OK;
      case 'S': t->id = PT_TYPE_UINT16; return PT_OK;
      case 'i': t->id = PT_TYPE_INT32; return PT_OK;
      case 'I': t->id = PT_TYPE_UINT32; return PT_OK;
      case 'l': t->id = PT_TYPE_INT64; return PT_OK;
      case 'L': t->id = PT_TYPE_UINT64; return PT_OK;
      case 'e': t->id = PT_TYPE_HALF_FLOAT; return PT_OK;
      case 'f': t->id = PT_TYPE_FLOAT; return PT_OK;
      case 'g': t->id = PT_TYPE_DOUBLE; return PT_OK;
      case 'u': t->id = PT_TYPE_STRING; return PT_OK;
      case 'U': t->id = PT_TYPE_LARGE_STRING; return PT_OK;
      case 'z': t->id = PT_TYPE_BINARY; return PT_OK;
      case 'Z': t->id = PT_TYPE_LARGE_BINARY; return PT_OK;
      default: return bad_format(err, f);
    }
  }
  switch (f[0]) {
    case 'w': {
      const char *p = f + 1;
      if (*p++ != ':') return bad_format(err, f);
      int64_t n = parse_count(&p);
      if (n < 0 || *p != '\0') return bad_format(err, f);
      t->id = PT_TYPE_FIXED_SIZE_BINARY;
      t->byte_width = (int32_t)n;
      return PT_OK;
    }
    case 'd': {
      const char *p = f + 1;
      if (*p++ != ':') return bad_format(err, f);
      int64_t precision = parse_count(&p);
      if (precision < 0 || *p++ != ',') return bad_format(err, f);
      int neg = 0;
      if (*p == '-') { neg = 1; p++; }
      int64_t scale = parse_count(&p);
      if (scale < 0) return bad_format(err, f);
      if (neg) scale = -scale;
      int64_t bits = 128;
      if (*p == ',') {
        p++;
        bits = parse_count(&p);
        if (bits < 0) return bad_format(err, f);
      }
      if (*p != '\0') return bad_format(err, f);
      int max_digits = bits == 32 ? 9 : bits == 64 ? 18 : bits == 128 ? 38 : bits == 256 ? 76 : 0;
      if (max_digits == 0) return bad_format(err, f);
      if (precision < 1 || precision > max_digits)
        return pt__errorf(err, PT_EINVAL,
                          "invalid type format '%s': decimal%d precision must be 1 to %d", f,
                          (int)bits, max_digits);
      /* Text conversion writes at most this many zeros around the digits. */
      if (scale < -max_digits || scale > max_digits)
        return pt__errorf(err, PT_ENOTSUP,
                          "type format '%s': decimal%d scales beyond -%d..%d are not supported",
                          f, (int)bits, max_digits, max_digits);
      t->id = bits == 32    ? PT_TYPE_DECIMAL32
              : bits == 64  ? PT_TYPE_DECIMAL64
              : bits == 128 ? PT_TYPE_DECIMAL128
                            : PT_TYPE_DECIMAL256;
      t->precision = (int32_t)precision;
      t->scale = (int32_t)scale;
      return PT_OK;
    }
    case 't':
      switch (f[1]) {
        case 'd':
          if (strcmp(f, "tdD") == 0) { t->id = PT_TYPE_DATE32; return PT_OK; }
          if (strcmp(f, "tdm") == 0) { t->id = PT_TYPE_DATE64; return PT_OK; }
          return bad_format(err, f);
        case 't':
          if (f[2] == '\0' || f[3] != '\0' || parse_unit(f[2], &t->unit) != 0)
            return bad_format(err, f);
          t->id = t->unit <= PT_MILLI ? PT_TYPE_TIME32 : PT_TYPE_TIME64;
          return PT_OK;
        case 's':
          if (f[2] == '\0' || parse_unit(f[2], &t->unit) != 0 || f[3] != ':')
            return bad_format(err, f);
          t->id = PT_TYPE_TIMESTAMP;
          t->tz = f[4] != '\0' ? f + 4 : NULL;
          return PT_OK;
        case 'D':
          if (f[2] == '\0' || parse_unit(f[2], &t->unit) != 0 || f[3] != '\0')
            return bad_format(err, f);
          t->id = PT_TYPE_DURATION;
          return PT_OK;
        case 'i':
          if (strcmp(f, "tiM") == 0) { t->id = PT_TYPE_INTERVAL_MONTHS; return PT_OK; }
          if (strcmp(f, "tiD") == 0) { t->id = PT_TYPE_INTERVAL_DAY_TIME; return PT_OK; }
          if (strcmp(f, "tin") == 0) { t->id = PT_TYPE_INTERVAL_MONTH_DAY_NANO; return PT_OK; }
          return bad_format(err, f);
        default: return bad_format(err, f);
      }
    case 'v':
      if (strcmp(f, "vu") == 0) { t->id = PT_TYPE_STRING_VIEW; return PT_OK; }
      if (strcmp(f, "vz") == 0) { t->id = PT_TYPE_BINARY_VIEW; return PT_OK; }
      return bad_format(err, f);
    case '+':
      if (strcmp(f, "+l") == 0) { t->id = PT_TYPE_LIST; return PT_OK; }
      if (strcmp(f, "+L") == 0) { t->id = PT_TYPE_LARGE_LIST; return PT_OK; }
      if (strcmp(f, "+s") == 0) { t->id = PT_TYPE_STRUCT; return PT_OK; }
      if (f[1] == 'w') {
        const char *p = f + 2;
        if (*p++ != ':') return bad_format(err, f);
        int64_t n = parse_count(&p);
        if (n < 0 || *p != '\0') return bad_format(err, f);
        t->id = PT_TYPE_FIXED_SIZE_LIST;
        t->list_size = (int32_t)n;
        return PT_OK;
      }
      if (strcmp(f, "+m") == 0) { t->id = PT_TYPE_MAP; return PT_OK; }
      if (strncmp(f, "+ud:", 4) == 0 || strncmp(f, "+us:", 4) == 0) {
        int8_t codes[128];
        if (pt__union_codes(f + 4, codes, 128) < 0) return bad_format(err, f);
        t->id = f[2] == 's' ? PT_TYPE_SPARSE_UNION : PT_TYPE_DENSE_UNION;
        t->type_codes = f + 4;
        return PT_OK;
      }
      if (strcmp(f, "+vl") == 0) { t->id = PT_TYPE_LIST_VIEW; return PT_OK; }
      if (strcmp(f, "+vL") == 0) { t->id = PT_TYPE_LARGE_LIST_VIEW; return PT_OK; }
      if (strcmp(f, "+r") == 0) { t->id = PT_TYPE_RUN_END_ENCODED; return PT_OK; }
      return bad_format(err, f);
    default: return bad_format(err, f);
  }
}

int pt_type_parse(const struct ArrowSchema *schema, pt_type *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  if (schema == NULL) return pt__errorf(err, PT_EINVAL, "schema is NULL");
  if (schema->release == NULL)
    return pt__errorf(err, PT_EINVAL, "schema has been released");
  if (schema->format == NULL) return pt__errorf(err, PT_EINVAL, "schema has no format string");
  PT_RETURN_NOT_OK(parse_format(schema->format, out, err));

  int want = pt__type_n_children(out->id);
  if (schema->n_children < 0 || (want >= 0 && schema->n_children != want))
    return pt__errorf(err, PT_EINVAL, "type format '%s' needs %d children, the schema has %lld",
                      schema->format, want, (long long)schema->n_children);
  if (schema->n_children > 0) {
    if (schema->children == NULL)
      return pt__errorf(err, PT_EINVAL, "schema has %lld children but no children array",
                        (long long)schema->n_children);
    for (int64_t i = 0; i < schema->n_children; i++)
      if (schema->children[i] == NULL)
        return pt__errorf(err, PT_EINVAL, "schema child %lld is NULL", (long long)i);
  }
  if (pt__type_is_union(out->id)) {
    int8_t codes[128];
    int n = pt__union_codes(out->type_codes, codes, 128);
    if (n != schema->n_children)
      return pt__errorf(err, PT_EINVAL, "union format '%s' lists %d type ids for %lld children",
                        schema->format, n, (long long)schema->n_children);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < i; j++)
        if (codes[i] == codes[j])
          return pt__errorf(err, PT_EINVAL, "union format '%s' lists type id %d twice",
                            schema->format, codes[i]);
  }
  if (out->id == PT_TYPE_RUN_END_ENCODED) {
    const char *r = schema->children[0]->format;
    if (r == NULL || (strcmp(r, "s") != 0 && strcmp(r, "i") != 0 && strcmp(r, "l") != 0))
      return pt__errorf(err, PT_EINVAL,
                        "run-end encoded run ends must be int16, int32 or int64, not '%s'",
                        r ? r : "");
  }
  if (out->id == PT_TYPE_MAP) {
    /* The one child holds the entries: a struct of key and value. */
    const struct ArrowSchema *e = schema->children[0];
    if (e->format == NULL || strcmp(e->format, "+s") != 0 || e->n_children != 2)
      return pt__errorf(err, PT_EINVAL,
                        "map needs one child of format '+s' with two children (key, value), "
                        "not '%s' with %lld",
                        e->format ? e->format : "", (long long)e->n_children);
  }
  if (schema->dictionary != NULL) {
    if (!pt__type_is_signed_int(out->id) && !pt__type_is_unsigned_int(out->id))
      return pt__errorf(err, PT_EINVAL,
                        "dictionary-encoded type needs an integer index type, not '%s'",
                        schema->format);
    out->dictionary = 1;
  }
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Type names */

/* Appends to a fixed buffer like snprintf, counting what did not fit. */
typedef struct name_writer {
  char *buf;
  size_t size;
  size_t len; /* bytes the full name needs (without the NUL) */
} name_writer;

static void put(name_writer *w, const char *fmt, ...) PT_PRINTF(2, 3);
static void put(name_writer *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *at = w->len < w->size ? w->buf + w->len : NULL;
  size_t room = w->len < w->size ? w->size - w->len : 0;
  int n = vsnprintf(at, room, fmt, ap);
  va_end(ap);
  if (n > 0) w->len += (size_t)n;
}

static const char *unit_name(pt_time_unit u) {
  switch (u) {
    case PT_SECOND: return "s";
    case PT_MILLI: return "ms";
    case PT_MICRO: return "us";
    default: return "ns";
  }
}

static const char *simple_name(pt_type_id id) {
  switch (id) {
    case PT_TYPE_NA: return "null";
    case PT_TYPE_BOOL: return "bool";
    case PT_TYPE_INT8: return "int8";
    case PT_TYPE_UINT8: return "uint8";
    case PT_TYPE_INT16: return "int16";
    case PT_TYPE_UINT16: return "uint16";
    case PT_TYPE_INT32: return "int32";
    case PT_TYPE_UINT32: return "uint32";
    case PT_TYPE_INT64: return "int64";
    case PT_TYPE_UINT64: return "uint64";
    case PT_TYPE_HALF_FLOAT: return "float16";
    case PT_TYPE_FLOAT: return "float32";
    case PT_TYPE_DOUBLE: return "float64";
    case PT_TYPE_STRING: return "utf8";
    case PT_TYPE_LARGE_STRING: return "large_utf8";
    case PT_TYPE_BINARY: return "binary";
    case PT_TYPE_LARGE_BINARY: return "large_binary";
    case PT_TYPE_DATE32: return "date32";
    case PT_TYPE_DATE64: return "date64[ms]";
    case PT_TYPE_STRING_VIEW: return "string_view";
    case PT_TYPE_BINARY_VIEW: return "binary_view";
    case PT_TYPE_INTERVAL_MONTHS: return "month_interval";
    case PT_TYPE_INTERVAL_DAY_TIME: return "day_time_interval";
    case PT_TYPE_INTERVAL_MONTH_DAY_NANO: return "month_day_nano_interval";
    default: return NULL;
  }
}

/* Writes the name of schema (ignoring its dictionary). -1 if invalid. */
static int write_name(name_writer *w, const struct ArrowSchema *schema, int depth);

static int write_value_name(name_writer *w, const struct ArrowSchema *schema,
                            const pt_type *t, int depth) {
  const char *simple = simple_name(t->id);
  if (simple != NULL) {
    put(w, "%s", simple);
    return 0;
  }
  switch (t->id) {
    case PT_TYPE_FIXED_SIZE_BINARY: put(w, "fixed_size_binary[%d]", t->byte_width); return 0;
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256:
      put(w, "decimal%d(%d, %d)", pt__type_decimal_bytes(t->id) * 8, t->precision, t->scale);
      return 0;
    case PT_TYPE_TIME32:
    case PT_TYPE_TIME64:
      put(w, "time%d[%s]", t->id == PT_TYPE_TIME32 ? 32 : 64, unit_name(t->unit));
      return 0;
    case PT_TYPE_TIMESTAMP:
      if (t->tz) put(w, "timestamp[%s, tz=%s]", unit_name(t->unit), t->tz);
      else put(w, "timestamp[%s]", unit_name(t->unit));
      return 0;
    case PT_TYPE_DURATION: put(w, "duration[%s]", unit_name(t->unit)); return 0;
    case PT_TYPE_LIST:
    case PT_TYPE_LARGE_LIST:
    case PT_TYPE_FIXED_SIZE_LIST:
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW:
      put(w, "%s<", t->id == PT_TYPE_LIST              ? "list"
                    : t->id == PT_TYPE_LARGE_LIST      ? "large_list"
                    : t->id == PT_TYPE_LIST_VIEW       ? "list_view"
                    : t->id == PT_TYPE_LARGE_LIST_VIEW ? "large_list_view"
                                                       : "fixed_size_list");
      if (write_name(w, schema->children[0], depth + 1) != 0) return -1;
      if (t->id == PT_TYPE_FIXED_SIZE_LIST) put(w, ">[%d]", t->list_size);
      else put(w, ">");
      return 0;
    case PT_TYPE_RUN_END_ENCODED:
      put(w, "run_end_encoded<run_ends=");
      if (write_name(w, schema->children[0], depth + 1) != 0) return -1;
      put(w, ", values=");
      if (write_name(w, schema->children[1], depth + 1) != 0) return -1;
      put(w, ">");
      return 0;
    case PT_TYPE_MAP: {
      const struct ArrowSchema *e = schema->children[0];
      put(w, "map<");
      if (write_name(w, e->children[0], depth + 1) != 0) return -1;
      put(w, ", ");
      if (write_name(w, e->children[1], depth + 1) != 0) return -1;
      put(w, (schema->flags & ARROW_FLAG_MAP_KEYS_SORTED) ? ", keys_sorted>" : ">");
      return 0;
    }
    case PT_TYPE_SPARSE_UNION:
    case PT_TYPE_DENSE_UNION: {
      int8_t codes[128];
      pt__union_codes(t->type_codes, codes, 128);
      put(w, "%s_union<", t->id == PT_TYPE_SPARSE_UNION ? "sparse" : "dense");
      for (int64_t i = 0; i < schema->n_children; i++) {
        const char *name = schema->children[i]->name;
        put(w, "%s%s: ", i ? ", " : "", name ? name : "");
        if (write_name(w, schema->children[i], depth + 1) != 0) return -1;
        put(w, "=%d", codes[i]);
      }
      put(w, ">");
      return 0;
    }
    case PT_TYPE_STRUCT:
      put(w, "struct<");
      for (int64_t i = 0; i < schema->n_children; i++) {
        const char *name = schema->children[i]->name;
        put(w, "%s%s: ", i ? ", " : "", name ? name : "");
        if (write_name(w, schema->children[i], depth + 1) != 0) return -1;
      }
      put(w, ">");
      return 0;
    default: return -1;
  }
}

static int write_name(name_writer *w, const struct ArrowSchema *schema, int depth) {
  pt_type t;
  /* Deep nesting can only come from a hostile schema: stop before the stack. */
  if (depth > 64 || pt_type_parse(schema, &t, NULL) != PT_OK) return -1;
  if (!t.dictionary) return write_value_name(w, schema, &t, depth);
  put(w, "dictionary<values=");
  if (write_name(w, schema->dictionary, depth + 1) != 0) return -1;
  put(w, ", indices=%s%s>", simple_name(t.id),
      (schema->flags & ARROW_FLAG_DICTIONARY_ORDERED) ? ", ordered" : "");
  return 0;
}

int pt_type_name(const struct ArrowSchema *schema, char *buf, size_t size) {
  name_writer w = {buf, size, 0};
  if (size > 0) buf[0] = '\0';
  if (write_name(&w, schema, 0) != 0) {
    if (size > 0) buf[0] = '\0';
    return -1;
  }
  if (w.len > INT32_MAX) return -1;
  return (int)w.len;
}
