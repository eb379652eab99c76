/* filter.c — predicates over Parquet columns (=, !=, <, <=, >, >=, IN,
 * NOT IN, IS NULL, IS NOT NULL, AND, OR) and their test against a row
 * group's column statistics: a row group whose min/max/null counts prove
 * that no row can match is skipped by the reader. The test is
 * conservative: anything it cannot decide (no statistics, types it does
 * not compare, NaN) keeps the row group.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parquet/parquet.h"
#include "parquet/parquet_int.h"

enum { LIT_INT, LIT_UINT, LIT_DOUBLE, LIT_BYTES,
       LIT_TS,   /* ints, since the epoch in unit */
       LIT_DEC }; /* bytes: the decimal's text, checked by parse_dec */

struct pt_parquet_filter {
  int op;                     /* PT_PARQUET_* */
  char *column;               /* leaves: dotted path */
  int lit;                    /* LIT_* */
  int64_t n;                  /* literals (IN: several) */
  int64_t *ints;
  double *doubles;
  uint8_t **bytes;
  int64_t *lens;
  int unit;                   /* LIT_TS: PT_PARQUET_UNIT_* */
  struct pt_parquet_filter *a, *b; /* AND / OR */
};

void pt_parquet_filter_free(pt_parquet_filter *f) {
  if (f == NULL) return;
  pt_parquet_filter_free(f->a);
  pt_parquet_filter_free(f->b);
  if (f->bytes)
    for (int64_t i = 0; i < f->n; i++) pt__free(f->bytes[i]);
  pt__free(f->bytes);
  pt__free(f->lens);
  pt__free(f->ints);
  pt__free(f->doubles);
  pt__free(f->column);
  pt__free(f);
}

static int new_leaf(const char *column, int op, int lit, int64_t n, pt_parquet_filter **out,
                    pt_error *err) {
  *out = NULL;
  if (column == NULL || column[0] == '\0')
    return pt__errorf(err, PT_EINVAL, "parquet filter: a column name is needed");
  if (!(op >= PT_PARQUET_EQ && op <= PT_PARQUET_IS_NULL) &&
      !(op >= PT_PARQUET_NE && op <= PT_PARQUET_IS_NOT_NULL))
    return pt__errorf(err, PT_EINVAL, "parquet filter: unknown comparison %d; use PT_PARQUET_EQ, "
                      "_NE, _LT, _LE, _GT, _GE, _IN, _NOT_IN, _IS_NULL or _IS_NOT_NULL", op);
  bool list = op == PT_PARQUET_IN || op == PT_PARQUET_NOT_IN || op == PT_PARQUET_IS_NULL ||
              op == PT_PARQUET_IS_NOT_NULL;
  if (n < 0 || (!list && n != 1))
    return pt__errorf(err, PT_EINVAL, "parquet filter: %lld values for a comparison of one",
                      (long long)n);
  pt_parquet_filter *f = pt__calloc(1, sizeof *f);
  if (f == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  f->op = op;
  f->lit = lit;
  f->n = n;
  f->column = pt__strdup(column);
  size_t k = (size_t)(n ? n : 1);
  if (f->column == NULL ||
      (lit == LIT_DOUBLE ? (f->doubles = pt__calloc(k, sizeof(double))) == NULL
       : lit == LIT_BYTES || lit == LIT_DEC ? ((f->bytes = pt__calloc(k, sizeof(uint8_t *))) == NULL ||
                             (f->lens = pt__calloc(k, sizeof(int64_t))) == NULL)
                          : (f->ints = pt__calloc(k, sizeof(int64_t))) == NULL)) {
    pt_parquet_filter_free(f);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  *out = f;
  return PT_OK;
}

int pt_parquet_filter_int(const char *column, int op, const int64_t *values, int64_t n,
                          pt_parquet_filter **out, pt_error *err) {
  PT_RETURN_NOT_OK(new_leaf(column, op, LIT_INT, n, out, err));
  if (n > 0) memcpy((*out)->ints, values, (size_t)n * sizeof *values);
  return PT_OK;
}

int pt_parquet_filter_uint(const char *column, int op, const uint64_t *values, int64_t n,
                           pt_parquet_filter **out, pt_error *err) {
  PT_RETURN_NOT_OK(new_leaf(column, op, LIT_UINT, n, out, err));
  if (n > 0) memcpy((*out)->ints, values, (size_t)n * sizeof *values);
  return PT_OK;
}

int pt_parquet_filter_double(const char *column, int op, const double *values, int64_t n,
                             pt_parquet_filter **out, pt_error *err) {
  PT_RETURN_NOT_OK(new_leaf(column, op, LIT_DOUBLE, n, out, err));
  if (n > 0) memcpy((*out)->doubles, values, (size_t)n * sizeof *values);
  return PT_OK;
}

int pt_parquet_filter_bytes(const char *column, int op, const char *const *values,
                            const int64_t *lengths, int64_t n, pt_parquet_filter **out,
                            pt_error *err) {
  PT_RETURN_NOT_OK(new_leaf(column, op, LIT_BYTES, n, out, err));
  for (int64_t i = 0; i < n; i++) {
    int64_t len = lengths ? lengths[i] : (int64_t)strlen(values[i]);
    (*out)->bytes[i] = pt__malloc((size_t)(len ? len : 1));
    if ((*out)->bytes[i] == NULL) {
      pt_parquet_filter_free(*out);
      *out = NULL;
      return pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    memcpy((*out)->bytes[i], values[i], (size_t)len);
    (*out)->lens[i] = len;
  }
  return PT_OK;
}

int pt_parquet_filter_timestamp(const char *column, int op, const int64_t *values, int64_t n,
                                int unit, pt_parquet_filter **out, pt_error *err) {
  if (unit < PT_PARQUET_UNIT_S || unit > PT_PARQUET_UNIT_NS) {
    *out = NULL;
    return pt__errorf(err, PT_EINVAL, "parquet filter: unknown time unit %d; use "
                      "PT_PARQUET_UNIT_S, _MS, _US or _NS", unit);
  }
  PT_RETURN_NOT_OK(new_leaf(column, op, LIT_TS, n, out, err));
  if (n > 0) memcpy((*out)->ints, values, (size_t)n * sizeof *values);
  (*out)->unit = unit;
  return PT_OK;
}

/* A decimal in text: sign, digits (leading zeros dropped; "0" for zero)
 * and how many of them follow the point. */
typedef struct dec {
  bool neg;
  char digits[80];
  int len, scale;
} dec;

static bool parse_dec(const uint8_t *s, int64_t n, dec *d) {
  memset(d, 0, sizeof *d);
  int64_t i = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) d->neg = s[i++] == '-';
  bool point = false, any = false;
  for (; i < n; i++) {
    if (s[i] == '.' && !point) {
      point = true;
      continue;
    }
    if (s[i] < '0' || s[i] > '9') return false;
    any = true;
    if (point) d->scale++;
    if (d->len == 0 && s[i] == '0') continue; /* leading zeros, either side of the point */
    if (d->len >= 76) return false;
    d->digits[d->len++] = (char)s[i];
  }
  return any;
}

int pt_parquet_filter_decimal(const char *column, int op, const char *const *values, int64_t n,
                              pt_parquet_filter **out, pt_error *err) {
  for (int64_t i = 0; i < n; i++) {
    dec d;
    if (values[i] == NULL || !parse_dec((const uint8_t *)values[i], (int64_t)strlen(values[i]), &d)) {
      *out = NULL;
      return pt__errorf(err, PT_EINVAL, "parquet filter: '%s' is not a decimal; give digits with "
                        "an optional sign and point (\"-12.345\"), at most 76",
                        values[i] ? values[i] : "(null)");
    }
  }
  PT_RETURN_NOT_OK(pt_parquet_filter_bytes(column, op, values, NULL, n, out, err));
  (*out)->lit = LIT_DEC;
  return PT_OK;
}

int pt_parquet_filter_is_null(const char *column, pt_parquet_filter **out, pt_error *err) {
  return new_leaf(column, PT_PARQUET_IS_NULL, LIT_INT, 0, out, err);
}

int pt_parquet_filter_is_not_null(const char *column, pt_parquet_filter **out, pt_error *err) {
  return new_leaf(column, PT_PARQUET_IS_NOT_NULL, LIT_INT, 0, out, err);
}

int pt_parquet_filter_combine(int op, pt_parquet_filter *a, pt_parquet_filter *b,
                              pt_parquet_filter **out, pt_error *err) {
  *out = NULL;
  if (op != PT_PARQUET_AND && op != PT_PARQUET_OR)
    return pt__errorf(err, PT_EINVAL, "parquet filter: combine with PT_PARQUET_AND or _OR");
  if (a == NULL || b == NULL) return pt__errorf(err, PT_EINVAL, "parquet filter: two filters are needed");
  pt_parquet_filter *f = pt__calloc(1, sizeof *f);
  if (f == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  f->op = op;
  f->a = a;
  f->b = b;
  *out = f;
  return PT_OK;
}

int pt__filter_copy(const pt_parquet_filter *f, pt_parquet_filter **out, pt_error *err) {
  *out = NULL;
  if (f == NULL) return PT_OK;
  if (f->op == PT_PARQUET_AND || f->op == PT_PARQUET_OR) {
    pt_parquet_filter *a, *b;
    PT_RETURN_NOT_OK(pt__filter_copy(f->a, &a, err));
    int rc = pt__filter_copy(f->b, &b, err);
    if (rc != PT_OK) {
      pt_parquet_filter_free(a);
      return rc;
    }
    rc = pt_parquet_filter_combine(f->op, a, b, out, err);
    if (rc != PT_OK) {
      pt_parquet_filter_free(a);
      pt_parquet_filter_free(b);
    }
    return rc;
  }
  switch (f->lit) {
    case LIT_INT: return pt_parquet_filter_int(f->column, f->op, f->ints, f->n, out, err);
    case LIT_UINT:
      return pt_parquet_filter_uint(f->column, f->op, (const uint64_t *)f->ints, f->n, out, err);
    case LIT_DOUBLE: return pt_parquet_filter_double(f->column, f->op, f->doubles, f->n, out, err);
    case LIT_TS:
      return pt_parquet_filter_timestamp(f->column, f->op, f->ints, f->n, f->unit, out, err);
    case LIT_DEC:
      PT_RETURN_NOT_OK(pt_parquet_filter_bytes(f->column, f->op, (const char *const *)f->bytes,
                                               f->lens, f->n, out, err));
      (*out)->lit = LIT_DEC;
      return PT_OK;
    default:
      return pt_parquet_filter_bytes(f->column, f->op, (const char *const *)f->bytes, f->lens, f->n,
                                     out, err);
  }
}

/* ------------------------------------------------------------------------ */
/* Against statistics */

/* How a column's statistics compare: */
enum { CMP_NONE, CMP_SIGNED, CMP_UNSIGNED, CMP_FLOAT, CMP_BYTES,
       CMP_TS,    /* INT64 timestamps: with LIT_TS literals, in the column's unit */
       CMP_DEC }; /* decimals: signed integers of the column's scale, with LIT_DEC */

static bool is_decimal(const pt__pq_schema_elem *e) {
  return e->logical.kind == PT__LT_DECIMAL || e->converted == PT__CT_DECIMAL;
}

static int column_cmp(const pt__pq_schema_elem *e) {
  const pt__pq_logical *l = &e->logical;
  if (is_decimal(e) && (e->type == PT__PQ_INT32 || e->type == PT__PQ_INT64 ||
                        e->type == PT__PQ_BYTE_ARRAY || e->type == PT__PQ_FIXED_LEN_BYTE_ARRAY))
    return CMP_DEC;
  if (e->type == PT__PQ_INT64 &&
      (l->kind == PT__LT_TIMESTAMP || e->converted == PT__CT_TIMESTAMP_MILLIS ||
       e->converted == PT__CT_TIMESTAMP_MICROS))
    return CMP_TS;
  bool unsigned_int = (l->kind == PT__LT_INTEGER && !l->is_signed) ||
                      (l->kind == PT__LT_NONE && e->converted >= PT__CT_UINT_8 &&
                       e->converted <= PT__CT_UINT_64);
  switch (e->type) {
    case PT__PQ_INT32:
    case PT__PQ_INT64:
      if (l->kind == PT__LT_DECIMAL || e->converted == PT__CT_DECIMAL) return CMP_NONE;
      if (l->kind == PT__LT_TIMESTAMP || l->kind == PT__LT_TIME || l->kind == PT__LT_UNKNOWN)
        return CMP_NONE; /* units may differ from the Arrow column's */
      return unsigned_int ? CMP_UNSIGNED : CMP_SIGNED;
    case PT__PQ_FLOAT:
    case PT__PQ_DOUBLE: return CMP_FLOAT;
    case PT__PQ_BYTE_ARRAY:
      if (l->kind == PT__LT_DECIMAL || e->converted == PT__CT_DECIMAL) return CMP_NONE;
      return CMP_BYTES;
    default: return CMP_NONE;
  }
}

/* Nanoseconds in one of a TIMESTAMP column's unit (PT_PARQUET_UNIT_*). */
static int column_unit(const pt__pq_schema_elem *e) {
  if (e->logical.kind == PT__LT_TIMESTAMP)
    return e->logical.unit == PT__TU_MILLIS   ? PT_PARQUET_UNIT_MS
           : e->logical.unit == PT__TU_NANOS ? PT_PARQUET_UNIT_NS
                                             : PT_PARQUET_UNIT_US;
  return e->converted == PT__CT_TIMESTAMP_MILLIS ? PT_PARQUET_UNIT_MS : PT_PARQUET_UNIT_US;
}

static const int64_t unit_ns[] = {1000000000, 1000000, 1000, 1};

/* A decimal column's statistic (an unscaled signed integer: INT32, INT64,
 * or big-endian two's complement bytes) as a dec of scale. */
static bool stat_dec(int type, pt__pq_bytes v, int32_t scale, dec *d) {
  memset(d, 0, sizeof *d);
  uint8_t mag[32];
  int64_t n;
  if (type == PT__PQ_INT32 || type == PT__PQ_INT64) {
    if (v.len != (type == PT__PQ_INT32 ? 4 : 8)) return false;
    int64_t x = type == PT__PQ_INT32 ? pt__load_i32(v.data) : pt__load_i64(v.data);
    uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
    d->neg = x < 0;
    for (int k = 0; k < 8; k++) mag[k] = (uint8_t)(u >> (56 - 8 * k));
    n = 8;
  } else {
    if (v.len < 1 || v.len > 32) return false;
    n = v.len;
    memcpy(mag, v.data, (size_t)n);
    d->neg = mag[0] & 0x80;
    if (d->neg) { /* two's complement: invert and add one */
      int carry = 1;
      for (int64_t k = n - 1; k >= 0; k--) {
        int x = (uint8_t)~mag[k] + carry;
        mag[k] = (uint8_t)x;
        carry = x >> 8;
      }
    }
  }
  /* Decimal digits by long division by ten, least significant first. */
  char rev[80];
  int len = 0;
  for (;;) {
    bool zero = true;
    int rem = 0;
    for (int64_t k = 0; k < n; k++) {
      int cur = rem * 256 + mag[k];
      mag[k] = (uint8_t)(cur / 10);
      rem = cur % 10;
      zero = zero && mag[k] == 0;
    }
    rev[len++] = (char)('0' + rem);
    if (zero || len >= 79) break;
  }
  while (len > 0 && rev[len - 1] == '0') len--;
  for (int k = 0; k < len; k++) d->digits[k] = rev[len - 1 - k];
  d->len = len;
  d->scale = scale;
  return scale >= 0 && scale < 200;
}

/* a against b, exactly: <0, 0, >0. */
static int dec_cmp(const dec *a, const dec *b) {
  bool az = a->len == 0, bz = b->len == 0;
  if (az && bz) return 0;
  bool an = a->neg && !az, bn = b->neg && !bz;
  if (an != bn) return an ? -1 : 1;
  /* Same sign: compare magnitudes, digits before the point first. */
  int ai = a->len - a->scale, bi = b->len - b->scale;
  int mag;
  if (az || bz) mag = az ? -1 : 1;
  else if (ai != bi) mag = ai > bi ? 1 : -1;
  else {
    mag = 0;
    int n = a->len > b->len ? a->len : b->len;
    for (int k = 0; k < n && mag == 0; k++) {
      char x = k < a->len ? a->digits[k] : '0', y = k < b->len ? b->digits[k] : '0';
      mag = (x > y) - (x < y);
    }
  }
  return an ? -mag : mag;
}

typedef struct stat_val {
  dec dv;                 /* CMP_DEC */
  int unit;               /* CMP_TS: PT_PARQUET_UNIT_* */
  int64_t i;
  uint64_t u;
  double d;
  const uint8_t *b;
  int64_t len;
} stat_val;

static bool decode_stat(const pt__pq_schema_elem *e, int cmp, pt__pq_bytes v, stat_val *out) {
  int type = e->type;
  if (cmp == CMP_DEC)
    return stat_dec(type, v, e->logical.kind == PT__LT_DECIMAL ? e->logical.scale : e->scale,
                    &out->dv);
  if (cmp == CMP_TS) out->unit = column_unit(e);
  if (cmp == CMP_BYTES) {
    out->b = v.data;
    out->len = v.len;
    return true;
  }
  if (type == PT__PQ_INT32 && v.len == 4) {
    out->i = pt__load_i32(v.data);
    out->u = pt__load_u32(v.data);
    out->d = (double)out->i;
  } else if (type == PT__PQ_INT64 && v.len == 8) {
    out->i = pt__load_i64(v.data);
    out->u = pt__load_u64(v.data);
    out->d = (double)out->i;
  } else if (type == PT__PQ_FLOAT && v.len == 4) {
    float f;
    memcpy(&f, v.data, 4);
    out->d = f;
  } else if (type == PT__PQ_DOUBLE && v.len == 8) {
    memcpy(&out->d, v.data, 8);
  } else {
    return false;
  }
  return cmp != CMP_FLOAT || !isnan(out->d);
}

/* literal k of f against s: <0, 0, >0; *ok false when it cannot tell. */
static int compare_lit(const pt_parquet_filter *f, int64_t k, int cmp, const stat_val *s, bool *ok) {
  *ok = true;
  switch (cmp) {
    case CMP_SIGNED:
      if (f->lit == LIT_INT) return (f->ints[k] > s->i) - (f->ints[k] < s->i);
      if (f->lit == LIT_UINT) {
        uint64_t v = (uint64_t)f->ints[k];
        if (s->i < 0 || v > INT64_MAX) return 1;
        return (v > (uint64_t)s->i) - (v < (uint64_t)s->i);
      }
      if (f->lit == LIT_DOUBLE && !isnan(f->doubles[k]))
        return (f->doubles[k] > s->d) - (f->doubles[k] < s->d);
      break;
    case CMP_UNSIGNED:
      if (f->lit == LIT_UINT || (f->lit == LIT_INT && f->ints[k] >= 0)) {
        uint64_t v = (uint64_t)f->ints[k];
        return (v > s->u) - (v < s->u);
      }
      if (f->lit == LIT_INT) return -1; /* negative: below every unsigned value */
      break;
    case CMP_FLOAT:
      if (f->lit == LIT_DOUBLE && !isnan(f->doubles[k]))
        return (f->doubles[k] > s->d) - (f->doubles[k] < s->d);
      if (f->lit == LIT_INT) {
        double v = (double)f->ints[k];
        return (v > s->d) - (v < s->d);
      }
      break;
    case CMP_BYTES:
      if (f->lit == LIT_BYTES) {
        int64_t n = f->lens[k] < s->len ? f->lens[k] : s->len;
        int c = n > 0 ? memcmp(f->bytes[k], s->b, (size_t)n) : 0;
        if (c != 0) return c;
        return (f->lens[k] > s->len) - (f->lens[k] < s->len);
      }
      break;
    case CMP_TS:
      if (f->lit == LIT_TS) {
        /* Both in nanoseconds: 128 bits hold any int64 times 10^9. */
        __int128 a = (__int128)f->ints[k] * unit_ns[f->unit];
        __int128 b = (__int128)s->i * unit_ns[s->unit];
        return (a > b) - (a < b);
      }
      break;
    case CMP_DEC:
      if (f->lit == LIT_DEC) {
        dec d;
        if (!parse_dec(f->bytes[k], f->lens[k], &d)) break;
        return dec_cmp(&d, &s->dv);
      }
      break;
  }
  *ok = false;
  return 0;
}

int pt__filter_columns(const pt_parquet_filter *f,
                       int (*check)(const char *path, void *arg, pt_error *err), void *arg,
                       pt_error *err) {
  if (f == NULL) return PT_OK;
  if (f->op == PT_PARQUET_AND || f->op == PT_PARQUET_OR) {
    PT_RETURN_NOT_OK(pt__filter_columns(f->a, check, arg, err));
    return pt__filter_columns(f->b, check, arg, err);
  }
  return check(f->column, arg, err);
}

static bool bounds_may_match(const pt_parquet_filter *f, const pt__pq_schema_elem *e, int cmp,
                             pt__pq_bytes lo, pt__pq_bytes hi);

bool pt__filter_may_match(const pt_parquet_filter *f, const pt__pq_file_meta *m,
                          const pt__pq_row_group *g,
                          int64_t (*find)(const char *path, void *arg, int64_t *elem), void *arg) {
  if (f->op == PT_PARQUET_AND)
    return pt__filter_may_match(f->a, m, g, find, arg) && pt__filter_may_match(f->b, m, g, find, arg);
  if (f->op == PT_PARQUET_OR)
    return pt__filter_may_match(f->a, m, g, find, arg) || pt__filter_may_match(f->b, m, g, find, arg);
  int64_t s = -1;
  int64_t leaf = find(f->column, arg, &s); /* its column chunk and schema element */
  if (s < 0 || leaf < 0 || leaf >= g->n_columns) return true;
  const pt__pq_column_chunk *cc = &g->columns[leaf];
  if (!cc->has_meta || !cc->meta.has_stats) return true;
  const pt__pq_stats *st = &cc->meta.stats;
  int64_t values = cc->meta.num_values;
  bool all_null = st->has_null_count && values >= 0 && st->null_count >= values && values == g->num_rows;
  if (f->op == PT_PARQUET_IS_NULL) return !(st->has_null_count && st->null_count == 0);
  if (all_null) return false; /* comparisons, and IS NOT NULL, are false on nulls */
  if (f->op == PT_PARQUET_IS_NOT_NULL) return true;
  const pt__pq_schema_elem *e = &m->schema[s];
  int cmp = column_cmp(e);
  if (cmp == CMP_NONE) return true;
  pt__pq_bytes lo, hi;
  if (st->has_min_value && st->has_max_value) {
    lo = st->min_value;
    hi = st->max_value;
  } else if (st->has_min && st->has_max && cmp == CMP_SIGNED) {
    lo = st->min; /* the deprecated fields are only right for signed order */
    hi = st->max;
  } else {
    return true;
  }
  return bounds_may_match(f, e, cmp, lo, hi);
}

/* Whether a comparison leaf f may hold for some value in [lo, hi]. NE and
 * NOT IN rule out only min == max == a literal (statistics leave nulls
 * out, and a null satisfies neither). Not for floats, whose bounds leave
 * NaN out (NaN differs from every value), nor with a double literal
 * against integers (a conversion may make unequal values equal). */
static bool bounds_may_match(const pt_parquet_filter *f, const pt__pq_schema_elem *e, int cmp,
                             pt__pq_bytes lo, pt__pq_bytes hi) {
  stat_val mn, mx;
  if (!decode_stat(e, cmp, lo, &mn) || !decode_stat(e, cmp, hi, &mx)) return true;
  bool ok1, ok2;
  switch (f->op) {
    case PT_PARQUET_NE:
    case PT_PARQUET_NOT_IN:
      if (cmp == CMP_FLOAT || f->lit == LIT_DOUBLE) return true;
      for (int64_t k = 0; k < f->n; k++) {
        int a = compare_lit(f, k, cmp, &mn, &ok1), b = compare_lit(f, k, cmp, &mx, &ok2);
        if (ok1 && ok2 && a == 0 && b == 0) return false;
      }
      return true;
    case PT_PARQUET_EQ:
    case PT_PARQUET_IN:
      for (int64_t k = 0; k < f->n; k++) {
        int a = compare_lit(f, k, cmp, &mn, &ok1), b = compare_lit(f, k, cmp, &mx, &ok2);
        if (!ok1 || !ok2 || (a >= 0 && b <= 0)) return true;
      }
      return false;
    case PT_PARQUET_LT: { int a = compare_lit(f, 0, cmp, &mn, &ok1); return !ok1 || a > 0; }
    case PT_PARQUET_LE: { int a = compare_lit(f, 0, cmp, &mn, &ok1); return !ok1 || a >= 0; }
    case PT_PARQUET_GT: { int b = compare_lit(f, 0, cmp, &mx, &ok2); return !ok2 || b < 0; }
    case PT_PARQUET_GE: { int b = compare_lit(f, 0, cmp, &mx, &ok2); return !ok2 || b <= 0; }
    default: return true;
  }
}

/* ------------------------------------------------------------------------ */
/* Against the page index */

/* Row ranges: sorted, disjoint [start, end) pairs. */
static int ranges_push(pt__row_ranges *r, int64_t start, int64_t end) {
  if (start >= end) return PT_OK;
  if (r->n > 0 && r->v[2 * r->n - 1] >= start) {
    if (end > r->v[2 * r->n - 1]) r->v[2 * r->n - 1] = end;
    return PT_OK;
  }
  if (pt__grow((void **)&r->v, &r->cap, 2 * r->n + 2, sizeof *r->v) != PT_OK) return PT_ENOMEM;
  r->v[2 * r->n] = start;
  r->v[2 * r->n + 1] = end;
  r->n++;
  return PT_OK;
}

void pt__row_ranges_free(pt__row_ranges *r) {
  pt__free(r->v);
  memset(r, 0, sizeof *r);
}

int64_t pt__row_ranges_count(const pt__row_ranges *r) {
  int64_t n = 0;
  for (int64_t i = 0; i < r->n; i++) n += r->v[2 * i + 1] - r->v[2 * i];
  return n;
}

/* *out = a AND b (intersection) or a OR b (union). */
static int ranges_combine(const pt__row_ranges *a, const pt__row_ranges *b, bool and,
                          pt__row_ranges *out) {
  memset(out, 0, sizeof *out);
  int64_t i = 0, j = 0;
  if (and) {
    while (i < a->n && j < b->n) {
      int64_t s = a->v[2 * i] > b->v[2 * j] ? a->v[2 * i] : b->v[2 * j];
      int64_t e = a->v[2 * i + 1] < b->v[2 * j + 1] ? a->v[2 * i + 1] : b->v[2 * j + 1];
      if (ranges_push(out, s, e) != PT_OK) return PT_ENOMEM;
      if (a->v[2 * i + 1] < b->v[2 * j + 1]) i++;
      else j++;
    }
    return PT_OK;
  }
  while (i < a->n || j < b->n) {
    const int64_t *p;
    if (j >= b->n || (i < a->n && a->v[2 * i] <= b->v[2 * j])) p = &a->v[2 * i++];
    else p = &b->v[2 * j++];
    if (ranges_push(out, p[0], p[1]) != PT_OK) return PT_ENOMEM;
  }
  return PT_OK;
}

/* The pages of leaf f's column that may match, as row ranges; every row
 * when the column has no usable page index (absent, or not consistent
 * with itself and the row group: then it is ignored, not trusted). */
static int leaf_ranges(const pt_parquet_filter *f, const pt__pq_file_meta *m,
                       const pt__pq_row_group *g,
                       int64_t (*find)(const char *path, void *arg, int64_t *elem), void *arg,
                       const uint8_t *file, int64_t size, pt__row_ranges *out) {
  memset(out, 0, sizeof *out);
  int64_t rows = g->num_rows;
  int64_t s = -1;
  int64_t leaf = find(f->column, arg, &s);
  const pt__pq_column_chunk *cc = leaf >= 0 && leaf < g->n_columns && s >= 0 ? &g->columns[leaf] : NULL;
  int cmp = cc ? column_cmp(&m->schema[s]) : CMP_NONE;
  bool usable = cc && cc->has_offset_index && cc->has_column_index && cmp != CMP_NONE &&
                cc->offset_index_offset >= 4 && cc->offset_index_length > 0 &&
                cc->column_index_offset >= 4 && cc->column_index_length > 0 &&
                cc->offset_index_offset <= size - 8 - cc->offset_index_length &&
                cc->column_index_offset <= size - 8 - cc->column_index_length;
  pt__arena arena = {0};
  pt__pq_offset_index oi;
  pt__pq_column_index ci;
  if (usable)
    usable = pt__pq_decode_offset_index(file + cc->offset_index_offset, cc->offset_index_length,
                                        &arena, &oi, NULL) == PT_OK &&
             pt__pq_decode_column_index(file + cc->column_index_offset, cc->column_index_length,
                                        &arena, &ci, NULL) == PT_OK &&
             oi.n_pages == ci.n_pages && oi.n_pages > 0 && oi.pages[0].first_row_index == 0;
  for (int64_t i = 1; usable && i < oi.n_pages; i++)
    usable = oi.pages[i].first_row_index > oi.pages[i - 1].first_row_index &&
             oi.pages[i].first_row_index < rows;
  int rc = PT_OK;
  if (!usable) {
    rc = ranges_push(out, 0, rows);
  } else {
    const pt__pq_schema_elem *e = &m->schema[s];
    for (int64_t i = 0; i < oi.n_pages && rc == PT_OK; i++) {
      int64_t start = oi.pages[i].first_row_index;
      int64_t end = i + 1 < oi.n_pages ? oi.pages[i + 1].first_row_index : rows;
      bool may;
      if (f->op == PT_PARQUET_IS_NULL)
        may = ci.n_null_counts == 0 || ci.null_counts[i] != 0 || ci.null_pages[i];
      else if (ci.null_pages[i])
        may = false; /* comparisons, and IS NOT NULL, are false on nulls */
      else
        may = bounds_may_match(f, e, cmp, ci.min_values[i], ci.max_values[i]);
      if (may) rc = ranges_push(out, start, end);
    }
  }
  pt__arena_free(&arena);
  return rc;
}

int pt__filter_row_ranges(const pt_parquet_filter *f, const pt__pq_file_meta *m,
                          const pt__pq_row_group *g,
                          int64_t (*find)(const char *path, void *arg, int64_t *elem), void *arg,
                          const uint8_t *file, int64_t size, pt__row_ranges *out, pt_error *err) {
  if (f->op == PT_PARQUET_AND || f->op == PT_PARQUET_OR) {
    pt__row_ranges a, b;
    PT_RETURN_NOT_OK(pt__filter_row_ranges(f->a, m, g, find, arg, file, size, &a, err));
    int rc = pt__filter_row_ranges(f->b, m, g, find, arg, file, size, &b, err);
    if (rc == PT_OK && ranges_combine(&a, &b, f->op == PT_PARQUET_AND, out) != PT_OK)
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    pt__row_ranges_free(&a);
    pt__row_ranges_free(&b);
    return rc;
  }
  if (leaf_ranges(f, m, g, find, arg, file, size, out) != PT_OK) {
    pt__row_ranges_free(out);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Against Hive-style partition values */

/* A decimal128 key's text (v, of format "d:P,S") as the double that
 * row-by-row evaluation (where.c) makes of the column's value, so that a
 * directory is decided as its rows would be. false when v is not such a
 * decimal (more than 38 digits, more decimals than S, another width). */
static bool key_decimal_as_double(const char *v, const char *fmt, double *out) {
  int p = 0, sc = 0, bits = 128, used = 0;
  if (sscanf(fmt, "d:%d,%d%n", &p, &sc, &used) != 2 || sc < 0 || sc > 38) return false;
  if (fmt[used] == ',' && (sscanf(fmt + used, ",%d", &bits) != 1 || bits != 128)) return false;
  uint8_t le16[16];
  pt_error e;
  if (pt__decimal128_from_string(v, 38, sc, le16, &e) != PT_OK) return false;
  *out = pt__decimal128_to_double(le16, sc);
  return true;
}

/* Literal k of f against a partition value v (text, of Arrow format fmt):
 * <0, 0, >0; *ok false when they do not compare. */
static int compare_text(const pt_parquet_filter *f, int64_t k, const char *v, const char *fmt,
                        bool *ok) {
  *ok = true;
  int32_t days;
  int64_t us;
  dec a, b;
  if (strcmp(fmt, "tdD") == 0 && f->lit == LIT_INT && pt__hive_parse_date(v, &days))
    return (f->ints[k] > days) - (f->ints[k] < days);
  /* A key without a zone is its wall clock, in microseconds. */
  if (strncmp(fmt, "ts", 2) == 0 && fmt[3] == ':' && fmt[4] == '\0' && f->lit == LIT_TS &&
      pt__hive_parse_timestamp(v, &us)) {
    __int128 x = (__int128)f->ints[k] * unit_ns[f->unit], y = (__int128)us * 1000;
    return (x > y) - (x < y);
  }
  if (fmt[0] == 'd' && f->lit == LIT_DEC && parse_dec(f->bytes[k], f->lens[k], &a) &&
      parse_dec((const uint8_t *)v, (int64_t)strlen(v), &b))
    return dec_cmp(&a, &b);
  double kd;
  if (fmt[0] == 'd' && (f->lit == LIT_DOUBLE || f->lit == LIT_INT || f->lit == LIT_UINT) &&
      key_decimal_as_double(v, fmt, &kd)) {
    double l = f->lit == LIT_DOUBLE ? f->doubles[k]
               : f->lit == LIT_UINT ? (double)(uint64_t)f->ints[k]
                                    : (double)f->ints[k];
    if (isnan(l)) {
      *ok = false;
      return 0;
    }
    return (l > kd) - (l < kd);
  }
  if (f->lit == LIT_TS || f->lit == LIT_DEC) {
    *ok = false;
    return 0;
  }
  if (fmt[0] == 't' && f->lit == LIT_BYTES && fmt[1] == 'd') {
    /* ISO dates order as their text does */
  } else if (fmt[0] == 't' || fmt[0] == 'd') {
    *ok = false; /* units and scales the literal does not say */
    return 0;
  }
  if (fmt[0] == 'b') {
    if (f->lit != LIT_INT && f->lit != LIT_UINT) {
      *ok = false;
      return 0;
    }
    int64_t x = strcmp(v, "true") == 0;
    return (f->ints[k] > x) - (f->ints[k] < x);
  }
  if (fmt[0] == 'u' || fmt[0] == 'U' || fmt[0] == 'z' || fmt[0] == 'Z' || fmt[0] == 't') {
    if (f->lit != LIT_BYTES) {
      *ok = false;
      return 0;
    }
    int64_t vl = (int64_t)strlen(v), n = f->lens[k] < vl ? f->lens[k] : vl;
    int c = n > 0 ? memcmp(f->bytes[k], v, (size_t)n) : 0;
    if (c != 0) return c;
    return (f->lens[k] > vl) - (f->lens[k] < vl);
  }
  if (fmt[0] == 'e') {
    *ok = false; /* a half float's value is its text rounded, which is not done here */
    return 0;
  }
  if (fmt[0] == 'g' || fmt[0] == 'f' || f->lit == LIT_DOUBLE) {
    /* As pyarrow and row-by-row evaluation compare: as doubles, a float
     * key's value being its text rounded to a float. */
    double x = fmt[0] == 'f' ? (double)strtof(v, NULL) : strtod(v, NULL);
    double l = f->lit == LIT_DOUBLE ? f->doubles[k]
               : f->lit == LIT_UINT ? (double)(uint64_t)f->ints[k]
               : f->lit == LIT_INT  ? (double)f->ints[k]
                                    : NAN;
    if (isnan(l) || isnan(x)) {
      *ok = false;
      return 0;
    }
    return (l > x) - (l < x);
  }
  if (f->lit == LIT_INT || f->lit == LIT_UINT) {
    int64_t x = strtoll(v, NULL, 10);
    if (f->lit == LIT_UINT && (uint64_t)f->ints[k] > INT64_MAX) return 1;
    return (f->ints[k] > x) - (f->ints[k] < x);
  }
  *ok = false;
  return 0;
}

/* One comparison of f (not AND/OR) on key values: *uses_keys set when its
 * column is a key; *decided false when the value and the literal do not
 * compare here (a unit or type the literal does not say), and then the
 * result is "may match". */
static bool leaf_partition_match(const pt_parquet_filter *f, char *const *keys,
                                 char *const *vals, const char *const *formats, int64_t nk,
                                 bool *uses_keys, bool *decided) {
  *decided = true;
  int64_t j = 0;
  while (j < nk && strcmp(keys[j], f->column) != 0) j++;
  if (j == nk) return true; /* a column of the files: decided elsewhere */
  *uses_keys = true;
  const char *v = vals[j];
  if (f->op == PT_PARQUET_IS_NULL) return v == NULL;
  if (v == NULL) return false; /* comparisons, NE and NOT IN too, are false on nulls */
  if (f->op == PT_PARQUET_IS_NOT_NULL) return true;
  bool ok;
  int c;
  switch (f->op) {
    case PT_PARQUET_NE:
    case PT_PARQUET_NOT_IN:
      /* A key's value is exact: equal to a literal, the directory is out. */
      for (int64_t k = 0; k < f->n; k++) {
        c = compare_text(f, k, v, formats[j], &ok);
        if (ok && c == 0) return false;
        if (!ok) *decided = false;
      }
      return true;
    case PT_PARQUET_EQ:
    case PT_PARQUET_IN:
      for (int64_t k = 0; k < f->n; k++) {
        c = compare_text(f, k, v, formats[j], &ok);
        if (ok && c == 0) return true;
        if (!ok) *decided = false;
      }
      return !*decided;
    default: /* LT, LE, GT, GE: one literal */
      c = compare_text(f, 0, v, formats[j], &ok);
      if (!ok) {
        *decided = false;
        return true;
      }
      return f->op == PT_PARQUET_LT ? c > 0 : f->op == PT_PARQUET_LE ? c >= 0
             : f->op == PT_PARQUET_GT ? c < 0 : c <= 0;
  }
}

bool pt__filter_partition_match(const pt_parquet_filter *f, char *const *keys,
                                char *const *vals, const char *const *formats, int64_t nk,
                                bool *uses_keys) {
  if (f->op == PT_PARQUET_AND || f->op == PT_PARQUET_OR) {
    bool a = pt__filter_partition_match(f->a, keys, vals, formats, nk, uses_keys);
    bool b = pt__filter_partition_match(f->b, keys, vals, formats, nk, uses_keys);
    return f->op == PT_PARQUET_AND ? a && b : a || b;
  }
  bool decided;
  return leaf_partition_match(f, keys, vals, formats, nk, uses_keys, &decided);
}

/* ------------------------------------------------------------------------ */
/* Against bounds given by the caller (a table format's per-file statistics) */

static bool given_bounds_match(const pt_parquet_filter *f, const pt__bounds *b) {
  if (b->rows >= 0 && b->null_count >= 0) {
    if (f->op == PT_PARQUET_IS_NULL) return b->null_count > 0;
    /* comparisons, NE, NOT IN and IS NOT NULL are false on nulls */
    if (b->null_count >= b->rows) return false;
  }
  if (f->op == PT_PARQUET_IS_NULL || f->op == PT_PARQUET_IS_NOT_NULL) return true;
  int cmp = b->kind == PT__BOUNDS_INT ? CMP_SIGNED : b->kind == PT__BOUNDS_DOUBLE ? CMP_FLOAT
          : b->kind == PT__BOUNDS_BYTES ? CMP_BYTES : CMP_NONE;
  if (cmp == CMP_NONE) return true;
  if (f->op == PT_PARQUET_NE || f->op == PT_PARQUET_NOT_IN) {
    /* Only values known to be one literal (nulls beside them satisfy
     * nothing either) are ruled out; as bounds_may_match, never for
     * floats or double literals (decimals come here as widened doubles). */
    if (!b->has_min || !b->has_max || cmp == CMP_FLOAT || f->lit == LIT_DOUBLE) return true;
  }
  stat_val mn = {0}, mx = {0};
  mn.i = b->min_i; mn.d = b->min_d; mn.b = b->min_b; mn.len = b->min_len;
  mx.i = b->max_i; mx.d = b->max_d; mx.b = b->max_b; mx.len = b->max_len;
  if (cmp == CMP_FLOAT) {
    mn.i = (int64_t)mn.d;
    mx.i = (int64_t)mx.d;
  }
  bool ok1 = true, ok2 = true;
  switch (f->op) {
    case PT_PARQUET_NE:
    case PT_PARQUET_NOT_IN:
      for (int64_t k = 0; k < f->n; k++) {
        int a = compare_lit(f, k, cmp, &mn, &ok1), c = compare_lit(f, k, cmp, &mx, &ok2);
        if (ok1 && ok2 && a == 0 && c == 0) return false;
      }
      return true;
    case PT_PARQUET_EQ:
    case PT_PARQUET_IN:
      for (int64_t k = 0; k < f->n; k++) {
        int a = b->has_min ? compare_lit(f, k, cmp, &mn, &ok1) : 0;
        int c = b->has_max ? compare_lit(f, k, cmp, &mx, &ok2) : 0;
        if (!ok1 || !ok2 || (a >= 0 && c <= 0)) return true;
      }
      return false;
    case PT_PARQUET_LT: { if (!b->has_min) return true; int a = compare_lit(f, 0, cmp, &mn, &ok1); return !ok1 || a > 0; }
    case PT_PARQUET_LE: { if (!b->has_min) return true; int a = compare_lit(f, 0, cmp, &mn, &ok1); return !ok1 || a >= 0; }
    case PT_PARQUET_GT: { if (!b->has_max) return true; int c = compare_lit(f, 0, cmp, &mx, &ok2); return !ok2 || c < 0; }
    case PT_PARQUET_GE: { if (!b->has_max) return true; int c = compare_lit(f, 0, cmp, &mx, &ok2); return !ok2 || c <= 0; }
    default: return true;
  }
}

bool pt__filter_bounds_match(const pt_parquet_filter *f,
                             bool (*find)(const char *column, void *arg, pt__bounds *out),
                             void *arg) {
  if (f->op == PT_PARQUET_AND)
    return pt__filter_bounds_match(f->a, find, arg) && pt__filter_bounds_match(f->b, find, arg);
  if (f->op == PT_PARQUET_OR)
    return pt__filter_bounds_match(f->a, find, arg) || pt__filter_bounds_match(f->b, find, arg);
  pt__bounds b = {.kind = PT__BOUNDS_NONE, .null_count = -1, .rows = -1};
  if (!find(f->column, arg, &b)) return true;
  return given_bounds_match(f, &b);
}

void pt__filter_parts_of(const pt_parquet_filter *f, pt__filter_parts *out) {
  memset(out, 0, sizeof *out);
  out->op = f->op;
  if (f->op == PT_PARQUET_AND || f->op == PT_PARQUET_OR) {
    out->a = f->a;
    out->b = f->b;
    return;
  }
  out->column = f->column;
  out->literal = f->lit == LIT_UINT ? PT__FILTER_UINT : f->lit == LIT_DOUBLE ? PT__FILTER_DOUBLE
                 : f->lit == LIT_BYTES ? PT__FILTER_BYTES : f->lit == LIT_TS ? PT__FILTER_TIMESTAMP
                 : f->lit == LIT_DEC ? PT__FILTER_DECIMAL : PT__FILTER_INT;
  out->unit = f->unit;
  out->n = f->n;
  out->ints = f->ints;
  out->doubles = f->doubles;
  out->bytes = (const uint8_t *const *)f->bytes;
  out->lens = f->lens;
}

/* One directory's values decide the comparisons on keys: each subtree
 * becomes "always", "never", or a filter left for the files. */
enum { BIND_NEVER, BIND_ALWAYS, BIND_FILTER };

static int bind(const pt_parquet_filter *f, char *const *keys, char *const *vals,
                const char *const *formats, int64_t nk, pt_parquet_filter **out, int *how,
                pt_error *err) {
  *out = NULL;
  if (f->op == PT_PARQUET_AND || f->op == PT_PARQUET_OR) {
    bool and = f->op == PT_PARQUET_AND;
    pt_parquet_filter *a, *b;
    int ha, hb;
    PT_RETURN_NOT_OK(bind(f->a, keys, vals, formats, nk, &a, &ha, err));
    int rc = bind(f->b, keys, vals, formats, nk, &b, &hb, err);
    if (rc != PT_OK) {
      pt_parquet_filter_free(a);
      return rc;
    }
    /* AND: never wins, always drops out; OR: the other way round. */
    int absorbing = and ? BIND_NEVER : BIND_ALWAYS;
    if (ha == absorbing || hb == absorbing) {
      pt_parquet_filter_free(a);
      pt_parquet_filter_free(b);
      *how = absorbing;
      return PT_OK;
    }
    if (ha != BIND_FILTER || hb != BIND_FILTER) { /* one side is neutral */
      *how = ha == BIND_FILTER || hb == BIND_FILTER ? BIND_FILTER : ha;
      *out = ha == BIND_FILTER ? a : b;
      return PT_OK;
    }
    rc = pt_parquet_filter_combine(f->op, a, b, out, err);
    if (rc != PT_OK) {
      pt_parquet_filter_free(a);
      pt_parquet_filter_free(b);
      return rc;
    }
    *how = BIND_FILTER;
    return PT_OK;
  }
  bool uses = false, decided;
  bool match = leaf_partition_match(f, keys, vals, formats, nk, &uses, &decided);
  /* Undecided stays a filter, for the rows: "always" would have
   * replace_where remove files unread whose rows may not match. */
  if (uses && (decided || !match)) {
    *how = match ? BIND_ALWAYS : BIND_NEVER;
    return PT_OK;
  }
  *how = BIND_FILTER;
  return pt__filter_copy(f, out, err);
}

int pt__filter_bind_partition(const pt_parquet_filter *f, char *const *keys, char *const *vals,
                              const char *const *formats, int64_t nk, pt_parquet_filter **out,
                              bool *may_match, pt_error *err) {
  int how;
  PT_RETURN_NOT_OK(bind(f, keys, vals, formats, nk, out, &how, err));
  *may_match = how != BIND_NEVER;
  return PT_OK;
}
