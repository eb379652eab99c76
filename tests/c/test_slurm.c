/* test_slurm.c — what the Slurm backend reads from an allocation's
 * environment: compressed node lists and per-node counts (exact results,
 * and garbage refused with an error, never a crash), and the error a
 * program gets when it asks for master "slurm" outside an allocation. The
 * backend itself runs against a real cluster in tests/python/test_slurm.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "protium.h"
#include "sched/sched.h"

static void check_list(const char *list, const char *want) {
  char **names = NULL;
  int32_t n = 0;
  pt_error err = {0};
  if (pt__slurm_hostlist(list, &names, &n, &err) != PT_OK) fail_msg("%s: %s", list, err.message);
  char got[1024] = "";
  for (int32_t i = 0; i < n; i++) {
    if (i) strcat(got, " ");
    strcat(got, names[i]);
  }
  pt__res_strings_free(names, n);
  assert_string_equal(got, want);
}

static void test_node_lists(void **state) {
  (void)state;
  check_list("pn1", "pn1");
  check_list("pn[1-2]", "pn1 pn2");
  check_list("gpu[01-03,7],login", "gpu01 gpu02 gpu03 gpu7 login");
  check_list("a[9-11]-ib,b", "a9-ib a10-ib a11-ib b");
  check_list("n[008-010]", "n008 n009 n010");
}

static void test_node_lists_garbage(void **state) {
  (void)state;
  static const char *bad[] = {"", "pn[", "pn[1-", "pn[3-1]", "pn[x]", "pn[1]x[2]", "pn[1,,2]",
                              "pn[-1]", "[", "]", ",", "pn[1-999999999]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char **names = (char **)1;
    int32_t n = 7;
    pt_error err = {0};
    int rc = pt__slurm_hostlist(bad[i], &names, &n, &err);
    if (rc == PT_OK) fail_msg("'%s' accepted", bad[i]);
    assert_null(names);
    assert_int_equal(n, 0);
    assert_true(strstr(err.message, "slurm: ") == err.message);
  }
  /* Random bytes: an error or names, never a crash (ASan watches). */
  srand(7);
  for (int round = 0; round < 2000; round++) {
    char s[24];
    size_t len = (size_t)(rand() % 23);
    static const char alphabet[] = "pn[]-,0123456789x(";
    for (size_t i = 0; i < len; i++) s[i] = alphabet[rand() % (int)(sizeof alphabet - 1)];
    s[len] = 0;
    char **names = NULL;
    int32_t n = 0;
    if (pt__slurm_hostlist(s, &names, &n, NULL) == PT_OK) pt__res_strings_free(names, n);
  }
}

static void test_counts(void **state) {
  (void)state;
  int32_t c[4];
  pt_error err = {0};
  assert_int_equal(pt__slurm_counts("2(x3),1", c, 4, &err), PT_OK);
  assert_int_equal(c[0], 2);
  assert_int_equal(c[2], 2);
  assert_int_equal(c[3], 1);
  assert_int_equal(pt__slurm_counts("2(x3)", c, 4, &err), PT_EFORMAT);
  assert_string_equal(err.message, "slurm: cannot read '2(x3)' as counts for 4 nodes");
  static const char *bad[] = {"", "2(x5)", "2(x0),1,1,1", "a", "1,1,1,1,1", "1(x4", "1;1;1;1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (pt__slurm_counts(bad[i], c, 4, NULL) == PT_OK) fail_msg("'%s' accepted", bad[i]);
}

static void test_outside_an_allocation(void **state) {
  (void)state;
  unsetenv("SLURM_JOB_ID");
  pt_session *s = NULL;
  pt_error err = {0};
  assert_int_equal(pt_session_open("slurm", NULL, &s, &err), PT_ESTATE);
  assert_null(s);
  assert_string_equal(err.message,
                      "master 'slurm' runs inside a Slurm allocation, and SLURM_JOB_ID is not "
                      "set; run the program under one (salloc -N 2 ...), or submit it with "
                      "'protium submit --slurm -N 2 program'");
  /* An allocation whose node list cannot be read: said, nothing started. */
  setenv("SLURM_JOB_ID", "1", 1);
  setenv("SLURM_JOB_NODELIST", "pn[2-1]", 1);
  assert_int_equal(pt_session_open("slurm", NULL, &s, &err), PT_EFORMAT);
  assert_string_equal(err.message, "slurm: cannot read the node list 'pn[2-1]'");
  unsetenv("SLURM_JOB_ID");
  unsetenv("SLURM_JOB_NODELIST");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_lists),
      cmocka_unit_test(test_node_lists_garbage),
      cmocka_unit_test(test_counts),
      cmocka_unit_test(test_outside_an_allocation),
  };
  return cmocka_run_group_tests_name("slurm", tests, NULL, NULL);
}
