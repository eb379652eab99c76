/* exec_int.h — private to src/exec: the prepared stage, and the operators a
 * task chains (a source, transforms, a sink) as task.c drives them.
 */
#ifndef PT_EXEC_INT_H
#define PT_EXEC_INT_H

#include <stdatomic.h>

#include "arrow/arrow.h"
#include "exec/exec.h"
#include "kafka/kafka.h"
#include "net/net.h"
#include "sql/sql.h"

/* What a stage's op needs beyond its message. */
typedef struct pt__op_prep {
  void (*fn)(void);              /* map / filter: the registered function */
  struct ArrowSchema out_schema; /* map: decoded out_schema; release NULL = unchanged */
  char *error;                   /* non-NULL: every task of the stage fails with this */
  pt_parquet_filter *predicate;  /* exclude, require: decoded once per stage, owned */
} pt__op_prep;

struct pt__stage {
  atomic_int refs;
  Protium__StageDef *def;          /* private copy (pt__pb_allocator) */
  struct ArrowSchema source_schema; /* decoded def->schema; release NULL if empty */
  pt__op_prep *ops;                /* def->n_ops entries */
};

/* One task while it runs. */
typedef struct pt__task {
  const pt__exec_env *env;
  pt__stage *stage;
  const Protium__TaskLaunch *launch;
  Protium__Resource *const *res;  /* the addresses it holds, per resource: n_res, borrowed */
  size_t n_res;
  pt_task_context ctx;            /* ctx.internal_ points back here */
  int64_t failed_map; /* >= 0: a shuffle fetch failed for this map partition */
  int fetch_unreachable; /* with failed_map: its executor's block server did not answer */
  /* Barrier stages */
  int64_t seq;                    /* the next barrier step of this task */
  pt_task_info *infos;            /* owned, launch->n_task_infos entries, by partition */
  int64_t n_infos;
  int checkpoint_made;            /* the checkpoint directory exists */
  /* A partition function's pt_ctx_emit goes here (NULL elsewhere). */
  int (*emit)(void *emit_arg, struct ArrowArray *batch, pt_error *err);
  void *emit_arg;
} pt__task;

/* ------------------------------------------------------------------------ */
/* Buffer pools (bufpool.c): equal-size buffers a source writes its batches
 * into, handed back when the last array holding one is released (on any
 * thread), so the next batch reuses memory already mapped. The pool lives
 * until its owner has dropped it and every buffer has come back. */

typedef struct pt__bufpool pt__bufpool;

/* A pool of buffers of size bytes (rounded up to 64), keeping at most keep
 * returned ones (the rest are freed). On PT_OK the caller owns one
 * reference on *out (pt__bufpool_unref). */
int pt__bufpool_new(size_t size, int keep, pt__bufpool **out, pt_error *err);
/* Drops the owner's reference; buffers still out keep the pool alive. */
void pt__bufpool_unref(pt__bufpool *pool);
/* Bytes in each buffer (the size asked for, rounded up to 64). */
size_t pt__bufpool_size(const pt__bufpool *pool);
/* Sets buffer i of array a (made by pt__array_init) to a buffer of the
 * pool (a returned one or a new one; its contents are undefined) and *out
 * to it for the caller to fill: a owns it, and its release gives it back.
 * On failure a is unchanged. */
int pt__bufpool_attach(pt__bufpool *pool, struct ArrowArray *a, int64_t i, void **out,
                       pt_error *err);

/* ------------------------------------------------------------------------ */
/* Sources: produce the partition's batches one at a time. */

typedef struct pt__source {
  pt__task *t;
  const Protium__Op *op;
  struct ArrowSchema schema;  /* schema of the batches (owned) */
  /* range */
  int64_t next, end, batch_rows;
  pt__bufpool *range_pool;        /* range: the batches' buffers; owned (one reference) */
  /* files, shuffle read */
  struct ArrowArrayStream stream; /* release NULL when none is open */
  size_t map_index;               /* shuffle: the next map output to open */
  struct pt__segment *segments;   /* shuffle: segment bytes, freed at close (arrays point in) */
  size_t n_segments;
  int64_t rows_read, bytes_read;  /* for the task's status (job metrics) */
  int64_t event_time_ms;          /* read_kafka: the oldest record timestamp (ms since
                                     the epoch); 0: none. For the task's status. */
  size_t piece;                   /* parquet: the next piece to look at */
  size_t cur_piece;               /* parquet: the piece being read */
  pt_parquet_filter *pq_filter;   /* parquet: the read's filter, rebuilt from
                                     the op (owned; NULL = none) */
  int64_t pages_read, pages_skipped; /* parquet: of the pieces read so far */
  pt__kafka_reader *kafka;        /* read_kafka: owned */
  /* csv: the open piece's file, mapped whole (NULL when none is open) and
   * where the next chunk of records starts in it */
  const char *csv_map;
  size_t csv_map_size;
  int64_t csv_begin, csv_pos, csv_end, csv_line;
  int64_t csv_lines_before; /* the \n bytes before the piece, -1 until counted
                             * (then csv_line counts from the file's start) */
  const char *csv_path;           /* borrowed from the piece */
  int csv_skip_header;            /* the open piece starts its file: skip one record */
  struct ArrowSchema csv_schema;  /* the columns the text holds (the stage's,
                                     less the corrupt-record column); owned */
  pt__sql_reader *sql;            /* read_sql: the partition's query; owned */
} pt__source;

int pt__source_open(pt__task *t, const Protium__Op *op, pt__source *src, pt_error *err);
/* *out released (release NULL) at the end. */
int pt__source_next(pt__source *src, struct ArrowArray *out, pt_error *err);
void pt__source_close(pt__source *src);
/* Rows of a range partition without generating them. */
void pt__range_bounds(const Protium__RangeSource *r, int64_t p, int64_t *lo, int64_t *hi);
/* The rows a PERMISSIVE or FAILFAST read_csv source gives this task's
 * partition, counted from its records' starts without parsing them (every
 * record is a row in PERMISSIVE; FAILFAST also checks each record's
 * structure from the same scan and fails on the first malformed one, but
 * converts no value), into *rows; *bytes: the bytes looked at. */
int pt__csv_count_rows(pt__task *t, const Protium__Op *op, int64_t *rows, int64_t *bytes,
                       pt_error *err);

/* ------------------------------------------------------------------------ */
/* Transforms: replace *batch (schema in) by their output (schema out). */

int pt__op_map(pt__task *t, int op_index, const struct ArrowSchema *in,
               const struct ArrowSchema *out_schema, struct ArrowArray *batch, pt_error *err);
int pt__op_filter(pt__task *t, int op_index, const struct ArrowSchema *in,
                  struct ArrowArray *batch, pt_error *err);
/* Keeps the rows where the stage's prepared predicate is not TRUE. */
int pt__op_exclude(pt__task *t, int op_index, const struct ArrowSchema *in,
                   struct ArrowArray *batch, pt_error *err);
/* Fails (PT_EINVAL) at the first row where the prepared predicate is not
 * TRUE, naming that row's values of the columns it names; passes *batch
 * on untouched otherwise. */
int pt__op_require(pt__task *t, int op_index, const struct ArrowSchema *in,
                   struct ArrowArray *batch, pt_error *err);
/* The filter a ParquetFilter message carries, rebuilt with the public
 * constructors. On PT_OK the caller owns *out. */
int pt__filter_from_msg(const Protium__ParquetFilter *m, pt_parquet_filter **out, pt_error *err);

/* ------------------------------------------------------------------------ */
/* Sinks */

typedef struct pt__shuffle_part {
  struct ArrowArray *arrays; /* taken rows waiting to be written */
  int64_t n, cap;
  int64_t rows;
} pt__shuffle_part;

typedef struct pt__hive_sink pt__hive_sink;

/* ------------------------------------------------------------------------ */
/* Shuffle memory and row placement (shuffle.c) */

/* Rows per batch a shuffle segment is coalesced into. */
#define PT__SHUFFLE_BATCH_ROWS 65536

/* A reduce task's bytes of one segment: mapped from the map output file, or
 * received into fresh memory on huge pages. data points at the segment. */
typedef struct pt__segment {
  void *base;    /* the mapping, munmap'd by pt__segment_free */
  size_t mapped; /* its length in bytes */
  uint8_t *data;
  int spare;     /* anonymous: kept for reuse when freed */
  struct pt__mem_out *held; /* non-NULL: data is in this output kept in
                               memory (a reference; base is NULL) */
} pt__segment;

/* len bytes of anonymous memory at out->data. PT_OK or PT_ENOMEM. */
int pt__segment_alloc(size_t len, pt__segment *out);
/* Maps [off, off + len) of the file open on fd, read only; fd may be
 * closed afterwards. PT_EIO (message: why, e.g. "ends at byte N") when
 * the file is shorter or cannot be mapped. */
int pt__segment_map(int fd, int64_t off, size_t len, pt__segment *out, pt_error *err);
/* Unmaps; a zeroed segment is left, which may be freed again. */
void pt__segment_free(pt__segment *s);

/* Map output in memory (shuffle_mem.c): a process-wide table, thread-safe,
 * of complete map outputs by path, within a budget of bytes. */
typedef struct pt__mem_out pt__mem_out;
/* bytes <= 0 turns keeping map output in memory off (the default). */
void pt__mem_set_budget(int64_t bytes);
/* 1 (and bytes charged to the budget) when they fit, else 0. */
int pt__mem_reserve(int64_t bytes);
void pt__mem_unreserve(int64_t bytes);
/* An empty buffer for an output, warm memory of about want bytes when a
 * kept one is there; the caller owns *out (pt__mem_put or pt__mem_buf_put). */
void pt__mem_buf_get(size_t want, pt_buf *out);
/* Gives a buffer back (kept for the next pt__mem_buf_get, or freed); *b is
 * left zeroed. */
void pt__mem_buf_put(pt_buf *b);
/* Lists the complete output path of shuffle_id (*listed = 1), *buf's bytes
 * moving in (*buf left zeroed), when its size fits the budget with the
 * charged bytes pt__mem_reserve took for it given back; else *listed = 0
 * and *buf stays the caller's. The charge is given back either way. */
int pt__mem_put(int64_t shuffle_id, const char *path, pt_buf *buf, int64_t charged,
                int *listed, pt_error *err);
/* The output listed as path, with a reference the caller gives back with
 * pt__mem_unref (its bytes stay valid until then), or NULL. */
pt__mem_out *pt__mem_get(const char *path, const uint8_t **data, size_t *len);
void pt__mem_unref(pt__mem_out *o);
/* Unlists every output of shuffle_id (Cleanup); each is freed when its
 * last reader lets go. */
void pt__mem_drop(int64_t shuffle_id);
/* Bytes charged now. */
int64_t pt__mem_used(void);

/* The map side's placement: copies the columns of each batch straight into
 * the batches each reduce partition is filling (PT__SHUFFLE_BATCH_ROWS rows
 * each), which it appends to parts[r] when full. Their buffers live in the
 * scatter's memory: free the arrays of parts before the scatter. */
typedef struct pt__scatter pt__scatter;
/* For batches of schema (borrowed, as is parts, n_parts entries, for the
 * scatter's life). PT_ENOTSUP, without a message, when a column's type has
 * no place here (only fixed-width, boolean and utf8/binary columns do, not
 * dictionary-encoded); else on PT_OK the caller owns *out. */
int pt__scatter_new(const struct ArrowSchema *schema, int64_t n_parts,
                    struct pt__shuffle_part *parts, pt__scatter **out, pt_error *err);
/* Row i of batch (borrowed) goes to reduce partition dest[i] (each < n_parts),
 * in order. On failure the rows already placed stay placed. */
int pt__scatter_add(pt__scatter *s, const struct ArrowArray *batch, const int32_t *dest,
                    pt_error *err);
/* Appends every partly filled batch to its part. */
int pt__scatter_finish(pt__scatter *s, pt_error *err);
/* About how many bytes the batches appended so far take as IPC messages
 * (a little more, never much less). */
int64_t pt__scatter_bytes(const pt__scatter *s);
void pt__scatter_free(pt__scatter *s);

typedef struct pt__sink {
  pt__task *t;
  const Protium__Op *op;
  const struct ArrowSchema *schema; /* borrowed: the schema of consumed batches */
  int64_t rows;
  /* result, write_ipc */
  pt_ipc_writer *writer;
  pt_parquet_writer *pq_writer;   /* write_ipc with parquet set */
  pt__hive_sink *hive;            /* ... and partition_by: path is a directory */
  int csv_open;                   /* write_ipc with csv set: csv_fd is open */
  int in_memory;                  /* result: the file is in the memory results directory */
  int csv_fd;
  pt__sql_stage *sql;             /* write_sql: the attempt's staging table; owned */
  char *sql_table;                /* its name; owned */
  pt_buf csv_buf;                 /* text of one batch, reused */
  char *path;
  /* shuffle write */
  int64_t n_parts;
  int *keys;
  int n_keys;
  int64_t next_row;           /* round robin: rows seen so far */
  pt__shuffle_part *parts;
  pt__scatter *scatter;       /* owned; NULL where the schema has no fast path */
  /* write_kafka */
  pt__kafka_writer *kafka;        /* owned */
} pt__sink;

/* Parquet files by Hive-style partition (hive_sink.c): one writer per
 * combination of the key columns' values, under dir. */
int pt__hive_sink_open(const char *dir, int64_t partition, const struct ArrowSchema *schema,
                       char *const *keys, size_t n_keys, const pt_parquet_write_options *opts,
                       pt__hive_sink **out, pt_error *err);
/* Writes batch's rows, each to its directory's file; the batch stays the
 * caller's. */
int pt__hive_sink_write(pt__hive_sink *h, const struct ArrowArray *batch, pt_error *err);
/* Completes every file. */
int pt__hive_sink_close(pt__hive_sink *h, pt_error *err);
/* Frees h (files not closed are left incomplete; the caller removes dir). */
void pt__hive_sink_free(pt__hive_sink *h);

int pt__sink_open(pt__task *t, const Protium__Op *op, const struct ArrowSchema *schema,
                  pt__sink *sink, pt_error *err);
/* Takes *batch (released on return, success or not). */
int pt__sink_consume(pt__sink *sink, struct ArrowArray *batch, pt_error *err);
/* Writes what is left and fills the status fields of the sink. */
int pt__sink_finish(pt__sink *sink, Protium__TaskStatus *st, pt_error *err);
/* Frees everything; removes a file left unfinished. */
void pt__sink_close(pt__sink *sink);

/* Schema helpers. */
int pt__schema_from_ipc(const uint8_t *data, size_t len, struct ArrowSchema *out,
                        pt_error *err);

#endif /* PT_EXEC_INT_H */
