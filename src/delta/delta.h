/* delta.h — what the engine (src/api/delta.c) uses of the Delta Lake
 * module: a JSON tree for the log, the table's state at a version (log
 * replay), the Delta <-> Arrow type mapping, and per-file statistics.
 * The module reads and writes files only under the table's directory and
 * knows nothing of scheduling.
 */
#ifndef PT_DELTA_H
#define PT_DELTA_H

#include "core/core.h"

/* ------------------------------------------------------------------------ */
/* JSON (json.c) */

#define PT__JSON_MAX_DEPTH 64

typedef enum pt__json_type {
  PT__JSON_NULL, PT__JSON_BOOL, PT__JSON_NUMBER, PT__JSON_STRING, PT__JSON_ARRAY, PT__JSON_OBJECT,
} pt__json_type;

typedef struct pt__json {
  pt__json_type type;
  bool b;                  /* BOOL */
  bool is_int;             /* NUMBER: integral and within int64 (then i is it) */
  int64_t i;
  double d;                /* NUMBER */
  char *str;               /* owned: STRING unescaped (NUL-terminated), NUMBER its text */
  int64_t len;             /* bytes of str */
  struct pt__json **items; /* owned: ARRAY elements, OBJECT values */
  char **keys;             /* owned: OBJECT member names, in order */
  int64_t n;
} pt__json;

/* Parses text[0, len) as one JSON value. On PT_OK the caller owns *out
 * (pt__json_free); PT_EFORMAT names the byte offset of the first error. */
int pt__json_parse(const char *text, int64_t len, pt__json **out, pt_error *err);
void pt__json_free(pt__json *j);
/* Member `key` of an object (the first), borrowed; NULL when j is not an
 * object or has no such member. */
const pt__json *pt__json_get(const pt__json *j, const char *key);
/* The string member `key`, borrowed; NULL when absent, null or not a string. */
const char *pt__json_str(const pt__json *j, const char *key);
/* Appends s[0, n) (n < 0: strlen) as a JSON string literal. PT_ENOMEM. */
int pt__json_put_string(pt_buf *b, const char *s, int64_t n);

/* ------------------------------------------------------------------------ */
/* The table at a version (log.c) */

typedef struct pt__delta_file {
  char *path;              /* owned: as the log has it (URI-encoded, relative to the table) */
  int64_t size;            /* bytes */
  int64_t mtime;           /* add.modificationTime, ms since the epoch (0: not given) */
  char **values;           /* owned, each owned: one per partition column, NULL = null */
  char *stats;             /* owned JSON text or NULL */
  void *pending;           /* during replay only: the values as name/value pairs */
} pt__delta_file;

typedef struct pt__delta_snapshot {
  int64_t version;
  int64_t min_reader, min_writer;
  char **reader_features, **writer_features; /* owned, each owned */
  int64_t n_reader_features, n_writer_features;
  char *table_id;          /* owned: metaData.id */
  char *schema_string;     /* owned: metaData.schemaString */
  char **partition_columns; /* owned, each owned */
  int64_t n_partition_columns;
  char *column_mapping;    /* owned: configuration delta.columnMapping.mode, or NULL */
  bool append_only;        /* configuration delta.appendOnly = true */
  char **config_keys, **config_values; /* owned, each owned (a value may be NULL):
                                          metaData.configuration */
  int64_t n_config;
  int64_t created_time;    /* metaData.createdTime (ms), -1 unknown */
  pt__delta_file *files;   /* owned: the files of the version, in log order */
  int64_t n_files;
  int64_t checkpoint;      /* version of the checkpoint replay started from; -1 none */
  bool has_txn;            /* the log holds txn or domainMetadata actions (kept by
                              no checkpoint protium writes) */
} pt__delta_snapshot;

/* The latest version whose commit file exists under table/_delta_log, or
 * -1 when there is no log (or an empty one). PT_EIO when the directory
 * cannot be listed. */
int pt__delta_latest_version(const char *table, int64_t *version, pt_error *err);

/* Replays table/_delta_log up to `version` (-1: the latest) or, when
 * timestamp_ms is not INT64_MIN, the latest version committed at or before
 * it (commit files' modification times, as the protocol says). Starts from
 * the newest complete checkpoint at or below the version (_last_checkpoint
 * first, single- or multi-part), then applies the JSON commits after it.
 * Errors name the log file at fault. On PT_OK the caller owns *out
 * (pt__delta_snapshot_free). */
int pt__delta_snapshot_load(const char *table, int64_t version, int64_t timestamp_ms,
                            pt__delta_snapshot *out, pt_error *err);
void pt__delta_snapshot_free(pt__delta_snapshot *s);

/* PT_ENOTSUP, naming the feature, when reading (write = false) or writing
 * the table needs a protocol feature protium does not implement. */
int pt__delta_check_protocol(const pt__delta_snapshot *s, bool write, pt_error *err);

/* Decodes the %XX escapes of a log path into a NUL-terminated pt__malloc'd
 * string; NULL without memory. */
char *pt__delta_unescape_path(const char *path);

/* ------------------------------------------------------------------------ */
/* Checkpoints (checkpoint.c) */

/* The table's delta.checkpointInterval (commits between checkpoints),
 * 10 when unset or not a positive integer. */
int64_t pt__delta_checkpoint_interval(const pt__delta_snapshot *s);
/* Writes table/_delta_log/<s->version>.checkpoint.parquet (the protocol,
 * the metaData and an add per active file of s) and then _last_checkpoint,
 * each under a temporary name renamed into place. PT_ENOTSUP when the log
 * holds txn or domainMetadata actions, which these checkpoints would lose. */
int pt__delta_checkpoint_write(const char *table, const pt__delta_snapshot *s, pt_error *err);

/* ------------------------------------------------------------------------ */
/* Types (schema.c) */

/* The Arrow schema (a struct of the table's columns, in order) of a
 * schemaString. On PT_OK the caller owns *out. PT_ENOTSUP names a column
 * of a type without an Arrow mapping. */
int pt__delta_schema_to_arrow(const char *schema_string, struct ArrowSchema *out, pt_error *err);
/* A schemaString for an Arrow struct schema, appended to out. PT_ENOTSUP
 * names a column whose type Delta cannot hold. */
int pt__delta_schema_from_arrow(const struct ArrowSchema *schema, pt_buf *out, pt_error *err);
/* A partition value as the log writes it turned into the text the engine's
 * partition columns parse for Arrow format `format` (pt__hive_append_text,
 * as for Hive-style directories): booleans true/false, dates YYYY-MM-DD,
 * timestamps "YYYY-MM-DD HH:MM:SS.ffffff" on the UTC clock, integers,
 * floats, decimals, strings and binary as they are. On PT_OK the caller
 * owns *out; PT_EFORMAT when the text is not a value of the type (or a
 * date beyond year 9999). */
int pt__delta_partition_value(const char *format, const char *text, char **out, pt_error *err);
/* Days since 1970-01-01 of "YYYY-MM-DD"; false when malformed. */
bool pt__delta_parse_date(const char *s, int64_t *days);
/* Microseconds since the epoch of "YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|+00:00]";
 * false when malformed. */
bool pt__delta_parse_timestamp(const char *s, int64_t *us);
/* The proleptic Gregorian y-m-d of days since 1970-01-01. */
void pt__delta_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* ------------------------------------------------------------------------ */
/* Statistics (stats.c) */

/* Whether the rows of `file` may match f, judged by its partition values
 * (columns partition_columns of the snapshot, typed by `schema`) and the
 * minValues / maxValues / nullCount of its stats. Conservative: anything
 * unknown keeps the file. */
bool pt__delta_file_may_match(const pt_parquet_filter *f, const pt__delta_snapshot *s,
                              const pt__delta_file *file, const struct ArrowSchema *schema);

/* Whether every row of `file` matches f, proven by its partition values
 * and stats: no nulls in a compared column, its min and max within the
 * comparison (integers, dates, timestamps and strings; floats and
 * decimals are never proven). False whenever anything is unknown. */
bool pt__delta_file_must_match(const pt_parquet_filter *f, const pt__delta_snapshot *s,
                               const pt__delta_file *file, const struct ArrowSchema *schema);

/* The stats JSON of a Parquet file protium wrote (numRecords, minValues,
 * maxValues, nullCount of its top-level columns, from its footer; schema:
 * the file's columns), appended to out. */
int pt__delta_file_stats(const char *path, const struct ArrowSchema *schema, pt_buf *out,
                         int64_t *rows, pt_error *err);

#endif /* PT_DELTA_H */
