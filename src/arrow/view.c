/* view.c — the parsed read-only view of an (array, schema) pair that
 * validation, copying, IPC writing and JSON output walk, its element getters,
 * and full validation of array contents. Validation is what stands between a
 * corrupt IPC file or a buggy foreign producer and an out-of-bounds read, so
 * every check that bounds a later read lives here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "arrow/arrow.h"

/* Deeper nesting than this only comes from hostile input; refuse it before
 * recursion exhausts the stack. */
#define MAX_DEPTH 64

/* ------------------------------------------------------------------------ */
/* Building the view tree */

static int view_init(pt__view *v, const struct ArrowSchema *schema,
                     const struct ArrowArray *array, int depth, pt_error *err);

/* The prefix naming child i of the node (schema) in messages. */
static int prefix_child(pt_error *err, int rc, const struct ArrowSchema *schema, int64_t i,
                        int depth) {
  const struct ArrowSchema *c = schema->children[i];
  pt_type t;
  bool is_struct = pt_type_parse(schema, &t, NULL) == PT_OK && (t.id == PT_TYPE_STRUCT || pt__type_is_union(t.id));
  if (is_struct && c->name != NULL && c->name[0] != '\0')
    return pt__error_prefix(err, rc, "%s '%s': ", depth == 0 ? "column" : "field", c->name);
  return pt__error_prefix(err, rc, "child %lld: ", (long long)i);
}

static int view_init(pt__view *v, const struct ArrowSchema *schema,
                     const struct ArrowArray *array, int depth, pt_error *err) {
  memset(v, 0, sizeof *v);
  if (depth > MAX_DEPTH)
    return pt__errorf(err, PT_EINVAL, "nesting is deeper than %d levels", MAX_DEPTH);
  PT_RETURN_NOT_OK(pt_type_parse(schema, &v->type, err));
  if (array == NULL) return pt__errorf(err, PT_EINVAL, "array is NULL");
  if (array->release == NULL) return pt__errorf(err, PT_EINVAL, "array has been released");
  if (array->length < 0)
    return pt__errorf(err, PT_EINVAL, "length %lld is negative", (long long)array->length);
  if (array->offset < 0)
    return pt__errorf(err, PT_EINVAL, "offset %lld is negative", (long long)array->offset);
  if (array->null_count < -1)
    return pt__errorf(err, PT_EINVAL, "null_count %lld is negative",
                      (long long)array->null_count);
  int64_t end;
  /* Far beyond any real array; the bound keeps later size arithmetic
   * ((end + 1) * 8 and the like) from overflowing. */
  if (pt__add_overflow(array->offset, array->length, &end) || end > (INT64_C(1) << 58))
    return pt__errorf(err, PT_EINVAL, "offset %lld + length %lld is too large",
                      (long long)array->offset, (long long)array->length);
  int nb = pt__type_n_buffers(v->type.id);
  /* Views: validity, views, any number of data buffers, their sizes. */
  if (pt__type_is_view(v->type.id) && array->n_buffers >= 3) nb = (int)array->n_buffers;
  if (array->n_buffers != nb) {
    char name[128];
    if (pt_type_name(schema, name, sizeof name) < 0) snprintf(name, sizeof name, "?");
    return pt__errorf(err, PT_EINVAL, "%s array needs %d buffers but has %lld", name, nb,
                      (long long)array->n_buffers);
  }
  if (nb > 0 && array->buffers == NULL)
    return pt__errorf(err, PT_EINVAL, "buffers array is NULL");
  if (array->n_children != schema->n_children)
    return pt__errorf(err, PT_EINVAL, "array has %lld children, its schema %lld",
                      (long long)array->n_children, (long long)schema->n_children);
  if (array->n_children > 0 && array->children == NULL)
    return pt__errorf(err, PT_EINVAL, "children array is NULL");
  if ((schema->dictionary != NULL) != (array->dictionary != NULL))
    return pt__errorf(err, PT_EINVAL, schema->dictionary ? "array has no dictionary"
                                                         : "array has a dictionary its schema "
                                                           "does not declare");

  v->schema = schema;
  v->array = array;
  v->length = array->length;
  v->offset = array->offset;
  v->null_count = array->null_count;
  if (pt__type_is_union(v->type.id)) {
    /* No validity bitmap: a row is null when its child's value is. */
    v->values = array->buffers[0];
    if (nb > 1) v->data = array->buffers[1];
    memset(v->union_child, -1, sizeof v->union_child);
    int8_t codes[128];
    int n = pt__union_codes(v->type.type_codes, codes, 128);
    for (int k = 0; k < n; k++) v->union_child[codes[k]] = (int8_t)k;
  } else if (pt__type_is_view(v->type.id)) {
    v->validity = array->buffers[0];
    v->values = array->buffers[1];
    v->n_variadic = nb - 3;
    v->variadic = (const uint8_t *const *)array->buffers + 2;
    v->variadic_sizes = array->buffers[nb - 1];
  } else {
    if (nb > 0) v->validity = array->buffers[0];
    if (nb > 1) v->values = array->buffers[1];
    if (nb > 2) v->data = array->buffers[2];
  }

  int rc = PT_OK;
  if (array->n_children > 0) {
    v->children = pt__calloc((size_t)array->n_children, sizeof *v->children);
    if (v->children == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for a view");
    for (int64_t i = 0; i < array->n_children; i++) {
      rc = view_init(&v->children[i], schema->children[i], array->children[i], depth + 1, err);
      if (rc != PT_OK) {
        prefix_child(err, rc, schema, i, depth);
        goto reset_view;
      }
      v->n_children = i + 1;
    }
  }
  if (array->dictionary != NULL) {
    v->dictionary = pt__calloc(1, sizeof *v->dictionary);
    if (v->dictionary == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory for a view");
      goto reset_view;
    }
    rc = view_init(v->dictionary, schema->dictionary, array->dictionary, depth + 1, err);
    if (rc != PT_OK) {
      pt__free(v->dictionary);
      v->dictionary = NULL;
      pt__error_prefix(err, rc, "dictionary: ");
      goto reset_view;
    }
  }
  return PT_OK;

reset_view:
  pt__view_reset(v);
  return rc;
}

int pt__view_init(pt__view *v, const struct ArrowSchema *schema,
                  const struct ArrowArray *array, pt_error *err) {
  return view_init(v, schema, array, 0, err);
}

void pt__view_reset(pt__view *v) {
  if (v == NULL) return;
  for (int64_t i = 0; i < v->n_children; i++) pt__view_reset(&v->children[i]);
  pt__free(v->children);
  if (v->dictionary != NULL) {
    pt__view_reset(v->dictionary);
    pt__free(v->dictionary);
  }
  v->children = NULL;
  v->dictionary = NULL;
  v->n_children = 0;
}

/* ------------------------------------------------------------------------ */
/* Getters */

int64_t pt__view_ree_run(const pt__view *v, int64_t i) {
  const pt__view *ends = &v->children[0];
  int64_t j = v->offset + i, lo = 0, hi = ends->length - 1;
  /* The first run whose end is beyond j (validation made one exist). */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (pt__view_get_int(ends, mid) > j) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

bool pt__view_ree_valid(const pt__view *v, int64_t i) {
  return pt__view_is_valid(&v->children[1], pt__view_ree_run(v, i));
}

bool pt__view_union_valid(const pt__view *v, int64_t i) {
  int64_t row;
  int c = pt__view_union_at(v, i, &row);
  return c >= 0 && pt__view_is_valid(&v->children[c], row);
}

int64_t pt__view_get_int(const pt__view *v, int64_t i) {
  const uint8_t *p = v->values;
  int64_t j = v->offset + i;
  switch (v->type.id) {
    case PT_TYPE_BOOL: return pt__bit_get(p, j);
    case PT_TYPE_INT8: return (int8_t)p[j];
    case PT_TYPE_UINT8: return p[j];
    case PT_TYPE_INT16: return (int16_t)pt__load_u16(p + j * 2);
    case PT_TYPE_UINT16: return pt__load_u16(p + j * 2);
    case PT_TYPE_INT32:
    case PT_TYPE_DATE32:
    case PT_TYPE_TIME32:
    case PT_TYPE_INTERVAL_MONTHS: return pt__load_i32(p + j * 4);
    case PT_TYPE_UINT32: return pt__load_u32(p + j * 4);
    case PT_TYPE_INT64:
    case PT_TYPE_TIMESTAMP:
    case PT_TYPE_DURATION:
    case PT_TYPE_DATE64:
    case PT_TYPE_TIME64: return pt__load_i64(p + j * 8);
    case PT_TYPE_UINT64: return (int64_t)pt__load_u64(p + j * 8);
    case PT_TYPE_HALF_FLOAT:
    case PT_TYPE_FLOAT:
    case PT_TYPE_DOUBLE: return (int64_t)pt__view_get_double(v, i);
    default: return 0;
  }
}

uint64_t pt__view_get_uint(const pt__view *v, int64_t i) {
  const uint8_t *p = v->values;
  int64_t j = v->offset + i;
  switch (v->type.id) {
    case PT_TYPE_UINT8: return p[j];
    case PT_TYPE_UINT16: return pt__load_u16(p + j * 2);
    case PT_TYPE_UINT32: return pt__load_u32(p + j * 4);
    case PT_TYPE_UINT64: return pt__load_u64(p + j * 8);
    default: return (uint64_t)pt__view_get_int(v, i);
  }
}

double pt__view_get_double(const pt__view *v, int64_t i) {
  const uint8_t *p = v->values;
  int64_t j = v->offset + i;
  switch (v->type.id) {
    case PT_TYPE_HALF_FLOAT: return pt__half_to_double(pt__load_u16(p + j * 2));
    case PT_TYPE_FLOAT: {
      float f;
      memcpy(&f, p + j * 4, 4);
      return f;
    }
    case PT_TYPE_DOUBLE: {
      double d;
      memcpy(&d, p + j * 8, 8);
      return d;
    }
    case PT_TYPE_UINT8:
    case PT_TYPE_UINT16:
    case PT_TYPE_UINT32:
    case PT_TYPE_UINT64: return (double)pt__view_get_uint(v, i);
    default: return (double)pt__view_get_int(v, i);
  }
}

bool pt__view_get_bool(const pt__view *v, int64_t i) {
  if (v->type.id == PT_TYPE_BOOL) return pt__bit_get(v->values, v->offset + i);
  return pt__view_get_int(v, i) != 0;
}


const uint8_t *pt__view_get_bytes(const pt__view *v, int64_t i, int64_t *len) {
  int64_t j = v->offset + i;
  switch (v->type.id) {
    case PT_TYPE_STRING:
    case PT_TYPE_LARGE_STRING:
    case PT_TYPE_BINARY:
    case PT_TYPE_LARGE_BINARY: {
      int64_t start = pt__view_offset(v, j), end = pt__view_offset(v, j + 1);
      *len = end - start;
      /* A NULL data buffer is allowed when every value is empty. */
      return v->data ? v->data + start : (const uint8_t *)"";
    }
    case PT_TYPE_STRING_VIEW:
    case PT_TYPE_BINARY_VIEW: {
      const uint8_t *view = v->values + j * 16;
      *len = pt__load_i32(view);
      if (*len <= 12) return view + 4;
      return v->variadic[pt__load_i32(view + 8)] + pt__load_i32(view + 12);
    }
    case PT_TYPE_FIXED_SIZE_BINARY:
      *len = v->type.byte_width;
      return v->values ? v->values + j * v->type.byte_width : (const uint8_t *)"";
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256:
    case PT_TYPE_INTERVAL_DAY_TIME:
    case PT_TYPE_INTERVAL_MONTH_DAY_NANO: {
      int64_t w = pt__type_bit_width(&v->type) / 8;
      *len = w;
      return v->values + j * w;
    }
    default: *len = 0; return NULL;
  }
}

void pt__view_list_range(const pt__view *v, int64_t i, int64_t *start, int64_t *end) {
  int64_t j = v->offset + i;
  if (v->type.id == PT_TYPE_FIXED_SIZE_LIST) {
    *start = j * v->type.list_size;
    *end = *start + v->type.list_size;
  } else if (v->type.id == PT_TYPE_LIST || v->type.id == PT_TYPE_LARGE_LIST ||
             v->type.id == PT_TYPE_MAP) {
    *start = pt__view_offset(v, j);
    *end = pt__view_offset(v, j + 1);
  } else if (v->type.id == PT_TYPE_LIST_VIEW) {
    *start = pt__load_i32(v->values + j * 4);
    *end = *start + pt__load_i32(v->data + j * 4);
  } else if (v->type.id == PT_TYPE_LARGE_LIST_VIEW) {
    *start = pt__load_i64(v->values + j * 8);
    *end = *start + pt__load_i64(v->data + j * 8);
  } else {
    *start = *end = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Validation */

typedef struct validate_ctx {
  pt__buffer_size_fn sizes;
  void *arg;
} validate_ctx;

/* Byte size of buffer i if the caller knows it, else -1. */
static int64_t known_size(const validate_ctx *c, const pt__view *v, int64_t i) {
  if (c->sizes == NULL) return -1;
  return c->sizes(v->array, i, c->arg);
}

static const char *buffer_role(const pt__view *v, int64_t i) {
  if (pt__type_is_union(v->type.id)) return i == 0 ? "type ids buffer" : "offsets buffer";
  if (pt__type_list_view_width(v->type.id) && i > 0) return i == 1 ? "offsets buffer" : "sizes buffer";
  if (pt__type_is_view(v->type.id) && i > 0)
    return i == 1 ? "views buffer" : i == v->array->n_buffers - 1 ? "buffer sizes" : "data buffer";
  if (i == 0) return "validity bitmap";
  if (i == 1) return pt__type_offsets_kind(v->type.id) ? "offsets buffer" : "values buffer";
  return "data buffer";
}

/* Buffer i of v must hold at least need bytes: a NULL pointer is allowed only
 * when nothing is needed, and a known size must cover need. */
static int check_buffer(const validate_ctx *c, const pt__view *v, int64_t i, int64_t need,
                        pt_error *err) {
  const void *p = v->array->buffers[i];
  if (need > 0 && p == NULL)
    return pt__errorf(err, PT_EINVAL, "%s (buffer %lld) is NULL but %lld bytes are needed",
                      buffer_role(v, i), (long long)i, (long long)need);
  /* Sizes are asked for buffers 0-2 only (3 asks about sorted offsets). */
  int64_t size = p != NULL && i < 3 ? known_size(c, v, i) : -1;
  if (size >= 0 && size < need)
    return pt__errorf(err, PT_EFORMAT,
                      "%s (buffer %lld) has %lld bytes but %lld are needed for %lld rows "
                      "at offset %lld",
                      buffer_role(v, i), (long long)i, (long long)size, (long long)need,
                      (long long)v->length, (long long)v->offset);
  return PT_OK;
}

/* Whether offsets o[0..n] never decrease. Validation runs on every IPC
 * batch read, so this loop is on the read path of every string column.
 * Each pair is compared from memory (no value carried from one step to the
 * next) in blocks of a fixed 16: that shape GCC vectorizes at -O2 (measured
 * 29 GB/s against 7 for the loop carrying the previous offset). */
#define PT_OFFSETS_SORTED(T, load)                                            \
  static bool offsets_sorted_##T(const uint8_t *o, int64_t n) {               \
    const int64_t w = (int64_t)sizeof(T);                                     \
    unsigned bad = 0;                                                         \
    int64_t j = 0;                                                            \
    for (; j + 16 <= n; j += 16) {                                            \
      const uint8_t *b = o + j * w;                                           \
      for (int k = 0; k < 16; k++) bad |= load(b + (k + 1) * w) < load(b + k * w); \
    }                                                                         \
    for (; j < n; j++) bad |= load(o + (j + 1) * w) < load(o + j * w);       \
    return bad == 0;                                                          \
  }
PT_OFFSETS_SORTED(int32_t, pt__load_i32)
PT_OFFSETS_SORTED(int64_t, pt__load_i64)
#undef PT_OFFSETS_SORTED

bool pt__offsets_sorted(const uint8_t *o, int64_t n, int width) {
  return width == 8 ? offsets_sorted_int64_t(o, n) : offsets_sorted_int32_t(o, n);
}

/* Offsets [offset, offset+length] must be non-negative and non-decreasing;
 * *last gets the final one (0 when length is 0). Their presence in the
 * buffer was checked before. */
static int check_offsets(const validate_ctx *c, const pt__view *v, int64_t *last, int64_t *first,
                         pt_error *err) {
  *first = *last = 0;
  if (v->length == 0) return PT_OK;
  int64_t prev = pt__view_offset(v, v->offset);
  if (prev < 0)
    return pt__errorf(err, PT_EFORMAT, "offset %lld (%lld) is negative", (long long)v->offset,
                      (long long)prev);
  *first = prev;
  bool wide = pt__type_offsets_kind(v->type.id) == 2;
  const uint8_t *o = v->values + v->offset * (wide ? 8 : 4);
  bool sorted = known_size(c, v, PT__SORTED_OFFSETS) == 1 ||
                (wide ? offsets_sorted_int64_t(o, v->length) : offsets_sorted_int32_t(o, v->length));
  if (!sorted) {
    /* Rare: find the first decrease for the message. */
    for (int64_t j = v->offset + 1; j <= v->offset + v->length; j++) {
      int64_t cur = pt__view_offset(v, j);
      if (cur < prev)
        return pt__errorf(err, PT_EFORMAT, "offset %lld (%lld) is smaller than offset %lld (%lld)",
                          (long long)j, (long long)cur, (long long)(j - 1), (long long)prev);
      prev = cur;
    }
  }
  *last = pt__view_offset(v, v->offset + v->length);
  return PT_OK;
}

static int validate(const pt__view *v, const validate_ctx *c, int depth, pt_error *err);

/* Map keys may not be null: neither an entry nor its key (entries [first,
 * last) of the child are those the map's rows use). */
static int check_map_keys(const pt__view *v, int64_t first, int64_t last, pt_error *err) {
  const pt__view *entries = &v->children[0];
  const pt__view *keys = &entries->children[0];
  for (int64_t k = first; k < last; k++) {
    if (!pt__view_is_valid(entries, k) || !pt__view_is_valid(keys, entries->offset + k))
      return pt__errorf(err, PT_EFORMAT, "map entry %lld has a null key; map keys must not be null",
                        (long long)k);
  }
  return PT_OK;
}

/* Type ids of the rows must be the union's; sparse children cover the rows
 * (parent offset included), dense offsets point into their child. */
static int validate_union(const pt__view *v, const validate_ctx *c, int depth, pt_error *err) {
  int64_t end = v->offset + v->length;
  if (v->null_count > 0)
    return pt__errorf(err, PT_EINVAL, "null_count is %lld but a union has no validity bitmap",
                      (long long)v->null_count);
  PT_RETURN_NOT_OK(check_buffer(c, v, 0, end, err));
  bool dense = v->type.id == PT_TYPE_DENSE_UNION;
  if (dense) PT_RETURN_NOT_OK(check_buffer(c, v, 1, end * 4, err));
  if (!dense) {
    for (int64_t i = 0; i < v->n_children; i++)
      if (v->children[i].length < end) {
        int rc = pt__errorf(err, PT_EFORMAT,
                            "length %lld is shorter than the %lld rows of its sparse union "
                            "(offset %lld + length %lld)",
                            (long long)v->children[i].length, (long long)end,
                            (long long)v->offset, (long long)v->length);
        return prefix_child(err, rc, v->schema, i, depth);
      }
  }

  for (int64_t j = v->offset; j < end; j++) {
    int8_t code = (int8_t)v->values[j];
    int ci = code < 0 ? -1 : v->union_child[code];
    if (ci < 0)
      return pt__errorf(err, PT_EFORMAT, "row %lld: type id %d is not one of the union's",
                        (long long)(j - v->offset), code);
    if (dense) {
      int32_t o = pt__load_i32(v->data + j * 4);
      if (o < 0 || o >= v->children[ci].length)
        return pt__errorf(err, PT_EFORMAT,
                          "row %lld: offset %d is out of range of child %d (%lld values)",
                          (long long)(j - v->offset), o, ci,
                          (long long)v->children[ci].length);
    }
  }
  return PT_OK;
}

/* Views of valid rows: non-negative lengths; out-of-line ones inside their
 * data buffer (whose size is known from IPC, else from the C Data
 * Interface's sizes buffer) and starting with their prefix. Null rows'
 * views are never read. */
static int validate_views(const pt__view *v, const validate_ctx *c, pt_error *err) {
  int64_t end = v->offset + v->length;
  PT_RETURN_NOT_OK(check_buffer(c, v, 1, end * 16, err));
  int64_t nb = v->array->n_buffers;
  PT_RETURN_NOT_OK(check_buffer(c, v, nb - 1, v->n_variadic * 8, err));
  for (int64_t i = 0; i < v->length; i++) {
    if (v->validity != NULL && !pt__bit_get(v->validity, v->offset + i)) continue;
    const uint8_t *view = v->values + (v->offset + i) * 16;
    int32_t len = pt__load_i32(view);
    if (len < 0)
      return pt__errorf(err, PT_EFORMAT, "row %lld: view length %d is negative", (long long)i,
                        len);
    if (len <= 12) {
      /* The bytes after an inline value are zero (the format says so, and
       * comparing views whole relies on it). */
      for (int k = 4 + len; k < 16; k++)
        if (view[k] != 0)
          return pt__errorf(err, PT_EFORMAT,
                            "row %lld: inline view of %d bytes is not padded with zeros",
                            (long long)i, len);
      continue;
    }
    int32_t buf = pt__load_i32(view + 8), off = pt__load_i32(view + 12);
    if (buf < 0 || buf >= v->n_variadic)
      return pt__errorf(err, PT_EFORMAT,
                        "row %lld: view of buffer %d, but there are %lld data buffers",
                        (long long)i, buf, (long long)v->n_variadic);
    int64_t size = buf == 0 ? known_size(c, v, 2) : -1;
    if (size < 0) size = pt__load_i64(v->variadic_sizes + 8 * buf);
    if (off < 0 || (int64_t)off + len > size)
      return pt__errorf(err, PT_EFORMAT,
                        "row %lld: view of bytes [%d, %lld) is outside data buffer %d (%lld "
                        "bytes)",
                        (long long)i, off, (long long)off + len, buf, (long long)size);
    if (v->variadic[buf] == NULL || memcmp(view + 4, v->variadic[buf] + off, 4) != 0)
      return pt__errorf(err, PT_EFORMAT, "row %lld: view prefix differs from its data",
                        (long long)i);
  }
  return PT_OK;
}

/* Every row of a list view, null ones too (as Arrow C++ requires): offset
 * and size non-negative, the range inside the child. */
static int validate_list_views(const pt__view *v, const validate_ctx *c, pt_error *err) {
  int64_t end = v->offset + v->length, w = pt__type_list_view_width(v->type.id);
  PT_RETURN_NOT_OK(check_buffer(c, v, 1, end * w, err));
  PT_RETURN_NOT_OK(check_buffer(c, v, 2, end * w, err));
  int64_t child = v->children[0].length;
  for (int64_t i = 0; i < v->length; i++) {
    int64_t j = v->offset + i;
    int64_t o = w == 4 ? pt__load_i32(v->values + j * 4) : pt__load_i64(v->values + j * 8);
    int64_t n = w == 4 ? pt__load_i32(v->data + j * 4) : pt__load_i64(v->data + j * 8);
    if (o < 0 || n < 0 || n > child || o > child - n)
      return pt__errorf(err, PT_EFORMAT,
                        "row %lld: list view of offset %lld and size %lld is outside the "
                        "child's %lld values",
                        (long long)i, (long long)o, (long long)n, (long long)child);
  }
  return PT_OK;
}

/* Whether the n run ends at p (width w bytes) increase from above 0: one
 * pass with no branch on the data, which the compiler vectorizes (this runs
 * on every run-end encoded column read); the message comes from a second,
 * slow pass only when this fails. */
#define PT_RUNS_INCREASE(T, load)                                            \
  static bool runs_increase_##T(const uint8_t *p, int64_t n) {               \
    const int64_t w = (int64_t)sizeof(T);                                    \
    unsigned bad = n > 0 && load(p) <= 0;                                    \
    for (int64_t k = 1; k < n; k++) bad |= load(p + k * w) <= load(p + (k - 1) * w); \
    return bad == 0;                                                         \
  }
static inline int16_t load_i16(const uint8_t *p) { return (int16_t)pt__load_u16(p); }
PT_RUNS_INCREASE(int16_t, load_i16)
PT_RUNS_INCREASE(int32_t, pt__load_i32)
PT_RUNS_INCREASE(int64_t, pt__load_i64)
#undef PT_RUNS_INCREASE

/* Run ends: no nulls, positive and increasing, the last covering the rows;
 * a value for every run. */
static int validate_ree(const pt__view *v, pt_error *err) {
  if (v->null_count > 0)
    return pt__errorf(err, PT_EINVAL,
                      "null_count is %lld but a run-end encoded array has no validity bitmap",
                      (long long)v->null_count);
  const pt__view *ends = &v->children[0];
  int64_t n = ends->length, prev = 0;
  if (v->children[1].length < n)
    return pt__errorf(err, PT_EFORMAT, "%lld runs but %lld values", (long long)n,
                      (long long)v->children[1].length);
  if (n > 0 && (ends->validity == NULL || ends->null_count == 0)) {
    int64_t w = pt__type_bit_width(&ends->type) / 8;
    const uint8_t *p = ends->values + ends->offset * w;
    bool ok = w == 2 ? runs_increase_int16_t(p, n)
              : w == 4 ? runs_increase_int32_t(p, n) : runs_increase_int64_t(p, n);
    if (ok) {
      prev = pt__view_get_int(ends, n - 1);
      n = 0; /* checked: skip the slow pass */
    }
  }
  for (int64_t k = 0; k < n; k++) {
    if (!pt__view_is_valid(ends, k))
      return pt__errorf(err, PT_EFORMAT, "run end %lld is null", (long long)k);
    int64_t e = pt__view_get_int(ends, k);
    if (e <= prev)
      return pt__errorf(err, PT_EFORMAT, "run end %lld (%lld) is not above the one before (%lld)",
                        (long long)k, (long long)e, (long long)prev);
    prev = e;
  }
  if (v->length > 0 && prev < v->offset + v->length)
    return pt__errorf(err, PT_EFORMAT,
                      "the runs end at row %lld, before the %lld rows (offset %lld + length %lld)",
                      (long long)prev, (long long)(v->offset + v->length), (long long)v->offset,
                      (long long)v->length);
  return PT_OK;
}

/* What the format asks of dates and times of valid rows: date64 whole days,
 * times of day within [0, one day) of their unit. */
static int validate_temporal(const pt__view *v, pt_error *err) {
  static const int64_t per_day[] = {INT64_C(86400), INT64_C(86400000), INT64_C(86400000000),
                                    INT64_C(86400000000000)};
  for (int64_t i = 0; i < v->length; i++) {
    if (!pt__view_is_valid(v, i)) continue;
    int64_t x = pt__view_get_int(v, i);
    if (v->type.id == PT_TYPE_DATE64) {
      if (x % INT64_C(86400000) != 0)
        return pt__errorf(err, PT_EFORMAT,
                          "row %lld: date64 %lld is not a whole number of days (of 86400000 ms)",
                          (long long)i, (long long)x);
    } else if (x < 0 || x >= per_day[v->type.unit]) {
      static const char *const units[] = {"s", "ms", "us", "ns"};
      return pt__errorf(err, PT_EFORMAT, "row %lld: time %lld %s is not within one day",
                        (long long)i, (long long)x, units[v->type.unit]);
    }
  }
  return PT_OK;
}

static int validate_node(const pt__view *v, const validate_ctx *c, int depth, pt_error *err) {
  int64_t end = v->offset + v->length; /* physical rows covered; no overflow (init) */
  const pt_type *t = &v->type;

  if (v->null_count > v->length)
    return pt__errorf(err, PT_EINVAL, "null_count %lld is larger than the length %lld",
                      (long long)v->null_count, (long long)v->length);
  if (t->id == PT_TYPE_NA) return PT_OK;

  if (pt__type_is_union(t->id)) return validate_union(v, c, depth, err);
  if (t->id == PT_TYPE_RUN_END_ENCODED) return validate_ree(v, err);

  /* Validity bitmap. */
  if (v->validity == NULL) {
    if (v->null_count > 0)
      return pt__errorf(err, PT_EINVAL, "null_count is %lld but there is no validity bitmap",
                        (long long)v->null_count);
  } else {
    PT_RETURN_NOT_OK(check_buffer(c, v, 0, (end + 7) / 8, err));
    if (v->null_count >= 0) {
      int64_t nulls = v->length - pt__bits_count(v->validity, v->offset, v->length);
      if (nulls != v->null_count)
        return pt__errorf(err, PT_EINVAL,
                          "null_count is %lld but the validity bitmap has %lld nulls",
                          (long long)v->null_count, (long long)nulls);
    }
  }

  if (pt__type_is_view(t->id)) return validate_views(v, c, err);
  if (t->id == PT_TYPE_DATE64 || t->id == PT_TYPE_TIME32 || t->id == PT_TYPE_TIME64) {
    PT_RETURN_NOT_OK(check_buffer(c, v, 1, end * (pt__type_bit_width(t) / 8), err));
    return validate_temporal(v, err);
  }
  if (pt__type_list_view_width(t->id)) return validate_list_views(v, c, err);
  int64_t bw = pt__type_bit_width(t);
  int ok = pt__type_offsets_kind(t->id);
  if (bw > 0) {
    int64_t bits;
    if (pt__mul_overflow(bw, end, &bits) || bits > INT64_MAX - 8)
      return pt__errorf(err, PT_EINVAL, "%lld rows of %lld bits overflow", (long long)end,
                        (long long)bw);
    PT_RETURN_NOT_OK(check_buffer(c, v, 1, (bits + 7) / 8, err));
  } else if (ok != 0) {
    int64_t w = ok == 1 ? 4 : 8;
    /* Zero-length arrays may come with no offsets at all (pyarrow does
     * this); otherwise offsets[offset .. offset+length] are read. */
    if (v->length > 0) PT_RETURN_NOT_OK(check_buffer(c, v, 1, (end + 1) * w, err));
    int64_t first, last;
    PT_RETURN_NOT_OK(check_offsets(c, v, &last, &first, err));
    if (pt__type_n_buffers(t->id) == 3) {
      PT_RETURN_NOT_OK(check_buffer(c, v, 2, last, err));
    } else if (last > v->children[0].length) {
      return pt__errorf(err, PT_EFORMAT, "offset %lld (%lld) is beyond the child's length %lld",
                        (long long)end, (long long)last, (long long)v->children[0].length);
    } else if (t->id == PT_TYPE_MAP) {
      PT_RETURN_NOT_OK(check_map_keys(v, first, last, err));
    }
  } else if (t->id == PT_TYPE_FIXED_SIZE_LIST) {
    int64_t need;
    if (pt__mul_overflow(end, t->list_size, &need))
      return pt__errorf(err, PT_EINVAL, "%lld lists of %d values overflow", (long long)end,
                        t->list_size);
    if (v->children[0].length < need)
      return pt__errorf(err, PT_EFORMAT,
                        "child has %lld values but %lld rows at offset %lld of lists of %d "
                        "need %lld",
                        (long long)v->children[0].length, (long long)v->length,
                        (long long)v->offset, t->list_size, (long long)need);
  } else if (t->id == PT_TYPE_STRUCT) {
    for (int64_t i = 0; i < v->n_children; i++)
      if (v->children[i].length < end) {
        int rc = pt__errorf(err, PT_EFORMAT,
                            "length %lld is shorter than the %lld rows of its struct (offset "
                            "%lld + length %lld)",
                            (long long)v->children[i].length, (long long)end,
                            (long long)v->offset, (long long)v->length);
        return prefix_child(err, rc, v->schema, i, depth);
      }
  }
  return PT_OK;
}

static int validate_dictionary_indices(const pt__view *v, pt_error *err) {
  int64_t n = v->dictionary->length;
  for (int64_t i = 0; i < v->length; i++) {
    if (!pt__view_is_valid(v, i)) continue;
    int64_t k;
    if (pt__type_is_unsigned_int(v->type.id)) {
      uint64_t u = pt__view_get_uint(v, i);
      k = u > (uint64_t)INT64_MAX ? -1 : (int64_t)u;
    } else {
      k = pt__view_get_int(v, i);
    }
    if (k < 0 || k >= n) {
      if (pt__type_is_unsigned_int(v->type.id))
        return pt__errorf(err, PT_EFORMAT,
                          "dictionary index %" PRIu64 " at row %lld is out of range for a "
                          "dictionary of %lld values",
                          pt__view_get_uint(v, i), (long long)i, (long long)n);
      return pt__errorf(err, PT_EFORMAT,
                        "dictionary index %lld at row %lld is out of range for a dictionary "
                        "of %lld values",
                        (long long)k, (long long)i, (long long)n);
    }
  }
  return PT_OK;
}

static int validate(const pt__view *v, const validate_ctx *c, int depth, pt_error *err) {
  if (depth > MAX_DEPTH)
    return pt__errorf(err, PT_EINVAL, "nesting is deeper than %d levels", MAX_DEPTH);
  /* Children first: the checks of this node compare against their lengths
   * and a child error is the more precise one. */
  for (int64_t i = 0; i < v->n_children; i++) {
    int rc = validate(&v->children[i], c, depth + 1, err);
    if (rc != PT_OK) return prefix_child(err, rc, v->schema, i, depth);
  }
  if (v->dictionary != NULL) {
    int rc = validate(v->dictionary, c, depth + 1, err);
    if (rc != PT_OK) return pt__error_prefix(err, rc, "dictionary: ");
  }
  PT_RETURN_NOT_OK(validate_node(v, c, depth, err));
  if (v->dictionary != NULL) PT_RETURN_NOT_OK(validate_dictionary_indices(v, err));
  return PT_OK;
}

int pt__view_validate(const pt__view *v, pt__buffer_size_fn sizes, void *arg, pt_error *err) {
  validate_ctx c = {sizes, arg};
  return validate(v, &c, 0, err);
}

int pt_array_validate(const struct ArrowSchema *schema, const struct ArrowArray *array,
                      pt_error *err) {
  pt__view v;
  PT_RETURN_NOT_OK(pt__view_init(&v, schema, array, err));
  int rc = pt__view_validate(&v, NULL, NULL, err);
  pt__view_reset(&v);
  return rc;
}
