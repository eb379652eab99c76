/* open.c — opening a table file for the commands that read one: Parquet
 * files are told apart by their "PAR1" magic and read with the Parquet
 * reader; everything else (Arrow IPC streams and files, standard input) goes
 * to the IPC reader, which reports what is neither.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int pt__cli_open_table(const char *path, struct ArrowArrayStream *out, pt_error *err) {
  if (strcmp(path, "-") != 0) {
    char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t n = read(fd, magic, sizeof magic);
      close(fd);
      if (n == 4 && memcmp(magic, "PAR1", 4) == 0) return pt_parquet_read_path(path, NULL, out, err);
    }
  }
  return pt_ipc_read_path(path, out, err);
}
