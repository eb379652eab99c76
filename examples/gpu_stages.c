/* gpu_stages.c — accelerator-aware scheduling: one job whose ETL stage runs
 * on CPUs, whose training stage is a barrier stage of 4 tasks with 1 GPU
 * each, and whose inference stage runs 8 tasks on 0.25 GPU each. The GPUs
 * here are fake addresses, so it runs anywhere; on a GPU machine set
 * resources.gpu.discovery_script to scripts/discover-gpus. Run by the tests.
 */
#include <protium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Training: every task holds one GPU of its own, which the gang checks. */
static int train(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *arg,
                 size_t arg_size, pt_error *err) {
  (void)arg, (void)arg_size;
  const char *const *gpus;
  int64_t n_gpus;
  int rc = pt_ctx_resources(ctx, "gpu", &gpus, &n_gpus, err);
  if (rc != PT_OK) return rc;
  char mine[32] = {0};
  snprintf(mine, sizeof mine, "%s", n_gpus == 1 ? gpus[0] : "none");
  size_t sizes[64];
  void *all;
  if (pt_ctx_num_tasks(ctx) > 64) return err->code = PT_EINVAL;
  rc = pt_ctx_all_gather(ctx, mine, sizeof mine, &all, sizes, err);
  if (rc != PT_OK) return rc;
  for (int64_t p = 0; p < pt_ctx_num_tasks(ctx); p++)
    if (p != pt_ctx_partition_id(ctx) && strcmp((char *)all + p * sizeof mine, mine) == 0)
      rc = PT_EINTERNAL; /* two trainers on one GPU: never happens */
  free(all);
  if (rc != PT_OK || n_gpus != 1) {
    snprintf(err->message, sizeof err->message, "gpu %s is not this task's alone", mine);
    return err->code = PT_EINTERNAL;
  }
  /* Processes the task starts (a CUDA worker) get CUDA_VISIBLE_DEVICES=<mine>
   * from pt_ctx_child_env; here the rows just pass through. */
  struct ArrowArray b;
  while ((rc = input->get_next(input, &b)) == 0 && b.release)
    if ((rc = pt_ctx_emit(ctx, &b, err)) != PT_OK) return rc;
  return rc == 0 ? PT_OK : (err->code = PT_EIO);
}
PT_REGISTER_FN(train)

/* Inference: a quarter of a GPU per task; emits (gpu, rows) for its partition. */
static int infer(const pt_task_context *ctx, struct ArrowArrayStream *input, const void *arg,
                 size_t arg_size, pt_error *err) {
  (void)arg, (void)arg_size;
  const char *const *gpus;
  int64_t n_gpus, rows = 0;
  int rc = pt_ctx_resources(ctx, "gpu", &gpus, &n_gpus, err);
  if (rc != PT_OK) return rc;
  struct ArrowArray b;
  while ((rc = input->get_next(input, &b)) == 0 && b.release) {
    rows += b.length;
    b.release(&b);
  }
  struct ArrowSchema s;
  pt_builder *bld;
  if (pt_schema_init(&s, "+s", "", 0, 2, err) != PT_OK) return err->code;
  if (pt_schema_init(s.children[0], "l", "gpu", 0, 0, err) != PT_OK ||
      pt_schema_init(s.children[1], "l", "rows", 0, 0, err) != PT_OK ||
      pt_builder_new(&s, &bld, err) != PT_OK) {
    s.release(&s);
    return err->code;
  }
  s.release(&s);
  pt_builder_append_int(pt_builder_child(bld, 0), n_gpus == 1 ? atoll(gpus[0]) : -1);
  pt_builder_append_int(pt_builder_child(bld, 1), rows);
  pt_builder_append_row(bld);
  rc = pt_builder_finish(bld, &b, err);
  pt_builder_free(bld);
  return rc != PT_OK ? rc : pt_ctx_emit(ctx, &b, err);
}
PT_REGISTER_FN(infer)

static int out_schema(struct ArrowSchema *s, pt_error *err) {
  if (pt_schema_init(s, "+s", "", 0, 2, err) != PT_OK) return err->code;
  if (pt_schema_init(s->children[0], "l", "gpu", 0, 0, err) != PT_OK ||
      pt_schema_init(s->children[1], "l", "rows", 0, 0, err) != PT_OK) {
    s->release(s);
    return err->code;
  }
  return PT_OK;
}

int main(void) {
  pt_error err = {0};
  pt_conf *conf = NULL;
  pt_session *s = NULL;
  pt_resource_profile *one = NULL, *quarter = NULL;
  pt_dataset *etl = NULL, *shuf = NULL, *with_gpu = NULL, *gang = NULL, *trained = NULL,
             *shuf2 = NULL, *shared = NULL, *inferred = NULL;
  struct ArrowSchema schema = {0};
  struct ArrowArrayStream rows = {0};
  int rc = 1;

  if (pt_conf_new(&conf, &err) != PT_OK ||
      /* 4 GPUs on this host: each of the 2 executors owns 2 */
      pt_conf_set(conf, "resources.gpu.addresses", "0,1,2,3", &err) != PT_OK ||
      pt_conf_set(conf, "executor.slots", "4", &err) != PT_OK ||
      pt_session_open("local[2]", conf, &s, &err) != PT_OK ||
      pt_resource_profile_new(&one, &err) != PT_OK ||
      pt_resource_profile_require(one, "gpu", 1, 0, &err) != PT_OK ||
      pt_resource_profile_new(&quarter, &err) != PT_OK ||
      pt_resource_profile_require(quarter, "gpu", 0.25, 0, &err) != PT_OK ||
      pt_range(s, 0, 1000, 8, &etl, &err) != PT_OK ||                /* ETL: CPUs only */
      pt_repartition(etl, 4, &shuf, &err) != PT_OK ||
      pt_with_resources(shuf, one, &with_gpu, &err) != PT_OK ||      /* training: 1 GPU each */
      pt_barrier(with_gpu, &gang, &err) != PT_OK ||
      pt_map_partitions(gang, train, NULL, NULL, 0, &trained, &err) != PT_OK ||
      pt_repartition(trained, 8, &shuf2, &err) != PT_OK ||
      pt_with_resources(shuf2, quarter, &shared, &err) != PT_OK ||   /* inference: 1/4 GPU */
      out_schema(&schema, &err) != PT_OK ||
      pt_map_partitions(shared, infer, &schema, NULL, 0, &inferred, &err) != PT_OK ||
      pt_collect(inferred, &rows, &err) != PT_OK) {
    fprintf(stderr, "error: %s\n", err.message);
    goto done;
  }
  int64_t total = 0, tasks = 0, per_gpu[4] = {0};
  struct ArrowArray b;
  while (rows.get_next(&rows, &b) == 0 && b.release) {
    const int64_t *gpu = (const int64_t *)b.children[0]->buffers[1] + b.children[0]->offset;
    const int64_t *n = (const int64_t *)b.children[1]->buffers[1] + b.children[1]->offset;
    for (int64_t i = 0; i < b.length; i++, tasks++) {
      total += n[i];
      if (gpu[i] >= 0 && gpu[i] < 4) per_gpu[gpu[i]]++;
    }
    b.release(&b);
  }
  printf("%lld inference tasks on gpus 0-3: %lld %lld %lld %lld; %lld rows\n", (long long)tasks,
         (long long)per_gpu[0], (long long)per_gpu[1], (long long)per_gpu[2],
         (long long)per_gpu[3], (long long)total);
  rc = tasks == 8 && total == 1000 && per_gpu[0] + per_gpu[1] + per_gpu[2] + per_gpu[3] == 8
           ? 0 : 1;

done:
  if (rows.release) rows.release(&rows);
  if (schema.release) schema.release(&schema);
  pt_dataset_free(inferred);
  pt_dataset_free(shared);
  pt_dataset_free(shuf2);
  pt_dataset_free(trained);
  pt_dataset_free(gang);
  pt_dataset_free(with_gpu);
  pt_dataset_free(shuf);
  pt_dataset_free(etl);
  pt_resource_profile_free(quarter);
  pt_resource_profile_free(one);
  pt_session_close(s);
  pt_conf_free(conf);
  return rc;
}
