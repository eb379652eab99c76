/* chaos.c — the fault campaign: runs a job with two shuffles and write_ipc
 * over a million rows, again and again, while a chaos thread, at moments
 * drawn from a seeded generator, SIGKILLs or SIGSTOPs executors, fails
 * tasks, deletes shuffle files and fills the disk. Each run must end within
 * a bound, with every row exactly once in the output or no output at all,
 * no process and no temporary file left. A failing run prints its seed
 * (replay: --seed S --runs 1); the last line is the campaign's JSON.
 *
 * Usage: chaos --dir DIR [--runs N] [--seed S] [--rows R] [--disk-full]
 * DIR holds the sessions and outputs; --disk-full: DIR is a small file
 * system of its own (a tmpfs) that the chaos may fill.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "protium.h"

/* A job that runs longer than this (faults included) is a failure. */
#define JOB_BOUND_S 120

enum { F_KILL, F_STOP, F_FAIL_TASK, F_DELETE_SHUFFLE, F_DISK_FULL, N_FAULTS };
static const char *const FAULT_NAMES[N_FAULTS] = {"kill_executor", "stop_executor", "fail_task",
                                                  "delete_shuffle_file", "disk_full"};

/* ------------------------------------------------------------------------ */
/* User functions. A task fails when it can take the token file named by
 * arg (the chaos thread creates it): "kill a task" from the outside. */

static int take_token(const void *arg, size_t arg_size) {
  char path[4096], claimed[4200];
  snprintf(path, sizeof path, "%.*s", (int)arg_size, (const char *)arg);
  snprintf(claimed, sizeof claimed, "%s.%d", path, (int)getpid());
  if (rename(path, claimed) != 0) return 0; /* none, or another task took it */
  unlink(claimed);
  return 1;
}

/* id -> (id, key = id * 7919 % 1000, payload = id ^ key) */
static int widen(const pt_task_context *ctx, const struct ArrowSchema *schema,
                 const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                 size_t arg_size, pt_error *err) {
  if (take_token(arg, arg_size)) {
    snprintf(err->message, sizeof err->message, "chaos: task failed on purpose");
    return PT_EIO;
  }
  struct ArrowSchema os;
  pt_builder *b;
  int rc = pt_schema_init(&os, "+s", "", 0, 3, err);
  if (rc != PT_OK) return rc;
  const char *names[3] = {"id", "key", "payload"};
  for (int i = 0; i < 3 && rc == PT_OK; i++)
    rc = pt_schema_init(os.children[i], "l", names[i], 0, 0, err);
  if (rc == PT_OK) rc = pt_builder_new(&os, &b, err);
  os.release(&os);
  if (rc != PT_OK) return rc;
  const struct ArrowArray *c = batch->children[0];
  const int64_t *id = (const int64_t *)c->buffers[1] + c->offset + batch->offset;
  for (int64_t i = 0; i < batch->length && rc == PT_OK; i++) {
    int64_t key = id[i] * 7919 % 1000;
    rc = pt_builder_append_int(pt_builder_child(b, 0), id[i]);
    if (rc == PT_OK) rc = pt_builder_append_int(pt_builder_child(b, 1), key);
    if (rc == PT_OK) rc = pt_builder_append_int(pt_builder_child(b, 2), id[i] ^ key);
    if (rc == PT_OK) rc = pt_builder_append_row(b);
  }
  if (rc == PT_OK) rc = pt_builder_finish(b, out, err);
  pt_builder_free(b);
  return rc;
}
PT_REGISTER_FN(widen)

static int pass(const pt_task_context *ctx, const struct ArrowSchema *schema,
                const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                size_t arg_size, pt_error *err) {
  if (take_token(arg, arg_size)) {
    snprintf(err->message, sizeof err->message, "chaos: task failed on purpose");
    return PT_EIO;
  }
  return pt_array_copy(schema, batch, out, err);
}
PT_REGISTER_FN(pass)

/* ------------------------------------------------------------------------ */
/* Seeded randomness (splitmix64). */

static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}
static int64_t below(uint64_t *s, int64_t n) { return (int64_t)(next_u64(s) % (uint64_t)n); }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------ */
/* The chaos thread */

#define MAX_PIDS 4096

typedef struct chaos {
  pt_session *s;
  uint64_t rng;
  const char *dir;          /* the run's directory */
  const char *token;        /* fail-task token path */
  int disk_full;            /* may fill the file system of dir */
  atomic_int done;          /* the job has ended */
  double started;
  int64_t faults[N_FAULTS];
  int64_t pids[MAX_PIDS];   /* every executor pid seen */
  int n_pids;
} chaos;

static void note_pids(chaos *c, const pt_executor_info *info, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    int seen = 0;
    for (int k = 0; k < c->n_pids && !seen; k++) seen = c->pids[k] == info[i].pid;
    if (!seen && c->n_pids < MAX_PIDS) c->pids[c->n_pids++] = info[i].pid;
  }
}

/* Fills the file system of dir for a moment: a file written until ENOSPC,
 * kept for 20-150 ms, removed. */
static int fill_disk(chaos *c) {
  char path[4200];
  snprintf(path, sizeof path, "%s/ballast", c->dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  static char block[1 << 20];
  int full = 0;
  while (!full) {
    ssize_t n = write(fd, block, sizeof block);
    full = n < (ssize_t)sizeof block;
  }
  close(fd);
  usleep((useconds_t)(20000 + below(&c->rng, 130000)));
  unlink(path);
  return 1;
}

static int delete_shuffle_file(chaos *c) {
  char pattern[4200];
  snprintf(pattern, sizeof pattern, "%s/protium-*/exec-*/shuffle-*.arrows", c->dir);
  glob_t g;
  if (glob(pattern, 0, NULL, &g) != 0) return 0;
  int done = unlink(g.gl_pathv[below(&c->rng, (int64_t)g.gl_pathc)]) == 0;
  globfree(&g);
  return done;
}

static void *chaos_main(void *arg) {
  chaos *c = arg;
  /* each run its own pace: a fault every 5 to 5 + [20, 150) ms */
  int64_t pace = 20000 + below(&c->rng, 130000);
  while (!atomic_load(&c->done)) {
    usleep((useconds_t)(5000 + below(&c->rng, pace)));
    if (atomic_load(&c->done)) break;
    pt_executor_info info[64];
    int64_t n = 0;
    if (pt_session_executors(c->s, info, 64, &n, NULL) != PT_OK) continue;
    if (n > 64) n = 64;
    note_pids(c, info, n);
    int kind = (int)below(&c->rng, c->disk_full ? N_FAULTS : N_FAULTS - 1);
    int injected = 0;
    switch (kind) {
      case F_KILL:
      case F_STOP:
        if (n > 0) {
          pid_t pid = (pid_t)info[below(&c->rng, n)].pid;
          injected = kill(pid, kind == F_KILL ? SIGKILL : SIGSTOP) == 0;
          /* half the stopped ones resume before the heartbeat timeout */
          if (injected && kind == F_STOP && below(&c->rng, 2)) {
            usleep(200000);
            kill(pid, SIGCONT);
          }
        }
        break;
      case F_FAIL_TASK: {
        int fd = open(c->token, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) close(fd);
        injected = fd >= 0;
        break;
      }
      case F_DELETE_SHUFFLE: injected = delete_shuffle_file(c); break;
      case F_DISK_FULL: injected = fill_disk(c); break;
    }
    c->faults[kind] += injected;
    if (now_s() - c->started > JOB_BOUND_S) {
      fprintf(stderr, "chaos: the job did not end within %d s\n", JOB_BOUND_S);
      fflush(NULL);
      _exit(3); /* the caller prints the seed it started */
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Checks */

typedef struct totals {
  int64_t runs, succeeded, failed_cleanly, rows_lost, rows_duplicated, orphans, temp_left,
      bad_runs;
  int64_t faults[N_FAULTS];
} totals;

/* Reads every part file of out; counts, per id in [0, rows), how often it
 * appears, and checks key and payload. *bad: rows that are not ours. */
static int check_output(const char *out, int64_t rows, int64_t *lost, int64_t *dup, char *why,
                        size_t why_n) {
  uint8_t *seen = calloc((size_t)rows, 1);
  if (!seen) return snprintf(why, why_n, "out of memory"), -1;
  char pattern[4300];
  snprintf(pattern, sizeof pattern, "%s/part-*.arrow", out);
  glob_t g;
  int rc = 0;
  if (glob(pattern, 0, NULL, &g) != 0) g.gl_pathc = 0;
  for (size_t f = 0; f < g.gl_pathc && rc == 0; f++) {
    struct ArrowArrayStream st;
    pt_error err = {0};
    if (pt_ipc_read_path(g.gl_pathv[f], &st, &err) != PT_OK) {
      snprintf(why, why_n, "%.300s: %.600s", g.gl_pathv[f], err.message);
      rc = -1;
      break;
    }
    struct ArrowArray b;
    while (rc == 0 && st.get_next(&st, &b) == 0 && b.release) {
      const int64_t *col[3];
      for (int k = 0; k < 3; k++)
        col[k] = (const int64_t *)b.children[k]->buffers[1] + b.children[k]->offset + b.offset;
      for (int64_t i = 0; i < b.length; i++) {
        int64_t id = col[0][i];
        if (id < 0 || id >= rows || col[1][i] != id * 7919 % 1000 ||
            col[2][i] != (id ^ col[1][i])) {
          snprintf(why, why_n, "a row that was never written: id %lld", (long long)id);
          rc = -1;
          break;
        }
        if (seen[id] < 255) seen[id]++;
      }
      b.release(&b);
    }
    st.release(&st);
  }
  if (g.gl_pathc) globfree(&g);
  for (int64_t i = 0; i < rows && rc == 0; i++) {
    if (seen[i] == 0) (*lost)++;
    else if (seen[i] > 1) *dup += seen[i] - 1;
  }
  free(seen);
  return rc;
}

/* Entries under dir (recursively), "_SUCCESS" and part files aside when
 * keep_output. */
static int count_files(const char *dir, int keep_output) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (keep_output && (!strcmp(e->d_name, "_SUCCESS") || !strncmp(e->d_name, "part-", 5)))
      continue;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) n += count_files(path, 0);
    n++;
  }
  closedir(d);
  return n;
}

static void rm_tree(const char *dir) {
  char cmd[4300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "chaos: cannot remove %s\n", dir);
}

/* ------------------------------------------------------------------------ */
/* One run */

static int one_run(const char *root, uint64_t seed, int64_t rows, int disk_full, totals *t) {
  char dir[4096], out[4200], token[4200], why[PT_ERROR_SIZE] = "";
  snprintf(dir, sizeof dir, "%s/run-%llu", root, (unsigned long long)seed);
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(token, sizeof token, "%s/fail-token", dir);
  rm_tree(dir);
  if (mkdir(dir, 0700) != 0) {
    fprintf(stderr, "chaos: cannot create %s: %s\n", dir, strerror(errno));
    return -1;
  }
  chaos c = {.rng = seed, .dir = dir, .token = token, .disk_full = disk_full};
  uint64_t plan = seed ^ 0x5eed;
  int n_exec = 2 + (int)below(&plan, 3);
  pt_conf *conf = NULL;
  pt_error err = {0};
  int rc = pt_conf_new(&conf, &err);
  const char *kv[][2] = {
      {"local.dir", dir},
      {"executor.heartbeat_interval", "100ms"},
      {"executor.heartbeat_timeout", "1s"},
      {"executor.start_timeout", "10s"},
      {"task.max_failures", "6"},
      {"stage.max_attempts", "8"},
      {"range.batch_rows", "4096"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0] && rc == PT_OK; i++)
    rc = pt_conf_set(conf, kv[i][0], kv[i][1], &err);
  char master[32];
  snprintf(master, sizeof master, "local[%d]", n_exec);
  if (rc == PT_OK) rc = pt_session_open(master, conf, &c.s, &err);
  pt_conf_free(conf);
  if (rc != PT_OK) {
    fprintf(stderr, "chaos: seed %llu: session: %s\n", (unsigned long long)seed, err.message);
    return -1;
  }
  pt_executor_info info[8];
  int64_t n = 0;
  pt_session_executors(c.s, info, 8, &n, NULL);
  note_pids(&c, info, n < 8 ? n : 8);

  pt_dataset *r = NULL, *w = NULL, *s1 = NULL, *m = NULL, *s2 = NULL;
  struct ArrowSchema os;
  rc = pt_schema_init(&os, "+s", "", 0, 3, &err);
  const char *names[3] = {"id", "key", "payload"};
  for (int i = 0; i < 3 && rc == PT_OK; i++)
    rc = pt_schema_init(os.children[i], "l", names[i], 0, 0, &err);
  const char *keys[] = {"key"};
  if (rc == PT_OK) rc = pt_range(c.s, 0, rows, 32, &r, &err);
  if (rc == PT_OK) rc = pt_map_batches(r, widen, &os, token, strlen(token), &w, &err);
  if (rc == PT_OK) rc = pt_repartition(w, 24, &s1, &err);
  if (rc == PT_OK) rc = pt_map_batches(s1, pass, NULL, token, strlen(token), &m, &err);
  if (rc == PT_OK) rc = pt_repartition_by(m, 16, keys, 1, &s2, &err);
  if (os.release) os.release(&os);
  if (rc != PT_OK) {
    fprintf(stderr, "chaos: seed %llu: plan: %s\n", (unsigned long long)seed, err.message);
    return -1;
  }

  c.started = now_s();
  pthread_t th;
  pthread_create(&th, NULL, chaos_main, &c);
  int job_rc = pt_write_ipc(s2, out, NULL, &err);
  double took = now_s() - c.started;
  atomic_store(&c.done, 1);
  pthread_join(th, NULL);
  pt_job_stats *js = NULL;
  int64_t lost_execs = 0, retried = 0;
  if (pt_dataset_last_job(s2, &js, NULL) == PT_OK) {
    pt_stage_stats tot;
    pt_job_stats_total(js, &tot);
    lost_execs = js->executors_lost;
    retried = tot.tasks_retried;
    pt_job_stats_free(js);
  }
  pt_session_executors(c.s, info, 8, &n, NULL);
  note_pids(&c, info, n < 8 ? n : 8);
  pt_dataset_free(s2);
  pt_dataset_free(m);
  pt_dataset_free(s1);
  pt_dataset_free(w);
  pt_dataset_free(r);
  for (int k = 0; k < c.n_pids; k++) kill((pid_t)c.pids[k], SIGCONT); /* stopped ones must go */
  pt_session_close(c.s);

  /* The checks */
  int bad = 0;
  int64_t lost = 0, dup = 0, orphans = 0;
  if (job_rc == PT_OK) {
    if (check_output(out, rows, &lost, &dup, why, sizeof why) != 0) bad = 1;
    else if (lost || dup)
      snprintf(why, sizeof why, "%lld rows lost, %lld duplicated", (long long)lost,
               (long long)dup), bad = 1;
  } else {
    int left = count_files(out, 0);
    if (!err.message[0] || job_rc < PT_EINVAL || job_rc > PT_ECANCELED)
      snprintf(why, sizeof why, "failed with code %d and message '%.600s'", job_rc, err.message),
          bad = 1;
    else if (left)
      snprintf(why, sizeof why, "failed (%.600s) but left %d entries in the output", err.message,
               left), bad = 1;
  }
  for (int k = 0; k < c.n_pids; k++)
    if (kill((pid_t)c.pids[k], 0) == 0 || errno != ESRCH) orphans++;
  if (orphans && !bad) snprintf(why, sizeof why, "%lld executor processes left", (long long)orphans),
                       bad = 1;
  /* temporary files: everything in the run directory but the output */
  int temp = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "out"))
      continue;
    if (!strncmp(e->d_name, "fail-token", 10)) continue; /* ours, not the engine's */
    temp++;
  }
  if (d) closedir(d);
  temp += count_files(out, 1);
  if (temp && !bad) snprintf(why, sizeof why, "%d temporary files left", temp), bad = 1;

  t->runs++;
  t->succeeded += job_rc == PT_OK;
  t->failed_cleanly += job_rc != PT_OK && !bad;
  t->rows_lost += lost;
  t->rows_duplicated += dup;
  t->orphans += orphans;
  t->temp_left += temp;
  t->bad_runs += bad;
  for (int k = 0; k < N_FAULTS; k++) t->faults[k] += c.faults[k];
  printf("run seed=%llu executors=%d %s %.1fs faults=%lld/%lld/%lld/%lld/%lld lost_executors=%lld "
         "retried=%lld%s%s\n",
         (unsigned long long)seed, n_exec, job_rc == PT_OK ? "ok" : "failed", took,
         (long long)c.faults[0], (long long)c.faults[1], (long long)c.faults[2],
         (long long)c.faults[3], (long long)c.faults[4], (long long)lost_execs, (long long)retried,
         job_rc == PT_OK ? "" : ": ", job_rc == PT_OK ? "" : err.message);
  if (bad) printf("FAILED seed=%llu: %s (replay: --seed %llu --runs 1)\n", (unsigned long long)seed,
                  why, (unsigned long long)seed);
  fflush(stdout);
  rm_tree(dir);
  return bad;
}

int main(int argc, char **argv) {
  const char *root = NULL;
  int64_t runs = 10, rows = 1000000;
  uint64_t seed = (uint64_t)time(NULL);
  int disk_full = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc) root = argv[++i];
    else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--disk-full")) disk_full = 1;
    else {
      fprintf(stderr, "usage: chaos --dir DIR [--runs N] [--seed S] [--rows R] [--disk-full]\n");
      return 2;
    }
  }
  if (!root || runs < 1 || rows < 1) {
    fprintf(stderr, "chaos: --dir is required; runs and rows >= 1\n");
    return 2;
  }
  if (!disk_full) printf("chaos: disk-full faults off (no file system of its own for --dir)\n");
  printf("chaos: %lld runs from seed %llu, %lld rows each\n", (long long)runs,
         (unsigned long long)seed, (long long)rows);
  totals t = {0};
  for (int64_t i = 0; i < runs; i++) {
    printf("chaos: starting seed=%llu\n", (unsigned long long)(seed + (uint64_t)i));
    fflush(stdout);
    one_run(root, seed + (uint64_t)i, rows, disk_full, &t);
  }
  printf("{\"bench\": \"chaos\", \"metrics\": {\"runs\": %lld", (long long)t.runs);
  for (int k = 0; k < N_FAULTS; k++)
    printf(", \"faults.%s\": %lld", FAULT_NAMES[k], (long long)t.faults[k]);
  printf(", \"jobs_succeeded\": %lld, \"jobs_failed_cleanly\": %lld, \"rows_lost\": %lld, "
         "\"rows_duplicated\": %lld, \"orphans\": %lld, \"temp_files_left\": %lld, "
         "\"bad_runs\": %lld}}\n",
         (long long)t.succeeded, (long long)t.failed_cleanly, (long long)t.rows_lost,
         (long long)t.rows_duplicated, (long long)t.orphans, (long long)t.temp_left,
         (long long)t.bad_runs);
  return t.bad_runs ? 1 : 0;
}
