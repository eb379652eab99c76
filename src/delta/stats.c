/* stats.c — Delta's per-file statistics. Reading: a filter is tested
 * against each file's partition values and the minValues / maxValues /
 * nullCount of its add action, so files that cannot match are never
 * opened (and replace_where removes files every row of which must match
 * unread). Writing: the stats of a data file protium wrote, taken from its
 * Parquet footer (no data is read again).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "delta/delta.h"
#include "parquet/parquet.h"

/* Strings longer than this in stats are taken as truncated: such a max
 * bounds nothing (Delta writers cut long strings). */
#define STATS_STRING_MAX 32

typedef struct match_ctx {
  const pt__delta_snapshot *s;
  const pt__delta_file *file;
  const struct ArrowSchema *schema;
  const pt__json *stats;       /* NULL: none or unreadable */
  int64_t scratch_min, scratch_max;
} match_ctx;

/* The field of schema at a dotted path; NULL when there is none. */
static const struct ArrowSchema *field_at(const struct ArrowSchema *schema, const char *path) {
  const struct ArrowSchema *cur = schema;
  const char *p = path;
  while (cur) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    const struct ArrowSchema *next = NULL;
    if (strcmp(cur->format, "+s") != 0) return NULL;
    for (int64_t i = 0; i < cur->n_children && !next; i++)
      if (cur->children[i]->name && strlen(cur->children[i]->name) == n &&
          memcmp(cur->children[i]->name, p, n) == 0)
        next = cur->children[i];
    if (!next || !dot) return next;
    cur = next;
    p = dot + 1;
  }
  return NULL;
}

static const pt__json *json_at(const pt__json *j, const char *path) {
  char key[256];
  const char *p = path;
  while (j) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n >= sizeof key) return NULL;
    memcpy(key, p, n);
    key[n] = '\0';
    j = pt__json_get(j, key);
    if (!dot) return j;
    p = dot + 1;
  }
  return NULL;
}

/* One stats value of a column of Arrow format f into the bounds. */
static bool bound_of(const char *f, const pt__json *v, bool is_max, pt__bounds *b) {
  if (!v) return false;
  bool ints = (f[0] == 'c' || f[0] == 's' || f[0] == 'i' || f[0] == 'l') && f[1] == '\0';
  int64_t x;
  if (ints && v->type == PT__JSON_NUMBER && v->is_int) {
    b->kind = PT__BOUNDS_INT;
    x = v->i;
  } else if ((strcmp(f, "f") == 0 || strcmp(f, "g") == 0) && v->type == PT__JSON_NUMBER) {
    b->kind = PT__BOUNDS_DOUBLE;
    if (is_max) b->max_d = v->d;
    else b->min_d = v->d;
    return true;
  } else if (f[0] == 'd' && f[1] == ':' && v->type == PT__JSON_NUMBER) {
    /* Decimals compare as doubles: widened, so that two values rounding
     * to one double never rule a file out. */
    double slack = fabs(v->d) * 1e-12 + 1e-300;
    b->kind = PT__BOUNDS_DOUBLE;
    if (is_max) b->max_d = v->d + slack;
    else b->min_d = v->d - slack;
    return true;
  } else if (strcmp(f, "u") == 0 && v->type == PT__JSON_STRING) {
    if (is_max && v->len >= STATS_STRING_MAX) return false;
    b->kind = PT__BOUNDS_BYTES;
    if (is_max) b->max_b = (const uint8_t *)v->str, b->max_len = v->len;
    else b->min_b = (const uint8_t *)v->str, b->min_len = v->len;
    return true;
  } else if (strcmp(f, "tdD") == 0 && v->type == PT__JSON_STRING && pt__delta_parse_date(v->str, &x)) {
    b->kind = PT__BOUNDS_INT;
  } else if (strncmp(f, "tsu:", 4) == 0 && v->type == PT__JSON_STRING &&
             pt__delta_parse_timestamp(v->str, &x)) {
    /* Stats keep milliseconds: a max stands for up to 999 µs more. */
    if (is_max) x += 999;
    b->kind = PT__BOUNDS_INT;
  } else {
    return false;
  }
  if (is_max) b->max_i = x;
  else b->min_i = x;
  return true;
}

static bool find_bounds(const char *column, void *arg, pt__bounds *b) {
  match_ctx *c = arg;
  const struct ArrowSchema *field = field_at(c->schema, column);
  if (!field) return false;
  for (int64_t k = 0; k < c->s->n_partition_columns; k++) {
    if (strcmp(c->s->partition_columns[k], column) != 0) continue;
    const char *v = c->file->values[k];
    b->rows = 1;
    b->null_count = v == NULL;
    if (!v) return true;
    const char *f = field->format;
    int64_t x;
    if ((f[0] == 'c' || f[0] == 's' || f[0] == 'i' || f[0] == 'l') && f[1] == '\0') {
      char *end;
      x = strtoll(v, &end, 10);
      if (*end) return true;
    } else if (strcmp(f, "tdD") == 0) {
      if (!pt__delta_parse_date(v, &x)) return true;
    } else if (strncmp(f, "tsu:", 4) == 0) {
      if (!pt__delta_parse_timestamp(v, &x)) return true;
    } else if (strcmp(f, "f") == 0 || strcmp(f, "g") == 0) {
      char *end;
      double d = strtod(v, &end);
      if (*end) return true;
      b->kind = PT__BOUNDS_DOUBLE;
      b->min_d = b->max_d = d;
      b->has_min = b->has_max = true;
      return true;
    } else if (strcmp(f, "u") == 0) {
      b->kind = PT__BOUNDS_BYTES;
      b->min_b = b->max_b = (const uint8_t *)v;
      b->min_len = b->max_len = (int64_t)strlen(v);
      b->has_min = b->has_max = true;
      return true;
    } else {
      return true;
    }
    b->kind = PT__BOUNDS_INT;
    b->min_i = b->max_i = x;
    b->has_min = b->has_max = true;
    return true;
  }
  if (!c->stats) return false;
  const pt__json *n = pt__json_get(c->stats, "numRecords");
  const pt__json *nc = json_at(pt__json_get(c->stats, "nullCount"), column);
  if (n && n->type == PT__JSON_NUMBER && n->is_int && nc && nc->type == PT__JSON_NUMBER && nc->is_int) {
    b->rows = n->i;
    b->null_count = nc->i;
  }
  pt__bounds lo = *b, hi = *b;
  b->has_min = bound_of(field->format, json_at(pt__json_get(c->stats, "minValues"), column), false, &lo);
  b->has_max = bound_of(field->format, json_at(pt__json_get(c->stats, "maxValues"), column), true, &hi);
  if (b->has_min) {
    b->kind = lo.kind;
    b->min_i = lo.min_i, b->min_d = lo.min_d, b->min_b = lo.min_b, b->min_len = lo.min_len;
  }
  if (b->has_max) {
    if (b->has_min && hi.kind != b->kind) b->has_max = false;
    else {
      b->kind = hi.kind;
      b->max_i = hi.max_i, b->max_d = hi.max_d, b->max_b = hi.max_b, b->max_len = hi.max_len;
    }
  }
  return true;
}

/* The add action's stats as parsed JSON, or NULL when it has none or they
 * do not parse (then they prove nothing). The caller frees it. */
static pt__json *parse_stats(const pt__delta_file *file) {
  pt__json *stats = NULL;
  pt_error ignored;
  if (file->stats &&
      pt__json_parse(file->stats, (int64_t)strlen(file->stats), &stats, &ignored) != PT_OK)
    stats = NULL;
  return stats;
}

bool pt__delta_file_may_match(const pt_parquet_filter *f, const pt__delta_snapshot *s,
                              const pt__delta_file *file, const struct ArrowSchema *schema) {
  if (!f) return true;
  match_ctx c = {s, file, schema, NULL, 0, 0};
  pt__json *stats = parse_stats(file);
  c.stats = stats && stats->type == PT__JSON_OBJECT ? stats : NULL;
  bool may = pt__filter_bounds_match(f, find_bounds, &c);
  pt__json_free(stats);
  return may;
}

/* ------------------------------------------------------------------------ */
/* Writing */

static int put_date(pt_buf *b, int64_t days) {
  int64_t y;
  int m, d;
  pt__delta_civil_from_days(days, &y, &m, &d);
  return pt__buf_printf(b, "\"%04lld-%02d-%02d\"", (long long)y, m, d);
}

static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

static int put_timestamp(pt_buf *b, int64_t us, bool round_up, bool utc) {
  int64_t ms = floor_div(us, 1000);
  if (round_up && ms * 1000 != us) ms++;
  int64_t days = floor_div(ms, 86400000), rest = ms - days * 86400000;
  int64_t y;
  int m, d;
  pt__delta_civil_from_days(days, &y, &m, &d);
  return pt__buf_printf(b, "\"%04lld-%02d-%02dT%02d:%02d:%02d.%03d%s\"", (long long)y, m, d,
                        (int)(rest / 3600000), (int)(rest / 60000 % 60), (int)(rest / 1000 % 60),
                        (int)(rest % 1000), utc ? "Z" : "");
}

static bool valid_utf8(const uint8_t *s, int64_t n) {
  for (int64_t i = 0; i < n;) {
    uint8_t c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    for (int k = 1; k < len; k++)
      if ((s[i + k] & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

/* A decimal's unscaled value (INT32/INT64 or big-endian bytes) as text. */
static int put_decimal(pt_buf *b, const pt__parquet_col_stats *c, bool is_max, int32_t scale) {
  uint8_t le[16];
  if (c->physical == 1 || c->physical == 2) {
    int64_t v = is_max ? c->b.max_i : c->b.min_i;
    memset(le, v < 0 ? 0xFF : 0, 16);
    memcpy(le, &v, 8);
  } else {
    const uint8_t *be = is_max ? c->b.max_b : c->b.min_b;
    int64_t n = is_max ? c->b.max_len : c->b.min_len;
    if (n < 1 || n > 16) return PT_ENOTSUP;
    memset(le, (be[0] & 0x80) ? 0xFF : 0, 16);
    for (int64_t i = 0; i < n; i++) le[i] = be[n - 1 - i];
  }
  char text[64];
  if (pt__decimal128_to_string(le, scale, text) <= 0) return PT_ENOTSUP;
  return pt__buf_printf(b, "%s", text);
}

/* Value of stats column c (Arrow format f) as JSON; PT_ENOTSUP: leave it
 * out. */
static int put_value(pt_buf *b, const pt__parquet_col_stats *c, const char *f, bool is_max) {
  int64_t i = is_max ? c->b.max_i : c->b.min_i;
  bool ints = c->physical == 1 || c->physical == 2;
  if ((f[0] == 'c' || f[0] == 's' || f[0] == 'i' || f[0] == 'l') && f[1] == '\0' && ints)
    return pt__buf_printf(b, "%lld", (long long)i);
  if ((strcmp(f, "f") == 0 || strcmp(f, "g") == 0) && (c->physical == 4 || c->physical == 5)) {
    double d = is_max ? c->b.max_d : c->b.min_d;
    if (!isfinite(d)) return PT_ENOTSUP;
    return pt__buf_printf(b, "%.17g", d);
  }
  if ((strcmp(f, "u") == 0 || strcmp(f, "U") == 0 || strcmp(f, "vu") == 0) && c->physical == 6) {
    const uint8_t *s = is_max ? c->b.max_b : c->b.min_b;
    int64_t n = is_max ? c->b.max_len : c->b.min_len;
    if (n > 256 || !valid_utf8(s, n)) return PT_ENOTSUP;
    return pt__json_put_string(b, (const char *)s, n);
  }
  if (strcmp(f, "tdD") == 0 && c->physical == 1) return put_date(b, i);
  if (strncmp(f, "tsu:", 4) == 0 && c->physical == 2) return put_timestamp(b, i, is_max, f[4] != '\0');
  int p, sc, used = 0;
  if (sscanf(f, "d:%d,%d%n", &p, &sc, &used) == 2 && f[used] == '\0')
    return put_decimal(b, c, is_max, sc);
  return PT_ENOTSUP;
}

int pt__delta_file_stats(const char *path, const struct ArrowSchema *schema, pt_buf *out,
                         int64_t *rows, pt_error *err) {
  pt__parquet_stats st;
  PT_RETURN_NOT_OK(pt__parquet_file_stats(path, &st, err));
  *rows = st.rows;
  int rc = pt__buf_printf(out, "{\"numRecords\":%lld", (long long)st.rows);
  for (int pass = 0; pass < 3 && rc == PT_OK; pass++) {
    rc = pt__buf_printf(out, pass == 0 ? ",\"minValues\":{" : pass == 1 ? ",\"maxValues\":{"
                                                                        : ",\"nullCount\":{");
    bool first = true;
    for (int64_t i = 0; i < st.n_cols && rc == PT_OK; i++) {
      const pt__parquet_col_stats *c = &st.cols[i];
      const struct ArrowSchema *field = field_at(schema, c->name);
      if (!field || strchr(c->name, '.')) continue;
      if (pass == 2 ? !c->has_nulls : !c->has_minmax) continue;
      size_t mark = out->len;
      if (!first) rc = pt__buf_putc(out, ',');
      if (rc == PT_OK) rc = pt__json_put_string(out, c->name, -1);
      if (rc == PT_OK) rc = pt__buf_putc(out, ':');
      if (rc == PT_OK)
        rc = pass == 2 ? pt__buf_printf(out, "%lld", (long long)c->null_count)
                       : put_value(out, c, field->format, pass == 1);
      if (rc == PT_ENOTSUP) {
        out->len = mark;
        rc = PT_OK;
        continue;
      }
      first = false;
    }
    if (rc == PT_OK) rc = pt__buf_putc(out, '}');
  }
  if (rc == PT_OK) rc = pt__buf_putc(out, '}');
  pt__parquet_stats_free(&st);
  if (rc != PT_OK) return pt__errorf(err, PT_ENOMEM, "out of memory");
  return PT_OK;
}

/* Bound b (its max, or its min) against literal k of p: <0, 0, >0 as the
 * bound is below, at or above it; false when they do not compare exactly
 * (floats are left out: stats say nothing of NaN). */
static bool bound_cmp(const pt__bounds *b, bool max, const pt__filter_parts *p, int64_t k, int *out) {
  if (b->kind == PT__BOUNDS_INT) {
    int64_t x = max ? b->max_i : b->min_i;
    if (p->literal == PT__FILTER_INT) *out = (x > p->ints[k]) - (x < p->ints[k]);
    else if (p->literal == PT__FILTER_UINT)
      *out = x < 0 || (uint64_t)x < (uint64_t)p->ints[k] ? -1 : (uint64_t)x > (uint64_t)p->ints[k];
    else if (p->literal == PT__FILTER_DOUBLE && !isnan(p->doubles[k]))
      *out = ((double)x > p->doubles[k]) - ((double)x < p->doubles[k]);
    else return false;
    return true;
  }
  if (b->kind == PT__BOUNDS_BYTES && p->literal == PT__FILTER_BYTES) {
    const uint8_t *v = max ? b->max_b : b->min_b;
    int64_t len = max ? b->max_len : b->min_len, n = len < p->lens[k] ? len : p->lens[k];
    int c = n > 0 ? memcmp(v, p->bytes[k], (size_t)n) : 0;
    *out = c != 0 ? c : (len > p->lens[k]) - (len < p->lens[k]);
    return true;
  }
  return false;
}

static bool must_match(const pt_parquet_filter *f, match_ctx *c) {
  pt__filter_parts p;
  pt__filter_parts_of(f, &p);
  if (p.op == PT_PARQUET_AND) return must_match(p.a, c) && must_match(p.b, c);
  if (p.op == PT_PARQUET_OR) return must_match(p.a, c) || must_match(p.b, c);
  pt__bounds b = {.kind = PT__BOUNDS_NONE, .null_count = -1, .rows = -1};
  if (!find_bounds(p.column, c, &b) || b.rows < 0 || b.null_count < 0) return false;
  if (p.op == PT_PARQUET_IS_NULL) return b.null_count == b.rows;
  if (b.null_count != 0) return false; /* a null row would not match */
  if (p.op == PT_PARQUET_IS_NOT_NULL) return true;
  int lo = 0, hi = 0;
  bool has_lo = b.has_min && bound_cmp(&b, false, &p, 0, &lo);
  bool has_hi = b.has_max && bound_cmp(&b, true, &p, 0, &hi);
  switch (p.op) {
    case PT_PARQUET_GT: return has_lo && lo > 0;
    case PT_PARQUET_GE: return has_lo && lo >= 0;
    case PT_PARQUET_LT: return has_hi && hi < 0;
    case PT_PARQUET_LE: return has_hi && hi <= 0;
    case PT_PARQUET_EQ:
    case PT_PARQUET_IN:
      for (int64_t k = 0; k < p.n; k++) {
        has_lo = b.has_min && bound_cmp(&b, false, &p, k, &lo);
        has_hi = b.has_max && bound_cmp(&b, true, &p, k, &hi);
        if (has_lo && has_hi && lo == 0 && hi == 0) return true;
      }
      return false;
    case PT_PARQUET_NE:
    case PT_PARQUET_NOT_IN: /* every literal below the min or above the max */
      for (int64_t k = 0; k < p.n; k++) {
        has_lo = b.has_min && bound_cmp(&b, false, &p, k, &lo);
        has_hi = b.has_max && bound_cmp(&b, true, &p, k, &hi);
        if (!(has_lo && lo > 0) && !(has_hi && hi < 0)) return false;
      }
      return true;
    default: return false;
  }
}

bool pt__delta_file_must_match(const pt_parquet_filter *f, const pt__delta_snapshot *s,
                               const pt__delta_file *file, const struct ArrowSchema *schema) {
  if (!f) return true;
  match_ctx c = {s, file, schema, NULL, 0, 0};
  pt__json *stats = parse_stats(file);
  c.stats = stats && stats->type == PT__JSON_OBJECT ? stats : NULL;
  bool must = c.stats && must_match(f, &c);
  pt__json_free(stats);
  return must;
}
