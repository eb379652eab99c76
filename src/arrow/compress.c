/* compress.c — the two body codecs of Arrow IPC: LZ4 frame (liblz4's
 * lz4frame.h) and Zstandard (libzstd). Decompression writes into a 64-byte
 * aligned buffer that grows with the output actually produced, so a lying
 * "uncompressed length" prefix costs nothing until data backs it up.
 */
#include <lz4frame.h>
#include <zstd.h>

#include "arrow/ipc_int.h"

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
    size_t r = ZSTD_compress(dst, (size_t)cap, src, (size_t)n, level);
    if (ZSTD_isError(r))
      return pt__errorf(err, PT_EINTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(r));
    *written = (int64_t)r;
    return PT_OK;
  }
  return pt__errorf(err, PT_EINVAL, "unknown compression codec %d", (int)codec);
}

/* Grows an aligned output buffer to at least need bytes (at most limit). */
static int grow(uint8_t **buf, int64_t *cap, int64_t used, int64_t limit) {
  int64_t ncap = *cap * 2;
  if (ncap > limit) ncap = limit;
  uint8_t *nb = pt__malloc_aligned((size_t)ncap);
  if (nb == NULL) return PT_ENOMEM;
  if (used) memcpy(nb, *buf, (size_t)used);
  pt__free(*buf);
  *buf = nb;
  *cap = ncap;
  return PT_OK;
}

int pt__decompress(pt_compression codec, const uint8_t *src, int64_t n, int64_t expected,
                   uint8_t **out, pt_error *err) {
  *out = NULL;
  int rc = PT_OK;
  LZ4F_dctx *lz = NULL;
  ZSTD_DCtx *zs = NULL;
  /* Start with what typical ratios need; grow only when the data proves to
   * be that compressible. */
  int64_t cap = expected;
  int64_t guess = n > (INT64_MAX >> 8) ? INT64_MAX : n * 16 + (1 << 20);
  if (cap > guess) cap = guess;
  uint8_t *buf = pt__malloc_aligned((size_t)(cap ? cap : 1));
  if (buf == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory decompressing %lld bytes",
                                     (long long)expected);
  int64_t used = 0, consumed = 0;
  if (codec == PT_COMPRESSION_LZ4_FRAME) {
    if (LZ4F_isError(LZ4F_createDecompressionContext(&lz, LZ4F_VERSION))) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory creating an lz4 context");
      goto cleanup;
    }
  } else if (codec == PT_COMPRESSION_ZSTD) {
    zs = ZSTD_createDCtx();
    if (zs == NULL) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory creating a zstd context");
      goto cleanup;
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
        hint = LZ4F_decompress(lz, buf + used, &dst_size, src + consumed, &src_size, NULL);
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
  if (used != expected) {
    rc = pt__errorf(err, PT_EFORMAT, "compressed buffer decompresses to %lld bytes, not the declared %lld",
                    (long long)used, (long long)expected);
    goto cleanup;
  }
  *out = buf;
  buf = NULL;
cleanup:
  if (lz) LZ4F_freeDecompressionContext(lz);
  if (zs) ZSTD_freeDCtx(zs);
  pt__free(buf);
  return rc;
}
