/* main.c — the protium command: dispatch to one command per verb, usage and
 * version. Each command lives in its own file (cat.c, demo.c, ...) behind cli.h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "protium.h"

static const char usage_text[] =
    "usage: protium COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  version                              print the version\n"
    "  cat FILE [--schema] [--limit N]      print an Arrow IPC stream or file as JSON\n"
    "                                       lines (FILE - reads standard input);\n"
    "                                       --schema prints the schema instead,\n"
    "                                       --limit N stops after N rows\n"
    "  demo [--master M] [--conf K=V]... [DIR]\n"
    "                                       run the demo pipeline on local[2] (or master\n"
    "                                       M, e.g. slurm; settings K=V, e.g. net.tls=on):\n"
    "                                       range -> map_batches ->\n"
    "                                       repartition by key -> write_ipc (to DIR, kept;\n"
    "                                       default a temporary directory) -> read back,\n"
    "                                       count and check\n"
    "  submit --slurm [-N NODES] [-n TASKS] [--gpus-per-node G] [--gpus-per-task G]\n"
    "         [--time T] [--partition P] PROGRAM [ARGS]\n"
    "                                       submit PROGRAM (a .py file runs with\n"
    "                                       $PROTIUM_PYTHON, default python3) as a Slurm\n"
    "                                       batch job with PROTIUM_MASTER=slurm, stream its\n"
    "                                       output (slurm-ID.out) and exit with its status\n"
    "  help                                 print this help\n";

int pt__cli_write_stdout(const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(STDOUT_FILENO, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EPIPE ? -1 : errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int main(int argc, char **argv) {
  /* A closed pipe (`protium cat f | head`) shows up as EPIPE from write, which
   * the commands treat as "stop quietly", instead of killing the process. */
  signal(SIGPIPE, SIG_IGN);

  if (argc < 2) {
    fputs(usage_text, stderr);
    return CLI_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    fputs(usage_text, stdout);
    return CLI_OK;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    if (argc > 2) {
      fprintf(stderr, "protium: version: takes no arguments\n");
      return CLI_USAGE;
    }
    printf("protium %s\n", pt_version());
    return fflush(stdout) == 0 || errno == EPIPE ? CLI_OK : CLI_FAILED;
  }
  if (strcmp(cmd, "cat") == 0) return pt__cli_cat(argc - 1, argv + 1);
  if (strcmp(cmd, "demo") == 0) return pt__cli_demo(argc - 1, argv + 1);
  if (strcmp(cmd, "submit") == 0) return pt__cli_submit(argc - 1, argv + 1);

  fprintf(stderr, "protium: unknown command '%s'\n\n%s", cmd, usage_text);
  return CLI_USAGE;
}
