/* sql.c — pt_read_sql and pt_write_sql: SQL tables and queries as datasets,
 * and datasets into tables exactly once. Reads are one query per partition
 * (Spark JDBC's ranges or the caller's predicates); writes stage every task
 * attempt in a table of its own (into a new PostgreSQL table: in one shared
 * table, a transaction per attempt) and commit the winners in one
 * transaction (src/sql/stage.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "sql/sql.h"

/* Attempts of a job still running when it ends write into staging tables;
 * the cleanup waits for them this long at most. */
#define ORPHAN_WAIT_MS 5000

void pt_sql_read_options_init(pt_sql_read_options *o) {
  memset(o, 0, sizeof *o);
}

static int check_url(const char *url, const char *what, pt_error *err) {
  pt__sql_dialect d;
  int rc = pt__sql_dialect_of(url, &d, err);
  return rc == PT_OK ? PT_OK : pt__error_prefix(err, rc, "%s: ", what);
}

/* url as the connection uses it: with the password of its host
 * (sql.password.<host>[:<port>], else sql.password) when url has none. On
 * PT_OK the caller owns *out (pt__free). */
static int connect_url(pt_session *s, const char *url, char **out, pt_error *err) {
  char host[256], port[32];
  pt__sql_url_host(url, host, sizeof host, port, sizeof port);
  const char *pw = pt__conf_sql_password(s->conf, host, port);
  return pt__sql_url_with_password(url, pw, out, err);
}

/* An ADBC URL's driver library: the one given, else libadbc_driver_NAME.so
 * in the first sql.adbc.driver_path directory that has it, else NULL (the
 * loader's own search). Executors load the same path. */
static int adbc_driver_of(pt_session *s, const char *url, const char *given, char **out,
                          pt_error *err) {
  *out = NULL;
  if (strncmp(url, "adbc:", 5) != 0) return PT_OK;
  if (given && *given) {
    *out = pt__strdup(given);
    return *out ? PT_OK : pt__errorf(err, PT_ENOMEM, "read_sql: out of memory");
  }
  char name[64];
  const char *uri;
  if (pt__adbc_url_split(url, name, sizeof name, &uri) != PT_OK) return PT_OK;
  const char *dirs = pt_conf_get(s->conf, "sql.adbc.driver_path");
  while (dirs && *dirs) {
    size_t n = strcspn(dirs, ":");
    char path[4096];
    snprintf(path, sizeof path, "%.*s/libadbc_driver_%s.so", (int)n, dirs, name);
    if (n > 0 && access(path, R_OK) == 0) {
      *out = pt__strdup(path);
      return *out ? PT_OK : pt__errorf(err, PT_ENOMEM, "read_sql: out of memory");
    }
    dirs += n + (dirs[n] == ':');
  }
  return PT_OK;
}

static int is_query(const char *src) {
  while (isspace((unsigned char)*src)) src++;
  static const char *const words[] = {"select", "with", "values"};
  if (*src == '(') return 1;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t n = strlen(words[i]);
    if (strncasecmp(src, words[i], n) == 0 && !isalnum((unsigned char)src[n]) && src[n] != '_')
      return 1;
  }
  return 0;
}

static char *str_printf(const char *fmt, const char *a, const char *b) {
  size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
  char *s = pt__malloc(n);
  if (s) snprintf(s, n, fmt, a, b ? b : "");
  return s;
}

int pt_read_sql(pt_session *s, const char *url, const char *source,
                const pt_sql_read_options *opts, pt_dataset **out, pt_error *err) {
  if (!s || !url || !source || !out)
    return pt__errorf(err, PT_EINVAL, "read_sql: session, url, source and out must be given");
  *out = NULL;
  PT_RETURN_NOT_OK(check_url(url, "read_sql", err));
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  if (opts) o = *opts;
  if (o.partition_column && o.predicates)
    return pt__errorf(err, PT_EINVAL,
                      "read_sql: give a partition column or predicates, not both");
  if (o.predicates && o.n_predicates < 1)
    return pt__errorf(err, PT_EINVAL, "read_sql: predicates given, but n_predicates < 1");
  if (o.fetch_size < 0) return pt__errorf(err, PT_EINVAL, "read_sql: fetch_size must be >= 0");
  char *curl = NULL, *driver = NULL;
  PT_RETURN_NOT_OK(connect_url(s, url, &curl, err));
  int drc = adbc_driver_of(s, url, o.adbc_driver, &driver, err);
  if (drc != PT_OK) {
    pt__free(curl);
    return drc;
  }
  url = curl;
  char *base = is_query(source) ? str_printf("SELECT * FROM (%s) AS pt_q", source, NULL)
                                : str_printf("SELECT * FROM %s", source, NULL);
  if (!base) {
    pt__free(curl);
    pt__free(driver);
    return pt__errorf(err, PT_ENOMEM, "read_sql: out of memory");
  }
  char **preds = NULL;
  int64_t np = 1;
  int own_preds = 0, rc = PT_OK;
  if (o.partition_column) {
    rc = pt__sql_partition_predicates(o.partition_column, o.lower_bound, o.upper_bound,
                                      o.num_partitions, &preds, &np, err);
    if (rc != PT_OK) {
      pt__free(base);
      pt__free(curl);
      pt__free(driver);
      return pt__error_prefix(err, rc, "read_sql: ");
    }
    own_preds = 1;
  } else if (o.predicates) {
    preds = (char **)o.predicates;
    np = o.n_predicates;
  }
  /* The columns, before any row moves. */
  pt__sql_reader *r = NULL;
  struct ArrowSchema schema = {0};
  rc = pt__sql_reader_open(url, driver, base, NULL, 1, &r, err);
  if (rc == PT_OK) rc = pt_schema_copy(pt__sql_reader_schema(r), &schema, err);
  pt__sql_reader_free(r);
  if (rc != PT_OK) pt__error_prefix(err, rc, "read_sql: ");
  char **queries = NULL;
  if (rc == PT_OK) {
    queries = pt__calloc((size_t)np, sizeof *queries);
    if (!queries) rc = pt__errorf(err, PT_ENOMEM, "read_sql: out of memory");
    for (int64_t i = 0; i < np && rc == PT_OK; i++) {
      queries[i] = preds ? str_printf("%s WHERE %s", base, preds[i]) : str_printf("%s", base, NULL);
      if (!queries[i]) rc = pt__errorf(err, PT_ENOMEM, "read_sql: out of memory");
    }
  }
  if (rc == PT_OK) rc = pt__node_new(s, s->driver, PT__NODE_SQL, NULL, &schema, out, err);
  if (rc == PT_OK) {
    pt_dataset *ds = *out;
    ds->partitions = np;
    ds->sql_queries = queries;
    queries = NULL;
    ds->sql_fetch_size = o.fetch_size > 0 ? o.fetch_size : 65536;
    ds->sql_url = curl;
    ds->sql_adbc_driver = driver;
    curl = driver = NULL;
    if (!ds->sql_url) {
      rc = pt__errorf(err, PT_ENOMEM, "read_sql: out of memory");
      pt_dataset_free(ds);
      *out = NULL;
    }
  }
  if (queries)
    for (int64_t i = 0; i < np; i++) pt__free(queries[i]);
  pt__free(queries);
  if (own_preds) pt__sql_predicates_free(preds, np);
  if (schema.release) schema.release(&schema);
  pt__free(base);
  pt__free(curl);
  pt__free(driver);
  return rc;
}

int pt_write_sql(pt_dataset *ds, const char *url, const char *table, pt_sql_write_mode mode,
                 pt_error *err) {
  if (!ds || !url || !table || !*table)
    return pt__errorf(err, PT_EINVAL, "write_sql: dataset, url and table must be given");
  if (mode != PT_SQL_APPEND && mode != PT_SQL_OVERWRITE && mode != PT_SQL_ERROR)
    return pt__errorf(err, PT_EINVAL, "write_sql: unknown mode %d", (int)mode);
  PT_RETURN_NOT_OK(check_url(url, "write_sql", err));
  char *curl = NULL;
  PT_RETURN_NOT_OK(connect_url(ds->session, url, &curl, err));
  /* Executors load an ADBC driver from the path the URL ends with: the one
   * sql.adbc.driver_path finds, unless the URL names one. */
  char named[8];
  if (strncmp(curl, "adbc:", 5) == 0 && pt__adbc_url_driver(curl, named, sizeof named) == PT_OK &&
      !named[0]) {
    char *lib = NULL;
    int drc = adbc_driver_of(ds->session, curl, NULL, &lib, err);
    if (drc == PT_OK && lib) {
      pt_buf b = {0};
      if (pt__sql_put(&b, curl) || pt__sql_put(&b, "#adbc_driver=") || pt__sql_put(&b, lib) ||
          pt__buf_putc(&b, 0)) {
        pt_buf_free(&b);
        drc = pt__errorf(err, PT_ENOMEM, "write_sql: out of memory");
      } else {
        pt__free(curl);
        curl = b.data;
      }
    }
    pt__free(lib);
    if (drc != PT_OK) {
      pt__free(curl);
      return drc;
    }
  }
  url = curl;
  pt_buf ddl = {0};
  int rc = pt__sql_columns_ddl(url, &ds->schema, &ddl, err);
  if (rc != PT_OK) {
    pt_buf_free(&ddl);
    pt__free(curl);
    return pt__error_prefix(err, rc, "write_sql: ");
  }
  /* Staging tables: pt_stg_<random>_<job>_p<partition>_a<attempt>, or
   * pt_stg_<random>_<job>_all and _attempts where shared. The random part
   * keeps concurrent sessions (and programs) apart. */
  pt__action a = {0};
  a.job_id = pt__driver_new_job_id(ds->driver);
  a.sink = PT__SINK_SQL;
  char prefix[64];
  unsigned tag = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL) ^
                 (unsigned)(uintptr_t)ds;
  snprintf(prefix, sizeof prefix, "pt_stg_%08x_%lld_", tag, (long long)a.job_id);
  a.sql_url = url;
  a.sql_staging_prefix = prefix;
  a.sql_columns_ddl = ddl.data;
  rc = pt__sql_stage_prepare(url, table, prefix, ddl.data, &a.sql_shared_staging, err);
  if (rc != PT_OK) {
    pt__error_prefix(err, rc, "write_sql: ");
    /* A shared staging table made before the failure. */
    (void)pt__sql_drop_staging(url, prefix, NULL);
    pt_buf_free(&ddl);
    pt__free(curl);
    return rc;
  }
  pt__job_result res;
  rc = pt__driver_run(ds->driver, ds, &a, &res, err);
  pt__session_record_job(ds, &res);
  if (rc == PT_OK) {
    rc = pt__sql_commit(url, table, (pt__sql_mode)mode, &ds->schema,
                       (const char *const *)res.paths, res.n_partitions,
                       a.sql_shared_staging ? prefix : NULL, err);
    if (rc != PT_OK) pt__error_prefix(err, rc, "write_sql: ");
    pt__job_result_reset(&res);
  }
  /* Every staging table goes, the committed ones and those of attempts
   * that lost, failed or were killed half-way. */
  (void)pt__driver_quiesce(ds->driver, a.job_id, ORPHAN_WAIT_MS);
  pt_error derr = {0};
  int drc = pt__sql_drop_staging(url, prefix, &derr);
  if (rc == PT_OK && drc != PT_OK) {
    if (err) *err = derr;
    rc = pt__error_prefix(err, drc, "write_sql: the rows are committed, but staging tables "
                                    "starting with %s are left: ", prefix);
  }
  pt_buf_free(&ddl);
  pt__free(curl);
  return rc;
}
