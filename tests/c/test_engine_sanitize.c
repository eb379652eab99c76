/* test_engine_sanitize.c — in a sanitizer build, a memory error or a leak in
 * an executor process fails the program that caused it: the executor's
 * reports go to the session, and closing the session prints them and
 * stops. Each case runs a session in a forked child and expects that end,
 * with the report naming the user function. Other builds skip these.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "protium.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

static void *volatile escape;

/* Loses 64 blocks of 1 KiB in the executor. */
static int leaky_map(const pt_task_context *ctx, const struct ArrowSchema *schema,
                     const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                     size_t arg_size, pt_error *err) {
  for (int i = 0; i < 64; i++) {
    escape = malloc(1024);
    memset(escape, i, 1024);
  }
  escape = NULL;
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(leaky_map)

/* Writes one byte past a heap block on the first attempt of partition 0
 * (ASan stops that executor; the retry succeeds). */
static int overflow_map(const pt_task_context *ctx, const struct ArrowSchema *schema,
                        const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                        size_t arg_size, pt_error *err) {
  if (ctx->partition == 0 && ctx->attempt == 0) {
    char *p = malloc(16);
    volatile int i = 16;
    p[i] = 1;
    escape = p;
  }
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(overflow_map)

/* In a child: a session on local[1] runs fn over a range, counts, and
 * closes. Returns the child's wait status; its stderr goes to log. */
__attribute__((unused)) static int run_child(pt_map_fn fn, const char *log) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 2) < 0) _exit(90);
    pt_session *s;
    pt_dataset *r, *m;
    int64_t n = 0;
    if (pt_session_open("local[1]", NULL, &s, NULL) != PT_OK) _exit(91);
    if (pt_range(s, 0, 1000, 2, &r, NULL) != PT_OK ||
        pt_map_batches(r, fn, NULL, NULL, 0, &m, NULL) != PT_OK)
      _exit(92);
    int rc = pt_count(m, &n, NULL);
    fprintf(stderr, "count: rc %d, %lld rows\n", rc, (long long)n);
    pt_dataset_free(m);
    pt_dataset_free(r);
    pt_session_close(s); /* stops here when an executor had a finding */
    _exit(rc == PT_OK && n == 1000 ? 0 : 93);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

__attribute__((unused)) static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void expect_finding(pt_map_fn fn, const char *kind) {
#ifndef SANITIZED
  (void)fn;
  (void)kind;
  skip();
#else
  char log[] = "/tmp/pt-sanitize-XXXXXX";
  int fd = mkstemp(log);
  assert_true(fd >= 0);
  close(fd);
  int status = run_child(fn, log);
  char *text = slurp(log);
  unlink(log);
  if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
    fail_msg("child ended with status %#x, expected SIGABRT; its stderr:\n%s", status, text);
  assert_non_null(strstr(text, "count: rc 0, 1000 rows")); /* the job itself succeeded */
  assert_non_null(strstr(text, "sanitizer report of an executor"));
  if (!strstr(text, kind)) fail_msg("no '%s' in:\n%s", kind, text);
#endif
}

static void test_executor_leak_fails_the_program(void **state) {
  expect_finding(leaky_map, "detected memory leaks");
}

static void test_executor_overflow_fails_the_program(void **state) {
  expect_finding(overflow_map, "heap-buffer-overflow");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_executor_leak_fails_the_program),
      cmocka_unit_test(test_executor_overflow_fails_the_program),
  };
  return cmocka_run_group_tests_name("engine_sanitize", tests, NULL, NULL);
}
