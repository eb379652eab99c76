/* parquet.h — what other modules (the engine's Parquet source) may use of
 * src/parquet beyond include/protium.h: planning a read, row group by row
 * group, without decoding any data.
 */
#ifndef PT_PARQUET_H
#define PT_PARQUET_H

#include "core/core.h"

typedef struct pt__parquet_rg {
  int64_t index;  /* in the file */
  int64_t rows;
  int64_t bytes;  /* uncompressed size of its column chunks, as the file says */
} pt__parquet_rg;

/* Reads the footer of the Parquet file at path: the Arrow schema of what
 * opts selects (columns), and the row groups (within opts' range) that may
 * hold rows matching opts->filter (all of them without one). *considered
 * (may be NULL) gets the row groups of the range, kept or not. On PT_OK the
 * caller owns *schema and *rgs (pt__free), *n entries. */
int pt__parquet_plan(const char *path, const pt_parquet_read_options *opts,
                     struct ArrowSchema *schema, pt__parquet_rg **rgs, int64_t *n,
                     int64_t *considered, pt_error *err);

/* Whether a file whose Hive-style directories give keys[k] = vals[k] (NULL:
 * null; of Arrow format formats[k]) may hold rows matching f: comparisons on
 * those keys are decided, the others left to the files' statistics (true).
 * *uses_keys is set when f names any of the keys. */
bool pt__filter_partition_match(const pt_parquet_filter *f, char *const *keys,
                                char *const *vals, const char *const *formats, int64_t nk,
                                bool *uses_keys);

/* Bounds of a column's values that a caller knows from elsewhere (a table
 * format's per-file statistics): min/max of the kind given (bytes
 * borrowed), null count and rows (-1: unknown). */
enum { PT__BOUNDS_NONE, PT__BOUNDS_INT, PT__BOUNDS_DOUBLE, PT__BOUNDS_BYTES };
typedef struct pt__bounds {
  int kind;                        /* PT__BOUNDS_*; NONE: min/max unknown */
  bool has_min, has_max;
  int64_t min_i, max_i;
  double min_d, max_d;
  const uint8_t *min_b, *max_b;
  int64_t min_len, max_len;
  int64_t null_count, rows;
} pt__bounds;

/* Whether rows with those bounds may match f (filter.c): find fills the
 * bounds of a column (named as in the filter, dotted for nested fields)
 * and returns false when it knows nothing of it. Conservative. */
bool pt__filter_bounds_match(const pt_parquet_filter *f,
                             bool (*find)(const char *column, void *arg, pt__bounds *out),
                             void *arg);

/* The statistics in the footer of a Parquet file, per top-level column of
 * a primitive type: rows, null count, and min/max as the physical type has
 * them (INT32/INT64 as ints, FLOAT/DOUBLE as doubles, BYTE_ARRAY and
 * FIXED_LEN_BYTE_ARRAY as bytes) over every row group (read.c). On PT_OK
 * the caller owns *out (pt__parquet_stats_free). */
typedef struct pt__parquet_col_stats {
  char *name;                      /* owned */
  int physical;                    /* 1 INT32, 2 INT64, 4 FLOAT, 5 DOUBLE, 6 BYTE_ARRAY, 7 FLBA */
  bool has_nulls;                  /* null_count known */
  int64_t null_count;
  bool has_minmax;
  pt__bounds b;                    /* min_b/max_b owned */
} pt__parquet_col_stats;
typedef struct pt__parquet_stats {
  int64_t rows;
  pt__parquet_col_stats *cols;
  int64_t n_cols;
} pt__parquet_stats;
int pt__parquet_file_stats(const char *path, pt__parquet_stats *out, pt_error *err);
void pt__parquet_stats_free(pt__parquet_stats *s);
/* f with its comparisons on keys decided by one directory's values (as
 * pt__filter_partition_match decides them): *may_match false when they
 * rule the directory out; else *out is what is left for the files'
 * statistics, NULL when nothing is. On PT_OK the caller owns *out. */
int pt__filter_bind_partition(const pt_parquet_filter *f, char *const *keys, char *const *vals,
                              const char *const *formats, int64_t nk, pt_parquet_filter **out,
                              bool *may_match, pt_error *err);

/* A deep copy of f (NULL copies as NULL). On PT_OK the caller owns *out. */
int pt__filter_copy(const pt_parquet_filter *f, pt_parquet_filter **out, pt_error *err);

/* A filter's top node, for carrying it in a message (the engine's
 * Parquet source); rebuilt with the pt_parquet_filter_* constructors. */
enum { PT__FILTER_INT, PT__FILTER_UINT, PT__FILTER_DOUBLE, PT__FILTER_BYTES,
       PT__FILTER_TIMESTAMP /* ints, in unit */, PT__FILTER_DECIMAL /* bytes: text */ };
typedef struct pt__filter_parts {
  int op;                         /* PT_PARQUET_* */
  const pt_parquet_filter *a, *b; /* AND, OR */
  const char *column;             /* comparisons: the column's path */
  int literal;                    /* PT__FILTER_*: which of the arrays */
  int64_t n;                      /* literals */
  const int64_t *ints;            /* INT, UINT (bits) */
  const double *doubles;
  const uint8_t *const *bytes;
  const int64_t *lens;
  int unit;                       /* TIMESTAMP: PT_PARQUET_UNIT_* */
} pt__filter_parts;

/* Everything in *out is borrowed from f. */
void pt__filter_parts_of(const pt_parquet_filter *f, pt__filter_parts *out);

/* A filter judged row by row (where.c), for Delta's replace_where. */

/* Evaluates f on each row of batch (a struct array of schema, whose
 * top-level columns f names): out[i] (batch->length bytes, the caller's)
 * = 1 where f is TRUE, 0 where it is FALSE or NULL, with SQL's
 * three-valued logic (a comparison with a null is NULL, NE and NOT IN
 * too; IS NULL and IS NOT NULL are never NULL). A column schema lacks is
 * null in every row (a file written before the column was added).
 * PT_EINVAL names a literal of another kind than its column. */
int pt__filter_eval_rows(const pt_parquet_filter *f, const struct ArrowSchema *schema,
                         const struct ArrowArray *batch, uint8_t *out, pt_error *err);

/* The first column f names that is not a top-level column of schema, or
 * NULL (borrowed from f). */
const char *pt__filter_unknown_column(const pt_parquet_filter *f, const struct ArrowSchema *schema);

/* Hive-style partition directories when writing (hive.c). */

/* Whether a column of Arrow format can partition a write: booleans,
 * integers, floats, utf8/large_utf8, binary/large_binary, date32,
 * timestamps (any unit; written as Spark spells them, the UTC wall clock
 * for zoned ones) and decimals of scale >= 0. */
bool pt__hive_key_supported(const char *format);
/* Appends s[0, n) to out with Hive's %XX escapes. PT_ENOMEM on failure. */
int pt__hive_escape(pt_buf *out, const char *s, size_t n);
/* Appends row (relative to array's offset) of a supported column as its
 * path segment value: escaped; null and "" as __HIVE_DEFAULT_PARTITION__.
 * PT_ENOTSUP for a format pt__hive_key_supported refuses. */
int pt__hive_append_value(pt_buf *out, const struct ArrowSchema *schema,
                          const struct ArrowArray *array, int64_t row);

/* Reading Hive-style directories (hive.c). */

/* Spark's type for a key whose n values (vals[i * stride], NULL: null,
 * escapes decoded) are these: int32, int64, decimal(p, 0) (integers beyond
 * int64), float64, timestamp[us] (text "YYYY-MM-DD HH:MM:SS[.ffffff]"),
 * date32 ("YYYY-MM-DD"), else (or with every value null) utf8; its Arrow
 * format into fmt (cap bytes).
 * PT_ERANGE when fmt is too small. */
int pt__hive_infer_format(char *const *vals, int64_t stride, int64_t n, char *fmt, size_t cap);
/* Whether a key can be read as a column of this format (a partition
 * schema's type): what pt__hive_key_supported takes, and date64. */
bool pt__hive_read_supported(const char *format);
/* "YYYY-MM-DD" as days since 1970-01-01; "YYYY-MM-DD HH:MM:SS[.f]" (or
 * 'T' between) as microseconds. false when s is not one, whole. */
bool pt__hive_parse_date(const char *s, int32_t *days);
bool pt__hive_parse_timestamp(const char *s, int64_t *micros);
/* Appends n rows of a key's value, text (NULL: null), to b, a builder of
 * field's type. PT_EINVAL when the text is not a value of that type,
 * PT_ENOTSUP for a type pt__hive_read_supported refuses. */
int pt__hive_append_text(pt_builder *b, const struct ArrowSchema *field, const char *text,
                         int64_t n);
/* Sets to's metadata (to made by pt_schema_init, without metadata) to a
 * copy of from's: a Hive dataset's schema, or its files' schema, is built
 * column by column and keeps the schema metadata this way. PT_OK when
 * from has none. */
int pt__hive_copy_metadata(const struct ArrowSchema *from, struct ArrowSchema *to,
                           pt_error *err);

#endif /* PT_PARQUET_H */
