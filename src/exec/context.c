/* context.c — the task context's services (pt_ctx_* of protium.h), run on
 * a user function's thread inside an executor: identity, and emitting a
 * partition function's batches.
 */
#include "exec/exec_int.h"

static pt__task *task_of(const pt_task_context *ctx) {
  return ctx != NULL ? (pt__task *)ctx->internal_ : NULL;
}

int64_t pt_ctx_partition_id(const pt_task_context *ctx) { return ctx ? ctx->partition : -1; }
int64_t pt_ctx_num_tasks(const pt_task_context *ctx) { return ctx ? ctx->num_tasks : 0; }
int64_t pt_ctx_stage_attempt(const pt_task_context *ctx) { return ctx ? ctx->stage_attempt : -1; }
int64_t pt_ctx_task_attempt(const pt_task_context *ctx) { return ctx ? ctx->attempt : -1; }

int pt_ctx_emit(const pt_task_context *ctx, struct ArrowArray *batch, pt_error *err) {
  pt__task *t = task_of(ctx);
  if (batch == NULL || batch->release == NULL)
    return pt__errorf(err, PT_EINVAL, "emit: batch must be a valid (unreleased) ArrowArray");
  int rc = PT_OK;
  if (t == NULL || t->emit == NULL)
    rc = pt__errorf(err, PT_ESTATE, "emit: only a partition function (pt_map_partitions) "
                                    "emits batches, from its own thread");
  if (rc != PT_OK) {
    batch->release(batch);
    return rc;
  }
  return t->emit(t->emit_arg, batch, err);
}
