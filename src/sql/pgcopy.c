/* pgcopy.c — PostgreSQL's binary COPY format (COPY ... TO STDOUT WITH
 * (FORMAT binary)) decoded straight into Arrow builders, every length bounded
 * by the bytes that remain. The layout, from the PostgreSQL manual's COPY
 * page: an 11-byte signature "PGCOPY\n\377\r\n\0", int32 flags, int32 header
 * extension length and that many bytes; then tuples: int16 field count, then
 * per field int32 length (-1 = NULL) and the value in the type's send format;
 * a field count of -1 ends the stream. All integers are big-endian.
 */
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "sql/sql.h"

/* Days and microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_US INT64_C(946684800000000)

static const uint8_t k_signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

static uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t be64(const uint8_t *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

int pt__pg_kind_of(uint32_t oid, const char *column, const char *type_name, pt__pg_kind *out,
                   pt_error *err) {
  switch (oid) {
  case 16: *out = PT__PG_BOOL; return PT_OK;
  case 21: *out = PT__PG_INT2; return PT_OK;
  case 23: *out = PT__PG_INT4; return PT_OK;
  case 20: *out = PT__PG_INT8; return PT_OK;
  case 700: *out = PT__PG_FLOAT4; return PT_OK;
  case 701: *out = PT__PG_FLOAT8; return PT_OK;
  case 25:   /* text */
  case 1043: /* varchar */
  case 1042: /* bpchar */
  case 19:   /* name */
  case 114:  /* json */
    *out = PT__PG_TEXT;
    return PT_OK;
  case 3802: *out = PT__PG_JSONB; return PT_OK;
  case 17: *out = PT__PG_BYTEA; return PT_OK;
  case 1082: *out = PT__PG_DATE; return PT_OK;
  case 1114: *out = PT__PG_TIMESTAMP; return PT_OK;
  case 1184: *out = PT__PG_TIMESTAMPTZ; return PT_OK;
  case 2950: *out = PT__PG_UUID; return PT_OK;
  case 1700: *out = PT__PG_NUMERIC; return PT_OK;
  case 1083: *out = PT__PG_TIME; return PT_OK;
  case 1186: *out = PT__PG_INTERVAL; return PT_OK;
  /* Arrays of the kinds above (pg_type's _bool, _int2, ...). */
  case 1000: *out = PT__PG_ARRAY_OF(PT__PG_BOOL); return PT_OK;
  case 1005: *out = PT__PG_ARRAY_OF(PT__PG_INT2); return PT_OK;
  case 1007: *out = PT__PG_ARRAY_OF(PT__PG_INT4); return PT_OK;
  case 1016: *out = PT__PG_ARRAY_OF(PT__PG_INT8); return PT_OK;
  case 1021: *out = PT__PG_ARRAY_OF(PT__PG_FLOAT4); return PT_OK;
  case 1022: *out = PT__PG_ARRAY_OF(PT__PG_FLOAT8); return PT_OK;
  case 1009: case 1015: case 1014: case 1003: case 199:
    *out = PT__PG_ARRAY_OF(PT__PG_TEXT); /* text, varchar, bpchar, name, json */
    return PT_OK;
  case 3807: *out = PT__PG_ARRAY_OF(PT__PG_JSONB); return PT_OK;
  case 1001: *out = PT__PG_ARRAY_OF(PT__PG_BYTEA); return PT_OK;
  case 1182: *out = PT__PG_ARRAY_OF(PT__PG_DATE); return PT_OK;
  case 1115: *out = PT__PG_ARRAY_OF(PT__PG_TIMESTAMP); return PT_OK;
  case 1185: *out = PT__PG_ARRAY_OF(PT__PG_TIMESTAMPTZ); return PT_OK;
  case 2951: *out = PT__PG_ARRAY_OF(PT__PG_UUID); return PT_OK;
  case 1231: *out = PT__PG_ARRAY_OF(PT__PG_NUMERIC); return PT_OK;
  case 1183: *out = PT__PG_ARRAY_OF(PT__PG_TIME); return PT_OK;
  case 1187: *out = PT__PG_ARRAY_OF(PT__PG_INTERVAL); return PT_OK;
  default:
    return pt__errorf(err, PT_ENOTSUP,
                      "sql: column \"%s\" has type %s (oid %u), which protium cannot map to "
                      "Arrow; cast it in the query (e.g. ::text) or leave it out",
                      column ? column : "?", type_name ? type_name : "unknown", oid);
  }
}

const char *pt__pg_kind_format(pt__pg_kind kind) {
  if (PT__PG_IS_ARRAY(kind)) return "+l";
  switch (kind) {
  case PT__PG_BOOL: return "b";
  case PT__PG_INT2: return "s";
  case PT__PG_INT4: return "i";
  case PT__PG_INT8: return "l";
  case PT__PG_FLOAT4: return "f";
  case PT__PG_FLOAT8: return "g";
  case PT__PG_TEXT:
  case PT__PG_JSONB: return "u";
  case PT__PG_BYTEA: return "z";
  case PT__PG_DATE: return "tdD";
  case PT__PG_TIMESTAMP: return "tsu:";
  case PT__PG_TIMESTAMPTZ: return "tsu:UTC";
  case PT__PG_UUID: return "w:16";
  case PT__PG_NUMERIC: return "d:38,0";
  case PT__PG_TIME: return "ttu";
  case PT__PG_INTERVAL: return "tin";
  }
  return "n";
}

int pt__pg_schema(int64_t n, const char *const *names, const pt__pg_kind *kinds,
                  const int32_t *typmods, struct ArrowSchema *out, pt_error *err) {
  PT_RETURN_NOT_OK(pt_schema_init(out, "+s", "", 0, n, err));
  for (int64_t i = 0; i < n; i++) {
    pt__pg_kind elem = PT__PG_ELEM(kinds[i]);
    const char *format = pt__pg_kind_format(elem);
    char decimal[32];
    if (elem == PT__PG_NUMERIC) {
      /* numeric's modifier is ((precision << 16) | scale) + 4; -1 when
       * unconstrained, whose values may have any scale. */
      int32_t tm = typmods ? typmods[i] : -1;
      int32_t precision = tm >= 4 ? ((tm - 4) >> 16) & 0xffff : -1;
      int32_t scale = tm >= 4 ? (int16_t)((tm - 4) & 0xffff) : -1;
      if (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
        out->release(out);
        return pt__errorf(err, PT_ENOTSUP,
                          "sql: column \"%s\" is numeric without a precision of at most 38 "
                          "and a scale in 0..precision; cast it in the query "
                          "(e.g. ::numeric(38,6) or ::text)",
                          names[i]);
      }
      snprintf(decimal, sizeof decimal, "d:%d,%d", precision, scale);
      format = decimal;
    }
    int rc;
    if (PT__PG_IS_ARRAY(kinds[i])) {
      /* numeric[]'s modifier is its elements'. */
      rc = pt_schema_init(out->children[i], "+l", names[i], ARROW_FLAG_NULLABLE, 1, err);
      if (rc == PT_OK)
        rc = pt_schema_init(out->children[i]->children[0], format, "item", ARROW_FLAG_NULLABLE,
                            0, err);
    } else {
      rc = pt_schema_init(out->children[i], format, names[i], ARROW_FLAG_NULLABLE, 0, err);
    }
    if (rc != PT_OK) {
      out->release(out);
      return rc;
    }
  }
  return PT_OK;
}

void pt__pgcopy_init(pt__pgcopy *d, int64_t n_columns, const pt__pg_kind *kinds,
                     pt_builder *builder) {
  memset(d, 0, sizeof *d);
  d->n_columns = n_columns;
  d->kinds = kinds;
  d->builder = builder;
}

void pt__pgcopy_set_typmods(pt__pgcopy *d, const int32_t *typmods) { d->typmods = typmods; }

/* numeric's value as decimal128(precision, scale)'s 16 little-endian bytes,
 * computed from the base-10000 digits. 0 when this path cannot tell
 * (malformed, NaN, out of range, more fraction digits than scale): the text
 * path then decides, with its messages. */
static int numeric_direct(const uint8_t *p, int64_t len, int32_t precision, int32_t scale,
                          uint8_t out[16]) {
  static const unsigned __int128 k_max = ((unsigned __int128)1 << 126); /* > 10^38 */
  if (len < 8) return 0;
  int ndigits = (int16_t)be16(p), weight = (int16_t)be16(p + 2);
  uint16_t sign = be16(p + 4);
  if (ndigits < 0 || len != 8 + 2 * (int64_t)ndigits || (sign != 0 && sign != 0x4000) ||
      ndigits > 12)
    return 0;
  unsigned __int128 acc = 0;
  for (int i = 0; i < ndigits; i++) {
    int d = (int16_t)be16(p + 8 + 2 * i);
    if (d < 0 || d > 9999 || acc > k_max / 10000) return 0;
    acc = acc * 10000 + (unsigned)d;
  }
  /* acc is the value times 10^e. */
  int e = 4 * (ndigits - 1 - weight);
  if (ndigits == 0) e = scale;
  for (; e < scale; e++) {
    if (acc > k_max / 10) return 0;
    acc *= 10;
  }
  for (; e > scale; e--) {
    if (acc % 10 != 0) return 0;
    acc /= 10;
  }
  unsigned __int128 limit = 1;
  for (int i = 0; i < precision; i++) limit *= 10;
  if (acc >= limit) return 0;
  if (sign == 0x4000) acc = ~acc + 1; /* two's complement */
  for (int i = 0; i < 16; i++) out[i] = (uint8_t)(acc >> (8 * i));
  return 1;
}

/* Room for a numeric as text: sign, 40 integer digits (weight < 10), the
 * point, 4 * 10 fraction digits at most (dscale <= 38 is checked), NUL. */
#define PT__PG_NUMERIC_TEXT 96

/* numeric's send format: int16 ndigits, int16 weight (of the first digit,
 * in base-10000 places), uint16 sign (0x0000 +, 0x4000 -, 0xC000 NaN,
 * 0xD000 +inf, 0xF000 -inf), int16 dscale (decimal digits after the point),
 * then ndigits int16 digits 0..9999. Written as decimal text to text. */
static int numeric_text(const uint8_t *p, int64_t len, int64_t row, int64_t col, char *text,
                        pt_error *err) {
  if (len < 8)
    return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: numeric of %lld bytes",
                      (long long)row, (long long)col, (long long)len);
  int ndigits = (int16_t)be16(p), weight = (int16_t)be16(p + 2), dscale = (int16_t)be16(p + 6);
  uint16_t sign = be16(p + 4);
  if (ndigits < 0 || len != 8 + 2 * (int64_t)ndigits)
    return pt__errorf(err, PT_EFORMAT,
                      "pgcopy: row %lld column %lld: numeric of %lld bytes for %d digits",
                      (long long)row, (long long)col, (long long)len, ndigits);
  if (sign != 0 && sign != 0x4000)
    return pt__errorf(err, PT_ERANGE,
                      "pgcopy: row %lld column %lld: numeric NaN or infinity has no Arrow "
                      "decimal value; filter it in the query",
                      (long long)row, (long long)col);
  if (weight >= 10 || weight < -11 || dscale < 0 || dscale > 38)
    return pt__errorf(err, PT_ERANGE,
                      "pgcopy: row %lld column %lld: numeric (weight %d, scale %d) does not fit "
                      "a decimal128",
                      (long long)row, (long long)col, weight, dscale);
  int n = 0;
  if (sign == 0x4000) text[n++] = '-';
  if (weight < 0) text[n++] = '0';
  for (int i = 0; i <= weight; i++) {
    int d = i < ndigits ? (int16_t)be16(p + 8 + 2 * i) : 0;
    if (d < 0 || d > 9999)
      return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: numeric digit %d",
                        (long long)row, (long long)col, d);
    n += snprintf(text + n, 5, i == 0 ? "%d" : "%04d", d);
  }
  if (dscale > 0) {
    text[n++] = '.';
    int written = 0;
    for (int place = weight + 1; written < dscale; place++) {
      int d = place >= 0 && place < ndigits ? (int16_t)be16(p + 8 + 2 * place) : 0;
      if (d < 0 || d > 9999)
        return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: numeric digit %d",
                          (long long)row, (long long)col, d);
      char four[5];
      snprintf(four, sizeof four, "%04d", d);
      for (int k = 0; k < 4 && written < dscale; k++) text[n++] = four[k], written++;
    }
  }
  text[n] = 0;
  return PT_OK;
}

/* One non-null field of len bytes at p into builder b. */
static int decode_field(pt__pg_kind kind, pt_builder *b, const uint8_t *p, int64_t len,
                        int64_t row, int64_t col, int32_t typmod, pt_error *err) {
  int64_t want = -1;
  switch (kind) {
  case PT__PG_BOOL: want = 1; break;
  case PT__PG_INT2: want = 2; break;
  case PT__PG_INT4:
  case PT__PG_FLOAT4:
  case PT__PG_DATE: want = 4; break;
  case PT__PG_INT8:
  case PT__PG_FLOAT8:
  case PT__PG_TIME:
  case PT__PG_TIMESTAMP:
  case PT__PG_TIMESTAMPTZ: want = 8; break;
  case PT__PG_UUID:
  case PT__PG_INTERVAL: want = 16; break;
  default: break;
  }
  if (want >= 0 && len != want)
    return pt__errorf(err, PT_EFORMAT,
                      "pgcopy: row %lld column %lld: field of %lld bytes where %lld are expected",
                      (long long)row, (long long)col, (long long)len, (long long)want);
  int rc = PT_OK;
  switch (kind) {
  case PT__PG_BOOL:
    if (p[0] > 1)
      return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: boolean byte %u",
                        (long long)row, (long long)col, p[0]);
    rc = pt_builder_append_int(b, p[0]);
    break;
  case PT__PG_INT2: rc = pt_builder_append_int(b, (int16_t)be16(p)); break;
  case PT__PG_INT4: rc = pt_builder_append_int(b, (int32_t)be32(p)); break;
  case PT__PG_INT8: rc = pt_builder_append_int(b, (int64_t)be64(p)); break;
  case PT__PG_FLOAT4: {
    uint32_t u = be32(p);
    float f;
    memcpy(&f, &u, 4);
    rc = pt_builder_append_double(b, f);
    break;
  }
  case PT__PG_FLOAT8: {
    uint64_t u = be64(p);
    double f;
    memcpy(&f, &u, 8);
    rc = pt_builder_append_double(b, f);
    break;
  }
  case PT__PG_TEXT:
  case PT__PG_BYTEA: rc = pt_builder_append_bytes(b, p, len); break;
  case PT__PG_JSONB:
    if (len < 1 || p[0] != 1)
      return pt__errorf(err, PT_EFORMAT,
                        "pgcopy: row %lld column %lld: jsonb without its version byte 1",
                        (long long)row, (long long)col);
    rc = pt_builder_append_bytes(b, p + 1, len - 1);
    break;
  case PT__PG_DATE: {
    int64_t days = (int32_t)be32(p);
    /* infinity and -infinity are INT32_MAX / INT32_MIN: no Arrow date holds them. */
    if (days == INT32_MAX || days == INT32_MIN)
      return pt__errorf(err, PT_ERANGE,
                        "pgcopy: row %lld column %lld: date 'infinity' has no Arrow value; "
                        "filter or cast it in the query",
                        (long long)row, (long long)col);
    rc = pt_builder_append_int(b, days + PG_EPOCH_DAYS);
    break;
  }
  case PT__PG_TIMESTAMP:
  case PT__PG_TIMESTAMPTZ: {
    int64_t us = (int64_t)be64(p);
    if (us == INT64_MAX || us == INT64_MIN || us > INT64_MAX - PG_EPOCH_US)
      return pt__errorf(err, PT_ERANGE,
                        "pgcopy: row %lld column %lld: timestamp 'infinity' has no Arrow value; "
                        "filter or cast it in the query",
                        (long long)row, (long long)col);
    rc = pt_builder_append_int(b, us + PG_EPOCH_US);
    break;
  }
  case PT__PG_UUID: rc = pt_builder_append_bytes(b, p, 16); break;
  case PT__PG_TIME: {
    int64_t us = (int64_t)be64(p);
    if (us < 0 || us > INT64_C(86400000000))
      return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: time of %lld us",
                        (long long)row, (long long)col, (long long)us);
    /* 24:00:00 is a valid PostgreSQL time but not an Arrow time of day. */
    if (us == INT64_C(86400000000))
      return pt__errorf(err, PT_ERANGE,
                        "pgcopy: row %lld column %lld: time 24:00:00 has no Arrow value; "
                        "filter or cast it in the query", (long long)row, (long long)col);
    rc = pt_builder_append_int(b, us);
    break;
  }
  case PT__PG_INTERVAL: {
    /* int64 microseconds, int32 days, int32 months -> Arrow's int32
     * months, int32 days, int64 nanoseconds. */
    int64_t us = (int64_t)be64(p);
    int32_t days = (int32_t)be32(p + 8), months = (int32_t)be32(p + 12);
    if (us > INT64_MAX / 1000 || us < INT64_MIN / 1000)
      return pt__errorf(err, PT_ERANGE,
                        "pgcopy: row %lld column %lld: interval of %lld us overflows "
                        "nanoseconds", (long long)row, (long long)col, (long long)us);
    int64_t ns = us * 1000;
    uint8_t v[16];
    memcpy(v, &months, 4);
    memcpy(v + 4, &days, 4);
    memcpy(v + 8, &ns, 8);
    rc = pt_builder_append_bytes(b, v, 16);
    break;
  }
  case PT__PG_NUMERIC: {
    /* The modifier as pt__pg_schema read it: ((precision << 16) | scale) + 4. */
    uint8_t v[16];
    if (typmod >= 4 &&
        numeric_direct(p, len, ((typmod - 4) >> 16) & 0xffff, (typmod - 4) & 0xffff, v)) {
      rc = pt_builder_append_bytes(b, v, 16);
      break;
    }
    char text[PT__PG_NUMERIC_TEXT];
    PT_RETURN_NOT_OK(numeric_text(p, len, row, col, text, err));
    rc = pt_builder_append_decimal_string(b, text);
    break;
  }
  }
  if (rc != PT_OK)
    return pt__errorf(err, rc, "pgcopy: row %lld column %lld: %s", (long long)row,
                      (long long)col, pt_builder_last_error(b));
  return PT_OK;
}

/* An array's send format: int32 ndim, int32 flags (1: has nulls), uint32
 * element type oid, per dimension int32 size and int32 lower bound, then
 * each element as a field (int32 length, -1 = NULL, then its bytes). One
 * dimension becomes a list row; none, an empty list. */
static int decode_array(pt__pg_kind kind, pt_builder *b, const uint8_t *p, int64_t len,
                        int64_t row, int64_t col, int32_t typmod, pt_error *err) {
  if (len < 12)
    return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: array of %lld bytes",
                      (long long)row, (long long)col, (long long)len);
  int32_t ndim = (int32_t)be32(p), flags = (int32_t)be32(p + 4);
  if (ndim < 0 || ndim > 6 || (flags & ~1))
    return pt__errorf(err, PT_EFORMAT,
                      "pgcopy: row %lld column %lld: array header (%d dimensions, flags %d)",
                      (long long)row, (long long)col, ndim, flags);
  if (ndim > 1)
    return pt__errorf(err, PT_ENOTSUP,
                      "pgcopy: row %lld column %lld: a %d-dimensional array; protium reads "
                      "one-dimensional ones (unnest it or cast it in the query)",
                      (long long)row, (long long)col, ndim);
  pt_builder *items = pt_builder_child(b, 0);
  int64_t pos = 12, n = 0;
  if (ndim == 1) {
    if (len < 20)
      return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: truncated array",
                        (long long)row, (long long)col);
    n = (int32_t)be32(p + 12);
    pos = 20;
    if (n < 0 || n > (len - pos) / 4)
      return pt__errorf(err, PT_EFORMAT,
                        "pgcopy: row %lld column %lld: array of %lld elements in %lld bytes",
                        (long long)row, (long long)col, (long long)n, (long long)len);
  }
  for (int64_t i = 0; i < n; i++) {
    if (len - pos < 4)
      return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: truncated element %lld",
                        (long long)row, (long long)col, (long long)i);
    int32_t el = (int32_t)be32(p + pos);
    pos += 4;
    if (el == -1) {
      PT_RETURN_NOT_OK(pt_builder_append_null(items, 1));
      continue;
    }
    if (el < 0 || (int64_t)el > len - pos)
      return pt__errorf(err, PT_EFORMAT,
                        "pgcopy: row %lld column %lld: element %lld of %d bytes runs past the "
                        "array", (long long)row, (long long)col, (long long)i, el);
    PT_RETURN_NOT_OK(decode_field(PT__PG_ELEM(kind), items, p + pos, el, row, col, typmod, err));
    pos += el;
  }
  if (pos != len)
    return pt__errorf(err, PT_EFORMAT,
                      "pgcopy: row %lld column %lld: %lld bytes after the array's elements",
                      (long long)row, (long long)col, (long long)(len - pos));
  int rc = pt_builder_append_row(b);
  if (rc != PT_OK)
    return pt__errorf(err, rc, "pgcopy: row %lld column %lld: %s", (long long)row,
                      (long long)col, pt_builder_last_error(b));
  return PT_OK;
}

int pt__pgcopy_feed(pt__pgcopy *d, const uint8_t *data, int64_t len, pt_error *err) {
  int64_t pos = 0;
  if (!d->header_done) {
    if (len < 19 || memcmp(data, k_signature, sizeof k_signature) != 0)
      return pt__errorf(err, PT_EFORMAT,
                        "pgcopy: the stream does not start with the binary COPY signature");
    uint32_t flags = be32(data + 11);
    if (flags & (1u << 16))
      return pt__errorf(err, PT_ENOTSUP, "pgcopy: streams WITH OIDS are not supported");
    if (flags & 0xffffu)
      return pt__errorf(err, PT_EFORMAT, "pgcopy: header flags 0x%x carry critical bits "
                        "this decoder does not know", flags);
    uint32_t ext = be32(data + 15);
    if ((int64_t)ext > len - 19)
      return pt__errorf(err, PT_EFORMAT,
                        "pgcopy: header extension of %u bytes runs past the data", ext);
    pos = 19 + (int64_t)ext;
    d->header_done = 1;
  }
  while (pos < len) {
    if (d->trailer_seen)
      return pt__errorf(err, PT_EFORMAT, "pgcopy: %lld bytes after the end-of-data marker",
                        (long long)(len - pos));
    if (len - pos < 2)
      return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld: truncated field count",
                        (long long)d->rows);
    int16_t nf = (int16_t)be16(data + pos);
    pos += 2;
    if (nf == -1) {
      d->trailer_seen = 1;
      continue;
    }
    if (nf != d->n_columns)
      return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld has %d fields; %lld expected",
                        (long long)d->rows, nf, (long long)d->n_columns);
    for (int64_t c = 0; c < d->n_columns; c++) {
      pt_builder *cb = pt_builder_child(d->builder, c);
      if (len - pos < 4)
        return pt__errorf(err, PT_EFORMAT, "pgcopy: row %lld column %lld: truncated length",
                          (long long)d->rows, (long long)c);
      int32_t fl = (int32_t)be32(data + pos);
      pos += 4;
      if (fl == -1) {
        PT_RETURN_NOT_OK(pt_builder_append_null(cb, 1));
        continue;
      }
      if (fl < 0 || (int64_t)fl > len - pos)
        return pt__errorf(err, PT_EFORMAT,
                          "pgcopy: row %lld column %lld: field length %d runs past the data",
                          (long long)d->rows, (long long)c, fl);
      int32_t tm = d->typmods ? d->typmods[c] : -1;
      PT_RETURN_NOT_OK(PT__PG_IS_ARRAY(d->kinds[c])
                           ? decode_array(d->kinds[c], cb, data + pos, fl, d->rows, c, tm, err)
                           : decode_field(d->kinds[c], cb, data + pos, fl, d->rows, c, tm, err));
      pos += fl;
    }
    int rc = pt_builder_append_row(d->builder);
    if (rc != PT_OK)
      return pt__errorf(err, rc, "pgcopy: row %lld: %s", (long long)d->rows,
                        pt_builder_last_error(d->builder));
    d->rows++;
  }
  return PT_OK;
}

int pt__pgcopy_finish(const pt__pgcopy *d, pt_error *err) {
  if (!d->header_done || !d->trailer_seen)
    return pt__errorf(err, PT_EFORMAT,
                      "pgcopy: the stream ended after %lld rows without its end-of-data marker",
                      (long long)d->rows);
  return PT_OK;
}
