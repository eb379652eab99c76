/* compress.c — the two body codecs of Arrow IPC: LZ4 frame (liblz4's
 * lz4frame.h) and Zstandard (libzstd). Decompression writes into a 64-byte
 * aligned buffer that grows with the output actually produced, so a lying
 * "uncompressed length" prefix costs nothing until data backs it up. Codec
 * contexts are kept per thread (the pool's workers and callers alike) and
 * reused from buffer to buffer: making one costs more than compressing a
 * small buffer.
 */
#include <lz4.h>
#include <lz4frame.h>
#include <lz4hc.h>
#include <pthread.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "arrow/ipc_int.h"

/* ------------------------------------------------------------------------ */
/* Per-thread contexts */

typedef struct codec_ctx {
  ZSTD_CCtx *zc; /* each made on first use, NULL until then */
  int zc_level;  /* the level set on zc (sticky across frames); valid when zc_set */
  bool zc_set;
  ZSTD_DCtx *zd;
  LZ4F_dctx *lz;
  void *lz_state;   /* LZ4_sizeofState() bytes, for blocks of our own frames */
  void *lzhc_state; /* LZ4_sizeofStateHC() bytes, the same at HC levels */
} codec_ctx;

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static bool ctx_key_ok;

static void ctx_destroy(void *p) {
  codec_ctx *c = p;
  ZSTD_freeCCtx(c->zc);
  ZSTD_freeDCtx(c->zd);
  if (c->lz) LZ4F_freeDecompressionContext(c->lz);
  pt__free(c->lz_state);
  pt__free(c->lzhc_state);
  pt__free(c);
}

static void ctx_key_make(void) { ctx_key_ok = pthread_key_create(&ctx_key, ctx_destroy) == 0; }

/* This thread's contexts (freed when it exits), or NULL when they cannot be
 * had: callers then make and free their own. */
static codec_ctx *thread_ctx(void) {
  pthread_once(&ctx_once, ctx_key_make);
  if (!ctx_key_ok) return NULL;
  codec_ctx *c = pthread_getspecific(ctx_key);
  if (c == NULL && (c = pt__calloc(1, sizeof *c)) != NULL &&
      pthread_setspecific(ctx_key, c) != 0) {
    pt__free(c);
    c = NULL;
  }
  return c;
}

const char *pt__codec_name(pt_compression codec) {
  switch (codec) {
    case PT_COMPRESSION_NONE: return "none";
    case PT_COMPRESSION_LZ4_FRAME: return "lz4_frame";
    case PT_COMPRESSION_ZSTD: return "zstd";
  }
  return "unknown";
}

int64_t pt__compress_bound(pt_compression codec, int64_t n) {
  if (codec == PT_COMPRESSION_LZ4_FRAME) {
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    return (int64_t)LZ4F_compressFrameBound((size_t)n, &prefs);
  }
  if (codec == PT_COMPRESSION_ZSTD) return (int64_t)ZSTD_compressBound((size_t)n);
  return n;
}

int pt__compress(pt_compression codec, int level, const void *src, int64_t n, void *dst,
                 int64_t cap, int64_t *written, pt_error *err) {
  /* Level 0 is the default: for ZSTD Arrow C++'s and Spark's, 1, so that
   * files and speeds match theirs (libzstd's own default, 3, made the
   * benchmark's int64 and text data 7% and 11% smaller in 1.4 and 2.2 times
   * the time). */
  if (codec == PT_COMPRESSION_ZSTD && level == 0) level = 1;
  if (codec == PT_COMPRESSION_LZ4_FRAME) {
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.compressionLevel = level;
    prefs.frameInfo.contentSize = (unsigned long long)n;
    size_t r = LZ4F_compressFrame(dst, (size_t)cap, src, (size_t)n, &prefs);
    if (LZ4F_isError(r))
      return pt__errorf(err, PT_EINTERNAL, "lz4 compression failed: %s", LZ4F_getErrorName(r));
    *written = (int64_t)r;
    return PT_OK;
  }
  if (codec == PT_COMPRESSION_ZSTD) {
    codec_ctx *c = thread_ctx();
    if (c != NULL && c->zc == NULL) c->zc = ZSTD_createCCtx();
    size_t r;
    if (c != NULL && c->zc != NULL) {
      /* Parameters set once and kept: ZSTD_compressCCtx would derive them
       * again for every buffer (measured 2-3% of level 1's time on 256 KiB
       * buffers). */
      if (!c->zc_set || c->zc_level != level) {
        c->zc_set = !ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, level));
        c->zc_level = level;
      }
      r = c->zc_set ? ZSTD_compress2(c->zc, dst, (size_t)cap, src, (size_t)n)
                    : ZSTD_compressCCtx(c->zc, dst, (size_t)cap, src, (size_t)n, level);
    } else {
      r = ZSTD_compress(dst, (size_t)cap, src, (size_t)n, level);
    }
    if (ZSTD_isError(r))
      return pt__errorf(err, PT_EINTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(r));
    *written = (int64_t)r;
    return PT_OK;
  }
  return pt__errorf(err, PT_EINVAL, "unknown compression codec %d", (int)codec);
}

/* LZ4 frames of our own (format: lz4's doc/lz4_Frame_format.md) */

#define LZ4_MAGIC 0x184D2204u
#define LZ4_HEADER_SIZE 15 /* magic, FLG, BD, content size, header checksum */
#define LZ4_BLOCK_MAX_1MB 6 /* BD's block maximum size code for 1 MiB */

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

/* XXH32 with seed 0 of fewer than 16 bytes (all a frame descriptor has): the
 * short-input path of the xxHash specification. */
static uint32_t xxh32_short(const uint8_t *p, size_t n) {
  const uint32_t p1 = 0x9E3779B1u, p2 = 0x85EBCA77u, p3 = 0xC2B2AE3Du, p4 = 0x27D4EB2Fu,
                 p5 = 0x165667B1u;
  uint32_t h = p5 + (uint32_t)n;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t w = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
                 (uint32_t)p[i + 3] << 24;
    h = rotl32(h + w * p3, 17) * p4;
  }
  for (; i < n; i++) h = rotl32(h + p[i] * p5, 11) * p1;
  h ^= h >> 15;
  h *= p2;
  h ^= h >> 13;
  h *= p3;
  h ^= h >> 16;
  return h;
}

/* The header of a frame of independent blocks of at most 1 MiB holding
 * total bytes, without checksums. */
static void lz4_frame_header(uint8_t *dst, int64_t total) {
  pt__store_u32(dst, LZ4_MAGIC);
  dst[4] = 0x40 | 0x20 | 0x08; /* version 01, independent blocks, content size */
  dst[5] = LZ4_BLOCK_MAX_1MB << 4;
  pt__store_i64(dst + 6, total);
  dst[14] = (uint8_t)(xxh32_short(dst + 4, 10) >> 8);
}

/* One block of n <= 1 MiB bytes: its size word, then the compressed bytes,
 * or the bytes as they are (size word's high bit set) when compressing does
 * not make them smaller. As LZ4F does: levels below 3 are the fast
 * compressor (negative levels accelerate), 3 and up the HC one. */
static int lz4_block(codec_ctx *c, int level, const uint8_t *src, int n, uint8_t *dst,
                     int64_t *written, pt_error *err) {
  int r;
  if (level < LZ4HC_CLEVEL_MIN) {
    if (c->lz_state == NULL && (c->lz_state = pt__malloc((size_t)LZ4_sizeofState())) == NULL)
      return pt__errorf(err, PT_ENOMEM, "out of memory for an lz4 state");
    r = LZ4_compress_fast_extState(c->lz_state, (const char *)src, (char *)dst + 4, n, n - 1,
                                   level < 0 ? -level + 1 : 1);
  } else {
    if (c->lzhc_state == NULL &&
        (c->lzhc_state = pt__malloc((size_t)LZ4_sizeofStateHC())) == NULL)
      return pt__errorf(err, PT_ENOMEM, "out of memory for an lz4 state");
    r = LZ4_compress_HC_extStateHC(c->lzhc_state, (const char *)src, (char *)dst + 4, n, n - 1,
                                   level);
  }
  if (r > 0) {
    pt__store_u32(dst, (uint32_t)r);
    *written = 4 + r;
  } else {
    pt__store_u32(dst, (uint32_t)n | 0x80000000u);
    memcpy(dst + 4, src, (size_t)n);
    *written = 4 + (int64_t)n;
  }
  return PT_OK;
}

int64_t pt__compress_part_bound(pt_compression codec, int64_t n) {
  if (codec == PT_COMPRESSION_LZ4_FRAME) return LZ4_HEADER_SIZE + 4 + n + 4;
  return pt__compress_bound(codec, n);
}

int pt__compress_part(pt_compression codec, int level, const void *src, int64_t n, int64_t total,
                      bool first, bool last, void *dst, int64_t cap, int64_t *written,
                      pt_error *err) {
  if (codec != PT_COMPRESSION_LZ4_FRAME)
    return pt__compress(codec, level, src, n, dst, cap, written, err);
  if (n <= 0 || n > PT__COMPRESS_PART || cap < pt__compress_part_bound(codec, n))
    return pt__errorf(err, PT_EINTERNAL, "lz4: a part of %lld bytes with room for %lld",
                      (long long)n, (long long)cap);
  codec_ctx *c = thread_ctx();
  if (c == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for an lz4 state");
  uint8_t *out = dst;
  int64_t at = 0, block = 0;
  if (first) {
    lz4_frame_header(out, total);
    at = LZ4_HEADER_SIZE;
  }
  PT_RETURN_NOT_OK(lz4_block(c, level, src, (int)n, out + at, &block, err));
  at += block;
  if (last) {
    pt__store_u32(out + at, 0); /* end mark */
    at += 4;
  }
  *written = at;
  return PT_OK;
}

/* Grows an aligned output buffer to at least need bytes (at most limit). */
static int grow(uint8_t **buf, int64_t *cap, int64_t used, int64_t limit) {
  int64_t ncap = *cap * 2;
  if (ncap > limit) ncap = limit;
  uint8_t *nb = pt__malloc_aligned((size_t)ncap);
  if (nb == NULL) return PT_ENOMEM;
  pt__advise_huge(nb);
  if (used) memcpy(nb, *buf, (size_t)used);
  pt__free(*buf);
  *buf = nb;
  *cap = ncap;
  return PT_OK;
}

/* pt__decompress (into == NULL) and pt__decompress_into (into: expected
 * bytes of room, the caller's). */
static int decompress(pt_compression codec, const uint8_t *src, int64_t n, int64_t expected,
                      uint8_t *into, uint8_t **out, pt_error *err) {
  *out = NULL;
  int rc = PT_OK;
  LZ4F_dctx *lz = NULL;
  ZSTD_DCtx *zs = NULL;
  /* Start with what typical ratios need; grow only when the data proves to
   * be that compressible. */
  int64_t cap = into ? expected : pt__decompress_first_cap(n, expected);
  uint8_t *buf = into;
  if (buf == NULL) {
    buf = pt__malloc_aligned((size_t)(cap ? cap : 1));
    if (buf == NULL)
      return pt__errorf(err, PT_ENOMEM, "out of memory decompressing %lld bytes",
                        (long long)expected);
    pt__advise_huge(buf); /* fresh pages, all about to be written */
  }
  int64_t used = 0, consumed = 0;
  codec_ctx *c = thread_ctx();
  if (codec == PT_COMPRESSION_LZ4_FRAME) {
    if (c != NULL && c->lz != NULL) {
      lz = c->lz; /* an earlier error may have left it inside a frame */
      LZ4F_resetDecompressionContext(lz);
    } else if (LZ4F_isError(LZ4F_createDecompressionContext(&lz, LZ4F_VERSION))) {
      lz = NULL;
      rc = pt__errorf(err, PT_ENOMEM, "out of memory creating an lz4 context");
      goto cleanup;
    } else if (c != NULL) {
      c->lz = lz;
    }
  } else if (codec == PT_COMPRESSION_ZSTD) {
    if (c != NULL && c->zd != NULL) {
      zs = c->zd;
      ZSTD_DCtx_reset(zs, ZSTD_reset_session_only);
    } else if ((zs = ZSTD_createDCtx()) == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory creating a zstd context");
      goto cleanup;
    } else if (c != NULL) {
      c->zd = zs;
    }
    if (cap == expected) {
      /* Room for all the declared bytes: decode in one go, straight into
       * buf (streaming would go through zstd's window buffer, a copy). */
      size_t r = ZSTD_decompressDCtx(zs, buf, (size_t)cap, src, (size_t)n);
      if (ZSTD_isError(r)) {
        ZSTD_ErrorCode e = ZSTD_getErrorCode(r);
        if (e == ZSTD_error_dstSize_tooSmall)
          rc = pt__errorf(err, PT_EFORMAT,
                          "zstd data decompresses to more than the declared %lld bytes",
                          (long long)expected);
        else if (e == ZSTD_error_srcSize_wrong)
          rc = pt__errorf(err, PT_EFORMAT, "zstd data is truncated");
        else
          rc = pt__errorf(err, PT_EFORMAT, "zstd data is corrupt: %s", ZSTD_getErrorName(r));
        goto cleanup;
      }
      used = (int64_t)r;
      goto check_size;
    }
  }
  if (lz || zs) {
    /* Each round either consumes input or produces output (or both), so the
     * loop ends after at most n + expected rounds. */
    for (;;) {
      size_t hint;
      int64_t new_used, new_consumed;
      if (lz) {
        size_t dst_size = (size_t)(cap - used), src_size = (size_t)(n - consumed);
        /* A buffer that can no longer move (room for all the declared
         * bytes from the start) lets lz4 refer back to the output itself
         * instead of copying each block's tail aside as the next block's
         * dictionary. */
        LZ4F_decompressOptions_t dopts = {.stableDst = cap == expected};
        hint = LZ4F_decompress(lz, buf + used, &dst_size, src + consumed, &src_size, &dopts);
        if (LZ4F_isError(hint)) {
          rc = pt__errorf(err, PT_EFORMAT, "lz4 data is corrupt: %s", LZ4F_getErrorName(hint));
          goto cleanup;
        }
        new_used = used + (int64_t)dst_size;
        new_consumed = consumed + (int64_t)src_size;
      } else {
        ZSTD_outBuffer ob = {buf, (size_t)cap, (size_t)used};
        ZSTD_inBuffer ib = {src, (size_t)n, (size_t)consumed};
        hint = ZSTD_decompressStream(zs, &ob, &ib);
        if (ZSTD_isError(hint)) {
          rc = pt__errorf(err, PT_EFORMAT, "zstd data is corrupt: %s", ZSTD_getErrorName(hint));
          goto cleanup;
        }
        new_used = (int64_t)ob.pos;
        new_consumed = (int64_t)ib.pos;
      }
      bool progress = new_used != used || new_consumed != consumed;
      used = new_used;
      consumed = new_consumed;
      if (hint == 0 && consumed == n) break; /* frame complete, input used up */
      if (used == cap && cap < expected) {
        if ((rc = grow(&buf, &cap, used, expected)) != PT_OK) {
          rc = pt__errorf(err, rc, "out of memory decompressing %lld bytes", (long long)expected);
          goto cleanup;
        }
      } else if (!progress) {
        if (used == cap)
          rc = pt__errorf(err, PT_EFORMAT, "%s data decompresses to more than the declared %lld bytes",
                          pt__codec_name(codec), (long long)expected);
        else
          rc = pt__errorf(err, PT_EFORMAT, "%s data is truncated", pt__codec_name(codec));
        goto cleanup;
      }
    }
  } else {
    rc = pt__errorf(err, PT_EFORMAT, "unknown compression codec %d", (int)codec);
    goto cleanup;
  }
check_size:
  if (used != expected) {
    rc = pt__errorf(err, PT_EFORMAT, "compressed buffer decompresses to %lld bytes, not the declared %lld",
                    (long long)used, (long long)expected);
    goto cleanup;
  }
  *out = buf;
  buf = NULL;
cleanup:
  if (lz && (c == NULL || lz != c->lz)) LZ4F_freeDecompressionContext(lz);
  if (zs && (c == NULL || zs != c->zd)) ZSTD_freeDCtx(zs);
  if (buf != into) pt__free(buf);
  return rc;
}

int pt__decompress(pt_compression codec, const uint8_t *src, int64_t n, int64_t expected,
                   uint8_t **out, pt_error *err) {
  return decompress(codec, src, n, expected, NULL, out, err);
}

int pt__decompress_into(pt_compression codec, const uint8_t *src, int64_t n, uint8_t *dst,
                        int64_t expected, pt_error *err) {
  uint8_t *out;
  return decompress(codec, src, n, expected, dst, &out, err);
}
