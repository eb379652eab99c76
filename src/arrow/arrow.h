/* arrow.h — what other modules may use of the Arrow layer beyond
 * include/protium.h: the buffer layout of each type, a parsed read-only view
 * of arrays (pt__view) used by validation, copying, IPC writing and JSON
 * output, and one way to make protium-owned ArrowArrays (pt__array_*) whose
 * buffers are either owned or held through a reference-counted region.
 *
 * The Arrow layer knows nothing of scheduling or processes.
 */
#ifndef PT_ARROW_H
#define PT_ARROW_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/core.h"
#include "protium.h"

/* ------------------------------------------------------------------------ */
/* Types and layouts */

/* Number of buffers an array of this type has in the C Data Interface
 * (validity first): null 0; bool and fixed-width 2; utf8/binary (large too)
 * 3; list/large_list 2; fixed_size_list and struct 1. */
int pt__type_n_buffers(pt_type_id id);

/* Bits per value of buffer 1 for fixed-width types (bool 1, int32 32,
 * decimal128 128, fixed_size_binary byte_width*8, date32 32, timestamp 64,
 * ...); 0 for all others. */
int64_t pt__type_bit_width(const pt_type *t);

/* 1 for utf8/binary/list (int32 offsets), 2 for the large variants (int64);
 * 0 for types without offsets. */
int pt__type_offsets_kind(pt_type_id id);

/* The number of children a schema of this type must have: 0, 1 (lists) or
 * -1 for "any" (struct). */
int pt__type_n_children(pt_type_id id);

/* Bytes per value of a decimal type (4, 8, 16, 32); 0 for other types. */
int pt__type_decimal_bytes(pt_type_id id);

/* 4 for list_view, 8 for large_list_view (offsets and sizes), else 0. */
int pt__type_list_view_width(pt_type_id id);

/* Whether the id is a string or binary view. */
bool pt__type_is_view(pt_type_id id);

/* Whether the id is a sparse or dense union. */
bool pt__type_is_union(pt_type_id id);
/* Parses a union's type id list ("0,1,5", as pt_type.type_codes) into
 * out[0..max); the count, or -1 if malformed (ids are 0 to 127). */
int pt__union_codes(const char *codes, int8_t *out, int max);

/* Whether the id is a signed / an unsigned integer type. */
bool pt__type_is_signed_int(pt_type_id id);
bool pt__type_is_unsigned_int(pt_type_id id);

/* ------------------------------------------------------------------------ */
/* Reference-counted memory regions: a mapped file, an IPC message buffer, or a
 * foreign array kept alive while slices of it are in use. */

typedef struct pt__shared {
  atomic_int_fast64_t refs;
  void (*destroy)(void *data, void *arg); /* called once, when refs reach 0 */
  void *data;
  void *arg;
} pt__shared;

/* A new region holding one reference; destroy(data, arg) runs when the last
 * reference is dropped. On failure (NULL, out of memory) destroy is not
 * called: the caller still owns data. */
pt__shared *pt__shared_new(void *data, void (*destroy)(void *, void *), void *arg);
void pt__shared_ref(pt__shared *s);
void pt__shared_unref(pt__shared *s);

/* ------------------------------------------------------------------------ */
/* protium-owned ArrowArrays.
 *
 * pt__array_init makes an array whose release callback frees: each buffer
 * marked owned (pt__free), the reference on `shared` if set, its children and
 * dictionary (released through their own release callbacks), and its own
 * bookkeeping. All buffers start NULL and unowned; children start released
 * (release == NULL) for the caller to fill. Builders, copies, slices and the
 * IPC reader all make arrays this way. */

int pt__array_init(struct ArrowArray *out, int64_t n_buffers, int64_t n_children,
                   bool with_dictionary, pt_error *err);
/* Sets buffer i to p. owned: pt__free(p) on release. */
void pt__array_set_buffer(struct ArrowArray *a, int64_t i, const void *p, bool owned);
/* The array keeps a reference on s until released (takes a new reference). */
void pt__array_hold(struct ArrowArray *a, pt__shared *s);
/* A zeroed, 64-byte aligned buffer of at least size bytes, for pt__array_*
 * arrays to own (free with pt__free). The padding is zeroed too, so that what
 * is written out is deterministic. NULL when out of memory or size < 0. */
void *pt__buffer_alloc_zeroed(int64_t size);
/* Whether array a was made by pt__array_init (so the helpers above apply). */
bool pt__array_is_ours(const struct ArrowArray *a);

/* A bitwise move: *dst takes the contents of *src, which is marked released. */
static inline void pt__array_move(struct ArrowArray *src, struct ArrowArray *dst) {
  *dst = *src;
  src->release = NULL;
}
static inline void pt__schema_move(struct ArrowSchema *src, struct ArrowSchema *dst) {
  *dst = *src;
  src->release = NULL;
}

/* Walks C Data Interface metadata (int32 count, then per pair int32 key
 * length, key bytes, int32 value length, value bytes), as made by
 * pt_schema_set_metadata_n: pt__md_count gives the pairs (0 for NULL) and
 * puts *at on the first; each pt__md_next reads the pair at *at and moves
 * on. Lengths are trusted, as the producer wrote them. */
typedef struct {
  const char *key, *value;
  int32_t key_len, value_len;
} pt__md_pair;
static inline int32_t pt__md_count(const char *md, const char **at) {
  *at = md ? md + 4 : NULL;
  return md ? pt__load_i32(md) : 0;
}
static inline pt__md_pair pt__md_next(const char **at) {
  pt__md_pair kv;
  kv.key_len = pt__load_i32(*at);
  kv.key = *at + 4;
  kv.value_len = pt__load_i32(kv.key + kv.key_len);
  kv.value = kv.key + kv.key_len + 4;
  *at = kv.value + kv.value_len;
  return kv;
}

/* ------------------------------------------------------------------------ */
/* Views: a parsed, read-only, recursive view of an (array, schema) pair.
 *
 * The view borrows from both; it owns only its children/dictionary arrays of
 * views. buffer sizes: known for arrays protium made or read from IPC,
 * otherwise -1 (the C Data Interface does not carry them). */

typedef struct pt__view {
  pt_type type;
  const struct ArrowSchema *schema;
  const struct ArrowArray *array;
  int64_t length;        /* rows */
  int64_t offset;        /* array->offset: add to every row index */
  int64_t null_count;    /* as the array says; may be -1 (unknown) */
  const uint8_t *validity;   /* NULL when there is no validity bitmap (and
                                for unions, which have none) */
  const uint8_t *values;     /* buffer 1: fixed-width values or offsets;
                                unions: buffer 0, the int8 type ids */
  const uint8_t *data;       /* buffer 2 of utf8/binary: the bytes; dense
                                unions: buffer 1, the int32 offsets; list
                                views: buffer 2, the sizes */
  int8_t union_child[128];   /* unions: child index of each type id, or -1 */
  int64_t n_variadic;        /* string/binary views: data buffers (2..) */
  const uint8_t *const *variadic; /* their pointers (into array->buffers) */
  const uint8_t *variadic_sizes;  /* their int64 sizes (the last buffer) */
  int64_t n_children;
  struct pt__view *children; /* owned array of n_children views */
  struct pt__view *dictionary; /* owned; NULL if not dictionary-encoded */
} pt__view;

/* Builds the view tree. Checks structure (buffer and child counts, types
 * parse) but not contents; pt__view_validate checks contents. On failure
 * nothing is left to reset. */
int pt__view_init(pt__view *v, const struct ArrowSchema *schema,
                  const struct ArrowArray *array, pt_error *err);
void pt__view_reset(pt__view *v);

/* Full content validation (what pt_array_validate does): offsets monotonic
 * and in range of data/children, lengths of children covering the rows,
 * dictionary indices in range, null_count consistent where given.
 * buffer_sizes (may be NULL): for views of arrays whose buffer sizes are known
 * (IPC): a callback giving the byte size of buffer i of the array at a node,
 * or -1 if unknown. Asked for i = PT__SORTED_OFFSETS, it answers 1 when the
 * array's offsets buffer is already known non-decreasing over all of its
 * bytes (checked by whoever filled it), which spares that loop here. */
#define PT__SORTED_OFFSETS 3
typedef int64_t (*pt__buffer_size_fn)(const struct ArrowArray *array, int64_t i, void *arg);
int pt__view_validate(const pt__view *v, pt__buffer_size_fn sizes, void *arg, pt_error *err);

/* Whether the n + 1 offsets at o (width 4 or 8 bytes) never decrease. */
bool pt__offsets_sorted(const uint8_t *o, int64_t n, int width);

/* Element access; i is relative to the view (the array offset is added
 * inside). No bounds checks: validate first. */
bool pt__view_union_valid(const pt__view *v, int64_t i);
bool pt__view_ree_valid(const pt__view *v, int64_t i);
static inline bool pt__view_is_valid(const pt__view *v, int64_t i) {
  if (v->type.id == PT_TYPE_NA) return false;
  if (v->validity == NULL && pt__type_is_union(v->type.id)) return pt__view_union_valid(v, i);
  if (v->type.id == PT_TYPE_RUN_END_ENCODED) return pt__view_ree_valid(v, i);
  return v->validity == NULL || pt__bit_get(v->validity, v->offset + i);
}
/* Row i of a run-end encoded view: the index of its run, i.e. its row in
 * the values child (children[1]) view's own indexing. Binary search. */
int64_t pt__view_ree_run(const pt__view *v, int64_t i);

/* Stores run end v (int16/32/64 as the run ends' width w bytes) at p. */
static inline void pt__store_run_end(uint8_t *p, int64_t w, int64_t v) {
  if (w == 2) {
    int16_t s = (int16_t)v;
    memcpy(p, &s, 2);
  } else if (w == 4) {
    pt__store_i32(p, (int32_t)v);
  } else {
    pt__store_i64(p, v);
  }
}

/* Row i of a union view: the index of the child holding its value, and
 * *row, that value's row in the child view's own indexing. */
static inline int pt__view_union_at(const pt__view *v, int64_t i, int64_t *row) {
  int64_t j = v->offset + i;
  int c = v->union_child[(uint8_t)v->values[j] & 127];
  *row = v->type.id == PT_TYPE_DENSE_UNION ? pt__load_i32(v->data + j * 4) : j;
  return c;
}
/* Offset j (physical index, array offset included) of a utf8/binary/list
 * view, int32 or int64 as the type has them. */
static inline int64_t pt__view_offset(const pt__view *v, int64_t j) {
  return pt__type_offsets_kind(v->type.id) == 2 ? pt__load_i64(v->values + j * 8)
                                                : pt__load_i32(v->values + j * 4);
}
int64_t pt__view_get_int(const pt__view *v, int64_t i);   /* signed ints, date, time */
uint64_t pt__view_get_uint(const pt__view *v, int64_t i); /* unsigned ints */
double pt__view_get_double(const pt__view *v, int64_t i); /* float16/32/64 */
bool pt__view_get_bool(const pt__view *v, int64_t i);
/* utf8/binary (large too), string/binary views, fixed_size_binary, decimals (4 to 32 bytes),
 * day_time (8 bytes) and month_day_nano (16 bytes) intervals. */
const uint8_t *pt__view_get_bytes(const pt__view *v, int64_t i, int64_t *len);
/* list/large_list/fixed_size_list/map/list views: child rows [*start, *end) of row i, in the
 * child view's own indexing (i.e. already including the list's offsets). */
void pt__view_list_range(const pt__view *v, int64_t i, int64_t *start, int64_t *end);
/* Dictionary-encoded: the index at row i (into v->dictionary). */
static inline int64_t pt__view_dict_index(const pt__view *v, int64_t i) {
  return pt__type_is_unsigned_int(v->type.id) ? (int64_t)pt__view_get_uint(v, i)
                                              : pt__view_get_int(v, i);
}

/* Writes the 16-byte view of value (p, len) at out: inline when it fits
 * (12 bytes), else pointing at offset off of data buffer buf (where the
 * caller puts the bytes). */
static inline void pt__view_make(uint8_t *out, const uint8_t *p, int32_t len, int32_t buf,
                                 int32_t off) {
  memset(out, 0, 16);
  pt__store_i32(out, len);
  if (len <= 12) {
    if (len > 0) memcpy(out + 4, p, (size_t)len);
  } else {
    memcpy(out + 4, p, 4);
    pt__store_i32(out + 8, buf);
    pt__store_i32(out + 12, off);
  }
}

/* IEEE half-precision conversions (round to nearest even). */
double pt__half_to_double(uint16_t h);
uint16_t pt__double_to_half(double d);

/* decimal128 <-> text with the given scale, e.g. "-12.340". out must hold at
 * least 48 bytes. Returns the text length. */
int pt__decimal128_to_string(const uint8_t le16[16], int32_t scale, char *out);
/* A decimal128's value as a double: its 128-bit integer over 10^scale. One
 * formula for every comparison of decimals with numbers (replace_where's
 * rows, partition keys), so that they agree to the last bit. */
double pt__decimal128_to_double(const uint8_t le16[16], int32_t scale);
int pt__decimal128_from_string(const char *text, int32_t precision, int32_t scale,
                               uint8_t le16[16], pt_error *err);
/* The same for a decimal of `bytes` bytes (4, 8, 16 or 32: decimal32 to
 * decimal256), little-endian two's complement. to_string: out must hold
 * PT__DECIMAL_TEXT_MAX bytes; -1 when the scale is beyond -76..76. */
#define PT__DECIMAL_TEXT_MAX 168
int pt__decimal_to_string(const uint8_t *le, int bytes, int32_t scale, char *out);
int pt__decimal_from_string(const char *text, int bytes, int32_t precision, int32_t scale,
                            uint8_t *le, pt_error *err);

#endif /* PT_ARROW_H */
