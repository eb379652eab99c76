/* cli.h — the commands of the protium program, one function each, and the
 * output helpers they share. Exit codes: 0 success, 1 a failure while
 * running (unreadable file, corrupt data), 2 a usage error. */
#ifndef PT_CLI_H
#define PT_CLI_H

#include <stddef.h>

#include "protium.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* `protium cat FILE [--schema] [--limit N]`; argv[0] is "cat". */
int pt__cli_cat(int argc, char **argv);

/* `protium demo [--master M] [--conf KEY=VALUE]... [DIR]`; argv[0] is "demo". */
int pt__cli_demo(int argc, char **argv);

/* `protium submit --slurm [options] PROGRAM [ARGS]`; argv[0] is "submit".
 * Returns the job's exit status. */
int pt__cli_submit(int argc, char **argv);

/* Opens path ("-": standard input) as a stream of batches: a Parquet file
 * (by its PAR1 magic) or an Arrow IPC stream or file. On PT_OK the caller
 * owns *out. */
int pt__cli_open_table(const char *path, struct ArrowArrayStream *out, pt_error *err);

/* Writes all of data to standard output. Returns 0, or -1 when the reader
 * went away (EPIPE: the caller stops quietly), or errno of another failure. */
int pt__cli_write_stdout(const void *data, size_t len);

#endif /* PT_CLI_H */
