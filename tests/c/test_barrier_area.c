/* test_barrier_area.c — the shared barrier area of src/exec on its own,
 * between real processes: steps across forked tasks, a stop that wakes a
 * waiter at once, a waiter whose peer was SIGKILLed inside a step, the
 * faults only the area can see (mismatched calls, a task that returned,
 * barrier.timeout) with their exact messages, and files that are not the
 * attempt's own (garbage, truncated, a previous attempt's) refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec/barrier_area.h"
#include "net/control.pb-c.h"

#define BARRIER PROTIUM__BARRIER_KIND__BARRIER_KIND_BARRIER
#define GATHER PROTIUM__BARRIER_KIND__BARRIER_KIND_ALL_GATHER

static char dir[128];

static void area_path(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", dir, name);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make(const char *path, int64_t attempt, int64_t n, int64_t timeout_ms) {
  pt_error err = {0};
  unlink(path);
  if (pt__area_create(path, 7, attempt, n, timeout_ms, &err) != PT_OK) fail_msg("%s", err.message);
}

static void open_area(const char *path, int64_t attempt, int64_t n, pt__area *a) {
  pt_error err = {0};
  if (pt__area_open(path, 7, attempt, n, a, &err) != PT_OK) fail_msg("%s", err.message);
}

/* A forked task: opens the area, makes `steps` barrier() steps, exits with
 * 0 when all completed, 10 + outcome otherwise. */
static pid_t task(const char *path, int64_t n, int64_t p, int64_t steps) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  pt__area a;
  pt_error err = {0};
  if (pt__area_open(path, 7, 0, n, &a, &err) != PT_OK) _exit(3);
  char why[512];
  int code;
  for (int64_t s = 0; s < steps; s++) {
    int r = pt__area_step(&a, p, s, BARRIER, &code, why, sizeof why);
    if (r != PT__AREA_DONE) _exit(10 + r);
  }
  pt__area_ended(&a, p);
  _exit(0);
}

static int exit_code(pid_t pid) {
  int st;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* 1,000 steps of 4 processes: every step completes for every task, in
 * order (a task that got ahead would fail its own step's count). */
static void test_steps_across_processes(void **state) {
  (void)state;
  char path[256];
  area_path(path, sizeof path, "steps");
  make(path, 0, 4, 60000);
  pid_t pids[4];
  for (int p = 0; p < 4; p++) pids[p] = task(path, 4, p, 1000);
  for (int p = 0; p < 4; p++) assert_int_equal(exit_code(pids[p]), 0);
  pt__area a;
  open_area(path, 0, 4, &a);
  assert_int_equal(atomic_load(&a.head->steps), 1000);
  assert_int_equal(atomic_load(&a.head->arrived), 0);
  for (int p = 0; p < 4; p++) assert_int_equal(atomic_load(&a.slots[p].calls), 1000);
  pt__area_close(&a);
  unlink(path);
}

/* A stop wakes a task that sleeps in a step at once, and every later step
 * of any task returns STOPPED without waiting. */
static void test_stop_wakes_waiter(void **state) {
  (void)state;
  char path[256];
  area_path(path, sizeof path, "stop");
  make(path, 0, 3, 60000);
  pid_t waiter = task(path, 3, 0, 1);
  pt__area a;
  open_area(path, 0, 3, &a);
  while (atomic_load(&a.head->arrived) < 1) usleep(1000);
  usleep(50000); /* asleep in its futex wait */
  int64_t t0 = now_ms();
  pt__area_stop(&a);
  assert_int_equal(exit_code(waiter), 10 + PT__AREA_STOPPED);
  assert_true(now_ms() - t0 < 1000); /* at once, not at a recheck */
  int code;
  char why[256];
  assert_int_equal(pt__area_step(&a, 1, 0, BARRIER, &code, why, sizeof why), PT__AREA_STOPPED);
  pt__area_close(&a);
  unlink(path);
}

/* A peer SIGKILLed while it waits in a step leaves nothing held: the
 * other waiter sleeps on until the stop (the driver's, on the executor's
 * loss) wakes it. */
static void test_peer_killed_inside_step(void **state) {
  (void)state;
  char path[256];
  area_path(path, sizeof path, "killed");
  make(path, 0, 3, 60000);
  pid_t victim = task(path, 3, 0, 1);
  pid_t other = task(path, 3, 1, 1);
  pt__area a;
  open_area(path, 0, 3, &a);
  while (atomic_load(&a.head->arrived) < 2) usleep(1000);
  assert_int_equal(kill(victim, SIGKILL), 0);
  assert_int_equal(exit_code(victim), 100 + SIGKILL);
  usleep(50000);
  assert_int_equal(waitpid(other, NULL, WNOHANG), 0); /* still waiting */
  pt__area_stop(&a);
  assert_int_equal(exit_code(other), 10 + PT__AREA_STOPPED);
  pt__area_close(&a);
  unlink(path);
}

/* barrier() here, all_gather() there: the later caller's fault names both
 * as the driver does, and the step does not complete. */
static void test_mismatch_fault(void **state) {
  (void)state;
  char path[256];
  area_path(path, sizeof path, "mismatch");
  make(path, 0, 2, 60000);
  pt__area a;
  open_area(path, 0, 2, &a);
  /* Partition 1 arrives first (its call waits in a child). */
  pid_t first = fork();
  if (first == 0) {
    pt__area b;
    pt_error err = {0};
    char why[256];
    int code;
    if (pt__area_open(path, 7, 0, 2, &b, &err) != PT_OK) _exit(3);
    _exit(10 + pt__area_step(&b, 1, 0, BARRIER, &code, why, sizeof why));
  }
  while (atomic_load(&a.head->arrived) < 1) usleep(1000);
  int code = 0;
  char why[512];
  assert_int_equal(pt__area_step(&a, 0, 0, GATHER, &code, why, sizeof why), PT__AREA_FAULT);
  assert_int_equal(code, PT_EINVAL);
  assert_string_equal(why, "step 0: partition 0 called all_gather() but partition 1 called "
                           "barrier(); every task must make the same calls in the same order");
  assert_int_equal(atomic_load(&a.head->steps), 0);
  pt__area_stop(&a);
  assert_int_equal(exit_code(first), 10 + PT__AREA_STOPPED);
  pt__area_close(&a);
  unlink(path);
}

/* A task that returned without a call: its peers' step faults at once,
 * both a peer already waiting and one arriving later. */
static void test_returned_peer_fault(void **state) {
  (void)state;
  char path[256];
  area_path(path, sizeof path, "returned");
  make(path, 0, 3, 60000);
  pid_t waiter = fork();
  if (waiter == 0) {
    pt__area b;
    pt_error err = {0};
    char why[512];
    int code = 0;
    if (pt__area_open(path, 7, 0, 3, &b, &err) != PT_OK) _exit(3);
    int r = pt__area_step(&b, 0, 0, BARRIER, &code, why, sizeof why);
    _exit(r == PT__AREA_FAULT && code == PT_ESTATE &&
                   strcmp(why, "partition 2 returned without calling barrier() step 0, in "
                               "which others wait; every task must make the same calls") == 0
               ? 0
               : 4);
  }
  pt__area a;
  open_area(path, 0, 3, &a);
  while (atomic_load(&a.head->arrived) < 1) usleep(1000);
  usleep(20000);
  pt__area_ended(&a, 2); /* partition 2 returned having made no call */
  assert_int_equal(exit_code(waiter), 0);
  int code = 0;
  char why[512];
  assert_int_equal(pt__area_step(&a, 1, 0, BARRIER, &code, why, sizeof why), PT__AREA_FAULT);
  assert_int_equal(code, PT_ESTATE);
  assert_non_null(strstr(why, "partition 2 returned without calling barrier() step 0"));
  pt__area_close(&a);
  unlink(path);
}

/* barrier.timeout counts from the step's first call and names the
 * partitions that never arrived. */
static void test_timeout_fault(void **state) {
  (void)state;
  char path[256];
  area_path(path, sizeof path, "timeout");
  make(path, 0, 3, 200);
  pt__area a;
  open_area(path, 0, 3, &a);
  int code = 0;
  char why[512];
  int64_t t0 = now_ms();
  assert_int_equal(pt__area_step(&a, 1, 0, BARRIER, &code, why, sizeof why), PT__AREA_FAULT);
  int64_t waited = now_ms() - t0;
  assert_true(waited >= 200);
  assert_true(waited < 5000);
  assert_int_equal(code, PT_ETIMEDOUT);
  assert_string_equal(why, "barrier() step 0 timed out after 200ms (barrier.timeout): "
                           "partitions 0, 2 never arrived");
  pt__area_close(&a);
  unlink(path);
}

/* Files that are not this attempt's area are refused, whatever is in
 * them: a previous attempt's (even one left mid-step), garbage, a
 * truncated file, one for another number of tasks, none at all. An area
 * is never created over an existing file. */
static void test_refuses_other_files(void **state) {
  (void)state;
  char path[256];
  pt_error err = {0};
  pt__area a;
  area_path(path, sizeof path, "stale");
  make(path, 0, 2, 60000);
  open_area(path, 0, 2, &a);
  int code;
  char why[256];
  /* Attempt 0 stopped with partition 0 inside step 0. */
  pid_t w = task(path, 2, 0, 1);
  while (atomic_load(&a.head->arrived) < 1) usleep(1000);
  pt__area_stop(&a);
  assert_int_equal(exit_code(w), 10 + PT__AREA_STOPPED);
  pt__area_close(&a);
  assert_int_equal(pt__area_open(path, 7, 1, 2, &a, &err), PT_EFORMAT);
  assert_non_null(strstr(err.message, "not the area of stage 7 attempt 1"));
  assert_null(a.head);
  assert_int_equal(pt__area_create(path, 7, 0, 2, 1000, &err), PT_EIO);
  assert_non_null(strstr(err.message, "cannot create"));
  /* Attempt 1's own area starts clean. */
  char next[256];
  area_path(next, sizeof next, "stale-1");
  make(next, 1, 2, 60000);
  open_area(next, 1, 2, &a);
  assert_int_equal(atomic_load(&a.head->stopped), 0);
  pid_t peer = fork();
  if (peer == 0) {
    pt__area b;
    if (pt__area_open(next, 7, 1, 2, &b, &err) != PT_OK) _exit(3);
    _exit(pt__area_step(&b, 0, 0, BARRIER, &code, why, sizeof why) == PT__AREA_DONE ? 0 : 4);
  }
  assert_int_equal(pt__area_step(&a, 1, 0, BARRIER, &code, why, sizeof why), PT__AREA_DONE);
  assert_int_equal(exit_code(peer), 0);
  pt__area_close(&a);
  unlink(next);

  /* Another number of tasks, truncated, garbage, missing. */
  assert_int_equal(pt__area_open(path, 7, 0, 3, &a, &err), PT_EFORMAT);
  assert_int_equal(truncate(path, 100), 0);
  assert_int_equal(pt__area_open(path, 7, 0, 2, &a, &err), PT_EFORMAT);
  unlink(path);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  srand(9);
  for (size_t i = 0; i < pt__area_size(2); i++) fputc(rand() & 0xff, f);
  fclose(f);
  assert_int_equal(pt__area_open(path, 7, 0, 2, &a, &err), PT_EFORMAT);
  unlink(path);
  assert_int_equal(pt__area_open(path, 7, 0, 2, &a, &err), PT_EIO);
  assert_non_null(strstr(err.message, "cannot open"));
  assert_int_equal(pt__area_create(path, 7, 0, 0, 1000, &err), PT_EINVAL);
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/pt-barrier-area-test-%d", (int)getpid());
  return mkdir(dir, 0755);
}

static int teardown(void **state) {
  (void)state;
  return rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_steps_across_processes),
      cmocka_unit_test(test_stop_wakes_waiter),
      cmocka_unit_test(test_peer_killed_inside_step),
      cmocka_unit_test(test_mismatch_fault),
      cmocka_unit_test(test_returned_peer_fault),
      cmocka_unit_test(test_timeout_fault),
      cmocka_unit_test(test_refuses_other_files),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
