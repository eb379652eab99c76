/* csv.c — CSV text to Arrow: a record splitter that honours quotes (fields
 * may span lines), type inference over the first records, conversion with
 * Spark's three modes for malformed records, and the rule that finds record
 * boundaries for byte-range partitions. */
#include <errno.h>
#include <float.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arrow/arrow.h"
#include "core/core.h"
#include "io/csv_num.h"
#include "io/io.h"

/* Inferred kinds, narrowest first; widening follows merge_kind. */
enum { K_NONE, K_BOOL, K_INT, K_DOUBLE, K_DATE, K_TS, K_STRING };

typedef struct field {
  const char *s;    /* the field's bytes: in the input, or in rec.text when
                       they had to be unescaped (set when the record ends) */
  int64_t off, len; /* while parsing: offset in the input or in rec.text */
  int in_text;
  int quoted;
  int bad; /* unterminated quote or text after the closing one */
} field;

typedef struct record {
  char *text; /* unescaped bytes of quoted fields that needed it */
  int64_t text_len, text_cap;
  field *fields;
  int64_t n, cap;
  int64_t line;               /* 1-based line where the record starts */
  int64_t raw_begin, raw_end; /* the record's bytes in the input */
  int bad_quote;              /* an unterminated quote or text after one */
} record;

void pt_csv_options_init(pt_csv_options *o) {
  memset(o, 0, sizeof *o);
  o->delimiter = ',';
  o->quote = '"';
  o->escape = '"';
  o->infer_rows = 1000;
  o->mode = PT_CSV_FAILFAST;
}

static int rec_put(record *r, const char *p, int64_t n) {
  if (n == 0) return PT_OK; /* text may still be NULL */
  if (r->text_len + n > r->text_cap) {
    int64_t cap = r->text_cap ? r->text_cap : 256;
    while (cap < r->text_len + n) cap *= 2;
    char *t = pt__realloc(r->text, (size_t)cap);
    if (!t) return PT_ENOMEM;
    r->text = t;
    r->text_cap = cap;
  }
  memcpy(r->text + r->text_len, p, (size_t)n);
  r->text_len += n;
  return PT_OK;
}

static int rec_add_field(record *r, int64_t off, int64_t len, int in_text, int quoted, int bad) {
  if (r->n == r->cap) {
    int64_t cap = r->cap ? r->cap * 2 : 16;
    field *f = pt__realloc(r->fields, (size_t)cap * sizeof *f);
    if (!f) return PT_ENOMEM;
    r->fields = f;
    r->cap = cap;
  }
  r->fields[r->n++] = (field){NULL, off, len, in_text, quoted, bad};
  if (bad) r->bad_quote = 1;
  return PT_OK;
}

static void rec_free(record *r) {
  pt__free(r->text);
  pt__free(r->fields);
}

/* The first index in [i, len) whose byte is a or b (len if none). Sixteen
 * bytes at a time where SSE2 is (every x86-64): the records' quotes and
 * newlines are far apart next to the bytes between them. */
static int64_t find2(const char *d, int64_t i, int64_t len, char a, char b) {
#if defined(__SSE2__)
  __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b);
  while (i + 16 <= len) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
    int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)));
    if (m != 0) return i + __builtin_ctz((unsigned)m);
    i += 16;
  }
#endif
  while (i < len && d[i] != a && d[i] != b) i++;
  return i;
}

/* Bytes that end an unquoted field: the delimiter, \n and \r (which ends
 * it only before \n). */
typedef struct stops {
  unsigned char stop[256];
  char delim;
} stops;

static void stops_init(stops *t, const pt_csv_options *o) {
  memset(t->stop, 0, sizeof t->stop);
  t->stop[(unsigned char)o->delimiter] = 1;
  t->stop['\n'] = 1;
  t->stop['\r'] = 1;
  t->delim = o->delimiter;
}

/* The first index in [i, len) of a stop byte (len if none). A byte at a
 * time this was a fifth of a read's instructions: fields are longer than
 * the few instructions of a 16-byte compare. */
static int64_t find_stop(const char *d, int64_t i, int64_t len, const stops *t) {
#if defined(__SSE2__)
  __m128i vd = _mm_set1_epi8(t->delim), vn = _mm_set1_epi8('\n'), vr = _mm_set1_epi8('\r');
  while (i + 16 <= len) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
    __m128i m = _mm_or_si128(_mm_cmpeq_epi8(x, vd),
                             _mm_or_si128(_mm_cmpeq_epi8(x, vn), _mm_cmpeq_epi8(x, vr)));
    int bits = _mm_movemask_epi8(m);
    if (bits != 0) return i + __builtin_ctz((unsigned)bits);
    i += 16;
  }
#endif
  while (i < len && !t->stop[(unsigned char)d[i]]) i++;
  return i;
}

/* The first index in [i, len) of a or b, adding the \n bytes before it to
 * *line: the bytes of most quoted fields are fewer than a vector, so they
 * are looked at one by one, longer ones in vectors. */
static int64_t find2_lines(const char *d, int64_t i, int64_t len, char a, char b, int64_t *line) {
  int64_t stop = i + 24 < len ? i + 24 : len, nl = 0;
  for (; i < stop; i++) {
    char c = d[i];
    if (c == a || c == b) {
      *line += nl;
      return i;
    }
    nl += c == '\n';
  }
  *line += nl;
  if (i >= len) return len;
  int64_t j = find2(d, i, len, a, b);
  *line += pt__csv_count_newlines(d + i, j - i);
  return j;
}

/* Parses the record at *pos (a record start, *pos < len) and advances *pos to
 * the next record start; *line follows the newlines consumed. A record ends
 * at \n, \r\n or the end of the data outside quotes. Fields point into d
 * unless unescaping changed their bytes. */
static int next_record(const char *d, int64_t len, int64_t *pos, int64_t *line,
                       const pt_csv_options *o, const stops *t, record *r) {
  int64_t i = *pos;
  r->n = 0;
  r->text_len = 0;
  r->bad_quote = 0;
  r->line = *line;
  r->raw_begin = i;
  char q = o->quote, esc = o->escape;
  for (;;) {
    int quoted = 0, bad = 0, in_text = 0;
    int64_t off = i, flen;
    if (i < len && q && d[i] == q) {
      quoted = 1;
      i++;
      off = i;
      int closed = 0;
      /* Until the closing quote; the bytes stay where they are unless an
       * escape makes them differ from the input. */
      char other = esc && esc != q ? esc : q;
      for (;;) {
        int64_t j = find2_lines(d, i, len, q, other, line);
        if (j >= len) {
          if (in_text && rec_put(r, d + i, len - i)) return PT_ENOMEM;
          i = len;
          break;
        }
        int doubled = d[j] == q && esc == q && j + 1 < len && d[j + 1] == q;
        int escaped = d[j] == esc && esc != q && j + 1 < len;
        if (!doubled && !escaped) {
          if (d[j] != q) { /* a lone escape byte at the end of the data */
            if (in_text && rec_put(r, d + i, j + 1 - i)) return PT_ENOMEM;
            i = j + 1;
            continue;
          }
          if (in_text && rec_put(r, d + i, j - i)) return PT_ENOMEM;
          flen = in_text ? 0 : j - off;
          i = j + 1;
          closed = 1;
          break;
        }
        /* The field's bytes now differ from the input: copy into text. */
        if (!in_text) {
          int64_t start = r->text_len;
          if (rec_put(r, d + off, j - off)) return PT_ENOMEM;
          off = start;
          in_text = 1;
        } else if (rec_put(r, d + i, j - i)) {
          return PT_ENOMEM;
        }
        if (escaped && d[j + 1] == '\n') (*line)++;
        if (rec_put(r, d + j + 1, 1)) return PT_ENOMEM;
        i = j + 2;
      }
      if (!closed) bad = 1;
      if (!closed && !in_text) flen = len - off;
      /* Text between the closing quote and the delimiter is kept but makes
       * the record malformed. */
      int64_t k = i;
      while (k < len && d[k] != o->delimiter && d[k] != '\n' &&
             !(d[k] == '\r' && k + 1 < len && d[k + 1] == '\n'))
        k++;
      if (k > i) {
        bad = 1;
        if (!in_text) {
          int64_t start = r->text_len;
          if (rec_put(r, d + off, flen)) return PT_ENOMEM;
          off = start;
          in_text = 1;
        }
        if (rec_put(r, d + i, k - i)) return PT_ENOMEM;
        i = k;
      }
      if (in_text) flen = r->text_len - off;
    } else {
      for (;;) {
        i = find_stop(d, i, len, t);
        if (i < len && d[i] == '\r' && !(i + 1 < len && d[i + 1] == '\n') &&
            o->delimiter != '\r') {
          i++;
          continue;
        }
        break;
      }
      flen = i - off;
    }
    if (rec_add_field(r, off, flen, in_text, quoted, bad)) return PT_ENOMEM;
    if (i < len && d[i] == o->delimiter) {
      i++;
      continue;
    }
    r->raw_end = i;
    if (i < len && d[i] == '\r') i++;
    if (i < len && d[i] == '\n') {
      i++;
      (*line)++;
    }
    break;
  }
  for (int64_t k = 0; k < r->n; k++) {
    field *f = &r->fields[k];
    f->s = f->in_text ? r->text + f->off : d + f->off;
  }
  *pos = i;
  return PT_OK;
}

/* Set by tests only: 0 sends every record through next_record, so that
 * next_record_fast can be held against it. */
int pt__csv_fast_records = 1;

/* The bytes that matter to the record splitter (the delimiter, the quote,
 * \n, \r) among the 64 at d[base, len), as bits. */
typedef struct struct_bits {
  int64_t base;  /* bits covers d[base, base + 64) */
  uint64_t bits; /* bit k: d[base + k] matters (0 past len) */
#if defined(__SSE2__)
  __m128i vd, vq, vn, vr; /* the four bytes in each lane: made once, not per block */
#endif
} struct_bits;

static void struct_bits_init(struct_bits *sb, char delim, char q) {
  memset(sb, 0, sizeof *sb);
  sb->base = -128; /* no block yet */
#if defined(__SSE2__)
  sb->vd = _mm_set1_epi8(delim);
  sb->vq = _mm_set1_epi8(q);
  sb->vn = _mm_set1_epi8('\n');
  sb->vr = _mm_set1_epi8('\r');
#endif
}

static uint64_t block_bits(const struct_bits *sb, const char *d, int64_t base, int64_t len,
                           char delim, char q) {
  char tmp[64];
  const char *p = d + base;
  int64_t n = len - base;
  if (n < 64) { /* the data's end: never read past it */
    memset(tmp, 0, sizeof tmp);
    memcpy(tmp, p, (size_t)n);
    p = tmp;
  }
  uint64_t m = 0;
#if defined(__SSE2__)
  __m128i vd = sb->vd, vq = sb->vq, vn = sb->vn, vr = sb->vr;
  (void)delim;
  (void)q;
  for (int k = 0; k < 4; k++) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
    __m128i e = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, vd), _mm_cmpeq_epi8(x, vq)),
                             _mm_or_si128(_mm_cmpeq_epi8(x, vn), _mm_cmpeq_epi8(x, vr)));
    m |= (uint64_t)(unsigned)_mm_movemask_epi8(e) << (16 * k);
  }
#else
  for (int k = 0; k < 64; k++) {
    char c = p[k];
    m |= (uint64_t)(c == delim || c == q || c == '\n' || c == '\r') << k;
  }
#endif
  if (n < 64) m &= ((uint64_t)1 << n) - 1;
  return m;
}

/* The first index >= i of a byte that matters (len if none), from the
 * bits of the block that holds i, loaded when i leaves it. */
static inline int64_t next_bit(const char *d, int64_t len, struct_bits *sb, int64_t i, char delim,
                               char q) {
  for (;;) {
    if (i >= len) return len;
    if (i < sb->base || i >= sb->base + 64) {
      sb->base = i;
      sb->bits = block_bits(sb, d, i, len, delim, q);
    }
    uint64_t m = sb->bits & (~(uint64_t)0 << (i - sb->base));
    if (m) return sb->base + __builtin_ctzll(m);
    i = sb->base + 64;
  }
}

/* next_record for the common record, whose quoted fields hold no quote and
 * no newline and end at a delimiter or the record's end, walking the bits
 * of 64 bytes at a time instead of scanning each field with its own loads:
 * 1 when it read the record (as next_record would have), 0 when the record
 * needs next_record (then only *sb has changed; the bytes looked at are
 * looked at again, once per such record), -1 when out of memory. Only for
 * an escape that is the quote or none. */
static int next_record_fast(const char *d, int64_t len, int64_t *pos, int64_t *line,
                            const pt_csv_options *o, record *r, struct_bits *sb) {
  int64_t i = *pos;
  char q = o->quote, delim = o->delimiter;
  r->n = 0;
  for (;;) {
    int64_t off = i, flen;
    int quoted = 0;
    if (q && i < len && d[i] == q) {
      int64_t j = i + 1;
      for (;; j++) { /* delimiters and \r within the quotes are text */
        j = next_bit(d, len, sb, j, delim, q);
        if (j >= len || d[j] == '\n') return 0;
        if (d[j] == q) break;
      }
      if (j + 1 < len && d[j + 1] == q) return 0; /* doubled: unescaping */
      quoted = 1;
      off = i + 1;
      flen = j - off;
      i = j + 1;
      if (i < len && d[i] != delim && d[i] != '\n' &&
          !(d[i] == '\r' && i + 1 < len && d[i + 1] == '\n'))
        return 0; /* text after the closing quote */
    } else {
      /* Quotes within an unquoted field are text, and so is \r not
       * followed by \n. */
      for (;; i++) {
        i = next_bit(d, len, sb, i, delim, q);
        if (i >= len) break;
        char c = d[i];
        if (c == delim || c == '\n' || (c == '\r' && i + 1 < len && d[i + 1] == '\n')) break;
      }
      flen = i - off;
    }
    if (r->n == r->cap) { /* rec_add_field's growth, its stores inline */
      if (rec_add_field(r, off, flen, 0, quoted, 0)) return -1;
      r->n--;
    }
    field *f = &r->fields[r->n++];
    f->s = d + off;
    f->off = off;
    f->len = flen;
    f->in_text = 0;
    f->quoted = quoted;
    f->bad = 0;
    if (i < len && d[i] == delim) {
      i++;
      continue;
    }
    break;
  }
  r->text_len = 0;
  r->bad_quote = 0;
  r->line = *line;
  r->raw_begin = *pos;
  r->raw_end = i;
  if (i < len && d[i] == '\r') i++;
  if (i < len && d[i] == '\n') {
    i++;
    (*line)++;
  }
  *pos = i;
  return 1;
}

int64_t pt_csv_record_start(const char *d, int64_t len, int64_t offset,
                            const pt_csv_options *opts) {
  int64_t newlines = 0;
  return pt__csv_record_start_lines(d, len, offset, opts, &newlines);
}

int64_t pt__csv_blank_line(const char *d, int64_t len, int64_t i, const pt_csv_options *o) {
  if (i >= len) return 0;
  if (d[i] == '\n') return 1;
  /* A quote of \r would open a quoted field there instead. */
  return d[i] == '\r' && i + 1 < len && d[i + 1] == '\n' && o->quote != '\r' ? 2 : 0;
}

int64_t pt__csv_skip_blank_lines(const char *d, int64_t len, int64_t i, const pt_csv_options *o,
                                 int64_t *lines) {
  for (int64_t b; (b = pt__csv_blank_line(d, len, i, o)) > 0; i += b) (*lines)++;
  return i;
}

int64_t pt__csv_header_start(const char *d, int64_t len, const pt_csv_options *o,
                             int64_t *lines) {
  int64_t blank = 0, h = pt__csv_skip_blank_lines(d, len, 0, o, &blank);
  /* A file of blank lines only is one column of them, its first line the
   * header when there is one, as DuckDB reads it. */
  if (h >= len) return 0;
  *lines += blank;
  return h;
}

/* The bytes of d[i, len) a byte at a time from quote state *inq: the
 * tail of the scan below, and all of it without SSE2. */
static int64_t starts_bytes(const char *d, int64_t len, int64_t i, int *inq_io, int64_t offset,
                            char q, char esc, char delim, int64_t *newlines) {
  int inq = *inq_io;
  while (i < len) {
    char c = d[i];
    if (!inq) {
      if (c == '\n') {
        (*newlines)++;
        if (i + 1 >= offset) {
          *inq_io = 0;
          return i + 1;
        }
      } else if (q && c == q && (i == 0 || d[i - 1] == delim || d[i - 1] == '\n')) {
        inq = 1;
      }
      i++;
    } else if (c == q) {
      if (esc == q && i + 1 < len && d[i + 1] == q) {
        i += 2;
        continue;
      }
      inq = 0;
      i++;
    } else if (esc && esc != q && c == esc) { /* the next byte is literal */
      *newlines += i + 1 < len && d[i + 1] == '\n';
      i += 2;
    } else {
      *newlines += c == '\n';
      i++;
    }
  }
  *inq_io = inq;
  return len;
}

/* The scan below looks at 64 bytes at a time as bit masks, made for a run
 * of blocks at once by the widest compare the CPU has (one AVX-512BW
 * compare per byte class and block, two with AVX2, four with SSE2, or a
 * byte at a time), and then walked with the same code whatever made them:
 * the instruction sets differ only in how the masks are made, and the tests
 * compare each with the byte-at-a-time one. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PT__SCAN_X86 1
#endif

/* The bytes the scan looks for. */
typedef struct scan_chars {
  char q, esc, delim;
  int has_esc; /* an escape other than the quote */
  int whole;   /* quotes and no other escape: a block's quote state is the
                * prefix XOR of its quotes */
  int doubled; /* a doubled quote inside quotes is one quote */
  int blocks;  /* the masks apply (no newline as quote or escape) */
} scan_chars;

static void scan_chars_init(scan_chars *c, const pt_csv_options *o) {
  c->q = o->quote;
  c->esc = o->escape;
  c->delim = o->delimiter;
  c->has_esc = c->esc && c->esc != c->q;
  c->whole = c->q && !c->has_esc;
  c->doubled = c->q && c->esc == c->q;
  c->blocks = c->q != '\n' && c->esc != '\n';
}

/* One 64-byte block: bit k for byte k. */
typedef struct scan_block {
  uint64_t nl;  /* \n */
  uint64_t q;   /* the quote (0 without quoting) */
  uint64_t esc; /* the escape, when has_esc */
  uint64_t sep; /* the delimiter or \n: a field starts after it */
  uint64_t opens; /* sep, and the quote where quotes are doubled: a quote
                   * the prefix XOR takes as opening right after one is
                   * the second of a doubled pair. Within the block only:
                   * the next block's byte 0 follows sep's bit 63 (a quote
                   * that ends a block may be a literal one) */
  uint64_t xq;  /* bit k: the parity of the quotes in bytes [0, k] */
} scan_block;

/* Fills out[0, nb) from the nb blocks at d. */
typedef void (*scan_classify_fn)(const char *d, int64_t nb, const scan_chars *c,
                                 scan_block *out);

static uint64_t prefix_xor_shifts(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

static void classify_bytes(const char *d, int64_t nb, const scan_chars *c, scan_block *out) {
  for (int64_t b = 0; b < nb; b++, d += 64) {
    uint64_t nl = 0, q = 0, e = 0, s = 0;
    for (int k = 0; k < 64; k++) {
      char ch = d[k];
      nl |= (uint64_t)(ch == '\n') << k;
      q |= (uint64_t)(c->q && ch == c->q) << k;
      e |= (uint64_t)(c->has_esc && ch == c->esc) << k;
      s |= (uint64_t)(ch == c->delim || ch == '\n') << k;
    }
    out[b] = (scan_block){nl, q, e, s, s | (c->doubled ? q : 0), prefix_xor_shifts(q)};
  }
}

#if defined(__SSE2__)
/* Bit k set where byte k of the 64 at x[0..3] is v. */
static inline __attribute__((always_inline)) uint64_t mask_sse2(const __m128i *x, __m128i v) {
  uint64_t m0 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x[0], v));
  uint64_t m1 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x[1], v));
  uint64_t m2 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x[2], v));
  uint64_t m3 = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x[3], v));
  return m0 | m1 << 16 | m2 << 32 | m3 << 48;
}

static void classify_sse2(const char *d, int64_t nb, const scan_chars *c, scan_block *out) {
  __m128i vn = _mm_set1_epi8('\n'), vq = _mm_set1_epi8(c->q), ve = _mm_set1_epi8(c->esc);
  __m128i vd = _mm_set1_epi8(c->delim);
  uint64_t qon = c->q ? ~0ull : 0;
  for (int64_t b = 0; b < nb; b++, d += 64) {
    /* Loaded once for all the masks (a mask that loaded its own bytes
     * cost half the scan). */
    __m128i x[4];
    for (int k = 0; k < 4; k++) x[k] = _mm_loadu_si128((const __m128i *)(const void *)(d + 16 * k));
    uint64_t nl = mask_sse2(x, vn), q = mask_sse2(x, vq) & qon;
    out[b].nl = nl;
    out[b].q = q;
    out[b].esc = c->has_esc ? mask_sse2(x, ve) : 0;
    out[b].sep = nl | mask_sse2(x, vd);
    out[b].opens = out[b].sep | (c->doubled ? q : 0);
    out[b].xq = prefix_xor_shifts(q);
  }
}
#endif

#if defined(PT__SCAN_X86)
/* The prefix XOR as one carry-less multiply by all ones: bit k of the
 * product is the XOR of bits [0, k] (six shifts and XORs otherwise). */
__attribute__((target("pclmul"))) static inline uint64_t prefix_xor_clmul(uint64_t x) {
  __m128i p = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)x), _mm_set1_epi8(-1), 0);
  return (uint64_t)_mm_cvtsi128_si64(p);
}

__attribute__((target("avx2,pclmul"))) static void classify_avx2(const char *d, int64_t nb,
                                                                  const scan_chars *c,
                                                                  scan_block *out) {
  __m256i vn = _mm256_set1_epi8('\n'), vq = _mm256_set1_epi8(c->q);
  __m256i ve = _mm256_set1_epi8(c->esc), vd = _mm256_set1_epi8(c->delim);
  uint64_t qon = c->q ? ~0ull : 0;
#define PT__MASK_AVX2(lo, hi, v)                                                     \
  ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, v)) |              \
   (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, v)) << 32)
  for (int64_t b = 0; b < nb; b++, d += 64) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)d);
    __m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(d + 32));
    uint64_t nl = PT__MASK_AVX2(lo, hi, vn), q = PT__MASK_AVX2(lo, hi, vq) & qon;
    out[b].nl = nl;
    out[b].q = q;
    out[b].esc = c->has_esc ? PT__MASK_AVX2(lo, hi, ve) : 0;
    out[b].sep = nl | PT__MASK_AVX2(lo, hi, vd);
    out[b].opens = out[b].sep | (c->doubled ? q : 0);
    out[b].xq = prefix_xor_clmul(q);
  }
#undef PT__MASK_AVX2
}

__attribute__((target("avx512bw,pclmul"))) static void classify_avx512(const char *d, int64_t nb,
                                                                        const scan_chars *c,
                                                                        scan_block *out) {
  __m512i vn = _mm512_set1_epi8('\n'), vq = _mm512_set1_epi8(c->q);
  __m512i ve = _mm512_set1_epi8(c->esc), vd = _mm512_set1_epi8(c->delim);
  uint64_t qon = c->q ? ~0ull : 0;
  for (int64_t b = 0; b < nb; b++, d += 64) {
    __m512i x = _mm512_loadu_si512((const void *)d);
    uint64_t nl = _mm512_cmpeq_epi8_mask(x, vn), q = _mm512_cmpeq_epi8_mask(x, vq) & qon;
    out[b].nl = nl;
    out[b].q = q;
    out[b].esc = c->has_esc ? _mm512_cmpeq_epi8_mask(x, ve) : 0;
    out[b].sep = nl | _mm512_cmpeq_epi8_mask(x, vd);
    out[b].opens = out[b].sep | (c->doubled ? q : 0);
    out[b].xq = prefix_xor_clmul(q);
  }
}
#endif

/* The scan's level: PT__CSV_SCAN_*; -1 until first asked (then the best
 * the CPU has), lowered by tests through pt__csv_scan_level. */
static int scan_level_now = -1;

static int scan_level_has(int level) {
  switch (level) {
  case PT__CSV_SCAN_BYTES: case PT__CSV_SCAN_PLAIN: return 1;
#if defined(__SSE2__)
  case PT__CSV_SCAN_SSE2: return 1;
#endif
#if defined(PT__SCAN_X86)
  case PT__CSV_SCAN_AVX2:
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul");
  case PT__CSV_SCAN_AVX512:
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("pclmul");
#endif
  default: return 0;
  }
}

/* The widest the CPU has; without SSE2 the byte-at-a-time scan, which
 * costs less than making the masks a byte at a time. */
static int scan_level_best(void) {
  for (int level = PT__CSV_SCAN_AVX512; level >= PT__CSV_SCAN_SSE2; level--)
    if (scan_level_has(level)) return level;
  return PT__CSV_SCAN_BYTES;
}

int pt__csv_scan_level(int level) {
  int use = level >= 0 && scan_level_has(level) ? level : scan_level_best();
  __atomic_store_n(&scan_level_now, use, __ATOMIC_RELAXED);
  return use;
}

/* The mask maker for the level in use; NULL: a byte at a time. */
static scan_classify_fn scan_classify(void) {
  int level = __atomic_load_n(&scan_level_now, __ATOMIC_RELAXED);
  if (level < 0) level = pt__csv_scan_level(-1);
  switch (level) {
#if defined(PT__SCAN_X86)
  case PT__CSV_SCAN_AVX512: return classify_avx512;
  case PT__CSV_SCAN_AVX2: return classify_avx2;
#endif
#if defined(__SSE2__)
  case PT__CSV_SCAN_SSE2: return classify_sse2;
#endif
  case PT__CSV_SCAN_PLAIN: return classify_bytes;
  default: return NULL;
  }
}

/* Bits [a, b) of a word (0 <= a <= b <= 64). */
static uint64_t bits_from(int a) { return a >= 64 ? 0 : ~0ull << a; }
static uint64_t bits_below(int b) { return b >= 64 ? ~0ull : (1ull << b) - 1; }

/* Every quote toggles the state (a doubled one twice), so the prefix XOR
 * of the quote bits says which bytes are inside quotes, unless a quote it
 * takes as opening does not start a field (a literal quote outside
 * quotes), or the block ends on a closing quote whose double may come
 * next: then it returns 0 and the block is taken quote by quote. */
static inline __attribute__((always_inline)) int block_whole(const scan_block *m, int inq,
                                                             uint64_t first, scan_chars c,
                                                             uint64_t *inside) {
  uint64_t in = m->xq ^ (0 - (uint64_t)inq);
  uint64_t start = m->opens << 1 | first;
  int open_end = c.doubled && (m->q >> 63) && !(in >> 63);
  *inside = in;
  return (m->q & in & ~start) == 0 && !open_end;
}

/* The newlines outside quotes of block m, the bytes d[i, i + 64) of
 * d[0, len), from its byte k0 (those before were taken with the block
 * before: an escaped byte or a doubled quote's second) in quote state *inq;
 * first: 1 where a quote at byte 0 may open a field (bit 63 of the block
 * before's sep). Leaves in *inq the state after the block and returns the
 * bytes of the next block it took. A quote opens a quoted field only where
 * a field starts: at 0, after the delimiter or after a newline. */
static inline __attribute__((always_inline)) int block_out(const scan_block *m, const char *d,
                                                           int64_t i, int64_t len, int k0,
                                                           uint64_t first, int *inq,
                                                           scan_chars c, uint64_t *out) {
  uint64_t inside;
  if (c.whole && k0 == 0 && block_whole(m, *inq, first, c, &inside)) {
    *out = m->nl & ~inside;
    *inq = (int)(inside >> 63);
    return 0;
  }
  uint64_t o = 0;
  int k = k0, in = *inq;
  while (k < 64) {
    if (!in) {
      uint64_t ev = m->q & bits_from(k);
      int p = ev ? __builtin_ctzll(ev) : 64;
      o |= m->nl & bits_from(k) & bits_below(p);
      if (p == 64) break;
      int64_t j = i + p;
      in = j == 0 || d[j - 1] == c.delim || d[j - 1] == '\n'; /* else a literal quote */
      k = p + 1;
    } else {
      uint64_t ev = (m->q | m->esc) & bits_from(k);
      int p = ev ? __builtin_ctzll(ev) : 64;
      if (p == 64) break;
      int64_t j = i + p;
      if (d[j] != c.q) { /* the escape: the next byte is literal */
        k = p + 2;
      } else if (c.doubled && j + 1 < len && d[j + 1] == c.q) {
        k = p + 2;
      } else {
        in = 0;
        k = p + 1;
      }
    }
  }
  *inq = in;
  *out = o;
  return k > 64 ? k - 64 : 0;
}

/* 1 where a quote at d[i] may open a field, for block_out's first (for
 * the first block of a walk; later ones take bit 63 of the one before). */
static uint64_t first_of(const char *d, int64_t i, const scan_chars *c) {
  return i == 0 || d[i - 1] == c->delim || d[i - 1] == '\n';
}

/* Blocks whose masks are made at once: enough to pay for the call, few
 * enough to stay in L1 (a scan that stops early starts with fewer). */
enum { SCAN_RUN = 64 };

/* From byte i of d in quote state *inq_io (i a position the scan itself
 * could stop at: 0 or just past a newline), the first record start at or
 * after offset, adding the \n bytes before it to *newlines; len when none
 * is before len, with *inq_io the state there (0 at a record start). */
/* A popcnt build besides the plain one, picked by the loader (a glibc
 * ifunc): without it every 64 bytes pay a call to libgcc's __popcountdi2
 * (9% of the scan's instructions). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
#define PT__POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define PT__POPCNT_CLONES
#endif
PT__POPCNT_CLONES
static int64_t scan_from(const char *d, int64_t len, int64_t i, int *inq_io, int64_t offset,
                         const pt_csv_options *opts, int64_t *newlines) {
  /* A record starts at 0 and after every newline outside quotes. The quote
   * state at a byte depends on everything before it, so a scan starts at 0
   * or where the state is known or guessed (pt__csv_cuts guesses both at
   * the start of each span and keeps the right one). Newlines are counted
   * by popcount, whatever their quote state, so a line costs a few
   * instructions instead of a stop per newline and quote. */
  scan_chars c;
  scan_chars_init(&c, opts);
  int inq = *inq_io;
  scan_classify_fn classify = c.blocks ? scan_classify() : NULL;
  if (classify) {
    scan_block run[SCAN_RUN];
    int64_t want = 4;
    int k0 = 0;
    uint64_t first = first_of(d, i, &c);
    while (i + 64 <= len) {
      int64_t nb = (len - i) / 64 < want ? (len - i) / 64 : want;
      if (want < SCAN_RUN) want *= 2;
      classify(d + i, nb, &c, run);
      for (int64_t b = 0; b < nb; b++, i += 64) {
        uint64_t out;
        int next_k0 = block_out(&run[b], d, i, len, k0, first, &inq, c, &out);
        first = run[b].sep >> 63;
        /* The first newline that ends before offset's record start is the
         * one at offset - 1 or later. */
        int64_t t = offset - 1 - i;
        uint64_t late = t <= 0 ? ~0ull : t >= 64 ? 0 : ~0ull << t;
        if (out & late) {
          int j = __builtin_ctzll(out & late);
          *newlines += __builtin_popcountll(run[b].nl & bits_below(j)) + 1;
          *inq_io = 0;
          return i + j + 1;
        }
        *newlines += __builtin_popcountll(run[b].nl);
        k0 = next_k0;
      }
    }
    if (k0) { /* the last block took the byte at i */
      if (i < len) *newlines += d[i] == '\n';
      i += k0;
    }
  }
  *inq_io = inq;
  return starts_bytes(d, len, i, inq_io, offset, c.q, c.esc, c.delim, newlines);
}

/* 1 when the newline at d[p], outside quotes, ends a blank line. Outside
 * quotes, the byte before it is a newline only where that one is outside
 * quotes too (no quote lies between), so the bytes alone decide. */
static inline int blank_end(const char *d, int64_t p, char q) {
  if (p == 0 || d[p - 1] == '\n') return 1;
  return d[p - 1] == '\r' && q != '\r' && (p == 1 || d[p - 2] == '\n');
}

/* The records that start in d[0, len), 0 being one: 1 and one more for each
 * newline outside quotes before the last byte, less the blank lines (each
 * ends at such a newline) when skip_blank, found with scan_from's masks and
 * block walk, but counted instead of stopped at. */
static inline __attribute__((always_inline)) int64_t records_walk(const char *d, int64_t len,
                                                                 const pt_csv_options *opts,
                                                                 const int skip_blank) {
  if (len <= 0) return 0;
  scan_chars c;
  scan_chars_init(&c, opts);
  int64_t n = 1, i = 0, last = len - 1; /* a newline at last starts no record */
  int inq = 0;
  scan_classify_fn classify = c.blocks ? scan_classify() : NULL;
  if (classify) {
    scan_block run[SCAN_RUN];
    int k0 = 0;
    uint64_t first = 1;
    /* Bits 1 and 0: a newline at the byte before the block and the one
     * before that; d[-1] counts as one, so that a newline at 0 is a blank
     * line. */
    uint64_t prev = 2;
    while (i + 64 <= len) {
      int64_t nb = (len - i) / 64 < SCAN_RUN ? (len - i) / 64 : SCAN_RUN;
      classify(d + i, nb, &c, run);
      for (int64_t b = 0; b < nb; b++, i += 64) {
        uint64_t out, nl = run[b].nl;
        k0 = block_out(&run[b], d, i, len, k0, first, &inq, c, &out);
        first = run[b].sep >> 63;
        /* Blank lines: \n right after a newline, and \r\n right after
         * one. Most blocks have no newline one or two bytes after another:
         * one test for both. */
        uint64_t after1 = nl << 1 | prev >> 1, after2 = nl << 2 | prev;
        uint64_t near = out & (after1 | after2);
        if (near && skip_blank) {
          n -= __builtin_popcountll(near & after1);
          for (uint64_t cr = near & ~after1; cr; cr &= cr - 1) {
            int64_t p = i + __builtin_ctzll(cr);
            n -= d[p - 1] == '\r' && c.q != '\r';
          }
        }
        prev = nl >> 62;
        if (last - i < 64) out &= bits_below((int)(last - i));
        n += __builtin_popcountll(out);
      }
    }
    i += k0;
  }
  /* The bytes after the last block, a record at a time. */
  while (i < len) {
    int64_t nl = 0;
    i = starts_bytes(d, len, i, &inq, 0, c.q, c.esc, c.delim, &nl);
    if (i < len) n++;
    if (skip_blank && !inq && d[i - 1] == '\n' && blank_end(d, i - 1, c.q)) n--;
  }
  return n;
}

/* records_walk made twice, skip_blank a constant in each (a test a block
 * less: 3% of the count's instructions on four-column rows). */
PT__POPCNT_CLONES
static int64_t records_from(const char *d, int64_t len, int skip_blank,
                            const pt_csv_options *opts) {
  return skip_blank ? records_walk(d, len, opts, 1) : records_walk(d, len, opts, 0);
}

int64_t pt__csv_count_records(const char *d, int64_t len, int64_t ncols, int header,
                              const pt_csv_options *opts) {
  pt_csv_options defaults;
  if (!opts) {
    pt_csv_options_init(&defaults);
    opts = &defaults;
  }
  int64_t blank = 0, h = header ? pt__csv_header_start(d, len, opts, &blank) : 0;
  int64_t n = records_from(d + h, len - h, ncols != 1, opts);
  return header && n > 0 ? n - 1 : n;
}

/* ------------------------------------------------------------------------ */
/* The structure check of a FAILFAST count: each record must have the
 * schema's number of fields, its quotes closed and nothing between a
 * closing quote and the end of its field, which the quote, delimiter and
 * newline masks decide without a parse; values are not converted (as
 * Spark's column pruning: a count needs no column). */

/* What check_bytes found wrong with a record. */
typedef struct check_bad {
  int64_t at;     /* the record's first byte; -1: none */
  int64_t fields; /* its fields */
  int quote;      /* an unterminated quote or text after a closing one */
} check_bad;

/* The records that start in d[i, len) from the record start i, each
 * checked as next_record reads it (blank lines skipped unless ncols is 1,
 * as the reader does; the first other record unchecked when skip_i, a
 * header): the reference for the masks below, the tail after their last
 * block, and the judge of any block they find fault with. Adds the records
 * to *records up to the first malformed one, which goes to *bad. */
static void check_bytes(const char *d, int64_t len, int64_t i, int64_t ncols, int skip_i,
                        const scan_chars *c, int64_t *records, check_bad *bad) {
  int skip = skip_i;
  while (i < len) {
    if (ncols != 1 &&
        (d[i] == '\n' || (d[i] == '\r' && i + 1 < len && d[i + 1] == '\n' && c->q != '\r'))) {
      i += d[i] == '\n' ? 1 : 2; /* a blank line: no record */
      continue;
    }
    int64_t at = i, fields = 1;
    int quote = 0;
    for (;;) {
      if (c->q && d[i] == c->q) {
        int closed = 0;
        for (i++; i < len;) {
          if (d[i] == c->q) {
            if (c->doubled && i + 1 < len && d[i + 1] == c->q) {
              i += 2;
              continue;
            }
            closed = 1;
            i++;
            break;
          }
          i += c->has_esc && d[i] == c->esc && i + 1 < len ? 2 : 1;
        }
        int64_t k = i;
        while (k < len && d[k] != c->delim && d[k] != '\n' &&
               !(d[k] == '\r' && k + 1 < len && d[k + 1] == '\n'))
          k++;
        if (!closed || k > i) quote = 1;
        i = k;
      } else {
        /* \r ends an unquoted field only before \n (or as the delimiter). */
        while (i < len && d[i] != c->delim && d[i] != '\n' &&
               !(d[i] == '\r' && i + 1 < len && d[i + 1] == '\n'))
          i++;
      }
      if (i < len && d[i] == c->delim) {
        fields++;
        i++;
        if (i < len) continue;
        break; /* a delimiter at the end: an empty last field */
      }
      if (i < len && d[i] == '\r') i++;
      if (i < len && d[i] == '\n') i++;
      break;
    }
    if (!skip && (quote || fields != ncols)) {
      *bad = (check_bad){at, fields, quote};
      return;
    }
    skip = 0;
    (*records)++;
  }
}

/* block_out's walk of block m that gives, instead of its record ends, the
 * bytes inside quotes (*inside: an opening quote and what follows it up to
 * the closing one) and the closing quotes (*close: not the first of a
 * doubled pair). Same arguments and return as block_out. */
static inline __attribute__((always_inline)) int block_quotes(const scan_block *m, const char *d,
                                                              int64_t i, int64_t len, int k0,
                                                              uint64_t first, int *inq,
                                                              scan_chars c, uint64_t *inside,
                                                              uint64_t *close) {
  if (c.whole && k0 == 0 && block_whole(m, *inq, first, c, inside)) {
    /* A quote outside quotes followed by one inside is a doubled pair. */
    *close = m->q & ~*inside & ~(c.doubled ? m->q >> 1 : 0);
    *inq = (int)(*inside >> 63);
    return 0;
  }
  uint64_t ins = 0, cl = 0;
  int k = k0, in = *inq, open = 0; /* open: where the quoted bytes began */
  while (k < 64) {
    if (!in) {
      uint64_t ev = m->q & bits_from(k);
      int p = ev ? __builtin_ctzll(ev) : 64;
      if (p == 64) break;
      int64_t j = i + p;
      in = j == 0 || d[j - 1] == c.delim || d[j - 1] == '\n'; /* else a literal quote */
      open = p;
      k = p + 1;
    } else {
      uint64_t ev = (m->q | m->esc) & bits_from(k);
      int p = ev ? __builtin_ctzll(ev) : 64;
      if (p == 64) break;
      int64_t j = i + p;
      if (d[j] != c.q) {
        k = p + 2;
      } else if (c.doubled && j + 1 < len && d[j + 1] == c.q) {
        k = p + 2;
      } else {
        ins |= bits_from(open) & bits_below(p);
        cl |= 1ull << p;
        in = 0;
        k = p + 1;
      }
    }
  }
  if (in) ins |= bits_from(open);
  *inq = in;
  *inside = ins;
  *close = cl;
  return k > 64 ? k - 64 : 0;
}

/* The records of d[0, len) (a range the cuts made) checked a block at a
 * time: a record's delimiters outside quotes must be ncols - 1 and the
 * byte after each closing quote a delimiter, \n or \r\n. The first record
 * whose block shows a fault, and the bytes after the last block, are left
 * to check_bytes from the start of the record they are in. one: ncols is 1
 * (blank lines are records), a constant where it is inlined. */
static inline __attribute__((always_inline)) void check_walk(const char *d, int64_t len,
                                                             int64_t ncols, int skip_first,
                                                             const scan_chars *cp,
                                                             int64_t *records, check_bad *bad,
                                                             const int one) {
  scan_chars c = *cp;
  int64_t i = 0, n = 0, rec = 0; /* rec: where the record under way starts */
  int64_t delims = 0;            /* its delimiters outside quotes so far */
  int inq = 0, k0 = 0, check = !skip_first;
  scan_classify_fn classify = c.blocks ? scan_classify() : NULL;
  if (classify && ncols >= 1) {
    scan_block run[SCAN_RUN];
    uint64_t first = 1, after = 0; /* after: bit 0 follows a closing quote */
    while (i + 64 <= len) {
      int64_t nb = (len - i) / 64 < SCAN_RUN ? (len - i) / 64 : SCAN_RUN;
      classify(d + i, nb, &c, run);
      for (int64_t b = 0; b < nb; b++, i += 64) {
        const scan_block *m = &run[b];
        uint64_t inside, close;
        k0 = block_quotes(m, d, i, len, k0, first, &inq, c, &inside, &close);
        first = m->sep >> 63;
        uint64_t ends = m->nl & ~inside, dl = m->sep & ~m->nl & ~inside;
        /* A closing quote before \r\n is followed by \r: looked at here. */
        uint64_t odd = (close << 1 | after) & ~m->sep;
        after = close >> 63;
        int fault = 0;
        while (odd) {
          int64_t j = i + __builtin_ctzll(odd);
          if (!(d[j] == '\r' && j + 1 < len && d[j + 1] == '\n')) {
            fault = 1;
            break;
          }
          odd &= odd - 1;
        }
        if (fault) goto bytes;
        int from = 0;
        while (ends) {
          int p = __builtin_ctzll(ends);
          delims += __builtin_popcountll(dl & bits_from(from) & bits_below(p));
          /* A blank line (\n or \r\n from the record's start) is no
           * record, neither checked nor counted, nor the header, unless
           * there is one column: then it is one of an empty field. */
          int64_t at = i + p;
          if (one || (at != rec && !(at == rec + 1 && d[rec] == '\r' && c.q != '\r'))) {
            if (check && delims != ncols - 1) goto bytes;
            check = 1;
            n++;
          }
          delims = 0;
          rec = i + p + 1;
          from = p + 1;
          ends &= ends - 1;
        }
        delims += __builtin_popcountll(dl & bits_from(from));
      }
    }
  }
bytes:
  *records = n;
  check_bytes(d, len, rec, ncols, !check, &c, records, bad);
}

/* check_walk made twice, so that the walk for two or more columns tests
 * no column count at each record (about 4 instructions a record more in
 * callgrind otherwise). */
PT__POPCNT_CLONES
static void check_from(const char *d, int64_t len, int64_t ncols, int skip_first,
                       const scan_chars *cp, int64_t *records, check_bad *bad) {
  if (ncols == 1) check_walk(d, len, 1, skip_first, cp, records, bad, 1);
  else check_walk(d, len, ncols, skip_first, cp, records, bad, 0);
}

int pt__csv_check_records(const char *d, int64_t len, int64_t ncols, int header,
                          int64_t first_line, const char *name, const pt_csv_options *opts,
                          int64_t *records, pt_error *err) {
  pt_csv_options defaults;
  if (!opts) {
    pt_csv_options_init(&defaults);
    opts = &defaults;
  }
  scan_chars c;
  scan_chars_init(&c, opts);
  check_bad bad = {-1, 0, 0};
  *records = 0;
  /* From the header on: the blank lines before it are no records, even
   * where blank lines are (one column). */
  int64_t blank = 0, h = header ? pt__csv_header_start(d, len, opts, &blank) : 0;
  if (len > h) check_from(d + h, len - h, ncols, header, &c, records, &bad);
  if (bad.at < 0) {
    if (header && *records > 0) (*records)--;
    return PT_OK;
  }
  bad.at += h;
  /* Lines are counted only here, for the message. */
  int64_t line = (first_line > 0 ? first_line : 1) + pt__csv_count_newlines(d, bad.at);
  char why[160];
  if (bad.quote)
    snprintf(why, sizeof why, "unterminated quote or text after a closing quote");
  else
    snprintf(why, sizeof why, "%lld fields, the schema has %lld", (long long)bad.fields,
             (long long)ncols);
  return pt__errorf(err, PT_EFORMAT,
                    "csv: %s: line %lld: malformed record: %s; fix the file or read with mode "
                    "DROPMALFORMED or PERMISSIVE",
                    name ? name : "", (long long)line, why);
}

int64_t pt__csv_record_start_lines(const char *d, int64_t len, int64_t offset,
                                   const pt_csv_options *opts, int64_t *newlines) {
  pt_csv_options defaults;
  if (!opts) {
    pt_csv_options_init(&defaults);
    opts = &defaults;
  }
  if (offset <= 0) return 0;
  if (offset > len) {
    *newlines += pt__csv_count_newlines(d, len);
    return len;
  }
  int inq = 0;
  return scan_from(d, len, 0, &inq, offset, opts, newlines);
}

int64_t pt__csv_count_newlines(const char *d, int64_t n) {
  int64_t k = 0, i = 0;
#if defined(__SSE2__)
  __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
  while (i + 16 <= n) {
    /* Per-byte counters (a match is -1, subtracted), summed before they can
     * wrap at 255. */
    __m128i acc = zero;
    for (int r = 0; r < 255 && i + 16 <= n; r++, i += 16) {
      __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
      acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(x, nl));
    }
    __m128i sums = _mm_sad_epu8(acc, zero);
    k += _mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
  }
#endif
  for (; i < n; i++) k += d[i] == '\n';
  return k;
}

/* ------------------------------------------------------------------------ */
/* Record starts for many cut points at once, on several threads. The quote
 * state at a byte depends on every byte before it, but only through one bit
 * at a byte that follows a newline: so the text is cut into spans at such
 * bytes, each span is scanned from both states on a thread of its own, and
 * the states are chained in span order afterwards. */

/* What one scan of a span from one entry state found. */
typedef struct span_hyp {
  int64_t first, first_nl; /* first record start after the span's start (-1: none) */
  int64_t *start, *nl;     /* per target of the span (start -1: none in the span);
                            * owned by the span_job's arrays */
  int exit;                /* quote state at the span's end */
  int done;                /* 0: not scanned yet */
} span_hyp;

typedef struct span_job {
  const char *d;
  int64_t len, begin, end; /* the span [begin, end) of d[0, len) */
  const int64_t *targets;  /* the span's targets, ascending; n of them */
  int64_t n, newlines;     /* newlines: \n bytes in the span */
  int both;                /* 0: scan only from state 0 (the first span) */
  span_hyp h[2];
  const pt_csv_options *o;
} span_job;

/* A start the scan returned at the span's end is one only where the state
 * there is 0 or the data ends. */
static int64_t span_found(const span_job *j, int64_t r, int st) {
  return r < j->end || st == 0 || j->end == j->len ? r : -1;
}

static void span_scan(span_job *j, int h) {
  span_hyp *y = &j->h[h];
  int st = h;
  int64_t nl = 0, r = scan_from(j->d, j->end, j->begin, &st, j->begin + 1, j->o, &nl);
  y->first = j->begin == 0 && h == 0 ? 0 : span_found(j, r, st);
  y->first_nl = y->first == 0 ? 0 : nl;
  if (y->first == 0) { /* the data's start: scan on from there */
    r = 0;
    st = 0;
    nl = 0;
  }
  for (int64_t k = 0; k < j->n; k++) {
    int64_t t = j->targets[k];
    if (y->first < 0) {
      y->start[k] = -1;
      continue;
    }
    if (r < t && r < j->end) r = scan_from(j->d, j->end, r, &st, t, j->o, &nl);
    y->start[k] = span_found(j, r, st);
    y->nl[k] = nl;
  }
  if (r < j->end) r = scan_from(j->d, j->end, r, &st, j->end + 1, j->o, &nl);
  y->exit = st;
  y->done = 1;
  j->newlines = nl;
}

/* A start a scan bounded at lim returned: one only where the state there is
 * 0 after a newline (lim inside the span), as span_found at the span's end. */
static int64_t found_before(const span_job *j, int64_t lim, int64_t r, int st) {
  if (lim == j->end) return span_found(j, r, st);
  return r < lim || (st == 0 && j->d[lim - 1] == '\n') ? r : -1;
}

/* Both states' scans of a span usually meet within a record or two: a
 * wrong guess takes a quoted field's opening quote as a closing one and its
 * closing quote as literal text, and is outside quotes at the record's end
 * like the right one. Where the two stop at the same record start, the rest
 * of the span is the same for both and is scanned once. Returns 0 when they
 * do not meet within MEET bytes (text without quotes: the inside guess never
 * ends) or a target lies before they meet. */
static int span_scan_met(span_job *j) {
  enum { TRIES = 64, MEET = 1 << 20 };
  int64_t lim = j->end - j->begin > MEET ? j->begin + MEET : j->end;
  int64_t p[2], first_nl[2], nl[2] = {0, 0};
  int st[2];
  for (int h = 0; h < 2; h++) {
    st[h] = h;
    p[h] = scan_from(j->d, lim, j->begin, &st[h], j->begin + 1, j->o, &nl[h]);
    first_nl[h] = nl[h];
  }
  int64_t first[2] = {found_before(j, lim, p[0], st[0]), found_before(j, lim, p[1], st[1])};
  if (first[0] < 0 || first[1] < 0) return 0;
  for (int k = 0; k < TRIES && p[0] != p[1]; k++) {
    int h = p[0] < p[1] ? 0 : 1;
    if (p[h] >= lim) return 0;
    p[h] = scan_from(j->d, lim, p[h], &st[h], p[1 - h], j->o, &nl[h]);
  }
  int64_t met = p[0];
  if (p[0] != p[1] || met >= lim || st[0] != 0 || st[1] != 0) return 0;
  if (j->n > 0 && j->targets[0] <= met) return 0;
  /* From met on, one scan (the newlines before met are the same count). */
  span_hyp *y = &j->h[0];
  int s = 0;
  int64_t r = met, n = nl[0];
  for (int64_t k = 0; k < j->n; k++) {
    int64_t t = j->targets[k];
    if (r < t && r < j->end) r = scan_from(j->d, j->end, r, &s, t, j->o, &n);
    y->start[k] = span_found(j, r, s);
    y->nl[k] = n;
  }
  if (r < j->end) r = scan_from(j->d, j->end, r, &s, j->end + 1, j->o, &n);
  for (int h = 0; h < 2; h++) {
    j->h[h].first = first[h];
    j->h[h].first_nl = first_nl[h];
    j->h[h].exit = s;
    j->h[h].done = 1;
    if (h == 1) {
      memcpy(j->h[1].start, y->start, (size_t)j->n * sizeof *y->start);
      memcpy(j->h[1].nl, y->nl, (size_t)j->n * sizeof *y->nl);
    }
  }
  j->newlines = n;
  return 1;
}

/* The scan from state 0 always; the one from state 1 only where the two
 * met early: otherwise it is run after the threads, and only when the span
 * turns out to start inside quotes (a quoted newline just before it). */
static void *span_main(void *arg) {
  span_job *j = arg;
  if (j->both && span_scan_met(j)) return NULL;
  span_scan(j, 0);
  return NULL;
}

int pt__csv_cuts(const char *d, int64_t len, const int64_t *targets, int64_t n,
                 const pt_csv_options *opts, int threads, int64_t min_span, int64_t *starts,
                 int64_t *lines, pt_error *err) {
  pt_csv_options defaults;
  if (!opts) {
    pt_csv_options_init(&defaults);
    opts = &defaults;
  }
  if (n <= 0) return PT_OK;
  /* The spans cover [0, the first byte after a newline from the last
   * target on); the rest is scanned below only when a target's record
   * runs on into it. */
  int64_t last = targets[n - 1] < 1 ? 1 : targets[n - 1];
  const char *nlp = last - 1 < len ? memchr(d + last - 1, '\n', (size_t)(len - last + 1)) : NULL;
  int64_t reach = nlp ? (int64_t)(nlp - d) + 1 : len;
  /* Spans of equal length (the two states' scans of one nearly always meet
   * early, so a span costs one scan), none under min_span. */
  int64_t want = threads < 1 ? 1 : threads > 16 ? 16 : threads;
  while (want > 1 && reach / want < (min_span > 1 ? min_span : 1)) want--;
  /* jobs, cells (the spans' per-target results), tid and started: owned
   * here, freed before returning. */
  span_job *jobs = pt__calloc((size_t)want, sizeof *jobs);
  int64_t *cells = pt__calloc((size_t)(4 * n + 4), sizeof *cells);
  pthread_t *tid = pt__calloc((size_t)want, sizeof *tid);
  int *started = pt__calloc((size_t)want, sizeof *started);
  if (!jobs || !cells || !tid || !started) {
    pt__free(jobs);
    pt__free(cells);
    pt__free(tid);
    pt__free(started);
    return pt__errorf(err, PT_ENOMEM, "csv: out of memory finding record starts");
  }
  int64_t ns = 0, at = 0, ti = 0;
  for (int64_t s = 0; s < want && at < reach; s++) {
    int64_t end = s == want - 1 ? reach : (reach / want) * (s + 1);
    if (end < reach) { /* just past a newline, so that the state is one bit */
      const char *p = memchr(d + end, '\n', (size_t)(reach - end));
      end = p ? (int64_t)(p - d) + 1 : reach;
    }
    if (end <= at) continue;
    span_job *j = &jobs[ns++];
    j->d = d;
    j->len = len;
    j->begin = at;
    j->end = end;
    j->both = at > 0;
    j->o = opts;
    /* A target belongs to the span that holds the byte before it. */
    int64_t k0 = ti;
    while (ti < n && (targets[ti] - 1 < end || end == reach)) ti++;
    j->targets = targets + k0;
    j->n = ti - k0;
    for (int h = 0; h < 2; h++) {
      j->h[h].start = cells + 4 * k0 + 2 * h * j->n;
      j->h[h].nl = cells + 4 * k0 + 2 * h * j->n + j->n;
    }
    at = end;
  }
  for (int64_t s = 1; s < ns; s++)
    started[s] = pthread_create(&tid[s], NULL, span_main, &jobs[s]) == 0;
  for (int64_t s = 0; s < ns; s++)
    if (!started[s]) span_main(&jobs[s]);
  for (int64_t s = 1; s < ns; s++)
    if (started[s]) pthread_join(tid[s], NULL);
  /* Chain the states: a target whose record runs past its span starts at
   * the first record start of a later span (scanned from the state its
   * predecessor ends in). */
  int st = 0;
  int64_t base = 0, pend = 0; /* targets [pend, k) wait for a start */
  int64_t k = 0;
  for (int64_t s = 0; s < ns; s++) {
    span_job *j = &jobs[s];
    if (!j->h[st].done) span_scan(j, st);
    const span_hyp *y = &j->h[st];
    if (pend < k && y->first >= 0) {
      for (; pend < k; pend++) {
        starts[pend] = y->first;
        lines[pend] = 1 + base + y->first_nl;
      }
    }
    for (int64_t m = 0; m < j->n; m++, k++) {
      if (y->start[m] >= 0 && pend == k) {
        starts[k] = y->start[m];
        lines[k] = 1 + base + y->nl[m];
        pend = k + 1;
      }
    }
    base += j->newlines;
    st = y->exit;
  }
  if (pend < n) { /* into the bytes past the spans */
    int64_t nl = 0, r = scan_from(d, len, reach, &st, reach + 1, opts, &nl);
    for (; pend < n; pend++) {
      starts[pend] = r;
      lines[pend] = 1 + base + nl;
    }
  }
  pt__free(jobs);
  pt__free(cells);
  pt__free(tid);
  pt__free(started);
  return PT_OK;
}

/* Record starts found near each target alone, with no pass over the text
 * before it: a span from a line start some way before the target is scanned
 * from both quote states, as span_scan_met does, and where the two meet
 * before the target the rest is the same whatever came earlier. Text
 * without quotes never lets the two meet (the inside guess never ends): 0
 * then, and the caller scans the whole text with pt__csv_cuts. */
int pt__csv_cuts_near(const char *d, int64_t len, const int64_t *targets, int64_t n,
                      const pt_csv_options *opts, int64_t *starts) {
  /* BACK: most records are far shorter, so the scans meet within it;
   * AHEAD: how long the record at a target may run. */
  enum { BACK = 1 << 16, AHEAD = 1 << 16 };
  pt_csv_options defaults;
  if (!opts) {
    pt_csv_options_init(&defaults);
    opts = &defaults;
  }
  for (int64_t k = 0; k < n; k++) {
    int64_t t = targets[k];
    if (t >= len) {
      starts[k] = len;
      continue;
    }
    int64_t b0 = t > BACK ? t - BACK : 0, begin = 0;
    if (b0 > 0) {
      const char *p = memchr(d + b0, '\n', (size_t)(t - 1 - b0));
      if (!p) return 0; /* a line longer than BACK before the target */
      begin = (int64_t)(p - d) + 1;
    }
    const char *p = t + AHEAD < len ? memchr(d + t + AHEAD, '\n', (size_t)(len - t - AHEAD)) : NULL;
    int64_t end = p ? (int64_t)(p - d) + 1 : len;
    int64_t cell[4];
    span_job j = {.d = d, .len = len, .begin = begin, .end = end, .targets = &t, .n = 1,
                  .both = begin > 0, .o = opts};
    for (int h = 0; h < 2; h++) {
      j.h[h].start = cell + 2 * h;
      j.h[h].nl = cell + 2 * h + 1;
    }
    if (begin == 0) span_scan(&j, 0); /* the data's start: the state is known */
    else if (!span_scan_met(&j)) return 0;
    if (j.h[0].start[0] < 0) return 0; /* the record runs on past AHEAD */
    starts[k] = j.h[0].start[0];
  }
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Field conversion. Each parser returns 1 on success. */

static int int_fits(char fmt, int64_t v) {
  switch (fmt) {
  case 'c': return v >= INT8_MIN && v <= INT8_MAX;
  case 'C': return v >= 0 && v <= UINT8_MAX;
  case 's': return v >= INT16_MIN && v <= INT16_MAX;
  case 'S': return v >= 0 && v <= UINT16_MAX;
  case 'i': return v >= INT32_MIN && v <= INT32_MAX;
  case 'I': return v >= 0 && v <= (int64_t)UINT32_MAX;
  case 'L': return v >= 0;
  default: return 1;
  }
}



static inline int is_null(const pt_csv_options *o, const record *r, const field *f) {
  if (f->quoted) return 0;
  const char *s = f->s;
  (void)r;
  if (!o->null_values) return f->len == 0;
  for (int64_t i = 0; i < o->n_null_values; i++) {
    if ((int64_t)strlen(o->null_values[i]) == f->len && memcmp(o->null_values[i], s, (size_t)f->len) == 0)
      return 1;
  }
  return 0;
}

static int kind_of(const char *s, int64_t n) {
  int64_t i;
  double d;
  if (pt__csv_parse_bool(s, n, &i)) return K_BOOL;
  if (pt__csv_parse_int(s, n, &i)) return K_INT;
  if (pt__csv_parse_double(s, n, &d)) return K_DOUBLE;
  if (pt__csv_parse_date(s, n, &i)) return K_DATE;
  if (pt__csv_parse_ts(s, n, &i)) return K_TS;
  return K_STRING;
}

static int merge_kind(int a, int b) {
  if (a == K_NONE || a == b) return b;
  if (b == K_NONE) return a;
  if ((a == K_INT && b == K_DOUBLE) || (a == K_DOUBLE && b == K_INT)) return K_DOUBLE;
  if ((a == K_DATE && b == K_TS) || (a == K_TS && b == K_DATE)) return K_TS;
  return K_STRING;
}

static const char *kind_format(int k) {
  switch (k) {
  case K_BOOL: return "b";
  case K_INT: return "l";
  case K_DOUBLE: return "g";
  case K_DATE: return "tdD";
  case K_TS: return "tsu:";
  default: return "u";
  }
}

static char *dup_n(const char *s, int64_t n) {
  char *p = pt__malloc((size_t)n + 1);
  if (p) {
    memcpy(p, s, (size_t)n);
    p[n] = 0;
  }
  return p;
}

/* Builds the schema: column names from the header (or _c0, _c1 ...), types
 * from opts->schema or inferred from the first infer_rows records. */
static int make_schema(const char *d, int64_t len, const char *name, const pt_csv_options *o,
                       struct ArrowSchema *out, pt_error *err) {
  record r = {0};
  stops t;
  stops_init(&t, o);
  int64_t pos = 0, line = 1, ncols = 0;
  int *kinds = NULL;
  char **names = NULL;
  int rc = PT_OK;
  int corrupt = o->mode == PT_CSV_PERMISSIVE && o->corrupt_column;
  out->release = NULL;
  if (o->schema) {
    rc = pt_schema_copy(o->schema, out, err);
    if (rc || !corrupt) return rc;
    /* Appending the corrupt-record column means rebuilding the node. */
    struct ArrowSchema given = *out;
    rc = pt_schema_init(out, "+s", NULL, 0, given.n_children + 1, err);
    if (rc == PT_OK) {
      for (int64_t i = 0; i < given.n_children && rc == PT_OK; i++)
        rc = pt_schema_copy(given.children[i], out->children[i], err);
      if (rc == PT_OK)
        rc = pt_schema_init(out->children[given.n_children], "u", o->corrupt_column,
                            ARROW_FLAG_NULLABLE, 0, err);
      if (rc) out->release(out);
    }
    given.release(&given);
    return rc;
  }
  /* The header, or the record that gives the number of columns, is the
   * first line that is not blank, as in pyarrow.csv; in a file of blank
   * lines only, the first line: one column, as in DuckDB. Whether blank
   * lines are records follows from the number. */
  pos = pt__csv_header_start(d, len, o, &line);
  if (pos < len) {
    rc = next_record(d, len, &pos, &line, o, &t, &r);
    if (rc) goto fail;
    ncols = r.n;
    names = calloc((size_t)ncols, sizeof *names);
    kinds = calloc((size_t)ncols, sizeof *kinds);
    if (!names || !kinds) {
      rc = pt__errorf(err, PT_ENOMEM, "csv: out of memory");
      goto fail;
    }
    for (int64_t c = 0; c < ncols; c++) {
      char tmp[32];
      snprintf(tmp, sizeof tmp, "_c%lld", (long long)c);
      names[c] = o->header ? dup_n(r.fields[c].s, r.fields[c].len) : pt__strdup(tmp);
      if (!names[c]) {
        rc = pt__errorf(err, PT_ENOMEM, "csv: out of memory");
        goto fail;
      }
    }
    if (!o->header) pos = 0, line = 1;
    for (int64_t k = 0; k < o->infer_rows; k++) {
      /* A blank line is no record or a null (one column): no say in types
       * either way, nor one of the infer_rows. */
      pos = pt__csv_skip_blank_lines(d, len, pos, o, &line);
      if (pos >= len) break;
      rc = next_record(d, len, &pos, &line, o, &t, &r);
      if (rc) goto fail;
      if (r.bad_quote || r.n != ncols) continue; /* malformed: no say in types */
      for (int64_t c = 0; c < ncols; c++) {
        field *f = &r.fields[c];
        if (is_null(o, &r, f)) continue;
        kinds[c] = merge_kind(kinds[c], f->quoted ? K_STRING : kind_of(f->s, f->len));
      }
    }
  }
  rc = pt_schema_init(out, "+s", NULL, 0, ncols + corrupt, err);
  for (int64_t c = 0; c < ncols && rc == PT_OK; c++)
    rc = pt_schema_init(out->children[c], kind_format(kinds[c]), names[c], ARROW_FLAG_NULLABLE, 0,
                        err);
  if (rc == PT_OK && corrupt)
    rc = pt_schema_init(out->children[ncols], "u", o->corrupt_column, ARROW_FLAG_NULLABLE, 0, err);
  if (rc && out->release) out->release(out);
fail:
  if (rc == PT_ENOMEM && err && !err->message[0]) pt__errorf(err, PT_ENOMEM, "csv: out of memory");
  if (rc) pt__error_prefix(err, rc, "csv: %s: ", name);
  for (int64_t c = 0; names && c < ncols; c++) pt__free(names[c]);
  free(names);
  free(kinds);
  rec_free(&r);
  return rc;
}

/* A timestamp in µs to the column's unit (fmt "ts?:..."'s third byte); 0
 * when it does not fit. */
static int ts_unit(char unit, int64_t *v) {
  int64_t i = *v;
  switch (unit) {
  case 's': *v = i / 1000000 - (i % 1000000 < 0); return 1;
  case 'm': *v = i / 1000 - (i % 1000 < 0); return 1;
  case 'n':
    if (i > INT64_MAX / 1000 || i < INT64_MIN / 1000) return 0;
    *v = i * 1000;
    return 1;
  default: return 1;
  }
}

/* One converted field of the record being read. */
enum { CELL_NULL, CELL_VALUE };
typedef struct cell {
  int state;
  int64_t i; /* bool, integers, date32, timestamps */
  double d;  /* floats */
} cell;

/* ------------------------------------------------------------------------ */
/* Columns written straight into Arrow buffers: where every column's type
 * is one of these, the reader appends to them instead of the generic
 * builders (a tenth of the read went to their per-value dispatch). */

enum { OUT_BOOL, OUT_INT, OUT_FLOAT, OUT_DOUBLE, OUT_STRING };

typedef struct col_out {
  int kind;
  int w;              /* OUT_INT: bytes per value; OUT_STRING: bytes per offset */
  uint8_t *validity;  /* one bit per row, 1 = valid */
  uint8_t *values;    /* values, bits (bool) or offsets */
  uint8_t *data;      /* OUT_STRING: the bytes */
  int64_t values_cap, data_len, data_cap, nulls; /* bytes, bytes, bytes, rows */
} col_out;

typedef struct cols {
  col_out *c;
  int64_t n, rows, cap; /* columns; rows appended; rows the buffers hold */
} cols;

/* The kind for a column of format fmt; -1 where only the builders go. */
static int out_kind(const char *fmt, int *w) {
  switch (fmt[0]) {
  case 'b': return OUT_BOOL;
  case 'c': case 'C': *w = 1; return OUT_INT;
  case 's': case 'S': *w = 2; return OUT_INT;
  case 'i': case 'I': *w = 4; return OUT_INT;
  case 'l': case 'L': *w = 8; return OUT_INT;
  case 'f': return OUT_FLOAT;
  case 'g': return OUT_DOUBLE;
  case 't':
    if (fmt[1] == 'd' && fmt[2] == 'D') return *w = 4, OUT_INT;
    if (fmt[1] == 's') return *w = 8, OUT_INT;
    return -1;
  case 'u': case 'z': *w = 4; return OUT_STRING;
  case 'U': case 'Z': *w = 8; return OUT_STRING;
  default: return -1;
  }
}

/* Grows *p (64-byte aligned, *cap bytes, used bytes in use) to hold need
 * bytes; capacities stay multiples of 64. */
static int grow_buf(uint8_t **p, int64_t *cap, int64_t used, int64_t need) {
  if (need <= *cap) return PT_OK;
  int64_t n = *cap ? *cap : 1024;
  while (n < need) n *= 2;
  uint8_t *q = pt__malloc_aligned((size_t)n);
  if (!q) return PT_ENOMEM;
  if (used) memcpy(q, *p, (size_t)used);
  pt__free(*p);
  *p = q;
  *cap = n;
  return PT_OK;
}

static int64_t bits_bytes(int64_t rows) { return (rows + 7) / 8; }

static int64_t values_bytes(const col_out *o, int64_t rows) {
  switch (o->kind) {
  case OUT_BOOL: return bits_bytes(rows);
  case OUT_INT: return rows * o->w;
  case OUT_FLOAT: return rows * 4;
  case OUT_DOUBLE: return rows * 8;
  default: return (rows + 1) * o->w;
  }
}

static void cols_free(cols *cs) {
  for (int64_t c = 0; cs->c && c < cs->n; c++) {
    pt__free(cs->c[c].validity);
    pt__free(cs->c[c].values);
    pt__free(cs->c[c].data);
  }
  pt__free(cs->c);
  memset(cs, 0, sizeof *cs);
}

/* 1 when every column has a kind (then *cs is ready), 0 when not, -1 when
 * out of memory. */
static int cols_init(cols *cs, const struct ArrowSchema *schema) {
  memset(cs, 0, sizeof *cs);
  for (int64_t c = 0; c < schema->n_children; c++) {
    int w = 0;
    if (schema->children[c]->dictionary || out_kind(schema->children[c]->format, &w) < 0)
      return 0;
  }
  cs->n = schema->n_children;
  cs->c = pt__calloc((size_t)cs->n + 1, sizeof *cs->c);
  if (!cs->c) return -1;
  for (int64_t c = 0; c < cs->n; c++)
    cs->c[c].kind = out_kind(schema->children[c]->format, &cs->c[c].w);
  return 1;
}

/* Room for one more row in every column. */
static int cols_reserve(cols *cs) {
  if (cs->rows < cs->cap && cs->cap > 0) return PT_OK;
  int64_t cap = cs->cap ? cs->cap * 2 : 4096;
  for (int64_t c = 0; c < cs->n; c++) {
    col_out *o = &cs->c[c];
    int64_t vcap = o->values_cap, bcap = bits_bytes(cs->cap);
    bcap = (bcap + 63) / 64 * 64;
    if (grow_buf(&o->validity, &bcap, bits_bytes(cs->rows), bits_bytes(cap)) ||
        grow_buf(&o->values, &vcap, o->values ? values_bytes(o, cs->rows) : 0,
                 values_bytes(o, cap)))
      return PT_ENOMEM;
    o->values_cap = vcap;
    if (o->kind == OUT_STRING && cs->rows == 0) memset(o->values, 0, (size_t)o->w);
  }
  cs->cap = cap;
  return PT_OK;
}

/* Sizes the columns for about the records of d[0, n) before the first row:
 * rows from the newlines of its first 64 KiB, string bytes as the text's
 * share per string column. Growing by doubling instead copied every buffer
 * about once more and touched as many fresh pages again (a tenth of a
 * read's time went to the kernel zeroing them). */
static int cols_presize(cols *cs, const char *d, int64_t n) {
  int64_t sample = n < 65536 ? n : 65536, nl = pt__csv_count_newlines(d, sample);
  if (nl == 0 || cs->cap > 0) return PT_OK;
  int64_t rows = n / sample * nl + (n % sample) * nl / sample;
  rows += rows / 16 + 64;
  if (rows > (int64_t)1 << 24) rows = (int64_t)1 << 24;
  int64_t strings = 0;
  for (int64_t c = 0; c < cs->n; c++) strings += cs->c[c].kind == OUT_STRING;
  cs->cap = 0;
  for (int64_t c = 0; c < cs->n; c++) {
    col_out *o = &cs->c[c];
    int64_t bcap = 0;
    if (grow_buf(&o->validity, &bcap, 0, (bits_bytes(rows) + 63) / 64 * 64) ||
        grow_buf(&o->values, &o->values_cap, 0, values_bytes(o, rows)))
      return PT_ENOMEM;
    if (o->kind == OUT_STRING) {
      memset(o->values, 0, (size_t)o->w);
      if (grow_buf(&o->data, &o->data_cap, 0, n / strings + 64)) return PT_ENOMEM;
    }
  }
  cs->cap = rows;
  return PT_OK;
}

/* Appends one value (v NULL: null; s, n: a string's bytes) to column o at
 * row i (room reserved). */
static int col_put(col_out *o, int64_t i, const cell *v, const char *s, int64_t n) {
  pt__bit_set(o->validity, i, v != NULL);
  if (!v) o->nulls++;
  switch (o->kind) {
  case OUT_BOOL: pt__bit_set(o->values, i, v ? (int)v->i : 0); return PT_OK;
  case OUT_INT: {
    int64_t x = v ? v->i : 0;
    switch (o->w) {
    case 1: o->values[i] = (uint8_t)x; break;
    case 2: { int16_t y = (int16_t)x; memcpy(o->values + i * 2, &y, 2); break; }
    case 4: pt__store_i32(o->values + i * 4, (int32_t)x); break;
    default: pt__store_i64(o->values + i * 8, x); break;
    }
    return PT_OK;
  }
  case OUT_FLOAT: {
    float f = v ? (float)v->d : 0.0f;
    memcpy(o->values + i * 4, &f, 4);
    return PT_OK;
  }
  case OUT_DOUBLE: {
    double d = v ? v->d : 0.0;
    memcpy(o->values + i * 8, &d, 8);
    return PT_OK;
  }
  default:
    if (!v) n = 0;
    if (o->w == 4 && o->data_len + n > INT32_MAX) return PT_ERANGE;
    if (grow_buf(&o->data, &o->data_cap, o->data_len, o->data_len + n)) return PT_ENOMEM;
    if (n) memcpy(o->data + o->data_len, s, (size_t)n);
    o->data_len += n;
    if (o->w == 4) pt__store_i32(o->values + (i + 1) * 4, (int32_t)o->data_len);
    else pt__store_i64(o->values + (i + 1) * 8, o->data_len);
    return PT_OK;
  }
}

/* The columns as a struct array of schema; on PT_OK the buffers pass to
 * *out. */
static int cols_finish(cols *cs, const struct ArrowSchema *schema, struct ArrowArray *out,
                       pt_error *err) {
  if (cols_reserve(cs)) return pt__errorf(err, PT_ENOMEM, "csv: out of memory");
  int rc = pt__array_init(out, 1, cs->n, false, err);
  if (rc) return rc;
  out->length = cs->rows;
  for (int64_t c = 0; c < cs->n; c++) {
    col_out *o = &cs->c[c];
    struct ArrowArray *ch = out->children[c];
    rc = pt__array_init(ch, o->kind == OUT_STRING ? 3 : 2, 0, false, err);
    if (rc) {
      out->release(out);
      return rc;
    }
    int64_t vb = values_bytes(o, cs->rows), bb = bits_bytes(cs->rows);
    /* Zero the bytes past the values up to the next 64 (capacities are
     * multiples of 64), so that what is written out is the same each time. */
    memset(o->values + vb, 0, (size_t)((vb + 63) / 64 * 64 - vb));
    memset(o->validity + bb, 0, (size_t)((bb + 63) / 64 * 64 - bb));
    ch->length = cs->rows;
    ch->null_count = o->nulls;
    if (o->nulls) {
      pt__array_set_buffer(ch, 0, o->validity, true);
    } else {
      pt__free(o->validity);
    }
    pt__array_set_buffer(ch, 1, o->values, true);
    o->validity = o->values = NULL;
    if (o->kind == OUT_STRING) {
      if (grow_buf(&o->data, &o->data_cap, o->data_len, o->data_len + 1)) {
        out->release(out);
        return pt__errorf(err, PT_ENOMEM, "csv: out of memory");
      }
      memset(o->data + o->data_len, 0, (size_t)((o->data_len + 63) / 64 * 64 - o->data_len));
      pt__array_set_buffer(ch, 2, o->data, true);
      o->data = NULL;
    }
  }
  (void)schema;
  return PT_OK;
}

static int read_records(const char *d, int64_t len, int64_t begin, int64_t end,
                        int64_t first_line, const char *name, const pt_csv_options *opts,
                        int at_start, struct ArrowSchema *schema_out, struct ArrowArray *out,
                        int64_t *next, int64_t *next_line, pt_error *err);

int pt_csv_read(const char *d, int64_t len, int64_t begin, int64_t end, const char *name,
                const pt_csv_options *opts, struct ArrowSchema *schema_out,
                struct ArrowArray *out, pt_error *err) {
  return pt__csv_read_lines(d, len, begin, end, 1, name, opts, schema_out, out, err);
}

int pt__csv_read_lines(const char *d, int64_t len, int64_t begin, int64_t end, int64_t first_line,
                       const char *name, const pt_csv_options *opts,
                       struct ArrowSchema *schema_out, struct ArrowArray *out, pt_error *err) {
  return read_records(d, len, begin, end, first_line, name, opts, 0, schema_out, out, NULL, NULL,
                      err);
}

int pt__csv_read_from(const char *d, int64_t len, int64_t begin, int64_t end, int64_t first_line,
                      const char *name, const pt_csv_options *opts,
                      struct ArrowSchema *schema_out, struct ArrowArray *out, int64_t *next,
                      int64_t *next_line, pt_error *err) {
  return read_records(d, len, begin, end, first_line, name, opts, 1, schema_out, out, next,
                      next_line, err);
}

/* The records that start in [begin, end) (begin a record start when
 * at_start: then the first record start at or after end is where parsing
 * gets to, with no separate scan for it); *next and *next_line, when
 * given, say where the next record starts. */
static int read_records(const char *d, int64_t len, int64_t begin, int64_t end,
                        int64_t first_line, const char *name, const pt_csv_options *opts,
                        int at_start, struct ArrowSchema *schema_out, struct ArrowArray *out,
                        int64_t *next, int64_t *next_line, pt_error *err) {
  pt_csv_options defaults;
  if (!opts) {
    pt_csv_options_init(&defaults);
    opts = &defaults;
  }
  if (!name) name = "<csv>";
  schema_out->release = NULL;
  out->release = NULL;
  if (len < 0 || begin < 0 || end < begin || (!d && len > 0))
    return pt__errorf(err, PT_EINVAL, "csv: %s: bad byte range [%lld, %lld) of %lld bytes", name,
                      (long long)begin, (long long)end, (long long)len);
  if (opts->delimiter == '\n' || opts->delimiter == '\r' || opts->delimiter == 0 ||
      (opts->quote && (opts->quote == opts->delimiter || opts->quote == '\n')))
    return pt__errorf(err, PT_EINVAL,
                      "csv: the delimiter must be one byte other than a newline or the quote");
  if (opts->mode < PT_CSV_FAILFAST || opts->mode > PT_CSV_PERMISSIVE)
    return pt__errorf(err, PT_EINVAL, "csv: unknown mode %d", (int)opts->mode);
  if (opts->schema && (!opts->schema->format || strcmp(opts->schema->format, "+s") != 0))
    return pt__errorf(err, PT_EINVAL, "csv: the schema must be a struct (one child per column)");
  PT_RETURN_NOT_OK(make_schema(d, len, name, opts, schema_out, err));

  int corrupt = opts->mode == PT_CSV_PERMISSIVE && opts->corrupt_column;
  int64_t ncols = schema_out->n_children - corrupt;
  pt_builder *b = NULL;
  record r = {0};
  cell *vals = NULL;
  const char **fmts = NULL; /* each column's format, looked up once */
  pt_type *types = calloc((size_t)ncols + 1, sizeof *types);
  pt_builder **children = calloc((size_t)ncols + 1, sizeof *children);
  cols cs;
  int fast = cols_init(&cs, schema_out);
  int rc = !types || !children || fast < 0 ? pt__errorf(err, PT_ENOMEM, "csv: out of memory")
           : fast                          ? PT_OK
                                           : pt_builder_new(schema_out, &b, err);
  for (int64_t c = 0; c < ncols && rc == PT_OK; c++) {
    rc = pt_type_parse(schema_out->children[c], &types[c], err);
    if (!fast) children[c] = pt_builder_child(b, c);
  }
  if (rc) goto done;

  int64_t s = at_start ? begin : pt_csv_record_start(d, len, begin, opts);
  int64_t e = end >= len ? len : at_start ? end : pt_csv_record_start(d, len, end, opts);
  int64_t pos = 0, line = first_line > 0 ? first_line : 1;
  stops st;
  stops_init(&st, opts);
  /* Line numbers count from the file start; a partition counts the newlines
   * before it once. */
  line += pt__csv_count_newlines(d, s);
  if (opts->header && len > 0) {
    /* The header is the first line that is not blank (or the first line
     * of a file of blank lines only): the range that starts at or before
     * it skips it (one that holds only the blank lines before it reads
     * nothing, and skips it too). */
    int64_t blank = 0, h = pt__csv_header_start(d, len, opts, &blank);
    if (s <= h && h < len) {
      line += pt__csv_count_newlines(d + s, h - s);
      pos = h;
      rc = next_record(d, len, &pos, &line, opts, &st, &r);
      if (rc) goto oom;
      s = pos;
    }
  }
  pos = s;
  /* Each field is converted once, into vals, before anything is appended:
   * a dropped or failing record leaves the builders untouched. */
  vals = pt__calloc((size_t)ncols + 1, sizeof *vals);
  fmts = pt__calloc((size_t)ncols + 1, sizeof *fmts);
  if (!vals || !fmts || (fast && e > pos && cols_presize(&cs, d + pos, e - pos))) goto oom;
  for (int64_t c = 0; c < ncols; c++) fmts[c] = schema_out->children[c]->format;
  int fast_records = pt__csv_fast_records && !(opts->escape && opts->escape != opts->quote);
  struct_bits sb;
  struct_bits_init(&sb, opts->delimiter, opts->quote);
  while (pos < e) {
    /* A blank line is no record (as in pyarrow.csv and Spark): not a row,
     * not malformed, but a line. With one column it is a record of one
     * empty field (as in DuckDB), so that the nulls our writer puts there
     * read back. */
    int64_t blank = ncols != 1 ? pt__csv_blank_line(d, len, pos, opts) : 0;
    if (blank) {
      pos += blank;
      line++;
      continue;
    }
    int got = fast_records ? next_record_fast(d, len, &pos, &line, opts, &r, &sb) : 0;
    if (got < 0) goto oom;
    if (!got && (rc = next_record(d, len, &pos, &line, opts, &st, &r))) goto oom;
    int bad = r.bad_quote || r.n != ncols;
    char why[160] = "";
    if (r.bad_quote) snprintf(why, sizeof why, "unterminated quote or text after a closing quote");
    else if (r.n != ncols)
      snprintf(why, sizeof why, "%lld fields, the schema has %lld", (long long)r.n,
               (long long)ncols);
    for (int64_t c = 0; c < ncols; c++) {
      cell *v = &vals[c];
      v->state = CELL_NULL;
      if (c >= r.n || r.fields[c].bad) continue;
      field *f = &r.fields[c];
      if (is_null(opts, &r, f)) continue;
      const char *fmt = fmts[c];
      int ok = 1;
      switch (fmt[0]) {
      case 'b': ok = pt__csv_parse_bool(f->s, f->len, &v->i); break;
      case 'c': case 'C': case 's': case 'S': case 'i': case 'I': case 'l': case 'L':
        ok = pt__csv_parse_int(f->s, f->len, &v->i) && int_fits(fmt[0], v->i);
        break;
      case 'e': case 'f': case 'g': ok = pt__csv_parse_double(f->s, f->len, &v->d); break;
      case 't':
        if (fmt[1] == 'd') {
          ok = pt__csv_parse_date(f->s, f->len, &v->i);
        } else if (pt__csv_parse_ts(f->s, f->len, &v->i)) {
          /* Past int64 nanoseconds: null, and the record stays good. */
          if (!ts_unit(fmt[2], &v->i)) continue;
        } else {
          ok = 0;
        }
        break;
      case 'u': case 'U': ok = pt__utf8_valid((const uint8_t *)f->s, (size_t)f->len); break;
      default: break;
      }
      v->state = ok ? CELL_VALUE : CELL_NULL;
      if (!ok && !bad) {
        bad = 1;
        char tn[64];
        pt_type_name(schema_out->children[c], tn, sizeof tn);
        snprintf(why, sizeof why, "column %lld (%s): cannot read '%.*s' as %s", (long long)c,
                 schema_out->children[c]->name ? schema_out->children[c]->name : "",
                 (int)(f->len < 40 ? f->len : 40), f->s, tn);
      }
    }
    if (bad && opts->mode == PT_CSV_FAILFAST) {
      rc = pt__errorf(err, PT_EFORMAT,
                      "csv: %s: line %lld: malformed record: %s; fix the file or read with "
                      "mode DROPMALFORMED or PERMISSIVE",
                      name, (long long)r.line, why);
      goto done;
    }
    if (bad && opts->mode == PT_CSV_DROPMALFORMED) continue;
    if (fast) {
      if (cols_reserve(&cs)) goto oom;
      for (int64_t c = 0; c < ncols && rc == PT_OK; c++) {
        const cell *v = vals[c].state == CELL_NULL ? NULL : &vals[c];
        col_out *oc = &cs.c[c];
        /* Doubles and 64-bit integers (timestamps) inline: col_put's
         * switches per value were a tenth of the read's instructions. */
        if (v && (oc->kind == OUT_DOUBLE || (oc->kind == OUT_INT && oc->w == 8))) {
          pt__bit_set(oc->validity, cs.rows, 1);
          if (oc->kind == OUT_DOUBLE) memcpy(oc->values + cs.rows * 8, &v->d, 8);
          else pt__store_i64(oc->values + cs.rows * 8, v->i);
          continue;
        }
        /* (A record short of fields has no field c: v is NULL there.) */
        int64_t n = v && oc->kind == OUT_STRING ? r.fields[c].len : 0;
        if (v && oc->kind == OUT_STRING && oc->w == 4 && oc->data_len + n <= oc->data_cap &&
            oc->data_len + n <= INT32_MAX) { /* col_put's string case, with room */
          pt__bit_set(oc->validity, cs.rows, 1);
          if (n) memcpy(oc->data + oc->data_len, r.fields[c].s, (size_t)n); /* data may be NULL */
          oc->data_len += n;
          pt__store_i32(oc->values + (cs.rows + 1) * 4, (int32_t)oc->data_len);
          continue;
        }
        rc = v && cs.c[c].kind == OUT_STRING
                 ? col_put(&cs.c[c], cs.rows, v, r.fields[c].s, r.fields[c].len)
                 : col_put(&cs.c[c], cs.rows, v, NULL, 0);
      }
      if (rc == PT_OK && corrupt) {
        int keep = bad && pt__utf8_valid((const uint8_t *)d + r.raw_begin,
                                         (size_t)(r.raw_end - r.raw_begin));
        cell one = {CELL_VALUE, 0, 0};
        rc = col_put(&cs.c[ncols], cs.rows, keep ? &one : NULL, d + r.raw_begin,
                     r.raw_end - r.raw_begin);
      }
      if (rc == PT_ENOMEM) goto oom;
      if (rc) {
        rc = pt__errorf(err, rc, "csv: %s: line %lld: over 2 GiB of text in one column; "
                        "read fewer bytes at a time", name, (long long)r.line);
        goto done;
      }
      cs.rows++;
      continue;
    }
    for (int64_t c = 0; c < ncols; c++) {
      pt_builder *cb = children[c];
      const cell *v = &vals[c];
      if (v->state == CELL_NULL) {
        rc = pt_builder_append_null(cb, 1);
      } else {
        const char *fmt = schema_out->children[c]->format;
        switch (fmt[0]) {
        case 'e': case 'f': case 'g': rc = pt_builder_append_double(cb, v->d); break;
        case 'u': case 'U': case 'z': case 'Z':
          rc = pt_builder_append_bytes(cb, r.fields[c].s, r.fields[c].len);
          break;
        case 'b': case 'c': case 'C': case 's': case 'S': case 'i': case 'I': case 'l':
        case 'L':
          rc = pt_builder_append_int(cb, v->i);
          break;
        case 't':
          rc = (fmt[1] == 'd' && fmt[2] == 'D') || fmt[1] == 's' ? pt_builder_append_int(cb, v->i)
                                                                 : PT_ENOTSUP;
          break;
        default: rc = PT_ENOTSUP; break;
        }
      }
      if (rc) goto append_failed;
    }
    if (corrupt) {
      pt_builder *cb = pt_builder_child(b, ncols);
      /* The text column must stay valid UTF-8: a record that is not keeps
       * null there. */
      int keep = bad && pt__utf8_valid((const uint8_t *)d + r.raw_begin, (size_t)(r.raw_end - r.raw_begin));
      rc = keep ? pt_builder_append_bytes(cb, d + r.raw_begin, r.raw_end - r.raw_begin)
                : pt_builder_append_null(cb, 1);
      if (rc) goto append_failed;
    }
    if ((rc = pt_builder_append_row(b))) goto append_failed;
  }
  rc = fast ? cols_finish(&cs, schema_out, out, err) : pt_builder_finish(b, out, err);
  if (next) *next = pos;
  if (next_line) *next_line = line;
  goto done;
append_failed:
  rc = pt__errorf(err, rc, "csv: %s: line %lld: %s", name, (long long)r.line,
                  pt_builder_last_error(b) ? pt_builder_last_error(b) : "append failed");
  goto done;
oom:
  rc = pt__errorf(err, PT_ENOMEM, "csv: %s: out of memory", name);
done:
  if (fast > 0) cols_free(&cs);
  rec_free(&r);
  free(types);
  free(children);
  pt__free(vals);
  pt__free(fmts);
  pt_builder_free(b);
  if (rc && schema_out->release) schema_out->release(schema_out);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Writing: the inverse of the reader's defaults, so that what is written
 * reads back as the same values. */

static int put_field_text(pt_buf *out, const char *s, int64_t n, char delim, int force) {
  int need = force || n == 0;
  for (int64_t i = 0; i < n && !need; i++)
    need = s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
  if (!need) return pt__buf_append(out, s, (size_t)n);
  PT_RETURN_NOT_OK(pt__buf_putc(out, '"'));
  for (int64_t i = 0; i < n; i++) {
    if (s[i] == '"') PT_RETURN_NOT_OK(pt__buf_putc(out, '"'));
    PT_RETURN_NOT_OK(pt__buf_putc(out, s[i]));
  }
  return pt__buf_putc(out, '"');
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int put_value(pt_buf *out, const pt__view *v, int64_t i, char delim) {
  char tmp[64];
  switch (v->type.id) {
  case PT_TYPE_BOOL:
    return pt__buf_printf(out, "%s", pt__view_get_bool(v, i) ? "true" : "false");
  case PT_TYPE_INT8: case PT_TYPE_INT16: case PT_TYPE_INT32: case PT_TYPE_INT64:
    return pt__buf_printf(out, "%lld", (long long)pt__view_get_int(v, i));
  case PT_TYPE_UINT8: case PT_TYPE_UINT16: case PT_TYPE_UINT32: case PT_TYPE_UINT64:
    return pt__buf_printf(out, "%llu", (unsigned long long)pt__view_get_uint(v, i));
  case PT_TYPE_HALF_FLOAT: case PT_TYPE_FLOAT: case PT_TYPE_DOUBLE:
    /* 17 significant digits read back as the same double. */
    return pt__buf_printf(out, "%.17g", pt__view_get_double(v, i));
  case PT_TYPE_DATE32: {
    int64_t y;
    int m, d;
    civil_from_days(pt__view_get_int(v, i), &y, &m, &d);
    if (y < 0 || y > 9999) return PT_ERANGE;
    return pt__buf_printf(out, "%04lld-%02d-%02d", (long long)y, m, d);
  }
  case PT_TYPE_TIMESTAMP: {
    static const int64_t per_sec[] = {1, 1000, 1000000, 1000000000};
    static const int digits_of[] = {0, 3, 6, 9};
    int64_t t = pt__view_get_int(v, i), ps = per_sec[v->type.unit];
    int64_t sec = t / ps - (t % ps < 0), frac = t - sec * ps;
    int64_t days = sec / 86400 - (sec % 86400 < 0), tod = sec - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) return PT_ERANGE;
    snprintf(tmp, sizeof tmp, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, m, d,
             (int)(tod / 3600), (int)(tod / 60 % 60), (int)(tod % 60));
    PT_RETURN_NOT_OK(pt__buf_printf(out, "%s", tmp));
    if (v->type.unit != PT_SECOND)
      PT_RETURN_NOT_OK(pt__buf_printf(out, ".%0*lld", digits_of[v->type.unit], (long long)frac));
    return v->type.tz ? pt__buf_putc(out, 'Z') : PT_OK;
  }
  case PT_TYPE_STRING: case PT_TYPE_LARGE_STRING: case PT_TYPE_STRING_VIEW: {
    int64_t n;
    const uint8_t *s = pt__view_get_bytes(v, i, &n);
    /* Quoted when it would otherwise read as null or as another type, so a
     * reader's inference keeps it a string. */
    int force = n > 0 && kind_of((const char *)s, n) != K_STRING;
    return put_field_text(out, (const char *)s, n, delim, force);
  }
  default:
    return PT_ENOTSUP;
  }
}

int pt_csv_write_batch(const struct ArrowSchema *schema, const struct ArrowArray *batch,
                       int header, char delimiter, pt_buf *out, pt_error *err) {
  if (!schema || !batch || !out || !schema->format || strcmp(schema->format, "+s") != 0)
    return pt__errorf(err, PT_EINVAL, "csv: write: give a struct schema and batch and a buffer");
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r' || delimiter == 0)
    return pt__errorf(err, PT_EINVAL,
                      "csv: write: the delimiter must be one byte other than a newline or '\"'");
  pt__view v;
  PT_RETURN_NOT_OK(pt__view_init(&v, schema, batch, err));
  size_t keep = out->len;
  int rc = pt__view_validate(&v, NULL, NULL, err);
  if (rc) goto done;
  for (int64_t c = 0; c < v.n_children; c++) {
    const pt__view *cv = &v.children[c];
    switch (cv->type.id) {
    case PT_TYPE_BOOL: case PT_TYPE_INT8: case PT_TYPE_INT16: case PT_TYPE_INT32:
    case PT_TYPE_INT64: case PT_TYPE_UINT8: case PT_TYPE_UINT16: case PT_TYPE_UINT32:
    case PT_TYPE_UINT64: case PT_TYPE_HALF_FLOAT: case PT_TYPE_FLOAT: case PT_TYPE_DOUBLE:
    case PT_TYPE_DATE32: case PT_TYPE_TIMESTAMP: case PT_TYPE_STRING:
    case PT_TYPE_LARGE_STRING: case PT_TYPE_STRING_VIEW:
      if (!cv->type.dictionary) break;
      /* fallthrough */
    default: {
      char tn[64];
      pt_type_name(schema->children[c], tn, sizeof tn);
      rc = pt__errorf(err, PT_ENOTSUP,
                      "csv: write: column %lld (%s) is %s, which CSV does not carry; cast it "
                      "to a string first", (long long)c,
                      schema->children[c]->name ? schema->children[c]->name : "", tn);
      goto done;
    }
    }
  }
  if (header) {
    for (int64_t c = 0; c < v.n_children && !rc; c++) {
      const char *nm = schema->children[c]->name ? schema->children[c]->name : "";
      if (c) rc = pt__buf_putc(out, delimiter);
      if (!rc) rc = put_field_text(out, nm, (int64_t)strlen(nm), delimiter, 0);
    }
    if (!rc) rc = pt__buf_putc(out, '\n');
  }
  for (int64_t r = 0; r < v.length && !rc; r++) {
    for (int64_t c = 0; c < v.n_children && !rc; c++) {
      const pt__view *cv = &v.children[c];
      if (c) rc = pt__buf_putc(out, delimiter);
      /* A struct row that is null writes all its fields empty. */
      if (!rc && pt__view_is_valid(&v, r) && pt__view_is_valid(cv, r))
        rc = put_value(out, cv, r, delimiter);
      if (rc == PT_ERANGE)
        rc = pt__errorf(err, PT_ERANGE, "csv: write: row %lld column %lld: a date outside "
                        "years 0000-9999", (long long)r, (long long)c);
    }
    if (!rc) rc = pt__buf_putc(out, '\n');
  }
  if (rc == PT_ENOMEM) pt__errorf(err, rc, "csv: write: out of memory");
done:
  if (rc) out->len = keep;
  pt__view_reset(&v);
  return rc;
}
