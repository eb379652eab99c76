/* test_sql_partition.c — Spark JDBC partitioning predicates of src/sql:
 * exact predicate text, fewer partitions than asked when the range is
 * narrow, extreme bounds without overflow, and (against a real PostgreSQL
 * server) every row, NULLs included, in exactly one partition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sql/sql.h"
#include "test_sql_servers.h"

static void test_predicates_text(void **state) {
  (void)state;
  char **p;
  int64_t n;
  pt_error err;
  assert_int_equal(pt__sql_partition_predicates("id", 0, 100, 4, &p, &n, &err), PT_OK);
  assert_int_equal(n, 4);
  assert_string_equal(p[0], "id < 25 OR id IS NULL");
  assert_string_equal(p[1], "id >= 25 AND id < 50");
  assert_string_equal(p[2], "id >= 50 AND id < 75");
  assert_string_equal(p[3], "id >= 75");
  pt__sql_predicates_free(p, n);
  assert_int_equal(pt__sql_partition_predicates("id", 0, 3, 10, &p, &n, &err), PT_OK);
  assert_int_equal(n, 3);
  pt__sql_predicates_free(p, n);
  assert_int_equal(pt__sql_partition_predicates("id", 5, 5, 4, &p, &n, &err), PT_OK);
  assert_int_equal(n, 1);
  assert_string_equal(p[0], "1=1");
  pt__sql_predicates_free(p, n);
  assert_int_equal(pt__sql_partition_predicates("id", INT64_MIN, INT64_MAX, 3, &p, &n, &err),
                   PT_OK);
  assert_int_equal(n, 3);
  pt__sql_predicates_free(p, n);
  assert_int_equal(pt__sql_partition_predicates("id", 10, 0, 2, &p, &n, &err), PT_EINVAL);
  assert_string_equal(err.message, "sql: lower_bound 10 is above upper_bound 0; swap them");
  assert_int_equal(pt__sql_partition_predicates("id", 0, 10, 0, &p, &n, &err), PT_EINVAL);
  assert_string_equal(err.message, "sql: num_partitions is 0; it must be at least 1");
}

/* Rows below, inside and above the bounds, and NULLs: the partitions'
 * counts add up to the table's and their id sums to its sum. */
static void test_every_row_once(void **state) {
  (void)state;
  if (!pt_test_pg_available()) {
    if (pt_test_sql_required())
      fail_msg("PostgreSQL 15 (" PT_TEST_PG_BIN ") is missing and PT_REQUIRE_SQL=1 "
               "(scripts/setup.sh installs it)");
    skip();
  }
  pt_test_pg pg;
  assert_int_equal(pt_test_pg_start(&pg, "sql_partition"), 0);
  char sql[256];
  struct ArrowSchema s;
  struct ArrowArray a;
  pt_error err;
  char **p;
  int64_t n, total = 0, sum = 0;
  assert_int_equal(pt__sql_partition_predicates("v", 0, 1000, 7, &p, &n, &err), PT_OK);
  for (int64_t i = 0; i < n; i++) {
    snprintf(sql, sizeof sql,
             "SELECT v FROM (SELECT CASE WHEN g %% 10 = 0 THEN NULL ELSE g END AS v "
             "FROM generate_series(-500, 2500) g) x WHERE %s",
             p[i]);
    assert_int_equal(pt__pg_read_query(pg.url, sql, &s, &a, &err), PT_OK);
    total += a.length;
    const int32_t *v = a.children[0]->buffers[1];
    for (int64_t r = 0; r < a.length; r++)
      if (pt_array_is_valid(s.children[0], a.children[0], r)) sum += v[r];
    a.release(&a);
    s.release(&s);
  }
  pt__sql_predicates_free(p, n);
  pt_test_pg_stop(&pg);
  int64_t want_sum = 0;
  for (int64_t g = -500; g <= 2500; g++)
    if (g % 10 != 0) want_sum += g;
  assert_int_equal(total, 3001);
  assert_int_equal(sum, want_sum);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_predicates_text),
      cmocka_unit_test(test_every_row_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
