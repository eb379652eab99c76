/* mysql.c — MySQL and MariaDB through libmariadb: a query read as Arrow
 * batches over the text protocol (streamed with mysql_use_result, each
 * column's text converted by its declared type), and MySQL's half of the
 * exactly-once write (pt__my_db, driven by stage.c): staging tables filled
 * by multi-row INSERTs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "core/core.h"
#include "sql/sql.h"

/* An INSERT statement is sent when it reaches this many bytes. */
#define INSERT_BYTES (1 << 20)

/* ------------------------------------------------------------------------ */
/* Connections */

typedef struct my_url {
  char user[128], password[256], host[256], db[128];
  unsigned port;
} my_url;

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* s[0, n) with %XX decoded into out (size bytes); -1 if it does not fit. */
static int decode(const char *s, size_t n, char *out, size_t size) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (o + 1 >= size) return -1;
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = 0;
  return 0;
}

/* mysql://user:password@host:port/db (or mariadb://). */
static int parse_url(const char *url, my_url *u, pt_error *err) {
  memset(u, 0, sizeof *u);
  u->port = 3306;
  const char *p = strstr(url, "://");
  if (!p) return pt__errorf(err, PT_EINVAL, "sql: not a mysql:// URL");
  p += 3;
  const char *slash = strchr(p, '/'), *end = slash ? slash : p + strlen(p);
  const char *at = memchr(p, '@', (size_t)(end - p));
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *ue = colon ? colon : at;
    if (decode(p, (size_t)(ue - p), u->user, sizeof u->user) != 0 ||
        (colon &&
         decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof u->password) != 0))
      return pt__errorf(err, PT_EINVAL, "sql: the URL's user or password is too long");
    p = at + 1;
  }
  const char *colon = memchr(p, ':', (size_t)(end - p));
  const char *he = colon ? colon : end;
  if ((size_t)(he - p) >= sizeof u->host)
    return pt__errorf(err, PT_EINVAL, "sql: the URL's host is too long");
  memcpy(u->host, p, (size_t)(he - p));
  u->host[he - p] = 0;
  if (colon) {
    char *e;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &e, 10);
    if (e != end || port == 0 || port > 65535 || errno)
      return pt__errorf(err, PT_EINVAL, "sql: the URL's port is not a number from 1 to 65535");
    u->port = (unsigned)port;
  }
  if (slash) {
    const char *q = strchr(slash + 1, '?');
    size_t n = q ? (size_t)(q - slash - 1) : strlen(slash + 1);
    if (decode(slash + 1, n, u->db, sizeof u->db) != 0)
      return pt__errorf(err, PT_EINVAL, "sql: the URL's database name is too long");
  }
  if (!u->password[0] && getenv("MYSQL_PWD"))
    snprintf(u->password, sizeof u->password, "%s", getenv("MYSQL_PWD"));
  return PT_OK;
}

static int my_fail(pt_error *err, int code, const char *what, const char *url, MYSQL *c) {
  char msg[PT_ERROR_SIZE];
  snprintf(msg, sizeof msg, "%s", c ? mysql_error(c) : "out of memory");
  pt__sql_mask_password(msg, url);
  return pt__errorf(err, code, "sql: %s: %s", what, msg);
}

/* A connection in UTC (TIMESTAMP columns then read and write as UTC) with
 * the UTF-8 character set. On PT_OK the caller owns *out (mysql_close). */
static int my_connect(const char *url, MYSQL **out, pt_error *err) {
  my_url u;
  *out = NULL;
  PT_RETURN_NOT_OK(parse_url(url, &u, err));
  MYSQL *c = mysql_init(NULL);
  if (!c) return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  mysql_options(c, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(c, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
  if (!mysql_real_connect(c, u.host[0] ? u.host : "127.0.0.1", u.user[0] ? u.user : NULL,
                          u.password[0] ? u.password : NULL, u.db[0] ? u.db : NULL, u.port, NULL,
                          0)) {
    int rc = my_fail(err, PT_EIO, "cannot connect to MySQL", url, c);
    mysql_close(c);
    return rc;
  }
  *out = c;
  return PT_OK;
}

static int my_exec(MYSQL *c, const char *sql, size_t len, const char *what, const char *url,
                   pt_error *err) {
  if (mysql_real_query(c, sql, (unsigned long)len) != 0) return my_fail(err, PT_EIO, what, url, c);
  MYSQL_RES *r = mysql_store_result(c);
  if (r) mysql_free_result(r);
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Reading */

typedef enum my_kind {
  MK_INT, MK_UINT, MK_FLOAT, MK_DECIMAL, MK_TEXT, MK_BINARY, MK_DATE, MK_DATETIME,
} my_kind;

struct pt__my_reader {
  MYSQL *conn;
  MYSQL_RES *res;
  char *url;
  int64_t n;
  my_kind *kinds;
  struct ArrowSchema schema;
  pt_builder *builder;
  int done;
};

void pt__my_reader_free(pt__my_reader *r) {
  if (!r) return;
  if (r->res) mysql_free_result(r->res); /* reads what is left of a streamed result */
  if (r->conn) mysql_close(r->conn);
  pt_builder_free(r->builder);
  if (r->schema.release) r->schema.release(&r->schema);
  free(r->kinds);
  free(r->url);
  free(r);
}

const struct ArrowSchema *pt__my_reader_schema(const pt__my_reader *r) { return &r->schema; }

static const char *type_word(enum enum_field_types t) {
  switch (t) {
  case MYSQL_TYPE_TIME: return "time";
  case MYSQL_TYPE_BIT: return "bit";
  case MYSQL_TYPE_GEOMETRY: return "geometry";
  default: return "unknown";
  }
}

/* The Arrow format and kind of a result column; PT_ENOTSUP by name. */
static int map_field(const MYSQL_FIELD *f, char *fmt, size_t size, my_kind *k, pt_error *err) {
  int un = (f->flags & UNSIGNED_FLAG) != 0;
  my_kind ik = un ? MK_UINT : MK_INT;
  switch (f->type) {
  case MYSQL_TYPE_TINY: snprintf(fmt, size, un ? "C" : "c"), *k = ik; return PT_OK;
  case MYSQL_TYPE_SHORT: snprintf(fmt, size, un ? "S" : "s"), *k = ik; return PT_OK;
  case MYSQL_TYPE_INT24:
  case MYSQL_TYPE_LONG: snprintf(fmt, size, un ? "I" : "i"), *k = ik; return PT_OK;
  case MYSQL_TYPE_LONGLONG: snprintf(fmt, size, un ? "L" : "l"), *k = ik; return PT_OK;
  case MYSQL_TYPE_YEAR: snprintf(fmt, size, "s"); *k = MK_INT; return PT_OK;
  case MYSQL_TYPE_FLOAT: snprintf(fmt, size, "f"); *k = MK_FLOAT; return PT_OK;
  case MYSQL_TYPE_DOUBLE: snprintf(fmt, size, "g"); *k = MK_FLOAT; return PT_OK;
  case MYSQL_TYPE_DECIMAL:
  case MYSQL_TYPE_NEWDECIMAL: {
    /* length counts the digits, the point (when decimals) and a sign. */
    long p = (long)f->length - (f->decimals > 0 ? 1 : 0) - (un ? 0 : 1);
    if (p < 1 || p > 38 || f->decimals > 38) {
      return pt__errorf(err, PT_ENOTSUP,
                        "sql: column \"%s\" is decimal(%ld,%u), wider than protium's 38 digits; "
                        "cast it in the query (e.g. to char) or leave it out", f->name, p,
                        f->decimals);
    }
    snprintf(fmt, size, "d:%ld,%u", p, f->decimals);
    *k = MK_DECIMAL;
    return PT_OK;
  }
  case MYSQL_TYPE_DATE:
  case MYSQL_TYPE_NEWDATE: snprintf(fmt, size, "tdD"); *k = MK_DATE; return PT_OK;
  case MYSQL_TYPE_DATETIME: snprintf(fmt, size, "tsu:"); *k = MK_DATETIME; return PT_OK;
  case MYSQL_TYPE_TIMESTAMP: snprintf(fmt, size, "tsu:UTC"); *k = MK_DATETIME; return PT_OK;
  case MYSQL_TYPE_NULL:
  case MYSQL_TYPE_JSON:
  case MYSQL_TYPE_ENUM:
  case MYSQL_TYPE_SET: snprintf(fmt, size, "u"); *k = MK_TEXT; return PT_OK;
  case MYSQL_TYPE_VARCHAR:
  case MYSQL_TYPE_VAR_STRING:
  case MYSQL_TYPE_STRING:
  case MYSQL_TYPE_TINY_BLOB:
  case MYSQL_TYPE_MEDIUM_BLOB:
  case MYSQL_TYPE_LONG_BLOB:
  case MYSQL_TYPE_BLOB:
    /* Character set 63 is "binary": BLOB, BINARY, VARBINARY. */
    if (f->charsetnr == 63) snprintf(fmt, size, "z"), *k = MK_BINARY;
    else snprintf(fmt, size, "u"), *k = MK_TEXT;
    return PT_OK;
  default:
    return pt__errorf(err, PT_ENOTSUP,
                      "sql: column \"%s\" has MySQL type %s (%d), which protium cannot map to "
                      "Arrow; cast it in the query (e.g. to char) or leave it out", f->name,
                      type_word(f->type), (int)f->type);
  }
}

int pt__my_reader_open(const char *url, const char *query, int describe_only,
                       pt__my_reader **out, pt_error *err) {
  *out = NULL;
  pt__my_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->url = strdup(url))) {
    free(r);
    return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  int rc = my_connect(url, &r->conn, err);
  if (rc != PT_OK) goto fail;
  /* Describing runs the query with no rows asked for. */
  pt_buf q = {0};
  const char *head = describe_only ? "SELECT * FROM (" : "";
  const char *tail = describe_only ? ") AS pt_d LIMIT 0" : "";
  for (const char *s = head; *s; s++) pt__buf_putc(&q, *s);
  for (const char *s = query; *s; s++) pt__buf_putc(&q, *s);
  for (const char *s = tail; *s; s++) pt__buf_putc(&q, *s);
  if (pt__buf_putc(&q, 0) != PT_OK) {
    pt_buf_free(&q);
    rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory");
    goto fail;
  }
  int qrc = mysql_real_query(r->conn, q.data, (unsigned long)(q.len - 1));
  pt_buf_free(&q);
  if (qrc != 0) {
    rc = my_fail(err, PT_EINVAL, "the query was refused", url, r->conn);
    goto fail;
  }
  r->res = mysql_use_result(r->conn);
  if (!r->res) {
    rc = my_fail(err, PT_EIO, "the query gave no result", url, r->conn);
    goto fail;
  }
  r->n = mysql_num_fields(r->res);
  MYSQL_FIELD *fields = mysql_fetch_fields(r->res);
  r->kinds = calloc((size_t)(r->n ? r->n : 1), sizeof *r->kinds);
  if (!r->kinds) {
    rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory");
    goto fail;
  }
  rc = pt_schema_init(&r->schema, "+s", "", 0, r->n, err);
  for (int64_t i = 0; i < r->n && rc == PT_OK; i++) {
    char fmt[32];
    rc = map_field(&fields[i], fmt, sizeof fmt, &r->kinds[i], err);
    if (rc == PT_OK)
      rc = pt_schema_init(r->schema.children[i], fmt, fields[i].name, ARROW_FLAG_NULLABLE, 0, err);
  }
  if (rc == PT_OK && !describe_only) rc = pt_builder_new(&r->schema, &r->builder, err);
  if (rc != PT_OK) goto fail;
  if (describe_only) r->done = 1;
  *out = r;
  return PT_OK;
fail:
  pt__my_reader_free(r);
  return rc;
}

static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* YYYY-MM-DD; 0 for MySQL's zero dates and anything malformed. */
static int parse_date(const char *s, unsigned long n, int64_t *days) {
  int y, m, d;
  if (n < 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m) ||
      !digits(s + 8, 2, &d) || m < 1 || m > 12 || d < 1 || d > 31)
    return 0;
  *days = days_from_civil(y, m, d);
  return 1;
}

/* YYYY-MM-DD HH:MM:SS[.ffffff] to microseconds. */
static int parse_datetime(const char *s, unsigned long n, int64_t *us) {
  int64_t days;
  int h, mi, se;
  if (!parse_date(s, n, &days) || n < 19 || s[10] != ' ' || !digits(s + 11, 2, &h) ||
      !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
    return 0;
  int64_t frac = 0;
  if (n > 19) {
    if (s[19] != '.') return 0;
    int k = 0;
    for (unsigned long i = 20; i < n; i++, k++) {
      if (s[i] < '0' || s[i] > '9' || k >= 6) return 0;
      frac = frac * 10 + (s[i] - '0');
    }
    for (; k < 6; k++) frac *= 10;
  }
  *us = ((days * 24 + h) * 60 + mi) * INT64_C(60000000) + se * INT64_C(1000000) + frac;
  return 1;
}

/* One text value into child c; zero dates (0000-00-00) become null. */
static int append_value(pt__my_reader *r, int64_t c, const char *s, unsigned long n,
                        pt_error *err) {
  pt_builder *b = pt_builder_child(r->builder, c);
  char tmp[80];
  int64_t v;
  int ok = 1, rc;
  switch (r->kinds[c]) {
  case MK_INT:
  case MK_UINT:
  case MK_FLOAT:
  case MK_DECIMAL:
    if (n >= sizeof tmp) {
      ok = 0;
      break;
    }
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (r->kinds[c] == MK_DECIMAL) return pt_builder_append_decimal_string(b, tmp);
    char *e;
    errno = 0;
    if (r->kinds[c] == MK_FLOAT) {
      double d = strtod(tmp, &e);
      if (*e || e == tmp) ok = 0;
      else return pt_builder_append_double(b, d);
    } else if (r->kinds[c] == MK_UINT) {
      unsigned long long u = strtoull(tmp, &e, 10);
      if (*e || e == tmp || errno) ok = 0;
      else return pt_builder_append_uint(b, u);
    } else {
      long long i = strtoll(tmp, &e, 10);
      if (*e || e == tmp || errno) ok = 0;
      else return pt_builder_append_int(b, i);
    }
    break;
  case MK_TEXT:
  case MK_BINARY: return pt_builder_append_bytes(b, s, (int64_t)n);
  case MK_DATE:
    if (parse_date(s, n, &v)) return pt_builder_append_int(b, v);
    if (n >= 10 && strncmp(s, "0000-00-00", 10) == 0) return pt_builder_append_null(b, 1);
    ok = 0;
    break;
  case MK_DATETIME:
    if (parse_datetime(s, n, &v)) return pt_builder_append_int(b, v);
    if (n >= 10 && strncmp(s, "0000-00-00", 10) == 0) return pt_builder_append_null(b, 1);
    ok = 0;
    break;
  }
  (void)ok;
  rc = pt__errorf(err, PT_EFORMAT, "sql: column \"%s\": cannot read '%.*s' as %s",
                  r->schema.children[c]->name, (int)(n > 40 ? 40 : n), s,
                  r->schema.children[c]->format);
  return rc;
}

int pt__my_reader_next(pt__my_reader *r, int64_t batch_rows, struct ArrowArray *out,
                       pt_error *err) {
  out->release = NULL;
  if (r->done) return PT_OK;
  int64_t rows = 0;
  MYSQL_ROW row;
  while (rows < batch_rows && (row = mysql_fetch_row(r->res)) != NULL) {
    unsigned long *len = mysql_fetch_lengths(r->res);
    for (int64_t c = 0; c < r->n; c++) {
      int rc = row[c] ? append_value(r, c, row[c], len[c], err)
                      : pt_builder_append_null(pt_builder_child(r->builder, c), 1);
      if (rc != PT_OK) {
        r->done = 1;
        if (!err || !err->message[0] || rc == PT_ENOMEM)
          pt__errorf(err, rc, "sql: %s", pt_builder_last_error(r->builder));
        return rc;
      }
    }
    PT_RETURN_NOT_OK(pt_builder_append_row(r->builder));
    rows++;
  }
  if (rows < batch_rows) {
    r->done = 1;
    if (mysql_errno(r->conn)) return my_fail(err, PT_EIO, "reading rows failed", r->url, r->conn);
    if (rows == 0) return PT_OK;
  }
  return pt_builder_finish(r->builder, out, err);
}

/* ------------------------------------------------------------------------ */
/* Writing */

static int put_str(pt_buf *out, const char *s) {
  int rc = PT_OK;
  for (; *s && rc == PT_OK; s++) rc = pt__buf_putc(out, *s);
  return rc;
}

static int put_ident(pt_buf *out, const char *name) {
  int rc = pt__buf_putc(out, '`');
  for (const char *p = name; *p && rc == PT_OK; p++) {
    if (*p == '`') rc = pt__buf_putc(out, '`');
    if (rc == PT_OK) rc = pt__buf_putc(out, *p);
  }
  if (rc == PT_OK) rc = pt__buf_putc(out, '`');
  return rc;
}

static const char *my_type_of(const struct ArrowSchema *f, char *buf, size_t size) {
  pt_type t;
  if (pt_type_parse(f, &t, NULL) != PT_OK || t.dictionary) return NULL;
  switch (t.id) {
  case PT_TYPE_BOOL: return "BOOLEAN";
  case PT_TYPE_INT8: return "TINYINT";
  case PT_TYPE_UINT8: return "TINYINT UNSIGNED";
  case PT_TYPE_INT16: return "SMALLINT";
  case PT_TYPE_UINT16: return "SMALLINT UNSIGNED";
  case PT_TYPE_INT32: return "INT";
  case PT_TYPE_UINT32: return "INT UNSIGNED";
  case PT_TYPE_INT64: return "BIGINT";
  case PT_TYPE_UINT64: return "BIGINT UNSIGNED";
  case PT_TYPE_FLOAT: return "FLOAT";
  case PT_TYPE_DOUBLE: return "DOUBLE";
  case PT_TYPE_STRING: case PT_TYPE_LARGE_STRING: return "LONGTEXT";
  case PT_TYPE_BINARY: case PT_TYPE_LARGE_BINARY: return "LONGBLOB";
  case PT_TYPE_FIXED_SIZE_BINARY: snprintf(buf, size, "BINARY(%d)", t.byte_width); return buf;
  case PT_TYPE_DATE32: return "DATE";
  case PT_TYPE_TIMESTAMP: return t.tz && *t.tz ? "TIMESTAMP(6) NULL" : "DATETIME(6)";
  case PT_TYPE_DECIMAL128:
    if (t.scale < 0 || t.precision > 65 || t.scale > 30) return NULL;
    snprintf(buf, size, "DECIMAL(%d,%d)", t.precision, t.scale);
    return buf;
  default: return NULL;
  }
}

static int my_columns_ddl(const struct ArrowSchema *schema, pt_buf *out, pt_error *err) {
  if (!schema || !schema->format || strcmp(schema->format, "+s") != 0 || schema->n_children < 1)
    return pt__errorf(err, PT_EINVAL, "sql: write: the data needs at least one column");
  int rc = PT_OK;
  for (int64_t c = 0; c < schema->n_children && rc == PT_OK; c++) {
    const struct ArrowSchema *f = schema->children[c];
    char tbuf[64];
    const char *t = my_type_of(f, tbuf, sizeof tbuf);
    if (!t) {
      char tn[128];
      pt_type_name(f, tn, sizeof tn);
      return pt__errorf(err, PT_ENOTSUP,
                        "sql: write: column \"%s\" is %s, which protium cannot write to MySQL; "
                        "cast it first (e.g. to a string)", f->name ? f->name : "", tn);
    }
    if (c) rc = put_str(out, ", ");
    if (rc == PT_OK) rc = put_ident(out, f->name ? f->name : "");
    if (rc == PT_OK) rc = pt__buf_putc(out, ' ');
    if (rc == PT_OK) rc = put_str(out, t);
  }
  if (rc == PT_OK) rc = pt__buf_putc(out, 0);
  if (rc == PT_OK) out->len--;
  if (rc != PT_OK) return pt__errorf(err, PT_ENOMEM, "sql: write: out of memory");
  return PT_OK;
}

/* Appends one value as SQL text (strings escaped by the connection). */
static int put_value(MYSQL *conn, pt_buf *out, const struct ArrowSchema *f,
                     const struct ArrowArray *a, int64_t i) {
  if (!pt_array_is_valid(f, a, i)) return put_str(out, "NULL");
  pt_type t;
  if (pt_type_parse(f, &t, NULL) != PT_OK) return PT_ENOTSUP;
  int64_t j = a->offset + i;
  char num[64];
  const void *vals = a->buffers[1];
  switch (t.id) {
  case PT_TYPE_BOOL:
    return put_str(out, (((const uint8_t *)vals)[j >> 3] >> (j & 7)) & 1 ? "1" : "0");
  case PT_TYPE_INT8: snprintf(num, sizeof num, "%d", ((const int8_t *)a->buffers[1])[j]); break;
  case PT_TYPE_UINT8: snprintf(num, sizeof num, "%u", ((const uint8_t *)a->buffers[1])[j]); break;
  case PT_TYPE_INT16: snprintf(num, sizeof num, "%d", ((const int16_t *)a->buffers[1])[j]); break;
  case PT_TYPE_UINT16: snprintf(num, sizeof num, "%u", ((const uint16_t *)a->buffers[1])[j]); break;
  case PT_TYPE_INT32: snprintf(num, sizeof num, "%d", ((const int32_t *)a->buffers[1])[j]); break;
  case PT_TYPE_UINT32: snprintf(num, sizeof num, "%u", ((const uint32_t *)a->buffers[1])[j]); break;
  case PT_TYPE_INT64:
    snprintf(num, sizeof num, "%lld", (long long)((const int64_t *)vals)[j]);
    break;
  case PT_TYPE_UINT64:
    snprintf(num, sizeof num, "%llu", (unsigned long long)((const uint64_t *)vals)[j]);
    break;
  case PT_TYPE_FLOAT: snprintf(num, sizeof num, "%.9g", (double)((const float *)vals)[j]); break;
  case PT_TYPE_DOUBLE: snprintf(num, sizeof num, "%.17g", ((const double *)vals)[j]); break;
  case PT_TYPE_DATE32: {
    int64_t z = ((const int32_t *)a->buffers[1])[j] + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(num, sizeof num, "'%04lld-%02d-%02d'", (long long)y, m, d);
    break;
  }
  case PT_TYPE_TIMESTAMP: {
    int64_t v = ((const int64_t *)a->buffers[1])[j], us;
    switch (t.unit) {
    case PT_SECOND: us = v * 1000000; break;
    case PT_MILLI: us = v * 1000; break;
    case PT_MICRO: us = v; break;
    default: us = v / 1000 - (v % 1000 < 0); break;
    }
    int64_t days = us / INT64_C(86400000000) - (us % INT64_C(86400000000) < 0);
    int64_t rem = us - days * INT64_C(86400000000);
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(num, sizeof num, "'%04lld-%02d-%02d %02d:%02d:%02d.%06lld'", (long long)y, m, d,
             (int)(rem / INT64_C(3600000000)), (int)(rem / 60000000 % 60),
             (int)(rem / 1000000 % 60), (long long)(rem % 1000000));
    break;
  }
  case PT_TYPE_DECIMAL128: {
    const uint8_t *le = (const uint8_t *)a->buffers[1] + j * 16;
    unsigned __int128 u = 0;
    for (int k = 15; k >= 0; k--) u = (u << 8) | le[k];
    int neg = (le[15] & 0x80) != 0;
    if (neg) u = ~u + 1;
    char dig[48];
    int n = 0;
    do {
      dig[n++] = (char)('0' + (int)(u % 10));
      u /= 10;
    } while (u > 0);
    while (n <= t.scale) dig[n++] = '0';
    int o = 0;
    if (neg) num[o++] = '-';
    for (int k = n - 1; k >= 0; k--) {
      if (k == t.scale - 1) num[o++] = '.';
      num[o++] = dig[k];
    }
    num[o] = 0;
    break;
  }
  case PT_TYPE_STRING: case PT_TYPE_BINARY: case PT_TYPE_LARGE_STRING:
  case PT_TYPE_LARGE_BINARY: case PT_TYPE_FIXED_SIZE_BINARY: {
    const char *p;
    int64_t n;
    if (t.id == PT_TYPE_FIXED_SIZE_BINARY) {
      n = t.byte_width;
      p = (const char *)a->buffers[1] + j * n;
    } else if (t.id == PT_TYPE_LARGE_STRING || t.id == PT_TYPE_LARGE_BINARY) {
      const int64_t *off = a->buffers[1];
      p = (const char *)a->buffers[2] + off[j];
      n = off[j + 1] - off[j];
    } else {
      const int32_t *off = a->buffers[1];
      p = (const char *)a->buffers[2] + off[j];
      n = off[j + 1] - off[j];
    }
    /* Escaped text takes at most 2n + 1 bytes. */
    if (pt__buf_reserve(out, (size_t)(2 * n + 3)) != PT_OK) return PT_ENOMEM;
    out->data[out->len++] = '\'';
    out->len += mysql_real_escape_string(conn, out->data + out->len, p, (unsigned long)n);
    out->data[out->len++] = '\'';
    return PT_OK;
  }
  default: return PT_ENOTSUP;
  }
  return put_str(out, num);
}

/* Multi-row INSERTs of about INSERT_BYTES, each committed on its own. */
static int my_bulk_load(void *conn, const char *table, const char *url,
                        const struct ArrowSchema *schema, const struct ArrowArray *batch,
                        pt_buf *sql, pt_error *err) {
  PT_RETURN_NOT_OK(pt_array_validate(schema, batch, err));
  int64_t rows = 0;
  for (int64_t r = 0; r < batch->length; r++) {
    int rc = PT_OK;
    if (rows == 0) {
      if (put_str(sql, "INSERT INTO ") || put_ident(sql, table) || put_str(sql, " VALUES "))
        return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
    } else if (pt__buf_putc(sql, ',')) {
      return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
    }
    rc = pt__buf_putc(sql, '(');
    for (int64_t c = 0; c < schema->n_children && rc == PT_OK; c++) {
      if (c) rc = pt__buf_putc(sql, ',');
      /* A null row of the struct writes every field null. */
      if (rc == PT_OK)
        rc = pt_array_is_valid(schema, batch, r)
                 ? put_value(conn, sql, schema->children[c], batch->children[c],
                             batch->offset + r)
                 : put_str(sql, "NULL");
    }
    if (rc == PT_OK) rc = pt__buf_putc(sql, ')');
    if (rc != PT_OK)
      return pt__errorf(err, rc, "sql: write: row %lld: %s", (long long)r,
                        rc == PT_ENOMEM ? "out of memory" : "a value cannot be written");
    rows++;
    if (sql->len >= INSERT_BYTES || r + 1 == batch->length) {
      PT_RETURN_NOT_OK(
          my_exec(conn, sql->data, sql->len, "INSERT into the staging table failed", url, err));
      sql->len = 0;
      rows = 0;
    }
  }
  return PT_OK;
}

/* 1 when table exists in the connection's database, 0 when not, -1 on error. */
static int my_table_exists(void *conn, const char *table, const char *url, pt_error *err) {
  MYSQL *c = conn;
  pt_buf q = {0};
  int rc = put_str(&q, "SELECT 1 FROM ") || put_ident(&q, table) || put_str(&q, " LIMIT 0");
  if (rc) {
    pt_buf_free(&q);
    pt__errorf(err, PT_ENOMEM, "sql: out of memory");
    return -1;
  }
  int qrc = mysql_real_query(c, q.data, (unsigned long)q.len);
  pt_buf_free(&q);
  if (qrc == 0) {
    MYSQL_RES *r = mysql_store_result(c);
    if (r) mysql_free_result(r);
    return 1;
  }
  if (mysql_errno(c) == 1146) return 0; /* ER_NO_SUCH_TABLE */
  my_fail(err, PT_EIO, "cannot look the table up", url, c);
  return -1;
}

static int my_list_tables(void *conn, const char *pattern, const char *url, char ***names,
                          int64_t *n, pt_error *err) {
  MYSQL *c = conn;
  *names = NULL;
  *n = 0;
  pt_buf q = {0};
  int rc = put_str(&q, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                       "DATABASE() AND table_name LIKE '");
  if (rc == PT_OK && pt__buf_reserve(&q, 2 * strlen(pattern) + 2) == PT_OK) {
    q.len += mysql_real_escape_string(c, q.data + q.len, pattern, (unsigned long)strlen(pattern));
    rc = put_str(&q, "'");
  } else {
    rc = PT_ENOMEM;
  }
  if (rc != PT_OK) {
    pt_buf_free(&q);
    return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  if (mysql_real_query(c, q.data, (unsigned long)q.len) != 0) {
    pt_buf_free(&q);
    return my_fail(err, PT_EIO, "cannot list the staging tables", url, c);
  }
  pt_buf_free(&q);
  MYSQL_RES *res = mysql_store_result(c);
  MYSQL_ROW row;
  int64_t cap = 0;
  while (res && (row = mysql_fetch_row(res)) != NULL && rc == PT_OK) {
    char *dup = row[0] ? pt__strdup(row[0]) : NULL;
    if (!dup || pt__grow((void **)names, &cap, *n + 1, sizeof **names) != PT_OK) {
      pt__free(dup);
      rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory");
    } else {
      (*names)[(*n)++] = dup;
    }
  }
  if (res) mysql_free_result(res);
  return rc;
}

static int my_connect_any(const char *url, void **out, pt_error *err) {
  MYSQL *c = NULL;
  int rc = my_connect(url, &c, err);
  *out = c;
  return rc;
}

static void my_close(void *c) { mysql_close(c); }

static int my_exec_str(void *c, const char *sql, const char *what, const char *url,
                       pt_error *err) {
  return my_exec(c, sql, strlen(sql), what, url, err);
}

/* MySQL commits around DDL (CREATE TABLE, TRUNCATE): the overwrite
 * DELETEs inside the transaction, and a table the commit creates is made
 * before it. */
const pt__sql_db pt__my_db = {
    .create_staging = "CREATE TABLE ",
    .begin = "START TRANSACTION",
    .clear = "DELETE FROM ",
    .ddl_in_transaction = 0,
    .connect = my_connect_any,
    .close = my_close,
    .exec = my_exec_str,
    .quote = put_ident,
    .columns_ddl = my_columns_ddl,
    .bulk_load = my_bulk_load,
    .table_exists = my_table_exists,
    .list_tables = my_list_tables,
};
