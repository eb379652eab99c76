/* parquet_int.h — private to src/parquet: the Thrift compact protocol, the
 * file metadata structs of parquet-format's parquet.thrift as we keep them,
 * the page encodings and the codecs. Everything decoded here is untrusted:
 * each length is checked against the bytes present before it is used.
 *
 * File layout (all integers little-endian):
 *
 *   offset          bytes  what
 *   0               4      "PAR1"
 *   4               ...    column chunks: [dictionary page] data pages, each
 *                          a Thrift PageHeader followed by its
 *                          compressed_page_size bytes
 *   size - 8 - n    n      FileMetaData (Thrift compact protocol)
 *   size - 8        4      n, the footer length
 *   size - 4        4      "PAR1"
 *
 * Thrift compact protocol (what thrift.c reads and writes):
 *
 *   field header   1 byte: high nibble = id delta (1..15) from the previous
 *                  field of the struct, low nibble = type; delta 0 means a
 *                  zigzag varint i16 id follows. Type 0 ends the struct.
 *   types          1 true, 2 false (booleans live in the header), 3 i8,
 *                  4 i16, 5 i32, 6 i64 (zigzag varints), 7 double (8 bytes),
 *                  8 binary (varint length + bytes), 9 list, 10 set,
 *                  11 map, 12 struct
 *   list header    1 byte: high nibble = size (15: a varint size follows),
 *                  low nibble = element type; booleans in lists are 1 byte
 *   map header     varint size; if non-zero, 1 byte: key type << 4 | value
 *
 * Data page v1 body: [rep levels: u32 length + RLE] [def levels: u32 length +
 * RLE] values. Data page v2: rep and def levels (RLE, lengths in the header,
 * never compressed), then the values, compressed unless is_compressed=false.
 */
#ifndef PT_PARQUET_INT_H
#define PT_PARQUET_INT_H

#include <stdbool.h>

#include "arrow/arrow.h"
#include "core/core.h"

/* ------------------------------------------------------------------------ */
/* Thrift compact protocol (thrift.c) */

enum {
  PT__TH_STOP = 0,
  PT__TH_TRUE = 1,
  PT__TH_FALSE = 2,
  PT__TH_I8 = 3,
  PT__TH_I16 = 4,
  PT__TH_I32 = 5,
  PT__TH_I64 = 6,
  PT__TH_DOUBLE = 7,
  PT__TH_BINARY = 8,
  PT__TH_LIST = 9,
  PT__TH_SET = 10,
  PT__TH_MAP = 11,
  PT__TH_STRUCT = 12,
};

/* Structs and containers nested deeper than this are refused: it bounds the
 * recursion of skipping unknown fields (parquet.thrift itself nests < 10). */
#define PT__THRIFT_MAX_DEPTH 64

typedef struct pt__thrift_in {
  const uint8_t *start; /* for offsets in messages */
  const uint8_t *p;
  const uint8_t *end;
  int depth;            /* structs and containers open now */
} pt__thrift_in;

/* Each returns PT_OK or PT_EFORMAT with a message naming the byte offset. */
int pt__thrift_varint(pt__thrift_in *in, uint64_t *out, pt_error *err);
int pt__thrift_i64(pt__thrift_in *in, int64_t *out, pt_error *err);
/* Reads an i8/i16/i32 (zigzag varint) and checks it fits an int32. */
int pt__thrift_i32(pt__thrift_in *in, int32_t *out, pt_error *err);
/* A binary/string: *data points into the input (no copy). */
int pt__thrift_binary(pt__thrift_in *in, const uint8_t **data, int64_t *len, pt_error *err);
int pt__thrift_double(pt__thrift_in *in, double *out, pt_error *err);
/* Next field header of the struct being read: *type = PT__TH_STOP at its end.
 * *last is the previous field id of this struct (start with 0). */
int pt__thrift_field(pt__thrift_in *in, int16_t *last, int16_t *id, int *type, pt_error *err);
/* List or set header; *n is checked against the bytes left (every element
 * takes at least one byte). */
int pt__thrift_list(pt__thrift_in *in, int *elem_type, int64_t *n, pt_error *err);
/* Enter/leave a nested struct or container (depth bound). */
int pt__thrift_enter(pt__thrift_in *in, pt_error *err);
static inline void pt__thrift_leave(pt__thrift_in *in) { in->depth--; }
/* Skips a value of the given type (any nesting within the depth bound). */
int pt__thrift_skip(pt__thrift_in *in, int type, pt_error *err);
/* A boolean value: from the field type (in a struct) or a byte (in a list). */
int pt__thrift_list_bool(pt__thrift_in *in, bool *out, pt_error *err);

/* Writing: appends to buf; the first failure (PT_ENOMEM) sticks in rc and
 * later calls do nothing. */
typedef struct pt__thrift_out {
  pt_buf *buf;
  int rc;
} pt__thrift_out;

void pt__thrift_put_field(pt__thrift_out *o, int16_t *last, int16_t id, int type);
void pt__thrift_put_stop(pt__thrift_out *o);
void pt__thrift_put_varint(pt__thrift_out *o, uint64_t v);
void pt__thrift_put_i64(pt__thrift_out *o, int64_t v); /* zigzag, also i32/i16/i8 */
void pt__thrift_put_binary(pt__thrift_out *o, const void *data, int64_t len);
void pt__thrift_put_list(pt__thrift_out *o, int elem_type, int64_t n);
/* Field + value shorthands. */
void pt__thrift_field_i64(pt__thrift_out *o, int16_t *last, int16_t id, int type, int64_t v);
void pt__thrift_field_binary(pt__thrift_out *o, int16_t *last, int16_t id, const void *data,
                             int64_t len);
void pt__thrift_field_bool(pt__thrift_out *o, int16_t *last, int16_t id, bool v);

/* ------------------------------------------------------------------------ */
/* Metadata (meta.c) */

/* An arena: every metadata struct and array of one decode lives here and is
 * freed at once. Blocks are zeroed. */
typedef struct pt__arena {
  struct pt__arena_block *head;
} pt__arena;
void *pt__arena_alloc(pt__arena *a, int64_t size);
void pt__arena_free(pt__arena *a);

/* Physical types */
enum {
  PT__PQ_BOOLEAN = 0,
  PT__PQ_INT32 = 1,
  PT__PQ_INT64 = 2,
  PT__PQ_INT96 = 3,
  PT__PQ_FLOAT = 4,
  PT__PQ_DOUBLE = 5,
  PT__PQ_BYTE_ARRAY = 6,
  PT__PQ_FIXED_LEN_BYTE_ARRAY = 7,
};
/* Repetition */
enum { PT__PQ_REQUIRED = 0, PT__PQ_OPTIONAL = 1, PT__PQ_REPEATED = 2 };
/* ConvertedType */
enum {
  PT__CT_UTF8 = 0, PT__CT_MAP = 1, PT__CT_MAP_KEY_VALUE = 2, PT__CT_LIST = 3,
  PT__CT_ENUM = 4, PT__CT_DECIMAL = 5, PT__CT_DATE = 6, PT__CT_TIME_MILLIS = 7,
  PT__CT_TIME_MICROS = 8, PT__CT_TIMESTAMP_MILLIS = 9, PT__CT_TIMESTAMP_MICROS = 10,
  PT__CT_UINT_8 = 11, PT__CT_UINT_16 = 12, PT__CT_UINT_32 = 13, PT__CT_UINT_64 = 14,
  PT__CT_INT_8 = 15, PT__CT_INT_16 = 16, PT__CT_INT_32 = 17, PT__CT_INT_64 = 18,
  PT__CT_JSON = 19, PT__CT_BSON = 20, PT__CT_INTERVAL = 21,
};
/* LogicalType union members (their field ids) */
enum {
  PT__LT_NONE = 0, PT__LT_STRING = 1, PT__LT_MAP = 2, PT__LT_LIST = 3, PT__LT_ENUM = 4,
  PT__LT_DECIMAL = 5, PT__LT_DATE = 6, PT__LT_TIME = 7, PT__LT_TIMESTAMP = 8,
  PT__LT_INTEGER = 10, PT__LT_UNKNOWN = 11, PT__LT_JSON = 12, PT__LT_BSON = 13,
  PT__LT_UUID = 14, PT__LT_FLOAT16 = 15,
};
/* TimeUnit union members */
enum { PT__TU_MILLIS = 1, PT__TU_MICROS = 2, PT__TU_NANOS = 3 };
/* Encodings */
enum {
  PT__ENC_PLAIN = 0, PT__ENC_PLAIN_DICTIONARY = 2, PT__ENC_RLE = 3, PT__ENC_BIT_PACKED = 4,
  PT__ENC_DELTA_BINARY_PACKED = 5, PT__ENC_DELTA_LENGTH_BYTE_ARRAY = 6,
  PT__ENC_DELTA_BYTE_ARRAY = 7, PT__ENC_RLE_DICTIONARY = 8, PT__ENC_BYTE_STREAM_SPLIT = 9,
};
/* Codecs */
enum {
  PT__CODEC_UNCOMPRESSED = 0, PT__CODEC_SNAPPY = 1, PT__CODEC_GZIP = 2, PT__CODEC_LZO = 3,
  PT__CODEC_BROTLI = 4, PT__CODEC_LZ4 = 5, PT__CODEC_ZSTD = 6, PT__CODEC_LZ4_RAW = 7,
};
/* Page types */
enum { PT__PAGE_DATA = 0, PT__PAGE_INDEX = 1, PT__PAGE_DICTIONARY = 2, PT__PAGE_DATA_V2 = 3 };

typedef struct pt__pq_bytes {
  const uint8_t *data; /* into the decoded input (or the writer's memory) */
  int64_t len;
} pt__pq_bytes;

typedef struct pt__pq_stats {
  bool has_max, has_min, has_null_count, has_distinct_count, has_max_value, has_min_value;
  pt__pq_bytes max, min;             /* deprecated: signed order */
  pt__pq_bytes max_value, min_value; /* in the column's sort order */
  int64_t null_count, distinct_count;
} pt__pq_stats;

typedef struct pt__pq_logical {
  int kind;               /* PT__LT_*; PT__LT_NONE when absent */
  int32_t scale, precision; /* DECIMAL */
  bool utc;               /* TIME, TIMESTAMP: isAdjustedToUTC */
  int unit;               /* TIME, TIMESTAMP: PT__TU_* */
  int bit_width;          /* INTEGER: 8, 16, 32, 64 */
  bool is_signed;         /* INTEGER */
} pt__pq_logical;

typedef struct pt__pq_schema_elem {
  int type;               /* PT__PQ_*; -1 for groups */
  int32_t type_length;    /* FIXED_LEN_BYTE_ARRAY: bytes */
  int repetition;         /* PT__PQ_REQUIRED...; -1 when absent (the root) */
  pt__pq_bytes name;
  int32_t num_children;   /* 0 for leaves */
  int converted;          /* PT__CT_*; -1 when absent */
  int32_t scale, precision;
  bool has_field_id;
  int32_t field_id;
  pt__pq_logical logical;
} pt__pq_schema_elem;

/* Whether C Data Interface metadata md (may be NULL) holds key = value
 * (value NULL: any value) (read.c). */
bool pt__pq_metadata_has(const char *md, const char *key, const char *value);

typedef struct pt__pq_kv {
  pt__pq_bytes key;
  bool has_value;
  pt__pq_bytes value;
} pt__pq_kv;

typedef struct pt__pq_column_meta {
  int type;
  int32_t *encodings;
  int64_t n_encodings;
  pt__pq_bytes *path;
  int64_t n_path;
  int codec;
  int64_t num_values;
  int64_t total_uncompressed_size, total_compressed_size;
  int64_t data_page_offset;
  bool has_dictionary_page_offset;
  int64_t dictionary_page_offset;
  bool has_stats;
  pt__pq_stats stats;
} pt__pq_column_meta;

typedef struct pt__pq_column_chunk {
  bool has_file_path;
  pt__pq_bytes file_path; /* data in another file: refused */
  int64_t file_offset;
  bool has_meta;
  pt__pq_column_meta meta;
  bool encrypted;         /* crypto metadata present: refused */
  /* The page index (ColumnIndex, OffsetIndex) of the chunk, where it is. */
  bool has_offset_index, has_column_index;
  int64_t offset_index_offset, column_index_offset;
  int32_t offset_index_length, column_index_length;
} pt__pq_column_chunk;

/* The page index: where each data page of a column chunk is and its first
 * row (OffsetIndex), and each page's min/max and null count (ColumnIndex),
 * stored after the row groups and found through the ColumnChunk fields. */
typedef struct pt__pq_page_location {
  int64_t offset;               /* of the page header in the file */
  int32_t compressed_page_size; /* header included */
  int64_t first_row_index;      /* within the row group */
} pt__pq_page_location;

typedef struct pt__pq_offset_index {
  pt__pq_page_location *pages;
  int64_t n_pages;
} pt__pq_offset_index;

enum { PT__BOUNDARY_UNORDERED = 0, PT__BOUNDARY_ASCENDING = 1, PT__BOUNDARY_DESCENDING = 2 };

typedef struct pt__pq_column_index {
  bool *null_pages;             /* n_pages: the page has nulls only */
  pt__pq_bytes *min_values, *max_values; /* n_pages each; empty for null pages */
  int64_t n_pages, n_min, n_max;
  int32_t boundary_order;       /* PT__BOUNDARY_* */
  int64_t *null_counts;         /* n_null_counts (0: absent) */
  int64_t n_null_counts;
} pt__pq_column_index;

typedef struct pt__pq_row_group {
  pt__pq_column_chunk *columns;
  int64_t n_columns;
  int64_t total_byte_size;
  int64_t num_rows;
} pt__pq_row_group;

typedef struct pt__pq_file_meta {
  int32_t version;
  pt__pq_schema_elem *schema; /* depth-first, root first */
  int64_t n_schema;
  int64_t num_rows;
  pt__pq_row_group *row_groups;
  int64_t n_row_groups;
  pt__pq_kv *kv;
  int64_t n_kv;
  bool has_created_by;
  pt__pq_bytes created_by;
  int64_t n_column_orders;
  bool encrypted;         /* encryption_algorithm present */
} pt__pq_file_meta;

typedef struct pt__pq_page_header {
  int type;               /* PT__PAGE_* */
  int32_t uncompressed_size, compressed_size;
  bool has_crc;
  int32_t crc;
  /* data page v1 / v2 / dictionary page: which one was present */
  bool has_data, has_data_v2, has_dict;
  int32_t num_values;
  int encoding;
  int def_encoding, rep_encoding; /* v1 */
  int32_t num_nulls, num_rows;    /* v2 */
  int32_t def_length, rep_length; /* v2 */
  bool is_compressed;             /* v2; default true */
  bool is_sorted;                 /* dictionary */
  bool has_stats;
  pt__pq_stats stats;
} pt__pq_page_header;

/* Decodes a FileMetaData from data[0, len) into *out, allocating in arena;
 * byte strings point into data. */
int pt__pq_decode_file_meta(const uint8_t *data, int64_t len, pt__arena *arena,
                            pt__pq_file_meta *out, pt_error *err);
/* Decodes a PageHeader at the start of data[0, len); *used = its bytes. */
int pt__pq_decode_page_header(const uint8_t *data, int64_t len, pt__pq_page_header *out,
                              int64_t *used, pt_error *err);
/* Encoders: append to buf. PT_OK or PT_ENOMEM. */
int pt__pq_encode_file_meta(const pt__pq_file_meta *m, pt_buf *buf);
/* The page index structs, decoded (allocated in arena; bytes point into
 * data) and encoded. */
int pt__pq_decode_offset_index(const uint8_t *data, int64_t len, pt__arena *arena,
                               pt__pq_offset_index *out, pt_error *err);
int pt__pq_decode_column_index(const uint8_t *data, int64_t len, pt__arena *arena,
                               pt__pq_column_index *out, pt_error *err);
int pt__pq_encode_offset_index(const pt__pq_offset_index *oi, pt_buf *buf);
int pt__pq_encode_column_index(const pt__pq_column_index *ci, pt_buf *buf);
int pt__pq_encode_page_header(const pt__pq_page_header *h, pt_buf *buf);

/* ------------------------------------------------------------------------ */
/* Codecs (codec.c) */

const char *pt__pq_codec_name(int codec);
/* Decompresses src[0, n) into dst, which must come out exactly `expected`
 * bytes long. PT_EFORMAT for corrupt data, PT_ENOTSUP for LZO and unknown
 * codecs. */
int pt__pq_decompress(int codec, const uint8_t *src, int64_t n, uint8_t *dst, int64_t expected,
                      pt_error *err);
/* What decompression keeps between pages of one reader (a zstd context):
 * zero it to start, pt__pq_dctx_free when done. One thread at a time. */
typedef struct pt__pq_dctx {
  void *zstd; /* ZSTD_DCtx, made at the first zstd page */
} pt__pq_dctx;
/* pt__pq_decompress with ctx (NULL: none kept). */
int pt__pq_decompress_ctx(pt__pq_dctx *ctx, int codec, const uint8_t *src, int64_t n, uint8_t *dst,
                          int64_t expected, pt_error *err);
void pt__pq_dctx_free(pt__pq_dctx *ctx);
int64_t pt__pq_compress_bound(int codec, int64_t n);
/* Compresses src[0, n) into dst (cap >= the bound); level 0 = the default. */
int pt__pq_compress(int codec, int level, const uint8_t *src, int64_t n, uint8_t *dst,
                    int64_t cap, int64_t *out_len, pt_error *err);
/* SNAPPY (raw format) of src[0, n) into dst, which has room for
 * pt__pq_compress_bound(PT__CODEC_SNAPPY, n) bytes; the bytes written.
 * snappy_enc.c: the writer's, faster than the distribution's libsnappy. */
int64_t pt__snappy_compress(const uint8_t *src, int64_t n, uint8_t *dst);

/* ------------------------------------------------------------------------ */
/* Encodings (encoding.c) */

/* The RLE / bit-packed hybrid of levels, dictionary indices and booleans:
 * runs of `header` varints, (header & 1) = bit-packed groups of 8 values,
 * else one value repeated header >> 1 times (ceil(bit_width / 8) bytes LE). */
typedef struct pt__rle_dec {
  const uint8_t *p, *end;
  int bit_width;       /* 0..32 */
  int64_t run_left;    /* values left in the current run */
  bool packed;         /* the current run is bit-packed */
  uint32_t value;      /* of an RLE run */
  const uint8_t *bits; /* of a bit-packed run: its bytes */
  int64_t bit_pos;     /* next bit in bits */
} pt__rle_dec;

void pt__rle_init(pt__rle_dec *d, const uint8_t *p, int64_t len, int bit_width);
/* Decodes exactly n values into out; PT_EFORMAT when the runs end before. */
int pt__rle_get(pt__rle_dec *d, uint32_t *out, int64_t n, pt_error *err);

/* Decodes exactly n levels (bit_width <= 16) into out, failing on one above
 * max; *n_slot = how many are >= slot, *n_max = how many equal max (both
 * NULL: not counted). */
int pt__rle_get_levels(pt__rle_dec *d, uint16_t *out, int64_t n, int max, int slot,
                       int64_t *n_slot, int64_t *n_max, pt_error *err);

/* Whether p[0, len) starts with an RLE run of v at least n long (a page
 * whose definition levels are all the maximum needs no decoding). */
bool pt__rle_single_run(const uint8_t *p, int64_t len, int bit_width, uint32_t v, int64_t n);

/* Encodes n values of bit_width bits as RLE / bit-packed runs onto buf. */
int pt__rle_put(pt_buf *buf, const uint32_t *values, int64_t n, int bit_width);

/* DELTA_BINARY_PACKED: decodes exactly n values (the header must say n) from
 * p[0, len) into out; *used = the bytes the encoded values take. */
int pt__delta_decode(const uint8_t *p, int64_t len, int64_t n, int64_t *out, int64_t *used,
                     pt_error *err);

/* Bits needed for values up to max (0 for 0). */
static inline int pt__bit_width(uint64_t max) { return max == 0 ? 0 : 64 - __builtin_clzll(max); }

/* ------------------------------------------------------------------------ */
/* Filters (filter.c) */

/* Deep copy (NULL stays NULL). */
int pt__filter_copy(const pt_parquet_filter *f, pt_parquet_filter **out, pt_error *err);
/* Calls check on the column path of every comparison in f. */
int pt__filter_columns(const pt_parquet_filter *f,
                       int (*check)(const char *path, void *arg, pt_error *err), void *arg,
                       pt_error *err);
/* Whether row group g may hold a row matching f (false: its statistics prove
 * none can). find gives a column path's chunk index and (in *elem) schema
 * element, or -1. */
bool pt__filter_may_match(const pt_parquet_filter *f, const pt__pq_file_meta *m,
                          const pt__pq_row_group *g,
                          int64_t (*find)(const char *path, void *arg, int64_t *elem), void *arg);

/* Rows of a row group: n sorted, disjoint [v[2i], v[2i+1]) ranges. */
typedef struct pt__row_ranges {
  int64_t *v;
  int64_t n, cap;
} pt__row_ranges;

void pt__row_ranges_free(pt__row_ranges *r);
int64_t pt__row_ranges_count(const pt__row_ranges *r);
/* The rows of row group g that may match f as far as the page indexes of
 * the columns it names tell (columns without one: all their rows). file,
 * size: the whole file, where the indexes are. On PT_OK the caller frees
 * *out. */
int pt__filter_row_ranges(const pt_parquet_filter *f, const pt__pq_file_meta *m,
                          const pt__pq_row_group *g,
                          int64_t (*find)(const char *path, void *arg, int64_t *elem), void *arg,
                          const uint8_t *file, int64_t size, pt__row_ranges *out, pt_error *err);

#endif /* PT_PARQUET_INT_H */
