/* stream_int.h — private to src/stream: the checkpoint directory (offset
 * log, commit log, query id, its lock) that makes micro-batches exactly
 * once, and small file helpers shared by the sources and sinks.
 *
 * Checkpoint layout (all text, each file written whole: to ".name.tmp",
 * fsync, rename, fsync of the directory):
 *
 *   <dir>/metadata          {"id":"<32 hex>"}          the query id
 *   <dir>/.lock             flock'ed by the running query
 *   <dir>/offsets/<batch>   "v1\n" start "\n" end "\n"  before the batch runs
 *   <dir>/commits/<batch>   "v1\n"                      after the sink committed
 *   <dir>/sources/0/        the source's own (files: its file log)
 *
 * <batch> is the decimal batch id. start is empty for the first batch.
 */
#ifndef PT_STREAM_INT_H
#define PT_STREAM_INT_H

#include <stdint.h>

#include "core/core.h"

typedef struct pt__ckpt {
  char *dir;          /* owned */
  int lock_fd;        /* holds the flock; -1 none */
  char id[33];        /* query id, hex */
} pt__ckpt;

/* Opens (creating what is missing) and locks the checkpoint at dir.
 * PT_ESTATE when another process or query holds it. On PT_OK the caller
 * owns c's contents (pt__ckpt_close). */
int pt__ckpt_open(const char *dir, pt__ckpt *c, pt_error *err);
void pt__ckpt_close(pt__ckpt *c);
/* The highest batch id of the offset log (-1: none) and whether the commit
 * log has it. */
int pt__ckpt_last(const pt__ckpt *c, int64_t *batch, int *committed, pt_error *err);
/* Reads the offsets of batch: on PT_OK the caller owns *start (NULL for the
 * first batch's) and *end (pt__free). */
int pt__ckpt_read_offsets(const pt__ckpt *c, int64_t batch, char **start, char **end,
                          pt_error *err);
/* Writes the offset / commit entry of batch, durably. */
int pt__ckpt_write_offsets(const pt__ckpt *c, int64_t batch, const char *start, const char *end,
                           pt_error *err);
int pt__ckpt_write_commit(const pt__ckpt *c, int64_t batch, pt_error *err);
/* Removes offset and commit entries of batches below keep_from. */
void pt__ckpt_purge(const pt__ckpt *c, int64_t keep_from);

/* Writes data to path durably: path.tmp beside it, fsync, rename, fsync of
 * the directory. */
int pt__stream_write_durable(const char *path, const void *data, size_t len, pt_error *err);
/* fsync of a directory (a rename in it survives a crash). */
int pt__stream_fsync_dir(const char *dir, pt_error *err);
/* The whole file; on PT_OK the caller owns *data (pt__free), NUL-terminated. */
int pt__stream_read_file(const char *path, char **data, size_t *len, pt_error *err);
/* Microseconds: wall clock since the epoch, and monotonic. */
int64_t pt__stream_wall_us(void);
int64_t pt__stream_mono_us(void);

#endif /* PT_STREAM_INT_H */
