/* codec.c — Parquet's page compression codecs through the distribution's
 * libraries: snappy, zlib (GZIP), brotli, zstd, lz4 (LZ4_RAW blocks and the
 * deprecated Hadoop framing of LZ4). Decompression must give exactly the size
 * the page header promised, so a lying header cannot make us allocate or read
 * more than the page holds.
 */
#include <brotli/decode.h>
#include <brotli/encode.h>
#include <lz4.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "parquet/parquet_int.h"

const char *pt__pq_codec_name(int codec) {
  switch (codec) {
    case PT__CODEC_UNCOMPRESSED: return "UNCOMPRESSED";
    case PT__CODEC_SNAPPY: return "SNAPPY";
    case PT__CODEC_GZIP: return "GZIP";
    case PT__CODEC_LZO: return "LZO";
    case PT__CODEC_BROTLI: return "BROTLI";
    case PT__CODEC_LZ4: return "LZ4";
    case PT__CODEC_ZSTD: return "ZSTD";
    case PT__CODEC_LZ4_RAW: return "LZ4_RAW";
    default: return "unknown";
  }
}

static int bad(pt_error *err, int codec, const char *why) {
  return pt__errorf(err, PT_EFORMAT, "%s data is corrupt (%s)", pt__pq_codec_name(codec), why);
}

static int gunzip(const uint8_t *src, int64_t n, uint8_t *dst, int64_t expected, pt_error *err) {
  z_stream z = {0};
  if (inflateInit2(&z, 15 + 32) != Z_OK) return pt__errorf(err, PT_ENOMEM, "out of memory (zlib)");
  int64_t out = 0;
  int rc = Z_OK;
  z.next_in = (Bytef *)src;
  /* Members may follow one another (concatenated gzip streams). */
  while (n > 0) {
    uInt in_chunk = n > (1 << 30) ? (1u << 30) : (uInt)n;
    z.next_in = (Bytef *)src;
    z.avail_in = in_chunk;
    z.next_out = dst + out;
    z.avail_out = (uInt)(expected - out > (1 << 30) ? (1 << 30) : expected - out);
    uInt before_in = z.avail_in, before_out = z.avail_out;
    rc = inflate(&z, Z_NO_FLUSH);
    src += before_in - z.avail_in;
    n -= before_in - z.avail_in;
    out += before_out - z.avail_out;
    if (rc == Z_STREAM_END) {
      if (n == 0) break;
      if (inflateReset(&z) != Z_OK) break;
      continue;
    }
    if (rc != Z_OK || (before_in == z.avail_in && before_out == z.avail_out)) break;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) return bad(err, PT__CODEC_GZIP, z.msg ? z.msg : "stream cut short");
  if (out != expected) return bad(err, PT__CODEC_GZIP, "size differs from the page header");
  return PT_OK;
}

/* The Hadoop framing: blocks of [u32 BE uncompressed][u32 BE compressed][LZ4
 * block]. Older writers put a bare LZ4 block under the same codec id. */
static int hadoop_lz4(const uint8_t *src, int64_t n, uint8_t *dst, int64_t expected,
                      pt_error *err) {
  const uint8_t *p = src, *end = src + n;
  int64_t out = 0;
  bool framed = true;
  while (p < end) {
    if (end - p < 8) { framed = false; break; }
    uint32_t raw = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    uint32_t comp = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    if (comp > (uint64_t)(end - p - 8) || raw > (uint64_t)(expected - out) || comp > INT32_MAX ||
        raw > INT32_MAX) {
      framed = false;
      break;
    }
    int got = LZ4_decompress_safe((const char *)p + 8, (char *)dst + out, (int)comp, (int)raw);
    if (got != (int)raw) { framed = false; break; }
    out += raw;
    p += 8 + comp;
  }
  if (framed && out == expected) return PT_OK;
  if (n > INT32_MAX || expected > INT32_MAX) return bad(err, PT__CODEC_LZ4, "page too large");
  int got = LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, (int)expected);
  if (got != expected) return bad(err, PT__CODEC_LZ4, "neither Hadoop-framed nor a raw block");
  return PT_OK;
}

void pt__pq_dctx_free(pt__pq_dctx *ctx) {
  if (ctx->zstd != NULL) ZSTD_freeDCtx(ctx->zstd);
  ctx->zstd = NULL;
}

int pt__pq_decompress(int codec, const uint8_t *src, int64_t n, uint8_t *dst, int64_t expected,
                      pt_error *err) {
  return pt__pq_decompress_ctx(NULL, codec, src, n, dst, expected, err);
}

int pt__pq_decompress_ctx(pt__pq_dctx *ctx, int codec, const uint8_t *src, int64_t n, uint8_t *dst,
                          int64_t expected, pt_error *err) {
  switch (codec) {
    case PT__CODEC_UNCOMPRESSED:
      if (n != expected) return bad(err, codec, "size differs from the page header");
      memcpy(dst, src, (size_t)n);
      return PT_OK;
    case PT__CODEC_SNAPPY: {
      size_t len;
      if (snappy_uncompressed_length((const char *)src, (size_t)n, &len) != SNAPPY_OK)
        return bad(err, codec, "bad length header");
      if ((int64_t)len != expected) return bad(err, codec, "size differs from the page header");
      if (snappy_uncompress((const char *)src, (size_t)n, (char *)dst, &len) != SNAPPY_OK)
        return bad(err, codec, "bad block");
      return PT_OK;
    }
    case PT__CODEC_GZIP: return gunzip(src, n, dst, expected, err);
    case PT__CODEC_BROTLI: {
      size_t len = (size_t)expected;
      if (BrotliDecoderDecompress((size_t)n, src, &len, dst) != BROTLI_DECODER_RESULT_SUCCESS)
        return bad(err, codec, "bad stream or size differs from the page header");
      if ((int64_t)len != expected) return bad(err, codec, "size differs from the page header");
      return PT_OK;
    }
    case PT__CODEC_ZSTD: {
      /* A context kept by the caller: made once, not per page. */
      if (ctx != NULL && ctx->zstd == NULL && (ctx->zstd = ZSTD_createDCtx()) == NULL)
        return pt__errorf(err, PT_ENOMEM, "out of memory (zstd)");
      size_t got = ctx != NULL ? ZSTD_decompressDCtx(ctx->zstd, dst, (size_t)expected, src, (size_t)n)
                               : ZSTD_decompress(dst, (size_t)expected, src, (size_t)n);
      if (ZSTD_isError(got)) return bad(err, codec, ZSTD_getErrorName(got));
      if ((int64_t)got != expected) return bad(err, codec, "size differs from the page header");
      return PT_OK;
    }
    case PT__CODEC_LZ4_RAW: {
      if (n > INT32_MAX || expected > INT32_MAX) return bad(err, codec, "page too large");
      int got = LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, (int)expected);
      if (got != expected) return bad(err, codec, "bad block or size differs from the page header");
      return PT_OK;
    }
    case PT__CODEC_LZ4: return hadoop_lz4(src, n, dst, expected, err);
    default:
      return pt__errorf(err, PT_ENOTSUP,
                        "compression codec %s (%d) is not supported; rewrite the file with "
                        "SNAPPY, GZIP, ZSTD, LZ4_RAW, BROTLI or none",
                        pt__pq_codec_name(codec), codec);
  }
}

int64_t pt__pq_compress_bound(int codec, int64_t n) {
  switch (codec) {
    case PT__CODEC_SNAPPY: return (int64_t)snappy_max_compressed_length((size_t)n);
    case PT__CODEC_GZIP: return (int64_t)compressBound((uLong)n) + 32;
    case PT__CODEC_BROTLI: return (int64_t)BrotliEncoderMaxCompressedSize((size_t)n) + 16;
    case PT__CODEC_ZSTD: return (int64_t)ZSTD_compressBound((size_t)n);
    case PT__CODEC_LZ4_RAW: return LZ4_compressBound((int)n);
    default: return n;
  }
}

int pt__pq_compress(int codec, int level, const uint8_t *src, int64_t n, uint8_t *dst,
                    int64_t cap, int64_t *out_len, pt_error *err) {
  switch (codec) {
    case PT__CODEC_UNCOMPRESSED:
      memcpy(dst, src, (size_t)n);
      *out_len = n;
      return PT_OK;
    case PT__CODEC_SNAPPY: {
      size_t len = (size_t)cap;
      if (snappy_compress((const char *)src, (size_t)n, (char *)dst, &len) != SNAPPY_OK)
        return pt__errorf(err, PT_EINTERNAL, "snappy compression failed");
      *out_len = (int64_t)len;
      return PT_OK;
    }
    case PT__CODEC_GZIP: {
      z_stream z = {0};
      if (deflateInit2(&z, level > 0 ? level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return pt__errorf(err, PT_ENOMEM, "out of memory (zlib)");
      z.next_in = (Bytef *)src;
      z.avail_in = (uInt)n;
      z.next_out = dst;
      z.avail_out = (uInt)cap;
      int rc = deflate(&z, Z_FINISH);
      *out_len = (int64_t)z.total_out;
      deflateEnd(&z);
      if (rc != Z_STREAM_END) return pt__errorf(err, PT_EINTERNAL, "gzip compression failed");
      return PT_OK;
    }
    case PT__CODEC_BROTLI: {
      size_t len = (size_t)cap;
      if (!BrotliEncoderCompress(level > 0 ? level : 1, BROTLI_DEFAULT_WINDOW,
                                 BROTLI_DEFAULT_MODE, (size_t)n, src, &len, dst))
        return pt__errorf(err, PT_EINTERNAL, "brotli compression failed");
      *out_len = (int64_t)len;
      return PT_OK;
    }
    case PT__CODEC_ZSTD: {
      size_t got = ZSTD_compress(dst, (size_t)cap, src, (size_t)n, level > 0 ? level : 1);
      if (ZSTD_isError(got))
        return pt__errorf(err, PT_EINTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(got));
      *out_len = (int64_t)got;
      return PT_OK;
    }
    case PT__CODEC_LZ4_RAW: {
      int got = LZ4_compress_default((const char *)src, (char *)dst, (int)n, (int)cap);
      if (got <= 0 && n > 0) return pt__errorf(err, PT_EINTERNAL, "lz4 compression failed");
      *out_len = got;
      return PT_OK;
    }
    default:
      return pt__errorf(err, PT_ENOTSUP, "writing with codec %s is not supported",
                        pt__pq_codec_name(codec));
  }
}
