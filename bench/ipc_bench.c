/* ipc_bench.c — the protium side of `bench/run ipc`: times Arrow IPC stream
 * writing into memory and reading from memory with libprotium, and memcpy
 * bandwidth as the limit (also into freshly allocated memory, which is what
 * a writer into a new buffer faces). bench/ipc.py makes the data with
 * pyarrow, runs this driver on the same bytes and compares. One JSON object
 * per run on stdout.
 *
 *   ipc_bench memcpy MIB REPEATS
 *   ipc_bench case INPUT READ_INPUT COMPRESSION LEVEL REPEATS [WRITE_OUTPUT]
 *   ipc_bench read READ_INPUT REPEATS      (reads only: for profiling)
 *   ipc_bench codec INPUT lz4|zstd LEVEL REPEATS
 *
 * codec: the codec library alone, on one thread: every nonempty buffer of
 * every batch of INPUT compressed on its own (as a writer does), with the
 * libzstd / liblz4 protium links (the distribution's); best of REPEATS. The
 * same measured with pyarrow's own copies of the libraries tells how much of
 * a difference in compressed writes is the libraries'.
 *
 * case: the batches of INPUT (an uncompressed IPC file, memory-mapped) are
 * written to a memory buffer with COMPRESSION (none, lz4, zstd) at LEVEL, best
 * of REPEATS, into a new buffer each time (write_s) and into one pt_buf
 * reused from run to run (write_reused_s: pt_ipc_writer_open_buf); READ_INPUT (an IPC stream, loaded into memory first) is read
 * with pt_ipc_read_buffer pulling every batch, best of REPEATS. The last
 * written stream goes to WRITE_OUTPUT so that the caller can check it.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>
#include <lz4frame.h>
#include <protium.h>
#include <zstd.h>

#include "bench_util.h"

#define MAX_BATCHES 4096

static int fail(const char *what, const pt_error *err) {
  fprintf(stderr, "ipc_bench: %s: %s\n", what, err ? err->message : "failed");
  return 1;
}

/* Best time of memcpy of size bytes from src into a buffer malloc'd just
 * before (and freed after): what a writer into a new buffer pays at least,
 * since the kernel must fault in and clear each fresh page. huge: with the
 * transparent-huge-page advice the IPC writer gives its output buffer. */
static double fresh_copy_s(const char *src, size_t size, int repeats, int huge) {
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    char *dst = malloc(size);
    if (dst == NULL) return -1;
    if (huge) {
      /* As pt__advise_huge: the whole mapping of the block. */
      uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
      uintptr_t lo = (uintptr_t)dst & ~(page - 1);
      uintptr_t hi = (uintptr_t)dst + malloc_usable_size(dst);
      if ((hi & (page - 1)) == 0) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
    memcpy(dst, src, size);
    double t = now_s() - t0;
    if (dst[r % size] != src[r % size]) best = -1; /* keeps the copy observable */
    free(dst);
    if (best < 0) return -1;
    if (t < best) best = t;
  }
  return best;
}

/* Bytes copied per second by memcpy between two buffers of mib MiB: into a
 * buffer touched before (the pure copy), and into fresh buffers (the copy
 * plus first touch of every page, with 4 KiB pages and with huge pages). */
static int run_memcpy(long mib, int repeats) {
  size_t size = (size_t)mib << 20;
  char *src = malloc(size), *dst = malloc(size);
  if (src == NULL || dst == NULL) {
    free(src);
    free(dst);
    return fail("memcpy", NULL);
  }
  memset(src, 1, size); /* touch every page before timing */
  memset(dst, 2, size);
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    memcpy(dst, src, size);
    double t = now_s() - t0;
    if (t < best) best = t;
    src[r % size] = dst[(r * 4099) % size]; /* keep the copies observable */
  }
  double fresh = fresh_copy_s(src, size, repeats, 0);
  double fresh_huge = fresh_copy_s(src, size, repeats, 1);
  printf("{\"memcpy_gb_per_s\": %.3f, \"memcpy_fresh_gb_per_s\": %.3f, "
         "\"memcpy_fresh_huge_gb_per_s\": %.3f, \"bytes\": %zu}\n",
         (double)size / best / 1e9, fresh > 0 ? (double)size / fresh / 1e9 : 0,
         fresh_huge > 0 ? (double)size / fresh_huge / 1e9 : 0, size);
  free(src);
  free(dst);
  return 0;
}

/* The batches of an IPC file, held for the writes (they point into the
 * mapping of the file). */
typedef struct loaded {
  struct ArrowSchema schema;
  struct ArrowArray batches[MAX_BATCHES];
  int n;
  int64_t rows;
} loaded;

static void loaded_free(loaded *l) {
  for (int i = 0; i < l->n; i++) l->batches[i].release(&l->batches[i]);
  if (l->schema.release) l->schema.release(&l->schema);
}

static int load(const char *path, loaded *l, pt_error *err) {
  struct ArrowArrayStream s;
  memset(l, 0, sizeof *l);
  if (pt_ipc_read_path(path, &s, err) != PT_OK) return 1;
  int rc = 1;
  if (s.get_schema(&s, &l->schema) != 0) goto stream_error;
  for (;;) {
    if (l->n == MAX_BATCHES) {
      snprintf(err->message, sizeof err->message, "more than %d batches", MAX_BATCHES);
      goto release_stream;
    }
    struct ArrowArray *b = &l->batches[l->n];
    if (s.get_next(&s, b) != 0) goto stream_error;
    if (b->release == NULL) break;
    l->rows += b->length;
    l->n++;
  }
  rc = 0;
  goto release_stream;
stream_error:
  snprintf(err->message, sizeof err->message, "%s", s.get_last_error(&s));
release_stream:
  s.release(&s);
  if (rc != 0) loaded_free(l);
  return rc;
}

/* Writes every batch into a memory buffer; on success *data (malloc'd) and
 * *size hold the stream. */
static int write_all(const loaded *l, const pt_ipc_write_options *opts, void **data,
                     int64_t *size, pt_error *err) {
  pt_ipc_writer *w;
  if (pt_ipc_writer_open_buffer(&l->schema, opts, &w, err) != PT_OK) return 1;
  int rc = 1;
  for (int i = 0; i < l->n; i++)
    if (pt_ipc_writer_write(w, &l->batches[i], err) != PT_OK) goto free_writer;
  if (pt_ipc_writer_close(w, err) != PT_OK) goto free_writer;
  if (pt_ipc_writer_take_buffer(w, data, size, err) != PT_OK) goto free_writer;
  rc = 0;
free_writer:
  pt_ipc_writer_free(w);
  return rc;
}

/* Writes every batch, appending to buf. */
static int write_all_into(const loaded *l, const pt_ipc_write_options *opts, pt_buf *buf,
                          pt_error *err) {
  pt_ipc_writer *w;
  if (pt_ipc_writer_open_buf(buf, &l->schema, opts, &w, err) != PT_OK) return 1;
  int rc = 1;
  for (int i = 0; i < l->n; i++)
    if (pt_ipc_writer_write(w, &l->batches[i], err) != PT_OK) goto free_writer;
  if (pt_ipc_writer_close(w, err) != PT_OK) goto free_writer;
  rc = 0;
free_writer:
  pt_ipc_writer_free(w);
  return rc;
}

/* Reads every batch of an IPC stream in memory, releasing each. */
static int read_all(const void *data, int64_t size, int64_t *rows, int *batches,
                    pt_error *err) {
  struct ArrowArrayStream s;
  if (pt_ipc_read_buffer(data, size, NULL, NULL, &s, err) != PT_OK) return 1;
  struct ArrowSchema schema;
  struct ArrowArray batch;
  int rc = 1;
  *rows = 0;
  *batches = 0;
  if (s.get_schema(&s, &schema) != 0) goto stream_error;
  schema.release(&schema);
  for (;;) {
    if (s.get_next(&s, &batch) != 0) goto stream_error;
    if (batch.release == NULL) break;
    *rows += batch.length;
    (*batches)++;
    batch.release(&batch);
  }
  rc = 0;
  goto release_stream;
stream_error:
  snprintf(err->message, sizeof err->message, "%s", s.get_last_error(&s));
release_stream:
  s.release(&s);
  return rc;
}

static int slurp(const char *path, void **data, int64_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return 1;
  int rc = 1;
  if (fseek(f, 0, SEEK_END) != 0) goto close_file;
  long n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET) != 0) goto close_file;
  *data = malloc(n ? (size_t)n : 1);
  if (*data == NULL) goto close_file;
  if (fread(*data, 1, (size_t)n, f) != (size_t)n) {
    free(*data);
    goto close_file;
  }
  *size = n;
  rc = 0;
close_file:
  fclose(f);
  return rc;
}

static int run_case(char **argv, int argc) {
  const char *input = argv[2], *read_input = argv[3], *codec = argv[4];
  int level = atoi(argv[5]), repeats = atoi(argv[6]);
  const char *output = argc > 7 ? argv[7] : NULL;
  pt_error err = {0};
  pt_ipc_write_options opts;
  pt_ipc_write_options_init(&opts);
  opts.compression_level = level;
  if (strcmp(codec, "none") == 0) opts.compression = PT_COMPRESSION_NONE;
  else if (strcmp(codec, "lz4") == 0) opts.compression = PT_COMPRESSION_LZ4_FRAME;
  else if (strcmp(codec, "zstd") == 0) opts.compression = PT_COMPRESSION_ZSTD;
  else return fail("unknown compression (none, lz4, zstd)", NULL);

  static loaded l; /* large: not on the stack */
  if (load(input, &l, &err) != 0) return fail(input, &err);
  int status = 1;
  void *written = NULL, *to_read = NULL;
  int64_t written_size = 0, to_read_size = 0, rows = 0;
  int batches = 0;

  double best_write = 1e30;
  for (int r = 0; r < repeats; r++) {
    free(written);
    written = NULL;
    double t0 = now_s();
    if (write_all(&l, &opts, &written, &written_size, &err) != 0) {
      fail("write", &err);
      goto free_all;
    }
    double t = now_s() - t0;
    if (t < best_write) best_write = t;
  }
  /* Into one buffer, reused: the first run pays for its pages. */
  pt_buf reused = {0};
  double best_reused = 1e30;
  for (int r = 0; r < repeats + 1; r++) {
    reused.len = 0;
    double t0 = now_s();
    if (write_all_into(&l, &opts, &reused, &err) != 0) {
      pt_buf_free(&reused);
      fail("write into a reused buffer", &err);
      goto free_all;
    }
    double t = now_s() - t0;
    if (r > 0 && t < best_reused) best_reused = t;
  }
  int same = reused.len == (size_t)written_size && memcmp(reused.data, written, reused.len) == 0;
  pt_buf_free(&reused);
  if (!same) {
    fail("the two writes differ", NULL);
    goto free_all;
  }
  if (output) {
    FILE *f = fopen(output, "wb");
    if (f == NULL || fwrite(written, 1, (size_t)written_size, f) != (size_t)written_size) {
      if (f) fclose(f);
      fail(output, NULL);
      goto free_all;
    }
    fclose(f);
  }

  if (slurp(read_input, &to_read, &to_read_size) != 0) {
    fail(read_input, NULL);
    goto free_all;
  }
  double best_read = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    if (read_all(to_read, to_read_size, &rows, &batches, &err) != 0) {
      fail("read", &err);
      goto free_all;
    }
    double t = now_s() - t0;
    if (t < best_read) best_read = t;
  }
  if (rows != l.rows) {
    fprintf(stderr, "ipc_bench: read %lld rows, wrote %lld\n", (long long)rows,
            (long long)l.rows);
    goto free_all;
  }
  printf(
      "{\"write_s\": %.9f, \"write_reused_s\": %.9f, \"read_s\": %.9f, "
      "\"written_bytes\": %lld, \"rows\": %lld, \"batches\": %d}\n",
      best_write, best_reused, best_read, (long long)written_size, (long long)rows, batches);
  status = 0;
free_all:
  free(written);
  free(to_read);
  loaded_free(&l);
  return status;
}

static int run_read(const char *path, int repeats) {
  void *data;
  int64_t size, rows = 0;
  int batches = 0;
  pt_error err = {0};
  if (slurp(path, &data, &size) != 0) return fail(path, NULL);
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    if (read_all(data, size, &rows, &batches, &err) != 0) {
      free(data);
      return fail("read", &err);
    }
    double t = now_s() - t0;
    if (t < best) best = t;
  }
  free(data);
  printf("{\"read_s\": %.9f, \"rows\": %lld, \"batches\": %d}\n", best, (long long)rows,
         batches);
  return 0;
}

/* Bytes of buffer i (1 or 2) of a column of the benchmark's types (int64,
 * float64, utf8), as read from its file: offset 0, no nulls. */
static int64_t buffer_bytes(const struct ArrowArray *col, int64_t i) {
  if (col->n_buffers == 2) return i == 1 ? col->length * 8 : 0;
  if (i == 1) return (col->length + 1) * 4;
  return ((const int32_t *)col->buffers[1])[col->length];
}

static int run_codec(const char *input, const char *codec, int level, int repeats) {
  static loaded l;
  pt_error err = {0};
  if (load(input, &l, &err) != 0) return fail(input, &err);
  bool zstd = strcmp(codec, "zstd") == 0;
  int64_t biggest = 0;
  for (int b = 0; b < l.n; b++)
    for (int64_t c = 0; c < l.batches[b].n_children; c++)
      for (int64_t i = 1; i < l.batches[b].children[c]->n_buffers; i++) {
        int64_t n = buffer_bytes(l.batches[b].children[c], i);
        if (n > biggest) biggest = n;
      }
  size_t cap = zstd ? ZSTD_compressBound((size_t)biggest)
                    : LZ4F_compressFrameBound((size_t)biggest, NULL);
  char *out = malloc(cap);
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  if (out == NULL || cctx == NULL) {
    free(out);
    ZSTD_freeCCtx(cctx);
    loaded_free(&l);
    return fail("codec: out of memory", NULL);
  }
  LZ4F_preferences_t prefs;
  memset(&prefs, 0, sizeof prefs);
  prefs.compressionLevel = level;
  double best = 1e30;
  int64_t bytes = 0, compressed = 0;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    bytes = compressed = 0;
    for (int b = 0; b < l.n; b++)
      for (int64_t c = 0; c < l.batches[b].n_children; c++) {
        const struct ArrowArray *col = l.batches[b].children[c];
        for (int64_t i = 1; i < col->n_buffers; i++) {
          int64_t n = buffer_bytes(col, i);
          if (n == 0) continue;
          size_t z = zstd ? ZSTD_compressCCtx(cctx, out, cap, col->buffers[i], (size_t)n, level)
                          : LZ4F_compressFrame(out, cap, col->buffers[i], (size_t)n, &prefs);
          bytes += n;
          compressed += (int64_t)z;
        }
      }
    double t = now_s() - t0;
    if (t < best) best = t;
  }
  printf("{\"codec_s\": %.9f, \"bytes\": %lld, \"compressed\": %lld, \"version\": \"%s\"}\n",
         best, (long long)bytes, (long long)compressed,
         zstd ? ZSTD_versionString() : LZ4_versionString());
  free(out);
  ZSTD_freeCCtx(cctx);
  loaded_free(&l);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "memcpy") == 0)
    return run_memcpy(atol(argv[2]), atoi(argv[3]));
  if ((argc == 7 || argc == 8) && strcmp(argv[1], "case") == 0) return run_case(argv, argc);
  if (argc == 4 && strcmp(argv[1], "read") == 0) return run_read(argv[2], atoi(argv[3]));
  if (argc == 6 && strcmp(argv[1], "codec") == 0)
    return run_codec(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
  fprintf(stderr,
          "usage: ipc_bench memcpy MIB REPEATS\n"
          "       ipc_bench case INPUT READ_INPUT none|lz4|zstd LEVEL REPEATS "
          "[WRITE_OUTPUT]\n"
          "       ipc_bench read READ_INPUT REPEATS\n"
          "       ipc_bench codec INPUT lz4|zstd LEVEL REPEATS\n");
  return 2;
}
