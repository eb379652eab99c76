/* pg.c — reading a PostgreSQL query as Arrow through libpq: the query is
 * described first (column names and type OIDs make the Arrow schema, and an
 * unmappable column is refused before any row moves), then run as a binary
 * COPY whose messages go straight into the pgcopy decoder.
 */
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/core.h"
#include "sql/sql.h"

/* libpq's messages can quote the connection string; any password in them is
 * masked before it reaches a pt_error. */
static void set_pg_error(pt_error *err, int code, const char *what, const char *url,
                         const char *pg_message) {
  char msg[PT_ERROR_SIZE];
  snprintf(msg, sizeof msg, "%s", pg_message ? pg_message : "");
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
  pt__sql_mask_password(msg, url);
  pt__errorf(err, code, "sql: %s: %s", what, msg);
}

/* Each occurrence becomes "***" (as many stars as characters for a shorter
 * password: text's buffer may be full, so it never grows); the search goes
 * on after the stars, so a password of stars cannot loop forever. */
static void mask(char *text, const char *pw) {
  size_t lp = strlen(pw);
  char *p = text;
  if (lp == 0) return;
  while ((p = strstr(p, pw)) != NULL) {
    size_t m = lp < 3 ? lp : 3;
    memset(p, '*', m);
    memmove(p + m, p + lp, strlen(p + lp) + 1);
    p += m;
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The environment variable the client library takes url's password from
 * when the URL has none: MySQL's client reads MYSQL_PWD (mysql.c does), libpq
 * and the ADBC PostgreSQL driver PGPASSWORD; SQLite has none. */
static const char *env_password(const char *url) {
  const char *name = "PGPASSWORD";
  if (strncmp(url, "mysql://", 8) == 0 || strncmp(url, "mariadb://", 10) == 0)
    name = "MYSQL_PWD";
  else if (strncmp(url, "adbc:", 5) == 0 && strncmp(url, "adbc:postgres", 13) != 0)
    return NULL;
  return getenv(name);
}

void pt__sql_mask_password(char *text, const char *url) {
  char pw[256], plain[256];
  if (url == NULL) return;
  pw[0] = plain[0] = 0;
  if (pt__sql_url_password(url, pw, sizeof pw) != PT_OK) pw[0] = 0;
  /* As written in the URL and as the server knows it (%XX decoded). */
  size_t o = 0;
  for (size_t i = 0; pw[i] && o + 1 < sizeof plain; i++) {
    if (pw[i] == '%' && hexval(pw[i + 1]) >= 0 && hexval(pw[i + 2]) >= 0) {
      plain[o++] = (char)(hexval(pw[i + 1]) * 16 + hexval(pw[i + 2]));
      i += 2;
    } else {
      plain[o++] = pw[i];
    }
  }
  plain[o] = 0;
  /* The environment's too, even when the URL has a password of its own:
   * which one the library used is its business, and a message may quote
   * either. Longest first: masking a password that is part of another
   * first would leave the rest of the longer one showing. */
  const char *env = env_password(url);
  const char *all[3] = {pw, plain, env ? env : ""};
  for (int k = 0; k < 3; k++) {
    int longest = k;
    for (int m = k + 1; m < 3; m++)
      if (strlen(all[m]) > strlen(all[longest])) longest = m;
    const char *t = all[k];
    all[k] = all[longest];
    all[longest] = t;
    mask(text, all[k]);
  }
}

/* libpq's key=value form: password=VALUE or password='VALUE' (\ escapes). */
static int kv_password(const char *url, char *out, size_t size) {
  for (const char *p = strstr(url, "password"); p; p = strstr(p + 1, "password")) {
    if (p != url && p[-1] != ' ' && p[-1] != '\t') continue;
    const char *v = p + 8;
    while (*v == ' ') v++;
    if (*v != '=') continue;
    v++;
    while (*v == ' ') v++;
    size_t n = 0;
    if (*v == '\'') {
      for (v++; *v && *v != '\''; v++) {
        if (*v == '\\' && v[1]) v++;
        if (n + 1 >= size) return PT_ERANGE;
        out[n++] = *v;
      }
    } else {
      for (; *v && *v != ' '; v++) {
        if (n + 1 >= size) return PT_ERANGE;
        out[n++] = *v;
      }
    }
    out[n] = 0;
    return PT_OK;
  }
  return PT_OK;
}

int pt__sql_url_password(const char *url, char *out, size_t size) {
  /* scheme://user:password@host... */
  out[0] = 0;
  const char *s = strstr(url, "://");
  if (s == NULL) return kv_password(url, out, size);
  s += 3;
  const char *at = strchr(s, '@'), *slash = strchr(s, '/');
  if (at == NULL || (slash != NULL && slash < at)) return PT_OK;
  const char *colon = memchr(s, ':', (size_t)(at - s));
  if (colon == NULL) return PT_OK;
  size_t n = (size_t)(at - colon - 1);
  if (n + 1 > size) return PT_ERANGE;
  memcpy(out, colon + 1, n);
  out[n] = 0;
  return PT_OK;
}

/* The name of type oid for an error message, as PostgreSQL spells it. */
static void type_name(PGconn *c, Oid oid, char *out, size_t size) {
  char q[96];
  snprintf(q, sizeof q, "SELECT format_type(%u, NULL)", (unsigned)oid);
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
  else
    snprintf(out, size, "unknown");
  PQclear(r);
}

struct pt__pg_reader {
  PGconn *conn;
  char *url;                 /* owned copy: masks passwords in messages */
  int64_t n;
  pt__pg_kind *kinds;        /* owned, n */
  int32_t *typmods;          /* owned, n: the columns' type modifiers */
  struct ArrowSchema schema; /* owned */
  pt_builder *builder;       /* owned; NULL when only described */
  pt__pgcopy dec;
  int done;                  /* the COPY stream ended (or failed) */
};

void pt__pg_reader_free(pt__pg_reader *r) {
  if (r == NULL) return;
  pt_builder_free(r->builder);
  if (r->schema.release) r->schema.release(&r->schema);
  free(r->kinds);
  free(r->typmods);
  free(r->url);
  /* PQfinish in the middle of a COPY just closes the socket: the server
   * abandons the command. */
  if (r->conn) PQfinish(r->conn);
  free(r);
}

const struct ArrowSchema *pt__pg_reader_schema(const pt__pg_reader *r) { return &r->schema; }

/* Types whose OIDs are made by CREATE TYPE: an enum (read as its label
 * text) or an array of one. 0 when oid is neither. */
static int enum_kind(PGconn *c, Oid oid, pt__pg_kind *out) {
  char q[256];
  snprintf(q, sizeof q,
           "SELECT t.typtype, coalesce(e.typtype, '-'), t.typcategory FROM pg_type t "
           "LEFT JOIN pg_type e ON e.oid = t.typelem WHERE t.oid = %u", (unsigned)oid);
  PGresult *r = PQexec(c, q);
  int found = 0;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
    char typtype = PQgetvalue(r, 0, 0)[0], elemtype = PQgetvalue(r, 0, 1)[0];
    char category = PQgetvalue(r, 0, 2)[0];
    if (typtype == 'e') {
      *out = PT__PG_TEXT;
      found = 1;
    } else if (category == 'A' && elemtype == 'e') {
      *out = PT__PG_ARRAY_OF(PT__PG_TEXT);
      found = 1;
    }
  }
  PQclear(r);
  return found;
}

/* Describes query on r->conn into r->schema and r->kinds. */
static int describe(pt__pg_reader *r, const char *query, pt_error *err) {
  PGconn *c = r->conn;
  PGresult *res = PQprepare(c, "", query, 0, NULL);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    set_pg_error(err, PT_EINVAL, "the query was refused", r->url, PQerrorMessage(c));
    PQclear(res);
    return PT_EINVAL;
  }
  PQclear(res);
  res = PQdescribePrepared(c, "");
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    set_pg_error(err, PT_EIO, "cannot describe the query", r->url, PQerrorMessage(c));
    PQclear(res);
    return PT_EIO;
  }
  int n = PQnfields(res), rc = PT_OK;
  r->n = n;
  r->kinds = calloc((size_t)(n ? n : 1), sizeof *r->kinds);
  char **names = calloc((size_t)(n ? n : 1), sizeof *names);
  int32_t *typmods = calloc((size_t)(n ? n : 1), sizeof *typmods);
  if (r->kinds == NULL || names == NULL || typmods == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory for %d columns", n);
    goto done;
  }
  for (int i = 0; i < n && rc == PT_OK; i++) {
    names[i] = strdup(PQfname(res, i));
    typmods[i] = PQfmod(res, i);
    if (names[i] == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory for column names");
    } else if (pt__pg_kind_of(PQftype(res, i), names[i], NULL, &r->kinds[i], NULL) != PT_OK &&
               !enum_kind(c, PQftype(res, i), &r->kinds[i])) {
      char tn[128];
      type_name(c, PQftype(res, i), tn, sizeof tn);
      rc = pt__pg_kind_of(PQftype(res, i), names[i], tn, &r->kinds[i], err);
    }
  }
  if (rc == PT_OK)
    rc = pt__pg_schema(n, (const char *const *)names, r->kinds, typmods, &r->schema, err);
done:
  PQclear(res);
  for (int i = 0; names != NULL && i < n; i++) free(names[i]);
  free(names);
  r->typmods = typmods; /* the decoder's, for numeric columns */
  return rc;
}

int pt__pg_reader_open(const char *url, const char *query, int describe_only,
                       pt__pg_reader **out, pt_error *err) {
  *out = NULL;
  pt__pg_reader *r = calloc(1, sizeof *r);
  if (r == NULL || (r->url = strdup(url)) == NULL) {
    free(r);
    return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  int rc = PT_OK;
  r->conn = PQconnectdb(url);
  if (PQstatus(r->conn) != CONNECTION_OK) {
    set_pg_error(err, PT_EIO, "cannot connect to PostgreSQL", url, PQerrorMessage(r->conn));
    rc = PT_EIO;
    goto fail;
  }
  rc = describe(r, query, err);
  if (rc != PT_OK || describe_only) goto finish;
  rc = pt_builder_new(&r->schema, &r->builder, err);
  if (rc != PT_OK) goto fail;
  size_t ql = strlen(query);
  char *copy = malloc(ql + 64);
  if (copy == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory for the query");
    goto fail;
  }
  snprintf(copy, ql + 64, "COPY (%s) TO STDOUT WITH (FORMAT binary)", query);
  PGresult *res = PQexec(r->conn, copy);
  free(copy);
  if (PQresultStatus(res) != PGRES_COPY_OUT) {
    set_pg_error(err, PT_EIO, "COPY of the query failed", url, PQerrorMessage(r->conn));
    PQclear(res);
    rc = PT_EIO;
    goto fail;
  }
  PQclear(res);
  pt__pgcopy_init(&r->dec, r->n, r->kinds, r->builder);
  pt__pgcopy_set_typmods(&r->dec, r->typmods);
finish:
  if (rc != PT_OK) goto fail;
  *out = r;
  return PT_OK;
fail:
  pt__pg_reader_free(r);
  return rc;
}

int pt__pg_reader_next(pt__pg_reader *r, int64_t batch_rows, struct ArrowArray *out,
                       pt_error *err) {
  out->release = NULL;
  if (r->builder == NULL || r->done) return PT_OK;
  int64_t start = r->dec.rows;
  int rc = PT_OK, len = 0;
  char *buf;
  while (r->dec.rows - start < batch_rows && (len = PQgetCopyData(r->conn, &buf, 0)) > 0) {
    rc = pt__pgcopy_feed(&r->dec, (const uint8_t *)buf, len, err);
    PQfreemem(buf);
    if (rc != PT_OK) {
      r->done = 1;
      return rc;
    }
  }
  if (len == -2) {
    set_pg_error(err, PT_EIO, "reading COPY data failed", r->url, PQerrorMessage(r->conn));
    r->done = 1;
    return PT_EIO;
  }
  if (len == -1) {
    /* The end: drain the command's results, so the server's own errors are
     * seen. */
    r->done = 1;
    PGresult *res;
    while ((res = PQgetResult(r->conn)) != NULL) {
      if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == PT_OK) {
        set_pg_error(err, PT_EIO, "COPY of the query failed", r->url, PQerrorMessage(r->conn));
        rc = PT_EIO;
      }
      PQclear(res);
    }
    if (rc == PT_OK) rc = pt__pgcopy_finish(&r->dec, err);
    if (rc != PT_OK) return rc;
    if (r->dec.rows == start) return PT_OK; /* nothing more */
  }
  return pt_builder_finish(r->builder, out, err);
}

int pt__pg_read_query(const char *url, const char *query, struct ArrowSchema *schema_out,
                      struct ArrowArray *array_out, pt_error *err) {
  schema_out->release = NULL;
  array_out->release = NULL;
  pt__pg_reader *r;
  PT_RETURN_NOT_OK(pt__pg_reader_open(url, query, 0, &r, err));
  int rc = pt__pg_reader_next(r, INT64_MAX, array_out, err);
  if (rc == PT_OK && array_out->release == NULL) rc = pt_builder_finish(r->builder, array_out, err);
  if (rc == PT_OK) rc = pt_schema_copy(&r->schema, schema_out, err);
  if (rc != PT_OK && array_out->release) array_out->release(array_out);
  pt__pg_reader_free(r);
  return rc;
}
