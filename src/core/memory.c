/* memory.c — allocation with a fault-injection hook, growable byte buffers and
 * bitmap helpers. Every allocation in protium goes through pt__malloc & co so
 * that tests can make any one of them fail. */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* < 0: no injected failures; otherwise allocations left before failing. */
static atomic_int_fast64_t fail_countdown = -1;

void pt__alloc_fail_after(int64_t n) { atomic_store(&fail_countdown, n < 0 ? -1 : n); }

static int should_fail(void) {
  int_fast64_t c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
  if (PT_LIKELY(c < 0)) return 0;
  if (c == 0) return 1;
  return atomic_fetch_sub(&fail_countdown, 1) <= 0;
}

int pt__alloc_should_fail(void) { return should_fail(); }

static void keep_freed_memory_once(void) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
  const char *tun = getenv("GLIBC_TUNABLES");
  if (tun && strstr(tun, "glibc.malloc.")) return;
  const char *off = getenv("PROTIUM_KEEP_FREED_MEMORY");
  if (off && strcmp(off, "0") == 0) return;
  (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
  (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

void pt__keep_freed_memory(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  (void)pthread_once(&once, keep_freed_memory_once);
}

void *pt__malloc(size_t size) {
  if (should_fail()) return NULL;
  return malloc(size ? size : 1);
}

void *pt__calloc(size_t n, size_t size) {
  if (should_fail()) return NULL;
  return calloc(n ? n : 1, size ? size : 1);
}

void *pt__realloc(void *p, size_t size) {
  if (should_fail()) return NULL;
  return realloc(p, size ? size : 1);
}

void pt__free(void *p) { free(p); }

void *pt__malloc_aligned(size_t size) {
  if (should_fail()) return NULL;
  void *p = NULL;
  size_t rounded = (size + 63) & ~(size_t)63;
  if (rounded < size) return NULL;
  if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) return NULL;
  return p;
}

int pt__grow(void **items, int64_t *cap, int64_t need, size_t size) {
  if (need <= *cap) return PT_OK;
  int64_t ncap = *cap > 0 ? *cap : 8;
  while (ncap < need) {
    if (ncap > INT64_MAX / 2) return PT_ENOMEM;
    ncap *= 2;
  }
  if ((uint64_t)ncap > SIZE_MAX / size) return PT_ENOMEM;
  void *n = pt__realloc(*items, (size_t)ncap * size);
  if (n == NULL) return PT_ENOMEM;
  *items = n;
  *cap = ncap;
  return PT_OK;
}

char *pt__strdup(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *d = pt__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void pt_buf_free(pt_buf *b) {
  if (b == NULL) return;
  pt__free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int pt__buf_reserve(pt_buf *b, size_t extra) {
  if (b->len + extra <= b->cap) return PT_OK;
  size_t need = b->len + extra;
  if (need < b->len) return PT_ENOMEM;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) { cap = need; break; }
    cap *= 2;
  }
  char *p = pt__realloc(b->data, cap);
  if (p == NULL) return PT_ENOMEM;
  b->data = p;
  b->cap = cap;
  return PT_OK;
}

int pt__buf_append(pt_buf *b, const void *data, size_t len) {
  PT_RETURN_NOT_OK(pt__buf_reserve(b, len));
  if (len) memcpy(b->data + b->len, data, len);
  b->len += len;
  return PT_OK;
}

int pt__buf_printf(pt_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[128];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return PT_EINVAL;
  if ((size_t)n < sizeof small) return pt__buf_append(b, small, (size_t)n);
  PT_RETURN_NOT_OK(pt__buf_reserve(b, (size_t)n + 1));
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return PT_OK;
}

int64_t pt__bits_count(const uint8_t *bits, int64_t offset, int64_t length) {
  int64_t count = 0, i = offset, end = offset + length;
  while (i < end && (i & 7)) count += pt__bit_get(bits, i++);
  while (i + 64 <= end) {
    count += __builtin_popcountll(pt__load_u64(bits + (i >> 3)));
    i += 64;
  }
  while (i + 8 <= end) {
    count += __builtin_popcount(bits[i >> 3]);
    i += 8;
  }
  while (i < end) count += pt__bit_get(bits, i++);
  return count;
}

void pt__bits_copy(const uint8_t *src, int64_t src_offset, uint8_t *dst, int64_t dst_offset,
                   int64_t length) {
  if (length <= 0) return;
  if ((src_offset & 7) == 0 && (dst_offset & 7) == 0) {
    int64_t whole = length >> 3;
    memcpy(dst + (dst_offset >> 3), src + (src_offset >> 3), (size_t)whole);
    for (int64_t i = whole * 8; i < length; i++)
      pt__bit_set(dst, dst_offset + i, pt__bit_get(src, src_offset + i));
    return;
  }
  for (int64_t i = 0; i < length; i++)
    pt__bit_set(dst, dst_offset + i, pt__bit_get(src, src_offset + i));
}
