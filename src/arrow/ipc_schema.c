/* ipc_schema.c — the Schema flatbuffer of Arrow IPC to and from ArrowSchema
 * trees: field names, nullability, types, custom metadata and the
 * DictionaryEncoding of dictionary-encoded fields (with their ids): every
 * type of the format.
 */
#include <stdio.h>
#include <stdlib.h>

#include "arrow/ipc_int.h"

/* ------------------------------------------------------------------------ */
/* Dictionary id lists */

void pt__ipc_dicts_reset(pt__ipc_dicts *d) {
  pt__free(d->items);
  memset(d, 0, sizeof *d);
}

int pt__ipc_dicts_add(pt__ipc_dicts *d, int64_t id, const struct ArrowSchema *node) {
  if (pt__grow((void **)&d->items, &d->cap, d->n + 1, sizeof *d->items) != PT_OK)
    return PT_ENOMEM;
  d->items[d->n].id = id;
  d->items[d->n].node = node;
  d->n++;
  return PT_OK;
}

int64_t pt__ipc_dicts_find_node(const pt__ipc_dicts *d, const struct ArrowSchema *node) {
  for (int64_t i = 0; i < d->n; i++)
    if (d->items[i].node == node) return i;
  return -1;
}

bool pt__ipc_same_types(const struct ArrowSchema *a, const struct ArrowSchema *b, int depth) {
  if (depth > PT_IPC_MAX_NESTING + 8) return false;
  if (strcmp(a->format, b->format) != 0 || a->n_children != b->n_children) return false;
  if ((a->dictionary == NULL) != (b->dictionary == NULL)) return false;
  if (a->dictionary && !pt__ipc_same_types(a->dictionary, b->dictionary, depth + 1)) return false;
  for (int64_t i = 0; i < a->n_children; i++)
    if (!pt__ipc_same_types(a->children[i], b->children[i], depth + 1)) return false;
  return true;
}

int64_t pt__ipc_dicts_find_id(const pt__ipc_dicts *d, int64_t id) {
  for (int64_t i = 0; i < d->n; i++)
    if (d->items[i].id == id) return i;
  return -1;
}

static int assign(const struct ArrowSchema *node, pt__ipc_dicts *d, int depth, pt_error *err) {
  if (depth > PT_IPC_MAX_NESTING)
    return pt__errorf(err, PT_ENOTSUP, "ipc: schema nested deeper than %d levels",
                      PT_IPC_MAX_NESTING);
  if (node->dictionary != NULL) {
    if (node->dictionary->dictionary != NULL)
      return pt__errorf(err, PT_ENOTSUP,
                        "ipc: column '%s': a dictionary whose values are themselves "
                        "dictionary-encoded cannot be written in Arrow IPC",
                        node->name ? node->name : "");
    for (int64_t i = 0; i < node->dictionary->n_children; i++)
      PT_RETURN_NOT_OK(assign(node->dictionary->children[i], d, depth + 1, err));
    if (pt__ipc_dicts_add(d, d->n, node) != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    return PT_OK;
  }
  for (int64_t i = 0; i < node->n_children; i++)
    PT_RETURN_NOT_OK(assign(node->children[i], d, depth + 1, err));
  return PT_OK;
}

int pt__ipc_dicts_assign(const struct ArrowSchema *schema, pt__ipc_dicts *dicts,
                         pt_error *err) {
  for (int64_t i = 0; i < schema->n_children; i++)
    PT_RETURN_NOT_OK(assign(schema->children[i], dicts, 1, err));
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding */

/* Writes the [KeyValue] vector of C Data Interface metadata; *out = 0 when
 * there is none. */
static int encode_metadata(pt__fb_builder *b, const char *m, pt__fb_ref *out, pt_error *err) {
  *out = 0;
  if (m == NULL) return PT_OK;
  int32_t n = pt__load_i32(m);
  if (n < 0) return pt__errorf(err, PT_EINVAL, "ipc: schema metadata has a negative count");
  if (n == 0) return PT_OK;
  pt__fb_ref *refs = pt__malloc((size_t)n * sizeof *refs);
  if (refs == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  const char *p = m + 4;
  for (int32_t i = 0; i < n; i++) {
    int32_t klen = pt__load_i32(p);
    if (klen < 0) goto bad;
    const char *key = p + 4;
    p = key + klen;
    int32_t vlen = pt__load_i32(p);
    if (vlen < 0) goto bad;
    const char *value = p + 4;
    p = value + vlen;
    pt__fb_ref k = pt__fb_create_string(b, key, (size_t)klen);
    pt__fb_ref v = pt__fb_create_string(b, value, (size_t)vlen);
    pt__fb_table_start(b);
    pt__fb_add_ref(b, KV_KEY, k);
    pt__fb_add_ref(b, KV_VALUE, v);
    refs[i] = pt__fb_table_end(b);
  }
  *out = pt__fb_create_ref_vector(b, refs, (uint32_t)n);
  pt__free(refs);
  return PT_OK;
bad:
  pt__free(refs);
  return pt__errorf(err, PT_EINVAL, "ipc: schema metadata has a negative length");
}

static pt__fb_ref encode_int(pt__fb_builder *b, int bits, bool is_signed) {
  pt__fb_table_start(b);
  pt__fb_add_i32(b, 0, bits, 0);
  pt__fb_add_bool(b, 1, is_signed, false);
  return pt__fb_table_end(b);
}

static int int_info(pt_type_id id, int *bits, bool *is_signed) {
  switch (id) {
    case PT_TYPE_INT8: *bits = 8; *is_signed = true; return 1;
    case PT_TYPE_UINT8: *bits = 8; *is_signed = false; return 1;
    case PT_TYPE_INT16: *bits = 16; *is_signed = true; return 1;
    case PT_TYPE_UINT16: *bits = 16; *is_signed = false; return 1;
    case PT_TYPE_INT32: *bits = 32; *is_signed = true; return 1;
    case PT_TYPE_UINT32: *bits = 32; *is_signed = false; return 1;
    case PT_TYPE_INT64: *bits = 64; *is_signed = true; return 1;
    case PT_TYPE_UINT64: *bits = 64; *is_signed = false; return 1;
    default: return 0;
  }
}

/* The Type union member for t: its union tag and table. */
static void encode_type(pt__fb_builder *b, const pt_type *t, bool keys_sorted, uint8_t *tag,
                        pt__fb_ref *ref) {
  int bits;
  bool is_signed;
  if (int_info(t->id, &bits, &is_signed)) {
    *tag = PT_FBT_INT;
    *ref = encode_int(b, bits, is_signed);
    return;
  }
  pt__fb_ref union_ids = 0;
  if (pt__type_is_union(t->id)) {
    int8_t codes[128];
    int32_t ids[128];
    int n = pt__union_codes(t->type_codes, codes, 128);
    for (int k = 0; k < n; k++) ids[k] = codes[k];
    union_ids = pt__fb_create_vector(b, ids, (uint32_t)(n > 0 ? n : 0), 4, 4);
  }
  pt__fb_ref tz = 0;
  if (t->id == PT_TYPE_TIMESTAMP && t->tz != NULL) tz = pt__fb_create_string(b, t->tz, strlen(t->tz));
  pt__fb_table_start(b);
  switch (t->id) {
    case PT_TYPE_NA: *tag = PT_FBT_NULL; break;
    case PT_TYPE_BOOL: *tag = PT_FBT_BOOL; break;
    case PT_TYPE_HALF_FLOAT:
    case PT_TYPE_FLOAT:
    case PT_TYPE_DOUBLE:
      *tag = PT_FBT_FLOATING_POINT;
      pt__fb_add_i16(b, 0, (int16_t)(t->id - PT_TYPE_HALF_FLOAT), 0);
      break;
    case PT_TYPE_STRING: *tag = PT_FBT_UTF8; break;
    case PT_TYPE_LARGE_STRING: *tag = PT_FBT_LARGE_UTF8; break;
    case PT_TYPE_BINARY: *tag = PT_FBT_BINARY; break;
    case PT_TYPE_LARGE_BINARY: *tag = PT_FBT_LARGE_BINARY; break;
    case PT_TYPE_FIXED_SIZE_BINARY:
      *tag = PT_FBT_FIXED_SIZE_BINARY;
      pt__fb_add_i32(b, 0, t->byte_width, 0);
      break;
    case PT_TYPE_DATE32:
      *tag = PT_FBT_DATE;
      pt__fb_add_i16(b, 0, 0 /* DAY */, 1 /* default MILLISECOND */);
      break;
    case PT_TYPE_TIMESTAMP:
      *tag = PT_FBT_TIMESTAMP;
      pt__fb_add_i16(b, 0, (int16_t)t->unit, 0);
      pt__fb_add_ref(b, 1, tz);
      break;
    case PT_TYPE_DURATION:
      *tag = PT_FBT_DURATION;
      pt__fb_add_i16(b, 0, (int16_t)t->unit, 1);
      break;
    case PT_TYPE_DECIMAL32:
    case PT_TYPE_DECIMAL64:
    case PT_TYPE_DECIMAL128:
    case PT_TYPE_DECIMAL256:
      *tag = PT_FBT_DECIMAL;
      pt__fb_add_i32(b, 0, t->precision, 0);
      pt__fb_add_i32(b, 1, t->scale, 0);
      /* bitWidth, written although 128 is the default */
      pt__fb_add_i32(b, 2, pt__type_decimal_bytes(t->id) * 8, 0);
      break;
    case PT_TYPE_DATE64:
      *tag = PT_FBT_DATE;
      pt__fb_add_i16(b, 0, 1 /* MILLISECOND */, 0);
      break;
    case PT_TYPE_TIME32:
    case PT_TYPE_TIME64:
      *tag = PT_FBT_TIME;
      pt__fb_add_i16(b, 0, (int16_t)t->unit, 1 /* default MILLISECOND */);
      pt__fb_add_i32(b, 1, t->id == PT_TYPE_TIME32 ? 32 : 64, 32);
      break;
    case PT_TYPE_INTERVAL_MONTHS:
    case PT_TYPE_INTERVAL_DAY_TIME:
    case PT_TYPE_INTERVAL_MONTH_DAY_NANO:
      *tag = PT_FBT_INTERVAL;
      /* IntervalUnit: YEAR_MONTH 0 (the default), DAY_TIME 1, MONTH_DAY_NANO 2 */
      pt__fb_add_i16_always(b, 0, (int16_t)(t->id - PT_TYPE_INTERVAL_MONTHS));
      break;
    case PT_TYPE_LIST: *tag = PT_FBT_LIST; break;
    case PT_TYPE_LARGE_LIST: *tag = PT_FBT_LARGE_LIST; break;
    case PT_TYPE_FIXED_SIZE_LIST:
      *tag = PT_FBT_FIXED_SIZE_LIST;
      pt__fb_add_i32(b, 0, t->list_size, 0);
      break;
    case PT_TYPE_STRUCT: *tag = PT_FBT_STRUCT; break;
    case PT_TYPE_STRING_VIEW: *tag = PT_FBT_UTF8_VIEW; break;
    case PT_TYPE_RUN_END_ENCODED: *tag = PT_FBT_RUN_END_ENCODED; break;
    case PT_TYPE_LIST_VIEW: *tag = PT_FBT_LIST_VIEW; break;
    case PT_TYPE_LARGE_LIST_VIEW: *tag = PT_FBT_LARGE_LIST_VIEW; break;
    case PT_TYPE_BINARY_VIEW: *tag = PT_FBT_BINARY_VIEW; break;
    case PT_TYPE_SPARSE_UNION:
    case PT_TYPE_DENSE_UNION:
      *tag = PT_FBT_UNION;
      pt__fb_add_i16_always(b, 0, t->id == PT_TYPE_DENSE_UNION ? 1 : 0); /* mode */
      pt__fb_add_ref(b, 1, union_ids);                                    /* typeIds */
      break;
    case PT_TYPE_MAP:
      *tag = PT_FBT_MAP;
      pt__fb_add_bool(b, 0, keys_sorted, false);
      break;
    default: *tag = PT_FBT_NONE; break;
  }
  *ref = pt__fb_table_end(b);
}

static int encode_field(pt__fb_builder *b, const struct ArrowSchema *node,
                        const pt__ipc_dicts *dicts, int depth, pt__fb_ref *out,
                        pt_error *err) {
  if (depth > PT_IPC_MAX_NESTING)
    return pt__errorf(err, PT_ENOTSUP, "ipc: schema nested deeper than %d levels",
                      PT_IPC_MAX_NESTING);
  pt_type t;
  PT_RETURN_NOT_OK(pt_type_parse(node, &t, err));
  const struct ArrowSchema *values = node; /* the node that gives type and children */
  pt_type vt = t;
  pt__fb_ref dict = 0;
  int rc = PT_OK;
  pt__fb_ref *kids = NULL;
  if (t.dictionary) {
    values = node->dictionary;
    PT_RETURN_NOT_OK(pt_type_parse(values, &vt, err));
    if (vt.dictionary)
      return pt__errorf(err, PT_ENOTSUP,
                        "a dictionary whose values are themselves dictionary-encoded "
                        "cannot be written in Arrow IPC");
    int64_t at = pt__ipc_dicts_find_node(dicts, node);
    if (at < 0) return pt__errorf(err, PT_EINTERNAL, "ipc: dictionary field without an id");
    int bits;
    bool is_signed;
    int_info(t.id, &bits, &is_signed);
    pt__fb_ref index = encode_int(b, bits, is_signed);
    pt__fb_table_start(b);
    pt__fb_add_i64(b, DICTENC_ID, dicts->items[at].id, 0);
    pt__fb_add_ref(b, DICTENC_INDEX_TYPE, index);
    pt__fb_add_bool(b, DICTENC_ORDERED, (node->flags & ARROW_FLAG_DICTIONARY_ORDERED) != 0,
                    false);
    dict = pt__fb_table_end(b);
  }
  int64_t n = values->n_children;
  kids = pt__malloc((size_t)(n ? n : 1) * sizeof *kids);
  if (kids == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    const struct ArrowSchema *c = values->children[i];
    rc = encode_field(b, c, dicts, depth + 1, &kids[i], err);
    if (rc != PT_OK) {
      pt__error_prefix(err, rc, "field '%s': ", c->name ? c->name : "");
      goto cleanup;
    }
  }
  pt__fb_ref children = pt__fb_create_ref_vector(b, kids, (uint32_t)n);
  pt__fb_ref name = node->name ? pt__fb_create_string(b, node->name, strlen(node->name))
                               : pt__fb_create_string(b, "", 0);
  pt__fb_ref meta;
  if ((rc = encode_metadata(b, node->metadata, &meta, err)) != PT_OK) goto cleanup;
  uint8_t tag;
  pt__fb_ref type;
  encode_type(b, &vt, (values->flags & ARROW_FLAG_MAP_KEYS_SORTED) != 0, &tag, &type);
  if (tag == PT_FBT_NONE) {
    rc = pt__errorf(err, PT_EINTERNAL, "ipc: no IPC type for '%s'", values->format);
    goto cleanup;
  }
  pt__fb_table_start(b);
  pt__fb_add_ref(b, FIELD_NAME, name);
  pt__fb_add_bool(b, FIELD_NULLABLE, (node->flags & ARROW_FLAG_NULLABLE) != 0, false);
  pt__fb_add_u8(b, FIELD_TYPE_TYPE, tag, 0);
  pt__fb_add_ref(b, FIELD_TYPE, type);
  pt__fb_add_ref(b, FIELD_DICTIONARY, dict);
  pt__fb_add_ref(b, FIELD_CHILDREN, children);
  pt__fb_add_ref(b, FIELD_METADATA, meta);
  *out = pt__fb_table_end(b);
cleanup:
  pt__free(kids);
  return rc;
}

int pt__ipc_schema_encode(pt__fb_builder *b, const struct ArrowSchema *schema,
                          const pt__ipc_dicts *dicts, pt__fb_ref *out, pt_error *err) {
  int rc = PT_OK;
  int64_t n = schema->n_children;
  pt__fb_ref *fields = pt__malloc((size_t)(n ? n : 1) * sizeof *fields);
  if (fields == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    const struct ArrowSchema *c = schema->children[i];
    rc = encode_field(b, c, dicts, 1, &fields[i], err);
    if (rc != PT_OK) {
      pt__error_prefix(err, rc, "ipc: column '%s': ", c->name ? c->name : "");
      goto cleanup;
    }
  }
  pt__fb_ref vec = pt__fb_create_ref_vector(b, fields, (uint32_t)n);
  pt__fb_ref meta;
  if ((rc = encode_metadata(b, schema->metadata, &meta, err)) != PT_OK) goto cleanup;
  pt__fb_table_start(b);
  pt__fb_add_i16(b, SCHEMA_ENDIANNESS, 0, 0);
  pt__fb_add_ref(b, SCHEMA_FIELDS, vec);
  pt__fb_add_ref(b, SCHEMA_METADATA, meta);
  *out = pt__fb_table_end(b);
  if (b->status != PT_OK)
    rc = pt__errorf(err, b->status, "ipc: cannot build the schema message (%s)",
                    pt_strerror(b->status));
cleanup:
  pt__free(fields);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Decoding */

static int fb_bad(const pt__fb_reader *r, pt_error *err) {
  return pt__errorf(err, PT_EFORMAT, "corrupt flatbuffer: %s", r->bad);
}

static int decode_metadata(const pt__fb_table *t, int id, struct ArrowSchema *node,
                           pt_error *err) {
  pt__fb_vec v;
  if (!pt__fb_vector(t, id, 4, &v)) return t->r && t->r->bad ? fb_bad(t->r, err) : PT_OK;
  if (v.len == 0) return PT_OK;
  int rc = PT_OK;
  /* With their lengths: a value may hold NUL bytes (pyarrow writes bytes). */
  const char **keys = pt__calloc(v.len, sizeof *keys);
  const char **values = pt__calloc(v.len, sizeof *values);
  int64_t *lens = pt__calloc(2 * (size_t)v.len, sizeof *lens);
  if (keys == NULL || values == NULL || lens == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (uint32_t i = 0; i < v.len; i++) {
    pt__fb_table kv;
    uint32_t klen = 0, vlen = 0;
    keys[i] = values[i] = "";
    if (pt__fb_vec_table(&v, i, &kv)) {
      pt__fb_string(&kv, KV_KEY, &keys[i], &klen);
      pt__fb_string(&kv, KV_VALUE, &values[i], &vlen);
      if (keys[i] == NULL) keys[i] = "", klen = 0;
      if (values[i] == NULL) values[i] = "", vlen = 0;
    }
    lens[i] = klen;
    lens[v.len + i] = vlen;
    if (t->r->bad) {
      rc = fb_bad(t->r, err);
      goto cleanup;
    }
  }
  rc = pt_schema_set_metadata_n(node, v.len, keys, lens, values, lens + v.len, err);
cleanup:
  pt__free(keys);
  pt__free(values);
  pt__free(lens);
  return rc;
}

static const char unit_chars[4] = {'s', 'm', 'u', 'n'};

/* The C Data Interface format of the Field's type; *fmt is owned. */
static int type_format(const pt__fb_table *field, uint32_t n_kids, char **fmt, int *n_children,
                       bool *keys_sorted, pt_error *err) {
  *fmt = NULL;
  *n_children = 0;
  *keys_sorted = false;
  uint8_t tag = pt__fb_u8(field, FIELD_TYPE_TYPE, 0);
  pt__fb_table t;
  bool have = pt__fb_table_get(field, FIELD_TYPE, &t);
  if (field->r->bad) return fb_bad(field->r, err);
  if (tag == PT_FBT_NONE || !have) return pt__errorf(err, PT_EFORMAT, "field has no type");
  char buf[64];
  const char *simple = NULL;
  switch (tag) {
    case PT_FBT_NULL: simple = "n"; break;
    case PT_FBT_INT: {
      int32_t bits = pt__fb_i32(&t, 0, 0);
      bool sgn = pt__fb_bool(&t, 1, false);
      switch (bits) {
        case 8: simple = sgn ? "c" : "C"; break;
        case 16: simple = sgn ? "s" : "S"; break;
        case 32: simple = sgn ? "i" : "I"; break;
        case 64: simple = sgn ? "l" : "L"; break;
        default: return pt__errorf(err, PT_EFORMAT, "integer type of %d bits", (int)bits);
      }
      break;
    }
    case PT_FBT_FLOATING_POINT: {
      int16_t p = pt__fb_i16(&t, 0, 0);
      if (p < 0 || p > 2) return pt__errorf(err, PT_EFORMAT, "floating point precision %d", p);
      simple = p == 0 ? "e" : p == 1 ? "f" : "g";
      break;
    }
    case PT_FBT_BINARY: simple = "z"; break;
    case PT_FBT_UTF8: simple = "u"; break;
    case PT_FBT_LARGE_BINARY: simple = "Z"; break;
    case PT_FBT_LARGE_UTF8: simple = "U"; break;
    case PT_FBT_BOOL: simple = "b"; break;
    case PT_FBT_DECIMAL: {
      int32_t bits = pt__fb_i32(&t, 2, 128);
      if (bits != 32 && bits != 64 && bits != 128 && bits != 256)
        return pt__errorf(err, PT_EFORMAT, "decimal type of %d bits", (int)bits);
      if (bits == 128)
        snprintf(buf, sizeof buf, "d:%d,%d", (int)pt__fb_i32(&t, 0, 0), (int)pt__fb_i32(&t, 1, 0));
      else
        snprintf(buf, sizeof buf, "d:%d,%d,%d", (int)pt__fb_i32(&t, 0, 0),
                 (int)pt__fb_i32(&t, 1, 0), (int)bits);
      simple = buf;
      break;
    }
    case PT_FBT_DATE: {
      int16_t unit = pt__fb_i16(&t, 0, 1);
      if (unit != 0 && unit != 1) return pt__errorf(err, PT_EFORMAT, "date unit %d", unit);
      simple = unit == 0 ? "tdD" : "tdm";
      break;
    }
    case PT_FBT_TIME: {
      int16_t unit = pt__fb_i16(&t, 0, 1);
      int32_t bits = pt__fb_i32(&t, 1, 32);
      /* time32 holds seconds or milliseconds, time64 micro- or nanoseconds. */
      if (unit < 0 || unit > 3 || bits != (unit <= 1 ? 32 : 64))
        return pt__errorf(err, PT_EFORMAT, "time type of %d bits in unit %d", (int)bits, unit);
      snprintf(buf, sizeof buf, "tt%c", unit_chars[unit]);
      simple = buf;
      break;
    }
    case PT_FBT_TIMESTAMP: {
      int16_t unit = pt__fb_i16(&t, 0, 0);
      if (unit < 0 || unit > 3) return pt__errorf(err, PT_EFORMAT, "time unit %d", unit);
      const char *tz;
      uint32_t tzlen;
      pt__fb_string(&t, 1, &tz, &tzlen);
      if (t.r->bad) return fb_bad(t.r, err);
      if (tz != NULL && strlen(tz) != tzlen)
        return pt__errorf(err, PT_EFORMAT, "timestamp time zone contains a NUL byte");
      char *f = pt__malloc(5 + (size_t)tzlen);
      if (f == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      f[0] = 't';
      f[1] = 's';
      f[2] = unit_chars[unit];
      f[3] = ':';
      if (tzlen) memcpy(f + 4, tz, tzlen);
      f[4 + tzlen] = '\0';
      *fmt = f;
      return PT_OK;
    }
    case PT_FBT_DURATION: {
      int16_t unit = pt__fb_i16(&t, 0, 1);
      if (unit < 0 || unit > 3) return pt__errorf(err, PT_EFORMAT, "time unit %d", unit);
      snprintf(buf, sizeof buf, "tD%c", unit_chars[unit]);
      simple = buf;
      break;
    }
    case PT_FBT_INTERVAL: {
      int16_t unit = pt__fb_i16(&t, 0, 0);
      if (unit < 0 || unit > 2) return pt__errorf(err, PT_EFORMAT, "interval unit %d", unit);
      simple = unit == 0 ? "tiM" : unit == 1 ? "tiD" : "tin";
      break;
    }
    case PT_FBT_LIST: simple = "+l"; *n_children = 1; break;
    case PT_FBT_LARGE_LIST: simple = "+L"; *n_children = 1; break;
    case PT_FBT_STRUCT: simple = "+s"; *n_children = -1; break;
    case PT_FBT_UNION: {
      int16_t mode = pt__fb_i16(&t, 0, 0);
      pt__fb_vec ids;
      bool have_ids = pt__fb_vector(&t, 1, 4, &ids);
      if (t.r->bad) return fb_bad(t.r, err);
      if (mode != 0 && mode != 1) return pt__errorf(err, PT_EFORMAT, "union mode %d", mode);
      uint32_t n = have_ids ? ids.len : (uint32_t)n_kids;
      if (n != (uint32_t)n_kids)
        return pt__errorf(err, PT_EFORMAT, "union lists %u type ids for %u children", n,
                          (unsigned)n_kids);
      /* "+ud:" and up to 128 ids of at most 3 digits and a comma. */
      char *f = pt__malloc(5 + 4 * (size_t)n);
      if (f == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      int len = snprintf(f, 5, "+u%c:", mode == 1 ? 'd' : 's');
      for (uint32_t k = 0; k < n; k++) {
        int32_t id = have_ids ? pt__load_i32(pt__fb_vec_elem(&ids, k)) : (int32_t)k;
        if (id < 0 || id > 127) {
          pt__free(f);
          return pt__errorf(err, PT_EFORMAT, "union type id %d is not in 0 to 127", (int)id);
        }
        len += snprintf(f + len, 5, "%s%d", k ? "," : "", (int)id);
      }
      *fmt = f;
      *n_children = (int)n;
      return PT_OK;
    }
    case PT_FBT_FIXED_SIZE_BINARY: {
      int32_t w = pt__fb_i32(&t, 0, 0);
      if (w < 0) return pt__errorf(err, PT_EFORMAT, "fixed_size_binary of width %d", (int)w);
      snprintf(buf, sizeof buf, "w:%d", (int)w);
      simple = buf;
      break;
    }
    case PT_FBT_FIXED_SIZE_LIST: {
      int32_t n = pt__fb_i32(&t, 0, 0);
      if (n < 0) return pt__errorf(err, PT_EFORMAT, "fixed_size_list of size %d", (int)n);
      snprintf(buf, sizeof buf, "+w:%d", (int)n);
      simple = buf;
      *n_children = 1;
      break;
    }
    case PT_FBT_MAP:
      simple = "+m";
      *n_children = 1;
      if (pt__fb_bool(&t, 0, false)) *keys_sorted = true;
      break;
    case PT_FBT_RUN_END_ENCODED: simple = "+r"; *n_children = 2; break;
    case PT_FBT_BINARY_VIEW: simple = "vz"; break;
    case PT_FBT_UTF8_VIEW: simple = "vu"; break;
    case PT_FBT_LIST_VIEW: simple = "+vl"; *n_children = 1; break;
    case PT_FBT_LARGE_LIST_VIEW: simple = "+vL"; *n_children = 1; break;
    default: return pt__errorf(err, PT_EFORMAT, "unknown type tag %d", tag);
  }
  if (t.r->bad) return fb_bad(t.r, err);
  *fmt = pt__strdup(simple);
  if (*fmt == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  return PT_OK;
}

static int decode_fields(const pt__fb_vec *fields, struct ArrowSchema *parent,
                         pt__ipc_dicts *dicts, int depth, pt_error *err);

/* Fills the (released) schema *node from Field table f. */
static int decode_field(const pt__fb_table *f, struct ArrowSchema *node, pt__ipc_dicts *dicts,
                        int depth, pt_error *err) {
  int rc;
  char *fmt = NULL;
  struct ArrowSchema values;
  values.release = NULL;
  int64_t shared = -1; /* a field seen before with this one's dictionary id */
  const char *name;
  uint32_t name_len;
  pt__fb_string(f, FIELD_NAME, &name, &name_len);
  bool nullable = pt__fb_bool(f, FIELD_NULLABLE, false);
  pt__fb_vec kids;
  pt__fb_vector(f, FIELD_CHILDREN, 4, &kids);
  pt__fb_table dict;
  bool is_dict = pt__fb_table_get(f, FIELD_DICTIONARY, &dict);
  if (f->r->bad) return fb_bad(f->r, err);
  if (name == NULL) name = "";
  /* The C Data Interface requires UTF-8 names; a consumer (pyarrow) would fail
   * later, far from the cause. */
  if (!pt__utf8_valid((const uint8_t *)name, name_len) || strlen(name) != name_len)
    return pt__errorf(err, PT_EFORMAT, "a field name is not valid UTF-8 text");
  if (depth > PT_IPC_MAX_NESTING)
    return pt__errorf(err, PT_ENOTSUP, "schema nested deeper than %d levels",
                      PT_IPC_MAX_NESTING);

  int want_children;
  bool keys_sorted;
  if ((rc = type_format(f, kids.len, &fmt, &want_children, &keys_sorted, err)) != PT_OK)
    goto fail;
  if (want_children >= 0 && (int64_t)kids.len != want_children) {
    rc = pt__errorf(err, PT_EFORMAT, "type '%s' needs %d children, the field has %u", fmt,
                    want_children, kids.len);
    goto fail;
  }
  int64_t flags = nullable ? ARROW_FLAG_NULLABLE : 0;
  if (keys_sorted) flags |= ARROW_FLAG_MAP_KEYS_SORTED;
  struct ArrowSchema *typed = node; /* the node carrying the type and children */
  if (is_dict) {
    int64_t id = pt__fb_i64(&dict, DICTENC_ID, 0);
    pt__fb_table index;
    bool have_index = pt__fb_table_get(&dict, DICTENC_INDEX_TYPE, &index);
    int32_t bits = have_index ? pt__fb_i32(&index, 0, 0) : 32;
    bool sgn = have_index ? pt__fb_bool(&index, 1, false) : true;
    bool ordered = pt__fb_bool(&dict, DICTENC_ORDERED, false);
    int16_t kind = pt__fb_i16(&dict, DICTENC_KIND, 0);
    if (f->r->bad) {
      rc = fb_bad(f->r, err);
      goto fail;
    }
    if (kind != 0) {
      rc = pt__errorf(err, PT_ENOTSUP, "dictionary kind %d is not supported", kind);
      goto fail;
    }
    const char *ifmt = bits == 8 ? (sgn ? "c" : "C") : bits == 16 ? (sgn ? "s" : "S")
                     : bits == 32 ? (sgn ? "i" : "I") : bits == 64 ? (sgn ? "l" : "L") : NULL;
    if (ifmt == NULL) {
      rc = pt__errorf(err, PT_EFORMAT, "dictionary index type of %d bits", (int)bits);
      goto fail;
    }
    /* Fields may share a dictionary (one id; Arrow Java writes this):
     * checked below to have the same value type. */
    shared = pt__ipc_dicts_find_id(dicts, id);
    if (ordered) flags |= ARROW_FLAG_DICTIONARY_ORDERED;
    /* keysSorted belongs to the map, which is the dictionary's value type. */
    int64_t vflags = ARROW_FLAG_NULLABLE | (flags & ARROW_FLAG_MAP_KEYS_SORTED);
    flags &= ~(int64_t)ARROW_FLAG_MAP_KEYS_SORTED;
    if ((rc = pt_schema_init(node, ifmt, name, flags, 0, err)) != PT_OK) goto fail;
    if ((rc = pt_schema_init(&values, fmt, NULL, vflags, kids.len, err)) != PT_OK)
      goto fail;
    typed = &values;
    if (pt__ipc_dicts_add(dicts, id, node) != PT_OK) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      goto fail;
    }
  } else {
    if ((rc = pt_schema_init(node, fmt, name, flags, kids.len, err)) != PT_OK) goto fail;
  }
  pt__free(fmt);
  fmt = NULL;
  if ((rc = decode_metadata(f, FIELD_METADATA, node, err)) != PT_OK) goto fail;
  if ((rc = decode_fields(&kids, typed, dicts, depth + 1, err)) != PT_OK) goto fail;
  pt_type check;
  if ((rc = pt_type_parse(typed, &check, err)) != PT_OK) {
    if (rc == PT_EINVAL) rc = PT_EFORMAT;
    goto fail;
  }
  if (is_dict && (rc = pt_schema_set_dictionary(node, &values, err)) != PT_OK) goto fail;
  if (shared >= 0) {
    const struct ArrowSchema *first = dicts->items[shared].node;
    if (first->dictionary == NULL) {
      /* Its values are being decoded: this field is inside them. */
      rc = pt__errorf(err, PT_EFORMAT, "dictionary id %lld is used inside its own values",
                      (long long)dicts->items[shared].id);
      goto fail;
    }
    if (!pt__ipc_same_types(first->dictionary, node->dictionary, 0)) {
      char a[128], b[128];
      pt_type_name(first->dictionary, a, sizeof a);
      pt_type_name(node->dictionary, b, sizeof b);
      rc = pt__errorf(err, PT_EFORMAT,
                      "dictionary id %lld is shared with field '%s' of values %s, but these "
                      "values are %s", (long long)dicts->items[shared].id,
                      first->name ? first->name : "", a, b);
      goto fail;
    }
  }
  return PT_OK;

fail:
  pt__free(fmt);
  if (values.release) values.release(&values);
  /* The caller drops the ids registered so far (they point into freed nodes). */
  if (node->release) node->release(node);
  pt__error_prefix(err, rc, "%s '%.*s': ", depth == 1 ? "column" : "field",
                   (int)(name_len > 200 ? 200 : name_len), name);
  return rc;
}

static int decode_fields(const pt__fb_vec *fields, struct ArrowSchema *parent,
                         pt__ipc_dicts *dicts, int depth, pt_error *err) {
  for (uint32_t i = 0; i < fields->len; i++) {
    pt__fb_table f;
    if (!pt__fb_vec_table(fields, i, &f)) return fb_bad(fields->r, err);
    PT_RETURN_NOT_OK(decode_field(&f, parent->children[i], dicts, depth, err));
  }
  return PT_OK;
}

int pt__ipc_schema_decode(const pt__fb_table *schema, struct ArrowSchema *out,
                          pt__ipc_dicts *dicts, pt_error *err) {
  out->release = NULL;
  int16_t endianness = pt__fb_i16(schema, SCHEMA_ENDIANNESS, 0);
  pt__fb_vec fields;
  pt__fb_vector(schema, SCHEMA_FIELDS, 4, &fields);
  if (schema->r->bad) return fb_bad(schema->r, err);
  if (endianness == 1)
    return pt__errorf(err, PT_ENOTSUP, "big-endian IPC data is not supported");
  if (endianness != 0) return pt__errorf(err, PT_EFORMAT, "unknown endianness %d", endianness);
  int rc = pt_schema_init(out, "+s", "", 0, fields.len, err);
  if (rc != PT_OK) return rc;
  if ((rc = decode_metadata(schema, SCHEMA_METADATA, out, err)) != PT_OK) goto fail;
  if ((rc = decode_fields(&fields, out, dicts, 1, err)) != PT_OK) goto fail;
  return PT_OK;
fail:
  out->release(out);
  dicts->n = 0;
  return rc;
}
