/* ipc_write.c — writing Arrow IPC streams and files from ArrowArrays.
 *
 * A batch is first turned into a plan: its field nodes and a list of buffer
 * pieces that point straight into the caller's arrays wherever the bytes can
 * be written as they are; only slices force work (offsets rebased to start at
 * zero, bitmaps shifted to start at bit zero). The body is then written with
 * writev (or one copy each into a memory buffer) without staging copies;
 * compressed bodies are compressed a batch at a time on the worker pool
 * (pool.h) into a scratch area first.
 * Dictionaries are compared with what was last written for their id to
 * decide between writing nothing, a delta, or a replacement.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "arrow/ipc_int.h"
#include "arrow/pool.h"

/* 64 zero bytes: padding, and the single zero offset of empty arrays. */
static const uint8_t zeros[64] __attribute__((aligned(64)));

/* ------------------------------------------------------------------------ */
/* Plans: the field nodes and buffers of one record batch body */

typedef struct plan_buf {
  const uint8_t *p;
  int64_t n;    /* bytes */
  int64_t bits; /* bitmaps: bits that matter (for comparisons); else -1 */
} plan_buf;

typedef struct plan {
  int64_t *nodes; /* (length, null_count) pairs, the FieldNode layout */
  int64_t n_nodes, cap_nodes;
  plan_buf *bufs;
  int64_t n_bufs, cap_bufs;
  int64_t *variadic; /* per string/binary view node, its data buffers */
  int64_t n_variadic, cap_variadic;
  void **scratch; /* owned allocations the buffers may point into */
  int64_t n_scratch, cap_scratch;
} plan;

static void plan_reset(plan *p) {
  for (int64_t i = 0; i < p->n_scratch; i++) pt__free(p->scratch[i]);
  pt__free(p->scratch);
  pt__free(p->nodes);
  pt__free(p->bufs);
  pt__free(p->variadic);
  memset(p, 0, sizeof *p);
}

static int plan_node(plan *p, int64_t length, int64_t nulls) {
  if (pt__grow((void **)&p->nodes, &p->cap_nodes, 2 * (p->n_nodes + 1), sizeof(int64_t)))
    return PT_ENOMEM;
  p->nodes[2 * p->n_nodes] = length;
  p->nodes[2 * p->n_nodes + 1] = nulls;
  p->n_nodes++;
  return PT_OK;
}

static int plan_buffer(plan *p, const void *data, int64_t n, int64_t bits) {
  if (pt__grow((void **)&p->bufs, &p->cap_bufs, p->n_bufs + 1, sizeof(plan_buf)))
    return PT_ENOMEM;
  p->bufs[p->n_bufs].p = n ? data : zeros;
  p->bufs[p->n_bufs].n = n;
  p->bufs[p->n_bufs].bits = bits;
  p->n_bufs++;
  return PT_OK;
}

/* A new owned scratch area of n bytes (64-byte aligned). */
static void *plan_alloc(plan *p, int64_t n) {
  if (pt__grow((void **)&p->scratch, &p->cap_scratch, p->n_scratch + 1, sizeof(void *)))
    return NULL;
  void *m = pt__malloc_aligned((size_t)(n ? n : 1));
  if (m != NULL) p->scratch[p->n_scratch++] = m;
  return m;
}

/* Bits [bit, bit+len) of src as a buffer starting at bit 0: the source bytes
 * themselves when bit is a multiple of 8, else a shifted copy. */
static int plan_bitmap(plan *p, const uint8_t *src, int64_t bit, int64_t len) {
  int64_t nbytes = (len + 7) / 8;
  if (len == 0) return plan_buffer(p, NULL, 0, 0);
  if ((bit & 7) == 0) return plan_buffer(p, src + bit / 8, nbytes, len);
  uint8_t *dst = plan_alloc(p, nbytes);
  if (dst == NULL) return PT_ENOMEM;
  const uint8_t *s = src + bit / 8;
  int shift = (int)(bit & 7);
  /* Bytes of src we may read. */
  int64_t src_bytes = (bit + len + 7) / 8 - bit / 8;
  for (int64_t j = 0; j < nbytes; j++) {
    unsigned lo = s[j] >> shift;
    unsigned hi = j + 1 < src_bytes ? (unsigned)s[j + 1] << (8 - shift) : 0;
    dst[j] = (uint8_t)(lo | hi);
  }
  if (len & 7) dst[nbytes - 1] &= (uint8_t)((1u << (len & 7)) - 1);
  return plan_buffer(p, dst, nbytes, len);
}

static inline int64_t load_offset(const uint8_t *offsets, int wide, int64_t i) {
  return wide ? pt__load_i64(offsets + 8 * i) : pt__load_i32(offsets + 4 * i);
}

/* Offsets [phys, phys+len] rebased to start at 0; first and last get the
 * original first and last offsets. */
static int plan_offsets(plan *p, const uint8_t *offsets, int wide, int64_t phys, int64_t len,
                        int64_t *first, int64_t *last) {
  int64_t w = wide ? 8 : 4;
  if (len == 0) {
    *first = *last = 0;
    return plan_buffer(p, zeros, w, -1);
  }
  *first = load_offset(offsets, wide, phys);
  *last = load_offset(offsets, wide, phys + len);
  if (*first == 0) return plan_buffer(p, offsets + phys * w, (len + 1) * w, -1);
  uint8_t *dst = plan_alloc(p, (len + 1) * w);
  if (dst == NULL) return PT_ENOMEM;
  if (wide) {
    int64_t *d = (int64_t *)dst;
    for (int64_t i = 0; i <= len; i++) d[i] = load_offset(offsets, 1, phys + i) - *first;
  } else {
    int32_t *d = (int32_t *)dst;
    int32_t base = (int32_t)*first;
    for (int64_t i = 0; i <= len; i++) d[i] = pt__load_i32(offsets + 4 * (phys + i)) - base;
  }
  return plan_buffer(p, dst, (len + 1) * w, -1);
}

/* Rows [start, start+len) of the view (relative to it: its offset is added
 * here) as field nodes and buffers, children included, dictionaries not. */
static int plan_view(plan *p, const pt__view *v, int64_t start, int64_t len) {
  const pt_type *t = &v->type;
  int64_t phys = v->offset + start;
  int64_t nulls;
  if (t->id == PT_TYPE_RUN_END_ENCODED) {
    /* The runs the rows touch, their ends rebased to the rows (IPC has no
     * offset for the parent to carry). */
    PT_RETURN_NOT_OK(plan_node(p, len, 0));
    const pt__view *ends = &v->children[0];
    int64_t w = pt__type_bit_width(&ends->type) / 8, k0 = 0, n = 0;
    if (len > 0) {
      k0 = pt__view_ree_run(v, start);
      n = pt__view_ree_run(v, start + len - 1) - k0 + 1;
    }
    uint8_t *buf = plan_alloc(p, n * w);
    if (buf == NULL) return PT_ENOMEM;
    for (int64_t k = 0; k < n; k++) {
      int64_t e = pt__view_get_int(ends, k0 + k) - phys;
      pt__store_run_end(buf + k * w, w, e < len ? e : len);
    }
    PT_RETURN_NOT_OK(plan_node(p, n, 0));
    PT_RETURN_NOT_OK(plan_buffer(p, NULL, 0, 0));
    PT_RETURN_NOT_OK(plan_buffer(p, buf, n * w, -1));
    return plan_view(p, &v->children[1], k0, n);
  }
  if (pt__type_is_union(t->id)) {
    /* No validity buffer (V5). Sparse children are sliced with the rows;
     * dense ones are written whole, so that the offsets stay as they are. */
    PT_RETURN_NOT_OK(plan_node(p, len, 0));
    PT_RETURN_NOT_OK(plan_buffer(p, len ? v->values + phys : NULL, len, -1));
    if (t->id == PT_TYPE_SPARSE_UNION) {
      for (int64_t i = 0; i < v->n_children; i++)
        PT_RETURN_NOT_OK(plan_view(p, &v->children[i], phys, len));
      return PT_OK;
    }
    PT_RETURN_NOT_OK(plan_buffer(p, len ? v->data + phys * 4 : NULL, len * 4, -1));
    for (int64_t i = 0; i < v->n_children; i++)
      PT_RETURN_NOT_OK(plan_view(p, &v->children[i], 0, v->children[i].length));
    return PT_OK;
  }
  if (t->id == PT_TYPE_NA) {
    nulls = len;
  } else if (v->validity == NULL) {
    nulls = 0;
  } else if (start == 0 && len == v->length && v->null_count >= 0) {
    nulls = v->null_count;
  } else {
    nulls = len - pt__bits_count(v->validity, phys, len);
  }
  PT_RETURN_NOT_OK(plan_node(p, len, nulls));
  if (t->id == PT_TYPE_NA) return PT_OK;
  if (nulls == 0) {
    PT_RETURN_NOT_OK(plan_buffer(p, NULL, 0, 0));
  } else {
    PT_RETURN_NOT_OK(plan_bitmap(p, v->validity, phys, len));
  }
  int ok = pt__type_offsets_kind(t->id);
  int64_t bw = pt__type_bit_width(t);
  if (t->id == PT_TYPE_BOOL) return plan_bitmap(p, v->values, phys, len);
  if (pt__type_list_view_width(t->id)) {
    /* Offsets and sizes of the rows; the child whole, which they index. */
    int64_t w = pt__type_list_view_width(t->id);
    PT_RETURN_NOT_OK(plan_buffer(p, len ? v->values + phys * w : NULL, len * w, -1));
    PT_RETURN_NOT_OK(plan_buffer(p, len ? v->data + phys * w : NULL, len * w, -1));
    return plan_view(p, &v->children[0], 0, v->children[0].length);
  }
  if (pt__type_is_view(t->id)) {
    /* The views of the rows; the data buffers whole, for the views to keep
     * their buffer indices and offsets. */
    PT_RETURN_NOT_OK(plan_buffer(p, len ? v->values + phys * 16 : NULL, len * 16, -1));
    if (pt__grow((void **)&p->variadic, &p->cap_variadic, p->n_variadic + 1, sizeof(int64_t)))
      return PT_ENOMEM;
    p->variadic[p->n_variadic++] = v->n_variadic;
    for (int64_t k = 0; k < v->n_variadic; k++) {
      int64_t size = pt__load_i64(v->variadic_sizes + 8 * k);
      PT_RETURN_NOT_OK(plan_buffer(p, size ? v->variadic[k] : NULL, size, -1));
    }
    return PT_OK;
  }
  if (bw > 0) {
    if (len == 0) return plan_buffer(p, NULL, 0, -1);
    return plan_buffer(p, v->values + phys * (bw / 8), len * (bw / 8), -1);
  }
  if (ok != 0) {
    int64_t first, last;
    PT_RETURN_NOT_OK(plan_offsets(p, v->values, ok == 2, phys, len, &first, &last));
    if (pt__type_n_buffers(t->id) == 3)
      return plan_buffer(p, last > first ? v->data + first : NULL, last - first, -1);
    return plan_view(p, &v->children[0], first, last - first);
  }
  if (t->id == PT_TYPE_FIXED_SIZE_LIST)
    return plan_view(p, &v->children[0], phys * t->list_size, len * t->list_size);
  if (t->id == PT_TYPE_STRUCT) {
    for (int64_t i = 0; i < v->n_children; i++)
      PT_RETURN_NOT_OK(plan_view(p, &v->children[i], phys, len));
    return PT_OK;
  }
  return PT_EINTERNAL;
}

/* ------------------------------------------------------------------------ */
/* Output: a file descriptor or a growing memory buffer */

typedef struct sink {
  int fd;       /* -1: memory */
  bool own_fd;
  pt_buf mem;   /* fd < 0 and no caller buffer: ours until take_buffer */
  pt_buf *buf;  /* fd < 0: where bytes go (&mem, or the caller's buffer) */
  int64_t pos;  /* bytes written so far */
} sink;

typedef struct seg {
  const void *p;
  int64_t n;
} seg;

/* Transparent huge pages are 2 MiB on x86-64 and (with 4 KiB base pages)
 * arm64; other sizes only make the advice below cover less. */
#define HUGE_PAGE ((uintptr_t)2 << 20)
/* Below this the buffer lives in the malloc heap; above, in its own mapping. */
#define BIG_BUFFER ((size_t)1 << 20)

void pt__advise_huge(void *p) {
  /* The advice goes on the block's whole mapping, header page included:
   * advice on part of it would split the mapping in two, and realloc could
   * then no longer grow it with mremap but would copy. A block from malloc
   * whose usable bytes end exactly on a page boundary, starting in the
   * first page, is such a mapping (glibc, musl); anything else gets no
   * advice. */
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = (uintptr_t)p & ~(page - 1);
  uintptr_t hi = (uintptr_t)p + malloc_usable_size(p);
  if ((hi & (page - 1)) != 0 || (uintptr_t)p - lo > 64 || hi - lo < 2 * HUGE_PAGE) return;
  (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* only a hint */
}

/* Grows the memory sink to hold extra more bytes. The buffer is handed to
 * the caller's free() by take_buffer, so it must come from malloc; that
 * rules out our own mmap, but a buffer this big is a private mapping anyway
 * (glibc's realloc moves it with mremap, without copying). What costs is the
 * first touch of every fresh page: with 4 KiB pages a 64 MiB stream takes
 * 16384 page faults, more time than the copying itself. Asking for huge pages
 * (a hint; ignored where THP is off) makes that a few dozen, each clearing
 * 2 MiB at memset speed. Each mremap, though, lands the mapping at an
 * address not 2 MiB-aligned like the old one: the huge pages already there
 * are split, and the 2 MiB after the old end fault in 4 KiB at a time. So
 * big buffers grow fourfold (64 MiB of output: 2 moves, not 4; measured
 * 13 ms -> 9.3 ms), in whole huge pages; take_buffer gives back the unused
 * tail, which was never touched. Should the address space for that not be
 * had, the exact need is tried before giving up. */
static int sink_reserve(pt_buf *b, size_t extra) {
  if (b->len + extra <= b->cap) return PT_OK;
  size_t need = b->len + extra;
  if (need < b->len) return PT_ENOMEM;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < need) {
    int factor = cap >= BIG_BUFFER ? 4 : 2;
    if (cap > SIZE_MAX / (size_t)factor) {
      cap = need;
      break;
    }
    cap *= (size_t)factor;
  }
  for (int attempt = 0; attempt < 2; attempt++) {
    if (cap >= BIG_BUFFER && cap <= SIZE_MAX - HUGE_PAGE)
      cap = (cap + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    char *p = pt__realloc(b->data, cap);
    if (p != NULL) {
      b->data = p;
      b->cap = cap;
      if (cap >= BIG_BUFFER) pt__advise_huge(p);
      return PT_OK;
    }
    if (cap == need) break;
    cap = need;
  }
  return PT_ENOMEM;
}

/* The sink's bytes without the unused tail of a big buffer (when realloc
 * can shrink it; else as they are). */
static void sink_trim(pt_buf *b) {
  if (b->data == NULL || b->cap - b->len < HUGE_PAGE) return;
  char *p = pt__realloc(b->data, b->len ? b->len : 1);
  if (p == NULL) return;
  b->data = p;
  b->cap = b->len;
}

/* Copies of body buffers into the memory sink. glibc's memcpy moves blocks
 * of this size with `rep movsb`, which on some CPUs (the AMD EPYC of our
 * benchmark VM among them) runs at a quarter to a half of memory speed for
 * some distances between destination and source modulo 64 — and where a
 * buffer lands in the output has nothing to do with where the caller's
 * buffer lies. A plain loop of 64-byte moves, destination aligned, runs at
 * memory speed whatever the two addresses (measured on fresh huge pages,
 * 256 KiB pieces: memcpy 4.8 to 6.6 GB/s depending on the distance, the loop
 * 6.8 for all; a whole 64 MiB write of 16 columns: 11.6-12.1 ms with memcpy,
 * 11.3-11.5 with the loop). From about 1 MiB up memcpy was as fast or faster
 * there, so it keeps those. */
#define COPY_LOOP_MIN ((size_t)4 << 10)
#define COPY_LOOP_MAX ((size_t)1 << 20)

#define DEFINE_COPY_LOOP(name, attr)                                           \
  attr static void name(uint8_t *d, const uint8_t *s, size_t n) {              \
    size_t head = (size_t)(-(uintptr_t)d & 63);                                \
    memcpy(d, s, head);                                                        \
    d += head;                                                                 \
    s += head;                                                                 \
    n -= head;                                                                 \
    for (; n >= 256; d += 256, s += 256, n -= 256) {                           \
      memcpy(d, s, 64);                                                        \
      memcpy(d + 64, s + 64, 64);                                              \
      memcpy(d + 128, s + 128, 64);                                            \
      memcpy(d + 192, s + 192, 64);                                            \
    }                                                                          \
    memcpy(d, s, n);                                                           \
  }

DEFINE_COPY_LOOP(copy_loop_base, )
#if defined(__x86_64__) && defined(__GNUC__)
/* 32-byte moves where the CPU has them (the base build targets SSE2). */
DEFINE_COPY_LOOP(copy_loop_avx2, __attribute__((target("avx2"))))
#endif

static void copy_bytes(uint8_t *d, const uint8_t *s, size_t n) {
  if (n < COPY_LOOP_MIN || n >= COPY_LOOP_MAX) {
    memcpy(d, s, n);
    return;
  }
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2")) {
    copy_loop_avx2(d, s, n);
    return;
  }
#endif
  copy_loop_base(d, s, n);
}

/* Big writes into memory are copied on the pool's threads: both the copy
 * and the kernel's first touch of fresh output pages (clearing them) then
 * run on every core. Pieces of at most COPY_PIECE bytes (in copy_bytes'
 * loop range) keep the threads evenly loaded whatever the buffer sizes. */
#define PARALLEL_COPY_MIN ((int64_t)1 << 20)
#define COPY_PIECE ((int64_t)512 << 10)

typedef struct piece {
  uint8_t *d;
  const uint8_t *s;
  int64_t n;
} piece;

static void copy_piece(void *arg, int64_t i) {
  const piece *p = (const piece *)arg + i;
  copy_bytes(p->d, p->s, (size_t)p->n);
}

/* Copies segs (total bytes) to dst on the pool; false when it could not
 * (no workers, no memory for the list): the caller copies. */
static bool copy_parallel(uint8_t *dst, const seg *segs, int64_t n, int64_t total) {
  if (total < PARALLEL_COPY_MIN || pt__pool_threads() < 2) return false;
  int64_t n_pieces = total / COPY_PIECE + n;
  piece *pieces = pt__malloc((size_t)n_pieces * sizeof *pieces);
  if (pieces == NULL) return false;
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *src = segs[i].p;
    for (int64_t at = 0; at < segs[i].n; at += COPY_PIECE) {
      int64_t len = segs[i].n - at < COPY_PIECE ? segs[i].n - at : COPY_PIECE;
      pieces[k++] = (piece){dst, src + at, len};
      dst += len;
    }
  }
  pt__pool_run(k, copy_piece, pieces);
  pt__free(pieces);
  return true;
}

static int sink_write(sink *s, const seg *segs, int64_t n, pt_error *err) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++) total += segs[i].n;
  if (s->fd < 0) {
    pt_buf *b = s->buf;
    if (sink_reserve(b, (size_t)total) != PT_OK)
      return pt__errorf(err, PT_ENOMEM, "ipc: out of memory growing the output buffer to %lld bytes",
                        (long long)(b->len + total));
    if (copy_parallel((uint8_t *)b->data + b->len, segs, n, total)) {
      b->len += (size_t)total;
    } else {
      for (int64_t i = 0; i < n; i++) {
        if (segs[i].n) copy_bytes((uint8_t *)b->data + b->len, segs[i].p, (size_t)segs[i].n);
        b->len += (size_t)segs[i].n;
      }
    }
    s->pos += total;
    return PT_OK;
  }
  struct iovec iov[64];
  int64_t i = 0, done_in_seg = 0; /* next segment, bytes of it already written */
  while (i < n) {
    int k = 0;
    for (int64_t j = i; j < n && k < 64; j++) {
      int64_t skip = j == i ? done_in_seg : 0;
      if (segs[j].n - skip == 0) continue;
      iov[k].iov_base = (void *)((const uint8_t *)segs[j].p + skip);
      iov[k].iov_len = (size_t)(segs[j].n - skip);
      k++;
    }
    if (k == 0) break;
    ssize_t w = writev(s->fd, iov, k);
    if (w < 0) {
      if (errno == EINTR) continue;
      return pt__errorf(err, PT_EIO, "ipc: write failed: %s", strerror(errno));
    }
    s->pos += w;
    /* Advance past what was written. */
    int64_t left = w;
    while (i < n && left >= segs[i].n - done_in_seg) {
      left -= segs[i].n - done_in_seg;
      done_in_seg = 0;
      i++;
    }
    done_in_seg += left;
  }
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Writer state */

typedef struct wdict {
  int64_t id;
  const struct ArrowSchema *node; /* the dictionary-encoded node in w->schema */
  bool written;
  int64_t length;                 /* values in the dictionary last written */
  /* What was last written, for comparisons: nodes and buffer contents. */
  int64_t n_nodes;
  int64_t *nodes;
  int64_t n_bufs;
  int64_t *buf_len;
  int64_t *buf_bits;
  uint8_t *bytes;
} wdict;

typedef struct block {
  int64_t offset;
  int32_t meta_len;
  int64_t body_len;
} block;

struct pt_ipc_writer {
  pt_ipc_write_options opts;
  struct ArrowSchema schema; /* our copy */
  pt__ipc_dicts ids;
  wdict *dicts;              /* one per ids entry, same order */
  sink out;
  bool closed;
  bool failed;               /* an I/O error left the output incomplete */
  int64_t n_batches;
  block *dict_blocks, *batch_blocks; /* file format */
  uint8_t *zbuf;             /* compression scratch (owned), zcap bytes */
  int64_t zcap;
  int64_t n_dict_blocks, cap_dict_blocks, n_batch_blocks, cap_batch_blocks;
};

void pt_ipc_write_options_init(pt_ipc_write_options *opts) {
  memset(opts, 0, sizeof *opts);
  opts->format = PT_IPC_STREAM;
  opts->compression = PT_COMPRESSION_NONE;
  opts->emit_dictionary_deltas = 1;
}

static void wdict_clear(wdict *d) {
  pt__free(d->nodes);
  pt__free(d->buf_len);
  pt__free(d->buf_bits);
  pt__free(d->bytes);
  d->nodes = NULL;
  d->buf_len = d->buf_bits = NULL;
  d->bytes = NULL;
  d->n_nodes = d->n_bufs = 0;
}

/* ------------------------------------------------------------------------ */
/* Messages */

/* Writes one message: prefix, the flatbuffer of b finished at root, padding,
 * then the body segments. *meta_len gets 8 + padded metadata length. */
static int write_message(pt_ipc_writer *w, pt__fb_builder *b, pt__fb_ref root,
                         const seg *body, int64_t n_body, int32_t *meta_len, pt_error *err) {
  const uint8_t *fb;
  uint32_t fb_size;
  int rc = pt__fb_builder_finish(b, root, &fb, &fb_size);
  if (rc != PT_OK) return pt__errorf(err, rc, "ipc: cannot build message metadata (%s)", pt_strerror(rc));
  uint32_t padded = (fb_size + 7) & ~7u;
  uint8_t prefix[8];
  pt__store_u32(prefix, PT_IPC_CONTINUATION);
  pt__store_i32(prefix + 4, (int32_t)padded);
  seg small[3] = {{prefix, 8}, {fb, fb_size}, {zeros, padded - fb_size}};
  int64_t n = 3 + n_body;
  seg *segs = small;
  if (n_body > 0) {
    segs = pt__malloc((size_t)n * sizeof *segs);
    if (segs == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
    memcpy(segs, small, sizeof small);
    memcpy(segs + 3, body, (size_t)n_body * sizeof *segs);
  }
  rc = sink_write(&w->out, segs, n, err);
  if (segs != small) pt__free(segs);
  if (rc != PT_OK) w->failed = true;
  *meta_len = (int32_t)(8 + padded);
  return rc;
}

static pt__fb_ref finish_message_table(pt__fb_builder *b, uint8_t header_type, pt__fb_ref header,
                                       int64_t body_len) {
  pt__fb_table_start(b);
  pt__fb_add_i16_always(b, MSG_VERSION, PT_IPC_V5);
  pt__fb_add_u8(b, MSG_HEADER_TYPE, header_type, 0);
  pt__fb_add_ref(b, MSG_HEADER, header);
  pt__fb_add_i64(b, MSG_BODY_LENGTH, body_len, 0);
  return pt__fb_table_end(b);
}

static int add_block(block **items, int64_t *n, int64_t *cap, int64_t offset, int32_t meta_len,
                     int64_t body_len, pt_error *err) {
  if (pt__grow((void **)items, cap, *n + 1, sizeof(block)))
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  (*items)[*n].offset = offset;
  (*items)[*n].meta_len = meta_len;
  (*items)[*n].body_len = body_len;
  (*n)++;
  return PT_OK;
}

/* Compression of one batch's buffers: one pool item per buffer, or per part
 * of a buffer too big for one thread (see split_parts). */
typedef struct ztask {
  const uint8_t *src;
  int64_t n;      /* bytes of src */
  int64_t total;  /* bytes of the whole buffer (n unless split) */
  uint8_t *dst;   /* 8 bytes of room (a buffer's length prefix, in its first
                     task), then room for the output */
  int64_t bound;  /* room after the 8 bytes */
  int64_t clen;   /* output bytes written */
  bool split, first, last; /* a part (pt__compress_part), which one */
  int rc;
} ztask;

typedef struct zbatch {
  pt_compression codec;
  int level;
  ztask *tasks;
} zbatch;

static void compress_one(void *arg, int64_t i) {
  zbatch *z = arg;
  ztask *t = &z->tasks[i];
  t->rc = t->split ? pt__compress_part(z->codec, z->level, t->src, t->n, t->total, t->first,
                                       t->last, t->dst + 8, t->bound, &t->clen, NULL)
                   : pt__compress(z->codec, z->level, t->src, t->n, t->dst + 8, t->bound,
                                  &t->clen, NULL);
}

/* Parts buffer i of p is compressed in: 1, unless it is bigger than a part
 * and than its thread's fair share of the batch, when it alone would keep
 * one thread busy after the others are done (one big column; pyarrow's
 * writer has the same limit). Small buffers stay whole: parts cost a
 * little ratio (each restarts the codec's history) for no gain there. */
static int64_t split_parts(const plan *p, int64_t i, int64_t batch_bytes, int threads) {
  int64_t n = p->bufs[i].n;
  if (threads < 2 || n <= PT__COMPRESS_PART || n <= batch_bytes / threads) return 1;
  return (n + PT__COMPRESS_PART - 1) / PT__COMPRESS_PART;
}

/* Bytes of part k of a buffer of n bytes in parts parts, and its room. */
static int64_t part_len(int64_t n, int64_t parts, int64_t k) {
  return parts == 1 ? n : k + 1 < parts ? PT__COMPRESS_PART : n - k * PT__COMPRESS_PART;
}

static int64_t part_bound(pt_compression codec, int64_t parts, int64_t len) {
  return parts == 1 ? pt__compress_bound(codec, len) : pt__compress_part_bound(codec, len);
}

/* Compression tasks of a batch: how many, and the room they need. */
typedef struct zlayout {
  int64_t n_tasks;
  int64_t scratch;     /* bytes, or -1 on overflow */
  int64_t batch_bytes; /* of all the plan's buffers */
} zlayout;

static zlayout compress_layout(pt_compression codec, const plan *p, int threads) {
  zlayout l = {0, 0, 0};
  for (int64_t i = 0; i < p->n_bufs; i++) l.batch_bytes += p->bufs[i].n;
  for (int64_t i = 0; i < p->n_bufs && l.scratch >= 0; i++) {
    int64_t n = p->bufs[i].n;
    if (n == 0) continue;
    int64_t parts = split_parts(p, i, l.batch_bytes, threads);
    for (int64_t k = 0; k < parts; k++) {
      int64_t room = (8 + part_bound(codec, parts, part_len(n, parts, k)) + 63) & ~(int64_t)63;
      if (room < 0 || pt__add_overflow(l.scratch, room, &l.scratch)) l.scratch = -1;
      l.n_tasks++;
    }
  }
  return l;
}

/* Compresses the nonempty buffers of p into the writer's scratch area, all
 * at once on the pool's threads (the caller works too). On PT_OK tasks
 * (room for compress_layout's n_tasks) holds the tasks in buffer order, and
 * first[i] the index of buffer i's first task (-1: empty buffer); its
 * tasks are the ones up to the next buffer's. */
static int compress_plan(pt_ipc_writer *w, const plan *p, ztask *tasks, int64_t *first,
                         zlayout l, int threads, pt_error *err) {
  pt_compression codec = w->opts.compression;
  if (l.scratch < 0) return pt__errorf(err, PT_ENOMEM, "ipc: a batch too large to compress");
  if (l.scratch > w->zcap) {
    /* Kept between batches: its pages are faulted in once per writer, not
     * once per batch. Its contents need not survive. */
    pt__free(w->zbuf);
    w->zcap = 0;
    w->zbuf = pt__malloc_aligned((size_t)l.scratch);
    if (w->zbuf == NULL)
      return pt__errorf(err, PT_ENOMEM, "out of memory compressing a batch of %lld bytes",
                        (long long)l.scratch);
    w->zcap = l.scratch;
    pt__advise_huge(w->zbuf);
  }
  int64_t at = 0, n_tasks = 0;
  for (int64_t i = 0; i < p->n_bufs; i++) {
    int64_t n = p->bufs[i].n;
    first[i] = n == 0 ? -1 : n_tasks;
    if (n == 0) continue;
    int64_t parts = split_parts(p, i, l.batch_bytes, threads);
    for (int64_t k = 0; k < parts; k++) {
      ztask *t = &tasks[n_tasks++];
      memset(t, 0, sizeof *t);
      t->src = p->bufs[i].p + k * PT__COMPRESS_PART;
      t->n = part_len(n, parts, k);
      t->total = n;
      t->split = parts > 1;
      t->first = k == 0;
      t->last = k + 1 == parts;
      t->dst = w->zbuf + at;
      t->bound = part_bound(codec, parts, t->n);
      at += (8 + t->bound + 63) & ~(int64_t)63;
    }
  }
  zbatch z = {codec, w->opts.compression_level, tasks};
  pt__pool_run(n_tasks, compress_one, &z);
  for (int64_t k = 0; k < n_tasks; k++) {
    ztask *t = &tasks[k];
    if (t->rc == PT_OK) continue;
    /* Again here, for the message (or done, if what failed was passing). */
    int rc = t->split ? pt__compress_part(codec, z.level, t->src, t->n, t->total, t->first,
                                          t->last, t->dst + 8, t->bound, &t->clen, err)
                      : pt__compress(codec, z.level, t->src, t->n, t->dst + 8, t->bound,
                                     &t->clen, err);
    if (rc != PT_OK) return rc;
  }
  return PT_OK;
}

/* Writes a RecordBatch (dict_id < 0) or DictionaryBatch message for plan. */
static int write_plan(pt_ipc_writer *w, plan *p, int64_t length, int64_t dict_id, bool delta,
                      pt_error *err) {
  int rc = PT_OK;
  pt__fb_builder b;
  pt__fb_builder_init(&b);
  pt_compression codec = w->opts.compression;
  int threads = codec != PT_COMPRESSION_NONE ? pt__pool_threads() : 1;
  zlayout zl = codec != PT_COMPRESSION_NONE ? compress_layout(codec, p, threads) : (zlayout){0, 0, 0};
  int64_t *bufmeta = pt__malloc((size_t)(2 * p->n_bufs + 1) * sizeof(int64_t));
  /* Per buffer: a length prefix, its frames (or bytes as they are), padding. */
  seg *segs = pt__malloc((size_t)(3 * p->n_bufs + zl.n_tasks + 1) * sizeof(seg));
  ztask *tasks = NULL;
  int64_t *first = NULL;
  int64_t n_segs = 0, body = 0;
  if (bufmeta == NULL || segs == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    goto cleanup;
  }
  if (codec != PT_COMPRESSION_NONE) {
    tasks = pt__malloc((size_t)(zl.n_tasks + 1) * sizeof *tasks);
    first = pt__malloc((size_t)(p->n_bufs + 1) * sizeof *first);
    if (tasks == NULL || first == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      goto cleanup;
    }
    if ((rc = compress_plan(w, p, tasks, first, zl, threads, err)) != PT_OK) goto cleanup;
  }
  for (int64_t i = 0; i < p->n_bufs; i++) {
    const plan_buf *pb = &p->bufs[i];
    int64_t len = pb->n;
    bufmeta[2 * i] = body;
    if (len == 0) {
      bufmeta[2 * i + 1] = 0;
      continue;
    }
    if (codec != PT_COMPRESSION_NONE) {
      const ztask *t = &tasks[first[i]];
      int64_t n_parts = 1, clen = t[0].clen;
      while (!t[n_parts - 1].last) clen += t[n_parts++].clen;
      uint8_t *dst = t[0].dst;
      if (clen < len) {
        pt__store_i64(dst, len);
        segs[n_segs++] = (seg){dst, 8 + t[0].clen};
        for (int64_t k = 1; k < n_parts; k++) segs[n_segs++] = (seg){t[k].dst + 8, t[k].clen};
        len = 8 + clen;
      } else {
        /* Compression does not pay: store as is, marked by length -1. */
        pt__store_i64(dst, -1);
        segs[n_segs++] = (seg){dst, 8};
        segs[n_segs++] = (seg){pb->p, len};
        len += 8;
      }
    } else {
      segs[n_segs++] = (seg){pb->p, len};
    }
    bufmeta[2 * i + 1] = len;
    int64_t pad = (-len) & 7;
    if (pad) segs[n_segs++] = (seg){zeros, pad};
    body += len + pad;
  }

  pt__fb_ref nodes = pt__fb_create_vector(&b, p->nodes, (uint32_t)p->n_nodes, PT_IPC_NODE_SIZE, 8);
  pt__fb_ref bufs = pt__fb_create_vector(&b, bufmeta, (uint32_t)p->n_bufs, PT_IPC_BUFFER_SIZE, 8);
  pt__fb_ref variadic = 0;
  if (p->n_variadic > 0)
    variadic = pt__fb_create_vector(&b, p->variadic, (uint32_t)p->n_variadic, 8, 8);
  pt__fb_ref comp = 0;
  if (codec != PT_COMPRESSION_NONE) {
    pt__fb_table_start(&b);
    pt__fb_add_i8(&b, COMP_CODEC, codec == PT_COMPRESSION_ZSTD ? 1 : 0, -1);
    pt__fb_add_i8(&b, COMP_METHOD, 0, -1);
    comp = pt__fb_table_end(&b);
  }
  pt__fb_table_start(&b);
  pt__fb_add_i64(&b, RB_LENGTH, length, 0);
  pt__fb_add_ref(&b, RB_NODES, nodes);
  pt__fb_add_ref(&b, RB_BUFFERS, bufs);
  pt__fb_add_ref(&b, RB_COMPRESSION, comp);
  pt__fb_add_ref(&b, RB_VARIADIC, variadic);
  pt__fb_ref rb = pt__fb_table_end(&b);
  pt__fb_ref header = rb;
  uint8_t type = PT_IPC_HDR_RECORD_BATCH;
  if (dict_id >= 0) {
    pt__fb_table_start(&b);
    pt__fb_add_i64(&b, DB_ID, dict_id, -1);
    pt__fb_add_ref(&b, DB_DATA, rb);
    pt__fb_add_bool(&b, DB_IS_DELTA, delta, false);
    header = pt__fb_table_end(&b);
    type = PT_IPC_HDR_DICTIONARY_BATCH;
  }
  pt__fb_ref msg = finish_message_table(&b, type, header, body);
  int64_t at = w->out.pos;
  int32_t meta_len;
  if ((rc = write_message(w, &b, msg, segs, n_segs, &meta_len, err)) != PT_OK) goto cleanup;
  if (w->opts.format == PT_IPC_FILE) {
    if (dict_id >= 0)
      rc = add_block(&w->dict_blocks, &w->n_dict_blocks, &w->cap_dict_blocks, at, meta_len, body, err);
    else
      rc = add_block(&w->batch_blocks, &w->n_batch_blocks, &w->cap_batch_blocks, at, meta_len, body,
                     err);
  }
cleanup:
  pt__fb_builder_reset(&b);
  pt__free(bufmeta);
  pt__free(segs);
  pt__free(tasks);
  pt__free(first);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Dictionaries */

static bool bitmaps_equal(const uint8_t *a, const uint8_t *b, int64_t bits) {
  int64_t whole = bits / 8;
  if (memcmp(a, b, (size_t)whole) != 0) return false;
  if (bits & 7) {
    uint8_t mask = (uint8_t)((1u << (bits & 7)) - 1);
    return ((a[whole] ^ b[whole]) & mask) == 0;
  }
  return true;
}

/* Whether plan p encodes exactly the dictionary last written for d. */
static bool plan_equals(const plan *p, const wdict *d) {
  if (p->n_nodes != d->n_nodes || p->n_bufs != d->n_bufs) return false;
  if (memcmp(p->nodes, d->nodes, (size_t)(2 * p->n_nodes) * sizeof(int64_t)) != 0) return false;
  const uint8_t *at = d->bytes;
  for (int64_t i = 0; i < p->n_bufs; i++) {
    const plan_buf *pb = &p->bufs[i];
    if (pb->n != d->buf_len[i] || pb->bits != d->buf_bits[i]) return false;
    if (pb->bits >= 0 ? !bitmaps_equal(pb->p, at, pb->bits) : memcmp(pb->p, at, (size_t)pb->n) != 0)
      return false;
    at += pb->n;
  }
  return true;
}

static int wdict_store(wdict *d, const plan *p, int64_t length, pt_error *err) {
  wdict_clear(d);
  int64_t total = 0;
  for (int64_t i = 0; i < p->n_bufs; i++) total += p->bufs[i].n;
  d->nodes = pt__malloc((size_t)(2 * p->n_nodes + 1) * sizeof(int64_t));
  d->buf_len = pt__malloc((size_t)(p->n_bufs + 1) * sizeof(int64_t));
  d->buf_bits = pt__malloc((size_t)(p->n_bufs + 1) * sizeof(int64_t));
  d->bytes = pt__malloc((size_t)(total ? total : 1));
  if (!d->nodes || !d->buf_len || !d->buf_bits || !d->bytes) {
    wdict_clear(d);
    d->written = false; /* forces a full dictionary next time */
    return pt__errorf(err, PT_ENOMEM, "out of memory keeping a dictionary of %lld bytes",
                      (long long)total);
  }
  memcpy(d->nodes, p->nodes, (size_t)(2 * p->n_nodes) * sizeof(int64_t));
  d->n_nodes = p->n_nodes;
  uint8_t *at = d->bytes;
  for (int64_t i = 0; i < p->n_bufs; i++) {
    d->buf_len[i] = p->bufs[i].n;
    d->buf_bits[i] = p->bufs[i].bits;
    if (p->bufs[i].n) memcpy(at, p->bufs[i].p, (size_t)p->bufs[i].n);
    at += p->bufs[i].n;
  }
  d->n_bufs = p->n_bufs;
  d->length = length;
  d->written = true;
  return PT_OK;
}

static const char *node_name(const struct ArrowSchema *s) {
  return s->name && s->name[0] ? s->name : "(unnamed)";
}

/* Writes what the reader needs to know the dictionary of v (a dictionary-
 * encoded node): nothing, a delta or the whole dictionary. force: the values
 * refer to an inner dictionary that was just replaced. *replaced: a whole
 * dictionary was written over an earlier one. */
static int write_dictionary(pt_ipc_writer *w, const pt__view *v, bool force, bool *replaced,
                            pt_error *err) {
  int64_t at = pt__ipc_dicts_find_node(&w->ids, v->schema);
  if (at < 0) return pt__errorf(err, PT_EINTERNAL, "ipc: dictionary node without an id");
  wdict *d = &w->dicts[at];
  const pt__view *dv = v->dictionary;
  plan full = {0}, part = {0};
  int rc = PT_OK;
  if ((rc = plan_view(&full, dv, 0, dv->length)) != PT_OK) goto oom;
  if (d->written && !force) {
    if (plan_equals(&full, d)) goto cleanup;
    if (w->opts.emit_dictionary_deltas && dv->length > d->length) {
      if ((rc = plan_view(&part, dv, 0, d->length)) != PT_OK) goto oom;
      if (plan_equals(&part, d)) {
        plan_reset(&part);
        if ((rc = plan_view(&part, dv, d->length, dv->length - d->length)) != PT_OK) goto oom;
        if ((rc = write_plan(w, &part, dv->length - d->length, d->id, true, err)) != PT_OK)
          goto cleanup;
        rc = wdict_store(d, &full, dv->length, err);
        goto cleanup;
      }
    }
  }
  if (d->written && w->opts.format == PT_IPC_FILE) {
    rc = pt__errorf(err, PT_EINVAL,
                    "the dictionary changed since the previous batch, and the IPC file "
                    "format cannot replace dictionaries; use the stream format, or keep "
                    "dictionaries identical or only growing (with emit_dictionary_deltas)");
    goto cleanup;
  }
  if ((rc = write_plan(w, &full, dv->length, d->id, false, err)) != PT_OK) goto cleanup;
  if (d->written) *replaced = true;
  rc = wdict_store(d, &full, dv->length, err);
  goto cleanup;
oom:
  rc = pt__errorf(err, rc, "out of memory planning a dictionary");
cleanup:
  plan_reset(&full);
  plan_reset(&part);
  return rc;
}

/* Writes the dictionaries under v, those inside dictionary values first.
 * *replaced: one of them was replaced (outer dictionaries must follow). */
static int write_dictionaries(pt_ipc_writer *w, const pt__view *v, int depth, bool *replaced,
                              pt_error *err) {
  for (int64_t i = 0; i < v->n_children; i++) {
    int rc = write_dictionaries(w, &v->children[i], depth + 1, replaced, err);
    if (rc != PT_OK)
      return pt__error_prefix(err, rc, "%s '%s': ", depth == 0 ? "column" : "field",
                              node_name(v->children[i].schema));
  }
  if (v->dictionary != NULL) {
    bool inner = false;
    int rc = write_dictionaries(w, v->dictionary, depth + 1, &inner, err);
    if (rc != PT_OK) return pt__error_prefix(err, rc, "dictionary: ");
    PT_RETURN_NOT_OK(write_dictionary(w, v, inner, replaced, err));
    if (inner) *replaced = true;
  }
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Public API */

static int write_schema_message(pt_ipc_writer *w, pt_error *err) {
  pt__fb_builder b;
  pt__fb_builder_init(&b);
  pt__fb_ref schema;
  int rc = pt__ipc_schema_encode(&b, &w->schema, &w->ids, &schema, err);
  if (rc == PT_OK) {
    pt__fb_ref msg = finish_message_table(&b, PT_IPC_HDR_SCHEMA, schema, 0);
    int32_t meta_len;
    rc = write_message(w, &b, msg, NULL, 0, &meta_len, err);
  }
  pt__fb_builder_reset(&b);
  return rc;
}

static int writer_open(int fd, bool own_fd, pt_buf *buf, const struct ArrowSchema *schema,
                       const pt_ipc_write_options *opts, pt_ipc_writer **out, pt_error *err) {
  *out = NULL;
  int rc;
  pt_type t;
  if (schema == NULL) return pt__errorf(err, PT_EINVAL, "ipc: schema is NULL");
  if ((rc = pt_type_parse(schema, &t, err)) != PT_OK)
    return pt__error_prefix(err, rc, "ipc: schema: ");
  if (t.id != PT_TYPE_STRUCT || t.dictionary)
    return pt__errorf(err, PT_EINVAL,
                      "ipc: the schema must be a struct (\"+s\") whose children are the "
                      "columns, not '%s'", schema->format);
  pt_ipc_write_options defaults;
  pt_ipc_write_options_init(&defaults);
  if (opts == NULL) opts = &defaults;
  if (opts->format != PT_IPC_STREAM && opts->format != PT_IPC_FILE)
    return pt__errorf(err, PT_EINVAL, "ipc: unknown format %d", (int)opts->format);
  if (opts->compression != PT_COMPRESSION_NONE && opts->compression != PT_COMPRESSION_LZ4_FRAME &&
      opts->compression != PT_COMPRESSION_ZSTD)
    return pt__errorf(err, PT_EINVAL, "ipc: unknown compression %d", (int)opts->compression);

  pt_ipc_writer *w = pt__calloc(1, sizeof *w);
  if (w == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  w->opts = *opts;
  w->out.fd = fd;
  w->out.own_fd = own_fd;
  w->out.buf = buf != NULL ? buf : &w->out.mem;
  if ((rc = pt_schema_copy(schema, &w->schema, err)) != PT_OK) goto fail;
  if ((rc = pt__ipc_dicts_assign(&w->schema, &w->ids, err)) != PT_OK) goto fail;
  if (w->ids.n > 0) {
    w->dicts = pt__calloc((size_t)w->ids.n, sizeof *w->dicts);
    if (w->dicts == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      goto fail;
    }
    for (int64_t i = 0; i < w->ids.n; i++) {
      w->dicts[i].id = w->ids.items[i].id;
      w->dicts[i].node = w->ids.items[i].node;
    }
  }
  if (opts->format == PT_IPC_FILE) {
    static const uint8_t magic[8] = {'A', 'R', 'R', 'O', 'W', '1', 0, 0};
    seg s = {magic, 8};
    if ((rc = sink_write(&w->out, &s, 1, err)) != PT_OK) goto fail;
  }
  if ((rc = write_schema_message(w, err)) != PT_OK) goto fail;
  *out = w;
  return PT_OK;
fail:
  w->out.own_fd = false; /* the caller's open failed: the fd is closed below */
  pt_ipc_writer_free(w);
  return rc;
}

int pt_ipc_writer_open_fd(int fd, const struct ArrowSchema *schema,
                          const pt_ipc_write_options *opts, pt_ipc_writer **out,
                          pt_error *err) {
  if (fd < 0) return pt__errorf(err, PT_EINVAL, "ipc: invalid file descriptor %d", fd);
  return writer_open(fd, false, NULL, schema, opts, out, err);
}

int pt_ipc_writer_open_path(const char *path, const struct ArrowSchema *schema,
                            const pt_ipc_write_options *opts, pt_ipc_writer **out,
                            pt_error *err) {
  *out = NULL;
  if (path == NULL) return pt__errorf(err, PT_EINVAL, "ipc: path is NULL");
  if (strcmp(path, "-") == 0)
    return writer_open(STDOUT_FILENO, false, NULL, schema, opts, out, err);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return pt__errorf(err, PT_EIO, "ipc: cannot open '%s' for writing: %s", path, strerror(errno));
  int rc = writer_open(fd, true, NULL, schema, opts, out, err);
  if (rc != PT_OK) close(fd);
  return rc;
}

int pt_ipc_writer_open_buffer(const struct ArrowSchema *schema,
                              const pt_ipc_write_options *opts, pt_ipc_writer **out,
                              pt_error *err) {
  return writer_open(-1, false, NULL, schema, opts, out, err);
}

int pt_ipc_writer_open_buf(pt_buf *buf, const struct ArrowSchema *schema,
                           const pt_ipc_write_options *opts, pt_ipc_writer **out,
                           pt_error *err) {
  if (out != NULL) *out = NULL;
  if (buf == NULL || out == NULL) return pt__errorf(err, PT_EINVAL, "ipc: buf or out is NULL");
  if (buf->len > buf->cap || (buf->data == NULL && buf->cap != 0))
    return pt__errorf(err, PT_EINVAL,
                      "ipc: the pt_buf is not valid (len %zu, cap %zu%s); start from one "
                      "zeroed or made by protium",
                      buf->len, buf->cap, buf->data == NULL ? ", no data" : "");
  return writer_open(-1, false, buf, schema, opts, out, err);
}

int pt_ipc_writer_write(pt_ipc_writer *w, const struct ArrowArray *batch, pt_error *err) {
  if (w == NULL || batch == NULL) return pt__errorf(err, PT_EINVAL, "ipc: writer or batch is NULL");
  if (w->closed) return pt__errorf(err, PT_ESTATE, "ipc: the writer is closed");
  if (w->failed)
    return pt__errorf(err, PT_ESTATE, "ipc: an earlier write failed; the output is incomplete");
  pt__view v;
  int rc = pt__view_init(&v, &w->schema, batch, err);
  if (rc != PT_OK)
    return pt__error_prefix(err, rc, "ipc: record batch %lld does not match the schema: ",
                            (long long)w->n_batches);
  plan p = {0};
  bool replaced = false;
  if (v.validity != NULL && v.null_count != 0 &&
      pt__bits_count(v.validity, v.offset, v.length) != v.length) {
    rc = pt__errorf(err, PT_EINVAL,
                    "ipc: record batch %lld has null rows; a record batch cannot have nulls at "
                    "the top level", (long long)w->n_batches);
    goto cleanup;
  }
  if (w->ids.n > 0 && (rc = write_dictionaries(w, &v, 0, &replaced, err)) != PT_OK) {
    pt__error_prefix(err, rc, "ipc: record batch %lld: ", (long long)w->n_batches);
    goto cleanup;
  }
  for (int64_t i = 0; i < v.n_children && rc == PT_OK; i++)
    rc = plan_view(&p, &v.children[i], v.offset, v.length);
  if (rc != PT_OK) {
    rc = pt__errorf(err, rc, "ipc: record batch %lld: out of memory", (long long)w->n_batches);
    goto cleanup;
  }
  rc = write_plan(w, &p, v.length, -1, false, err);
  if (rc != PT_OK) pt__error_prefix(err, rc, "ipc: record batch %lld: ", (long long)w->n_batches);
  else w->n_batches++;
cleanup:
  plan_reset(&p);
  pt__view_reset(&v);
  return rc;
}

int pt_ipc_writer_write_stream(pt_ipc_writer *w, struct ArrowArrayStream *stream,
                               pt_error *err) {
  if (w == NULL || stream == NULL || stream->release == NULL)
    return pt__errorf(err, PT_EINVAL, "ipc: writer or stream is NULL or released");
  struct ArrowSchema s;
  int e = stream->get_schema(stream, &s);
  if (e != 0) {
    const char *m = stream->get_last_error ? stream->get_last_error(stream) : NULL;
    return pt__errorf(err, PT_EIO, "ipc: the input stream has no schema: %s",
                      m ? m : strerror(e));
  }
  bool same = s.format != NULL && pt__ipc_same_types(&s, &w->schema, 0);
  s.release(&s);
  if (!same)
    return pt__errorf(err, PT_EINVAL,
                      "ipc: the input stream's schema has other types than the writer's");
  for (;;) {
    struct ArrowArray batch;
    e = stream->get_next(stream, &batch);
    if (e != 0) {
      const char *m = stream->get_last_error ? stream->get_last_error(stream) : NULL;
      return pt__errorf(err, e == ENOMEM ? PT_ENOMEM : PT_EIO, "ipc: reading the input stream: %s",
                        m ? m : strerror(e));
    }
    if (batch.release == NULL) return PT_OK;
    int rc = pt_ipc_writer_write(w, &batch, err);
    batch.release(&batch);
    if (rc != PT_OK) return rc;
  }
}

static int write_footer(pt_ipc_writer *w, pt_error *err) {
  pt__fb_builder b;
  pt__fb_builder_init(&b);
  int rc;
  pt__fb_ref schema;
  if ((rc = pt__ipc_schema_encode(&b, &w->schema, &w->ids, &schema, err)) != PT_OK) goto cleanup;
  pt__fb_ref vecs[2];
  for (int k = 0; k < 2; k++) {
    block *blocks = k == 0 ? w->dict_blocks : w->batch_blocks;
    int64_t n = k == 0 ? w->n_dict_blocks : w->n_batch_blocks;
    uint8_t *raw = pt__calloc((size_t)(n ? n : 1), PT_IPC_BLOCK_SIZE);
    if (raw == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      goto cleanup;
    }
    for (int64_t i = 0; i < n; i++) {
      pt__store_i64(raw + i * PT_IPC_BLOCK_SIZE, blocks[i].offset);
      pt__store_i32(raw + i * PT_IPC_BLOCK_SIZE + 8, blocks[i].meta_len);
      pt__store_i64(raw + i * PT_IPC_BLOCK_SIZE + 16, blocks[i].body_len);
    }
    vecs[k] = pt__fb_create_vector(&b, raw, (uint32_t)n, PT_IPC_BLOCK_SIZE, 8);
    pt__free(raw);
  }
  pt__fb_table_start(&b);
  pt__fb_add_i16_always(&b, FOOTER_VERSION, PT_IPC_V5);
  pt__fb_add_ref(&b, FOOTER_SCHEMA, schema);
  pt__fb_add_ref(&b, FOOTER_DICTIONARIES, vecs[0]);
  pt__fb_add_ref(&b, FOOTER_BATCHES, vecs[1]);
  pt__fb_ref footer = pt__fb_table_end(&b);
  const uint8_t *fb;
  uint32_t size;
  if ((rc = pt__fb_builder_finish(&b, footer, &fb, &size)) != PT_OK) {
    rc = pt__errorf(err, rc, "ipc: cannot build the file footer (%s)", pt_strerror(rc));
    goto cleanup;
  }
  uint8_t tail[10];
  pt__store_i32(tail, (int32_t)size);
  memcpy(tail + 4, PT_IPC_MAGIC, PT_IPC_MAGIC_LEN);
  seg segs[2] = {{fb, size}, {tail, 10}};
  rc = sink_write(&w->out, segs, 2, err);
cleanup:
  pt__fb_builder_reset(&b);
  return rc;
}

int pt_ipc_writer_close(pt_ipc_writer *w, pt_error *err) {
  if (w == NULL) return pt__errorf(err, PT_EINVAL, "ipc: writer is NULL");
  if (w->closed) return PT_OK;
  if (w->failed)
    return pt__errorf(err, PT_ESTATE, "ipc: an earlier write failed; the output is incomplete");
  static const uint8_t eos[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  seg s = {eos, 8};
  int rc = sink_write(&w->out, &s, 1, err);
  if (rc == PT_OK && w->opts.format == PT_IPC_FILE) rc = write_footer(w, err);
  if (rc != PT_OK) {
    w->failed = true;
    return rc;
  }
  w->closed = true;
  if (w->out.own_fd) {
    int fd = w->out.fd;
    w->out.own_fd = false;
    if (close(fd) != 0)
      return pt__errorf(err, PT_EIO, "ipc: closing the output failed: %s", strerror(errno));
  }
  return PT_OK;
}

int pt_ipc_writer_take_buffer(pt_ipc_writer *w, void **data, int64_t *size, pt_error *err) {
  if (w == NULL || data == NULL || size == NULL)
    return pt__errorf(err, PT_EINVAL, "ipc: NULL argument");
  if (w->out.fd >= 0)
    return pt__errorf(err, PT_ESTATE, "ipc: take_buffer needs a writer opened on a buffer");
  if (w->out.buf != &w->out.mem)
    return pt__errorf(err, PT_ESTATE,
                      "ipc: this writer appends to your pt_buf: the bytes are there, nothing "
                      "to take");
  if (!w->closed)
    return pt__errorf(err, PT_ESTATE, "ipc: close the writer before taking its buffer");
  sink_trim(&w->out.mem);
  *data = w->out.mem.data;
  *size = (int64_t)w->out.mem.len;
  if (*data == NULL) {
    /* Cannot happen after close (the end marker is written); keep the
     * promise of a free()-able pointer anyway. */
    *data = pt__malloc(1);
    if (*data == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  memset(&w->out.mem, 0, sizeof w->out.mem);
  return PT_OK;
}

void pt_ipc_writer_free(pt_ipc_writer *w) {
  if (w == NULL) return;
  if (w->out.own_fd) close(w->out.fd);
  pt_buf_free(&w->out.mem);
  if (w->dicts)
    for (int64_t i = 0; i < w->ids.n; i++) wdict_clear(&w->dicts[i]);
  pt__free(w->dicts);
  pt__ipc_dicts_reset(&w->ids);
  if (w->schema.release) w->schema.release(&w->schema);
  pt__free(w->dict_blocks);
  pt__free(w->batch_blocks);
  pt__free(w->zbuf);
  pt__free(w);
}
