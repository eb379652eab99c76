/* encode.c — rows to record values: each row of a struct array becomes one
 * JSON object (RFC 8259) with a key per column, the inverse of
 * pt_kafka_decode_json over the same types, so that a Kafka sink can write
 * typed rows without a Python step. Floats are written in the fewest digits
 * that read back to the same double; strings are escaped as the RFC says
 * and otherwise kept as UTF-8.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "kafka/kafka.h"

typedef enum { E_BOOL, E_INT, E_FLOAT32, E_FLOAT64, E_UTF8, E_BINARY } ekind;

typedef struct ecol {
  ekind k;
  const char *name;
  pt_buf key; /* "\"name\":" escaped once, with the separator before it */
} ecol;

static const char HEX[] = "0123456789abcdef";

/* s escaped as a JSON string, quotes included. Bytes from 0x80 up are
 * copied: the caller has checked that they are UTF-8. */
static int put_string(pt_buf *b, const uint8_t *s, int64_t n) {
  /* worst case: every byte as \u00XX */
  PT_RETURN_NOT_OK(pt__buf_reserve(b, (size_t)n * 6 + 2));
  char *o = b->data + b->len;
  *o++ = '"';
  for (int64_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\') {
      *o++ = (char)c;
      continue;
    }
    *o++ = '\\';
    switch (c) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\b': *o++ = 'b'; break;
      case '\f': *o++ = 'f'; break;
      case '\n': *o++ = 'n'; break;
      case '\r': *o++ = 'r'; break;
      case '\t': *o++ = 't'; break;
      default:
        *o++ = 'u'; *o++ = '0'; *o++ = '0';
        *o++ = HEX[c >> 4]; *o++ = HEX[c & 15];
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->data);
  return PT_OK;
}

/* Digits of v (>= 0), most significant first, into t; their count. */
static int put_digits(char *t, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (int i = 0; i < n; i++) t[i] = tmp[n - 1 - i];
  return n;
}

static int put_int(pt_buf *b, int64_t v) {
  PT_RETURN_NOT_OK(pt__buf_reserve(b, 21));
  char *o = b->data + b->len;
  uint64_t u = (uint64_t)v;
  if (v < 0) {
    *o++ = '-';
    u = 0 - u;
  }
  o += put_digits(o, u);
  b->len = (size_t)(o - b->data);
  return PT_OK;
}

static const double POW10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};

/* The shortest of %.{min..17}g that reads back as d; a float32 column's
 * values need only read back as the same float. Integral results get ".0"
 * so that the value stays a float to a reader that types by syntax.
 * Doubles with few decimals (prices, ratings) take a short way: when
 * m / 10^k == d for an integer m < 2^53 and the smallest such k <= 6, the
 * division is correctly rounded as strtod is, so m with k decimals is the
 * shortest text that reads back as d (a shorter one would be a smaller
 * k), the digits Python's repr writes too. */
static int put_double(pt_buf *b, double d, int is_float32) {
  char t[40];
  int n = 0;
  double a = fabs(d);
  if (!is_float32 && a >= 1e-4 && a < 1e15) {
    for (int k = 0; k <= 6; k++) {
      double scaled = a * POW10[k];
      if (scaled >= 9007199254740992.0) break;
      double m = nearbyint(scaled);
      if (m / POW10[k] != a) continue;
      uint64_t mi = (uint64_t)m;
      char digits[24];
      int nd = put_digits(digits, mi);
      if (d < 0) t[n++] = '-';
      if (nd <= k) { /* 0.00ddd */
        t[n++] = '0';
        t[n++] = '.';
        for (int z = 0; z < k - nd; z++) t[n++] = '0';
        memcpy(t + n, digits, (size_t)nd);
        n += nd;
      } else {
        memcpy(t + n, digits, (size_t)(nd - k));
        n += nd - k;
        t[n++] = '.';
        if (k == 0) t[n++] = '0';
        memcpy(t + n, digits + nd - k, (size_t)k);
        n += k;
      }
      return pt__buf_append(b, t, (size_t)n);
    }
  }
  for (int prec = is_float32 ? 6 : 15; prec <= 17; prec++) {
    n = snprintf(t, sizeof t, "%.*g", prec, d);
    double back = strtod(t, NULL);
    if (is_float32 ? (float)back == (float)d : back == d) break;
  }
  if (!strpbrk(t, ".eE")) {
    t[n++] = '.';
    t[n++] = '0';
  }
  return pt__buf_append(b, t, (size_t)n);
}

/* The columns of schema, with their keys; PT_ENOTSUP for a type JSON
 * values do not encode. cols has schema->n_children entries, zeroed. */
static int cols_init(const struct ArrowSchema *schema, ecol *cols, pt_error *err) {
  int rc = PT_OK;
  int64_t n = schema->n_children;
  for (int64_t i = 0; rc == PT_OK && i < n; i++) {
    const char *f = schema->children[i]->format;
    ecol *c = &cols[i];
    c->name = schema->children[i]->name ? schema->children[i]->name : "";
    if (!strcmp(f, "b")) c->k = E_BOOL;
    else if (!strcmp(f, "c") || !strcmp(f, "s") || !strcmp(f, "i") || !strcmp(f, "l") ||
             !strncmp(f, "ts", 2)) c->k = E_INT;
    else if (!strcmp(f, "f")) c->k = E_FLOAT32;
    else if (!strcmp(f, "g")) c->k = E_FLOAT64;
    else if (!strcmp(f, "u") || !strcmp(f, "U") || !strcmp(f, "vu")) c->k = E_UTF8;
    else if (!strcmp(f, "z") || !strcmp(f, "Z") || !strcmp(f, "vz")) c->k = E_BINARY;
    else {
      rc = pt__errorf(err, PT_ENOTSUP, "encode_json: column '%s' has type '%s'; JSON values "
                      "encode booleans, integers, floats, strings, binary (UTF-8 text) and "
                      "timestamps (epoch numbers in the column's unit); cast it first",
                      c->name, f);
      break;
    }
    if (!pt__utf8_valid((const uint8_t *)c->name, strlen(c->name))) {
      rc = pt__errorf(err, PT_EINVAL, "encode_json: column %lld's name is not valid UTF-8; "
                      "rename it", (long long)i);
      break;
    }
    if (pt__buf_append(&c->key, i ? "," : "{", 1) != PT_OK ||
        put_string(&c->key, (const uint8_t *)c->name, (int64_t)strlen(c->name)) != PT_OK ||
        pt__buf_append(&c->key, ":", 1) != PT_OK)
      rc = pt__errorf(err, PT_ENOMEM, "encode_json: out of memory");
  }
  return rc;
}

static void cols_free(ecol *cols, int64_t n) {
  for (int64_t i = 0; cols && i < n; i++) pt_buf_free(&cols[i].key);
  pt__free(cols);
}

int pt__kafka_json_encodable(const struct ArrowSchema *schema, pt_error *err) {
  if (strcmp(schema->format, "+s") != 0)
    return pt__errorf(err, PT_EINVAL, "encode_json: the rows must be a struct of columns");
  int64_t n = schema->n_children;
  ecol *cols = pt__calloc((size_t)(n ? n : 1), sizeof *cols);
  if (!cols) return pt__errorf(err, PT_ENOMEM, "encode_json: out of memory");
  int rc = cols_init(schema, cols, err);
  cols_free(cols, n);
  return rc;
}

int pt_kafka_encode_json(const struct ArrowSchema *schema, const struct ArrowArray *rows,
                         struct ArrowArray *out, pt_error *err) {
  if (!schema || !rows || !out)
    return pt__errorf(err, PT_EINVAL, "encode_json: arguments must not be NULL");
  memset(out, 0, sizeof *out);
  if (strcmp(schema->format, "+s") != 0)
    return pt__errorf(err, PT_EINVAL, "encode_json: the rows must be a struct of columns");
  int64_t n = schema->n_children;
  ecol *cols = pt__calloc((size_t)(n ? n : 1), sizeof *cols); /* owned here */
  pt_buf data = {0};      /* the values, one after another; moves into *out */
  int32_t *offsets = NULL; /* moves into *out */
  pt__view v;
  int have_view = 0;
  int rc = cols ? PT_OK : pt__errorf(err, PT_ENOMEM, "encode_json: out of memory");
  if (rc == PT_OK) rc = cols_init(schema, cols, err);
  if (rc == PT_OK) {
    rc = pt__view_init(&v, schema, rows, err);
    if (rc == PT_OK) have_view = 1;
    else rc = pt__error_prefix(err, rc, "encode_json: ");
  }
  int64_t len = have_view ? v.length : 0;
  if (rc == PT_OK && !(offsets = pt__buffer_alloc_zeroed((len + 1) * (int64_t)sizeof *offsets)))
    rc = pt__errorf(err, PT_ENOMEM, "encode_json: out of memory");
  for (int64_t r = 0; rc == PT_OK && r < len; r++) {
    offsets[r] = (int32_t)data.len;
    if (!pt__view_is_valid(&v, r)) {
      rc = pt__errorf(err, PT_EINVAL, "encode_json: row %lld is null; a record value is an "
                      "object, so give rows that are not null", (long long)r);
      break;
    }
    if (n == 0 && pt__buf_append(&data, "{", 1) != PT_OK) rc = PT_ENOMEM;
    for (int64_t i = 0; rc == PT_OK && i < n; i++) {
      const ecol *c = &cols[i];
      const pt__view *cv = &v.children[i];
      rc = pt__buf_append(&data, c->key.data, c->key.len);
      if (rc != PT_OK) break;
      if (!pt__view_is_valid(cv, r)) {
        rc = pt__buf_append(&data, "null", 4);
        continue;
      }
      switch (c->k) {
        case E_BOOL:
          rc = pt__view_get_bool(cv, r) ? pt__buf_append(&data, "true", 4)
                                        : pt__buf_append(&data, "false", 5);
          break;
        case E_INT: rc = put_int(&data, pt__view_get_int(cv, r)); break;
        case E_FLOAT32:
        case E_FLOAT64: {
          double d = pt__view_get_double(cv, r);
          if (!isfinite(d)) {
            rc = pt__errorf(err, PT_EINVAL, "encode_json: row %lld: column '%s' is %s, which "
                            "JSON cannot hold; replace it (or make it null) before encoding",
                            (long long)r, c->name, isnan(d) ? "NaN" : "infinite");
            break;
          }
          rc = put_double(&data, d, c->k == E_FLOAT32);
          break;
        }
        case E_UTF8:
        case E_BINARY: {
          int64_t sl = 0;
          const uint8_t *s = pt__view_get_bytes(cv, r, &sl);
          if (!pt__utf8_valid(s, (size_t)sl)) {
            rc = pt__errorf(err, PT_EINVAL, "encode_json: row %lld: column '%s' is not valid "
                            "UTF-8, which a JSON string must be; encode the bytes (base64, "
                            "hex) first", (long long)r, c->name);
            break;
          }
          rc = put_string(&data, s, sl);
          break;
        }
      }
    }
    if (rc == PT_OK) rc = pt__buf_append(&data, "}", 1);
    if (rc == PT_ENOMEM) rc = pt__errorf(err, PT_ENOMEM, "encode_json: out of memory");
    if (rc == PT_OK && data.len > INT32_MAX)
      rc = pt__errorf(err, PT_EINVAL, "encode_json: the values of %lld rows pass 2 GiB; encode "
                      "fewer rows at a time", (long long)(r + 1));
  }
  if (rc == PT_OK) {
    offsets[len] = (int32_t)data.len;
    rc = pt__array_init(out, 3, 0, false, err);
  }
  if (rc == PT_OK) {
    if (!data.data) data.data = pt__malloc(1); /* a binary array needs a data buffer */
    if (!data.data) {
      out->release(out);
      rc = pt__errorf(err, PT_ENOMEM, "encode_json: out of memory");
    }
  }
  if (rc == PT_OK) {
    out->length = len;
    out->null_count = 0;
    pt__array_set_buffer(out, 1, offsets, true);
    pt__array_set_buffer(out, 2, data.data, true);
    offsets = NULL;
    data.data = NULL;
  }
  if (have_view) pt__view_reset(&v);
  pt__free(offsets);
  pt_buf_free(&data);
  cols_free(cols, n);
  return rc;
}
