/* connect.c — one face for every database protium speaks to: the URL's
 * scheme picks PostgreSQL (pg.c), MySQL/MariaDB (mysql.c) or an ADBC driver
 * (adbc.c) for reading
 * (stage.c does the same for writing), so the engine's source, sink and
 * driver code never name a database.
 */
#include <ctype.h>
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
  if (strncmp(url, "adbc:", 5) == 0) {
    char name[64];
    const char *uri;
    if (pt__adbc_url_split(url, name, sizeof name, &uri) != PT_OK)
      return pt__errorf(err, PT_EINVAL,
                        "ADBC URLs read adbc:DRIVER:..., e.g. adbc:sqlite:///path.db or "
                        "adbc:postgresql://user@host/db");
    *out = PT__SQL_ADBC;
    return PT_OK;
  }
  char scheme[32] = "";
  const char *s = strstr(url, "://");
  if (s && s - url < (ptrdiff_t)sizeof scheme)
    snprintf(scheme, sizeof scheme, "%.*s", (int)(s - url), url);
  return pt__errorf(err, PT_ENOTSUP,
                    "URL scheme '%s' is not supported; use postgresql://user@host:port/db "
                    "(or libpq's key=value form), mysql://user@host:port/db or adbc:DRIVER:... (any "
                    "database with an ADBC driver)", scheme);
}

struct pt__sql_reader {
  pt__sql_dialect dialect;
  pt__pg_reader *pg;
  pt__my_reader *my;
  pt__adbc_reader *adbc;
};

int pt__sql_reader_open(const char *url, const char *driver, const char *query,
                        const struct ArrowSchema *expect, int describe_only,
                        pt__sql_reader **out, pt_error *err) {
  *out = NULL;
  pt__sql_dialect d;
  PT_RETURN_NOT_OK(pt__sql_dialect_of(url, &d, err));
  pt__sql_reader *r = calloc(1, sizeof *r);
  if (!r) return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  r->dialect = d;
  int rc = d == PT__SQL_POSTGRES ? pt__pg_reader_open(url, query, describe_only, &r->pg, err)
           : d == PT__SQL_MYSQL
               ? pt__my_reader_open(url, query, describe_only, &r->my, err)
               : pt__adbc_reader_open(url, driver, query, expect, describe_only, &r->adbc, err);
  if (rc != PT_OK) {
    free(r);
    return rc;
  }
  *out = r;
  return PT_OK;
}

const struct ArrowSchema *pt__sql_reader_schema(const pt__sql_reader *r) {
  return r->pg ? pt__pg_reader_schema(r->pg)
         : r->my ? pt__my_reader_schema(r->my)
                 : pt__adbc_reader_schema(r->adbc);
}

int pt__sql_reader_next(pt__sql_reader *r, int64_t batch_rows, struct ArrowArray *out,
                        pt_error *err) {
  return r->pg ? pt__pg_reader_next(r->pg, batch_rows, out, err)
         : r->my ? pt__my_reader_next(r->my, batch_rows, out, err)
                 : pt__adbc_reader_next(r->adbc, batch_rows, out, err);
}

void pt__sql_reader_free(pt__sql_reader *r) {
  if (!r) return;
  pt__pg_reader_free(r->pg);
  pt__my_reader_free(r->my);
  pt__adbc_reader_free(r->adbc);
  free(r);
}

/* The characters a URL's userinfo may hold as they are (RFC 3986's
 * unreserved); every other byte of a password is %XX-encoded. */
static int unreserved(unsigned char c) {
  return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int pt__sql_url_with_password(const char *url, const char *password, char **out,
                              pt_error *err) {
  *out = NULL;
  char have[256];
  int rc = pt__sql_url_password(url, have, sizeof have);
  pt_buf b = {0};
  if (rc == PT_OK && (have[0] || !password || !*password)) {
    *out = pt__strdup(url);
    return *out ? PT_OK : pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  const char *s = strstr(url, "://");
  if (strncmp(url, "adbc:sqlite:", 12) == 0) {
    rc = pt__sql_put(&b, url); /* a file: no password to give */
  } else if (!s) {
    /* libpq's key=value form: a later keyword wins over none. */
    rc = pt__sql_put(&b, url) || pt__sql_put(&b, " password='");
    for (const char *p = password; *p && rc == PT_OK; p++) {
      if (*p == '\'' || *p == '\\') rc = pt__buf_putc(&b, '\\');
      if (rc == PT_OK) rc = pt__buf_putc(&b, *p);
    }
    if (rc == PT_OK) rc = pt__buf_putc(&b, '\'');
  } else {
    const char *auth = s + 3, *end = auth + strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', (size_t)(end - auth));
    /* scheme://user@host -> scheme://user:pw@host; scheme://host ->
     * scheme://:pw@host (the user then comes from the defaults). */
    const char *user_end = at ? at : auth;
    rc = pt__buf_append(&b, url, (size_t)(user_end - url)) || pt__buf_putc(&b, ':');
    for (const unsigned char *p = (const unsigned char *)password; *p && rc == PT_OK; p++) {
      if (unreserved(*p)) rc = pt__buf_putc(&b, (char)*p);
      else rc = pt__buf_printf(&b, "%%%02X", *p);
    }
    if (rc == PT_OK && !at) rc = pt__buf_putc(&b, '@');
    if (rc == PT_OK) rc = pt__sql_put(&b, user_end);
  }
  if (rc == PT_OK) rc = pt__buf_putc(&b, 0);
  if (rc != PT_OK) {
    pt_buf_free(&b);
    return pt__errorf(err, PT_ENOMEM, "sql: out of memory");
  }
  *out = b.data; /* malloc'd by the buffer: pt__free frees it */
  return PT_OK;
}

/* libpq's key=value form: the value of keyword (unquoted or '...'). */
static void kv_value(const char *url, const char *keyword, char *out, size_t size) {
  size_t kn = strlen(keyword);
  out[0] = 0;
  for (const char *p = strstr(url, keyword); p; p = strstr(p + 1, keyword)) {
    if (p != url && p[-1] != ' ' && p[-1] != '\t') continue;
    const char *v = p + kn;
    while (*v == ' ') v++;
    if (*v != '=') continue;
    for (v++; *v == ' ';) v++;
    size_t n = 0;
    int quoted = *v == '\'';
    for (v += quoted; *v && (quoted ? *v != '\'' : *v != ' '); v++) {
      if (quoted && *v == '\\' && v[1]) v++;
      if (n + 1 < size) out[n++] = *v;
    }
    out[n] = 0;
    return;
  }
}

void pt__sql_url_host(const char *url, char *host, size_t host_size, char *port,
                      size_t port_size) {
  host[0] = 0;
  port[0] = 0;
  if (strncmp(url, "adbc:", 5) == 0) {
    char name[64];
    const char *uri;
    if (pt__adbc_url_split(url, name, sizeof name, &uri) != PT_OK) return;
    url = uri;
  }
  const char *s = strstr(url, "://");
  if (!s) {
    if (strchr(url, '=')) {
      kv_value(url, "host", host, host_size);
      kv_value(url, "port", port, port_size);
    }
    return;
  }
  const char *auth = s + 3, *end = auth + strcspn(auth, "/?#");
  const char *at = NULL;
  for (const char *p = auth; p < end; p++)
    if (*p == '@') at = p; /* the last one: a password may hold '@' only %-encoded */
  const char *h = at ? at + 1 : auth, *he, *pb = NULL;
  if (*h == '[') { /* [IPv6]:port */
    const char *close = memchr(h, ']', (size_t)(end - h));
    if (!close) return;
    h++;
    he = close;
    if (close + 1 < end && close[1] == ':') pb = close + 2;
  } else {
    const char *colon = memchr(h, ':', (size_t)(end - h));
    he = colon ? colon : end;
    if (colon) pb = colon + 1;
  }
  snprintf(host, host_size, "%.*s", (int)(he - h), h);
  if (pb) snprintf(port, port_size, "%.*s", (int)(end - pb), pb);
}
