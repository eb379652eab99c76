/* encoding.c — the RLE / bit-packed hybrid encoding that Parquet uses for
 * definition and repetition levels, dictionary indices and (in v2 pages)
 * booleans: decoding from untrusted bytes (a run never reads past its page)
 * and encoding.
 */
#include <string.h>

#include "parquet/parquet_int.h"

void pt__rle_init(pt__rle_dec *d, const uint8_t *p, int64_t len, int bit_width) {
  memset(d, 0, sizeof *d);
  d->p = p;
  d->end = p + len;
  d->bit_width = bit_width;
}

/* Reads the next run header. */
static int next_run(pt__rle_dec *d, pt_error *err) {
  uint64_t h = 0;
  int shift = 0;
  for (;;) {
    if (d->p >= d->end) return pt__errorf(err, PT_EFORMAT, "RLE data ends before its values do");
    uint8_t b = *d->p++;
    if (shift > 56) return pt__errorf(err, PT_EFORMAT, "RLE run header too long");
    h |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  int64_t left = d->end - d->p;
  if (h & 1) {
    uint64_t groups = h >> 1;
    if (groups == 0) return pt__errorf(err, PT_EFORMAT, "empty bit-packed RLE run");
    /* A last run may be cut short where the page ends: keep what is there. */
    uint64_t bytes = groups * (uint64_t)d->bit_width;
    if (groups > (uint64_t)left || bytes > (uint64_t)left) bytes = (uint64_t)left;
    d->packed = true;
    d->bits = d->p;
    d->bit_pos = 0;
    d->run_left = d->bit_width == 0 ? (int64_t)(groups * 8 > (uint64_t)INT64_MAX / 2 ? 0 : groups * 8)
                                    : (int64_t)(bytes * 8 / (uint64_t)d->bit_width);
    d->p += bytes;
    if (d->run_left == 0) return pt__errorf(err, PT_EFORMAT, "bit-packed RLE run has no bytes");
  } else {
    int nbytes = (d->bit_width + 7) / 8;
    if (left < nbytes) return pt__errorf(err, PT_EFORMAT, "RLE run value cut short");
    uint32_t v = 0;
    for (int i = 0; i < nbytes; i++) v |= (uint32_t)d->p[i] << (8 * i);
    d->p += nbytes;
    if (d->bit_width < 32 && (v >> d->bit_width) != 0)
      return pt__errorf(err, PT_EFORMAT, "RLE value %u wider than %d bits", v, d->bit_width);
    d->packed = false;
    d->value = v;
    d->run_left = (int64_t)(h >> 1);
    if (h >> 1 > (uint64_t)INT32_MAX) d->run_left = INT32_MAX;
    if (d->run_left == 0) return pt__errorf(err, PT_EFORMAT, "empty RLE run");
  }
  return PT_OK;
}

/* Eight values of bw bits from in, which starts on a value and has bw + 8
 * bytes readable. Inlined under a switch on bw, so that every shift and
 * mask is a constant. */
static inline __attribute__((always_inline)) void unpack8(const uint8_t *in, uint32_t *out,
                                                          const int bw) {
  const uint32_t mask = bw >= 32 ? 0xffffffffu : (1u << bw) - 1;
#pragma GCC unroll 8
  for (int j = 0; j < 8; j++) {
    const int bit = j * bw;
    out[j] = (uint32_t)(pt__load_u64(in + (bit >> 3)) >> (bit & 7)) & mask;
  }
}

#define UNPACK_CASE(BW)                                                     \
  case BW:                                                                  \
    for (; g < groups; g++) unpack8(in + g * BW, out + g * 8, BW);          \
    break;

/* groups * 8 values of bw (1..24) bits from in (groups * bw + 8 bytes
 * readable) into out. */
static void unpack_groups(const uint8_t *in, uint32_t *out, int64_t groups, int bw) {
  int64_t g = 0;
  switch (bw) {
    UNPACK_CASE(1) UNPACK_CASE(2) UNPACK_CASE(3) UNPACK_CASE(4) UNPACK_CASE(5) UNPACK_CASE(6)
    UNPACK_CASE(7) UNPACK_CASE(8) UNPACK_CASE(9) UNPACK_CASE(10) UNPACK_CASE(11) UNPACK_CASE(12)
    UNPACK_CASE(13) UNPACK_CASE(14) UNPACK_CASE(15) UNPACK_CASE(16) UNPACK_CASE(17)
    UNPACK_CASE(18) UNPACK_CASE(19) UNPACK_CASE(20) UNPACK_CASE(21) UNPACK_CASE(22)
    UNPACK_CASE(23) UNPACK_CASE(24)
    default:
      for (; g < groups; g++)
        for (int j = 0; j < 8; j++) {
          int64_t bit = (g * 8 + j) * (int64_t)bw;
          out[g * 8 + j] = (uint32_t)(pt__load_u64(in + (bit >> 3)) >> (bit & 7)) &
                           (bw >= 32 ? 0xffffffffu : (1u << bw) - 1);
        }
  }
}
#undef UNPACK_CASE

/* Whole groups of eight of a bit-packed run, from d's position (which must
 * be byte-aligned) into out: how many values, at most k, leaving the rest
 * (a part group, or the last bytes of the data) to the value loop. */
static int64_t unpack_run(pt__rle_dec *d, uint32_t *out, int64_t k) {
  int bw = d->bit_width;
  if (bw == 0 || bw > 24 || (d->bit_pos & 7) != 0) return 0;
  int64_t byte = d->bit_pos >> 3;
  int64_t room = d->end - d->bits - byte - 8; /* bytes with 8 more after them */
  int64_t groups = k / 8;
  if (room < 0) return 0;
  if (groups > room / bw) groups = room / bw;
  unpack_groups(d->bits + byte, out, groups, bw);
  d->bit_pos += groups * 8 * bw;
  return groups * 8;
}

int pt__rle_get(pt__rle_dec *d, uint32_t *out, int64_t n, pt_error *err) {
  const uint32_t mask = d->bit_width >= 32 ? 0xffffffffu : (1u << d->bit_width) - 1;
  while (n > 0) {
    if (d->run_left == 0) PT_RETURN_NOT_OK(next_run(d, err));
    int64_t k = n < d->run_left ? n : d->run_left;
    if (!d->packed) {
      for (int64_t i = 0; i < k; i++) out[i] = d->value;
    } else if (d->bit_width == 0) {
      memset(out, 0, (size_t)k * sizeof *out);
    } else {
      int64_t nbytes = d->p - d->bits;
      int bw = d->bit_width;
      int64_t i = unpack_run(d, out, k), pos = d->bit_pos;
      /* Eight whole bytes under the value: one fixed load (the common
       * case, and several times cheaper than a sized copy). The bytes may
       * run past this run into the next header, never past the data: the
       * mask keeps this value's bits only. */
      const int64_t in_data = d->end - d->bits;
      for (; i < k && (pos >> 3) + 8 <= in_data; i++, pos += bw)
        out[i] = (uint32_t)(pt__load_u64(d->bits + (pos >> 3)) >> (pos & 7)) & mask;
      d->bit_pos = pos;
      for (; i < k; i++) {
        int64_t pos = d->bit_pos;
        int64_t byte = pos >> 3;
        uint64_t w = 0;
        int64_t avail = nbytes - byte;
        memcpy(&w, d->bits + byte, (size_t)(avail < 8 ? avail : 8));
        out[i] = (uint32_t)(w >> (pos & 7)) & mask;
        d->bit_pos = pos + bw;
      }
    }
    out += k;
    n -= k;
    d->run_left -= k;
  }
  return PT_OK;
}

bool pt__rle_single_run(const uint8_t *p, int64_t len, int bit_width, uint32_t v, int64_t n) {
  pt__rle_dec d;
  pt__rle_init(&d, p, len, bit_width);
  return next_run(&d, NULL) == PT_OK && !d.packed && d.value == v && d.run_left >= n;
}

/* Levels: runs filled whole, bit-packed groups of 8 unpacked from one
 * 64-bit load each (bit widths up to 8, a group is at most 8 bytes), and no
 * branch per value: the range check and the two counts are sums. */
int pt__rle_get_levels(pt__rle_dec *d, uint16_t *out, int64_t n, int max, int slot,
                       int64_t *n_slot, int64_t *n_max, pt_error *err) {
  const uint32_t mask = d->bit_width >= 32 ? 0xffffffffu : (1u << d->bit_width) - 1;
  const uint32_t umax = (uint32_t)max, uslot = (uint32_t)slot;
  int64_t ge = 0, eq = 0;
  uint32_t over = 0;
  while (n > 0) {
    if (d->run_left == 0) PT_RETURN_NOT_OK(next_run(d, err));
    int64_t k = n < d->run_left ? n : d->run_left;
    if (!d->packed) {
      uint32_t v = d->value;
      if (v > umax) over = 1;
      /* Eight values, then copies of what is filled, doubling. */
      int64_t f = k < 8 ? k : 8;
      for (int64_t i = 0; i < f; i++) out[i] = (uint16_t)v;
      for (; f < k; f *= 2) memcpy(out + f, out, (size_t)(k - f < f ? k - f : f) * sizeof *out);
      ge += v >= uslot ? k : 0;
      eq += v == umax ? k : 0;
    } else {
      int bw = d->bit_width;
      int64_t i = 0, pos = d->bit_pos;
      const int64_t in_data = d->end - d->bits;
      /* Whole groups, 256 values at a time through a scratch; without
       * counts when the caller wants none, and without the range check
       * when the bit width allows nothing above the maximum. */
      while (k - i >= 8) {
        uint32_t tmp[256];
        int64_t got = unpack_run(d, tmp, k - i < 256 ? k - i : 256);
        if (got == 0) break;
        if (n_slot != NULL) {
          for (int64_t j = 0; j < got; j++) {
            uint32_t v = tmp[j];
            out[i + j] = (uint16_t)v;
            over |= v > umax;
            ge += v >= uslot;
            eq += v == umax;
          }
        } else if (umax >= mask) {
          for (int64_t j = 0; j < got; j++) out[i + j] = (uint16_t)tmp[j];
        } else {
          uint32_t top = 0;
          for (int64_t j = 0; j < got; j++) {
            out[i + j] = (uint16_t)tmp[j];
            top = tmp[j] > top ? tmp[j] : top;
          }
          over |= top > umax;
        }
        i += got;
      }
      pos = d->bit_pos;
      for (; i < k && (pos >> 3) + 8 <= in_data; i++, pos += bw) {
        uint32_t v = (uint32_t)(pt__load_u64(d->bits + (pos >> 3)) >> (pos & 7)) & mask;
        out[i] = (uint16_t)v;
        over |= v > umax;
        ge += v >= uslot;
        eq += v == umax;
      }
      int64_t nbytes = d->p - d->bits;
      for (; i < k; i++, pos += bw) {
        int64_t byte = pos >> 3;
        uint64_t w = 0;
        int64_t avail = nbytes - byte;
        memcpy(&w, d->bits + byte, (size_t)(avail < 8 ? avail : 8));
        uint32_t v = (uint32_t)(w >> (pos & 7)) & mask;
        out[i] = (uint16_t)v;
        over |= v > umax;
        ge += v >= uslot;
        eq += v == umax;
      }
      d->bit_pos = pos;
    }
    out += k;
    n -= k;
    d->run_left -= k;
  }
  if (over) return pt__errorf(err, PT_EFORMAT, "level above the column's maximum of %d", max);
  if (n_slot != NULL) *n_slot = ge;
  if (n_max != NULL) *n_max = eq;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding */

static int put_varint(pt_buf *buf, uint64_t v) {
  uint8_t tmp[10];
  int n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  return pt__buf_append(buf, tmp, (size_t)n);
}

/* values[0, n) as bit-packed groups (n rounded up to a multiple of 8 with
 * zeros: allowed only at the end of the data or when n % 8 == 0). */
static int put_packed(pt_buf *buf, const uint32_t *values, int64_t n, int bw) {
  int64_t groups = (n + 7) / 8;
  PT_RETURN_NOT_OK(put_varint(buf, (uint64_t)groups << 1 | 1));
  int64_t bytes = groups * bw;
  PT_RETURN_NOT_OK(pt__buf_reserve(buf, (size_t)bytes + 8));
  uint8_t *o = (uint8_t *)buf->data + buf->len;
  memset(o, 0, (size_t)bytes);
  if (bw == 0) {
    buf->len += (size_t)bytes;
    return PT_OK;
  }
  /* 64 bits at a time (the 8 spare bytes reserved above take the last
   * store); a value split across two words leaves its high bits behind. */
  uint64_t acc = 0;
  int nbits = 0;
  uint8_t *w = o;
  for (int64_t i = 0; i < n; i++) {
    uint64_t v = values[i];
    acc |= v << nbits;
    nbits += bw;
    if (nbits >= 64) {
      nbits -= 64;
      memcpy(w, &acc, 8);
      w += 8;
      acc = nbits ? v >> (bw - nbits) : 0;
    }
  }
  /* The padding values of the last group are zeros: the bytes are. */
  if (nbits > 0) memcpy(w, &acc, 8);
  buf->len += (size_t)bytes;
  return PT_OK;
}

static int put_repeat(pt_buf *buf, uint32_t v, int64_t n, int bw) {
  PT_RETURN_NOT_OK(put_varint(buf, (uint64_t)n << 1));
  uint8_t tmp[4];
  int nbytes = (bw + 7) / 8;
  for (int i = 0; i < nbytes; i++) tmp[i] = (uint8_t)(v >> (8 * i));
  return pt__buf_append(buf, tmp, (size_t)nbytes);
}

int pt__rle_put(pt_buf *buf, const uint32_t *values, int64_t n, int bw) {
  int64_t lit = 0; /* start of values not yet written */
  int64_t i = 0;
  while (i < n) {
    int64_t j = i + 1;
    while (j < n && values[j] == values[i]) j++;
    if (j - i >= 8) {
      /* Literals before the run must fill whole groups of 8: borrow from
       * the run. */
      int64_t pending = i - lit;
      if (pending > 0) {
        int64_t pad = (8 - pending % 8) % 8;
        PT_RETURN_NOT_OK(put_packed(buf, values + lit, pending + pad, bw));
        i += pad;
      }
      if (j - i >= 8 || (j == n && j > i)) {
        PT_RETURN_NOT_OK(put_repeat(buf, values[i], j - i, bw));
        lit = j;
      } else {
        lit = i;
      }
    }
    i = j;
  }
  if (n > lit) PT_RETURN_NOT_OK(put_packed(buf, values + lit, n - lit, bw));
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* DELTA_BINARY_PACKED, and the encodings built on it */

static int uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out, pt_error *err) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return pt__errorf(err, PT_EFORMAT, "DELTA header cut short");
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return PT_OK;
    }
  }
  return pt__errorf(err, PT_EFORMAT, "DELTA header varint too long");
}

static int zvarint(const uint8_t **p, const uint8_t *end, int64_t *out, pt_error *err) {
  uint64_t u;
  PT_RETURN_NOT_OK(uvarint(p, end, &u, err));
  *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
  return PT_OK;
}

/* bw (<= 64) bits at bit position pos of p (which holds at least
 * (pos + bw + 7) / 8 bytes). */
static uint64_t bits_at(const uint8_t *p, int64_t pos, int bw) {
  if (bw == 0) return 0;
  uint64_t v = 0;
  int got = 0;
  int64_t byte = pos >> 3;
  int shift = (int)(pos & 7);
  while (got < bw) {
    uint64_t b = (uint64_t)(p[byte++] >> shift);
    v |= b << got;
    got += 8 - shift;
    shift = 0;
  }
  return bw == 64 ? v : v & ((UINT64_C(1) << bw) - 1);
}

int pt__delta_decode(const uint8_t *p, int64_t len, int64_t n, int64_t *out, int64_t *used,
                     pt_error *err) {
  const uint8_t *start = p, *end = p + len;
  uint64_t block, n_mini, total;
  int64_t first;
  PT_RETURN_NOT_OK(uvarint(&p, end, &block, err));
  PT_RETURN_NOT_OK(uvarint(&p, end, &n_mini, err));
  PT_RETURN_NOT_OK(uvarint(&p, end, &total, err));
  PT_RETURN_NOT_OK(zvarint(&p, end, &first, err));
  if (block == 0 || block % 128 != 0 || block > (1u << 20) || n_mini == 0 || block % n_mini != 0 ||
      (block / n_mini) % 32 != 0)
    return pt__errorf(err, PT_EFORMAT, "DELTA block of %llu values in %llu miniblocks is invalid",
                      (unsigned long long)block, (unsigned long long)n_mini);
  if (total != (uint64_t)n)
    return pt__errorf(err, PT_EFORMAT, "DELTA data holds %llu values where %lld are expected",
                      (unsigned long long)total, (long long)n);
  int64_t per_mini = (int64_t)(block / n_mini);
  int64_t done = 0;
  uint64_t prev = (uint64_t)first;
  if (n > 0) out[done++] = first;
  while (done < n) {
    int64_t min_delta;
    PT_RETURN_NOT_OK(zvarint(&p, end, &min_delta, err));
    if ((uint64_t)(end - p) < n_mini) return pt__errorf(err, PT_EFORMAT, "DELTA bit widths cut short");
    const uint8_t *widths = p;
    p += n_mini;
    for (uint64_t m = 0; m < n_mini && done < n; m++) {
      int bw = widths[m];
      if (bw > 64) return pt__errorf(err, PT_EFORMAT, "DELTA bit width %d", bw);
      int64_t bytes = per_mini * bw / 8;
      if (end - p < bytes) return pt__errorf(err, PT_EFORMAT, "DELTA miniblock cut short");
      int64_t k = n - done < per_mini ? n - done : per_mini;
      for (int64_t i = 0; i < k; i++) {
        prev = prev + (uint64_t)min_delta + bits_at(p, i * bw, bw);
        out[done++] = (int64_t)prev;
      }
      p += bytes;
    }
  }
  *used = p - start;
  return PT_OK;
}
