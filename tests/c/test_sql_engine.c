/* test_sql_engine.c — pt_read_sql and pt_write_sql on the local engine
 * against a real PostgreSQL (test_sql_servers.h) with real executor
 * processes: Spark JDBC partitioning and explicit predicates read every row
 * once, in batches of fetch_size; writes land exactly once in every mode,
 * also when an executor is killed half-way through its COPY and when a task
 * attempt fails after writing rows; a failed job leaves the table as it
 * was; a write into a new table (the shared staging table renamed to it)
 * gives the same columns, logged, and a commit failing after the rename
 * leaves no table; an attempt that committed its rows but whose executor
 * froze before reporting (a duplicated attempt) adds no row twice; an
 * attempt still holding the shared table makes the commit copy the
 * winners' rows instead, and so does a table made while the job runs;
 * staging tables never outlive the call.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "protium.h"
#include "test_sql_servers.h"
#include "test_util.h"

static pt_test_pg g_pg;
static pt_session *S;

static void exec_ok(const char *sql) {
  PGconn *c = PQconnectdb(g_pg.url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

/* The one value query returns, as text. */
static void query1(const char *sql, char *out, size_t size) {
  PGconn *c = PQconnectdb(g_pg.url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  snprintf(out, size, "%s", PQgetisnull(r, 0, 0) ? "NULL" : PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
}

static void assert_query(const char *sql, const char *want) {
  char got[256];
  query1(sql, got, sizeof got);
  if (strcmp(got, want) != 0) fail_msg("%s: got %s, want %s", sql, got, want);
}

/* pg_tables lists the connected database's tables only: on the shared
 * server, this program's own database (test_sql_servers.h). */
static void assert_no_staging(void) {
  assert_query("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pt\\_stg\\_%'", "0");
}

static int setup(void **state) {
  (void)state;
  if (pt_test_pg_start(&g_pg, "sql_engine") != 0) return -1;
  /* 10,000 rows with ids 0..9999, and 5 more whose id is NULL. */
  exec_ok("CREATE TABLE src (id int8, x float8, s text, d date, n numeric(12,3))");
  exec_ok("INSERT INTO src SELECT g, g * 0.5, 'row ' || g, DATE '2024-01-01' + (g % 365), "
          "(g * 1.125)::numeric(12,3) FROM generate_series(0, 9999) g");
  exec_ok("INSERT INTO src SELECT NULL, -1, 'null id', NULL, -0.001 FROM generate_series(1, 5)");
  /* Small batches: a partition of the writes below is ten of them. */
  const char *kv[] = {"range.batch_rows", "1000"};
  S = pt_test_session("local[2]", kv, 2);
  return S ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  pt_session_close(S);
  pt_test_pg_stop(&g_pg);
  return 0;
}

/* Rows, non-null ids and their sum, largest batch, over the whole dataset;
 * every id seen once. */
static void scan(pt_dataset *ds, int64_t *rows, int64_t *ids, int64_t *sum, int64_t *max_batch) {
  pt_test_ids t;
  pt_test_ids_collect(ds, 0, &t);
  for (int64_t i = 1; i < t.n; i++) assert_true(t.ids[i] > t.ids[i - 1]);
  *rows = t.rows;
  *ids = t.n;
  *sum = t.sum;
  *max_batch = t.max_batch;
  free(t.ids);
}

static void test_read_ranges_and_predicates(void **state) {
  (void)state;
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  o.partition_column = "id";
  o.lower_bound = 1000; /* narrower than the data: nothing may be lost */
  o.upper_bound = 9000;
  o.num_partitions = 4;
  o.fetch_size = 700;
  pt_dataset *ds;
  CHECK(pt_read_sql(S, g_pg.url, "src", &o, &ds, &err));
  assert_int_equal(pt_dataset_num_partitions(ds), 4);
  char tn[256];
  struct ArrowSchema schema;
  CHECK(pt_dataset_schema(ds, &schema, &err));
  pt_type_name(&schema, tn, sizeof tn);
  schema.release(&schema);
  assert_string_equal(tn,
                      "struct<id: int64, x: float64, s: utf8, d: date32, n: decimal128(12, 3)>");
  int64_t rows, ids, sum, max_batch;
  scan(ds, &rows, &ids, &sum, &max_batch);
  assert_int_equal(rows, 10005);
  assert_int_equal(ids, 10000);
  assert_int_equal(sum, 9999LL * 10000 / 2);
  assert_int_equal(max_batch, 700);
  pt_dataset_free(ds);

  /* A query, split by the caller's predicates. */
  const char *preds[] = {"id < 50", "id >= 50"};
  pt_sql_read_options_init(&o);
  o.predicates = preds;
  o.n_predicates = 2;
  CHECK(pt_read_sql(S, g_pg.url, "  select id, s FROM src WHERE id < 100", &o, &ds, &err));
  assert_int_equal(pt_dataset_num_partitions(ds), 2);
  scan(ds, &rows, &ids, &sum, &max_batch);
  assert_int_equal(rows, 100);
  assert_int_equal(sum, 99 * 100 / 2);
  pt_dataset_free(ds);
}

static void test_read_refusals(void **state) {
  (void)state;
  pt_dataset *ds = NULL;
  pt_error err = {0};
  assert_int_equal(pt_read_sql(S, "oracle://u@h/db", "t", NULL, &ds, &err), PT_ENOTSUP);
  assert_non_null(strstr(err.message, "read_sql: URL scheme 'oracle' is not supported"));
  char url[512];
  snprintf(url, sizeof url, "postgresql://postgres:s3cretPW@127.0.0.1:%d/nodb", g_pg.port);
  assert_int_equal(pt_read_sql(S, url, "src", NULL, &ds, &err), PT_EIO);
  assert_null(strstr(err.message, "s3cretPW"));
  assert_non_null(strstr(err.message, "read_sql: sql: cannot connect to PostgreSQL"));
  assert_int_equal(pt_read_sql(S, g_pg.url, "SELECT point(1, 2) AS p", NULL, &ds, &err),
                   PT_ENOTSUP);
  assert_non_null(strstr(err.message, "column \"p\" has type point"));
  assert_null(ds);
}

static void test_write_modes(void **state) {
  (void)state;
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  o.partition_column = "id";
  o.lower_bound = 0;
  o.upper_bound = 10000;
  o.num_partitions = 3;
  pt_dataset *ds;
  CHECK(pt_read_sql(S, g_pg.url, "src", &o, &ds, &err));
  CHECK(pt_write_sql(ds, g_pg.url, "dst", PT_SQL_ERROR, &err));
  const char *same =
      "SELECT (SELECT count(*) FROM dst) = 10005 AND NOT EXISTS ("
      "(SELECT * FROM src EXCEPT ALL SELECT * FROM dst) UNION ALL "
      "(SELECT * FROM dst EXCEPT ALL SELECT * FROM src))";
  assert_query(same, "t");
  assert_no_staging();
  pt_error err = {0};
  assert_int_equal(pt_write_sql(ds, g_pg.url, "dst", PT_SQL_ERROR, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "table \"dst\" exists; use mode append or overwrite"));
  assert_query(same, "t");
  CHECK(pt_write_sql(ds, g_pg.url, "dst", PT_SQL_APPEND, &err));
  assert_query("SELECT count(*) FROM dst", "20010");
  CHECK(pt_write_sql(ds, g_pg.url, "dst", PT_SQL_OVERWRITE, &err));
  assert_query(same, "t");
  assert_no_staging();
  pt_dataset_free(ds);
}

/* The columns of table as "name type notnull, ..." (pg_attribute order). */
#define COLUMNS_OF(t)                                                                          \
  "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || "            \
  "attnotnull, ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '" t "'::regclass "    \
  "AND attnum > 0 AND NOT attisdropped"

/* A write into a table that does not exist yet: the tasks stage in one
 * shared logged table and the commit renames it to the target. In every
 * mode the rows are exactly the source's, the columns those the type
 * mapping makes (the same as an INSERT ... SELECT write into a table made
 * by CREATE TABLE with that mapping: no column of the staging's own), and
 * the table is logged. */
static void test_write_new_table_by_rename(void **state) {
  (void)state;
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  o.partition_column = "id";
  o.lower_bound = 0;
  o.upper_bound = 10000;
  o.num_partitions = 3;
  pt_dataset *ds;
  CHECK(pt_read_sql(S, g_pg.url, "src", &o, &ds, &err));
  const char *want_cols =
      "id bigint false, x double precision false, s text false, d date false, "
      "n numeric(12,3) false";
  const char *names[] = {"new_e", "new_o", "new_a"};
  const pt_sql_write_mode modes[] = {PT_SQL_ERROR, PT_SQL_OVERWRITE, PT_SQL_APPEND};
  for (int i = 0; i < 3; i++) {
    CHECK(pt_write_sql(ds, g_pg.url, names[i], modes[i], &err));
    char q[512];
    snprintf(q, sizeof q,
             "SELECT (SELECT count(*) FROM %s) = 10005 AND NOT EXISTS ("
             "(SELECT * FROM src EXCEPT ALL SELECT * FROM %s) UNION ALL "
             "(SELECT * FROM %s EXCEPT ALL SELECT * FROM src))",
             names[i], names[i], names[i]);
    assert_query(q, "t");
    snprintf(q, sizeof q, "SELECT relpersistence FROM pg_class WHERE oid = '%s'::regclass",
             names[i]);
    assert_query(q, "p");
    /* Renamed, not copied: the rows keep the xmins of the tasks'
     * transactions (one an attempt); an INSERT ... SELECT gives them all
     * the commit's. */
    snprintf(q, sizeof q, "SELECT count(DISTINCT xmin::text) > 1 FROM %s", names[i]);
    assert_query(q, "t");
    assert_no_staging();
  }
  assert_query(COLUMNS_OF("new_e"), want_cols);
  assert_query(COLUMNS_OF("new_o"), want_cols);
  assert_query(COLUMNS_OF("new_a"), want_cols);
  /* The old way: the table exists (made with the mapping's types), the
   * commit INSERT ... SELECTs; same columns. */
  exec_ok("CREATE TABLE old_way (id bigint, x double precision, s text, d date, "
          "n numeric(12,3))");
  CHECK(pt_write_sql(ds, g_pg.url, "old_way", PT_SQL_APPEND, &err));
  assert_query(COLUMNS_OF("old_way"), want_cols);
  assert_query("SELECT count(*) || '|' || count(DISTINCT xmin::text) FROM old_way", "10005|1");
  pt_dataset_free(ds);
}

/* A commit that fails after the rename (just before COMMIT) rolls it
 * back: no target table, and the staging tables, the shared one's name
 * restored, are dropped. */
static void test_failed_commit_after_rename(void **state) {
  (void)state;
  pt_dataset *range;
  CHECK(pt_range(S, 0, 40000, 4, &range, &err));
  setenv("PROTIUM_FAULT_SQL_COMMIT", "1", 1);
  pt_error err = {0};
  int rc = pt_write_sql(range, g_pg.url, "doomed", PT_SQL_ERROR, &err);
  unsetenv("PROTIUM_FAULT_SQL_COMMIT");
  assert_int_equal(rc, PT_EIO);
  assert_non_null(strstr(err.message, "PROTIUM_FAULT_SQL_COMMIT"));
  assert_query("SELECT to_regclass('doomed') IS NULL", "t");
  assert_no_staging();
  /* The same write without the fault lands whole. */
  CHECK(pt_write_sql(range, g_pg.url, "doomed", PT_SQL_ERROR, &err));
  assert_query("SELECT count(*) = 40000 AND count(DISTINCT id) = 40000 FROM doomed", "t");
  assert_no_staging();
  pt_dataset_free(range);
}

/* Where chaos reports what it saw (passed as arg bytes: executors have no
 * other way to know). */
typedef struct chaos_arg {
  char url[384];
  char report[320];
} chaos_arg;

/* Rows of the staging tables whose names end in suffix, as text; where the
 * job shares one staging table, the rows other sessions see there of the
 * attempts whose names end in suffix. */
static void staged_rows(const char *url, const char *suffix, char *out, size_t size) {
  char q[768];
  snprintf(out, size, "?");
  PGconn *c = PQconnectdb(url);
  snprintf(q, sizeof q,
           "SELECT format('SELECT count(*) FROM %%I', tablename) FROM pg_tables "
           "WHERE tablename LIKE 'pt\\_stg\\_%%%s' UNION ALL "
           "SELECT format('SELECT count(*) FROM %%I WHERE xmin IN (SELECT xmin FROM %%I "
           "WHERE name LIKE ''%%%%%s'')', left(tablename, -8) || 'all', tablename) "
           "FROM pg_tables WHERE tablename LIKE 'pt\\_stg\\_%%\\_attempts'",
           suffix, suffix);
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
    snprintf(q, sizeof q, "%s", PQgetvalue(r, 0, 0));
    PGresult *n = PQexec(c, q);
    if (PQresultStatus(n) == PGRES_TUPLES_OK) snprintf(out, size, "%s", PQgetvalue(n, 0, 0));
    PQclear(n);
  }
  PQclear(r);
  PQfinish(c);
}

/* The shared faults (test_util.h); each losing first attempt notes, in the
 * report file, how many rows its staging table holds when it dies. */
static int chaos(const pt_task_context *ctx, const struct ArrowSchema *schema,
                 const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                 size_t arg_size, pt_error *err) {
  const chaos_arg *a = arg;
  if (arg_size != sizeof *a) {
    snprintf(err->message, sizeof err->message, "arg must be a chaos_arg");
    return err->code = PT_EINVAL;
  }
  int fault = pt_test_write_fault(ctx, batch);
  if (fault != PT_TEST_NO_FAULT) {
    char n[32];
    staged_rows(a->url, fault == PT_TEST_KILL ? "\\_p1\\_a0" : "\\_p2\\_a0", n, sizeof n);
    FILE *f = fopen(a->report, "a");
    if (f) {
      fprintf(f, "p%lld:%s\n", (long long)pt_ctx_partition_id(ctx), n);
      fclose(f);
    }
  }
  return pt_test_apply_fault(fault, schema, batch, out, err);
}
PT_REGISTER_FN(chaos)

/* The same faults into an existing table (the attempts' own staging
 * tables) and into a new one (the shared staging table). */
static void test_write_exactly_once_under_faults(void **state) {
  (void)state;
  exec_ok("CREATE TABLE faults_old (id int8)");
  const char *tables[] = {"faults_old", "faults_new"};
  /* Both losing attempts had rows in their own staging tables when they
   * died; in the shared one, no other session ever saw a row of theirs
   * (their transactions never committed). */
  const char *seen[][2] = {{"p1:3000\np2:5000\n", "p2:5000\np1:3000\n"},
                           {"p1:0\np2:0\n", "p2:0\np1:0\n"}};
  for (int t = 0; t < 2; t++) {
    pt_dataset *range, *mapped;
    CHECK(pt_range(S, 0, 40000, 4, &range, &err));
    chaos_arg a = {0};
    snprintf(a.url, sizeof a.url, "%s", g_pg.url);
    snprintf(a.report, sizeof a.report, "%s/chaos-report-%d", g_pg.dir, t);
    CHECK(pt_map_batches(range, chaos, NULL, &a, sizeof a, &mapped, &err));
    CHECK(pt_write_sql(mapped, g_pg.url, tables[t], PT_SQL_APPEND, &err));
    FILE *f = fopen(a.report, "r");
    assert_non_null(f);
    char report[128] = "";
    size_t got = fread(report, 1, sizeof report - 1, f);
    fclose(f);
    report[got] = 0;
    if (strcmp(report, seen[t][0]) != 0 && strcmp(report, seen[t][1]) != 0)
      fail_msg("%s: the losing attempts saw %s", tables[t], report);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) = 40000 AND count(DISTINCT id) = 40000 AND min(id) = 0 AND "
             "max(id) = 39999 FROM %s", tables[t]);
    assert_query(q, "t");
    assert_no_staging();
    pt_test_assert_two_faults(mapped);
    pt_dataset_free(mapped);
    pt_dataset_free(range);
  }
}

static int always_fail(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  (void)arg, (void)arg_size;
  return pt_test_partition3_fails(ctx, schema, batch, out, err);
}
PT_REGISTER_FN(always_fail)

static void test_failed_job_leaves_table_unchanged(void **state) {
  (void)state;
  exec_ok("CREATE TABLE kept (id int8)");
  exec_ok("INSERT INTO kept VALUES (7)");
  pt_dataset *range, *mapped;
  CHECK(pt_range(S, 0, 40000, 4, &range, &err));
  CHECK(pt_map_batches(range, always_fail, NULL, NULL, 0, &mapped, &err));
  pt_error err = {0};
  assert_int_equal(pt_write_sql(mapped, g_pg.url, "kept", PT_SQL_OVERWRITE, &err), PT_EIO);
  assert_non_null(strstr(err.message, "partition 3 always fails"));
  assert_query("SELECT string_agg(id::text, ',') FROM kept", "7");
  assert_int_equal(pt_write_sql(mapped, g_pg.url, "never", PT_SQL_APPEND, &err), PT_EIO);
  assert_query("SELECT to_regclass('never') IS NULL", "t");
  assert_no_staging();
  pt_dataset_free(mapped);
  pt_dataset_free(range);

  /* A column PostgreSQL has no type for: refused before any task runs. */
  struct ArrowSchema schema;
  CHECK(pt_schema_init(&schema, "+s", "", 0, 1, &err));
  CHECK(pt_schema_init(schema.children[0], "+s", "xs", ARROW_FLAG_NULLABLE, 1, &err));
  CHECK(pt_schema_init(schema.children[0]->children[0], "l", "a", ARROW_FLAG_NULLABLE, 0, &err));
  pt_dataset *ds;
  CHECK(pt_from_batches(S, &schema, NULL, 0, &ds, &err));
  schema.release(&schema);
  assert_int_equal(pt_write_sql(ds, g_pg.url, "structs", PT_SQL_APPEND, &err), PT_ENOTSUP);
  assert_string_equal(err.message,
                      "write_sql: sql: write: column \"xs\" is struct<a: int64>, which protium "
                      "cannot write to PostgreSQL; cast it first (e.g. to a string)");
  pt_dataset_free(ds);
}

/* look of pt_test_freeze: partition 1's stagings while the executor is
 * stopped, as "p1_a0:<rows>", comma-separated: its attempts' own staging
 * tables, or the attempts recorded in the shared one and the rows their
 * transactions committed there. */
static void pg_look_p1(pt_test_freeze *f) {
  PGconn *c = PQconnectdb(f->arg);
  PGresult *r = PQexec(
      c, "SELECT substring(tablename from '_(p[0-9]+_a[0-9]+)$'), "
         "format('SELECT count(*) FROM %I', tablename) FROM pg_tables "
         "WHERE tablename LIKE 'pt\\_stg\\_%\\_p1\\_a%' UNION ALL "
         "SELECT NULL, format('SELECT substring(name from ''_(p[0-9]+_a[0-9]+)$''), count(s.*) "
         "FROM %I a LEFT JOIN %I s ON s.xmin = a.xmin WHERE name LIKE ''%%\\_p1\\_a%%'' "
         "GROUP BY 1 ORDER BY 1', tablename, left(tablename, -8) || 'all') FROM pg_tables "
         "WHERE tablename LIKE 'pt\\_stg\\_%\\_attempts' ORDER BY 1");
  size_t k = 0;
  for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
    PGresult *n = PQexec(c, PQgetvalue(r, i, 1));
    int shared = PQgetisnull(r, i, 0), rows = PQresultStatus(n) == PGRES_TUPLES_OK;
    for (int j = 0; j < (shared ? (rows ? PQntuples(n) : 0) : 1) && k < sizeof f->seen; j++)
      k += (size_t)snprintf(f->seen + k, sizeof f->seen - k, "%s%s:%s", k ? "," : "",
                            shared ? PQgetvalue(n, j, 0) : PQgetvalue(r, i, 0),
                            !rows ? "?" : PQgetvalue(n, j, shared ? 1 : 0));
    PQclear(n);
  }
  PQclear(r);
  PQfinish(c);
}

/* A duplicated attempt (test_util.h, pt_test_freeze): partition 1's first
 * attempt commits its staging table, then its executor stops before its
 * status goes out; found lost by the heartbeat timeout, it is killed and
 * partition 1 runs again, so two complete staging tables exist for it.
 * Every row lands once all the same: into a new table, where both attempts
 * committed into the shared staging table and the commit deletes the rows
 * of the one the driver never heard of before it renames the table, and
 * appended to an existing table (their own staging tables). No staging
 * table is left. */
static void test_duplicated_attempt(void **state) {
  (void)state;
  pt_session *s = pt_test_freeze_session(1);
  /* Partition 1 holds 8005 of src's 10005 rows. */
  const char *preds[] = {"id < 2000", "id >= 2000 OR id IS NULL"};
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  o.predicates = preds;
  o.n_predicates = 2;
  pt_dataset *ds;
  CHECK(pt_read_sql(s, g_pg.url, "src", &o, &ds, &err));
  pt_test_freeze f;
  pt_test_freeze_start(&f, s, pg_look_p1, g_pg.url);
  pt_error err = {0};
  int rc = pt_write_sql(ds, g_pg.url, "dup_new", PT_SQL_ERROR, &err);
  pt_test_freeze_end(&f);
  if (rc != PT_OK) fail_msg("write_sql: %s", err.message);
  assert_string_equal(f.seen, "p1_a0:8005");
  assert_query("SELECT (SELECT count(*) FROM dup_new) = 10005 AND NOT EXISTS ("
               "(SELECT * FROM src EXCEPT ALL SELECT * FROM dup_new) UNION ALL "
               "(SELECT * FROM dup_new EXCEPT ALL SELECT * FROM src))", "t");
  /* Renamed, not made by the commit: the rows keep the xmins of the two
   * winners' transactions. */
  assert_query("SELECT count(DISTINCT xmin::text) FROM dup_new", "2");
  assert_no_staging();
  pt_test_assert_one_frozen(ds, 2);
  pt_dataset_free(ds);

  exec_ok("CREATE TABLE dup_app (id int8)");
  exec_ok("INSERT INTO dup_app VALUES (-1)");
  pt_dataset *range;
  CHECK(pt_range(s, 0, 40000, 4, &range, &err));
  pt_test_freeze_start(&f, s, pg_look_p1, g_pg.url);
  rc = pt_write_sql(range, g_pg.url, "dup_app", PT_SQL_APPEND, &err);
  pt_test_freeze_end(&f);
  if (rc != PT_OK) fail_msg("write_sql: %s", err.message);
  assert_string_equal(f.seen, "p1_a0:10000");
  assert_query("SELECT count(*) || ',' || count(DISTINCT id) || ',' || sum(id) || ',' || min(id) "
               "|| ',' || max(id) FROM dup_app", "40001,40001,799979999,-1,39999");
  assert_no_staging();
  pt_test_assert_one_frozen(range, 4);
  pt_dataset_free(range);
  pt_test_freeze_session_close(s);
}

/* An attempt frozen with its transaction into the shared staging table
 * open (on another host the driver cannot kill it): a thread of the test
 * inserts a row into that table and keeps its transaction open until the
 * target exists; the task of partition 0 waits for that before it sends
 * its rows, so the transaction is open when the commit comes. */
typedef struct holder {
  const char *url, *target;
  char held[320]; /* the file made once the transaction is open */
  int ok;         /* 1: held the table and let it go */
} holder;

static void *hold_main(void *arg) {
  holder *h = arg;
  PGconn *c = PQconnectdb(h->url);
  char all[128] = "", q[256];
  for (int i = 0; i < 6000 && !all[0] && PQstatus(c) == CONNECTION_OK; i++) {
    PGresult *r = PQexec(c, "SELECT tablename FROM pg_tables "
                            "WHERE tablename LIKE 'pt\\_stg\\_%\\_all'");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
      snprintf(all, sizeof all, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!all[0]) usleep(10000);
  }
  snprintf(q, sizeof q, "BEGIN; INSERT INTO \"%s\" (id) VALUES (-42)", all);
  PGresult *r = PQexec(c, q);
  int open = all[0] && PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  FILE *f = open ? fopen(h->held, "w") : NULL;
  if (f) fclose(f);
  /* pg_tables, not to_regclass: inside a transaction a name lookup that
   * takes no lock may not see a table made since it began. */
  snprintf(q, sizeof q, "SELECT count(*) FROM pg_tables WHERE tablename = '%s'", h->target);
  int made = 0;
  for (int i = 0; open && i < 6000 && !made; i++) {
    r = PQexec(c, q);
    made = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == '1';
    PQclear(r);
    if (!made) usleep(10000);
  }
  r = PQexec(c, "ROLLBACK");
  PQclear(r);
  PQfinish(c);
  h->ok = open && made;
  return NULL;
}

/* Partition 0 sends nothing until the file arg names exists (60 s at
 * most). */
static int wait_file(const pt_task_context *ctx, const struct ArrowSchema *schema,
                     const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                     size_t arg_size, pt_error *err) {
  (void)arg_size;
  for (int i = 0; pt_ctx_partition_id(ctx) == 0 && i < 6000 && access(arg, F_OK) != 0; i++)
    usleep(10000);
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(wait_file)

/* The commit cannot lock the shared staging table within its bound: it
 * copies the winners' rows into a table it makes (one transaction, so one
 * xmin), without the held transaction's row, and the cleanup drops the
 * staging once the holder lets go. */
static void test_held_staging_is_copied(void **state) {
  (void)state;
  holder h = {.url = g_pg.url, .target = "held_new"};
  snprintf(h.held, sizeof h.held, "%s/held", g_pg.dir);
  pt_dataset *range, *mapped;
  CHECK(pt_range(S, 0, 40000, 4, &range, &err));
  CHECK(pt_map_batches(range, wait_file, NULL, h.held, strlen(h.held) + 1, &mapped, &err));
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, hold_main, &h), 0);
  pt_error err = {0};
  int rc = pt_write_sql(mapped, g_pg.url, "held_new", PT_SQL_ERROR, &err);
  pthread_join(th, NULL);
  if (rc != PT_OK) fail_msg("write_sql: %s", err.message);
  assert_int_equal(h.ok, 1);
  assert_query("SELECT count(*) || ',' || count(DISTINCT id) || ',' || min(id) || ',' || "
               "max(id) || ',' || count(DISTINCT xmin::text) FROM held_new",
               "40000,40000,0,39999,1");
  assert_no_staging();
  pt_dataset_free(mapped);
  pt_dataset_free(range);
}

/* Someone makes the table while the job runs (after the driver found it
 * missing and made the shared staging table): the thread of the test
 * creates it with one row once the shared table exists, before partition 0
 * sends its rows. */
typedef struct maker {
  const char *url, *target;
  char made[320]; /* the file made once the table is */
} maker;

static void *make_main(void *arg) {
  maker *m = arg;
  PGconn *c = PQconnectdb(m->url);
  int found = 0;
  for (int i = 0; i < 6000 && !found && PQstatus(c) == CONNECTION_OK; i++) {
    PGresult *r = PQexec(c, "SELECT count(*) FROM pg_tables "
                            "WHERE tablename LIKE 'pt\\_stg\\_%\\_all'");
    found = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == '1';
    PQclear(r);
    if (!found) usleep(10000);
  }
  char q[256];
  snprintf(q, sizeof q, "CREATE TABLE %s (id int8); INSERT INTO %s VALUES (-1)", m->target,
           m->target);
  PGresult *r = PQexec(c, q);
  FILE *f = PQresultStatus(r) == PGRES_COMMAND_OK ? fopen(m->made, "w") : NULL;
  if (f) fclose(f);
  PQclear(r);
  PQfinish(c);
  return NULL;
}

/* The commit finds the table inside its transaction: appending, the
 * winners' rows are copied into it from the shared staging table; with
 * mode error, the write fails naming it and leaves it as it was. Either
 * way no staging is left. */
static void test_table_made_during_the_job(void **state) {
  (void)state;
  const char *targets[] = {"made_mid_append", "made_mid_error"};
  const pt_sql_write_mode modes[] = {PT_SQL_APPEND, PT_SQL_ERROR};
  for (int t = 0; t < 2; t++) {
    maker m = {.url = g_pg.url, .target = targets[t]};
    snprintf(m.made, sizeof m.made, "%s/made-%d", g_pg.dir, t);
    pt_dataset *range, *mapped;
    CHECK(pt_range(S, 0, 40000, 4, &range, &err));
    CHECK(pt_map_batches(range, wait_file, NULL, m.made, strlen(m.made) + 1, &mapped, &err));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, make_main, &m), 0);
    pt_error err = {0};
    int rc = pt_write_sql(mapped, g_pg.url, targets[t], modes[t], &err);
    pthread_join(th, NULL);
    char q[256];
    if (modes[t] == PT_SQL_APPEND) {
      if (rc != PT_OK) fail_msg("write_sql: %s", err.message);
      snprintf(q, sizeof q,
               "SELECT count(*) || ',' || count(DISTINCT id) || ',' || min(id) || ',' || "
               "max(id) || ',' || count(DISTINCT xmin::text) FROM %s", targets[t]);
      assert_query(q, "40001,40001,-1,39999,2");
    } else {
      assert_int_equal(rc, PT_EINVAL);
      assert_non_null(strstr(err.message, "table \"made_mid_error\" exists; use mode append"));
      snprintf(q, sizeof q, "SELECT string_agg(id::text, ',') FROM %s", targets[t]);
      assert_query(q, "-1");
    }
    assert_no_staging();
    pt_dataset_free(mapped);
    pt_dataset_free(range);
  }
}

int main(void) {
  if (!pt_test_pg_available()) {
    return pt_test_sql_missing("PostgreSQL 15 (" PT_TEST_PG_BIN ") is");
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_ranges_and_predicates),
      cmocka_unit_test(test_read_refusals),
      cmocka_unit_test(test_write_modes),
      cmocka_unit_test(test_write_new_table_by_rename),
      cmocka_unit_test(test_failed_commit_after_rename),
      cmocka_unit_test(test_write_exactly_once_under_faults),
      cmocka_unit_test(test_failed_job_leaves_table_unchanged),
      cmocka_unit_test(test_duplicated_attempt),
      cmocka_unit_test(test_held_staging_is_copied),
      cmocka_unit_test(test_table_made_during_the_job),
  };
  return cmocka_run_group_tests_name("sql_engine", tests, setup, teardown);
}
