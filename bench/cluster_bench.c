/* cluster_bench.c — protium's side of `bench/run cluster`: the transport
 * across hosts against the unix sockets of one machine, in C so that no
 * Python is in the timed region.
 *
 *   cluster_bench tasks unix|tcp|tls N R     count() over N one-row partitions: tasks/s, best of R
 *   cluster_bench latency unix|tcp N     N one-task jobs: p50 and p99 µs
 *   cluster_bench shuffle unix|tcp|tls MB R  range -> repartition(4) -> count over local[2] with
 *                                        MB of int64 shuffled: GB/s, best of R (tcp: every
 *                                        block fetched from the other executor's block server),
 *                                        and the best run's map and reduce stage times
 *   cluster_bench blocks unix|tcp|tls M R  range -> repartition over M map and M reduce tasks
 *                                        of small blocks (M*M of them): blocks/s, best of R
 *                                        (what a connection per block costs)
 *   cluster_bench results unix|tcp|tls MB R  pt_collect of MB of int64 in 4 partitions over local[2]:
 *                                        GB/s, best of R (tcp, tls: net.results = stream, every
 *                                        partition fetched from its executor's block server;
 *                                        unix: the files in the session directory, mapped)
 *   cluster_bench collect_latency unix|tcp|tls N ROWS  N one-task jobs that collect ROWS int64
 *                                        (tcp, tls: net.results = stream): p50 and p99 µs, CPU
 *                                        µs per job (driver and executors, getrusage) and TCP
 *                                        segments sent per job (/proc/net/snmp OutSegs of the
 *                                        network namespace: run it in one of its own)
 *   cluster_bench fetch tcp|tls MB R     one block server and its client in this process: a
 *                                        file of MB fetched whole in 16 MiB requests, R times:
 *                                        GB/s of the best and CPU seconds per GB (both sides,
 *                                        getrusage), what the block path itself costs
 *   cluster_bench tcp_limit MB           a plain TCP copy of MB between two processes over
 *                                        loopback: GB/s (the ceiling of any TCP shuffle)
 *   cluster_bench check unix|tcp         exact shuffle result, an executor killed, exact again
 *   cluster_bench slurm_start R          inside a Slurm allocation: master "slurm" opened R
 *                                        times (allocation present -> every executor said
 *                                        Hello), then one task run on each: p50 ms
 *
 * Transport tls: tcp with net.tls = on, the certificate, key and CA from
 * PT_BENCH_TLS_CERT, PT_BENCH_TLS_KEY, PT_BENCH_TLS_CA (cluster.py makes them).
 * PT_BENCH_DRIVER_HOST (driver.host) and PT_BENCH_EXECUTOR_COMMAND
 * (executor.command) place the driver and the executors elsewhere, e.g. in
 * network namespaces (tests/python/test_netns.py). Each mode prints one JSON
 * object on stdout.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "exec/blocks.h"
#include "net/tls.h"
#include "protium.h"

static int die(const char *what, const pt_error *err) {
  fprintf(stderr, "cluster_bench: %s: %s\n", what, err ? err->message : "failed");
  return 1;
}

static int open_session(const char *transport, pt_session **s, pt_error *err) {
  pt_conf *conf;
  if (pt_conf_new(&conf, err) != PT_OK) return 1;
  int tls = strcmp(transport, "tls") == 0;
  int rc = pt_conf_set(conf, "net.transport", tls ? "tcp" : transport, err);
  if (rc == PT_OK && (tls || strcmp(transport, "tcp") == 0))
    rc = pt_conf_set(conf, "shuffle.fetch", "remote", err);
  if (rc == PT_OK && (tls || strcmp(transport, "tcp") == 0))
    rc = pt_conf_set(conf, "net.results", "stream", err);
  const char *keys[3] = {"net.tls.cert", "net.tls.key", "net.tls.ca"};
  const char *vars[3] = {"PT_BENCH_TLS_CERT", "PT_BENCH_TLS_KEY", "PT_BENCH_TLS_CA"};
  if (rc == PT_OK && tls) rc = pt_conf_set(conf, "net.tls", "on", err);
  for (int i = 0; i < 3 && tls && rc == PT_OK; i++) {
    const char *v = getenv(vars[i]);
    rc = pt_conf_set(conf, keys[i], v ? v : "", err);
  }
  const char *host = getenv("PT_BENCH_DRIVER_HOST");
  if (rc == PT_OK && host && *host) rc = pt_conf_set(conf, "driver.host", host, err);
  const char *cmd = getenv("PT_BENCH_EXECUTOR_COMMAND");
  if (rc == PT_OK && cmd && *cmd) rc = pt_conf_set(conf, "executor.command", cmd, err);
  if (rc == PT_OK) rc = pt_conf_set(conf, "range.batch_rows", "131072", err);
  if (rc == PT_OK) rc = pt_session_open("local[2]", conf, s, err);
  pt_conf_free(conf);
  return rc;
}

static int count_range(pt_session *s, int64_t n, int64_t parts, int64_t shuffle, int64_t *out,
                       pt_error *err) {
  pt_dataset *ds, *sh = NULL;
  if (pt_range(s, 0, n, parts, &ds, err) != PT_OK) return 1;
  int rc = shuffle ? pt_repartition(ds, shuffle, &sh, err) : PT_OK;
  if (rc == PT_OK) rc = pt_count(sh ? sh : ds, out, err);
  pt_dataset_free(sh);
  pt_dataset_free(ds);
  return rc;
}

static int tasks(const char *transport, int64_t n, int repeats) {
  pt_error err;
  pt_session *s;
  if (open_session(transport, &s, &err) != PT_OK) return die("pt_session_open", &err);
  int64_t count;
  if (count_range(s, 1000, 100, 0, &count, &err) != PT_OK) return die("warm-up", &err);
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    if (count_range(s, n, n, 0, &count, &err) != PT_OK) return die("count", &err);
    double dt = now_s() - t0;
    if (count != n) return die("count is wrong", NULL);
    if (dt < best) best = dt;
  }
  pt_session_close(s);
  printf("{\"tasks_per_s\": %.1f, \"tasks\": %lld}\n", (double)n / best, (long long)n);
  return 0;
}

static int latency(const char *transport, int n) {
  pt_error err;
  pt_session *s;
  if (open_session(transport, &s, &err) != PT_OK) return die("pt_session_open", &err);
  double *t = malloc(sizeof *t * (size_t)n);
  int64_t count;
  for (int i = 0; i < n + 50; i++) {
    double t0 = now_s();
    if (count_range(s, 1, 1, 0, &count, &err) != PT_OK) return die("count", &err);
    if (i >= 50) t[i - 50] = (now_s() - t0) * 1e6;
  }
  pt_session_close(s);
  double p50 = percentile(t, n, 50), p99 = percentile(t, n, 99);
  printf("{\"launch_p50_us\": %.1f, \"launch_p99_us\": %.1f}\n", p50, p99);
  free(t);
  return 0;
}

static int shuffle(const char *transport, int64_t mb, int repeats) {
  pt_error err;
  pt_session *s;
  if (open_session(transport, &s, &err) != PT_OK) return die("pt_session_open", &err);
  int64_t rows = mb * (1 << 20) / 8, count;
  if (count_range(s, 100000, 4, 4, &count, &err) != PT_OK) return die("warm-up", &err);
  double best = 1e30, map_ms = 0, reduce_ms = 0;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    if (count_range(s, rows, 4, 4, &count, &err) != PT_OK) return die("shuffle", &err);
    double dt = now_s() - t0;
    if (count != rows) return die("count is wrong", NULL);
    if (dt >= best) continue;
    best = dt;
    /* Where the best run's time went: the map stage (range, partition,
     * write) and the reduce stage (fetch or map, decode, count). */
    pt_job_stats *js;
    if (pt_session_job_stats(s, 0, &js, &err) != PT_OK) return die("job stats", &err);
    for (int64_t k = 0; k < js->n_stages; k++)
      *(js->stages[k].is_map ? &map_ms : &reduce_ms) = js->stages[k].duration_us / 1e3;
    pt_job_stats_free(js);
  }
  pt_session_close(s);
  printf("{\"shuffle_gb_per_s\": %.3f, \"bytes\": %lld, \"map_stage_ms\": %.1f, "
         "\"reduce_stage_ms\": %.1f, \"job_ms\": %.1f}\n",
         (double)rows * 8 / best / 1e9, (long long)rows * 8, map_ms, reduce_ms, best * 1e3);
  return 0;
}

/* One process writes MB over a TCP loopback connection, the other reads it
 * into a buffer: what moving shuffle bytes between processes by TCP costs
 * at best. */
static int tcp_limit(int64_t mb) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &al) != 0)
    return die("listen", NULL);
  size_t chunk = 1 << 20;
  int64_t total = mb << 20;
  pid_t pid = fork();
  if (pid == 0) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) _exit(1);
    char *buf = calloc(1, chunk);
    for (int64_t sent = 0; sent < total;) {
      ssize_t w = write(fd, buf, chunk);
      if (w <= 0) _exit(1);
      sent += w;
    }
    close(fd);
    _exit(0);
  }
  int fd = accept(lfd, NULL, NULL);
  char *buf = malloc(chunk);
  double t0 = now_s();
  int64_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf, chunk);
    if (r <= 0) break;
    got += r;
  }
  double dt = now_s() - t0;
  close(fd);
  close(lfd);
  waitpid(pid, NULL, 0);
  free(buf);
  if (got != total) return die("short copy", NULL);
  printf("{\"tcp_gb_per_s\": %.3f}\n", (double)total / dt / 1e9);
  return 0;
}

/* Exact results, then one executor killed: its replacement comes back the
 * same way and the next shuffle is exact too. */
static int check(const char *transport) {
  pt_error err;
  pt_session *s;
  if (open_session(transport, &s, &err) != PT_OK) return die("pt_session_open", &err);
  int64_t count;
  const int64_t n = 500000;
  if (count_range(s, n, 6, 5, &count, &err) != PT_OK) return die("shuffle", &err);
  if (count != n) return die("count is wrong", NULL);
  pt_executor_info infos[4];
  int64_t k = 0;
  if (pt_session_executors(s, infos, 4, &k, &err) != PT_OK || k < 1) return die("executors", &err);
  /* Where each ran (their network namespaces), for tests that place them. */
  char ns[3][64] = {"", "", ""}, path[64];
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "/proc/%lld/ns/net",
             i == 0 ? (long long)getpid() : (long long)infos[i - 1 < k ? i - 1 : 0].pid);
    ssize_t l = readlink(path, ns[i], sizeof ns[i] - 1);
    ns[i][l > 0 ? l : 0] = 0;
  }
  kill((pid_t)infos[0].pid, SIGKILL);
  if (count_range(s, n, 6, 5, &count, &err) != PT_OK) return die("shuffle after loss", &err);
  if (count != n) return die("count after loss is wrong", NULL);
  pt_session_close(s);
  printf("{\"exact\": true, \"rows\": %lld, \"driver_netns\": \"%s\", "
         "\"executor_netns\": [\"%s\", \"%s\"]}\n", (long long)n, ns[0], ns[1], ns[2]);
  return 0;
}

/* Session start under Slurm: srun steps on the allocation's nodes until
 * every executor has connected; a count() proves they serve tasks. */
static int slurm_start(int rounds) {
  double ms[64];
  if (rounds < 1) rounds = 1;
  if (rounds > 64) rounds = 64;
  pt_error err = {0};
  for (int r = 0; r < rounds; r++) {
    pt_session *s;
    double t0 = now_s();
    if (pt_session_open("slurm", NULL, &s, &err) != PT_OK) return die("open slurm", &err);
    ms[r] = (now_s() - t0) * 1e3;
    int64_t n_exec = 0, count = 0;
    if (pt_session_executors(s, NULL, 0, &n_exec, &err) != PT_OK ||
        count_range(s, n_exec, n_exec, 0, &count, &err) != PT_OK || count != n_exec) {
      pt_session_close(s);
      return die("count", &err);
    }
    pt_session_close(s);
  }
  printf("{\"session_start_ms\": %.3f}\n", percentile(ms, rounds, 50));
  return 0;
}

static int blocks(const char *transport, int64_t m, int repeats) {
  pt_error err;
  pt_session *s;
  if (open_session(transport, &s, &err) != PT_OK) return die("pt_session_open", &err);
  int64_t rows = m * m * 64, count;
  if (count_range(s, rows, m, m, &count, &err) != PT_OK) return die("warm-up", &err);
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    if (count_range(s, rows, m, m, &count, &err) != PT_OK) return die("shuffle", &err);
    double dt = now_s() - t0;
    if (count != rows) return die("count is wrong", NULL);
    if (dt < best) best = dt;
  }
  pt_session_close(s);
  printf("{\"blocks_per_s\": %.1f, \"blocks\": %lld}\n", (double)(m * m) / best,
         (long long)(m * m));
  return 0;
}

/* Collects rows ids in 4 partitions, touching every value (a sum), and
 * checks the sum. */
static int collect_sum(pt_session *s, int64_t rows, pt_error *err) {
  pt_dataset *ds;
  if (pt_range(s, 0, rows, 4, &ds, err) != PT_OK) return 1;
  struct ArrowArrayStream st;
  int rc = pt_collect(ds, &st, err);
  pt_dataset_free(ds);
  if (rc != PT_OK) return 1;
  int64_t sum = 0;
  for (;;) {
    struct ArrowArray a;
    if (st.get_next(&st, &a) != 0) break;
    if (a.release == NULL) break;
    const int64_t *v = (const int64_t *)a.children[0]->buffers[1] + a.children[0]->offset;
    for (int64_t i = 0; i < a.length; i++) sum += v[i];
    a.release(&a);
  }
  st.release(&st);
  return sum == rows * (rows - 1) / 2 ? 0 : 1;
}

/* Tcp: OutSegs of this network namespace (TCP segments sent by every
 * socket: each message and each acknowledgement), or -1. */
static long long tcp_out_segments(void) {
  FILE *f = fopen("/proc/net/snmp", "r");
  if (!f) return -1;
  char head[1024], vals[1024];
  long long v = -1;
  while (fgets(head, sizeof head, f) && fgets(vals, sizeof vals, f)) {
    if (strncmp(head, "Tcp:", 4) != 0) continue;
    int col = 0;
    for (char *h = strtok(head, " \n"); h; h = strtok(NULL, " \n"), col++)
      if (strcmp(h, "OutSegs") == 0) break;
    char *t = strtok(vals, " \n");
    for (int i = 0; t && i < col; i++) t = strtok(NULL, " \n");
    if (t) v = atoll(t);
    break;
  }
  fclose(f);
  return v;
}

static double cpu_us(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

static int collect_latency(const char *transport, int n, int64_t rows) {
  pt_error err = {0};
  pt_session *s;
  double cpu0 = cpu_us(RUSAGE_SELF) + cpu_us(RUSAGE_CHILDREN);
  if (open_session(transport, &s, &err) != PT_OK) return die("pt_session_open", &err);
  double *t = malloc(sizeof *t * (size_t)n);
  long long segs0 = 0;
  for (int i = 0; i < n + 50; i++) {
    if (i == 50) segs0 = tcp_out_segments();
    double t0 = now_s();
    pt_dataset *ds;
    if (pt_range(s, 0, rows, 1, &ds, &err) != PT_OK) return die("range", &err);
    struct ArrowArrayStream st;
    if (pt_collect(ds, &st, &err) != PT_OK) return die("collect", &err);
    int64_t got = 0;
    for (;;) {
      struct ArrowArray a;
      if (st.get_next(&st, &a) != 0 || a.release == NULL) break;
      got += a.length;
      a.release(&a);
    }
    st.release(&st);
    pt_dataset_free(ds);
    if (got != rows) return die("collect is short", NULL);
    if (i >= 50) t[i - 50] = (now_s() - t0) * 1e6;
  }
  long long segs = tcp_out_segments() - segs0;
  pt_session_close(s); /* its executors reaped: their CPU time is in RUSAGE_CHILDREN */
  double cpu = cpu_us(RUSAGE_SELF) + cpu_us(RUSAGE_CHILDREN) - cpu0;
  printf("{\"collect_p50_us\": %.1f, \"collect_p99_us\": %.1f, \"cpu_us_per_job\": %.1f, "
         "\"tcp_segments_per_job\": %.2f}\n",
         percentile(t, n, 50), percentile(t, n, 99), cpu / (n + 50), (double)segs / n);
  free(t);
  return 0;
}

static int fetch(const char *transport, int64_t mb, int repeats) {
  pt_error err = {0};
  char dir[] = "/tmp/pt-bench-fetch-XXXXXX", path[64];
  if (!mkdtemp(dir)) return die("mkdtemp", NULL);
  snprintf(path, sizeof path, "%s/shuffle-1-0-0.arrows", dir);
  size_t size = (size_t)mb << 20, chunk = (size_t)16 << 20;
  uint8_t *data = malloc(size), *got = malloc(size);
  if (!data || !got) return die("malloc", NULL);
  for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 31 + 7);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) return die("write", NULL);
  pt__secret secret = {.len = 5};
  memcpy(secret.bytes, "bench", 5);
  pt__tls_ctx *tls = NULL;
  if (strcmp(transport, "tls") == 0 &&
      pt__tls_ctx_new(getenv("PT_BENCH_TLS_CERT"), getenv("PT_BENCH_TLS_KEY"),
                      getenv("PT_BENCH_TLS_CA"), &tls, &err) != PT_OK)
    return die("tls", &err);
  pt__block_server *srv;
  if (pt__block_server_start(dir, &secret, tls, "127.0.0.1", &srv, &err) != PT_OK)
    return die("block server", &err);
  const char *addr = pt__block_server_address(srv);
  double best = 1e30, cpu0 = 0;
  for (int r = -1; r < repeats; r++) { /* r = -1: warm-up, the page cache filled */
    if (r == 0) cpu0 = cpu_us(RUSAGE_SELF);
    double t0 = now_s();
    for (size_t off = 0; off < size; off += chunk) {
      size_t n = size - off < chunk ? size - off : chunk;
      int unreachable = 0;
      if (pt__block_fetch(addr, &secret, tls, 10000, path, (int64_t)off, n, got + off, &unreachable,
                          &err) != PT_OK)
        return die("fetch", &err);
    }
    double dt = now_s() - t0;
    if (r >= 0 && dt < best) best = dt;
    if (memcmp(got, data, size) != 0) return die("fetched bytes differ", NULL);
  }
  double cpu_s = (cpu_us(RUSAGE_SELF) - cpu0) / 1e6;
  printf("{\"fetch_gb_per_s\": %.3f, \"cpu_s_per_gb\": %.3f}\n", (double)size / best / 1e9,
         cpu_s / ((double)size * repeats / 1e9));
  unlink(path);
  rmdir(dir);
  free(data);
  free(got);
  return 0;
}

static int results(const char *transport, int64_t mb, int repeats) {
  pt_error err = {0};
  pt_session *s;
  if (open_session(transport, &s, &err) != PT_OK) return die("pt_session_open", &err);
  int64_t rows = mb * (1 << 20) / 8;
  if (collect_sum(s, 100000, &err) != 0) return die("warm-up", &err);
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    if (collect_sum(s, rows, &err) != 0) return die("collect", &err);
    double dt = now_s() - t0;
    if (dt < best) best = dt;
  }
  pt_session_close(s);
  printf("{\"results_gb_per_s\": %.3f, \"bytes\": %lld}\n", (double)rows * 8 / best / 1e9,
         (long long)rows * 8);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "slurm_start") == 0) return slurm_start(atoi(argv[2]));
  if (argc >= 5 && strcmp(argv[1], "tasks") == 0)
    return tasks(argv[2], atoll(argv[3]), atoi(argv[4]));
  if (argc >= 4 && strcmp(argv[1], "latency") == 0) return latency(argv[2], atoi(argv[3]));
  if (argc >= 5 && strcmp(argv[1], "shuffle") == 0)
    return shuffle(argv[2], atoll(argv[3]), atoi(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "blocks") == 0)
    return blocks(argv[2], atoll(argv[3]), atoi(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "results") == 0)
    return results(argv[2], atoll(argv[3]), atoi(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "collect_latency") == 0)
    return collect_latency(argv[2], atoi(argv[3]), atoll(argv[4]));
  if (argc >= 5 && strcmp(argv[1], "fetch") == 0)
    return fetch(argv[2], atoll(argv[3]), atoi(argv[4]));
  if (argc >= 3 && strcmp(argv[1], "tcp_limit") == 0) return tcp_limit(atoll(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "check") == 0) return check(argv[2]);
  fprintf(stderr, "usage: cluster_bench tasks|latency|shuffle|tcp_limit|check ... (see the "
                  "source)\n");
  return 2;
}
