/* json.c — the JSON of a Delta log (RFC 8259): commit files, stats and
 * schema strings parsed into a small tree, and the string escaping the
 * writer needs. Log files come from anywhere, so every byte is bounded,
 * nesting stops at PT__JSON_MAX_DEPTH, and a malformed document gives an
 * error naming the byte where it went wrong.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delta/delta.h"

typedef struct parser {
  const char *p, *end, *start;
  int depth;
  pt_error *err;
} parser;

static int fail(parser *ps, const char *what) {
  return pt__errorf(ps->err, PT_EFORMAT, "bad JSON at byte %lld: %s",
                    (long long)(ps->p - ps->start), what);
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

void pt__json_free(pt__json *j) {
  if (!j) return;
  for (int64_t i = 0; i < j->n; i++) {
    pt__json_free(j->items[i]);
    if (j->keys) pt__free(j->keys[i]);
  }
  pt__free(j->items);
  pt__free(j->keys);
  pt__free(j->str);
  pt__free(j);
}

static int hex4(parser *ps, uint32_t *out) {
  if (ps->end - ps->p < 4) return fail(ps, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = ps->p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return fail(ps, "bad \\u escape");
    v = v * 16 + (uint32_t)d;
  }
  ps->p += 4;
  *out = v;
  return PT_OK;
}

static int put_utf8(pt_buf *b, uint32_t cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) { u[0] = (char)cp; n = 1; }
  else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
  }
  return pt__buf_append(b, u, n);
}

/* A string at ps->p (on the opening quote): unescaped into a NUL-terminated
 * pt__malloc'd copy (*len bytes; may hold NULs from \u0000). */
static int parse_string(parser *ps, char **out, int64_t *len) {
  ps->p++;
  pt_buf b = {0};
  int rc = PT_OK;
  for (;;) {
    if (ps->p >= ps->end) { rc = fail(ps, "unterminated string"); break; }
    char c = *ps->p;
    if (c == '"') { ps->p++; break; }
    if ((unsigned char)c < 0x20) { rc = fail(ps, "control character in a string"); break; }
    if (c != '\\') {
      const char *q = ps->p;
      while (q < ps->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
      if (pt__buf_append(&b, ps->p, (size_t)(q - ps->p)) != PT_OK) { rc = PT_ENOMEM; break; }
      ps->p = q;
      continue;
    }
    if (++ps->p >= ps->end) { rc = fail(ps, "unterminated escape"); break; }
    char e = *ps->p++;
    char plain = e == '"' ? '"' : e == '\\' ? '\\' : e == '/' ? '/' : e == 'b' ? '\b'
               : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : 0;
    if (plain) {
      if (pt__buf_putc(&b, plain) != PT_OK) { rc = PT_ENOMEM; break; }
      continue;
    }
    if (e != 'u') { rc = fail(ps, "unknown escape"); break; }
    uint32_t cp;
    if ((rc = hex4(ps, &cp)) != PT_OK) break;
    if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
      ps->p += 2;
      uint32_t lo;
      if ((rc = hex4(ps, &lo)) != PT_OK) break;
      if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      else cp = 0xFFFD;
    } else if (cp >= 0xD800 && cp < 0xE000) {
      cp = 0xFFFD; /* a lone surrogate */
    }
    if (put_utf8(&b, cp) != PT_OK) { rc = PT_ENOMEM; break; }
  }
  if (rc == PT_OK && pt__buf_putc(&b, '\0') != PT_OK) rc = PT_ENOMEM;
  if (rc != PT_OK) {
    pt_buf_free(&b);
    if (rc == PT_ENOMEM) return pt__errorf(ps->err, PT_ENOMEM, "out of memory");
    return rc;
  }
  *out = b.data ? b.data : NULL;
  *len = (int64_t)b.len - 1;
  return PT_OK;
}

static int parse_value(parser *ps, pt__json **out);

static int push(pt__json *j, char *key, pt__json *v, int64_t *cap) {
  int64_t kcap = *cap;
  if (pt__grow((void **)&j->items, cap, j->n + 1, sizeof *j->items) != PT_OK) return PT_ENOMEM;
  if (j->type == PT__JSON_OBJECT &&
      pt__grow((void **)&j->keys, &kcap, j->n + 1, sizeof *j->keys) != PT_OK)
    return PT_ENOMEM;
  j->items[j->n] = v;
  if (j->keys) j->keys[j->n] = key;
  j->n++;
  return PT_OK;
}

static int parse_container(parser *ps, pt__json *j, char close) {
  ps->p++;
  if (++ps->depth > PT__JSON_MAX_DEPTH) return fail(ps, "nested too deep");
  int64_t cap = 0;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    ps->depth--;
    return PT_OK;
  }
  for (;;) {
    char *key = NULL;
    int64_t klen;
    skip_ws(ps);
    if (close == '}') {
      if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a member name");
      PT_RETURN_NOT_OK(parse_string(ps, &key, &klen));
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') {
        pt__free(key);
        return fail(ps, "expected ':'");
      }
      ps->p++;
    }
    pt__json *v;
    int rc = parse_value(ps, &v);
    if (rc != PT_OK) {
      pt__free(key);
      return rc;
    }
    if (push(j, key, v, &cap) != PT_OK) {
      pt__free(key);
      pt__json_free(v);
      return pt__errorf(ps->err, PT_ENOMEM, "out of memory");
    }
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unterminated array or object");
    if (*ps->p == ',') { ps->p++; continue; }
    if (*ps->p == close) { ps->p++; break; }
    return fail(ps, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
  }
  ps->depth--;
  return PT_OK;
}

static int parse_number(parser *ps, pt__json *j) {
  const char *q = ps->p;
  if (q < ps->end && *q == '-') q++;
  if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, "bad number");
  if (*q == '0') q++;
  else while (q < ps->end && *q >= '0' && *q <= '9') q++;
  bool integral = true;
  if (q < ps->end && *q == '.') {
    integral = false;
    q++;
    if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, "bad number");
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
  }
  if (q < ps->end && (*q == 'e' || *q == 'E')) {
    integral = false;
    q++;
    if (q < ps->end && (*q == '+' || *q == '-')) q++;
    if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, "bad number");
    while (q < ps->end && *q >= '0' && *q <= '9') q++;
  }
  size_t n = (size_t)(q - ps->p);
  j->str = pt__malloc(n + 1);
  if (!j->str) return pt__errorf(ps->err, PT_ENOMEM, "out of memory");
  memcpy(j->str, ps->p, n);
  j->str[n] = '\0';
  j->len = (int64_t)n;
  j->d = strtod(j->str, NULL);
  errno = 0;
  long long v = integral ? strtoll(j->str, NULL, 10) : 0;
  j->is_int = integral && errno != ERANGE;
  j->i = j->is_int ? v : (int64_t)0;
  ps->p = q;
  return PT_OK;
}

static bool word(parser *ps, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) return false;
  ps->p += n;
  return true;
}

static int parse_value(parser *ps, pt__json **out) {
  *out = NULL;
  skip_ws(ps);
  if (ps->p >= ps->end) return fail(ps, "expected a value");
  pt__json *j = pt__calloc(1, sizeof *j);
  if (!j) return pt__errorf(ps->err, PT_ENOMEM, "out of memory");
  int rc = PT_OK;
  char c = *ps->p;
  if (c == '{') { j->type = PT__JSON_OBJECT; rc = parse_container(ps, j, '}'); }
  else if (c == '[') { j->type = PT__JSON_ARRAY; rc = parse_container(ps, j, ']'); }
  else if (c == '"') { j->type = PT__JSON_STRING; rc = parse_string(ps, &j->str, &j->len); }
  else if (c == '-' || (c >= '0' && c <= '9')) { j->type = PT__JSON_NUMBER; rc = parse_number(ps, j); }
  else if (word(ps, "true")) { j->type = PT__JSON_BOOL; j->b = true; }
  else if (word(ps, "false")) { j->type = PT__JSON_BOOL; }
  else if (word(ps, "null")) { j->type = PT__JSON_NULL; }
  else rc = fail(ps, "unexpected character");
  if (rc != PT_OK) {
    pt__json_free(j);
    return rc;
  }
  *out = j;
  return PT_OK;
}

int pt__json_parse(const char *text, int64_t len, pt__json **out, pt_error *err) {
  parser ps = {text, text + len, text, 0, err};
  PT_RETURN_NOT_OK(parse_value(&ps, out));
  skip_ws(&ps);
  if (ps.p != ps.end) {
    pt__json_free(*out);
    *out = NULL;
    return fail(&ps, "text after the value");
  }
  return PT_OK;
}

const pt__json *pt__json_get(const pt__json *j, const char *key) {
  if (!j || j->type != PT__JSON_OBJECT) return NULL;
  for (int64_t i = 0; i < j->n; i++)
    if (strcmp(j->keys[i], key) == 0) return j->items[i];
  return NULL;
}

const char *pt__json_str(const pt__json *j, const char *key) {
  const pt__json *v = pt__json_get(j, key);
  return v && v->type == PT__JSON_STRING ? v->str : NULL;
}

int pt__json_put_string(pt_buf *b, const char *s, int64_t n) {
  if (n < 0) n = (int64_t)strlen(s);
  PT_RETURN_NOT_OK(pt__buf_putc(b, '"'));
  for (int64_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      PT_RETURN_NOT_OK(pt__buf_putc(b, '\\'));
      PT_RETURN_NOT_OK(pt__buf_putc(b, (char)c));
    } else if (c < 0x20) {
      PT_RETURN_NOT_OK(pt__buf_printf(b, "\\u%04x", c));
    } else {
      PT_RETURN_NOT_OK(pt__buf_putc(b, (char)c));
    }
  }
  return pt__buf_putc(b, '"');
}
