/* test_sql_mysql.c — pt_read_sql and pt_write_sql against a real MariaDB
 * (test_sql_servers.h) with real executor processes: every mapped type read
 * back value by value, Spark JDBC ranges losing no row (NULL ids included),
 * writes exactly once in every mode, also with an executor killed in the
 * middle of its INSERTs and an attempt failing after staging rows (the
 * faults of test_util.h, shared with test_sql_engine.c), a failed job
 * leaving the table as it was, an attempt whose executor froze after
 * staging all its rows (a duplicated attempt) adding no row twice; unmapped
 * types refused by name, passwords
 * (sql.password, sql.password.<host>, MYSQL_PWD) masked; JSON, ENUM, SET,
 * TIMESTAMP, BLOB, YEAR, BOOLEAN and UUID columns read value by value.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mysql.h>

#include "protium.h"
#include "test_sql_servers.h"
#include "test_util.h"

static pt_test_my g_my;
static pt_session *S;
/* The users the password tests make: accounts are the server's, not the
 * database's, so on a shared server their names are this process's own,
 * and teardown drops them. */
static char PWUSER[32], ENVPW[32], HOSTPW[32];

static MYSQL *connect_db(void) {
  MYSQL *c = mysql_init(NULL);
  assert_non_null(mysql_real_connect(c, "127.0.0.1", "root", NULL, g_my.db, (unsigned)g_my.port,
                                     NULL, 0));
  return c;
}

static void exec_ok(const char *sql) {
  MYSQL *c = connect_db();
  if (mysql_query(c, sql) != 0) fail_msg("%s: %s", sql, mysql_error(c));
  mysql_close(c);
}

static void assert_query(const char *sql, const char *want) {
  MYSQL *c = connect_db();
  if (mysql_query(c, sql) != 0) fail_msg("%s: %s", sql, mysql_error(c));
  MYSQL_RES *r = mysql_store_result(c);
  MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
  char got[256];
  snprintf(got, sizeof got, "%s", row && row[0] ? row[0] : "NULL");
  if (r) mysql_free_result(r);
  mysql_close(c);
  if (strcmp(got, want) != 0) fail_msg("%s: got %s, want %s", sql, got, want);
}

/* A user with password pw and every right on the test's database; its URL
 * into url. */
static void make_user(const char *user, const char *pw, char *url, size_t size) {
  char sql[256];
  snprintf(sql, sizeof sql, "CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", user, pw);
  exec_ok(sql);
  snprintf(sql, sizeof sql, "GRANT ALL ON `%s`.* TO '%s'@'%%'", g_my.db, user);
  exec_ok(sql);
  snprintf(url, size, "mysql://%s@127.0.0.1:%d/%s", user, g_my.port, g_my.db);
}

static void assert_no_staging(void) {
  assert_query("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
               "AND table_name LIKE 'pt\\_stg\\_%'", "0");
}

static int setup(void **state) {
  (void)state;
  if (pt_test_my_start(&g_my, "sql_mysql") != 0) return -1;
  snprintf(PWUSER, sizeof PWUSER, "pwuser_%d", (int)getpid());
  snprintf(ENVPW, sizeof ENVPW, "envpw_%d", (int)getpid());
  snprintf(HOSTPW, sizeof HOSTPW, "hostpw_%d", (int)getpid());
  exec_ok("CREATE TABLE src (id BIGINT, x DOUBLE, s VARCHAR(40), d DATE, ts DATETIME(6), "
          "n DECIMAL(12,3), b VARBINARY(8), u INT UNSIGNED, t TINYINT)");
  /* seq_0_to_4999: MariaDB's sequence engine. */
  exec_ok("INSERT INTO src SELECT seq, seq / 4, CONCAT('r''', seq), DATE '2024-02-28' + "
          "INTERVAL (seq % 3) DAY, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND + "
          "INTERVAL 250 MICROSECOND, seq * 1.125, UNHEX('00FF'), 4000000000, "
          "CAST(seq % 100 AS SIGNED) - 50 FROM seq_0_to_4999");
  exec_ok("INSERT INTO src (id, s) VALUES (NULL, 'no id'), (NULL, 'no id either')");
  const char *kv[] = {"range.batch_rows", "1000"};
  S = pt_test_session("local[2]", kv, 2);
  return S ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  pt_session_close(S);
  char sql[256];
  snprintf(sql, sizeof sql, "DROP USER IF EXISTS '%s'@'%%', '%s'@'%%', '%s'@'%%'", PWUSER,
           ENVPW, HOSTPW);
  pt_test_my_exec(g_my.port, sql);
  pt_test_my_stop(&g_my);
  return 0;
}

static void test_read_every_type_partitioned(void **state) {
  (void)state;
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  o.partition_column = "id";
  o.lower_bound = 100;
  o.upper_bound = 4000;
  o.num_partitions = 3;
  o.fetch_size = 333;
  pt_dataset *ds;
  CHECK(pt_read_sql(S, g_my.url, "src", &o, &ds, &err));
  assert_int_equal(pt_dataset_num_partitions(ds), 3);
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  struct ArrowSchema schema;
  assert_int_equal(st.get_schema(&st, &schema), 0);
  char tn[512];
  pt_type_name(&schema, tn, sizeof tn);
  assert_string_equal(tn, "struct<id: int64, x: float64, s: utf8, d: date32, ts: timestamp[us], "
                          "n: decimal128(12, 3), b: binary, u: uint32, t: int8>");
  int64_t rows = 0, nulls = 0, sum = 0, max_batch = 0;
  pt_buf json = {0};
  struct ArrowArray b;
  while (st.get_next(&st, &b) == 0 && b.release) {
    const struct ArrowArray *c = b.children[0];
    for (int64_t r = 0; r < b.length; r++) {
      if (!pt_array_is_valid(schema.children[0], c, r)) {
        nulls++;
        continue;
      }
      int64_t id = ((const int64_t *)c->buffers[1])[c->offset + r];
      sum += id;
      if (id == 4321) { /* one row, every column */
        struct ArrowArray one;
        CHECK(pt_array_slice(&b, r, 1, &one, &err));
        CHECK(pt_json_write_batch(&schema, &one, &json, &err));
        one.release(&one);
      }
    }
    rows += b.length;
    if (b.length > max_batch) max_batch = b.length;
    b.release(&b);
  }
  assert_int_equal(rows, 5002);
  assert_int_equal(nulls, 2);
  assert_int_equal(sum, 4999LL * 5000 / 2);
  assert_int_equal(max_batch, 333);
  const char *want = "{\"id\": 4321, \"x\": 1080.25, \"s\": \"r'4321\", \"d\": \"2024-02-29\", "
                     "\"ts\": \"2024-01-01T01:12:01.000250\", \"n\": \"4861.125\", \"b\": "
                     "\"AP8=\", \"u\": 4000000000, \"t\": -29}\n";
  if (json.len != strlen(want) || memcmp(json.data, want, json.len) != 0)
    fail_msg("got %.*s", (int)json.len, json.data ? json.data : "");
  pt_buf_free(&json);
  schema.release(&schema);
  st.release(&st);
  pt_dataset_free(ds);
}

/* The types test_read_every_type_partitioned leaves out, each value exact
 * and a row of NULLs: JSON (MariaDB's alias of LONGTEXT), ENUM, SET,
 * TIMESTAMP (stored in UTC here: the session's time zone is set), BLOB, YEAR,
 * BOOLEAN (TINYINT(1): int8, not bool) and UUID (MariaDB 10.7+: its text
 * form). */
static void test_read_more_types(void **state) {
  (void)state;
  MYSQL *c = connect_db();
  /* Before 10.7 there is no UUID type: the same text in a CHAR(36). */
  int has_uuid = mysql_get_server_version(c) >= 100700;
  if (!has_uuid)
    printf("MariaDB %s has no UUID type: CHAR(36) instead\n", mysql_get_server_info(c));
  char create[256];
  snprintf(create, sizeof create,
           "CREATE TABLE more_types (id INT, j JSON, e ENUM('red','green','blue'), "
           "st SET('a','b','c'), ts TIMESTAMP(6) NULL, bl BLOB, y YEAR, flag BOOLEAN, u %s)",
           has_uuid ? "UUID" : "CHAR(36)");
  const char *sql[] = {
      "SET time_zone = '+00:00'",
      create,
      "INSERT INTO more_types VALUES "
      "(1, '{\"k\": [1, 2.5, \"x\"]}', 'green', 'c,a', '2024-03-10 12:34:56.789012', "
      "X'00FF10', 2024, TRUE, '123e4567-e89b-12d3-a456-426614174000'), "
      "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
      "(3, '[]', 'red', '', '1970-01-01 00:00:01', X'', 1901, FALSE, "
      "'00000000-0000-0000-0000-00000000000f')",
  };
  for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
    if (mysql_query(c, sql[i]) != 0) fail_msg("%s: %s", sql[i], mysql_error(c));
  mysql_close(c);
  pt_dataset *ds;
  CHECK(pt_read_sql(S, g_my.url, "SELECT * FROM more_types ORDER BY id", NULL, &ds, &err));
  struct ArrowArrayStream st;
  CHECK(pt_collect(ds, &st, &err));
  struct ArrowSchema schema;
  assert_int_equal(st.get_schema(&st, &schema), 0);
  char tn[512];
  pt_type_name(&schema, tn, sizeof tn);
  assert_string_equal(tn, "struct<id: int32, j: utf8, e: utf8, st: utf8, "
                          "ts: timestamp[us, tz=UTC], bl: binary, y: int16, flag: int8, "
                          "u: utf8>");
  pt_buf json = {0};
  struct ArrowArray b;
  while (st.get_next(&st, &b) == 0 && b.release) {
    CHECK(pt_json_write_batch(&schema, &b, &json, &err));
    b.release(&b);
  }
  /* The JSON text as stored, the SET's members in their declared order,
   * the empty SET and BLOB as empty values, not NULLs; bl in base64. */
  const char *want =
      "{\"id\": 1, \"j\": \"{\\\"k\\\": [1, 2.5, \\\"x\\\"]}\", \"e\": \"green\", "
      "\"st\": \"a,c\", "
      "\"ts\": \"2024-03-10T12:34:56.789012Z\", \"bl\": \"AP8Q\", \"y\": 2024, \"flag\": 1, "
      "\"u\": \"123e4567-e89b-12d3-a456-426614174000\"}\n"
      "{\"id\": 2, \"j\": null, \"e\": null, \"st\": null, \"ts\": null, \"bl\": null, "
      "\"y\": null, \"flag\": null, \"u\": null}\n"
      "{\"id\": 3, \"j\": \"[]\", \"e\": \"red\", \"st\": \"\", "
      "\"ts\": \"1970-01-01T00:00:01.000000Z\", \"bl\": \"\", \"y\": 1901, \"flag\": 0, "
      "\"u\": \"00000000-0000-0000-0000-00000000000f\"}\n";
  if (json.len != strlen(want) || memcmp(json.data, want, json.len) != 0)
    fail_msg("got %.*s", (int)json.len, json.data ? json.data : "");
  pt_buf_free(&json);
  schema.release(&schema);
  st.release(&st);
  pt_dataset_free(ds);
}

static void test_refusals_and_masking(void **state) {
  (void)state;
  pt_dataset *ds = NULL;
  pt_error err = {0};
  assert_int_equal(pt_read_sql(S, g_my.url, "SELECT CAST('10:00:00' AS TIME) AS tod", NULL, &ds,
                               &err), PT_ENOTSUP);
  assert_non_null(strstr(err.message, "column \"tod\" has MySQL type time"));
  char url[512];
  snprintf(url, sizeof url, "mysql://root:Sup3rSecret@127.0.0.1:%d/nodb", g_my.port);
  assert_int_equal(pt_read_sql(S, url, "src", NULL, &ds, &err), PT_EIO);
  assert_null(strstr(err.message, "Sup3rSecret"));
  assert_non_null(strstr(err.message, "read_sql: sql: cannot connect to MySQL"));
  assert_null(ds);
}

static void test_write_modes(void **state) {
  (void)state;
  pt_dataset *ds;
  CHECK(pt_read_sql(S, g_my.url, "src", NULL, &ds, &err));
  CHECK(pt_write_sql(ds, g_my.url, "dst", PT_SQL_ERROR, &err));
  const char *same =
      "SELECT (SELECT count(*) FROM dst) = 5002 AND (SELECT count(*) FROM (SELECT * FROM src "
      "UNION SELECT * FROM dst) u) = 5002";
  assert_query(same, "1");
  pt_error err = {0};
  assert_int_equal(pt_write_sql(ds, g_my.url, "dst", PT_SQL_ERROR, &err), PT_EINVAL);
  assert_non_null(strstr(err.message, "table \"dst\" exists"));
  CHECK(pt_write_sql(ds, g_my.url, "dst", PT_SQL_APPEND, &err));
  assert_query("SELECT count(*) FROM dst", "10004");
  CHECK(pt_write_sql(ds, g_my.url, "dst", PT_SQL_OVERWRITE, &err));
  assert_query(same, "1");
  assert_no_staging();
  pt_dataset_free(ds);
}

/* The shared faults (test_util.h). */
static int chaos(const pt_task_context *ctx, const struct ArrowSchema *schema,
                 const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                 size_t arg_size, pt_error *err) {
  (void)arg, (void)arg_size;
  return pt_test_apply_fault(pt_test_write_fault(ctx, batch), schema, batch, out, err);
}
PT_REGISTER_FN(chaos)

static void test_write_exactly_once_under_faults(void **state) {
  (void)state;
  pt_dataset *range, *mapped;
  CHECK(pt_range(S, 0, 40000, 4, &range, &err));
  CHECK(pt_map_batches(range, chaos, NULL, NULL, 0, &mapped, &err));
  CHECK(pt_write_sql(mapped, g_my.url, "faults", PT_SQL_APPEND, &err));
  assert_query("SELECT count(*) = 40000 AND count(DISTINCT id) = 40000 FROM faults", "1");
  /* Read back through protium: every id once. */
  pt_dataset *back;
  CHECK(pt_read_sql(S, g_my.url, "faults", NULL, &back, &err));
  pt_test_ids t;
  pt_test_ids_collect(back, 0, &t);
  assert_true(pt_test_ids_are_range(&t, 0, 40000));
  free(t.ids);
  pt_dataset_free(back);
  assert_no_staging();
  pt_test_assert_two_faults(mapped);
  pt_dataset_free(mapped);
  pt_dataset_free(range);
}

static int always_fail(const pt_task_context *ctx, const struct ArrowSchema *schema,
                       const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                       size_t arg_size, pt_error *err) {
  (void)arg, (void)arg_size;
  return pt_test_partition3_fails(ctx, schema, batch, out, err);
}
PT_REGISTER_FN(always_fail)

/* A job that fails leaves the table as it was, also the overwrite's, and
 * one it would have created is not there (MySQL's DDL commits on its own:
 * the commit drops it again). */
static void test_failed_job_leaves_table_unchanged(void **state) {
  (void)state;
  exec_ok("CREATE TABLE kept (id BIGINT)");
  exec_ok("INSERT INTO kept VALUES (7)");
  pt_dataset *range, *mapped;
  CHECK(pt_range(S, 0, 40000, 4, &range, &err));
  CHECK(pt_map_batches(range, always_fail, NULL, NULL, 0, &mapped, &err));
  pt_error err = {0};
  assert_int_equal(pt_write_sql(mapped, g_my.url, "kept", PT_SQL_OVERWRITE, &err), PT_EIO);
  assert_non_null(strstr(err.message, "partition 3 always fails"));
  assert_query("SELECT GROUP_CONCAT(id) FROM kept", "7");
  assert_int_equal(pt_write_sql(mapped, g_my.url, "never", PT_SQL_APPEND, &err), PT_EIO);
  assert_query("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
               "AND table_name = 'never'", "0");
  assert_no_staging();
  pt_dataset_free(mapped);
  pt_dataset_free(range);
}

/* A password from sql.password (the URL has none): used, and never shown,
 * neither when the driver's connection fails nor when the executors'
 * do. */
static void test_conf_password(void **state) {
  (void)state;
  char url[512];
  make_user(PWUSER, "C0nf-Secret", url, sizeof url);
  const char *kv[] = {"sql.password", "C0nf-Secret"};
  pt_session *s2 = pt_test_session("local[1]", kv, 2);
  assert_non_null(s2);
  pt_dataset *ds = NULL;
  CHECK(pt_read_sql(s2, url, "SELECT id FROM src WHERE id < 10", NULL, &ds, &err));
  pt_test_ids t;
  pt_test_ids_collect(ds, 0, &t);
  assert_true(pt_test_ids_are_range(&t, 0, 10));
  free(t.ids);
  CHECK(pt_write_sql(ds, url, "pw_dst", PT_SQL_ERROR, &err));
  assert_query("SELECT count(*) FROM pw_dst", "10");
  pt_dataset_free(ds);
  ds = NULL;
  /* Without it: refused, as the server says. */
  pt_error err = {0};
  assert_int_equal(pt_read_sql(S, url, "src", NULL, &ds, &err), PT_EIO);
  assert_non_null(strstr(err.message, "Access denied"));
  assert_null(ds);
  pt_session_close(s2);
  /* A wrong one: the driver's error and the executors' both masked. */
  const char *bad[] = {"sql.password", "Wr0ng-Secret", "task.max_failures", "1"};
  s2 = pt_test_session("local[1]", bad, 4);
  assert_non_null(s2);
  assert_int_equal(pt_read_sql(s2, url, "src", NULL, &ds, &err), PT_EIO);
  assert_null(strstr(err.message, "Wr0ng-Secret"));
  pt_dataset *range;
  CHECK(pt_range(s2, 0, 10, 1, &range, &err));
  assert_int_not_equal(pt_write_sql(range, url, "never", PT_SQL_APPEND, &err), PT_OK);
  assert_non_null(strstr(err.message, "cannot connect to MySQL"));
  assert_null(strstr(err.message, "Wr0ng-Secret"));
  pt_dataset_free(range);
  pt_session_close(s2);
}

/* MYSQL_PWD alone: a read and a write work with the password only in the
 * environment (the executors inherit it), and where the server quotes it
 * (a table of that name, described by the driver; a column of that name,
 * met by a task on an executor) it is masked. While it is set, root's
 * connections (which take MYSQL_PWD too) are not used. */
static void test_env_password(void **state) {
  (void)state;
  char url[512];
  make_user(ENVPW, "Env-S3cret", url, sizeof url);
  assert_int_equal(setenv("MYSQL_PWD", "Env-S3cret", 1), 0);
  const char *kv[] = {"task.max_failures", "1"};
  pt_session *s2 = pt_test_session("local[1]", kv, 2);
  assert_non_null(s2);
  pt_dataset *ds = NULL;
  CHECK(pt_read_sql(s2, url, "SELECT id FROM src WHERE id < 10", NULL, &ds, &err));
  pt_test_ids t;
  pt_test_ids_collect(ds, 0, &t);
  assert_true(pt_test_ids_are_range(&t, 0, 10));
  free(t.ids);
  CHECK(pt_write_sql(ds, url, "env_dst", PT_SQL_ERROR, &err));
  pt_dataset_free(ds);
  ds = NULL;
  pt_error e = {0};
  assert_int_equal(pt_read_sql(s2, url, "SELECT id FROM `Env-S3cret`", NULL, &ds, &e),
                   PT_EINVAL);
  char want[160];
  snprintf(want, sizeof want, "Table '%s.***' doesn't exist", g_my.db);
  assert_non_null(strstr(e.message, want));
  assert_null(strstr(e.message, "Env-S3cret"));
  assert_null(ds);
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  const char *pred[] = {"`Env-S3cret` = 1"};
  o.predicates = pred;
  o.n_predicates = 1;
  CHECK(pt_read_sql(s2, url, "src", &o, &ds, &err));
  struct ArrowArrayStream st;
  assert_int_not_equal(pt_collect(ds, &st, &e), PT_OK);
  assert_non_null(strstr(e.message, "Unknown column '***'"));
  assert_null(strstr(e.message, "Env-S3cret"));
  pt_dataset_free(ds);
  pt_session_close(s2);
  assert_int_equal(unsetenv("MYSQL_PWD"), 0);
  assert_query("SELECT count(*) FROM env_dst", "10");
}

/* sql.password.<host>[:<port>]: the key naming the URL's host and port
 * wins over the host alone, which wins over sql.password; a wrong one is
 * masked like any other. */
static void test_host_password(void **state) {
  (void)state;
  char url[512], port_key[64];
  make_user(HOSTPW, "H0st-Secret", url, sizeof url);
  snprintf(port_key, sizeof port_key, "sql.password.127.0.0.1:%d", g_my.port);
  const char *by_host[] = {"sql.password", "Wr0ng-Any", "sql.password.127.0.0.1", "H0st-Secret",
                           "sql.password.elsewhere", "Wr0ng-Other"};
  const char *by_port[] = {"sql.password.127.0.0.1", "Wr0ng-Host", port_key, "H0st-Secret"};
  const char *const *ok[] = {by_host, by_port};
  int n_ok[] = {6, 4};
  for (int k = 0; k < 2; k++) {
    pt_session *s2 = pt_test_session("local[1]", ok[k], n_ok[k]);
    assert_non_null(s2);
    pt_dataset *ds = NULL;
    CHECK(pt_read_sql(s2, url, "SELECT id FROM src WHERE id < 7", NULL, &ds, &err));
    pt_test_ids t;
    pt_test_ids_collect(ds, 0, &t);
    assert_true(pt_test_ids_are_range(&t, 0, 7));
    free(t.ids);
    pt_dataset_free(ds);
    pt_session_close(s2);
  }
  const char *wrong[] = {"sql.password", "H0st-Secret", port_key, "P0rt-Wr0ng",
                         "task.max_failures", "1"};
  pt_session *s2 = pt_test_session("local[1]", wrong, 6);
  assert_non_null(s2);
  pt_dataset *ds = NULL;
  pt_error e = {0};
  assert_int_equal(pt_read_sql(s2, url, "src", NULL, &ds, &e), PT_EIO);
  assert_non_null(strstr(e.message, "Access denied"));
  assert_null(strstr(e.message, "P0rt-Wr0ng"));
  assert_null(ds);
  pt_session_close(s2);
}

/* look of pt_test_freeze: partition 1's staging tables while the executor
 * is stopped, as "p1_a0:<rows>", comma-separated. */
static void my_look_p1(pt_test_freeze *f) {
  (void)mysql_thread_init();
  MYSQL *c = mysql_init(NULL);
  if (!mysql_real_connect(c, "127.0.0.1", "root", NULL, g_my.db, (unsigned)g_my.port, NULL,
                          0) ||
      mysql_query(c, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                     "DATABASE() AND table_name LIKE 'pt\\_stg\\_%\\_p1\\_a%' ORDER BY 1") !=
          0) {
    snprintf(f->seen, sizeof f->seen, "error: %s", mysql_error(c));
    mysql_close(c);
    mysql_thread_end();
    return;
  }
  MYSQL_RES *r = mysql_store_result(c);
  MYSQL_ROW row;
  size_t k = 0;
  for (int i = 0; r && (row = mysql_fetch_row(r)) && k < sizeof f->seen; i++) {
    char q[256], n[32] = "?";
    snprintf(q, sizeof q, "SELECT count(*) FROM `%s`", row[0]);
    if (mysql_query(c, q) == 0) {
      MYSQL_RES *cr = mysql_store_result(c);
      MYSQL_ROW cw = cr ? mysql_fetch_row(cr) : NULL;
      if (cw && cw[0]) snprintf(n, sizeof n, "%s", cw[0]);
      if (cr) mysql_free_result(cr);
    }
    const char *suffix = strstr(row[0], "_p1_a");
    k += (size_t)snprintf(f->seen + k, sizeof f->seen - k, "%s%s:%s", i ? "," : "",
                          suffix ? suffix + 1 : row[0], n);
  }
  if (r) mysql_free_result(r);
  mysql_close(c);
  mysql_thread_end();
}

/* A duplicated attempt (test_util.h, pt_test_freeze): partition 1's first
 * attempt commits its staging table, then its executor stops before its
 * status goes out; found lost by the heartbeat timeout, it is killed and
 * partition 1 runs again, so two complete staging tables exist for it.
 * Every row lands once all the same, into a new table and appended to an
 * existing one; no staging table is left. */
static void test_duplicated_attempt(void **state) {
  (void)state;
  pt_session *s = pt_test_freeze_session(1);
  /* Partition 1 holds 4002 of src's 5002 rows. */
  const char *preds[] = {"id < 1000", "id >= 1000 OR id IS NULL"};
  pt_sql_read_options o;
  pt_sql_read_options_init(&o);
  o.predicates = preds;
  o.n_predicates = 2;
  pt_dataset *ds;
  CHECK(pt_read_sql(s, g_my.url, "src", &o, &ds, &err));
  pt_test_freeze f;
  pt_test_freeze_start(&f, s, my_look_p1, NULL);
  pt_error err = {0};
  int rc = pt_write_sql(ds, g_my.url, "dup_new", PT_SQL_ERROR, &err);
  pt_test_freeze_end(&f);
  if (rc != PT_OK) fail_msg("write_sql: %s", err.message);
  assert_string_equal(f.seen, "p1_a0:4002");
  assert_query("SELECT (SELECT count(*) FROM dup_new) = 5002 AND (SELECT count(*) FROM "
               "(SELECT * FROM src UNION SELECT * FROM dup_new) u) = 5002", "1");
  assert_no_staging();
  pt_test_assert_one_frozen(ds, 2);
  pt_dataset_free(ds);

  exec_ok("CREATE TABLE dup_app (id BIGINT)");
  exec_ok("INSERT INTO dup_app VALUES (-1)");
  pt_dataset *range;
  CHECK(pt_range(s, 0, 40000, 4, &range, &err));
  pt_test_freeze_start(&f, s, my_look_p1, NULL);
  rc = pt_write_sql(range, g_my.url, "dup_app", PT_SQL_APPEND, &err);
  pt_test_freeze_end(&f);
  if (rc != PT_OK) fail_msg("write_sql: %s", err.message);
  assert_string_equal(f.seen, "p1_a0:10000");
  assert_query("SELECT CONCAT_WS(',', count(*), count(DISTINCT id), sum(id), min(id), max(id)) "
               "FROM dup_app", "40001,40001,799979999,-1,39999");
  assert_no_staging();
  pt_test_assert_one_frozen(range, 4);
  pt_dataset_free(range);
  pt_test_freeze_session_close(s);
}

int main(void) {
  if (!pt_test_my_available()) {
    return pt_test_sql_missing("MariaDB (/usr/sbin/mariadbd, mariadb-install-db) is");
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_every_type_partitioned),
      cmocka_unit_test(test_read_more_types),
      cmocka_unit_test(test_refusals_and_masking),
      cmocka_unit_test(test_write_modes),
      cmocka_unit_test(test_env_password),
      cmocka_unit_test(test_write_exactly_once_under_faults),
      cmocka_unit_test(test_failed_job_leaves_table_unchanged),
      cmocka_unit_test(test_conf_password),
      cmocka_unit_test(test_host_password),
      cmocka_unit_test(test_duplicated_attempt),
  };
  return cmocka_run_group_tests_name("sql_mysql", tests, setup, teardown);
}
