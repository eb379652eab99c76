/* write.c — Arrow record batches written as a Parquet file.
 *
 * Rows are appended column by column into pages held in memory until their
 * row group is complete; then each column chunk (its dictionary page, then
 * its data pages) goes to the file, and at close the footer with every row
 * group's metadata and column statistics. Columns are dictionary-encoded
 * until their dictionary outgrows its limit, then PLAIN (as parquet-mr and
 * Arrow C++ do). The Arrow schema is stored under ARROW:schema so that
 * pyarrow gets the exact types back; its metadata goes to the footer's
 * key-value pairs as well, for readers that ignore ARROW:schema.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "arrow/kernels.h"
#include "parquet/parquet_int.h"

#define DEFAULT_ROW_GROUP_ROWS (1 << 20)
#define DEFAULT_PAGE_BYTES (1 << 20)
#define DEFAULT_DICT_BYTES (1 << 20)
#define PAGE_ROW_LIMIT 20000 /* rows per page at most, as Arrow C++ and parquet-mr */
#define MAX_STAT_BYTES 4096  /* longer min/max values are left out of statistics */
#define MAX_THREADS 16
/* Level entries a write() call must give (rows x leaf columns) before it is
 * worth starting threads for (a start costs tens of microseconds). */
#define PARALLEL_MIN_ENTRIES 32768

/* How Arrow values become physical values, and how they compare. */
enum { ST_NONE, ST_BOOL, ST_I32, ST_U32, ST_I64, ST_U64, ST_F32, ST_F64, ST_F16, ST_BYTES, ST_BE_SIGNED };

/* A data page of the open chunk, for the page index. */
typedef struct wpage {
  int64_t offset;        /* of its header, from the chunk's first data page */
  int64_t first_row;     /* rows of the chunk before it */
  int64_t nulls;
  int64_t min_off, max_off; /* in wcol.pi_bounds */
  int32_t size;          /* header and body */
  int32_t min_len, max_len;
  bool null_page;        /* no values, nulls only */
} wpage;

typedef struct wcol {
  const char *name;
  pt_type type;          /* of the values (the dictionary's for dictionary columns) */
  pt__pq_schema_elem elem;
  int phys;              /* PT__PQ_* */
  int width;             /* bytes per fixed-width physical value */
  int stat;              /* ST_* */
  int64_t ts_mul;        /* timestamp[s] are written as milliseconds */
  bool nullable;
  int16_t max_def, max_rep; /* levels of a present value / of the innermost list */
  pt__pq_bytes *path;    /* names from the top-level column down (arena) */
  int64_t n_path;
  /* The current page. */
  uint32_t *defs;        /* level entries of the page (page_rows of them) */
  uint32_t *reps;
  int64_t cap_reps;
  uint32_t *idx;         /* dictionary indices, or booleans */
  int64_t page_rows, page_values, cap_defs, cap_idx;
  pt_buf plain;          /* PLAIN values of the page */
  uint8_t *stage;        /* nested columns of numbers: values gathered one
                            by one, put a block at a time (put_fixed) */
  int64_t n_stage;       /* values in stage (FAST_ROWS at most) */
  /* Dictionary of the current chunk. */
  bool use_dict, fallback;
  pt_buf dict;           /* PLAIN-encoded dictionary values */
  int64_t *dict_off;     /* entry -> offset of its bytes in dict; */
  int32_t *dict_len;
  int64_t dict_n, dict_cap;
  int32_t *table;        /* open addressing: entry + 1, 0 = empty */
  uint32_t *tags;        /* the high hash bits of each slot's entry */
  int64_t table_cap;
  bool fixed_dict;       /* 4- or 8-byte values: entry e is at e * width in
                            dict (no dict_off/dict_len), and each slot keeps
                            its value in keys instead of tags */
  uint64_t *keys;
  /* The chunk so far. */
  pt_buf pages;          /* data pages: headers and bodies (those not yet
                            in the file, when streaming) */
  bool streaming;        /* the chunk's start is in the file: its pages go
                            there as they are made (a file of one column,
                            once its dictionary is settled) */
  int64_t chunk_start, data_start; /* file positions of the chunk and of its
                                      first data page, once streaming */
  int64_t pages_base;    /* bytes of data pages already in the file */
  int64_t dict_uncompressed; /* its dictionary page's header and values */
  int64_t chunk_values, chunk_uncompressed, n_data_pages;
  bool enc_plain, enc_dict;
  /* Statistics of the chunk. */
  bool has_minmax;
  pt_buf min, max;
  int64_t nulls;
  bool stats_dropped;
  /* Statistics of fixed-width numbers kept typed (append_fast), turned into
   * min/max bytes when the chunk is written. */
  bool fast_has;
  int64_t imin, imax;
  uint64_t umin, umax;
  double dmin, dmax;
  /* The page index of the chunk (with write_statistics). */
  wpage *pi;
  int64_t pi_n, pi_cap;
  pt_buf pi_bounds;      /* min and max values of the pages */
  bool pi_no_minmax;     /* a value too long for statistics: no ColumnIndex */
  int64_t chunk_rows;
  /* The open page's min/max when append_fast gave all its values
   * (pg_slow: append_phys gave some), typed as the chunk's above. */
  bool pg_has, pg_slow;
  int64_t pg_imin, pg_imax;
  uint64_t pg_umin, pg_umax;
  double pg_dmin, pg_dmax;
  /* The open page's least and greatest strings when append_fast_bytes
   * gave all its values as PLAIN (pg_bytes): where their bytes are in
   * plain. The chunk's statistics take them when the page closes. */
  bool pg_bytes;
  int64_t pg_bmin_off, pg_bmax_off;
  int32_t pg_bmin_len, pg_bmax_len;
  uint32_t *pi_seen;     /* dictionary entry -> the last page (pi_epoch) that
                            compared it: each distinct value once a page */
  int64_t pi_seen_cap;
  uint32_t pi_epoch;
} wcol;

/* What a thread encoding pages needs for itself: the values, levels and
 * compressed body of the page being made. */
typedef struct wbufs {
  pt_buf scratch, scratch2, body;
  pt_buf header;         /* a page header, when it goes straight to the file */
  ZSTD_CCtx *zstd;       /* kept between pages: a context made per call
                            allocates (and faults in) its tables each time */
} wbufs;

/* A share of one write() call's work: top-level column top, leaves
 * [lo, hi) of it (a nested column's leaves may be split between threads;
 * each walks the rows but fills only its own leaves). */
typedef struct wunit {
  int64_t top, lo, hi;
} wunit;

struct pt_parquet_writer {
  bool entries_next;       /* make_wnode: the next group is a MAP's repeated key_value */
  int fd;                /* -1 when writing to buf */
  bool own_fd;
  pt_buf *buf;
  int64_t pos;           /* bytes written so far */
  pt_parquet_write_options opts;
  struct ArrowSchema schema;  /* what is written (converted types made plain) */
  struct ArrowSchema given;   /* the caller's, when it has types converted on
                                 write (run-end encoded, list views,
                                 intervals); release NULL otherwise */
  const struct ArrowSchema **intervals; /* fields of schema that were intervals */
  int64_t n_intervals, cap_intervals;
  wcol *cols;            /* the leaves */
  int64_t n_cols;
  struct wnode *tops;    /* the top-level columns (arena) */
  int64_t n_tops;
  pt__pq_schema_elem *elems; /* the Parquet schema below the root, depth first */
  int64_t n_elems, cap_elems;
  int64_t rg_rows;       /* rows of the open row group */
  /* Finished row groups, for the footer. */
  pt__arena arena;
  pt__pq_row_group *rgs;
  int64_t n_rgs, cap_rgs;
  int64_t total_rows;
  pt_buf arrow_schema;   /* base64 of the IPC schema message */
  pt__pq_kv *kv;         /* the footer's other key-value pairs: the schema's
                            metadata and opts' pairs (arena, copies) */
  int64_t n_kv;
  wbufs *bufs;           /* one per thread (opts.threads); bufs[0] is the
                            calling thread's. The body is a page's
                            compressed bytes, reused (fresh memory costs
                            page faults). */
  int n_threads;
  wunit *units;          /* the shares of the columns, in column order */
  int64_t n_units;
  /* Page indexes of the finished chunks, written after the last row group:
   * each chunk's ColumnIndex and OffsetIndex offsets point into these
   * until then. */
  pt_buf column_indexes, offset_indexes;
  bool closed, failed;
};

/* ------------------------------------------------------------------------ */
/* Output */

static int out_write(pt_parquet_writer *w, const void *data, int64_t n, pt_error *err) {
  if (w->fd < 0) {
    if (pt__buf_append(w->buf, data, (size_t)n) != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
  } else {
    const uint8_t *p = data;
    int64_t left = n;
    while (left > 0) {
      ssize_t k = write(w->fd, p, (size_t)(left > (1 << 30) ? (1 << 30) : left));
      if (k < 0) {
        if (errno == EINTR) continue;
        return pt__errorf(err, PT_EIO, "parquet: write failed: %s", strerror(errno));
      }
      p += k;
      left -= k;
    }
  }
  w->pos += n;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Schema */

static int decimal_bytes(int32_t precision) {
  /* Smallest n with 2^(8n - 1) > 10^precision. */
  double bits = precision * 3.3219280948873626 + 1;
  int n = (int)ceil(bits / 8);
  return n < 1 ? 1 : n;
}

static int map_column(wcol *c, const struct ArrowSchema *field, pt_error *err) {
  const struct ArrowSchema *vs = field->dictionary ? field->dictionary : field;
  PT_RETURN_NOT_OK(pt_type_parse(vs, &c->type, err));
  if (c->type.dictionary)
    return pt__errorf(err, PT_ENOTSUP, "column '%s': nested dictionaries are not supported", c->name);
  pt__pq_schema_elem *e = &c->elem;
  memset(e, 0, sizeof *e);
  e->converted = -1;
  e->name = (pt__pq_bytes){(const uint8_t *)c->name, (int64_t)strlen(c->name)};
  c->nullable = (field->flags & ARROW_FLAG_NULLABLE) != 0 || c->type.id == PT_TYPE_NA;
  e->repetition = c->nullable ? PT__PQ_OPTIONAL : PT__PQ_REQUIRED;
  c->ts_mul = 1;
  pt__pq_logical *l = &e->logical;
  switch (c->type.id) {
    case PT_TYPE_NA:
      c->phys = PT__PQ_INT32; c->width = 4; c->stat = ST_NONE;
      l->kind = PT__LT_UNKNOWN;
      break;
    case PT_TYPE_BOOL: c->phys = PT__PQ_BOOLEAN; c->stat = ST_BOOL; break;
    case PT_TYPE_INT8: case PT_TYPE_INT16: case PT_TYPE_UINT8: case PT_TYPE_UINT16:
    case PT_TYPE_UINT32: {
      c->phys = PT__PQ_INT32; c->width = 4;
      bool sgn = pt__type_is_signed_int(c->type.id);
      c->stat = sgn ? ST_I32 : ST_U32;
      l->kind = PT__LT_INTEGER;
      l->bit_width = (int)pt__type_bit_width(&c->type);
      l->is_signed = sgn;
      static const int cts[] = {PT__CT_UINT_8, PT__CT_UINT_16, PT__CT_UINT_32};
      e->converted = sgn ? (l->bit_width == 8 ? PT__CT_INT_8 : PT__CT_INT_16)
                         : cts[l->bit_width == 8 ? 0 : l->bit_width == 16 ? 1 : 2];
      break;
    }
    case PT_TYPE_INT32: c->phys = PT__PQ_INT32; c->width = 4; c->stat = ST_I32; break;
    case PT_TYPE_INT64: c->phys = PT__PQ_INT64; c->width = 8; c->stat = ST_I64; break;
    case PT_TYPE_UINT64:
      c->phys = PT__PQ_INT64; c->width = 8; c->stat = ST_U64;
      l->kind = PT__LT_INTEGER; l->bit_width = 64; l->is_signed = false;
      e->converted = PT__CT_UINT_64;
      break;
    case PT_TYPE_HALF_FLOAT:
      c->phys = PT__PQ_FIXED_LEN_BYTE_ARRAY; c->width = 2; e->type_length = 2; c->stat = ST_F16;
      l->kind = PT__LT_FLOAT16;
      break;
    case PT_TYPE_FLOAT: c->phys = PT__PQ_FLOAT; c->width = 4; c->stat = ST_F32; break;
    case PT_TYPE_DOUBLE: c->phys = PT__PQ_DOUBLE; c->width = 8; c->stat = ST_F64; break;
    case PT_TYPE_STRING: case PT_TYPE_LARGE_STRING:
      c->phys = PT__PQ_BYTE_ARRAY; c->stat = ST_BYTES;
      l->kind = PT__LT_STRING; e->converted = PT__CT_UTF8;
      break;
    case PT_TYPE_BINARY: case PT_TYPE_LARGE_BINARY:
      c->phys = PT__PQ_BYTE_ARRAY; c->stat = ST_BYTES;
      break;
    case PT_TYPE_FIXED_SIZE_BINARY:
      c->phys = PT__PQ_FIXED_LEN_BYTE_ARRAY; c->width = c->type.byte_width;
      e->type_length = c->type.byte_width; c->stat = ST_BYTES;
      if (c->width <= 0) return pt__errorf(err, PT_ENOTSUP, "column '%s': fixed_size_binary(0) cannot be stored in Parquet", c->name);
      break;
    case PT_TYPE_DATE32:
      c->phys = PT__PQ_INT32; c->width = 4; c->stat = ST_I32;
      l->kind = PT__LT_DATE; e->converted = PT__CT_DATE;
      break;
    case PT_TYPE_TIMESTAMP: {
      c->phys = PT__PQ_INT64; c->width = 8; c->stat = ST_I64;
      l->kind = PT__LT_TIMESTAMP;
      l->utc = c->type.tz != NULL && c->type.tz[0] != '\0';
      pt_time_unit u = c->type.unit;
      if (u == PT_SECOND) { c->ts_mul = 1000; u = PT_MILLI; }
      l->unit = u == PT_MILLI ? PT__TU_MILLIS : u == PT_MICRO ? PT__TU_MICROS : PT__TU_NANOS;
      if (l->utc && u == PT_MILLI) e->converted = PT__CT_TIMESTAMP_MILLIS;
      if (l->utc && u == PT_MICRO) e->converted = PT__CT_TIMESTAMP_MICROS;
      break;
    }
    case PT_TYPE_DURATION: c->phys = PT__PQ_INT64; c->width = 8; c->stat = ST_I64; break;
    case PT_TYPE_TIME32:
      /* TIME(MILLIS) on INT32, as pyarrow: seconds become milliseconds. */
      c->phys = PT__PQ_INT32; c->width = 4; c->stat = ST_I32;
      if (c->type.unit == PT_SECOND) c->ts_mul = 1000;
      /* No converted type: TIME_MILLIS would claim UTC adjustment. */
      l->kind = PT__LT_TIME; l->utc = false; l->unit = PT__TU_MILLIS;
      break;
    case PT_TYPE_TIME64:
      c->phys = PT__PQ_INT64; c->width = 8; c->stat = ST_I64;
      l->kind = PT__LT_TIME; l->utc = false;
      l->unit = c->type.unit == PT_MICRO ? PT__TU_MICROS : PT__TU_NANOS;
      break;
    case PT_TYPE_STRING_VIEW:
      c->phys = PT__PQ_BYTE_ARRAY; c->stat = ST_BYTES;
      l->kind = PT__LT_STRING; e->converted = PT__CT_UTF8;
      break;
    case PT_TYPE_BINARY_VIEW:
      c->phys = PT__PQ_BYTE_ARRAY; c->stat = ST_BYTES;
      break;
    case PT_TYPE_DECIMAL32: case PT_TYPE_DECIMAL64: case PT_TYPE_DECIMAL256:
    case PT_TYPE_DECIMAL128:
      c->phys = PT__PQ_FIXED_LEN_BYTE_ARRAY;
      c->width = decimal_bytes(c->type.precision);
      e->type_length = c->width; c->stat = ST_BE_SIGNED;
      l->kind = PT__LT_DECIMAL; l->precision = c->type.precision; l->scale = c->type.scale;
      e->converted = PT__CT_DECIMAL; e->precision = c->type.precision; e->scale = c->type.scale;
      break;
    default: {
      char name[128];
      pt_type_name(field, name, sizeof name);
      return pt__errorf(err, PT_ENOTSUP,
                        "column '%s': writing %s to Parquet is not supported yet",
                        c->name, name);
    }
  }
  /* The canonical extension types Parquet has logical types for, as
   * pyarrow writes them. */
  const char *ext = "ARROW:extension:name";
  if (c->phys == PT__PQ_FIXED_LEN_BYTE_ARRAY && c->width == 16 && l->kind == PT__LT_NONE &&
      pt__pq_metadata_has(field->metadata, ext, "arrow.uuid"))
    l->kind = PT__LT_UUID;
  if (l->kind == PT__LT_STRING && pt__pq_metadata_has(field->metadata, ext, "arrow.json")) {
    l->kind = PT__LT_JSON;
    e->converted = PT__CT_JSON;
  }
  e->type = c->phys;
  return PT_OK;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* With extra pairs in opts, the stored schema carries them too: pyarrow
 * takes a file's schema metadata from ARROW:schema alone when it is there. */
static int store_arrow_schema(pt_parquet_writer *w, pt_error *err) {
  struct ArrowSchema with_kv = {0}; /* owned; release NULL when not needed */
  if (w->opts.n_metadata > 0) {
    PT_RETURN_NOT_OK(pt_schema_copy(&w->schema, &with_kv, err));
    const char **kv = pt__calloc((size_t)w->n_kv * 2 + 1, sizeof *kv);
    int64_t *lens = pt__calloc((size_t)w->n_kv * 2 + 1, sizeof *lens);
    int rc = kv && lens ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t j = 0; j < w->n_kv && rc == PT_OK; j++) {
      kv[j] = (const char *)w->kv[j].key.data;
      lens[j] = w->kv[j].key.len;
      kv[w->n_kv + j] = (const char *)w->kv[j].value.data;
      lens[w->n_kv + j] = w->kv[j].value.len;
    }
    if (rc == PT_OK)
      rc = pt_schema_set_metadata_n(&with_kv, w->n_kv, kv, lens, kv + w->n_kv, lens + w->n_kv, err);
    pt__free(kv);
    pt__free(lens);
    if (rc != PT_OK) {
      with_kv.release(&with_kv);
      return rc;
    }
  }
  pt_ipc_writer *iw;
  int rc = pt_ipc_writer_open_buffer(with_kv.release ? &with_kv : &w->schema, NULL, &iw, err);
  if (rc != PT_OK) {
    if (with_kv.release) with_kv.release(&with_kv);
    return rc;
  }
  void *data = NULL;
  int64_t size = 0;
  rc = pt_ipc_writer_close(iw, err);
  if (rc == PT_OK) rc = pt_ipc_writer_take_buffer(iw, &data, &size, err);
  pt_ipc_writer_free(iw);
  if (with_kv.release) with_kv.release(&with_kv);
  if (rc != PT_OK) return rc;
  size -= 8; /* the end-of-stream marker */
  const uint8_t *p = data;
  for (int64_t i = 0; i < size && rc == PT_OK; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < size ? (uint32_t)p[i + 1] << 8 : 0) |
                 (i + 2 < size ? p[i + 2] : 0);
    char q[4] = {B64[v >> 18], B64[(v >> 12) & 63], i + 1 < size ? B64[(v >> 6) & 63] : '=',
                 i + 2 < size ? B64[v & 63] : '='};
    rc = pt__buf_append(&w->arrow_schema, q, 4);
  }
  free(data);
  return rc == PT_OK ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
}

void pt_parquet_write_options_init(pt_parquet_write_options *o) {
  memset(o, 0, sizeof *o);
  o->codec = PT_PARQUET_SNAPPY;
  o->row_group_rows = DEFAULT_ROW_GROUP_ROWS;
  o->page_bytes = DEFAULT_PAGE_BYTES;
  o->dictionary_page_bytes = DEFAULT_DICT_BYTES;
  o->use_dictionary = 1;
  o->data_page_version = 1;
  o->write_statistics = 1;
  o->store_arrow_schema = 1;
  o->threads = 1;
}

static void col_free(wcol *c) {
  pt__free(c->defs);
  pt__free(c->reps);
  pt__free(c->idx);
  pt__free(c->stage);
  pt_buf_free(&c->plain);
  pt_buf_free(&c->dict);
  pt__free(c->dict_off);
  pt__free(c->dict_len);
  pt__free(c->table);
  pt__free(c->tags);
  pt__free(c->keys);
  pt_buf_free(&c->pages);
  pt_buf_free(&c->min);
  pt_buf_free(&c->max);
  pt__free(c->pi);
  pt__free(c->pi_seen);
  pt_buf_free(&c->pi_bounds);
}

void pt_parquet_writer_free(pt_parquet_writer *w) {
  if (w == NULL) return;
  for (int64_t i = 0; i < w->n_cols; i++) col_free(&w->cols[i]);
  pt__free(w->cols);
  pt__free(w->elems);
  if (w->schema.release) w->schema.release(&w->schema);
  if (w->given.release) w->given.release(&w->given);
  pt__free(w->intervals);
  pt__arena_free(&w->arena);
  pt__free(w->rgs);
  pt_buf_free(&w->arrow_schema);
  for (int t = 0; t < w->n_threads && w->bufs; t++) {
    pt_buf_free(&w->bufs[t].scratch);
    pt_buf_free(&w->bufs[t].scratch2);
    pt_buf_free(&w->bufs[t].body);
    pt_buf_free(&w->bufs[t].header);
    ZSTD_freeCCtx(w->bufs[t].zstd);
  }
  pt__free(w->bufs);
  pt__free(w->units);
  pt_buf_free(&w->column_indexes);
  pt_buf_free(&w->offset_indexes);
  if (w->own_fd && w->fd >= 0) close(w->fd);
  pt__free(w);
}

static bool kv_key_is(const pt__pq_kv *kv, const char *key, int64_t len) {
  return kv->key.len == len && memcmp(kv->key.data, key, (size_t)len) == 0;
}

static const uint8_t *arena_copy(pt__arena *a, const void *p, int64_t n) {
  uint8_t *q = pt__arena_alloc(a, n > 0 ? n : 1);
  if (q != NULL && n > 0) memcpy(q, p, (size_t)n);
  return q;
}

/* The footer's key-value pairs besides ARROW:schema: the Arrow schema's own
 * metadata (Spark, DuckDB and parquet-mr readers never look inside
 * ARROW:schema), then opts' pairs, which replace a schema pair of the same
 * key. Copies, so that the caller's strings need not outlive the call. */
static int collect_kv(pt_parquet_writer *w, const struct ArrowSchema *schema, pt_error *err) {
  const char *p;
  int32_t ns = pt__md_count(schema->metadata, &p);
  if (ns < 0) ns = 0;
  int64_t cap = ns + (w->opts.n_metadata > 0 ? w->opts.n_metadata : 0);
  w->kv = pt__arena_alloc(&w->arena, (cap > 0 ? cap : 1) * (int64_t)sizeof *w->kv);
  if (w->kv == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int32_t j = 0; j < ns; j++) {
    pt__md_pair e = pt__md_next(&p);
    if (e.key_len == 12 && memcmp(e.key, "ARROW:schema", 12) == 0) continue;
    pt__pq_kv *kv = &w->kv[w->n_kv++];
    *kv = (pt__pq_kv){.key = {arena_copy(&w->arena, e.key, e.key_len), e.key_len},
                      .has_value = true,
                      .value = {arena_copy(&w->arena, e.value, e.value_len), e.value_len}};
  }
  for (int64_t j = 0; j < w->opts.n_metadata; j++) {
    const char *k = w->opts.metadata_keys[j];
    const char *v = w->opts.metadata_values && w->opts.metadata_values[j] ? w->opts.metadata_values[j] : "";
    int64_t kl = (int64_t)strlen(k), vl = (int64_t)strlen(v);
    int64_t at = 0;
    while (at < w->n_kv && !kv_key_is(&w->kv[at], k, kl)) at++;
    if (at == w->n_kv) w->n_kv++;
    w->kv[at] = (pt__pq_kv){.key = {arena_copy(&w->arena, k, kl), kl}, .has_value = true,
                            .value = {arena_copy(&w->arena, v, vl), vl}};
  }
  for (int64_t j = 0; j < w->n_kv; j++)
    if (w->kv[j].key.data == NULL || w->kv[j].value.data == NULL)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
  return PT_OK;
}

static int check_options(const pt_parquet_write_options *o, pt_error *err) {
  switch (o->codec) {
    case PT_PARQUET_UNCOMPRESSED: case PT_PARQUET_SNAPPY: case PT_PARQUET_GZIP:
    case PT_PARQUET_BROTLI: case PT_PARQUET_ZSTD: case PT_PARQUET_LZ4_RAW: break;
    default:
      return pt__errorf(err, PT_EINVAL,
                        "parquet: unknown codec %d; use PT_PARQUET_UNCOMPRESSED, _SNAPPY, _GZIP, "
                        "_BROTLI, _ZSTD or _LZ4_RAW", o->codec);
  }
  if (o->row_group_rows <= 0)
    return pt__errorf(err, PT_EINVAL, "parquet: row_group_rows must be positive (got %lld)",
                      (long long)o->row_group_rows);
  if (o->page_bytes <= 0 || o->dictionary_page_bytes <= 0)
    return pt__errorf(err, PT_EINVAL, "parquet: page_bytes and dictionary_page_bytes must be positive");
  if (o->data_page_version != 1 && o->data_page_version != 2)
    return pt__errorf(err, PT_EINVAL, "parquet: data_page_version must be 1 or 2 (got %d)",
                      o->data_page_version);
  if (o->threads < 0 || o->threads > MAX_THREADS)
    return pt__errorf(err, PT_EINVAL, "parquet: threads must be between 1 and %d (got %d)",
                      MAX_THREADS, o->threads);
  if (o->n_partition_by != 0)
    return pt__errorf(err, PT_EINVAL,
                      "parquet: partition_by applies to pt_write_parquet (a directory); a "
                      "single file has no partition directories");
  if (o->n_metadata < 0 || (o->n_metadata > 0 && o->metadata_keys == NULL))
    return pt__errorf(err, PT_EINVAL, "parquet: metadata_keys must list n_metadata keys");
  for (int64_t j = 0; j < o->n_metadata; j++) {
    if (o->metadata_keys[j] == NULL)
      return pt__errorf(err, PT_EINVAL, "parquet: metadata key %lld is NULL", (long long)j);
    if (strcmp(o->metadata_keys[j], "ARROW:schema") == 0)
      return pt__errorf(err, PT_EINVAL, "parquet: metadata key ARROW:schema is the writer's "
                        "own (store_arrow_schema); choose another key");
  }
  return PT_OK;
}

/* The Arrow tree of a column: structs become groups, lists the three-level
 * LIST layout (group name (LIST) { repeated group list { element } }), the
 * rest leaves. Each node knows the levels its values get. */
enum { W_LEAF, W_STRUCT, W_LIST };

typedef struct wnode {
  int kind;
  bool nullable;
  int16_t erep;          /* W_LIST: repetition level of its elements */
  int64_t leaf;          /* W_LEAF: index in w->cols */
  int64_t first, end;    /* the leaves below: [first, end) */
  struct wnode *children;
  int64_t n_children;
} wnode;

static int add_elem(pt_parquet_writer *w, const pt__pq_schema_elem *e, pt_error *err) {
  if (pt__grow((void **)&w->elems, &w->cap_elems, w->n_elems + 1, sizeof *w->elems) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  w->elems[w->n_elems++] = *e;
  return PT_OK;
}

static int add_leaf_col(pt_parquet_writer *w, int64_t *index, pt_error *err) {
  wcol *c = pt__realloc(w->cols, (size_t)(w->n_cols + 1) * sizeof *c);
  if (c == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  w->cols = c;
  memset(&w->cols[w->n_cols], 0, sizeof *c);
  *index = w->n_cols++;
  return PT_OK;
}

/* Builds node n for field f (named name) whose parent's levels are def and
 * rep; path/n_path: the names above it. */
static int make_wnode(pt_parquet_writer *w, const struct ArrowSchema *f, const char *name,
                      int16_t def, int16_t rep, const pt__pq_bytes *path, int64_t n_path, wnode *n,
                      int depth, pt_error *err) {
  memset(n, 0, sizeof *n);
  if (depth > 64) return pt__errorf(err, PT_ENOTSUP, "column '%s': nested deeper than 64", name);
  pt_type t;
  PT_RETURN_NOT_OK(pt_type_parse(f, &t, err));
  n->nullable = (f->flags & ARROW_FLAG_NULLABLE) != 0 || t.id == PT_TYPE_NA;
  int16_t d = (int16_t)(def + (n->nullable ? 1 : 0));
  pt__pq_bytes *mypath = pt__arena_alloc(&w->arena, (n_path + 2) * (int64_t)sizeof *mypath);
  if (mypath == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  if (n_path > 0) memcpy(mypath, path, (size_t)n_path * sizeof *path);
  mypath[n_path] = (pt__pq_bytes){(const uint8_t *)name, (int64_t)strlen(name)};
  n->first = w->n_cols;
  pt__pq_schema_elem g = {.type = -1, .converted = -1,
                          .repetition = n->nullable ? PT__PQ_OPTIONAL : PT__PQ_REQUIRED,
                          .name = mypath[n_path]};
  if (w->entries_next) {
    /* A MAP's entries: the repeated group itself, never null. */
    w->entries_next = false;
    g.repetition = PT__PQ_REPEATED;
    n->nullable = false;
    d = def;
  }
  if (!t.dictionary && t.id == PT_TYPE_MAP) {
    /* The layout of list<struct<key, value>>; the entries struct is the
     * repeated key_value group (the MAP annotation's form). */
    n->kind = W_LIST;
    n->erep = (int16_t)(rep + 1);
    g.num_children = 1;
    g.converted = PT__CT_MAP;
    g.logical.kind = PT__LT_MAP;
    PT_RETURN_NOT_OK(add_elem(w, &g, err));
    n->n_children = 1;
    n->children = pt__arena_alloc(&w->arena, (int64_t)sizeof(wnode));
    if (n->children == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    w->entries_next = true;
    PT_RETURN_NOT_OK(make_wnode(w, f->children[0], "key_value", (int16_t)(d + 1), n->erep, mypath,
                                n_path + 1, n->children, depth + 1, err));
  } else if (!t.dictionary && t.id == PT_TYPE_STRUCT) {
    n->kind = W_STRUCT;
    g.num_children = (int32_t)f->n_children;
    if (f->n_children == 0)
      return pt__errorf(err, PT_ENOTSUP, "column '%s': a struct without fields cannot be stored in Parquet", name);
    PT_RETURN_NOT_OK(add_elem(w, &g, err));
    n->n_children = f->n_children;
    n->children = pt__arena_alloc(&w->arena, n->n_children * (int64_t)sizeof(wnode));
    if (n->children == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t k = 0; k < f->n_children; k++) {
      const struct ArrowSchema *cf = f->children[k];
      PT_RETURN_NOT_OK(make_wnode(w, cf, cf->name ? cf->name : "", d, rep, mypath, n_path + 1,
                                  &n->children[k], depth + 1, err));
    }
  } else if (!t.dictionary && (t.id == PT_TYPE_LIST || t.id == PT_TYPE_LARGE_LIST ||
                               t.id == PT_TYPE_FIXED_SIZE_LIST)) {
    n->kind = W_LIST;
    n->erep = (int16_t)(rep + 1);
    g.num_children = 1;
    g.converted = PT__CT_LIST;
    g.logical.kind = PT__LT_LIST;
    PT_RETURN_NOT_OK(add_elem(w, &g, err));
    pt__pq_schema_elem lg = {.type = -1, .converted = -1, .repetition = PT__PQ_REPEATED,
                             .name = {(const uint8_t *)"list", 4}, .num_children = 1};
    PT_RETURN_NOT_OK(add_elem(w, &lg, err));
    mypath[n_path + 1] = lg.name;
    n->n_children = 1;
    n->children = pt__arena_alloc(&w->arena, (int64_t)sizeof(wnode));
    if (n->children == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    PT_RETURN_NOT_OK(make_wnode(w, f->children[0], "element", (int16_t)(d + 1), n->erep, mypath,
                                n_path + 2, n->children, depth + 1, err));
  } else {
    n->kind = W_LEAF;
    PT_RETURN_NOT_OK(add_leaf_col(w, &n->leaf, err));
    wcol *c = &w->cols[n->leaf];
    c->name = name;
    PT_RETURN_NOT_OK(map_column(c, f, err));
    for (int64_t k = 0; k < w->n_intervals; k++)
      if (w->intervals[k] == f) {
        /* Parquet's INTERVAL: months, days, milliseconds (no order). */
        c->elem.converted = PT__CT_INTERVAL;
        c->stat = ST_NONE;
      }
    c->max_def = d;
    c->max_rep = rep;
    c->path = mypath;
    c->n_path = n_path + 1;
    c->use_dict = w->opts.use_dictionary && c->phys != PT__PQ_BOOLEAN && c->type.id != PT_TYPE_NA;
    c->fixed_dict = c->phys != PT__PQ_BYTE_ARRAY && (c->width == 4 || c->width == 8);
    PT_RETURN_NOT_OK(add_elem(w, &c->elem, err));
  }
  n->end = w->n_cols;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Types Parquet has no form for, made plain first: run-end encoded columns
 * as their values, list views as lists (as pyarrow writes them), intervals
 * that fit as Parquet's INTERVAL (12 bytes: months, days, milliseconds,
 * unsigned); unions are refused. */

static bool is_interval(const char *f) {
  return strcmp(f, "tiM") == 0 || strcmp(f, "tiD") == 0 || strcmp(f, "tin") == 0;
}

/* *out = in with those types made plain; *changed when any was. */
static int plain_schema(const struct ArrowSchema *in, struct ArrowSchema *out, bool *changed,
                        pt_error *err) {
  const char *f = in->format ? in->format : "";
  const char *name = in->name ? in->name : "";
  if (strncmp(f, "+u", 2) == 0)
    return pt__errorf(err, PT_ENOTSUP,
                      "column '%s': Parquet has no union type; write each member as a column "
                      "of its own (or a struct of them) instead", name);
  if (strcmp(f, "+r") == 0) {
    if (in->n_children != 2)
      return pt__errorf(err, PT_EINVAL, "column '%s': a run-end encoded type needs 2 children", name);
    *changed = true;
    PT_RETURN_NOT_OK(plain_schema(in->children[1], out, changed, err));
    /* The values' type under the column's name; nulls are the values'. */
    char *n = pt__strdup(name);
    if (n == NULL) {
      out->release(out);
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    struct ArrowSchema tmp;
    int rc = pt_schema_init(&tmp, out->format, n, ARROW_FLAG_NULLABLE, out->n_children, err);
    pt__free(n);
    for (int64_t k = 0; k < out->n_children && rc == PT_OK; k++)
      rc = pt_schema_copy(out->children[k], tmp.children[k], err);
    if (rc == PT_OK && out->dictionary) {
      struct ArrowSchema d;
      rc = pt_schema_copy(out->dictionary, &d, err);
      if (rc == PT_OK) rc = pt_schema_set_dictionary(&tmp, &d, err);
    }
    out->release(out);
    if (rc != PT_OK) {
      if (tmp.release) tmp.release(&tmp);
      return rc;
    }
    *out = tmp;
    return PT_OK;
  }
  const char *nf = f;
  if (strcmp(f, "+vl") == 0) nf = "+l";
  else if (strcmp(f, "+vL") == 0) nf = "+L";
  else if (is_interval(f)) nf = "w:12";
  if (nf != f) *changed = true;
  if (in->dictionary) return pt_schema_copy(in, out, err);
  /* The same type keeps everything (metadata too); its children are then
   * made again. */
  if (nf == f) PT_RETURN_NOT_OK(pt_schema_copy(in, out, err));
  else PT_RETURN_NOT_OK(pt_schema_init(out, nf, name, in->flags, in->n_children, err));
  int rc = PT_OK;
  for (int64_t k = 0; k < in->n_children && rc == PT_OK; k++) {
    if (out->children[k]->release) out->children[k]->release(out->children[k]);
    rc = plain_schema(in->children[k], out->children[k], changed, err);
    if (rc != PT_OK) {
      /* The child is released; give the parent a valid one to release. */
      pt_error e2;
      (void)pt_schema_init(out->children[k], "n", "", 0, 0, &e2);
    }
  }
  if (rc != PT_OK) out->release(out);
  return rc;
}

/* *out = array (of Arrow schema s) with its converted types made plain,
 * as plain_schema made the schema. Buffers not converted are borrowed from
 * array, which must outlive *out. */
static int plain_array(const struct ArrowSchema *s, const struct ArrowArray *a,
                       struct ArrowArray *out, pt_error *err) {
  const char *f = s->format;
  const char *name = s->name ? s->name : "";
  if (strcmp(f, "+r") == 0) {
    /* Row i is the value of the run that covers it. */
    const struct ArrowSchema *rs = s->children[0];
    const struct ArrowArray *ra = a->children[0];
    int64_t n = a->length, *idx = pt__malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (idx == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    int w = rs->format[0] == 's' ? 2 : rs->format[0] == 'i' ? 4 : 8;
    const uint8_t *ends = (const uint8_t *)ra->buffers[1] + ra->offset * w;
    int64_t run = 0;
    for (int64_t i = 0; i < n; i++) {
      int64_t row = a->offset + i;
      for (;;) {
        if (run >= ra->length) {
          pt__free(idx);
          return pt__errorf(err, PT_EINVAL, "column '%s': run ends stop before row %lld", name,
                            (long long)row);
        }
        int64_t e = w == 2 ? (int16_t)pt__load_u16(ends + run * 2)
                    : w == 4 ? pt__load_i32(ends + run * 4) : pt__load_i64(ends + run * 8);
        if (row < e) break;
        run++;
      }
      idx[i] = run;
    }
    struct ArrowArray values;
    int rc = plain_array(s->children[1], a->children[1], &values, err);
    if (rc == PT_OK) {
      rc = pt__array_take(s->children[1], &values, idx, n, out, err);
      values.release(&values);
    }
    pt__free(idx);
    return rc;
  }
  bool view = strcmp(f, "+vl") == 0 || strcmp(f, "+vL") == 0;
  bool interval = is_interval(f);
  int64_t nb = view ? 2 : interval ? 2 : a->n_buffers;
  PT_RETURN_NOT_OK(pt__array_init(out, nb, a->n_children, false, err));
  out->length = a->length;
  out->null_count = a->null_count;
  out->offset = view || interval ? 0 : a->offset;
  int rc = PT_OK;
  if (view || interval) {
    /* New buffers from row 0: the validity moved along. */
    if (a->null_count != 0 && a->buffers[0] != NULL) {
      uint8_t *v = pt__calloc(1, (size_t)(a->length + 7) / 8 + 8);
      if (v == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      else {
        pt__bits_copy(a->buffers[0], a->offset, v, 0, a->length);
        pt__array_set_buffer(out, 0, v, true);
      }
    }
  } else {
    for (int64_t b = 0; b < a->n_buffers; b++) pt__array_set_buffer(out, b, a->buffers[b], false);
  }
  if (rc == PT_OK && interval) {
    uint8_t *v = pt__malloc((size_t)(a->length ? a->length : 1) * 12);
    if (v == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t i = 0; i < a->length && rc == PT_OK; i++) {
      int64_t r = a->offset + i;
      int64_t months = 0, days = 0, ms = 0;
      const uint8_t *p = a->buffers[1];
      bool valid = a->null_count == 0 || a->buffers[0] == NULL || pt__bit_get(a->buffers[0], r);
      if (f[2] == 'M') months = pt__load_i32(p + r * 4);
      else if (f[2] == 'D') { days = pt__load_i32(p + r * 8); ms = pt__load_i32(p + r * 8 + 4); }
      else {
        months = pt__load_i32(p + r * 16);
        days = pt__load_i32(p + r * 16 + 4);
        int64_t ns = pt__load_i64(p + r * 16 + 8);
        if (valid && ns % 1000000 != 0)
          rc = pt__errorf(err, PT_EINVAL,
                          "column '%s': row %lld has an interval of %lld ns, not whole "
                          "milliseconds; Parquet's INTERVAL holds milliseconds (cast or round "
                          "it first)", name, (long long)i, (long long)ns);
        ms = ns / 1000000;
      }
      if (rc == PT_OK && valid && (months < 0 || days < 0 || ms < 0 || ms > UINT32_MAX))
        rc = pt__errorf(err, PT_EINVAL,
                        "column '%s': row %lld has a negative interval (or one over 2^32 ms); "
                        "Parquet's INTERVAL holds unsigned months, days and milliseconds",
                        name, (long long)i);
      if (rc == PT_OK) {
        if (!valid) months = days = ms = 0;
        pt__store_u32(v + i * 12, (uint32_t)months);
        pt__store_u32(v + i * 12 + 4, (uint32_t)days);
        pt__store_u32(v + i * 12 + 8, (uint32_t)ms);
      }
    }
    if (v != NULL) pt__array_set_buffer(out, 1, v, true);
  } else if (rc == PT_OK && view) {
    /* Each row's elements gathered in row order; offsets counted anew. */
    bool large = f[2] == 'L';
    int64_t total = 0;
    const uint8_t *offs = a->buffers[1], *sizes = a->buffers[2];
    for (int64_t i = 0; i < a->length; i++) {
      int64_t r = a->offset + i;
      bool valid = a->null_count == 0 || a->buffers[0] == NULL || pt__bit_get(a->buffers[0], r);
      int64_t sz = large ? pt__load_i64(sizes + r * 8) : pt__load_i32(sizes + r * 4);
      int64_t of = large ? pt__load_i64(offs + r * 8) : pt__load_i32(offs + r * 4);
      if (valid && (sz < 0 || of < 0 || of + sz > a->children[0]->length)) {
        rc = pt__errorf(err, PT_EINVAL, "column '%s': list view row %lld runs outside its values",
                        name, (long long)i);
        break;
      }
      if (valid) total += sz;
    }
    if (!large && total > INT32_MAX)
      rc = pt__errorf(err, PT_ERANGE, "column '%s': more than 2^31 list elements", name);
    int64_t *idx = NULL;
    uint8_t *no = NULL;
    if (rc == PT_OK) {
      idx = pt__malloc((size_t)(total ? total : 1) * sizeof *idx);
      no = pt__malloc((size_t)(a->length + 1) * (large ? 8 : 4));
      if (idx == NULL || no == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    int64_t at = 0;
    for (int64_t i = 0; i < a->length && rc == PT_OK; i++) {
      int64_t r = a->offset + i;
      if (large) pt__store_i64(no + i * 8, at);
      else pt__store_i32(no + i * 4, (int32_t)at);
      bool valid = a->null_count == 0 || a->buffers[0] == NULL || pt__bit_get(a->buffers[0], r);
      if (!valid) continue;
      int64_t sz = large ? pt__load_i64(sizes + r * 8) : pt__load_i32(sizes + r * 4);
      int64_t of = large ? pt__load_i64(offs + r * 8) : pt__load_i32(offs + r * 4);
      for (int64_t k = 0; k < sz; k++) idx[at++] = of + k;
    }
    if (rc == PT_OK) {
      if (large) pt__store_i64(no + a->length * 8, at);
      else pt__store_i32(no + a->length * 4, (int32_t)at);
      pt__array_set_buffer(out, 1, no, true);
      no = NULL;
      struct ArrowArray child;
      rc = plain_array(s->children[0], a->children[0], &child, err);
      if (rc == PT_OK) {
        out->children[0]->release = NULL;
        rc = pt__array_take(s->children[0], &child, idx, total, out->children[0], err);
        child.release(&child);
      }
    }
    pt__free(idx);
    pt__free(no);
  } else {
    for (int64_t k = 0; k < a->n_children && rc == PT_OK; k++)
      rc = plain_array(s->children[k], a->children[k], out->children[k], err);
    if (rc == PT_OK && a->dictionary) rc = pt__errorf(err, PT_ENOTSUP, "column '%s': dictionary "
                                                      "under a converted type", name);
  }
  if (rc != PT_OK) out->release(out);
  return rc;
}

/* Records the fields of plain (the written schema) that were intervals in
 * given, walking both trees together. */
static int mark_intervals(pt_parquet_writer *w, const struct ArrowSchema *given,
                          const struct ArrowSchema *plain) {
  if (strcmp(given->format, "+r") == 0) return mark_intervals(w, given->children[1], plain);
  if (is_interval(given->format)) {
    if (pt__grow((void **)&w->intervals, &w->cap_intervals, w->n_intervals + 1,
                 sizeof *w->intervals) != PT_OK)
      return PT_ENOMEM;
    w->intervals[w->n_intervals++] = plain;
    return PT_OK;
  }
  if (given->dictionary) return PT_OK;
  for (int64_t k = 0; k < given->n_children && k < plain->n_children; k++)
    PT_RETURN_NOT_OK(mark_intervals(w, given->children[k], plain->children[k]));
  return PT_OK;
}

/* The threads' buffers, and the columns' shares: a top-level column each,
 * a nested one's leaves split between the threads when it has several. */
static int make_units(pt_parquet_writer *w, pt_error *err) {
  w->n_threads = w->opts.threads > 1 ? w->opts.threads : 1;
  w->bufs = pt__calloc((size_t)w->n_threads, sizeof *w->bufs);
  int64_t cap = 0;
  for (int64_t k = 0; k < w->n_tops; k++) cap += w->n_threads;
  w->units = pt__malloc((size_t)(cap ? cap : 1) * sizeof *w->units);
  if (w->bufs == NULL || w->units == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t k = 0; k < w->n_tops; k++) {
    const wnode *t = &w->tops[k];
    int64_t leaves = t->end - t->first;
    int64_t parts = t->kind == W_LEAF || leaves < 2 ? 1 : leaves < w->n_threads ? leaves : w->n_threads;
    for (int64_t p = 0; p < parts; p++)
      w->units[w->n_units++] = (wunit){k, t->first + leaves * p / parts, t->first + leaves * (p + 1) / parts};
  }
  return PT_OK;
}

static int open_common(pt_parquet_writer *w, const struct ArrowSchema *schema,
                       const pt_parquet_write_options *opts, pt_error *err) {
  if (opts) w->opts = *opts;
  else pt_parquet_write_options_init(&w->opts);
  PT_RETURN_NOT_OK(check_options(&w->opts, err));
  if (schema == NULL || schema->format == NULL || strcmp(schema->format, "+s") != 0)
    return pt__errorf(err, PT_EINVAL, "parquet: the schema must be a struct (\"+s\") of columns");
  bool changed = false;
  PT_RETURN_NOT_OK(plain_schema(schema, &w->schema, &changed, err));
  if (changed) {
    PT_RETURN_NOT_OK(pt_schema_copy(schema, &w->given, err));
    if (mark_intervals(w, &w->given, &w->schema) != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  w->n_tops = w->schema.n_children;
  w->tops = pt__arena_alloc(&w->arena, (w->n_tops ? w->n_tops : 1) * (int64_t)sizeof(wnode));
  if (w->tops == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t i = 0; i < w->n_tops; i++) {
    const struct ArrowSchema *f = w->schema.children[i];
    PT_RETURN_NOT_OK(make_wnode(w, f, f->name ? f->name : "", 0, 0, NULL, 0, &w->tops[i], 0, err));
  }
  PT_RETURN_NOT_OK(make_units(w, err));
  PT_RETURN_NOT_OK(collect_kv(w, schema, err));
  if (w->opts.store_arrow_schema) PT_RETURN_NOT_OK(store_arrow_schema(w, err));
  return out_write(w, "PAR1", 4, err);
}

int pt_parquet_writer_open_path(const char *path, const struct ArrowSchema *schema,
                                const pt_parquet_write_options *opts, pt_parquet_writer **out,
                                pt_error *err) {
  *out = NULL;
  pt_parquet_writer *w = pt__calloc(1, sizeof *w);
  if (w == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    int e = errno;
    pt__free(w);
    return pt__errorf(err, PT_EIO, "parquet: cannot create %s: %s", path, strerror(e));
  }
  w->own_fd = true;
  int rc = open_common(w, schema, opts, err);
  if (rc != PT_OK) {
    pt_parquet_writer_free(w);
    unlink(path);
    return rc;
  }
  *out = w;
  return PT_OK;
}

int pt_parquet_writer_open_buf(pt_buf *buf, const struct ArrowSchema *schema,
                               const pt_parquet_write_options *opts, pt_parquet_writer **out,
                               pt_error *err) {
  *out = NULL;
  pt_parquet_writer *w = pt__calloc(1, sizeof *w);
  if (w == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  w->fd = -1;
  w->buf = buf;
  int rc = open_common(w, schema, opts, err);
  if (rc != PT_OK) {
    pt_parquet_writer_free(w);
    return rc;
  }
  *out = w;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Values */

/* Compares physical values a and b (PLAIN bytes, without BYTE_ARRAY's
 * length) in the column's sort order. */
/* Bytewise order, unsigned: the first eight bytes, as a big-endian word,
 * decide most comparisons without a call. */
static inline int compare_bytes(const uint8_t *a, int64_t al, const uint8_t *b, int64_t bl) {
  if (al >= 8 && bl >= 8) {
    uint64_t x = __builtin_bswap64(pt__load_u64(a)), y = __builtin_bswap64(pt__load_u64(b));
    if (x != y) return x < y ? -1 : 1;
  }
  int c = memcmp(a, b, (size_t)(al < bl ? al : bl));
  if (c != 0) return (c > 0) - (c < 0);
  return (al > bl) - (al < bl);
}

static int compare(int stat, const uint8_t *a, int64_t al, const uint8_t *b, int64_t bl) {
  switch (stat) {
    case ST_BOOL: return (int)a[0] - (int)b[0];
    case ST_I32: { int32_t x = pt__load_i32(a), y = pt__load_i32(b); return (x > y) - (x < y); }
    case ST_U32: { uint32_t x = pt__load_u32(a), y = pt__load_u32(b); return (x > y) - (x < y); }
    case ST_I64: { int64_t x = pt__load_i64(a), y = pt__load_i64(b); return (x > y) - (x < y); }
    case ST_U64: { uint64_t x = pt__load_u64(a), y = pt__load_u64(b); return (x > y) - (x < y); }
    case ST_F32: { float x, y; memcpy(&x, a, 4); memcpy(&y, b, 4); return (x > y) - (x < y); }
    case ST_F64: { double x, y; memcpy(&x, a, 8); memcpy(&y, b, 8); return (x > y) - (x < y); }
    case ST_F16: {
      double x = pt__half_to_double(pt__load_u16(a)), y = pt__half_to_double(pt__load_u16(b));
      return (x > y) - (x < y);
    }
    case ST_BE_SIGNED: {
      if ((a[0] ^ b[0]) & 0x80) return (a[0] & 0x80) ? -1 : 1;
      int c = memcmp(a, b, (size_t)al);
      return (c > 0) - (c < 0);
    }
    default: return compare_bytes(a, al, b, bl);
  }
}

static bool is_nan(int stat, const uint8_t *p) {
  if (stat == ST_F32) { float f; memcpy(&f, p, 4); return isnan(f); }
  if (stat == ST_F64) { double d; memcpy(&d, p, 8); return isnan(d); }
  if (stat == ST_F16) return isnan(pt__half_to_double(pt__load_u16(p)));
  return false;
}

static int update_stats(wcol *c, const uint8_t *v, int64_t len) {
  if (c->stat == ST_NONE || c->stats_dropped || is_nan(c->stat, v)) return PT_OK;
  if (len > MAX_STAT_BYTES) {
    c->stats_dropped = true;
    return PT_OK;
  }
  if (!c->has_minmax) {
    c->min.len = c->max.len = 0;
    PT_RETURN_NOT_OK(pt__buf_append(&c->min, v, (size_t)len));
    PT_RETURN_NOT_OK(pt__buf_append(&c->max, v, (size_t)len));
    c->has_minmax = true;
    return PT_OK;
  }
  if (compare(c->stat, v, len, (uint8_t *)c->min.data, (int64_t)c->min.len) < 0) {
    c->min.len = 0;
    PT_RETURN_NOT_OK(pt__buf_append(&c->min, v, (size_t)len));
  }
  if (compare(c->stat, v, len, (uint8_t *)c->max.data, (int64_t)c->max.len) > 0) {
    c->max.len = 0;
    PT_RETURN_NOT_OK(pt__buf_append(&c->max, v, (size_t)len));
  }
  return PT_OK;
}

/* Eight bytes at a time, one multiply each: dictionaries hash every value
 * written. Four- and eight-byte values (most columns) take one load. */
static inline uint64_t hash_bytes(const uint8_t *p, int64_t n) {
  const uint8_t *start = p;
  if (n == 8 || n == 4) {
    uint64_t h = (n == 8 ? pt__load_u64(p) : pt__load_u32(p)) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
  }
  uint64_t h = (uint64_t)n * 0x9e3779b97f4a7c15ull;
  if (n >= 4 && n < 8) {
    /* Short strings (words, codes): two overlapping loads cover them. */
    uint64_t t = (uint64_t)pt__load_u32(p) | (uint64_t)pt__load_u32(p + n - 4) << 32;
    h = (h ^ t) * 0xff51afd7ed558ccdull;
    n = 0;
  }
  while (n >= 8) {
    h = (h ^ pt__load_u64(p)) * 0xff51afd7ed558ccdull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    /* The tail: the last 8 bytes again when there were more before. */
    uint64_t t = 0;
    if (p > start) t = pt__load_u64(p + n - 8);
    else for (int64_t i = 0; i < n; i++) t |= (uint64_t)p[i] << (8 * i);
    h = (h ^ t) * 0xff51afd7ed558ccdull;
  }
  h ^= h >> 29;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 32);
}

static inline bool same_bytes(const uint8_t *a, const uint8_t *b, int64_t n) {
  if (n == 8) return pt__load_u64(a) == pt__load_u64(b);
  if (n == 4) return pt__load_u32(a) == pt__load_u32(b);
  if (n > 4 && n < 8)
    return pt__load_u32(a) == pt__load_u32(b) && pt__load_u32(a + n - 4) == pt__load_u32(b + n - 4);
  if (n < 4) {
    for (int64_t i = 0; i < n; i++)
      if (a[i] != b[i]) return false;
    return true;
  }
  return memcmp(a, b, (size_t)n) == 0;
}

/* Dictionary entry e's bytes and length. */
static inline const uint8_t *dict_entry(const wcol *c, int64_t e) {
  return (const uint8_t *)c->dict.data + (c->fixed_dict ? e * c->width : c->dict_off[e]);
}
static inline int64_t dict_entry_len(const wcol *c, int64_t e) {
  return c->fixed_dict ? c->width : c->dict_len[e];
}

/* The dictionary of 4- and 8-byte values (most numeric columns): the slot
 * holds the value itself, so a lookup reads one slot and compares one
 * word; entries are the values, back to back. -1: out of memory. */
static int64_t dict_index_fixed(wcol *c, uint64_t key) {
  if (c->dict_n * 2 >= c->table_cap) {
    int64_t cap = c->table_cap ? c->table_cap * 2 : 1024;
    int32_t *t = pt__calloc((size_t)cap, sizeof *t);
    uint64_t *k = pt__malloc((size_t)cap * sizeof *k);
    if (t == NULL || k == NULL) {
      pt__free(t);
      pt__free(k);
      return -1;
    }
    for (int64_t s = 0; s < c->table_cap; s++) {
      if (!c->table[s]) continue;
      uint64_t h = c->keys[s] * 0x9e3779b97f4a7c15ull;
      int64_t j = (int64_t)((h ^ (h >> 32)) & (uint64_t)(cap - 1));
      while (t[j]) j = (j + 1) & (cap - 1);
      t[j] = c->table[s];
      k[j] = c->keys[s];
    }
    pt__free(c->table);
    pt__free(c->keys);
    c->table = t;
    c->keys = k;
    c->table_cap = cap;
  }
  uint64_t h = key * 0x9e3779b97f4a7c15ull;
  uint64_t mask = (uint64_t)c->table_cap - 1;
  uint64_t s = (h ^ (h >> 32)) & mask;
  for (int32_t t; (t = c->table[s]) != 0; s = (s + 1) & mask)
    if (c->keys[s] == key) return t - 1;
  if (c->dict.len + 8 > c->dict.cap && pt__buf_reserve(&c->dict, 64 * 1024) != PT_OK) return -1;
  uint8_t *at = (uint8_t *)c->dict.data + c->dict.len;
  if (c->width == 8) memcpy(at, &key, 8);
  else pt__store_u32(at, (uint32_t)key);
  c->dict.len += (size_t)c->width;
  c->table[s] = (int32_t)(c->dict_n + 1);
  c->keys[s] = key;
  return c->dict_n++;
}

/* The dictionary index of v, adding it if new. -1: out of memory. */
static int64_t dict_index(wcol *c, const uint8_t *v, int64_t len) {
  if (c->fixed_dict) return dict_index_fixed(c, len == 8 ? pt__load_u64(v) : pt__load_u32(v));
  if (c->dict_n * 2 >= c->table_cap) {
    int64_t cap = c->table_cap ? c->table_cap * 2 : 1024;
    int32_t *t = pt__calloc((size_t)cap, sizeof *t);
    uint32_t *g = pt__calloc((size_t)cap, sizeof *g);
    if (t == NULL || g == NULL) {
      pt__free(t);
      pt__free(g);
      return -1;
    }
    for (int64_t e = 0; e < c->dict_n; e++) {
      uint64_t h = hash_bytes((uint8_t *)c->dict.data + c->dict_off[e], c->dict_len[e]);
      int64_t s = (int64_t)(h & (uint64_t)(cap - 1));
      while (t[s]) s = (s + 1) & (cap - 1);
      t[s] = (int32_t)(e + 1);
      g[s] = (uint32_t)(h >> 32);
    }
    pt__free(c->table);
    pt__free(c->tags);
    c->table = t;
    c->tags = g;
    c->table_cap = cap;
  }
  uint64_t h = hash_bytes(v, len);
  uint32_t tag = (uint32_t)(h >> 32);
  int64_t s = (int64_t)(h & (uint64_t)(c->table_cap - 1));
  while (c->table[s]) {
    int64_t e = c->table[s] - 1;
    if (c->tags[s] == tag && c->dict_len[e] == len &&
        same_bytes((const uint8_t *)c->dict.data + c->dict_off[e], v, len))
      return e;
    s = (s + 1) & (c->table_cap - 1);
  }
  if (c->dict_n >= c->dict_cap) {
    int64_t cap = c->dict_cap ? c->dict_cap * 2 : 256;
    int64_t *o = pt__realloc(c->dict_off, (size_t)cap * sizeof *o);
    if (o == NULL) return -1;
    c->dict_off = o;
    int32_t *l = pt__realloc(c->dict_len, (size_t)cap * sizeof *l);
    if (l == NULL) return -1;
    c->dict_len = l;
    c->dict_cap = cap;
  }
  /* The value's bytes (after its length for BYTE_ARRAY), stored inline:
   * a call per new value shows in profiles of high-cardinality columns. */
  if (c->dict.len + (size_t)len + 4 > c->dict.cap &&
      pt__buf_reserve(&c->dict, (size_t)len + 4) != PT_OK)
    return -1;
  uint8_t *at = (uint8_t *)c->dict.data + c->dict.len;
  if (c->phys == PT__PQ_BYTE_ARRAY) {
    pt__store_u32(at, (uint32_t)len);
    at += 4;
    c->dict.len += 4;
  }
  c->dict_off[c->dict_n] = (int64_t)c->dict.len;
  c->dict_len[c->dict_n] = (int32_t)len;
  if (len == 8) memcpy(at, v, 8);
  else if (len == 4) memcpy(at, v, 4);
  else if (len > 0) memcpy(at, v, (size_t)len);
  c->dict.len += (size_t)len;
  c->table[s] = (int32_t)(c->dict_n + 1);
  c->tags[s] = tag;
  return c->dict_n++;
}

static int push_u32(uint32_t **a, int64_t *cap, int64_t n, uint32_t v) {
  if (n >= *cap) {
    int64_t c = *cap ? *cap * 2 : 1024;
    uint32_t *p = pt__realloc(*a, (size_t)c * sizeof *p);
    if (p == NULL) return PT_ENOMEM;
    *a = p;
    *cap = c;
  }
  (*a)[n] = v;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Pages */

static int compress_into(pt_parquet_writer *w, wbufs *b, const uint8_t *src, int64_t n,
                         pt_buf *dst, int64_t *out_len, pt_error *err) {
  int codec = w->opts.codec;
  int64_t bound = pt__pq_compress_bound(codec, n);
  if (pt__buf_reserve(dst, (size_t)bound) != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
  if (codec == PT__CODEC_ZSTD) {
    /* The same bytes as pt__pq_compress's, from this thread's context. */
    if (b->zstd == NULL && (b->zstd = ZSTD_createCCtx()) == NULL)
      return pt__errorf(err, PT_ENOMEM, "out of memory (zstd)");
    int level = w->opts.compression_level > 0 ? w->opts.compression_level : 1;
    size_t got = ZSTD_compressCCtx(b->zstd, (uint8_t *)dst->data + dst->len, (size_t)bound, src,
                                   (size_t)n, level);
    if (ZSTD_isError(got))
      return pt__errorf(err, PT_EINTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(got));
    *out_len = (int64_t)got;
    dst->len += got;
    return PT_OK;
  }
  if (codec == PT__CODEC_SNAPPY) {
    *out_len = pt__snappy_compress(src, n, (uint8_t *)dst->data + dst->len);
    dst->len += (size_t)*out_len;
    return PT_OK;
  }
  PT_RETURN_NOT_OK(pt__pq_compress(codec, w->opts.compression_level, src, n,
                                   (uint8_t *)dst->data + dst->len, bound, out_len, err));
  dst->len += (size_t)*out_len;
  return PT_OK;
}

/* Spec: a zero minimum is -0.0 and a zero maximum +0.0 (they compare
 * equal, so either may have been kept). */
static void signed_zero(int stat, uint8_t *v, bool is_min) {
  if (stat == ST_F64) {
    double d;
    memcpy(&d, v, 8);
    if (d == 0) { d = is_min ? -0.0 : 0.0; memcpy(v, &d, 8); }
  } else if (stat == ST_F32) {
    float f;
    memcpy(&f, v, 4);
    if (f == 0) { f = is_min ? -0.0f : 0.0f; memcpy(v, &f, 4); }
  }
}

/* Min and max of the page's values for fixed-width numbers, in their own
 * type (a typed loop, several times cheaper than compare() per value).
 * PT_ENOTSUP for the other columns. */
#define PAGE_BOUNDS(T, LOAD, SKIP)                                                 \
  do {                                                                           \
    T lo = 0, hi = 0;                                                            \
    bool any = false;                                                            \
    for (int64_t i = 0; i < n; i++) {                                            \
      const uint8_t *p = dict ? base + (int64_t)c->idx[i] * w : base + i * w;    \
      T x = LOAD(p);                                                             \
      if (SKIP) continue;                                                        \
      if (!any) { lo = hi = x; any = true; continue; }                           \
      if (x < lo) lo = x;                                                        \
      if (x > hi) hi = x;                                                        \
    }                                                                            \
    if (!any) { c->pi_no_minmax = true; return PT_OK; }                          \
    memcpy(lob, &lo, sizeof lo);                                                 \
    memcpy(hib, &hi, sizeof hi);                                                 \
  } while (0)

static inline float load_f32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }
static inline double load_f64(const uint8_t *p) { double d; memcpy(&d, p, 8); return d; }

/* The bounds append_fast kept for the page, as PLAIN bytes. PT_ENOTSUP
 * when it kept none (another path gave values, or another type). */
static int fast_page_bounds(wcol *c, wpage *pg, pt_error *err) {
  uint8_t lo[8], hi[8];
  switch (c->stat) {
    case ST_I32: pt__store_i32(lo, (int32_t)c->pg_imin); pt__store_i32(hi, (int32_t)c->pg_imax); break;
    case ST_I64: pt__store_i64(lo, c->pg_imin); pt__store_i64(hi, c->pg_imax); break;
    case ST_U32: pt__store_u32(lo, (uint32_t)c->pg_umin); pt__store_u32(hi, (uint32_t)c->pg_umax); break;
    case ST_U64: memcpy(lo, &c->pg_umin, 8); memcpy(hi, &c->pg_umax, 8); break;
    case ST_F32: {
      float a = (float)c->pg_dmin, b = (float)c->pg_dmax;
      memcpy(lo, &a, 4);
      memcpy(hi, &b, 4);
      break;
    }
    case ST_F64: memcpy(lo, &c->pg_dmin, 8); memcpy(hi, &c->pg_dmax, 8); break;
    default: return PT_ENOTSUP;
  }
  if (!c->pg_has) { /* values, but NaN only */
    c->pi_no_minmax = true;
    return PT_OK;
  }
  pg->min_off = (int64_t)c->pi_bounds.len;
  pg->min_len = c->width;
  pg->max_off = pg->min_off + c->width;
  pg->max_len = c->width;
  if (pt__buf_append(&c->pi_bounds, lo, (size_t)c->width) != PT_OK ||
      pt__buf_append(&c->pi_bounds, hi, (size_t)c->width) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  signed_zero(c->stat, (uint8_t *)c->pi_bounds.data + pg->min_off, true);
  signed_zero(c->stat, (uint8_t *)c->pi_bounds.data + pg->max_off, false);
  return PT_OK;
}

static int typed_page_bounds(wcol *c, bool dict, wpage *pg, pt_error *err) {
  int w = c->width;
  int64_t n = c->page_values;
  const uint8_t *base = dict ? (const uint8_t *)c->dict.data : (const uint8_t *)c->plain.data;
  uint8_t lob[8], hib[8];
  switch (c->stat) {
    case ST_I32: PAGE_BOUNDS(int32_t, pt__load_i32, false); break;
    case ST_U32: PAGE_BOUNDS(uint32_t, pt__load_u32, false); break;
    case ST_I64: PAGE_BOUNDS(int64_t, pt__load_i64, false); break;
    case ST_U64: PAGE_BOUNDS(uint64_t, pt__load_u64, false); break;
    case ST_F32: PAGE_BOUNDS(float, load_f32, isnan(x)); break;
    case ST_F64: PAGE_BOUNDS(double, load_f64, isnan(x)); break;
    default: return PT_ENOTSUP;
  }
  pg->min_off = (int64_t)c->pi_bounds.len;
  pg->min_len = w;
  pg->max_off = pg->min_off + w;
  pg->max_len = w;
  if (pt__buf_append(&c->pi_bounds, lob, (size_t)w) != PT_OK ||
      pt__buf_append(&c->pi_bounds, hib, (size_t)w) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  signed_zero(c->stat, (uint8_t *)c->pi_bounds.data + pg->min_off, true);
  signed_zero(c->stat, (uint8_t *)c->pi_bounds.data + pg->max_off, false);
  return PT_OK;
}

/* The current page's entry in the page index: its place, first row, null
 * count, and the min/max of its values (NaN left out). */
static int page_index_add(wcol *c, bool dict, int64_t offset, int64_t size, int64_t rows,
                          pt_error *err) {
  if (c->pi_n == c->pi_cap) {
    int64_t cap = c->pi_cap ? c->pi_cap * 2 : 16;
    wpage *p = pt__realloc(c->pi, (size_t)cap * sizeof *p);
    if (p == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    c->pi = p;
    c->pi_cap = cap;
  }
  wpage *pg = &c->pi[c->pi_n++];
  memset(pg, 0, sizeof *pg);
  pg->offset = offset;
  pg->size = (int32_t)size;
  pg->first_row = c->chunk_rows;
  pg->nulls = c->page_rows - c->page_values;
  pg->null_page = c->page_values == 0;
  c->chunk_rows += rows;
  if (pg->null_page || c->pi_no_minmax || c->stat == ST_NONE) return PT_OK;
  if (c->pg_bytes && !c->pg_slow) {
    const uint8_t *pl0 = (const uint8_t *)c->plain.data;
    pg->min_off = (int64_t)c->pi_bounds.len;
    pg->min_len = c->pg_bmin_len;
    pg->max_off = pg->min_off + c->pg_bmin_len;
    pg->max_len = c->pg_bmax_len;
    if (pt__buf_append(&c->pi_bounds, pl0 + c->pg_bmin_off, (size_t)c->pg_bmin_len) != PT_OK ||
        pt__buf_append(&c->pi_bounds, pl0 + c->pg_bmax_off, (size_t)c->pg_bmax_len) != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    return PT_OK;
  }
  int trc = c->pg_slow ? PT_ENOTSUP : fast_page_bounds(c, pg, err);
  if (trc == PT_ENOTSUP) trc = typed_page_bounds(c, dict, pg, err);
  if (trc != PT_ENOTSUP) return trc;
  const uint8_t *lo = NULL, *hi = NULL;
  int64_t ll = 0, hl = 0;
  static const uint8_t bools[2] = {0, 1};
  const uint8_t *pl = (const uint8_t *)c->plain.data;
  uint32_t prev = UINT32_MAX;
  if (dict) {
    if (c->pi_seen_cap < c->dict_n) {
      int64_t cap = c->pi_seen_cap * 2 > c->dict_n ? c->pi_seen_cap * 2 : c->dict_n;
      uint32_t *s = pt__realloc(c->pi_seen, (size_t)cap * sizeof *s);
      if (s == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      memset(s + c->pi_seen_cap, 0, (size_t)(cap - c->pi_seen_cap) * sizeof *s);
      c->pi_seen = s;
      c->pi_seen_cap = cap;
    }
    if (++c->pi_epoch == 0) { /* wrapped: start the marks again */
      memset(c->pi_seen, 0, (size_t)c->pi_seen_cap * sizeof *c->pi_seen);
      c->pi_epoch = 1;
    }
  }
  for (int64_t i = 0; i < c->page_values; i++) {
    const uint8_t *v;
    int64_t len = c->width;
    if (c->phys == PT__PQ_BOOLEAN) {
      v = &bools[c->idx[i] != 0];
      len = 1;
    } else if (dict) {
      uint32_t ix = c->idx[i];
      if (ix == prev || c->pi_seen[ix] == c->pi_epoch) continue; /* compared on this page */
      prev = ix;
      c->pi_seen[ix] = c->pi_epoch;
      v = dict_entry(c, ix);
      len = dict_entry_len(c, ix);
    } else if (c->phys == PT__PQ_BYTE_ARRAY) {
      len = pt__load_u32(pl);
      v = pl + 4;
      pl += 4 + len;
    } else {
      v = pl + i * c->width;
    }
    if (is_nan(c->stat, v)) continue;
    if (len > MAX_STAT_BYTES) {
      c->pi_no_minmax = true;
      return PT_OK;
    }
    if (lo == NULL) {
      lo = hi = v;
      ll = hl = len;
    } else if (c->stat == ST_BYTES) { /* strings: the common case, inline */
      if (compare_bytes(v, len, lo, ll) < 0) { lo = v; ll = len; }
      else if (compare_bytes(v, len, hi, hl) > 0) { hi = v; hl = len; }
    } else {
      if (compare(c->stat, v, len, lo, ll) < 0) { lo = v; ll = len; }
      if (compare(c->stat, v, len, hi, hl) > 0) { hi = v; hl = len; }
    }
  }
  if (lo == NULL) { /* NaN only: no order to give */
    c->pi_no_minmax = true;
    return PT_OK;
  }
  pg->min_off = (int64_t)c->pi_bounds.len;
  pg->min_len = (int32_t)ll;
  if (pt__buf_append(&c->pi_bounds, lo, (size_t)ll) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  signed_zero(c->stat, (uint8_t *)c->pi_bounds.data + pg->min_off, true);
  pg->max_off = (int64_t)c->pi_bounds.len;
  pg->max_len = (int32_t)hl;
  if (pt__buf_append(&c->pi_bounds, hi, (size_t)hl) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  signed_zero(c->stat, (uint8_t *)c->pi_bounds.data + pg->max_off, false);
  return PT_OK;
}

/* The chunk's OffsetIndex (and ColumnIndex when every page has bounds)
 * into the writer's buffers; cc records where (made absolute at close). */
static int page_index_write(pt_parquet_writer *w, wcol *c, pt__pq_column_chunk *cc,
                            int64_t data_start, pt_error *err) {
  int64_t n = c->pi_n;
  pt__pq_page_location *loc = pt__malloc((size_t)(n ? n : 1) * sizeof *loc);
  bool *null_pages = pt__malloc((size_t)(n ? n : 1) * sizeof *null_pages);
  pt__pq_bytes *mins = pt__malloc((size_t)(n ? n : 1) * sizeof *mins);
  pt__pq_bytes *maxs = pt__malloc((size_t)(n ? n : 1) * sizeof *maxs);
  int64_t *nulls = pt__malloc((size_t)(n ? n : 1) * sizeof *nulls);
  int rc = PT_OK;
  if (!loc || !null_pages || !mins || !maxs || !nulls) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto done;
  }
  bool asc = true, desc = true;
  int64_t last = -1;
  for (int64_t i = 0; i < n; i++) {
    const wpage *pg = &c->pi[i];
    loc[i] = (pt__pq_page_location){data_start + pg->offset, pg->size, pg->first_row};
    null_pages[i] = pg->null_page;
    nulls[i] = pg->nulls;
    const uint8_t *b = (const uint8_t *)c->pi_bounds.data;
    mins[i] = (pt__pq_bytes){pg->null_page ? (const uint8_t *)"" : b + pg->min_off, pg->min_len};
    maxs[i] = (pt__pq_bytes){pg->null_page ? (const uint8_t *)"" : b + pg->max_off, pg->max_len};
    if (pg->null_page) continue;
    if (last >= 0) {
      int a = compare(c->stat, mins[last].data, mins[last].len, mins[i].data, mins[i].len);
      int z = compare(c->stat, maxs[last].data, maxs[last].len, maxs[i].data, maxs[i].len);
      if (a > 0 || z > 0) asc = false;
      if (a < 0 || z < 0) desc = false;
    }
    last = i;
  }
  pt__pq_offset_index oi = {loc, n};
  cc->has_offset_index = true;
  cc->offset_index_offset = (int64_t)w->offset_indexes.len;
  if (pt__pq_encode_offset_index(&oi, &w->offset_indexes) != PT_OK) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto done;
  }
  cc->offset_index_length = (int32_t)((int64_t)w->offset_indexes.len - cc->offset_index_offset);
  if (!c->pi_no_minmax && c->stat != ST_NONE) {
    pt__pq_column_index ci = {null_pages, mins, maxs, n, n, n,
                              asc ? PT__BOUNDARY_ASCENDING : desc ? PT__BOUNDARY_DESCENDING
                                                                   : PT__BOUNDARY_UNORDERED,
                              nulls, n};
    cc->has_column_index = true;
    cc->column_index_offset = (int64_t)w->column_indexes.len;
    if (pt__pq_encode_column_index(&ci, &w->column_indexes) != PT_OK) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      goto done;
    }
    cc->column_index_length = (int32_t)((int64_t)w->column_indexes.len - cc->column_index_offset);
  }
done:
  pt__free(loc);
  pt__free(null_pages);
  pt__free(mins);
  pt__free(maxs);
  pt__free(nulls);
  return rc;
}

/* Writes the start of column c's chunk: its dictionary page when its pages
 * use one (an empty dictionary too, when they are nulls only), then the
 * data pages made so far; from here on the chunk is streaming. */
static int chunk_open(pt_parquet_writer *w, wbufs *b, wcol *c, pt_error *err) {
  c->chunk_start = w->pos;
  c->dict_uncompressed = 0;
  if (c->use_dict && c->enc_dict) {
    pt_buf body = {0};
    int64_t clen = 0;
    pt__pq_page_header h = {.type = PT__PAGE_DICTIONARY, .has_dict = true,
                            .num_values = (int32_t)c->dict_n, .encoding = PT__ENC_PLAIN,
                            .uncompressed_size = (int32_t)c->dict.len};
    int rc = compress_into(w, b, (uint8_t *)c->dict.data, (int64_t)c->dict.len, &body, &clen, err);
    h.compressed_size = (int32_t)clen;
    pt_buf *hb = &b->scratch;
    hb->len = 0;
    if (rc == PT_OK && pt__pq_encode_page_header(&h, hb) != PT_OK)
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    if (rc == PT_OK) rc = out_write(w, hb->data, (int64_t)hb->len, err);
    if (rc == PT_OK) rc = out_write(w, body.data, (int64_t)body.len, err);
    pt_buf_free(&body);
    if (rc != PT_OK) return rc;
    c->dict_uncompressed = (int64_t)hb->len + h.uncompressed_size;
  }
  c->data_start = w->pos;
  PT_RETURN_NOT_OK(out_write(w, c->pages.data, (int64_t)c->pages.len, err));
  c->pages_base = (int64_t)c->pages.len;
  c->pages.len = 0;
  c->streaming = true;
  return PT_OK;
}

/* Rows appended at a time by append_fast: pages may pass page_bytes by up
 * to this many values. */
#define FAST_ROWS 1024

static bool fast_type(const wcol *c, const pt__view *v);
static int put_fixed(pt_parquet_writer *w, wcol *c, const uint8_t *phys, int64_t k, pt_error *err);

static int flush_page(pt_parquet_writer *w, wbufs *b, wcol *c, pt_error *err) {
  if (c->page_rows == 0) return PT_OK;
  if (c->n_stage > 0) {
    int64_t k = c->n_stage;
    c->n_stage = 0;
    PT_RETURN_NOT_OK(put_fixed(w, c, c->stage, k, err));
  }
  bool dict = c->use_dict && !c->fallback;
  int64_t nulls = c->page_rows - c->page_values;
  /* Values, uncompressed. */
  pt_buf *vals = &b->scratch;
  vals->len = 0;
  int rc = PT_OK;
  bool give_up_dict = false;
  if (dict) {
    int bw = pt__bit_width(c->dict_n > 0 ? (uint64_t)(c->dict_n - 1) : 0);
    rc = pt__buf_putc(vals, (char)bw);
    if (rc == PT_OK) rc = pt__rle_put(vals, c->idx, c->page_values, bw);
    /* parquet-mr's rule: after the chunk's first page, a dictionary that
     * with its indices takes no less room than the PLAIN values is given
     * up (values nearly all distinct); hashing each value costs time too. */
    if (rc == PT_OK && !c->enc_dict && c->page_values > 0) {
      int64_t raw = c->page_values * (int64_t)c->width;
      if (c->phys == PT__PQ_BYTE_ARRAY) {
        raw = 4 * c->page_values;
        for (int64_t i = 0; i < c->page_values; i++) raw += dict_entry_len(c, c->idx[i]);
      }
      give_up_dict = (int64_t)vals->len + (int64_t)c->dict.len >= raw;
    }
  } else if (c->phys == PT__PQ_BOOLEAN) {
    int64_t nb = (c->page_values + 7) / 8;
    rc = pt__buf_reserve(vals, (size_t)nb);
    if (rc == PT_OK) {
      memset(vals->data, 0, (size_t)nb);
      for (int64_t i = 0; i < c->page_values; i++)
        if (c->idx[i]) vals->data[i >> 3] |= (char)(1 << (i & 7));
      vals->len = (size_t)nb;
    }
  } else {
    vals = &c->plain; /* as they are: no copy */
  }
  /* Repetition, then definition levels, RLE (v1: each after its length). */
  pt_buf *levels = &b->scratch2;
  levels->len = 0;
  int64_t rep_len = 0, rows = c->page_rows;
  for (int pass = 0; pass < 2 && rc == PT_OK; pass++) {
    int16_t max = pass == 0 ? c->max_rep : c->max_def;
    if (max == 0) continue;
    size_t at = levels->len;
    if (w->opts.data_page_version == 1) rc = pt__buf_append(levels, "\0\0\0\0", 4);
    if (rc == PT_OK)
      rc = pt__rle_put(levels, pass == 0 ? c->reps : c->defs, c->page_rows,
                       pt__bit_width((uint64_t)max));
    if (rc == PT_OK && w->opts.data_page_version == 1)
      pt__store_u32(levels->data + at, (uint32_t)(levels->len - at - 4));
    if (pass == 0) rep_len = (int64_t)levels->len;
  }
  if (c->max_rep > 0) {
    rows = 0;
    for (int64_t i = 0; i < c->page_rows; i++) rows += c->reps[i] == 0;
  }
  if (rc != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
  pt__pq_page_header h = {0};
  h.encoding = dict ? PT__ENC_RLE_DICTIONARY : PT__ENC_PLAIN;
  h.num_values = (int32_t)c->page_rows;
  pt_buf *body = &b->body;
  body->len = 0;
  int64_t clen = 0;
  /* The page after its header: levels then values, as they are when
   * uncompressed (no copy), else the body compressed here. */
  const pt_buf *part1 = levels, *part2 = vals;
  bool raw = w->opts.codec == PT_PARQUET_UNCOMPRESSED;
  if (w->opts.data_page_version == 1) {
    h.type = PT__PAGE_DATA;
    h.has_data = true;
    h.def_encoding = PT__ENC_RLE;
    h.rep_encoding = PT__ENC_RLE;
    h.uncompressed_size = (int32_t)(levels->len + vals->len);
    h.compressed_size = h.uncompressed_size;
    if (!raw) {
      /* Levels and values are compressed together. */
      if (levels->len > 0 && pt__buf_append(levels, vals->data, vals->len) != PT_OK)
        return pt__errorf(err, PT_ENOMEM, "out of memory");
      const pt_buf *all = levels->len > 0 ? levels : vals;
      rc = compress_into(w, b, (uint8_t *)all->data, (int64_t)all->len, body, &clen, err);
      h.compressed_size = (int32_t)clen;
      part1 = body;
      part2 = NULL;
    }
  } else if (raw) {
    h.type = PT__PAGE_DATA_V2;
    h.has_data_v2 = true;
    h.num_nulls = (int32_t)nulls;
    h.num_rows = (int32_t)rows;
    h.rep_length = (int32_t)rep_len;
    h.def_length = (int32_t)((int64_t)levels->len - rep_len);
    h.is_compressed = false;
    h.uncompressed_size = h.compressed_size = (int32_t)(levels->len + vals->len);
  } else {
    h.type = PT__PAGE_DATA_V2;
    h.has_data_v2 = true;
    h.num_nulls = (int32_t)nulls;
    h.num_rows = (int32_t)rows;
    h.rep_length = (int32_t)rep_len;
    h.def_length = (int32_t)((int64_t)levels->len - rep_len);
    h.is_compressed = w->opts.codec != PT_PARQUET_UNCOMPRESSED;
    rc = pt__buf_append(body, levels->data, levels->len) == PT_OK ? PT_OK
         : pt__errorf(err, PT_ENOMEM, "out of memory");
    if (rc == PT_OK)
      rc = compress_into(w, b, (uint8_t *)vals->data, (int64_t)vals->len, body, &clen, err);
    h.uncompressed_size = (int32_t)(levels->len + vals->len);
    h.compressed_size = (int32_t)(levels->len + clen);
    part1 = body;
    part2 = NULL;
  }
  if (rc == PT_OK && c->pg_bytes && w->opts.write_statistics) {
    const uint8_t *pl0 = (const uint8_t *)c->plain.data;
    if (update_stats(c, pl0 + c->pg_bmin_off, c->pg_bmin_len) != PT_OK ||
        update_stats(c, pl0 + c->pg_bmax_off, c->pg_bmax_len) != PT_OK)
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  if (rc == PT_OK) {
    h.has_stats = w->opts.write_statistics != 0;
    h.stats.has_null_count = true;
    h.stats.null_count = nulls;
    int64_t at = c->pages_base + (int64_t)c->pages.len, size = 0;
    if (c->streaming) {
      /* Straight to the file: header, then the parts where they are. */
      pt_buf *hb = &b->header;
      hb->len = 0;
      if (pt__pq_encode_page_header(&h, hb) != PT_OK) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      if (rc == PT_OK) rc = out_write(w, hb->data, (int64_t)hb->len, err);
      if (rc == PT_OK) rc = out_write(w, part1->data, (int64_t)part1->len, err);
      if (rc == PT_OK && part2) rc = out_write(w, part2->data, (int64_t)part2->len, err);
      size = (int64_t)(hb->len + part1->len + (part2 ? part2->len : 0));
      c->pages_base += size;
    } else {
      size_t before = c->pages.len;
      if (pt__pq_encode_page_header(&h, &c->pages) != PT_OK ||
          pt__buf_append(&c->pages, part1->data, part1->len) != PT_OK ||
          (part2 && pt__buf_append(&c->pages, part2->data, part2->len) != PT_OK))
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      size = (int64_t)(c->pages.len - before);
    }
    c->chunk_uncompressed += size - h.compressed_size + h.uncompressed_size;
    if (rc == PT_OK && w->opts.write_statistics)
      rc = page_index_add(c, dict, at, size, rows, err);
  }
  if (rc != PT_OK) return rc;
  if (dict) c->enc_dict = true;
  else c->enc_plain = true;
  if (give_up_dict) c->fallback = true;
  c->n_data_pages++;
  c->chunk_values += c->page_rows;
  c->page_rows = c->page_values = 0;
  c->plain.len = 0;
  c->pg_has = c->pg_slow = c->pg_bytes = false;
  /* A file of one column needs no chunk held back for the others: once no
   * more dictionary entries can come, the chunk starts in the file and
   * pages go there as they are made (less memory, and no copy). */
  if (w->n_cols == 1 && (!c->use_dict || c->fallback) && !c->streaming)
    return chunk_open(w, b, c, err);
  return PT_OK;
}

static int append_phys(pt_parquet_writer *w, wcol *c, const pt__view *v, int64_t i, pt_error *err);

/* The physical value of row r (offset included) of v, a column that
 * fast_type takes, as PLAIN bytes at out. */
static inline void load_fixed(const wcol *c, const pt__view *v, int64_t r, uint8_t *out) {
  const uint8_t *b = v->values;
  switch (c->type.id) {
    case PT_TYPE_INT8: pt__store_i32(out, ((const int8_t *)b)[r]); break;
    case PT_TYPE_INT16: pt__store_i32(out, (int16_t)pt__load_u16(b + r * 2)); break;
    case PT_TYPE_UINT8: pt__store_u32(out, b[r]); break;
    case PT_TYPE_UINT16: pt__store_u32(out, pt__load_u16(b + r * 2)); break;
    case PT_TYPE_INT32: case PT_TYPE_DATE32: case PT_TYPE_UINT32: case PT_TYPE_FLOAT:
      memcpy(out, b + r * 4, 4);
      break;
    case PT_TYPE_TIMESTAMP:
      pt__store_i64(out, (int64_t)((uint64_t)pt__load_i64(b + r * 8) * (uint64_t)c->ts_mul));
      break;
    default: memcpy(out, b + r * 8, 8); break; /* int64, uint64, double, duration */
  }
}

/* Appends row i of view v (a column of the batch) to column c. */
static int append_value(pt_parquet_writer *w, wcol *c, const pt__view *v, int64_t i, pt_error *err) {
  bool valid = c->type.id != PT_TYPE_NA && pt__view_is_valid(v, i);
  if (c->nullable && push_u32(&c->defs, &c->cap_defs, c->page_rows, valid) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  if (!valid && !c->nullable)
    return pt__errorf(err, PT_EINVAL, "column '%s' is not nullable but row %lld is null; mark the field nullable",
                      c->name, (long long)i);
  c->page_rows++;
  if (!valid) {
    c->nulls++;
    return PT_OK;
  }
  return append_phys(w, c, v, i, err);
}

/* Appends the value at row i of view v (valid) to the page of column c. */
static int append_phys(pt_parquet_writer *w, wcol *c, const pt__view *v, int64_t i, pt_error *err) {
  if (fast_type(c, v)) {
    /* Numbers of nested columns: gathered, then put a block at a time
     * with typed statistics (a value at a time costs several times more). */
    if (c->stage == NULL && (c->stage = pt__malloc(FAST_ROWS * 8)) == NULL)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    load_fixed(c, v, v->offset + i, c->stage + c->n_stage * c->width);
    if (++c->n_stage < FAST_ROWS) return PT_OK;
    c->n_stage = 0;
    return put_fixed(w, c, c->stage, FAST_ROWS, err);
  }
  const pt__view *vv = v;
  int64_t j = i;
  if (v->dictionary) {
    vv = v->dictionary;
    j = pt__view_dict_index(v, i);
  }
  uint8_t tmp[32];
  const uint8_t *p = tmp;
  int64_t len = c->width;
  switch (c->type.id) {
    case PT_TYPE_BOOL: tmp[0] = pt__view_get_bool(vv, j); len = 1; break;
    case PT_TYPE_INT8: case PT_TYPE_INT16: case PT_TYPE_INT32: case PT_TYPE_DATE32:
      pt__store_i32(tmp, (int32_t)pt__view_get_int(vv, j));
      break;
    case PT_TYPE_UINT8: case PT_TYPE_UINT16: case PT_TYPE_UINT32:
      pt__store_u32(tmp, (uint32_t)pt__view_get_uint(vv, j));
      break;
    case PT_TYPE_INT64: case PT_TYPE_DURATION:
      pt__store_i64(tmp, pt__view_get_int(vv, j));
      break;
    case PT_TYPE_TIMESTAMP: case PT_TYPE_TIME64:
      pt__store_i64(tmp, (int64_t)((uint64_t)pt__view_get_int(vv, j) * (uint64_t)c->ts_mul));
      break;
    case PT_TYPE_TIME32:
      pt__store_i32(tmp, (int32_t)((uint32_t)pt__view_get_int(vv, j) * (uint32_t)c->ts_mul));
      break;
    case PT_TYPE_UINT64: {
      uint64_t u = pt__view_get_uint(vv, j);
      memcpy(tmp, &u, 8);
      break;
    }
    case PT_TYPE_HALF_FLOAT: memcpy(tmp, vv->values + (vv->offset + j) * 2, 2); break;
    case PT_TYPE_FLOAT: memcpy(tmp, vv->values + (vv->offset + j) * 4, 4); break;
    case PT_TYPE_DOUBLE: memcpy(tmp, vv->values + (vv->offset + j) * 8, 8); break;
    case PT_TYPE_DECIMAL32: case PT_TYPE_DECIMAL64: case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256: {
      int64_t l16;
      const uint8_t *le = pt__view_get_bytes(vv, j, &l16);
      /* Big-endian, the low c->width bytes of the two's complement. */
      for (int k = 0; k < c->width; k++) tmp[k] = le[c->width - 1 - k];
      break;
    }
    default: p = pt__view_get_bytes(vv, j, &len); break;
  }
  if (c->phys == PT__PQ_BYTE_ARRAY && len > INT32_MAX)
    return pt__errorf(err, PT_ERANGE, "column '%s': a value of %lld bytes is too large for Parquet",
                      c->name, (long long)len);
  /* Dictionary-encoded values get their statistics from the dictionary
   * when the chunk is written (each distinct value once). */
  bool dict = c->use_dict && !c->fallback && c->phys != PT__PQ_BOOLEAN;
  c->pg_slow = true;
  if (w->opts.write_statistics && !dict && update_stats(c, p, len) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  int rc = PT_OK;
  if (c->phys == PT__PQ_BOOLEAN) {
    rc = push_u32(&c->idx, &c->cap_idx, c->page_values, p[0]);
  } else if (c->use_dict && !c->fallback) {
    int64_t k = dict_index(c, p, len);
    rc = k < 0 ? PT_ENOMEM : push_u32(&c->idx, &c->cap_idx, c->page_values, (uint32_t)k);
  } else {
    if (c->phys == PT__PQ_BYTE_ARRAY) {
      uint8_t lb[4];
      pt__store_u32(lb, (uint32_t)len);
      rc = pt__buf_append(&c->plain, lb, 4);
    }
    if (rc == PT_OK) rc = pt__buf_append(&c->plain, p, (size_t)len);
  }
  if (rc != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
  c->page_values++;
  return PT_OK;
}

/* Whether column c of view v takes the fast path: fixed-width numbers that
 * are not dictionary-encoded in Arrow. */
static bool fast_type(const wcol *c, const pt__view *v) {
  if (v->dictionary != NULL) return false;
  switch (c->type.id) {
    case PT_TYPE_INT8: case PT_TYPE_INT16: case PT_TYPE_INT32: case PT_TYPE_UINT8:
    case PT_TYPE_UINT16: case PT_TYPE_UINT32: case PT_TYPE_INT64: case PT_TYPE_UINT64:
    case PT_TYPE_FLOAT: case PT_TYPE_DOUBLE: case PT_TYPE_DATE32: case PT_TYPE_TIMESTAMP:
    case PT_TYPE_DURATION:
      return true;
    default: return false;
  }
}

/* Physical values of rows [start, start + n) of v (n <= FAST_ROWS) into
 * phys; definition levels onto the page. Returns the values written. */
#define GATHER(IN, OUT, EXPR)                                                  \
  do {                                                                         \
    const IN *src = (const IN *)v->values + off;                               \
    OUT *dst = (OUT *)phys;                                                    \
    if (v->validity == NULL) {                                                 \
      for (int64_t i = 0; i < n; i++) { IN x = src[i]; dst[i] = (OUT)(EXPR); } \
      k = n;                                                                   \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) {                                        \
        if (!pt__bit_get(v->validity, off + i)) continue;                      \
        IN x = src[i];                                                         \
        dst[k++] = (OUT)(EXPR);                                                \
      }                                                                        \
    }                                                                          \
  } while (0)

/* k physical values of a fixed-width column (PLAIN bytes at phys) onto its
 * page: typed statistics of the block into the chunk's and the page's
 * (for the page index), then dictionary indices or PLAIN values. */
static int put_fixed(pt_parquet_writer *w, wcol *c, const uint8_t *phys, int64_t k, pt_error *err) {
  int width = c->width;
  /* Statistics, typed: of the block, then into the chunk's and the
   * page's (for the page index). */
  if (w->opts.write_statistics && k > 0) {
    switch (c->stat) {
      case ST_I32: case ST_I64: {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        if (c->stat == ST_I32) {
          const int32_t *x = (const int32_t *)phys;
          for (int64_t i = 0; i < k; i++) { lo = x[i] < lo ? x[i] : lo; hi = x[i] > hi ? x[i] : hi; }
        } else {
          const int64_t *x = (const int64_t *)phys;
          for (int64_t i = 0; i < k; i++) { lo = x[i] < lo ? x[i] : lo; hi = x[i] > hi ? x[i] : hi; }
        }
        c->imin = c->fast_has && c->imin < lo ? c->imin : lo;
        c->imax = c->fast_has && c->imax > hi ? c->imax : hi;
        c->fast_has = true;
        c->pg_imin = c->pg_has && c->pg_imin < lo ? c->pg_imin : lo;
        c->pg_imax = c->pg_has && c->pg_imax > hi ? c->pg_imax : hi;
        c->pg_has = true;
        break;
      }
      case ST_U32: case ST_U64: {
        uint64_t lo = UINT64_MAX, hi = 0;
        if (c->stat == ST_U32) {
          const uint32_t *x = (const uint32_t *)phys;
          for (int64_t i = 0; i < k; i++) { lo = x[i] < lo ? x[i] : lo; hi = x[i] > hi ? x[i] : hi; }
        } else {
          const uint64_t *x = (const uint64_t *)phys;
          for (int64_t i = 0; i < k; i++) { lo = x[i] < lo ? x[i] : lo; hi = x[i] > hi ? x[i] : hi; }
        }
        c->umin = c->fast_has && c->umin < lo ? c->umin : lo;
        c->umax = c->fast_has && c->umax > hi ? c->umax : hi;
        c->fast_has = true;
        c->pg_umin = c->pg_has && c->pg_umin < lo ? c->pg_umin : lo;
        c->pg_umax = c->pg_has && c->pg_umax > hi ? c->pg_umax : hi;
        c->pg_has = true;
        break;
      }
      default: { /* floats: NaN left out */
        double lo = INFINITY, hi = -INFINITY;
        bool any = false;
        for (int64_t i = 0; i < k; i++) {
          double x = c->stat == ST_F32 ? (double)((const float *)phys)[i] : ((const double *)phys)[i];
          if (isnan(x)) continue;
          any = true;
          /* -0.0 below +0.0, so that min and max of zeros come out right. */
          if (x < lo || (x == 0 && lo == 0 && signbit(x))) lo = x;
          if (x > hi || (x == 0 && hi == 0 && !signbit(x))) hi = x;
        }
        if (!any) break;
        if (!c->fast_has || lo < c->dmin || (lo == 0 && c->dmin == 0 && signbit(lo))) c->dmin = lo;
        if (!c->fast_has || hi > c->dmax || (hi == 0 && c->dmax == 0 && !signbit(hi))) c->dmax = hi;
        c->fast_has = true;
        if (!c->pg_has || lo < c->pg_dmin) c->pg_dmin = lo;
        if (!c->pg_has || hi > c->pg_dmax) c->pg_dmax = hi;
        c->pg_has = true;
        break;
      }
    }
  }
  /* Values. */
  if (c->use_dict && !c->fallback) {
    if (c->page_values + k > c->cap_idx) {
      int64_t cap = c->cap_idx ? c->cap_idx : 1024;
      while (cap < c->page_values + k) cap *= 2;
      uint32_t *d = pt__realloc(c->idx, (size_t)cap * sizeof *d);
      if (d == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      c->idx = d;
      c->cap_idx = cap;
    }
    uint32_t *idx = c->idx + c->page_values;
    int64_t e = 0;
    if (c->fixed_dict && width == 8) {
      for (int64_t i = 0; i < k && e >= 0; i++) idx[i] = (uint32_t)(e = dict_index_fixed(c, pt__load_u64(phys + i * 8)));
    } else if (c->fixed_dict && width == 4) {
      for (int64_t i = 0; i < k && e >= 0; i++) idx[i] = (uint32_t)(e = dict_index_fixed(c, pt__load_u32(phys + i * 4)));
    } else {
      for (int64_t i = 0; i < k && e >= 0; i++) idx[i] = (uint32_t)(e = dict_index(c, phys + i * width, width));
    }
    if (e < 0) return pt__errorf(err, PT_ENOMEM, "out of memory");
  } else if (pt__buf_append(&c->plain, phys, (size_t)(k * width)) != PT_OK) {
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  c->page_values += k;
  return PT_OK;
}

static int append_fast(pt_parquet_writer *w, wcol *c, const pt__view *v, int64_t start, int64_t n,
                       pt_error *err) {
  _Alignas(8) uint8_t phys[FAST_ROWS * 8];
  int64_t off = v->offset + start;
  /* Definition levels first (and the not-null check). */
  int64_t valid = n;
  if (v->validity != NULL) valid = pt__bits_count(v->validity, off, n);
  if (valid < n && !c->nullable) {
    for (int64_t i = 0; i < n; i++)
      if (!pt__bit_get(v->validity, off + i))
        return pt__errorf(err, PT_EINVAL,
                          "column '%s' is not nullable but row %lld is null; mark the field nullable",
                          c->name, (long long)(start + i));
  }
  if (c->nullable) {
    if (c->page_rows + n > c->cap_defs) {
      int64_t cap = c->cap_defs ? c->cap_defs : 1024;
      while (cap < c->page_rows + n) cap *= 2;
      uint32_t *d = pt__realloc(c->defs, (size_t)cap * sizeof *d);
      if (d == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      c->defs = d;
      c->cap_defs = cap;
    }
    uint32_t *d = c->defs + c->page_rows;
    if (v->validity == NULL) for (int64_t i = 0; i < n; i++) d[i] = 1;
    else for (int64_t i = 0; i < n; i++) d[i] = (uint32_t)pt__bit_get(v->validity, off + i);
  }
  c->page_rows += n;
  c->nulls += n - valid;
  int64_t k = 0;
  switch (c->type.id) {
    case PT_TYPE_INT8: GATHER(int8_t, int32_t, x); break;
    case PT_TYPE_INT16: GATHER(int16_t, int32_t, x); break;
    case PT_TYPE_UINT8: GATHER(uint8_t, uint32_t, x); break;
    case PT_TYPE_UINT16: GATHER(uint16_t, uint32_t, x); break;
    case PT_TYPE_INT32: case PT_TYPE_DATE32: GATHER(int32_t, int32_t, x); break;
    case PT_TYPE_UINT32: GATHER(uint32_t, uint32_t, x); break;
    case PT_TYPE_FLOAT: GATHER(float, float, x); break;
    case PT_TYPE_DOUBLE: GATHER(double, double, x); break;
    case PT_TYPE_TIMESTAMP:
      GATHER(int64_t, int64_t, (int64_t)((uint64_t)x * (uint64_t)c->ts_mul));
      break;
    default: GATHER(int64_t, int64_t, x); break; /* int64, uint64, duration */
  }
  return put_fixed(w, c, phys, k, err);
}

/* Strings and binary of a flat column, rows [start, start + n) of v, read
 * straight from the offsets: the per-value dispatch of append_phys shows
 * in profiles of string columns. Stops early once the page is full or the
 * dictionary too big; *done is the rows taken. */
static bool fast_bytes(const wcol *c, const pt__view *v) {
  return v->dictionary == NULL && c->phys == PT__PQ_BYTE_ARRAY &&
         (v->type.id == PT_TYPE_STRING || v->type.id == PT_TYPE_BINARY ||
          v->type.id == PT_TYPE_LARGE_STRING || v->type.id == PT_TYPE_LARGE_BINARY);
}

/* Copies a value of len bytes: 8 to 32 bytes (ids, codes, names) as
 * overlapping words, without a call. */
static inline void copy_value(uint8_t *dst, const uint8_t *src, int64_t len) {
  if (len >= 8 && len <= 16) {
    uint64_t a = pt__load_u64(src), b = pt__load_u64(src + len - 8);
    memcpy(dst, &a, 8);
    memcpy(dst + len - 8, &b, 8);
  } else if (len > 16 && len <= 32) {
    uint64_t a = pt__load_u64(src), b = pt__load_u64(src + 8);
    uint64_t y = pt__load_u64(src + len - 16), z = pt__load_u64(src + len - 8);
    memcpy(dst, &a, 8);
    memcpy(dst + 8, &b, 8);
    memcpy(dst + len - 16, &y, 8);
    memcpy(dst + len - 8, &z, 8);
  } else if (len > 0) {
    memcpy(dst, src, (size_t)len);
  }
}

static int append_fast_bytes(pt_parquet_writer *w, wcol *c, const pt__view *v, int64_t start,
                             int64_t n, int64_t *done, pt_error *err) {
  bool large = v->type.id == PT_TYPE_LARGE_STRING || v->type.id == PT_TYPE_LARGE_BINARY;
  const int32_t *o32 = (const int32_t *)v->values;
  const int64_t *o64 = (const int64_t *)v->values;
  bool dict = c->use_dict && !c->fallback;
  bool stats = w->opts.write_statistics != 0;
  int64_t i = 0, off = v->offset + start;
  /* Room for the block's levels, indices and (when it is not huge) its
   * PLAIN values, so that the loop below stores without checks. */
  if (c->nullable && c->page_rows + n > c->cap_defs) {
    int64_t cap = c->cap_defs ? c->cap_defs : 1024;
    while (cap < c->page_rows + n) cap *= 2;
    uint32_t *d = pt__realloc(c->defs, (size_t)cap * sizeof *d);
    if (d == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    c->defs = d;
    c->cap_defs = cap;
  }
  int64_t bytes = (large ? o64[off + n] - o64[off] : (int64_t)o32[off + n] - o32[off]) + 4 * n;
  bool reserved = !dict && bytes <= 8 * (int64_t)MAX_STAT_BYTES * FAST_ROWS;
  if (reserved && pt__buf_reserve(&c->plain, (size_t)bytes) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  if (dict) c->pg_slow = true;
  for (; i < n; i++) {
    int64_t r = off + i;
    bool valid = v->validity == NULL || pt__bit_get(v->validity, r);
    if (c->nullable) c->defs[c->page_rows] = valid;
    if (!valid && !c->nullable)
      return pt__errorf(err, PT_EINVAL,
                        "column '%s' is not nullable but row %lld is null; mark the field nullable",
                        c->name, (long long)(start + i));
    c->page_rows++;
    if (!valid) {
      c->nulls++;
      continue;
    }
    int64_t a = large ? o64[r] : o32[r], b = large ? o64[r + 1] : o32[r + 1];
    const uint8_t *p = v->data + a;
    int64_t len = b - a;
    if (len > INT32_MAX)
      return pt__errorf(err, PT_ERANGE, "column '%s': a value of %lld bytes is too large for Parquet",
                        c->name, (long long)len);
    if (dict) {
      int64_t k = dict_index(c, p, len);
      if (k < 0 || push_u32(&c->idx, &c->cap_idx, c->page_values, (uint32_t)k) != PT_OK)
        return pt__errorf(err, PT_ENOMEM, "out of memory");
      c->page_values++;
      if ((int64_t)c->dict.len > w->opts.dictionary_page_bytes) {
        i++;
        break;
      }
      continue;
    }
    if (!reserved && pt__buf_reserve(&c->plain, (size_t)len + 4) != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    uint8_t *base = (uint8_t *)c->plain.data, *at = base + c->plain.len;
    pt__store_u32(at, (uint32_t)len);
    copy_value(at + 4, p, len);
    c->plain.len += (size_t)len + 4;
    c->page_values++;
    if (stats) {
      /* The page's least and greatest values, compared where they were
       * copied; the page index and the chunk's statistics take them when
       * the page closes. */
      int64_t vo = at + 4 - base;
      if (len > MAX_STAT_BYTES) {
        c->stats_dropped = true;
        c->pi_no_minmax = true;
      } else if (!c->pg_bytes) {
        c->pg_bytes = true;
        c->pg_bmin_off = c->pg_bmax_off = vo;
        c->pg_bmin_len = c->pg_bmax_len = (int32_t)len;
      } else if (compare_bytes(at + 4, len, base + c->pg_bmin_off, c->pg_bmin_len) < 0) {
        c->pg_bmin_off = vo;
        c->pg_bmin_len = (int32_t)len;
      } else if (compare_bytes(at + 4, len, base + c->pg_bmax_off, c->pg_bmax_len) > 0) {
        c->pg_bmax_off = vo;
        c->pg_bmax_len = (int32_t)len;
      }
    }
    if ((int64_t)c->plain.len >= w->opts.page_bytes) {
      i++;
      break;
    }
  }
  *done = i;
  return PT_OK;
}

/* The typed statistics of the fast path as min/max bytes (PLAIN). */
static int fast_stats_bytes(wcol *c) {
  if (!c->fast_has) return PT_OK;
  uint8_t lo[8], hi[8];
  switch (c->stat) {
    case ST_I32: pt__store_i32(lo, (int32_t)c->imin); pt__store_i32(hi, (int32_t)c->imax); break;
    case ST_I64: pt__store_i64(lo, c->imin); pt__store_i64(hi, c->imax); break;
    case ST_U32: pt__store_u32(lo, (uint32_t)c->umin); pt__store_u32(hi, (uint32_t)c->umax); break;
    case ST_U64: memcpy(lo, &c->umin, 8); memcpy(hi, &c->umax, 8); break;
    case ST_F32: {
      float a = (float)c->dmin, b = (float)c->dmax;
      memcpy(lo, &a, 4);
      memcpy(hi, &b, 4);
      break;
    }
    default: memcpy(lo, &c->dmin, 8); memcpy(hi, &c->dmax, 8); break;
  }
  c->min.len = c->max.len = 0;
  PT_RETURN_NOT_OK(pt__buf_append(&c->min, lo, (size_t)c->width));
  PT_RETURN_NOT_OK(pt__buf_append(&c->max, hi, (size_t)c->width));
  c->has_minmax = true;
  return PT_OK;
}

static int64_t page_bytes(const wcol *c) {
  if (c->phys == PT__PQ_BOOLEAN) return c->page_values / 8;
  if (c->use_dict && !c->fallback) return c->page_values * 4 / 2; /* indices, roughly */
  return (int64_t)c->plain.len;
}

static int encode_unit(pt_parquet_writer *w, wbufs *b, const wunit *u, const pt__view *v,
                       int64_t done, int64_t n, pt_error *err);

/* Work shared by the threads of one parallel step: items [0, n) are taken
 * in turn (next); each thread keeps the first error it met, with the item
 * it came from, and the lowest such item's error is the step's, as one
 * thread going through the items in order would have reported it. Every
 * item touches its own columns only, so the pages (and the file) are the
 * same bytes whatever the number of threads. */
typedef struct wpar {
  pt_parquet_writer *w;
  int kind;              /* PAR_UNITS: encode_unit; PAR_FLUSH: flush_page of leaf item */
  const pt__view *v;
  int64_t done, n_rows;
  int64_t n;             /* items */
  atomic_int_fast64_t next;
  atomic_int failed;     /* set on the first error: the others stop taking items */
} wpar;

enum { PAR_UNITS, PAR_FLUSH };

typedef struct wpar_thread {
  wpar *par;
  wbufs *b;
  int rc;
  int64_t failed_item;
  pt_error err;
} wpar_thread;

static void *par_run(void *arg) {
  wpar_thread *t = arg;
  wpar *p = t->par;
  t->rc = PT_OK;
  t->failed_item = INT64_MAX;
  while (!atomic_load_explicit(&p->failed, memory_order_relaxed)) {
    int64_t i = atomic_fetch_add(&p->next, 1);
    if (i >= p->n) break;
    int rc = p->kind == PAR_UNITS
                 ? encode_unit(p->w, t->b, &p->w->units[i], p->v, p->done, p->n_rows, &t->err)
                 : flush_page(p->w, t->b, &p->w->cols[i], &t->err);
    if (rc != PT_OK) {
      t->rc = rc;
      t->failed_item = i;
      atomic_store(&p->failed, 1);
      break;
    }
  }
  return NULL;
}

/* Runs the step on the writer's threads (the calling one among them). */
static int par_step(wpar *p, pt_error *err) {
  pt_parquet_writer *w = p->w;
  int nt = w->n_threads < p->n ? w->n_threads : (int)p->n;
  wpar_thread ts[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  bool started[MAX_THREADS] = {false};
  atomic_init(&p->next, 0);
  atomic_init(&p->failed, 0);
  for (int k = 0; k < nt; k++) ts[k] = (wpar_thread){.par = p, .b = &w->bufs[k]};
  for (int k = 1; k < nt; k++) started[k] = pthread_create(&th[k], NULL, par_run, &ts[k]) == 0;
  par_run(&ts[0]);
  for (int k = 1; k < nt; k++)
    if (started[k]) pthread_join(th[k], NULL);
    else par_run(&ts[k]); /* no thread to be had: the work is done here */
  int best = -1;
  for (int k = 0; k < nt; k++)
    if (ts[k].rc != PT_OK && (best < 0 || ts[k].failed_item < ts[best].failed_item)) best = k;
  if (best < 0) return PT_OK;
  if (err) *err = ts[best].err;
  return ts[best].rc;
}

/* Writes the open row group's column chunks and records their metadata. */
static int flush_row_group(pt_parquet_writer *w, pt_error *err) {
  if (w->rg_rows == 0 && w->n_rgs > 0) return PT_OK;
  if (w->n_rgs >= w->cap_rgs) {
    int64_t cap = w->cap_rgs ? w->cap_rgs * 2 : 8;
    pt__pq_row_group *r = pt__realloc(w->rgs, (size_t)cap * sizeof *r);
    if (r == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    w->rgs = r;
    w->cap_rgs = cap;
  }
  pt__pq_row_group *g = &w->rgs[w->n_rgs];
  memset(g, 0, sizeof *g);
  g->num_rows = w->rg_rows;
  g->n_columns = w->n_cols;
  g->columns = pt__arena_alloc(&w->arena, (w->n_cols ? w->n_cols : 1) * (int64_t)sizeof *g->columns);
  if (g->columns == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  if (w->n_threads > 1 && w->n_cols > 1) {
    /* The last page of every chunk made on the threads; the chunks then
     * go to the file in order below. */
    int64_t entries = 0;
    for (int64_t k = 0; k < w->n_cols; k++) entries += w->cols[k].page_rows;
    if (entries >= PARALLEL_MIN_ENTRIES) {
      wpar p = {.w = w, .kind = PAR_FLUSH, .n = w->n_cols};
      PT_RETURN_NOT_OK(par_step(&p, err));
    }
  }
  for (int64_t k = 0; k < w->n_cols; k++) {
    wcol *c = &w->cols[k];
    PT_RETURN_NOT_OK(flush_page(w, &w->bufs[0], c, err));
    pt__pq_column_chunk *cc = &g->columns[k];
    pt__pq_column_meta *m = &cc->meta;
    cc->has_meta = true;
    m->type = c->phys;
    m->codec = w->opts.codec;
    m->num_values = c->chunk_values;
    bool has_dict = c->use_dict && c->enc_dict;
    /* The dictionary page and the pages not yet in the file. */
    if (!c->streaming) PT_RETURN_NOT_OK(chunk_open(w, &w->bufs[0], c, err));
    PT_RETURN_NOT_OK(out_write(w, c->pages.data, (int64_t)c->pages.len, err));
    int64_t start = c->chunk_start;
    int64_t uncompressed = c->chunk_uncompressed + c->dict_uncompressed;
    if (has_dict) {
      m->has_dictionary_page_offset = true;
      m->dictionary_page_offset = start;
    }
    m->data_page_offset = c->data_start;
    if (w->opts.write_statistics)
      PT_RETURN_NOT_OK(page_index_write(w, c, cc, m->data_page_offset, err));
    m->total_compressed_size = w->pos - start;
    m->total_uncompressed_size = uncompressed;
    g->total_byte_size += uncompressed;
    cc->file_offset = m->data_page_offset;
    /* Encodings used. */
    m->encodings = pt__arena_alloc(&w->arena, 3 * (int64_t)sizeof(int32_t));
    if (m->encodings == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    m->encodings[m->n_encodings++] = PT__ENC_RLE;
    if (c->enc_plain || has_dict) m->encodings[m->n_encodings++] = PT__ENC_PLAIN;
    if (c->enc_dict) m->encodings[m->n_encodings++] = PT__ENC_RLE_DICTIONARY;
    m->path = c->path;
    m->n_path = c->n_path;
    if (fast_stats_bytes(c) != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
    if (w->opts.write_statistics && !c->fast_has)
      for (int64_t e = 0; e < c->dict_n; e++)
        if (update_stats(c, dict_entry(c, e), dict_entry_len(c, e)) != PT_OK)
          return pt__errorf(err, PT_ENOMEM, "out of memory");
    if (w->opts.write_statistics) {
      m->has_stats = true;
      m->stats.has_null_count = true;
      m->stats.null_count = c->nulls;
      if (c->has_minmax && !c->stats_dropped) {
        uint8_t *mn = pt__arena_alloc(&w->arena, (int64_t)c->min.len + 1);
        uint8_t *mx = pt__arena_alloc(&w->arena, (int64_t)c->max.len + 1);
        if (mn == NULL || mx == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
        memcpy(mn, c->min.data, c->min.len);
        memcpy(mx, c->max.data, c->max.len);
        /* -0.0 and +0.0 compare equal: the spec wants min -0, max +0. */
        if (c->stat == ST_F64 || c->stat == ST_F32) {
          double a, b;
          if (c->stat == ST_F64) { memcpy(&a, mn, 8); memcpy(&b, mx, 8); }
          else { float x, y; memcpy(&x, mn, 4); memcpy(&y, mx, 4); a = x; b = y; }
          if (a == 0) { if (c->stat == ST_F64) { a = -0.0; memcpy(mn, &a, 8); } else { float z = -0.0f; memcpy(mn, &z, 4); } }
          if (b == 0) { if (c->stat == ST_F64) { b = 0.0; memcpy(mx, &b, 8); } else { float z = 0.0f; memcpy(mx, &z, 4); } }
        }
        m->stats.has_min_value = m->stats.has_max_value = true;
        m->stats.min_value = (pt__pq_bytes){mn, (int64_t)c->min.len};
        m->stats.max_value = (pt__pq_bytes){mx, (int64_t)c->max.len};
        if (c->stat != ST_U32 && c->stat != ST_U64 && c->stat != ST_BYTES) {
          /* The deprecated fields (signed order) too, for old readers. */
          m->stats.has_min = m->stats.has_max = true;
          m->stats.min = m->stats.min_value;
          m->stats.max = m->stats.max_value;
        }
      }
    }
    /* Reset the chunk for the next row group. */
    c->pages.len = 0;
    c->streaming = false;
    c->pages_base = c->dict_uncompressed = 0;
    c->chunk_values = c->chunk_uncompressed = c->n_data_pages = 0;
    c->enc_plain = c->enc_dict = false;
    c->fallback = false;
    c->dict.len = 0;
    c->dict_n = 0;
    if (c->table) memset(c->table, 0, (size_t)c->table_cap * sizeof *c->table);
    c->has_minmax = c->stats_dropped = c->fast_has = false;
    c->nulls = 0;
    c->pi_n = c->chunk_rows = 0;
    c->pi_bounds.len = 0;
    c->pi_no_minmax = false;
  }
  w->n_rgs++;
  w->total_rows += w->rg_rows;
  w->rg_rows = 0;
  return PT_OK;
}

/* One level entry (and its value when def is the leaf's max) for leaf c. */
static int push_levels(wcol *c, int16_t def, int16_t rep, pt_error *err) {
  if (c->max_def > 0 && push_u32(&c->defs, &c->cap_defs, c->page_rows, (uint32_t)def) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  if (c->max_rep > 0 && push_u32(&c->reps, &c->cap_reps, c->page_rows, (uint32_t)rep) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  c->page_rows++;
  return PT_OK;
}

/* A null or empty at node n: one entry without a value for every leaf
 * below (those in [lo, hi)). */
static int emit_absent(pt_parquet_writer *w, const wnode *n, int16_t def, int16_t rep,
                       int64_t lo, int64_t hi, pt_error *err) {
  int64_t first = n->first > lo ? n->first : lo, end = n->end < hi ? n->end : hi;
  for (int64_t k = first; k < end; k++) {
    PT_RETURN_NOT_OK(push_levels(&w->cols[k], def, rep, err));
    w->cols[k].nulls++;
  }
  return PT_OK;
}

/* Row i of view v for node n, whose parent reached definition level def;
 * rep: the repetition level of its first entry. Only the leaves in
 * [lo, hi) are given their entries (n has some of them: a struct passes
 * over its children that have none). */
static int emit_node(pt_parquet_writer *w, const wnode *n, const pt__view *v, int64_t i,
                     int16_t def, int16_t rep, int64_t lo, int64_t hi, pt_error *err) {
  /* The validity bitmap first: most nested arrays have one, and the
   * general test's checks for unions and run-end encoding cost a call. */
  bool valid = v->validity != NULL ? pt__bit_get(v->validity, v->offset + i)
               : v->type.id == PT_TYPE_SPARSE_UNION || v->type.id == PT_TYPE_DENSE_UNION ||
                       v->type.id == PT_TYPE_RUN_END_ENCODED || v->type.id == PT_TYPE_NA
                   ? pt__view_is_valid(v, i)
                   : true;
  if (!valid && v->type.id != PT_TYPE_NA) {
    if (n->nullable) return emit_absent(w, n, def, rep, lo, hi, err);
    return pt__errorf(err, PT_EINVAL,
                      "a field that is not nullable holds a null (row %lld of its array); mark "
                      "it nullable", (long long)i);
  }
  if (v->type.id == PT_TYPE_NA) return emit_absent(w, n, def, rep, lo, hi, err);
  int16_t d = (int16_t)(def + (n->nullable ? 1 : 0));
  switch (n->kind) {
    case W_LEAF: {
      wcol *c = &w->cols[n->leaf];
      PT_RETURN_NOT_OK(push_levels(c, d, rep, err));
      return append_phys(w, c, v, i, err);
    }
    case W_STRUCT:
      for (int64_t k = 0; k < n->n_children; k++)
        if (n->children[k].end > lo && n->children[k].first < hi)
          PT_RETURN_NOT_OK(emit_node(w, &n->children[k], &v->children[k], v->offset + i, d, rep,
                                     lo, hi, err));
      return PT_OK;
    default: {
      int64_t s, e;
      pt__view_list_range(v, i, &s, &e);
      if (s == e) return emit_absent(w, n, d, rep, lo, hi, err); /* empty: no element */
      for (int64_t j = s; j < e; j++)
        PT_RETURN_NOT_OK(emit_node(w, &n->children[0], &v->children[0], j, (int16_t)(d + 1),
                                   j == s ? rep : n->erep, lo, hi, err));
      return PT_OK;
    }
  }
}

/* After a row of a column: pages that are full close. */
static inline int check_pages(pt_parquet_writer *w, wbufs *b, wcol *c, pt_error *err) {
  int rc = PT_OK;
  if (c->page_rows >= PAGE_ROW_LIMIT || page_bytes(c) >= w->opts.page_bytes) rc = flush_page(w, b, c, err);
  if (rc == PT_OK && c->use_dict && !c->fallback &&
      (int64_t)c->dict.len > w->opts.dictionary_page_bytes) {
    rc = flush_page(w, b, c, err);
    c->fallback = true;
  }
  return rc;
}

/* Rows [done, done + n) of v (the batch) for share u of the columns. */
static int encode_unit(pt_parquet_writer *w, wbufs *b, const wunit *u, const pt__view *v,
                       int64_t done, int64_t n, pt_error *err) {
  int rc = PT_OK;
  const wnode *top = &w->tops[u->top];
  const pt__view *cv = &v->children[u->top];
  if (top->kind != W_LEAF) {
    for (int64_t i = done; i < done + n && rc == PT_OK; i++) {
      rc = emit_node(w, top, cv, v->offset + i, 0, 0, u->lo, u->hi, err);
      for (int64_t l = u->lo; l < u->hi && rc == PT_OK; l++) rc = check_pages(w, b, &w->cols[l], err);
    }
    return rc;
  }
  wcol *c = &w->cols[top->leaf];
  if (fast_type(c, cv)) {
    for (int64_t i = done; i < done + n && rc == PT_OK;) {
      int64_t m = done + n - i;
      if (m > FAST_ROWS) m = FAST_ROWS;
      if (m > PAGE_ROW_LIMIT - c->page_rows) m = PAGE_ROW_LIMIT - c->page_rows;
      rc = append_fast(w, c, cv, v->offset + i, m, err);
      i += m;
      if (rc == PT_OK) rc = check_pages(w, b, c, err);
    }
    return rc;
  }
  if (fast_bytes(c, cv)) {
    for (int64_t i = done; i < done + n && rc == PT_OK;) {
      int64_t m = done + n - i, took = 0;
      if (m > FAST_ROWS) m = FAST_ROWS;
      if (m > PAGE_ROW_LIMIT - c->page_rows) m = PAGE_ROW_LIMIT - c->page_rows;
      rc = append_fast_bytes(w, c, cv, v->offset + i, m, &took, err);
      i += took;
      if (rc == PT_OK) rc = check_pages(w, b, c, err);
    }
    return rc;
  }
  for (int64_t i = done; i < done + n && rc == PT_OK; i++) {
    rc = append_value(w, c, cv, v->offset + i, err);
    if (rc == PT_OK) rc = check_pages(w, b, c, err);
  }
  return rc;
}

/* Rows [done, done + n) of v into the open row group's pages. */
static int encode_rows(pt_parquet_writer *w, const pt__view *v, int64_t done, int64_t n,
                       pt_error *err) {
  if (w->n_threads > 1 && w->n_units > 1 && n * w->n_cols >= PARALLEL_MIN_ENTRIES) {
    wpar p = {.w = w, .kind = PAR_UNITS, .v = v, .done = done, .n_rows = n, .n = w->n_units};
    return par_step(&p, err);
  }
  for (int64_t u = 0; u < w->n_units; u++)
    PT_RETURN_NOT_OK(encode_unit(w, &w->bufs[0], &w->units[u], v, done, n, err));
  return PT_OK;
}

int pt_parquet_writer_write(pt_parquet_writer *w, const struct ArrowArray *batch, pt_error *err) {
  if (w == NULL || batch == NULL) return pt__errorf(err, PT_EINVAL, "parquet: writer and batch must be given");
  if (w->closed || w->failed)
    return pt__errorf(err, PT_ESTATE, "parquet: the writer is %s", w->closed ? "closed" : "failed");
  struct ArrowArray plain = {0};
  if (w->given.release != NULL) {
    /* Checked as given, then converted (the caller's buffers borrowed). */
    int rc = pt_array_validate(&w->given, batch, err);
    if (rc != PT_OK) return pt__error_prefix(err, rc, "parquet: the batch does not match the schema: ");
    rc = plain_array(&w->given, batch, &plain, err);
    if (rc != PT_OK) return pt__error_prefix(err, rc, "parquet: ");
    batch = &plain;
  }
  pt__view v;
  int rc = pt__view_init(&v, &w->schema, batch, err);
  if (rc != PT_OK) {
    if (plain.release) plain.release(&plain);
    return rc;
  }
  rc = pt__view_validate(&v, NULL, NULL, err);
  if (rc != PT_OK) {
    pt__view_reset(&v);
    if (plain.release) plain.release(&plain);
    return pt__error_prefix(err, rc, "parquet: the batch does not match the schema: ");
  }
  /* Column by column over the rows that fit the open row group. */
  int64_t done = 0;
  while (done < v.length && rc == PT_OK) {
    int64_t n = v.length - done;
    if (n > w->opts.row_group_rows - w->rg_rows) n = w->opts.row_group_rows - w->rg_rows;
    rc = encode_rows(w, &v, done, n, err);
    done += n;
    w->rg_rows += n;
    if (rc == PT_OK && w->rg_rows >= w->opts.row_group_rows) rc = flush_row_group(w, err);
  }
  pt__view_reset(&v);
  if (plain.release) plain.release(&plain);
  if (rc != PT_OK) w->failed = true;
  return rc;
}

int pt_parquet_writer_close(pt_parquet_writer *w, pt_error *err) {
  if (w == NULL) return pt__errorf(err, PT_EINVAL, "parquet: no writer");
  if (w->closed) return PT_OK;
  if (w->failed) return pt__errorf(err, PT_ESTATE, "parquet: the writer failed; its output is incomplete");
  int rc = w->rg_rows > 0 ? flush_row_group(w, err) : PT_OK;
  if (rc != PT_OK) {
    w->failed = true;
    return rc;
  }
  /* The page indexes, all ColumnIndexes then all OffsetIndexes (as Arrow
   * C++ and parquet-mr place them), between the row groups and the footer. */
  int64_t ci_start = w->pos;
  rc = out_write(w, w->column_indexes.data, (int64_t)w->column_indexes.len, err);
  int64_t oi_start = w->pos;
  if (rc == PT_OK) rc = out_write(w, w->offset_indexes.data, (int64_t)w->offset_indexes.len, err);
  if (rc != PT_OK) {
    w->failed = true;
    return rc;
  }
  for (int64_t g = 0; g < w->n_rgs; g++)
    for (int64_t k = 0; k < w->rgs[g].n_columns; k++) {
      pt__pq_column_chunk *cc = &w->rgs[g].columns[k];
      if (cc->has_column_index) cc->column_index_offset += ci_start;
      if (cc->has_offset_index) cc->offset_index_offset += oi_start;
    }
  pt__pq_file_meta m = {0};
  m.version = 2;
  m.n_schema = w->n_elems + 1;
  m.schema = pt__arena_alloc(&w->arena, m.n_schema * (int64_t)sizeof *m.schema);
  pt__pq_kv *kv = pt__arena_alloc(&w->arena, (w->n_kv + 1) * (int64_t)sizeof *kv);
  if (m.schema == NULL || kv == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  m.schema[0] = (pt__pq_schema_elem){.type = -1, .repetition = -1, .converted = -1,
                                     .name = {(const uint8_t *)"schema", 6},
                                     .num_children = (int32_t)w->n_tops};
  for (int64_t k = 0; k < w->n_elems; k++) m.schema[k + 1] = w->elems[k];
  m.num_rows = w->total_rows;
  m.row_groups = w->rgs;
  m.n_row_groups = w->n_rgs;
  /* ARROW:schema first, then the other pairs (pyarrow's order). */
  if (w->arrow_schema.len > 0)
    kv[m.n_kv++] = (pt__pq_kv){.key = {(const uint8_t *)"ARROW:schema", 12}, .has_value = true,
                               .value = {(const uint8_t *)w->arrow_schema.data,
                                         (int64_t)w->arrow_schema.len}};
  for (int64_t j = 0; j < w->n_kv; j++) kv[m.n_kv++] = w->kv[j];
  if (m.n_kv > 0) m.kv = kv;
  static const char created_by[] = "protium version " PT_VERSION_STRING;
  m.has_created_by = true;
  m.created_by = (pt__pq_bytes){(const uint8_t *)created_by, (int64_t)sizeof created_by - 1};
  m.n_column_orders = w->n_cols;
  pt_buf *f = &w->bufs[0].scratch;
  f->len = 0;
  if (pt__pq_encode_file_meta(&m, f) != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
  uint8_t tail[8];
  pt__store_u32(tail, (uint32_t)f->len);
  memcpy(tail + 4, "PAR1", 4);
  rc = out_write(w, f->data, (int64_t)f->len, err);
  if (rc == PT_OK) rc = out_write(w, tail, 8, err);
  if (rc == PT_OK && w->own_fd) {
    if (close(w->fd) != 0) rc = pt__errorf(err, PT_EIO, "parquet: close failed: %s", strerror(errno));
    w->fd = -2;
    w->own_fd = false;
  }
  if (rc != PT_OK) {
    w->failed = true;
    return rc;
  }
  w->closed = true;
  return PT_OK;
}
