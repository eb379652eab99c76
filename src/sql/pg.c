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

void pt__sql_mask_password(char *text, const char *url) {
  char pw[256];
  if (url == NULL || pt__sql_url_password(url, pw, sizeof pw) != PT_OK || pw[0] == 0) return;
  size_t lp = strlen(pw);
  char *p;
  while ((p = strstr(text, pw)) != NULL) {
    size_t tail = strlen(p + lp);
    memcpy(p, "***", 3);
    memmove(p + 3, p + lp, tail + 1);
  }
}

int pt__sql_url_password(const char *url, char *out, size_t size) {
  /* scheme://user:password@host... */
  out[0] = 0;
  const char *s = strstr(url, "://");
  if (s == NULL) return PT_OK;
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

int pt__pg_read_query(const char *url, const char *query, struct ArrowSchema *schema_out,
                      struct ArrowArray *array_out, pt_error *err) {
  int rc = PT_OK;
  PGconn *c = PQconnectdb(url);
  if (PQstatus(c) != CONNECTION_OK) {
    set_pg_error(err, PT_EIO, "cannot connect to PostgreSQL", url, PQerrorMessage(c));
    rc = PT_EIO;
    goto finish_conn;
  }
  PGresult *r = PQprepare(c, "", query, 0, NULL);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    set_pg_error(err, PT_EINVAL, "the query was refused", url, PQerrorMessage(c));
    PQclear(r);
    rc = PT_EINVAL;
    goto finish_conn;
  }
  PQclear(r);
  r = PQdescribePrepared(c, "");
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    set_pg_error(err, PT_EIO, "cannot describe the query", url, PQerrorMessage(c));
    PQclear(r);
    rc = PT_EIO;
    goto finish_conn;
  }
  int n = PQnfields(r);
  pt__pg_kind *kinds = calloc((size_t)(n ? n : 1), sizeof *kinds);
  char **names = calloc((size_t)(n ? n : 1), sizeof *names);
  int32_t *typmods = calloc((size_t)(n ? n : 1), sizeof *typmods);
  if (kinds == NULL || names == NULL || typmods == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory for %d columns", n);
    goto finish_desc;
  }
  for (int i = 0; i < n; i++) {
    names[i] = strdup(PQfname(r, i));
    typmods[i] = PQfmod(r, i);
    if (names[i] == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory for column names");
      goto finish_desc;
    }
    if (pt__pg_kind_of(PQftype(r, i), names[i], NULL, &kinds[i], NULL) != PT_OK) {
      char tn[128];
      type_name(c, PQftype(r, i), tn, sizeof tn);
      rc = pt__pg_kind_of(PQftype(r, i), names[i], tn, &kinds[i], err);
      goto finish_desc;
    }
  }
  PQclear(r);
  r = NULL;
  rc = pt__pg_schema(n, (const char *const *)names, kinds, typmods, schema_out, err);
  if (rc != PT_OK) goto finish_desc;
  pt_builder *b = NULL;
  rc = pt_builder_new(schema_out, &b, err);
  if (rc != PT_OK) goto finish_schema;

  size_t ql = strlen(query);
  char *copy = malloc(ql + 64);
  if (copy == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "sql: out of memory for the query");
    goto finish_builder;
  }
  snprintf(copy, ql + 64, "COPY (%s) TO STDOUT WITH (FORMAT binary)", query);
  r = PQexec(c, copy);
  free(copy);
  if (PQresultStatus(r) != PGRES_COPY_OUT) {
    set_pg_error(err, PT_EIO, "COPY of the query failed", url, PQerrorMessage(c));
    rc = PT_EIO;
    PQclear(r);
    r = NULL;
    goto finish_builder;
  }
  PQclear(r);
  r = NULL;
  pt__pgcopy d;
  pt__pgcopy_init(&d, n, kinds, b);
  char *buf;
  int len;
  while ((len = PQgetCopyData(c, &buf, 0)) > 0) {
    if (rc == PT_OK) rc = pt__pgcopy_feed(&d, (const uint8_t *)buf, len, err);
    PQfreemem(buf);
  }
  if (len == -2 && rc == PT_OK) {
    set_pg_error(err, PT_EIO, "reading COPY data failed", url, PQerrorMessage(c));
    rc = PT_EIO;
  }
  /* Drain the command's results, so the server's own errors are seen. */
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == PT_OK) {
      set_pg_error(err, PT_EIO, "COPY of the query failed", url, PQerrorMessage(c));
      rc = PT_EIO;
    }
    PQclear(r);
  }
  if (rc == PT_OK) rc = pt__pgcopy_finish(&d, err);
  if (rc == PT_OK) rc = pt_builder_finish(b, array_out, err);
finish_builder:
  pt_builder_free(b);
finish_schema:
  if (rc != PT_OK) schema_out->release(schema_out);
finish_desc:
  if (r != NULL) PQclear(r);
  for (int i = 0; names != NULL && i < n; i++) free(names[i]);
  free(names);
  free(kinds);
  free(typmods);
finish_conn:
  PQfinish(c);
  return rc;
}
