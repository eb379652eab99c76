/* snappy_enc.c — SNAPPY compression of the writer's pages, in snappy's raw
 * format (a varint length, then literals and back-references), which any
 * snappy decompressor reads. Ours because the distribution's libsnappy
 * (1.1.9) spends about 17 instructions a byte on string pages where the
 * snappy that pyarrow carries spends 11; see docs/parquet.md#speed.
 * Decompression stays libsnappy's (codec.c).
 */
#include <stdbool.h>
#include <string.h>

#include "parquet/parquet_int.h"

/* Matches are looked for within blocks of this many bytes, so that every
 * offset fits the two-byte copy and a position the hash table's uint16. */
#define BLOCK (1 << 16)
#define HASH_BITS 14
/* No match starts within this many bytes of a block's end: the loops below
 * read eight bytes at a time without bounds checks. */
#define MARGIN 15
/* The four probes from one load take the load's bytes in memory order. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LITTLE_ENDIAN_LOADS 1
#else
#define LITTLE_ENDIAN_LOADS 0
#endif

static inline uint32_t load32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline uint32_t hash32(uint32_t v) { return (v * 0x1e35a7bdu) >> (32 - HASH_BITS); }

/* A literal of n bytes. Short ones (most, between short matches) are
 * copied as two words, without a call, when src and op have room for 16
 * bytes past them (the bytes past n are overwritten by what follows). */
static inline uint8_t *put_literal(uint8_t *op, const uint8_t *src, size_t n, bool room) {
  size_t m = n - 1;
  if (m < 16 && room) {
    *op++ = (uint8_t)(m << 2);
    uint64_t a = load64(src), b = load64(src + 8);
    memcpy(op, &a, 8);
    memcpy(op + 8, &b, 8);
    return op + n;
  }
  if (m < 60) {
    *op++ = (uint8_t)(m << 2);
  } else {
    int bytes = m < (1u << 8) ? 1 : m < (1u << 16) ? 2 : m < (1u << 24) ? 3 : 4;
    *op++ = (uint8_t)((59 + bytes) << 2);
    for (int i = 0; i < bytes; i++) *op++ = (uint8_t)(m >> (8 * i));
  }
  memcpy(op, src, n);
  return op + n;
}

/* A copy of len (1 to 64) bytes from offset back: the one-byte-offset form
 * when it fits (len 4 to 11, offset below 2048), else the two-byte one. */
static inline uint8_t *put_copy_upto64(uint8_t *op, size_t offset, size_t len) {
  if (len < 12 && len >= 4 && offset < 2048) {
    *op++ = (uint8_t)(1 | ((len - 4) << 2) | ((offset >> 8) << 5));
    *op++ = (uint8_t)offset;
  } else {
    *op++ = (uint8_t)(2 | ((len - 1) << 2));
    *op++ = (uint8_t)offset;
    *op++ = (uint8_t)(offset >> 8);
  }
  return op;
}

static inline uint8_t *put_copy(uint8_t *op, size_t offset, size_t len) {
  if (len < 12 && offset < 2048) {
    *op++ = (uint8_t)(1 | ((len - 4) << 2) | ((offset >> 8) << 5));
    *op++ = (uint8_t)offset;
    return op;
  }
  /* 64 at a time while at least 68 are left, so the rest is never below 4. */
  while (len >= 68) {
    op = put_copy_upto64(op, offset, 64);
    len -= 64;
  }
  if (len > 64) {
    op = put_copy_upto64(op, offset, 60);
    len -= 60;
  }
  return put_copy_upto64(op, offset, len);
}

/* Length of the common run of a and b, b not reading past end. */
static inline size_t match_len(const uint8_t *a, const uint8_t *b, const uint8_t *end) {
  const uint8_t *b0 = b;
  while (b + 8 <= end) {
    uint64_t x = load64(a) ^ load64(b);
    if (x != 0) return (size_t)(b - b0) + (size_t)(__builtin_ctzll(x) >> 3);
    a += 8;
    b += 8;
  }
  while (b < end && *a == *b) {
    a++;
    b++;
  }
  return (size_t)(b - b0);
}

static uint8_t *compress_block(const uint8_t *in, size_t n, uint8_t *op, const uint8_t *op_end,
                               uint16_t *table) {
  const uint8_t *ip = in, *end = in + n, *lit = in;
  if (n < MARGIN + 1) goto tail;
  memset(table, 0, sizeof(uint16_t) << HASH_BITS);
  const uint8_t *limit = end - MARGIN;
  ip++;
  for (;;) {
    /* Look for a match, stepping further the longer none is found (from
     * one byte at a time to more), as data without repeats would
     * otherwise cost a hash probe per byte. */
    uint32_t skip = 32;
    const uint8_t *cand;
    /* The first probe alone: after a copy the next match often starts
     * right there (runs of zeros in numbers). */
    {
      uint32_t v = load32(ip);
      uint32_t h = hash32(v);
      cand = in + table[h];
      table[h] = (uint16_t)(ip - in);
      if (load32(cand) == v) goto found;
      ip++;
      skip++;
      if (ip > limit) goto tail;
    }
    /* The probes after it that still step one byte (skip below 64): four
     * at a time from one 8-byte load, with one bound check, in the order
     * (and with the table updates) of the loop below, so the output is
     * byte for byte the same. */
#define PROBE(k)                                   \
  do {                                             \
    uint32_t v = (uint32_t)(w >> (8 * (k)));       \
    uint32_t h = hash32(v);                        \
    cand = in + table[h];                          \
    table[h] = (uint16_t)(pos + (k));              \
    if (load32(cand) == v) {                       \
      ip += (k);                                   \
      goto found;                                  \
    }                                              \
  } while (0)
    while (LITTLE_ENDIAN_LOADS && skip + 3 < 64 && ip + 3 <= limit) {
      uint64_t w = load64(ip);
      uint32_t pos = (uint32_t)(ip - in);
      PROBE(0);
      PROBE(1);
      PROBE(2);
      PROBE(3);
      ip += 4;
      skip += 4;
    }
#undef PROBE
    if (ip > limit) goto tail;
    for (;;) {
      uint32_t v = load32(ip);
      uint32_t h = hash32(v);
      cand = in + table[h];
      table[h] = (uint16_t)(ip - in);
      if (load32(cand) == v) break; /* cand is always behind ip */
      uint32_t step = skip >> 5;
      skip += step;
      ip += step;
      if (ip > limit) goto tail;
    }
  found:
    op = put_literal(op, lit, (size_t)(ip - lit), lit + 16 <= end && op + 17 <= op_end);
    /* Copies, one after another while the next position matches too. */
    for (;;) {
      size_t len = 4 + match_len(cand + 4, ip + 4, end);
      op = put_copy(op, (size_t)(ip - cand), len);
      ip += len;
      lit = ip;
      if (ip > limit) goto tail;
      /* The position before, and this one: hashed for later matches. */
      uint32_t prev = load32(ip - 1);
      table[hash32(prev)] = (uint16_t)(ip - 1 - in);
      uint32_t v = load32(ip);
      uint32_t h = hash32(v);
      cand = in + table[h];
      table[h] = (uint16_t)(ip - in);
      if (load32(cand) != v) break;
    }
    ip++;
    if (ip > limit) goto tail;
  }
tail:
  if (lit < end) op = put_literal(op, lit, (size_t)(end - lit), false);
  return op;
}

int64_t pt__snappy_compress(const uint8_t *src, int64_t n, uint8_t *dst) {
  const uint8_t *dst_end = dst + pt__pq_compress_bound(PT__CODEC_SNAPPY, n);
  uint16_t table[1 << HASH_BITS];
  uint8_t *op = dst;
  uint64_t len = (uint64_t)n;
  do {
    uint8_t b = (uint8_t)(len & 0x7f);
    len >>= 7;
    *op++ = len ? (uint8_t)(b | 0x80) : b;
  } while (len);
  for (int64_t at = 0; at < n; at += BLOCK) {
    size_t k = (size_t)(n - at < BLOCK ? n - at : BLOCK);
    op = compress_block(src + at, k, op, dst_end, table);
  }
  return (int64_t)(op - dst);
}
