/* protium.h — the public C API of libprotium.
 *
 * Data is Apache Arrow everywhere: in memory through the Arrow C Data and C
 * Stream Interfaces (ArrowSchema, ArrowArray, ArrowArrayStream), on the wire and
 * on disk as the Arrow IPC stream and file formats. Every function returns an
 * int status (PT_OK = 0) and takes an optional pt_error * as its last argument,
 * filled with a message on failure. Ownership is stated on each declaration.
 */
#ifndef PROTIUM_H
#define PROTIUM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PT_VERSION_MAJOR 0
#define PT_VERSION_MINOR 1
#define PT_VERSION_PATCH 0
#define PT_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Arrow C Data Interface and C Stream Interface (the ABI-stable definitions
 * from the Arrow specification, guarded so that other Arrow libraries'
 * headers can be included alongside this one). */

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char *format;
  const char *name;
  const char *metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema **children;
  struct ArrowSchema *dictionary;
  void (*release)(struct ArrowSchema *);
  void *private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void **buffers;
  struct ArrowArray **children;
  struct ArrowArray *dictionary;
  void (*release)(struct ArrowArray *);
  void *private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);
  int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);
  const char *(*get_last_error)(struct ArrowArrayStream *);
  void (*release)(struct ArrowArrayStream *);
  void *private_data;
};

#endif /* ARROW_C_STREAM_INTERFACE */

/* ------------------------------------------------------------------------ */
/* Errors */

/* Status codes. PT_OK is 0; every other value is a failure. The C Stream
 * Interface callbacks of streams made by protium return errno values instead,
 * as that interface requires (EINVAL, ENOMEM, EIO, ENOSYS). */
enum {
  PT_OK = 0,
  PT_EINVAL = 1,     /* an argument or a configuration value is wrong */
  PT_ENOMEM = 2,     /* an allocation failed */
  PT_EIO = 3,        /* an operating-system I/O call failed */
  PT_EFORMAT = 4,    /* input data is malformed, truncated or corrupt */
  PT_ENOTSUP = 5,    /* valid, but not supported by this build */
  PT_ERANGE = 6,     /* an index or a size is out of range */
  PT_ESTATE = 7,     /* the call is not allowed in the object's current state */
  PT_ETIMEDOUT = 8,  /* a deadline passed */
  PT_ECANCELED = 9,  /* the operation was stopped on purpose */
  PT_EINTERNAL = 10, /* a bug in protium: please report it */
};

#define PT_ERROR_SIZE 1024

/* Caller-allocated error: on failure, message holds a NUL-terminated text that
 * says what went wrong and what to do. Every pt_error * argument may be NULL. */
typedef struct pt_error {
  int code;
  char message[PT_ERROR_SIZE];
} pt_error;

/* Short name of a status code ("invalid argument", "corrupt input", ...).
 * Static storage. */
const char *pt_strerror(int code);

/* Version of the linked library, "MAJOR.MINOR.PATCH". Static storage. */
const char *pt_version(void);

/* ------------------------------------------------------------------------ */
/* Arrow types
 *
 * Schemas are plain ArrowSchema structs with the format strings of the
 * Arrow C Data Interface ("l" = int64, "u" = utf8, "tsu:UTC" = timestamp[us,
 * UTC], "+l" = list, "+s" = struct, ...). pt_type is a parsed view of one
 * schema node; pt_schema_* build schemas that protium owns and releases. */

typedef enum pt_type_id {
  PT_TYPE_NA = 0, /* the null type: every value is null, no buffers */
  PT_TYPE_BOOL,
  PT_TYPE_INT8,
  PT_TYPE_UINT8,
  PT_TYPE_INT16,
  PT_TYPE_UINT16,
  PT_TYPE_INT32,
  PT_TYPE_UINT32,
  PT_TYPE_INT64,
  PT_TYPE_UINT64,
  PT_TYPE_HALF_FLOAT,
  PT_TYPE_FLOAT,
  PT_TYPE_DOUBLE,
  PT_TYPE_STRING,
  PT_TYPE_LARGE_STRING,
  PT_TYPE_BINARY,
  PT_TYPE_LARGE_BINARY,
  PT_TYPE_FIXED_SIZE_BINARY,
  PT_TYPE_DATE32,
  PT_TYPE_TIMESTAMP,
  PT_TYPE_DURATION,
  PT_TYPE_DECIMAL128,
  PT_TYPE_LIST,
  PT_TYPE_LARGE_LIST,
  PT_TYPE_FIXED_SIZE_LIST,
  PT_TYPE_STRUCT,
  PT_TYPE_DATE64,       /* milliseconds since the epoch (whole days) */
  PT_TYPE_TIME32,       /* time of day, unit s or ms, int32 */
  PT_TYPE_TIME64,       /* time of day, unit us or ns, int64 */
  PT_TYPE_INTERVAL_MONTHS,         /* int32 months */
  PT_TYPE_INTERVAL_DAY_TIME,       /* int32 days, int32 milliseconds */
  PT_TYPE_INTERVAL_MONTH_DAY_NANO, /* int32 months, int32 days, int64 ns */
  PT_TYPE_DECIMAL32,
  PT_TYPE_DECIMAL64,
  PT_TYPE_DECIMAL256,
  PT_TYPE_MAP,          /* list<struct<key, value>>: int32 offsets, one child */
  PT_TYPE_SPARSE_UNION, /* int8 type ids; no validity bitmap; children as long */
  PT_TYPE_DENSE_UNION,  /* int8 type ids, int32 offsets into the children */
  PT_TYPE_STRING_VIEW,  /* 16-byte views: inline up to 12 bytes, else a
                           prefix, buffer index and offset into variadic
                           data buffers (then, in the C Data Interface, an
                           int64 buffer of their sizes) */
  PT_TYPE_BINARY_VIEW,
  PT_TYPE_LIST_VIEW,       /* int32 offsets and sizes: rows are any ranges of
                              the child, in any order, overlapping or not */
  PT_TYPE_LARGE_LIST_VIEW, /* the same with int64 offsets and sizes */
  PT_TYPE_RUN_END_ENCODED, /* no buffers; children: run ends (int16/32/64,
                              increasing, not null) and the runs' values */
  PT_TYPE_COUNT_ /* not a type: the number of type ids */
} pt_type_id;

typedef enum pt_time_unit {
  PT_SECOND = 0,
  PT_MILLI = 1,
  PT_MICRO = 2,
  PT_NANO = 3,
} pt_time_unit;

/* Parsed view of one ArrowSchema node. Dictionary encoding is not a type of
 * its own: a dictionary-encoded column has an integer index type here and
 * `dictionary` set; the value type is that of schema->dictionary. */
typedef struct pt_type {
  pt_type_id id;
  int32_t byte_width;  /* fixed_size_binary: bytes per value */
  int32_t list_size;   /* fixed_size_list: values per list */
  int32_t precision;   /* decimal32/64/128/256 */
  int32_t scale;       /* decimal32/64/128/256 */
  pt_time_unit unit;   /* timestamp, duration, time32, time64 */
  const char *tz;      /* timestamp: time zone, NULL if none; borrowed from the
                          schema's format string */
  const char *type_codes; /* unions: the type ids of the children in order,
                             "0,1,5" (borrowed from the format string) */
  int dictionary;      /* 1 if the node is dictionary-encoded */
} pt_type;

/* Parses schema->format (and checks children and dictionary counts against
 * it). The result borrows from schema. */
int pt_type_parse(const struct ArrowSchema *schema, pt_type *out, pt_error *err);

/* Human-readable type name of a schema node, e.g. "timestamp[us, tz=UTC]",
 * "list<int64>", "dictionary<values=utf8, indices=int32>". Writes at most
 * size bytes (NUL-terminated); returns the length it needed, like snprintf,
 * or -1 if the schema is invalid. */
int pt_type_name(const struct ArrowSchema *schema, char *buf, size_t size);

/* Fills *out with a new schema node that protium owns: format and name are
 * copied; flags are ARROW_FLAG_* (ARROW_FLAG_NULLABLE for most columns); the
 * node gets n_children children, each a released (release == NULL) schema for
 * the caller to fill with pt_schema_init, then the whole tree is released by
 * out->release. On failure *out is left released. */
int pt_schema_init(struct ArrowSchema *out, const char *format, const char *name,
                   int64_t flags, int64_t n_children, pt_error *err);

/* Makes schema dictionary-encoded: moves *dictionary (the value type) into
 * schema->dictionary. schema must have been made by pt_schema_init, its format
 * an integer type (the index type). On PT_OK *dictionary is released (moved). */
int pt_schema_set_dictionary(struct ArrowSchema *schema, struct ArrowSchema *dictionary,
                             pt_error *err);

/* Sets schema->metadata (made by pt_schema_init) from n key/value pairs of
 * NUL-terminated strings, encoded as the C Data Interface specifies. Copies. */
int pt_schema_set_metadata(struct ArrowSchema *schema, int64_t n, const char *const *keys,
                           const char *const *values, pt_error *err);
/* The same with the byte length of each key and value given (keys and values
 * may then hold any bytes, NUL included, as metadata may); a NULL lengths
 * array means NUL-terminated strings for that side. */
int pt_schema_set_metadata_n(struct ArrowSchema *schema, int64_t n, const char *const *keys,
                             const int64_t *key_lengths, const char *const *values,
                             const int64_t *value_lengths, pt_error *err);

/* Deep copy of a schema tree into *out (protium-owned). */
int pt_schema_copy(const struct ArrowSchema *schema, struct ArrowSchema *out, pt_error *err);

/* ------------------------------------------------------------------------ */
/* Arrow arrays */

/* Checks that array is a well-formed instance of schema: buffer and child
 * counts, lengths, offsets monotonic and in range of their children, null
 * counts, dictionary indices in range, recursively. Buffer sizes are not part
 * of the C Data Interface, so data-buffer bounds of foreign arrays are checked
 * through offsets only. */
int pt_array_validate(const struct ArrowSchema *schema, const struct ArrowArray *array,
                      pt_error *err);

/* A zero-copy slice: *out shows rows [offset, offset+length) of *array and
 * shares its buffers. array stays owned by the caller and valid; the buffers
 * live until both array and *out have been released. */
int pt_array_slice(struct ArrowArray *array, int64_t offset, int64_t length,
                   struct ArrowArray *out, pt_error *err);

/* Deep copy of array into *out (protium-owned), compacted: offset 0, buffers
 * holding exactly the sliced rows. */
int pt_array_copy(const struct ArrowSchema *schema, const struct ArrowArray *array,
                  struct ArrowArray *out, pt_error *err);

/* Whether row i (relative to array->offset) of array is valid (not null). */
int pt_array_is_valid(const struct ArrowSchema *schema, const struct ArrowArray *array,
                      int64_t i);

/* ------------------------------------------------------------------------ */
/* Builders: append values row by row (or list by list), then finish into an
 * ArrowArray. One builder per schema node; a builder for a nested type owns the
 * builders of its children (pt_builder_child) and of its dictionary
 * (pt_builder_dictionary). Builders grow their buffers geometrically. */

typedef struct pt_builder pt_builder;

/* On PT_OK the caller owns *out (free with pt_builder_free). The schema is
 * copied; the builder does not keep a pointer to it. */
int pt_builder_new(const struct ArrowSchema *schema, pt_builder **out, pt_error *err);
void pt_builder_free(pt_builder *b);

/* Appends n nulls. For struct and list builders children get n placeholder
 * slots (nulls, or zero-length lists) so lengths stay consistent. */
int pt_builder_append_null(pt_builder *b, int64_t n);
/* Integers, date32 (days), date64 (ms), timestamps, durations and times of
 * day (in the unit; times must lie in [0, one day)), month intervals,
 * dictionary indices; bool (0 or 1); decimals (the integer value).
 * Out-of-range values for the type give PT_ERANGE. */
int pt_builder_append_int(pt_builder *b, int64_t v);
int pt_builder_append_uint(pt_builder *b, uint64_t v);
/* float16 (rounded to nearest even), float32, float64. */
int pt_builder_append_double(pt_builder *b, double v);
/* utf8, large_utf8, binary, large_binary; fixed_size_binary (len must equal
 * the byte width); decimal32/64/128/256 (4/8/16/32 bytes, little-endian two's
 * complement); day_time intervals (8 bytes: int32 days, int32 milliseconds);
 * month_day_nano intervals (16 bytes: int32 months, int32 days, int64 ns). */
int pt_builder_append_bytes(pt_builder *b, const void *data, int64_t len);
/* A decimal (any width) from a decimal string such as "-12.340" (scale is the
 * type's). */
int pt_builder_append_decimal_string(pt_builder *b, const char *text);
/* Closes one list or struct row whose values were appended to the child
 * builders since the previous one. For fixed_size_list the child must have
 * received exactly list_size values. */
int pt_builder_append_row(pt_builder *b);
/* Closes one run of n rows (n >= 1) of a run-end encoded builder, whose
 * value was appended to the values builder (pt_builder_child(b, 1)); the run
 * ends (child 0) are kept here. pt_builder_append_null(b, n) appends a run
 * of n nulls. */
int pt_builder_append_run(pt_builder *b, int64_t n);
/* Closes one union row: its value was appended to the child whose type id
 * is type_id (for sparse unions, only to that child: the others get a null
 * here). A null row of a union (pt_builder_append_null) is a null of its
 * first child. */
int pt_builder_append_union(pt_builder *b, int type_id);
/* Child i of a struct builder, or the values builder (i = 0) of a list. The
 * parent owns it. NULL if there is no such child. */
pt_builder *pt_builder_child(pt_builder *b, int64_t i);
/* The builder of the dictionary values of a dictionary-encoded column; the
 * parent owns it. NULL for other columns. */
pt_builder *pt_builder_dictionary(pt_builder *b);
/* Rows appended so far. */
int64_t pt_builder_length(const pt_builder *b);
/* Moves what was built into *out (caller owns it) and resets the builder to
 * empty, ready for the next batch. */
int pt_builder_finish(pt_builder *b, struct ArrowArray *out, pt_error *err);
/* The message of the last failed append on b (or one of its children).
 * Borrowed; valid until the next call on b. */
const char *pt_builder_last_error(const pt_builder *b);

/* ------------------------------------------------------------------------ */
/* Arrow IPC: the stream and file formats (little-endian only). */

typedef enum pt_ipc_format {
  PT_IPC_STREAM = 0,
  PT_IPC_FILE = 1,
} pt_ipc_format;

typedef enum pt_compression {
  PT_COMPRESSION_NONE = 0,
  PT_COMPRESSION_LZ4_FRAME = 1,
  PT_COMPRESSION_ZSTD = 2,
} pt_compression;

typedef struct pt_ipc_write_options {
  pt_ipc_format format;
  pt_compression compression;
  int compression_level;   /* 0 = the default, Arrow C++'s and Spark's: ZSTD
                              level 1 (fast, ~the ratio of gzip), LZ4's fast
                              compressor; ZSTD goes up to 22, LZ4 (HC) to 12 */
  int emit_dictionary_deltas; /* 1: when a batch's dictionary extends the
                                 previous one, write only the new values as a
                                 delta (default 1 through pt_ipc_write_options_init) */
} pt_ipc_write_options;

/* Defaults: stream format, no compression, deltas on. */
void pt_ipc_write_options_init(pt_ipc_write_options *opts);

/* A growing byte buffer that functions append to (the IPC writer, JSON
 * output). Start from a zeroed one; the functions grow data with realloc. */
typedef struct pt_buf {
  char *data;     /* owned, malloc'd; NULL when empty */
  size_t len;     /* bytes used */
  size_t cap;     /* bytes allocated */
} pt_buf;

void pt_buf_free(pt_buf *buf);

typedef struct pt_ipc_writer pt_ipc_writer;

/* Opens a writer onto a file (created or truncated; path "-" is stdout).
 * The schema (a struct "+s" whose children are the columns) is copied.
 * opts may be NULL for the defaults. On PT_OK the caller owns *out. */
int pt_ipc_writer_open_path(const char *path, const struct ArrowSchema *schema,
                            const pt_ipc_write_options *opts, pt_ipc_writer **out,
                            pt_error *err);
/* Opens a writer onto a file descriptor, which stays the caller's (not
 * closed). */
int pt_ipc_writer_open_fd(int fd, const struct ArrowSchema *schema,
                          const pt_ipc_write_options *opts, pt_ipc_writer **out,
                          pt_error *err);
/* Opens a writer into a growing memory buffer; take it with
 * pt_ipc_writer_take_buffer after pt_ipc_writer_close. */
int pt_ipc_writer_open_buffer(const struct ArrowSchema *schema,
                              const pt_ipc_write_options *opts, pt_ipc_writer **out,
                              pt_error *err);
/* Opens a writer that appends the stream to buf, a growing buffer that stays
 * the caller's (see pt_buf below; start from a zeroed one, free it with
 * pt_buf_free). Leave buf alone until the writer is closed or freed; after
 * close, the stream is buf->data[len before open .. buf->len). To write the
 * next stream into the same memory, set buf->len = 0 and open again: the
 * pages are already there, so writing costs copying only, not the kernel's
 * first touch of fresh memory (the main cost of a big write into a new
 * buffer). */
int pt_ipc_writer_open_buf(pt_buf *buf, const struct ArrowSchema *schema,
                           const pt_ipc_write_options *opts, pt_ipc_writer **out,
                           pt_error *err);
/* Writes one record batch (a struct array matching the schema; it may be a
 * slice). The batch stays the caller's. */
int pt_ipc_writer_write(pt_ipc_writer *w, const struct ArrowArray *batch, pt_error *err);
/* Writes all batches of a stream, then nothing else (call close after). The
 * stream stays the caller's to release. */
int pt_ipc_writer_write_stream(pt_ipc_writer *w, struct ArrowArrayStream *stream,
                               pt_error *err);
/* Writes the end-of-stream marker (and, for files, the footer), flushes. */
int pt_ipc_writer_close(pt_ipc_writer *w, pt_error *err);
/* After close on a buffer writer: moves the bytes out. The caller owns
 * *data (free with free()). */
int pt_ipc_writer_take_buffer(pt_ipc_writer *w, void **data, int64_t *size, pt_error *err);
/* Frees the writer (closing nothing: an unclosed stream stays unterminated). */
void pt_ipc_writer_free(pt_ipc_writer *w);

/* Opens an IPC stream or file (detected by its magic bytes) at path as an
 * ArrowArrayStream. Regular files are memory-mapped and uncompressed buffers
 * are used in place (zero-copy); other files (pipes, "-" for stdin) are read
 * as streams. On PT_OK the caller owns *out. */
int pt_ipc_read_path(const char *path, struct ArrowArrayStream *out, pt_error *err);
/* The same over bytes in memory. The stream's arrays point into data: with
 * free_data non-NULL, ownership of data moves to the stream on PT_OK, which
 * calls free_data(data, free_arg) once every array and the stream are
 * released; with free_data NULL the caller keeps data alive that long. On
 * failure data stays the caller's and free_data is never called. */
int pt_ipc_read_buffer(const void *data, int64_t size,
                       void (*free_data)(void *data, void *free_arg), void *free_arg,
                       struct ArrowArrayStream *out, pt_error *err);
/* Reads an IPC stream from a file descriptor (not closed; read to its end
 * lazily, batch by batch). */
int pt_ipc_read_fd(int fd, struct ArrowArrayStream *out, pt_error *err);

/* ------------------------------------------------------------------------ */
/* Parquet: files read into Arrow record batches (see docs/parquet.md for the
 * types, encodings and codecs supported, and what is refused). */

/* A predicate over columns, for skipping row groups whose statistics (min,
 * max, null count) prove that no row can match. Columns are named by their
 * path ("price", or "info.a" inside a struct; not inside lists). Rows of the
 * row groups read are returned whether or not they match: apply the
 * predicate to them yourself; the filter only saves reading what cannot
 * match. */
typedef struct pt_parquet_filter pt_parquet_filter;

enum {
  PT_PARQUET_EQ = 1,
  PT_PARQUET_LT,
  PT_PARQUET_LE,
  PT_PARQUET_GT,
  PT_PARQUET_GE,
  PT_PARQUET_IN,      /* any of n values */
  PT_PARQUET_IS_NULL, /* no value */
  PT_PARQUET_AND,
  PT_PARQUET_OR,
  /* After AND/OR so that the numbers above keep their meaning. As in SQL
   * (and pyarrow, Spark), a null satisfies neither NE nor NOT_IN. */
  PT_PARQUET_NE,          /* a value other than the one given */
  PT_PARQUET_NOT_IN,      /* a value none of the n given */
  PT_PARQUET_IS_NOT_NULL, /* a value */
};

/* column op value (n = 1), or column IN / NOT IN values[0..n). Integers compare with
 * integer, date and float columns; doubles with numeric columns; bytes with
 * strings and binary (bytewise, unsigned). lengths NULL: NUL-terminated.
 * Values are copied. On PT_OK the caller owns *out (pt_parquet_filter_free). */
int pt_parquet_filter_int(const char *column, int op, const int64_t *values, int64_t n,
                          pt_parquet_filter **out, pt_error *err);
int pt_parquet_filter_uint(const char *column, int op, const uint64_t *values, int64_t n,
                           pt_parquet_filter **out, pt_error *err);
int pt_parquet_filter_double(const char *column, int op, const double *values, int64_t n,
                             pt_parquet_filter **out, pt_error *err);
int pt_parquet_filter_bytes(const char *column, int op, const char *const *values,
                            const int64_t *lengths, int64_t n, pt_parquet_filter **out,
                            pt_error *err);
/* column op timestamps: values since 1970-01-01 00:00 in unit
 * (PT_PARQUET_UNIT_*), UTC instants for a UTC-adjusted column, the wall
 * clock for one without a time zone. They compare with TIMESTAMP columns
 * of every unit (INT64; INT96 ones are never pruned). */
enum { PT_PARQUET_UNIT_S, PT_PARQUET_UNIT_MS, PT_PARQUET_UNIT_US, PT_PARQUET_UNIT_NS };
int pt_parquet_filter_timestamp(const char *column, int op, const int64_t *values, int64_t n,
                                int unit, pt_parquet_filter **out, pt_error *err);
/* column op decimals, given as text ("-12.345": digits with an optional
 * sign and point, at most 76 of them). They compare with DECIMAL columns
 * (INT32, INT64, FIXED_LEN_BYTE_ARRAY, BYTE_ARRAY) of any scale, exactly.
 * PT_EINVAL for text that is not such a number. */
int pt_parquet_filter_decimal(const char *column, int op, const char *const *values, int64_t n,
                              pt_parquet_filter **out, pt_error *err);
int pt_parquet_filter_is_null(const char *column, pt_parquet_filter **out, pt_error *err);
int pt_parquet_filter_is_not_null(const char *column, pt_parquet_filter **out, pt_error *err);
/* a AND b, a OR b (op PT_PARQUET_AND / _OR). On PT_OK *out owns a and b; on
 * failure they stay the caller's. */
int pt_parquet_filter_combine(int op, pt_parquet_filter *a, pt_parquet_filter *b,
                              pt_parquet_filter **out, pt_error *err);
void pt_parquet_filter_free(pt_parquet_filter *f);

typedef struct pt_parquet_read_options {
  const char *const *columns; /* names of the top-level columns to read, in
                                 this order; NULL = all columns */
  int64_t n_columns;          /* entries in columns */
  int64_t batch_size;         /* rows per batch at most; 0 (the default) = 65536, or
                                 for pt_read_parquet arrow.max_records_per_batch
                                 when that is above 0 */
  const pt_parquet_filter *filter; /* NULL: read every row group; else skip
                                      those that cannot match (copied) */
  int64_t row_group_start;    /* read row groups [start, start + row_groups) */
  int64_t row_groups;         /* only; 0 = to the end of the file */
  const char *const *dictionary; /* string or binary columns (paths, as
                                    filters name them) to read as Arrow
                                    dictionaries (int32 indices); columns
                                    written from dictionaries (ARROW:schema)
                                    are read so anyway. NULL = none */
  int64_t n_dictionary;       /* entries in dictionary */
  int plain_binary;           /* 1: for table formats whose own schema
                                 decides the types (Delta): strings and
                                 binaries come out as utf8 and binary
                                 whatever ARROW:schema says (large or view
                                 types), and INT96 timestamps (Spark's) as
                                 timestamp[us, UTC], not [ns]; 0 (default):
                                 as stored */
  const struct ArrowSchema *partition_schema; /* pt_read_parquet: a struct
                                    whose fields type the Hive-style keys
                                    they name (others are inferred, as Spark
                                    does); NULL = infer all. Not kept */
  int threads;                /* threads decoding column chunks at once, the
                                 calling one among them (1-16; 0 = 1): a row
                                 group's columns are shared out, and when
                                 they are fewer than the threads, several
                                 row groups are decoded together (memory:
                                 that many row groups) */
  int no_readahead;           /* threads = 1 only. 0 (default): the next row
                                 group is decoded on one more thread while
                                 the calling one decodes this one, as
                                 pyarrow's read_table(use_threads=False)
                                 does (memory: two row groups); 1: every
                                 row group on the calling thread alone */
} pt_parquet_read_options;

/* Defaults: all columns, batches of 65536 rows. */
void pt_parquet_read_options_init(pt_parquet_read_options *opts);

/* Opens the Parquet file at path as an ArrowArrayStream: the footer and the
 * schema are read now, row groups as batches are asked for (memory: one row
 * group's selected columns, two when one thread reads the next ahead; see
 * threads and no_readahead). The file is memory-mapped.
 * opts may be NULL for the defaults; it is not kept. Errors name the file,
 * row group, column and page. On PT_OK the caller owns *out. */
int pt_parquet_read_path(const char *path, const pt_parquet_read_options *opts,
                         struct ArrowArrayStream *out, pt_error *err);
/* The same over a whole file's bytes in memory. With free_data non-NULL,
 * ownership of data moves to the stream on PT_OK, which calls
 * free_data(data, free_arg) when released; with free_data NULL the caller
 * keeps data alive until the stream is released. On failure data stays the
 * caller's and free_data is never called. */
int pt_parquet_read_buffer(const void *data, int64_t size,
                           void (*free_data)(void *data, void *free_arg), void *free_arg,
                           const pt_parquet_read_options *opts, struct ArrowArrayStream *out,
                           pt_error *err);
/* Of a stream opened by pt_parquet_read_*: the row groups read so far and
 * those skipped by the filter. PT_EINVAL for other streams. */
int pt_parquet_stream_row_groups(struct ArrowArrayStream *stream, int64_t *read,
                                 int64_t *skipped, pt_error *err);
/* Of the same: the data pages decoded so far in the row groups read, and
 * those passed over because the page index (ColumnIndex and OffsetIndex of
 * the filter's columns) proves none of their rows can match. Pages are
 * only skipped when no selected column is nested; the rows of skipped
 * pages are then left out of every column. */
int pt_parquet_stream_pages(struct ArrowArrayStream *stream, int64_t *read, int64_t *skipped,
                            pt_error *err);
/* Of the same: the data pages read so far that were handed out in place,
 * their values' buffer pointing into the mapped file rather than a copy
 * (pt_parquet_read_path only): a column chunk that is one uncompressed
 * PLAIN page of 4- or 8-byte values Arrow keeps as they are, without
 * nulls, whose values start at a multiple of their width in the file. Such
 * arrays keep the mapping alive until the last of them is released. */
int pt_parquet_stream_zero_copy(struct ArrowArrayStream *stream, int64_t *pages, pt_error *err);

/* Parquet writing: Arrow batches of one schema into one file. */

/* Compression codecs (Parquet's own numbering). */
enum {
  PT_PARQUET_UNCOMPRESSED = 0,
  PT_PARQUET_SNAPPY = 1,
  PT_PARQUET_GZIP = 2,
  PT_PARQUET_BROTLI = 4,
  PT_PARQUET_ZSTD = 6,
  PT_PARQUET_LZ4_RAW = 7,
};

typedef struct pt_parquet_write_options {
  int codec;                     /* PT_PARQUET_*; default SNAPPY (as Spark) */
  int compression_level;         /* 0 = the codec's default */
  int64_t row_group_rows;        /* rows per row group at most; default 1048576 */
  int64_t page_bytes;            /* a data page is closed once its values reach
                                    this size (or 20000 rows); default 1 MiB */
  int64_t dictionary_page_bytes; /* a column's dictionary larger than this falls
                                    back to PLAIN for the rest of the row group
                                    (as does one no smaller, with the first
                                    page's indices, than that page's PLAIN
                                    values); default 1 MiB */
  int use_dictionary;            /* 1 (default): dictionary-encode columns */
  int data_page_version;         /* 1 (default) or 2 */
  int write_statistics;          /* 1 (default): min, max, null count per column
                                    chunk, null count per page */
  int store_arrow_schema;        /* 1 (default): the Arrow schema under
                                    ARROW:schema, so pyarrow gets exact types */
  const char *const *partition_by; /* pt_write_parquet only: top-level columns
                                      whose values name Hive-style key=value/
                                      directories (and leave the files);
                                      NULL = none. Borrowed for the call. */
  int64_t n_partition_by;        /* entries in partition_by */
  int threads;                   /* threads encoding the column chunks of a file
                                    at once, the calling one among them (1 to
                                    16; default 1). Columns, and the leaves of
                                    a nested column, are shared out; the file
                                    is the same bytes whatever the number.
                                    pt_write_parquet's tasks write with the
                                    session's parquet.write.threads unless
                                    this is above 1. */
  const char *const *metadata_keys;   /* extra key-value pairs for the footer
                                         (NUL-terminated), after the schema's
                                         own metadata, which is always written
                                         there too; a key given both ways takes
                                         this value. NULL = none. Copied at
                                         open (pt_write_parquet: borrowed for
                                         the call). */
  const char *const *metadata_values; /* n_metadata values, NULL entries = "" */
  int64_t n_metadata;
  int mode;                      /* pt_write_parquet only: pt_write_mode, what
                                    a directory that is not empty means;
                                    default PT_WRITE_ERROR */
} pt_parquet_write_options;

/* What pt_write_parquet does with a directory that already holds files
 * (PySpark's save modes). Each commits exactly once, all or nothing: a
 * failed job leaves the directory as it was. One writer at a time per
 * directory (they share its _temporary). */
typedef enum pt_write_mode {
  PT_WRITE_ERROR = 0,     /* refuse it ("error", "errorifexists") */
  PT_WRITE_APPEND = 1,    /* add files beside its own; their names carry a
                             token unique to the write (part-NNNNN-TOKEN.parquet) */
  PT_WRITE_OVERWRITE = 2, /* its contents replaced, once the job has
                             succeeded (they are moved aside, then removed) */
  PT_WRITE_IGNORE = 3,    /* write nothing and succeed */
} pt_write_mode;

/* The defaults above. */
void pt_parquet_write_options_init(pt_parquet_write_options *opts);

typedef struct pt_parquet_writer pt_parquet_writer;

/* Opens a writer onto a new file (created or truncated). schema is a struct
 * "+s" whose children are the columns (structs and lists to any depth;
 * dictionary-encoded columns are written as their values); it is copied.
 * opts may be NULL for the defaults. On PT_OK the caller owns *out (free
 * with pt_parquet_writer_free). */
int pt_parquet_writer_open_path(const char *path, const struct ArrowSchema *schema,
                                const pt_parquet_write_options *opts, pt_parquet_writer **out,
                                pt_error *err);
/* Opens a writer that appends the file to buf (a growing buffer that stays
 * the caller's; see pt_buf). */
int pt_parquet_writer_open_buf(pt_buf *buf, const struct ArrowSchema *schema,
                               const pt_parquet_write_options *opts, pt_parquet_writer **out,
                               pt_error *err);
/* Appends the rows of batch (a struct array of the schema; may be a slice).
 * The batch stays the caller's. After a failure the writer only frees. */
int pt_parquet_writer_write(pt_parquet_writer *w, const struct ArrowArray *batch, pt_error *err);
/* Writes the last row group and the footer, and closes the file. */
int pt_parquet_writer_close(pt_parquet_writer *w, pt_error *err);
/* Frees the writer; a file not closed is left incomplete. */
void pt_parquet_writer_free(pt_parquet_writer *w);

/* ------------------------------------------------------------------------ */
/* Output of rows as JSON lines (what `protium cat` prints). */

/* Writes each row of batch (a struct array of schema) as one JSON object per
 * line to buf (growing; see pt_buf above). */
int pt_json_write_batch(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                        pt_buf *out, pt_error *err);


/* ------------------------------------------------------------------------ */
/* CSV (RFC 4180 with options): text in memory to one record batch. */

typedef enum pt_csv_mode {
  PT_CSV_FAILFAST = 0,      /* the first malformed record fails the read */
  PT_CSV_DROPMALFORMED = 1, /* malformed records are skipped */
  PT_CSV_PERMISSIVE = 2,    /* bad fields become null; the record text goes to
                               the corrupt-record column when one is named */
} pt_csv_mode;

typedef struct pt_csv_options {
  int header;                     /* 1: the first record names the columns
                                     (blank lines are no records) */
  char delimiter;                 /* ',' */
  char quote;                     /* '"'; 0: no quoting */
  char escape;                    /* '"': a doubled quote is a quote; another
                                     character escapes the next one in quotes */
  const char *const *null_values; /* unquoted field texts read as null;
                                     NULL: just the empty field */
  int64_t n_null_values;
  const struct ArrowSchema *schema; /* struct schema to read into (borrowed);
                                       NULL: infer over the first infer_rows */
  int64_t infer_rows;             /* 1000 */
  pt_csv_mode mode;               /* PT_CSV_FAILFAST */
  const char *corrupt_column;     /* PERMISSIVE: name of an extra utf8 column
                                     holding malformed records' text; NULL: none */
} pt_csv_options;

/* The defaults above. */
void pt_csv_options_init(pt_csv_options *opts);

/* Offset of the first record that starts at or after offset in data[0, len)
 * (len when none does). Quote state is tracked from the start of the data, so
 * a newline inside a quoted field is never taken for a boundary. */
int64_t pt_csv_record_start(const char *data, int64_t len, int64_t offset,
                            const pt_csv_options *opts);

/* Reads the records that start in the byte range [begin, end) of data (the
 * whole text of file `name`, used in messages) into *schema_out and *out (a
 * struct array, one child per column); the caller owns both on PT_OK. The
 * schema (given or inferred from the first records of data) is the same for
 * every range, so ranges split a file into partitions with no record lost or
 * read twice. opts NULL: defaults. A malformed record in FAILFAST mode gives
 * PT_EFORMAT naming the file and line. */
int pt_csv_read(const char *data, int64_t len, int64_t begin, int64_t end, const char *name,
                const pt_csv_options *opts, struct ArrowSchema *schema_out,
                struct ArrowArray *out, pt_error *err);

/* Appends batch (a struct array, one child per column) to *out as CSV: a
 * header of column names when header is set, \n after each record, fields
 * quoted (quotes doubled) when they hold the delimiter, a quote or a newline,
 * and strings also when empty or when they would read back as another type;
 * null is the empty unquoted field. Columns may be bool, integers, floats
 * (17 significant digits), date32, timestamps (ISO 8601, 'Z' with a time
 * zone) and strings; others give PT_ENOTSUP. On failure *out is as it was. */
int pt_csv_write_batch(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                       int header, char delimiter, pt_buf *out, pt_error *err);


/* ------------------------------------------------------------------------ */
/* Engine: configuration, sessions, lazy datasets, actions.
 *
 * A session owns executor processes (for master "local[N]": N processes on
 * this machine, started and supervised by the driver). Datasets are lazy,
 * partitioned plans; an action (pt_collect, pt_count, pt_write_ipc) turns the
 * plan into stages split at shuffles, runs them as tasks on the executors,
 * retries what fails, and returns exact results. See docs/engine.md. */

/* Configuration: string keys and values (see the table in README.md). Values
 * are checked when set: an unknown key or a malformed value is PT_EINVAL with
 * a message that names the key and what it accepts. */
typedef struct pt_conf pt_conf;

/* On PT_OK the caller owns *out (free with pt_conf_free). */
int pt_conf_new(pt_conf **out, pt_error *err);
int pt_conf_set(pt_conf *conf, const char *key, const char *value, pt_error *err);
/* The value set for key, or its default; NULL for an unknown key. Borrowed:
 * valid until the next pt_conf_set on conf. */
const char *pt_conf_get(const pt_conf *conf, const char *key);
void pt_conf_free(pt_conf *conf);

typedef struct pt_session pt_session;

/* Opens a session: master "local[N]" starts N executor processes on this
 * machine (NULL or "local" = one per core), each with executor.slots task
 * slots, and returns once they are all ready. conf may be NULL (defaults); it
 * is copied. On PT_OK the caller owns *out (close with pt_session_close).
 *
 * Executors run this same program: before main() they find themselves in
 * executor mode and serve tasks instead (functions are found by the names
 * registered with PT_REGISTER_FN). So call nothing with side effects in
 * constructors of your own program. */
int pt_session_open(const char *master, const pt_conf *conf, pt_session **out, pt_error *err);
/* Stops the executors, removes the session's temporary files, frees s.
 * Datasets of the session must be freed before. */
void pt_session_close(pt_session *s);

/* Limits of what pt_executor_info reports of an executor's resources (the
 * scheduler itself has none: an executor may own any number of addresses). */
#define PT_EXECUTOR_RESOURCES_MAX 8
#define PT_RESOURCE_ADDRESSES_MAX 16
#define PT_RESOURCE_NAME_MAX 32

/* One named resource of an executor ("gpu") and the addresses it owns. */
typedef struct pt_executor_resource {
  char name[PT_RESOURCE_NAME_MAX];
  int32_t n_addresses;          /* all it owns; the first PT_RESOURCE_ADDRESSES_MAX
                                   are listed below */
  char addresses[PT_RESOURCE_ADDRESSES_MAX][PT_RESOURCE_NAME_MAX];
} pt_executor_resource;

typedef struct pt_executor_info {
  int64_t id;      /* executor id: 1, 2, ...; a replacement gets a new id */
  int64_t pid;     /* process id, for the operating system */
  int32_t slots;   /* concurrent tasks */
  int32_t alive;   /* 1 until the executor is lost */
  int32_t n_resources; /* entries of resources (at most PT_EXECUTOR_RESOURCES_MAX) */
  pt_executor_resource resources[PT_EXECUTOR_RESOURCES_MAX]; /* what the driver dealt
                                    it from discovery (resources.<name>.*) */
} pt_executor_info;

/* Fills out[0..cap) with the session's live executors; *n = their number
 * (possibly more than cap). */
int pt_session_executors(pt_session *s, pt_executor_info *out, int64_t cap, int64_t *n,
                         pt_error *err);

/* What a running task knows of itself. Read the fields, or use the
 * pt_ctx_* accessors below (the only way to reach barrier(), all_gather()
 * and the other services of the task's stage). Valid while the function it
 * was given to runs. */
typedef struct pt_task_context {
  int64_t job_id;
  int64_t stage_id;
  int64_t partition;     /* partition index within the stage */
  int64_t attempt;       /* 0 for the first attempt of this partition */
  int64_t executor_id;
  int64_t stage_attempt; /* 0 for the first attempt of the whole stage */
  int64_t num_tasks;     /* tasks (partitions) of the stage */
  void *internal_;       /* the engine's; do not touch */
} pt_task_context;

/* User functions, run in executor processes.
 *
 * A map function turns one record batch into one record batch (of the output
 * schema given to pt_map_batches). *out is released on entry; on PT_OK the
 * engine owns what the function put there. arg/arg_size are the bytes given
 * to pt_map_batches (copied to every executor; a pointer inside them means
 * nothing in another process). A failure returns non-zero and fills err;
 * the task is then retried. */
typedef int (*pt_map_fn)(const pt_task_context *ctx, const struct ArrowSchema *schema,
                         const struct ArrowArray *batch, struct ArrowArray *out,
                         const void *arg, size_t arg_size, pt_error *err);
/* A filter sets bit i of keep (LSB-first, batch->length bits, zeroed on
 * entry) for each row i to keep. */
typedef int (*pt_filter_fn)(const pt_task_context *ctx, const struct ArrowSchema *schema,
                            const struct ArrowArray *batch, uint8_t *keep, const void *arg,
                            size_t arg_size, pt_error *err);

/* A partition function sees its task's whole partition at once: `input`
 * streams the partition's batches (borrowed: read as much of it as you
 * like, do not release it; input->get_schema gives its schema) and the
 * function emits output batches with pt_ctx_emit, as many as it likes
 * (none is fine). arg/arg_size as for map functions. Returning non-zero
 * with a message in err fails the task. Give it to pt_map_partitions. */
typedef int (*pt_partition_fn)(const pt_task_context *ctx, struct ArrowArrayStream *input,
                               const void *arg, size_t arg_size, pt_error *err);

/* Task context services, for any user function's ctx. */
int64_t pt_ctx_partition_id(const pt_task_context *ctx);
int64_t pt_ctx_num_tasks(const pt_task_context *ctx);
int64_t pt_ctx_stage_attempt(const pt_task_context *ctx);
int64_t pt_ctx_task_attempt(const pt_task_context *ctx);

/* The addresses of resource `name` ("gpu") the scheduler gave this task
 * (its stage's resource profile, pt_with_resources): *addrs (borrowed,
 * valid while the task runs) has *n entries; *n = 0 when the task holds
 * none (no request, or an optional one that found nothing free). */
int pt_ctx_resources(const pt_task_context *ctx, const char *name, const char *const **addrs,
                     int64_t *n, pt_error *err);
/* The environment for processes the task starts (a Python worker, an
 * mpirun): this process's environment with each held resource's variable
 * (resources.<name>.env, CUDA_VISIBLE_DEVICES for gpu) set to the task's
 * addresses, comma-separated. Tasks are threads of one executor, so the
 * executor's own environment is never changed; pass *envp to execve or
 * posix_spawn. On PT_OK the caller owns *envp (free with pt_env_free). */
int pt_ctx_child_env(const pt_task_context *ctx, char ***envp, pt_error *err);
void pt_env_free(char **envp);

/* Emits one output batch of a partition function (of the out_schema given
 * to pt_map_partitions; checked). The batch is moved: released on return,
 * success or not. Fails (PT_ECANCELED) once the task's barrier stage
 * attempt was stopped. */
int pt_ctx_emit(const pt_task_context *ctx, struct ArrowArray *batch, pt_error *err);

/* One task of a barrier stage attempt, as pt_ctx_task_infos lists them. */
typedef struct pt_task_info {
  int64_t partition;    /* the task's partition id (= its index in the list) */
  int64_t executor_id;
  int64_t pid;          /* its executor's process id */
  int32_t port;         /* a TCP port chosen for this task, free when the attempt
                           started: listen on it (MPI, torch.distributed
                           rendezvous); unique within the attempt */
  char host[256];       /* host name of its executor */
} pt_task_info;

/* Barrier stages only (see pt_barrier). Every task of the stage attempt, by
 * partition id: *infos (borrowed, valid while the task runs) has *n =
 * num_tasks entries. PT_ESTATE in an ordinary stage. */
int pt_ctx_task_infos(const pt_task_context *ctx, const pt_task_info **infos, int64_t *n,
                      pt_error *err);
/* Waits until every task of the stage attempt has called pt_ctx_barrier as
 * often as this one (Spark's BarrierTaskContext.barrier()). Errors, at
 * once: another task called pt_ctx_all_gather at this step; a task of the
 * attempt failed or its executor was lost (the message names the
 * partitions); the attempt was stopped; barrier.timeout passed (the message
 * names the partitions that never arrived). The stage then runs again,
 * whole. PT_ESTATE in an ordinary stage. */
int pt_ctx_barrier(const pt_task_context *ctx, pt_error *err);
/* A barrier with data: every task gives `size` bytes (0 allowed, sizes may
 * differ) and receives all tasks' payloads in partition order. On PT_OK the
 * caller owns *out (free with free()): the payloads one after another,
 * sizes[i] (an array of num_tasks entries, the caller's) bytes of partition
 * i's. Errors as pt_ctx_barrier. */
int pt_ctx_all_gather(const pt_task_context *ctx, const void *data, size_t size, void **out,
                      size_t *sizes, pt_error *err);
/* A directory of the task's stage, the same in every attempt of the stage
 * and shared by its tasks (so an attempt can resume from what a failed one
 * saved), created on first use, removed when the job ends. *path is
 * borrowed, valid while the task runs. */
int pt_ctx_checkpoint_dir(const pt_task_context *ctx, const char **path, pt_error *err);

/* Executor mode. Executors run this same program: the driver starts it again
 * with PROTIUM_EXECUTOR_* set in its environment, and this header gives every
 * program that includes it a constructor that, in such a process, serves
 * tasks and exits before main() runs. It runs after the PT_REGISTER_FN
 * constructors (priority 101), whether libprotium is linked statically or
 * shared. You never call pt_executor_hook yourself. */
void pt_executor_hook(void);
#if !defined(PT_BUILDING_LIBRARY) && defined(__GNUC__)
__attribute__((constructor(65000), used)) static void pt_executor_hook_ctor_(void) {
  pt_executor_hook();
}
#endif

/* Registers fn under name, so that executors can find it. Use the macro. */
int pt_fn_register(const char *name, void (*fn)(void));
/* Write PT_REGISTER_FN(my_function) once at file scope next to a function
 * passed to pt_map_batches, pt_filter or pt_map_partitions. */
#define PT_REGISTER_FN(fn)                                                     \
  __attribute__((constructor(101))) static void pt_register_fn_##fn(void) {   \
    pt_fn_register(#fn, (void (*)(void))(fn));                                 \
  }

/* A lazy, partitioned dataset. Every function that returns one gives the
 * caller a reference to free with pt_dataset_free; inputs stay the caller's. */
typedef struct pt_dataset pt_dataset;

/* One int64 column "id" with start, start+1, ..., end-1 in `partitions`
 * contiguous partitions (like Spark's spark.range). */
int pt_range(pt_session *s, int64_t start, int64_t end, int64_t partitions, pt_dataset **out,
             pt_error *err);
/* Arrow IPC files (stream or file format): a file, a directory (its *.arrow,
 * *.arrows, *.ipc and *.feather files, sorted by name) or a glob; one
 * partition per file. Files must share one schema. */
int pt_read_ipc(pt_session *s, const char *path, pt_dataset **out, pt_error *err);
/* Parquet files: a file, a directory (the *.parquet files below it, depth
 * first by name; Hive-style key=value directories become columns, typed as
 * Spark infers them, and filters on them prune directories) or a glob. Whole
 * row groups are dealt, in file order, into partitions of about equal size
 * and at most about parquet.partition_bytes (uncompressed, as the files
 * say), at least one per task slot of the session when the files are
 * smaller than that per slot (none under 4 MiB), a multiple of the slots
 * over it: several small files share a partition, a big file is split
 * between its row groups.
 * opts (may be NULL): columns and batch_size apply to every partition; a
 * filter drops, when planning, the row groups whose statistics rule it out,
 * and travels with the tasks, which pass over the pages a page index rules
 * out (pt_stage_stats counts them; rows of what is read are not filtered);
 * row_group_start/row_groups must be 0. Files must share one schema. The footers are read now, the data when
 * an action runs. */
int pt_read_parquet(pt_session *s, const char *path, const pt_parquet_read_options *opts,
                    pt_dataset **out, pt_error *err);
/* What pt_read_parquet's planning passed over for ds (a dataset it made):
 * the files found and how many a filter on Hive-style partition keys
 * pruned (and the key=value directories they sit in); the row groups of
 * the other files and how many their statistics ruled out. Pages are
 * counted when the tasks run (pt_stage_stats). PT_EINVAL for other
 * datasets. */
typedef struct pt_parquet_scan {
  int64_t files;
  int64_t files_pruned;            /* by partition values, not read past the footer */
  int64_t directories_pruned;      /* the leaf key=value directories of those */
  int64_t row_groups;              /* in the files not pruned */
  int64_t row_groups_skipped;      /* of those, ruled out by their statistics */
} pt_parquet_scan;
int pt_parquet_scan_info(const pt_dataset *ds, pt_parquet_scan *out, pt_error *err);

/* Delta Lake tables (docs/delta.md): which version to read, and what. */
typedef struct pt_delta_read_options {
  int64_t version;                 /* -1 (default): the latest */
  int64_t timestamp_ms;            /* INT64_MIN (default): none; else the latest
                                      version committed at or before it (ms
                                      since the epoch); not with version */
  const char *const *columns;      /* top-level columns to read, in this
                                      order (NULL: all, in the table's) */
  int64_t n_columns;
  const pt_parquet_filter *filter; /* NULL: every file; else skip the files whose
                                      partition values or stats rule it out,
                                      and the row groups of the rest that their
                                      footers rule out once the filter is bound
                                      to their partition values (rows of the
                                      rest are not filtered); dates compare
                                      as days, timestamps as µs */
  int64_t batch_size;              /* rows per batch at most; 0: the reader's */
} pt_delta_read_options;
void pt_delta_read_options_init(pt_delta_read_options *opts);
/* The Delta table at path as a dataset: its log replayed to the version
 * asked (checkpoints and JSON commits), the active files' partition values
 * as columns typed by the table schema (columns in the table's order; a
 * column a file lacks is null there), files
 * pruned by opts->filter, the rest planned as pt_read_parquet plans files.
 * A table that needs a reader feature protium lacks (deletion vectors,
 * column mapping, ...) is refused with PT_ENOTSUP naming it; a damaged log
 * with PT_EFORMAT naming the file. On PT_OK the caller owns *out. */
int pt_read_delta(pt_session *s, const char *path, const pt_delta_read_options *opts,
                  pt_dataset **out, pt_error *err);
/* What pt_read_delta found for ds (a dataset it made): the version read,
 * the table's active files and how many the filter skipped. PT_EINVAL for
 * other datasets. */
typedef struct pt_delta_scan {
  int64_t version;
  int64_t files;                   /* active in the version */
  int64_t files_skipped;           /* of those, ruled out by the filter */
} pt_delta_scan;
int pt_delta_scan_info(const pt_dataset *ds, pt_delta_scan *out, pt_error *err);
/* CSV files: a file, a directory (its *.csv and *.tsv files, sorted by name)
 * or a glob, read with opts (NULL: the defaults of pt_csv_options_init; the
 * options are copied, opts->schema too). The schema is opts->schema, else
 * inferred now from the first infer_rows records of the first file (column
 * names from its header when header is set), plus the corrupt-record column
 * when one is named. Files are cut into byte ranges of about
 * csv.partition_bytes at record starts (quoted newlines respected), found now
 * in one pass over each file; small files share a partition. With header,
 * each file's first record (its first line that is not blank) is skipped;
 * blank lines are no records. A malformed record fails the task
 * (FAILFAST, naming file and line) or is handled as opts->mode says.
 * pt_count of the dataset alone converts no value (as Spark's column
 * pruning): in FAILFAST it fails on a record of the wrong shape (fields,
 * quotes) but not on a value that does not convert, which fails
 * pt_collect and the writes. */
int pt_read_csv(pt_session *s, const char *path, const pt_csv_options *opts, pt_dataset **out,
                pt_error *err);
/* How pt_read_sql splits a read into partitions, as Spark's JDBC source
 * does: by ranges of a numeric column, or one partition per predicate. */
typedef struct pt_sql_read_options {
  const char *partition_column;   /* NULL: no ranges. Used as given (quote it
                                     if it needs quoting) */
  int64_t lower_bound, upper_bound; /* set the strides only: nothing is
                                       filtered out (the first range is open
                                       below and takes the NULLs, the last is
                                       open above) */
  int64_t num_partitions;         /* ranges (fewer when upper - lower is smaller) */
  const char *const *predicates;  /* WHERE conditions, one partition each; they
                                     should not overlap. NULL: none */
  int64_t n_predicates;
  int64_t fetch_size;             /* rows per batch; 0: 65536 (ADBC drivers
                                     batch as they see fit) */
  const char *adbc_driver;        /* adbc: URLs: the driver library's path;
                                     NULL: libadbc_driver_NAME.so from the
                                     sql.adbc.driver_path directories, else
                                     where the loader finds it */
} pt_sql_read_options;

/* No partitioning (one partition), fetch_size 0. */
void pt_sql_read_options_init(pt_sql_read_options *opts);

/* A table or query of a PostgreSQL database (url: postgresql://user:pw@host
 * :port/db, or libpq's key=value form; the password may also come from
 * sql.password.<host>[:<port>] or sql.password, then PGPASSWORD) or a
 * MySQL/MariaDB one (mysql://user:pw@host:port/db; or those keys, then
 * MYSQL_PWD), or of any
 * database through its ADBC driver (adbc:NAME:..., e.g. adbc:sqlite:///a.db,
 * adbc:postgresql://user@host/db; the driver library as opts->adbc_driver
 * says; docs/sql.md). source is a query when it starts with SELECT, WITH, VALUES or
 * '(' (any case), else a table name, used as given. The columns are
 * described now (a type protium cannot map is refused, naming the column);
 * each task opens its own connection and streams its partition's rows
 * (binary COPY) when an action runs. opts NULL: one partition. Passwords are
 * masked (***) in every message. */
int pt_read_sql(pt_session *s, const char *url, const char *source,
                const pt_sql_read_options *opts, pt_dataset **out, pt_error *err);
/* In-memory record batches, one partition each. The batches are moved (on
 * PT_OK each is released); the schema is copied. */
int pt_from_batches(pt_session *s, const struct ArrowSchema *schema, struct ArrowArray *batches,
                    int64_t n, pt_dataset **out, pt_error *err);

/* Transformations. fn must be registered (PT_REGISTER_FN). out_schema: the
 * schema of the batches fn returns; NULL = the input schema. */
int pt_map_batches(pt_dataset *ds, pt_map_fn fn, const struct ArrowSchema *out_schema,
                   const void *arg, size_t arg_size, pt_dataset **out, pt_error *err);
int pt_filter(pt_dataset *ds, pt_filter_fn fn, const void *arg, size_t arg_size,
              pt_dataset **out, pt_error *err);
/* Runs fn once per partition over the whole partition (Spark's
 * mapPartitions); fn emits batches of out_schema (NULL = the input schema)
 * with pt_ctx_emit. One pt_map_partitions per stage: put a shuffle
 * (pt_repartition) between two. */
int pt_map_partitions(pt_dataset *ds, pt_partition_fn fn, const struct ArrowSchema *out_schema,
                      const void *arg, size_t arg_size, pt_dataset **out, pt_error *err);
/* Barrier execution mode (Spark's rdd.barrier()): the stage *out is in is a
 * barrier stage; as in Spark that is all of it, from the previous shuffle or
 * the source to the next shuffle or the action (a pt_repartition before
 * pt_barrier keeps upstream work out of the gang). Its N tasks start together (only when N slots are free
 * at once), may use pt_ctx_barrier, pt_ctx_all_gather and pt_ctx_task_infos,
 * and if one fails, all are stopped and the whole stage runs again (up to
 * barrier.max_attempts). Typically followed by pt_map_partitions. A stage
 * with more tasks than the cluster has slots fails at once. */
int pt_barrier(pt_dataset *ds, pt_dataset **out, pt_error *err);
/* pt_barrier whose stage runs at most max_attempts times (0 =
 * barrier.max_attempts): a caller that resizes the gang between attempts
 * (elastic training) takes each failure back with 1. When a stage has
 * several, the one nearest its end counts. */
int pt_barrier_attempts(pt_dataset *ds, int64_t max_attempts, pt_dataset **out,
                        pt_error *err);
/* Stage-level resource profiles (Spark's ResourceProfile and
 * rdd.withResources): what each task of a stage needs of the executors'
 * named resources. Build one, attach it with pt_with_resources; the
 * profile is copied, so free it when you like. */
typedef struct pt_resource_profile pt_resource_profile;

/* Flags of pt_resource_profile_require. */
#define PT_RESOURCE_OPTIONAL 1 /* take it when free, run without it otherwise */

/* On PT_OK the caller owns *out (free with pt_resource_profile_free). */
int pt_resource_profile_new(pt_resource_profile **out, pt_error *err);
/* Each task needs `amount` of resource `name`: a whole number (that many
 * addresses, each the task's alone) or a fraction 0 < amount < 1 (one
 * address shared by at most floor(1 / amount) tasks; amount must be at
 * least 1/64). flags: 0 (required: the task waits until it is free) or
 * PT_RESOURCE_OPTIONAL. A second call for one name replaces the first. */
int pt_resource_profile_require(pt_resource_profile *p, const char *name, double amount,
                                int flags, pt_error *err);
/* Each task takes `cpus` of its executor's slots (executor.slots; 1 by
 * default), as Spark's spark.task.cpus: an executor never runs tasks whose
 * cpus add up to more than its slots. */
int pt_resource_profile_cpus(pt_resource_profile *p, int32_t cpus, pt_error *err);
void pt_resource_profile_free(pt_resource_profile *p);

/* Runs the stage *out is in with profile p: every task of it gets concrete
 * addresses (pt_ctx_resources, pt_ctx_child_env). As with pt_barrier, the
 * stage is all of it, from the previous shuffle or source to the next
 * shuffle or action; other stages of the job keep their own profiles. A
 * request no executor could ever satisfy fails the action at once. */
int pt_with_resources(pt_dataset *ds, const pt_resource_profile *p, pt_dataset **out,
                      pt_error *err);
/* A shuffle into n partitions: round robin over rows. */
int pt_repartition(pt_dataset *ds, int64_t n, pt_dataset **out, pt_error *err);
/* A shuffle into n partitions by the hash of the key columns: rows with equal
 * keys land in the same partition. */
int pt_repartition_by(pt_dataset *ds, int64_t n, const char *const *keys, int64_t n_keys,
                      pt_dataset **out, pt_error *err);

/* The dataset's schema (a struct "+s"). On PT_OK the caller owns *out. */
int pt_dataset_schema(pt_dataset *ds, struct ArrowSchema *out, pt_error *err);
int64_t pt_dataset_num_partitions(const pt_dataset *ds);
void pt_dataset_free(pt_dataset *ds);

/* Actions: each runs a job and waits for it. A failed job returns the code
 * of its cause, with a message naming the stage, partition and attempts:
 * a task's own error code when a partition failed task.max_failures times
 * (what the function returned: PT_EINVAL, PT_ENOMEM, ...), PT_ETIMEDOUT
 * when its last attempt ran past task.timeout, PT_EIO for lost executors
 * and map outputs, PT_ENOMEM when the driver ran out of memory,
 * PT_ECANCELED when the session was closed under it. */
/* All rows, as a stream of batches in partition order. */
int pt_collect(pt_dataset *ds, struct ArrowArrayStream *out, pt_error *err);
int pt_count(pt_dataset *ds, int64_t *out, pt_error *err);
/* Writes one IPC file per partition, dir/part-00000.arrow ..., then
 * dir/_SUCCESS. Each task attempt writes to its own temporary name; exactly one
 * attempt per partition is committed, and only when every partition
 * succeeded: a failed job leaves no partial output visible. opts NULL: IPC
 * file format, uncompressed. dir must not exist or be empty. */
int pt_write_ipc(pt_dataset *ds, const char *dir, const pt_ipc_write_options *opts,
                 pt_error *err);

/* ------------------------------------------------------------------------ */
/* Job metrics: what a finished job did (as Spark's status tracker and Ray's
 * state API report it), per stage attempt: the tasks launched and how they
 * ended, the faults the engine absorbed (executors lost, map outputs lost
 * and recomputed), rows and bytes moved. Kept for the session's last 64
 * jobs; each action also records its job id in the dataset it ran on. */

/* Why a task attempt ended without output. */
typedef enum pt_task_cause {
  PT_CAUSE_ERROR = 0,         /* the function or the engine returned an error */
  PT_CAUSE_TIMEOUT = 1,       /* ran past task.timeout (its executor was killed) */
  PT_CAUSE_EXECUTOR_LOST = 2, /* its executor was lost while it ran */
  PT_CAUSE_FETCH_FAILED = 3,  /* a map output it read was gone (not counted
                                 toward task.max_failures) */
  PT_CAUSE_KILLED = 4,        /* stopped on the driver's request */
  PT_CAUSE_COUNT_             /* not a cause: the number of causes */
} pt_task_cause;

/* One attempt of one stage (a stage runs again under a new attempt when a
 * map output it reads was lost and recomputed). */
typedef struct pt_stage_stats {
  int64_t stage_id;
  int64_t attempt;            /* 0, 1, ...: the StageDef attempt */
  int64_t partitions;         /* of the stage */
  int32_t is_map;             /* 1: writes a shuffle for a later stage */
  int64_t tasks_launched;     /* attempts sent to executors */
  int64_t tasks_succeeded;    /* first successful attempt of a partition */
  int64_t tasks_failed;       /* ended without output: the sum of failed_by_cause */
  int64_t failed_by_cause[PT_CAUSE_COUNT_];
  int64_t tasks_retried;      /* launched with a task attempt number > 0 */
  int64_t tasks_requeued;     /* queued on a lost executor (or running beside the task whose
                                 crash ended it), launched again uncounted */
  int64_t tasks_duplicate;    /* succeeded after another attempt of its partition
                                 had: output discarded (for write_ipc: not committed) */
  int64_t tasks_orphaned;     /* still running when the job ended, or when their
                                 barrier stage attempt was stopped (stopped,
                                 ignored) */
  int64_t outputs_lost;       /* map outputs of this attempt lost (executor lost,
                                 file gone); each is recomputed */
  int64_t *lost_partitions;   /* [outputs_lost] which map partitions, in order of
                                 loss; owned by the pt_job_stats */
  int64_t rows_read;          /* rows produced by the stage's source */
  int64_t bytes_read;         /* bytes of input files and shuffle segments read */
  int64_t rows_written;       /* rows given to the sink (after filters) */
  int64_t bytes_written;      /* bytes of shuffle, result and IPC files written */
  int64_t task_time_us;       /* sum of the task attempts' running times */
  int64_t duration_us;        /* first launch to last status of this attempt */
  int64_t parquet_pages_read;    /* pt_read_parquet sources: data pages decoded */
  int64_t parquet_pages_skipped; /* and those the page index ruled out (the
                                    read's filter; pt_parquet_stream_pages) */
  int64_t event_time_ms;      /* the oldest event time its source read (Kafka: record
                                 timestamps), ms since the epoch; 0: none or unknown */
  int64_t kafka_producers;    /* pt_write_kafka sinks: transactional producers made
                                 (init_transactions); 0 when every task's came from
                                 its executor's pool */
} pt_stage_stats;

typedef struct pt_job_stats {
  int64_t job_id;
  int status;                 /* PT_OK, or the code the action returned */
  int64_t duration_us;        /* submission to end */
  int64_t executors_lost;     /* during the job */
  int64_t executors_started;  /* replacements started during the job */
  int64_t n_stages;           /* entries of stages: stage attempts that launched
                                 tasks, in order of their first launch */
  pt_stage_stats *stages;     /* owned */
} pt_job_stats;

/* The stats of the job the last action on ds ran (pt_collect, pt_count,
 * pt_write_ipc; failed jobs too). PT_ESTATE when no action ran on ds yet,
 * PT_ERANGE when the session has since finished 64 newer jobs. On PT_OK
 * the caller owns *out (free with pt_job_stats_free). */
int pt_dataset_last_job(pt_dataset *ds, pt_job_stats **out, pt_error *err);
/* The stats of the session's job job_id (0: its last finished job).
 * Errors as above; on PT_OK the caller owns *out. */
int pt_session_job_stats(pt_session *s, int64_t job_id, pt_job_stats **out, pt_error *err);
/* Totals over the stages (every attempt) of st into *out (stage_id, attempt,
 * partitions are those of the first entry; lost_partitions NULL): the figure
 * a test or a progress line usually wants. */
void pt_job_stats_total(const pt_job_stats *st, pt_stage_stats *out);
void pt_job_stats_free(pt_job_stats *st);
/* Like pt_write_ipc, as Parquet: dir/part-00000.parquet ... and dir/_SUCCESS,
 * committed exactly once. opts NULL: the writer's defaults (SNAPPY). With
 * opts->partition_by, each partition writes one file per combination of the
 * named columns' values, dir/k1=v1/k2=v2/part-00000.parquet (values escaped
 * as Hive does, nulls and empty strings as __HIVE_DEFAULT_PARTITION__), and
 * those columns are left out of the files; pt_read_parquet reads them back. */
int pt_write_parquet(pt_dataset *ds, const char *dir, const pt_parquet_write_options *opts,
                     pt_error *err);

/* How pt_write_delta treats an existing table. */
typedef enum pt_delta_mode {
  PT_DELTA_ERROR = 0,     /* refuse when the table exists */
  PT_DELTA_APPEND = 1,    /* add the rows to the latest version */
  PT_DELTA_OVERWRITE = 2, /* the rows replace every active file */
} pt_delta_mode;
typedef struct pt_delta_write_options {
  pt_delta_mode mode;
  const char *const *partition_by; /* a new table's partition columns (boolean,
                                      integer, float, string, date32 or
                                      timestamp); an existing table keeps its
                                      own, and a list given must match them */
  int64_t n_partition_by;
  const pt_parquet_write_options *parquet; /* NULL: the writer's defaults
                                      (SNAPPY); partition_by there is ignored */
  int merge_schema;                /* 1: columns ds has and the table lacks are
                                      added to the table's schema (nullable) in
                                      the same commit, and table columns ds
                                      lacks are null in the new files; 0
                                      (default): a different set of columns is
                                      refused, naming them */
  const pt_parquet_filter *replace_where; /* with PT_DELTA_OVERWRITE: replace
                                      only the rows it matches (top-level
                                      columns, partition or not): files it
                                      matches whole are removed, files it
                                      partly matches rewritten with their
                                      other rows in the same commit; rows
                                      outside it are refused; NULL
                                      (default): remove every file. Not kept */
} pt_delta_write_options;
void pt_delta_write_options_init(pt_delta_write_options *opts);
/* Writes ds as one new version of the Delta table at path (created, with
 * its metaData and protocol, when missing): the Parquet files are written
 * exactly once (one attempt per partition), moved into the table, then the
 * next commit file of _delta_log is created atomically with its add actions
 * and their stats (and remove actions of every active file for
 * PT_DELTA_OVERWRITE). If another writer committed that version first,
 * nothing is committed, the new files are removed and PT_ESTATE says so; a
 * failed job leaves the table as it was. ds's columns must be the table's
 * (by name, any order, same types) unless opts->merge_schema. */
int pt_write_delta(pt_dataset *ds, const char *path, const pt_delta_write_options *opts,
                   pt_error *err);

/* How pt_write_csv writes each file. */
typedef struct pt_csv_write_options {
  int header;      /* 1 (default): a first line of column names in every file */
  char delimiter;  /* ',' */
} pt_csv_write_options;

void pt_csv_write_options_init(pt_csv_write_options *opts);

/* Like pt_write_ipc, as CSV (pt_csv_write_batch's text): dir/part-00000.csv
 * ... and dir/_SUCCESS, committed exactly once. opts NULL: the defaults.
 * Columns of types CSV cannot hold fail the call before any task runs. */
int pt_write_csv(pt_dataset *ds, const char *dir, const pt_csv_write_options *opts,
                 pt_error *err);

/* What pt_write_sql does with the table. */
typedef enum pt_sql_write_mode {
  PT_SQL_APPEND = 0,    /* rows added; the table is created if missing */
  PT_SQL_OVERWRITE = 1, /* the table's rows replaced (it keeps its definition);
                           created if missing */
  PT_SQL_ERROR = 2,     /* the table must not exist; it is created */
} pt_sql_write_mode;

/* Writes ds into table of the PostgreSQL or MySQL/MariaDB database at url
 * (as pt_read_sql's), or through the ADBC SQLite or PostgreSQL driver
 * (adbc:sqlite:..., adbc:postgresql:...; the library as docs/sql.md says),
 * exactly once:
 * each task attempt COPYs its partition into a staging table of its own
 * (named by job, partition and attempt); when every partition succeeded,
 * one transaction creates or truncates the table as mode says and moves the
 * first successful attempt of each partition into it. Into a PostgreSQL
 * table that does not exist yet the attempts instead share one staging
 * table, each loading it in one transaction, and the commit removes the
 * rows of attempts that lost and renames it to the table (no row copied).
 * Then every staging table of the job is dropped, whatever the outcome. A failed job leaves
 * the table as it was. Columns are created as docs/sql.md's table says; a
 * type with no PostgreSQL counterpart fails before any task runs. */
int pt_write_sql(pt_dataset *ds, const char *url, const char *table, pt_sql_write_mode mode,
                 pt_error *err);

/* Where a running job stands (what a console progress bar shows). */
typedef struct pt_job_progress {
  int64_t job_id;
  int64_t stages;          /* of the job */
  int64_t stages_done;     /* every partition has its output */
  int64_t tasks;           /* partitions over all stages */
  int64_t tasks_done;      /* partitions with output (a lost map output is
                              counted again when recomputed) */
  int64_t tasks_running;   /* attempts launched and not ended: running, or
                              queued on an executor (executor.queue_depth) */
  int64_t elapsed_us;      /* since submission */
} pt_job_progress;

/* Fills out[0..cap) with the session's running jobs, oldest first; *n =
 * their number (possibly more than cap). A snapshot: cheap enough to poll
 * a few times a second. */
int pt_session_progress(pt_session *s, pt_job_progress *out, int64_t cap, int64_t *n,
                        pt_error *err);

/* ------------------------------------------------------------------------ */
/* Kafka (librdkafka): topics read as datasets over explicit offset ranges,
 * datasets written into topics exactly once per batch id, and decoders of
 * record values. See docs/kafka.md for the columns and the exactly-once rule.
 * The streaming engine builds its Kafka source and sink on these. */

typedef struct pt_kafka_options {
  const char *bootstrap_servers;  /* "host:port[,host:port...]" (required) */
  const char *const *property_keys;   /* extra librdkafka properties, as Spark's */
  const char *const *property_values; /* "kafka."-prefixed options (without the
                                         prefix): "security.protocol", ... */
  int32_t n_properties;
  int64_t timeout_ms;             /* one request to the brokers; 0 = 10000 */
  int64_t max_retry_ms;           /* brokers that are away are retried with backoff
                                     this long before the call fails; 0 = 30000 */
  int64_t max_records_per_partition; /* pt_read_kafka: an offset range longer than
                                        this is split into several engine
                                        partitions; 0 = 1000000 */
  int32_t value_format;           /* pt_write_kafka: PT_KAFKA_VALUE_COLUMN (0) writes
                                     the "value" column as it is;
                                     PT_KAFKA_VALUE_JSON encodes every column of a
                                     row into one JSON object as its value
                                     (pt_kafka_encode_json) */
} pt_kafka_options;

/* pt_kafka_options.value_format. */
#define PT_KAFKA_VALUE_COLUMN 0
#define PT_KAFKA_VALUE_JSON 1

/* Defaults: the zeros above; bootstrap_servers NULL (to be set). */
void pt_kafka_options_init(pt_kafka_options *o);

typedef struct pt_kafka_partition_offsets {
  int32_t partition;
  int64_t earliest;  /* first offset still in the log */
  int64_t latest;    /* high watermark under read_committed (the last stable
                        offset): the offset the next committed record gets */
} pt_kafka_partition_offsets;

/* Lists topic's partitions, in partition order, with their earliest and
 * latest offsets. On PT_OK the caller owns *out (free with free()), *n >= 1.
 * A topic that does not exist is PT_EINVAL; brokers that stay away longer
 * than max_retry_ms are PT_ETIMEDOUT, naming the bootstrap servers. */
int pt_kafka_topic_offsets(const pt_kafka_options *o, const char *topic,
                           pt_kafka_partition_offsets **out, int32_t *n, pt_error *err);

/* A dataset of the records of topic partitions[i] at offsets [start[i],
 * end[i]) (Spark's spark.read.format("kafka") with explicit offsets), one
 * engine partition per range (ranges longer than max_records_per_partition
 * are split). Columns: key binary, value binary, topic utf8, partition
 * int32, offset int64, timestamp timestamp[ms, UTC], timestamp_type int32
 * (0 create time, 1 log append time), headers list<struct<key utf8, value
 * binary>>. Executors read with isolation.level=read_committed, assigned to
 * the exact offsets (no consumer group): records of aborted transactions
 * and transaction markers take offsets but give no rows. The arrays are
 * copied; o is copied. */
int pt_read_kafka(pt_session *s, const pt_kafka_options *o, const char *topic,
                  const int32_t *partitions, const int64_t *start, const int64_t *end, int32_t n,
                  pt_dataset **out, pt_error *err);

/* Writes ds into topic, exactly once per (transactional_prefix, batch_id):
 * columns "value" (binary or utf8, required), "key" (binary or utf8),
 * "partition" (int32; else the producer's partitioner) and "headers" (as
 * pt_read_kafka's), other columns ignored. Sink partition p uses a
 * transactional producer with transactional.id "<prefix>-<p>" and commits,
 * in the same transaction as its records, batch_id + 1 as the offset of
 * consumer group "<prefix>-<p>" on partition 0 of topic; a partition whose
 * group already holds an offset > batch_id is skipped (its batch, or a
 * later one, is committed). Write the same batch id again with the same
 * partitioning after a failure; batch ids of one prefix must grow.
 * batch_id >= 0. The job's rows_written (pt_dataset_last_job) counts the
 * records produced by this call. It returns once read_committed readers
 * see the topic up to where it stood after the commits (the brokers write
 * commit markers after a commit returns), waiting at most 10 s for that. */
int pt_write_kafka(pt_dataset *ds, const pt_kafka_options *o, const char *topic,
                   const char *transactional_prefix, int64_t batch_id, pt_error *err);

/* What the value decoders do with a malformed record. */
typedef enum pt_kafka_bad_record {
  PT_KAFKA_BAD_FAIL = 0,        /* the call fails with PT_EFORMAT, naming the record */
  PT_KAFKA_BAD_DROP = 1,        /* the record is left out */
  PT_KAFKA_BAD_DEAD_LETTER = 2, /* left out, and returned in *dead: columns row int64
                                   (its index in values), value binary (null for a null
                                   value), error utf8 (why) */
} pt_kafka_bad_record;

/* Decodes each value (a binary or utf8 column: values_schema/values, e.g.
 * pt_read_kafka's "value") as one JSON object into a row of schema (a
 * struct of boolean, integer, float, utf8, binary or timestamp columns,
 * matched to keys by name; other keys are skipped, missing keys and JSON
 * null give nulls; timestamps are epoch numbers in the column's unit). A
 * value that is not such an object, or whose value for a column has the
 * wrong type or range, is malformed and handled by policy. On PT_OK the
 * caller owns *out (the good records, in order) and, with
 * PT_KAFKA_BAD_DEAD_LETTER, *dead. */
int pt_kafka_decode_json(const struct ArrowSchema *values_schema, const struct ArrowArray *values,
                         const struct ArrowSchema *schema, int policy, struct ArrowArray *out,
                         struct ArrowArray *dead, pt_error *err);
/* The same for values that are each an Arrow IPC stream of schema (any
 * number of batches); a stream of another schema, or one that does not
 * decode or validate, is malformed. */
int pt_kafka_decode_ipc(const struct ArrowSchema *values_schema, const struct ArrowArray *values,
                        const struct ArrowSchema *schema, int policy, struct ArrowArray *out,
                        struct ArrowArray *dead, pt_error *err);
/* The schema of the dead-letter batches. On PT_OK the caller owns *out. */
int pt_kafka_dead_letter_schema(struct ArrowSchema *out, pt_error *err);
/* Encodes each row of rows (a struct array of schema: boolean, integer,
 * float, utf8, binary or timestamp columns, the types pt_kafka_decode_json
 * reads, large and view strings too) as one JSON object (RFC 8259) with a key per column in schema
 * order: nulls as null, integers and timestamps (epoch numbers in the
 * column's unit) as integers, floats in the fewest digits that read back
 * to the same value, strings and binary (which must be UTF-8) escaped.
 * A null row, a NaN or infinite float, or text that is not UTF-8 is
 * PT_EINVAL naming the row and column; another column type is PT_ENOTSUP.
 * On PT_OK the caller owns *out: a binary array ("z"), one value per row. */
int pt_kafka_encode_json(const struct ArrowSchema *schema, const struct ArrowArray *rows,
                         struct ArrowArray *out, pt_error *err);

/* ------------------------------------------------------------------------ */
/* Streaming: a source of arriving data (files, Kafka) processed as
 * micro-batches, each one engine job on the session, with offsets and
 * commits checkpointed so that every record reaches the sink exactly once,
 * across failures and restarts (Spark's Structured Streaming in micro-batch
 * mode). See docs/streaming.md. */

/* What the engine tells a source about the batch it plans, and what the
 * source tells back. */
typedef struct pt_stream_batch {
  int64_t batch_id;      /* in: 0, 1, ...; a rerun after a restart keeps its id */
  int64_t records;       /* out: offsets the batch covers (records, files); -1 unknown */
  int64_t event_time_us; /* out: the oldest event's time in the batch, microseconds
                            since the epoch (file: its modification time; Kafka:
                            the record timestamp); -1 unknown */
} pt_stream_batch;

/* A stream source: state and the functions the engine calls on it, all from
 * the query's thread. Offsets are opaque, single-line text (JSON by habit:
 * {"files":12}, {"events":{"0":120,"1":98}}) that the engine writes to the
 * checkpoint's offset log; every char ** result is malloc'd and freed by the
 * engine. A function returning PT_EIO says "unavailable for now" (a broker
 * down): the engine retries it with backoff up to stream.max_retry_time; any
 * other error fails the query at once. */
typedef struct pt_stream_source {
  const char *name;      /* static, for messages: "files", "kafka" */
  void *state;           /* the source's own, freed by free */
  /* May be NULL. Called once when the query starts: dir is the source's own
   * folder in the checkpoint (for what it must remember across restarts). */
  int (*open)(void *state, pt_session *s, const char *dir, pt_error *err);
  /* Where a query with a new checkpoint starts (Kafka: starting_offsets;
   * files: before the first file). Called once, before the first batch;
   * after that the offset log knows. */
  int (*initial_offsets)(void *state, char **start, pt_error *err);
  /* Everything available now, as offsets. */
  int (*latest_offsets)(void *state, char **latest, pt_error *err);
  /* The end of the next batch: between start and latest, no further than
   * the source's limit per trigger (max_files_per_trigger,
   * max_offsets_per_trigger). Equal to start (as text) when there is
   * nothing new. */
  int (*next_offsets)(void *state, const char *start, const char *latest, char **end,
                      pt_error *err);
  /* A dataset of exactly the records in [start, end): the same for the same
   * offsets, every time (a batch rerun after a crash reads these again). On
   * PT_OK the engine owns the reference *out; batch->records and
   * batch->event_time_us may be filled. */
  int (*plan_batch)(void *state, pt_session *s, const char *start, const char *end,
                    pt_stream_batch *batch, pt_dataset **out, pt_error *err);
  /* May be NULL. The batch ending at end is committed in the sink: what
   * came before end may be forgotten. */
  int (*commit)(void *state, const char *end, pt_error *err);
  /* May be NULL. Frees state. */
  void (*free)(void *state);
} pt_stream_source;

/* A stream sink. write_batch gets the batch's output dataset (a reference it
 * owns: free it) and must be idempotent per batch id: called again with an
 * id it has seen (a batch rerun after a crash between the sink's commit and
 * the commit log), the sink must end as if called once. *rows: the rows it
 * wrote, -1 unknown. PT_EIO retries the batch with backoff as for sources.
 * A sink that is a user function is Spark's foreachBatch. */
typedef struct pt_stream_sink {
  const char *name;      /* static, for messages: "ipc", "parquet", "kafka" */
  void *state;
  /* May be NULL. Called once by pt_stream_start with the query's id (kept in
   * the checkpoint: the same across restarts), before any batch. */
  int (*open)(void *state, pt_session *s, const char *query_id, pt_error *err);
  int (*write_batch)(void *state, pt_dataset *ds, int64_t batch_id, int64_t *rows,
                     pt_error *err);
  void (*free)(void *state); /* may be NULL */
} pt_stream_sink;

/* Formats of the files source. */
#define PT_STREAM_IPC 0
#define PT_STREAM_PARQUET 1
#define PT_STREAM_CSV 2 /* pt_stream_csv_source */

/* A directory that files arrive in: each file (of the format's extensions:
 * .arrow/.arrows/.ipc/.feather, or .parquet) is read exactly once, in order
 * of modification time then name; names starting with "." or "_" are files
 * still being written (write them so, then rename). max_files_per_trigger
 * (0: no limit) caps a batch. The list of files seen is kept in the
 * checkpoint, so a file is never read twice, even one arriving late with an
 * old modification time. On PT_OK the caller owns *out (give it to
 * pt_stream_start, or call out->free(out->state)). */
int pt_stream_files_source(const char *dir, int format, int64_t max_files_per_trigger,
                           pt_stream_source *out, pt_error *err);
/* The same over CSV files (.csv, .tsv), each batch's read by pt_read_csv
 * with opts, whose schema is required (a schema inferred per batch could
 * change the columns between batches). opts is copied, its schema and
 * strings too. On PT_OK the caller owns *out. */
int pt_stream_csv_source(const char *dir, const pt_csv_options *opts,
                         int64_t max_files_per_trigger, pt_stream_source *out, pt_error *err);
/* Sinks writing each batch into dir as dir/part-<batch>-<partition>.arrow
 * (.parquet), batch ids of 10 digits: committed through the engine's
 * exactly-once output (into dir/_staging/<batch> first), then renamed into
 * dir, after removing what an interrupted commit of the same batch left
 * there. So a rerun of batch b replaces b's files and never adds to them.
 * opts may be NULL (copied). On PT_OK the caller owns *out. */
int pt_stream_ipc_sink(const char *dir, const pt_ipc_write_options *opts, pt_stream_sink *out,
                       pt_error *err);
int pt_stream_parquet_sink(const char *dir, const pt_parquet_write_options *opts,
                           pt_stream_sink *out, pt_error *err);

/* A Kafka topic (pt_read_kafka underneath): offsets are per partition,
 * {"<topic>":{"0":120,"1":98}} as Spark writes them. starting_offsets (for
 * a new checkpoint): "earliest", "latest", or such a JSON text.
 * max_offsets_per_trigger (0: no limit) caps a batch's records, shared
 * between partitions in proportion to what each has waiting. Partitions
 * that appear later start at their earliest offset. Brokers that are away
 * make the query retry (stream.max_retry_time). o is copied. Records have
 * no event time here: batches report no latency (-1). On PT_OK the caller
 * owns *out. */
int pt_stream_kafka_source(const pt_kafka_options *o, const char *topic,
                           const char *starting_offsets, int64_t max_offsets_per_trigger,
                           pt_stream_source *out, pt_error *err);
/* Writes each batch into topic with pt_write_kafka (o->value_format says
 * whether the "value" column or the rows encoded as JSON), exactly once per
 * batch id: transactional_prefix NULL = "protium-<query id>", so a restarted
 * query (same checkpoint, same id) fences and skips what its previous run
 * committed. Consumers must read with isolation.level=read_committed. o is
 * copied. On PT_OK the caller owns *out. */
int pt_stream_kafka_sink(const pt_kafka_options *o, const char *topic,
                         const char *transactional_prefix, pt_stream_sink *out, pt_error *err);

/* The transformation of every micro-batch: batch is a reference the
 * function owns (free it or build on it); on PT_OK the engine owns *out. It
 * runs on the query's thread in the driver; what it builds runs as one job. */
typedef int (*pt_stream_transform_fn)(pt_dataset *batch, void *arg, pt_dataset **out,
                                      pt_error *err);

/* When batches start. */
typedef enum pt_stream_trigger {
  PT_TRIGGER_INTERVAL = 0,      /* every interval_ms (Spark's ProcessingTime): a late
                                   batch is followed at once by the next */
  PT_TRIGGER_AVAILABLE_NOW = 1, /* what is available at start, in as many batches as
                                   the limits need, then the query stops */
  PT_TRIGGER_CONTINUOUS = 2,    /* the next batch as soon as the previous committed;
                                   idle: look again every stream.poll_interval */
} pt_stream_trigger;

typedef struct pt_stream_options {
  const char *checkpoint_dir;   /* required: offsets, commits, the sources' state */
  pt_stream_trigger trigger;    /* default PT_TRIGGER_INTERVAL */
  int64_t interval_ms;          /* default 0: as fast as batches complete */
  pt_stream_transform_fn transform; /* NULL: batches go to the sink as read */
  void *transform_arg;          /* given to transform (the caller's: keep it alive
                                   until pt_stream_query_free) */
  int progress;                 /* a line per batch on stderr: -1 (default) when it is
                                   a terminal, 0 never, 1 always */
  const char *name;             /* for the progress lines; NULL: the query id */
} pt_stream_options;

void pt_stream_options_init(pt_stream_options *opts);

typedef struct pt_stream_query pt_stream_query;

/* Starts a query on a thread of its own and returns. source and sink are
 * moved into it, on success or failure alike (the caller's structs are
 * cleared): the query calls their free. Recovery from the checkpoint first:
 * a batch in the offset log without its commit runs again with the same
 * offsets and batch id. PT_ESTATE when another live query holds the
 * checkpoint. On PT_OK the caller owns *out (pt_stream_query_free). */
int pt_stream_start(pt_session *s, pt_stream_source *source, pt_stream_sink *sink,
                    const pt_stream_options *opts, pt_stream_query **out, pt_error *err);

typedef enum pt_stream_state {
  PT_STREAM_STARTING = 0,   /* opening the checkpoint and the source */
  PT_STREAM_WAITING = 1,    /* for the trigger or for new data */
  PT_STREAM_RUNNING = 2,    /* a batch's job and sink commit */
  PT_STREAM_RETRYING = 3,   /* the source or sink is unavailable: backing off */
  PT_STREAM_STOPPED = 4,    /* stopped, or an available-now query finished */
  PT_STREAM_FAILED = 5,     /* message says why */
} pt_stream_state;

typedef struct pt_stream_status {
  pt_stream_state state;
  int64_t batches_committed; /* by this run of the query */
  int64_t next_batch_id;     /* the batch running or next to run */
  int64_t retries;           /* back-offs so far */
  char message[PT_ERROR_SIZE]; /* what it is doing, or why it failed */
} pt_stream_status;

/* Where the query stands (a snapshot). */
int pt_stream_query_status(pt_stream_query *q, pt_stream_status *out, pt_error *err);

/* One committed micro-batch. */
typedef struct pt_stream_progress {
  int64_t batch_id;
  int64_t input_rows;         /* rows the batch read (its first stage); -1 unknown */
  int64_t output_rows;        /* rows the sink wrote; -1 unknown */
  int64_t records;            /* offsets covered (the source's count); -1 unknown */
  double rows_per_s;          /* input_rows / duration */
  int64_t duration_us;        /* planned to committed (commit log written) */
  int64_t event_time_us;      /* the oldest event's time (pt_stream_batch); -1 unknown */
  int64_t latency_us;         /* from it to committed; -1 unknown */
  int64_t committed_us;       /* when, microseconds since the epoch */
  int64_t attempts;           /* runs of the batch in this query (> 1: retried) */
  int32_t recovered;          /* 1: rerun from the offset log after a restart */
  char start_offsets[512];    /* truncated with "..." when longer */
  char end_offsets[512];
  int64_t kafka_producers;    /* Kafka sink: transactional producers the batch's tasks
                                 made (pt_stage_stats); 0 once each sink partition
                                 stays on its executor; -1 unknown */
} pt_stream_progress;

/* Fills out[0..cap) with the last batches' progress, oldest first (the
 * query keeps stream.progress_keep); *n = how many it keeps (possibly more
 * than cap). */
int pt_stream_query_progress(pt_stream_query *q, pt_stream_progress *out, int64_t cap,
                             int64_t *n, pt_error *err);
/* The query's id: kept in the checkpoint, the same across restarts.
 * Borrowed, valid until pt_stream_query_free. */
const char *pt_stream_query_id(const pt_stream_query *q);
/* Waits until the query ends or timeout_ms passes (< 0: no limit). *ended
 * (may be NULL) = 1 when it ended. Returns the query's failure (its code and
 * message) once it failed, PT_OK otherwise. */
int pt_stream_query_await(pt_stream_query *q, int64_t timeout_ms, int *ended, pt_error *err);
/* Stops the query: a batch running finishes (job and commit) first; waits. */
int pt_stream_query_stop(pt_stream_query *q, pt_error *err);
/* Stops the query if it runs and frees it. */
void pt_stream_query_free(pt_stream_query *q);

#ifdef __cplusplus
}
#endif

#endif /* PROTIUM_H */
