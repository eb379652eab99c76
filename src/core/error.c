/* error.c — filling pt_error, status names and the library version. */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

const char *pt_strerror(int code) {
  switch (code) {
    case PT_OK: return "ok";
    case PT_EINVAL: return "invalid argument";
    case PT_ENOMEM: return "out of memory";
    case PT_EIO: return "I/O error";
    case PT_EFORMAT: return "malformed input";
    case PT_ENOTSUP: return "not supported";
    case PT_ERANGE: return "out of range";
    case PT_ESTATE: return "wrong state";
    case PT_ETIMEDOUT: return "timed out";
    case PT_ECANCELED: return "canceled";
    case PT_EINTERNAL: return "internal error";
    default: return "unknown error";
  }
}

const char *pt_version(void) { return PT_VERSION_STRING; }

int pt__errorf(pt_error *err, int code, const char *fmt, ...) {
  if (err == NULL) return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  err->code = code;
  return code;
}

int pt__error_prefix(pt_error *err, int code, const char *fmt, ...) {
  if (err == NULL) return code;
  char prefix[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  if (n < 0) return code;
  if ((size_t)n >= sizeof prefix) n = sizeof prefix - 1;
  size_t old = strnlen(err->message, sizeof err->message - 1);
  size_t room = sizeof err->message - 1;
  size_t keep = old;
  if ((size_t)n + keep > room) keep = room > (size_t)n ? room - (size_t)n : 0;
  memmove(err->message + n, err->message, keep);
  memcpy(err->message, prefix, (size_t)n);
  err->message[(size_t)n + keep] = '\0';
  err->code = code;
  return code;
}
