/* task.c — preparing stage definitions (a private copy, schemas decoded,
 * functions looked up once per stage rather than per task) and running one
 * task: open the source, pass each batch through the transforms into the
 * sink, and turn the outcome into a TaskStatus.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/registry.h"
#include "exec/exec_int.h"

/* ------------------------------------------------------------------------ */
/* Stages */

static void stage_free(pt__stage *s) {
  if (s == NULL) return;
  if (s->ops != NULL)
    for (size_t i = 0; i < s->def->n_ops; i++) {
      struct ArrowSchema *os = &s->ops[i].out_schema;
      if (os->release != NULL) os->release(os);
      pt__free(s->ops[i].error);
    }
  pt__free(s->ops);
  if (s->source_schema.release != NULL) s->source_schema.release(&s->source_schema);
  pt__msg_free(s->def ? &s->def->base : NULL);
  pt__free(s);
}

static int op_error(pt__op_prep *op, pt_error *e) {
  op->error = pt__strdup(e->message);
  return op->error != NULL ? PT_OK : PT_ENOMEM;
}

int pt__stage_new(const Protium__StageDef *def, pt__stage **out, pt_error *err) {
  *out = NULL;
  int rc = PT_OK;
  uint8_t *packed = NULL;
  pt__stage *s = pt__calloc(1, sizeof *s);
  if (s == NULL) return pt__errorf(err, PT_ENOMEM, "out of memory for a stage");
  atomic_init(&s->refs, 1);
  /* A private copy: the LaunchBatch it came in is freed after dispatch. */
  size_t size = protobuf_c_message_get_packed_size(&def->base);
  packed = pt__malloc(size ? size : 1);
  if (packed == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory for a stage");
    goto fail;
  }
  protobuf_c_message_pack(&def->base, packed);
  s->def = protium__stage_def__unpack(&pt__pb_allocator, size, packed);
  if (s->def == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory copying a stage");
    goto fail;
  }
  s->ops = pt__calloc(s->def->n_ops ? s->def->n_ops : 1, sizeof *s->ops);
  if (s->ops == NULL) {
    rc = pt__errorf(err, PT_ENOMEM, "out of memory for a stage");
    goto fail;
  }
  if (s->def->schema.len > 0) {
    pt_error e;
    if (pt__schema_from_ipc(s->def->schema.data, s->def->schema.len, &s->source_schema, &e) !=
        PT_OK) {
      pt__error_prefix(&e, PT_EFORMAT, "stage %lld: source schema: ",
                       (long long)s->def->stage_id);
      if (s->def->n_ops > 0 && op_error(&s->ops[0], &e) != PT_OK) {
        rc = pt__errorf(err, PT_ENOMEM, "out of memory");
        goto fail;
      }
    }
  }
  for (size_t i = 0; i < s->def->n_ops; i++) {
    const Protium__Op *op = s->def->ops[i];
    pt__op_prep *prep = &s->ops[i];
    pt_error e = {0};
    int bad = 0;
    if (op->op_case == PROTIUM__OP__OP_MAP || op->op_case == PROTIUM__OP__OP_FILTER) {
      const char *name = op->op_case == PROTIUM__OP__OP_MAP ? op->map->fn : op->filter->fn;
      const char *what = op->op_case == PROTIUM__OP__OP_MAP ? "map" : "filter";
      if (pt__fn_lookup_name(name, &prep->fn, &e) != PT_OK) {
        pt__error_prefix(&e, PT_EINVAL, "%s '%s': ", what, name);
        bad = 1;
      }
    }
    if (!bad && op->op_case == PROTIUM__OP__OP_MAP && op->map->out_schema.len > 0 &&
        pt__schema_from_ipc(op->map->out_schema.data, op->map->out_schema.len,
                            &prep->out_schema, &e) != PT_OK) {
      pt__error_prefix(&e, PT_EFORMAT, "map '%s': output schema: ", op->map->fn);
      bad = 1;
    }
    if (bad && prep->error == NULL && op_error(prep, &e) != PT_OK) {
      rc = pt__errorf(err, PT_ENOMEM, "out of memory");
      goto fail;
    }
  }
  pt__free(packed);
  *out = s;
  return PT_OK;
fail:
  pt__free(packed);
  stage_free(s);
  return rc;
}

void pt__stage_ref(pt__stage *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void pt__stage_unref(pt__stage *s) {
  if (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
    stage_free(s);
}

int64_t pt__stage_id(const pt__stage *s) { return s->def->stage_id; }
int64_t pt__stage_attempt(const pt__stage *s) { return s->def->stage_attempt; }

/* ------------------------------------------------------------------------ */
/* Statuses */

static void free_string(char **p) {
  if (*p != NULL && *p != protobuf_c_empty_string) pt__free(*p);
  *p = (char *)protobuf_c_empty_string;
}

void pt__task_status_clear(Protium__TaskStatus *st) {
  free_string(&st->error);
  free_string(&st->output_path);
  if (st->shuffle != NULL) {
    free_string(&st->shuffle->path);
    pt__free(st->shuffle->segment_offsets);
    pt__free(st->shuffle->segment_rows);
    pt__free(st->shuffle);
    st->shuffle = NULL;
  }
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------ */
/* Running a task */

/* The schema after op i (the sink's input when i is the last transform). */
static const struct ArrowSchema *schema_after(pt__stage *s, size_t i,
                                              const struct ArrowSchema *in) {
  if (s->def->ops[i]->op_case == PROTIUM__OP__OP_MAP && s->ops[i].out_schema.release != NULL)
    return &s->ops[i].out_schema;
  return in;
}

static int run(pt__task *t, Protium__TaskStatus *st, pt_error *err) {
  const Protium__StageDef *def = t->stage->def;
  size_t n_ops = def->n_ops;
  if (n_ops < 2)
    return pt__errorf(err, PT_EINVAL,
                      "stage %lld has %zu operators; it needs a source and a sink",
                      (long long)def->stage_id, n_ops);
  for (size_t i = 0; i < n_ops; i++)
    if (t->stage->ops[i].error != NULL)
      return pt__errorf(err, PT_EINVAL, "%s", t->stage->ops[i].error);
  const Protium__Op *src_op = def->ops[0], *sink_op = def->ops[n_ops - 1];

  /* Counting a range needs no rows. */
  if (n_ops == 2 && src_op->op_case == PROTIUM__OP__OP_RANGE &&
      sink_op->op_case == PROTIUM__OP__OP_COUNT) {
    int64_t lo, hi;
    pt__range_bounds(src_op->range, t->launch->partition, &lo, &hi);
    st->rows = st->count = st->rows_read = hi - lo;
    return PT_OK;
  }

  pt__source src;
  pt__sink sink;
  memset(&sink, 0, sizeof sink);
  PT_RETURN_NOT_OK(pt__source_open(t, src_op, &src, err));
  int rc = PT_OK;
  const struct ArrowSchema *sink_schema = &src.schema;
  for (size_t i = 1; i + 1 < n_ops; i++) sink_schema = schema_after(t->stage, i, sink_schema);
  rc = pt__sink_open(t, sink_op, sink_schema, &sink, err);
  if (rc != PT_OK) goto close_all;
  for (;;) {
    struct ArrowArray batch;
    rc = pt__source_next(&src, &batch, err);
    if (rc != PT_OK || batch.release == NULL) break;
    const struct ArrowSchema *schema = &src.schema;
    for (size_t i = 1; i + 1 < n_ops && rc == PT_OK; i++) {
      const Protium__Op *op = def->ops[i];
      const struct ArrowSchema *next = schema_after(t->stage, i, schema);
      if (op->op_case == PROTIUM__OP__OP_MAP)
        rc = pt__op_map(t, (int)i, schema, next, &batch, err);
      else if (op->op_case == PROTIUM__OP__OP_FILTER)
        rc = pt__op_filter(t, (int)i, schema, &batch, err);
      else {
        batch.release(&batch);
        rc = pt__errorf(err, PT_EINVAL, "operator %d cannot be a transformation",
                        (int)op->op_case);
      }
      schema = next;
    }
    if (rc != PT_OK) break;
    rc = pt__sink_consume(&sink, &batch, err);
    if (rc != PT_OK) break;
  }
  if (rc == PT_OK) rc = pt__sink_finish(&sink, st, err);
  if (rc == PT_OK) {
    st->rows_read = src.rows_read;
    st->bytes_read = src.bytes_read;
    struct stat sb;
    if (st->shuffle && st->shuffle->n_segment_offsets)
      st->bytes_written = st->shuffle->segment_offsets[st->shuffle->n_segment_offsets - 1];
    else if (st->output_path && *st->output_path && stat(st->output_path, &sb) == 0)
      st->bytes_written = (int64_t)sb.st_size;
  }
close_all:
  pt__sink_close(&sink);
  pt__source_close(&src);
  return rc;
}

void pt__task_run(const pt__exec_env *env, pt__stage *stage, const Protium__TaskLaunch *task,
                  Protium__TaskStatus *st) {
  int64_t t0 = now_us();
  protium__task_status__init(st);
  st->task_id = task->task_id;
  pt__task t = {
      .env = env,
      .stage = stage,
      .launch = task,
      .ctx = {.job_id = stage->def->job_id,
              .stage_id = stage->def->stage_id,
              .partition = task->partition,
              .attempt = task->attempt,
              .executor_id = env->executor_id},
      .failed_map = -1,
  };
  pt_error err = {0};
  int rc = run(&t, st, &err);
  if (rc == PT_OK) {
    st->state = PROTIUM__TASK_STATE__TASK_SUCCEEDED;
  } else {
    pt__task_status_clear(st);
    st->state = t.failed_map >= 0 ? PROTIUM__TASK_STATE__TASK_FETCH_FAILED
                                  : PROTIUM__TASK_STATE__TASK_FAILED;
    st->failed_map_partition = t.failed_map >= 0 ? t.failed_map : 0;
    st->rows = st->count = 0;
    st->error_code = rc;
    char *msg = pt__strdup(err.message[0] ? err.message : pt_strerror(rc));
    /* Out of memory for the message itself: a static text still tells. */
    st->error = msg != NULL ? msg : (char *)protobuf_c_empty_string;
  }
  st->duration_us = now_us() - t0;
}
