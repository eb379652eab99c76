/* parquet_bench.c — the protium side of `bench/run parquet` (bench/parquet.py):
 * reads a Parquet file, or writes the batches of an Arrow IPC file as
 * Parquet into memory, N times on T threads at once, and prints one JSON
 * line with the best wall time of a round (and the least CPU time of the
 * process in a round, which other work on a loaded machine moves less).
 *
 *   parquet_bench read FILE N T[:D] [COLUMN LO HI]  (with a filter LO <= COLUMN < HI;
 *                                                 D: threads decoding each stream, default 1,
 *                                                 which reads the next row group ahead on
 *                                                 a second; 0: one, without reading ahead)
 *   parquet_bench write IPCFILE N T CODEC [E]    (CODEC: none snappy zstd; E: threads
 *                                                 encoding each file, default 1)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <protium.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct job {
  const char *path;
  const pt_parquet_filter *filter;
  int decode_threads;    /* read: opts.threads of each stream; 0: 1 with no_readahead */
  /* write */
  struct ArrowSchema *schema;
  struct ArrowArray *batches;
  int64_t n_batches;
  int codec;
  int encode_threads;
  pt_buf *out;           /* the file, in memory: kept from round to round
                            (as pyarrow's memory pool keeps its memory), so
                            that a round does not measure fresh pages */
  /* results */
  int64_t rows, bytes, read_groups, skipped;
  double own_cpu;        /* read: CPU seconds of the thread that read (helpers not counted) */
  int failed;
  char message[PT_ERROR_SIZE];
} job;

static double thread_cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run_read(void *arg) {
  job *j = arg;
  double c0 = thread_cpu_now();
  pt_error err;
  pt_parquet_read_options opts;
  pt_parquet_read_options_init(&opts);
  opts.filter = j->filter;
  opts.threads = j->decode_threads > 0 ? j->decode_threads : 1;
  opts.no_readahead = j->decode_threads == 0;
  struct ArrowArrayStream s;
  if (pt_parquet_read_path(j->path, &opts, &s, &err) != PT_OK) {
    j->failed = 1;
    snprintf(j->message, sizeof j->message, "%s", err.message);
    return NULL;
  }
  j->rows = 0;
  struct ArrowArray a;
  while (s.get_next(&s, &a) == 0 && a.release != NULL) {
    j->rows += a.length;
    a.release(&a);
  }
  if (s.get_last_error(&s) != NULL) {
    j->failed = 1;
    snprintf(j->message, sizeof j->message, "%s", s.get_last_error(&s));
  }
  pt_parquet_stream_row_groups(&s, &j->read_groups, &j->skipped, NULL);
  s.release(&s);
  j->own_cpu = thread_cpu_now() - c0;
  return NULL;
}

static void *run_write(void *arg) {
  job *j = arg;
  pt_error err;
  pt_parquet_write_options opts;
  pt_parquet_write_options_init(&opts);
  opts.codec = j->codec;
  opts.threads = j->encode_threads;
  pt_buf *out = j->out;
  out->len = 0;
  pt_parquet_writer *w;
  if (pt_parquet_writer_open_buf(out, j->schema, &opts, &w, &err) != PT_OK) {
    j->failed = 1;
    snprintf(j->message, sizeof j->message, "%s", err.message);
    return NULL;
  }
  j->rows = 0;
  for (int64_t i = 0; i < j->n_batches && !j->failed; i++) {
    if (pt_parquet_writer_write(w, &j->batches[i], &err) != PT_OK) {
      j->failed = 1;
      snprintf(j->message, sizeof j->message, "%s", err.message);
    }
    j->rows += j->batches[i].length;
  }
  if (!j->failed && pt_parquet_writer_close(w, &err) != PT_OK) {
    j->failed = 1;
    snprintf(j->message, sizeof j->message, "%s", err.message);
  }
  j->bytes = (int64_t)out->len;
  pt_parquet_writer_free(w);
  return NULL;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double best_cpu = 1e30;
static double best_own = 1e30, best_crit = 1e30; /* reads on one stream (T = 1) */
static pt_buf outs[16]; /* each thread's output (writes) */

/* Runs fn on t threads at once, n times; the best round's seconds. */
static double rounds(void *(*fn)(void *), job *proto, int n, int t, job *first) {
  double best = 1e30;
  for (int r = 0; r < n; r++) {
    job jobs[16];
    pthread_t th[16];
    for (int k = 0; k < t; k++) {
      jobs[k] = *proto;
      jobs[k].out = &outs[k];
    }
    double t0 = now(), c0 = cpu_now();
    for (int k = 0; k < t; k++) pthread_create(&th[k], NULL, fn, &jobs[k]);
    for (int k = 0; k < t; k++) pthread_join(th[k], NULL);
    double dt = now() - t0, dc = cpu_now() - c0;
    if (dc < best_cpu) best_cpu = dc;
    if (t == 1 && fn == run_read) {
      /* The reading thread's CPU, and the busier of it and the rest of
       * the round's (a helper reading ahead): what the read would take
       * on an idle machine with a core for each. */
      double own = jobs[0].own_cpu, crit = own > dc - own ? own : dc - own;
      if (own < best_own) best_own = own;
      if (crit < best_crit) best_crit = crit;
    }
    for (int k = 0; k < t; k++)
      if (jobs[k].failed) {
        fprintf(stderr, "parquet_bench: %s\n", jobs[k].message);
        exit(1);
      }
    if (dt < best) best = dt;
    *first = jobs[0];
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: parquet_bench read FILE N T[:D] [COLUMN LO HI] | write IPCFILE N T CODEC [E]\n");
    return 2;
  }
  int n = atoi(argv[3]), t = atoi(argv[4]);
  if (n < 1 || t < 1 || t > 16) return 2;
  job proto = {.path = argv[2]}, res = {0};
  const char *colon = strchr(argv[4], ':');
  proto.decode_threads = colon ? atoi(colon + 1) : 1;
  pt_error err;
  if (strcmp(argv[1], "read") == 0) {
    pt_parquet_filter *f = NULL, *lo = NULL, *hi = NULL;
    if (argc == 8) {
      int64_t a = atoll(argv[6]), b = atoll(argv[7]);
      if (pt_parquet_filter_int(argv[5], PT_PARQUET_GE, &a, 1, &lo, &err) != PT_OK ||
          pt_parquet_filter_int(argv[5], PT_PARQUET_LT, &b, 1, &hi, &err) != PT_OK ||
          pt_parquet_filter_combine(PT_PARQUET_AND, lo, hi, &f, &err) != PT_OK) {
        fprintf(stderr, "parquet_bench: %s\n", err.message);
        return 1;
      }
      proto.filter = f;
    }
    double best = rounds(run_read, &proto, n, t, &res);
    printf("{\"seconds\": %.6f, \"cpu_seconds\": %.6f, \"rows\": %lld, \"row_groups_read\": %lld, "
           "\"skipped\": %lld",
           best, best_cpu, (long long)res.rows, (long long)res.read_groups, (long long)res.skipped);
    if (t == 1)
      printf(", \"reader_cpu_seconds\": %.6f, \"critical_cpu_seconds\": %.6f", best_own, best_crit);
    printf("}\n");
    pt_parquet_filter_free(f);
    return 0;
  }
  if (strcmp(argv[1], "write") == 0 && (argc == 6 || argc == 7)) {
    const char *codec = argv[5];
    proto.encode_threads = argc == 7 ? atoi(argv[6]) : 1;
    proto.codec = strcmp(codec, "none") == 0   ? PT_PARQUET_UNCOMPRESSED
                  : strcmp(codec, "zstd") == 0 ? PT_PARQUET_ZSTD
                                               : PT_PARQUET_SNAPPY;
    struct ArrowArrayStream s;
    if (pt_ipc_read_path(argv[2], &s, &err) != PT_OK) {
      fprintf(stderr, "parquet_bench: %s\n", err.message);
      return 1;
    }
    struct ArrowSchema schema;
    s.get_schema(&s, &schema);
    struct ArrowArray *batches = calloc(4096, sizeof *batches);
    int64_t nb = 0;
    while (nb < 4096 && s.get_next(&s, &batches[nb]) == 0 && batches[nb].release != NULL) nb++;
    proto.schema = &schema;
    proto.batches = batches;
    proto.n_batches = nb;
    double best = rounds(run_write, &proto, n, t, &res);
    printf("{\"seconds\": %.6f, \"cpu_seconds\": %.6f, \"rows\": %lld, \"bytes\": %lld}\n", best,
           best_cpu, (long long)res.rows, (long long)res.bytes);
    for (int k = 0; k < 16; k++) pt_buf_free(&outs[k]);
    for (int64_t i = 0; i < nb; i++) batches[i].release(&batches[i]);
    free(batches);
    schema.release(&schema);
    s.release(&s);
    return 0;
  }
  fprintf(stderr, "parquet_bench: unknown mode %s\n", argv[1]);
  return 2;
}
