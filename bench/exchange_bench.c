/* exchange_bench.c — protium's C row of `bench/run exchange`: x + 1 over
 * Arrow batches by a C map function (no Python anywhere), and memcpy's
 * bandwidth, the bound a batch exchange is read against.
 *
 *   exchange_bench c DIR R      read_ipc(DIR) → map x+1 → count, best of R: s
 *   exchange_bench memcpy MB R  memcpy of MB MiB, best of R: GB/s
 *
 * Each prints one JSON object on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "protium.h"

/* Input: a struct of x int64 and f float64 (no nulls, offset 0, as the
 * benchmark writes them); output: x, f and y = x + 1. x and f are shared
 * with the input, not copied: the output holds a slice of the input. */
typedef struct {
  struct ArrowArray in; /* a view of the input batch, keeping its buffers */
  struct ArrowArray *children[3];
  struct ArrowArray y;
  const void *y_buffers[2];
  int64_t *y_data;
  const void *top_buffers[1];
} plus_one_out;

static void release_child_noop(struct ArrowArray *a) { a->release = NULL; }

static void release_out(struct ArrowArray *a) {
  plus_one_out *p = a->private_data;
  p->in.release(&p->in);
  free(p->y_data);
  free(p);
  a->release = NULL;
}

static int plus_one(const pt_task_context *ctx, const struct ArrowSchema *schema,
                    const struct ArrowArray *batch, struct ArrowArray *out, const void *arg,
                    size_t arg_size, pt_error *err) {
  (void)ctx, (void)schema, (void)arg, (void)arg_size;
  plus_one_out *p = calloc(1, sizeof *p);
  int64_t n = batch->length;
  if (!p || !(p->y_data = malloc((size_t)(n ? n : 1) * sizeof(int64_t)))) {
    free(p);
    snprintf(err->message, sizeof err->message, "out of memory");
    return PT_ENOMEM;
  }
  if (pt_array_slice((struct ArrowArray *)batch, 0, n, &p->in, err) != PT_OK) {
    free(p->y_data);
    free(p);
    return PT_ENOMEM;
  }
  const int64_t *x = (const int64_t *)p->in.children[0]->buffers[1] + p->in.children[0]->offset;
  for (int64_t i = 0; i < n; i++) p->y_data[i] = x[i] + 1;
  p->y = (struct ArrowArray){.length = n, .n_buffers = 2, .buffers = p->y_buffers,
                             .release = release_child_noop};
  p->y_buffers[1] = p->y_data;
  p->children[0] = p->in.children[0];
  p->children[1] = p->in.children[1];
  p->children[2] = &p->y;
  *out = (struct ArrowArray){.length = n, .n_buffers = 1, .n_children = 3,
                             .buffers = p->top_buffers, .children = p->children,
                             .release = release_out, .private_data = p};
  return PT_OK;
}
PT_REGISTER_FN(plus_one)

static int die(const char *what, const pt_error *err) {
  fprintf(stderr, "exchange_bench: %s: %s\n", what, err ? err->message : "failed");
  return 1;
}

static int run_c(const char *dir, int repeats) {
  pt_error err = {0};
  pt_session *s;
  if (pt_session_open("local[2]", NULL, &s, &err) != PT_OK) return die("session", &err);
  pt_dataset *src, *mapped;
  if (pt_read_ipc(s, dir, &src, &err) != PT_OK) return die("read_ipc", &err);
  struct ArrowSchema in, out;
  if (pt_dataset_schema(src, &in, &err) != PT_OK) return die("schema", &err);
  if (pt_schema_init(&out, "+s", "", 0, 3, &err) != PT_OK) return die("schema", &err);
  pt_schema_copy(in.children[0], out.children[0], &err);
  pt_schema_copy(in.children[1], out.children[1], &err);
  pt_schema_init(out.children[2], "l", "y", ARROW_FLAG_NULLABLE, 0, &err);
  if (pt_map_batches(src, plus_one, &out, NULL, 0, &mapped, &err) != PT_OK)
    return die("map", &err);
  double best = 1e30;
  int64_t rows = 0;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    if (pt_count(mapped, &rows, &err) != PT_OK) return die("count", &err);
    double t = now_s() - t0;
    if (t < best) best = t;
  }
  printf("{\"seconds\": %.6f, \"rows\": %lld}\n", best, (long long)rows);
  in.release(&in);
  out.release(&out);
  pt_dataset_free(mapped);
  pt_dataset_free(src);
  pt_session_close(s);
  return 0;
}

static int run_memcpy(int mib, int repeats) {
  size_t n = (size_t)mib << 20;
  char *a = malloc(n), *b = malloc(n);
  if (!a || !b) return die("malloc", NULL);
  memset(a, 1, n);
  memset(b, 2, n);
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t0 = now_s();
    memcpy(b, a, n);
    double t = now_s() - t0;
    if (t < best) best = t;
  }
  printf("{\"gb_per_s\": %.3f, \"check\": %d}\n", (double)n / best / 1e9, b[n / 2]);
  free(a);
  free(b);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "c") == 0) return run_c(argv[2], atoi(argv[3]));
  if (argc == 4 && strcmp(argv[1], "memcpy") == 0)
    return run_memcpy(atoi(argv[2]), atoi(argv[3]));
  fprintf(stderr, "usage: exchange_bench c DIR REPEATS | memcpy MIB REPEATS\n");
  return 2;
}
