/* scale_bench.c — protium's side of `bench/run scale`: how the driver's cost
 * grows with the number of tasks, a shuffle of M x R blocks, and what an
 * idle executor costs in memory. Each mode runs in a fresh process, so that
 * its peak RSS is its own.
 *
 *   scale_bench tasks N        count() over range(N) in N partitions (one row
 *                              per task) on local[2]: wall time, the driver
 *                              process's CPU time per task, its peak RSS
 *   scale_bench shuffle M R    range(M * 1000) in M partitions, repartition(R),
 *                              count(): M x R shuffle blocks; wall time
 *   scale_bench idle           local[1], idle for a second: the executor's RSS
 *
 * Each prints one JSON object on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "protium.h"

/* CPU time of this process (every thread: the driver's and the user's; not
 * its executors), to the nanosecond. */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A /proc/<pid>/status field in MB (VmRSS: now; VmHWM: the peak of this
 * program, which getrusage's ru_maxrss is not: it keeps the peak of the
 * process before exec). -1 if unknown. */
static double status_mb(long pid, const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  double mb = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') mb = atof(line + n + 1) / 1024.0;
  fclose(f);
  return mb;
}

static double peak_rss_mb(void) { return status_mb((long)getpid(), "VmHWM"); }
static double rss_mb(long pid) { return status_mb(pid, "VmRSS"); }

static int die(const char *what, const pt_error *err) {
  fprintf(stderr, "scale_bench: %s: %s\n", what, err ? err->message : "failed");
  return 1;
}

static int open_session(const char *master, pt_session **s, pt_error *err) {
  pt_conf *conf;
  if (pt_conf_new(&conf, err) != PT_OK) return 1;
  int rc = pt_session_open(master, conf, s, err);
  pt_conf_free(conf);
  return rc;
}

static int tasks(int64_t n) {
  pt_error err = {0};
  pt_session *s;
  if (open_session("local[2]", &s, &err) != PT_OK) return die("session", &err);
  pt_dataset *ds;
  int64_t count = 0;
  if (pt_range(s, 0, n, n, &ds, &err) != PT_OK) return die("range", &err);
  double c0 = cpu_s(), t0 = now_s();
  if (pt_count(ds, &count, &err) != PT_OK) return die("count", &err);
  double wall = now_s() - t0, cpu = cpu_s() - c0;
  if (count != n) return die("count is wrong", NULL);
  pt_job_stats *js;
  int64_t launched = 0;
  if (pt_dataset_last_job(ds, &js, &err) == PT_OK) {
    pt_stage_stats t;
    pt_job_stats_total(js, &t);
    launched = t.tasks_launched;
    pt_job_stats_free(js);
  }
  pt_dataset_free(ds);
  pt_session_close(s);
  printf("{\"tasks\": %lld, \"launched\": %lld, \"seconds\": %.4f, \"driver_us_per_task\": %.3f, "
         "\"wall_us_per_task\": %.3f, \"driver_peak_rss_mb\": %.1f}\n",
         (long long)n, (long long)launched, wall, cpu * 1e6 / (double)n, wall * 1e6 / (double)n,
         peak_rss_mb());
  return 0;
}

static int shuffle(int64_t m, int64_t r) {
  pt_error err = {0};
  pt_session *s;
  if (open_session("local[2]", &s, &err) != PT_OK) return die("session", &err);
  pt_dataset *ds, *p;
  int64_t rows = m * 1000, count = 0;
  if (pt_range(s, 0, rows, m, &ds, &err) != PT_OK) return die("range", &err);
  if (pt_repartition(ds, r, &p, &err) != PT_OK) return die("repartition", &err);
  double c0 = cpu_s(), t0 = now_s();
  if (pt_count(p, &count, &err) != PT_OK) return die("count", &err);
  double wall = now_s() - t0, cpu = cpu_s() - c0;
  if (count != rows) return die("count is wrong", NULL);
  pt_job_stats *js;
  int64_t bytes = 0;
  if (pt_dataset_last_job(p, &js, &err) == PT_OK) {
    pt_stage_stats t;
    pt_job_stats_total(js, &t);
    bytes = t.bytes_written;
    pt_job_stats_free(js);
  }
  pt_dataset_free(p);
  pt_dataset_free(ds);
  pt_session_close(s);
  printf("{\"blocks\": %lld, \"rows\": %lld, \"seconds\": %.3f, \"driver_cpu_s\": %.3f, "
         "\"shuffle_mb\": %.1f, \"driver_peak_rss_mb\": %.1f}\n",
         (long long)(m * r), (long long)rows, wall, cpu, (double)bytes / 1048576.0,
         peak_rss_mb());
  return 0;
}

static int idle(void) {
  pt_error err = {0};
  pt_session *s;
  if (open_session("local[1]", &s, &err) != PT_OK) return die("session", &err);
  /* one job first: the executor as it is between jobs, not before any */
  pt_dataset *ds;
  int64_t count;
  if (pt_range(s, 0, 10, 1, &ds, &err) != PT_OK || pt_count(ds, &count, &err) != PT_OK)
    return die("count", &err);
  pt_dataset_free(ds);
  sleep(1);
  pt_executor_info info[1];
  int64_t n;
  if (pt_session_executors(s, info, 1, &n, &err) != PT_OK || n < 1) return die("executors", &err);
  double mb = rss_mb((long)info[0].pid);
  pt_session_close(s);
  printf("{\"idle_executor_rss_mb\": %.2f}\n", mb);
  return mb > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "tasks") == 0) return tasks(atoll(argv[2]));
  if (argc == 4 && strcmp(argv[1], "shuffle") == 0) return shuffle(atoll(argv[2]), atoll(argv[3]));
  if (argc == 2 && strcmp(argv[1], "idle") == 0) return idle();
  fprintf(stderr, "usage: scale_bench tasks N | shuffle M R | idle\n");
  return 2;
}
