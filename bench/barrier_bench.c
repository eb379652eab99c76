/* barrier_bench.c — protium's side of `bench/run barrier`: barrier execution
 * mode on local[N] (N executors, one slot each), timed in C inside the
 * tasks and in the driver, so that no Python is in the timed region.
 *
 *   barrier_bench barrier N ITERS   ITERS back-to-back barrier() calls in
 *                                   each of N tasks: p50, p99 µs of a call
 *   barrier_bench gather N ITERS    all_gather of 1 KiB per task: p50 µs
 *   barrier_bench launch N R        R one-stage jobs: job submitted -> the
 *                                   last of its N tasks running, median ms
 *   barrier_bench recovery N R      one task SIGKILLs its executor; that
 *                                   moment -> the last of the N tasks of the
 *                                   next attempt running, median ms of R
 *   barrier_bench star N ITERS      the floor of any coordinator: N processes
 *                                   each send one byte to a parent over a
 *                                   unix socket, which answers all once it
 *                                   has all N: p50 µs of a round, no engine
 *
 * Each prints one JSON object on stdout.
 */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protium.h"

typedef struct bench_arg {
  int64_t mode;        /* 0 barrier, 1 gather, 2 launch, 3 recovery */
  int64_t iters;
  char kill_file[512]; /* recovery: where the killed task writes its time */
} bench_arg;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* system-wide: comparable across processes */
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One int64 column "v". */
static int v_schema(struct ArrowSchema *s, pt_error *err) {
  if (pt_schema_init(s, "+s", "", 0, 1, err) != PT_OK) return err->code;
  if (pt_schema_init(s->children[0], "l", "v", 0, 0, err) != PT_OK) {
    s->release(s);
    return err->code;
  }
  return PT_OK;
}

static int emit_values(const pt_task_context *ctx, const int64_t *v, int64_t n, pt_error *err) {
  struct ArrowSchema s;
  pt_builder *b;
  int rc = v_schema(&s, err);
  if (rc != PT_OK) return rc;
  rc = pt_builder_new(&s, &b, err);
  s.release(&s);
  if (rc != PT_OK) return rc;
  for (int64_t i = 0; i < n && rc == PT_OK; i++) {
    rc = pt_builder_append_int(pt_builder_child(b, 0), v[i]);
    if (rc == PT_OK) rc = pt_builder_append_row(b);
  }
  struct ArrowArray out;
  if (rc == PT_OK) rc = pt_builder_finish(b, &out, err);
  pt_builder_free(b);
  return rc == PT_OK ? pt_ctx_emit(ctx, &out, err) : rc;
}

/* Runs in the executors. Emits what it measured: call times (ns) for
 * barrier and gather, its start time for launch and recovery. */
static int bench_task(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *arg,
                      size_t arg_size, pt_error *err) {
  int64_t start = now_ns();
  bench_arg a;
  memcpy(&a, arg, sizeof a);
  if (a.mode == 2 || (a.mode == 3 && pt_ctx_stage_attempt(ctx) > 0))
    return emit_values(ctx, &start, 1, err);
  if (a.mode == 3) {
    /* attempt 0: everyone meets once, then the last task dies */
    int rc = pt_ctx_barrier(ctx, err);
    if (rc != PT_OK) return rc;
    if (pt_ctx_partition_id(ctx) == pt_ctx_num_tasks(ctx) - 1) {
      char line[32];
      int n = snprintf(line, sizeof line, "%lld\n", (long long)now_ns());
      int fd = open(a.kill_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || write(fd, line, (size_t)n) != n) return PT_EIO;
      close(fd);
      kill(getpid(), SIGKILL);
    }
    return pt_ctx_barrier(ctx, err); /* fails: the peer is gone */
  }
  int64_t *t = malloc((size_t)a.iters * sizeof *t);
  size_t sizes[64];
  char payload[1024];
  memset(payload, (int)pt_ctx_partition_id(ctx), sizeof payload);
  int rc = PT_OK;
  for (int64_t i = 0; i < a.iters + 20 && rc == PT_OK; i++) { /* 20 to warm up */
    int64_t t0 = now_ns();
    if (a.mode == 0) {
      rc = pt_ctx_barrier(ctx, err);
    } else {
      void *all;
      rc = pt_ctx_all_gather(ctx, payload, sizeof payload, &all, sizes, err);
      if (rc == PT_OK) free(all);
    }
    if (i >= 20) t[i - 20] = now_ns() - t0;
  }
  if (rc == PT_OK) rc = emit_values(ctx, t, a.iters, err);
  free(t);
  return rc;
}
PT_REGISTER_FN(bench_task)

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int64_t pct(int64_t *v, int64_t n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp_i64);
  int64_t i = (int64_t)ceil(p / 100.0 * (double)n) - 1;
  return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int die(const char *what, const pt_error *err) {
  fprintf(stderr, "barrier_bench: %s: %s\n", what, err ? err->message : "failed");
  return 1;
}

/* Runs one barrier job of n tasks; *v (malloc'd) gets every emitted value. */
static int run_job(pt_session *s, int64_t n, const bench_arg *a, int64_t **v, int64_t *nv,
                   pt_error *err) {
  pt_dataset *r = NULL, *b = NULL, *m = NULL;
  struct ArrowSchema sch = {0};
  struct ArrowArrayStream st = {0};
  *v = NULL;
  *nv = 0;
  int rc = pt_range(s, 0, n, n, &r, err);
  if (rc == PT_OK) rc = pt_barrier(r, &b, err);
  if (rc == PT_OK) rc = v_schema(&sch, err);
  if (rc == PT_OK) rc = pt_map_partitions(b, bench_task, &sch, a, sizeof *a, &m, err);
  if (rc == PT_OK) rc = pt_collect(m, &st, err);
  struct ArrowArray batch;
  while (rc == PT_OK && st.get_next(&st, &batch) == 0 && batch.release) {
    *v = realloc(*v, (size_t)(*nv + batch.length) * sizeof **v);
    const struct ArrowArray *c = batch.children[0];
    memcpy(*v + *nv, (const int64_t *)c->buffers[1] + c->offset + batch.offset,
           (size_t)batch.length * sizeof **v);
    *nv += batch.length;
    batch.release(&batch);
  }
  if (st.release) st.release(&st);
  if (sch.release) sch.release(&sch);
  pt_dataset_free(m);
  pt_dataset_free(b);
  pt_dataset_free(r);
  return rc;
}

/* A bare star barrier: the least a driver-centred barrier() costs here. */
static int star(int n, int iters) {
  if (n < 1 || n > 64) return die("star: N must be 1..64", NULL);
  int fds[64][2];
  pid_t pids[64];
  for (int i = 0; i < n; i++)
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i]) != 0) return die("socketpair", NULL);
  int out[2];
  if (pipe(out) != 0) return die("pipe", NULL);
  for (int i = 0; i < n; i++) {
    if ((pids[i] = fork()) < 0) return die("fork", NULL);
    if (pids[i] > 0) continue;
    int64_t *t = malloc((size_t)iters * sizeof *t);
    char c = 'x';
    for (int k = 0; k < iters + 20; k++) {
      int64_t t0 = now_ns();
      if (write(fds[i][1], &c, 1) != 1 || read(fds[i][1], &c, 1) != 1) _exit(1);
      if (k >= 20) t[k - 20] = now_ns() - t0;
    }
    if (i == 0) {
      int64_t p50 = pct(t, iters, 50);
      if (write(out[1], &p50, sizeof p50) != sizeof p50) _exit(1);
    }
    _exit(0);
  }
  struct pollfd p[64];
  for (int i = 0; i < n; i++) p[i] = (struct pollfd){.fd = fds[i][0], .events = POLLIN};
  for (int k = 0; k < iters + 20; k++) {
    char seen[64] = {0}, c = 'x';
    for (int got = 0; got < n;) {
      if (poll(p, (nfds_t)n, 10000) <= 0) return die("star: a child is silent", NULL);
      for (int i = 0; i < n; i++)
        if (!seen[i] && (p[i].revents & POLLIN) && read(fds[i][0], &c, 1) == 1) seen[i] = 1, got++;
    }
    for (int i = 0; i < n; i++)
      if (write(fds[i][0], &c, 1) != 1) return die("star: write", NULL);
  }
  int64_t p50 = 0;
  if (read(out[0], &p50, sizeof p50) != sizeof p50) return die("star: no result", NULL);
  for (int i = 0; i < n; i++) waitpid(pids[i], NULL, 0);
  printf("{\"p50_us\": %.2f}\n", p50 / 1e3);
  return 0;
}

static int open_n(int64_t n, pt_session **s, pt_error *err) {
  char master[32];
  snprintf(master, sizeof master, "local[%lld]", (long long)n);
  return pt_session_open(master, NULL, s, err);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: barrier_bench barrier|gather|launch|recovery|star N ITERS\n");
    return 2;
  }
  const char *mode = argv[1];
  int64_t n = atoll(argv[2]), iters = atoll(argv[3]);
  if (strcmp(mode, "star") == 0) return star((int)n, (int)iters);
  pt_error err = {0};
  pt_session *s;
  if (open_n(n, &s, &err) != PT_OK) return die("session", &err);
  bench_arg a;
  memset(&a, 0, sizeof a);
  a.iters = iters;
  int64_t *v, nv;
  int rc = 0;
  if (strcmp(mode, "barrier") == 0 || strcmp(mode, "gather") == 0) {
    a.mode = strcmp(mode, "barrier") == 0 ? 0 : 1;
    if (run_job(s, n, &a, &v, &nv, &err) != PT_OK) rc = die(mode, &err);
    else {
      printf("{\"p50_us\": %.2f, \"p99_us\": %.2f}\n", pct(v, nv, 50) / 1e3,
             pct(v, nv, 99) / 1e3);
      free(v);
    }
  } else if (strcmp(mode, "launch") == 0 || strcmp(mode, "recovery") == 0) {
    a.mode = strcmp(mode, "launch") == 0 ? 2 : 3;
    snprintf(a.kill_file, sizeof a.kill_file, "%s/barrier-bench-%d.kill",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    int64_t *ms = calloc((size_t)iters + 1, sizeof *ms);
    for (int64_t r = 0; r < iters + 1 && rc == 0; r++) { /* the first one warms up */
      int64_t t0 = now_ns();
      if (run_job(s, n, &a, &v, &nv, &err) != PT_OK) {
        rc = die(mode, &err);
        break;
      }
      if (a.mode == 3) {
        FILE *f = fopen(a.kill_file, "r");
        long long k = 0;
        if (!f || fscanf(f, "%lld", &k) != 1) rc = die("recovery: no kill time", NULL);
        if (f) fclose(f);
        t0 = k;
      }
      int64_t last = 0;
      for (int64_t i = 0; i < nv; i++) last = v[i] > last ? v[i] : last;
      free(v);
      if (r > 0) ms[r - 1] = last - t0;
    }
    unlink(a.kill_file);
    if (rc == 0) printf("{\"ms\": %.3f}\n", pct(ms, iters, 50) / 1e6);
    free(ms);
  } else {
    rc = die("unknown mode", NULL);
  }
  pt_session_close(s);
  return rc;
}
