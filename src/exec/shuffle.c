/* shuffle.c — the memory and the row placement behind the shuffle operators
 * in ops.c: segment bytes mapped from the map output file (or fetched into
 * huge pages), and the map side's scatter, which copies each column of a
 * batch straight into the reduce partitions' batches being filled.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arrow/arrow.h"
#include "exec/exec_int.h"

#define HUGE_PAGE ((size_t)2 << 20)
/* Arena chunks: big enough that huge pages pay, small enough for a tiny
 * shuffle's task. */
#define CHUNK_BYTES ((size_t)8 << 20)
/* Rows a reduce partition's batch starts with (it doubles up to
 * PT__SHUFFLE_BATCH_ROWS): many partitions with few rows each stay small. */
#define FIRST_CAP 1024

/* ------------------------------------------------------------------------ */
/* Anonymous memory on huge pages.
 *
 * Every fresh 4 KiB page costs a fault on first touch, several µs under a
 * hypervisor: filling 64 MiB of fresh memory took 30 ms that way against
 * 4 ms on 2 MiB pages (measured here). A shuffle writes all of its map
 * output into fresh memory, and a remote fetch receives into it, so both
 * ask for huge pages (a hint; ignored where THP is off). */

static void *huge_map(size_t len, size_t *mapped) {
  size_t n = len + HUGE_PAGE;
  if (n < len) return NULL;
  uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  /* Trim to a 2 MiB-aligned start so that whole huge pages fit. */
  uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
  size_t head = a - (uintptr_t)p, page = (size_t)sysconf(_SC_PAGESIZE);
  size_t keep = (len + page - 1) & ~(page - 1);
  if (head > 0) munmap(p, head);
  if (n - head > keep) munmap((uint8_t *)a + keep, n - head - keep);
#ifdef MADV_HUGEPAGE
  if (keep >= HUGE_PAGE) (void)madvise((void *)a, keep, MADV_HUGEPAGE);
#endif
  *mapped = keep;
  return (void *)a;
}

/* Mappings given back are kept for the next task, up to SPARE_MAX bytes in
 * the process: memory the kernel hands out afresh is slow to touch the
 * first time, huge pages too (clearing them, and under a hypervisor the
 * host's own faults behind them: a fifth of a shuffle's time where this was
 * measured), while a mapping used before costs nothing. */
#define SPARE_MAX ((size_t)256 << 20)

typedef struct spare {
  struct spare *next;
  size_t mapped;
} spare;

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static spare *spares;      /* guarded by spare_mu */
static size_t spare_bytes; /* guarded by spare_mu */

/* A mapping of at least len bytes (in whole chunks), *mapped its length. */
static void *map_get(size_t len, size_t *mapped) {
  size_t want = (len + CHUNK_BYTES - 1) / CHUNK_BYTES * CHUNK_BYTES;
  if (want < len) return NULL;
  pthread_mutex_lock(&spare_mu);
  /* The smallest that fits, if it wastes no more than it holds. */
  spare **best = NULL;
  for (spare **p = &spares; *p != NULL; p = &(*p)->next)
    if ((*p)->mapped >= want && (*p)->mapped <= 2 * want &&
        (best == NULL || (*p)->mapped < (*best)->mapped))
      best = p;
  spare *got = NULL;
  if (best != NULL) {
    got = *best;
    *best = got->next;
    spare_bytes -= got->mapped;
  }
  pthread_mutex_unlock(&spare_mu);
  if (got != NULL) {
    *mapped = got->mapped;
    return got;
  }
  return huge_map(want, mapped);
}

static void map_put(void *p, size_t mapped) {
  if (p == NULL) return;
  pthread_mutex_lock(&spare_mu);
  if (spare_bytes + mapped <= SPARE_MAX) {
    spare *s = p;
    s->mapped = mapped;
    s->next = spares;
    spares = s;
    spare_bytes += mapped;
    p = NULL;
  }
  pthread_mutex_unlock(&spare_mu);
  if (p != NULL) munmap(p, mapped);
}

int pt__segment_alloc(size_t len, pt__segment *out) {
  if (pt__alloc_should_fail()) return PT_ENOMEM;
  out->base = map_get(len ? len : 1, &out->mapped);
  out->data = out->base;
  out->spare = 1;
  out->held = NULL;
  return out->base ? PT_OK : PT_ENOMEM;
}

int pt__segment_map(int fd, int64_t off, size_t len, pt__segment *out, pt_error *err) {
  struct stat st;
  if (fstat(fd, &st) != 0) return pt__errorf(err, PT_EIO, "%s", strerror(errno));
  if (st.st_size < off || (uint64_t)(st.st_size - off) < len)
    return pt__errorf(err, PT_EIO, "ends at byte %lld", (long long)st.st_size);
  /* The map starts on a page; the segment's offset within it keeps its
   * alignment (segments start on 8 bytes, what IPC needs in place). */
  int64_t page = (int64_t)sysconf(_SC_PAGESIZE);
  int64_t start = off & ~(page - 1);
  size_t n = len + (size_t)(off - start);
  void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, start);
  if (p == MAP_FAILED) return pt__errorf(err, PT_EIO, "%s", strerror(errno));
  out->base = p;
  out->mapped = n;
  out->data = (uint8_t *)p + (off - start);
  out->spare = 0;
  out->held = NULL;
  return PT_OK;
}

void pt__segment_free(pt__segment *s) {
  pt__mem_unref(s->held);
  s->held = NULL;
  if (s->base != NULL && s->spare) map_put(s->base, s->mapped);
  else if (s->base != NULL) munmap(s->base, s->mapped);
  s->base = s->data = NULL;
  s->mapped = 0;
}

/* ------------------------------------------------------------------------ */
/* Arena: bump allocation in huge-page chunks, all freed at once. Buffers of
 * the scatter's batches live here until the sink closes. */

typedef struct chunk {
  struct chunk *next;
  size_t mapped, used;
} chunk;

typedef struct arena {
  chunk *head;
} arena;

static void *arena_alloc(arena *a, size_t n) {
  n = (n + 63) & ~(size_t)63;
  size_t hdr = 64;
  chunk *c = a->head;
  if (c == NULL || c->mapped - c->used < n) {
    if (pt__alloc_should_fail()) return NULL;
    size_t want = n + hdr > CHUNK_BYTES ? n + hdr : CHUNK_BYTES, mapped;
    chunk *nc = map_get(want, &mapped);
    if (nc == NULL) return NULL;
    nc->mapped = mapped;
    nc->used = hdr;
    /* A big block gets a chunk of its own; the current one keeps its room. */
    if (c != NULL && want > CHUNK_BYTES) {
      nc->next = c->next;
      c->next = nc;
    } else {
      nc->next = c;
      a->head = nc;
    }
    c = nc;
  }
  void *p = (uint8_t *)c + c->used;
  c->used += n;
  return p;
}

static void arena_free(arena *a) {
  chunk *c = a->head;
  while (c != NULL) {
    chunk *next = c->next;
    map_put(c, c->mapped);
    c = next;
  }
  a->head = NULL;
}

/* ------------------------------------------------------------------------ */
/* Scatter */

enum { COL_FIXED, COL_BOOL, COL_VAR32, COL_VAR64 };

typedef struct col_kind {
  int kind;
  int64_t width; /* COL_FIXED: bytes per value */
} col_kind;

/* One column of the batch a reduce partition is filling. */
typedef struct fill_col {
  uint8_t *validity; /* NULL while every row so far is valid */
  uint8_t *values;   /* fixed values, bits, or offsets (cap + 1 of them) */
  uint8_t *data;     /* var: the bytes (heap, grown by realloc) */
  int64_t data_len, data_cap, nulls;
} fill_col;

struct pt__scatter {
  const struct ArrowSchema *schema; /* borrowed */
  int64_t n_cols, n_parts;
  col_kind *kinds;  /* n_cols */
  fill_col *fills;  /* n_parts * n_cols */
  int64_t *len;     /* rows in each partition's batch */
  int64_t *cap;     /* rows its buffers hold */
  int64_t *fill;    /* rows each will have after the current chunk */
  int64_t *cur;     /* scratch: a cursor per partition */
  uint8_t **wp;     /* scratch: a write pointer per partition */
  pt__shuffle_part *out; /* borrowed: sealed batches go here */
  int64_t bytes;    /* about what the sealed batches take in IPC */
  arena mem;
};

int pt__scatter_new(const struct ArrowSchema *schema, int64_t n_parts, pt__shuffle_part *parts,
                    pt__scatter **out, pt_error *err) {
  *out = NULL;
  if (schema->dictionary != NULL || schema->n_children <= 0) return PT_ENOTSUP;
  for (int64_t c = 0; c < schema->n_children; c++) {
    pt_type t;
    const struct ArrowSchema *cs = schema->children[c];
    if (cs->dictionary != NULL || cs->n_children != 0) return PT_ENOTSUP;
    if (pt_type_parse(cs, &t, NULL) != PT_OK) return PT_ENOTSUP;
    int nb = pt__type_n_buffers(t.id), ok = t.id != PT_TYPE_NA && !pt__type_is_view(t.id);
    int64_t bits = pt__type_bit_width(&t);
    if (!ok || !((nb == 2 && (bits == 1 || (bits > 0 && bits % 8 == 0))) ||
                 (nb == 3 && pt__type_offsets_kind(t.id) != 0)))
      return PT_ENOTSUP;
  }
  pt__scatter *s = pt__calloc(1, sizeof *s);
  if (s == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
  s->schema = schema;
  s->n_cols = schema->n_children;
  s->n_parts = n_parts;
  s->out = parts;
  s->kinds = pt__calloc((size_t)s->n_cols, sizeof *s->kinds);
  s->fills = pt__calloc((size_t)(s->n_cols * n_parts), sizeof *s->fills);
  s->len = pt__calloc((size_t)n_parts, sizeof *s->len);
  s->cap = pt__calloc((size_t)n_parts, sizeof *s->cap);
  s->fill = pt__calloc((size_t)n_parts, sizeof *s->fill);
  s->cur = pt__calloc((size_t)n_parts, sizeof *s->cur);
  s->wp = pt__calloc((size_t)n_parts, sizeof *s->wp);
  if (s->kinds == NULL || s->fills == NULL || s->len == NULL || s->cap == NULL ||
      s->fill == NULL || s->cur == NULL || s->wp == NULL) {
    pt__scatter_free(s);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  for (int64_t c = 0; c < s->n_cols; c++) {
    pt_type t;
    pt_type_parse(schema->children[c], &t, NULL);
    int64_t bits = pt__type_bit_width(&t);
    int ok = pt__type_offsets_kind(t.id);
    s->kinds[c].kind = pt__type_n_buffers(t.id) == 3 ? (ok == 2 ? COL_VAR64 : COL_VAR32)
                       : bits == 1                     ? COL_BOOL
                                                       : COL_FIXED;
    s->kinds[c].width = bits / 8;
  }
  *out = s;
  return PT_OK;
}

int64_t pt__scatter_bytes(const pt__scatter *s) { return s->bytes; }

void pt__scatter_free(pt__scatter *s) {
  if (s == NULL) return;
  if (s->fills != NULL)
    for (int64_t i = 0; i < s->n_cols * s->n_parts; i++) pt__free(s->fills[i].data);
  arena_free(&s->mem);
  pt__free(s->kinds);
  pt__free(s->fills);
  pt__free(s->len);
  pt__free(s->cap);
  pt__free(s->fill);
  pt__free(s->cur);
  pt__free(s->wp);
  pt__free(s);
}

static int64_t bitmap_bytes(int64_t rows) { return (rows + 7) / 8; }

/* Bytes of buffer 1 for cap rows of column kind k. */
static int64_t values_bytes(const col_kind *k, int64_t cap) {
  switch (k->kind) {
    case COL_BOOL: return bitmap_bytes(cap);
    case COL_VAR32: return (cap + 1) * 4;
    case COL_VAR64: return (cap + 1) * 8;
    default: return cap * k->width;
  }
}

/* Grows partition r's buffers to hold cap rows (copying what it has). */
static int grow_part(pt__scatter *s, int64_t r, int64_t cap) {
  int64_t len = s->len[r];
  for (int64_t c = 0; c < s->n_cols; c++) {
    fill_col *f = &s->fills[r * s->n_cols + c];
    const col_kind *k = &s->kinds[c];
    uint8_t *v = arena_alloc(&s->mem, (size_t)values_bytes(k, cap));
    if (v == NULL) return PT_ENOMEM;
    if (f->values != NULL) {
      int64_t used = k->kind == COL_FIXED ? len * k->width
                     : k->kind == COL_BOOL ? bitmap_bytes(len)
                                           : values_bytes(k, len);
      memcpy(v, f->values, (size_t)used);
    } else if (k->kind == COL_VAR32 || k->kind == COL_VAR64) {
      memset(v, 0, k->kind == COL_VAR32 ? 4 : 8); /* offset 0 */
    }
    f->values = v;
    if (f->validity != NULL) {
      uint8_t *b = arena_alloc(&s->mem, (size_t)bitmap_bytes(cap));
      if (b == NULL) return PT_ENOMEM;
      memcpy(b, f->validity, (size_t)bitmap_bytes(len));
      f->validity = b;
    }
  }
  s->cap[r] = cap;
  return PT_OK;
}

/* Makes partition r's batch an array of the schema, appends it to its part
 * and starts an empty one. */
static int seal(pt__scatter *s, int64_t r, pt_error *err) {
  int64_t len = s->len[r];
  struct ArrowArray a;
  PT_RETURN_NOT_OK(pt__array_init(&a, 1, s->n_cols, false, err));
  s->bytes += 512 + 64 * s->n_cols; /* message header, padding */
  a.length = len;
  for (int64_t c = 0; c < s->n_cols; c++) {
    fill_col *f = &s->fills[r * s->n_cols + c];
    const col_kind *k = &s->kinds[c];
    int var = k->kind == COL_VAR32 || k->kind == COL_VAR64;
    struct ArrowArray *ch = a.children[c];
    int rc = pt__array_init(ch, var ? 3 : 2, 0, false, err);
    if (rc != PT_OK) {
      a.release(&a);
      return rc;
    }
    ch->length = len;
    ch->null_count = f->nulls;
    /* Reused memory holds old bytes: clear the bits past the last row, so
     * that what is written out depends on the rows alone. */
    if (len % 8) {
      uint8_t keep = (uint8_t)((1u << (len % 8)) - 1);
      if (f->nulls) f->validity[len / 8] &= keep;
      if (k->kind == COL_BOOL) f->values[len / 8] &= keep;
    }
    s->bytes += (f->nulls ? bitmap_bytes(len) : 0) + values_bytes(k, len) + f->data_len;
    pt__array_set_buffer(ch, 0, f->nulls ? f->validity : NULL, false);
    pt__array_set_buffer(ch, 1, f->values, false);
    if (var) {
      /* The data buffer passes to the array (it frees it). */
      pt__array_set_buffer(ch, 2, f->data, f->data != NULL);
      f->data = NULL;
      f->data_len = f->data_cap = 0;
    }
    f->values = f->validity = NULL;
    f->nulls = 0;
  }
  s->len[r] = s->cap[r] = 0;
  pt__shuffle_part *part = &s->out[r];
  if (pt__grow((void **)&part->arrays, &part->cap, part->n + 1, sizeof *part->arrays) != PT_OK) {
    a.release(&a);
    return pt__errorf(err, PT_ENOMEM, "out of memory");
  }
  part->rows += len;
  pt__array_move(&a, &part->arrays[part->n++]);
  return PT_OK;
}

static int reserve_data(fill_col *f, int64_t more) {
  if (f->data_len + more <= f->data_cap) return PT_OK;
  int64_t cap = f->data_cap ? f->data_cap : 4096;
  while (cap < f->data_len + more) cap *= 2;
  uint8_t *d = pt__realloc(f->data, (size_t)cap);
  if (d == NULL) return PT_ENOMEM;
  f->data = d;
  f->data_cap = cap;
  return PT_OK;
}

static inline int64_t off_at(const uint8_t *o, int wide, int64_t j) {
  return wide ? pt__load_i64(o + j * 8) : pt__load_i32(o + j * 4);
}

/* Rows [i, j) of column view v (its rows start at off) go to their
 * partitions' batches, after the s->len[r] rows they have. */
static int scatter_col(pt__scatter *s, int64_t c, const pt__view *v, int64_t off,
                       const int32_t *dest, int64_t i, int64_t j, pt_error *err) {
  const col_kind *k = &s->kinds[c];
  int64_t nc = s->n_cols, np = s->n_parts;
  fill_col *fc = s->fills + c;
  int64_t *cur = s->cur;
  uint8_t **wp = s->wp;
  int has_nulls = v->validity != NULL && v->null_count != 0, any = 0;
  for (int64_t r = 0; r < np; r++) {
    fill_col *f = &fc[r * nc];
    if (has_nulls && f->validity == NULL && s->fill[r] > s->len[r]) {
      /* The first null of this batch: rows before it were all valid. */
      f->validity = arena_alloc(&s->mem, (size_t)bitmap_bytes(s->cap[r]));
      if (f->validity == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory");
      memset(f->validity, 0xff, (size_t)bitmap_bytes(s->len[r]));
    }
    any |= f->validity != NULL;
  }
  if (any) {
    memcpy(cur, s->len, (size_t)np * sizeof *cur);
    for (int64_t x = i; x < j; x++) {
      fill_col *f = &fc[dest[x] * nc];
      int64_t at = cur[dest[x]]++;
      if (f->validity == NULL) continue;
      if (!has_nulls || pt__bit_get(v->validity, off + x)) {
        pt__bit_set(f->validity, at, 1);
      } else {
        pt__bit_set(f->validity, at, 0);
        f->nulls++;
      }
    }
  }
  switch (k->kind) {
    case COL_FIXED: {
      int64_t w = k->width;
      const uint8_t *src = v->values + off * w;
      for (int64_t r = 0; r < np; r++) wp[r] = fc[r * nc].values + s->len[r] * w;
      /* One loop per common width, so that each copy is one move. */
#define SCATTER(W)                                      \
  for (int64_t x = i; x < j; x++) {                     \
    memcpy(wp[dest[x]], src + x * (W), (W));            \
    wp[dest[x]] += (W);                                 \
  }
      switch (w) {
        case 1: SCATTER(1) break;
        case 2: SCATTER(2) break;
        case 4: SCATTER(4) break;
        case 8: SCATTER(8) break;
        case 16: SCATTER(16) break;
        default: SCATTER(w) break;
      }
#undef SCATTER
      break;
    }
    case COL_BOOL:
      memcpy(cur, s->len, (size_t)np * sizeof *cur);
      for (int64_t x = i; x < j; x++)
        pt__bit_set(fc[dest[x] * nc].values, cur[dest[x]]++, pt__bit_get(v->values, off + x));
      break;
    default: {
      int wide = k->kind == COL_VAR64;
      int64_t *need = cur;
      memset(need, 0, (size_t)np * sizeof *need);
      for (int64_t x = i; x < j; x++)
        need[dest[x]] += off_at(v->values, wide, off + x + 1) - off_at(v->values, wide, off + x);
      for (int64_t r = 0; r < np; r++) {
        fill_col *f = &fc[r * nc];
        if (need[r] == 0) continue;
        if (!wide && f->data_len + need[r] > INT32_MAX)
          return pt__errorf(err, PT_ERANGE,
                            "column %lld: over 2 GiB of values for reduce partition %lld in "
                            "one batch; use a large_utf8/large_binary column",
                            (long long)c, (long long)r);
        if (reserve_data(f, need[r]) != PT_OK)
          return pt__errorf(err, PT_ENOMEM, "out of memory");
      }
      memcpy(cur, s->len, (size_t)np * sizeof *cur);
      for (int64_t x = i; x < j; x++) {
        int32_t r = dest[x];
        fill_col *f = &fc[r * nc];
        int64_t a = off_at(v->values, wide, off + x);
        int64_t n = off_at(v->values, wide, off + x + 1) - a;
        if (n > 0) memcpy(f->data + f->data_len, v->data + a, (size_t)n);
        f->data_len += n;
        int64_t at = ++cur[r];
        if (wide) pt__store_i64(f->values + at * 8, f->data_len);
        else pt__store_i32(f->values + at * 4, (int32_t)f->data_len);
      }
      break;
    }
  }
  return PT_OK;
}

int pt__scatter_add(pt__scatter *s, const struct ArrowArray *batch, const int32_t *dest,
                    pt_error *err) {
  pt__view top;
  PT_RETURN_NOT_OK(pt__view_init(&top, s->schema, batch, err));
  int rc = PT_OK;
  int64_t n = batch->length, np = s->n_parts, i = 0;
  while (i < n && rc == PT_OK) {
    /* The chunk ends before the first row whose partition is full. */
    memcpy(s->fill, s->len, (size_t)np * sizeof *s->fill);
    int64_t j = i;
    while (j < n && s->fill[dest[j]] < PT__SHUFFLE_BATCH_ROWS) s->fill[dest[j++]]++;
    for (int64_t r = 0; r < np && rc == PT_OK; r++) {
      if (s->fill[r] <= s->cap[r]) continue;
      int64_t cap = s->cap[r] ? s->cap[r] * 2 : FIRST_CAP;
      while (cap < s->fill[r]) cap *= 2;
      if (cap > PT__SHUFFLE_BATCH_ROWS) cap = PT__SHUFFLE_BATCH_ROWS;
      if (grow_part(s, r, cap) != PT_OK) rc = pt__errorf(err, PT_ENOMEM, "out of memory");
    }
    for (int64_t c = 0; c < s->n_cols && rc == PT_OK; c++)
      rc = scatter_col(s, c, &top.children[c], top.offset + top.children[c].offset, dest, i, j,
                       err);
    if (rc != PT_OK) break;
    memcpy(s->len, s->fill, (size_t)np * sizeof *s->len);
    for (int64_t r = 0; r < np && rc == PT_OK; r++)
      if (s->len[r] == PT__SHUFFLE_BATCH_ROWS) rc = seal(s, r, err);
    i = j;
  }
  pt__view_reset(&top);
  return rc;
}

int pt__scatter_finish(pt__scatter *s, pt_error *err) {
  for (int64_t r = 0; r < s->n_parts; r++)
    if (s->len[r] > 0) PT_RETURN_NOT_OK(seal(s, r, err));
  return PT_OK;
}
