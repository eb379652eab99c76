/* barrier.c — barrier execution mode: four tasks that start together, learn
 * each other (task infos), synchronise (barrier) and exchange their partial
 * sums (all_gather), so that every task centres its rows on the global mean
 * — the shape of a data-parallel training step. Run by the test suite.
 */
#include <protium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output rows: struct<id: int64, centered: float64>. */
static int out_schema(struct ArrowSchema *s, pt_error *err) {
  if (pt_schema_init(s, "+s", "", 0, 2, err) != PT_OK) return err->code;
  if (pt_schema_init(s->children[0], "l", "id", 0, 0, err) != PT_OK ||
      pt_schema_init(s->children[1], "g", "centered", 0, 0, err) != PT_OK) {
    s->release(s);
    return err->code;
  }
  return PT_OK;
}

/* Runs once per partition, in an executor, all four at once. */
static int center(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *arg,
                  size_t arg_size, pt_error *err) {
  (void)arg, (void)arg_size;
  const pt_task_info *peers;
  int64_t n_peers;
  int rc = pt_ctx_task_infos(ctx, &peers, &n_peers, err);
  if (rc != PT_OK) return rc;
  if (pt_ctx_partition_id(ctx) == 0)
    fprintf(stderr, "barrier example: %lld tasks, task 0 on %s (pid %lld, port %d)\n",
            (long long)n_peers, peers[0].host, (long long)peers[0].pid, (int)peers[0].port);

  /* The whole partition, as one stream. */
  int64_t *ids = NULL, n = 0;
  struct ArrowArray b;
  while ((rc = input->get_next(input, &b)) == 0 && b.release) {
    const struct ArrowArray *col = b.children[0];
    const int64_t *v = (const int64_t *)col->buffers[1] + col->offset + b.offset;
    int64_t *grown = realloc(ids, (size_t)(n + b.length + 1) * sizeof *ids);
    if (!grown) {
      b.release(&b);
      free(ids);
      snprintf(err->message, sizeof err->message, "out of memory");
      return err->code = PT_ENOMEM;
    }
    ids = grown;
    memcpy(ids + n, v, (size_t)b.length * sizeof *v);
    n += b.length;
    b.release(&b);
  }
  if (rc != 0) {
    free(ids);
    snprintf(err->message, sizeof err->message, "input: %s", input->get_last_error(input));
    return err->code = PT_EIO;
  }

  /* Everyone's (sum, count), in partition order. */
  int64_t mine[2] = {0, n};
  for (int64_t i = 0; i < n; i++) mine[0] += ids[i];
  size_t sizes[64];
  void *all;
  rc = pt_ctx_barrier(ctx, err);
  if (rc == PT_OK && n_peers <= 64) rc = pt_ctx_all_gather(ctx, mine, sizeof mine, &all, sizes, err);
  if (rc != PT_OK) {
    free(ids);
    return rc;
  }
  double sum = 0, count = 0;
  for (int64_t p = 0; p < n_peers; p++) {
    int64_t theirs[2];
    memcpy(theirs, (char *)all + p * sizeof theirs, sizeof theirs);
    sum += (double)theirs[0];
    count += (double)theirs[1];
  }
  free(all);
  double mean = count > 0 ? sum / count : 0;

  struct ArrowSchema s;
  pt_builder *bld;
  rc = out_schema(&s, err);
  if (rc == PT_OK) {
    rc = pt_builder_new(&s, &bld, err);
    s.release(&s);
  }
  if (rc != PT_OK) {
    free(ids);
    return rc;
  }
  for (int64_t i = 0; i < n && rc == PT_OK; i++) {
    rc = pt_builder_append_int(pt_builder_child(bld, 0), ids[i]);
    if (rc == PT_OK) rc = pt_builder_append_double(pt_builder_child(bld, 1), (double)ids[i] - mean);
    if (rc == PT_OK) rc = pt_builder_append_row(bld);
  }
  free(ids);
  struct ArrowArray out;
  if (rc != PT_OK) snprintf(err->message, sizeof err->message, "%s", pt_builder_last_error(bld));
  else rc = pt_builder_finish(bld, &out, err);
  pt_builder_free(bld);
  if (rc == PT_OK) rc = pt_ctx_emit(ctx, &out, err); /* moved: the engine releases it */
  return rc;
}
PT_REGISTER_FN(center)

int main(void) {
  pt_error err = {0};
  pt_session *s = NULL;
  pt_dataset *range = NULL, *shuffled = NULL, *gang = NULL, *centered = NULL;
  struct ArrowSchema schema = {0};
  struct ArrowArrayStream rows = {0};
  int rc = 1;

  if (pt_session_open("local[4]", NULL, &s, &err) != PT_OK ||  /* 4 executors, 1 slot each */
      pt_range(s, 0, 1000, 8, &range, &err) != PT_OK ||
      pt_repartition(range, 4, &shuffled, &err) != PT_OK ||    /* an ordinary stage, a shuffle */
      pt_barrier(shuffled, &gang, &err) != PT_OK ||            /* the next stage: a barrier stage */
      out_schema(&schema, &err) != PT_OK ||
      pt_map_partitions(gang, center, &schema, NULL, 0, &centered, &err) != PT_OK ||
      pt_collect(centered, &rows, &err) != PT_OK) {            /* runs the job */
    fprintf(stderr, "error: %s\n", err.message);
    goto done;
  }
  int64_t n = 0;
  double total = 0;
  struct ArrowArray b;
  while (rows.get_next(&rows, &b) == 0 && b.release) {
    const struct ArrowArray *col = b.children[1];
    const double *v = (const double *)col->buffers[1] + col->offset + b.offset;
    for (int64_t i = 0; i < b.length; i++) total += v[i];
    n += b.length;
    b.release(&b);
  }
  printf("%lld rows, centred on the global mean: sum %.3f\n", (long long)n, total);
  rc = n == 1000 && total > -1e-6 && total < 1e-6 ? 0 : 1;

done:
  if (rows.release) rows.release(&rows);
  if (schema.release) schema.release(&schema);
  pt_dataset_free(centered);
  pt_dataset_free(gang);
  pt_dataset_free(shuffled);
  pt_dataset_free(range);
  pt_session_close(s);
  return rc;
}
