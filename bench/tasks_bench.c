/* tasks_bench.c — protium's side of `bench/run tasks`: scheduling overhead of
 * the local engine, measured in C so that no Python is in the timed region.
 *
 *   tasks_bench uds_rtt N            one-byte ping-pong between two processes
 *                                    over a unix socket pair: median µs
 *   tasks_bench session N            open local[2] with executors ready, close: ms
 *   tasks_bench tasks NTASKS R       count() over range(NTASKS) in NTASKS
 *                                    partitions (one row per task), best of R
 *   tasks_bench latency N            N one-task jobs; p50 and p99 µs
 *
 * With "gpu" as last argument, tasks and latency run with a resource
 * profile of 1 GPU per task on fake GPUs (resources.gpu.addresses 0-35,
 * dealt 18 + 18 to the executors): what accelerator-aware scheduling costs.
 *
 * Each prints one JSON object on stdout.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "protium.h"

static int die(const char *what, const pt_error *err) {
  fprintf(stderr, "tasks_bench: %s: %s\n", what, err ? err->message : "failed");
  return 1;
}

static int uds_rtt(int n) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return die("socketpair", NULL);
  pid_t pid = fork();
  if (pid < 0) return die("fork", NULL);
  if (pid == 0) {
    char c;
    close(sv[0]);
    while (read(sv[1], &c, 1) == 1)
      if (write(sv[1], &c, 1) != 1) break;
    _exit(0);
  }
  close(sv[1]);
  double *t = malloc(sizeof *t * (size_t)n);
  char c = 'x';
  for (int i = 0; i < n + 100; i++) {
    double t0 = now_s();
    if (write(sv[0], &c, 1) != 1 || read(sv[0], &c, 1) != 1) return die("ping", NULL);
    if (i >= 100) t[i - 100] = (now_s() - t0) * 1e6;
  }
  close(sv[0]);
  waitpid(pid, NULL, 0);
  printf("{\"uds_rtt_us\": %.2f}\n", percentile(t, n, 50));
  free(t);
  return 0;
}

static int gpu_mode;        /* 1: tasks ask for 1 GPU each */
static pt_resource_profile *gpu_profile;

static int open_local2(pt_session **s, pt_error *err) {
  pt_conf *conf;
  if (pt_conf_new(&conf, err) != PT_OK) return 1;
  int rc = PT_OK;
  if (gpu_mode) {
    /* 18 fake GPUs per executor: as many as its tasks in flight (1 slot + 8
     * queued, twice), so GPUs never limit and the figure is the cost of the
     * bookkeeping alone. With fewer GPUs than tasks in flight, a task holds
     * its GPU from launch, so fewer wait queued at the executor. */
    char addrs[256];
    int len = 0;
    for (int i = 0; i < 36; i++) len += snprintf(addrs + len, sizeof addrs - (size_t)len, "%s%d", i ? "," : "", i);
    rc = pt_conf_set(conf, "resources.gpu.addresses", addrs, err);
    if (rc == PT_OK && !gpu_profile && (rc = pt_resource_profile_new(&gpu_profile, err)) == PT_OK)
      rc = pt_resource_profile_require(gpu_profile, "gpu", 1, 0, err);
  }
  if (rc == PT_OK) rc = pt_session_open("local[2]", conf, s, err);
  pt_conf_free(conf);
  return rc;
}

static int session(int n) {
  double *t = malloc(sizeof *t * (size_t)n);
  pt_error err;
  for (int i = 0; i < n; i++) {
    double t0 = now_s();
    pt_session *s;
    if (open_local2(&s, &err) != PT_OK) return die("pt_session_open", &err);
    pt_session_close(s);
    t[i] = (now_s() - t0) * 1e3;
  }
  printf("{\"session_start_ms\": %.2f, \"session_start_ms_min\": %.2f}\n", percentile(t, n, 50),
         percentile(t, n, 0));
  free(t);
  return 0;
}

static int count_range(pt_session *s, int64_t n, int64_t parts, int64_t *out, pt_error *err) {
  pt_dataset *ds;
  if (pt_range(s, 0, n, parts, &ds, err) != PT_OK) return 1;
  if (gpu_mode) {
    pt_dataset *g;
    int rc = pt_with_resources(ds, gpu_profile, &g, err);
    pt_dataset_free(ds);
    if (rc != PT_OK) return rc;
    ds = g;
  }
  int rc = pt_count(ds, out, err);
  pt_dataset_free(ds);
  return rc;
}

static int tasks(int64_t ntasks, int repeats) {
  pt_error err;
  pt_session *s;
  if (open_local2(&s, &err) != PT_OK) return die("pt_session_open", &err);
  int64_t count;
  if (count_range(s, 1000, 100, &count, &err) != PT_OK) return die("warm-up", &err);
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    if (count_range(s, ntasks, ntasks, &count, &err) != PT_OK) return die("count", &err);
    double dt = now_s() - t0;
    if (count != ntasks) {
      fprintf(stderr, "tasks_bench: count %lld, expected %lld\n", (long long)count,
              (long long)ntasks);
      return 1;
    }
    if (dt < best) best = dt;
  }
  pt_session_close(s);
  printf("{\"tasks_per_s\": %.1f, \"tasks\": %lld, \"seconds\": %.4f}\n", (double)ntasks / best,
         (long long)ntasks, best);
  return 0;
}

static int latency(int n) {
  pt_error err;
  pt_session *s;
  if (open_local2(&s, &err) != PT_OK) return die("pt_session_open", &err);
  double *t = malloc(sizeof *t * (size_t)n);
  int64_t count;
  for (int i = 0; i < n + 50; i++) {
    double t0 = now_s();
    if (count_range(s, 1, 1, &count, &err) != PT_OK) return die("count", &err);
    if (i >= 50) t[i - 50] = (now_s() - t0) * 1e6;
  }
  pt_session_close(s);
  double p50 = percentile(t, n, 50), p99 = percentile(t, n, 99);
  printf("{\"launch_p50_us\": %.1f, \"launch_p99_us\": %.1f}\n", p50, p99);
  free(t);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[argc - 1], "gpu") == 0) {
    gpu_mode = 1;
    argc--;
  }
  if (argc >= 3 && strcmp(argv[1], "uds_rtt") == 0) return uds_rtt(atoi(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "session") == 0) return session(atoi(argv[2]));
  if (argc >= 4 && strcmp(argv[1], "tasks") == 0) return tasks(atoll(argv[2]), atoi(argv[3]));
  if (argc >= 3 && strcmp(argv[1], "latency") == 0) return latency(atoi(argv[2]));
  fprintf(stderr, "usage: tasks_bench uds_rtt N | session N | tasks NTASKS REPEATS | latency N\n");
  return 2;
}
