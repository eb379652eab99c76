/* pgwrite.c — writing Arrow into PostgreSQL: the column DDL of a schema,
 * the binary COPY FROM encoder (the inverse of pgcopy.c's decoder) that
 * fills a task attempt's staging table, and the rest of PostgreSQL's half
 * of the exactly-once write (pt__pg_db; stage.c drives it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "arrow/arrow.h"
#include "core/core.h"
#include "sql/sql.h"

#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_US INT64_C(946684800000000)

static const uint8_t k_signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

/* The server's message, trimmed and with url's password masked. */
static int pg_fail(pt_error *err, int code, const char *what, const char *url, PGconn *c) {
  char msg[PT_ERROR_SIZE];
  snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "");
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
  pt__sql_mask_password(msg, url);
  return pt__errorf(err, code, "sql: %s: %s", what, msg);
}

/* ------------------------------------------------------------------------ */
/* Types */

/* The PostgreSQL type a column is written as, or NULL if none fits. A list
 * of a type that fits (itself no list) is a one-dimensional array of it. */
static const char *pg_type_of(const struct ArrowSchema *f, char *buf, size_t size) {
  pt_type t;
  if (pt_type_parse(f, &t, NULL) != PT_OK || t.dictionary) return NULL;
  switch (t.id) {
  case PT_TYPE_LIST: case PT_TYPE_LARGE_LIST: {
    pt_type e;
    if (f->n_children != 1 || pt_type_parse(f->children[0], &e, NULL) != PT_OK ||
        e.id == PT_TYPE_LIST || e.id == PT_TYPE_LARGE_LIST)
      return NULL;
    char ebuf[64];
    const char *et = pg_type_of(f->children[0], ebuf, sizeof ebuf);
    if (!et) return NULL;
    snprintf(buf, size, "%s[]", et);
    return buf;
  }
  case PT_TYPE_TIME32: case PT_TYPE_TIME64: return "time";
  case PT_TYPE_DURATION: case PT_TYPE_INTERVAL_MONTHS: case PT_TYPE_INTERVAL_DAY_TIME:
  case PT_TYPE_INTERVAL_MONTH_DAY_NANO: return "interval";
  case PT_TYPE_BOOL: return "boolean";
  case PT_TYPE_INT8: case PT_TYPE_UINT8: case PT_TYPE_INT16: return "smallint";
  case PT_TYPE_UINT16: case PT_TYPE_INT32: return "integer";
  case PT_TYPE_UINT32: case PT_TYPE_INT64: return "bigint";
  case PT_TYPE_FLOAT: return "real";
  case PT_TYPE_DOUBLE: return "double precision";
  case PT_TYPE_STRING: case PT_TYPE_LARGE_STRING: return "text";
  case PT_TYPE_BINARY: case PT_TYPE_LARGE_BINARY: return "bytea";
  case PT_TYPE_FIXED_SIZE_BINARY: return t.byte_width == 16 ? "uuid" : "bytea";
  case PT_TYPE_DATE32: case PT_TYPE_DATE64: return "date";
  case PT_TYPE_TIMESTAMP: return t.tz && *t.tz ? "timestamptz" : "timestamp";
  case PT_TYPE_DECIMAL128:
    if (t.scale < 0 || t.precision > 1000) return NULL;
    snprintf(buf, size, "numeric(%d,%d)", t.precision, t.scale);
    return buf;
  default: return NULL;
  }
}

/* Appends name as a quoted identifier. */
static int put_ident(pt_buf *out, const char *name) {
  int rc = pt__buf_putc(out, '"');
  for (const char *p = name; *p && rc == PT_OK; p++) {
    if (*p == '"') rc = pt__buf_putc(out, '"');
    if (rc == PT_OK) rc = pt__buf_putc(out, *p);
  }
  if (rc == PT_OK) rc = pt__buf_putc(out, '"');
  return rc;
}

static int put_str(pt_buf *out, const char *s) {
  int rc = PT_OK;
  for (; *s && rc == PT_OK; s++) rc = pt__buf_putc(out, *s);
  return rc;
}

int pt__pg_columns_ddl(const struct ArrowSchema *schema, pt_buf *out, pt_error *err) {
  if (!schema || !schema->format || strcmp(schema->format, "+s") != 0 || schema->n_children < 1)
    return pt__errorf(err, PT_EINVAL, "sql: write: the data needs at least one column");
  int rc = PT_OK;
  for (int64_t c = 0; c < schema->n_children && rc == PT_OK; c++) {
    const struct ArrowSchema *f = schema->children[c];
    char tbuf[64];
    const char *pt = pg_type_of(f, tbuf, sizeof tbuf);
    if (!pt) {
      char tn[128];
      pt_type_name(f, tn, sizeof tn);
      return pt__errorf(err, PT_ENOTSUP,
                        "sql: write: column \"%s\" is %s, which protium cannot write to "
                        "PostgreSQL; cast it first (e.g. to a string)",
                        f->name ? f->name : "", tn);
    }
    if (c) rc = put_str(out, ", ");
    if (rc == PT_OK) rc = put_ident(out, f->name ? f->name : "");
    if (rc == PT_OK) rc = pt__buf_putc(out, ' ');
    if (rc == PT_OK) rc = put_str(out, pt);
  }
  if (rc == PT_OK) rc = pt__buf_putc(out, 0);
  if (rc == PT_OK) out->len--; /* NUL-terminated, not counted */
  if (rc != PT_OK) return pt__errorf(err, PT_ENOMEM, "sql: write: out of memory");
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Binary COPY encoding */

static int put_bytes(pt_buf *out, const void *p, size_t n) {
  const uint8_t *b = p;
  int rc = PT_OK;
  for (size_t i = 0; i < n && rc == PT_OK; i++) rc = pt__buf_putc(out, (char)b[i]);
  return rc;
}

static int put_be(pt_buf *out, uint64_t v, int bytes) {
  int rc = PT_OK;
  for (int i = bytes - 1; i >= 0 && rc == PT_OK; i--) rc = pt__buf_putc(out, (char)(v >> (8 * i)));
  return rc;
}

/* numeric's send format of the unscaled value le (16 bytes, little-endian
 * two's complement) at scale: int16 ndigits, weight, sign, dscale, then
 * base-10000 digits, the first `weight + 1` of them before the point. */
static int put_numeric(pt_buf *out, const uint8_t *le, int scale) {
  unsigned __int128 u = 0;
  for (int i = 15; i >= 0; i--) u = (u << 8) | le[i];
  int neg = (le[15] & 0x80) != 0;
  if (neg) u = ~u + 1;
  char dig[48];
  int n = 0;
  do {
    dig[n++] = (char)('0' + (int)(u % 10));
    u /= 10;
  } while (u > 0);
  /* dig holds the decimal digits, least significant first. Integer part:
   * digits [scale, n); fraction: [0, scale). */
  int int_digits = n > scale ? n - scale : 0;
  int int_groups = (int_digits + 3) / 4, frac_groups = (scale + 3) / 4;
  int16_t groups[24];
  int ng = 0;
  for (int g = int_groups - 1; g >= 0; g--) { /* most significant first */
    int v = 0;
    for (int k = 3; k >= 0; k--) {
      int pos = scale + g * 4 + k;
      v = v * 10 + (pos < n ? dig[pos] - '0' : 0);
    }
    groups[ng++] = (int16_t)v;
  }
  for (int g = 0; g < frac_groups; g++) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
      int pos = scale - 1 - (g * 4 + k); /* the (g*4+k)-th digit after the point */
      v = v * 10 + (pos >= 0 && pos < n ? dig[pos] - '0' : 0);
    }
    groups[ng++] = (int16_t)v;
  }
  int weight = int_groups - 1, first = 0;
  while (first < ng && groups[first] == 0) {
    first++;
    weight--;
  }
  while (ng > first && groups[ng - 1] == 0) ng--;
  int nd = ng - first;
  if (nd == 0) weight = 0, neg = 0;
  int rc = put_be(out, (uint32_t)(8 + 2 * nd), 4);
  if (rc == PT_OK) rc = put_be(out, (uint16_t)nd, 2);
  if (rc == PT_OK) rc = put_be(out, (uint16_t)(int16_t)weight, 2);
  if (rc == PT_OK) rc = put_be(out, neg ? 0x4000 : 0, 2);
  if (rc == PT_OK) rc = put_be(out, (uint16_t)scale, 2);
  for (int i = first; i < ng && rc == PT_OK; i++) rc = put_be(out, (uint16_t)groups[i], 2);
  return rc;
}

static int64_t to_us(int64_t v, pt_time_unit unit, int *ok) {
  *ok = 1;
  switch (unit) {
  case PT_SECOND:
    if (v > INT64_MAX / 1000000 || v < INT64_MIN / 1000000) *ok = 0;
    return *ok ? v * 1000000 : 0;
  case PT_MILLI:
    if (v > INT64_MAX / 1000 || v < INT64_MIN / 1000) *ok = 0;
    return *ok ? v * 1000 : 0;
  case PT_MICRO: return v;
  default: return v / 1000 - (v % 1000 < 0); /* nanoseconds: floored */
  }
}

/* The type OID of an array's elements (the element column's type as
 * pg_type_of maps it). */
static uint32_t elem_oid(const pt_type *t) {
  switch (t->id) {
  case PT_TYPE_BOOL: return 16;
  case PT_TYPE_INT8: case PT_TYPE_UINT8: case PT_TYPE_INT16: return 21;
  case PT_TYPE_UINT16: case PT_TYPE_INT32: return 23;
  case PT_TYPE_UINT32: case PT_TYPE_INT64: return 20;
  case PT_TYPE_FLOAT: return 700;
  case PT_TYPE_DOUBLE: return 701;
  case PT_TYPE_STRING: case PT_TYPE_LARGE_STRING: return 25;
  case PT_TYPE_FIXED_SIZE_BINARY: return t->byte_width == 16 ? 2950 : 17;
  case PT_TYPE_BINARY: case PT_TYPE_LARGE_BINARY: return 17;
  case PT_TYPE_DATE32: case PT_TYPE_DATE64: return 1082;
  case PT_TYPE_TIMESTAMP: return t->tz && *t->tz ? 1184 : 1114;
  case PT_TYPE_DECIMAL128: return 1700;
  case PT_TYPE_TIME32: case PT_TYPE_TIME64: return 1083;
  default: return 1186; /* the intervals and durations */
  }
}

static int put_field(pt_buf *out, const pt__view *v, int64_t i);

/* A one-dimensional array: ndim, has-nulls flag, element OID, then (when
 * not empty) the length and lower bound 1, then each element as a field. */
static int put_array(pt_buf *out, const pt__view *v, int64_t i) {
  int64_t start, end;
  pt__view_list_range(v, i, &start, &end);
  const pt__view *e = &v->children[0];
  if (end - start > INT32_MAX) return PT_ERANGE;
  int nulls = 0;
  for (int64_t k = start; k < end && !nulls; k++) nulls = !pt__view_is_valid(e, k);
  size_t at = out->len;
  int rc = put_be(out, 0, 4); /* the length, filled in below */
  if (rc == PT_OK) rc = put_be(out, end > start ? 1 : 0, 4);
  if (rc == PT_OK) rc = put_be(out, (uint32_t)nulls, 4);
  if (rc == PT_OK) rc = put_be(out, elem_oid(&e->type), 4);
  if (rc == PT_OK && end > start) rc = put_be(out, (uint64_t)(end - start), 4) || put_be(out, 1, 4);
  for (int64_t k = start; k < end && rc == PT_OK; k++)
    rc = pt__view_is_valid(e, k) ? put_field(out, e, k) : put_be(out, 0xffffffffu, 4);
  if (rc != PT_OK) return rc;
  size_t n = out->len - at - 4;
  if (n > INT32_MAX) return PT_ERANGE;
  for (int b = 0; b < 4; b++) out->data[at + (size_t)b] = (char)(n >> (8 * (3 - b)));
  return PT_OK;
}

/* interval's send format: int64 microseconds, int32 days, int32 months. */
static int put_interval(pt_buf *out, int64_t us, int32_t days, int32_t months) {
  return put_be(out, 16, 4) || put_be(out, (uint64_t)us, 8) || put_be(out, (uint32_t)days, 4) ||
         put_be(out, (uint32_t)months, 4);
}

/* One field in the send format of the column's PostgreSQL type. */
static int put_field(pt_buf *out, const pt__view *v, int64_t i) {
  int ok = 1;
  int64_t j = v->offset + i;
  switch (v->type.id) {
  case PT_TYPE_LIST: case PT_TYPE_LARGE_LIST: return put_array(out, v, i);
  case PT_TYPE_TIME32: case PT_TYPE_TIME64: {
    /* Microseconds since midnight; nanoseconds are cut to microseconds. */
    int64_t us = to_us(pt__view_get_int(v, i), v->type.unit, &ok);
    if (!ok || us < 0 || us > INT64_C(86400000000)) return PT_ERANGE;
    return put_be(out, 8, 4) || put_be(out, (uint64_t)us, 8);
  }
  case PT_TYPE_DURATION: {
    int64_t us = to_us(pt__view_get_int(v, i), v->type.unit, &ok);
    return ok ? put_interval(out, us, 0, 0) : PT_ERANGE;
  }
  case PT_TYPE_INTERVAL_MONTHS: return put_interval(out, 0, 0, (int32_t)pt__view_get_int(v, i));
  case PT_TYPE_INTERVAL_DAY_TIME: {
    int32_t d, ms;
    memcpy(&d, v->values + j * 8, 4);
    memcpy(&ms, v->values + j * 8 + 4, 4);
    return put_interval(out, (int64_t)ms * 1000, d, 0);
  }
  case PT_TYPE_INTERVAL_MONTH_DAY_NANO: {
    int32_t m, d;
    int64_t ns;
    memcpy(&m, v->values + j * 16, 4);
    memcpy(&d, v->values + j * 16 + 4, 4);
    memcpy(&ns, v->values + j * 16 + 8, 8);
    return put_interval(out, ns / 1000, d, m); /* cut to microseconds, toward zero */
  }
  case PT_TYPE_BOOL:
    return put_be(out, 1, 4) || pt__buf_putc(out, pt__view_get_bool(v, i) ? 1 : 0);
  case PT_TYPE_INT8: case PT_TYPE_INT16:
    return put_be(out, 2, 4) || put_be(out, (uint64_t)pt__view_get_int(v, i), 2);
  case PT_TYPE_UINT8:
    return put_be(out, 2, 4) || put_be(out, pt__view_get_uint(v, i), 2);
  case PT_TYPE_INT32:
    return put_be(out, 4, 4) || put_be(out, (uint64_t)pt__view_get_int(v, i), 4);
  case PT_TYPE_UINT16:
    return put_be(out, 4, 4) || put_be(out, pt__view_get_uint(v, i), 4);
  case PT_TYPE_INT64:
    return put_be(out, 8, 4) || put_be(out, (uint64_t)pt__view_get_int(v, i), 8);
  case PT_TYPE_UINT32:
    return put_be(out, 8, 4) || put_be(out, pt__view_get_uint(v, i), 8);
  case PT_TYPE_FLOAT: {
    float f = (float)pt__view_get_double(v, i);
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return put_be(out, 4, 4) || put_be(out, bits, 4);
  }
  case PT_TYPE_DOUBLE: {
    double d = pt__view_get_double(v, i);
    uint64_t bits;
    memcpy(&bits, &d, 8);
    return put_be(out, 8, 4) || put_be(out, bits, 8);
  }
  case PT_TYPE_STRING: case PT_TYPE_LARGE_STRING: case PT_TYPE_BINARY:
  case PT_TYPE_LARGE_BINARY: case PT_TYPE_FIXED_SIZE_BINARY: {
    int64_t len;
    const uint8_t *p = pt__view_get_bytes(v, i, &len);
    if (len > INT32_MAX) return PT_ERANGE;
    return put_be(out, (uint64_t)len, 4) || put_bytes(out, p, (size_t)len);
  }
  case PT_TYPE_DATE32:
    return put_be(out, 4, 4) || put_be(out, (uint64_t)(pt__view_get_int(v, i) - PG_EPOCH_DAYS), 4);
  case PT_TYPE_DATE64: {
    int64_t ms = pt__view_get_int(v, i);
    int64_t days = ms / 86400000 - (ms % 86400000 < 0);
    return put_be(out, 4, 4) || put_be(out, (uint64_t)(days - PG_EPOCH_DAYS), 4);
  }
  case PT_TYPE_TIMESTAMP: {
    int64_t us = to_us(pt__view_get_int(v, i), v->type.unit, &ok);
    if (!ok || us < INT64_MIN + PG_EPOCH_US) return PT_ERANGE;
    return put_be(out, 8, 4) || put_be(out, (uint64_t)(us - PG_EPOCH_US), 8);
  }
  case PT_TYPE_DECIMAL128: {
    int64_t len;
    const uint8_t *p = pt__view_get_bytes(v, i, &len);
    return put_numeric(out, p, v->type.scale);
  }
  default: return PT_ENOTSUP;
  }
}

int pt__pgcopy_encode(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                      int header, pt_buf *out, pt_error *err) {
  pt__view v;
  PT_RETURN_NOT_OK(pt__view_init(&v, schema, batch, err));
  size_t keep = out->len;
  int rc = pt__view_validate(&v, NULL, NULL, err);
  if (rc == PT_OK && header)
    rc = put_bytes(out, k_signature, sizeof k_signature) || put_be(out, 0, 4) || put_be(out, 0, 4)
             ? PT_ENOMEM : PT_OK;
  for (int64_t r = 0; r < v.length && rc == PT_OK; r++) {
    if (put_be(out, (uint64_t)v.n_children, 2) != PT_OK) {
      rc = PT_ENOMEM;
      break;
    }
    for (int64_t c = 0; c < v.n_children && rc == PT_OK; c++) {
      const pt__view *cv = &v.children[c];
      if (!pt__view_is_valid(&v, r) || !pt__view_is_valid(cv, r)) {
        rc = put_be(out, 0xffffffffu, 4);
        continue;
      }
      rc = put_field(out, cv, r);
      if (rc == PT_ERANGE || rc == PT_ENOTSUP) {
        rc = pt__errorf(err, rc, "sql: write: row %lld column \"%s\": %s", (long long)r,
                        schema->children[c]->name ? schema->children[c]->name : "",
                        rc == PT_ERANGE ? "the value is out of PostgreSQL's range"
                                        : "the type cannot be written");
        break;
      }
      if (rc != PT_OK) rc = pt__errorf(err, PT_ENOMEM, "sql: write: out of memory");
    }
  }
  if (rc == PT_ENOMEM && (!err || !err->message[0]))
    pt__errorf(err, rc, "sql: write: out of memory");
  if (rc != PT_OK) out->len = keep;
  pt__view_reset(&v);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* The database half of the exactly-once write (stage.c has the rest) */

static int pg_connect(const char *url, void **out, pt_error *err) {
  PGconn *c = PQconnectdb(url);
  if (PQstatus(c) != CONNECTION_OK) {
    int rc = pg_fail(err, PT_EIO, "cannot connect to PostgreSQL", url, c);
    PQfinish(c);
    *out = NULL;
    return rc;
  }
  *out = c;
  return PT_OK;
}

static void pg_close(void *c) { PQfinish(c); }

static int pg_exec(void *conn, const char *sql, const char *what, const char *url,
                   pt_error *err) {
  PGconn *c = conn;
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  PQclear(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_fail(err, PT_EIO, what, url, c);
  return PT_OK;
}

/* One binary COPY FROM per batch (inside the attempt's transaction where
 * the staging table is shared). */
static int pg_bulk_load(void *conn, const char *table, const char *url,
                        const struct ArrowSchema *schema, const struct ArrowArray *batch,
                        pt_buf *buf, pt_error *err) {
  PGconn *c = conn;
  PT_RETURN_NOT_OK(pt__pgcopy_encode(schema, batch, 1, buf, err));
  if (put_be(buf, 0xffff, 2) != PT_OK) return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  pt_buf q = {0};
  int rc = put_str(&q, "COPY ") || put_ident(&q, table) ||
                   put_str(&q, " FROM STDIN WITH (FORMAT binary)") || pt__buf_putc(&q, 0)
               ? pt__errorf(err, PT_ENOMEM, "sql: out of memory")
               : PT_OK;
  PGresult *r = rc == PT_OK ? PQexec(c, q.data) : NULL;
  pt_buf_free(&q);
  if (rc != PT_OK) return rc;
  ExecStatusType st = PQresultStatus(r);
  PQclear(r);
  if (st != PGRES_COPY_IN)
    return pg_fail(err, PT_EIO, "COPY into the staging table failed", url, c);
  if (PQputCopyData(c, buf->data, (int)buf->len) != 1 || PQputCopyEnd(c, NULL) != 1)
    return pg_fail(err, PT_EIO, "COPY into the staging table failed", url, c);
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == PT_OK)
      rc = pg_fail(err, PT_EIO, "COPY into the staging table failed", url, c);
    PQclear(r);
  }
  return rc;
}

/* As the search path finds it. */
static int pg_table_exists(void *conn, const char *table, const char *url, pt_error *err) {
  PGconn *c = conn;
  pt_buf q = {0};
  const char *params[1];
  if (put_ident(&q, table) || pt__buf_putc(&q, 0)) {
    pt_buf_free(&q);
    pt__errorf(err, PT_ENOMEM, "sql: out of memory");
    return -1;
  }
  params[0] = q.data;
  PGresult *r =
      PQexecParams(c, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, params, NULL, NULL, 0);
  pt_buf_free(&q);
  int out = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    out = PQgetvalue(r, 0, 0)[0] == 't';
  else
    pg_fail(err, PT_EIO, "cannot look the table up", url, c);
  PQclear(r);
  return out;
}

static int pg_list_tables(void *conn, const char *pattern, const char *url, char ***names,
                          int64_t *n, pt_error *err) {
  PGconn *c = conn;
  *names = NULL;
  *n = 0;
  const char *params[1] = {pattern};
  PGresult *r = PQexecParams(c, "SELECT tablename FROM pg_tables WHERE tablename LIKE $1", 1,
                             NULL, params, NULL, NULL, 0);
  int rc = PT_OK;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    rc = pg_fail(err, PT_EIO, "cannot list the staging tables", url, c);
  } else {
    int64_t cap = 0;
    for (int i = 0; i < PQntuples(r) && rc == PT_OK; i++) {
      char *dup = pt__strdup(PQgetvalue(r, i, 0));
      if (!dup || pt__grow((void **)names, &cap, *n + 1, sizeof **names) != PT_OK) {
        pt__free(dup);
        rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory");
      } else {
        (*names)[(*n)++] = dup;
      }
    }
  }
  PQclear(r);
  return rc;
}

static int pg_query_int(void *conn, const char *sql, const char *what, const char *url,
                        int64_t *out, pt_error *err) {
  PGconn *c = conn;
  PGresult *r = PQexec(c, sql);
  int rc = PT_OK;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1 &&
      !PQgetisnull(r, 0, 0))
    *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  else
    rc = pg_fail(err, PT_EIO, what, url, c);
  PQclear(r);
  return rc;
}

/* lock_timeout bounds the wait; SET LOCAL ends with the transaction. */
static int pg_lock_exclusive(void *conn, const char *table, int64_t wait_ms, const char *url,
                             pt_error *err) {
  char set[64];
  snprintf(set, sizeof set, "SET LOCAL lock_timeout = %lld", (long long)wait_ms);
  pt_buf q = {0};
  int rc = pg_exec(conn, set, "cannot set lock_timeout", url, err);
  if (rc == PT_OK && (put_str(&q, "LOCK TABLE ") || put_ident(&q, table) ||
                      put_str(&q, " IN ACCESS EXCLUSIVE MODE") || pt__buf_putc(&q, 0)))
    rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  else if (rc == PT_OK)
    rc = pg_exec(conn, q.data, "cannot lock the staging table", url, err);
  pt_buf_free(&q);
  return rc;
}

/* Unlogged staging tables: one is rewritten by a retry anyway, never read
 * after a crash; skipping the WAL halves the write. Into a new table the
 * attempts share one logged staging table instead, each in one
 * transaction, told apart by xmin (the id of the transaction that wrote a
 * row, which a row keeps unless updated): the commit deletes the rows of
 * attempts that lost and renames the table to the target, whose rows then
 * need no second copy, and the WAL is written by the tasks' COPYs in
 * parallel. TRUNCATE is transactional in PostgreSQL, and so are CREATE
 * TABLE and ALTER TABLE ... RENAME. */
const pt__sql_db pt__pg_db = {
    .create_staging = "CREATE UNLOGGED TABLE ",
    .create_staging_logged = "CREATE TABLE ",
    .row_xact = "xmin",
    .begin = "BEGIN",
    .clear = "TRUNCATE TABLE ",
    .ddl_in_transaction = 1,
    .connect = pg_connect,
    .close = pg_close,
    .exec = pg_exec,
    .quote = put_ident,
    .columns_ddl = pt__pg_columns_ddl,
    .bulk_load = pg_bulk_load,
    .table_exists = pg_table_exists,
    .list_tables = pg_list_tables,
    .query_int = pg_query_int,
    .lock_exclusive = pg_lock_exclusive,
};
