/* context.c — the task context's services (pt_ctx_* of protium.h), run on
 * a user function's thread inside an executor: identity, emitting a
 * partition function's batches, and, for barrier stages, task infos,
 * barrier() and all_gather() through the executor's link to the driver's
 * coordinator, the stage's checkpoint directory, and the resource addresses
 * the driver gave the task (with the environment its child processes get).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/exec_int.h"

static pt__task *task_of(const pt_task_context *ctx) {
  return ctx != NULL ? (pt__task *)ctx->internal_ : NULL;
}

int64_t pt_ctx_partition_id(const pt_task_context *ctx) { return ctx ? ctx->partition : -1; }
int64_t pt_ctx_num_tasks(const pt_task_context *ctx) { return ctx ? ctx->num_tasks : 0; }
int64_t pt_ctx_stage_attempt(const pt_task_context *ctx) { return ctx ? ctx->stage_attempt : -1; }
int64_t pt_ctx_task_attempt(const pt_task_context *ctx) { return ctx ? ctx->attempt : -1; }

/* The driver stopped this task's stage attempt: every call fails at once. */
static int check_stopped(pt__task *t, pt_error *err) {
  if (t->env->coord_check == NULL) return PT_OK;
  return t->env->coord_check(t->env->coord_arg, t->launch->task_id, err);
}

int pt_ctx_emit(const pt_task_context *ctx, struct ArrowArray *batch, pt_error *err) {
  pt__task *t = task_of(ctx);
  if (batch == NULL || batch->release == NULL)
    return pt__errorf(err, PT_EINVAL, "emit: batch must be a valid (unreleased) ArrowArray");
  int rc = PT_OK;
  if (t == NULL || t->emit == NULL)
    rc = pt__errorf(err, PT_ESTATE, "emit: only a partition function (pt_map_partitions) "
                                    "emits batches, from its own thread");
  else if (t->stage->def->barrier)
    rc = check_stopped(t, err);
  if (rc != PT_OK) {
    batch->release(batch);
    return rc;
  }
  return t->emit(t->emit_arg, batch, err);
}

static int barrier_task(const pt_task_context *ctx, const char *what, pt__task **out,
                        pt_error *err) {
  pt__task *t = task_of(ctx);
  *out = t;
  if (t == NULL)
    return pt__errorf(err, PT_EINVAL, "%s: ctx must be the context the function was given",
                      what);
  if (!t->stage->def->barrier)
    return pt__errorf(err, PT_ESTATE, "%s: stage %lld is not a barrier stage; call "
                      "pt_barrier on the dataset before the function", what,
                      (long long)ctx->stage_id);
  return PT_OK;
}

int pt_ctx_task_infos(const pt_task_context *ctx, const pt_task_info **infos, int64_t *n,
                      pt_error *err) {
  pt__task *t;
  if (infos == NULL || n == NULL)
    return pt__errorf(err, PT_EINVAL, "task_infos: infos and n must not be NULL");
  *infos = NULL;
  *n = 0;
  PT_RETURN_NOT_OK(barrier_task(ctx, "task_infos", &t, err));
  *infos = t->infos;
  *n = t->n_infos;
  return PT_OK;
}

static int coord(const pt_task_context *ctx, const char *what, int kind, const void *data,
                 size_t size, void **out, size_t *sizes, pt_error *err) {
  pt__task *t;
  PT_RETURN_NOT_OK(barrier_task(ctx, what, &t, err));
  if (t->env->coord_call == NULL)
    return pt__errorf(err, PT_ESTATE, "%s: this task runs without a driver", what);
  int64_t seq = t->seq++;
  int rc = t->env->coord_call(t->env->coord_arg, t->launch->task_id, seq, kind, data, size, out,
                              sizes, t->ctx.num_tasks, err);
  if (rc != PT_OK) pt__error_prefix(err, rc, "%s (step %lld): ", what, (long long)seq);
  return rc;
}

int pt_ctx_barrier(const pt_task_context *ctx, pt_error *err) {
  return coord(ctx, "barrier", PROTIUM__BARRIER_KIND__BARRIER_KIND_BARRIER, NULL, 0, NULL, NULL,
               err);
}

int pt_ctx_all_gather(const pt_task_context *ctx, const void *data, size_t size, void **out,
                      size_t *sizes, pt_error *err) {
  if (out == NULL || sizes == NULL || (size > 0 && data == NULL))
    return pt__errorf(err, PT_EINVAL, "all_gather: out and sizes must not be NULL, nor data "
                                      "when size > 0");
  *out = NULL;
  return coord(ctx, "all_gather", PROTIUM__BARRIER_KIND__BARRIER_KIND_ALL_GATHER, data, size,
               out, sizes, err);
}

int pt_ctx_checkpoint_dir(const pt_task_context *ctx, const char **path, pt_error *err) {
  pt__task *t = task_of(ctx);
  if (path == NULL) return pt__errorf(err, PT_EINVAL, "checkpoint_dir: path must not be NULL");
  *path = NULL;
  if (t == NULL)
    return pt__errorf(err, PT_EINVAL,
                      "checkpoint_dir: ctx must be the context the function was given");
  const char *dir = t->stage->def->checkpoint_dir;
  if (dir == NULL || dir[0] == '\0')
    return pt__errorf(err, PT_ESTATE, "checkpoint_dir: this task runs without a driver");
  if (!t->checkpoint_made) {
    PT_RETURN_NOT_OK(pt__mkdirs(dir, err));
    t->checkpoint_made = 1;
  }
  *path = dir;
  return PT_OK;
}

/* ------------------------------------------------------------------------ */
/* Resources */

int pt_ctx_resources(const pt_task_context *ctx, const char *name, const char *const **addrs,
                     int64_t *n, pt_error *err) {
  pt__task *t = task_of(ctx);
  if (t == NULL || name == NULL || addrs == NULL || n == NULL)
    return pt__errorf(err, PT_EINVAL, "resources: ctx (the function's), name, addrs and n must "
                                      "not be NULL");
  *addrs = NULL;
  *n = 0;
  for (size_t i = 0; i < t->n_res; i++) {
    const Protium__Resource *r = t->res[i];
    if (r->name && strcmp(r->name, name) == 0) {
      *addrs = (const char *const *)r->addresses;
      *n = (int64_t)r->n_addresses;
    }
  }
  return PT_OK;
}

void pt_env_free(char **envp) {
  if (envp == NULL) return;
  for (size_t i = 0; envp[i]; i++) pt__free(envp[i]);
  pt__free(envp);
}

/* "NAME=" of entry e, compared with name. */
static int env_is(const char *e, const char *name) {
  size_t n = strlen(name);
  return strncmp(e, name, n) == 0 && e[n] == '=';
}

int pt_ctx_child_env(const pt_task_context *ctx, char ***envp, pt_error *err) {
  pt__task *t = task_of(ctx);
  if (t == NULL || envp == NULL)
    return pt__errorf(err, PT_EINVAL, "child_env: ctx (the function's) and envp must not be NULL");
  *envp = NULL;
  extern char **environ;
  size_t n_env = 0;
  while (environ[n_env]) n_env++;
  char **env = pt__calloc(n_env + t->n_res + 1, sizeof *env);
  if (env == NULL) return pt__errorf(err, PT_ENOMEM, "child_env: out of memory");
  size_t k = 0;
  for (size_t i = 0; i < n_env; i++) {
    int replaced = 0;
    for (size_t r = 0; r < t->n_res; r++)
      replaced |= t->res[r]->env && *t->res[r]->env && env_is(environ[i], t->res[r]->env);
    if (replaced) continue;
    if ((env[k] = pt__strdup(environ[i])) == NULL) goto oom;
    k++;
  }
  for (size_t r = 0; r < t->n_res; r++) {
    const Protium__Resource *res = t->res[r];
    if (!res->env || !*res->env) continue;
    size_t len = strlen(res->env) + 2;
    for (size_t a = 0; a < res->n_addresses; a++) len += strlen(res->addresses[a]) + 1;
    if ((env[k] = pt__malloc(len)) == NULL) goto oom;
    char *p = env[k++];
    p += sprintf(p, "%s=", res->env);
    for (size_t a = 0; a < res->n_addresses; a++)
      p += sprintf(p, "%s%s", a ? "," : "", res->addresses[a]);
  }
  env[k] = NULL;
  *envp = env;
  return PT_OK;
oom:
  pt_env_free(env);
  return pt__errorf(err, PT_ENOMEM, "child_env: out of memory");
}
