/* thrift.c — the Thrift compact protocol, as much of it as Parquet's metadata
 * uses, read from untrusted bytes and written into a growing buffer. The
 * reader never trusts a length: strings and lists are checked against the
 * bytes left, varints are at most 10 bytes, nesting is bounded.
 */
#include <string.h>

#include "parquet/parquet_int.h"

static int truncated(pt__thrift_in *in, const char *what, pt_error *err) {
  return pt__errorf(err, PT_EFORMAT, "thrift: truncated %s at byte %lld", what,
                    (long long)(in->p - in->start));
}

int pt__thrift_varint(pt__thrift_in *in, uint64_t *out, pt_error *err) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (in->p >= in->end) return truncated(in, "varint", err);
    uint8_t b = *in->p++;
    if (shift == 63 && (b & 0x7e) != 0)
      return pt__errorf(err, PT_EFORMAT, "thrift: varint too large at byte %lld",
                        (long long)(in->p - in->start - 1));
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return PT_OK;
    }
  }
  return pt__errorf(err, PT_EFORMAT, "thrift: varint longer than 10 bytes at byte %lld",
                    (long long)(in->p - in->start));
}

int pt__thrift_i64(pt__thrift_in *in, int64_t *out, pt_error *err) {
  uint64_t u;
  PT_RETURN_NOT_OK(pt__thrift_varint(in, &u, err));
  *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
  return PT_OK;
}

int pt__thrift_i32(pt__thrift_in *in, int32_t *out, pt_error *err) {
  int64_t v;
  PT_RETURN_NOT_OK(pt__thrift_i64(in, &v, err));
  if (v < INT32_MIN || v > INT32_MAX)
    return pt__errorf(err, PT_EFORMAT, "thrift: integer %lld out of the 32-bit range at byte %lld",
                      (long long)v, (long long)(in->p - in->start));
  *out = (int32_t)v;
  return PT_OK;
}

int pt__thrift_binary(pt__thrift_in *in, const uint8_t **data, int64_t *len, pt_error *err) {
  uint64_t n;
  PT_RETURN_NOT_OK(pt__thrift_varint(in, &n, err));
  if (n > (uint64_t)(in->end - in->p))
    return pt__errorf(err, PT_EFORMAT,
                      "thrift: string of %llu bytes at byte %lld but only %lld bytes left",
                      (unsigned long long)n, (long long)(in->p - in->start),
                      (long long)(in->end - in->p));
  *data = in->p;
  *len = (int64_t)n;
  in->p += n;
  return PT_OK;
}

int pt__thrift_double(pt__thrift_in *in, double *out, pt_error *err) {
  if (in->end - in->p < 8) return truncated(in, "double", err);
  memcpy(out, in->p, 8);
  in->p += 8;
  return PT_OK;
}

int pt__thrift_field(pt__thrift_in *in, int16_t *last, int16_t *id, int *type, pt_error *err) {
  if (in->p >= in->end) return truncated(in, "struct (no stop field)", err);
  uint8_t b = *in->p++;
  *type = b & 0x0f;
  if (*type == PT__TH_STOP) {
    if (b != 0)
      return pt__errorf(err, PT_EFORMAT, "thrift: bad stop field 0x%02x at byte %lld", b,
                        (long long)(in->p - in->start - 1));
    return PT_OK;
  }
  if (*type > PT__TH_STRUCT)
    return pt__errorf(err, PT_EFORMAT, "thrift: unknown field type %d at byte %lld", *type,
                      (long long)(in->p - in->start - 1));
  int delta = b >> 4;
  if (delta != 0) {
    int v = *last + delta;
    if (v > INT16_MAX)
      return pt__errorf(err, PT_EFORMAT, "thrift: field id overflow at byte %lld",
                        (long long)(in->p - in->start - 1));
    *id = (int16_t)v;
  } else {
    int32_t v;
    PT_RETURN_NOT_OK(pt__thrift_i32(in, &v, err));
    if (v < INT16_MIN || v > INT16_MAX)
      return pt__errorf(err, PT_EFORMAT, "thrift: field id %d out of range at byte %lld", v,
                        (long long)(in->p - in->start));
    *id = (int16_t)v;
  }
  *last = *id;
  return PT_OK;
}

int pt__thrift_list(pt__thrift_in *in, int *elem_type, int64_t *n, pt_error *err) {
  if (in->p >= in->end) return truncated(in, "list header", err);
  uint8_t b = *in->p++;
  *elem_type = b & 0x0f;
  uint64_t size = b >> 4;
  if (size == 15) PT_RETURN_NOT_OK(pt__thrift_varint(in, &size, err));
  if (*elem_type == PT__TH_STOP || *elem_type > PT__TH_STRUCT)
    return pt__errorf(err, PT_EFORMAT, "thrift: unknown list element type %d at byte %lld",
                      *elem_type, (long long)(in->p - in->start));
  if (size > (uint64_t)(in->end - in->p))
    return pt__errorf(err, PT_EFORMAT,
                      "thrift: list of %llu elements at byte %lld but only %lld bytes left",
                      (unsigned long long)size, (long long)(in->p - in->start),
                      (long long)(in->end - in->p));
  *n = (int64_t)size;
  return PT_OK;
}

int pt__thrift_enter(pt__thrift_in *in, pt_error *err) {
  if (in->depth >= PT__THRIFT_MAX_DEPTH)
    return pt__errorf(err, PT_EFORMAT, "thrift: nesting deeper than %d at byte %lld",
                      PT__THRIFT_MAX_DEPTH, (long long)(in->p - in->start));
  in->depth++;
  return PT_OK;
}

int pt__thrift_list_bool(pt__thrift_in *in, bool *out, pt_error *err) {
  if (in->p >= in->end) return truncated(in, "boolean", err);
  *out = *in->p++ == 1;
  return PT_OK;
}

int pt__thrift_skip(pt__thrift_in *in, int type, pt_error *err) {
  uint64_t u;
  const uint8_t *d;
  int64_t n;
  switch (type) {
    case PT__TH_TRUE:
    case PT__TH_FALSE: return PT_OK; /* in the field header */
    case PT__TH_I8:
      if (in->p >= in->end) return truncated(in, "byte", err);
      in->p++;
      return PT_OK;
    case PT__TH_I16:
    case PT__TH_I32:
    case PT__TH_I64: return pt__thrift_varint(in, &u, err);
    case PT__TH_DOUBLE:
      if (in->end - in->p < 8) return truncated(in, "double", err);
      in->p += 8;
      return PT_OK;
    case PT__TH_BINARY: return pt__thrift_binary(in, &d, &n, err);
    case PT__TH_LIST:
    case PT__TH_SET: {
      int et;
      PT_RETURN_NOT_OK(pt__thrift_list(in, &et, &n, err));
      PT_RETURN_NOT_OK(pt__thrift_enter(in, err));
      for (int64_t i = 0; i < n; i++) {
        int rc = (et == PT__TH_TRUE || et == PT__TH_FALSE) ? pt__thrift_skip(in, PT__TH_I8, err)
                                                           : pt__thrift_skip(in, et, err);
        if (rc != PT_OK) return rc;
      }
      pt__thrift_leave(in);
      return PT_OK;
    }
    case PT__TH_MAP: {
      PT_RETURN_NOT_OK(pt__thrift_varint(in, &u, err));
      if (u == 0) return PT_OK;
      if (in->p >= in->end) return truncated(in, "map header", err);
      if (u > (uint64_t)(in->end - in->p))
        return pt__errorf(err, PT_EFORMAT, "thrift: map of %llu entries at byte %lld is too long",
                          (unsigned long long)u, (long long)(in->p - in->start));
      uint8_t kv = *in->p++;
      int kt = kv >> 4, vt = kv & 0x0f;
      if (kt == 0 || kt > PT__TH_STRUCT || vt == 0 || vt > PT__TH_STRUCT)
        return pt__errorf(err, PT_EFORMAT, "thrift: bad map types 0x%02x at byte %lld", kv,
                          (long long)(in->p - in->start - 1));
      PT_RETURN_NOT_OK(pt__thrift_enter(in, err));
      for (uint64_t i = 0; i < u; i++) {
        PT_RETURN_NOT_OK(pt__thrift_skip(in, kt <= PT__TH_FALSE ? PT__TH_I8 : kt, err));
        PT_RETURN_NOT_OK(pt__thrift_skip(in, vt <= PT__TH_FALSE ? PT__TH_I8 : vt, err));
      }
      pt__thrift_leave(in);
      return PT_OK;
    }
    case PT__TH_STRUCT: {
      PT_RETURN_NOT_OK(pt__thrift_enter(in, err));
      int16_t last = 0, id;
      for (;;) {
        int ft;
        PT_RETURN_NOT_OK(pt__thrift_field(in, &last, &id, &ft, err));
        if (ft == PT__TH_STOP) break;
        PT_RETURN_NOT_OK(pt__thrift_skip(in, ft, err));
      }
      pt__thrift_leave(in);
      return PT_OK;
    }
    default:
      return pt__errorf(err, PT_EFORMAT, "thrift: unknown type %d at byte %lld", type,
                        (long long)(in->p - in->start));
  }
}

/* ------------------------------------------------------------------------ */
/* Writing */

static void put(pt__thrift_out *o, const void *data, size_t len) {
  if (o->rc != PT_OK) return;
  o->rc = pt__buf_append(o->buf, data, len);
}

static void put_byte(pt__thrift_out *o, uint8_t b) {
  if (o->rc != PT_OK) return;
  o->rc = pt__buf_putc(o->buf, (char)b);
}

void pt__thrift_put_varint(pt__thrift_out *o, uint64_t v) {
  uint8_t tmp[10];
  int n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  put(o, tmp, (size_t)n);
}

void pt__thrift_put_i64(pt__thrift_out *o, int64_t v) {
  pt__thrift_put_varint(o, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void pt__thrift_put_field(pt__thrift_out *o, int16_t *last, int16_t id, int type) {
  int delta = id - *last;
  if (delta > 0 && delta <= 15) {
    put_byte(o, (uint8_t)(delta << 4 | type));
  } else {
    put_byte(o, (uint8_t)type);
    pt__thrift_put_i64(o, id);
  }
  *last = id;
}

void pt__thrift_put_stop(pt__thrift_out *o) { put_byte(o, 0); }

void pt__thrift_put_binary(pt__thrift_out *o, const void *data, int64_t len) {
  pt__thrift_put_varint(o, (uint64_t)len);
  if (len > 0) put(o, data, (size_t)len);
}

void pt__thrift_put_list(pt__thrift_out *o, int elem_type, int64_t n) {
  if (n < 15) {
    put_byte(o, (uint8_t)(n << 4 | elem_type));
  } else {
    put_byte(o, (uint8_t)(0xf0 | elem_type));
    pt__thrift_put_varint(o, (uint64_t)n);
  }
}

void pt__thrift_field_i64(pt__thrift_out *o, int16_t *last, int16_t id, int type, int64_t v) {
  pt__thrift_put_field(o, last, id, type);
  pt__thrift_put_i64(o, v);
}

void pt__thrift_field_binary(pt__thrift_out *o, int16_t *last, int16_t id, const void *data,
                             int64_t len) {
  pt__thrift_put_field(o, last, id, PT__TH_BINARY);
  pt__thrift_put_binary(o, data, len);
}

void pt__thrift_field_bool(pt__thrift_out *o, int16_t *last, int16_t id, bool v) {
  pt__thrift_put_field(o, last, id, v ? PT__TH_TRUE : PT__TH_FALSE);
}
