/* barrier_mpi.c — a hybrid job: a barrier stage whose partition 0 writes an
 * MPI hostfile from the task infos and runs an OpenMPI program
 * (examples/mpi/allreduce.c: MPI_Allreduce across N ranks) with mpirun —
 * or, inside a Slurm allocation (master "slurm", one task per executor),
 * with `srun --mpi=pmix` on the tasks' nodes, no SSH between them —
 * while the other tasks wait at barrier(); the result reaches every task by
 * all_gather and comes out as the stage's rows. With "fail" as its second
 * argument the MPI program crashes in the first attempt: the stage runs
 * again, whole, and the result comes from attempt 1. Run by the test suite;
 * built only where CMake finds MPI (PT_MPIRUN, PT_MPI_PROGRAM).
 */
#include <protium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#ifndef PT_MPIRUN
#define PT_MPIRUN ""
#define PT_MPI_PROGRAM ""
#endif

extern char **environ;

typedef struct mpi_arg {
  int fail_first; /* the MPI program fails in stage attempt 0 */
} mpi_arg;

/* struct<partition: int64, stage_attempt: int64, allreduce: int64> */
static int out_schema(struct ArrowSchema *s, pt_error *err) {
  const char *names[] = {"partition", "stage_attempt", "allreduce"};
  if (pt_schema_init(s, "+s", "", 0, 3, err) != PT_OK) return err->code;
  for (int i = 0; i < 3; i++)
    if (pt_schema_init(s->children[i], "l", names[i], 0, 0, err) != PT_OK) {
      s->release(s);
      return err->code;
    }
  return PT_OK;
}

static int failf(pt_error *err, int code, const char *fmt, const char *a) {
  snprintf(err->message, sizeof err->message, fmt, (int)(sizeof err->message / 2), a);
  return err->code = code;
}

/* Partition 0: hostfile from the task infos, then mpirun, waited for. */
static int run_mpirun(const pt_task_context *ctx, const mpi_arg *a, int64_t *result,
                      pt_error *err) {
  const pt_task_info *infos;
  int64_t n;
  const char *dir;
  int rc = pt_ctx_task_infos(ctx, &infos, &n, err);
  if (rc == PT_OK) rc = pt_ctx_checkpoint_dir(ctx, &dir, err);
  if (rc != PT_OK) return rc;
  char hostfile[4200], out[4200], np[32];
  snprintf(hostfile, sizeof hostfile, "%s/hostfile", dir);
  snprintf(out, sizeof out, "%s/allreduce-%lld.out", dir, (long long)pt_ctx_stage_attempt(ctx));
  snprintf(np, sizeof np, "%lld", (long long)n);
  FILE *f = fopen(hostfile, "w");
  if (!f) return failf(err, PT_EIO, "cannot write the hostfile '%.*s'", hostfile);
  /* One line per host, with as many slots as tasks there: one rank per task. */
  for (int64_t i = 0; i < n; i++) {
    int64_t first = 0, slots = 0;
    while (strcmp(infos[first].host, infos[i].host) != 0) first++;
    if (first < i) continue; /* that host has its line */
    for (int64_t j = i; j < n; j++) slots += strcmp(infos[j].host, infos[i].host) == 0;
    fprintf(f, "%s slots=%lld\n", infos[i].host, (long long)slots);
  }
  fclose(f);
  int fail = a->fail_first && pt_ctx_stage_attempt(ctx) == 0;
  char *argv[] = {PT_MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", np,
                  "--hostfile", hostfile, PT_MPI_PROGRAM, out, fail ? "fail" : "ok", NULL};
  /* Under Slurm: a step of the allocation on the tasks' nodes, sharing
   * their CPUs (--overlap); Slurm's PMIx plugin wires the ranks up. */
  char nodes[32], nodelist[4096] = "--nodelist=";
  int n_nodes = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t first = 0;
    while (strcmp(infos[first].host, infos[i].host) != 0) first++;
    if (first < i) continue;
    if (n_nodes++) strncat(nodelist, ",", sizeof nodelist - strlen(nodelist) - 1);
    strncat(nodelist, infos[i].host, sizeof nodelist - strlen(nodelist) - 1);
  }
  snprintf(nodes, sizeof nodes, "--nodes=%d", n_nodes);
  char ntasks[40];
  snprintf(ntasks, sizeof ntasks, "--ntasks=%lld", (long long)n);
  char *srun_argv[] = {"srun", "--mpi=pmix", "--overlap", "--quiet", nodes, ntasks, nodelist,
                       PT_MPI_PROGRAM, out, fail ? "fail" : "ok", NULL};
  int slurm = getenv("SLURM_JOB_ID") != NULL;
  pid_t pid;
  if (slurm ? posix_spawnp(&pid, "srun", NULL, NULL, srun_argv, environ) != 0
            : posix_spawn(&pid, PT_MPIRUN, NULL, NULL, argv, environ) != 0)
    return failf(err, PT_EIO, "cannot start %.*s", slurm ? "srun" : PT_MPIRUN);
  int status;
  while (waitpid(pid, &status, 0) < 0) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return failf(err, PT_EIO, "%.*s: the MPI job failed", slurm ? "srun" : PT_MPIRUN);
  f = fopen(out, "r");
  long long sum = 0;
  int size = 0;
  if (!f || fscanf(f, "%lld %d", &sum, &size) != 2 || size != n) {
    if (f) fclose(f);
    return failf(err, PT_EIO, "the MPI job wrote no result to '%.*s'", out);
  }
  fclose(f);
  *result = sum;
  return PT_OK;
}

static int mpi_stage(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *arg,
                     size_t arg_size, pt_error *err) {
  (void)input;
  mpi_arg a = {0};
  if (arg_size == sizeof a) memcpy(&a, arg, sizeof a);
  int64_t result = 0;
  int rc = PT_OK;
  if (pt_ctx_partition_id(ctx) == 0) rc = run_mpirun(ctx, &a, &result, err);
  if (rc != PT_OK) return rc; /* the others' barrier() fails: the stage reruns */
  rc = pt_ctx_barrier(ctx, err); /* the other tasks wait here for the MPI job */
  void *all = NULL;
  size_t sizes[256];
  if (rc == PT_OK && pt_ctx_num_tasks(ctx) <= 256)
    rc = pt_ctx_all_gather(ctx, &result, pt_ctx_partition_id(ctx) == 0 ? sizeof result : 0,
                           &all, sizes, err);
  if (rc != PT_OK) return rc;
  memcpy(&result, all, sizeof result); /* partition 0's payload comes first */
  free(all);
  struct ArrowSchema s;
  pt_builder *b;
  if ((rc = out_schema(&s, err)) != PT_OK) return rc;
  rc = pt_builder_new(&s, &b, err);
  s.release(&s);
  if (rc != PT_OK) return rc;
  int64_t row[3] = {pt_ctx_partition_id(ctx), pt_ctx_stage_attempt(ctx), result};
  for (int c = 0; c < 3; c++) pt_builder_append_int(pt_builder_child(b, c), row[c]);
  pt_builder_append_row(b);
  struct ArrowArray out;
  rc = pt_builder_finish(b, &out, err);
  pt_builder_free(b);
  return rc == PT_OK ? pt_ctx_emit(ctx, &out, err) : rc;
}
PT_REGISTER_FN(mpi_stage)

int main(int argc, char **argv) {
  if (!PT_MPIRUN[0]) {
    printf("skipped: CMake found no MPI (install openmpi-bin and libopenmpi-dev: "
           "scripts/setup.sh)\n");
    return 77;
  }
  mpi_arg a = {.fail_first = argc > 2 && strcmp(argv[2], "fail") == 0};
  int64_t n = 3;
  pt_error err = {0};
  pt_session *s = NULL;
  pt_dataset *range = NULL, *gang = NULL, *mpi = NULL;
  struct ArrowSchema schema = {0};
  struct ArrowArrayStream rows = {0};
  int rc = 1;
  /* Inside an allocation: one task per executor Slurm started. */
  const char *master = getenv("SLURM_JOB_ID") ? "slurm" : "local[3]";
  if (pt_session_open(master, NULL, &s, &err) != PT_OK ||
      (strcmp(master, "slurm") == 0 && pt_session_executors(s, NULL, 0, &n, &err) != PT_OK) ||
      pt_range(s, 0, n, n, &range, &err) != PT_OK || pt_barrier(range, &gang, &err) != PT_OK ||
      out_schema(&schema, &err) != PT_OK ||
      pt_map_partitions(gang, mpi_stage, &schema, &a, sizeof a, &mpi, &err) != PT_OK ||
      pt_collect(mpi, &rows, &err) != PT_OK) {
    fprintf(stderr, "error: %s\n", err.message);
    goto done;
  }
  int64_t seen = 0, good = 0, want_attempt = a.fail_first ? 1 : 0;
  struct ArrowArray b;
  while (rows.get_next(&rows, &b) == 0 && b.release) {
    for (int64_t i = 0; i < b.length; i++) {
      int64_t att = ((const int64_t *)b.children[1]->buffers[1])[b.offset + i];
      int64_t sum = ((const int64_t *)b.children[2]->buffers[1])[b.offset + i];
      printf("partition %lld, stage attempt %lld: MPI_Allreduce = %lld\n",
             (long long)seen, (long long)att, (long long)sum);
      good += att == want_attempt && sum == n * (n + 1) / 2;
      seen++;
    }
    b.release(&b);
  }
  rc = seen == n && good == n ? 0 : 1;
done:
  if (rows.release) rows.release(&rows);
  if (schema.release) schema.release(&schema);
  pt_dataset_free(mpi);
  pt_dataset_free(gang);
  pt_dataset_free(range);
  pt_session_close(s);
  return rc;
}
