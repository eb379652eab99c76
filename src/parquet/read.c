/* read.c — Parquet files read as ArrowArrayStreams.
 *
 * The file is mapped (or handed over as bytes); the footer is decoded once;
 * then each row group's projected column chunks are decoded, page by page,
 * into one Arrow array per column, and batches are zero-copy slices of those
 * arrays. Memory is therefore bounded by one row group's projected columns.
 * Every size and offset in the file is checked before use; errors name the
 * file, row group, column and page.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parquet/parquet.h"
#include "arrow/kernels.h"
#include "parquet/parquet_int.h"

#define DEFAULT_BATCH_ROWS 65536
#define MAX_THREADS 16 /* opts.threads at most, as the writer's */

/* How values of a leaf become Arrow values. */
enum {
  CV_NULL,     /* every value null (UNKNOWN logical type): Arrow null type */
  CV_BOOL,     /* bits */
  CV_COPY,     /* same bytes: int32, int64, float, double, FLBA, float16 */
  CV_NARROW,   /* INT32 to 1 or 2 bytes */
  CV_TS_SCALE, /* INT64 times a factor (or divided) */
  CV_INT96,    /* INT96 (Julian day + nanoseconds) to timestamp */
  CV_DEC_INT,  /* INT32 / INT64 to decimal32/64/128/256 (out_width bytes) */
  CV_DEC_BE,   /* big-endian bytes (FLBA / BYTE_ARRAY) to the same */
  CV_BINARY,   /* BYTE_ARRAY to utf8/binary (large too) */
};

typedef struct leaf {
  const pt__pq_schema_elem *e;
  const char *name;      /* NUL-terminated copy, in the arena */
  int64_t chunk;         /* index of its column chunk in each row group */
  int16_t max_def;       /* definition level of a present value */
  int16_t max_rep;       /* repetition level of its innermost list */
  int16_t def_slot;      /* entries with def >= this are rows of its array */
  bool nested;           /* below a struct or list */
  bool keep_levels;      /* the first leaf below a struct or list: the tree
                          * is built from its levels, kept for the chunk;
                          * its siblings decode definition levels only */
  int conv;              /* CV_* */
  int phys_width;        /* bytes per PLAIN value (fixed-width physical types) */
  int out_width;         /* bytes per Arrow value (fixed-width outputs) */
  bool large;            /* int64 offsets */
  bool view;             /* CV_BINARY: offsets made string/binary views at the end */
  bool dict_out;         /* CV_BINARY: read as an Arrow dictionary (int32 indices) */
  int ext;               /* EXT_*: the Arrow extension type it is read as */
  int64_t ts_mul, ts_div; /* CV_TS_SCALE / CV_INT96 */
  char format[48];
} leaf;

/* The Arrow tree of the selected columns: each node knows how to find its
 * rows in the levels of the first leaf below it. A node has a row (a slot)
 * at each level entry with rep <= rep and def >= def_slot, valid where def >=
 * def_valid. Structs pass their slots on to their children; a list's
 * elements are the entries with rep <= rep + 1 and def >= the element's
 * def_slot. */
enum { N_LEAF, N_STRUCT, N_LIST };

typedef struct node {
  int kind;
  const char *name;
  int16_t rep, def_slot, def_valid;
  bool nullable;
  bool large;            /* N_LIST: int64 offsets (large_list in ARROW:schema) */
  bool map;              /* N_LIST: an Arrow map (a MAP of a required key and a value) */
  int64_t first;         /* index in r->leaves of the first leaf below */
  int64_t n_children;
  struct node *children; /* arena */
  leaf *leaf;            /* N_LEAF */
} node;

/* One column chunk being decoded: the Arrow buffers grow page by page. */
typedef struct colbuf {
  uint8_t *validity;     /* bits; NULL until the first null */
  uint8_t *values;       /* fixed: rows * out_width; bool: bits; binary: offsets */
  uint8_t *data;         /* binary bytes */
  int64_t cap_rows, data_len, data_cap;
  int64_t rows, nulls;
  int64_t hint_rows;     /* the first allocation's rows (flat: the row
                          * group's; nested: the chunk's level entries;
                          * both bounded by the chunk's bytes) */
  const uint8_t *file_values; /* the chunk's values where they lie in the
                          * mapped file (zero_copy), values then NULL; not
                          * owned: the reader's region keeps them, and the
                          * array made of them a reference on it */
  /* The dictionary, decoded from its page (physical values). */
  uint8_t *dict_page;    /* the decompressed page, in the decoding thread's
                          * scratch (dict_buf, valid while this chunk is
                          * decoded), or NULL when in the file */
  const uint8_t **dict_ptr; /* BYTE_ARRAY: value pointers; fixed: NULL */
  int32_t *dict_len;
  const uint8_t *dict_fixed; /* fixed-width physical values */
  const uint8_t *dict_limit; /* end of the memory the dictionary lies in */
  int64_t dict_n;
  bool has_dict;
  /* Levels of the whole chunk, for leaves below structs and lists. */
  uint16_t *defs, *reps;
  int64_t n_levels, cap_levels;
  /* leaf.dict_out: values holds each row's int32 index into an Arrow
   * dictionary of unique values (offsets doffs, bytes data), found through
   * the hash table memo; dmap maps the file's dictionary onto it. */
  uint8_t *doffs;
  int64_t dn, dcap;
  int32_t *memo;         /* open addressing: index + 1, 0 empty */
  int64_t memo_cap;      /* a power of two, > 2 * dn */
  int32_t *dmap;
  /* With rows to keep (the page index ruled pages out): the rows passed,
   * decoded or not, and the row ranges of the pages decoded. */
  int64_t seen;
  pt__row_ranges got;
} colbuf;

/* What a thread decoding pages writes, besides its column chunk's colbuf:
 * buffers reused between pages, codec state, counts. */
typedef struct scratch {
  uint8_t *page_buf;
  int64_t page_cap;
  uint16_t *levels;        /* definition levels of a page */
  uint32_t *indices;
  int64_t levels_cap, indices_cap;
  pt_buf plain;            /* DELTA and BYTE_STREAM_SPLIT values made PLAIN */
  int64_t *deltas, *deltas2;
  int64_t deltas_cap, deltas2_cap;
  uint8_t *dict_buf;       /* a compressed chunk's dictionary page */
  int64_t dict_cap;
  pt__pq_dctx dctx;        /* codec state kept between pages */
  int64_t pages_read, pages_skipped; /* data pages of the row groups read */
  int64_t pages_zero_copy; /* of pages_read, those handed out in place */
} scratch;

/* A row group being read: its column chunks' colbufs while they are
 * decoded, then its top-level columns' arrays. */
typedef struct rgload {
  int64_t rg;
  pt__row_ranges keep;     /* rows the page index keeps, when select */
  bool select;
  colbuf *bufs;            /* n_sel, owned until finished */
  struct ArrowArray *arrays; /* n_cols, owned until handed out */
  int64_t rows;
} rgload;

typedef struct reader {
  char *label;             /* for messages: the path or "buffer" */
  const uint8_t *data;
  int64_t size;
  pt__shared *region;      /* our reference on the bytes */
  bool mapped;             /* data is the file, memory-mapped */
  pt__arena arena;
  pt__pq_file_meta meta;
  node *cols;              /* the selected top-level columns */
  int64_t n_cols;
  int64_t n_leaves;        /* in the file */
  leaf **leaves;           /* the selected ones, in file order */
  int64_t n_sel, cap_sel;
  uint8_t *want;           /* arena, per schema element, when a path below a
                            * list was asked for: 2 selected whole, 1 on the
                            * way to one (its group's other children are left
                            * out), 0 neither; NULL otherwise */
  colbuf *bufs;            /* n_sel, while a row group is read */
  pt_parquet_filter *filter; /* owned copy, or NULL */
  int64_t rg_read, rg_skipped;
  bool flat;               /* no selected column below a struct or list */
  struct ArrowSchema schema;
  int64_t batch_rows;
  int64_t next_rg, end_rg; /* the row groups [next_rg, end_rg) are left */
  struct ArrowArray *rg_arrays; /* n_cols, of the current row group */
  int64_t rg_rows, rg_pos;
  bool done;
  pt_error err;
  int n_threads;           /* threads decoding column chunks (opts.threads) */
  bool ahead;              /* threads = 1 with readahead: a window of two row
                            * groups, each decoded whole by one of two threads */
  int n_workers;           /* threads decoding at once: n_threads, or 2 ahead */
  scratch *sc;             /* this thread's: scratch[0], or a worker's */
  scratch *scratch;        /* n_workers */
  /* Row groups decoded together (window_rows), handed out in order. */
  rgload *win;
  int64_t win_n, win_pos;  /* complete ones, the next to hand out */
  int win_rc;              /* PT_OK, or the failure met after the win_n */
  pt_error win_err;
} reader;

/* ------------------------------------------------------------------------ */
/* Schema */

static const char *elem_name(reader *r, const pt__pq_schema_elem *e) {
  char *s = pt__arena_alloc(&r->arena, e->name.len + 1);
  if (s == NULL) return NULL;
  memcpy(s, e->name.data, (size_t)e->name.len);
  return s;
}

static int unsupported(pt_error *err, const char *name, const char *what) {
  return pt__errorf(err, PT_ENOTSUP, "column '%s': %s is not supported yet", name, what);
}

static int unit_rank(int tu) { return tu == PT__TU_MILLIS ? 1 : tu == PT__TU_MICROS ? 2 : 3; }
static const char unit_char[] = "smun";

/* The Arrow type of a flat leaf from its Parquet types; arrow (may be NULL):
 * the field of the stored ARROW:schema, which refines time zones, timestamp
 * units, durations and large types. */
static int map_leaf_type(leaf *c, const struct ArrowSchema *arrow, pt_error *err) {
  const pt__pq_schema_elem *e = c->e;
  const pt__pq_logical *lt = &e->logical;
  int ct = e->converted;
  const char *name = c->name;
  c->ts_mul = c->ts_div = 1;
  if (lt->kind < 0) return unsupported(err, name, "this logical type (interval, variant or geospatial)");
  switch (e->type) {
    case PT__PQ_BOOLEAN:
      c->conv = CV_BOOL;
      strcpy(c->format, "b");
      break;
    case PT__PQ_INT32: {
      c->phys_width = 4;
      int bw = 32;
      bool sgn = true;
      if (lt->kind == PT__LT_INTEGER) {
        bw = lt->bit_width;
        sgn = lt->is_signed;
      } else if (lt->kind == PT__LT_NONE && ct >= PT__CT_UINT_8 && ct <= PT__CT_INT_64) {
        static const int widths[] = {8, 16, 32, 64, 8, 16, 32, 64};
        bw = widths[ct - PT__CT_UINT_8];
        sgn = ct >= PT__CT_INT_8;
      }
      if (lt->kind == PT__LT_UNKNOWN) {
        c->conv = CV_NULL;
        strcpy(c->format, "n");
      } else if (lt->kind == PT__LT_DATE || (lt->kind == PT__LT_NONE && ct == PT__CT_DATE)) {
        c->conv = CV_COPY;
        c->out_width = 4;
        strcpy(c->format, "tdD");
      } else if (lt->kind == PT__LT_DECIMAL || (lt->kind == PT__LT_NONE && ct == PT__CT_DECIMAL)) {
        c->conv = CV_DEC_INT;
      } else if (lt->kind == PT__LT_TIME || (lt->kind == PT__LT_NONE && ct == PT__CT_TIME_MILLIS)) {
        if (lt->kind == PT__LT_TIME && lt->unit != PT__TU_MILLIS)
          return pt__errorf(err, PT_EFORMAT, "column '%s': INT32 TIME must be in milliseconds", name);
        c->conv = CV_COPY;
        c->out_width = 4;
        strcpy(c->format, "ttm");
      } else if (bw == 32) {
        c->conv = CV_COPY;
        c->out_width = 4;
        strcpy(c->format, sgn ? "i" : "I");
      } else if (bw == 8 || bw == 16) {
        c->conv = CV_NARROW;
        c->out_width = bw / 8;
        strcpy(c->format, bw == 8 ? (sgn ? "c" : "C") : (sgn ? "s" : "S"));
      } else {
        return pt__errorf(err, PT_EFORMAT, "column '%s': INT32 with a %d-bit integer type", name, bw);
      }
      break;
    }
    case PT__PQ_INT64: {
      c->phys_width = 8;
      bool sgn = !(lt->kind == PT__LT_INTEGER && !lt->is_signed) &&
                 !(lt->kind == PT__LT_NONE && ct == PT__CT_UINT_64);
      if (lt->kind == PT__LT_INTEGER && lt->bit_width != 64)
        return pt__errorf(err, PT_EFORMAT, "column '%s': INT64 with a %d-bit integer type", name,
                          lt->bit_width);
      if (lt->kind == PT__LT_TIMESTAMP || (lt->kind == PT__LT_NONE && (ct == PT__CT_TIMESTAMP_MILLIS ||
                                                                       ct == PT__CT_TIMESTAMP_MICROS))) {
        int unit = lt->kind == PT__LT_TIMESTAMP ? lt->unit
                   : ct == PT__CT_TIMESTAMP_MILLIS ? PT__TU_MILLIS : PT__TU_MICROS;
        bool utc = lt->kind == PT__LT_TIMESTAMP ? lt->utc : true;
        if (unit < 1 || unit > 3)
          return pt__errorf(err, PT_EFORMAT, "column '%s': timestamp without a unit", name);
        c->conv = CV_COPY;
        c->out_width = 8;
        snprintf(c->format, sizeof c->format, "ts%c:%s", unit_char[unit_rank(unit)], utc ? "UTC" : "");
      } else if (lt->kind == PT__LT_DECIMAL || (lt->kind == PT__LT_NONE && ct == PT__CT_DECIMAL)) {
        c->conv = CV_DEC_INT;
      } else if (lt->kind == PT__LT_TIME || (lt->kind == PT__LT_NONE && ct == PT__CT_TIME_MICROS)) {
        int unit = lt->kind == PT__LT_TIME ? lt->unit : PT__TU_MICROS;
        if (unit != PT__TU_MICROS && unit != PT__TU_NANOS)
          return pt__errorf(err, PT_EFORMAT, "column '%s': INT64 TIME must be in micro- or nanoseconds",
                            name);
        c->conv = CV_COPY;
        c->out_width = 8;
        strcpy(c->format, unit == PT__TU_MICROS ? "ttu" : "ttn");
      } else {
        c->conv = CV_COPY;
        c->out_width = 8;
        strcpy(c->format, sgn ? "l" : "L");
      }
      break;
    }
    case PT__PQ_INT96:
      c->phys_width = 12;
      c->conv = CV_INT96;
      c->out_width = 8;
      strcpy(c->format, "tsn:");
      break;
    case PT__PQ_FLOAT:
      c->phys_width = c->out_width = 4;
      c->conv = CV_COPY;
      strcpy(c->format, "f");
      break;
    case PT__PQ_DOUBLE:
      c->phys_width = c->out_width = 8;
      c->conv = CV_COPY;
      strcpy(c->format, "g");
      break;
    case PT__PQ_BYTE_ARRAY:
      if (lt->kind == PT__LT_DECIMAL || (lt->kind == PT__LT_NONE && ct == PT__CT_DECIMAL)) {
        c->conv = CV_DEC_BE;
      } else {
        bool text = lt->kind == PT__LT_STRING || lt->kind == PT__LT_ENUM || lt->kind == PT__LT_JSON ||
                    (lt->kind == PT__LT_NONE &&
                     (ct == PT__CT_UTF8 || ct == PT__CT_ENUM || ct == PT__CT_JSON));
        c->conv = CV_BINARY;
        strcpy(c->format, text ? "u" : "z");
      }
      break;
    case PT__PQ_FIXED_LEN_BYTE_ARRAY:
      if (e->type_length <= 0)
        return pt__errorf(err, PT_EFORMAT, "column '%s': FIXED_LEN_BYTE_ARRAY of length %d", name,
                          e->type_length);
      c->phys_width = e->type_length;
      if (lt->kind == PT__LT_DECIMAL || (lt->kind == PT__LT_NONE && ct == PT__CT_DECIMAL)) {
        c->conv = CV_DEC_BE;
      } else if (lt->kind == PT__LT_FLOAT16) {
        if (e->type_length != 2)
          return pt__errorf(err, PT_EFORMAT, "column '%s': FLOAT16 of %d bytes", name, e->type_length);
        c->conv = CV_COPY;
        c->out_width = 2;
        strcpy(c->format, "e");
      } else {
        c->conv = CV_COPY;
        c->out_width = e->type_length;
        snprintf(c->format, sizeof c->format, "w:%d", e->type_length);
      }
      break;
    default:
      return pt__errorf(err, PT_EFORMAT, "column '%s': unknown physical type %d", name, e->type);
  }
  if (c->conv == CV_DEC_INT || c->conv == CV_DEC_BE) {
    int32_t p = lt->kind == PT__LT_DECIMAL ? lt->precision : e->precision;
    int32_t s = lt->kind == PT__LT_DECIMAL ? lt->scale : e->scale;
    if (p <= 0 || s < 0 || s > p)
      return pt__errorf(err, PT_EFORMAT, "column '%s': decimal(%d, %d) is invalid", name, p, s);
    if (p > 76) return unsupported(err, name, "a decimal of more than 76 digits");
    /* As pyarrow: decimal128 up to 38 digits, decimal256 beyond; the
     * stored Arrow schema may narrow it to decimal32/64 (below). */
    c->out_width = p > 38 ? 32 : 16;
    if (p > 38) snprintf(c->format, sizeof c->format, "d:%d,%d,256", p, s);
    else snprintf(c->format, sizeof c->format, "d:%d,%d", p, s);
    if (arrow != NULL && arrow->format != NULL) {
      /* The stored width when it holds the precision: decimal32 up to 9
       * digits, decimal64 18, decimal128 38. */
      int sp = 0, ss = 0, bw = 128, used = 0;
      if (sscanf(arrow->format, "d:%d,%d%n", &sp, &ss, &used) == 2 && sp == p && ss == s) {
        const char *rest = arrow->format + used;
        if (rest[0] == ',') bw = atoi(rest + 1);
        int maxp = bw == 32 ? 9 : bw == 64 ? 18 : bw == 128 ? 38 : bw == 256 ? 76 : 0;
        if (p <= maxp) {
          c->out_width = bw / 8;
          snprintf(c->format, sizeof c->format, "%s", arrow->format);
        }
      }
    }
  }
  if (e->type == PT__PQ_INT96 && arrow == NULL) return PT_OK;
  if (arrow == NULL) return PT_OK;
  /* Refinements from the stored Arrow schema. */
  const char *af = arrow->format;
  if (af == NULL) return PT_OK;
  if ((c->conv == CV_COPY || c->conv == CV_INT96) && strncmp(af, "ts", 2) == 0 &&
      strncmp(c->format, "ts", 2) == 0 && strlen(af) >= 4 && af[3] == ':') {
    int from = (int)(strchr(unit_char, c->format[2]) - unit_char);
    const char *to_p = af[2] != '\0' ? strchr(unit_char, af[2]) : NULL;
    if (to_p == NULL) return PT_OK;
    int to = (int)(to_p - unit_char);
    if (to == 0) {
      /* Seconds stay milliseconds (as pyarrow reads them back); the time
       * zone is the stored one. */
      snprintf(c->format, sizeof c->format, "ts%c%s", c->format[2], af + 3);
      return PT_OK;
    }
    int64_t f = 1;
    for (int i = 0; i < (from > to ? from - to : to - from); i++) f *= 1000;
    if (from > to) c->ts_div = f;
    else c->ts_mul = f;
    if (c->conv == CV_COPY && f != 1) c->conv = CV_TS_SCALE;
    snprintf(c->format, sizeof c->format, "%s", af);
  } else if (c->conv == CV_COPY && e->type == PT__PQ_INT64 && strcmp(c->format, "l") == 0 &&
             strncmp(af, "tD", 2) == 0 && strlen(af) == 3) {
    snprintf(c->format, sizeof c->format, "%s", af);
  } else if (c->conv == CV_BINARY && (strcmp(af, "U") == 0 || strcmp(af, "Z") == 0) &&
             (af[0] == 'U') == (c->format[0] == 'u')) {
    c->large = true;
    snprintf(c->format, sizeof c->format, "%s", af);
  } else if (c->conv == CV_BINARY && (strcmp(af, "vu") == 0 || strcmp(af, "vz") == 0) &&
             (af[1] == 'u') == (c->format[0] == 'u')) {
    c->view = true;
    snprintf(c->format, sizeof c->format, "%s", af);
  } else if (c->conv == CV_BINARY && arrow->dictionary != NULL && arrow->dictionary->format &&
             strlen(arrow->dictionary->format) == 1 &&
             strchr("uUzZ", arrow->dictionary->format[0]) != NULL &&
             (strchr("uU", arrow->dictionary->format[0]) != NULL) == (c->format[0] == 'u')) {
    /* Written from a dictionary column: read as one again, as pyarrow
     * does (int32 indices and utf8 or binary values, whatever the stored
     * index and value widths). */
    c->dict_out = true;
    c->large = false;
    snprintf(c->format, sizeof c->format, "%s", strchr("uU", arrow->dictionary->format[0]) ? "u" : "z");
  }
  return PT_OK;
}

/* The Arrow schema pyarrow stores under ARROW:schema: base64 of an IPC
 * schema message. Read with the IPC reader; NULL-released if absent or not
 * readable (it only refines what the Parquet types say). */
static void stored_arrow_schema(reader *r, struct ArrowSchema *out) {
  out->release = NULL;
  const pt__pq_kv *kv = NULL;
  for (int64_t i = 0; i < r->meta.n_kv; i++)
    if (r->meta.kv[i].key.len == 12 && memcmp(r->meta.kv[i].key.data, "ARROW:schema", 12) == 0 &&
        r->meta.kv[i].has_value)
      kv = &r->meta.kv[i];
  if (kv == NULL) return;
  int64_t n = kv->value.len;
  uint8_t *bin = pt__malloc((size_t)(n / 4 * 3 + 16));
  if (bin == NULL) return;
  int64_t len = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (int64_t i = 0; i < n; i++) {
    uint8_t ch = kv->value.data[i];
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '+' || ch == '-') v = 62;
    else if (ch == '/' || ch == '_') v = 63;
    else if (ch == '=') break;
    else continue;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bin[len++] = (uint8_t)(acc >> bits);
    }
  }
  /* The message, then an end-of-stream marker: a whole IPC stream. */
  static const uint8_t eos[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
  memcpy(bin + len, eos, 8);
  len += 8;
  struct ArrowArrayStream s;
  if (pt_ipc_read_buffer(bin, len, NULL, NULL, &s, NULL) == PT_OK) {
    if (s.get_schema(&s, out) != 0) out->release = NULL;
    s.release(&s);
  }
  pt__free(bin);
}

/* Canonical extension types that Parquet has logical types for: UUID on
 * FIXED_LEN_BYTE_ARRAY(16), JSON on BYTE_ARRAY (pyarrow reads them so). */
enum { EXT_NONE, EXT_UUID, EXT_JSON };
static const char *const ext_names[] = {NULL, "arrow.uuid", "arrow.json"};

bool pt__pq_metadata_has(const char *md, const char *key, const char *value) {
  const char *p;
  for (int32_t j = 0, n = pt__md_count(md, &p); j < n; j++) {
    pt__md_pair kv = pt__md_next(&p);
    if ((size_t)kv.key_len == strlen(key) && memcmp(kv.key, key, (size_t)kv.key_len) == 0 &&
        (value == NULL || ((size_t)kv.value_len == strlen(value) &&
                           memcmp(kv.value, value, (size_t)kv.value_len) == 0)))
      return true;
  }
  return false;
}

/* map_leaf_type, then the extension type the logical type (or the stored
 * field's extension name) asks for, where the storage type fits it. */
static int map_leaf(leaf *c, const struct ArrowSchema *arrow, pt_error *err) {
  PT_RETURN_NOT_OK(map_leaf_type(c, arrow, err));
  const pt__pq_logical *lt = &c->e->logical;
  const char *md = arrow ? arrow->metadata : NULL;
  const char *key = "ARROW:extension:name";
  if ((lt->kind == PT__LT_UUID || pt__pq_metadata_has(md, key, "arrow.uuid")) && c->conv == CV_COPY &&
      strcmp(c->format, "w:16") == 0)
    c->ext = EXT_UUID;
  else if ((lt->kind == PT__LT_JSON || (lt->kind == PT__LT_NONE && c->e->converted == PT__CT_JSON) ||
            pt__pq_metadata_has(md, key, "arrow.json")) &&
           c->conv == CV_BINARY && !c->dict_out && strchr("uU", c->format[0]) != NULL)
    c->ext = EXT_JSON;
  return PT_OK;
}

/* Walks the schema tree below element *i (advancing it past the subtree);
 * counts its leaves into *leaves. */
static int walk(reader *r, int64_t *i, int64_t *leaves, int depth, pt_error *err) {
  if (*i >= r->meta.n_schema)
    return pt__errorf(err, PT_EFORMAT, "schema: children counts exceed the %lld elements",
                      (long long)r->meta.n_schema);
  if (depth > 64) return pt__errorf(err, PT_EFORMAT, "schema: nested deeper than 64");
  const pt__pq_schema_elem *e = &r->meta.schema[(*i)++];
  if (e->num_children < 0)
    return pt__errorf(err, PT_EFORMAT, "schema: negative number of children");
  if (e->num_children == 0) {
    if (e->type < 0) return pt__errorf(err, PT_EFORMAT, "schema: leaf without a physical type");
    (*leaves)++;
    return PT_OK;
  }
  for (int32_t k = 0; k < e->num_children; k++)
    PT_RETURN_NOT_OK(walk(r, i, leaves, depth + 1, err));
  return PT_OK;
}

static bool name_is(const pt__pq_bytes *b, const char *s) {
  return b->len == (int64_t)strlen(s) && memcmp(b->data, s, (size_t)b->len) == 0;
}

static int add_leaf(reader *r, leaf *l, pt_error *err) {
  if (r->n_sel >= r->cap_sel) {
    int64_t cap = r->cap_sel ? r->cap_sel * 2 : 16;
    leaf **p = pt__realloc(r->leaves, (size_t)cap * sizeof *p);
    if (p == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    r->leaves = p;
    r->cap_sel = cap;
  }
  r->leaves[r->n_sel++] = l;
  return PT_OK;
}

static int make_node(reader *r, int64_t *i, int16_t def, int16_t rep, int16_t slot, int64_t *chunk,
                     const struct ArrowSchema *arrow, bool element, node *n, int depth,
                     pt_error *err);

/* The children of group element g (at *i - 1, already consumed) as the
 * children of struct node n. */
static int make_children(reader *r, const pt__pq_schema_elem *g, int64_t *i, int16_t def,
                         int16_t rep, int16_t slot, int64_t *chunk,
                         const struct ArrowSchema *arrow, node *n, int depth, pt_error *err) {
  /* The stored Arrow struct, when it matches, refines the children. */
  if (arrow && (arrow->format == NULL || strcmp(arrow->format, "+s") != 0 ||
                arrow->n_children != g->num_children))
    arrow = NULL;
  n->n_children = g->num_children;
  n->children = pt__arena_alloc(&r->arena, (n->n_children ? n->n_children : 1) * (int64_t)sizeof(node));
  if (n->children == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  /* A group on the way to a selected path keeps only the children on it. */
  bool prune = r->want && r->want[g - r->meta.schema] == 1;
  int64_t kept = 0;
  for (int64_t k = 0; k < g->num_children; k++) {
    if (prune && *i < r->meta.n_schema && r->want[*i] == 0) {
      PT_RETURN_NOT_OK(walk(r, i, chunk, depth + 1, err));
      continue;
    }
    PT_RETURN_NOT_OK(make_node(r, i, def, rep, slot, chunk, arrow ? arrow->children[k] : NULL,
                               false, &n->children[kept++], depth + 1, err));
  }
  n->n_children = kept;
  if (n->n_children == 0) return pt__errorf(err, PT_EFORMAT, "schema: empty group");
  n->first = n->children[0].first;
  return PT_OK;
}

/* The node of the field at schema element *i (advancing *i past its
 * subtree). def/rep: the levels of its parent; slot: where its parent's rows
 * are; chunk: the leaf index of its first leaf in the file. element: the
 * field is a repeated field taken as a list's required element (def and rep
 * already count it), a leaf or a struct of its fields whatever its
 * annotation. */
static int make_node(reader *r, int64_t *i, int16_t def, int16_t rep, int16_t slot, int64_t *chunk,
                     const struct ArrowSchema *arrow, bool element, node *n, int depth,
                     pt_error *err) {
  memset(n, 0, sizeof *n);
  if (depth > 64) return pt__errorf(err, PT_EFORMAT, "schema: nested deeper than 64");
  if (*i >= r->meta.n_schema) return pt__errorf(err, PT_EFORMAT, "schema: a group's children are missing");
  const pt__pq_schema_elem *e = &r->meta.schema[*i];
  n->name = elem_name(r, e);
  if (n->name == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  bool optional = !element && e->repetition == PT__PQ_OPTIONAL;
  int16_t d2 = (int16_t)(def + (optional ? 1 : 0));
  n->rep = rep;
  n->def_slot = slot;
  n->nullable = optional;
  if (def > 1000 || rep > 1000) return pt__errorf(err, PT_EFORMAT, "schema: too many levels");
  bool is_list = !element && (e->logical.kind == PT__LT_LIST || e->converted == PT__CT_LIST);
  bool is_map = !element && (e->logical.kind == PT__LT_MAP || e->converted == PT__CT_MAP ||
                             e->converted == PT__CT_MAP_KEY_VALUE);
  if (!element && e->repetition == PT__PQ_REPEATED) {
    /* A repeated field outside a LIST: a required list of required elements. */
    n->kind = N_LIST;
    n->def_valid = def;
    n->nullable = false;
    n->n_children = 1;
    n->children = pt__arena_alloc(&r->arena, (int64_t)sizeof(node));
    if (n->children == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    PT_RETURN_NOT_OK(make_node(r, i, (int16_t)(def + 1), (int16_t)(rep + 1), (int16_t)(def + 1),
                               chunk, NULL, true, n->children, depth + 1, err));
    n->first = n->children[0].first;
    return PT_OK;
  }
  if (e->num_children > 0 && (is_list || is_map)) {
    n->kind = N_LIST;
    n->def_valid = d2;
    (*i)++;
    if (e->num_children != 1)
      return pt__errorf(err, PT_EFORMAT, "schema: %s '%s' has %d children, not 1",
                        is_map ? "MAP" : "LIST", n->name, e->num_children);
    if (*i >= r->meta.n_schema) return pt__errorf(err, PT_EFORMAT, "schema: list '%s' lacks its element", n->name);
    const pt__pq_schema_elem *rr = &r->meta.schema[*i];
    if (rr->repetition != PT__PQ_REPEATED)
      return pt__errorf(err, PT_EFORMAT, "schema: the child of %s '%s' is not repeated",
                        is_map ? "MAP" : "LIST", n->name);
    n->n_children = 1;
    n->children = pt__arena_alloc(&r->arena, (int64_t)sizeof(node));
    if (n->children == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    int16_t d3 = (int16_t)(d2 + 1), r3 = (int16_t)(rep + 1);
    char tuple[300];
    snprintf(tuple, sizeof tuple, "%s_tuple", n->name);
    /* The backward-compatibility rules of the LIST spec: when is the
     * repeated field itself the element? */
    bool legacy = rr->num_children == 0 || rr->num_children > 1 || name_is(&rr->name, "array") ||
                  name_is(&rr->name, tuple) || is_map;
    if (!legacy) (*i)++; /* the repeated group; its one child is the element */
    const struct ArrowSchema *ae = NULL;
    if (arrow && arrow->format && arrow->n_children == 1 &&
        (strcmp(arrow->format, "+l") == 0 || strcmp(arrow->format, "+L") == 0)) {
      n->large = arrow->format[1] == 'L';
      ae = arrow->children[0];
    }
    /* An Arrow map when the entries are a key that cannot be null and a
     * value, as Arrow requires; otherwise list<struct<key, value>>. */
    n->map = is_map && rr->num_children == 2 && *i + 1 < r->meta.n_schema &&
             r->meta.schema[*i + 1].repetition == PT__PQ_REQUIRED &&
             r->meta.schema[*i + 1].num_children == 0 &&
             !(r->want && r->want[*i] == 1) && /* a path kept the key or value alone */
             !(arrow && arrow->format && strcmp(arrow->format, "+m") != 0);
    if (n->map && arrow && arrow->n_children == 1) ae = arrow->children[0];
    PT_RETURN_NOT_OK(make_node(r, i, d3, r3, d3, chunk, ae, legacy, n->children, depth + 1, err));
    n->first = n->children[0].first;
    return PT_OK;
  }
  if (e->num_children > 0) {
    (*i)++;
    n->kind = N_STRUCT;
    n->def_valid = d2;
    return make_children(r, e, i, d2, rep, slot, chunk, arrow, n, depth, err);
  }
  /* A leaf. */
  (*i)++;
  n->kind = N_LEAF;
  n->def_valid = d2;
  leaf *c = pt__arena_alloc(&r->arena, (int64_t)sizeof(leaf));
  if (c == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  memset(c, 0, sizeof *c);
  c->e = e;
  c->name = n->name;
  c->chunk = (*chunk)++;
  c->max_def = d2;
  c->max_rep = rep;
  c->def_slot = slot;
  c->nested = depth > 0;
  n->leaf = c;
  n->first = r->n_sel;
  PT_RETURN_NOT_OK(map_leaf(c, arrow, err));
  return add_leaf(r, c, err);
}

/* The leaves whose levels the tree is built from: the first below each
 * struct and list. */
static void mark_levels(reader *r, const node *n) {
  if (n->kind == N_LEAF) return;
  r->leaves[n->first]->keep_levels = true;
  for (int64_t k = 0; k < n->n_children; k++) mark_levels(r, &n->children[k]);
}

/* The Arrow schema node of n. */
static int node_schema(const node *n, struct ArrowSchema *out, pt_error *err) {
  const char *format = n->kind == N_LEAF   ? n->leaf->format
                       : n->kind == N_LIST ? (n->map ? "+m" : n->large ? "+L" : "+l")
                                           : "+s";
  bool nullable = n->nullable || (n->kind == N_LEAF && n->leaf->conv == CV_NULL);
  if (n->kind == N_LEAF && n->leaf->dict_out) {
    struct ArrowSchema values;
    PT_RETURN_NOT_OK(pt_schema_init(out, "i", n->name, nullable ? ARROW_FLAG_NULLABLE : 0, 0, err));
    PT_RETURN_NOT_OK(pt_schema_init(&values, format, "", ARROW_FLAG_NULLABLE, 0, err));
    return pt_schema_set_dictionary(out, &values, err);
  }
  PT_RETURN_NOT_OK(pt_schema_init(out, format, n->name, nullable ? ARROW_FLAG_NULLABLE : 0,
                                  n->n_children, err));
  if (n->kind == N_LEAF && n->leaf->ext != EXT_NONE) {
    const char *keys[2] = {"ARROW:extension:name", "ARROW:extension:metadata"};
    const char *values[2] = {ext_names[n->leaf->ext], ""};
    PT_RETURN_NOT_OK(pt_schema_set_metadata(out, 2, keys, values, err));
  }
  for (int64_t k = 0; k < n->n_children; k++)
    PT_RETURN_NOT_OK(node_schema(&n->children[k], out->children[k], err));
  return PT_OK;
}

static int64_t find_path(const char *path, void *arg, int64_t *elem);

/* A column asked for by a dotted path below a top-level one ("s.t.b",
 * "l.list.element.x"), as pyarrow takes them. */
typedef struct path_sel {
  int64_t top;             /* the top-level field's index */
  int64_t elem, chunk;     /* the path's element and its first leaf */
  int16_t def;             /* definition levels of its ancestors */
  bool nullable;           /* an ancestor is optional */
  bool in_list;            /* a list or repeated field is on the way */
} path_sel;

/* Resolves path (segments separated by dots) against the schema: false
 * when no field has it. top: each top-level field's element and first
 * leaf. Marks want (when not NULL) along the way, for paths in lists. */
static int resolve_path(reader *r, const char *path, const int64_t *top, int64_t n_top,
                        path_sel *out, bool *found, pt_error *err) {
  const pt__pq_file_meta *m = &r->meta;
  *found = false;
  memset(out, 0, sizeof *out);
  int64_t first = 1, count = n_top, chunk = 0; /* the current group's children */
  const char *seg = path;
  for (int depth = 0;; depth++) {
    const char *dot = strchr(seg, '.');
    size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
    int64_t i = first, hit = -1;
    for (int64_t k = 0; k < count; k++) {
      if (depth == 0) {
        i = top[2 * k];
        chunk = top[2 * k + 1];
      }
      const pt__pq_schema_elem *e = &m->schema[i];
      if (e->name.len == (int64_t)len && memcmp(e->name.data, seg, len) == 0) {
        hit = i;
        if (depth == 0) out->top = k;
        break;
      }
      if (depth > 0) PT_RETURN_NOT_OK(walk(r, &i, &chunk, depth + 1, err));
    }
    if (hit < 0) return PT_OK;
    const pt__pq_schema_elem *e = &m->schema[hit];
    out->elem = hit;
    out->chunk = chunk;
    if (!dot) break;
    if (e->num_children == 0) return PT_OK; /* a leaf has no fields */
    if (e->repetition == PT__PQ_OPTIONAL) {
      out->def++;
      out->nullable = true;
    }
    if (e->repetition == PT__PQ_REPEATED || e->logical.kind == PT__LT_LIST ||
        e->logical.kind == PT__LT_MAP || e->converted == PT__CT_LIST ||
        e->converted == PT__CT_MAP || e->converted == PT__CT_MAP_KEY_VALUE)
      out->in_list = true;
    first = hit + 1;
    count = e->num_children;
    seg = dot + 1;
  }
  *found = true;
  return PT_OK;
}

/* Marks the path to sel's element (1) and the subtree below it (2). */
static void mark_want(reader *r, const char *path, const path_sel *sel, const int64_t *top) {
  int64_t i = top[2 * sel->top];
  const char *seg = strchr(path, '.');
  r->want[i] = r->want[i] ? r->want[i] : 1;
  while (seg && i != sel->elem) {
    seg++;
    const char *dot = strchr(seg, '.');
    size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
    int64_t c = i + 1, nc = r->meta.schema[i].num_children;
    for (int64_t k = 0; k < nc; k++) {
      const pt__pq_schema_elem *e = &r->meta.schema[c];
      if (e->name.len == (int64_t)len && memcmp(e->name.data, seg, len) == 0) break;
      int64_t leaves = 0;
      if (walk(r, &c, &leaves, 1, NULL) != PT_OK) return;
    }
    i = c;
    if (r->want[i] == 0) r->want[i] = 1;
    seg = dot;
  }
  int64_t end = i, leaves = 0;
  if (walk(r, &end, &leaves, 1, NULL) != PT_OK) return;
  memset(r->want + i, 2, (size_t)(end - i));
}

/* The stored Arrow field at a struct path below top-level field af (NULL
 * when it does not follow). */
static const struct ArrowSchema *arrow_at(const struct ArrowSchema *af, const char *path) {
  const char *seg = strchr(path, '.');
  while (af && seg) {
    seg++;
    const char *dot = strchr(seg, '.');
    size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
    const struct ArrowSchema *next = NULL;
    for (int64_t k = 0; af->format && strcmp(af->format, "+s") == 0 && k < af->n_children; k++) {
      const char *nm = af->children[k]->name;
      if (nm && strlen(nm) == len && memcmp(nm, seg, len) == 0) next = af->children[k];
    }
    af = next;
    seg = dot;
  }
  return af;
}

static int build_schema(reader *r, const pt_parquet_read_options *opts, pt_error *err) {
  const pt__pq_file_meta *m = &r->meta;
  if (m->n_schema < 1) return pt__errorf(err, PT_EFORMAT, "schema: no elements");
  const pt__pq_schema_elem *root = &m->schema[0];
  int64_t n_top = root->num_children;
  if (n_top < 0 || n_top > m->n_schema)
    return pt__errorf(err, PT_EFORMAT, "schema: root has %lld children", (long long)n_top);
  /* Top-level fields: their element index and first leaf. */
  int64_t *top = pt__arena_alloc(&r->arena, (n_top + 1) * 2 * (int64_t)sizeof(int64_t));
  if (top == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  int64_t i = 1, leaves = 0;
  for (int64_t k = 0; k < n_top; k++) {
    top[2 * k] = i;
    top[2 * k + 1] = leaves;
    PT_RETURN_NOT_OK(walk(r, &i, &leaves, 1, err));
  }
  if (i != m->n_schema)
    return pt__errorf(err, PT_EFORMAT, "schema: %lld elements but the tree holds %lld",
                      (long long)m->n_schema, (long long)i);
  r->n_leaves = leaves;

  struct ArrowSchema stored;
  stored_arrow_schema(r, &stored);
  bool stored_ok = stored.release != NULL && stored.n_children == n_top;

  /* The columns to read, in order. */
  int64_t n_cols = opts && opts->columns ? opts->n_columns : n_top;
  if (n_cols < 0) n_cols = 0;
  r->cols = pt__arena_alloc(&r->arena, (n_cols > 0 ? n_cols : 1) * (int64_t)sizeof(node));
  if (r->cols == NULL) {
    if (stored.release) stored.release(&stored);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  int rc = PT_OK;
  /* Each column: a top-level field by name, else a dotted path below one.
   * A path through structs only gives its field as a column of its own,
   * null where a struct above it is (pyarrow's read_table); a path through
   * a list keeps its top-level field with only the fields on the paths
   * asked for (pyarrow's ParquetFile.read), one column for all of them. */
  path_sel *sel = pt__arena_alloc(&r->arena, (n_cols > 0 ? n_cols : 1) * (int64_t)sizeof(path_sel));
  int64_t *tops = pt__arena_alloc(&r->arena, (n_cols > 0 ? n_cols : 1) * (int64_t)sizeof(int64_t));
  if (sel == NULL || tops == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t k = 0; k < n_cols && rc == PT_OK; k++) {
    tops[k] = k;
    sel[k].elem = -1;
    if (!(opts && opts->columns)) continue;
    const char *want = opts->columns[k];
    tops[k] = -1;
    for (int64_t j = 0; j < n_top && want; j++) {
      const pt__pq_schema_elem *e = &m->schema[top[2 * j]];
      if ((int64_t)strlen(want) == e->name.len && memcmp(want, e->name.data, (size_t)e->name.len) == 0) {
        tops[k] = j;
        break;
      }
    }
    bool found = false;
    if (tops[k] < 0 && want && strchr(want, '.'))
      rc = resolve_path(r, want, top, n_top, &sel[k], &found, err);
    if (rc == PT_OK && tops[k] < 0 && !found) {
      rc = want && strchr(want, '.')
               ? pt__errorf(err, PT_EINVAL, "no column '%s' in the file (name struct fields as "
                            "'a.b', fields in lists as 'a.list.element.b'); see its schema with "
                            "`protium cat --schema`", want)
               : pt__errorf(err, PT_EINVAL, "no column '%s' in the file; see its schema with "
                            "`protium cat --schema`", want ? want : "(null)");
      break;
    }
    if (rc == PT_OK && found && sel[k].in_list) {
      if (r->want == NULL) {
        r->want = pt__arena_alloc(&r->arena, m->n_schema);
        if (r->want == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
        else memset(r->want, 0, (size_t)m->n_schema);
      }
      if (rc == PT_OK) mark_want(r, want, &sel[k], top);
    }
  }
  int64_t made = 0;
  for (int64_t k = 0; k < n_cols && rc == PT_OK; k++) {
    bool in_list = tops[k] < 0 && sel[k].in_list;
    int64_t t = tops[k] >= 0 ? tops[k] : sel[k].top;
    bool dup = false;
    for (int64_t j = 0; in_list && j < k; j++) dup = dup || (tops[j] < 0 && sel[j].in_list && sel[j].top == t);
    if (dup) continue; /* one column for every path below the same list */
    const struct ArrowSchema *af = NULL;
    const pt__pq_schema_elem *te = &m->schema[top[2 * t]];
    if (stored_ok) {
      af = stored.children[t];
      if (af->name == NULL || !name_is(&te->name, af->name)) af = NULL;
    }
    node *n = &r->cols[made++];
    if (tops[k] >= 0 || in_list) {
      int64_t at = top[2 * t], chunk = top[2 * t + 1];
      rc = make_node(r, &at, 0, 0, 0, &chunk, af, false, n, 0, err);
    } else {
      int64_t at = sel[k].elem, chunk = sel[k].chunk;
      rc = make_node(r, &at, sel[k].def, 0, 0, &chunk, arrow_at(af, opts->columns[k]), false, n, 0,
                     err);
      if (rc == PT_OK) n->nullable = n->nullable || sel[k].nullable;
    }
  }
  n_cols = made;
  r->n_cols = n_cols;
  for (int64_t k = 0; k < n_cols && rc == PT_OK; k++) mark_levels(r, &r->cols[k]);
  r->flat = r->n_sel > 0;
  for (int64_t j = 0; j < r->n_sel; j++) r->flat = r->flat && !r->leaves[j]->nested;
  /* Columns asked for as dictionaries (those not selected are ignored). */
  for (int64_t k = 0; opts && opts->dictionary && k < opts->n_dictionary && rc == PT_OK; k++) {
    const char *want = opts->dictionary[k];
    int64_t elem = -1;
    if (want == NULL || find_path(want, r, &elem) == -1 || elem < 0) {
      rc = pt__errorf(err, PT_EINVAL, "dictionary: no column '%s' in the file (name struct "
                      "fields as 'a.b', list elements as 'a.list.element')", want ? want : "(null)");
      break;
    }
    for (int64_t j = 0; j < r->n_sel; j++) {
      leaf *c = r->leaves[j];
      if (c->e != &m->schema[elem]) continue;
      if (c->conv != CV_BINARY)
        rc = pt__errorf(err, PT_EINVAL, "dictionary: column '%s' is not a string or binary "
                        "column; only those are read as dictionaries", want);
      else if (c->view) snprintf(c->format, sizeof c->format, "%s", c->format[1] == 'u' ? "u" : "z");
      c->view = false;
      c->dict_out = true;
    }
  }
  for (int64_t j = 0; opts && opts->plain_binary && j < r->n_sel; j++) {
    leaf *c = r->leaves[j];
    /* Spark writes a table's timestamps as INT96 (its default), and Delta's
     * timestamp is microseconds since the epoch in UTC: no nanoseconds to
     * lose, and the table's type rather than pyarrow's timestamp[ns]. */
    if (c->conv == CV_INT96 && strcmp(c->format, "tsn:") == 0) {
      c->ts_div = 1000;
      snprintf(c->format, sizeof c->format, "tsu:UTC");
      continue;
    }
    if (c->conv != CV_BINARY || (!c->large && !c->view) || c->dict_out) continue;
    bool text = c->format[0] == 'u' || c->format[0] == 'U' || strcmp(c->format, "vu") == 0;
    snprintf(c->format, sizeof c->format, "%s", text ? "u" : "z");
    c->large = c->view = false;
  }
  if (rc == PT_OK) rc = pt_schema_init(&r->schema, "+s", "", 0, n_cols, err);
  for (int64_t k = 0; k < n_cols && rc == PT_OK; k++)
    rc = node_schema(&r->cols[k], r->schema.children[k], err);
  /* The file's key-value pairs (but ARROW:schema), then those of the
   * stored schema's metadata (pyarrow's pandas metadata and the user's) that
   * the footer lacks: a writer may put pairs in either place. */
  if (rc == PT_OK) {
    const char *p;
    int32_t ns = pt__md_count(stored_ok ? stored.metadata : NULL, &p);
    if (ns < 0) ns = 0;
    int64_t cap = m->n_kv + ns;
    const char **kv = pt__calloc((size_t)(cap > 0 ? cap : 1) * 2, sizeof *kv);
    int64_t *lens = pt__calloc((size_t)(cap > 0 ? cap : 1) * 2, sizeof *lens);
    int64_t n = 0;
    if (kv == NULL || lens == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t j = 0; j < m->n_kv && rc == PT_OK; j++) {
      if (m->kv[j].key.len == 12 && memcmp(m->kv[j].key.data, "ARROW:schema", 12) == 0) continue;
      kv[n] = (const char *)m->kv[j].key.data;
      lens[n] = m->kv[j].key.len;
      kv[cap + n] = m->kv[j].has_value ? (const char *)m->kv[j].value.data : "";
      lens[cap + n] = m->kv[j].has_value ? m->kv[j].value.len : 0;
      n++;
    }
    int64_t from_footer = n;
    for (int32_t j = 0; j < ns && rc == PT_OK; j++) {
      pt__md_pair e = pt__md_next(&p);
      bool dup = false;
      for (int64_t q = 0; q < from_footer && !dup; q++)
        dup = lens[q] == e.key_len && memcmp(kv[q], e.key, (size_t)e.key_len) == 0;
      if (dup) continue;
      kv[n] = e.key;
      lens[n] = e.key_len;
      kv[cap + n] = e.value;
      lens[cap + n] = e.value_len;
      n++;
    }
    if (rc == PT_OK && n > 0)
      rc = pt_schema_set_metadata_n(&r->schema, n, kv, lens, kv + cap, lens + cap, err);
    pt__free(kv);
    pt__free(lens);
  }
  if (stored.release) stored.release(&stored);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Pages */

/* Asks for transparent huge pages under a large column buffer: filling
 * fresh memory otherwise takes a page fault every 4 KiB, which costs more
 * than decoding plain values into it. Advice only: failure is ignored. */
static void huge_pages(void *p, int64_t len) {
#ifdef MADV_HUGEPAGE
  const uintptr_t huge = (uintptr_t)2 << 20;
  if (len < 2 * (int64_t)huge) return;
  uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1);
  uintptr_t end = ((uintptr_t)p + (uintptr_t)len) & ~(huge - 1);
  if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
  (void)p;
  (void)len;
#endif
}

/* Maps in a buffer that is about to be filled whole (a flat column's, at
 * its row group's size) in one call rather than a fault per page. Advice
 * only: kernels without MADV_POPULATE_WRITE (before 5.14) refuse it. */
static void populate(void *p, int64_t len) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = 4096;
  if (len < 64 * (int64_t)page) return;
  uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)p + (uintptr_t)len) & ~(page - 1);
  if (end > start) (void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)len;
#endif
}

/* Maps in the file's pages of a column chunk about to be read, in one call
 * rather than a fault every 16 pages (the kernel's fault-around). Advice
 * only, as populate. */
static void populate_read(const void *p, int64_t len) {
#ifdef MADV_POPULATE_READ
  const uintptr_t page = 4096;
  if (len < 64 * (int64_t)page) return;
  uintptr_t start = (uintptr_t)p & ~(page - 1);
  uintptr_t end = ((uintptr_t)p + (uintptr_t)len + page - 1) & ~(page - 1);
  (void)madvise((void *)start, end - start, MADV_POPULATE_READ);
#else
  (void)p;
  (void)len;
#endif
}

static int grow_rows(colbuf *b, const leaf *c, int64_t need, pt_error *err) {
  if (need <= b->cap_rows) return PT_OK;
  int64_t cap = b->cap_rows ? b->cap_rows : 1024;
  while (cap < need) cap *= 2;
  /* Once, at the size the row group will take: no chain of copies. */
  if (b->cap_rows == 0 && b->hint_rows >= need) cap = b->hint_rows;
  int64_t vbytes = c->conv == CV_BOOL ? (cap + 7) / 8 + 8
                   : c->conv == CV_BINARY ? (cap + 1) * (c->large ? 8 : 4)
                   : c->conv == CV_NULL ? 0 : cap * c->out_width;
  if (c->conv != CV_NULL) {
    uint8_t *v = pt__realloc(b->values, (size_t)vbytes + 64);
    if (v == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for %lld rows", (long long)cap);
    b->values = v;
    huge_pages(v, vbytes);
    if (cap == b->hint_rows) populate(v, vbytes);
  }
  if (b->validity != NULL) {
    uint8_t *v = pt__realloc(b->validity, (size_t)(cap + 7) / 8 + 8);
    if (v == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for %lld rows", (long long)cap);
    memset(v + (b->cap_rows + 7) / 8, 0, (size_t)((cap + 7) / 8 + 8 - (b->cap_rows + 7) / 8));
    b->validity = v;
  }
  b->cap_rows = cap;
  return PT_OK;
}

static int grow_data(colbuf *b, int64_t extra, pt_error *err) {
  if (b->data_len + extra <= b->data_cap) return PT_OK;
  int64_t cap = b->data_cap ? b->data_cap : 4096;
  while (cap < b->data_len + extra) cap *= 2;
  uint8_t *d = pt__realloc(b->data, (size_t)cap);
  if (d == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for %lld bytes", (long long)cap);
  b->data = d;
  b->data_cap = cap;
  return PT_OK;
}

static void set_offset(colbuf *b, const leaf *c, int64_t row, int64_t v) {
  if (c->large) pt__store_i64(b->values + row * 8, v);
  else pt__store_i32(b->values + row * 4, (int32_t)v);
}

/* Big-endian two's complement to w little-endian bytes (4, 8, 16 or 32). */
static int decimal_from_be(const uint8_t *p, int64_t len, uint8_t *out, int w, pt_error *err) {
  uint8_t fill = len > 0 && (p[0] & 0x80) ? 0xff : 0x00;
  memset(out, fill, (size_t)w);
  if (len > w) {
    for (int64_t i = 0; i < len - w; i++)
      if (p[i] != fill || (p[len - w] & 0x80) != (fill & 0x80))
        return pt__errorf(err, PT_EFORMAT, "decimal of %lld bytes does not fit %d bits", (long long)len,
                          w * 8);
    p += len - w;
    len = w;
  }
  for (int64_t i = 0; i < len; i++) out[i] = p[len - 1 - i];
  return PT_OK;
}

/* One fixed-width physical value to its Arrow slot. */
static void convert_fixed(const leaf *c, const uint8_t *src, uint8_t *dst) {
  switch (c->conv) {
    case CV_COPY: memcpy(dst, src, (size_t)c->out_width); break;
    case CV_NARROW: {
      int32_t v = pt__load_i32(src);
      if (c->out_width == 1) dst[0] = (uint8_t)v;
      else { uint16_t h = (uint16_t)v; memcpy(dst, &h, 2); }
      break;
    }
    case CV_TS_SCALE: {
      int64_t v = pt__load_i64(src);
      v = c->ts_div > 1 ? v / c->ts_div : (int64_t)((uint64_t)v * (uint64_t)c->ts_mul);
      pt__store_i64(dst, v);
      break;
    }
    case CV_INT96: {
      uint64_t nanos = pt__load_u64(src);
      int64_t day = pt__load_i32(src + 8);
      uint64_t v = (uint64_t)(day - 2440588) * UINT64_C(86400000000000) + nanos;
      int64_t s = (int64_t)v;
      s = c->ts_div > 1 ? s / c->ts_div : (int64_t)((uint64_t)s * (uint64_t)c->ts_mul);
      pt__store_i64(dst, s);
      break;
    }
    case CV_DEC_INT: {
      int64_t v = c->phys_width == 4 ? pt__load_i32(src) : pt__load_i64(src);
      if (c->out_width == 4) {
        pt__store_i32(dst, (int32_t)v);
        break;
      }
      pt__store_i64(dst, v);
      for (int k = 8; k < c->out_width; k += 8) pt__store_i64(dst + k, v < 0 ? -1 : 0);
      break;
    }
    default: break;
  }
}

/* Where a page's non-null values come from. */
typedef struct vsrc {
  int enc;
  const uint8_t *p, *end; /* PLAIN */
  int64_t bit;            /* PLAIN booleans: next bit */
  const uint32_t *idx;    /* dictionary indices */
  int64_t k;
  pt__rle_dec rle;        /* RLE booleans */
} vsrc;

/* ------------------------------------------------------------------------ */
/* Dictionary output (leaf.dict_out) */

static uint64_t hash_value(const uint8_t *p, int64_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  memcpy(&w, p + i, (size_t)(n - i));
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
  return h ^ (h >> 29);
}

static int64_t doff(const leaf *c, const colbuf *b, int64_t i) {
  return c->large ? pt__load_i64(b->doffs + i * 8) : pt__load_i32(b->doffs + i * 4);
}

/* *out = the index of value p[0, n) in b's Arrow dictionary, added if new. */
static int memo_find(const leaf *c, colbuf *b, const uint8_t *p, int64_t n, int32_t *out,
                     pt_error *err) {
  if (b->memo_cap <= 2 * b->dn) {
    int64_t cap = b->memo_cap ? b->memo_cap * 2 : 1024;
    int32_t *t = pt__calloc((size_t)cap, sizeof *t);
    if (t == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    for (int64_t i = 0; i < b->dn; i++) {
      int64_t a = doff(c, b, i), e = doff(c, b, i + 1);
      int64_t s = (int64_t)(hash_value(b->data + a, e - a) & (uint64_t)(cap - 1));
      while (t[s] != 0) s = (s + 1) & (cap - 1);
      t[s] = (int32_t)(i + 1);
    }
    pt__free(b->memo);
    b->memo = t;
    b->memo_cap = cap;
  }
  int64_t s = (int64_t)(hash_value(p, n) & (uint64_t)(b->memo_cap - 1));
  for (; b->memo[s] != 0; s = (s + 1) & (b->memo_cap - 1)) {
    int64_t i = b->memo[s] - 1, a = doff(c, b, i), e = doff(c, b, i + 1);
    if (e - a == n && (n == 0 || memcmp(b->data + a, p, (size_t)n) == 0)) {
      *out = (int32_t)i;
      return PT_OK;
    }
  }
  if (b->dn >= INT32_MAX - 1)
    return pt__errorf(err, PT_ERANGE, "more than 2^31 distinct values in one row group");
  int w = c->large ? 8 : 4;
  if (b->dn + 2 > b->dcap) {
    int64_t cap = b->dcap ? b->dcap * 2 : 1024;
    uint8_t *d = pt__realloc(b->doffs, (size_t)cap * (size_t)w);
    if (d == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    if (b->dcap == 0) memset(d, 0, (size_t)w);
    b->doffs = d;
    b->dcap = cap;
  }
  PT_RETURN_NOT_OK(grow_data(b, n, err));
  if (n > 0) memcpy(b->data + b->data_len, p, (size_t)n);
  b->data_len += n;
  if (!c->large && b->data_len > INT32_MAX)
    return pt__errorf(err, PT_ERANGE,
                      "more than 2 GiB of distinct strings in one row group; read fewer columns "
                      "or rewrite the file with smaller row groups");
  if (c->large) pt__store_i64(b->doffs + (b->dn + 1) * 8, b->data_len);
  else pt__store_i32(b->doffs + (b->dn + 1) * 4, (int32_t)b->data_len);
  b->memo[s] = (int32_t)(++b->dn);
  *out = (int32_t)(b->dn - 1);
  return PT_OK;
}

/* The file's dictionary page onto the Arrow dictionary: each value found
 * (or added) once, so that indices then translate through dmap. */
static int map_file_dict(const leaf *c, colbuf *b, pt_error *err) {
  b->dmap = pt__malloc((size_t)(b->dict_n ? b->dict_n : 1) * sizeof *b->dmap);
  if (b->dmap == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t i = 0; i < b->dict_n; i++)
    PT_RETURN_NOT_OK(memo_find(c, b, b->dict_ptr[i], b->dict_len[i], &b->dmap[i], err));
  return PT_OK;
}

/* emit() for leaf.dict_out: indices instead of values. */
static int emit_dict(const leaf *c, colbuf *b, int64_t n, const uint16_t *defs, vsrc *s,
                     pt_error *err) {
  PT_RETURN_NOT_OK(grow_rows(b, c, b->rows + n + 1, err));
  bool dict = s->enc == PT__ENC_RLE_DICTIONARY || s->enc == PT__ENC_PLAIN_DICTIONARY;
  int32_t *idx = (int32_t *)b->values;
  int64_t row = b->rows;
  for (int64_t i = 0; i < n; i++) {
    if (defs != NULL && defs[i] < (uint32_t)c->def_slot) continue; /* no row here */
    bool present = defs == NULL || defs[i] == (uint32_t)c->max_def;
    if (!present && b->validity == NULL) {
      int64_t bytes = (b->cap_rows + 7) / 8 + 8;
      b->validity = pt__malloc((size_t)bytes);
      if (b->validity == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      memset(b->validity, 0, (size_t)bytes);
      for (int64_t j = 0; j < row; j++) pt__bit_set(b->validity, j, 1);
    }
    if (b->validity) pt__bit_set(b->validity, row, present);
    if (!present) {
      idx[row++] = 0;
      b->nulls++;
      continue;
    }
    if (dict) {
      uint32_t ix = s->idx[s->k++];
      if (ix >= (uint64_t)b->dict_n)
        return pt__errorf(err, PT_EFORMAT, "dictionary index %u out of range of %lld values", ix,
                          (long long)b->dict_n);
      idx[row++] = b->dmap[ix];
    } else {
      if (s->end - s->p < 4) return pt__errorf(err, PT_EFORMAT, "BYTE_ARRAY value length cut short");
      uint32_t l = pt__load_u32(s->p);
      if (l > (uint64_t)(s->end - s->p - 4))
        return pt__errorf(err, PT_EFORMAT, "BYTE_ARRAY value of %u bytes but %lld bytes left", l,
                          (long long)(s->end - s->p - 4));
      PT_RETURN_NOT_OK(memo_find(c, b, s->p + 4, l, &idx[row++], err));
      s->p += 4 + l;
    }
  }
  b->rows = row;
  return PT_OK;
}

/* Appends page values: n level entries, defs (NULL: all present), values
 * from src; n_rows of the entries are rows of the leaf (def >= def_slot),
 * n_present of them values. */
static int emit(reader *r, const leaf *c, colbuf *b, int64_t n, const uint16_t *defs, vsrc *s,
                int64_t n_present, int64_t n_rows, pt_error *err) {
  if (c->dict_out) return emit_dict(c, b, n, defs, s, err);
  PT_RETURN_NOT_OK(grow_rows(b, c, b->rows + n_rows + 1, err));
  if (defs == NULL) n_rows = n;
  if (defs != NULL && n_present < n_rows && b->validity == NULL && c->conv != CV_NULL) {
    int64_t bytes = (b->cap_rows + 7) / 8 + 8;
    b->validity = pt__malloc((size_t)bytes);
    if (b->validity == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    memset(b->validity, 0, (size_t)bytes);
    for (int64_t i = 0; i < b->rows; i++) pt__bit_set(b->validity, i, 1);
  }
  bool dict = s->enc == PT__ENC_RLE_DICTIONARY || s->enc == PT__ENC_PLAIN_DICTIONARY;
  /* Checks that PLAIN data holds what it must (BYTE_ARRAY values, decimals
   * among them, are checked one by one: they have no fixed width). */
  if (s->enc == PT__ENC_PLAIN && c->e->type != PT__PQ_BYTE_ARRAY && c->conv != CV_BOOL &&
      c->conv != CV_NULL && (s->end - s->p) / c->phys_width < n_present)
    return pt__errorf(err, PT_EFORMAT, "%lld values need %lld bytes but the page has %lld",
                      (long long)n_present, (long long)n_present * c->phys_width,
                      (long long)(s->end - s->p));
  if (s->enc == PT__ENC_PLAIN && c->conv == CV_BOOL && (s->end - s->p) * 8 < n_present)
    return pt__errorf(err, PT_EFORMAT, "%lld booleans but the page has %lld bytes",
                      (long long)n_present, (long long)(s->end - s->p));
  /* Fixed-width values Arrow stores as Parquet does (ints, floats, dates,
   * timestamps of the same unit): copied without per-value dispatch. */
  if (c->conv == CV_COPY && (c->out_width == 4 || c->out_width == 8) && n_rows == n &&
      (s->enc == PT__ENC_PLAIN || dict)) {
    const int64_t w = c->out_width;
    uint8_t *dst = b->values + b->rows * w;
    const uint8_t *dv = b->dict_fixed;
    int64_t k = 0;
    if (defs == NULL && !dict && b->validity == NULL) {
      memcpy(dst, s->p, (size_t)(n * w)); /* the page's values are the array's */
      s->p += n * w;
      b->rows += n;
      return PT_OK;
    }
    const uint32_t *idx = dict && s->idx ? s->idx + s->k : NULL;
    if (dict) {
      /* Checked first, so that the loops below have no exit. */
      uint32_t top = 0;
      for (int64_t i = 0; i < n_present; i++) top = idx[i] > top ? idx[i] : top;
      if (n_present > 0 && top >= (uint64_t)b->dict_n)
        return pt__errorf(err, PT_EFORMAT, "dictionary index %u out of range of %lld values", top,
                          (long long)b->dict_n);
    }
    if (defs == NULL) {
      if (b->validity) /* bits of earlier nulls: these rows are all valid */
        for (int64_t i = 0; i < n; i++) pt__bit_set(b->validity, b->rows + i, 1);
      if (!dict) memcpy(dst, s->p, (size_t)(n * w));
      else if (w == 8)
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * 8, dv + (int64_t)idx[i] * 8, 8);
      else
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * 4, dv + (int64_t)idx[i] * 4, 4);
      k = n;
    } else {
      uint8_t *valid = b->validity; /* zeroed beyond the rows: ones are set */
      const uint8_t *src = dict ? dv : s->p;
      for (int64_t i = 0; i < n; i++) {
        bool present = defs[i] == (uint32_t)c->max_def;
        int64_t row = b->rows + i;
        if (valid) valid[row >> 3] |= (uint8_t)(present << (row & 7));
        if (!present) {
          memset(dst + i * w, 0, (size_t)w);
          continue;
        }
        int64_t at = dict ? (int64_t)idx[k] : k;
        if (w == 8) memcpy(dst + i * 8, src + at * 8, 8);
        else memcpy(dst + i * 4, src + at * 4, 4);
        k++;
      }
    }
    if (dict) s->k += k;
    else s->p += k * w;
    b->nulls += n - k;
    b->rows += n;
    return PT_OK;
  }
  /* Strings and binary: the bytes of the page's values counted (and
   * checked) first, so that the copy loop neither grows nor dispatches. */
  if (c->conv == CV_BINARY && n_rows == n && (s->enc == PT__ENC_PLAIN || dict)) {
    int64_t total = 0, k = 0;
    const uint8_t *p = s->p;
    for (int64_t i = 0; i < n; i++) {
      if (defs != NULL && defs[i] != (uint32_t)c->max_def) continue;
      if (dict) {
        uint32_t ix = s->idx[s->k + k];
        if (ix >= (uint64_t)b->dict_n)
          return pt__errorf(err, PT_EFORMAT, "dictionary index %u out of range of %lld values", ix,
                            (long long)b->dict_n);
        total += b->dict_len[ix];
      } else {
        if (s->end - p < 4) return pt__errorf(err, PT_EFORMAT, "BYTE_ARRAY value length cut short");
        uint32_t l = pt__load_u32(p);
        if (l > (uint64_t)(s->end - p - 4))
          return pt__errorf(err, PT_EFORMAT, "BYTE_ARRAY value of %u bytes but %lld bytes left", l,
                            (long long)(s->end - p - 4));
        p += 4 + l;
        total += l;
      }
      k++;
    }
    if (!c->large && b->data_len + total > INT32_MAX)
      return pt__errorf(err, PT_ERANGE,
                        "more than 2 GiB of strings in one row group; read fewer columns or "
                        "rewrite the file with smaller row groups");
    /* 32 bytes to spare: a short value is copied as 32 bytes (fixed
     * moves, not a call), where 32 bytes can be read from where it is. */
    PT_RETURN_NOT_OK(grow_data(b, total + 32, err));
    const uint8_t *lim = dict ? b->dict_limit : s->end;
    int64_t row = b->rows;
    if (row == 0) set_offset(b, c, 0, 0);
    int64_t at = b->data_len;
    k = 0;
    for (int64_t i = 0; i < n; i++, row++) {
      bool present = defs == NULL || defs[i] == (uint32_t)c->max_def;
      /* The bitmap is zeroed beyond the rows: only ones are set. */
      if (b->validity) b->validity[row >> 3] |= (uint8_t)(present << (row & 7));
      if (present) {
        const uint8_t *src;
        int64_t len;
        if (dict) {
          uint32_t ix = s->idx[s->k + k];
          src = b->dict_ptr[ix];
          len = b->dict_len[ix];
        } else {
          len = pt__load_u32(s->p);
          src = s->p + 4;
          s->p += 4 + len;
        }
        if (len <= 16 && lim - src >= 32) memcpy(b->data + at, src, 16);
        else if (len <= 32 && lim - src >= 32) memcpy(b->data + at, src, 32);
        else if (len > 0) memcpy(b->data + at, src, (size_t)len);
        at += len;
        k++;
      } else {
        b->nulls++;
      }
      if (c->large) pt__store_i64(b->values + (row + 1) * 8, at);
      else pt__store_i32(b->values + (row + 1) * 4, (int32_t)at);
    }
    if (dict) s->k += k;
    b->data_len = at;
    b->rows = row;
    return PT_OK;
  }
  /* Fixed-width values below lists and structs (or with nulls) kept as
   * they are: one loop without dispatch per value. */
  if (c->conv == CV_COPY && (c->out_width == 4 || c->out_width == 8) &&
      (s->enc == PT__ENC_PLAIN || dict) && defs != NULL) {
    const int64_t w = c->out_width;
    int64_t row = b->rows, k = 0;
    const uint32_t *idx = dict && s->idx ? s->idx + s->k : NULL; /* none when no value is present */
    if (dict)
      for (int64_t i = 0; i < n_present; i++)
        if (idx[i] >= (uint64_t)b->dict_n)
          return pt__errorf(err, PT_EFORMAT, "dictionary index %u out of range of %lld values",
                            idx[i], (long long)b->dict_n);
    const uint8_t *src = dict ? b->dict_fixed : s->p;
    uint8_t *valid = b->validity;
    for (int64_t i = 0; i < n; i++) {
      if (defs[i] < (uint32_t)c->def_slot) continue; /* no row here */
      bool present = defs[i] == (uint32_t)c->max_def;
      /* The bitmap is zeroed beyond the rows: only the ones are set. */
      if (valid) valid[row >> 3] |= (uint8_t)(present << (row & 7));
      uint8_t *dst = b->values + row * w;
      if (!present) {
        memset(dst, 0, (size_t)w);
      } else {
        int64_t at = dict ? (int64_t)idx[k] : k;
        if (w == 8) memcpy(dst, src + at * 8, 8);
        else memcpy(dst, src + at * 4, 4);
        k++;
      }
      row++;
    }
    b->nulls += (row - b->rows) - k;
    if (dict) s->k += k;
    else s->p += k * w;
    b->rows = row;
    return PT_OK;
  }
  int64_t row = b->rows;
  if (c->conv == CV_BINARY && row == 0) set_offset(b, c, 0, 0);
  for (int64_t i = 0; i < n; i++, row++) {
    if (defs != NULL && defs[i] < (uint32_t)c->def_slot) {
      row--; /* null or empty above this leaf: no row here */
      continue;
    }
    bool present = defs == NULL || defs[i] == (uint32_t)c->max_def;
    if (b->validity) pt__bit_set(b->validity, row, present);
    if (!present) {
      b->nulls++;
      if (c->conv == CV_BINARY) set_offset(b, c, row + 1, b->data_len);
      else if (c->conv == CV_BOOL) pt__bit_set(b->values, row, 0);
      else if (c->conv != CV_NULL) memset(b->values + row * c->out_width, 0, (size_t)c->out_width);
      continue;
    }
    if (c->conv == CV_NULL) {
      /* A value where the logical type says there are none. */
      return pt__errorf(err, PT_EFORMAT, "a non-null value in a column of the UNKNOWN (null) type");
    }
    if (c->conv == CV_BOOL) {
      int v;
      if (s->enc == PT__ENC_PLAIN) {
        v = pt__bit_get(s->p, s->bit++);
      } else {
        uint32_t u;
        PT_RETURN_NOT_OK(pt__rle_get(&s->rle, &u, 1, err));
        v = u != 0;
      }
      pt__bit_set(b->values, row, v);
      continue;
    }
    const uint8_t *src;
    int64_t len = c->phys_width;
    if (dict) {
      uint32_t ix = s->idx[s->k++];
      if (ix >= (uint64_t)b->dict_n)
        return pt__errorf(err, PT_EFORMAT, "dictionary index %u out of range of %lld values", ix,
                          (long long)b->dict_n);
      if (b->dict_ptr) {
        src = b->dict_ptr[ix];
        len = b->dict_len[ix];
      } else {
        src = b->dict_fixed + (int64_t)ix * c->phys_width;
      }
    } else if (c->e->type == PT__PQ_BYTE_ARRAY) {
      if (s->end - s->p < 4) return pt__errorf(err, PT_EFORMAT, "BYTE_ARRAY value length cut short");
      uint32_t l = pt__load_u32(s->p);
      if (l > (uint64_t)(s->end - s->p - 4))
        return pt__errorf(err, PT_EFORMAT, "BYTE_ARRAY value of %u bytes but %lld bytes left", l,
                          (long long)(s->end - s->p - 4));
      src = s->p + 4;
      len = l;
      s->p += 4 + l;
    } else {
      src = s->p;
      s->p += c->phys_width;
    }
    if (c->conv == CV_BINARY) {
      PT_RETURN_NOT_OK(grow_data(b, len, err));
      if (len > 0) memcpy(b->data + b->data_len, src, (size_t)len);
      b->data_len += len;
      if (!c->large && b->data_len > INT32_MAX)
        return pt__errorf(err, PT_ERANGE,
                          "more than 2 GiB of strings in one row group; read fewer columns or "
                          "rewrite the file with smaller row groups");
      set_offset(b, c, row + 1, b->data_len);
    } else if (c->conv == CV_DEC_BE) {
      PT_RETURN_NOT_OK(decimal_from_be(src, len, b->values + row * c->out_width, c->out_width, err));
    } else {
      convert_fixed(c, src, b->values + row * c->out_width);
    }
  }
  b->rows = row;
  return PT_OK;
}

static int ensure_u32(uint32_t **p, int64_t *cap, int64_t n, pt_error *err) {
  if (n <= *cap) return PT_OK;
  int64_t c = *cap ? *cap : 1024;
  while (c < n) c *= 2;
  uint32_t *q = pt__realloc(*p, (size_t)c * sizeof *q);
  if (q == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  *p = q;
  *cap = c;
  return PT_OK;
}

static const char *encoding_name(int e) {
  switch (e) {
    case PT__ENC_PLAIN: return "PLAIN";
    case PT__ENC_PLAIN_DICTIONARY: return "PLAIN_DICTIONARY";
    case PT__ENC_RLE: return "RLE";
    case PT__ENC_BIT_PACKED: return "BIT_PACKED";
    case PT__ENC_DELTA_BINARY_PACKED: return "DELTA_BINARY_PACKED";
    case PT__ENC_DELTA_LENGTH_BYTE_ARRAY: return "DELTA_LENGTH_BYTE_ARRAY";
    case PT__ENC_DELTA_BYTE_ARRAY: return "DELTA_BYTE_ARRAY";
    case PT__ENC_RLE_DICTIONARY: return "RLE_DICTIONARY";
    case PT__ENC_BYTE_STREAM_SPLIT: return "BYTE_STREAM_SPLIT";
    default: return "unknown";
  }
}

/* The dictionary page: its values, kept in physical form. */
static int read_dict(reader *r, const leaf *c, colbuf *b, const pt__pq_page_header *h,
                     const uint8_t *body, int64_t len, pt_error *err) {
  if (b->has_dict) return pt__errorf(err, PT_EFORMAT, "a second dictionary page");
  if (h->encoding != PT__ENC_PLAIN && h->encoding != PT__ENC_PLAIN_DICTIONARY)
    return pt__errorf(err, PT_EFORMAT, "dictionary page of encoding %s", encoding_name(h->encoding));
  if (h->num_values < 0) return pt__errorf(err, PT_EFORMAT, "negative dictionary size");
  if (c->conv == CV_BOOL) return pt__errorf(err, PT_EFORMAT, "a dictionary for a boolean column");
  b->has_dict = true;
  if (c->conv == CV_NULL) return PT_OK; /* pyarrow writes an empty one */
  b->dict_n = h->num_values;
  if (c->e->type == PT__PQ_BYTE_ARRAY) {
    /* Every value takes at least its 4-byte length. */
    if (len / 4 < b->dict_n)
      return pt__errorf(err, PT_EFORMAT, "dictionary of %lld values in %lld bytes",
                        (long long)b->dict_n, (long long)len);
    b->dict_ptr = pt__malloc((size_t)(b->dict_n ? b->dict_n : 1) * sizeof *b->dict_ptr);
    b->dict_len = pt__malloc((size_t)(b->dict_n ? b->dict_n : 1) * sizeof *b->dict_len);
    if (b->dict_ptr == NULL || b->dict_len == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    const uint8_t *p = body, *end = body + len;
    for (int64_t i = 0; i < b->dict_n; i++) {
      if (end - p < 4) return pt__errorf(err, PT_EFORMAT, "dictionary value %lld cut short", (long long)i);
      uint32_t l = pt__load_u32(p);
      if (l > (uint64_t)(end - p - 4))
        return pt__errorf(err, PT_EFORMAT, "dictionary value %lld of %u bytes runs past the page",
                          (long long)i, l);
      b->dict_ptr[i] = p + 4;
      b->dict_len[i] = (int32_t)l;
      p += 4 + l;
    }
  } else {
    if (len / c->phys_width < b->dict_n)
      return pt__errorf(err, PT_EFORMAT, "dictionary of %lld values in %lld bytes",
                        (long long)b->dict_n, (long long)len);
    b->dict_fixed = body;
  }
  return PT_OK;
}

/* Whether a page claiming `expected` bytes once decompressed from n bytes is
 * plausible: bounds what we allocate on the word of the header. */
static bool plausible(int codec, const uint8_t *src, int64_t n, int64_t expected) {
  switch (codec) {
    case PT__CODEC_UNCOMPRESSED: return expected == n;
    case PT__CODEC_LZ4_RAW: return expected <= n * 256 + 64;
    case PT__CODEC_GZIP: return expected <= n * 1100 + 1024;
    default: return expected <= n * 65536 + 1024 || expected <= (64 << 20);
  }
  (void)src;
}

/* A page's values stay below this once made PLAIN: bounds what a few bytes of
 * DELTA_BYTE_ARRAY prefixes can expand to. */
#define MAX_PLAIN_PAGE ((int64_t)256 << 20)

static int ensure_i64(int64_t **p, int64_t *cap, int64_t n, pt_error *err) {
  if (n <= *cap) return PT_OK;
  int64_t c = *cap ? *cap : 1024;
  while (c < n) c *= 2;
  int64_t *q = pt__realloc(*p, (size_t)c * sizeof *q);
  if (q == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  *p = q;
  *cap = c;
  return PT_OK;
}

static int plain_put(reader *r, const void *data, int64_t n, pt_error *err) {
  if ((int64_t)r->sc->plain.len + n > MAX_PLAIN_PAGE)
    return pt__errorf(err, PT_EFORMAT, "page values expand to more than %lld bytes",
                      (long long)MAX_PLAIN_PAGE);
  if (pt__buf_append(&r->sc->plain, data, (size_t)n) != PT_OK)
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  return PT_OK;
}

/* Byte-array values given by n lengths and the bytes that follow them at
 * *p: appended as PLAIN (4-byte length, bytes). */
static int lengths_to_plain(reader *r, const int64_t *lens, int64_t n, const uint8_t *p,
                            const uint8_t *end, pt_error *err) {
  for (int64_t i = 0; i < n; i++) {
    if (lens[i] < 0 || lens[i] > end - p)
      return pt__errorf(err, PT_EFORMAT, "value %lld of %lld bytes runs past the page", (long long)i,
                        (long long)lens[i]);
    uint8_t lb[4];
    pt__store_u32(lb, (uint32_t)lens[i]);
    PT_RETURN_NOT_OK(plain_put(r, lb, 4, err));
    PT_RETURN_NOT_OK(plain_put(r, p, lens[i], err));
    p += lens[i];
  }
  return PT_OK;
}

/* DELTA_* and BYTE_STREAM_SPLIT values (n of them) made PLAIN in r->sc->plain. */
static int to_plain(reader *r, const leaf *c, int enc, const uint8_t *vals, int64_t len, int64_t n,
                    pt_error *err) {
  r->sc->plain.len = 0;
  int phys = c->e->type;
  int64_t used;
  switch (enc) {
    case PT__ENC_DELTA_BINARY_PACKED: {
      if (phys != PT__PQ_INT32 && phys != PT__PQ_INT64)
        return pt__errorf(err, PT_EFORMAT, "DELTA_BINARY_PACKED in a column that is not INT32/INT64");
      PT_RETURN_NOT_OK(ensure_i64(&r->sc->deltas, &r->sc->deltas_cap, n, err));
      PT_RETURN_NOT_OK(pt__delta_decode(vals, len, n, r->sc->deltas, &used, err));
      if (pt__buf_reserve(&r->sc->plain, (size_t)n * 8) != PT_OK)
        return pt__errorf(err, PT_ENOMEM, "out of memory");
      for (int64_t i = 0; i < n; i++) {
        if (phys == PT__PQ_INT32) pt__store_i32(r->sc->plain.data + i * 4, (int32_t)r->sc->deltas[i]);
        else pt__store_i64(r->sc->plain.data + i * 8, r->sc->deltas[i]);
      }
      r->sc->plain.len = (size_t)n * (phys == PT__PQ_INT32 ? 4 : 8);
      return PT_OK;
    }
    case PT__ENC_DELTA_LENGTH_BYTE_ARRAY:
      if (phys != PT__PQ_BYTE_ARRAY)
        return pt__errorf(err, PT_EFORMAT, "DELTA_LENGTH_BYTE_ARRAY in a column that is not BYTE_ARRAY");
      PT_RETURN_NOT_OK(ensure_i64(&r->sc->deltas, &r->sc->deltas_cap, n, err));
      PT_RETURN_NOT_OK(pt__delta_decode(vals, len, n, r->sc->deltas, &used, err));
      return lengths_to_plain(r, r->sc->deltas, n, vals + used, vals + len, err);
    case PT__ENC_DELTA_BYTE_ARRAY: {
      if (phys != PT__PQ_BYTE_ARRAY && phys != PT__PQ_FIXED_LEN_BYTE_ARRAY)
        return pt__errorf(err, PT_EFORMAT, "DELTA_BYTE_ARRAY in a column of fixed-width numbers");
      PT_RETURN_NOT_OK(ensure_i64(&r->sc->deltas, &r->sc->deltas_cap, n, err));
      PT_RETURN_NOT_OK(ensure_i64(&r->sc->deltas2, &r->sc->deltas2_cap, n, err));
      int64_t used2;
      PT_RETURN_NOT_OK(pt__delta_decode(vals, len, n, r->sc->deltas, &used, err));
      PT_RETURN_NOT_OK(pt__delta_decode(vals + used, len - used, n, r->sc->deltas2, &used2, err));
      const uint8_t *p = vals + used + used2, *end = vals + len;
      int64_t prev_at = -1, prev_len = 0;
      for (int64_t i = 0; i < n; i++) {
        int64_t pre = r->sc->deltas[i], suf = r->sc->deltas2[i];
        if (pre < 0 || pre > prev_len || suf < 0 || suf > end - p)
          return pt__errorf(err, PT_EFORMAT, "DELTA_BYTE_ARRAY value %lld: prefix %lld of %lld, suffix %lld",
                            (long long)i, (long long)pre, (long long)prev_len, (long long)suf);
        int64_t l = pre + suf;
        if (phys == PT__PQ_FIXED_LEN_BYTE_ARRAY && l != c->phys_width)
          return pt__errorf(err, PT_EFORMAT, "DELTA_BYTE_ARRAY value of %lld bytes in a column of %d",
                            (long long)l, c->phys_width);
        if (phys == PT__PQ_BYTE_ARRAY) {
          uint8_t lb[4];
          pt__store_u32(lb, (uint32_t)l);
          PT_RETURN_NOT_OK(plain_put(r, lb, 4, err));
        }
        int64_t at = (int64_t)r->sc->plain.len;
        if (pre > 0) {
          if (pt__buf_reserve(&r->sc->plain, (size_t)pre) != PT_OK || at + pre > MAX_PLAIN_PAGE)
            return pt__errorf(err, PT_EFORMAT, "page values expand past %lld bytes", (long long)MAX_PLAIN_PAGE);
          memcpy(r->sc->plain.data + at, r->sc->plain.data + prev_at, (size_t)pre);
          r->sc->plain.len += (size_t)pre;
        }
        PT_RETURN_NOT_OK(plain_put(r, p, suf, err));
        p += suf;
        prev_at = at;
        prev_len = l;
      }
      return PT_OK;
    }
    case PT__ENC_BYTE_STREAM_SPLIT: {
      int k = c->phys_width;
      if (phys == PT__PQ_BOOLEAN || phys == PT__PQ_BYTE_ARRAY || phys == PT__PQ_INT96 || k <= 0)
        return pt__errorf(err, PT_EFORMAT, "BYTE_STREAM_SPLIT in a column without fixed-width values");
      if (len / k < n)
        return pt__errorf(err, PT_EFORMAT, "BYTE_STREAM_SPLIT of %lld values in %lld bytes",
                          (long long)n, (long long)len);
      if (pt__buf_reserve(&r->sc->plain, (size_t)(n * k)) != PT_OK)
        return pt__errorf(err, PT_ENOMEM, "out of memory");
      uint8_t *o = (uint8_t *)r->sc->plain.data;
      for (int j = 0; j < k; j++)
        for (int64_t i = 0; i < n; i++) o[i * k + j] = vals[(int64_t)j * n + i];
      r->sc->plain.len = (size_t)(n * k);
      return PT_OK;
    }
    default:
      return pt__errorf(err, PT_ENOTSUP, "encoding %s (%d) is not supported", encoding_name(enc), enc);
  }
}

/* A compressed data page of PLAIN fixed-width values that Arrow keeps as
 * they are, in a flat column without nulls so far and in this page:
 * decompressed straight into the column's values, not through page_buf and
 * a copy. A v1 page's definition levels come first in the same compressed
 * block: the block goes to where they end just before the new rows, the
 * bytes it covers there are put back, and the levels are checked to be all
 * present. *done = false leaves the page to the usual path (the column's
 * rows unchanged), as does anything unexpected, which that path reports. */
static int decompress_direct(reader *r, const leaf *c, colbuf *b, int codec,
                             const pt__pq_page_header *h, bool v2, const uint8_t *body, int64_t n,
                             bool *done, pt_error *err) {
  *done = false;
  const int64_t w = c->out_width;
  if (codec == PT__CODEC_UNCOMPRESSED || h->encoding != PT__ENC_PLAIN || c->conv != CV_COPY ||
      (w != 4 && w != 8) || c->phys_width != w || c->nested || c->dict_out || b->validity != NULL ||
      n == 0)
    return PT_OK;
  const int bw = pt__bit_width((uint64_t)c->max_def);
  const int64_t clen = h->compressed_size, ulen = h->uncompressed_size;
  if (v2) {
    int64_t off = (int64_t)h->rep_length + h->def_length;
    if (!h->is_compressed || h->num_nulls != 0 || h->rep_length != 0 || h->def_length < 0 ||
        off > clen || ulen - off != n * w || !plausible(codec, body + off, clen - off, ulen - off))
      return PT_OK;
    if (c->max_def > 0 && !pt__rle_single_run(body, h->def_length, bw, (uint32_t)c->max_def, n))
      return PT_OK;
    PT_RETURN_NOT_OK(grow_rows(b, c, b->rows + n + 1, err));
    PT_RETURN_NOT_OK(pt__pq_decompress_ctx(&r->sc->dctx, codec, body + off, clen - off,
                                           b->values + b->rows * w, n * w, err));
    b->rows += n;
    *done = true;
    return PT_OK;
  }
  int64_t lead = ulen - n * w; /* the levels' bytes, if there are no nulls */
  if (c->max_def == 0 ? lead != 0 : (lead < 5 || lead > 64 || h->def_encoding != PT__ENC_RLE))
    return PT_OK;
  if (b->rows * w < lead || !plausible(codec, body, clen, ulen)) return PT_OK;
  PT_RETURN_NOT_OK(grow_rows(b, c, b->rows + n + 1, err));
  uint8_t *at = b->values + b->rows * w - lead;
  uint8_t saved[64], levels[64];
  memcpy(saved, at, (size_t)lead);
  int rc = pt__pq_decompress_ctx(&r->sc->dctx, codec, body, clen, at, ulen, err);
  memcpy(levels, at, (size_t)lead);
  memcpy(at, saved, (size_t)lead);
  if (rc != PT_OK) return rc;
  if (lead > 0 && (pt__load_u32(levels) != (uint32_t)(lead - 4) ||
                   !pt__rle_single_run(levels + 4, lead - 4, bw, (uint32_t)c->max_def, n)))
    return PT_OK; /* nulls after all: decoded again the usual way */
  b->rows += n;
  *done = true;
  return PT_OK;
}

/* A flat chunk whose rows are all in this one uncompressed PLAIN page of
 * 4- or 8-byte values that Arrow keeps as they are, without nulls, and
 * whose values lie in the mapped file at a multiple of their width: the
 * column's buffer is the file itself (b->file_values), not a copy. The
 * mapping's base is page-aligned, so the file offset decides the
 * alignment. False: the page is decoded the usual way, into a copy. */
static bool zero_copy(reader *r, const leaf *c, colbuf *b, const pt__pq_column_meta *m,
                      const pt__pq_page_header *h, bool v2, const uint8_t *body, int64_t n,
                      int64_t values_left, int64_t rg_rows) {
  const int64_t w = c->out_width;
  if (!r->mapped || r->region == NULL || m->codec != PT__CODEC_UNCOMPRESSED ||
      h->encoding != PT__ENC_PLAIN || c->conv != CV_COPY || (w != 4 && w != 8) ||
      c->phys_width != w || c->nested || c->max_rep != 0 || c->dict_out || n == 0 ||
      n != rg_rows || n != values_left || b->rows != 0 || b->values != NULL ||
      b->validity != NULL || h->compressed_size != h->uncompressed_size)
    return false;
  const int64_t len = h->compressed_size;
  const int bw = pt__bit_width((uint64_t)c->max_def);
  const uint8_t *vals;
  if (v2) {
    int64_t off = (int64_t)h->rep_length + h->def_length;
    if (h->num_nulls != 0 || h->rep_length != 0 || h->def_length < 0 || off > len) return false;
    if (c->max_def > 0 && !pt__rle_single_run(body, h->def_length, bw, (uint32_t)c->max_def, n))
      return false;
    vals = body + off;
  } else if (c->max_def > 0) {
    if (h->def_encoding != PT__ENC_RLE || len < 4) return false;
    uint32_t l = pt__load_u32(body);
    if (l > (uint64_t)(len - 4) ||
        !pt__rle_single_run(body + 4, l, bw, (uint32_t)c->max_def, n))
      return false;
    vals = body + 4 + l;
  } else {
    vals = body;
  }
  if (body + len - vals < n * w || (uintptr_t)vals % (uintptr_t)w != 0) return false;
  b->file_values = vals;
  b->rows = n;
  r->sc->pages_zero_copy++;
  return true;
}

/* Whether rows [start, end) meet a range of keep. */
static bool ranges_meet(const pt__row_ranges *keep, int64_t start, int64_t end) {
  int64_t lo = 0, hi = keep->n;
  while (lo < hi) { /* the first range ending after start */
    int64_t mid = (lo + hi) / 2;
    if (keep->v[2 * mid + 1] <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < keep->n && keep->v[2 * lo] < end;
}

/* keep: NULL, or (flat columns) the rows to keep: data pages holding none
 * of them are passed over without being decompressed or decoded. */
static int read_chunk(reader *r, int64_t rg, const leaf *c, colbuf *b, int64_t rg_rows,
                      const pt__row_ranges *keep, int64_t *page_no, pt_error *err) {
  const pt__pq_row_group *g = &r->meta.row_groups[rg];
  const pt__pq_column_chunk *cc = &g->columns[c->chunk];
  if (cc->encrypted) return pt__errorf(err, PT_ENOTSUP, "encrypted columns are not supported");
  if (cc->has_file_path)
    return pt__errorf(err, PT_ENOTSUP, "column data in another file (file_path) is not supported");
  if (!cc->has_meta) return pt__errorf(err, PT_EFORMAT, "column chunk without metadata");
  const pt__pq_column_meta *m = &cc->meta;
  if (m->type != c->e->type)
    return pt__errorf(err, PT_EFORMAT, "chunk type %d differs from the schema's %d", m->type, c->e->type);
  if (rg_rows == 0) return PT_OK; /* writers leave empty chunks' offsets at 0 */
  int64_t start = m->data_page_offset;
  if (m->has_dictionary_page_offset && m->dictionary_page_offset > 0 &&
      m->dictionary_page_offset < start)
    start = m->dictionary_page_offset;
  int64_t limit = r->size - 8; /* the footer follows */
  int64_t end;
  if (start < 4 || m->total_compressed_size < 0 ||
      pt__add_overflow(start, m->total_compressed_size, &end) || end > limit)
    return pt__errorf(err, PT_EFORMAT, "chunk at %lld of %lld bytes lies outside the file",
                      (long long)start, (long long)m->total_compressed_size);
  if (m->num_values < 0) return pt__errorf(err, PT_EFORMAT, "negative number of values");
  if (r->mapped && keep == NULL) populate_read(r->data + start, end - start);
  int64_t values_left = m->num_values;
  int64_t pos = start;
  /* The column's size from the row group's rows, but no more than the
   * chunk's bytes could hold (8 values a byte): a footer's claim alone
   * never decides an allocation. */
  int64_t bound = m->total_compressed_size < (INT64_MAX - 1024) / 8
                      ? m->total_compressed_size * 8 + 1024 : INT64_MAX;
  if (!c->nested) {
    b->hint_rows = rg_rows + 1 < bound ? rg_rows + 1 : bound;
  } else {
    /* Below lists and structs a leaf has at most one row per level entry:
     * its values and its levels are sized once from the chunk's entries
     * (bounded alike), not grown through a chain of copies. */
    b->hint_rows = m->num_values + 1 < bound ? m->num_values + 1 : bound;
    if (c->keep_levels && b->cap_levels == 0 && m->num_values > 0) {
      int64_t cap = m->num_values < bound ? m->num_values : bound;
      b->defs = pt__malloc((size_t)cap * sizeof *b->defs);
      b->reps = pt__malloc((size_t)cap * sizeof *b->reps);
      if (b->defs == NULL || b->reps == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      b->cap_levels = cap;
    }
  }
  *page_no = 0;
  while (values_left > 0 || (!c->nested && pos < end && b->seen < rg_rows)) {
    if (pos >= end)
      return pt__errorf(err, PT_EFORMAT, "chunk ends with %lld of its values missing",
                        (long long)values_left);
    pt__pq_page_header h;
    int64_t used;
    PT_RETURN_NOT_OK(pt__pq_decode_page_header(r->data + pos, end - pos, &h, &used, err));
    const uint8_t *body = r->data + pos + used;
    if (h.compressed_size > end - pos - used)
      return pt__errorf(err, PT_EFORMAT, "page of %d bytes runs past the chunk's end",
                        h.compressed_size);
    pos += used + h.compressed_size;
    int64_t clen = h.compressed_size, ulen = h.uncompressed_size;
    if (h.type == PT__PAGE_INDEX) {
      (*page_no)++;
      continue;
    }
    if (h.type == PT__PAGE_DICTIONARY) {
      if (!h.has_dict) return pt__errorf(err, PT_EFORMAT, "dictionary page without its header");
      if (b->has_dict || b->dict_page != NULL)
        return pt__errorf(err, PT_EFORMAT, "a second dictionary page");
      const uint8_t *dbody = body;
      if (m->codec != PT__CODEC_UNCOMPRESSED) {
        if (!plausible(m->codec, body, clen, ulen))
          return pt__errorf(err, PT_EFORMAT, "page claims %lld bytes from %lld compressed",
                            (long long)ulen, (long long)clen);
        /* 32 bytes to spare: short values are copied 32 bytes at a time. */
        /* Into memory kept for the next chunk's dictionary, not a new
         * allocation (up to 1 MiB of fresh pages) per chunk. */
        scratch *sc = r->sc;
        if (ulen + 32 > sc->dict_cap) {
          pt__free(sc->dict_buf);
          sc->dict_cap = 0;
          sc->dict_buf = pt__malloc((size_t)ulen + 32);
          if (sc->dict_buf == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
          sc->dict_cap = ulen + 32;
        }
        b->dict_page = sc->dict_buf;
        PT_RETURN_NOT_OK(pt__pq_decompress_ctx(&r->sc->dctx, m->codec, body, clen, b->dict_page, ulen, err));
        dbody = b->dict_page;
        b->dict_limit = b->dict_page + ulen + 32;
      } else if (clen != ulen) {
        return pt__errorf(err, PT_EFORMAT, "uncompressed page of %lld bytes claims %lld",
                          (long long)clen, (long long)ulen);
      } else {
        b->dict_limit = r->data + r->size;
      }
      PT_RETURN_NOT_OK(read_dict(r, c, b, &h, dbody, ulen, err));
      if (c->dict_out) PT_RETURN_NOT_OK(map_file_dict(c, b, err));
      (*page_no)++;
      continue;
    }
    if (h.type != PT__PAGE_DATA && h.type != PT__PAGE_DATA_V2)
      return pt__errorf(err, PT_EFORMAT, "unknown page type %d", h.type);
    bool v2 = h.type == PT__PAGE_DATA_V2;
    if ((v2 && !h.has_data_v2) || (!v2 && !h.has_data))
      return pt__errorf(err, PT_EFORMAT, "data page without its header");
    int64_t n = h.num_values;
    int64_t room = c->nested ? values_left : (values_left < rg_rows - b->seen ? values_left : rg_rows - b->seen);
    if (n < 0 || n > room)
      return pt__errorf(err, PT_EFORMAT, "page of %lld values where %lld remain", (long long)n,
                        (long long)room);
    if (keep != NULL) {
      /* Flat: a page's values are its rows. */
      int64_t first = b->seen;
      b->seen += n;
      values_left -= n;
      (*page_no)++;
      if (!ranges_meet(keep, first, first + n)) {
        r->sc->pages_skipped++;
        continue;
      }
      bool merge = b->got.n > 0 && b->got.v[2 * b->got.n - 1] == first;
      if (merge) {
        b->got.v[2 * b->got.n - 1] = first + n;
      } else {
        if (pt__grow((void **)&b->got.v, &b->got.cap, 2 * b->got.n + 2, sizeof *b->got.v) != PT_OK)
          return pt__errorf(err, PT_ENOMEM, "out of memory");
        b->got.v[2 * b->got.n] = first;
        b->got.v[2 * b->got.n + 1] = first + n;
        b->got.n++;
      }
      (*page_no)--;
      values_left += n; /* counted again below, once decoded */
    } else {
      b->seen += n;
    }
    r->sc->pages_read++;
    if (keep == NULL && zero_copy(r, c, b, m, &h, v2, body, n, values_left, rg_rows)) {
      values_left -= n;
      (*page_no)++;
      continue;
    }
    if (keep == NULL) {
      bool done;
      PT_RETURN_NOT_OK(decompress_direct(r, c, b, m->codec, &h, v2, body, n, &done, err));
      if (done) {
        values_left -= n;
        (*page_no)++;
        continue;
      }
    }
    /* Levels and values, uncompressed. */
    const uint8_t *lv = NULL, *rv = NULL, *vals;
    int64_t lv_len = 0, rv_len = 0, vals_len;
    if (v2) {
      if (h.def_length < 0 || h.rep_length < 0 || (int64_t)h.def_length + h.rep_length > clen ||
          (int64_t)h.def_length + h.rep_length > ulen)
        return pt__errorf(err, PT_EFORMAT, "level lengths (%d, %d) exceed the page", h.rep_length,
                          h.def_length);
      rv = body;
      rv_len = h.rep_length;
      lv = body + h.rep_length;
      lv_len = h.def_length;
      int64_t off = h.rep_length + h.def_length;
      vals = body + off;
      vals_len = clen - off;
      if (h.is_compressed && m->codec != PT__CODEC_UNCOMPRESSED) {
        int64_t want = ulen - off;
        if (!plausible(m->codec, vals, vals_len, want))
          return pt__errorf(err, PT_EFORMAT, "page claims %lld bytes from %lld compressed",
                            (long long)want, (long long)vals_len);
        if (want > r->sc->page_cap) {
          uint8_t *nb = pt__realloc(r->sc->page_buf, (size_t)want);
          if (nb == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
          r->sc->page_buf = nb;
          r->sc->page_cap = want;
        }
        PT_RETURN_NOT_OK(pt__pq_decompress_ctx(&r->sc->dctx, m->codec, vals, vals_len, r->sc->page_buf, want, err));
        vals = r->sc->page_buf;
        vals_len = want;
      }
    } else {
      const uint8_t *p = body;
      int64_t plen = clen;
      if (m->codec != PT__CODEC_UNCOMPRESSED) {
        if (!plausible(m->codec, body, clen, ulen))
          return pt__errorf(err, PT_EFORMAT, "page claims %lld bytes from %lld compressed",
                            (long long)ulen, (long long)clen);
        if (ulen > r->sc->page_cap) {
          uint8_t *nb = pt__realloc(r->sc->page_buf, (size_t)ulen);
          if (nb == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
          r->sc->page_buf = nb;
          r->sc->page_cap = ulen;
        }
        PT_RETURN_NOT_OK(pt__pq_decompress_ctx(&r->sc->dctx, m->codec, body, clen, r->sc->page_buf, ulen, err));
        p = r->sc->page_buf;
        plen = ulen;
      }
      if (c->max_rep > 0) {
        if (h.rep_encoding != PT__ENC_RLE)
          return pt__errorf(err, PT_ENOTSUP, "repetition levels of encoding %s are not supported",
                            encoding_name(h.rep_encoding));
        if (plen < 4) return pt__errorf(err, PT_EFORMAT, "repetition levels cut short");
        uint32_t l = pt__load_u32(p);
        if (l > (uint64_t)(plen - 4))
          return pt__errorf(err, PT_EFORMAT, "repetition levels of %u bytes exceed the page", l);
        rv = p + 4;
        rv_len = l;
        p += 4 + l;
        plen -= 4 + (int64_t)l;
      }
      if (c->max_def > 0) {
        if (h.def_encoding != PT__ENC_RLE)
          return pt__errorf(err, PT_ENOTSUP, "definition levels of encoding %s are not supported",
                            encoding_name(h.def_encoding));
        if (plen < 4) return pt__errorf(err, PT_EFORMAT, "definition levels cut short");
        uint32_t l = pt__load_u32(p);
        if (l > (uint64_t)(plen - 4))
          return pt__errorf(err, PT_EFORMAT, "definition levels of %u bytes exceed the page", l);
        lv = p + 4;
        lv_len = l;
        p += 4 + l;
        plen -= 4 + (int64_t)l;
      }
      vals = p;
      vals_len = plen;
    }
    /* Levels: straight into the chunk's arrays where the tree needs them,
     * else (definition levels only) into scratch for this page. */
    uint16_t *defs = NULL;
    int64_t present = n, rows = n;
    if (c->keep_levels && b->n_levels + n > b->cap_levels) {
      int64_t cap = b->cap_levels ? b->cap_levels : 1024;
      while (cap < b->n_levels + n) cap *= 2;
      uint16_t *d = pt__realloc(b->defs, (size_t)cap * sizeof *d);
      if (d == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      b->defs = d;
      uint16_t *q = pt__realloc(b->reps, (size_t)cap * sizeof *q);
      if (q == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      b->reps = q;
      b->cap_levels = cap;
    }
    if (c->max_def > 0) {
      uint16_t *dst;
      if (c->keep_levels) {
        dst = b->defs + b->n_levels;
      } else {
        if (n > r->sc->levels_cap) {
          int64_t cap = r->sc->levels_cap ? r->sc->levels_cap : 1024;
          while (cap < n) cap *= 2;
          uint16_t *q = pt__realloc(r->sc->levels, (size_t)cap * sizeof *q);
          if (q == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
          r->sc->levels = q;
          r->sc->levels_cap = cap;
        }
        dst = r->sc->levels;
      }
      int bw = pt__bit_width((uint64_t)c->max_def);
      if (!c->keep_levels && pt__rle_single_run(lv, lv_len, bw, (uint32_t)c->max_def, n)) {
        /* Every value present: nothing to place, nothing to decode. */
      } else {
        pt__rle_dec d;
        pt__rle_init(&d, lv, lv_len, bw);
        int rc = pt__rle_get_levels(&d, dst, n, c->max_def, c->def_slot, &rows, &present, err);
        if (rc != PT_OK) return pt__error_prefix(err, rc, "definition ");
        defs = dst;
      }
    } else if (c->keep_levels) {
      memset(b->defs + b->n_levels, 0, (size_t)n * sizeof *b->defs);
    }
    if (c->keep_levels) {
      if (c->max_rep > 0) {
        pt__rle_dec d;
        pt__rle_init(&d, rv, rv_len, pt__bit_width((uint64_t)c->max_rep));
        int rc = pt__rle_get_levels(&d, b->reps + b->n_levels, n, c->max_rep, 0, NULL, NULL, err);
        if (rc != PT_OK) return pt__error_prefix(err, rc, "repetition ");
      } else {
        memset(b->reps + b->n_levels, 0, (size_t)n * sizeof *b->reps);
      }
      b->n_levels += n;
    }
    vsrc s = {.enc = h.encoding, .p = vals, .end = vals + vals_len};
    switch (h.encoding) {
      case PT__ENC_PLAIN: break;
      case PT__ENC_PLAIN_DICTIONARY:
      case PT__ENC_RLE_DICTIONARY: {
        if (!b->has_dict)
          return pt__errorf(err, PT_EFORMAT, "dictionary-encoded page without a dictionary page");
        if (present > 0) {
          if (vals_len < 1) return pt__errorf(err, PT_EFORMAT, "dictionary indices cut short");
          int bw = vals[0];
          if (bw > 32) return pt__errorf(err, PT_EFORMAT, "dictionary index width %d", bw);
          PT_RETURN_NOT_OK(ensure_u32(&r->sc->indices, &r->sc->indices_cap, present, err));
          pt__rle_dec d;
          pt__rle_init(&d, vals + 1, vals_len - 1, bw);
          PT_RETURN_NOT_OK(pt__rle_get(&d, r->sc->indices, present, err));
        }
        s.idx = r->sc->indices;
        break;
      }
      case PT__ENC_RLE:
        if (c->conv != CV_BOOL)
          return pt__errorf(err, PT_EFORMAT, "RLE values in a column that is not boolean");
        if (vals_len < 4) return pt__errorf(err, PT_EFORMAT, "RLE booleans cut short");
        {
          uint32_t l = pt__load_u32(vals);
          if (l > (uint64_t)(vals_len - 4))
            return pt__errorf(err, PT_EFORMAT, "RLE booleans of %u bytes exceed the page", l);
          pt__rle_init(&s.rle, vals + 4, l, 1);
        }
        break;
      case PT__ENC_DELTA_BINARY_PACKED:
      case PT__ENC_DELTA_LENGTH_BYTE_ARRAY:
      case PT__ENC_DELTA_BYTE_ARRAY:
      case PT__ENC_BYTE_STREAM_SPLIT:
        if (c->conv == CV_BOOL || c->conv == CV_NULL)
          return pt__errorf(err, PT_EFORMAT, "encoding %s in a boolean or null column",
                            encoding_name(h.encoding));
        PT_RETURN_NOT_OK(to_plain(r, c, h.encoding, vals, vals_len, present, err));
        s.enc = PT__ENC_PLAIN;
        /* A thread's scratch has no buffer until a page needs one. */
        s.p = r->sc->plain.data ? (const uint8_t *)r->sc->plain.data : (const uint8_t *)"";
        s.end = s.p + r->sc->plain.len;
        break;
      default:
        return pt__errorf(err, PT_ENOTSUP, "encoding %s (%d) is not supported",
                          encoding_name(h.encoding), h.encoding);
    }
    /* A page without nulls needs no levels to place its values. */
    PT_RETURN_NOT_OK(emit(r, c, b, n, present == n ? NULL : defs, &s, present, rows, err));
    values_left -= n;
    (*page_no)++;
  }
  if (!c->nested && b->seen != rg_rows)
    return pt__errorf(err, PT_EFORMAT, "chunk has %lld values but the row group %lld rows",
                      (long long)b->seen, (long long)rg_rows);
  return PT_OK;
}

static void colbuf_free(colbuf *b) {
  pt__free(b->validity);
  pt__free(b->values);
  pt__free(b->data);
  pt__free(b->dict_ptr);
  pt__free(b->dict_len);
  pt__free(b->defs);
  pt__free(b->reps);
  pt__free(b->doffs);
  pt__free(b->memo);
  pt__free(b->dmap);
  pt__row_ranges_free(&b->got);
  memset(b, 0, sizeof *b);
}

/* The int32 offsets of b's rows as 16-byte string views into b->data (data
 * buffer 0): short values inline, longer ones by prefix and offset. */
static uint8_t *offsets_to_views(const colbuf *b) {
  uint8_t *views = pt__calloc(1, (size_t)(b->rows * 16 + 16));
  if (views == NULL) return NULL;
  for (int64_t i = 0; i < b->rows; i++) {
    int32_t start = pt__load_i32(b->values + i * 4), end = pt__load_i32(b->values + i * 4 + 4);
    uint8_t *v = views + i * 16;
    int32_t len = end - start;
    pt__store_i32(v, len);
    if (len <= 12) {
      if (len > 0) memcpy(v + 4, b->data + start, (size_t)len);
    } else {
      memcpy(v + 4, b->data + start, 4);
      pt__store_i32(v + 8, 0);
      pt__store_i32(v + 12, start);
    }
  }
  return views;
}

/* Moves the indices and dictionary of b into a new dictionary array. */
static int finish_dict_array(const leaf *c, colbuf *b, struct ArrowArray *out, pt_error *err) {
  PT_RETURN_NOT_OK(pt__array_init(out, 2, 0, true, err));
  struct ArrowArray *d = out->dictionary;
  int rc = pt__array_init(d, 3, 0, false, err);
  if (rc != PT_OK) {
    out->dictionary = NULL; /* not initialised: nothing to release */
    out->release(out);
    return rc;
  }
  if (b->values == NULL) b->values = pt__calloc(1, 64);
  if (b->doffs == NULL) b->doffs = pt__calloc(1, 64);
  if (b->data == NULL) b->data = pt__calloc(1, 64);
  if (b->values == NULL || b->doffs == NULL || b->data == NULL) {
    out->release(out);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  out->length = b->rows;
  out->null_count = b->nulls;
  if (b->nulls > 0) {
    pt__array_set_buffer(out, 0, b->validity, true);
    b->validity = NULL;
  }
  pt__array_set_buffer(out, 1, b->values, true);
  b->values = NULL;
  d->length = b->dn;
  pt__array_set_buffer(d, 1, b->doffs, true);
  pt__array_set_buffer(d, 2, b->data, true);
  b->doffs = NULL;
  b->data = NULL;
  return PT_OK;
}

/* Moves the buffers of b into a new array *out; values in the file
 * (b->file_values) stay there, the array holding a reference on region. */
static int finish_array(const leaf *c, colbuf *b, pt__shared *region, struct ArrowArray *out,
                        pt_error *err) {
  if (c->dict_out) return finish_dict_array(c, b, out, err);
  int nb = c->conv == CV_NULL ? 0 : c->view ? 4 : c->conv == CV_BINARY ? 3 : 2;
  PT_RETURN_NOT_OK(pt__array_init(out, nb, 0, false, err));
  out->length = b->rows;
  out->null_count = c->conv == CV_NULL ? b->rows : b->nulls;
  if (c->conv == CV_NULL) return PT_OK;
  if (b->file_values != NULL) {
    pt__array_set_buffer(out, 1, b->file_values, false);
    pt__array_hold(out, region);
    b->file_values = NULL;
    return PT_OK;
  }
  if (b->values == NULL) {
    /* No rows: still a valid (zeroed) buffer. */
    b->values = pt__calloc(1, 64);
    if (b->values == NULL) {
      out->release(out);
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
  }
  if (b->nulls > 0) {
    pt__array_set_buffer(out, 0, b->validity, true);
    b->validity = NULL;
  }
  if (c->conv == CV_BINARY && b->data == NULL) b->data = pt__calloc(1, 64);
  if (c->conv == CV_BINARY && b->data == NULL) {
    out->release(out);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  if (c->view) {
    uint8_t *views = offsets_to_views(b);
    int64_t *sizes = pt__malloc(sizeof(int64_t));
    if (views == NULL || sizes == NULL) {
      pt__free(views);
      pt__free(sizes);
      out->release(out);
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    sizes[0] = b->data_len;
    pt__free(b->values);
    b->values = views;
    pt__array_set_buffer(out, 3, sizes, true);
  }
  pt__array_set_buffer(out, 1, b->values, true);
  b->values = NULL;
  if (c->conv == CV_BINARY) {
    pt__array_set_buffer(out, 2, b->data, true);
    b->data = NULL;
  }
  return PT_OK;
}

/* 64 bits of an Arrow bitmap (bit i in byte i / 8, least significant
 * first) from a word whose bit i is bit i; one store where the host is
 * little-endian. */
static inline void store_bits64(uint8_t *p, uint64_t word) {
  for (int k = 0; k < 8; k++) p[k] = (uint8_t)(word >> (8 * k));
}

/* Assembles node n's array for the row group from the decoded leaves;
 * *len = its rows. Structs and lists take their slots, validity and offsets
 * from the levels of their first leaf in one pass (buffers sized by the
 * levels, which bound the slots). */
static int build_node(reader *r, const node *n, struct ArrowArray *out, int64_t *len,
                      pt_error *err) {
  out->release = NULL;
  if (n->kind == N_LEAF) {
    colbuf *b = &r->bufs[n->first];
    *len = b->rows;
    return finish_array(n->leaf, b, r->region, out, err);
  }
  const colbuf *f = &r->bufs[n->first];
  const int64_t nl = f->n_levels;
  const uint16_t *reps = f->reps, *defs = f->defs;
  int64_t slots = 0, nulls = 0, elements = 0;
  uint8_t *validity = NULL, *offsets = NULL;
  int width = n->large ? 8 : 4;
  int rc = PT_OK;
  if (n->nullable) {
    validity = pt__calloc(1, (size_t)(nl + 7) / 8 + 8);
    if (validity == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  if (rc == PT_OK && n->kind == N_LIST) {
    offsets = pt__malloc((size_t)(nl + 1) * (size_t)width);
    if (offsets == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  const uint16_t nrep = (uint16_t)n->rep, nslot = (uint16_t)n->def_slot,
                 nvalid = (uint16_t)n->def_valid;
  if (rc == PT_OK && n->kind == N_LIST) {
    const node *e = &n->children[0];
    const uint16_t erep = (uint16_t)e->rep, eslot = (uint16_t)e->def_slot;
    int64_t count = 0;
    /* A list's rows start at entries the data decides (a new row every
     * few elements), which a branch mispredicts about one time in three:
     * every entry stores an offset (a slot's stays, the next slot's
     * overwrites the others) and the validity bits gather in a word
     * stored every 64 slots (the bitmap has 8 bytes past its slots). */
    uint64_t word = 0;
    int64_t base = 0; /* the slot of word's bit 0 */
#define LIST_SLOTS(STORE)                                                  \
  for (int64_t i = 0; i < nl; i++) {                                       \
    uint16_t rp = reps[i], df = defs[i];                                   \
    uint64_t is_slot = (rp <= nrep) & (df >= nslot), ok = df >= nvalid;    \
    STORE;                                                                 \
    word |= (is_slot & ok) << (slots - base);                              \
    nulls += (int64_t)(is_slot & !ok);                                     \
    slots += (int64_t)is_slot;                                             \
    count += (rp <= erep) & (df >= eslot);                                 \
    if (slots - base == 64) {                                              \
      if (validity) store_bits64(validity + base / 8, word);               \
      word = 0;                                                            \
      base += 64;                                                          \
    }                                                                      \
  }
    if (n->large) {
      LIST_SLOTS(pt__store_i64(offsets + 8 * slots, count))
    } else {
      LIST_SLOTS(pt__store_i32(offsets + 4 * slots, (int32_t)count))
    }
#undef LIST_SLOTS
    if (validity && slots > base) store_bits64(validity + base / 8, word);
    if (!n->large && count > INT32_MAX)
      rc = pt__errorf(err, PT_ERANGE, "more than 2^31 list elements in a row group");
    if (n->large) pt__store_i64(offsets + 8 * slots, count);
    else pt__store_i32(offsets + 4 * slots, (int32_t)count);
    elements = count;
  } else if (rc == PT_OK) {
    for (int64_t i = 0; i < nl; i++) {
      uint16_t rp = reps[i], df = defs[i];
      if (rp <= nrep && df >= nslot) {
        if (validity) validity[slots >> 3] |= (uint8_t)((df >= nvalid) << (slots & 7));
        nulls += df < nvalid;
        slots++;
      }
    }
  }
  if (!n->nullable) nulls = 0;
  if (rc == PT_OK && validity && nulls == 0) {
    pt__free(validity);
    validity = NULL;
  }
  if (rc == PT_OK) rc = pt__array_init(out, n->kind == N_LIST ? 2 : 1, n->n_children, false, err);
  if (rc != PT_OK) {
    pt__free(validity);
    pt__free(offsets);
    return rc;
  }
  out->length = slots;
  out->null_count = nulls;
  pt__array_set_buffer(out, 0, validity, true);
  if (n->kind == N_LIST) pt__array_set_buffer(out, 1, offsets, true);
  for (int64_t k = 0; k < n->n_children; k++) {
    int64_t clen;
    rc = build_node(r, &n->children[k], out->children[k], &clen, err);
    int64_t want = n->kind == N_LIST ? elements : slots;
    if (rc == PT_OK && clen != want)
      rc = pt__errorf(err, PT_EFORMAT, "'%s' has %lld values where '%s' needs %lld",
                      n->children[k].name, (long long)clen, n->name, (long long)want);
    if (rc != PT_OK) {
      out->release(out);
      return rc;
    }
  }
  *len = slots;
  return PT_OK;
}

/* The rows of keep among those decoded (got, both in row group rows) as
 * bits over the decoded rows; NULL without memory. */
static uint8_t *keep_bits(const pt__row_ranges *got, const pt__row_ranges *keep, int64_t n) {
  uint8_t *bits = pt__calloc(1, (size_t)(n + 7) / 8 + 8);
  if (bits == NULL) return NULL;
  int64_t at = 0, j = 0; /* at: decoded rows before range i */
  for (int64_t i = 0; i < got->n; i++) {
    int64_t s = got->v[2 * i], e = got->v[2 * i + 1];
    while (j < keep->n && keep->v[2 * j + 1] <= s) j++;
    for (int64_t k = j; k < keep->n && keep->v[2 * k] < e; k++) {
      int64_t a = keep->v[2 * k] > s ? keep->v[2 * k] : s;
      int64_t z = keep->v[2 * k + 1] < e ? keep->v[2 * k + 1] : e;
      for (int64_t x = a; x < z; x++) pt__bit_set(bits, at + x - s, 1);
    }
    at += e - s;
  }
  return bits;
}

/* Arrow holds times of day within [0, one day) of their unit (and
 * consumers check it); a file's TIME values are copied as they are, so
 * those past a day are refused here, once the chunk is decoded. */
static int check_times(const leaf *c, const colbuf *b, pt_error *err) {
  if (strncmp(c->format, "tt", 2) != 0) return PT_OK;
  int64_t day = c->format[2] == 'm' ? INT64_C(86400000)
                : c->format[2] == 'u' ? INT64_C(86400000000)
                                      : INT64_C(86400000000000);
  const uint8_t *v = b->file_values ? b->file_values : b->values;
  for (int64_t i = 0; i < b->rows; i++) {
    if (b->validity && !pt__bit_get(b->validity, i)) continue;
    int64_t x = c->out_width == 4 ? pt__load_i32(v + i * 4) : pt__load_i64(v + i * 8);
    if (x < 0 || x >= day)
      return pt__errorf(err, PT_EFORMAT, "TIME value %lld is not within one day (of %lld %cs)",
                        (long long)x, (long long)day, c->format[2]);
  }
  return PT_OK;
}

/* Decodes the column chunk of selected leaf k of L's row group into
 * L->bufs[k]; errors name the row group, column and page, but no page
 * when the chunk was refused before its first page was read. */
static int decode_unit(reader *r, rgload *L, int64_t k, pt_error *err) {
  const pt__pq_row_group *g = &r->meta.row_groups[L->rg];
  const leaf *c = r->leaves[k];
  int64_t page = -1; /* read_chunk sets 0 when it reaches the pages */
  int rc = read_chunk(r, L->rg, c, &L->bufs[k], g->num_rows, L->select ? &L->keep : NULL, &page,
                      err);
  if (rc != PT_OK && page < 0) {
    pt__error_prefix(err, rc, "row group %lld, column '%s': ", (long long)L->rg, c->name);
    return rc;
  }
  if (rc != PT_OK) {
    pt__error_prefix(err, rc, "row group %lld, column '%s', page %lld: ", (long long)L->rg, c->name,
                     (long long)page);
    return rc;
  }
  rc = check_times(c, &L->bufs[k], err);
  if (rc != PT_OK)
    pt__error_prefix(err, rc, "row group %lld, column '%s': ", (long long)L->rg, c->name);
  return rc;
}

static void free_arrays(reader *r, struct ArrowArray **arrays) {
  if (*arrays == NULL) return;
  for (int64_t k = 0; k < r->n_cols; k++)
    if ((*arrays)[k].release) (*arrays)[k].release(&(*arrays)[k]);
  pt__free(*arrays);
  *arrays = NULL;
}

static void free_bufs(reader *r, rgload *L) {
  if (L->bufs == NULL) return;
  for (int64_t k = 0; k < r->n_sel; k++) colbuf_free(&L->bufs[k]);
  pt__free(L->bufs);
  L->bufs = NULL;
}

/* Assembles L's top-level arrays from its decoded leaves (then freed);
 * with keep, down to those rows (flat columns). */
static int finish_row_group(reader *r, rgload *L, pt_error *err) {
  const pt__pq_row_group *g = &r->meta.row_groups[L->rg];
  const int64_t rg = L->rg;
  const pt__row_ranges *keep = L->select ? &L->keep : NULL;
  L->arrays = pt__calloc((size_t)(r->n_cols ? r->n_cols : 1), sizeof *L->arrays);
  int rc = L->arrays ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
  r->bufs = L->bufs; /* build_node finds the leaves there */
  int64_t want = keep ? pt__row_ranges_count(keep) : g->num_rows;
  for (int64_t k = 0; k < r->n_cols && rc == PT_OK; k++) {
    int64_t len;
    rc = build_node(r, &r->cols[k], &L->arrays[k], &len, err);
    if (rc == PT_OK && keep) {
      /* The decoded pages' rows, down to those kept. */
      uint8_t *bits = keep_bits(&L->bufs[r->cols[k].first].got, keep, len);
      struct ArrowArray kept;
      if (bits == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      else rc = pt__array_filter(r->schema.children[k], &L->arrays[k], bits, &kept, err);
      pt__free(bits);
      if (rc == PT_OK) {
        L->arrays[k].release(&L->arrays[k]);
        L->arrays[k] = kept;
        len = kept.length;
      }
    }
    if (rc == PT_OK && len != want)
      rc = pt__errorf(err, PT_EFORMAT, "%lld rows where the row group has %lld%s", (long long)len,
                      (long long)want, keep ? " (after the page index)" : "");
    if (rc != PT_OK)
      pt__error_prefix(err, rc, "row group %lld, column '%s': ", (long long)rg, r->cols[k].name);
  }
  r->bufs = NULL;
  free_bufs(r, L);
  if (rc != PT_OK) free_arrays(r, &L->arrays);
  L->rows = want;
  return rc;
}

static void drop_row_group(reader *r) { free_arrays(r, &r->rg_arrays); }

static void drop_window(reader *r) {
  for (int64_t i = 0; r->win && i < r->n_workers; i++) {
    free_bufs(r, &r->win[i]);
    free_arrays(r, &r->win[i].arrays);
    pt__row_ranges_free(&r->win[i].keep);
  }
  pt__free(r->win);
  r->win = NULL;
  r->win_n = r->win_pos = 0;
}

/* The units of one window (row group i's leaf k is unit i * n_sel + k;
 * ahead, row group i is unit i) shared by the threads: each takes the next
 * from a counter. After a failure no more are taken; those below it were
 * all taken already, so the lowest failing unit is the one a single thread
 * would have met (a whole row group's chunks are decoded in their order). */
typedef struct par {
  reader *r;
  int64_t n_units;
  bool whole;            /* a unit is a row group (ahead), else a column chunk */
  atomic_int_fast64_t next;
  atomic_bool failed;
} par;

typedef struct worker {
  par *p;
  int t;                 /* its scratch */
  int rc;
  int64_t unit;          /* the one that failed, with rc */
  pt_error err;
} worker;

static void *decode_units(void *arg) {
  worker *w = arg;
  par *p = w->p;
  /* Decoding reads only what is fixed once the stream is open (footer,
   * selected leaves) and writes its scratch and its unit's colbuf: each
   * thread works on a copy of the reader with a scratch of its own. */
  reader view = *p->r;
  view.sc = &p->r->scratch[w->t];
  for (;;) {
    if (atomic_load(&p->failed)) break;
    int64_t u = atomic_fetch_add(&p->next, 1);
    if (u >= p->n_units) break;
    int64_t n_sel = p->r->n_sel, k0 = p->whole ? 0 : u % n_sel;
    int64_t k1 = p->whole ? n_sel : k0 + 1;
    rgload *L = &p->r->win[p->whole ? u : u / n_sel];
    int rc = PT_OK;
    for (int64_t k = k0; k < k1 && rc == PT_OK; k++) rc = decode_unit(&view, L, k, &w->err);
    if (rc != PT_OK) {
      w->rc = rc;
      w->unit = u;
      atomic_store(&p->failed, true);
      break;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* The stream */

static int errno_of(int code) {
  switch (code) {
    case PT_ENOMEM: return ENOMEM;
    case PT_EIO: return EIO;
    case PT_ENOTSUP: return ENOSYS;
    default: return EINVAL;
  }
}

/* The column chunk (and, in *elem, the schema element) of a dotted column
 * path; -1 if there is none; -2 if it lies inside a repeated field. */
static int64_t find_path_in(const reader *r, int64_t *i, int64_t *chunk, const char *path,
                            size_t done, bool prefix_ok, bool repeated, int64_t *elem) {
  const pt__pq_schema_elem *e = &r->meta.schema[(*i)++];
  size_t n = (size_t)e->name.len;
  /* prefix_ok: path[0, done) named the ancestors, so path + done is valid. */
  bool here = prefix_ok && strncmp(path + done, (const char *)e->name.data, n) == 0 &&
              memchr(e->name.data, '.', n) == NULL && memchr(e->name.data, '\0', n) == NULL;
  bool rep = repeated || e->repetition == PT__PQ_REPEATED;
  int64_t found = -1;
  if (e->num_children == 0) {
    if (here && path[done + n] == '\0') {
      *elem = *i - 1;
      found = rep ? -2 : *chunk;
    }
    (*chunk)++;
    return found;
  }
  for (int32_t k = 0; k < e->num_children; k++) {
    bool deeper = here && path[done + n] == '.';
    int64_t f = find_path_in(r, i, chunk, path, deeper ? done + n + 1 : 0, deeper, rep, elem);
    if (here && path[done + n] == '.' && f != -1 && found == -1) found = f;
  }
  return found;
}

static int64_t find_path(const char *path, void *arg, int64_t *elem) {
  const reader *r = arg;
  int64_t i = 1, chunk = 0, found = -1;
  *elem = -1;
  for (int32_t k = 0; k < r->meta.schema[0].num_children && i < r->meta.n_schema; k++) {
    int64_t e2 = -1;
    int64_t f = find_path_in(r, &i, &chunk, path, 0, true, false, &e2);
    if (f != -1 && found == -1) {
      found = f;
      *elem = e2;
    }
  }
  return found;
}

static int check_filter_column(const char *path, void *arg, pt_error *err) {
  int64_t elem;
  int64_t f = find_path(path, arg, &elem);
  if (f == -1)
    return pt__errorf(err, PT_EINVAL, "filter: no column '%s' in the file (name struct fields as 'a.b')", path);
  if (f == -2)
    return pt__errorf(err, PT_EINVAL, "filter: column '%s' is inside a list; filters take columns outside lists", path);
  return PT_OK;
}

/* Row groups decoded at once: one, unless a row group has fewer selected
 * column chunks than there are threads (then enough to give each thread
 * one: a file of one column reads two row groups at a time on two); ahead,
 * two: this one and the next. */
static int64_t window_size(const reader *r) {
  if (r->ahead) return 2;
  if (r->n_threads <= 1 || r->n_sel >= r->n_threads || r->n_sel == 0) return 1;
  return (r->n_threads + r->n_sel - 1) / r->n_sel;
}

/* Picks the next row groups the filter keeps (window_size of them) and
 * decodes their column chunks, on r->n_workers threads. A failure after
 * some complete row groups is kept for when they have been handed out, as
 * reading them one at a time would have met it. */
static int load_window(reader *r, pt_error *err) {
  drop_window(r);
  r->win = pt__calloc((size_t)r->n_workers, sizeof *r->win);
  if (r->win == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  pt_error e = {0};
  int rc = PT_OK;
  int64_t want = window_size(r), n = 0;
  while (n < want && r->next_rg < r->end_rg) {
    int64_t rg = r->next_rg++;
    const pt__pq_row_group *g = &r->meta.row_groups[rg];
    if (r->filter && !pt__filter_may_match(r->filter, &r->meta, g, find_path, r)) {
      r->rg_skipped++;
      continue;
    }
    rgload *L = &r->win[n];
    L->rg = rg;
    /* The page indexes of the filter's columns may rule out pages: the
     * other rows of the row group are then not decoded, in any column. */
    if (r->filter && r->flat && g->num_rows > 0) {
      rc = pt__filter_row_ranges(r->filter, &r->meta, g, find_path, r, r->data, r->size, &L->keep,
                                 &e);
      if (rc != PT_OK) {
        pt__error_prefix(&e, rc, "row group %lld: ", (long long)rg);
        break;
      }
      int64_t kept = pt__row_ranges_count(&L->keep);
      if (kept == 0) {
        pt__row_ranges_free(&L->keep);
        r->rg_skipped++;
        continue;
      }
      L->select = kept < g->num_rows;
    }
    if (g->num_rows < 0) {
      rc = pt__errorf(&e, PT_EFORMAT, "row group %lld: negative row count", (long long)rg);
      break;
    }
    if (g->n_columns != r->n_leaves) {
      rc = pt__errorf(&e, PT_EFORMAT, "row group %lld: %lld column chunks for %lld columns",
                      (long long)rg, (long long)g->n_columns, (long long)r->n_leaves);
      break;
    }
    L->bufs = pt__calloc((size_t)(r->n_sel ? r->n_sel : 1), sizeof *L->bufs);
    if (L->bufs == NULL) {
      rc = pt__errorf(&e, PT_ENOMEM, "out of memory");
      break;
    }
    r->rg_read++;
    n++;
  }
  /* The column chunks, on the threads (the calling one among them). */
  par p = {.r = r, .n_units = r->ahead ? n : n * r->n_sel, .whole = r->ahead};
  atomic_init(&p.next, 0);
  atomic_init(&p.failed, false);
  int nt = p.n_units < r->n_workers ? (int)p.n_units : r->n_workers;
  if (nt < 1) nt = 1;
  worker ws[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  bool started[MAX_THREADS] = {false};
  for (int t = 0; t < nt; t++) ws[t] = (worker){.p = &p, .t = t, .rc = PT_OK};
  for (int t = 1; t < nt; t++) started[t] = pthread_create(&th[t], NULL, decode_units, &ws[t]) == 0;
  decode_units(&ws[0]); /* units a thread that did not start left are taken here */
  int64_t ok = n, failed_unit = -1;
  for (int t = 0; t < nt; t++) {
    if (started[t]) pthread_join(th[t], NULL);
    if (ws[t].rc != PT_OK && (failed_unit < 0 || ws[t].unit < failed_unit)) failed_unit = ws[t].unit;
  }
  for (int t = 0; t < nt; t++)
    if (ws[t].rc != PT_OK && ws[t].unit == failed_unit) {
      rc = ws[t].rc;
      e = ws[t].err;
      ok = p.whole ? failed_unit : failed_unit / r->n_sel;
    }
  for (int64_t i = 0; i < ok; i++) {
    int frc = finish_row_group(r, &r->win[i], &e);
    if (frc != PT_OK) {
      rc = frc;
      ok = i;
    }
  }
  for (int64_t i = ok; i < n; i++) free_bufs(r, &r->win[i]);
  r->win_n = ok;
  r->win_pos = 0;
  if (rc == PT_OK) return PT_OK;
  if (ok == 0) {
    if (err) *err = e;
    return rc;
  }
  r->win_rc = rc;
  r->win_err = e;
  return PT_OK;
}

static int next_batch(reader *r, struct ArrowArray *out, pt_error *err) {
  out->release = NULL;
  while (r->rg_arrays == NULL || r->rg_pos >= r->rg_rows) {
    drop_row_group(r);
    if (r->win_pos < r->win_n) {
      rgload *L = &r->win[r->win_pos++];
      r->rg_arrays = L->arrays;
      L->arrays = NULL;
      r->rg_rows = L->rows;
      r->rg_pos = 0;
      continue;
    }
    if (r->win_rc != PT_OK) {
      int rc = r->win_rc;
      r->win_rc = PT_OK;
      if (err) *err = r->win_err;
      return rc;
    }
    if (r->next_rg >= r->end_rg) return PT_OK; /* end */
    PT_RETURN_NOT_OK(load_window(r, err));
  }
  int64_t n = r->rg_rows - r->rg_pos;
  if (n > r->batch_rows) n = r->batch_rows;
  PT_RETURN_NOT_OK(pt__array_init(out, 1, r->n_cols, false, err));
  out->length = n;
  out->null_count = 0;
  for (int64_t k = 0; k < r->n_cols; k++) {
    int rc = pt_array_slice(&r->rg_arrays[k], r->rg_pos, n, out->children[k], err);
    if (rc != PT_OK) {
      out->release(out);
      return rc;
    }
  }
  r->rg_pos += n;
  return PT_OK;
}

static int stream_get_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  reader *r = s->private_data;
  int rc = pt_schema_copy(&r->schema, out, &r->err);
  return rc == PT_OK ? 0 : errno_of(rc);
}

static int stream_get_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  reader *r = s->private_data;
  if (r->done) {
    out->release = NULL;
    return r->err.code ? errno_of(r->err.code) : 0;
  }
  int rc = next_batch(r, out, &r->err);
  if (rc != PT_OK) {
    pt__error_prefix(&r->err, rc, "parquet: %s: ", r->label);
    r->done = true;
    drop_row_group(r);
    return errno_of(rc);
  }
  if (out->release == NULL) r->done = true;
  return 0;
}

static const char *stream_last_error(struct ArrowArrayStream *s) {
  reader *r = s->private_data;
  return r->err.code ? r->err.message : NULL;
}

static void reader_free(reader *r) {
  if (r == NULL) return;
  drop_row_group(r);
  if (r->schema.release) r->schema.release(&r->schema);
  pt__arena_free(&r->arena);
  pt__shared_unref(r->region);
  drop_window(r);
  pt__free(r->leaves);
  pt_parquet_filter_free(r->filter);
  for (int t = 0; r->scratch && t < r->n_workers; t++) {
    scratch *sc = &r->scratch[t];
    pt__free(sc->page_buf);
    pt__free(sc->dict_buf);
    pt__free(sc->levels);
    pt__free(sc->indices);
    pt_buf_free(&sc->plain);
    pt__free(sc->deltas);
    pt__free(sc->deltas2);
    pt__pq_dctx_free(&sc->dctx);
  }
  pt__free(r->scratch);
  pt__free(r->label);
  pt__free(r);
}

static void stream_release(struct ArrowArrayStream *s) {
  if (s->release == NULL) return;
  reader_free(s->private_data);
  s->release = NULL;
  s->private_data = NULL;
}

/* ------------------------------------------------------------------------ */
/* Opening */

static int parse_footer(reader *r, pt_error *err) {
  const uint8_t *d = r->data;
  int64_t size = r->size;
  if (size < 12)
    return pt__errorf(err, PT_EFORMAT, "not a Parquet file: %lld bytes is too short", (long long)size);
  if (memcmp(d, "PAR1", 4) != 0) return pt__errorf(err, PT_EFORMAT, "not a Parquet file: no PAR1 magic at the start");
  if (memcmp(d + size - 4, "PAR1", 4) != 0) {
    if (memcmp(d + size - 4, "PARE", 4) == 0)
      return pt__errorf(err, PT_ENOTSUP, "encrypted Parquet files (PARE footer) are not supported");
    return pt__errorf(err, PT_EFORMAT, "no PAR1 magic at the end: the file is truncated or not Parquet");
  }
  uint32_t flen = pt__load_u32(d + size - 8);
  if ((int64_t)flen > size - 12)
    return pt__errorf(err, PT_EFORMAT, "footer of %u bytes does not fit the %lld-byte file", flen,
                      (long long)size);
  int rc = pt__pq_decode_file_meta(d + size - 8 - flen, flen, &r->arena, &r->meta, err);
  if (rc != PT_OK) return pt__error_prefix(err, rc, "footer: ");
  if (r->meta.encrypted)
    return pt__errorf(err, PT_ENOTSUP, "encrypted Parquet files are not supported");
  int64_t total = 0;
  for (int64_t i = 0; i < r->meta.n_row_groups; i++) {
    if (r->meta.row_groups[i].num_rows < 0 ||
        pt__add_overflow(total, r->meta.row_groups[i].num_rows, &total))
      return pt__errorf(err, PT_EFORMAT, "footer: row group %lld has a bad row count", (long long)i);
  }
  return PT_OK;
}

static int open_region(const uint8_t *data, int64_t size, pt__shared *region, bool mapped,
                       const char *label, const pt_parquet_read_options *opts,
                       struct ArrowArrayStream *out, pt_error *err) {
  reader *r = pt__calloc(1, sizeof *r);
  if (r == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  r->data = data;
  r->mapped = mapped;
  r->size = size;
  r->region = region;
  r->label = pt__strdup(label);
  r->batch_rows = opts && opts->batch_size > 0 ? opts->batch_size : DEFAULT_BATCH_ROWS;
  int rc = r->label ? PT_OK : pt__errorf(err, PT_ENOMEM, "out of memory");
  int threads = opts ? opts->threads : 0;
  if (rc == PT_OK && (threads < 0 || threads > MAX_THREADS))
    rc = pt__errorf(err, PT_EINVAL, "threads must be between 1 and %d (got %d)", MAX_THREADS,
                    threads);
  r->n_threads = threads > 1 ? threads : 1;
  /* pyarrow's read_table(use_threads=False) decodes the next row group on
   * another thread of its pool while this one is decoded: one thread,
   * here, reads the same way unless told not to. */
  r->ahead = r->n_threads == 1 && !(opts && opts->no_readahead);
  r->n_workers = r->ahead ? 2 : r->n_threads;
  if (rc == PT_OK) {
    r->scratch = pt__calloc((size_t)r->n_workers, sizeof *r->scratch);
    r->sc = r->scratch;
    if (r->scratch == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  if (rc == PT_OK) rc = parse_footer(r, err);
  if (rc == PT_OK) rc = build_schema(r, opts, err);
  if (rc == PT_OK) {
    int64_t n = r->meta.n_row_groups;
    int64_t start = opts ? opts->row_group_start : 0, count = opts ? opts->row_groups : 0;
    if (start < 0 || start > n || count < 0)
      rc = pt__errorf(err, PT_EINVAL, "row groups from %lld (%lld of them) of the file's %lld",
                      (long long)start, (long long)count, (long long)n);
    r->next_rg = start;
    r->end_rg = count > 0 && count < n - start ? start + count : n;
  }
  if (rc == PT_OK && opts && opts->filter) {
    rc = pt__filter_copy(opts->filter, &r->filter, err);
    if (rc == PT_OK) rc = pt__filter_columns(r->filter, check_filter_column, r, err);
  }
  if (rc != PT_OK) {
    pt__error_prefix(err, rc, "parquet: %s: ", label);
    r->region = NULL; /* stays the caller's on failure */
    reader_free(r);
    return rc;
  }
  out->get_schema = stream_get_schema;
  out->get_next = stream_get_next;
  out->get_last_error = stream_last_error;
  out->release = stream_release;
  out->private_data = r;
  return PT_OK;
}

int pt_parquet_stream_pages(struct ArrowArrayStream *stream, int64_t *read, int64_t *skipped,
                            pt_error *err) {
  if (stream == NULL || stream->release != stream_release)
    return pt__errorf(err, PT_EINVAL, "not a stream opened by pt_parquet_read_*");
  reader *r = stream->private_data;
  int64_t nr = 0, ns = 0;
  for (int t = 0; t < r->n_workers; t++) {
    nr += r->scratch[t].pages_read;
    ns += r->scratch[t].pages_skipped;
  }
  if (read) *read = nr;
  if (skipped) *skipped = ns;
  return PT_OK;
}

int pt_parquet_stream_zero_copy(struct ArrowArrayStream *stream, int64_t *pages, pt_error *err) {
  if (stream == NULL || stream->release != stream_release)
    return pt__errorf(err, PT_EINVAL, "not a stream opened by pt_parquet_read_*");
  const reader *r = stream->private_data;
  int64_t n = 0;
  for (int t = 0; t < r->n_workers; t++) n += r->scratch[t].pages_zero_copy;
  if (pages) *pages = n;
  return PT_OK;
}

int pt_parquet_stream_row_groups(struct ArrowArrayStream *stream, int64_t *read,
                                 int64_t *skipped, pt_error *err) {
  if (stream == NULL || stream->release != stream_release)
    return pt__errorf(err, PT_EINVAL, "not a stream opened by pt_parquet_read_*");
  const reader *r = stream->private_data;
  if (read) *read = r->rg_read;
  if (skipped) *skipped = r->rg_skipped;
  return PT_OK;
}

void pt_parquet_read_options_init(pt_parquet_read_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->batch_size = 0; /* the reader's 65536, or pt_read_parquet's arrow.max_records_per_batch */
}

int pt_parquet_read_buffer(const void *data, int64_t size, void (*free_data)(void *, void *),
                           void *free_arg, const pt_parquet_read_options *opts,
                           struct ArrowArrayStream *out, pt_error *err) {
  if (out == NULL || (data == NULL && size > 0) || size < 0)
    return pt__errorf(err, PT_EINVAL, "parquet: data and out must be given");
  out->release = NULL;
  pt__keep_freed_memory();
  pt__shared *region = NULL;
  if (free_data != NULL) {
    region = pt__shared_new((void *)data, free_data, free_arg);
    if (region == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  int rc = open_region(data, size, region, false, "buffer", opts, out, err);
  if (rc != PT_OK && region != NULL) {
    region->destroy = NULL; /* on failure the data stays the caller's */
    pt__shared_unref(region);
  }
  return rc;
}

static void unmap(void *data, void *arg) { munmap(data, (size_t)(uintptr_t)arg); }

int pt_parquet_read_path(const char *path, const pt_parquet_read_options *opts,
                         struct ArrowArrayStream *out, pt_error *err) {
  if (path == NULL || out == NULL) return pt__errorf(err, PT_EINVAL, "parquet: path and out must be given");
  out->release = NULL;
  pt__keep_freed_memory();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return pt__errorf(err, PT_EIO, "parquet: cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return pt__errorf(err, PT_EIO, "parquet: cannot stat %s: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return pt__errorf(err, PT_EINVAL, "parquet: %s is not a regular file (Parquet needs its footer first)", path);
  }
  int64_t size = st.st_size;
  void *map = NULL;
  pt__shared *region = NULL;
  if (size > 0) {
    map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int e = errno;
      close(fd);
      return pt__errorf(err, PT_EIO, "parquet: cannot map %s: %s", path, strerror(e));
    }
    region = pt__shared_new(map, unmap, (void *)(uintptr_t)size);
    if (region == NULL) {
      munmap(map, (size_t)size);
      close(fd);
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
  }
  close(fd);
  static const uint8_t empty[1];
  int rc = open_region(map ? map : empty, size, region, map != NULL, path, opts, out, err);
  if (rc != PT_OK) pt__shared_unref(region);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* For the engine's planning */

int pt__parquet_plan(const char *path, const pt_parquet_read_options *opts,
                     struct ArrowSchema *schema, pt__parquet_rg **rgs, int64_t *n,
                     int64_t *considered, pt_error *err) {
  *rgs = NULL;
  *n = 0;
  if (considered) *considered = 0;
  schema->release = NULL;
  struct ArrowArrayStream s;
  PT_RETURN_NOT_OK(pt_parquet_read_path(path, opts, &s, err));
  reader *r = s.private_data;
  int rc = pt_schema_copy(&r->schema, schema, err);
  int64_t total = r->end_rg - r->next_rg;
  if (considered) *considered = total > 0 ? total : 0;
  pt__parquet_rg *out = pt__calloc((size_t)(total > 0 ? total : 1), sizeof *out);
  if (rc == PT_OK && out == NULL) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t g = r->next_rg; g < r->end_rg && rc == PT_OK; g++) {
    const pt__pq_row_group *rg = &r->meta.row_groups[g];
    if (r->filter && !pt__filter_may_match(r->filter, &r->meta, rg, find_path, r)) continue;
    out[*n].index = g;
    out[*n].rows = rg->num_rows;
    out[*n].bytes = rg->total_byte_size > 0 ? rg->total_byte_size : 0;
    (*n)++;
  }
  s.release(&s);
  if (rc != PT_OK) {
    pt__free(out);
    *n = 0;
    if (schema->release) schema->release(schema);
    return rc;
  }
  *rgs = out;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Footer statistics for table formats (Delta's per-file stats) */

void pt__parquet_stats_free(pt__parquet_stats *s) {
  for (int64_t i = 0; i < s->n_cols; i++) {
    pt__free(s->cols[i].name);
    pt__free((void *)s->cols[i].b.min_b);
    pt__free((void *)s->cols[i].b.max_b);
  }
  pt__free(s->cols);
  memset(s, 0, sizeof *s);
}

static void *dup_bytes(pt__pq_bytes v) {
  void *p = pt__malloc((size_t)(v.len > 0 ? v.len : 1));
  if (p && v.len > 0) memcpy(p, v.data, (size_t)v.len);
  return p;
}

/* Folds one chunk's min (lo) or max (hi) into c: false without memory. */
static bool fold_bound(pt__parquet_col_stats *c, pt__pq_bytes v, bool is_min, bool first) {
  pt__bounds *b = &c->b;
  if (c->physical == PT__PQ_INT32 || c->physical == PT__PQ_INT64) {
    int64_t x = c->physical == PT__PQ_INT32 ? pt__load_i32(v.data) : pt__load_i64(v.data);
    if (is_min && (first || x < b->min_i)) b->min_i = x;
    if (!is_min && (first || x > b->max_i)) b->max_i = x;
    return true;
  }
  if (c->physical == PT__PQ_FLOAT || c->physical == PT__PQ_DOUBLE) {
    double x;
    if (c->physical == PT__PQ_FLOAT) {
      float f;
      memcpy(&f, v.data, 4);
      x = f;
    } else {
      memcpy(&x, v.data, 8);
    }
    if (is_min && (first || x < b->min_d)) b->min_d = x;
    if (!is_min && (first || x > b->max_d)) b->max_d = x;
    return true;
  }
  /* Bytes: unsigned lexicographic order. */
  const uint8_t **cur = is_min ? &b->min_b : &b->max_b;
  int64_t *len = is_min ? &b->min_len : &b->max_len;
  if (!first) {
    int64_t n = v.len < *len ? v.len : *len;
    int c2 = n > 0 ? memcmp(v.data, *cur, (size_t)n) : 0;
    if (c2 == 0) c2 = (v.len > *len) - (v.len < *len);
    if ((is_min && c2 >= 0) || (!is_min && c2 <= 0)) return true;
  }
  void *p = dup_bytes(v);
  if (!p) return false;
  pt__free((void *)*cur);
  *cur = p;
  *len = v.len;
  return true;
}

int pt__parquet_file_stats(const char *path, pt__parquet_stats *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  struct ArrowArrayStream s;
  pt_parquet_read_options o;
  pt_parquet_read_options_init(&o);
  PT_RETURN_NOT_OK(pt_parquet_read_path(path, &o, &s, err));
  reader *r = s.private_data;
  const pt__pq_file_meta *m = &r->meta;
  int rc = PT_OK;
  out->rows = m->num_rows;
  out->cols = pt__calloc((size_t)(m->schema[0].num_children > 0 ? m->schema[0].num_children : 1),
                         sizeof *out->cols);
  if (!out->cols) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
  /* Top-level leaves: walk the schema, counting leaves (= column chunks). */
  int64_t i = 1, leaf = 0;
  for (int32_t k = 0; rc == PT_OK && k < m->schema[0].num_children && i < m->n_schema; k++) {
    const pt__pq_schema_elem *e = &m->schema[i];
    if (e->num_children > 0) {
      /* Skip the group and everything below it. */
      int64_t pending = 1;
      while (pending > 0 && i < m->n_schema) {
        pending += m->schema[i].num_children - 1;
        if (m->schema[i].num_children == 0) leaf++;
        i++;
      }
      continue;
    }
    i++;
    if (e->repetition == PT__PQ_REPEATED || e->type == PT__PQ_BOOLEAN || e->type == PT__PQ_INT96) {
      leaf++;
      continue;
    }
    pt__parquet_col_stats *c = &out->cols[out->n_cols];
    c->name = pt__malloc((size_t)e->name.len + 1);
    if (!c->name) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      break;
    }
    memcpy(c->name, e->name.data, (size_t)e->name.len);
    c->name[e->name.len] = '\0';
    out->n_cols++;
    c->physical = e->type;
    c->has_nulls = true;
    c->has_minmax = true;
    c->b.kind = e->type == PT__PQ_INT32 || e->type == PT__PQ_INT64 ? PT__BOUNDS_INT
              : e->type == PT__PQ_FLOAT || e->type == PT__PQ_DOUBLE ? PT__BOUNDS_DOUBLE
                                                                   : PT__BOUNDS_BYTES;
    bool first = true;
    for (int64_t g = 0; g < m->n_row_groups && rc == PT_OK; g++) {
      const pt__pq_row_group *rg = &m->row_groups[g];
      const pt__pq_column_chunk *cc = leaf < rg->n_columns ? &rg->columns[leaf] : NULL;
      const pt__pq_stats *st = cc && cc->has_meta && cc->meta.has_stats ? &cc->meta.stats : NULL;
      if (!st || !st->has_null_count) c->has_nulls = false;
      else c->null_count += st->null_count;
      if (rg->num_rows == 0) continue;
      bool all_null = st && st->has_null_count && st->null_count >= rg->num_rows;
      if (all_null) continue;
      int64_t width = e->type == PT__PQ_INT32 || e->type == PT__PQ_FLOAT ? 4
                    : e->type == PT__PQ_INT64 || e->type == PT__PQ_DOUBLE ? 8 : -1;
      if (!st || !st->has_min_value || !st->has_max_value ||
          (width > 0 && (st->min_value.len != width || st->max_value.len != width))) {
        c->has_minmax = false;
        continue;
      }
      if (!fold_bound(c, st->min_value, true, first) || !fold_bound(c, st->max_value, false, first))
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      first = false;
    }
    if (first) c->has_minmax = false; /* no values */
    c->b.has_min = c->b.has_max = c->has_minmax;
    leaf++;
  }
  s.release(&s);
  if (rc != PT_OK) pt__parquet_stats_free(out);
  return rc;
}
