/* submit.c — `protium submit --slurm ... PROGRAM [ARGS]`, the spark-submit of
 * protium for a user not inside an allocation yet: writes an sbatch script
 * that runs PROGRAM with PROTIUM_MASTER=slurm (its Session() then starts
 * executors on the allocation's nodes), submits it, streams the job's
 * output file while it runs, and exits with the job's exit status.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] =
    "protium: submit: usage: protium submit --slurm [-N NODES] [-n TASKS] "
    "[--gpus-per-node G] [--gpus-per-task G] [--time T] [--partition P] PROGRAM [ARGS]\n";

/* Appends s to the script in single quotes: the shell takes it as is. */
static void quoted(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s; s++)
    if (*s == '\'') fputs("'\\''", f);
    else fputc(*s, f);
  fputc('\'', f);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Runs argv with stdin from in (NULL: none) and returns what it printed on
 * stdout (first line, into out) and its exit status, or -1. */
static int run_capture(char *const argv[], const char *in, char *out, size_t cap) {
  int to[2], from[2];
  if (pipe(to) != 0) return -1;
  if (pipe(from) != 0) {
    close(to[0]);
    close(to[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(to[0]), close(to[1]), close(from[0]), close(from[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(to[0], 0);
    dup2(from[1], 1);
    close(to[0]), close(to[1]), close(from[0]), close(from[1]);
    execvp(argv[0], argv);
    fprintf(stderr, "protium: submit: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  if (in) {
    size_t len = strlen(in), done = 0;
    while (done < len) {
      ssize_t w = write(to[1], in + done, len - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      done += (size_t)w;
    }
  }
  close(to[1]);
  size_t got = 0;
  for (;;) {
    ssize_t r = read(from[0], out + got, cap - 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
    if (got == cap - 1) break;
  }
  out[got] = 0;
  close(from[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  char *nl = strchr(out, '\n');
  if (nl) *nl = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Copies what the output file gained since *off to stdout. */
static void pump(const char *path, long *off) {
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (fseek(f, *off, SEEK_SET) == 0) {
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
      (void)pt__cli_write_stdout(buf, n);
      *off += (long)n;
    }
  }
  fclose(f);
}

/* The job's state and exit code from `scontrol show job -o ID`: 1 when it
 * has ended (*code set), 0 while it runs or waits, -1 when Slurm no longer
 * knows it. */
static int job_state(const char *id, int *code) {
  char line[8192];
  char *argv[] = {"scontrol", "show", "job", "-o", (char *)id, NULL};
  if (run_capture(argv, NULL, line, sizeof line) != 0) return -1;
  const char *st = strstr(line, "JobState=");
  if (!st) return -1;
  st += 9;
  static const char *const running[] = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING",
                                        "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING",
                                        "STAGE_OUT"};
  for (size_t i = 0; i < sizeof running / sizeof *running; i++)
    if (strncmp(st, running[i], strlen(running[i])) == 0 && st[strlen(running[i])] == ' ')
      return 0;
  const char *ec = strstr(line, " ExitCode=");
  int rc = 1, sig = 0;
  if (ec && sscanf(ec + 10, "%d:%d", &rc, &sig) == 2 && sig) rc = 128 + sig;
  if (strncmp(st, "COMPLETED", 9) != 0 && rc == 0) rc = 1; /* cancelled, node failure, ... */
  *code = rc;
  return 1;
}

int pt__cli_submit(int argc, char **argv) {
  const char *nodes = NULL, *tasks = NULL, *gpn = NULL, *gpt = NULL, *time_limit = NULL,
             *partition = NULL;
  int slurm = 0, i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *o = argv[i];
    const char **slot = strcmp(o, "-N") == 0 || strcmp(o, "--nodes") == 0        ? &nodes
                        : strcmp(o, "-n") == 0 || strcmp(o, "--ntasks") == 0     ? &tasks
                        : strcmp(o, "--gpus-per-node") == 0                      ? &gpn
                        : strcmp(o, "--gpus-per-task") == 0                      ? &gpt
                        : strcmp(o, "-t") == 0 || strcmp(o, "--time") == 0       ? &time_limit
                        : strcmp(o, "-p") == 0 || strcmp(o, "--partition") == 0 ? &partition
                                                                                 : NULL;
    if (strcmp(o, "--slurm") == 0) {
      slurm = 1;
    } else if (slot && i + 1 < argc) {
      *slot = argv[++i];
    } else {
      fprintf(stderr, "protium: submit: unknown or incomplete option '%s'\n%s", o, usage);
      return CLI_USAGE;
    }
  }
  if (!slurm || i >= argc) {
    fputs(slurm ? "protium: submit: no program to run\n"
                : "protium: submit: name the cluster manager: --slurm\n",
          stderr);
    fputs(usage, stderr);
    return CLI_USAGE;
  }

  char *script = NULL;
  size_t script_len = 0;
  FILE *f = open_memstream(&script, &script_len);
  if (!f) {
    fprintf(stderr, "protium: submit: out of memory\n");
    return CLI_FAILED;
  }
  fprintf(f, "#!/bin/sh\n# written by protium submit --slurm\n");
  fputs("#SBATCH --job-name=", f);
  const char *base = strrchr(argv[i], '/');
  fprintf(f, "%.100s\n", base ? base + 1 : argv[i]);
  if (nodes) fprintf(f, "#SBATCH --nodes=%s\n", nodes);
  if (tasks) fprintf(f, "#SBATCH --ntasks=%s\n", tasks);
  if (gpn) fprintf(f, "#SBATCH --gpus-per-node=%s\n", gpn);
  if (gpt) fprintf(f, "#SBATCH --gpus-per-task=%s\n", gpt);
  if (time_limit) fprintf(f, "#SBATCH --time=%s\n", time_limit);
  if (partition) fprintf(f, "#SBATCH --partition=%s\n", partition);
  fputs("#SBATCH --output=slurm-%j.out\n", f);
  fputs("export PROTIUM_MASTER=slurm\nexec ", f);
  if (ends_with(argv[i], ".py")) {
    const char *py = getenv("PROTIUM_PYTHON");
    quoted(f, py && *py ? py : "python3");
    fputc(' ', f);
  }
  for (int k = i; k < argc; k++) {
    quoted(f, argv[k]);
    fputc(k + 1 < argc ? ' ' : '\n', f);
  }
  fclose(f);

  char id[256];
  char *sbatch[] = {"sbatch", "--parsable", NULL};
  int rc = run_capture(sbatch, script, id, sizeof id);
  free(script);
  /* --parsable: "ID" or "ID;cluster" */
  char *semi = strchr(id, ';');
  if (semi) *semi = 0;
  if (rc != 0 || !id[0] || strspn(id, "0123456789") != strlen(id)) {
    fprintf(stderr, "protium: submit: sbatch failed (status %d)%s%s; is Slurm installed and "
            "SLURM_CONF set?\n", rc, id[0] ? ": " : "", id);
    return CLI_FAILED;
  }
  fprintf(stderr, "protium: submit: Slurm job %s\n", id);
  char out_path[300];
  snprintf(out_path, sizeof out_path, "slurm-%s.out", id);
  long off = 0;
  int code = 1;
  for (;;) {
    pump(out_path, &off);
    int st = job_state(id, &code);
    if (st != 0) {
      if (st < 0) {
        fprintf(stderr, "protium: submit: Slurm no longer knows job %s; its output is %s\n", id,
                out_path);
        code = 1;
      }
      break;
    }
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
  }
  pump(out_path, &off);
  fflush(stdout);
  return code > 255 ? 255 : code;
}
