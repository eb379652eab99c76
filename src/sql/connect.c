/* connect.c — one face for every database protium speaks to: the URL's
 * scheme picks PostgreSQL (pg.c, pgwrite.c) or MySQL/MariaDB (mysql.c) for
 * reading, staging, committing and cleaning up, so the engine's source, sink
 * and driver code never name a database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sql/sql.h"

int pt__sql_dialect_of(const char *url, pt__sql_dialect *out, pt_error *err) {
  if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0 ||
      (strstr(url, "://") == NULL && strchr(url, '=') != NULL)) {
    *out = PT__SQL_POSTGRES;
    return PT_OK;
  }
  if (strncmp(url, "mysql://", 8) == 0 || strncmp(url, "mariadb://", 10) == 0) {
    *out = PT__SQL_MYSQL;
    return PT_OK;
  }
  char scheme[32] = "";
  const char *s = strstr(url, "://");
  if (s && s - url < (ptrdiff_t)sizeof scheme)
    snprintf(scheme, sizeof scheme, "%.*s", (int)(s - url), url);
  return pt__errorf(err, PT_ENOTSUP,
                    "URL scheme '%s' is not supported; use postgresql://user@host:port/db "
                    "(or libpq's key=value form) or mysql://user@host:port/db", scheme);
}

struct pt__sql_reader {
  pt__sql_dialect dialect;
  pt__pg_reader *pg;
  pt__my_reader *my;
};

int pt__sql_reader_open(const char *url, const char *query, int describe_only,
                        pt__sql_reader **out, pt_error *err) {
  *out = NULL;
  pt__sql_dialect d;
  PT_RETURN_NOT_OK(pt__sql_dialect_of(url, &d, err));
  pt__sql_reader *r = calloc(1, sizeof *r);
  if (!r) return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  r->dialect = d;
  int rc = d == PT__SQL_POSTGRES ? pt__pg_reader_open(url, query, describe_only, &r->pg, err)
                                 : pt__my_reader_open(url, query, describe_only, &r->my, err);
  if (rc != PT_OK) {
    free(r);
    return rc;
  }
  *out = r;
  return PT_OK;
}

const struct ArrowSchema *pt__sql_reader_schema(const pt__sql_reader *r) {
  return r->pg ? pt__pg_reader_schema(r->pg) : pt__my_reader_schema(r->my);
}

int pt__sql_reader_next(pt__sql_reader *r, int64_t batch_rows, struct ArrowArray *out,
                        pt_error *err) {
  return r->pg ? pt__pg_reader_next(r->pg, batch_rows, out, err)
               : pt__my_reader_next(r->my, batch_rows, out, err);
}

void pt__sql_reader_free(pt__sql_reader *r) {
  if (!r) return;
  pt__pg_reader_free(r->pg);
  pt__my_reader_free(r->my);
  free(r);
}

struct pt__sql_stage {
  pt__pg_stage *pg;
  pt__my_stage *my;
};

int pt__sql_stage_open(const char *url, const char *table, const char *columns_ddl,
                       pt__sql_stage **out, pt_error *err) {
  *out = NULL;
  pt__sql_dialect d;
  PT_RETURN_NOT_OK(pt__sql_dialect_of(url, &d, err));
  pt__sql_stage *w = calloc(1, sizeof *w);
  if (!w) return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  int rc = d == PT__SQL_POSTGRES ? pt__pg_stage_open(url, table, columns_ddl, &w->pg, err)
                                 : pt__my_stage_open(url, table, columns_ddl, &w->my, err);
  if (rc != PT_OK) {
    free(w);
    return rc;
  }
  *out = w;
  return PT_OK;
}

int pt__sql_stage_write(pt__sql_stage *w, const struct ArrowSchema *schema,
                        const struct ArrowArray *batch, pt_error *err) {
  return w->pg ? pt__pg_stage_write(w->pg, schema, batch, err)
               : pt__my_stage_write(w->my, schema, batch, err);
}

void pt__sql_stage_free(pt__sql_stage *w) {
  if (!w) return;
  pt__pg_stage_free(w->pg);
  pt__my_stage_free(w->my);
  free(w);
}

int pt__sql_columns_ddl(const char *url, const struct ArrowSchema *schema, pt_buf *out,
                        pt_error *err) {
  pt__sql_dialect d;
  PT_RETURN_NOT_OK(pt__sql_dialect_of(url, &d, err));
  return d == PT__SQL_POSTGRES ? pt__pg_columns_ddl(schema, out, err)
                               : pt__my_columns_ddl(schema, out, err);
}

int pt__sql_commit(const char *url, const char *table, pt__sql_mode mode,
                   const struct ArrowSchema *schema, const char *const *staging, int64_t n,
                   pt_error *err) {
  pt__sql_dialect d;
  PT_RETURN_NOT_OK(pt__sql_dialect_of(url, &d, err));
  return d == PT__SQL_POSTGRES ? pt__pg_commit(url, table, mode, schema, staging, n, err)
                               : pt__my_commit(url, table, mode, schema, staging, n, err);
}

int pt__sql_drop_staging(const char *url, const char *prefix, pt_error *err) {
  pt__sql_dialect d;
  PT_RETURN_NOT_OK(pt__sql_dialect_of(url, &d, err));
  return d == PT__SQL_POSTGRES ? pt__pg_drop_staging(url, prefix, err)
                               : pt__my_drop_staging(url, prefix, err);
}
