/* builder.c — row-by-row construction of ArrowArrays (pt_builder_*), used by
 * the CSV and PostgreSQL readers, tests and user code. Buffers are 64-byte
 * aligned, grow geometrically and stay zero beyond what was written, so that
 * finished arrays are deterministic byte for byte (IPC output, hashing).
 * Every append first reserves all the memory it needs, then writes: a failed
 * append leaves the builder as it was.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "arrow/arrow.h"

/* A growable, zero-filled, 64-byte aligned buffer. */
typedef struct bbuf {
  uint8_t *p;
  int64_t len; /* bytes in use (only tracked for data buffers) */
  int64_t cap; /* bytes allocated, a multiple of 64 */
} bbuf;

struct pt_builder {
  pt_type type;
  const struct ArrowSchema *schema; /* this node, inside the root's copy */
  struct ArrowSchema schema_copy;   /* root only: the copy every node borrows */
  bool is_root;
  pt_error *err;       /* shared by the whole tree; owned by the root */
  int64_t length;      /* rows */
  int64_t null_count;
  bbuf validity;       /* NULL until the first null: bits of rows [0, length) */
  bbuf values;         /* fixed-width values, bool bits, or offsets */
  bbuf data;           /* utf8/binary bytes; views: the one data buffer */
  bbuf view_sizes;     /* views: the C Data Interface's int64 size of data */
  int64_t lv_end;      /* list views: child values when the last row closed */
  int64_t n_children;
  pt_builder **children;
  pt_builder *dictionary;
};

/* ------------------------------------------------------------------------ */
/* Buffers */

static int bbuf_reserve(bbuf *b, int64_t need) {
  if (need <= b->cap) return PT_OK;
  if (need < 0 || need > (INT64_C(1) << 62)) return PT_ENOMEM;
  int64_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  uint8_t *p = pt__malloc_aligned((size_t)cap);
  if (p == NULL) return PT_ENOMEM;
  if (b->cap) memcpy(p, b->p, (size_t)b->cap);
  memset(p + b->cap, 0, (size_t)(cap - b->cap));
  pt__free(b->p);
  b->p = p;
  b->cap = cap;
  return PT_OK;
}

static void bbuf_free(bbuf *b) {
  pt__free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Errors */

static int fail(pt_builder *b, int code, const char *fmt, ...) PT_PRINTF(3, 4);
static int fail(pt_builder *b, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->err->message, sizeof b->err->message, fmt, ap);
  va_end(ap);
  b->err->code = code;
  return code;
}

static int fail_oom(pt_builder *b) { return fail(b, PT_ENOMEM, "out of memory in a builder"); }

static const char *type_name(const pt_builder *b, char *buf, size_t size) {
  if (pt_type_name(b->schema, buf, size) < 0) snprintf(buf, size, "%s", b->schema->format);
  return buf;
}

static int wrong_type(pt_builder *b, const char *what) {
  char name[128];
  return fail(b, PT_EINVAL, "cannot append %s to a %s builder", what,
              type_name(b, name, sizeof name));
}

/* ------------------------------------------------------------------------ */
/* Creation */

static void builder_free(pt_builder *b) {
  if (b == NULL) return;
  for (int64_t i = 0; i < b->n_children; i++) builder_free(b->children[i]);
  pt__free(b->children);
  builder_free(b->dictionary);
  bbuf_free(&b->validity);
  bbuf_free(&b->values);
  bbuf_free(&b->data);
  bbuf_free(&b->view_sizes);
  if (b->is_root) {
    if (b->schema_copy.release) b->schema_copy.release(&b->schema_copy);
    pt__free(b->err);
  }
  pt__free(b);
}

static int builder_node(const struct ArrowSchema *schema, pt_error *shared, int depth,
                        pt_builder **out, pt_error *err) {
  *out = NULL;
  if (depth > 64) return pt__errorf(err, PT_EINVAL, "schema nesting is deeper than 64 levels");
  pt_builder *b = pt__calloc(1, sizeof *b);
  if (b == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for a builder");
  b->schema = schema;
  b->err = shared;
  int rc = pt_type_parse(schema, &b->type, err);
  if (rc != PT_OK) goto free_builder;
  if (schema->n_children > 0) {
    b->children = pt__calloc((size_t)schema->n_children, sizeof *b->children);
    if (b->children == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory for a builder");
      goto free_builder;
    }
    for (int64_t i = 0; i < schema->n_children; i++) {
      rc = builder_node(schema->children[i], shared, depth + 1, &b->children[i], err);
      if (rc != PT_OK) goto free_builder;
      b->n_children = i + 1;
    }
  }
  if (schema->dictionary != NULL) {
    rc = builder_node(schema->dictionary, shared, depth + 1, &b->dictionary, err);
    if (rc != PT_OK) goto free_builder;
  }
  *out = b;
  return PT_OK;

free_builder:
  builder_free(b);
  return rc;
}

int pt_builder_new(const struct ArrowSchema *schema, pt_builder **out, pt_error *err) {
  *out = NULL;
  pt_error *shared = pt__calloc(1, sizeof *shared);
  if (shared == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for a builder");
  struct ArrowSchema copy;
  int rc = pt_schema_copy(schema, &copy, err);
  if (rc != PT_OK) {
    pt__free(shared);
    return rc;
  }
  pt_builder *b = NULL;
  rc = builder_node(&copy, shared, 0, &b, err);
  if (rc != PT_OK) {
    copy.release(&copy);
    pt__free(shared);
    return rc;
  }
  /* The tree borrows nodes of copy through pointers into its children and
   * dictionary, which stay put when the root struct moves. Only the root
   * node itself must be re-pointed. */
  pt__schema_move(&copy, &b->schema_copy);
  b->schema = &b->schema_copy;
  b->is_root = true;
  *out = b;
  return PT_OK;
}

void pt_builder_free(pt_builder *b) { builder_free(b); }

pt_builder *pt_builder_child(pt_builder *b, int64_t i) {
  if (b == NULL || i < 0 || i >= b->n_children) return NULL;
  return b->children[i];
}

pt_builder *pt_builder_dictionary(pt_builder *b) { return b ? b->dictionary : NULL; }

int64_t pt_builder_length(const pt_builder *b) { return b ? b->length : 0; }

const char *pt_builder_last_error(const pt_builder *b) {
  return b ? b->err->message : "";
}

/* ------------------------------------------------------------------------ */
/* Reserving and writing rows */

static int offset_width(const pt_builder *b) {
  return pt__type_offsets_kind(b->type.id) == 2 ? 8 : 4;
}

static int64_t value_bytes(const pt_builder *b) {
  return pt__type_is_view(b->type.id) ? 16 : pt__type_bit_width(&b->type) / 8;
}

/* Room for n more rows in the validity bitmap (creating it, all valid so
 * far, when for_null and there is none yet) and in the values or offsets. */
static int reserve_rows(pt_builder *b, int64_t n, bool for_null) {
  int64_t rows = b->length + n;
  if (b->type.id == PT_TYPE_NA || b->type.id == PT_TYPE_RUN_END_ENCODED) return PT_OK;
  if (pt__type_is_union(b->type.id)) {
    /* values: the int8 type ids; data: a dense union's int32 offsets. */
    if (bbuf_reserve(&b->values, rows > 0 ? rows : 1) != PT_OK) return PT_ENOMEM;
    if (b->type.id == PT_TYPE_DENSE_UNION && bbuf_reserve(&b->data, rows * 4 + 4) != PT_OK)
      return PT_ENOMEM;
    return PT_OK;
  }
  if (b->validity.p != NULL || for_null) {
    bool fresh = b->validity.p == NULL;
    if (bbuf_reserve(&b->validity, (rows + 7) / 8) != PT_OK) return PT_ENOMEM;
    if (fresh) {
      for (int64_t i = 0; i < b->length; i++) pt__bit_set(b->validity.p, i, 1);
    }
  }
  int64_t need = 0;
  int64_t lvw = pt__type_list_view_width(b->type.id);
  if (lvw && bbuf_reserve(&b->data, rows * lvw) != PT_OK) return PT_ENOMEM;
  if (lvw) need = rows * lvw;
  else if (b->type.id == PT_TYPE_BOOL) need = (rows + 7) / 8;
  else if (pt__type_offsets_kind(b->type.id)) need = (rows + 1) * offset_width(b);
  else need = rows * value_bytes(b);
  if (need > 0 && bbuf_reserve(&b->values, need) != PT_OK) return PT_ENOMEM;
  return PT_OK;
}

/* Offsets entry for the end of row `row`. */
static void put_offset(pt_builder *b, int64_t row, int64_t end) {
  if (offset_width(b) == 8) pt__store_i64(b->values.p + (row + 1) * 8, end);
  else pt__store_i32(b->values.p + (row + 1) * 4, (int32_t)end);
}

/* The offset that ends the last row (0 when there are no rows). */
static int64_t last_offset(const pt_builder *b) {
  if (b->length == 0) return 0;
  if (offset_width(b) == 8) return pt__load_i64(b->values.p + b->length * 8);
  return pt__load_i32(b->values.p + b->length * 4);
}

/* Closes one valid row whose values are already written. */
static void commit_valid_row(pt_builder *b) {
  if (b->validity.p != NULL) pt__bit_set(b->validity.p, b->length, 1);
  b->length++;
}

static int8_t first_code(const pt_builder *b) {
  int8_t codes[128];
  return pt__union_codes(b->type.type_codes, codes, 128) > 0 ? codes[0] : 0;
}

static int reserve_nulls(pt_builder *b, int64_t n) {
  PT_RETURN_NOT_OK(reserve_rows(b, n, true));
  switch (b->type.id) {
    case PT_TYPE_SPARSE_UNION:
      for (int64_t i = 0; i < b->n_children; i++)
        PT_RETURN_NOT_OK(reserve_nulls(b->children[i], n));
      break;
    case PT_TYPE_DENSE_UNION:
      PT_RETURN_NOT_OK(reserve_nulls(b->children[0], n));
      break;
    case PT_TYPE_STRUCT:
      for (int64_t i = 0; i < b->n_children; i++)
        PT_RETURN_NOT_OK(reserve_nulls(b->children[i], n));
      break;
    case PT_TYPE_FIXED_SIZE_LIST: {
      int64_t m;
      if (pt__mul_overflow(n, b->type.list_size, &m)) return PT_ENOMEM;
      PT_RETURN_NOT_OK(reserve_nulls(b->children[0], m));
      break;
    }
    default: break;
  }
  return PT_OK;
}

/* Offset and size of list view row `row`. */
static void put_list_view(pt_builder *b, int64_t row, int64_t offset, int64_t size) {
  if (b->type.id == PT_TYPE_LIST_VIEW) {
    pt__store_i32(b->values.p + row * 4, (int32_t)offset);
    pt__store_i32(b->data.p + row * 4, (int32_t)size);
  } else {
    pt__store_i64(b->values.p + row * 8, offset);
    pt__store_i64(b->data.p + row * 8, size);
  }
}

static void commit_nulls(pt_builder *b, int64_t n) {
  /* The values of null rows stay zero and their validity bits stay clear. */
  switch (b->type.id) {
    case PT_TYPE_SPARSE_UNION:
    case PT_TYPE_DENSE_UNION: {
      /* A null of a union is a null of its first child, which has no null
       * count of its own to add to. */
      int8_t code = first_code(b);
      pt_builder *c = b->children[0];
      for (int64_t i = 0; i < n; i++) {
        b->values.p[b->length + i] = (uint8_t)code;
        if (b->type.id == PT_TYPE_DENSE_UNION)
          pt__store_i32(b->data.p + (b->length + i) * 4, (int32_t)(c->length + i));
      }
      if (b->type.id == PT_TYPE_SPARSE_UNION)
        for (int64_t i = 0; i < b->n_children; i++) commit_nulls(b->children[i], n);
      else
        commit_nulls(c, n);
      b->length += n;
      return;
    }
    case PT_TYPE_STRUCT:
      for (int64_t i = 0; i < b->n_children; i++) commit_nulls(b->children[i], n);
      break;
    case PT_TYPE_FIXED_SIZE_LIST:
      commit_nulls(b->children[0], n * b->type.list_size);
      break;
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW:
      /* Empty ranges at the end of the child (sizes stay zero). */
      for (int64_t i = 0; i < n; i++) put_list_view(b, b->length + i, b->lv_end, 0);
      break;
    default:
      if (pt__type_offsets_kind(b->type.id)) {
        /* Null strings and lists are empty: repeat the last offset. */
        int64_t end = last_offset(b);
        for (int64_t i = 0; i < n; i++) put_offset(b, b->length + i, end);
      }
      break;
  }
  b->length += n;
  b->null_count += n;
}

int pt_builder_append_null(pt_builder *b, int64_t n) {
  if (n < 0) return fail(b, PT_EINVAL, "cannot append %lld nulls", (long long)n);
  if (n == 0) return PT_OK;
  if (b->type.id == PT_TYPE_RUN_END_ENCODED) {
    /* One run of a null value. */
    PT_RETURN_NOT_OK(pt_builder_append_null(b->children[1], 1));
    return pt_builder_append_run(b, n);
  }
  if (pt__type_is_union(b->type.id) && b->n_children == 0)
    return fail(b, PT_EINVAL, "a union without children cannot hold a null");
  if (reserve_nulls(b, n) != PT_OK) return fail_oom(b);
  commit_nulls(b, n);
  return PT_OK;
}

/* Appends one fixed-width value of `bytes` bytes from src. */
static int append_fixed(pt_builder *b, const void *src, int64_t bytes) {
  if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
  memcpy(b->values.p + b->length * bytes, src, (size_t)bytes);
  commit_valid_row(b);
  return PT_OK;
}

static int out_of_range(pt_builder *b, const char *value) {
  char name[128];
  return fail(b, PT_ERANGE, "value %s is out of range for %s", value,
              type_name(b, name, sizeof name));
}

static int append_float(pt_builder *b, double v) {
  switch (b->type.id) {
    case PT_TYPE_HALF_FLOAT: {
      uint16_t h = pt__double_to_half(v);
      return append_fixed(b, &h, 2);
    }
    case PT_TYPE_FLOAT: {
      float f = (float)v;
      return append_fixed(b, &f, 4);
    }
    case PT_TYPE_DOUBLE: return append_fixed(b, &v, 8);
    default: return wrong_type(b, "a floating-point number");
  }
}

int pt_builder_append_int(pt_builder *b, int64_t v) {
  char text[32];
  int64_t lo, hi;
  switch (b->type.id) {
    case PT_TYPE_BOOL:
      if (v != 0 && v != 1) {
        snprintf(text, sizeof text, "%lld", (long long)v);
        return out_of_range(b, text);
      }
      if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
      if (v) pt__bit_set(b->values.p, b->length, 1);
      commit_valid_row(b);
      return PT_OK;
    case PT_TYPE_INT8: lo = INT8_MIN; hi = INT8_MAX; break;
    case PT_TYPE_INT16: lo = INT16_MIN; hi = INT16_MAX; break;
    case PT_TYPE_INT32:
    case PT_TYPE_DATE32:
    case PT_TYPE_INTERVAL_MONTHS: lo = INT32_MIN; hi = INT32_MAX; break;
    case PT_TYPE_TIME32:
      /* A time of day: [0, one day) in the unit. */
      lo = 0; hi = b->type.unit == PT_SECOND ? 86399 : 86399999; break;
    case PT_TYPE_TIME64:
      lo = 0; hi = b->type.unit == PT_MICRO ? INT64_C(86399999999) : INT64_C(86399999999999);
      break;
    case PT_TYPE_INT64:
    case PT_TYPE_TIMESTAMP:
    case PT_TYPE_DURATION: lo = INT64_MIN; hi = INT64_MAX; break;
    case PT_TYPE_DATE64:
      /* Whole days in milliseconds, as the format requires. */
      if (v % 86400000 != 0) {
        snprintf(text, sizeof text, "%lld", (long long)v);
        return fail(b, PT_ERANGE, "date64 value %s is not a whole number of days (of 86400000 ms)",
                    text);
      }
      lo = INT64_MIN;
      hi = INT64_MAX;
      break;
    case PT_TYPE_UINT8: lo = 0; hi = UINT8_MAX; break;
    case PT_TYPE_UINT16: lo = 0; hi = UINT16_MAX; break;
    case PT_TYPE_UINT32: lo = 0; hi = UINT32_MAX; break;
    case PT_TYPE_UINT64: lo = 0; hi = INT64_MAX; break;
    case PT_TYPE_HALF_FLOAT:
    case PT_TYPE_FLOAT:
    case PT_TYPE_DOUBLE: return append_float(b, (double)v);
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256:
      snprintf(text, sizeof text, "%lld", (long long)v);
      return pt_builder_append_decimal_string(b, text);
    default: return wrong_type(b, "an integer");
  }
  if (v < lo || v > hi) {
    snprintf(text, sizeof text, "%lld", (long long)v);
    return out_of_range(b, text);
  }
  /* Little-endian: the low bytes of v are the narrower integer. */
  return append_fixed(b, &v, value_bytes(b));
}

int pt_builder_append_uint(pt_builder *b, uint64_t v) {
  if (v <= (uint64_t)INT64_MAX) return pt_builder_append_int(b, (int64_t)v);
  switch (b->type.id) {
    case PT_TYPE_UINT64: return append_fixed(b, &v, 8);
    case PT_TYPE_HALF_FLOAT:
    case PT_TYPE_FLOAT:
    case PT_TYPE_DOUBLE: return append_float(b, (double)v);
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256: {
      char text[32];
      snprintf(text, sizeof text, "%llu", (unsigned long long)v);
      return pt_builder_append_decimal_string(b, text);
    }
    default: {
      pt_type_id id = b->type.id;
      if (!pt__type_is_signed_int(id) && !pt__type_is_unsigned_int(id) && id != PT_TYPE_BOOL &&
          id != PT_TYPE_DATE32 && id != PT_TYPE_TIMESTAMP && id != PT_TYPE_DURATION &&
          id != PT_TYPE_DATE64 && id != PT_TYPE_TIME32 && id != PT_TYPE_TIME64 &&
          id != PT_TYPE_INTERVAL_MONTHS)
        return wrong_type(b, "an integer");
      char text[32];
      snprintf(text, sizeof text, "%llu", (unsigned long long)v);
      return out_of_range(b, text);
    }
  }
}

int pt_builder_append_double(pt_builder *b, double v) { return append_float(b, v); }

int pt_builder_append_bytes(pt_builder *b, const void *data, int64_t len) {
  if (len < 0 || (len > 0 && data == NULL))
    return fail(b, PT_EINVAL, "cannot append %lld bytes from %p", (long long)len, data);
  switch (b->type.id) {
    case PT_TYPE_STRING:
    case PT_TYPE_LARGE_STRING:
    case PT_TYPE_BINARY:
    case PT_TYPE_LARGE_BINARY: {
      int64_t end;
      if (pt__add_overflow(b->data.len, len, &end)) return fail_oom(b);
      if (offset_width(b) == 4 && end > INT32_MAX) {
        char name[128];
        return fail(b, PT_ERANGE,
                    "%s column would exceed %d bytes; use the large_ variant of the type",
                    type_name(b, name, sizeof name), INT32_MAX);
      }
      if (reserve_rows(b, 1, false) != PT_OK || bbuf_reserve(&b->data, end) != PT_OK)
        return fail_oom(b);
      if (len > 0) memcpy(b->data.p + b->data.len, data, (size_t)len);
      b->data.len = end;
      put_offset(b, b->length, end);
      commit_valid_row(b);
      return PT_OK;
    }
    case PT_TYPE_STRING_VIEW:
    case PT_TYPE_BINARY_VIEW: {
      int64_t end = b->data.len;
      if (len > 12 && (pt__add_overflow(b->data.len, len, &end) || end > INT32_MAX)) {
        char name[128];
        return fail(b, PT_ERANGE,
                    "%s column would hold more than %d bytes out of line; finish the batch "
                    "earlier", type_name(b, name, sizeof name), INT32_MAX);
      }
      if (reserve_rows(b, 1, false) != PT_OK || (len > 12 && bbuf_reserve(&b->data, end) != PT_OK))
        return fail_oom(b);
      pt__view_make(b->values.p + b->length * 16, data, (int32_t)len, 0, (int32_t)b->data.len);
      if (len > 12) {
        memcpy(b->data.p + b->data.len, data, (size_t)len);
        b->data.len = end;
      }
      commit_valid_row(b);
      return PT_OK;
    }
    case PT_TYPE_FIXED_SIZE_BINARY:
      if (len != b->type.byte_width)
        return fail(b, PT_EINVAL, "fixed_size_binary[%d] value must have %d bytes, not %lld",
                    b->type.byte_width, b->type.byte_width, (long long)len);
      if (len == 0) {
        if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
        commit_valid_row(b);
        return PT_OK;
      }
      return append_fixed(b, data, len);
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256:
    case PT_TYPE_INTERVAL_DAY_TIME:
    case PT_TYPE_INTERVAL_MONTH_DAY_NANO: {
      int64_t w = value_bytes(b);
      if (len != w) {
        char name[128];
        return fail(b, PT_EINVAL, "%s value must have %lld bytes, not %lld",
                    type_name(b, name, sizeof name), (long long)w, (long long)len);
      }
      return append_fixed(b, data, w);
    }
    default: return wrong_type(b, "bytes");
  }
}

int pt_builder_append_decimal_string(pt_builder *b, const char *text) {
  int bytes = pt__type_decimal_bytes(b->type.id);
  if (bytes == 0) return wrong_type(b, "a decimal");
  uint8_t v[32];
  int rc = pt__decimal_from_string(text, bytes, b->type.precision, b->type.scale, v, b->err);
  if (rc != PT_OK) return rc;
  return append_fixed(b, v, bytes);
}

int pt_builder_append_row(pt_builder *b) {
  switch (b->type.id) {
    case PT_TYPE_STRUCT:
      for (int64_t i = 0; i < b->n_children; i++)
        if (b->children[i]->length != b->length + 1) {
          const char *name = b->schema->children[i]->name;
          return fail(b, PT_ESTATE,
                      "struct row %lld: child %lld ('%s') has %lld rows, expected %lld",
                      (long long)b->length, (long long)i, name ? name : "",
                      (long long)b->children[i]->length, (long long)b->length + 1);
        }
      if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
      commit_valid_row(b);
      return PT_OK;
    case PT_TYPE_LIST:
    case PT_TYPE_LARGE_LIST:
    case PT_TYPE_MAP: {
      int64_t end = b->children[0]->length;
      if (b->type.id != PT_TYPE_LARGE_LIST && end > INT32_MAX)
        return fail(b, PT_ERANGE,
                    "list column would exceed %d values; use large_list", INT32_MAX);
      if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
      put_offset(b, b->length, end);
      commit_valid_row(b);
      return PT_OK;
    }
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW: {
      int64_t end = b->children[0]->length;
      if (b->type.id == PT_TYPE_LIST_VIEW && end > INT32_MAX)
        return fail(b, PT_ERANGE,
                    "list_view column would exceed %d values; use large_list_view", INT32_MAX);
      if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
      put_list_view(b, b->length, b->lv_end, end - b->lv_end);
      b->lv_end = end;
      commit_valid_row(b);
      return PT_OK;
    }
    case PT_TYPE_FIXED_SIZE_LIST: {
      int64_t want = (b->length + 1) * b->type.list_size;
      if (b->children[0]->length != want)
        return fail(b, PT_ESTATE,
                    "fixed_size_list row %lld: the child has %lld values, expected %lld "
                    "(%d per row)",
                    (long long)b->length, (long long)b->children[0]->length, (long long)want,
                    b->type.list_size);
      if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
      commit_valid_row(b);
      return PT_OK;
    }
    default: {
      char name[128];
      return fail(b, PT_EINVAL, "append_row is for struct and list builders, not %s",
                  type_name(b, name, sizeof name));
    }
  }
}

int pt_builder_append_run(pt_builder *b, int64_t n) {
  if (b->type.id != PT_TYPE_RUN_END_ENCODED) {
    char name[128];
    return fail(b, PT_EINVAL, "append_run is for run-end encoded builders, not %s",
                type_name(b, name, sizeof name));
  }
  pt_builder *ends = b->children[0], *values = b->children[1];
  if (n < 1) return fail(b, PT_EINVAL, "a run needs at least 1 row, not %lld", (long long)n);
  if (values->length != ends->length + 1)
    return fail(b, PT_ESTATE,
                "run %lld: the values child has %lld values, expected %lld (append the run's "
                "value to it first)",
                (long long)ends->length, (long long)values->length, (long long)ends->length + 1);
  int64_t end;
  if (pt__add_overflow(b->length, n, &end)) return fail(b, PT_ERANGE, "too many rows");
  /* The run ends' builder checks the range of their type. */
  PT_RETURN_NOT_OK(pt_builder_append_int(ends, end));
  b->length = end;
  return PT_OK;
}

int pt_builder_append_union(pt_builder *b, int type_id) {
  if (!pt__type_is_union(b->type.id)) {
    char name[128];
    return fail(b, PT_EINVAL, "append_union is for union builders, not %s",
                type_name(b, name, sizeof name));
  }
  int8_t codes[128];
  int n = pt__union_codes(b->type.type_codes, codes, 128), ci = -1;
  for (int k = 0; k < n; k++)
    if (codes[k] == type_id) ci = k;
  if (ci < 0) return fail(b, PT_EINVAL, "type id %d is not one of the union's", type_id);
  pt_builder *c = b->children[ci];
  if (b->type.id == PT_TYPE_SPARSE_UNION) {
    /* The chosen child has the row's value; the others get a null. */
    if (c->length != b->length + 1)
      return fail(b, PT_ESTATE,
                  "sparse union row %lld: child %d has %lld values, expected %lld (append "
                  "the value to it first)",
                  (long long)b->length, ci, (long long)c->length, (long long)b->length + 1);
    for (int64_t i = 0; i < b->n_children; i++)
      if (i != ci && b->children[i]->length != b->length)
        return fail(b, PT_ESTATE, "sparse union row %lld: child %lld has %lld values, expected %lld",
                    (long long)b->length, (long long)i, (long long)b->children[i]->length,
                    (long long)b->length);
    if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
    for (int64_t i = 0; i < b->n_children; i++)
      if (i != ci && reserve_nulls(b->children[i], 1) != PT_OK) return fail_oom(b);
    for (int64_t i = 0; i < b->n_children; i++)
      if (i != ci) commit_nulls(b->children[i], 1);
  } else {
    if (c->length < 1 || c->length - 1 > INT32_MAX)
      return fail(b, PT_ESTATE, "dense union row %lld: child %d has no value to point to",
                  (long long)b->length, ci);
    if (reserve_rows(b, 1, false) != PT_OK) return fail_oom(b);
    pt__store_i32(b->data.p + b->length * 4, (int32_t)(c->length - 1));
  }
  b->values.p[b->length] = (uint8_t)type_id;
  b->length++;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Finishing */

/* What finish would produce must be a consistent array; say what is off. */
static int check_complete(pt_builder *b, pt_error *err) {
  switch (b->type.id) {
    case PT_TYPE_RUN_END_ENCODED:
      if (b->children[1]->length != b->children[0]->length)
        return pt__errorf(err, PT_ESTATE,
                          "run-end encoded has %lld runs but %lld values; close each run with "
                          "pt_builder_append_run",
                          (long long)b->children[0]->length, (long long)b->children[1]->length);
      break;
    case PT_TYPE_SPARSE_UNION:
      for (int64_t i = 0; i < b->n_children; i++)
        if (b->children[i]->length != b->length)
          return pt__errorf(err, PT_ESTATE,
                            "sparse union has %lld rows but its child %lld has %lld; close "
                            "each row with pt_builder_append_union",
                            (long long)b->length, (long long)i,
                            (long long)b->children[i]->length);
      break;
    case PT_TYPE_STRUCT:
      for (int64_t i = 0; i < b->n_children; i++)
        if (b->children[i]->length != b->length)
          return pt__errorf(err, PT_ESTATE,
                            "struct has %lld rows but its child %lld has %lld; close each row "
                            "with pt_builder_append_row",
                            (long long)b->length, (long long)i,
                            (long long)b->children[i]->length);
      break;
    case PT_TYPE_LIST:
    case PT_TYPE_LARGE_LIST:
    case PT_TYPE_MAP:
      if (b->children[0]->length != last_offset(b)) goto unclosed;
      break;
    case PT_TYPE_LIST_VIEW:
    case PT_TYPE_LARGE_LIST_VIEW:
      if (b->children[0]->length != b->lv_end)
        return pt__errorf(err, PT_ESTATE,
                          "%lld child values were appended after the last list view row; "
                          "close each row with pt_builder_append_row",
                          (long long)(b->children[0]->length - b->lv_end));
      break;
    case PT_TYPE_FIXED_SIZE_LIST:
      if (b->children[0]->length != b->length * b->type.list_size)
        return pt__errorf(err, PT_ESTATE,
                          "fixed_size_list has %lld rows of %d but its child has %lld values; "
                          "close each row with pt_builder_append_row",
                          (long long)b->length, b->type.list_size,
                          (long long)b->children[0]->length);
      break;
    default: break;
  }
  for (int64_t i = 0; i < b->n_children; i++) {
    int rc = check_complete(b->children[i], err);
    if (rc != PT_OK) return pt__error_prefix(err, rc, "child %lld: ", (long long)i);
  }
  if (b->dictionary != NULL) {
    int rc = check_complete(b->dictionary, err);
    if (rc != PT_OK) return pt__error_prefix(err, rc, "dictionary: ");
    /* Indices of valid rows must point into the dictionary. */
    const uint8_t *p = b->values.p;
    int64_t w = value_bytes(b), n = b->dictionary->length;
    for (int64_t i = 0; i < b->length; i++) {
      if (b->validity.p != NULL && !pt__bit_get(b->validity.p, i)) continue;
      int64_t k;
      switch (b->type.id) {
        case PT_TYPE_INT8: k = (int8_t)p[i]; break;
        case PT_TYPE_INT16: k = (int16_t)pt__load_u16(p + i * 2); break;
        case PT_TYPE_INT32: k = pt__load_i32(p + i * 4); break;
        case PT_TYPE_UINT8: k = p[i]; break;
        case PT_TYPE_UINT16: k = pt__load_u16(p + i * 2); break;
        case PT_TYPE_UINT32: k = pt__load_u32(p + i * 4); break;
        default: {
          uint64_t u = pt__load_u64(p + i * w);
          k = b->type.id == PT_TYPE_UINT64 && u > INT64_MAX ? -1 : (int64_t)u;
        }
      }
      if (k < 0 || k >= n)
        return pt__errorf(err, PT_ERANGE,
                          "dictionary index %lld at row %lld is out of range for a "
                          "dictionary of %lld values",
                          (long long)k, (long long)i, (long long)n);
    }
  }
  return PT_OK;

unclosed:
  return pt__errorf(err, PT_ESTATE,
                    "%lld child values were appended after the last list row; close each "
                    "row with pt_builder_append_row",
                    (long long)(b->children[0]->length - last_offset(b)));
}

/* Phase 1 of finish: everything that can fail. Makes the array skeletons and
 * makes sure every buffer exists (an empty builder still yields valid,
 * non-NULL buffers). The builder's contents are unchanged. */
static int prepare(pt_builder *b, struct ArrowArray *out, pt_error *err) {
  int nb = pt__type_n_buffers(b->type.id);
  PT_RETURN_NOT_OK(pt__array_init(out, nb, b->n_children, b->dictionary != NULL, err));
  int rc = PT_OK;
  if ((nb >= 2 || pt__type_is_union(b->type.id)) &&
      (reserve_rows(b, 0, false) != PT_OK || bbuf_reserve(&b->values, 1) != PT_OK))
    goto oom;
  if (nb >= 3 && bbuf_reserve(&b->data, 1) != PT_OK) goto oom;
  if (pt__type_is_view(b->type.id) && bbuf_reserve(&b->view_sizes, 8) != PT_OK) goto oom;
  for (int64_t i = 0; i < b->n_children; i++) {
    rc = prepare(b->children[i], out->children[i], err);
    if (rc != PT_OK) goto release_out;
  }
  if (b->dictionary != NULL) {
    rc = prepare(b->dictionary, out->dictionary, err);
    if (rc != PT_OK) goto release_out;
  }
  return PT_OK;

oom:
  rc = pt__errorf(err, PT_ENOMEM, "out of memory finishing a builder");
release_out:
  out->release(out);
  return rc;
}

/* Phase 2: moves the buffers into the prepared arrays; cannot fail. */
static void commit(pt_builder *b, struct ArrowArray *out) {
  int nb = pt__type_n_buffers(b->type.id);
  out->length = b->length;
  out->null_count = b->null_count;
  out->offset = 0;
  if (pt__type_is_union(b->type.id)) {
    pt__array_set_buffer(out, 0, b->values.p, true);
    b->values = (bbuf){0};
    if (nb >= 2) {
      pt__array_set_buffer(out, 1, b->data.p, true);
      b->data = (bbuf){0};
    }
  } else if (nb >= 1) {
    if (b->null_count > 0) {
      pt__array_set_buffer(out, 0, b->validity.p, true);
      b->validity = (bbuf){0};
    } else {
      bbuf_free(&b->validity);
    }
  }
  if (nb >= 2 && !pt__type_is_union(b->type.id)) {
    pt__array_set_buffer(out, 1, b->values.p, true);
    b->values = (bbuf){0};
  }
  if (nb >= 3) {
    b->lv_end = 0;
    if (pt__type_is_view(b->type.id)) {
      pt__store_i64(b->view_sizes.p, b->data.len);
      pt__array_set_buffer(out, 3, b->view_sizes.p, true);
      b->view_sizes = (bbuf){0};
    }
    pt__array_set_buffer(out, 2, b->data.p, true);
    b->data = (bbuf){0};
  }
  b->length = 0;
  b->null_count = 0;
  for (int64_t i = 0; i < b->n_children; i++) commit(b->children[i], out->children[i]);
  if (b->dictionary != NULL) commit(b->dictionary, out->dictionary);
}

int pt_builder_finish(pt_builder *b, struct ArrowArray *out, pt_error *err) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (b == NULL || out == NULL)
    return pt__errorf(err, PT_EINVAL, "finish: builder and out must not be NULL");
  int rc = check_complete(b, b->err);
  if (rc == PT_OK) rc = prepare(b, out, b->err);
  if (rc != PT_OK) {
    if (err != NULL) *err = *b->err;
    return rc;
  }
  commit(b, out);
  return PT_OK;
}
