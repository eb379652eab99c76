/* test_sql_pg.c — reading PostgreSQL as Arrow through libpq and binary COPY,
 * against a real server started for this test (test_sql_servers.h): every
 * mapped type compared value by value, NULLs, an unmappable column refused
 * by name, and the URL's password never shown in an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "api/api_int.h"
#include "core/core.h"
#include "sql/sql.h"
#include "test_sql_servers.h"

static pt_test_pg g_pg;

static void exec_ok(const char *sql) {
  PGconn *c = PQconnectdb(g_pg.url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

static int setup(void **state) {
  (void)state;
  if (pt_test_pg_start(&g_pg, "sql_pg") != 0) return -1;
  exec_ok("CREATE TABLE t (id int8, b bool, i2 int2, i4 int4, f4 float4, f8 float8, "
          "t text, v varchar(10), j json, jb jsonb, by bytea, d date, ts timestamp, "
          "tz timestamptz, u uuid)");
  exec_ok("INSERT INTO t VALUES (1, true, -3, 70000, 1.5, -2.25, 'héllo', 'vc', '{\"a\": 1}', "
          "'{\"b\": 2}', '\\x00ff', '1970-01-02', '2000-01-01 00:00:01.5', "
          "'1970-01-01 01:00:00+01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')");
  exec_ok("INSERT INTO t (id) VALUES (2)");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  pt_test_pg_stop(&g_pg);
  return 0;
}

static const void *buf(const struct ArrowArray *a, int c, int i) {
  return a->children[c]->buffers[i];
}

static void test_read_every_type(void **state) {
  (void)state;
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err;
  assert_int_equal(pt__pg_read_query(g_pg.url, "SELECT * FROM t ORDER BY id", &s, &a, &err),
                   PT_OK);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  assert_int_equal(a.length, 2);
  assert_int_equal(s.n_children, 15);
  const char *formats[] = {"l", "b", "s", "i", "f", "g", "u", "u", "u", "u", "z", "tdD",
                           "tsu:", "tsu:UTC", "w:16"};
  for (int c = 0; c < 15; c++) {
    assert_string_equal(s.children[c]->format, formats[c]);
    assert_true(pt_array_is_valid(s.children[c], a.children[c], 0));
    if (c > 0) assert_false(pt_array_is_valid(s.children[c], a.children[c], 1));
  }
  assert_string_equal(s.children[14]->name, "u");
  assert_int_equal(((const int64_t *)buf(&a, 0, 1))[1], 2);
  assert_int_equal(((const uint8_t *)buf(&a, 1, 1))[0] & 1, 1);
  assert_int_equal(((const int16_t *)buf(&a, 2, 1))[0], -3);
  assert_int_equal(((const int32_t *)buf(&a, 3, 1))[0], 70000);
  assert_true(((const float *)buf(&a, 4, 1))[0] == 1.5f);
  assert_true(((const double *)buf(&a, 5, 1))[0] == -2.25);
  const int32_t *off = buf(&a, 6, 1);
  assert_int_equal(off[1], 6);
  assert_memory_equal(buf(&a, 6, 2), "h\xc3\xa9llo", 6);
  off = buf(&a, 8, 1);
  assert_int_equal(off[1], 8);
  assert_memory_equal(buf(&a, 8, 2), "{\"a\": 1}", 8);
  off = buf(&a, 9, 1);
  assert_int_equal(off[1], 8);
  assert_memory_equal(buf(&a, 9, 2), "{\"b\": 2}", 8);
  off = buf(&a, 10, 1);
  assert_int_equal(off[1], 2);
  assert_memory_equal(buf(&a, 10, 2), "\x00\xff", 2);
  assert_int_equal(((const int32_t *)buf(&a, 11, 1))[0], 1);
  assert_int_equal(((const int64_t *)buf(&a, 12, 1))[0], 946684801500000LL);
  assert_int_equal(((const int64_t *)buf(&a, 13, 1))[0], 0);
  assert_memory_equal(buf(&a, 14, 1),
                      "\xa0\xee\xbc\x99\x9c\x0b\x4e\xf8\xbb\x6d\x6b\xb9\xbd\x38\x0a\x11", 16);
  a.release(&a);
  s.release(&s);
}

static void test_many_rows(void **state) {
  (void)state;
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err;
  assert_int_equal(pt__pg_read_query(g_pg.url,
                                     "SELECT g AS n, g::text AS s FROM generate_series(1, 100000) g",
                                     &s, &a, &err),
                   PT_OK);
  assert_int_equal(a.length, 100000);
  const int32_t *v = buf(&a, 0, 1);
  int64_t sum = 0;
  for (int64_t i = 0; i < a.length; i++) sum += v[i];
  assert_int_equal(sum, 100000LL * 100001 / 2);
  a.release(&a);
  s.release(&s);
}

static void test_numeric(void **state) {
  (void)state;
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err;
  assert_int_equal(pt__pg_read_query(g_pg.url,
                                     "SELECT x::numeric(38, 6) AS n FROM (VALUES "
                                     "(-12345678901234567890.123456), (0.000001), (NULL)) v(x)",
                                     &s, &a, &err),
                   PT_OK);
  assert_string_equal(s.children[0]->format, "d:38,6");
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  const int64_t *v = a.children[0]->buffers[1];
  /* -12345678901234567890123456 in two's complement: low and high words. */
  __int128 first = (__int128)(((unsigned __int128)(uint64_t)v[1] << 64) | (uint64_t)v[0]);
  __int128 want = -((__int128)12345678901234567LL * 1000000000 + 890123456);
  assert_true(first == want);
  assert_int_equal(v[2], 1);
  assert_false(pt_array_is_valid(s.children[0], a.children[0], 2));
  a.release(&a);
  s.release(&s);
  /* The digits go straight to decimal128 (no text): every shape of value
   * against the server's own text. */
  assert_int_equal(pt__pg_read_query(g_pg.url,
                                     "SELECT x::numeric(28, 10) AS n, x::numeric(28, 10)::text "
                                     "AS t FROM (VALUES (0), (1), (-1), (10000), (1e17), "
                                     "(-99999999.9999999999), (0.0000000001), (123.45), "
                                     "(-0.5), (100000000.00000001), (9999.9999)) v(x)",
                                     &s, &a, &err),
                   PT_OK);
  pt_buf json = {0};
  assert_int_equal(pt_json_write_batch(&s, &a, &json, &err), PT_OK);
  assert_int_equal(pt__buf_putc(&json, 0), PT_OK);
  int64_t rows = 0;
  for (char *line = strtok(json.data, "\n"); line; line = strtok(NULL, "\n"), rows++) {
    char n[64], t[64];
    assert_int_equal(sscanf(line, "{\"n\": \"%63[^\"]\", \"t\": \"%63[^\"]\"}", n, t), 2);
    assert_string_equal(n, t);
  }
  assert_int_equal(rows, 11);
  pt_buf_free(&json);
  a.release(&a);
  s.release(&s);
  assert_int_equal(pt__pg_read_query(g_pg.url, "SELECT 1.5::numeric AS free", &s, &a, &err),
                   PT_ENOTSUP);
  assert_non_null(strstr(err.message, "column \"free\" is numeric without a precision"));
}

static void test_unmappable_refused(void **state) {
  (void)state;
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err;
  assert_int_equal(pt__pg_read_query(g_pg.url, "SELECT 1 AS ok, point(1, 2) AS where_", &s, &a,
                                     &err),
                   PT_ENOTSUP);
  assert_string_equal(err.message,
                      "sql: column \"where_\" has type point (oid 600), which protium cannot "
                      "map to Arrow; cast it in the query (e.g. ::text) or leave it out");
}

static void test_password_masked(void **state) {
  (void)state;
  char url[512];
  snprintf(url, sizeof url, "postgresql://postgres:s3cretPW@127.0.0.1:%d/%s", g_pg.port,
           g_pg.db);
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err;
  /* The server quotes the unknown column, which is the password. */
  assert_int_equal(pt__pg_read_query(url, "SELECT \"s3cretPW\"", &s, &a, &err), PT_EINVAL);
  assert_null(strstr(err.message, "s3cretPW"));
  assert_non_null(strstr(err.message, "column \"***\" does not exist"));
  snprintf(url, sizeof url, "postgresql://postgres:s3cretPW@127.0.0.1:%d/nodb", g_pg.port);
  assert_int_equal(pt__pg_read_query(url, "SELECT 1", &s, &a, &err), PT_EIO);
  assert_null(strstr(err.message, "s3cretPW"));
  assert_non_null(strstr(err.message, "sql: cannot connect to PostgreSQL: "));
  char pw[16];
  assert_int_equal(pt__sql_url_password("postgresql://u:abc@h/db", pw, sizeof pw), PT_OK);
  assert_string_equal(pw, "abc");
  assert_int_equal(pt__sql_url_password("postgresql://u@h/db", pw, sizeof pw), PT_OK);
  assert_string_equal(pw, "");
  assert_int_equal(pt__sql_url_password("host=h password='a\\'b' user=u", pw, sizeof pw),
                   PT_OK);
  assert_string_equal(pw, "a'b");
}

/* A password from elsewhere (sql.password) put into the URL, encoded, and
 * masked in both spellings. */
static void test_url_with_password(void **state) {
  (void)state;
  static const struct {
    const char *url, *pw, *want;
  } cases[] = {
      {"postgresql://u@h:5/db", "p@ss:w/rd", "postgresql://u:p%40ss%3Aw%2Frd@h:5/db"},
      {"postgresql://h/db", "pw", "postgresql://:pw@h/db"},
      {"postgresql://u:own@h/db", "pw", "postgresql://u:own@h/db"},
      {"mysql://root@127.0.0.1:3306/pt", "x y", "mysql://root:x%20y@127.0.0.1:3306/pt"},
      {"adbc:postgresql://u@h/db", "pw", "adbc:postgresql://u:pw@h/db"},
      {"adbc:sqlite:///tmp/a.db", "pw", "adbc:sqlite:///tmp/a.db"},
      {"host=h user=u", "it's", "host=h user=u password='it\\'s'"},
      {"postgresql://u@h/db", "", "postgresql://u@h/db"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = NULL;
    pt_error err = {0};
    assert_int_equal(pt__sql_url_with_password(cases[i].url, cases[i].pw, &got, &err), PT_OK);
    assert_string_equal(got, cases[i].want);
    pt__free(got);
  }
  char text[128] = "FATAL: p%40ss for p@ss";
  pt__sql_mask_password(text, "postgresql://u:p%40ss@h/db");
  assert_string_equal(text, "FATAL: *** for ***");
  /* The environment's password for the URL's database, also beside the
   * URL's own; another database's variable is left alone. */
  assert_int_equal(setenv("PGPASSWORD", "Env-Pg", 1), 0);
  assert_int_equal(setenv("MYSQL_PWD", "Env-My", 1), 0);
  snprintf(text, sizeof text, "host=h password=Env-Pg Env-My own");
  pt__sql_mask_password(text, "postgresql://u:own@h/db");
  assert_string_equal(text, "host=h password=*** Env-My ***");
  snprintf(text, sizeof text, "Env-Pg Env-My");
  pt__sql_mask_password(text, "mysql://u@h/db");
  assert_string_equal(text, "Env-Pg ***");
  snprintf(text, sizeof text, "Env-Pg Env-My");
  pt__sql_mask_password(text, "adbc:postgresql://u@h/db");
  assert_string_equal(text, "*** Env-My");
  pt__sql_mask_password(text, "adbc:sqlite:///tmp/a.db");
  assert_string_equal(text, "*** Env-My");
  /* One password inside the other: the longer one masked whole. */
  snprintf(text, sizeof text, "Env-Pg-and-more; Env-Pg");
  pt__sql_mask_password(text, "postgresql://u:Env-Pg-and-more@h/db");
  assert_string_equal(text, "***; ***");
  assert_int_equal(setenv("PGPASSWORD", "Env-Pg-and-more", 1), 0);
  snprintf(text, sizeof text, "Env-Pg-and-more; Env-Pg");
  pt__sql_mask_password(text, "postgresql://u:Env-Pg@h/db");
  assert_string_equal(text, "***; ***");
  /* A password shorter than the stars, or made of them, never grows the
   * text nor loops. */
  assert_int_equal(setenv("PGPASSWORD", "*", 1), 0);
  snprintf(text, sizeof text, "a*b**");
  pt__sql_mask_password(text, "host=h");
  assert_string_equal(text, "a*b**");
  unsetenv("PGPASSWORD");
  unsetenv("MYSQL_PWD");
  snprintf(text, sizeof text, "x ab y");
  pt__sql_mask_password(text, "postgresql://u:ab@h/db");
  assert_string_equal(text, "x ** y");
}

/* The host (and port) a URL names, which picks its sql.password.<host> key,
 * and the key that wins among those a session sets. */
static void test_url_host_and_its_password(void **state) {
  (void)state;
  static const struct {
    const char *url, *host, *port;
  } cases[] = {
      {"postgresql://u:p@h.example:5432/db", "h.example", "5432"},
      {"postgres://h/db?sslmode=disable", "h", ""},
      {"mysql://root@127.0.0.1:3306/pt", "127.0.0.1", "3306"},
      {"postgresql://u@[::1]:6000/db", "::1", "6000"},
      {"postgresql://u:a%40b@db1", "db1", ""},
      {"adbc:postgresql://u@pg.internal:5433/db", "pg.internal", "5433"},
      {"adbc:sqlite:///tmp/a.db", "", ""},
      {"host=kv.example port=7 user=u", "kv.example", "7"},
      {"user=u host='q h'", "q h", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char host[64], port[16];
    pt__sql_url_host(cases[i].url, host, sizeof host, port, sizeof port);
    assert_string_equal(host, cases[i].host);
    assert_string_equal(port, cases[i].port);
  }
  pt_conf *c = NULL;
  pt_error err = {0};
  assert_int_equal(pt_conf_new(&c, &err), PT_OK);
  assert_string_equal(pt__conf_sql_password(c, "h", "1"), "");
  assert_int_equal(pt_conf_set(c, "sql.password", "any", &err), PT_OK);
  assert_int_equal(pt_conf_set(c, "sql.password.h", "host", &err), PT_OK);
  assert_int_equal(pt_conf_set(c, "sql.password.h:2", "port2", &err), PT_OK);
  assert_string_equal(pt__conf_sql_password(c, "h", "2"), "port2");
  assert_string_equal(pt__conf_sql_password(c, "h", "1"), "host");
  assert_string_equal(pt__conf_sql_password(c, "h", ""), "host");
  assert_string_equal(pt__conf_sql_password(c, "other", "2"), "any");
  assert_string_equal(pt__conf_sql_password(c, "", ""), "any");
  assert_string_equal(pt_conf_get(c, "sql.password.h:2"), "port2");
  assert_int_equal(pt_conf_set(c, "sql.password.h", "again", &err), PT_OK);
  assert_string_equal(pt__conf_sql_password(c, "h", "1"), "again");
  pt_error e = {0};
  assert_int_equal(pt_conf_set(c, "sql.password.", "x", &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "sql.password.<host>"));
  pt_conf_free(c);
}

/* Arrays (one dimension, NULL elements, empty), enums and arrays of them,
 * time, interval, uuid and json/jsonb, compared as protium prints them. */
static void test_arrays_enums_time_interval(void **state) {
  (void)state;
  exec_ok("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
  exec_ok("CREATE TABLE x (id int4, ia int4[], ta text[], na numeric(8,2)[], tm time, "
          "iv interval, m mood, ma mood[], u uuid, j json, jb jsonb, da date[])");
  exec_ok("INSERT INTO x VALUES (1, '{1,NULL,3}', '{\"a b\",NULL,\"\"}', '{1.5,-2.25}', "
          "'13:45:30.25', '1 year 2 mons -3 days 00:00:00.001', 'happy', '{ok,sad}', "
          "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": [1, 2]}', '{\"k\": true}', "
          "'{2024-02-29}')");
  exec_ok("INSERT INTO x VALUES (2, '{}', NULL, '{}', '00:00:00', '0', NULL, '{}', NULL, NULL, "
          "NULL, '{NULL}')");
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err;
  if (pt__pg_read_query(g_pg.url, "SELECT * FROM x ORDER BY id", &s, &a, &err) != PT_OK)
    fail_msg("%s", err.message);
  assert_int_equal(pt_array_validate(&s, &a, &err), PT_OK);
  char tn[512];
  pt_type_name(&s, tn, sizeof tn);
  assert_string_equal(tn, "struct<id: int32, ia: list<int32>, ta: list<utf8>, "
                          "na: list<decimal128(8, 2)>, tm: time64[us], iv: month_day_nano_interval, "
                          "m: utf8, ma: list<utf8>, u: fixed_size_binary[16], j: utf8, jb: utf8, "
                          "da: list<date32>>");
  pt_buf json = {0};
  assert_int_equal(pt_json_write_batch(&s, &a, &json, &err), PT_OK);
  const char *want =
      "{\"id\": 1, \"ia\": [1, null, 3], \"ta\": [\"a b\", null, \"\"], \"na\": [\"1.50\", "
      "\"-2.25\"], \"tm\": \"13:45:30.250000\", \"iv\": {\"months\": 14, \"days\": -3, "
      "\"nanoseconds\": 1000000}, \"m\": \"happy\", \"ma\": [\"ok\", \"sad\"], \"u\": "
      "\"oO68mZwLTvi7bWu5vTgKEQ==\", \"j\": \"{\\\"k\\\": [1, 2]}\", \"jb\": "
      "\"{\\\"k\\\": true}\", \"da\": [\"2024-02-29\"]}\n"
      "{\"id\": 2, \"ia\": [], \"ta\": null, \"na\": [], \"tm\": \"00:00:00.000000\", \"iv\": "
      "{\"months\": 0, \"days\": 0, \"nanoseconds\": 0}, \"m\": null, \"ma\": [], \"u\": null, "
      "\"j\": null, \"jb\": null, \"da\": [null]}\n";
  if (json.len != strlen(want) || memcmp(json.data, want, json.len) != 0)
    fail_msg("got:\n%.*s", (int)json.len, json.data);
  pt_buf_free(&json);
  a.release(&a);
  s.release(&s);
  /* Two dimensions: refused, naming where. */
  assert_int_equal(pt__pg_read_query(g_pg.url, "SELECT '{{1,2},{3,4}}'::int4[] AS m2", &s, &a,
                                     &err), PT_ENOTSUP);
  assert_non_null(strstr(err.message, "row 0 column 0: a 2-dimensional array"));
}

int main(void) {
  if (!pt_test_pg_available()) {
    return pt_test_sql_missing("PostgreSQL 15 (" PT_TEST_PG_BIN ") is");
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_every_type),
      cmocka_unit_test(test_many_rows),
      cmocka_unit_test(test_numeric),
      cmocka_unit_test(test_unmappable_refused),
      cmocka_unit_test(test_url_with_password),
      cmocka_unit_test(test_url_host_and_its_password),
      cmocka_unit_test(test_password_masked),
      cmocka_unit_test(test_arrays_enums_time_interval),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
