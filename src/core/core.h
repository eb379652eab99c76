/* core.h — what every module of protium uses: error filling, checked
 * allocation (with a fault-injection hook for tests), growable byte buffers,
 * and small helpers. Internal: not part of include/protium.h.
 */
#ifndef PT_CORE_H
#define PT_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protium.h"

#if defined(__GNUC__)
#define PT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PT_MUST_USE __attribute__((warn_unused_result))
#define PT_LIKELY(x) __builtin_expect(!!(x), 1)
#define PT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define PT_PRINTF(f, a)
#define PT_MUST_USE
#define PT_LIKELY(x) (x)
#define PT_UNLIKELY(x) (x)
#endif

/* Fills err (if not NULL) with code and a formatted message; returns code, so
 * that `return pt__errorf(err, PT_EINVAL, "...")` reads naturally. */
int pt__errorf(pt_error *err, int code, const char *fmt, ...) PT_PRINTF(3, 4);

/* Adds context in front of an existing message on the way up:
 * "ipc: record batch 3: " + "buffer 2 out of range". Returns code. */
int pt__error_prefix(pt_error *err, int code, const char *fmt, ...) PT_PRINTF(3, 4);

/* Evaluates expr (an int status); returns it from the enclosing function when
 * it is not PT_OK. */
#define PT_RETURN_NOT_OK(expr)                                                 \
  do {                                                                         \
    int pt_rc_ = (expr);                                                       \
    if (PT_UNLIKELY(pt_rc_ != PT_OK)) return pt_rc_;                           \
  } while (0)

/* Allocation. These are malloc/calloc/realloc/free, except that tests can
 * make the n-th allocation from now fail (pt__alloc_fail_after) to check
 * that every failure path frees what it took and reports PT_ENOMEM. */
void *pt__malloc(size_t size);
void *pt__calloc(size_t n, size_t size);
void *pt__realloc(void *p, size_t size);
void pt__free(void *p);
/* Aligned to 64 bytes (Arrow's recommended alignment); free with pt__free. */
void *pt__malloc_aligned(size_t size);
/* n >= 0: the n-th allocation from now (0 = the next) and every later one
 * fail until called again with n < 0. Counts across threads. */
void pt__alloc_fail_after(int64_t n);
/* Counts as one allocation of the above and says whether it must fail: for
 * memory taken otherwise (mmap), so that the same tests reach its failure
 * paths. */
int pt__alloc_should_fail(void);
/* Keeps freed buffer memory in the process for the next buffers, once per
 * process: glibc maps each buffer over its mmap threshold afresh and gives
 * back the top of the heap past its trim threshold, so every batch decoded
 * into new buffers faults in every page again (a third of the CPU time of
 * reading a list<struct> Parquet file went to the kernel). Up to 64 MiB
 * freed stays in the heap; buffers over 32 MiB are still mapped alone:
 * the state glibc's own dynamic thresholds reach after its first large
 * free, fixed. A user's GLIBC_TUNABLES for malloc win, as does
 * PROTIUM_KEEP_FREED_MEMORY=0. Called by executors, session open and the
 * in-process Parquet and IPC readers. */
void pt__keep_freed_memory(void);
/* CLOCK_MONOTONIC in milliseconds (src/core/clock.c). */
int64_t pt__mono_ms(void);
/* Makes the array *items (of elements of `size` bytes, *cap of them
 * allocated) hold at least need elements, growing it geometrically. PT_OK or
 * PT_ENOMEM (then *items and *cap are as they were). */
int pt__grow(void **items, int64_t *cap, int64_t need, size_t size);
/* Duplicates a NUL-terminated string with pt__malloc; NULL stays NULL. */
char *pt__strdup(const char *s);

/* Growable bytes (pt_buf of protium.h). All return PT_OK or PT_ENOMEM. */
int pt__buf_reserve(pt_buf *b, size_t extra);
int pt__buf_append(pt_buf *b, const void *data, size_t len);
int pt__buf_printf(pt_buf *b, const char *fmt, ...) PT_PRINTF(2, 3);
static inline int pt__buf_putc(pt_buf *b, char c) {
  if (b->len + 1 > b->cap && pt__buf_reserve(b, 1) != PT_OK) return PT_ENOMEM;
  b->data[b->len++] = c;
  return PT_OK;
}

/* Overflow-checked arithmetic on sizes: return 1 on overflow. */
static inline int pt__add_overflow(int64_t a, int64_t b, int64_t *out) {
  return __builtin_add_overflow(a, b, out);
}
static inline int pt__mul_overflow(int64_t a, int64_t b, int64_t *out) {
  return __builtin_mul_overflow(a, b, out);
}

/* Little-endian loads and stores (protium supports little-endian hosts only;
 * these compile to plain moves there and keep unaligned access defined). */
#include <string.h>
static inline uint16_t pt__load_u16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t pt__load_u32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t pt__load_u64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline int32_t pt__load_i32(const void *p) { int32_t v; memcpy(&v, p, 4); return v; }
static inline int64_t pt__load_i64(const void *p) { int64_t v; memcpy(&v, p, 8); return v; }
static inline void pt__store_u32(void *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void pt__store_i32(void *p, int32_t v) { memcpy(p, &v, 4); }
static inline void pt__store_i64(void *p, int64_t v) { memcpy(p, &v, 8); }

/* Whether data[0, len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool pt__utf8_valid(const uint8_t *data, size_t len);

/* Bits (validity bitmaps, bool values): LSB-first, as Arrow lays them out. */
static inline int pt__bit_get(const uint8_t *bits, int64_t i) {
  return (bits[i >> 3] >> (i & 7)) & 1;
}
static inline void pt__bit_set(uint8_t *bits, int64_t i, int v) {
  if (v) bits[i >> 3] |= (uint8_t)(1u << (i & 7));
  else bits[i >> 3] &= (uint8_t)~(1u << (i & 7));
}
/* Number of set bits in bits[offset, offset+length). */
int64_t pt__bits_count(const uint8_t *bits, int64_t offset, int64_t length);
/* Copies length bits from src at src_offset to dst at dst_offset. */
void pt__bits_copy(const uint8_t *src, int64_t src_offset, uint8_t *dst, int64_t dst_offset,
                   int64_t length);

/* The crash note, shared by both sides of an executor's directory: the
 * executor writes it there when a task's code ends the process (a fatal
 * signal on the task's thread, Python's os._exit in a task), and the driver
 * reads it when it loses that executor, to fail that task alone. Contents:
 * the task id in decimal, then a newline. */
#define PT__CRASH_NOTE "crashed-task"

/* Files (files.c). Removes path and everything below it; a missing path is
 * fine; PT_EIO if something is left. */
int pt__rm_rf(const char *path);
/* mkdir -p (mode 0755); the error names the directory that failed. */
int pt__mkdirs(const char *path, pt_error *err);
/* 1 when path is a directory on a tmpfs (memory) that this process may
 * write into. */
int pt__is_memory_dir(const char *path);
/* 1 when the file system of path has room to spare for result files kept
 * in memory: a quarter of its size and 256 MiB free at least. */
int pt__memory_dir_has_room(const char *path);
/* The directory <memory_dir>/<job> where memory_dir (NULL: none) has room,
 * else <disk_dir>/<job>, created; into *out (owned by the caller). */
int pt__results_job_dir(const char *memory_dir, const char *disk_dir, int64_t job, char **out,
                        pt_error *err);
/* Removes the session directories base/protium-<pid>-* whose process is
 * gone (a driver killed before it could remove its own). */
void pt__sweep_session_dirs(const char *base);

/* sanitize.c: executors under the sanitizers (no-ops in other builds). */
/* 1 in an AddressSanitizer build. */
int pt__sanitized(void);
/* Runs LeakSanitizer now (the executor ends with _exit, which skips it);
 * exits with a non-zero status if it finds a leak. */
void pt__sanitizer_leak_check(void);
/* "NAME=<its value>:log_path=<log_prefix>" for an executor's environment
 * (NAME: ASAN_OPTIONS, UBSAN_OPTIONS). Caller frees (pt__free); NULL
 * without memory. */
char *pt__sanitizer_env(const char *name, const char *log_prefix);
/* Prints every non-empty report file in dir to stderr; returns their
 * number. */
int pt__sanitizer_report(const char *dir);

#endif /* PT_CORE_H */
