/* test_resources.c — accelerator-aware scheduling with real executor
 * processes and fake GPU discovery scripts (Spark's JSON format): tasks
 * record the addresses they got and when they ran, and the checks compare
 * every overlapping pair; fractional sharing, per-stage profiles, barrier
 * stages (a child process sees CUDA_VISIBLE_DEVICES), placement, the error
 * of every request that can never be met, and discovery that fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
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

#include "core/core.h"
#include "protium.h"
#include "sched/resources.h"

#define CHECK(call)                                                                    \
  do {                                                                                 \
    pt_error err = {0};                                                                \
    int chk_rc_ = (call);                                                              \
    if (chk_rc_ != PT_OK) fail_msg("%s: %s (%d)", #call, err.message, chk_rc_);        \
  } while (0)

static char tmp_dir[256];

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* one clock for every process */
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------ */
/* The task: records what it got */

typedef struct rec_arg {
  char log[512];       /* lines appended here */
  char res[32];        /* the resource it reads ("gpu") */
  int64_t sleep_ms;
  int64_t barrier;     /* call pt_ctx_barrier first */
  int64_t spawn;       /* start /bin/sh with pt_ctx_child_env, record what it prints */
  char cmd[256];       /* ... running this (default: print $CUDA_VISIBLE_DEVICES) */
} rec_arg;

/* Runs sh -c cmd with envp; its output (first word) into out. */
static int child_sees(const char *cmd, char **envp, char *out, size_t cap) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
  pid_t pid;
  int e = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (e != 0) {
    close(fds[0]);
    return -1;
  }
  size_t len = 0;
  ssize_t got;
  while (len + 1 < cap && (got = read(fds[0], out + len, cap - 1 - len)) > 0) len += (size_t)got;
  out[len] = 0;
  out[strcspn(out, " \t\n")] = 0;
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  return 0;
}

static int record(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *arg,
                  size_t arg_size, pt_error *err) {
  (void)input;
  (void)arg_size;
  const rec_arg *a = arg;
  if (a->barrier && pt_ctx_barrier(ctx, err) != PT_OK) return err->code;
  int64_t t0 = now_us();
  const char *const *addrs;
  int64_t n;
  if (pt_ctx_resources(ctx, a->res, &addrs, &n, err) != PT_OK) return err->code;
  char joined[256] = "-";
  for (int64_t i = 0, len = 0; i < n; i++)
    len += snprintf(joined + len, sizeof joined - (size_t)len, "%s%s", i ? "," : "", addrs[i]);
  char seen[256] = "-";
  if (a->spawn) {
    char **envp;
    if (pt_ctx_child_env(ctx, &envp, err) != PT_OK) return err->code;
    int rc = child_sees(a->cmd[0] ? a->cmd : "printf '%s' \"${CUDA_VISIBLE_DEVICES-unset}\"",
                        envp, seen, sizeof seen);
    pt_env_free(envp);
    if (rc != 0) {
      snprintf(err->message, sizeof err->message, "cannot start /bin/sh");
      return err->code = PT_EIO;
    }
  }
  struct timespec ts = {a->sleep_ms / 1000, (a->sleep_ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
  int64_t t1 = now_us();
  char line[768];
  int len = snprintf(line, sizeof line, "%lld %lld %lld %lld %s %lld %lld %s\n",
                     (long long)ctx->stage_id, (long long)ctx->partition,
                     (long long)ctx->executor_id, (long long)n, joined, (long long)t0,
                     (long long)t1, seen[0] ? seen : "''");
  int fd = open(a->log, O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (fd < 0 || write(fd, line, (size_t)len) != len) {
    if (fd >= 0) close(fd);
    snprintf(err->message, sizeof err->message, "cannot write '%s'", a->log);
    return err->code = PT_EIO;
  }
  close(fd);
  return PT_OK;
}
PT_REGISTER_FN(record)

typedef struct rec {
  int64_t stage, part, exec, n, t0, t1;
  char addrs[256], seen[256];
} rec;

static int read_log(const char *path, rec *out, int cap) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int n = 0;
  long long v[6];
  char addrs[256], seen[256];
  while (n < cap && fscanf(f, "%lld %lld %lld %lld %255s %lld %lld %255s", &v[0], &v[1], &v[2],
                           &v[3], addrs, &v[4], &v[5], seen) == 8) {
    out[n] = (rec){v[0], v[1], v[2], v[3], v[4], v[5], "", ""};
    snprintf(out[n].addrs, sizeof out[n].addrs, "%s", addrs);
    snprintf(out[n].seen, sizeof out[n].seen, "%s", seen);
    n++;
  }
  fclose(f);
  return n;
}

static int overlap(const rec *a, const rec *b) { return a->t0 < b->t1 && b->t0 < a->t1; }

/* The most tasks running at once, among those for which pick(r) holds
 * (NULL: all). */
static int max_concurrent(const rec *r, int n, const char *addr) {
  int best = 0;
  for (int i = 0; i < n; i++) {
    if (addr && strcmp(r[i].addrs, addr) != 0) continue;
    int c = 0; /* tasks running at r[i]'s start */
    for (int k = 0; k < n; k++)
      if ((!addr || strcmp(r[k].addrs, addr) == 0) && r[k].t0 <= r[i].t0 && r[i].t0 < r[k].t1)
        c++;
    if (c > best) best = c;
  }
  return best;
}

/* ------------------------------------------------------------------------ */
/* Sessions and scripts */

static char *script(const char *name, const char *body) {
  static char path[8][512];
  static int next;
  char *p = path[next++ % 8];
  snprintf(p, 512, "%s/%s", tmp_dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fprintf(f, "#!/bin/sh\n%s\n", body);
  fclose(f);
  chmod(p, 0755);
  return p;
}

static int open_s(int executors, int slots, const char *const *kv, pt_session **s,
                  pt_error *err) {
  pt_conf *conf;
  char master[32], sl[16];
  snprintf(master, sizeof master, "local[%d]", executors);
  snprintf(sl, sizeof sl, "%d", slots);
  CHECK(pt_conf_new(&conf, &err));
  CHECK(pt_conf_set(conf, "executor.slots", sl, &err));
  CHECK(pt_conf_set(conf, "local.dir", tmp_dir, &err));
  for (; kv && kv[0]; kv += 2) CHECK(pt_conf_set(conf, kv[0], kv[1], &err));
  int rc = pt_session_open(master, conf, s, err);
  pt_conf_free(conf);
  return rc;
}

static pt_session *open_ok(int executors, int slots, const char *const *kv) {
  pt_session *s = NULL;
  CHECK(open_s(executors, slots, kv, &s, &err));
  return s;
}

static const char *four_gpus(void) {
  return script("four.sh", "echo '{\"name\": \"gpu\", \"addresses\": [\"0\", \"1\", \"2\", \"3\"]}'");
}

static pt_resource_profile *profile(const char *name, double amount, int flags) {
  pt_resource_profile *p;
  CHECK(pt_resource_profile_new(&p, &err));
  CHECK(pt_resource_profile_require(p, name, amount, flags, &err));
  return p;
}

/* range(parts) -> [profile] -> [barrier] -> record; runs count. Returns
 * the action's status, with its message in err. */
static int run_job(pt_session *s, int64_t parts, const pt_resource_profile *p, int barrier,
                   const rec_arg *a, pt_error *err) {
  pt_dataset *r, *cur, *next;
  CHECK(pt_range(s, 0, parts, parts, &r, &err));
  cur = r;
  if (p) {
    CHECK(pt_with_resources(cur, p, &next, &err));
    cur = next;
  }
  if (barrier) {
    CHECK(pt_barrier(cur, &next, &err));
    if (cur != r) pt_dataset_free(cur);
    cur = next;
  }
  pt_dataset *m;
  CHECK(pt_map_partitions(cur, record, NULL, a, sizeof *a, &m, &err));
  int64_t count = -1;
  int rc = pt_count(m, &count, err);
  if (rc == PT_OK) assert_int_equal(count, 0);
  pt_dataset_free(m);
  if (cur != r) pt_dataset_free(cur);
  pt_dataset_free(r);
  return rc;
}

static rec_arg make_arg(const char *log, int64_t sleep_ms) {
  rec_arg a;
  memset(&a, 0, sizeof a);
  snprintf(a.log, sizeof a.log, "%s/%s", tmp_dir, log);
  snprintf(a.res, sizeof a.res, "gpu");
  a.sleep_ms = sleep_ms;
  unlink(a.log);
  return a;
}

/* ------------------------------------------------------------------------ */
/* Tests */

/* 2 executors x 2 GPUs (one script reporting 4, dealt 2 + 2), 12 tasks of
 * 1 GPU each with 4 slots per executor: never more than 4 at once, never
 * one address in two running tasks, each task on its executor's own. */
static void test_whole_gpus_never_shared(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.discovery_script", four_gpus(), NULL};
  pt_session *s = open_ok(2, 4, kv);
  pt_executor_info info[4];
  int64_t ne;
  CHECK(pt_session_executors(s, info, 4, &ne, &err));
  assert_int_equal(ne, 2);
  pt_resource_profile *p = profile("gpu", 1, 0);
  rec_arg a = make_arg("whole.log", 150);
  CHECK(run_job(s, 12, p, 0, &a, &err));
  rec r[32];
  int n = read_log(a.log, r, 32);
  assert_int_equal(n, 12);
  for (int i = 0; i < n; i++) {
    assert_int_equal(r[i].n, 1);
    /* the address is one its executor owns */
    int owned = 0;
    for (int64_t e = 0; e < ne; e++)
      if (info[e].id == r[i].exec)
        for (int k = 0; k < info[e].resources[0].n_addresses; k++)
          owned |= strcmp(info[e].resources[0].addresses[k], r[i].addrs) == 0;
    assert_true(owned);
    for (int k = 0; k < i; k++)
      if (overlap(&r[i], &r[k]) && strcmp(r[i].addrs, r[k].addrs) == 0)
        fail_msg("partitions %lld and %lld ran at once on gpu %s", (long long)r[i].part,
                 (long long)r[k].part, r[i].addrs);
  }
  assert_true(max_concurrent(r, n, NULL) <= 4);
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* local[2] with one discovery script of 4 GPUs: each executor owns 2, and
 * no address twice. */
static void test_local_split_disjoint(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.discovery_script", four_gpus(), NULL};
  pt_session *s = open_ok(2, 1, kv);
  pt_executor_info info[4];
  int64_t ne;
  CHECK(pt_session_executors(s, info, 4, &ne, &err));
  assert_int_equal(ne, 2);
  char seen[4][PT_RESOURCE_NAME_MAX];
  int n_seen = 0;
  for (int e = 0; e < 2; e++) {
    assert_int_equal(info[e].n_resources, 1);
    assert_string_equal(info[e].resources[0].name, "gpu");
    assert_int_equal(info[e].resources[0].n_addresses, 2);
    for (int k = 0; k < 2; k++) {
      for (int j = 0; j < n_seen; j++) assert_string_not_equal(seen[j], info[e].resources[0].addresses[k]);
      snprintf(seen[n_seen++], PT_RESOURCE_NAME_MAX, "%s", info[e].resources[0].addresses[k]);
    }
  }
  assert_int_equal(n_seen, 4);
  pt_session_close(s);
}

static void fraction_case(double amount, int share) {
  const char *kv[] = {"resources.gpu.addresses", "7", NULL};
  pt_session *s = open_ok(1, 8, kv);
  pt_resource_profile *p = profile("gpu", amount, 0);
  rec_arg a = make_arg("frac.log", 300);
  CHECK(run_job(s, 3 * share, p, 0, &a, &err));
  rec r[32];
  int n = read_log(a.log, r, 32);
  assert_int_equal(n, 3 * share);
  for (int i = 0; i < n; i++) assert_string_equal(r[i].addrs, "7");
  /* share tasks on the address at once (8 slots would allow more), never more */
  assert_int_equal(max_concurrent(r, n, "7"), share);
  pt_resource_profile_free(p);
  pt_session_close(s);
}

static void test_fraction_half(void **state) {
  (void)state;
  fraction_case(0.5, 2);
}

static void test_fraction_third(void **state) {
  (void)state;
  fraction_case(0.3, 3);
}

/* Stage 1 on CPUs only, a shuffle, stage 2 with 1 GPU per task. */
static void test_profiles_per_stage(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.discovery_script", four_gpus(), NULL};
  pt_session *s = open_ok(2, 2, kv);
  pt_resource_profile *p = profile("gpu", 1, 0);
  rec_arg a = make_arg("mixed.log", 20);
  pt_dataset *r, *m1, *sh, *g, *m2;
  CHECK(pt_range(s, 0, 100, 4, &r, &err));
  CHECK(pt_map_partitions(r, record, NULL, &a, sizeof a, &m1, &err));
  CHECK(pt_repartition(m1, 6, &sh, &err));
  CHECK(pt_with_resources(sh, p, &g, &err));
  CHECK(pt_map_partitions(g, record, NULL, &a, sizeof a, &m2, &err));
  int64_t count;
  CHECK(pt_count(m2, &count, &err));
  rec rs[32];
  int n = read_log(a.log, rs, 32);
  assert_int_equal(n, 10);
  /* Stage ids need not follow the order: the CPU stage is the one of 4 tasks. */
  int cpu = 0, gpu = 0, in_first = 0;
  for (int i = 0; i < n; i++) in_first += rs[i].stage == rs[0].stage;
  int64_t cpu_stage = in_first == 4 ? rs[0].stage : -1;
  for (int i = 0; i < n && cpu_stage < 0; i++)
    if (rs[i].stage != rs[0].stage) cpu_stage = rs[i].stage;
  for (int i = 0; i < n; i++) {
    if (rs[i].stage == cpu_stage) {
      assert_int_equal(rs[i].n, 0);
      cpu++;
    } else {
      assert_int_equal(rs[i].n, 1);
      gpu++;
    }
  }
  assert_int_equal(cpu, 4);
  assert_int_equal(gpu, 6);
  pt_dataset_free(m2);
  pt_dataset_free(g);
  pt_dataset_free(sh);
  pt_dataset_free(m1);
  pt_dataset_free(r);
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* Barrier stage of 4 tasks x 1 GPU on 2 executors x 2 GPUs: together, each
 * its own address, and a child process sees CUDA_VISIBLE_DEVICES = it. */
static void test_barrier_gpus(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.discovery_script", four_gpus(), NULL};
  pt_session *s = open_ok(2, 2, kv);
  pt_resource_profile *p = profile("gpu", 1, 0);
  rec_arg a = make_arg("barrier.log", 100);
  a.barrier = 1;
  a.spawn = 1;
  CHECK(run_job(s, 4, p, 1, &a, &err));
  rec r[8];
  int n = read_log(a.log, r, 8);
  assert_int_equal(n, 4);
  int64_t last_start = 0, first_end = INT64_MAX;
  for (int i = 0; i < n; i++) {
    assert_int_equal(r[i].n, 1);
    assert_string_equal(r[i].seen, r[i].addrs);
    for (int k = 0; k < i; k++) assert_string_not_equal(r[i].addrs, r[k].addrs);
    last_start = r[i].t0 > last_start ? r[i].t0 : last_start;
    first_end = r[i].t1 < first_end ? r[i].t1 : first_end;
  }
  assert_true(last_start < first_end); /* all ran at once */
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* A barrier stage whose slots are free but whose GPUs are held by another
 * job waits barrier.admission_timeout, then fails saying that resources,
 * not slots, were missing and what held them. */
typedef struct holder_arg {
  pt_session *s;
  const pt_resource_profile *p;
  rec_arg a;
  int rc;
} holder_arg;

static void *hold_gpus(void *v) {
  holder_arg *h = v;
  pt_error e = {0};
  h->rc = run_job(h->s, 3, h->p, 0, &h->a, &e);
  return NULL;
}

static void test_barrier_admission_waits_for_gpus(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.discovery_script", four_gpus(),
                      "barrier.admission_timeout", "500ms", NULL};
  pt_session *s = open_ok(1, 8, kv);
  pt_resource_profile *p = profile("gpu", 1, 0);
  holder_arg h = {.s = s, .p = p, .a = make_arg("holder.log", 2500)};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, hold_gpus, &h), 0);
  struct timespec ts = {0, 400 * 1000000L}; /* the holder's 3 tasks are running */
  nanosleep(&ts, NULL);
  rec_arg a = make_arg("waiter.log", 0);
  a.barrier = 1;
  pt_error e = {0};
  assert_int_equal(run_job(s, 2, p, 1, &a, &e), PT_ETIMEDOUT);
  fprintf(stderr, "error: %s\n", e.message);
  assert_non_null(strstr(e.message, "needs 2 tasks with 1 gpu each at once; after waiting "
                                    "500ms (barrier.admission_timeout)"));
  assert_non_null(strstr(e.message, "slots were free but not the resources for all of them, "
                                    "held by job "));
  assert_non_null(strstr(e.message, "(3 tasks)"));
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(h.rc, PT_OK);
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* The executors of a 2-task barrier stage: packed on one, or spread. */
static void placement_case(const char *placement, int want_execs) {
  const char *kv[] = {"resources.gpu.discovery_script", four_gpus(), "barrier.placement",
                      placement, NULL};
  pt_session *s = open_ok(2, 2, kv);
  pt_resource_profile *p = profile("gpu", 1, 0);
  rec_arg a = make_arg("place.log", 0);
  a.barrier = 1;
  CHECK(run_job(s, 2, p, 1, &a, &err));
  rec r[4];
  assert_int_equal(read_log(a.log, r, 4), 2);
  assert_int_equal(r[0].exec == r[1].exec ? 1 : 2, want_execs);
  pt_resource_profile_free(p);
  pt_session_close(s);
}

static void test_barrier_pack(void **state) {
  (void)state;
  placement_case("pack", 1);
}

static void test_barrier_spread(void **state) {
  (void)state;
  placement_case("spread", 2);
}

/* 4 tasks x 1 GPU as a barrier stage on 2 executors x 1 GPU: at once. */
static void test_barrier_too_few_gpus(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.addresses", "0,1", NULL};
  pt_session *s = open_ok(2, 4, kv);
  pt_resource_profile *p = profile("gpu", 1, 0);
  rec_arg a = make_arg("few.log", 0);
  a.barrier = 1;
  pt_error e = {0};
  int64_t t0 = now_us();
  assert_int_equal(run_job(s, 4, p, 1, &a, &e), PT_EINVAL);
  assert_true(now_us() - t0 < 5000000); /* at once, not after barrier.admission_timeout */
  assert_non_null(strstr(e.message, "needs 4 tasks with 1 gpu each at once but the executors "
                                    "can hold 2 such tasks at once (executor 1: 1 gpu; "
                                    "executor 2: 1 gpu)"));
  assert_int_equal(read_log(a.log, (rec[1]){0}, 1), 0);
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* An optional GPU on executors without any: runs, and sees none. */
static void test_optional_without_gpus(void **state) {
  (void)state;
  pt_session *s = open_ok(2, 1, NULL);
  pt_executor_info info[2];
  int64_t ne;
  CHECK(pt_session_executors(s, info, 2, &ne, &err));
  assert_int_equal(info[0].n_resources, 0);
  pt_resource_profile *p = profile("gpu", 1, PT_RESOURCE_OPTIONAL);
  rec_arg a = make_arg("optional.log", 0);
  a.spawn = 1;
  CHECK(run_job(s, 4, p, 0, &a, &err));
  rec r[8];
  int n = read_log(a.log, r, 8);
  assert_int_equal(n, 4);
  for (int i = 0; i < n; i++) {
    assert_int_equal(r[i].n, 0);
    assert_string_equal(r[i].addrs, "-");
  }
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* An optional GPU where some are: taken while free, never shared. */
static void test_optional_takes_free(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.addresses", "0", NULL};
  pt_session *s = open_ok(1, 3, kv);
  pt_resource_profile *p = profile("gpu", 1, PT_RESOURCE_OPTIONAL);
  rec_arg a = make_arg("optional2.log", 200);
  CHECK(run_job(s, 3, p, 0, &a, &err));
  rec r[8];
  int n = read_log(a.log, r, 8);
  assert_int_equal(n, 3);
  int with = 0;
  for (int i = 0; i < n; i++) with += r[i].n == 1;
  assert_true(with >= 1);
  assert_true(max_concurrent(r, n, "0") <= 1);
  pt_resource_profile_free(p);
  pt_session_close(s);
}

static void expect_job_error(pt_session *s, const pt_resource_profile *p, const char *text) {
  rec_arg a = make_arg("err.log", 0);
  pt_error e = {0};
  assert_int_equal(run_job(s, 2, p, 0, &a, &e), PT_EINVAL);
  if (!strstr(e.message, text)) fail_msg("message '%s' lacks '%s'", e.message, text);
}

static void test_request_errors(void **state) {
  (void)state;
  pt_resource_profile *p;
  CHECK(pt_resource_profile_new(&p, &err));
  pt_error e = {0};
  assert_int_equal(pt_resource_profile_require(p, "gpu", 0, 0, &e), PT_EINVAL);
  assert_string_equal(e.message, "resource profile: amount 0 of 'gpu' must be greater than 0 "
                                 "(a whole number, or a fraction < 1 to share an address)");
  assert_int_equal(pt_resource_profile_require(p, "gpu", -1, 0, &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "amount -1 of 'gpu' must be greater than 0"));
  assert_int_equal(pt_resource_profile_require(p, "gpu", 1.5, 0, &e), PT_EINVAL);
  assert_string_equal(e.message, "resource profile: amount 1.5 of 'gpu' is neither a whole "
                                 "number nor a fraction < 1; ask for whole addresses (1, 2, "
                                 "...) or a share of one (0.5, 0.25, ...)");
  assert_int_equal(pt_resource_profile_require(p, "gpu", 0.01, 0, &e), PT_EINVAL);
  assert_string_equal(e.message, "resource profile: amount 0.01 of 'gpu' would share one "
                                 "address between 100 tasks; at most 64 may share one "
                                 "(amount >= 1/64 = 0.01562)");
  assert_int_equal(pt_resource_profile_require(p, "g p u", 1, 0, &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "resource name 'g p u' is not valid"));
  assert_int_equal(pt_resource_profile_require(p, "gpu", 1, 4, &e), PT_EINVAL);
  pt_resource_profile_free(p);

  const char *kv[] = {"resources.gpu.discovery_script", four_gpus(), NULL};
  pt_session *s = open_ok(2, 1, kv);
  p = profile("fpga", 1, 0);
  expect_job_error(s, p, "(1 fpga per task): it asks for 1 'fpga' per task but no executor has "
                         "a resource 'fpga'; configure resources.fpga.discovery_script or "
                         "resources.fpga.addresses, or make the request optional");
  pt_resource_profile_free(p);
  p = profile("gpu", 3, 0);
  expect_job_error(s, p, "it asks for 3 'gpu' per task but no executor has more than 2");
  pt_resource_profile_free(p);
  pt_session_close(s);
}

static void expect_open_error(const char *const *kv, int code, const char *text) {
  pt_session *s = NULL;
  pt_error e = {0};
  assert_int_equal(open_s(2, 1, kv, &s, &e), code);
  assert_null(s);
  if (!strstr(e.message, text)) fail_msg("message '%s' lacks '%s'", e.message, text);
}

static void test_discovery_errors(void **state) {
  (void)state;
  const char *fail[] = {"resources.gpu.discovery_script",
                        script("fail.sh", "echo 'nvidia driver not loaded'; exit 3"), NULL};
  expect_open_error(fail, PT_EIO, "failed (exit status 3); it printed: 'nvidia driver not loaded'");
  const char *slow[] = {"resources.gpu.discovery_script", script("slow.sh", "echo probing; sleep 30"),
                        "resources.discovery_timeout", "300ms", NULL};
  int64_t t0 = now_us();
  expect_open_error(slow, PT_ETIMEDOUT, "did not finish within 300 ms "
                                        "(resources.discovery_timeout); it printed: 'probing'");
  assert_true(now_us() - t0 < 10000000);
  const char *bad[] = {"resources.gpu.discovery_script",
                       script("bad.sh", "echo '{\"name\": \"gpu\", \"addresses\": [0, 1]}'"), NULL};
  expect_open_error(bad, PT_EFORMAT, "printed no valid JSON like {\"name\": \"gpu\", "
                                     "\"addresses\": [\"0\", \"1\"]} (\"addresses\" must be an "
                                     "array of strings at byte 30); it printed: '{\"name\": \"gpu\", "
                                     "\"addresses\": [0, 1]}'");
  const char *other[] = {"resources.gpu.discovery_script",
                         script("other.sh", "echo '{\"name\": \"fpga\", \"addresses\": []}'"), NULL};
  expect_open_error(other, PT_EFORMAT, "reported resource 'fpga', not 'gpu'");
  char missing[600];
  snprintf(missing, sizeof missing, "%s/no-such-script", tmp_dir);
  const char *nofile[] = {"resources.gpu.discovery_script", missing, NULL};
  expect_open_error(nofile, PT_EIO, "cannot run it: No such file or directory");
  const char *twice[] = {"resources.gpu.addresses", "0,1,0", NULL};
  expect_open_error(twice, PT_EINVAL, "resources.gpu.addresses: '0,1,0' lists an address twice");

  pt_conf *c;
  CHECK(pt_conf_new(&c, &err));
  pt_error e = {0};
  assert_int_equal(pt_conf_set(c, "barrier.placement", "diagonal", &e), PT_EINVAL);
  assert_string_equal(e.message, "configuration key 'barrier.placement': 'diagonal' is not one "
                                 "of pack|spread");
  assert_int_equal(pt_conf_set(c, "resources.gpu.bogus", "x", &e), PT_EINVAL);
  assert_non_null(strstr(e.message, "unknown configuration key 'resources.gpu.bogus'"));
  assert_string_equal(pt_conf_get(c, "resources.gpu.env"), "CUDA_VISIBLE_DEVICES");
  assert_string_equal(pt_conf_get(c, "resources.fpga.env"), "");
  CHECK(pt_conf_set(c, "resources.fpga.env", "FPGA_IDS", &err));
  assert_string_equal(pt_conf_get(c, "resources.fpga.env"), "FPGA_IDS");
  pt_conf_free(c);
}

/* 2 cpus per task on executors of 3 slots: one such task at a time each,
 * and none beside it; 4 cpus fail at once. */
static void test_cpus_per_task(void **state) {
  (void)state;
  pt_session *s = open_ok(2, 3, NULL);
  pt_resource_profile *p;
  CHECK(pt_resource_profile_new(&p, &err));
  CHECK(pt_resource_profile_cpus(p, 2, &err));
  rec_arg a = make_arg("cpus.log", 100);
  CHECK(run_job(s, 6, p, 0, &a, &err));
  rec r[8];
  int n = read_log(a.log, r, 8);
  assert_int_equal(n, 6);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < i; k++)
      if (r[i].exec == r[k].exec && overlap(&r[i], &r[k]))
        fail_msg("partitions %lld and %lld (2 cpus each) ran at once on executor %lld of 3 "
                 "slots", (long long)r[i].part, (long long)r[k].part, (long long)r[i].exec);
  pt_error e = {0};
  assert_int_equal(pt_resource_profile_cpus(p, 0, &e), PT_EINVAL);
  assert_string_equal(e.message, "resource profile: 0 cpus per task; give 1 or more");
  CHECK(pt_resource_profile_cpus(p, 4, &err));
  expect_job_error(s, p, "asks for 4 cpus per task but executors have 3 slots "
                         "(executor.slots); lower the cpus or raise executor.slots");
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* The env variable is configurable per resource. */
static void test_env_configurable(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.addresses", "a,b", "resources.gpu.env", "MY_DEVICES", NULL};
  pt_session *s = open_ok(1, 2, kv);
  pt_resource_profile *p = profile("gpu", 1, 0);
  rec_arg a = make_arg("env.log", 0);
  a.spawn = 1;
  snprintf(a.cmd, sizeof a.cmd, "printf '%%s' \"${MY_DEVICES-unset}\"");
  CHECK(run_job(s, 2, p, 0, &a, &err));
  rec r[4];
  assert_int_equal(read_log(a.log, r, 4), 2);
  for (int i = 0; i < 2; i++) assert_string_equal(r[i].seen, r[i].addrs);
  /* CUDA_VISIBLE_DEVICES is left as the executor has it */
  a = make_arg("env2.log", 0);
  a.spawn = 1;
  CHECK(run_job(s, 1, p, 0, &a, &err));
  assert_int_equal(read_log(a.log, r, 4), 1);
  const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
  assert_string_equal(r[0].seen, cvd && *cvd ? cvd : "unset");
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* A profile of several addresses of two resources (3 gpus and 2 fpgas per
 * task, 5 addresses: more than a launch names in its single-address form
 * or a queued task keeps inline): each task sees its 3 and 2, its child
 * each variable set to them, and running tasks never share one. */
static void test_grants_of_several_addresses(void **state) {
  (void)state;
  const char *kv[] = {"resources.gpu.addresses", "g0,g1,g2,g3,g4,g5,g6,g7",
                      "resources.fpga.addresses", "f0,f1,f2,f3",
                      "resources.fpga.env", "FPGA_IDS", NULL};
  pt_session *s = open_ok(2, 2, kv);
  pt_resource_profile *p = profile("gpu", 3, 0);
  CHECK(pt_resource_profile_require(p, "fpga", 2, 0, &err));
  for (int pass = 0; pass < 2; pass++) {
    rec_arg a = make_arg(pass ? "several_fpga.log" : "several_gpu.log", 40);
    a.spawn = 1;
    if (pass) {
      snprintf(a.res, sizeof a.res, "fpga");
      snprintf(a.cmd, sizeof a.cmd, "printf '%%s' \"${FPGA_IDS-unset}\"");
    }
    CHECK(run_job(s, 8, p, 0, &a, &err));
    rec r[16];
    int n = read_log(a.log, r, 16);
    assert_int_equal(n, 8);
    for (int i = 0; i < n; i++) {
      assert_int_equal(r[i].n, pass ? 2 : 3);
      assert_string_equal(r[i].seen, r[i].addrs); /* the child's variable */
      for (int k = 0; k < i; k++) {
        if (!overlap(&r[i], &r[k])) continue;
        char mine[256];
        snprintf(mine, sizeof mine, "%s", r[i].addrs);
        for (char *t = strtok(mine, ","); t; t = strtok(NULL, ",")) {
          char theirs[258];
          snprintf(theirs, sizeof theirs, ",%s,", r[k].addrs);
          char want[64];
          snprintf(want, sizeof want, ",%s,", t);
          if (strstr(theirs, want))
            fail_msg("partitions %lld and %lld ran at once on %s", (long long)r[i].part,
                     (long long)r[k].part, t);
        }
      }
    }
  }
  pt_resource_profile_free(p);
  pt_session_close(s);
}

/* The discovery JSON decoder survives garbage: every prefix of valid
 * output, and random bytes. */
static void test_json_garbage(void **state) {
  (void)state;
  const char *good = "{\"name\": \"gpu\", \"addresses\": [\"0\", \"1\\u0041\"]}";
  char *name;
  char **addrs;
  int32_t n;
  CHECK(pt__res_parse_json(good, strlen(good), &name, &addrs, &n, &err));
  assert_string_equal(name, "gpu");
  assert_int_equal(n, 2);
  assert_string_equal(addrs[1], "1A");
  pt__free(name);
  pt__res_strings_free(addrs, n);
  for (size_t len = 0; len < strlen(good); len++) {
    pt_error e = {0};
    assert_int_equal(pt__res_parse_json(good, len, &name, &addrs, &n, &e), PT_EFORMAT);
    assert_null(name);
  }
  srand(7);
  char buf[64];
  const char alphabet[] = "{}[]\":, \\u0gpunamedres";
  for (int i = 0; i < 20000; i++) {
    size_t len = (size_t)(rand() % 64);
    for (size_t k = 0; k < len; k++)
      buf[k] = i % 2 ? (char)(rand() % 256) : alphabet[rand() % (int)(sizeof alphabet - 1)];
    pt_error e = {0};
    if (pt__res_parse_json(buf, len, &name, &addrs, &n, &e) == PT_OK) {
      pt__free(name);
      pt__res_strings_free(addrs, n);
    }
  }
}

/* Only with a GPU: scripts/discover-gpus finds it, and a task's CUDA
 * process sees exactly its device. */
static void test_real_gpu(void **state) {
  (void)state;
  const char *src = getenv("PT_SOURCE_DIR");
  char disc[4200];
  snprintf(disc, sizeof disc, "%s/scripts/discover-gpus", src ? src : ".");
  FILE *f = popen(disc, "r");
  char out[512] = "";
  if (f) {
    size_t got = fread(out, 1, sizeof out - 1, f);
    out[got] = 0;
    pclose(f);
  }
  if (!strstr(out, "\"addresses\": [\"")) {
    printf("skipped: nvidia-smi finds no GPU here (scripts/discover-gpus printed %s)\n", out);
    skip();
  }
  const char *kv[] = {"resources.gpu.discovery_script", disc, NULL};
  pt_session *s = open_ok(1, 1, kv);
  pt_resource_profile *p = profile("gpu", 1, 0);
  rec_arg a = make_arg("real.log", 0);
  a.spawn = 1;
  CHECK(run_job(s, 1, p, 0, &a, &err));
  rec r[2];
  assert_int_equal(read_log(a.log, r, 2), 1);
  assert_int_equal(r[0].n, 1);
  /* A CUDA process under the task's environment sees exactly one device:
   * its own (nvidia-smi honours CUDA_VISIBLE_DEVICES as CUDA does). */
  a = make_arg("real2.log", 0);
  a.spawn = 1;
  snprintf(a.cmd, sizeof a.cmd,
           "nvidia-smi --query-gpu=index --format=csv,noheader | tr '\\n' ' ' | "
           "sed 's/ *$//; s/ /+/g'");
  CHECK(run_job(s, 1, p, 0, &a, &err));
  assert_int_equal(read_log(a.log, r, 2), 1);
  printf("real GPU: task held gpu %s; nvidia-smi in its child listed: %s\n", r[0].addrs,
         r[0].seen);
  assert_null(strchr(r[0].seen, '+'));
  pt_resource_profile_free(p);
  pt_session_close(s);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/pt-res-XXXXXX");
  return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whole_gpus_never_shared),
      cmocka_unit_test(test_local_split_disjoint),
      cmocka_unit_test(test_fraction_half),
      cmocka_unit_test(test_fraction_third),
      cmocka_unit_test(test_profiles_per_stage),
      cmocka_unit_test(test_barrier_gpus),
      cmocka_unit_test(test_barrier_pack),
      cmocka_unit_test(test_barrier_spread),
      cmocka_unit_test(test_barrier_too_few_gpus),
      cmocka_unit_test(test_barrier_admission_waits_for_gpus),
      cmocka_unit_test(test_optional_without_gpus),
      cmocka_unit_test(test_optional_takes_free),
      cmocka_unit_test(test_request_errors),
      cmocka_unit_test(test_discovery_errors),
      cmocka_unit_test(test_env_configurable),
      cmocka_unit_test(test_grants_of_several_addresses),
      cmocka_unit_test(test_cpus_per_task),
      cmocka_unit_test(test_json_garbage),
      cmocka_unit_test(test_real_gpu),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
