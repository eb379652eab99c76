/* connect.c — one face for every database protium speaks to: the URL's
 * scheme picks PostgreSQL (pg.c) or MySQL/MariaDB (mysql.c) for reading
 * (stage.c does the same for writing), so the engine's source, sink and
 * driver code never name a database.
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
