/* meta.c — parquet.thrift's FileMetaData and PageHeader (with the structs
 * below them) decoded from the compact protocol into the structs of
 * parquet_int.h, and encoded back. Unknown fields are skipped, as Thrift
 * wants; a known field with the wrong wire type, or a required field that is
 * missing, is corrupt input.
 */
#include <string.h>

#include "parquet/parquet_int.h"

/* ------------------------------------------------------------------------ */
/* Arena */

typedef struct pt__arena_block {
  struct pt__arena_block *next;
  int64_t used, cap;
  _Alignas(16) uint8_t data[];
} pt__arena_block;

void *pt__arena_alloc(pt__arena *a, int64_t size) {
  if (size < 0) return NULL;
  size = (size + 15) & ~(int64_t)15;
  pt__arena_block *b = a->head;
  if (b == NULL || b->cap - b->used < size) {
    int64_t cap = size > 16384 ? size : 16384;
    b = pt__calloc(1, sizeof *b + (size_t)cap);
    if (b == NULL) return NULL;
    b->cap = cap;
    b->next = a->head;
    a->head = b;
  }
  void *p = b->data + b->used;
  b->used += size;
  return p;
}

void pt__arena_free(pt__arena *a) {
  pt__arena_block *b = a->head;
  while (b != NULL) {
    pt__arena_block *next = b->next;
    pt__free(b);
    b = next;
  }
  a->head = NULL;
}

/* ------------------------------------------------------------------------ */
/* Decoding helpers */

typedef struct dec {
  pt__thrift_in in;
  pt__arena *arena;
  pt_error *err;
} dec;

static int wrong_type(dec *d, const char *strct, int16_t id, int type) {
  return pt__errorf(d->err, PT_EFORMAT, "thrift: %s field %d has wire type %d at byte %lld",
                    strct, id, type, (long long)(d->in.p - d->in.start));
}

static int missing(dec *d, const char *strct, const char *field) {
  return pt__errorf(d->err, PT_EFORMAT, "thrift: %s lacks its required field %s", strct, field);
}

static bool is_int_type(int t) { return t == PT__TH_I8 || t == PT__TH_I16 || t == PT__TH_I32 || t == PT__TH_I64; }

/* Any integer field (i8 is one raw byte, the others zigzag varints). */
static int get_int(dec *d, const char *strct, int16_t id, int type, int64_t *out) {
  if (!is_int_type(type)) return wrong_type(d, strct, id, type);
  if (type == PT__TH_I8) {
    if (d->in.p >= d->in.end) return pt__errorf(d->err, PT_EFORMAT, "thrift: truncated byte");
    *out = (int8_t)*d->in.p++;
    return PT_OK;
  }
  return pt__thrift_i64(&d->in, out, d->err);
}

static int get_i32(dec *d, const char *strct, int16_t id, int type, int32_t *out) {
  int64_t v;
  PT_RETURN_NOT_OK(get_int(d, strct, id, type, &v));
  if (v < INT32_MIN || v > INT32_MAX)
    return pt__errorf(d->err, PT_EFORMAT, "thrift: %s field %d: %lld is out of range", strct, id,
                      (long long)v);
  *out = (int32_t)v;
  return PT_OK;
}

static int get_bool(dec *d, const char *strct, int16_t id, int type, bool *out) {
  if (type != PT__TH_TRUE && type != PT__TH_FALSE) return wrong_type(d, strct, id, type);
  *out = type == PT__TH_TRUE;
  return PT_OK;
}

static int get_bytes(dec *d, const char *strct, int16_t id, int type, pt__pq_bytes *out) {
  if (type != PT__TH_BINARY) return wrong_type(d, strct, id, type);
  return pt__thrift_binary(&d->in, &out->data, &out->len, d->err);
}

/* A list field: checks the element type, allocates n elements of size. */
static int get_list(dec *d, const char *strct, int16_t id, int type, int want_elem, size_t size,
                    void **items, int64_t *n) {
  if (type != PT__TH_LIST && type != PT__TH_SET) return wrong_type(d, strct, id, type);
  int et;
  PT_RETURN_NOT_OK(pt__thrift_list(&d->in, &et, n, d->err));
  bool ok = et == want_elem || (is_int_type(want_elem) && is_int_type(et) && et != PT__TH_I8) ||
            (want_elem == PT__TH_TRUE && et == PT__TH_FALSE); /* booleans: either id */
  if (!ok)
    return pt__errorf(d->err, PT_EFORMAT, "thrift: %s field %d: list of wire type %d", strct, id,
                      et);
  *items = pt__arena_alloc(d->arena, (int64_t)size * (*n > 0 ? *n : 1));
  if (*items == NULL) return pt__errorf(d->err, PT_ENOMEM, "out of memory decoding metadata");
  return PT_OK;
}

/* Iterates the fields of a struct: FIELDS(body) with id and type in scope. */
#define STRUCT_BEGIN(d)                                                        \
  PT_RETURN_NOT_OK(pt__thrift_enter(&(d)->in, (d)->err));                      \
  int16_t last_ = 0, id;                                                       \
  int type;                                                                    \
  for (;;) {                                                                   \
    PT_RETURN_NOT_OK(pt__thrift_field(&(d)->in, &last_, &id, &type, (d)->err)); \
    if (type == PT__TH_STOP) break;                                            \
    switch (id) {
#define STRUCT_END(d)                                                          \
      default: PT_RETURN_NOT_OK(pt__thrift_skip(&(d)->in, type, (d)->err));    \
    }                                                                          \
  }                                                                            \
  pt__thrift_leave(&(d)->in);

static int want_struct(dec *d, const char *strct, int16_t id, int type) {
  return type == PT__TH_STRUCT ? PT_OK : wrong_type(d, strct, id, type);
}

/* An empty struct (the members of unions such as StringType). */
static int skip_struct(dec *d, const char *strct, int16_t id, int type) {
  PT_RETURN_NOT_OK(want_struct(d, strct, id, type));
  return pt__thrift_skip(&d->in, PT__TH_STRUCT, d->err);
}

/* ------------------------------------------------------------------------ */
/* Structs */

static int dec_stats(dec *d, pt__pq_stats *s) {
  const char *S = "Statistics";
  STRUCT_BEGIN(d)
  case 1: s->has_max = true; PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &s->max)); break;
  case 2: s->has_min = true; PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &s->min)); break;
  case 3:
    s->has_null_count = true;
    PT_RETURN_NOT_OK(get_int(d, S, id, type, &s->null_count));
    break;
  case 4:
    s->has_distinct_count = true;
    PT_RETURN_NOT_OK(get_int(d, S, id, type, &s->distinct_count));
    break;
  case 5: s->has_max_value = true; PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &s->max_value)); break;
  case 6: s->has_min_value = true; PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &s->min_value)); break;
  STRUCT_END(d)
  return PT_OK;
}

static int dec_time_unit(dec *d, int *unit) {
  const char *S = "TimeUnit";
  STRUCT_BEGIN(d)
  case 1: case 2: case 3:
    PT_RETURN_NOT_OK(skip_struct(d, S, id, type));
    *unit = id;
    break;
  STRUCT_END(d)
  return PT_OK;
}

/* DecimalType, TimeType, TimestampType, IntType: the members with fields. */
static int dec_logical_member(dec *d, int kind, pt__pq_logical *l) {
  const char *S = "LogicalType";
  STRUCT_BEGIN(d)
  case 1:
    if (kind == PT__LT_DECIMAL) PT_RETURN_NOT_OK(get_i32(d, S, id, type, &l->scale));
    else if (kind == PT__LT_INTEGER) {
      int64_t v;
      PT_RETURN_NOT_OK(get_int(d, S, id, type, &v));
      l->bit_width = (int)(v < 0 || v > 64 ? -1 : v);
    } else PT_RETURN_NOT_OK(get_bool(d, S, id, type, &l->utc));
    break;
  case 2:
    if (kind == PT__LT_DECIMAL) PT_RETURN_NOT_OK(get_i32(d, S, id, type, &l->precision));
    else if (kind == PT__LT_INTEGER) PT_RETURN_NOT_OK(get_bool(d, S, id, type, &l->is_signed));
    else {
      PT_RETURN_NOT_OK(want_struct(d, S, id, type));
      PT_RETURN_NOT_OK(dec_time_unit(d, &l->unit));
    }
    break;
  STRUCT_END(d)
  return PT_OK;
}

static int dec_logical(dec *d, pt__pq_logical *l) {
  const char *S = "LogicalType";
  STRUCT_BEGIN(d)
  case PT__LT_DECIMAL: case PT__LT_TIME: case PT__LT_TIMESTAMP: case PT__LT_INTEGER:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    l->kind = id;
    PT_RETURN_NOT_OK(dec_logical_member(d, id, l));
    break;
  case PT__LT_STRING: case PT__LT_MAP: case PT__LT_LIST: case PT__LT_ENUM: case PT__LT_DATE:
  case PT__LT_UNKNOWN: case PT__LT_JSON: case PT__LT_BSON: case PT__LT_UUID: case PT__LT_FLOAT16:
    PT_RETURN_NOT_OK(skip_struct(d, S, id, type));
    l->kind = id;
    break;
  case 9: case 16: case 17: case 18: /* interval, variant, geometry, geography */
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    PT_RETURN_NOT_OK(pt__thrift_skip(&d->in, type, d->err));
    l->kind = -id; /* known to exist, not supported: the reader says so */
    break;
  STRUCT_END(d)
  return PT_OK;
}

static int dec_schema_elem(dec *d, pt__pq_schema_elem *e) {
  const char *S = "SchemaElement";
  bool has_name = false;
  e->type = -1;
  e->repetition = -1;
  e->converted = -1;
  STRUCT_BEGIN(d)
  case 1: {
    int32_t v;
    PT_RETURN_NOT_OK(get_i32(d, S, id, type, &v));
    if (v < 0 || v > PT__PQ_FIXED_LEN_BYTE_ARRAY)
      return pt__errorf(d->err, PT_EFORMAT, "unknown physical type %d", v);
    e->type = v;
    break;
  }
  case 2: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &e->type_length)); break;
  case 3: {
    int32_t v;
    PT_RETURN_NOT_OK(get_i32(d, S, id, type, &v));
    if (v < 0 || v > PT__PQ_REPEATED)
      return pt__errorf(d->err, PT_EFORMAT, "unknown repetition type %d", v);
    e->repetition = v;
    break;
  }
  case 4: has_name = true; PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &e->name)); break;
  case 5: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &e->num_children)); break;
  case 6: {
    int32_t v;
    PT_RETURN_NOT_OK(get_i32(d, S, id, type, &v));
    e->converted = v < 0 ? -2 : v;
    break;
  }
  case 7: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &e->scale)); break;
  case 8: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &e->precision)); break;
  case 9: e->has_field_id = true; PT_RETURN_NOT_OK(get_i32(d, S, id, type, &e->field_id)); break;
  case 10:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    PT_RETURN_NOT_OK(dec_logical(d, &e->logical));
    break;
  STRUCT_END(d)
  if (!has_name) return missing(d, S, "name");
  return PT_OK;
}

static int dec_kv(dec *d, pt__pq_kv *kv) {
  const char *S = "KeyValue";
  bool has_key = false;
  STRUCT_BEGIN(d)
  case 1: has_key = true; PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &kv->key)); break;
  case 2: kv->has_value = true; PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &kv->value)); break;
  STRUCT_END(d)
  if (!has_key) return missing(d, S, "key");
  return PT_OK;
}

static int dec_kv_list(dec *d, const char *S, int16_t id, int type, pt__pq_kv **kv, int64_t *n) {
  PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_STRUCT, sizeof **kv, (void **)kv, n));
  for (int64_t i = 0; i < *n; i++) PT_RETURN_NOT_OK(dec_kv(d, &(*kv)[i]));
  return PT_OK;
}

static int dec_column_meta(dec *d, pt__pq_column_meta *m) {
  const char *S = "ColumnMetaData";
  unsigned seen = 0;
  STRUCT_BEGIN(d)
  case 1: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &m->type)); seen |= 1; break;
  case 2: {
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_I32, sizeof *m->encodings,
                              (void **)&m->encodings, &m->n_encodings));
    for (int64_t i = 0; i < m->n_encodings; i++)
      PT_RETURN_NOT_OK(pt__thrift_i32(&d->in, &m->encodings[i], d->err));
    seen |= 2;
    break;
  }
  case 3: {
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_BINARY, sizeof *m->path, (void **)&m->path,
                              &m->n_path));
    for (int64_t i = 0; i < m->n_path; i++)
      PT_RETURN_NOT_OK(pt__thrift_binary(&d->in, &m->path[i].data, &m->path[i].len, d->err));
    seen |= 4;
    break;
  }
  case 4: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &m->codec)); seen |= 8; break;
  case 5: PT_RETURN_NOT_OK(get_int(d, S, id, type, &m->num_values)); seen |= 16; break;
  case 6: PT_RETURN_NOT_OK(get_int(d, S, id, type, &m->total_uncompressed_size)); break;
  case 7: PT_RETURN_NOT_OK(get_int(d, S, id, type, &m->total_compressed_size)); seen |= 32; break;
  case 9: PT_RETURN_NOT_OK(get_int(d, S, id, type, &m->data_page_offset)); seen |= 64; break;
  case 11:
    m->has_dictionary_page_offset = true;
    PT_RETURN_NOT_OK(get_int(d, S, id, type, &m->dictionary_page_offset));
    break;
  case 12:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    m->has_stats = true;
    PT_RETURN_NOT_OK(dec_stats(d, &m->stats));
    break;
  STRUCT_END(d)
  static const char *const names[] = {"type", "encodings", "path_in_schema", "codec",
                                      "num_values", "total_compressed_size", "data_page_offset"};
  for (int i = 0; i < 7; i++)
    if (!(seen & (1u << i))) return missing(d, S, names[i]);
  return PT_OK;
}

static int dec_column_chunk(dec *d, pt__pq_column_chunk *c) {
  const char *S = "ColumnChunk";
  STRUCT_BEGIN(d)
  case 1: c->has_file_path = true; PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &c->file_path)); break;
  case 2: PT_RETURN_NOT_OK(get_int(d, S, id, type, &c->file_offset)); break;
  case 3:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    c->has_meta = true;
    PT_RETURN_NOT_OK(dec_column_meta(d, &c->meta));
    break;
  case 4:
    c->has_offset_index = true;
    PT_RETURN_NOT_OK(get_int(d, S, id, type, &c->offset_index_offset));
    break;
  case 5: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &c->offset_index_length)); break;
  case 6:
    c->has_column_index = true;
    PT_RETURN_NOT_OK(get_int(d, S, id, type, &c->column_index_offset));
    break;
  case 7: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &c->column_index_length)); break;
  case 8: case 9:
    c->encrypted = true;
    PT_RETURN_NOT_OK(pt__thrift_skip(&d->in, type, d->err));
    break;
  STRUCT_END(d)
  return PT_OK;
}

static int dec_page_location(dec *d, pt__pq_page_location *p) {
  const char *S = "PageLocation";
  unsigned seen = 0;
  STRUCT_BEGIN(d)
  case 1: PT_RETURN_NOT_OK(get_int(d, S, id, type, &p->offset)); seen |= 1; break;
  case 2: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &p->compressed_page_size)); seen |= 2; break;
  case 3: PT_RETURN_NOT_OK(get_int(d, S, id, type, &p->first_row_index)); seen |= 4; break;
  STRUCT_END(d)
  if (seen != 7) return missing(d, S, "offset, compressed_page_size or first_row_index");
  return PT_OK;
}

int pt__pq_decode_offset_index(const uint8_t *data, int64_t len, pt__arena *arena,
                               pt__pq_offset_index *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  dec dd = {{data, data, data + len, 0}, arena, err}, *d = &dd;
  const char *S = "OffsetIndex";
  bool seen = false;
  STRUCT_BEGIN(d)
  case 1:
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_STRUCT, sizeof *out->pages,
                              (void **)&out->pages, &out->n_pages));
    for (int64_t i = 0; i < out->n_pages; i++)
      PT_RETURN_NOT_OK(dec_page_location(d, &out->pages[i]));
    seen = true;
    break;
  STRUCT_END(d)
  if (!seen) return missing(d, S, "page_locations");
  return PT_OK;
}

int pt__pq_decode_column_index(const uint8_t *data, int64_t len, pt__arena *arena,
                               pt__pq_column_index *out, pt_error *err) {
  memset(out, 0, sizeof *out);
  dec dd = {{data, data, data + len, 0}, arena, err}, *d = &dd;
  const char *S = "ColumnIndex";
  unsigned seen = 0;
  STRUCT_BEGIN(d)
  case 1: {
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_TRUE, sizeof *out->null_pages,
                              (void **)&out->null_pages, &out->n_pages));
    for (int64_t i = 0; i < out->n_pages; i++)
      PT_RETURN_NOT_OK(pt__thrift_list_bool(&d->in, &out->null_pages[i], err));
    seen |= 1;
    break;
  }
  case 2: case 3: {
    pt__pq_bytes **v = id == 2 ? &out->min_values : &out->max_values;
    int64_t *n = id == 2 ? &out->n_min : &out->n_max;
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_BINARY, sizeof **v, (void **)v, n));
    for (int64_t i = 0; i < *n; i++)
      PT_RETURN_NOT_OK(pt__thrift_binary(&d->in, &(*v)[i].data, &(*v)[i].len, err));
    seen |= id == 2 ? 2 : 4;
    break;
  }
  case 4: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &out->boundary_order)); seen |= 8; break;
  case 5:
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_I64, sizeof *out->null_counts,
                              (void **)&out->null_counts, &out->n_null_counts));
    for (int64_t i = 0; i < out->n_null_counts; i++)
      PT_RETURN_NOT_OK(pt__thrift_i64(&d->in, &out->null_counts[i], err));
    break;
  STRUCT_END(d)
  if (seen != 15) return missing(d, S, "null_pages, min_values, max_values or boundary_order");
  if (out->n_min != out->n_pages || out->n_max != out->n_pages ||
      (out->n_null_counts != 0 && out->n_null_counts != out->n_pages))
    return pt__errorf(err, PT_EFORMAT, "thrift: ColumnIndex lists of %lld, %lld, %lld and %lld "
                      "pages disagree", (long long)out->n_pages, (long long)out->n_min,
                      (long long)out->n_max, (long long)out->n_null_counts);
  return PT_OK;
}

static int dec_row_group(dec *d, pt__pq_row_group *g) {
  const char *S = "RowGroup";
  unsigned seen = 0;
  STRUCT_BEGIN(d)
  case 1:
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_STRUCT, sizeof *g->columns,
                              (void **)&g->columns, &g->n_columns));
    for (int64_t i = 0; i < g->n_columns; i++)
      PT_RETURN_NOT_OK(dec_column_chunk(d, &g->columns[i]));
    seen |= 1;
    break;
  case 2: PT_RETURN_NOT_OK(get_int(d, S, id, type, &g->total_byte_size)); break;
  case 3: PT_RETURN_NOT_OK(get_int(d, S, id, type, &g->num_rows)); seen |= 2; break;
  STRUCT_END(d)
  if (!(seen & 1)) return missing(d, S, "columns");
  if (!(seen & 2)) return missing(d, S, "num_rows");
  return PT_OK;
}

int pt__pq_decode_file_meta(const uint8_t *data, int64_t len, pt__arena *arena,
                            pt__pq_file_meta *m, pt_error *err) {
  memset(m, 0, sizeof *m);
  dec dd = {{data, data, data + len, 0}, arena, err}, *d = &dd;
  const char *S = "FileMetaData";
  unsigned seen = 0;
  STRUCT_BEGIN(d)
  case 1: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &m->version)); break;
  case 2:
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_STRUCT, sizeof *m->schema,
                              (void **)&m->schema, &m->n_schema));
    for (int64_t i = 0; i < m->n_schema; i++) PT_RETURN_NOT_OK(dec_schema_elem(d, &m->schema[i]));
    seen |= 1;
    break;
  case 3: PT_RETURN_NOT_OK(get_int(d, S, id, type, &m->num_rows)); seen |= 2; break;
  case 4:
    PT_RETURN_NOT_OK(get_list(d, S, id, type, PT__TH_STRUCT, sizeof *m->row_groups,
                              (void **)&m->row_groups, &m->n_row_groups));
    for (int64_t i = 0; i < m->n_row_groups; i++)
      PT_RETURN_NOT_OK(dec_row_group(d, &m->row_groups[i]));
    seen |= 4;
    break;
  case 5: PT_RETURN_NOT_OK(dec_kv_list(d, S, id, type, &m->kv, &m->n_kv)); break;
  case 6:
    m->has_created_by = true;
    PT_RETURN_NOT_OK(get_bytes(d, S, id, type, &m->created_by));
    break;
  case 7: {
    if (type != PT__TH_LIST) return wrong_type(d, S, id, type);
    int et;
    PT_RETURN_NOT_OK(pt__thrift_list(&d->in, &et, &m->n_column_orders, err));
    PT_RETURN_NOT_OK(pt__thrift_enter(&d->in, err));
    for (int64_t i = 0; i < m->n_column_orders; i++)
      PT_RETURN_NOT_OK(pt__thrift_skip(&d->in, et <= PT__TH_FALSE ? PT__TH_I8 : et, err));
    pt__thrift_leave(&d->in);
    break;
  }
  case 8:
    m->encrypted = true;
    PT_RETURN_NOT_OK(pt__thrift_skip(&d->in, type, err));
    break;
  STRUCT_END(d)
  if (!(seen & 1)) return missing(d, S, "schema");
  if (!(seen & 2)) return missing(d, S, "num_rows");
  if (!(seen & 4)) return missing(d, S, "row_groups");
  return PT_OK;
}

static int dec_data_page(dec *d, pt__pq_page_header *h) {
  const char *S = "DataPageHeader";
  unsigned seen = 0;
  STRUCT_BEGIN(d)
  case 1: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->num_values)); seen |= 1; break;
  case 2: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->encoding)); seen |= 2; break;
  case 3: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->def_encoding)); break;
  case 4: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->rep_encoding)); break;
  case 5:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    h->has_stats = true;
    PT_RETURN_NOT_OK(dec_stats(d, &h->stats));
    break;
  STRUCT_END(d)
  if (seen != 3) return missing(d, S, (seen & 1) ? "encoding" : "num_values");
  return PT_OK;
}

static int dec_data_page_v2(dec *d, pt__pq_page_header *h) {
  const char *S = "DataPageHeaderV2";
  unsigned seen = 0;
  h->is_compressed = true;
  STRUCT_BEGIN(d)
  case 1: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->num_values)); seen |= 1; break;
  case 2: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->num_nulls)); seen |= 2; break;
  case 3: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->num_rows)); seen |= 4; break;
  case 4: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->encoding)); seen |= 8; break;
  case 5: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->def_length)); seen |= 16; break;
  case 6: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->rep_length)); seen |= 32; break;
  case 7: PT_RETURN_NOT_OK(get_bool(d, S, id, type, &h->is_compressed)); break;
  case 8:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    h->has_stats = true;
    PT_RETURN_NOT_OK(dec_stats(d, &h->stats));
    break;
  STRUCT_END(d)
  static const char *const names[] = {"num_values", "num_nulls", "num_rows", "encoding",
                                      "definition_levels_byte_length",
                                      "repetition_levels_byte_length"};
  for (int i = 0; i < 6; i++)
    if (!(seen & (1u << i))) return missing(d, S, names[i]);
  return PT_OK;
}

static int dec_dict_page(dec *d, pt__pq_page_header *h) {
  const char *S = "DictionaryPageHeader";
  unsigned seen = 0;
  STRUCT_BEGIN(d)
  case 1: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->num_values)); seen |= 1; break;
  case 2: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->encoding)); seen |= 2; break;
  case 3: PT_RETURN_NOT_OK(get_bool(d, S, id, type, &h->is_sorted)); break;
  STRUCT_END(d)
  if (seen != 3) return missing(d, S, (seen & 1) ? "encoding" : "num_values");
  return PT_OK;
}

int pt__pq_decode_page_header(const uint8_t *data, int64_t len, pt__pq_page_header *h,
                              int64_t *used, pt_error *err) {
  memset(h, 0, sizeof *h);
  dec dd = {{data, data, data + len, 0}, NULL, err}, *d = &dd;
  const char *S = "PageHeader";
  unsigned seen = 0;
  STRUCT_BEGIN(d)
  case 1: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->type)); seen |= 1; break;
  case 2: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->uncompressed_size)); seen |= 2; break;
  case 3: PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->compressed_size)); seen |= 4; break;
  case 4: h->has_crc = true; PT_RETURN_NOT_OK(get_i32(d, S, id, type, &h->crc)); break;
  case 5:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    h->has_data = true;
    PT_RETURN_NOT_OK(dec_data_page(d, h));
    break;
  case 7:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    h->has_dict = true;
    PT_RETURN_NOT_OK(dec_dict_page(d, h));
    break;
  case 8:
    PT_RETURN_NOT_OK(want_struct(d, S, id, type));
    h->has_data_v2 = true;
    PT_RETURN_NOT_OK(dec_data_page_v2(d, h));
    break;
  STRUCT_END(d)
  if (!(seen & 1)) return missing(d, S, "type");
  if (!(seen & 2)) return missing(d, S, "uncompressed_page_size");
  if (!(seen & 4)) return missing(d, S, "compressed_page_size");
  if (h->uncompressed_size < 0 || h->compressed_size < 0)
    return pt__errorf(err, PT_EFORMAT, "negative page size (%d compressed, %d uncompressed)",
                      h->compressed_size, h->uncompressed_size);
  *used = d->in.p - data;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding */

static void enc_stats(pt__thrift_out *o, const pt__pq_stats *s) {
  int16_t last = 0;
  if (s->has_max) pt__thrift_field_binary(o, &last, 1, s->max.data, s->max.len);
  if (s->has_min) pt__thrift_field_binary(o, &last, 2, s->min.data, s->min.len);
  if (s->has_null_count) pt__thrift_field_i64(o, &last, 3, PT__TH_I64, s->null_count);
  if (s->has_distinct_count) pt__thrift_field_i64(o, &last, 4, PT__TH_I64, s->distinct_count);
  if (s->has_max_value) pt__thrift_field_binary(o, &last, 5, s->max_value.data, s->max_value.len);
  if (s->has_min_value) pt__thrift_field_binary(o, &last, 6, s->min_value.data, s->min_value.len);
  pt__thrift_put_stop(o);
}

static void enc_empty(pt__thrift_out *o, int16_t *last, int16_t id) {
  pt__thrift_put_field(o, last, id, PT__TH_STRUCT);
  pt__thrift_put_stop(o);
}

static void enc_logical(pt__thrift_out *o, const pt__pq_logical *l) {
  int16_t last = 0;
  switch (l->kind) {
    case PT__LT_DECIMAL: {
      pt__thrift_put_field(o, &last, PT__LT_DECIMAL, PT__TH_STRUCT);
      int16_t l2 = 0;
      pt__thrift_field_i64(o, &l2, 1, PT__TH_I32, l->scale);
      pt__thrift_field_i64(o, &l2, 2, PT__TH_I32, l->precision);
      pt__thrift_put_stop(o);
      break;
    }
    case PT__LT_TIME:
    case PT__LT_TIMESTAMP: {
      pt__thrift_put_field(o, &last, (int16_t)l->kind, PT__TH_STRUCT);
      int16_t l2 = 0, l3 = 0;
      pt__thrift_field_bool(o, &l2, 1, l->utc);
      pt__thrift_put_field(o, &l2, 2, PT__TH_STRUCT);
      enc_empty(o, &l3, (int16_t)l->unit);
      pt__thrift_put_stop(o);
      pt__thrift_put_stop(o);
      break;
    }
    case PT__LT_INTEGER: {
      pt__thrift_put_field(o, &last, PT__LT_INTEGER, PT__TH_STRUCT);
      int16_t l2 = 0;
      pt__thrift_put_field(o, &l2, 1, PT__TH_I8);
      uint8_t bw = (uint8_t)l->bit_width;
      if (o->rc == PT_OK) o->rc = pt__buf_putc(o->buf, (char)bw);
      pt__thrift_field_bool(o, &l2, 2, l->is_signed);
      pt__thrift_put_stop(o);
      break;
    }
    default: enc_empty(o, &last, (int16_t)l->kind); break;
  }
  pt__thrift_put_stop(o);
}

static void enc_schema_elem(pt__thrift_out *o, const pt__pq_schema_elem *e) {
  int16_t last = 0;
  if (e->type >= 0) pt__thrift_field_i64(o, &last, 1, PT__TH_I32, e->type);
  if (e->type == PT__PQ_FIXED_LEN_BYTE_ARRAY)
    pt__thrift_field_i64(o, &last, 2, PT__TH_I32, e->type_length);
  if (e->repetition >= 0) pt__thrift_field_i64(o, &last, 3, PT__TH_I32, e->repetition);
  pt__thrift_field_binary(o, &last, 4, e->name.data, e->name.len);
  if (e->num_children > 0) pt__thrift_field_i64(o, &last, 5, PT__TH_I32, e->num_children);
  if (e->converted >= 0) pt__thrift_field_i64(o, &last, 6, PT__TH_I32, e->converted);
  if (e->converted == PT__CT_DECIMAL) {
    pt__thrift_field_i64(o, &last, 7, PT__TH_I32, e->scale);
    pt__thrift_field_i64(o, &last, 8, PT__TH_I32, e->precision);
  }
  if (e->has_field_id) pt__thrift_field_i64(o, &last, 9, PT__TH_I32, e->field_id);
  if (e->logical.kind > 0) {
    pt__thrift_put_field(o, &last, 10, PT__TH_STRUCT);
    enc_logical(o, &e->logical);
  }
  pt__thrift_put_stop(o);
}

static void enc_kvs(pt__thrift_out *o, int16_t *last, int16_t id, const pt__pq_kv *kv, int64_t n) {
  pt__thrift_put_field(o, last, id, PT__TH_LIST);
  pt__thrift_put_list(o, PT__TH_STRUCT, n);
  for (int64_t i = 0; i < n; i++) {
    int16_t l2 = 0;
    pt__thrift_field_binary(o, &l2, 1, kv[i].key.data, kv[i].key.len);
    if (kv[i].has_value) pt__thrift_field_binary(o, &l2, 2, kv[i].value.data, kv[i].value.len);
    pt__thrift_put_stop(o);
  }
}

static void enc_column_meta(pt__thrift_out *o, const pt__pq_column_meta *m) {
  int16_t last = 0;
  pt__thrift_field_i64(o, &last, 1, PT__TH_I32, m->type);
  pt__thrift_put_field(o, &last, 2, PT__TH_LIST);
  pt__thrift_put_list(o, PT__TH_I32, m->n_encodings);
  for (int64_t i = 0; i < m->n_encodings; i++) pt__thrift_put_i64(o, m->encodings[i]);
  pt__thrift_put_field(o, &last, 3, PT__TH_LIST);
  pt__thrift_put_list(o, PT__TH_BINARY, m->n_path);
  for (int64_t i = 0; i < m->n_path; i++)
    pt__thrift_put_binary(o, m->path[i].data, m->path[i].len);
  pt__thrift_field_i64(o, &last, 4, PT__TH_I32, m->codec);
  pt__thrift_field_i64(o, &last, 5, PT__TH_I64, m->num_values);
  pt__thrift_field_i64(o, &last, 6, PT__TH_I64, m->total_uncompressed_size);
  pt__thrift_field_i64(o, &last, 7, PT__TH_I64, m->total_compressed_size);
  pt__thrift_field_i64(o, &last, 9, PT__TH_I64, m->data_page_offset);
  if (m->has_dictionary_page_offset)
    pt__thrift_field_i64(o, &last, 11, PT__TH_I64, m->dictionary_page_offset);
  if (m->has_stats) {
    pt__thrift_put_field(o, &last, 12, PT__TH_STRUCT);
    enc_stats(o, &m->stats);
  }
  pt__thrift_put_stop(o);
}

int pt__pq_encode_file_meta(const pt__pq_file_meta *m, pt_buf *buf) {
  pt__thrift_out o = {buf, PT_OK};
  int16_t last = 0;
  pt__thrift_field_i64(&o, &last, 1, PT__TH_I32, m->version);
  pt__thrift_put_field(&o, &last, 2, PT__TH_LIST);
  pt__thrift_put_list(&o, PT__TH_STRUCT, m->n_schema);
  for (int64_t i = 0; i < m->n_schema; i++) enc_schema_elem(&o, &m->schema[i]);
  pt__thrift_field_i64(&o, &last, 3, PT__TH_I64, m->num_rows);
  pt__thrift_put_field(&o, &last, 4, PT__TH_LIST);
  pt__thrift_put_list(&o, PT__TH_STRUCT, m->n_row_groups);
  for (int64_t i = 0; i < m->n_row_groups; i++) {
    const pt__pq_row_group *g = &m->row_groups[i];
    int16_t l2 = 0;
    pt__thrift_put_field(&o, &l2, 1, PT__TH_LIST);
    pt__thrift_put_list(&o, PT__TH_STRUCT, g->n_columns);
    for (int64_t j = 0; j < g->n_columns; j++) {
      const pt__pq_column_chunk *c = &g->columns[j];
      int16_t l3 = 0;
      pt__thrift_field_i64(&o, &l3, 2, PT__TH_I64, c->file_offset);
      pt__thrift_put_field(&o, &l3, 3, PT__TH_STRUCT);
      enc_column_meta(&o, &c->meta);
      if (c->has_offset_index) {
        pt__thrift_field_i64(&o, &l3, 4, PT__TH_I64, c->offset_index_offset);
        pt__thrift_field_i64(&o, &l3, 5, PT__TH_I32, c->offset_index_length);
      }
      if (c->has_column_index) {
        pt__thrift_field_i64(&o, &l3, 6, PT__TH_I64, c->column_index_offset);
        pt__thrift_field_i64(&o, &l3, 7, PT__TH_I32, c->column_index_length);
      }
      pt__thrift_put_stop(&o);
    }
    pt__thrift_field_i64(&o, &l2, 2, PT__TH_I64, g->total_byte_size);
    pt__thrift_field_i64(&o, &l2, 3, PT__TH_I64, g->num_rows);
    pt__thrift_put_stop(&o);
  }
  if (m->n_kv > 0) enc_kvs(&o, &last, 5, m->kv, m->n_kv);
  if (m->has_created_by) pt__thrift_field_binary(&o, &last, 6, m->created_by.data, m->created_by.len);
  if (m->n_column_orders > 0) {
    pt__thrift_put_field(&o, &last, 7, PT__TH_LIST);
    pt__thrift_put_list(&o, PT__TH_STRUCT, m->n_column_orders);
    for (int64_t i = 0; i < m->n_column_orders; i++) {
      int16_t l2 = 0;
      enc_empty(&o, &l2, 1); /* TYPE_ORDER */
      pt__thrift_put_stop(&o);
    }
  }
  pt__thrift_put_stop(&o);
  return o.rc;
}

int pt__pq_encode_page_header(const pt__pq_page_header *h, pt_buf *buf) {
  pt__thrift_out o = {buf, PT_OK};
  int16_t last = 0, l2 = 0;
  pt__thrift_field_i64(&o, &last, 1, PT__TH_I32, h->type);
  pt__thrift_field_i64(&o, &last, 2, PT__TH_I32, h->uncompressed_size);
  pt__thrift_field_i64(&o, &last, 3, PT__TH_I32, h->compressed_size);
  if (h->has_crc) pt__thrift_field_i64(&o, &last, 4, PT__TH_I32, h->crc);
  if (h->has_data) {
    pt__thrift_put_field(&o, &last, 5, PT__TH_STRUCT);
    pt__thrift_field_i64(&o, &l2, 1, PT__TH_I32, h->num_values);
    pt__thrift_field_i64(&o, &l2, 2, PT__TH_I32, h->encoding);
    pt__thrift_field_i64(&o, &l2, 3, PT__TH_I32, h->def_encoding);
    pt__thrift_field_i64(&o, &l2, 4, PT__TH_I32, h->rep_encoding);
    if (h->has_stats) {
      pt__thrift_put_field(&o, &l2, 5, PT__TH_STRUCT);
      enc_stats(&o, &h->stats);
    }
    pt__thrift_put_stop(&o);
  } else if (h->has_dict) {
    pt__thrift_put_field(&o, &last, 7, PT__TH_STRUCT);
    pt__thrift_field_i64(&o, &l2, 1, PT__TH_I32, h->num_values);
    pt__thrift_field_i64(&o, &l2, 2, PT__TH_I32, h->encoding);
    pt__thrift_put_stop(&o);
  } else if (h->has_data_v2) {
    pt__thrift_put_field(&o, &last, 8, PT__TH_STRUCT);
    pt__thrift_field_i64(&o, &l2, 1, PT__TH_I32, h->num_values);
    pt__thrift_field_i64(&o, &l2, 2, PT__TH_I32, h->num_nulls);
    pt__thrift_field_i64(&o, &l2, 3, PT__TH_I32, h->num_rows);
    pt__thrift_field_i64(&o, &l2, 4, PT__TH_I32, h->encoding);
    pt__thrift_field_i64(&o, &l2, 5, PT__TH_I32, h->def_length);
    pt__thrift_field_i64(&o, &l2, 6, PT__TH_I32, h->rep_length);
    pt__thrift_field_bool(&o, &l2, 7, h->is_compressed);
    if (h->has_stats) {
      pt__thrift_put_field(&o, &l2, 8, PT__TH_STRUCT);
      enc_stats(&o, &h->stats);
    }
    pt__thrift_put_stop(&o);
  }
  pt__thrift_put_stop(&o);
  return o.rc;
}

int pt__pq_encode_offset_index(const pt__pq_offset_index *oi, pt_buf *buf) {
  pt__thrift_out o = {buf, PT_OK};
  int16_t last = 0;
  pt__thrift_put_field(&o, &last, 1, PT__TH_LIST);
  pt__thrift_put_list(&o, PT__TH_STRUCT, oi->n_pages);
  for (int64_t i = 0; i < oi->n_pages; i++) {
    int16_t l2 = 0;
    pt__thrift_field_i64(&o, &l2, 1, PT__TH_I64, oi->pages[i].offset);
    pt__thrift_field_i64(&o, &l2, 2, PT__TH_I32, oi->pages[i].compressed_page_size);
    pt__thrift_field_i64(&o, &l2, 3, PT__TH_I64, oi->pages[i].first_row_index);
    pt__thrift_put_stop(&o);
  }
  pt__thrift_put_stop(&o);
  return o.rc;
}

int pt__pq_encode_column_index(const pt__pq_column_index *ci, pt_buf *buf) {
  pt__thrift_out o = {buf, PT_OK};
  int16_t last = 0;
  pt__thrift_put_field(&o, &last, 1, PT__TH_LIST);
  /* Booleans in a list are one byte each: 1 true, 2 false (as Thrift's
   * own libraries write them). */
  pt__thrift_put_list(&o, PT__TH_TRUE, ci->n_pages);
  for (int64_t i = 0; i < ci->n_pages && o.rc == PT_OK; i++)
    o.rc = pt__buf_putc(o.buf, ci->null_pages[i] ? 1 : 2);
  for (int16_t id = 2; id <= 3; id++) {
    const pt__pq_bytes *v = id == 2 ? ci->min_values : ci->max_values;
    pt__thrift_put_field(&o, &last, id, PT__TH_LIST);
    pt__thrift_put_list(&o, PT__TH_BINARY, ci->n_pages);
    for (int64_t i = 0; i < ci->n_pages; i++) pt__thrift_put_binary(&o, v[i].data, v[i].len);
  }
  pt__thrift_field_i64(&o, &last, 4, PT__TH_I32, ci->boundary_order);
  if (ci->n_null_counts > 0) {
    pt__thrift_put_field(&o, &last, 5, PT__TH_LIST);
    pt__thrift_put_list(&o, PT__TH_I64, ci->n_null_counts);
    for (int64_t i = 0; i < ci->n_null_counts; i++) pt__thrift_put_i64(&o, ci->null_counts[i]);
  }
  pt__thrift_put_stop(&o);
  return o.rc;
}
