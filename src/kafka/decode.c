/* decode.c — record values to columns: JSON objects (a flat schema of
 * scalars) and Arrow IPC streams (a given schema), with a policy for
 * malformed records: fail the call, drop them, or hand them back as a
 * dead-letter batch (input row, value, error) that a stream can send to a
 * dead-letter topic. Values come from the network: every length is
 * checked, nesting is bounded, and a record is appended only once all of
 * it decoded, so a bad record never leaves half a row behind.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "arrow/kernels.h"
#include "kafka/kafka.h"

/* Skipping nested values of unknown keys recurses no deeper than this. */
#define MAX_DEPTH 64

typedef enum { K_BOOL, K_INT, K_FLOAT, K_UTF8, K_BINARY, K_TIMESTAMP } kind;

typedef struct field {
  kind k;
  const char *name;
  size_t name_len;
} field;

/* One record's parsed values, per field, before they are appended. */
typedef struct cell {
  int set;       /* 0: absent or null */
  int64_t i;
  double d;
  pt_buf s;      /* strings, unescaped; reused across records */
} cell;

typedef struct dec {
  const struct ArrowSchema *schema;
  int64_t n;     /* fields */
  field *f;
  cell *c;
  pt_builder *b;       /* the output batch */
  pt_builder *dead;    /* row int64, value binary, error utf8; NULL unless dead-letter */
  int no_builder;      /* the decoder makes its own output (IPC) */
  int unique;          /* no two fields share a name (JSON: keys match by hint) */
  pt_buf key;          /* JSON: the key being matched; reused across records */
} dec;

/* ------------------------------------------------------------------------ */
/* JSON */

typedef struct cur {
  const uint8_t *p, *end;
  char why[160];
} cur;

static int bad(cur *c, const char *fmt, const char *what) {
  if (!c->why[0]) snprintf(c->why, sizeof c->why, fmt, what);
  return -1;
}

static void ws(cur *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hex4(cur *c, uint32_t *v) {
  if (c->end - c->p < 4) return bad(c, "%s", "truncated \\u escape");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    uint8_t h = c->p[i];
    int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
    if (d < 0) return bad(c, "%s", "bad \\u escape");
    *v = *v * 16 + (uint32_t)d;
  }
  c->p += 4;
  return 0;
}

static int put_utf8(pt_buf *b, uint32_t cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  return pt__buf_append(b, u, n) == PT_OK ? 0 : -2;
}

/* A string at c->p (the opening quote), unescaped into out (NULL: skip).
 * -1 malformed, -2 out of memory. */
static int string(cur *c, pt_buf *out) {
  if (c->p >= c->end || *c->p != '"') return bad(c, "%s", "expected a string");
  c->p++;
  if (out) out->len = 0;
  for (;;) {
    const uint8_t *s = c->p;
    while (c->p < c->end && *c->p != '"' && *c->p != '\\' && *c->p >= 0x20) c->p++;
    if (out && c->p > s && pt__buf_append(out, s, (size_t)(c->p - s)) != PT_OK) return -2;
    if (c->p >= c->end) return bad(c, "%s", "unterminated string");
    if (*c->p == '"') {
      c->p++;
      if (out && !pt__utf8_valid((const uint8_t *)out->data, out->len))
        return bad(c, "%s", "a string is not valid UTF-8");
      return 0;
    }
    if (*c->p < 0x20) return bad(c, "%s", "control character in a string");
    c->p++; /* backslash */
    if (c->p >= c->end) return bad(c, "%s", "unterminated string");
    uint8_t e = *c->p++;
    uint32_t cp = 0;
    switch (e) {
      case '"': case '\\': case '/': cp = e; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u': {
        if (hex4(c, &cp) != 0) return -1;
        if (cp >= 0xD800 && cp < 0xDC00) {
          uint32_t lo;
          if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
            return bad(c, "%s", "lone surrogate in a \\u escape");
          c->p += 2;
          if (hex4(c, &lo) != 0) return -1;
          if (lo < 0xDC00 || lo > 0xDFFF) return bad(c, "%s", "bad surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          return bad(c, "%s", "lone surrogate in a \\u escape");
        }
        break;
      }
      default: return bad(c, "%s", "bad escape in a string");
    }
    if (out && put_utf8(out, cp) != 0) return -2;
  }
}

/* A number token: its text (bounded) and whether it has a fraction or
 * exponent. */
static int number(cur *c, char *text, size_t cap, int *integral) {
  const uint8_t *s = c->p;
  if (c->p < c->end && *c->p == '-') c->p++;
  if (c->p >= c->end || *c->p < '0' || *c->p > '9') return bad(c, "%s", "bad number");
  if (*c->p == '0') c->p++;
  else while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  *integral = 1;
  if (c->p < c->end && *c->p == '.') {
    *integral = 0;
    c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return bad(c, "%s", "bad number");
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    *integral = 0;
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return bad(c, "%s", "bad number");
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  }
  size_t n = (size_t)(c->p - s);
  if (n >= cap) return bad(c, "%s", "number too long");
  memcpy(text, s, n);
  text[n] = '\0';
  return 0;
}

static int literal(cur *c, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return bad(c, "%s", "bad literal");
  c->p += n;
  return 0;
}

/* Skips any value. */
static int skip(cur *c, int depth) {
  if (depth > MAX_DEPTH) return bad(c, "%s", "nesting deeper than 64");
  ws(c);
  if (c->p >= c->end) return bad(c, "%s", "truncated value");
  char num[64];
  int integral;
  switch (*c->p) {
    case '"': return string(c, NULL);
    case 't': return literal(c, "true");
    case 'f': return literal(c, "false");
    case 'n': return literal(c, "null");
    case '[': case '{': {
      int obj = *c->p == '{';
      c->p++;
      ws(c);
      if (c->p < c->end && *c->p == (obj ? '}' : ']')) {
        c->p++;
        return 0;
      }
      for (;;) {
        if (obj) {
          ws(c);
          if (string(c, NULL) != 0) return -1;
          ws(c);
          if (c->p >= c->end || *c->p != ':') return bad(c, "%s", "expected ':'");
          c->p++;
        }
        if (skip(c, depth + 1) != 0) return -1;
        ws(c);
        if (c->p < c->end && *c->p == ',') { c->p++; continue; }
        if (c->p < c->end && *c->p == (obj ? '}' : ']')) { c->p++; return 0; }
        return bad(c, "%s", obj ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    default: return number(c, num, sizeof num, &integral);
  }
}

/* The value of field f into cell x. */
static int value(cur *c, const field *f, cell *x) {
  ws(c);
  if (c->p >= c->end) return bad(c, "%s", "truncated value");
  if (*c->p == 'n') {
    x->set = 0;
    return literal(c, "null");
  }
  char num[64];
  int integral;
  switch (f->k) {
    case K_BOOL:
      if (*c->p == 't') { x->i = 1; x->set = 1; return literal(c, "true"); }
      if (*c->p == 'f') { x->i = 0; x->set = 1; return literal(c, "false"); }
      return bad(c, "field '%s' is not a boolean", f->name);
    case K_INT:
    case K_TIMESTAMP:
      if (*c->p != '-' && (*c->p < '0' || *c->p > '9')) return bad(c, "field '%s' is not a number", f->name);
      if (number(c, num, sizeof num, &integral) != 0) return -1;
      if (!integral) return bad(c, "field '%s' is not an integer", f->name);
      errno = 0;
      x->i = strtoll(num, NULL, 10);
      if (errno == ERANGE) return bad(c, "field '%s' is out of range", f->name);
      x->set = 1;
      return 0;
    case K_FLOAT:
      if (*c->p != '-' && (*c->p < '0' || *c->p > '9')) return bad(c, "field '%s' is not a number", f->name);
      if (number(c, num, sizeof num, &integral) != 0) return -1;
      x->d = strtod(num, NULL);
      x->set = 1;
      return 0;
    case K_UTF8:
    case K_BINARY: {
      if (*c->p != '"') return bad(c, "field '%s' is not a string", f->name);
      int rc = string(c, &x->s);
      if (rc == 0) x->set = 1;
      return rc;
    }
  }
  return bad(c, "%s", "unknown field kind");
}

/* One JSON object into the cells. 0 ok, -1 malformed, -2 out of memory. */
static int parse_object(dec *d, const uint8_t *p, int64_t len, char *why, size_t why_size) {
  cur c = {p, p + len, {0}};
  for (int64_t i = 0; i < d->n; i++) d->c[i].set = 0;
  pt_buf *kb = &d->key;
  int rc = 0;
  int64_t hint = 0; /* the field the next key likely names */
  ws(&c);
  if (c.p >= c.end || *c.p != '{') {
    rc = bad(&c, "%s", "not a JSON object");
    goto done;
  }
  c.p++;
  ws(&c);
  if (c.p < c.end && *c.p == '}') {
    c.p++;
  } else {
    for (;;) {
      ws(&c);
      if ((rc = string(&c, kb)) != 0) goto done;
      ws(&c);
      if (c.p >= c.end || *c.p != ':') {
        rc = bad(&c, "%s", "expected ':'");
        goto done;
      }
      c.p++;
      /* Producers mostly write the keys in one order: try the field after
       * the last one matched first, then all of them. */
      int64_t fi = -1;
      if (d->unique && hint < d->n && d->f[hint].name_len == kb->len &&
          memcmp(d->f[hint].name, kb->data, kb->len) == 0)
        fi = hint;
      for (int64_t j = d->n - 1; fi < 0 && j >= 0; j--) /* the last of equal names wins */
        if (d->f[j].name_len == kb->len && memcmp(d->f[j].name, kb->data, kb->len) == 0) fi = j;
      hint = fi >= 0 ? fi + 1 : hint;
      rc = fi >= 0 ? value(&c, &d->f[fi], &d->c[fi]) : skip(&c, 1);
      if (rc != 0) goto done;
      ws(&c);
      if (c.p < c.end && *c.p == ',') { c.p++; continue; }
      if (c.p < c.end && *c.p == '}') { c.p++; break; }
      rc = bad(&c, "%s", "expected ',' or '}'");
      goto done;
    }
  }
  ws(&c);
  if (c.p != c.end) rc = bad(&c, "%s", "text after the object");
done:
  if (rc == -1) snprintf(why, why_size, "%s", c.why);
  if (rc == -2) snprintf(why, why_size, "out of memory");
  return rc;
}

static int append_cells(dec *d) {
  int rc = PT_OK;
  for (int64_t i = 0; i < d->n && rc == PT_OK; i++) {
    pt_builder *fb = pt_builder_child(d->b, i);
    cell *x = &d->c[i];
    if (!x->set) rc = pt_builder_append_null(fb, 1);
    else if (d->f[i].k == K_FLOAT) rc = pt_builder_append_double(fb, x->d);
    else if (d->f[i].k == K_UTF8 || d->f[i].k == K_BINARY)
      rc = pt_builder_append_bytes(fb, x->s.data ? x->s.data : "", (int64_t)x->s.len);
    else rc = pt_builder_append_int(fb, x->i);
  }
  return rc == PT_OK ? pt_builder_append_row(d->b) : rc;
}

/* ------------------------------------------------------------------------ */
/* Shared */

static int schema_same(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  if (strcmp(a->format, b->format) != 0 || a->n_children != b->n_children) return 0;
  if ((a->name ? a->name : "")[0] != '\0' || (b->name ? b->name : "")[0] != '\0')
    if (strcmp(a->name ? a->name : "", b->name ? b->name : "") != 0) return 0;
  for (int64_t i = 0; i < a->n_children; i++)
    if (!schema_same(a->children[i], b->children[i])) return 0;
  return 1;
}

int pt_kafka_dead_letter_schema(struct ArrowSchema *out, pt_error *err) {
  PT_RETURN_NOT_OK(pt_schema_init(out, "+s", "", 0, 3, err));
  int rc = pt_schema_init(out->children[0], "l", "row", 0, 0, err);
  if (rc == PT_OK) rc = pt_schema_init(out->children[1], "z", "value", ARROW_FLAG_NULLABLE, 0, err);
  if (rc == PT_OK) rc = pt_schema_init(out->children[2], "u", "error", 0, 0, err);
  if (rc != PT_OK) out->release(out);
  return rc;
}

static int dead_letter(pt_builder *b, int64_t row, const uint8_t *v, int64_t len, const char *why) {
  int rc = pt_builder_append_int(pt_builder_child(b, 0), row);
  if (rc == PT_OK)
    rc = v ? pt_builder_append_bytes(pt_builder_child(b, 1), v, len)
           : pt_builder_append_null(pt_builder_child(b, 1), 1);
  if (rc == PT_OK) rc = pt_builder_append_bytes(pt_builder_child(b, 2), why, (int64_t)strlen(why));
  return rc == PT_OK ? pt_builder_append_row(b) : rc;
}

typedef int (*decode_one)(dec *d, const uint8_t *v, int64_t len, char *why, size_t why_size);

/* The loop both decoders share: each value decoded by one(), malformed ones
 * handled by the policy. */
static int decode_all(dec *d, const char *what, const struct ArrowSchema *values_schema,
                      const struct ArrowArray *values, int policy, decode_one one,
                      struct ArrowArray *out, struct ArrowArray *dead, pt_error *err) {
  if (strcmp(values_schema->format, "z") != 0 && strcmp(values_schema->format, "u") != 0)
    return pt__errorf(err, PT_EINVAL, "%s: values are '%s'; give a binary or string column",
                      what, values_schema->format);
  if (policy < PT_KAFKA_BAD_FAIL || policy > PT_KAFKA_BAD_DEAD_LETTER)
    return pt__errorf(err, PT_EINVAL, "%s: unknown malformed-record policy %d", what, policy);
  if (policy == PT_KAFKA_BAD_DEAD_LETTER && !dead)
    return pt__errorf(err, PT_EINVAL, "%s: the dead-letter policy needs a dead batch to fill", what);
  pt__view v;
  PT_RETURN_NOT_OK(pt__view_init(&v, values_schema, values, err));
  int rc = d->no_builder ? PT_OK : pt_builder_new(d->schema, &d->b, err);
  struct ArrowSchema ds = {0};
  if (rc == PT_OK && policy == PT_KAFKA_BAD_DEAD_LETTER) {
    rc = pt_kafka_dead_letter_schema(&ds, err);
    if (rc == PT_OK) rc = pt_builder_new(&ds, &d->dead, err);
  }
  char why[256];
  for (int64_t i = 0; rc == PT_OK && i < v.length; i++) {
    int64_t len = 0;
    const uint8_t *p = pt__view_is_valid(&v, i) ? pt__view_get_bytes(&v, i, &len) : NULL;
    int r;
    if (!p) {
      snprintf(why, sizeof why, "the value is null");
      r = -1;
    } else {
      why[0] = '\0';
      r = one(d, p, len, why, sizeof why);
    }
    if (r == -2) rc = pt__errorf(err, PT_ENOMEM, "%s: out of memory", what);
    else if (r == -1 && policy == PT_KAFKA_BAD_FAIL)
      rc = pt__errorf(err, PT_EFORMAT, "%s: record %lld: %s; drop or dead-letter malformed "
                                       "records to go on", what, (long long)i, why);
    else if (r == -1 && policy == PT_KAFKA_BAD_DEAD_LETTER) rc = dead_letter(d->dead, i, p, len, why);
    if (rc != PT_OK && rc != PT_EFORMAT && rc != PT_ENOMEM)
      rc = pt__errorf(err, rc, "%s: record %lld: %s", what, (long long)i,
                      d->b ? pt_builder_last_error(d->b) : "dead letter");
  }
  if (rc == PT_OK && d->b) rc = pt_builder_finish(d->b, out, err);
  if (rc == PT_OK && d->dead) {
    rc = pt_builder_finish(d->dead, dead, err);
    if (rc != PT_OK && out->release) out->release(out);
  }
  if (ds.release) ds.release(&ds);
  pt_builder_free(d->b);
  pt_builder_free(d->dead);
  d->b = d->dead = NULL;
  pt__view_reset(&v);
  return rc;
}

static int json_one(dec *d, const uint8_t *v, int64_t len, char *why, size_t why_size) {
  int r = parse_object(d, v, len, why, why_size);
  if (r != 0) return r;
  return append_cells(d) == PT_OK ? 0 : -2;
}

int pt_kafka_decode_json(const struct ArrowSchema *values_schema, const struct ArrowArray *values,
                         const struct ArrowSchema *schema, int policy, struct ArrowArray *out,
                         struct ArrowArray *dead, pt_error *err) {
  if (!values_schema || !values || !schema || !out)
    return pt__errorf(err, PT_EINVAL, "decode_json: arguments must not be NULL");
  memset(out, 0, sizeof *out);
  if (dead) memset(dead, 0, sizeof *dead);
  if (strcmp(schema->format, "+s") != 0)
    return pt__errorf(err, PT_EINVAL, "decode_json: the schema must be a struct of columns");
  dec d = {.schema = schema, .n = schema->n_children};
  d.f = pt__calloc((size_t)(d.n ? d.n : 1), sizeof *d.f);
  d.c = pt__calloc((size_t)(d.n ? d.n : 1), sizeof *d.c);
  int rc = d.f && d.c ? PT_OK : pt__errorf(err, PT_ENOMEM, "decode_json: out of memory");
  for (int64_t i = 0; rc == PT_OK && i < d.n; i++) {
    const struct ArrowSchema *c = schema->children[i];
    const char *f = c->format;
    d.f[i].name = c->name ? c->name : "";
    d.f[i].name_len = strlen(d.f[i].name);
    if (!strcmp(f, "b")) d.f[i].k = K_BOOL;
    else if (!strcmp(f, "c") || !strcmp(f, "s") || !strcmp(f, "i") || !strcmp(f, "l")) d.f[i].k = K_INT;
    else if (!strcmp(f, "f") || !strcmp(f, "g")) d.f[i].k = K_FLOAT;
    else if (!strcmp(f, "u")) d.f[i].k = K_UTF8;
    else if (!strcmp(f, "z")) d.f[i].k = K_BINARY;
    else if (!strncmp(f, "ts", 2)) d.f[i].k = K_TIMESTAMP;
    else rc = pt__errorf(err, PT_ENOTSUP, "decode_json: column '%s' has type '%s'; JSON values "
                         "decode into booleans, integers, floats, strings, binary and "
                         "timestamps (epoch numbers in the column's unit)", d.f[i].name, f);
  }
  d.unique = 1;
  for (int64_t i = 0; rc == PT_OK && i < d.n; i++)
    for (int64_t j = 0; j < i; j++)
      if (d.f[i].name_len == d.f[j].name_len && !memcmp(d.f[i].name, d.f[j].name, d.f[i].name_len))
        d.unique = 0;
  if (rc == PT_OK) rc = decode_all(&d, "decode_json", values_schema, values, policy, json_one, out, dead, err);
  pt_buf_free(&d.key);
  for (int64_t i = 0; d.c && i < d.n; i++) pt_buf_free(&d.c[i].s);
  pt__free(d.c);
  pt__free(d.f);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Arrow IPC */

typedef struct ipc_state {
  struct ArrowArray *parts; /* decoded batches of the good records */
  int64_t n, cap;
} ipc_state;

static int ipc_one(dec *d, const uint8_t *v, int64_t len, char *why, size_t why_size) {
  ipc_state *st = (ipc_state *)d->f; /* the IPC decoder keeps its state there */
  struct ArrowArrayStream s;
  pt_error e;
  if (pt_ipc_read_buffer(v, len, NULL, NULL, &s, &e) != PT_OK) {
    snprintf(why, why_size, "%s", e.message);
    return -1;
  }
  struct ArrowSchema sch;
  int r = 0;
  if (s.get_schema(&s, &sch) != 0) {
    snprintf(why, why_size, "%s", s.get_last_error(&s) ? s.get_last_error(&s) : "bad schema");
    s.release(&s);
    return -1;
  }
  if (!schema_same(&sch, d->schema)) {
    snprintf(why, why_size, "the stream's schema is not the one expected");
    r = -1;
  }
  sch.release(&sch);
  int64_t first = st->n;
  while (r == 0) {
    struct ArrowArray a;
    if (s.get_next(&s, &a) != 0) {
      const char *m = s.get_last_error(&s);
      snprintf(why, why_size, "%s", m ? m : "bad record batch");
      r = -1;
      break;
    }
    if (!a.release) break;
    /* The stream's arrays point into the value: copy them out. */
    struct ArrowArray copy;
    int crc = pt_array_validate(d->schema, &a, &e);
    if (crc == PT_OK) crc = pt_array_copy(d->schema, &a, &copy, &e);
    a.release(&a);
    if (crc != PT_OK) {
      snprintf(why, why_size, "%s", e.message);
      r = crc == PT_ENOMEM ? -2 : -1;
      break;
    }
    if (pt__grow((void **)&st->parts, &st->cap, st->n + 1, sizeof *st->parts) != PT_OK) {
      copy.release(&copy);
      r = -2;
      break;
    }
    st->parts[st->n++] = copy;
  }
  s.release(&s);
  if (r != 0) /* all of the record or none of it */
    while (st->n > first) {
      st->n--;
      st->parts[st->n].release(&st->parts[st->n]);
    }
  return r;
}

int pt_kafka_decode_ipc(const struct ArrowSchema *values_schema, const struct ArrowArray *values,
                        const struct ArrowSchema *schema, int policy, struct ArrowArray *out,
                        struct ArrowArray *dead, pt_error *err) {
  if (!values_schema || !values || !schema || !out)
    return pt__errorf(err, PT_EINVAL, "decode_ipc: arguments must not be NULL");
  memset(out, 0, sizeof *out);
  if (dead) memset(dead, 0, sizeof *dead);
  if (strcmp(schema->format, "+s") != 0)
    return pt__errorf(err, PT_EINVAL, "decode_ipc: the schema must be a struct of columns");
  ipc_state st = {0};
  dec d = {.schema = schema, .n = 0, .f = (field *)&st, .no_builder = 1};
  int rc = decode_all(&d, "decode_ipc", values_schema, values, policy, ipc_one, out, dead, err);
  if (rc == PT_OK) {
    if (st.n == 0) {
      pt_builder *b = NULL;
      rc = pt_builder_new(schema, &b, err);
      if (rc == PT_OK) rc = pt_builder_finish(b, out, err);
      pt_builder_free(b);
    } else {
      const struct ArrowArray **ptrs = pt__malloc((size_t)st.n * sizeof *ptrs);
      if (!ptrs) rc = pt__errorf(err, PT_ENOMEM, "decode_ipc: out of memory");
      for (int64_t i = 0; rc == PT_OK && i < st.n; i++) ptrs[i] = &st.parts[i];
      if (rc == PT_OK) rc = pt__array_concat(schema, ptrs, st.n, out, err);
      pt__free(ptrs);
    }
    if (rc != PT_OK && dead && dead->release) dead->release(dead);
  }
  for (int64_t i = 0; i < st.n; i++) st.parts[i].release(&st.parts[i]);
  pt__free(st.parts);
  return rc;
}
