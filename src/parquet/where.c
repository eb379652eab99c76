/* where.c — a pt_parquet_filter evaluated row by row over an Arrow batch
 * with SQL's three-valued logic (NE and NOT IN are NULL on a null too):
 * Delta's replace_where where statistics cannot decide. The executors'
 * require operator checks each written row against it; their exclude
 * operator keeps the rows of a partly matching file that it does not match
 * (a row where it is NULL is kept, as Delta keeps it); the driver checks
 * its literals against the columns' types.
 * One implementation for all, hence here beside the filters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "parquet/parquet.h"

enum { V_FALSE = 0, V_TRUE = 1, V_NULL = 2 };

/* One row's value of a column, as the literals compare with it. */
enum { K_INT, K_UINT, K_DOUBLE, K_BYTES };
typedef struct value {
  int kind;
  int64_t i;
  double d;
  const uint8_t *b;
  int64_t len;
} value;

static int kind_of(const char *fmt) {
  if (strchr("csil", fmt[0]) && fmt[1] == '\0') return K_INT;
  if (strchr("CSIL", fmt[0]) && fmt[1] == '\0') return K_UINT;
  if (strcmp(fmt, "b") == 0) return K_INT;
  if ((fmt[0] == 'f' || fmt[0] == 'g') && fmt[1] == '\0') return K_DOUBLE;
  if (strncmp(fmt, "td", 2) == 0 || strncmp(fmt, "ts", 2) == 0) return K_INT;
  if (strncmp(fmt, "d:", 2) == 0) return K_DOUBLE;
  if (strchr("uzUZ", fmt[0]) && fmt[1] == '\0') return K_BYTES;
  if (strcmp(fmt, "vu") == 0 || strcmp(fmt, "vz") == 0) return K_BYTES;
  return -1;
}

static bool bit(const void *bits, int64_t i) {
  return (((const uint8_t *)bits)[i >> 3] >> (i & 7)) & 1;
}

/* Row i (from the array's own offset) of a, of format fmt. */
static void value_at(const char *fmt, const struct ArrowArray *a, int64_t i, value *v) {
  i += a->offset;
  const void *d = a->n_buffers > 1 ? a->buffers[1] : NULL;
  v->kind = kind_of(fmt);
  switch (fmt[0]) {
    case 'b': v->i = bit(d, i); break;
    case 'c': v->i = ((const int8_t *)d)[i]; break;
    case 's': v->i = ((const int16_t *)d)[i]; break;
    case 'i': v->i = ((const int32_t *)d)[i]; break;
    case 'l': v->i = ((const int64_t *)d)[i]; break;
    case 'C': v->i = ((const uint8_t *)d)[i]; break;
    case 'S': v->i = ((const uint16_t *)d)[i]; break;
    case 'I': v->i = ((const uint32_t *)d)[i]; break;
    case 'L': v->i = (int64_t)((const uint64_t *)d)[i]; break;
    case 'f': v->d = ((const float *)d)[i]; break;
    case 'g': v->d = ((const double *)d)[i]; break;
    case 't':
      v->i = fmt[1] == 'd' && fmt[2] == 'D' ? ((const int32_t *)d)[i] : ((const int64_t *)d)[i];
      break;
    case 'd': {
      int p = 0, sc = 0;
      (void)sscanf(fmt, "d:%d,%d", &p, &sc);
      v->d = pt__decimal128_to_double((const uint8_t *)d + 16 * i, sc);
      break;
    }
    case 'u':
    case 'z': {
      const int32_t *o = d;
      v->b = (const uint8_t *)a->buffers[2] + o[i];
      v->len = o[i + 1] - o[i];
      break;
    }
    case 'U':
    case 'Z': {
      const int64_t *o = d;
      v->b = (const uint8_t *)a->buffers[2] + o[i];
      v->len = o[i + 1] - o[i];
      break;
    }
    case 'v': {
      const uint8_t *view = (const uint8_t *)d + 16 * i;
      int32_t len, buf, off;
      memcpy(&len, view, 4);
      v->len = len;
      if (len <= 12) {
        v->b = view + 4;
      } else {
        memcpy(&buf, view + 8, 4);
        memcpy(&off, view + 12, 4);
        v->b = (const uint8_t *)a->buffers[2 + buf] + off;
      }
      break;
    }
    default: break;
  }
}

/* v against literal k of p: <0, 0, >0; *ok false when they do not compare
 * (NaN). */
static int compare(const value *v, const pt__filter_parts *p, int64_t k, bool *ok) {
  *ok = true;
  if (v->kind == K_BYTES) {
    int64_t n = v->len < p->lens[k] ? v->len : p->lens[k];
    int c = n > 0 ? memcmp(v->b, p->bytes[k], (size_t)n) : 0;
    if (c != 0) return c;
    return (v->len > p->lens[k]) - (v->len < p->lens[k]);
  }
  if (v->kind == K_DOUBLE || p->literal == PT__FILTER_DOUBLE) {
    double x = v->kind == K_DOUBLE ? v->d : v->kind == K_UINT ? (double)(uint64_t)v->i
                                                              : (double)v->i;
    double l = p->literal == PT__FILTER_DOUBLE ? p->doubles[k]
             : p->literal == PT__FILTER_UINT   ? (double)(uint64_t)p->ints[k]
                                               : (double)p->ints[k];
    if (isnan(x) || isnan(l)) {
      *ok = false;
      return 0;
    }
    return (x > l) - (x < l);
  }
  bool vu = v->kind == K_UINT, lu = p->literal == PT__FILTER_UINT;
  if (vu == lu) {
    if (vu) return ((uint64_t)v->i > (uint64_t)p->ints[k]) - ((uint64_t)v->i < (uint64_t)p->ints[k]);
    return (v->i > p->ints[k]) - (v->i < p->ints[k]);
  }
  if (vu) return p->ints[k] < 0 || (uint64_t)v->i > (uint64_t)p->ints[k] ? 1
                 : (uint64_t)v->i < (uint64_t)p->ints[k] ? -1 : 0;
  return v->i < 0 || (uint64_t)v->i < (uint64_t)p->ints[k] ? -1
         : (uint64_t)v->i > (uint64_t)p->ints[k] ? 1 : 0;
}

static int eval(const pt_parquet_filter *f, const struct ArrowSchema *schema,
                const struct ArrowArray *batch, uint8_t *out, pt_error *err) {
  int64_t n = batch->length;
  pt__filter_parts p;
  pt__filter_parts_of(f, &p);
  if (p.op == PT_PARQUET_AND || p.op == PT_PARQUET_OR) {
    uint8_t *b = pt__malloc((size_t)(n ? n : 1)); /* owned here: the right side's values */
    if (!b) return pt__errorf(err, PT_ENOMEM, "out of memory");
    int rc = eval(p.a, schema, batch, out, err);
    if (rc == PT_OK) rc = eval(p.b, schema, batch, b, err);
    bool and = p.op == PT_PARQUET_AND;
    for (int64_t i = 0; rc == PT_OK && i < n; i++) {
      uint8_t x = out[i], y = b[i];
      if (and) out[i] = x == V_FALSE || y == V_FALSE ? V_FALSE : x == V_NULL || y == V_NULL ? V_NULL : V_TRUE;
      else out[i] = x == V_TRUE || y == V_TRUE ? V_TRUE : x == V_NULL || y == V_NULL ? V_NULL : V_FALSE;
    }
    pt__free(b);
    return rc;
  }
  int64_t c = 0;
  while (c < schema->n_children && strcmp(schema->children[c]->name, p.column) != 0) c++;
  bool null_test = p.op == PT_PARQUET_IS_NULL || p.op == PT_PARQUET_IS_NOT_NULL;
  if (c == schema->n_children) { /* a column added after the file was written: null */
    memset(out, p.op == PT_PARQUET_IS_NULL ? V_TRUE : null_test ? V_FALSE : V_NULL, (size_t)n);
    return PT_OK;
  }
  const char *fmt = schema->children[c]->format;
  const struct ArrowArray *a = batch->children[c];
  int kind = schema->children[c]->dictionary ? -1 : kind_of(fmt);
  char tn[128];
  if (!null_test && kind < 0) {
    pt_type_name(schema->children[c], tn, sizeof tn);
    return pt__errorf(err, PT_ENOTSUP, "replace_where cannot compare column '%s' (%s) row by "
                      "row; compare numbers, strings, binary, booleans, dates, timestamps or "
                      "decimals", p.column, tn);
  }
  if (!null_test &&
      (p.literal == PT__FILTER_TIMESTAMP || p.literal == PT__FILTER_DECIMAL))
    return pt__errorf(err, PT_ENOTSUP, "replace_where compares column '%s' with a timestamp or "
                      "decimal literal; give timestamps as integers (microseconds) and decimals "
                      "as numbers", p.column);
  if (!null_test &&
      ((kind == K_BYTES) != (p.literal == PT__FILTER_BYTES) ||
       (fmt[0] == 'b' && p.literal == PT__FILTER_DOUBLE))) {
    pt_type_name(schema->children[c], tn, sizeof tn);
    return pt__errorf(err, PT_EINVAL, "replace_where compares column '%s' (%s) with a %s; "
                      "compare it with a value of its own type", p.column, tn,
                      p.literal == PT__FILTER_BYTES ? "string" : "number");
  }
  const void *valid = a->null_count != 0 && a->n_buffers > 0 ? a->buffers[0] : NULL;
  for (int64_t i = 0; i < n; i++) {
    int64_t r = batch->offset + i;
    bool is_null = valid && !bit(valid, a->offset + r);
    if (null_test) {
      out[i] = is_null == (p.op == PT_PARQUET_IS_NULL) ? V_TRUE : V_FALSE;
      continue;
    }
    if (is_null) {
      out[i] = V_NULL;
      continue;
    }
    value v = {0};
    value_at(fmt, a, r, &v);
    bool ok = true, hit = false;
    int cmp = 0;
    switch (p.op) {
      case PT_PARQUET_EQ:
      case PT_PARQUET_IN:
        for (int64_t k = 0; k < p.n && !hit; k++) hit = compare(&v, &p, k, &ok) == 0 && ok;
        break;
      case PT_PARQUET_NE:
      case PT_PARQUET_NOT_IN: /* NaN differs from every value, as in pyarrow */
        hit = true;
        for (int64_t k = 0; k < p.n && hit; k++) hit = !(compare(&v, &p, k, &ok) == 0 && ok);
        break;
      case PT_PARQUET_LT: cmp = compare(&v, &p, 0, &ok); hit = ok && cmp < 0; break;
      case PT_PARQUET_LE: cmp = compare(&v, &p, 0, &ok); hit = ok && cmp <= 0; break;
      case PT_PARQUET_GT: cmp = compare(&v, &p, 0, &ok); hit = ok && cmp > 0; break;
      case PT_PARQUET_GE: cmp = compare(&v, &p, 0, &ok); hit = ok && cmp >= 0; break;
      default: break;
    }
    out[i] = hit ? V_TRUE : V_FALSE;
  }
  return PT_OK;
}

const char *pt__filter_unknown_column(const pt_parquet_filter *f, const struct ArrowSchema *schema) {
  pt__filter_parts p;
  pt__filter_parts_of(f, &p);
  if (p.op == PT_PARQUET_AND || p.op == PT_PARQUET_OR) {
    const char *c = pt__filter_unknown_column(p.a, schema);
    return c ? c : pt__filter_unknown_column(p.b, schema);
  }
  for (int64_t c = 0; c < schema->n_children; c++)
    if (strcmp(schema->children[c]->name, p.column) == 0) return NULL;
  return p.column;
}

int pt__filter_eval_rows(const pt_parquet_filter *f, const struct ArrowSchema *schema,
                         const struct ArrowArray *batch, uint8_t *out, pt_error *err) {
  PT_RETURN_NOT_OK(eval(f, schema, batch, out, err));
  for (int64_t i = 0; i < batch->length; i++) out[i] = out[i] == V_TRUE;
  return PT_OK;
}
