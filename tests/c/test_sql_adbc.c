/* test_sql_adbc.c — pt_read_sql through ADBC drivers loaded from their
 * shared libraries (the adbc-driver-sqlite and adbc-driver-postgresql
 * wheels in .venv): a SQLite file made here with the sqlite3 tool and the
 * PostgreSQL server of test_sql_servers.h, read with Spark JDBC ranges and
 * predicates by real executor processes, every row once; a partition whose
 * column SQLite sees only NULLs in still reads as the described type; a bad
 * driver path, a library that is no ADBC driver, a refused query and a
 * failed connection give clear errors without the password. Writes through
 * both drivers land exactly once under faults, a duplicated attempt (its
 * executor frozen after staging every row) included.
 */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "core/core.h"
#include "protium.h"
#include "test_sql_servers.h"
#include "test_util.h"

static pt_test_pg g_pg;
static pt_session *S;
static char DIR_[256], DB[320], SQLITE_LIB[1024], PG_LIB[1024];

/* The driver library the wheel of package ships in the source tree's .venv. */
static int find_driver(const char *package, const char *lib, char *out, size_t size) {
  const char *src = getenv("PT_SOURCE_DIR");
  char pat[1024];
  snprintf(pat, sizeof pat, "%s/.venv/lib/python3*/site-packages/%s/%s", src ? src : ".", package,
           lib);
  glob_t g;
  int ok = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0;
  if (ok) snprintf(out, size, "%s", g.gl_pathv[0]);
  globfree(&g);
  return ok;
}

static int sh(const char *cmd) {
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "failed (%d): %s\n", rc, cmd);
  return rc;
}

static void pg_exec(const char *sql) {
  PGconn *c = PQconnectdb(g_pg.url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

static int setup(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(DIR_, sizeof DIR_, "%s/pt-adbc-XXXXXX", tmp);
  if (!mkdtemp(DIR_)) return -1;
  snprintf(DB, sizeof DB, "%s/events.db", DIR_);
  /* 3000 rows, ids 0..2999, and 4 with a NULL id; `late` is NULL below id
   * 400 (SQLite's driver types a column by the values of its first rows). */
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "sqlite3 '%s' \"CREATE TABLE ev (id INTEGER, x REAL, s TEXT, b BLOB, late TEXT); "
           "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < 2999) "
           "INSERT INTO ev SELECT i, i * 0.25, 'row ' || i, x'00ff', "
           "CASE WHEN i >= 400 THEN 'l' || i END FROM g; "
           "INSERT INTO ev (id, s) VALUES (NULL, 'a'), (NULL, 'b'), (NULL, 'c'), (NULL, 'd');\"",
           DB);
  if (sh(cmd) != 0) return -1;
  if (pt_test_pg_start(&g_pg, "sql_adbc") != 0) return -1;
  const char *kv[] = {"range.batch_rows", "1000"};
  S = pt_test_session("local[2]", kv, 2);
  return S ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  pt_session_close(S);
  pt_test_pg_stop(&g_pg);
  pt__rm_rf(DIR_);
  return 0;
}

static void type_of(pt_dataset *ds, char *out, size_t size) {
  struct ArrowSchema schema;
  CHECK(pt_dataset_schema(ds, &schema, &err));
  pt_type_name(&schema, out, size);
  schema.release(&schema);
}

static void test_sqlite_partitioned(void **state) {
  (void)state;
  char url[512];
  snprintf(url, sizeof url, "adbc:sqlite://%s", DB);
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  o.adbc_driver = SQLITE_LIB;
  o.partition_column = "id";
  o.lower_bound = 500; /* narrower than the data: nothing may be lost */
  o.upper_bound = 2500;
  o.num_partitions = 4;
  pt_dataset *ds;
  CHECK(pt_read_sql(S, url, "ev", &o, &ds, &err));
  assert_int_equal(pt_dataset_num_partitions(ds), 4);
  char tn[256];
  type_of(ds, tn, sizeof tn);
  assert_string_equal(tn, "struct<id: int64, x: float64, s: utf8, b: binary, late: utf8>");
  pt_test_ids t;
  pt_test_ids_collect(ds, 0, &t);
  assert_true(pt_test_ids_are_range(&t, 0, 3000));
  assert_int_equal(t.nulls, 4);
  free(t.ids);
  pt_dataset_free(ds);

  /* A partition whose `late` holds only NULLs: its driver sees no type,
   * the dataset's utf8 is kept. */
  const char *halves[] = {"id < 400", "id >= 400 OR id IS NULL"};
  pt_sql_read_options_init(&o);
  o.adbc_driver = SQLITE_LIB;
  o.predicates = halves;
  o.n_predicates = 2;
  CHECK(pt_read_sql(S, url, "SELECT id, late FROM ev", &o, &ds, &err));
  type_of(ds, tn, sizeof tn);
  assert_string_equal(tn, "struct<id: int64, late: utf8>");
  pt_test_ids_collect(ds, 0, &t);
  assert_true(pt_test_ids_are_range(&t, 0, 3000));
  free(t.ids);
  pt_dataset *nulls;
  CHECK(pt_read_sql(S, url, "SELECT id FROM ev WHERE late IS NULL", &o, &nulls, &err));
  int64_t n_null = 0;
  CHECK(pt_count(nulls, &n_null, &err));
  assert_int_equal(n_null, 404);
  pt_dataset_free(nulls);

  /* The values themselves, in one partition's rows. */
  pt_dataset *one;
  const char *pred[] = {"id = 2345"};
  pt_sql_read_options_init(&o);
  o.adbc_driver = SQLITE_LIB;
  o.predicates = pred;
  o.n_predicates = 1;
  CHECK(pt_read_sql(S, url, "SELECT id, x, s, b, late FROM ev", &o, &one, &err));
  struct ArrowArrayStream st;
  CHECK(pt_collect(one, &st, &err));
  struct ArrowSchema schema;
  assert_int_equal(st.get_schema(&st, &schema), 0);
  pt_buf json = {0};
  struct ArrowArray b;
  while (st.get_next(&st, &b) == 0 && b.release) {
    CHECK(pt_json_write_batch(&schema, &b, &json, &err));
    b.release(&b);
  }
  const char *want =
      "{\"id\": 2345, \"x\": 586.25, \"s\": \"row 2345\", \"b\": \"AP8=\", \"late\": \"l2345\"}\n";
  if (json.len != strlen(want) || memcmp(json.data, want, json.len) != 0)
    fail_msg("got %.*s", (int)json.len, json.data ? json.data : "");
  pt_buf_free(&json);
  schema.release(&schema);
  st.release(&st);
  pt_dataset_free(one);
  pt_dataset_free(ds);
}

/* A driver found by name in sql.adbc.driver_path; the URL's own driver. */
static void test_driver_by_name(void **state) {
  (void)state;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", SQLITE_LIB);
  *strrchr(dir, '/') = 0;
  const char *kv[] = {"sql.adbc.driver_path", dir};
  pt_session *s2 = pt_test_session("local[1]", kv, 2);
  assert_non_null(s2);
  char url[512];
  snprintf(url, sizeof url, "adbc:sqlite://%s", DB);
  pt_dataset *ds;
  CHECK(pt_read_sql(s2, url, "SELECT count(*) AS n FROM ev", NULL, &ds, &err));
  int64_t n = 0;
  CHECK(pt_count(ds, &n, &err));
  assert_int_equal(n, 1);
  pt_dataset_free(ds);
  pt_session_close(s2);
}

static void test_postgresql_driver(void **state) {
  (void)state;
  pg_exec("CREATE TABLE IF NOT EXISTS pts (id int8, x float8, s text, d date, "
          "n numeric(12,3))");
  pg_exec("INSERT INTO pts SELECT g, g * 0.5, 'r' || g, DATE '2024-01-01' + (g % 365), "
          "g * 1.125 FROM generate_series(0, 9999) g");
  pg_exec("INSERT INTO pts (id) VALUES (NULL)");
  char url[512];
  snprintf(url, sizeof url, "adbc:%s", g_pg.url);
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  o.adbc_driver = PG_LIB;
  o.partition_column = "id";
  o.lower_bound = 0;
  o.upper_bound = 10000;
  o.num_partitions = 3;
  pt_dataset *ds;
  CHECK(pt_read_sql(S, url, "pts", &o, &ds, &err));
  assert_int_equal(pt_dataset_num_partitions(ds), 3);
  char tn[256];
  type_of(ds, tn, sizeof tn);
  assert_non_null(strstr(tn, "struct<id: int64, x: float64, s: utf8, d: date32, n: "));
  pt_test_ids t;
  pt_test_ids_collect(ds, 0, &t);
  assert_true(pt_test_ids_are_range(&t, 0, 10000));
  assert_int_equal(t.nulls, 1);
  free(t.ids);
  pt_dataset_free(ds);
}

static void test_errors(void **state) {
  (void)state;
  char url[2048];
  snprintf(url, sizeof url, "adbc:sqlite://%s", DB);
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  pt_dataset *ds = NULL;
  pt_error err = {0};

  o.adbc_driver = "/nonexistent/libadbc_driver_sqlite.so";
  assert_int_equal(pt_read_sql(S, url, "ev", &o, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "read_sql: sql: adbc: cannot load the sqlite driver: "));
  assert_non_null(strstr(err.message, "/nonexistent/libadbc_driver_sqlite.so"));
  assert_non_null(strstr(err.message, "sql.adbc.driver_path"));

  o.adbc_driver = "libz.so.1"; /* a library, but no ADBC driver */
  assert_int_equal(pt_read_sql(S, url, "ev", &o, &ds, &err), PT_ENOTSUP);
  assert_string_equal(err.message, "read_sql: sql: adbc: libz.so.1 exports neither "
                                   "AdbcDriverSqliteInit nor AdbcDriverInit; is it an ADBC "
                                   "driver?");

  o.adbc_driver = SQLITE_LIB;
  assert_int_equal(pt_read_sql(S, url, "no_such_table", &o, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "read_sql: sql: adbc: the query was refused: "));
  assert_non_null(strstr(err.message, "no_such_table"));

  assert_int_equal(pt_read_sql(S, "adbc:nodriver", "t", &o, &ds, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "ADBC URLs read adbc:DRIVER:..."));

  snprintf(url, sizeof url, "adbc:postgresql://postgres:Adbc5ecretPW@127.0.0.1:%d/nodb",
           g_pg.port);
  o.adbc_driver = PG_LIB;
  assert_int_equal(pt_read_sql(S, url, "t", &o, &ds, &err), PT_EIO);
  assert_non_null(strstr(err.message, "read_sql: sql: adbc: cannot connect: "));
  assert_null(strstr(err.message, "Adbc5ecretPW"));

  /* Writes: a column SQLite gets no type for, refused by name before any
   * task runs; a driver protium does not stage through, refused by name. */
  pt_dataset *range, *dated;
  CHECK(pt_range(S, 0, 10, 1, &range, &err));
  snprintf(url, sizeof url, "adbc:sqlite://%s#adbc_driver=%s", DB, SQLITE_LIB);
  CHECK(pt_read_sql(S, g_pg.url, "SELECT DATE '2024-01-01' AS d", NULL, &dated, &err));
  assert_int_equal(pt_write_sql(dated, url, "w", PT_SQL_APPEND, &err), PT_ENOTSUP);
  assert_non_null(strstr(err.message, "column \"d\" is date32, which protium does not write "
                                      "to SQLite"));
  assert_int_equal(pt_write_sql(range, "adbc:flightsql://h:1", "w", PT_SQL_APPEND, &err),
                   PT_ENOTSUP);
  assert_non_null(strstr(err.message, "writing supports the sqlite and postgresql drivers, not "
                                      "flightsql"));
  pt_dataset_free(dated);
  pt_dataset_free(range);
  assert_null(ds);
}

/* One value of a query against the write tests' database, as text. */
static void adbc_query1(int pg, const char *sql, char *out, size_t size) {
  if (pg) {
    PGconn *c = PQconnectdb(g_pg.url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
      fail_msg("%s: %s", sql, PQerrorMessage(c));
    snprintf(out, size, "%s", PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return;
  }
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "sqlite3 '%s/out.db' \"%s\"", DIR_, sql);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  size_t n = fread(out, 1, size - 1, f);
  out[n] = 0;
  while (n > 0 && out[n - 1] == '\n') out[--n] = 0;
  assert_int_equal(pclose(f), 0);
}

static void assert_adbc_query(int pg, const char *sql, const char *want) {
  char got[256];
  adbc_query1(pg, sql, got, sizeof got);
  if (strcmp(got, want) != 0) fail_msg("%s: got %s, want %s", sql, got, want);
}

static int chaos(const pt_task_context *ctx, const struct ArrowSchema *schema,
                 const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                 size_t arg_size, pt_error *err) {
  (void)arg, (void)arg_size;
  return pt_test_apply_fault(pt_test_write_fault(ctx, batch), schema, batch, out, err);
}
PT_REGISTER_FN(chaos)

static int always_fail(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  (void)arg, (void)arg_size;
  return pt_test_partition3_fails(ctx, schema, batch, out, err);
}
PT_REGISTER_FN(always_fail)

/* write_sql through the driver's bulk ingest, exactly once: every mode, an
 * executor killed and an attempt failing after staging rows (the faults of
 * test_util.h), a failed job leaving the table as it was, no staging table
 * left. */
static void write_through(int pg) {
  char url[2048];
  if (pg)
    snprintf(url, sizeof url, "adbc:%s#adbc_driver=%s", g_pg.url, PG_LIB);
  else
    snprintf(url, sizeof url, "adbc:sqlite://%s/out.db#adbc_driver=%s", DIR_, SQLITE_LIB);
  /* pg_tables: the connected database's tables only, this program's own. */
  const char *staging = pg ? "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pt\\_stg\\_%'"
                           : "SELECT count(*) FROM sqlite_master WHERE name LIKE 'pt\\_stg\\_%' "
                             "ESCAPE '\\'";
  pt_dataset *range, *mapped;
  CHECK(pt_range(S, 0, 40000, 4, &range, &err));
  CHECK(pt_map_batches(range, chaos, NULL, NULL, 0, &mapped, &err));
  CHECK(pt_write_sql(mapped, url, "faults", PT_SQL_ERROR, &err));
  assert_adbc_query(pg, "SELECT count(*) || ',' || count(DISTINCT id) || ',' || min(id) || ',' || "
                        "max(id) FROM faults", "40000,40000,0,39999");
  pt_test_assert_two_faults(mapped);
  pt_error e = {0};
  assert_int_equal(pt_write_sql(range, url, "faults", PT_SQL_ERROR, &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "table \"faults\" exists"));
  CHECK(pt_write_sql(range, url, "faults", PT_SQL_APPEND, &err));
  assert_adbc_query(pg, "SELECT count(*) || ',' || count(DISTINCT id) FROM faults",
                    "80000,40000");
  CHECK(pt_write_sql(range, url, "faults", PT_SQL_OVERWRITE, &err));
  assert_adbc_query(pg, "SELECT count(*) || ',' || count(DISTINCT id) FROM faults",
                    "40000,40000");
  pt_dataset_free(mapped);

  /* A failed job: the overwritten table keeps its rows, an appended one
   * that did not exist is not made. */
  CHECK(pt_map_batches(range, always_fail, NULL, NULL, 0, &mapped, &err));
  assert_int_equal(pt_write_sql(mapped, url, "faults", PT_SQL_OVERWRITE, &e), PT_EIO);
  assert_non_null(strstr(e.message, "partition 3 always fails"));
  assert_adbc_query(pg, "SELECT count(*) FROM faults", "40000");
  assert_int_equal(pt_write_sql(mapped, url, "never", PT_SQL_APPEND, &e), PT_EIO);
  assert_adbc_query(pg, pg ? "SELECT count(*) FROM pg_tables WHERE tablename = 'never'"
                           : "SELECT count(*) FROM sqlite_master WHERE name = 'never'",
                    "0");
  assert_adbc_query(pg, staging, "0");
  pt_dataset_free(mapped);
  pt_dataset_free(range);
}

static void test_write_sqlite(void **state) {
  (void)state;
  write_through(0);
}

static void test_write_postgresql(void **state) {
  (void)state;
  write_through(1);
}

/* adbc_query1 for the watch's thread, where a test must not fail: "?" on
 * error. SQLite's reader waits for the other executor's writes. */
static void look_query1(int pg, const char *sql, char *out, size_t size) {
  snprintf(out, size, "?");
  if (pg) {
    PGconn *c = PQconnectdb(g_pg.url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
      snprintf(out, size, "%s", PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return;
  }
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "sqlite3 -cmd '.timeout 30000' '%s/out.db' \"%s\"", DIR_, sql);
  FILE *f = popen(cmd, "r");
  if (!f) return;
  size_t n = fread(out, 1, size - 1, f);
  out[n] = 0;
  while (n > 0 && out[n - 1] == '\n') out[--n] = 0;
  if (pclose(f) != 0) snprintf(out, size, "?");
}

/* look of pt_test_freeze for the PostgreSQL server (arg non-NULL) or the
 * SQLite file: partition 1's staging tables while the executor is stopped,
 * as "p1_a0:<rows>", comma-separated. */
static void adbc_look_p1(pt_test_freeze *f) {
  int pg = f->arg != NULL;
  char names[512] = "";
  const char *list = pg ? "SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables "
                          "WHERE tablename LIKE 'pt\\_stg\\_%\\_p1\\_a%'"
                        : "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master "
                          "WHERE name LIKE 'pt\\_stg\\_%\\_p1\\_a%' ESCAPE '\\' ORDER BY 1)";
  look_query1(pg, list, names, sizeof names);
  size_t k = 0;
  for (char *save, *t = strtok_r(names, " ", &save); t && k < sizeof f->seen;
       t = strtok_r(NULL, " ", &save)) {
    char q[256], n[32];
    snprintf(q, sizeof q, "SELECT count(*) FROM %s", t);
    look_query1(pg, q, n, sizeof n);
    const char *suffix = strstr(t, "_p1_a");
    k += (size_t)snprintf(f->seen + k, sizeof f->seen - k, "%s%s:%s", k ? "," : "",
                          suffix ? suffix + 1 : t, n);
  }
}

/* A duplicated attempt through the driver (test_util.h, pt_test_freeze):
 * partition 1's first attempt has its rows ingested into its staging table,
 * then its executor stops before its status goes out; found lost by the
 * heartbeat timeout, it is killed and partition 1 runs again, so two
 * complete staging tables exist for it. Every row lands once all the same,
 * into a new table and appended to an existing one; no staging table is
 * left. */
static void duplicated_through(int pg) {
  char url[2048];
  if (pg)
    snprintf(url, sizeof url, "adbc:%s#adbc_driver=%s", g_pg.url, PG_LIB);
  else
    snprintf(url, sizeof url, "adbc:sqlite://%s/out.db#adbc_driver=%s", DIR_, SQLITE_LIB);
  const char *staging = pg ? "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pt\\_stg\\_%'"
                           : "SELECT count(*) FROM sqlite_master WHERE name LIKE 'pt\\_stg\\_%' "
                             "ESCAPE '\\'";
  const char *sum = "SELECT count(*) || ',' || count(DISTINCT id) || ',' || sum(id) || ',' || "
                    "min(id) || ',' || max(id) FROM ";
  pt_session *s = pt_test_freeze_session(1);
  pt_dataset *range;
  CHECK(pt_range(s, 0, 40000, 4, &range, &err));
  pt_test_freeze f;
  for (int append = 0; append < 2; append++) {
    const char *table = append ? "adbc_dup_app" : "adbc_dup_new";
    if (append && pg) {
      pg_exec("CREATE TABLE adbc_dup_app (id BIGINT)");
      pg_exec("INSERT INTO adbc_dup_app VALUES (-1)");
    } else if (append) {
      char cmd[512];
      snprintf(cmd, sizeof cmd,
               "sqlite3 '%s/out.db' 'CREATE TABLE adbc_dup_app (id INTEGER); "
               "INSERT INTO adbc_dup_app VALUES (-1)'",
               DIR_);
      assert_int_equal(sh(cmd), 0);
    }
    pt_test_freeze_start(&f, s, adbc_look_p1, pg ? "pg" : NULL);
    pt_error err = {0};
    int rc = pt_write_sql(range, url, table, append ? PT_SQL_APPEND : PT_SQL_ERROR, &err);
    pt_test_freeze_end(&f);
    if (rc != PT_OK) fail_msg("write_sql: %s", err.message);
    assert_string_equal(f.seen, "p1_a0:10000");
    char q[256];
    snprintf(q, sizeof q, "%s%s", sum, table);
    assert_adbc_query(pg, q, append ? "40001,40001,799979999,-1,39999"
                                    : "40000,40000,799980000,0,39999");
    assert_adbc_query(pg, staging, "0");
    pt_test_assert_one_frozen(range, 4);
  }
  pt_dataset_free(range);
  pt_test_freeze_session_close(s);
}

static void test_duplicated_attempt_sqlite(void **state) {
  (void)state;
  duplicated_through(0);
}

static void test_duplicated_attempt_postgresql(void **state) {
  (void)state;
  duplicated_through(1);
}

int main(void) {
  if (!find_driver("adbc_driver_sqlite", "libadbc_driver_sqlite.so", SQLITE_LIB,
                   sizeof SQLITE_LIB))
    return pt_test_sql_missing(
        "the adbc-driver-sqlite wheel (.venv: libadbc_driver_sqlite.so) is");
  if (!find_driver("adbc_driver_postgresql", "libadbc_driver_postgresql.so", PG_LIB,
                   sizeof PG_LIB))
    return pt_test_sql_missing(
        "the adbc-driver-postgresql wheel (.venv: libadbc_driver_postgresql.so) is");
  if (!pt_test_pg_available())
    return pt_test_sql_missing("PostgreSQL 15 (" PT_TEST_PG_BIN ") is");
  if (system("sqlite3 -version >/dev/null 2>&1") != 0)
    return pt_test_sql_missing("the sqlite3 command is");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sqlite_partitioned),
      cmocka_unit_test(test_driver_by_name),
      cmocka_unit_test(test_postgresql_driver),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_write_sqlite),
      cmocka_unit_test(test_write_postgresql),
      cmocka_unit_test(test_duplicated_attempt_sqlite),
      cmocka_unit_test(test_duplicated_attempt_postgresql),
  };
  return cmocka_run_group_tests_name("sql_adbc", tests, setup, teardown);
}
